"""EEG windows to log spectrograms: windowing, STFT with DC and line-noise bins removed,
training-set normalisation and minority-class oversampling by overlapping windows.

The front end of the seizure models (Yan et al., 2022): a recording x (C, N) at fs Hz is cut into
windows of `window_s` seconds (5 s), each channel of each window goes through a short-time Fourier
transform (Hann, `segment_s` segments with `overlap_s` overlap), and the log power

    P[w, c, t, f] = log(|X_{w,c}(t, f)|^2 + eps)

is kept on the frequencies that are not DC and not within `notch_width` Hz of the mains frequency or
one of its harmonics below Nyquist. Everything is vectorised over windows and channels at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.signal

from nnlab.errors import NNLabError


# ---- the spectrogram -------------------------------------------------------------------------
def kept_bins(
    fs: float,
    nperseg: int,
    *,
    notch: bool = True,
    mains: float = 60.0,
    notch_width: float = 3.0,
    fmax: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(boolean mask over the nperseg // 2 + 1 one-sided bins, their frequencies in Hz).

    DC is always dropped; with notch=True every bin f with |f - h * mains| <= notch_width for a
    harmonic h * mains < fs / 2 (h = 1, 2, ...) is dropped, so at 60 Hz mains and 1-Hz bins that is
    57-63 Hz and 117-123 Hz at fs = 256, 57-63 Hz only at fs = 200 (120 Hz is above Nyquist);
    fmax drops every bin above it."""
    if fs <= 0 or nperseg < 2:
        raise NNLabError(f"need fs > 0 and nperseg >= 2 (got fs={fs}, nperseg={nperseg})")
    freqs = np.fft.rfftfreq(nperseg, d=1.0 / fs)  # (F_all,)
    keep = freqs > 0
    if notch:
        if mains <= 0 or notch_width < 0:
            raise NNLabError(f"need mains > 0 and notch_width >= 0 (got {mains}, {notch_width})")
        harmonics = mains * np.arange(1, int(np.ceil(fs / 2 / mains)) + 1)
        harmonics = harmonics[harmonics < fs / 2]
        # the tolerance keeps the band edges (57 and 63 Hz) despite float rounding of the bins
        dist = np.abs(freqs[:, None] - harmonics[None, :])  # (F_all, H)
        keep &= ~(dist <= notch_width + 1e-9 * fs).any(axis=1)
    if fmax is not None:
        keep &= freqs <= fmax
    if not keep.any():
        raise NNLabError(f"no frequency bin left (fs={fs}, nperseg={nperseg}, fmax={fmax})")
    return keep, freqs[keep]


def log_spectrogram(
    x: np.ndarray,
    fs: float,
    nperseg: int,
    noverlap: int,
    *,
    notch: bool = True,
    mains: float = 60.0,
    notch_width: float = 3.0,
    fmax: float | None = None,
    eps: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray]:
    """x (..., N) -> (log power (..., T, F) float32, freqs (F,)).

    scipy.signal.stft with a periodic Hann window w, no boundary padding, and density scaling:
    X(t, f) = sum_n x[t H + n] w[n] e^{-2 pi i f n / fs} / sqrt(fs sum_n w[n]^2), H = nperseg -
    noverlap, T = 1 + (N - nperseg) // H frames. The log power is log(|X|^2 + eps) on the bins that
    `kept_bins` keeps (DC removed; with notch=True the bins within notch_width Hz of mains and its
    harmonics below Nyquist removed, 57-63 and 117-123 Hz at 60 Hz mains; fmax drops bins above).
    With this scaling 2 mean_t |X(t, f)|^2 is Welch's one-sided PSD (0 < f < fs/2; see the fact
    `stft-power-mean-is-welch`). float32 input is transformed in float32, anything else in float64.
    """
    x = np.asarray(x)
    if x.ndim < 1 or not np.issubdtype(x.dtype, np.number):
        raise NNLabError(f"log_spectrogram needs a numeric array (..., N), got {x.dtype} {x.shape}")
    N = x.shape[-1]
    if not 0 <= noverlap < nperseg <= N:
        raise NNLabError(
            f"need 0 <= noverlap < nperseg <= N samples (got {noverlap}, {nperseg}, {N})"
        )
    keep, freqs = kept_bins(
        fs, nperseg, notch=notch, mains=mains, notch_width=notch_width, fmax=fmax
    )
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    _, _, X = scipy.signal.stft(
        x,
        fs=fs,
        window="hann",
        nperseg=nperseg,
        noverlap=noverlap,
        detrend=False,
        boundary=None,
        padded=False,
        scaling="psd",
        axis=-1,
    )  # (..., F_all, T)
    X = X[..., keep, :]  # (..., F, T)
    power = X.real**2 + X.imag**2
    logp = np.log(power + eps).astype(np.float32, copy=False)
    return np.swapaxes(logp, -1, -2), freqs  # (..., T, F)


