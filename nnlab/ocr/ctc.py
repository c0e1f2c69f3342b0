"""Reading a text line without cutting it into characters: the CTC line recogniser's alphabet,
decoding, training data, task and reader (the model is `nnlab.models.ocr`).

CTC (Graves et al. 2006). The model gives, for every feature column t = 1..T of a line, a
distribution y_t over K = 1 + |alphabet| classes, class 0 being the blank. A path pi in
{0..K-1}^T reads as a label sequence B(pi): merge repeated classes, then drop blanks
(B(aa-ab-) = aab). The probability of a labelling l sums over its paths,

    p(l | x) = sum_{pi : B(pi) = l} prod_t y_t(pi_t),

computed by `torch.nn.functional.ctc_loss` (-log p, forward-backward). Decoding looks for
argmax_l p(l | x):

- greedy (`greedy_decode`): B(argmax path); the best path need not be the best labelling;
- prefix beam search (`beam_decode`): keeps the `beam` most probable prefixes, each with the
  probability of its paths ending in a blank (p_b) and in a non-blank (p_nb); a prefix extended by
  its own last character needs a blank in between. With an unlimited beam and no pruning it is
  exact: the p(l | x) it reports are those of the forward algorithm.

Alphabet: index 0 = blank, 1..36 = 'A'-'Z', '0'-'9' (the NIST36 class k is index k + 1), 37 = space.
Per-character confidence: the highest y_t(c) over the columns that emitted c.

Lines for training are composed on the fly from real handwritten characters (`compose_line`: a
one-line page from `nnlab.ocr.compose.compose_page`, with its touching pairs, broken strokes,
slant, jitter, spacing and photo effects, cut out by the true character boxes exactly as
`line_images` cuts a line from a page by the found boxes). Sources, each split so that the test
parts are never seen in training:

- Chars74K EnglishHnd: by writer, `split_by_group(writers, (0.7, 0.15, 0.15), seed=0)`;
- NIST letters (nist26_valid.mat or nist36_train.mat, whichever exists): by item, stratified,
  `split_by_item(n, (0.7, 0.15, 0.15), seed=0, labels)`;
- MNIST: the training file for training; the test file split by item (0.5, 0.5), seed 0, into
  validation and test.
- "strokes": the stroke font of compose.py (no data files; tests), a different seed per part.

A line draws its glyphs from one source (a writer's set, or NIST letters with MNIST digits), so
its style is consistent, as on a page. Every line, before the model sees it, goes through
`normalise_line`: background divided out, ink bright, cropped to the ink, resized to the model's
height.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from matplotlib.figure import Figure
from skimage.transform import AffineTransform, resize, warp
from torch import nn
from torch.utils.data import Dataset

from nnlab.data.nist import class_names
from nnlab.data.splits import save_split, split_by_group, split_by_item
from nnlab.errors import NNLabError
from nnlab.models import model_config
from nnlab.models.ocr import CTCLineRecognizer
from nnlab.ocr.compose import WORDS, ComposeConfig, compose_page, stroke_glyphs
from nnlab.ocr.lines import Line
from nnlab.ocr.page import Box, PageAnalysis, background, flatten, to_grey
from nnlab.run import RunDir
from nnlab.tasks.base import Task, load_model, run_task
from nnlab.train import StepOutput, TrainConfig

BLANK = 0
CHARS = "".join(class_names(36))  # 'A'-'Z' then '0'-'9': NIST36 order
ALPHABET = CHARS + " "  # label i + 1 is ALPHABET[i]
SOURCES = ("chars74k", "nist", "mnist", "strokes")
# the parts of nnlab.data.ocr_chars.split_char_set with its defaults (val 0.1, test 0.2, seed 0)
SPLIT_SEED, SPLIT_FRACTIONS = 0, (0.7, 0.1, 0.2)
MNIST_PER_CLASS = 50  # MNIST digits per class that ocr_chars draws (and splits 0.7 / 0.1 / 0.2)


# ---- text <-> labels ----------------------------------------------------------------------------
def encode(text: str) -> list[int]:
    """Labels 1..37 of a text in the alphabet (A-Z, 0-9, space)."""
    bad = sorted(set(text) - set(ALPHABET))
    if bad:
        raise NNLabError(f"characters {bad} are not in the alphabet ({ALPHABET!r})")
    return [ALPHABET.index(c) + 1 for c in text]


def to_text(labels: Sequence[int]) -> str:
    return "".join(ALPHABET[int(i) - 1] for i in labels if int(i) != BLANK)


# ---- decoding -----------------------------------------------------------------------------------
def collapse(path: Sequence[int]) -> list[int]:
    """B(path): repeated classes merged, then blanks dropped."""
    out, prev = [], None
    for k in path:
        k = int(k)
        if k != prev and k != BLANK:
            out.append(k)
        prev = k
    return out


def greedy_decode(log_probs: np.ndarray) -> tuple[list[int], list[float]]:
    """(T, K) log-probabilities of one line -> (labels B(argmax path), confidence of each: the
    highest probability of its class over the columns of its run)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    best = lp.argmax(1)
    labels, conf, prev = [], [], BLANK
    for t, k in enumerate(best):
        p = float(np.exp(lp[t, k]))
        if k != BLANK and k == prev:
            conf[-1] = max(conf[-1], p)
        elif k != BLANK:
            labels.append(int(k))
            conf.append(p)
        prev = k
    return labels, conf


