"""Facts of DDPM (Ho, Jain & Abbeel 2020), each checked on its own.

The distributional statements are checked by Monte Carlo with fixed seeds: the error reported is
the largest deviation of an estimate from its formula in units of the estimate's standard error
(a z-score), over every t and quantity checked; the tolerance 4.5 makes a false alarm among ~30
comparisons a 1-in-10^4 event, while confusing sqrt(alpha_t) with sqrt(alpha_bar_t) anywhere
gives z-scores in the hundreds. Standard errors of n i.i.d. draws: mean sqrt(var / n); variance
var sqrt(2 / (n - 1)) (normal data); covariance sqrt((var_1 var_2 + cov^2) / n); least-squares
coefficients from sigma^2 (X^T X)^-1. Algebraic identities are checked to float64 round-off.
"""

from __future__ import annotations

import math

import torch

from nnlab.diffusion.process import ddim_sigma
from nnlab.diffusion.schedules import (
    cosine_schedule,
    eps_from_x0,
    forward_step,
    joint_covariance,
    linear_schedule,
    mean_from_eps,
    min_snr_weight,
    posterior_coefficients,
    posterior_mean,
    posterior_mean_from_residual,
    posterior_variance,
    q_mean_var,
    q_sample,
    v_target,
    x0_eps_from_v,
    x0_from_eps,
)
from nnlab.facts import fact

Z_TOL = 4.5
S = linear_schedule(1000)
X0 = torch.tensor([-1.0, 0.3, 1.0], dtype=torch.float64)  # three data values, n draws of each


def _t(value: int, n: int) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.long)


@fact(
    "ddpm-t-steps-equal-closed-form",
    "t single steps x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps give "
    "q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)",
    topic="diffusion",
    tol=Z_TOL,
)
def t_steps_equal_closed_form(n: int = 15_000, seed: int = 0, s=S) -> float:
    """Iterate 1000 single steps from x_0 = -1, 0.3, 1 (n draws each); at t = 1, 10, 100, 500,
    1000 compare the sample mean and variance with the closed form (z-scores)."""
    g = torch.Generator().manual_seed(seed)
    x0 = X0.repeat_interleave(n)  # (3n,)
    x, z = x0.clone(), 0.0
    for step in range(1, s.T + 1):
        x = forward_step(
            s, x, _t(step, len(x)), torch.randn(len(x), generator=g, dtype=torch.float64)
        )
        if step in (1, 10, 100, 500, 1000):
            mean, var = q_mean_var(s, x0, _t(step, len(x)))
            for i in range(len(X0)):
                xi, m, v = x[i * n : (i + 1) * n], mean[i * n], var[i * n]
                z = max(
                    z,
                    abs(xi.mean() - m) / (v / n).sqrt(),
                    abs(xi.var() - v) / (v * math.sqrt(2 / (n - 1))),
                )
    return float(z)


@fact(
    "ddpm-joint-covariance",
    "given x_0: E x_{t-1} = sqrt(alpha_bar_{t-1}) x_0, E x_t = sqrt(alpha_bar_t) x_0, "
    "Var = 1 - alpha_bar_{t-1}, 1 - alpha_bar_t, "
    "Cov(x_{t-1}, x_t) = sqrt(alpha_t)(1 - alpha_bar_{t-1})",
    topic="diffusion",
    tol=Z_TOL,
)
def joint_moments(n: int = 200_000, seed: int = 1, s=S) -> float:
    """x_{t-1} ~ q(x_{t-1} | x_0), then one step to x_t; at t = 2, 50, 300, 900 and x_0 = 0.3:
    the two means, two variances and the covariance against the formulas (z-scores)."""
    g = torch.Generator().manual_seed(seed)
    x0, z = torch.full((n,), 0.3, dtype=torch.float64), 0.0
    for step in (2, 50, 300, 900):
        prev = q_sample(s, x0, _t(step - 1, 1), torch.randn(n, generator=g, dtype=torch.float64))
        xt = forward_step(s, prev, _t(step, 1), torch.randn(n, generator=g, dtype=torch.float64))
        (m1, v1), (m2, v2) = (q_mean_var(s, x0[:1], _t(k, 1)) for k in (step - 1, step))
        c = joint_covariance(s, _t(step, 1))
        emp_c = ((prev - prev.mean()) * (xt - xt.mean())).sum() / (n - 1)
        z = max(
            z,
            abs(prev.mean() - m1) / (v1 / n).sqrt(),
            abs(xt.mean() - m2) / (v2 / n).sqrt(),
            abs(prev.var() - v1) / (v1 * math.sqrt(2 / (n - 1))),
            abs(xt.var() - v2) / (v2 * math.sqrt(2 / (n - 1))),
            abs(emp_c - c) / ((v1 * v2 + c**2) / n).sqrt(),
        )
    return float(z.max())


