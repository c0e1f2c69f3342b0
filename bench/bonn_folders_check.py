"""The class-folder route of `nnlab seizure bonn` on real data: Bonn's sets written out as text
folders (one sample per line, as the original distribution) must give the same fold as the .mat
route -- the same test segments and the same probabilities.

    NNLAB_DATA=../shared/data python bench/bonn_folders_check.py [--pair AD-E] [--fold 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnlab.data.bonn import load_bonn, pair_labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", default="AD-E")
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args()
    negative, positive = pair_labels(args.pair)
    bonn = load_bonn(negative + positive)
    with tempfile.TemporaryDirectory(prefix="nnlab-bonn-folders-") as tmp:
        root = Path(tmp) / "bonn-as-text"
        for x, name in zip(bonn.x, bonn.names):
            (root / name[0]).mkdir(parents=True, exist_ok=True)
            np.savetxt(root / name[0] / f"{name}.txt", x, fmt="%d")
        folder_pair = f"{'+'.join(negative)}-{'+'.join(positive)}"
        routes = {
            "mat": ["--pair", args.pair],
            "folders": ["--data", str(root), "--pair", folder_pair, "--fs", str(bonn.fs)],
        }
        cases = {}
        for route, options in routes.items():
            out = Path(tmp) / route
            cmd = [
                "nnlab",
                "seizure",
                "bonn",
                *options,
                "--fold",
                str(args.fold),
                "--out",
                str(out),
            ]
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            path = out / f"fold{args.fold:02d}" / "test_predictions.json"
            cases[route] = json.loads(path.read_text())
    a, b = cases["mat"], cases["folders"]
    same_segments = [c["name"] for c in a] == [c["name"].split("/", 1)[1] for c in b]
    diff = max(abs(x["prob"] - y["prob"]) for x, y in zip(a, b))
    print(
        f"{args.pair}, fold {args.fold}: {len(a)} test segments, the same in both routes: "
        f"{same_segments}; largest probability difference {diff:.3g}"
    )
    sys.exit(0 if same_segments and diff < 1e-6 else 1)


if __name__ == "__main__":
    main()
