"""Page -> character boxes: find the handwritten characters on a photographed page.

The steps, each a pure function on arrays (H, W) of the *working* image:

    to_grey -> downscale (long side above `max_side`: k x k block mean, k an integer, so the map
    back is exact) -> denoise (Gaussian) -> find_paper (the sheet, when the photo also shows the
    desk around it; else find_edge_strips, for a desk showing less than a block at the edges;
    off the sheet counts as blank paper) -> background (block maxima,
    median-filtered, interpolated; where find_shade finds writing in a shadow taken for desk, a
    grey closing instead) -> flatten (grey / background: paper ~ 1 everywhere)
    -> threshold_ink -> stroke_width -> estimate_skew -> deskew -> remove_rules (and, on squared
    paper, keep_pen_on_rules) -> join_strokes -> components -> drop specks -> merge_parts ->
    drop leftovers -> split_wide -> boxes in original coordinates.

Threshold. Uneven lighting is removed by *dividing out* an estimate of the paper's brightness:
ink is thin and dark, so the brightest pixel of a block a few strokes wide is paper; the block
maxima (median-filtered over 3x3 blocks to heal blocks that are all ink, then interpolated)
are the light falling on the paper, and grey / background is the paper's reflectance, ~1 for paper
and ink's own darkness for ink, whatever the lighting. On that flat image one global threshold is
right everywhere, so Otsu is used (parameter-free) -- but capped: ink must be darker than the paper
by `min_contrast` and by `noise_k` robust standard deviations of the paper, so that a blank page
(where Otsu would cut the paper's own noise in half) comes back empty with a reason. Sauvola was
the alternative: its window must be set to the character size, which is unknown at that point, and
it answers relative to the local mean everywhere, turning paper texture in empty regions into ink.

Geometry rules are relative: the closing footprint to the stroke width; specks to the stroke
width; ruled lines, merging, leftovers and splitting to the median character height and width.
No rule is in pixels except the denoising sigma (sensor noise is a pixel-scale thing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.transform import AffineTransform, resize, warp

from nnlab.errors import NNLabError


@dataclass(frozen=True)
class PageConfig:
    """How characters are found. Factors multiply the quantity in their comment."""

    max_side: int = 2000  # a longer photo is downscaled first (block mean, integer factor)
    denoise_sigma: float = 1.0  # Gaussian sigma, working pixels (sensor noise scale)
    background_blocks: int = 40  # blocks along the long side for the paper-brightness estimate
    desk: bool = True  # look for the sheet when the photo also shows the desk (`find_paper`)
    surround_dark: float = 0.6  # a desk around the page: its median block darker than this x paper
    surround_gap: float = 0.08  # ...and an empty band this wide (x paper) above them: a step
    paper_min: float = 0.1  # the paper found covers at least this fraction of the photo
    shade: bool = True  # look for writing in a cast shadow among the desk found (`find_shade`)
    shade_chars: int = 5  # shaded paper holds this many character-sized components...
    shade_density: float = 0.3  # ...at this x the lit paper's density or more
    shade_width: float = 2.0  # ...and holds a disk of this x the character height (radius)
    min_contrast: float = 0.2  # ink is darker than the paper by at least this fraction...
    noise_k: float = 5.0  # ...and by this many robust standard deviations of the paper
    max_angle_deg: float = 15.0  # rotations searched: [-v, v]
    turns: bool = True  # ...and [90 - v, 90 + v]: lines that run down a sideways photo
    min_angle_deg: float = 0.1  # a smaller rotation is not undone
    close_factor: float = 0.5  # closing disk radius, x stroke width (bridges gaps ~1 stroke)
    speck_factor: float = 1.5  # a component within this x stroke width in both sides is a speck
    rule_run: float = 3.0  # ruled lines: ink lines (horizontal, vertical) this x median height
    squared_pen: bool = True  # rules across and down: the pen along them kept (keep_pen_on_rules)
    merge_x_overlap: float = 0.5  # stacked parts: overlap along x, fraction of the narrower
    merge_gap: float = 0.4  # parts of one character are at most this x median height apart
    merge_max_height: float = 1.4  # a merged character is at most this x median height tall
    merge_max_width: float = 1.5  # ... and this x median width wide
    fragment: float = 0.5  # a piece whose long side is below this x median height is a fragment
    min_size: float = 0.3  # after merging, boxes with long side below this x median height go
    flat_height: float = 0.2  # ... and flat boxes (height below this x median height, w > 2 h)
    max_size: float = 4.0  # ... and boxes taller than this x median height (borders, drawings)
    split_width: float = 1.5  # boxes wider than this x median width hold touching characters
    split_search: tuple[float, float] = (0.3, 0.7)  # where a cut may fall, fractions of width
    split_ink: float = 3.0  # a cut crosses at most this x stroke width of ink
    split_height: float = 0.5  # both sides of a cut are at least this x median height tall


@dataclass
class Box:
    """One character: its box in the *original* image, [x0, x1) x [y0, y1) (pixels), its ink
    `mask` (h, w) bool as seen upright in the working image (deskewed, downscaled by `scale`):
    the crop the classifier reads; `upright` = (u0, v0, u1, v1), the box in that upright working
    image, where text lines are horizontal (lines.py groups on it)."""

    x0: int
    y0: int
    x1: int
    y1: int
    mask: np.ndarray
    upright: tuple[float, float, float, float]

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass
class PageAnalysis:
    """What `analyse_page` found. `reason` is '' when there are boxes; otherwise one sentence
    saying why none (blank page, no ink, only specks and lines) for the caller's message."""

    boxes: list[Box]
    reason: str
    shape: tuple[int, int]  # original (H, W)
    scale: int  # working image = original downscaled by this integer factor
    angle_deg: float  # estimated rotation of the text (counter-clockwise on screen positive)
    threshold: float = float("nan")  # on the flattened image (paper ~ 1)
    stroke_width: float = float("nan")  # working pixels
    char_height: float = float("nan")  # median, working pixels
    char_width: float = float("nan")
    sheet: float = 1.0  # the share of the working image `find_paper` took for the sheet (1: all)
    # the light on the working image (unrotated) where a cast shadow was found in what looked
    # like the desk (`find_shade`), for line cutters to divide out; None otherwise
    light: np.ndarray | None = field(default=None, repr=False)
    # on squared paper (rules across and down), the line pixels removed, in the upright working
    # image (`Box.upright`'s frame), for line cutters to paint over; None otherwise
    lines: np.ndarray | None = field(default=None, repr=False)

    @property
    def turn(self) -> int:
        """The quarter turns in `angle_deg`, in degrees: 0, 90, 180 or 270 (counter-clockwise):
        how the photo was turned away from upright, small tilts aside."""
        return int(90 * round(self.angle_deg / 90)) % 360