@fact(
    "ddpm-posterior",
    "q(x_{t-1} | x_t, x_0) = N(c_0 x_0 + c_t x_t, beta~_t), c_0 = sqrt(alpha_bar_{t-1}) beta_t / "
    "(1 - alpha_bar_t), c_t = sqrt(alpha_t)(1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), "
    "beta~_t = (1 - alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t)",
    topic="diffusion",
    tol=Z_TOL,
)
def posterior_by_regression(n: int = 200_000, seed: int = 2, s=S) -> float:
    """Draw x_0 ~ U(-1, 1), x_{t-1} ~ q(. | x_0), x_t by one step; least squares of x_{t-1} on
    (x_0, x_t) estimates (c_0, c_t), its residual variance beta~_t (z-scores; t = 2, 50, 300,
    900)."""
    g = torch.Generator().manual_seed(seed)
    z = 0.0
    for step in (2, 50, 300, 900):
        x0 = torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1
        prev = q_sample(s, x0, _t(step - 1, 1), torch.randn(n, generator=g, dtype=torch.float64))
        xt = forward_step(s, prev, _t(step, 1), torch.randn(n, generator=g, dtype=torch.float64))
        X = torch.stack([x0, xt], 1)  # (n, 2)
        coef = torch.linalg.lstsq(X, prev[:, None]).solution[:, 0]  # (2,)
        resid = prev - X @ coef
        var = resid.var(correction=2)
        se = (var * torch.linalg.inv(X.T @ X).diagonal()).sqrt()
        c0, ct = posterior_coefficients(s, _t(step, 1))
        bt = posterior_variance(s, _t(step, 1))
        z = max(
            z,
            float(((coef - torch.cat([c0, ct])).abs() / se).max()),
            float(abs(var - bt) / (bt * math.sqrt(2 / (n - 3)))),
        )
    return z


@fact(
    "ddpm-posterior-mean-two-forms",
    "c_0 x_0 + c_t x_t = (1 / sqrt(alpha_t)) (x_t - (1 - alpha_t) / (1 - alpha_bar_t) "
    "(x_t - sqrt(alpha_bar_t) x_0))",
    topic="diffusion",
    tol=1e-12,
)
def posterior_two_forms() -> float:
    g = torch.Generator().manual_seed(3)
    t = torch.arange(1, S.T + 1)
    x0, xt = (torch.randn(S.T, 4, generator=g, dtype=torch.float64) for _ in range(2))
    return float(
        (posterior_mean(S, x0, xt, t) - posterior_mean_from_residual(S, x0, xt, t)).abs().max()
    )


@fact(
    "ddpm-eps-parametrisation",
    "with x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), the posterior mean is "
    "mu = (1 / sqrt(alpha_t)) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps)",
    topic="diffusion",
    tol=1e-9,
)
def eps_parametrisation() -> float:
    """Max abs difference over every t on random (x_t, eps), and x_0 recovered from q_sample."""
    g = torch.Generator().manual_seed(4)
    t = torch.arange(1, S.T + 1)
    xt, eps, x0 = (torch.randn(S.T, 4, generator=g, dtype=torch.float64) for _ in range(3))
    mu = posterior_mean(S, x0_from_eps(S, xt, t, eps), xt, t)
    inverse = x0_from_eps(S, q_sample(S, x0, t, eps), t, eps)
    return float(max((mu - mean_from_eps(S, xt, t, eps)).abs().max(), (inverse - x0).abs().max()))


@fact(
    "ddpm-single-step-weighting",
    "x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps: predicting x_{t-1} as (x_t - sqrt(beta_t) "
    "eps_theta) / sqrt(alpha_t) has squared error L_x = (beta_t / alpha_t) L_eps, "
    "for every eps_theta",
    topic="diffusion",
    tol=1e-10,
)
def single_step_weighting() -> float:
    """Largest relative difference over 50 timesteps x 20 random predictors (any eps_theta)."""
    g = torch.Generator().manual_seed(5)
    worst = 0.0
    for step in torch.linspace(1, S.T, 50).long().tolist():
        a, b = float(S.alphas[step]), float(S.betas[step])
        prev, eps = (torch.randn(20, 64, generator=g, dtype=torch.float64) for _ in range(2))
        xt = a**0.5 * prev + b**0.5 * eps
        eps_theta = (
            eps
            + torch.randn(20, 64, generator=g, dtype=torch.float64)
            * torch.rand(20, 1, generator=g, dtype=torch.float64)
            * 3
        )
        l_x = ((xt - b**0.5 * eps_theta) / a**0.5 - prev).pow(2).mean(1)
        l_eps = (eps_theta - eps).pow(2).mean(1)
        worst = max(worst, float(((l_x - b / a * l_eps).abs() / l_x).max()))
    return worst


