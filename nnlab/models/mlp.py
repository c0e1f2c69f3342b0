"""Multi-layer perceptron: flatten, then [Linear -> activation -> dropout] * L, then Linear."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@dataclass
class MLPConfig:
    in_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) of one input; any shape, it is flattened
    num_classes: int = 10
    hidden: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    dropout: float = 0.1


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        width = 1
        for d in cfg.in_shape:
            width *= d
        layers: list[nn.Module] = [nn.Flatten()]
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[cfg.activation](), nn.Dropout(cfg.dropout)]
            width = h
        layers.append(nn.Linear(width, cfg.num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, *in_shape) -> logits (B, num_classes)."""
        return self.net(x)
