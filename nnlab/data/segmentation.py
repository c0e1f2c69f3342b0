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
from nnlab.io import atomic_open, large_images

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
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


def image_files(folder: Path) -> list[Path]:
    """The image files of `folder`, less what systems leave beside files (macOS's '._name',
    hidden '.name', Office's '~$name'). A link to a missing file is an error."""
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in EXTENSIONS or p.name.startswith((".", "~$")):
            continue
        if p.is_symlink() and not p.exists():
            raise NNLabError(f"{p}: a link to a missing file")
        found.append(p)
    return found


def _files(folder: Path) -> dict[str, Path]:
    """name -> image file of `folder` (`image_files`). Two files of one name (x.jpg and x.png)
    are an error: one would be paired with the other's mask."""
    found: dict[str, Path] = {}
    for p in image_files(folder):
        if p.stem in found:
            raise NNLabError(
                f"{folder}: two files named {p.stem} ({found[p.stem].name}, {p.name}): keep one"
            )
        found[p.stem] = p
    return found


def find_pairs(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) for every image in root/images with a mask of the same name."""
    root = Path(root)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise NNLabError(f"{root}: expected the folders images/ and masks/")
    images, masks = _files(root / "images"), _files(root / "masks")
    if not images:
        raise NNLabError(f"{root / 'images'}: no image files ({', '.join(EXTENSIONS)})")
    missing, extra = sorted(set(images) - set(masks)), sorted(set(masks) - set(images))
    suffix = _mask_suffix(missing, extra)
    if suffix:  # Carvana's NAME_mask, ISIC's NAME_segmentation: paired, and said
        import warnings

        warnings.warn(
            f"{root / 'masks'}: masks named NAME{suffix}: each paired with images/NAME",
            stacklevel=2,
        )
        masks = {n[: -len(suffix)] if n in extra else n: p for n, p in masks.items()}
        missing, extra = [], []
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


def _mask_suffix(missing: list[str], extra: list[str]) -> str:
    """The one suffix that turns every image name without a mask into a mask name left without
    an image ('_mask', '_segmentation'), or ''."""
    if not missing or len(missing) != len(extra):
        return ""
    found = {m[len(n) :] for n in missing for m in extra if m.startswith(n) and m != n}
    if len(found) != 1:
        return ""
    (suffix,) = found
    return suffix if {n + suffix for n in missing} == set(extra) else ""


# `segment predict` decodes a JPEG whose long side is past this at 1/2, 1/4 or 1/8 scale, no
# smaller than this (the model reads it at --size px); the overlay is drawn at most this large
VIEW_SIDE = 4096
# EXIF orientations that turn an image by a quarter (its width and height swap)
_QUARTER_TURNS = (5, 6, 7, 8)


def _open(path: Path, mode: str | None = None, side: int = 0) -> Image.Image:
    """The image turned upright by its EXIF orientation (as viewers show it, and as masks are
    drawn), in `mode` (None: its own, loaded); 16-bit and float images scaled to 0-255 by their
    largest value. `side` > 0: a JPEG whose long side is past it is decoded at a reduced scale
    that keeps the long side at `side` or more (other formats are decoded whole)."""
    from PIL import ImageOps

    try:
        with large_images(), Image.open(path) as im:
            if side and max(im.size) > side:
                im.draft(None, tuple(-(-v * side // max(im.size)) for v in im.size))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                a = np.asarray(im, dtype=np.float32)
                a = a - min(0.0, float(a.min()))
                im = Image.fromarray((255 * a / max(1e-9, float(a.max()))).astype(np.uint8))
            return im.convert(mode) if mode else im.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise NNLabError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None


def image_header(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header (its pixels not decoded), as its EXIF
    orientation turns it; an NNLabError naming it when it is no image."""
    try:
        with large_images(), Image.open(path) as im:
            turned = im.getexif().get(0x0112) in _QUARTER_TURNS
            return im.size[::-1] if turned else im.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise NNLabError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None


def _mask_values(path: Path) -> tuple[np.ndarray, str]:
    """A mask's grey values (H, W) uint8 and, where it was not stored 0/255, how it was read:
    0/1 masks and masks of two colours (red or blue on black: their grey is below 128) as
    foreground where not background; label masks (0, 1, 2, ...) as foreground where not 0; a
    mask whose shape is in its transparency only, from that."""
    im = _open(path)  # decoded once
    m = np.asarray(im.convert("L"))
    if im.mode in ("RGBA", "LA", "PA"):
        a = np.asarray(im.convert("RGBA"))[..., 3]
        if np.ptp(m) == 0 and np.ptp(a) > 0:
            return a, "read from their transparency"
    if m.max() >= 128 or m.max() == 0:
        return m, ""
    values = np.unique(m)
    if len(values) == 2:
        return ((m > values[0]) * 255).astype(np.uint8), (
            "stored as two values below 128 (0/1, or a colour on black): read as 0/255"
        )
    if m.max() < 30 and len(values) <= 16:
        return ((m > 0) * 255).astype(
            np.uint8
        ), "label masks (0, 1, 2, ...): nonzero read as foreground"
    return m, ""


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


def read_image(
    path: Path, size: int, aspect: str = "pad", view_side: int = VIEW_SIDE
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """For prediction: (image resized (3, S, S) uint8, the image to draw on (H', W', 3) uint8,
    its upright size (W, H)). An image longer than `view_side` is decoded reduced where its
    format allows (JPEG) and drawn on at `view_side`: a 200-Mpx slide scan is never held whole;
    a smaller one is read and drawn on as it is."""
    _check_aspect(aspect)
    full = image_header(path)
    image = _open(path, "RGB", side=view_side)
    square = np.asarray(_square(image, size, aspect, Image.BILINEAR)).transpose(2, 0, 1).copy()
    if max(image.size) > view_side:
        image = image.reduce(-(-max(image.size) // view_side))  # box filter, integer factor
    return square, np.asarray(image), full


def unsquare(mask: np.ndarray, original: tuple[int, int], aspect: str = "pad") -> np.ndarray:
    """Undo the geometry of `_square` for an (S, S) mask: back to the original (H, W) (nearest)."""
    w, h = original
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    with large_images():  # (a photo's own size: Pillow checks a crop's too)
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
    image = _open(image_path, "RGB")
    m, note = _mask_values(mask_path)
    if image.size != (m.shape[1], m.shape[0]):
        raise NNLabError(
            f"{mask_path}: mask is {m.shape[1]}x{m.shape[0]} but its image is "
            f"{image.size[0]}x{image.size[1]} (as its EXIF orientation turns it)"
        )
    if note:
        import warnings

        warnings.warn(f"{mask_path.parent}: masks {note}", stacklevel=3)
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
    import warnings

    images = np.empty((len(pairs), 3, size, size), np.uint8)
    masks = np.empty((len(pairs), 1, size, size), np.uint8)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for i, (_, ip, mp) in enumerate(pairs):
            images[i], masks[i] = read_pair_uint8(ip, mp, size, aspect)
            if progress:
                progress(i + 1, len(pairs))
    for message in dict.fromkeys(str(w.message) for w in said):  # once for the folder
        warnings.warn(message, stacklevel=2)
    if not masks.any():
        raise NNLabError(
            f"{root}: every mask is empty (no pixel of 128 or more): masks are white (255) on "
            "black (0)"
        )
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
