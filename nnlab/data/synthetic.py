"""Small generated stand-ins for tests: polyp-like images (a textured blob on a coloured,
textured background) with exact masks, written in the images/ + masks/ folder layout; and
multi-channel EEG with seizures, written as a CHB-MIT patient folder (EDF+ files + summary)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nnlab.errors import NNLabError


def polyp_image(size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, mask (H, W) bool): an elliptic blob, brighter and redder than the
    mucosa-coloured background, both with noise texture."""
    H, W = size
    yy, xx = np.mgrid[:H, :W]
    cy, cx = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W
    ry, rx = rng.uniform(0.1, 0.3) * H, rng.uniform(0.1, 0.3) * W
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
    mask = u * u + v * v <= 1.0
    background = np.array([170, 90, 80]) + rng.normal(0, 12, (H, W, 3))
    blob = np.array([220, 140, 120]) + rng.normal(0, 18, (H, W, 3))
    image = np.where(mask[..., None], blob, background)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_polyp_folder(
    root: str | Path,
    n: int = 12,
    size: tuple[int, int] = (48, 64),
    seed: int = 0,
    image_format: str = "jpg",
) -> Path:
    """Write n image/mask pairs to root/images/ and root/masks/ (masks as PNG: exact)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, mask = polyp_image(size, rng)
        Image.fromarray(image).save(root / "images" / f"case{i:03d}.{image_format}")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"case{i:03d}.png")
    return root


# ---- EEG: a CHB-MIT stand-in ---------------------------------------------------------------------
CHBMIT_LABELS = (
    "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1",
    "FP2-F4", "F4-C4", "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
    "FZ-CZ", "CZ-PZ", "P7-T7", "T7-FT9", "FT9-FT10", "FT10-T8", "T8-P8",
)  # fmt: skip
# the 23 bipolar derivations of most CHB-MIT files, T8-P8 listed twice as in the real headers


@dataclass
class EEGSynthConfig:
    """What the synthetic EEG is made of (amplitudes in microvolts, rates in Hz).

    x_c(t) = B (sqrt(1 - rho) n_c(t) + sqrt(rho) n_0(t))          1/f^beta background
           + A g_c a(t)                                             alpha rhythm
           + h_c [ P r(t) q(t) + spikes(t) + seizure(t) ]           focus channels
           + L l_c sin(2 pi 60 t + phi_c)                           line noise

    n_c, n_0: unit-variance Gaussian noise with power spectrum 1/f^beta (f >= 0.5 Hz), n_0 shared
    by all channels (volume conduction); a(t): unit-variance narrow-band noise around alpha_hz.
    The focus is the first round(focus_fraction * C) channels (the left chains of the CHB-MIT
    montage), with gains h_c in [0.6, 1] and 0 elsewhere.

    Pre-seizure change, r(t) = sqrt(clip((t - on + T_pre) / T_pre, 0, 1)) for t < on (0 after):
    over the T_pre = preictal_s before each onset (i) theta (6 Hz) + beta (20 Hz) band noise q(t)
    of RMS preictal_uv * r(t) grows on the focus, and (ii) sharp-wave spikes (a 15 ms spike and a
    slow after-wave) arrive as a Poisson process whose rate rises from spike_rate_base to
    spike_rate_preictal (per minute) as r goes 0 -> 1. The square root makes the change already
    visible at the start of a 30-min SOP.
    Seizures: spike-and-wave at seizure_hz[0] slowing to seizure_hz[1], amplitude seizure_uv,
    ramped in and out over min(3 s, duration / 4), identical shape on every focus channel.
    The channel gains g_c, h_c, l_c, phi_c depend on `layout_seed` only (fixed per patient).
    """

    background_uv: float = 20.0
    background_beta: float = 1.0
    shared_fraction: float = 0.3
    alpha_uv: float = 12.0
    alpha_hz: float = 10.0
    alpha_bw_hz: float = 1.0
    focus_fraction: float = 0.35
    seizure_uv: float = 200.0
    seizure_hz: tuple[float, float] = (3.5, 2.5)
    preictal_s: float = 2400.0
    preictal_uv: float = 15.0
    spike_uv: float = 80.0
    spike_rate_base: float = 0.5  # per minute
    spike_rate_preictal: float = 12.0  # per minute, reached at the onset
    line_uv: float = 5.0
    line_hz: float = 60.0
    layout_seed: int = 0


def _colored_noise(n: int, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 Gaussian noise of unit variance with amplitude spectrum `shape` (on rfftfreq).

    With X_k = S_k (u_k + i v_k), u, v ~ N(0, 1/2) and x = irfft(X), Var x = 2 sum_k S_k^2 / n^2
    (DC and Nyquist aside), so S is scaled by n / sqrt(2 sum S^2)."""
    from scipy.fft import irfft

    F = n // 2 + 1
    z = rng.standard_normal((2, F), dtype=np.float32)
    scale = n / np.sqrt(2.0 * np.sum(shape.astype(np.float64) ** 2))
    X = (z[0] + 1j * z[1]) * (shape * scale / np.sqrt(2.0)).astype(np.float32)  # (F,) complex64
    return irfft(X, n).astype(np.float32)


