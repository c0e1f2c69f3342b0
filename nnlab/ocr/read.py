"""The page reader: a photo of a handwritten page in, its text out.

    image -> analyse_page (character boxes, deskew) -> group_lines (lines, reading order, spaces)
          -> recognizer "chars": each box's ink in the canonical 32x32 form -> a character
             classifier -> word context (a word is letters or digits, `word_context`)
             -> character, confidence, top 3 when unsure
          -> recognizer "ctc": each line cut upright from the page -> a line recogniser (CTC,
             its reader in tasks/ocr_ctc.py) -> its text and per-character confidences
          -> PageReading: text (lines joined by newlines), lines, characters, boxes, confidences.

`render_overlay` draws the result on the page (numbered boxes, the character read and its
confidence; unsure ones in red), `PageReading.to_json` gives the boxes and lines as JSON values.
A page without characters (blank, no ink, only specks and lines) gives an empty reading whose
`reason` says why; the caller decides whether that is an error (`nnlab ocr read`) or a page that
scores zero (`nnlab ocr eval`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nnlab.ocr.lines import LineConfig, crop_for_classifier, group_lines
from nnlab.ocr.page import Box, PageAnalysis, PageConfig, analyse_page, load_page, to_grey
from nnlab.ocr.recognize import CharClassifier, guesses, word_context


@dataclass(frozen=True)
class ReadConfig:
    page: PageConfig = PageConfig()
    lines: LineConfig = LineConfig()
    low_confidence: float = 0.8  # below this probability a character gets its top 3
    # word context (`word_context`): the chance that a character is a digit in a word of letters
    # or a letter in a number; 0.5 switches the context off
    switch: float = 0.05
    workers: int = min(2, os.cpu_count() or 1)  # threads for the canonical crops
    # the CTC reader's prefix beam width (0: greedy); the word rule then reads each character
    # at the column its alignment peaks in
    beam: int = 8
    level_lines: bool = True  # the CTC reader's strips levelled by each line's own slope
    # a reading less sure than this (`sureness`) has the page's other three quarter turns read
    # too, and the surest reading is kept: a photo saved sideways or upside down (a phone held
    # flat over a desk often tags it wrong); 0 reads the page only the way `analyse_page` finds
    turn_below: float = 0.85


@dataclass
class CharReading:
    index: int  # 1, 2, ... in reading order: the number drawn on the overlay
    char: str
    confidence: float
    top3: list[tuple[str, float]]  # the three likeliest when unsure, else empty
    line: int  # 0-based line index
    space_before: bool
    box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) on the page; None from a line reader


@dataclass
class LineReading:
    text: str
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1): the union of its character boxes
    chars: list[CharReading]


@dataclass
class PageReading:
    text: str  # lines joined by "\n", words by " "
    lines: list[LineReading]
    recognizer: str  # chars | ctc
    reason: str = ""  # why nothing was read ('' when something was)
    analysis: PageAnalysis | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    turns: dict[int, float] = field(default_factory=dict)  # way up tried (degrees) -> sureness

    @property
    def chars(self) -> list[CharReading]:
        return [c for line in self.lines for c in line.chars]

    def boxes(self) -> np.ndarray:
        """(N, 4) character boxes (x0, y0, x1, y1) in reading order (those that have one)."""
        b = [c.box for c in self.chars if c.box is not None]
        return np.array(b, dtype=np.int64).reshape(-1, 4)

    def unsure(self) -> list[CharReading]:
        return [c for c in self.chars if c.top3]

    def to_json(self) -> dict[str, Any]:
        a = self.analysis
        page = {}
        if a is not None:
            page = {
                "size": list(a.shape),
                "scale": a.scale,
                "angle_deg": a.angle_deg,
                "stroke_width": _num(a.stroke_width),
                "char_height": _num(a.char_height),
                "char_width": _num(a.char_width),
                "sheet": a.sheet,
                "shadow": a.light is not None,  # writing found in a shadow taken for desk
                "squared": a.lines is not None,  # lines across and down
                "turn": a.turn,
                "turns_tried": {str(t): round(v, 4) for t, v in self.turns.items()},
            }
        return {
            "text": self.text,
            "recognizer": self.recognizer,
            "reason": self.reason,
            "page": page,
            "seconds": self.seconds,
            "lines": [
                {
                    "text": line.text,
                    "box": list(line.box),
                    "chars": [
                        {
                            "index": c.index,
                            "char": c.char,
                            "confidence": round(c.confidence, 4),
                            "top3": [[n, round(p, 4)] for n, p in c.top3],
                            "space_before": c.space_before,
                            "box": list(c.box) if c.box is not None else None,
                        }
                        for c in line.chars
                    ],
                }
                for line in self.lines
            ],
        }


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN is not JSON


def _box(b: Box) -> tuple[int, int, int, int]:
    return (int(b.x0), int(b.y0), int(b.x1), int(b.y1))


def _union(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    a = np.array(boxes).reshape(-1, 4)
    return (int(a[:, 0].min()), int(a[:, 1].min()), int(a[:, 2].max()), int(a[:, 3].max()))


def canonical_crops(masks: Sequence[np.ndarray], workers: int = 2) -> list[np.ndarray]:
    """`crop_for_classifier` of every box mask, on `workers` threads (its SciPy and scikit-image
    steps release the GIL: two threads make a page's crops ~1.6x faster on two cores)."""
    if workers <= 1 or len(masks) < 8:
        return [crop_for_classifier(m) for m in masks]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(crop_for_classifier, masks))


