"""EEG preprocessing, cache, alarms, seizure metrics and baseline features (issue 16 items 4 and 6):
each against a direct computation (SciPy, scikit-learn, a loop) or a hand-made case."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.signal

from nnlab.errors import NNLabError
from nnlab.metrics import seizure as sm
from nnlab.signal import cache as sc
from nnlab.signal.alarms import k_of_n_alarms, k_of_n_counts, warning_intervals
from nnlab.signal.features import BANDS, FEATURE_NAMES, baseline_features
from nnlab.signal.spectral import (
    Normalizer,
    SpectralConfig,
    frame_windows,
    kept_bins,
    log_spectrogram,
    oversample_minority,
    prepare_windows,
    window_starts,
)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---- log_spectrogram ---------------------------------------------------------------------------
def test_log_spectrogram_equals_scipy_stft():
    fs, nperseg, noverlap = 256.0, 256, 128
    x = rng().standard_normal((3, 2, 1280))
    P, freqs = log_spectrogram(x, fs, nperseg, noverlap)
    f_all, _, X = scipy.signal.stft(
        x,
        fs,
        window="hann",
        nperseg=nperseg,
        noverlap=noverlap,
        boundary=None,
        padded=False,
        scaling="psd",
    )  # (3, 2, 129, 9)
    keep = (f_all > 0) & ~((f_all >= 57) & (f_all <= 63)) & ~((f_all >= 117) & (f_all <= 123))
    want = np.log(np.abs(X[..., keep, :]) ** 2 + 1e-10).swapaxes(-1, -2)
    assert P.dtype == np.float32 and P.shape == (3, 2, 9, 114) == want.shape
    np.testing.assert_array_equal(freqs, f_all[keep])
    np.testing.assert_allclose(P, want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "fs, removed",
    [
        (256.0, [0, *range(57, 64), *range(117, 124)]),
        (200.0, [0, *range(57, 64)]),  # 120 Hz is above Nyquist: only 60 Hz is notched
        (236.0, [0, *range(57, 64)]),  # 120 Hz is above Nyquist (118): 117 and 118 Hz stay
        (100.0, [0]),  # 60 Hz is above Nyquist
    ],
)
def test_notch_bins_removed_exactly_below_nyquist(fs, removed):
    nperseg = int(fs)  # 1-Hz bins
    all_f = np.fft.rfftfreq(nperseg, 1 / fs)
    _, freqs = kept_bins(fs, nperseg)
    np.testing.assert_array_equal(np.setdiff1d(all_f, freqs), np.asarray(removed, float))
    _, no_notch = kept_bins(fs, nperseg, notch=False)
    np.testing.assert_array_equal(no_notch, all_f[1:])
    _, low = kept_bins(fs, nperseg, fmax=40)
    assert low.max() == 40 and low.min() == 1


def test_sine_peaks_at_its_bin_and_leading_axes():
    fs = 256.0
    t = np.arange(1280) / fs
    x = np.sin(2 * np.pi * 10 * t) + 0.01 * rng().standard_normal((4, 3, 1280))  # (4, 3, 1280)
    P, freqs = log_spectrogram(x, fs, 256, 128)
    assert P.shape == (4, 3, 9, 114)
    assert (freqs[P.argmax(axis=-1)] == 10).all()
    # the leading axes are independent rows: one row alone gives the same numbers
    np.testing.assert_allclose(log_spectrogram(x[2, 1], fs, 256, 128)[0], P[2, 1], rtol=1e-6)


def test_log_spectrogram_rejects_short_input():
    with pytest.raises(NNLabError, match="nperseg"):
        log_spectrogram(np.zeros(100), 256.0, 256, 128)


# ---- windows -----------------------------------------------------------------------------------
def test_window_starts_and_frame_windows_view():
    fs = 256.0
    starts = window_starts(256 * 23, fs, 5.0, 5.0)
    np.testing.assert_array_equal(starts, [0, 1280, 2560, 3840])
    np.testing.assert_array_equal(window_starts(256 * 6, fs, 5.0, 2.5), [0])
    np.testing.assert_array_equal(window_starts(100, fs), [])
    x = rng().standard_normal((3, 256 * 23))
    w = frame_windows(x, starts, 1280)  # (4, 3, 1280)
    assert w.shape == (4, 3, 1280) and np.shares_memory(w, x) and not w.flags.writeable
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(w[i], x[:, s : s + 1280])
    irregular = np.array([0, 100, 1000])
    g = frame_windows(x, irregular, 50)
    np.testing.assert_array_equal(g[1], x[:, 100:150])
    with pytest.raises(NNLabError, match="outside"):
        frame_windows(x, np.array([256 * 23 - 10]), 50)


def test_prepare_windows_matches_per_window_spectrogram():
    fs, cfg = 128.0, SpectralConfig()
    x = rng().standard_normal((2, 128 * 31)).astype(np.float32)
    out = prepare_windows(x, fs, cfg, chunk=2)
    assert out.shape == (6, 2, cfg.frames(fs), len(cfg.freqs(fs))) == (6, 2, 9, 57)
    for w in (0, 5):
        want, _ = log_spectrogram(x[:, w * 640 : (w + 1) * 640], fs, 128, 64)
        np.testing.assert_allclose(out[w], want, rtol=1e-6, atol=1e-6)


# ---- Normalizer ----------------------------------------------------------------------------------
@pytest.mark.parametrize("per", ["frequency", "channel-frequency"])
def test_normalizer_uses_train_statistics_only(per):
    train = rng(1).normal(3.0, 2.0, (40, 3, 5, 7)).astype(np.float32)
    test = rng(2).normal(-50.0, 9.0, (10, 3, 5, 7)).astype(np.float32)
    norm = Normalizer(per=per).fit(train)
    axes = (0, 1, 2) if per == "frequency" else (0, 2)
    np.testing.assert_allclose(norm.mean, train.astype(np.float64).mean(axis=axes), rtol=1e-5)
    np.testing.assert_allclose(norm.std, train.astype(np.float64).std(axis=axes), rtol=1e-5)
    z = norm(train)
    np.testing.assert_allclose(z.astype(np.float64).mean(axis=axes), 0, atol=1e-5)
    # fitting in chunks (a WindowStore's batches) gives the same statistics
    chunked = Normalizer(per=per).fit(iter([train[:7], train[7:30], train[30:]]))
    np.testing.assert_allclose(chunked.mean, norm.mean, rtol=1e-5)
    np.testing.assert_allclose(chunked.std, norm.std, rtol=1e-5)
    # the test windows are normalised with the training statistics, not their own
    assert abs(float(norm(test).mean()) - (-53.0 / 2.0)) < 1.0
    back = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(back(test), norm(test))


# ---- oversampling the minority class -------------------------------------------------------------
def test_oversample_minority_adds_windows_inside_minority_runs():
    L = 100
    starts = np.arange(10) * L  # back-to-back windows
    labels = np.array([0, 0, 1, 1, 1, 0, -1, 1, 0, 0])
    s, lab = oversample_minority(starts, labels, L, factor=4)
    np.testing.assert_array_equal(s[lab == 0], [0, 100, 500, 800, 900])
    np.testing.assert_array_equal(s[lab == -1], [600])
    # the run [200, 500) gets windows every 100 / 4 samples wholly inside it; the lone minority
    # window at 700 has no room for another
    np.testing.assert_array_equal(s[lab == 1], [*range(200, 401, 25), 700])
    assert (np.diff(s) >= 0).all()
    s1, l1 = oversample_minority(starts, labels, L, factor=1)
    np.testing.assert_array_equal(s1, starts)
    np.testing.assert_array_equal(l1, labels)


# ---- cache ---------------------------------------------------------------------------------------
def _recording(tmp_path, name="rec", seconds=60, C=3, fs=128.0, seed=0):
    x = rng(seed).standard_normal((C, int(seconds * fs))).astype(np.float32)
    path = tmp_path / f"{name}.npy"
    np.save(path, x)
    return path, x


def test_cache_round_trip_equals_direct_and_is_reused(tmp_path):
    fs, cfg = 128.0, SpectralConfig()
    path, x = _recording(tmp_path)
    calls = []

    def load():
        calls.append(1)
        return np.load(path)

    rec = sc.prepare_cached(path, load, fs, cfg, tmp_path / "cache", chunk=3)
    assert isinstance(rec.windows, np.memmap) and not rec.windows.flags.writeable
    np.testing.assert_array_equal(rec.windows, prepare_windows(x, fs, cfg))
    np.testing.assert_array_equal(rec.starts, window_starts(x.shape[1], fs))
    again = sc.prepare_cached(path, load, fs, cfg, tmp_path / "cache")
    assert len(calls) == 1 and again.path == rec.path
    # no temporary file left behind
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npy"]


def test_cache_read_a_stretch_at_a_time_equals_the_whole(tmp_path):
    """prepare_cached(read=...): one stretch read per chunk of windows, only the stretch the
    chunk's windows cover (overlapping, unevenly spaced starts), the same windows as a load of
    the whole recording."""
    fs, cfg = 128.0, SpectralConfig()
    path, x = _recording(tmp_path)
    L = cfg.window_length(fs)
    starts = np.sort(np.concatenate([window_starts(x.shape[1], fs), [100, 333, 2000]]))
    reads = []

    def read(a, b):
        reads.append((a, b))
        return x[:, a:b]

    rec = sc.prepare_cached(path, None, fs, cfg, tmp_path / "c", starts=starts, chunk=4, read=read)
    np.testing.assert_array_equal(rec.windows, prepare_windows(x, fs, cfg, starts))
    assert len(reads) == -(-len(starts) // 4)
    assert all(b - a <= starts[3] - starts[0] + L for a, b in reads[:1])  # a stretch, not all
    with pytest.raises(ValueError, match="ascending"):
        sc.prepare_cached(path, None, fs, cfg, tmp_path / "d", starts=starts[::-1], read=read)
    with pytest.raises(ValueError, match="needs load, or read and starts"):
        sc.prepare_cached(path, None, fs, cfg, tmp_path / "d", read=read)


def test_cache_key_changes_with_parameters_and_source(tmp_path):
    path, _ = _recording(tmp_path)
    ident = sc.source_identity(path)
    base = sc.cache_key(ident, 128.0, SpectralConfig())
    assert base == sc.cache_key(sc.source_identity(path), 128.0, SpectralConfig())
    others = [
        sc.cache_key(ident, 256.0, SpectralConfig()),
        sc.cache_key(ident, 128.0, SpectralConfig(notch_width=2.0)),
        sc.cache_key(ident, 128.0, SpectralConfig(segment_s=0.5, overlap_s=0.25)),
        sc.cache_key(ident, 128.0, SpectralConfig(), starts=np.array([0, 640])),
        sc.cache_key(ident, 128.0, SpectralConfig(), params={"channels": ["FP1-F7"]}),
        sc.cache_key({**ident, "mtime_ns": ident["mtime_ns"] + 1}, 128.0, SpectralConfig()),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_truncated_cache_is_rebuilt(tmp_path):
    fs, cfg = 128.0, SpectralConfig()
    path, x = _recording(tmp_path)
    rec = sc.prepare_cached(path, lambda: np.load(path), fs, cfg, tmp_path / "cache")
    npy = rec.path
    del rec
    size = npy.stat().st_size
    with open(npy, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(NNLabError, match="truncated"):
        sc.open_cached(npy)
    calls = []
    rebuilt = sc.prepare_cached(
        path, lambda: calls.append(1) or np.load(path), fs, cfg, tmp_path / "cache"
    )
    assert calls == [1] and npy.stat().st_size == size
    np.testing.assert_array_equal(rebuilt.windows, prepare_windows(x, fs, cfg))


def test_cache_write_is_atomic_on_crash(tmp_path, monkeypatch):
    fs, cfg = 128.0, SpectralConfig()
    path, _ = _recording(tmp_path)
    real = sc.prepare_chunk
    done = []

    def crash_on_second_chunk(*args):
        if done:
            raise KeyboardInterrupt  # a kill in the middle of the write
        done.append(1)
        return real(*args)

    monkeypatch.setattr(sc, "prepare_chunk", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        sc.prepare_cached(path, lambda: np.load(path), fs, cfg, tmp_path / "cache", chunk=4)
    key = sc.cache_key(sc.source_identity(path), fs, cfg)
    npy, _ = sc.cache_paths(tmp_path / "cache", path, key)
    assert not npy.exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix in (".npy", ".tmp")]


def test_window_store_indexes_across_recordings(tmp_path):
    fs, cfg = 128.0, SpectralConfig()
    recs, direct = [], []
    for i, seconds in enumerate([20, 31, 12]):  # 4, 6, 2 windows
        path, x = _recording(tmp_path, f"r{i}", seconds=seconds, seed=i)
        recs.append(sc.prepare_cached(path, lambda p=path: np.load(p), fs, cfg, tmp_path / "c"))
        direct.append(prepare_windows(x, fs, cfg))
    labels = [np.full(len(d), i) for i, d in enumerate(direct)]
    store = sc.WindowStore(recs, labels=labels)
    assert len(store) == 12
    np.testing.assert_array_equal(store.offsets, [0, 4, 10, 12])
    r, w = store.locate(np.array([0, 3, 4, 9, 10, 11]))
    np.testing.assert_array_equal(r, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(w, [0, 3, 0, 5, 0, 1])
    everything = np.concatenate(direct)
    idx = np.array([11, 0, 5, 4, 10, 3])
    np.testing.assert_array_equal(store.get(idx), everything[idx])
    np.testing.assert_array_equal(store[7], everything[7])
    np.testing.assert_array_equal(store.labels[idx], [2, 0, 1, 1, 2, 0])
    np.testing.assert_array_equal(np.concatenate(list(store.batches(5))), everything)
    reopened = sc.WindowStore.from_paths([rec.path for rec in recs])
    np.testing.assert_array_equal(reopened.get(idx), everything[idx])
    with pytest.raises(NNLabError, match="out of range"):
        store.get([12])


def test_a_store_of_many_recordings_holds_few_files_open(tmp_path):
    """A patient's recordings may outnumber the files a process may open: the cached
    recordings hold no map, and a store keeps only its `open_maps` last read open, reading every
    window right under a soft limit far below the number of recordings."""
    import resource

    fs, cfg = 128.0, SpectralConfig()
    recs, direct = [], []
    for i in range(120):
        path, x = _recording(tmp_path, f"r{i}", seconds=12, seed=i)
        recs.append(sc.prepare_cached(path, lambda p=path: np.load(p), fs, cfg, tmp_path / "c"))
        direct.append(prepare_windows(x, fs, cfg))
    everything = np.concatenate(direct)
    store = sc.WindowStore(recs, open_maps=8)
    order = rng(1).permutation(len(store))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    busy = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 30
    resource.setrlimit(resource.RLIMIT_NOFILE, (busy + 40, hard))  # fewer than 120 recordings
    try:
        got = np.concatenate([store.get(order[i : i + 50]) for i in range(0, len(order), 50)])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    np.testing.assert_array_equal(got, everything[order])
    assert len(store._maps) == 8


# ---- k-of-n alarms -------------------------------------------------------------------------------
def test_k_of_n_counts_against_a_loop():
    pred = rng().random(200) < 0.6
    want = [pred[max(0, i - 29) : i + 1].sum() for i in range(200)]
    np.testing.assert_array_equal(k_of_n_counts(pred, 30), want)


def test_k_of_n_alarm_indices_and_refractory():
    #       0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
    pred = [0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    # at least 3 of the last 4 at 4 (1,1,0,1), 5, 6, 7, 8 (1,1,1,0), 14 (0,1,1,1), 15
    satisfied = [4, 5, 6, 7, 8, 14, 15]
    assert list(np.flatnonzero(k_of_n_counts(np.array(pred), 4) >= 3)) == satisfied
    index = np.arange(16.0)  # times in windows: the refractory period counts windows

    def alarms(refractory, times=index):
        return list(k_of_n_alarms(pred, times, k=3, n=4, refractory=refractory))

    assert alarms(0) == satisfied
    assert alarms(3) == [4, 7, 14]  # 5, 6 within 3 windows of 4; 8 within 3 of 7
    assert alarms(10) == [4, 14]
    assert alarms(11) == [4, 15]  # 14 is still within 11 windows of 4
    # times in seconds: window ends of 5-s windows, refractory 15 s = 3 windows
    assert alarms(15.0, 5.0 * np.arange(1, 17)) == [4, 7, 14]

    # episodes: one alarm per run of satisfying windows (4-8, 14-15), then the refractory period;
    # a run that starts inside it raises its alarm at its first window after it, if any
    def episodes(refractory):
        return list(k_of_n_alarms(pred, index, k=3, n=4, refractory=refractory, episodes=True))

    assert episodes(0) == episodes(10) == [4, 14]
    assert episodes(11) == [4, 15]
    assert episodes(12) == [4]  # the second run ends (window 15) before 4 + 12
    ends = 5.0 * np.arange(1, 401)
    assert len(k_of_n_alarms(np.ones(23, bool), ends[:23])) == 0  # 24 of 30 needs 24 windows
    # the default refractory period is the SOP, 1800 s = 360 windows of 5 s
    np.testing.assert_array_equal(k_of_n_alarms(np.ones(400, bool), ends), [23, 383])
    np.testing.assert_array_equal(warning_intervals([10.0], sop=30, sph=5), [[15.0, 45.0]])
    with pytest.raises(NNLabError, match="k <= n"):
        k_of_n_alarms(pred, index, k=5, n=4)


# ---- seizure metrics -----------------------------------------------------------------------------
def test_event_metrics_on_a_hand_made_timeline():
    sop, sph = 1800.0, 300.0
    onsets = np.array([10_000.0, 50_000.0])
    # seizure 1's alarm window: [10000 - 2100, 10000 - 300) = [7900, 9700)
    alarms = np.array([7_900.0, 20_000.0, 49_800.0, 70_000.0])
    np.testing.assert_array_equal(sm.predicted_seizures(alarms, onsets, sop, sph), [True, False])
    # 49,800 is within SPH of the second seizure: too late to predict it, but not false
    assert sm.event_sensitivity([9_700.0], onsets, sop, sph) == 0.0  # the window is half-open
    assert sm.event_sensitivity(alarms, onsets, sop, sph) == 0.5
    np.testing.assert_array_equal(sm.false_alarms(alarms, onsets, sop, sph), [0, 1, 0, 1])
    interictal = np.array([[15_000.0, 40_000.0], [60_000.0, 78_000.0], [70_000.0, 75_000.0]])
    # interictal: 25,000 s + 18,000 s = 43,000 s; false alarms inside: 20,000 and 70,000
    assert sm.false_prediction_rate(alarms, onsets, interictal, sop, sph) == pytest.approx(
        2 / (43_000 / 3600)
    )
    warn = warning_intervals(alarms, sop)  # [a, a + 1800)
    recorded = np.array([[0.0, 60_000.0], [65_000.0, 71_000.0]])  # 66,000 s
    # in warning: 1800 + 1800 + 1800 + 1000 (70,000-71,000 clipped by the recording's end)
    assert sm.time_in_warning(warn, recorded) == pytest.approx(6_400 / 66_000)
    np.testing.assert_array_equal(
        sm.interval_union(np.array([[5.0, 7.0], [0.0, 2.0], [1.0, 3.0], [3.0, 4.0]])),
        [[0.0, 4.0], [5.0, 7.0]],
    )


def test_alarms_matched_to_annotated_seizures():
    seizures = np.array([[100.0, 160.0], [400.0, 430.0], [900.0, 950.0]])
    alarms = np.array([50.0, 118.0, 125.0, 445.0, 700.0])
    # detection: the first alarm within [onset, offset + after]; 445 is 15 s past the second
    # seizure's end, inside after = 18 s (a window ending then still read the seizure)
    latency, false = sm.match_alarms(alarms, seizures, after=18.0)
    np.testing.assert_array_equal(latency, [18.0, 45.0, np.nan])
    np.testing.assert_array_equal(false, [True, False, False, False, True])
    latency, false = sm.match_alarms(alarms, seizures)  # no allowance: 445 is false
    np.testing.assert_array_equal(latency, [18.0, np.nan, np.nan])
    np.testing.assert_array_equal(false, [True, False, False, True, True])
    # prediction: alarms up to `before` ahead of the onset count, with a negative latency
    latency, false = sm.match_alarms(alarms, seizures, before=60.0)
    np.testing.assert_array_equal(latency, [-50.0, np.nan, np.nan])
    np.testing.assert_array_equal(false, [False, False, False, True, True])
    latency, false = sm.match_alarms([], seizures)
    assert np.isnan(latency).all() and false.shape == (0,)
    with pytest.raises(NNLabError, match="ends before it starts"):
        sm.match_alarms(alarms, np.array([[10.0, 5.0]]))


def test_segment_scores_against_sklearn():
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    true = rng(3).random(300) < 0.3
    score = true * 0.5 + rng(4).random(300)
    pred = score > 0.7
    s = sm.segment_scores(pred, true)
    assert s["sensitivity"] == pytest.approx(recall_score(true, pred))
    assert s["specificity"] == pytest.approx(recall_score(~true, ~pred))
    assert s["precision"] == pytest.approx(precision_score(true, pred))
    assert s["accuracy"] == pytest.approx((pred == true).mean())
    assert sm.segment_auc(score, true) == pytest.approx(roc_auc_score(true, score))
    assert sm.segment_scores([1, 1, 0, 0], [1, 0, 0, 0]) == {
        "sensitivity": 1.0,
        "specificity": 2 / 3,
        "precision": 0.5,
        "accuracy": 0.75,
    }
    assert np.isnan(sm.segment_auc([0.1, 0.2], [0, 0]))


# ---- baseline features ---------------------------------------------------------------------------
def test_baseline_features_against_a_per_segment_loop():
    fs = 173.61
    x = rng(5).standard_normal((4, 2, 4097)) * np.array([1.0, 3.0])[:, None]  # (S, C, N)
    feats = baseline_features(x, fs)
    assert feats.shape == (4, 2, 8) and len(FEATURE_NAMES) == 8
    for s in range(4):
        for c in range(2):
            seg = x[s, c]
            f, S = scipy.signal.welch(seg, fs=fs, nperseg=round(2 * fs))
            bands = [
                np.log(S[(f >= lo) & (f < hi)].sum() * (f[1] - f[0]) + 1e-12) for lo, hi in BANDS
            ]
            centred = seg - seg.mean()
            crossings = sum((centred[i] >= 0) != (centred[i + 1] >= 0) for i in range(len(seg) - 1))
            want = [
                *bands,
                seg.std(),
                np.abs(np.diff(seg)).sum() / (len(seg) - 1),
                crossings / (len(seg) - 1),
            ]
            np.testing.assert_allclose(feats[s, c], want, rtol=1e-10)
    # white noise: the band powers scale with the band widths (3.5, 4, 5, 17, 30 Hz)
    white = baseline_features(rng(6).standard_normal((200, 4097)), fs)[:, :5].mean(axis=0)
    widths = np.array([hi - lo for lo, hi in BANDS])
    np.testing.assert_allclose(white - white[-1], np.log(widths / widths[-1]), atol=0.1)


def test_cache_files_have_the_default_permissions(tmp_path):
    path, _ = _recording(tmp_path, seconds=10)
    rec = sc.prepare_cached(path, lambda: np.load(path), 128.0, SpectralConfig(), tmp_path / "c")
    mask = os.umask(0)
    os.umask(mask)
    assert rec.path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_line_frequency_finds_the_mains_in_the_data(tmp_path):
    import warnings

    from nnlab.data.synthetic import EEGSynthConfig, make_chbmit_folder
    from nnlab.signal.spectral import SpectralConfig, line_frequency, mains_mismatch
    from nnlab.tasks.seizure import SeizureConfig, prepare_patient

    fs = 256.0
    t = np.arange(int(90 * fs)) / fs
    noise = np.cumsum(rng(0).normal(size=(3, len(t))), axis=1) * 0.2 + rng(1).normal(
        0, 5, (3, len(t))
    )
    assert line_frequency(noise, fs) is None  # no line noise (filtered before it was stored)
    for f in (50.0, 60.0):
        assert line_frequency(noise + 5 * np.sin(2 * np.pi * f * t), fs) == f
    both = noise + 5 * np.sin(2 * np.pi * 50 * t) + 1.5 * np.sin(2 * np.pi * 60 * t)
    assert line_frequency(both, fs) == 50.0  # the more prominent
    assert line_frequency(noise[:, ::3], fs / 3) is None  # 85 Hz: neither below Nyquist - 6
    hum = noise + 5 * np.sin(2 * np.pi * 50 * t)
    message = mains_mismatch(hum, fs, SpectralConfig(mains=60.0), "rec.edf")
    assert (
        message
        == "rec.edf: line noise at 50 Hz, but the notch is set for 60 Hz (--mains 50 removes it)"
    )
    assert mains_mismatch(hum, fs, SpectralConfig(mains=50.0), "rec.edf") is None
    assert mains_mismatch(hum, fs, SpectralConfig(notch=False), "rec.edf") is None

    # prepare says so, once, for a recording made where the mains is 50 Hz
    make_chbmit_folder(tmp_path, "chb01", n_files=2, hours=0.05, cfg=EEGSynthConfig(line_hz=50.0))
    base = dict(data=str(tmp_path), patient="chb01", interictal_gap_s=30.0)
    with pytest.warns(UserWarning, match="line noise at 50 Hz, but the notch is set for 60 Hz"):
        prepare_patient(SeizureConfig(**base, cache=str(tmp_path / "c60")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare_patient(SeizureConfig(**base, mains=50.0, cache=str(tmp_path / "c50")))
    assert not [w for w in caught if "line noise" in str(w.message)]


def test_implausible_amplitudes_are_named():
    from nnlab.signal.spectral import implausible_amplitude

    rng = np.random.default_rng(0)
    eeg = 30 * rng.standard_normal((4, 2560))
    assert implausible_amplitude(eeg, "uV") is None
    assert implausible_amplitude(np.concatenate([eeg, np.zeros((9, 2560))]), "flat") is None
    assert "in volts or millivolts?" in implausible_amplitude(eeg * 1e-6, "volts")
    assert "smaller than microvolts" in implausible_amplitude(eeg * 1e3, "nanovolts")
    assert implausible_amplitude(np.zeros((2, 10)), "flat") is None


def test_missing_band_warns_when_the_recording_is_slower_than_the_bins_read():
    from nnlab.signal.spectral import SpectralConfig, missing_band

    cfg = SpectralConfig()  # 1-Hz bins to Nyquist, 60-Hz notch: 114 bins at 256 Hz
    why = missing_band(200.0, 256.0, cfg, "a.edf")
    assert why.startswith("a.edf: recorded at 200 Hz, below the model's 256 Hz: 21 of the 114")
    assert "(101-128 Hz)" in why and "--fmax below 100" in why
    assert missing_band(256.0, 256.0, cfg, "a.edf") is None  # same rate
    assert missing_band(512.0, 256.0, cfg, "a.edf") is None  # faster: downsampled
    assert missing_band(100.0, 256.0, SpectralConfig(fmax=40.0), "a.edf") is None  # reads <= 40 Hz
    # a few edge bins are let pass (5%): 250 Hz (TUH's rate) lacks 3 of 114, 79 Hz 1 of 40
    assert missing_band(250.0, 256.0, cfg, "a.edf") is None
    assert missing_band(79.0, 256.0, SpectralConfig(fmax=40.0), "a.edf") is None
    assert "3 of the 40 frequency bins it reads (38-40 Hz)" in missing_band(
        75.0, 256.0, SpectralConfig(fmax=40.0), "a.edf"
    )
