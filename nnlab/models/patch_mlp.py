"""A patchwise MLP is a convnet in disguise.

`PatchMLP(k, widths)` applies one MLP to every valid k x k patch of the image (patches via
`unfold`). Written as layers: h_1 = act(W_1 p + b_1) for each flattened patch p (C k^2 values), then
h_l = act(W_l h_{l-1} + b_l). The first layer on all patches at once is exactly a k x k convolution
whose kernels are the rows of W_1 reshaped to (C, k, k) -- the same sum over the same pixels; each
later layer acts on one position's vector only, which is exactly a 1 x 1 convolution.
`to_convnet` performs that conversion; the outputs are equal up to float rounding."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nnlab.models.mlp import ACTIVATIONS


class PatchMLP(nn.Module):
    def __init__(self, in_channels: int, k: int, widths: tuple[int, ...], activation: str = "relu"):
        super().__init__()
        self.k, self.in_channels = k, in_channels
        sizes = [in_channels * k * k, *widths]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, widths[-1], H - k + 1, W - k + 1)."""
        B, C, H, W = x.shape
        OH, OW = H - self.k + 1, W - self.k + 1
        h = F.unfold(x, self.k).transpose(1, 2)  # (B, OH OW, C k k), channel-major like Conv2d
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.act(h)
        return h.transpose(1, 2).reshape(B, -1, OH, OW)  # (B, D, OH, OW)


def to_convnet(model: PatchMLP) -> nn.Sequential:
    """The equivalent network: Conv2d(k x k) then 1 x 1 Conv2d's, the activation in between."""
    modules: list[nn.Module] = []
    for i, layer in enumerate(model.layers):
        k = model.k if i == 0 else 1
        in_ch = model.in_channels if i == 0 else layer.in_features
        conv = nn.Conv2d(in_ch, layer.out_features, k)
        with torch.no_grad():
            conv.weight.copy_(layer.weight.reshape(layer.out_features, in_ch, k, k))
            conv.bias.copy_(layer.bias)
        modules.append(conv)
        if i < len(model.layers) - 1:
            modules.append(type(model.act)())
    return nn.Sequential(*modules)
