"""Where dataset files come from, where they live, and whether they are intact.

Each dataset lists its raw files with URL, size and sha256. A file is looked up, in order, in the
folders of `NNLAB_DATA` (raw files a user already has; several folders joined by ':') and in the
cache (`NNLAB_CACHE`, default ~/.cache/nnlab). `fetch` downloads what is missing into the cache:
to a temporary file first, renamed only after size and checksum match, so a failed or corrupted
download never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnlab.errors import NNLabError
from nnlab.io import UMASK


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str | None  # None: no public source we know; the user supplies the file via NNLAB_DATA
    sha256: str | None = None
    size: int | None = None
    optional: bool = False  # a dataset works with a subset of its optional files (NIST splits)
    extract: str | None = (
        None  # a zip archive that unpacks to this folder (used instead of the zip)
    )


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    folder: str  # sub-folder in the cache (and the usual name of the folder in NNLAB_DATA)
    files: tuple[RemoteFile, ...] = ()
    other_folders: tuple[str, ...] = ()  # other folder names it is often found under
    task: str = "classify"  # what it is labelled for: classify | segment

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_NIST26_URL = (
    "https://raw.githubusercontent.com/Delikitty/Computer-Vision-16720-CMU/master/"
    "Optical%20Character%20Recognition%20using%20Neural%20Networks/data/"
)
# Bonn sets as one .mat per set, in a public GitHub copy (files at the repository root, each URL
# pinned to a commit that holds it). The URLs were not downloaded from here (offline): the size
# and sha256 are those of the copy in ../shared/data/bonn-eeg and guard any download.
_BONN_URL = "https://raw.githubusercontent.com/Arvin-xd/Bonn_EEG_Singals_short_term_prediction/"

REGISTRY: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        "scikit-learn's bundled 8x8 handwritten digits, 1797 images, 10 classes (no download)",
        "digits",
    ),
    "mnist": DatasetInfo(
        "mnist",
        "MNIST handwritten digits, IDX format: 60000 train / 10000 test, 28x28 uint8",
        "mnist",
        files=(
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                _MNIST_URL + "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9912422,
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                _MNIST_URL + "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28881,
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                _MNIST_URL + "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1648877,
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4542,
            ),
        ),
    ),
    "nist": DatasetInfo(
        "nist",
        "CMU 16-720 NIST characters, MATLAB .mat: nist36_* (A-Z, 0-9) or nist26_* (A-Z), 32x32",
        "nist",
        files=(
            RemoteFile(
                "nist26_valid.mat",
                _NIST26_URL + "nist26_valid.mat",
                "e2ce8ff1178eb6636c2901093ef37b22df7214530bffe07ec4358e6c0b81f3c6",
                4103871,
                optional=True,
            ),
            *(
                RemoteFile(f"nist{k}_{split}.mat", None, optional=True)
                for k in (36, 26)
                for split in ("train", "valid", "test")
                if (k, split) != (26, "valid")
            ),
        ),
        other_folders=("nist26-cmu16720", "nist36"),
    ),
    "kvasir": DatasetInfo(
        "kvasir",
        "Kvasir-SEG polyps: 1000 colonoscopy JPEGs with binary masks (images/, masks/), "
        "332-1920 px",
        "kvasir-seg",
        files=(
            # the official archive; its checksum is not published, so it is checked as a zip
            # and by its layout (images/ and masks/ with matching names) instead
            RemoteFile(
                "kvasir-seg.zip",
                "https://datasets.simula.no/downloads/kvasir-seg.zip",
                extract="Kvasir-SEG",
            ),
        ),
        task="segment",
    ),
    "bonn": DatasetInfo(
        "bonn",
        "Bonn epilepsy EEG sets A (healthy), D (interictal), E (ictal): 100 single-channel "
        "segments each, 4097 samples at 173.61 Hz, MATLAB .mat",
        "bonn-eeg",
        files=tuple(
            RemoteFile(name, _BONN_URL + commit + "/" + name, sha256, size)
            for name, commit, sha256, size in (
                (
                    "Bonn_eeg_AZ_100.mat",
                    "c7e37ff0d64bbe24040490099a5138b7babccbf6",
                    "dac9b71f4e5433e0b2fda2f881cfe610f6d31e2f348f4e5873dcb4bcfa40662a",
                    506295,
                ),
                (
                    "Bonn_eeg_DF_100.mat",
                    "a819ec863626be4f237e47cc3c23fd2ca584c218",
                    "d4ffc3691c6f7f320f83553c42e22b126cb978ab39300c2e788a3df41ba119e2",
                    501227,
                ),
                (
                    "Bonn_eeg_E_100.mat",
                    "6b3c78dfc3cb3cc68e63ec342773d26b9b98dde7",
                    "b2e12378ed49e74f25f52dc3f936d4de1e2c9872317ac577cda026a291b986b2",
                    614492,
                ),
            )
        ),
        task="eeg",
    ),
    "chars74k": DatasetInfo(
        "chars74k",
        "Chars74K EnglishHnd hand-drawn characters (de Campos et al. 2009): 0-9, A-Z by 55 "
        "writers, 1200x900 PNGs under English/Hnd/Img; checked by the sha256 of its SHA256SUMS "
        "list (run `sha256sum -c SHA256SUMS` there for every image)",
        "chars74k-hnd",
        files=(
            # no public URL of this copy (see its SOURCE.md); the list of the 1980 images'
            # checksums, itself checksummed, pins the files
            RemoteFile(
                "SHA256SUMS",
                None,
                "2d3a3e47496dae720ffee12c57c2789e192690b6cd98bbce4fac0613fd151855",
                211860,
            ),
        ),
        other_folders=("chars74k", "EnglishHnd"),
        task="ocr",
    ),
}


def get_info(name: str, task: str | None = None) -> DatasetInfo:
    """The dataset `name`; with `task`, only among the datasets labelled for that task."""
    known = [k for k, v in REGISTRY.items() if task is None or v.task == task]
    if name not in known:
        hint = (
            f"; {name} is a {REGISTRY[name].task} dataset (nnlab {REGISTRY[name].task} ...)"
            if name in REGISTRY
            else ""
        )
        raise NNLabError(f"unknown dataset '{name}' (known: {', '.join(known)}){hint}")
    return REGISTRY[name]


def cache_dir() -> Path:
    return Path(os.environ.get("NNLAB_CACHE") or Path.home() / ".cache" / "nnlab")


# the cache's folders of what nnlab makes from data and makes again when it is missing (every
# entry is checked before use): `nnlab datasets cache --clean` removes their unused files
DERIVED = ("segments", "eeg-windows", "segmentation", "ocr_chars")


@dataclass(frozen=True)
class CachePart:
    """One folder of the cache: its files, their bytes, and when one was last read or written
    (None: no files)."""

    name: str
    files: int
    bytes: int
    last_used: float | None
    derived: bool


def last_used(path: Path) -> float:
    """When a file was last read or written: the later of its access and modification times
    (on a disk mounted noatime, its modification time alone)."""
    st = path.stat()
    return max(st.st_atime, st.st_mtime)


def cache_parts() -> list[CachePart]:
    """The cache's folders, in name order (downloaded datasets and what nnlab made)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    parts = []
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        files = [p for p in folder.rglob("*") if p.is_file()]
        used = [last_used(p) for p in files]
        parts.append(
            CachePart(
                folder.name,
                len(files),
                sum(p.stat().st_size for p in files),
                max(used) if used else None,
                folder.name in DERIVED,
            )
        )
    return parts


