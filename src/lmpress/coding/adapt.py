"""Online adaptation ("short-term memory"): integer models that learn from the data being
coded, mixed with the language model by a fixed-point logistic mixer.

Two adaptive models propose one candidate token each:

- the **match model** finds the latest earlier occurrence of the last `MIN_MATCH` tokens
  (anywhere in the archive member, at any distance) and predicts the token that followed
  it; once found, it follows that occurrence token by token while it keeps being right;
- the **token n-gram model** remembers, for each hashed pair of previous tokens, the token
  that followed that pair last time and how many times in a row it was right.

Each candidate becomes a binary event "the next token is c" whose probability a PAQ-style
mixer computes from stretch(p_LM(c)), stretch(the model's adaptive hit rate) and a bias,
with weights chosen by the match length (or run count) and the LM's own confidence. If no
event hits, the token is coded with the LM's table with the candidates removed, so the
whole is an exact probability distribution over the vocabulary.

Streams advance in lockstep groups (docs/FORMAT.md). At step n every stream of a group is
predicted from the same state; then all of them update it at once, with every update
computed from the state before the step (integer sums, so their order does not matter;
where two streams write the same table slot, the one later in the file wins). So a stream sees
every token of earlier groups and the first n tokens of every stream of its own group:
the encoder, which knows all tokens in advance, and the decoder, which discovers them step
by step, see exactly the same history. The work of one step is vectorized over the group
with numpy integer arrays: identical on every machine. coding/kernels.py does the same
work in compiled loops, to the same integers, when numba is there.
"""

from __future__ import annotations

import numpy as np

from .counts import Counts

MIN_MATCH = 4  # tokens hashed to find a match (about 12 bytes of text)
MAX_VERIFY = 32  # a match's length is measured up to this many tokens when it is found
MATCH_BITS = 22  # match table: 4 M slots holding (address of the successor + 1)
NGRAM_BITS = 20  # n-gram table: 1 M slots of (successor + 1, run count)
PROB_BITS = 12  # binary events are coded with probabilities out of 4096
_ONE = 1 << 16  # mixer weights: 16 fractional bits
_LR_SHIFT = 10  # mixer learning rate: dw = x * err >> 10 (about 0.016 in real units)
_HIT_RATE = 5  # adaptive hit rates move 1/32 of the way per event
_W_LIMIT = 1 << 22  # weights stay within ±64 (real units)
_K = 0x2F0B3  # hash multiplier


def _squash_table() -> np.ndarray:
    """p = 4096 / (1 + e^-x) for x in 1/256 units, by PAQ's integer interpolation."""
    knots = (1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
             2549, 2994, 3348, 3607, 3785, 3901, 3975, 4024, 4050, 4068, 4079, 4085, 4089,
             4092, 4093, 4094)
    out = []
    for d in range(-2047, 2048):
        w, i = d & 127, (d >> 7) + 16
        out.append((knots[i] * (128 - w) + knots[i + 1] * w + 64) >> 7)
    return np.array(out, dtype=np.int64)


SQUASH = _squash_table()  # index d + 2047


def _stretch_table() -> np.ndarray:
    """The inverse of squash: stretch(p) = ln(p / (1 - p)) in 1/256 units, p in 1/4096."""
    out, pi = np.full(4096, 2047, dtype=np.int64), 0
    for x in range(-2047, 2048):
        v = int(SQUASH[x + 2047])
        out[pi:v + 1] = x
        pi = max(pi, v + 1)
    return out


STRETCH = _stretch_table()


def squash(d):
    return SQUASH[np.clip(d, -2047, 2047) + 2047]


def _length_buckets(n_max: int = 1 << 16) -> np.ndarray:
    """Match length -> 0..15, two buckets per octave (4, 6, 8, 12, 16, 24, ...)."""
    out = np.zeros(n_max + 1, dtype=np.int64)
    for n in range(4, n_max + 1):
        b = n.bit_length()
        out[n] = min(15, 2 * (b - 3) + ((n >> (b - 2)) & 1) + 1)
    return out


_LENGTH_BUCKET = _length_buckets()


