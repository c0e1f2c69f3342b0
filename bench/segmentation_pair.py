"""Two finished segmentation runs on the same split, compared per test image (for runs trained
with different budgets, which `nnlab segment compare` does not do):

    python bench/segmentation_pair.py RUN_A RUN_B

Prints each run's test Dice / IoU and the per-image observations of RUN_A against RUN_B."""

from __future__ import annotations

import argparse

from nnlab.run import RunDir
from nnlab.tasks.segment import paired_observations, read_cases


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("runs", nargs=2)
    args = ap.parse_args()
    runs = [RunDir.open(r) for r in args.runs]
    for run in runs:
        s = run.summary()
        print(
            f"{run.path}: {s['model']} at {s['size']} px, test Dice {s['test/dice']:.3f}, "
            f"IoU {s['test/iou']:.3f}, "
            f"missed {s['test/missed']}, {s['parameters']:,} parameters, "
            f"{s['train_time_s'] / 60:.1f} min"
        )
    name = runs[0].summary()["model"]
    print(" ".join(paired_observations(name, read_cases(runs[0]), read_cases(runs[1]))))


if __name__ == "__main__":
    main()
