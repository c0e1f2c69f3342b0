"""Kvasir-SEG U-Net at full size by progressive resizing: train from scratch at a small size (cheap
steps, the same receptive field covers more of the polyp), then continue from the best weights at
the full size on the same split (`nnlab segment train --init-from`). No pretrained weights.

    python bench/segmentation_progressive.py          # 128 px x 80 epochs, then 256 px x 16
    python bench/segmentation_progressive.py --first-epochs 40 --epochs 8 --depth 4

Prints both stages' test Dice / IoU (at their own size) and the time each took; the second run's
directory holds the report."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from rich.console import Console

from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.segment import SegmentConfig, run_segment
from nnlab.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--first-size", type=int, default=128)
    ap.add_argument("--first-epochs", type=int, default=80)
    ap.add_argument(
        "--first-run", default=None, help="reuse a finished first-stage run instead of training one"
    )
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the first stage")
    ap.add_argument("--second-lr", type=float, default=5e-4)
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out",
        default=None,
        help="folder for the two runs (default runs/bench-progressive-<time>)",
    )
    args = ap.parse_args()

    console = Console(highlight=False, soft_wrap=True, width=160)
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, cuda {torch.cuda.is_available()}"
    )
    out = Path(args.out) if args.out else RunDir.create(f"bench-progressive{args.size}").path
    unet = {"base": args.base, "depth": args.depth}
    stages = []
    if args.first_run:
        first = RunDir.open(args.first_run)
        stages.append(("first (reused)", first.summary()))
    else:
        first = RunDir.create("first", out / f"unet{args.first_size}")
        cfg = SegmentConfig(
            data="kvasir",
            model="unet",
            model_args=unet,
            size=args.first_size,
            train=TrainConfig(
                epochs=args.first_epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                warmup_epochs=1.0,
                monitor="val/dice",
                mode="max",
                seed=args.seed,
            ),
        )
        console.rule(f"stage 1: {args.first_size} px, {args.first_epochs} epochs")
        stages.append(("first", run_segment(cfg, first, console)))
        write_report(first)
    second = RunDir.create("second", out / f"unet{args.size}")
    cfg = SegmentConfig(
        data="kvasir",
        model="unet",
        model_args=first.config()["model_args"],
        size=args.size,
        init_from=str(first.path),
        split_seed=first.config()["split_seed"],
        train=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.second_lr,
            warmup_epochs=1.0,
            monitor="val/dice",
            mode="max",
            seed=args.seed,
        ),
    )
    console.rule(f"stage 2: {args.size} px, {args.epochs} epochs from {first.path}")
    stages.append(("second", run_segment(cfg, second, console)))
    write_report(second)

    keys = (
        "size",
        "parameters",
        "epochs",
        "best_epoch",
        "test/dice",
        "test/iou",
        "test/missed",
        "train_time_s",
    )
    rows = [{"stage": name, **{k: s[k] for k in keys}} for name, s in stages]
    print(json.dumps(rows, indent=1))
    total = sum(s["train_time_s"] for _, s in stages)
    final = stages[-1][1]
    print(
        f"test at {final['size']} px: Dice {final['test/dice']:.3f}, IoU {final['test/iou']:.3f}; "
        f"training time of both stages {total / 60:.1f} min; runs in {out}"
    )


if __name__ == "__main__":
    main()
