"""Classification with the from-scratch NumPy engine, into the same run-directory format as the
PyTorch side (config.json, metrics.jsonl, checkpoints, figures, report) -- `nnlab report` works
on both. The loop is explicit: shuffle, (augment), forward, loss, backward, SGD step."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console

from nnlab.config import from_dict, to_dict
from nnlab.data import ImageSet, available_splits, check_agree, load_image_set, load_splits
from nnlab.data.registry import get_info
from nnlab.data.splits import kfold, partition
from nnlab.errors import NNLabError
from nnlab.metrics.classification import confusion_matrix, most_confused
from nnlab.numpy_nn import Linear, Sequential, mlp
from nnlab.numpy_nn.conv import Conv2d, Flatten, MaxPool2d
from nnlab.numpy_nn.init import INITS
from nnlab.numpy_nn.layers import ACTIVATIONS
from nnlab.run import RunDir, run_children, run_children_resumable
from nnlab.train.core import TrainingDiverged
from nnlab.train.numpy_loop import NumpyTrainer
from nnlab.viz import confusion_figure, curves_figure, filters_figure, first_layer_figure


@dataclass
class NumpyClassifyConfig:
    data: str = "digits"  # digits, mnist or nist
    arch: str = "mlp"  # mlp, or cnn: [conv3x3 -> relu -> maxpool2] per channel width, linear
    hidden: tuple[int, ...] = (64,)  # hidden layer widths of the MLP (64 or 512,256)
    channels: tuple[int, ...] = (8, 16)  # channel widths of the CNN's conv blocks
    activation: str = "relu"  # relu | sigmoid | tanh
    init: str = ""  # xavier | he | zero; empty: he for relu, xavier otherwise
    epochs: int = 50  # passes over the training data
    batch_size: int = 32  # samples per SGD step
    lr: float = 0.05  # learning rate
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 weight decay
    schedule: str = "cosine"  # cosine | constant learning rate over the epochs
    augment: bool = False  # random affine (rotation, scale, shear, shift) of each training batch
    blur: float = 0.0  # Gaussian blur sigma (pixels) applied to every input, train and test
    val_fraction: float = (
        0.1  # validation part of the training data; 0: none, the last epoch counts
    )
    folds: int = 0  # > 0: k-fold cross-validation over all the data, one child run per fold
    fold: int = 0  # the test fold of this run (cross-validation sets it)
    limit: int = 0  # > 0: use only the first N training images
    monitor: str = "val/acc"  # the figure that picks the best checkpoint
    mode: str = "max"  # min | max: whether a lower or a higher monitor value is better
    seed: int = 0  # seeds the weights, the data order and the augmentation

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise NNLabError(
                f"epochs and batch size must be >= 1 (got {self.epochs}, {self.batch_size})"
            )
        if not 0 < self.lr < float("inf"):
            raise NNLabError(f"learning rate must be > 0 and finite, got {self.lr}")
        if self.arch not in ("mlp", "cnn"):
            raise NNLabError(f"arch must be mlp or cnn, got '{self.arch}'")
        if self.activation not in ACTIVATIONS:
            raise NNLabError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got '{self.activation}'"
            )
        if self.init and self.init not in INITS:
            raise NNLabError(f"init must be one of {sorted(INITS)}, got '{self.init}'")
        if not self.hidden or not self.channels or min(self.hidden + self.channels) < 1:
            raise NNLabError(
                f"layer widths must be >= 1, got hidden {self.hidden}, channels {self.channels}"
            )
        if self.schedule not in ("cosine", "constant"):
            raise NNLabError(f"schedule must be cosine or constant, got '{self.schedule}'")
        if self.mode not in ("min", "max"):
            raise NNLabError(f"mode must be min or max, got '{self.mode}'")
        if self.folds == 1 or self.folds < 0:
            raise NNLabError(f"folds must be 0 (off) or >= 2, got {self.folds}")
        if self.folds and not 0 <= self.fold < self.folds:
            raise NNLabError(f"fold must be in 0..{self.folds - 1}, got {self.fold}")
        if not 0 <= self.val_fraction < 0.5:
            raise NNLabError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if not 0 <= self.seed < 2**32:
            raise NNLabError(f"seed must be >= 0, got {self.seed}")
        for name, low, high in (("blur", 0.0, 10.0), ("weight_decay", 0.0, 1.0),
                                ("momentum", 0.0, 0.999)):  # fmt: skip
            value = getattr(self, name, 0.0)
            if not low <= value <= high:
                raise NNLabError(f"--{name.replace('_', '-')} must be {low:g} to {high:g}, "
                                 f"got {value}")  # fmt: skip

    def check(self) -> None:
        self.validate()
        get_info(self.data, task="classify")
        if not available_splits(self.data):
            raise NNLabError(
                f"{self.data}: no data files found; run `nnlab datasets fetch "
                f"{self.data}` or set NNLAB_DATA to a folder that holds them"
            )


# ---- data ----------------------------------------------------------------------------------------
def load_data(cfg: NumpyClassifyConfig) -> dict[str, ImageSet]:
    """train / val (maybe empty) / test, as the config asks: the standard splits or one CV fold."""
    if cfg.folds:
        splits = available_splits(cfg.data)
        if not splits:
            raise NNLabError(f"{cfg.data}: no data files found; see `nnlab datasets list`")
        parts = [load_image_set(cfg.data, s) for s in splits]
        check_agree(cfg.data, dict(zip(splits, parts)))
        whole = ImageSet(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            parts[0].class_names,
        )
        rest, test = kfold(len(whole), cfg.folds, cfg.seed, labels=whole.labels)[cfg.fold]
        out = {"test": whole.subset(test)}
        if cfg.val_fraction > 0:
            tr, va = partition(
                len(rest), (1 - cfg.val_fraction, cfg.val_fraction), whole.labels[rest], cfg.seed
            )
            out.update(train=whole.subset(rest[tr]), val=whole.subset(rest[va]))
        else:
            out.update(train=whole.subset(rest), val=whole.subset(rest[:0]))
    elif cfg.val_fraction > 0:
        out = load_splits(cfg.data, cfg.val_fraction, cfg.seed)
    else:
        out = load_splits(cfg.data, 0.1, cfg.seed)
        out["train"] = ImageSet(
            np.concatenate([out["train"].images, out["val"].images]),
            np.concatenate([out["train"].labels, out["val"].labels]),
            out["train"].class_names,
        )
        out["val"] = out["val"].subset(np.arange(0))
    if cfg.limit > 0:
        out["train"] = out["train"].subset(np.arange(min(cfg.limit, len(out["train"]))))
    return out


# ---- the task ------------------------------------------------------------------------------------
def build_net(cfg: NumpyClassifyConfig, shape: tuple[int, ...], num_classes: int) -> Sequential:
    """The engine's MLP, or its CNN: [Conv3x3 -> ReLU -> MaxPool2] per channel width, Linear."""
    if cfg.arch == "mlp":
        return mlp(
            [int(np.prod(shape)), *cfg.hidden, num_classes],
            cfg.activation,
            cfg.init or None,
            seed=cfg.seed,
        )
    rng = np.random.default_rng(cfg.seed)
    layers, c, (h, w) = [], shape[0], shape[1:]
    for width in cfg.channels:
        layers += [
            Conv2d(c, width, 3, padding=1, rng=rng),
            ACTIVATIONS[cfg.activation](),
            MaxPool2d(2),
        ]
        c, h, w = width, h // 2, w // 2
    if h < 1 or w < 1:
        raise NNLabError(
            f"{len(cfg.channels)} conv blocks halve {shape[1:]} to nothing; use fewer --channels"
        )
    return Sequential(*layers, Flatten(), Linear(c * h * w, num_classes, rng=rng))


