"""Archives cross backends and thread counts: compress with numpy at 2 threads and
decompress with torch at 1 thread, and the reverse; both archives are byte-identical."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

TEXT = ("Determinism is the heart of the codec: the encoder and the decoder must compute "
        "the same integer tables on any machine. 压缩即智能。\n" * 40).encode()


def _run(args, threads, data):
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    out = subprocess.run([sys.executable, "-m", "lmpress", "--blas-threads", threads, *args],
                         input=data, env=env, capture_output=True, check=True)
    return out.stdout


def test_numpy_and_torch_archives_cross_decode(tiny_model_path, tmp_path):
    m = ["-m", str(tiny_model_path)]
    by_numpy = _run([*m, "--backend", "numpy", "-c", "-"], "2", TEXT)
    by_torch = _run([*m, "--backend", "torch-cpu", "-c", "-"], "1", TEXT)
    assert by_numpy == by_torch
    assert _run([*m, "--backend", "torch-cpu", "-d", "-c", "-"], "1", by_numpy) == TEXT
    assert _run([*m, "--backend", "numpy", "-d", "-c", "-"], "2", by_torch) == TEXT


def test_torch_backends_code_with_the_compiled_passes(tiny_model_path):
    """The adaptive coder's compiled passes (same bytes as the numpy ones) serve torch
    backends too, though those load no engine kernels."""
    from lmpress import streams
    from lmpress.codec import make_engine
    from lmpress.coding import compiled

    if not compiled.AVAILABLE:
        pytest.skip("numba is not available here")
    engine = make_engine(str(tiny_model_path), "torch-cpu", 4)
    assert engine.kernels is None
    assert streams._compiled(engine) is compiled
