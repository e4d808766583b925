"""Speed of the integer engine and of the codec built on it, in ms per step and KB/s.

    python benchmarks/engine_speed.py [--input FILE] [--repeat 3] [--codec]

Reports medians of `--repeat` runs, wall time and process CPU time (the latter is less
disturbed by other work on a shared machine). Run it from two checkouts (PYTHONPATH=...)
on the same machine in the same session to compare; absolute numbers from different
days are not comparable. Set OPENBLAS_NUM_THREADS=1 on a busy 2-core machine: OpenBLAS
threads that wait on a descheduled sibling make small products up to 100x slower.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def _timed(fn, n: int) -> tuple[float, float]:
    """(wall, cpu) seconds per call of fn, over n calls."""
    w, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - w) / n, (time.process_time() - c) / n


def engine_steps(model: str | None, backend: str | None, batch: int, chunk: int,
                 n_calls: int) -> tuple[float, float]:
    """Time of one forward + freq table for (batch, chunk) tokens, ring buffer full."""
    from lmpress.engine.transformer import IntegerLM
    from lmpress.model.registry import load_model

    lm = IntegerLM(load_model(model), backend)
    W = lm.cfg.window
    toks = np.random.default_rng(0).integers(1, lm.cfg.vocab_size, size=(batch, W + 512))
    st = lm.new_state(batch)
    for c in range(0, W, 16):  # fill the window
        lm.freqs(lm.forward(st, toks[:, c:c + 16]))
    it = iter(range(W, W + 512 - chunk, chunk))

    def step():
        c = next(it)
        lm.xp.to_numpy(lm.freqs(lm.forward(st, toks[:, c:c + chunk])))

    return _timed(step, n_calls)


def codec_speed(data: bytes, model: str | None, backend: str | None) -> tuple[float, float]:
    """(compress, decompress) KB/s, wall time, model always used (no fallback)."""
    from lmpress.codec import Compressor, Decompressor

    c = Compressor(model, backend=backend, fallback=False)
    d = Decompressor(model, backend=backend)
    t = time.perf_counter()
    archive = c.compress(data)
    tc = time.perf_counter() - t
    t = time.perf_counter()
    assert d.decompress(archive) == data
    td = time.perf_counter() - t
    return len(data) / tc / 1000, len(data) / td / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--codec", action="store_true", help="also time compress/decompress")
    ap.add_argument("--input", type=Path, help="file for --codec (default: stdlib sources)")
    ap.add_argument("--n-bytes", type=int, default=60_000)
    a = ap.parse_args()

    for chunk, n in ((1, 30), (16, 6)):
        runs = [engine_steps(a.model, a.backend, a.batch, chunk, n) for _ in range(a.repeat)]
        wall = statistics.median(r[0] for r in runs) * 1e3
        cpu = statistics.median(r[1] for r in runs) * 1e3
        print(f"forward+freqs B={a.batch} L={chunk:<3d} {wall:8.2f} ms wall  {cpu:8.2f} ms cpu")
    if a.codec:
        if a.input:
            data = a.input.read_bytes()[:a.n_bytes]
        else:
            import sysconfig
            lib = Path(sysconfig.get_paths()["stdlib"])
            data = b"".join((lib / f).read_bytes() for f in ("argparse.py", "textwrap.py"))
            data = data[:a.n_bytes]
        runs = [codec_speed(data, a.model, a.backend) for _ in range(a.repeat)]
        print(f"codec on {len(data)} bytes: compress "
              f"{statistics.median(r[0] for r in runs):.2f} KB/s, decompress "
              f"{statistics.median(r[1] for r in runs):.2f} KB/s (median of {a.repeat})")


if __name__ == "__main__":
    main()