def run_numpy_classify(
    cfg: NumpyClassifyConfig, run: RunDir, console: Console | None = None, resume: bool = False
) -> dict[str, Any]:
    cfg.validate()
    data = load_data(cfg)
    train, val, test = data["train"], data["val"], data["test"]
    shape = train.images.shape[1:]
    k = len(train.class_names)
    net = build_net(cfg, shape, k)
    first = net.layers[0]
    w_init = first.W.data.copy()
    meta = {
        "name": f"numpy-{cfg.arch}",
        "config": {
            "in_shape": list(shape),
            "classes": k,
            **{f: getattr(cfg, f) for f in NET_FIELDS},
        },
    }
    trainer = NumpyTrainer(net, cfg, k, run, console, model_meta=meta)
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
        "engine": "numpy",
        "data": cfg.data,
        "arch": cfg.arch,
        "activation": cfg.activation,
        "parameters": int(sum(p.data.size for p in net.parameters())),
        "epochs": len(trainer.history),
        "best_epoch": trainer.best_epoch,
        "test/acc": test_metrics["acc"],
        "test/loss": test_metrics["loss"],
        "test_images": len(test),
        "train_time_s": sum(r["time/epoch_s"] for r in trainer.history),
        "most_confused": most_confused(cm, test.class_names, 8),
        "confusion": cm.tolist(),
    }
    run.save_summary(summary)
    sizes = "-".join(
        map(str, (int(np.prod(shape)), *cfg.hidden, k) if cfg.arch == "mlp" else cfg.channels)
    )
    title = f"NumPy {cfg.arch.upper()} {sizes} on {cfg.data}"
    run.save_figure("curves", curves_figure(trainer.history, title))
    run.save_figure("confusion", confusion_figure(cm, test.class_names, f"{title}: test confusion"))
    if cfg.arch == "cnn":
        run.save_figure(
            "first_layer_filters", filters_figure(first.W.data, title="learnt 3x3 filters")
        )
    elif shape[0] == 1:
        run.save_figure(
            "first_layer_weights",
            first_layer_figure(
                w_init,
                first.W.data,
                shape[1:],
                "first-layer weights: at initialisation | after training",
            ),
        )
    return summary


