"""Peak memory of `nnlab seizure prepare` against the length of one EDF file: a recording is read
a stretch at a time (`Patient.read_span`: each stretch read with a margin and resampled alone,
equal to the whole file resampled), so memory should not grow with the file. Siena's files run
to 2 GB (hours of 30-odd channels at 512 Hz); read whole and resampled, one would need several
times that.

    python bench/eeg_prepare_long.py [--hours 1,2,4] [--fs 512] [--root runs/prepare_long]

For each length, a one-file synthetic patient (`make_chbmit_folder`: 23 channels at --fs Hz, one
seizure) is written, then a fresh process runs `prepare_patient` (resampling to 256 Hz) and prints
its peak resident memory (VmHWM) and time; `--whole` runs the same with the file read whole (the
code before 2026-11-27) for comparison.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def peak_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB -> MB


def run_child(folder: str, whole: bool) -> None:
    import warnings

    import nnlab.signal.cache as cache
    from nnlab.tasks.seizure import SeizureConfig, prepare_patient

    warnings.simplefilter("ignore")
    if whole:  # the reader before: the whole file read, resampled, then cut into windows
        real = cache.prepare_cached

        def whole_file(source, load, fs, spec, folder_, *, read, starts, params):
            from nnlab.data.eeg import load_patient

            patient = load_patient(folder, "chb01")
            return real(source, lambda: patient.read(0, fs=fs).data, fs, spec, folder_,
                        starts=starts, params=params)  # fmt: skip

        cache.prepare_cached = whole_file  # prepare_patient imports it when called
    base = peak_mb()
    t0 = time.perf_counter()
    prep = prepare_patient(SeizureConfig(data=folder, cache=str(Path(folder) / "cache")))
    seconds = time.perf_counter() - t0
    print(f"{peak_mb():.0f} {base:.0f} {seconds:.1f} {len(prep.store)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", default="1,2,4")
    ap.add_argument("--fs", type=int, default=512)
    ap.add_argument("--root", type=Path, default=Path("runs/prepare_long"))
    ap.add_argument("--whole", action="store_true", help="also read each file whole (before)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-whole", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args.child, args.child_whole)
        return

    import shutil

    from nnlab.data.synthetic import make_chbmit_folder

    rows = []
    for hours in [float(h) for h in args.hours.split(",")]:
        folder = args.root / f"{hours:g}h"
        if not (folder / "chb01" / "chb01-summary.txt").exists():
            t0 = time.perf_counter()
            on = int(hours * 3600 * 0.75)
            make_chbmit_folder(folder, "chb01", 1, hours, fs=args.fs, seizures={0: [(on, on + 60)]})
            print(f"wrote {hours:g} h at {args.fs} Hz in {time.perf_counter() - t0:.0f} s")
        size = (folder / "chb01" / "chb01_01.edf").stat().st_size / 2**20
        for whole in (False, True) if args.whole else (False,):
            shutil.rmtree(folder / "cache", ignore_errors=True)
            cmd = [sys.executable, __file__, "--child", str(folder)]
            out = subprocess.run(
                cmd + (["--child-whole"] if whole else []),
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            peak, base, seconds, windows = float(out[0]), float(out[1]), float(out[2]), int(out[3])
            rows.append((hours, size, "whole file" if whole else "a stretch at a time", peak,
                         base, seconds, windows))  # fmt: skip
            print(
                f"{hours:g} h ({size:.0f} MB EDF), {rows[-1][2]}: peak {peak:.0f} MB "
                f"({base:.0f} MB after imports), {seconds:.1f} s, {windows} windows",
                flush=True,
            )
    print("\n| file | EDF size | read | peak memory | after imports | time |")
    print("| --- | --- | --- | --- | --- | --- |")
    for hours, size, how, peak, base, seconds, _ in rows:
        print(f"| {hours:g} h | {size:.0f} MB | {how} | {peak:.0f} MB | {base:.0f} MB | "
              f"{seconds:.1f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
