"""The compiled lockstep passes (coding/kernels.py through coding/compiled.py) code the
same bytes, decode the same tokens and leave exactly the same adaptive state as the numpy
passes of streams.py, on adversarial groups."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TEXT

from lmpress.codec import Compressor, Decompressor
from lmpress.coding import adapt, compiled, counts, kernels
from lmpress.coding.adapt import Adaptation
from lmpress.coding.rangecoder import RangeDecoder, RangeEncoder
from lmpress.engine import kernels as engine_kernels
from lmpress.errors import LmpressError
from lmpress.streams import (
    AdaptiveEncoder,
    _decode_token,
    _encode_token,
    _events,
    decode_adaptive,
    table_numbers,
)

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


class BigramEngine:
    """A stand-in language model: each table depends only on the previous token. Some
    rows put a huge frequency at the table's first or last token (totals near 2**36)."""

    stepwise = False

    def __init__(self, V: int, compiled: bool):
        rng = np.random.default_rng(11)
        self.base = rng.integers(1, 1 << 12, (V, V)) * rng.integers(1, 64, (V, 1))
        self.base[::3, 0] = 1 << 35
        self.base[1::5, V - 1] = 1 << 33
        self.base[2::7, 5] = 1 << 20  # a peak inside
        self.cfg = SimpleNamespace(bos_id=1, vocab_size=V, window=7)
        self.tok = SimpleNamespace(n_bytes=np.ones(V, dtype=np.int64))
        self.kernels = engine_kernels if compiled else None  # what selects the step

    def new_state(self, B):
        return None

    def tables(self, st, cur):
        return self.base[cur]  # (B, l, V)

    def numbers(self, st, inp, want):
        return table_numbers(self.base[inp], want)


def _streams(V: int, seed: int) -> list[np.ndarray]:
    """Streams of different lengths: repeated phrases (matches, n-gram runs, matches
    longer than MAX_VERIFY), the table's edge tokens, noise, and one-token streams."""
    rng = np.random.default_rng(seed)
    phrase = rng.integers(0, V, 45)
    out = []
    for n in (60, 1, 37, 80, 2, 55, 70):
        s = np.concatenate([phrase[:rng.integers(5, 45)],
                            rng.choice([0, V - 1, 3], 6), phrase, rng.integers(0, V, 9),
                            phrase, phrase])
        out.append(s[rng.integers(0, 30):][:n].astype(np.int64))
    return out


def _state(ad: Adaptation) -> dict:
    s = {k: getattr(ad, k) for k in ("hist", "match_table", "ngram_pred", "ngram_run",
                                      "hits")}
    s.update(w=ad.mixer.w, hit=ad.mixer.hit)
    if ad.counts is not None:
        s.update({k: getattr(ad.counts, k) for k in ("n", "blocks", "tag", "succ", "cnt")})
    return s


class Recorder:
    """Keeps the encoder's per-token costs (streams.py's recorder interface)."""

    def __init__(self):
        self.seen = []

    def batch(self, positions):
        return None

    def costs(self, bits):
        self.seen.append(bits)


def _code(V, use_counts, groups, stored, compiled=False):
    """Encode `groups` of streams, storing the `stored` ones otherwise: the encoder, the
    number of tokens, the decoder's jobs, and each group's (payload, bits) or None."""
    engine = BigramEngine(V, compiled)
    n_tokens = sum(len(s) for g in groups for s in g)
    enc = AdaptiveEncoder(engine, 8, n_tokens, lambda n: None, Recorder(), use_counts)
    jobs, outs = [], []
    for g, group in enumerate(groups):
        alt = [0 if (g, b) in stored else 1 << 30 for b in range(len(group))]
        outs.append(enc.encode_group(group, alt, fallback=True))
        jobs.append([(len(s), s if o is None else None, b"" if o is None else o[0])
                     for s, o in zip(group, outs[-1])])
    return enc, n_tokens, jobs, outs


def _decode(V, use_counts, n_tokens, jobs, compiled):
    engine = BigramEngine(V, compiled)
    ad = Adaptation(engine.cfg.bos_id, n_tokens, V if use_counts else None)
    try:
        toks = [decode_adaptive(engine, ad, group, lambda n: None) for group in jobs]
    except LmpressError as e:
        return (type(e), str(e)), ad
    return [t.tolist() for group in toks for t in group], ad


