"""The compiled lockstep passes (coding/kernels.py) seen from Python: a group's range
coders as arrays, and the Adaptation's own arrays handed to the kernels, which update
them in place. streams.py uses them when the engine runs compiled kernels (numba is
installed and LMPRESS_KERNELS allows it); its numpy passes give the same bytes.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from . import kernels
from .rangecoder import CORRUPT, RangeEncoder

AVAILABLE = kernels.AVAILABLE


def _bits(table: np.ndarray) -> int:
    return len(table).bit_length() - 1  # tables have 2**bits slots


def _counts(ad, vocab_size: int):
    """(order-1 rows, their block sums, order-2 tags, successors, counts) and the block
    size; for adaptation 1 a zero order-1 row and an empty order-2 slot in their place."""
    c = ad.counts
    if c is not None:
        return (c.n, c.blocks, c.tag, c.succ, c.cnt), c.block
    return (np.zeros((1, vocab_size), np.int32),
            np.zeros((1, -(-vocab_size // 64)), np.int64), np.zeros(1, np.int64),
            np.full((1, 8), -1, np.int32), np.zeros((1, 8), np.int32)), 64


def decoder_arrays(bodies: list[bytes]) -> tuple:
    """Range decoders of `bodies` as arrays (as RangeDecoder starts): (all the bytes
    and a zero, offsets (B + 1), code, range, read position)."""
    off = np.concatenate([[0], np.cumsum([len(d) for d in bodies])]).astype(np.int64)
    buf = np.frombuffer(bytearray(b"".join(bodies) + b"\0"), dtype=np.uint8)
    code = np.array([int.from_bytes(d[:8].ljust(8, b"\0"), "big") for d in bodies],
                    dtype=np.uint64)
    B = len(bodies)
    return (buf, off, code, np.full(B, (1 << 64) - 1, dtype=np.uint64),
            np.full(B, 8, dtype=np.int64))


class GroupDecoder:
    """One lockstep group of streams.decode_adaptive: `step` decodes toks[live, n]."""

    def __init__(self, ad, grp, bodies: list[bytes | None], toks: np.ndarray,
                 vocab_size: int):
        self.ad, self.toks = ad, toks  # (B, L): known streams' tokens are there already
        self.coded = np.array([d is not None for d in bodies])
        self.lengths = np.array([len(d or b"") for d in bodies], dtype=np.int64)
        self.dec = decoder_arrays([d or b"" for d in bodies])
        self.grp = (grp.base, grp.ptr, grp.mlen)
        self.cs, block = _counts(ad, vocab_size)
        self.params = (ad.counts is not None, block, _bits(ad.match_table),
                       _bits(ad.ngram_pred), _bits(self.cs[2]))

    def step(self, n: int, live: np.ndarray, f: np.ndarray) -> None:
        """Decode toks[live, n] from the LM's tables f (B, V) of all streams."""
        ad = self.ad
        state = (ad.hist, ad.bos, ad.match_table, ad.ngram_pred, ad.ngram_run,
                 ad.mixer.w, ad.mixer.hit, ad.hits)
        status, value = kernels.decode_step(n, live, np.ascontiguousarray(f, np.int64),
                                            self.toks, self.coded, state, self.grp,
                                            self.cs, self.params, self.dec)
        if status == kernels.BAD_CODE:
            raise FormatError(CORRUPT)
        if status == kernels.BAD_TOTAL:
            raise ValueError(f"bad total {value}")

    def overrun(self) -> np.ndarray:
        """Bytes each stream's decoder read past its data (RangeDecoder.overrun)."""
        return np.maximum(0, self.dec[4] - self.lengths)


class GroupEncoder:
    """AdaptiveEncoder.encode_group's passes for one group of known tokens (B, L): pass 1
    (every step's candidates, then its push) at construction, `code` is pass 2."""

    def __init__(self, ad, grp, tok: np.ndarray, vocab_size: int):
        self.ad, self.tok, self.lengths = ad, tok, grp.lengths
        self.cand = np.full(tok.shape + (7,), -1, dtype=np.int64)  # candidates' rows
        kernels.encode_candidates(
            tok, grp.lengths, (ad.hist, ad.bos, ad.match_table, ad.ngram_pred,
                               ad.ngram_run), (grp.base, grp.ptr, grp.mlen),
            (_bits(ad.match_table), _bits(ad.ngram_pred)), self.cand)
        self.extra = self.cand[..., [0, 2]]  # (B, L, 2) c1, c2; -1 past a stream's end
        self.cs, block = _counts(ad, vocab_size)
        self.params = (ad.counts is not None, block, _bits(self.cs[2]), vocab_size)

    def contexts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(two before, one before, token) of every coded position, step by step."""
        live = (np.arange(self.tok.shape[1]) < self.lengths[:, None]).T  # (L, B)
        rows = self.cand.transpose(1, 0, 2)[live]
        return rows[:, 5], rows[:, 6], self.tok.T[live]

    def code(self, nums, skip: np.ndarray):
        """Pass 2 with the LM's (starts, freqs, totals): per stream (payload, bits), None
        where `skip`; and each token's bits (B, L)."""
        B, L = self.tok.shape
        cap = 16 * L + 16  # a token shifts out at most 9 bytes (kernels._encode)
        enc = (np.zeros(B, np.uint64), np.zeros(B, np.int64),
               np.full(B, (1 << 64) - 1, dtype=np.uint64), np.zeros(B, np.int64),
               np.ones(B, np.int64), np.zeros((B, cap), np.uint8), np.zeros(B, np.int64))
        costs, bits = np.zeros((B, L)), np.zeros(B)
        ad = self.ad
        bad = kernels.encode_steps(
            self.tok, self.lengths, self.cand,
            tuple(np.ascontiguousarray(a, np.int64) for a in nums), skip,
            (ad.mixer.w, ad.mixer.hit, ad.hits), self.cs, self.params, enc, costs, bits)
        if bad >= 0:
            raise ValueError(f"bad symbol interval at step {bad}")
        low, carry, rng, cache, pending, out, n_out = enc
        payloads = [RangeEncoder.resumed(int(low[b]) + (int(carry[b]) << 64), int(rng[b]),
                                         int(cache[b]), int(pending[b]),
                                         out[b, :n_out[b]].tobytes()).finish()
                    for b in range(B)]
        return [None if skip[b] else (payloads[b], float(bits[b])) for b in range(B)], costs
