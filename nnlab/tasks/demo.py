"""`nnlab demo`: an MLP and a CNN trained by the shared PyTorch loop, and the same MLP written from
scratch in NumPy (manual backprop), on scikit-learn's embedded 8x8 digits -- compared in one run
directory (one child run per model) with one report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from nnlab.report import write_report
from nnlab.run import RunDir, run_children
from nnlab.tasks.classify import ClassifyConfig, run_classify
from nnlab.tasks.numpy_classify import NumpyClassifyConfig, run_numpy_classify
from nnlab.train import TrainConfig
from nnlab.viz import curves_figure, per_class_figure

DEMO_MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": (128, 64), "dropout": 0.1},
    "cnn": {"channels": (16, 32), "convs_per_block": 2, "dropout": 0.1},
}


def run_demo(
    out: str | Path | None = None,
    epochs: int = 30,
    seed: int = 0,
    device: str = "auto",
    console: Console | None = None,
) -> tuple[RunDir, list[dict[str, Any]]]:
    train = TrainConfig(
        epochs=epochs,
        batch_size=32,
        lr=3e-3,
        weight_decay=1e-4,
        warmup_epochs=1,
        seed=seed,
        device=device,
        monitor="val/acc",
        mode="max",
    )
    train.validate()  # before the run folder is made
    parent = RunDir.create("demo", out)
    parent.save_config(
        {
            "task": "demo",
            "data": "digits",
            "epochs": epochs,
            "seed": seed,
            "device": device,
            "models": {**DEMO_MODELS, "numpy-mlp": DEMO_MODELS["mlp"]},
        }
    )
    jobs = {
        name: (
            lambda child, name=name, args=args: run_classify(
                ClassifyConfig(data="digits", model=name, model_args=dict(args), train=train),
                child,
                console,
            )
        )
        for name, args in DEMO_MODELS.items()
    }
    jobs["numpy-mlp"] = lambda child: run_numpy_classify(
        NumpyClassifyConfig(
            data="digits",
            hidden=DEMO_MODELS["mlp"]["hidden"],
            epochs=epochs,
            batch_size=32,
            lr=0.05,
            seed=seed,
        ),
        child,
        console,
    )
    titles = {name: f"{name} on digits" for name in jobs}
    titles["numpy-mlp"] += " (the from-scratch engine)"
    results = run_children(parent, jobs, console, titles)
    rows, per_class = [], {}
    for name, r in results.items():
        s = r.summary
        rows.append(
            {
                "model": name,
                "parameters": s["parameters"],
                "test accuracy": s["test/acc"],
                "test images": s["test_images"],
                "epochs": s["epochs"],
                "train time (s)": s["train_time_s"],
                "wall time (s)": r.wall_s,
            }
        )
        cm = np.asarray(s["confusion"])
        per_class[name] = np.diag(cm) / np.maximum(cm.sum(1), 1)
    parent.save_summary({"models": rows})
    parent.save_figure(
        "curves",
        curves_figure(
            {n: r.history for n, r in results.items()}, "MLP vs CNN vs NumPy MLP on 8x8 digits"
        ),
    )
    parent.save_figure(
        "per_class_accuracy",
        per_class_figure(per_class, [str(i) for i in range(10)], "test accuracy"),
    )
    write_report(parent)
    return parent, rows
