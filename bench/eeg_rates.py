"""A recording sampled more slowly than the model: what the missing frequency band costs
`nnlab seizure detect`, and what a model trained on fewer bins (`--fmax`) gets back. SYNTHETIC
EEG.

    python bench/seizure_detect_synthetic.py --root runs/sz-detect     # the model and the hour
    python bench/eeg_rates.py --root runs/sz-detect [--fmax 60] [--rates 256,250,200,128]

The detection bench's model reads 1-Hz bins up to 128 Hz, its rate's Nyquist frequency. Copies
of its unseen hour (a seizure at 2400-2460 s) resampled to 250 Hz lack the bins above 125 Hz
(3 of 114), at 200 Hz those above 100 Hz, and at 128 Hz those above 64 Hz. `detect` upsamples
each to 256 Hz and warns where more than 5% of the bins are missing
(`nnlab.signal.spectral.missing_band`). A second model is trained on the same patient with the
same recipe but `--fmax F`: it reads bins up to F Hz only, which every rate above 2F holds.
Printed per model and rate: whether detect warned, the seizure's alarm latency, the false alarms
in the hour, and the largest P(ictal) inside the seizure and away from it (more than 60 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("runs/sz-detect"))
    ap.add_argument("--fmax", type=float, default=60.0, help="the second model's --fmax (Hz)")
    ap.add_argument("--rates", default="256,250,200,128", help="the hour's copies, Hz")
    ap.add_argument("--out", type=Path, default=None, help="default ROOT/rates")
    args = ap.parse_args()
    out = args.out or args.root / "rates"

    from rich.console import Console

    from nnlab.data.eeg import Recording, read_edf, read_summary, resample, write_edf
    from nnlab.run import RunDir
    from nnlab.tasks.seizure import detect_file, detect_settings, run_seizure_cv

    hour = args.root / "unseen" / "chb01" / "chb01_01.edf"
    if not hour.exists() or not (args.root / "run" / "summary.json").exists():
        raise SystemExit(f"{args.root}: no trained run and unseen hour; run the command above")
    ((onset, offset),) = read_summary(hour.parent / "chb01-summary.txt").file(hour.name).seizures
    runs = {"to Nyquist": RunDir.open(args.root / "run")}
    cfg = dataclasses.replace(detect_settings(runs["to Nyquist"])[0], fmax=args.fmax, fold=-1)
    path = args.root / f"run-fmax{args.fmax:g}"
    t0 = time.perf_counter()
    if not (path / "summary.json").exists():
        resume = (path / "fold00").exists()
        run = RunDir.open(path) if path.exists() else RunDir.create("sz-fmax", path)
        run_seizure_cv(cfg, run, Console(), resume=resume)
    runs[f"--fmax {args.fmax:g}"] = RunDir.open(path)
    train_min = (time.perf_counter() - t0) / 60

    out.mkdir(parents=True, exist_ok=True)
    rec = read_edf(hour)
    files = {}
    for rate in (float(r) for r in args.rates.split(",")):
        if rate == rec.fs:
            files[rate] = hour
            continue
        x, _ = resample(rec.data, rec.fs, rate)
        files[rate] = out / f"hour{rate:g}.edf"
        write_edf(files[rate], Recording(f"hour{rate:g}", rate, rec.labels, x))

    rows = []
    for model, run in runs.items():
        for rate, edf in files.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                found = detect_file(
                    edf,
                    run,
                    out / f"{model.replace(' ', '').replace('-', '')}-{rate:g}",
                    seizures=[(onset, offset)],
                    overwrite=True,
                )
            windows = np.genfromtxt(found["outputs"][0], delimiter=",", names=True)
            start, end, p = windows["start_s"], windows["end_s"], windows["probability"]
            inside = (start >= onset) & (end <= offset)
            away = (end < onset - 60) | (start > offset + 60)
            (event,) = found["events"]["seizures"]
            rows.append(
                {
                    "model": model,
                    "rate": rate,
                    "warned": any("recorded at" in str(w.message) for w in caught),
                    "latency_s": event["latency_s"],
                    "false_alarms": found["events"]["false_alarms"],
                    "p_seizure_max": float(p[inside].max()),
                    "p_away_max": float(p[away].max()),
                }
            )
    print(
        f"\nthe unseen synthetic hour at several rates; seizure {onset:g}-{offset:g} s; "
        f"the --fmax {args.fmax:g} model trained in {train_min:.1f} min\n"
    )
    print(
        "| model reads | recording | detect warned | seizure found | false alarms | "
        "max P(ictal) in the seizure | max P(ictal) > 60 s away |\n" + "| --- " * 7 + "|"
    )
    for r in rows:
        found = "no" if r["latency_s"] is None else f"+{r['latency_s']:.1f} s"
        print(
            f"| {r['model']} | {r['rate']:g} Hz | {'yes' if r['warned'] else 'no'} | {found} | "
            f"{r['false_alarms']} | {r['p_seizure_max']:.3f} | {r['p_away_max']:.3f} |"
        )
    (out / "results.json").write_text(json.dumps({"fmax": args.fmax, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
