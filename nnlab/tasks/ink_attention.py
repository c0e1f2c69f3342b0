"""Does a ViT look at the digit? Over a test set, the share of the class token's attention that
falls on patches containing ink, per layer and head and through attention rollout, against the
share of patches that contain ink (what uniform attention would give)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from nnlab.data import ImageSet
from nnlab.viz.attention import rollout


def inked_patches(images: np.ndarray, patch: tuple[int, int], threshold: float) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] -> (N, gh * gw) bool: does the patch hold a pixel above threshold?"""
    n, _, h, w = images.shape
    ph, pw = patch
    blocks = images[:, 0].reshape(n, h // ph, ph, w // pw, pw)
    return (blocks.max(axis=(2, 4)) > threshold).reshape(n, -1)


def ink_shares(model, data: ImageSet, threshold: float = 0.2, batch: int = 500) -> dict[str, Any]:
    """share[l, h] = mean over images of (attention of the class token to inked patches) /
    (its attention to all patches), layer l, head h; the same for the rollout; and the mean share
    of inked patches."""
    cfg = model.cfg
    device = next(model.parameters()).device
    model.eval()
    ink = inked_patches(data.images, cfg.patch, threshold)  # (N, P)
    sums, roll, count = None, 0.0, 0
    for i in range(0, len(data), batch):
        x = torch.from_numpy(data.images[i : i + batch]).to(device)
        with torch.no_grad():
            _, maps = model(x, return_attention=True)
        maps = np.stack([m.float().cpu().numpy() for m in maps], axis=1)  # (B, L, H, N+1, N+1)
        cls = maps[:, :, :, 0, 1:]  # (B, L, H, P): the class token's attention to the patches
        m = ink[i : i + batch][:, None, None, :]
        share = (cls * m).sum(-1) / cls.sum(-1)  # (B, L, H)
        sums = share.sum(0) if sums is None else sums + share.sum(0)
        for b in range(len(cls)):
            r = rollout(list(maps[b]), cfg.grid).ravel()
            roll += float((r * ink[i + b]).sum() / r.sum())
        count += len(cls)
    return {
        "layer_head": sums / count,  # (L, H)
        "rollout": roll / count,
        "inked": float(ink.mean()),
        "images": count,
        "threshold": threshold,
    }


def ink_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    share = result["layer_head"]
    rows = [
        {
            "layer": layer + 1,
            **{f"head {h + 1}": float(share[layer, h]) for h in range(share.shape[1])},
            "mean": float(share[layer].mean()),
        }
        for layer in range(share.shape[0])
    ]
    return rows


def ink_figure(result: dict[str, Any], title: str) -> Figure:
    share = result["layer_head"]
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (layer, h), v in np.ndenumerate(share):
        ax.text(
            h,
            layer,
            f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="w" if v < 0.6 else "k",
        )
    ax.set_xticks(range(share.shape[1]), [f"head {h + 1}" for h in range(share.shape[1])])
    ax.set_yticks(range(share.shape[0]), [f"layer {i + 1}" for i in range(share.shape[0])])
    fig.colorbar(im, ax=ax, label="share of class-token attention on inked patches")
    ax.set_title(
        f"{title}\ninked patches: {result['inked']:.2f} of all (uniform attention's share); "
        f"rollout: {result['rollout']:.2f}",
        fontsize=8,
    )
    fig.tight_layout()
    return fig
