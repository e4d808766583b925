"""Micro-benchmarks of a decoding step's two largest costs: the attention step and the
few-row products (docs/ENGINE.md, docs/BENCHMARKS.md "Faster decoding steps").

    OPENBLAS_NUM_THREADS=1 python benchmarks/step_kernels.py [--streams 25]

Decodes held-out text in the default model's general (unfused) path until the rings are
full, captures the attention kernel's inputs at each layer, then times
`kernels.attend_chunk` on them (one position: a decoding step) and, for the model's
matrices, numpy's BLAS product against `kernels.matmul_rows` on the int8 weights the
backend keeps. Prints medians in ms / us per call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from lmpress.engine import kernels
from lmpress.engine.transformer import IntegerLM
from lmpress.model.registry import load_model
from lmpress.model.tokenizer import ByteTokenizer

TEXT = Path("data/corpus/valid/prose/git-doc__user-manual.txt")


def _median_time(fn, repeats: int = 7, inner: int = 20) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        runs.append((time.perf_counter() - t) / inner)
    return statistics.median(runs)


def _captured_attention(streams: int):
    """Inputs of `kernels.attend_chunk` at every layer of one step with full rings."""
    weights = load_model("lmpress-small-v3")
    lm = IntegerLM(weights, "numpy")
    lm.xp._load_kernels()
    lm._step = False  # the general path calls kernels.attend_chunk from Python
    ids = np.array(ByteTokenizer(weights.tokenizer_json).encode(TEXT.read_bytes()[:200_000]))
    n = weights.config.window + 8
    tokens = ids[:streams * n].reshape(streams, n)
    st = lm.new_state(streams)
    lm.forward(st, tokens[:, :weights.config.window])
    for i in range(weights.config.window, n - 1):
        lm.forward(st, tokens[:, i:i + 1])
    seen, real = [], kernels.attend_chunk
    kernels.attend_chunk = lambda *a: seen.append(a) or real(*a)
    try:
        lm.forward(st, tokens[:, n - 1:n])
    finally:
        kernels.attend_chunk = real
    return lm, seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=25)
    args = ap.parse_args()
    lm, calls = _captured_attention(args.streams)
    # writing the step's key and value again is idempotent
    t = statistics.median(_median_time(lambda a=a: kernels.attend_chunk(*a)) for a in calls)
    q, keys = calls[0][0], calls[0][3]
    print(f"attention step, q {q.shape}, ring {keys.shape} {keys.dtype}: {t * 1e3:.3f} ms")
    rng = np.random.default_rng(0)
    layer = lm.layers[0]
    mats = {"q|k|v": layer["wqkv"][0], "gate|up": layer["w_gate_up"][0],
            "down": layer["w_down"][0], "head": lm.head[0]}
    for rows in (6, 12, args.streams):
        for name, w in mats.items():
            print(_products(rng, rows, name, w))


def _products(rng, rows: int, name: str, w) -> str:
    """One line: BLAS and the few-row kernel on (rows, K) @ w (a backend `Int8Rows`)."""
    x = rng.integers(-127, 128, (rows, w.shape[0])).astype(np.float32)
    full = w.full()
    line = f"product {rows} x {w.shape[0]} -> {w.shape[1]} ({name}): "
    line += f"BLAS {_median_time(lambda: np.matmul(x, full)) * 1e6:.0f} us"
    assert np.array_equal(kernels.matmul_rows(x, w.t), x @ full)
    t = _median_time(lambda: kernels.matmul_rows(x, w.t))
    return line + f", matmul_rows (int8) {t * 1e6:.0f} us"


if __name__ == "__main__":
    main()
