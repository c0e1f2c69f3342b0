"""The `nnlab` command. Each command is a thin layer: parse and validate arguments, call the library,
print a table. Bad input is an NNLabError or a usage error: one line on stderr, non-zero exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from nnlab.errors import NNLabError

app = typer.Typer(
    name="nnlab", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="nnlab: neural networks on images and signals -- implement, train on real data, verify, look.")
datasets_app = typer.Typer(no_args_is_help=True, help="List, download and verify datasets.")
app.add_typer(datasets_app, name="datasets")

console = Console(highlight=False, soft_wrap=True)  # paths must not wrap

SeedOpt = typer.Option(0, "--seed", help="Random seed; the same seed gives the same run.")
DeviceOpt = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N.")
OutOpt = typer.Option(None, "--out", help="Run directory (default: runs/<name>-<timestamp>).")


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _table(rows: list[dict], title: str = "") -> Table:
    table = Table(title=title or None)
    for col, value in rows[0].items():
        numeric = isinstance(value, (int, float)) or col in ("error", "tolerance")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=col in ("fact", "file"),
                         min_width=min(len(col), 12))
    for r in rows:
        table.add_row(*(_fmt(v) for v in r.values()))
    return table


# ---- demo ---------------------------------------------------------------------------------------
@app.command()
def demo(
    epochs: int = typer.Option(30, min=1, help="Epochs per model."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Train a small MLP and a small CNN on the embedded 8x8 digits and compare them (< 1 min)."""
    from nnlab.tasks.demo import run_demo
    from nnlab.train import resolve_device

    resolve_device(device)

    run, rows = run_demo(out=out, epochs=epochs, seed=seed, device=device, console=console)
    console.print(_table(rows, "nnlab demo: scikit-learn 8x8 digits, test split, best checkpoint"))
    console.print(f"report: {run.report_path.resolve()}")


# ---- train ----------------------------------------------------------------------------------------
def _parse_model_args(items: list[str]) -> dict:
    args = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NNLabError(f"--model-arg expects KEY=VALUE, got '{item}'")
        try:
            args[key] = json.loads(value)
        except json.JSONDecodeError:
            args[key] = value  # a bare string such as activation=gelu
    return args


