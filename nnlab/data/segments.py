"""EEG segments of any dataset laid out as one folder per class:

    DIR/
      interictal/   seg001.txt  seg002.txt  ...
      ictal/        ...

so that `nnlab seizure bonn --data DIR --pair interictal-ictal --fs 173.61` runs the Bonn
cross-validation on other segment datasets (other rates, other lengths, other class names).

A segment file holds one channel or several: text or CSV with one sample per line (as the Bonn
distribution's .txt files; columns for channels), a .npy array, a MATLAB .mat file (as the
Neurology & Sleep Centre, New Delhi, set ships its 5.12-s segments, or a struct of data, rate and
channel names, as the Kaggle seizure prediction and detection sets and the Melbourne set ship
theirs: `read_mat`), or an EDF/EDF+ or BDF file (its rate read from the file, signals at
several rates each resampled to the highest, its values in microvolts). A 2-D array's samples
run along its longer axis. Every file of a dataset has the same channels: all of them, or the
one `column` picks.
Text, .npy and .mat files without a rate variable carry no rate: `fs` gives it. With `rate`, every
segment is resampled to that rate as it is read (segments at several rates, or a high rate that
would not fit in memory). Segments are stacked into one array (N, C, L): longer ones are cut to the
shortest, and the loader says how many, and which file is the shortest (a file cut short would
shorten them all). Files of other types in a class folder are ignored; an unreadable segment
file is an error naming it (a dataset with holes would silently change the folds). A set too
large for memory is put on disk as it is read, memory-mapped, and found there by later runs
(`load_segment_folders`' store).

A dataset may also be one table (`load_segment_table`): a .csv or .tsv file of one segment per
row, such as the UCI "Epileptic Seizure Recognition" set (Bonn's recordings cut into 11,500 1-s
rows of 178 samples, X1..X178, and a class y from 1, seizure, to 5).
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab.errors import NNLabError

SUFFIXES = (".txt", ".csv", ".npy", ".mat", ".edf", ".bdf")
# names of a .mat file's scalar that holds the sampling rate (compared in lower case)
RATE_NAMES = frozenset(
    {
        "fs",
        "srate",
        "sfreq",
        "freq",  # the Kaggle seizure detection set's
        "fsample",  # FieldTrip's
        "sampling_rate",
        "samplingrate",
        "sample_rate",
        "sampling_frequency",  # the Kaggle seizure prediction set's
        "samplingfrequency",
        "ieegsamplingrate",  # the Melbourne (NIH) seizure prediction set's
    }
)
# names of a .mat file's list of channel names (compared in lower case)
LABEL_NAMES = frozenset(
    {"channels", "labels", "channel_names", "channel_labels", "chanlabels", "ch_names"}
)


@dataclass
class SegmentSet:
    x: np.ndarray  # (N, C, L) float32, one segment per row
    y: np.ndarray  # (N,) int64: 1 for the classes after '-' in the pair, 0 before
    names: list[str]  # "class/file stem", unique
    fs: float  # Hz
    cut: int  # segments that were longer than L and were cut to it
    channels: list[str] | None = None  # the channels' names, where every file gives them
    flat: list[str] | None = None  # names of the segments flat in every channel (None: unchecked)


@dataclass
class Segment:
    """One segment file, read."""

    x: np.ndarray  # (C, L) float32
    fs: float | None  # Hz, where the file says
    labels: list[str] | None  # the channels' names, where the file gives them
    notes: tuple[str, ...] = ()  # how it was read, where a user would want to know


def is_segment_file(path: Path) -> bool:
    """A segment file by its suffix, other than what systems leave beside files: macOS's
    AppleDouble '._name' (on FAT disks, shares and zips) and other hidden '.name' files, and
    Office's '~$name' lock files. A link to a missing file is an error naming it."""
    if path.suffix.lower() not in SUFFIXES or path.name.startswith((".", "~$")):
        return False
    if path.is_symlink() and not path.exists():
        raise NNLabError(f"{path}: a link to a missing file")
    return path.is_file()


def segment_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_segment_file(p))


def files_below(root: Path) -> list[Path]:
    """The segment files of root and of the folders below it, through linked folders too (each
    real folder once), less macOS's '__MACOSX' folders of resource forks and hidden folders."""
    import os

    found, seen = [], set()
    for top, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if d != "__MACOSX" and not d.startswith("."))
        found += [Path(top) / n for n in names if is_segment_file(Path(top) / n)]
    return sorted(found)


def class_folders(root: str | Path) -> list[str]:
    """The subfolders of root that hold segment files: the dataset's classes."""
    root = Path(root)
    if not root.is_dir():
        raise NNLabError(f"{root}: no such folder")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and segment_files(d))


# the Bonn sets' letters in the papers -> the folders of the original distribution
BONN_FOLDERS = {"A": "Z", "B": "O", "C": "N", "D": "F", "E": "S"}