def sureness(reading: PageReading) -> float:
    """How surely a page was read: the summed confidence of the characters read over the number
    of characters, or of character boxes found if more (a line reader that reads a line the wrong
    way up as a few sure characters does not look sure). 0 for an empty reading."""
    conf = [c.confidence for c in reading.chars if np.isfinite(c.confidence)]
    boxes = len(reading.analysis.boxes) if reading.analysis is not None else 0
    n = max(len(reading.chars), boxes)
    return float(np.sum(conf)) / n if n else 0.0


def read_turned(
    image: np.ndarray | str | Path,
    read: Callable[[np.ndarray, PageAnalysis], PageReading],
    cfg: ReadConfig = ReadConfig(),
    analysis: PageAnalysis | None = None,
) -> PageReading:
    """`read(image, analysis)` the way up `analyse_page` finds (lines across, as the projection
    search sees them; `analysis`: that analysis when the caller has it). When that reading's
    `sureness` is below `cfg.turn_below`, the page is also read turned by 180, 90 and 270
    degrees, until one reading is sure enough; the surest is kept (the first on a tie).
    `seconds["turns"]` holds the time of the readings not kept, `turns` the sureness of each
    way up tried."""
    t0 = time.perf_counter()
    if isinstance(image, (str, Path)):
        image = load_page(image)
    best = read(image, analysis or analyse_page(image, cfg.page))
    tried = {best.analysis.turn if best.analysis else 0: sureness(best)}
    if best.reason or cfg.turn_below <= 0 or tried[next(iter(tried))] >= cfg.turn_below:
        best.turns = tried
        return best
    for turn in (180, 90, 270):
        other = read(image, analyse_page(image, cfg.page, turn=turn))
        tried[other.analysis.turn] = sureness(other)
        if not other.reason and sureness(other) > sureness(best):
            best = other
        if sureness(best) >= cfg.turn_below:
            break
    best.turns = tried
    spent = time.perf_counter() - t0
    best.seconds["turns"] = spent - best.seconds.get("total", 0.0)
    best.seconds["total"] = spent
    return best


def _analysed(image, cfg: ReadConfig, analysis: PageAnalysis | None, recognizer: str):
    """(the page as an array, its analysis, None) -- or, for a page with no characters, the
    empty PageReading that says why in place of None."""
    t0 = time.perf_counter()
    if isinstance(image, (str, Path)):
        image = load_page(image)
    analysis = analysis or analyse_page(image, cfg.page)
    if not analysis.reason:
        return image, analysis, None
    seconds = {"analyse": time.perf_counter() - t0}
    return image, analysis, PageReading("", [], recognizer, analysis.reason, analysis, seconds)


def read_page(
    image: np.ndarray | str | Path,
    classifier: CharClassifier,
    cfg: ReadConfig = ReadConfig(),
    analysis: PageAnalysis | None = None,
) -> PageReading:
    """Read a page with a character classifier (recognizer "chars"); `analysis`: the page's
    analyse_page result when the caller has it already."""
    t0 = time.perf_counter()
    image, analysis, empty = _analysed(image, cfg, analysis, "chars")
    if empty is not None:
        return empty
    t1 = time.perf_counter()
    lines = group_lines(analysis.boxes, cfg.lines)
    boxes = [b for line in lines for b in line.boxes]
    crops = np.stack(canonical_crops([b.mask for b in boxes], cfg.workers))  # (N, 32, 32)
    t2 = time.perf_counter()
    probs = classifier.probabilities(crops, boxes)
    if cfg.switch < 0.5:
        words, k = [], 0  # character indices per word: a line starts one, a space too
        for line in lines:
            for j, space in enumerate(line.space_before):
                if j == 0 or space:
                    words.append([])
                words[-1].append(k)
                k += 1
        probs = word_context(probs, classifier.class_names, words, cfg.switch)
    found = guesses(probs, classifier.class_names, cfg.low_confidence)
    t3 = time.perf_counter()
    out, k = [], 0
    for li, line in enumerate(lines):
        chars = []
        for b, space in zip(line.boxes, line.space_before):
            g = found[k]
            k += 1
            chars.append(CharReading(k, g.char, g.confidence, g.top3, li, space, _box(b)))
        text = line.text([c.char for c in chars])
        out.append(LineReading(text, _union([c.box for c in chars]), chars))
    seconds = {"analyse": t1 - t0, "crops": t2 - t1, "classify": t3 - t2, "total": t3 - t0}
    return PageReading("\n".join(r.text for r in out), out, "chars", "", analysis, seconds)


