"""The NumPy engine against finite differences and torch.autograd, plus its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nnlab.numpy_nn import (
    SGD,
    BCELoss,
    CrossEntropyLoss,
    Linear,
    MSELoss,
    NLLLoss,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Tanh,
    mlp,
)
from nnlab.numpy_nn import functional as F
from nnlab.numpy_nn.gradcheck import check_module, numerical_grad, relative_error
from nnlab.numpy_nn.least_squares import closed_form, gradient_descent, sample_pairs
from nnlab.numpy_nn.perceptron import INPUTS, TRUTH_TABLES, Perceptron

RNG = np.random.default_rng(0)
F64 = np.float64


# ---- finite differences -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: Linear(5, 3, rng=np.random.default_rng(1), dtype=F64),
        lambda: Sigmoid(),
        lambda: Tanh(),
        lambda: ReLU(),
        lambda: Residual(Sequential(Linear(4, 4, dtype=F64), Tanh())),
        lambda: mlp([4, 6, 5, 3], "sigmoid", dtype=F64, seed=2),
    ],
    ids=["linear", "sigmoid", "tanh", "relu", "residual", "mlp"],
)
def test_layer_gradients_match_finite_differences(make):
    layer = make()
    width = 5 if isinstance(layer, Linear) else 4
    x = RNG.standard_normal((7, width))
    x[np.abs(x) < 1e-3] = 0.1  # keep ReLU away from its kink, where differences are meaningless
    errors = check_module(layer, x)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(
    "loss,pred,target",
    [
        (CrossEntropyLoss(), RNG.standard_normal((6, 4)), RNG.integers(0, 4, 6)),
        (NLLLoss(), F.softmax(RNG.standard_normal((6, 4))), RNG.integers(0, 4, 6)),
        (MSELoss(), RNG.standard_normal((6, 3)), RNG.standard_normal((6, 3))),
        (BCELoss(), F.sigmoid(RNG.standard_normal((6, 3))), RNG.integers(0, 2, (6, 3)).astype(F64)),
    ],
    ids=["cross-entropy", "nll-on-softmax", "mse", "bce"],
)
def test_loss_gradients_match_finite_differences(loss, pred, target):
    pred = pred.copy()
    loss(pred, target)
    analytic = loss.backward()
    numeric = numerical_grad(lambda: loss(pred, target), pred)
    assert relative_error(analytic, numeric) < 1e-6


def test_softmax_backward_matches_finite_differences():
    x, g = RNG.standard_normal((5, 7)), RNG.standard_normal((5, 7))
    analytic = F.softmax_backward(g, F.softmax(x))
    assert (
        relative_error(analytic, numerical_grad(lambda: float((F.softmax(x) * g).sum()), x)) < 1e-6
    )


def test_combined_gradient_equals_chain_through_softmax():
    z, y = RNG.standard_normal((8, 5)), RNG.integers(0, 5, 8)
    p = F.softmax(z)
    chained = F.softmax_backward(F.nll_backward(p, y, eps=0), p)
    assert np.allclose(chained, F.cross_entropy_backward(z, y), atol=1e-12)


# ---- against PyTorch -----------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_mlp_gradients_equal_autograd(activation):
    """A 3-layer MLP: same weights, same batch -> same loss and parameter gradients (float64)."""
    net = mlp([10, 16, 12, 4], activation, dtype=F64, seed=3)
    x, y = RNG.standard_normal((9, 10)), RNG.integers(0, 4, 9)
    loss = CrossEntropyLoss()
    value = loss(net(x), y)
    net.zero_grad()
    net.backward(loss.backward())

    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    params = [
        torch.tensor(p.data, requires_grad=True) for p in net.parameters()
    ]  # W1 b1 W2 b2 W3 b3
    h = torch.tensor(x)
    for i in range(0, 6, 2):
        h = h @ params[i] + params[i + 1]
        if i < 4:
            h = act(h)
    ref = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    ref.backward()
    assert abs(value - ref.item()) < 1e-12
    for p, t in zip(net.parameters(), params):
        assert relative_error(p.grad, t.grad.numpy()) < 1e-6


def test_sigmoid_layer_gradients_equal_autograd():
    """y = sigma(W x + b): dy/dW, dy/dx, dy/db analytic vs autograd (vector-Jacobian with g)."""
    layer = Sequential(Linear(6, 3, rng=np.random.default_rng(5), dtype=F64), Sigmoid())
    x, g = RNG.standard_normal((4, 6)), RNG.standard_normal((4, 3))
    layer.zero_grad()
    layer(x)
    dx = layer.backward(g)
    W = torch.tensor(layer.layers[0].W.data, requires_grad=True)
    b = torch.tensor(layer.layers[0].b.data, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (torch.sigmoid(xt @ W + b) * torch.tensor(g)).sum().backward()
    assert relative_error(dx, xt.grad.numpy()) < 1e-10
    assert relative_error(layer.layers[0].W.grad, W.grad.numpy()) < 1e-10
    assert relative_error(layer.layers[0].b.grad, b.grad.numpy()) < 1e-10


def test_sgd_matches_torch():
    p0 = RNG.standard_normal((4, 3))
    grads = [RNG.standard_normal((4, 3)) for _ in range(5)]
    lin = Linear(4, 3, dtype=F64)
    lin.W.data[...] = p0
    ours = SGD([lin.W], lr=0.1, momentum=0.9, weight_decay=0.01)
    t = torch.tensor(p0, requires_grad=True)
    ref = torch.optim.SGD([t], lr=0.1, momentum=0.9, weight_decay=0.01)
    for g in grads:
        lin.W.grad[...] = g
        ours.step()
        t.grad = torch.tensor(g)
        ref.step()
    assert np.allclose(lin.W.data, t.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("one_pass", [True, False])
def test_sgd_without_weight_decay_matches_torch_by_blas_and_by_numpy(
    dtype, momentum, one_pass, monkeypatch
):
    """Without weight decay the update runs as BLAS axpby/axpy through NumPy's own OpenBLAS;
    with the BLAS switched off, as NumPy passes: both equal torch.optim.SGD (float32: to
    rounding), over two parameters of different shapes."""
    import nnlab.numpy_nn.optim as optim

    if not one_pass:
        monkeypatch.setattr(optim.blas, "available", lambda dtype: False)
    assert optim._one_pass(np.zeros(3, dtype)) == one_pass
    rng = np.random.default_rng(7)
    lin = Linear(5, 3, dtype=dtype)
    lin.W.data[...] = rng.standard_normal((5, 3))
    ours = SGD(lin.parameters(), lr=0.05, momentum=momentum)
    ts = [torch.tensor(q.data, requires_grad=True) for q in lin.parameters()]
    ref = torch.optim.SGD(ts, lr=0.05, momentum=momentum)
    for _ in range(6):
        for q, t in zip(lin.parameters(), ts):
            g = rng.standard_normal(q.data.shape).astype(dtype)
            q.grad[...] = g
            t.grad = torch.tensor(g)
        ours.step()
        ref.step()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for q, t in zip(lin.parameters(), ts):
        assert q.data.dtype == dtype and np.allclose(q.data, t.detach().numpy(), atol=tol)


# ---- properties ----------------------------------------------------------------------------------
finite = st.floats(-50, 50, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    arrays(F64, st.tuples(st.integers(1, 5), st.integers(2, 8)), elements=finite),
    st.floats(-1e4, 1e4),
)
def test_softmax_properties(x, c):
    p = F.softmax(x)
    assert np.all(p > 0) and np.all(p <= 1) and np.allclose(p.sum(-1), 1)
    assert np.allclose(F.softmax(x + c), p, atol=1e-9)  # shift invariance
    big = F.softmax(x + 1e4)  # stable far from 0
    assert np.all(np.isfinite(big)) and np.allclose(big.sum(-1), 1)


@settings(max_examples=200, deadline=None)
@given(arrays(F64, st.integers(1, 20), elements=st.floats(-30, 30)))
def test_sigmoid_and_tanh_identities(x):
    s = F.sigmoid(x)
    assert np.all((s >= 0) & (s <= 1))
    h = 1e-6
    numeric = (F.sigmoid(x + h) - F.sigmoid(x - h)) / (2 * h)
    assert np.allclose(F.sigmoid_backward(np.ones_like(x), s), numeric, atol=1e-8)  # s' = s (1 - s)
    assert np.allclose(F.tanh(x), 2 * F.sigmoid(2 * x) - 1, atol=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(np.array([-1e4, -800.0, 0.0, 800.0, 1e4]))
    assert s.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_linear_stack_without_activation_collapses():
    net = Sequential(
        Linear(8, 16, dtype=F64, rng=np.random.default_rng(1)),
        Linear(16, 6, dtype=F64, rng=np.random.default_rng(2)),
        Linear(6, 3, dtype=F64, rng=np.random.default_rng(3)),
    )
    W = net.layers[0].W.data @ net.layers[1].W.data @ net.layers[2].W.data
    b = (net.layers[0].b.data @ net.layers[1].W.data + net.layers[1].b.data) @ net.layers[
        2
    ].W.data + net.layers[2].b.data
    x = RNG.standard_normal((20, 8))
    assert np.allclose(net(x), x @ W + b, atol=1e-12)


def test_zero_init_never_breaks_symmetry():
    net = mlp([4, 8, 3], "sigmoid", init="zero", dtype=F64)
    opt, loss = SGD(net.parameters(), lr=0.5), CrossEntropyLoss()
    x, y = RNG.standard_normal((32, 4)), RNG.integers(0, 3, 32)
    for _ in range(20):
        opt.zero_grad()
        loss(net(x), y)
        net.backward(loss.backward())
        opt.step()
    W1 = net.layers[0].W.data
    assert np.allclose(W1, W1[:, :1])  # all hidden units are still the same unit


# ---- perceptron ----------------------------------------------------------------------------------
@pytest.mark.parametrize("gate", ["NAND", "AND", "OR", "NOR"])
def test_perceptron_learns_linearly_separable_gates(gate):
    p = Perceptron()
    converged, epochs = p.fit(INPUTS, TRUTH_TABLES[gate])
    assert converged and epochs < 20
    assert p.predict(INPUTS).tolist() == TRUTH_TABLES[gate].tolist()


def test_hand_chosen_nand_weights():
    p = Perceptron(np.array([-2.0, -2.0]), 3.0)
    assert p.predict(INPUTS).tolist() == [1, 1, 1, 0]


def test_xor_defeats_the_perceptron_but_not_a_two_layer_mlp():
    converged, _ = Perceptron().fit(INPUTS, TRUTH_TABLES["XOR"], max_epochs=1000)
    assert not converged
    net = mlp([2, 8, 2], "tanh", dtype=F64, seed=0)
    opt, loss = SGD(net.parameters(), lr=0.5, momentum=0.9), CrossEntropyLoss()
    for _ in range(300):
        opt.zero_grad()
        loss(net(INPUTS), TRUTH_TABLES["XOR"])
        net.backward(loss.backward())
        opt.step()
    assert net(INPUTS).argmax(1).tolist() == [0, 1, 1, 0]


# ---- least squares -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [200, 2000, 20000])
@pytest.mark.parametrize("c", [-0.8, -0.3, 0.0, 0.5, 0.9])
def test_least_squares_recovers_the_correlation(c, n):
    x, y = sample_pairs(c, n, np.random.default_rng([int(1000 * (c + 1)), n]))
    b0, b1 = closed_form(x, y)
    # sd of the slope estimate is sqrt((1 - c^2) / n); 5 sd keeps the test honest but not flaky
    tol = 5 * np.sqrt((1 - c * c) / n) + 1e-12
    assert abs(b1 - c) < tol and abs(b0) < 5 / np.sqrt(n)
    g0, g1 = gradient_descent(x, y)
    assert abs(g1 - b1) < 1e-6 and abs(g0 - b0) < 1e-6


def test_engine_imports_numpy_only():
    """nnlab.numpy_nn is the from-scratch engine: SciPy, scikit-learn and PyTorch are references in
    the tests, never dependencies of the engine."""
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, nnlab.numpy_nn as e\n"
        "for m in pkgutil.iter_modules(e.__path__): "
        "importlib.import_module('nnlab.numpy_nn.' + m.name)\n"
        "print(sorted(k for k in ('torch', 'scipy', 'sklearn', 'matplotlib') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_linear_equals_torch_linear_forward_and_backward():
    """Our y = x W + b with W: (in, out) against torch's y = x W^T + b with weight: (out, in):
    the same weights, input and upstream gradient give the same y, dL/dx, dL/dW and dL/db."""
    layer = Linear(6, 4, rng=np.random.default_rng(5), dtype=F64)
    layer.b.data[...] = RNG.standard_normal(4)  # the engine starts b at zero; test a nonzero one
    ref = torch.nn.Linear(6, 4, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.W.data.T))  # (out, in)
        ref.bias.copy_(torch.from_numpy(layer.b.data))
    x, g = RNG.standard_normal((7, 6)), RNG.standard_normal((7, 4))

    layer.zero_grad()
    y = layer(x)
    dx = layer.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.from_numpy(g))

    tol = dict(rtol=0, atol=1e-12)  # float64 on both sides
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.W.grad, ref.weight.grad.numpy().T, **tol)  # (in, out)
    np.testing.assert_allclose(layer.b.grad, ref.bias.grad.numpy(), **tol)


def test_gradients_accumulate_until_zero_grad_as_in_torch():
    """Backward passes add to .grad; zero_grad starts over. The engine only marks a zeroed
    gradient and writes the next product in place: the sums must be PyTorch's all the same."""
    layer = Linear(5, 3, rng=np.random.default_rng(2), dtype=F64)
    ref = torch.nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.W.data.T))
        ref.bias.copy_(torch.from_numpy(layer.b.data))
    xs, gs = RNG.standard_normal((3, 4, 5)), RNG.standard_normal((3, 4, 3))
    layer.W.grad[...] = 7.0  # stale values that zero_grad must hide
    layer.zero_grad()
    assert not layer.W.grad.any() and not layer.b.grad.any()  # reading a zeroed gradient: zeros
    layer.zero_grad()
    for x, g in zip(xs[:2], gs[:2]):  # two passes without zero_grad in between: a sum
        layer(x)
        layer.backward(g)
        ref(torch.from_numpy(x)).backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.W.grad, ref.weight.grad.numpy().T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.b.grad, ref.bias.grad.numpy(), rtol=0, atol=1e-12)
    layer.zero_grad()  # then one pass alone
    ref.zero_grad()
    layer(xs[2])
    layer.backward(gs[2])
    ref(torch.from_numpy(xs[2])).backward(torch.from_numpy(gs[2]))
    np.testing.assert_allclose(layer.W.grad, ref.weight.grad.numpy().T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.b.grad, ref.bias.grad.numpy(), rtol=0, atol=1e-12)
