"""The task interface every PyTorch family implements, and the one run skeleton.

A family is one module holding a config dataclass and a `Task` subclass:

    @dataclass
    class MyConfig:               # every field becomes a CLI option; its comment is the help
        data: str = "digits"
        model: str = "mlp"
        model_args: dict = field(default_factory=dict)
        train: TrainConfig = field(
            default_factory=lambda: TrainConfig(monitor="val/acc", mode="max")
        )

        def check(self) -> None: ...   # every check that needs no data; before a run dir exists

    class MyTask(Task):
        name, config_class, models = "mine", MyConfig, ("mlp",)
        def datasets(self, run, resume): ...          # {"train", "val", "test"} torch Datasets
        def model_config(self, train): ...            # the model's config, fitted to the data
        def loss(self, model, batch): ...             # StepOutput({"loss": ..., "term": ...}, ...)
        def metrics(self): ...                        # torchmetrics.MetricCollection

and may override `on_epoch_end` (samples, Frechet distances, alarm metrics: extra figures of the
epoch), `finish` (figures and summary entries after the test evaluation), `init_weights`,
`collate_fn` / `sample_labels` / `eval_batch_size` (for the loop's loader) and `summary_keys`
(what the CLI prints).
`run_task` is the skeleton they all share: data, model, loop (or resume), best checkpoint, test
evaluation, curves, summary.json.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
import torchmetrics
from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from nnlab.config import from_dict, to_dict
from nnlab.errors import NNLabError
from nnlab.models import build_model, count_parameters, model_config
from nnlab.run import RunDir
from nnlab.train.checkpoint import load_weights
from nnlab.train.core import prefixed, read_checkpoint
from nnlab.train.loop import StepOutput, Trainer, resolve_device
from nnlab.viz import curves_figure


class Task:
    name: ClassVar[str]  # config.json's "task" and the CLI group
    noun: ClassVar[str]  # what the runs are called in messages: "a classification run"
    config_class: ClassVar[type]
    models: ClassVar[tuple[str, ...]]  # the model names this task trains
    summary_keys: ClassVar[tuple[str, ...]] = (
        "model",
        "parameters",
        "epochs",
        "best_epoch",
        "train_time_s",
    )
    collate_fn = None  # the loop's DataLoader default: stack the samples' tensors
    distributed = True  # runs under torchrun, one process per device

    def __init__(self, cfg, console: Console | None = None):
        self.cfg, self.console = cfg, console

    # ---- what a family implements ----------------------------------------------------------------
    def datasets(self, run: RunDir, resume: bool) -> dict[str, Dataset]:
        raise NotImplementedError

    def model_config(self, train: Dataset):
        """The model's config dataclass: cfg.model_args completed from the data
        (shapes, classes)."""
        return model_config(self.cfg.model, **self.cfg.model_args)

    def loss(self, model: nn.Module, batch) -> StepOutput:
        raise NotImplementedError

    def metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection({})

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, float]:
        return {}

    def finish(
        self, trainer: Trainer, data: dict[str, Dataset], test: dict[str, float]
    ) -> dict[str, Any]:
        """Figures and summary entries of the trained model (best checkpoint); rank 0 only."""
        return {}

    def init_weights(self, model: nn.Module) -> None:
        """A fresh run's starting weights (another run's, say); the default keeps the init."""

    def check(self, resume: bool = False) -> None:
        """Every check that needs no data; `resume`: the run exists and continues."""
        self.cfg.train.validate()
        if self.cfg.model not in self.models:
            raise NNLabError(
                f"unknown model '{self.cfg.model}' for {self.name} (known: "
                f"{', '.join(self.models)})"
            )
        self.cfg.check()
        resolve_device(self.cfg.train.device)

    def execute(self, run: RunDir, resume: bool = False) -> dict[str, Any]:
        return run_task(self, run, resume)

    @classmethod
    def config_from_run(cls, run: RunDir):
        return load_config(run, cls)

    def run_name(self) -> str:
        return f"{self.cfg.model}-{Path(str(self.cfg.data)).name}"

    def title(self) -> str:
        return f"{self.cfg.model} on {Path(str(self.cfg.data)).name}"

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)


def run_task(task: Task, run: RunDir, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) `task` into `run`; evaluate the best checkpoint on the test split; write
    the curves, the task's figures and summary.json; return the summary (on every DDP rank; the
    ranks > 0 get the test figures only)."""
    cfg = task.cfg
    task.check(resume)
    data = task.datasets(run, resume)
    mcfg = task.model_config(data["train"])
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, mcfg)
    if not resume:
        task.init_weights(model)
    meta = {"name": cfg.model, "config": to_dict(mcfg)}
    trainer = Trainer(model, task, cfg.train, run, task.console, model_meta=meta)
    if not trainer.is_main:
        task.console = None
    if resume:
        done = trainer.resume()
        task.say(
            f"resuming {run.path} after epoch {done}"
            + (f" and {trainer._partial['batch']} batches" if trainer._partial else "")
        )
    elif trainer.is_main:
        run.save_config({"task": task.name, **to_dict(cfg), "model_config": to_dict(mcfg)})
    task.say(
        f"{cfg.model}: {count_parameters(model):,} parameters; "
        + " / ".join(f"{len(d)} {k}" for k, d in data.items())
        + f" on {trainer.device}"
    )
    trainer.fit(data["train"], data.get("val"))
    trainer.load_best()
    test = trainer.evaluate(data["test"])
    if not trainer.is_main:
        return {f"test/{k}": v for k, v in test.items()}
    summary = {
        "task": task.name,
        "data": cfg.data,
        "model": cfg.model,
        "parameters": count_parameters(model),
        "epochs": len(trainer.history),
        "best_epoch": trainer.best_epoch,
        "monitor": cfg.train.monitor,
        **{f"test/{k}": v for k, v in test.items()},
        "train_time_s": sum(r["time/epoch_s"] for r in trainer.history),
        "device": str(trainer.device),
        "stopped": trainer.stopped,
    }
    summary.update(task.finish(trainer, data, test))
    run.save_summary(summary)
    run.save_figure("curves", curves_figure(trainer.history, task.title()))
    return summary


