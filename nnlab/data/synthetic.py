"""Small generated stand-ins for tests: polyp-like images (a textured blob on a coloured,
textured background) with exact masks, written in the images/ + masks/ folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def polyp_image(size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, mask (H, W) bool): an elliptic blob, brighter and redder than the
    mucosa-coloured background, both with noise texture."""
    H, W = size
    yy, xx = np.mgrid[:H, :W]
    cy, cx = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W
    ry, rx = rng.uniform(0.1, 0.3) * H, rng.uniform(0.1, 0.3) * W
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
    mask = u * u + v * v <= 1.0
    background = np.array([170, 90, 80]) + rng.normal(0, 12, (H, W, 3))
    blob = np.array([220, 140, 120]) + rng.normal(0, 18, (H, W, 3))
    image = np.where(mask[..., None], blob, background)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_polyp_folder(
    root: str | Path,
    n: int = 12,
    size: tuple[int, int] = (48, 64),
    seed: int = 0,
    image_format: str = "jpg",
) -> Path:
    """Write n image/mask pairs to root/images/ and root/masks/ (masks as PNG: exact)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, mask = polyp_image(size, rng)
        Image.fromarray(image).save(root / "images" / f"case{i:03d}.{image_format}")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"case{i:03d}.png")
    return root
