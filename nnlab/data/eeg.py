"""EEG recordings: EDF/EDF+ files (via pyedflib), the CHB-MIT summary format, a patient index.

A `Recording` is one stretch of multi-channel EEG: data (C, N) float32 in microvolts, one label
per row, one sampling rate. EDF stores each channel as 16-bit integers d with a per-channel
linear map to physical units,

    x = p_min + (d - d_min) * (p_max - p_min) / (d_max - d_min),

so values survive a write/read round trip to within half a step (p_max - p_min) / (d_max - d_min).

CHB-MIT (PhysioNet `chbmit`) ships one folder per patient: hour-long EDF files `chbNN_MM.edf`
and `chbNN-summary.txt`, which gives each file's wall-clock start/end time and its seizures in
seconds from the file's start. `load_patient` turns folder + summary into an index -- per file:
path, rate, duration, start time and seizures in *patient-global* seconds (0 = start of the first
listed file; clock times that wrap past midnight are moved to the next day so that they
increase) -- without reading any samples; `Patient.read(i)` reads one file's common channels on
demand. Real patients have tens of hour-long files (about 40 MB each); only one is ever in memory.

Montages change between files (channels renamed, reordered, dummy channels "-" inserted, a
channel listed twice such as "T8-P8"). A patient's channels are therefore chosen *by label*:
the labels present (after dropping dummies and duplicates) in at least `min_fraction` of the
files, in order of first appearance; a file missing one of them is skipped with a warning that
names it and the missing labels.

EDF+D ("discontinuous") files, which EDFlib refuses, are read by `EDFRecords` when their data
records follow each other without a gap; otherwise `edf_header(gaps_ok=True)` gives their
continuous stretches (`nnlab seizure detect` reads each, and `load_patient` indexes each as a file
of its own), other readers refuse them with the first gap named, and `split_discontinuous`
(`nnlab seizure split`) writes their continuous pieces as EDF+C files.
Files that EDFlib refuses for the letter of the standard -- 'µV' as a unit, a letter that is not
ASCII in a name, a date written 01/02/03, a comma for a decimal point, '-1' data records -- are
read by `EDFRecords` too, with a warning that gives EDFlib's reason; a file shorter than its
header says stays an error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnlab.errors import NNLabError
from nnlab.io import UMASK

if TYPE_CHECKING:
    from nnlab.data.montage import Derivation

DAY_S = 86400
DUMMY_LABELS = ("-", ".", "")
# a voltage unit as EDF headers write it ('uV', 'µV', 'microvol' -- 'microvolt' cut to the
# field's 8 characters --, 'mV', 'V', 'nV') -> microvolts per unit
_VOLTS = re.compile(r"(?P<prefix>u|µ|μ|mc|micro|m|milli|n|nano|)\s*v(?:olts?|ol)?")
_PREFIX_TO_UV = {"": 1e6, "m": 1e3, "milli": 1e3, "n": 1e-3, "nano": 1e-3}


def unit_to_microvolts(unit: str) -> float | None:
    """Microvolts per unit of a voltage unit ('uV', 'µV', 'microvolt', 'mV', 'V', 'nV'), None
    for another unit ('%', 'bpm') or none."""
    m = _VOLTS.fullmatch(unit.strip().lower())
    return None if m is None else _PREFIX_TO_UV.get(m["prefix"], 1.0)


def norm_label(label: str) -> str:
    """The form labels are compared in: stripped, upper case ('fp1-f7 ' == 'FP1-F7')."""
    return label.strip().upper()


def is_dummy(label: str) -> bool:
    """CHB-MIT pads changed montages with flat channels named '-' or '.'."""
    return label.strip() in DUMMY_LABELS


# Words (digits stripped: "ECG1", "SpO2", "DC03") that name a channel of something else than EEG
# in clinical EDF files: heart, muscle, eyes (EOG leads LOC / ROC), breathing, oximetry, stimulator
# (VNS), photic stimulation, DC / trigger / status / marker / annotation channels.
NON_EEG_WORDS = frozenset(
    "ECG EKG EMG EOG LOC ROC CHIN LEG RESP THOR THORAX ABD ABDO ABDOMEN AIRFLOW FLOW SNORE SPO SAO "
    "OX PULSE PLETH HR IBI VNS PHOTIC DC TRIG TRIGGER STATUS MARKER EVENT EVENTS ANNOTATION "
    "ANNOTATIONS POSITION LIGHT BURSTS SUPPR LAT RAT LLEG RLEG PLM POS PTAF CANNULA THERM "
    "THERMISTOR NASAL PRESSURE EFFORT CHEST PPG EDA GSR".split()
)
# a sleep montage's eye leads (AASM: E1, E2 on a mastoid); E1, E2 alone may be EEG (EGI nets)
SLEEP_EOG = re.compile(r"E[12]\s*-\s*[MA][12]")


def non_eeg_reason(label: str, unit: str = "") -> str | None:
    """Why a channel is not EEG (None when it may be): a word of `NON_EEG_WORDS` in its label
    ('EKG', 'POL ECG', 'SpO2', 'EDF Annotations', 'DC03', 'LOC-ROC') or a physical dimension that
    is not a voltage ('%', 'bpm'); an empty dimension may be EEG. Used where a single-channel model
    reads every channel of a file, so that an ECG lead does not raise a seizure alarm."""
    words = {w.rstrip("0123456789") for w in re.split(r"[^A-Z0-9]+", norm_label(label))}
    named = sorted(words & NON_EEG_WORDS)
    if named:
        return f"labelled {named[0]}"
    if SLEEP_EOG.fullmatch(norm_label(label)):
        return "an eye lead (EOG) of a sleep montage"
    if unit.strip() and unit_to_microvolts(unit) is None:
        return f"unit {unit.strip()}"
    return None


# ---- one recording -------------------------------------------------------------------------------
@dataclass
class Recording:
    """C channels of N samples at `fs` Hz; `start_s` is the first sample's time in the patient's
    global clock (0 for a file read on its own)."""

    name: str
    fs: float
    labels: list[str]
    data: np.ndarray  # (C, N) float32, microvolts
    start_s: float = 0.0

    def __post_init__(self):
        if self.data.ndim != 2:
            raise NNLabError(f"{self.name}: data must be (C, N), got shape {self.data.shape}")
        if len(self.labels) != self.data.shape[0]:
            raise NNLabError(
                f"{self.name}: {len(self.labels)} labels for {self.data.shape[0]} channels"
            )
        if not self.fs > 0:
            raise NNLabError(f"{self.name}: sampling rate must be positive, got {self.fs}")

    @property
    def n_samples(self) -> int:
        return self.data.shape[1]

    @property
    def duration_s(self) -> float:
        return self.data.shape[1] / self.fs


@dataclass(frozen=True)
class EDFHeader:
    """What an EDF header says, per channel (annotation channels of EDF+ are not listed)."""

    path: Path
    labels: tuple[str, ...]
    fs: tuple[float, ...]
    n_samples: tuple[int, ...]
    units: tuple[str, ...]
    duration_s: float  # of the samples, read end to end
    start: datetime | None
    # the continuous stretches: (from, to) seconds of the samples read end to end, and when the
    # stretch starts, in seconds from the first sample; one for every file but an EDF+D file
    # with gaps (read with gaps_ok)
    stretches: tuple[tuple[float, float, float], ...] = ()

    @property
    def span_s(self) -> float:
        """From the first sample to the last, gaps included."""
        return max((t - f + at for f, t, at in self.stretches), default=self.duration_s)

    def find(self, label: str) -> int | None:
        """Index of the first channel called `label` (compared by `norm_label`), or None."""
        key = norm_label(label)
        for i, own in enumerate(self.labels):
            if norm_label(own) == key:
                return i
        return None


def _open_edf(path: Path, gaps_ok: bool = False):
    import pyedflib

    if not path.is_file():
        raise NNLabError(f"{path}: no such EDF file")
    with open(path, "rb") as f:  # the header's 44-byte reserved field: "EDF+C" or "EDF+D"
        reserved = f.read(236)[192:236]
    layout = _edf_layout(path)
    if layout is not None:
        header_bytes, records, record_bytes, record_s, signals = layout
        if signals == 0:
            raise NNLabError(f"{path}: holds no signals, only annotations")
        if not record_s > 0:  # EDF+ allows 0 for annotation-only files alone
            raise NNLabError(
                f"{path}: not a readable EDF/EDF+ file (its data records last {record_s:g} s, "
                f"with {signals} signals)"
            )
        whole = (path.stat().st_size - header_bytes) // record_bytes
        if records >= 0 and whole != records:  # cut short, or more than its header counts
            return EDFRecords(path, gaps_ok)  # reads the whole records there are, and says so
    if reserved.startswith((b"EDF+D", b"BDF+D")):  # EDFlib refuses these, saying nothing
        return EDFRecords(path, gaps_ok)
    try:
        # annotations are not used; reading them would scan every data record of an EDF+ file;
        # EDFlib prints some reasons to stdout itself: the error below says them
        with quiet_stdout():
            return pyedflib.EdfReader(str(path), pyedflib.DO_NOT_READ_ANNOTATIONS)
    except OSError as e:  # EDFlib refuses malformed headers
        reason = str(e).removeprefix(f"{path}: ").strip() or type(e).__name__
    try:  # many clinical exporters write 'µV', local dates or names: read it all the same
        reader = EDFRecords(path)
    except Exception:  # noqa: BLE001 - truncated, or not EDF at all: EDFlib's reason is the error
        raise NNLabError(f"{path}: not a readable EDF/EDF+ file ({reason})") from None
    warnings.warn(
        f"{path.name}: EDFlib refuses it ({reason.removeprefix('the file is ')}); read by "
        "nnlab's own EDF reader, which accepts that",
        stacklevel=1,  # one place: said once per file, however often the file is opened
    )
    return reader


@contextlib.contextmanager
def quiet_stdout():
    """File descriptor 1 sent to /dev/null while a C library writes there (EDFlib prints
    'filesize ... != ...' before it refuses a file), Python's own stdout left as it is."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 (a process without a stdout): nothing to quiet
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _edf_layout(path: Path) -> tuple[int, int, int, float, int] | None:
    """(header bytes, data records the header counts, bytes per record, seconds per record,
    signals other than annotations) of an EDF/BDF file's header; None where it does not parse
    (the readers then say why)."""
    try:
        with open(path, "rb") as f:
            fixed = f.read(256)
            ns = int(_edf_number(fixed[252:256].decode("latin-1")))
            ext = f.read(256 * ns) if 0 < ns < 4096 else b""
        if len(ext) < 256 * ns or ns < 1:
            return None
        header_bytes = int(_edf_number(fixed[184:192].decode("latin-1")))
        records = int(_edf_number(fixed[236:244].decode("latin-1")))
        record_s = _edf_number(fixed[244:252].decode("latin-1"))
        per_record = [
            int(_edf_number(ext[216 * ns + 8 * i : 216 * ns + 8 * i + 8].decode("latin-1")))
            for i in range(ns)
        ]
        labels = [_edf_text(ext[16 * i : 16 * i + 16]) for i in range(ns)]
    except (OSError, ValueError):
        return None
    width = 3 if fixed[:1] == b"\xff" else 2
    record_bytes = sum(per_record) * width
    if header_bytes != 256 * (ns + 1) or record_bytes < 1 or min(per_record) < 1:
        return None
    signals = sum(label not in ("EDF Annotations", "BDF Annotations") for label in labels)
    return header_bytes, records, record_bytes, record_s, signals


