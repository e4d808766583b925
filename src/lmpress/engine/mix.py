"""The engine of a mix (model/mix.py): each part runs as its own IntegerLM on one backend,
and the mixed logits are sum(share_i * logits_i) >> 8, an integer average with a floor
shift. That is the same integers on every backend and machine, since each part's logits
are; the first part's frequency tables (and its compiled `numbers` kernel) then read the
mixed logits exactly as they read a single model's (all parts share the fixed-point
layout, so the same tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.mix import SHARE_BITS, MixedWeights
from .backends import get_backend
from .transformer import IntegerLM


@dataclass
class MixedState:
    """One StreamState per part; `pos` is theirs (they advance together)."""

    parts: list

    @property
    def pos(self) -> int:
        return self.parts[0].pos


class MixedLM:
    """IntegerLM's interface (new_state, forward, freqs, numbers, xp, cfg) over a mix."""

    def __init__(self, weights: MixedWeights, backend: Any = None):
        self.cfg = weights.config
        self.xp = get_backend(backend)
        self.parts = [IntegerLM(p, self.xp) for p in weights.parts]
        self.shares = weights.shares

    def new_state(self, batch: int) -> MixedState:
        return MixedState([lm.new_state(batch) for lm in self.parts])

    def forward(self, st: MixedState, tokens) -> Any:
        """Mixed logits (B, L, V) at logit_frac; advances every part's state."""
        out = None  # in place: the encoder's chunks of logits are tens of MB each
        for lm, s, share in zip(self.parts, st.parts, self.shares):
            logits = lm.forward(s, tokens)
            if out is None:
                out = logits
                out *= share
            else:
                logits *= share
                out += logits
        out >>= SHARE_BITS
        return out

    def trunk(self, st: MixedState, tokens) -> Any:
        """The first part's residual stream (lossy mode's hidden states); advances every
        part, as `forward` does."""
        h = self.parts[0].trunk(st.parts[0], tokens)
        for lm, s in zip(self.parts[1:], st.parts[1:]):
            lm.trunk(s, tokens)
        return h

    def freqs(self, logits):
        return self.parts[0].freqs(logits)

    def numbers(self, logits, want):
        return self.parts[0].numbers(logits, want)


def make_lm(weights, backend: Any = None):
    """The engine for loaded weights: IntegerLM, or MixedLM for a mix."""
    if isinstance(weights, MixedWeights):
        return MixedLM(weights, backend)
    return IntegerLM(weights, backend)
