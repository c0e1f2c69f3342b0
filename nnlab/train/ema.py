"""An exponential moving average of the weights (Polyak averaging), as DDPM samples from and as
timm's ModelEmaV2 keeps:

    theta_ema <- d_t theta_ema + (1 - d_t) theta   after every optimizer step t,
    d_t = min(decay, (1 + t) / (10 + t))

The warm-up of d_t keeps the first averages from being dominated by the random initialisation
(with d = 0.999 and no warm-up, the average would still be 37% initial weights after 1000 steps).
Buffers (BatchNorm statistics, already running averages) are copied, not averaged. The update is
one multi-tensor (foreach) call over all the weights rather than one small kernel per tensor
(on a GPU each kernel launch costs host time; for a small model, launches add up)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        averaged = list(self.module.parameters())
        if averaged:
            torch._foreach_lerp_(averaged, [p.detach() for p in model.parameters()], 1 - d)
        buffers = list(self.module.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(model.buffers()))
