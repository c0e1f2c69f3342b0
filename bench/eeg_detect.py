"""`nnlab seizure detect` on long recordings: time and peak memory of a fresh process running a
single-channel model over every channel of 1-hour and longer 23-channel EDF files at 200 Hz
(resampled to the model's 256 Hz), read in 10-minute chunks (the default) or all at once.

    python bench/eeg_detect.py [--hours 1 4]

The model: the three-tower transformer (temporal and spectral towers, one channel) trained for one
epoch on a small synthetic CHB-MIT patient -- its accuracy does not matter here, only the work of
reading, resampling and scoring. The recordings: `nnlab.data.synthetic.synthetic_eeg` (one hour,
repeated), written as EDF+ by `write_edf`. Target (issue 16 item 7: "a recording of any length"):
the chunked reader's peak memory does not grow with the recording's length.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FS_FILE, CHANNELS = 200.0, 23


def peak_mb() -> float:
    """VmHWM of this process (see bench/eeg_prepare.py)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def child(edf: str, run: str, out: str, chunk_s: float) -> None:
    from nnlab.run import RunDir
    from nnlab.tasks.seizure import detect_file, load_fold_models

    load_fold_models(RunDir.open(run), device="cpu")  # what every run of detect holds anyway
    import_mb = peak_mb()
    t0 = time.perf_counter()
    found = detect_file(edf, RunDir.open(run), Path(out), chunk_s=chunk_s, device="cpu")
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - t0,
                "peak_mb": peak_mb(),
                "import_mb": import_mb,
                "windows": found["windows"],
                "channels": len(found["channels"]),
            }
        )
    )


def train_model(root: Path) -> Path:
    """A single-channel fold model on a small synthetic patient (one epoch)."""
    import dataclasses

    from nnlab.data.synthetic import make_small_patient
    from nnlab.run import RunDir
    from nnlab.tasks.base import run_task
    from nnlab.tasks.seizure import SeizureConfig, SeizureFoldTask

    make_small_patient(root / "data")
    base = SeizureConfig()
    cfg = SeizureConfig(
        data=str(root / "data"),
        patient="chb01",
        cache=str(root / "cache"),
        channels=("FP1-F7",),
        sop_s=60.0,
        sph_s=10.0,
        interictal_gap_s=120.0,
        fold=0,
        train=dataclasses.replace(base.train, epochs=1, batch_size=32),
    )
    run = RunDir.create("one-channel", root / "model")
    run_task(SeizureFoldTask(cfg), run)
    return run.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        edf, run, out, chunk_s = args.child
        child(edf, run, out, float(chunk_s))
        return

    from nnlab.data.eeg import Recording, edf_header, write_edf
    from nnlab.data.synthetic import synthetic_eeg

    print(f"seizure detect: {CHANNELS}-channel EDF at {FS_FILE:g} Hz, a single-channel model")
    with tempfile.TemporaryDirectory(prefix="eeg_detect_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run = train_model(tmp)
        print(f"model trained in {time.perf_counter() - t0:.0f} s (not timed below)")
        hour = synthetic_eeg(3600, fs=FS_FILE, n_channels=CHANNELS, seed=0)  # (C, N) float32
        labels = [f"EEG{i:02d}" for i in range(CHANNELS)]
        print(
            "\n| hours | reading | wall s | s per hour | peak MB | of which imports and model "
            "| windows x channels |\n| --- | --- | --- | --- | --- | --- | --- |"
        )
        for hours in args.hours:
            edf = tmp / f"long{hours:g}.edf"
            reps = int(np.ceil(hours))
            data = np.tile(hour, reps)[:, : int(hours * 3600 * FS_FILE)]
            write_edf(edf, Recording(edf.stem, FS_FILE, labels, data))
            del data
            size = edf.stat().st_size / 2**20
            assert edf_header(edf).duration_s == hours * 3600
            for name, chunk_s in (("10-min chunks", 600.0), ("all at once", 1e9)):
                out = tmp / f"out-{hours:g}-{int(chunk_s)}"
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(edf),
                        str(run),
                        str(out),
                        str(chunk_s),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"| {hours:g} ({size:.0f} MB EDF) | {name} | {r['seconds']:.1f} | "
                    f"{r['seconds'] / hours:.1f} | {r['peak_mb']:.0f} | {r['import_mb']:.0f} | "
                    f"{r['windows']} x {r['channels']} |",
                    flush=True,
                )
            edf.unlink()


if __name__ == "__main__":
    main()
