"""2-D convolution and pooling by im2col: every receptive field becomes a row of a matrix, and the
convolution becomes one matrix product (GEMM). No Python loop over pixels: im2col is a strided
view of the padded input; its adjoint col2im (the backward pass) loops over the kh * kw kernel
offsets only.

Shapes: x (B, C, H, W), weight (O, C, kh, kw), output (B, O, OH, OW) with
    OH = floor((H + 2 p - d (kh - 1) - 1) / s) + 1   (likewise OW),
the formula of torch.nn.Conv2d for stride s, zero padding p and dilation d.

Deep-learning "convolution" is cross-correlation,
y[o, i, j] = sum_{c,u,v} w[o, c, u, v] x[c, s i + d u, s j + d v];
true convolution flips the kernel, w[o, c, kh - 1 - u, kw - 1 - v] (`conv2d(..., flip=True)`).

Speed (bench/conv_speed.py, forward + backward against torch.nn.functional.conv2d, 2 cores;
the figures in docs/RESULTS.md). The arrays are NCHW outside, as PyTorch's; inside, the layer
works channels-last (B, H, W, C):
- The im2col matrix X (B OH OW, kh kw C) is copied from a view whose last axes are (v, c): each
  row is kh runs of kw*C contiguous floats. From NCHW memory the same copy gathers single floats.
- The GEMM X @ W_mat gives the output channels-last, (B OH OW, O); it is returned as an NCHW
  *view*, and NumPy keeps that memory order through ReLU and pooling, so the next layer's move to
  channels-last is a plain copy, and the gradient arrives channels-last too.
- Backward, dX = g W_mat^T would be a (B OH OW, kh kw C) matrix read back with strides by col2im;
  instead kh*kw GEMMs g @ W[u, v]^T each give a contiguous (B OH OW, C) block that is added at
  its offset (u, v): the layer step 1.2-1.9x faster than with the single GEMM on the benched
  shapes.
- At stride 1 even those adds go: each product is accumulated by the GEMM itself at a row shift
  of the padded grid (`Conv2d._input_grad_by_shifts`, C <- A B + C through NumPy's own BLAS,
  `nnlab.numpy_nn.blas`): the layer step another 1.13-1.29x faster, bit-identical.
- Buffers private to the layer are reused between steps (`Workspace`).
Together: 64 x 16 -> 32 at 14x14 went from 19.5 ms to 6.6 ms, 64 x 32 -> 32 at 28x28 from 176 ms
to 46 ms before the shifted input gradient, which took them to 1.14 and 1.13 of PyTorch (from
1.40 and 1.38 in the same run). What is left is single-threaded NumPy memory work (the im2col
copy, the NCHW <-> channels-last copies) beside PyTorch's two-threaded direct convolution
(oneDNN).
Splitting that work over threads measured slower: OpenBLAS's idle threads keep spinning on the
cores after each GEMM. Also slower, measured: at stride 1, dX as a forward convolution of the
padded gradient with the turned kernel (a second im2col and one GEMM instead of the kh*kw thin
GEMMs and adds): 62.6 vs 60.9 ms on 64 x 32 -> 32 at 28x28, 10.1 vs 8.5 ms on 64 x 16 -> 32 at
14x14, 11.4 vs 5.7 ms on 64 x 1 -> 16 at 28x28 (forward + backward, median of 11, interleaved;
an exploratory A/B against the code in git, script not kept):
the second 58 MB im2col copy costs more than the adds it saves.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnlab.numpy_nn import blas
from nnlab.numpy_nn.layers import Module, Parameter

SHIFT_MIN_CHANNELS = 2  # one input channel: col2im (see Conv2d._input_grad_by_shifts)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def output_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _check_fits(H: int, W: int, kh: int, kw: int, OH: int, OW: int, padding) -> None:
    if OH < 1 or OW < 1:
        raise ValueError(
            f"input {H}x{W} is smaller than the (dilated) kernel {kh}x{kw} with padding {padding}"
        )


def im2col(
    x: np.ndarray, kh: int, kw: int, stride=1, padding=0, dilation=1, pad_value: float = 0.0
) -> np.ndarray:
    """(B, C, H, W) -> (B, C, kh, kw, OH, OW), a view (no copy) of the padded input:
    entry [b, c, u, v, i, j] = x_pad[b, c, s i + d u, s j + d v]. The textbook layout; the
    layers below use the same view channels-last (`fields`)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, C, H, W = x.shape
    OH, OW = output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw)
    _check_fits(H, W, kh, kw, OH, OW, padding)
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


