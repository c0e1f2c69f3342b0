"""Chars74K EnglishHnd (de Campos, Babu and Varma, VISAPP 2009): hand-drawn characters made on a
tablet, `English/Hnd/Img/SampleNNN/imgNNN-WWW.png`, 1200x900 RGB with R = G = B, black ink (0) on
white (255). Folder NNN = 001-010 holds '0'-'9', 011-036 'A'-'Z', 037-062 'a'-'z' (ignored here);
WWW = 001-055 is the sample number, which names the same volunteer across classes (writer 001 is
bold in every class; upstream does not say so, published writer-disjoint splits assume it).

The glyph is small in a large blank canvas, so every image is cropped to its ink (pixels < 128)
and area-averaged down to a long side of at most `max_side`. Images come back as ink crops
(h, w) uint8 with ink bright (255 = ink, 0 = background), labels in nnlab's NIST36 order
(`nnlab.data.nist.class_names(36)`: 'A'-'Z' = 0-25, '0'-'9' = 26-35).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nnlab.data.nist import class_names
from nnlab.data.registry import data_dirs
from nnlab.errors import NNLabError

CLASS_NAMES = class_names(36)  # 'A'-'Z' then '0'-'9'
IMG_DIR = Path("English") / "Hnd" / "Img"
FOLDERS = ("chars74k-hnd", "chars74k", "EnglishHnd", "")  # where under NNLAB_DATA it may live
_NAME = re.compile(r"img(\d{3})-(\d{3})\.png$", re.IGNORECASE)


def folder_char(sample: int) -> str | None:
    """The character of folder SampleNNN: 1-10 -> '0'-'9', 11-36 -> 'A'-'Z', else None."""
    if 1 <= sample <= 10:
        return str(sample - 1)
    if 11 <= sample <= 36:
        return chr(ord("A") + sample - 11)
    return None


def parse_name(path: str | Path) -> tuple[int, int] | None:
    """(sample folder number, writer number) from imgNNN-WWW.png, or None for another name."""
    m = _NAME.search(Path(path).name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def find_chars74k(root: str | Path | None = None) -> Path | None:
    """The `English/Hnd/Img` folder under `root`, or under a NNLAB_DATA folder (directly or in
    chars74k-hnd/, chars74k/, EnglishHnd/); None when there is none."""
    roots = [Path(root)] if root is not None else data_dirs()
    for r in roots:
        if r.name == "Img" and r.is_dir():
            return r
        for sub in FOLDERS:
            p = r / sub / IMG_DIR
            if p.is_dir():
                return p
    return None


def read_glyph(path: str | Path, max_side: int = 128) -> np.ndarray:
    """One image cropped to its ink (pixels < 128) and shrunk (area average) to a long side of at
    most `max_side`: (h, w) uint8, ink = 255. NNLabError when unreadable or without ink."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            grey = im.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise NNLabError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    ink = ImageOps.invert(grey)  # ink bright
    box = ink.point(lambda v: 255 if v > 127 else 0).getbbox()
    if box is None:
        raise NNLabError(f"{path}: no ink (no pixel darker than 128)")
    ink = ink.crop(box)
    w, h = ink.size
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        ink = ink.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
    return np.asarray(ink, dtype=np.uint8).copy()


@dataclass
class Chars74K:
    images: list[np.ndarray]  # N ink crops (h_i, w_i) uint8, ink = 255
    labels: np.ndarray  # (N,) int64, index into class_names
    writers: np.ndarray  # (N,) int64, the WWW number (1-55); -1 when the name does not give it
    class_names: list[str]
    paths: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: Iterable[int]) -> Chars74K:
        index = np.asarray(list(index), dtype=np.int64)
        return Chars74K(
            [self.images[i] for i in index],
            self.labels[index],
            self.writers[index],
            self.class_names,
            [self.paths[i] for i in index],
        )

    def by_class(self) -> dict[str, list[np.ndarray]]:
        """character -> its ink crops (the glyph source `nnlab.ocr.compose` takes)."""
        out: dict[str, list[np.ndarray]] = {}
        for img, y in zip(self.images, self.labels):
            out.setdefault(self.class_names[y], []).append(img)
        return out


def load_chars74k(
    root: str | Path | None = None,
    chars: str | None = None,
    writers: Iterable[int] | None = None,
    max_side: int = 128,
) -> Chars74K:
    """The digits and upper-case letters of Chars74K EnglishHnd (lower case is skipped), optionally
    only the characters in `chars` and the writers in `writers`, in folder then writer order."""
    img_dir = find_chars74k(root)
    if img_dir is None:
        where = root if root is not None else "NNLAB_DATA"
        raise NNLabError(
            f"chars74k: no English/Hnd/Img folder found under {where}; set NNLAB_DATA to the "
            "folder that holds chars74k-hnd/"
        )
    wanted_writers = None if writers is None else set(int(w) for w in writers)
    if chars is not None:
        unknown = sorted(set(chars) - set(CLASS_NAMES))
        if unknown:
            raise NNLabError(f"chars74k has no class {unknown} (it has {''.join(CLASS_NAMES)})")
    images, labels, writer_ids, paths = [], [], [], []
    for folder in sorted(img_dir.glob("Sample*")):
        m = re.fullmatch(r"Sample(\d{3})", folder.name)
        ch = folder_char(int(m.group(1))) if m else None
        if ch is None or (chars is not None and ch not in chars):
            continue
        for path in sorted(folder.glob("*.png")):
            parsed = parse_name(path)
            writer = parsed[1] if parsed and parsed[0] == int(m.group(1)) else -1
            if wanted_writers is not None and writer not in wanted_writers:
                continue
            images.append(read_glyph(path, max_side))
            labels.append(CLASS_NAMES.index(ch))
            writer_ids.append(writer)
            paths.append(path)
    if not images:
        raise NNLabError(f"{img_dir}: no images of the requested characters and writers")
    return Chars74K(
        images,
        np.asarray(labels, dtype=np.int64),
        np.asarray(writer_ids, dtype=np.int64),
        list(CLASS_NAMES),
        paths,
    )
