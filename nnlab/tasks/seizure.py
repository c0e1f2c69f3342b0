"""Patient-specific seizure prediction on long EEG recordings (issue 16 items 3, 4, 6, 7):
prepare, leave-one-seizure-out training, alarms and their evaluation, detection on new files.

**Data.** A CHB-MIT patient folder (`nnlab.data.eeg.load_patient`): its common channels, every
file resampled to the model's rate `fs`, cut into `window_s` windows (no overlap), each window
turned into a log spectrogram (C, T, F) by the shared front end (`nnlab.signal.spectral`) and
cached per recording on disk (`nnlab.signal.cache.prepare_cached`), then labelled by
`nnlab.signal.labels.label_windows`: preictal = [onset - SPH - SOP, onset - SPH) of a leading
seizure, interictal = at least `interictal_gap_s` from every seizure, the rest excluded. With
`oversample` = f > 1 the preictal stretches also get windows every window_s / f seconds
(`oversample_minority`): near-duplicates of their neighbours, used for training only.

**Folds (leave one seizure out).** One fold per leading seizure that has preictal windows, in
time order. The interictal windows, in time order, are cut into as many contiguous blocks as
there are folds; fold k tests on seizure k's preictal windows plus interictal block k. Its
training part is every other labelled window, less any window that overlaps the time spans of
the test windows (widened by `guard_s`): the oversampled windows of the test seizure, which
overlap its test windows, never reach training. Validation (the checkpoint choice) is carved from
the training part *by time*: the last `val_fraction` of every training block (each other
seizure's preictal run, each other interictal block), with the training windows that overlap it
dropped. A random window split would put overlapping (and adjacent, nearly identical) windows on
both sides; `bench/seizure_synthetic.py` measures that leak.

**Per fold.** The normaliser (per channel and frequency) is fitted on the fold's training windows
only (base windows, not the oversampled copies); training draws both classes equally often
(`--sampler balanced`); the shared loop (`run_task`) trains each fold as a child run.

**Evaluation** (`evaluate_run`). Per fold, the held-out windows in time order -> P(preictal) ->
p >= threshold -> the k-of-n rule (k of the last n windows, counted within stretches of
consecutive windows: the sequence is split wherever windows do not follow each other, between
recordings or between the preictal run and the interictal block) with a refractory period (SOP)
-> event sensitivity, false predictions per interictal hour and time in warning
(`nnlab.metrics.seizure`), and the segment scores. A window's prediction, and so an alarm it
raises, is available at the window's end.

**The detection target** (`target` "detection"). The same pipeline for seizure *detection*:
class 1 is ictal (windows at least half inside a seizure, `nnlab.signal.labels.label_ictal`),
interictal windows are at least `gap_s` (default 60 s) from any seizure, every seizure is an event
and a fold, the alarm rule defaults to 2 of 3 windows with one alarm per run of them
(`k_of_n_alarms(episodes=True)`) and a 60-s refractory period, and a fold's held-out seizure is
found by an alarm between its onset and one window past its offset, its latency reported
(`evaluate_detection`); every alarm in interictal time is false. `bench/seizure_detect_synthetic.py`
measures it.

**Detection on a file** (`detect_file`). A trained run on one EDF file of any length, rate and
montage: resampled to the model's rate; a multi-channel model reads its channels by label, or
finds them under another name, reversed, or as the difference of two channels on one reference in
a referential recording (`nnlab.data.montage`; one it cannot find is an error naming it); a
single-channel model reads every EEG channel of the file's main rate (or the ones asked for;
ECG, EOG, oximetry, annotation and flat channels are left out and listed) and the recording's
probability per window is the **maximum over channels** (a seizure focus is usually seen on a
few channels only: the mean would dilute it). A cross-validation run
predicts with every fold's model and averages their probabilities (each model with its own
normaliser). A `seizure train` run's windows and alarms are those it was trained and evaluated with
(a detection run's: one alarm per run of windows meeting the rule); a Bonn model (class 1
"seizure") reads windows every quarter window and raises one alarm per run of windows meeting 3 of
4 (`DETECTION_*`). Given the file's seizures (a CHB-MIT summary or Siena list, the TUH, BIDS or
Helsinki annotations beside the file), each seizure's alarm latency and the false alarms are
reported (`nnlab.metrics.seizure.match_alarms`); `bench/eeg_onset.py` measures them on real EEG.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from nnlab.config import to_dict
from nnlab.data.eeg import read_sources, resample_ratio, stretch_samples
from nnlab.data.montage import auxiliary, derive_channels, montage_channels
from nnlab.data.splits import load_split, save_split
from nnlab.errors import NNLabError
from nnlab.io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    claim_outputs,
    sweep_stale,
    writable_folder,
)
from nnlab.metrics.binary import binary_metrics
from nnlab.models import model_config
from nnlab.run import RunDir, run_children
from nnlab.signal.labels import EXCLUDED, INTERICTAL, PREICTAL, LabelConfig
from nnlab.tasks.base import CrossValidation, Task, load_config, load_model, run_task
from nnlab.train import StepOutput, TrainConfig

CLASS_NAMES = ("interictal", "preictal")
HELDOUT = "heldout.npz"  # a fold's held-out windows and their predictions
NORMALIZER = "normalizer.json"  # a fold's input: channels, rate, front end, statistics
# a window's prediction comes at its end; the metrics' intervals are half-open [a, b), so an alarm
# is placed this much before the end of its window to fall inside the window's own interval
END_S = 1e-6


@dataclass
class SeizureConfig:
    # a CHB-MIT, Siena, TUH Seizure Corpus, BIDS or Helsinki neonatal patient folder, or the one
    # above
    data: str = ""
    patient: str = "chb01"  # the patient: <data>/<patient>-summary.txt or <data>/<patient>/...
    cache: str = ""  # folder of the prepared windows ('': $NNLAB_CACHE/eeg-windows/<patient>)
    # channel labels to use ('': those common to the files); 'double-banana': the 18 longitudinal
    # bipolar pairs (FP1-F7 ... CZ-PZ), derived from two electrodes in a referential file
    channels: tuple[str, ...] = ()
    fs: float = 256.0  # the model's sampling rate in Hz; other rates are resampled to it
    # prediction: preictal against interictal windows (alarms before a seizure); detection:
    # ictal against interictal windows (alarms during one; every seizure is an event, the SOP,
    # SPH and lead gap are unused)
    target: str = "prediction"
    sop_s: float = 1800.0  # seizure occurrence period: preictal = [on - SPH - SOP, on - SPH)
    sph_s: float = 300.0  # seizure prediction horizon in seconds
    # interictal windows are this far from every seizure; -1: the target's (prediction 4 h,
    # detection 60 s: only the uncertain edges of a seizure and the post-ictal minute are left out)
    interictal_gap_s: float = -1.0
    # a seizure this soon after the previous one ends is no new event to predict; -1: SOP + SPH
    lead_gap_s: float = -1.0
    window_s: float = 5.0  # window length (and hop) in seconds
    segment_s: float = 1.0  # STFT segment in seconds (1-Hz bins)
    overlap_s: float = 0.5  # overlap of consecutive STFT segments in seconds
    notch: bool = True  # drop the bins around the mains frequency and its harmonics
    mains: float = 60.0  # mains frequency in Hz (CHB-MIT: Boston, 60 Hz)
    notch_width: float = 3.0  # half-width of each notch in Hz
    fmax: float = 0.0  # drop the bins above this frequency in Hz; 0 keeps up to Nyquist
    oversample: int = 4  # preictal windows this many times as dense for training; 1: off
    fold: int = -1  # -1: every fold; k: fold k only (0-based)
    val_fraction: float = 0.2  # of every training block, the last part (by time) validates
    guard_s: float = 0.0  # training windows this close to a test window are dropped too
    threshold: float = 0.5  # a window is positive when P(class 1) >= this
    # k of the k-of-n rule: an alarm needs k positives among n windows; 0: the target's
    # (prediction 24 of 30, Yan et al.; detection 2 of 3, one alarm per run of windows that meet
    # it: a 5-s window is positive once most of it is ictal, so 10 s of seizure raise the alarm)
    alarm_k: int = 0
    alarm_n: int = 0  # n of the k-of-n rule; 0: the target's
    # no new alarm this long after one; -1: the target's (prediction the SOP, detection 60 s)
    refractory_s: float = -1.0
    model: str = "eeg_transformer"  # eeg_transformer
    # the model config's fields; channels, frames, freqs come from the data; small by default
    # (dim 32, depth 1, 2 heads); one channel: the temporal and spectral towers only
    model_args: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=10,
            batch_size=64,
            lr=1e-3,
            weight_decay=1e-2,
            warmup_epochs=1.0,
            sampler="balanced",
            monitor="val/auc",
            mode="max",
        )
    )

    @property
    def detects(self) -> bool:
        return self.target == "detection"

    @property
    def positive(self) -> str:
        """The name of class 1: what P(...) is the probability of."""
        return "ictal" if self.detects else "preictal"

    @property
    def gap_s(self) -> float:
        if self.interictal_gap_s >= 0:
            return self.interictal_gap_s
        return 60.0 if self.detects else 14400.0

    @property
    def k(self) -> int:
        return self.alarm_k or (2 if self.detects else 24)

    @property
    def n(self) -> int:
        return self.alarm_n or (3 if self.detects else 30)

    def labels(self) -> LabelConfig:
        return LabelConfig(
            self.sop_s,
            self.sph_s,
            self.gap_s,
            None if self.lead_gap_s < 0 else self.lead_gap_s,
        )

    def spectral(self):
        from nnlab.signal.spectral import SpectralConfig

        return SpectralConfig(
            window_s=self.window_s,
            hop_s=self.window_s,
            segment_s=self.segment_s,
            overlap_s=self.overlap_s,
            notch=self.notch,
            mains=self.mains,
            notch_width=self.notch_width,
            fmax=self.fmax or None,
        )

    @property
    def refractory(self) -> float:
        if self.refractory_s >= 0:
            return self.refractory_s
        return 60.0 if self.detects else self.sop_s

    def cache_dir(self) -> Path:
        from nnlab.data.registry import cache_dir

        return Path(self.cache) if self.cache else cache_dir() / "eeg-windows" / self.patient

    def check(self) -> None:
        """Every check that needs no samples (the summary file must exist)."""
        check_prepare(self)
        if self.oversample < 1:
            raise NNLabError(f"--oversample must be >= 1, got {self.oversample}")
        if self.fold < -1:
            raise NNLabError(f"--fold must be -1 (every fold) or >= 0, got {self.fold}")
        if not 0.0 < self.val_fraction < 0.5:
            raise NNLabError(f"--val-fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.guard_s < 0:
            raise NNLabError(f"--guard-s must be >= 0, got {self.guard_s}")
        check_alarms(self.threshold, self.k, self.n)
        model_config(self.model, **self.model_args)
        from nnlab.data.eeg import annotated_patient, summary_path

        folder = Path(self.data).expanduser()
        if summary_path(folder, self.patient) is None and not (
            folder.is_dir()
            and (found := annotated_patient(folder, self.patient))
            and found[0].files
        ):
            raise NNLabError(
                f"no {self.patient}-summary.txt or Seizures-list-{self.patient}.txt in {folder} "
                f"or {folder / self.patient}, and no EDF files of {self.patient} with annotations "
                "beside them (--data: a CHB-MIT, Siena, TUH, BIDS or Helsinki patient folder, or "
                "the folder above it)"
            )


def check_prepare(cfg: SeizureConfig) -> None:
    """The data, rate, labelling and spectral options (all that prepare needs)."""
    if not cfg.data:
        raise NNLabError("--data is required: a CHB-MIT patient folder (or the one above it)")
    if not cfg.fs > 0:
        raise NNLabError(f"--fs must be > 0, got {cfg.fs}")
    if cfg.target not in ("prediction", "detection"):
        raise NNLabError(f"--target must be prediction or detection, got '{cfg.target}'")
    if cfg.fmax < 0 or cfg.mains <= 0 or cfg.notch_width < 0:
        raise NNLabError("need --fmax >= 0, --mains > 0 and --notch-width >= 0")
    cfg.labels()  # raises on a bad SOP / SPH / gap
    spec = cfg.spectral()
    spec.frames(cfg.fs)  # raises unless 0 <= overlap < segment <= window
    spec.freqs(cfg.fs)  # raises when no bin is left


def check_alarms(threshold: float, k: int, n: int) -> None:
    if not 0.0 < threshold < 1.0:
        raise NNLabError(f"--threshold must be in (0, 1), got {threshold}")
    if not 1 <= k <= n:
        raise NNLabError(f"need 1 <= --alarm-k <= --alarm-n, got {k} and {n}")


def with_given(cfg: SeizureConfig, **given) -> SeizureConfig:
    """cfg with the options a user gave (None: not given), the alarm rule checked. --alarm-k and
    --alarm-n below 1 are refused first: 0 would stand for the target's default (24 of 30)."""
    for option in ("alarm_k", "alarm_n"):
        value = given.get(option)
        if value is not None and value < 1:
            raise NNLabError(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    cfg = dataclasses.replace(cfg, **{k: v for k, v in given.items() if v is not None})
    check_alarms(cfg.threshold, cfg.k, cfg.n)
    return cfg


# ---- prepare: index, cache, label ----------------------------------------------------------------
@dataclass
class PreparedPatient:
    """Every window of a patient, in time order (file by file), as one `WindowStore`, with
    per-window arrays (N,): file index, global start and end seconds, label (1/0/-1), `base`
    (False: an extra window of the oversampling) and `episode` (the leading seizure whose preictal
    period holds a preictal window, -1 otherwise)."""

    patient: Any  # nnlab.data.eeg.Patient
    store: Any  # nnlab.signal.cache.WindowStore
    file: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    label: np.ndarray
    base: np.ndarray
    episode: np.ndarray
    names: list[str]  # "<file stem>@<start sample>", unique
    leading: np.ndarray  # (K', 2) leading seizures (onset, offset), global seconds
    rows: list[dict[str, Any]]  # per file: windows, preictal, interictal, excluded, seizures
    cache_dir: Path

    def __len__(self) -> int:
        return len(self.label)


def model_samples(n_in: int, fs_in: float, fs: float) -> int:
    """Samples of a recording of n_in samples at fs_in after `resample` to fs
    (resample_poly gives ceil(n_in up / down))."""
    up, down = resample_ratio(fs_in, fs)
    return n_in if up == down else -(-n_in * up // down)


def empty_row(f, positive: str = "preictal") -> dict[str, Any]:
    """A file's row of the prepare table before its windows are counted (`positive`: the name
    of class 1, preictal or ictal)."""
    return {
        "file": f.name,
        "start h": f.start_s / 3600,
        "minutes": f.duration_s / 60,
        "windows": 0,
        positive: 0,
        "interictal": 0,
        "excluded": 0,
        "oversampled": 0,
        "seizures": len(f.seizures),
    }


def prepare_patient(cfg: SeizureConfig, console: Console | None = None) -> PreparedPatient:
    """Index the patient, then per file: the window starts at the model's rate, their labels, the
    oversampled preictal starts, and the cached spectrograms (computed on a cache miss only);
    writes <cache>/<patient>-prepared.json (parameters and per-file counts)."""
    from nnlab.data.eeg import load_patient
    from nnlab.signal.cache import WindowStore, prepare_cached
    from nnlab.signal.labels import (
        label_ictal,
        label_windows,
        leading_seizures,
        preictal_intervals,
    )
    from nnlab.signal.spectral import (
        implausible_amplitude,
        mains_mismatch,
        missing_band,
        oversample_minority,
        window_starts,
    )

    check_prepare(cfg)
    patient = load_patient(cfg.data, cfg.patient, montage_channels(cfg.channels) or None)
    lcfg, spec, fs = cfg.labels(), cfg.spectral(), cfg.fs
    for rate in sorted({f.fs for f in patient.files}):  # one warning per rate too low
        slow = [f.name for f in patient.files if f.fs == rate]
        where = f"{cfg.patient} {slow[0]}" + (f" and {len(slow) - 1} more" if len(slow) > 1 else "")
        if why := missing_band(rate, fs, spec, where):
            warnings.warn(why, stacklevel=2)
    seizures = patient.seizures
    positive = cfg.positive

    def labels(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        if cfg.detects:
            return label_ictal(start, end, seizures, cfg.gap_s)
        return label_windows(start, end, seizures, lcfg)

    # the events, one fold each: prediction's leading seizures, or every seizure for detection
    leading = seizures if cfg.detects else leading_seizures(seizures, lcfg.lead_gap_s)
    leading = np.asarray(leading, dtype=np.float64).reshape(-1, 2)
    P = leading if cfg.detects else preictal_intervals(seizures, lcfg)  # (K', 2)
    L = spec.window_length(fs)
    cache = cfg.cache_dir()
    sweep_stale(cache)  # what killed runs left
    recordings, cols, rows = [], {k: [] for k in ("file", "start", "label", "base")}, []
    mains_checked = []

    def checked(x: np.ndarray, name: str) -> np.ndarray:
        """The first recording read is checked for line noise the notch would miss (once)."""
        if not mains_checked:
            mains_checked.append(name)
            for why in (
                mains_mismatch(x, fs, spec, f"{cfg.patient} {name}"),
                implausible_amplitude(x, f"{cfg.patient} {name}"),
            ):
                if why:
                    warnings.warn(why, stacklevel=2)
        return x

    names: list[str] = []

    progress = None
    if console is not None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        progress.start()
        bar = progress.add_task("preparing", total=len(patient.files))
    try:
        for i, f in enumerate(patient.files):
            if progress is not None:
                progress.update(bar, description=f"preparing {f.name}")
            n = min(  # channels at several rates (f.rates): what every rate gives
                model_samples(int(round(f.duration_s * r)), r, fs) for r in f.rates or (f.fs,)
            )
            base = window_starts(n, fs, spec.window_s, spec.hop_s)  # (W,) samples at fs
            if len(base) == 0:  # shorter than one window: nothing to cache
                rows.append({**empty_row(f, positive), "minutes": f.duration_s / 60})
                continue
            base_label = labels(f.start_s + base / fs, f.start_s + (base + L) / fs)
            starts = base
            if cfg.oversample > 1:
                dense, _ = oversample_minority(base, base_label, L, cfg.oversample, PREICTAL)
                starts = np.union1d(base, dense)  # sorted, each start once
            rec = prepare_cached(  # read a stretch at a time: files of any length fit in memory
                f.path,
                None,
                fs,
                spec,
                cache,
                read=lambda a, b, i=i: checked(
                    patient.read_span(i, fs, a, b), patient.files[i].name
                ),
                starts=starts,
                params={"channels": list(patient.channels), "file_fs": f.rates or f.fs, "fs": fs}
                | ({"derived": list(f.derivation.notes)} if f.derivation is not None else {})
                | ({"stretch": [f.offset_s, f.duration_s]} if f.stretch else {}),
            )
            t0 = f.start_s + starts / fs
            label = labels(t0, t0 + L / fs)
            is_base = np.isin(starts, base)
            recordings.append(rec)
            cols["file"].append(np.full(len(starts), i))
            cols["start"].append(t0)
            cols["label"].append(label)
            cols["base"].append(is_base)
            stem = Path(f.name).stem
            names += [f"{stem}@{s}" for s in starts]
            b = label[is_base]
            rows.append(
                {
                    **empty_row(f, positive),
                    "windows": int(len(b)),
                    positive: int((b == PREICTAL).sum()),
                    "interictal": int((b == INTERICTAL).sum()),
                    "excluded": int((b == EXCLUDED).sum()),
                    "oversampled": int((~is_base).sum()),
                }
            )
            if progress is not None:
                progress.advance(bar)
    finally:
        if progress is not None:
            progress.stop()
    start = np.concatenate(cols["start"])
    label = np.concatenate(cols["label"]).astype(np.int8)
    end = start + L / fs
    # the event of each class-1 window: the leading seizure whose preictal period holds it, or
    # (detection) the seizure it overlaps
    if cfg.detects:
        inside = (start[:, None] < P[None, :, 1]) & (end[:, None] > P[None, :, 0])  # (N, K)
    else:
        inside = (start[:, None] >= P[None, :, 0]) & (end[:, None] <= P[None, :, 1])  # (N, K')
    first = inside.argmax(axis=1) if inside.shape[1] else np.zeros(len(start), dtype=np.int64)
    episode = np.where((label == PREICTAL) & inside.any(axis=1), first, -1)  # -1: no seizure
    prepared = PreparedPatient(
        patient=patient,
        store=WindowStore(recordings),
        file=np.concatenate(cols["file"]),
        start_s=start,
        end_s=end,
        label=label,
        base=np.concatenate(cols["base"]),
        episode=episode,
        names=names,
        leading=leading,
        rows=rows,
        cache_dir=cache,
    )
    atomic_write_json(
        cache / f"{cfg.patient}-prepared.json",
        {
            "patient": cfg.patient,
            "target": cfg.target,
            "data": str(Path(cfg.data).resolve()),
            "channels": list(patient.channels),
            "fs": fs,
            "labels": lcfg.to_dict(),
            "spectral": spec.to_dict(),
            "oversample": cfg.oversample,
            "seizures": seizures.tolist(),
            "leading": prepared.leading.tolist(),
            "skipped": [list(s) for s in patient.skipped],
            "files": rows,
        },
    )
    return prepared


# ---- leave-one-seizure-out folds -----------------------------------------------------------------
def spans(start_s: np.ndarray, end_s: np.ndarray, widen: float = 0.0) -> np.ndarray:
    """Sorted disjoint time spans (S, 2) covered by the windows [start - widen, end + widen)."""
    from nnlab.metrics.seizure import interval_union

    iv = np.stack([start_s - widen, end_s + widen], axis=1) if len(start_s) else np.zeros((0, 2))
    return interval_union(iv)


def overlapping(start_s: np.ndarray, end_s: np.ndarray, span: np.ndarray) -> np.ndarray:
    """(N,) booleans: window [start, end) overlaps one of the disjoint sorted spans (S, 2)."""
    if len(span) == 0:
        return np.zeros(len(start_s), dtype=bool)
    # the last span starting before the window ends is the one to test: any earlier span that
    # overlaps the window ends before that one starts, so that one overlaps it too
    j = np.searchsorted(span[:, 0], end_s, side="left") - 1
    return (j >= 0) & (span[np.maximum(j, 0), 1] > start_s)


def loso_folds(
    start_s: np.ndarray,
    end_s: np.ndarray,
    label: np.ndarray,
    base: np.ndarray,
    episode: np.ndarray,
    val_fraction: float = 0.2,
    guard_s: float = 0.0,
) -> list[dict[str, np.ndarray]]:
    """Leave-one-seizure-out folds over windows (N,) (see the module docstring): one per leading
    seizure with base preictal windows, in time order; each {"train", "val", "test"} (sorted
    window indices) and "seizure" (the episode id held out, a 0-d array).

    test k = seizure k's base preictal windows + interictal block k (the base interictal windows
    in time order cut into K contiguous blocks); val = the last `val_fraction` (by time) of every
    other block; train = every other labelled window (oversampled ones included); windows that
    overlap a test window (widened by guard_s) leave train and val, windows that overlap a
    validation window leave train."""
    start_s, end_s = np.asarray(start_s, np.float64), np.asarray(end_s, np.float64)
    label, base, episode = np.asarray(label), np.asarray(base, bool), np.asarray(episode)
    order = np.argsort(start_s, kind="stable")
    seizures = np.unique(episode[(label == PREICTAL) & base & (episode >= 0)])
    K = len(seizures)
    inter = order[(label[order] == INTERICTAL) & base[order]]  # time order
    if K < 2:
        raise NNLabError(
            f"leave-one-seizure-out needs at least 2 (leading) seizures with windows of class 1, "
            f"got {K} (check the summary's seizures, and for prediction --sop-s, --sph-s and "
            "--lead-gap-s, against the recordings)"
        )
    if len(inter) < K:
        raise NNLabError(
            f"{len(inter)} interictal windows cannot make {K} test blocks; lower "
            "--interictal-gap-s or add interictal recordings"
        )
    blocks = [b for b in np.array_split(inter, K)]
    preictal = [order[(episode[order] == s) & base[order]] for s in seizures]

    def tail(block: np.ndarray) -> np.ndarray:
        m = len(block)
        n_val = 0 if m < 2 else max(1, int(round(val_fraction * m)))
        return block[m - n_val :]

    labelled = label != EXCLUDED
    folds = []
    for k in range(K):
        test = np.sort(np.concatenate([preictal[k], blocks[k]]))
        near_test = overlapping(start_s, end_s, spans(start_s[test], end_s[test], guard_s))
        others = [b for j, b in enumerate(preictal + blocks) if j not in (k, K + k)]
        val = np.sort(np.concatenate([tail(b) for b in others]))
        val = val[~near_test[val]]
        near_val = overlapping(start_s, end_s, spans(start_s[val], end_s[val]))
        keep = labelled & ~near_test & ~near_val
        keep[test] = keep[val] = False
        folds.append(
            {
                "train": np.flatnonzero(keep),
                "val": val,
                "test": test,
                "seizure": np.asarray(seizures[k]),
            }
        )
    return folds


def fold_parts(prep: PreparedPatient, cfg: SeizureConfig) -> list[dict[str, np.ndarray]]:
    try:
        return loso_folds(
            prep.start_s,
            prep.end_s,
            prep.label,
            prep.base,
            prep.episode,
            cfg.val_fraction,
            cfg.guard_s,
        )
    except NNLabError as e:  # a seizure's file may have been skipped: said where it is
        skipped = prep.patient.skipped
        if not skipped:
            raise
        raise NNLabError(
            f"{e}; {len(skipped)} file(s) were skipped, and the seizures in them have no "
            "windows: "
            + "; ".join(f"{name} ({why})" for name, why in skipped[:3])
            + " (a file that lacks a channel is kept by --channels without it)"
        ) from None


# ---- one fold: the Task --------------------------------------------------------------------------
class WindowSet(Dataset):
    """Windows `index` (n,) of a WindowStore, normalised: samples (x (C, T, F) float32, y int64).
    Batches are read with one memory-map access per recording (`__getitems__`)."""

    def __init__(self, store, index: np.ndarray, labels: np.ndarray, norm):
        self.store, self.index, self.norm = store, np.asarray(index, np.int64), norm
        self.labels = torch.as_tensor(np.asarray(labels, np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, items: list[int]):
        x = torch.from_numpy(self.norm(self.store.get(self.index[items])))  # (B, C, T, F)
        y = self.labels[items]
        return [(x[j], y[j]) for j in range(len(items))]


class SeizureFoldTask(Task):
    """Fold k of leave-one-seizure-out: train on the other seizures and interictal blocks."""

    name, config_class, models = "seizure-fold", SeizureConfig, ("eeg_transformer",)
    noun = "seizure-prediction fold"
    distributed = False  # windows are read from a memory map; one process
    summary_keys = (
        "fold",
        "parameters",
        "epochs",
        "best_epoch",
        "test/auc",
        "test/sensitivity",
        "test/specificity",
        "train_time_s",
    )

    def __init__(self, cfg: SeizureConfig, console=None, prepared: PreparedPatient | None = None):
        super().__init__(cfg, console)
        self.prepared = prepared
        self.seizure = -1  # the leading seizure held out (set by `parts`)

    def check(self, resume: bool = False) -> None:
        super().check(resume)
        if self.cfg.fold < 0:
            raise NNLabError("a fold run needs --fold >= 0")

    def parts(self, prep: PreparedPatient) -> dict[str, np.ndarray]:
        """This fold's {"train", "val", "test"} window indices (the bench overrides it)."""
        folds = fold_parts(prep, self.cfg)
        if self.cfg.fold >= len(folds):
            raise NNLabError(f"--fold {self.cfg.fold}: the patient has {len(folds)} folds")
        fold = folds[self.cfg.fold]
        self.seizure = int(fold["seizure"])
        return {k: fold[k] for k in ("train", "val", "test")}

    def datasets(self, run: RunDir, resume: bool) -> dict[str, WindowSet]:
        from nnlab.signal.spectral import Normalizer

        cfg = self.cfg
        prep = self.prepared or prepare_patient(cfg, self.console)
        parts = self.parts(prep)
        path = run.path / "split.json"
        if resume and path.exists():
            saved = load_split(path, prep.names)
            if any(not np.array_equal(np.sort(saved[k]), parts[k]) for k in parts):
                raise NNLabError(f"{path}: the fold changed since the run started")
        else:
            save_split(
                path,
                parts,
                prep.names,
                method=self.split_method(),
                fold=cfg.fold,
                seizure=self.seizure,
                labels=cfg.labels().to_dict(),
                val_fraction=cfg.val_fraction,
                guard_s=cfg.guard_s,
            )
        train_base = parts["train"][prep.base[parts["train"]]]
        # statistics of the fold's training windows only: the held-out seizure must not shape them
        norm = Normalizer(per="channel-frequency").fit(prep.store.batches(512, train_base))
        atomic_write_json(
            run.path / NORMALIZER,
            {
                **norm.to_dict(),
                "channels": list(prep.patient.channels),
                "fs": cfg.fs,
                "spectral": cfg.spectral().to_dict(),
                "freqs": cfg.spectral().freqs(cfg.fs).tolist(),
                "labels": cfg.labels().to_dict(),
            },
        )
        self.prep, self.part_index = prep, parts
        return {k: WindowSet(prep.store, idx, prep.label[idx], norm) for k, idx in parts.items()}

    def split_method(self) -> str:
        return "leave one seizure out; validation = the last part of every training block"

    def model_config(self, train: WindowSet):
        C, T, F_ = train.store.window_shape
        args = {"dim": 32, "depth": 1, "heads": 2, **self.cfg.model_args}
        if C == 1:  # one token: nothing for a spatial tower to attend over
            args.setdefault("towers", ("temporal", "spectral"))
        args.update(channels=C, frames=T, freqs=F_, num_classes=2)
        return model_config(self.cfg.model, **args)

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, y = batch  # (B, C, T, F), (B,)
        logits = model(x)  # (B, 2)
        prob = torch.softmax(logits.float(), dim=1)[:, 1]  # P(preictal), what the metrics read
        return StepOutput({"loss": F.cross_entropy(logits, y)}, prob, y)

    def metrics(self) -> torchmetrics.MetricCollection:
        return binary_metrics()  # sensitivity: of the preictal class

    def sample_labels(self, data: WindowSet) -> torch.Tensor:
        return data.labels

    def finish(self, trainer, data, test) -> dict[str, Any]:
        test_idx = self.part_index["test"]
        towers = list(trainer.module.cfg.towers)
        prob, gates = predict_windows(trainer.module, data["test"], trainer.device)
        held_out = self.seizure
        save_heldout(trainer.run, self.prep, test_idx, prob, gates, towers, held_out)
        return {
            "patient": self.cfg.patient,
            "fold": self.cfg.fold,
            "seizure_onset_s": float(self.prep.leading[held_out, 0]) if held_out >= 0 else None,
            "towers": towers,
            "windows": {k: int(len(v)) for k, v in self.part_index.items()},
            f"test_{self.cfg.positive}": int((self.prep.label[test_idx] == PREICTAL).sum()),
            "test_interictal": int((self.prep.label[test_idx] == INTERICTAL).sum()),
        }

    def run_name(self) -> str:
        return f"seizure-{self.cfg.patient}-fold{self.cfg.fold}"

    def title(self) -> str:
        return f"{self.cfg.model}, {self.cfg.patient}, fold {self.cfg.fold}"


@torch.no_grad()
def predict_windows(
    model: nn.Module, data: WindowSet, device=None, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(P(preictal) (n,), gate weights (n, M)) of the windows of `data`, in its order."""
    device = device or next(model.parameters()).device
    model.eval()
    probs, gates = [], []
    for i in range(0, len(data), batch_size):
        batch = data.__getitems__(list(range(i, min(i + batch_size, len(data)))))
        x = torch.stack([s[0] for s in batch])  # (B, C, T, F)
        logits, g = model(x.to(device), return_gates=True)
        probs.append(torch.softmax(logits.float(), 1)[:, 1].cpu().numpy())
        gates.append(g.float().cpu().numpy())
    M = len(model.cfg.towers)
    return (
        np.concatenate(probs) if probs else np.zeros(0, np.float32),
        np.concatenate(gates) if gates else np.zeros((0, M), np.float32),
    )


def save_heldout(
    run: RunDir,
    prep: PreparedPatient,
    index: np.ndarray,
    prob: np.ndarray,
    gates: np.ndarray,
    towers: list[str],
    held_out: int = -1,
) -> None:
    """The fold's held-out windows in time order with their predictions, and what evaluating them
    needs (seizures, files, towers), in run/heldout.npz."""
    index = np.asarray(index)
    files = prep.patient.files
    buf = io.BytesIO()
    np.savez(
        buf,
        index=index,
        start_s=prep.start_s[index],
        end_s=prep.end_s[index],
        file_index=prep.file[index],
        label=prep.label[index],
        episode=prep.episode[index],
        prob=np.asarray(prob, np.float32),
        gates=np.asarray(gates, np.float32),
        towers=np.asarray(towers),
        seizures=prep.patient.seizures,
        leading=prep.leading,
        held_out=np.asarray(held_out),
        file_names=np.asarray([f.name for f in files]),
        file_span=np.asarray([[f.start_s, f.end_s] for f in files], np.float64).reshape(-1, 2),
    )
    atomic_write_bytes(run.path / HELDOUT, buf.getvalue())


# ---- alarms and evaluation -----------------------------------------------------------------------
def alarm_windows(
    prob: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    threshold: float,
    k: int,
    n: int,
    refractory: float,
    episodes: bool = False,
) -> np.ndarray:
    """Indices of the windows (in time order) that raise an alarm: p >= threshold is a positive;
    window i satisfies the rule when at least k of the last n windows *of its stretch* are
    positive (a stretch: consecutive windows, each starting where the previous one ends or
    earlier; the rule never reaches across a gap); after an alarm none for `refractory` seconds
    (`k_of_n_alarms`, times = window ends); with `episodes`, one alarm per run of windows that
    satisfy the rule."""
    from nnlab.signal.alarms import k_of_n_alarms

    check_alarms(threshold, k, n)
    start_s, end_s = np.asarray(start_s, np.float64), np.asarray(end_s, np.float64)
    pred = np.asarray(prob) >= threshold
    W = len(pred)
    if W == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.r_[True, start_s[1:] > end_s[:-1] + 1e-6]  # a gap opens a new stretch
    first = np.flatnonzero(new)[np.cumsum(new) - 1]  # (W,) first window of each one's stretch
    c = np.concatenate([[0], np.cumsum(pred, dtype=np.int64)])  # (W + 1,)
    i = np.arange(W)
    counts = c[i + 1] - c[np.maximum(first, i + 1 - n)]  # positives among the last n of the stretch
    # the refractory period runs across stretches: an alarm is an alarm, wherever it fell
    return k_of_n_alarms(counts >= k, end_s, 1, 1, refractory, episodes)


def read_heldout(run: RunDir) -> dict[str, np.ndarray]:
    path = run.path / HELDOUT
    if not path.exists():
        raise NNLabError(
            f"{run.path}: no {HELDOUT}: the fold has not finished (continue it with "
            "nnlab seizure train --resume on its parent run)"
        )
    with np.load(path) as z:
        h = {k: z[k] for k in z.files}
    h["file"] = h.pop("file_index")
    return h


def evaluate_heldout(h: dict[str, np.ndarray], cfg: SeizureConfig) -> dict[str, Any]:
    """One fold's figures from its held-out windows `h` (`read_heldout`): the alarms, event
    sensitivity for the held-out seizure, false alarms in interictal time and their rate, time in
    warning, and the segment scores."""
    from nnlab.metrics.seizure import (
        covered_seconds,
        event_sensitivity,
        false_alarms,
        false_prediction_rate,
        interval_union,
        segment_auc,
        segment_scores,
        time_in_warning,
    )
    from nnlab.signal.alarms import warning_intervals

    sop, sph = cfg.sop_s, cfg.sph_s
    start, end, prob, label = h["start_s"], h["end_s"], h["prob"], h["label"]
    idx = alarm_windows(prob, start, end, cfg.threshold, cfg.k, cfg.n, cfg.refractory, cfg.detects)
    if cfg.detects:
        return evaluate_detection(h, cfg, idx)
    alarm_s = end[idx]
    t = alarm_s - END_S  # inside the alarm window's own [start, end)
    held = int(h["held_out"])
    onsets = h["leading"][[held], 0] if held >= 0 else np.zeros(0)
    inter = label == INTERICTAL
    inter_iv = interval_union(np.stack([start[inter], end[inter]], axis=1))
    in_inter = ((t[:, None] >= inter_iv[None, :, 0]) & (t[:, None] < inter_iv[None, :, 1])).any(1)
    all_onsets = h["seizures"][:, 0]  # an alarm followed by any onset in time is not false
    false = false_alarms(t, all_onsets, sop, sph) & in_inter
    inter_h = covered_seconds(inter_iv) / 3600
    recorded = np.stack([start, end], axis=1)
    warned = warning_intervals(alarm_s, sop, sph)
    true = label == PREICTAL
    seg = segment_scores(prob >= cfg.threshold, true)
    return {
        "alarm_s": alarm_s,
        "alarm_window": idx,
        "false": false,
        "onset_s": float(onsets[0]) if len(onsets) else float("nan"),
        "predicted": int(event_sensitivity(t, onsets, sop, sph) == 1.0) if len(onsets) else 0,
        "false_alarms": int(false.sum()),
        "interictal_h": inter_h,
        "fpr_per_h": false_prediction_rate(t, all_onsets, inter_iv, sop, sph),
        "recorded_s": covered_seconds(recorded),
        "time_in_warning": time_in_warning(warned, recorded),
        "preictal_windows": int(true.sum()),
        "interictal_windows": int(inter.sum()),
        **{f"segment/{k}": v for k, v in seg.items()},
        "segment/auc": segment_auc(prob, true),
    }


def evaluate_detection(h: dict[str, np.ndarray], cfg: SeizureConfig, idx: np.ndarray):
    """`evaluate_heldout` for a detection run: the held-out seizure is found when an alarm falls
    between its onset and one window past its offset (`match_alarms`), with that alarm's
    latency; every alarm in interictal time is false (interictal windows are at least the gap
    from any seizure); no warning intervals (time in warning is NaN)."""
    from nnlab.metrics.seizure import (
        covered_seconds,
        interval_union,
        match_alarms,
        segment_auc,
        segment_scores,
    )

    start, end, prob, label = h["start_s"], h["end_s"], h["prob"], h["label"]
    alarm_s = end[idx]
    t = alarm_s - END_S  # inside the alarm window's own [start, end)
    held = int(h["held_out"])
    seizure = h["leading"][[held]] if held >= 0 else np.zeros((0, 2))
    latency, _ = match_alarms(t, seizure, after=cfg.window_s)
    inter = label == INTERICTAL
    inter_iv = interval_union(np.stack([start[inter], end[inter]], axis=1))
    false = ((t[:, None] >= inter_iv[None, :, 0]) & (t[:, None] < inter_iv[None, :, 1])).any(1)
    inter_h = covered_seconds(inter_iv) / 3600
    true = label == PREICTAL  # class 1: ictal here
    seg = segment_scores(prob >= cfg.threshold, true)
    found = len(latency) == 1 and not np.isnan(latency[0])
    return {
        "alarm_s": alarm_s,
        "alarm_window": idx,
        "false": false,
        "onset_s": float(seizure[0, 0]) if len(seizure) else float("nan"),
        "predicted": int(found),  # detected, for a detection run
        "latency_s": float(latency[0]) if found else float("nan"),
        "false_alarms": int(false.sum()),
        "interictal_h": inter_h,
        "fpr_per_h": float(false.sum() / inter_h) if inter_h else float("nan"),
        "recorded_s": covered_seconds(np.stack([start, end], axis=1)),
        "time_in_warning": float("nan"),
        "preictal_windows": int(true.sum()),
        "interictal_windows": int(inter.sum()),
        **{f"segment/{k}": v for k, v in seg.items()},
        "segment/auc": segment_auc(prob, true),
    }


def gates_by_class(
    gates: np.ndarray, label: np.ndarray, towers: list[str], names=CLASS_NAMES
) -> list[dict[str, Any]]:
    """Mean gate weight of each tower over the windows of each true class: one row per class
    (`names`: of class 0 and class 1)."""
    return [
        {
            "class": names[c],
            "windows": int((label == c).sum()),
            **{
                t: float(gates[label == c, i].mean()) if (label == c).any() else float("nan")
                for i, t in enumerate(towers)
            },
        }
        for c in (INTERICTAL, PREICTAL)
    ]


def fold_runs(run: RunDir) -> list[RunDir]:
    return [c for c in run.children() if c.path.name.startswith("fold")]


def evaluate_run(
    run: RunDir,
    threshold: float | None = None,
    alarm_k: int | None = None,
    alarm_n: int | None = None,
) -> dict[str, Any]:
    """Evaluate a leave-one-seizure-out run from its folds' held-out predictions (threshold and
    k-of-n as trained unless given): a row per fold, the figures pooled over folds (seizures
    predicted / seizures, false alarms / interictal hours, time in warning, segment scores over all
    held-out windows), mean gate weights per class; a timeline figure per recording and the gate
    figure. Writes and returns the run's summary."""
    from nnlab.metrics.seizure import segment_auc, segment_scores
    from nnlab.viz.eeg import gates_figure, timeline_figure

    cfg = load_config(run, SeizureCV)
    cfg = with_given(cfg, threshold=threshold, alarm_k=alarm_k, alarm_n=alarm_n)
    folds = fold_runs(run)
    if not folds:
        raise NNLabError(f"{run.path}: no fold runs yet")
    rows, held, results, numbers = [], [], [], []
    for child in folds:
        h = read_heldout(child)
        r = evaluate_heldout(h, cfg)
        s = child.summary()
        found = {"detected": r["predicted"], "latency s": r["latency_s"]} if cfg.detects else {}
        rows.append(
            {
                "fold": child.path.name,
                "onset h": r["onset_s"] / 3600,
                f"{cfg.positive} windows": r["preictal_windows"],
                "interictal h": r["interictal_h"],
                "alarms": len(r["alarm_s"]),
                **(found or {"predicted": r["predicted"]}),
                "false alarms": r["false_alarms"],
                "FPR/h": r["fpr_per_h"],
                **({} if cfg.detects else {"time in warning": r["time_in_warning"]}),
                "sensitivity": r["segment/sensitivity"],
                "specificity": r["segment/specificity"],
                "precision": r["segment/precision"],
                "AUC": r["segment/auc"],
                "best epoch": s.get("best_epoch"),
            }
        )
        held.append(h)
        results.append(r)
        numbers.append(int(child.path.name.removeprefix("fold")))
    towers = [str(t) for t in held[0]["towers"]]
    prob = np.concatenate([h["prob"] for h in held])
    label = np.concatenate([h["label"] for h in held])
    gates = np.concatenate([h["gates"] for h in held])
    inter_h = sum(r["interictal_h"] for r in results)
    recorded = sum(r["recorded_s"] for r in results)
    predicted = sum(r["predicted"] for r in results)
    n_false = sum(r["false_alarms"] for r in results)
    seg = segment_scores(prob >= cfg.threshold, label == PREICTAL)
    latency = np.array([r.get("latency_s", np.nan) for r in results])
    summary = {
        **{k: v for k, v in run.summary().items() if k in ("wall_s", "train_time_s")},
        "task": SeizureCV.name,
        "target": cfg.target,
        "patient": cfg.patient,
        "model": cfg.model,
        "towers": towers,
        "folds": len(folds),
        "seizures_predicted": predicted,  # detected, for a detection run
        "event_sensitivity": predicted / len(folds),
        "false_alarms": n_false,
        "interictal_h": inter_h,
        "fpr_per_h": n_false / inter_h if inter_h else float("nan"),
        "time_in_warning": sum(r["time_in_warning"] * r["recorded_s"] for r in results) / recorded,
        **(
            {
                "latency_s": latency.tolist(),
                "median_latency_s": float(np.nanmedian(latency)) if predicted else None,
            }
            if cfg.detects
            else {}
        ),
        **{f"segment/{k}": v for k, v in seg.items()},
        "segment/auc": segment_auc(prob, label == PREICTAL),
        "threshold": cfg.threshold,
        "alarm_k": cfg.k,
        "alarm_n": cfg.n,
        "refractory_s": cfg.refractory,
        "sop_s": cfg.sop_s,
        "sph_s": cfg.sph_s,
        "rows": rows,
        "gates": gates_by_class(gates, label, towers, ("interictal", cfg.positive)),
    }
    run.save_summary(summary)
    for name in [p.stem for p in run.figures() if p.stem.startswith("timeline_")]:
        (run.figure_dir / f"{name}.png").unlink()  # a re-evaluation redraws them all
    names, span = held[0]["file_names"], held[0]["file_span"]
    for f, fname in enumerate(names):
        parts = [(i, h, r) for i, (h, r) in enumerate(zip(held, results)) if (h["file"] == f).any()]
        if not parts:
            continue
        sel = [h["file"] == f for _, h, _ in parts]
        alarms = np.concatenate(
            [r["alarm_s"][h["file"][r["alarm_window"]] == f] for _, h, r in parts]
        )
        fig = timeline_figure(
            start_s=np.concatenate([h["start_s"][m] for (_, h, _), m in zip(parts, sel)]),
            end_s=np.concatenate([h["end_s"][m] for (_, h, _), m in zip(parts, sel)]),
            prob=np.concatenate([h["prob"][m] for (_, h, _), m in zip(parts, sel)]),
            label=np.concatenate([h["label"][m] for (_, h, _), m in zip(parts, sel)]),
            group=np.concatenate(
                [np.full(m.sum(), numbers[i]) for (i, _, _), m in zip(parts, sel)]
            ),
            threshold=cfg.threshold,
            alarms_s=alarms,
            sop_s=cfg.sop_s,
            sph_s=cfg.sph_s,
            warnings=not cfg.detects,
            seizures=held[0]["seizures"],
            origin_s=float(span[f, 0]),
            length_s=float(span[f, 1] - span[f, 0]),
            ylabel=f"P({cfg.positive})",
            positive=cfg.positive,
            title=f"{cfg.patient} {fname}: held-out P({cfg.positive}), each window from the fold "
            "that held it out",
        )
        run.save_figure(f"timeline_{Path(str(fname)).stem}", fig)
    run.save_figure(
        "gates", gates_figure(summary["gates"], towers, f"{cfg.patient}: mean gate weights")
    )
    return summary


# ---- leave-one-seizure-out: the parent run -------------------------------------------------------
def same_windows(prep: PreparedPatient, run: RunDir, resume: bool) -> None:
    """The run's windows and labels, kept as a digest in RUN/windows.json when it starts; on
    --resume an error when they changed (annotations corrected, files added): the finished
    folds were trained and tested on the others, and one run would mix two labellings."""
    import hashlib

    digest = hashlib.sha256()
    for a in (prep.file, prep.start_s, prep.label):
        digest.update(np.ascontiguousarray(a).tobytes())
    found = {
        "digest": digest.hexdigest()[:16],
        "seizures": np.asarray(prep.patient.seizures).tolist(),
        "windows": int(len(prep.label)),
    }
    path = run.path / "windows.json"
    if not resume:
        atomic_write_json(path, found)
        return
    if not path.is_file():  # a run from before this check
        return
    before = json.loads(path.read_text())
    if before["digest"] != found["digest"]:
        raise NNLabError(
            f"{run.path}: the patient's windows or their labels changed since this run started "
            f"({before['windows']} windows then, {found['windows']} now; seizures then "
            f"{before['seizures']}, now {found['seizures']}): start a new run (another --out)"
        )


def run_seizure_cv(
    cfg: SeizureConfig, run: RunDir, console: Console | None = None, resume: bool = False
) -> dict[str, Any]:
    """Prepare the patient once, train one child run per fold (`fold00`, ...) by the shared
    skeleton, then `evaluate_run`. On --resume a finished fold is kept, an interrupted one
    continues from its last checkpoint, one that never checkpointed starts again."""
    t0 = time.perf_counter()
    lcfg = cfg.labels()
    if not resume:
        run.save_config(
            {
                "task": SeizureCV.name,
                **to_dict(cfg),
                "label_config": lcfg.to_dict(),  # lead_gap_s resolved
                "spectral_config": cfg.spectral().to_dict(),
            }
        )
    prep = prepare_patient(cfg, console)
    same_windows(prep, run, resume)
    n_folds = len(fold_parts(prep, cfg))
    numbers = [cfg.fold] if cfg.fold >= 0 else list(range(n_folds))
    if numbers and numbers[-1] >= n_folds:
        raise NNLabError(f"--fold {cfg.fold}: the patient has {n_folds} folds")
    if console is not None:
        console.print(
            f"{cfg.patient}: {len(prep.patient.files)} files, {len(prep.leading)} leading "
            f"seizures, {n_folds} folds; {int((prep.label[prep.base] == PREICTAL).sum())} "
            f"{cfg.positive} "
            f"and {int((prep.label[prep.base] == INTERICTAL).sum())} interictal windows "
            f"(+{int((~prep.base).sum())} oversampled)",
            highlight=False,
        )
    for k in numbers:
        name = f"fold{k:02d}"
        path = run.path / name
        task = SeizureFoldTask(dataclasses.replace(cfg, fold=k), console, prep)
        if resume and (path / "summary.json").exists():
            continue
        if resume and (path / "checkpoints" / "last.safetensors").exists():
            if console is not None:
                console.rule(f"{name} (resumed)")
            run_task(task, RunDir.open(path), resume=True)
            continue
        if path.exists():
            shutil.rmtree(path)  # started, never checkpointed: nothing to keep
        run_children(run, {name: lambda child, task=task: run_task(task, child)}, console)
    summary = evaluate_run(run)
    summary["train_time_s"] = sum(
        RunDir(p.path).summary().get("train_time_s", 0.0) for p in fold_runs(run)
    )
    summary["wall_s"] = (
        time.perf_counter() - t0 + (run.summary().get("wall_s", 0.0) if resume else 0.0)
    )
    run.save_summary(summary)
    return summary


class SeizureCV(CrossValidation):
    """`nnlab seizure train` for the shared launcher: leave-one-seizure-out, a child per fold."""

    name, noun, config_class = "seizure", "seizure-prediction", SeizureConfig
    fold_task = SeizureFoldTask
    cross_validate = staticmethod(run_seizure_cv)
    summary_keys = (
        "patient",
        "folds",
        "event_sensitivity",
        "fpr_per_h",
        "time_in_warning",
        "segment/auc",
    )

    def run_name(self) -> str:
        return f"seizure-{self.cfg.patient}"


# ---- detection on a new recording ----------------------------------------------------------------
@dataclass
class FoldModel:
    """One trained fold: its model and everything its input needs."""

    run: RunDir
    model: nn.Module
    norm: Any  # Normalizer
    channels: list[str] | None  # None: a model without channel labels (one channel, e.g. Bonn)
    fs: float
    spectral: Any  # SpectralConfig


def load_fold_models(run: RunDir, fold: int = -1, device: str = "auto") -> list[FoldModel]:
    """The fold model(s) of a run: the run itself when it is one fold (it has normalizer.json and a
    best checkpoint), else its fold children (all, or child number `fold`). They must agree on
    channels, rate and front end."""
    from nnlab.signal.spectral import Normalizer, SpectralConfig

    def usable(r: RunDir) -> bool:
        return (r.path / NORMALIZER).exists() and (r.checkpoint_dir / "best.safetensors").exists()

    runs = [run] if usable(run) else [c for c in run.children() if usable(c)]
    if not runs:
        raise NNLabError(f"{run.path}: no trained fold (normalizer.json and a best checkpoint)")
    if fold >= 0 and runs != [run]:
        if fold >= len(runs):
            raise NNLabError(f"--fold {fold}: {run.path} has {len(runs)} trained folds")
        runs = [runs[fold]]
    out = []
    for r in runs:
        meta = json.loads((r.path / NORMALIZER).read_text())
        spec = dict(meta["spectral"])
        out.append(
            FoldModel(
                run=r,
                model=load_model(r, "best", device),
                norm=Normalizer.from_dict(meta),
                channels=meta.get("channels"),
                fs=float(meta["fs"]),
                spectral=SpectralConfig(**spec),
            )
        )
    first = out[0]
    for m in out[1:]:
        if (m.channels, m.fs, m.spectral) != (first.channels, first.fs, first.spectral):
            raise NNLabError(f"{m.run.path}: its input differs from {first.run.path}'s")
    return out


# a seizure-detection model's alarm rule (a Bonn model's: class 1 is "seizure", not "preictal"):
# windows every quarter window, an alarm when 3 of the last 4 are positive (a run of positives
# spanning the window and two hops: 27 s of 18-s windows), one alarm per run of windows that
# satisfy the rule (`k_of_n_alarms(episodes=True)`), and a minute's refractory period against a
# run that flickers off for a window. A first version had a 5-minute refractory period and no
# episodes: it hid a second seizure 4 minutes after the first (docs/RESULTS.md).
DETECTION_HOPS = 4  # windows per window length
DETECTION_K, DETECTION_N = 3, 4
DETECTION_REFRACTORY_S = 60.0


def detect_settings(run: RunDir) -> tuple[SeizureConfig, str, int]:
    """The alarm settings of a run, what its class 1 is and how many windows start per window
    length: its own config, "preictal" (or "ictal" for a detection run) and 1 (the windows it was
    trained and evaluated on: no overlap) for a `seizure train` run (parent or fold); the
    detection rule above and "seizure" otherwise (a Bonn detection model; a model of another
    segment dataset: the class after the '-' of its pair)."""
    saved = run.config()
    task = saved.get("task")
    if task in (SeizureCV.name, SeizureFoldTask.name):
        cfg = load_config(run, SeizureCV if task == SeizureCV.name else SeizureFoldTask)
        return cfg, cfg.positive, 1
    cfg = SeizureConfig(
        alarm_k=DETECTION_K, alarm_n=DETECTION_N, refractory_s=DETECTION_REFRACTORY_S
    )
    # a segment model of another dataset: its class 1 by name ('interictal-preictal': preictal)
    pair = str(saved.get("pair", ""))
    other = saved.get("data", "bonn") != "bonn" and pair.count("-") == 1
    return cfg, pair.split("-")[1] if other else "seizure", DETECTION_HOPS


@torch.no_grad()
def window_probabilities(
    models: list[FoldModel],
    x: np.ndarray,
    starts: np.ndarray,
    chunk: int = 128,
    gates: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """P(class 1) (W, C') of the windows at `starts` of x (C, N) at the models' rate: C' = 1 for
    a multi-channel model, C' = C for a single-channel one (every channel on its own); the mean
    over the fold models. With `gates`, also the towers' gate weights (W, C', M), the mean over
    the fold models too."""
    from nnlab.signal.spectral import prepare_windows

    m0 = models[0]
    C = x.shape[0]
    single = m0.model.cfg.channels == 1
    M = len(m0.model.cfg.towers)
    out = np.zeros((len(starts), C if single else 1), dtype=np.float64)
    weights = np.zeros((*out.shape, M), dtype=np.float64)
    for i in range(0, len(starts), chunk):
        spec = prepare_windows(x, m0.fs, m0.spectral, starts[i : i + chunk])  # (w, C, T, F)
        w = len(spec)
        if single:
            spec = spec.reshape(w * C, 1, *spec.shape[2:])  # (w C, 1, T, F): channels as windows
        for m in models:
            device = next(m.model.parameters()).device
            xt = torch.from_numpy(m.norm(spec)).to(device)
            logits, g = m.model(xt, return_gates=True)
            p = torch.softmax(logits.float(), 1)[:, 1].cpu().numpy()
            out[i : i + w] += p.reshape(w, -1) / len(models)
            weights[i : i + w] += g.float().cpu().numpy().reshape(w, -1, M) / len(models)
    return (out, weights) if gates else out


def detect_file(
    path: str | Path,
    run: RunDir,
    out: Path | None = None,
    fold: int = -1,
    device: str = "auto",
    overwrite: bool = False,
    threshold: float | None = None,
    channels: Sequence[str] | None = None,
    chunk_s: float = 600.0,
    console: Console | None = None,
    hop_s: float | None = None,
    alarm_k: int | None = None,
    alarm_n: int | None = None,
    refractory_s: float | None = None,
    summary: str | Path | None = None,
    seizures: Sequence[tuple[float, float]] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run a trained model on one EDF file (see the module docstring); an EDF+D file with gaps
    stretch by stretch, each continuous stretch read as if it were a file of its own (its
    windows, its k-of-n alarms), its times counted from its first sample, gaps included. A
    single-channel model reads `channels` (labels), or else every EEG channel of the file's main
    rate: channels named or measured as something else (ECG, EOG, SpO2, annotations:
    `non_eeg_reason`) and channels that are flat throughout are left out and listed under
    "skipped"; a channel flat through one window is not read in that window (its probability
    there is nan). The file is read in chunks of about `chunk_s` seconds.

    Windows start every `hop_s` seconds and alarms follow the k-of-n rule (`alarm_k` of
    `alarm_n`, then `refractory_s` without alarms); each defaults to the run's own (a prediction
    run: its windows, no overlap) or, for a detection model, to `DETECTION_*` above. With a
    `summary` that lists the file (a CHB-MIT summary, a Siena list, or the file's own TUH or BIDS
    annotations), or with the file's `seizures` given as (onset, offset) seconds from its start,
    or else with the TUH, BIDS or Helsinki annotations found beside the file
    (`annotation_sidecar`), the
    seizures are drawn and each is scored
    (`nnlab.metrics.seizure.match_alarms`): the latency of its first alarm from the onset
    (detection: from the onset to one window past the offset; prediction: from SOP + SPH before
    it) and the false alarms.

    Writes into `out` (default RUN/detections): <stem>_windows.csv (start_s, end_s, probability
    of class 1 -- preictal, or seizure for a Bonn model --, positive, alarm, the gate weight of
    each tower -- of the channel that decides, for a single-channel model --; one probability
    column per channel for a single-channel model), <stem>_alarms.csv (alarm time and, for a
    prediction model, its warning interval), <stem>_timeline.png and, with a summary,
    <stem>_seizures.csv (onset, offset, first alarm, latency), and <stem>_detect.json: what is
    returned, with the arguments that made it. With `resume`, a file whose <stem>_detect.json
    was made with the same arguments is not read again: that result is returned (a folder of
    recordings, interrupted, goes on where it stopped). Returns what was found."""
    from nnlab.data.eeg import (
        edf_header,
        non_eeg_reason,
        unique_labels,
    )
    from nnlab.signal.alarms import k_of_n_alarms, warning_intervals
    from nnlab.signal.spectral import (
        implausible_amplitude,
        mains_mismatch,
        missing_band,
        window_starts,
    )
    from nnlab.viz.eeg import timeline_figure

    path = Path(path)
    from nnlab.signal.cache import source_identity

    request = {  # what decides the result, as asked (defaults unresolved): compared on resume
        "recording": source_identity(path) if path.is_file() else str(path),
        "model": str(run.path.resolve()),
        "fold": fold,
        "threshold": threshold,
        "channels": list(channels) if channels else None,
        "hop_s": hop_s,
        "alarm_k": alarm_k,
        "alarm_n": alarm_n,
        "refractory_s": refractory_s,
        "summary": str(Path(summary).resolve()) if summary is not None else None,
        "seizures": [list(map(float, s)) for s in seizures] if seizures is not None else None,
    }
    from nnlab.data.eeg import annotation_sidecar, read_summary

    sidecar = None  # the recording's own annotations, beside it: read when nothing else is given
    if summary is None and seizures is None and path.is_file():
        try:
            sidecar = annotation_sidecar(path)
        except NNLabError as e:  # the detections need no annotations: the file is still read
            warnings.warn(f"{e}: {path.name} is read, its seizures not scored", stacklevel=2)
    request["sidecar"] = str(sidecar) if sidecar is not None else None
    out = Path(out) if out is not None else run.path / "detections"
    writable_folder(out)  # before the work: an output folder that cannot take it loses it
    done = out / f"{path.stem}_detect.json"
    if resume and not overwrite and done.exists():
        try:
            earlier = json.loads(done.read_text())
        except (OSError, json.JSONDecodeError):
            earlier = None  # written atomically, so not expected; made again below
        if earlier is not None and earlier.get("request") == request:
            return {**earlier, "resumed": True}
        if earlier is not None:
            raise NNLabError(
                f"{done} was made with other arguments or another version of the recording; "
                "--overwrite makes it again"
            )
    cfg, positive, hops = detect_settings(run)
    cfg = with_given(
        cfg, threshold=threshold, alarm_k=alarm_k, alarm_n=alarm_n, refractory_s=refractory_s
    )
    if refractory_s is not None and refractory_s < 0:
        raise NNLabError(f"--refractory-s must be >= 0, got {refractory_s}")
    if hop_s is not None and not hop_s > 0:
        raise NNLabError(f"--hop-s must be > 0, got {hop_s}")
    # one-line error for a missing or unreadable file; an EDF+D file with gaps is read stretch by
    # stretch (`head.stretches`), its times counted from its first sample, gaps included
    head = edf_header(path, gaps_ok=True)
    if summary is not None and seizures is not None:
        raise NNLabError("give the seizures by --summary or by --seizures, not both")
    if sidecar is not None:  # the file's own, whatever name they give it (.bdf, .EDF)
        seizures = sidecar.seizures
    if summary is not None:  # before the work: a file the summary lacks is named at once
        seizures = read_summary(summary).file(path.name).seizures
    if seizures is not None:
        seizures = np.array(seizures, dtype=float).reshape(-1, 2)
        if not np.isfinite(seizures).all() or (seizures[:, 1] < seizures[:, 0]).any():
            raise NNLabError("each seizure must be ONSET-OFFSET seconds, the offset not earlier")
        after = seizures[:, 0] >= head.span_s  # annotations of another file, or clock times
        if after.any():
            warnings.warn(
                f"{path.name}: seizure(s) "
                + ", ".join(f"{on:g}-{off:g} s" for on, off in seizures[after])
                + f" start after the recording ends ({head.span_s:g} s): not scored",
                stacklevel=2,
            )
            seizures = seizures[~after]
        recorded = [(at, at + t - f) for f, t, at in head.stretches]
        unseen = np.array(
            [not any(on < b and off > a for a, b in recorded) for on, off in seizures], bool
        )
        if unseen.any():  # an EDF+D file's gap: none of the seizure was recorded
            warnings.warn(
                f"{path.name}: seizure(s) "
                + ", ".join(f"{on:g}-{off:g} s" for on, off in seizures[unseen])
                + " lie in a gap of the recording: not scored",
                stacklevel=2,
            )
            seizures = seizures[~unseen]
    models = load_fold_models(run, fold, device)
    m0 = models[0]
    skipped: list[str] = []
    derivation = None  # how the channels read come from the file's, when not all as labelled
    if m0.model.cfg.channels == 1:
        if channels:  # as labelled, or found otherwise (a pair from a referential file)
            channels = unique_labels(montage_channels(channels))  # 'double-banana': its 18
            derivation, missing = derive_channels(channels, head.labels)
            if missing:
                raise NNLabError(
                    f"{path}: no channel(s) {', '.join(missing)}, nor two channels on one "
                    "reference to derive them from (it has "
                    f"{', '.join(unique_labels(head.labels))})"
                )
            if derivation.identity:
                derivation = None
            odd = [f"{c} ({why})" for c in channels if (why := non_eeg_reason(c))]
            if odd:  # asked for: read, but said
                warnings.warn(
                    f"{path.name}: --channels {', '.join(odd)}: not EEG by its label; read as "
                    "asked",
                    stacklevel=2,
                )
        else:
            channels = []
            for c in unique_labels(head.labels):
                why = non_eeg_reason(c, head.units[head.find(c)])
                if why:
                    skipped.append(f"{c} ({why})")
                else:
                    channels.append(c)
            aux = auxiliary(channels)  # '1', 'MK' among 'EEG Fp1', ...: not scalp channels
            skipped += [f"{c} (no 10-20 electrode name among 10-20 names)" for c in aux]
            channels = [c for c in channels if c not in aux]
            if not channels:
                raise NNLabError(f"{path}: no EEG channels (skipped: {', '.join(skipped)})")
            # every channel of the file's main rate: one at another is seldom scalp EEG (those
            # asked for by --channels are read at their own rates)
            rates = [head.fs[head.find(c)] for c in channels]
            rate = max(set(rates), key=lambda r: (rates.count(r), r))  # a tie: the higher
            skipped += [f"{c} ({r:g} Hz)" for c, r in zip(channels, rates) if r != rate]
            channels = [c for c, r in zip(channels, rates) if r == rate]
        rule = "maximum over channels"
    else:
        if channels:
            raise NNLabError(
                "--channels is for a single-channel model; this model reads its own "
                f"{m0.model.cfg.channels} channels by label"
            )
        if not m0.channels:  # a segment model of text or .npy files: channels by position
            raise NNLabError(
                f"{run.path}: its model reads {m0.model.cfg.channels} channels, but the segments "
                "it learnt from did not name them, so which of the file's channels to read is "
                "unknown (train on segment files that name their channels: EDF, or .mat with "
                "their names)"
            )
        channels = list(m0.channels)
        derivation, missing = derive_channels(channels, head.labels)
        if missing:
            raise NNLabError(
                f"{path}: the model needs channel(s) {', '.join(missing)}, which the file "
                "neither has nor can give from two channels on one reference (it has "
                f"{', '.join(unique_labels(head.labels))})"
            )
        rule = "the model's channels by label"
        if derivation.notes:
            rule += f", {len(derivation.notes)} of them derived"
    stem = path.stem
    targets = [
        out / f"{stem}_windows.csv",
        out / f"{stem}_alarms.csv",
        out / f"{stem}_timeline.png",
    ]
    if seizures is not None:
        targets.append(out / f"{stem}_seizures.csv")
    targets.append(out / f"{stem}_detect.json")
    # before the work: a long file is not read for nothing; resumed, a file without its
    # <stem>_detect.json was interrupted, and its partial outputs are made again
    claim_outputs(targets, overwrite or resume)
    spec = m0.spectral
    sources = derivation.sources if derivation is not None else channels  # the labels read
    rates = [head.fs[head.find(c)] for c in sources]  # one rate, or several (each resampled)
    fs_file = min(rates)
    duration_s = min(head.n_samples[head.find(c)] / r for c, r in zip(sources, rates))
    L = spec.window_length(m0.fs)
    hop = spec.window_s / hops if hop_s is None else hop_s
    if hop * m0.fs < 1:  # windows less than a sample apart would repeat, and count twice
        raise NNLabError(
            f"--hop-s must be at least one sample of the model's rate (1 / {m0.fs:g} Hz = "
            f"{1 / m0.fs:.4g} s), got {hop:g}"
        )
    # each continuous stretch (one, but for an EDF+D file with gaps) read as a file of its own:
    # (its first and end second of the samples read end to end, its onset in seconds, its
    # windows' model-rate starts)
    stretches = []
    for f0, f1, at in head.stretches:
        n_model = min(
            model_samples(n, rate, m0.fs)
            for rate, (_, n) in (
                (rate, stretch_samples(head, sources, rate, f0, f1)) for rate in set(rates)
            )
        )
        if n_model >= L:
            stretches.append((f0, f1, at, window_starts(n_model, m0.fs, spec.window_s, hop)))
    if not stretches:
        raise NNLabError(
            f"{path}: {duration_s:.1f} s of EEG is shorter than one {spec.window_s:g}-s window"
            + (" (in each of its continuous stretches)" if len(head.stretches) > 1 else "")
        )
    if len(stretches) < len(head.stretches):
        warnings.warn(
            f"{path.name}: {len(head.stretches) - len(stretches)} of its "
            f"{len(head.stretches)} continuous stretches are shorter than one "
            f"{spec.window_s:g}-s window: not read",
            stacklevel=2,
        )
    gaps = [  # (from, to) seconds: where an EDF+D file recorded nothing
        (at + t - f, next_at)
        for (f, t, at), (_, _, next_at) in zip(head.stretches, head.stretches[1:])
    ]
    starts = np.concatenate([st for *_, st in stretches])  # within their stretches
    first_window = np.cumsum([0] + [len(st) for *_, st in stretches])  # of each stretch
    single = rule == "maximum over channels"
    dead = np.ones(len(channels), dtype=bool)  # a multi-channel model's channels flat so far
    per_channel = np.full((len(starts), len(channels) if single else 1), np.nan)  # (W, C')
    towers = list(m0.model.cfg.towers)
    gate = np.full((*per_channel.shape, len(towers)), np.nan)  # (W, C', M)
    # chunks of about chunk_s, each read and resampled on its own (`read_resampled`): memory
    # stays that of one chunk for a recording of any length
    per_chunk = max(1, int(chunk_s / hop))
    chunks = [(k, i) for k, (*_, st) in enumerate(stretches) for i in range(0, len(st), per_chunk)]
    progress = None
    if console is not None and len(chunks) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        progress = Progress(
            TextColumn(f"reading {path.name}"), BarColumn(), MofNCompleteColumn(), console=console
        )
        progress.start()
        bar = progress.add_task("chunks", total=len(chunks))
    try:
        for k, i in chunks:
            f0, f1, _, st = stretches[k]
            part = st[i : i + per_chunk]  # (w,) model-rate starts within the stretch
            x, first, flat = read_sources(
                path,
                head,
                sources,
                m0.fs,
                (f0, f1),
                part[0],
                part[-1] + L,
                derivation,
                gaps_ok=len(head.stretches) > 1,  # (a short piece left out is a gap too)
            )
            i += first_window[k]  # the row of the chunk's first window
            for why in (
                (
                    mains_mismatch(x, m0.fs, spec, path.name),
                    implausible_amplitude(x, path.name),
                    missing_band(fs_file, m0.fs, spec, path.name),
                )
                if (k, i) == (0, 0)
                else ()
            ):
                if why:
                    warnings.warn(why, stacklevel=2)
            p, weights = window_probabilities(models, x, part - first, gates=True)  # (w, C'[, M])
            if single:  # a channel flat throughout a window (disconnected, padding) is not read
                for j, g in enumerate(part):  # the window's file samples, before resampling
                    p[j, flat(g, g + L)] = np.nan
            else:  # a multi-channel model needs them all: a dead one is said, not skipped
                dead &= flat(part[0], part[-1] + L)
            per_channel[i : i + len(part)] = p
            gate[i : i + len(part)] = weights
            if progress is not None:
                progress.advance(bar)
    finally:
        if progress is not None:
            progress.stop()
    if not single and dead.any():
        warnings.warn(
            f"{path.name}: channel(s) {', '.join(c for c, d in zip(channels, dead) if d)} are "
            "flat through the whole recording (disconnected?); the model reads them as silence, "
            "so its probabilities here mean little",
            stacklevel=2,
        )
    if single:
        flat = np.isnan(per_channel).all(axis=0)  # (C,) flat through the whole recording
        if flat.all():
            raise NNLabError(f"{path}: every channel is flat ({', '.join(channels)})")
        skipped += [f"{c} (flat)" for c, f in zip(channels, flat) if f]
        channels = [c for c, f in zip(channels, flat) if not f]
        per_channel, gate = per_channel[:, ~flat], gate[:, ~flat]
    read = ~np.isnan(per_channel).all(axis=1)  # (W,) windows with a channel to read
    prob = np.where(read, np.where(np.isnan(per_channel), -1.0, per_channel).max(1), np.nan)
    # the gate weights of the channel that decides each window (the most probable one)
    decides = np.where(np.isnan(per_channel), -1.0, per_channel).argmax(1)  # (W,)
    gate = np.where(read[:, None], gate[np.arange(len(prob)), decides], np.nan)  # (W, M)
    start_s = np.concatenate([at + st / m0.fs for _, _, at, st in stretches])
    end_s = start_s + L / m0.fs
    predicts = positive == "preictal"  # else a detection model: "ictal" or "seizure"
    alarm_idx = np.concatenate(  # the k-of-n rule within each continuous stretch
        [
            a
            + k_of_n_alarms(
                prob[a:b] >= cfg.threshold, end_s[a:b], cfg.k, cfg.n, cfg.refractory, not predicts
            )
            for a, b in zip(first_window, first_window[1:])
        ]
    ).astype(int)
    alarm_s = end_s[alarm_idx]
    warn = warning_intervals(alarm_s, cfg.sop_s, cfg.sph_s)

    out.mkdir(parents=True, exist_ok=True)
    alarm_flag = np.zeros(len(prob), dtype=int)
    alarm_flag[alarm_idx] = 1
    header = ["start_s", "end_s", "probability", "positive", "alarm"]
    header += [f"gate[{t}]" for t in towers]
    extra = [f"p[{c}]" for c in channels] if per_channel.shape[1] > 1 else []
    lines = [",".join(header + extra)]
    for j in range(len(prob)):
        values = [f"{start_s[j]:.3f}", f"{end_s[j]:.3f}", f"{prob[j]:.6f}"]
        values += [str(int(prob[j] >= cfg.threshold)), str(alarm_flag[j])]
        values += [f"{v:.4f}" for v in gate[j]]
        values += [f"{p:.6f}" for p in per_channel[j]] if extra else []
        lines.append(",".join(values))
    atomic_write_text(targets[0], "\n".join(lines) + "\n")
    if predicts:
        atomic_write_text(
            targets[1],
            "alarm_s,warning_from_s,warning_to_s\n"
            + "".join(f"{a:.3f},{w0:.3f},{w1:.3f}\n" for a, (w0, w1) in zip(alarm_s, warn)),
        )
    else:  # a detection alarm announces no occurrence period
        atomic_write_text(targets[1], "alarm_s\n" + "".join(f"{a:.3f}\n" for a in alarm_s))
    events = None
    if seizures is not None:
        from nnlab.metrics.seizure import match_alarms

        before = cfg.sop_s + cfg.sph_s if predicts else 0.0
        latency, false = match_alarms(alarm_s, seizures, before, after=spec.window_s)
        events = {
            "seizures": [
                {"onset_s": on, "offset_s": off, "latency_s": None if np.isnan(d) else float(d)}
                for (on, off), d in zip(seizures.tolist(), latency)
            ],
            "false_alarms": int(false.sum()),
            "false_alarms_s": alarm_s[false].tolist(),
        }
        atomic_write_text(
            targets[3],
            "onset_s,offset_s,first_alarm_s,latency_s\n"
            + "".join(
                f"{on:.3f},{off:.3f}," + ("," if np.isnan(d) else f"{on + d:.3f},{d:.3f}") + "\n"
                for (on, off), d in zip(seizures, latency)
            ),
        )
    fig = timeline_figure(
        start_s=start_s,
        end_s=end_s,
        prob=prob,
        threshold=cfg.threshold,
        alarms_s=alarm_s,
        sop_s=cfg.sop_s,
        sph_s=cfg.sph_s,
        warnings=predicts,
        seizures=seizures,
        channel_probs={c: per_channel[:, i] for i, c in enumerate(channels)} if extra else None,
        length_s=head.span_s,
        gaps=gaps,
        ylabel=f"P({positive})",
        title=f"{path.name}: P({positive}) per {spec.window_s:.3g}-s window every {hop:.3g} s "
        f"({rule}; {len(models)} model{'s' if len(models) > 1 else ''}), alarms {cfg.k} of "
        f"{cfg.n}",
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(targets[2], buf.getvalue())
    found = {
        "file": path.name,
        "duration_s": duration_s,
        "span_s": head.span_s,  # gaps included
        "gaps": [list(g) for g in gaps],
        "file_fs": fs_file,
        "model_fs": m0.fs,
        "channels": channels,
        "derived": list(derivation.notes) if derivation is not None else [],
        # a multi-channel model's channels that were flat all along (read: the model needs them)
        "flat": [c for c, d in zip(channels, dead) if d] if not single else [],
        "skipped": skipped,
        "rule": rule,
        "positive_class": positive,
        "models": len(models),
        "windows": len(prob),
        "window_s": spec.window_s,
        "hop_s": hop,
        "alarm_k": cfg.k,
        "alarm_n": cfg.n,
        "refractory_s": cfg.refractory,
        "positive": int((prob >= cfg.threshold).sum()),
        # mean gate weights over the positive and the negative windows
        "gates": {
            name: dict(zip(towers, np.nanmean(gate[m], axis=0).tolist())) if m.any() else None
            for name, m in (("positive", prob >= cfg.threshold), ("negative", prob < cfg.threshold))
        },
        "alarms_s": alarm_s.tolist(),
        "events": events,
        "sidecar": str(sidecar) if sidecar is not None else None,  # the annotations beside it
        "outputs": [str(p) for p in targets],
        "request": request,
    }
    found = json.loads(json.dumps(found, default=float))  # NumPy scalars as plain numbers
    atomic_write_json(targets[-1], found)  # the last output: its presence means all are there
    return found


def detection_totals(found: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over files of `detect_file` results that were scored (a summary or seizures given):
    seizures, those found, the median latency of the found ones, false alarms, the recorded
    hours and the false alarms per hour outside the seizures."""
    seizures = [e for f in found for e in f["events"]["seizures"]]
    latency = [e["latency_s"] for e in seizures if e["latency_s"] is not None]
    false = sum(f["events"]["false_alarms"] for f in found)
    hours = sum(f["duration_s"] for f in found) / 3600
    ictal_h = (
        sum(
            max(0.0, min(e["offset_s"], f["duration_s"]) - e["onset_s"])
            for f in found
            for e in f["events"]["seizures"]
        )
        / 3600
    )
    outside = hours - ictal_h
    return {
        "files": len(found),
        "hours": hours,
        "seizures": len(seizures),
        "found": len(latency),
        "median_latency_s": float(np.median(latency)) if latency else None,
        "false_alarms": false,
        "false_per_h": false / outside if outside > 0 else float("nan"),
    }


def prepare_rows(prep: PreparedPatient, cfg: SeizureConfig) -> tuple[list[dict[str, Any]], str]:
    """The per-recording table of `nnlab seizure prepare` (with a total row) and a note on the
    labelling parameters, the channels and the cache."""
    rows = [dict(r) for r in prep.rows]
    total = {k: ("total" if k == "file" else 0) for k in rows[0]}
    for r in rows:
        for k in ("windows", cfg.positive, "interictal", "excluded", "oversampled", "seizures"):
            total[k] += r[k]
    total["start h"] = ""
    total["minutes"] = sum(r["minutes"] for r in rows)
    lcfg = cfg.labels()
    skipped = "; ".join(f"{name} skipped ({why})" for name, why in prep.patient.skipped)
    if cfg.detects:
        events = (
            f"detection: ictal = windows at least half inside a seizure, interictal >= "
            f"{cfg.gap_s:g} s from any seizure; {len(prep.leading)} seizures"
        )
    else:
        events = (
            f"SOP {lcfg.sop_s:g} s, SPH {lcfg.sph_s:g} s, interictal >= "
            f"{lcfg.interictal_gap_s:g} s from any seizure, leading seizures >= "
            f"{lcfg.lead_gap_s:g} s after the previous one: {len(prep.leading)} of "
            f"{len(prep.patient.seizures)}"
        )
    note = (
        f"{len(prep.patient.channels)} channels at {cfg.fs:g} Hz, windows "
        f"{prep.store.window_shape} (C, T, F); {events}; {cfg.positive} windows "
        f"{cfg.oversample}x as dense for training; cache {prep.cache_dir}"
        + (f"; {skipped}" if skipped else "")
    )
    return rows + [total], note
