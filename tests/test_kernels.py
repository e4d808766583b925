"""The compiled kernels (engine/kernels.py) give exactly the integers of the plain numpy
path: each kernel on random and extreme inputs, and whole models (tables, archives)."""

import numpy as np
import pytest
from conftest import TEXT

from lmpress.codec import Compressor, Decompressor
from lmpress.engine import fixed, kernels
from lmpress.engine.backends import KERNELS_MIN_BYTES, NumpyBackend
from lmpress.engine.transformer import IntegerLM, StreamState, _narrow_ring, _ring_write
from lmpress.model.config import ModelConfig
from lmpress.model.quantize import quantize_model, seeded_float_weights
from lmpress.streams import table_numbers

FP = fixed.FixedPoint()
PLAIN, COMPILED = NumpyBackend(compiled=False), NumpyBackend(compiled=True)
RNG = np.random.default_rng(2026)


def test_kernels_are_available_and_chosen():
    assert kernels.AVAILABLE, "numba is a dependency; the compiled kernels must load"
    assert PLAIN.kernels is None and COMPILED.kernels is kernels


def test_auto_loads_kernels_only_for_large_inputs(monkeypatch):
    monkeypatch.delenv("LMPRESS_KERNELS", raising=False)
    xp = NumpyBackend()
    xp.prepare(100)
    assert xp.kernels is None
    xp.prepare(KERNELS_MIN_BYTES)
    assert xp.kernels is kernels
    monkeypatch.setenv("LMPRESS_KERNELS", "numpy")
    never = NumpyBackend()
    never.prepare(10**9)
    assert never.kernels is None
    monkeypatch.setenv("LMPRESS_KERNELS", "fast")
    with pytest.raises(Exception, match="LMPRESS_KERNELS='fast' is not a choice"):
        NumpyBackend()


def _exp_table(n: int = 24 * 256, frac: int = 16) -> np.ndarray:
    return np.array([round(2**frac * np.exp(-i / 256)) for i in range(n)] + [0], np.int64)


def _ints(shape, bound):
    """Random integers of every size up to `bound`, both signs, with zeros and extremes."""
    x = RNG.integers(-bound, bound + 1, shape) >> RNG.integers(0, 40, shape)
    x.flat[:3] = (bound, -bound, 0)
    return x


@pytest.mark.parametrize("scale", [1, 2**10, 2**20, 2**40])
def test_freq_table(scale):
    logits = _ints((3, 5, 300), scale)
    logits[0, 0] = 0  # a flat row
    logits[0, 1] = -(2**50)
    logits[0, 1, 7] = 2**50  # one dominant token, the rest far below the table's range
    # the 28-bit table of converted models: e << 28 passes 2**53, integer division
    for table in (_exp_table(), _exp_table(3000), _exp_table(frac=28)):
        assert np.array_equal(fixed.freq_table(PLAIN, logits, table, FP),
                              fixed.freq_table(COMPILED, logits, table, FP))


@pytest.mark.parametrize("scale", [1, 2**10, 2**20, 2**40])
def test_freq_starts_equal_the_tables(scale):
    """The encoder's fused kernel gives the table's (start, freq) of each wanted id and
    the totals, without the table; tables whose quotients need integer division: None."""
    logits = _ints((3, 5, 300), scale)
    logits[0, 0] = 0
    logits[0, 1] = -(2**50)
    logits[0, 1, 7] = 2**50
    want = RNG.integers(0, 300, (3, 5, 3))
    want[0, :, :3] = (0, 7, 299)  # the ends and the dominant token
    shift = FP.logit_frac - FP.exp_step_bits
    for table in (_exp_table(), _exp_table(3000)):
        got = kernels.freq_starts(logits, want, table, shift, FP.freq_bits)
        expect = table_numbers(fixed.freq_table(PLAIN, logits, table, FP), want)
        for g, e in zip(got, expect, strict=True):
            assert np.array_equal(g, e)
    assert kernels.freq_starts(logits, want, _exp_table(frac=28), shift, FP.freq_bits) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_requant(dtype):
    k = 192
    acc = _ints((4, 7, 50), k * 127 * 127).astype(dtype)
    w_mult = RNG.integers(1, 2**21, 50).astype(np.float64)
    row_m = RNG.integers(-5, 2**24 + 5, (4, 7, 1))
    for s2 in (4, 16, 0, -3):
        a = PLAIN.requant_f64(acc, w_mult, row_m, 20, s2)
        b = COMPILED.requant_f64(acc, w_mult, row_m, 20, s2)
        assert np.array_equal(a, b)
        part = acc[..., 10:30]  # a column slice, as _linear_parts passes
        assert np.array_equal(PLAIN.requant_f64(part, w_mult[10:30], row_m, 20, s2),
                              COMPILED.requant_f64(part, w_mult[10:30], row_m, 20, s2))


