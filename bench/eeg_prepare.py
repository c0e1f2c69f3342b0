"""Preparing EEG for the seizure models (issue 16 item 4): the time to turn one hour of 23-channel
256 Hz EEG into log-spectrogram windows (5-s windows, 1-s Hann STFT segments with half overlap, DC
and 57-63 / 117-123 Hz removed), in memory and written to the on-disk cache; and the peak memory
of a process preparing 1, 2 and 4 such recordings into the cache one after another (it must stay
flat: each recording is streamed to its memory-mapped file and let go).

    python bench/eeg_prepare.py [--repeats 7] [--minutes 60] [--recordings 4]

The EEG is `nnlab.data.synthetic.synthetic_eeg` (1/f background, alpha, spikes, 60 Hz line noise),
generated once and saved as a .npy source file (the cache keys on a source file's identity); the
recordings of the memory test are copies of it under other names. Target: under 20 s per hour on
2 cores.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FS, CHANNELS = 256.0, 23


def peak_mb() -> float:
    """The process's peak resident memory so far: VmHWM from /proc/self/status on Linux (ru_maxrss
    survives exec there, so a child started by a big parent would report the parent's peak),
    ru_maxrss elsewhere."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_child(sources: list[str], cache: str) -> None:
    """Prepare the sources into the cache one by one; print the peak memory after each."""
    from nnlab.signal.cache import prepare_cached
    from nnlab.signal.spectral import SpectralConfig

    cfg = SpectralConfig()
    print(f"after imports: peak {peak_mb():.0f} MB", flush=True)
    for i, src in enumerate(sources, 1):
        t0 = time.perf_counter()
        rec = prepare_cached(src, lambda s=src: np.load(s), FS, cfg, cache)
        seconds = time.perf_counter() - t0
        size = rec.windows.nbytes / 2**20
        del rec
        print(
            f"{i} recording(s) prepared: peak {peak_mb():.0f} MB "
            f"(this one: {seconds:.2f} s, {size:.0f} MB of windows cached)",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--minutes", type=float, default=60.0, help="length of each recording")
    ap.add_argument("--recordings", type=int, default=4, help="recordings in the memory test")
    ap.add_argument("--memory-child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.cache)
        return

    from timing import header, interleaved, spread

    from nnlab.data.synthetic import synthetic_eeg
    from nnlab.signal.cache import prepare_cached
    from nnlab.signal.spectral import SpectralConfig, prepare_windows, window_starts

    header(f"EEG preparation: {args.minutes:g} min of {CHANNELS}-channel EEG at {FS:g} Hz")
    cfg = SpectralConfig()
    t0 = time.perf_counter()
    x = synthetic_eeg(args.minutes * 60, fs=FS, n_channels=CHANNELS, seed=0)  # (C, N) float32
    print(f"generated {x.shape} {x.dtype} in {time.perf_counter() - t0:.1f} s (not timed below)")
    W = len(window_starts(x.shape[1], FS, cfg.window_s, cfg.hop_s))
    out_shape = (W, CHANNELS, cfg.frames(FS), len(cfg.freqs(FS)))  # (W, C, T, F)
    print(f"windows per recording: {out_shape} float32 = {np.prod(out_shape) * 4 / 2**20:.0f} MB")

    with tempfile.TemporaryDirectory(prefix="eeg_prepare_") as tmp:
        tmp = Path(tmp)
        src = tmp / "rec0.npy"
        np.save(src, x)
        runs = iter(range(10**6))

        def cached():  # loading the source file included, as in `nnlab seizure prepare`
            cache = tmp / f"cache{next(runs)}"
            prepare_cached(src, lambda: np.load(src), FS, cfg, cache)
            shutil.rmtree(cache)

        times = interleaved(
            {"in memory": lambda: prepare_windows(x, FS, cfg), "to the cache": cached},
            args.repeats,
        )
        for name, ts in times.items():
            print(
                f"prepare {args.minutes:g} min, {name}: {spread(ts, 1, '.2f')} s (median, min-max)"
            )
        hour = np.median(times["to the cache"]) * 60 / args.minutes
        print(f"per hour of EEG, to the cache: {hour:.2f} s (target < 20 s)")

        sources = [src] + [tmp / f"rec{i}.npy" for i in range(1, args.recordings)]
        for s in sources[1:]:
            shutil.copyfile(src, s)
        print(
            f"\npeak memory (VmHWM) of a fresh process preparing {args.recordings} recordings "
            f"of {args.minutes:g} min into an empty cache, one after another:"
        )
        subprocess.run(
            [sys.executable, __file__, "--cache", str(tmp / "memcache"), "--memory-child"]
            + [str(s) for s in sources],
            check=True,
        )


if __name__ == "__main__":
    main()
