"""Accuracy benchmarks of the NumPy engine (figures for docs/RESULTS.md).

    NNLAB_DATA=../shared/data python bench/numpy_engine.py nist    # 5-fold CV on nist26_valid.mat
    NNLAB_DATA=../shared/data python bench/numpy_engine.py mnist   # MNIST test accuracy

Each runs the same code as `nnlab numpy train` (the equivalent command is printed) and writes its
run directory under runs/bench-*.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.numpy_classify import NumpyClassifyConfig, run_numpy_classify, run_numpy_cv

CONFIGS = {
    # one hidden layer of 64 units (the course setting); augmentation + blur do the heavy lifting
    "nist": (
        NumpyClassifyConfig(
            data="nist",
            hidden=(64,),
            epochs=100,
            lr=0.05,
            batch_size=32,
            augment=True,
            blur=1.0,
            val_fraction=0.0,
            folds=5,
            seed=0,
        ),
        "nnlab numpy train --data nist --hidden 64 --folds 5 --val-fraction 0 --augment "
        "--blur 1 --epochs 100 --lr 0.05",
    ),
    "mnist": (
        NumpyClassifyConfig(
            data="mnist",
            hidden=(512, 256),
            epochs=30,
            lr=0.05,
            batch_size=64,
            val_fraction=0.1,
            seed=0,
        ),
        "nnlab numpy train --data mnist --hidden 512,256 --epochs 30 --lr 0.05 --batch-size 64",
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", choices=sorted(CONFIGS))
    args = p.parse_args()
    cfg, command = CONFIGS[args.which]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; equivalent: {command}")
    run = RunDir.create(f"bench-numpy-{args.which}")
    t0 = time.perf_counter()
    summary = run_numpy_cv(cfg, run) if cfg.folds else run_numpy_classify(cfg, run)
    wall = time.perf_counter() - t0
    write_report(run)
    if cfg.folds:
        for f in summary["folds"]:
            print(
                f"fold {f['fold']}: {f['test accuracy']:.4f} ({f['test images']} images, "
                f"{f['epochs']} epochs, {f['train time (s)']:.1f} s)"
            )
        print(
            f"{cfg.folds}-fold CV accuracy: {summary['test/acc']:.4f} "
            f"± {summary['test/acc_sd']:.4f}"
        )
    else:
        print(
            f"test accuracy: {summary['test/acc']:.4f} on {summary['test_images']} images, "
            f"{summary['epochs']} epochs (best {summary['best_epoch']})"
        )
    print(f"training time {summary['train_time_s']:.1f} s, wall time {wall:.1f} s; run: {run.path}")


if __name__ == "__main__":
    main()
