"""NumPy convolution and pooling against PyTorch and SciPy (hypothesis-drawn shapes, >= 100 cases
each), finite differences, and a small NumPy CNN that learns the digits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnlab.numpy_nn.conv as conv
from nnlab.numpy_nn import SGD, CrossEntropyLoss, Linear, ReLU, Sequential, blas
from nnlab.numpy_nn.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d, conv2d, im2col, output_size
from nnlab.numpy_nn.gradcheck import check_module

CASES = settings(max_examples=100, deadline=None)


@st.composite
def conv_case(draw):
    k = draw(st.integers(1, 4))
    stride, padding, dilation = (
        draw(st.integers(1, 3)),
        draw(st.integers(0, 2)),
        draw(st.integers(1, 2)),
    )
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(
        output_size(H, k, stride, padding, dilation) >= 1
        and output_size(W, k, stride, padding, dilation) >= 1
    )
    B, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31))
    return B, C, O, H, W, k, stride, padding, dilation, seed


@CASES
@given(conv_case())
def test_conv2d_forward_and_backward_equal_torch(case):
    B, C, O, H, W, k, stride, padding, dilation, seed = case
    rng = np.random.default_rng(seed)
    layer = Conv2d(C, O, k, stride, padding, dilation, rng=rng, dtype=np.float64)
    layer.b.data[...] = rng.standard_normal(O)
    x = rng.standard_normal((B, C, H, W))
    y = layer(x)
    g = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx = layer.backward(g)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.W.data, requires_grad=True)
    bt = torch.tensor(layer.b.data, requires_grad=True)
    yt = TF.conv2d(xt, wt, bt, stride, padding, dilation)
    (yt * torch.tensor(g)).sum().backward()
    assert y.shape == tuple(yt.shape)
    assert np.allclose(y, yt.detach().numpy(), atol=1e-10)
    assert np.allclose(dx, xt.grad.numpy(), atol=1e-10)
    assert np.allclose(layer.W.grad, wt.grad.numpy(), atol=1e-10)
    assert np.allclose(layer.b.grad, bt.grad.numpy(), atol=1e-10)


@CASES
@given(conv_case(), st.sampled_from([np.float64, np.float32]))
def test_input_gradient_by_shifts_equals_col2im(case, dtype):
    """The stride-1 input gradient taken as kh*kw BLAS products accumulated at their shifts
    (`Conv2d._input_grad_by_shifts`, used from 2 input channels up) equals col2im's (the layer's
    backward with the shifts switched off) on every drawn shape of the test above, any channel
    count, both precisions (float32: to rounding), the stride drawn as 1."""
    B, C, O, H, W, k, _, padding, dilation, seed = case
    rng = np.random.default_rng(seed)
    layer = Conv2d(C, O, k, 1, padding, dilation, rng=rng, dtype=dtype)
    x = rng.standard_normal((B, C, H, W)).astype(dtype)
    y = layer(x)
    g = rng.standard_normal(y.shape).astype(dtype)
    shifts_from = conv.SHIFT_MIN_CHANNELS
    conv.SHIFT_MIN_CHANNELS = 1 << 30  # every channel count through col2im
    try:
        by_col2im = layer.backward(g)
    finally:
        conv.SHIFT_MIN_CHANNELS = shifts_from
    g_rows = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(-1, O)
    by_shifts = layer._input_grad_by_shifts(g_rows, B, H, W, *y.shape[2:])
    assert by_shifts.dtype == dtype and by_shifts.shape == x.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert np.allclose(by_shifts, by_col2im, atol=tol * max(1.0, np.abs(by_col2im).max()))


def test_wide_layers_take_the_shift_path_and_equal_torch(monkeypatch):
    """From 2 input channels at stride 1 the layer's own backward goes by shifts (the path is
    spied on): checked against PyTorch on an 8 -> 5 layer, padding 1, and padding 2 with
    dilation 2."""
    calls = []
    shifts = Conv2d._input_grad_by_shifts
    monkeypatch.setattr(
        Conv2d, "_input_grad_by_shifts", lambda self, *a: calls.append(1) or shifts(self, *a)
    )
    rng = np.random.default_rng(3)
    for padding, dilation in ((1, 1), (2, 2)):
        layer = Conv2d(8, 5, 3, 1, padding, dilation, rng=rng, dtype=np.float64)
        x = rng.standard_normal((4, 8, 11, 9))
        y = layer(x)
        g = rng.standard_normal(y.shape)
        layer.zero_grad()
        dx = layer.backward(g)
        xt = torch.tensor(x, requires_grad=True)
        yt = TF.conv2d(
            xt, torch.tensor(layer.W.data), torch.tensor(layer.b.data), 1, padding, dilation
        )
        (yt * torch.tensor(g)).sum().backward()
        assert np.allclose(dx, xt.grad.numpy(), atol=1e-10)
    assert len(calls) == 2 and blas.available(np.float64)


@st.composite
def pool_case(draw):
    k = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 4))
    padding = draw(st.integers(0, k // 2))  # PyTorch's limit: padding <= kernel / 2
    H, W = draw(st.integers(k, 10)), draw(st.integers(k, 10))
    return (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        H,
        W,
        k,
        stride,
        padding,
        draw(st.integers(0, 2**31)),
    )


@CASES
@given(pool_case())
def test_max_pool_equals_torch(case):
    B, C, H, W, k, stride, padding, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C, H, W))  # continuous: no ties, so the arg-max is unique
    pool = MaxPool2d(k, stride, padding)
    y = pool(x)
    g = rng.standard_normal(y.shape)
    dx = pool.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.max_pool2d(xt, k, stride, padding)
    (yt * torch.tensor(g)).sum().backward()
    assert np.allclose(y, yt.detach().numpy()) and np.allclose(dx, xt.grad.numpy())


@CASES
@given(pool_case())
def test_avg_pool_equals_torch(case):
    B, C, H, W, k, stride, padding, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C, H, W))
    pool = AvgPool2d(k, stride, padding)
    y = pool(x)
    g = rng.standard_normal(y.shape)
    dx = pool.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.avg_pool2d(xt, k, stride, padding)
    (yt * torch.tensor(g)).sum().backward()
    assert np.allclose(y, yt.detach().numpy()) and np.allclose(dx, xt.grad.numpy())


@CASES
@given(
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(5, 12),
    st.integers(5, 12),
    st.integers(0, 2**31),
)
def test_true_convolution_equals_scipy(kh, kw, H, W, seed):
    """flip=True is convolution: with padding k - 1 it is scipy's 'full' mode,
    without it 'valid'."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((H, W)), rng.standard_normal((kh, kw))
    valid = conv2d(x[None, None], w[None, None], flip=True)[0, 0]
    assert np.allclose(valid, scipy.signal.convolve2d(x, w, mode="valid"))
    if kh == kw:
        full = conv2d(x[None, None], w[None, None], padding=kh - 1, flip=True)[0, 0]
        assert np.allclose(full, scipy.signal.convolve2d(x, w, mode="full"))
    corr = conv2d(x[None, None], w[None, None])[0, 0]  # what deep learning calls convolution
    assert np.allclose(corr, scipy.signal.correlate2d(x, w, mode="valid"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2d(2, 3, 3, stride=2, padding=1, dtype=np.float64),
        lambda: Conv2d(1, 2, 2, dilation=2, dtype=np.float64),
        lambda: MaxPool2d(2),
        lambda: AvgPool2d(3, 2, 1),
        lambda: Flatten(),
    ],
    ids=["conv-stride-pad", "conv-dilated", "maxpool", "avgpool", "flatten"],
)
def test_conv_layers_match_finite_differences(make):
    layer = make()
    channels = layer.W.data.shape[1] if isinstance(layer, Conv2d) else 2
    x = np.random.default_rng(3).standard_normal((2, channels, 7, 7))
    errors = check_module(layer, x)
    assert max(errors.values()) < 1e-6, errors


