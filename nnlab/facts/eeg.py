"""EEG preprocessing and alarm facts: the STFT power the models read is Welch's PSD frame by frame,
the k-of-n rule's firing probability is a binomial tail, the notch removes line noise without
touching the other bins, a detector's latency is set by its windows and its rule, and a bipolar
channel is the difference of two referential ones."""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.stats

from nnlab.facts import fact
from nnlab.signal.alarms import k_of_n_alarms, k_of_n_counts
from nnlab.signal.spectral import log_spectrogram

FS, NPERSEG, NOVERLAP = 256.0, 256, 128  # 1-s Hann segments with half overlap: 1-Hz bins


def _background(seconds: float, seed: int) -> np.ndarray:
    """Brown-ish EEG-like noise: an AR(1) process x[t] = 0.95 x[t-1] + e[t] (a 1/f^2-like slope)."""
    e = np.random.default_rng(seed).standard_normal(int(seconds * FS))
    return scipy.signal.lfilter([1.0], [1.0, -0.95], e)


@fact(
    "stft-power-mean-is-welch",
    "the mean over frames of the density-scaled STFT power |X(t, f)|^2 (Hann, the same segments "
    "and overlap), doubled for the one-sided spectrum, is Welch's PSD at every 0 < f < fs/2",
    topic="eeg",
    tol=1e-5,
)
def stft_power_mean_is_welch() -> float:
    """Max relative difference over the bins 0 < f < fs/2 between 2 mean_t exp(P(t, f)), P the
    log_spectrogram (notch off, eps 0) of 60 s of AR(1) noise at 256 Hz, and
    scipy.signal.welch(scaling="density", detrend=False, average="mean"). Density scaling divides
    |sum_n x w e^{...}|^2 by fs sum_n w[n]^2 in both; Welch's default constant detrending would
    change the low bins, so it is off. tol 1e-5: log_spectrogram returns float32."""
    x = _background(60, seed=0)
    P, freqs = log_spectrogram(x, FS, NPERSEG, NOVERLAP, notch=False, eps=0.0)  # (T, F)
    f_w, S = scipy.signal.welch(
        x, FS, window="hann", nperseg=NPERSEG, noverlap=NOVERLAP, detrend=False, scaling="density"
    )
    inner = freqs < FS / 2  # Welch does not double the Nyquist bin
    ours = 2 * np.exp(P.astype(np.float64)).mean(axis=0)[inner]
    theirs = S[1:][inner]  # Welch's DC bin dropped, as log_spectrogram drops it
    assert np.array_equal(f_w[1:][inner], freqs[inner])
    return float(np.abs(ours / theirs - 1).max())


@fact(
    "k-of-n-binomial-tail",
    "with independent per-window positives of probability p, a window preceded by n - 1 others "
    "satisfies the k-of-n rule with probability P[Bin(n, p) >= k]",
    topic="eeg",
    tol=0.03,
)
def k_of_n_binomial_tail() -> float:
    """Relative difference between the Monte Carlo fraction of window positions i >= n - 1 with at
    least k = 24 positives among windows i - 29 .. i (one sequence of 4,000,000 windows, p = 0.7)
    and scipy.stats.binom.sf(k - 1, n, p) = 0.1595. Every position has exactly this probability,
    but neighbouring positions share n - 1 windows, so the average over positions is a much
    noisier estimate than as many independent draws: its relative standard error is 0.3-0.5%
    (measured over 8 seeds; 1% at 10^6 windows over 20); tol 0.03. This is the probability that
    a window satisfies the rule, not the alarm rate: a run of satisfying windows raises one alarm,
    and the refractory period suppresses more. At p = 0.5 the tail is 7e-4, one satisfying window in
    about 2 h of 5-s windows."""
    k, n, p = 24, 30, 0.7
    pred = np.random.default_rng(0).random(4_000_000) < p  # (W,)
    satisfied = k_of_n_counts(pred, n)[n - 1 :] >= k  # positions with n windows behind them
    tail = scipy.stats.binom.sf(k - 1, n, p)
    return float(abs(satisfied.mean() / tail - 1))


