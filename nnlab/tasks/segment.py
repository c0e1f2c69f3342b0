"""Binary segmentation (polyps in Kvasir-SEG, or any images/ + masks/ folder): U-Net or SegmentViT
trained by the shared loop on BCE + lambda * Dice; IoU and Dice per image; panels of the best,
a median and the worst test cases; prediction on new images; a two-model comparison."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchmetrics
from PIL import Image
from rich.console import Console
from torch import nn

from nnlab.config import from_dict, to_dict
from nnlab.data.augment import augment_pair_torch
from nnlab.data.segmentation import (
    SegmentationSet,
    image_header,
    kvasir_root,
    load_folder,
    read_image,
    unsquare,
)
from nnlab.data.splits import load_split, save_split, split_by_item
from nnlab.errors import NNLabError
from nnlab.io import atomic_open, atomic_write_json, claim_outputs
from nnlab.metrics.segmentation import PerImageScore, per_image_scores, segmentation_losses
from nnlab.models import model_config
from nnlab.run import ChildResult, RunDir, run_children
from nnlab.tasks.base import Task, load_config, load_model, run_task
from nnlab.train import StepOutput, TrainConfig, load_checkpoint
from nnlab.train.distributed import rank
from nnlab.viz import curves_figure
from nnlab.viz.attention import token_attention_figure
from nnlab.viz.segmentation import cases_figure, overlay, paired_scores_figure, score_vs_area_figure

SEG_MODELS = ("unet", "segvit")
FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test
MEAN, STD = 0.5, 0.25  # inputs in [0, 1] are mapped to about [-2, 2]

SEG_MODELS = ("unet", "segvit")
FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test
MEAN, STD = 0.5, 0.25  # inputs in [0, 1] are mapped to about [-2, 2]


@dataclass
class SegmentConfig:
    data: str = "kvasir"  # kvasir, or a folder holding images/ and masks/ (same names)
    model: str = "unet"  # unet or segvit
    model_args: dict[str, Any] = field(default_factory=dict)  # the model config's fields
    size: int = 256  # images are resized to size x size (128 for quick runs)
    aspect: str = "pad"  # pad (to a square, keeps the aspect ratio) | stretch
    lambda_dice: float = 1.0  # loss = lambda_bce x BCE + lambda_dice x Dice loss
    lambda_bce: float = 1.0  # 0: Dice loss alone
    augment: bool = True  # flips, small rotations and scaling (image and mask), colour jitter
    split_seed: int = 0  # seed of the 60/20/20 split, apart from the training seed: runs share it
    limit: int = 0  # > 0: use only N images of each split (quick runs, tests)
    init_from: str = ""  # a finished segmentation run: start from its best weights, on its split
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=8, lr=1e-3, warmup_epochs=1.0, monitor="val/dice", mode="max"
        )
    )

    def check(self) -> None:
        if self.size < 16:
            raise NNLabError(f"--size must be >= 16, got {self.size}")
        if self.aspect not in ("pad", "stretch"):
            raise NNLabError(f"--aspect must be pad or stretch, got '{self.aspect}'")
        if self.limit < 0:
            raise NNLabError(f"--limit must be >= 0, got {self.limit}")
        if self.lambda_dice < 0 or self.lambda_bce < 0 or not (self.lambda_dice or self.lambda_bce):
            raise NNLabError(
                f"--lambda-bce and --lambda-dice must be >= 0 and not both 0, got "
                f"{self.lambda_bce} and {self.lambda_dice}"
            )
        mcfg = resolved_model_config(self)
        depth = getattr(mcfg, "depth", None)
        if self.model == "unet" and depth is not None and self.size < 2 ** (depth + 1):
            # a 1x1 bottleneck: batch norm cannot train on a batch of one image there
            raise NNLabError(
                f"--size {self.size} is too small for a U-Net of depth {depth}: at least "
                f"{2 ** (depth + 1)} (its deepest level keeps 2x2 pixels), or a smaller -m depth"
            )
        data_root(self.data)


def model_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (or floats in [0, 1]) -> the normalised float input of the models."""
    if x.dtype == torch.uint8:
        x = x.float() / 255
    return (x - MEAN) / STD


