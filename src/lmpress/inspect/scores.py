"""Per-document scores behind `lmpress rank` (formulas in docs/INSPECT.md, section rank).

- Code length: Σ −log2 p(x_i) under the *scoring model*, each token predicted from the
  coder's own integer frequency table (p = f / total), i.e. what the range coder pays
  without adaptation; bits per byte = that / bytes.
- Information density: LM bits ÷ zlib bits and ÷ xz bits of the same bytes. A low ratio
  means the model predicts the text far better than its redundancy explains — the
  memorization signal of Carlini et al. (2021, "perplexity / zlib entropy").
- Binoculars (Hans et al. 2024, as their reference code computes it): with q the
  performer's and p the observer's next-token distributions at each of the n positions,
      log PPL   = (1/n) Σ_i −ln q_i(x_i)
      log X-PPL = (1/n) Σ_i Σ_v p_i(v) · (−ln q_i(v))
      B = log PPL / log X-PPL            (low B: machine-like)
  All models must share the tokenizer (lmpress-small-v1 and lmpress-fast-v1 do). The
  scoring model may also play one of the two roles; each distinct model runs once.
- Near-duplicates: normalized compression distance with a classical compressor C,
      NCD(x, y) = (C(xy) − min(C(x), C(y))) / max(C(x), C(y)),
  and single-linkage clusters of pairs with NCD ≤ a threshold (union-find).

Documents longer than the models' `max_positions` are scored in disjoint windows of that
many tokens, each read after BOS. Scores are float64 statistics, never coded.
"""

from __future__ import annotations

import lzma
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import LmpressError

Progress = Callable[[int], None]  # called with the number of document bytes just scored
NCD_COMPRESSORS = ("zlib", "xz")
_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


class RankError(LmpressError):
    """Documents or options that `lmpress rank` cannot work with."""


@dataclass(frozen=True)
class LMScore:
    """One document under the scoring model (and a Binoculars pair, if any); nats."""

    n_tokens: int
    nll: float  # Σ −ln p(x_i), the scoring model
    performer_nll: float  # Σ −ln q(x_i), the performer; nan without a pair
    cross_nll: float  # Σ_i Σ_v p_obs,i(v)·(−ln q_i(v)); nan without a pair

    @property
    def bits(self) -> float:
        return self.nll / math.log(2)

    @property
    def log_ppl(self) -> float:
        """Binoculars' numerator: the performer's mean −ln q per token."""
        return self.performer_nll / self.n_tokens if self.n_tokens else math.nan

    @property
    def log_xppl(self) -> float:
        return self.cross_nll / self.n_tokens if self.n_tokens else math.nan

    @property
    def binoculars(self) -> float:
        x = self.log_xppl
        return self.log_ppl / x if x > 0 else math.nan


def check_tokenizers(*engines) -> None:
    """Binoculars compares distributions over the same tokens: the tokenizers must match."""
    first = engines[0]
    for e in engines[1:]:
        if e is not None and e.tok.digest != first.tok.digest:
            raise RankError(f"Binoculars needs models with the same tokenizer; "
                            f"{first.weights.name} and {e.weights.name} differ; choose "
                            "other --observer/--performer models or pass --no-binoculars")


def lm_scores(model, docs: Sequence[bytes], pair: tuple | None = None,
              progress: Progress | None = None, pool=None) -> list[LMScore]:
    """Score every document with `model` and the Binoculars `pair` (observer, performer):
    `_Engine`s from codec.py; `model` may be one of the two. With a `pool`
    (lmpress.cluster) each batch of windows is scored on a worker: the same batches,
    summed in the same order, so the same numbers."""
    roles = [model, *(pair or ())]
    check_tokenizers(*roles)
    span = min(e.cfg.max_positions for e in roles)
    pieces = []  # (document index, token window)
    for d, data in enumerate(docs):
        ids = model.tok.encode(data)
        pieces += [(d, ids[a:a + span]) for a in range(0, len(ids), span)]
    pieces.sort(key=lambda p: -len(p[1]))
    sums = np.zeros((len(docs), 3))  # nll, performer nll, cross
    n_tokens = np.zeros(len(docs), dtype=np.int64)
    groups = [pieces[g:g + model.batch_size] for g in range(0, len(pieces), model.batch_size)]
    jobs = []
    if pool is not None:
        specs = tuple((e.weights, e.lm.xp.name, e.batch_size) for e in roles)
        jobs = [pool.submit(window_sums_remote, specs, [w for _, w in group])
                for group in groups]
    for i, group in enumerate(groups):
        got = jobs[i].result() if jobs else _window_sums(roles, [w for _, w in group])
        for (d, w), row in zip(group, got):
            sums[d] += row
            n_tokens[d] += len(w)
        if progress is not None:
            progress(sum(int(model.tok.n_bytes[w].sum()) for _, w in group))
    if pair is None:
        sums[:, 1:] = np.nan
    return [LMScore(int(n), *map(float, row)) for n, row in zip(n_tokens, sums)]


_ENGINES: dict[tuple, object] = {}  # per worker process: (digest, backend) -> _Engine


def window_sums_remote(specs: tuple, windows: list[np.ndarray]) -> np.ndarray:
    """`_window_sums` on a worker; `specs` is (weights, backend, batch size) per role, the
    engines are loaded once per worker process."""
    from ..codec import _Engine

    roles = []
    for weights, backend, batch_size in specs:
        key = (weights.digest, backend, batch_size)
        if key not in _ENGINES:
            _ENGINES[key] = _Engine(weights, backend, batch_size)
        roles.append(_ENGINES[key])
    return _window_sums(roles, windows)


