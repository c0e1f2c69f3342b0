"""The OCR reader end to end: the combined character set (one canonical form across NIST, MNIST
and Chars74K, writers held out), augmentation, a tiny CNN and the NumPy MLP through their
trainers, the page reader (geometry, order and spaces checked with an oracle classifier), CER,
and the `nnlab ocr` commands (bad pages end in one line, eval, compose, help)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnlab.cli import main
from nnlab.data.ocr_chars import (
    CharSource,
    augment_chars,
    augment_chars_torch,
    load_char_set,
    split_char_set,
)
from nnlab.data.splits import load_split
from nnlab.errors import NNLabError
from nnlab.metrics.ocr import cer, edit_distance, normalise, pooled_cer
from nnlab.ocr.compose import (
    ComposeConfig,
    compose_page,
    match_boxes,
    random_text,
    stroke_glyphs,
    write_pages,
)
from nnlab.ocr.lines import canonical_char, canonical_stats
from nnlab.ocr.read import (
    ReadConfig,
    read_page,
    read_page_lines,
    read_turned,
    render_overlay,
    sureness,
)
from nnlab.ocr.recognize import guesses, softmax, word_context
from nnlab.run import RunDir

REAL = Path(os.environ.get("NNLAB_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
NAMES = [chr(ord("A") + i) for i in range(26)] + [str(d) for d in range(10)]
SMALL = CharSource(per_class=4, mnist_per_class=8, chars74k_writers=3)  # ~290 characters


def _has_real_data() -> bool:
    return all((REAL / d).is_dir() for d in ("nist26-cmu16720", "mnist", "chars74k-hnd"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One nnlab cache for the module: the small character set is built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def real(cache, monkeypatch) -> Path:
    if not _has_real_data():
        pytest.skip(f"NIST, MNIST or Chars74K raw files not in {REAL}")
    monkeypatch.setenv("NNLAB_DATA", str(REAL))
    monkeypatch.setenv("NNLAB_CACHE", str(cache))
    return REAL


@pytest.fixture
def small(real):
    return load_char_set(SMALL)


@pytest.fixture(scope="module")
def stroke_canon():
    """Canonical forms of stroke-font characters (no data files): 2 per class."""
    glyphs = stroke_glyphs(np.random.default_rng(0), per_class=2, height=48)
    x = np.stack([canonical_char(g, ink_is_dark=False) for c in NAMES for g in glyphs[c]])
    return x[:, None]  # (72, 1, 32, 32)


@pytest.fixture(scope="module")
def glyphs():
    return stroke_glyphs(np.random.default_rng(1), per_class=2, height=48)


# ----------------------------------------------------------------------------- the data


TOLERANCE = {"com_y": 1.0, "com_x": 1.0, "box_long": 0.5, "box_cy": 0.25, "box_cx": 0.25,
             "margin": 0.5, "stroke": 0.5}  # fmt: skip


def test_sources_share_one_canonical_form_and_the_cache_returns_it(small):
    """Per source (NIST letters, MNIST digits, Chars74K), the canonical images agree in centre
    of mass, box size and centre, margin and stroke width within TOLERANCE, ink fractions within
    a factor 1.3, nothing at the border; the second load comes from the cache, identical."""
    stats = {s: canonical_stats(small.images[small.sources == s]) for s in ("nist", "mnist",
             "chars74k")}  # fmt: skip
    for s, st in stats.items():
        assert st["border"] < 0.01, s
    for a, b in (("nist", "mnist"), ("nist", "chars74k"), ("mnist", "chars74k")):
        bad = [k for k, tol in TOLERANCE.items() if abs(stats[a][k] - stats[b][k]) > tol]
        ink = sorted((stats[a]["ink_fraction"], stats[b]["ink_fraction"]))
        assert bad == [] and ink[1] < 1.3 * ink[0], (a, b, stats[a], stats[b])
    again = load_char_set(SMALL)
    assert again.names == small.names and np.abs(again.images - small.images).max() <= 1 / 255
    assert small.labels[small.sources == "mnist"].min() == 26  # digits after the letters
    assert all(g.dtype == np.uint8 and g.max() == 255 for g in small.glyphs)


def test_held_out_parts_by_writer_and_by_item(small):
    parts = split_char_set(small, 0.1, 0.2, seed=0)
    allidx = np.concatenate(list(parts.values()))
    assert len(allidx) == len(small) == len(np.unique(allidx))
    writers = {k: set(small.groups[v][small.sources[v] == "chars74k"]) for k, v in parts.items()}
    assert all(writers.values()) and not (writers["train"] & (writers["val"] | writers["test"]))
    assert not writers["val"] & writers["test"]
    for s in ("nist", "mnist", "chars74k"):  # every source in every part
        for k, v in parts.items():
            assert (small.sources[v] == s).any(), (s, k)
    same, other = split_char_set(small, 0.1, 0.2, seed=0), split_char_set(small, 0.1, 0.2, seed=1)
    assert all(np.array_equal(parts[k], same[k]) for k in parts)  # seeded
    assert not all(np.array_equal(parts[k], other[k]) for k in parts)


def test_nist36_is_required_for_data_nist(data_dir):
    with pytest.raises(NNLabError, match="NIST36 files"):
        load_char_set(CharSource(data="nist"))
    with pytest.raises(NNLabError, match="no character images"):
        load_char_set(CharSource())  # nothing under NNLAB_DATA


def _fake_nist36(folder: Path, per_class: dict[str, int]) -> None:
    """nist36_<split>.mat files as the CMU course ships them: (N, 1024) column-major 32x32
    images, 1 = paper, a dark bar of a class-dependent height, and one-hot (N, 36) labels."""
    import scipy.io

    for split, n in per_class.items():
        data, labels = [], []
        for k in range(36):
            for i in range(n):
                im = np.ones((32, 32))
                im[6 : 10 + k % 16, 8 + i : 12 + i + k % 7] = 0.0
                data.append(im.T.ravel())  # stored column-major
                labels.append(np.eye(36)[k])
        mat = {f"{split}_data": np.array(data), f"{split}_labels": np.array(labels)}
        scipy.io.savemat(folder / f"nist36_{split}.mat", mat)


def test_data_nist_keeps_the_official_parts(data_dir):
    """--data nist: the NIST36 files alone; test file -> test, valid file -> val, train -> train;
    without a valid file, val is carved from the training file."""
    _fake_nist36(data_dir, {"train": 3, "valid": 1, "test": 1})
    chars = load_char_set(CharSource(data="nist"))
    assert set(chars.sources) == {"nist"} and len(chars) == 36 * 5
    parts = split_char_set(chars)
    for part, stem in (("train", "nist36_train"), ("val", "nist36_valid"), ("test", "nist36_test")):
        assert all(chars.names[i].split("/")[1] == stem for i in parts[part])
    (data_dir / "nist36_valid.mat").unlink()
    chars = load_char_set(CharSource(data="nist"))
    parts = split_char_set(chars, val_fraction=0.2)
    files = {k: {chars.names[i].split("/")[1] for i in v} for k, v in parts.items()}
    assert files == {"train": {"nist36_train"}, "val": {"nist36_train"}, "test": {"nist36_test"}}
    assert len(parts["val"]) == round(0.2 * 36 * 3)


def _com(x):
    yy, xx = np.mgrid[:32, :32]
    m = x.sum((-2, -1))
    return (x * yy).sum((-2, -1)) / m, (x * xx).sum((-2, -1)) / m


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_augmentation_changes_pixels_but_keeps_the_form(stroke_canon, engine):
    """Augmented characters: values in [0, 1], the centre of mass moved by
    under 1.5 px on average (3.5 px at most: shear and rotation act about the frame's centre), the
    ink mass within a factor 1.8 (scale and pen width together), and the pixels clearly changed."""
    x = stroke_canon.astype(np.float32)
    if engine == "numpy":
        y = augment_chars(x, np.random.default_rng(0))
    else:
        import torch

        torch.manual_seed(0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small ops: a second thread only waits on a shared machine
        try:
            y = augment_chars_torch(torch.from_numpy(x)).numpy()
        finally:
            torch.set_num_threads(threads)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    (cy0, cx0), (cy1, cx1) = _com(x[:, 0]), _com(y[:, 0])
    shift = np.hypot(cy1 - cy0, cx1 - cx0)
    assert shift.mean() < 1.5 and shift.max() < 3.5, shift  # measured 0.9-1.0 and 2.0-2.6
    ratio = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert 1 / 1.8 < ratio.min() and ratio.max() < 1.8, ratio
    assert np.abs(y - x).mean() > 0.03
    assert np.median(np.abs(y - x).reshape(len(x), -1).max(1)) > 0.5  # every image moved


# ----------------------------------------------------------------------------- training


def _tiny_config(model="cnn", **kw):
    from nnlab.tasks.ocr import OCRConfig

    cfg = OCRConfig(
        model=model,
        per_class=SMALL.per_class,
        mnist_per_class=SMALL.mnist_per_class,
        chars74k_writers=SMALL.chars74k_writers,
        augment=False,
        **kw,
    )
    train = replace(cfg.train, epochs=12, batch_size=16, lr=1e-2, device="cpu")
    return replace(cfg, train=train)


@pytest.fixture
def tiny_run(real, tmp_path_factory):
    """A tiny CNN trained for a few steps through OCRTask (loss, metrics, split) and the shared
    loop, into a run directory `nnlab ocr read` accepts (made once per session). The figures of
    run_task's finish are left out: drawing them takes longer than the training."""
    import torch

    from nnlab.config import to_dict
    from nnlab.models import build_model
    from nnlab.tasks.ocr import OCRTask
    from nnlab.train import Trainer

    path = tmp_path_factory.getbasetemp() / "tiny-ocr-run"
    if not (path / "checkpoints" / "best.safetensors").is_file():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # many tiny ops: threads only wait on a shared machine
        try:
            cfg = _tiny_config(model_args={"channels": [8, 16, 32]})
            task, run = OCRTask(cfg), RunDir.create("tiny", path)
            data = task.datasets(run, resume=False)
            mcfg = task.model_config(data["train"])
            torch.manual_seed(0)
            model = build_model("cnn", mcfg)
            run.save_config({"task": "ocr", **to_dict(cfg)})
            meta = {"name": "cnn", "config": to_dict(mcfg)}
            trainer = Trainer(model, task, cfg.train, run, model_meta=meta)
            trainer.fit(data["train"], data["val"])
            trainer.load_best()
            run.save_summary({f"test/{k}": v for k, v in trainer.evaluate(data["test"]).items()})
        finally:
            torch.set_num_threads(threads)
    return path


def test_tiny_cnn_beats_chance_and_keeps_writers_out_of_training(tiny_run, small):
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["test/acc"] > 0.2, summary["test/acc"]  # chance: 1/36; measured 0.44
    parts = load_split(tiny_run / "split.json", small.names)
    train_writers = set(small.groups[parts["train"]][small.sources[parts["train"]] == "chars74k"])
    test_writers = set(small.groups[parts["test"]][small.sources[parts["test"]] == "chars74k"])
    assert test_writers and not train_writers & test_writers
    from nnlab.tasks.ocr import load_classifier

    clf = load_classifier(tiny_run)
    p = clf.probabilities(small.images[:5])
    assert p.shape == (5, 36) and np.allclose(p.sum(1), 1)


def test_numpy_mlp_trains_through_the_numpy_engine(real, tmp_path):
    from nnlab.tasks.ocr import OCRTask, load_classifier

    cfg = _tiny_config("numpy-mlp", model_args={"hidden": [64]}, copies=1)
    cfg = replace(cfg, augment=True, train=replace(cfg.train, epochs=3, batch_size=32))
    summary = OCRTask(cfg).execute(RunDir.create("mlp", tmp_path / "mlp"))
    assert summary["model"] == "numpy-mlp" and summary["test/acc"] > 2 / 36
    clf = load_classifier(tmp_path / "mlp")
    assert clf.probabilities(np.zeros((3, 32, 32), np.float32)).shape == (3, 36)


# ----------------------------------------------------------------------------- reading


class Oracle:
    """A stand-in classifier that knows the page: each box gets the character of the true box it
    overlaps most (IoU >= 0.5) with probability `p`, else '?' spread evenly."""

    class_names = NAMES

    def __init__(self, truth, p=1.0):
        self.truth, self.p = truth, p

    def probabilities(self, crops, boxes):
        assert crops.shape == (len(boxes), 32, 32)
        pred = np.array([(b.x0, b.y0, b.x1, b.y1) for b in boxes])
        match = dict(match_boxes(pred, np.array([c.box for c in self.truth.chars])))
        out = np.full((len(boxes), 36), (1 - self.p) / 35)
        for i in range(len(boxes)):
            if i in match:
                out[i, NAMES.index(self.truth.chars[match[i]].char)] = self.p
            else:
                out[i] = 1 / 36
        return out


def test_reader_with_an_oracle_reproduces_the_text(glyphs):
    """Geometry, reading order, line breaks and spaces without a trained model: plain pages of
    stroke-font characters read back exactly; the JSON and the overlay hold every character."""
    rng = np.random.default_rng(5)
    for _ in range(2):
        image, truth = compose_page(glyphs, random_text(rng, 3, 16), rng,
                                    ComposeConfig.plain(char_height=28))  # fmt: skip
        reading = read_page(image, Oracle(truth))
        assert reading.text == truth.text and reading.reason == ""
        assert [c.index for c in reading.chars] == list(range(1, len(truth.chars) + 1))
        assert all(c.confidence > 0.999 and c.top3 == [] for c in reading.chars)
        record = json.loads(json.dumps(reading.to_json()))
        assert record["text"] == truth.text and len(record["lines"]) == len(truth.lines)
        overlay = render_overlay(image, reading)
        assert overlay.size == image.shape[::-1] and overlay.mode == "RGB"
    unsure = read_page(image, Oracle(truth, p=0.5), ReadConfig(low_confidence=0.8))
    assert unsure.text == truth.text and all(len(c.top3) == 3 for c in unsure.chars)


class InOrder(Oracle):
    """An oracle that is sure of a box (p = 1) only where it comes at its true place in the
    reading order, 0.4 elsewhere: only a page read the right way up reads surely."""

    def probabilities(self, crops, boxes):
        pred = np.array([(b.x0, b.y0, b.x1, b.y1) for b in boxes])
        match = dict(match_boxes(pred, np.array([c.box for c in self.truth.chars])))
        out = np.full((len(boxes), 36), 1 / 36)
        for i, j in match.items():
            p = 1.0 if i == j else 0.4
            out[i] = (1 - p) / 35
            out[i, NAMES.index(self.truth.chars[j].char)] = p
        return out


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_a_turned_photo_is_read_the_way_up_that_reads_surely(glyphs, turn):
    """A photo saved turned: the reader tries the other ways up only when unsure, keeps the
    surest and reads the text exactly; an upright page is read once. With `turn_below=0` the
    page is read only the way the analysis finds."""
    rng = np.random.default_rng(8)
    cfg = ComposeConfig.plain(char_height=28, turns=(turn,))
    image, truth = compose_page(glyphs, random_text(rng, 3, 16), rng, cfg)
    oracle = InOrder(truth)
    reading = read_turned(image, lambda im, an: read_page(im, oracle, ReadConfig(), an))
    assert reading.text == truth.text and reading.analysis.turn == turn
    assert reading.turns[turn] == sureness(reading) > 0.999
    # a quarter turn is found by the projection search: read once or twice (+-90 it cannot tell)
    assert len(reading.turns) in {0: [1], 90: [1, 2], 180: [2], 270: [1, 2]}[turn]
    assert all(v < 0.85 for t, v in reading.turns.items() if t != turn)
    record = json.loads(json.dumps(reading.to_json()))
    assert record["page"]["turn"] == turn and str(turn) in record["page"]["turns_tried"]
    once = ReadConfig(turn_below=0)
    first = read_turned(image, lambda im, an: read_page(im, oracle, once, an), once)
    assert len(first.turns) == 1
    if turn == 180:
        assert first.text != truth.text


def test_guesses_and_softmax():
    p = softmax(np.array([[1000.0, 0.0, 999.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(p.sum(1), 1) and np.isfinite(p).all()
    g = guesses(p, ["A", "B", "C"], low_confidence=0.8)
    assert g[0].char == "A" and [n for n, _ in g[0].top3] == ["A", "C", "B"]
    assert g[1].char == "A" and abs(g[1].confidence - 1 / 3) < 1e-9  # ties: the first class
    assert guesses(np.array([[0.9, 0.05, 0.05]]), "ABC")[0].top3 == []
    with pytest.raises(NNLabError):
        guesses(p, ["A", "B"])


def test_word_context_turns_letters_and_digits_by_their_word():
    """An O between digits reads 0, a 5 between letters S; a sure character of the other kind
    stays (codes such as B12); switch 0.5 changes nothing."""
    names = ["O", "S", "B", "0", "5", "1"]

    def p(**kw):
        row = np.array([kw.get(n if not n.isdigit() else f"d{n}", 0.0) for n in names])
        return row / row.sum()

    number = np.stack([p(O=0.6, d0=0.4), p(d5=0.9, S=0.1), p(d1=1.0)])
    word = np.stack([p(S=0.9, d5=0.1), p(d5=0.6, S=0.4), p(O=1.0)])
    code = np.stack([p(B=0.99, d1=0.01), p(d1=0.99, S=0.01), p(d1=0.98, O=0.02)])
    probs = np.concatenate([number, word, code])
    out = word_context(probs, names, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], switch=0.05)
    read = "".join(names[k] for k in out.argmax(1))
    assert read == "051" + "SSO" + "B11", read
    assert np.allclose(out.sum(1), 1) and out[0, 3] > 0.9
    assert np.allclose(word_context(probs, names, [[0, 1, 2]], switch=0.5), probs)


# ----------------------------------------------------------------------------- CER


def _levenshtein(a: str, b: str) -> int:
    """Textbook dynamic programme, the reference."""
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


def test_cer_on_hand_computed_strings():
    assert cer("HELLO WORLD", "HELO WORLD") == pytest.approx(1 / 11)  # one deletion
    assert cer("HELLO WORLD", "HELO WORLD", spaces=False) == pytest.approx(1 / 10)
    assert cer("hello", "HELLO") == 0.0  # case ignored
    assert cer("AB\nCD", "AB  CD ") == 0.0  # a line break is a word gap; runs of space are one
    assert cer("AB CD", "ABCD") == pytest.approx(1 / 5)
    assert cer("AB CD", "ABCD", spaces=False) == 0.0
    assert cer("ABC", "XYZW") == pytest.approx(4 / 3)  # 3 substitutions + 1 insertion
    assert cer("", "") == 0.0 and cer("", "A") == 1.0
    assert normalise(" a\tb \n c ", spaces=True) == "A B C"
    assert pooled_cer([("AB", "A"), ("CDEF", "CDEF")]) == pytest.approx(1 / 6)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = "".join(rng.choice(list("AB C"), rng.integers(0, 9)))
        b = "".join(rng.choice(list("AB C"), rng.integers(0, 9)))
        ref = _levenshtein(normalise(a), normalise(b))
        assert edit_distance(a, b) == ref


# ----------------------------------------------------------------------------- the CLI


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("cmd", [["ocr"], ["ocr", "train"], ["ocr", "read"], ["ocr", "eval"],
                                 ["ocr", "compose"]])  # fmt: skip
def test_help(capsys, cmd):
    code, out, _ = run_cli(capsys, *cmd, "--help")
    assert code == 0 and "Usage" in out


def _one_line_error(code, err, text):
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert text in err, err


def test_read_bad_pages_end_in_one_line(capsys, tmp_path, glyphs, monkeypatch):
    monkeypatch.delenv("NNLAB_OCR_MODEL", raising=False)
    Image.new("L", (400, 300), 235).save(tmp_path / "blank.png")
    _one_line_error(*run_cli(capsys, "ocr", "read", tmp_path / "blank.png")[::2], "blank page")
    grey = np.full((300, 400), 230, np.uint8)
    grey[::7, ::5] = 215  # faint texture: no ink
    Image.fromarray(grey).save(tmp_path / "paper.png")
    _one_line_error(*run_cli(capsys, "ocr", "read", tmp_path / "paper.png")[::2], "no ink")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    _one_line_error(*run_cli(capsys, "ocr", "read", tmp_path / "broken.jpg")[::2], "not a readable")
    _one_line_error(*run_cli(capsys, "ocr", "read", tmp_path / "none.png")[::2], "no such file")
    (tmp_path / "empty.png").write_bytes(b"")
    _one_line_error(*run_cli(capsys, "ocr", "read", tmp_path / "empty.png")[::2], "empty file")
    image, _ = compose_page(glyphs, ["AB 12"], np.random.default_rng(0), ComposeConfig.plain())
    Image.fromarray(image).save(tmp_path / "page.png")
    _one_line_error(*run_cli(capsys, "ocr", "read", tmp_path / "page.png")[::2], "nnlab ocr train")
    code, _, err = run_cli(capsys, "ocr", "eval", tmp_path / "nowhere")
    _one_line_error(code, err, "no such folder")
    code, _, err = run_cli(capsys, "ocr", "train", "--data", "mnist")
    _one_line_error(code, err, "--data must be combined or nist")


def test_ctc_recognizer_without_a_model_says_so(capsys, tmp_path, glyphs, monkeypatch):
    """--recognizer ctc: one line saying that the CTC recogniser is missing from this nnlab, or,
    where it is there, that no CTC model was found."""
    monkeypatch.delenv("NNLAB_OCR_CTC_MODEL", raising=False)
    try:
        from nnlab.tasks import ocr_ctc  # noqa: F401

        expected = "no CTC line model found"
    except ImportError:
        expected = "CTC line recogniser is not available"
    image, _ = compose_page(glyphs, ["AB"], np.random.default_rng(0), ComposeConfig.plain())
    Image.fromarray(image).save(tmp_path / "page.png")
    code, _, err = run_cli(capsys, "ocr", "read", tmp_path / "page.png", "--recognizer", "ctc")
    _one_line_error(code, err, expected)


def test_line_reader_path_joins_lines_and_keeps_confidences(glyphs):
    """read_page_lines with a stand-in line reader: one call with every line image, the text per
    line with its words, a confidence per character, no character boxes."""
    rng = np.random.default_rng(6)
    image, truth = compose_page(glyphs, ["AB 12", "CD"], rng, ComposeConfig.plain(char_height=28))
    seen = []

    def cut(page, analysis, lines):
        seen.append(len(lines))
        return [np.full((10, 40), 255, np.uint8) for _ in lines]

    def read(images):
        return [("AB  12 ", [0.9, 0.8, 0.0, 0.7, 0.6]), ("CD", [0.5, 0.4])][: len(images)]

    reading = read_page_lines(image, cut, read)
    assert seen == [2] and reading.text == "AB 12\nCD" and reading.recognizer == "ctc"
    assert [c.char for c in reading.chars] == list("AB12CD")
    assert [c.space_before for c in reading.chars] == [False, False, True, False, False, False]
    assert all(c.box is None for c in reading.chars) and len(reading.boxes()) == 0
    json.dumps(reading.to_json())
    assert render_overlay(image, reading).size == image.shape[::-1]


def test_read_eval_and_compose_with_a_trained_model(capsys, tmp_path, tiny_run, glyphs):
    """compose writes held-out pages with their truth; read prints text and writes the overlay
    and JSON; eval scores a folder (table + JSON, box recall from the truth boxes)."""
    pages = tmp_path / "pages"
    code, out, err = run_cli(capsys, "ocr", "compose", pages, "--pages", "2", "--model",
                             tiny_run, "--format", "png", "--char-height", "24")  # fmt: skip
    assert code == 0, err
    names = sorted(p.name for p in pages.iterdir())
    assert names == ["compose.json", "page_0000.json", "page_0000.png", "page_0000.txt",
                     "page_0001.json", "page_0001.png", "page_0001.txt"]  # fmt: skip
    info = json.loads((pages / "compose.json").read_text())
    split = json.loads((tiny_run / "split.json").read_text())
    assert info["test_characters"] == len(split["test"])

    code, out, err = run_cli(capsys, "ocr", "read", pages / "page_0000.png", "--model", tiny_run,
                             "--out", tmp_path / "read")  # fmt: skip
    assert code == 0, err
    record = json.loads((tmp_path / "read" / "page_0000.ocr.json").read_text())
    assert record["text"] in out and len(record["lines"]) >= 1
    assert Image.open(tmp_path / "read" / "page_0000.overlay.png").mode == "RGB"
    code, _, err = run_cli(capsys, "ocr", "read", pages / "page_0000.png", "--model", tiny_run,
                           "--out", tmp_path / "read")  # fmt: skip
    _one_line_error(code, err, "--overwrite")

    other = tmp_path / "other"
    write_pages(other, 1, glyphs, seed=3, cfg=ComposeConfig.plain(char_height=24), fmt="jpg")
    (other / "page_0000.jpg").rename(pages / "extra.jpg")  # a third page, text truth only
    (other / "page_0000.txt").rename(pages / "extra.txt")
    Image.new("L", (200, 100), 240).save(pages / "blank.png")
    (pages / "blank.txt").write_text("AB\n")
    code, out, err = run_cli(capsys, "ocr", "eval", pages, "--model", tiny_run, "--out",
                             tmp_path / "eval.json")  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "eval.json").read_text())
    rows = {r["page"]: r for r in result["pages"]}
    assert sorted(rows) == ["blank.png", "extra.jpg", "page_0000.png", "page_0001.png"]
    assert rows["blank.png"]["cer"] == 1.0 and "blank" in rows["blank.png"]["note"]
    assert rows["page_0000.png"]["box_recall"] > 0.9 and "box_recall" not in rows["extra.jpg"]
    assert result["overall"]["pages"] == 4 and 0 <= result["overall"]["cer_nospace"]
    assert "overall" in out

    # --desk: the pages lie on a desk (a larger photo, darker at its border); a bad value: one line
    desk = tmp_path / "desk"
    code, out, err = run_cli(capsys, "ocr", "compose", desk, "--pages", "1", "--model", tiny_run,
                             "--format", "png", "--char-height", "24", "--hard",
                             "--desk", "0.3")  # fmt: skip
    assert code == 0, err
    assert "on a desk" in out
    assert json.loads((desk / "compose.json").read_text())["compose"]["desk"] == 0.3
    photo = np.asarray(Image.open(desk / "page_0000.png"))
    assert np.median(photo[0]) < 0.6 * np.percentile(photo, 90)
    code, _, err = run_cli(capsys, "ocr", "compose", tmp_path / "bad", "--pages", "1",
                           "--model", tiny_run, "--desk", "7")  # fmt: skip
    _one_line_error(code, err, "--desk")

    # --turns: the photo saved turned (a quarter here: the page is taller than wide)
    turned = tmp_path / "turned"
    code, out, err = run_cli(capsys, "ocr", "compose", turned, "--pages", "1", "--model",
                             tiny_run, "--format", "png", "--turns", "90")  # fmt: skip
    assert code == 0, err
    record = json.loads((turned / "page_0000.json").read_text())
    assert record["angle_deg"] == 90 and record["config"]["turns"] == [90]
    h, w = np.asarray(Image.open(turned / "page_0000.png")).shape[:2]
    assert h > w
    for bad in ("45", "ninety"):
        code, _, err = run_cli(capsys, "ocr", "compose", tmp_path / "bad", "--pages", "1",
                               "--model", tiny_run, "--turns", bad)  # fmt: skip
        _one_line_error(code, err, "--turns")

    # --shadow and --grid: a cast shadow over hard pages on squared paper (no ruled lines then)
    squared = tmp_path / "squared"
    code, out, err = run_cli(capsys, "ocr", "compose", squared, "--pages", "1", "--model",
                             tiny_run, "--format", "png", "--hard", "--shadow", "0.5",
                             "--grid", "1")  # fmt: skip
    assert code == 0, err
    made = json.loads((squared / "compose.json").read_text())["compose"]
    assert made["shadow"] == 0.5 and made["grid"] == 1.0 and made["ruled_lines"] is False
    for option, bad in (("--shadow", "1.5"), ("--shadow", "nan"), ("--grid", "0.1")):
        code, _, err = run_cli(capsys, "ocr", "compose", tmp_path / "bad", "--pages", "1",
                               "--model", tiny_run, option, bad)  # fmt: skip
        _one_line_error(code, err, option)


def test_read_says_when_it_read_a_shadow_or_squared_paper(capsys, tmp_path, tiny_run, glyphs):
    """`nnlab ocr read` on a page with a sharp-edged shadow, and on one of squared paper: a line
    says what the reader did, and the JSON's page record has shadow / squared set; a plain page
    has neither."""
    rng = np.random.default_rng(31)
    pages = {
        "shadow": ComposeConfig.hard(char_height=28, shadow=0.5, shadow_edge=0.1),
        "squared": ComposeConfig.plain(char_height=28, grid=1.0),
        "plain": ComposeConfig.plain(char_height=28),
    }
    for name, cfg in pages.items():
        image, _ = compose_page(glyphs, random_text(rng, 6, 20), rng, cfg)
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        code, out, err = run_cli(capsys, "ocr", "read", tmp_path / f"{name}.png", "--model",
                                 tiny_run, "--out", tmp_path / name)  # fmt: skip
        assert code == 0, err
        page = json.loads((tmp_path / name / f"{name}.ocr.json").read_text())["page"]
        assert (page["shadow"], page["squared"]) == (name == "shadow", name == "squared"), name
        assert ("in a shadow" in out) == (name == "shadow") and ("squared" in out) == (
            name == "squared"
        ), out


@pytest.mark.parametrize("task,asked,hint", [("ocr_ctc", "chars", "ctc"), ("ocr", "ctc", "chars")])
def test_a_run_of_the_other_recognizer_says_which_option_reads_it(tmp_path, task, asked, hint):
    """`nnlab ocr read --model RUN` with the default recognizer on a CTC run (or the reverse):
    one line that names the option, not 'not a ... run'."""
    from nnlab.tasks.ocr import load_reader

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": task}))
    (run / "checkpoints" / "best.safetensors").write_bytes(b"")
    with pytest.raises(NNLabError, match=f"read with --recognizer {hint}$"):
        load_reader(run, asked)
