"""The one registry of shipped models: name -> file and sha256, plus level mapping."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ModelNotFoundError
from .weights import IntegerWeights

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str  # inside lmpress/models/
    sha256: str  # of the file; verified before use
    levels: tuple[int, ...]  # the -1..-9 levels that select it
    summary: str


SHIPPED: dict[str, ShippedModel] = {}
DEFAULT_MODEL = "lmpress-small-v1"


def register(model: ShippedModel) -> None:
    SHIPPED[model.name] = model


def model_for_level(level: int | None) -> str:
    if level is None:
        return DEFAULT_MODEL
    if not 1 <= level <= 9:
        raise ModelNotFoundError(f"level {level} is out of range; use 1..9")
    for m in SHIPPED.values():
        if level in m.levels:
            return m.name
    return DEFAULT_MODEL


@lru_cache(maxsize=4)
def _load_shipped(name: str) -> IntegerWeights:
    entry = SHIPPED[name]
    return IntegerWeights.load(MODELS_DIR / entry.file, expected_sha256=entry.sha256)


def load_model(spec: str | Path | IntegerWeights | None = None) -> IntegerWeights:
    """A shipped model by name, a model file by path, or an already loaded model."""
    if isinstance(spec, IntegerWeights):
        return spec
    name = str(spec) if spec is not None else DEFAULT_MODEL
    if name in SHIPPED:
        return _load_shipped(name)
    path = Path(name)
    if path.suffix == ".safetensors" and path.is_file():
        return IntegerWeights.load(path)
    known = ", ".join(sorted(SHIPPED)) or "none"
    raise ModelNotFoundError(f"model {name!r} is not installed (shipped models: {known}); "
                             "pass a shipped name or a path to a .safetensors model file")


from . import shipped as _shipped  # noqa: E402,F401  (fills SHIPPED)
