"""Reading a text line without cutting it into characters: the CTC line recogniser's alphabet,
decoding, character error rate and line images (the model is `nnlab.models.ocr`; its training
lines, task and reader are in tasks/ocr_ctc.py).

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

A line is cut from a page by its boxes (`line_images`, `cut_line`), and every line, before the
model sees it, goes through `normalise_line`: background divided out, ink bright, cropped to the
ink, resized to the model's height.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from scipy import ndimage
from skimage.transform import AffineTransform, resize, warp

from nnlab.data.nist import class_names
from nnlab.errors import NNLabError
from nnlab.ocr.lines import Line
from nnlab.ocr.page import Box, PageAnalysis, background, flatten, to_grey

BLANK = 0
CHARS = "".join(class_names(36))  # 'A'-'Z' then '0'-'9': NIST36 order
ALPHABET = CHARS + " "  # label i + 1 is ALPHABET[i]


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
    labels, conf, _ = greedy_columns(log_probs)
    return labels, conf


def greedy_columns(log_probs: np.ndarray) -> tuple[list[int], list[float], list[int]]:
    """`greedy_decode`, with the column of each label where its probability peaks (the column
    whose distribution stands for that character)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    best = lp.argmax(1)
    labels, conf, cols, prev = [], [], [], BLANK
    for t, k in enumerate(best):
        p = float(np.exp(lp[t, k]))
        if k != BLANK and k == prev:
            if p > conf[-1]:
                conf[-1], cols[-1] = p, t
        elif k != BLANK:
            labels.append(int(k))
            conf.append(p)
            cols.append(t)
        prev = k
    return labels, conf, cols


def align_columns(log_probs: np.ndarray, labels: Sequence[int]) -> list[int]:
    """The column where each label of a decoding (beam search's, say) peaks on the likeliest
    CTC alignment of `labels` to the (T, K) log-probabilities (Viterbi over the labels with
    blanks between, repeats kept apart by a blank): among the columns that alignment gives to
    label j, the one where its probability is highest. What `word_rule` needs from a decoding
    that is not greedy's. [] for no labels."""
    lp = np.asarray(log_probs, dtype=np.float64)
    labels = [int(k) for k in labels]
    if not labels:
        return []
    ext = np.full(2 * len(labels) + 1, BLANK, dtype=np.int64)
    ext[1::2] = labels
    S, T = len(ext), lp.shape[0]
    skip = np.zeros(S, bool)  # s may be reached from s - 2 (a label after another label)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    dp = np.full(S, -np.inf)
    dp[:2] = lp[0, ext[:2]]
    back = np.zeros((T, S), np.int8)  # 0: stayed, 1: from s - 1, 2: from s - 2
    for t in range(1, T):
        one = np.r_[-np.inf, dp[:-1]]
        two = np.where(skip, np.r_[-np.inf, -np.inf, dp[:-2]], -np.inf)
        cand = np.stack([dp, one, two])  # (3, S)
        back[t] = cand.argmax(0)
        dp = cand.max(0) + lp[t, ext]
    s = S - 1 if S == 1 or dp[S - 1] >= dp[S - 2] else S - 2
    best = np.full(len(labels), -np.inf)
    cols = [0] * len(labels)
    for t in range(T - 1, -1, -1):
        if s % 2 == 1 and lp[t, ext[s]] > best[s // 2]:
            best[s // 2], cols[s // 2] = lp[t, ext[s]], t
        s -= int(back[t, s])
    return cols


def word_rule(
    log_probs: np.ndarray, labels: Sequence[int], cols: Sequence[int], switch: float = 0.05
) -> tuple[list[int], list[float]]:
    """The character reader's word context (`nnlab.ocr.recognize.word_context`: a word is
    letters or digits, a character of the other kind has prior `switch`) on a CTC reading
    (greedy's, with `greedy_columns`, or beam search's, with `align_columns`): each character's
    distribution is its peak column's over the 36 characters (blank and space left out,
    renormalised), the words are the runs between space labels, and each character becomes the
    likeliest under its word's context, with that probability as its confidence. Only
    substitutions: the length and the spaces stay. switch = 0.5 changes nothing.
    -> (labels, confidences)."""
    from nnlab.ocr.recognize import word_context

    lp = np.asarray(log_probs, dtype=np.float64)
    labels = [int(k) for k in labels]
    conf = [float(np.exp(lp[c, k])) for c, k in zip(cols, labels)]  # greedy's own
    space = ALPHABET.index(" ") + 1
    chars = [i for i, k in enumerate(labels) if k != space]
    if not chars or switch >= 0.5:
        return labels, conf
    probs = np.exp(lp[[cols[i] for i in chars], 1 : len(CHARS) + 1])  # (n, 36)
    probs /= np.maximum(probs.sum(1, keepdims=True), 1e-300)
    words, current = [], []
    for j, i in enumerate(chars):
        if current and i > 0 and labels[i - 1] == space:
            words.append(current)
            current = []
        current.append(j)
    words.append(current)
    revised = word_context(probs, list(CHARS), words, switch)
    out = list(labels)
    for j, i in enumerate(chars):
        k = int(revised[j].argmax())
        out[i], conf[i] = k + 1, float(revised[j, k])
    return out, conf


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
    page_image: np.ndarray,
    analysis: PageAnalysis,
    lines: Sequence[Line | Sequence[Box]],
    level: bool = True,
) -> list[np.ndarray]:
    """Strips (h, w) float32 of a page photo, one per line (`group_lines` Lines or lists of
    Boxes of `analysis`), dark ink on light, cut upright: in the deskewed working image that
    `analyse_page` found the boxes in (downscaled by `analysis.scale`, rotated by its angle),
    padded by 0.15 x the line's median box height and with everything away from the line's boxes
    set to paper (`cut_line`). Where `analyse_page` found writing in a cast shadow, its light
    is divided out first (`PageAnalysis.light`); on squared paper the lines it removed are
    painted over with paper (`PageAnalysis.lines`): the model was trained on lined strips, never
    on squares. Read each with `read_line` (tasks/ocr_ctc.py)."""
    grey = to_grey(page_image)
    k = analysis.scale
    if k > 1:
        h, w = grey.shape[0] // k, grey.shape[1] // k
        grey = grey[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3))
    if analysis.light is not None and analysis.light.shape == grey.shape:
        grey = flatten(grey, analysis.light).clip(0.0, 1.0)  # a cast shadow divided out
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
        # the line's own slope (a tilted photo's lines are not parallel to the page's mean
        # direction): its boxes turned about their mean centre until the line is level
        R, rects = _level(rects) if level else (np.eye(3), rects)
        u0, v0 = np.floor(rects[:, :2].min(0) - 2 * pad)
        u1, v1 = np.ceil(rects[:, 2:].max(0) + 2 * pad)
        # only this line's region is warped: output (x, y) + (u0, v0) levelled -> upright -> working
        shift = np.array([[1, 0, u0], [0, 1, v0], [0, 0, 1]])
        inverse = AffineTransform(matrix=np.linalg.inv(M) @ R @ shift)
        region = warp(grey, inverse, output_shape=(int(v1 - v0), int(u1 - u0)), order=1, cval=paper)
        if analysis.lines is not None:  # squared paper: its lines painted over with paper
            on = AffineTransform(matrix=R @ shift)  # this line's frame -> upright
            lines = warp(analysis.lines.astype(np.float32), on, output_shape=region.shape, order=0)
            size = 2 * int(pad) + 1  # wider than the lines and the pen: the paper around them
            paper_here = ndimage.grey_closing(region, size=(size, size))
            region = np.where(lines > 0.5, paper_here, region).astype(np.float32)
        out.append(cut_line(region, rects - [u0, v0, u0, v0], pad))
    return out


