"""Least squares as self-supervision: predict y from x with y_hat = b0 + b1 x.

For (x, y) ~ N(0, [[1, c], [c, 1]]) the population minimiser of E(y - b0 - b1 x)^2 is
b1 = Cov(x, y) / Var(x) = c and b0 = E y - b1 E x = 0; on a sample, the closed form uses the
sample moments and its error shrinks like 1 / sqrt(n). Gradient descent on the MSE with the
engine's Linear layer reaches the same minimum (the loss is a convex quadratic)."""

from __future__ import annotations

import numpy as np

from nnlab.numpy_nn.layers import Linear
from nnlab.numpy_nn.losses import MSELoss
from nnlab.numpy_nn.optim import SGD


def sample_pairs(c: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, c], [c, 1.0]], size=n)
    return xy[:, 0], xy[:, 1]


def closed_form(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(b0, b1) with b1 = sum (x - x_bar)(y - y_bar) / sum (x - x_bar)^2, b0 = y_bar - b1 x_bar."""
    xc, yc = x - x.mean(), y - y.mean()
    b1 = float((xc * yc).sum() / (xc * xc).sum())
    return float(y.mean() - b1 * x.mean()), b1


def gradient_descent(
    x: np.ndarray, y: np.ndarray, lr: float = 0.1, steps: int = 500
) -> tuple[float, float]:
    """(b0, b1) from full-batch gradient descent on MSE with a 1 -> 1 Linear layer (float64)."""
    layer = Linear(1, 1, init="zero", dtype=np.float64)
    loss, opt = MSELoss(), SGD(layer.parameters(), lr=lr)
    X, Y = x[:, None], y[:, None]
    for _ in range(steps):
        opt.zero_grad()
        loss(layer(X), Y)
        layer.backward(loss.backward())
        opt.step()
    return float(layer.b.data[0]), float(layer.W.data[0, 0])