class SegmentTask(Task):
    name, config_class, models = "segment", SegmentConfig, SEG_MODELS
    noun = "segmentation"
    summary_keys = (
        "model",
        "size",
        "parameters",
        "epochs",
        "best_epoch",
        "test/iou",
        "test/dice",
        "test/missed",
        "train_time_s",
    )

    def check(self, resume: bool = False) -> None:
        super().check(resume)
        if self.cfg.init_from and not resume:  # a resumed run no longer needs the source
            check_init_from(self.cfg)

    def run_name(self) -> str:
        return f"{self.cfg.model}-{Path(self.cfg.data).name}{self.cfg.size}"

    def title(self) -> str:
        return f"{self.cfg.model} on {Path(self.cfg.data).name} at {self.cfg.size} px"

    def datasets(self, run: RunDir, resume: bool):
        data = load_data(self.cfg, self.console)
        parts = make_split(run, data, self.cfg, resume)
        self.sets = {k: data.subset(parts[k]) for k in ("train", "val", "test")}
        return {k: v.tensors() for k, v in self.sets.items()}

    def model_config(self, train):
        return resolved_model_config(self.cfg)

    def init_weights(self, model: nn.Module) -> None:
        if self.cfg.init_from:
            load_checkpoint(Path(self.cfg.init_from) / "checkpoints" / "best.safetensors", model)

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, m = batch  # uint8 (B, 3, S, S), uint8 (B, 1, S, S)
        x, m = x.float() / 255, m.float()
        if self.cfg.augment and model.training:
            x, m = augment_pair_torch(x, m)
        logits = model(model_input(x))  # (B, 1, S, S)
        losses = segmentation_losses(logits, m, self.cfg.lambda_dice, self.cfg.lambda_bce)
        return StepOutput(losses, (logits.detach() > 0).long(), m.long())

    def metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {"iou": PerImageScore("iou"), "dice": PerImageScore("dice")}
        )

    def finish(self, trainer, data, test_metrics) -> dict[str, Any]:
        cfg, run, test, model = self.cfg, trainer.run, self.sets["test"], trainer.module
        pred = predict_masks(model, test.images, trainer.device)
        iou, dice = (
            s.numpy()
            for s in per_image_scores(torch.from_numpy(pred), torch.from_numpy(test.masks))
        )
        area = test.masks.reshape(len(test), -1).mean(1)
        cases = [
            {
                "name": n,
                "iou": float(i),
                "dice": float(d),
                "true_area": float(a),
                "pred_area": float(p.mean()),
            }
            for n, i, d, a, p in zip(test.names, iou, dice, area, pred)
        ]
        atomic_write_json(run.path / "test_cases.json", cases)
        chosen = choose_cases(iou)
        title = self.title()
        idx = [i for _, i in chosen]
        run.save_figure(
            "test_cases",
            cases_figure(
                test.images[idx],
                test.masks[idx],
                pred[idx],
                [f"{label}\n{test.names[i][:14]}\nIoU {iou[i]:.2f}" for label, i in chosen],
                f"{title}: test cases by IoU (best, median, worst)",
            ),
        )
        run.save_figure(
            "iou_vs_area",
            score_vs_area_figure(area, {cfg.model: iou}, "IoU", f"{title}: test IoU by polyp size"),
        )
        if cfg.model == "segvit":
            for label, i in chosen[:1] + chosen[-1:]:  # the best and the worst case
                run.save_figure(
                    f"attention_{label}", attention_figure(model, test, i, trainer.device)
                )
        return {
            "size": cfg.size,
            "test/iou": float(iou.mean()),
            "test/dice": float(dice.mean()),
            "test/iou_median": float(np.median(iou)),
            "test/dice_median": float(np.median(dice)),
            "test_images": len(test),
            "test/missed": int((iou < 0.1).sum()),  # not found
            "init_from": cfg.init_from or None,
            "test_table": [
                {
                    "case": label,
                    "image": test.names[i],
                    "iou": float(iou[i]),
                    "dice": float(dice[i]),
                    "true area": float(area[i]),
                }
                for label, i in chosen
            ],
        }


def run_segment(
    cfg: SegmentConfig, run: RunDir, console: Console | None = None, resume: bool = False
) -> dict[str, Any]:
    """Train (or resume) a segmenter into `run` (the shared skeleton); return the summary."""
    return run_task(SegmentTask(cfg, console), run, resume)


# ---- data --------------------------------------------------------------------------------------
def data_root(data: str) -> Path:
    if data == "kvasir":
        return kvasir_root()
    path = Path(data).expanduser()
    if not path.is_dir():
        raise NNLabError(
            f"--data must be kvasir or a folder holding images/ and masks/, got '{data}'"
        )
    return path


