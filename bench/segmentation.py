"""Kvasir-SEG benchmark: U-Net and SegmentViT trained with the same split, epochs and optimiser
(`nnlab segment compare`), test Dice / IoU per image, parameters and time.

    python bench/segmentation.py                      # the quick CPU configuration, 128 px
    python bench/segmentation.py --size 256 --base 16 --epochs 30 --models unet   # 256 px directly
    python bench/segmentation_progressive.py          # the 256-px U-Net target: 128 px, then 256 px

Prints the comparison table and the generated observations; the run directory holds the report."""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from rich.console import Console

from nnlab.run import RunDir
from nnlab.tasks.segment import SegmentConfig, run_compare
from nnlab.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--base", type=int, default=16, help="U-Net width of the first level")
    ap.add_argument("--patch", type=int, default=8, help="SegmentViT patch size")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--models", default="unet,segvit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    models = tuple(args.models.split(","))
    base = SegmentConfig(
        data="kvasir",
        size=args.size,
        train=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            warmup_epochs=1.0,
            monitor="val/dice",
            mode="max",
            seed=args.seed,
        ),
    )
    run = RunDir.create(f"bench-seg{args.size}", args.out)
    console = Console(highlight=False, soft_wrap=True, width=160)
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, "
        f"cuda {torch.cuda.is_available()}"
    )
    t0 = time.perf_counter()
    summary = run_compare(
        base, run, models, {"unet": {"base": args.base}, "segvit": {"patch": args.patch}}, console
    )
    from nnlab.report import write_report

    write_report(run)
    print(json.dumps(summary["models"], indent=1))
    print(summary["observations"])
    print(f"total wall time {time.perf_counter() - t0:.0f} s; run {run.path}")


if __name__ == "__main__":
    main()