@app.command()
def train(
    data: str = typer.Option("digits", help="Dataset: digits, mnist or nist."),
    model: str = typer.Option("mlp", help="Model: mlp or cnn."),
    model_arg: list[str] = typer.Option(
        [], "--model-arg", "-m", help="Model option KEY=VALUE (JSON value), e.g. -m 'hidden=[256,128]'."),
    epochs: int = typer.Option(10, min=1, help="Number of epochs."),
    batch_size: int = typer.Option(64, min=1, help="Mini-batch size."),
    lr: float = typer.Option(3e-3, help="Peak learning rate (> 0)."),
    weight_decay: float = typer.Option(1e-4, min=0, help="Weight decay (not on biases / norms)."),
    optimizer: str = typer.Option("adamw", help="adamw or sgd."),
    schedule: str = typer.Option("cosine", help="cosine or constant, after the warm-up."),
    warmup: float = typer.Option(0.0, min=0, help="Warm-up length in epochs."),
    grad_clip: float = typer.Option(1.0, min=0, help="Max gradient norm; 0 disables clipping."),
    patience: int = typer.Option(0, min=0, help="Early stopping patience in epochs; 0 = off."),
    val_fraction: float = typer.Option(0.1, help="Part of the training data held out for validation."),
    limit: int = typer.Option(0, min=0, help="Use only the first N training images (0 = all)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
    resume: Optional[Path] = typer.Option(
        None, help="Continue the run in this directory from its last checkpoint (its config is used)."),
) -> None:
    """Train a classifier with the shared training loop; writes a run directory and its report."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.classify import ClassifyConfig, load_classify_config, run_classify
    from nnlab.train import TrainConfig

    if resume is not None:
        run = RunDir.open(resume)
        cfg = load_classify_config(run)
    else:
        cfg = ClassifyConfig(
            data=data, model=model, model_args=_parse_model_args(model_arg),
            val_fraction=val_fraction, limit=limit,
            train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                              optimizer=optimizer, schedule=schedule, warmup_epochs=warmup,
                              grad_clip=grad_clip, patience=patience, monitor="val/acc",
                              seed=seed, device=device))
        # fail on bad arguments before a run directory is created
        cfg.train.validate()
        from nnlab.data.registry import get_info
        from nnlab.models import model_config
        from nnlab.train import resolve_device

        from nnlab.data import available_splits

        get_info(cfg.data)
        model_config(cfg.model, **cfg.model_args)
        resolve_device(device)
        if not available_splits(cfg.data):
            raise NNLabError(f"{cfg.data}: no data files found; run `nnlab datasets fetch "
                             f"{cfg.data}` or set NNLAB_DATA to a folder that holds them")
        if not 0.0 < val_fraction < 0.5:
            raise NNLabError(f"--val-fraction must be in (0, 0.5), got {val_fraction}")
        run = RunDir.create(f"{cfg.model}-{cfg.data}", out)
    try:
        summary = run_classify(cfg, run, console, resume=resume is not None)
    except KeyboardInterrupt:
        raise NNLabError(f"interrupted; resume with: nnlab train --resume {run.path}") from None
    write_report(run)
    keys = ("model", "data", "parameters", "epochs", "best_epoch", "test/acc", "train_time_s")
    console.print(_table([{k: summary[k] for k in keys}], "test split, best checkpoint"))
    console.print(f"report: {run.report_path.resolve()}")


# ---- report ----------------------------------------------------------------------------------------
@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Rebuild RUN_DIR/report.html from the run's files."""
    from nnlab.report import write_report
    from nnlab.run import RunDir

    console.print(f"report: {Path(write_report(RunDir.open(run_dir))).resolve()}")


# ---- facts ---------------------------------------------------------------------------------------
@app.command()
def facts(
    topic: Optional[str] = typer.Option(None, help="Only the facts of this topic."),
    name: Optional[str] = typer.Option(None, help="Only the fact with this name."),
    list_only: bool = typer.Option(False, "--list", help="List the facts without running them."),
) -> None:
    """Check every registered mathematical fact numerically; exit 1 if one fails."""
    from nnlab.facts import TOPICS, run_fact, select

    chosen = select(topic, name)
    if list_only:
        console.print(_table([{"fact": f.name, "topic": f.topic, "statement": f.statement}
                              for f in chosen] or [{"fact": "none"}], f"topics: {', '.join(TOPICS)}"))
        return
    rows, failed = [], 0
    for f in chosen:
        r = run_fact(f)
        failed += not r.passed
        rows.append({"fact": f.name, "statement": f.statement, "error": f"{r.error:.2e}",
                     "tolerance": f"{f.tol:.0e}", "result": "pass" if r.passed else "FAIL"})
    if rows:
        console.print(_table(rows, f"{len(rows) - failed} of {len(rows)} facts hold"))
    if failed:
        raise typer.Exit(1)


# ---- datasets --------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list() -> None:
    """The known datasets, their files and where each file was found."""
    from nnlab.data.registry import REGISTRY, cache_dir, locate

    table = Table(title=f"cache: {cache_dir()}")
    for col in ("dataset", "file", "found at", "description"):
        table.add_column(col)
    for info in REGISTRY.values():
        if not info.files:
            table.add_row(info.name, "(embedded)", "-", info.description)
        for i, f in enumerate(info.files):
            path = locate(info, f.name)
            table.add_row(info.name if i == 0 else "", f.name, str(path) if path else "missing",
                          info.description if i == 0 else "")
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    name: str = typer.Argument(..., help="Dataset name (see `nnlab datasets list`)."),
    mirror: Optional[str] = typer.Option(None, help="Base URL to download the files from instead."),
    force: bool = typer.Option(False, help="Download again even if a good copy is present."),
) -> None:
    """Download a dataset's files into the cache, verified by sha256 (skips files already present)."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)

    from nnlab.data.registry import fetch, get_info

    info = get_info(name)
    if not any(f.url for f in info.files):
        console.print(f"{name}: nothing to download ({'embedded' if not info.files else 'no public URL'})")
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as progress:
        def bar(f):
            task = progress.add_task(f.name, total=f.size)
            return lambda done, total: progress.update(task, completed=done, total=total)

        paths = fetch(name, mirror=mirror, force=force, progress=bar)
    for p in paths:
        console.print(f"ok  {p}")


@datasets_app.command("verify")
def datasets_verify(
    name: Optional[str] = typer.Argument(None, help="Dataset name; all datasets if omitted."),
) -> None:
    """Check the sha256 of every dataset file found; exit 1 on a mismatch."""
    from nnlab.data.registry import REGISTRY, get_info, verify

    names = [get_info(name).name] if name else list(REGISTRY)
    rows, bad = [], 0
    for n in names:
        for st in verify(n):
            if st.status == "missing" and st.file.optional:
                continue
            bad += st.status == "mismatch"
            rows.append({"dataset": n, "file": st.file.name, "status": st.status,
                         "path": str(st.path) if st.path else "-"})
    if rows:
        console.print(_table(rows))
    else:
        console.print("no dataset files found")
    if bad:
        raise NNLabError(f"{bad} file(s) do not match their checksum; fetch them again with --force")


# ---- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn user errors into one line on stderr and an exit code (1, usage 2)."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="nnlab", standalone_mode=False)
    except NNLabError as e:
        print(f"nnlab: error: {e}", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as e:  # usage errors: bad option, bad value, unknown command
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message())
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "nnlab"
        print(f"{where}: error: {e.format_message()} (see --help)", file=sys.stderr)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("nnlab: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
