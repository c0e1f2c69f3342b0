"""Checkpoints as safetensors: one file holds model and optimizer tensors plus the training state
(JSON in the safetensors metadata), so a checkpoint is written -- atomically -- as one unit and can
never be half old, half new. A readable copy of the state goes to last.json beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import nn

from nnlab.errors import NNLabError
from nnlab.io import atomic_write_bytes, atomic_write_json


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model  # DistributedDataParallel


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
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict[str, Any]) -> None:
    """Write model (+ optimizer) tensors and `state` (JSON-able) to `path` atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous()
               for k, v in _unwrap(model).state_dict().items()}
    meta: dict[str, Any] = {"state": state}
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _flatten_optimizer(optimizer)
        tensors.update(opt_tensors)
    atomic_write_bytes(path, st_save(tensors, metadata={"nnlab": json.dumps(meta)}))
    atomic_write_json(path.with_suffix(".json"), state)


def load_checkpoint(path: Path, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Load into `model` / `optimizer` (when given) and return the saved training state."""
    if not path.is_file():
        raise NNLabError(f"{path}: checkpoint not found")
    try:
        with safe_open(path, framework="pt") as f:
            meta = json.loads(f.metadata()["nnlab"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise NNLabError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None
    if model is not None:
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            _unwrap(model).load_state_dict(weights)
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else "mismatch"
            raise NNLabError(f"{path}: weights do not fit the model ({first})") from None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise NNLabError(f"{path}: holds no optimizer state; cannot resume from it")
        opt = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        optimizer.load_state_dict(_unflatten_optimizer(opt, meta["optimizer"]))
    return meta["state"]