def folder_hint(root: Path, name: str) -> str | None:
    """Why `name` is no class folder of root, where the reason is not plain: the folder exists
    but holds no segment files (what it holds instead), or root is a class folder itself."""
    folder = root / name
    if folder.is_dir():
        inside = [p for p in folder.iterdir() if not p.name.startswith(".")]
        subfolders = [p.name for p in inside if p.is_dir()]
        kinds: dict[str, int] = {}
        for p in inside:
            if p.is_file():
                kinds[p.suffix.lower() or "(no suffix)"] = kinds.get(p.suffix.lower(), 0) + 1
        if not kinds and subfolders:
            return (
                f"{folder} holds only folders ({', '.join(subfolders[:3])}): point --data one "
                "level down, or name the classes in the files with --class-pattern"
            )
        held = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing"
        return f"{folder} holds no segment files ({' '.join(SUFFIXES)}): it holds {held}"
    letters = [BONN_FOLDERS.get(c) for c in name]
    if name and None not in letters and any((root / f).is_dir() for f in letters):
        return (
            f"Bonn's sets A-E are its folders {', '.join(BONN_FOLDERS.values())}: {name} is "
            f"{'+'.join(letters)} (or --data bonn)"
        )
    if segment_files(root) and not class_folders(root):
        return (
            f"{root} holds segment files itself: --data is the folder above the class folders "
            "(or name the classes in the files with --class-pattern)"
        )
    return None


