"""The DCT as a bank of convolution filters.

Orthonormal DCT-II of a length-N block x:

    X_k = s_k sum_{j=0}^{N-1} x_j cos(pi (j + 1/2) k / N),
    s_0 = sqrt(1/N), s_k = sqrt(2/N) (k > 0).

Row k of the matrix D[k, j] = s_k cos(pi (j + 1/2) k / N) is a filter; correlating a signal with
the N filters at stride N computes the DCT of every block (scipy.fft.dct(..., norm='ortho')).
D is orthogonal (D D^T = I), so the same filters also invert it. In 2-D the basis images are the
outer products D[k]^T D[l] (N * N filters of size N x N), equal to two separable passes
(scipy.fft.dctn on each N x N block)."""

from __future__ import annotations

import numpy as np

from nnlab.numpy_nn.conv import conv2d


def dct_filters(n: int) -> np.ndarray:
    """D (n, n): D[k, j] = s_k cos(pi (j + 1/2) k / n)."""
    j, k = np.meshgrid(np.arange(n), np.arange(n))
    D = np.cos(np.pi * (j + 0.5) * k / n)
    D[0] *= np.sqrt(1.0 / n)
    D[1:] *= np.sqrt(2.0 / n)
    return D


def dct_basis_2d(n: int) -> np.ndarray:
    """(n * n, n, n): basis image (k, l) = outer(D[k], D[l]), index k * n + l."""
    D = dct_filters(n)
    return np.einsum("ki,lj->klij", D, D).reshape(n * n, n, n)


def blockwise_dct_1d(signal: np.ndarray, n: int) -> np.ndarray:
    """DCT of each length-n block of a 1-D signal (length a multiple of n) as a stride-n
    convolution with the n DCT filters: returns (num_blocks, n)."""
    x = signal[None, None, None, :]  # (1, 1, 1, L): a 1-D signal is a 1-row image
    w = dct_filters(n)[:, None, None, :]  # (n, 1, 1, n)
    y = conv2d(x, w, stride=(1, n))  # (1, n, 1, L / n)
    return y[0, :, 0, :].T


def blockwise_dct_2d(image: np.ndarray, n: int) -> np.ndarray:
    """2-D DCT of each n x n block of an image (sides multiples of n) as one stride-n convolution
    with the n^2 basis images: returns (H / n, W / n, n, n)."""
    w = dct_basis_2d(n)[:, None]  # (n^2, 1, n, n)
    y = conv2d(image[None, None], w, stride=n)[0]  # (n^2, H / n, W / n)
    return y.transpose(1, 2, 0).reshape(y.shape[1], y.shape[2], n, n)
