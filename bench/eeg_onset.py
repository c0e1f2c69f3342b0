"""Seizure onsets in real EEG: `nnlab seizure detect` with Bonn D-E models on recordings stitched
from the segments each model never saw.

    NNLAB_DATA=../shared/data python bench/eeg_onset.py --run runs/bonn_DE --out runs/onset

Issue 16's target -- `detect` on a real recording finds a seizure's onset within 30 s and raises
no alarm in the minutes before, with a model trained on comparable data -- needs a continuous
recording with annotated seizures, which this machine lacks (CHB-MIT is not here). Bonn's
segments are real EEG, cut from intracranial recordings of the same five patients: D between
seizures inside the epileptogenic zone, E during seizures. Per fold k of a 10-fold D-E run
(`nnlab seizure bonn --pair D-E --folds 10`, trained first when --run does not exist), the 10 D
and 10 E segments of its *test* fold are shuffled (seed k) and stitched (`nnlab.data.bonn.stitch`,
0.5-s cross-fades, D-D junctions the same as D-E ones) as D x5, E x5, D x5, E x5: two "seizures"
of 118 s, each after 118 s of interictal EEG. The signal is resampled to 256 Hz and written as an
EDF+ file with a CHB-MIT summary; `nnlab seizure detect FILE --model FOLD_k --summary SUMMARY`
(that fold's model only, the detection defaults: 18-s windows every 4.5 s, 3 of 4 positive, 300 s
refractory) gives each seizure's first alarm and the false alarms.

What this is not: a continuous recording. A stitched onset is abrupt (an E segment is ictal from
its first sample), each E segment comes from another seizure, and the "minutes before" are two.
It measures the detector's latency and its false alarms on real EEG it never trained on; the
clinical check (a real onset, evolving over seconds, after hours of interictal EEG) needs CHB-MIT.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

FS_FILE = 256.0
LAYOUT = "D5 E5 D5 E5"


def train(run: Path) -> None:
    """The 10-fold D-E run with today's defaults (the command of docs/RESULTS.md's Bonn table)."""
    cmd = [sys.executable, "-m", "nnlab", "seizure", "bonn", "--pair", "D-E", "--folds", "10"]
    subprocess.run([*cmd, "--out", str(run)], check=True)


def recording(
    fold_run, data, k: int, shuffle: int = 0
) -> tuple[np.ndarray, list[tuple[float, float]], float]:
    """Fold k's stitched test segments at FS_FILE, in the order of shuffle number `shuffle` (0:
    seed k, the figure's): (x (N,), seizures [(onset, offset)] s, the interictal seconds)."""
    import json

    from nnlab.data.bonn import stitch
    from nnlab.data.eeg import resample

    split = json.loads((fold_run.path / "split.json").read_text())
    index = {name: i for i, name in enumerate(data.names)}
    rng = np.random.default_rng(k if shuffle == 0 else [k, shuffle])
    pools = {s: list(rng.permutation(sorted(n for n in split["test"] if n[0] == s))) for s in "DE"}
    order = []
    for part in LAYOUT.split():
        order += [(part[0], pools[part[0]].pop()) for _ in range(int(part[1:]))]
    x, bounds = stitch([data.x[index[name]] for _, name in order], data.fs)
    y, _ = resample(x[None], data.fs, FS_FILE)
    n = y.shape[1] // int(FS_FILE) * int(FS_FILE)  # whole 1-s EDF records
    t = bounds / data.fs
    seizures, interictal, i = [], 0.0, 0
    while i < len(order):  # runs of one set: E runs are seizures
        j = i
        while j < len(order) and order[j][0] == order[i][0]:
            j += 1
        on, off = t[i], min(t[j], n / FS_FILE)
        if order[i][0] == "E":
            seizures.append((round(on, 3), round(off, 3)))
        else:
            interictal += off - on
        i = j
    return y[0, :n], seizures, interictal


