"""`nnlab datasets list | fetch | verify | cache`: the dataset registry, its files and checksums;
the cache and its cleaning."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from nnlab.cli.common import console, group, table
from nnlab.errors import NNLabError


def list_datasets() -> None:
    """The known datasets, their files and where each file was found."""
    from nnlab.data.registry import REGISTRY, cache_dir, locate

    t = Table(title=f"cache: {cache_dir()}")
    for col in ("dataset", "file", "found at", "description"):
        t.add_column(col)
    for info in REGISTRY.values():
        if not info.files:
            t.add_row(info.name, "(embedded)", "-", info.description)
        for i, f in enumerate(info.files):
            path = locate(info, f.name)
            t.add_row(
                info.name if i == 0 else "",
                f.name,
                str(path) if path else "missing",
                info.description if i == 0 else "",
            )
    console.print(t)


def fetch(
    name: str = typer.Argument(..., help="Dataset name (see `nnlab datasets list`)."),
    mirror: Optional[str] = typer.Option(None, help="Base URL to download the files from instead."),
    force: bool = typer.Option(False, help="Download again even if a good copy is present."),
) -> None:
    """Download a dataset's files into the cache, verified by sha256 (skips files already
    present)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from nnlab.data.registry import fetch as fetch_files
    from nnlab.data.registry import get_info

    info = get_info(name)
    if not any(f.url for f in info.files):
        console.print(
            f"{name}: nothing to download ({'embedded' if not info.files else 'no public URL'})"
        )
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as progress:

        def bar(f):
            task = progress.add_task(f.name, total=f.size)
            return lambda done, total: progress.update(task, completed=done, total=total)

        paths = fetch_files(name, mirror=mirror, force=force, progress=bar)
    for p in paths:
        console.print(f"ok  {p}")


def verify(
    name: Optional[str] = typer.Argument(None, help="Dataset name; all datasets if omitted."),
) -> None:
    """Check the sha256 of every dataset file found; exit 1 on a mismatch."""
    from nnlab.data.registry import REGISTRY, get_info
    from nnlab.data.registry import verify as verify_files

    names = [get_info(name).name] if name else list(REGISTRY)
    rows, bad = [], 0
    for n in names:
        for st in verify_files(n):
            if st.status == "missing" and st.file.optional:
                continue
            bad += st.status == "mismatch"
            rows.append(
                {
                    "dataset": n,
                    "file": st.file.name,
                    "status": st.status,
                    "path": str(st.path) if st.path else "-",
                }
            )
    if rows:
        console.print(table(rows))
    else:
        console.print("no dataset files found")
    if bad:
        raise NNLabError(
            f"{bad} file(s) do not match their checksum; fetch them again with --force"
        )


def cache(
    clean: bool = typer.Option(
        False, "--clean", help="remove the files nnlab made from data and has not used lately"
    ),
    older_than: float = typer.Option(
        30.0, help="with --clean: days since a file was last read or written"
    ),
    part: Optional[list[str]] = typer.Option(
        None, help="with --clean: only this folder (segments, eeg-windows, ...); repeatable"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="with --clean: say, remove nothing"),
) -> None:
    """The cache's folders ($NNLAB_CACHE): files, size, last use. With --clean, the files of the
    folders nnlab makes again when they are missing (segment sets on disk, prepared EEG windows,
    resized images, character crops) unused for --older-than days are removed; downloaded
    datasets never are."""
    import time

    from nnlab.data.registry import cache_dir, cache_parts, clean_cache

    if clean:
        count, size = clean_cache(older_than, part or None, dry_run)
        verb = "would remove" if dry_run else "removed"
        console.print(
            f"{verb} {count} file(s), {size / 2**30:.2f} GiB, unused for {older_than:g} days"
        )
    rows = [
        {
            "folder": p.name,
            "kind": "made from data" if p.derived else "downloads, other",
            "files": p.files,
            "GiB": f"{p.bytes / 2**30:.2f}",
            "last used": time.strftime("%Y-%m-%d", time.localtime(p.last_used))
            if p.last_used
            else "-",
        }
        for p in cache_parts()
    ]
    console.print(f"cache: {cache_dir()}")
    console.print(table(rows) if rows else "empty")


def register(app: typer.Typer) -> None:
    datasets = group("datasets", "List, download and verify datasets; the cache.")
    datasets.command("list")(list_datasets)
    datasets.command("fetch")(fetch)
    datasets.command("verify")(verify)
    datasets.command("cache")(cache)
    app.add_typer(datasets)
