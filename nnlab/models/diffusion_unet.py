"""The time-conditioned U-Net of DDPM (Ho et al. 2020, appendix B; with the improvements of
Nichol & Dhariwal 2021): the network eps_theta(x_t, t) that a diffusion process trains with

    L_simple = E_{t, x_0, eps} || eps - eps_theta(sqrt(alpha_bar_t) x_0
                                                  + sqrt(1 - alpha_bar_t) eps, t) ||^2   (eq. 14)

Its output has the image's shape, so the same network predicts eps, x_0 or v; which one is the
process's business, not the model's. Three levels (mults = (1, 2, 2), base c, blocks = 1):

    t --PE--> Linear, SiLU, Linear --> e (B, 4c), added per channel in every ResBlock
    x (B, C, H, W) --conv3x3--> (B, c, H, W)
      level 0: ResBlock(c)   -----------------------skip------------------------+
      down (stride-2 conv3x3) --> H/2                                           |
        level 1: ResBlock(2c)   -------------skip--------------+                |
        down --> H/4                                           |                |
          level 2: ResBlock(2c)   ---skip---+                  |                |
          middle: ResBlock, self-attention, ResBlock (H/4)     |                |
          cat(skip) -> ResBlock(2c) <-------+                  |                |
        up (nearest x2, conv3x3) --> H/2, cat(skip) -> ResBlock(2c) <-+         |
      up --> H, cat(skip) -> ResBlock(c) <--------------------------------------+
    GN, SiLU, conv3x3 (zero-initialised) --> (B, out_channels, H, W)

One skip per level (the output of its last ResBlock), taken at the level's resolution before it
is halved and consumed by the first ResBlock of the mirrored up level, so the shapes hold for any
`blocks` >= 1 and any number of levels (one level: no down-sampling at all). Self-attention only
at the lowest resolution, where H W tokens are few and the (H W)^2 attention map is cheap.
Shape comments: level i = 0..L-1 has c_i = base * mults[i] channels at H_i x W_i =
H / 2^i x W / 2^i; the middle counts as level L with c_L = c_(L-1) at H_(L-1) x W_(L-1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nnlab.models.layers import Attention, ResidualBlock, TimeEmbedding, group_count


@dataclass
class DiffusionUNetConfig:
    in_channels: int = 1  # image channels
    out_channels: int = 1  # the prediction (eps, x0 or v) has the image's shape
    base: int = 32  # channels of the first level
    mults: tuple[int, ...] = (1, 2, 2)  # channel multiplier per level; len(mults) - 1 halvings
    blocks: int = 1  # residual blocks per level, down and up
    attention: bool = True  # self-attention at the lowest resolution
    heads: int = 4
    groups: int = 8  # GroupNorm groups
    dropout: float = 0.0
    classes: int = 0  # > 0: class-conditional, eps_theta(x_t, t, y); label `classes` = no label


class SpatialSelfAttention(nn.Module):
    """Self-attention over the H W positions of a feature map, as a residual block:
    y = x + reshape(Attn(flatten(GN(x)))), every position attending to every other."""

    def __init__(self, channels: int, heads: int, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(group_count(channels, groups), channels)
        self.attn = Attention(channels, heads)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """x: (B, C, H, W) -> (B, C, H, W); with return_attention also the weights
        (B, heads, H W, H W)."""
        B, C, H, W = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, H W, C)
        out, weights = self.attn(tokens, need_weights=return_attention)  # (B, H W, C)
        y = x + out.transpose(1, 2).reshape(B, C, H, W)  # (B, C, H, W)
        return (y, weights) if return_attention else y


class DiffusionUNet(nn.Module):
    def __init__(self, cfg: DiffusionUNetConfig):
        super().__init__()
        if not cfg.mults or cfg.blocks < 1:
            raise ValueError(
                f"need at least one level and one block, got {cfg.mults=}, {cfg.blocks=}"
            )
        if cfg.base % 2:
            raise ValueError(
                f"base must be even (the time embedding is sin, cos pairs), got {cfg.base}"
            )
        self.cfg = cfg
        widths = [cfg.base * m for m in cfg.mults]  # e.g. 32 64 64
        emb_dim = 4 * cfg.base

        def res(c_in: int, c_out: int) -> ResidualBlock:
            return ResidualBlock(c_in, c_out, emb_dim, cfg.groups, cfg.dropout)

        self.time_embed = TimeEmbedding(cfg.base, emb_dim)
        # class-conditional (Ho & Salimans 2021): a learned vector per class added to the time
        # embedding, so every ResBlock sees it; one more row, `classes`, is "no label" -- the
        # same network then also models p(x), which classifier-free guidance needs
        self.class_embed = nn.Embedding(cfg.classes + 1, emb_dim) if cfg.classes else None
        self.stem = nn.Conv2d(cfg.in_channels, cfg.base, 3, padding=1)

        self.down = nn.ModuleList()  # level i: `blocks` ResBlocks
        self.downsample = nn.ModuleList()  # after every level but the last
        c = cfg.base
        for i, w in enumerate(widths):
            self.down.append(nn.ModuleList(res(c if j == 0 else w, w) for j in range(cfg.blocks)))
            c = w
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))

        self.mid1 = res(c, c)
        self.mid_attn = SpatialSelfAttention(c, cfg.heads, cfg.groups) if cfg.attention else None
        self.mid2 = res(c, c)

        self.upsample = nn.ModuleList()  # before every level but the last
        self.up = nn.ModuleList()  # level i, lowest first: cat(h, skip_i) -> `blocks` ResBlocks
        for i in reversed(range(len(widths))):
            w = widths[i]
            if i < len(widths) - 1:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
            self.up.append(nn.ModuleList(res(c + w if j == 0 else w, w) for j in range(cfg.blocks)))
            c = w

        self.out_norm = nn.GroupNorm(group_count(c, cfg.groups), c)
        self.out_conv = nn.Conv2d(c, cfg.out_channels, 3, padding=1)
        # DDPM's zero_module: eps_theta starts at exactly 0, the mean of its target, so the
        # initial loss is Var(eps) = 1 and not a random output's larger error; only this conv
        # gets a gradient at the first step, after which the rest of the network trains.
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, C, H, W) noisy images, H and W divisible by 2**(len(mults)-1); t: (B,) timesteps
        (int or float); y: (B,) class labels in 0..classes, `classes` meaning none (a conditional
        model only; None = no label for all) -> (B, out_channels, H, W)."""
        B, C, H, W = x.shape
        factor = 2 ** (len(self.cfg.mults) - 1)
        if H % factor or W % factor:
            raise ValueError(
                f"image size {H}x{W} is not divisible by 2**(len(mults)-1) = {factor}: "
                f"{len(self.cfg.mults) - 1} halvings need it (pad the images)"
            )
        if t.shape != (B,):
            raise ValueError(
                f"t must have shape ({B},), one timestep per image, got {tuple(t.shape)}"
            )
        e = self.time_embed(t)  # (B, 4 base)
        if self.class_embed is not None:
            if y is None:
                y = torch.full((B,), self.cfg.classes, device=x.device, dtype=torch.long)
            # the range is checked where it costs no wait for a GPU
            bad = (
                y.device.type == "cpu" and not 0 <= int(y.min()) <= int(y.max()) <= self.cfg.classes
            )
            if y.shape != (B,) or bad:
                raise ValueError(
                    f"y must be (B,) = ({B},) labels in 0..{self.cfg.classes} "
                    f"({self.cfg.classes} = none), got shape {tuple(y.shape)}"
                )
            e = e + self.class_embed(y)  # (B, 4 base)
        elif y is not None:
            raise ValueError("this U-Net is not class-conditional (classes = 0): y must be None")

        h = self.stem(x)  # (B, base, H, W)
        skips = []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, e)  # (B, c_i, H_i, W_i)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, c_i, H_(i+1), W_(i+1))

        h = self.mid1(h, e)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, e)

        lowest = len(self.cfg.mults) - 1
        for i, blocks in zip(range(lowest, -1, -1), self.up):
            if i < lowest:  # up to the resolution of this level's skip
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, c_(i+1), H_i, W_i)
                h = self.upsample[lowest - 1 - i](h)
            h = torch.cat([h, skips.pop()], dim=1)  # (B, c_(i+1) + c_i, H_i, W_i)
            for block in blocks:
                h = block(h, e)  # (B, c_i, H_i, W_i)
        return self.out_conv(F.silu(self.out_norm(h)))  # (B, out_channels, H, W)
