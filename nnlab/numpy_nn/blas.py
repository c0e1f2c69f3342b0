"""The BLAS calls the engine needs that NumPy does not expose: a GEMM that adds into its output,
and the one-pass vector updates of an optimizer.

- `add_product`: C <- A B^T + C. Every BLAS GEMM computes C <- alpha A B + beta C; `np.matmul`
  always passes beta = 0, so adding a product into an existing array costs a temporary for the
  product and a second pass to add it. With beta = 1 the GEMM adds as it writes. The
  convolution's input gradient uses it (`Conv2d._input_grad_by_shifts`): kh*kw products, each
  added into a shifted block of rows.
- `axpby`: y <- a x + b y, and `axpy`: y <- a x + y, one pass each over the arrays (OpenBLAS
  splits long vectors over its threads). In NumPy, `v = m v + g` is two passes (v *= m, v += g)
  and `p -= lr v` two more (lr * v into a buffer, then the subtraction), on one core: SGD with
  momentum uses them (`nnlab.numpy_nn.optim.SGD`).

The calls go to the BLAS library NumPy itself loaded, through ctypes, so they share NumPy's
threads (a second BLAS, such as SciPy's, brings its own pool of threads, which then spin against
NumPy's on the same cores: measured, conv steps slowed and varied 2-4x). NumPy's wheels ship
OpenBLAS as `scipy_openblas64_`, whose CBLAS symbols are `scipy_cblas_sgemm64_` and so on (64-bit
integers). Where that library is not found (another NumPy build) or its answer to a small
problem is wrong, `available()` is False and the engine keeps its NumPy-only path.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_TYPES = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


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
def _library() -> ctypes.CDLL | None:
    """The first loaded OpenBLAS with NumPy's symbol names, or None."""
    for path in _openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "scipy_cblas_sgemm64_"):
            return lib
    return None


def _routine(name: str, dtype: np.dtype):
    """CBLAS routine `name` ("gemm", "axpby", "axpy") for dtype, its arguments declared."""
    lib = _library()
    if lib is None or dtype not in _TYPES:
        return None
    letter, scalar = _TYPES[dtype]
    fn = getattr(lib, f"scipy_cblas_{letter}{name}64_", None)
    if fn is None:
        return None
    fn.argtypes = {
        "gemm": [ctypes.c_int] * 3
        + [_I64] * 3
        + [scalar, _PTR, _I64, _PTR, _I64, scalar, _PTR, _I64],
        "axpby": [_I64, scalar, _PTR, _I64, scalar, _PTR, _I64],
        "axpy": [_I64, scalar, _PTR, _I64, _PTR, _I64],
    }[name]
    fn.restype = None
    return fn


@functools.cache
def _routines(dtype: np.dtype) -> dict | None:
    """The three routines for dtype, each checked once on a small problem; None if any is
    missing or wrong."""
    found = {name: _routine(name, dtype) for name in ("gemm", "axpby", "axpy")}
    if any(fn is None for fn in found.values()):
        return None
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(s).astype(dtype) for s in ((5, 3), (4, 3), (5, 4)))
    x, y = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)
    want = (c + a @ b.T, 2 * x - 0.5 * y, 3 * x + y)
    got_c, got_by, got_y = c.copy(), y.copy(), y.copy()
    _gemm(found["gemm"], got_c, a, b)
    found["axpby"](len(x), 2.0, x.ctypes.data, 1, -0.5, got_by.ctypes.data, 1)
    found["axpy"](len(x), 3.0, x.ctypes.data, 1, got_y.ctypes.data, 1)
    ok = all(np.allclose(g, w, rtol=1e-4, atol=1e-5) for g, w in zip((got_c, got_by, got_y), want))
    return found if ok else None


def _gemm(fn, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    (m, k), n = a.shape, b.shape[0]
    fn(
        _ROW_MAJOR, _NO_TRANS, _TRANS, m, n, k,
        1.0, a.ctypes.data, k, b.ctypes.data, k,
        1.0, c.ctypes.data, n,
    )  # fmt: skip


def available(dtype) -> bool:
    return _routines(np.dtype(dtype)) is not None


def _checked(*arrays: np.ndarray) -> dict:
    routines = _routines(arrays[0].dtype)
    if routines is None:
        raise RuntimeError(f"no BLAS of NumPy's for {arrays[0].dtype} (check available() first)")
    if any(a.dtype != arrays[0].dtype for a in arrays):
        raise TypeError(f"dtypes differ: {', '.join(str(a.dtype) for a in arrays)}")
    if not all(a.flags.c_contiguous for a in arrays):
        raise ValueError("BLAS calls here need C-contiguous arrays")
    return routines


def add_product(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """c += a @ b.T in place, one GEMM with beta = 1. a (m, k), b (n, k), c (m, n): C-contiguous,
    one dtype, float32 or float64 (`available(dtype)` must be True)."""
    (m, k), (n, k2) = a.shape, b.shape
    if k != k2 or c.shape != (m, n):
        raise ValueError(f"shapes do not fit c += a b^T: {c.shape}, {a.shape}, {b.shape}")
    _gemm(_checked(c, a, b)["gemm"], c, a, b)


def axpby(y: np.ndarray, a: float, x: np.ndarray, b: float) -> None:
    """y = a x + b y in place, one pass (x and y of one shape, C-contiguous)."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape}, {y.shape}")
    _checked(y, x)["axpby"](y.size, a, x.ctypes.data, 1, b, y.ctypes.data, 1)


def axpy(y: np.ndarray, a: float, x: np.ndarray) -> None:
    """y = a x + y in place, one pass (x and y of one shape, C-contiguous)."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape}, {y.shape}")
    _checked(y, x)["axpy"](y.size, a, x.ctypes.data, 1, y.ctypes.data, 1)
