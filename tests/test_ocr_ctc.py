"""The CTC line recogniser: model shapes and the output-length formula, CTC loss, greedy and
prefix beam decoding (hand cases, brute force over every path, the forward algorithm), CER,
batching, a tiny model that learns a few lines, the task end to end, the reader on composed lines
and pages, and the held-out writers."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from nnlab.data.idx import write_idx
from nnlab.models import build_model, model_config
from nnlab.models.ocr import CTCLineConfig, CTCLineRecognizer
from nnlab.ocr.compose import ComposeConfig, compose_page, random_text, stroke_glyphs
from nnlab.ocr.ctc import (
    ALPHABET,
    BLANK,
    CharErrorRate,
    _level,
    _upright_matrix,
    align_columns,
    beam_decode,
    cer,
    collapse,
    edit_distance,
    encode,
    greedy_batch,
    greedy_columns,
    greedy_decode,
    line_images,
    line_slope,
    normalise_line,
    to_text,
    word_rule,
)
from nnlab.ocr.lines import group_lines
from nnlab.ocr.page import analyse_page, deskew
from nnlab.run import RunDir
from nnlab.tasks.ocr_ctc import (
    PLAIN,
    CTCConfig,
    LineReader,
    LineSet,
    LineStyle,
    collate_lines,
    ctc_loss,
    glyph_pools,
    load_line_reader,
    read_line,
    read_lines,
    read_normalised,
    train_line_recognizer,
)
from nnlab.train import TrainConfig

TINY = dict(channels=(8, 16, 16, 16), dim=32, layers=1, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    # the test machine's 2 cores are shared: torch's thread pool spinning on them is ~10x slower
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---- model --------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["lstm", "transformer"])
def test_shapes_and_output_length_formula(head):
    torch.manual_seed(0)
    model = build_model("ctc_line", model_config("ctc_line", head=head, **TINY)).eval()
    for W in (4, 7, 33, 128, 257):
        out = model(torch.rand(2, 1, 32, W))
        T = int(CTCLineRecognizer.output_lengths(torch.tensor(W)))
        assert T == W // 4 and out.shape == (2, T, 38)
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 24, 64))  # not the model's height
    with pytest.raises(ValueError):
        CTCLineConfig(head="gru")


@pytest.mark.parametrize("head", ["lstm", "transformer"])
def test_a_line_reads_the_same_alone_and_padded_in_a_batch(head):
    torch.manual_seed(0)
    model = CTCLineRecognizer(CTCLineConfig(head=head, **TINY)).eval()
    for W in (120, 123):
        line = torch.rand(1, 1, 32, W)
        x = torch.zeros(2, 1, 32, 200)
        x[0, :, :, :W] = line
        x[1] = torch.rand(1, 32, 200)
        T = W // 4
        with torch.no_grad():
            alone = model(line, torch.tensor([W]))[0]  # (T, K)
            batched = model(x, torch.tensor([W, 200]))[0, :T]
            unmasked = model(x)[0, :T]  # padding treated as part of the line
        torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
        assert (unmasked - alone).abs().max() > 1e-3  # the masks are what makes them equal


def test_ctc_loss_is_finite_and_backpropagates():
    torch.manual_seed(0)
    model = CTCLineRecognizer(CTCLineConfig(**TINY))
    samples = [
        (torch.rand(1, 32, 96), torch.tensor(encode("AB 1"))),
        (torch.rand(1, 32, 60), torch.tensor(encode("ZZ9"))),
        (torch.rand(1, 32, 8), torch.tensor(encode("TOOLONG"))),  # 2 columns for 7 labels
    ]
    x, widths, targets, lengths = collate_lines(samples)
    loss = ctc_loss(model(x, widths), widths, targets, lengths)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_ctc_loss_is_the_forward_algorithm():
    """-log p(l | x) of F.ctc_loss (per label, batch mean) against the sum over all paths."""
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.ones(3), size=5))  # (T=5, K=3)
    logits = torch.tensor(lp)[None].float()  # log-probs are logits too
    target = [1, 2]
    widths = torch.tensor([20])  # 5 columns
    loss = ctc_loss(logits, widths, torch.tensor([target]), torch.tensor([2]))
    p = sum(
        math.exp(sum(lp[t, k] for t, k in enumerate(path)))
        for path in itertools.product(range(3), repeat=5)
        if collapse(path) == target
    )
    assert float(loss) == pytest.approx(-math.log(p) / 2, rel=1e-4)


# ---- decoding -----------------------------------------------------------------------------------
def one_hot_log_probs(path, K=4, p=0.97):
    lp = np.full((len(path), K), math.log((1 - p) / (K - 1)))
    lp[np.arange(len(path)), path] = math.log(p)
    return lp


def test_greedy_collapses_repeats_and_removes_blanks():
    assert collapse([0, 1, 1, 0, 1, 2, 2, 0]) == [1, 1, 2]
    assert collapse([1, 1, 1]) == [1]
    assert collapse([0, 0, 0]) == []
    assert collapse([3, 0, 3, 3, 0, 0, 2]) == [3, 3, 2]
    labels, conf = greedy_decode(one_hot_log_probs([0, 1, 1, 0, 1, 2, 2, 0]))
    assert labels == [1, 1, 2] and conf == pytest.approx([0.97] * 3)
    # a batch, with each line's padding columns ignored
    logits = torch.tensor(
        np.stack([one_hot_log_probs([1, 1, 0, 2, 2, 3]), one_hot_log_probs([3, 0, 3, 1, 1, 1])])
    )
    out = greedy_batch(logits, torch.tensor([6, 3]))
    assert out.tolist() == [[1, 2, 3, 0, 0, 0], [3, 3, 0, 0, 0, 0]]
    assert to_text(encode("AZ 09")) == "AZ 09" and ALPHABET[encode("Q")[0] - 1] == "Q"


def test_word_rule_turns_characters_by_their_word_and_keeps_length_and_spaces():
    K = len(ALPHABET) + 1

    def column(main, p, other=None, q=0.0):
        lp = np.full(K, 1e-4)
        lp[encode(main)[0]] = p
        if other:
            lp[encode(other)[0]] = q
        return np.log(lp / lp.sum())

    blank = np.log(np.r_[0.99, np.full(K - 1, 0.01 / (K - 1))])
    # "O78 HELL0": the O is unsure between O and 0, the last 0 unsure between 0 and O
    cols = [column("O", 0.55, "0", 0.40), column("7", 0.9), column("8", 0.9), column(" ", 0.9)]
    cols += [column(c, 0.9) for c in "HELL"] + [column("0", 0.55, "O", 0.40)]
    lp = np.stack([x for c in cols for x in (c, blank)])
    labels, conf, peaks = greedy_columns(lp)
    assert to_text(labels) == "O78 HELL0" and peaks == list(range(0, 2 * len(cols), 2))
    new, new_conf = word_rule(lp, labels, peaks, switch=0.05)
    assert to_text(new) == "078 HELLO"
    assert len(new_conf) == len(new) and all(0 < c <= 1 for c in new_conf)
    # a sure character of the other kind stays (codes such as B12)
    sure = [column("B", 0.95), column("1", 0.9), column("2", 0.9)]
    lp2 = np.stack([x for c in sure for x in (c, blank)])
    labels2, _, peaks2 = greedy_columns(lp2)
    assert to_text(word_rule(lp2, labels2, peaks2, switch=0.05)[0]) == "B12"
    # switch 0.5: no context, greedy's own reading and confidences
    same, same_conf = word_rule(lp, labels, peaks, switch=0.5)
    assert same == labels and same_conf == pytest.approx(greedy_decode(lp)[1])


def test_align_columns_finds_each_labels_peak_on_the_best_alignment():
    """A repeated label needs a blank between its two runs: "AA" on columns A(0.9) A(0.6)
    blank A(0.95) blank peaks at 0 and 3; on peaked random frames the Viterbi alignment of
    greedy's labels is greedy's own path, so the columns are greedy_columns'; the beam reading
    with the word rule at those columns turns "O78" into "078", as greedy's does."""
    K = len(ALPHABET) + 1
    a = encode("A")[0]

    def col(probs):
        v = np.full(K, 1e-3)
        for k, p in probs.items():
            v[k] = p
        return np.log(v / v.sum())

    lp = np.stack([col({a: 0.9}), col({a: 0.6, BLANK: 0.3}), col({BLANK: 0.9}), col({a: 0.95}),
                   col({BLANK: 0.9})])  # fmt: skip
    assert to_text(greedy_columns(lp)[0]) == "AA"
    assert align_columns(lp, encode("AA")) == [0, 3]
    assert align_columns(lp, []) == []
    rng = np.random.default_rng(0)
    for _ in range(20):
        T = int(rng.integers(5, 40))
        logits = rng.normal(0, 1, (T, K))
        logits[np.arange(T), rng.integers(0, K, T)] += 6.0  # one clear class per column
        lp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        labels, _, cols = greedy_columns(lp)
        assert align_columns(lp, labels) == cols
    blank = col({BLANK: 0.99})
    frames = [col({encode("O")[0]: 0.55, encode("0")[0]: 0.4}), col({encode("7")[0]: 0.9}),
              col({encode("8")[0]: 0.9})]  # fmt: skip
    lp = np.stack([x for c in frames for x in (c, blank)])
    labels = beam_decode(lp, 8)[0]
    assert to_text(labels) == "O78"
    ruled = word_rule(lp, labels, align_columns(lp, labels), switch=0.05)[0]
    assert to_text(ruled) == "078"


