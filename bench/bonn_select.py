"""Choosing the Bonn transformer's recipe by nested validation: nothing here reads a test fold.

For each outer fold k in --outer of the benchmark's stratified k-fold split (the same folds as
bench/bonn.py: `fold_parts(y, folds, k, seed, ...)`), the outer *training* part (its training and
validation segments; the outer test fold is dropped) is split again by a stratified --inner-fold
cross-validation. Each candidate recipe is trained by the Bonn task itself on each inner training
part (less its own validation tenth, which picks the checkpoint as in the task) and predicts the
inner test part; over all inner folds of all outer folds every outer-training segment is predicted
once per outer fold.

    NNLAB_DATA=../shared/data nice -n 5 python bench/bonn_select.py --out DIR [--pair D-E]
        [--outer 0,1] [--inner 3] [--candidates base,crop18,...] [--jobs 2] [--seed 0]
    python bench/bonn_select.py --combine DIR1,DIR2   # pool the tables of earlier selections
    # another segment dataset, its segments grouped by recording (outer and inner folds alike):
    python bench/bonn_select.py --out DIR --data SET --pair interictal-ictal --group 'REGEX'
        [--group-block 6] [--set fs=256 --set mains=60 ...]   # other `seizure bonn` options

Each inner run is read twice: with the checkpoint the task chooses (lowest loss on its own small
validation part) and with the final epoch's weights (`NAME@last`): with 12-18 validation segments
one confidently wrong segment can make an early epoch's loss the lowest.

Prints, per candidate, the pooled inner-test accuracy, errors, log loss and AUC, and the choice:
the highest pooled accuracy; on a tie the lower log loss; on a tie of both the cheaper recipe (the
earlier in CANDIDATES). Each inner run is kept under DIR (resumable: a finished one is read back).
D-E is the default pair: the hardest split, the one whose target is unmet, and the one where
recipes differ most. When two pairs disagree, --combine pools their tables (the candidates every
selection ran): errors and predictions summed, log loss weighted by predictions; the same rule.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from nnlab.run import RunDir
from nnlab.tasks.bonn import BonnTask, fold_parts, segment_groups, without_validation

# the defaults since 2026-11-27 (crop18-all-fmax40 below), and the Bonn model's towers; crops of
# 18 s where segments are longer (-1: Bonn's 23.6-s ones), whole segments of another dataset
FMAX40 = {"crop_s": -1.0, "test_crops": 5, "checkpoint": "last", "fmax": 40.0}
TWO_TOWERS = ["temporal", "spectral"]

# name -> (BonnConfig fields, TrainConfig fields); cheapest first (the tie-break)
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "base": ({}, {}),  # the task defaults before this change: whole segment, 30 epochs
    "crop18": ({"crop_s": 18.0, "test_crops": 5}, {}),  # 35 of 46 frames
    "crop14": ({"crop_s": 14.0, "test_crops": 5}, {}),  # 27 of 46 frames
    "crop18-60ep": ({"crop_s": 18.0, "test_crops": 5}, {"epochs": 60}),
    # no validation part: it trains too, and the final epoch is tested
    "crop18-all": ({"crop_s": 18.0, "test_crops": 5, "checkpoint": "last"}, {}),
    # the recordings were band-passed at 0.53-40 Hz before digitisation: the bins above 40 Hz
    # hold no EEG (41 of 81 bins kept); after the incumbent, so a tie keeps it
    "crop18-all-fmax40": (FMAX40, {}),
    # 2026-11-27, against the incumbent above (listed after it, so a tie keeps it): capacity,
    # regularisation and length of training, one at a time
    "fmax40-dim64": ({**FMAX40, "model_args": {"towers": TWO_TOWERS, "dim": 64}}, {}),
    "fmax40-dropout3": (
        {**FMAX40, "model_args": {"towers": TWO_TOWERS, "dim": 32, "dropout": 0.3}},
        {},
    ),
    "fmax40-60ep": (FMAX40, {"epochs": 60}),
    # 2026-11-27 (a later session), against the incumbent: the STFT's resolution. 2-s segments
    # halve the bins' width (0.5 Hz: seizure rhythms of 3-20 Hz resolved finer); 0.5-s segments
    # halve the frames' hop (0.25 s: spikes and their spacing resolved finer)
    "fmax40-seg2": ({**FMAX40, "segment_s": 2.0, "overlap_s": 1.0}, {}),
    "fmax40-seg05": ({**FMAX40, "segment_s": 0.5, "overlap_s": 0.25}, {}),
    # 2026-11-27 (a third session), against the incumbent: a random gain of each training
    # segment (+-3 or +-6 dB, amplitude x0.7-1.4 or x0.5-2), so that the model reads rhythm and
    # spectral shape more and a recording's absolute amplitude less (D-E's persistent errors are
    # quiet seizures and one loud interictal segment; amplitude also differs between sets)
    "fmax40-gain3": ({**FMAX40, "gain_db": 3.0}, {}),
    "fmax40-gain6": ({**FMAX40, "gain_db": 6.0}, {}),
}


def inner_config(name: str, pair: str, folds: int, outer: int, seed: int, data: dict | None = None):
    """The candidate's config for outer fold `outer`; `data`: BonnConfig fields of the dataset
    (data, group, group_block, fs, mains, ...), which the candidates leave alone."""
    from nnlab.tasks.bonn import BonnConfig

    fields, train = CANDIDATES[name]
    base = BonnConfig(**(data or {}))
    # the pre-change task defaults, whatever the defaults are now: candidates differ only in
    # what they name
    fields = {"crop_s": 0.0, "test_crops": 5, "checkpoint": "best", **fields}
    train = {"epochs": 30, **train}
    tcfg = dataclasses.replace(base.train, seed=seed, device="cpu", **train)
    return dataclasses.replace(base, pair=pair, folds=folds, fold=outer, train=tcfg, **fields)


class InnerTask(BonnTask):
    """The Bonn task on inner fold `inner` of the outer training part of outer fold `cfg.fold`."""

    def __init__(self, cfg, inner: int, inner_folds: int):
        super().__init__(cfg)
        self.inner, self.inner_folds = inner, inner_folds

    def split(self, y: np.ndarray, names=None) -> dict[str, np.ndarray]:
        """With --group, the outer and the inner folds both keep each group whole."""
        c = self.cfg
        groups = segment_groups(names, c.group, c.group_block) if names is not None else None
        o = fold_parts(y, c.folds, c.fold, c.train.seed, c.val_fraction, groups)
        rest = np.sort(np.concatenate([o["train"], o["val"]]))  # the outer test fold: out
        inner = groups[rest] if groups is not None else None
        p = fold_parts(y[rest], self.inner_folds, self.inner, c.train.seed, c.val_fraction, inner)
        p = p if c.checkpoint == "best" else without_validation(p)
        return {k: rest[v] for k, v in p.items()}


def last_epoch_cases(task: InnerTask, run: RunDir) -> list[dict]:
    """The inner-test predictions of the run's final-epoch weights (last.safetensors) instead of
    the checkpoint of lowest validation loss: the same data, crops and averaging."""

    from nnlab.tasks.base import load_model

    data = task.datasets(run, resume=True)  # the saved split, the same training statistics
    probs, _ = task.predict(load_model(run, "last", device="cpu"), data["test"])
    names = [task.names[i] for i in task.parts["test"]]
    return [
        {"name": n, "true": int(t), "prob": float(p)}
        for n, t, p in zip(names, data["test"].labels.tolist(), probs[:, 1].tolist())
    ]


def run_inner(job: tuple[str, str, int, int, int, int, str, int, dict]) -> dict:
    """One candidate on one inner fold of one outer fold: its inner-test predictions (of the
    checkpoint the task chooses and of the final epoch)."""
    import shutil

    import torch

    from nnlab.tasks.base import run_task

    name, pair, folds, outer, inner, inner_folds, out, seed, data = job
    torch.set_num_threads(1)
    path = Path(out) / name / f"outer{outer}-inner{inner}"
    done = path / "inner_result.json"
    task = InnerTask(inner_config(name, pair, folds, outer, seed, data), inner, inner_folds)
    if done.exists():
        result = json.loads(done.read_text())
        if "last_cases" not in result:  # written before the final-epoch predictions were added
            result["last_cases"] = last_epoch_cases(task, RunDir.open(path))
            done.write_text(json.dumps(result))
        return result
    if path.exists():  # an interrupted run: start it again
        shutil.rmtree(path)
    t0 = time.perf_counter()
    run = RunDir.create("bonn", out=path)
    s = run_task(task, run)
    cases = json.loads((run.path / "test_predictions.json").read_text())
    result = {
        "candidate": name,
        "outer": outer,
        "inner": inner,
        "best_epoch": s["best_epoch"],
        "wall_s": time.perf_counter() - t0,
        "cases": [{k: c[k] for k in ("name", "true", "prob")} for c in cases],
        "last_cases": last_epoch_cases(task, run),
    }
    done.write_text(json.dumps(result))
    return result


def pooled(results: list[dict], key: str = "cases") -> dict:
    from sklearn.metrics import roc_auc_score

    y = np.array([c["true"] for r in results for c in r[key]])
    p = np.array([c["prob"] for r in results for c in r[key]])
    q = np.clip(p, 1e-6, 1 - 1e-6)
    wrong = [c["name"] for r in results for c in r[key] if (c["prob"] > 0.5) != c["true"]]
    return {
        "predictions": len(y),
        "acc": float(((p > 0.5) == y).mean()),
        "errors": len(wrong),
        "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))),
        "auc": float(roc_auc_score(y, p)),
        "wrong": sorted(wrong),
        "wall_s": float(sum(r["wall_s"] for r in results)),
    }


def combine(dirs: list[Path]) -> None:
    """Pool the selection.json tables of several selections and choose by the same rule."""
    tables = [json.loads((d / "selection.json").read_text())["table"] for d in dirs]
    rows = [n for n in tables[0] if all(n in t for t in tables[1:])]
    pooled_rows = {}
    for n in rows:
        count = sum(t[n]["predictions"] for t in tables)
        errors = sum(t[n]["errors"] for t in tables)
        loss = sum(t[n]["log_loss"] * t[n]["predictions"] for t in tables) / count
        pooled_rows[n] = {"predictions": count, "errors": errors, "acc": 1 - errors / count}
        pooled_rows[n]["log_loss"] = loss
    choice = min(
        rows, key=lambda n: (-pooled_rows[n]["acc"], pooled_rows[n]["log_loss"], rows.index(n))
    )
    print(f"pooled over {', '.join(str(d) for d in dirs)}")
    print(
        f"{'candidate':16s} {'n':>4s} {'acc':>7s} {'errors':>6s} {'log loss':>9s}   per selection"
    )
    for n in rows:
        t = pooled_rows[n]
        each = " | ".join(f"{x[n]['errors']}/{x[n]['predictions']}" for x in tables)
        print(
            f"{n:16s} {t['predictions']:4d} {t['acc']:7.4f} {t['errors']:6d} "
            f"{t['log_loss']:9.4f}   {each}"
        )
    print(f"choice: {choice} ({CANDIDATES[choice.split('@')[0]]})")


def dataset_fields(args) -> dict:
    """The BonnConfig fields of the dataset: --data, --group, --group-block and each --set
    KEY=VALUE (a JSON value, else the text), checked as `nnlab seizure bonn` checks them."""
    from nnlab.tasks.bonn import BonnConfig

    fields = {"data": args.data, "group": args.group, "group_block": args.group_block}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    from nnlab.errors import NNLabError

    try:
        BonnConfig(**fields, pair=args.pair, folds=args.folds).check()
    except TypeError as e:
        raise SystemExit(f"bonn_select.py: --set: {e}") from None
    except NNLabError as e:
        raise SystemExit(f"bonn_select.py: {e}") from None
    return fields


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--combine", default="", help="DIR1,DIR2: pool earlier selections' tables")
    ap.add_argument("--pair", default="D-E")
    ap.add_argument("--folds", type=int, default=10, help="outer folds (as bench/bonn.py)")
    ap.add_argument("--outer", default="0,1", help="the outer folds whose training parts are used")
    ap.add_argument("--inner", type=int, default=3, help="inner stratified folds")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="processes, one torch thread each")
    ap.add_argument("--data", default="bonn", help="as `nnlab seizure bonn --data`")
    ap.add_argument("--group", default="", help="as `nnlab seizure bonn --group`")
    ap.add_argument("--group-block", type=int, default=0, help="as `seizure bonn --group-block`")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another `seizure bonn` option of the dataset: fs, rate, mains, column, class_pattern",
    )
    args = ap.parse_args()
    if args.combine:
        return combine([Path(d) for d in args.combine.split(",")])
    if args.out is None:
        ap.error("--out is needed (or --combine)")
    names = args.candidates.split(",")
    outers = [int(k) for k in args.outer.split(",")]
    data = dataset_fields(args)
    jobs = [
        (n, args.pair, args.folds, k, j, args.inner, str(args.out), args.seed, data)
        for n in names
        for k in outers
        for j in range(args.inner)
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_inner, jobs))
    table = {}
    for n in names:
        mine = [r for r in results if r["candidate"] == n]
        table[n] = pooled(mine)  # the checkpoint of lowest validation loss (the task's)
        table[f"{n}@last"] = pooled(mine, "last_cases")  # the final epoch's weights
    rows = list(table)
    # highest accuracy, then lowest log loss, then the earlier (cheaper) candidate
    choice = min(rows, key=lambda n: (-table[n]["acc"], table[n]["log_loss"], rows.index(n)))
    (args.out / "selection.json").write_text(
        json.dumps({"args": vars(args) | {"out": str(args.out)}, "table": table, "choice": choice})
    )
    where = "Bonn" if args.data == "bonn" else args.data
    print(
        f"{where} {args.pair}: inner {args.inner}-fold CV inside the training parts of outer "
        f"folds {outers} (seed {args.seed}); pooled inner-test predictions"
    )
    print(f"{'candidate':16s} {'n':>4s} {'acc':>7s} {'errors':>6s} {'log loss':>9s} {'AUC':>7s}")
    for n in rows:
        t = table[n]
        print(
            f"{n:16s} {t['predictions']:4d} {t['acc']:7.4f} {t['errors']:6d} "
            f"{t['log_loss']:9.4f} {t['auc']:7.4f}   wrong: {' '.join(t['wrong']) or '-'}"
        )
    recipe = CANDIDATES[choice.split("@")[0]]
    print(f"choice: {choice} ({recipe}); {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
