"""Image classification: cross-entropy on logits, accuracy; figures of what the model got wrong,
its first-layer filters and (for a ViT) its attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from nnlab.data import ImageSet, available_splits, load_splits
from nnlab.data.augment import random_affine_torch
from nnlab.data.registry import get_info
from nnlab.errors import NNLabError
from nnlab.metrics.classification import confusion_matrix, most_confused
from nnlab.models import model_config
from nnlab.run import RunDir
from nnlab.tasks.base import Task, load_config, load_model, run_task
from nnlab.train import StepOutput, TrainConfig, predict
from nnlab.viz import confusion_figure, filters_figure, gabor_bank, image_grid_figure


@dataclass
class ClassifyConfig:
    data: str = "digits"  # digits, mnist or nist
    model: str = "mlp"  # mlp, cnn or vit
    model_args: dict[str, Any] = field(default_factory=dict)  # the model config's fields
    val_fraction: float = 0.1  # part of the training data held out for validation
    limit: int = 0  # > 0: use only the first N training images
    augment: bool = False  # random affine transform of every training batch
    train: TrainConfig = field(default_factory=lambda: TrainConfig(monitor="val/acc", mode="max"))

    def check(self) -> None:
        get_info(self.data, task="classify")
        if not 0.0 < self.val_fraction < 0.5:
            raise NNLabError(f"--val-fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.limit < 0:
            raise NNLabError(f"--limit must be >= 0, got {self.limit}")
        model_config(self.model, **self.model_args)
        if not available_splits(self.data):
            raise NNLabError(
                f"{self.data}: no data files found; run `nnlab datasets fetch "
                f"{self.data}` or set NNLAB_DATA to a folder that holds them"
            )


class ClassifyTask(Task):
    name, config_class, models = "classify", ClassifyConfig, ("mlp", "cnn", "vit")
    noun = "classification"
    summary_keys = (
        "model",
        "data",
        "parameters",
        "epochs",
        "best_epoch",
        "test/acc",
        "train_time_s",
    )

    def __init__(self, cfg: ClassifyConfig, console=None):
        super().__init__(cfg, console)
        self.num_classes = 0  # known once the data is read

    @classmethod
    def for_classes(cls, k: int, augment: bool = False) -> ClassifyTask:
        """The loss and metrics alone, for models outside the registry (the loop needs no more)."""
        task = cls(ClassifyConfig(augment=augment))
        task.num_classes = k
        return task

    def datasets(self, run: RunDir, resume: bool) -> dict[str, torch.utils.data.Dataset]:
        cfg = self.cfg
        self.sets = load_splits(cfg.data, cfg.val_fraction, cfg.train.seed, cfg.limit)
        self.num_classes = len(self.sets["train"].class_names)
        return {k: v.tensors() for k, v in self.sets.items()}

    def model_config(self, train):
        cfg, shape = self.cfg, tuple(self.sets["train"].images.shape[1:])
        args = dict(cfg.model_args)
        args.setdefault(
            "in_shape" if cfg.model == "mlp" else "in_channels",
            shape if cfg.model == "mlp" else shape[0],
        )
        if cfg.model == "vit":
            args.setdefault("image_size", shape[1:])
            patch = tuple(args.get("patch", (7, 7)))
            if shape[1] % patch[0] or shape[2] % patch[1]:
                raise NNLabError(
                    f"patch {patch[0]}x{patch[1]} does not tile the "
                    f"{shape[1]}x{shape[2]} images of {cfg.data}"
                )
        args.setdefault("num_classes", self.num_classes)
        return model_config(cfg.model, **args)

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, y = batch  # (B, C, H, W), (B,)
        if self.cfg.augment and model.training:
            x = random_affine_torch(x)
        logits = model(x)  # (B, K)
        return StepOutput({"loss": F.cross_entropy(logits, y)}, logits, y)

    def metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {
                "acc": torchmetrics.classification.MulticlassAccuracy(
                    self.num_classes, average="micro"
                )
            }
        )

    def sample_labels(self, data: torch.utils.data.TensorDataset) -> torch.Tensor:
        return data.tensors[1]

    def finish(self, trainer, data, test) -> dict[str, Any]:
        model, sets = trainer.module, self.sets
        logits = predict(model, data["test"], device=trainer.device)
        pred, true = logits.argmax(1).numpy(), sets["test"].labels
        cm = confusion_matrix(pred, true, self.num_classes)
        run = trainer.run
        write_figures(run, sets["test"], pred, logits, cm, self.title())
        if self.cfg.model == "vit":
            for i in range(3):
                run.save_figure(f"attention_test{i}", explain_figure(model, sets["test"], i))
        first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if first_conv is not None:
            w = first_conv.weight.detach().cpu().numpy()  # (O, C, k, k)
            bank = gabor_bank(w.shape[-1]) if w.shape[-1] >= 5 else None
            run.save_figure(
                "first_layer_filters",
                filters_figure(w, bank, f"learnt {w.shape[-1]}x{w.shape[-1]} first-layer filters"),
            )
        return {
            "test_images": len(true),
            "most_confused": most_confused(cm, sets["test"].class_names),
            "confusion": cm.tolist(),
        }  # rows: true class, columns: predicted


def write_figures(
    run: RunDir,
    test: ImageSet,
    pred: np.ndarray,
    logits: torch.Tensor,
    cm: np.ndarray,
    title: str,
    max_wrong: int = 32,
) -> None:
    names = test.class_names
    run.save_figure("confusion", confusion_figure(cm, names, f"{title}: test confusion matrix"))
    wrong = np.flatnonzero(pred != test.labels)
    # most confident mistakes first: those are the instructive ones
    conf = torch.softmax(logits, 1).max(1).values.numpy()
    wrong = wrong[np.argsort(-conf[wrong])][:max_wrong]
    titles = [f"{names[test.labels[i]]}→{names[pred[i]]} ({conf[i]:.0%})" for i in wrong]
    run.save_figure(
        "misclassified",
        image_grid_figure(
            test.images[wrong],
            titles,
            cols=8,
            title=f"misclassified test images, true→predicted (confidence): {len(wrong)} shown",
        ),
    )


def explain_figure(model: nn.Module, data: ImageSet, index: int):
    """Attention maps of a ViT for image `index` of `data`: per layer and head, and the rollout."""
    from nnlab.viz.attention import attention_figure

    if not 0 <= index < len(data):
        raise NNLabError(f"image index {index} is outside 0..{len(data) - 1}")
    device = next(model.parameters()).device
    model.eval()
    x = torch.from_numpy(data.images[index : index + 1]).to(device)
    with torch.no_grad():
        logits, maps = model(x, return_attention=True)
    maps = [m[0].float().cpu().numpy() for m in maps]  # per layer (heads, N + 1, N + 1)
    pred = int(logits.argmax(1))
    names = data.class_names
    cfg = model.cfg
    title = (
        f"test image {index}: true {names[data.labels[index]]}, predicted {names[pred]}; "
        f"patches {cfg.patch[0]}x{cfg.patch[1]}, class-token attention"
    )
    return attention_figure(data.images[index, 0], maps, cfg.grid, cfg.patch, title)


def explain(run: RunDir, image: int, device: str = "auto"):
    """The attention figure of a ViT run for test image `image` (model rebuilt from the run)."""
    cfg = load_config(run, ClassifyTask)
    if cfg.model != "vit":
        raise NNLabError(f"{run.path} trained a {cfg.model}; attention maps need a ViT run")
    model = load_model(run, "best", device)
    test = load_splits(cfg.data, cfg.val_fraction, cfg.train.seed, cfg.limit)["test"]
    check_fits(run, model, test)
    return explain_figure(model, test, image)


def check_fits(run: RunDir, model: torch.nn.Module, data) -> None:
    """The run's model reads its data's images (a hand-edited config.json, or a checkpoint
    copied from another run, would otherwise end in a shape error deep in the model)."""
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.from_numpy(data.images[:1]).to(device))
    except RuntimeError as e:
        raise NNLabError(
            f"{run.path}: its model does not read the {data.images.shape[2]}x"
            f"{data.images.shape[3]} images of its config's data ({str(e).splitlines()[0]})"
        ) from None


def ink_attention(
    run: RunDir, threshold: float = 0.2, device: str = "auto", name: str = "ink_attention"
):
    """(result, table rows, figure) of `nnlab ink-attention` for a ViT run (its test split);
    the result goes into the run's summary under `name`."""
    from nnlab.tasks.ink_attention import ink_figure, ink_rows, ink_shares

    cfg = load_config(run, ClassifyTask)
    if cfg.model != "vit":
        raise NNLabError(f"{run.path} trained a {cfg.model}; attention needs a ViT run")
    model = load_model(run, "best", device)
    test = load_splits(cfg.data, cfg.val_fraction, cfg.train.seed, cfg.limit)["test"]
    check_fits(run, model, test)
    result, p = ink_shares(model, test, threshold), model.cfg.patch
    rows = ink_rows(result)
    run.save_summary(
        {
            **run.summary(),
            name: {
                "rows": rows,
                "rollout": result["rollout"],
                "inked": result["inked"],
                "images": result["images"],
                "threshold": threshold,
            },
        }
    )
    return result, rows, ink_figure(result, f"{cfg.data}, ViT {p[0]}x{p[1]} patches")


def run_classify(
    cfg: ClassifyConfig, run: RunDir, console=None, resume: bool = False
) -> dict[str, Any]:
    """Train (or resume) a classifier into `run` (the shared skeleton); return the summary."""
    return run_task(ClassifyTask(cfg, console), run, resume)