def parse_pair(
    pair: str,
    classes: list[str],
    noun: str = "class folder",
    among: str = "the folders with segments",
    hint: Callable[[str], str | None] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """'interictal+normal-ictal' -> (('interictal', 'normal'), ('ictal',)): the class folders of
    label 0 and of label 1 (the seizure class). Folder names may hold a '-' themselves
    ('pre-ictal-ictal'): the pair is split at the one '-' that leaves class folders on both
    sides; spaces around the names are dropped. `noun` and `among` name the classes in the
    messages (a table's: class values); `hint(name)` may say why a name is not a class."""

    def sides(i: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(n.strip() for n in pair[:i].split("+") if n.strip()), tuple(
            n.strip() for n in pair[i + 1 :].split("+") if n.strip()
        )

    dashes = [i for i, ch in enumerate(pair) if ch == "-"]
    fits = [sides(i) for i in dashes if all(n in classes for side in sides(i) for n in side)]
    if len(fits) > 1:
        raise NNLabError(
            f"--pair '{pair}' splits into {noun + ('es' if noun.endswith('s') else 's')} in "
            f"{len(fits)} ways "
            f"({'; '.join(' vs '.join('+'.join(s) for s in f) for f in fits)}); rename a folder"
        )
    if not fits:
        if len(dashes) != 1:
            raise NNLabError(
                f"--pair must be NON-SEIZURE-SEIZURE, each side one {noun} or several joined "
                f"by '+' (the seizure class after the '-'); got '{pair}' ({among}: "
                f"{', '.join(classes) or 'none'})"
            )
        unknown = [n for side in sides(dashes[0]) for n in side if n not in classes]
        hints = dict.fromkeys(h for h in map(hint or (lambda n: None), unknown) if h)
        raise NNLabError(
            f"--pair: no {noun} {', '.join(unknown)} ({among}: {', '.join(classes) or 'none'})"
            + "".join(f"; {h}" for h in hints)
        )
    negative, positive = fits[0]
    if not negative or not positive or set(negative) & set(positive):
        raise NNLabError(f"--pair needs distinct, non-empty classes on both sides, got '{pair}'")
    return negative, positive


def read_segment(path: Path, column: int = -1) -> Segment:
    """One segment file: its channels (all of them, or with `column` >= 0 that one, 0-based),
    its rate (None where the file does not say) and its channels' names (None where it does not
    give them). A text file's columns, a 2-D array's rows or columns (samples run along the
    longer axis) and an EDF file's signals are its channels."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".edf", ".bdf"):  # BDF: BioSemi's 24-bit EDF
            return read_edf_segment(path, column)
        labels, notes = None, ()
        if suffix == ".mat":
            x, rate, labels, notes = read_mat(path)
        elif suffix == ".npy":
            x, rate = np.load(path, allow_pickle=False), None
        else:
            x, labels, notes = read_text(path, column)
            rate = None
    except NNLabError:
        raise
    except (OSError, ValueError) as e:
        raise NNLabError(f"{path}: not a readable segment ({type(e).__name__}: {e})") from None
    x = checked(path, x, column)
    if labels is not None and column >= 0:
        labels = [labels[column]] if column < len(labels) else None
    if labels is not None and (len(labels) != len(x) or len(set(labels)) != len(labels)):
        labels = None  # names that do not fit the channels name nothing
    return Segment(x, rate, labels, notes)


SEPARATORS = {";": "semicolons", "\t": "tabs", ",": "commas", None: "spaces"}
# a text column of these names (lower case, a unit in brackets dropped) holds times or sample
# numbers, not EEG
TIME_NAMES = frozenset(
    "time times t timestamp timestamps sec secs seconds s ms sample samples sample_index "
    "index idx n".split()
)


def read_text(path: Path, column: int = -1) -> tuple[np.ndarray, list[str] | None, tuple]:
    """A text segment (.txt, .csv): one sample per line, a column a channel, as spreadsheets and
    EEG programs export them. Returns the samples (L, K), the channels' names where a header row
    gives them (else None) and notes on how it was read. Read as they come: a UTF-8 byte-order
    mark or Latin-1 text; comment lines (%, #, //); a header row of names; columns separated by
    commas, semicolons, tabs or spaces (found from the lines); decimal commas (where the columns
    are separated otherwise, or a .csv of one column whose every line is 'digits,digits' of a
    fixed width with leading zeros, or whose first number is sometimes negative: '-12,045');
    quoted numbers; a trailing separator. A column of
    times or sample numbers (named so, or rising by a constant step) is not EEG: without
    `column` it is left out, and a note says so. A line that is not numbers is an error naming
    its line."""
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise NNLabError(f"{path}: a binary file, not text (one sample per line)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = [(n + 1, line.strip().replace('"', "")) for n, line in enumerate(text.splitlines())]
    lines = [(n, line) for n, line in lines if line and not line.startswith(("%", "#", "//"))]
    if not lines:
        raise NNLabError(f"{path}: holds no samples")
    probe = [line for _, line in lines[1:20]] or [lines[0][1]]
    sep = next((c for c in (";", "\t", ",") if all(c in line for line in probe)), None)
    notes = []
    data = [line for _, line in lines[1:200]] or [lines[0][1]]
    decimal_comma = False
    if sep != "," and any("," in line for line in data) and not any("." in line for line in data):
        decimal_comma = True
    elif sep == "," and not any("." in line for line in data):
        tails = [line.split(",") for line in data]
        # 'a,b' is one number when b is never signed and is written to a fixed width with
        # leading zeros, or when a is signed (two signed channels would sign b too)
        fixed = len({len(t[1]) for t in tails if len(t) > 1}) == 1 and any(
            len(t) > 1 and len(t[1]) > 1 and t[1].startswith("0") for t in tails
        )
        signed = any(t[0].startswith("-") for t in tails)
        decimal_comma = all(len(t) == 2 and t[1].isdigit() for t in tails) and (fixed or signed)
        sep = None if decimal_comma else sep
    if decimal_comma:
        lines = [(n, line.replace(",", ".")) for n, line in lines]
        notes.append("were read with decimal commas ('-12,5' as -12.5)")

    def cells(line: str) -> list[str]:
        parts = line.split(sep) if sep else line.split()
        return [c.strip() for c in parts]

    if sep and all(line.endswith(sep) for _, line in lines[1:] or lines):  # a trailing one
        lines = [(n, line[: -len(sep)] if line.endswith(sep) else line) for n, line in lines]
    head = cells(lines[0][1])
    names = None
    if any(_number(c) is None for c in head):
        names, lines = head, lines[1:]
        if not lines:
            raise NNLabError(f"{path}: a header row and no samples")
    try:
        x = np.loadtxt([line for _, line in lines], delimiter=sep, dtype=np.float64, ndmin=2)
    except ValueError as e:
        where = re.search(r"at row (\d+)", str(e))
        line = lines[int(where.group(1))][0] if where and int(where.group(1)) < len(lines) else 0
        what = str(e).split(" at row")[0]
        raise NNLabError(
            f"{path}: line {line} is not numbers separated by {SEPARATORS[sep]} ({what})"
        ) from None
    if names is not None and len(names) != x.shape[1]:
        names = None
    if column < 0 and x.shape[1] > 1 and x.shape[0] > x.shape[1]:  # columns are channels
        time = [
            k for k in range(x.shape[1]) if is_time_column(x[:, k], names[k] if names else None)
        ]
        if time and len(time) < x.shape[1]:
            which = ", ".join(f"'{names[k]}'" if names else f"column {k}" for k in time)
            notes.append(f"had a column of times or sample numbers ({which}), not EEG: left out")
            keep = [k for k in range(x.shape[1]) if k not in time]
            x = x[:, keep]
            names = [names[k] for k in keep] if names else None
    return (x[:, 0] if x.shape[1] == 1 else x), names, tuple(notes)  # one column: 1-D, as before


def is_time_column(values: np.ndarray, name: str | None) -> bool:
    """A column of times or sample numbers: named so (`TIME_NAMES`), or rising at every sample
    by a step within 10% of its median (as no EEG does)."""
    if name is not None and re.sub(r"\s*[\(\[].*$", "", name).strip().lower() in TIME_NAMES:
        return True
    if len(values) < 16:
        return False
    step = np.diff(values)
    mid = float(np.median(step))
    return mid > 0 and bool((np.abs(step - mid) <= 0.1 * mid).all())


def read_edf_segment(path: Path, column: int) -> Segment:
    """Every signal of an EDF segment file (or signal `column`), in microvolts; signals at
    several rates are each resampled to the highest of them."""
    from nnlab.data.eeg import edf_header, read_edf, resample

    head = edf_header(path)
    if column >= len(head.labels):
        raise NNLabError(
            f"{path}: {len(head.labels)} signals ({', '.join(head.labels)}); --column {column} "
            "is not one of them (0-based)"
        )
    from nnlab.data.eeg import unique_labels

    notes = ()
    if column >= 0:
        labels = [head.labels[column]]
        if head.labels.count(labels[0]) > 1:
            raise NNLabError(
                f"{path}: signal {column} is labelled {labels[0]}, as another one is: "
                "the file's signals are read by label"
            )
    else:  # CHB-MIT repeats a channel (T8-P8) and pads montages with dummies ('-')
        labels = unique_labels(head.labels)
        if len(labels) < len(head.labels):
            notes = ("had repeated or dummy ('-') signals: left out",)
    rates = [head.fs[head.labels.index(c)] for c in labels]
    top = max(rates)
    x = None
    for rate in sorted(set(rates)):  # signals at several rates: each brought to the highest
        rows = [i for i, r in enumerate(rates) if r == rate]
        part = read_edf(path, [labels[i] for i in rows]).data
        part = resample(part, rate, top)[0] if rate != top else part
        if x is None:
            x = np.zeros((len(labels), part.shape[1]), dtype=np.float32)
        n = min(x.shape[1], part.shape[1])
        x, part = x[:, :n], part[:, :n]
        x[rows] = part
    return Segment(checked(path, x), float(top), labels, notes)


def checked(path: Path, x, column: int = -1) -> np.ndarray:
    """x as (C, L) float32 samples: a 1-D array is one channel, a 2-D one holds channels along
    its shorter axis (all of them, or channel `column`); else an error naming the file."""
    x = np.asarray(x)
    if x.ndim == 2 and np.issubdtype(x.dtype, np.number):
        x = x if x.shape[0] <= x.shape[1] else x.T  # (K, L)
        if column >= len(x):
            raise NNLabError(
                f"{path}: {len(x)} channel(s) of {x.shape[1]} samples; --column {column} is not "
                "one of them (0-based)"
            )
        x = x[column : column + 1] if column >= 0 else x
    elif x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < 2 or not np.issubdtype(x.dtype, np.number):
        raise NNLabError(
            f"{path}: a segment file holds channels of samples (one sample per line, a column "
            f"a channel), got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise NNLabError(f"{path}: has non-finite samples (NaN or inf)")
    if np.abs(x).max() > np.finfo(np.float32).max:
        raise NNLabError(f"{path}: has samples beyond float32's range ({np.abs(x).max():.3g})")
    return x.astype(np.float32)


def _mat_items(value, key: str = ""):
    """(name, value) of every variable of a .mat file read with simplify_cells, the fields of its
    structs included (a field by its own name)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not k.startswith("__"):
                yield from _mat_items(v, k)
    else:
        yield key, value


def _names(value) -> list[str] | None:
    """A MATLAB cell array or char matrix of channel names as a list of str, or None."""
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return [str(v).strip() for v in value.reshape(-1)]
    items = value.reshape(-1).tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, (list, tuple)) and items and all(isinstance(v, str) for v in items):
        return [v.strip() for v in items]
    return None


def read_mat(path: Path) -> tuple[np.ndarray, float | None, list[str] | None, tuple]:
    """(the samples, the rate or None, the channels' names or None, notes) of a .mat file. The
    samples are its largest numeric array, among its variables and the fields of its structs
    (beside others of a tenth of its size or more, the notes name it and them): one array
    (the New Delhi set), or a struct such as the Kaggle seizure prediction set's
    (`interictal_segment_1` with data, sampling_frequency and channels), the Kaggle detection
    set's (data, freq, channels) or the Melbourne set's (`dataStruct` with data and
    iEEGsamplingRate). A scalar named as in RATE_NAMES gives the rate, a list of names as in
    LABEL_NAMES the channels' names. Two largest arrays of one size are an error."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path, simplify_cells=True)
    except NotImplementedError:  # scipy reads MATLAB v4 to v7.2; v7.3 is HDF5
        raise NNLabError(
            f"{path}: a MATLAB v7.3 (HDF5) file; save it with save(..., '-v7') to read it here"
        ) from None
    except Exception as e:  # noqa: BLE001 - scipy raises MatReadError, ValueError, TypeError...
        raise NNLabError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from None
    rates, labels, signals = [], None, {}
    for key, value in _mat_items(content):
        if key.lower() in LABEL_NAMES and _names(value) is not None:
            labels = labels or _names(value)
            continue
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number):
            continue
        if value.size == 1 and key.lower() in RATE_NAMES:
            rates.append(float(value.item()))
        elif value.size > 1:
            signals[key] = value
    largest = max((v.size for v in signals.values()), default=0)
    top = [k for k, v in signals.items() if v.size == largest]
    if len(top) != 1:
        raise NNLabError(
            f"{path}: a segment file holds one array of samples, this one "
            + (f"{len(top)} of {largest} values: {', '.join(top)}" if top else "none")
        )
    if rates and not rates[0] > 0:
        raise NNLabError(f"{path}: its sampling rate variable says {rates[0]}")
    # others near its size (not a struct's channel indices): which one was the signal is a guess
    others = [k for k, v in signals.items() if k != top[0] and v.size * 10 >= largest]
    notes = (
        (f"were read from their largest array, '{top[0]}' (beside {', '.join(others)})",)
        if others
        else ()
    )
    return signals[top[0]], rates[0] if rates else None, labels, notes


def classified_files(root: Path, pair: str, pattern: str = "") -> list[tuple[int, str, Path]]:
    """(label, class, path) of every segment file of the classes in `pair`: the files of each
    class folder, or with `pattern` the files of `root` and of the folders below it, each of the
    class its name (stem) gives: the pattern's first group (or whole match), as the Kaggle sets'
    single folder ('Dog_1_preictal_segment_0001.mat': '(interictal|preictal)_segment'), the
    Melbourne set's ('1_12_0.mat': '_(\\d)$') and the Bern-Barcelona set's folders of 750 files
    each ('Data_F_Ind0001.txt': '^Data_([FN])_'). Files the pattern does not match (test
    segments) are left out."""
    if not pattern:
        negative, positive = parse_pair(
            pair, class_folders(root), hint=lambda name: folder_hint(root, name)
        )
        return [
            (label, name, path)
            for label, side in ((0, negative), (1, positive))
            for name in side
            for path in segment_files(root / name)
        ]
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise NNLabError(f"--class-pattern '{pattern}' is not a regular expression ({e})") from None
    if not root.is_dir():
        raise NNLabError(f"{root}: no such folder")
    found = []
    for path in files_below(root):
        m = rx.search(path.stem)
        if m is not None:
            found.append((m.group(1) if rx.groups else m.group(0), path))
    classes = sorted({c for c, _ in found})
    negative, positive = parse_pair(pair, classes, "class", f"--class-pattern's classes in {root}")
    return [
        (int(c in positive), c, path)
        for side in (negative, positive)
        for c, path in found
        if c in side
    ]


def load_segment_folders(
    root: str | Path,
    pair: str,
    fs: float = 0.0,
    column: int = -1,
    rate: float = 0.0,
    class_pattern: str = "",
    progress: Callable[[int, int], None] | None = None,
    store: str | Path | None = None,
    memory_limit: int = 0,
) -> SegmentSet:
    """The segments of the classes named in `pair` (class folders, or with `class_pattern` the
    classes of the files' names: `classified_files`), stacked (N, C, L), labelled 0 / 1:
    every channel of each file, or channel `column` (`read_segment`); with `rate` > 0, each
    resampled to `rate` Hz as it is read. The files must agree on their channels: where every
    file names them, the channels every file has are kept, in the first file's order (the others
    left out with a warning); else they are taken by position, as many in every file.
    `progress(files read, files)` is called after each file.

    With `store` (a folder), a set whose samples would take more than `memory_limit` bytes (as
    many files as the first) is put on disk: a .npy in `store`, memory-mapped, read as it is
    used, named by a key of the files (path, size, time) and the reading options. A later call
    on the same files finds it and reads no file; the warnings of the first reading are given
    again. A set on disk is held in memory one file at a time while it is read."""
    root = Path(root)
    files = classified_files(root, pair, class_pattern)
    spill = None
    if store is not None:
        from nnlab.io import sweep_stale

        sweep_stale(Path(store))  # what killed runs left
        key = segments_key(files, pair, fs, column, rate)
        npy = Path(store) / f"{root.name}-{key}.npy"
        found = stored_segments(npy, key)
        if found is not None:
            return found
        spill = (npy, key, memory_limit)
    return _read_segment_files(root, files, fs, column, rate, progress, spill)


def segments_key(
    files: list[tuple[int, str, Path]], pair: str, fs: float, column: int, rate: float
):
    """16 hex digits of SHA-256 over each file's label, class and identity (path, size,
    modification time) and the options the samples depend on."""
    import hashlib
    import json

    from nnlab.io import source_identity

    payload = {
        "version": STORE_VERSION,
        "files": [[label, name, source_identity(path)] for label, name, path in files],
        "pair": pair,
        "fs": fs,
        "column": column,
        "rate": rate,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


STORE_VERSION = 1  # bump when what a stored set holds changes


def stored_segments(npy: Path, key: str) -> SegmentSet | None:
    """A set put on disk by `load_segment_folders`, where it is whole (`open_stored`), its
    first reading's warnings given again; else None."""
    import warnings

    from nnlab.io import open_stored

    stored = open_stored(npy, key)
    if stored is None:
        return None
    x, meta = stored
    try:
        found = SegmentSet(
            x,
            np.asarray(meta["y"], dtype=np.int64),
            list(meta["names"]),
            float(meta["fs"]),
            int(meta["cut"]),
            meta["channels"],
            list(meta["flat"]),
        )
        said = list(meta["warnings"])
    except (KeyError, TypeError, ValueError):  # metadata of an older layout: read again
        return None
    for message in said:
        warnings.warn(message, stacklevel=3)
    return found


def _read_segment_files(
    root: Path,
    files: list[tuple[int, str, Path]],
    fs: float,
    column: int,
    rate: float,
    progress: Callable[[int, int], None] | None,
    spill: tuple[Path, str, int] | None,
) -> SegmentSet:
    """`load_segment_folders`' reading. With `spill` (the .npy, its key, the memory limit), a
    set too large for the limit goes to disk: each file's samples into a temporary folder beside
    the .npy as they are read, then stacked into the .npy."""
    import warnings

    with contextlib.ExitStack() as stack:
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")  # kept (and stored with a set on disk), given below
        try:
            found = _read_rows(root, files, fs, column, rate, progress, spill, stack, caught)
        finally:
            said = [(w.message, w.category, w.filename, w.lineno) for w in caught]
            stack.close()  # the warnings' filters restored, a spill folder removed
            for message, category, filename, lineno in said:
                warnings.warn_explicit(message, category, filename, lineno)
    return found


def segment_name(root: Path, cls: str, path: Path) -> str:
    """'class/stem': a segment's name, unique in its class. A file found below `root` other than
    in its class folder (`classified_files` with a pattern) keeps its folders:
    'F/Data_F_Ind_1_750/Data_F_Ind0001'."""
    folder = root / cls
    within = path.relative_to(folder if path.is_relative_to(folder) else root)
    return f"{cls}/{within.with_suffix('').as_posix()}"


def _read_rows(root, files, fs, column, rate, progress, spill, stack, caught) -> SegmentSet:
    """`_read_segment_files`' work; `stack` holds a spill folder, `caught` the warnings so far
    (a set on disk keeps them)."""
    import tempfile

    from nnlab.data.eeg import resample
    from nnlab.io import atomic_npy

    rows, labels, names, rates, flat = [], [], [], set(), []
    shapes: list[tuple[int, int]] = []  # each file's (channels, samples)
    held = 0  # bytes of the samples read so far
    first: tuple[str, int, list[str] | None] | None = None  # the first file's name, channels
    channel_names: list[list[str] | None] = []  # each file's
    folder = None  # where the samples of a set on disk wait to be stacked
    noted: dict[str, list[str]] = {}  # how files were read -> the segments read so
    for i, (label, name, path) in enumerate(files):
        seg = read_segment(path, column)
        here = segment_name(root, name, path)
        for note in seg.notes:
            noted.setdefault(note, []).append(here)
        if first is None:
            first = (here, len(seg.x), seg.labels)  # (not its samples: held once, in rows)
        if seg.labels is None or first[2] is None:  # by position: as many of them
            same_count(path, len(seg.x), first[0], first[1])
        channel_names.append(seg.labels)
        own = seg.fs if seg.fs is not None else fs
        if rate > 0:
            if not own > 0:
                raise NNLabError(
                    f"{path}: carries no sampling rate to resample from: give it with --fs"
                )
            if fs and seg.fs is not None and abs(fs - seg.fs) > 1e-6 * seg.fs:
                raise NNLabError(f"{path}: --fs {fs} but the file says {seg.fs} Hz")
            seg.x = resample(seg.x, own, rate)[0].astype(np.float32, copy=False)
        elif seg.fs is not None:
            rates.add(seg.fs)
        held += seg.x.nbytes
        # on disk when the set would pass the limit: judged by the first file times the files,
        # and again as the files are read (longer ones further on)
        estimate = max(held, seg.x.nbytes * len(files) if i == 0 else 0)
        if folder is None and spill is not None and estimate > spill[2]:
            need = 2 * max(held * len(files) // (i + 1), estimate)
            disk_check(spill[0].parent, need, "the segments")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=spill[0].parent)))
            for k, x in enumerate(rows):  # those read so far, too
                rows[k] = spilled(folder, k, x)
        if (seg.x.max(axis=-1) == seg.x.min(axis=-1)).all():
            flat.append(here)
        shapes.append(seg.x.shape)
        # on disk until stacked (a path: a memory map holds a file descriptor, and a set may
        # have more files than a process may open)
        rows.append(seg.x if folder is None else spilled(folder, i, seg.x))
        labels.append(label)
        names.append(here)
        if progress is not None:
            progress(i + 1, len(files))
    if len(set(names)) != len(names):
        raise NNLabError(f"{root}: two segment files of one class share a name (stem)")
    import warnings

    for note, which in noted.items():  # one line for all the files read alike
        warnings.warn(
            f"{root}: {len(which)} of {len(files)} files {note} (the first: {which[0]})",
            stacklevel=4,
        )
    if rate > 0:
        fs = rate
    elif len(rates) > 1:
        raise NNLabError(
            f"{root}: segments at different rates {sorted(rates)} Hz; resample them as they are "
            "read with --rate HZ"
        )
    elif rates:  # EDF (and some .mat) files say their rate; the others are taken to share it
        (own,) = rates
        if fs and abs(fs - own) > 1e-6 * own:
            raise NNLabError(f"{root}: --fs {fs} but the segment files say {own} Hz")
        fs = own
    if not fs > 0:
        raise NNLabError(
            f"{root}: text and .npy segments carry no sampling rate: give it with --fs (Hz)"
        )
    channels = None
    if channel_names and all(c is not None for c in channel_names):  # by name: the common ones
        from nnlab.data.eeg import norm_label

        channels = common_names(root, channel_names)
        keys = [norm_label(c) for c in channels]
        order = [[[norm_label(c) for c in own].index(k) for k in keys] for own in channel_names]
    else:  # by position (named files of several sets among unnamed ones: counted here)
        for (*_, path), (channels_here, _) in zip(files, shapes):
            same_count(path, channels_here, first[0], first[1])
        order = [slice(None)] * len(rows)
    lengths = [n for _, n in shapes]
    length = min(lengths)
    cut = sum(n > length for n in lengths)
    if cut:
        typical = float(np.median(lengths))
        short = names[int(np.argmin(lengths))]
        warnings.warn(
            f"{root}: {cut} segment(s) were cut to the shortest, {short} ({length / fs:.3g} s; "
            f"the median is {typical / fs:.3g} s)"
            + (": a file cut short? Remove it and run again" if length < 0.5 * typical else ""),
            stacklevel=4,
        )
    C = len(order[0]) if isinstance(order[0], list) else shapes[0][0]  # the channels kept
    shape = (len(rows), C, length)
    y = np.array(labels, dtype=np.int64)

    def stacked() -> Iterator[np.ndarray]:  # each file's kept samples, in order
        for i, pick in enumerate(order):  # each file's samples let go once copied: held once
            row = np.load(rows[i], mmap_mode="r") if isinstance(rows[i], Path) else rows[i]
            yield row[pick, :length]
            rows[i] = row = None

    if folder is None:
        x = np.empty(shape, dtype=np.float32)
        for i, row in enumerate(stacked()):
            x[i] = row
        return SegmentSet(x, y, names, float(fs), cut, channels, flat)
    npy, key, _ = spill
    with atomic_npy(npy, shape) as (write, meta):
        for row in stacked():
            write(row[None])
        meta.update(key=key, shape=list(shape), y=y.tolist(), names=names, fs=float(fs))
        meta.update(cut=cut, channels=channels, flat=flat)
        meta.update(warnings=[str(w.message) for w in caught])
    return SegmentSet(np.load(npy, mmap_mode="r"), y, names, float(fs), cut, channels, flat)


