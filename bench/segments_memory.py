"""Memory of `nnlab seizure bonn --data DIR` on segment sets too large to hold: the peak
anonymous memory (RssAnon: what the process holds itself, not the file pages the kernel may drop)
of one fold (read, spectrograms, normaliser, one epoch, the test fold), for sets of 1, 2 and 4
times N segments, held in memory and put on disk (`nnlab.tasks.bonn.ON_DISK_SHARE`).

    python bench/segments_memory.py [--segments 100] [--seconds 60] [--rate 400] [--channels 16]
    python bench/segments_memory.py --kaggle     # a Kaggle dog's size, the README's command

The segments are synthetic (a random walk per channel, a 7-Hz rhythm in the second class), shaped
as the Kaggle seizure prediction set's dogs (16 channels at about 400 Hz; their segments are 10
minutes, these `--seconds`), saved as .npy files in two class folders. Each run is a fresh process
(`nnlab seizure bonn --fold 0 --folds 5 --epochs 1`, a small model); the parent reads the child's
/proc/PID/status every 10 ms. On disk, the first run of a set writes the store
($NNLAB_CACHE/segments, a fresh folder per run here) and the peak should not grow with the set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_set(root: Path, n: int, seconds: float, rate: float, channels: int) -> int:
    """n segments (half per class) as .npy files; returns their bytes as float32."""
    rng = np.random.default_rng(0)
    L = int(seconds * rate)
    t = np.arange(L) / rate
    for c in ("interictal", "preictal"):
        (root / c).mkdir(parents=True)
    for i in range(n):
        c = ("interictal", "preictal")[i % 2]
        x = np.cumsum(rng.standard_normal((channels, L)), axis=1).astype(np.float32) * 2
        x -= x.mean(axis=1, keepdims=True)
        if c == "preictal":
            x += (30 * np.sin(2 * np.pi * 7 * t + rng.uniform(0, 6))).astype(np.float32)
        np.save(root / c / f"seg{i:05d}.npy", x)
    return n * channels * L * 4


CHILD = """
import sys
import torch
torch.set_num_threads(2)
from nnlab.tasks import bonn
bonn.ON_DISK_SHARE = float(sys.argv[1])
from nnlab.cli import main
main(sys.argv[2:])
"""


def anon_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(status.split("RssAnon:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return None


def make_kaggle_dog(root: Path) -> int:
    """216 interictal and 24 preictal 10-minute segments of 16 channels at 399.61 Hz, as the
    Kaggle seizure prediction set ships a dog's (a .mat struct of data, data_length_sec,
    sampling_frequency, channels, sequence, named after the segment), with 3 test segments
    beside them; returns their bytes as float32."""
    import scipy.io

    rng = np.random.default_rng(0)
    fs, L, C = 399.609756, 239766, 16
    t = np.arange(L) / fs
    channels = np.array([f"NVC1202_32_002_Ecog_c{i:03d}" for i in range(1, C + 1)], dtype=object)
    root.mkdir(parents=True)
    for kind, count in (("interictal", 216), ("preictal", 24), ("test", 3)):
        for n in range(1, count + 1):
            x = np.cumsum(rng.standard_normal((C, L)).astype(np.float32), axis=1) * 2
            x -= x.mean(axis=1, keepdims=True)
            if kind == "preictal":
                x += (20 * np.sin(2 * np.pi * 9 * t + rng.uniform(0, 6))).astype(np.float32)
            struct = {"data": x, "data_length_sec": 600, "sampling_frequency": fs}
            struct |= {"channels": channels.reshape(1, -1), "sequence": (n - 1) % 6 + 1}
            scipy.io.savemat(
                root / f"Dog_9_{kind}_segment_{n:04d}.mat", {f"{kind}_segment_{n}": struct}
            )
    return 240 * C * L * 4


# the README's Kaggle command, at the dog's own rate, on 4 folds (4 preictal hours), one of them
KAGGLE = [
    "--pair",
    "interictal-preictal",
    "--class-pattern",
    "(interictal|preictal)_segment",
    "--group",
    r"_(\d+)$",
    "--group-block",
    "6",
    "--sampler",
    "balanced",
    "--folds",
    "4",
    "--fold",
    "0",
    "--epochs",
    "1",
]


def run(
    data: Path, share: float, out: Path, cache: Path, options: list[str]
) -> tuple[float, float]:
    """(peak anonymous MB, wall s) of one fold in a fresh process."""
    cmd = [sys.executable, "-c", CHILD, str(share), "seizure", "bonn", "--data", str(data)]
    cmd += [*options, "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "NNLAB_CACHE": str(cache)}
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while child.poll() is None:
        now = anon_mb(child.pid)
        peak = max(peak, now or 0.0)
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    if child.returncode != 0:
        sys.exit(f"the fold failed:\n{child.stderr.read().decode()[-2000:]}")
    return peak, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=100, help="the smallest set's segments")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=400.0)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument(
        "--kaggle",
        action="store_true",
        help="instead: a Kaggle dog's size (`make_kaggle_dog`, 3.5 GB) with the README's "
        "command and the default ON_DISK_SHARE, twice: an empty store, then the store found",
    )
    args = ap.parse_args()
    if args.kaggle:
        from nnlab.tasks.bonn import ON_DISK_SHARE

        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            size = make_kaggle_dog(tmp / "Dog_9") / 2**20
            print(f"a synthetic Kaggle dog: 240 segments, {size:.0f} MB as float32\n")
            print("| run | peak MB | wall s |\n| --- | --- | --- |")
            for i, what in enumerate(("empty store", "store found")):
                peak, wall = run(
                    tmp / "Dog_9", ON_DISK_SHARE, tmp / f"run{i}", tmp / "cache", KAGGLE
                )
                print(f"| {what} | {peak:.0f} | {wall:.1f} |", flush=True)
        return
    print(
        f"one fold of `nnlab seizure bonn` on {args.channels}-channel segments of "
        f"{args.seconds:g} s at {args.rate:g} Hz (1 epoch, dim 16, depth 1, 2 threads)\n"
    )
    print(
        "| segments | samples MB | held in memory: peak MB | wall s | on disk: peak MB | wall s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for k in (1, 2, 4):
            n = k * args.segments
            data = tmp / f"set{n}"
            size = make_set(data, n, args.seconds, args.rate, args.channels) / 2**20
            options = ["--pair", "interictal-preictal", "--fs", str(args.rate), "--fold", "0"]
            options += ["--folds", "5", "--epochs", "1", "-m", "dim=16", "-m", "depth=1"]
            options += ["-m", "heads=2"]
            held = run(data, 1000.0, tmp / f"memory{n}", tmp / f"cache-memory{n}", options)
            disk = run(data, 0.0, tmp / f"disk{n}", tmp / f"cache-disk{n}", options)
            print(
                f"| {n} | {size:.0f} | {held[0]:.0f} | {held[1]:.1f} | {disk[0]:.0f} | "
                f"{disk[1]:.1f} |",
                flush=True,
            )
            for p in data.rglob("*.npy"):
                p.unlink()


if __name__ == "__main__":
    main()
