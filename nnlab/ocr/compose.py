"""Composed pages: real handwritten character images laid out as lines of text on a photographed
page, with the exact text and the box of every character.

`compose_page` lays out glyphs (crops of one character each, ink bright) at random sizes, spacing,
baseline jitter and slant, joins some neighbours into touching pairs and breaks some strokes, then
photographs the page: ruled lines, paper texture, a small rotation and perspective tilt, a lighting
gradient, blur, sensor noise and JPEG. Every effect is a field of `ComposeConfig` and 0 / False
switches it off (`ComposeConfig.plain()` switches off all the hard ones). The true boxes follow the
geometric transforms exactly: the ink pixels of each character are mapped, not its box corners.

`stroke_glyphs` draws block capitals and digits from a small stroke font with jittered vertices:
a stand-in source for tests that need no data files. Real sources: `nnlab.data.chars74k`, NIST.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.transform import AffineTransform, ProjectiveTransform, resize, warp

from nnlab.errors import NNLabError
from nnlab.io import atomic_open, atomic_write_json, atomic_write_text

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# A small word list of block capitals (no network); numbers are drawn separately.
WORDS = tuple(
    """THE AND FOR ARE BUT NOT YOU ALL ANY CAN HER WAS ONE OUR OUT DAY GET HAS HIM HIS HOW MAN NEW
    NOW OLD SEE TWO WAY WHO BOY DID ITS LET PUT SAY SHE TOO USE ABOUT AFTER AGAIN BLACK BOARD
    BRING CHAIR CLOCK DRINK EARLY EIGHT EVERY FIELD FIRST FOUND GREEN HEAVY HOUSE JUDGE KNIFE LARGE
    LIGHT MONEY MONTH NIGHT NORTH OFTEN ORDER PAPER PLACE POINT QUICK QUIET RIVER ROUND SEVEN SHORT
    SMALL SOUTH SPEAK STAND STONE STORY TABLE THREE TRAIN UNDER WATER WHITE WHOLE WORLD WRITE YOUNG
    ZEBRA BOX JAZZ FIZZ QUIZ WAX JUMP VEX LYNX KING QUEEN WIND FROG GLOVE PIXEL OXYGEN VIVID ZONE
    NEAR FAR WEST EAST MAP ROAD LAKE HILL TOWN CITY PARK FARM BOOK PEN INK PAGE LINE NOTE CODE DATA
    LAB TEST MODEL IMAGE SIGNAL WAVE FILTER LAYER TRAIN SCORE ERROR VALUE""".split()
)

# Stroke font: character -> (width / height, polylines in a unit box, x right and y down).
# fmt: off
_O = [(0.5, 0), (0.15, 0.12), (0, 0.5), (0.15, 0.88), (0.5, 1), (0.85, 0.88), (1, 0.5),
      (0.85, 0.12), (0.5, 0)]
_P = [(0, 1), (0, 0), (0.75, 0), (1, 0.15), (1, 0.4), (0.75, 0.55), (0, 0.55)]
STROKES: dict[str, tuple[float, list[list[tuple[float, float]]]]] = {
    "A": (0.8, [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]]),
    "B": (0.7, [[(0, 0), (0, 1)],
                [(0, 0), (0.7, 0), (0.9, 0.12), (0.9, 0.36), (0.7, 0.5), (0, 0.5)],
                [(0.7, 0.5), (1, 0.62), (1, 0.88), (0.8, 1), (0, 1)]]),
    "C": (0.75, [[(1, 0.15), (0.75, 0), (0.3, 0), (0, 0.3), (0, 0.7), (0.3, 1), (0.75, 1),
                 (1, 0.85)]]),
    "D": (0.75, [[(0, 0), (0, 1), (0.6, 1), (1, 0.7), (1, 0.3), (0.6, 0), (0, 0)]]),
    "E": (0.7, [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.75, 0.5)]]),
    "F": (0.65, [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.75, 0.5)]]),
    "G": (0.8, [[(1, 0.15), (0.75, 0), (0.3, 0), (0, 0.3), (0, 0.7), (0.3, 1), (0.75, 1),
                (1, 0.8), (1, 0.55), (0.55, 0.55)]]),
    "H": (0.75, [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]]),
    "I": (0.45, [[(0.5, 0), (0.5, 1)], [(0, 0), (1, 0)], [(0, 1), (1, 1)]]),
    "J": (0.65, [[(1, 0), (1, 0.75), (0.75, 1), (0.25, 1), (0, 0.75)]]),
    "K": (0.75, [[(0, 0), (0, 1)], [(1, 0), (0, 0.6)], [(0.3, 0.4), (1, 1)]]),
    "L": (0.65, [[(0, 0), (0, 1), (1, 1)]]),
    "M": (0.95, [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]]),
    "N": (0.8, [[(0, 1), (0, 0), (1, 1), (1, 0)]]),
    "O": (0.85, [_O]),
    "P": (0.7, [_P]),
    "Q": (0.85, [_O, [(0.6, 0.7), (1, 1.05)]]),
    "R": (0.72, [_P, [(0.4, 0.55), (1, 1)]]),
    "S": (0.7, [[(1, 0.15), (0.8, 0), (0.2, 0), (0, 0.2), (0.2, 0.45), (0.8, 0.55), (1, 0.8),
                (0.8, 1), (0.2, 1), (0, 0.85)]]),
    "T": (0.8, [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]]),
    "U": (0.75, [[(0, 0), (0, 0.75), (0.25, 1), (0.75, 1), (1, 0.75), (1, 0)]]),
    "V": (0.8, [[(0, 0), (0.5, 1), (1, 0)]]),
    "W": (1.0, [[(0, 0), (0.25, 1), (0.5, 0.4), (0.75, 1), (1, 0)]]),
    "X": (0.8, [[(0, 0), (1, 1)], [(1, 0), (0, 1)]]),
    "Y": (0.8, [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]]),
    "Z": (0.75, [[(0, 0), (1, 0), (0, 1), (1, 1)]]),
    "0": (0.65, [_O]),
    "1": (0.4, [[(0, 0.25), (0.8, 0), (0.8, 1)]]),
    "2": (0.7, [[(0, 0.2), (0.25, 0), (0.75, 0), (1, 0.2), (1, 0.4), (0, 1), (1, 1)]]),
    "3": (0.7, [[(0, 0.1), (0.3, 0), (0.8, 0), (1, 0.2), (0.9, 0.4), (0.4, 0.5), (0.9, 0.6),
                (1, 0.8), (0.8, 1), (0.3, 1), (0, 0.9)]]),
    "4": (0.75, [[(0.7, 1), (0.7, 0), (0, 0.7), (1, 0.7)]]),
    "5": (0.7, [[(1, 0), (0.1, 0), (0, 0.45), (0.7, 0.4), (1, 0.6), (1, 0.85), (0.7, 1),
                (0.2, 1), (0, 0.9)]]),
    "6": (0.7, [[(0.9, 0), (0.4, 0.1), (0, 0.5), (0, 0.8), (0.3, 1), (0.7, 1), (1, 0.8),
                (1, 0.6), (0.7, 0.45), (0.3, 0.45), (0, 0.6)]]),
    "7": (0.7, [[(0, 0), (1, 0), (0.4, 1)]]),
    "8": (0.7, [[(0.5, 0.5), (0.1, 0.35), (0.1, 0.1), (0.3, 0), (0.7, 0), (0.9, 0.1), (0.9, 0.35),
                (0.5, 0.5), (0, 0.7), (0, 0.9), (0.2, 1), (0.8, 1), (1, 0.9), (1, 0.7),
                (0.5, 0.5)]]),
    "9": (0.7, [[(1, 0.4), (0.7, 0.55), (0.3, 0.55), (0, 0.35), (0, 0.15), (0.3, 0), (0.7, 0),
                (1, 0.2), (1, 0.6), (0.6, 1), (0.1, 1)]]),
}
# fmt: on


def stroke_glyph(
    char: str, rng: np.random.Generator, height: int = 64, stroke: float = 0.1, jitter: float = 0.03
) -> np.ndarray:
    """One character of the stroke font as an ink crop (h, w) float32 in [0, 1], ink = 1.
    `stroke` is the pen width as a fraction of the height; every vertex moves by N(0, jitter)
    (fractions of the height), so no two samples are alike. Drawn at 4x and area-averaged."""
    if char not in STROKES:
        raise NNLabError(f"the stroke font has no '{char}' (it has {ALPHABET})")
    aspect, polylines = STROKES[char]
    s = 4  # supersampling
    pen = max(1.0, stroke * height * s)
    pad = pen
    H, W = height * s, max(1, round(aspect * height)) * s
    img = Image.new("L", (int(W + 2 * pad), int(H + 2 * pad)), 0)
    draw = ImageDraw.Draw(img)
    for line in polylines:
        pts = np.asarray(line, dtype=float) + rng.normal(0, jitter, (len(line), 2))
        xy = [(pad + x * (W - 1), pad + y * (H - 1)) for x, y in pts]
        draw.line(xy, fill=255, width=int(round(pen)), joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    a = np.asarray(img, dtype=np.float32) / 255.0
    h, w = a.shape[0] // s, a.shape[1] // s
    a = a[: h * s, : w * s].reshape(h, s, w, s).mean(axis=(1, 3))  # (h, w)
    return ink_crop(a)


def stroke_glyphs(
    rng: np.random.Generator, per_class: int = 3, height: int = 64, chars: str = ALPHABET
) -> dict[str, list[np.ndarray]]:
    """`per_class` jittered stroke-font samples of every character: a data-free glyph source."""
    return {c: [stroke_glyph(c, rng, height) for _ in range(per_class)] for c in chars}


def ink_crop(glyph: np.ndarray) -> np.ndarray:
    """A glyph (h, w) with ink bright -- uint8 (255 = ink), bool, or float in [0, 1] -- as float32
    in [0, 1], cropped to the pixels of at least half ink. NNLabError when it has none."""
    g = np.asarray(glyph)
    if g.ndim != 2:
        raise NNLabError(f"a glyph must be a 2-D ink image, got shape {g.shape}")
    if g.dtype == np.uint8:
        g = g.astype(np.float32) / 255.0
    g = np.clip(g.astype(np.float32), 0.0, 1.0)
    ys, xs = np.nonzero(g >= 0.5)
    if len(ys) == 0:
        raise NNLabError("a glyph has no ink (no pixel at half intensity or more)")
    return g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


@dataclass(frozen=True)
class ComposeConfig:
    """How a page is laid out and photographed. Sizes are fractions of the character height
    `char_height` (pixels) unless the name says otherwise; 0 or False switches an effect off."""

    char_height: int = 40  # median character height, pixels
    size_jitter: float = 0.15  # each character's height x U(1 - v, 1 + v)
    letter_gap: tuple[float, float] = (0.12, 0.3)  # gap between letters, U(a, b) x height
    word_gap: tuple[float, float] = (0.8, 1.2)  # gap between words
    line_spacing: float = 1.9  # baseline to baseline
    margin: float = 1.0  # around the text block
    baseline_jitter: float = 0.05  # vertical offset of each character, N(0, v)
    slant_deg: float = 8.0  # page slant drawn in [-v, v] degrees (one writer slants consistently)
    slant_jitter_deg: float = 3.0  # per-character slant on top of the page's
    touching_prob: float = 0.0  # chance that a letter touches the one before it (same word)
    broken_prob: float = 0.0  # chance that a character has one stroke broken
    broken_gap: tuple[float, float] = (1.8, 2.6)  # length of the break, x stroke width
    ruled_lines: bool = False  # a ruled line under every text line (lined paper)
    grid: float = 0.0  # squared paper: squares of this x the character height (0 = none)
    rule_darkness: float = 0.45  # how much light a rule absorbs (pen ink: `ink_darkness`)
    rule_width: float = 0.05  # rule thickness
    ink_darkness: tuple[float, float] = (0.7, 0.9)  # per page, fraction of light the ink absorbs
    texture: float = 0.0  # paper texture strength (relative brightness variation)
    lighting: float = 0.0  # brightness falls by up to this fraction across the page
    # a cast shadow (a hand, the phone) takes this fraction of the light beyond a gently curved
    # edge across the photo (8-55 % of it, 30 % typically); its edge is soft by `shadow_edge`
    # (Gaussian sigma, x the character height: a shadow cast from close by is sharp)
    shadow: float = 0.0
    shadow_edge: float = 0.3
    rotation_deg: float = 0.0  # page rotation drawn in [-v, v] degrees (counter-clockwise +)
    perspective: float = 0.0  # tilt: corners move by up to this fraction of the page size
    blur: float = 0.0  # Gaussian blur sigma as a fraction of the character height
    noise: float = 0.0  # sensor noise sigma, in units of the paper brightness
    jpeg_quality: int = 0  # JPEG round trip at this quality; 0 = none
    rgb: bool = False  # (H, W, 3) with tinted paper and blue ink instead of grey (H, W)
    desk: float = 0.0  # the sheet lies on a desk showing this x the page's size on each side
    desk_level: tuple[float, float] = (0.15, 0.45)  # the desk's reflectance, x the paper's
    # the photo saved turned by one of these (degrees counter-clockwise, multiples of 90; one
    # drawn per page when there are several), as a phone held sideways or flat over a desk
    # saves it when its orientation tag is missing or wrong
    turns: tuple[int, ...] = (0,)

    @classmethod
    def plain(cls, **overrides) -> ComposeConfig:
        """Every hard effect off: no touching, breaks, rules, texture, lighting, rotation,
        tilt, blur, noise or JPEG (sizes, spacing, jitter and slant stay)."""
        return replace(cls(), **overrides)

    @classmethod
    def hard(cls, **overrides) -> ComposeConfig:
        """A photographed lined page: rules, texture, lighting gradient, rotation, tilt, blur,
        noise, JPEG, touching pairs and broken strokes."""
        base = cls(
            touching_prob=0.08,
            broken_prob=0.08,
            ruled_lines=True,
            texture=0.06,
            lighting=0.5,
            rotation_deg=3.0,
            perspective=0.02,
            blur=0.02,
            noise=0.02,
            jpeg_quality=75,
        )
        return replace(base, **overrides)


@dataclass
class CharBox:
    char: str
    line: int  # index of its text line
    index: int  # position in the line's string (spaces count)
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1): its ink, [x0, x1) x [y0, y1), page pixels
    touching: bool = False  # its ink touches the previous character's
    broken: bool = False  # one of its strokes was broken


@dataclass
class PageTruth:
    lines: list[str]
    chars: list[CharBox]  # reading order
    size: tuple[int, int]  # (H, W)
    angle_deg: float = 0.0  # the rotation applied (counter-clockwise on screen is positive)
    params: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "lines": self.lines,
            "size": list(self.size),
            "angle_deg": self.angle_deg,
            "chars": [asdict(c) | {"box": list(c.box)} for c in self.chars],
            "params": self.params,
        }


def _stroke_width(ink: np.ndarray) -> float:
    """Pen width in pixels of a binary glyph: twice the distance transform on its ridge."""
    dt = ndimage.distance_transform_edt(ink)
    ridge = ink & (dt >= ndimage.maximum_filter(dt, size=3))
    return float(max(1.0, 2 * np.median(dt[ridge]) - 1)) if ridge.any() else 1.0


def _break_stroke(g: np.ndarray, rng: np.random.Generator, gap: tuple[float, float]) -> np.ndarray:
    """Erase a disk on one stroke so the glyph's ink splits into two parts (a pen skip). The centre
    is a ridge pixel whose removal disconnects the glyph; tried a few times, else the glyph is
    returned whole."""
    ink = g >= 0.5
    w = _stroke_width(ink)
    dt = ndimage.distance_transform_edt(ink)
    ridge = np.argwhere(ink & (dt >= ndimage.maximum_filter(dt, size=3)))
    n0 = ndimage.label(ink, np.ones((3, 3)))[1]
    yy, xx = np.mgrid[: g.shape[0], : g.shape[1]]
    for _ in range(12):
        cy, cx = ridge[rng.integers(len(ridge))]
        r = rng.uniform(*gap) * w / 2 + w / 2
        hole = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        cut = np.where(hole, 0.0, g)
        lab, n = ndimage.label(cut >= 0.5, np.ones((3, 3)))
        sizes = np.bincount(lab.ravel())[1:]
        # a real break: one more part, and both parts carry a visible share of the ink
        if n == n0 + 1 and sizes.min() >= 0.08 * sizes.sum():
            return cut
    return g


def _place(glyph: np.ndarray, height: int, slant: float) -> np.ndarray:
    """Scale the glyph to `height` pixels (aspect kept) and shear it by `slant` radians about its
    bottom row (x' = x + (bottom - y) tan(slant)): (h, w') float32."""
    h0, w0 = glyph.shape
    w = max(1, round(w0 * height / h0))
    g = resize(glyph, (height, w), order=1, anti_aliasing=height < h0, preserve_range=True)
    t = np.tan(slant)
    extra = int(np.ceil(abs(t) * height))
    out_shape = (height, w + extra)
    # inverse map: output (x', y) samples the input at x = x' + t y - (h - 1) t - shift
    shift = extra if t < 0 else 0
    inverse = AffineTransform(
        matrix=np.array([[1, t, -(height - 1) * t - shift], [0, 1, 0], [0, 0, 1]])
    )
    out = warp(g, inverse, output_shape=out_shape, order=1, cval=0.0).astype(np.float32)
    peak = float(out.max())
    if 0 < peak < 0.5:
        # a thin stroke averaged away by the downscale (or the shear's interpolation): a pen is
        # as dark at any size, and a glyph with no pixel >= 0.5 would have no ink, and no box
        out /= peak
    return out


def _touch_shift(canvas_ink: np.ndarray, g: np.ndarray, y: int, x: int) -> int:
    """How far to move glyph g (at row y, column x) to the left so that its ink just touches the
    ink already on the canvas (one pixel of overlap): per row, the gap between the canvas' right
    edge and the glyph's left edge; 0 when they share no rows."""
    h, w = g.shape
    region = canvas_ink[y : y + h, max(0, x - 4 * w) : x + w] >= 0.5
    gm = g >= 0.5
    left = np.where(gm.any(1), gm.argmax(1), np.inf)
    right = np.where(
        region.any(1), region.shape[1] - 1 - region[:, ::-1].argmax(1) - min(x, 4 * w), -np.inf
    )
    gaps = left - right - 1
    gaps = gaps[np.isfinite(gaps)]
    return int(gaps.min()) + 1 if len(gaps) else 0


