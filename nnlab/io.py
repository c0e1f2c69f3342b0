"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every cache, checkpoint, metrics file, figure and report goes through here: write to a temporary
file in the same directory (same filesystem, so the rename is atomic), fsync, then `os.replace`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnlab.errors import NNLabError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _current_umask()


def temporary_sibling(path: Path) -> tuple[int, str]:
    """(descriptor, name) of a new temporary file beside `path` (its folder made): where an
    atomic write goes before it is renamed onto `path`. NNLabError when it cannot be made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # a file where a folder should be, no permission, a read-only disk
        raise NNLabError(f"cannot write {path} ({e.strerror})") from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; rename it onto `path` only on success."""
    path = Path(path)
    fd, tmp = temporary_sibling(path)
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; the result should read like any file
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# Pillow refuses images over twice its MAX_IMAGE_PIXELS (179 Mpx) as "decompression bombs"
# and warns past it; a 200-Mpx phone photo is none
LARGE_IMAGE_PIXELS = 1_000_000_000


@contextlib.contextmanager
def large_images(pixels: int = LARGE_IMAGE_PIXELS):
    """Pillow's pixel limit raised to `pixels` (and its warning below that silenced) while
    images are opened; its own limit is put back after."""
    import warnings

    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def writable_folder(folder: str | os.PathLike, option: str = "--out") -> Path:
    """`folder`, made if need be, where files can be written: else an NNLabError naming the
    option, before any work is done (a result computed for a folder that cannot take it would be
    lost)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NNLabError(f"{option} {folder}: cannot make the folder ({e.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NNLabError(f"{option} {folder}: cannot write there (permission denied)")
    return folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line. A whole line is written with one `write` call and fsynced, so an
    interrupted run leaves at most an incomplete *last* line, which `read_jsonl` drops."""
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file; a torn final line (from a killed process) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise NNLabError(f"{path}: unreadable ({e})") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise NNLabError(f"{path}: line {i + 1} is not valid JSON") from None
        if not isinstance(record, dict):
            raise NNLabError(
                f"{path}: line {i + 1} is a JSON {type(record).__name__}, not an object"
            )
        records.append(record)
    return records


def claim_outputs(paths: list[Path], overwrite: bool = False) -> None:
    """Refuse, before anything is written, to replace an existing file unless `overwrite`: no
    command replaces an earlier result silently."""
    if overwrite:
        return
    existing = [p for p in paths if Path(p).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise NNLabError(f"{existing[0]} exists{more}; use --overwrite to replace it")


# ---- files on disk: identity, whole arrays ------------------------------------------------------
def source_identity(path: str | os.PathLike) -> dict[str, Any]:
    """The identity of a source file: resolved path, size in bytes, modification time (ns)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        raise NNLabError(f"cannot read {path}: {e.strerror}") from None
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def npy_problem(path: Path, shape: tuple[int, ...] | None) -> str | None:
    """Why the .npy at path cannot be used (None: it is whole and float32 of the given shape)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                hshape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                hshape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except (OSError, ValueError) as e:
        return f"unreadable header ({e})"
    if dtype != np.float32 or fortran:
        return f"dtype {dtype}, fortran order {fortran}"
    if shape is not None and tuple(hshape) != tuple(shape):
        return f"shape {hshape} instead of {shape}"
    expected = offset + int(np.prod(hshape)) * 4
    size = path.stat().st_size
    if size != expected:
        return f"{size} bytes instead of {expected} (truncated or corrupt)"
    return None


@contextlib.contextmanager
def atomic_npy(
    path: str | os.PathLike, shape: tuple[int, ...]
) -> Iterator[tuple[Callable[[np.ndarray], None], dict]]:
    """(write, meta) for a float32 .npy of `shape` at `path`, written whole or not at all.

    write(block) appends block's rows (block.shape[1:] == shape[1:]) to a temporary sibling,
    through the file rather than a memory map (a map's written pages count as the process's
    memory until they are written back, so it would grow with the file). On leaving the block
    without an error, every row written, the file is fsynced, the metadata `meta` (a dict the
    block fills) is written to path's .json, and only then the array is renamed onto `path`: the
    commit point. On an error nothing is left. So `path` holds a whole array whose metadata is
    beside it, or nothing, and the array is never in memory at once."""
    path = Path(path)
    fd, tmp = temporary_sibling(path)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~UMASK)
        rows = 0
        meta: dict = {}
        with open(tmp, "wb") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)}
            np.lib.format.write_array_header_2_0(f, header)

            def write(block: np.ndarray) -> None:
                nonlocal rows
                block = np.ascontiguousarray(block, dtype="<f4")
                if block.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"rows of shape {block.shape[1:]} for an array {shape}")
                f.write(block.tobytes())
                rows += len(block)

            yield write, meta
            if rows != shape[0]:
                raise ValueError(f"{path}: {rows} rows written of {shape[0]}")
            f.flush()
            os.fsync(f.fileno())
        atomic_write_json(path.with_suffix(".json"), meta)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def open_stored(path: str | os.PathLike, key: str) -> tuple[np.ndarray, dict] | None:
    """(the float32 .npy at `path` as a read-only memory map, its metadata) where both are whole:
    the .json beside it readable and of this `key`, the array of the shape it gives; None where
    anything is missing, cut short or of another key (to be rebuilt, never read)."""
    path = Path(path)
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        if meta.get("key") != key or npy_problem(path, tuple(meta["shape"])) is not None:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return np.load(path, mmap_mode="r"), meta


STALE_S = 24 * 3600  # a cache's temporary file or folder untouched this long: a killed run's


def sweep_stale(folder: Path, age_s: float = STALE_S) -> None:
    """Remove what runs killed while writing left in a cache `folder`: temporary files
    ('.NAME.*.tmp', as `atomic_open` and `atomic_npy` make them) and temporary folders ('tmp*'),
    untouched for `age_s` seconds (a run writing now touches its own)."""
    import shutil
    import time

    if not folder.is_dir():
        return
    old = time.time() - age_s
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime >= old:
                continue
            if path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink()
            elif path.is_dir() and path.name.startswith("tmp"):
                shutil.rmtree(path)
