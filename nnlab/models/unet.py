"""U-Net (Ronneberger, Fischer & Brox 2015): a contracting path of double 3x3 convolutions and 2x2
max pooling, an expanding path of 2x2 up-convolutions, and skip connections that concatenate each
encoder level's features to the decoder level of the same resolution -- the decoder gets back the
fine detail that pooling threw away. Here with 'same' padding (output size = input size) and batch
normalisation after every convolution, as most reimplementations do."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnlab.models.layers import double_conv


@dataclass
class UNetConfig:
    in_channels: int = 3
    out_channels: int = 1  # 1: a binary mask's logits
    base: int = 32  # channels of the first level; doubled at every level down (the paper: 64)
    depth: int = 4  # down-sampling steps (the paper: 4); inputs must be divisible by 2**depth
    dropout: float = 0.0  # dropout at the bottleneck


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.base * 2**i for i in range(cfg.depth + 1)]  # e.g. 32 64 128 256 512
        self.down = nn.ModuleList(
            [double_conv(cfg.in_channels, widths[0])]
            + [double_conv(widths[i], widths[i + 1]) for i in range(cfg.depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout2d(cfg.dropout)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(cfg.depth))
        )
        self.fuse = nn.ModuleList(
            double_conv(2 * widths[i], widths[i]) for i in reversed(range(cfg.depth))
        )
        self.head = nn.Conv2d(widths[0], cfg.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) with H, W divisible by 2**depth -> logits (B, out_channels, H, W)."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = self.drop(skips.pop())  # the bottleneck
        for up, fuse in zip(self.up, self.fuse):
            x = fuse(torch.cat([skips.pop(), up(x)], dim=1))  # skip connection: concatenate
        return self.head(x)