# ----------------------------------------------------------------------------- image in


# a 200-Mpx phone photo is no "decompression bomb" (Pillow refuses past 179 Mpx): this many
# pixels are read (JPEGs decoded at a reduced scale)
PAGE_PIXELS = 1_000_000_000
# a JPEG is decoded at 1/2, 1/4 or 1/8 scale while its long side stays above this (the reader
# works at far fewer pixels: `PageConfig.max_side`)
DECODE_SIDE = 4000
# what the first bytes of a file that Pillow cannot read say it is
NOT_IMAGES = {
    b"%PDF": "a PDF, not an image: export the page as PNG or JPEG",
    b"ftypheic": "a HEIC photo (an iPhone's default): export it as JPEG, or install pillow-heif",
    b"ftypheix": "a HEIC photo: export it as JPEG, or install pillow-heif",
    b"ftypmif1": "a HEIF photo: export it as JPEG, or install pillow-heif",
    b"ftypavif": "an AVIF image: export it as JPEG or PNG",
}


def load_page(path: str | Path) -> np.ndarray:
    """The image at `path` as uint8 (H, W) or (H, W, 3), turned upright by its EXIF orientation.
    Of a file of several pages or frames (a scanner's TIFF), the first, with a warning. Pillow's
    own warnings (a damaged EXIF block) are given as one line naming the file. NNLabError when
    it cannot be read, saying what the file is where Pillow cannot (a PDF, a HEIC photo)."""
    import warnings

    path = Path(path)
    if path.is_dir():
        raise NNLabError(f"{path}: a folder, not a page image")
    from nnlab.io import large_images

    try:
        with (
            large_images(PAGE_PIXELS),
            warnings.catch_warnings(record=True) as said,
            Image.open(path) as im,
        ):
            warnings.simplefilter("always")
            image = _page_pixels(im, path)
    except FileNotFoundError:
        raise NNLabError(f"{path}: no such file") from None
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError:  # (no permission to read it: Pillow's reason is the message)
            head = b"?"
        kind = next((why for magic, why in NOT_IMAGES.items() if magic in head), None)
        if kind is None and not head:
            kind = "an empty file (0 bytes)"
        if isinstance(e, Image.DecompressionBombError):
            kind = f"more than {2 * PAGE_PIXELS / 1e6:.0f} Mpx: resize it"
        raise NNLabError(
            f"{path}: " + (kind or f"not a readable image ({type(e).__name__}: {e})")
        ) from None
    for w in said:
        if not issubclass(w.category, Image.DecompressionBombWarning):
            warnings.warn(f"{path.name}: {w.message}", stacklevel=2)
    return image


def _page_pixels(im: Image.Image, path: Path) -> np.ndarray:
    """`load_page`'s reading of an open image."""
    import warnings

    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        warnings.warn(
            f"{frames} pages or frames; the first is read (save the others as images of their "
            "own)",  # (named with the file by load_page)
            stacklevel=3,
        )
    if im.width * im.height > PAGE_PIXELS:
        raise NNLabError(
            f"{path}: {im.width} x {im.height} pixels, more than {PAGE_PIXELS / 1e6:.0f} Mpx: "
            "resize it"
        )
    if im.format == "JPEG" and max(im.size) > 2 * DECODE_SIDE:  # decoded at 1/2, 1/4 or 1/8
        k = max(im.size) // DECODE_SIDE
        im.draft(im.mode, (im.width // k, im.height // k))
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float32)
        return (255 * a / max(1e-9, float(a.max()))).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        # transparent means no ink: put the picture on white paper
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im.convert("RGBA"))
    colour = im.mode not in ("1", "L")
    return np.asarray(im.convert("RGB" if colour else "L")).copy()


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8/uint16/bool/float in [0, 1] ->
    (H, W) float32 in [0, 1] (Rec. 601 luma; transparent pixels count as white paper)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        top = 255.0 if a.dtype == np.uint8 else float(np.iinfo(a.dtype).max)
        a = a.astype(np.float32) / top
    else:
        a = np.clip(a.astype(np.float32), 0.0, 1.0)
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:]
        a = a[..., :3] * alpha + (1 - alpha)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a @ np.array([0.299, 0.587, 0.114], np.float32)
    if a.ndim != 2:
        raise NNLabError(f"expected a greyscale or colour image, got an array of shape {a.shape}")
    if a.size == 0:
        raise NNLabError(f"the image has no pixels (shape {a.shape})")
    return a


def downscale(grey: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """(H, W) -> (H // k, W // k) block means with k = ceil(long side / max_side), and k (1 = not
    scaled). Working pixel (i, j) is the mean of original [ik, ik + k) x [jk, jk + k); the last
    H mod k rows and W mod k columns are dropped."""
    H, W = grey.shape
    k = max(1, math.ceil(max(H, W) / max_side))
    if k == 1:
        return grey, 1
    h, w = H // k, W // k
    small = grey[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3), dtype=np.float32)
    return small, k


