"""Do runs give the same figures as an earlier commit? Runs a set of short commands with this
working tree and with COMMIT (checked out into a temporary git worktree, imported through
PYTHONPATH, same interpreter), then compares every figure both logged, epoch by epoch, and the
test figures of summary.json.

    NNLAB_DATA=../shared/data python bench/refit_equivalence.py --against 6e4fc8d

Commands that need data absent here are skipped (said so in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "demo (digits: mlp, cnn, numpy-mlp)": ["demo"],
    "MNIST CNN, 1 epoch, 3000 images, augmented": [
        "train",
        "--data",
        "mnist",
        "--model",
        "cnn",
        "--epochs",
        "1",
        "--limit",
        "3000",
        "--augment",
    ],
    "MNIST ViT 7x7, 1 epoch, 2000 images": [
        "train",
        "--data",
        "mnist",
        "--model",
        "vit",
        "--patch",
        "7",
        "--epochs",
        "1",
        "--limit",
        "2000",
    ],
    "Kvasir U-Net base 8, 64 px, 3 epochs, 60 images/split": [
        "segment",
        "train",
        "--size",
        "64",
        "--base",
        "8",
        "--epochs",
        "3",
        "--limit",
        "60",
    ],
    "Kvasir SegmentViT patch 8, 64 px, 2 epochs, 60 images/split": [
        "segment",
        "train",
        "--model",
        "segvit",
        "--size",
        "64",
        "--patch",
        "8",
        "--epochs",
        "2",
        "--limit",
        "60",
    ],
    "NumPy CNN, digits, 10 epochs": ["numpy", "train", "--arch", "cnn", "--epochs", "10"],
    "NumPy MLP, NIST 2-fold CV, 3 epochs, augmented, blur 1": [
        "numpy",
        "train",
        "--data",
        "nist",
        "--folds",
        "2",
        "--epochs",
        "3",
        "--val-fraction",
        "0",
        "--augment",
        "--blur",
        "1",
    ],
}


def environment(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    if env.get("NNLAB_DATA"):  # the commands run elsewhere: absolute data folders
        env["NNLAB_DATA"] = os.pathsep.join(
            str(Path(p).resolve()) for p in env["NNLAB_DATA"].split(os.pathsep)
        )
    return env


def which_nnlab(pythonpath: str | None, cwd: Path) -> Path:
    code = "import nnlab; print(nnlab.__file__)"
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment(pythonpath),
        check=True,
    )
    return Path(p.stdout.strip()).parent.parent


def run(argv: list[str], out: Path, pythonpath: str | None) -> str | None:
    env = environment(pythonpath)
    # cwd outside the repository: `python -m` puts the cwd first on sys.path, before PYTHONPATH
    p = subprocess.run(
        [sys.executable, "-m", "nnlab", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        cwd=out.parent,
    )
    return None if p.returncode == 0 else (p.stderr.strip().splitlines() or ["?"])[-1]


def records(run_dir: Path) -> dict[str, list[dict]]:
    """metrics.jsonl of the run and of each child run, by relative path."""
    return {
        str(p.parent.relative_to(run_dir)): [json.loads(x) for x in p.read_text().splitlines()]
        for p in sorted(run_dir.rglob("metrics.jsonl"))
    }


def compare(a: Path, b: Path) -> tuple[int, int, float, str]:
    """(figures compared, figures that differ, largest relative difference, first difference)
    over every figure both runs logged, epoch by epoch, and their test figures."""
    ra, rb = records(a), records(b)
    if ra.keys() != rb.keys():
        return 0, 1, float("inf"), f"different runs: {sorted(ra)} vs {sorted(rb)}"
    pairs = []
    for run_name in ra:
        if len(ra[run_name]) != len(rb[run_name]):
            return (
                0,
                1,
                float("inf"),
                f"{run_name}: {len(ra[run_name])} vs {len(rb[run_name])} epochs",
            )
        for x, y in zip(ra[run_name], rb[run_name]):
            keys = sorted(set(x) & set(y) - {"time/epoch_s"})
            pairs += [(f"{run_name} epoch {x['epoch']} {k}", x[k], y[k]) for k in keys]
    for sa in sorted(a.rglob("summary.json")):
        s1, s2 = json.loads(sa.read_text()), json.loads((b / sa.relative_to(a)).read_text())
        keys = sorted(k for k in s1 if k.startswith("test/") and k in s2)
        pairs += [(f"{sa.parent.relative_to(a)} {k}", s1[k], s2[k]) for k in keys]
    diff = [(w, x, y) for w, x, y in pairs if x != y]
    rel = max((abs(x - y) / max(abs(x), abs(y)) for _, x, y in diff), default=0.0)
    first = f"first: {diff[0][0]}: {diff[0][1]!r} vs {diff[0][2]!r}" if diff else ""
    return len(pairs), len(diff), rel, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="6e4fc8d", help="the earlier commit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nnlab-equivalence-"))
    old = work / "old-tree"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.against],
        check=True,
        capture_output=True,
    )
    for tree, path in ((old, str(old)), (REPO, None)):  # each side imports its own code
        if which_nnlab(path, work).resolve() != tree.resolve():
            raise SystemExit(f"the runs would not import nnlab from {tree}")
    print(f"this tree vs {args.against}, NNLAB_DATA={os.environ.get('NNLAB_DATA', '(unset)')}")
    print("\n| run | figures compared | differ | largest relative difference | note |")
    print("| --- | --- | --- | --- | --- |")
    try:
        for i, (name, argv) in enumerate(COMMANDS.items()):
            errors = [run(argv, work / f"{i}-old", str(old)), run(argv, work / f"{i}-new", None)]
            if any(errors):
                print(
                    f"| {name} | 0 | - | - | skipped: {next(e for e in errors if e)} |", flush=True
                )
                continue
            n, differ, rel, note = compare(work / f"{i}-old", work / f"{i}-new")
            print(f"| {name} | {n} | {differ} | {rel:.1e} | {note} |", flush=True)
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], capture_output=True
        )


if __name__ == "__main__":
    main()
