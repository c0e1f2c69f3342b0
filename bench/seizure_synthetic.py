"""Seizure prediction on a synthetic patient (issue 16 items 6 and the synthetic target): the leak
of a random window split measured against leave-one-seizure-out on the same windows, and the
event-level figures of leave-one-seizure-out. SYNTHETIC data: not comparable with CHB-MIT.

    python bench/seizure_synthetic.py [--files 9] [--hours 1] [--epochs 6] [--threads 1]
    python bench/seizure_synthetic.py --preictal-uv 3 --spike-rate 1.5 --root runs/bench-subtle

The patient (`nnlab.data.synthetic.make_chbmit_folder`): `--files` EDF files of `--hours` each,
60 s apart, 23 channels at 256 Hz (22 distinct derivations), a 60-s seizure at 75% of every third
file from the third on (files 3, 6, 9: onsets 3 h apart), each preceded by the generator's
40-minute pre-seizure change (focal theta/beta and a rising spike rate). Labels: SOP 30 min, SPH
5 min, interictal at least `--gap-s` (default 1 h, scaled down from the 4 h of CHB-MIT studies so
that a few hours of recording hold interictal time) from any seizure; preictal windows 4x as dense
for training (overlapping windows).

`--preictal-uv` and `--spike-rate` set how strong the pre-seizure change is (the generator's
defaults, 15 uV and 12 spikes a minute, make it easy to see; 3 uV and 1.5 a minute make it subtle,
as on real scalp EEG).

Two protocols on the same prepared windows, the same model, epochs and seed:

- leave one seizure out (`nnlab seizure train`): one fold per seizure, its preictal windows and a
  contiguous interictal block held out, nothing overlapping them in training; pooled segment
  AUC / accuracy over the held-out windows, event sensitivity, false alarms per interictal hour
  (k = 24 of n = 30, refractory = SOP) and time in warning;
- a random window split (what the issue forbids): every labelled window -- the oversampled ones
  included -- dealt at random into 60/20/20 train/val/test (stratified). Overlapping windows land on
  both sides; the test AUC / accuracy measures recall of near-copies.

Prints the figures, the wall times and a paragraph; writes results.json under --root.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from nnlab.data.splits import split_by_item
from nnlab.metrics.seizure import segment_auc, segment_scores
from nnlab.run import RunDir
from nnlab.tasks.base import run_task
from nnlab.tasks.seizure import (
    SeizureConfig,
    SeizureFoldTask,
    prepare_patient,
    read_heldout,
    run_seizure_cv,
)


class RandomSplitTask(SeizureFoldTask):
    """The same fold task on a random window split: the leak, for measurement only."""

    def parts(self, prep):
        labelled = np.flatnonzero(prep.label >= 0)
        cut = split_by_item(
            len(labelled), (0.6, 0.2, 0.2), self.cfg.train.seed, prep.label[labelled]
        )
        return {k: labelled[v] for k, v in cut.items()}

    def split_method(self) -> str:
        return "random window split, stratified 60/20/20 (leaks: for the benchmark only)"


def make_patient(args) -> Path:
    from nnlab.data.synthetic import EEGSynthConfig, make_chbmit_folder

    file_s = int(round(args.hours * 3600))
    length = min(60, file_s // 10)
    on = int(0.75 * file_s)
    seizures = {i: [(on, on + length)] for i in range(2, args.files, 3)}
    folder = args.root / "data"
    if not (folder / "chb01" / "chb01-summary.txt").exists():
        make_chbmit_folder(
            folder,
            "chb01",
            n_files=args.files,
            hours=args.hours,
            fs=256,
            seizures=seizures,
            gap_s=60,
            cfg=EEGSynthConfig(
                preictal_s=(args.sop_s + args.sph_s) * 8 / 7,
                preictal_uv=args.preictal_uv,
                spike_rate_preictal=args.spike_rate,
            ),
        )
    return folder


def scores(prob: np.ndarray, label: np.ndarray) -> dict[str, float]:
    s = segment_scores(prob >= 0.5, label == 1)
    return {"auc": segment_auc(prob, label == 1), "accuracy": s["accuracy"], **s}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", type=Path, default=Path("runs/bench-seizure-synthetic"))
    ap.add_argument("--files", type=int, default=9)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--sop-s", type=float, default=1800.0)
    ap.add_argument("--sph-s", type=float, default=300.0)
    ap.add_argument("--gap-s", type=float, default=3600.0)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument(
        "--preictal-uv", type=float, default=15.0, help="RMS of the pre-seizure theta/beta"
    )
    ap.add_argument(
        "--spike-rate", type=float, default=12.0, help="spikes per minute reached at onset"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared: 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.root.mkdir(parents=True, exist_ok=True)
    times = {}

    t0 = time.perf_counter()
    folder = make_patient(args)
    times["generate"] = time.perf_counter() - t0
    base = SeizureConfig()
    cfg = dataclasses.replace(
        base,
        data=str(folder),
        patient="chb01",
        cache=str(args.root / "cache"),
        sop_s=args.sop_s,
        sph_s=args.sph_s,
        interictal_gap_s=args.gap_s,
        train=dataclasses.replace(base.train, epochs=args.epochs, seed=args.seed, device="cpu"),
    )
    cfg.check()
    t0 = time.perf_counter()
    prep = prepare_patient(cfg)
    times["prepare"] = time.perf_counter() - t0
    counts = {
        "files": len(prep.patient.files),
        "hours": prep.patient.recorded_s / 3600,
        "seizures": len(prep.leading),
        "preictal": int(((prep.label == 1) & prep.base).sum()),
        "interictal": int(((prep.label == 0) & prep.base).sum()),
        "oversampled": int((~prep.base).sum()),
        "window shape (C, T, F)": list(prep.store.window_shape),
    }
    print(json.dumps(counts), flush=True)

    t0 = time.perf_counter()
    loso_dir = args.root / "loso"
    loso = run_seizure_cv(cfg, RunDir.create("loso", loso_dir), None)
    times["leave one seizure out"] = time.perf_counter() - t0
    print(json.dumps({k: v for k, v in loso.items() if k not in ("rows", "gates")}), flush=True)

    t0 = time.perf_counter()
    rnd_dir = RunDir.create("random", args.root / "random")
    random_summary = run_task(
        RandomSplitTask(dataclasses.replace(cfg, fold=0), None, prep), rnd_dir
    )
    times["random split"] = time.perf_counter() - t0
    h = read_heldout(rnd_dir)
    on_base = prep.base[h["index"]]
    random_all = scores(h["prob"], h["label"])
    random_base = scores(h["prob"][on_base], h["label"][on_base])
    fold_auc = [r["AUC"] for r in loso["rows"]]

    result = {
        "synthetic": True,
        "counts": counts,
        "labels": cfg.labels().to_dict(),
        "epochs": args.epochs,
        "loso": {
            "segment_auc_pooled": loso["segment/auc"],
            "segment_accuracy_pooled": loso["segment/accuracy"],
            "segment_auc_per_fold": fold_auc,
            "event_sensitivity": loso["event_sensitivity"],
            "seizures_predicted": loso["seizures_predicted"],
            "folds": loso["folds"],
            "fpr_per_h": loso["fpr_per_h"],
            "false_alarms": loso["false_alarms"],
            "interictal_h": loso["interictal_h"],
            "time_in_warning": loso["time_in_warning"],
            "gates": loso["gates"],
        },
        "random": {
            "test_auc": random_all["auc"],
            "test_accuracy": random_all["accuracy"],
            "test_auc_base_windows": random_base["auc"],
            "test_accuracy_base_windows": random_base["accuracy"],
            "test_windows": int(len(h["prob"])),
            "test_oversampled": int((~on_base).sum()),
            "best_epoch": random_summary["best_epoch"],
        },
        "wall_s": times,
    }
    (args.root / "results.json").write_text(json.dumps(result, indent=1))
    L, R = result["loso"], result["random"]
    print("\nSYNTHETIC patient (not CHB-MIT):", json.dumps(counts))
    print(f"{'protocol':34s} {'segment AUC':>12s} {'accuracy':>9s}")
    print(
        f"{'random window split (leaks)':34s} {R['test_auc']:12.4f} {R['test_accuracy']:9.4f}"
        f"   (base windows only: {R['test_auc_base_windows']:.4f} / "
        f"{R['test_accuracy_base_windows']:.4f})"
    )
    print(
        f"{'leave one seizure out (pooled)':34s} {L['segment_auc_pooled']:12.4f} "
        f"{L['segment_accuracy_pooled']:9.4f}   (per fold AUC: "
        + ", ".join(f"{a:.3f}" for a in fold_auc)
        + ")"
    )
    print(
        f"leave one seizure out, events: {L['seizures_predicted']} of {L['folds']} seizures "
        f"predicted (sensitivity {L['event_sensitivity']:.2f}), {L['false_alarms']} false alarms "
        f"in {L['interictal_h']:.2f} interictal hours = {L['fpr_per_h']:.3f}/h, time in warning "
        f"{L['time_in_warning']:.3f} (k 24 of n 30, refractory {cfg.sop_s:g} s)"
    )
    print("wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    print(f"runs and results.json in {args.root}")


if __name__ == "__main__":
    main()
