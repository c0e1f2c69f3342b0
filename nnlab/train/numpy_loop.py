"""The NumPy engine's training loop, written out: shuffle, (augment), forward, loss, backward,
SGD step. History, best/last selection, the schedule and the checkpoint format are the ones the
PyTorch loop uses (`nnlab.train.core`); this file never imports torch."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.data.augment import blur, random_affine
from nnlab.errors import NNLabError
from nnlab.numpy_nn import SGD, CrossEntropyLoss, Linear, Sequential, SSELoss
from nnlab.run import RunDir
from nnlab.train.core import (
    Bookkeeper,
    check_validation,
    diverged,
    lr_factor,
    prefixed,
    read_checkpoint,
    write_checkpoint,
)


def check_inputs(
    x: np.ndarray, y: np.ndarray, in_features: int, num_classes: int, what: str
) -> None:
    """Clear errors for the usual ways a batch of data is wrong."""
    if x.ndim != 2 or x.shape[1] != in_features:
        raise NNLabError(
            f"{what}: inputs have shape {x.shape}, the network expects (N, {in_features})"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise NNLabError(f"{what}: {len(x)} inputs but labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise NNLabError(f"{what}: labels must be integers, got {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise NNLabError(
            f"{what}: labels must lie in 0..{num_classes - 1}, found {y.min()}..{y.max()}"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        raise NNLabError(
            f"{what}: {int(bad.sum())} NaN or infinite input values "
            f"(first in sample {int(np.argwhere(bad)[0][0])})"
        )


class NumpyTrainer:
    """Trains `net` (an engine Sequential) on images by cross-entropy with SGD. `cfg` needs the
    fields of NumpyClassifyConfig: epochs, batch_size, lr, momentum, weight_decay, schedule,
    augment, blur, arch, seed, monitor, mode. `model_meta` goes into every checkpoint.
    What the network learns to output is three methods (`make_loss`, `targets`, `batch_stats`,
    with `check` and `evaluate`): the autoencoder below overrides them, nothing else."""

    def __init__(
        self,
        net: Sequential,
        cfg,
        num_classes: int,
        run: RunDir | None = None,
        console=None,
        model_meta: dict[str, Any] | None = None,
    ):
        self.net, self.cfg, self.num_classes, self.run = net.no_input_grad(), cfg, num_classes, run
        self.model_meta = model_meta or {}
        self.loss = self.make_loss()
        self.opt = SGD(net.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
        self.books = Bookkeeper(cfg.monitor, cfg.mode, 0, cfg.epochs, run, console)
        self.start_epoch, self.step = 1, 0
        first = net.layers[0]
        self.in_features = first.W.data.shape[0] if isinstance(first, Linear) else None

    def make_loss(self):
        return CrossEntropyLoss()

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.books.history

    @property
    def best_epoch(self) -> int:
        return self.books.best_epoch

    def flat(self, images: np.ndarray) -> np.ndarray:
        """The network's input: blurred images, flattened for an MLP, (N, C, H, W) for a CNN."""
        x = blur(images, self.cfg.blur)
        return x.reshape(len(x), -1) if self.cfg.arch == "mlp" else x

    # ---- what the network is trained to output: the class (here) or the input (autoencoder) ---
    def check(self, data, what: str) -> None:
        width = self.in_features or int(np.prod(data.images.shape[1:]))  # a CNN takes any size
        check_inputs(data.images.reshape(len(data), -1), data.labels, width, self.num_classes, what)

    def targets(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return labels

    def batch_stats(self, out: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Sums over the batch of the figures logged beside the loss (divided by N per epoch)."""
        return {"acc": float((out.argmax(1) == target).sum())}

    def evaluate(self, data, batch_size: int = 1000) -> dict[str, float]:
        logits = self.predict(data.images, batch_size)
        return {
            "loss": CrossEntropyLoss()(logits, data.labels),
            "acc": float((logits.argmax(1) == data.labels).mean()),
        }

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        x = self.flat(images)
        return np.concatenate(
            [self.net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    def lr_at(self, epoch: int) -> float:
        """The schedule of the PyTorch loop, stepped once per epoch, no warm-up."""
        return self.cfg.lr * lr_factor(epoch - 1, self.cfg.epochs, 0, self.cfg.schedule)

    def fit(self, train, val) -> list[dict[str, Any]]:
        cfg = self.cfg
        self.check(train, "training data")
        if len(val):
            self.check(val, "validation data")
        fixed_x = (
            None if cfg.augment else self.flat(train.images)
        )  # unchanging inputs: prepare once
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            with np.errstate(
                over="ignore", invalid="ignore"
            ):  # divergence is caught below, by name
                record = self._epoch(epoch, train, val, fixed_x)
            if len(val):
                check_validation(record, self.books.monitor, epoch, self.opt.lr, self.run)
            is_best = self.books.end_epoch(record)
            if self.run is not None:  # best first: a stop between the two redoes this epoch
                if is_best:
                    self.save(self.run.checkpoint_dir / "best.safetensors", epoch)
                self.save(self.run.checkpoint_dir / "last.safetensors", epoch, optimizer=True)
            self.books.line(record, is_best)
        return self.history

    def _epoch(self, epoch: int, train, val, fixed_x: np.ndarray | None) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])  # resumable: epoch e always draws the same
        self.opt.lr = self.lr_at(epoch)
        x = self.flat(random_affine(train.images, rng)) if cfg.augment else fixed_x
        y = self.targets(x, train.labels)
        summed = getattr(self.loss, "reduction", "mean") == "sum"  # per-sample: loss / batch
        order = rng.permutation(len(x))
        sums: dict[str, float] = {"loss": 0.0}
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            out = self.net(x[idx])
            loss = self.loss(out, y[idx])
            if not math.isfinite(loss):
                raise diverged(
                    loss, epoch, f"batch {i // cfg.batch_size + 1}", self.opt.lr, self.run
                )
            self.opt.zero_grad()
            self.net.backward(self.loss.backward())
            self.opt.step()
            self.step += 1
            sums["loss"] += loss if summed else loss * len(idx)
            for k, v in self.batch_stats(out, y[idx]).items():
                sums[k] = sums.get(k, 0.0) + v
        mean = sums["loss"] / len(x)
        if type(self.loss) is CrossEntropyLoss and mean > 100 * math.log(max(2, self.num_classes)):
            # the stable cross-entropy stays finite while the logits explode: 100 x chance's loss
            # (ln K) after a whole epoch is a divergence too
            raise diverged(mean, epoch, "its mean over the epoch", self.opt.lr, self.run)
        record = {
            "epoch": epoch,
            **{f"train/{k}": v / len(x) for k, v in sums.items()},
            "lr": self.opt.lr,
            "step": self.step,
            "time/epoch_s": time.perf_counter() - t0,
        }
        if len(val):
            record.update({f"val/{k}": v for k, v in self.evaluate(val).items()})
        return record

    # ---- checkpoints: the shared format, NumPy arrays ------------------------------------------
    def save(self, path: Path, epoch: int, optimizer: bool = False) -> None:
        tensors = {f"model.{k}": v for k, v in self.net.state_dict().items()}
        meta: dict[str, Any] = {
            "model": self.model_meta,
            "state": {"epoch": epoch, "batch": 0, "step": self.step, **self.books.state()},
        }
        if optimizer:
            tensors.update({f"optim.{k}": v for k, v in self.opt.state_dict().items()})
            meta["optimizer"] = {
                "type": "sgd",
                "lr": self.opt.lr,
                "momentum": self.opt.momentum,
                "weight_decay": self.opt.weight_decay,
            }
        write_checkpoint(path, tensors, meta, "np")

    def load(self, path: Path, optimizer: bool = False) -> dict[str, Any]:
        tensors, meta = read_checkpoint(path, "np")
        try:
            self.net.load_state_dict(prefixed(tensors, "model."))
            if optimizer:
                self.opt.load_state_dict(prefixed(tensors, "optim."))
        except (ValueError, KeyError) as e:
            raise NNLabError(f"{path}: checkpoint does not fit this network ({e})") from None
        return meta["state"]

    def resume(self) -> int:
        path = self.run.checkpoint_dir / "last.safetensors"
        if not path.exists():  # stopped before its first checkpoint: it starts again
            self.run.keep_metrics(0)
            return 0
        state = self.load(path, optimizer=True)
        self.start_epoch, self.step = state["epoch"] + 1, state.get("step", 0)
        self.books.restore(state, self.run)
        return state["epoch"]


class NumpyAutoencoderTrainer(NumpyTrainer):
    """Trains `net` to give back its own flattened input, by the total squared error (summed over
    the batch and the pixels, the course's loss); logs the squared error per image and the PSNR
    (10 log10(1 / MSE), images in [0, 1])."""

    def make_loss(self):
        return SSELoss()

    def check(self, data, what: str) -> None:
        x = data.images.reshape(len(data), -1)
        if self.in_features is not None and x.shape[1] != self.in_features:
            raise NNLabError(
                f"{what}: images of {x.shape[1]} values, the network expects {self.in_features}"
            )
        bad = ~np.isfinite(x)
        if bad.any():
            raise NNLabError(f"{what}: {int(bad.sum())} NaN or infinite pixel values")

    def targets(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return x

    def batch_stats(self, out: np.ndarray, target: np.ndarray) -> dict[str, float]:
        return {"psnr": float(psnr(out, target).sum())}

    def evaluate(self, data, batch_size: int = 1000) -> dict[str, float]:
        x = self.flat(data.images)
        out = self.predict(data.images, batch_size)
        return {
            "loss": float(((out - x) ** 2).sum(axis=1).mean()),
            "psnr": float(psnr(out, x).mean()),
        }


def psnr(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR per row (image) in dB for data in [0, 1]: 10 log10(1 / mean squared error)."""
    mse = ((pred - target) ** 2).reshape(len(pred), -1).mean(axis=1)
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-10))
