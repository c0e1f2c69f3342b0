"""Segmentation folders (issue 6, first step): pairs by name, binarised masks, resizing with the
aspect ratio kept, clear errors naming the file; on generated polyps and on the real Kvasir-SEG."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nnlab.data.segmentation import find_pairs, kvasir_root, load_folder, read_pair
from nnlab.data.splits import split_by_item
from nnlab.data.synthetic import make_polyp_folder
from nnlab.errors import NNLabError


def test_synthetic_folder_loads_with_exact_masks(tmp_path):
    root = make_polyp_folder(tmp_path / "polyps", n=6, size=(48, 64))
    data = load_folder(root, size=32, aspect="stretch")
    assert data.images.shape == (6, 3, 32, 32) and data.masks.shape == (6, 1, 32, 32)
    assert set(np.unique(data.masks)) <= {0.0, 1.0} and 0.02 < data.masks.mean() < 0.5
    # the blob is redder/brighter than the background: the mask is recoverable from the image
    inside = data.images[:, 0][data.masks[:, 0] == 1].mean()
    outside = data.images[:, 0][data.masks[:, 0] == 0].mean()
    assert inside > outside + 0.1


def test_pad_keeps_the_aspect_ratio(tmp_path):
    root = make_polyp_folder(tmp_path / "p", n=1, size=(40, 80))
    ((_, ip, mp),) = find_pairs(root)
    image, mask = read_pair(ip, mp, 40, aspect="pad")
    assert image.shape == (3, 40, 40)
    # 80 wide x 40 high padded to 80x80: black bands of 20 rows above and below -> 10 rows at 40 px
    assert image[:, :8].max() == 0 and image[:, -8:].max() == 0 and image[:, 12:28].min() > 0
    assert mask[:, :8].max() == 0


def test_errors_name_the_file(tmp_path):
    root = make_polyp_folder(tmp_path / "e", n=3)
    (root / "masks" / "case001.png").unlink()
    with pytest.raises(NNLabError, match="no mask for case001"):
        find_pairs(root)
    root = make_polyp_folder(tmp_path / "s", n=2)
    Image.new("L", (10, 10)).save(root / "masks" / "case000.png")
    with pytest.raises(NNLabError, match=r"case000.png: mask is 10x10 but its image is 64x48"):
        load_folder(root)
    root = make_polyp_folder(tmp_path / "g", n=2)
    grey = np.random.default_rng(0).integers(0, 256, (48, 64)).astype(np.uint8)
    Image.fromarray(grey).save(root / "masks" / "case001.png")
    with pytest.raises(NNLabError, match="case001.png: not a binary mask"):
        load_folder(root)
    root = make_polyp_folder(tmp_path / "u", n=2)
    (root / "images" / "case000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(NNLabError, match="case000.jpg: unreadable image"):
        load_folder(root)
    with pytest.raises(NNLabError, match="expected the folders images/ and masks/"):
        find_pairs(tmp_path)


def test_split_is_fixed_and_60_20_20():
    a, b = split_by_item(1000, seed=0), split_by_item(1000, seed=0)
    assert {k: len(v) for k, v in a.items()} == {"train": 600, "val": 200, "test": 200}
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert len(np.unique(np.concatenate(list(a.values())))) == 1000


def test_real_kvasir_pairs(real_data):
    root = kvasir_root()
    pairs = find_pairs(root)
    assert len(pairs) == 1000
    fractions = []
    for _name, ip, mp in pairs[::100]:
        image, mask = read_pair(ip, mp, 64)
        assert image.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
        fractions.append(mask.mean())
    assert 0.0 < min(fractions) and max(fractions) < 0.9  # polyp fraction 0.005-0.812 per SOURCE.md
