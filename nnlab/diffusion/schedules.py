"""Noise schedules and the closed forms of the DDPM forward process (Ho, Jain & Abbeel 2020).

    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I),        alpha_t = 1 - beta_t
    q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),
                                                                  alpha_bar_t = prod_{s<=t} alpha_s

Timesteps run t = 1..T as in the paper; index 0 stands for the data itself (beta_0 = 0,
alpha_bar_0 = 1), so alpha_bar_{t-1} is always `alpha_bars[t - 1]`. Every function takes the
schedule, a LongTensor `t` of shape (B,) and tensors (B, ...) and broadcasts the schedule's
coefficients over the trailing dimensions. Coefficients are kept in float64 and cast to the
data's dtype only when applied.

Two look-alikes to keep apart (worked solutions of the exercises mix them up): sqrt(alpha_t)
scales one step, sqrt(alpha_bar_t) scales the whole way from x_0. Each formula below is checked
on its own, numerically, in `nnlab.facts.diffusion`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class Schedule:
    betas: torch.Tensor  # (T + 1,) float64, betas[0] = 0

    @property
    def T(self) -> int:
        return len(self.betas) - 1

    @functools.cached_property
    def alphas(self) -> torch.Tensor:
        return 1 - self.betas  # (T + 1,), alphas[0] = 1

    @functools.cached_property
    def alpha_bars(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, 0)  # (T + 1,), alpha_bars[0] = 1

    def to(self, device: torch.device | str) -> Schedule:
        """This schedule with its coefficients on `device` (made once per device, the same
        numbers moved, not recomputed there). Looking t up in a schedule on the GPU, where t
        is, reads nothing back to the host: a schedule on the CPU costs a wait for the GPU at
        every lookup."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if self.betas.device == device:
            return self
        moved = self.__dict__.setdefault("_moved", {})
        if device not in moved:
            other = Schedule(self.betas.to(device))
            other.__dict__["alphas"] = self.alphas.to(device)
            other.__dict__["alpha_bars"] = self.alpha_bars.to(device)
            moved[device] = other
        return moved[device]


def linear_schedule(T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> Schedule:
    """beta_t linear from beta_1 to beta_T (Ho et al. 2020, sec. 4)."""
    betas = torch.linspace(beta_1, beta_T, T, dtype=torch.float64)
    return Schedule(torch.cat([torch.zeros(1, dtype=torch.float64), betas]))


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """alpha_bar_t = f(t) / f(0), f(t) = cos^2((t / T + s) / (1 + s) pi / 2) (Nichol & Dhariwal
    2021, eq. 17); beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped at `max_beta` so the last
    steps near t = T stay finite."""
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((steps / T + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)
    return Schedule(torch.cat([torch.zeros(1, dtype=torch.float64), betas]))


def make_schedule(name: str, T: int = 1000) -> Schedule:
    if name == "linear":
        return linear_schedule(T)
    if name == "cosine":
        return cosine_schedule(T)
    raise ValueError(f"schedule must be linear or cosine, got '{name}'")


def per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (B,) vector shaped (B, 1, ..., 1) to broadcast over x (B, ...), in x's dtype and device."""
    return v.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def at(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t], shaped to broadcast over x (B, ...). Looked up where `values` are (a schedule
    on the CPU with t on a GPU reads t back: `Schedule.to` avoids that)."""
    return per_sample(values[t.to(values.device)], x)


# ---- the forward process ------------------------------------------------------------------------
def forward_step(s: Schedule, x_prev: torch.Tensor, t: torch.Tensor, eps: torch.Tensor):
    """One step: x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps."""
    return at(s.alphas.sqrt(), t, x_prev) * x_prev + at(s.betas.sqrt(), t, x_prev) * eps


def q_sample(s: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """All t steps at once: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
    return at(s.alpha_bars.sqrt(), t, x0) * x0 + at((1 - s.alpha_bars).sqrt(), t, x0) * eps


def q_mean_var(s: Schedule, x0: torch.Tensor, t: torch.Tensor):
    """Mean sqrt(alpha_bar_t) x_0 and variance 1 - alpha_bar_t of q(x_t | x_0)."""
    return at(s.alpha_bars.sqrt(), t, x0) * x0, at(1 - s.alpha_bars, t, x0)


def joint_covariance(s: Schedule, t: torch.Tensor) -> torch.Tensor:
    """Cov(x_{t-1}, x_t | x_0) per coordinate = sqrt(alpha_t) (1 - alpha_bar_{t-1}): x_t adds
    independent noise to sqrt(alpha_t) x_{t-1}, whose variance given x_0 is 1 - alpha_bar_{t-1}."""
    t = t.to(s.betas.device)
    return s.alphas.sqrt()[t] * (1 - s.alpha_bars[t - 1])


# ---- the posterior q(x_{t-1} | x_t, x_0) ------------------------------------------------------
def posterior_coefficients(s: Schedule, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_0, c_t) of mu~_t = c_0 x_0 + c_t x_t (Ho et al. 2020, eq. 7):
    c_0 = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t),
    c_t = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)."""
    t = t.to(s.betas.device)
    ab, ab_prev = s.alpha_bars[t], s.alpha_bars[t - 1]
    return ab_prev.sqrt() * s.betas[t] / (1 - ab), s.alphas[t].sqrt() * (1 - ab_prev) / (1 - ab)


def posterior_mean(s: Schedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
    """mu~_t = c_0 x_0 + c_t x_t, see `posterior_coefficients`."""
    c0, ct = posterior_coefficients(s, t)
    return per_sample(c0, x0) * x0 + per_sample(ct, xt) * xt


def posterior_mean_from_residual(
    s: Schedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The same mean written as a correction of x_t:

    mu~_t = (1 / sqrt(alpha_t)) (x_t - (1 - alpha_t) / (1 - alpha_bar_t)
                                        (x_t - sqrt(alpha_bar_t) x_0))"""
    a, ab = at(s.alphas, t, xt), at(s.alpha_bars, t, xt)
    return (xt - (1 - a) / (1 - ab) * (xt - ab.sqrt() * x0)) / a.sqrt()