def _band(f: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((f - centre) / width) ** 2)


def _preictal_ramp(t: np.ndarray, onsets: np.ndarray, T_pre: float) -> np.ndarray:
    """r(t) = max_k sqrt(clip((t - on_k + T_pre) / T_pre, 0, 1)) over onsets not yet reached."""
    r = np.zeros(len(t), dtype=np.float32)
    for on in onsets:
        if on - T_pre >= t[-1] or on <= t[0]:
            continue
        lo, hi = np.searchsorted(t, [on - T_pre, on])
        ramp = np.sqrt((t[lo:hi] - on + T_pre) / T_pre)
        r[lo:hi] = np.maximum(r[lo:hi], ramp)
    return r


def _spike_template(fs: float) -> tuple[np.ndarray, int]:
    """A sharp wave, peak 1 at sample `lead`: 15 ms Gaussian spike, then a slow wave of the
    opposite sign (60 ms wide, 0.4 high) 90 ms later."""
    t = np.arange(int(-0.1 * fs), int(0.35 * fs) + 1) / fs
    w = np.exp(-0.5 * (t / 0.015) ** 2) - 0.4 * np.exp(-0.5 * ((t - 0.09) / 0.06) ** 2)
    return w.astype(np.float32), int(0.1 * fs)


def _spike_wave(u: np.ndarray) -> np.ndarray:
    """One spike-and-wave cycle at phase u in [0, 1): a sharp spike then a broad slow wave."""
    return np.exp(-0.5 * ((u - 0.1) / 0.03) ** 2) - 0.5 * np.exp(-0.5 * ((u - 0.5) / 0.14) ** 2)


