"""Segmentation data in the usual folder layout: `images/NAME.(jpg|png)` with `masks/NAME.(jpg|png)`
(Kvasir-SEG, CVC-ClinicDB, your own). Masks are binarised at 128 (JPEG masks carry a few grey edge
pixels); image and mask are resized with the same geometry -- bilinear for the image, nearest for
the mask -- after padding to a square ('pad', keeps the aspect ratio) or directly ('stretch')."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nnlab.data.registry import data_dirs, cache_dir
from nnlab.errors import NNLabError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
GREY_LIMIT = 0.05  # a mask with more than 5% of pixels in 30..225 is not a binary mask


@dataclass
class SegmentationSet:
    images: np.ndarray  # (N, 3, S, S) float32 in [0, 1]
    masks: np.ndarray  # (N, 1, S, S) float32 in {0, 1}
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> SegmentationSet:
        return SegmentationSet(self.images[index], self.masks[index], [self.names[i] for i in index])


def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in EXTENSIONS}


def find_pairs(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) for every image in root/images with a mask of the same name."""
    root = Path(root)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise NNLabError(f"{root}: expected the folders images/ and masks/")
    images, masks = _files(root / "images"), _files(root / "masks")
    if not images:
        raise NNLabError(f"{root / 'images'}: no image files ({', '.join(EXTENSIONS)})")
    missing, extra = sorted(set(images) - set(masks)), sorted(set(masks) - set(images))
    if missing or extra:
        detail = [f"no mask for {', '.join(missing[:3])}" if missing else "",
                  f"no image for mask {', '.join(extra[:3])}" if extra else ""]
        raise NNLabError(f"{root}: image and mask names do not match: " + "; ".join(d for d in detail if d)
                         + (" ..." if len(missing) > 3 or len(extra) > 3 else ""))
    return [(name, images[name], masks[name]) for name in images]


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except (UnidentifiedImageError, OSError) as e:
        raise NNLabError(f"{path}: unreadable image ({type(e).__name__})") from None


def _square(im: Image.Image, size: int, aspect: str, resample) -> Image.Image:
    if aspect == "pad":
        w, h = im.size
        side = max(w, h)
        canvas = Image.new(im.mode, (side, side), 0)
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        im = canvas
    return im.resize((size, size), resample)


def read_pair(image_path: Path, mask_path: Path, size: int, aspect: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """(image (3, S, S) float32 in [0, 1], mask (1, S, S) float32 in {0, 1})."""
    if aspect not in ("pad", "stretch"):
        raise NNLabError(f"aspect must be pad or stretch, got '{aspect}'")
    image, mask = _open(image_path, "RGB"), _open(mask_path, "L")
    if image.size != mask.size:
        raise NNLabError(f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]} but its image is "
                         f"{image.size[0]}x{image.size[1]}")
    m = np.asarray(mask)
    grey = float(((m > 30) & (m < 225)).mean())
    if grey > GREY_LIMIT:
        raise NNLabError(f"{mask_path}: not a binary mask ({grey:.0%} of pixels are grey, limit {GREY_LIMIT:.0%})")
    image = _square(image, size, aspect, Image.BILINEAR)
    mask = _square(Image.fromarray(((m >= 128) * 255).astype(np.uint8)), size, aspect, Image.NEAREST)
    return (np.asarray(image, np.float32).transpose(2, 0, 1) / 255.0,
            (np.asarray(mask) >= 128).astype(np.float32)[None])


def load_folder(root: str | Path, size: int = 256, aspect: str = "pad", progress=None) -> SegmentationSet:
    pairs = find_pairs(root)
    images = np.empty((len(pairs), 3, size, size), np.float32)
    masks = np.empty((len(pairs), 1, size, size), np.float32)
    for i, (_, ip, mp) in enumerate(pairs):
        images[i], masks[i] = read_pair(ip, mp, size, aspect)
        if progress:
            progress(i + 1, len(pairs))
    return SegmentationSet(images, masks, [n for n, _, _ in pairs])


def kvasir_root() -> Path:
    """The Kvasir-SEG folder (with images/ and masks/) under NNLAB_DATA or the cache."""
    for root in [*data_dirs(), cache_dir()]:
        for candidate in (root / "Kvasir-SEG", root / "kvasir-seg" / "Kvasir-SEG", root / "kvasir" / "Kvasir-SEG"):
            if (candidate / "images").is_dir():
                return candidate
    raise NNLabError("Kvasir-SEG not found: set NNLAB_DATA to a folder holding Kvasir-SEG/images "
                     "and Kvasir-SEG/masks (or kvasir-seg/Kvasir-SEG/...)")


def split_indices(n: int, seed: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, np.ndarray]:
    """A fixed, seeded train / val / test split of n items (sorted indices)."""
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return {k: np.sort(part) for k, part in zip(("train", "val", "test"), np.split(order, bounds))}
