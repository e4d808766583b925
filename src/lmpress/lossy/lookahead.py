"""Pricing a unit's options over a short window of the text that follows.

A change to a word is worth what it saves on the word itself *and* on the next few
tokens: a word the model likes can still make the original's next words more surprising
(a fragment of a longer word, a phrase broken in two), and pricing only the first token
over-estimates savings about twice. So each option — keep, a case variant, a substituted
word, leaving the word out — is written as its own row: the option's tokens followed by
the same lookahead tokens (the next original units), and all rows are priced together by
one chunked forward pass from a copy of the streams' states. The first token of every
row is priced by the table the search already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.mix import MixedState
from ..engine.transformer import StreamState


@dataclass
class Row:
    """One option of one stream, priced over the window."""

    stream: int  # index in the batch whose state the row continues
    tokens: list[int]  # the option's tokens, then the lookahead tokens
    n_own: int  # how many of `tokens` are the option's own
    bits: float = 0.0  # -log2 p of all `tokens`, filled by `price`
    p_continue: float = 0.0  # after the option's last own token: P(a letter-only token
    #                           without a leading space), i.e. that the word goes on


def fork(lm, st: StreamState, rows: list[int]) -> StreamState:
    """A state for the given batch rows (repeats allowed), independent of `st`; a mix's
    state part by part."""
    if isinstance(st, MixedState):
        return MixedState([fork(p, s, rows) for p, s in zip(lm.parts, st.parts)])
    xp = lm.xp
    idx = xp.asint(np.asarray(rows, dtype=np.int64))
    slots = st.slot_pos.clone() if hasattr(st.slot_pos, "clone") else st.slot_pos.copy()
    return StreamState(st.pos, [k[idx] for k in st.keys], [v[idx] for v in st.values], slots)


def price(engine, st: StreamState, f: np.ndarray, rows: list[Row],
          continues: np.ndarray) -> None:
    """Fill each row's `bits` and `p_continue`. `f` (B, V) are the tables for the next
    token of each stream at `st`; `continues` marks the word-continuing tokens."""
    total = np.log2(f.sum(-1).astype(np.float64))  # (B,)
    for r in rows:
        r.bits = float(total[r.stream] - np.log2(f[r.stream, r.tokens[0]]))
    L = max(len(r.tokens) for r in rows) - 1
    L = min(L, engine.cfg.window, engine.cfg.max_positions - st.pos)
    if L <= 0:
        return
    inp = np.zeros((len(rows), L), dtype=np.int64)  # padding at the end: causal, harmless
    tgt = np.zeros((len(rows), L), dtype=np.int64)
    n = np.zeros(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        t = r.tokens[:L + 1]
        n[i] = len(t) - 1
        inp[i, :n[i]], tgt[i, :n[i]] = t[:-1], t[1:]
    tab = engine.tables(fork(engine.lm, st, [r.stream for r in rows]), inp)  # (R, L, V)
    tot = tab.sum(-1).astype(np.float64)  # (R, L)
    fr = np.take_along_axis(tab, tgt[..., None], -1)[..., 0].astype(np.float64)
    bits = np.log2(tot) - np.log2(np.maximum(fr, 1))
    bits[np.arange(L)[None, :] >= n[:, None]] = 0.0
    for i, r in enumerate(rows):
        r.bits += float(bits[i].sum())
        j = r.n_own - 1  # position whose table predicts the token after the option
        if 0 <= j < n[i]:
            r.p_continue = float(tab[i, j][continues].sum() / tot[i, j])