NET_FIELDS = ("arch", "hidden", "channels", "activation", "init", "seed")  # what builds the net


def load_numpy_config(run: RunDir) -> NumpyClassifyConfig:
    raw = run.config()
    if raw.get("task") not in ("numpy-classify", "numpy-cv"):
        raise NNLabError(f"{run.path}: not a NumPy classification run (task {raw.get('task')!r})")
    return from_dict(NumpyClassifyConfig, {k: v for k, v in raw.items() if k != "task"})


def run_numpy_cv(
    cfg: NumpyClassifyConfig, run: RunDir, console: Console | None = None, resume: bool = False
) -> dict[str, Any]:
    """k-fold cross-validation: one child run per fold (same config, fold = 0..k-1); with
    `resume`, the folds that finished are kept and a half-done one is trained again."""
    if not resume:
        run.save_config({"task": "numpy-cv", **to_dict(cfg)})
    jobs = {
        f"fold{fold}": (
            lambda child, fold=fold: run_numpy_classify(
                dataclasses.replace(cfg, fold=fold), child, console
            )
        )
        for fold in range(cfg.folds)
    }
    results = run_children_resumable(run, jobs, console, resume)
    rows = [
        {
            "fold": fold,
            "test images": s["test_images"],
            "test accuracy": s["test/acc"],
            "epochs": s["epochs"],
            "train time (s)": s["train_time_s"],
        }
        for fold, (_, s) in enumerate(results.values())
    ]
    accs = np.array([r["test accuracy"] for r in rows])
    summary = {
        "data": cfg.data,
        "folds": rows,
        "test/acc": float(accs.mean()),
        "test/acc_sd": float(accs.std()),
        "train_time_s": float(sum(r["train time (s)"] for r in rows)),
    }
    run.save_summary(summary)
    histories = {f"fold {fold}": c.metrics() for fold, (c, _) in enumerate(results.values())}
    run.save_figure(
        "curves", curves_figure(histories, f"{cfg.folds}-fold cross-validation on {cfg.data}")
    )
    return summary


def run_lr_sweep(
    cfg: NumpyClassifyConfig,
    run: RunDir,
    console: Console | None = None,
    factors: tuple[float, ...] = (0.1, 1.0, 10.0),
) -> list[dict[str, Any]]:
    """Train at cfg.lr times each factor (children lr-<value>); a diverging run is reported,
    not fatal."""
    run.save_config({"task": "numpy-sweep-lr", **to_dict(cfg), "factors": list(factors)})
    lrs = {f"lr-{cfg.lr * f:g}": cfg.lr * f for f in factors}
    jobs = {
        name: (
            lambda child, lr=lr: run_numpy_classify(dataclasses.replace(cfg, lr=lr), child, console)
        )
        for name, lr in lrs.items()
    }
    results = run_children(
        run, jobs, console, {n: f"lr {lr:g}" for n, lr in lrs.items()}, tolerate=(TrainingDiverged,)
    )
    rows = []
    for name, r in results.items():
        h = r.history
        status = f"diverged: {str(r.error).split(';')[0]}" if r.error else "ok"
        rows.append(
            {
                "lr": lrs[name],
                "best val accuracy": max((x["val/acc"] for x in h), default=float("nan")),
                "final train loss": h[-1]["train/loss"] if h else float("nan"),
                "test accuracy": r.summary.get("test/acc", float("nan")),
                "status": status,
            }
        )
    run.save_summary({"data": cfg.data, "sweep": rows})
    run.save_figure(
        "curves",
        curves_figure(
            {f"lr {lrs[n]:g}": r.history for n, r in results.items()},
            f"learning-rate sweep on {cfg.data}",
        ),
    )
    return rows


class NumpyClassify:
    """`nnlab numpy train` for the shared launcher: one run, or k-fold cross-validation."""

    name, config_class, distributed = "numpy-classify", NumpyClassifyConfig, False
    summary_keys = ("data", "parameters", "epochs", "test/acc", "train_time_s")

    def __init__(self, cfg: NumpyClassifyConfig, console: Console | None = None):
        self.cfg, self.console = cfg, console

    def check(self, resume: bool = False) -> None:
        self.cfg.check()

    def run_name(self) -> str:
        return f"numpy-{self.cfg.arch}-{self.cfg.data}"

    @classmethod
    def config_from_run(cls, run: RunDir) -> NumpyClassifyConfig:
        return load_numpy_config(run)

    def execute(self, run: RunDir, resume: bool = False) -> dict[str, Any]:
        if self.cfg.folds:
            return run_numpy_cv(self.cfg, run, self.console, resume)
        return run_numpy_classify(self.cfg, run, self.console, resume)
