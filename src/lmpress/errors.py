"""The one error family of lmpress. Every message says what was expected, what was found,
and what to do about it."""


class LmpressError(Exception):
    """Base class of every error lmpress raises on purpose."""


class FormatError(LmpressError):
    """The bytes are not a valid .lmp archive (foreign, truncated or corrupt)."""


class ChecksumError(FormatError):
    """The archive decoded, but the result does not match the stored checksum."""


class ModelNotFoundError(LmpressError):
    """The archive (or the caller) names a model that is not installed here."""


class ModelFileError(LmpressError):
    """A model file is missing, damaged or does not match its recorded digest."""


class OutputLimitError(LmpressError):
    """Decoding would produce more bytes than the caller allowed."""


class BackendError(LmpressError):
    """The requested compute backend (e.g. torch) is not available here."""
