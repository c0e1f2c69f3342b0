"""The CMU 16-720 NIST character sets as MATLAB .mat files.

`nist36_{train,valid,test}.mat` (A-Z then 0-9) and the older `nist26_*.mat` (A-Z) hold
`<split>_data`, (N, 1024) floats -- a 32x32 image stored column-major, 1.0 = white background,
values slightly outside [0, 1] from resampling -- and one-hot `<split>_labels`, (N, K).
Whatever files a user has are served; the class names follow from the label width K.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import scipy.io

from nnlab.data.registry import get_info, locate
from nnlab.errors import NNLabError

SPLITS = ("train", "valid", "test")


def class_names(num_classes: int) -> list[str]:
    letters = list(string.ascii_uppercase)
    if num_classes == 26:
        return letters
    if num_classes == 36:
        return letters + list(string.digits)
    raise NNLabError(f"NIST labels have {num_classes} columns; expected 26 (A-Z) or 36 (A-Z, 0-9)")


def find_nist_file(split: str) -> Path | None:
    info = get_info("nist")
    for k in (36, 26):
        path = locate(info, f"nist{k}_{split}.mat")
        if path is not None:
            return path
    return None


def available_splits() -> list[str]:
    return [s for s in SPLITS if find_nist_file(s) is not None]


def read_nist_mat(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (images (N, 32, 32) float64 with 0 = ink and 1 = paper as stored, labels (N,) int64,
    class names) from one .mat file."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... for a bad file
        raise NNLabError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    keys = (f"{split}_data", f"{split}_labels")
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise NNLabError(f"{path}: missing variable(s) {missing} (found {found})")
    data, onehot = np.asarray(mat[keys[0]]), np.asarray(mat[keys[1]])
    if data.ndim != 2 or data.shape[1] != 1024:
        raise NNLabError(f"{path}: {keys[0]} has shape {data.shape}, expected (N, 1024)")
    if onehot.ndim != 2 or len(onehot) != len(data):
        raise NNLabError(f"{path}: {keys[1]} has shape {onehot.shape}, expected ({len(data)}, K)")
    if not np.all(np.isfinite(data)):
        raise NNLabError(f"{path}: {keys[0]} contains NaN or infinite values")
    if len(data) == 0:
        raise NNLabError(f"{path}: {keys[0]} holds no images")
    if data.max() > 1.5 or data.min() < -0.5:
        raise NNLabError(
            f"{path}: {keys[0]} ranges from {data.min():g} to {data.max():g}; expected about 0-1 "
            "(1 = paper): divide 0-255 images by 255"
        )
    if not np.all(onehot.sum(axis=1) == 1):
        raise NNLabError(f"{path}: {keys[1]} is not one-hot (row sums differ from 1)")
    names = class_names(onehot.shape[1])
    # column-major 32x32: reshape in C order gives the transpose of the picture
    images = data.reshape(-1, 32, 32).transpose(0, 2, 1)  # (N, 32, 32)
    return images.astype(np.float64), onehot.argmax(axis=1).astype(np.int64), names


def load_nist(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if split not in SPLITS:
        raise NNLabError(f"nist has splits {SPLITS}, not '{split}'")
    path = find_nist_file(split)
    if path is None:
        raise NNLabError(
            f"nist: no nist36_{split}.mat or nist26_{split}.mat found; "
            "set NNLAB_DATA to the folder "
            f"that holds them (available splits: {available_splits() or 'none'})"
        )
    return read_nist_mat(path, split)