@pytest.mark.parametrize("bound", [0, 1, 2**12, 2**30, 2**45])
def test_norm_and_row_quantization(bound):
    x = _ints((3, 6, 40), bound)
    gain = RNG.integers(0, 2**13, 40)
    for fn, args in ((fixed.rms_norm_quant, (gain, FP)),
                     (fixed.quant_rows, (10, FP)), (fixed.quant_rows, (30, FP))):
        qa, ma = fn(PLAIN, x, *args)
        qb, mb = fn(COMPILED, x, *args)
        assert np.array_equal(qa, qb) and np.array_equal(ma, mb)


def test_swiglu():
    gate = _ints((5, 64), 2**20)  # hidden_frac 10: -1024 .. 1024 in real units
    up = _ints((5, 64), 2**14)
    silu = RNG.integers(-300, 2**14, 2 * FP.silu_range * 256 + 1)
    assert np.array_equal(fixed.swiglu(PLAIN, gate, up, silu, FP),
                          fixed.swiglu(COMPILED, gate, up, silu, FP))


def test_softmax_weights():
    scores = _ints((2, 3, 4, 9), 2**28)
    valid = RNG.random((4, 9)) < 0.6
    valid[0] = False  # a row with no visible key
    for mask in (valid, None):
        assert np.array_equal(fixed.softmax_weights(PLAIN, scores, mask, 20, _exp_table(), FP),
                              fixed.softmax_weights(COMPILED, scores, mask, 20, _exp_table(),
                                                    FP))


def _variants(tiny_model):
    """The tiny model and a grouped-query one with q/k/v biases (Qwen2-like) whose window
    is shorter than the text, so the ring wraps."""
    dims = dict(vocab_size=tiny_model.config.vocab_size, n_layer=2, n_head=4, n_embd=32,
                n_hidden=48, window=8, max_positions=256)
    cfg = ModelConfig(**dims, n_kv_head=2, qkv_bias=True)
    f = seeded_float_weights(ModelConfig(**dims), 11)
    for i in range(cfg.n_layer):
        b = f"blocks.{i}.attn."
        for n in ("wk", "wv"):  # 2 of the 4 heads' rows
            f[b + n + ".weight"] = f[b + n + ".weight"][:16]
        for n, width in (("bq", 32), ("bk", 16), ("bv", 16)):
            f[b + n] = RNG.normal(0, 0.5, width)
    return [tiny_model, quantize_model(f, cfg, tiny_model.tokenizer_json, "tiny-gqa")]


def test_model_tables_equal_chunked_and_stepwise(tiny_model):
    for weights in _variants(tiny_model):
        tokens = RNG.integers(0, weights.config.vocab_size, (3, 40))
        out = []
        for xp, chunk in ((PLAIN, weights.config.window), (COMPILED, weights.config.window),
                          (PLAIN, 1), (COMPILED, 1), (COMPILED, 3)):
            lm = IntegerLM(weights, xp)
            st = lm.new_state(3)
            out.append(np.concatenate(
                [lm.freqs(lm.forward(st, tokens[:, c:c + chunk]))
                 for c in range(0, tokens.shape[1], chunk)], 1))
        for other in out[1:]:
            assert np.array_equal(out[0], other)


