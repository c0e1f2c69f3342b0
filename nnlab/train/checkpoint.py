"""PyTorch checkpoints in the shared format of `nnlab.train.core`: one safetensors file holds the
model and optimizer tensors (and whatever else the loop adds: averaged weights, generator states)
plus the training state and the model's description as JSON metadata, so a checkpoint is written --
atomically -- as one unit and can never be half old, half new."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnlab.errors import NNLabError
from nnlab.train.core import prefixed, read_checkpoint, write_checkpoint


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def module_tensors(model: nn.Module, prefix: str = "model.") -> dict[str, torch.Tensor]:
    return {
        f"{prefix}{k}": v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()
    }


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    tensors: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write model (+ optimizer) tensors, any further `tensors` and the JSON-able `state` and
    `meta` (e.g. {"model": {"name": ..., "config": ...}}) to `path` atomically."""
    all_tensors = module_tensors(model)
    meta = {**(meta or {}), "state": state}
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _flatten_optimizer(optimizer)
        all_tensors.update(opt_tensors)
    all_tensors.update(tensors or {})
    write_checkpoint(path, all_tensors, meta, "pt")


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    try:
        unwrap(model).load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise NNLabError(f"{path}: weights do not fit the model ({first})") from None


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict, path: Path) -> None:
    if "optimizer" not in meta:
        raise NNLabError(f"{path}: holds no optimizer state; cannot resume from it")
    optimizer.load_state_dict(_unflatten_optimizer(prefixed(tensors, "optim."), meta["optimizer"]))


def load_checkpoint(
    path: Path, model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Load into `model` / `optimizer` (when given) and return the saved training state."""
    tensors, meta = read_checkpoint(Path(path), "pt")
    if model is not None:
        load_weights(model, prefixed(tensors, "model."), path)
    if optimizer is not None:
        load_optimizer(optimizer, tensors, meta, path)
    return meta["state"]
