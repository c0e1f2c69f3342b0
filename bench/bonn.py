"""Bonn segment classification, one benchmark run: on the same stratified k folds (same seed) of
each split (A-E, D-E, AD-E), the three-tower transformer (`nnlab seizure bonn`'s defaults), the
classic baseline (Welch log band powers 0.5-4/4-8/8-13/13-30/30-60 Hz, standard deviation, line
length, zero-crossing rate -> RandomForestClassifier(n_estimators=300, random_state=seed)) and,
when braindecode is installed, its EEGNet on the raw segments.

    NNLAB_DATA=../shared/data python bench/bonn.py [--out DIR] [--splits A-E,D-E,AD-E]
        [--folds 10] [--fold-limit N] [--seed 0] [--threads 1] [--jobs 1] [--resume]

Prints accuracy, sensitivity (seizure recall) and specificity per split and method (mean and sd
over the test folds), the transformer's gate weights per class, and the wall time of each.

Nothing is chosen on the test folds: the transformer's hyperparameters are the task defaults
(chosen by nested validation inside the training parts of a few outer folds, bench/bonn_select.py);
its checkpoint is chosen by validation loss on the validation part carved from the training folds.
With --jobs N the transformer's folds (of every split, in the order of --splits) train in N
processes of --threads torch threads each; the summaries are then built from the finished folds.
The random forest and EEGNet are fitted on all training folds (train + validation part)
with fixed settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnlab.run import RunDir
from nnlab.tasks.bonn import BonnConfig, BonnTask, bonn_segments, fold_parts, run_bonn_cv
from nnlab.train import StepOutput

METRICS = ("acc", "sensitivity", "specificity")


def scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "acc": float((pred == y).mean()),
        "sensitivity": float((pred[y == 1] == 1).mean()),
        "specificity": float((pred[y == 0] == 0).mean()),
    }


def summarise(method: str, split: str, per_fold: list[dict[str, float]], wall: float) -> dict:
    row = {"method": method, "split": split, "folds": len(per_fold)}
    for m in METRICS:
        values = [f[m] for f in per_fold]
        row[m], row[f"{m}_sd"] = float(np.mean(values)), float(np.std(values))
    row["wall_s"] = wall
    return row


def transformer(cfg: BonnConfig, out: Path, resume: bool, trained: bool) -> tuple[dict, dict]:
    """The cross-validation run of one split; `trained`: its folds were trained by
    `train_folds` (the summary is built from them)."""
    path = out / f"transformer-{cfg.pair}"
    again = (resume or trained) and (path / "config.json").exists()
    run = RunDir.open(path) if again else RunDir.create("bonn", out=path)
    t0 = time.perf_counter()
    s = run_bonn_cv(cfg, run, console=None, resume=again)
    per_fold = [{m: r[m] for m in METRICS} for r in s["rows"]]
    return summarise("transformer", cfg.pair, per_fold, time.perf_counter() - t0), s


def train_fold(job: tuple[BonnConfig, str, int]) -> float:
    """Train one fold into `<parent>/foldNN` (a finished one is kept); its wall time in s."""
    import shutil

    from nnlab.tasks.base import run_task

    cfg, parent, threads = job
    torch.set_num_threads(threads)
    path = Path(parent) / f"fold{cfg.fold:02d}"
    if (path / "summary.json").exists():
        return 0.0
    if path.exists():
        shutil.rmtree(path)
    t0 = time.perf_counter()
    run_task(BonnTask(cfg), RunDir.create(path.name, out=path))
    return time.perf_counter() - t0


def train_folds(cfgs: list[BonnConfig], out: Path, resume: bool, jobs: int, threads: int) -> dict:
    """Every fold of every split in a pool of `jobs` processes: {split: summed fold wall s}."""
    from concurrent.futures import ProcessPoolExecutor

    from nnlab.config import to_dict
    from nnlab.tasks.bonn import BonnCV

    todo = []
    for cfg in cfgs:
        path = out / f"transformer-{cfg.pair}"
        if not (resume and (path / "config.json").exists()):
            RunDir.create("bonn", out=path).save_config({"task": BonnCV.name, **to_dict(cfg)})
        todo += [(dataclasses.replace(cfg, fold=k), str(path), threads) for k in cfg.fold_numbers()]
    with ProcessPoolExecutor(jobs) as pool:
        walls = list(pool.map(train_fold, todo))
    spent: dict[str, float] = {}
    for (cfg, _, _), w in zip(todo, walls):
        spent[cfg.pair] = spent.get(cfg.pair, 0.0) + w
    return spent


def random_forest(cfg: BonnConfig, folds: list[int]) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    from nnlab.signal.features import baseline_features

    t0 = time.perf_counter()
    found = bonn_segments(cfg)
    y = found.y
    features = baseline_features(found.x, found.fs).reshape(len(y), -1)  # (N, 8 C)
    per_fold = []
    for k in folds:
        parts = fold_parts(y, cfg.folds, k, cfg.train.seed, cfg.val_fraction)
        train = np.concatenate([parts["train"], parts["val"]])  # every training fold
        rf = RandomForestClassifier(n_estimators=300, random_state=cfg.train.seed, n_jobs=1)
        rf.fit(features[train], y[train])
        per_fold.append(scores(rf.predict(features[parts["test"]]), y[parts["test"]]))
    return summarise("random forest (8 features)", cfg.pair, per_fold, time.perf_counter() - t0)


class RawSegmentTask(BonnTask):
    """The Bonn fold task for a model of the raw signal, (B, 1, samples) -> (B, 2) logits: whole
    segments, no crops (the transformer's crops are of spectrogram frames)."""

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, y = batch
        logits = model(x)
        prob = torch.softmax(logits.float(), dim=1)[:, 1]
        return StepOutput({"loss": F.cross_entropy(logits, y)}, prob, y)


def braindecode_eegnet(cfg: BonnConfig, folds: list[int], epochs: int) -> dict | str:
    """braindecode's EEGNet (its defaults: F1 8, D 2, temporal kernel 64) on the raw segments,
    z-scored with the training folds' mean and sd, trained by the shared loop for `epochs` epochs
    (AdamW lr 1e-3, cosine, batch 32), the last epoch tested; or the reason it was skipped.

    Not ShallowFBCSPNet, the other model the issue names: in braindecode 1.8.1 it fails on one
    channel (its merged first layer squeezes the (filters, 1) spatial weight to a vector and
    `.mm` raises; `split_first_layer=False` raises AttributeError in its weight init)."""
    try:
        from braindecode.models import EEGNet
    except Exception as e:  # ImportError, or a broken install of one of its dependencies
        return f"{type(e).__name__}: {e}"
    from torch.utils.data import TensorDataset

    from nnlab.train import TrainConfig, Trainer

    t0 = time.perf_counter()
    found = bonn_segments(cfg)
    x, y = found.x, found.y  # (N, C, L)
    per_fold = []
    for k in folds:
        parts = fold_parts(y, cfg.folds, k, cfg.train.seed, cfg.val_fraction)
        train = np.concatenate([parts["train"], parts["val"]])
        mu, sd = x[train].mean(), x[train].std()
        z = torch.from_numpy((x - mu) / sd).float()  # (N, C, 4097)
        labels = torch.from_numpy(y)
        torch.manual_seed(cfg.train.seed)
        model = EEGNet(n_chans=x.shape[1], n_outputs=2, n_times=x.shape[2])
        tcfg = TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, seed=cfg.train.seed, device="cpu")
        trainer = Trainer(model, RawSegmentTask(cfg), tcfg)
        trainer.fit(TensorDataset(z[train], labels[train]))
        model.eval()
        with torch.no_grad():
            pred = model(z[parts["test"]]).argmax(1).numpy()
        per_fold.append(scores(pred, y[parts["test"]]))
        print(f"  EEGNet {cfg.pair} fold {k}: {per_fold[-1]}", flush=True)
    return summarise("braindecode EEGNet", cfg.pair, per_fold, time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out", type=Path, default=Path(f"runs/bench-bonn-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    ap.add_argument("--splits", default="A-E,D-E,AD-E")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--fold-limit", type=int, default=0, help="> 0: only the first N folds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--epochs", type=int, default=0, help="> 0: transformer epochs (default: the task's)"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (a shared machine: 1)"
    )
    ap.add_argument(
        "--jobs", type=int, default=1, help="> 1: train the transformer's folds in N processes"
    )
    ap.add_argument("--resume", action="store_true", help="keep the folds an earlier run finished")
    ap.add_argument(
        "--fmax",
        type=float,
        default=None,
        help="the task's --fmax (default: the task's, -1: the data's band; 0: the second recipe)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    rows, gates, skipped, cfgs = [], {}, None, []
    for split in args.splits.split(","):
        base = BonnConfig()
        train = dataclasses.replace(
            base.train, seed=args.seed, device="cpu", epochs=args.epochs or base.train.epochs
        )
        cfg = dataclasses.replace(
            base, pair=split, folds=args.folds, fold_limit=args.fold_limit, train=train
        )
        if args.fmax is not None:
            cfg = dataclasses.replace(cfg, fmax=args.fmax)
        cfg.check()
        cfgs.append(cfg)
    spent = {}
    if args.jobs > 1:
        spent = train_folds(cfgs, args.out, args.resume, args.jobs, args.threads)
        print(f"transformer folds trained in {time.perf_counter() - t_all:.0f} s", flush=True)
    for cfg in cfgs:
        split, folds = cfg.pair, cfg.fold_numbers()
        row, s = transformer(cfg, args.out, args.resume, args.jobs > 1)
        if split in spent:
            row["wall_s"] = spent[split]  # the folds' own wall times, summed
        rows.append(row)
        gates[split] = s["gates_by_class"]
        print(json.dumps(row), flush=True)
        rows.append(random_forest(cfg, folds))
        print(json.dumps(rows[-1]), flush=True)
        bd = braindecode_eegnet(cfg, folds, train.epochs)
        if isinstance(bd, str):
            skipped = bd
        else:
            rows.append(bd)
            print(json.dumps(bd), flush=True)
    wall = time.perf_counter() - t_all
    (args.out / "results.json").write_text(
        json.dumps(
            {"rows": rows, "gates": gates, "braindecode_skipped": skipped, "wall_s": wall}, indent=1
        )
    )
    print(f"\nBonn, {args.folds}-fold stratified CV (seed {args.seed}), mean ± sd over test folds")
    head = ("accuracy", "sensitivity", "specificity")
    print(f"{'method':30s} {'split':6s} " + " ".join(f"{h:>16s}" for h in head) + "   wall s")
    for r in rows:
        cells = " ".join(f"{r[m]:7.4f} ± {r[m + '_sd']:.4f}" for m in METRICS)
        print(f"{r['method']:30s} {r['split']:6s} {cells} {r['wall_s']:8.0f}")
    if skipped:
        print(f"braindecode skipped: {skipped}")
    print("\ntransformer gate weights (mean over test segments of each true class)")
    for split, by_class in gates.items():
        for c, g in by_class.items():
            towers = ", ".join(f"{t} {v:.3f}" for t, v in g.items() if t != "segments")
            print(f"  {split:6s} {c:12s} ({g['segments']} segments): {towers}")
    if spent:
        print(f"(transformer wall s: the sum of its folds' wall times, {args.jobs} in parallel)")
    print(f"total wall time {wall:.0f} s; runs in {args.out}")


if __name__ == "__main__":
    main()
