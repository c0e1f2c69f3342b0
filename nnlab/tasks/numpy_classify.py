"""Classification with the from-scratch NumPy engine, into the same run-directory format as the
PyTorch side (config.json, metrics.jsonl, checkpoints, figures, report) -- `nnlab report` works
on both. The loop is explicit: shuffle, (augment), forward, loss, backward, SGD step."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save
from sklearn.model_selection import StratifiedKFold

from nnlab.config import from_dict, to_dict
from nnlab.data import ImageSet, available_splits, load_image_set, load_splits, partition
from nnlab.data.augment import blur, random_affine
from nnlab.errors import NNLabError
from nnlab.io import atomic_write_bytes, atomic_write_json
from nnlab.numpy_nn import SGD, CrossEntropyLoss, Linear, Sequential, mlp
from nnlab.numpy_nn.conv import Conv2d, Flatten, MaxPool2d
from nnlab.numpy_nn.init import INITS
from nnlab.numpy_nn.layers import ACTIVATIONS
from nnlab.run import RunDir
from nnlab.tasks.classify import confusion_matrix, most_confused
from nnlab.train import TrainingDiverged
from nnlab.train.loop import diverged, epoch_line
from nnlab.viz import confusion_figure, curves_figure, filters_figure, first_layer_figure


@dataclass
class NumpyClassifyConfig:
    data: str = "digits"
    arch: str = "mlp"  # mlp | cnn: [conv3x3 -> relu -> maxpool2] per entry of `channels`, then linear
    hidden: tuple[int, ...] = (64,)
    channels: tuple[int, ...] = (8, 16)
    activation: str = "relu"  # relu | sigmoid | tanh
    init: str = ""  # xavier | he | zero; "" = he for relu, xavier otherwise
    epochs: int = 50
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | constant, per epoch
    augment: bool = False  # random affine (rotation, scale, shear, shift) of each training batch
    blur: float = 0.0  # Gaussian blur sigma applied to every input (train and test)
    val_fraction: float = 0.1  # 0: no validation split; the last epoch is evaluated
    folds: int = 0  # > 0: k-fold cross-validation over all the data, test = fold `fold`
    fold: int = 0
    limit: int = 0
    seed: int = 0

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise NNLabError(f"epochs and batch size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if not self.lr > 0:
            raise NNLabError(f"learning rate must be > 0, got {self.lr}")
        if self.arch not in ("mlp", "cnn"):
            raise NNLabError(f"arch must be mlp or cnn, got '{self.arch}'")
        if self.activation not in ACTIVATIONS:
            raise NNLabError(f"activation must be one of {sorted(ACTIVATIONS)}, got '{self.activation}'")
        if self.init and self.init not in INITS:
            raise NNLabError(f"init must be one of {sorted(INITS)}, got '{self.init}'")
        if any(h < 1 for h in self.hidden):
            raise NNLabError(f"hidden sizes must be >= 1, got {self.hidden}")
        if self.folds and not 0 <= self.fold < self.folds:
            raise NNLabError(f"fold must be in 0..{self.folds - 1}, got {self.fold}")
        if not 0 <= self.val_fraction < 0.5:
            raise NNLabError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")


# ---- data -----------------------------------------------------------------------------------------
def load_data(cfg: NumpyClassifyConfig) -> dict[str, ImageSet]:
    """train / val (maybe empty) / test, as the config asks: the standard splits or one CV fold."""
    if cfg.folds:
        splits = available_splits(cfg.data)
        if not splits:
            raise NNLabError(f"{cfg.data}: no data files found; see `nnlab datasets list`")
        parts = [load_image_set(cfg.data, s) for s in splits]
        whole = ImageSet(np.concatenate([p.images for p in parts]),
                         np.concatenate([p.labels for p in parts]), parts[0].class_names)
        kfold = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
        rest, test = list(kfold.split(whole.images, whole.labels))[cfg.fold]
        out = {"test": whole.subset(test)}
        if cfg.val_fraction > 0:
            tr, va = partition(len(rest), (1 - cfg.val_fraction, cfg.val_fraction),
                                whole.labels[rest], cfg.seed)
            out.update(train=whole.subset(rest[tr]), val=whole.subset(rest[va]))
        else:
            out.update(train=whole.subset(rest), val=whole.subset(rest[:0]))
    elif cfg.val_fraction > 0:
        out = load_splits(cfg.data, cfg.val_fraction, cfg.seed)
    else:
        out = load_splits(cfg.data, 0.1, cfg.seed)
        out["train"] = ImageSet(np.concatenate([out["train"].images, out["val"].images]),
                                np.concatenate([out["train"].labels, out["val"].labels]),
                                out["train"].class_names)
        out["val"] = out["val"].subset(np.arange(0))
    if cfg.limit > 0:
        out["train"] = out["train"].subset(np.arange(min(cfg.limit, len(out["train"]))))
    return out


def check_inputs(x: np.ndarray, y: np.ndarray, in_features: int, num_classes: int, what: str) -> None:
    """Clear errors for the usual ways a batch of data is wrong."""
    if x.ndim != 2 or x.shape[1] != in_features:
        raise NNLabError(f"{what}: inputs have shape {x.shape}, the network expects (N, {in_features})")
    if y.ndim != 1 or len(y) != len(x):
        raise NNLabError(f"{what}: {len(x)} inputs but labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise NNLabError(f"{what}: labels must be integers, got {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise NNLabError(f"{what}: labels must lie in 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise NNLabError(f"{what}: {int(bad.sum())} NaN or infinite input values "
                         f"(first in sample {int(np.argwhere(bad)[0][0])})")


# ---- the loop -------------------------------------------------------------------------------------
class NumpyTrainer:
    def __init__(self, net: Sequential, cfg: NumpyClassifyConfig, num_classes: int,
                 run: RunDir | None = None, console: Console | None = None):
        self.net, self.cfg, self.num_classes, self.run, self.console = net, cfg, num_classes, run, console
        self.loss = CrossEntropyLoss()
        self.opt = SGD(net.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
        self.history: list[dict[str, Any]] = []
        self.start_epoch, self.best, self.best_epoch = 1, None, 0
        first = net.layers[0]
        self.in_features = first.W.data.shape[0] if isinstance(first, Linear) else None

    def flat(self, images: np.ndarray) -> np.ndarray:
        """The network's input: blurred images, flattened for an MLP, (N, C, H, W) for a CNN."""
        x = blur(images, self.cfg.blur)
        return x.reshape(len(x), -1) if self.cfg.arch == "mlp" else x

    def evaluate(self, data: ImageSet, batch_size: int = 1000) -> dict[str, float]:
        logits = self.predict(data.images, batch_size)
        return {"loss": CrossEntropyLoss()(logits, data.labels),
                "acc": float((logits.argmax(1) == data.labels).mean())}

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        x = self.flat(images)
        return np.concatenate([self.net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def lr_at(self, epoch: int) -> float:
        if self.cfg.schedule == "constant":
            return self.cfg.lr
        return self.cfg.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / self.cfg.epochs))

    def fit(self, train: ImageSet, val: ImageSet) -> list[dict[str, Any]]:
        cfg = self.cfg
        width = self.in_features or int(np.prod(train.images.shape[1:]))  # a CNN takes any size
        check_inputs(train.images.reshape(len(train), -1), train.labels, width, self.num_classes,
                     "training data")
        if len(val):
            check_inputs(val.images.reshape(len(val), -1), val.labels, width, self.num_classes,
                         "validation data")
        fixed_x = None if cfg.augment else self.flat(train.images)  # unchanging inputs: prepare once
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught below, by name
                self._epoch(epoch, train, val, fixed_x)
        return self.history

    def _epoch(self, epoch: int, train: ImageSet, val: ImageSet, fixed_x: np.ndarray | None) -> None:
        cfg = self.cfg
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])  # resumable: epoch e always draws the same
        self.opt.lr = self.lr_at(epoch)
        x = self.flat(random_affine(train.images, rng)) if cfg.augment else fixed_x
        y = train.labels
        order = rng.permutation(len(x))
        loss_sum, correct = 0.0, 0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            logits = self.net(x[idx])
            loss = self.loss(logits, y[idx])
            if not math.isfinite(loss):
                raise diverged(loss, epoch, f"batch {i // cfg.batch_size + 1}", self.opt.lr, self.run)
            self.opt.zero_grad()
            self.net.backward(self.loss.backward())
            self.opt.step()
            loss_sum += loss * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        record = {"epoch": epoch, "train/loss": loss_sum / len(x), "train/acc": correct / len(x),
                  "lr": self.opt.lr, "time/epoch_s": time.perf_counter() - t0}
        if len(val):
            record.update({f"val/{k}": v for k, v in self.evaluate(val).items()})
        self._end_epoch(record)

    def _end_epoch(self, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        self.history.append(record)
        value = record.get("val/acc")
        is_best = value is not None and (self.best is None or value > self.best)
        if is_best:
            self.best, self.best_epoch = value, epoch
        if self.run is not None:
            self.run.log(record)
            self.save(self.run.checkpoint_dir / "last.safetensors", epoch, optimizer=True)
            if is_best or value is None:  # without validation, "best" is simply the latest
                self.save(self.run.checkpoint_dir / "best.safetensors", epoch)
        if self.console is not None:
            self.console.print(epoch_line(record, self.cfg.epochs, is_best), highlight=False)

    # ---- checkpoints: safetensors (numpy), state in the metadata, written atomically ------------
    def save(self, path, epoch: int, optimizer: bool = False) -> None:
        tensors = {f"model.{k}": v for k, v in self.net.state_dict().items()}
        if optimizer:
            tensors.update({f"optim.{k}": v for k, v in self.opt.state_dict().items()})
        state = {"epoch": epoch, "best": self.best, "best_epoch": self.best_epoch}
        atomic_write_bytes(path, save(tensors, metadata={"nnlab": json.dumps({"state": state})}))
        atomic_write_json(path.with_suffix(".json"), state)

    def load(self, path, optimizer: bool = False) -> dict[str, Any]:
        try:
            with safe_open(path, framework="np") as f:
                state = json.loads(f.metadata()["nnlab"])["state"]
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            self.net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            if optimizer:
                self.opt.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("optim.")})
        except FileNotFoundError:
            raise NNLabError(f"{path}: checkpoint not found") from None
        except (SafetensorError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
            raise NNLabError(f"{path}: corrupt or incompatible checkpoint ({e})") from None
        return state

    def resume(self) -> int:
        path = self.run.checkpoint_dir / "last.safetensors"
        if not path.exists():
            return 0
        state = self.load(path, optimizer=True)
        self.start_epoch, self.best, self.best_epoch = state["epoch"] + 1, state["best"], state["best_epoch"]
        self.run.keep_metrics(state["epoch"])
        self.history = self.run.metrics()
        return state["epoch"]


# ---- the task -------------------------------------------------------------------------------------
def build_net(cfg: NumpyClassifyConfig, shape: tuple[int, ...], num_classes: int) -> Sequential:
    """The engine's MLP, or its CNN: [Conv3x3 -> ReLU -> MaxPool2] per channel width, Linear."""
    if cfg.arch == "mlp":
        return mlp([int(np.prod(shape)), *cfg.hidden, num_classes], cfg.activation, cfg.init or None,
                   seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    layers, c, (h, w) = [], shape[0], shape[1:]
    for width in cfg.channels:
        layers += [Conv2d(c, width, 3, padding=1, rng=rng), ACTIVATIONS[cfg.activation](), MaxPool2d(2)]
        c, h, w = width, h // 2, w // 2
    if h < 1 or w < 1:
        raise NNLabError(f"{len(cfg.channels)} conv blocks halve {shape[1:]} to nothing; use fewer --channels")
    return Sequential(*layers, Flatten(), Linear(c * h * w, num_classes, rng=rng))


def run_numpy_classify(cfg: NumpyClassifyConfig, run: RunDir, console: Console | None = None,
                       resume: bool = False) -> dict[str, Any]:
    cfg.validate()
    data = load_data(cfg)
    train, val, test = data["train"], data["val"], data["test"]
    shape = train.images.shape[1:]
    k = len(train.class_names)
    net = build_net(cfg, shape, k)
    first = net.layers[0]
    w_init = first.W.data.copy()
    trainer = NumpyTrainer(net, cfg, k, run, console)
    if resume:
        done = trainer.resume()
        if console:
            console.print(f"resuming {run.path} after epoch {done}")
    else:
        run.save_config({"task": "numpy-classify", **to_dict(cfg)})
    trainer.fit(train, val)
    trainer.load(run.checkpoint_dir / "best.safetensors")
    test_metrics = trainer.evaluate(test)
    pred = trainer.predict(test.images).argmax(1)
    cm = confusion_matrix(pred, test.labels, k)
    summary = {
        "engine": "numpy", "data": cfg.data, "arch": cfg.arch, "activation": cfg.activation,
        "parameters": int(sum(p.data.size for p in net.parameters())),
        "epochs": len(trainer.history), "best_epoch": trainer.best_epoch or len(trainer.history),
        "test/acc": test_metrics["acc"], "test/loss": test_metrics["loss"], "test_images": len(test),
        "train_time_s": sum(r["time/epoch_s"] for r in trainer.history),
        "most_confused": most_confused(cm, test.class_names, 8), "confusion": cm.tolist(),
    }
    run.save_summary(summary)
    sizes = "-".join(map(str, (int(np.prod(shape)), *cfg.hidden, k) if cfg.arch == "mlp" else cfg.channels))
    title = f"NumPy {cfg.arch.upper()} {sizes} on {cfg.data}"
    run.save_figure("curves", curves_figure(trainer.history, title))
    run.save_figure("confusion", confusion_figure(cm, test.class_names, f"{title}: test confusion"))
    if cfg.arch == "cnn":
        run.save_figure("first_layer_filters", filters_figure(first.W.data, title="learnt 3x3 filters"))
    elif shape[0] == 1:
        run.save_figure("first_layer_weights", first_layer_figure(
            w_init, first.W.data, shape[1:], "first-layer weights: at initialisation | after training"))
    return summary


def load_numpy_config(run: RunDir) -> NumpyClassifyConfig:
    raw = run.config()
    if raw.get("task") != "numpy-classify":
        raise NNLabError(f"{run.path}: not a NumPy classification run (task {raw.get('task')!r})")
    return from_dict(NumpyClassifyConfig, {k: v for k, v in raw.items() if k != "task"})


def run_numpy_cv(cfg: NumpyClassifyConfig, run: RunDir, console: Console | None = None) -> dict[str, Any]:
    """k-fold cross-validation: one child run per fold (same config, fold = 0..k-1)."""
    run.save_config({"task": "numpy-cv", **to_dict(cfg)})
    rows, histories = [], {}
    for fold in range(cfg.folds):
        if console:
            console.rule(f"fold {fold + 1}/{cfg.folds}")
        child = RunDir.create(f"fold{fold}", out=run.path / f"fold{fold}")
        s = run_numpy_classify(dataclasses.replace(cfg, fold=fold), child, console)
        rows.append({"fold": fold, "test images": s["test_images"], "test accuracy": s["test/acc"],
                     "epochs": s["epochs"], "train time (s)": s["train_time_s"]})
        histories[f"fold {fold}"] = child.metrics()
    accs = np.array([r["test accuracy"] for r in rows])
    summary = {"data": cfg.data, "folds": rows, "test/acc": float(accs.mean()),
               "test/acc_sd": float(accs.std()),
               "train_time_s": float(sum(r["train time (s)"] for r in rows))}
    run.save_summary(summary)
    run.save_figure("curves", curves_figure(histories, f"{cfg.folds}-fold cross-validation on {cfg.data}"))
    return summary


def run_lr_sweep(cfg: NumpyClassifyConfig, run: RunDir, console: Console | None = None,
                 factors: tuple[float, ...] = (0.1, 1.0, 10.0)) -> list[dict[str, Any]]:
    """Train at cfg.lr times each factor (children lr-<value>); a diverging run is reported, not fatal."""
    run.save_config({"task": "numpy-sweep-lr", **to_dict(cfg), "factors": list(factors)})
    rows, histories = [], {}
    for f in factors:
        lr = cfg.lr * f
        if console:
            console.rule(f"lr {lr:g}")
        child = RunDir.create(f"lr-{lr:g}", out=run.path / f"lr-{lr:g}")
        try:
            s = run_numpy_classify(dataclasses.replace(cfg, lr=lr), child, console)
            status = "ok"
        except TrainingDiverged as e:
            s, status = {}, f"diverged: {str(e).split(';')[0]}"
        history = child.metrics()
        histories[f"lr {lr:g}"] = history
        rows.append({"lr": lr, "best val accuracy": max((r["val/acc"] for r in history), default=float("nan")),
                     "final train loss": history[-1]["train/loss"] if history else float("nan"),
                     "test accuracy": s.get("test/acc", float("nan")), "status": status})
    run.save_summary({"data": cfg.data, "sweep": rows})
    run.save_figure("curves", curves_figure(histories, f"learning-rate sweep on {cfg.data}"))
    return rows
