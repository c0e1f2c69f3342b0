"""Frechet and kernel distance: closed forms for Gaussians, a delta-method bound for samples,
torchmetrics' FID/KID fed the same features, a double-loop MMD, and the error cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from nnlab.metrics.frechet import (
    SQRTM_EPS,
    frechet_distance,
    gaussian_frechet_distance,
    kernel_distance,
    mmd2_unbiased,
    polynomial_kernel,
)


def _rotation(D: int, rng: np.random.Generator) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    return Q


def _commuting_pair(rng, D=4):
    """S1 = Q diag(l1) Q^T, S2 = Q diag(l2) Q^T: full matrices with a shared eigenbasis."""
    Q = _rotation(D, rng)
    l1, l2 = rng.uniform(0.5, 4.0, D), rng.uniform(0.5, 4.0, D)
    return Q, l1, l2, Q @ np.diag(l1) @ Q.T, Q @ np.diag(l2) @ Q.T


class _Identity(torch.nn.Module):
    """Hands torchmetrics the features unchanged: `num_features` spares the dummy-image probe and
    float64 output keeps its statistics (and its float64 result) exact."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64)


# --- Frechet distance -------------------------------------------------------------------------


def test_gaussian_fd_diagonal_closed_form():
    """Diagonal S: (S1 S2)^{1/2} = diag(sqrt(s1 s2)),
    so FD = sum (m1 - m2)^2 + sum (s1 + s2 - 2 sqrt(s1 s2))."""
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 5.0, 6), rng.uniform(0.1, 5.0, 6)
    expected = np.sum((m1 - m2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = gaussian_frechet_distance(m1, np.diag(s1), m2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_gaussian_fd_commuting_full_covariances():
    """A shared eigenbasis Q: the trace term reduces to the eigenvalues, as in the diagonal case."""
    rng = np.random.default_rng(1)
    _, l1, l2, S1, S2 = _commuting_pair(rng, D=5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((m1 - m2) ** 2) + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert gaussian_frechet_distance(m1, S1, m2, S2) == pytest.approx(expected, rel=1e-10)


def test_gaussian_fd_2x2_non_commuting():
    """For 2x2 A with eigenvalues l1, l2 >= 0: Tr A^{1/2} = sqrt(l1) + sqrt(l2)
    = sqrt(Tr A + 2 sqrt(det A)), a closed form that needs no shared eigenbasis."""
    S1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    S2 = np.array([[0.5, -0.3], [-0.3, 3.0]])
    A = S1 @ S2
    tr_sqrt = np.sqrt(np.trace(A) + 2 * np.sqrt(np.linalg.det(A)))
    mu = np.zeros(2)
    expected = np.trace(S1) + np.trace(S2) - 2 * tr_sqrt
    assert gaussian_frechet_distance(mu, S1, mu, S2) == pytest.approx(expected, rel=1e-12)


def test_fd_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8)) + 3.0
    assert abs(frechet_distance(x, x)) < 1e-8
    _, _, _, S, _ = _commuting_pair(rng)
    assert abs(gaussian_frechet_distance(np.ones(4), S, np.ones(4), S)) < 1e-8


def test_fd_is_symmetric():
    """Tr (S_a S_b)^{1/2} = Tr (S_b S_a)^{1/2}: the two products are similar matrices."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(200, 6)) * 2.0 + 1.0
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)


def test_fd_of_samples_converges_to_the_closed_form():
    """Samples of N(mu_a, S_a), N(mu_b, S_b) with commuting S (closed form FD known).

    Delta method: FD_hat - FD ~ 2 d.(e_a - e_b) + Tr(G_a E_a) + Tr(G_b E_b) + O(1/N), with
    d = mu_a - mu_b, e the errors of the means, E those of the covariances, and the gradient
    G_a = I - T (T the optimal map, here Q diag(sqrt(l_b / l_a)) Q^T). For Gaussians e and E are
    independent, Var(d.e_a) = d^T S_a d / N and Var Tr(G E_a) = 2 Tr((G_a S_a)^2) / (N - 1)
    (Wishart), where G_a S_a = Q diag(l_a - sqrt(l_a l_b)) Q^T. The mean term also adds a bias
    E||e_a - e_b||^2 = Tr S_a / N + Tr S_b / M. So |FD_hat - FD| <= bias + 4 sigma holds except
    with probability ~6e-5; with N = M = 20000 sigma is ~2% of FD here, so the band is ~8%.
    """
    rng = np.random.default_rng(4)
    N = M = 20_000
    Q, l_a, l_b, S_a, S_b = _commuting_pair(rng, D=4)
    mu_a, mu_b = np.zeros(4), Q @ np.array([1.0, -0.5, 0.5, 0.0])
    a = rng.multivariate_normal(mu_a, S_a, size=N)
    b = rng.multivariate_normal(mu_b, S_b, size=M)

    d = mu_a - mu_b
    fd = d @ d + np.sum(l_a + l_b - 2 * np.sqrt(l_a * l_b))
    var = 4 * (d @ S_a @ d / N + d @ S_b @ d / M)
    var += 2 * np.sum((l_a - np.sqrt(l_a * l_b)) ** 2) / (N - 1)
    var += 2 * np.sum((l_b - np.sqrt(l_a * l_b)) ** 2) / (M - 1)
    bias = np.trace(S_a) / N + np.trace(S_b) / M

    assert (bias + 4 * np.sqrt(var)) / fd < 0.1  # the band is narrow enough to mean something
    assert abs(frechet_distance(a, b) - fd) <= bias + 4 * np.sqrt(var)


@pytest.mark.parametrize("N, M, D", [(600, 500, 16), (20, 25, 32)])  # the second: N, M < D
def test_fd_matches_torchmetrics_fid(N, M, D):
    """torchmetrics sums x x^T in float64 and takes Tr sqrt through eigvals(S1 S2); same number."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(N, D)) @ rng.normal(size=(D, D))
    b = rng.normal(size=(M, D)) * 1.3 + 0.2
    fid = FrechetInceptionDistance(feature=_Identity(D))
    fid.update(torch.from_numpy(a), real=True)
    fid.update(torch.from_numpy(b), real=False)
    expected = fid.compute()
    assert expected.dtype == torch.float64
    assert frechet_distance(a, b) == pytest.approx(expected.item(), rel=1e-6)


def test_fd_falls_back_to_a_ridge_when_sqrtm_fails(monkeypatch):
    """A non-finite first sqrtm (what old SciPy returned for singular products) triggers the
    pytorch-fid retry with eps*I added to both covariances, visible in the diagonal closed form.
    Where only one covariance is singular (s1 = 1, s2 = 0) the ridge moves sqrt(s1 s2) by
    ~sqrt(eps s1): the documented O(D sqrt(eps ||S||)) shift, here ~2e-3, not O(eps)."""
    true_sqrtm = scipy.linalg.sqrtm
    calls = []

    def failing_once(A):
        calls.append(A)
        return np.full_like(A, np.nan) if len(calls) == 1 else true_sqrtm(A)

    monkeypatch.setattr(scipy.linalg, "sqrtm", failing_once)
    s1, s2 = np.array([1.0, 0.0, 2.0]), np.array([0.0, 0.0, 3.0])  # S1 S2 singular
    mu = np.zeros(3)
    got = gaussian_frechet_distance(mu, np.diag(s1), mu, np.diag(s2))
    ridged = np.sum(s1 + s2 - 2 * np.sqrt((s1 + SQRTM_EPS) * (s2 + SQRTM_EPS)))
    assert len(calls) == 2
    assert got == pytest.approx(ridged, rel=1e-12)
    unridged = np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert abs(got - unridged) <= 2 * len(s1) * np.sqrt(SQRTM_EPS * max(s1.max(), s2.max()))


def test_fd_rejects_a_complex_square_root():
    """S2 with a negative eigenvalue is no covariance: sqrtm(S1 S2) is genuinely complex."""
    mu = np.zeros(2)
    with pytest.raises(ValueError, match="imaginary part"):
        gaussian_frechet_distance(mu, np.eye(2), mu, np.diag([1.0, -1.0]))


# --- kernel distance --------------------------------------------------------------------------


def test_mmd2_unbiased_matches_a_double_loop():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    m, n, D = len(x), len(y), x.shape[1]

    def k(u, v):
        return (u @ v / D + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    got = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    assert got == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance`:UserWarning")
def test_kid_with_one_full_subset_matches_torchmetrics_exactly():
    """subset_size = N = M and one subset: both draw a permutation of all rows, and MMD^2_u does
    not depend on the order, so both are deterministic and must agree to round-off."""
    rng = np.random.default_rng(7)
    N, D = 300, 8
    a, b = rng.normal(size=(N, D)), rng.normal(size=(N, D)) + 0.3
    kid = KernelInceptionDistance(feature=_Identity(D), subsets=1, subset_size=N)
    kid.update(torch.from_numpy(a), real=True)
    kid.update(torch.from_numpy(b), real=False)
    expected_mean, _ = kid.compute()
    mean, std = kernel_distance(a, b, subsets=1, subset_size=N)
    assert mean == pytest.approx(expected_mean.item(), rel=1e-10)
    assert std == 0.0


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance`:UserWarning")
def test_kid_with_random_subsets_agrees_with_torchmetrics():
    """Both average MMD^2_u over independent random subset pairs of the same data, so the means
    differ by sampling only: |difference| < 4 sqrt(std_1^2 + std_2^2) / sqrt(subsets)."""
    rng = np.random.default_rng(8)
    D, subsets, size = 8, 200, 100
    a, b = rng.normal(size=(1000, D)), rng.normal(size=(800, D)) * 1.2 + 0.2
    torch.manual_seed(0)
    kid = KernelInceptionDistance(feature=_Identity(D), subsets=subsets, subset_size=size)
    kid.update(torch.from_numpy(a), real=True)
    kid.update(torch.from_numpy(b), real=False)
    tm_mean, tm_std = (t.item() for t in kid.compute())
    mean, std = kernel_distance(a, b, subsets=subsets, subset_size=size, seed=1)
    assert abs(mean - tm_mean) < 4 * np.hypot(std, tm_std) / np.sqrt(subsets)
    assert std == pytest.approx(tm_std, rel=0.25)


def test_kid_is_unbiased_for_one_distribution():
    """Two independent samples of one distribution: mean over subsets ~ 0 within 3 standard errors
    (N = 10000 >> the 100 subsets of 100, so the subsets barely overlap and are ~independent). The
    biased V-statistic would sit 2/m (E k(x, x) - E k(x, x')) higher, well outside that band."""
    rng = np.random.default_rng(9)
    D, subsets, m = 8, 100, 100
    a, b = rng.normal(size=(10_000, D)), rng.normal(size=(10_000, D))
    mean, std = kernel_distance(a, b, subsets=subsets, subset_size=m)
    standard_error = std / np.sqrt(subsets)
    assert abs(mean) < 3 * standard_error

    K = polynomial_kernel(a[:1000], a[:1000])
    v_statistic_bias = 2 / m * (np.mean(np.diag(K)) - np.mean(K[~np.eye(1000, dtype=bool)]))
    assert v_statistic_bias > 10 * standard_error  # the test above can tell the two apart


def test_kid_is_clearly_positive_for_shifted_distributions():
    rng = np.random.default_rng(10)
    subsets = 100
    a, b = rng.normal(size=(5000, 8)), rng.normal(size=(5000, 8)) + 0.3
    mean, std = kernel_distance(a, b, subsets=subsets, subset_size=200)
    assert mean > 10 * std / np.sqrt(subsets)


def test_kid_of_a_set_with_itself():
    """x = y = the whole set (m rows), K = k(x_i, x_j), S = sum K, T = Tr K:
    MMD^2_u = 2 (S - T) / (m (m - 1)) - 2 S / m^2 = -2 / (m - 1) (mean diag K - mean K).
    Negative: mean diag K - mean K is the feature-space variance of the set (K is PSD)."""
    rng = np.random.default_rng(11)
    m, D = 150, 5
    x = rng.normal(size=(m, D))
    K = (x @ x.T / D + 1.0) ** 3
    expected = -2 / (m - 1) * (np.mean(np.diag(K)) - np.mean(K))
    mean, std = kernel_distance(x, x, subsets=3, subset_size=m)
    assert expected < 0
    assert mean == pytest.approx(expected, rel=1e-10)
    assert std < 1e-12 * abs(expected)  # every subset is a permutation of x


# --- errors -----------------------------------------------------------------------------------


def _kid(a, b):
    return kernel_distance(a, b, subsets=2, subset_size=5)


@pytest.mark.parametrize("fn", [frechet_distance, _kid])
@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "dimensions differ"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2 samples"),
        (np.zeros((10, 3)), np.zeros((1, 3)), "at least 2 samples"),
        (np.zeros(10), np.zeros((10, 1)), "matrix"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "NaN or inf"),
        (np.zeros((10, 3)), np.full((10, 3), np.inf), "NaN or inf"),
    ],
)
def test_bad_features_raise(fn, a, b, match):
    with pytest.raises(ValueError, match=match):
        fn(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [{"subsets": 0}, {"subset_size": 1}, {"degree": 0}, {"gamma": -1.0}, {"coef0": -1.0}],
)
def test_bad_kid_arguments_raise(kwargs):
    x = np.zeros((10, 3))
    with pytest.raises(ValueError):
        kernel_distance(x, x, **kwargs)


@pytest.mark.parametrize(
    "mu1, S1, mu2, S2",
    [
        (np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)),
        (np.zeros(3), np.eye(3), np.zeros(3), np.eye(2)),
        (np.zeros((1, 3)), np.eye(3), np.zeros(3), np.eye(3)),
    ],
)
def test_gaussian_fd_rejects_mismatched_shapes(mu1, S1, mu2, S2):
    with pytest.raises(ValueError, match="shapes"):
        gaussian_frechet_distance(mu1, S1, mu2, S2)


def test_gaussian_fd_rejects_nan():
    with pytest.raises(ValueError, match="NaN or inf"):
        gaussian_frechet_distance(np.zeros(2), np.eye(2), np.array([0.0, np.nan]), np.eye(2))
