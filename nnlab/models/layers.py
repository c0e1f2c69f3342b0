"""Reusable blocks, shared by every model in nnlab, top to bottom:

- embeddings: image patches (Dosovitskiy et al. 2021), signal windows, and the sinusoidal
  position / time embedding (Vaswani et al. 2017, sec. 3.5; Ho et al. 2020);
- the transformer: multi-head self-attention written from the formula (with an optional mask),
  the position-wise MLP and the pre-norm block (Vaswani et al. 2017);
- convolutional blocks: conv-BN-activation, the U-Net's double conv, and the residual block of
  the DDPM U-Net (Ho et al. 2020)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

# ---- embeddings ---------------------------------------------------------------------------------


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
        x = x.permute(0, 2, 4, 1, 3, 5)  # (B, H/ph, W/pw, C, ph, pw)
        x = x.reshape(B, (H // ph) * (W // pw), C * ph * pw)  # (B, N, C ph pw)
        return self.proj(x)  # (B, N, D)

    def as_conv(self) -> nn.Conv2d:
        D, _ = self.proj.weight.shape
        C = self.proj.in_features // (self.patch[0] * self.patch[1])
        conv = nn.Conv2d(C, D, self.patch, stride=self.patch)
        with torch.no_grad():
            conv.weight.copy_(self.proj.weight.reshape(D, C, *self.patch))
            conv.bias.copy_(self.proj.bias)
        return conv


class PatchEmbed1d(nn.Module):
    """Cut a signal (B, C, T) into non-overlapping windows of P samples and project each flattened
    window: z_i = E p_i + b, E: (D, C P), giving (B, T / P, D). A window is flattened channel-major,
    (C, P), the layout of a Conv1d weight, so the same map is a Conv1d with kernel = stride = P
    (`as_conv`)."""

    def __init__(self, in_channels: int, patch: int, dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(in_channels * patch, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) with T divisible by the patch P -> tokens (B, T / P, D)."""
        B, C, T = x.shape
        P = self.patch
        if T % P:
            raise ValueError(f"signal length {T} is not divisible by the patch of {P} samples")
        x = x.reshape(B, C, T // P, P).transpose(1, 2)  # (B, N, C, P)
        x = x.reshape(B, T // P, C * P)  # (B, N, C P)
        return self.proj(x)  # (B, N, D)

    def as_conv(self) -> nn.Conv1d:
        D, _ = self.proj.weight.shape
        C = self.proj.in_features // self.patch
        conv = nn.Conv1d(C, D, self.patch, stride=self.patch)
        with torch.no_grad():
            conv.weight.copy_(self.proj.weight.reshape(D, C, self.patch))
            conv.bias.copy_(self.proj.bias)
        return conv


def sinusoidal_embedding(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The sinusoidal embedding of Vaswani et al. 2017, sec. 3.5 (DDPM's time embedding):

        PE(p, 2i) = sin(p / base^(2i / dim)),   PE(p, 2i + 1) = cos(p / base^(2i / dim))

    sin and cos interleaved. Each pair (2i, 2i + 1) turns at its own frequency
    omega_i = base^(-2i / dim), so PE(p + k) is a fixed rotation of PE(p) for every p.
    positions: (N,) integers or floats -> (N, dim), float in the positions' dtype (the default
    dtype for integers)."""
    if dim % 2:
        raise ValueError(f"the sinusoidal embedding needs an even dim (sin, cos pairs), got {dim}")
    if positions.dim() != 1:
        raise ValueError(f"positions must be 1-D (N,), got shape {tuple(positions.shape)}")
    dtype = positions.dtype if positions.is_floating_point() else torch.get_default_dtype()
    two_i = torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device)  # (dim/2,)
    # omega in float64: base^(-2i/dim) spans 4 decades for the default base
    omega = (base ** (-two_i / dim)).to(dtype)  # (dim/2,)
    angles = positions.to(dtype)[:, None] * omega[None, :]  # (N, dim/2)
    pe = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # (N, dim/2, 2)
    return pe.reshape(len(positions), dim)  # (N, dim): sin, cos, sin, cos, ...


class TimeEmbedding(nn.Module):
    """The diffusion timestep embedding of DDPM (Ho et al. 2020):
    e(t) = W_2 SiLU(W_1 PE(t) + b_1) + b_2, PE = `sinusoidal_embedding` of size `dim`."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: (B,) timesteps, integer or float -> (B, hidden)."""
        pe = sinusoidal_embedding(t, self.dim).to(self.mlp[0].weight.dtype)  # (B, dim)
        return self.mlp(pe)


# ---- transformer --------------------------------------------------------------------------------


def attention_mask(
    mask: torch.Tensor | None, key_padding: torch.Tensor | None, B: int, heads: int, N: int
) -> torch.Tensor | None:
    """The boolean masks (True = may attend) combined and broadcast to (B, heads, N, N) as a view:
    `mask` (N, N) or (B, N, N), query x key (causal, say); `key_padding` (B, N), which tokens
    exist (padded sequences of different lengths). Two arguments, not one mask of several shapes:
    (B, N) and (N, N) look alike when the batch happens to hold N sequences. A query row with no
    key to attend to would softmax to NaN, so it is an error."""
    masks = []
    for name, m, shapes in (
        ("mask", mask, ((N, N), (B, N, N))),
        ("key_padding", key_padding, ((B, N),)),
    ):
        if m is None:
            continue
        if m.dtype != torch.bool:
            raise ValueError(
                f"the attention {name} must be boolean (True = may attend), got {m.dtype}"
            )
        if tuple(m.shape) not in shapes:
            raise ValueError(
                f"attention {name} of shape {tuple(m.shape)} fits none of "
                f"{', '.join(map(str, shapes))}"
            )
        if name == "key_padding":
            masks.append(m[:, None, None, :])  # (B, 1, 1, N): the same keys for every query
        else:
            masks.append(m[None, None] if m.dim() == 2 else m[:, None])  # (1|B, 1, N, N)
    if not masks:
        return None
    m = masks[0] if len(masks) == 1 else masks[0] & masks[1]
    m = m.expand(B, heads, N, N)
    if not m.any(-1).all():
        raise ValueError("the attention masks leave a query with no key to attend to")
    return m


class Attention(nn.Module):
    """Multi-head self-attention: head_h = softmax(Q_h K_h^T / sqrt(d_k) + M) V_h with
    Q = X W_q, K = X W_k, V = X W_v, then concat(heads) W_o. M = 0 where the boolean mask is
    True (may attend) and -inf where it is False; no mask means every token sees every token.

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

    def forward(
        self,
        x: torch.Tensor,
        need_weights: bool = False,
        mask: torch.Tensor | None = None,
        key_padding: torch.Tensor | None = None,
    ):
        """x: (B, N, D); mask: boolean (N, N) or (B, N, N); key_padding: boolean (B, N), see
        `attention_mask`. -> (out (B, N, D), weights (B, heads, N, N) or None unless
        need_weights)."""
        B, N, D = x.shape
        qkv = self.W_qkv(x).reshape(B, N, 3, self.heads, self.d_k)  # (B, N, 3, h, d_k)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, h, N, d_k)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, h, N, d_k)
        m = attention_mask(mask, key_padding, B, self.heads, N)  # (B, h, N, N) or None
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # (B, h, N, N)
            if m is not None:
                scores = scores.masked_fill(~m, float("-inf"))
            attn = torch.softmax(scores, dim=-1)  # (B, h, N, N)
            out = F.dropout(attn, p) @ v  # (B, h, N, d_k)
        else:
            attn = None
            if q.device.type == "cpu" and q.dtype == torch.bfloat16:
                # PyTorch's bf16 flash kernel for the CPU is slow backwards (71 ms against a few
                # for fp32 on the diffusion U-Net's 49 tokens): attend in fp32 there (autocast
                # would cast the inputs back to bf16).
                with torch.autocast("cpu", enabled=False):
                    out = F.scaled_dot_product_attention(
                        q.float(), k.float(), v.float(), attn_mask=m, dropout_p=p
                    ).to(q.dtype)
            else:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p)
        out = out.transpose(1, 2).reshape(B, N, D)  # concat heads: (B, N, D)
        return self.W_o(out), attn


class FeedForward(nn.Sequential):
    """Position-wise MLP: Linear(D, r D) -> GELU -> Linear(r D, D)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class Block(nn.Module):
    """Pre-norm transformer block: x = x + Attn(LN(x)); x = x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = FeedForward(dim, mlp_hidden, dropout)

    def forward(
        self,
        x: torch.Tensor,
        need_weights: bool = False,
        mask: torch.Tensor | None = None,
        key_padding: torch.Tensor | None = None,
    ):
        """x: (B, N, D) -> (B, N, D) and the attention weights (see `Attention.forward`)."""
        a, weights = self.attn(self.norm1(x), need_weights, mask, key_padding)
        x = x + a
        return x + self.mlp(self.norm2(x)), weights


# ---- convolutional blocks -----------------------------------------------------------------------


def conv_bn_act(
    c_in: int, c_out: int, k: int = 3, act: Callable[..., nn.Module] = nn.ReLU
) -> nn.Sequential:
    """Conv k x k ('same' padding) -> BatchNorm -> activation; children 0, 1, 2."""
    # in place saves one activation-sized buffer; GELU and others have no such option
    act_kwargs = {"inplace": True} if "inplace" in inspect.signature(act).parameters else {}
    # no conv bias: BatchNorm's shift makes it redundant
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(c_out),
        act(**act_kwargs),
    )


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """(conv 3x3 -> BN -> ReLU) x 2 of the U-Net, one flat Sequential with children 0..5."""
    return nn.Sequential(*conv_bn_act(c_in, c_out), *conv_bn_act(c_out, c_out))


def group_count(channels: int, groups: int = 8) -> int:
    """The largest number of GroupNorm groups <= min(groups, channels) that divides channels."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


class ResidualBlock(nn.Module):
    """The residual block of the DDPM U-Net (Ho et al. 2020; Nichol & Dhariwal 2021):

        h = conv3x3(SiLU(GN(x)))
        h = h + W_e SiLU(e) + b_e               (if emb_dim; e: the time embedding, one shift
                                                 per channel)
        y = conv3x3(dropout(SiLU(GN(h)))) + skip(x)

    skip = conv1x1 if c_in != c_out else the identity; GN = GroupNorm with
    `group_count(channels, groups)` groups."""

    def __init__(
        self, c_in: int, c_out: int, emb_dim: int = 0, groups: int = 8, dropout: float = 0.0
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(group_count(c_in, groups), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, c_out) if emb_dim else None  # W_e, b_e
        self.norm2 = nn.GroupNorm(group_count(c_out, groups), c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, c_in, H, W), emb: (B, emb_dim) or None -> (B, c_out, H, W)."""
        if (emb is None) != (self.emb_proj is None):
            raise ValueError("pass emb exactly when the block was built with emb_dim > 0")
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        if self.emb_proj is not None:
            h = h + self.emb_proj(F.silu(emb))[:, :, None, None]  # (B, c_out, 1, 1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)
