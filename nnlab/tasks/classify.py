"""Image classification: cross-entropy on logits, accuracy; figures of what the model got wrong."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from rich.console import Console
from torch import nn

from nnlab.config import from_dict, to_dict
from nnlab.data import ImageSet, load_splits
from nnlab.data.augment import random_affine_torch
from nnlab.errors import NNLabError
from nnlab.models import build_model, count_parameters, model_config
from nnlab.run import RunDir
from nnlab.train import StepOutput, TrainConfig, Trainer, load_checkpoint, predict
from nnlab.viz import confusion_figure, curves_figure, filters_figure, gabor_bank, image_grid_figure


@dataclass
class ClassifyConfig:
    data: str = "digits"
    model: str = "mlp"
    model_args: dict[str, Any] = field(default_factory=dict)  # fields of the model's config
    val_fraction: float = 0.1
    limit: int = 0  # > 0: use only this many training images
    augment: bool = False  # random affine transform of every training batch
    train: TrainConfig = field(default_factory=lambda: TrainConfig(monitor="val/acc"))


class ClassifyTask:
    def __init__(self, num_classes: int, augment: bool = False):
        self.num_classes, self.augment = num_classes, augment

    def step(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> StepOutput:
        x, y = batch  # (B, C, H, W), (B,)
        if self.augment and model.training:
            x = random_affine_torch(x)
        logits = model(x)  # (B, K)
        return StepOutput(F.cross_entropy(logits, y), logits, y)

    def metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {"acc": torchmetrics.classification.MulticlassAccuracy(self.num_classes, average="micro")})


def resolved_model_config(cfg: ClassifyConfig, data: ImageSet):
    args = dict(cfg.model_args)
    shape = tuple(data.images.shape[1:])
    if cfg.model == "mlp":
        args.setdefault("in_shape", shape)
    else:
        args.setdefault("in_channels", shape[0])
    if cfg.model == "vit":
        args.setdefault("image_size", shape[1:])
        patch = tuple(args.get("patch", (7, 7)))
        if shape[1] % patch[0] or shape[2] % patch[1]:
            raise NNLabError(f"patch {patch[0]}x{patch[1]} does not tile the {shape[1]}x{shape[2]} "
                             f"images of {cfg.data}")
    args.setdefault("num_classes", len(data.class_names))
    return model_config(cfg.model, **args)


def confusion_matrix(pred: np.ndarray, true: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def most_confused(cm: np.ndarray, names: list[str], n: int = 5) -> list[dict[str, Any]]:
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:n]
    return [{"true": names[i], "predicted": names[j], "count": int(off[i, j])}
            for i, j in zip(*np.unravel_index(order, cm.shape)) if off[i, j] > 0]


def run_classify(cfg: ClassifyConfig, run: RunDir, console: Console | None = None,
                 resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a classifier into `run`; evaluate the best checkpoint on the test split,
    write figures and summary.json, and return the summary."""
    splits = load_splits(cfg.data, cfg.val_fraction, cfg.train.seed, cfg.limit)
    train, val, test = splits["train"], splits["val"], splits["test"]
    mcfg = resolved_model_config(cfg, train)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, mcfg)
    trainer = Trainer(model, ClassifyTask(len(train.class_names), cfg.augment), cfg.train, run, console)
    main = trainer.run is not None  # False on ranks > 0 under DDP: they train, rank 0 writes
    if resume:
        done = trainer.resume()
        if console and main:
            console.print(f"resuming {run.path} after epoch {done}")
    elif main:
        run.save_config({"task": "classify", **to_dict(cfg), "model_config": to_dict(mcfg)})
    trainer.fit(train.tensors(), val.tensors())
    train_time = sum(r["time/epoch_s"] for r in trainer.history)  # all epochs, resumed ones too

    load_checkpoint(run.checkpoint_dir / "best.safetensors", model)
    test_metrics = trainer.evaluate(test.tensors())
    if not main:
        return {"test/acc": test_metrics["acc"]}
    logits = predict(model, test.tensors(), device=trainer.device)
    pred, true = logits.argmax(1).numpy(), test.labels
    cm = confusion_matrix(pred, true, len(test.class_names))
    summary = {
        "data": cfg.data, "model": cfg.model, "parameters": count_parameters(model),
        "epochs": len(trainer.history), "best_epoch": trainer.best_epoch,
        "test/acc": test_metrics["acc"], "test/loss": test_metrics["loss"], "test_images": len(test),
        "train_time_s": train_time, "device": str(trainer.device),
        "most_confused": most_confused(cm, test.class_names),
        "confusion": cm.tolist(),  # rows: true class, columns: predicted
    }
    run.save_summary(summary)
    write_figures(run, trainer.history, test, pred, logits, cm, f"{cfg.model} on {cfg.data}")
    if cfg.model == "vit":
        for i in range(3):
            run.save_figure(f"attention_test{i}", explain_figure(model, test, i, trainer.device))
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None:
        w = first_conv.weight.detach().cpu().numpy()  # (O, C, k, k)
        bank = gabor_bank(w.shape[-1]) if w.shape[-1] >= 5 else None
        run.save_figure("first_layer_filters", filters_figure(
            w, bank, f"learnt {w.shape[-1]}x{w.shape[-1]} first-layer filters"))
    return summary


def write_figures(run: RunDir, history, test: ImageSet, pred: np.ndarray, logits: torch.Tensor,
                  cm: np.ndarray, title: str, max_wrong: int = 32) -> None:
    names = test.class_names
    run.save_figure("curves", curves_figure(history, title))
    run.save_figure("confusion", confusion_figure(cm, names, f"{title}: test confusion matrix"))
    wrong = np.flatnonzero(pred != test.labels)
    # most confident mistakes first: those are the instructive ones
    conf = torch.softmax(logits, 1).max(1).values.numpy()
    wrong = wrong[np.argsort(-conf[wrong])][:max_wrong]
    titles = [f"{names[test.labels[i]]}→{names[pred[i]]} ({conf[i]:.0%})" for i in wrong]
    run.save_figure("misclassified", image_grid_figure(
        test.images[wrong], titles, cols=8,
        title=f"misclassified test images, true→predicted (confidence): {len(wrong)} shown"))


def load_classify_config(run: RunDir) -> ClassifyConfig:
    raw = run.config()
    if raw.get("task") != "classify":
        raise NNLabError(f"{run.path}: not a classification run (task {raw.get('task')!r})")
    fields = {f.name for f in dataclasses.fields(ClassifyConfig)}
    return from_dict(ClassifyConfig, {k: v for k, v in raw.items() if k in fields})


def explain_figure(model: nn.Module, data: ImageSet, index: int, device: torch.device | None = None):
    """Attention maps of a ViT for image `index` of `data`: per layer and head, and the rollout."""
    from nnlab.viz.attention import attention_figure

    if not 0 <= index < len(data):
        raise NNLabError(f"image index {index} is outside 0..{len(data) - 1}")
    device = device or next(model.parameters()).device
    model.eval()
    x = torch.from_numpy(data.images[index:index + 1]).to(device)
    with torch.no_grad():
        logits, maps = model(x, return_attention=True)
    maps = [m[0].float().cpu().numpy() for m in maps]  # per layer (heads, N + 1, N + 1)
    pred = int(logits.argmax(1))
    names = data.class_names
    cfg = model.cfg
    title = (f"test image {index}: true {names[data.labels[index]]}, predicted {names[pred]}; "
             f"patches {cfg.patch[0]}x{cfg.patch[1]}, class-token attention")
    return attention_figure(data.images[index, 0], maps, cfg.grid, cfg.patch, title)