@pytest.mark.parametrize("small", [True, False], ids=["colliding-tables", "full-size"])
@pytest.mark.parametrize("use_counts", [True, False], ids=["adapt2", "adapt1"])
def test_compiled_step_decodes_and_learns_like_numpy(small, use_counts, monkeypatch):
    if small:  # every table slot shared by many contexts; order-1 rows in 5 blocks
        for mod, name, v in ((adapt, "NGRAM_BITS", 3), (adapt, "MATCH_BITS", 5),
                             (counts, "ORDER2_BITS", 2), (counts, "BLOCK", 8)):
            monkeypatch.setattr(mod, name, v)
    V = 40
    groups = [_streams(V, 1), _streams(V, 2)[:5]]
    stored = {(0, 2), (1, 0), (1, 4)}  # coded again without them (the fallback's retry)
    enc, n_tokens, jobs, outs = _code(V, use_counts, groups, stored)
    enc_c, _, _, outs_c = _code(V, use_counts, groups, stored, compiled=True)
    assert outs_c == outs  # the same payloads and bits (None: stored)
    assert all(np.array_equal(a, b) for a, b in zip(enc.recorder.seen, enc_c.recorder.seen))
    want = [s.tolist() for g in groups for s in g]
    got_np, ad_np = _decode(V, use_counts, n_tokens, jobs, compiled=False)
    got_c, ad_c = _decode(V, use_counts, n_tokens, jobs, compiled=True)
    assert got_np == want and got_c == want
    assert ad_np.hits.sum() > 50  # the events were exercised
    for name, a in _state(ad_np).items():
        for other in (ad_c, enc.ad, enc_c.ad):  # decoders' and encoders' states agree
            assert np.array_equal(a, _state(other)[name]), name


def test_damaged_streams_fail_the_same_way():
    """Flipped bits (decoded to other tokens, with the same state), a value past the
    table (FormatError) and a truncated stream (read past its end: ChecksumError)."""
    V = 40
    _, n_tokens, jobs, _ = _code(V, True, [_streams(V, 3)], stored=set())
    rng = np.random.default_rng(4)
    outcomes = []
    for damage in ["flip"] * 6 + ["ones", "cut"]:
        bad = [list(g) for g in jobs]
        b = int(rng.integers(0, len(bad[0]))) if damage == "flip" else 3
        n, known, body = bad[0][b]
        body = bytearray(body)
        if damage == "flip":
            body[int(rng.integers(0, len(body)))] ^= 1 << int(rng.integers(0, 8))
        bad[0][b] = (n, known, bytes(body) if damage == "flip" else
                     b"\xff" * 12 if damage == "ones" else bytes(body[:1]))
        got_np, ad_np = _decode(V, True, n_tokens, bad, compiled=False)
        got_c, ad_c = _decode(V, True, n_tokens, bad, compiled=True)
        assert got_np == got_c
        outcomes.append(got_np[0].__name__ if type(got_np) is tuple else "tokens")
        if type(got_np) is not tuple:
            assert all(np.array_equal(a, _state(ad_c)[k])
                       for k, a in _state(ad_np).items())
    assert outcomes[-2:] == ["FormatError", "ChecksumError"] and "tokens" in outcomes


def test_one_token_with_candidates_at_the_table_edges():
    """Events, then the table without the candidates (first, last, neighbouring or the
    biggest tokens), against streams._decode_token; the decoders' states agree."""
    rng = np.random.default_rng(7)
    V, n = 9, 400
    f = rng.integers(1, 1 << rng.integers(1, 36, (n, 1)), (n, V))
    add1, add2 = rng.integers(0, 50, (n, V)), np.zeros((n, V), np.int64)
    add2[np.arange(n), rng.integers(0, V, n)] = rng.integers(0, 1 << 20, n)
    mult1 = rng.integers(0, 1000, n)
    mixed = f + mult1[:, None] * add1 + add2
    picks = [-1, 0, V - 1, 1, V - 2]
    cases = []
    enc = RangeEncoder()
    for i in range(n):
        c1, c2 = rng.choice(picks, 2, replace=False)
        if rng.random() < 0.2:
            c1 = int(np.argmax(mixed[i]))
        c1, c2 = int(c1), -1 if c2 == c1 else int(c2)
        q1, q2 = (int(q) for q in rng.integers(1, 4096, 2))
        tok = int(rng.choice([max(c1, 0), max(c2, 0), 0, V - 1, int(rng.integers(0, V))]))
        cum = np.cumsum(mixed[i])
        excl = [(int(cum[c] - mixed[i, c]), int(mixed[i, c])) for c in (c1, c2) if c >= 0]
        _encode_token(enc, _events(c1, q1, c2, q2), tok, int(cum[tok] - mixed[i, tok]),
                      int(mixed[i, tok]), int(cum[-1]), excl)
        cases.append((c1, q1, c2, q2, tok, cum, excl))
    data = enc.finish()
    ref, dec = RangeDecoder(data), compiled.decoder_arrays([data])
    blk = 4
    for i, (c1, q1, c2, q2, tok, cum, excl) in enumerate(cases):
        row = (f[i], np.add.reduceat(f[i], np.arange(0, V, blk)), add1[i],
               np.add.reduceat(add1[i], np.arange(0, V, blk)), int(mult1[i]), add2[i],
               np.add.reduceat(add2[i], np.arange(0, V, blk)), blk)
        assert _decode_token(ref, _events(c1, q1, c2, q2), mixed[i], cum, excl) == tok
        got = kernels.decode_token(dec, 0, row, c1, q1, mixed[i, max(c1, 0)], c2, q2,
                                   mixed[i, max(c2, 0)], int(cum[-1]))
        assert got == (tok, 0)
        assert (int(dec[2][0]), int(dec[3][0]), int(dec[4][0])) == \
            (ref.code, ref.range, ref.pos)


