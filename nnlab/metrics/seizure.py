"""Seizure prediction metrics: event-level sensitivity, false predictions per interictal hour, time
in warning, and the segment-level scores (sensitivity, specificity, precision, AUC).

Definitions (Winterhalder et al., 2003, "The seizure prediction characteristic"), all times in
seconds on one timeline:

- An alarm at time a announces a seizure onset in its occurrence period [a + SPH, a + SPH + SOP]:
  after the prediction horizon SPH (time to intervene), within the occurrence period SOP.
- A leading seizure with onset s is *predicted* when some alarm a satisfies
  s - SOP - SPH <= a < s - SPH, i.e. s in (a + SPH, a + SPH + SOP]: the same window
  [onset - SPH - SOP, onset - SPH) that is labelled preictal.
  Event sensitivity = predicted leading seizures / leading seizures.
- An alarm is *false* when no seizure onset (leading or not) follows it within SOP + SPH:
  no s with a < s <= a + SPH + SOP. The false prediction rate counts the false alarms raised in
  interictal time and divides by the interictal hours: FPR/h = false alarms / interictal hours.
- Time in warning: the fraction of the recorded time covered by the union of the alarms'
  warning intervals (`nnlab.signal.alarms.warning_intervals`).
"""

from __future__ import annotations

import numpy as np

from nnlab.errors import NNLabError


def _times(t: np.ndarray | list, name: str) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if not np.isfinite(t).all():
        raise NNLabError(f"{name} must be finite seconds")
    return np.sort(t)


def _intervals(iv: np.ndarray | list, name: str) -> np.ndarray:
    iv = np.asarray(iv, dtype=np.float64).reshape(-1, 2)
    if (iv[:, 1] < iv[:, 0]).any():
        raise NNLabError(f"{name}: an interval ends before it starts")
    return iv


def predicted_seizures(
    alarm_times: np.ndarray, onsets: np.ndarray, sop: float, sph: float
) -> np.ndarray:
    """(S,) booleans: leading seizure s is predicted, some alarm a in [s - SOP - SPH, s - SPH)."""
    a = _times(alarm_times, "alarm times")
    s = np.asarray(onsets, dtype=np.float64).reshape(-1)
    lo = np.searchsorted(a, s - sop - sph, side="left")  # first alarm >= s - SOP - SPH
    hi = np.searchsorted(a, s - sph, side="left")  # first alarm >= s - SPH
    return hi > lo


def event_sensitivity(alarm_times: np.ndarray, onsets: np.ndarray, sop: float, sph: float) -> float:
    """Predicted leading seizures / leading seizures (NaN with no seizure)."""
    hit = predicted_seizures(alarm_times, onsets, sop, sph)
    return float(hit.mean()) if len(hit) else float("nan")


def false_alarms(alarm_times: np.ndarray, onsets: np.ndarray, sop: float, sph: float) -> np.ndarray:
    """(A,) booleans over the alarms in the order given: no onset s (all seizures, leading or not)
    with a < s <= a + SPH + SOP."""
    a = np.asarray(alarm_times, dtype=np.float64).reshape(-1)
    s = _times(onsets, "onsets")
    first_after = np.searchsorted(s, a, side="right")  # first onset > a
    last_within = np.searchsorted(s, a + sph + sop, side="right")  # onsets <= a + SPH + SOP
    return last_within == first_after