def test_archives_identical_with_and_without_kernels(tiny_model, monkeypatch):
    data = TEXT.encode()
    archives = {}
    for mode in ("numpy", "compiled"):
        monkeypatch.setenv("LMPRESS_KERNELS", mode)
        archives[mode] = Compressor(tiny_model, fallback=False).compress(data)
        assert Decompressor(tiny_model).decompress(archives["numpy"]) == data
    assert archives["numpy"] == archives["compiled"]


@pytest.mark.parametrize("adapt", [True, False])
def test_threads_give_the_same_archive(tiny_model, monkeypatch, adapt):
    """Streams split across threads (each with its share of the batch) code the same
    bytes, with the compiled kernels and without."""
    data = TEXT.encode() * 2
    for mode in ("numpy", "compiled"):
        monkeypatch.setenv("LMPRESS_KERNELS", mode)
        one = Compressor(tiny_model, fallback=False, adapt=adapt, segment_bytes=300)
        three = Compressor(tiny_model, fallback=False, adapt=adapt, segment_bytes=300,
                           threads=3)
        archive = one.compress(data)
        assert three.compress(data) == archive
        assert Decompressor(tiny_model, threads=3).decompress(archive) == data


def test_rings_narrow_to_int16_and_widen_when_a_value_does_not_fit():
    zeros = np.zeros((2, 1, 4, 3))
    st = StreamState(0, [zeros.copy()], [zeros.copy()], np.full(4, -1))
    small = np.full((2, 1, 1, 3), 2.0**15 - 1)
    _narrow_ring(st, 0)
    _ring_write(st, 0, np.array([0]), small, -small)
    assert st.keys[0].dtype == np.int16 and st.values[0][0, 0, 0, 0] == -(2**15 - 1)
    big = np.full((2, 1, 1, 3), 2.0**20)
    _ring_write(st, 0, np.array([1]), small, big)
    assert st.keys[0].dtype == np.float32 and st.values[0].dtype == np.float32
    assert st.values[0][0, 0, 0, 0] == -(2**15 - 1) and st.values[0][0, 0, 1, 0] == 2**20
    wide = StreamState(0, [zeros + 2**16], [zeros.copy()], np.full(4, -1))
    _narrow_ring(wide, 0)  # a chunk-written ring too wide
    _ring_write(wide, 0, np.array([0]), small, small)
    assert wide.keys[0].dtype == np.float32 and wide.keys[0][0, 0, 3, 0] == 2**16


def test_steps_then_chunks_then_steps_give_the_same_tables(tiny_model):
    """A decoding step's narrow ring read and written by a chunk (as lossy lookahead
    does), then stepped again."""
    tokens = RNG.integers(0, tiny_model.config.vocab_size, (3, 30))
    out = []
    for xp in (PLAIN, COMPILED):
        lm = IntegerLM(tiny_model, xp)
        st = lm.new_state(3)
        cuts = [0, 1, 2, 3, 9, 10, 11, 20, 21, 30]
        out.append(np.concatenate([lm.freqs(lm.forward(st, tokens[:, a:b]))
                                   for a, b in zip(cuts, cuts[1:])], 1))
    assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("ring", [np.int16, np.float32, np.float64])
