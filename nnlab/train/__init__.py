"""The one training loop shared by every PyTorch task, and its checkpoints."""

from nnlab.train.checkpoint import load_checkpoint, save_checkpoint
from nnlab.train.loop import (StepOutput, Task, TrainConfig, Trainer, TrainingDiverged, predict,
                              resolve_device)

__all__ = ["StepOutput", "Task", "TrainConfig", "Trainer", "TrainingDiverged", "load_checkpoint",
           "predict", "resolve_device", "save_checkpoint"]
