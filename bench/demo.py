"""Benchmark of `nnlab demo`: test accuracy and time of the MLP and the CNN on the embedded digits,
over several seeds, on whatever device `auto` picks (state the machine when quoting the figures).

    python bench/demo.py [--seeds 0 1 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from nnlab.tasks.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )
    results: dict[str, list[tuple[float, float, float]]] = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            _, rows = run_demo(out=f"{tmp}/demo", epochs=args.epochs, seed=seed)
            total = time.perf_counter() - t0
        for r in rows:
            results.setdefault(r["model"], []).append(
                (r["test accuracy"], r["train time (s)"], r["wall time (s)"])
            )
        print(
            f"seed {seed}: "
            + ", ".join(f"{r['model']} {r['test accuracy']:.4f}" for r in rows)
            + f"; whole demo {total:.1f} s"
        )
    print(
        f"\n| model | test accuracy (mean ± sd over {len(args.seeds)} seeds) | train time (s) | "
        "wall time incl. eval + figures (s) |"
    )
    print("| --- | --- | --- | --- |")
    for model, vals in results.items():
        a = np.array(vals)
        print(
            f"| {model} | {a[:, 0].mean():.4f} ± {a[:, 0].std():.4f} | {a[:, 1].mean():.1f} | "
            f"{a[:, 2].mean():.1f} |"
        )


if __name__ == "__main__":
    main()
