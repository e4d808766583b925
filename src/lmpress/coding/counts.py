"""Successor counts (adaptation 2): how often each token has followed each one-token and
two-token context so far in the archive member, mixed linearly into the language model's
frequency table.

The LM sees only its window (256 tokens, about 900 bytes, for the default model); the
counts remember the whole member. Where the previous token `a` has been followed m times
so far, c_v of them by token v, the table becomes

    f1(v) = f(v) + M * c_v,    T1 = T + M * m,

with the integer multiplier M chosen so that the counts carry a share w = W * m / (m + K)
of the table: the more often a context was seen, the more its counts are trusted (a
Witten-Bell-like rule). The two-token context (a2, a1) is then mixed into f1 the same way,
from a hashed table that keeps up to 8 successors per context. Everything is integer
arithmetic on the LM's integer table, the same in encoder and decoder (docs/FORMAT.md).
Measured on 96 KB validation prefixes (default model), on top of adaptation 1: order 1
alone 2.6-5.5% smaller, order 2 another 1-2.6% (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

MAX_VOCAB = 8192  # the order-1 table is dense, V x V: at most 256 MB of int32
_W_ONE = 1 << 16  # shares in 1/65536
_W1, _K1 = _W_ONE // 4, 4  # order 1: the share approaches 1/4, half of it after 4 counts
_W2, _K2 = _W_ONE * 2 // 5, 2  # order 2: 2/5, half of it after 2
ORDER2_BITS = 20  # 1 M hashed two-token contexts
ORDER2_KEEP = 8  # successors kept per context; a new one replaces the least counted
BLOCK = 64  # order-1 rows are also summed in blocks, so that the encoder's starts need
# one block sum per 64 tokens instead of a cumulative sum of the whole row


def _multiplier(w_max: int, k: int, m: np.ndarray, total: np.ndarray) -> np.ndarray:
    """M such that M * m is a share w_max * m / (m + k) of total + M * m (0 where m = 0)."""
    w = (w_max * m) // (m + k)
    return (w * total) // ((_W_ONE - w) * np.maximum(m, 1))


class Counts:
    """The counts of one archive member: order 1 dense (V x V, and sums of blocks of 64 of
    each row), order 2 in hashed slots of (context tag, up to 8 successor tokens and their
    counts)."""

    def __init__(self, vocab_size: int, n_tokens: int):
        dtype = np.int32 if n_tokens < 2**31 else np.int64  # a count never exceeds n_tokens
        self.V = vocab_size
        self.n = np.zeros((vocab_size, vocab_size), dtype=dtype)
        self.block = BLOCK
        self.blocks = np.zeros((vocab_size, -(-vocab_size // BLOCK)), dtype=np.int64)
        self.tag = np.zeros(1 << ORDER2_BITS, dtype=np.int64)  # context + 1; 0: empty
        self.succ = np.full((1 << ORDER2_BITS, ORDER2_KEEP), -1, dtype=np.int32)
        self.cnt = np.zeros((1 << ORDER2_BITS, ORDER2_KEEP), dtype=dtype)

    def _slots(self, prev2: np.ndarray, prev1: np.ndarray):
        key = prev2 * self.V + prev1 + 1
        h = (key * 0x9E3779B1) & 0xFFFFFFFF
        return key, h >> (32 - ORDER2_BITS)

    def _order2(self, prev2: np.ndarray, prev1: np.ndarray):
        """Successors (B, 8) and their counts (B, 8) of each context (-1 / 0 if none)."""
        key, slot = self._slots(prev2, prev1)
        mine = (self.tag[slot] == key)[:, None]
        return (np.where(mine, self.succ[slot], -1).astype(np.int64),
                np.where(mine, self.cnt[slot], 0).astype(np.int64))

    def _multipliers(self, prev2, prev1, total):
        m1 = self.blocks[prev1].sum(1)  # the row sums
        mult1 = _multiplier(_W1, _K1, m1, total)
        succ, cnt = self._order2(prev2, prev1)
        m2 = cnt.sum(1)
        mult2 = _multiplier(_W2, _K2, m2, total + mult1 * m1)
        return mult1, m1, mult2, m2, succ, cnt

    def mix_numbers(self, prev2: np.ndarray, prev1: np.ndarray, want: np.ndarray,
                    start: np.ndarray, freq: np.ndarray, total: np.ndarray):
        """The encoder's side: the (start, freq) of the ids `want` (B, k) and the totals (B)
        of the LM tables, turned into those of the mixed tables."""
        mult1, m1, mult2, m2, succ, cnt = self._multipliers(prev2, prev1, total)
        a = prev1[:, None]
        c1 = self.n[a, want].astype(np.int64)
        below1 = self._below1(a, want)
        c2 = ((succ[:, None, :] == want[..., None]) * cnt[:, None, :]).sum(-1)
        below2 = ((succ[:, None, :] < want[..., None]) * cnt[:, None, :]).sum(-1)
        M1, M2 = mult1[:, None], mult2[:, None]
        return (start + M1 * below1 + M2 * below2, freq + M1 * c1 + M2 * c2,
                total + mult1 * m1 + mult2 * m2)

    def _below1(self, a: np.ndarray, want: np.ndarray) -> np.ndarray:
        """sum(n[a, :w]) for each wanted id w: whole blocks, then the rest of w's block."""
        j = want // self.block
        sums = self.blocks[a[:, 0]]
        below = np.take_along_axis(np.cumsum(sums, 1), j, 1) - np.take_along_axis(sums, j, 1)
        v = (j * self.block)[..., None] + np.arange(self.block)  # w's block
        inside = self.n[a[..., None], np.minimum(v, self.V - 1)] * (v < want[..., None])
        return below + inside.sum(-1)

    def mix_table(self, prev2: np.ndarray, prev1: np.ndarray,
                  f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decoder's side (numpy path; coding/kernels.py mixes in its own compiled
        step): LM tables f (B, V) -> the mixed tables and their cumulative sums."""
        mult1, _, mult2, _, succ, cnt = self._multipliers(prev2, prev1, f.sum(1))
        out = f + mult1[:, None] * self.n[prev1]
        r, e = np.nonzero(succ >= 0)  # a context's successors are distinct tokens
        out[r, succ[r, e]] += mult2[r] * cnt[r, e]
        return out, np.cumsum(out, -1)

    def add(self, prev2: np.ndarray, prev1: np.ndarray, tok: np.ndarray) -> None:
        """Count the step's tokens: order 1 summed (order-free); order 2 stream by stream
        in table order (a new successor takes an empty place, else the first place with
        the lowest count; another context hashed to the slot clears it)."""
        np.add.at(self.n, (prev1, tok), 1)
        np.add.at(self.blocks, (prev1, tok // self.block), 1)
        key, slot = self._slots(prev2, prev1)
        todo = np.arange(len(slot))
        while len(todo):  # rounds: the first stream (in table order) of each slot left
            _, first = np.unique(slot[todo], return_index=True)
            now = todo[first]
            self._count2(key[now], slot[now], tok[now])
            todo = np.delete(todo, first)

    def _count2(self, key: np.ndarray, slot: np.ndarray, tok: np.ndarray) -> None:
        """Order-2 counting for streams of distinct slots (so their order does not matter)."""
        other = self.tag[slot] != key
        self.tag[slot] = key
        succ = np.where(other[:, None], -1, self.succ[slot])
        cnt = np.where(other[:, None], 0, self.cnt[slot])
        hit = succ == tok[:, None]
        has = hit.any(1)
        place = np.where(has, hit.argmax(1), cnt.argmin(1))  # empty places count 0
        r = np.arange(len(slot))
        cnt[r, place] = np.where(has, cnt[r, place] + 1, 1)
        succ[r, place] = tok
        self.succ[slot], self.cnt[slot] = succ, cnt

    def mark(self, prev2: np.ndarray, prev1: np.ndarray, tok: np.ndarray):
        """What `rewind` needs to undo the counting of these tokens in these contexts (the
        encoder codes a group again when a stream is better stored otherwise)."""
        slot = np.unique(self._slots(prev2, prev1)[1])
        return prev1, tok, slot, self.tag[slot], self.succ[slot], self.cnt[slot]

    def rewind(self, mark) -> None:
        """Undo `add` of the marked tokens: order 1 by subtraction, order 2 by restoring
        the slots as they were at `mark`."""
        prev1, tok, slot, tag, succ, cnt = mark
        np.subtract.at(self.n, (prev1, tok), 1)
        np.subtract.at(self.blocks, (prev1, tok // self.block), 1)
        self.tag[slot], self.succ[slot], self.cnt[slot] = tag, succ, cnt