def synthetic_eeg(
    duration_s: float,
    seizures=(),
    fs: float = 256.0,
    n_channels: int = 23,
    t0: float = 0.0,
    seed=0,
    cfg: EEGSynthConfig | None = None,
) -> np.ndarray:
    """(C, N) float32 microvolts: the EEG of `EEGSynthConfig` on [t0, t0 + duration_s), N =
    round(duration_s * fs). `seizures` (K, 2) are (onset, offset) in the same global seconds as
    t0 and may lie outside the segment (their pre-seizure change reaches into it). The same
    (seed, arguments) give the same array; consecutive segments of one patient use consecutive
    t0 and their own seeds."""
    cfg = cfg or EEGSynthConfig()
    C, N = n_channels, int(round(duration_s * fs))
    if N < 2 or C < 1:
        raise NNLabError(f"need at least 2 samples and 1 channel, got N={N}, C={C}")
    szr = np.asarray(seizures, dtype=np.float64).reshape(-1, 2)  # (K, 2)
    layout = np.random.default_rng(cfg.layout_seed)
    alpha_gain = layout.uniform(0.3, 1.0, C).astype(np.float32)
    n_focus = max(1, int(round(cfg.focus_fraction * C)))
    focus_gain = np.zeros(C, dtype=np.float32)
    focus_gain[:n_focus] = layout.uniform(0.6, 1.0, n_focus)
    line_gain = layout.uniform(0.5, 1.5, C).astype(np.float32)
    line_phase = layout.uniform(0, 2 * np.pi, C)

    rng = np.random.default_rng(seed)
    t = t0 + np.arange(N) / fs  # (N,) global seconds, float64: hours need the precision
    f = np.fft.rfftfreq(N, 1 / fs)
    pink = np.maximum(f, 0.5) ** (-cfg.background_beta / 2)
    pink[0] = 0.0
    rho = cfg.shared_fraction
    x = np.empty((C, N), dtype=np.float32)
    shared = np.sqrt(rho) * _colored_noise(N, pink, rng)
    for c in range(C):
        x[c] = np.sqrt(1 - rho) * _colored_noise(N, pink, rng) + shared
    x *= cfg.background_uv
    alpha = _colored_noise(N, _band(f, cfg.alpha_hz, cfg.alpha_bw_hz), rng)
    for c in range(C):  # row by row: no (C, N) temporaries for hour-long segments
        x[c] += cfg.alpha_uv * alpha_gain[c] * alpha

    focus = np.zeros(N, dtype=np.float32)  # what the focus channels carry, before their gains
    r = _preictal_ramp(t, szr[:, 0], cfg.preictal_s)
    if r.any():
        q = _colored_noise(N, _band(f, 6.0, 1.0) + _band(f, 20.0, 3.0), rng)
        focus += cfg.preictal_uv * r * q
    # spikes: an inhomogeneous Poisson process by thinning a homogeneous one at the peak rate
    rate_max = max(cfg.spike_rate_base, cfg.spike_rate_preictal if r.any() else 0.0) / 60.0
    n_cand = rng.poisson(rate_max * N / fs)
    cand = rng.integers(0, N, n_cand)
    rate = (cfg.spike_rate_base + (cfg.spike_rate_preictal - cfg.spike_rate_base) * r[cand]) / 60
    keep = cand[rng.uniform(size=n_cand) * rate_max < rate]
    if len(keep):
        train = np.zeros(N, dtype=np.float32)
        np.add.at(train, keep, 1.0)
        template, lead = _spike_template(fs)
        focus += cfg.spike_uv * np.convolve(train, template)[lead : lead + N]
    f_on, f_off = cfg.seizure_hz
    for on, off in szr:
        lo, hi = np.searchsorted(t, [on, off])
        if lo >= hi:
            continue
        D = max(off - on, 1.0 / fs)
        tau = t[lo:hi] - on  # seconds into the seizure
        cycles = f_on * tau + (f_off - f_on) * tau**2 / (2 * D)  # integral of the slowing rate
        ramp = min(3.0, D / 4)
        envelope = np.clip(np.minimum(tau, off - t[lo:hi]) / ramp, 0.0, 1.0)
        focus[lo:hi] += cfg.seizure_uv * envelope * _spike_wave(cycles % 1.0)
    for c in range(n_focus):
        x[c] += focus_gain[c] * focus
    if cfg.line_uv and cfg.line_hz < fs / 2:
        phase = 2 * np.pi * ((cfg.line_hz * t) % 1.0)  # whole cycles dropped: float32-safe
        sin, cos = np.sin(phase).astype(np.float32), np.cos(phase).astype(np.float32)
        for c in range(C):  # sin(phase + phi_c) = sin(phase) cos(phi_c) + cos(phase) sin(phi_c)
            a = cfg.line_uv * line_gain[c]
            x[c] += a * np.cos(line_phase[c]) * sin + a * np.sin(line_phase[c]) * cos
    return x


@dataclass
class SyntheticPatient:
    """What `make_chbmit_folder` wrote: the truth a reader of the folder must recover."""

    folder: Path
    summary: Path
    names: list[str]
    starts_s: list[float]  # global start of each file (0 = first file)
    file_s: float
    seizures: np.ndarray  # (K, 2) global (onset, offset) seconds, sorted
    labels: list[list[str]]  # every file's channel labels as written (dummies and repeats too)