def posterior_variance(s: Schedule, t: torch.Tensor) -> torch.Tensor:
    """beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t (Ho et al. 2020, eq. 7)."""
    t = t.to(s.betas.device)
    return (1 - s.alpha_bars[t - 1]) / (1 - s.alpha_bars[t]) * s.betas[t]


# ---- what a network may predict: eps, x_0 or v ------------------------------------------------
def x0_from_eps(s: Schedule, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor):
    """x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t): q_sample solved for x_0."""
    ab = at(s.alpha_bars, t, xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def eps_from_x0(s: Schedule, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor):
    """eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)."""
    ab = at(s.alpha_bars, t, xt)
    return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()


def v_target(s: Schedule, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor):
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho 2022, sec. 4)."""
    ab = at(s.alpha_bars, t, x0)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def x0_eps_from_v(s: Schedule, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor):
    """(x_0, eps) = (sqrt(ab) x_t - sqrt(1 - ab) v, sqrt(1 - ab) x_t + sqrt(ab) v), with
    ab = alpha_bar_t: (x_t, v) is a rotation of (x_0, eps) by phi, cos phi = sqrt(ab)."""
    ab = at(s.alpha_bars, t, xt)
    return ab.sqrt() * xt - (1 - ab).sqrt() * v, (1 - ab).sqrt() * xt + ab.sqrt() * v


def snr(s: Schedule, t: torch.Tensor) -> torch.Tensor:
    """The signal-to-noise ratio of x_t: SNR_t = alpha_bar_t / (1 - alpha_bar_t), float64 (B,)."""
    ab = s.alpha_bars[t.to(s.betas.device)]
    return ab / (1 - ab)


def min_snr_weight(s: Schedule, t: torch.Tensor, objective: str, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023) for the objective's squared error, (B,)
    float64: they make every objective's weighted loss the x_0 loss weighted by min(SNR_t, gamma).
    The plain losses weigh the x_0 error by SNR_t (eps), 1 (x0) and SNR_t + 1 (v: an x_0 error d
    is a v error d / sqrt(1 - alpha_bar_t)), so the weights are min(SNR, gamma) / SNR,
    min(SNR, gamma) and min(SNR, gamma) / (SNR + 1). For eps this leaves the steps with
    SNR <= gamma alone and turns down only the few nearly clean ones (t < 130 of 1000 on the
    linear schedule for gamma = 5), whose large, noisy errors otherwise dominate the gradient."""
    r = snr(s, t)
    capped = r.clamp(max=gamma)
    if objective == "eps":
        return capped / r
    if objective == "x0":
        return capped
    if objective == "v":
        return capped / (r + 1)
    raise ValueError(f"objective must be eps, x0 or v, got '{objective}'")


def mean_from_eps(s: Schedule, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor):
    """mu_theta = (1 / sqrt(alpha_t)) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) (Ho et al.
    2020, eq. 11): the posterior mean with x_0 replaced by `x0_from_eps`."""
    a, b, ab = at(s.alphas, t, xt), at(s.betas, t, xt), at(s.alpha_bars, t, xt)
    return (xt - b / (1 - ab).sqrt() * eps) / a.sqrt()
