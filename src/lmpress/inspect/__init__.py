"""Inspecting text with the built-in models: per-token surprisal (`lmpress inspect`),
per-document scores (`lmpress rank`) and seeded sampling (`lmpress sample`).

`inspect_bytes`, `Inspection` and `TokenRecord` are loaded on first use, so that the
commands can set thread variables before numpy is imported."""

_LAZY = ("Inspection", "TokenRecord", "inspect_bytes")


def __getattr__(name: str):
    if name in _LAZY:
        from . import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
