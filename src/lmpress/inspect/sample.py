"""Seeded sampling from a built-in model's integer frequency tables (`lmpress sample`).

Stream i draws from its own `numpy.random.Generator` (PCG64) seeded with
`SeedSequence(seed, spawn_key=(i,))` (= `SeedSequence(seed).spawn(n)[i]`), and the tables
are the coder's exact integer ones, which do not depend on batching; so a stream's text
depends only on (model, seed, i, prompt, options), never on which streams step with it.
With temperature 1 (the default) a token is drawn by comparing one integer
`Generator.integers(total)` with the integer cumulative table — the same on every
machine. Other temperatures weight tokens by (f / f_max) ** (1 / T) in float64:
deterministic here, though another libm may round a last bit differently. Top-k and
top-p cut the integer table before that.

The models have no end-of-text token: BOS separates documents in training, so drawing
BOS ends a stream (or, with `stop_at_eos=False`, BOS is never drawn).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import LmpressError


class SampleError(LmpressError):
    """A sampling request the model cannot satisfy (bad option, too long)."""


@dataclass(frozen=True)
class SampleOptions:
    temperature: float = 1.0  # 0 = greedy (ties to the lowest token id)
    top_k: int = 0  # keep the k most likely tokens; 0 = all
    top_p: float = 1.0  # keep the most likely tokens until their mass reaches p
    stop_at_eos: bool = True  # drawing BOS ends the stream; False: BOS is never drawn

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise SampleError(f"temperature must be a number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise SampleError(f"top-k must be >= 0 (0 = no cut), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise SampleError(f"top-p must be in (0, 1], got {self.top_p}")


def sample_tokens(engine, n_tokens: Sequence[int], seed: int, prompt: np.ndarray | None = None,
                  options: SampleOptions = SampleOptions(), first: int = 0
                  ) -> list[np.ndarray]:
    """Continue `prompt` (token ids read after BOS: (P,) for every stream, or (B, P), one
    row per stream) in B = len(n_tokens) streams stepping together; stream b is stream
    number first + b of `seed` and draws up to n_tokens[b] tokens. Returns the drawn
    tokens (BOS excluded)."""
    B, cfg = len(n_tokens), engine.cfg
    prompt = np.zeros((B, 0), dtype=np.int64) if prompt is None else np.asarray(prompt, np.int64)
    if prompt.ndim == 1:
        prompt = np.tile(prompt, (B, 1))
    if prompt.shape[0] != B:
        raise SampleError(f"{prompt.shape[0]} prompts for {B} streams; give one per stream")
    if B == 0:
        return []
    longest = 1 + prompt.shape[1] + max(n_tokens)
    if longest - 1 > cfg.max_positions:
        raise SampleError(f"prompt and continuation need {longest - 1} positions; the model "
                          f"reads at most {cfg.max_positions}; ask for fewer tokens")
    rngs = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i,))))
            for i in range(first, first + B)]
    st = engine.lm.new_state(B)
    ctx = np.concatenate([np.full((B, 1), cfg.bos_id), prompt], axis=1)
    for c in range(0, ctx.shape[1], cfg.window):  # read BOS + prompt in parallel chunks
        f = engine.tables(st, ctx[:, c:c + cfg.window])[:, -1]  # (B, V)
    out = np.zeros((B, max(n_tokens)), dtype=np.int64)
    length = np.zeros(B, dtype=np.int64)
    live = np.array([n > 0 for n in n_tokens])
    for t in range(max(n_tokens)):
        for b in np.flatnonzero(live):
            tok = draw(f[b], rngs[b], options, cfg.bos_id)
            if tok == cfg.bos_id:
                live[b] = False
                continue
            out[b, t], length[b] = tok, t + 1
            live[b] = t + 1 < n_tokens[b]
        if not live.any():
            break
        f = engine.tables(st, out[:, t:t + 1])[:, 0]  # ended streams step on, unread
    return [out[b, :length[b]] for b in range(B)]


def draw(freqs: np.ndarray, rng: np.random.Generator, options: SampleOptions,
         eos_id: int) -> int:
    """One token from an integer frequency table (V,) under `options`."""
    w = np.asarray(freqs, dtype=np.int64).copy()
    if not options.stop_at_eos:
        w[eos_id] = 0
    if options.temperature == 0:
        return int(np.argmax(w))
    if options.top_k or options.top_p < 1:
        order = np.argsort(-w, kind="stable")  # most likely first, ties by token id
        keep = len(w) if not options.top_k else min(options.top_k, len(w))
        if options.top_p < 1:
            need = int(np.ceil(options.top_p * int(w.sum())))
            keep = min(keep, int(np.searchsorted(np.cumsum(w[order]), need)) + 1)
        w[order[keep:]] = 0
    if options.temperature == 1:
        cum = np.cumsum(w)
        return int(np.searchsorted(cum, rng.integers(int(cum[-1])), side="right"))
    weights = np.where(w > 0, (w / w.max()) ** (1.0 / options.temperature), 0.0)
    cum = np.cumsum(weights)
    k = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
    return min(k, int(np.flatnonzero(w)[-1]))


def sample(engine, n_tokens: int, seed: int, prompt: bytes = b"",
           options: SampleOptions = SampleOptions(), n_samples: int = 1,
           group: int = 64) -> list[bytes]:
    """`n_samples` continuations of `prompt` (bytes, prompt not included), each of up to
    `n_tokens` tokens, decoded to bytes; `group` streams step together (memory)."""
    if n_tokens < 0 or n_samples < 0:
        raise SampleError("the number of tokens and of samples must be >= 0")
    ids = engine.tok.encode(prompt)
    out = []
    for g in range(0, n_samples, group):
        n = min(group, n_samples - g)
        out += sample_tokens(engine, [n_tokens] * n, seed, ids, options, first=g)
    return [engine.tok.decode(t.tolist()) for t in out]