def _layout(chars_by_class, text_lines, rng, cfg):
    """Glyphs placed on an ink canvas (H, W) float32 in [0, 1]; per character (char, line, index,
    glyph, y, x, touching, broken); the baseline rows."""
    h_med = cfg.char_height
    page_slant = np.deg2rad(rng.uniform(-cfg.slant_deg, cfg.slant_deg))
    placed = []
    baselines = []
    widths = []
    y_base = cfg.margin * h_med + h_med
    for li, line in enumerate(text_lines):
        x = cfg.margin * h_med
        row = []
        prev_letter = False
        for ci, ch in enumerate(line):
            if ch == " ":
                x += rng.uniform(*cfg.word_gap) * h_med
                prev_letter = False
                continue
            if ch not in chars_by_class or len(chars_by_class[ch]) == 0:
                raise NNLabError(f"no glyph for '{ch}' in the character source")
            pool = chars_by_class[ch]
            glyph = ink_crop(pool[rng.integers(len(pool))])
            broken = bool(cfg.broken_prob > 0 and rng.random() < cfg.broken_prob)
            if broken:
                cut = _break_stroke(glyph, rng, cfg.broken_gap)
                broken = cut is not glyph
                glyph = cut
            height = max(4, round(h_med * rng.uniform(1 - cfg.size_jitter, 1 + cfg.size_jitter)))
            slant = page_slant + np.deg2rad(rng.normal(0, cfg.slant_jitter_deg))
            g = _place(glyph, height, slant)
            touching = bool(
                prev_letter and cfg.touching_prob > 0 and rng.random() < cfg.touching_prob
            )
            if row and not touching:
                x += rng.uniform(*cfg.letter_gap) * h_med
            y = y_base - height + rng.normal(0, cfg.baseline_jitter) * h_med
            row.append([ch, li, ci, g, y, x, touching, broken])
            x += g.shape[1]
            prev_letter = True
        widths.append(x)
        baselines.append(y_base)
        placed.extend(row)
        y_base += cfg.line_spacing * h_med
    W = int(np.ceil(max(widths, default=0) + cfg.margin * h_med))
    H = int(np.ceil(y_base - cfg.line_spacing * h_med + cfg.margin * h_med))
    canvas = np.zeros((H, W), np.float32)
    for p in placed:
        _, _, _, g, y, x, touching, _ = p
        y, x = int(round(y)), int(round(x))
        if touching:
            x -= _touch_shift(canvas, g, max(0, y), x)
        y = int(np.clip(y, 0, H - g.shape[0]))
        x = int(np.clip(x, 0, W - g.shape[1]))
        p[4], p[5] = y, x
        np.maximum(
            canvas[y : y + g.shape[0], x : x + g.shape[1]],
            g,
            out=canvas[y : y + g.shape[0], x : x + g.shape[1]],
        )
    return canvas, placed, baselines


