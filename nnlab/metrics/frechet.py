"""Frechet distance (the formula behind FID) and kernel distance (KID) between two sets of feature
vectors, NumPy + SciPy only.

FID and KID are defined on Inception-v3 features; here the features come from any network (the
lab's MNIST classifier), so the functions take feature matrices (N, D) and (M, D) and leave the
network to the caller. Gaussian statistics first, the sample wrappers after.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

# A tiny ridge added to both covariances when sqrtm fails on their product (pytorch-fid's value).
SQRTM_EPS = 1e-6
# sqrtm of a PSD product is real; an imaginary part above this fraction of the real part is not
# round-off, the inputs were not covariances.
IMAG_RTOL = 1e-3
# Relative residual ||X @ X - A||_F / ||A||_F beyond which the square root is not trusted.
SQRTM_RESIDUAL_TOL = 1e-6


def _check_features(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 (N, D) and (M, D); ValueError on a wrong shape, N or M < 2, NaN or inf."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    for name, x in (("a", a), ("b", b)):
        if x.ndim != 2:
            raise ValueError(
                f"features {name} must be a (samples, dim) matrix, got shape {x.shape}"
            )
        if x.shape[0] < 2:
            raise ValueError(f"features {name} need at least 2 samples, got {x.shape[0]}")
        if not np.isfinite(x).all():
            raise ValueError(f"features {name} contain NaN or inf")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: a has {a.shape[1]}, b has {b.shape[1]}")
    return a, b


def _sqrtm_trace(S1: np.ndarray, S2: np.ndarray) -> float:
    """Tr (S1 S2)^{1/2} by scipy.linalg.sqrtm, real part kept when the imaginary part is round-off.

    S1 S2 is similar to S1^{1/2} S2 S1^{1/2}, which is PSD, so its eigenvalues are real and >= 0
    and the principal square root is real; sqrtm works through a complex Schur form and leaves an
    imaginary part of round-off size (~1e-8 when S1 S2 is singular, e.g. N <= D).
    """
    A = S1 @ S2
    with warnings.catch_warnings():
        # scipy warns on every singular A (routine when N <= D or a unit is dead); the residual
        # below is the check that matters
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        X = scipy.linalg.sqrtm(A)
    accurate = np.isfinite(X).all() and (
        np.linalg.norm(X @ X - A) <= SQRTM_RESIDUAL_TOL * np.linalg.norm(A)
    )
    if not accurate:
        # As pytorch-fid: sqrtm may fail on a singular product; the ridge eps*I makes both
        # covariances positive definite and moves FD by O(D sqrt(eps ||S||)) at most.
        offset = SQRTM_EPS * np.eye(S1.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            X = scipy.linalg.sqrtm((S1 + offset) @ (S2 + offset))
        if not np.isfinite(X).all():
            raise ValueError("matrix square root of S1 S2 is not finite, even with eps * I added")
    if np.iscomplexobj(X):
        imag = np.abs(X.imag).max()
        if imag > IMAG_RTOL * np.abs(X.real).max():
            raise ValueError(
                f"sqrtm(S1 S2) has an imaginary part of {imag:.3g}, more than round-off: "
                "are S1 and S2 symmetric positive semidefinite?"
            )
        X = X.real
    return float(np.trace(X))


def gaussian_frechet_distance(
    mu1: np.ndarray, S1: np.ndarray, mu2: np.ndarray, S2: np.ndarray
) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, S1) and N(mu2, S2):

        d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

    Dowson & Landau (1982) for Gaussians; Heusel et al. (2017), eq. 6, use it on Inception
    features as FID. mu1, mu2: (D,); S1, S2: (D, D) symmetric positive semidefinite. If sqrtm fails
    on a singular S1 S2 (non-finite or inaccurate result), SQRTM_EPS * I is added to both S1 and S2
    and the root recomputed, as pytorch-fid does; a merely singular product (fewer samples than
    dimensions) needs no such help and gets none.
    """
    mu1 = np.asarray(mu1, dtype=np.float64)
    mu2 = np.asarray(mu2, dtype=np.float64)
    S1 = np.asarray(S1, dtype=np.float64)
    S2 = np.asarray(S2, dtype=np.float64)
    D = mu1.shape[0] if mu1.ndim == 1 else -1
    if D < 0 or mu2.shape != (D,) or S1.shape != (D, D) or S2.shape != (D, D):
        raise ValueError(
            f"shapes do not match: mu1 {mu1.shape}, S1 {S1.shape}, mu2 {mu2.shape}, S2 {S2.shape}"
        )
    if not all(np.isfinite(x).all() for x in (mu1, S1, mu2, S2)):
        raise ValueError("means or covariances contain NaN or inf")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(S1) + np.trace(S2) - 2.0 * _sqrtm_trace(S1, S2))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets a (N, D) and b (M, D).

    mu = mean over samples, S = sample covariance with ddof=1, both in float64, then
    gaussian_frechet_distance(mu_a, S_a, mu_b, S_b). This is FID when the features are Inception's;
    the estimate is biased upwards by about Tr(S_a)/N + Tr(S_b)/M from the mean term alone, so
    only compare scores computed from the same N and M.
    """
    a, b = _check_features(a, b)
    N, M = a.shape[0], b.shape[0]
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)  # (D,)
    # two-pass (centre, then multiply): no cancellation, unlike sum(x x^T) - N mu mu^T
    a_c, b_c = a - mu_a, b - mu_b  # (N, D), (M, D)
    S_a = a_c.T @ a_c / (N - 1)  # (D, D)
    S_b = b_c.T @ b_c / (M - 1)  # (D, D)
    return gaussian_frechet_distance(mu_a, S_a, mu_b, S_b)


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """k(x, y) = (gamma x.y + coef0)^degree for all pairs: x (m, D), y (n, D) -> (m, n).
    gamma defaults to 1/D, the choice of Binkowski et al. (2018) for KID."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased estimator of the squared MMD from kernel matrices k_xx (m, m), k_yy (n, n),
    k_xy (m, n) (Gretton et al. 2012; used for KID by Binkowski et al. 2018):

        MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j)
                  - 2/(mn) sum_{i,j} k(x_i, y_j)

    Leaving out the diagonals k(x_i, x_i) is what removes the bias: with them (the V-statistic)
    the estimate of MMD^2(P, P) would be positive, about 2/m (E k(x, x) - E k(x, x')).
    """
    m, n = k_xy.shape
    sum_xx = k_xx.sum() - np.trace(k_xx)  # sum over i != j
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n))


def kernel_distance(
    a: np.ndarray,
    b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel distance (KID of Binkowski et al. 2018) between feature sets a (N, D) and b (M, D):
    MMD^2_u (see mmd2_unbiased) with the polynomial kernel (gamma x.y + coef0)^degree,
    gamma = 1/D by default, averaged over `subsets` pairs of subsets.

    Each subset holds m = min(subset_size, N, M) rows of a and m rows of b, each drawn without
    replacement from np.random.default_rng(seed). Returns (mean, std) over the subsets, std with
    ddof=0 as in Binkowski's code, torch-fidelity and torchmetrics. Unbiased: the mean can be
    slightly negative when a and b come from the same distribution.
    """
    a, b = _check_features(a, b)
    if not (isinstance(subsets, int) and subsets >= 1):
        raise ValueError(f"subsets must be a positive int, got {subsets!r}")
    if not (isinstance(subset_size, int) and subset_size >= 2):
        raise ValueError(f"subset_size must be an int >= 2, got {subset_size!r}")
    if not (isinstance(degree, int) and degree >= 1):
        raise ValueError(f"degree must be a positive int, got {degree!r}")
    if gamma is not None and not gamma > 0:
        raise ValueError(f"gamma must be positive or None, got {gamma!r}")
    if not coef0 >= 0:
        # with coef0 >= 0 the kernel is a sum of PSD kernels, so MMD is a metric
        raise ValueError(f"coef0 must be >= 0, got {coef0!r}")
    N, M = a.shape[0], b.shape[0]
    m = min(subset_size, N, M)
    rng = np.random.default_rng(seed)
    mmd2 = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(N, size=m, replace=False)]  # (m, D)
        y = b[rng.choice(M, size=m, replace=False)]  # (m, D)
        mmd2[s] = mmd2_unbiased(
            polynomial_kernel(x, x, degree, gamma, coef0),
            polynomial_kernel(y, y, degree, gamma, coef0),
            polynomial_kernel(x, y, degree, gamma, coef0),
        )
    return float(mmd2.mean()), float(mmd2.std())
