"""Run every CUDA path of the training loop once, on the classification and segmentation tasks, and
print what ran, its throughput and peak GPU memory; exit 1 if anything failed.

Paths: bf16 autocast, fp16 autocast with GradScaler, pinned memory with worker processes,
channels_last, EMA of the weights, gradient accumulation, resume on the GPU (an interrupted run
continued from its mid-epoch checkpoint, against an uninterrupted one), DDP with NCCL through
torchrun (1 process, and one per GPU when there are several). Data: the embedded digits and
generated polyp images, so nothing needs downloading. Under 5 minutes on one GPU.

    python bench/gpu_check.py             # on a CUDA machine
    python bench/gpu_check.py --cpu       # the same checks on the CPU (fp32, gloo), to test it

Without CUDA (and without --cpu) it says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from nnlab.data.synthetic import make_polyp_folder
from nnlab.run import RunDir
from nnlab.tasks.base import run_task
from nnlab.tasks.classify import ClassifyConfig, ClassifyTask
from nnlab.tasks.compress import AutoencodeConfig, AutoencodeTask
from nnlab.tasks.diffusion import DiffusionConfig, DiffusionTask
from nnlab.tasks.segment import SegmentConfig, SegmentTask
from nnlab.train import TrainConfig
from nnlab.train.core import read_checkpoint


def classify(model: str, **train) -> ClassifyTask:
    args = {
        "cnn": {"channels": [32, 64]},
        "vit": {"patch": [2, 2], "dim": 64, "depth": 2},
        "mlp": {"hidden": [256, 128]},
    }[model]
    cfg = ClassifyConfig(
        data="digits",
        model=model,
        model_args=args,
        train=TrainConfig(
            **{"epochs": 2, "batch_size": 64, "monitor": "val/acc", "mode": "max", **train}
        ),
    )
    return ClassifyTask(cfg)


def diffusion(**train) -> DiffusionTask:
    """The DDPM U-Net on the 8x8 digits (no sample grids: the finish writes its figures)."""
    cfg = DiffusionConfig(
        data="digits",
        model_args={"base": 16, "mults": [1, 2], "heads": 2, "groups": 4},
        sample_every=0,
        train=TrainConfig(
            **{"epochs": 2, "batch_size": 64, "monitor": "val/loss", "mode": "min", **train}
        ),
    )
    return DiffusionTask(cfg)


def autoencode(**train) -> AutoencodeTask:
    """The conv autoencoder of `nnlab compress` (denoising variant, augmented) on the digits."""
    cfg = AutoencodeConfig(
        data="digits",
        code=8,
        noise=0.3,
        augment=True,
        train=TrainConfig(
            **{"epochs": 2, "batch_size": 64, "monitor": "val/loss", "mode": "min", **train}
        ),
    )
    return AutoencodeTask(cfg)


def segment(root: Path, model: str, **train) -> SegmentTask:
    args = {
        "unet": {"base": 16, "depth": 3},
        "segvit": {"patch": 8, "dim": 64, "depth": 2, "heads": 2},
    }[model]
    cfg = SegmentConfig(
        data=str(root),
        model=model,
        model_args=args,
        size=64,
        train=TrainConfig(
            **{"epochs": 2, "batch_size": 8, "monitor": "val/dice", "mode": "max", **train}
        ),
    )
    return SegmentTask(cfg)


def timed(task, work: Path, name: str, metric: str) -> dict:
    """Train `task` into a fresh run; throughput in training samples per second."""
    run = RunDir.create(name, work / name)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    summary = run_task(task, run)
    samples = len(task.sets["train"]) * summary["epochs"]
    meta = read_checkpoint(run.checkpoint_dir / "last.safetensors", "pt")[1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    return {
        "device": summary["device"],
        "samples/s": samples / summary["train_time_s"],
        "peak MiB": peak,
        "note": f"{metric} {summary[metric]:.3f}"
        + (", GradScaler state saved" if "scaler" in meta else ""),
    }


def resume_check(work: Path, precision: str) -> dict:
    """An uninterrupted run vs one stopped by a time budget inside epoch 1 and resumed: the same
    figures (up to the GPU's nondeterminism in reductions)."""
    train = {"precision": precision, "ema": 0.99, "accumulate": 2, "epochs": 3}
    full = run_task(classify("cnn", **train), RunDir.create("full", work / "full"))
    part_dir = work / "part"
    part = run_task(classify("cnn", budget_min=1e-9, **train), RunDir.create("part", part_dir))
    if "time budget" not in (part["stopped"] or ""):
        raise RuntimeError(f"the budget did not stop the run: {part['stopped']}")
    resumed = run_task(classify("cnn", **train), RunDir(part_dir), resume=True)  # no budget now
    diff = abs(resumed["test/loss"] - full["test/loss"])
    if diff > 1e-3 + 0.02 * full["test/loss"]:  # cuDNN's reductions are not bitwise repeatable
        raise RuntimeError(
            f"resumed test loss {resumed['test/loss']:.6f} vs {full['test/loss']:.6f}"
        )
    return {
        "device": resumed["device"],
        "samples/s": float("nan"),
        "peak MiB": float("nan"),
        "note": f"stopped at step 1, resumed; |test loss diff| {diff:.1e}",
    }


def ddp_check(work: Path, nproc: int, device: str) -> dict:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out = work / f"ddp{nproc}"
    cmd = [
        torchrun,
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "nnlab",
        "train",
        "--data",
        "digits",
        "--model",
        "cnn",
        "--epochs",
        "2",
        "--device",
        device,
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    p = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"},
    )
    if p.returncode != 0:
        raise RuntimeError(f"torchrun exit {p.returncode}: {p.stderr.strip()[-400:]}")
    summary = RunDir(out).summary()
    return {
        "device": summary["device"],
        "samples/s": float("nan"),
        "peak MiB": float("nan"),
        "note": f"{nproc} process(es), test acc {summary['test/acc']:.3f}, "
        f"{time.perf_counter() - t0:.0f} s with start-up",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run the checks on the CPU (fp32, gloo)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu:
        print(f"gpu_check: no CUDA device (torch {torch.__version__}); nothing to check")
        return 0
    device = "cuda" if cuda and not args.cpu else "cpu"
    fp = (lambda p: p) if device == "cuda" else (lambda p: "fp32")  # autocast is CUDA-only here
    gpus = torch.cuda.device_count() if device == "cuda" else 1
    if device == "cuda":
        print(
            f"{torch.cuda.get_device_name(0)} x {gpus}, torch {torch.__version__}, CUDA "
            f"{torch.version.cuda}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}"
        )
    work = Path(tempfile.mkdtemp(prefix="nnlab-gpu-check-"))
    polyps = make_polyp_folder(work / "polyps", n=60, size=(64, 80), seed=0)
    common = {"device": device, "num_workers": 2}
    checks = [
        (
            "classify cnn, bf16, EMA, workers",
            lambda: timed(
                classify("cnn", precision=fp("bf16"), ema=0.999, **common),
                work,
                "c-bf16",
                "test/acc",
            ),
        ),
        (
            "classify cnn, fp16 + GradScaler, accumulate 2",
            lambda: timed(
                classify("cnn", precision=fp("fp16"), accumulate=2, **common),
                work,
                "c-fp16",
                "test/acc",
            ),
        ),
        (
            "classify cnn, bf16, channels_last",
            lambda: timed(
                classify("cnn", precision=fp("bf16"), channels_last=True, **common),
                work,
                "c-cl",
                "test/acc",
            ),
        ),
        (
            "classify vit, bf16, balanced sampler",
            lambda: timed(
                classify("vit", precision=fp("bf16"), sampler="balanced", **common),
                work,
                "c-vit",
                "test/acc",
            ),
        ),
        (
            "segment unet, bf16, channels_last, EMA",
            lambda: timed(
                segment(
                    polyps, "unet", precision=fp("bf16"), channels_last=True, ema=0.99, **common
                ),
                work,
                "s-unet",
                "test/dice",
            ),
        ),
        (
            "segment unet, fp16 + GradScaler",
            lambda: timed(
                segment(polyps, "unet", precision=fp("fp16"), **common),
                work,
                "s-unet16",
                "test/dice",
            ),
        ),
        (
            "diffusion unet, bf16, EMA",
            lambda: timed(
                diffusion(precision=fp("bf16"), ema=0.99, **common), work, "d-unet", "test/loss"
            ),
        ),
        (
            "autoencode conv_ae (denoising, augmented), fp16 + GradScaler",
            lambda: timed(autoencode(precision=fp("fp16"), **common), work, "a-conv", "test/psnr"),
        ),
        (
            "segment segvit, auto precision",
            lambda: timed(
                segment(polyps, "segvit", precision=fp("auto"), **common),
                work,
                "s-vit",
                "test/dice",
            ),
        ),
        (
            "resume inside an epoch, fp16, EMA, accumulation",
            lambda: resume_check(work / "resume", fp("fp16")),
        ),
        ("DDP (NCCL on CUDA), 1 process", lambda: ddp_check(work, 1, device)),
    ]
    if gpus > 1:
        checks.append((f"DDP (NCCL), {gpus} processes", lambda: ddp_check(work, gpus, device)))
    rows, failed = [], 0
    for name, check in checks:
        t0 = time.perf_counter()
        try:
            row = {"ok": "yes", **check()}
        except Exception as e:  # report every check, then fail at the end
            failed += 1
            row = {
                "ok": "FAIL",
                "device": device,
                "samples/s": float("nan"),
                "peak MiB": float("nan"),
                "note": f"{type(e).__name__}: {e}"[:300],
            }
            traceback.print_exc(file=sys.stderr)
        rows.append({"check": name, **row, "s": time.perf_counter() - t0})
        print(f"{row['ok']:>4}  {name}", flush=True)
    print(f"\n| check | ok | device | samples/s | peak MiB | s | note |\n|{' --- |' * 7}")
    for r in rows:
        print(
            f"| {r['check']} | {r['ok']} | {r['device']} | {r['samples/s']:.0f} | "
            f"{r['peak MiB']:.0f} | {r['s']:.1f} | {r['note']} |"
        )
    shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(rows) - failed} of {len(rows)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
