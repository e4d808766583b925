"""lmpress: lossless compression driven by a small language model; archives decode
bit-exactly on any machine.

Names are imported on first use, so that `lmpress -T N` can limit numpy's threads before
numpy loads.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "compress": "codec", "decompress": "codec", "Compressor": "codec",
    "Decompressor": "codec", "CodingStats": "codec",
    "open": "fileobj", "LmpressFile": "fileobj",
    "LmpressError": "errors", "FormatError": "errors", "ChecksumError": "errors",
    "ModelNotFoundError": "errors", "ModelFileError": "errors", "OutputLimitError": "errors",
    "VerifyError": "codec",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'lmpress' has no attribute {name!r}")