def _edf_number(text: str) -> float:
    """A header number, read leniently: NULs and spaces around it, a decimal comma."""
    return float(text.strip("\x00 ").replace(",", "."))


def _edf_text(raw: bytes) -> str:
    """A header field: UTF-8 where it is (some exporters write 'µV' so), else Latin-1; NULs and
    spaces around it dropped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.strip("\x00 ")


class EDFRecords:
    """An EDF/EDF+/BDF file read directly: its header parsed, its data records memory-mapped.
    For what EDFlib will not read:
    - EDF+D (or BDF+D) files whose data records follow each other without a gap: EDFlib refuses
      every "discontinuous" file, and some recorders mark all their files so. Each record's start
      comes from the first time-keeping entry ('+onset' then 0x14 0x14) of its annotation signal.
      A file with real gaps is an error that names the first of them, unless `gaps_ok`: `pieces`
      then lists its continuous stretches (for `split_discontinuous`).
    - files that break the letter of the standard in ways that do not change the samples: a unit
      or a name that is not ASCII ('µV', in Latin-1 or UTF-8), NULs in a field, a date with other
      separators, a decimal comma, '-1' data records (counted from the file's size).
    - files cut short (an interrupted copy) or longer than their header's count of data records
      (a recorder stopped before it wrote it): the whole records there are, with a warning.
    - a signal whose digital minimum equals its maximum (no calibration): read as flat, with a
      warning, rather than scaled by an arbitrary factor.
    A file whose time goes back (a record that starts before the one before it ends) is an error
    naming the record, unless `overlaps_ok` (`split_discontinuous` writes its pieces apart).
    Offers the part of pyedflib's EdfReader that `read_edf` and `edf_header` use; annotation
    signals are not listed, as there."""

    def __init__(self, path: Path, gaps_ok: bool = False, overlaps_ok: bool = False):
        self.path = path
        size = path.stat().st_size
        malformed = f"{path}: not a readable EDF/EDF+ file (malformed header)"
        with open(path, "rb") as f:
            fixed = f.read(256)
            try:
                ns = int(_edf_number(fixed[252:256].decode("latin-1")))
                ext = f.read(256 * max(ns, 0))
                header_bytes = int(_edf_number(fixed[184:192].decode("latin-1")))
                records = int(_edf_number(fixed[236:244].decode("latin-1")))
                self.record_s = _edf_number(fixed[244:252].decode("latin-1"))
            except ValueError:
                raise NNLabError(malformed) from None
        if len(fixed) < 256 or ns < 1 or len(ext) < 256 * ns or not self.record_s > 0:
            raise NNLabError(malformed)
        if header_bytes != 256 * (ns + 1):
            raise NNLabError(malformed)

        def field(offset: int, width: int) -> list[str]:
            start = offset * ns
            return [_edf_text(ext[start + i * width : start + (i + 1) * width]) for i in range(ns)]

        labels, dims = field(0, 16), field(96, 8)
        try:
            pmin, pmax, dmin, dmax = (
                np.array([_edf_number(v) for v in field(off, 8)]) for off in (104, 112, 120, 128)
            )
            per_record = np.array([int(_edf_number(v)) for v in field(216, 8)])
        except ValueError:
            raise NNLabError(malformed) from None
        if (per_record < 1).any():
            raise NNLabError(malformed)
        self.width = 3 if fixed[:1] == b"\xff" else 2  # BDF: 24-bit samples
        record_bytes = int(per_record.sum()) * self.width
        whole = (size - header_bytes) // record_bytes  # the whole records the file holds
        if records >= 0 and whole != records:
            if whole < 1:
                raise NNLabError(
                    f"{path}: not a readable EDF/EDF+ file (cut short: its header counts "
                    f"{records} data records of {record_bytes} bytes, the file holds none whole)"
                )
            said = (
                "cut short (an interrupted copy?)"
                if whole < records
                else ("longer than its header says (a recorder stopped before it wrote its count?)")
            )
            warnings.warn(
                f"{path.name}: {said}: {whole} whole data records ({whole * self.record_s:g} s) "
                f"where its header counts {records} ({records * self.record_s:g} s); the {whole} "
                "are read",
                stacklevel=2,
            )
        records = whole  # -1 (unknown) too: from the file's size
        offsets = np.concatenate([[0], np.cumsum(per_record[:-1])]) * self.width
        notes = [
            i for i, label in enumerate(labels) if label in ("EDF Annotations", "BDF Annotations")
        ]
        discontinuous = fixed[192:197] in (b"EDF+D", b"BDF+D")
        if records < 1 or (discontinuous and not notes):
            raise NNLabError(f"{path}: an EDF file without data records or time-keeping")
        data = np.memmap(path, np.uint8, "r", offset=header_bytes, shape=(records, record_bytes))
        a = notes[0] if notes else None
        onsets = np.arange(records) * self.record_s  # EDF, EDF+C: one record after the other
        # EDF+D: every record says when it starts; EDF+C: the first, a fraction of a second
        for k in range(records if discontinuous else 1 if notes else 0):
            tal = bytes(data[k, offsets[a] : offsets[a] + per_record[a] * self.width])
            try:
                onsets[k] = float(tal.split(b"\x14", 1)[0].decode("latin-1"))
            except ValueError:
                if discontinuous:
                    raise NNLabError(
                        f"{path}: data record {k} has no time-keeping annotation (+onset)"
                    ) from None
        if not discontinuous:  # the other records follow the first
            onsets[1:] = onsets[0] + np.arange(1, records) * self.record_s
        # a record that does not start where the one before it ends starts a new piece
        breaks = np.flatnonzero(np.abs(np.diff(onsets) - self.record_s) > 1e-3) + 1
        back = [int(k) for k in breaks if onsets[k] < onsets[k - 1] + self.record_s - 1e-3]
        if back and not overlaps_ok:
            k = back[0]
            ends = onsets[k - 1] + self.record_s
            raise NNLabError(
                f"{path}: its time goes back at data record {k}, which starts at {onsets[k]:g} "
                f"s, before the record before it ends ({ends:g} s; a clock set back?): `nnlab "
                f"seizure split {path.name}` writes its continuous pieces as EDF+C files, each "
                "read on its own"
            )
        bounds = [0, *breaks.tolist(), records]
        # (first record, end record, onset in seconds from the header's start time)
        self.pieces = [(a, b, float(onsets[a])) for a, b in zip(bounds, bounds[1:])]
        if len(breaks) and not gaps_ok:
            k = int(breaks[0])
            raise NNLabError(
                f"{path}: an EDF+D (discontinuous) file whose data records have gaps in time "
                f"(the first: record {k} starts at {onsets[k]:g} s, not "
                f"{onsets[k - 1] + self.record_s:g} s), read here as one continuous recording: "
                f"`nnlab seizure split {path.name}` writes its {len(self.pieces)} continuous "
                "pieces as EDF+C files (`seizure detect`, `prepare` and `train` read such a file "
                "stretch by stretch)"
            )
        self._header = fixed + ext[: 256 * ns]
        self._header_bytes = header_bytes
        self._annotation = (int(offsets[a]), per_record[a]) if a is not None else None
        self._data, self._offsets, self._per_record = data, offsets, per_record
        self._onsets = onsets
        self._signals = [i for i in range(ns) if i not in notes]
        self._labels, self._dims = labels, dims
        uncalibrated = [labels[i] for i in range(ns) if dmax[i] == dmin[i] and i not in notes]
        if uncalibrated:
            warnings.warn(
                f"{path.name}: {', '.join(uncalibrated)}: no calibration (digital minimum = "
                "maximum): read as flat",
                stacklevel=2,
            )
        # (pmax - pmin) / (dmax - dmin); 0 where uncalibrated: a flat signal at its minimum
        self._scale = np.where(
            dmax == dmin, 0.0, (pmax - pmin) / np.where(dmax == dmin, 1.0, dmax - dmin)
        )
        self._pmin, self._dmin = pmin, dmin
        self._records = records
        self._start = _edf_start(fixed[168:176], fixed[176:184], float(onsets[0]))
        self.signals_in_file = len(self._signals)
        self.file_duration = records * self.record_s
        # (from, to) seconds of the records read end to end, and the onset from the first's
        self.stretches = tuple(
            (a * self.record_s, b * self.record_s, float(onsets[a] - onsets[0]))
            for a, b, _ in self.pieces
        )

    def getLabel(self, i: int) -> str:  # noqa: N802 -- pyedflib's names
        return self._labels[self._signals[i]]

    def getPhysicalDimension(self, i: int) -> str:  # noqa: N802
        return self._dims[self._signals[i]]

    def getSampleFrequency(self, i: int) -> float:  # noqa: N802
        return self._per_record[self._signals[i]] / self.record_s

    def getNSamples(self) -> np.ndarray:  # noqa: N802
        return self._per_record[self._signals] * self._records

    def getStartdatetime(self) -> datetime:  # noqa: N802
        if self._start is None:
            raise ValueError("no start date")
        return self._start

    def readSignal(self, i: int, start: int = 0, n: int | None = None) -> np.ndarray:  # noqa: N802
        """Samples start .. start + n of signal i, in the header's physical unit (float64)."""
        j = self._signals[i]
        s = int(self._per_record[j])
        n = s * self._records - start if n is None else n
        first, last = start // s, (start + n - 1) // s + 1
        raw = self._data[first:last, self._offsets[j] : self._offsets[j] + s * self.width]
        raw = np.ascontiguousarray(raw).reshape(-1, self.width).astype(np.int32)
        if self.width == 2:
            digital = (raw[:, 0] | (raw[:, 1] << 8)).astype(np.int16).astype(np.float64)
        else:
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            digital = np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.float64)
        digital = digital[start - first * s : start - first * s + n]
        return self._pmin[j] + (digital - self._dmin[j]) * self._scale[j]

    def close(self) -> None:
        self._data = None