def denoise(grey: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(grey, sigma) if sigma > 0 else grey


def _block_max(grey: np.ndarray, blocks: int) -> tuple[np.ndarray, int]:
    """The maximum of each b x b block, b = long side / `blocks` (edge-padded): (hb, wb), b."""
    H, W = grey.shape
    b = max(2, math.ceil(max(H, W) / blocks))
    g = np.pad(grey, ((0, -H % b), (0, -W % b)), mode="edge")
    hb, wb = g.shape[0] // b, g.shape[1] // b
    return g.reshape(hb, b, wb, b).max(axis=(1, 3)), b


def background(grey: np.ndarray, blocks: int, paper: np.ndarray | None = None) -> np.ndarray:
    """The paper's brightness (H, W): the maximum of each block (long side / `blocks` pixels,
    wider than a stroke, so a block holds some paper), a 3x3-block median (a block that is all
    ink takes its neighbours' value), then bilinear interpolation back to (H, W). With a `paper`
    mask (H, W) bool (`find_paper`), only paper pixels count, and a block with none takes the
    value of the nearest block with some."""
    H, W = grey.shape
    peaks, b = _block_max(np.where(paper, grey, -1.0) if paper is not None else grey, blocks)
    if paper is not None:
        none = peaks < 0
        if none.all():
            none[...] = False  # no paper at all: nothing to take values from
        if none.any():
            _, (ii, jj) = ndimage.distance_transform_edt(none, return_indices=True)
            peaks = peaks[ii, jj]
    peaks = ndimage.median_filter(peaks, size=3, mode="nearest")
    hb, wb = peaks.shape
    full = resize(peaks, (hb * b, wb * b), order=1, mode="edge", anti_aliasing=False)
    return full[:H, :W].astype(np.float32)


def _light_surface(peaks: np.ndarray, near: float = 0.2, rounds: int = 5) -> np.ndarray:
    """log of the light falling on the paper at every block (hb, wb): a plane in (x, y) fitted
    to log `peaks`, first on the brightest third of the blocks, then on the blocks within `near`
    (log units) below the fit, `rounds` times (a robust fit that lets go of a desk; a plane,
    because a more supple surface bends into the desk's corners)."""
    hb, wb = peaks.shape
    y, x = np.mgrid[:hb, :wb]
    A = np.c_[np.ones(hb * wb), x.ravel() / max(1, wb - 1) - 0.5, y.ravel() / max(1, hb - 1) - 0.5]
    L = np.log(np.maximum(peaks.ravel(), 1e-3))
    use = L >= np.quantile(L, 2 / 3)
    fit = np.full_like(L, float(np.median(L[use])))
    for _ in range(rounds):
        if use.sum() < 6:
            break
        coef, *_ = np.linalg.lstsq(A[use], L[use], rcond=None)
        fit = A @ coef
        use = L - fit > -near
    return fit.reshape(hb, wb)


def find_paper(grey: np.ndarray, cfg: PageConfig = PageConfig()) -> np.ndarray | None:
    """The sheet of paper in a photo that also shows what it lies on (a desk around the page):
    (H, W) bool, True on the paper; None when the photo shows paper only (scans, close-ups).

    Decided on the block maxima (`background`'s blocks: each is the brightest thing in its block,
    the paper wherever the block holds any), relative to the light falling there (a smooth
    surface fitted robustly to the brighter blocks, `_light_surface`, so a lighting gradient
    across the photo is divided out): a surround is a population of blocks whose median is darker
    than `surround_dark` x the paper, separated from the brighter blocks by a band `surround_gap`
    wide that holds almost no block (at most 1 % or 2 blocks: a desk's edge is a step; a fade
    fills the band), at least 2 % of the blocks, and touching the photo's border. The paper is
    then, pixel by pixel, the largest connected region brighter than the middle of the emptiest
    such band (x the light there; a closing heals the cuts of ruled lines), with its holes (the
    ink) filled, less a rim a quarter block wide; at least `paper_min` of the photo, else None.

    Measured (bench/ocr_robustness.py): a desk seen on 12 of 12 composed desk pages (`nnlab ocr
    compose --hard --desk 0.3`) and on none of 36 hard pages without one, whose light falls by
    half across the page. A shadow with a sharp edge across the paper looks like a desk here:
    `find_shade` takes back the parts of it that hold writing. A strip of desk narrower than a
    block is not seen here (blocks that straddle it are paper): `find_edge_strips` looks for
    those when this finds nothing."""
    peaks, b = _block_max(grey, cfg.background_blocks)
    if peaks.size < 16 or peaks.max() <= 0:
        return None
    light = _light_surface(peaks)
    ratio = peaks / np.exp(light)
    r = np.sort(ratio.ravel())
    N = len(r)
    # the emptiest band surround_gap wide (a few stray blocks allowed: a bright streak of the
    # desk's grain) with a dark population below it and most blocks above it
    centres = np.arange(0.15, 0.9, 0.01)
    half = cfg.surround_gap / 2
    inside = np.searchsorted(r, centres + half) - np.searchsorted(r, centres - half)
    below = np.searchsorted(r, centres)  # blocks darker than the centre
    median_below = r[np.maximum(below - 1, 0) // 2]
    ok = (
        (below >= 0.02 * N)
        & (median_below < cfg.surround_dark)
        & (N - below >= cfg.paper_min * N)
        & (inside <= max(2, 0.01 * N))
    )
    if not ok.any():
        return None
    score = np.where(ok, inside, N + 1)
    best = np.nonzero(score == score.min())[0]
    run = best[: int(np.argmax(np.diff(np.r_[best, best[-1] + 2]) > 1)) + 1]  # first contiguous run
    t = float(centres[run[len(run) // 2]])  # the middle of the emptiest band
    dark = ratio < t
    if not (dark[0].any() or dark[-1].any() or dark[:, 0].any() or dark[:, -1].any()):
        return None  # a dark patch inside the page (a drawing, a photo on it) is not a surround
    H, W = grey.shape
    hb, wb = peaks.shape
    level = resize(np.exp(light), (hb * b, wb * b), order=1, mode="edge", anti_aliasing=False)
    bright = grey >= t * level[:H, :W]
    # a closing a few pixels wide heals the paper where ruled lines cut it into strips
    s = 2 * max(1, b // 16) + 1
    bright = ndimage.minimum_filter(ndimage.maximum_filter(bright, size=s), size=s)
    lab, n = ndimage.label(bright)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    paper = ndimage.binary_fill_holes(lab == int(sizes.argmax()))
    # the sheet's rim is blurred into the desk (and shaded by the sheet's edge): a quarter
    # block inwards is desk too
    paper = ndimage.minimum_filter(paper, size=2 * max(1, b // 4) + 1)
    return paper if paper.mean() >= cfg.paper_min else None


def find_edge_strips(flat: np.ndarray, cfg: PageConfig = PageConfig()) -> np.ndarray | None:
    """Strips of desk along the photo's edges too narrow for `find_paper` (narrower than its
    blocks, which then hold paper and see none): (H, W) bool, True off the strips; None when no
    side has one.

    On the flattened image (each pixel over the paper's brightness around it) a strip is dark
    within a block of the border all along its side. Per side, each line across the band (a
    column for the top and bottom, a row for the sides) gives the depth of its farthest pixel
    darker than `surround_dark` within one block of the border (0 if none); a side whose *median*
    depth is at least a quarter block has a strip (handwriting reaching the border darkens a
    few lines, never half of a side), and the whole side is cut to its 90th-percentile depth
    plus a quarter block (the strip's blurred edge and the sheet's shadow, as `find_paper`'s
    rim): a strip masked in part would leave character-sized fragments that join the lines (a
    first, per-column version did, and read worse than no mask). Hard pages with 1-3 % of desk
    per side: 0.824 -> 0.881 (CTC, 8 pages; bench/ocr_robustness.py --settings thin-desk), and
    no strip on the 36 pages without a desk."""
    H, W = flat.shape
    b = max(4, max(H, W) // cfg.background_blocks)
    dark = flat < cfg.surround_dark
    keep = np.ones((H, W), dtype=bool)
    found = False
    sides = (  # (dark, keep) with the border as row 0
        (dark[:b], keep[:b]),
        (dark[::-1][:b], keep[::-1][:b]),
        (dark[:, :b].T, keep[:, :b].T),
        (dark[:, ::-1][:, :b].T, keep[:, ::-1][:, :b].T),
    )
    for band, out in sides:
        depth = np.where(band.any(axis=0), len(band) - np.argmax(band[::-1], axis=0), 0)
        if np.median(depth) < b / 4:
            continue
        found = True
        out[: int(np.quantile(depth, 0.9)) + b // 4] = False
    return keep if found else None


def find_shade(
    grey: np.ndarray, paper: np.ndarray, light: np.ndarray, cfg: PageConfig = PageConfig()
) -> tuple[np.ndarray, np.ndarray] | None:
    """Paper in a cast shadow among what `find_paper` took for the desk: (the sheet's paper,
    lit and shaded, (H, W) bool; the light on it (H, W)), or None when the surround holds no
    writing.

    A shadow with a sharp edge (a hand, the phone, held close) is a step as dark as a desk's, so
    `find_paper` leaves it out, and its writing with it. What tells them apart is the writing.
    The light is taken by a grey closing of the photo, about four stroke widths across: the
    closing erases strokes (thinner than it) but keeps any step and soft edge as it is, so a
    shadow's writing is flattened as the lit writing is, where block maxima spill the lit side
    half a block into the shadow. On that flat image, each part of the surround -- split in two
    where its light falls in two levels (the desk and the shade beside it: a closing's level
    above and below Otsu's cut, the brighter holding at least 1.3 x the darker's median) -- is
    shaded paper when it holds at least `shade_chars` character-sized components (0.5-2 x the
    lit writing's character height) at `shade_density` x the lit paper's density or more, and
    holds a disk of radius `shade_width` x the character height (room for lines of writing). A
    desk's grain gives a few such components (at most 0.11 x the density on composed desk
    pages), and so do the sheet's edges in the rim of desk that `find_paper` leaves along them
    (thin: a disk of radius 1.6 character heights at most, on composed pages). A part must
    touch the lit paper (a shadow darkens the page beside its lit part), and a surround of one
    level that frames the sheet (the sheet nowhere at the photo's border) is a desk whatever it
    holds: a sheet lying on newspaper, or on a patterned cloth, has print or rings around it
    that pass the density test. The shaded paper joins the sheet with a seam of `find_paper`'s
    rim, which it had cut away. Known limits: print under a sheet that runs off the photo on
    one side is taken for shaded paper; so is a desk beside a shadow when the two lie at one
    level."""
    flat = flatten(grey, light)
    ink, _, reason = threshold_ink(flat, cfg, paper)
    ink &= paper
    if reason or not ink.any() or paper.all():
        return None
    sw = stroke_width(ink)
    h, _ = char_size(components(ink)[1])
    c = 2 * math.ceil(2 * sw) + 1
    closed = ndimage.grey_closing(grey, size=(c, c))
    flat2 = flatten(grey, closed)
    ink2, _, _ = threshold_ink(flat2, cfg, None)
    _, boxes = components(ink2)
    bh, bw = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    big = np.maximum(bh, bw)
    charlike = (big >= 0.5 * h) & (big <= 2 * h) & (np.minimum(bh, bw) >= sw)
    cy, cx = (boxes[:, 1] + boxes[:, 3]) // 2, (boxes[:, 0] + boxes[:, 2]) // 2
    lit_density = (charlike & paper[cy, cx]).sum() / max(1, paper.sum())
    if lit_density == 0:
        return None
    parts, n = ndimage.label(~paper)
    sizes = np.bincount(parts.ravel(), minlength=n + 1)
    b = max(2, math.ceil(max(grey.shape) / cfg.background_blocks))
    near_lit = ndimage.binary_dilation(paper, iterations=max(1, b // 4) + 2)  # across the rim
    edge = np.zeros_like(paper)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    framed = not (paper & edge).any()  # the lit sheet lies inside the photo: a desk frames it
    shade = np.zeros_like(paper)
    for i in range(1, n + 1):
        if sizes[i] < math.pi * (cfg.shade_width * h) ** 2:
            continue  # no room for writing
        part = parts == i
        level = closed[part]
        cut = float(threshold_otsu(level)) if np.ptp(level) > 0 else float(level[0])
        bright = part & (closed > cut)
        dark = part & ~bright
        two = min(bright.sum(), dark.sum()) >= 0.1 * part.sum() and np.median(
            closed[bright]
        ) >= 1.3 * np.median(closed[dark])
        if framed and not two:
            continue  # one level all round the sheet: a desk (or print under the sheet)
        if not (part & near_lit).any():
            continue  # a shadow darkens the page beside its lit part
        for piece in (bright, dark) if two else (part,):
            if ndimage.distance_transform_edt(piece).max() < cfg.shade_width * h:
                continue  # too narrow for writing: a rim of desk along the sheet
            inside = (charlike & piece[cy, cx]).sum()
            dense = inside / piece.sum() >= cfg.shade_density * lit_density
            if inside >= cfg.shade_chars and dense:
                shade |= piece
    if not shade.any():
        return None
    seam = ndimage.binary_dilation(shade, iterations=max(1, b // 4) + 1)
    return paper | seam, closed


def flatten(grey: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """grey / paper brightness: the reflectance (H, W) float32, ~1 on paper under any lighting."""
    return np.clip(grey / np.maximum(paper, 1e-3), 0.0, 1.5).astype(np.float32)


def threshold_ink(
    flat: np.ndarray, cfg: PageConfig = PageConfig(), where: np.ndarray | None = None
) -> tuple[np.ndarray, float, str]:
    """(ink mask (H, W) bool, threshold, reason): Otsu on the flattened image, capped so that ink
    is darker than the paper by `min_contrast` and by `noise_k` robust sigmas of the paper; the
    statistics from the pixels of the mask `where` only, when given (`find_paper`'s paper).
    The reason is '' when ink is found, else why not."""
    step = (
        slice(None, None, max(1, flat.shape[0] // 512)),
        slice(None, None, max(1, flat.shape[1] // 512)),
    )
    sample = flat[step] if where is None else flat[step][where[step]]
    paper = float(np.median(sample))
    if float(np.ptp(flat)) < 1e-6:
        return np.zeros(flat.shape, bool), float("nan"), "blank page: the image is uniform"
    sigma = 1.4826 * float(np.median(np.abs(sample - paper)))
    cap = paper - max(cfg.min_contrast * paper, cfg.noise_k * sigma)
    t = min(float(threshold_otsu(sample)), cap) if np.ptp(sample) > 0 else cap
    mask = flat < t
    if not mask.any():
        return (
            mask,
            t,
            f"no ink: nothing on the page is darker than the paper by {cfg.min_contrast:.0%} "
            f"(and by {cfg.noise_k:g}x its noise)"
            + (
                "; the page is dark: light writing on a dark ground (a blackboard)? invert "
                "the image"
                if paper < 0.5
                else ""
            ),
        )
    return mask, t, ""


# ----------------------------------------------------------------------------- geometry


def stroke_width(mask: np.ndarray) -> float:
    """Median pen width in pixels: 2 d - 1 on the ridge of the distance transform d (the pixels
    where d is a local maximum: the centre line of the strokes). 1.0 when there is no ink."""
    if not mask.any():
        return 1.0
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 2, xs.min(), xs.max() + 2
    m = np.pad(mask[max(0, y0 - 1) : y1, max(0, x0 - 1) : x1], 1)  # background all round
    d = ndimage.distance_transform_edt(m)
    ridge = m & (d >= ndimage.maximum_filter(d, size=3))
    return float(max(1.0, 2 * np.median(d[ridge]) - 1))


def estimate_skew(mask: np.ndarray, cfg: PageConfig = PageConfig(), bin_px: float = 2.0) -> float:
    """The rotation of the text lines in degrees (counter-clockwise on screen is positive, y down)
    by a projection-profile search: the ink's rows y' = x sin(a) + y cos(a) are most concentrated
    (largest sum of squared histogram counts, bins of `bin_px`) when a undoes the rotation.
    A 0.5 degree grid over [-max_angle_deg, max_angle_deg], then a 0.05 degree grid around the
    best; with `cfg.turns` the same around 90 degrees too (lines running down the photo: a
    sideways photo), the more concentrated of the two kept. 0.0 when there is no ink."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 2:
        return 0.0
    step = max(1, len(ys) // 200_000)
    ys, xs = ys[::step].astype(np.float64), xs[::step].astype(np.float64)
    xs -= xs.mean()
    ys -= ys.mean()

    def score(deg: float) -> float:
        a = np.deg2rad(deg)
        y = xs * np.sin(a) + ys * np.cos(a)
        h = np.bincount(((y - y.min()) / bin_px).astype(np.int64))
        return float(np.dot(h, h))

    def search(centre: float) -> tuple[float, float]:
        coarse = centre + np.arange(-cfg.max_angle_deg, cfg.max_angle_deg + 1e-9, 0.5)
        best = coarse[np.argmax([score(a) for a in coarse])]
        fine = np.arange(best - 0.5, best + 0.5 + 1e-9, 0.05)
        scores = [score(a) for a in fine]
        return float(fine[np.argmax(scores)]), max(scores)

    found = [search(0.0)] + ([search(90.0)] if cfg.turns else [])
    return max(found, key=lambda f: f[1])[0]


def _turned(angle_deg: float, turn: int) -> float:
    """angle + turn degrees, in (-180, 180]."""
    a = (angle_deg + turn) % 360.0
    return a - 360.0 if a > 180.0 else a


def deskew(image: np.ndarray, angle_deg: float, cval: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (H, W) by -angle so that lines rotated by `angle_deg` become horizontal; the output
    grows to hold the whole page (outside filled with cval). Returns (upright (H', W'),
    M (3, 3)), M mapping working (x, y, 1) to upright coordinates (pixel centres at integers)."""
    H, W = image.shape
    a = np.deg2rad(angle_deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # undoes the turn
    corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float) @ R.T
    lo = corners.min(0)
    M = np.eye(3)
    M[:2, :2] = R
    M[:2, 2] = -lo
    shape = tuple(int(math.ceil(v)) + 1 for v in (corners.max(0) - lo)[::-1])
    out = warp(
        image, AffineTransform(matrix=np.linalg.inv(M)), output_shape=shape, order=1, cval=cval
    )
    return out.astype(np.float32), M


def remove_rules(
    mask: np.ndarray,
    run: float,
    faint: np.ndarray | None = None,
    density: float = 0.9,
    found: set[str] | None = None,
) -> np.ndarray:
    """The mask without ruled lines: ink covered by a horizontal (or vertical) window `run` pixels
    long that is at least `density` ink is a rule -- a soft morphological opening by a line.
    The windows count the ink of `faint` (default: `mask`), a more permissive mask in which a thin
    light rule is whole where the ink threshold left gaps, and of three neighbouring rows
    (columns), so a rule up to ~arctan(3 / run) off the axis is one line. Handwritten strokes are
    much shorter than `run` (3 character heights by default) and stay.

    Where a letter crosses the rule or lies along it (the foot of an L on the line), the ink across
    the rule is thicker than the rule: rule pixels whose run across the rule is more than twice
    the rule's median thickness are kept. `found`, when given, gets "rows" and/or "columns":
    the directions in which rules were found."""
    L = max(3, int(round(run)))
    faint = mask if faint is None else faint
    out = mask.copy()
    for axis in (1, 0):  # rows, then columns
        across = 1 - axis
        m3 = ndimage.maximum_filter1d(faint, 3, axis=across)  # the neighbouring rows' ink
        dense = ndimage.uniform_filter1d(m3.astype(np.float32), L, axis=axis) >= density
        rule = mask & ndimage.maximum_filter1d(dense, L, axis=axis)
        if not rule.any():
            continue
        if found is not None:
            found.add("rows" if axis == 1 else "columns")
        structure = np.zeros((3, 3), bool)
        structure[(slice(None), 1) if across == 0 else (1, slice(None))] = True
        lab, _ = ndimage.label(mask, structure=structure)  # runs across the rule
        thickness = np.bincount(lab.ravel())[lab]  # (H, W) run length of each pixel
        crossing = thickness > 2 * np.median(thickness[rule])
        out &= ~(rule & ~crossing)
    return out


def pen_cut(
    mask: np.ndarray, ink: np.ndarray, flat: np.ndarray, h: float, gap: float = 0.1
) -> float | None:
    """The flattened value halfway between the rules' own darkness and the pen's, where the pen
    is darker than the rules by `gap` or more; else None (nothing tells them apart). `ink` is
    `mask` without its rules (`remove_rules`). The rules' darkness is the median of the removed
    pixels half a character height or more from any kept stroke; the pen's, the median of the
    kept strokes (a stroke: a kept component a quarter character height long or longer, not a
    speck where two lines cross)."""
    removed = mask & ~ink
    if not removed.any() or not ink.any():
        return None
    lab, boxes = components(ink)
    extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    strokes = np.r_[False, extent >= h / 4][lab]
    far = removed & (ndimage.distance_transform_edt(~strokes) >= h / 2)
    if not far.any() or not (ink & strokes).any():
        return None
    rule, pen = float(np.median(flat[far])), float(np.median(flat[ink & strokes]))
    return (rule + pen) / 2 if pen <= rule - gap else None


def keep_pen_on_rules(
    mask: np.ndarray,
    ink: np.ndarray,
    flat: np.ndarray,
    h: float,
    max_piece: float = 2.0,
    cut: float | None = None,
) -> np.ndarray:
    """`ink` (the mask without its rules, `remove_rules`) with the pen that ran along a rule put
    back: the removed pixels darker than `pen_cut`. On squared paper a letter's stems and bars
    run along the lines (the stem of a D on a vertical line, the bar of an E on a horizontal
    one); without this they are cut out with the lines, and the letter reads as another. A
    piece goes back only when, with the kept ink it touches, it spans at most `max_piece` x the
    character height: a stem rejoins its letter, but a line as dark as the pen (an underline, a
    form's answer line drawn over the squares) joins every stroke that crosses it and stays
    removed, as on lined paper. `cut`: `pen_cut`'s value when the caller has it."""
    cut = pen_cut(mask, ink, flat, h) if cut is None else cut
    if cut is None:
        return ink
    back = mask & ~ink & (flat < cut)
    lab, boxes = components(back | ink)
    extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    short = np.r_[False, extent <= max_piece * h][lab]  # a stem or a bar, not a line of its own
    return ink | (back & short)


def join_strokes(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary closing by a disk of `radius` pixels (via two distance transforms, whose cost does
    not grow with the radius): joins stroke breaks up to ~2 radius wide."""
    if radius <= 0 or not mask.any():
        return mask
    grown = ndimage.distance_transform_edt(~mask) <= radius
    return ndimage.distance_transform_edt(grown) > radius


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W) int32, boxes (N, 4) int64 as (u0, v0, u1, v1), exclusive ends) of the
    8-connected components; component i has label i + 1."""
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    objs = ndimage.find_objects(lab)
    boxes = np.array(
        [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in objs], dtype=np.int64
    ).reshape(n, 4)
    return lab, boxes


def char_size(boxes: np.ndarray) -> tuple[float, float]:
    """Typical (height, width) of the characters among boxes (N, 4): medians weighted by box area
    (specks and fragments weigh next to nothing) over the character-like boxes -- at most twice as
    wide as tall (no ruled line, nor a row of letters joined by one) and at most 10 times as tall
    as wide (no margin line)."""
    w = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)
    h = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    like = (w <= 2 * h) & (h <= 10 * w)
    if not like.any():
        like = np.ones(len(boxes), bool)
    area = w[like] * h[like]
    return _weighted_median(h[like], area), _weighted_median(w[like], area)


def _weighted_median(x: np.ndarray, weight: np.ndarray) -> float:
    order = np.argsort(x)
    cum = np.cumsum(weight[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


# ----------------------------------------------------------------------------- merge / split


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.minimum(a[..., 0], b[..., 0]), np.minimum(a[..., 1], b[..., 1]),
         np.maximum(a[..., 2], b[..., 2]), np.maximum(a[..., 3], b[..., 3])], -1
    )  # fmt: skip


def mergeable(a: np.ndarray, b: np.ndarray, h: float, w: float, cfg: PageConfig) -> np.ndarray:
    """Whether boxes a and b (broadcastable (..., 4) as (u0, v0, u1, v1)) are parts of one
    character, given the median character height h and width w. Their union must be no larger than
    a character (height <= merge_max_height h, width <= merge_max_width w), and either
      - stacked or nested: they overlap along x by >= merge_x_overlap of the narrower box and are
        at most merge_gap h apart vertically (the bar of an E, a letter broken across a stroke), or
      - one is a fragment (long side < fragment h) at most merge_gap h away in x and in y (the
        dot of a broken O).
    Two neighbouring letters fail both: they overlap little along x and neither is a fragment."""
    u = _union(a, b)
    size_ok = (u[..., 3] - u[..., 1] <= cfg.merge_max_height * h) & (
        u[..., 2] - u[..., 0] <= cfg.merge_max_width * w
    )
    wa, wb = a[..., 2] - a[..., 0], b[..., 2] - b[..., 0]
    x_overlap = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    x_gap = -x_overlap
    y_gap = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 3], b[..., 3])
    stacked = (x_overlap >= cfg.merge_x_overlap * np.minimum(wa, wb)) & (y_gap <= cfg.merge_gap * h)

    def long_side(c):
        return np.maximum(c[..., 2] - c[..., 0], c[..., 3] - c[..., 1])

    fragment = np.minimum(long_side(a), long_side(b)) < cfg.fragment * h
    near = np.maximum(x_gap, y_gap) <= cfg.merge_gap * h
    return size_ok & (stacked | (fragment & near))


def merge_parts(boxes: np.ndarray, h: float, w: float, cfg: PageConfig) -> list[list[int]]:
    """Group the boxes (N, 4) into characters with `mergeable`: candidate pairs are merged
    smallest union first, each re-checked against the groups' current boxes, until no pair
    merges. Returns the groups (lists of indices), ordered by their first index."""
    parent = list(range(len(boxes)))
    gbox = boxes.astype(np.float64).copy()

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    while True:
        roots = np.array([i for i in range(len(boxes)) if find(i) == i], dtype=np.int64)
        if len(roots) < 2:
            break
        B = gbox[roots]
        pairs = []
        for k in range(len(roots) - 1):
            ok = np.nonzero(mergeable(B[k], B[k + 1 :], h, w, cfg))[0] + k + 1
            for j in ok:
                u = _union(B[k], B[j])
                pairs.append(((u[2] - u[0]) * (u[3] - u[1]), roots[k], roots[j]))
        merged = False
        for _, i, j in sorted(pairs):
            ri, rj = find(i), find(j)
            if ri == rj or not mergeable(gbox[ri], gbox[rj], h, w, cfg):
                continue
            parent[rj] = ri
            gbox[ri] = _union(gbox[ri], gbox[rj])
            merged = True
        if not merged:
            break
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def split_columns(
    mask: np.ndarray, w: float, h: float, pen: float, cfg: PageConfig
) -> list[tuple[int, int]]:
    """Column ranges [a, b) of `mask` (h, W) that hold one character each. A range wider than
    split_width x the median width w is cut at the column of least ink inside its middle part
    (split_search, fractions of the range; ties go to the column nearest the middle), provided the
    cut looks like the contact of two letters: at most split_ink x the pen width `pen` of ink in
    that column, and both sides at least split_height x the median height h tall (so the long bar
    of a T or a 7 is not cut off). The best few columns are tried; none fits -> no cut."""
    profile = mask.sum(axis=0)

    def tall(a: int, b: int) -> bool:
        r = np.nonzero(mask[:, a:b].any(axis=1))[0]  # the rows with ink
        return len(r) > 0 and r[-1] - r[0] + 1 >= cfg.split_height * h

    def cut(a: int, b: int) -> list[tuple[int, int]]:
        if b - a <= cfg.split_width * w or b - a < 4:
            return [(a, b)]
        lo = a + max(1, int(round(cfg.split_search[0] * (b - a))))
        hi = a + min(b - a - 1, int(round(cfg.split_search[1] * (b - a))))
        cols = np.arange(lo, hi + 1)
        order = cols[np.lexsort((np.abs(cols - (a + b) / 2), profile[lo : hi + 1]))]
        for c in order[:5]:
            c = int(c)
            if profile[c] > cfg.split_ink * pen:
                break  # sorted by ink: the rest hold even more
            if tall(a, c) and tall(c, b):
                return cut(a, c) + cut(c, b)
        return [(a, b)]

    return cut(0, mask.shape[1])


# ----------------------------------------------------------------------------- the page


def _boxes_back(pieces, M: np.ndarray, k: int, shape: tuple[int, int]) -> list[Box]:
    """Boxes in original coordinates from pieces (upright v0, u0, ink mask): each ink pixel's
    centre is mapped back through M^-1 to working (x, y); the pixel spans [x, x + 1) there (edge
    coordinates) and [k x, k (x + 1)) in the original."""
    Minv = np.linalg.inv(M)
    H, W = shape
    out = []
    for v0, u0, m in pieces:
        ys, xs = np.nonzero(m)
        p = np.c_[xs + u0, ys + v0, np.ones(len(xs))] @ Minv.T  # (n, 3) working (x, y, 1)
        x0, y0 = np.floor(k * p[:, :2].min(0)).astype(int)
        x1, y1 = np.ceil(k * (p[:, :2].max(0) + 1)).astype(int)
        up = (float(u0), float(v0), float(u0 + m.shape[1]), float(v0 + m.shape[0]))
        out.append(Box(max(0, x0), max(0, y0), min(W, x1), min(H, y1), m, up))
    return out


def _trim(m: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return None
    return ys.min(), xs.min(), m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def analyse_page(
    image: np.ndarray | str | Path, cfg: PageConfig = PageConfig(), turn: int = 0
) -> PageAnalysis:
    """Find the characters on a page photo (an array, or a path read with `load_page`).
    Returns the boxes in reading-agnostic order (top-left first) and the diagnostics; an empty
    result carries the reason (blank page, no ink, only specks and lines). `turn`: degrees (a
    multiple of 90) added to the rotation found, to read the page another way up (the reader
    tries them when a reading is unsure: `nnlab.ocr.read`)."""
    if turn % 90:
        raise NNLabError(f"a page is turned by a multiple of 90 degrees, got {turn}")
    if isinstance(image, (str, Path)):
        image = load_page(image)
    grey = to_grey(image)
    shape = grey.shape
    small, k = downscale(grey, cfg.max_side)
    small = denoise(small, cfg.denoise_sigma)
    paper = find_paper(small, cfg) if cfg.desk else None
    light = background(small, cfg.background_blocks) if paper is None else None
    if cfg.desk and paper is None:  # no desk seen by blocks: a strip narrower than a block?
        paper = find_edge_strips(flatten(small, light), cfg)
    sheet = 1.0 if paper is None else float(paper.mean())
    relight = None
    if paper is not None:
        light = background(small, cfg.background_blocks, paper)
        shaded = find_shade(small, paper, light, cfg) if cfg.shade else None
        if shaded is not None:
            paper, light = shaded
            sheet = float(paper.mean())
            relight = light
        small = np.where(paper, small, light)  # off the paper: blank paper, no ink
    flat = flatten(small, light)
    mask, t, reason = threshold_ink(flat, cfg, paper)
    if reason:
        return PageAnalysis([], reason, shape, k, 0.0, t, sheet=sheet)
    nothing = "no characters: the ink on the page is only specks and lines"
    # the character size from the raw components (a rule joined to letters does not count);
    # small rotations barely change it
    h, _ = char_size(components(mask)[1])
    angle = _turned(estimate_skew(mask, cfg, bin_px=max(1.0, h / 16)), turn)
    M = np.eye(3)
    quarter = 90 * round(angle / 90)
    if abs(angle - quarter) < cfg.min_angle_deg:  # a small rotation is not undone
        angle = float(quarter) or 0.0
    if angle != 0.0:
        flat, M = deskew(flat, angle, cval=1.0)
        mask = flat < t
    # rules are found on a fainter threshold (halfway to the paper), where a thin rule is whole
    directions: set[str] = set()
    ink = remove_rules(mask, cfg.rule_run * h, faint=flat < (t + 1) / 2, found=directions)
    grid = None
    if cfg.squared_pen and len(directions) == 2:  # squared paper (or rules and a margin line)
        cut = pen_cut(mask, ink, flat, h)
        if cut is not None:  # else nothing tells the pen from the lines: both left as they were
            # the lines to paint over: what was removed and is not as dark as the pen (a dark
            # piece that did not go back is left as it was, not painted out)
            lines = mask & ~ink & ~(flat < cut)
            ink = keep_pen_on_rules(mask, ink, flat, h, cut=cut)
            # with their faint, blurred rims: what is fainter than halfway to the paper and joins
            # them, a pixel off the kept ink
            rims = (flat < (t + 1) / 2) | ndimage.binary_dilation(lines, iterations=2)
            grid = ndimage.binary_propagation(lines, mask=rims & ~ndimage.binary_dilation(ink))
    sw = stroke_width(ink)
    closed = join_strokes(ink, cfg.close_factor * sw)
    lab, boxes = components(closed)
    bh, bw = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    keep = np.nonzero(np.maximum(bh, bw) > cfg.speck_factor * sw)[0]
    if len(keep) == 0:
        return PageAnalysis([], nothing, shape, k, angle, t, sw, sheet=sheet)
    h, w = char_size(boxes[keep])
    groups = [[keep[i] for i in g] for g in merge_parts(boxes[keep], h, w, cfg)]
    gboxes = np.array([_union_all(boxes[g]) for g in groups])
    gh, gw = gboxes[:, 3] - gboxes[:, 1], gboxes[:, 2] - gboxes[:, 0]
    h, w = char_size(gboxes)
    ok = (
        (np.maximum(gh, gw) >= cfg.min_size * h)
        & ~((gh < cfg.flat_height * h) & (gw > 2 * gh))
        & (gh <= cfg.max_size * h)
    )
    pieces = []
    for g, (u0, v0, u1, v1), good in zip(groups, gboxes, ok):
        if not good:
            continue
        region = np.isin(lab[v0:v1, u0:u1], np.asarray(g) + 1)
        for a, b in split_columns(region, w, h, sw, cfg):
            trimmed = _trim(region[:, a:b] & ink[v0:v1, u0 + a : u0 + b])
            if trimmed is not None:
                dv, du, m = trimmed
                pieces.append((v0 + dv, u0 + a + du, m))
    if not pieces:
        return PageAnalysis([], nothing, shape, k, angle, t, sw, h, w, sheet, relight, grid)
    pieces.sort(key=lambda p: (p[0], p[1]))
    boxes = _boxes_back(pieces, M, k, shape)
    return PageAnalysis(boxes, "", shape, k, angle, t, sw, h, w, sheet, relight, grid)


def _union_all(b: np.ndarray) -> np.ndarray:
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])


def find_characters(image: np.ndarray | str | Path, cfg: PageConfig = PageConfig()) -> list[Box]:
    """The character boxes of a page (see `analyse_page`, which also says why a page is empty)."""
    return analyse_page(image, cfg).boxes
