"""Attention maps of a ViT: where the class token looks, per layer and head, and attention
rollout across layers (Abnar & Zuidema 2020): with A_l the head-averaged attention of layer l,
R = prod_l (0.5 A_l + 0.5 I) (rows renormalised), and R[0, 1:] is the class token's attention to
each patch through all layers, the residual path included. For a model without a class token
(SegmentViT): the attention a set of query patches pays, layer by layer."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from nnlab.viz.segmentation import to_hwc


def cls_attention(maps: list[np.ndarray], grid: tuple[int, int]) -> np.ndarray:
    """maps: per layer (heads, N + 1, N + 1) of one image -> (layers, heads, gh, gw)."""
    return np.stack([m[:, 0, 1:].reshape(m.shape[0], *grid) for m in maps])


def rollout(maps: list[np.ndarray], grid: tuple[int, int]) -> np.ndarray:
    n = maps[0].shape[-1]
    R = np.eye(n)
    for m in maps:
        A = 0.5 * m.mean(axis=0) + 0.5 * np.eye(n)
        A /= A.sum(axis=-1, keepdims=True)
        R = A @ R
    return R[0, 1:].reshape(grid)


def _upsample(grid_map: np.ndarray, patch: tuple[int, int]) -> np.ndarray:
    return np.kron(grid_map, np.ones(patch))


def attention_figure(
    image: np.ndarray,
    maps: list[np.ndarray],
    grid: tuple[int, int],
    patch: tuple[int, int],
    title: str = "",
) -> Figure:
    """image (H, W); maps per layer (heads, N + 1, N + 1). Rows: layers; columns: heads, then the
    layer's head average; last row: the input and the rollout."""
    cls = cls_attention(maps, grid)  # (L, heads, gh, gw)
    L, Hh = cls.shape[:2]
    cols = Hh + 1
    fig = Figure(figsize=(1.6 * cols, 1.6 * (L + 1) + 0.4))
    axes = fig.subplots(L + 1, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for layer in range(L):
        for h in range(cols):
            m = cls[layer, h] if h < Hh else cls[layer].mean(axis=0)
            ax = axes[layer, h]
            ax.imshow(image, cmap="gray_r")
            ax.imshow(_upsample(m, patch), cmap="inferno", alpha=0.6, interpolation="nearest")
            ax.set_title(
                f"layer {layer + 1} " + (f"head {h + 1}" if h < Hh else "mean"), fontsize=6
            )
    axes[L, 0].imshow(image, cmap="gray_r")
    axes[L, 0].set_title("input", fontsize=7)
    ax = axes[L, 1]
    ax.imshow(image, cmap="gray_r")
    ax.imshow(
        _upsample(rollout(maps, grid), patch), cmap="inferno", alpha=0.6, interpolation="nearest"
    )
    ax.set_title("rollout", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def token_attention_figure(
    image: np.ndarray,
    maps: list[np.ndarray],
    grid: int,
    patch: int,
    query: np.ndarray,
    title: str = "",
) -> Figure:
    """Where the polyp's tokens look: for each layer, the head-averaged attention that the query
    patches (`query`, (grid, grid) bool, e.g. the patches inside the true mask) pay to every patch,
    averaged over the queries. maps: per layer (heads, N, N) of one image."""
    L = len(maps)
    fig = Figure(figsize=(1.9 * (L + 1), 2.3 + (0.3 if title else 0)))
    axes = fig.subplots(1, L + 1, squeeze=False)[0]
    rgb = to_hwc(image)
    q = query.reshape(-1)
    big_query = _upsample(query.astype(float), (patch, patch))
    axes[0].imshow(rgb)
    axes[0].contour(big_query, levels=[0.5], colors=["lime"], linewidths=0.8)
    axes[0].set_title(f"query: {int(q.sum())} polyp patches", fontsize=7)
    for layer, m in enumerate(maps):
        received = m.mean(axis=0)[q].mean(axis=0).reshape(grid, grid)  # (N,) -> grid
        axes[layer + 1].imshow(rgb)
        axes[layer + 1].imshow(
            _upsample(received, (patch, patch)), cmap="inferno", alpha=0.65, interpolation="nearest"
        )
        axes[layer + 1].set_title(f"layer {layer + 1}", fontsize=7)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
