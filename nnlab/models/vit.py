"""Vision Transformer (Dosovitskiy et al. 2021, eqs. 1-4):

    z_0 = [x_class; E p_1; ...; E p_N] + E_pos
    z'_l = MSA(LN(z_{l-1})) + z_{l-1},   z_l = MLP(LN(z'_l)) + z'_l,   l = 1..L
    y = Linear(LN(z_L^0))

Patch size is a parameter: 7x7 on 28x28 gives 16 tokens; (1, 28) makes every image row a token
(1-D patches), (1, P) any horizontal strip."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnlab.models.layers import Block, PatchEmbed


@dataclass
class ViTConfig:
    image_size: tuple[int, int] = (28, 28)
    in_channels: int = 1
    patch: tuple[int, int] = (7, 7)
    num_classes: int = 10
    dim: int = 64
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_size[0] // self.patch[0], self.image_size[1] // self.patch[1]


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        H, W = cfg.image_size
        if H % cfg.patch[0] or W % cfg.patch[1]:
            raise ValueError(f"patch {cfg.patch} does not tile a {H}x{W} image")
        self.cfg = cfg
        n = cfg.grid[0] * cfg.grid[1]
        self.patch_embed = PatchEmbed(cfg.in_channels, cfg.patch, cfg.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), cfg.dropout)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """x: (B, C, H, W) -> logits (B, K); with return_attention also the list of per-layer
        attention weights, each (B, heads, N + 1, N + 1), token 0 = class token."""
        B = x.shape[0]
        z = self.patch_embed(x)  # (B, N, D)
        z = (
            torch.cat([self.cls_token.expand(B, -1, -1), z], dim=1) + self.pos_embed
        )  # (B, N + 1, D)
        maps = []
        for block in self.blocks:
            z, attn = block(z, need_weights=return_attention)
            maps.append(attn)
        logits = self.head(self.norm(z[:, 0]))  # (B, K)
        return (logits, maps) if return_attention else logits