@pytest.mark.parametrize("q_l1", [32767, 32768, 2**20])
def test_attention_step_equals_the_numpy_path(ring, q_l1):
    """The fused attention step against softmax weights and products in numpy: rings of
    every type, partly valid, W not a multiple of 4, queries whose sum of |q| is just
    below, at and far above the int16 path's limit (2**15)."""
    B, H, G, W, hs = 2, 2, 2, 11, 8
    bound = 2**15 - 1 if ring == np.int16 else 2**20
    keys, values = (_ints((B, H, W, hs), bound).astype(ring) for _ in range(2))
    q = RNG.integers(0, 2, (B, H, G, hs)) * 2 - 1  # signs
    q = q * (q_l1 // hs) + np.sign(q) * (np.arange(hs) < q_l1 % hs)  # sum |q| = q_l1
    q[0, 0, 0] = 0  # and a row of zeros
    valid = RNG.random(W) < 0.7
    valid[3] = True
    table, shift = _exp_table(), 13
    # one position (L = 1) whose key and value are those already at slot 3
    k, v = (a[:, :, None, 3].astype(np.float64) for a in (keys, values))  # (B, 1, H, hs)
    got = kernels.attend_chunk(q[:, None].astype(np.float64), k, v, keys, values,
                               valid[None], [3], shift, table)[:, 0]
    scores = np.einsum("bhgd,bhwd->bhgw", q, keys.astype(np.int64))
    e = fixed.softmax_weights(PLAIN, scores, np.broadcast_to(valid, (G, W)), shift +
                              FP.exp_step_bits, table, FP)
    num = np.einsum("bhgw,bhwd->bhgd", e, values.astype(np.int64))
    den = e.sum(-1, keepdims=True)
    assert np.array_equal(got, (2 * num + den) // (2 * den))


@pytest.mark.parametrize("ring", [np.int16, np.float32])
@pytest.mark.parametrize("start, L", [(0, 5), (3, 4), (30, 11), (25, 7)])
def test_attention_chunk_equals_the_numpy_path(ring, start, L):
    """A chunk's attention taken position by position, the ring written as it goes,
    against the numpy path: scores over the ring as it was before the chunk (slots
    within the window) and over the chunk itself (causal). Rings empty, partly filled,
    full and wrapping; W not a multiple of 4; a chunk as long as the window."""
    B, H, G, W, hs = 2, 2, 2, 11, 8
    bound = 2**15 - 1 if ring == np.int16 else 2**20
    keys, values = (_ints((B, H, W, hs), bound) for _ in range(2))
    slot_pos = np.full(W, -1)
    for p in range(max(0, start - W), start):
        slot_pos[p % W] = p
    q = _ints((B, H, G, L, hs), 2**11)
    k, v = (_ints((B, H, L, hs), bound) for _ in range(2))
    pos = start + np.arange(L)
    dist = pos[:, None] - slot_pos[None, :]
    ring_ok = (dist >= 0) & (dist < W) & (slot_pos >= 0)
    scores = np.concatenate([np.einsum("bhgld,bhwd->bhglw", q, keys),
                             np.einsum("bhgld,bhjd->bhglj", q, k)], -1)
    mask = np.concatenate([ring_ok, pos[None, :] <= pos[:, None]], 1)
    table, shift = _exp_table(), 13
    e = fixed.softmax_weights(PLAIN, scores, mask, shift + FP.exp_step_bits, table, FP)
    num = np.einsum("bhglw,bhwd->bhgld", e[..., :W], values) + \
        np.einsum("bhglj,bhjd->bhgld", e[..., W:], v)
    den = e.sum(-1, keepdims=True)
    valid, seen = np.empty((L, W), bool), slot_pos.copy()  # after writing each position
    for li, p in enumerate(pos):
        seen[p % W] = p
        valid[li] = (seen >= 0) & (p - seen < W)
    ring_k, ring_v = keys.astype(ring), values.astype(ring)
    got = kernels.attend_chunk(q.transpose(0, 3, 1, 2, 4).astype(np.float64),
                               k.transpose(0, 2, 1, 3).astype(np.float64),
                               v.transpose(0, 2, 1, 3).astype(np.float64), ring_k, ring_v,
                               valid, pos % W, shift, table)  # (B, L, H, G, hs)
    assert np.array_equal(got.transpose(0, 2, 3, 1, 4), (2 * num + den) // (2 * den))
    keys[:, :, pos % W], values[:, :, pos % W] = k, v  # the ring holds the chunk now
    assert np.array_equal(ring_k, keys) and np.array_equal(ring_v, values)
