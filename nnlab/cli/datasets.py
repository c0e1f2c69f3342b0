"""`nnlab datasets list | fetch | verify`: the dataset registry, its files and checksums."""

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


def register(app: typer.Typer) -> None:
    datasets = group("datasets", "List, download and verify datasets.")
    datasets.command("list")(list_datasets)
    datasets.command("fetch")(fetch)
    datasets.command("verify")(verify)
    app.add_typer(datasets)
