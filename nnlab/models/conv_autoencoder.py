"""A convolutional autoencoder with a small bottleneck: `code` numbers per image.

    encoder: [conv3x3-BN-ReLU -> maxpool 2] per width      (B, C, S, S) -> (B, w, S/2^L, S/2^L)
             flatten -> Linear                               -> (B, code)
    decoder: Linear -> unflatten                             (B, code) -> (B, w, S/2^L, S/2^L)
             [upsample 2 (nearest) -> conv3x3-BN-ReLU] per width, reversed
             conv3x3 -> sigmoid                              -> (B, C, S, S) in (0, 1)

The code is whatever the encoder's last Linear outputs (no activation): stored as float16 it
costs 2 x code bytes per image, the figure PCA and the NumPy MLP autoencoder are compared at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnlab.models.layers import conv_bn_act


@dataclass
class ConvAutoencoderConfig:
    in_channels: int = 1  # image channels
    size: int = 32  # image height = width; divisible by 2 ** len(widths)
    code: int = 32  # numbers per encoded image (the bottleneck)
    widths: tuple[int, ...] = (16, 32, 64)  # channels of the conv stages, one halving each

    def __post_init__(self):
        self.widths = tuple(self.widths)
        if not self.widths or min(self.widths) < 1 or self.code < 1:
            raise ValueError(f"widths and code must be >= 1, got {self.widths}, {self.code}")
        if self.size % 2 ** len(self.widths):
            raise ValueError(
                f"size {self.size} is not divisible by 2^{len(self.widths)} "
                f"({len(self.widths)} conv stages halve it)"
            )


class ConvAutoencoder(nn.Module):
    def __init__(self, cfg: ConvAutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        side = cfg.size // 2 ** len(cfg.widths)
        inner = cfg.widths[-1] * side * side
        stages, c = [], cfg.in_channels
        for w in cfg.widths:
            stages += [conv_bn_act(c, w), nn.MaxPool2d(2)]
            c = w
        self.encoder = nn.Sequential(*stages, nn.Flatten(), nn.Linear(inner, cfg.code))
        stages = [nn.Linear(cfg.code, inner), nn.Unflatten(1, (cfg.widths[-1], side, side))]
        for w in reversed(cfg.widths):
            stages += [nn.Upsample(scale_factor=2, mode="nearest"), conv_bn_act(c, w)]
            c = w
        stages += [nn.Conv2d(c, cfg.in_channels, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*stages)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, code)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, code) -> (B, C, S, S) in (0, 1)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
