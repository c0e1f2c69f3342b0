"""Boxes -> lines -> reading order with spaces; and the one canonical 32x32 form every character
image is shown to a classifier in (page crops and the NIST, MNIST and Chars74K training images).

Lines. Boxes are grouped in the upright (deskewed) frame of the page, where text lines are
horizontal: sorted by the vertical centre, a new line starts where consecutive centres jump by
more than `line_gap` x the median character height (single-linkage clustering in 1-D: baseline
jitter and a slight residual tilt move centres a little, neighbouring lines are a line pitch
apart). Lines are read top to bottom, boxes left to right by their centre.

Spaces. Within a line, the gap before a box (its left edge minus the previous box's right edge) is
a space when it is wider than `space_gap` x the median gap of that line (the letter spacing of this
writer on this line; the page's median gap when the line has fewer than 3 gaps) and wider than
`space_min` x the median character height (letters that touch make the median gap ~0, and then
any visible gap would count).

Canonical form (`canonical_char`): 32x32 float32 in [0, 1], ink bright (1 = ink, 0 = background,
as nnlab's ImageSet and MNIST), upright, the ink's bounding box centred with its long side 24 px
(a 4 px margin on that axis; the aspect ratio is kept), strokes redrawn to 3 px wide -- the look
of the NIST 32x32 images (median long side 25 px, bounding-box centred, 3 px strokes), so a
classifier trained on any of the sources sees the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize
from skimage.transform import resize

from nnlab.errors import NNLabError
from nnlab.ocr.page import Box, stroke_width

CANON_SIZE = 32  # the canonical image is CANON_SIZE x CANON_SIZE
CANON_BOX = 24  # the long side of the ink's bounding box, pixels (margin (32 - 24) / 2 = 4)
CANON_STROKE = 3.0  # pen width, pixels
CANON_INK_IS_DARK = False  # ink = 1.0 (bright) on 0.0
_WORK = 4 * CANON_BOX  # the stroke width is normalised with the glyph's long side at 96 px


@dataclass(frozen=True)
class LineConfig:
    line_gap: float = 0.5  # new line where sorted centres jump by more than this x median height
    space_gap: float = 2.5  # a space: gap wider than this x the line's median gap...
    space_min: float = 0.4  # ... and wider than this x the median character height


@dataclass
class Line:
    """One text line: its boxes left to right and, per box, whether a space precedes it."""

    boxes: list[Box]
    space_before: list[bool]

    def text(self, chars: Sequence[str]) -> str:
        """The line's text given one recognised character per box."""
        if len(chars) != len(self.boxes):
            raise NNLabError(f"{len(chars)} characters for a line of {len(self.boxes)} boxes")
        return "".join((" " if s else "") + c for s, c in zip(self.space_before, chars))


