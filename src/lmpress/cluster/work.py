"""What a worker does with one archive member: the very Compressor / Decompressor calls
a single process makes, on a model loaded once per worker process and kept for its later
members. Nothing here imports Ray, so local and cluster workers run the same code."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..codec import CodingStats, Compressor, Decompressor
from ..model.weights import IntegerWeights


@dataclass(frozen=True)
class Settings:
    """Coding options every worker applies (they change archive bytes, so they travel
    with each job rather than being read from the worker's environment)."""

    adapt: bool = True  # online adaptation (the default); False = `--no-adapt`
    verify: bool = False  # decode each member right after coding it (`--verify`)
    backend: str | None = None  # numpy / torch-cpu / torch-cuda: same bytes on all
    force: bool = False  # decode a float engine's archive despite its fingerprint


DEFAULT_SETTINGS = Settings()


# per worker process: (weights digest or name, settings) -> a loaded coder
_COMPRESSORS: dict[tuple, Compressor] = {}
_DECOMPRESSORS: dict[tuple, Decompressor] = {}


def _key(model, settings: Settings) -> tuple:
    return (getattr(model, "digest", model), settings)


def compress_member(model, settings: Settings, data: bytes) -> tuple[bytes, CodingStats]:
    """One member's archive and its figures; `model` is a name, a path or IntegerWeights."""
    key = _key(model, settings)
    if key not in _COMPRESSORS:
        _COMPRESSORS[key] = Compressor(model, backend=settings.backend,
                                       adapt=settings.adapt, verify=settings.verify)
    comp = _COMPRESSORS[key]
    return comp.compress(data), comp.stats


def decompress_member(model, settings: Settings, member: bytes) -> bytes:
    """The original bytes of one member; `model` None takes the model the archive names."""
    key = _key(model, settings)
    if key not in _DECOMPRESSORS:
        _DECOMPRESSORS[key] = Decompressor(model, backend=settings.backend,
                                           force=settings.force)
    return _DECOMPRESSORS[key].decompress(member)


# -- local worker processes: the model arrives once, in the initializer -----------------

_LOCAL: dict[str, object] = {}


def init_local(model, settings: Settings) -> None:
    """ProcessPoolExecutor initializer: the model and settings of every later job, and a
    watch that ends this worker when the lmpress process that made it is gone (killed,
    say), instead of finishing members nobody will write."""
    _LOCAL["model"], _LOCAL["settings"] = model, settings
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


_WEIGHTS: dict[str, IntegerWeights] = {}  # per worker process: digest -> loaded weights


class SharedWeights:
    """Weights a LocalPool saved to a file once: each job pickles only this handle, and
    unpickling it in a worker gives the loaded weights, read once per worker."""

    def __init__(self, path: str, digest: str):
        self.path, self.digest = path, digest

    def __reduce__(self):
        return _load_shared, (self.path, self.digest)


def _load_shared(path: str, digest: str) -> IntegerWeights:
    if digest not in _WEIGHTS:
        weights = IntegerWeights.load(Path(path))
        weights.digest = digest  # the digest of the model as the pool's caller loaded it
        _WEIGHTS[digest] = weights
    return _WEIGHTS[digest]


def local_compress(data: bytes) -> tuple[bytes, CodingStats]:
    return compress_member(_LOCAL["model"], _LOCAL["settings"], data)


def local_decompress(member: bytes) -> bytes:
    return decompress_member(_LOCAL["model"], _LOCAL["settings"], member)
