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
