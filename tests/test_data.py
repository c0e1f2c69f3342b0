"""Loaders on generated files in the real formats, bad files, and the real files when present."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.io

from nnlab.data import available_splits, load_image_set, load_splits
from nnlab.data.idx import read_idx, write_idx
from nnlab.data.mnist import load_mnist
from nnlab.data.nist import load_nist, read_nist_mat
from nnlab.errors import NNLabError


# ---- IDX ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
def test_idx_roundtrip(tmp_path, name, dtype):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(np.dtype(dtype).newbyteorder("="))
    if np.dtype(dtype) == np.uint8:
        a = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / name, a)
    b = read_idx(tmp_path / name)
    assert b.shape == a.shape and np.array_equal(a, b)


def test_idx_header_is_the_documented_one(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 28, 28), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3])  # magic 0x803
    assert raw[4:16] == (4).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert len(raw) == 16 + 4 * 28 * 28


def test_idx_bad_files(tmp_path):
    write_idx(tmp_path / "ok.gz", np.zeros((10, 4, 4), np.uint8))
    raw = gzip.decompress((tmp_path / "ok.gz").read_bytes())
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(NNLabError, match="truncated or corrupt"):
        read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(NNLabError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(NNLabError, match="not an IDX file"):
        read_idx(tmp_path / "empty")
    gz = (tmp_path / "ok.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(NNLabError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "cut.gz")


# ---- MNIST --------------------------------------------------------------------------------------
def _fake_mnist(folder, n_train=50, n_test=20, gz=True, labels=None):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
        y = labels if labels is not None else rng.integers(0, 10, n).astype(np.uint8)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loader_on_generated_files(data_dir, gz):
    _fake_mnist(data_dir / "mnist", gz=gz)
    x, y = load_mnist("train")
    assert x.shape == (50, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    s = load_image_set("mnist", "test")
    assert s.images.shape == (20, 1, 28, 28) and s.images.dtype == np.float32
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0


def test_mnist_errors(data_dir):
    with pytest.raises(NNLabError, match="nnlab datasets fetch mnist"):
        load_mnist("train")
    _fake_mnist(data_dir, labels=np.array([3] * 49, np.uint8))
    with pytest.raises(NNLabError, match="do not match"):
        load_mnist("train")
    _fake_mnist(data_dir, n_train=5, labels=np.array([1, 2, 3, 4, 12], np.uint8))
    with pytest.raises(NNLabError, match="outside 0-9"):
        load_mnist("train")
    with pytest.raises(NNLabError, match="splits"):
        load_mnist("validation")


def test_mnist_labels_below_0_or_not_integers_are_refused(data_dir):
    _fake_mnist(data_dir, n_train=4, labels=np.array([1, -1, 3, 4], np.int32))
    with pytest.raises(NNLabError, match="outside 0-9"):
        load_mnist("train")
    _fake_mnist(data_dir, n_train=4, labels=np.array([1, 4.5, 3, 4], np.float32))
    with pytest.raises(NNLabError, match="expected integers"):
        load_mnist("train")


def test_mnist_files_come_from_one_folder(data_dir, monkeypatch):
    """Fashion-MNIST and KMNIST ship under MNIST's file names. A `mnist` folder with only the
    train files beside a complete `fashion-mnist` folder: the test split is missing, not taken
    from fashion-mnist (a model scored on another dataset, 4 % accuracy, said nothing). A
    folder of another name is read only when no folder of MNIST's own names holds its files,
    all four files from it, and said."""
    from nnlab.data import registry

    monkeypatch.setattr(registry, "_ELSEWHERE_SAID", set())
    _fake_mnist(data_dir / "fashion-mnist", n_train=30, n_test=7)
    _fake_mnist(data_dir / "mnist", n_train=12, n_test=5)
    for f in (data_dir / "mnist").glob("t10k-*"):
        f.unlink()
    assert len(load_mnist("train")[0]) == 12
    with pytest.raises(NNLabError, match="test IDX files were not found"):
        load_mnist("test")
    with pytest.warns(UserWarning, match="the test split is carved from them"):
        assert sum(len(s) for s in load_splits("mnist").values()) == 12
    for f in (data_dir / "mnist").iterdir():
        f.unlink()
    with pytest.warns(UserWarning, match="read from .*fashion-mnist"):
        assert len(load_mnist("test")[0]) == 7
    assert len(load_mnist("train")[0]) == 30


def test_splits_that_cannot_share_a_model_are_refused_before_training(data_dir):
    rng = np.random.default_rng(0)
    _fake_mnist(data_dir / "mnist")
    write_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz",
              rng.integers(0, 256, (20, 32, 32), np.uint8))  # fmt: skip
    with pytest.raises(NNLabError, match="test images are 1x32x32 but train images are 1x28x28"):
        load_splits("mnist")


# ---- NIST ---------------------------------------------------------------------------------------
def _fake_nist(path, split, k, n=None, rng=None):
    rng = rng or np.random.default_rng(0)
    n = n or 3 * k
    labels = np.arange(n) % k
    images = np.ones((n, 32, 32))  # white paper
    images[:, 2:10, 20:30] = 0.0  # ink in the top-right corner of every picture
    data = images.transpose(0, 2, 1).reshape(n, 1024)  # stored column-major, as the course does
    data += rng.normal(0, 0.01, data.shape)  # resampling overshoot outside [0, 1]
    scipy.io.savemat(
        path, {f"{split}_data": data, f"{split}_labels": np.eye(k, dtype=np.uint8)[labels]}
    )
    return labels


@pytest.mark.parametrize(
    "k,names", [(26, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), (36, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")]
)
def test_nist_loader_classes_and_orientation(data_dir, k, names):
    labels = _fake_nist(data_dir / f"nist{k}_train.mat", "train", k)
    images, y, classes = load_nist("train")
    assert classes == list(names)
    assert np.array_equal(y, labels)
    assert images.shape == (3 * k, 32, 32)
    # the column-major storage is undone: ink stays in the top-right corner
    assert images[:, 2:10, 20:30].mean() < 0.05 and images[:, 20:30, 2:10].mean() > 0.95
    s = load_image_set("nist", "train")  # ink bright, clipped to [0, 1]
    assert s.images.min() >= 0 and s.images.max() <= 1 and s.images[:, 0, 2:10, 20:30].mean() > 0.95


def test_nist_prefers_36_and_serves_what_exists(data_dir):
    _fake_nist(data_dir / "nist26_valid.mat", "valid", 26)
    assert available_splits("nist") == ["valid"]
    _fake_nist(data_dir / "nist36_valid.mat", "valid", 36)
    assert len(load_nist("valid")[2]) == 36
    with pytest.raises(NNLabError, match="available splits"):
        load_nist("test")
    splits = load_splits("nist", val_fraction=0.1, seed=1)  # one file: partitioned 70/10/20
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 76, "val": 10, "test": 22}  # 108 images: round(0.7 n), round(0.8 n)
    assert len(np.unique(splits["test"].labels)) == 22  # 3 per class: spread, not all in one part


def test_nist_bad_files(tmp_path):
    (tmp_path / "junk.mat").write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(NNLabError, match="not a readable MATLAB file"):
        read_nist_mat(tmp_path / "junk.mat", "train")
    scipy.io.savemat(tmp_path / "wrong.mat", {"train_data": np.zeros((4, 1024))})
    with pytest.raises(NNLabError, match="missing variable"):
        read_nist_mat(tmp_path / "wrong.mat", "train")
    scipy.io.savemat(
        tmp_path / "w.mat", {"train_data": np.zeros((4, 1024)), "train_labels": np.ones((4, 26))}
    )
    with pytest.raises(NNLabError, match="not one-hot"):
        read_nist_mat(tmp_path / "w.mat", "train")
    scipy.io.savemat(
        tmp_path / "k.mat", {"train_data": np.zeros((4, 1024)), "train_labels": np.eye(10)[:4]}
    )
    with pytest.raises(NNLabError, match="26 .* or 36"):
        read_nist_mat(tmp_path / "k.mat", "train")
    scipy.io.savemat(
        tmp_path / "s.mat", {"train_data": np.zeros((4, 1000)), "train_labels": np.eye(26)[:4]}
    )
    with pytest.raises(NNLabError, match=r"expected \(N, 1024\)"):
        read_nist_mat(tmp_path / "s.mat", "train")
    bad = np.zeros((4, 1024))
    bad[1, 5] = np.nan
    scipy.io.savemat(tmp_path / "n.mat", {"train_data": bad, "train_labels": np.eye(26)[:4]})
    with pytest.raises(NNLabError, match="NaN"):
        read_nist_mat(tmp_path / "n.mat", "train")
    # re-saved as 0-255: read as 0-1 it would be all paper (ink = 1 - x clipped), trained on
    # blank images without a word
    scipy.io.savemat(tmp_path / "b.mat", {"train_data": np.full((4, 1024), 255.0),
                                          "train_labels": np.eye(26)[:4]})  # fmt: skip
    with pytest.raises(NNLabError, match="divide 0-255 images by 255"):
        read_nist_mat(tmp_path / "b.mat", "train")


# ---- digits and splits --------------------------------------------------------------------------
def test_digits_and_splits_are_stratified_disjoint_and_seeded():
    whole = load_image_set("digits", "all")
    assert whole.images.shape == (1797, 1, 8, 8) and whole.images.max() == 1.0
    a, b = load_splits("digits", seed=3), load_splits("digits", seed=3)
    assert all(np.array_equal(a[k].labels, b[k].labels) for k in a)
    assert sum(len(v) for v in a.values()) == 1797
    # disjoint: no image appears in two splits
    keys = {k: {v.images[i].tobytes() for i in range(len(v))} for k, v in a.items()}
    assert not (keys["train"] & keys["test"]) and not (keys["val"] & keys["test"])
    assert np.bincount(a["test"].labels).min() >= 30  # every class in the test split
    c = load_splits("digits", seed=4)
    assert not np.array_equal(a["test"].images, c["test"].images)
    assert len(load_splits("digits", limit=100)["train"]) == 100


# ---- the real files ----------------------------------------------------------------------------
def test_real_mnist(real_data):
    x, y = load_mnist("train")
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(x.mean() - 33.32) < 0.01
    xt, yt = load_mnist("test")
    assert xt.shape == (10000, 28, 28)
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_nist26(real_data):
    images, y, names = load_nist("valid")
    assert images.shape == (1300, 32, 32) and len(names) == 26
    assert np.bincount(y).tolist() == [50] * 26
    assert -0.2 < images.min() < 0 and 1 < images.max() < 1.2  # resampling overshoot, as documented
    # upright letters: ink (dark) mass lies in the middle rows, paper at the top and bottom edges
    assert images[:, :2, :].mean() > images[:, 12:20, :].mean()