def figure(found: list[dict], out: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 1.1 * len(found) + 0.8))
    axes = fig.subplots(len(found), 1, sharex=True, squeeze=False)[:, 0]
    for ax, f in zip(axes, found):
        with open(f["windows_csv"]) as fh:
            w = list(csv.DictReader(fh))
        end = np.array([float(r["end_s"]) for r in w])
        p = np.array([float(r["probability"]) for r in w])
        for on, off in f["seizures"]:
            ax.axvspan(on, off, color="tab:red", alpha=0.2)
            ax.axvline(on, color="tab:red", lw=1)
        ax.plot(end, p, lw=1, color="C0")
        ax.axhline(0.5, color="k", ls="--", lw=0.6)
        a = np.asarray(f["alarms_s"])
        ax.plot(a, np.full(len(a), 1.08), "v", color="tab:red", ms=6, clip_on=False)
        ax.set_ylim(-0.05, 1.15)
        ax.set_yticks([0, 1])
        ax.set_ylabel(f"fold {f['fold']}", fontsize=8)
    axes[-1].set_xlabel("time in the stitched recording (s); P(seizure) at each window's end")
    axes[0].set_title(
        "Bonn D-E: held-out segments stitched D x5, E x5, D x5, E x5 (red: seizure segments, "
        "triangles: alarms)",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def stitched_run(args, data, folds, shuffle: int) -> tuple[list[dict], list[dict]]:
    """Every fold's recording in order number `shuffle`, written and detected: (a row per
    seizure, a dict per recording)."""
    from nnlab.data.eeg import Recording, summary_lines, write_edf
    from nnlab.io import atomic_write_text
    from nnlab.tasks.seizure import detect_file

    out = args.out if shuffle == 0 else args.out / f"shuffle{shuffle}"
    lines = [f"Data Sampling Rate: {FS_FILE:g} Hz", ""]
    staged = []
    for k, fold in enumerate(folds):
        x, seizures, interictal = recording(fold, data, k, shuffle)
        name = f"bonn_DE_fold{k:02d}.edf"
        write_edf(out / name, Recording(name, FS_FILE, ["HIPP-REF"], x[None]))
        lines += summary_lines(name, seizures)
        staged.append((k, fold, name, seizures, interictal, len(x) / FS_FILE))
    summary = out / "bonn_DE-summary.txt"
    atomic_write_text(summary, "\n".join(lines))
    found, rows = [], []
    for k, fold, name, seizures, interictal, seconds in staged:
        f = detect_file(out / name, fold, out / "detections", summary=summary, overwrite=True)
        events = f["events"]
        false_s = np.asarray(events["false_alarms_s"])
        for e in events["seizures"]:
            before = ((false_s >= e["onset_s"] - 118) & (false_s < e["onset_s"])).sum()
            rows.append({"latency_s": e["latency_s"], "alarms_2min_before": int(before)})
        found.append(
            {
                "fold": k,
                "seizures": seizures,
                "alarms_s": f["alarms_s"],
                "false": events["false_alarms"],
                "interictal_s": interictal,
                "windows_csv": out / "detections" / f"{Path(name).stem}_windows.csv",
                "rule": (f["window_s"], f["hop_s"], f["alarm_k"], f["alarm_n"]),
            }
        )
        lat = ", ".join(
            "missed" if e["latency_s"] is None else f"{e['latency_s']:+.1f} s"
            for e in events["seizures"]
        )
        print(
            f"shuffle {shuffle}, fold {k}: {seconds:.0f} s, seizures at "
            f"{', '.join(f'{on:.0f}' for on, _ in seizures)} s: first alarm {lat}; "
            f"false alarms {events['false_alarms']}"
        )
    return rows, found


def report(rows: list[dict], found: list[dict], what: str) -> None:
    lat = np.array([np.nan if r["latency_s"] is None else r["latency_s"] for r in rows])
    hit = ~np.isnan(lat)
    hours = sum(f["interictal_s"] for f in found) / 3600
    false = sum(f["false"] for f in found)
    window_s, hop_s, k_, n_ = found[0]["rule"]
    print(
        f"\n{what}: {len(rows)} stitched seizure onsets in {len(found)} recordings "
        f"({window_s:.3g}-s windows every {hop_s:.3g} s, alarms {k_} of {n_}):"
    )
    print(
        f"  found {hit.sum()} of {len(rows)}; latency from the onset: median "
        f"{np.median(lat[hit]):.1f} s, max {lat[hit].max():.1f} s, within 30 s: "
        f"{(lat[hit] <= 30).sum()} of {len(rows)}"
    )
    print(
        f"  alarms in the 2 minutes before an onset: {sum(r['alarms_2min_before'] for r in rows)};"
        f" false alarms: {false} in {hours * 60:.1f} interictal minutes ({false / hours:.2f}/h)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a Bonn D-E run (trained if absent)")
    ap.add_argument("--out", type=Path, default=Path("runs/onset"))
    ap.add_argument("--figure", type=Path, default=None, help="the stacked timelines (PNG)")
    ap.add_argument(
        "--shuffles",
        type=int,
        default=1,
        help="orders of each fold's segments to stitch (1: the figure's only); more put the "
        "misclassified segments elsewhere in the recordings",
    )
    args = ap.parse_args()
    if not args.run.exists():
        train(args.run)

    from nnlab.data.bonn import load_bonn
    from nnlab.run import RunDir

    data = load_bonn("DE")
    folds = RunDir.open(args.run).children()
    every = [stitched_run(args, data, folds, shuffle) for shuffle in range(args.shuffles)]
    report(*every[0], "the figure's order (shuffle 0)")
    if args.shuffles > 1:
        rows = [r for rs, _ in every for r in rs]
        found = [f for _, fs in every for f in fs]
        report(rows, found, f"all {args.shuffles} shuffles")
    if args.figure is not None:
        figure(every[0][1], args.figure)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
