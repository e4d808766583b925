"""The determinism rule, checked directly on the engine's frequency tables."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lmpress.engine.transformer import IntegerLM
from lmpress.model.tokenizer import ByteTokenizer

TEXT = ("The quick brown fox jumps over the lazy dog. def f(x):\n    return x * 2\n" * 4).encode()


def _inputs(weights, batch=3):
    tok = ByteTokenizer(weights.tokenizer_json)
    ids = np.concatenate([[weights.config.bos_id], tok.encode(TEXT)])[:100]
    return np.stack([np.roll(ids, b) for b in range(batch)])


def _tables(lm, tokens, chunk):
    st = lm.new_state(tokens.shape[0])
    parts = [lm.xp.to_numpy(lm.freqs(lm.forward(st, tokens[:, c:c + chunk])))
             for c in range(0, tokens.shape[1], chunk)]
    return np.concatenate(parts, 1)


def test_parallel_pass_equals_stepwise_token_by_token(tiny_model):
    lm = IntegerLM(tiny_model)
    tokens = _inputs(tiny_model)
    par = _tables(lm, tokens, tiny_model.config.window)
    step = _tables(lm, tokens, 1)
    for t in range(tokens.shape[1]):
        assert np.array_equal(par[:, t], step[:, t]), f"tables differ at token {t}"
    odd = _tables(lm, tokens, 5)  # any other grouping of positions
    assert np.array_equal(par, odd)


def test_batch_grouping_does_not_matter(tiny_model):
    lm = IntegerLM(tiny_model)
    tokens = _inputs(tiny_model, batch=4)
    together = _tables(lm, tokens, 16)
    alone = np.concatenate([_tables(lm, tokens[b:b + 1], 16) for b in range(4)])
    assert np.array_equal(together, alone)


def test_table_properties(tiny_model):
    lm = IntegerLM(tiny_model)
    f = _tables(lm, _inputs(tiny_model), 16)
    assert f.min() >= 1
    assert (f.sum(-1) >= 2**24).all()


def test_numpy_and_torch_cpu_tables_identical(tiny_model):
    pytest.importorskip("torch")
    tokens = _inputs(tiny_model)
    a = _tables(IntegerLM(tiny_model, "numpy"), tokens, 16)
    b = _tables(IntegerLM(tiny_model, "torch-cpu"), tokens, 1)
    assert np.array_equal(a, b)


def test_thread_count_does_not_matter(tiny_model_path):
    code = (
        "import hashlib, numpy as np, sys\n"
        "from lmpress.engine.transformer import IntegerLM\n"
        "from lmpress.model.weights import IntegerWeights\n"
        "w = IntegerWeights.load(sys.argv[1]); lm = IntegerLM(w)\n"
        "t = (np.arange(64).reshape(2, 32) * 7) % w.config.vocab_size\n"
        "st = lm.new_state(2)\n"
        "print(hashlib.sha256(lm.freqs(lm.forward(st, t[:, :16])).tobytes()).hexdigest())\n"
    )
    digests = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", code, str(tiny_model_path)], env=env,
                             capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_float64_kernels_equal_int64_arithmetic():
    """The numpy backend's float64 requant gives the int64 path's integers exactly."""
    from lmpress.engine.backends import NumpyBackend
    from lmpress.engine.fixed import FixedPoint, requant

    xp, fp, rng = NumpyBackend(), FixedPoint(), np.random.default_rng(1)
    K = 512
    acc = rng.integers(-K * 127**2, K * 127**2, (64, 48))
    acc[0, :2] = (K * 127**2, -K * 127**2)
    w_mult = rng.integers(1, 2**20, 48)
    row = rng.integers(0, 2**24, (64, 1))
    for out_frac in (fp.qk_frac, fp.res_frac, fp.logit_frac, 40):
        s1, s2 = fp.w_frac - 8, fp.row_frac + 8 - out_frac
        got = xp.requant_f64(acc.astype(np.float32), w_mult.astype(np.float64), row, s1, s2)
        assert np.array_equal(got, requant(xp, acc, w_mult, row, out_frac, fp))
