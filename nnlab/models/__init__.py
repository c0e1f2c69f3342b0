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
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    values = {k: _option_value(name, by_name[k], v) for k, v in overrides.items()}
    return cls(**values)


def _option_value(model: str, field: dataclasses.Field, value: Any) -> Any:
    """A -m value as its field wants it (judged by the field's default): a number alone for a
    tuple of widths is a tuple of one; a value of the wrong kind is a one-line error."""
    default = field.default
    if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(default, tuple) and isinstance(value, (int, float)) and default:
        value = (value,)
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), tuple: (tuple,)}
    want = kinds.get(type(default))
    wrong = want is not None and (
        not isinstance(value, want) or (isinstance(value, bool) and bool not in want)
    )
    if wrong:
        kind = type(default).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        raise NNLabError(
            f"model '{model}' option {field.name} takes {article} {kind} "
            f"(default {default!r}), got {value!r}"
        )
    if _counts(default) and not (_counts(value) and (isinstance(value, int) or value)):
        raise NNLabError(  # depths, widths, heads: a layer of 0 units is no layer
            f"model '{model}' option {field.name} counts layers or units: each must be a whole "
            f"number >= 1, got {value!r}"
        )
    return float(value) if isinstance(default, float) else value


def _counts(value: Any) -> bool:
    """Whether `value` is a positive count (an int >= 1) or a tuple of them."""
    if isinstance(value, tuple):
        return all(_counts(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def build_model(name: str, cfg) -> nn.Module:
    """The model `name` built from its config; a config it cannot be built from (a width that
    does not divide into heads, an unknown activation, a dropout of 1.5) is a one-line error."""
    try:
        return MODELS[name][1](cfg)
    except (ValueError, TypeError, KeyError, AssertionError, ZeroDivisionError) as e:
        what = f"{type(e).__name__}: {e}" if not isinstance(e, KeyError) else f"unknown {e}"
        raise NNLabError(f"model '{name}' cannot be built from its options ({what})") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