def _upright(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([b.upright for b in boxes], dtype=np.float64).reshape(-1, 4)  # (N, 4)


def group_lines(boxes: Sequence[Box], cfg: LineConfig = LineConfig()) -> list[Line]:
    """Lines in reading order (top to bottom), each with its boxes left to right and the space
    flags (see the module docstring for both rules)."""
    if len(boxes) == 0:
        return []
    u = _upright(boxes)
    heights = u[:, 3] - u[:, 1]
    h = float(np.median(heights))
    cy = (u[:, 1] + u[:, 3]) / 2
    order = np.argsort(cy, kind="stable")
    jumps = np.diff(cy[order]) > cfg.line_gap * h
    line_of = np.empty(len(boxes), dtype=np.int64)
    line_of[order] = np.concatenate([[0], np.cumsum(jumps)])
    members = [np.nonzero(line_of == i)[0] for i in range(int(line_of.max()) + 1)]
    members = [m[np.argsort((u[m, 0] + u[m, 2]) / 2, kind="stable")] for m in members]
    gaps = [u[m[1:], 0] - u[m[:-1], 2] for m in members]
    all_gaps = np.concatenate(gaps)
    page_gap = float(np.median(all_gaps)) if len(all_gaps) else 0.0
    lines = []
    for m, g in zip(members, gaps):
        typical = float(np.median(g)) if len(g) >= 3 else page_gap
        limit = max(cfg.space_gap * max(typical, 0.0), cfg.space_min * h)
        lines.append(Line([boxes[i] for i in m], [False] + [bool(x > limit) for x in g]))
    lines.sort(
        key=lambda line: float(np.mean([(b.upright[1] + b.upright[3]) / 2 for b in line.boxes]))
    )
    return lines


def reading_order(lines: Sequence[Line]) -> list[Box]:
    """All boxes of the lines, in reading order."""
    return [b for line in lines for b in line.boxes]


# ----------------------------------------------------------------------------- canonical form


def _as_ink(image: np.ndarray, ink_is_dark: bool) -> np.ndarray:
    """(h, w) -> float (h, w) with ink ~1 and background ~0, stretched between the 1st and
    99.5th percentiles (NIST's resampling overshoot, a grey paper, a faint pen all map alike)."""
    a = np.asarray(image)
    if a.ndim != 2 or a.size == 0:
        raise NNLabError(f"a character image must be 2-D and non-empty, got shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / (255.0 if a.dtype == np.uint8 else float(np.iinfo(a.dtype).max))
    else:
        a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise NNLabError("a character image contains NaN or infinite values")
    if ink_is_dark:
        a = 1.0 - a
    lo, hi = np.percentile(a, [1.0, 99.5])
    if hi - lo < 0.1:
        raise NNLabError("the character image has no ink (no contrast)")
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _bbox(m: np.ndarray) -> tuple[slice, slice]:
    ys, xs = np.nonzero(m)
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def canonical_char(image: np.ndarray, ink_is_dark: bool) -> np.ndarray:
    """Any greyscale character crop (h, w) -- uint8, bool or float; dark ink on light
    (`ink_is_dark`, NIST, paper, Chars74K) or bright ink on dark (MNIST, page masks) -- in the
    canonical form: (32, 32) float32 in [0, 1], ink = 1, the ink's box centred with long side
    CANON_BOX, strokes CANON_STROKE wide.

    Steps: stretch to ink in [0, 1] -> crop to the pixels of at least half ink -> resize so the
    long side is 96 px -> binarise at 0.5 -> thin (erode by (w - 12) / 2, keeping the skeleton
    redrawn at 12 px so no stroke vanishes) or thicken (dilate by (12 - w) / 2) from the measured
    pen width w to 12 px -> pad the box to a square about its centre -> area-resize to 24 x 24
    -> paste in the middle of 32 x 32."""
    a = _as_ink(image, ink_is_dark)
    m = a >= 0.5
    if not m.any():
        raise NNLabError("the character image has no ink (no pixel at half intensity or more)")
    a = a[_bbox(m)]
    h, w = a.shape
    s = _WORK / max(h, w)
    shape = (max(1, round(h * s)), max(1, round(w * s)))
    a = resize(a, shape, order=1, anti_aliasing=s < 1, mode="edge")
    m = a >= 0.5
    if not m.any():
        m = a >= a.max() / 2
    target = CANON_STROKE * _WORK / CANON_BOX
    m = np.pad(m, int(target))  # room to thicken
    pen = stroke_width(m)
    if pen > target:
        inside = ndimage.distance_transform_edt(m)
        spine = ndimage.distance_transform_edt(~skeletonize(m)) <= target / 2
        m = (inside > (pen - target) / 2) | (spine & m)
    elif pen < target:
        m = ndimage.distance_transform_edt(~m) <= (target - pen) / 2
    m = m[_bbox(m)].astype(np.float64)
    h, w = m.shape
    side = max(h, w)
    square = np.zeros((side, side))
    y0, x0 = (side - h) // 2, (side - w) // 2
    square[y0 : y0 + h, x0 : x0 + w] = m
    small = resize(square, (CANON_BOX, CANON_BOX), order=1, anti_aliasing=True)
    out = np.zeros((CANON_SIZE, CANON_SIZE), np.float32)
    o = (CANON_SIZE - CANON_BOX) // 2
    out[o : o + CANON_BOX, o : o + CANON_BOX] = np.clip(small, 0.0, 1.0)
    return out


def crop_for_classifier(box_mask: np.ndarray) -> np.ndarray:
    """A box's ink mask (h, w) bool (ink = True) -> the canonical (32, 32) float32. The mask is
    cut to its ink, so it may be all ink (a straight bar of a 1, a blot): the paper around it,
    one pixel, is put back first (else it would have no contrast)."""
    return canonical_char(np.pad(np.asarray(box_mask, dtype=bool), 1), ink_is_dark=False)


def canonical_stats(images: np.ndarray) -> dict[str, float]:
    """Statistics of a batch (N, 32, 32) with ink bright, to compare sources by numbers:
    ink_fraction (share of pixels >= 0.5), com_y / com_x (centre of mass of the intensity),
    box_long (long side of the >= 0.5 bounding box), box_cy / box_cx (its centre), margin (the
    smallest distance from that box to the frame), stroke (median pen width via the distance
    transform), border (mean intensity of the outer 2-pixel ring: ~0 for bright ink on black)."""
    x = np.asarray(images, dtype=np.float64)
    N, H, W = x.shape
    yy, xx = np.mgrid[:H, :W]
    m = x >= 0.5
    mass = x.sum(axis=(1, 2))
    out = {"ink_fraction": [], "com_y": [], "com_x": [], "box_long": [], "box_cy": [],
           "box_cx": [], "margin": [], "stroke": []}  # fmt: skip
    for i in range(N):
        if not m[i].any():
            continue
        ys, xs = np.nonzero(m[i])
        out["ink_fraction"].append(m[i].mean())
        out["com_y"].append((x[i] * yy).sum() / mass[i])
        out["com_x"].append((x[i] * xx).sum() / mass[i])
        out["box_long"].append(max(np.ptp(ys), np.ptp(xs)) + 1)
        out["box_cy"].append((ys.min() + ys.max()) / 2)
        out["box_cx"].append((xs.min() + xs.max()) / 2)
        out["margin"].append(min(ys.min(), xs.min(), H - 1 - ys.max(), W - 1 - xs.max()))
        out["stroke"].append(stroke_width(m[i]))
    stats = {k: float(np.mean(v)) if k != "stroke" else float(np.median(v)) for k, v in out.items()}
    ring = np.ones((H, W), bool)
    ring[2:-2, 2:-2] = False
    stats["border"] = float(x[:, ring].mean())
    return stats
