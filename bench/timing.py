"""How nnlab's speed benchmarks time things, so that their figures reproduce.

- The sides of a comparison are interleaved (A B A B ...): a drift in machine load hits both.
- At least 7 timed repeats after one untimed warm-up of each side; the median is the figure,
  min-max its spread (the minimum alone flatters a noisy side).
- A repeat of a short call times a block of calls (at least `block` seconds, as timeit does):
  NumPy's OpenBLAS threads and PyTorch's OpenMP threads each keep spinning for a while after their
  work, so timing single millisecond calls in turn would charge one library for the other's idle
  threads.
- The header states the thread counts (PyTorch's and NumPy's BLAS) and the load average at the
  start, and warns when the load is above the number of cores: the figures are then unreliable.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

MIN_REPEATS = 7


def blas_threads() -> str:
    """NumPy's BLAS library and its thread count (threadpoolctl ships with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return "unknown"
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return ", ".join(f"{p['internal_api']} {p['num_threads']} threads" for p in blas) or "none"


def header(what: str) -> bool:
    """Print the machine, the libraries, thread counts and the load; False when the load is high."""
    load = os.getloadavg()
    cores = os.cpu_count() or 1
    print(
        f"{what}\nmachine: {platform.machine()}, {cores} cores; numpy {np.__version__} "
        f"(BLAS: {blas_threads()}), torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    if load[0] > cores:
        print(
            f"WARNING: load {load[0]:.2f} is above the {cores} cores: other work shares the CPU "
            "and these timings are not reliable"
        )
        return False
    return True


def interleaved(
    sides: dict[str, Callable[[], object]], repeats: int, block: float = 0.05
) -> dict[str, list[float]]:
    """Seconds per call of each side: a warm-up call of each sets how many calls make a block of
    at least `block` seconds; then the blocks are timed in turn, (A B ...) x repeats."""
    if repeats < MIN_REPEATS:
        raise SystemExit(f"--repeats must be at least {MIN_REPEATS} (got {repeats})")
    calls = {}
    for name, fn in sides.items():
        fn()
        t0 = time.perf_counter()
        fn()
        calls[name] = max(1, math.ceil(block / max(time.perf_counter() - t0, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / calls[name])
    return times


def median(times: list[float]) -> float:
    return statistics.median(times)


def spread(times: list[float], scale: float = 1e3, fmt: str = ".2f") -> str:
    """'median (min-max)' in the given unit (milliseconds by default)."""
    return f"{median(times) * scale:{fmt}} ({min(times) * scale:{fmt}}-{max(times) * scale:{fmt}})"


def ratio(a: list[float], b: list[float]) -> float:
    """Median of a over median of b."""
    return median(a) / median(b)
