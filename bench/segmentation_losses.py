"""Which loss for polyps? The quick 128-px U-Net of bench/segmentation.py trained with BCE alone,
Dice loss alone and BCE + lambda x Dice for lambda in {0.5, 1, 2}; everything else equal (split,
seed, epochs, optimiser, augmentation). Prints test Dice / IoU, polyps missed (IoU < 0.1) and the
mean IoU and misses on the smallest third of polyps (by true area), per variant.

    python bench/segmentation_losses.py --out runs/seg-losses          # all five, ~17 min each
    python bench/segmentation_losses.py --out runs/seg-losses --variants bce,dice

Each variant is a child run directory (`<out>/<variant>`) and the bench is resumable: a finished
variant is read back, an interrupted one continues from its last checkpoint. Each variant is
`nnlab segment train --size 128 --base 16 --epochs 40 --lambda-bce B --lambda-dice D`."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from nnlab.run import RunDir
from nnlab.tasks.segment import SegmentConfig, run_segment
from nnlab.train import TrainConfig

# name -> (lambda_bce, lambda_dice)
VARIANTS = {
    "bce": (1.0, 0.0),
    "dice": (0.0, 1.0),
    "bce+0.5dice": (1.0, 0.5),
    "bce+1dice": (1.0, 1.0),
    "bce+2dice": (1.0, 2.0),
}


def row(name: str, summary: dict, cases: list[dict]) -> dict:
    iou = np.array([c["iou"] for c in cases])
    area = np.array([c["true_area"] for c in cases])
    small = area <= np.quantile(area, 1 / 3)
    lb, ld = VARIANTS[name]
    return {
        "variant": name,
        "loss": f"{lb:g} BCE + {ld:g} Dice",
        "test Dice": round(summary["test/dice"], 3),
        "test IoU": round(summary["test/iou"], 3),
        "missed": int(summary["test/missed"]),
        "small-third IoU": round(float(iou[small].mean()), 3),
        "small-third missed": int((iou[small] < 0.1).sum()),
        "best epoch": summary["best_epoch"],
        "training (min)": round(summary["train_time_s"] / 60, 1),
    }


def curves_figure_of(out: Path, names: list[str]):
    """Validation Dice per epoch, one line per variant (its run's metrics.jsonl)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    for name in names:
        history = RunDir.open(out / name).metrics()
        ax.plot([r["epoch"] for r in history], [r["val/dice"] for r in history], label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation Dice")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("U-Net 128 px, the same run but for the loss", fontsize=9)
    fig.tight_layout()
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, help="folder of the variants' run directories")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = args.variants.split(",")
    unknown = set(names) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)} (known: {', '.join(VARIANTS)})")

    console = Console(highlight=False, soft_wrap=True, width=160)
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, cuda {torch.cuda.is_available()}"
    )
    rows, t0 = [], time.perf_counter()
    for name in names:
        lb, ld = VARIANTS[name]
        path = Path(args.out) / name
        cfg = SegmentConfig(
            data="kvasir",
            size=args.size,
            lambda_bce=lb,
            lambda_dice=ld,
            model_args={"base": args.base},
            train=TrainConfig(
                epochs=args.epochs,
                batch_size=8,
                lr=1e-3,
                warmup_epochs=1.0,
                monitor="val/dice",
                mode="max",
                seed=args.seed,
            ),
        )
        if (path / "summary.json").exists():
            run = RunDir.open(path)
            summary = run.summary()
        else:
            resume = (path / "config.json").exists()
            run = RunDir.open(path) if resume else RunDir.create(name, path)
            console.print(f"{name}: {'resuming' if resume else 'training'} in {run.path}")
            summary = run_segment(cfg, run, console, resume=resume)
        cases = json.loads((run.path / "test_cases.json").read_text())
        rows.append(row(name, summary, cases))
        console.print(rows[-1])
    figure = Path(args.out) / "val_dice.png"
    curves_figure_of(Path(args.out), names).savefig(figure, dpi=120)
    console.print(f"validation Dice per epoch: {figure}")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---" for _ in keys) + " |")
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    print(f"total wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
