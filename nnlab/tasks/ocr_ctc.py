"""The CTC line recogniser's task: training lines composed on the fly, the task on the shared
loop, and the reader of a trained run (alphabet, decoding, CER and line images are
`nnlab.ocr.ctc`; the model is `nnlab.models.ocr`).

Lines for training are composed on the fly from real handwritten characters (`compose_line`: a
one-line page from `nnlab.ocr.compose.compose_page`, with its touching pairs, broken strokes,
slant, jitter, spacing and photo effects, cut out by the true character boxes exactly as
`nnlab.ocr.ctc.line_images` cuts a line from a page by the found boxes). Sources, each split so
that the test parts are never seen in training:

- Chars74K EnglishHnd: by writer, `split_by_group(writers, (0.7, 0.15, 0.15), seed=0)`;
- NIST letters (nist26_valid.mat or nist36_train.mat, whichever exists): by item, stratified,
  `split_by_item(n, (0.7, 0.15, 0.15), seed=0, labels)`;
- MNIST: the training file for training; the test file split by item (0.5, 0.5), seed 0, into
  validation and test.
- "strokes": the stroke font of compose.py (no data files; tests), a different seed per part.

A line draws its glyphs from one source (a writer's set, or NIST letters with MNIST digits), so
its style is consistent, as on a page. Every line, before the model sees it, goes through
`nnlab.ocr.ctc.normalise_line`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn
from torch.utils.data import Dataset

from nnlab.data.splits import save_split, split_by_group, split_by_item
from nnlab.errors import NNLabError
from nnlab.models import model_config
from nnlab.models.ocr import CTCLineRecognizer
from nnlab.ocr.compose import WORDS, ComposeConfig, compose_page, stroke_glyphs
from nnlab.ocr.ctc import (
    BLANK,
    CHARS,
    CharErrorRate,
    align_columns,
    beam_decode,
    cer,
    cut_line,
    encode,
    greedy_batch,
    greedy_columns,
    normalise_line,
    to_text,
    word_rule,
)
from nnlab.run import RunDir
from nnlab.tasks.base import Task, load_model, run_task
from nnlab.train import StepOutput, TrainConfig
from nnlab.viz.ocr import lines_figure

SOURCES = ("chars74k", "nist", "mnist", "strokes")
# the parts of nnlab.data.ocr_chars.split_char_set with its defaults (val 0.1, test 0.2, seed 0)
SPLIT_SEED, SPLIT_FRACTIONS = 0, (0.7, 0.1, 0.2)
MNIST_PER_CLASS = 50  # MNIST digits per class that ocr_chars draws (and splits 0.7 / 0.1 / 0.2)


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
    reader: LineReader,
    images: Sequence[np.ndarray],
    beam: int | None = None,
    batch: int = 32,
    switch: float = 0.5,
) -> list[tuple[str, list[float]]]:
    """Text and per-character confidences of normalised lines ((H, w) float32, ink bright, as
    `normalise_line` gives); empty lines read as ''. Spaces at either end are dropped. With
    switch < 0.5 the word rule (`nnlab.ocr.ctc.word_rule`: a word is letters or digits) revises
    the characters, greedy's or beam search's (at the columns of `align_columns`); the default
    0.5 leaves them as decoded."""
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
            if beam <= 0:
                labels, conf, cols = greedy_columns(frames)
            else:
                labels, conf = beam_decode(frames, beam)[:2]
                cols = align_columns(frames, labels) if switch < 0.5 else []
            if switch < 0.5:
                labels, conf = word_rule(frames, labels, cols, switch)
            text = to_text(labels)
            lead = len(text) - len(text.lstrip(" "))
            text = text.strip(" ")
            out[i] = (text, [float(c) for c in conf[lead : lead + len(text)]])
    return out


def read_line(
    reader: LineReader, line_image: np.ndarray, beam: int | None = None, switch: float = 0.5
) -> tuple[str, list[float]]:
    """(text, per-character confidences) of one line image (H, W), grey uint8 or float, dark ink
    on light (a photo or `nnlab.ocr.ctc.line_images` strip). Greedy unless `beam` (or the
    reader's) > 0; `switch` < 0.5 applies the word rule to a greedy reading."""
    image = normalise_line(line_image, reader.height)
    return read_normalised(reader, [image], beam, switch=switch)[0]


def read_lines(
    reader: LineReader,
    line_images_: Sequence[np.ndarray],
    beam: int | None = None,
    switch: float = 0.5,
) -> list[tuple[str, list[float]]]:
    """`read_line` for many lines at once (batched through the model)."""
    images = [normalise_line(im, reader.height) for im in line_images_]
    return read_normalised(reader, images, beam, switch=switch)
