"""The 36-class handwritten character set (A-Z, 0-9) the OCR classifiers train on.

Sources, every image shown in the one canonical 32x32 form (`nnlab.ocr.lines.canonical_char`:
ink bright, box centred with long side 24 px, 3 px strokes) whatever its polarity, size, margin
and pen:

- NIST (CMU 16-720 .mat files): here `nist26_valid.mat`, 1300 letters; with `--data nist` the
  NIST36 files (`nist36_train/valid/test.mat`) alone, their official parts kept;
- MNIST digits: `mnist_per_class` per digit drawn (seeded) from the training file, so the digits
  weigh about what the letters do (NIST 50 + Chars74K 55 per letter, MNIST 50 + Chars74K 55 per
  digit by default);
- Chars74K EnglishHnd: 55 writers x 36 classes, tablet strokes.

Labels follow NIST36 (`A`-`Z` = 0-25, `0`-`9` = 26-35). Every item has a unique name
("nist/nist26_valid/00042", "mnist/train/01234", "chars74k/img011-001") and a group: its writer
where one is known (Chars74K), else the item itself. The held-out parts are made per source: by
writer for Chars74K (no writer in two parts), by item, stratified by class, for NIST and MNIST
(which name no writers), so each source contributes to train, val and test in the same
proportions; the parts are saved by name in the run's split.json.

Building the canonical arrays takes minutes (reading 1980 1200x900 PNGs, ~10 ms per canonical
image), so they are cached, with the ink crops they came from (for composing pages from the
held-out part), in one .npz in the nnlab cache, keyed by the source files and the parameters;
written atomically, so an interrupted build leaves nothing that looks complete.

Augmentation for training (`CharAugment`): the affine part of `nnlab.data.augment` (rotation,
scale, shear, shift), an elastic distortion (Simard, Steinkraus and Platt 2003: a random
displacement field smoothed by a Gaussian) and a change of stroke thickness (grey dilation or
erosion), in NumPy (`augment_chars`, for the NumPy engine) and in torch (`augment_chars_torch`,
per batch on the training device).
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from nnlab.data.augment import random_affine, random_affine_torch
from nnlab.data.registry import cache_dir
from nnlab.data.splits import split_by_group, split_by_item
from nnlab.errors import NNLabError
from nnlab.io import atomic_open
from nnlab.ocr.compose import ink_crop
from nnlab.ocr.lines import CANON_BOX, CANON_SIZE, CANON_STROKE, canonical_char

CLASS_NAMES = list(string.ascii_uppercase) + list(string.digits)  # NIST36 order
DATA = ("combined", "nist")
SOURCES = ("nist", "mnist", "chars74k")
GLYPH_SIDE = 96  # ink crops kept for composing pages: long side at most this (pixels)
CACHE_VERSION = 2  # bump when the way items are made changes


@dataclass(frozen=True)
class CharSource:
    """Which characters go in: `data` combined | nist, and the limits (0 = no limit)."""

    data: str = "combined"
    mnist_per_class: int = 50  # MNIST digits drawn per class (combined only)
    per_class: int = 0  # > 0: at most this many NIST images per class (quick runs, tests)
    chars74k_writers: int = 0  # > 0: only Chars74K writers 1..N (quick runs, tests)
    seed: int = 0  # which MNIST digits are drawn

    def check(self) -> None:
        if self.data not in DATA:
            raise NNLabError(f"--data must be combined or nist, got '{self.data}'")
        for name in ("mnist_per_class", "per_class", "chars74k_writers"):
            if getattr(self, name) < 0:
                raise NNLabError(f"--{name.replace('_', '-')} must be >= 0")


@dataclass
class CharSet:
    images: np.ndarray  # (N, 32, 32) float32 in [0, 1], canonical form, ink = 1
    labels: np.ndarray  # (N,) int64, NIST36 order
    names: list[str]  # (N,) unique item names
    sources: np.ndarray  # (N,) str: nist | mnist | chars74k
    groups: np.ndarray  # (N,) str: the writer where known, else the item name
    parts: np.ndarray  # (N,) str: a fixed part from an official split file ('' = none)
    glyphs: list[np.ndarray]  # (N,) ink crops (h, w) uint8, ink = 255, as read (composing)
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> CharSet:
        index = np.asarray(index, dtype=np.int64)
        return CharSet(
            self.images[index],
            self.labels[index],
            [self.names[i] for i in index],
            self.sources[index],
            self.groups[index],
            self.parts[index],
            [self.glyphs[i] for i in index],
            self.class_names,
        )

    def image_set(self, index: np.ndarray | None = None):
        """An ImageSet (N, 1, 32, 32) of the items `index` (all by default)."""
        from nnlab.data import ImageSet

        index = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        return ImageSet(self.images[index][:, None], self.labels[index], self.class_names)

    def by_class(self, index: np.ndarray | None = None) -> dict[str, list[np.ndarray]]:
        """character -> ink crops of the items `index` (the glyph source of `compose_page`)."""
        index = np.arange(len(self)) if index is None else index
        out: dict[str, list[np.ndarray]] = {}
        for i in index:
            out.setdefault(self.class_names[self.labels[i]], []).append(self.glyphs[i])
        return out


# ----------------------------------------------------------------------------- reading sources

Say = Callable[[str], None]


@dataclass
class _Raw:
    """One source before canonicalisation: crops with their polarity for canonical_char."""

    crops: list[np.ndarray]
    ink_is_dark: bool
    labels: list[int]
    names: list[str]
    groups: list[str]
    parts: list[str]


def _nist_files(data: str) -> list[tuple[Path, str, str]]:
    """(path, split variable, fixed part) of the NIST files `data` uses."""
    from nnlab.data.nist import SPLITS, find_nist_file

    found = {s: find_nist_file(s) for s in SPLITS}
    if data == "nist":
        nist36 = {s: p for s, p in found.items() if p is not None and p.name.startswith("nist36")}
        if "train" not in nist36 or not ({"valid", "test"} & set(nist36)):
            raise NNLabError(
                "--data nist trains on the NIST36 files: nist36_train.mat and nist36_test.mat "
                "(or nist36_valid.mat) under NNLAB_DATA; without them use --data combined "
                "(NIST letters, MNIST digits and Chars74K)"
            )
        # the official parts: valid is the validation part when a test file exists
        fixed = {"train": "train", "valid": "val" if "test" in nist36 else "test", "test": "test"}
        return [(p, s, fixed[s]) for s, p in nist36.items()]
    return [(p, s, "") for s, p in found.items() if p is not None]


def _read_nist(data: str, per_class: int) -> _Raw:
    from nnlab.data.nist import read_nist_mat

    raw = _Raw([], True, [], [], [], [])
    for path, split, fixed in _nist_files(data):
        images, labels, _ = read_nist_mat(path, split)
        keep = np.arange(len(labels))
        if per_class:
            keep = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(36)])
            keep.sort()
        for i in keep:
            name = f"nist/{path.stem}/{i:05d}"
            raw.crops.append(images[i])
            raw.labels.append(int(labels[i]))  # NIST26 and NIST36 share A-Z = 0-25
            raw.names.append(name)
            raw.groups.append(name)
            raw.parts.append(fixed)
    return raw


def _read_mnist(per_class: int, seed: int) -> _Raw:
    from nnlab.data.mnist import find_split_files, load_mnist

    raw = _Raw([], False, [], [], [], [])
    if per_class == 0 or find_split_files("train") is None:
        return raw
    images, labels = load_mnist("train")
    rng = np.random.default_rng([seed, 28])
    for d in range(10):
        pool = np.flatnonzero(labels == d)
        for i in np.sort(rng.choice(pool, min(per_class, len(pool)), replace=False)):
            name = f"mnist/train/{i:05d}"
            raw.crops.append(images[i])
            raw.labels.append(26 + d)
            raw.names.append(name)
            raw.groups.append(name)
            raw.parts.append("")
    return raw


def _read_chars74k(writers: int) -> _Raw:
    from nnlab.data.chars74k import find_chars74k, load_chars74k

    raw = _Raw([], False, [], [], [], [])
    if find_chars74k() is None:
        return raw
    d = load_chars74k(writers=range(1, writers + 1) if writers else None, max_side=GLYPH_SIDE)
    for img, y, w, p in zip(d.images, d.labels, d.writers, d.paths):
        raw.crops.append(img)
        raw.labels.append(int(y))
        raw.names.append(f"chars74k/{p.stem}")
        raw.groups.append(f"chars74k/w{w:03d}" if w >= 0 else f"chars74k/{p.stem}")
        raw.parts.append("")
    return raw


def _glyph(crop: np.ndarray, ink_is_dark: bool) -> np.ndarray:
    """The ink crop kept for composing: (h, w) uint8, ink = 255 at its darkest (NIST's ink stops
    short of 0 after resampling), long side <= GLYPH_SIDE."""
    a = np.asarray(crop, dtype=np.float64)
    if np.issubdtype(np.asarray(crop).dtype, np.integer):
        a = a / 255.0
    ink = np.clip(1.0 - a if ink_is_dark else a, 0.0, 1.0)
    ink = ink / max(ink.max(), 1e-6)
    return (ink_crop(ink) * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- the cache


def _source_files(src: CharSource) -> list[list]:
    """(path, size, mtime) of every file the set is made from: the cache key's part that changes
    when the data does."""
    from nnlab.data.chars74k import find_chars74k
    from nnlab.data.mnist import find_split_files

    paths = [p for p, _, _ in _nist_files(src.data)]
    if src.data == "combined":
        if src.mnist_per_class and find_split_files("train") is not None:
            paths += list(find_split_files("train"))
        root = find_chars74k()
        if root is not None:
            paths += sorted(root.glob("Sample0[0-3][0-9]/*.png"))
    out = []
    for p in paths:
        st = p.stat()
        out.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return out


def cache_key(src: CharSource) -> str:
    canon = {"size": CANON_SIZE, "box": CANON_BOX, "stroke": CANON_STROKE, "glyph": GLYPH_SIDE}
    blob = json.dumps(
        {"version": CACHE_VERSION, "source": asdict(src), "canon": canon,
         "files": _source_files(src)},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _save(path: Path, chars: CharSet) -> None:
    shapes = np.array([g.shape for g in chars.glyphs], dtype=np.int64).reshape(-1, 2)
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            images=np.round(chars.images * 255).astype(np.uint8),
            labels=chars.labels,
            names=np.array(chars.names, dtype=str),
            sources=chars.sources.astype(str),
            groups=chars.groups.astype(str),
            parts=chars.parts.astype(str),
            glyph_shapes=shapes,
            glyph_pixels=np.concatenate([g.ravel() for g in chars.glyphs]) if len(chars) else [],
        )


def _load(path: Path) -> CharSet:
    with np.load(path, allow_pickle=False) as z:
        shapes = z["glyph_shapes"]
        ends = np.cumsum(shapes.prod(1))
        pixels = z["glyph_pixels"].astype(np.uint8)
        glyphs = [pixels[e - h * w : e].reshape(h, w) for (h, w), e in zip(shapes.tolist(), ends)]
        return CharSet(
            z["images"].astype(np.float32) / 255.0,
            z["labels"].astype(np.int64),
            z["names"].tolist(),
            z["sources"],
            z["groups"],
            z["parts"],
            glyphs,
            list(CLASS_NAMES),
        )


def load_char_set(src: CharSource = CharSource(), cache: bool = True, say: Say | None = None):
    """The canonical character set of `src` (a CharSet), from the nnlab cache when it was built
    before with the same files and parameters; built (and cached) otherwise."""
    src.check()
    path = cache_dir() / "ocr_chars" / f"{cache_key(src)}.npz"
    if cache and path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt
    raws = {"nist": _read_nist(src.data, src.per_class)}
    if src.data == "combined":
        raws["mnist"] = _read_mnist(src.mnist_per_class, src.seed)
        if say and not src.chars74k_writers:
            say("reading Chars74K (1980 PNGs; the canonical set is cached afterwards)")
        raws["chars74k"] = _read_chars74k(src.chars74k_writers)
    if not any(r.labels for r in raws.values()):
        raise NNLabError(
            "no character images found: set NNLAB_DATA to the folder that holds "
            "nist26-cmu16720/, mnist/ and chars74k-hnd/ (or the NIST36 files for --data nist)"
        )
    images, glyphs, sources = [], [], []
    labels, names, groups, parts = [], [], [], []
    for name, raw in raws.items():
        if say and raw.labels:
            say(f"canonical 32x32 form of {len(raw.labels)} {name} images")
        for crop in raw.crops:
            images.append(canonical_char(crop, raw.ink_is_dark))
            glyphs.append(_glyph(crop, raw.ink_is_dark))
        sources += [name] * len(raw.labels)
        labels += raw.labels
        names += raw.names
        groups += raw.groups
        parts += raw.parts
    chars = CharSet(
        np.stack(images).astype(np.float32),
        np.asarray(labels, dtype=np.int64),
        names,
        np.asarray(sources, dtype=str),
        np.asarray(groups, dtype=str),
        np.asarray(parts, dtype=str),
        glyphs,
        list(CLASS_NAMES),
    )
    if cache:
        _save(path, chars)
    return chars


# ----------------------------------------------------------------------------- held-out parts


def split_char_set(
    chars: CharSet, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, np.ndarray]:
    """train / val / test indices, made per source: items with a fixed part (an official NIST36
    file) keep it; the rest of a source is split by group (writer) when its groups are not all
    distinct items, else by item stratified by class; fractions (1 - val - test, val, test).
    An official training file without a validation file gives val_fraction of it to val."""
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise NNLabError(
            f"val and test fractions must be > 0 with a sum below 1, got {val_fraction}, "
            f"{test_fraction}"
        )
    fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    fixed = chars.parts
    for part in parts:
        parts[part].append(np.flatnonzero(fixed == part))
    if (fixed == "train").any() and not (fixed == "val").any():
        train = np.flatnonzero(fixed == "train")
        cut = split_by_item(
            len(train), (1 - val_fraction, val_fraction), seed, chars.labels[train],
            parts=("train", "val"),
        )  # fmt: skip
        parts["train"][0], parts["val"][0] = train[cut["train"]], train[cut["val"]]
    for source in SOURCES:
        idx = np.flatnonzero((chars.sources == source) & (fixed == ""))
        if len(idx) == 0:
            continue
        groups = chars.groups[idx]
        if len(np.unique(groups)) < len(idx):
            cut = split_by_group(groups, fractions, seed)
        elif len(idx) >= 3:
            cut = split_by_item(len(idx), fractions, seed, chars.labels[idx])
        else:
            cut = {"train": np.arange(len(idx)), "val": idx[:0], "test": idx[:0]}
        for part in parts:
            parts[part].append(idx[cut[part]])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def split_how(val_fraction: float, test_fraction: float, seed: int, src: CharSource) -> dict:
    """What split.json records about how `split_char_set` made the parts."""
    return {
        "method": "per source: by writer (Chars74K), by item stratified (NIST, MNIST), "
        "official NIST36 files kept",
        "seed": seed,
        "fractions": [1 - val_fraction - test_fraction, val_fraction, test_fraction],
        "source": asdict(src),
    }


# ----------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class CharAugment:
    """Random changes of a canonical character that keep it the same character and roughly in
    the canonical form. Each is drawn per image; 0 switches one off."""

    rotate: float = 10.0  # degrees, U(-v, v)
    scale: float = 0.1  # factor U(1 - v, 1 + v)
    shear: float = 0.2  # U(-v, v)
    shift: float = 1.0  # pixels, U(-v, v)
    elastic: float = 1.0  # RMS displacement of the elastic field, pixels
    elastic_sigma: float = 3.0  # smoothness of the field: Gaussian sigma, pixels
    thickness: float = 0.3  # chance of a stroke-width change (half thicker, half thinner)


def _elastic_field(rng: np.random.Generator, n: int, h: int, w: int, aug: CharAugment):
    """(n, 2, h, w) displacements in pixels: white noise smoothed by a Gaussian of elastic_sigma,
    scaled so that its RMS over each image is `elastic` (the smoothing alone would shrink it by a
    factor that depends on sigma; Simard et al. fold that into their alpha)."""
    field = rng.uniform(-1, 1, (n, 2, h, w))
    field = ndimage.gaussian_filter(field, (0, 0, aug.elastic_sigma, aug.elastic_sigma))
    rms = np.sqrt((field**2).sum(1).mean((1, 2)))[:, None, None, None]  # (n, 1, 1, 1)
    return field * aug.elastic / np.maximum(rms, 1e-12)


def augment_chars(images: np.ndarray, rng: np.random.Generator, aug: CharAugment = CharAugment()):
    """images (N, 1, H, W) float in [0, 1], ink bright -> augmented (N, 1, H, W): affine
    (rotation, scale, shear, shift), elastic distortion, then stroke thickness: the mean of the
    image and its 3x3 grey dilation for a thicker pen (~1 px more, the new edge half-grey), of
    the image and its 2x2 grey erosion for a thinner one (the full operations change a 3 px
    stroke's ink by a factor ~0.5 or ~1.7, more than pens on a page differ after the canonical
    redrawing to 3 px)."""
    N, C, H, W = images.shape
    x = random_affine(images, rng, aug.rotate, aug.scale, aug.shear, aug.shift)
    if aug.elastic > 0:
        d = _elastic_field(rng, N, H, W, aug)  # (N, 2, H, W)
        yy, xx = np.mgrid[:H, :W].astype(np.float64)
        coords = np.empty((4, N, C, H, W))
        coords[0] = np.arange(N)[:, None, None, None]
        coords[1] = np.arange(C)[None, :, None, None]
        coords[2] = (yy + d[:, 0])[:, None]
        coords[3] = (xx + d[:, 1])[:, None]
        x = ndimage.map_coordinates(x, coords, order=1, mode="constant", cval=0.0)
    if aug.thickness > 0:
        u = rng.random(N)
        thick, thin = u < aug.thickness / 2, (u >= aug.thickness / 2) & (u < aug.thickness)
        if thick.any():
            x[thick] = (x[thick] + ndimage.grey_dilation(x[thick], size=(1, 1, 3, 3))) / 2
        if thin.any():
            x[thin] = (x[thin] + ndimage.grey_erosion(x[thin], size=(1, 1, 2, 2))) / 2
    return np.clip(x, 0.0, 1.0).astype(images.dtype, copy=False)


def augment_chars_torch(x, aug: CharAugment = CharAugment()):
    """The same augmentation for a torch batch (B, 1, H, W) on its device, drawn from torch's
    global generator (which the training loop seeds per epoch)."""
    import torch
    import torch.nn.functional as F

    B, C, H, W = x.shape
    x = random_affine_torch(x, aug.rotate, aug.scale, aug.shear, aug.shift)
    if aug.elastic > 0:
        s = aug.elastic_sigma
        r = int(3 * s)
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=x.device) / s) ** 2)
        k = (k / k.sum()).to(x.dtype)
        noise = torch.rand(B * 2, 1, H, W, device=x.device, dtype=x.dtype) * 2 - 1
        # separable Gaussian: rows then columns, zero padding as far as the kernel reaches
        field = F.conv2d(F.pad(noise, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        field = F.conv2d(F.pad(field, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
        field = field.view(B, 2, H, W)
        rms = field.pow(2).sum(1).mean((1, 2)).sqrt().clamp_min(1e-12).view(B, 1, 1, 1)
        field = field * (aug.elastic / rms)  # (B, 2, H, W) pixels, (dy, dx)
        theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).expand(B, 2, 3)
        grid = F.affine_grid(theta, (B, C, H, W), align_corners=False)  # (B, H, W, 2) as (x, y)
        # grid units: 2 / W per pixel along x, 2 / H along y
        offset = torch.stack([field[:, 1] * 2 / W, field[:, 0] * 2 / H], -1)  # (B, H, W, 2)
        x = F.grid_sample(x, grid + offset, mode="bilinear", padding_mode="zeros",
                          align_corners=False)  # fmt: skip
    if aug.thickness > 0:
        u = torch.rand(B, device=x.device).view(B, 1, 1, 1)
        thick = (x + F.max_pool2d(x, 3, stride=1, padding=1)) / 2
        thin = (x - F.max_pool2d(-F.pad(x, (0, 1, 0, 1)), 2, stride=1)) / 2
        x = torch.where(u < aug.thickness / 2, thick, x)
        x = torch.where((u >= aug.thickness / 2) & (u < aug.thickness), thin, x)
    return x.clamp(0.0, 1.0)


def class_counts(chars: CharSet, index: Sequence[int] | None = None) -> dict[str, dict[str, int]]:
    """source -> {"letters": n, "digits": n} of the items `index` (all by default)."""
    index = np.arange(len(chars)) if index is None else np.asarray(index)
    out = {}
    for s in SOURCES:
        sel = index[chars.sources[index] == s]
        if len(sel):
            digits = int((chars.labels[sel] >= 26).sum())
            out[s] = {"letters": len(sel) - digits, "digits": digits}
    return out
