"""Lossy mode ("a blurry JPEG of the text"): a quality knob; the decoder fills in what
the encoder chose not to pay for. See docs/LOSSY.md.

Names are imported on first use: the command line adds the lossy options before `-T`
and `--blas-threads` have set the thread variables, so numpy must not load here."""

from importlib import import_module
from typing import Any

_WHERE = {"LossyResult": "api", "compress": "api", "reconstruct": "api",
          "LADDER": "levels", "Level": "levels", "QualityError": "levels",
          "level_for": "levels", "KINDS": "units", "ProtectError": "units"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'lmpress.lossy' has no attribute {name!r}")
