"""The diffusion process as an object that is handed a denoiser (as labml's DenoiseDiffusion is):
the training loss and the two samplers. The network f(x_t, t) predicts one of

    eps  the noise (Ho et al. 2020):        x_0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
    x0   the clean image
    v    sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (Salimans & Ho 2022)

and the loss is the mean squared error on that target, t uniform on 1..T. The three are one
model seen three ways, but the same squared error weighs the timesteps differently: an error d in
eps is an error sqrt(1 - ab_t) / sqrt(ab_t) d in x_0, so the eps loss is the x_0 loss weighted by
the signal-to-noise ratio ab_t / (1 - ab_t) -- huge at small t, tiny at large t. With `min_snr`
= gamma > 0 each error is reweighted so that the loss is the x_0 loss weighted by min(SNR_t,
gamma) whatever the objective (min-SNR-gamma, Hang et al. 2023).

Samplers: ancestral DDPM, x_{t-1} = mu~_t(x_0_hat, x_t) + sigma_t z with sigma_t^2 = beta~_t (the
posterior variance) or beta_t (both are in the paper, sec. 3.2); and DDIM (Song, Meng & Ermon 2021,
eq. 12) on any sub-sequence of timesteps,

    x_s = sqrt(ab_s) x_0_hat + sqrt(1 - ab_s - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - ab_s) / (1 - ab_t)) sqrt(1 - ab_t / ab_s),

deterministic for eta = 0; eta = 1 on all T steps is DDPM with beta~_t.

Class-conditional models and classifier-free guidance (Ho & Salimans 2021): the network takes a
label y, and during training the label is dropped (replaced by `null_label`) with probability
p_uncond, so one network learns both eps(x_t, t, y) and eps(x_t, t). Sampling with guidance w
uses eps~ = (1 + w) eps(x_t, t, y) - w eps(x_t, t): since eps = -sqrt(1 - ab_t) grad log p(x_t),
that is the score of p(x_t | y) p(y | x_t)^w (Bayes), a sampler that leans towards images the
implicit classifier is sure of. w = 0 is the plain conditional model. The combination is taken of
the network's raw output: x_0 and v are affine in eps at fixed x_t, and the weights 1 + w and -w
sum to 1, so the same combination of x_0 or v predictions is the same guided eps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nnlab.diffusion.schedules import (
    Schedule,
    eps_from_x0,
    min_snr_weight,
    per_sample,
    posterior_mean,
    posterior_variance,
    q_sample,
    v_target,
    x0_eps_from_v,
    x0_from_eps,
)

OBJECTIVES = ("eps", "x0", "v")


def ddim_sigma(s: Schedule, t: int, prev: int, eta: float) -> float:
    """sigma of a DDIM step from t to prev < t (Song et al. 2021, eq. 16)."""
    ab, ab_prev = s.alpha_bars[t], s.alpha_bars[prev]
    return float(eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt())


class DenoiseDiffusion:
    def __init__(
        self,
        model: nn.Module,
        schedule: Schedule,
        objective: str = "eps",
        min_snr: float = 0.0,
        null_label: int | None = None,
        guidance: float = 0.0,
    ):
        """null_label: the label meaning "none" of a class-conditional model (None: the model
        takes no labels); guidance: classifier-free guidance w >= 0 when sampling with labels."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be eps, x0 or v, got '{objective}'")
        if min_snr < 0:
            raise ValueError(f"min_snr must be >= 0 (0: plain squared error), got {min_snr}")
        if guidance < 0 or (guidance and null_label is None):
            raise ValueError(
                f"guidance must be >= 0, and needs a class-conditional model, got {guidance}"
            )
        self.model, self.schedule, self.objective = model, schedule, objective
        self.min_snr, self.null_label, self.guidance = min_snr, null_label, guidance

    def weights(self, t: torch.Tensor) -> torch.Tensor | None:
        """The per-sample loss weights at timesteps t (B,), or None for the plain squared error."""
        if not self.min_snr:
            return None
        s = self.schedule.to(t.device)
        return min_snr_weight(s, t, self.objective, self.min_snr).float()

    # ---- training ---------------------------------------------------------------------------
    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.objective == "eps":
            return eps
        s = self.schedule.to(x0.device)
        return x0 if self.objective == "x0" else v_target(s, x0, eps, t)

    def losses(
        self,
        x0: torch.Tensor,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        p_uncond: float = 0.0,
    ):
        """Per-sample squared errors (B,) and their timesteps (B,) for clean images x0 (B, ...):
        t ~ U{1..T}, eps ~ N(0, I), x_t = q_sample(x_0, t, eps), error |f(x_t, t) - target|^2
        averaged over the image. Unweighted: the loss is `loss(err, t)`. With labels (B,) (a
        conditional model), each is replaced by `null_label` with probability p_uncond."""
        B = x0.shape[0]
        t = torch.randint(1, self.schedule.T + 1, (B,), device=x0.device, generator=generator)
        eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        xt = q_sample(self.schedule.to(x0.device), x0, t, eps)
        if labels is None:
            pred = self.model(xt, t)
        else:
            if self.null_label is None:
                raise ValueError("labels need a class-conditional model (null_label is None)")
            drop = torch.rand(B, device=x0.device, generator=generator) < p_uncond
            pred = self.model(xt, t, labels.masked_fill(drop, self.null_label))
        err = (pred.float() - self.target(x0, eps, t).float()) ** 2
        return err.flatten(1).mean(1), t

    def loss(self, err: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The training loss of per-sample errors from `losses`: their mean, weighted by
        `weights(t)` when min-SNR weighting is on."""
        w = self.weights(t)
        return err.mean() if w is None else (w * err).mean()

    # ---- from a prediction to (eps, x0) ----------------------------------------------------------
    def output(
        self, xt: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's output at (x_t, t), given labels (B,) when it is conditional; with
        guidance w, (1 + w) f(x_t, t, y) - w f(x_t, t, none) from one batch of 2B."""
        if labels is None:
            return self.model(xt, t)
        if not self.guidance:
            return self.model(xt, t, labels)
        none = torch.full_like(labels, self.null_label)
        both = self.model(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([labels, none]))
        cond, uncond = both.chunk(2)
        return cond + self.guidance * (cond - uncond)

    def predict(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        clip: bool = True,
        labels: torch.Tensor | None = None,
    ):
        """(eps_hat, x0_hat) from the network's output at (x_t, t) (and labels, see `output`);
        with `clip`, x0_hat is clipped to the data range [-1, 1] and eps_hat recomputed from it
        (as Ho et al.'s sampler does)."""
        out = self.output(xt, t, labels).to(xt.dtype)
        s = self.schedule.to(xt.device)
        if self.objective == "eps":
            eps, x0 = out, x0_from_eps(s, xt, t, out)
        elif self.objective == "x0":
            eps, x0 = eps_from_x0(s, xt, t, out), out
        else:
            x0, eps = x0_eps_from_v(s, xt, t, out)
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = eps_from_x0(s, xt, t, x0)
        return eps, x0

    # ---- sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def ddpm(
        self,
        shape: tuple[int, ...],
        variance: str = "posterior",
        clip: bool = True,
        generator: torch.Generator | None = None,
        device=None,
        keep: Callable[[int], bool] | None = None,
        labels: torch.Tensor | None = None,
    ):
        """Ancestral sampling over all T steps. variance: "posterior" (beta~_t) or "beta" (beta_t).
        labels (B,): the classes to draw (a conditional model). Returns x_0 (B, ...) and
        {t: x_t} for the steps where keep(t) (the reverse strip)."""
        if variance not in ("posterior", "beta"):
            raise ValueError(f"variance must be posterior or beta, got '{variance}'")
        s = self.schedule
        x = torch.randn(shape, device=device, generator=generator)
        kept = {s.T: x.cpu()} if keep and keep(s.T) else {}
        for step in range(s.T, 0, -1):
            t = torch.full((shape[0],), step, device=x.device, dtype=torch.long)
            _, x0 = self.predict(x, t, clip, labels)
            on = s.to(x.device)
            mean = posterior_mean(on, x0, x, t)
            var = posterior_variance(on, t) if variance == "posterior" else on.betas[t]
            z = torch.randn(shape, device=x.device, generator=generator) if step > 1 else 0
            x = mean + per_sample(var.sqrt(), x) * z
            if keep and keep(step - 1):
                kept[step - 1] = x.cpu()
        return x, kept

    @torch.no_grad()
    def ddim(
        self,
        shape: tuple[int, ...],
        steps: int = 50,
        eta: float = 0.0,
        clip: bool = True,
        generator: torch.Generator | None = None,
        device=None,
        keep: Callable[[int], bool] | None = None,
        spacing: str = "uniform",
        labels: torch.Tensor | None = None,
    ):
        """DDIM on `steps` timesteps in 1..T spaced by `spacing` (see ddim_times; always from T
        and ending at t = 1, then 0); labels as in `ddpm`."""
        s = self.schedule
        if not 1 <= steps <= s.T:
            raise ValueError(f"steps must be in 1..{s.T}, got {steps}")
        times = ddim_times(s.T, steps, spacing)
        x = torch.randn(shape, device=device, generator=generator)
        kept = {times[0]: x.cpu()} if keep and keep(times[0]) else {}
        for step, prev in zip(times, times[1:] + [0]):
            t = torch.full((shape[0],), step, device=x.device, dtype=torch.long)
            eps, x0 = self.predict(x, t, clip, labels)
            sigma = ddim_sigma(s, step, prev, eta)
            ab_prev = float(s.alpha_bars[prev])
            x = ab_prev**0.5 * x0 + max(1 - ab_prev - sigma**2, 0.0) ** 0.5 * eps
            if sigma > 0 and prev > 0:
                x = x + sigma * torch.randn(shape, device=x.device, generator=generator)
            if keep and keep(prev):
                kept[prev] = x.cpu()
        return x, kept