def clean_cache(
    older_than_days: float, parts: list[str] | None = None, dry_run: bool = False
) -> tuple[int, int]:
    """Remove the files of the cache's derived folders (`DERIVED`, or those of them in `parts`)
    not read or written for `older_than_days` days, and the folders left empty; downloads are
    never touched. Returns (files, bytes) removed (with `dry_run`: that would be)."""
    import time

    if not older_than_days >= 0:  # NaN too
        raise NNLabError(f"--older-than must be >= 0 days, got {older_than_days}")
    parts = list(dict.fromkeys(parts)) if parts else parts  # a part named twice counts once
    unknown = [p for p in parts or [] if p not in DERIVED]
    if unknown:
        raise NNLabError(
            f"--part {', '.join(unknown)}: not a folder nnlab makes again (those: "
            f"{', '.join(DERIVED)}; downloads are never cleaned)"
        )
    cutoff = time.time() - older_than_days * 86400
    count = size = 0
    for name in parts or DERIVED:
        folder = cache_dir() / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*"), reverse=True):  # files before their folders
            with contextlib.suppress(OSError):
                if path.is_file() and last_used(path) < cutoff:
                    count, size = count + 1, size + path.stat().st_size
                    if not dry_run:
                        path.unlink()
                elif path.is_dir() and not dry_run and not any(path.iterdir()):
                    path.rmdir()
    return count, size