def test_the_compiled_passes_are_taken_with_kernels(tiny_model, monkeypatch):
    """With LMPRESS_KERNELS=compiled the coder runs the compiled passes (and numpy with
    =numpy), to the same archive, stored streams included; each decodes the other's."""
    calls = []
    for cls, name in ((compiled.GroupDecoder, "step"), (compiled.GroupEncoder, "code")):
        fn = getattr(cls, name)
        monkeypatch.setattr(cls, name, lambda self, *a, fn=fn: calls.append(1) or fn(self, *a))
    data = TEXT.encode() + bytes(range(256)) * 3 + TEXT.encode()[:900]
    archives = {}
    for mode in ("numpy", "compiled"):
        monkeypatch.setenv("LMPRESS_KERNELS", mode)
        calls.clear()
        archives[mode] = Compressor(tiny_model, segment_bytes=300, batch_size=4).compress(data)
        assert Decompressor(tiny_model).decompress(archives["numpy"]) == data
        assert bool(calls) == (mode == "compiled")
    assert archives["numpy"] == archives["compiled"]


def test_compiled_range_encoder_carries_like_python_integers():
    """kernels._encode against RangeEncoder, state by state: a 65-bit low (carries, runs
    of 0xFF bytes), tiny and huge totals, symbols at the top of the interval."""
    rng = np.random.default_rng(9)
    ref = RangeEncoder()
    enc = (np.zeros(1, np.uint64), np.zeros(1, np.int64), np.full(1, (1 << 64) - 1, np.uint64),
           np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros((1, 60_000), np.uint8),
           np.zeros(1, np.int64))
    carries = 0
    for i in range(5000):
        total = int(rng.choice([2, 4096, 1 << 24, 1 << 40, int(rng.integers(2, 1 << 40))]))
        freq = int(rng.integers(1, total)) if i % 3 else 1
        start = total - freq if rng.random() < 0.6 else int(rng.integers(0, total - freq + 1))
        ref.encode(start, freq, total)
        assert kernels._encode(enc, 0, start, freq, total)
        low, carry, rng_, cache, pending, out, n_out = enc
        carries += int(carry[0])
        assert (int(low[0]) + (int(carry[0]) << 64), int(rng_[0]), int(cache[0]),
                int(pending[0])) == (ref.low, ref.range, ref.cache, ref.cache_size)
        assert out[0, :n_out[0]].tobytes() == bytes(ref.out)
    assert carries > 10
    assert not kernels._encode(enc, 0, 3, 2, 4)  # start + freq > total
    # a carry while the low 64 bits start with 0xFF: rare in random data, so set up
    for low, range_, cache, pending in (((1 << 65) - (1 << 56) + 5, 1 << 55, 0x7F, 3),
                                        ((1 << 64) + 9, 1 << 50, 0xFF, 1)):
        ref = RangeEncoder.resumed(low, range_, cache, pending, b"\x01")
        state = (np.array([low & ((1 << 64) - 1)], np.uint64), np.array([low >> 64]),
                 np.array([range_], np.uint64), np.array([cache]), np.array([pending]),
                 np.zeros((1, 64), np.uint8), np.array([1]))
        state[5][0, 0] = 1
        for _ in range(3):
            ref.encode(1, 1, 3)
            kernels._encode(state, 0, 1, 1, 3)
        assert state[5][0, :state[6][0]].tobytes() == bytes(ref.out)
        assert (int(state[0][0]) + (int(state[1][0]) << 64), int(state[2][0])) == \
            (ref.low, ref.range)
