"""The classic hand-made EEG features, the baseline the transformer is measured against: log band
powers from Welch spectra, standard deviation, line length and zero-crossing rate, one row per
segment, vectorised over all segments (and channels) at once."""

from __future__ import annotations

import numpy as np
import scipy.signal

from nnlab.errors import NNLabError

# delta, theta, alpha, beta, gamma (Hz), each band [lo, hi)
BANDS: tuple[tuple[float, float], ...] = ((0.5, 4), (4, 8), (8, 13), (13, 30), (30, 60))
FEATURE_NAMES = (
    *(f"log_power_{lo:g}-{hi:g}Hz" for lo, hi in BANDS),
    "std",
    "line_length",
    "zero_crossing_rate",
)


def band_powers(
    x: np.ndarray,
    fs: float,
    bands: tuple[tuple[float, float], ...] = BANDS,
    segment_s: float = 2.0,
    eps: float = 1e-12,
) -> np.ndarray:
    """x (..., N) -> log band powers (..., B):

        log( sum_{lo <= f_k < hi} S(f_k) df + eps ),

    S the one-sided Welch PSD (scipy.signal.welch: Hann, segment_s-second segments, half overlap,
    mean detrending per segment), df = fs / nperseg. 2-s segments give 0.5-Hz bins, fine enough
    for the 0.5-4 Hz band; shorter signals use one segment of their whole length."""
    x = np.asarray(x, dtype=np.float64)
    N = x.shape[-1]
    nperseg = min(N, int(round(segment_s * fs)))
    if nperseg < 2:
        raise NNLabError(f"band_powers needs at least 2 samples per segment, got {nperseg}")
    f, S = scipy.signal.welch(x, fs=fs, nperseg=nperseg, axis=-1)  # S: (..., K)
    df = f[1] - f[0]
    masks = np.stack([(f >= lo) & (f < hi) for lo, hi in bands])  # (B, K)
    return np.log(S @ masks.T.astype(np.float64) * df + eps)  # (..., B)


def line_length(x: np.ndarray) -> np.ndarray:
    """x (..., N) -> (...,) mean absolute first difference, sum_n |x[n+1] - x[n]| / (N - 1)
    (divided by N - 1 so that segments of different lengths compare)."""
    return np.abs(np.diff(np.asarray(x, dtype=np.float64), axis=-1)).mean(axis=-1)


def zero_crossing_rate(x: np.ndarray) -> np.ndarray:
    """x (..., N) -> (...,) fraction of the N - 1 consecutive pairs of the mean-removed signal
    whose signs differ (an exact zero counts as positive)."""
    x = np.asarray(x, dtype=np.float64)
    positive = (x - x.mean(axis=-1, keepdims=True)) >= 0
    return (positive[..., 1:] != positive[..., :-1]).mean(axis=-1)


def baseline_features(x: np.ndarray, fs: float) -> np.ndarray:
    """x (..., N) segments -> (..., 8) features in FEATURE_NAMES order: five log band powers,
    standard deviation, line length, zero-crossing rate. x (S, N) gives one row per segment;
    multi-channel segments (S, C, N) give (S, C, 8), flattened by the caller if wanted."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] < 2:
        raise NNLabError(f"baseline_features needs segments (..., N >= 2), got {x.shape}")
    return np.concatenate(
        [
            band_powers(x, fs),
            x.std(axis=-1)[..., None],
            line_length(x)[..., None],
            zero_crossing_rate(x)[..., None],
        ],
        axis=-1,
    )  # (..., 8)
