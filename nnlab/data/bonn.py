"""The Bonn epilepsy EEG database (Andrzejak et al., Phys. Rev. E 64, 061907, 2001), sets A, D, E.

Five sets of 100 single-channel segments, 23.6 s at 173.61 Hz = 4097 samples of a 12-bit ADC:
A (Z) healthy volunteers, eyes open, surface; B (O) eyes closed; C (N) and D (F) seizure-free
intervals, intracranial, C opposite and D within the epileptogenic zone; E (S) seizures. The copy
nnlab reads is one MATLAB file per set, `eeg_data` (4097, 100) int16, one segment per column
(`Bonn_eeg_AZ_100.mat`, `Bonn_eeg_DF_100.mat`, `Bonn_eeg_E_100.mat`; B and C are not in it).
The sampling rate is not stored in the files. There is no pre-ictal timing: the sets support
seizure *detection*, segment by segment.

The original distribution (Universitat Pompeu Fabra) is read too, for all five sets: one zip per
set named by its original letter (Z, O, N, F, S: `Z.zip` holds `Z001.txt` ... `Z100.txt`, one
sample per line), or those zips unpacked into folders `Z/`, `O/`, ... (or `A/` ... `E/`). A set
is looked for as the .mat of this copy first, then as a folder, then as a zip, wherever
NNLAB_DATA or the cache may hold the Bonn files.
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
ORIGINAL = {"A": "Z", "B": "O", "C": "N", "D": "F", "E": "S"}  # the letters of the original files
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


def parse_segment(text: str, where: str) -> np.ndarray:
    """One original Bonn text file (one sample per line) -> (4097,) float32."""
    try:
        x = np.array(text.split(), dtype=np.float32)
    except ValueError as e:
        raise NNLabError(f"{where}: not a column of numbers ({e})") from None
    if len(x) != SEGMENT_SAMPLES or not np.all(np.isfinite(x)):
        raise NNLabError(
            f"{where}: {len(x)} samples, expected {SEGMENT_SAMPLES} finite numbers (one per line)"
        )
    return x


def _is_segment(name: str) -> bool:
    """A .txt file (any case) and not one of macOS's resource forks (__MACOSX/, ._Z001.txt)."""
    fork = name.rsplit("/", 1)[-1].startswith("._") or "__MACOSX" in name
    return name.lower().endswith(".txt") and not fork


def _texts_of(path: Path) -> list[tuple[str, str]]:
    """(name, text) of the .txt files (any case) in a folder or a zip, sorted by name."""
    import zipfile

    if path.is_dir():
        files = sorted(f for f in path.iterdir() if _is_segment(f.name) and f.is_file())
        return [(str(f), f.read_text(errors="replace")) for f in files]
    try:
        with zipfile.ZipFile(path) as z:
            names = sorted(n for n in z.namelist() if _is_segment(n))
            return [(f"{path}:{n}", z.read(n).decode(errors="replace")) for n in names]
    except (zipfile.BadZipFile, OSError) as e:
        raise NNLabError(f"{path}: not a readable zip ({type(e).__name__}: {e})") from None


def read_bonn_texts(path: str | Path) -> np.ndarray:
    """(N, 4097) float32 segments of one set in the original distribution: a folder or a zip of
    text files, one segment per file, in file-name order."""
    path = Path(path)
    texts = _texts_of(path)
    if not texts:
        raise NNLabError(f"{path}: no .txt segment files in it")
    return np.stack([parse_segment(t, name) for name, t in texts])


def _find_set(info, s: str) -> Path | None:
    """Where set `s` is: this copy's .mat, else a folder or zip of the original text files."""
    from nnlab.data.registry import candidate_paths

    if s in FILES and (path := locate(info, FILES[s])) is not None:
        return path
    for name in (ORIGINAL[s], s, ORIGINAL[s].lower(), s.lower()):
        for path in candidate_paths(info, name):
            if path.is_dir() and any(_is_segment(f.name) for f in path.iterdir()):
                return path
        for path in candidate_paths(info, f"{name}.zip"):
            if path.is_file():
                return path
    return None


def load_bonn(sets: tuple[str, ...] | str = ("A", "D", "E")) -> BonnSet:
    """The segments of `sets` (e.g. 'ADE' or ('A', 'E')), found via NNLAB_DATA or the cache:
    this copy's .mat files (A, D, E) or the original text files (any set, see the module)."""
    letters = [s.upper() for s in sets]
    bad = [s for s in letters if s not in SET_LETTERS]
    if bad or len(set(letters)) != len(letters) or not letters:
        raise NNLabError(f"sets must be distinct letters A-E, got {list(sets)}")
    info = get_info("bonn")
    xs, names, tags = [], [], []
    for s in letters:
        path = _find_set(info, s)
        if path is None:
            mat = f"{FILES[s]}, " if s in FILES else ""
            raise NNLabError(
                f"bonn: set {s} not found (looked for {mat}a folder {ORIGINAL[s]}/ or {s}/ of "
                f"text files, or {ORIGINAL[s]}.zip); set NNLAB_DATA to the folder that holds it"
                + (" or run `nnlab datasets fetch bonn`" if s in FILES else "")
            )
        x = read_bonn_mat(path) if path.suffix.lower() == ".mat" else read_bonn_texts(path)
        xs.append(x)
        names += [f"{s}{i + 1:03d}" for i in range(len(x))]
        tags += [s] * len(x)
    return BonnSet(np.concatenate(xs), np.asarray(tags), names)


def stitch(segments: list[np.ndarray] | np.ndarray, fs: float, fade_s: float = 0.5):
    """Segments (S, n) end to end as one signal, for running a detector over a "recording" of
    segments (Bonn's are 23.6-s cuts, not one continuous recording). Each junction is a linear
    cross-fade: the last F = round(fade_s * fs) samples of one segment and the first F of the next
    overlap, weighted (1 - w, w) with w rising from 0 to 1, so that no junction is a step (a step
    is a broadband transient, a seam any model could learn to see). Returns (x (S n - (S - 1) F,)
    float32, bounds (S + 1,)): segment i owns [bounds[i], bounds[i + 1]) in samples, the
    junctions at the middle of each cross-fade."""
    segs = [np.asarray(s, dtype=np.float64).reshape(-1) for s in segments]
    if not segs:
        raise NNLabError("stitch: no segments")
    F = int(round(fade_s * fs))
    if F < 0 or any(len(s) <= 2 * F for s in segs):
        raise NNLabError(f"stitch: a {fade_s:g}-s cross-fade needs segments longer than twice it")
    w = (np.arange(F) + 0.5) / F if F else np.zeros(0)  # (F,) from 0 to 1, symmetric
    out = [segs[0][: len(segs[0]) - F]]
    bounds = [0]
    pos = len(out[0])  # where the next junction's cross-fade begins
    for prev, seg in zip(segs[:-1], segs[1:]):
        out.append((1 - w) * prev[len(prev) - F :] + w * seg[:F])
        bounds.append(pos + F // 2)
        out.append(seg[F : len(seg) - F])
        pos += F + len(out[-1])
    out.append(segs[-1][len(segs[-1]) - F :] if F else np.zeros(0))
    x = np.concatenate(out).astype(np.float32)
    return x, np.asarray(bounds + [len(x)], dtype=np.int64)
