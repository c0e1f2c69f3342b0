"""MNIST with the shared PyTorch loop: ViT with 7x7 patches vs ViT with row patches (1x28) vs CNN vs
MLP -- accuracy, parameters and time per epoch in one table (does 1-D patching lose spatial
information?). Writes one parent run with a child run per model.

    NNLAB_DATA=../shared/data python bench/mnist_models.py [--only vit7 cnn] [--epochs-scale 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.classify import ClassifyConfig, run_classify
from nnlab.train import TrainConfig

VIT = {"dim": 64, "depth": 6, "heads": 4, "mlp_ratio": 2.0, "dropout": 0.0}
MODELS = {
    "mlp": ("mlp", {"hidden": (1024, 1024), "dropout": 0.2}, 20, 1e-3, False),
    "cnn": ("cnn", {"channels": (32, 64), "convs_per_block": 2, "dropout": 0.2}, 12, 3e-3, True),
    "vit7": ("vit", {**VIT, "patch": (7, 7)}, 30, 1e-3, True),
    "vit1x28": ("vit", {**VIT, "patch": (1, 28)}, 30, 1e-3, True),
}
COMMANDS = {
    "mlp": (
        "nnlab train --data mnist --model mlp -m 'hidden=[1024,1024]' -m dropout=0.2 "
        "--epochs 20 --lr 1e-3 --batch-size 128 --warmup 1"
    ),
    "cnn": (
        "nnlab train --data mnist --model cnn -m 'channels=[32,64]' -m dropout=0.2 "
        "--epochs 12 --lr 3e-3 --batch-size 128 --warmup 1 --augment"
    ),
    "vit7": (
        "nnlab train --data mnist --model vit --patch 7 --epochs 30 --lr 1e-3 "
        "--batch-size 128 --warmup 1 --weight-decay 0.05 --augment"
    ),
    "vit1x28": (
        "nnlab train --data mnist --model vit --patch 1x28 --epochs 30 --lr 1e-3 "
        "--batch-size 128 --warmup 1 --weight-decay 0.05 --augment"
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    p.add_argument("--epochs-scale", type=float, default=1.0, help="Multiply every model's epochs.")
    p.add_argument("--limit", type=int, default=0, help="Training images (0 = all 54,000).")
    args = p.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )
    parent = RunDir.create("bench-mnist-models")
    parent.save_config(
        {"task": "bench-mnist-models", "models": {k: MODELS[k][:2] for k in args.only}}
    )
    rows = []
    for name in args.only:
        model, margs, epochs, lr, augment = MODELS[name]
        epochs = max(1, round(epochs * args.epochs_scale))
        cfg = ClassifyConfig(
            data="mnist",
            model=model,
            model_args=dict(margs),
            limit=args.limit,
            augment=augment,
            train=TrainConfig(
                epochs=epochs,
                batch_size=128,
                lr=lr,
                warmup_epochs=1,
                weight_decay=0.05 if model == "vit" else 1e-4,
                monitor="val/acc",
                mode="max",
                seed=0,
            ),
        )
        t0 = time.perf_counter()
        s = run_classify(cfg, RunDir.create(name, parent.path / name))
        wall = time.perf_counter() - t0
        row = {
            "model": name,
            "test accuracy": s["test/acc"],
            "parameters": s["parameters"],
            "epochs": s["epochs"],
            "s / epoch": s["train_time_s"] / s["epochs"],
            "train time (min)": s["train_time_s"] / 60,
            "wall (min)": wall / 60,
        }
        rows.append(row)
        print(f"{name}: {row}   # {COMMANDS[name]}", flush=True)
    parent.save_summary({"models": rows})
    write_report(parent)
    print("\n| model | test accuracy | parameters | epochs | s / epoch | training (min) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['test accuracy']:.4f} | {r['parameters']:,} | {r['epochs']} | "
            f"{r['s / epoch']:.1f} | {r['train time (min)']:.1f} |"
        )
    print(f"run: {parent.path}")


if __name__ == "__main__":
    main()
