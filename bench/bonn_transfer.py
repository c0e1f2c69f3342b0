"""A model trained on one EEG set, run on another it never saw: the Bonn D-E models (intracranial
EEG of epilepsy patients, interictal D against ictal E) on set A (surface EEG of healthy
volunteers, eyes open). Every A segment is a non-seizure, so every alarm is false.

    NNLAB_DATA=../shared/data python bench/bonn_transfer.py --run runs/bonn_DE [--out runs/transfer]

The run is `nnlab seizure bonn --pair D-E --folds 10` (trained first when --run does not exist).
No D-E fold saw an A segment, so all 100 are out of the training set *and* out of its domain:
other electrodes (scalp, not depth), other people (healthy), other amplitudes.

1. Segments: each A segment's P(seizure), the mean over the 10 fold models, each the mean over
   5 evenly spaced 18-s crops -- the test procedure of the cross-validation. Beside it, for
   scale, D's and E's own held-out probabilities from the run (each segment by the one fold
   that did not train on it).
2. A recording: the 100 A segments stitched in a random order (39 min), resampled to 256 Hz,
   written as EDF and read by `nnlab seizure detect` with every fold's model: the false alarms
   per hour of healthy surface EEG under the detection rule (3 of 4 windows every 4.5 s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

FS_FILE = 256.0


def crops_probability(models, x: np.ndarray, crops: int = 5) -> np.ndarray:
    """P(seizure) (N,) of segments x (N, L): the mean over `crops` evenly spaced windows of the
    models' length (and over the models: `window_probabilities`)."""
    from nnlab.tasks.seizure import window_probabilities

    m0 = models[0]
    L = m0.spectral.window_length(m0.fs)
    starts = np.linspace(0, x.shape[1] - L, crops).round().astype(int)
    return np.array([window_probabilities(models, seg[None], starts).mean() for seg in x])