def data_dirs() -> list[Path]:
    """The folders named by NNLAB_DATA (':'-separated), those that exist."""
    raw = os.environ.get("NNLAB_DATA", "")
    return [
        Path(p).expanduser() for p in raw.split(os.pathsep) if p and Path(p).expanduser().is_dir()
    ]


def _own_paths(info: DatasetInfo, filename: str) -> list[Path]:
    """The places of `filename` in the dataset's own folders: each NNLAB_DATA root itself, its
    folders of the dataset's names, the cache."""
    paths = []
    for root in data_dirs():
        paths.append(root / filename)
        paths.extend(root / folder / filename for folder in (info.folder, *info.other_folders))
    paths.append(cache_dir() / info.folder / filename)
    return list(dict.fromkeys(paths))


def _disk_names(info: DatasetInfo) -> list[str]:
    """Every name a file of the dataset may have on disk: as downloaded, unpacked, ungzipped."""
    names = []
    for f in info.files:
        names += [f.name, *([f.extract] if f.extract else [])]
        names += [f.name[:-3]] if f.name.endswith(".gz") else []
    return names


_ELSEWHERE_SAID: set[str] = set()


def _folder_elsewhere(info: DatasetInfo) -> Path | None:
    """When none of the dataset's files is in its own folders: the first other first-level
    folder of an NNLAB_DATA root that holds one (said once: Fashion-MNIST and KMNIST ship under
    MNIST's file names). All the files are then taken from that one folder -- never some from
    the dataset's own folder and the rest from another dataset's."""
    names = _disk_names(info)
    if any(p.exists() for n in names for p in _own_paths(info, n)):
        return None
    for root in data_dirs():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if any((folder / n).exists() for n in names):
                if info.name not in _ELSEWHERE_SAID:
                    _ELSEWHERE_SAID.add(info.name)
                    warnings.warn(f"{info.name}: read from {folder} (not a folder named "
                                  f"{info.folder})", stacklevel=2)  # fmt: skip
                return folder
    return None


def candidate_paths(info: DatasetInfo, filename: str) -> list[Path]:
    """Every place `filename` may be, in lookup order: the dataset's own folders, then the one
    other folder that holds its files when they hold none (`_folder_elsewhere`)."""
    paths = _own_paths(info, filename)
    elsewhere = _folder_elsewhere(info)
    return paths + ([elsewhere / filename] if elsewhere is not None else [])


def locate(info: DatasetInfo, filename: str) -> Path | None:
    """The file's path; for an archive, the folder it unpacks to when that exists."""
    extract = next((f.extract for f in info.files if f.name == filename and f.extract), None)
    if extract:
        for path in candidate_paths(info, extract):
            if path.is_dir():
                return path
    for path in candidate_paths(info, filename):
        if path.is_file():
            return path
    return None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FileStatus:
    file: RemoteFile
    path: Path | None
    status: str  # ok | mismatch | missing | unverified (no checksum known)


def verify(name: str) -> list[FileStatus]:
    info = get_info(name)
    out = []
    for f in info.files:
        path = locate(info, f.name)
        if path is None:
            out.append(FileStatus(f, None, "missing"))
        elif f.sha256 is None or path.is_dir():
            out.append(FileStatus(f, path, "unverified"))
        else:
            out.append(FileStatus(f, path, "ok" if sha256_of(path) == f.sha256 else "mismatch"))
    return out