@fact(
    "eps-loss-is-snr-weighted-x0-loss",
    "|eps_hat - eps|^2 = SNR_t |x0_hat - x_0|^2 with SNR_t = alpha_bar_t / (1 - alpha_bar_t), "
    "x0_hat = x0_from_eps(eps_hat): the eps objective weighs small t heavily",
    topic="diffusion",
    tol=1e-9,
)
def eps_loss_weighting() -> float:
    g = torch.Generator().manual_seed(6)
    t = torch.arange(1, S.T + 1)
    x0, eps, eps_hat = (torch.randn(S.T, 16, generator=g, dtype=torch.float64) for _ in range(3))
    xt = q_sample(S, x0, t, eps)
    snr = S.alpha_bars[1:] / (1 - S.alpha_bars[1:])
    l_eps = (eps_hat - eps).pow(2).sum(1)
    l_x0 = (x0_from_eps(S, xt, t, eps_hat) - x0).pow(2).sum(1)
    return float(((l_eps - snr * l_x0).abs() / l_eps).max())


@fact(
    "min-snr-weights-equalise-objectives",
    "min-SNR-gamma weights w_eps = min(SNR, g) / SNR, w_x0 = min(SNR, g), "
    "w_v = min(SNR, g) / (SNR + 1) make each objective's weighted squared error of one "
    "prediction equal min(SNR_t, g) |x0_hat - x_0|^2 (relative; linear and cosine, g = 1, 5)",
    topic="diffusion",
    tol=1e-9,
)
def min_snr_weighting() -> float:
    g = torch.Generator().manual_seed(9)
    worst = 0.0
    for sched in (S, cosine_schedule(1000)):
        t = torch.arange(1, sched.T + 1)
        x0, eps, x0_hat = (
            torch.randn(sched.T, 16, generator=g, dtype=torch.float64) for _ in range(3)
        )
        xt = q_sample(sched, x0, t, eps)
        eps_hat = eps_from_x0(sched, xt, t, x0_hat)  # the same prediction, said three ways
        errors = {
            "eps": (eps_hat - eps).pow(2).sum(1),
            "x0": (x0_hat - x0).pow(2).sum(1),
            "v": (v_target(sched, x0_hat, eps_hat, t) - v_target(sched, x0, eps, t)).pow(2).sum(1),
        }
        ab = sched.alpha_bars[1:]
        for gamma in (1.0, 5.0):
            want = (ab / (1 - ab)).clamp(max=gamma) * errors["x0"]
            for objective, err in errors.items():
                got = min_snr_weight(sched, t, objective, gamma) * err
                rel = ((got - want).abs() / want).nan_to_num(nan=math.inf)  # a NaN fails
                worst = max(worst, float(rel.max()))
    return worst


@fact(
    "v-prediction-is-a-rotation",
    "v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 and x_t determine "
    "x_0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v, "
    "eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v",
    topic="diffusion",
    tol=1e-12,
)
def v_rotation() -> float:
    g = torch.Generator().manual_seed(7)
    t = torch.arange(1, S.T + 1)
    x0, eps = (torch.randn(S.T, 8, generator=g, dtype=torch.float64) for _ in range(2))
    xt = q_sample(S, x0, t, eps)
    x0_back, eps_back = x0_eps_from_v(S, xt, t, v_target(S, x0, eps, t))
    return float(max((x0_back - x0).abs().max(), (eps_back - eps).abs().max()))


@fact(
    "ddim-eta-one-is-ddpm",
    "DDIM's step t -> t-1 with eta = 1 has sigma^2 = beta~_t and mean sqrt(alpha_bar_{t-1}) x_0 + "
    "sqrt(1 - alpha_bar_{t-1} - sigma^2) eps = the DDPM posterior mean",
    topic="diffusion",
    tol=1e-9,
)
def ddim_eta_one() -> float:
    g = torch.Generator().manual_seed(8)
    worst = 0.0
    for step in range(2, S.T + 1, 37):
        t = _t(step, 1)
        sigma2 = ddim_sigma(S, step, step - 1, 1.0) ** 2
        x0, xt = (torch.randn(1, 8, generator=g, dtype=torch.float64) for _ in range(2))
        eps = eps_from_x0(S, xt, t, x0)
        ab_prev = float(S.alpha_bars[step - 1])
        ddim_mean = ab_prev**0.5 * x0 + (1 - ab_prev - sigma2) ** 0.5 * eps
        worst = max(
            worst,
            abs(sigma2 - float(posterior_variance(S, t))),
            float((ddim_mean - posterior_mean(S, x0, xt, t)).abs().max()),
        )
    return worst