_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()  # EDF+ dates: 02-MAR-2002


def split_discontinuous(
    path: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False
) -> list[dict]:
    """Write each continuous piece of an EDF+D (BDF+D) file as an EDF+C (BDF+C) file in `out`,
    <stem>_partNN<suffix>, written atomically. The data records are copied byte for byte, so
    every signal keeps its rate, range and samples. The header gets the piece's start date and
    time and its number of records; each record's time-keeping entry is rewritten from the
    piece's start, and the file's other annotations (events) are not carried over. Returns per
    piece: the file written, its onset in seconds from the original's start, its duration. An
    existing file is not replaced unless `overwrite`."""
    from datetime import timedelta

    from nnlab.io import claim_outputs

    path, out = Path(path), Path(out)
    if not path.is_file():
        raise NNLabError(f"{path}: no such EDF file")
    with open(path, "rb") as f:
        if not f.read(236)[192:236].startswith((b"EDF+D", b"BDF+D")):
            raise NNLabError(f"{path}: not an EDF+D (discontinuous) file: nothing to split")
    reader = EDFRecords(path, gaps_ok=True, overlaps_ok=True)
    head = bytearray(reader._header)
    start = _edf_start(bytes(head[168:176]), bytes(head[176:184]), 0.0)
    at, size = reader._annotation[0], int(reader._annotation[1]) * reader.width
    head[192:197] = head[192:197].replace(b"+D", b"+C")
    targets = [
        out / f"{path.stem}_part{n:02d}{path.suffix}" for n in range(1, len(reader.pieces) + 1)
    ]
    try:
        claim_outputs(targets, overwrite)
    except NNLabError:
        reader.close()
        raise
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for target, (first, end, onset) in zip(targets, reader.pieces):
            whole = float(np.floor(onset))  # the header's clock has whole seconds
            if start is not None:
                when = start + timedelta(seconds=whole)
                head[168:176] = when.strftime("%d.%m.%y").encode()
                head[176:184] = when.strftime("%H.%M.%S").encode()
                if head[88:98] == b"Startdate " and head[98:109].count(b"-") == 2:
                    month = _MONTHS[when.month - 1]
                    head[98:109] = f"{when.day:02d}-{month}-{when.year}".encode()
            head[236:244] = f"{end - first:<8d}".encode()
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{target.stem}.", suffix=path.suffix)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(head)
                    for k in range(first, end):
                        record = bytearray(reader._data[k])
                        own = f"{reader._onsets[k] - whole:.7f}".rstrip("0").rstrip(".")
                        tal = f"+{own}".encode() + b"\x14\x14\x00"
                        if len(tal) > size:
                            raise NNLabError(f"{path}: no room for the time-keeping of record {k}")
                        record[at : at + size] = tal.ljust(size, b"\x00")
                        f.write(record)
                os.chmod(tmp, 0o666 & ~UMASK)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            duration = (end - first) * reader.record_s
            written.append({"file": target, "onset_s": onset, "duration_s": duration})
    finally:
        reader.close()
    return written


def _edf_start(date: bytes, clock: bytes, offset_s: float) -> datetime | None:
    """The header's start date and time (dd.mm.yy, hh.mm.ss; years 85-99 are 19xx; other
    separators than '.' are read too), moved by the first record's onset; None when they do not
    parse."""
    from datetime import timedelta

    try:
        d, m, y = (int(v) for v in re.split(r"[^0-9]+", date.decode("latin-1").strip()))
        hh, mm, ss = (int(v) for v in re.split(r"[^0-9]+", clock.decode("latin-1").strip()))
        start = datetime(1900 + y if y >= 85 else 2000 + y, m, d, hh, mm, ss)
    except ValueError:
        return None
    return start + timedelta(seconds=offset_s)


def _header_of(reader, path: Path) -> EDFHeader:
    n = reader.signals_in_file
    try:
        start = reader.getStartdatetime()
    except Exception:  # a malformed date field must not hide the samples
        start = None
    return EDFHeader(
        path=path,
        labels=tuple(reader.getLabel(i).strip() for i in range(n)),
        fs=tuple(float(reader.getSampleFrequency(i)) for i in range(n)),
        n_samples=tuple(int(k) for k in reader.getNSamples()),
        units=tuple(reader.getPhysicalDimension(i).strip() for i in range(n)),
        duration_s=float(reader.file_duration),
        start=start,
        stretches=getattr(reader, "stretches", ((0.0, float(reader.file_duration), 0.0),)),
    )


def edf_header(path: str | os.PathLike, gaps_ok: bool = False) -> EDFHeader:
    """Labels, rates, lengths and units of an EDF file, without reading its samples. An EDF+D
    file with gaps is an error unless `gaps_ok` (its `stretches` then say where they are)."""
    path = Path(path)
    reader = _open_edf(path, gaps_ok)
    try:
        return _header_of(reader, path)
    finally:
        reader.close()


def _to_microvolts(unit: str) -> float:
    # an empty or unknown unit is taken as microvolts, the EEG convention
    scale = unit_to_microvolts(unit)
    return 1.0 if scale is None else scale


def read_edf(
    path: str | os.PathLike,
    channels: Sequence[str] | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    gaps_ok: bool = False,
) -> Recording:
    """The samples of `channels` (labels, in that order; all channels when None) as a Recording.

    Labels are matched by `norm_label`; a label listed twice in the file gives its first
    occurrence; rows are labelled as asked. The selected channels must share one sampling rate
    (from a file that mixes rates, select channels of one rate). `start_s` / `duration_s` read a
    part of the file. Values are converted to microvolts from the header's physical dimension
    (mV, V, nV; an empty or unknown dimension is taken as uV). An EDF+D file with gaps is an
    error unless `gaps_ok`: its samples are then read end to end, `start_s` counted so.
    """
    path = Path(path)
    reader = _open_edf(path, gaps_ok)
    try:
        head = _header_of(reader, path)
        if channels is None:
            index = list(range(len(head.labels)))
            labels = list(head.labels)
        else:
            if len({norm_label(c) for c in channels}) != len(channels):
                raise NNLabError(f"{path}: channel list has duplicates: {list(channels)}")
            found = [head.find(c) for c in channels]
            missing = [c for c, i in zip(channels, found) if i is None]
            if missing:
                raise NNLabError(f"{path}: no channel(s) {missing} (has {', '.join(head.labels)})")
            index, labels = [int(i) for i in found], list(channels)
        if not index:
            raise NNLabError(f"{path}: no channels to read")
        rates = sorted({head.fs[i] for i in index})
        if len(rates) > 1:
            raise NNLabError(
                f"{path}: the selected channels have different sampling rates {rates} Hz; "
                "select channels of one rate"
            )
        fs = rates[0]
        total = min(head.n_samples[i] for i in index)
        first = int(round(start_s * fs))
        if not 0 <= first < total:
            raise NNLabError(
                f"{path}: start {start_s} s is outside the recording (0-{total / fs} s)"
            )
        count = (
            total - first if duration_s is None else min(int(round(duration_s * fs)), total - first)
        )
        data = np.empty((len(index), count), dtype=np.float32)  # (C, N)
        for row, i in enumerate(index):
            data[row] = reader.readSignal(i, first, count) * _to_microvolts(head.units[i])
    finally:
        reader.close()
    return Recording(path.stem, fs, labels, data, start_s=first / fs)