# ----------------------------------------------------------------------------- line reader

LineCutter = Callable[[np.ndarray, PageAnalysis, list], list[np.ndarray]]
LinesReader = Callable[[list[np.ndarray]], list[tuple[str, Sequence[float]]]]


def read_page_lines(
    image: np.ndarray | str | Path,
    cut_lines: LineCutter,
    read_lines: LinesReader,
    cfg: ReadConfig = ReadConfig(),
    analysis: PageAnalysis | None = None,
) -> PageReading:
    """Read a page with a line recogniser (recognizer "ctc"): lines are found as for "chars",
    cut out by `cut_lines(image, analysis, lines)` (the recogniser's own cutting, the one it was
    trained on: `nnlab.ocr.ctc.line_images`) and read whole by `read_lines(line_images)`, which
    gives each line's text and one confidence per character. Characters have no boxes here."""
    t0 = time.perf_counter()
    image, analysis, empty = _analysed(image, cfg, analysis, "ctc")
    if empty is not None:
        return empty
    t1 = time.perf_counter()
    lines = group_lines(analysis.boxes, cfg.lines)
    found = read_lines(cut_lines(image, analysis, lines))
    out, k = [], 0
    for li, (line, (text, conf)) in enumerate(zip(lines, found)):
        text = " ".join(str(text).split())
        conf = list(conf) if conf is not None else []
        chars = []
        for j, ch in enumerate(text):
            if ch == " ":
                continue
            p = float(conf[j]) if j < len(conf) else float("nan")
            k += 1
            chars.append(CharReading(k, ch, p, [], li, j > 0 and text[j - 1] == " ", None))
        out.append(LineReading(text, _union([_box(b) for b in line.boxes]), chars))
    t2 = time.perf_counter()
    seconds = {"analyse": t1 - t0, "lines": t2 - t1, "total": t2 - t0}
    return PageReading("\n".join(r.text for r in out), out, "ctc", "", analysis, seconds)


# ----------------------------------------------------------------------------- overlay


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def render_overlay(
    image: np.ndarray, reading: PageReading, max_side: int = 2400, low_confidence: float = 0.8
) -> Image.Image:
    """The page (shrunk to `max_side` if larger) with every character's box, its number in
    reading order above it, and what was read with its confidence below it (red when below
    `low_confidence`); line boxes are drawn faintly. RGB."""
    grey = to_grey(image)
    page = Image.fromarray((grey * 255 + 0.5).astype(np.uint8)).convert("RGB")
    s = min(1.0, max_side / max(page.size))
    if s < 1.0:
        page = page.resize((max(1, round(page.width * s)), max(1, round(page.height * s))))
    draw = ImageDraw.Draw(page)
    heights = [c.box[3] - c.box[1] for c in reading.chars if c.box is not None]
    heights = heights or [line.box[3] - line.box[1] for line in reading.lines]  # a line reader
    h = float(np.median(heights)) * s if heights else 20.0
    font = _font(max(8, int(h * 0.35)))
    for line in reading.lines:
        x0, y0, x1, y1 = (v * s for v in line.box)
        draw.rectangle((x0 - 3, y0 - 3, x1 + 3, y1 + 3), outline=(150, 150, 255), width=1)
        if line.chars and line.chars[0].box is None:  # a line reader: the text under the line
            draw.text((x0, y1 + 4), line.text, fill=(0, 110, 0), font=font)
    for c in reading.chars:
        if c.box is None:
            continue
        x0, y0, x1, y1 = (v * s for v in c.box)
        sure = c.confidence >= low_confidence
        colour = (0, 150, 0) if sure else (220, 0, 0)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=max(1, int(h / 25)))
        draw.text((x0, y0 - 1), str(c.index), fill=(0, 0, 200), font=font, anchor="lb")
        draw.text((x0, y1 + 1), f"{c.char} {c.confidence:.2f}", fill=colour, font=font,
                  anchor="lt")  # fmt: skip
    return page
