"""The one training loop. A task supplies the model, the named loss terms of a batch and its
metrics; the loop owns the device, precision, gradient accumulation, clipping, the learning-rate
schedule, the moving average of the weights, evaluation, checkpoints, early stopping, step and
time budgets, resuming and the stop on a NaN loss.

The task is duck-typed (`nnlab.tasks.base.Task` is the full interface):
    loss(model, batch) -> StepOutput          named loss terms ("loss" is minimised), predictions
    metrics() -> torchmetrics.MetricCollection
    collate_fn (attribute, optional)          how samples become a batch (variable-length targets)
    sample_labels(dataset) (optional)         class of every sample, for --sampler balanced
    eval_batch_size(dataset) (optional)       a smaller batch to evaluate (items much larger than
                                              the training batches': whole EEG segments, cropped
                                              in training)
    on_epoch_end(trainer, epoch) (optional)   extra figures of the epoch: samples, FID, alarms

Exact resume: the order of the training data and every random draw of epoch e come from seeds
derived from (seed, e); a checkpoint taken inside an epoch also holds the generator states, the
position in the epoch and the running sums, so a resumed run replays the rest exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torchmetrics
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.utils.data import DataLoader, Dataset

from nnlab.errors import NNLabError
from nnlab.run import RunDir
from nnlab.train.checkpoint import (
    load_checkpoint,
    load_optimizer,
    load_weights,
    module_tensors,
    save_checkpoint,
)
from nnlab.train.config import TrainConfig
from nnlab.train.core import (
    Bookkeeper,
    check_validation,
    diverged,
    lr_factor,
    prefixed,
    read_checkpoint,
)
from nnlab.train.distributed import (
    all_reduce_max,
    all_reduce_sum,
    barrier,
    is_distributed,
    local_device,
    rank,
    world_size,
)
from nnlab.train.ema import EMA


@dataclass
class StepOutput:
    losses: dict[str, torch.Tensor]  # "loss" (minimised) and its named terms; scalar batch means
    preds: torch.Tensor | None = None  # what the metrics consume: logits, mask logits, ...
    target: torch.Tensor | None = None

    @property
    def loss(self) -> torch.Tensor:
        return self.losses["loss"]


class RunningLosses:
    """The epoch's sums of the loss terms, kept where the losses are and read back to the host
    every `every` steps. A read waits for the device: on a GPU one read per step stops the host
    from queuing the next step's kernels while the GPU still runs this one's, and a small
    model's step is then host time plus GPU time instead of the larger of the two (on an H100
    the diffusion U-Net at batch 512 is GPU-bound: there the difference was within the card's
    drift, docs/RESULTS.md). On the CPU there is nothing to wait for (every = 1). A non-finite
    loss is seen at the next read, which names the step it came from; nothing is written between
    reads (the loop reads before every checkpoint), so a NaN never reaches a file."""

    def __init__(self, every: int, sums: dict[str, float], count: int):
        self.every, self.sums, self.count = every, dict(sums), count
        self._pending: list[tuple[int, int, torch.Tensor]] = []
        self._keys: list[str] | None = None

    def add(self, losses: dict[str, torch.Tensor], n: int, step: int) -> tuple[int, float] | None:
        """Record one step's terms (batch means) for `n` samples; reads back when `every` steps
        are pending. Returns (step, loss) of the first non-finite loss read, else None."""
        if list(losses) != self._keys:  # a task whose terms change: read the others first
            bad = self.read()
            self._keys = list(losses)
            if bad is not None:
                return bad
        values = torch.stack([losses[k].detach().float() for k in self._keys])
        self._pending.append((step, n, values))
        return self.read() if len(self._pending) >= self.every else None

    def read(self) -> tuple[int, float] | None:
        if not self._pending:
            return None
        rows = torch.stack([v for _, _, v in self._pending]).tolist()  # the one wait
        loss_at = self._keys.index("loss")
        for (step, n, _), row in zip(self._pending, rows):
            if not math.isfinite(row[loss_at]):
                self._pending = []
                return step, row[loss_at]
            for k, v in zip(self._keys, row):
                self.sums[k] = self.sums.get(k, 0.0) + v * n
            self.count += n
        self._pending = []
        return None

    @property
    def mean_loss(self) -> float:
        return self.sums.get("loss", 0.0) / max(self.count, 1)


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


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # no weight decay on biases and norm parameters (1-D tensors)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Tensors anywhere in a (nested) tuple, list or dict moved to `device` (4-D ones in NHWC
    layout with `channels_last`); the rest as is."""
    if torch.is_tensor(batch):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def batch_len(batch: Any) -> int:
    """Samples in a batch: the length of its first tensor (or of its first sequence)."""
    if torch.is_tensor(batch):
        return len(batch)
    if isinstance(batch, dict):
        return batch_len(next(iter(batch.values())))
    if (
        isinstance(batch, (tuple, list))
        and batch
        and isinstance(batch[0], (torch.Tensor, tuple, list, dict))
    ):
        return batch_len(batch[0])
    return len(batch)


