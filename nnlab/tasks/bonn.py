"""Bonn segment classification (issue 16 item 2): is a 23.6-s single-channel segment ictal (set E)
or not (A healthy, D interictal)? Stratified k-fold cross-validation, one child run per fold.

Other datasets of segments run the same way from a folder with one subfolder per class (`--data
DIR --pair interictal-ictal --fs 256`; `nnlab.data.segments`): any rate (`--rate` resamples), any
segment length (the checks and the saved front end follow the data's), any number of channels
(every file the same; `--column` picks one), the mains frequency set with `--mains`. Segments of
several channels are read by all three towers: the spatial tower's tokens are the channels. Below,
the numbers are Bonn's.

Each segment x (4097 samples at 173.61 Hz) goes through the shared front end
(`nnlab.signal.spectral.log_spectrogram`): STFT segments of `segment_s` seconds overlapping by
`overlap_s` (1 s, 0.5 s: T = 46 frames of 1-Hz bins), DC, the bins around the mains frequency and
its harmonics and the bins above the recordings' band (`fmax`; Bonn: 40 Hz) removed, log power,
normalised per frequency with the mean and standard deviation of the fold's *training* segments
only. The (C, T, F) spectrogram (Bonn: C = 1) is the model's input: the STFT frames
(sub-windows of the segment) are the temporal tower's tokens, the frequency bins the spectral
tower's. The spatial tower reads one token per channel and Bonn has one channel, so the Bonn model
uses the temporal and spectral towers only.

Folds: `nnlab.data.splits.kfold(n, folds, seed, labels=y)` (StratifiedKFold, shuffled by the
seed); fold k's test part is test fold k. With `checkpoint` "best" a stratified `val_fraction` of
the other folds is held out for the checkpoint choice (never the test fold: nothing is tuned on
it); with "last" (the default) every other fold trains and the final epoch of the cosine schedule
is tested. Each fold's split is saved by segment name in its child run's split.json, its
normaliser in normalizer.json. The parent run reports the mean (and standard deviation) over
folds of the test accuracy, sensitivity (recall of the seizure class) and specificity, the pooled
counts over all test segments, and the gate weights averaged per true class over all test
segments: which tower the model relies on for seizures and for the rest.

The Bonn recordings were made in Germany (50-Hz mains) and band-passed at 0.53-40 Hz before
digitisation, so the notch is centred on 50 Hz here (the CHB-MIT default is 60 Hz).

Random time crops (`crop_s` > 0): 90-odd training segments per class are few for a transformer,
and a seizure's evidence (rhythmic spike-and-wave) fills the whole segment, so any long enough
stretch of it carries the label. Each training step then reads a random run of L consecutive
STFT frames of every segment (L = the frames that fit in `crop_s` seconds; each epoch sees other
crops), and the model is built for L frames. Validation and test read `test_crops` crops evenly
spaced over the segment and average their probabilities (and gate weights):

    p(seizure | x) = (1/K) sum_k softmax(f(x[:, :, s_k : s_k + L, :]))_1,
    s_k = round(k (T - L) / (K - 1)),  k = 0..K-1

(K = test_crops, or more where a long segment needs more crops of L frames to cover its T)
so the crops together cover every frame, and the validation loss (which picks the checkpoint with
`checkpoint` "best") is the cross-entropy of that average, the same prediction the test reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
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
from nnlab.data.segments import SegmentSet, load_segment_folders, load_segment_table
from nnlab.data.splits import kfold, load_split, save_split, split_by_group, split_by_item
from nnlab.errors import NNLabError
from nnlab.io import atomic_write_json
from nnlab.metrics.binary import binary_metrics
from nnlab.models import build_model, model_config
from nnlab.run import RunDir, run_children_resumable
from nnlab.tasks.base import CrossValidation, Task, load_config, run_task
from nnlab.train import StepOutput, TrainConfig
from nnlab.viz.eeg import cv_figure

CLASS_NAMES = ("non-seizure", "seizure")
SEGMENT_S = 4097 / 173.61  # one Bonn segment, 23.6 s
BONN_BAND_HZ = 40.0  # Bonn's recordings were band-passed at 0.53-40 Hz before digitisation
DEFAULT_CROP_S = 18.0  # `crop_s` -1: crops of 18 s where segments are longer


@dataclass
class BonnConfig:
    # bonn (the .mat files or the original Z/O/N/F/S text zips), a folder with one subfolder
    # of segment files (.txt, .csv, .npy, .mat, .edf, .bdf) per class, or a .csv / .tsv table of one
    # segment per row and a class column (y, label, class or target)
    data: str = "bonn"
    # sets of class 0 '-' sets of class 1 (the seizure class), e.g. A-E, D-E, AD-E, ABCD-E; for a
    # folder, class folders joined by '+', e.g. interictal+normal-ictal; for a table, its class
    # values, e.g. 2+3+4+5-1
    pair: str = "AD-E"
    fs: float = 0.0  # Hz, of a folder's text/.npy segments (Bonn: 173.61; EDF files: their own)
    # the one channel to read from segment files of several (columns of a text file, such as the
    # x and y of the Bern-Barcelona set; signals of an EDF file), 0-based; -1: every channel
    column: int = -1
    # Hz: resample every segment to this rate as it is read (segments at several rates, or at a
    # rate too high to hold in memory); 0: the data's own rate
    rate: float = 0.0
    # a regular expression on the file names (stems) in a folder and below it whose first group
    # is the class, e.g. '(interictal|preictal)_segment' (Kaggle: Dog_1_preictal_segment_0001.mat),
    # '_(\d)$' (Melbourne: 1_12_0.mat), '^Data_([FN])_' (Bern-Barcelona: Data_F_Ind0001.txt);
    # files it does not match are left out; '': one subfolder per class
    class_pattern: str = ""
    folds: int = 10  # stratified k-fold cross-validation
    fold: int = -1  # -1: every fold; k: fold k only (0-based)
    fold_limit: int = 0  # > 0: only the first N folds (quick runs)
    # a regular expression on the segments' names ('class/stem'): segments whose names give the
    # same match (its first group, if any) lie in one fold, e.g. cut from one recording; '': each
    # segment on its own
    group: str = ""
    # > 0: the --group match is a number counted from 1, and each run of this many (within a
    # class) is one group: the Kaggle and Melbourne sets' hours of six 10-minute segments
    # (Kaggle: --group '_(\d+)$' --group-block 6; Melbourne: --group '_(\d+)_\d$')
    group_block: int = 0
    val_fraction: float = 0.1  # of the training folds, held out to choose the checkpoint
    # best: the epoch of lowest validation loss | last: no validation part (it trains too), the
    # final epoch is tested; last was chosen by nested validation (bench/bonn_select.py): 12-18
    # validation segments are too few to pick an epoch (one confident error can pick epoch 2)
    checkpoint: str = "last"
    segment_s: float = 1.0  # STFT segment (one frame, one temporal token) in seconds
    overlap_s: float = 0.5  # overlap of consecutive STFT segments in seconds
    notch: bool = True  # drop the bins within notch_width Hz of the mains frequency and harmonics
    mains: float = 50.0  # mains frequency in Hz (Bonn: Germany, 50 Hz)
    notch_width: float = 3.0  # half-width of each notch in Hz
    # drop the bins above this frequency in Hz; 0 keeps up to Nyquist; -1: the data's band (Bonn
    # was band-passed at 0.53-40 Hz: 40, chosen by nested validation; a folder: Nyquist)
    fmax: float = -1.0
    # train on random time crops of this many seconds (18 s: 35 of 46 frames; chosen by nested
    # validation over 14 s and the whole segment); 0: the whole segment; -1: 18 s when segments
    # are longer than that (Bonn's 23.6 s), else the whole segment (a dataset of shorter ones)
    crop_s: float = -1.0
    test_crops: int = 5  # with crop_s: evenly spaced crops whose probabilities val/test average
    # train with a random gain of up to +-this many dB on each segment (every channel alike; the
    # log power shifted by one uniform draw): amplitude differs between amplifiers, electrodes
    # and sets, so the model should not lean on a recording's absolute microvolts alone; 0: none
    gain_db: float = 0.0
    model: str = "eeg_transformer"  # eeg_transformer
    # the model config's fields (channels, frames, freqs, num_classes come from the data): dim 32
    # so that a fold trains in well under a minute on a shared CPU; towers: without one given,
    # temporal and spectral for one channel (a spatial tower would read a single token), all
    # three for several
    model_args: dict[str, Any] = field(default_factory=lambda: {"dim": 32})
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=30,
            batch_size=32,
            lr=1e-3,
            weight_decay=1e-2,
            warmup_epochs=2.0,
            monitor="val/loss",
            mode="min",
        )
    )

    def check(self) -> None:
        if self.data != "bonn" and not Path(self.data).is_dir() and not self.table:
            raise NNLabError(
                f"--data must be bonn, a folder of class folders of segments or a .csv / .tsv "
                f"table of segments, got '{self.data}'"
            )
        for option, hz in (("--fs", self.fs), ("--rate", self.rate)):
            if 0 < hz < 16:  # (kHz, or a period in seconds, given for Hz)
                raise NNLabError(f"{option} is in Hz: {hz:g} Hz is below any EEG's rate")
        if not 0 <= self.gain_db <= 40:
            raise NNLabError(f"--gain-db must be in [0, 40] dB, got {self.gain_db}")
        if not (np.isfinite(self.fs) and np.isfinite(self.rate)) or self.fs < 0 or self.rate < 0:
            raise NNLabError(
                f"--fs and --rate must be >= 0 (0: the data's own rate), got {self.fs}, {self.rate}"
            )
        if self.column < -1 or (self.column >= 0 and (self.data == "bonn" or self.table)):
            raise NNLabError(
                f"--column picks a channel of a folder's segment files (0-based; -1: every "
                f"channel), got {self.column} with --data {self.data}"
            )
        if self.class_pattern and (self.data == "bonn" or self.table):
            raise NNLabError("--class-pattern reads the classes of a folder's file names")
        if self.group_block < 0 or (self.group_block and not self.group):
            raise NNLabError(
                f"--group-block must be >= 0 and needs --group (the segment number), got "
                f"{self.group_block}"
            )
        if self.folds < 2:
            raise NNLabError(f"--folds must be >= 2, got {self.folds}")
        if not -1 <= self.fold < self.folds:
            raise NNLabError(f"--fold must be -1 (every fold) or in 0..{self.folds - 1}")
        if self.fold_limit < 0:
            raise NNLabError(f"--fold-limit must be >= 0, got {self.fold_limit}")
        if self.checkpoint not in ("best", "last"):
            raise NNLabError(f"--checkpoint must be best or last, got '{self.checkpoint}'")
        if not 0.0 < self.val_fraction < 0.5:
            raise NNLabError(f"--val-fraction must be in (0, 0.5), got {self.val_fraction}")
        found = bonn_segments(self)  # the files are there and readable
        y, names = found.y, found.names
        seconds = found.x.shape[-1] / found.fs
        if not 0.0 <= self.overlap_s < self.segment_s <= seconds:
            raise NNLabError(
                f"need 0 <= --overlap-s < --segment-s <= {seconds:.3g} (one segment: "
                f"{found.x.shape[-1]} samples at {found.fs:g} Hz), got {self.overlap_s}, "
                f"{self.segment_s}"
            )
        frames = int((seconds - self.segment_s) / (self.segment_s - self.overlap_s) + 1e-9) + 1
        if frames < 4:  # 1-s clips (the Kaggle detection set) with 1-s STFT segments: one frame
            warnings.warn(
                f"segments of {seconds:.3g} s give {frames} STFT frame(s) of {self.segment_s:g} "
                f"s: the temporal tower reads {frames} token(s); shorter STFT segments give it "
                f"more (e.g. --segment-s {seconds / 4:.3g} --overlap-s {seconds / 8:.3g})",
                stacklevel=2,
            )
        if (
            self.crop_s != -1
            and self.crop_s
            and not self.segment_s <= self.crop_s <= seconds + 1e-6
        ):
            raise NNLabError(
                f"--crop-s must be 0 (no crops: the whole segment), -1 (18 s if the segments are "
                f"longer) or in [--segment-s, {seconds:.1f}] (a segment is {seconds:.1f} s), got "
                f"{self.crop_s}"
            )
        if self.test_crops < 1:
            raise NNLabError(f"--test-crops must be >= 1, got {self.test_crops}")
        if not (self.fmax >= 0 or self.fmax == -1) or self.mains <= 0 or self.notch_width < 0:
            raise NNLabError(
                "need --fmax >= 0 (or -1: the data's band), --mains > 0 and --notch-width >= 0"
            )
        if min(np.bincount(y, minlength=2)) < self.folds:
            raise NNLabError(
                f"{self.folds} folds need at least {self.folds} segments of each class; "
                f"{self.pair} has {np.bincount(y, minlength=2).tolist()}"
            )
        counts = np.bincount(y, minlength=2)
        if counts.max() > 3 * counts.min() and self.train.sampler == "shuffle":
            warnings.warn(  # 20 interictal segments to 1 preictal: the Kaggle prediction sets
                f"{self.pair}: {counts[0]} segments against {counts[1]}; a model can score "
                f"{counts.max() / counts.sum():.0%} by naming one class: --sampler balanced draws "
                "both equally often (and read the sensitivity, specificity and AUC)",
                stacklevel=2,
            )
        groups = segment_groups(names, self.group, self.group_block)
        if groups is not None:
            per_class = [len(set(groups[y == c])) for c in (0, 1)]
            if min(per_class) < self.folds:
                raise NNLabError(
                    f"{self.folds} folds need at least {self.folds} groups (--group) of each "
                    f"class; {self.pair} has {per_class}"
                )
        memory_check(found, self)
        try:  # the model's own checks (towers, heads dividing dim, ...) on a stand-in shape
            build_model(self.model, model_config(self.model, **self.model_args))
        except ValueError as e:
            raise NNLabError(f"--model-arg: {e}") from None

    @property
    def table(self) -> bool:
        """--data names one table file of segments (`load_segment_table`)."""
        from nnlab.data.segments import TABLE_SUFFIXES

        path = Path(self.data)
        return path.suffix.lower() in TABLE_SUFFIXES and path.is_file()

    def spectral(self, seconds: float = SEGMENT_S):
        """The front end's settings (a whole segment of `seconds` is one window)."""
        from nnlab.signal.spectral import SpectralConfig

        return SpectralConfig(
            window_s=seconds,
            hop_s=seconds,
            segment_s=self.segment_s,
            overlap_s=self.overlap_s,
            notch=self.notch,
            mains=self.mains,
            notch_width=self.notch_width,
            fmax=self.top_frequency(),
        )

    def top_frequency(self) -> float | None:
        """The highest frequency kept (None: up to Nyquist): --fmax, or with -1 the data's band,
        40 Hz for Bonn (recorded band-passed at 0.53-40 Hz)."""
        if self.fmax == -1:
            return BONN_BAND_HZ if self.data == "bonn" else None
        return self.fmax or None

    def input_spectral(self, fs: float, frames: int, seconds: float = SEGMENT_S):
        """The front end of the model's input: the whole segment (of `seconds`), or with crops a
        window of the crop's L frames, so that `nnlab seizure detect` slides windows the model
        can read."""
        spec = self.spectral(seconds)
        L = self.crop_frames(frames)
        if L == frames:
            return spec
        step = spec.nperseg(fs) - spec.noverlap(fs)
        window_s = ((L - 1) * step + spec.nperseg(fs)) / fs  # (L - 1) hops and one segment
        return dataclasses.replace(spec, window_s=window_s, hop_s=window_s)

    def crop_frames(self, frames: int) -> int:
        """L: the STFT frames of a crop_s-second crop (all `frames` without crops; with -1, of an
        18-s crop when the segment of `frames` frames is longer than 18 s)."""
        hop = self.segment_s - self.overlap_s
        crop_s = self.crop_s
        if crop_s == -1:
            seconds = (frames - 1) * hop + self.segment_s
            crop_s = DEFAULT_CROP_S if seconds > DEFAULT_CROP_S else 0.0
        if not crop_s:
            return frames
        return min(frames, int((crop_s - self.segment_s) / hop + 1e-9) + 1)

    def fold_numbers(self) -> list[int]:
        """The folds a cross-validation run trains."""
        if self.fold >= 0:
            return [self.fold]
        return list(range(min(self.folds, self.fold_limit or self.folds)))


