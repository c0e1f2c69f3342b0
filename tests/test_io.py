"""Atomic writes and the JSON-lines log."""

from __future__ import annotations

import pytest

from nnlab.errors import NNLabError
from nnlab.io import append_jsonl, atomic_open, atomic_write_json, atomic_write_text, read_jsonl


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [q.name for q in p.parent.iterdir()] == ["f.txt"]


def test_interrupted_write_keeps_old_file_and_no_temp(tmp_path):
    p = tmp_path / "ckpt.bin"
    atomic_write_text(p, "old content")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(p, "wb") as f:
            f.write(b"half of the new")
            raise KeyboardInterrupt  # the process is interrupted mid-write
    assert p.read_text() == "old content"
    assert [q.name for q in tmp_path.iterdir()] == ["ckpt.bin"]


def test_jsonl_torn_last_line_is_dropped(tmp_path):
    p = tmp_path / "m.jsonl"
    append_jsonl(p, {"epoch": 1, "loss": 0.5})
    append_jsonl(p, {"epoch": 2, "loss": 0.25})
    with open(p, "a") as f:
        f.write('{"epoch": 3, "lo')  # killed while writing
    assert read_jsonl(p) == [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    p.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(NNLabError, match="line 2"):
        read_jsonl(p)


def test_atomic_json_is_sorted_and_readable(tmp_path):
    atomic_write_json(tmp_path / "c.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "c.json").read_text().startswith('{\n  "a"')


def test_atomic_files_get_normal_permissions(tmp_path):
    """mkstemp creates 0600 files; reports and checkpoints must read like any other file."""
    import nnlab.io

    nnlab.io.atomic_write_text(tmp_path / "r.html", "x")
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o666 & ~nnlab.io.UMASK
    assert 0o666 & ~nnlab.io.UMASK != 0o600  # holds under the usual umasks (022, 002)
