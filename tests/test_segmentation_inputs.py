"""Segmentation folders as datasets and devices leave them (`nnlab.data.segmentation`): masks
stored 0/1, as labels, in colour or in transparency; .gif masks; macOS's '._' files; two files of
one name; EXIF-rotated photos; 16-bit images. Each case once trained on wrong or empty masks
without a word, or stopped with a traceback or a misleading message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from nnlab.data.segmentation import load_folder, read_pair_uint8
from nnlab.errors import NNLabError

SIZE = 32


def disc(h=40, w=60) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return ((y - h / 2) ** 2 + (x - w / 3) ** 2 < (h / 4) ** 2).astype(np.uint8)  # (H, W) 0/1


def photo(h=40, w=60) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def pair(tmp_path, mask: Image.Image, name="a", suffix=".png", image=None):
    (tmp_path / "images").mkdir(parents=True, exist_ok=True)
    (tmp_path / "masks").mkdir(parents=True, exist_ok=True)
    (image or photo()).save(tmp_path / "images" / f"{name}.jpg")
    mask.save(tmp_path / "masks" / f"{name}{suffix}")
    return tmp_path / "images" / f"{name}.jpg", tmp_path / "masks" / f"{name}{suffix}"


@pytest.mark.parametrize(
    "kind,make,note",
    [
        ("0/255", lambda m: Image.fromarray(m * 255), None),
        ("0/1", lambda m: Image.fromarray(m), "two values below 128"),
        ("labels", lambda m: Image.fromarray((m * 2).astype(np.uint8)), "two values below 128"),
        ("blue", lambda m: Image.fromarray(np.stack([0 * m, 0 * m, m * 255], -1)), "two values"),
        ("red 128", lambda m: Image.fromarray(np.stack([m * 128, 0 * m, 0 * m], -1)), "two value"),
        ("alpha", lambda m: Image.fromarray(np.stack([0 * m] * 3 + [m * 255], -1), "RGBA"),
         "transparency"),
        ("gif", lambda m: Image.fromarray(m * 255), None),
    ],
)  # fmt: skip
def test_masks_as_datasets_store_them_give_the_same_foreground(tmp_path, kind, make, note):
    m = disc()
    suffix = ".gif" if kind == "gif" else ".png"
    ip, mp = pair(tmp_path, make(m), suffix=suffix)
    truth = read_pair_uint8(*pair(tmp_path / "ref", Image.fromarray(m * 255)), SIZE)[1]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        got = read_pair_uint8(ip, mp, SIZE)[1]
    np.testing.assert_array_equal(got, truth)
    notes = " ".join(str(w.message) for w in said)
    assert (note in notes) if note else notes == ""


def test_label_masks_of_several_classes_read_nonzero_as_foreground(tmp_path):
    m = disc()
    labels = m.copy()
    labels[:, 20:] *= 2  # two classes of lesion
    ip, mp = pair(tmp_path, Image.fromarray(labels))
    with pytest.warns(UserWarning, match="label masks .* nonzero read as foreground"):
        got = read_pair_uint8(ip, mp, SIZE)[1]
    truth = read_pair_uint8(*pair(tmp_path / "ref", Image.fromarray(m * 255)), SIZE)[1]
    np.testing.assert_array_equal(got, truth)


def test_a_folder_of_empty_masks_is_refused(tmp_path):
    for i in range(5):
        pair(tmp_path, Image.fromarray(np.zeros((40, 60), np.uint8)), name=f"p{i}")
    with pytest.raises(NNLabError, match="every mask is empty"):
        load_folder(tmp_path, SIZE, cache=False)


def test_files_systems_leave_and_two_files_of_one_name(tmp_path):
    for i in range(5):
        pair(tmp_path, Image.fromarray(disc() * 255), name=f"p{i}")
    (tmp_path / "images" / "._p0.jpg").write_bytes(b"\x00\x05\x16\x07Mac OS X" + bytes(100))
    (tmp_path / "masks" / "._p0.png").write_bytes(b"\x00\x05\x16\x07Mac OS X" + bytes(100))
    assert len(load_folder(tmp_path, SIZE, cache=False)) == 5
    photo().save(tmp_path / "images" / "p1.png")
    with pytest.raises(NNLabError, match=r"two files named p1 \(p1.jpg, p1.png\): keep one"):
        load_folder(tmp_path, SIZE, cache=False)


def test_photos_are_read_upright_as_viewers_show_them(tmp_path):
    """A phone photo stored sideways with an EXIF orientation tag: its mask was drawn on the
    upright view, so the image is turned by its tag before the two are paired."""
    upright = photo(40, 60)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; to be turned 270 degrees to view
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "images" / "a.jpg", exif=exif)
    Image.fromarray(disc(40, 60) * 255).save(tmp_path / "masks" / "a.png")  # 60 x 40, upright
    image, mask = read_pair_uint8(tmp_path / "images" / "a.jpg", tmp_path / "masks" / "a.png", 60)
    assert mask.sum() > 0 and image.shape == (3, 60, 60)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    a = (np.linspace(0, 4000, 40 * 60).reshape(40, 60)).astype(np.uint16)  # a 12-bit camera
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(a).save(tmp_path / "images" / "a.png")
    Image.fromarray(disc() * 255).save(tmp_path / "masks" / "a.png")
    image, _ = read_pair_uint8(tmp_path / "images" / "a.png", tmp_path / "masks" / "a.png", 60)
    assert image.max() == 255 and (image == 255).mean() < 0.05  # not 93% white


def test_masks_named_with_a_suffix_are_paired_and_said(tmp_path):
    """Carvana's car_mask.gif, ISIC's ISIC_0001_segmentation.png: one suffix for every mask."""
    from nnlab.data.segmentation import find_pairs

    for i in range(3):
        pair(tmp_path, Image.fromarray(disc() * 255), name=f"car{i}")
        (tmp_path / "masks" / f"car{i}.png").rename(tmp_path / "masks" / f"car{i}_mask.png")
    with pytest.warns(UserWarning, match="masks named NAME_mask: each paired with images/NAME"):
        pairs = find_pairs(tmp_path)
    assert [(n, m.name) for n, _, m in pairs] == [(f"car{i}", f"car{i}_mask.png") for i in range(3)]
    (tmp_path / "masks" / "car2_mask.png").rename(tmp_path / "masks" / "car2_manual1.png")
    with pytest.raises(NNLabError, match="image and mask names do not match"):
        find_pairs(tmp_path)
