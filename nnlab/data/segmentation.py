"""Segmentation data in the usual folder layout: `images/NAME.(jpg|png)` with `masks/NAME.(jpg|png)`
(Kvasir-SEG, CVC-ClinicDB, your own). Masks are binarised at 128 (JPEG masks carry a few grey edge
pixels); image and mask are resized with the same geometry -- bilinear for the image, nearest for
the mask -- after padding to a square ('pad', keeps the aspect ratio) or directly ('stretch')."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import TensorDataset

from nnlab.data.registry import cache_dir, data_dirs
from nnlab.errors import NNLabError
from nnlab.io import atomic_open

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
GREY_LIMIT = 0.05  # a mask with more than 5% of pixels in 30..225 is not a binary mask


@dataclass
class SegmentationSet:
    images: np.ndarray  # (N, 3, S, S) uint8 (a quarter of float32's memory: 1000 x 256 px = 197 MB)
    masks: np.ndarray  # (N, 1, S, S) uint8 in {0, 1}
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> SegmentationSet:
        return SegmentationSet(
            self.images[index], self.masks[index], [self.names[i] for i in index]
        )

    def tensors(self) -> TensorDataset:
        """(image uint8, mask uint8) pairs; the task converts a batch to float on the device."""
        return TensorDataset(torch.from_numpy(self.images), torch.from_numpy(self.masks))


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
        detail = [
            f"no mask for {', '.join(missing[:3])}" if missing else "",
            f"no image for mask {', '.join(extra[:3])}" if extra else "",
        ]
        raise NNLabError(
            f"{root}: image and mask names do not match: "
            + "; ".join(d for d in detail if d)
            + (" ..." if len(missing) > 3 or len(extra) > 3 else "")
        )
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


def _check_aspect(aspect: str) -> None:
    if aspect not in ("pad", "stretch"):
        raise NNLabError(f"aspect must be pad or stretch, got '{aspect}'")


def read_image(path: Path, size: int, aspect: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """(image resized (3, S, S) uint8, the image as read (H, W, 3) uint8) -- for prediction."""
    _check_aspect(aspect)
    image = _open(path, "RGB")
    return np.asarray(_square(image, size, aspect, Image.BILINEAR)).transpose(
        2, 0, 1
    ).copy(), np.asarray(image)


def unsquare(mask: np.ndarray, original: tuple[int, int], aspect: str = "pad") -> np.ndarray:
    """Undo the geometry of `_square` for an (S, S) mask: back to the original (H, W) (nearest)."""
    w, h = original
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    if aspect == "pad":
        side = max(w, h)
        im = im.resize((side, side), Image.NEAREST).crop(
            ((side - w) // 2, (side - h) // 2, (side - w) // 2 + w, (side - h) // 2 + h)
        )
    else:
        im = im.resize((w, h), Image.NEAREST)
    return np.asarray(im) >= 128


def read_pair_uint8(
    image_path: Path, mask_path: Path, size: int, aspect: str = "pad"
) -> tuple[np.ndarray, np.ndarray]:
    """(image (3, S, S) uint8, mask (1, S, S) uint8 in {0, 1})."""
    _check_aspect(aspect)
    image, mask = _open(image_path, "RGB"), _open(mask_path, "L")
    if image.size != mask.size:
        raise NNLabError(
            f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]} but its image is "
            f"{image.size[0]}x{image.size[1]}"
        )
    m = np.asarray(mask)
    grey = float(((m > 30) & (m < 225)).mean())
    if grey > GREY_LIMIT:
        raise NNLabError(
            f"{mask_path}: not a binary mask ({grey:.0%} of pixels are grey, "
            f"limit {GREY_LIMIT:.0%})"
        )
    image = _square(image, size, aspect, Image.BILINEAR)
    mask = _square(
        Image.fromarray(((m >= 128) * 255).astype(np.uint8)), size, aspect, Image.NEAREST
    )
    return (
        np.asarray(image).transpose(2, 0, 1).copy(),
        (np.asarray(mask) >= 128).astype(np.uint8)[None],
    )


def read_pair(
    image_path: Path, mask_path: Path, size: int, aspect: str = "pad"
) -> tuple[np.ndarray, np.ndarray]:
    """(image (3, S, S) float32 in [0, 1], mask (1, S, S) float32 in {0, 1})."""
    image, mask = read_pair_uint8(image_path, mask_path, size, aspect)
    return image.astype(np.float32) / 255.0, mask.astype(np.float32)


def load_folder(
    root: str | Path, size: int = 256, aspect: str = "pad", progress=None, cache: bool = True
) -> SegmentationSet:
    """Every pair of `root`, resized to size x size. The resized arrays are cached (keyed by the
    folder, the size, the aspect handling and every file's name, size and mtime): the 1000 JPEG
    pairs of Kvasir-SEG take ~20 s to decode and resize, the cache well under a second."""
    _check_aspect(aspect)
    pairs = find_pairs(root)
    path = _cache_path(root, pairs, size, aspect) if cache else None
    if path is not None and path.exists():
        cached = _read_cache(path, len(pairs), size)
        if cached is not None:
            return cached
    images = np.empty((len(pairs), 3, size, size), np.uint8)
    masks = np.empty((len(pairs), 1, size, size), np.uint8)
    for i, (_, ip, mp) in enumerate(pairs):
        images[i], masks[i] = read_pair_uint8(ip, mp, size, aspect)
        if progress:
            progress(i + 1, len(pairs))
    data = SegmentationSet(images, masks, [n for n, _, _ in pairs])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as f:  # a crash mid-write never leaves a cache that looks complete
            np.savez(f, images=images, masks=masks, names=np.array(data.names))
    return data


def _cache_path(root, pairs, size: int, aspect: str) -> Path:
    h = hashlib.sha256(json.dumps([str(Path(root).resolve()), size, aspect]).encode())
    for name, ip, mp in pairs:
        for p in (ip, mp):
            st = p.stat()
            h.update(f"{name}|{p.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return (
        cache_dir() / "segmentation" / f"{Path(root).name}-{size}-{aspect}-{h.hexdigest()[:16]}.npz"
    )


def _read_cache(path: Path, n: int, size: int) -> SegmentationSet | None:
    """The cached set, or None if the file is damaged (it is then rebuilt and replaced)."""
    try:
        with np.load(path) as z:
            data = SegmentationSet(z["images"], z["masks"], [str(s) for s in z["names"]])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if data.images.shape != (n, 3, size, size) or data.masks.shape != (n, 1, size, size):
        return None
    return data


def kvasir_root() -> Path:
    """The Kvasir-SEG folder (with images/ and masks/) under NNLAB_DATA or the cache."""
    for root in [*data_dirs(), cache_dir()]:
        for candidate in (
            root / "Kvasir-SEG",
            root / "kvasir-seg" / "Kvasir-SEG",
            root / "kvasir" / "Kvasir-SEG",
        ):
            if (candidate / "images").is_dir():
                return candidate
    raise NNLabError(
        "Kvasir-SEG not found: run `nnlab datasets fetch kvasir`, or set NNLAB_DATA to a "
        "folder holding Kvasir-SEG/images and Kvasir-SEG/masks (or kvasir-seg/Kvasir-SEG/...)"
    )