@fact(
    "cosine-schedule",
    "the cosine schedule's prod (1 - beta_s) is f(t) / f(0), f(t) = cos^2((t / T + s) / (1 + s) "
    "pi / 2), wherever beta_t is not clipped",
    topic="diffusion",
    tol=1e-12,
)
def cosine_alpha_bar() -> float:
    s, c = 0.008, cosine_schedule(1000)
    steps = torch.arange(1001, dtype=torch.float64)
    f = torch.cos((steps / 1000 + s) / (1 + s) * math.pi / 2) ** 2
    unclipped = torch.cat([torch.tensor([True]), c.betas[1:] < 0.999]).cumprod(0).bool()
    return float((c.alpha_bars - f / f[0])[unclipped].abs().max())


class _MixtureDenoiser(torch.nn.Module):
    """The exact denoiser of a Gaussian mixture, sum_k pi_k N(mu_k, s^2 I) (class k = component
    k): f(x_t, t, y) = E[x_0 | x_t, y], or E[x_0 | x_t] for y = K (no label) -- what a perfectly
    trained conditional x0-model with label dropout outputs. Also its log-densities of x_t."""

    def __init__(self, schedule, means: torch.Tensor, prior: torch.Tensor, s: float):
        super().__init__()
        self.schedule, self.means, self.prior, self.s2 = schedule, means, prior, s * s

    def _parts(self, xt: torch.Tensor, t: torch.Tensor):
        ab = self.schedule.alpha_bars[t].to(xt.dtype)[:, None, None]  # (B, 1, 1)
        var = ab * self.s2 + 1 - ab  # x_t | k ~ N(sqrt(ab) mu_k, var I)
        diff = xt[:, None, :] - ab.sqrt() * self.means[None]  # (B, K, D)
        loglik = -0.5 * (diff.pow(2).sum(-1) / var[..., 0] + xt.shape[1] * torch.log(var[..., 0]))
        x0_k = self.means[None] + ab.sqrt() * self.s2 / var * diff  # E[x_0 | x_t, k]
        return loglik, x0_k  # (B, K) up to a constant, (B, K, D)

    def log_densities(self, xt: torch.Tensor, t: torch.Tensor):
        """log p_t(x_t | k) (B, K) and log p_t(x_t) (B,), both up to the same constant."""
        loglik, _ = self._parts(xt, t)
        return loglik, torch.logsumexp(loglik + self.prior.log(), dim=1)

    def forward(self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loglik, x0_k = self._parts(xt, t)
        K = len(self.prior)
        resp = torch.softmax(loglik + self.prior.log(), dim=1)  # p(k | x_t)
        unlabelled = (resp[..., None] * x0_k).sum(1)  # E[x_0 | x_t]
        labelled = x0_k[torch.arange(len(y)), y.clamp(max=K - 1)]  # E[x_0 | x_t, y]
        return torch.where((y == K)[:, None], unlabelled, labelled)


@fact(
    "classifier-free-guidance-is-a-tilted-score",
    "classifier-free guidance (1 + w) f(x_t, y) - w f(x_t) of an x0-model gives "
    "eps~ = -sqrt(1 - alpha_bar_t) grad_x [log p_t(x | y) + w log p_t(y | x)] "
    "(a 2-D mixture of 3 Gaussians, exact denoiser, w = 0, 1, 3; gradients by central differences)",
    topic="diffusion",
    tol=1e-6,
)
def guidance_tilts_score() -> float:
    from nnlab.diffusion.process import DenoiseDiffusion

    means = torch.tensor([[1.5, 0.0], [-1.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    model = _MixtureDenoiser(S, means, prior, 0.3)
    g = torch.Generator().manual_seed(11)
    t = torch.tensor([5, 100, 300, 600, 900] * 6)
    y = torch.arange(len(t)) % 3
    xt = torch.randn(len(t), 2, generator=g, dtype=torch.float64) * 1.5

    def log_tilted(x: torch.Tensor, w: float) -> torch.Tensor:  # log p(x | y) + w log p(y | x)
        loglik, logp = model.log_densities(x, t)
        own = loglik[torch.arange(len(y)), y]
        return own + w * (own + prior.log()[y] - logp)

    worst, h = 0.0, 1e-5
    for w in (0.0, 1.0, 3.0):
        grad = torch.zeros_like(xt)
        for d in range(2):
            step = torch.zeros_like(xt)
            step[:, d] = h
            grad[:, d] = (log_tilted(xt + step, w) - log_tilted(xt - step, w)) / (2 * h)
        want = -(1 - S.alpha_bars[t].to(xt.dtype))[:, None].sqrt() * grad
        process = DenoiseDiffusion(model, S, "x0", null_label=3, guidance=w)
        eps, _ = process.predict(xt, t, clip=False, labels=y)
        rel = ((eps - want).norm(dim=1) / want.norm(dim=1)).nan_to_num(nan=math.inf)
        worst = max(worst, float(rel.max()))
    return worst
