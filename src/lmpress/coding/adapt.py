"""Online adaptation ("short-term memory"): integer models that learn from the data being
coded, mixed with the language model by a fixed-point logistic mixer.

Two adaptive models propose one candidate token each:

- the **match model** finds the longest earlier occurrence of the last `MIN_MATCH` tokens
  (anywhere in the archive member, any distance) and predicts the token that followed it;
- the **token n-gram model** remembers, for each hashed pair of previous tokens, the token
  that followed that pair last time and how many times in a row it was right.

Each candidate becomes a binary event "the next token is c" whose probability a PAQ-style
mixer computes from stretch(p_LM(c)), stretch(the model's adaptive hit rate) and a bias,
with weights chosen by the match length or hit count and by the LM's own confidence. If
no event hits, the token is coded with the LM's table with the candidates' frequencies
removed, so the decomposition is an exact probability distribution over the vocabulary.

Streams of an archive advance in lockstep groups (docs/FORMAT.md). At step n every stream
of a group is predicted from the same state; then the streams update it in stream order.
So a stream sees every token of earlier groups and the first n tokens of every stream of
its own group: the encoder, which knows all tokens in advance, and the decoder, which
discovers them step by step, see exactly the same history. Everything is integer
arithmetic on Python ints and `array` tables: identical on every machine.
"""

from __future__ import annotations

from array import array

MIN_MATCH = 4  # tokens hashed to find a match (about 16 bytes of text)
MAX_VERIFY = 32  # match lengths are measured up to this many tokens when found
MATCH_BITS = 22  # match table: 4 M slots of (stream << 32 | position)
NGRAM_BITS = 20  # n-gram table: 1 M slots of (successor + 1, run count)
PROB_BITS = 12  # binary events are coded with probabilities out of 4096
_ONE = 1 << 16  # mixer weights: 16 fractional bits
_LR_SHIFT = 10  # mixer learning rate: dw = x * err >> 10 (about 0.016 in real units)
_APM_RATE = 5  # adaptive hit rates move 1/32 of the way per event


def _squash_table() -> list[int]:
    """p = 4096 / (1 + e^-x), x in 1/256 units, by PAQ's integer interpolation."""
    knots = (1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
             2549, 2994, 3348, 3607, 3785, 3901, 3975, 4024, 4050, 4068, 4079, 4085, 4089,
             4092, 4093, 4094)
    out = []
    for d in range(-2047, 2048):
        w = d & 127
        i = (d >> 7) + 16
        out.append((knots[i] * (128 - w) + knots[i + 1] * w + 64) >> 7)
    return out


SQUASH = _squash_table()  # index d + 2047


def _stretch_table() -> list[int]:
    """The inverse of squash: stretch(p) = ln(p / (1 - p)) in 1/256 units, p in 1/4096."""
    out, pi = [0] * 4096, 0
    for x in range(-2047, 2048):
        v = SQUASH[x + 2047]
        for p in range(pi, v + 1):
            out[p] = x
        pi = max(pi, v + 1)
    for p in range(pi, 4096):
        out[p] = 2047
    return out


STRETCH = _stretch_table()


def squash(d: int) -> int:
    return SQUASH[max(-2047, min(2047, d)) + 2047]


def _length_bucket(n: int) -> int:
    """Match length -> 0..15, two buckets per octave (4, 6, 8, 12, 16, 24, ...)."""
    if n < 4:
        return 0
    b = n.bit_length()  # 3 for 4..7
    half = (n >> (b - 2)) & 1
    return min(15, 2 * (b - 3) + half + 1)


def _confidence(p12: int) -> int:
    return 0 if p12 < 410 else 1 if p12 < 2458 else 2


class Mixer:
    """Weights and hit rates of the binary events; the same updates on both sides."""

    N_INPUTS = 3

    def __init__(self, n_contexts: int, init_model_weight: int):
        self.w = [[_ONE, init_model_weight, 0] for _ in range(n_contexts * 3)]
        self.hit = [1 << 15] * n_contexts  # adaptive P(hit) per context, 16 bits

    def predict(self, ctx: int, p_lm12: int) -> tuple[int, int, tuple[int, int, int]]:
        """P(hit) in 1/4096, the weight set used and the inputs (for `update`)."""
        x = (STRETCH[p_lm12], STRETCH[self.hit[ctx] >> 4], 256)
        s = ctx * 3 + _confidence(p_lm12)
        w = self.w[s]
        p = squash((w[0] * x[0] + w[1] * x[1] + w[2] * x[2]) >> 16)
        return p, s, x

    def update(self, ctx: int, s: int, x: tuple[int, int, int], p: int, y: int) -> None:
        err = (y << PROB_BITS) - p
        w = self.w[s]
        for i in range(3):
            w[i] += (x[i] * err) >> _LR_SHIFT
        h = self.hit[ctx]
        self.hit[ctx] = h + (((y << 16) - h) >> _APM_RATE)