# ---- windows ---------------------------------------------------------------------------------
def window_starts(
    n_samples: int, fs: float, length_s: float = 5.0, hop_s: float = 5.0
) -> np.ndarray:
    """Start samples (W,) int64 of the windows of length_s seconds every hop_s seconds that lie
    wholly inside a recording of n_samples: start_w = round(w hop_s fs), w = 0 .. W-1."""
    if length_s <= 0 or hop_s <= 0:
        raise NNLabError(f"window length and hop must be > 0 (got {length_s}, {hop_s})")
    length = int(round(length_s * fs))
    if n_samples < length:
        return np.zeros(0, dtype=np.int64)
    last = n_samples - length
    # starts in seconds first: a non-integer hop in samples does not drift
    W = int(np.floor(last / (hop_s * fs) + 1e-9)) + 1
    starts = np.round(np.arange(W) * hop_s * fs).astype(np.int64)
    return starts[starts <= last]


def frame_windows(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """x (C, N), starts (W,) -> (W, C, length) read-only windows x[:, s : s + length].

    A strided view (no copy) when the starts are evenly spaced, which is what `window_starts`
    returns; irregular starts (e.g. from `oversample_minority`) are gathered into a copy."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise NNLabError(f"frame_windows needs x of shape (C, N), got {x.shape}")
    C, N = x.shape
    starts = np.asarray(starts, dtype=np.int64)
    if starts.ndim != 1:
        raise NNLabError(f"starts must be 1-D, got shape {starts.shape}")
    if len(starts) and (starts.min() < 0 or starts.max() + length > N):
        raise NNLabError(f"a window [start, start + {length}) falls outside the {N} samples")
    if len(starts) == 0:
        return np.zeros((0, C, length), dtype=x.dtype)
    steps = np.diff(starts)
    if len(steps) == 0 or (steps == steps[0]).all():
        hop = int(steps[0]) if len(steps) else 0
        s_c, s_n = x.strides
        base = x[:, starts[0] :]
        return np.lib.stride_tricks.as_strided(
            base, shape=(len(starts), C, length), strides=(hop * s_n, s_c, s_n), writeable=False
        )  # (W, C, L)
    # irregular starts: a view of every possible window, gathered
    every = np.lib.stride_tricks.sliding_window_view(x, length, axis=-1)  # (C, N - L + 1, L)
    return np.ascontiguousarray(every[:, starts].transpose(1, 0, 2))  # (W, C, L)


# ---- which mains frequency is in the data --------------------------------------------------------
def line_frequency(
    x: np.ndarray, fs: float, candidates: tuple[float, ...] = (50.0, 60.0), ratio: float = 5.0
) -> float | None:
    """The mains frequency whose line noise shows in x (C, N) at fs Hz, or None.

    Welch PSD with 1-Hz bins (at most the first minute), the median over channels; a candidate f
    below Nyquist - 6 Hz *shows* when its bin stands `ratio` times above the median of the bins
    2 to 6 Hz away on either side (a 1-Hz-wide peak of that height at exactly 50 or 60 Hz is line
    noise: cortical gamma is broadband). Of those that show, the most prominent is returned: 50
    Hz in Europe, Asia and most of the world, 60 Hz in the Americas. None: no line noise (removed
    by a notch filter before it was stored, or the rate too low to hold it)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = min(x.shape[-1], int(60 * fs))
    nperseg = int(round(fs))
    if n < nperseg:
        return None
    f, S = scipy.signal.welch(x[:, :n], fs, nperseg=nperseg)  # (F,), (C, F)
    S = np.median(S, axis=0)
    best, best_ratio = None, ratio
    for c in candidates:
        if c > fs / 2 - 6:
            continue
        i = int(np.argmin(np.abs(f - c)))
        near = np.abs(f - c)
        around = np.median(S[(near >= 2) & (near <= 6)])
        prominence = S[i] / max(around, 1e-30)
        if prominence >= best_ratio:
            best, best_ratio = c, prominence
    return best


def mains_mismatch(x: np.ndarray, fs: float, cfg: SpectralConfig, where: str) -> str | None:
    """A warning when the line noise in x is at another frequency than the notch removes (the
    line noise would reach the model), else None. No warning without a notch (asked for), or when
    `fmax` drops the line's bins anyway (Bonn: band-passed at 40 Hz, bins above 40 Hz dropped)."""
    if not cfg.notch:
        return None
    found = line_frequency(x, fs)
    if found is None or abs(found - cfg.mains) < 1:
        return None
    if cfg.fmax is not None and found - cfg.notch_width > cfg.fmax:
        return None
    return (
        f"{where}: line noise at {found:g} Hz, but the notch is set for {cfg.mains:g} Hz "
        f"(--mains {found:g} removes it)"
    )


# the share of a model's frequency bins that may lie above a recording's Nyquist frequency
# without a warning: the top 3 of 114 (a 250-Hz file, a 256-Hz model) moved P(ictal) by at most
# 0.063 in bench/eeg_montage.py; 21 of 114 (200 Hz) raised false alarms in bench/eeg_rates.py
MISSING_BAND_SHARE = 0.05


def missing_band(fs_file: float, fs_model: float, cfg: SpectralConfig, where: str) -> str | None:
    """A warning when a recording is sampled too slowly for more than `MISSING_BAND_SHARE` of
    the frequency bins a model reads (a 200-Hz file for a 256-Hz model that reads up to 128 Hz),
    else None. Upsampled to the model's rate, the bins above the file's Nyquist frequency hold
    no EEG, only the resampling filter's floor: far below anything the model was trained on."""
    freqs = cfg.freqs(fs_model)
    above = freqs[freqs > fs_file / 2]
    if fs_file >= fs_model or len(above) <= MISSING_BAND_SHARE * len(freqs):
        return None
    band = f"{above[0]:g}" + (f"-{above[-1]:g}" if len(above) > 1 else "")
    return (
        f"{where}: recorded at {fs_file:g} Hz, below the model's {fs_model:g} Hz: {len(above)} of "
        f"the {len(freqs)} frequency bins it reads ({band} Hz) lie above "
        f"this recording's Nyquist frequency ({fs_file / 2:g} Hz) and hold no EEG; its "
        f"probabilities may be off (a model trained with --fmax below {fs_file / 2:g} reads such "
        "recordings as it was trained)"
    )


# EEG in microvolts: scalp channels have a standard deviation of some 5-100 uV, intracranial ones
# and seizures up to a few hundred; outside these bounds the units are most likely wrong
PLAUSIBLE_UV = (0.5, 5000.0)


def implausible_amplitude(x: np.ndarray, where: str) -> str | None:
    """A warning when x (C, N), meant to be EEG in microvolts, has a median channel standard
    deviation (flat channels aside) outside `PLAUSIBLE_UV`: samples in volts or millivolts under
    a missing or wrong unit in the file's header, say. A model reads log power, so a scale off by
    1000 moves every input by 6 (natural-log) units: far outside what it was trained on."""
    sd = np.std(np.asarray(x, dtype=np.float64), axis=1)
    sd = sd[sd > 0]
    if not len(sd):
        return None
    median = float(np.median(sd))
    lo, hi = PLAUSIBLE_UV
    if lo <= median <= hi:
        return None
    guess = "volts or millivolts" if median < lo else "a unit smaller than microvolts"
    return (
        f"{where}: the EEG's median standard deviation is {median:.3g} uV, outside the "
        f"{lo:g}-{hi:g} uV of EEG: are the samples in {guess}? (the header's physical dimension "
        "sets the unit; an empty one is read as uV)"
    )


# ---- the configuration and the whole front end -----------------------------------------------
@dataclass(frozen=True)
class SpectralConfig:
    """The preprocessing of one window, in seconds so that it scales with the sampling rate:
    window_s windows every hop_s; STFT segments of segment_s seconds overlapping by overlap_s
    (1 s with half overlap: 1-Hz bins, 9 frames per 5-s window); the notch around mains and its
    harmonics below Nyquist +- notch_width Hz; fmax drops bins above (None: keep up to Nyquist)."""

    window_s: float = 5.0
    hop_s: float = 5.0
    segment_s: float = 1.0
    overlap_s: float = 0.5
    notch: bool = True
    mains: float = 60.0
    notch_width: float = 3.0
    fmax: float | None = None
    eps: float = 1e-10

    def window_length(self, fs: float) -> int:
        return int(round(self.window_s * fs))

    def nperseg(self, fs: float) -> int:
        return int(round(self.segment_s * fs))

    def noverlap(self, fs: float) -> int:
        return int(round(self.overlap_s * fs))

    def freqs(self, fs: float) -> np.ndarray:
        """The F kept frequencies (Hz) at sampling rate fs."""
        return kept_bins(fs, self.nperseg(fs), **self._notch())[1]

    def frames(self, fs: float) -> int:
        """T, the STFT frames per window."""
        L, nperseg, noverlap = self.window_length(fs), self.nperseg(fs), self.noverlap(fs)
        if not 0 <= noverlap < nperseg <= L:
            raise NNLabError(
                f"need 0 <= overlap_s < segment_s <= window_s (got {self.overlap_s}, "
                f"{self.segment_s}, {self.window_s})"
            )
        return 1 + (L - nperseg) // (nperseg - noverlap)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _notch(self) -> dict[str, Any]:
        return dict(
            notch=self.notch, mains=self.mains, notch_width=self.notch_width, fmax=self.fmax
        )


def prepare_windows(
    x: np.ndarray,
    fs: float,
    cfg: SpectralConfig = SpectralConfig(),
    starts: np.ndarray | None = None,
    chunk: int = 64,
) -> np.ndarray:
    """x (C, N) -> log spectrograms of its windows (W, C, T, F) float32.

    starts (W,) are window start samples (default: `window_starts` with cfg's window and hop).
    The windows are transformed `chunk` at a time, in float32, so the temporary float arrays stay
    small however long the recording is."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise NNLabError(f"prepare_windows needs x of shape (C, N), got {x.shape}")
    C, N = x.shape
    if starts is None:
        starts = window_starts(N, fs, cfg.window_s, cfg.hop_s)
    starts = np.asarray(starts, dtype=np.int64)
    T, F = cfg.frames(fs), len(cfg.freqs(fs))
    out = np.empty((len(starts), C, T, F), dtype=np.float32)  # (W, C, T, F)
    for i in range(0, len(starts), chunk):
        out[i : i + chunk] = prepare_chunk(x, fs, cfg, starts[i : i + chunk])
    return out


def prepare_chunk(x: np.ndarray, fs: float, cfg: SpectralConfig, starts: np.ndarray) -> np.ndarray:
    """x (C, N), starts (w,) -> (w, C, T, F) float32: one chunk of `prepare_windows`."""
    L = cfg.window_length(fs)
    # float32 halves the FFT's memory and time; log power needs no more than float32's 7 digits
    windows = frame_windows(x, starts, L).astype(np.float32)  # (w, C, L)
    logp, _ = log_spectrogram(
        windows, fs, cfg.nperseg(fs), cfg.noverlap(fs), eps=cfg.eps, **cfg._notch()
    )
    return logp  # (w, C, T, F)


# ---- normalisation fitted on training windows ------------------------------------------------
@dataclass
class Normalizer:
    """z = (P - mu) / sigma with mu, sigma the mean and standard deviation of the log power of the
    *training* windows, per frequency (over windows, channels and frames: shape (F,)) or per
    channel x frequency (over windows and frames: shape (C, F)). Fit on the training split only:
    statistics from the test windows would leak into the model's input."""

    per: str = "frequency"  # or "channel-frequency"
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    min_std: float = 1e-6

    def __post_init__(self) -> None:
        if self.per not in ("frequency", "channel-frequency"):
            raise NNLabError(
                f"Normalizer per must be 'frequency' or 'channel-frequency', got {self.per!r}"
            )

    def fit(self, windows: np.ndarray | Iterable[np.ndarray]) -> Normalizer:
        """Fit on (W, C, T, F) windows, or on an iterable of such chunks (a `WindowStore`'s
        batches), accumulating in float64 by Chan's parallel update so the whole training set never
        has to be in memory."""
        chunks = [windows] if isinstance(windows, np.ndarray) else windows
        count, mean, m2 = 0, None, None
        for chunk in chunks:
            chunk = np.asarray(chunk, dtype=np.float64)
            if chunk.ndim != 4:
                raise NNLabError(f"Normalizer.fit needs windows (W, C, T, F), got {chunk.shape}")
            axes = (0, 1, 2) if self.per == "frequency" else (0, 2)
            n = int(np.prod([chunk.shape[a] for a in axes]))
            if n == 0:
                continue
            mu = chunk.mean(axis=axes)
            m2_chunk = ((chunk - np.expand_dims(mu, axes)) ** 2).sum(axis=axes)
            if mean is None:
                count, mean, m2 = n, mu, m2_chunk
            else:
                if mu.shape != mean.shape:
                    raise NNLabError(
                        f"windows of shape {chunk.shape[1:]} do not match earlier ones"
                    )
                delta = mu - mean
                total = count + n
                mean = mean + delta * n / total
                m2 = m2 + m2_chunk + delta**2 * count * n / total
                count = total
        if mean is None:
            raise NNLabError("Normalizer.fit got no training windows")
        self.mean = mean.astype(np.float32)
        self.std = np.sqrt(m2 / count).astype(np.float32)
        return self

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """(..., C, T, F) -> normalised (..., C, T, F) float32."""
        if self.mean is None or self.std is None:
            raise NNLabError("Normalizer used before fit")
        std = np.maximum(self.std, self.min_std)
        if self.per == "frequency":
            mean, std = self.mean, std  # (F,) broadcasts over (..., C, T, F)
        else:
            mean, std = self.mean[:, None, :], std[:, None, :]  # (C, 1, F)
        return ((np.asarray(windows, dtype=np.float32) - mean) / std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        if self.mean is None or self.std is None:
            raise NNLabError("Normalizer saved before fit")
        return {
            "per": self.per,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "min_std": self.min_std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        return cls(
            per=d["per"],
            mean=np.asarray(d["mean"], dtype=np.float32),
            std=np.asarray(d["std"], dtype=np.float32),
            min_std=float(d.get("min_std", 1e-6)),
        )


# ---- minority-class oversampling by overlap --------------------------------------------------
def oversample_minority(
    starts: np.ndarray,
    labels: np.ndarray,
    length: int,
    factor: int = 4,
    minority: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Base windows (starts (W,) samples, labels (W,)) -> (starts (W',), labels (W',)) with the
    minority class's windows `factor` times as dense.

    Every maximal run of consecutive base windows labelled `minority` whose windows touch or
    overlap (start_{w+1} <= start_w + length) covers the samples [a, b); inside it windows of the
    same length start every hop / factor samples (hop: the base hop inside the run, or `length`
    for a run of one window), all wholly inside [a, b), so each new window only contains samples
    that carried the minority label. Other windows are returned unchanged; the result is sorted by
    start. factor=1 returns the input. The overlapping windows are near-duplicates: a split must
    keep them together (by seizure, never at random)."""
    starts = np.asarray(starts, dtype=np.int64)
    labels = np.asarray(labels)
    if starts.shape != labels.shape or starts.ndim != 1:
        raise NNLabError(
            f"starts and labels must be 1-D of one length, got {starts.shape}, {labels.shape}"
        )
    if factor < 1:
        raise NNLabError(f"oversampling factor must be >= 1, got {factor}")
    if factor == 1 or len(starts) == 0:
        return starts.copy(), labels.copy()
    order = np.argsort(starts, kind="stable")
    starts, labels = starts[order], labels[order]
    is_min = labels == minority
    # a run breaks where the label changes or consecutive windows leave a gap
    gap = np.r_[True, starts[1:] > starts[:-1] + length]
    new_run = is_min & (gap | ~np.r_[False, is_min[:-1]])
    run_id = np.cumsum(new_run) * is_min  # 0 outside the minority class
    out_s, out_l = [starts[~is_min]], [labels[~is_min]]
    for r in range(1, int(run_id.max()) + 1):
        s = starts[run_id == r]
        a, b = int(s[0]), int(s[-1]) + length
        hop = int(np.median(np.diff(s))) if len(s) > 1 else length
        step = max(1, hop // factor)
        new = np.arange(a, b - length + 1, step, dtype=np.int64)
        out_s.append(new)
        out_l.append(np.full(len(new), minority, dtype=labels.dtype))
    all_s, all_l = np.concatenate(out_s), np.concatenate(out_l)
    order = np.argsort(all_s, kind="stable")
    return all_s[order], all_l[order]
