"""C <- A B^T + C in one BLAS call: the form of GEMM that NumPy does not expose.

Every BLAS GEMM computes C <- alpha A B + beta C; `np.matmul` always passes beta = 0, so adding a
product into an existing array costs a temporary for the product and a second pass to add it.
With beta = 1 the GEMM adds as it writes. The convolution's input gradient uses this
(`Conv2d._input_grad_by_shifts`): nine products, each added into a shifted block of rows.

The call goes to the BLAS library NumPy itself loaded, through ctypes, so it shares NumPy's
threads (a second BLAS, such as SciPy's, brings its own pool of threads, which then spin against
NumPy's on the same cores: measured, conv steps slowed and varied 2-4x). NumPy's wheels ship
OpenBLAS as `scipy_openblas64_`, whose CBLAS symbols are `scipy_cblas_sgemm64_` (64-bit
integers). Where that library is not found (another NumPy build) or its answer to a small
product is wrong, `available()` is False and the engine keeps its NumPy-only path.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_TYPES = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}


def _openblas_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (threadpoolctl finds them), NumPy's
    own first (it lives in NumPy's folders: numpy.libs, numpy/.dylibs)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    paths = [i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"]
    return sorted(paths, key=lambda p: "numpy" not in Path(p).parent.name)


@functools.cache
def _gemm(dtype: np.dtype):
    """The CBLAS ?gemm of NumPy's OpenBLAS for `dtype` (float32 or float64), checked on a small
    product; None where there is none."""
    if dtype not in _TYPES:
        return None
    letter, scalar = _TYPES[dtype]
    for path in _openblas_libraries():
        try:
            fn = getattr(ctypes.CDLL(path), f"scipy_cblas_{letter}gemm64_", None)
        except OSError:
            fn = None
        if fn is not None:
            break
    else:
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int] * 3 + [i64] * 3 + [scalar, ptr, i64, ptr, i64, scalar, ptr, i64]
    fn.restype = None
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(s).astype(dtype) for s in ((5, 3), (4, 3), (5, 4)))
    want = c + a @ b.T
    _call(fn, c, a, b)
    return fn if np.allclose(c, want, rtol=1e-4, atol=1e-5) else None


def _call(fn, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    (m, k), n = a.shape, b.shape[0]
    fn(
        _ROW_MAJOR, _NO_TRANS, _TRANS, m, n, k,
        1.0, a.ctypes.data, k, b.ctypes.data, k,
        1.0, c.ctypes.data, n,
    )  # fmt: skip


def available(dtype) -> bool:
    return _gemm(np.dtype(dtype)) is not None


def add_product(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """c += a @ b.T in place, one GEMM with beta = 1. a (m, k), b (n, k), c (m, n): C-contiguous,
    one dtype, float32 or float64 (`available(dtype)` must be True)."""
    fn = _gemm(c.dtype)
    if fn is None:
        raise RuntimeError(f"no BLAS of NumPy's for {c.dtype} (check available() first)")
    if not (a.dtype == b.dtype == c.dtype):
        raise TypeError(f"dtypes differ: {a.dtype}, {b.dtype}, {c.dtype}")
    (m, k), (n, k2) = a.shape, b.shape
    if k != k2 or c.shape != (m, n):
        raise ValueError(f"shapes do not fit c += a b^T: {c.shape}, {a.shape}, {b.shape}")
    if not (a.flags.c_contiguous and b.flags.c_contiguous and c.flags.c_contiguous):
        raise ValueError("add_product needs C-contiguous arrays")
    _call(fn, c, a, b)