# a folder set whose samples would take more than this share of the machine's memory is put on
# disk, memory-mapped, with its spectrograms ($NNLAB_CACHE/segments: `load_segment_folders`)
ON_DISK_SHARE = 0.125


def memory_limit() -> int:
    """The bytes of samples above which a folder set goes on disk (`ON_DISK_SHARE`)."""
    have = physical_memory()
    return int(ON_DISK_SHARE * have) if have else 4 * 2**30


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the system says (None elsewhere)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_check(found: SegmentSet, cfg: BonnConfig) -> None:
    """A warning when the segments and their spectrograms (a fold's: all of them, and the
    held-out part's normalised copy made in float64, about 1.3 times in all) would fill more than
    80% of this machine's memory: 10-minute segments of 16 channels at 400 Hz, say, with no
    --rate."""
    have = physical_memory()
    if not have or not len(found.x) or isinstance(found.x, np.memmap):
        return  # a set on disk (`ON_DISK_SHARE`) is read as it is used
    with warnings.catch_warnings():  # said once, for all the segments, when they are read
        warnings.simplefilter("ignore")
        one, _ = spectrograms(found.x[:1], found.fs, cfg)  # (1, C, T, F): one segment's
    spectra = int(1.3 * one.nbytes * len(found.x))
    need = found.x.nbytes + spectra
    if need > 0.8 * have:
        gib = 2**30
        warnings.warn(
            f"{len(found.x)} segments need about {need / gib:.1f} GiB of memory (their samples "
            f"{found.x.nbytes / gib:.1f}, their spectrograms {spectra / gib:.1f}), and this "
            f"machine has {have / gib:.1f} GiB: a lower --rate (fewer samples) or --fmax (fewer "
            "bins) makes them smaller",
            stacklevel=3,
        )


