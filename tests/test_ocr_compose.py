"""Composed pages (truth boxes follow the geometry, every effect switches, touching and broken
letters are what they say, files are written whole), the Chars74K loader, and the canonical 32x32
form checked by statistics across NIST, MNIST and Chars74K."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from nnlab.data.chars74k import CLASS_NAMES, find_chars74k, load_chars74k, read_glyph
from nnlab.errors import NNLabError
from nnlab.ocr.compose import (
    ComposeConfig,
    _place,
    compose_page,
    random_text,
    read_truth,
    stroke_glyphs,
    write_pages,
)
from nnlab.ocr.lines import canonical_char, canonical_stats


@pytest.fixture(scope="module")
def glyphs():
    return stroke_glyphs(np.random.default_rng(0), per_class=2, height=48)


def _ink(image: np.ndarray) -> np.ndarray:
    """Pixels darker than halfway between the paper (the most common value) and black."""
    paper = np.bincount(image.ravel()).argmax()
    return image < paper * 0.6


def test_truth_boxes_follow_slant_rotation_and_tilt(glyphs):
    """One character per page, slanted, rotated and tilted: its true box is the box of the dark
    pixels on the image to within 2 px."""
    rng = np.random.default_rng(1)
    cfg = ComposeConfig.plain(char_height=40, rotation_deg=8.0, perspective=0.05, slant_deg=15.0)
    for ch in "A7WQ":
        image, truth = compose_page(glyphs, [ch], rng, cfg)
        ys, xs = np.nonzero(_ink(image))
        seen = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert np.abs(np.subtract(seen, truth.chars[0].box)).max() <= 2, (ch, seen, truth.chars[0])
    assert truth.angle_deg != 0.0


def test_a_turned_photo_and_its_boxes_turn_together(glyphs):
    """`turns`: the photo saved a quarter, half or three quarters turned (counter-clockwise); the
    true boxes turn with it (each still the box of its character's dark pixels to within 2 px),
    the size swaps for a quarter turn, the angle holds the turn, and the page is otherwise the
    page drawn without a turn (a single turn draws nothing)."""
    for turn in (0, 90, 180, 270):
        cfg = ComposeConfig.plain(char_height=40, turns=(turn,))
        image, truth = compose_page(glyphs, ["A7"], np.random.default_rng(2), cfg)
        upright, _ = compose_page(glyphs, ["A7"], np.random.default_rng(2), ComposeConfig.plain())
        assert np.array_equal(image, np.rot90(upright, turn // 90)), turn
        assert truth.size == image.shape and truth.angle_deg == turn
        labels, _ = ndimage.label(_ink(image))
        for c in truth.chars:
            x0, y0, x1, y1 = c.box
            part = labels[y0:y1, x0:x1]
            ys, xs = np.nonzero(np.isin(labels, np.unique(part[part > 0])))
            seen = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert np.abs(np.subtract(seen, c.box)).max() <= 2, (turn, c.char, seen, c.box)
    with pytest.raises(NNLabError, match="multiples of 90"):
        compose_page(glyphs, ["A"], np.random.default_rng(0), ComposeConfig.plain(turns=(45,)))


def test_every_effect_switches_on_and_off(glyphs):
    text = ["HELLO 42", "WORLD"]
    base = ComposeConfig.plain(char_height=24)

    def page(cfg):
        return compose_page(glyphs, text, np.random.default_rng(2), cfg)[0]

    plain = page(base)
    assert np.array_equal(plain, page(base))  # same seed, same page
    far = ~ndimage.binary_dilation(_ink(plain), iterations=4)
    assert len(np.unique(plain[far])) == 1  # plain paper: one flat value
    effects = {
        "touching_prob": 1.0,
        "broken_prob": 1.0,
        "ruled_lines": True,
        "texture": 0.05,
        "lighting": 0.5,
        "rotation_deg": 3.0,
        "perspective": 0.03,
        "blur": 0.03,
        "noise": 0.02,
        "jpeg_quality": 60,
    }
    for name, value in effects.items():
        other = page(ComposeConfig.plain(char_height=24, **{name: value}))
        assert other.shape != plain.shape or not np.array_equal(other, plain), name
    rgb = page(ComposeConfig.plain(char_height=24, rgb=True))
    assert rgb.shape == plain.shape + (3,) and rgb.dtype == np.uint8
    for cfg in (ComposeConfig.hard(char_height=24), ComposeConfig.plain(char_height=24)):
        assert page(cfg).dtype == np.uint8


def test_touching_pairs_touch_and_broken_strokes_break(glyphs):
    def parts(cfg, text):
        image, truth = compose_page(glyphs, text, np.random.default_rng(3), cfg)
        return ndimage.label(_ink(image), np.ones((3, 3)))[1], truth

    apart, _ = parts(ComposeConfig.plain(char_height=32), ["AB"])
    touching, truth = parts(ComposeConfig.plain(char_height=32, touching_prob=1.0), ["AB"])
    assert apart == 2 and touching == 1 and truth.chars[1].touching
    whole, _ = parts(ComposeConfig.plain(char_height=40), ["L"])
    broken, truth = parts(ComposeConfig.plain(char_height=40, broken_prob=1.0), ["L"])
    assert whole == 1 and broken == 2 and truth.chars[0].broken


def test_write_pages_writes_image_text_and_boxes(glyphs, tmp_path):
    cfg = ComposeConfig.plain(char_height=20)
    paths = write_pages(tmp_path / "pages", 3, glyphs, seed=4, cfg=cfg, n_lines=(2, 3), fmt="png")
    names = sorted(p.name for p in (tmp_path / "pages").iterdir())
    assert len(paths) == 3 and len(names) == 9 and not any(n.startswith(".") for n in names)
    for p in paths:
        image = np.asarray(Image.open(p))
        text = p.with_suffix(".txt").read_text().rstrip("\n")
        record = json.loads(p.with_suffix(".json").read_text())
        truth = read_truth(p)
        assert record["text"] == text == truth.text and tuple(record["size"]) == image.shape
        assert [c.char for c in truth.chars] == [c for c in text if c not in " \n"]
        for c in truth.chars:
            x0, y0, x1, y1 = c.box
            assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
            assert _ink(image)[y0:y1, x0:x1].any()
    again = write_pages(tmp_path / "again", 1, glyphs, seed=4, cfg=cfg, n_lines=(2, 3), fmt="jpg")
    assert again[0].suffix == ".jpg"
    assert again[0].with_suffix(".txt").read_text() == paths[0].with_suffix(".txt").read_text()
    with pytest.raises(NNLabError, match="png or jpg"):
        write_pages(tmp_path, 1, glyphs, fmt="gif")
    with pytest.raises(NNLabError, match="no glyph"):
        compose_page({"A": glyphs["A"]}, ["AB"], np.random.default_rng(0))


def test_random_text_uses_only_the_alphabet():
    rng = np.random.default_rng(5)
    lines = random_text(rng, 20, line_chars=18, alphabet="ABDEHLORTW0123")
    assert all(0 < len(line) <= 18 for line in lines)
    assert set("".join(lines)) <= set("ABDEHLORTW0123 ")
    with pytest.raises(NNLabError):
        random_text(rng, 1, alphabet="Q")  # no word and no digit


# ----------------------------------------------------------------------------- Chars74K


def _fake_chars74k(root, writers=(1, 2)):
    """The EnglishHnd layout with drawn 120x90 images: '0' (Sample001), 'A' (Sample011) and a
    lower-case folder (Sample037) that must be ignored."""
    for sample, shape in ((1, "ellipse"), (11, "triangle"), (37, "ellipse")):
        folder = root / "chars74k-hnd" / "English" / "Hnd" / "Img" / f"Sample{sample:03d}"
        folder.mkdir(parents=True)
        for w in writers:
            im = Image.new("RGB", (120, 90), "white")
            d = ImageDraw.Draw(im)
            if shape == "ellipse":
                d.ellipse((40, 20, 70 + w, 70), outline="black", width=4)
            else:
                d.polygon([(30, 75), (55, 15), (80 + w, 75)], outline="black", width=4)
            im.save(folder / f"img{sample:03d}-{w:03d}.png")
    return root


def test_chars74k_layout_labels_writers_and_crops(data_dir):
    _fake_chars74k(data_dir)
    d = load_chars74k()
    assert len(d) == 4  # lower case skipped
    assert [CLASS_NAMES[y] for y in d.labels] == ["0", "0", "A", "A"]
    assert d.writers.tolist() == [1, 2, 1, 2]
    for img in d.images:  # cropped to the ink: ink on all four borders
        assert img.dtype == np.uint8 and img.max() == 255
        m = img >= 128
        assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()
    assert [CLASS_NAMES[y] for y in load_chars74k(chars="A").labels] == ["A", "A"]
    assert load_chars74k(writers=[2]).writers.tolist() == [2, 2]
    assert max(load_chars74k(max_side=20).images[0].shape) == 20
    assert sorted(d.by_class()) == ["0", "A"]
    with pytest.raises(NNLabError, match="no class"):
        load_chars74k(chars="a")


def test_chars74k_bad_files(data_dir, tmp_path):
    _fake_chars74k(data_dir, writers=(1,))
    folder = find_chars74k() / "Sample001"
    (folder / "img001-009.png").write_bytes(b"not a png")
    with pytest.raises(NNLabError, match="not a readable image"):
        load_chars74k()
    Image.new("RGB", (50, 40), "white").save(tmp_path / "blank.png")
    with pytest.raises(NNLabError, match="no ink"):
        read_glyph(tmp_path / "blank.png")
    with pytest.raises(NNLabError, match="no English/Hnd/Img"):
        load_chars74k(root=tmp_path)


def test_chars74k_real_files(real_data):
    if find_chars74k() is None:
        pytest.skip("chars74k-hnd not in the real data folder")
    d = load_chars74k(chars="AZ09", writers=range(1, 4))
    assert len(d) == 12 and sorted(set(d.writers.tolist())) == [1, 2, 3]
    assert sorted(CLASS_NAMES[y] for y in set(d.labels.tolist())) == ["0", "9", "A", "Z"]
    for img in d.images:
        m = img >= 128
        assert max(img.shape) <= 128 and m[0].any() and m[-1].any() and m[:, 0].any()


# ----------------------------------------------------------------------------- canonical form

TOLERANCE = {  # how far apart two sources' statistics may be, in the canonical 32x32 form
    "com_y": 1.0,  # pixels
    "com_x": 1.0,
    "box_long": 0.5,
    "box_cy": 0.25,
    "box_cx": 0.25,
    "margin": 0.5,
    "stroke": 0.5,
}
INK_RATIO = 1.25  # mean ink fractions within a factor 1.25 (letters and digits differ in shape)


def _agree(a: dict, b: dict) -> list[str]:
    bad = [k for k, tol in TOLERANCE.items() if abs(a[k] - b[k]) > tol]
    hi, lo = max(a["ink_fraction"], b["ink_fraction"]), min(a["ink_fraction"], b["ink_fraction"])
    return bad + (["ink_fraction"] if hi > INK_RATIO * lo else [])


def test_canonical_form_agrees_across_nist_mnist_and_chars74k(real_data):
    """NIST letters (dark ink, 32x32, column-major on disk), MNIST digits (bright ink, 28x28, 20 px
    boxes) and Chars74K (dark ink, glyph of ~470 px on 1200x900) in the canonical form agree in
    ink share, centre of mass, box size and centre, margin and stroke width within TOLERANCE, with
    ink bright and a black border; the same images naively resized do not (the test can fail).
    Orientation: per letter, the mean canonical NIST image correlates with the mean Chars74K image
    better than its transpose or mirror image does."""
    from nnlab.data.mnist import find_split_files, load_mnist
    from nnlab.data.nist import find_nist_file, load_nist

    if find_nist_file("valid") is None or find_split_files("test") is None:
        pytest.skip("NIST or MNIST raw files not in the real data folder")
    if find_chars74k() is None:
        pytest.skip("chars74k-hnd not in the real data folder")
    x, y, _ = load_nist("valid")
    idx = np.concatenate([np.nonzero(y == k)[0][:8] for k in range(26)])  # 8 per letter
    mnist, _ = load_mnist("test")
    c74 = load_chars74k(writers=range(1, 5))  # 36 classes x 4 writers
    canon = {
        "nist": np.stack([canonical_char(im, ink_is_dark=True) for im in x[idx]]),
        "mnist": np.stack([canonical_char(im, ink_is_dark=False) for im in mnist[:150]]),
        "chars74k": np.stack([canonical_char(im, ink_is_dark=False) for im in c74.images]),
    }
    stats = {k: canonical_stats(v) for k, v in canon.items()}
    for k, s in stats.items():
        assert s["border"] < 0.01, k  # bright ink on black, nothing at the frame
    names = list(stats)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert _agree(stats[a], stats[b]) == [], (a, b, stats[a], stats[b])

    frames = [
        np.asarray(Image.open(p).convert("L").resize((32, 32), Image.BILINEAR))
        for p in c74.paths[:60]
    ]
    naive = {
        "nist": np.clip(1 - x[idx], 0, 1),
        "mnist": np.pad(mnist[:150] / 255.0, ((0, 0), (2, 2), (2, 2))),
        "chars74k": 1 - np.stack(frames) / 255.0,  # the whole canvas, not cropped
    }
    naive_stats = {k: canonical_stats(v) for k, v in naive.items()}
    assert _agree(naive_stats["nist"], naive_stats["mnist"])
    assert _agree(naive_stats["nist"], naive_stats["chars74k"])

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    letters = range(26)  # nnlab order: A-Z are 0-25 in both
    mean_n = [canon["nist"][y[idx] == k].mean(0) for k in letters]
    mean_c = [canon["chars74k"][c74.labels == k].mean(0) for k in letters]
    same = np.mean([corr(mean_n[k], mean_c[k]) for k in letters])
    transposed = np.mean([corr(mean_n[k].T, mean_c[k]) for k in letters])
    mirrored = np.mean([corr(mean_n[k][:, ::-1], mean_c[k]) for k in letters])
    assert same > max(transposed, mirrored) + 0.1, (same, transposed, mirrored)


def test_a_thin_stroke_keeps_its_ink_when_scaled_down():
    # a 1-px stroke on a tall glyph, placed 8x smaller: linear downscaling averages it to ~1/8,
    # which would leave no pixel >= 0.5 (no ink, no box, a crash in the truth boxes)
    glyph = np.zeros((96, 40), np.float32)
    glyph[:, 20] = 1.0
    g = _place(glyph, 12, 0.2)
    assert g.max() == pytest.approx(1.0, abs=1e-6)
    assert (g >= 0.5).any()
    # a glyph that keeps its ink is left as it is
    thick = np.zeros((24, 12), np.float32)
    thick[:, 4:8] = 1.0
    assert _place(thick, 24, 0.0).max() == pytest.approx(1.0, abs=1e-6)