@fact(
    "notch-leaves-other-bins",
    "adding 60 Hz and 120 Hz line noise (on 1-Hz bins, Hann segments) changes no bin the notch "
    "keeps: every bin outside 57-63 and 117-123 Hz has the clean signal's log power",
    topic="eeg",
    tol=1e-5,
)
def notch_leaves_other_bins() -> float:
    """Max |P(x + line) - P(x)| over the kept bins and all frames, x 20 s of AR(1) noise at
    256 Hz, line = 50 sin(2 pi 60 t + 0.3) + 20 sin(2 pi 120 t + 1.1) (hundreds of times the
    background's power near 60 Hz), P = log_spectrogram with the default notch. A sinusoid on a
    bin k0 has, through a periodic Hann window, a spectrum that is zero except at k0 and k0 +- 1,
    so nothing reaches the kept bins; tol 1e-5 for the float32 log. Compare: without the notch the
    60 Hz bin's log power rises by ln(hundreds)."""
    x = _background(20, seed=1)
    t = np.arange(len(x)) / FS
    line = 50 * np.sin(2 * np.pi * 60 * t + 0.3) + 20 * np.sin(2 * np.pi * 120 * t + 1.1)
    clean, freqs = log_spectrogram(x, FS, NPERSEG, NOVERLAP)
    noisy, freqs_noisy = log_spectrogram(x + line, FS, NPERSEG, NOVERLAP)
    assert np.array_equal(freqs, freqs_noisy)
    return float(np.abs(noisy.astype(np.float64) - clean).max())


@fact(
    "detection-latency-k-of-n",
    "with windows of W seconds every h seconds, each positive exactly when more than half of it "
    "lies past a seizure's onset, the k-of-n rule's first alarm comes between W/2 + (k-1) h and "
    "W/2 + k h after the onset (18-s windows every 4.5 s, 3 of 4: 18 to 22.5 s)",
    topic="eeg",
    tol=1e-9,
)
def detection_latency_k_of_n() -> float:
    """Largest distance outside (W/2 + (k-1) h, W/2 + k h] of the latency of the first alarm
    (`k_of_n_alarms`, one per run, alarm at the window's end) over 2,000 onsets drawn uniformly,
    W = 18, h = 4.5, k = 3, n = 4 (a Bonn model's detection rule in `nnlab seizure detect`). The
    first positive window j0 ends within (W/2, W/2 + h] after the onset (windows end h apart);
    past a step the positives are consecutive, so the k-th of them, j0 + k - 1, raises the
    alarm, (k - 1) h later."""
    W, h, k, n = 18.0, 4.5, 3, 4
    starts = np.arange(0.0, 600.0, h)
    ends = starts + W
    lo, hi = W / 2 + (k - 1) * h, W / 2 + k * h
    worst = 0.0
    for onset in np.random.default_rng(0).uniform(100.0, 400.0, 2000):
        positive = ends - onset > W / 2
        first = k_of_n_alarms(positive, ends, k, n, refractory=0.0, episodes=True)[0]
        latency = ends[first] - onset
        worst = max(worst, lo - latency if latency <= lo else 0.0, latency - hi)
    return float(worst)


@fact(
    "bipolar-from-referential",
    "a bipolar channel is the difference of its two electrodes on any common reference: "
    "(A - R) - (B - R) = A - B, so a model trained on bipolar EEG reads a referential recording "
    "through derived channels (`nnlab.data.montage.derive_channels`)",
    topic="eeg",
    tol=1e-4,
)
def bipolar_from_referential() -> float:
    """Largest |derived - bipolar| (uV) over the four channels of the chain FP1-F7, F7-T7, T7-P7,
    P7-O1: electrode potentials drawn at random, put against a large noisy reference with 60-Hz
    hum (`referential_montage`), labelled as TUH files label them (old names T3, T5), then
    mixed back by `derive_channels`' matrix. Float32 samples of ~100 uV: rounding at 1e-5."""
    from nnlab.data.montage import derive_channels, referential_montage

    rng = np.random.default_rng(0)
    labels = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    potentials = 30 * rng.standard_normal((5, 2560))  # Fp1, F7, T7, P7, O1
    bipolar = potentials[:-1] - potentials[1:]
    t = np.arange(2560) / 256.0
    reference = 80 * rng.standard_normal(2560) + 30 * np.sin(2 * np.pi * 60 * t)
    E, names = referential_montage(bipolar, labels, reference)
    names = [n.replace("T7", "T3").replace("P7", "T5") for n in names]
    derivation, missing = derive_channels(labels, names[::-1])
    assert not missing
    x = E[[names.index(s) for s in derivation.sources]]
    return float(np.abs(derivation.apply(x) - bipolar).max())
