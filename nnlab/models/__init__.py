"""PyTorch models, one file each; a plain dict maps a name to (config class, model class)."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from nnlab.errors import NNLabError
from nnlab.models.cnn import CNN, CNNConfig
from nnlab.models.conv_autoencoder import ConvAutoencoder, ConvAutoencoderConfig
from nnlab.models.diffusion_unet import DiffusionUNet, DiffusionUNetConfig
from nnlab.models.eeg_transformer import EEGTransformer, EEGTransformerConfig
from nnlab.models.mlp import MLP, MLPConfig
from nnlab.models.ocr import CTCLineConfig, CTCLineRecognizer
from nnlab.models.segvit import SegmentViT, SegmentViTConfig
from nnlab.models.unet import UNet, UNetConfig
from nnlab.models.vit import ViT, ViTConfig

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "mlp": (MLPConfig, MLP),
    "cnn": (CNNConfig, CNN),
    "vit": (ViTConfig, ViT),
    "unet": (UNetConfig, UNet),  # dense output: a mask's logits per pixel
    "segvit": (SegmentViTConfig, SegmentViT),
    "diffusion_unet": (DiffusionUNetConfig, DiffusionUNet),  # eps / x0 / v prediction from (x_t, t)
    "conv_ae": (ConvAutoencoderConfig, ConvAutoencoder),  # image -> code -> image
    "eeg_transformer": (EEGTransformerConfig, EEGTransformer),  # (B, C, T, F) spectrogram -> logits
    "ctc_line": (CTCLineConfig, CTCLineRecognizer),  # (B, 1, H, W) line -> (B, W/4, K) logits
}


def model_config(name: str, **overrides: Any):
    """The config dataclass of model `name` with `overrides` applied (lists become tuples)."""
    if name not in MODELS:
        raise NNLabError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    cls = MODELS[name][0]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise NNLabError(
            f"model '{name}' has no option(s) {sorted(unknown)} (has {sorted(fields)})"
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def build_model(name: str, cfg) -> nn.Module:
    return MODELS[name][1](cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
