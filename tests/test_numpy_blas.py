"""`nnlab.numpy_nn.blas.add_product`: c += a b^T by NumPy's own BLAS with beta = 1, against
NumPy's product, in both precisions; bad arguments are refused before the BLAS sees them."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.numpy_nn import blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_product_adds_the_product_in_place(dtype):
    assert blas.available(dtype)  # NumPy's wheels ship OpenBLAS: the fast path is the tested one
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 17)).astype(dtype), rng.standard_normal((9, 17)).astype(dtype)
    base = rng.standard_normal((310, 9)).astype(dtype)
    c = base.copy()
    view = c[5:305]  # a block of rows, as the convolution's shifted blocks are
    blas.add_product(view, a, b)
    want = base.copy()
    want[5:305] += a @ b.T
    tol = 1e-12 if dtype == np.float64 else 1e-4
    assert np.allclose(c, want, atol=tol) and np.array_equal(c[:5], base[:5])
    assert np.array_equal(c[305:], base[305:])  # nothing written past the block


def test_add_product_refuses_what_it_cannot_do():
    a = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="shapes"):
        blas.add_product(np.zeros((4, 5), np.float32), a, np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="dtypes"):
        blas.add_product(np.zeros((4, 2), np.float32), a, np.ones((2, 3), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        blas.add_product(np.zeros((2, 4), np.float32).T, a, np.ones((2, 3), np.float32))
    assert not blas.available(np.int32)
