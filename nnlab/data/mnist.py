"""MNIST from the original IDX files (LeCun et al. 1998): 60000 train / 10000 test, 28x28 uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnlab.data.idx import read_idx
from nnlab.data.registry import get_info, locate
from nnlab.errors import NNLabError

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}


def _locate(filename: str) -> Path | None:
    info = get_info("mnist")
    for name in (filename + ".gz", filename):  # gzipped as distributed, or unpacked by the user
        path = locate(info, name)
        if path is not None:
            return path
    return None


def find_split_files(split: str) -> tuple[Path, Path] | None:
    """(images, labels) paths of `split`, or None when either is missing."""
    images = _locate(f"{_PREFIX[split]}-images-idx3-ubyte")
    labels = _locate(f"{_PREFIX[split]}-labels-idx1-ubyte")
    return (images, labels) if images and labels else None


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (N, 28, 28) uint8, labels (N,) int64) of the 'train' or 'test' split."""
    if split not in SPLITS:
        raise NNLabError(f"mnist has splits {SPLITS}, not '{split}'")
    paths = find_split_files(split)
    if paths is None:
        raise NNLabError(
            f"mnist: the {split} IDX files were not found; run `nnlab datasets fetch mnist` or set "
            "NNLAB_DATA to a folder that holds them"
        )
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise NNLabError(
            f"{images_path}: expected a (N, H, W) uint8 array, got {images.shape} {images.dtype}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise NNLabError(
            f"{labels_path}: {labels.shape} labels do not match {len(images)} images in "
            f"{images_path.name}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise NNLabError(f"{labels_path}: labels stored as {labels.dtype}, expected integers")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise NNLabError(
            f"{labels_path}: labels outside 0-9 (from {labels.min()} to {labels.max()})"
        )
    if len(images) == 0:
        raise NNLabError(f"{images_path}: holds no images")
    return images, labels.astype(np.int64)
