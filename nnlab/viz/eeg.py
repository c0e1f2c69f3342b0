"""EEG seizure-prediction figures: a recording's timeline (window probabilities, alarms, warning
intervals, seizures, preictal windows) and the three-tower gate weights per class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _runs(start: np.ndarray, end: np.ndarray) -> list[tuple[float, float]]:
    """Windows [start, end) (sorted by start) merged into the stretches they cover."""
    out: list[list[float]] = []
    for a, b in zip(start, end):
        if out and a <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _broken(x: np.ndarray, y: np.ndarray, start: np.ndarray, end: np.ndarray):
    """x, y with a NaN inserted wherever a window does not follow the previous one, so that a
    line plot does not draw across gaps."""
    gap = np.flatnonzero(start[1:] > end[:-1] + 1e-6) + 1
    return np.insert(x.astype(float), gap, np.nan), np.insert(y.astype(float), gap, np.nan)


def timeline_figure(
    start_s: np.ndarray,
    end_s: np.ndarray,
    prob: np.ndarray,
    *,
    threshold: float,
    alarms_s: np.ndarray = (),
    sop_s: float = 1800.0,
    sph_s: float = 300.0,
    warnings: bool = True,
    label: np.ndarray | None = None,
    group: np.ndarray | None = None,
    seizures: np.ndarray | None = None,
    channel_probs: dict[str, np.ndarray] | None = None,
    origin_s: float = 0.0,
    length_s: float | None = None,
    ylabel: str = "P(preictal)",
    positive: str = "preictal",
    title: str = "",
    gaps: Sequence[tuple[float, float]] = (),
) -> Figure:
    """One recording: the probability (`ylabel`) per window (plotted at the window's end, when it is
    known; a colour per `group`, e.g. the fold that held the window out; broken at gaps), the
    threshold, alarms (red triangles) and, for prediction (`warnings`), their warning intervals
    [alarm + SPH, alarm + SPH + SOP) (orange), seizures (red: onset line and ictal span), windows
    labelled preictal and interictal (green and grey bands; `label` 1/0/-1) and, for a
    single-channel model run on every channel, each channel's probability (thin grey), and the
    `gaps` (from, to) in which an EDF+D file recorded nothing (light grey). Times are
    seconds in any clock; `origin_s` is the recording's start in it, and the axis shows minutes
    (hours past two hours) from there."""
    start = np.asarray(start_s, np.float64) - origin_s
    end = np.asarray(end_s, np.float64) - origin_s
    prob = np.asarray(prob, np.float64)
    order = np.argsort(start, kind="stable")
    start, end, prob = start[order], end[order], prob[order]
    length = float(length_s) if length_s is not None else (float(end.max()) if len(end) else 1.0)
    unit, scale = ("h", 3600.0) if length > 7200 else ("min", 60.0)

    fig = Figure(figsize=(12, 3.2))
    ax = fig.subplots()
    for i, (a, b) in enumerate(gaps):
        ax.axvspan(
            (a - origin_s) / scale,
            (b - origin_s) / scale,
            color="0.88",
            label="not recorded" if i == 0 else None,
        )
    if channel_probs:
        for i, p in enumerate(channel_probs.values()):
            x, y = _broken(end / scale, np.asarray(p)[order], start, end)
            ax.plot(x, y, color="0.6", lw=0.5, alpha=0.5, label="per channel" if i == 0 else None)
    if label is not None:
        lab = np.asarray(label)[order]
        for i, (a, b) in enumerate(_runs(start[lab == 1], end[lab == 1])):
            ax.axvspan(
                a / scale,
                b / scale,
                ymin=0,
                ymax=0.06,
                color="tab:green",
                alpha=0.8,
                label=f"{positive} windows" if i == 0 else None,
            )
        for i, (a, b) in enumerate(_runs(start[lab == 0], end[lab == 0])):
            ax.axvspan(
                a / scale,
                b / scale,
                ymin=0,
                ymax=0.03,
                color="0.5",
                alpha=0.6,
                label="interictal windows" if i == 0 else None,
            )
    groups = np.zeros(len(prob), int) if group is None else np.asarray(group)[order]
    for g in np.unique(groups):
        m = groups == g
        x, y = _broken(end[m] / scale, prob[m], start[m], end[m])
        name = ylabel if group is None else f"fold {g}"
        ax.plot(x, y, lw=1.0, color=f"C{int(g) % 10}", label=name)
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    alarms = np.asarray(alarms_s, np.float64).reshape(-1) - origin_s
    for i, a in enumerate(alarms if warnings else ()):
        ax.axvspan(
            (a + sph_s) / scale,
            min(a + sph_s + sop_s, length) / scale,
            color="tab:orange",
            alpha=0.15,
            label="warning" if i == 0 else None,
        )
    if len(alarms):
        ax.plot(
            alarms / scale,
            np.full(len(alarms), 1.04),
            "v",
            color="tab:red",
            ms=7,
            label="alarm",
            clip_on=False,
        )
    if seizures is not None:
        s = np.asarray(seizures, np.float64).reshape(-1, 2) - origin_s
        s = s[(s[:, 1] >= 0) & (s[:, 0] <= length)]
        for i, (on, off) in enumerate(s):
            ax.axvspan(on / scale, off / scale, color="tab:red", alpha=0.3)
            ax.axvline(
                on / scale, color="tab:red", lw=1.5, label="seizure onset" if i == 0 else None
            )
    ax.set_xlim(0, length / scale)
    ax.set_ylim(-0.02, 1.08)
    ax.set_xlabel(f"time from the start of the recording ({unit})")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def gates_figure(rows: Sequence[dict[str, Any]], towers: Sequence[str], title: str = "") -> Figure:
    """Mean gate weight of each tower per true class; rows: {"class", "windows", <tower>: w}."""
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    width = 0.8 / max(1, len(towers))
    x = np.arange(len(rows))
    for i, t in enumerate(towers):
        values = [r[t] if r[t] == r[t] else 0.0 for r in rows]  # NaN (no window) drawn as 0
        ax.bar(x + (i - (len(towers) - 1) / 2) * width, values, width, label=t)
    ax.set_xticks(x, [f"{r['class']}\n({r['windows']} windows)" for r in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean gate weight")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def cv_figure(summary: dict[str, Any], class_names: Sequence[str], title: str) -> Figure:
    """A cross-validation summary (Bonn): left, test accuracy, sensitivity and specificity per
    fold; right, the mean gate weight of each tower per true class."""
    rows, towers = summary["rows"], summary["towers"]
    fig = Figure(figsize=(10, 3.6))
    ax, gx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    folds = np.arange(len(rows))
    for j, m in enumerate(("acc", "sensitivity", "specificity")):
        ax.bar(folds + (j - 1) * 0.27, [r[m] for r in rows], 0.27, label=m)
    ax.axhline(summary["acc"], color="k", ls="--", lw=1, label=f"mean acc {summary['acc']:.3f}")
    lo = min(min(r[m] for r in rows for m in ("acc", "sensitivity", "specificity")), 0.9)
    ax.set_ylim(lo - 0.02, 1.06)  # the band above 1 holds the legend, clear of the bars
    ax.set_xticks(folds, [str(r["fold"]) for r in rows])
    ax.set_xlabel("fold")
    ax.set_title("test folds")
    ax.legend(fontsize=7, loc="upper center", ncol=4)
    by_class = summary["gates_by_class"]
    width = 0.8 / len(towers)
    for i, t in enumerate(towers):
        values = [by_class[c][t] or 0.0 for c in class_names]
        gx.bar(
            np.arange(len(class_names)) + (i - (len(towers) - 1) / 2) * width,
            values,
            width,
            label=t,
        )
    gx.set_xticks(
        np.arange(len(class_names)),
        [f"{c}\n({by_class[c]['segments']} segments)" for c in class_names],
    )
    gx.set_ylim(0, 1)
    gx.set_title("mean gate weight per true class")
    gx.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
