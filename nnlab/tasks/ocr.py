"""Handwriting OCR: train the 36-class character classifier (a PyTorch CNN through the shared loop,
or the NumPy engine's MLP through its trainer), and the work behind `nnlab ocr read | eval |
compose`: find a trained model, read pages with it, score them against their truth, and compose
pages from the held-out characters of a run's split.

The data is `nnlab.data.ocr_chars` (NIST letters, MNIST digits, Chars74K, one canonical form);
the split is saved by item name to the run's split.json, and `compose` takes its test part, so
pages made for evaluation never show a character the model trained on.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from nnlab.config import to_dict
from nnlab.data.ocr_chars import (
    CLASS_NAMES,
    DATA,
    CharSet,
    CharSource,
    augment_chars,
    augment_chars_torch,
    class_counts,
    load_char_set,
    split_char_set,
    split_how,
)
from nnlab.data.splits import load_split, save_split
from nnlab.errors import NNLabError
from nnlab.metrics.classification import confusion_matrix, most_confused
from nnlab.metrics.ocr import cer_report
from nnlab.models import model_config
from nnlab.run import RunDir
from nnlab.tasks.base import Task, load_config, load_model, run_task
from nnlab.train import StepOutput, TrainConfig, predict
from nnlab.train.distributed import rank
from nnlab.viz import confusion_figure, curves_figure, image_grid_figure

MODELS = ("cnn", "numpy-mlp")
RECOGNIZERS = ("chars", "ctc")
CNN_DEFAULTS = {"channels": (16, 32, 64), "dropout": 0.1}  # 3 blocks: 32 -> 4 px, then pooled
MLP_DEFAULTS = {"hidden": (512, 256), "activation": "relu"}
MODEL_ENV = "NNLAB_OCR_MODEL"  # a character model run to use when --model is not given
CTC_ENV = "NNLAB_OCR_CTC_MODEL"  # the same for the CTC line reader


@dataclass
class OCRConfig:
    data: str = "combined"  # combined (NIST letters, MNIST digits, Chars74K) | nist (NIST36 files)
    model: str = "cnn"  # cnn (PyTorch, the shared loop) | numpy-mlp (the NumPy engine)
    # the model's options: cnn -> CNNConfig fields (channels, dropout, ...); numpy-mlp -> hidden
    # (layer widths) and activation
    model_args: dict[str, Any] = field(default_factory=dict)
    mnist_per_class: int = 50  # MNIST digits drawn per class (combined)
    per_class: int = 0  # > 0: at most N NIST images per class (quick runs)
    chars74k_writers: int = 0  # > 0: only Chars74K writers 1..N (quick runs)
    val_fraction: float = 0.1  # of every source (by writer for Chars74K)
    test_fraction: float = 0.2  # held out of every source; `nnlab ocr compose` draws pages from it
    split_seed: int = 0  # seeds the held-out parts and the MNIST draw
    augment: bool = True  # elastic, affine and stroke-width changes of every training image
    copies: int = 4  # numpy-mlp: augmented copies of the training set added before training
    sgd_lr: float = 0.05  # numpy-mlp: the SGD learning rate (the CNN uses --lr)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=64, lr=3e-3, monitor="val/acc", mode="max"
        )
    )

    def source(self) -> CharSource:
        return CharSource(
            self.data, self.mnist_per_class, self.per_class, self.chars74k_writers, self.split_seed
        )

    def check(self) -> None:
        if self.data not in DATA:
            raise NNLabError(f"--data must be combined or nist, got '{self.data}'")
        self.source().check()
        if not (0 < self.val_fraction and 0 < self.test_fraction):
            raise NNLabError("--val-fraction and --test-fraction must be > 0")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise NNLabError("--val-fraction + --test-fraction must stay below 0.8")
        if self.copies < 0 or not self.sgd_lr > 0:
            raise NNLabError("--copies must be >= 0 and --sgd-lr > 0")
        if self.model == "cnn":
            model_config("cnn", **{**CNN_DEFAULTS, **self.model_args})
        elif self.model == "numpy-mlp":
            unknown = set(self.model_args) - set(MLP_DEFAULTS)
            if unknown:
                raise NNLabError(
                    f"numpy-mlp has no option(s) {sorted(unknown)} (has {sorted(MLP_DEFAULTS)})"
                )


class OCRTask(Task):
    """The character classifier. A CNN trains through the shared loop (`run_task`); the NumPy MLP
    through the NumPy engine's trainer (`run_numpy_ocr`): same data, split and run directory."""

    name, config_class, models = "ocr", OCRConfig, MODELS
    noun = "OCR character model"
    summary_keys = (
        "model",
        "data",
        "parameters",
        "epochs",
        "best_epoch",
        "test/acc",
        "train_time_s",
    )

    def __init__(self, cfg: OCRConfig, console=None):
        super().__init__(cfg, console)
        self.distributed = cfg.model == "cnn"

    def run_name(self) -> str:
        return f"ocr-{self.cfg.model}-{self.cfg.data}"

    def execute(self, run: RunDir, resume: bool = False) -> dict[str, Any]:
        if self.cfg.model == "numpy-mlp":
            return run_numpy_ocr(self, run, resume)
        return run_task(self, run, resume)

    # ---- data -------------------------------------------------------------------------------
    def load_sets(self, run: RunDir | None, resume: bool = False) -> None:
        """self.chars (the canonical set), self.parts (indices), self.sets (ImageSets)."""
        cfg = self.cfg
        self.chars = load_char_set(cfg.source(), say=self.say)
        self.parts = make_split(run, self.chars, cfg, resume)
        self.sets = {k: self.chars.image_set(v) for k, v in self.parts.items()}
        counts = class_counts(self.chars, self.parts["train"])
        each = [f"{s} {c['letters']} letters + {c['digits']} digits" for s, c in counts.items()]
        self.say("training characters: " + ", ".join(each))

    def datasets(self, run: RunDir, resume: bool) -> dict[str, torch.utils.data.Dataset]:
        self.load_sets(run, resume)
        return {k: v.tensors() for k, v in self.sets.items()}

    def model_config(self, train):
        return model_config(
            "cnn", **{**CNN_DEFAULTS, **self.cfg.model_args, "in_channels": 1, "num_classes": 36}
        )

    # ---- training ---------------------------------------------------------------------------
    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, y = batch  # (B, 1, 32, 32), (B,)
        if self.cfg.augment and model.training:
            x = augment_chars_torch(x)
        logits = model(x)  # (B, 36)
        return StepOutput({"loss": F.cross_entropy(logits, y)}, logits, y)

    def metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {"acc": torchmetrics.classification.MulticlassAccuracy(36, average="micro")}
        )

    def sample_labels(self, data: torch.utils.data.TensorDataset) -> torch.Tensor:
        return data.tensors[1]

    def finish(self, trainer, data, test) -> dict[str, Any]:
        logits = predict(trainer.module, data["test"], device=trainer.device)
        pred = logits.argmax(1).numpy()
        return report(self, trainer.run, pred, torch.softmax(logits, 1).numpy())