def z_squared(model, x: np.ndarray) -> np.ndarray:
    """(N,) the mean of z^2 over the normalised log spectrogram of 3 crops (start, middle, end)
    of each segment in x (N, L): how far a segment's input lies from the training mean."""
    from nnlab.signal.spectral import prepare_windows

    L = model.spectral.window_length(model.fs)
    starts = np.array([0, (x.shape[1] - L) // 2, x.shape[1] - L])
    return np.array(
        [float((model.norm(prepare_windows(s[None], model.fs, model.spectral, starts)) ** 2).mean())
         for s in x]
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/bonn_DE"))
    ap.add_argument("--out", type=Path, default=Path("runs/transfer"))
    ap.add_argument("--figure", type=Path, default=None, help="P(seizure) of A, D, E (PNG)")
    args = ap.parse_args()

    from nnlab.data.bonn import load_bonn, stitch
    from nnlab.data.eeg import Recording, resample, write_edf
    from nnlab.run import RunDir
    from nnlab.tasks.seizure import detect_file, load_fold_models

    if not (args.run / "summary.json").exists():
        cmd = [sys.executable, "-m", "nnlab", "seizure", "bonn", "--pair", "D-E", "--folds", "10"]
        subprocess.run([*cmd, "--out", str(args.run)], check=True)
    run = RunDir.open(args.run)
    models = load_fold_models(run, device="cpu")
    m0 = models[0]
    if abs(m0.fs - 173.61) > 0.01:
        raise SystemExit(f"{args.run}: not a Bonn run (model rate {m0.fs} Hz)")
    A = load_bonn("A")
    pA = crops_probability(models, A.x)

    from nnlab.tasks.bonn import read_predictions

    held = {}  # D's and E's held-out probabilities, each from the fold that did not train on it
    for child in run.children():
        if child.path.name.startswith("fold"):
            held.update((case["name"], case["prob"]) for case in read_predictions(child))
    pD = np.array([p for n, p in held.items() if n.startswith("D")])
    pE = np.array([p for n, p in held.items() if n.startswith("E")])

    print(f"{args.run}: {len(models)} fold models (D-E), {m0.spectral.window_s:g}-s windows")
    print("| segments | source | models | P(seizure) >= 0.5 | median P | 90th percentile |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, p, how in (
        ("A (healthy, surface)", pA, "all 10, never saw A"),
        ("D (interictal, depth)", pD, "held-out fold"),
        ("E (ictal, depth)", pE, "held-out fold"),
    ):
        print(
            f"| {name} | {len(p)} | {how} | {(p >= 0.5).sum()} of {len(p)} | "
            f"{np.median(p):.3f} | {np.quantile(p, 0.9):.3f} |"
        )
    # the mean of 10 models pulls probabilities toward the middle; each model alone, like D and E
    alone = [int((crops_probability([m], A.x) >= 0.5).sum()) for m in models]
    print(f"A segments called seizure by each fold's model alone: {alone}")
    # are A's inputs out of the range the models were trained on? The mean squared normalised
    # log power of a segment (its 3 crops), against the 99th percentile of the fold's training
    # segments'
    beyond, medians = [], []
    for m in models:
        split = json.loads((m.run.path / "split.json").read_text())
        sets = {s: load_bonn(s) for s in "DE"}
        train = np.stack([sets[n[0]].x[sets[n[0]].names.index(n)] for n in split["train"]])
        q99 = np.quantile(z_squared(m, train), 0.99)
        zA = z_squared(m, A.x)
        beyond.append(int((zA > q99).sum()))
        medians.append((float(np.median(z_squared(m, train))), float(np.median(zA))))
    print(
        "A segments beyond the 99th percentile of each fold's training segments in mean squared "
        f"normalised log power: {beyond}; median, training vs A: "
        + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in medians)
    )
    worst = np.argsort(-pA)[:5]
    print("A segments most like seizures: " + ", ".join(f"{A.names[i]} {pA[i]:.3f}" for i in worst))

    if args.figure is not None:
        figure({"A: healthy, surface (never seen)": pA, "D: interictal, depth": pD,
                "E: ictal, depth": pE}, args.figure)  # fmt: skip
        print(f"figure: {args.figure}")

    order = np.random.default_rng(0).permutation(len(A.x))
    x, _ = stitch([A.x[i] for i in order], A.fs)
    y, _ = resample(x[None], A.fs, FS_FILE)
    n = y.shape[1] // int(FS_FILE) * int(FS_FILE)
    args.out.mkdir(parents=True, exist_ok=True)
    edf = args.out / "bonn_A_stitched.edf"
    write_edf(edf, Recording(edf.stem, FS_FILE, ["SCALP"], y[:, :n]))
    found = detect_file(edf, run, args.out / "detections", overwrite=True, seizures=[])
    hours = found["duration_s"] / 3600
    alarms = found["events"]["false_alarms"]
    print(
        f"\nthe 100 A segments stitched ({found['duration_s'] / 60:.1f} min), `detect` with the "
        f"{found['models']} fold models ({found['window_s']:.3g}-s windows every "
        f"{found['hop_s']:.3g} s, alarms {found['alarm_k']} of {found['alarm_n']}): "
        f"{found['positive']} of {found['windows']} windows positive, {alarms} false alarms "
        f"({alarms / hours:.2f} per hour)"
    )
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "A_prob": dict(zip(A.names, pA.round(6).tolist())),
                "A_positive": int((pA >= 0.5).sum()),
                "A_positive_per_model": alone,
                "A_beyond_training_q99_per_model": beyond,
                "stitched_false_alarms": alarms,
                "stitched_hours": hours,
            },
            indent=2,
        )
    )


def figure(probs: dict[str, np.ndarray], path: Path) -> None:
    """One histogram of P(seizure) per set, the 0.5 threshold marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, len(probs), sharey=True)
    bins = np.linspace(0, 1, 21)
    for ax, (name, p), colour in zip(axes, probs.items(), ("C2", "C0", "C3")):
        ax.hist(p, bins=bins, color=colour)
        ax.axvline(0.5, color="k", ls="--", lw=0.8)
        ax.set_title(f"{name}\n{(p >= 0.5).sum()} of {len(p)} called seizure", fontsize=9)
        ax.set_xlabel("P(seizure)")
    axes[0].set_ylabel("segments")
    fig.suptitle(
        "Bonn D-E models: the sets they learnt (held out) and one they never saw", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
