"""Three-tower transformer for EEG spectrograms (after Yan et al. 2022, Applied Sciences 12(9):4158,
whose towers follow the gated two-tower network of Liu et al. 2021, "Gated Transformer Networks").

The input is a log-power spectrogram per channel, x: (B, C, T, F) = channels x STFT frames x
frequency bins. It is read as up to three token sequences, one per tower:

    spatial   C tokens, token c = x[:, c, :, :] flattened  (T F features): the channels
    temporal  T tokens, token t = x[:, :, t, :] flattened  (C F features): the frames
    spectral  F tokens, token f = x[:, :, :, f] flattened  (C T features): the frequency bins

Tower i (an encoder of its own, the shared pre-norm `Block`s):

    z_i^0 = E_i s_i + P_i                      E_i: Linear(features -> D), P_i: position embedding
    z_i^l = Block(z_i^{l-1}),  l = 1..L
    h_i   = mean_n LN(z_i^L)_n                 (D,)  mean pooling over the tokens

The gate compares the pooled outputs of all towers and weights them (M towers):

    g     = softmax(W_g [h_1; ...; h_M] + b_g)     W_g: (M, M D), g in the simplex (M,)
    h     = sum_i g_i h_i                           (D,)
    y     = W_y h + b_y                             logits (K,)

Mean pooling rather than a class token: a spatial tower over a few channels (or a temporal
tower over a short segment) has only a handful of tokens, and a seizure's evidence is spread over
many frames and bins; the mean weighs every token equally and adds no token or parameter. The
gate reads the concatenation (not each h_i alone through a shared scorer), so the weight of one
tower can depend on what the others saw. The weighted outputs are summed (Liu et al. concatenate
them), so the head sees D numbers whatever the number of towers and g reads directly as the
share of each tower in the decision.

With one channel (Bonn) the spatial tower has a single token and nothing to attend over: choose
the towers with `towers` (e.g. ("temporal", "spectral"))."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnlab.models.layers import Block, sinusoidal_embedding

TOWERS = ("spatial", "temporal", "spectral")
POSITIONS = ("learned", "sinusoidal")


@dataclass
class EEGTransformerConfig:
    channels: int = 1  # C: EEG channels
    frames: int = 16  # T: STFT frames (time sub-windows)
    freqs: int = 32  # F: frequency bins
    towers: tuple[str, ...] = TOWERS  # which token sequences to read, a subset of TOWERS
    dim: int = 64
    depth: int = 2  # Blocks per tower
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    num_classes: int = 2
    position: str = "learned"  # learned | sinusoidal (fixed) position embedding per tower

    def tokens(self, tower: str) -> tuple[int, int]:
        """(number of tokens, features per token) of a tower."""
        C, T, F = self.channels, self.frames, self.freqs
        return {"spatial": (C, T * F), "temporal": (T, C * F), "spectral": (F, C * T)}[tower]


def tower_tokens(x: torch.Tensor, tower: str) -> torch.Tensor:
    """The token sequence of one tower, before its embedding. x: (B, C, T, F) ->
    spatial (B, C, T F), temporal (B, T, C F), spectral (B, F, C T)."""
    B, C, T, F = x.shape
    if tower == "spatial":
        return x.reshape(B, C, T * F)  # (B, C, T F)
    if tower == "temporal":
        return x.permute(0, 2, 1, 3).reshape(B, T, C * F)  # (B, T, C F)
    if tower == "spectral":
        return x.permute(0, 3, 1, 2).reshape(B, F, C * T)  # (B, F, C T)
    raise ValueError(f"unknown tower '{tower}' (known: {', '.join(TOWERS)})")


class Tower(nn.Module):
    """One encoder: token embedding E, position embedding P, `depth` Blocks, LayerNorm, mean."""

    def __init__(self, n_tokens: int, features: int, cfg: EEGTransformerConfig):
        super().__init__()
        self.embed = nn.Linear(features, cfg.dim)  # E
        if cfg.position == "learned":
            self.pos = nn.Parameter(torch.randn(1, n_tokens, cfg.dim) * 0.02)
        else:
            pe = sinusoidal_embedding(torch.arange(n_tokens), cfg.dim)[None]  # (1, N, D)
            self.register_buffer("pos", pe, persistent=False)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), cfg.dropout)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, s: torch.Tensor, need_weights: bool = False):
        """s: tokens (B, N, features) -> (pooled h (B, D), per-layer attention (B, heads, N, N)
        or None each)."""
        z = self.embed(s) + self.pos  # (B, N, D)
        maps = []
        for block in self.blocks:
            z, attn = block(z, need_weights=need_weights)
            maps.append(attn)
        return self.norm(z).mean(dim=1), maps  # (B, D)


class EEGTransformer(nn.Module):
    def __init__(self, cfg: EEGTransformerConfig):
        super().__init__()
        towers = tuple(cfg.towers)
        if not towers or len(set(towers)) != len(towers) or not set(towers) <= set(TOWERS):
            raise ValueError(f"towers must be distinct names from {TOWERS}, got {towers}")
        if cfg.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got '{cfg.position}'")
        if min(cfg.channels, cfg.frames, cfg.freqs) < 1:
            raise ValueError(
                f"channels, frames and freqs must be >= 1, got {cfg.channels}, {cfg.frames}, "
                f"{cfg.freqs}"
            )
        self.cfg = cfg
        self.towers = nn.ModuleDict({t: Tower(*cfg.tokens(t), cfg) for t in towers})
        M = len(towers)
        self.gate = nn.Linear(M * cfg.dim, M)  # W_g, b_g
        self.head = nn.Linear(cfg.dim, cfg.num_classes)  # W_y, b_y

    def forward(self, x: torch.Tensor, return_gates: bool = False, return_attention: bool = False):
        """x: (B, C, T, F) log power -> logits (B, K); with return_gates also the gate weights
        g (B, M) (towers in `cfg.towers` order, rows sum to 1); with return_attention also
        {tower: per-layer attention weights (B, heads, N, N)}. Extras follow the logits in that
        order: (logits, gates), (logits, attention) or (logits, gates, attention)."""
        B, C, T, F = x.shape
        expected = (self.cfg.channels, self.cfg.frames, self.cfg.freqs)
        if (C, T, F) != expected:
            raise ValueError(f"input (C, T, F) = {(C, T, F)}, the model was built for {expected}")
        pooled, attention = [], {}
        for name, tower in self.towers.items():
            h, maps = tower(tower_tokens(x, name), need_weights=return_attention)
            pooled.append(h)  # (B, D)
            attention[name] = maps
        h = torch.stack(pooled, dim=1)  # (B, M, D)
        g = torch.softmax(self.gate(h.reshape(B, -1)), dim=-1)  # (B, M)
        logits = self.head((g[:, :, None] * h).sum(dim=1))  # (B, K)
        out = (
            (logits,) + ((g,) if return_gates else ()) + ((attention,) if return_attention else ())
        )
        return out if len(out) > 1 else logits