def spilled(folder: Path, k: int, x: np.ndarray) -> Path:
    """Row k's samples written to `folder`: the .npy's path."""
    np.save(folder / f"{k}.npy", x)
    return folder / f"{k}.npy"


def disk_check(folder: Path, need: int, what: str) -> None:
    """An error, before anything is written, when `folder`'s disk has less than `need` bytes
    free."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need:
        gib = 2**30
        raise NNLabError(
            f"{what} need about {need / gib:.1f} GiB on disk in {folder}, which has "
            f"{free / gib:.1f} GiB free: point NNLAB_CACHE at a larger disk, or read fewer "
            "samples (--rate)"
        )


def common_names(root: Path, each: list[list[str]]) -> list[str]:
    """The channels every file names (compared as `norm_label` compares them: 'Fp1' is 'FP1 '),
    spelled and ordered as in the first file; those only some files have are left out with a
    warning naming them (files exported from recordings of several montages)."""
    import warnings

    from nnlab.data.eeg import norm_label

    keys = [{norm_label(c) for c in own} for own in each]
    first = list(dict.fromkeys(each[0]))
    common = [c for c in first if all(norm_label(c) in k for k in keys[1:])]
    if not common:
        raise NNLabError(f"{root}: no channel is named in every segment file")
    kept = {norm_label(c) for c in common}
    some = list(dict.fromkeys(c for own in each for c in own if norm_label(c) not in kept))
    if some:
        warnings.warn(
            f"{root}: channel(s) {', '.join(some)} are not in every segment file: left out, "
            f"{len(common)} kept ({', '.join(common)})",
            stacklevel=3,
        )
    return common


def same_count(path: Path, channels: int, first_name: str, first_channels: int) -> None:
    """An error naming the file when its channels, taken by position, are not as many as the
    first file's."""
    if channels != first_channels:
        raise NNLabError(
            f"{path}: {channels} channel(s), {first_name} {first_channels}: the files of a "
            "dataset need the same channels (pick one with --column, 0-based)"
        )


