"""A line recogniser that needs no character segmentation: CNN encoder + sequence head + CTC
(the CRNN of Shi, Bai and Yao 2016, "An End-to-End Trainable Neural Network for Image-based
Sequence Recognition", with the CTC of Graves et al. 2006).

    x: (B, 1, H, W), a text line, ink bright, H fixed, W free
    F = CNN(x): (B, C, H / 2^p, W / 4)        4 conv stages; the first two pool 2x2, the others
                                              pool the height only (2x1), so each feature column
                                              keeps the horizontal resolution of 4 pixels
    z_t = W_c vec(F[:, :, :, t]) + b_c        the height collapsed into one vector per column
    h = BiLSTM(z) or Transformer(z + PE)      context along the line, (B, T, D)
    y_t = softmax(W_o h_t): (B, T, K)         K = blank + the alphabet

The model only maps pixels to per-column class scores; CTC (`torch.nn.functional.ctc_loss`),
decoding and the alphabet live with the task (`nnlab.ocr.ctc`). Padding: a batch holds lines of
different widths padded on the right with background (0); `widths` says which columns are real:
the encoder zeroes the padding after every stage (so a conv at a line's end sees the zeros it
would see alone) and the head skips it (packed LSTM sequences, or the transformer's key-padding
mask), so in eval mode a line's output does not depend on the batch it is in.
T = `output_lengths(W)` = floor(floor(W / 2) / 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnlab.models.layers import Block, conv_bn_act, sinusoidal_embedding


@dataclass
class CTCLineConfig:
    height: int = 32  # line height in pixels (lines are resized to it)
    in_channels: int = 1
    num_classes: int = 38  # blank + 36 characters + space
    channels: tuple[int, ...] = (16, 32, 64, 64)  # conv stages; 2x2 pool after the first two
    dim: int = 96  # the feature column's size after collapsing the height (and the head's width)
    # transformer: on 1 CPU thread a third faster per step than the BiLSTM of the same width, and
    # out of CTC's all-blank plateau sooner (tests/test_ocr_ctc.py)
    head: str = "transformer"  # transformer | lstm (bidirectional)
    layers: int = 2  # LSTM layers or transformer blocks
    heads: int = 4  # attention heads (transformer head only)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.head not in ("lstm", "transformer"):
            raise ValueError(f"head must be lstm or transformer, got '{self.head}'")
        if len(self.channels) < 2:
            raise ValueError("the encoder needs at least 2 conv stages (they set the 4x stride)")
        if self.feature_height < 1:
            raise ValueError(f"height {self.height} is too small for {len(self.channels)} stages")

    @property
    def feature_height(self) -> int:
        """Rows left after the encoder: every stage halves the height (flooring)."""
        h = self.height
        for _ in self.channels:
            h //= 2
        return h


class CTCLineRecognizer(nn.Module):
    def __init__(self, cfg: CTCLineConfig):
        super().__init__()
        self.cfg = cfg
        self.stages = nn.ModuleList()
        c = cfg.in_channels
        for i, width in enumerate(cfg.channels):
            pool = nn.MaxPool2d(2) if i < 2 else nn.MaxPool2d((2, 1))
            self.stages.append(nn.Sequential(conv_bn_act(c, width), pool))
            c = width
        self.collapse = nn.Linear(c * cfg.feature_height, cfg.dim)  # W_c
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.head == "lstm":
            self.rnn = nn.LSTM(
                cfg.dim,
                cfg.dim // 2,
                num_layers=cfg.layers,
                batch_first=True,
                bidirectional=True,
                dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            )
        else:
            self.blocks = nn.ModuleList(
                Block(cfg.dim, cfg.heads, 2 * cfg.dim, cfg.dropout) for _ in range(cfg.layers)
            )
            self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.num_classes)  # W_o

    @staticmethod
    def output_lengths(widths: torch.Tensor) -> torch.Tensor:
        """Feature columns T of lines `widths` pixels wide: two 2x pools, each flooring."""
        return torch.div(torch.div(widths, 2, rounding_mode="floor"), 2, rounding_mode="floor")

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, H, W) with H = cfg.height, background 0; widths: (B,) the real width of each
        line (default: all W) -> logits (B, T, K), T = output_lengths(W); the columns at or
        beyond output_lengths(widths[b]) of line b are padding (their logits are meaningless)."""
        B, _, H, W = x.shape
        if H != self.cfg.height:
            raise ValueError(f"the model reads lines {self.cfg.height} px high, got {H}")
        f = x
        w = widths
        for i, stage in enumerate(self.stages):
            f = stage(f)  # (B, C_i, H / 2^(i+1), W / 2^min(i+1, 2))
            if w is not None:
                # padding back to 0 after every stage, as the next conv's own zero padding is:
                # a line's features are then the same alone or in any batch
                w = torch.div(w, 2, rounding_mode="floor") if i < 2 else w
                real = torch.arange(f.shape[-1], device=f.device)[None, :] < w[:, None]  # (B, W_i)
                f = f * real[:, None, None, :]
        _, C, Hf, T = f.shape  # (B, C', H', T)
        z = f.permute(0, 3, 1, 2).reshape(B, T, C * Hf)  # (B, T, C' H'): one vector per column
        z = self.dropout(self.collapse(z))  # (B, T, D)
        lengths = None
        if widths is not None:
            lengths = self.output_lengths(widths).clamp(1, T)  # (B,)
        if self.cfg.head == "lstm":
            h = self._lstm(z, lengths)
        else:
            h = self._transformer(z, lengths)
        return self.out(self.dropout(h))  # (B, T, K)

    def _lstm(self, z: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None or bool((lengths == z.shape[1]).all()):
            return self.rnn(z)[0]  # (B, T, D)
        # packed: the backward direction starts at each line's own last column, not in the padding
        packed = nn.utils.rnn.pack_padded_sequence(
            z, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=z.shape[1])
        return h  # (B, T, D)

    def _transformer(self, z: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        B, T, D = z.shape
        pos = torch.arange(T, device=z.device)
        h = z + sinusoidal_embedding(pos, D).to(z.dtype)  # (B, T, D)
        keep = None
        if lengths is not None:
            keep = pos[None, :] < lengths[:, None]  # (B, T): the real columns
        for block in self.blocks:
            h, _ = block(h, key_padding=keep)
        return self.norm(h)  # (B, T, D)
