"""The Bonn epilepsy EEG database (Andrzejak et al., Phys. Rev. E 64, 061907, 2001), sets A, D, E.

Five sets of 100 single-channel segments, 23.6 s at 173.61 Hz = 4097 samples of a 12-bit ADC:
A (Z) healthy volunteers, eyes open, surface; B (O) eyes closed; C (N) and D (F) seizure-free
intervals, intracranial, C opposite and D within the epileptogenic zone; E (S) seizures. The copy
nnlab reads is one MATLAB file per set, `eeg_data` (4097, 100) int16, one segment per column
(`Bonn_eeg_AZ_100.mat`, `Bonn_eeg_DF_100.mat`, `Bonn_eeg_E_100.mat`; B and C are not in it).
The sampling rate is not stored in the files. There is no pre-ictal timing: the sets support
seizure *detection*, segment by segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab.data.registry import get_info, locate
from nnlab.errors import NNLabError

BONN_FS = 173.61  # Hz
SEGMENT_SAMPLES = 4097
SET_LETTERS = "ABCDE"
FILES = {"A": "Bonn_eeg_AZ_100.mat", "D": "Bonn_eeg_DF_100.mat", "E": "Bonn_eeg_E_100.mat"}
DESCRIPTION = {
    "A": "healthy, eyes open, surface",
    "B": "healthy, eyes closed, surface",
    "C": "interictal, opposite the epileptogenic zone, intracranial",
    "D": "interictal, epileptogenic zone, intracranial",
    "E": "ictal (seizures), intracranial",
}


@dataclass
class BonnSet:
    """Segments of one or more Bonn sets, in the order of the `sets` asked for."""

    x: np.ndarray  # (N, 4097) float32, ADC values as stored (about microvolts)
    sets: np.ndarray  # (N,) '<U1', the set letter of each segment
    names: list[str]  # 'A001' ... 'A100', 'D001' ...
    fs: float = BONN_FS

    def __len__(self) -> int:
        return len(self.x)

    def binary(self, pair: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(x (M, 4097), y (M,) int64, names) of the segments in `pair` ('AD-E': A and D -> 0,
        E -> 1); segments of other sets are left out."""
        negative, positive = pair_labels(pair)
        absent = sorted(set(negative + positive) - set(self.sets.tolist()))
        if absent:
            raise NNLabError(f"pair {pair} needs set(s) {absent}, not loaded")
        keep = np.isin(self.sets, negative + positive)
        y = np.isin(self.sets[keep], positive).astype(np.int64)
        return self.x[keep], y, [n for n, k in zip(self.names, keep) if k]


def pair_labels(pair: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """'AD-E' -> (('A', 'D'), ('E',)): the sets of class 0 and of class 1. Letters A-E, each at
    most once; both sides non-empty."""
    parts = pair.strip().upper().split("-")
    if len(parts) != 2 or not all(parts):
        raise NNLabError(f"pair '{pair}' is not of the form XY-Z (e.g. A-E, D-E, AD-E)")
    letters = parts[0] + parts[1]
    bad = sorted(set(letters) - set(SET_LETTERS))
    if bad:
        raise NNLabError(f"pair '{pair}': unknown set(s) {bad}; Bonn sets are A-E")
    if len(set(letters)) != len(letters):
        raise NNLabError(f"pair '{pair}' names a set twice")
    return tuple(parts[0]), tuple(parts[1])


def read_bonn_mat(path: str | Path) -> np.ndarray:
    """(N, 4097) float32 segments from one set's .mat file (`eeg_data`, (4097, N))."""
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... for a bad file
        raise NNLabError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    if "eeg_data" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise NNLabError(f"{path}: no variable 'eeg_data' (found {found})")
    data = np.asarray(mat["eeg_data"])
    if data.ndim != 2 or data.shape[0] != SEGMENT_SAMPLES or data.shape[1] < 1:
        raise NNLabError(
            f"{path}: eeg_data has shape {data.shape}, expected ({SEGMENT_SAMPLES}, N): "
            "one 4097-sample segment per column"
        )
    if not np.issubdtype(data.dtype, np.number) or not np.all(np.isfinite(data)):
        raise NNLabError(f"{path}: eeg_data is not finite numbers (dtype {data.dtype})")
    return np.ascontiguousarray(data.T, dtype=np.float32)  # (N, 4097)


def load_bonn(sets: tuple[str, ...] | str = ("A", "D", "E")) -> BonnSet:
    """The segments of `sets` (e.g. 'ADE' or ('A', 'E')), found via NNLAB_DATA or the cache."""
    letters = [s.upper() for s in sets]
    bad = [s for s in letters if s not in SET_LETTERS]
    if bad or len(set(letters)) != len(letters) or not letters:
        raise NNLabError(f"sets must be distinct letters A-E, got {list(sets)}")
    info = get_info("bonn")
    xs, names, tags = [], [], []
    for s in letters:
        if s not in FILES:
            raise NNLabError(f"bonn: set {s} is not in this copy (it has {', '.join(FILES)})")
        path = locate(info, FILES[s])
        if path is None:
            raise NNLabError(
                f"bonn: {FILES[s]} not found; set NNLAB_DATA to the folder that holds it "
                "or run `nnlab datasets fetch bonn`"
            )
        x = read_bonn_mat(path)
        xs.append(x)
        names += [f"{s}{i + 1:03d}" for i in range(len(x))]
        tags += [s] * len(x)
    return BonnSet(np.concatenate(xs), np.asarray(tags), names)
