"""Prepared windows cached on disk, one memory-mapped `.npy` per recording, read lazily.

A patient's tens of hours of prepared windows (about 68 MB per hour of 23-channel EEG at the
default `SpectralConfig`) never have to be in memory at once: `prepare_cached` streams a
recording's windows, a chunk at a time, into a `.npy` file and `WindowStore` reads windows
on demand from many such files.

- The cache file is named by a key: a hash of the preprocessing (sampling rate, `SpectralConfig`,
  window starts, anything else the loader depends on) and the source file's identity (resolved
  path, size, modification time), so a changed parameter or a rewritten file makes a new entry.
- Atomic: the array is written to a temporary file in the cache folder and renamed onto its name
  only when complete (after its metadata), so the name holds a whole array or nothing.
- Checked before use: a file whose header, size or metadata does not match (truncated, corrupt,
  from an interrupted copy) is rebuilt, never read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.errors import NNLabError
from nnlab.io import atomic_npy, npy_problem, source_identity
from nnlab.signal.spectral import SpectralConfig, prepare_chunk, window_starts

CACHE_VERSION = 1  # bump when the preprocessing code changes what it writes


def cache_key(
    identity: dict[str, Any],
    fs: float,
    cfg: SpectralConfig,
    starts: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
) -> str:
    """16 hex digits of SHA-256 over the source identity, the sampling rate, the spectral
    configuration, the window starts (None: cfg's regular windows) and any loader parameters
    (channels, resampling) in `params` (JSON-serialisable)."""
    payload = {
        "version": CACHE_VERSION,
        "source": identity,
        "fs": float(fs),
        "spectral": cfg.to_dict(),
        "starts": None
        if starts is None
        else hashlib.sha256(np.asarray(starts, dtype=np.int64).tobytes()).hexdigest(),
        "params": params or {},
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedRecording:
    """One recording's prepared windows on disk: `windows` (W, C, T, F) float32, a read-only
    memory map opened when asked for (`shape` says its shape); starts (W,) their first samples
    at fs; freqs (F,) Hz. No map is held open: each holds a file descriptor, and a patient may
    have more recordings than a process may open files."""

    path: Path
    shape: tuple[int, ...]  # (W, C, T, F)
    starts: np.ndarray
    fs: float
    freqs: np.ndarray
    key: str

    @property
    def windows(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")

    def __len__(self) -> int:
        return int(self.shape[0])


def cache_paths(
    cache_dir: str | os.PathLike, source: str | os.PathLike, key: str
) -> tuple[Path, Path]:
    """(the windows' .npy, its metadata .json) for a source file and key."""
    stem = f"{Path(source).stem}-{key}"
    return Path(cache_dir) / f"{stem}.npy", Path(cache_dir) / f"{stem}.json"


def open_cached(npy: str | os.PathLike, key: str | None = None) -> CachedRecording:
    """Open a cache entry lazily (np.load with mmap_mode="r"), after checking it is whole: the
    metadata's key (when given) and shape agree with the file and its size with its header.
    Raises NNLabError naming what is wrong."""
    npy = Path(npy)
    meta_path = npy.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NNLabError(f"{meta_path}: no readable cache metadata ({e})") from None
    if key is not None and meta.get("key") != key:
        raise NNLabError(f"{npy}: cache key {meta.get('key')} is not {key}")
    problem = npy_problem(npy, tuple(meta["shape"]))
    if problem is not None:
        raise NNLabError(f"{npy}: {problem}")
    return CachedRecording(
        path=npy,
        shape=tuple(int(n) for n in meta["shape"]),
        starts=np.asarray(meta["starts"], dtype=np.int64),
        fs=float(meta["fs"]),
        freqs=np.asarray(meta["freqs"], dtype=np.float64),
        key=meta["key"],
    )


def prepare_cached(
    source: str | os.PathLike,
    load: Callable[[], np.ndarray] | None,
    fs: float,
    cfg: SpectralConfig,
    cache_dir: str | os.PathLike,
    *,
    starts: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    chunk: int = 64,
    read: Callable[[int, int], np.ndarray] | None = None,
) -> CachedRecording:
    """The prepared windows of the recording in `source`, from the cache when a whole entry with
    the same key exists, else computed and cached.

    load() returns the recording x (C, N) at fs Hz and is called only on a cache miss; `params`
    must name everything load() depends on besides the file (channels, resampling rate). Windows
    are transformed `chunk` at a time and written straight to a temporary .npy in cache_dir,
    which is renamed onto its final name when complete: peak memory is the recording plus one
    chunk, whatever the number of recordings cached before. With `read` instead of `load` (and
    `starts` given), read(a, b) returns the samples [a, b) (C, b - a) at fs and is called once
    per chunk of windows: peak memory is one chunk's stretch, whatever the recording's length."""
    if (load is None) == (read is None) or (read is not None and starts is None):
        raise ValueError("prepare_cached needs load, or read and starts")
    key = cache_key(source_identity(source), fs, cfg, starts, params)
    npy, _ = cache_paths(cache_dir, source, key)
    if npy.exists():
        with contextlib.suppress(NNLabError):
            return open_cached(npy, key)
        # not whole (truncated, corrupt, no metadata): rebuilt below, never used
    L = cfg.window_length(fs)
    freqs = cfg.freqs(fs)
    if read is not None:
        starts = np.asarray(starts, dtype=np.int64)
        if np.any(np.diff(starts) < 0):
            raise ValueError("prepare_cached with read needs ascending starts")

        def block(part: np.ndarray) -> np.ndarray:  # one stretch read for the chunk's windows
            a = int(part[0])
            return prepare_chunk(np.asarray(read(a, int(part[-1]) + L)), fs, cfg, part - a)

        # the channel count comes with the first chunk
        first = block(starts[:chunk]) if len(starts) else None
        C = first.shape[1] if first is not None else 0
    else:
        x = np.asarray(load())
        if x.ndim != 2:
            raise NNLabError(
                f"{source}: the loader returned shape {x.shape}, not (channels, samples)"
            )
        C, N = x.shape
        if starts is None:
            starts = window_starts(N, fs, cfg.window_s, cfg.hop_s)
        starts = np.asarray(starts, dtype=np.int64)

        def block(part: np.ndarray) -> np.ndarray:
            return prepare_chunk(x, fs, cfg, part)

        first = None
    shape = (len(starts), C, cfg.frames(fs), len(freqs))  # (W, C, T, F)

    with atomic_npy(npy, shape) as (write, meta):
        for i in range(0, len(starts), chunk):
            write(first if i == 0 and first is not None else block(starts[i : i + chunk]))
        meta.update(
            key=key,
            version=CACHE_VERSION,
            source=source_identity(source),
            fs=float(fs),
            spectral=cfg.to_dict(),
            params=params or {},
            shape=list(shape),
            starts=starts.tolist(),
            freqs=freqs.tolist(),
        )
    return open_cached(npy, key)


class WindowStore:
    """Many recordings' cached windows as one sequence of N = sum_r W_r windows, read on demand.

    Global window i is window w = i - offsets[r] of recording r, offsets[r] = sum_{q<r} W_q;
    `locate` maps indices to (recording, window) and `get` reads a batch (B, C, T, F) from the
    memory maps, one fancy-indexed read per recording touched, so only the requested windows are
    ever read from disk. At most `open_maps` recordings' maps are open at once (the ones read
    last): a patient's hundreds of recordings stay under any limit on open files. NumPy only (a
    torch Dataset wraps it in the task)."""

    def __init__(
        self,
        recordings: Sequence[CachedRecording | np.ndarray],
        labels: Sequence[np.ndarray] | None = None,
        open_maps: int = 64,
    ):
        from collections import OrderedDict

        self.recordings = list(recordings)
        shapes_all = [tuple(r.shape) for r in self.recordings]
        shapes = {s[1:] for s in shapes_all if s and s[0]}
        if any(len(s) != 4 for s in shapes_all) or len(shapes) > 1:
            raise NNLabError(
                f"WindowStore needs (W, C, T, F) windows of one (C, T, F), got {shapes_all}"
            )
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()  # recording -> its open map
        self.open_maps = max(1, open_maps)
        counts = np.array([s[0] for s in shapes_all], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])  # (R + 1,)
        self.window_shape = shapes.pop() if shapes else None
        self.labels = None
        if labels is not None:
            if len(labels) != len(self.recordings) or any(
                len(lab) != n for lab, n in zip(labels, counts)
            ):
                raise NNLabError(
                    "WindowStore labels must give one label per window of each recording"
                )
            self.labels = (
                np.concatenate([np.asarray(lab) for lab in labels]) if len(labels) else None
            )

    def array(self, r: int) -> np.ndarray:
        """Recording r's windows (W, C, T, F): an array given as one, or its memory map, opened
        here and kept among the `open_maps` read last."""
        rec = self.recordings[r]
        if not isinstance(rec, CachedRecording):
            return rec
        if r in self._maps:
            self._maps.move_to_end(r)
        else:
            self._maps[r] = rec.windows
            while len(self._maps) > self.open_maps:
                self._maps.popitem(last=False)  # its map closes when nothing holds it
        return self._maps[r]

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike], **kw) -> WindowStore:
        return cls([open_cached(p) for p in paths], **kw)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, indices: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Global indices (B,) -> (recording (B,), window within it (B,))."""
        i = np.asarray(indices, dtype=np.int64)
        if i.size and (i.min() < 0 or i.max() >= len(self)):
            raise NNLabError(f"window index out of range [0, {len(self)})")
        r = np.searchsorted(self.offsets, i, side="right") - 1
        return r, i - self.offsets[r]

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Windows (B, C, T, F) float32 for global indices (B,), in the order given."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.window_shape is None:
            raise NNLabError("WindowStore is empty")
        out = np.empty((len(idx), *self.window_shape), dtype=np.float32)  # (B, C, T, F)
        rec, win = self.locate(idx)
        for r in np.unique(rec):
            sel = np.flatnonzero(rec == r)
            order = np.argsort(win[sel], kind="stable")  # ascending reads from the memory map
            out[sel[order]] = self.array(int(r))[win[sel[order]]]
        return out

    def __getitem__(self, i: int) -> np.ndarray:
        """One window (C, T, F)."""
        return self.get([int(i)])[0]

    def batches(self, batch: int = 256, indices: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """(b, C, T, F) chunks of the given indices (default: all windows in order), e.g. for
        `Normalizer.fit` on the training windows only."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        for j in range(0, len(idx), batch):
            yield self.get(idx[j : j + batch])