def load_data(cfg: SegmentConfig, console: Console | None = None) -> SegmentationSet:
    root = data_root(cfg.data)
    if console is None:
        return load_folder(root, cfg.size, cfg.aspect)
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"reading {root} at {cfg.size} px", total=None)
        data = load_folder(
            root,
            cfg.size,
            cfg.aspect,
            progress=lambda i, n: progress.update(bar, completed=i, total=n),
        )
    return data


def make_split(
    run: RunDir, data: SegmentationSet, cfg: SegmentConfig, resume: bool
) -> dict[str, np.ndarray]:
    """The split by image name: read back on resume, taken from the run given by init_from (so a
    run that continues another never tests on images the other trained on), or made from
    split_seed; saved to split.json, which refuses a dataset that changed since."""
    path = run.path / "split.json"
    if resume and path.exists():
        return load_split(path, data.names)
    if cfg.init_from:
        parts = load_split(Path(cfg.init_from) / "split.json", data.names)
        how = {"method": "from run", "init_from": str(cfg.init_from)}
    else:
        if len(data) < 5:
            raise NNLabError(
                f"{cfg.data}: {len(data)} image/mask pairs; need at least 5 for a 60/20/20 split"
            )
        parts = split_by_item(len(data), FRACTIONS, cfg.split_seed)
        if cfg.limit:
            parts = {k: v[: cfg.limit] for k, v in parts.items()}
        how = {
            "method": "by item",
            "seed": cfg.split_seed,
            "fractions": FRACTIONS,
            "limit": cfg.limit,
        }
    if rank() == 0:  # under torchrun every rank computes the same split; one writes it
        save_split(path, parts, data.names, **how)
    return parts


def check_init_from(cfg: SegmentConfig) -> None:
    """The run named by init_from finished, trained the same model, and has a split."""
    source = RunDir.open(cfg.init_from)
    src = load_config(source, SegmentTask)
    mcfg = to_dict(resolved_model_config(cfg))
    src_mcfg = to_dict(resolved_model_config(src))
    if src.model != cfg.model or src_mcfg != mcfg:
        diff = [f"{k} {src_mcfg.get(k)} vs {v}" for k, v in mcfg.items() if src_mcfg.get(k) != v]
        what = f"a {src.model}" + (
            f" ({', '.join(diff)})" if src.model == cfg.model and diff else ""
        )
        raise NNLabError(
            f"{source.path} trained {what}; --init-from needs the same model and model options"
        )
    for name in ("checkpoints/best.safetensors", "split.json"):
        if not (source.path / name).is_file():
            raise NNLabError(f"{source.path}: no {name} (the run has not finished an epoch)")


def resolved_model_config(cfg: SegmentConfig):
    if cfg.model not in SEG_MODELS:
        raise NNLabError(
            f"unknown segmentation model '{cfg.model}' (known: {', '.join(SEG_MODELS)})"
        )
    args = dict(cfg.model_args)
    if cfg.model == "unet":
        mcfg = model_config("unet", **args)
        if cfg.size % 2**mcfg.depth:
            raise NNLabError(
                f"U-Net of depth {mcfg.depth} needs a size divisible by {2**mcfg.depth}, "
                f"got {cfg.size}"
            )
        return mcfg
    args.setdefault("image_size", cfg.size)
    mcfg = model_config("segvit", **args)
    if mcfg.image_size != cfg.size or cfg.size % mcfg.patch or mcfg.patch & (mcfg.patch - 1):
        raise NNLabError(
            f"SegmentViT patch {mcfg.patch} must be a power of two dividing the size {cfg.size}"
        )
    return mcfg


# ---- figures and prediction --------------------------------------------------------------------
def attention_figure(model: nn.Module, data: SegmentationSet, index: int, device: torch.device):
    """SegmentViT on test image `index`: the attention its polyp patches pay, layer by layer."""
    cfg = model.cfg
    x = torch.from_numpy(data.images[index : index + 1]).to(device)
    model.eval()
    with torch.no_grad():
        _, maps = model(model_input(x), return_attention=True)
    maps = [m[0].float().cpu().numpy() for m in maps]
    g, p = cfg.grid, cfg.patch
    cover = data.masks[index, 0].reshape(g, p, g, p).mean(axis=(1, 3))  # polyp share of every patch
    query = cover >= 0.5
    if not query.any():
        query = cover >= cover.max()
    return token_attention_figure(
        data.images[index],
        maps,
        g,
        p,
        query,
        f"{data.names[index]}: attention paid by the polyp's patches "
        f"(head mean), {g}x{g} tokens of {p}x{p} px",
    )