def brute_force(lp):
    """label sequence -> log p, summed over every one of the K^T paths."""
    T, K = lp.shape
    total: dict[tuple, float] = {}
    for path in itertools.product(range(K), repeat=T):
        key = tuple(collapse(path))
        total[key] = np.logaddexp(
            total.get(key, -np.inf), sum(lp[t, k] for t, k in enumerate(path))
        )
    return total


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_finds_the_most_probable_labelling(seed):
    rng = np.random.default_rng(seed)
    T, K = (5, 3) if seed % 2 else (4, 4)
    lp = np.log(rng.dirichlet(np.full(K, 0.7), size=T))  # flat enough that best path != best label
    total = brute_force(lp)
    best = max(total, key=total.get)
    labels, conf, logp = beam_decode(lp, beam=10_000, prune=0.0)
    assert tuple(labels) == best and logp == pytest.approx(total[best], abs=1e-9)
    assert len(conf) == len(labels) and all(0 < c <= 1 for c in conf)
    # beam search's labelling is at least as probable as greedy's, also with a small beam
    greedy = tuple(greedy_decode(lp)[0])
    small = tuple(beam_decode(lp, beam=3)[0])
    assert total[best] >= total[small] >= total[greedy] - 1e-12
    # what it reports is p(l | x) of the forward algorithm
    if labels:
        loss = ctc_loss(
            torch.tensor(lp)[None].float(),
            torch.tensor([4 * T]),
            torch.tensor([labels]),
            torch.tensor([len(labels)]),
        )
        assert -float(loss) * len(labels) == pytest.approx(logp, abs=1e-4)