def greedy_batch(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Greedy labels of a batch: logits (B, T, K), lengths (B,) -> (B, T) long, each row the
    labels of its line followed by BLANK (0) as padding."""
    best = logits.argmax(-1)  # (B, T)
    B, T = best.shape
    prev = F.pad(best, (1, 0), value=BLANK)[:, :-1]  # (B, T): the class one column earlier
    t = torch.arange(T, device=best.device)
    keep = (best != BLANK) & (best != prev) & (t[None, :] < lengths[:, None])  # (B, T)
    out = torch.zeros_like(best)
    for b in range(B):
        row = best[b][keep[b]]
        out[b, : len(row)] = row
    return out


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _add(nxt, nconf, prefix, which, value, c) -> None:
    """Add path probability exp(value) to p_b (which = 0) or p_nb (1) of `prefix` at the next
    column; its confidences are the elementwise max over the ways it is reached."""
    entry = nxt.setdefault(prefix, [-math.inf, -math.inf])
    entry[which] = _logaddexp(entry[which], value)
    old = nconf.get(prefix)
    nconf[prefix] = c if old is None else tuple(max(a, b) for a, b in zip(old, c))


def beam_decode(
    log_probs: np.ndarray, beam: int = 8, prune: float = 1e-3
) -> tuple[list[int], list[float], float]:
    """Prefix beam search over (T, K) log-probabilities of one line -> (labels, per-character
    confidences, log p(labels | x) as summed by the search). A prefix is extended at column t only
    by classes with y_t >= `prune` and by the column's best class (prune = 0: by every class);
    its last character continuing (no extension) is always counted. Exact for beam >= the number
    of distinct prefixes and prune = 0."""
    lp = np.asarray(log_probs, dtype=np.float64)
    T, K = lp.shape
    neg = -math.inf
    # prefix -> [log p_b, log p_nb]; conf: prefix -> per-character confidences
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, neg]}
    conf: dict[tuple[int, ...], tuple[float, ...]] = {(): ()}
    log_prune = math.log(prune) if prune > 0 else neg
    for t in range(T):
        best_k = int(lp[t].argmax())
        row = lp[t].tolist()
        cands = [k for k in range(1, K) if row[k] >= log_prune or k == best_k]
        nxt: dict[tuple[int, ...], list[float]] = {}
        nconf: dict[tuple[int, ...], tuple[float, ...]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            c0 = conf[prefix]
            _add(nxt, nconf, prefix, 0, total + row[BLANK], c0)  # a blank keeps the prefix
            if prefix:  # the last character again, no blank between: merges into the prefix
                last = prefix[-1]
                c1 = c0[:-1] + (max(c0[-1], math.exp(row[last])),)
                _add(nxt, nconf, prefix, 1, pnb + row[last], c1)
            for k in cands:
                c1 = c0 + (math.exp(row[k]),)
                if prefix and k == prefix[-1]:  # a repeated letter needs a blank in between
                    _add(nxt, nconf, prefix + (k,), 1, pb + row[k], c1)
                else:
                    _add(nxt, nconf, prefix + (k,), 1, total + row[k], c1)
        ranked = sorted(nxt.items(), key=lambda kv: -_logaddexp(*kv[1]))[:beam]
        beams = dict(ranked)
        conf = {p: nconf[p] for p in beams}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))
    return list(best), list(conf[best]), float(_logaddexp(pb, pnb))


# ---- character error rate -----------------------------------------------------------------------
def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, each 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def cer(pred: Sequence[str], truth: Sequence[str], spaces: bool = True) -> float:
    """Character error rate of a set of lines: sum of edit distances / sum of truth lengths."""
    if not spaces:
        pred, truth = [p.replace(" ", "") for p in pred], [t.replace(" ", "") for t in truth]
    edits = sum(edit_distance(p, t) for p, t in zip(pred, truth))
    return edits / max(1, sum(len(t) for t in truth))


class CharErrorRate(torchmetrics.Metric):
    """CER = sum of edit distances / sum of truth lengths, over padded label rows (0 = padding)."""

    higher_is_better = False
    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("edits", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("chars", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        for p, t in zip(preds.long().cpu().tolist(), target.long().cpu().tolist()):
            p, t = [k for k in p if k != BLANK], [k for k in t if k != BLANK]
            self.edits += edit_distance(p, t)
            self.chars += len(t)

    def compute(self) -> torch.Tensor:
        return self.edits / self.chars.clamp(min=1)


# ---- line images --------------------------------------------------------------------------------
def cut_line(image: np.ndarray, rects: np.ndarray, pad: float) -> np.ndarray:
    """The strip of `image` (H, W) (uint8 or float in [0, 1]), dark ink on light, that holds the
    character boxes `rects` (N, 4) = (x0, y0, x1, y1), padded by `pad` pixels; pixels farther
    than `pad` from every box are set to the strip's paper brightness (90th percentile), so that
    ink of a neighbouring line or a stray mark does not count as this line's.
    -> (h, w) float32 in [0, 1]."""
    r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    if len(r) == 0:
        raise NNLabError("a line needs at least one character box")
    image = to_grey(image)
    H, W = image.shape
    x0, y0 = (max(0, int(math.floor(v - pad))) for v in r[:, :2].min(0))
    x1 = min(W, int(math.ceil(r[:, 2].max() + pad)))
    y1 = min(H, int(math.ceil(r[:, 3].max() + pad)))
    strip = image[y0:y1, x0:x1].copy()
    keep = np.zeros(strip.shape, bool)
    for a, b, c, d in r - [x0, y0, x0, y0]:
        keep[
            max(0, int(math.floor(b - pad))) : max(0, int(math.ceil(d + pad))),
            max(0, int(math.floor(a - pad))) : max(0, int(math.ceil(c + pad))),
        ] = True
    if strip.size:
        strip[~keep] = np.percentile(strip, 90)
    return strip


def normalise_line(image: np.ndarray, height: int = 32, margin: int = 2) -> np.ndarray:
    """A line image (h, w), grey uint8 or float, dark ink on light (photo, scan or `cut_line`)
    -> (height, w') float32, ink = 1 on 0, the form the model reads: background divided out
    (blocks the strip's height wide), ink stretched between the median and the 99.5th percentile,
    cropped to the rows and columns with ink >= 0.5, resized (aspect kept) so the ink spans
    height - 2 margin rows, `margin` blank rows above and below and 2 margin columns at both ends.
    A line without ink gives an empty (height, 0) array."""
    grey = to_grey(image)
    h, w = grey.shape
    blocks = max(2, math.ceil(max(h, w) / max(h, 8)))
    ink = 1.0 - flatten(grey, background(grey, blocks))  # (h, w), ~0 on paper
    lo, hi = np.percentile(ink, [50.0, 99.5])
    if hi - lo < 0.08:
        return np.zeros((height, 0), np.float32)
    ink = np.clip((ink - lo) / (hi - lo), 0.0, 1.0)
    rows, cols = np.nonzero((ink >= 0.5).any(1))[0], np.nonzero((ink >= 0.5).any(0))[0]
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    inner = height - 2 * margin
    s = inner / ink.shape[0]
    new_w = max(1, round(ink.shape[1] * s))
    small = resize(ink, (inner, new_w), order=1, anti_aliasing=s < 1, preserve_range=True)
    return np.pad(small.astype(np.float32), ((margin, margin), (2 * margin, 2 * margin)))


def _upright_matrix(shape: tuple[int, int], angle_deg: float) -> np.ndarray:
    """The map working (x, y, 1) -> upright of `nnlab.ocr.page.deskew` (same formula)."""
    H, W = shape
    a = np.deg2rad(angle_deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float) @ R.T
    M = np.eye(3)
    M[:2, :2] = R
    M[:2, 2] = -corners.min(0)
    return M


def line_images(
    page_image: np.ndarray, analysis: PageAnalysis, lines: Sequence[Line | Sequence[Box]]
) -> list[np.ndarray]:
    """Strips (h, w) float32 of a page photo, one per line (`group_lines` Lines or lists of
    Boxes of `analysis`), dark ink on light, cut upright: in the deskewed working image that
    `analyse_page` found the boxes in (downscaled by `analysis.scale`, rotated by its angle),
    padded by 0.15 x the line's median box height and with everything away from the line's boxes
    set to paper (`cut_line`). Read each with `read_line`."""
    grey = to_grey(page_image)
    k = analysis.scale
    if k > 1:
        h, w = grey.shape[0] // k, grey.shape[1] // k
        grey = grey[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3))
    M = _upright_matrix(grey.shape, analysis.angle_deg)
    paper = float(np.percentile(grey, 90))
    out = []
    for line in lines:
        boxes = line.boxes if isinstance(line, Line) else line
        rects = np.array([b.upright for b in boxes], dtype=np.float64).reshape(-1, 4)
        if len(rects) == 0:
            out.append(np.full((1, 1), paper, np.float32))
            continue
        pad = max(2.0, 0.15 * float(np.median(rects[:, 3] - rects[:, 1])))
        u0, v0 = np.floor(rects[:, :2].min(0) - 2 * pad)
        u1, v1 = np.ceil(rects[:, 2:].max(0) + 2 * pad)
        # only this line's region is warped: output (x, y) + (u0, v0) upright -> working
        shift = np.array([[1, 0, u0], [0, 1, v0], [0, 0, 1]])
        inverse = AffineTransform(matrix=np.linalg.inv(M) @ shift)
        region = warp(grey, inverse, output_shape=(int(v1 - v0), int(u1 - u0)), order=1, cval=paper)
        out.append(cut_line(region, rects - [u0, v0, u0, v0], pad))
    return out


# ---- training lines -----------------------------------------------------------------------------
Pool = dict[str, list[np.ndarray]]  # character -> ink crops (ink bright), compose.py's source


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise NNLabError(
            f"ctc: {what} not found; set NNLAB_DATA to the folder that holds it, or train on "
            "--data strokes"
        )


def parse_sources(data: str) -> list[str]:
    names = [s.strip() for s in data.replace(",", "+").split("+") if s.strip()]
    bad = [s for s in names if s not in SOURCES]
    if bad or not names:
        raise NNLabError(f"--data: sources joined by '+' from {', '.join(SOURCES)}; got '{data}'")
    return names


def glyph_pools(data: str, seed: int = 0) -> tuple[dict[str, list[Pool]], dict[str, Any]]:
    """Per part (train, val, test): the glyph pools of `data` (sources joined by '+'), and a
    record of the split (item names per part, counts). The parts are those of
    `nnlab.data.ocr_chars.split_char_set` with its defaults (see the module docstring), so the
    character classifier and this model hold out the same writers and images."""
    sources = parse_sources(data)
    parts_ = ("train", "val", "test")
    pools: dict[str, list[Pool]] = {p: [] for p in parts_}
    info: dict[str, Any] = {"names": [], "parts": {p: [] for p in parts_}, "counts": {}}
    letters: dict[str, Pool] = {p: {} for p in parts_}
    digits: dict[str, Pool] = {p: {} for p in parts_}

    def record(source: str, names: list[str], parts: dict[str, np.ndarray]) -> None:
        base = len(info["names"])
        info["names"] += names
        for part, idx in parts.items():
            info["parts"][part] += (np.asarray(idx, dtype=np.int64) + base).tolist()
            info["counts"][f"{source}/{part}"] = len(idx)

    if "chars74k" in sources:
        from nnlab.data.chars74k import find_chars74k, load_chars74k

        _require(find_chars74k() is not None, "Chars74K EnglishHnd (chars74k-hnd/)")
        c74 = load_chars74k(max_side=64)  # lines are composed at 24-48 px per character
        parts = split_by_group(c74.writers, SPLIT_FRACTIONS, SPLIT_SEED)
        record("chars74k", [f"chars74k/{p.stem}" for p in c74.paths], parts)
        for part, idx in parts.items():
            pools[part].append(c74.subset(idx).by_class())
    if "nist" in sources:
        from nnlab.data.nist import SPLITS, find_nist_file, read_nist_mat

        files = [(s, find_nist_file(s)) for s in SPLITS if find_nist_file(s) is not None]
        _require(bool(files), "NIST (nist36_*.mat or nist26_*.mat)")
        images, labels, names = [], [], []
        for split, path in files:  # every file pooled, then split by item (as ocr_chars)
            x, y, _ = read_nist_mat(path, split)
            images.append(np.clip(1.0 - x, 0.0, 1.0).astype(np.float32))  # stored 1 = paper
            labels.append(y)
            names += [f"nist/{path.stem}/{i:05d}" for i in range(len(y))]
        ink, y = np.concatenate(images), np.concatenate(labels)
        parts = split_by_item(len(y), SPLIT_FRACTIONS, SPLIT_SEED, labels=y)
        record("nist", names, parts)
        for part, idx in parts.items():
            for i in idx:
                target = letters if CHARS[y[i]].isalpha() else digits
                target[part].setdefault(CHARS[y[i]], []).append(ink[i])
    if "mnist" in sources:
        from nnlab.data.mnist import find_split_files, load_mnist

        _require(find_split_files("train") is not None, "MNIST (the training IDX files)")
        x, y = load_mnist("train")
        # ocr_chars' MNIST items: MNIST_PER_CLASS per digit, drawn as it draws them, split by
        # item; their val and test digits are held out here too, every other digit trains
        rng = np.random.default_rng([SPLIT_SEED, 28])
        drawn = np.concatenate(
            [np.sort(rng.choice(np.flatnonzero(y == d), MNIST_PER_CLASS, replace=False))
             for d in range(10)]
        )  # fmt: skip
        cut = split_by_item(len(drawn), SPLIT_FRACTIONS, SPLIT_SEED, labels=y[drawn])
        held = np.zeros(len(y), bool)
        held[drawn[cut["val"]]] = held[drawn[cut["test"]]] = True
        # split.json lists the drawn 500 (ocr_chars' items); the other digits are train too
        record("mnist", [f"mnist/train/{i:05d}" for i in drawn], cut)
        parts = {"train": np.flatnonzero(~held), **{p: drawn[cut[p]] for p in ("val", "test")}}
        for part, idx in parts.items():
            for d in range(10):
                digits[part].setdefault(str(d), []).extend(list(x[idx[y[idx] == d]]))
    for part in parts_:
        if letters[part] or digits[part]:
            pools[part].append({**letters[part], **digits[part]})
    if "strokes" in sources:
        for i, part in enumerate(parts_):
            pools[part].append(stroke_glyphs(np.random.default_rng([seed, 7919, i]), 4, 48))
    return pools, info


@dataclass(frozen=True)
class LineStyle:
    """How training and test lines are written; probabilities are drawn per line in [0, max]."""

    chars: tuple[int, int] = (3, 16)  # characters per line (spaces included), min and max
    words: float = 0.3  # share of lines of dictionary words (the rest: random characters)
    touching: float = 0.3  # max chance that a letter touches the one before it
    broken: float = 0.3  # max chance that a character has a broken stroke
    photo: float = 0.5  # share of lines with photo effects (blur, noise, light, texture, rules)


PLAIN = LineStyle(touching=0.0, broken=0.0, photo=0.0)
TEST_STYLES = {
    "plain": PLAIN,
    "touching_broken": replace(PLAIN, touching=0.5, broken=0.5),
    "photo": LineStyle(touching=0.3, broken=0.3, photo=1.0),
}


def random_line_text(rng: np.random.Generator, alphabet: str, style: LineStyle) -> str:
    """A line of `style.chars` characters: dictionary words (share `style.words`) or groups of 1-7
    random characters of `alphabet` separated by single spaces; no leading or trailing space."""
    n = int(rng.integers(style.chars[0], style.chars[1] + 1))
    words = [w for w in WORDS if set(w) <= set(alphabet)]
    use_words = words and rng.random() < style.words
    text = ""
    while len(text) < n:
        if use_words:
            w = words[rng.integers(len(words))]
        else:
            w = "".join(rng.choice(list(alphabet), int(rng.integers(1, 8))))
        text = f"{text} {w}" if text else w
    return text[:n].strip() or alphabet[0]


def compose_line(
    pool: Pool, text: str, rng: np.random.Generator, style: LineStyle, height: int = 32
) -> np.ndarray:
    """One handwritten line of `text` from `pool`, drawn as a one-line page by `compose_page`
    (random size, spacing, slant, jitter; touching pairs, broken strokes and photo effects per
    `style`), cut out by its true character boxes (`cut_line`) and normalised (`normalise_line`):
    (height, w) float32, ink bright."""
    h = int(rng.integers(24, 48))
    gap = rng.uniform(0.02, 0.25)
    photo = rng.random() < style.photo
    cfg = ComposeConfig(
        char_height=h,
        letter_gap=(gap, gap + 0.2),
        word_gap=(0.5, 1.2),
        margin=0.6,
        baseline_jitter=0.06,
        slant_deg=12.0,
        touching_prob=rng.uniform(0, style.touching),
        broken_prob=rng.uniform(0, style.broken),
        ruled_lines=photo and rng.random() < 0.25,
        texture=rng.uniform(0, 0.06) if photo and rng.random() < 0.3 else 0.0,
        lighting=rng.uniform(0, 0.5) if photo else 0.0,
        blur=rng.uniform(0, 0.05) if photo else 0.0,
        noise=rng.uniform(0, 0.04) if photo else 0.0,
        jpeg_quality=int(rng.integers(40, 90)) if photo and rng.random() < 0.3 else 0,
    )
    image, truth = compose_page(pool, [text], rng, cfg)
    rects = np.array([c.box for c in truth.chars], dtype=np.float64)
    strip = cut_line(image, rects, max(2.0, 0.15 * h))
    return normalise_line(strip, height)


class LineSet(Dataset):
    """`n` composed lines (image (1, H, W) float32, labels (L,) long). Line i is drawn from seed
    (seed, i) -- plus, with `fresh`, a number from torch's generator, so that every epoch of the
    training loop (which seeds torch per epoch) composes new lines, reproducibly."""

    def __init__(
        self,
        pools: Sequence[Pool],
        n: int,
        style: LineStyle,
        height: int,
        seed: int,
        fresh: bool = False,
    ):
        if not pools:
            raise NNLabError("no glyph source for this part of the data")
        self.pools, self.n, self.style, self.height = list(pools), n, style, height
        self.seed, self.fresh = seed, fresh
        self.alphabets = ["".join(c for c in CHARS if p.get(c)) for p in self.pools]
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor, str]] = {}

    def __len__(self) -> int:
        return self.n

    def line(self, i: int) -> tuple[np.ndarray, str]:
        key = [self.seed, i]
        if self.fresh:
            key.append(int(torch.randint(0, 2**31 - 1, ())))
        rng = np.random.default_rng(key)
        j = int(rng.integers(len(self.pools)))
        text = random_line_text(rng, self.alphabets[j], self.style)
        return compose_line(self.pools[j], text, rng, self.style, self.height), text

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i in self._cache:
            return self._cache[i][:2]
        image, text = self.line(i)
        item = (torch.from_numpy(image)[None], torch.tensor(encode(text)), text)
        if not self.fresh:
            self._cache[i] = item
        return item[:2]

    def text(self, i: int) -> str:
        if i not in self._cache:
            self[i]
        return self._cache[i][2]

    def materialise(self) -> LineSet:
        """Compose every line now (fixed sets: validation and test)."""
        for i in range(self.n):
            self[i]
        return self


def collate_lines(
    samples: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """[(image (1, H, W_i), labels (L_i,))] -> (images (B, 1, H, max W) padded on the right with
    background 0, widths (B,), targets (B, max L) padded with BLANK, target lengths (B,))."""
    B = len(samples)
    H = samples[0][0].shape[1]
    widths = torch.tensor([s[0].shape[2] for s in samples])
    lengths = torch.tensor([len(s[1]) for s in samples])
    x = torch.zeros(B, 1, H, max(4, int(widths.max())))
    y = torch.full((B, max(1, int(lengths.max()))), BLANK, dtype=torch.long)
    for b, (image, labels) in enumerate(samples):
        x[b, :, :, : image.shape[2]] = image
        y[b, : len(labels)] = labels
    return x, widths, y, lengths


def ctc_loss(logits: torch.Tensor, widths: torch.Tensor, targets, target_lengths) -> torch.Tensor:
    """Mean over the batch of -log p(l | x) / |l| (`F.ctc_loss`, reduction 'mean')."""
    lengths = CTCLineRecognizer.output_lengths(widths).clamp(1, logits.shape[1])
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, K)
    # zero_infinity: a line too narrow for its text (T < L + repeats) has p = 0; skip it
    return F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)


# ---- the task -----------------------------------------------------------------------------------
@dataclass
class CTCConfig:
    data: str = "chars74k+nist+mnist"  # glyph sources joined by +: chars74k, nist, mnist, strokes
    model: str = "ctc_line"
    model_args: dict[str, Any] = field(default_factory=dict)  # the model config's fields
    train_lines: int = 1600  # lines composed per epoch (new ones every epoch)
    val_lines: int = 150  # fixed validation lines (validation writers and images)
    test_lines: int = 300  # fixed test lines per test style (held-out writers and images)
    min_chars: int = 3  # characters per line, at least
    max_chars: int = 16  # ... and at most
    words: float = 0.3  # share of lines of dictionary words (the rest: random characters)
    touching: float = 0.3  # max chance per line that a letter touches the one before it
    broken: float = 0.3  # max chance per line that a character has a broken stroke
    photo: float = 0.5  # share of lines with photo effects (blur, noise, light, texture, rules)
    beam: int = 8  # beam width for the test figures (0: greedy only)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            monitor="val/cer",
            mode="min",
            epochs=9,
            batch_size=16,
            lr=2e-3,
            warmup_epochs=0.3,
            num_workers=1,  # composing lines costs about what the model's step does
        )
    )

    @property
    def style(self) -> LineStyle:
        return LineStyle(
            (self.min_chars, self.max_chars), self.words, self.touching, self.broken, self.photo
        )

    def check(self) -> None:
        parse_sources(self.data)
        for name in ("train_lines", "val_lines", "test_lines"):
            if getattr(self, name) < 1:
                raise NNLabError(f"--{name.replace('_', '-')} must be >= 1")
        if not 1 <= self.min_chars <= self.max_chars:
            raise NNLabError(f"need 1 <= --min-chars <= --max-chars, got {self.min_chars}, "
                             f"{self.max_chars}")  # fmt: skip
        for name in ("words", "touching", "broken", "photo"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise NNLabError(f"--{name} must be in [0, 1], got {getattr(self, name)}")
        if self.beam < 0:
            raise NNLabError(f"--beam must be >= 0, got {self.beam}")
        model_config(self.model, **self.model_args)


class CTCLineTask(Task):
    name, config_class, models = "ocr_ctc", CTCConfig, ("ctc_line",)
    noun = "CTC line recogniser"
    summary_keys = ("model", "data", "parameters", "epochs", "test/cer", "train_time_s")

    collate_fn = staticmethod(collate_lines)

    def datasets(self, run: RunDir, resume: bool) -> dict[str, Dataset]:
        cfg = self.cfg
        self.mcfg = model_config(cfg.model, **cfg.model_args)
        pools, info = glyph_pools(cfg.data, cfg.train.seed)
        if info["names"] and run is not None and not resume:
            parts = {p: np.asarray(v, dtype=np.int64) for p, v in info["parts"].items()}
            how = dict(
                method="as ocr_chars: chars74k by writer, nist and mnist by item; every MNIST "
                "training-file digit not listed is in train"
            )
            how.update(seed=SPLIT_SEED, fractions=list(SPLIT_FRACTIONS), counts=info["counts"])
            save_split(run.path / "split.json", parts, info["names"], **how)
        self.pools = pools
        H, seed, style = self.mcfg.height, cfg.train.seed, cfg.style
        self.say("composing the validation and test lines")
        return {
            "train": LineSet(pools["train"], cfg.train_lines, style, H, seed, fresh=True),
            "val": LineSet(pools["val"], cfg.val_lines, style, H, seed + 1).materialise(),
            "test": LineSet(pools["test"], cfg.test_lines, style, H, seed + 2).materialise(),
        }

    def model_config(self, train):
        return self.mcfg

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, widths, targets, target_lengths = batch
        logits = model(x, widths)  # (B, T, K)
        loss = ctc_loss(logits, widths, targets, target_lengths)
        lengths = CTCLineRecognizer.output_lengths(widths)
        preds = greedy_batch(logits.detach(), lengths)  # (B, T)
        return StepOutput({"loss": loss, "ctc": loss}, preds, targets)

    def metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection({"cer": CharErrorRate()})

    def run_name(self) -> str:
        return f"{self.cfg.model}-{self.cfg.data}"

    def finish(self, trainer, data, test) -> dict[str, Any]:
        """CER on the held-out lines of every test style, greedy and beam, with and without
        spaces; a figure of test lines with what was read."""
        cfg = self.cfg
        reader = LineReader(trainer.module, self.mcfg.height, trainer.device)
        out: dict[str, Any] = {}
        shown = []
        for name, style in TEST_STYLES.items():
            style = replace(style, chars=cfg.style.chars, words=cfg.words)
            lines = LineSet(self.pools["test"], cfg.test_lines, style, reader.height,
                            cfg.train.seed + 3)  # fmt: skip
            images = [lines[i][0][0].numpy() for i in range(len(lines))]
            truth = [lines.text(i) for i in range(len(lines))]
            for beam in (0, cfg.beam) if cfg.beam else (0,):
                read = [t for t, _ in read_normalised(reader, images, beam)]
                key = "beam" if beam else "greedy"
                out[f"test_{name}/cer_{key}"] = cer(read, truth)
                out[f"test_{name}/cer_{key}_nospace"] = cer(read, truth, spaces=False)
                if name == "photo" and beam == 0:
                    shown = list(zip(images, truth, read))[:8]
        trainer.run.save_figure("test_lines", lines_figure(shown, "held-out test lines, greedy"))
        return out


def train_line_recognizer(
    cfg: CTCConfig, run: RunDir, console=None, resume: bool = False
) -> dict[str, Any]:
    """Train (or resume) a CTC line recogniser into `run` (the shared skeleton); the summary."""
    return run_task(CTCLineTask(cfg, console), run, resume)


def lines_figure(rows: Sequence[tuple[np.ndarray, str, str]], title: str = "") -> Figure:
    """Line images (ink bright) with their truth and what was read."""
    n = max(1, len(rows))
    fig = Figure(figsize=(8, 0.9 * n + 0.4))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (image, truth, read) in zip(axes, rows):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"truth: {truth}   read: {read}", fontsize=8, loc="left")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---- the reader ---------------------------------------------------------------------------------
@dataclass
class LineReader:
    model: nn.Module  # a CTCLineRecognizer in eval mode
    height: int  # line height the model reads
    device: torch.device = torch.device("cpu")
    beam: int = 0  # default beam width of read_line (0: greedy)


def load_line_reader(run_dir: str | Path, device: str = "cpu", beam: int = 0) -> LineReader:
    """The reader of a trained CTC line recogniser run (its best checkpoint)."""
    run = RunDir.open(run_dir)
    model = load_model(run, "best", device)
    if not isinstance(model, CTCLineRecognizer):
        raise NNLabError(f"{run.path} is not a CTC line recogniser run ({type(model).__name__})")
    return LineReader(model, model.cfg.height, next(model.parameters()).device, beam)


@torch.no_grad()
def read_normalised(
    reader: LineReader, images: Sequence[np.ndarray], beam: int | None = None, batch: int = 32
) -> list[tuple[str, list[float]]]:
    """Text and per-character confidences of normalised lines ((H, w) float32, ink bright, as
    `normalise_line` gives); empty lines read as ''. Spaces at either end are dropped."""
    beam = reader.beam if beam is None else beam
    model = reader.model.eval()
    out: list[tuple[str, list[float]]] = [("", [])] * len(images)
    todo = [i for i, im in enumerate(images) if im.shape[1] >= 4]
    for s in range(0, len(todo), batch):
        idx = todo[s : s + batch]
        samples = [(torch.from_numpy(np.asarray(images[i], np.float32))[None], torch.zeros(0))
                   for i in idx]  # fmt: skip
        x, widths, _, _ = collate_lines(samples)
        logits = model(x.to(reader.device), widths.to(reader.device)).float()
        lp = logits.log_softmax(-1).cpu().numpy()  # (B, T, K)
        lengths = CTCLineRecognizer.output_lengths(widths).clamp(1, lp.shape[1]).tolist()
        for b, i in enumerate(idx):
            frames = lp[b, : lengths[b]]
            labels, conf = greedy_decode(frames) if beam <= 0 else beam_decode(frames, beam)[:2]
            text = to_text(labels)
            lead = len(text) - len(text.lstrip(" "))
            text = text.strip(" ")
            out[i] = (text, [float(c) for c in conf[lead : lead + len(text)]])
    return out


def read_line(
    reader: LineReader, line_image: np.ndarray, beam: int | None = None
) -> tuple[str, list[float]]:
    """(text, per-character confidences) of one line image (H, W), grey uint8 or float, dark ink
    on light (a photo or `line_images` strip). Greedy unless `beam` (or the reader's) > 0."""
    return read_normalised(reader, [normalise_line(line_image, reader.height)], beam)[0]


def read_lines(
    reader: LineReader, line_images_: Sequence[np.ndarray], beam: int | None = None
) -> list[tuple[str, list[float]]]:
    """`read_line` for many lines at once (batched through the model)."""
    return read_normalised(reader, [normalise_line(im, reader.height) for im in line_images_], beam)
