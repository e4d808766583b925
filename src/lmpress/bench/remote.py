"""Benchmark rows measured on workers (`lmpress bench -T N` / `--ray ADDRESS`): each
(model, file) row is one job that codes the file exactly as a local row would — the
same one-member archive, so the same bytes — and times it on the worker."""

from __future__ import annotations

from .codecs import Codec, _coding_codec
from .inputs import BenchInput
from .measure import Row, measure

_CODECS: dict[tuple, Codec] = {}  # per worker process: the codec of each remote spec


def measure_remote(spec: tuple, item: BenchInput) -> Row:
    """`spec` is `Codec.remote`: (weights, name, model_bytes, label, backend, fallback,
    adapt); the weights arrive once per worker through the pool."""
    weights, name, model_bytes, label, backend, fallback, adapt = spec
    key = (weights.digest, backend, fallback, adapt)
    if key not in _CODECS:
        _CODECS[key] = _coding_codec(weights, name, weights.digest, model_bytes, label,
                                     backend, fallback, adapt)
    return measure(_CODECS[key], item)
