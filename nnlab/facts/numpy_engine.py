"""Facts of the NumPy engine: derivatives, backprop = autograd, least squares, the perceptron."""

from __future__ import annotations

import numpy as np
import torch

from nnlab.facts import fact
from nnlab.numpy_nn import CrossEntropyLoss, mlp
from nnlab.numpy_nn import functional as F
from nnlab.numpy_nn.gradcheck import relative_error
from nnlab.numpy_nn.least_squares import closed_form, gradient_descent, sample_pairs
from nnlab.numpy_nn.perceptron import INPUTS, TRUTH_TABLES, Perceptron


@fact("sigmoid-derivative", "sigma'(x) = sigma(x) (1 - sigma(x))", topic="numpy-engine", tol=1e-9)
def sigmoid_derivative() -> float:
    """Max abs difference between the formula and central differences on x in [-10, 10]."""
    x, h = np.linspace(-10, 10, 2001), 1e-5
    numeric = (F.sigmoid(x + h) - F.sigmoid(x - h)) / (2 * h)
    return float(np.abs(F.sigmoid(x) * (1 - F.sigmoid(x)) - numeric).max())


@fact("tanh-is-a-scaled-sigmoid", "tanh(x) = 2 sigma(2x) - 1", topic="numpy-engine", tol=1e-14)
def tanh_scaled_sigmoid() -> float:
    x = np.linspace(-20, 20, 4001)
    return float(np.abs(np.tanh(x) - (2 * F.sigmoid(2 * x) - 1)).max())


@fact(
    "backprop-equals-autograd",
    "hand-derived backprop through a 3-layer MLP gives autograd's gradients",
    topic="numpy-engine",
    tol=1e-10,
)
def backprop_equals_autograd() -> float:
    """Max relative error over all parameter gradients, engine vs torch.autograd, float64."""
    rng = np.random.default_rng(0)
    net = mlp([12, 16, 8, 5], "tanh", dtype=np.float64, seed=1)
    x, y = rng.standard_normal((10, 12)), rng.integers(0, 5, 10)
    loss = CrossEntropyLoss()
    loss(net(x), y)
    net.zero_grad()
    net.backward(loss.backward())
    params = [torch.tensor(p.data, requires_grad=True) for p in net.parameters()]
    h = torch.tensor(x)
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i < len(params) - 2:
            h = torch.tanh(h)
    torch.nn.functional.cross_entropy(h, torch.tensor(y)).backward()
    return max(relative_error(p.grad, t.grad.numpy()) for p, t in zip(net.parameters(), params))


@fact(
    "least-squares-slope",
    "for (x, y) ~ N(0, [[1, c], [c, 1]]) least squares gives b1 = Cov(x, y) / Var(x) = c",
    topic="numpy-engine",
    tol=5 * np.sqrt(1 / 200_000),
)
def least_squares_slope() -> float:
    """Max |b1 - c| over c in {-0.8, 0, 0.5, 0.9}, n = 200000 (sd of b1 <= 1/sqrt(n)), plus the
    gap between gradient descent and the closed form.

    Why the course calls this estimator "self-supervised": nobody labels anything. Each pair
    (x, y) comes from the data itself -- y is simply the other coordinate of the same sample, as
    the next word of a text or the hidden half of an image -- and fitting y from x recovers a
    property of the data's distribution (here its correlation c), not a human's annotation."""
    errors = []
    for c in (-0.8, 0.0, 0.5, 0.9):
        x, y = sample_pairs(c, 200_000, np.random.default_rng([7, int(10 * (c + 1))]))
        b0, b1 = closed_form(x, y)
        g0, g1 = gradient_descent(x, y, steps=200)
        errors += [abs(b1 - c), abs(g1 - b1)]
    return float(max(errors))


@fact(
    "perceptron-nand",
    "w1 = w2 = -2, b = 3 make the perceptron a NAND gate; the rule learns NAND, "
    "AND, OR but never XOR",
    topic="numpy-engine",
    tol=0,
)
def perceptron_nand() -> float:
    """Number of wrong answers: the hand-set NAND, the learnt separable gates, and XOR
    converging."""
    wrong = int(
        (Perceptron(np.array([-2.0, -2.0]), 3.0).predict(INPUTS) != TRUTH_TABLES["NAND"]).sum()
    )
    for gate in ("NAND", "AND", "OR"):
        p = Perceptron()
        converged, _ = p.fit(INPUTS, TRUTH_TABLES[gate])
        wrong += int(not converged) + int((p.predict(INPUTS) != TRUTH_TABLES[gate]).sum())
    wrong += int(Perceptron().fit(INPUTS, TRUTH_TABLES["XOR"], max_epochs=1000)[0])
    return float(wrong)