def make_split(
    run: RunDir | None, chars: CharSet, cfg: OCRConfig, resume: bool
) -> dict[str, np.ndarray]:
    """The parts by item name: read back from split.json on resume, else made per source
    (`split_char_set`) and saved there."""
    path = run.path / "split.json" if run is not None else None
    if resume and path is not None and path.exists():
        return load_split(path, chars.names)
    parts = split_char_set(chars, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    if path is not None and rank() == 0:
        how = split_how(cfg.val_fraction, cfg.test_fraction, cfg.split_seed, cfg.source())
        save_split(path, parts, chars.names, **how)
    return parts


def report(task: OCRTask, run: RunDir, pred: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Figures (confusion, misclassified, training samples) and summary entries of a trained
    classifier's test predictions; shared by both engines."""
    chars, test = task.chars, task.parts["test"]
    true = chars.labels[test]
    cm = confusion_matrix(pred, true, 36)
    title = f"{task.cfg.model} on {task.cfg.data}"
    run.save_figure("confusion", confusion_figure(cm, CLASS_NAMES, f"{title}: test confusion"))
    conf = probs.max(1)
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-conf[wrong])][:16]  # confident mistakes first
    run.save_figure(
        "misclassified",
        image_grid_figure(
            chars.images[test][wrong],
            [f"{CLASS_NAMES[true[i]]}→{CLASS_NAMES[pred[i]]} ({conf[i]:.0%})" for i in wrong],
            cols=8,
            title=f"misclassified test characters, true→predicted: {len(wrong)} shown",
        ),
    )
    run.save_figure("training_samples", samples_figure(chars, task.parts["train"]))
    by_source = {
        s: float((pred[chars.sources[test] == s] == true[chars.sources[test] == s]).mean())
        for s in np.unique(chars.sources[test]).tolist()
    }
    return {
        "test_images": len(test),
        "test/acc_by_source": by_source,
        "most_confused": most_confused(cm, CLASS_NAMES, 8),
        "confusion": cm.tolist(),
        "class_names": CLASS_NAMES,
    }