def make_chbmit_folder(
    root: str | Path,
    patient: str = "chb01",
    n_files: int = 3,
    hours: float = 0.05,
    fs: int = 256,
    seizures: dict[int, list[tuple[int, int]]] | None = None,
    gap_s: int = 600,
    first_start: str = "22:40:00",
    wrap_clock: bool = False,
    montage_change_at: int | None = None,
    missing_channel_file: int | None = None,
    seed: int = 0,
    cfg: EEGSynthConfig | None = None,
) -> SyntheticPatient:
    """Write root/<patient>/ like a CHB-MIT patient folder: `n_files` EDF+ files
    <patient>_01.edf... of `hours` each (rounded to whole seconds), `gap_s` apart, the first
    starting at clock time `first_start`, and <patient>-summary.txt in the real format.

    seizures: {file index: [(onset, offset) seconds from the file's start]}; default one seizure
    in the last file at 60% of its length, 40 s long (shorter files: a fifth of the file).
    Files with one seizure use the 'Seizure Start Time' spelling, files with several the
    'Seizure 1 Start Time' one. Clock times past midnight are written as 24:MM:SS, 25:.. unless
    `wrap_clock` (then 00:MM:SS). From file `montage_change_at` on, the montage lists dummy
    channels '-' and an 'ECG' channel, and moves FZ-CZ and CZ-PZ to the front (announced by
    'Channels changed:'). File `missing_channel_file` lacks FT9-FT10. Every file holds T8-P8
    twice (the same samples), as CHB-MIT does. The summary's seizure times are the generator's.
    """
    from datetime import datetime, timedelta

    from nnlab.data.eeg import Recording, clock_seconds, summary_lines, write_edf
    from nnlab.io import atomic_write_text

    cfg = cfg or EEGSynthConfig()
    file_s = int(round(hours * 3600))
    if file_s < 10 or n_files < 1:
        raise NNLabError(f"need at least one file of >= 10 s, got {n_files} of {file_s} s")
    if seizures is None:
        length = min(40, file_s // 5)
        on = int(0.6 * file_s)
        seizures = {n_files - 1: [(on, on + length)]}
    folder = Path(root) / patient
    folder.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(CHBMIT_LABELS))  # 22 distinct derivations, one signal each
    starts = [i * (file_s + gap_s) for i in range(n_files)]
    glob = sorted(
        (starts[i] + on, starts[i] + off) for i, pairs in seizures.items() for on, off in pairs
    )
    clock0 = clock_seconds(first_start)
    day0 = datetime(2000, 1, 1)

    def clock(seconds: int) -> str:
        h, rest = divmod(seconds, 3600)
        return f"{h % 24 if wrap_clock else h:02d}:{rest // 60:02d}:{rest % 60:02d}"

    def montage(i: int) -> list[str]:
        labels = list(CHBMIT_LABELS)
        if montage_change_at is not None and i >= montage_change_at:
            rest = [lab for lab in labels if lab not in ("FZ-CZ", "CZ-PZ")]
            labels = ["FZ-CZ", "CZ-PZ", *rest[:4], "-", *rest[4:8], "-", *rest[8:], "ECG"]
        if i == missing_channel_file:
            labels = [lab for lab in labels if lab != "FT9-FT10"]
        return labels

    lines = [f"Data Sampling Rate: {fs} Hz", "*************************", ""]
    names, written, previous = [], [], None
    for i in range(n_files):
        eeg = synthetic_eeg(file_s, glob, fs, len(unique), starts[i], seed=[seed, i], cfg=cfg)
        row = {lab: eeg[k] for k, lab in enumerate(unique)}
        labels = montage(i)
        beat = (np.arange(file_s * fs) / fs * 1.2) % 1.0  # 72 beats a minute
        ecg = (400 * np.exp(-0.5 * ((beat - 0.5) / 0.01) ** 2)).astype(np.float32)
        flat = np.zeros(file_s * fs, dtype=np.float32)
        data = np.stack([row.get(lab, ecg if lab == "ECG" else flat) for lab in labels])
        name = f"{patient}_{i + 1:02d}.edf"
        start = clock0 + starts[i]
        write_edf(folder / name, Recording(name, fs, labels, data), day0 + timedelta(seconds=start))
        if labels != previous:
            title = "Channels in EDF Files:" if previous is None else "Channels changed:"
            lines += [title, "*" * len(title)]
            lines += [f"Channel {k + 1}: {lab}" for k, lab in enumerate(labels)] + [""]
        lines += summary_lines(name, seizures.get(i, []), clock(start), clock(start + file_s))
        names.append(name)
        written.append(labels)
        previous = labels
    summary = folder / f"{patient}-summary.txt"
    atomic_write_text(summary, "\n".join(lines))
    return SyntheticPatient(
        folder,
        summary,
        names,
        [float(s) for s in starts],
        float(file_s),
        np.asarray(glob, dtype=np.float64).reshape(-1, 2),
        written,
    )


def make_small_patient(root: str | Path, patient: str = "chb01") -> SyntheticPatient:
    """The smallest patient that leave-one-seizure-out can split: three 6-minute files 10
    minutes apart, a seizure 250-280 s into the second and the third, the pre-seizure change
    starting 90 s before each (for labels with SOP 60 s, SPH 10 s, interictal gap 120 s). What
    the seizure tests and `bench/eeg_detect.py` train their quick models on."""
    return make_chbmit_folder(
        root,
        patient,
        n_files=3,
        hours=0.1,
        seizures={1: [(250, 280)], 2: [(250, 280)]},
        gap_s=600,
        cfg=EEGSynthConfig(preictal_s=90.0),
    )