def test_im2col_is_a_view_without_copies():
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float64).reshape(2, 3, 6, 6)
    cols = im2col(x, 3, 3, stride=1)
    assert cols.shape == (2, 3, 3, 3, 4, 4) and np.shares_memory(cols, x)
    assert cols[1, 2, 0, 1, 3, 2] == x[1, 2, 3, 3]


def test_numpy_cnn_learns_digits():
    from nnlab.data import load_splits

    splits = load_splits("digits", seed=0)
    x, y = splits["train"].images.astype(np.float32), splits["train"].labels
    rng = np.random.default_rng(0)
    net = Sequential(
        Conv2d(1, 8, 3, padding=1, rng=rng),
        ReLU(),
        MaxPool2d(2),
        Conv2d(8, 16, 3, padding=1, rng=rng),
        ReLU(),
        MaxPool2d(2),
        Flatten(),
        Linear(16 * 2 * 2, 10, rng=rng),
    )
    opt, loss = SGD(net.parameters(), lr=0.05, momentum=0.9), CrossEntropyLoss()
    for epoch in range(8):
        order = np.random.default_rng(epoch).permutation(len(x))
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            loss(net(x[idx]), y[idx])
            opt.zero_grad()
            net.backward(loss.backward())
            opt.step()
    test = splits["test"]
    acc = (net(test.images.astype(np.float32)).argmax(1) == test.labels).mean()
    assert acc > 0.9, acc


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="input channels"):
        conv2d(np.zeros((1, 2, 5, 5)), np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="smaller than"):
        conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))