def choose_cases(iou: np.ndarray, k: int = 2) -> list[tuple[str, int]]:
    """k best, k around the median and k worst test images by IoU: (label, index)."""
    order = np.argsort(-iou, kind="stable")
    n = len(order)
    k = max(1, min(k, n // 3 or 1))
    mid = max(0, n // 2 - k // 2)
    picks = (
        [("best", i) for i in order[:k]]
        + [("median", i) for i in order[mid : mid + k]]
        + [("worst", i) for i in order[n - k :]]
    )
    seen, out = set(), []
    for label, i in picks:
        if i not in seen:
            seen.add(i)
            out.append((label, int(i)))
    return out


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: np.ndarray, device: torch.device | None = None, batch_size: int = 16
) -> np.ndarray:
    """Mask logits (N, 1, S, S) float32 for uint8 images (N, 3, S, S)."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i : i + batch_size]).to(device)
        out.append(model(model_input(x)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 1), np.float32)


def predict_masks(
    model: nn.Module, images: np.ndarray, device: torch.device | None = None
) -> np.ndarray:
    return (predict_logits(model, images, device) > 0).astype(np.uint8)


# ---- a trained run -----------------------------------------------------------------------------
def load_segmenter(run: RunDir, device: str = "auto") -> tuple[SegmentConfig, nn.Module]:
    return load_config(run, SegmentTask), load_model(run, "best", device)


def explain_test_image(
    run: RunDir, index: int | None = None, device: str = "auto", overwrite: bool = False
) -> Path:
    """The attention figure of a SegmentViT run for test image `index` (default: the best and
    the worst test case, as the run's report has them); returns the path of the last figure."""
    cfg, model = load_segmenter(run, device)
    if cfg.model != "segvit":
        raise NNLabError(f"{run.path} trained a {cfg.model}; attention maps need a segvit run")
    data = load_data(cfg)
    parts = make_split(run, data, cfg, resume=True)
    test = data.subset(parts["test"])
    dev = next(model.parameters()).device
    if index is None:
        iou = (
            np.array([c["iou"] for c in read_cases(run)])
            if (run.path / "test_cases.json").exists()
            else np.zeros(len(test))
        )
        chosen = choose_cases(iou)
        picks = [(f"attention_{label}", i) for label, i in chosen[:1] + chosen[-1:]]
    else:
        if not 0 <= index < len(test):
            raise NNLabError(f"test image index {index} is outside 0..{len(test) - 1}")
        picks = [(f"attention_test{index}", index)]
    claim_outputs([run.figure_dir / f"{name}.png" for name, _ in picks], overwrite)
    for name, i in picks:
        path = run.save_figure(name, attention_figure(model, test, i, dev))
    return path


def output_stems(paths: list[Path]) -> list[str]:
    """Names for the outputs of `paths` that never collide: the file's stem; where stems collide,
    the extension too (a.jpg, a.png -> a_jpg, a_png); where that is not enough, the parent folders
    (x/a.jpg, y/a.jpg -> x_a_jpg, y_a_jpg)."""
    resolved = [Path(p).resolve() for p in paths]
    twice = [p for p in resolved if resolved.count(p) > 1]
    if twice:
        raise NNLabError(f"{twice[0]}: given twice")

    def name(p: Path, level: int) -> str:
        if level == 0:
            return p.stem
        label = f"{p.stem}_{p.suffix.lstrip('.')}" if p.suffix else p.stem
        return "_".join([q.name for q in p.parents][: level - 1][::-1] + [label])

    names = [name(p, 0) for p in resolved]
    level = 0
    while len(set(names)) < len(names):
        level += 1
        clash = {n for n in names if names.count(n) > 1}
        names = [name(p, level) if n in clash else n for p, n in zip(resolved, names)]
    return names


def predict_files(
    run: RunDir, images: list[Path], out: Path, device: str = "auto", overwrite: bool = False
) -> list[dict[str, Any]]:
    """Segment each image file: write NAME_mask.png (0/255, the image's own size) and
    NAME_overlay.png into `out` (names that never collide, see `output_stems`); an existing file
    is replaced only with `overwrite`. Returns one row per image."""
    cfg, model = load_segmenter(run, device)
    stems = output_stems(images)
    targets = [(out / f"{s}_mask.png", out / f"{s}_overlay.png") for s in stems]
    claim_outputs([p for pair in targets for p in pair], overwrite)
    for path in images:  # an unreadable one said before any mask is written (a rerun without it
        image_header(path)  # would otherwise find the others' outputs and need --overwrite)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, (mask_path, overlay_path) in zip(images, targets):
        square, view, size = read_image(path, cfg.size, cfg.aspect)
        prob = 1 / (1 + np.exp(-predict_logits(model, square[None])[0, 0]))
        mask = unsquare(prob > 0.5, size, cfg.aspect)
        save_png(mask_path, mask.astype(np.uint8) * 255)
        area = float(mask.mean())
        if view.shape[:2] != mask.shape:  # a large image is drawn on reduced
            mask = unsquare(prob > 0.5, (view.shape[1], view.shape[0]), cfg.aspect)
        save_png(overlay_path, overlay(view, mask))
        rows.append(
            {
                "image": path.name,
                "polyp area": area,
                "mean confidence": float(np.where(prob > 0.5, prob, 1 - prob).mean()),
                "mask": str(mask_path),
                "overlay": str(overlay_path),
            }
        )
    return rows


def save_png(path: Path, array: np.ndarray) -> None:
    with atomic_open(path) as f:
        Image.fromarray(array).save(f, format="PNG")


# ---- comparison --------------------------------------------------------------------------------
def run_compare(
    base: SegmentConfig,
    run: RunDir,
    models: tuple[str, ...] = SEG_MODELS,
    model_args: dict[str, dict[str, Any]] | None = None,
    console: Console | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train each model with the same data, split, epochs, optimiser and seed (child runs), then
    write a side-by-side table and a paragraph of observations generated from the figures. With
    `resume`, the models that finished are kept and the others trained (a half-trained one
    again from its start)."""
    model_args = model_args or {}
    if not resume:
        run.save_config(
            {
                "task": "segment-compare",
                "models": list(models),
                **to_dict(base),
                "per_model_args": model_args,
            }
        )
    kept = {  # resumed: the models that finished before are kept, a half-trained one redone
        name: RunDir(run.path / name)
        for name in models
        if resume and (run.path / name / "summary.json").exists()
    }
    for name in models:
        if name not in kept and (run.path / name).exists():
            shutil.rmtree(run.path / name)
    jobs = {
        name: (
            lambda child, name=name: run_segment(
                dataclasses.replace(base, model=name, model_args=dict(model_args.get(name, {}))),
                child,
                console,
            )
        )
        for name in models
        if name not in kept
    }
    results = run_children(run, jobs, console)
    for name, child in kept.items():  # a kept model's wall time: its training time
        s = child.summary()
        results[name] = ChildResult(s, child.metrics(), s["train_time_s"])
    results = {name: results[name] for name in models}
    rows = [
        {
            "model": name,
            "parameters": s["parameters"],
            "test IoU": s["test/iou"],
            "test Dice": s["test/dice"],
            "missed (IoU<0.1)": s["test/missed"],
            "epochs": s["epochs"],
            "train time (s)": s["train_time_s"],
            "s / epoch": s["train_time_s"] / max(1, s["epochs"]),
            "wall time (s)": r.wall_s,
        }
        for name, r in results.items()
        for s in [r.summary]
    ]
    cases = {name: read_cases(RunDir(run.path / name)) for name in models}
    summary = {"models": rows, "observations": observations(rows, cases) + "\n"}
    run.save_summary(summary)
    run.save_figure(
        "curves",
        curves_figure(
            {n: r.history for n, r in results.items()}, f"{' vs '.join(models)} at {base.size} px"
        ),
    )
    if len(models) == 2:
        a, b = (np.array([c["iou"] for c in cases[m]]) for m in models)
        run.save_figure(
            "paired_iou",
            paired_scores_figure(a, b, models, "IoU", "test IoU per image, same images"),
        )
        area = np.array([c["true_area"] for c in cases[models[0]]])
        run.save_figure(
            "iou_vs_area",
            score_vs_area_figure(
                area, {m: np.array([c["iou"] for c in cases[m]]) for m in models}, "IoU"
            ),
        )
    return summary


def read_cases(run: RunDir) -> list[dict[str, Any]]:
    return json.loads((run.path / "test_cases.json").read_text())


def observations(rows: list[dict[str, Any]], cases: dict[str, list[dict[str, Any]]]) -> str:
    """A short paragraph of what the numbers say, written from the numbers."""
    if len(rows) < 2:
        r = rows[0]
        return f"{r['model']}: test Dice {r['test Dice']:.3f}, IoU {r['test IoU']:.3f}."
    by_dice = sorted(rows, key=lambda r: -r["test Dice"])
    win, lose = by_dice[0], by_dice[-1]
    sentences = [
        f"{win['model']} reaches a test Dice of {win['test Dice']:.3f} (IoU {win['test IoU']:.3f}) "
        f"against {lose['test Dice']:.3f} ({lose['test IoU']:.3f}) for {lose['model']}, "
        f"with the same split, epochs and optimiser."
    ]
    ratio = win["parameters"] / lose["parameters"]
    sentences.append(
        f"It has {ratio:.2f}x the parameters ({win['parameters']:,} vs {lose['parameters']:,}) "
        f"and took {win['s / epoch'] / lose['s / epoch']:.2f}x the time per epoch."
    )
    sentences += paired_observations(win["model"], cases[win["model"]], cases[lose["model"]])
    missed = {r["model"]: r["missed (IoU<0.1)"] for r in rows}
    sentences.append(
        "Polyps essentially missed (IoU < 0.1): "
        + ", ".join(f"{m} {k}" for m, k in missed.items())
        + "."
    )
    return " ".join(sentences)


def paired_observations(
    name: str, cases: list[dict[str, Any]], other: list[dict[str, Any]]
) -> list[str]:
    """Per-image comparison of two runs' test_cases.json on the same test images (matched by name):
    how often `name` wins, and mean IoU on the smallest and largest third of polyps."""
    theirs = {c["name"]: c["iou"] for c in other}
    if set(theirs) != {c["name"] for c in cases}:
        raise NNLabError(
            "the two runs were tested on different images; compare runs that share a split"
        )
    wi = np.array([c["iou"] for c in cases])
    li = np.array([theirs[c["name"]] for c in cases])
    area = np.array([c["true_area"] for c in cases])
    small = area <= np.quantile(area, 1 / 3)
    large = area >= np.quantile(area, 2 / 3)
    return [
        f"Per image, {name} is better on {(wi > li).mean():.0%} of the {len(wi)} test images.",
        f"On the smallest third of polyps (area <= {np.quantile(area, 1 / 3):.1%} of the image) "
        f"mean IoU is {wi[small].mean():.3f} vs {li[small].mean():.3f}; on the largest third "
        f"{wi[large].mean():.3f} vs {li[large].mean():.3f}.",
    ]


class SegmentCompare:
    """`nnlab segment compare` for the shared launcher: several models, one split and budget."""

    name, distributed, verb = "segment-compare", False, "compare"

    def __init__(
        self,
        base: SegmentConfig,
        models: tuple[str, ...],
        per_model: dict[str, dict[str, Any]],
        console: Console | None = None,
    ):
        self.base, self.models, self.console = base, models, console
        self.per_model = {m: per_model.get(m, {}) for m in models}

    def check(self, resume: bool = False) -> None:
        unknown = [m for m in self.models if m not in SEG_MODELS]
        if not self.models or unknown or len(set(self.models)) != len(self.models):
            raise NNLabError(
                f"--models expects distinct names from {', '.join(SEG_MODELS)}, "
                f"got '{','.join(self.models)}'"
            )
        for m in self.models:
            SegmentTask(
                dataclasses.replace(self.base, model=m, model_args=self.per_model[m])
            ).check()

    def run_name(self) -> str:
        return f"compare-{Path(self.base.data).name}{self.base.size}"

    def execute(self, run: RunDir, resume: bool = False) -> dict[str, Any]:
        return run_compare(self.base, run, self.models, self.per_model, self.console, resume)

    @classmethod
    def from_run(cls, run: RunDir, console: Console | None = None) -> SegmentCompare:
        """The comparison a run was started as (`--resume`)."""
        raw = run.config()
        if raw.get("task") != "segment-compare":
            raise NNLabError(
                f"{run.path}: not a segmentation comparison (task {raw.get('task')!r})"
            )
        fields = {f.name for f in dataclasses.fields(SegmentConfig)}
        try:
            base = from_dict(SegmentConfig, {k: v for k, v in raw.items() if k in fields})
        except (TypeError, ValueError, AttributeError) as e:
            raise NNLabError(f"{run.config_path}: a value nnlab cannot read ({e})") from None
        return cls(base, tuple(raw.get("models", ())), raw.get("per_model_args", {}), console)
