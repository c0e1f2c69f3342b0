"""Run every CUDA path of the training loop once, on the classification and segmentation tasks, and
print what ran, its throughput and peak GPU memory; exit 1 if anything failed.

Paths: bf16 autocast, fp16 autocast with GradScaler, pinned memory with worker processes,
channels_last, EMA of the weights, gradient accumulation, resume on the GPU (an interrupted run
continued from its mid-epoch checkpoint, against an uninterrupted one), DDP with NCCL through
torchrun (1 process, and one per GPU when there are several); the CTC line recogniser of OCR
(variable-width lines, CTC loss, both heads); the EEG paths: the three-tower
transformer trained leave-one-seizure-out on a generated patient (windows read lazily from the
memory-mapped cache by worker processes), `seizure detect` on this device against the CPU (the
same probabilities), and one Bonn fold (single channel: two towers; the real D-E segments when
NNLAB_DATA holds bonn-eeg, else generated segments). Data: the embedded digits, generated polyp
images and a generated EEG patient, so nothing needs downloading. Under 5 minutes on one GPU.

    python bench/gpu_check.py             # on a CUDA machine
    python bench/gpu_check.py --cpu       # the same checks on the CPU (fp32, gloo), to test it
    python bench/gpu_check.py --only seizure,DDP     # the checks whose names hold these words

Without CUDA (and without --cpu) it says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from nnlab.data.synthetic import make_polyp_folder, make_small_patient
from nnlab.run import RunDir
from nnlab.tasks.base import run_task
from nnlab.tasks.bonn import BonnConfig, run_bonn_cv
from nnlab.tasks.classify import ClassifyConfig, ClassifyTask
from nnlab.tasks.compress import AutoencodeConfig, AutoencodeTask
from nnlab.tasks.diffusion import DiffusionConfig, DiffusionTask
from nnlab.tasks.ocr_ctc import CTCConfig, CTCLineTask
from nnlab.tasks.segment import SegmentConfig, SegmentTask
from nnlab.tasks.seizure import SeizureConfig, detect_file, fold_runs, run_seizure_cv
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


def ctc_lines(head: str, **train) -> CTCLineTask:
    """The CTC line recogniser of `nnlab ocr train-ctc` on lines of the stroke font (no data
    files): variable-width lines padded per batch, CTC loss in fp32 under autocast."""
    cfg = CTCConfig(
        data="strokes",
        model_args={"head": head},
        train_lines=256,
        val_lines=32,
        test_lines=32,
        beam=2,
        train=TrainConfig(
            **{"epochs": 2, "batch_size": 16, "monitor": "val/cer", "mode": "min", **train}
        ),
    )
    return CTCLineTask(cfg)


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
    sets = getattr(task, "sets", None)  # a task that keeps no sets: steps x batch size
    if sets:
        speed = len(sets["train"]) * summary["epochs"] / summary["train_time_s"]
    else:
        speed = samples_per_s(run)
    meta = read_checkpoint(run.checkpoint_dir / "last.safetensors", "pt")[1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    return {
        "device": summary["device"],
        "samples/s": speed,
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


def seizure_check(work: Path, **train) -> dict:
    """Leave one seizure out on the tiny generated patient (3 files of 6 min, 2 seizures: 2
    folds), 4 bipolar channels, all three towers; then `detect` on its last file with the fold
    models on `device` and on the CPU: the same window probabilities, up to TF32 matmuls."""
    data = work / "eeg"
    make_small_patient(data)
    cfg = SeizureConfig(
        data=str(data),
        patient="chb01",
        cache=str(data / "cache"),
        channels=("FP1-F7", "F7-T7", "T7-P7", "P7-O1"),
        sop_s=60.0,
        sph_s=10.0,
        interictal_gap_s=120.0,
        alarm_k=3,
        alarm_n=5,
        model_args={"dim": 32},
        train=dataclasses.replace(SeizureConfig().train, epochs=3, batch_size=32, **train),
    )
    run = RunDir.create("seizure", work / "seizure")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    summary = run_seizure_cv(cfg, run)
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    recording = data / "chb01" / "chb01_03.edf"
    device = train["device"]
    found = [
        detect_file(recording, run, out=work / f"detect-{i}", device=d)
        for i, d in enumerate((device, "cpu"))
    ]
    prob = [np.loadtxt(f["outputs"][0], delimiter=",", skiprows=1, usecols=2) for f in found]
    diff = float(np.abs(prob[0] - prob[1]).max())
    if not diff < 1e-2:
        raise RuntimeError(f"detect on {device} and on the CPU differ by up to {diff:.3g}")
    folds = fold_runs(run)
    return {
        "device": folds[0].summary()["device"],
        "samples/s": float(np.mean([samples_per_s(r) for r in folds])),
        "peak MiB": peak,
        "note": f"{len(folds)} folds, segment AUC {summary['segment/auc']:.3f}; detect "
        f"{found[0]['windows']} windows, max |P {device} - P cpu| {diff:.1e}",
    }


def samples_per_s(run: RunDir) -> float:
    """Training samples a second of a finished run: optimizer steps x batch size / train time."""
    last = json.loads((run.path / "metrics.jsonl").read_text().splitlines()[-1])
    batch = run.config()["train"]["batch_size"]
    return last["step"] * batch / run.summary()["train_time_s"]


def segment_folder(root: Path, n: int = 40, fs: float = 173.61, seed: int = 0) -> Path:
    """Single-channel segments of 23.6 s in two class folders, for the Bonn check without Bonn:
    1/f background, plus a 3-Hz spike-and-wave in the ictal ones."""
    rng = np.random.default_rng(seed)
    t = np.arange(4097) / fs
    for name in ("interictal", "ictal"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            x = np.cumsum(rng.normal(size=t.size)) * 2.0
            x -= np.convolve(x, np.ones(173) / 173, mode="same")
            if name == "ictal":
                x += 80 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)) ** 9
            np.save(root / name / f"{name}{i:03d}.npy", x.astype(np.float32))
    return root


def bonn_check(work: Path, **train) -> dict:
    """Fold 0 of 10 of D-E (or of the generated segments), the task's defaults (30 epochs)."""
    real = (Path(os.environ.get("NNLAB_DATA", "")) / "bonn-eeg").is_dir()
    data = (
        {"data": "bonn", "pair": "D-E"}
        if real
        else {
            "data": str(segment_folder(work / "segments")),
            "pair": "interictal-ictal",
            "fs": 173.61,
        }
    )
    base = BonnConfig()
    cfg = dataclasses.replace(
        base, **data, fold_limit=1, train=dataclasses.replace(base.train, **train)
    )
    run = RunDir.create("bonn", work / "bonn")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    summary = run_bonn_cv(cfg, run)
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    child = fold_runs(run)[0]
    fold = child.summary()
    return {
        "device": fold["device"],
        "samples/s": samples_per_s(child),
        "peak MiB": peak,
        "note": f"{'Bonn D-E' if real else 'generated segments'}, fold 0: acc {summary['acc']:.3f}"
        f" ({fold['test_items']} segments), towers {'+'.join(summary['towers'])}",
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
    parser.add_argument(
        "--only", default="", help="run only the checks whose names hold one of these words (a,b)"
    )
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
        (
            "ocr ctc lines, transformer head, bf16, workers",
            lambda: timed(
                ctc_lines("transformer", precision=fp("bf16"), **common), work, "o-tf", "test/cer"
            ),
        ),
        (
            "ocr ctc lines, BiLSTM head, fp16 + GradScaler",
            lambda: timed(
                ctc_lines("lstm", precision=fp("fp16"), **common), work, "o-lstm", "test/cer"
            ),
        ),
        (
            "seizure LOSO, 3 towers, bf16, lazy windows, workers; detect vs CPU",
            lambda: seizure_check(work, precision=fp("bf16"), **common),
        ),
        (
            "seizure bonn, 2 towers, fp16 + GradScaler, crops",
            lambda: bonn_check(work, precision=fp("fp16"), **common),
        ),
    ]
    if gpus > 1:
        checks.append((f"DDP (NCCL), {gpus} processes", lambda: ddp_check(work, gpus, device)))
    if args.only:
        words = args.only.split(",")
        checks = [(n, c) for n, c in checks if any(w in n for w in words)]
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