# ---- cross-validation parents -------------------------------------------------------------------
class CrossValidation:
    """A cross-validation run for the shared launcher: a parent run whose children are the folds'
    runs. A subclass names its per-fold Task (`fold_task`, whose checks are the parent's: fold 0
    stands for every fold) and `cross_validate(cfg, run, console, resume)`, which trains the
    folds (resumably) and returns the parent's summary."""

    distributed = False
    fold_task: ClassVar[type[Task]]
    name: ClassVar[str]
    noun: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, cfg, console: Console | None = None):
        self.cfg, self.console = cfg, console

    @staticmethod
    def cross_validate(cfg, run: RunDir, console, resume: bool) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, resume: bool = False) -> None:
        self.fold_task(dataclasses.replace(self.cfg, fold=max(self.cfg.fold, 0))).check(resume)

    @classmethod
    def config_from_run(cls, run: RunDir):
        return load_config(run, cls)

    def execute(self, run: RunDir, resume: bool = False) -> dict[str, Any]:
        return self.cross_validate(self.cfg, run, self.console, resume)


# ---- a finished run ----------------------------------------------------------------------------
def load_config(run: RunDir, task: type[Task]):
    """The config a run of `task` was made with (strict: an unknown field is an error)."""
    raw = run.config()
    if raw.get("task") != task.name:
        article = "an" if task.noun[:1].lower() in "aeiou" else "a"
        raise NNLabError(f"{run.path}: not {article} {task.noun} run (task {raw.get('task')!r})")
    fields = {f.name for f in dataclasses.fields(task.config_class)}
    raw = {k: v for k, v in raw.items() if k in fields}
    train = raw.get("train", {})
    if not isinstance(train, dict):
        raise NNLabError(f"{run.config_path}: 'train' holds a {type(train).__name__}, not options")
    if "mode" not in train and "monitor" in train:
        # runs written before `mode` existed chose the direction by the monitor's name
        train["mode"] = "min" if "loss" in train["monitor"] else "max"
    if "schedule" in train:  # renamed: diffusion's --schedule is the noise schedule
        train["lr_schedule"] = train.pop("schedule")
    try:
        cfg = from_dict(task.config_class, raw)
        if hasattr(cfg, "train"):
            cfg.train.validate()  # an edited value of the wrong kind fails here, in a line
    except (TypeError, ValueError, AttributeError) as e:
        raise NNLabError(f"{run.config_path}: a value nnlab cannot read ({e})") from None
    return cfg


def load_model(run: RunDir, which: str = "best", device: str = "auto") -> nn.Module:
    """The model of a run, rebuilt from its checkpoint alone (name and config are stored in it;
    runs from before that fall back to config.json), with the checkpoint's weights, in eval mode."""
    path = run.checkpoint_dir / f"{which}.safetensors"
    if not path.exists():
        raise NNLabError(
            f"{run.path}: no {which} checkpoint yet (training did not finish an epoch)"
        )
    tensors, meta = read_checkpoint(path, "pt")
    info = meta.get("model") or {
        "name": run.config().get("model"),
        "config": run.config().get("model_config", {}),
    }
    model = build_model(info["name"], model_config(info["name"], **info["config"]))
    load_weights(model, prefixed(tensors, "model."), path)
    return model.to(resolve_device(device)).eval()
