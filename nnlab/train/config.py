"""The training options every PyTorch task shares. A plain dataclass (no torch import): the CLI
builds one option per field, with the field's comment as its help, and every run saves it."""

from __future__ import annotations

from dataclasses import dataclass

from nnlab.errors import NNLabError

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant", "onecycle")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SAMPLERS = ("shuffle", "balanced")


@dataclass
class TrainConfig:
    epochs: int = 10  # passes over the training data
    batch_size: int = 64  # samples per forward pass (per process under DDP)
    accumulate: int = 1  # micro-batches per optimizer step: effective batch = batch size x this
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 1e-4  # decoupled weight decay, not applied to biases and norms
    optimizer: str = "adamw"  # adamw | sgd
    momentum: float = 0.9  # SGD momentum (sgd only)
    lr_schedule: str = "cosine"  # after the warm-up: cosine | constant | onecycle (30% warm-up)
    warmup_epochs: float = 0.0  # linear learning-rate warm-up, in epochs
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    # auto (bf16 or fp16 autocast on CUDA, fp32 on CPU) | bf16 (on the CPU too) | fp16 | fp32
    precision: str = "auto"
    ema: float = 0.0  # decay of a moving average of the weights (e.g. 0.999), evaluated; 0 = off
    channels_last: bool = False  # NHWC memory layout for conv nets (tensor cores on CUDA)
    monitor: str = "val/loss"  # the logged figure that picks the best checkpoint and early stops
    mode: str = "min"  # min | max: whether a lower or a higher monitor value is better
    patience: int = 0  # early stopping: epochs without improvement of the monitor; 0 = off
    max_steps: int = 0  # stop after this many optimizer steps in all; 0 = no limit
    budget_min: float = 0.0  # stop cleanly after this many minutes of training here; 0 = none
    checkpoint_every: int = 0  # also checkpoint every N optimizer steps inside an epoch; 0 = off
    sampler: str = "shuffle"  # shuffle | balanced (every class drawn equally often)
    num_workers: int = 0  # data-loading worker processes (memory pinned on CUDA)
    seed: int = 0  # seeds the weights, the data order and every random draw of an epoch
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "accumulate"):
            if getattr(self, name) < 1:
                raise NNLabError(
                    f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}"
                )
        for name in ("max_steps", "checkpoint_every", "num_workers", "patience", "seed"):
            if getattr(self, name) < 0:
                raise NNLabError(
                    f"{name.replace('_', ' ')} must be >= 0, got {getattr(self, name)}"
                )
        for name in ("weight_decay", "warmup_epochs", "grad_clip", "budget_min", "momentum"):
            if not getattr(self, name) >= 0:
                raise NNLabError(
                    f"{name.replace('_', ' ')} must be >= 0, got {getattr(self, name)}"
                )
        if not 0 < self.lr < float("inf"):
            raise NNLabError(f"learning rate must be > 0 and finite, got {self.lr}")
        if not 0 <= self.ema < 1:
            raise NNLabError(f"ema decay must be in [0, 1), got {self.ema}")
        for name, allowed in (
            ("optimizer", OPTIMIZERS),
            ("lr_schedule", SCHEDULES),
            ("precision", PRECISIONS),
            ("sampler", SAMPLERS),
            ("mode", ("min", "max")),
        ):
            if getattr(self, name) not in allowed:
                raise NNLabError(
                    f"{name} must be {' or '.join(allowed)}, got '{getattr(self, name)}'"
                )
        if "/" not in self.monitor:
            raise NNLabError(
                f"monitor must name a logged figure such as val/loss, got '{self.monitor}'"
            )