def _window_sums(roles: list, windows: list[np.ndarray]) -> np.ndarray:
    """(Σ −ln p(x_i), Σ −ln q(x_i), Σ cross-entropy) per window (B, 3), each window read
    after BOS. Every distinct model steps through the same chunks once; padding after a
    window's end is read but never scored."""
    model = roles[0]
    B, L = len(windows), max(len(w) for w in windows)
    tgt = np.zeros((B, L), dtype=np.int64)
    for b, w in enumerate(windows):
        tgt[b, :len(w)] = w
    inp = np.concatenate([np.full((B, 1), model.cfg.bos_id), tgt[:, :-1]], axis=1)
    live = np.arange(L)[None, :] < np.array([len(w) for w in windows])[:, None]  # (B, L)
    engines = list({id(e): e for e in roles}.values())
    chunk = min(min(e.cfg.window for e in engines),
                max(1, (1 << 21) // (B * model.cfg.vocab_size)))
    for e in engines:  # about 4 bytes per token: faster kernels for long inputs
        e.prepare(4 * B * L)
    states = {id(e): e.lm.new_state(B) for e in engines}
    out = np.zeros((B, 3))
    for c in range(0, L, chunk):
        x, y, m = inp[:, c:c + chunk], tgt[:, c:c + chunk], live[:, c:c + chunk]
        neg_log, probs = {}, {}  # −ln p and p of each model's tables (B, l, V)
        for e in engines:
            f = e.tables(states[id(e)], x).astype(np.float64)
            total = f.sum(-1, keepdims=True)
            neg_log[id(e)] = np.log(total) - np.log(f)  # f >= 1
            if len(roles) == 3 and e is roles[1]:
                probs[id(e)] = f / total
        out[:, 0] += _scored(m, _picked(neg_log[id(model)], y))
        if len(roles) == 3:
            observer, performer = roles[1], roles[2]
            out[:, 1] += _scored(m, _picked(neg_log[id(performer)], y))
            out[:, 2] += _scored(m, (probs[id(observer)] * neg_log[id(performer)]).sum(-1))
    return out


def _picked(neg_log: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(B, l, V), (B, l) -> (B, l): the value at each position's true token."""
    return np.take_along_axis(neg_log, y[..., None], -1)[..., 0]


def _scored(live: np.ndarray, per_position: np.ndarray) -> np.ndarray:
    """(B, l) -> (B,): summed over the positions that belong to a window."""
    return np.where(live, per_position, 0.0).sum(1)


# -- classical compressors -------------------------------------------------------------

def zlib_size(data: bytes) -> int:
    """Bytes of `zlib.compress(data, 9)` (2-byte header and 4-byte Adler-32 included)."""
    return len(zlib.compress(data, 9))


def xz_size(data: bytes) -> int:
    """Bytes of the raw LZMA2 payload at preset 9e (no .xz container, whose ~60 bytes of
    headers would swamp short documents), the dictionary sized to the data (at most
    preset 9's 64 MiB): a 64 MiB dictionary for a 1 KB text costs 70 ms, this 1 ms."""
    dict_size = min(1 << 26, max(1 << 12, 1 << (len(data) - 1).bit_length()))
    filters = [{**_XZ_FILTERS[0], "dict_size": dict_size}]
    return len(lzma.compress(data, format=lzma.FORMAT_RAW, filters=filters))


def compressor(name: str) -> Callable[[bytes], int]:
    if name not in NCD_COMPRESSORS:
        raise RankError(f"unknown compressor {name!r}; use one of {', '.join(NCD_COMPRESSORS)}")
    return zlib_size if name == "zlib" else xz_size


# -- near-duplicates -------------------------------------------------------------------

def ncd(x: bytes, y: bytes, size: Callable[[bytes], int] = zlib_size) -> float:
    """Normalized compression distance: about 0 for identical texts, about 1 for unrelated.

    >>> ncd(b"the same words " * 20, b"the same words " * 20) < 0.2
    True
    """
    cx, cy = size(x), size(y)
    return (size(x + y) - min(cx, cy)) / max(cx, cy)


def ncd_clusters(docs: Sequence[bytes], threshold: float,
                 size: Callable[[bytes], int] = zlib_size,
                 sizes: Sequence[int] | None = None) -> list[int]:
    """Cluster id per document (0, 1, ... in order of first appearance): single linkage
    over pairs with NCD ≤ `threshold`. O(n²) compressions at worst; pairs whose sizes alone
    rule them out are skipped: C(xy) ≥ max(C(x), C(y)) for zlib and xz (up to a few bytes),
    so NCD ≥ 1 − min/max, and only pairs with C_min ≥ (1 − threshold)·C_max are compared."""
    n = len(docs)
    c = [size(d) for d in docs] if sizes is None else list(sizes)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(n), key=lambda i: c[i])
    for a, i in enumerate(order):
        for j in order[a + 1:]:
            if c[i] < (1 - threshold) * c[j]:
                break  # every later j is larger still
            if root(i) == root(j):
                continue
            x, y = (i, j) if i < j else (j, i)
            if (size(docs[x] + docs[y]) - min(c[i], c[j])) / max(c[i], c[j], 1) <= threshold:
                parent[root(j)] = root(i)
    labels: dict[int, int] = {}
    return [labels.setdefault(root(i), len(labels)) for i in range(n)]
