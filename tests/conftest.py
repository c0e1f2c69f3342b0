"""Shared fixtures. Every test gets its own empty cache and no NNLAB_DATA unless it asks for the
real data (`real_data`), which skips cleanly when ../shared/data (or $NNLAB_DATA) is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_REAL_DATA = Path(os.environ.get("NNLAB_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def real_data(monkeypatch) -> Path:
    if not _REAL_DATA.is_dir():
        pytest.skip(f"real data folder {_REAL_DATA} not present")
    monkeypatch.setenv("NNLAB_DATA", str(_REAL_DATA))
    return _REAL_DATA


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty NNLAB_DATA folder for generated fixture files."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("NNLAB_DATA", str(d))
    return d


def marked_discontinuous(raw: bytes, gap_after: int | None = None, gap_s: float = 2.0) -> bytes:
    """An EDF+ file's bytes marked EDF+D (BDF+D); with `gap_after`, the records after that one
    moved `gap_s` later in time: their time-keeping annotations ('+onset' 0x14 0x14) rewritten."""
    out = bytearray(raw)
    out[192:197] = b"BDF+D" if raw[:1] == b"\xff" else b"EDF+D"
    if gap_after is None:
        return bytes(out)
    ns, header = int(raw[252:256]), int(raw[184:192])
    labels = [raw[256 + 16 * i : 256 + 16 * (i + 1)].decode().strip() for i in range(ns)]
    per = [int(raw[256 + 216 * ns + 8 * i : 256 + 216 * ns + 8 * (i + 1)]) for i in range(ns)]
    width = 3 if raw[:1] == b"\xff" else 2
    a = next(i for i, lab in enumerate(labels) if lab.endswith("Annotations"))
    offset, size = sum(per[:a]) * width, per[a] * width
    record_s, records = float(raw[244:252]), (len(raw) - header) // (sum(per) * width)
    for k in range(gap_after + 1, records):
        at = header + k * sum(per) * width + offset
        tal = f"+{k * record_s + gap_s:g}".encode() + b"\x14\x14\x00"
        out[at : at + size] = tal.ljust(size, b"\x00")
    return bytes(out)


@pytest.fixture
def edf_plus_d():
    """`marked_discontinuous`: an EDF+ file's bytes as EDF+D, with or without a gap."""
    return marked_discontinuous
