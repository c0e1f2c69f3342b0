"""The bookkeeping both training loops share -- the PyTorch `Trainer` and the NumPy engine's
`NumpyTrainer`: the learning-rate schedule, the history of epoch records, best/last selection with
an explicit direction, early stopping, the divergence error, the epoch line, and the checkpoint
file format. Imports neither torch nor NumPy: the NumPy engine must run without torch.

Checkpoint format (one safetensors file, written atomically, plus a readable JSON copy of its
state):

    tensors   model.*   the weights                 optim.*   optimizer state tensors
              ema.*     averaged weights            rng.*     random generator states
              metric.*  running metric states of an unfinished epoch
    metadata  "nnlab": JSON {"format": 1, "engine": "torch" | "numpy", "state": {epoch, batch,
              step, best, best_epoch, monitor, mode, ...}, "model": {"name", "config"},
              "optimizer": {...}, ...}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nnlab.errors import NNLabError
from nnlab.io import atomic_write_bytes, atomic_write_json
from nnlab.run import RunDir

CHECKPOINT_FORMAT = 1


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Linear warm-up over `warmup` steps, then constant or cosine decay to 0 at `total`:
    f(s) = (s + 1) / warmup for s < warmup,
    else 1/2 (1 + cos(pi (s - warmup) / (total - warmup)))."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class TrainingDiverged(NNLabError):
    pass


def diverged(
    loss: float, epoch: int, where: str, lr: float, run: RunDir | None
) -> TrainingDiverged:
    """The error for a non-finite loss; the checkpoint of the last finished epoch stays as
    it was."""
    kept = (
        f"the last good checkpoint (epoch {epoch - 1}) is kept in {run.checkpoint_dir}"
        if run is not None and epoch > 1
        else "no checkpoint"
    )
    return TrainingDiverged(
        f"loss became {loss} at epoch {epoch}, {where} (lr {lr:.3g}); training "
        f"stopped, {kept}. Try a smaller --lr."
    )


def check_validation(
    record: dict[str, Any], monitor: str, epoch: int, lr: float, run: RunDir | None
) -> None:
    """A validation loss or monitored figure that is NaN or infinite is a divergence too (the
    weights are finite but overflow): raised before the epoch's checkpoints are written, so the
    last good one stays."""
    for key in ("val/loss", monitor):
        value = record.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            raise diverged(value, epoch, f"{key} on the validation data", lr, run)


def epoch_line(record: dict[str, Any], epochs: int, is_best: bool) -> str:
    """'epoch  3/30 | train loss 0.3890 acc 0.8700 | val loss 0.2180 acc 0.9560 | 0.04 s *'"""
    parts = [f"epoch {record['epoch']:>3}/{epochs}"]
    for split in ("train", "val"):
        items = [
            f"{k.split('/', 1)[1]} {v:.4f}" for k, v in record.items() if k.startswith(split + "/")
        ]
        if items:
            parts.append(f"{split} " + " ".join(items))
    parts.append(f"{record['time/epoch_s']:.2f} s" + (" *" if is_best else ""))
    return " | ".join(parts)


class Bookkeeper:
    """History, best/last selection and early stopping for one run.

    The direction of the monitored figure is explicit (`mode`), never guessed from its name: a
    character error rate and a false-alarm rate are minimised, a Dice score maximised. A run without
    validation figures at all keeps its latest epoch as the best one. `run` is None on the
    processes that do not write (DDP ranks > 0, runs without a directory)."""

    def __init__(
        self,
        monitor: str,
        mode: str,
        patience: int = 0,
        epochs: int = 0,
        run: RunDir | None = None,
        console=None,
    ):
        if mode not in ("min", "max"):
            raise NNLabError(f"mode must be min or max, got '{mode}'")
        self.monitor, self.mode, self.patience, self.epochs = monitor, mode, patience, epochs
        self.run, self.console = run, console
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.best_epoch = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def end_epoch(self, record: dict[str, Any]) -> bool:
        """Append `record`, log it, update the best; returns whether this epoch is the best."""
        value = record.get(self.monitor)
        if value is None and any(k.startswith("val/") for k in record):
            logged = ", ".join(k for k in record if "/" in k and not k.startswith("time/"))
            raise NNLabError(f"monitor '{self.monitor}' is not a logged figure (logged: {logged})")
        is_best = value is None or (math.isfinite(value) and self.improved(value))
        if is_best:
            self.best, self.best_epoch = value, record["epoch"]
        self.history.append(record)
        if self.run is not None:
            self.run.log(record)
        return is_best

    def should_stop(self, epoch: int) -> bool:
        if self.patience and epoch - self.best_epoch >= self.patience:
            self.say(f"early stop: {self.monitor} did not improve for {self.patience} epochs")
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "mode": self.mode,
        }

    def restore(self, state: dict[str, Any], run: RunDir) -> None:
        """Take back best/best epoch from a checkpoint's state and the history of the epochs it
        completed; the metrics of later (redone) epochs are dropped from the run's log."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        if self.run is not None:
            self.run.keep_metrics(state["epoch"])
        self.history = [r for r in run.metrics() if r.get("epoch", 0) <= state["epoch"]]

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)

    def line(self, record: dict[str, Any], is_best: bool) -> None:
        self.say(epoch_line(record, self.epochs, is_best))


# ---- the checkpoint file -------------------------------------------------------------------------
def write_checkpoint(path: Path, tensors: dict, meta: dict[str, Any], framework: str) -> None:
    """Write `tensors` (torch tensors for framework "pt", NumPy arrays for "np") and `meta` as one
    safetensors file, atomically, and meta["state"] as readable JSON beside it."""
    if framework == "np":
        from safetensors.numpy import save
    else:
        from safetensors.torch import save
    meta = {
        "format": CHECKPOINT_FORMAT,
        "engine": "numpy" if framework == "np" else "torch",
        **meta,
    }
    atomic_write_bytes(path, save(tensors, metadata={"nnlab": json.dumps(meta)}))
    atomic_write_json(path.with_suffix(".json"), meta.get("state", {}))


def read_checkpoint(path: Path, framework: str) -> tuple[dict, dict[str, Any]]:
    """(tensors, meta) of a checkpoint; a clear error for a missing, corrupt or foreign file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise NNLabError(f"{path}: checkpoint not found")
    try:
        with safe_open(path, framework=framework) as f:
            meta = json.loads(f.metadata()["nnlab"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise NNLabError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None
    engine = meta.get("engine", "numpy" if framework == "np" else "torch")
    if engine != ("numpy" if framework == "np" else "torch"):
        raise NNLabError(f"{path}: a checkpoint of the {engine} engine, not this one")
    return tensors, meta


def prefixed(tensors: dict, prefix: str) -> dict:
    """The entries of `tensors` under `prefix` ("model."), with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