def write_edf(path: str | os.PathLike, recording: Recording, start: datetime | None = None) -> Path:
    """Write `recording` as EDF+ (16-bit, unit uV), atomically: a temporary file in the same
    folder, renamed onto `path` once complete.

    Each channel gets the integer physical range [floor(min), ceil(max)] (at least 1 uV wide) and
    the digital range [-32768, 32767]; samples are rounded to the nearest step. N must fill whole
    data records (1 s for an integer rate).
    """
    import pyedflib

    path = Path(path)
    rec = recording
    x = np.asarray(rec.data)  # (C, N)
    C, N = x.shape
    if not np.all(np.isfinite(x)):
        raise NNLabError(f"{path}: recording {rec.name} has NaN or infinite samples")
    bad = [label for label in rec.labels if len(label) > 16 or not label.isascii()]
    if bad:
        raise NNLabError(f"{path}: EDF labels must be ASCII, at most 16 characters: {bad}")
    p_min = np.floor(x.min(axis=1).astype(np.float64)) if N else np.zeros(C)
    p_max = np.maximum(np.ceil(x.max(axis=1).astype(np.float64)) if N else p_min, p_min + 1)
    if max(np.abs(p_min).max(), np.abs(p_max).max()) > 9_999_999:
        raise NNLabError(f"{path}: samples beyond +-1e7 uV do not fit EDF's 8-character range")
    d_min, d_max = -32768, 32767
    step = (p_max - p_min) / (d_max - d_min)
    digital = np.empty((C, N), dtype=np.int16)
    for c in range(C):  # row by row: hour-long files stay a few float64 rows in memory
        # (x - p_min) / step + d_min, rounded: the inverse of the reader's linear map
        d = np.round((x[c].astype(np.float64) - p_min[c]) / step[c]) + d_min
        digital[c] = np.clip(d, d_min, d_max)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".edf")
    os.close(fd)
    try:
        writer = pyedflib.EdfWriter(tmp, C, pyedflib.FILETYPE_EDFPLUS)
        try:
            writer.setSignalHeaders(
                [
                    {
                        "label": label,
                        "dimension": "uV",
                        "sample_frequency": rec.fs,
                        "physical_min": float(lo),
                        "physical_max": float(hi),
                        "digital_min": d_min,
                        "digital_max": d_max,
                        "transducer": "",
                        "prefilter": "",
                    }
                    for label, lo, hi in zip(rec.labels, p_min, p_max)
                ]
            )
            if start is not None:
                writer.setStartdatetime(start)
            per_record = writer.get_smp_per_record(0)
            if N % per_record:
                raise NNLabError(
                    f"{path}: {N} samples do not fill whole {per_record}-sample data records; "
                    f"trim or pad to a multiple of {per_record}"
                )
            blocks = digital.reshape(C, N // per_record, per_record).transpose(1, 0, 2)  # (R, C, S)
            blocks = np.ascontiguousarray(blocks)
            for block in blocks:
                if writer.blockWriteDigitalShortSamples(block.ravel()) != 0:
                    raise NNLabError(f"{path}: EDF writer failed")
        except ValueError as e:  # pyedflib's header checks (e.g. a rate with no record length)
            raise NNLabError(f"{path}: cannot write EDF ({e})") from None
        finally:
            writer.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


# ---- resampling ----------------------------------------------------------------------------------
def resample_ratio(fs_in: float, fs_out: float, max_denominator: int = 1000) -> tuple[int, int]:
    """(up, down), the rational approximation up/down ~= fs_out / fs_in with down <= 1000."""
    if not (fs_in > 0 and fs_out > 0):
        raise NNLabError(f"sampling rates must be positive, got {fs_in} and {fs_out}")
    ratio = Fraction(fs_out / fs_in).limit_denominator(max_denominator)
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> tuple[np.ndarray, float]:
    """Polyphase resampling along the last axis: (..., N) at fs_in -> (..., ~N up/down) at the
    returned rate fs_in * up / down (equal to fs_out unless the ratio needed approximating).

    `scipy.signal.resample_poly` upsamples by `up`, low-pass filters (Kaiser FIR at the lower
    Nyquist rate) and keeps every `down`-th sample."""
    from scipy.signal import resample_poly

    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return np.asarray(x, dtype=np.float32).copy(), float(fs_in)
    y = resample_poly(np.asarray(x, dtype=np.float64), up, down, axis=-1)
    return y.astype(np.float32), fs_in * up / down


def resample_recording(rec: Recording, fs: float) -> Recording:
    """`rec` at rate `fs` (the same object when it already is)."""
    if rec.fs == fs:
        return rec
    data, fs_new = resample(rec.data, rec.fs, fs)
    return replace(rec, data=data, fs=fs_new)


# ---- the CHB-MIT summary file ------------------------------------------------------------------
@dataclass(frozen=True)
class SummaryFile:
    """One `File Name:` block. Clock times are seconds after midnight as written (a summary may
    write 24:05:00 for five past midnight); seizures are (onset, offset) seconds from file start."""

    name: str
    clock_start_s: int | None
    clock_end_s: int | None
    seizures: tuple[tuple[float, float], ...]
    channels: tuple[str, ...]  # the montage listed last before this file


@dataclass(frozen=True)
class Summary:
    fs: float | None
    files: tuple[SummaryFile, ...]

    def file(self, name: str) -> SummaryFile:
        for f in self.files:
            if f.name == name:
                return f
        raise NNLabError(f"{name} is not listed in the summary")


_RATE = re.compile(r"^data sampling rate:\s*([\d.]+)\s*hz", re.I)
_MONTAGE = re.compile(r"^channels (in edf files|changed)\s*:", re.I)
_CHANNEL = re.compile(r"^channel\s+(\d+)\s*:(.*)$", re.I)
_FILE = re.compile(r"^file name:\s*(\S+)", re.I)
_CLOCK = re.compile(r"^file (start|end) time:\s*(\d+):(\d{1,2}):(\d{1,2})", re.I)
_COUNT = re.compile(r"^number of seizures in file:\s*(\d+)", re.I)
_SEIZURE = re.compile(r"^seizure\s*(\d+)?\s*(start|end)\s*time:\s*([\d.]+)\s*(seconds?|s)?", re.I)


def clock_seconds(text: str) -> int:
    """'13:43:04' -> 49384; hours past 23 are kept ('24:05:00' -> 86700)."""
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise NNLabError(f"not a clock time HH:MM:SS: '{text}'")
    h, m, s = (int(p) for p in parts)
    return h * 3600 + m * 60 + s


def parse_summary(text: str, source: str = "summary") -> Summary:
    """Parse a CHB-MIT `chbNN-summary.txt`.

    Recognised lines (case-insensitive; anything else, such as the '*****' rules, is ignored):
    'Data Sampling Rate: 256 Hz'; 'Channels in EDF Files:' or 'Channels changed:' opening a
    montage, followed by 'Channel 1: FP1-F7' lines; 'File Name: chb01_03.edf'; 'File Start Time:
    13:43:04' and 'File End Time: ...'; 'Number of Seizures in File: 1'; 'Seizure Start Time: 2996
    seconds' or 'Seizure 1 Start Time: 2996 seconds' and the matching End lines.
    """
    fs = None
    montage: list[str] = []
    files: list[dict] = []

    def fail(lineno: int, why: str):
        raise NNLabError(f"{source}: line {lineno}: {why}")

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _RATE.match(line):
            fs = float(m.group(1))
        elif _MONTAGE.match(line):
            montage = []  # a new montage, in force from the next file on
        elif m := _CHANNEL.match(line):
            montage.append(m.group(2).strip())
        elif m := _FILE.match(line):
            files.append(
                {"name": m.group(1), "start": None, "end": None, "count": None, "on": [], "off": []}
            )
            files[-1]["channels"] = tuple(montage)
        elif m := _CLOCK.match(line):
            if not files:
                fail(lineno, "a file time before any 'File Name:'")
            h, mi, s = (int(g) for g in m.group(2, 3, 4))
            files[-1][m.group(1).lower()] = h * 3600 + mi * 60 + s
        elif m := _COUNT.match(line):
            if not files:
                fail(lineno, "a seizure count before any 'File Name:'")
            files[-1]["count"] = int(m.group(1))
        elif m := _SEIZURE.match(line):
            if not files:
                fail(lineno, "a seizure time before any 'File Name:'")
            f = files[-1]
            if m.group(2).lower() == "start":
                if len(f["on"]) != len(f["off"]):
                    fail(lineno, f"{f['name']}: a seizure start without an end before it")
                f["on"].append(float(m.group(3)))
            else:
                if len(f["off"]) != len(f["on"]) - 1:
                    fail(lineno, f"{f['name']}: a seizure end without its start")
                if float(m.group(3)) < f["on"][-1]:
                    fail(lineno, f"{f['name']}: seizure ends before it starts")
                f["off"].append(float(m.group(3)))
    out = []
    for f in files:
        if len(f["on"]) != len(f["off"]):
            raise NNLabError(f"{source}: {f['name']}: a seizure start without an end")
        if f["count"] is not None and f["count"] != len(f["on"]):
            warnings.warn(
                f"{source}: {f['name']} says {f['count']} seizure(s) but lists {len(f['on'])}",
                stacklevel=2,
            )
        out.append(
            SummaryFile(
                f["name"], f["start"], f["end"], tuple(zip(f["on"], f["off"])), f["channels"]
            )
        )
    return Summary(fs, tuple(out))


def summary_lines(
    name: str,
    seizures: Sequence[tuple[float, float]],
    clock_start: str | None = None,
    clock_end: str | None = None,
) -> list[str]:
    """One file's block of a CHB-MIT summary, as `parse_summary` reads it: its name, clock times
    (HH:MM:SS, when given), the seizure count and each seizure's start and end in seconds from the
    file's start (numbered when there are several, as CHB-MIT writes them)."""
    lines = [f"File Name: {name}"]
    lines += [f"File Start Time: {clock_start}"] if clock_start is not None else []
    lines += [f"File End Time: {clock_end}"] if clock_end is not None else []
    lines.append(f"Number of Seizures in File: {len(seizures)}")
    for k, (on, off) in enumerate(seizures, 1):
        number = f" {k}" if len(seizures) > 1 else ""
        lines += [
            f"Seizure{number} Start Time: {on:.10g} seconds",
            f"Seizure{number} End Time: {off:.10g} seconds",
        ]
    return lines + [""]


# the Siena Scalp EEG Database's Seizures-list-PNxx.txt (PhysioNet): one block per seizure
_SIENA_FILE = re.compile(r"^file\s*name\s*:\s*(\S+)", re.I)
_SIENA_TIME = re.compile(
    r"^(registration|seizure)?\s*(start|end)\s*time\s*:\s*(\d{1,2}(?:\s\d)?)\s*[.:]\s*"
    r"(\d{1,2})\s*[.:]\s*(\d{1,2})",
    re.I,
)


def parse_seizure_list(text: str, source: str = "seizure list") -> Summary:
    """Parse a Siena Scalp EEG Database `Seizures-list-PNxx.txt` into the `Summary` a CHB-MIT
    summary gives.

    Each seizure is a block: 'File name: PN00-1.edf', 'Registration start time: 19.39.33',
    'Registration end time: 20.22.58', 'Seizure start time: 19.58.36' (or 'Start time:'),
    'Seizure end time: 19.59.46' (or 'End time:'). Clock times are HH.MM.SS or HH:MM:SS (an hour
    written with a stray space, '1 6', is read as 16, as one published list has it). A file
    is the recording that starts at its registration start; its seizures are their clock times
    minus that start, modulo a day (a recording may pass midnight), in seconds. A file named in
    several blocks (several seizures) is one file. There is no sampling rate (fs None) and no
    montage: the EDF headers have them."""
    files: dict[str, dict] = {}
    current = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _SIENA_FILE.match(line):
            name = m.group(1)
            current = files.setdefault(name, {"start": None, "end": None, "seizures": []})
            current["onset"] = None
        elif m := _SIENA_TIME.match(line):
            if current is None:
                raise NNLabError(f"{source}: line {lineno}: a time before any 'File name:'")
            what, edge = (m.group(1) or "seizure").lower(), m.group(2).lower()
            h = int(m.group(3).replace(" ", ""))
            clock = h * 3600 + int(m.group(4)) * 60 + int(m.group(5))
            if what == "registration":
                current[edge] = clock
            elif edge == "start":
                current["onset"] = clock
            else:
                if current["onset"] is None or current["start"] is None:
                    raise NNLabError(
                        f"{source}: line {lineno}: a seizure end without its start or the "
                        "registration start before it"
                    )
                on = (current["onset"] - current["start"]) % DAY_S
                off = (clock - current["start"]) % DAY_S
                if off < on:
                    raise NNLabError(f"{source}: line {lineno}: the seizure ends before it starts")
                current["seizures"].append((float(on), float(off)))
                current["onset"] = None
    out = [
        SummaryFile(name, f["start"], f["end"], tuple(sorted(f["seizures"])), ())
        for name, f in files.items()
    ]
    return Summary(None, tuple(out))


# TUH EEG Seizure Corpus labels: 'seiz' (the .csv_bi / .tse_bi files) and the seizure types of
# the multi-class files (focal, generalised, simple / complex partial, absence, tonic, clonic,
# tonic-clonic, atonic, myoclonic non-specific ...); 'bckg' and artifact labels are not seizures
TUH_SEIZURE_LABELS = frozenset("seiz fnsz gnsz spsz cpsz absz tnsz cnsz tcsz atsz mysz".split())
TUH_SUFFIXES = (".csv_bi", ".tse_bi", ".csv", ".tse")
_TUH_CSV = re.compile(r"^\s*channel\s*,\s*start_time\s*,\s*stop_time\s*,\s*label", re.I | re.M)
_TUH_TSE = re.compile(r"^\s*version\s*=\s*tse_v", re.I | re.M)
_TUH_NAME = re.compile(r"^#\s*bname\s*=\s*(\S+)", re.I | re.M)


def is_tuh_annotation(text: str) -> bool:
    """A TUH EEG annotation file: a .csv / .csv_bi ('channel,start_time,stop_time,label,...'
    header) or an older .tse / .tse_bi ('version = tse_v1.0.0')."""
    return bool(_TUH_CSV.search(text) or _TUH_TSE.search(text))


def parse_tuh_annotations(text: str, name: str, source: str = "annotations") -> Summary:
    """The seizures of one recording from its TUH EEG Seizure Corpus annotation file, as a
    `Summary` of that one file (named by the file's '# bname' line + '.edf', else `name`).

    .csv / .csv_bi: '#' comment lines, the header 'channel,start_time,stop_time,label,confidence',
    then one row per event (a channel name or TERM for the whole recording); .tse / .tse_bi:
    'start stop label confidence' rows after the version line. Rows whose label is a seizure
    (`TUH_SEIZURE_LABELS`) are kept; the per-channel rows of one seizure overlap, and every
    overlapping or touching stretch becomes one seizure (onset, offset) in seconds."""
    csv_format = bool(_TUH_CSV.search(text))
    events: list[tuple[float, float]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or _TUH_CSV.match(line) or _TUH_TSE.match(line):
            continue
        fields = [f.strip() for f in line.split(",")] if csv_format else line.split()
        try:
            start, stop, label = (
                (float(fields[1]), float(fields[2]), fields[3])
                if csv_format
                else (float(fields[0]), float(fields[1]), fields[2])
            )
        except (IndexError, ValueError):
            raise NNLabError(f"{source}: line {lineno}: not an annotation row: '{line}'") from None
        if label.lower() not in TUH_SEIZURE_LABELS:
            continue
        if stop < start:
            raise NNLabError(f"{source}: line {lineno}: the event ends before it starts")
        events.append((start, stop))
    if m := _TUH_NAME.search(text):
        name = m.group(1) if m.group(1).lower().endswith(".edf") else m.group(1) + ".edf"
    return Summary(None, (SummaryFile(name, None, None, merged_events(events), ()),))


# BIDS (and the SzCORE conversions of CHB-MIT, Siena, TUSZ and SeizeIT to it): a recording's
# X_eeg.edf has its events in X_events.tsv: tab-separated, with onset and duration (seconds) and
# the event's type in eventType (SzCORE: 'sz', 'sz_foc_ia_m_automatisms', ...; 'bckg'), or in
# trial_type / value; a type that starts with 'sz' or names a seizure is a seizure
_BIDS_TYPE_COLUMNS = ("eventtype", "trial_type", "value")


def is_bids_events(text: str) -> bool:
    """A BIDS events table: a tab-separated header with onset and duration columns."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    columns = [c.strip().lower() for c in first.split("\t")]
    return "onset" in columns and "duration" in columns


def parse_bids_events(text: str, name: str, source: str = "events") -> Summary:
    """The seizures of one recording from its BIDS events table, as a `Summary` of that one file
    named `name`: rows whose type (eventType, else trial_type, else value) starts with 'sz' or
    contains 'seiz' (case-insensitive), from onset to onset + duration; overlapping or touching
    ones merged. A duration of 'n/a' is an error naming the row: a seizure needs an end."""
    lines = [line for line in text.splitlines() if line.strip()]
    columns = [c.strip().lower() for c in lines[0].split("\t")]
    kind = next((columns.index(c) for c in _BIDS_TYPE_COLUMNS if c in columns), None)
    if kind is None:
        raise NNLabError(
            f"{source}: no eventType, trial_type or value column to tell seizures by "
            f"(columns: {', '.join(columns)})"
        )
    on_col, dur_col = columns.index("onset"), columns.index("duration")
    events = []
    for lineno, line in enumerate(lines[1:], 2):
        fields = [f.strip() for f in line.split("\t")]
        label = fields[kind].lower() if kind < len(fields) else ""
        if not (label.startswith("sz") or "seiz" in label):
            continue
        try:
            onset, duration = float(fields[on_col]), float(fields[dur_col])
        except (IndexError, ValueError):
            raise NNLabError(
                f"{source}: line {lineno}: a seizure needs a numeric onset and duration: '{line}'"
            ) from None
        if duration < 0:
            raise NNLabError(f"{source}: line {lineno}: negative duration")
        events.append((onset, onset + duration))
    return Summary(None, (SummaryFile(name, None, None, merged_events(events), ()),))


def merged_events(events: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """(onset, offset) events sorted, the overlapping or touching ones merged into one."""
    merged: list[list[float]] = []
    for on, off in sorted(events):
        if merged and on <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], off)
        else:
            merged.append([on, off])
    return tuple((float(on), float(off)) for on, off in merged)


# The Helsinki neonatal EEG set (Stevenson et al. 2019, Sci. Data 6:190039): one table per
# annotator (annotations_2017_A.csv, _B, _C) beside eeg1.edf ... eeg79.edf. The header holds
# recording numbers (column N annotates eegN.edf); then one row per second of recording, 1 where
# that annotator marked a seizure, 0 elsewhere, cells past a recording's end empty
_NUMBER = re.compile(r'^"?(\d+)"?$')
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def is_per_second_table(text: str) -> bool:
    """A per-second annotation table: a header of recording numbers only, then rows of numbers
    (or empty cells)."""
    lines = [line for line in text.splitlines()[:3] if line.strip()]
    if len(lines) < 2:
        return False
    head = [c.strip() for c in lines[0].split(",")]
    cells = [c.strip().strip('"') for c in lines[1].split(",")]
    return all(_NUMBER.match(c) for c in head) and all(
        c == "" or re.fullmatch(r"[-+]?\d+(\.\d*)?", c) for c in cells
    )


def per_second_columns(text: str, source: str = "annotations") -> dict[int, np.ndarray]:
    """Each recording number of a per-second table with its column as a boolean array, one value
    a second (True: marked as seizure), as long as the column's cells are filled. A cell that is
    neither 0 nor 1, or an empty one before the column's end, is an error naming it."""
    import io

    lines = text.splitlines()
    numbers = [int(_NUMBER.match(c.strip()).group(1)) for c in lines[0].split(",")]
    try:
        table = np.genfromtxt(io.StringIO(text), delimiter=",", skip_header=1, dtype=np.float64)
    except ValueError as e:  # rows of unequal length
        raise NNLabError(f"{source}: not a table of 0 and 1: {str(e).splitlines()[-1]}") from None
    table = table.reshape(-1, len(numbers))
    out = {}
    for j, number in enumerate(numbers):
        column = table[:, j]
        filled = np.flatnonzero(~np.isnan(column))
        n = int(filled[-1]) + 1 if len(filled) else 0
        bad = np.flatnonzero(~np.isin(column[:n], (0.0, 1.0)))
        if len(bad):
            raise NNLabError(
                f"{source}: line {int(bad[0]) + 2}: column {number}: a cell that is not 0 or 1"
            )
        out[number] = column[:n] == 1.0
    return out


def seconds_to_events(marked: np.ndarray) -> tuple[tuple[float, float], ...]:
    """(onset, offset) seconds of the runs of marked seconds (row i covers [i, i + 1) s)."""
    edges = np.diff(np.concatenate([[0], marked.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return tuple((float(a), float(b)) for a, b in zip(starts, ends))


def parse_per_second_table(text: str, source: str = "annotations") -> Summary:
    """One annotator's per-second table as a `Summary` of the recordings it covers, column N
    naming eegN.edf (the Helsinki set's names)."""
    return Summary(
        None,
        tuple(
            SummaryFile(f"eeg{n}.edf", None, None, seconds_to_events(marked), ())
            for n, marked in per_second_columns(text, source).items()
        ),
    )


@dataclass(frozen=True)
class Sidecar:
    """A recording's own seizure annotations, found beside it (`annotation_sidecar`): the files
    read and the seizures, (onset, offset) seconds from the recording's start."""

    paths: tuple[Path, ...]
    seizures: tuple[tuple[float, float], ...]
    rule: str = ""  # how several annotators' marks were combined

    def __str__(self) -> str:
        return ", ".join(map(str, self.paths)) + (f" ({self.rule})" if self.rule else "")


def _cached_columns(path: Path) -> dict[int, np.ndarray]:
    """`per_second_columns` of a file, read once while the file is unchanged (a folder of 79
    recordings shares three tables)."""
    st = path.stat()
    return _columns_of(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _columns_of(path: str, mtime_ns: int, size: int) -> dict[int, np.ndarray]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise NNLabError(f"{path}: cannot read annotations ({e.strerror})") from None
    return per_second_columns(text, path)


def sidecar_candidates(edf: Path) -> list[Path]:
    """Where a recording's own annotations may be: TUH's (same stem: .csv_bi, .tse_bi, .csv,
    .tse), BIDS' (X_eeg.edf -> X_events.tsv)."""
    candidates = [edf.with_suffix(suffix) for suffix in TUH_SUFFIXES]
    stem = edf.stem[: -len("_eeg")] if edf.stem.endswith("_eeg") else edf.stem
    return [*candidates, edf.with_name(f"{stem}_events.tsv")]


def annotation_sidecar(edf: str | os.PathLike) -> Sidecar | None:
    """The seizure annotations of one recording, beside it, read: TUH's (same stem: .csv_bi
    first, then .tse_bi, .csv, .tse), BIDS' (X_eeg.edf -> X_events.tsv), or the Helsinki
    neonatal set's per-second tables in the recording's folder (`is_per_second_table`) that hold
    a column for the number its name ends in (eeg9.edf: column 9). With several such tables, one
    per annotator, a second is ictal when more than half of them mark it (2 of 3). A table with
    a cell that is neither 0 nor 1 is left out with a warning (it may be some other table of
    numbers). None when there is none."""
    edf = Path(edf)
    for candidate in sidecar_candidates(edf):
        if candidate.is_file():
            try:
                head = candidate.read_text(encoding="utf-8-sig", errors="replace")[:4096]
            except OSError:
                continue
            if is_tuh_annotation(head) or is_bids_events(head):
                (sf,) = read_summary(candidate).files
                return Sidecar((candidate,), sf.seizures)
    number = _TRAILING_NUMBER.search(edf.stem)
    if number is None or not edf.parent.is_dir():
        return None
    marks, paths = [], []
    for table in sorted(edf.parent.glob("*.csv")):
        try:
            with open(table, encoding="utf-8-sig", errors="replace") as f:
                head = f.read(4096)
        except OSError:
            continue
        if not is_per_second_table(head):
            continue
        try:
            columns = _cached_columns(table)
        except NNLabError as e:  # a table of numbers that is no annotation: not a reason to stop
            warnings.warn(f"{e}: not read as seizure annotations", stacklevel=2)
            continue
        if int(number.group(1)) in columns:
            marks.append(columns[int(number.group(1))])
            paths.append(table)
    if not marks:
        return None
    n = max(len(m) for m in marks)
    votes = sum(np.pad(m, (0, n - len(m))).astype(np.int32) for m in marks)
    rule = f"a second marked by more than half of {len(marks)} annotators" if len(marks) > 1 else ""
    return Sidecar(tuple(paths), seconds_to_events(2 * votes > len(marks)), rule)


def read_summary(path: str | os.PathLike) -> Summary:
    """Seizure annotations: a CHB-MIT `chbNN-summary.txt`, a Siena Scalp EEG
    `Seizures-list-PNxx.txt` (told apart by its 'Registration start time' lines), or one
    recording's TUH EEG Seizure Corpus .csv_bi / .csv / .tse_bi / .tse file (`is_tuh_annotation`;
    a Summary of that one file), a BIDS X_events.tsv (`is_bids_events`; a Summary of
    X_eeg.edf), or one annotator's per-second table of the Helsinki neonatal set
    (`is_per_second_table`; a Summary of eeg1.edf, eeg2.edf, ...)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise NNLabError(f"{path}: cannot read summary ({e.strerror})") from None
    if re.search(r"^\s*registration\s+start\s+time\s*:", text, re.I | re.M):
        return parse_seizure_list(text, source=str(path))
    if is_tuh_annotation(text):
        return parse_tuh_annotations(text, path.stem + ".edf", source=str(path))
    if is_bids_events(text):  # X_events.tsv annotates X_eeg.edf
        stem = path.stem[: -len("_events")] if path.stem.endswith("_events") else path.stem
        return parse_bids_events(text, f"{stem}_eeg.edf", source=str(path))
    if is_per_second_table(text):
        return parse_per_second_table(text, source=str(path))
    return parse_summary(text, source=str(path))


def summary_path(folder: Path, patient: str) -> Path | None:
    """Where a patient's annotations are: <patient>-summary.txt (CHB-MIT) or
    Seizures-list-<patient>.txt (Siena), in `folder` or `folder`/<patient>; None if nowhere."""
    for candidate in (folder, folder / patient):
        for name in (f"{patient}-summary.txt", f"Seizures-list-{patient}.txt"):
            if (candidate / name).is_file():
                return candidate / name
    return None


def global_starts(clock_starts: Sequence[int]) -> list[int]:
    """Patient-global start seconds from clock times of the files in recording order: each start
    is moved by whole days until it is not before the previous file's start (recordings run
    across midnight: 23:10:00, 00:12:00 -> day 2), then the first start is subtracted."""
    out: list[int] = []
    day = 0
    for clock in clock_starts:
        t = clock + day * DAY_S
        while out and t < out[-1]:
            day += 1
            t += DAY_S
        out.append(t)
    return [t - out[0] for t in out] if out else []


# ---- channel sets --------------------------------------------------------------------------------
def unique_labels(labels: Sequence[str]) -> list[str]:
    """Labels without dummies, each kept once (first occurrence; compared by `norm_label`)."""
    seen, out = set(), []
    for label in labels:
        key = norm_label(label)
        if is_dummy(label) or key in seen:
            continue
        seen.add(key)
        out.append(label.strip())
    return out


def common_channels(label_lists: Sequence[Sequence[str]], min_fraction: float = 0.5) -> list[str]:
    """The labels present in more than `min_fraction` of the lists (in all of them for 1.0),
    dummies and repeats within a list dropped, in order of first appearance. The default keeps
    what a strict majority of files has: a channel found in only half of them (an ECG or VNS
    lead of some files) does not cost the other half their place."""
    if not 0 < min_fraction <= 1:
        raise NNLabError(f"min_fraction must be in (0, 1], got {min_fraction}")
    if not label_lists:
        return []
    per_list = [unique_labels(labels) for labels in label_lists]
    count: dict[str, int] = {}
    first: dict[str, str] = {}
    for labels in per_list:
        for label in labels:
            key = norm_label(label)
            count[key] = count.get(key, 0) + 1
            first.setdefault(key, label)
    n = len(per_list)
    if min_fraction == 1:
        return [first[k] for k in first if count[k] == n]
    return [first[k] for k in first if count[k] > min_fraction * n]


def read_resampled(
    path: Path,
    channels: Sequence[str],
    fs_file: float,
    n_file: int,
    fs: float,
    first: int,
    last: int,
    derivation: Derivation | None = None,
    offset: int = 0,
    gaps_ok: bool = False,
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """The samples [first, last) at rate `fs` of `channels` of an EDF file of n_file samples at
    fs_file, read from the file with a margin: (x (C, n) at fs, the fs-sample index of x's
    first column, the file samples read (C, m), the file index of their first column). With a
    `derivation` (`nnlab.data.montage`), `channels` are its sources and x and the samples read
    are its channels, mixed from them.

    x's samples equal those of the whole recording resampled at once (`resample`): the read
    starts at a multiple of `down` file samples (up/down = fs / the file's rate), where the
    resampled grid meets the file's, and the margin is twice the filter's half-length, so that
    resample_poly's zero-padded edges fall outside [first, last).

    With `offset`, the n_file samples are those from file sample `offset` on: one continuous
    stretch of an EDF+D file with gaps (`gaps_ok`; its samples read end to end,
    `EDFHeader.stretches`), read as if it were a file of its own."""
    up, down = resample_ratio(fs_file, fs)
    margin = 0 if up == down else down * (1 + -(-20 * max(up, down) // (up * down)))
    a0 = max(0, first * down // up // down * down - margin)  # file samples
    a1 = min(n_file, -(-last * down // up) + margin)
    raw = read_edf(
        path,
        channels,
        start_s=(offset + a0) / fs_file,
        duration_s=(a1 - a0) / fs_file,
        gaps_ok=gaps_ok,
    ).data
    if derivation is not None:
        raw = derivation.apply(raw)
    x, _ = resample(raw, fs_file, fs)  # (C, n)
    return x, a0 * up // down, raw, a0


def stretch_samples(head: EDFHeader, labels: Sequence[str], rate: float, f0: float, f1: float):
    """(first file sample, samples) of the channels `labels` at `rate` in the stretch [f0, f1)
    seconds of the samples read end to end (`EDFHeader.stretches`)."""
    n_file = min(head.n_samples[head.find(c)] for c in labels if head.fs[head.find(c)] == rate)
    o = int(round(f0 * rate))
    return o, min(int(round(f1 * rate)), n_file) - o


def read_sources(
    path: Path,
    head: EDFHeader,
    sources: Sequence[str],
    fs: float,
    stretch: tuple[float, float],
    first: int,
    last: int,
    derivation=None,
    gaps_ok: bool = False,
) -> tuple[np.ndarray, int, Callable[[int, int], np.ndarray]]:
    """The model-rate samples of `sources` in one stretch from model-rate index `first` to at
    least `last`, as `read_resampled` reads them: (x (C, n), x's first model-rate index, flat),
    flat(g0, g1) -> (C,) bool: the channels whose *file* samples behind the model-rate samples
    [g0, g1) are all equal (exactly: before resampling, which leaves a constant constant only to
    rounding). Sources at several rates are read a rate at a time, each resampled to fs, and
    stacked, x cut to [first, last); a derivation mixes them after resampling (both are linear),
    and a derived channel is flat when all of its sources are."""

    def flat_of(raw: np.ndarray, a0: int, rate: float):
        up, down = resample_ratio(rate, fs)
        return lambda g0, g1: (
            np.ptp(raw[:, g0 * down // up - a0 : -(-g1 * down // up) - a0], 1) == 0
        )

    f0, f1 = stretch
    groups: dict[float, list[int]] = {}
    for i, c in enumerate(sources):
        groups.setdefault(head.fs[head.find(c)], []).append(i)
    if len(groups) == 1:
        ((rate, _),) = groups.items()
        o, n = stretch_samples(head, sources, rate, f0, f1)
        x, at, raw, a0 = read_resampled(
            path, sources, rate, n, fs, first, last, derivation, offset=o, gaps_ok=gaps_ok
        )
        return x, at, flat_of(raw, a0, rate)
    x = np.empty((len(sources), last - first), dtype=np.float32)
    flats = []
    for rate, rows in groups.items():
        labels = [sources[i] for i in rows]
        o, n = stretch_samples(head, labels, rate, f0, f1)
        part, at, raw, a0 = read_resampled(
            path, labels, rate, n, fs, first, last, offset=o, gaps_ok=gaps_ok
        )
        x[rows] = part[:, first - at : last - at]
        flats.append((rows, flat_of(raw, a0, rate)))

    def flat(g0: int, g1: int) -> np.ndarray:
        each = np.zeros(len(sources), dtype=bool)
        for rows, f in flats:
            each[rows] = f(g0, g1)
        if derivation is None:
            return each
        return ~((derivation.mix != 0) & ~each[None, :]).any(axis=1)

    return (derivation.apply(x) if derivation is not None else x), first, flat


# ---- a patient's recordings ----------------------------------------------------------------------
@dataclass(frozen=True)
class FileEntry:
    """One indexed file: where it is and when, in patient-global seconds."""

    name: str
    path: Path
    fs: float  # rate of the patient's channels in this file
    duration_s: float
    start_s: float
    seizures: tuple[tuple[float, float], ...]  # (onset, offset), global seconds
    labels: tuple[str, ...]  # every channel label in the file, as stored
    # how the patient's channels come from this file's when they are not all stored under their
    # own labels (`nnlab.data.montage`); None: read as labelled
    derivation: Derivation | None = None
    # one continuous stretch of an EDF+D file with gaps (its name that of the piece `split`
    # writes, <stem>_partNN): where its samples begin among the file's, read end to end
    offset_s: float = 0.0
    stretch: bool = False
    # the rates of the channels read, when they are several (each read and resampled on its
    # own: `read_sources`); `fs` is then the lowest
    rates: tuple[float, ...] = ()

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass
class Patient:
    """A patient's recordings, indexed from the summary and the EDF headers (no samples read).

    `channels` are read from every file in that order; `skipped` lists (file name, why) for the
    summary's files that are not in `files`; `all_seizures` are those of every listed file."""

    patient: str
    folder: Path
    channels: list[str]
    files: list[FileEntry]
    all_seizures: list[tuple[float, float]] = field(default_factory=list)
    fs: float | None = None  # the summary's 'Data Sampling Rate'
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def seizures(self) -> np.ndarray:
        """(K, 2) float64 (onset, offset) in global seconds, sorted by onset: every seizure the
        summary lists, also those in skipped files -- they happened, so they still bound the
        interictal gap and decide which seizures lead."""
        return np.asarray(sorted(self.all_seizures), dtype=np.float64).reshape(-1, 2)

    @property
    def recorded_s(self) -> float:
        """Seconds of EEG in the indexed files."""
        return float(sum(f.duration_s for f in self.files))

    def entry(self, key: int | str) -> FileEntry:
        if isinstance(key, str):
            for f in self.files:
                if key in (f.name, Path(f.name).stem):
                    return f
            raise NNLabError(f"{self.patient}: no indexed file '{key}'")
        return self.files[key]

    def read_span(self, key: int | str, fs: float, first: int, last: int) -> np.ndarray:
        """Samples [first, last) at rate `fs` (C, last - first) of the patient's channels in one
        file, read from the file with a margin (`read_resampled`): equal to those of the whole
        file resampled at once, in memory only a stretch of it."""
        f = self.entry(key)
        sources = f.derivation.sources if f.derivation is not None else self.channels
        if f.rates:  # channels at several rates
            head = edf_header(f.path, gaps_ok=f.stretch)
            stretch = (f.offset_s, f.offset_s + f.duration_s)
            x, x0, _ = read_sources(
                f.path, head, sources, fs, stretch, first, last, f.derivation, f.stretch
            )
            return x[:, first - x0 : last - x0]
        n_file = int(round(f.duration_s * f.fs))
        x, x0, _, _ = read_resampled(
            f.path,
            sources,
            f.fs,
            n_file,
            fs,
            first,
            last,
            f.derivation,
            offset=int(round(f.offset_s * f.fs)),
            gaps_ok=f.stretch,
        )
        if first < x0 or x.shape[1] < last - x0:
            raise NNLabError(f"{f.name}: samples {first}-{last} at {fs:g} Hz are outside the file")
        return x[:, first - x0 : last - x0]

    def read(
        self,
        key: int | str,
        fs: float | None = None,
        start_s: float = 0.0,
        duration_s: float | None = None,
    ) -> Recording:
        """The patient's channels of one file (by index or name), resampled to `fs` when given;
        `start_s` / `duration_s` are relative to the file's start. Rows follow `channels`; the
        Recording's start_s is global."""
        f = self.entry(key)
        if f.rates:  # channels at several rates: each resampled to fs, or to the highest
            target = fs if fs is not None else max(f.rates)
            first = int(round(start_s * target))
            span = f.duration_s - start_s if duration_s is None else duration_s
            x = self.read_span(key, target, first, first + int(span * target))
            name = Path(f.name).stem
            return Recording(name, target, list(self.channels), x, f.start_s + first / target)
        if f.stretch and duration_s is None:  # to the stretch's end, not the file's
            duration_s = f.duration_s - start_s
        labels = self.channels if f.derivation is None else f.derivation.sources
        rec = read_edf(f.path, labels, f.offset_s + start_s, duration_s, gaps_ok=f.stretch)
        if f.derivation is not None:
            rec = replace(rec, labels=list(self.channels), data=f.derivation.apply(rec.data))
        rec.start_s += f.start_s - f.offset_s
        return resample_recording(rec, fs) if fs is not None else rec


def annotated_patient(folder: Path, patient: str) -> tuple[Summary, list[str]] | None:
    """A patient without a summary, as a `Summary` of its annotated recordings: the EDF files
    under `folder`/<patient> or, when there is no such folder, those under `folder` named
    <patient> or starting with '<patient>_', each with its annotations beside it
    (`annotation_sidecar`). The TUH Seizure Corpus (v2: <patient>/<session>/<montage>/
    <patient>_s001_t000.edf + .csv_bi; v1.5: <montage>/<group>/<patient>/<session>/...), BIDS
    datasets (sub-01/ses-01/eeg/sub-01_ses-01_task-x_run-01_eeg.edf + _events.tsv) and the
    Helsinki neonatal set (eeg9.edf, one recording a patient, with the annotators' tables beside
    it) are laid out so. File names are paths
    relative to `folder`; files are in name order (sessions, then tokens or runs) and carry no
    clock times (see `load_patient`). Also returns the EDF files that have no annotation file.
    None when no EDF file is found."""
    mine = folder / patient
    root = mine if mine.is_dir() else folder
    edfs = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in (".edf", ".bdf") and p.is_file()
        and (root == mine or p.stem == patient or p.stem.startswith(f"{patient}_"))
    )  # fmt: skip
    if not edfs:
        return None
    files, bare = [], []
    for edf in edfs:
        name = edf.relative_to(folder).as_posix()
        sidecar = annotation_sidecar(edf)
        if sidecar is None:
            near = [c for c in sidecar_candidates(edf) if c.is_file()]
            bare.append(
                f"{name} ({near[0].name} beside it is not a TUH or BIDS annotation file: BIDS "
                "needs a tab-separated table with onset and duration columns)"
                if near
                else name
            )
            continue
        files.append(SummaryFile(name, None, None, sidecar.seizures, ()))
    return Summary(None, tuple(drop_copies(folder, files))), bare


def drop_copies(folder: Path, files: list[SummaryFile]) -> list[SummaryFile]:
    """The files less the copies of one recording stored under several montage folders (TUSZ
    v2.0.0-2.0.1 keeps some sessions under both 01_tcp_ar and 03_tcp_ar_a): the same name, start
    and length. The copy with the most channels is kept, and a warning names the others: copies
    would count a seizure twice, one of them in training when the other is held out."""
    groups: dict[tuple, list[tuple[SummaryFile, EDFHeader]]] = {}
    kept_order = []
    for sf in files:
        try:
            head = edf_header(folder / sf.name, gaps_ok=True)
        except NNLabError:
            kept_order.append(sf)  # unreadable: load_patient says so
            continue
        key = (Path(sf.name).name, head.start, round(head.span_s, 3))
        if key not in groups:
            kept_order.append(key)
        groups.setdefault(key, []).append((sf, head))
    out = []
    for item in kept_order:
        if isinstance(item, SummaryFile):
            out.append(item)
            continue
        copies = sorted(groups[item], key=lambda c: -len(c[1].labels))
        out.append(copies[0][0])
        if len(copies) > 1:
            warnings.warn(
                f"{copies[0][0].name}: the same recording is stored again as "
                + ", ".join(c[0].name for c in copies[1:])
                + " (same name, start and length): the copies are left out",
                stacklevel=3,
            )
    return out


def _patient_summary(folder: Path, patient: str) -> Path:
    path = summary_path(folder, patient)
    if path is None:
        raise NNLabError(
            f"no {patient}-summary.txt or Seizures-list-{patient}.txt in {folder} or "
            f"{folder / patient} (a CHB-MIT or Siena Scalp EEG patient folder), and no EDF files "
            f"of {patient} with annotations beside them (TUH .csv_bi, .tse_bi; BIDS _events.tsv; "
            "the Helsinki set's per-second tables)"
        )
    return path


LONG_SEIZURE_S = 1800.0  # a seizure listed longer than this is said (status epilepticus aside)


def header_starts(headers: Sequence[EDFHeader]) -> list[float] | None:
    """Patient-global start seconds of files from their EDF headers' start date and time (0 = the
    earliest), or None when they cannot be trusted: a date missing, or two files that overlap in
    time (de-identified dates are often shifted or set alike)."""
    if any(h.start is None for h in headers):
        return None
    t0 = min(h.start for h in headers)
    starts = [(h.start - t0).total_seconds() for h in headers]
    spans = sorted(zip(starts, (h.span_s for h in headers)))
    if any(a + d > b + 1 for (a, d), (b, _) in zip(spans, spans[1:])):
        return None
    return starts


def _overlap(files, starts: list[float], headers: list) -> str | None:
    """'A (from-to s) and B (from-to s) overlap in time' for the first two readable files that
    overlap by more than a minute where `starts` place them; None when none do."""
    spans = sorted(
        (start, start + h.span_s, sf.name)
        for sf, start, h in zip(files, starts, headers)
        if h is not None
    )
    for (a0, a1, a), (b0, b1, b) in zip(spans, spans[1:]):
        if b0 < a1 - 60:
            return f"{a} ({a0:.0f}-{a1:.0f} s) and {b} ({b0:.0f}-{b1:.0f} s) overlap in time"
    return None


def _typo_key(name: str) -> str:
    """A file name as the published lists mistype it, undone: the letter O for a zero and a
    missing or bare '-1' (Siena: 'PNO6-1.edf', 'PN01.edf' and 'PN11-.edf' for PN06-1.edf,
    PN01-1.edf and PN11-1.edf)."""
    return re.sub(r"-1?$", "", Path(name).stem.upper().replace("O", "0"))


def _named_as_on_disk(summary: Summary, folder: Path, patient: str) -> Summary:
    """The summary with each listed file that is not on disk renamed to the one unlisted file
    on disk that it mistypes (`_typo_key`), with a warning naming both."""
    listed = {sf.name for sf in summary.files}
    on_disk = [p.name for p in folder.glob("*") if p.suffix.lower() in (".edf", ".bdf")]
    spare = [n for n in on_disk if n not in listed]
    files = []
    for sf in summary.files:
        if not (folder / sf.name).exists():
            match = [n for n in spare if _typo_key(n) == _typo_key(sf.name)]
            if len(match) == 1:
                warnings.warn(
                    f"{patient}: the list's {sf.name} is not on disk: {match[0]}, which it does "
                    "not list, is read for it",
                    stacklevel=3,
                )
                spare.remove(match[0])
                sf = replace(sf, name=match[0])
        files.append(sf)
    return replace(summary, files=tuple(files))


def load_patient(
    folder: str | os.PathLike,
    patient: str,
    channels: Sequence[str] | None = None,
    min_fraction: float = 0.5,
) -> Patient:
    """Index a CHB-MIT patient (or a Siena Scalp EEG one, by its seizure list: `read_summary`):
    `folder` is the patient's folder or the one above it.

    A patient without a summary (TUH EEG Seizure Corpus, BIDS) is indexed from its annotated EDF
    files (`annotated_patient`), placed in time by their headers' start dates (`header_starts`).

    Files are taken in summary order. Each file's start is its 'File Start Time' made global by
    `global_starts`; its duration comes from the EDF header. When the summary has no clock times
    (some patients' summaries omit them; TUH headers whose dates overlap) the files are placed
    back to back and a warning says so.
    `channels` overrides the common channel set (`common_channels(..., min_fraction)`, less the
    channels that are not EEG by `non_eeg_reason`, such as an ECG lead, and, where most channels
    carry 10-20 names, those that name no electrode ('1', 'MK'); a warning names them).
    A channel of the set that a file stores under another label, reversed, or as two channels on
    one reference (a referential file among bipolar ones) is found there by
    `nnlab.data.montage.derive_channels`, with a warning naming the file. An EDF+D file with
    gaps is indexed as its continuous stretches, each a file of its own named as the piece
    `split_discontinuous` would write (<stem>_partNN), placed in time around the gaps, with a
    warning. A file whose channels of the set are at several rates reads each rate on its own
    (`read_sources`), with a warning. Files that are unreadable or lack a channel of the set
    even so are skipped with a warning naming them; their seizures stay in `Patient.seizures` (an
    unreadable file's only when the summary's clock times place it: its header, which would,
    cannot be read).
    """
    from nnlab.data.montage import auxiliary, derive_channels, electrode, parse_label

    folder = Path(folder)
    # no summary: a TUH or BIDS patient, indexed from the annotation files beside its recordings
    annotated = summary_path(folder, patient) is None and annotated_patient(folder, patient)
    if annotated and annotated[0].files:
        summary, bare = annotated
        path = folder / patient
        if bare:
            warnings.warn(
                f"{patient}: {len(bare)} EDF file(s) without an annotation file beside them "
                f"are ignored (no seizure labels): {', '.join(bare[:5])}",
                stacklevel=2,
            )
    else:  # a summary, or the error that names every kind of annotation looked for
        path = _patient_summary(folder, patient)
        folder = path.parent
        summary = read_summary(path)
    if not summary.files:
        raise NNLabError(f"{path}: lists no files")
    skipped: list[tuple[str, str]] = []

    def skip(name: str, why: str) -> None:
        skipped.append((name, why))
        warnings.warn(f"{patient}: skipping {name}: {why}", stacklevel=3)

    summary = _named_as_on_disk(summary, folder, patient)
    headers: list[EDFHeader | None] = []
    for sf in summary.files:
        try:
            headers.append(edf_header(folder / sf.name, gaps_ok=True))
        except NNLabError as e:
            headers.append(None)
            skip(sf.name, str(e))
    if not any(headers):
        raise NNLabError(f"{patient}: none of the {len(summary.files)} listed files is readable")
    listed = {sf.name for sf in summary.files}
    unlisted = sorted(p.name for p in folder.glob("*.edf") if p.name not in listed)
    if unlisted:
        warnings.warn(
            f"{patient}: {len(unlisted)} EDF file(s) not in the summary are ignored "
            f"(no times): {', '.join(unlisted[:5])}",
            stacklevel=2,
        )

    clocks = [sf.clock_start_s for sf in summary.files]
    clocks_known = all(c is not None for c in clocks)
    read = [h for h in headers if h is not None]
    from_headers = header_starts(read) if annotated and read else None
    if clocks_known:
        starts = [float(t) for t in global_starts(clocks)]
        clash = _overlap(summary.files, starts, headers)
        by_headers = header_starts(read) if clash and len(read) == len(headers) else None
        # the headers are trusted where they keep the list's order (de-identified dates that
        # are all alike would move the files after a midnight to the front)
        if clash and by_headers is not None and by_headers == sorted(by_headers):
            warnings.warn(
                f"{patient}: {clash}, placed by the list's clock times; placed by their EDF "
                "headers' start dates and times instead, which do not overlap",
                stacklevel=2,
            )
            starts = by_headers  # a list of clock times alone, of files on several days
        elif clash:
            warnings.warn(
                f"{patient}: {clash}, placed by the list's clock times (a typo in an hour?): "
                "windows near their seizures may be labelled by the other file's; check the "
                "list",
                stacklevel=2,
            )
    elif from_headers is not None:  # TUH: the EDF headers' dates and times
        found = iter(from_headers)
        starts = [next(found) if h is not None else 0.0 for h in headers]
        order = sorted(range(len(starts)), key=lambda i: (headers[i] is None, starts[i]))
        summary = replace(summary, files=tuple(summary.files[i] for i in order))
        headers = [headers[i] for i in order]
        starts = [starts[i] for i in order]
    else:
        why = (
            "the EDF headers' start dates are missing or overlap"
            if annotated
            else "the summary lacks file start times"
        )
        warnings.warn(
            f"{patient}: {why}; files are placed back to back (gaps between them unknown)",
            stacklevel=2,
        )
        lengths = [h.span_s if h is not None else 0.0 for h in headers]
        starts = [float(t) for t in np.cumsum([0.0, *lengths[:-1]])]

    def within(sf: SummaryFile, head: EDFHeader | None) -> SummaryFile:
        """A seizure that starts in the file but ends after it (a typo in the hour, say) is cut
        at the file's end, with a warning naming it: the labels must not run past the EEG. One
        that starts after the file's end is kept (it bounds the interictal time) and named."""
        if head is None:
            return sf
        cut = []
        end = head.span_s  # an EDF+D file's gaps included
        for on, off in sf.seizures:
            if off <= on:
                warnings.warn(
                    f"{patient}: {sf.name}: a seizure of 0 s at {on:g} s (an onset or offset "
                    "marker alone?): it bounds the interictal time, and no window is ictal",
                    stacklevel=3,
                )
            elif off - on > LONG_SEIZURE_S:
                warnings.warn(
                    f"{patient}: {sf.name}: a seizure of {(off - on) / 60:.0f} min at "
                    f"{on:g}-{off:g} s (a typo in an hour?); kept as listed, check the list",
                    stacklevel=3,
                )
            if on >= end:
                warnings.warn(
                    f"{patient}: {sf.name}: the seizure at {on:g}-{off:g} s starts after the "
                    f"file's end ({end:.0f} s); kept as listed, check the list",
                    stacklevel=3,
                )
            elif end < off - 1:  # annotations are whole seconds
                warnings.warn(
                    f"{patient}: {sf.name}: the seizure at {on:g}-{off:g} s ends after the "
                    f"file ({end:.0f} s); cut at its end",
                    stacklevel=3,
                )
                off = end
            cut.append((on, off))
        return replace(sf, seizures=tuple(cut))

    summary = replace(summary, files=tuple(within(sf, h) for sf, h in zip(summary.files, headers)))
    # an unreadable file's seizures count where its start is known (a summary's clock); placed
    # by headers or back to back, its start is not, and they would be put at a wrong time
    timed = [h is not None or clocks_known for h in headers]
    seizures = sorted(
        (start + on, start + off)
        for sf, start, ok in zip(summary.files, starts, timed)
        if ok
        for on, off in sf.seizures
    )

    if channels is not None:
        chosen = list(channels)
    else:
        common = common_channels([h.labels for h in headers if h is not None], min_fraction)
        reasons = {}
        for c in common:  # an ECG or VNS lead in most files is not EEG: not a model input
            head = next(h for h in headers if h is not None and h.find(c) is not None)
            why = non_eeg_reason(c, head.units[head.find(c)])
            if why:
                reasons[c] = why
        for c in auxiliary([c for c in common if c not in reasons]):  # '1', 'MK' among 'EEG Fp1'
            reasons[c] = "no 10-20 electrode name among 10-20 names"
        if reasons:
            warnings.warn(
                f"{patient}: not EEG, left out of the channel set (name them in --channels to "
                f"keep them): {', '.join(f'{c} ({why})' for c, why in reasons.items())}",
                stacklevel=2,
            )
        chosen = [c for c in common if c not in reasons]
    if not chosen:
        raise NNLabError(f"{patient}: no channel is common to the files")
    files: list[FileEntry] = []
    derived: dict[str, list[str]] = {}
    mixed: list[str] = []  # files whose channels are at several rates
    # channels against a named reference ('EEG FP1-REF') are missing from files on another one
    # ('EEG FP1-LE'); the bipolar pairs are not: say so where such a file is skipped
    referential = any((k := parse_label(c)) and electrode(k[1]) is None for c in chosen)
    hint = " (bipolar --channels, such as double-banana, read files of any reference)"
    hint = hint if referential else ""
    for sf, head, start in zip(summary.files, headers, starts):
        if head is None:
            continue
        derivation, missing = derive_channels(chosen, head.labels)  # as labelled, or else found
        if missing:
            skip(sf.name, f"missing channel(s) {', '.join(missing)}{hint}")
            continue
        if derivation.notes:  # files of one montage share their notes: said once
            derived.setdefault("; ".join(derivation.notes), []).append(Path(sf.name).name)
        found = [head.find(c) for c in derivation.sources]
        rates = sorted({head.fs[i] for i in found})  # several: each read at its own
        if len(rates) > 1:
            mixed.append(Path(sf.name).name)
        whole = len(head.stretches) == 1
        for k, (f0, f1, at) in enumerate(head.stretches):  # one, but for an EDF+D file with gaps
            o = int(round(f0 * rates[0]))
            duration = min(
                stretch_samples(head, derivation.sources, r, f0, f1)[1] / r for r in rates
            )
            name = Path(sf.name)
            files.append(
                FileEntry(
                    name=sf.name if whole else f"{name.stem}_part{k + 1:02d}{name.suffix}",
                    path=head.path,
                    fs=rates[0],
                    duration_s=duration,
                    start_s=start + at,
                    seizures=tuple(
                        (start + on, start + off)
                        for on, off in sf.seizures
                        if whole or (on < at + duration and off > at)
                    ),
                    labels=head.labels,
                    derivation=None if derivation.identity else derivation,
                    offset_s=o / rates[0],
                    stretch=not whole,
                    rates=tuple(rates) if len(rates) > 1 else (),
                )
            )
        if not whole:
            warnings.warn(
                f"{patient}: {sf.name} has gaps (EDF+D): read as its {len(head.stretches)} "
                "continuous stretches, " + ", ".join(f.name for f in files[-len(head.stretches) :]),
                stacklevel=2,
            )
    if mixed:
        warnings.warn(
            f"{patient}: the channels are at several rates in {len(mixed)} file(s) "
            f"({', '.join(mixed[:3])}{', ...' if len(mixed) > 3 else ''}): each rate read and "
            "resampled on its own",
            stacklevel=2,
        )
    for notes, names in derived.items():
        warnings.warn(
            f"{patient}: channels found under other labels or derived from two on one reference "
            f"in {len(names)} file(s) ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
            f": {notes}",
            stacklevel=2,
        )
    if not files:
        raise NNLabError(f"{patient}: every file was skipped ({skipped[0][1]}, ...)")
    return Patient(patient, folder, chosen, files, seizures, summary.fs, skipped)
