"""2-D convolution and pooling by im2col: every receptive field becomes a column, and the
convolution becomes one matrix product. No Python loop over pixels: im2col is a strided view of
the padded input; col2im (its adjoint, for the backward pass) loops over the kh * kw kernel
offsets only.

Shapes: x (B, C, H, W), weight (O, C, kh, kw), output (B, O, OH, OW) with
    OH = floor((H + 2 p - d (kh - 1) - 1) / s) + 1   (likewise OW),
the formula of torch.nn.Conv2d for stride s, zero padding p and dilation d.

Deep-learning "convolution" is cross-correlation,
y[o, i, j] = sum_{c,u,v} w[o, c, u, v] x[c, s i + d u, s j + d v];
true convolution flips the kernel, w[o, c, kh - 1 - u, kw - 1 - v] (`conv2d(..., flip=True)`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnlab.numpy_nn.layers import Module, Parameter


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def output_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def im2col(
    x: np.ndarray, kh: int, kw: int, stride=1, padding=0, dilation=1, pad_value: float = 0.0
) -> np.ndarray:
    """(B, C, H, W) -> (B, C, kh, kw, OH, OW):
    entry [b, c, u, v, i, j] = x_pad[b, c, s i + d u, s j + d v]."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, C, H, W = x.shape
    OH, OW = output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw)
    if OH < 1 or OW < 1:
        raise ValueError(
            f"input {H}x{W} is smaller than the (dilated) kernel {kh}x{kw} with padding {padding}"
        )
    xp = (
        np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
        if ph or pw
        else x
    )
    xp = np.ascontiguousarray(xp)
    b, c, h, w = xp.strides
    return as_strided(
        xp, (B, C, kh, kw, OH, OW), (b, c, h * dh, w * dw, h * sh, w * sw), writeable=False
    )


def col2im(
    cols: np.ndarray, x_shape: tuple[int, ...], stride=1, padding=0, dilation=1
) -> np.ndarray:
    """Adjoint of im2col: (B, C, kh, kw, OH, OW) -> (B, C, H, W), summing where fields overlap."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, C, kh, kw, OH, OW = cols.shape
    H, W = x_shape[2], x_shape[3]
    out = np.zeros((B, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            out[:, :, u * dh : u * dh + sh * OH : sh, v * dw : v * dw + sw * OW : sw] += cols[
                :, :, u, v
            ]
    return out[:, :, ph : ph + H, pw : pw + W]


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    dilation=1,
    flip: bool = False,
) -> np.ndarray:
    """Cross-correlation (as torch.nn.functional.conv2d), or true convolution with flip=True."""
    if flip:
        weight = weight[:, :, ::-1, ::-1]
    O, C, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != C:
        raise ValueError(f"input of shape {x.shape} does not match a kernel for {C} input channels")
    cols = im2col(x, kh, kw, stride, padding, dilation)  # (B, C, kh, kw, OH, OW)
    B, OH, OW = x.shape[0], cols.shape[4], cols.shape[5]
    # one GEMM: (B OH OW, C kh kw) @ (C kh kw, O)
    y = cols.transpose(0, 4, 5, 1, 2, 3).reshape(B * OH * OW, C * kh * kw) @ weight.reshape(O, -1).T
    y = y.reshape(B, OH, OW, O).transpose(0, 3, 1, 2)  # (B, O, OH, OW)
    return y + bias[None, :, None, None] if bias is not None else y


class Conv2d(Module):
    """y = W * x + b (cross-correlation). Backward, with g = dL/dy and X the im2col matrix:
    dW = g X^T summed over the batch, db = sum g, dX = W^T g, dx = col2im(dX)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        rng: np.random.Generator | None = None,
        dtype=np.float32,
    ):
        rng = rng if rng is not None else np.random.default_rng(0)
        k = kernel_size
        fan_in = in_channels * k * k
        bound = np.sqrt(6.0 / fan_in)  # He-uniform: ReLU networks
        self.W = Parameter(
            rng.uniform(-bound, bound, (out_channels, in_channels, k, k)).astype(dtype)
        )
        self.b = Parameter(np.zeros(out_channels, dtype=dtype))
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x: np.ndarray) -> np.ndarray:
        O, C, kh, kw = self.W.data.shape
        self.x_shape = x.shape
        cols = im2col(x, kh, kw, self.stride, self.padding, self.dilation)
        B, OH, OW = x.shape[0], cols.shape[4], cols.shape[5]
        self.X = cols.transpose(0, 4, 5, 1, 2, 3).reshape(B * OH * OW, C * kh * kw)  # a copy
        y = self.X @ self.W.data.reshape(O, -1).T + self.b.data  # (B OH OW, O)
        return y.reshape(B, OH, OW, O).transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        O, C, kh, kw = self.W.data.shape
        B, _, OH, OW = grad_out.shape
        g = grad_out.transpose(0, 2, 3, 1).reshape(B * OH * OW, O)
        self.W.grad += (g.T @ self.X).reshape(self.W.data.shape)
        self.b.grad += g.sum(axis=0)
        dX = g @ self.W.data.reshape(O, -1)  # (B OH OW, C kh kw)
        dcols = dX.reshape(B, OH, OW, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)
        return col2im(dcols, self.x_shape, self.stride, self.padding, self.dilation)


class MaxPool2d(Module):
    """y = max over each k x k window. Backward: the gradient goes to the arg-max of each window
    (ties: the first, as PyTorch), summed where windows overlap."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.k, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = self.k
        cols = im2col(x, k, k, self.stride, self.padding, pad_value=-np.inf)  # (B, C, k, k, OH, OW)
        B, C, _, _, OH, OW = cols.shape
        flat = cols.reshape(B, C, k * k, OH, OW)
        self.arg = flat.argmax(axis=2)  # (B, C, OH, OW)
        self.x_shape, self.out_shape = x.shape, (B, C, OH, OW)
        return np.take_along_axis(flat, self.arg[:, :, None], axis=2)[:, :, 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        k = self.k
        B, C, OH, OW = self.out_shape
        dcols = np.zeros((B, C, k * k, OH, OW), dtype=grad_out.dtype)
        np.put_along_axis(dcols, self.arg[:, :, None], grad_out[:, :, None], axis=2)
        return col2im(dcols.reshape(B, C, k, k, OH, OW), self.x_shape, self.stride, self.padding)


class AvgPool2d(Module):
    """y = mean over each k x k window (zero padding counted, as PyTorch's default).
    Backward: each input of a window receives g / k^2."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.k, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        cols = im2col(x, self.k, self.k, self.stride, self.padding)
        self.x_shape = x.shape
        return cols.mean(axis=(2, 3))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        k = self.k
        B, C, OH, OW = grad_out.shape
        dcols = np.broadcast_to((grad_out / (k * k))[:, :, None, None], (B, C, k, k, OH, OW))
        return col2im(dcols, self.x_shape, self.stride, self.padding)


class Flatten(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self.shape)