class Mixer:
    """Weights and hit rates of one kind of binary event; vectorized over streams."""

    def __init__(self, n_contexts: int, init_model_weight: int):
        self.w = np.tile(np.array([_ONE, init_model_weight, 0], dtype=np.int64),
                         (n_contexts * 3, 1))
        self.hit = np.full(n_contexts, 1 << 15, dtype=np.int64)  # P(hit), 16 bits

    def predict(self, ctx: np.ndarray, p_lm12: np.ndarray):
        """P(hit) in 1/4096 per stream, and what `update` needs."""
        x = np.stack([STRETCH[p_lm12], STRETCH[self.hit[ctx] >> 4],
                      np.full_like(ctx, 256)], -1)  # (B, 3)
        s = ctx * 3 + (p_lm12 >= 410) + (p_lm12 >= 2458)  # weight set: context, confidence
        p = squash((self.w[s] * x).sum(-1) >> 16)
        return p, (ctx, s, x, p)

    def update(self, saved, y: np.ndarray, mask: np.ndarray) -> None:
        """Learn from the events in `mask` (y = 1 where the candidate was the token)."""
        ctx, s, x, p = (a[mask] for a in saved)
        y = y[mask].astype(np.int64)
        err = (y << PROB_BITS) - p
        np.add.at(self.w, s, (x * err[:, None]) >> _LR_SHIFT)
        np.add.at(self.hit, ctx, ((y << 16) - self.hit[ctx]) >> _HIT_RATE)
        # several streams of one step may push the same context: keep the ranges
        np.clip(self.w, -_W_LIMIT, _W_LIMIT, out=self.w)
        np.clip(self.hit, 0, (1 << 16) - 1, out=self.hit)


