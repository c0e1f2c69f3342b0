"""Facts of compression: what PCA's rank-k error is, and that no linear autoencoder beats it."""

from __future__ import annotations

import functools

import numpy as np

from nnlab.facts import fact
from nnlab.numpy_nn import SGD, Linear, MSELoss, Sequential
from nnlab.numpy_nn.pca import PCA


def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0  # (1797, 64) in [0, 1]


@fact(
    "pca-error-is-the-dropped-variance",
    "rank-k PCA's squared reconstruction error, summed over pixels and divided by N - 1, "
    "equals the sum of the d - k smallest covariance eigenvalues",
    topic="autoencoder",
    tol=1e-10,
)
def pca_error_is_dropped_variance() -> float:
    """Relative difference, digits (d = 64), k = 1, 8, 32; eigenvalues from numpy.linalg.eigvalsh
    of the sample covariance (an independent route to the same numbers)."""
    x = _digits()
    eig = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    worst = 0.0
    for k in (1, 8, 32):
        err = ((x - PCA(k).fit(x).reconstruct(x)) ** 2).sum() / (len(x) - 1)
        worst = max(worst, abs(err - eig[k:].sum()) / eig[k:].sum())
    return worst


@functools.lru_cache(maxsize=1)
def _linear_autoencoder(k: int = 4, steps: int = 2500) -> tuple[float, float, np.ndarray]:
    """A linear autoencoder 64 -> k -> 64 (weights and biases) trained on the digits by full-batch
    gradient descent with momentum on the mean squared error; (its error, PCA's error, its
    decoder's rows (k, 64))."""
    x = _digits()
    rng = np.random.default_rng(0)
    net = Sequential(
        Linear(64, k, rng=rng, dtype=np.float64), Linear(k, 64, rng=rng, dtype=np.float64)
    )
    opt, loss = SGD(net.parameters(), lr=1.0, momentum=0.9), MSELoss()
    for _ in range(steps):
        loss(net(x), x)
        opt.zero_grad()
        net.backward(loss.backward())
        opt.step()
    ae = MSELoss()(net(x), x)
    pca = float(np.mean((x - PCA(k).fit(x).reconstruct(x)) ** 2))
    return ae, pca, net.layers[1].W.data  # decoder W: (k, 64)


@fact(
    "pca-is-the-best-linear-autoencoder",
    "a linear autoencoder trained to convergence reaches rank-k PCA's squared error, and never "
    "goes below it (Eckart-Young)",
    topic="autoencoder",
    tol=1e-3,
)
def pca_is_the_best_linear_autoencoder() -> float:
    """Digits, k = 4, 2500 full-batch steps (lr 1, momentum 0.9): returns AE error / PCA error - 1
    (>= 0 by the theorem; a value below -1e-9 would break it and is returned as 1e6 x its size,
    failing the check)."""
    ae, pca, _ = _linear_autoencoder()
    gap = ae / pca - 1
    return gap if gap > -1e-9 else 1e6 * abs(gap)


@fact(
    "linear-autoencoder-spans-the-pca-subspace",
    "the decoder of that trained linear autoencoder spans the top-k principal subspace "
    "(its weights need not be the principal directions themselves)",
    topic="autoencoder",
    tol=1e-2,
)
def linear_autoencoder_spans_pca_subspace() -> float:
    """Spectral norm of the difference of the two orthogonal projectors onto the decoder's row
    space and onto the top-4 principal directions (= sine of the largest principal angle)."""
    _, _, w = _linear_autoencoder()
    q, _ = np.linalg.qr(w.T)  # (64, k): an orthonormal basis of the decoder's span
    v = PCA(w.shape[0]).fit(_digits()).components.T  # (64, k)
    return float(np.linalg.norm(q @ q.T - v @ v.T, 2))


@fact(
    "autoencoder-parameter-count",
    "1024-32-32-32-1024 has 1024*32 + 32 + 32*32 + 32 + 32*32 + 32 + 32*1024 + 1024 = 68,704 "
    "parameters; the weights alone are 67,584 (67,712, sometimes quoted, gives the output layer "
    "32 biases instead of 1024)",
    topic="autoencoder",
    tol=0,
)
def autoencoder_parameter_count() -> float:
    """|parameters of the engine's network - 68,704| + |its weights alone - 67,584|."""
    from nnlab.tasks.compress import build_mlp_autoencoder

    net = build_mlp_autoencoder((1024, 32, 32, 32, 1024))
    total = sum(p.data.size for p in net.parameters())
    weights = sum(m.W.data.size for m in net.layers if isinstance(m, Linear))
    return float(abs(total - 68_704) + abs(weights - 67_584))
