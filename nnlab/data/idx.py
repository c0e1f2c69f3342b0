"""The IDX file format (MNIST): a big-endian header, then the raw array.

    magic: 0x00 0x00 <dtype code> <ndim>, then ndim uint32 sizes, then the data (C order).
Files may be gzipped (the official distribution) or not.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from nnlab.errors import NNLabError
from nnlab.io import atomic_write_bytes

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise NNLabError(f"{path}: corrupt or truncated gzip file ({e})") from None
    except OSError as e:
        raise NNLabError(f"{path}: cannot read ({e.strerror or e})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (gzipped or not) into an array; NNLabError if it is malformed."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise NNLabError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    offset = 4 + 4 * ndim
    if ndim == 0 or len(raw) < offset:
        raise NNLabError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise NNLabError(
            f"{path}: IDX header says {dims} ({expected} bytes of data) but the file holds "
            f"{len(raw) - offset} bytes (truncated or corrupt)"
        )
    data = np.frombuffer(raw, dtype, offset=offset).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write `array` as IDX (gzipped when the name ends in .gz); used for fixtures and exports."""
    path = Path(path)
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in _CODES:
        raise NNLabError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, _CODES[dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(dtype).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