# ---- data ----------------------------------------------------------------------------------------
def dataset_name(cfg: BonnConfig) -> str:
    """'bonn', or a folder dataset's folder name (run directories, titles)."""
    if cfg.data == "bonn":
        return "bonn"
    path = Path(cfg.data).resolve()
    return (path.stem if cfg.table else path.name).replace(" ", "_")


def dataset_title(cfg: BonnConfig) -> str:
    return "Bonn" if cfg.data == "bonn" else f"segments of {Path(cfg.data).name}"


def fold_parts(
    y: np.ndarray,
    folds: int,
    fold: int,
    seed: int,
    val_fraction: float,
    groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """{"train", "val", "test"} indices of fold `fold` of stratified k-fold on labels y (N,):
    test = test fold `fold` of `kfold(N, folds, seed, labels=y)`; val = a stratified
    `val_fraction` of the remaining folds; train = the rest. With `groups` (N,), no group is
    split between the parts (stratified group k-fold; the validation part by whole groups)."""
    rest, test = kfold(len(y), folds, seed, labels=y, groups=groups)[fold]
    if groups is None:
        inner = split_by_item(
            len(rest),
            (1 - val_fraction, val_fraction),
            seed,
            labels=y[rest],
            parts=("train", "val"),
        )
    else:
        inner = split_by_group(
            groups[rest], (1 - val_fraction, val_fraction), seed, parts=("train", "val")
        )
    return {"train": rest[inner["train"]], "val": rest[inner["val"]], "test": np.sort(test)}


def segment_groups(names: list[str], pattern: str, block: int = 0) -> np.ndarray | None:
    """The group of each segment: the first match of `pattern` in its name (its first
    parenthesised group, if it has one); None without a pattern. With `block` > 0 the match is a
    number n counted from 1 and the group is the class (the name before its '/') and
    (n - 1) // block: runs of `block` consecutive segments of a class, such as the hours of six
    10-minute segments of the Kaggle and Melbourne sets. A name it does not match is an error
    naming it."""
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise NNLabError(f"--group '{pattern}' is not a regular expression ({e})") from None
    out = []
    for name in names:
        m = rx.search(name)
        if m is None:
            raise NNLabError(f"--group '{pattern}' does not match the segment name '{name}'")
        found = m.group(1) if rx.groups else m.group(0)
        if block > 0:
            if not found.isdigit() or int(found) < 1:
                raise NNLabError(
                    f"--group-block needs a --group match that is a number from 1; "
                    f"'{pattern}' gives '{found}' in '{name}'"
                )
            found = f"{name.split('/')[0]}/{(int(found) - 1) // block}"
        out.append(found)
    return np.asarray(out)


def without_validation(parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{"train", "test"}: the validation part trains too. With no validation data the loop counts
    every epoch as the best, so the final epoch is tested."""
    return {"train": np.sort(np.concatenate([parts["train"], parts["val"]])), "test": parts["test"]}


def bonn_segments(cfg: BonnConfig) -> SegmentSet:
    """The segments of cfg.pair (x (N, C, L) float32, y (N,) int64, names, fs, channels): Bonn's
    sets ('AD-E', C = 1) or a folder's classes ('interictal-ictal'), at cfg.rate where given.
    Kept between calls while the data's location and folders are unchanged: every fold of a
    cross-validation reads the same files."""
    if cfg.data == "bonn":
        where = os.environ.get("NNLAB_DATA", "")
    elif cfg.table:
        root = Path(cfg.data).resolve()
        where = (str(root), root.stat().st_mtime_ns, root.stat().st_size)
    else:
        root = Path(cfg.data).resolve()
        where = (str(root), *(d.stat().st_mtime_ns for d in [root, *root.iterdir()] if d.is_dir()))
    return _segments(
        cfg.data, cfg.pair, cfg.fs, cfg.column, cfg.rate, cfg.class_pattern, where, memory_limit()
    )


@functools.lru_cache(maxsize=2)
def _segments(
    data: str,
    pair: str,
    fs: float,
    column: int,
    rate: float,
    class_pattern: str,
    where,
    limit: int,
) -> SegmentSet:
    from nnlab.data.eeg import resample
    from nnlab.data.registry import cache_dir

    if data == "bonn":
        from nnlab.data.bonn import load_bonn, pair_labels

        negative, positive = pair_labels(pair)
        bonn = load_bonn(negative + positive)
        x, y, names = bonn.binary(pair)
        found = SegmentSet(x[:, None], y, names, bonn.fs, 0)
    elif Path(data).is_file():
        found = load_segment_table(data, pair, fs)
    else:
        with counting_bar(f"reading {Path(data).name}") as update:
            found = load_segment_folders(
                data,
                pair,
                fs,
                column,
                rate,
                class_pattern,
                update,
                store=cache_dir() / "segments",
                memory_limit=limit,
            )
    if rate > 0 and found.fs != rate:  # Bonn's and a table's segments: resampled here
        found = dataclasses.replace(found, x=resample(found.x, found.fs, rate)[0], fs=rate)
    flat = found.flat
    if flat is None:
        flat = [n for n, x in zip(found.names, found.x) if (x.max(axis=-1) == x.min(axis=-1)).all()]
    if flat:  # a recorder's dropout (the Melbourne set has such files): no EEG to learn from
        warnings.warn(
            f"{data}: {len(flat)} segment(s) are flat in every channel, no signal at all "
            f"({', '.join(flat[:3])}{', ...' if len(flat) > 3 else ''}); they are kept with "
            "their class: remove them if they are dropouts",
            stacklevel=2,
        )
    return found


# samples per STFT chunk of `spectrograms`: the transform's complex and float64 intermediates
# are several times their input, so a large set is transformed a few segments at a time
SPECTRA_CHUNK = 2**21
# segments (evenly spaced) that the line-noise and amplitude checks read: their medians settle
# long before, and a large set is not copied (in float64) to be checked; fewer where they would
# hold more than CHECKED_SAMPLES samples (at least one)
CHECKED_SEGMENTS = 64
CHECKED_SAMPLES = 2**22


@contextlib.contextmanager
def counting_bar(title: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while the block runs (none in logs and pipes), and its update:
    update(done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = Console(stderr=True)
    with Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(title, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def spectrograms(
    x: np.ndarray,
    fs: float,
    cfg: BonnConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Segments (N, C, L) -> (log power (N, C, T, F) float32 before normalisation, freqs (F,)),
    in memory (`spectrogram_chunks`; `progress(segments done, segments)` after each chunk)."""
    out, done = None, 0
    for logp in spectrogram_chunks(x, fs, cfg):
        if out is None:
            out = np.empty((len(x), *logp.shape[1:]), dtype=np.float32)
        out[done : done + len(logp)] = logp
        done += len(logp)
        if progress is not None:
            progress(done, len(x))
    if out is None:  # no segments: no frames to size them by
        raise NNLabError(f"{cfg.data} {cfg.pair}: no segments")
    return out, cfg.spectral().freqs(fs)  # (N, C, T, F), (F,)


def spectrogram_chunks(x: np.ndarray, fs: float, cfg: BonnConfig) -> Iterator[np.ndarray]:
    """Log power (n, C, T, F) float32 of segments (N, C, L), a few segments at a
    time (`SPECTRA_CHUNK` samples), in order. Line noise at another frequency than --mains, and
    amplitudes that are not microvolts', are warned about first (`mains_mismatch`,
    `implausible_amplitude`: the medians over `CHECKED_SEGMENTS` evenly spaced segments, fewer
    where they are long)."""
    from nnlab.signal.spectral import implausible_amplitude, log_spectrogram, mains_mismatch

    spec = cfg.spectral()
    where = f"{cfg.data} {cfg.pair}"
    N, C, L = x.shape
    n = max(1, min(N, CHECKED_SEGMENTS, CHECKED_SAMPLES // max(1, C * L)))
    checked = np.unique(np.linspace(0, N - 1, n).round().astype(int))
    sample = np.asarray(x[checked]).reshape(-1, L)  # every channel of each on its own
    for why in (mains_mismatch(sample, fs, spec, where), implausible_amplitude(sample, where)):
        if why:
            warnings.warn(why, stacklevel=3)
    del sample
    step = max(1, SPECTRA_CHUNK // max(1, C * L))
    for i in range(0, N, step):
        logp, _ = log_spectrogram(
            np.asarray(x[i : i + step]).reshape(-1, L),
            fs,
            spec.nperseg(fs),
            spec.noverlap(fs),
            notch=spec.notch,
            mains=spec.mains,
            notch_width=spec.notch_width,
            fmax=spec.fmax,
            eps=spec.eps,
        )  # (n C, T, F)
        yield logp.reshape(-1, C, *logp.shape[1:])


_LAST_SPECTROGRAMS: list = []  # [(segments, front-end settings, logp, freqs)]: the last made


def fold_spectrograms(found: SegmentSet, cfg: BonnConfig) -> tuple[np.ndarray, np.ndarray]:
    """`spectrograms` of the segments, made once for all the folds of a run: the same segments
    (the very object `bonn_segments` keeps) with the same front end give the array made last,
    which the folds only read."""
    settings = (cfg.data, cfg.pair, cfg.segment_s, cfg.overlap_s, cfg.notch, cfg.mains)
    settings += (cfg.notch_width, cfg.top_frequency())
    if _LAST_SPECTROGRAMS and _LAST_SPECTROGRAMS[0][0] is found:
        if _LAST_SPECTROGRAMS[0][1] == settings:
            return _LAST_SPECTROGRAMS[0][2], _LAST_SPECTROGRAMS[0][3]
    _LAST_SPECTROGRAMS.clear()  # the old array goes before the new one is made
    if isinstance(found.x, np.memmap):  # a set on disk: its spectrograms beside it
        logp, freqs = stored_spectrograms(found, cfg, settings)
    else:
        with counting_bar("spectrograms") as update:
            logp, freqs = spectrograms(found.x, found.fs, cfg, progress=update)
        logp.setflags(write=False)  # shared by the folds: read only
    _LAST_SPECTROGRAMS.append((found, settings, logp, freqs))
    return logp, freqs


def stored_spectrograms(found: SegmentSet, cfg: BonnConfig, settings: tuple):
    """`spectrograms` of a set on disk (its samples a memory map), into a .npy beside the
    samples, named by a key of the samples' file and the front end's `settings`: made a few
    segments at a time, atomically, once for every run and process that asks (its warnings
    stored with it and given again); read back as a read-only memory map."""
    import hashlib
    import json

    from nnlab.data.segments import disk_check
    from nnlab.io import atomic_npy, open_stored

    base = Path(found.x.filename)
    key = hashlib.sha256(json.dumps([base.name, settings]).encode()).hexdigest()[:16]
    npy = base.with_name(f"{base.stem}-spectra-{key}.npy")
    stored = open_stored(npy, key)
    if stored is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one, _ = spectrograms(found.x[:1], found.fs, cfg)  # (1, C, T, F): one segment's
        shape = (len(found.x), *one.shape[1:])
        disk_check(npy.parent, one.nbytes * len(found.x), "the spectrograms")
        done = 0
        with atomic_npy(npy, shape) as (write, meta), counting_bar("spectrograms") as update:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # kept with the array, given below
                for logp in spectrogram_chunks(found.x, found.fs, cfg):
                    write(logp)
                    done += len(logp)
                    update(done, len(found.x))
            freqs = cfg.spectral().freqs(found.fs).tolist()
            meta.update(key=key, shape=list(shape), freqs=freqs)
            meta.update(warnings=[str(w.message) for w in caught])
        stored = open_stored(npy, key)
    logp, meta = stored
    for message in meta["warnings"]:
        warnings.warn(message, stacklevel=3)
    return logp, np.asarray(meta["freqs"], dtype=np.float64)


def crop(x: torch.Tensor, length: int, starts: torch.Tensor) -> torch.Tensor:
    """x: (B, C, T, F), starts: (B,) first frames -> (B, C, length, F), row b = frames
    starts[b] .. starts[b] + length - 1 of x[b]."""
    B, C, T, F_ = x.shape
    t = starts[:, None] + torch.arange(length, device=x.device)  # (B, L)
    return x.gather(2, t[:, None, :, None].expand(B, C, length, F_))  # (B, C, L, F)


def crop_starts(frames: int, length: int, k: int) -> list[int]:
    """s_k: the first frames of k crops of `length` frames spread evenly over `frames` (the first
    crop at the start, the last at the end; one crop: the centred one)."""
    if k == 1:
        return [(frames - length) // 2]
    return [round(i * (frames - length) / (k - 1)) for i in range(k)]


def averaged_prediction(
    model: nn.Module, x: torch.Tensor, length: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, C, T, F) -> (class probabilities (B, K_classes), gate weights (B, M)), each the mean
    over the k evenly spaced crops of `length` frames."""
    B, _, T, _ = x.shape
    probs, gates = [], []
    for s in crop_starts(T, length, k):
        starts = torch.full((B,), s, dtype=torch.long, device=x.device)
        logits, g = model(crop(x, length, starts), return_gates=True)
        probs.append(torch.softmax(logits.float(), dim=1))
        gates.append(g.float())
    return torch.stack(probs).mean(0), torch.stack(gates).mean(0)


# ---- one fold --------------------------------------------------------------------------------
EVAL_BATCH_VALUES = 2**25  # values of whole segments in one evaluation batch (128 MB)


class NormalisedSegments(Dataset):
    """Segments `index` of the log spectrograms (N, C, T, F), normalised as they are read (one
    batch at a time, `__getitems__`, `batches`): a fold's parts are not copied, so a large set of
    many-channel segments (a memory map, on disk) is held once, and a batch at a time."""

    def __init__(
        self,
        logp: np.ndarray,
        y: np.ndarray,
        index: np.ndarray,
        norm,
        crop: int = 0,
        gain_db: float = 0.0,
    ) -> None:
        self.logp, self.index, self.norm = logp, np.asarray(index, np.int64), norm
        self.labels = torch.from_numpy(np.asarray(y)[self.index])
        self.crop = crop if 0 < crop < logp.shape[2] else 0
        # a gain of g dB scales power by 10^(g / 10): the natural log power shifts by g ln10 / 10
        self.log_gain = gain_db * np.log(10.0) / 10.0

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, T, F) of one segment."""
        return tuple(self.logp.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, items: list[int]):
        """With `crop`, a random crop of that many frames of each segment (the training part:
        only the crop is read and normalised), its first frame drawn from torch's generator,
        as the training loop seeds it for the epoch; with `gain_db`, then a random gain of each
        segment from the same generator."""
        if self.crop:
            T = self.logp.shape[2]
            starts = torch.randint(0, T - self.crop + 1, (len(items),)).tolist()
            x = np.stack(
                [self.logp[self.index[i], :, s : s + self.crop] for i, s in zip(items, starts)]
            )  # (B, C, crop, F)
        else:
            x = self.logp[self.index[items]]  # (B, C, T, F)
        if self.log_gain:
            shift = (2 * torch.rand(len(items), dtype=torch.float64) - 1) * self.log_gain  # (B,)
            x = (x + shift.numpy()[:, None, None, None]).astype(np.float32)
        x = torch.from_numpy(self.norm(x))
        y = self.labels[items]
        return [(x[j], y[j]) for j in range(len(items))]

    def batches(self, size: int) -> Iterator[torch.Tensor]:
        """The segments in order, normalised, `size` at a time: (B, C, T, F) each."""
        for i in range(0, len(self.index), size):
            yield torch.from_numpy(self.norm(self.logp[self.index[i : i + size]]))


class BonnTask(Task):
    """One fold: train on the training folds (less the validation part with checkpoint "best"),
    test on test fold k."""

    name, config_class, models = "bonn", BonnConfig, ("eeg_transformer",)
    noun = "Bonn fold"
    distributed = False  # a few hundred segments: one process
    summary_keys = (
        "fold",
        "parameters",
        "epochs",
        "best_epoch",
        "test/acc",
        "test/sensitivity",
        "test/specificity",
        "train_time_s",
    )

    def check(self, resume: bool = False) -> None:
        super().check(resume)
        if self.cfg.fold < 0:
            raise NNLabError("a Bonn fold run needs --fold >= 0")

    def datasets(self, run: RunDir, resume: bool) -> dict[str, Dataset]:
        from nnlab.signal.spectral import Normalizer

        cfg = self.cfg
        found = bonn_segments(cfg)
        x, y, names, fs = found.x, found.y, found.names, found.fs
        path = run.path / "split.json"
        if resume:
            parts = load_split(path, names)
        else:
            parts = self.split(y, names)
            how = "stratified group k-fold (--group)" if cfg.group else "stratified k-fold"
            save_split(
                path,
                parts,
                names,
                method=f"{how}, validation carved from the training folds"
                if "val" in parts
                else f"{how}, every training fold trains (final epoch tested)",
                group=cfg.group,
                pair=cfg.pair,
                k=cfg.folds,
                fold=cfg.fold,
                seed=cfg.train.seed,
                val_fraction=cfg.val_fraction,
            )
        logp, freqs = fold_spectrograms(found, cfg)
        # statistics of the training part only: the test fold must not shape the input; fitted
        # in chunks of at most 2^24 values (in float64), so a large set is never copied whole
        train = parts["train"]
        step = max(1, 2**24 // int(np.prod(logp.shape[1:])))
        norm = Normalizer(per="frequency").fit(
            logp[train[i : i + step]] for i in range(0, len(train), step)
        )
        atomic_write_json(
            run.path / "normalizer.json",
            {
                **norm.to_dict(),
                "freqs": freqs.tolist(),
                "fs": fs,
                # what the model reads (nnlab seizure detect's windows): with crops, one crop
                "spectral": cfg.input_spectral(fs, logp.shape[2], x.shape[-1] / fs).to_dict(),
                # a model of several channels reads them by name (none: one channel, which
                # `detect` runs on every channel of a recording)
                "channels": found.channels if x.shape[1] > 1 else None,
            },
        )
        self.names, self.y, self.parts, self.freqs = names, y, parts, freqs
        crop = cfg.crop_frames(logp.shape[2])  # the training part read as random crops
        return {
            k: NormalisedSegments(logp, y, idx, norm, crop, cfg.gain_db)
            if k == "train"
            else NormalisedSegments(logp, y, idx, norm)
            for k, idx in parts.items()
        }

    def split(self, y: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """{"train", "val", "test"} indices of this fold (bench/bonn_select.py narrows it to an
        inner fold of an outer training part); {"train", "test"} with checkpoint "last". With
        --group, by whole groups of the segments' `names`."""
        cfg = self.cfg
        groups = segment_groups(names, cfg.group, cfg.group_block) if names is not None else None
        parts = fold_parts(y, cfg.folds, cfg.fold, cfg.train.seed, cfg.val_fraction, groups)
        return parts if cfg.checkpoint == "best" else without_validation(parts)

    def model_config(self, train: NormalisedSegments):
        C, T, F_ = train.shape
        L = self.cfg.crop_frames(T)
        args = dict(self.cfg.model_args)
        if C == 1:  # one token: nothing for a spatial tower to attend over
            args.setdefault("towers", ("temporal", "spectral"))
        args.update(channels=C, frames=L, freqs=F_, num_classes=2)
        return model_config(self.cfg.model, **args)

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, y = batch  # (B, C, T, F), (B,): whole segments, or the training part's crops
        T = x.shape[2]
        L = self.cfg.crop_frames(T)
        if L == T:  # whole segments without crops, or the training part's random crops
            logits = model(x)  # (B, 2)
            prob = torch.softmax(logits.float(), dim=1)[:, 1]  # P(seizure), what the metrics read
            return StepOutput({"loss": F.cross_entropy(logits, y)}, prob, y)
        if model.training:
            raise RuntimeError("training batches are crops (NormalisedSegments with crop)")
        probs, _ = averaged_prediction(model, x, L, self.k_crops(T))  # (B, 2)
        loss = F.nll_loss(probs.clamp_min(1e-12).log(), y)
        return StepOutput({"loss": loss}, probs[:, 1], y)

    def metrics(self) -> torchmetrics.MetricCollection:
        return binary_metrics()  # sensitivity: of the seizure class

    def sample_labels(self, data: NormalisedSegments) -> torch.Tensor:
        return data.labels

    def eval_batch_size(self, data: NormalisedSegments) -> int:
        """Whole segments at a time to evaluate: the training batch size, or fewer where their
        values would pass `EVAL_BATCH_VALUES` (10-minute segments of 16 channels: 9)."""
        return max(1, min(self.cfg.train.batch_size, EVAL_BATCH_VALUES // int(np.prod(data.shape))))

    def predict(
        self, model: nn.Module, data: NormalisedSegments, device: torch.device | str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(class) (N, 2), gate weights (N, towers)) of the segments of `data`, each the mean
        over the test crops, a batch at a time (`eval_batch_size`)."""
        _, T, _ = data.shape
        L, k = self.cfg.crop_frames(T), self.k_crops(T)
        probs, gates = [], []
        with torch.no_grad():
            for x in data.batches(self.eval_batch_size(data)):
                p, g = averaged_prediction(model, x.to(device), L, k)
                probs.append(p.cpu().numpy())
                gates.append(g.cpu().numpy())
        return np.concatenate(probs), np.concatenate(gates)

    def finish(self, trainer, data, test) -> dict[str, Any]:
        model, y = trainer.module.eval(), data["test"].labels.numpy()
        _, T, F_ = data["test"].shape
        probs, gates = self.predict(model, data["test"], trainer.device)
        prob = probs[:, 1]
        towers = list(model.cfg.towers)
        cases = [
            {
                "name": self.names[i],
                "true": int(t),
                "prob": float(p),
                "gates": dict(zip(towers, map(float, g))),
            }
            for i, t, p, g in zip(self.parts["test"], y, prob, gates)
        ]
        atomic_write_json(trainer.run.path / "test_predictions.json", cases)
        return {
            "pair": self.cfg.pair,
            "fold": self.cfg.fold,
            "towers": towers,
            "test_items": len(y),
            "frames": int(T),
            "crop_frames": self.cfg.crop_frames(T),
            "freqs": int(F_),
            "gates_by_class": gates_by_class(gates, y, towers, class_names(self.cfg)),
        }

    @classmethod
    def config_from_run(cls, run: RunDir) -> BonnConfig:
        return recipe_of_older_runs(run, load_config(run, cls))

    def k_crops(self, T: int) -> int:
        """Crops averaged at test time on segments of T frames: one (the whole segment) without
        crops; with crops, test_crops, or more where the T frames need more crops of L to cover
        them (a 10-min segment: 35 crops of 18 s)."""
        L = self.cfg.crop_frames(T)
        return max(self.cfg.test_crops, -(-T // L)) if L < T else 1

    def run_name(self) -> str:
        return f"{dataset_name(self.cfg)}-{self.cfg.pair}-fold{self.cfg.fold}"

    def title(self) -> str:
        return f"{self.cfg.model}, {dataset_title(self.cfg)} {self.cfg.pair}, fold {self.cfg.fold}"


# what runs saved before these fields existed were made with (not today's defaults)
BEFORE_CROPS = {"crop_s": 0.0, "checkpoint": "best"}


def recipe_of_older_runs(run: RunDir, cfg: BonnConfig) -> BonnConfig:
    """cfg, with the fields a run's config.json lacks set to what that older run used: a resumed
    run of whole segments and the best checkpoint goes on with them."""
    saved = run.config()
    return dataclasses.replace(cfg, **{k: v for k, v in BEFORE_CROPS.items() if k not in saved})


def segments_line(found: SegmentSet, cfg: BonnConfig) -> str:
    """What was read, in one line: so many segments of each class, their channels, rate and
    length (the check of a class pattern, a channel set or a rate), and where a set on disk
    lies."""
    names = class_names(cfg)
    counts = np.bincount(found.y, minlength=2)
    N, C, L = found.x.shape
    channels = f" ({', '.join(found.channels)})" if found.channels and C <= 8 else ""
    where = (
        f"; on disk in {Path(found.x.filename).parent}" if isinstance(found.x, np.memmap) else ""
    )
    return (
        f"{dataset_title(cfg)}: {N} segments ({counts[0]} {names[0]}, {counts[1]} {names[1]}) "
        f"of {C} channel{'s' if C > 1 else ''}{channels}, {L / found.fs:.3g} s at "
        f"{found.fs:g} Hz{where}"
    )


def class_names(cfg: BonnConfig) -> tuple[str, str]:
    """The names of class 0 and class 1: Bonn's and a table's "non-seizure" and "seizure"; a
    folder's, its pair's two sides ('interictal-preictal': interictal, preictal)."""
    if cfg.data == "bonn" or cfg.table or cfg.pair.count("-") != 1:
        return CLASS_NAMES
    negative, positive = cfg.pair.split("-")
    return negative, positive


def gates_by_class(
    gates: np.ndarray, y: np.ndarray, towers: list[str], names: tuple[str, str] = CLASS_NAMES
) -> dict[str, Any]:
    """Mean gate weight of each tower over the segments of each true class (and their count),
    by the classes' `names`."""
    return {
        names[c]: {
            "segments": int((y == c).sum()),
            **{
                t: float(gates[y == c, i].mean()) if (y == c).any() else None
                for i, t in enumerate(towers)
            },
        }
        for c in (0, 1)
    }


# ---- cross-validation: the parent run --------------------------------------------------------
METRICS = ("acc", "sensitivity", "specificity", "auc")


def run_bonn_cv(
    cfg: BonnConfig, run: RunDir, console: Console | None = None, resume: bool = False
) -> dict[str, Any]:
    """Train one child run per fold (`fold00`, ...; on --resume a finished fold is kept), then the
    parent summary: per-fold rows, mean and sd over folds, pooled counts over all test segments,
    gate weights per class; a figure of both."""

    t0 = time.perf_counter()
    if not resume:
        run.save_config({"task": BonnCV.name, **to_dict(cfg)})
    found = bonn_segments(cfg) if console is not None or resume else None
    if console is not None:
        console.print(segments_line(found, cfg), highlight=False)
    if resume:  # the folds split before, on these segments: else two splits would be mixed
        for k in cfg.fold_numbers():
            split = run.path / f"fold{k:02d}" / "split.json"
            if split.is_file():
                try:
                    load_split(split, found.names)
                except NNLabError as e:
                    raise NNLabError(f"{e}: start a new run (another --out)") from None
    jobs = {
        f"fold{k:02d}": lambda child, k=k: run_task(
            BonnTask(dataclasses.replace(cfg, fold=k), console), child
        )
        for k in cfg.fold_numbers()
    }
    children = run_children_resumable(run, jobs, console, resume)
    rows, cases = [], []
    for child, s in children.values():
        rows.append(
            {
                "fold": s["fold"],
                "test segments": s["test_items"],
                **{m: s[f"test/{m}"] for m in METRICS},
                "best epoch": s["best_epoch"],
                "train s": s["train_time_s"],
            }
        )
        cases += read_predictions(child)
    towers = children[next(iter(children))][1]["towers"]
    y = np.array([c["true"] for c in cases])
    pred = np.array([c["prob"] > 0.5 for c in cases])
    gates = np.array([[c["gates"][t] for t in towers] for c in cases])
    summary = {
        "task": BonnCV.name,
        "data": dataset_title(cfg),
        "pair": cfg.pair,
        "model": cfg.model,
        "towers": towers,
        "folds": cfg.folds,
        "folds_run": len(rows),
        **{m: float(np.mean([r[m] for r in rows])) for m in METRICS},
        **{f"{m}_sd": float(np.std([r[m] for r in rows])) for m in METRICS},
        "pooled": {
            "segments": len(y),
            "errors": int((pred != y).sum()),
            "false_negatives": int(((pred == 0) & (y == 1)).sum()),
            "false_positives": int(((pred == 1) & (y == 0)).sum()),
        },
        "classes": list(class_names(cfg)),
        "gates_by_class": gates_by_class(gates, y, towers, class_names(cfg)),
        "rows": rows,
        "wall_s": time.perf_counter() - t0,
    }
    run.save_summary(summary)
    run.save_figure(
        "folds_and_gates",
        cv_figure(summary, class_names(cfg), f"{cfg.model}, {dataset_title(cfg)} {cfg.pair}"),
    )
    return summary


def read_predictions(run: RunDir) -> list[dict[str, Any]]:
    import json

    return json.loads((run.path / "test_predictions.json").read_text())


class BonnCV(CrossValidation):
    """`nnlab seizure bonn` for the shared launcher: k-fold cross-validation, one child per fold."""

    name, noun, config_class, fold_task = "bonn-cv", "Bonn cross-validation", BonnConfig, BonnTask
    verb = "bonn"
    cross_validate = staticmethod(run_bonn_cv)

    def run_name(self) -> str:
        return f"{dataset_name(self.cfg)}-{self.cfg.pair}"

    @classmethod
    def config_from_run(cls, run: RunDir) -> BonnConfig:
        return recipe_of_older_runs(run, load_config(run, cls))
