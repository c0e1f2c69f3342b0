"""What DDIM's discretisation costs, with the sampler's only error left: Gaussian data (every pixel
~ N(0.4, 0.3^2)) and the exact denoiser E[x_0 | x_t] in closed form. DDPM on all T steps gives the
data's variance; DDIM with few steps shrinks it, less with quadratic timesteps (crowded near the
data) than with evenly spaced ones.

    python bench/ddim_gaussian.py
"""

from __future__ import annotations

import torch
from torch import nn

from nnlab.diffusion.process import DenoiseDiffusion
from nnlab.diffusion.schedules import make_schedule

MU, SD, N = 0.4, 0.3, 20_000


class Oracle(nn.Module):
    def __init__(self, schedule):
        super().__init__()
        self.s = schedule

    def forward(self, xt, t):
        ab = self.s.alpha_bars[t.cpu()].to(xt.dtype).view(-1, *([1] * (xt.dim() - 1)))
        x0 = MU + ab.sqrt() * SD**2 / (ab * SD**2 + 1 - ab) * (xt - ab.sqrt() * MU)
        return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()  # eps


def main() -> None:
    print(
        f"data variance {SD**2:.4f}; {N} pixels per cell (sd of a variance estimate "
        f"{SD**2 * (2 / N) ** 0.5:.4f})\n"
    )
    print("| schedule | sampler | steps | sample variance | relative error |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("linear", "cosine"):
        s = make_schedule(name, 1000)
        process = DenoiseDiffusion(Oracle(s), s, "eps")
        runs = [("DDPM", 1000, "")] + [
            ("DDIM", k, spacing)
            for spacing in ("uniform", "quadratic")
            for k in (10, 20, 50, 100, 200, 1000)
        ]
        for sampler, steps, spacing in runs:
            g = torch.Generator().manual_seed(0)
            if sampler == "DDPM":
                x, _ = process.ddpm((N // 10, 1, 2, 5), clip=False, generator=g)
            else:
                x, _ = process.ddim(
                    (N // 10, 1, 2, 5), steps, 0.0, clip=False, generator=g, spacing=spacing
                )
            var = float(x.var())
            label = f"{sampler} {spacing}".strip()
            print(f"| {name} | {label} | {steps} | {var:.4f} | {var / SD**2 - 1:+.1%} |")


if __name__ == "__main__":
    main()