# the names of a table's class column (compared in lower case); else its last column
TABLE_LABELS = ("y", "label", "labels", "class", "target")
TABLE_SUFFIXES = (".csv", ".tsv")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# a first column of these names (lower case) names the rows: the UCI table's unnamed one, a
# pandas index, 'segment_id', ...
TABLE_IDS = re.compile(r"(|unnamed.*|index|idx|names?|rows?|key|segments?|(.*[_ ])?id([_ ].*)?)")


def load_segment_table(path: str | Path, pair: str, fs: float = 0.0) -> SegmentSet:
    """The segments of one table: a .csv (.tsv: tab-separated) file with a header row, then one
    segment per row. The class is in the column named y, label, class or target (else the last
    column, with a warning naming it); a first column that is unnamed, named as an id
    (`TABLE_IDS`) or holds text names the rows (e.g. 'X21.V1.791'); every other column is a
    sample. A .csv may be separated by semicolons (then its decimal marks may be commas) or tabs,
    and begin with a byte-order mark (Excel's "CSV UTF-8"). `pair` joins class values as it joins
    class folders ('2+3+4+5-1'); a class written 1.0 is class 1. The table carries no rate: `fs`
    gives it. A cell that is not a number, or a row of another length, is an error naming its
    line."""
    import warnings

    path = Path(path)
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            first_line = f.readline()
            if sep == "," and "," not in first_line:  # separated otherwise (European exports)
                sep = next((c for c in (";", "\t") if c in first_line), sep)
            f.seek(0)
            rows = list(csv.reader(f, delimiter=sep))
    except OSError as e:
        raise NNLabError(f"{path}: cannot read the table ({e.strerror})") from None
    if rows and rows[0] and rows[0][0].startswith("\ufeff"):
        rows[0][0] = rows[0][0][1:]  # the mark read past by seek(0)
    lines = [i + 1 for i, r in enumerate(rows) if any(cell.strip() for cell in r)]
    rows = [rows[i - 1] for i in lines]  # blank lines dropped; `lines` numbers the rest
    if len(rows) < 2:
        raise NNLabError(f"{path}: a table needs a header row and one segment per row")
    if all(r and not r[-1].strip() for r in rows):  # a trailing separator on every line
        rows = [r[:-1] for r in rows]
    if sep == ";":  # decimal commas, where there are any
        rows = [[cell.replace(",", ".") for cell in r] for r in rows]
    header = [h.strip() for h in rows[0]]
    if all(_number(h) is not None for h in header):
        raise NNLabError(
            f"{path}: the first row holds numbers, not column names: a table needs a header row "
            f"(its class column named {', '.join(TABLE_LABELS)})"
        )
    named = [i for i, h in enumerate(header) if h.lower() in TABLE_LABELS]
    label = named[-1] if named else len(header) - 1
    if not named:
        warnings.warn(
            f"{path}: no column named {', '.join(TABLE_LABELS)}: the class is read from the last "
            f"column, '{header[label]}'",
            stacklevel=2,
        )
    first = rows[1][0].strip() if rows[1] else ""
    unnamed = TABLE_IDS.fullmatch(header[0].lower()) is not None
    ids = 0 if label != 0 and (unnamed or _number(first) is None) else None
    samples = [i for i in range(len(header)) if i not in (label, ids)]
    if len(samples) < 2:
        raise NNLabError(
            f"{path}: no sample columns beside the class column '{header[label][:40]}' (columns "
            "separated by commas in a .csv, by semicolons or tabs, or by tabs in a .tsv)"
        )
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
        x[keep, None].astype(np.float32),
        y,
        [f"{classes[i]}/{names[i]}" for i in keep],
        float(fs),
        0,
    )