def test_beam_equals_greedy_on_peaked_distributions():
    rng = np.random.default_rng(1)
    for _ in range(20):
        path = rng.integers(0, 5, 12)
        lp = one_hot_log_probs(path, K=5, p=0.99)
        assert beam_decode(lp, beam=4)[0] == greedy_decode(lp)[0] == collapse(path)


# ---- CER and batches ----------------------------------------------------------------------------
def test_edit_distance_and_cer():
    assert edit_distance("KITTEN", "SITTING") == 3
    assert edit_distance("", "ABC") == 3 and edit_distance("ABC", "ABC") == 0
    assert cer(["HELO WORLD"], ["HELLO WORLD"]) == pytest.approx(1 / 11)
    assert cer(["HELLOWORLD"], ["HELLO WORLD"], spaces=False) == 0.0
    metric = CharErrorRate()
    metric.update(torch.tensor([[1.0, 2, 0], [3, 0, 0]]), torch.tensor([[1, 2, 2], [3, 4, 0]]))
    assert float(metric.compute()) == pytest.approx(2 / 5)
    assert metric.higher_is_better is False


def test_collate_pads_widths_and_targets():
    samples = [
        (torch.ones(1, 32, 10), torch.tensor([1, 2, 3])),
        (2 * torch.ones(1, 32, 25), torch.tensor([4])),
    ]
    x, widths, targets, lengths = collate_lines(samples)
    assert x.shape == (2, 1, 32, 25) and widths.tolist() == [10, 25]
    assert (x[0, :, :, :10] == 1).all() and (x[0, :, :, 10:] == 0).all() and (x[1] == 2).all()
    assert targets.tolist() == [[1, 2, 3], [4, BLANK, BLANK]] and lengths.tolist() == [3, 1]


