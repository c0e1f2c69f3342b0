"""Atomic writes and the JSON-lines log."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_get_the_permissions_of_a_plain_open(tmp_path, monkeypatch, umask, mode):
    """mkstemp creates 0600 files; an atomic write must give what open() would under the
    process umask (read at import), so reports and checkpoints read like any other file."""
    import nnlab.io

    monkeypatch.setattr(nnlab.io, "UMASK", umask)
    nnlab.io.atomic_write_text(tmp_path / "r.html", "x")
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == mode


def test_claim_outputs_refuses_to_replace_without_overwrite(tmp_path):
    from nnlab.io import claim_outputs

    (tmp_path / "a.png").write_text("earlier result")
    claim_outputs([tmp_path / "b.png"])  # nothing there: fine
    with pytest.raises(NNLabError, match=r"a.png exists \(and 1 more\); use --overwrite"):
        claim_outputs([tmp_path / "b.png", tmp_path / "a.png", tmp_path / "a.png"])
    claim_outputs([tmp_path / "a.png"], overwrite=True)


def test_an_array_written_to_disk_is_whole_or_absent(tmp_path):
    """atomic_npy: the array and its metadata appear together when the block ends, every row
    written; an error in the block, or rows missing, leave neither, nor a temporary file;
    open_stored refuses another key and a cut-short array."""
    import numpy as np

    from nnlab.io import atomic_npy, open_stored

    path = tmp_path / "a.npy"
    with pytest.raises(RuntimeError), atomic_npy(path, (3, 4)) as (write, meta):
        write(np.ones((1, 4)))
        raise RuntimeError("interrupted")
    with (
        pytest.raises(ValueError, match="2 rows written of 3"),
        atomic_npy(path, (3, 4)) as (
            write,
            meta,
        ),
    ):
        write(np.ones((2, 4)))
    assert list(tmp_path.iterdir()) == []
    with atomic_npy(path, (3, 4)) as (write, meta):
        write(np.arange(8).reshape(2, 4))
        write(np.arange(8, 12).reshape(1, 4))
        meta.update(key="k", shape=[3, 4])
        assert not path.exists()  # not before the block ends
    assert json.loads(path.with_suffix(".json").read_text()) == {"key": "k", "shape": [3, 4]}
    x, meta = open_stored(path, "k")
    np.testing.assert_array_equal(x, np.arange(12).reshape(3, 4))
    assert open_stored(path, "other") is None and open_stored(tmp_path / "b.npy", "k") is None
    path.write_bytes(path.read_bytes()[:-4])
    assert open_stored(path, "k") is None


def test_too_little_disk_is_one_clear_error(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from nnlab.data.segments import disk_check

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(2**40, 2**40 - 2**30, 2**30))
    disk_check(tmp_path, 2**29, "the segments")
    with pytest.raises(NNLabError, match=r"the segments need about 2\.0 GiB .* 1\.0 GiB free"):
        disk_check(tmp_path, 2**31, "the segments")


def test_what_killed_runs_left_in_a_cache_is_swept_a_day_later(tmp_path):
    """sweep_stale removes temporary files and folders untouched for a day, and nothing else."""
    import os

    from nnlab.io import sweep_stale

    old_tmp, fresh_tmp = tmp_path / ".a.npy.x1.tmp", tmp_path / ".a.npy.x2.tmp"
    old_dir, kept = tmp_path / "tmpxyz", tmp_path / "a.npy"
    old_dir.mkdir()
    (old_dir / "0.npy").write_bytes(b"x")
    for path in (old_tmp, fresh_tmp, kept):
        path.write_bytes(b"x")
    for path in (old_tmp, old_dir, kept):
        os.utime(path, (0, 0))
    sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.npy.x2.tmp", "a.npy"]
    sweep_stale(tmp_path / "missing")  # no folder: nothing to do