class Workspace:
    """Arrays a layer keeps between steps, reused while the shape and dtype repeat. A fresh large
    array pays a page fault per 4 KiB page when first written: the 58 MB im2col matrix of the
    64 x 32 -> 32 x 28 x 28 layer took 15.9 ms to fill fresh and 8.6 ms reused
    (bench/numpy_profile.py, median of 15).
    Only arrays private to the layer live here, never one it returns."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        a = self.arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.arrays[name] = np.empty(shape, dtype=dtype)
        return a


def pad_channels_last(x: np.ndarray, ph: int, pw: int, out: np.ndarray | None = None) -> np.ndarray:
    """(B, C, H, W) -> zero-padded (B, H + 2 ph, W + 2 pw, C): one copy that pads and moves the
    channels last (free of transposing work when x is an NCHW view of channels-last memory)."""
    B, C, H, W = x.shape
    xp = np.empty((B, H + 2 * ph, W + 2 * pw, C), dtype=x.dtype) if out is None else out
    xp[:, :ph], xp[:, ph + H :], xp[:, :, :pw], xp[:, :, pw + W :] = 0, 0, 0, 0  # the border only
    xp[:, ph : ph + H, pw : pw + W] = x.transpose(0, 2, 3, 1)
    return xp


def fields(xp: np.ndarray, kh: int, kw: int, OH: int, OW: int, stride, dilation) -> np.ndarray:
    """im2col channels-last: padded (B, Hp, Wp, C) -> (B, OH, OW, kh, kw, C), a view:
    entry [b, i, j, u, v, c] = xp[b, s i + d u, s j + d v, c]; reshaped to (B OH OW, kh kw C) it
    is the im2col matrix, one receptive field per row."""
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    b, h, w, c = xp.strides
    return as_strided(
        xp,
        (len(xp), OH, OW, kh, kw, xp.shape[3]),
        (b, h * sh, w * sw, h * dh, w * dw, c),
        writeable=False,
    )


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
    return _conv_forward(x, weight, bias, _pair(stride), _pair(padding), _pair(dilation))[0]


def _conv_forward(x, weight, bias, stride, padding, dilation, ws: Workspace | None = None):
    """y = X @ W_mat (+ b) with X the channels-last im2col matrix; returns y (an NCHW view of
    channels-last memory), X and W_mat (kh kw C, O) for the backward pass."""
    ws = ws or Workspace()
    O, C, kh, kw = weight.shape
    B, _, H, W = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    OH, OW = output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw)
    _check_fits(H, W, kh, kw, OH, OW, padding)
    dtype = x.dtype
    xp = pad_channels_last(x, ph, pw, ws.get("x_pad", (B, H + 2 * ph, W + 2 * pw, C), dtype))
    X = ws.get("X", (B, OH, OW, kh, kw, C), dtype)
    np.copyto(X, fields(xp, kh, kw, OH, OW, stride, dilation))  # the one copy: im2col
    X = X.reshape(B * OH * OW, kh * kw * C)
    W_mat = weight.transpose(2, 3, 1, 0).reshape(kh * kw * C, O)  # rows in X's column order
    y = X @ W_mat  # (B OH OW, O)
    if bias is not None:
        y += bias
    return y.reshape(B, OH, OW, O).transpose(0, 3, 1, 2), X, W_mat


class Conv2d(Module):
    """y = W * x + b (cross-correlation). Backward, with g = dL/dy as a (B OH OW, O) matrix and X
    the im2col matrix: dW = X^T g (summed over the batch by the product), db = sum g, and
    dX = g W_mat^T, whose row for output (b, i, j) and columns for kernel offset (u, v) belong to
    input pixel (s i + d u, s j + d v): col2im adds them there."""

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
        self.ws = Workspace()

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.W.data.shape[1]:
            raise ValueError(
                f"input of shape {x.shape} does not match a layer for "
                f"{self.W.data.shape[1]} input channels"
            )
        self.x_shape = x.shape
        y, self.X, self.W_mat = _conv_forward(
            x,
            self.W.data,
            self.b.data,
            _pair(self.stride),
            _pair(self.padding),
            _pair(self.dilation),
            self.ws,
        )
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        O, C, kh, kw = self.W.data.shape
        B, _, OH, OW = grad_out.shape
        (sh, sw), (ph, pw), (dh, dw) = _pair(self.stride), _pair(self.padding), _pair(self.dilation)
        H, W = self.x_shape[2:]
        g = grad_out.transpose(0, 2, 3, 1).reshape(B * OH * OW, O)  # copies only if NCHW memory
        self.W.grad += (self.X.T @ g).reshape(kh, kw, C, O).transpose(3, 2, 0, 1)
        self.b.add_matmul(np.ones(len(g), dtype=g.dtype), g)  # sum over rows, as a BLAS product
        if not self.input_grad:
            return None
        dtype = np.result_type(g, self.W_mat)
        if (sh, sw) == (1, 1) and C >= SHIFT_MIN_CHANNELS and blas.available(dtype):
            return self._input_grad_by_shifts(g, B, H, W, OH, OW)
        # col2im of dX = g W_mat^T, one kernel offset (u, v) at a time: its (B OH OW, C) block
        # goes to the input pixels (s i + d u, s j + d v), summed where receptive fields overlap.
        dxp = np.zeros((B, H + 2 * ph, W + 2 * pw, C), dtype=np.result_type(g, self.W_mat))
        W_uv = self.W_mat.reshape(kh, kw, C, O)
        block = self.ws.get("dX_uv", (B * OH * OW, C), dxp.dtype)
        for u in range(kh):
            for v in range(kw):
                rows = slice(u * dh, u * dh + sh * (OH - 1) + 1, sh)
                cols = slice(v * dw, v * dw + sw * (OW - 1) + 1, sw)
                np.matmul(g, W_uv[u, v].T, out=block)
                dxp[:, rows, cols] += block.reshape(B, OH, OW, C)
        return dxp[:, ph : ph + H, pw : pw + W].transpose(0, 3, 1, 2)

    def _input_grad_by_shifts(self, g, B, H, W, OH, OW):
        """dX at stride 1 without col2im's adds: the BLAS adds each offset's product itself.

        Lay the gradient out on the padded input's grid, g_p (B, Hp, Wp, O), zero outside the
        OH x OW outputs, and flatten both it and the padded input gradient dX_p (B, Hp, Wp, C) to
        rows. Output (b, i, j) is row r = (b Hp + i) Wp + j, and the input pixel it reads at
        kernel offset (u, v) is row r + d (u Wp + v): a fixed shift for the whole batch (a
        receptive field never crosses into the next image, and the zero rows of g_p add
        nothing). So col2im is kh kw products, each accumulated at its shift,
            dX_p[r + d (u Wp + v)] += g_p[r] W[u, v]^T      for all r at once,
        and GEMM's own C <- A B + C (beta = 1) does the adding (`blas.add_product`): no
        (B OH OW, C) block written and read back, and the adds run on the BLAS's threads.
        64 x 32 -> 32 at 28x28: the input gradient in 10.1 ms instead of 19.2 ms, 64 x 16 -> 32
        at 14x14 in 2.1 instead of 3.3 ms (interleaved, median of 15; exploratory, script not
        kept: the layer's figures that reproduce are `bench/conv_speed.py --before`'s). With
        one input channel the products are too thin: 64 x C -> 16 at 28x28 took 2.7 ms vs
        col2im's 1.5 for C = 1, 3.2 vs 3.5 for C = 2, 3.9 vs 6.0 for C = 8 (same kind of
        exploratory timing); col2im stays below SHIFT_MIN_CHANNELS."""
        O, C, kh, kw = self.W.data.shape
        (ph, pw), (dh, dw) = _pair(self.padding), _pair(self.dilation)
        Hp, Wp = H + 2 * ph, W + 2 * pw
        dtype = np.result_type(g, self.W_mat)
        gp = self.ws.get("g_p", (B, Hp, Wp, O), dtype)
        gp[:, OH:], gp[:, :OH, OW:] = 0, 0  # the rows and columns past the outputs
        gp[:, :OH, :OW] = g.reshape(B, OH, OW, O)
        g_rows = gp.reshape(B * Hp * Wp, O)
        dxp = np.zeros((B, Hp, Wp, C), dtype=dtype)
        dx_rows = dxp.reshape(B * Hp * Wp, C)
        W_uv = np.ascontiguousarray(self.W_mat.reshape(kh, kw, C, O), dtype=dtype)
        for u in range(kh):
            for v in range(kw):
                shift = dh * u * Wp + dw * v
                n = len(g_rows) - shift
                blas.add_product(dx_rows[shift : shift + n], g_rows[:n], W_uv[u, v])
        return dxp[:, ph : ph + H, pw : pw + W].transpose(0, 3, 1, 2)


class _Pool2d(Module):
    """Pooling as k * k strided views of the padded input, one per window offset (u, v): view
    [b, c, i, j] = x_pad[b, c, s i + u, s j + v]. Reducing the k * k views element-wise gives the
    pooled map without copying any window, and the backward adds each view's share of the
    gradient back at its offset (col2im, k * k adds), with no argmax. 2x2 max pooling of
    64 x 16 x 28 x 28, forward + backward: 16.2 ms through im2col + argmax, 3.9 ms so."""

    pad_value = 0.0

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.k, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def _views(self, x: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
        k, s, p = self.k, self.stride, self.padding
        B, C, H, W = x.shape
        OH, OW = output_size(H, k, s, p, 1), output_size(W, k, s, p, 1)
        _check_fits(H, W, k, k, OH, OW, p)
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.pad_value) if p else x
        offsets = [
            (slice(u, u + s * (OH - 1) + 1, s), slice(v, v + s * (OW - 1) + 1, s))
            for u in range(k)
            for v in range(k)
        ]  # row-major: the order in which PyTorch scans a window
        self.x_shape, self.xp_shape = x.shape, xp.shape
        return xp, offsets

    def _unpad(self, dxp: np.ndarray) -> np.ndarray:
        p, (H, W) = self.padding, self.x_shape[2:]
        return dxp[:, :, p : p + H, p : p + W]


class MaxPool2d(_Pool2d):
    """y = max over each k x k window. Backward: the gradient goes to the arg-max of each window
    (ties: the first in row-major order, as PyTorch), summed where windows overlap."""

    pad_value = -np.inf

    def forward(self, x: np.ndarray) -> np.ndarray:
        xp, self.offsets = self._views(x)
        rows, cols = self.offsets[0]
        y = xp[:, :, rows, cols].copy(order="K")  # "K": keep the memory order of x
        for rows, cols in self.offsets[1:]:
            np.maximum(y, xp[:, :, rows, cols], out=y)
        self.xp, self.y = xp, y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Windows that do not overlap (stride >= kernel, the usual 2x2 pooling) own their pixels:
        each offset's share is written straight into its view of dX, with no zero fill where
        the windows tile the input and no add (64 x 64 x 14 x 14, forward + backward: 4.2 ms
        against 6.4 before, `bench/conv_speed.py --only pool`, one run each on the same
        machine). Overlapping windows add their shares."""
        disjoint = self.stride >= self.k
        tiled = self.stride == self.k and all(
            n * self.k == size for n, size in zip(self.y.shape[2:], self.xp.shape[2:])
        )  # every pixel in one window: nothing left to zero
        dxp = np.empty_like(self.xp) if tiled else np.zeros_like(self.xp)
        left = grad_out.copy(order="K")  # the gradient of windows whose arg-max is not found yet
        for n, (rows, cols) in enumerate(self.offsets):
            first_max = self.xp[:, :, rows, cols] == self.y  # ties: the first max takes it all
            if disjoint:
                share = dxp[:, :, rows, cols]
                np.multiply(left, first_max, out=share)
            else:
                share = left * first_max
                dxp[:, :, rows, cols] += share
            if n < len(self.offsets) - 1:
                left -= share
        return self._unpad(dxp)


class AvgPool2d(_Pool2d):
    """y = mean over each k x k window (zero padding counted, as PyTorch's default).
    Backward: each input of a window receives g / k^2."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        xp, self.offsets = self._views(x)
        rows, cols = self.offsets[0]
        y = xp[:, :, rows, cols].copy(order="K")
        for rows, cols in self.offsets[1:]:
            y += xp[:, :, rows, cols]
        y /= self.k * self.k
        self.dtype = xp.dtype
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dxp = np.zeros(self.xp_shape, dtype=np.result_type(grad_out, self.dtype))
        share = grad_out / (self.k * self.k)
        for rows, cols in self.offsets:
            dxp[:, :, rows, cols] += share
        return self._unpad(dxp)


class Flatten(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self.shape)
