"""Lossy mode ("a blurry JPEG of the text"): a quality knob; the decoder fills in what
the encoder chose not to pay for. See docs/LOSSY.md."""

from .api import LossyResult, compress, reconstruct
from .levels import LADDER, Level, QualityError, level_for
from .units import KINDS, ProtectError

__all__ = ["KINDS", "LADDER", "Level", "LossyResult", "ProtectError", "QualityError",
           "compress", "level_for", "reconstruct"]
