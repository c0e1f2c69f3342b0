"""Reusable transformer blocks: patch embedding, multi-head self-attention written from the
formula, the position-wise MLP, and the pre-norm block (Vaswani et al. 2017; Dosovitskiy et al.
2021). Shared by every transformer in nnlab."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class PatchEmbed(nn.Module):
    """Cut (B, C, H, W) into non-overlapping ph x pw patches and project each flattened patch:
    z_i = E p_i + b, E: (D, C ph pw). Rows (1 x W) and strips (1 x P) are patches too.
    The same map is a Conv2d with kernel = stride = patch (`as_conv`)."""

    def __init__(self, in_channels: int, patch: tuple[int, int], dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(in_channels * patch[0] * patch[1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        ph, pw = self.patch
        x = x.reshape(B, C, H // ph, ph, W // pw, pw)
        x = x.permute(0, 2, 4, 1, 3, 5).reshape(B, (H // ph) * (W // pw), C * ph * pw)  # (B, N, C ph pw)
        return self.proj(x)  # (B, N, D)

    def as_conv(self) -> nn.Conv2d:
        D, _ = self.proj.weight.shape
        C = self.proj.in_features // (self.patch[0] * self.patch[1])
        conv = nn.Conv2d(C, D, self.patch, stride=self.patch)
        with torch.no_grad():
            conv.weight.copy_(self.proj.weight.reshape(D, C, *self.patch))
            conv.bias.copy_(self.proj.bias)
        return conv


class Attention(nn.Module):
    """Multi-head self-attention: head_h = softmax(Q_h K_h^T / sqrt(d_k)) V_h with
    Q = X W_q, K = X W_k, V = X W_v, then concat(heads) W_o.

    The training path calls F.scaled_dot_product_attention (fused kernels); the explicit path
    computes the softmax itself and returns the attention weights (B, heads, N, N)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads, self.d_k = heads, dim // heads
        self.W_qkv = nn.Linear(dim, 3 * dim)
        self.W_o = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        B, N, D = x.shape
        qkv = self.W_qkv(x).reshape(B, N, 3, self.heads, self.d_k).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, heads, N, d_k)
        p = self.dropout if self.training else 0.0
        if need_weights:
            attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_k), dim=-1)  # (B, h, N, N)
            out = F.dropout(attn, p) @ v
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        out = out.transpose(1, 2).reshape(B, N, D)  # concat heads: (B, N, D)
        return self.W_o(out), attn


class FeedForward(nn.Sequential):
    """Position-wise MLP: Linear(D, r D) -> GELU -> Linear(r D, D)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class Block(nn.Module):
    """Pre-norm transformer block: x = x + Attn(LN(x)); x = x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = FeedForward(dim, mlp_hidden, dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        a, weights = self.attn(self.norm1(x), need_weights)
        x = x + a
        return x + self.mlp(self.norm2(x)), weights
