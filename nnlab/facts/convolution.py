"""Convolution facts: equivariance, stride as subsampling, convolution vs correlation, the DCT as a
filter bank, and a patchwise MLP as a convnet."""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal
import torch

from nnlab.facts import fact
from nnlab.models.patch_mlp import PatchMLP, to_convnet
from nnlab.numpy_nn.conv import conv2d
from nnlab.numpy_nn.dct import blockwise_dct_1d, blockwise_dct_2d, dct_filters


def _circular_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Cross-correlation with circular (wrap-around) padding, output the size of x."""
    k = w.shape[-1]
    p = k // 2
    return conv2d(np.pad(x, ((0, 0), (0, 0), (p, k - 1 - p), (p, k - 1 - p)), mode="wrap"), w)


@fact(
    "conv-translation-equivariance",
    "with circular padding, conv(shift(x)) = shift(conv(x)) for every shift",
    topic="convolution",
    tol=1e-12,
)
def translation_equivariance() -> float:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 16, 16)), rng.standard_normal((4, 3, 3, 3))
    err = 0.0
    for dy, dx in ((1, 0), (0, 3), (5, -2), (15, 15)):
        shifted = np.roll(x, (dy, dx), axis=(2, 3))
        err = max(
            err,
            np.abs(
                _circular_conv(shifted, w) - np.roll(_circular_conv(x, w), (dy, dx), axis=(2, 3))
            ).max(),
        )
    return float(err)


@fact(
    "conv-equivariance-zero-padding",
    "with zero padding, conv(shift(x)) = shift(conv(x)) away from the borders",
    topic="convolution",
    tol=1e-12,
)
def zero_padding_equivariance() -> float:
    rng = np.random.default_rng(1)
    x = np.zeros((1, 1, 20, 20))
    x[0, 0, 6:14, 6:14] = rng.standard_normal((8, 8))  # content away from the borders
    w = rng.standard_normal((2, 1, 3, 3))
    s = 2
    a = conv2d(np.roll(x, s, axis=3), w, padding=1)
    b = np.roll(conv2d(x, w, padding=1), s, axis=3)
    return float(np.abs(a - b)[..., 3:-3, 3:-3].max())


@fact(
    "stride-is-subsampling",
    "a stride-s convolution = the stride-1 output sampled every s pixels",
    topic="convolution",
    tol=1e-12,
)
def stride_is_subsampling() -> float:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 2, 17, 13)), rng.standard_normal((3, 2, 3, 3))
    err = 0.0
    for s in (2, 3, 4):
        err = max(
            err,
            np.abs(
                conv2d(x, w, stride=s, padding=1) - conv2d(x, w, padding=1)[..., ::s, ::s]
            ).max(),
        )
    return float(err)


@fact(
    "convolution-is-flipped-correlation",
    "true convolution = cross-correlation with the kernel flipped in both axes "
    "(scipy as reference)",
    topic="convolution",
    tol=1e-12,
)
def convolution_vs_correlation() -> float:
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((12, 10)), rng.standard_normal((3, 4))
    ours = conv2d(x[None, None], w[None, None], flip=True)[0, 0]
    corr = conv2d(x[None, None], w[::-1, ::-1].copy()[None, None])[0, 0]
    return float(
        max(
            np.abs(ours - scipy.signal.convolve2d(x, w, mode="valid")).max(),
            np.abs(corr - ours).max(),
        )
    )


@fact(
    "dct-as-convolution",
    "the N orthonormal DCT-II filters s_k cos(pi (j + 1/2) k / N) at stride N "
    "compute the blockwise DCT",
    topic="convolution",
    tol=1e-12,
)
def dct_as_convolution() -> float:
    """Max abs difference to scipy.fft.dct / dctn (norm='ortho') on every block, N = 4 and 8,
    1-D and 2-D, plus the orthogonality D D^T = I."""
    rng = np.random.default_rng(4)
    err = 0.0
    for n in (4, 8):
        sig = rng.standard_normal(n * 6)
        err = max(
            err,
            np.abs(blockwise_dct_1d(sig, n) - scipy.fft.dct(sig.reshape(6, n), norm="ortho")).max(),
        )
        img = rng.standard_normal((n * 3, n * 2))
        blocks = img.reshape(3, n, 2, n).transpose(0, 2, 1, 3)  # (3, 2, n, n)
        err = max(
            err,
            np.abs(
                blockwise_dct_2d(img, n) - scipy.fft.dctn(blocks, axes=(2, 3), norm="ortho")
            ).max(),
        )
        D = dct_filters(n)
        err = max(err, np.abs(D @ D.T - np.eye(n)).max())
    return float(err)


@fact(
    "patch-mlp-is-a-convnet",
    "an MLP applied to every k x k patch = a k x k conv followed by 1 x 1 convs (exact conversion)",
    topic="convolution",
    tol=1e-5,
)
def patch_mlp_is_convnet() -> float:
    torch.manual_seed(0)
    err = 0.0
    for k, widths, c in ((1, (8,), 1), (3, (16, 8), 3), (5, (12, 12, 4), 2)):
        model = PatchMLP(c, k, widths)
        x = torch.randn(2, c, 14, 11)
        with torch.no_grad():
            err = max(err, float((model(x) - to_convnet(model)(x)).abs().max()))
    return err
