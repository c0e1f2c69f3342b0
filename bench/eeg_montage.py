"""One multi-channel detection model, one hour of EEG, three montages: does `nnlab seizure
detect` give the same alarms when the recording stores its electrodes against a common reference
(as the TUH corpus does) instead of the bipolar pairs the model was trained on? SYNTHETIC EEG.

    python bench/seizure_detect_synthetic.py --root runs/sz-detect     # the model and the hour
    python bench/eeg_montage.py --root runs/sz-detect [--out runs/montage]

The hour is the detection bench's unseen one (22 bipolar derivations of the CHB-MIT montage at
256 Hz, a seizure 2400-2460 s). The generator draws each derivation's noise on its own, so its
22 channels are not differences of any electrode potentials (T7-P7 is not -(P7-T7); the two
chains from Fp1 to O1 do not sum alike). Real bipolar EEG is. So first the hour is made
consistent: electrode potentials by least squares (`referential_montage`: 21 electrodes), and

- **bipolar**: the 22 derivations of those potentials, labelled as the model's channels;
- **referential**: the 21 potentials plus one common reference (40 uV RMS of AR(1) noise and 20 uV
  of 60-Hz hum, the same on every electrode), labelled 'EEG FP1-REF', with the old names T3, T4,
  T5, T6 of TUH files -- `detect` must derive every bipolar channel from two of them;
- **referential at 250 Hz**: the same, resampled to TUH's most common rate.

`detect` runs the bench's 3 fold models on each (and on the original hour). Printed: the seizure's
alarm latency, the false alarms, and the largest difference of the per-window probability from
the bipolar file's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("runs/sz-detect"))
    ap.add_argument("--out", type=Path, default=None, help="default ROOT/montage")
    ap.add_argument("--figure", type=Path, default=None, help="P(ictal) of the montages (PNG)")
    args = ap.parse_args()
    out = args.out or args.root / "montage"

    from nnlab.data.eeg import Recording, read_edf, read_summary, resample, write_edf
    from nnlab.data.montage import OLD_NAMES, referential_montage
    from nnlab.errors import NNLabError
    from nnlab.run import RunDir
    from nnlab.tasks.seizure import detect_file, load_fold_models

    hour = args.root / "unseen" / "chb01" / "chb01_01.edf"
    run_path = args.root / "run"
    if not hour.exists() or not (run_path / "summary.json").exists():
        raise SystemExit(f"{args.root}: no trained run and unseen hour; run the command above")
    run = RunDir.open(run_path)
    channels = list(load_fold_models(run, device="cpu")[0].channels)
    seizures = read_summary(hour.parent / "chb01-summary.txt").file(hour.name).seizures

    out.mkdir(parents=True, exist_ok=True)
    rec = read_edf(hour, channels)
    fs, n = rec.fs, rec.n_samples
    import scipy.signal

    brown = scipy.signal.lfilter([1.0], [1.0, -0.95], np.random.default_rng(0).standard_normal(n))
    t = np.arange(n) / fs
    reference = 40 * brown / brown.std() + 20 * np.sin(2 * np.pi * 60 * t)
    E, names = referential_montage(rec.data, channels)
    sites = [name.split()[1].split("-")[0] for name in names]
    bipolar = np.stack(
        [E[sites.index(c.split("-")[0])] - E[sites.index(c.split("-")[1])] for c in channels]
    )
    kept = float(1 - np.sum((bipolar - rec.data) ** 2) / np.sum(rec.data**2))
    tuh = {v: k for k, v in OLD_NAMES.items()}
    labels = [f"EEG {tuh.get(s, s)}-REF" for s in sites]
    referential = E + reference[None, :].astype(np.float32)
    r250, _ = resample(referential, fs, 250.0)
    files = {
        "original": (hour, "the generator's 22 derivations"),
        "bipolar": (out / "bipolar.edf", "22 derivations of 21 potentials"),
        "referential": (out / "referential.edf", "21 electrodes on one noisy reference"),
        "referential 250 Hz": (out / "referential250.edf", "the same, resampled to 250 Hz"),
    }
    write_edf(files["bipolar"][0], Recording("bipolar", fs, channels, bipolar))
    write_edf(files["referential"][0], Recording("referential", fs, labels, referential))
    write_edf(files["referential 250 Hz"][0], Recording("referential250", 250.0, labels, r250))

    rows, probs = {}, {}
    for name, (path, what) in files.items():
        t0 = time.perf_counter()
        try:
            found = detect_file(
                path, run, out / "detect", overwrite=True, seizures=seizures, device="cpu"
            )
        except NNLabError as e:
            raise SystemExit(f"{name}: {e}") from None
        windows = np.genfromtxt(
            out / "detect" / f"{path.stem}_windows.csv", delimiter=",", names=True
        )
        probs[name] = windows["probability"]
        (event,) = found["events"]["seizures"]
        rows[name] = {
            "what": what,
            "file_fs": found["file_fs"],
            "channels derived": len(found["derived"]),
            "latency_s": event["latency_s"],
            "false_alarms": found["events"]["false_alarms"],
            "alarms_s": found["alarms_s"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    for name in rows:
        a, b = probs[name], probs["bipolar"]
        rows[name]["max |p - p(bipolar)|"] = (
            float(np.abs(a - b).max()) if len(a) == len(b) else None
        )

    print(f"{hour}: {n / fs / 60:.0f} min, seizure {seizures[0][0]:g}-{seizures[0][1]:g} s")
    print(f"consistent part of the generator's derivations (energy kept): {kept:.3f}")
    head = (
        "| recording | montage | rate | derived | latency | false alarms | max abs dp vs bipolar |"
    )
    print(head + "\n|" + " --- |" * 7)
    for name, r in rows.items():
        dp = r["max |p - p(bipolar)|"]
        print(
            f"| {name} | {r['what']} | {r['file_fs']:g} Hz | {r['channels derived']} | "
            + ("none" if r["latency_s"] is None else f"{r['latency_s']:+.1f} s")
            + f" | {r['false_alarms']} | "
            + ("-" if dp is None else f"{dp:.4f}")
            + " |"
        )
    if args.figure is not None:
        figure(probs, seizures, 5.0, args.figure)
        print(f"figure: {args.figure}")
    (out / "results.json").write_text(json.dumps({"energy_kept": kept, "rows": rows}, indent=2))
    print(f"written: {out / 'results.json'}")


def figure(probs: dict, seizures, window_s: float, path: Path) -> None:
    """P(ictal) per window of each montage over the hour, and zoomed on the seizure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    whole, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    styles = {
        "original": ("0.6", "-", 2.5),
        "bipolar": ("C0", "-", 1.5),
        "referential": ("C3", "--", 1.2),
        "referential 250 Hz": ("C2", ":", 1.2),
    }
    for ax in (whole, zoom):
        for name, p in probs.items():
            colour, style, width = styles[name]
            t = np.arange(len(p)) * window_s / 60  # window starts, minutes
            ax.plot(t, p, style, color=colour, lw=width, label=name)
        for on, off in seizures:
            ax.axvspan(on / 60, off / 60, color="C1", alpha=0.2, lw=0)
        ax.set_xlabel("minutes")
    (on, off) = seizures[0]
    zoom.set_xlim(on / 60 - 2, off / 60 + 2)
    whole.set_ylabel("P(ictal) per 5-s window")
    whole.set_title("one model, one synthetic hour, three montages (seizure shaded)")
    zoom.set_title("around the seizure")
    whole.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