def _camera(shape, rng, cfg) -> tuple[np.ndarray, float]:
    """A 3x3 homography page -> photo: rotation about the centre by an angle in
    [-rotation_deg, rotation_deg] (counter-clockwise on screen), then a perspective tilt that
    moves each corner by up to `perspective` of the page size. Returns (matrix, angle, degrees)."""
    H, W = shape
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg) if cfg.rotation_deg > 0 else 0.0
    a = np.deg2rad(angle)
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    # y points down: a counter-clockwise turn on screen is x' = cos x + sin y, y' = -sin x + cos y
    R = np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])
    T0 = np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1]])
    T1 = np.array([[1, 0, c[0]], [0, 1, c[1]], [0, 0, 1]])
    M = T1 @ R @ T0
    if cfg.perspective > 0:
        src = np.array([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], float)
        dst = src + rng.uniform(-1, 1, (4, 2)) * cfg.perspective * np.array([W, H])
        M = M @ ProjectiveTransform.from_estimate(src, dst).params
    return M, float(angle)


def _on_desk(page: np.ndarray, rng, cfg) -> tuple[np.ndarray, tuple[int, int], float]:
    """The page's reflectance (H, W) laid on a desk: a border of U(0.5, 1.5) x `desk` x the
    page's height (top, bottom) or width (sides), of reflectance U(desk_level) x (1 + grain),
    the grain long along x (wood) and fine noise. Returns (image, (top, left), the desk's base
    reflectance: what the camera sees beyond the picture)."""
    H, W = page.shape
    top, bottom = (int(rng.uniform(0.5, 1.5) * cfg.desk * H) for _ in range(2))
    left, right = (int(rng.uniform(0.5, 1.5) * cfg.desk * W) for _ in range(2))
    shape = (H + top + bottom, W + left + right)
    h = cfg.char_height
    grain = ndimage.gaussian_filter(rng.normal(0, 1, shape), (0.3 * h, 4 * h))
    fine = ndimage.gaussian_filter(rng.normal(0, 1, shape), 0.8)
    wood = 0.25 * grain / (grain.std() + 1e-9) + 0.05 * fine / (fine.std() + 1e-9)
    level = rng.uniform(*cfg.desk_level)
    desk = np.clip(level * (1 + wood), 0.02, 1.0).astype(np.float32)
    desk[top : top + H, left : left + W] = page
    return desk, (top, left), level


