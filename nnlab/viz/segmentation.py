"""Figures of segmentation: overlays, panels of test cases, per-image scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

PRED_RGB = np.array([255, 40, 40])  # predicted mask: red fill
TRUE_RGB = np.array([40, 255, 40])  # true mask: green outline


def to_hwc(image: np.ndarray) -> np.ndarray:
    """(3, H, W) or (H, W, 3), uint8 or float in [0, 1] -> (H, W, 3) uint8."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return image


def overlay(
    image: np.ndarray, pred: np.ndarray, true: np.ndarray | None = None, alpha: float = 0.4
) -> np.ndarray:
    """The image with the predicted mask filled in red (and its outline), the true mask's outline
    in green: (H, W, 3) uint8."""
    out = to_hwc(image).astype(np.float32)
    pred = np.asarray(pred, bool).reshape(out.shape[:2])
    out[pred] = (1 - alpha) * out[pred] + alpha * PRED_RGB
    out[find_boundaries(pred, mode="inner")] = PRED_RGB
    if true is not None:
        out[find_boundaries(np.asarray(true, bool).reshape(out.shape[:2]), mode="inner")] = TRUE_RGB
    return out.round().astype(np.uint8)


def cases_figure(images, trues, preds, labels: Sequence[str], title: str = "") -> Figure:
    """One row per case: image | true mask | predicted mask | overlay (red: predicted,
    green outline: true)."""
    n = len(labels)
    fig = Figure(figsize=(9.6, 2.5 * n + (0.4 if title else 0)))
    axes = fig.subplots(n, 4, squeeze=False)
    heads = ("image", "true mask", "predicted mask", "overlay (red pred, green true)")
    for r in range(n):
        panels = (
            to_hwc(images[r]),
            np.squeeze(trues[r]),
            np.squeeze(preds[r]),
            overlay(images[r], preds[r], trues[r]),
        )
        for c, (ax, panel) in enumerate(zip(axes[r], panels)):
            ax.imshow(
                panel,
                cmap="gray" if panel.ndim == 2 else None,
                vmin=0,
                vmax=1 if panel.ndim == 2 else None,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(heads[c], fontsize=9)
        axes[r, 0].set_ylabel(labels[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def score_vs_area_figure(
    area: np.ndarray, scores: dict[str, np.ndarray], metric: str = "IoU", title: str = ""
) -> Figure:
    """Per-image score against the polyp's share of the image, one series per model."""
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for label, s in scores.items():
        ax.scatter(area, s, s=12, alpha=0.6, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("true polyp area (fraction of the image)")
    ax.set_ylabel(f"test {metric} per image")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if len(scores) > 1 or next(iter(scores), ""):
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def paired_scores_figure(
    a: np.ndarray, b: np.ndarray, labels: tuple[str, str], metric: str = "IoU", title: str = ""
) -> Figure:
    """Per-image score of model a against model b on the same test images: points above the
    diagonal are images b segments better."""
    fig = Figure(figsize=(4.4, 4.2))
    ax = fig.subplots()
    ax.scatter(a, b, s=12, alpha=0.6)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"{labels[0]} {metric}")
    ax.set_ylabel(f"{labels[1]} {metric}")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
