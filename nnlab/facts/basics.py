"""First facts: softmax, its cross-entropy gradient, and why depth needs non-linearities."""

from __future__ import annotations

import numpy as np
import scipy.special
import torch

from nnlab.facts import fact


@fact(
    "softmax-shift-invariance",
    "softmax(x + c) = softmax(x) for any constant c, so softmax(x - max x) is exact "
    "and cannot overflow",
    topic="numpy-engine",
    tol=1e-14,
)
def softmax_shift_invariance() -> float:
    """Max abs difference between softmax(x + c) with the naive formula exp(x_i) / sum_j exp(x_j)
    and scipy's softmax(x), over random x and shifts c; and the stable form softmax(x - max x)
    against scipy on logits near 1e4, where the naive formula gives NaN (exp overflows)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, size=(200, 10))
    c = rng.uniform(-30, 30, size=(200, 1))
    naive = np.exp(x + c) / np.exp(x + c).sum(axis=1, keepdims=True)
    err = np.abs(naive - scipy.special.softmax(x, axis=1)).max()
    big = x + 1e4
    with np.errstate(over="ignore", invalid="ignore"):
        overflowed = np.isnan(np.exp(big) / np.exp(big).sum(1, keepdims=True)).all()
    stable = np.exp(big - big.max(1, keepdims=True))
    stable /= stable.sum(1, keepdims=True)
    err_big = np.abs(stable - scipy.special.softmax(big, axis=1)).max()
    return float(max(err, err_big)) if overflowed else float("inf")


@fact(
    "softmax-cross-entropy-gradient",
    "d/dz CE(softmax(z), y) = softmax(z) - onehot(y): the combined gradient needs no Jacobian",
    topic="numpy-engine",
    tol=1e-12,
)
def softmax_cross_entropy_gradient() -> float:
    """Max abs difference between autograd's gradient of the mean cross-entropy and
    (softmax(z) - onehot(y)) / B, in float64."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 12, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randint(0, 12, (64,), generator=g)
    torch.nn.functional.cross_entropy(z, y).backward()
    formula = (torch.softmax(z, 1) - torch.nn.functional.one_hot(y, 12)) / len(y)
    return float((z.grad - formula).abs().max().detach())


@fact(
    "linear-layers-collapse",
    "W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2): stacked linear layers are one linear map",
    topic="numpy-engine",
    tol=1e-12,
)
def linear_layers_collapse() -> float:
    """Relative max difference between a 3-layer linear stack and the single collapsed layer."""
    rng = np.random.default_rng(0)
    dims = [20, 32, 16, 5]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) for i in range(3)]
    bs = [rng.normal(size=dims[i + 1]) for i in range(3)]
    x = rng.normal(size=(100, dims[0]))
    h = x
    for W, b in zip(Ws, bs):
        h = h @ W.T + b
    W, b = np.eye(dims[0]), np.zeros(dims[0])
    for Wi, bi in zip(Ws, bs):
        W, b = Wi @ W, Wi @ b + bi
    one = x @ W.T + b
    return float(np.abs(h - one).max() / np.abs(h).max())
