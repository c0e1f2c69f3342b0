"""SegmentViT: a Vision Transformer encoder with a light convolutional decoder for dense output
(in the spirit of SETR's progressive up-sampling, Zheng et al. 2021).

    tokens z_L (B, N, D) --reshape--> grid (B, D, H/P, W/P)
        --[x2 up, conv 3x3, BN, ReLU] x log2 P--> (B, c, H, W) --conv 1x1--> logits (B, 1, H, W)

No class token: every token is a patch whose features become a pixel of the coarse grid. The
encoder sees the whole image in every layer (global attention) but only at patch resolution; the
decoder has to recover the boundary detail from the tokens alone -- which is what the comparison
with the U-Net's skip connections shows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nnlab.models.layers import Block, PatchEmbed, conv_bn_act


@dataclass
class SegmentViTConfig:
    image_size: int = 256
    in_channels: int = 3
    out_channels: int = 1
    patch: int = 16  # a power of two: the decoder doubles the resolution log2(patch) times
    dim: int = 192
    depth: int = 6
    heads: int = 6
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    decoder: int = 64  # channels of the first decoder stage, halved at every stage (min 16)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch


class SegmentViT(nn.Module):
    def __init__(self, cfg: SegmentViTConfig):
        super().__init__()
        if cfg.patch < 2 or cfg.patch & (cfg.patch - 1):
            raise ValueError(f"patch must be a power of two >= 2, got {cfg.patch}")
        if cfg.image_size % cfg.patch:
            raise ValueError(f"patch {cfg.patch} does not tile a {cfg.image_size} px image")
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg.in_channels, (cfg.patch, cfg.patch), cfg.dim)
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.grid**2, cfg.dim) * 0.02)
        mlp_hidden = int(cfg.dim * cfg.mlp_ratio)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, mlp_hidden, cfg.dropout) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        stages, cin = [], cfg.dim
        for i in range(int(math.log2(cfg.patch))):
            cout = max(16, cfg.decoder // 2**i)
            stages.append(conv_bn_act(cin, cout))
            cin = cout
        self.decoder = nn.ModuleList(stages)
        self.head = nn.Conv2d(cin, cfg.out_channels, 1)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """x: (B, C, S, S) -> logits (B, out_channels, S, S); with return_attention also the
        per-layer attention weights, each (B, heads, N, N) over the N = (S/P)^2 patches."""
        B = x.shape[0]
        g = self.cfg.grid
        z = self.patch_embed(x) + self.pos_embed  # (B, N, D)
        maps = []
        for block in self.blocks:
            z, attn = block(z, need_weights=return_attention)
            maps.append(attn)
        z = self.norm(z).transpose(1, 2).reshape(B, self.cfg.dim, g, g)  # tokens -> grid
        for stage in self.decoder:
            z = stage(F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False))
        logits = self.head(z)
        return (logits, maps) if return_attention else logits
