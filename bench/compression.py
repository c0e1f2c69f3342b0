"""Autoencoders against PCA and JPEG: the tables and figures of docs/RESULTS.md.

    NNLAB_DATA=../shared/data python bench/compression.py --out runs/bench-compression

1. NIST at code 32 (= nnlab compress --data nist --code 32): the table, with the wall and CPU
   time of the whole comparison (the issue's budget: 10 CPU-minutes on 2 cores);
2. the NumPy MLP autoencoder's learning-rate sweep on NIST (summed squared error, momentum 0.9);
3. NIST at codes 8, 16, 32, 64 (= nnlab compress --data nist --code 32 --sweep 8,16,64);
4. MNIST at code 32 (= nnlab compress --data mnist --code 32 --mlp-epochs 10 --conv-epochs 5).
Each part is a run directory under --out (report.html, figures, summary.json); finished parts are
kept and reused when the bench is run again.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.compress import (
    CompressConfig,
    compression_data,
    run_compress,
    table_rows,
    train_mlp_autoencoder,
)
from nnlab.train.core import TrainingDiverged
from nnlab.train.numpy_loop import psnr


def markdown(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines)


def comparison(out: Path, name: str, cfg: CompressConfig, console) -> dict:
    path = out / name
    if (path / "summary.json").exists():
        return RunDir.open(path).summary()
    run = RunDir.create(name, path)
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_compress(cfg, run, console)
    summary["cpu_s"] = time.process_time() - cpu
    summary["wall_s"] = time.perf_counter() - wall
    run.save_summary(summary)
    write_report(run)
    return summary


def show(summary: dict, title: str) -> None:
    print(f"\n### {title}\n\n{summary['source']}; {summary['test_images']} held-out images\n")
    print(markdown(table_rows(summary)))
    for r in summary["rows"]:
        if r["code"] == summary["code"] and r.get("parameter_formula"):
            print(f"\n{r['method']} parameters: {r['parameter_formula']}")
        if r["code"] == summary["code"] and "psnr_from_noisy" in r:
            print(f"\n{r['method']}: {r['psnr_from_noisy']:.2f} dB from noisy inputs")
    cpu = f", {summary['cpu_s'] / 60:.1f} CPU-min" if "cpu_s" in summary else ""
    print(f"\nwhole comparison: {summary['wall_s'] / 60:.1f} min wall{cpu}")
    by = {r["method"]: r for r in summary["rows"] if r["code"] == summary["code"]}
    if "pca" in by and "conv" in by:
        print(f"conv autoencoder - PCA: {by['conv']['psnr'] - by['pca']['psnr']:+.2f} dB")
    if "mlp" in by:
        print(f"MLP autoencoder: {by['mlp']['psnr']:.2f} dB (target >= 16 on NIST)")


def lr_sweep(out: Path, cfg: CompressConfig, lrs, console) -> None:
    data = compression_data(cfg.data, cfg.seed)
    # a collapsed network (every ReLU dead) outputs its output bias: the mean image it starts at
    train, val = (data.sets[k].images.reshape(len(data.sets[k]), -1) for k in ("train", "val"))
    mean_psnr = float(psnr(np.broadcast_to(train.mean(axis=0), val.shape), val).mean())
    rows = []
    for lr in lrs:
        path = out / f"mlp-lr-{lr:g}"
        if (path / "summary.json").exists():
            s, status = RunDir.open(path).summary(), "ok"
        else:
            run = RunDir.create(path.name, path)
            try:
                s, status = train_mlp_autoencoder(data, cfg.code, cfg, run, console, lr=lr), "ok"
            except TrainingDiverged as e:
                s, status = {}, f"diverged: {str(e).split(';')[0]}"
        history = RunDir.open(path).metrics()
        best_val = max((h["val/psnr"] for h in history), default=float("nan"))
        if status == "ok" and max(h["val/psnr"] for h in history[-5:]) < mean_psnr + 1:
            status = f"collapsed: within 1 dB of the mean image's {mean_psnr:.2f} dB"
        rows.append(
            {
                "lr": f"{lr:g}",
                "best val PSNR dB": f"{best_val:.2f}",
                "test PSNR dB (best epoch)": f"{s.get('test/psnr', float('nan')):.2f}",
                "best epoch": s.get("best_epoch", "-"),
                "status": status,
            }
        )
    print(
        f"\n### MLP autoencoder learning rate ({cfg.mlp_epochs} epochs, batch "
        f"{cfg.mlp_batch_size}, momentum 0.9, summed squared error)\n"
    )
    print(markdown(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench-compression")
    ap.add_argument("--parts", nargs="*", default=["nist", "lr", "sweep", "mnist"])
    args = ap.parse_args()
    out, console = Path(args.out), Console()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    nist = CompressConfig(data="nist", code=32)
    if "nist" in args.parts:
        show(comparison(out, "nist-c32", nist, console), "NIST, code 32")
    if "lr" in args.parts:
        lr_sweep(out, nist, (1e-5, 3e-5, 1e-4, 3e-4, 1e-3), console)
    if "sweep" in args.parts:
        s = comparison(out, "nist-sweep", dataclasses.replace(nist, sweep=(8, 16, 64)), console)
        print("\n### NIST, PSNR (dB) against code size\n")
        codes = sorted({r["code"] for r in s["rows"]})
        rows = [
            {
                "method": m,
                **{
                    str(c): f"{r['psnr']:.2f}"
                    for c in codes
                    for r in s["rows"]
                    if r["method"] == m and r["code"] == c
                },
            }
            for m in ("pca", "mlp", "conv", "denoise", "jpeg")
        ]
        print(markdown(rows))
    if "mnist" in args.parts:
        mnist = CompressConfig(data="mnist", code=32, mlp_epochs=10, conv_epochs=5)
        show(comparison(out, "mnist-c32", mnist, console), "MNIST, code 32")


if __name__ == "__main__":
    main()
