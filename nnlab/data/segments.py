"""Single-channel EEG segments of any dataset laid out as one folder per class:

    DIR/
      interictal/   seg001.txt  seg002.txt  ...
      ictal/        ...

so that `nnlab seizure bonn --data DIR --pair interictal-ictal --fs 173.61` runs the Bonn
cross-validation on other segment datasets (other rates, other lengths, other class names).

A segment file holds one channel: text or CSV with one sample per line (as the Bonn
distribution's .txt files), a one-dimensional .npy array, or an EDF/EDF+ file with one signal
(its rate read from the file, its values in microvolts). Text and .npy files carry no rate:
`fs` gives it. Segments are stacked into one array: longer ones are cut to the shortest, and
the loader says how many were cut. Files of other types in a class folder are ignored; an
unreadable segment file is an error naming it (a dataset with holes would silently change the
folds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab.errors import NNLabError

SUFFIXES = (".txt", ".csv", ".npy", ".edf")


@dataclass
class SegmentSet:
    x: np.ndarray  # (N, L) float32, one segment per row
    y: np.ndarray  # (N,) int64: 1 for the classes after '-' in the pair, 0 before
    names: list[str]  # "class/file stem", unique
    fs: float  # Hz
    cut: int  # segments that were longer than L and were cut to it


def segment_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def class_folders(root: str | Path) -> list[str]:
    """The subfolders of root that hold segment files: the dataset's classes."""
    root = Path(root)
    if not root.is_dir():
        raise NNLabError(f"{root}: no such folder")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and segment_files(d))


def parse_pair(pair: str, classes: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """'interictal+normal-ictal' -> (('interictal', 'normal'), ('ictal',)): the class folders of
    label 0 and of label 1 (the seizure class)."""
    if pair.count("-") != 1:
        raise NNLabError(
            f"--pair must be CLASSES-CLASSES (class folders joined by '+'), e.g. "
            f"{'+'.join(classes[:-1]) or 'a'}-{classes[-1] if classes else 'b'}; got '{pair}'"
        )
    sides = tuple(tuple(n for n in side.split("+") if n) for side in pair.split("-"))
    unknown = [n for side in sides for n in side if n not in classes]
    if unknown:
        raise NNLabError(
            f"--pair: no class folder {', '.join(unknown)} (the folders with segments: "
            f"{', '.join(classes) or 'none'})"
        )
    negative, positive = sides
    if not negative or not positive or set(negative) & set(positive):
        raise NNLabError(f"--pair needs distinct, non-empty classes on both sides, got '{pair}'")
    return negative, positive


def read_segment(path: Path) -> tuple[np.ndarray, float | None]:
    """(samples (L,) float32, the file's rate or None) of one segment file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".edf":
            from nnlab.data.eeg import edf_header, read_edf

            head = edf_header(path)
            if len(head.labels) != 1:
                raise NNLabError(
                    f"{path}: {len(head.labels)} signals ({', '.join(head.labels)}); a segment "
                    "file holds one channel"
                )
            rec = read_edf(path)
            return rec.data[0], float(rec.fs)
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            x = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, dtype=np.float64)
    except NNLabError:
        raise
    except (OSError, ValueError) as e:
        raise NNLabError(f"{path}: not a readable segment ({type(e).__name__}: {e})") from None
    x = np.asarray(x)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1 or len(x) < 2 or not np.issubdtype(x.dtype, np.number):
        raise NNLabError(
            f"{path}: a segment file holds one channel of samples (one per line), got shape "
            f"{x.shape}"
        )
    if not np.isfinite(x).all():
        raise NNLabError(f"{path}: has non-finite samples (NaN or inf)")
    return x.astype(np.float32), None


def load_segment_folders(root: str | Path, pair: str, fs: float = 0.0) -> SegmentSet:
    """The segments of the class folders named in `pair`, stacked (N, L), labelled 0 / 1."""
    root = Path(root)
    negative, positive = parse_pair(pair, class_folders(root))
    rows, labels, names, rates = [], [], [], set()
    for label, side in ((0, negative), (1, positive)):
        for name in side:
            for path in segment_files(root / name):
                x, rate = read_segment(path)
                rows.append(x)
                labels.append(label)
                names.append(f"{name}/{path.stem}")
                if rate is not None:
                    rates.add(rate)
    if len(set(names)) != len(names):
        raise NNLabError(f"{root}: two segment files of one class share a name (stem)")
    if len(rates) > 1:
        raise NNLabError(f"{root}: EDF segments at different rates {sorted(rates)} Hz")
    if rates:  # EDF files say their rate (text files beside them are taken to share it)
        (rate,) = rates
        if fs and abs(fs - rate) > 1e-6 * rate:
            raise NNLabError(f"{root}: --fs {fs} but the EDF segments say {rate} Hz")
        fs = rate
    if not fs > 0:
        raise NNLabError(
            f"{root}: text and .npy segments carry no sampling rate: give it with --fs (Hz)"
        )
    length = min(len(x) for x in rows)
    cut = sum(len(x) > length for x in rows)
    x = np.stack([r[:length] for r in rows]).astype(np.float32)
    return SegmentSet(x, np.array(labels, dtype=np.int64), names, float(fs), cut)
