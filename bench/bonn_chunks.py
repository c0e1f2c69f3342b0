"""Bonn cut into 1-s rows, as the UCI "Epileptic Seizure Recognition" table is made: how much of a
cross-validated accuracy is the leak of chunks of one recording on both sides of a fold?

    NNLAB_DATA=../shared/data python bench/bonn_chunks.py [--pair D-E] [--out runs/bonn_chunks]

The UCI table (11,500 rows, X1..X178, y) is Bonn's 500 segments, each cut into 23 chunks of 178
samples (1.025 s at 173.61 Hz), shuffled. Here the sets on this machine (A, D, E) are cut the
same way and written as such a table, each row named 'X<chunk>.<set><segment>' (E016's chunks:
X1.E016 ... X23.E016). Then `nnlab seizure bonn --data TABLE` cross-validates it twice with the
same settings (10 folds, STFT segments of 0.25 s every 0.125 s: 7 frames of a 1-s row):

- folds by row: the 23 chunks of a recording spread over the folds (what a table of rows
  invites, and what many published results on the UCI set did);
- folds by recording: `--group '\\.(\\w+)$'`, every chunk of a recording in one fold.

Printed: accuracy, sensitivity and specificity of both (mean over folds), and their difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", default="D-E")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("runs/bonn_chunks"))
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from rich.console import Console

    from nnlab.data.bonn import BONN_FS, load_bonn, pair_labels
    from nnlab.run import RunDir
    from nnlab.tasks.bonn import BonnConfig, run_bonn_cv

    negative, positive = pair_labels(args.pair)
    bonn = load_bonn(negative + positive)
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / f"bonn_{args.pair}_chunks.csv"
    if not table.exists():
        lines = [",".join(["", *(f"X{i}" for i in range(1, 179)), "y"])]
        for x, name in zip(bonn.x, bonn.names):
            letter = name[0]  # 'E016'
            for k in range(23):
                chunk = x[k * 178 : (k + 1) * 178]
                lines.append(f"X{k + 1}.{name}," + ",".join(f"{v:g}" for v in chunk) + f",{letter}")
        table.write_text("\n".join(lines) + "\n")
    base = BonnConfig(
        data=str(table),
        pair=f"{'+'.join(negative)}-{'+'.join(positive)}",  # the table's classes: A+D-E
        fs=BONN_FS,
        folds=args.folds,
        segment_s=0.25,
        overlap_s=0.125,
    )
    results = {}
    for name, group in (("by row", ""), ("by recording", r"\.(\w+)$")):
        cfg = dataclasses.replace(base, group=group)
        path = args.out / ("rows" if not group else "recordings") / args.pair
        t0 = time.perf_counter()
        if (path / "summary.json").exists():
            summary = RunDir.open(path).summary()
        else:
            run = RunDir.open(path) if path.exists() else RunDir.create("bonn-chunks", path)
            summary = run_bonn_cv(cfg, run, Console(), resume=(path / "fold00").exists())
        results[name] = {
            k: summary[k] for k in ("acc", "acc_sd", "sensitivity", "specificity", "pooled")
        }
        results[name]["wall_s"] = time.perf_counter() - t0
    rows = len(bonn.names) * 23
    print(f"\nBonn {args.pair} as 1-s rows ({rows} rows of 178 samples), {args.folds} folds\n")
    print("| folds | accuracy | sensitivity | specificity | wrong rows |\n" + "| --- " * 5 + "|")
    for name, r in results.items():
        print(
            f"| {name} | {r['acc']:.4f} ± {r['acc_sd']:.4f} | {r['sensitivity']:.4f} | "
            f"{r['specificity']:.4f} | {r['pooled']['errors']} of {r['pooled']['segments']} |"
        )
    gap = results["by row"]["acc"] - results["by recording"]["acc"]
    print(f"\nfolds by row minus folds by recording: {gap:+.4f} accuracy")
    (args.out / f"results_{args.pair}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