def line_slope(rects: np.ndarray) -> float:
    """The slope dv/du of a line of boxes (N, 4): the median of the slopes between the centres
    of boxes at least a median box width apart (Theil-Sen: a raised or dropped letter does not
    tilt it); 0 with fewer than 3 boxes."""
    if len(rects) < 3:
        return 0.0
    cu, cv = (rects[:, 0] + rects[:, 2]) / 2, (rects[:, 1] + rects[:, 3]) / 2
    du, dv = cu[None, :] - cu[:, None], cv[None, :] - cv[:, None]
    far = du >= np.median(rects[:, 2] - rects[:, 0])
    return float(np.median(dv[far] / du[far])) if far.any() else 0.0


def _level(rects: np.ndarray, max_deg: float = 8.0, min_deg: float = 0.25):
    """(3x3 map from the levelled frame to the upright one, the boxes in the levelled frame):
    a turn about the boxes' mean centre by the line's angle (`line_slope`, clipped to
    +-max_deg; below min_deg: no turn). The boxes keep their sizes (small angles); their
    centres move."""
    a = float(np.clip(np.arctan(line_slope(rects)), -np.deg2rad(max_deg), np.deg2rad(max_deg)))
    if abs(a) < np.deg2rad(min_deg):
        return np.eye(3), rects
    c = np.array([(rects[:, 0] + rects[:, 2]).mean() / 2, (rects[:, 1] + rects[:, 3]).mean() / 2])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # levelled -> upright
    R = np.eye(3)
    R[:2, :2], R[:2, 2] = rot, c - rot @ c
    centres = np.c_[(rects[:, 0] + rects[:, 2]) / 2, (rects[:, 1] + rects[:, 3]) / 2]
    moved = (centres - c) @ rot + c  # upright -> levelled: rot^T (p - c) + c
    half = np.c_[rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1]] / 2
    return R, np.c_[moved - half, moved + half]
