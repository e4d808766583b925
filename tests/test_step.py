"""The fused blocks (engine/step.py), for decoding steps and chunks, give exactly the
tables of the general path: plain and grouped-query models, past the ring's wrap, and
when a key or value outgrows the int16 ring."""

import dataclasses

import numpy as np
import pytest

from lmpress.engine import kernels, step
from lmpress.engine.backends import Int8Rows, NumpyBackend
from lmpress.engine.transformer import IntegerLM
from lmpress.model.config import ModelConfig
from lmpress.model.quantize import quantize_model, seeded_float_weights

RNG = np.random.default_rng(77)


def _gqa(tiny_model):
    """Four query heads sharing two key/value heads, no biases; window 8."""
    dims = dict(vocab_size=tiny_model.config.vocab_size, n_layer=2, n_head=4, n_embd=32,
                n_hidden=48, window=8, max_positions=256)
    f = seeded_float_weights(ModelConfig(**dims), 12)
    for i in range(2):
        for n in ("wk", "wv"):
            f[f"blocks.{i}.attn.{n}.weight"] = f[f"blocks.{i}.attn.{n}.weight"][:16]
    cfg = ModelConfig(**dims, n_kv_head=2)
    return quantize_model(f, cfg, tiny_model.tokenizer_json, "tiny-gqa-plain")


def _loud_values(weights):
    """`weights` with layer 0's value multipliers scaled up, so that values pass 2**15
    and a decoding step's int16 ring must widen."""
    tensors = dict(weights.tensors)
    tensors["layers.0.wv.m"] = np.asarray(tensors["layers.0.wv.m"]) * 64
    return dataclasses.replace(weights, tensors=tensors)


def _tables(weights, fused: bool, tokens, cuts):
    lm = IntegerLM(weights, NumpyBackend(compiled=True))
    if not fused:
        lm._step = False
    assert lm._fused_step() == fused
    st = lm.new_state(tokens.shape[0])
    tables = [lm.freqs(lm.forward(st, tokens[:, a:b])) for a, b in zip(cuts, cuts[1:])]
    return np.concatenate(tables, 1), st


@pytest.mark.parametrize("variant", ["tiny", "gqa", "loud"])
def test_fused_steps_equal_the_general_path(tiny_model, variant):
    weights = {"tiny": tiny_model, "gqa": _gqa(tiny_model),
               "loud": _loud_values(tiny_model)}[variant]
    tokens = RNG.integers(0, weights.config.vocab_size, (3, 45))
    # steps from the start, chunks in between (one as long as the window), steps past
    # the ring's wrap
    cuts = [0, 1, 2, 3, 4, 5, 6, 7, 8, 15] + list(range(16, 31)) + list(range(38, 46))
    fused, st = _tables(weights, True, tokens, cuts)
    general, st_general = _tables(weights, False, tokens, cuts)
    assert np.array_equal(fused, general)
    lm = IntegerLM(weights, NumpyBackend(compiled=False))  # no compiled kernel at all
    plain = lm.new_state(3)
    assert np.array_equal(fused, np.concatenate(
        [lm.freqs(lm.forward(plain, tokens[:, a:b])) for a, b in zip(cuts, cuts[1:])], 1))
    for a, b in zip(st.keys + st.values, st_general.keys + st_general.values):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    if variant == "loud":
        assert st.values[0].dtype == np.float32  # widened on the way
        assert st.values[1].dtype == np.int16


def test_models_the_fused_step_does_not_cover(tiny_model):
    lm = IntegerLM(tiny_model, NumpyBackend(compiled=True))
    assert step.usable(lm)
    assert not step.usable(IntegerLM(tiny_model, NumpyBackend(compiled=False)))
    for change in ({"qkv_bias": True}, {"qk_norm": True}):
        lm.cfg = dataclasses.replace(tiny_model.config, **change)
        assert not step.usable(lm)


def test_a_step_that_does_not_fit_the_int16_ring_writes_nothing():
    B, Hkv, W, hs = 2, 1, 4, 4
    keys = np.zeros((B, Hkv, W, hs), np.int16)
    values = keys.copy()
    acc = np.full((B, 3 * hs), 2.0**20, np.float32)  # every q, k, v far beyond 2**15
    args = (acc, np.full(B, 1 << 20), np.full(3 * hs, 1.0), 20, 0, 0,
            np.full((1, hs // 2), 1 << 14), np.zeros((1, hs // 2), np.int64), 14, 2**20)
    tail = (np.ones((1, W), np.bool_), 12, np.arange(64.0)[::-1].copy(), 1, 10,
            20, np.empty((B, hs), np.float32), np.empty(B, np.int64))
    slots = np.array([0])
    assert not step._qkv_attend(*args, keys, values, slots, 2**15 - 1, *tail)
    assert not keys.any() and not values.any()
    wide_k, wide_v = keys.astype(np.float32), values.astype(np.float32)
    assert step._qkv_attend(*args, wide_k, wide_v, slots, 2**20, *tail)
    assert (wide_v[:, :, 0] == 2**20).all() and not wide_v[:, :, 1:].any()


@pytest.mark.parametrize("rows", [1, 3, 4, 7, 13, 32])
@pytest.mark.parametrize("cols", [1, 6, 9])
def test_few_row_products_are_exact(rows, cols):
    """The few-row kernel equals BLAS on int8 values, extremes included, with row and
    column counts that leave remainders of its 4 x 2 blocks."""
    K = 1040  # K * 127**2 just below 2**24: the largest float32 product
    x = RNG.integers(-127, 128, (rows, K)).astype(np.float32)
    wt = RNG.integers(-127, 128, (cols, K)).astype(np.int8)
    x[0], wt[0] = 127, -127
    expect = x.astype(np.float64) @ wt.T.astype(np.float64)
    assert np.array_equal(kernels.matmul_rows(x, wt), expect)
    assert np.array_equal(kernels.matmul_rows(x, wt.astype(np.float32)), expect)


def test_the_backend_takes_the_kernel_for_few_rows_only(monkeypatch):
    xp = NumpyBackend(compiled=True)
    ints = RNG.integers(-127, 128, (64, 40))
    w = xp.matrix(ints, 64 * 127**2)
    assert isinstance(w, Int8Rows) and w.t.dtype == np.int8 and w.t.flags.c_contiguous
    calls = []
    real = kernels.matmul_rows
    monkeypatch.setattr(kernels, "matmul_rows", lambda x, wt: calls.append(1) or real(x, wt))
    for rows in (5, kernels.FEW_ROWS, kernels.FEW_ROWS + 1, 300):
        x = RNG.integers(-127, 128, (rows, 64))
        assert np.array_equal(xp.matmul(x, w), x @ ints)
    assert len(calls) == 2


def test_wide_products_stay_float64():
    """A matrix whose sums could pass 2**24 is kept in float64 (exact to 2**53)."""
    xp = NumpyBackend(compiled=True)
    ints = RNG.integers(-127, 128, (2000, 3))
    w = xp.matrix(ints, 2000 * 127**2)
    assert w.dtype == np.float64
    x = np.full((2, 2000), 127)
    assert np.array_equal(xp.matmul(x, w), x @ ints)
