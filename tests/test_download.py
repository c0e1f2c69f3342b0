"""The download path for real, against an HTTP server on 127.0.0.1 serving files from a temp dir."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from nnlab.cli import main
from nnlab.data import registry
from nnlab.data.registry import DatasetInfo, RemoteFile, fetch, verify
from nnlab.errors import NNLabError

GOOD = bytes(range(256)) * 400  # 102400 bytes


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path.endswith("/cut.bin"):  # announces the full size, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[: len(GOOD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.bin").write_bytes(GOOD)
    (root / "short.bin").write_bytes(GOOD[:1000])  # a truncated file, served faithfully
    (root / "bad.bin").write_bytes(GOOD[:-1] + b"\x00")  # same size, one byte corrupted
    handler = type("H", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(root), **k)
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake_dataset(monkeypatch, server):
    base, _ = server
    sha = hashlib.sha256(GOOD).hexdigest()

    def register(*names: str) -> DatasetInfo:
        files = tuple(RemoteFile(n, f"{base}/{n}", sha, len(GOOD)) for n in names)
        info = DatasetInfo("fake", "test data", "fake", files)
        monkeypatch.setitem(registry.REGISTRY, "fake", info)
        return info

    return register


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_good_download_is_verified_and_not_repeated(fake_dataset, server):
    fake_dataset("good.bin")
    _, handler = server
    (path,) = fetch("fake")
    assert path.read_bytes() == GOOD
    assert path.parent == registry.cache_dir() / "fake"
    assert [s.status for s in verify("fake")] == ["ok"]
    assert fetch("fake") == [path]
    assert handler.requests == ["/good.bin"]  # present and intact: not downloaded again
    fetch("fake", force=True)
    assert len(handler.requests) == 2


@pytest.mark.parametrize(
    "remote,message",
    [
        ("short.bin", "downloaded 1000 bytes, expected 102400"),
        ("bad.bin", "checksum mismatch"),
        ("cut.bin", "truncated"),
        ("missing.bin", "HTTP 404"),
    ],
)
def test_failed_download_leaves_nothing(fake_dataset, server, remote, message):
    base, _ = server
    fake_dataset("data.bin")
    with pytest.raises(NNLabError, match=message):
        _fetch_from(base, remote)
    assert _leftovers(registry.cache_dir()) in ([], ["fake"])  # no file, no temp file


def _fetch_from(base: str, remote: str):
    """Fetch dataset 'fake' whose one file 'data.bin' is served under the name `remote`."""
    info = registry.REGISTRY["fake"]
    f = info.files[0]
    return registry.download(
        f"{base}/{remote}", registry.cache_dir() / info.folder / f.name, f.sha256, f.size
    )


def test_corrupt_cached_file_is_replaced(fake_dataset):
    info = fake_dataset("good.bin")
    dest = registry.cache_dir() / info.folder / "good.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"garbage")
    assert [s.status for s in verify("fake")] == ["mismatch"]
    fetch("fake")
    assert dest.read_bytes() == GOOD


def test_cli_fetch_with_mirror_and_verify(fake_dataset, server, capsys):
    base, _ = server
    fake_dataset("good.bin")
    registry.REGISTRY["fake"] = DatasetInfo(
        "fake",
        "d",
        "fake",
        (
            RemoteFile(
                "good.bin",
                "http://127.0.0.1:9/nowhere/good.bin",
                hashlib.sha256(GOOD).hexdigest(),
                len(GOOD),
            ),
        ),
    )
    with pytest.raises(SystemExit) as e:
        main(["datasets", "fetch", "fake", "--mirror", base])
    assert e.value.code == 0
    assert (registry.cache_dir() / "fake" / "good.bin").read_bytes() == GOOD
    with pytest.raises(SystemExit) as e:
        main(["datasets", "verify", "fake"])
    assert e.value.code == 0 and "ok" in capsys.readouterr().out


def test_cli_fetch_failure_is_one_line(fake_dataset, server, capsys):
    base, _ = server
    fake_dataset("bad.bin")
    with pytest.raises(SystemExit) as e:
        main(["datasets", "fetch", "fake"])
    err = capsys.readouterr().err
    assert e.value.code == 1
    assert err.startswith("nnlab: error: bad.bin: checksum mismatch") and err.count("\n") == 1


def test_nnlab_data_files_are_used_without_download(fake_dataset, server, tmp_path, monkeypatch):
    _, handler = server
    fake_dataset("good.bin")
    local = tmp_path / "mine" / "fake"
    local.mkdir(parents=True)
    (local / "good.bin").write_bytes(GOOD)
    monkeypatch.setenv("NNLAB_DATA", str(tmp_path / "mine"))
    assert fetch("fake") == [local / "good.bin"]
    assert handler.requests == []


def test_a_damaged_copy_in_nnlab_data_read_first_is_named(fake_dataset, tmp_path, monkeypatch):
    """NNLAB_DATA's copy is read before the cache's: a damaged one there, fetched again into the
    cache, would still be read. Fetch says so (before, it said "ok" and training kept failing).
    A local folder is a mirror too (before, 'unknown url type')."""
    info = fake_dataset("good.bin")
    data = tmp_path / "data"
    (data / info.folder).mkdir(parents=True)
    (data / info.folder / "good.bin").write_bytes(b"garbage")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "good.bin").write_bytes(GOOD)
    monkeypatch.setenv("NNLAB_DATA", str(data))
    with pytest.raises(NNLabError, match="good.bin is damaged .* read before the good copy"):
        fetch("fake", mirror=str(mirror))
    assert (registry.cache_dir() / info.folder / "good.bin").read_bytes() == GOOD
    (data / info.folder / "good.bin").unlink()
    assert fetch("fake", mirror=str(mirror)) == [registry.cache_dir() / info.folder / "good.bin"]
