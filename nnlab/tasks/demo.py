"""`nnlab demo`: an MLP and a CNN trained by the shared PyTorch loop, and the same MLP written from
scratch in NumPy (manual backprop), on scikit-learn's embedded 8x8 digits -- compared in one run
directory (one child run per model) with one report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.classify import ClassifyConfig, run_classify
from nnlab.tasks.numpy_classify import NumpyClassifyConfig, run_numpy_classify
from nnlab.train import TrainConfig
from nnlab.viz import curves_figure, per_class_figure

DEMO_MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": (128, 64), "dropout": 0.1},
    "cnn": {"channels": (16, 32), "convs_per_block": 2, "dropout": 0.1},
}


def run_demo(out: str | Path | None = None, epochs: int = 30, seed: int = 0, device: str = "auto",
             console: Console | None = None) -> tuple[RunDir, list[dict[str, Any]]]:
    parent = RunDir.create("demo", out)
    parent.save_config({"task": "demo", "data": "digits", "epochs": epochs, "seed": seed,
                        "device": device, "models": {**DEMO_MODELS, "numpy-mlp": DEMO_MODELS["mlp"]}})
    rows, histories, per_class = [], {}, {}
    for name in (*DEMO_MODELS, "numpy-mlp"):
        if console:
            console.rule(f"{name} on digits" + (" (the from-scratch engine)" if name == "numpy-mlp" else ""))
        child = RunDir.create(name, out=parent.path / name)
        t0 = time.perf_counter()
        if name == "numpy-mlp":
            cfg = NumpyClassifyConfig(data="digits", hidden=DEMO_MODELS["mlp"]["hidden"], epochs=epochs,
                                      batch_size=32, lr=0.05, seed=seed)
            summary = run_numpy_classify(cfg, child, console)
        else:
            cfg = ClassifyConfig(
                data="digits", model=name, model_args=dict(DEMO_MODELS[name]),
                train=TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, weight_decay=1e-4,
                                  warmup_epochs=1, seed=seed, device=device, monitor="val/acc"))
            summary = run_classify(cfg, child, console)
        rows.append({"model": name, "parameters": summary["parameters"],
                     "test accuracy": summary["test/acc"], "test images": summary["test_images"],
                     "epochs": summary["epochs"], "train time (s)": summary["train_time_s"],
                     "wall time (s)": time.perf_counter() - t0})
        histories[name] = child.metrics()
        cm = np.asarray(summary["confusion"])
        per_class[name] = np.diag(cm) / np.maximum(cm.sum(1), 1)
    parent.save_summary({"models": rows})
    parent.save_figure("curves", curves_figure(histories, "MLP vs CNN vs NumPy MLP on 8x8 digits"))
    parent.save_figure("per_class_accuracy",
                       per_class_figure(per_class, [str(i) for i in range(10)], "test accuracy"))
    write_report(parent)
    return parent, rows