ProgressFn = Callable[[int, int | None], None]  # (bytes so far, total or None)


def download(
    url: str,
    dest: Path,
    sha256: str | None,
    size: int | None,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest` atomically; raise NNLabError on a network error, a short read,
    a size or checksum mismatch -- and leave nothing at `dest` (nor a temp file) in that case."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise NNLabError(f"{dest.parent}: cannot write the download there ({e})") from None
    os.fchmod(fd, 0o666 & ~UMASK)
    h = hashlib.sha256()
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    header = resp.headers.get("Content-Length")
                    expected = int(header) if header is not None else size
                    while block := resp.read(1 << 16):
                        out.write(block)
                        h.update(block)
                        received += len(block)
                        if progress:
                            progress(received, expected)
            except urllib.error.HTTPError as e:
                raise NNLabError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                reason = getattr(e, "reason", None) or type(e).__name__
                raise NNLabError(
                    f"download of {url} failed after {received} bytes: {reason}"
                ) from None
            if header is not None and received != int(header):
                raise NNLabError(f"download of {url} truncated: got {received} of {header} bytes")
            out.flush()
            os.fsync(out.fileno())
        if size is not None and received != size:
            raise NNLabError(
                f"{dest.name}: downloaded {received} bytes, expected {size} "
                "(truncated or wrong file)"
            )
        if sha256 is not None and h.hexdigest() != sha256:
            raise NNLabError(
                f"{dest.name}: checksum mismatch (sha256 {h.hexdigest()[:16]}..., "
                f"expected {sha256[:16]}...); the download is corrupt and was discarded"
            )
        os.replace(tmp, dest)
        return dest
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def fetch(
    name: str,
    mirror: str | None = None,
    force: bool = False,
    progress: Callable[[RemoteFile], ProgressFn | None] | None = None,
) -> list[Path]:
    """Make every downloadable file of dataset `name` present and verified; return their paths.

    A file already present (in NNLAB_DATA or the cache) with the right checksum is not downloaded
    again. `mirror` replaces the URL's directory (a local copy or an HTTP server of your own).
    """
    info = get_info(name)
    paths = []
    for f in info.files:
        if f.url is None:
            continue
        path = locate(info, f.name)
        if (
            path is not None
            and not force
            and (path.is_dir() or f.sha256 is None or sha256_of(path) == f.sha256)
        ):
            if f.extract and path.is_file():  # the archive is here but was never unpacked
                path = extract_zip(path, path.parent / f.extract)
            paths.append(path)
            continue
        if mirror and "://" not in mirror:  # a local folder
            mirror = Path(mirror).expanduser().resolve().as_uri()
        url = mirror.rstrip("/") + "/" + f.name if mirror else f.url
        dest = cache_dir() / info.folder / f.name
        first = path  # the copy read first, when it is not the cache's
        path = download(url, dest, f.sha256, f.size, progress(f) if progress else None)
        if f.extract:
            path = extract_zip(path, dest.parent / f.extract)
        if first is not None and first.is_file() and first != dest:
            if f.sha256 is not None and sha256_of(first) != f.sha256:
                raise NNLabError(
                    f"{first} is damaged (its sha256 differs) and is read before the good copy "
                    f"now in {dest}: remove or replace it"
                )
        paths.append(path)
    return paths


def extract_zip(archive: Path, folder: Path) -> Path:
    """Unpack `archive` so that `folder` appears whole or not at all: into a temporary folder
    beside it, renamed at the end. The archive holds `folder.name/` at its top (as the official
    Kvasir-SEG zip does) or the folder's contents directly. Entries that would land outside the
    folder (absolute paths, '..') make the archive invalid."""
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    target = (tmp / name).resolve()
                    if not target.is_relative_to(tmp.resolve()):
                        raise NNLabError(f"{archive}: unsafe path in archive: {name}")
                z.extractall(tmp)  # a member failing its CRC raises BadZipFile
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise NNLabError(f"{archive}: not a valid zip archive ({e})") from None
        inner = tmp / folder.name
        src = inner if inner.is_dir() else tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(src, folder)
        return folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
