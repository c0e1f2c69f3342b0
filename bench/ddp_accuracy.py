"""DDP on CPU: the same training with 1 process (batch 128) and with 2 processes under torchrun
(gloo, batch 64 per rank = the same effective batch of 128), final test accuracy of each.

    NNLAB_DATA=../shared/data python bench/ddp_accuracy.py [--epochs 5] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(nproc: int, epochs: int, seed: int, out: Path) -> tuple[float, float]:
    torchrun = str(Path(sys.executable).parent / "torchrun")
    batch = 128 // nproc
    args = [
        "-m",
        "nnlab",
        "train",
        "--data",
        "mnist",
        "--model",
        "mlp",
        "-m",
        "hidden=[512,256]",
        "--epochs",
        str(epochs),
        "--lr",
        "1e-3",
        "--batch-size",
        str(batch),
        "--seed",
        str(seed),
        "--out",
        str(out),
    ]
    cmd = (
        [sys.executable, *args]
        if nproc == 1
        else [torchrun, "--standalone", f"--nproc_per_node={nproc}", *args]
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // nproc))}  # 2 cores in total either way
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())["test/acc"], time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for nproc in (1, 2):
                acc, wall = train(nproc, args.epochs, seed, Path(tmp) / f"s{seed}-n{nproc}")
                print(
                    f"seed {seed}, {nproc} process(es): test accuracy {acc:.4f}, wall {wall:.0f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