def _in_intervals(t: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """(len(t),) booleans: t in some [lo, hi) of iv (I, 2)."""
    return ((t[:, None] >= iv[None, :, 0]) & (t[:, None] < iv[None, :, 1])).any(axis=1)


def interval_union(iv: np.ndarray) -> np.ndarray:
    """Sorted, disjoint intervals (U, 2) covering the same time as iv (I, 2)."""
    iv = _intervals(iv, "intervals")
    iv = iv[iv[:, 1] > iv[:, 0]]
    if len(iv) == 0:
        return iv
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    end = np.maximum.accumulate(iv[:, 1])
    # a new block starts where an interval begins after everything before it ended
    new = np.r_[True, iv[1:, 0] > end[:-1]]
    ends = np.maximum.reduceat(iv[:, 1], np.flatnonzero(new))
    return np.stack([iv[new, 0], ends], axis=1)  # (U, 2)


def covered_seconds(iv: np.ndarray) -> float:
    """Length of the union of the intervals (I, 2)."""
    u = interval_union(iv)
    return float((u[:, 1] - u[:, 0]).sum())


def false_prediction_rate(
    alarm_times: np.ndarray,
    onsets: np.ndarray,
    interictal: np.ndarray,
    sop: float,
    sph: float,
) -> float:
    """False alarms raised inside the interictal intervals (I, 2) [start, end) seconds, per hour
    of interictal time (the union of the intervals). NaN with no interictal time."""
    iv = interval_union(interictal)
    hours = covered_seconds(iv) / 3600.0
    if hours == 0:
        return float("nan")
    a = np.asarray(alarm_times, dtype=np.float64).reshape(-1)
    false = false_alarms(a, onsets, sop, sph) & _in_intervals(a, iv)
    return float(false.sum() / hours)


def time_in_warning(warnings: np.ndarray, recorded: np.ndarray) -> float:
    """|union(warnings) intersect union(recorded)| / |union(recorded)|, warnings (A, 2) and the
    recorded intervals (R, 2) in seconds; NaN with no recorded time."""
    w, r = interval_union(warnings), interval_union(recorded)
    total = float((r[:, 1] - r[:, 0]).sum())
    if total == 0:
        return float("nan")
    # pairwise overlaps of two disjoint sets of intervals: each instant is counted once
    lo = np.maximum(w[:, None, 0], r[None, :, 0])
    hi = np.minimum(w[:, None, 1], r[None, :, 1])
    return float(np.clip(hi - lo, 0, None).sum() / total)


# ---- segment level -------------------------------------------------------------------------
def segment_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Per-window scores of binary predictions (1: preictal/ictal, 0: interictal):
    sensitivity TP/(TP+FN), specificity TN/(TN+FP), precision TP/(TP+FP), accuracy; NaN where
    the denominator is 0."""
    pred = np.asarray(pred).astype(bool).reshape(-1)
    true = np.asarray(true).astype(bool).reshape(-1)
    if pred.shape != true.shape:
        raise NNLabError(f"{len(pred)} predictions for {len(true)} labels")
    tp = int((pred & true).sum())
    tn = int((~pred & ~true).sum())
    fp = int((pred & ~true).sum())
    fn = int((~pred & true).sum())

    def ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    return {
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
        "accuracy": ratio(tp + tn, len(true)),
    }


def segment_auc(scores: np.ndarray, true: np.ndarray) -> float:
    """Area under the ROC curve of per-window scores (scikit-learn); NaN with one class only."""
    from sklearn.metrics import roc_auc_score

    true = np.asarray(true).astype(bool).reshape(-1)
    if true.all() or not true.any():
        return float("nan")
    return float(roc_auc_score(true, np.asarray(scores, dtype=np.float64).reshape(-1)))


# ---- detection on one annotated recording --------------------------------------------------
def match_alarms(
    alarm_times: np.ndarray, seizures: np.ndarray, before: float = 0.0, after: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Alarms of one recording against its annotated seizures (S, 2) [onset, offset] seconds.

    Seizure s is *found* by the first alarm a in [onset - before, offset + after]; its latency is
    a - onset (negative: the alarm came before the onset). `before` = 0 scores detection; SOP +
    SPH scores prediction. `after` allows for the window an alarm is computed on: a window ending
    up to `after` seconds past the offset still read the seizure. An alarm inside no seizure's
    interval is false. Returns (latency (S,), NaN where not found; false (A,) booleans, the
    alarms in the order given)."""
    a = np.asarray(alarm_times, dtype=np.float64).reshape(-1)
    iv = _intervals(seizures, "seizures")
    if before < 0 or after < 0:
        raise NNLabError(f"need before >= 0 and after >= 0, got {before} and {after}")
    lo, hi = iv[:, 0] - before, iv[:, 1] + after  # (S,)
    inside = (a[None, :] >= lo[:, None]) & (a[None, :] <= hi[:, None])  # (S, A)
    first = np.where(inside, a[None, :], np.inf).min(axis=1, initial=np.inf)  # (S,)
    latency = np.where(np.isfinite(first), first - iv[:, 0], np.nan)
    return latency, ~inside.any(axis=0)
