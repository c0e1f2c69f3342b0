"""The course's smaller questions as facts: the Wiener filter a linear neuron learns, weight decay
as ridge regression, the sigmoid's gradient bound, Xavier initialisation, residual derivatives."""

from __future__ import annotations

import functools

import numpy as np
import torch

from nnlab.facts import fact
from nnlab.numpy_nn import SGD, Linear, MSELoss, Sequential, Sigmoid
from nnlab.numpy_nn import functional as F
from nnlab.tasks.numpy_experiments import activation_variances, noisy_ar1, wiener_filter

# ---- the Wiener filter -----------------------------------------------------------------------
# The noisy AR(1) signal and its Wiener filter w = R^-1 r: nnlab.tasks.numpy_experiments.
A, S2, TAPS = 0.9, 0.5, 8  # the AR coefficient, the noise variance, the filter's taps


@fact(
    "wiener-filter-is-lmmse",
    "the least-squares filter on samples of a noisy AR(1) signal converges to the Wiener filter "
    "w = R_yy^-1 r_yx computed from the process's correlations",
    topic="numpy-engine",
    tol=0.02,
)
def wiener_filter_is_lmmse() -> float:
    """Max |w_sample - w_Wiener| over the 8 taps, a = 0.9, noise variance 0.5, 400,000 samples.
    The sample solution's error shrinks as 1/sqrt(n): 0.001 here, tol 0.02."""
    windows, target = noisy_ar1(400_000, seed=0)
    w_sample = np.linalg.lstsq(windows, target, rcond=None)[0]
    return float(np.abs(w_sample - wiener_filter()).max())


@functools.lru_cache(maxsize=2)
def _linear_neuron(weight_decay: float, steps: int = 600):
    """One Linear(8 -> 1) neuron of the engine trained on 20,000 windows by full-batch gradient
    descent (the engine's SGD, lr 0.02, momentum 0.9) on the mean squared error; returns
    (its weights with the bias last, the windows with a column of ones, the targets)."""
    windows, target = noisy_ar1(20_000, seed=1)
    neuron = Linear(TAPS, 1, rng=np.random.default_rng(0), dtype=np.float64)
    opt = SGD(neuron.parameters(), lr=0.02, momentum=0.9, weight_decay=weight_decay)
    loss = MSELoss()
    for _ in range(steps):
        loss(neuron(windows), target[:, None])
        opt.zero_grad()
        neuron.backward(loss.backward())
        opt.step()
    w = np.concatenate([neuron.W.data[:, 0], neuron.b.data])
    return w, np.hstack([windows, np.ones((len(windows), 1))]), target


@fact(
    "linear-neuron-learns-the-wiener-filter",
    "a single linear neuron trained by gradient descent on the mean squared error converges to "
    "the least-squares (sample Wiener) filter",
    topic="numpy-engine",
    tol=1e-6,
)
def linear_neuron_learns_wiener() -> float:
    """Max |w_neuron - w_closed| over the 8 taps and the bias, where w_closed solves the normal
    equations X^T X w = X^T x on the same 20,000 windows (X with a column of ones)."""
    w, X, target = _linear_neuron(0.0)
    return float(np.abs(w - np.linalg.solve(X.T @ X, X.T @ target)).max())


@fact(
    "weight-decay-is-ridge",
    "gradient descent on the mean squared error with L2 weight decay lambda converges to ridge "
    "regression with alpha = N lambda / 2 (N samples, the bias penalised too)",
    topic="numpy-engine",
    tol=1e-6,
)
def weight_decay_is_ridge() -> float:
    """lambda = 1e-3 on 20,000 windows: the engine's SGD adds lambda w to the gradient
    (2/N) X^T (X w - x), whose zero is (X^T X + N lambda / 2 I) w = X^T x. Max difference to
    scikit-learn's Ridge(alpha = N lambda / 2, fit_intercept=False) on X with a column of ones."""
    from sklearn.linear_model import Ridge

    lam = 1e-3
    w, X, target = _linear_neuron(lam)
    ridge = Ridge(alpha=len(X) * lam / 2, fit_intercept=False).fit(X, target)
    return float(np.abs(w - ridge.coef_).max())


# ---- gradients through depth ---------------------------------------------------------------------
@fact(
    "sigmoid-gradient-bound",
    "sigma'(x) <= 1/4 (equality at x = 0), so through n sigmoid layers whose weight matrices have "
    "spectral norm <= 1 the input gradient shrinks at least by 4^-n",
    topic="numpy-engine",
    tol=1e-12,
)
def sigmoid_gradient_bound() -> float:
    """|max sigma' - 1/4| on a grid through 0, plus how far ||dL/dx|| / (4^-n ||dL/dy||) exceeds 1
    (it must not) for n = 1..10 layers of width 16, the engine's backward pass, 20 random cases."""
    x = np.linspace(-10, 10, 20_001)
    s = F.sigmoid(x)
    error = abs(float((s * (1 - s)).max()) - 0.25)
    rng = np.random.default_rng(0)
    worst = 0.0
    for n in range(1, 11):
        layers = []
        for _ in range(n):
            lin = Linear(16, 16, rng=rng, dtype=np.float64)
            lin.W.data /= np.linalg.norm(lin.W.data, 2)  # spectral norm 1
            lin.b.data[...] = rng.standard_normal(16)
            layers += [lin, Sigmoid()]
        net = Sequential(*layers)
        for _ in range(2):
            net(rng.standard_normal((1, 16)))
            g = rng.standard_normal((1, 16))
            dx = net.backward(g)
            worst = max(worst, np.linalg.norm(dx) / (0.25**n * np.linalg.norm(g)))
    return error + max(0.0, worst - 1)


@fact(
    "xavier-keeps-activation-variance",
    "with Xavier initialisation the activation variance stays near 1 through 20 layers, where "
    "N(0, 1) weights multiply it by the width per layer and N(0, 0.01^2) shrink it",
    topic="numpy-engine",
    tol=0.3,
)
def xavier_keeps_variance() -> float:
    """|log10 Var(layer 20)| with Xavier (a product of 20 factors near 1: 0.003 here, tol 0.3),
    or infinity if N(0, 1) does not explode past 1e40 or N(0, 0.01^2) does not vanish below
    1e-30 at layer 20 (256 x 256 linear layers: x256 and x0.0256 per layer)."""
    xavier, big, small = (activation_variances(s) for s in (None, 1.0, 0.01))
    if not (big[-1] > 1e40 and small[-1] < 1e-30):
        return float("inf")
    return float(abs(np.log10(xavier[-1])))


@fact(
    "residual-derivatives",
    "for a residual layer G(x) = x + F(x): dG/dx = I + dF/dx and dG/dtheta = dF/dtheta",
    topic="pytorch-models",
    tol=1e-12,
)
def residual_derivatives() -> float:
    """Autograd Jacobians, float64, F a 6 -> 6 tanh MLP: max abs difference of dG/dx vs
    I + dF/dx and of the parameter gradients of sum(G) vs sum(F)."""
    torch.manual_seed(0)
    f = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 6)).double()
    x = torch.randn(6, dtype=torch.float64)
    j_g = torch.autograd.functional.jacobian(lambda v: v + f(v), x)
    j_f = torch.autograd.functional.jacobian(f, x)
    error = (j_g - (torch.eye(6, dtype=torch.float64) + j_f)).abs().max().item()
    params = list(f.parameters())
    grads_g = torch.autograd.grad((x + f(x)).sum(), params)
    grads_f = torch.autograd.grad(f(x).sum(), params)
    return max(error, *((a - b).abs().max().item() for a, b in zip(grads_g, grads_f)))