def _quarter_turns(turns: Sequence[int], rng: np.random.Generator) -> int:
    """How many quarter turns (counter-clockwise) of the photo: one of `turns` (degrees),
    drawn only when there is a choice, so that pages without turns keep their random draws."""
    if any(t % 90 for t in turns) or not turns:
        raise NNLabError(f"page turns must be multiples of 90 degrees, got {tuple(turns)}")
    turn = turns[int(rng.integers(len(turns)))] if len(turns) > 1 else turns[0]
    return (turn // 90) % 4


def _turn_box(box: tuple, quarter: int, shape: tuple[int, int]) -> tuple:
    """A box [x0, x1) x [y0, y1) of an (H, W) image in that image turned by `quarter`
    counter-clockwise quarter turns (`np.rot90`: a turn takes pixel (x, y) to (y, W - 1 - x))."""
    x0, y0, x1, y1 = box
    H, W = shape
    for _ in range(quarter):
        x0, y0, x1, y1 = y0, W - x1, y1, W - x0
        H, W = W, H
    return (x0, y0, x1, y1)


def _apply(M: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.c_[xy, np.ones(len(xy))] @ M.T
    return p[:, :2] / p[:, 2:3]


def compose_page(
    chars_by_class: Mapping[str, Sequence[np.ndarray]],
    text_lines: Sequence[str],
    rng: np.random.Generator,
    cfg: ComposeConfig = ComposeConfig(),
) -> tuple[np.ndarray, PageTruth]:
    """A photographed page of handwritten `text_lines` made of glyphs from `chars_by_class`
    (character -> ink crops (h, w), ink bright: uint8 255 = ink, bool, or float in [0, 1]).

    Returns (image (H, W) uint8, or (H, W, 3) with `cfg.rgb`; dark ink on light paper, truth):
    the truth lists every non-space character in reading order with its ink's box on the final
    image (after slant, rotation and tilt). The page size follows from the text and the sizes."""
    if not text_lines or not any(s.strip() for s in text_lines):
        raise NNLabError("compose_page needs at least one line with a character")
    ink, placed, baselines = _layout(chars_by_class, text_lines, rng, cfg)
    H, W = ink.shape
    h_med = cfg.char_height
    rules = np.zeros_like(ink)
    if cfg.ruled_lines:
        t = max(1, round(cfg.rule_width * h_med))
        for yb in baselines:
            y = int(round(yb + 0.04 * h_med))  # just under the baseline: letters sit on it
            rules[max(0, y) : min(H, y + t), :] = cfg.rule_darkness
    if cfg.grid > 0:
        t = max(1, round(cfg.rule_width * h_med))
        step = cfg.grid * h_med
        y0, x0 = rng.uniform(0, step, 2)  # where the squares start
        for y in np.arange(y0, H, step).round().astype(int):
            rules[y : y + t, :] = cfg.rule_darkness
        for x in np.arange(x0, W, step).round().astype(int):
            rules[:, x : x + t] = cfg.rule_darkness
    dark = rng.uniform(*cfg.ink_darkness)
    absorb = np.maximum(ink * dark, rules)  # fraction of light absorbed
    paper = np.ones((H, W), np.float32)
    if cfg.texture > 0:
        fine = ndimage.gaussian_filter(rng.normal(0, 1, (H, W)), 0.8)
        coarse = ndimage.gaussian_filter(rng.normal(0, 1, (H, W)), h_med / 3)
        tex = fine / (fine.std() + 1e-9) + 0.7 * coarse / (coarse.std() + 1e-9)
        paper = paper * (1 + cfg.texture * tex / 2).astype(np.float32)
    image = paper * (1 - absorb)  # (H, W) reflectance under flat light
    oy = ox = 0  # where the page's top-left corner lies in the photo
    surround = float(np.median(paper))  # what the camera sees beyond the picture's content
    if cfg.desk > 0:
        image, (oy, ox), surround = _on_desk(image, rng, cfg)
        H, W = image.shape

    M, angle = _camera((H, W), rng, cfg)
    if not np.allclose(M, np.eye(3)):
        # warp wants the inverse map: output (photo) coordinates -> page coordinates
        Minv = np.linalg.inv(M)
        image = warp(image, ProjectiveTransform(Minv), order=1, cval=surround)
    if cfg.lighting > 0:
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[:H, :W]
        d = (xx - W / 2) * np.cos(theta) + (yy - H / 2) * np.sin(theta)
        d = (d - d.min()) / max(1e-9, np.ptp(d))  # 0..1 along the light direction
        image = image * (1 - cfg.lighting * d)
    if cfg.shadow > 0:
        image = image * _shadow_light((H, W), rng, cfg)
    if cfg.blur > 0:
        image = ndimage.gaussian_filter(image, cfg.blur * h_med)
    if cfg.noise > 0:
        image = image + rng.normal(0, cfg.noise, image.shape)
    brightness = rng.uniform(0.8, 0.95)  # the paper is not quite white in a photo
    image = np.clip(image * brightness, 0, 1)
    if cfg.rgb:
        # slightly yellow paper; the ink's darkness adds a blue-ballpoint colour
        tint_paper = np.array([1.0, 0.97, 0.9])
        tint_ink = np.array([0.05, 0.1, 0.35])
        out = tint_paper * image[..., None] + tint_ink * (1 - image[..., None])  # (H, W, 3)
        image8 = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    else:
        image8 = (image * 255 + 0.5).astype(np.uint8)
    quarter = _quarter_turns(cfg.turns, rng)
    image8 = np.ascontiguousarray(np.rot90(image8, quarter))
    if cfg.jpeg_quality > 0:
        buf = io.BytesIO()
        Image.fromarray(image8).save(buf, format="JPEG", quality=int(cfg.jpeg_quality))
        image8 = np.asarray(Image.open(io.BytesIO(buf.getvalue()))).copy()

    chars = []
    for ch, li, ci, g, y, x, touching, broken in placed:
        ys, xs = np.nonzero(g >= 0.5)
        # pixel (r, c) covers [c, c + 1) x [r, r + 1): map its four corners
        pts = np.concatenate(
            [np.c_[xs + dx + x + ox, ys + dy + y + oy] for dx in (0, 1) for dy in (0, 1)]
        ).astype(float)
        q = _apply(M, pts)
        x0, y0 = np.floor(q.min(0)).astype(int)
        x1, y1 = np.ceil(q.max(0)).astype(int)
        box = _turn_box((max(0, x0), max(0, y0), min(W, x1), min(H, y1)), quarter, (H, W))
        chars.append(CharBox(ch, li, ci, tuple(int(v) for v in box), touching, broken))
    params = {"ink_darkness": dark}
    truth = PageTruth(list(text_lines), chars, image8.shape[:2], angle + 90 * quarter, params)
    return image8, truth


def _shadow_light(shape: tuple[int, int], rng: np.random.Generator, cfg: ComposeConfig):
    """The light left by a cast shadow, (H, W) in [1 - cfg.shadow, 1]: the shadow lies beyond a
    line across the photo (a random direction, covering the last 20-50 % of the way along it:
    8-55 % of the photo, a corner when the direction is a diagonal), bent by one slow wave of up
    to 8 % of the photo, and its edge is blurred to a penumbra."""
    H, W = shape
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[:H, :W]
    along = (xx - W / 2) * np.cos(theta) + (yy - H / 2) * np.sin(theta)
    across = -(xx - W / 2) * np.sin(theta) + (yy - H / 2) * np.cos(theta)
    span = max(1e-9, float(np.ptp(along)))
    d = (along - along.min()) / span  # 0..1 along the direction
    bend = rng.uniform(0.02, 0.08) * np.sin(
        2 * np.pi * rng.uniform(0.3, 1.2) * across / span + rng.uniform(0, 2 * np.pi)
    )
    inside = (d + bend > rng.uniform(0.5, 0.8)).astype(np.float32)
    sigma = cfg.shadow_edge * cfg.char_height
    if sigma > 0:
        inside = ndimage.gaussian_filter(inside, sigma)
    return 1 - cfg.shadow * inside


def random_text(
    rng: np.random.Generator, n_lines: int, line_chars: int = 24, alphabet: str = ALPHABET
) -> list[str]:
    """`n_lines` lines of words from WORDS (and a number now and then), each at most
    `line_chars` characters, using only characters in `alphabet`."""
    words = [w for w in WORDS if set(w) <= set(alphabet)]
    digits = "".join(c for c in "0123456789" if c in alphabet)
    if not words and not digits:
        raise NNLabError(f"no word of the word list can be written with '{alphabet}'")
    lines = []
    for _ in range(n_lines):
        line = ""
        while True:
            if digits and (not words or rng.random() < 0.2):
                w = "".join(rng.choice(list(digits), rng.integers(1, 5)))
            else:
                w = words[rng.integers(len(words))]
            cand = f"{line} {w}" if line else w
            if len(cand) > line_chars:
                break
            line = cand
        lines.append(line or w[:line_chars])
    return lines


def write_pages(
    folder: str | Path,
    n: int,
    source: Mapping[str, Sequence[np.ndarray]],
    seed: int = 0,
    cfg: ComposeConfig = ComposeConfig(),
    n_lines: tuple[int, int] = (3, 8),
    line_chars: int = 24,
    fmt: str = "jpg",
) -> list[Path]:
    """Write `n` composed pages to `folder`: page_NNNN.(png|jpg) with page_NNNN.txt (the text)
    and page_NNNN.json (size, angle, per-character boxes), each file written atomically.
    Page i is drawn from seed (seed, i), so one page can be remade alone. Returns image paths."""
    if fmt not in ("png", "jpg"):
        raise NNLabError(f"page format must be png or jpg, got '{fmt}'")
    if n < 0:
        raise NNLabError(f"the number of pages must be >= 0, got {n}")
    folder = Path(folder)
    alphabet = "".join(c for c in ALPHABET if len(source.get(c, ())) > 0)
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        text = random_text(rng, int(rng.integers(n_lines[0], n_lines[1] + 1)), line_chars, alphabet)
        image, truth = compose_page(source, text, rng, cfg)
        name = f"page_{i:04d}"
        path = folder / f"{name}.{fmt}"
        with atomic_open(path, "wb") as f:
            Image.fromarray(image).save(f, format="JPEG" if fmt == "jpg" else "PNG", quality=92)
        atomic_write_text(folder / f"{name}.txt", truth.text + "\n")
        record = truth.to_json() | {"seed": [seed, i], "config": asdict(cfg), "image": path.name}
        atomic_write_json(folder / f"{name}.json", record)
        out.append(path)
    return out


def _box(value) -> tuple:
    """A truth box: four numbers (x0, y0, x1, y1), as written; else ValueError."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"a box is four numbers x0, y0, x1, y1, got {value!r}")
    return tuple(value)


def read_truth(path: str | Path) -> PageTruth:
    """The truth written beside a page by `write_pages` (the .json of the same name)."""
    path = Path(path).with_suffix(".json")
    try:
        d = json.loads(path.read_text(encoding="utf-8-sig"))
        chars = [CharBox(**(c | {"box": _box(c["box"])})) for c in d["chars"]]
        return PageTruth(d["lines"], chars, tuple(d["size"]), d.get("angle_deg", 0.0))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NNLabError(f"{path}: not a page truth file ({type(e).__name__}: {e})") from None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), boxes as (x0, y0, x1, y1) with
    exclusive ends: (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def match_boxes(pred: np.ndarray, truth: np.ndarray, min_iou: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one matches (i_pred, i_truth) with IoU >= min_iou, greedily by decreasing IoU."""
    iou = box_iou(pred, truth)
    pairs = np.argwhere(iou >= min_iou)
    order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")
    used_p, used_t, out = set(), set(), []
    for i, j in pairs[order]:
        if i not in used_p and j not in used_t:
            used_p.add(int(i))
            used_t.add(int(j))
            out.append((int(i), int(j)))
    return out


def box_recall(pred: np.ndarray, truth: np.ndarray, min_iou: float = 0.5) -> float:
    """Share of true boxes matched one-to-one by a predicted box with IoU >= min_iou."""
    n = len(np.asarray(truth).reshape(-1, 4))
    return len(match_boxes(pred, truth, min_iou)) / n if n else 1.0