def samples_figure(chars: CharSet, train: np.ndarray, n: int = 12):
    """Per source, a row of canonical training characters and the same characters augmented,
    drawn as one mosaic (one image: a grid of small axes is slow to draw)."""
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    rows, labels = [], []
    for s in np.unique(chars.sources[train]).tolist():
        idx = rng.choice(train[chars.sources[train] == s], n, replace=True)
        x = chars.images[idx][:, None]  # (n, 1, 32, 32)
        rows += [x[:, 0], augment_chars(x, rng)[:, 0]]
        labels += [f"{s}: " + " ".join(CLASS_NAMES[y] for y in chars.labels[idx]), "augmented"]
    tiles = np.pad(np.stack(rows), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.3)
    R, N, h, w = tiles.shape
    mosaic = tiles.transpose(0, 2, 1, 3).reshape(R * h, N * w)  # rows of tiles side by side
    fig = Figure(figsize=(0.5 * N + 2.5, 0.5 * R + 0.6))
    ax = fig.subplots()
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(np.arange(R) * h + h / 2, labels, fontsize=7)
    ax.set_xticks([])
    ax.set_title("canonical training characters and augmented versions", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- NumPy engine


def numpy_config(cfg: OCRConfig):
    """The NumPy trainer's config for the OCR config (epochs, batch, seed and the schedule come
    from --epochs, --batch-size, --seed, --lr-schedule; the learning rate from --sgd-lr)."""
    from nnlab.tasks.numpy_classify import NumpyClassifyConfig

    args = {**MLP_DEFAULTS, **cfg.model_args}
    t = cfg.train
    return NumpyClassifyConfig(
        data="ocr",
        arch="mlp",
        hidden=tuple(args["hidden"]),
        activation=args["activation"],
        epochs=t.epochs,
        batch_size=t.batch_size,
        lr=cfg.sgd_lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        schedule="constant" if t.lr_schedule == "constant" else "cosine",
        augment=cfg.augment,
        monitor="val/acc",
        mode="max",
        seed=t.seed,
    )


def run_numpy_ocr(task: OCRTask, run: RunDir, resume: bool = False) -> dict[str, Any]:
    """Train the NumPy MLP: the same data and split as the CNN; `copies` augmented copies of the
    training set (elastic, affine, stroke width) are added once, and the trainer's own random
    affine transform is drawn every epoch on top (--augment)."""
    from nnlab.data import ImageSet
    from nnlab.numpy_nn import mlp
    from nnlab.train.numpy_loop import NumpyTrainer

    cfg = task.cfg
    ncfg = numpy_config(cfg)
    ncfg.validate()
    task.load_sets(run, resume)
    train = task.sets["train"]
    if cfg.augment and cfg.copies:
        rng = np.random.default_rng([cfg.train.seed, 7])
        extra = [augment_chars(train.images, rng) for _ in range(cfg.copies)]
        train = ImageSet(
            np.concatenate([train.images, *extra]),
            np.tile(train.labels, cfg.copies + 1),
            train.class_names,
        )
    sizes = [32 * 32, *ncfg.hidden, 36]
    net = mlp(sizes, ncfg.activation, None, seed=ncfg.seed)
    meta = {"name": "numpy-mlp", "config": {"sizes": sizes, "activation": ncfg.activation}}
    trainer = NumpyTrainer(net, ncfg, 36, run, task.console, model_meta=meta)
    if resume:
        task.say(f"resuming {run.path} after epoch {trainer.resume()}")
    else:
        run.save_config({"task": task.name, **to_dict(cfg)})
    task.say(
        f"numpy-mlp {'-'.join(map(str, sizes))}: "
        + " / ".join(f"{len(v)} {k}" for k, v in {**task.sets, "train": train}.items())
    )
    trainer.fit(train, task.sets["val"])
    trainer.load(run.checkpoint_dir / "best.safetensors")
    test = trainer.evaluate(task.sets["test"])
    logits = trainer.predict(task.sets["test"].images)
    from nnlab.ocr.recognize import softmax

    summary = {
        "task": task.name,
        "data": cfg.data,
        "model": cfg.model,
        "parameters": int(sum(p.data.size for p in net.parameters())),
        "epochs": len(trainer.history),
        "best_epoch": trainer.best_epoch,
        "test/acc": test["acc"],
        "test/loss": test["loss"],
        "train_time_s": sum(r["time/epoch_s"] for r in trainer.history),
    }
    summary.update(report(task, run, logits.argmax(1), softmax(logits)))
    run.save_summary(summary)
    run.save_figure("curves", curves_figure(trainer.history, f"numpy-mlp on {cfg.data}"))
    return summary


# ----------------------------------------------------------------------------- trained models


def find_model(model: str | Path | None = None, recognizer: str = "chars") -> Path:
    """The run directory to read with: `model` when given; else $NNLAB_OCR_MODEL (for ctc
    $NNLAB_OCR_CTC_MODEL); else the newest finished run under ./runs of that kind. A clear
    error, saying how to train one, when there is none."""
    if recognizer not in RECOGNIZERS:
        raise NNLabError(f"--recognizer must be chars or ctc, got '{recognizer}'")
    if model is not None:
        run = RunDir.open(model)
        if not (run.checkpoint_dir / "best.safetensors").is_file():
            raise NNLabError(f"{run.path}: no best checkpoint (the run has not finished an epoch)")
        return run.path
    env = os.environ.get(CTC_ENV if recognizer == "ctc" else MODEL_ENV)
    if env:
        return find_model(env, recognizer)
    runs = Path("runs")
    found = []
    for p in runs.glob("*/config.json") if runs.is_dir() else []:
        try:
            task = str(RunDir(p.parent).config().get("task", ""))
        except NNLabError:
            continue
        wanted = "ctc" in task if recognizer == "ctc" else task == OCRTask.name
        if wanted and (p.parent / "checkpoints" / "best.safetensors").is_file():
            found.append(p.parent)
    if found:
        return max(found, key=lambda p: (p.stat().st_mtime, p.name))
    if recognizer == "ctc":
        raise NNLabError(
            f"no CTC line model found under ./runs; pass --model RUN_DIR or set {CTC_ENV}"
        )
    raise NNLabError(
        "no OCR model found under ./runs; train one with `nnlab ocr train` (a CNN, a few "
        f"minutes on a CPU), or pass --model RUN_DIR, or set {MODEL_ENV}"
    )


def load_classifier(model: str | Path, device: str = "cpu"):
    """The character classifier of an `nnlab ocr train` run (best checkpoint), CNN or NumPy."""
    from nnlab.ocr.recognize import NumpyCharClassifier, TorchCharClassifier

    run = RunDir.open(model)
    cfg = load_config(run, OCRTask)
    if cfg.model == "numpy-mlp":
        from nnlab.numpy_nn import mlp
        from nnlab.train.core import prefixed, read_checkpoint

        path = run.checkpoint_dir / "best.safetensors"
        tensors, meta = read_checkpoint(path, "np")
        info = meta.get("model", {}).get("config", {})
        if "sizes" not in info:
            raise NNLabError(f"{path}: not a numpy-mlp checkpoint of nnlab ocr train")
        net = mlp(info["sizes"], info.get("activation", "relu"))
        try:
            net.load_state_dict(prefixed(tensors, "model."))
        except (ValueError, KeyError) as e:
            raise NNLabError(f"{path}: checkpoint does not fit the network ({e})") from None
        return NumpyCharClassifier(net, CLASS_NAMES)
    return TorchCharClassifier(load_model(run, "best", device), CLASS_NAMES)


def ctc_module():
    """nnlab.tasks.ocr_ctc (the CTC line recogniser's task and reader), or a clear error while
    it is not there."""
    try:
        from nnlab.tasks import ocr_ctc
    except ImportError:
        raise NNLabError(
            "the CTC line recogniser is not available in this nnlab (no nnlab.tasks.ocr_ctc); "
            "use --recognizer chars"
        ) from None
    if not all(hasattr(ocr_ctc, f) for f in ("load_line_reader", "read_lines")):
        raise NNLabError(
            "nnlab.tasks.ocr_ctc has no load_line_reader/read_lines yet; use --recognizer chars"
        )
    return ocr_ctc


# ----------------------------------------------------------------------------- reading pages


@dataclass
class Reader:
    """A loaded recognizer: reads page images (arrays or paths) into PageReadings."""

    recognizer: str
    model: Path
    classifier: Any = None  # chars: a CharClassifier
    line_reader: Any = None  # ctc: nnlab.tasks.ocr_ctc's LineReader
    low_confidence: float = 0.8

    def read(self, image, analysis=None, cfg=None):
        """The page read by this reader; `cfg`: a ReadConfig (default: the defaults with this
        reader's low_confidence); `analysis`: the page's `analyse_page` when the caller has it.
        An unsure reading has the page's other ways up read too (`nnlab.ocr.read.read_turned`;
        `ReadConfig.turn_below=0` switches that off)."""
        from nnlab.ocr.read import ReadConfig, read_turned

        cfg = cfg or ReadConfig(low_confidence=self.low_confidence)
        return read_turned(image, lambda im, an: self._read(im, an, cfg), cfg, analysis)

    def _read(self, image, analysis, cfg):
        from nnlab.ocr.ctc import line_images
        from nnlab.ocr.read import read_page, read_page_lines

        if self.recognizer == "ctc":
            ctc = ctc_module()
            return read_page_lines(
                image,
                lambda im, an, lines: line_images(im, an, lines, level=cfg.level_lines),
                lambda images: ctc.read_lines(
                    self.line_reader, images, beam=cfg.beam, switch=cfg.switch
                ),
                cfg,
                analysis,
            )
        return read_page(image, self.classifier, cfg, analysis)


def load_reader(
    model: str | Path | None = None,
    recognizer: str = "chars",
    device: str = "cpu",
    low_confidence: float = 0.8,
) -> Reader:
    """The recognizer `recognizer` with its model (found by `find_model`), ready to read."""
    if recognizer == "ctc":
        ctc = ctc_module()  # before looking for a model: say first that there is no recogniser
        path = find_model(model, recognizer)
        _other_recognizer(path, "ocr", "chars")
        reader = ctc.load_line_reader(path, device)
        return Reader("ctc", path, line_reader=reader, low_confidence=low_confidence)
    path = find_model(model, recognizer)
    _other_recognizer(path, "ocr_ctc", "ctc")
    return Reader("chars", path, load_classifier(path, device), low_confidence=low_confidence)


def _other_recognizer(path: Path, task: str, recognizer: str) -> None:
    """A clear error for a run of the other recognizer: which option reads with it."""
    config = Path(path) / "config.json"
    try:
        import json

        found = json.loads(config.read_text()).get("task") if config.is_file() else None
    except (OSError, ValueError):
        return  # the loader says what is wrong with the run
    if found == task:
        raise NNLabError(
            f"{path}: a {'CTC line recogniser' if task == 'ocr_ctc' else 'character model'} "
            f"run: read with --recognizer {recognizer}"
        )


def read_to_folder(
    page: str | Path,
    out: str | Path,
    model: str | Path | None = None,
    recognizer: str = "chars",
    device: str = "cpu",
    overwrite: bool = False,
    low_confidence: float = 0.8,
):
    """`nnlab ocr read`: read one page, write <stem>.overlay.png and <stem>.ocr.json to `out`.
    A page that cannot be read, or holds no characters, is an NNLabError with the reason (found
    before a model is looked for: the page is the user's first question)."""
    import io

    from nnlab.io import atomic_write_bytes, atomic_write_json, claim_outputs, writable_folder
    from nnlab.ocr.page import analyse_page, load_page
    from nnlab.ocr.read import render_overlay

    page, out = Path(page), Path(out)
    paths = [out / f"{page.stem}.overlay.png", out / f"{page.stem}.ocr.json"]
    claim_outputs(paths, overwrite)
    writable_folder(out)  # before the reading, which would be lost
    if recognizer not in RECOGNIZERS:
        raise NNLabError(f"--recognizer must be chars or ctc, got '{recognizer}'")
    if recognizer == "ctc":
        ctc_module()
    image = load_page(page)
    analysis = analyse_page(image)
    if analysis.reason:
        raise NNLabError(f"{page}: {analysis.reason}")
    reader = load_reader(model, recognizer, device, low_confidence)
    reading = reader.read(image, analysis)

    buf = io.BytesIO()
    render_overlay(image, reading, low_confidence=low_confidence).save(buf, format="PNG")
    atomic_write_bytes(paths[0], buf.getvalue())
    atomic_write_json(paths[1], {"image": str(page), "model": str(reader.model),
                                 **reading.to_json()})  # fmt: skip
    return reading, paths


def page_files(folder: str | Path) -> list[Path]:
    """The page images (name.png|jpg|jpeg) of `folder` that have a name.txt truth, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NNLabError(f"{folder}: no such folder")
    pages = [
        p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.with_suffix(".txt").is_file()
    ]
    if not pages:
        raise NNLabError(
            f"{folder}: no pages to score (each name.jpg or name.png needs a name.txt truth)"
        )
    return pages


def read_truth_text(path: Path) -> tuple[str, str]:
    """A page's true text and, where it was not UTF-8, how it was read: UTF-16 (Windows
    Notepad's "Unicode", PowerShell's `>`), found by its byte-order mark or its NUL bytes; a
    UTF-8 byte-order mark; else Windows-1252 text (Latin-1 and its superset)."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "its truth read as UTF-16"
    if len(raw) > 1 and raw.count(b"\x00") * 4 >= len(raw):  # UTF-16 without its mark
        little = raw[1::2].count(b"\x00") > raw[::2].count(b"\x00")
        return raw.decode("utf-16-le" if little else "utf-16-be", errors="replace"), (
            "its truth read as UTF-16"
        )
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "its truth read as Windows-1252"