def _p12(f: np.ndarray, total: np.ndarray) -> np.ndarray:
    return np.clip((f << PROB_BITS) // total, 1, 4095)


def _last_wins(idx: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Mask of the entries of `idx` that are the last occurrence of their value
    (`scratch`: an all -1 array as long as the table; left as it was found)."""
    order = np.arange(len(idx))
    np.maximum.at(scratch, idx, order)
    win = scratch[idx] == order
    scratch[idx] = -1
    return win


def _hash(cols: list[np.ndarray], bits: int) -> np.ndarray:
    k = np.zeros_like(cols[0])
    for c in cols:
        k = (k * _K + c + 1) & 0xFFFFFFFFFFFF
    return (k ^ (k >> 21)) & ((1 << bits) - 1)


class Adaptation:
    """The adaptive state of one archive member: its token history (a flat array in which
    stream after stream is laid out, so a match may run on into the next stream, as the
    text does), the match and n-gram tables, the two mixers, and with `vocab_size` given
    (adaptation 2) the successor counts mixed into the LM's tables (coding/counts.py)."""

    def __init__(self, bos_id: int, n_tokens: int, vocab_size: int | None = None):
        self.bos = bos_id
        self.hist = np.full(n_tokens + 1, -1, dtype=np.int64)  # -1: not known yet
        self.used = 0  # addresses handed out to streams so far
        self.match_table = np.zeros(1 << MATCH_BITS, dtype=np.int64)
        self.ngram_pred = np.zeros(1 << NGRAM_BITS, dtype=np.int64)  # successor + 1
        self.ngram_run = np.zeros(1 << NGRAM_BITS, dtype=np.int64)
        self.scratch = np.full(1 << NGRAM_BITS, -1, dtype=np.int64)
        self.mixer = Mixer(16 + 8, _ONE // 4)  # contexts: 16 match lengths, 8 run counts
        self.hits = np.zeros(2, dtype=np.int64)  # tokens coded by a hit (statistics)
        self.counts = None if vocab_size is None else Counts(vocab_size, n_tokens)

    def group(self, lengths: list[int]) -> Group:
        base = self.used + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.used += sum(lengths)
        return Group(self, base, np.array(lengths, dtype=np.int64))


class Group:
    """A lockstep group of streams: step by step, `candidates` then `push`."""

    def __init__(self, ad: Adaptation, base: np.ndarray, lengths: np.ndarray):
        self.ad, self.base, self.lengths = ad, base, lengths
        self.ptr = np.full(len(base), -1, dtype=np.int64)  # match pointer (address)
        self.mlen = np.zeros(len(base), dtype=np.int64)

    def prev(self, n: int, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two tokens before position n of each live stream (BOS before 0), as the
        contexts of the successor counts: (two before, one before)."""
        return self._prev(n, 2, live), self._prev(n, 1, live)

    def _prev(self, n: int, k: int, live: np.ndarray) -> np.ndarray:
        """The token k places before position n of each live stream (BOS before 0)."""
        return self.ad.hist[self.base[live] + n - k] if n >= k else \
            np.full(len(live), self.ad.bos, dtype=np.int64)

    def candidates(self, n: int, live: np.ndarray):
        """Candidates at step n of the live streams: (c1, match length bucket, c2, run
        bucket, n-gram slot); -1 where a model has nothing to propose."""
        ad = self.ad
        ptr = self.ptr[live]
        c1 = np.where(ptr >= 0, ad.hist[np.maximum(ptr, 0)], -1)  # -1 also if unknown
        lb = _LENGTH_BUCKET[np.minimum(self.mlen[live], len(_LENGTH_BUCKET) - 1)]
        slot = _hash([self._prev(n, 2, live), self._prev(n, 1, live)], NGRAM_BITS)
        pred = ad.ngram_pred[slot] - 1
        c2 = np.where((pred >= 0) & (pred != c1), pred, -1)
        rb = np.minimum(ad.ngram_run[slot], 7)
        return c1, lb, c2, rb, slot

    def push(self, n: int, live: np.ndarray, tok: np.ndarray, cands) -> None:
        """Token n of each live stream is known: update history, tables and pointers."""
        ad = self.ad
        c1, _, _, _, slot = cands
        same = ad.ngram_pred[slot] == tok + 1
        run = np.where(same, np.minimum(ad.ngram_run[slot] + 1, 255), 0)
        last = _last_wins(slot, ad.scratch)
        ad.ngram_pred[slot[last]] = tok[last] + 1
        ad.ngram_run[slot[last]] = run[last]
        hit = c1 == tok
        self.ptr[live] = np.where(hit, self.ptr[live] + 1, -1)
        self.mlen[live] = np.where(hit, self.mlen[live] + 1, 0)
        addr = self.base[live] + n
        ad.hist[addr] = tok
        if n >= MIN_MATCH:  # the context before token n now has a known successor
            key = _hash([ad.hist[addr - k] for k in range(MIN_MATCH, 0, -1)], MATCH_BITS)
            np.maximum.at(ad.match_table, key, addr + 1)  # the latest in the file wins
        if n + 1 >= MIN_MATCH:  # streams without a match look for one
            look = np.flatnonzero(self.ptr[live] < 0)
            if len(look):
                self._find(live[look], addr[look])

    def _find(self, streams: np.ndarray, end: np.ndarray) -> None:
        ad = self.ad
        key = _hash([ad.hist[end - k] for k in range(MIN_MATCH - 1, -1, -1)], MATCH_BITS)
        succ = ad.match_table[key] - 1
        ok = succ > 0
        streams, end, succ = streams[ok], end[ok], succ[ok]
        if not len(streams):
            return
        back = np.arange(MAX_VERIFY)
        a, b = succ[:, None] - 1 - back, end[:, None] - back  # (m, MAX_VERIFY)
        valid = (a >= 0) & (b >= self.base[streams, None])  # stay inside this stream
        eq = valid & (ad.hist[np.maximum(a, 0)] == ad.hist[np.maximum(b, 0)])
        length = np.cumprod(eq, axis=1).sum(1)
        found = length >= MIN_MATCH
        self.ptr[streams[found]] = succ[found]
        self.mlen[streams[found]] = length[found]

    def events(self, cands, f1: np.ndarray, f2: np.ndarray, total: np.ndarray):
        """Probabilities of the two events (0 where there is no candidate) from the LM's
        frequencies of the candidates; the second is taken in the table without c1."""
        c1, lb, c2, rb, _ = cands
        has1 = c1 >= 0
        total2 = np.where(has1, total - f1, total)
        p, saved = self.ad.mixer.predict(np.concatenate([lb, rb + 16]), np.concatenate(
            [_p12(f1, total), _p12(f2, total2)]))
        m = len(c1)
        return np.where(has1, p[:m], 0), np.where(c2 >= 0, p[m:], 0), saved

    def learn(self, cands, saved, tok: np.ndarray, coded: np.ndarray) -> None:
        """Update the mixer with the events the `coded` streams actually coded."""
        c1, _, c2, _, _ = cands
        hit1, hit2 = c1 == tok, c2 == tok
        ev1 = coded & (c1 >= 0)
        ev2 = coded & (c2 >= 0) & ~hit1
        self.ad.mixer.update(saved, np.concatenate([hit1, hit2]), np.concatenate([ev1, ev2]))
        self.ad.hits += [int((ev1 & hit1).sum()), int((ev2 & hit2).sum())]
