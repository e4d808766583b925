"""Array backends for the integer engine: numpy (default) and torch (CPU or CUDA).

The engine is written once against this small interface. Every value it handles is an
integer; floats appear only as carriers inside matrix products whose partial sums are
proven to fit the mantissa, so any BLAS, kernel or thread count gives the same result.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import BackendError

FP32_EXACT = 2**24  # every partial sum below this is exact in float32
FP64_EXACT = 2**53


# Below this, loading numba (about 1 s) costs more than it saves. Level 6 on 2 KB took
# 2.1-3.2 s to compress and 5.5-6.2 s to decompress in numpy, 2.3-2.8 s and 3.0-3.1 s
# compiled; from 5 KB on compiled was faster both ways (docs/BENCHMARKS.md, 2026-11-30).
KERNELS_MIN_BYTES = 1024


class Int8Rows:
    """A weight matrix (in, out) of int8 values whose products are exact in float32,
    kept as its int8 transpose `t` (out, in): a quarter of float32's bytes. A decoding
    step reads every weight once for its few rows, so the few-row kernel
    (kernels.matmul_rows) is bound by how many bytes it reads. Products of many rows
    take BLAS on a float32 copy (`full`), made on first use and kept."""

    dtype = np.dtype(np.float32)  # the carrier of its products

    def __init__(self, w: np.ndarray):
        self.shape = w.shape
        self.t = np.ascontiguousarray(w.T)
        self._full = None

    def full(self) -> np.ndarray:
        """The matrix (in, out) as float32 (column-major, as BLAS takes it at no cost)."""
        if self._full is None:
            self._full = self.t.T.astype(np.float32, order="F")
        return self._full


class NumpyBackend:
    """numpy arrays; the hot element-wise steps run as compiled kernels (kernels.py) when
    numba is installed, else as plain numpy -- the same integers either way.

    `compiled`: "auto" loads the kernels when `prepare` announces at least
    KERNELS_MIN_BYTES of input; True loads them now; False never. The environment
    variable LMPRESS_KERNELS (auto, compiled, numpy) overrides "auto"."""

    name = "numpy"

    def __init__(self, compiled: bool | str = "auto"):
        if compiled == "auto":
            mode = os.environ.get("LMPRESS_KERNELS", "auto")
            if mode not in ("auto", "compiled", "numpy"):
                raise BackendError(f"LMPRESS_KERNELS={mode!r} is not a choice; use auto, "
                                   "compiled or numpy")
            compiled = {"auto": "auto", "compiled": True, "numpy": False}[mode]
        self.compiled = compiled
        self.kernels = None
        if compiled is True:
            self._load_kernels()

    def _load_kernels(self) -> None:
        from . import kernels

        self.kernels = kernels if kernels.AVAILABLE else None

    def prepare(self, n_bytes: int) -> None:
        """About `n_bytes` of input are coming: load the kernels if they will pay off."""
        if self.compiled == "auto" and self.kernels is None and n_bytes >= KERNELS_MIN_BYTES:
            self._load_kernels()

    @property
    def compiled_coding(self) -> bool:
        """Whether the adaptive coder should use its compiled passes (coding/compiled.py):
        when `prepare` judged numba worth loading (same bytes either way)."""
        return self.kernels is not None

    def asint(self, a: Any) -> np.ndarray:
        return np.asarray(a, dtype=np.int64)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return a

    def narrow(self, a: Any) -> np.ndarray:
        """An integer table kept in its own narrow dtype (int8 embeddings: 8x less memory
        than int64); arithmetic with int64 arrays promotes, so values are unchanged."""
        return np.asarray(a)

    def matrix(self, w: np.ndarray, exact_bound: int):
        """Prepare an integer matrix (in, out) for `matmul`: an `Int8Rows` when its
        products are exact in float32 and its values are int8, else float64."""
        if exact_bound < FP32_EXACT:
            q = np.asarray(w).astype(np.int8)
            if np.array_equal(q, w):
                return Int8Rows(q)
            return np.asfortranarray(w, dtype=np.float32)
        return np.asarray(w, dtype=np.float64)

    def matmul(self, x: np.ndarray, w) -> np.ndarray:
        """Exact integer product of int64 `x` and a matrix from `matrix` (or float64)."""
        return self.matmul_raw(x, w).astype(np.int64)

    def matmul_raw(self, x: np.ndarray, w) -> np.ndarray:
        """The exact product of `matmul`, left in its float carrier (integer-valued)."""
        # one 2-D product: a stacked (B, L, K) operand would be B small products
        x2 = x.reshape(-1, x.shape[-1]).astype(w.dtype, copy=False)
        k = self.kernels
        if isinstance(w, Int8Rows):
            if k is not None and x2.shape[0] <= k.FEW_ROWS:  # a decoding step's few rows
                out = k.matmul_rows(np.ascontiguousarray(x2), w.t)
            else:
                out = np.matmul(x2, w.full())
        else:
            out = np.matmul(x2, w)
        return out.reshape(*x.shape[:-1], w.shape[1])

    def requant_f64(self, acc: np.ndarray, w_mult: np.ndarray, row_mult: np.ndarray,
                    s1: int, s2: int) -> np.ndarray:
        """`fixed.requant` carried in float64, for callers that proved every value below
        2**52 (see `IntegerLM._fast_requant`): products of exact integers under 2**53 are
        exact, scaling by 2**-s is exact, floor is exact, so the integers are identical to
        the int64 path -- and float64 multiplies are several times faster than int64 ones
        on CPUs without a vector int64 multiply."""
        if self.kernels is not None:
            return self.kernels.requant_f64(acc, w_mult, row_mult, s1, s2)
        t = np.floor((acc * w_mult + float(1 << (s1 - 1))) * 2.0**-s1)
        t *= np.minimum(np.maximum(row_mult, 0), 2**24).astype(np.float64)
        if s2 > 0:
            t += float(1 << (s2 - 1))
            t *= 2.0**-s2
            np.floor(t, out=t)
        else:
            t *= float(1 << -s2)
        return t.astype(np.int64)

    def amax(self, x: np.ndarray, axis: int) -> np.ndarray:
        return x.max(axis=axis, keepdims=True)

    def sum(self, x: np.ndarray, axis: int) -> np.ndarray:
        return x.sum(axis=axis, keepdims=True)

    def cumsum(self, x: np.ndarray, axis: int) -> np.ndarray:
        return np.cumsum(x, axis=axis)

    def clip(self, x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return np.minimum(np.maximum(x, lo), hi)  # np.clip is several times slower here

    def where(self, c: np.ndarray, a: Any, b: Any) -> np.ndarray:
        return np.where(c, a, b)

    def cat(self, xs: list[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)

    def arange(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def full(self, shape: tuple[int, ...], value: int) -> np.ndarray:
        return np.full(shape, value, dtype=np.int64)

    def isqrt(self, n: np.ndarray) -> np.ndarray:
        """floor(sqrt(n)) for 0 <= n < 2**52, exact: IEEE sqrt is correctly rounded and
        the two correction steps remove any off-by-one."""
        r = np.sqrt(n.astype(np.float64)).astype(np.int64)
        r = np.where(r * r > n, r - 1, r)
        return np.where((r + 1) * (r + 1) <= n, r + 1, r)


class Int8Matrix:
    """A weight matrix (in, out) kept as int8 for `torch._int_mm`, zero-padded so both
    sides are multiples of 8 as cuBLAS asks; int8 x int8 sums in int32 are exact for any
    K < 2**31 / 127**2 (about 133 000), so results equal the float path's integers."""

    def __init__(self, torch, w: np.ndarray, device):
        self.k, self.n = w.shape
        kp, n_pad = -(-self.k // 8) * 8, -(-self.n // 8) * 8
        padded = np.zeros((kp, n_pad), dtype=np.int8)
        padded[:self.k, :self.n] = w
        self.w = torch.as_tensor(padded, device=device)


class TorchBackend:
    name = "torch"
    kernels = None  # the compiled kernels are numpy's; torch runs its own operators
    compiled_coding = True  # the coder's compiled passes: torch's start-up dwarfs numba's

    def __init__(self, device: str = "cpu", int8_mm: bool | None = None):
        try:
            import torch
        except ImportError as e:
            raise BackendError(
                "the torch backend needs PyTorch; install it with: pip install 'lmpress[torch]'"
            ) from e
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device {device!r} requested but CUDA is not available here; "
                               "use --device cpu")
        self.torch = torch
        self.device = torch.device(device)
        torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would round the products
        torch.backends.cudnn.allow_tf32 = False
        self.name = f"torch-{self.device.type}"
        # int8 matrix products (torch._int_mm): the default on CUDA, where they are the
        # fast path; on CPU only when asked (there they are slower than float32 BLAS)
        self.int8_mm = self.device.type == "cuda" if int8_mm is None else int8_mm

    def prepare(self, n_bytes: int) -> None:
        """Nothing to load ahead of a long input (see NumpyBackend.prepare)."""

    def asint(self, a: Any):
        t = self.torch
        if isinstance(a, t.Tensor):
            return a.to(self.device, t.int64)
        return t.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        return a.cpu().numpy()

    def narrow(self, a: Any):
        return self.torch.as_tensor(np.asarray(a), device=self.device)

    def matrix(self, w: np.ndarray, exact_bound: int):
        w = np.asarray(w)
        if self.int8_mm and w.dtype == np.int8:
            return Int8Matrix(self.torch, w, self.device)
        dtype = self.torch.float32 if exact_bound < FP32_EXACT else self.torch.float64
        return self.torch.as_tensor(w, device=self.device).to(dtype)

    def matmul(self, x, w):
        if isinstance(w, Int8Matrix):
            return self._int8_matmul(x, w)
        return self.torch.matmul(x.to(w.dtype), w).to(self.torch.int64)

    def _int8_matmul(self, x, w: Int8Matrix):
        """x (..., K) int64 holding int8 values, times an Int8Matrix, exactly in int32.
        Rows are padded to a multiple of 8 and at least 24 (cuBLAS wants more than 16)."""
        t = self.torch
        lead, m = x.shape[:-1], int(np.prod(x.shape[:-1]))
        rows = max(24, -(-m // 8) * 8)
        a = t.zeros((rows, w.w.shape[0]), dtype=t.int8, device=self.device)
        a[:m, :w.k] = x.reshape(m, w.k)
        return t._int_mm(a, w.w)[:m, :w.n].to(t.int64).reshape(*lead, w.n)

    def amax(self, x, axis: int):
        return x.amax(dim=axis, keepdim=True)

    def sum(self, x, axis: int):
        return x.sum(dim=axis, keepdim=True)

    def cumsum(self, x, axis: int):
        return self.torch.cumsum(x, dim=axis)

    def clip(self, x, lo: int, hi: int):
        return x.clamp(lo, hi)

    def where(self, c, a, b):
        t = self.torch
        a = a if isinstance(a, t.Tensor) else t.tensor(a, device=self.device)
        b = b if isinstance(b, t.Tensor) else t.tensor(b, device=self.device)
        return t.where(c, a, b)

    def cat(self, xs: list, axis: int):
        return self.torch.cat(xs, dim=axis)

    def arange(self, n: int):
        return self.torch.arange(n, dtype=self.torch.int64, device=self.device)

    def full(self, shape: tuple[int, ...], value: int):
        return self.torch.full(shape, value, dtype=self.torch.int64, device=self.device)

    def isqrt(self, n):
        r = self.torch.sqrt(n.to(self.torch.float64)).to(self.torch.int64)
        r = self.torch.where(r * r > n, r - 1, r)
        return self.torch.where((r + 1) * (r + 1) <= n, r + 1, r)


def get_backend(name=None):
    """'numpy' (default), 'torch' / 'torch-cpu', or 'torch-cuda' (int8 matrix products);
    a backend object is returned as it is."""
    if isinstance(name, (NumpyBackend, TorchBackend)):
        return name
    if name in (None, "numpy"):
        return NumpyBackend()
    if name in ("torch", "torch-cpu"):
        return TorchBackend("cpu")
    if name in ("torch-cuda", "cuda"):
        return TorchBackend("cuda")
    raise BackendError(f"unknown backend {name!r}; choose numpy, torch-cpu or torch-cuda")


def _f64_numpy(x):
    return np.asarray(x, dtype=np.float64)


NumpyBackend.f64 = staticmethod(_f64_numpy)  # type: ignore[attr-defined]
NumpyBackend.matmul_f64 = staticmethod(  # type: ignore[attr-defined]
    lambda a, b: np.matmul(a, b).astype(np.int64))
TorchBackend.f64 = lambda self, x: x.to(self.torch.float64)  # type: ignore[attr-defined]
TorchBackend.matmul_f64 = lambda self, a, b: self.torch.matmul(  # type: ignore[attr-defined]
    a, b).to(self.torch.int64)
