"""The one registry of shipped models: name -> file and sha256, plus level mapping; and
the user's models directory, where `lmpress convert` installs models by name."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ModelFileError, ModelNotFoundError
from .mix import MixedWeights
from .weights import IntegerWeights

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str  # inside lmpress/models/ ("" for a mix)
    sha256: str  # of the file (of a mix: model/mix.py's digest); verified before use
    levels: tuple[int, ...]  # the -1..-9 levels that select it
    summary: str
    parts: tuple[str, ...] = ()  # a mix (model/mix.py): the shipped models it runs
    shares: tuple[int, ...] = ()  # and their shares of the logits, in 1/256

    def files(self) -> list[Path]:
        """The files it loads (a mix: its parts')."""
        if self.parts:
            return [p for part in self.parts for p in SHIPPED[part].files()]
        return [MODELS_DIR / self.file]


SHIPPED: dict[str, ShippedModel] = {}
DEFAULT_MODEL = "lmpress-small-v5"


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
def _load_shipped(name: str) -> IntegerWeights | MixedWeights:
    entry = SHIPPED[name]
    if not entry.parts:
        return IntegerWeights.load(MODELS_DIR / entry.file, expected_sha256=entry.sha256)
    mix = MixedWeights(name, tuple(_load_shipped(p) for p in entry.parts), entry.shares,
                       entry.summary)
    if mix.digest != entry.sha256:
        raise ModelFileError(f"mix {name}: digest {mix.digest[:16]}..., expected "
                             f"{entry.sha256[:16]}...; reinstall lmpress")
    return mix


# A model name that can be a file name in the user's models directory: no path parts,
# and short enough for the archive header's one-byte name length.
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def user_models_dir() -> Path:
    """$LMPRESS_MODELS_DIR, else $XDG_DATA_HOME/lmpress/models (~/.local/share/...)."""
    if os.environ.get("LMPRESS_MODELS_DIR"):
        return Path(os.environ["LMPRESS_MODELS_DIR"])
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "lmpress" / "models"


def is_user_model_name(name: str) -> bool:
    return bool(_USER_NAME.fullmatch(name)) and not name.endswith(".safetensors")


def user_model_path(name: str) -> Path:
    """Where the user model `name` lives (whether or not it exists yet)."""
    if not is_user_model_name(name):
        raise ModelNotFoundError(f"{name!r} is not a usable model name; use letters, digits "
                                 "and . _ + - (at most 128), not starting with a symbol")
    return user_models_dir() / f"{name}.safetensors"


def list_user_models() -> list[Path]:
    """Model files in the user's models directory, by name."""
    d = user_models_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.safetensors") if is_user_model_name(p.stem))


def user_models() -> list[tuple[str, Path, str]]:
    """(name, path, summary) of each model in the user's models directory."""
    from ..errors import ModelFileError
    from .weights import read_metadata

    rows = []
    for path in list_user_models():
        try:
            summary = read_metadata(path).get("summary", "")
        except ModelFileError as e:
            summary = f"unreadable: {e}"
        rows.append((path.stem, path, summary))
    return rows


def load_model(spec: str | Path | IntegerWeights | MixedWeights | None = None
               ) -> IntegerWeights | MixedWeights:
    """A shipped model (or mix) by name, a user model (`lmpress convert`) by name, a model
    file by path, or an already loaded model."""
    if isinstance(spec, MixedWeights):
        return spec
    if isinstance(spec, IntegerWeights):
        if not spec.digest:  # made in memory (quantize, tests): archives need the digest
            spec.digest = hashlib.sha256(spec.to_bytes()).hexdigest()
        return spec
    name = str(spec) if spec is not None else DEFAULT_MODEL
    if name in SHIPPED:
        return _load_shipped(name)
    path = Path(name)
    if path.suffix == ".safetensors" and path.is_file():
        return IntegerWeights.load(path)
    if is_user_model_name(name) and user_model_path(name).is_file():
        return IntegerWeights.load(user_model_path(name))
    known = ", ".join(sorted(SHIPPED) + [p.stem for p in list_user_models()]) or "none"
    raise ModelNotFoundError(f"model {name!r} is not installed (installed models: {known}); "
                             "pass a model name, a path to a .safetensors model file, or "
                             "convert one with `lmpress convert`")


from . import shipped as _shipped  # noqa: E402,F401  (fills SHIPPED)
