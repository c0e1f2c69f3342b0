"""Figures of diffusion: strips of one image through the process, grids of samples, the loss per
range of t over the epochs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def _show(ax, image: np.ndarray) -> None:
    """(C, H, W) or (H, W) in [0, 1], ink bright as in the data; drawn dark on light."""
    image = image[0] if image.ndim == 3 and image.shape[0] == 1 else image
    if image.ndim == 3:
        ax.imshow(image.transpose(1, 2, 0))
    else:
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()


def strip_figure(images: Sequence[np.ndarray], labels: Sequence[str], title: str = "") -> Figure:
    """One row of images with a label under each (t = 0, 100, ..., 1000)."""
    fig = Figure(figsize=(1.1 * len(images), 1.6))
    axes = fig.subplots(1, len(images), squeeze=False)[0]
    for ax, image, label in zip(axes, images, labels):
        _show(ax, image)
        ax.set_title(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def grid_figure(images: np.ndarray, title: str = "", cols: int = 10) -> Figure:
    """Images (N, C, H, W) in [0, 1] in rows of `cols`, a thin blank line between them."""
    n, c, h, w = images.shape
    rows = -(-n // cols)
    gap = 1 if h <= 16 else 2  # blank pixels between samples (0 = background)
    sheet = np.zeros((c, rows * (h + gap) - gap, cols * (w + gap) - gap), np.float32)
    for i, image in enumerate(images):
        r, k = divmod(i, cols)
        top, left = r * (h + gap), k * (w + gap)
        sheet[:, top : top + h, left : left + w] = image
    fig = Figure(figsize=(0.45 * cols + 0.4, 0.45 * rows + 0.6))
    ax = fig.subplots()
    _show(ax, sheet)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def bucket_loss_figure(history: Sequence[Sequence[float]], T: int, title: str = "") -> Figure:
    """The mean training loss in each tenth of t = 1..T, one line per epoch (later = darker)."""
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    buckets = len(history[0]) if history else 10
    centres = (np.arange(buckets) + 0.5) * T / buckets
    for e, losses in enumerate(history):
        shade = 0.85 - 0.75 * (e + 1) / len(history)
        ax.plot(
            centres,
            losses,
            marker="o",
            ms=3,
            color=str(shade),
            label=f"epoch {e + 1}" if e in (0, len(history) - 1) else None,
        )
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("mean squared error")
    ax.grid(alpha=0.3)
    if history:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def class_share_figure(shares: dict[str, Sequence[float]], title: str = "") -> Figure:
    """Grouped bars: the share of each predicted class, one bar colour per set of images."""
    fig = Figure(figsize=(6.5, 3.0))
    ax = fig.subplots()
    k = len(next(iter(shares.values())))
    width = 0.8 / len(shares)
    for i, (label, share) in enumerate(shares.items()):
        ax.bar(np.arange(k) + (i - (len(shares) - 1) / 2) * width, share, width, label=label)
    ax.axhline(1 / k, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("share of images")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
