"""Figures of OCR: line images with their truth and what was read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def lines_figure(rows: Sequence[tuple[np.ndarray, str, str]], title: str = "") -> Figure:
    """Line images (ink bright) with their truth and what was read."""
    n = max(1, len(rows))
    fig = Figure(figsize=(8, 0.9 * n + 0.4))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (image, truth, read) in zip(axes, rows):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"truth: {truth}   read: {read}", fontsize=8, loc="left")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