def evaluate_pages(
    folder: str | Path, reader: Reader, min_iou: float = 0.5
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read every page of `folder` and score it against name.txt: CER with and without spaces
    (case ignored), character accuracy, seconds, and box recall where name.json holds box truth.
    A page that cannot be read or holds no characters scores as read empty, with a note.
    Returns (one row per page, the overall figures: distances pooled over all pages)."""
    from nnlab.ocr.compose import box_recall, read_truth
    from nnlab.ocr.page import load_page

    rows = []
    for p in page_files(folder):
        truth, how = read_truth_text(p.with_suffix(".txt"))
        t0 = time.perf_counter()
        try:
            reading = reader.read(load_page(p))
            text, note, boxes = reading.text, reading.reason, reading.boxes()
        except NNLabError as e:
            text, note, boxes = "", str(e).split(": ", 1)[-1], np.zeros((0, 4))
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {"page": p.name, **cer_report(truth, text), "seconds": seconds}
        truth_json = p.with_suffix(".json")
        if truth_json.is_file() and reader.recognizer == "chars":
            try:
                true_boxes = np.array([c.box for c in read_truth(truth_json).chars])
                row["box_recall"] = box_recall(boxes, true_boxes, min_iou)
            except NNLabError as e:
                note = note or str(e)
        row["note"] = "; ".join(n for n in (note, how) if n)
        row["read"] = text
        rows.append(row)
    edits = sum(r["edits"] for r in rows)
    edits_ns = sum(r["edits_nospace"] for r in rows)
    n, n_ns = sum(r["chars"] for r in rows), sum(r["chars_nospace"] for r in rows)
    overall: dict[str, Any] = {
        "pages": len(rows),
        "cer": edits / n if n else float(edits > 0),
        "cer_nospace": edits_ns / n_ns if n_ns else float(edits_ns > 0),
        "seconds_per_page": float(np.mean([r["seconds"] for r in rows])),
    }
    overall["char_accuracy"] = 1.0 - overall["cer_nospace"]
    recalls = [r["box_recall"] for r in rows if "box_recall" in r]
    if recalls:
        overall["box_recall"] = float(np.mean(recalls))
    overall.update(recognizer=reader.recognizer, model=str(reader.model))
    return rows, overall


# ----------------------------------------------------------------------------- composing pages


def held_out_glyphs(model: str | Path | None = None, say=None) -> tuple[dict, dict[str, Any]]:
    """(character -> ink crops, where they came from) of the test part of a run's split (the
    default config's split when `model` is None): the characters no model of that split
    trained on."""
    if model is not None:
        run = RunDir.open(model)
        cfg = load_config(run, OCRTask)
    else:
        run, cfg = None, OCRConfig()
    chars = load_char_set(cfg.source(), say=say)
    if run is not None and (run.path / "split.json").is_file():
        parts = load_split(run.path / "split.json", chars.names)
    else:
        parts = split_char_set(chars, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    test = parts["test"]
    glyphs = chars.by_class(test)
    info = {
        "split_from": str(run.path) if run is not None else "default split (seed 0)",
        "source": asdict(cfg.source()),
        "test_characters": int(len(test)),
        "by_source": class_counts(chars, test),
    }
    return glyphs, info


def compose_pages(
    out: str | Path,
    pages: int,
    hard: bool = False,
    seed: int = 0,
    model: str | Path | None = None,
    fmt: str = "jpg",
    char_height: int = 40,
    say=None,
    desk: float = 0.0,
    turns: str = "0",
    shadow: float = 0.0,
    grid: float = 0.0,
) -> tuple[list[Path], dict[str, Any]]:
    """`nnlab ocr compose`: `pages` pages of held-out characters (plain or hard photography;
    `desk` > 0: lying on a desk that shows around them; `turns`: "0", or degrees such as
    "90,180,270", one drawn per page, that the photo is saved turned by; `shadow` > 0: a cast
    shadow with a sharp edge takes this fraction of the light on part of the photo; `grid` > 0:
    squared paper, squares this x the character height, in place of hard pages' rules) with
    name.txt and name.json truth; a compose.json beside them says how they were made."""
    from nnlab.io import atomic_write_json
    from nnlab.ocr.compose import ComposeConfig, write_pages

    if pages < 1:
        raise NNLabError(f"--pages must be >= 1, got {pages}")
    if char_height < 12:
        raise NNLabError(f"--char-height must be >= 12 pixels, got {char_height}")
    if not 0 <= desk <= 3:
        raise NNLabError(f"--desk must be between 0 and 3 (x the page's size), got {desk}")
    if not 0 <= shadow < 1:
        raise NNLabError(f"--shadow must be >= 0 and below 1 (the light it takes), got {shadow}")
    if grid < 0 or not np.isfinite(grid) or 0 < grid < 0.3:
        raise NNLabError(f"--grid must be 0 (none) or at least 0.3 (x the char height): {grid}")
    try:
        turned = tuple(int(t) for t in turns.split(","))
    except ValueError:
        raise NNLabError(f"--turns takes degrees such as 90,180,270, got '{turns}'") from None
    if any(t % 90 for t in turned):
        raise NNLabError(f"--turns must be multiples of 90 degrees, got '{turns}'")
    glyphs, info = held_out_glyphs(model, say)
    preset = ComposeConfig.hard if hard else ComposeConfig.plain
    ccfg = preset(char_height=char_height, desk=desk, turns=turned, shadow=shadow, grid=grid)
    if grid:
        ccfg = replace(ccfg, ruled_lines=False)  # squared paper, not lined
    paths = write_pages(out, pages, glyphs, seed=seed, cfg=ccfg, fmt=fmt)
    info = {**info, "pages": pages, "seed": seed, "hard": hard, "compose": asdict(ccfg)}
    atomic_write_json(Path(out) / "compose.json", info)
    return paths, info