SPACINGS = ("uniform", "quadratic")


def ddim_times(T: int, steps: int, spacing: str = "uniform") -> list[int]:
    """`steps` distinct timesteps from T down to 1: evenly spaced ("uniform"), or "quadratic",
    t = 1 + (T - 1) u^2 for u evenly spaced from 1 to 0 (Song et al. 2021 used it on CIFAR-10):
    the steps crowd near the data, where deterministic DDIM loses most of the samples' spread
    (bench/ddim_gaussian.py). Where rounding would repeat a small t, the steps are pushed apart
    to keep `steps` distinct ones."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be uniform or quadratic, got '{spacing}'")
    if spacing == "uniform":
        return torch.linspace(T, 1, steps).round().long().unique(sorted=True).flip(0).tolist()
    u = torch.linspace(1, 0, steps, dtype=torch.float64)
    times = (1 + (T - 1) * u**2).round().long().tolist()[::-1]  # ascending from 1
    for i in range(1, steps):
        times[i] = max(times[i], times[i - 1] + 1)
    for i in range(steps - 1, -1, -1):
        times[i] = min(times[i], T - (steps - 1 - i))
    return times[::-1]


__all__ = ["OBJECTIVES", "SPACINGS", "DenoiseDiffusion", "ddim_sigma", "ddim_times"]