# ---- learning -----------------------------------------------------------------------------------
def test_a_tiny_model_learns_a_few_lines():
    """Six lines of 2-3 stroke-font characters, a tiny transformer head: after 150 Adam steps the
    greedy CER on them is below 0.1 (measured: 0.0 from step 100 on; 1.0 before training; the
    tiny BiLSTM head needs ~225 steps)."""
    torch.manual_seed(0)
    pools = [stroke_glyphs(np.random.default_rng(0), 2, 48, chars="AB17")]
    lines = LineSet(pools, 6, replace_chars(PLAIN, (2, 3)), 32, seed=0).materialise()
    x, widths, targets, lengths = collate_lines([lines[i] for i in range(6)])
    truth = [lines.text(i) for i in range(6)]
    model = CTCLineRecognizer(CTCLineConfig(**{**TINY, "head": "transformer", "heads": 2}))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    reader = LineReader(model, 32)

    def error() -> float:
        images = [x[i, 0, :, : widths[i]].numpy() for i in range(6)]
        return cer([t for t, _ in read_normalised(reader, images)], truth)

    before = error()
    model.train()
    for _ in range(150):
        loss = ctc_loss(model(x, widths), widths, targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before > 0.5 and error() < 0.1


def replace_chars(style: LineStyle, chars: tuple[int, int]) -> LineStyle:
    return replace(style, chars=chars)


def test_task_trains_and_the_reader_reads(tmp_path):
    """The task under the shared loop (stroke font, one short epoch), then the reader API on a
    composed line and on the lines `line_images` cuts from a composed, rotated page."""
    cfg = CTCConfig(
        data="strokes",
        model_args=TINY,
        train_lines=32,
        val_lines=8,
        test_lines=6,
        beam=4,
        train=TrainConfig(monitor="val/cer", mode="min", epochs=1, batch_size=16, device="cpu"),
    )
    run = RunDir.create("ctc", out=tmp_path / "run")
    summary = train_line_recognizer(cfg, run)
    for key in ("test/cer", "test_plain/cer_greedy", "test_touching_broken/cer_beam"):
        assert 0 <= summary[key] < 10, key
    assert (run.path / "figures" / "test_lines.png").exists()
    assert not (run.path / "split.json").exists()  # nothing to split in the stroke font

    reader = load_line_reader(run.path)
    glyphs = stroke_glyphs(np.random.default_rng(3), 2, 48)
    image, _ = compose_page(glyphs, ["AB 12"], np.random.default_rng(0), ComposeConfig.plain())
    for beam in (0, 4):
        text, conf = read_line(reader, image, beam=beam)
        assert isinstance(text, str) and len(conf) == len(text)
        assert all(0 < c <= 1 for c in conf) and text == text.strip()
    assert read_line(reader, np.full((40, 200), 200, np.uint8)) == ("", [])  # no ink

    cfg_page = ComposeConfig.plain(char_height=30, rotation_deg=4.0)
    page, truth = compose_page(glyphs, ["HELLO 42", "WORLD"], np.random.default_rng(5), cfg_page)
    analysis = analyse_page(page)
    lines = group_lines(analysis.boxes)
    strips = line_images(page, analysis, lines)
    assert len(strips) == len(lines) == 2
    for strip, line in zip(strips, lines):
        assert strip.ndim == 2 and strip.dtype == np.float32
        norm = normalise_line(strip)
        assert norm.shape[0] == 32 and norm.shape[1] > 4 * len(line.boxes)
    assert all(isinstance(t, str) for t, _ in read_lines(reader, strips))


def test_upright_matrix_is_deskews():
    image = np.random.default_rng(0).random((37, 91)).astype(np.float32)
    for angle in (-3.5, 0.0, 2.0):
        _, M = deskew(image, angle, cval=1.0)
        np.testing.assert_allclose(_upright_matrix(image.shape, angle), M, atol=1e-12)


def test_a_tilted_line_is_levelled_by_its_own_slope():
    """Boxes whose centres climb 4 degrees (a tilted photo), one letter raised by half a box:
    line_slope gives tan(4 deg) within 0.01 (Theil-Sen ignores the raised letter; a least-squares
    fit would not); _level turns them level (centres within 1 px of one row, the raised one
    aside) and its map takes each levelled centre back to the box's upright centre."""
    a = np.deg2rad(4.0)
    u = np.arange(10) * 40.0
    v = 100 + np.tan(a) * u
    v[4] -= 15  # raised
    rects = np.c_[u - 12, v - 15, u + 12, v + 15]
    assert abs(line_slope(rects) - np.tan(a)) < 0.01
    R, level = _level(rects)
    cv = (level[:, 1] + level[:, 3]) / 2
    others = np.delete(cv, 4)
    assert np.ptp(others) < 1.0 and abs(cv[4] - others.mean()) > 10
    centres = np.c_[(level[:, 0] + level[:, 2]) / 2, cv, np.ones(len(cv))] @ R.T
    assert np.allclose(centres[:, 0], u, atol=1e-6) and np.allclose(centres[:, 1], v, atol=1e-6)
    assert np.allclose(_level(rects[:2])[0], np.eye(3))  # two boxes: no slope, no turn


def test_squared_paper_lines_are_painted_over_in_the_line_strips():
    """On squared paper `analyse_page` hands the lines it removed to the line cutter, which
    paints them over with the paper around them: every strip has at most 0.6 x the columns
    that are dark down most of the strip (the squares' vertical lines, and pen stems;
    measured 0.16-0.43 x), and the pen (darker than 0.35 x the paper) is untouched."""
    glyphs = stroke_glyphs(np.random.default_rng(0), per_class=2, height=48)
    cfg = ComposeConfig.plain(char_height=28, grid=1.0)
    rng = np.random.default_rng(41)
    image, _ = compose_page(glyphs, random_text(rng, 4, 20), rng, cfg)
    analysis = analyse_page(image)
    assert analysis.lines is not None
    lines = group_lines(analysis.boxes)
    painted = line_images(image, analysis, lines)
    bare = line_images(image, replace(analysis, lines=None), lines)
    for x, y in zip(painted, bare):
        paper = np.percentile(y, 90)
        assert ((x < 0.85 * paper).mean(0) > 0.6).sum() <= 0.6 * (
            (y < 0.85 * paper).mean(0) > 0.6
        ).sum()
        assert (
            abs((x < 0.35 * paper).sum() - (y < 0.35 * paper).sum())
            <= 0.01 * (y < 0.35 * paper).sum()
        )


def test_normalise_line_height_polarity_and_crop():
    line = np.full((60, 300), 220, np.uint8)
    line[20:45, 50:60] = 30  # a dark bar on light paper
    line[20:45, 150:180] = 30
    out = normalise_line(line, 32)
    assert out.shape[0] == 32 and out.dtype == np.float32
    assert out.max() == pytest.approx(1.0) and out[0].max() == 0 and out[:, 0].max() == 0
    rows = np.nonzero(out.max(1) >= 0.5)[0]
    assert rows[0] == 2 and rows[-1] == 29  # the ink spans height - 2 margin rows
    assert out.shape[1] == pytest.approx(130 * 28 / 25 + 8, abs=2)  # cropped to the ink, scaled


# ---- data ---------------------------------------------------------------------------------------
def make_char_files(data_dir, writers=range(1, 21)) -> None:
    """Generated Chars74K ('A', 'B', '1'; writer w draws a 20 x (4 + w) L, so a glyph's width
    names its writer), a NIST26 file of 60 letters and an MNIST training file of 600 digits
    under `data_dir`."""
    img = data_dir / "chars74k-hnd" / "English" / "Hnd" / "Img"
    for folder in (11, 12, 2):  # 'A', 'B', '1'
        d = img / f"Sample{folder:03d}"
        d.mkdir(parents=True)
        for w in writers:
            a = np.full((40, 80), 255, np.uint8)
            a[10:30, 10:13] = 0  # an L, 20 x (4 + w)
            a[27:30, 10 : 14 + w] = 0
            Image.fromarray(a).save(d / f"img{folder:03d}-{w:03d}.png")
    nist = data_dir / "nist26-cmu16720"
    nist.mkdir()
    rng = np.random.default_rng(0)
    data = rng.random((60, 1024))
    labels = np.eye(26)[np.arange(60) % 26]
    scipy.io.savemat(nist / "nist26_valid.mat", {"valid_data": data, "valid_labels": labels})
    # MNIST: 60 digits per class, each with its index written into its first two pixels
    x = np.zeros((600, 28, 28), np.uint8)
    x[:, 5:23, 12:16] = 255
    x[:, 0, 0], x[:, 0, 1] = np.arange(600) % 256, np.arange(600) // 256
    (data_dir / "mnist").mkdir()
    write_idx(data_dir / "mnist" / "train-images-idx3-ubyte.gz", x)
    write_idx(
        data_dir / "mnist" / "train-labels-idx1-ubyte.gz", (np.arange(600) % 10).astype(np.uint8)
    )


def test_held_out_writers_and_images_are_never_training_glyphs(data_dir):
    """The writers of the three parts are disjoint and cover all, the NIST and MNIST items too,
    and the saved split says the same."""
    writers = range(1, 21)
    make_char_files(data_dir, writers)

    pools, info = glyph_pools("chars74k+nist+mnist")
    seen, digits = {}, {}
    for part in ("train", "val", "test"):
        c74 = pools[part][0]
        seen[part] = {g.shape[1] - 4 for glyphs in c74.values() for g in glyphs}
        assert set(c74) == {"A", "B", "1"}
        mnist = pools[part][1]
        digits[part] = {int(g[0, 0]) + 256 * int(g[0, 1]) for d in "0123456789" for g in mnist[d]}
    assert len(digits["val"]) == 50 and len(digits["test"]) == 100  # 0.1 and 0.2 of 10 x 50
    assert len(digits["train"]) == 600 - 150 and not (digits["train"] & digits["val"])
    assert not (digits["train"] & digits["test"]) and not (digits["val"] & digits["test"])
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"])
    assert not (seen["val"] & seen["test"]) and set.union(*seen.values()) == set(writers)
    parts = {p: set(v) for p, v in info["parts"].items()}
    assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["val"])
    assert len(set.union(*parts.values())) == len(info["names"]) == 60 + 60 + 500
    for part, idx in parts.items():
        w = {int(info["names"][i][-3:]) for i in idx if info["names"][i].startswith("chars")}
        assert w == seen[part]


def test_the_held_out_parts_are_those_of_the_character_classifier(data_dir):
    """The same items in train, val and test as nnlab.data.ocr_chars.split_char_set (defaults),
    so pages composed from its test part are unseen by both recognisers."""
    ocr_chars = pytest.importorskip("nnlab.data.ocr_chars")
    make_char_files(data_dir)
    chars = ocr_chars.load_char_set(ocr_chars.CharSource(), cache=False)
    theirs = ocr_chars.split_char_set(chars)
    _, info = glyph_pools("chars74k+nist+mnist")
    assert {n.split("/")[0] for n in chars.names} == {"chars74k", "nist", "mnist"}
    for part in ("train", "val", "test"):
        mine = {info["names"][i] for i in info["parts"][part]}
        assert mine == {chars.names[i] for i in theirs[part]}, part
