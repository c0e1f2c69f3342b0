"""Figures of the compression comparison: reconstructions side by side, PSNR against bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import nnlab.viz.plots  # noqa: F401  (selects the Agg backend)


def reconstructions_figure(
    rows: dict[str, np.ndarray], names: Sequence[str], title: str = ""
) -> Figure:
    """One row per method ({label: (n, H, W)}), one column per image, the class on top."""
    labels = list(rows)
    n = len(names)
    fig = Figure(figsize=(1.0 * n + 1.8, 1.05 * len(labels) + 0.5))
    axes = fig.subplots(len(labels), n, squeeze=False)
    for r, label in enumerate(labels):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(rows[label][c], 0, 1), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(names[c], fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def psnr_bytes_figure(
    rows: Sequence[dict[str, Any]],
    jpeg_curve: Sequence[dict[str, Any]],
    labels: dict[str, str],
    title: str = "",
) -> Figure:
    """Mean PSNR (with +- one sd over images as a band) against bytes per encoded image, log x:
    one line per learnt method over its code sizes; JPEG over its qualities."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    methods = [m for m in labels if any(r["method"] == m for r in rows) and m != "jpeg"]
    for m in methods:
        pts = sorted((r for r in rows if r["method"] == m), key=lambda r: r["bytes_per_image"])
        x = np.array([r["bytes_per_image"] for r in pts])
        y = np.array([r["psnr"] for r in pts])
        sd = np.array([r["psnr_sd"] for r in pts])
        (line,) = ax.plot(x, y, "o-", label=labels[m])
        ax.fill_between(x, y - sd, y + sd, color=line.get_color(), alpha=0.12)
        for r in pts:
            ax.annotate(f"{r['code']}", (r["bytes_per_image"], r["psnr"]), fontsize=6)
    if jpeg_curve:
        x = [r["bytes_per_image"] for r in jpeg_curve]
        ax.plot(x, [r["psnr"] for r in jpeg_curve], "s--", color="gray", label="JPEG (Pillow)")
        for r in jpeg_curve:
            ax.annotate(f"q{r['quality']}", (r["bytes_per_image"], r["psnr"]), fontsize=6)
    ax.set_xscale("log")
    ticks = [2**k for k in range(3, 11)]  # 8 ... 1024 bytes
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("bytes per encoded image (float16 codes: 2 x code; JPEG: whole file)")
    ax.set_ylabel("PSNR (dB), mean over held-out images")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
