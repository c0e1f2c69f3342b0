"""Single-channel EEG segments of any dataset laid out as one folder per class:

    DIR/
      interictal/   seg001.txt  seg002.txt  ...
      ictal/        ...

so that `nnlab seizure bonn --data DIR --pair interictal-ictal --fs 173.61` runs the Bonn
cross-validation on other segment datasets (other rates, other lengths, other class names).

A segment file holds one channel: text or CSV with one sample per line (as the Bonn
distribution's .txt files), a one-dimensional .npy array, a MATLAB .mat file with one array of
samples (as the Neurology & Sleep Centre, New Delhi, set ships its 5.12-s segments; a scalar
variable named fs, srate, sfreq or sampling_rate gives the rate), or an EDF/EDF+ file with one
signal (its rate read from the file, its values in microvolts). Text, .npy and .mat files without
a rate variable carry no rate: `fs` gives it. Segments are stacked into one array: longer ones
are cut to the shortest, and the loader says how many were cut. Files of other types in a class
folder are ignored; an unreadable segment file is an error naming it (a dataset with holes would
silently change the folds).

A dataset may also be one table (`load_segment_table`): a .csv or .tsv file of one segment per
row, such as the UCI "Epileptic Seizure Recognition" set (Bonn's recordings cut into 11,500 1-s
rows of 178 samples, X1..X178, and a class y from 1, seizure, to 5).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab.errors import NNLabError

SUFFIXES = (".txt", ".csv", ".npy", ".mat", ".edf")
# names of a .mat file's scalar that holds the sampling rate (compared in lower case)
RATE_NAMES = frozenset({"fs", "srate", "sfreq", "sampling_rate", "samplingrate", "sample_rate"})


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


def parse_pair(
    pair: str,
    classes: list[str],
    noun: str = "class folder",
    among: str = "the folders with segments",
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """'interictal+normal-ictal' -> (('interictal', 'normal'), ('ictal',)): the class folders of
    label 0 and of label 1 (the seizure class). Folder names may hold a '-' themselves
    ('pre-ictal-ictal'): the pair is split at the one '-' that leaves class folders on both
    sides. `noun` and `among` name the classes in the messages (a table's: class values)."""

    def sides(i: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(n for n in pair[:i].split("+") if n), tuple(
            n for n in pair[i + 1 :].split("+") if n
        )

    dashes = [i for i, ch in enumerate(pair) if ch == "-"]
    fits = [sides(i) for i in dashes if all(n in classes for side in sides(i) for n in side)]
    if len(fits) > 1:
        raise NNLabError(
            f"--pair '{pair}' splits into {noun}s in {len(fits)} ways "
            f"({'; '.join(' vs '.join('+'.join(s) for s in f) for f in fits)}); rename a folder"
        )
    if not fits:
        if len(dashes) != 1:
            raise NNLabError(
                f"--pair must be CLASSES-CLASSES ({noun}s joined by '+'), e.g. "
                f"{'+'.join(classes[:-1]) or 'a'}-{classes[-1] if classes else 'b'}; got '{pair}'"
            )
        unknown = [n for side in sides(dashes[0]) for n in side if n not in classes]
        raise NNLabError(
            f"--pair: no {noun} {', '.join(unknown)} ({among}: {', '.join(classes) or 'none'})"
        )
    negative, positive = fits[0]
    if not negative or not positive or set(negative) & set(positive):
        raise NNLabError(f"--pair needs distinct, non-empty classes on both sides, got '{pair}'")
    return negative, positive


def read_segment(path: Path, column: int = -1) -> tuple[np.ndarray, float | None]:
    """(samples (L,) float32, the file's rate or None) of one segment file. A file of several
    channels (columns of a text file, rows or columns of an array: samples run along the longer
    axis; signals of an EDF file) is read only with `column`, the channel to take (0-based)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".edf":
            from nnlab.data.eeg import edf_header, read_edf

            head = edf_header(path)
            if len(head.labels) != 1 and not 0 <= column < len(head.labels):
                raise NNLabError(
                    f"{path}: {len(head.labels)} signals ({', '.join(head.labels)}); a segment "
                    "file holds one channel, or pick one with --column (0-based)"
                )
            rec = read_edf(path, [head.labels[column if len(head.labels) > 1 else 0]])
            return rec.data[0], float(rec.fs)
        if suffix == ".mat":
            x, rate = read_mat(path)
            return checked(path, x, column), rate
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            x = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, dtype=np.float64)
    except NNLabError:
        raise
    except (OSError, ValueError) as e:
        raise NNLabError(f"{path}: not a readable segment ({type(e).__name__}: {e})") from None
    return checked(path, x, column), None


def checked(path: Path, x, column: int = -1) -> np.ndarray:
    """x as one channel of float32 samples (channel `column` of a 2-D array whose samples run
    along its longer axis), or an error naming the file."""
    x = np.asarray(x)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    elif x.ndim == 2 and np.issubdtype(x.dtype, np.number):
        channels = x if x.shape[0] < x.shape[1] else x.T  # (K, L)
        if not 0 <= column < len(channels):
            raise NNLabError(
                f"{path}: {len(channels)} channels of {channels.shape[1]} samples; a segment "
                "file holds one channel, or pick one with --column (0-based)"
            )
        x = channels[column]
    if x.ndim != 1 or len(x) < 2 or not np.issubdtype(x.dtype, np.number):
        raise NNLabError(
            f"{path}: a segment file holds one channel of samples (one per line), got shape "
            f"{x.shape}"
        )
    if not np.isfinite(x).all():
        raise NNLabError(f"{path}: has non-finite samples (NaN or inf)")
    return x.astype(np.float32)


def read_mat(path: Path) -> tuple[np.ndarray, float | None]:
    """(the one numeric array of a .mat file, its rate variable or None)."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path)
    except NotImplementedError:  # scipy reads MATLAB v4 to v7.2; v7.3 is HDF5
        raise NNLabError(
            f"{path}: a MATLAB v7.3 (HDF5) file; save it with save(..., '-v7') to read it here"
        ) from None
    except Exception as e:  # noqa: BLE001 - scipy raises MatReadError, ValueError, TypeError...
        raise NNLabError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from None
    arrays = {
        k: v
        for k, v in content.items()
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and np.issubdtype(v.dtype, np.number)
    }
    rates = [float(v.item()) for k, v in arrays.items() if k.lower() in RATE_NAMES and v.size == 1]
    signals = {k: v for k, v in arrays.items() if v.size > 1}
    if len(signals) != 1:
        raise NNLabError(
            f"{path}: a segment file holds one array of samples, this one "
            + (f"{len(signals)}: {', '.join(signals)}" if signals else "none")
        )
    if rates and not rates[0] > 0:
        raise NNLabError(f"{path}: its sampling rate variable says {rates[0]}")
    return next(iter(signals.values())), rates[0] if rates else None


def load_segment_folders(
    root: str | Path, pair: str, fs: float = 0.0, column: int = -1
) -> SegmentSet:
    """The segments of the class folders named in `pair`, stacked (N, L), labelled 0 / 1
    (channel `column` of files with several: `read_segment`)."""
    root = Path(root)
    negative, positive = parse_pair(pair, class_folders(root))
    rows, labels, names, rates = [], [], [], set()
    for label, side in ((0, negative), (1, positive)):
        for name in side:
            for path in segment_files(root / name):
                x, rate = read_segment(path, column)
                rows.append(x)
                labels.append(label)
                names.append(f"{name}/{path.stem}")
                if rate is not None:
                    rates.add(rate)
    if len(set(names)) != len(names):
        raise NNLabError(f"{root}: two segment files of one class share a name (stem)")
    if len(rates) > 1:
        raise NNLabError(f"{root}: segments at different rates {sorted(rates)} Hz")
    if rates:  # EDF (and some .mat) files say their rate; the others are taken to share it
        (rate,) = rates
        if fs and abs(fs - rate) > 1e-6 * rate:
            raise NNLabError(f"{root}: --fs {fs} but the segment files say {rate} Hz")
        fs = rate
    if not fs > 0:
        raise NNLabError(
            f"{root}: text and .npy segments carry no sampling rate: give it with --fs (Hz)"
        )
    length = min(len(x) for x in rows)
    cut = sum(len(x) > length for x in rows)
    x = np.stack([r[:length] for r in rows]).astype(np.float32)
    return SegmentSet(x, np.array(labels, dtype=np.int64), names, float(fs), cut)


# the names of a table's class column (compared in lower case); else its last column
TABLE_LABELS = ("y", "label", "labels", "class", "target")
TABLE_SUFFIXES = (".csv", ".tsv")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def load_segment_table(path: str | Path, pair: str, fs: float = 0.0) -> SegmentSet:
    """The segments of one table: a .csv (.tsv: tab-separated) file with a header row, then one
    segment per row. The class is in the column named y, label, class or target (else the last
    column); a first column that is unnamed or holds text names the rows (e.g. 'X21.V1.791');
    every other column is a sample. `pair` joins class values as it joins class folders
    ('2+3+4+5-1'); a class written 1.0 is class 1. The table carries no rate: `fs` gives it. A
    cell that is not a number, or a row of another length, is an error naming its line."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.reader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    except OSError as e:
        raise NNLabError(f"{path}: cannot read the table ({e.strerror})") from None
    lines = [i + 1 for i, r in enumerate(rows) if any(cell.strip() for cell in r)]
    rows = [rows[i - 1] for i in lines]  # blank lines dropped; `lines` numbers the rest
    if len(rows) < 2:
        raise NNLabError(f"{path}: a table needs a header row and one segment per row")
    header = [h.strip() for h in rows[0]]
    named = [i for i, h in enumerate(header) if h.lower() in TABLE_LABELS]
    label = named[-1] if named else len(header) - 1
    first = rows[1][0].strip() if rows[1] else ""
    unnamed = header[0].lower() in ("", "id", "name", "index", "unnamed: 0")
    ids = 0 if label != 0 and (unnamed or _number(first) is None) else None
    samples = [i for i in range(len(header)) if i not in (label, ids)]
    if len(samples) < 2:
        raise NNLabError(f"{path}: no sample columns beside the class column '{header[label]}'")
    x = np.empty((len(rows) - 1, len(samples)), dtype=np.float64)
    classes, names = [], []
    for n, (line, row) in enumerate(zip(lines[1:], rows[1:])):
        if len(row) != len(header):
            raise NNLabError(f"{path}: line {line} has {len(row)} cells, the header {len(header)}")
        try:
            x[n] = [float(row[i]) for i in samples]
        except ValueError:
            bad = next(row[i] for i in samples if _number(row[i]) is None)
            raise NNLabError(f"{path}: line {line}: '{bad}' is not a number") from None
        value = row[label].strip()
        number = _number(value)
        classes.append(str(int(number)) if number is not None and number.is_integer() else value)
        names.append(row[ids].strip() if ids is not None else f"row{n + 1}")
    if not np.isfinite(x).all():
        line = lines[1 + int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])]
        raise NNLabError(f"{path}: line {line}: a sample is NaN or infinite")
    negative, positive = parse_pair(pair, sorted(set(classes)), "class", "the table's classes")
    keep = [i for i, c in enumerate(classes) if c in negative or c in positive]
    if len({names[i] for i in keep}) != len(keep):
        names = [f"row{n + 1}" for n in range(len(classes))]  # names that repeat: row numbers
    if not fs > 0:
        raise NNLabError(f"{path}: a table carries no sampling rate: give it with --fs (Hz)")
    y = np.array([int(classes[i] in positive) for i in keep], dtype=np.int64)
    return SegmentSet(
        x[keep].astype(np.float32), y, [f"{classes[i]}/{names[i]}" for i in keep], float(fs), 0
    )
