"""Per-window predictions to alarms: the k-of-n rule with a refractory period, and the warning
intervals the alarms open.

The k-of-n rule (k = 24 of n = 30 five-second windows in Yan et al., 2022) smooths isolated false
positives away: under independent per-window false positives with probability p, a given window
satisfies the rule with probability P[Bin(n, p) >= k] (the fact `k-of-n-binomial-tail`).
"""

from __future__ import annotations

import numpy as np

from nnlab.errors import NNLabError


def k_of_n_counts(pred: np.ndarray, n: int = 30) -> np.ndarray:
    """pred (W,) booleans -> (W,) positives among the last n windows (fewer at the start):

    s_i = sum_{j = max(0, i - n + 1)}^{i} pred_j = c_{i+1} - c_{max(0, i + 1 - n)},
    c_0 = 0, c_m = sum_{j < m} pred_j (the cumulative sum)."""
    pred = np.asarray(pred)
    if pred.ndim != 1:
        raise NNLabError(f"predictions must be 1-D (W,), got shape {pred.shape}")
    if n < 1:
        raise NNLabError(f"n must be >= 1, got {n}")
    c = np.concatenate([[0], np.cumsum(pred.astype(bool), dtype=np.int64)])  # (W + 1,)
    i = np.arange(len(pred))
    return c[i + 1] - c[np.maximum(0, i + 1 - n)]


def k_of_n_alarms(
    pred: np.ndarray,
    times: np.ndarray,
    k: int = 24,
    n: int = 30,
    refractory: float = 1800.0,
    episodes: bool = False,
) -> np.ndarray:
    """Indices (A,) of the windows that raise an alarm.

    Window i satisfies the rule when s_i >= k (`k_of_n_counts`: at least k of the last n window
    predictions are positive). The first satisfying window raises an alarm; after an alarm at window
    a no new alarm is raised while times[i] < times[a] + refractory; the first satisfying window at
    or after that time raises the next one. With `episodes`, at most one alarm per run of
    consecutive satisfying windows: a run's first window, or, when that falls in the refractory
    period of an earlier alarm, the run's first window after it (a seizure under way is announced
    once, however long it lasts; one that begins soon after a false alarm is still announced, once
    the refractory period is over). times (W,) are the windows' times in seconds (typically their
    ends, when the prediction becomes available; pass np.arange(W) to count the refractory period
    in windows); it defaults to the SOP, 1800 s. Windows are counted by position: the caller
    splits at gaps between recordings if they must not be bridged.
    """
    pred = np.asarray(pred)
    if not 1 <= k <= n:
        raise NNLabError(f"need 1 <= k <= n, got k={k}, n={n}")
    if refractory < 0:
        raise NNLabError(f"refractory period must be >= 0, got {refractory}")
    counts = k_of_n_counts(pred, n)
    t = np.asarray(times, dtype=np.float64)
    if t.shape != pred.shape:
        raise NNLabError(f"times {t.shape} and predictions {pred.shape} differ in shape")
    if len(t) > 1 and (np.diff(t) < 0).any():
        raise NNLabError("window times must be non-decreasing")
    sat = counts >= k
    fire = np.flatnonzero(sat)  # (S,) windows that may raise an alarm
    t_fire = t[fire]
    if episodes:  # the run of satisfying windows each belongs to: (S,), non-decreasing
        run = np.cumsum(sat & ~np.r_[False, sat[:-1]])[fire]
    alarms = []
    j = 0
    # one step per alarm, each a binary search: the refractory rule is sequential by nature
    while j < len(fire):
        alarms.append(fire[j])
        after = int(np.searchsorted(t_fire, t_fire[j] + refractory, side="left"))
        if episodes:  # and not in the run that has just raised its alarm
            after = max(after, int(np.searchsorted(run, run[j], side="right")))
        j = max(j + 1, after)
    return np.asarray(alarms, dtype=np.int64)


def warning_intervals(alarm_times: np.ndarray, sop: float, sph: float = 0.0) -> np.ndarray:
    """Alarm times (A,) seconds -> warnings (A, 2): [t + sph, t + sph + sop), the period in which
    the alarm announces a seizure onset; with sph = 0 (the default), [t, t + sop)."""
    t = np.asarray(alarm_times, dtype=np.float64).reshape(-1)
    if sop <= 0 or sph < 0:
        raise NNLabError(f"need sop > 0 and sph >= 0, got sop={sop}, sph={sph}")
    return np.stack([t + sph, t + sph + sop], axis=1)  # (A, 2)
