"""Curves, confusion matrices and image grids."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def curves_figure(
    history: Sequence[dict[str, Any]] | dict[str, Sequence[dict[str, Any]]], title: str = ""
) -> Figure:
    """One panel per metric family (loss, acc, ...) with its train and val curves over epochs.

    `history` is a list of epoch records ({"epoch", "train/loss", "val/loss", ...}) or a dict
    {label: records} to overlay several runs."""
    runs = history if isinstance(history, dict) else {"": history}
    names = sorted(
        {
            k.split("/", 1)[1]
            for recs in runs.values()
            for r in recs
            for k in r
            if k.startswith(("train/", "val/"))
        },
        key=lambda n: (n != "loss", n),
    )
    fig = Figure(figsize=(4.2 * max(1, len(names)), 3.2))
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for label, recs in runs.items():
            for split, style in (("train", "--"), ("val", "-")):
                key = f"{split}/{name}"
                pts = [(r["epoch"], r[key]) for r in recs if key in r]
                if pts:
                    ep, val = zip(*pts)
                    ax.plot(ep, val, style, marker="o", ms=3, label=f"{label} {split}".strip())
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if name == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_figure(cm: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    cm = np.asarray(cm)
    k = len(class_names)
    size = max(4.0, 0.32 * k + 1.5)
    fig = Figure(figsize=(size + 0.8, size))
    ax = fig.subplots()
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # colour = fraction of the true class
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 40:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7 if k <= 12 else 5,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xticks(range(k), class_names, fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion matrix (accuracy {np.trace(cm) / max(cm.sum(), 1):.2%})")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    return fig


def image_grid_figure(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    cols: int = 8,
    title: str = "",
    cmap: str = "gray_r",
    vlim: tuple[float, float] | None = None,
) -> Figure:
    """A grid of images (N, H, W), (N, 1, H, W) or (N, 3, H, W), each with an optional title;
    `vlim` = (vmin, vmax) fixes the colour scale of every image (default: each its own range)."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(1.3 * cols, 1.45 * rows + (0.4 if title else 0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(
                images[i],
                cmap=cmap if images[i].ndim == 2 else None,
                interpolation="nearest",
                **({"vmin": vlim[0], "vmax": vlim[1]} if vlim else {}),
            )
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "none", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def per_class_figure(
    values: dict[str, np.ndarray], class_names: Sequence[str], ylabel: str = "accuracy"
) -> Figure:
    """Grouped bars of a per-class figure for one or several models."""
    k = len(class_names)
    fig = Figure(figsize=(max(5, 0.35 * k * max(1, len(values))), 3))
    ax = fig.subplots()
    width = 0.8 / max(1, len(values))
    for i, (label, v) in enumerate(values.items()):
        ax.bar(np.arange(k) + i * width, v, width, label=label)
    ax.set_xticks(np.arange(k) + 0.4 - width / 2, class_names, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_ylim(min(0.5, min(float(np.min(v)) for v in values.values()) - 0.05), 1.0)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def weight_images(W: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Columns of a first-layer weight matrix W (in, out) as images (out, *shape)."""
    return W.T.reshape(W.shape[1], *shape)


def first_layer_figure(
    before: np.ndarray,
    after: np.ndarray,
    shape: Sequence[int],
    title: str = "",
    max_units: int = 64,
) -> Figure:
    """Two grids side by side: each hidden unit's incoming weights as an image, before | after.
    Colour: blue negative, red positive, each unit scaled to its own max |w|."""
    n = min(before.shape[1], max_units)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig = Figure(figsize=(2 * 0.75 * cols + 0.6, 0.75 * rows + 0.6))
    subfigs = fig.subfigures(1, 2, wspace=0.04)
    for sub, W, label in ((subfigs[0], before, "initialisation"), (subfigs[1], after, "trained")):
        imgs = weight_images(W[:, :n], shape)
        axes = sub.subplots(rows, cols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                m = np.abs(imgs[i]).max() or 1.0
                ax.imshow(imgs[i], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        sub.suptitle(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    return fig


def filters_figure(
    weights: np.ndarray,
    reference: np.ndarray | None = None,
    title: str = "",
    reference_title: str = "Gabor filter bank",
) -> Figure:
    """Learnt first-layer kernels (O, C, k, k) as images (channel mean for C > 1), optionally beside
    a reference bank (M, k', k'). Each kernel scaled to its own max |w|, blue < 0 < red."""
    kernels = weights.mean(axis=1) if weights.ndim == 4 else weights
    groups = [(kernels, title or "learnt first-layer filters")]
    if reference is not None:
        groups.append((reference, reference_title))
    fig = Figure(figsize=(5.5 * len(groups), 3.2))
    subfigs = np.atleast_1d(fig.subfigures(1, len(groups)))
    for sub, (bank, name) in zip(subfigs, groups):
        n = len(bank)
        cols = int(math.ceil(math.sqrt(n)))
        axes = sub.subplots(int(math.ceil(n / cols)), cols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                m = np.abs(bank[i]).max() or 1.0
                ax.imshow(bank[i], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        sub.suptitle(name, fontsize=9)
    return fig


def gabor_bank(
    size: int, orientations: int = 4, frequencies: tuple[float, ...] = (0.15, 0.3)
) -> np.ndarray:
    """Real and imaginary parts of Gabor kernels (scikit-image), cropped to size x size."""
    from skimage.filters import gabor_kernel

    bank = []
    for f in frequencies:
        for t in range(orientations):
            g = gabor_kernel(f, theta=np.pi * t / orientations, sigma_x=size / 4, sigma_y=size / 4)
            c = np.array(g.shape) // 2
            crop = g[
                c[0] - size // 2 : c[0] + size // 2 + 1, c[1] - size // 2 : c[1] + size // 2 + 1
            ]
            bank += [crop.real, crop.imag]
    return np.array(bank)