def test_max_pool_ties_go_to_the_first_maximum_as_torch():
    """Integer inputs in 0..2 tie in most windows (overlapping ones too): the gradient goes to the
    first maximum in row-major order, where PyTorch sends it."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 3, 9, 9)).astype(np.float64)
    for k, stride, padding in ((2, 2, 0), (3, 1, 1), (3, 2, 0)):
        pool = MaxPool2d(k, stride, padding)
        y = pool(x)
        g = rng.standard_normal(y.shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = TF.max_pool2d(xt, k, stride, padding)
        (yt * torch.tensor(g)).sum().backward()
        assert np.array_equal(y, yt.detach().numpy())
        assert np.allclose(pool.backward(g), xt.grad.numpy(), atol=1e-12)


def test_layers_take_channels_last_memory_and_reuse_buffers_across_shapes():
    """Inputs and gradients stored channels-last (an NCHW view of NHWC memory, as they flow
    between the engine's layers) give PyTorch's results; a layer's reused buffers follow a change
    of batch size and back."""
    rng = np.random.default_rng(1)
    conv = Conv2d(3, 5, 3, padding=1, rng=rng, dtype=np.float64)
    conv.b.data[...] = rng.standard_normal(5)
    pool = MaxPool2d(2)
    for batch in (4, 2, 4):
        x = rng.standard_normal((batch, 8, 8, 3)).transpose(0, 3, 1, 2)  # channels-last memory
        g = rng.standard_normal((batch, 4, 4, 5)).transpose(0, 3, 1, 2)
        conv.zero_grad()
        y = pool(conv(x))
        dx = conv.backward(pool.backward(g))
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(conv.W.data, requires_grad=True)
        bt = torch.tensor(conv.b.data, requires_grad=True)
        yt = TF.max_pool2d(TF.conv2d(xt, wt, bt, padding=1), 2)
        (yt * torch.tensor(g)).sum().backward()
        assert np.allclose(y, yt.detach().numpy(), atol=1e-12)
        assert np.allclose(dx, xt.grad.numpy(), atol=1e-12)
        assert np.allclose(conv.W.grad, wt.grad.numpy(), atol=1e-12)
        assert np.allclose(conv.b.grad, bt.grad.numpy(), atol=1e-12)


def test_first_layer_skips_the_input_gradient_and_keeps_the_weight_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1, 6, 6))

    def net():
        r = np.random.default_rng(3)
        return Sequential(
            Conv2d(1, 2, 3, padding=1, rng=r, dtype=np.float64),
            ReLU(),
            Flatten(),
            Linear(72, 3, rng=r, dtype=np.float64),
        )

    full, skip = net(), net().no_input_grad()
    g = rng.standard_normal((4, 3))
    for n in (full, skip):
        n.zero_grad()
        n(x)
    assert full.backward(g).shape == x.shape and skip.backward(g) is None
    for a, b in zip(full.parameters(), skip.parameters()):
        assert np.array_equal(a.grad, b.grad)
