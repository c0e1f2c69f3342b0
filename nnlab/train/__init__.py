"""Training: the one PyTorch loop (`loop`), its checkpoints and DDP setup, the config every task
shares (`config`) and the bookkeeping both engines share (`core`, which the NumPy engine uses
without torch). Names are loaded on first use, so `import nnlab.train.core` never imports torch."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "nnlab.train.config",
    "TrainingDiverged": "nnlab.train.core",
    "StepOutput": "nnlab.train.loop",
    "Trainer": "nnlab.train.loop",
    "predict": "nnlab.train.loop",
    "resolve_device": "nnlab.train.loop",
    "load_checkpoint": "nnlab.train.checkpoint",
    "save_checkpoint": "nnlab.train.checkpoint",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nnlab.train' has no attribute '{name}'")


__all__ = sorted(_EXPORTS)