def _p12(f: int, total: int) -> int:
    return max(1, min(4095, (f << PROB_BITS) // total))


class Event:
    """One binary decision "next token == cand" as coded: its probability and context."""

    __slots__ = ("cand", "mixer", "ctx", "s", "x", "p")

    def __init__(self, cand, mixer, ctx, s, x, p):
        self.cand, self.mixer, self.ctx, self.s, self.x, self.p = cand, mixer, ctx, s, x, p


class Adaptation:
    """The shared adaptive state of one archive member (all its LM streams)."""

    def __init__(self, bos_id: int):
        self.bos = bos_id
        self.hist: list[array] = []  # tokens of every stream, in stream order
        self.match_table = array("q", bytes(8 << MATCH_BITS))
        self.ngram_pred = array("i", bytes(4 << NGRAM_BITS))
        self.ngram_run = array("B", bytes(1 << NGRAM_BITS))
        self.ptr: list[list[int]] = []  # per stream: [stream, position, length] or []
        self.match_mixer = Mixer(16, _ONE // 4)
        self.ngram_mixer = Mixer(8, _ONE // 4)
        self.hits = [0, 0]  # events that hit: match, n-gram (statistics)

    def add_stream(self) -> int:
        self.hist.append(array("H"))
        self.ptr.append([])
        return len(self.hist) - 1

    # -- candidates (depend on tokens only) ---------------------------------------------

    def candidates(self, sid: int) -> tuple[int, int, int, int]:
        """(match candidate, its length bucket, n-gram candidate, its run bucket);
        -1 where a model has nothing to propose."""
        c1 = c2 = -1
        lb = rb = 0
        ptr = self.ptr[sid]
        if ptr:
            src = self.hist[ptr[0]]
            if ptr[1] < len(src):
                c1, lb = src[ptr[1]], _length_bucket(ptr[2])
        h = self.hist[sid]
        a = h[-2] if len(h) >= 2 else self.bos
        b = h[-1] if h else self.bos
        slot = ((a * 0x9E3779B1) ^ (b * 0x85EBCA77) ^ (a >> 3)) & ((1 << NGRAM_BITS) - 1)
        pred = self.ngram_pred[slot] - 1
        if pred >= 0 and pred != c1:
            c2, rb = pred, min(7, self.ngram_run[slot])
        return c1, lb, c2, rb

    def push(self, sid: int, tok: int, c1: int) -> None:
        """Append the stream's next token and update the match and n-gram models."""
        h = self.hist[sid]
        a = h[-2] if len(h) >= 2 else self.bos
        b = h[-1] if h else self.bos
        slot = ((a * 0x9E3779B1) ^ (b * 0x85EBCA77) ^ (a >> 3)) & ((1 << NGRAM_BITS) - 1)
        if self.ngram_pred[slot] == tok + 1:
            self.ngram_run[slot] = min(255, self.ngram_run[slot] + 1)
        else:
            self.ngram_pred[slot], self.ngram_run[slot] = tok + 1, 0
        ptr = self.ptr[sid]
        if ptr and c1 == tok:
            ptr[1] += 1
            ptr[2] += 1
        elif ptr:
            ptr.clear()
        h.append(tok)
        n = len(h)
        if n > MIN_MATCH:  # the context ending before `tok` now has a visible successor
            key = _match_key(h, n - 1)
            self.match_table[key] = (sid << 32 | (n - 1)) + 1
        if not ptr and n >= MIN_MATCH:
            entry = self.match_table[_match_key(h, n)] - 1
            if entry >= 0:
                j, pos = entry >> 32, entry & 0xFFFFFFFF
                length = _common_suffix(self.hist[j], pos, h, n)
                if length >= MIN_MATCH:
                    ptr += [j, pos, length]

    # -- the binary events ------------------------------------------------------------------

    def events(self, c1: int, lb: int, c2: int, rb: int,
               f1: int, f2: int, total: int) -> list[Event]:
        """The events for this step given the LM's frequencies of the candidates (f1, f2)
        in a table of `total`; the second event's LM probability excludes the first."""
        out = []
        if c1 >= 0:
            p, s, x = self.match_mixer.predict(lb, _p12(f1, total))
            out.append(Event(c1, self.match_mixer, lb, s, x, p))
            total -= f1
        if c2 >= 0:
            p, s, x = self.ngram_mixer.predict(rb, _p12(f2, total))
            out.append(Event(c2, self.ngram_mixer, rb, s, x, p))
        return out

    def learn(self, events: list[Event], tok: int) -> None:
        for i, e in enumerate(events):
            y = int(e.cand == tok)
            e.mixer.update(e.ctx, e.s, e.x, e.p, y)
            if y:
                self.hits[i if e.mixer is self.match_mixer else 1] += 1
                return


def _match_key(h: array, end: int) -> int:
    """Hash of the MIN_MATCH tokens before position `end`."""
    k = 0
    for t in h[end - MIN_MATCH:end]:
        k = (k * 0x2F0B3 + t + 1) & 0xFFFFFFFFFFFF
    return (k ^ (k >> 21)) & ((1 << MATCH_BITS) - 1)


def _common_suffix(a: array, pa: int, b: array, pb: int) -> int:
    """How many tokens before a[pa] and b[pb] agree (at most MAX_VERIFY)."""
    n = 0
    while n < MAX_VERIFY and n < pa and n < pb and a[pa - 1 - n] == b[pb - 1 - n]:
        n += 1
    return n
