"""The one training loop. A task supplies the model, the loss of a batch and its metrics; the loop
owns the device, precision, clipping, the learning-rate schedule, evaluation, checkpoints, early
stopping, resuming and the stop on a NaN loss.

Exact resume: the order of the training data and every random draw of epoch e come from seeds
derived from (seed, e), so a run resumed after epoch k replays epochs k+1.. exactly as an
uninterrupted run would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torchmetrics
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from nnlab.errors import NNLabError
from nnlab.run import RunDir
from nnlab.train.checkpoint import load_checkpoint, save_checkpoint
from nnlab.train.distributed import all_reduce_sum, barrier, is_distributed, local_device, rank


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # adamw | sgd
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # cosine | constant (after linear warm-up) | onecycle (30% warm-up)
    warmup_epochs: float = 0.0
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    precision: str = "auto"  # auto (bf16 on CUDA if supported, else fp16; fp32 on CPU) | bf16 | fp16 | fp32
    patience: int = 0  # early stopping: epochs without improvement of `monitor`; 0 = off
    monitor: str = "val/loss"  # metric for best checkpoint and early stopping ('loss' -> lower is better)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def validate(self) -> None:
        if self.epochs < 1:
            raise NNLabError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise NNLabError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise NNLabError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in ("adamw", "sgd"):
            raise NNLabError(f"optimizer must be adamw or sgd, got '{self.optimizer}'")
        if self.schedule not in ("cosine", "constant", "onecycle"):
            raise NNLabError(f"schedule must be cosine, constant or onecycle, got '{self.schedule}'")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise NNLabError(f"precision must be auto, bf16, fp16 or fp32, got '{self.precision}'")


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, mean over the batch
    preds: torch.Tensor | None = None  # what the metrics consume: logits, mask logits, ...
    target: torch.Tensor | None = None


class Task(Protocol):
    def step(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> StepOutput: ...

    def metrics(self) -> torchmetrics.MetricCollection: ...


class TrainingDiverged(NNLabError):
    pass


def diverged(loss: float, epoch: int, where: str, lr: float, run: RunDir | None) -> TrainingDiverged:
    """The error for a non-finite loss; the checkpoint of the last finished epoch stays as it was."""
    kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept in {run.checkpoint_dir}"
            if run is not None and epoch > 1 else "no checkpoint")
    return TrainingDiverged(f"loss became {loss} at epoch {epoch}, {where} (lr {lr:.3g}); training "
                            f"stopped, {kept}. Try a smaller --lr.")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NNLabError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NNLabError("--device cuda asked for, but no CUDA device is available")
    return device


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Linear warm-up over `warmup` steps, then constant or cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # no weight decay on biases and norm parameters (1-D tensors)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _to(batch, device: torch.device):
    return tuple(t.to(device, non_blocking=True) for t in batch)


@dataclass
class Trainer:
    """Runs `task` on `model`. `run` (optional) receives metrics, checkpoints and config."""

    model: nn.Module
    task: Task
    cfg: TrainConfig
    run: RunDir | None = None
    console: Console | None = None  # None: silent
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self):
        self.cfg.validate()
        self.device = local_device() or resolve_device(self.cfg.device)
        self.model.to(self.device)
        self.distributed = is_distributed()
        if self.distributed:  # gradients averaged over ranks; rank 0 alone writes
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            self.run_dir, self.run = self.run, (self.run if rank() == 0 else None)
            if rank() != 0:
                self.console = None
        else:
            self.run_dir = self.run
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.start_epoch = 1
        self.best: float | None = None
        self.best_epoch = 0

    def _amp_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if self.device.type != "cuda" or p == "fp32":
            return None  # CPU: full precision (bf16 autocast on CPU is slower than fp32 here)
        if p == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if p == "bf16" else torch.float16

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    # ---- data ----------------------------------------------------------------------------------
    def loader(self, data: Dataset, train: bool, epoch: int = 0, shard: bool = True) -> DataLoader:
        """Shuffled per (seed, epoch) for training; under DDP each rank gets its shard."""
        if self.distributed and shard:
            sampler = DistributedSampler(data, shuffle=train, seed=self.cfg.seed, drop_last=False)
            sampler.set_epoch(epoch)
            return DataLoader(data, batch_size=self.cfg.batch_size, sampler=sampler,
                              pin_memory=self.device.type == "cuda")
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        return DataLoader(data, batch_size=self.cfg.batch_size, shuffle=train, generator=g,
                          drop_last=False, pin_memory=self.device.type == "cuda")

    # ---- checkpoints ---------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "best": self.best, "best_epoch": self.best_epoch,
                "monitor": self.cfg.monitor}

    def resume(self) -> int:
        """Load the run's last checkpoint; return the epoch it holds (0 if none)."""
        path = self.run_dir.checkpoint_dir / "last.safetensors"
        if not path.exists():
            return 0
        state = load_checkpoint(path, self.model, self.optimizer)  # every rank loads the same
        self.start_epoch = state["epoch"] + 1
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        if self.run is not None:
            self.run.keep_metrics(state["epoch"])
        self.history = self.run_dir.metrics()[: state["epoch"]]
        return state["epoch"]

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if "loss" in self.cfg.monitor else value > self.best

    # ---- the loop --------------------------------------------------------------------------------
    def fit(self, train_data: Dataset, val_data: Dataset | None = None) -> list[dict[str, Any]]:
        cfg = self.cfg
        steps_per_epoch = len(self.loader(train_data, train=True))
        total_steps = cfg.epochs * steps_per_epoch
        warmup = int(cfg.warmup_epochs * steps_per_epoch)
        if cfg.schedule == "onecycle" and not warmup:
            warmup = int(0.3 * total_steps)
        base_lrs = [cfg.lr for _ in self.optimizer.param_groups]  # not the groups' lr: resumed
        with self._progress() as progress:
            for epoch in range(self.start_epoch, cfg.epochs + 1):
                torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout etc. of this epoch
                bar = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps_per_epoch,
                                        loss=float("nan")) if progress else None
                record = self._train_epoch(epoch, train_data, steps_per_epoch, total_steps, warmup,
                                           base_lrs, progress, bar)
                if val_data is not None:
                    record.update({f"val/{k}": v for k, v in self.evaluate(val_data).items()})
                self._end_epoch(epoch, record)
                if progress:
                    progress.remove_task(bar)
                if cfg.patience and epoch - self.best_epoch >= cfg.patience:
                    self._say(f"early stop: {cfg.monitor} did not improve for {cfg.patience} epochs")
                    break
        barrier()  # rank 0's last checkpoint is on disk before any rank reads it
        return self.history

    def _train_epoch(self, epoch, data, steps_per_epoch, total_steps, warmup, base_lrs,
                     progress, bar) -> dict[str, Any]:
        cfg, model = self.cfg, self.model
        model.train()
        metrics = self.task.metrics().to(self.device)
        t0 = time.perf_counter()
        loss_sum, count = 0.0, 0
        for i, batch in enumerate(self.loader(data, train=True, epoch=epoch)):
            step = (epoch - 1) * steps_per_epoch + i
            factor = lr_factor(step, total_steps, warmup, cfg.schedule)
            for group, base in zip(self.optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
            batch = _to(batch, self.device)
            with self._autocast():
                out = self.task.step(model, batch)
            if not torch.isfinite(out.loss):
                raise diverged(out.loss.item(), epoch, f"step {i + 1}", base_lrs[0] * factor, self.run)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.loss).backward()
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            n = len(batch[0])
            loss_sum += out.loss.item() * n
            count += n
            if out.preds is not None:
                metrics.update(out.preds.detach().float(), out.target)
            if progress:
                progress.update(bar, advance=1, loss=loss_sum / count)
        loss_sum, count = all_reduce_sum([loss_sum, count], self.device)
        record = {"epoch": epoch, "train/loss": loss_sum / count,
                  "lr": base_lrs[0] * factor, "time/epoch_s": time.perf_counter() - t0}
        if out.preds is not None:
            record.update({f"train/{k}": float(v) for k, v in metrics.compute().items()})
        return record

    @torch.no_grad()
    def evaluate(self, data: Dataset, shard: bool = True) -> dict[str, float]:
        """Mean loss and the task's metrics over `data`, model in eval mode. Under DDP every rank
        evaluates its shard and the figures are combined (shard=False: this rank alone, all data;
        the DistributedSampler pads a shard by repeating up to world - 1 samples)."""
        model = self.model
        was_training = model.training
        model.eval()
        metrics = self.task.metrics().to(self.device)
        if not (self.distributed and shard):
            for m in metrics.values():
                m.sync_on_compute = False
        loss_sum, count, has_preds = 0.0, 0, False
        for batch in self.loader(data, train=False, shard=shard):
            batch = _to(batch, self.device)
            with self._autocast():
                out = self.task.step(model, batch)
            n = len(batch[0])
            loss_sum += out.loss.item() * n
            count += n
            if out.preds is not None:
                has_preds = True
                metrics.update(out.preds.float(), out.target)
        model.train(was_training)
        if self.distributed and shard:
            loss_sum, count = all_reduce_sum([loss_sum, count], self.device)
        result = {"loss": loss_sum / max(count, 1)}
        if has_preds:
            result.update({k: float(v) for k, v in metrics.compute().items()})
        return result

    def _end_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        self.history.append(record)
        value = record.get(self.cfg.monitor)
        is_best = value is not None and self._improved(value)
        if is_best:
            self.best, self.best_epoch = value, epoch
        if self.run is not None:
            self.run.log(record)
            ckpt = self.run.checkpoint_dir
            save_checkpoint(ckpt / "last.safetensors", self.model, self.optimizer, self._state(epoch))
            if is_best:
                save_checkpoint(ckpt / "best.safetensors", self.model, None, self._state(epoch))
        self._say(epoch_line(record, self.cfg.epochs, is_best))

    # ---- display -------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)

    def _progress(self):
        if self.console is None:
            return _NoProgress()
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                        console=self.console, transient=True)


def epoch_line(record: dict[str, Any], epochs: int, is_best: bool) -> str:
    """'epoch  3/30  train loss 0.389 acc 0.870 | val loss 0.218 acc 0.956 | 0.04 s *'"""
    parts = [f"epoch {record['epoch']:>3}/{epochs}"]
    for split in ("train", "val"):
        items = [f"{k.split('/', 1)[1]} {v:.4f}" for k, v in record.items() if k.startswith(split + "/")]
        if items:
            parts.append(f"{split} " + " ".join(items))
    parts.append(f"{record['time/epoch_s']:.2f} s" + (" *" if is_best else ""))
    return " | ".join(parts)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def predict(model: nn.Module, data: Dataset, batch_size: int = 256,
            device: torch.device | None = None) -> torch.Tensor:
    """Concatenated model outputs (on CPU) for the first tensor of every batch of `data`."""
    device = device or next(model.parameters()).device
    model.eval()
    outs = []
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=batch_size):
            x = batch[0].to(device)
            outs.append(model(x).float().cpu())
    return torch.cat(outs)
