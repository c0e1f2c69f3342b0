"""MNIST from the original IDX files (LeCun et al. 1998): 60000 train / 10000 test, 28x28 uint8."""

from __future__ import annotations

import numpy as np

from nnlab.data.idx import read_idx
from nnlab.data.registry import get_info, locate
from nnlab.errors import NNLabError

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}


def _find(filename: str):
    info = get_info("mnist")
    for name in (filename + ".gz", filename):  # gzipped as distributed, or unpacked by the user
        path = locate(info, name)
        if path is not None:
            return path
    raise NNLabError(
        f"mnist: {filename}.gz not found; run `nnlab datasets fetch mnist` or set NNLAB_DATA "
        "to a folder that holds the IDX files")


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (N, 28, 28) uint8, labels (N,) int64) of the 'train' or 'test' split."""
    if split not in SPLITS:
        raise NNLabError(f"mnist has splits {SPLITS}, not '{split}'")
    images_path = _find(f"{_PREFIX[split]}-images-idx3-ubyte")
    labels_path = _find(f"{_PREFIX[split]}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise NNLabError(f"{images_path}: expected a (N, H, W) uint8 array, got {images.shape} {images.dtype}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise NNLabError(
            f"{labels_path}: {labels.shape} labels do not match {len(images)} images in {images_path.name}")
    if labels.max(initial=0) > 9:
        raise NNLabError(f"{labels_path}: labels outside 0-9 (max {labels.max()})")
    return images, labels.astype(np.int64)