class Trainer:
    """Runs `task` on `model` under `cfg`. `run` (optional) receives metrics and checkpoints;
    `model_meta` ({"name", "config"}) goes into every checkpoint so it rebuilds the model alone."""

    def __init__(
        self,
        model: nn.Module,
        task,
        cfg: TrainConfig,
        run: RunDir | None = None,
        console: Console | None = None,
        model_meta: dict[str, Any] | None = None,
    ):
        cfg.validate()
        self.task, self.cfg, self.model_meta = task, cfg, model_meta or {}
        self.device = local_device() or resolve_device(cfg.device)
        self.module = model.to(self.device)  # the bare model; self.model may wrap it in DDP
        if cfg.channels_last:
            self.module.to(memory_format=torch.channels_last)
        self.distributed = is_distributed()
        self.is_main = rank() == 0
        self.run_dir = run  # every rank reads it; only rank 0 writes
        self.run = run if self.is_main else None
        self.console = console if self.is_main else None
        self.model = self.module
        if self.distributed:  # gradients averaged over ranks
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.optimizer = make_optimizer(self.module, cfg)
        self.ema = EMA(self.module, cfg.ema) if cfg.ema else None
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.books = Bookkeeper(
            cfg.monitor, cfg.mode, cfg.patience, cfg.epochs, self.run, self.console
        )
        self.start_epoch, self.step = 1, 0  # step: optimizer steps taken
        self.stopped: str | None = None  # why fit ended early: a step or time budget
        # steps between reads of the losses (RunningLosses): no wait on the CPU, one per 25
        # steps on a GPU (a NaN loss is then reported up to 24 steps after it happened)
        self.read_every = 1 if self.device.type == "cpu" else 25
        self._partial: dict[str, Any] | None = None  # an unfinished epoch to continue

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.books.history

    @property
    def best_epoch(self) -> int:
        return self.books.best_epoch

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def _amp_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if self.device.type != "cuda":
            # CPU: fp32 unless bf16 is asked for. bf16 autocast pays where the CPU multiplies in
            # bf16 (AMX, AVX512-BF16): the diffusion U-Net's step 1.6-2x faster on this machine's
            # Xeon; elsewhere it can be slower than fp32. fp16 has no fast CPU path: fp32.
            return torch.bfloat16 if p == "bf16" else None
        if p == "fp32":
            return None
        if p == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if p == "bf16" else torch.float16

    def _autocast(self):
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    # ---- data ----------------------------------------------------------------------------------
    def order(
        self,
        n: int,
        epoch: int,
        train: bool,
        weights: torch.Tensor | None = None,
        shard: bool = True,
    ) -> list[int]:
        """The sample indices this process visits in `epoch`: shuffled per (seed, epoch) for
        training (or drawn by class weights), in order for evaluation; under DDP every rank takes
        its shard of the list padded to a multiple of the world size (as DistributedSampler)."""
        if train:
            # The orders of DistributedSampler under DDP and of a shuffling DataLoader otherwise
            # (which draws its workers' base seed from the generator first): earlier runs reproduce.
            g = torch.Generator().manual_seed(
                self.cfg.seed + epoch if self.distributed else self.cfg.seed * 100_003 + epoch
            )
            if not self.distributed:
                torch.empty((), dtype=torch.int64).random_(generator=g)
            idx = (
                torch.multinomial(weights, n, True, generator=g)
                if weights is not None
                else torch.randperm(n, generator=g)
            ).tolist()
        else:
            idx = list(range(n))
        if self.distributed and shard and n:
            world = world_size()
            total = math.ceil(n / world) * world
            idx = (idx * math.ceil(total / n))[:total][rank() : total : world]
        return idx

    def loader(
        self, data: Dataset, indices: list[int], epoch: int = 0, batch_size: int = 0
    ) -> DataLoader:
        bs = batch_size or self.cfg.batch_size
        batches = [indices[i : i + bs] for i in range(0, len(indices), bs)]
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)  # worker seeds
        return DataLoader(
            data,
            batch_sampler=batches,
            collate_fn=getattr(self.task, "collate_fn", None),
            num_workers=self.cfg.num_workers,
            generator=g,
            pin_memory=self.device.type == "cuda",
        )

    def _sample_weights(self, data: Dataset) -> torch.Tensor | None:
        if self.cfg.sampler != "balanced":
            return None
        if not hasattr(self.task, "sample_labels"):
            raise NNLabError("--sampler balanced needs a task with classes; use --sampler shuffle")
        labels = torch.as_tensor(self.task.sample_labels(data), dtype=torch.long)
        return 1.0 / torch.bincount(labels)[labels].double()  # each class in total weight 1

    # ---- checkpoints ---------------------------------------------------------------------------
    def _state(self, epoch: int, batch: int = 0) -> dict[str, Any]:
        return {"epoch": epoch, "batch": batch, "step": self.step, **self.books.state()}

    def _save_last(self, epoch: int, partial: dict[str, Any] | None = None) -> None:
        """last.safetensors after `epoch`, or inside it (`partial`: position, sums, states)."""
        if self.run is None:
            return
        tensors = module_tensors(self.ema.module, "ema.") if self.ema is not None else {}
        meta: dict[str, Any] = {"model": self.model_meta}
        if self.scaler.is_enabled():
            meta["scaler"] = self.scaler.state_dict()
        if partial is None:
            state = self._state(epoch)
        else:
            state = {
                **self._state(epoch - 1, partial["batch"]),
                "partial": {k: partial[k] for k in ("sums", "count", "elapsed", "lr")},
            }
            tensors.update({f"metric.{k}": v for k, v in partial["metrics"].items()})
            tensors.update({f"rng.{k}": v for k, v in partial["rng"].items()})
        save_checkpoint(
            self.run.checkpoint_dir / "last.safetensors",
            self.module,
            self.optimizer,
            state,
            tensors,
            meta,
        )

    def _save_best(self, epoch: int) -> None:
        if self.run is None:
            return
        weights = self.ema.module if self.ema is not None else self.module  # what was evaluated
        save_checkpoint(
            self.run.checkpoint_dir / "best.safetensors",
            weights,
            None,
            self._state(epoch),
            meta={"model": self.model_meta, "weights": "ema" if self.ema else "model"},
        )

    def resume(self) -> int:
        """Load the run's last checkpoint; return the number of finished epochs (0 if none)."""
        path = self.run_dir.checkpoint_dir / "last.safetensors"
        if not path.exists():  # stopped before its first checkpoint: it starts again
            if rank() == 0:
                self.run_dir.keep_metrics(0)
            return 0
        tensors, meta = read_checkpoint(path, "pt")  # every rank loads the same
        load_weights(self.module, prefixed(tensors, "model."), path)
        load_optimizer(self.optimizer, tensors, meta, path)
        if self.ema is not None:
            ema = prefixed(tensors, "ema.")
            load_weights(self.ema.module, ema or prefixed(tensors, "model."), path)
        if meta.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(meta["scaler"])
        state = meta["state"]
        self.start_epoch, self.step = state["epoch"] + 1, state.get("step", -1)
        self.books.restore(state, self.run_dir)
        if state.get("batch"):
            self._partial = {
                **state["partial"],
                "epoch": state["epoch"] + 1,
                "batch": state["batch"],
                "metrics": prefixed(tensors, "metric."),
                "rng": prefixed(tensors, "rng."),
            }
        return state["epoch"]

    def load_best(self) -> None:
        """The best checkpoint's weights into the model (and the average: both evaluate them)."""
        path = self.run_dir.checkpoint_dir / "best.safetensors"
        load_checkpoint(path, self.module)
        if self.ema is not None:
            load_checkpoint(path, self.ema.module)

    # ---- the loop --------------------------------------------------------------------------------
    def fit(self, train_data: Dataset, val_data: Dataset | None = None) -> list[dict[str, Any]]:
        cfg = self.cfg
        self._check_monitor()
        weights = self._sample_weights(train_data)
        n_batches = math.ceil(len(self.order(len(train_data), 1, False)) / cfg.batch_size)
        steps_per_epoch = math.ceil(n_batches / cfg.accumulate)
        if self.step < 0:  # a checkpoint from before steps were counted
            self.step = (self.start_epoch - 1) * steps_per_epoch
        total = cfg.epochs * steps_per_epoch
        total = min(total, cfg.max_steps) if cfg.max_steps else total
        warmup = int(cfg.warmup_epochs * steps_per_epoch)
        if cfg.lr_schedule == "onecycle" and not warmup:
            warmup = int(0.3 * total)
        self._schedule = (total, warmup)
        self._t0 = time.perf_counter()
        self.stopped = self._limit_reached(budget=False)  # a resumed run may have no steps left
        with self._progress() as progress:
            for epoch in range(self.start_epoch, cfg.epochs + 1):
                if self.stopped:
                    break
                record, partial = self._train_epoch(epoch, train_data, weights, n_batches, progress)
                if val_data is not None:
                    record.update({f"val/{k}": v for k, v in self.evaluate(val_data).items()})
                    lr = self.optimizer.param_groups[0]["lr"]
                    check_validation(record, self.cfg.monitor, epoch, lr, self.run)
                hook = getattr(self.task, "on_epoch_end", None)
                if hook is not None:
                    record.update(hook(self, epoch) or {})
                is_best = self.books.end_epoch(record)
                if is_best:  # best first: a stop between the two redoes this epoch on resume
                    self._save_best(epoch)
                self._save_last(epoch, partial)
                self.books.line(record, is_best)
                if self.books.should_stop(epoch):
                    break
        if self.stopped:
            self.books.say(f"stopped: {self.stopped} at step {self.step}")
        barrier()  # rank 0's last checkpoint is on disk before any rank reads it
        return self.history

    def _check_monitor(self) -> None:
        """A metric that says which way is better must agree with --mode."""
        name = self.cfg.monitor.split("/", 1)[1]
        higher = metric_directions(self.task.metrics()).get(name)
        if higher is not None and higher != (self.cfg.mode == "max"):
            raise NNLabError(
                f"{self.cfg.monitor} is better when {'higher' if higher else 'lower'}: "
                f"use --mode {'max' if higher else 'min'}"
            )

    def _limit_reached(self, budget: bool = True) -> str | None:
        cfg = self.cfg
        if cfg.max_steps and self.step >= cfg.max_steps:
            return f"{cfg.max_steps} optimizer steps done (--max-steps)"
        if cfg.budget_min and budget:
            over = time.perf_counter() - self._t0 >= 60 * cfg.budget_min
            if self.distributed:  # every rank must stop at the same step
                over = all_reduce_max(float(over), self.device) > 0
            if over:
                return f"time budget of {cfg.budget_min:g} min used (--budget-min)"
        return None

    def _optimizer_step(self) -> None:
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.module, self.step)

    def _train_epoch(self, epoch, data, weights, n_batches, progress):
        cfg, model, acc = self.cfg, self.model, self.cfg.accumulate
        total, warmup = self._schedule
        model.train()
        metrics = self.task.metrics().to(self.device)
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout, augmentation etc. of this epoch
        sums: dict[str, float] = {}
        count, elapsed, skip, lr = 0, 0.0, 0, cfg.lr
        p, self._partial = self._partial, None
        if p is not None and p["epoch"] == epoch:  # continue inside the epoch
            skip, sums, count, elapsed, lr = (
                p["batch"],
                dict(p["sums"]),
                p["count"],
                p["elapsed"],
                p["lr"],
            )
            for key, value in p["metrics"].items():
                name, attr = key.split(".", 1)
                setattr(metrics[name], attr, value.to(self.device))
            torch.set_rng_state(p["rng"]["cpu"])
            if "cuda" in p["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(p["rng"]["cuda"], self.device)
        indices = self.order(len(data), epoch, True, weights)[skip * cfg.batch_size :]
        bar = (
            progress.add_task(
                f"epoch {epoch}/{cfg.epochs}",
                total=n_batches,
                completed=skip,
                loss=sums.get("loss", 0.0) / max(count, 1),
            )
            if progress
            else None
        )
        t0, partial, has_preds = time.perf_counter(), None, False
        running = RunningLosses(self.read_every, sums, count)

        def read(bad: tuple[int, float] | None) -> None:
            if bad is not None:
                raise diverged(bad[1], epoch, f"step {bad[0]}", lr, self.run)

        for i, batch in enumerate(self.loader(data, indices, epoch), start=skip):
            group_end = (i + 1) % acc == 0 or i == n_batches - 1
            group_size = min(acc, n_batches - (i - i % acc))
            if i % acc == 0:
                lr = cfg.lr * lr_factor(self.step, total, warmup, cfg.lr_schedule)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            batch = to_device(batch, self.device, self.cfg.channels_last)
            sync = (
                model.no_sync() if self.distributed and not group_end else contextlib.nullcontext()
            )
            with sync:
                with self._autocast():
                    out = self.task.loss(model, batch)
                read(running.add(out.losses, batch_len(batch), i + 1))
                self.scaler.scale(out.loss / group_size if group_size > 1 else out.loss).backward()
            if group_end:
                self._optimizer_step()
            if out.preds is not None:
                has_preds = True
                metrics.update(out.preds.detach().float(), out.target)
            if progress:
                progress.update(bar, advance=1, loss=running.mean_loss)
            if not group_end:
                continue
            self.stopped = self._limit_reached()
            every = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
            if (self.stopped or every) and i < n_batches - 1:
                read(running.read())
                partial = self._snapshot(
                    i + 1,
                    running.sums,
                    running.count,
                    elapsed + time.perf_counter() - t0,
                    lr,
                    metrics,
                )
                if not self.stopped:
                    self._save_last(epoch, partial)
                    partial = None
            if self.stopped:
                break
        read(running.read())
        sums, count = running.sums, running.count
        if progress:
            progress.remove_task(bar)
        keys = sorted(sums, key=lambda k: k != "loss")  # the total first, then its terms
        reduced = all_reduce_sum([sums[k] for k in keys] + [count], self.device)
        record = {
            "epoch": epoch,
            **{f"train/{k}": reduced[j] / reduced[-1] for j, k in enumerate(keys)},
            "lr": lr,
            "step": self.step,
            "time/epoch_s": elapsed + time.perf_counter() - t0,
        }
        if has_preds or (p is not None and p["metrics"]):
            record.update({f"train/{k}": float(v) for k, v in metrics.compute().items()})
        return record, partial

    def _snapshot(self, batch, sums, count, elapsed, lr, metrics) -> dict[str, Any]:
        """Everything needed to continue an epoch after `batch` batches. Under DDP the running
        sums and metric states are rank 0's: the train figures of an epoch resumed inside are then
        those of rank 0's shard for its first part (the weights continue exactly)."""
        states = {
            f"{name}.{attr}": value.detach().cpu().clone()
            for name, m in metrics.items()
            for attr, value in m.metric_state.items()
            if torch.is_tensor(value)
        }
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "batch": batch,
            "sums": dict(sums),
            "count": count,
            "elapsed": elapsed,
            "lr": lr,
            "metrics": states,
            "rng": rng,
        }

    @torch.no_grad()
    def evaluate(self, data: Dataset, shard: bool = True) -> dict[str, float]:
        """Mean loss terms and the task's metrics over `data`, model (or its average) in eval
        mode. Under DDP every rank evaluates its shard and the figures are combined (shard=False:
        this rank alone, all data; the shards are padded by repeating up to world - 1 samples)."""
        model = self.eval_model
        was_training = model.training
        model.eval()
        metrics = self.task.metrics().to(self.device)
        if not (self.distributed and shard):
            for m in metrics.values():
                m.sync_on_compute = False
        sums: dict[str, float] = {}
        count, has_preds = 0, False
        size = self.task.eval_batch_size(data) if hasattr(self.task, "eval_batch_size") else 0
        for batch in self.loader(data, self.order(len(data), 0, False, shard=shard), 0, size):
            batch = to_device(batch, self.device, self.cfg.channels_last)
            with self._autocast():
                out = self.task.loss(model, batch)
            n = batch_len(batch)
            for k, v in out.losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            count += n
            if out.preds is not None:
                has_preds = True
                metrics.update(out.preds.float(), out.target)
        model.train(was_training)
        keys = sorted(sums, key=lambda k: k != "loss")
        values = [sums[k] for k in keys] + [count]
        if self.distributed and shard:
            values = all_reduce_sum(values, self.device)
        result = {k: values[j] / max(values[-1], 1) for j, k in enumerate(keys)}
        if has_preds:
            result.update({k: float(v) for k, v in metrics.compute().items()})
        return result

    # ---- display -------------------------------------------------------------------------------
    def _progress(self):
        if self.console is None:
            return contextlib.nullcontext()
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            console=self.console,
            transient=True,
        )


def predict(
    model: nn.Module, data: Dataset, batch_size: int = 256, device: torch.device | None = None
) -> torch.Tensor:
    """Concatenated model outputs (on CPU) for the first tensor of every batch of `data`."""
    device = device or next(model.parameters()).device
    model.eval()
    outs = []
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=batch_size):
            x = batch[0].to(device)
            outs.append(model(x).float().cpu())
    return torch.cat(outs)


def metric_directions(metrics: torchmetrics.MetricCollection) -> dict[str, bool | None]:
    """higher_is_better of every metric in a collection (None where the metric does not say)."""
    return {name: getattr(m, "higher_is_better", None) for name, m in metrics.items()}
