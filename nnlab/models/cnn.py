"""A small CNN: [Conv3x3 -> BatchNorm -> ReLU -> (Conv3x3 -> BN -> ReLU) -> MaxPool2] per block,
then global average (or max) pooling and a linear classifier, so any input size works."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnlab.models.layers import conv_bn_act


@dataclass
class CNNConfig:
    in_channels: int = 1
    num_classes: int = 10
    channels: tuple[int, ...] = (32, 64)  # one block per entry; each block halves H and W
    convs_per_block: int = 2
    first_kernel: int = 3  # kernel size of the very first conv (larger shows Gabor-like filters)
    # Scale of the first conv's initial weights. Kernel components orthogonal to every image patch
    # get no gradient and keep their random initial values; a small scale lets the learnt part show.
    first_init_scale: float = 1.0
    dropout: float = 0.1
    # avg | max over all positions; both forget where a feature was, max keeps each channel's
    # strongest response (a detector: one match anywhere counts, blank canvas around it does not)
    global_pool: str = "avg"


GLOBAL_POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = []
        c = cfg.in_channels
        for b, width in enumerate(cfg.channels):
            convs = [
                conv_bn_act(c if i == 0 else width, width, cfg.first_kernel if b == i == 0 else 3)
                for i in range(cfg.convs_per_block)
            ]
            blocks.append(nn.Sequential(*convs, nn.MaxPool2d(2)))
            c = width
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            blocks[0][0][0].weight.mul_(cfg.first_init_scale)
        self.head = nn.Sequential(
            GLOBAL_POOLS[cfg.global_pool](1),
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(c, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) with H, W divisible by 2**len(channels) -> logits (B, num_classes)."""
        return self.head(self.features(x))  # features: (B, C', H / 2^k, W / 2^k)
