"""What every command group shares: the console and tables, options generated from config
dataclasses, the generated training command of a task, and `launch` -- distributed setup, the run
directory, Ctrl-C, cleanup and the report, once for every family. Imports no torch."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import re
import shutil
import sys
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.errors import Interrupted, NNLabError
from nnlab.run import RunDir

# paths must not wrap; piped output (logs, CI) gets wide tables instead of rich's default 80 columns
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)

SeedOpt = typer.Option(
    0, "--seed", min=0, max=2**32 - 1, help="Random seed; the same seed gives the same run."
)
DeviceOpt = typer.Option(
    "auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."
)
OutOpt = typer.Option(None, "--out", help="Run directory (default: runs/<name>-<timestamp>).")
ALIASES = {"warmup_epochs": ("--warmup",)}  # short names older commands and docs use
# may change when a run continues; --epochs extends (or shortens) it and --max-steps raises (or
# lifts, 0) its step limit, both written to its config
RESUME_OVERRIDES = ("device", "num_workers", "budget_min", "epochs", "max_steps")


def reflow(doc: str | None) -> str | None:
    """A docstring as help text: each paragraph's lines joined into one. Typer's rich help keeps a
    docstring's single line breaks, so a command list would break its lines where the source did."""
    if not doc:
        return doc
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class Commands(typer.Typer):
    """A typer app whose commands take their help from their docstrings, reflowed (`reflow`)."""

    def command(self, name: str | None = None, **kwargs):
        def register(f):
            given = dict(kwargs)
            help = given.pop("help", None) or reflow(f.__doc__)
            return typer.Typer.command(self, name, help=help, **given)(f)

        return register


def group(name: str, help: str) -> typer.Typer:
    return Commands(name=name, no_args_is_help=True, help=help)


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 or abs(v) >= 1e6 else f"{v:.4f}"
    return str(v)


def table(rows: list[dict], title: str = "") -> Table:
    t = Table(title=title or None)
    for col, value in rows[0].items():
        numeric = isinstance(value, (int, float)) or col in ("error", "tolerance")
        t.add_column(
            col,
            justify="right" if numeric else "left",
            no_wrap=col in ("fact", "file"),
            min_width=min(len(col), 12),
        )
    for r in rows:  # escaped: a statement such as "N(0, [[1, c], [c, 1]])" is text, not markup
        t.add_row(*(escape(fmt(v)) for v in r.values()))
    return t


def quiet() -> None:
    """Silence this process (DDP ranks > 0): rank 0 alone talks."""
    global console
    console.quiet = True


# ---- options from config dataclasses -------------------------------------------------------------
def field_help(cls: type) -> dict[str, str]:
    """Each field's comment in the class source: the trailing one, or the lines just above."""
    out, above = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = re.match(r"(\w+)\s*:[^#]*?(?:#\s*(.*))?$", stripped)
        if m and not stripped.startswith(("def ", "class ", "@", "return")):
            out[m.group(1)] = m.group(2) or " ".join(above)
        above = []
    return out


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise NNLabError(
            f"{option} expects comma-separated integers like 64 or 512,256, got '{text}'"
        ) from None
    if not sizes:
        raise NNLabError(f"{option} needs at least one value, got '{text}'")
    return sizes


def parse_model_args(items: list[str]) -> dict[str, Any]:
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


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"'{value}'" if value == "" else str(value)


def config_params(
    cls: type, defaults: Any, panel: str, skip: tuple[str, ...] = ()
) -> list[inspect.Parameter]:
    """One option per field of dataclass `cls` (nested dataclasses and dicts excepted): --name,
    the field's comment and its default in `defaults` as help; the value None means 'not given'."""
    hints, helps, params = typing.get_type_hints(cls), field_help(cls), []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.name in skip or dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
            continue
        kind = str if typing.get_origin(hint) is tuple else hint  # tuples: comma-separated text
        flag = "--" + f.name.replace("_", "-")
        decls = (f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag, *ALIASES.get(f.name, ()))
        text = f"{helps.get(f.name, '')} (default: {_shown(getattr(defaults, f.name))})".strip()
        option = typer.Option(None, *decls, help=text, rich_help_panel=panel, show_default=False)
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[kind]
            )
        )
    return params


def apply(cfg: Any, given: dict[str, Any]) -> Any:
    """`cfg` with the given options set, into nested dataclasses where the field lives there;
    text for tuple fields is parsed as comma-separated integers (words for tuple[str, ...])."""
    hints = typing.get_type_hints(type(cfg))
    changes, nested = {}, {}
    for name, value in given.items():
        if name in hints:
            if typing.get_origin(hints[name]) is tuple and isinstance(value, str):
                if typing.get_args(hints[name])[0] is str:
                    value = tuple(w.strip() for w in value.split(",") if w.strip())
                else:
                    value = parse_ints(value, "--" + name.replace("_", "-"))
            changes[name] = value
        else:
            nested[name] = value
    for f in dataclasses.fields(cfg):
        if dataclasses.is_dataclass(hints[f.name]) and nested:
            changes[f.name] = apply(getattr(cfg, f.name), nested)
            nested = {
                k: v for k, v in nested.items() if k not in typing.get_type_hints(hints[f.name])
            }
    if nested:
        raise NNLabError(f"unknown option(s) {sorted(nested)}")
    return dataclasses.replace(cfg, **changes)


@dataclass
class Shortcut:
    """An option that sets one model option, for one model: `--patch 7` = `-m patch=[7,7]`."""

    name: str
    kind: type
    help: str
    model: str
    parse: Callable[[Any], Any] = lambda v: v


def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """A keyword parameter of a generated command (typer reads the signature)."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def extend_epochs(run: RunDir, epochs: int) -> None:
    """Write a new number of epochs into a run's config.json before it is resumed, so that a
    later --resume without --epochs goes on to the same end (CV parents pass it to their folds).
    Fewer epochs than the run has finished are refused: they would change nothing but its
    config."""
    config = run.config()
    holder = config["train"] if "epochs" in config.get("train", {}) else config
    before = holder.get("epochs")
    if before == epochs:
        return
    done = max((r.get("epoch", 0) for r in run.metrics() if isinstance(r, dict)), default=0)
    if epochs < done:
        raise NNLabError(f"{run.path} has finished {done} epochs; --epochs {epochs} is fewer")
    holder["epochs"] = epochs
    run.save_config(config)
    console.print(
        f"{run.path}: {before} -> {epochs} epochs; the learning-rate schedule is recomputed "
        f"over {epochs} epochs"
    )


def set_max_steps(run: RunDir, steps: int) -> None:
    """Write a new step limit (0: none) into a run's config.json before it is resumed: a run
    stopped by --max-steps goes on with a larger one."""
    config = run.config()
    holder = config.get("train", config)
    if "max_steps" not in holder or holder["max_steps"] == steps:
        return
    before, holder["max_steps"] = holder["max_steps"], steps
    run.save_config(config)
    console.print(f"{run.path}: step limit {before or 'none'} -> {steps or 'none'}")


def train_command(
    task_cls,
    group_name: str,
    doc: str,
    shortcuts: tuple[Shortcut, ...] = (),
    show: Callable | None = None,
) -> Callable:
    """The `train` command of a task: every field of its config (and of its TrainConfig) is an
    option; --resume continues a run with its own config (--device, --num-workers, --budget-min
    may change); a config field `init_from` starts from a finished run's config and weights."""
    from nnlab.train.config import TrainConfig

    cls, panel = task_cls.config_class, "Data and model"
    defaults = cls()
    names = {f.name for f in dataclasses.fields(cls)}
    params = config_params(cls, defaults, panel)
    if "model_args" in names:
        params.append(
            option(
                "model_arg",
                list[str],
                typer.Option(
                    [],
                    "--model-arg",
                    "-m",
                    rich_help_panel=panel,
                    help="Model option KEY=VALUE (a JSON value), e.g. -m 'hidden=[256,128]'.",
                ),
            )
        )
    params += [
        option(
            s.name,
            Optional[s.kind],
            typer.Option(None, f"--{s.name}", help=s.help, rich_help_panel=panel),
        )
        for s in shortcuts
    ]
    if "train" in names:
        params += config_params(TrainConfig, defaults.train, "Training")
    params += [
        option("out", Optional[Path], OutOpt),
        option(
            "resume",
            Optional[Path],
            typer.Option(
                None,
                help="Continue the run in this directory from its last checkpoint "
                "(its config is used; --epochs may extend it: the learning-rate schedule then "
                "spans the new total, so a cosine rate rises again).",
            ),
        ),
    ]

    def command(**kw) -> None:
        out, resume = kw.pop("out"), kw.pop("resume")
        model_args = parse_model_args(kw.pop("model_arg", []))
        cuts = {s.name: kw.pop(s.name) for s in shortcuts if kw.get(s.name) is not None}
        given = {k: v for k, v in kw.items() if v is not None}
        if resume is not None:
            extra = sorted({*given, *cuts} - set(RESUME_OVERRIDES))
            extra += ["model-arg"] if model_args else []
            if extra:
                raise NNLabError(
                    "--resume continues a run with its own config; drop "
                    + ", ".join("--" + e.replace("_", "-") for e in extra)
                )
            cfg = apply(task_cls.config_from_run(RunDir.open(resume)), given)
        else:
            cfg = new_config(task_cls, defaults, given, model_args, shortcuts, cuts)
        epochs = given.get("epochs") if resume is not None else None
        steps = given.get("max_steps") if resume is not None else None
        launch(task_cls(cfg, console), group_name, out, resume, show, epochs=epochs,
               max_steps=steps)  # fmt: skip

    command.__signature__ = inspect.Signature(params)
    command.__doc__ = doc
    return command


def new_config(
    task_cls,
    defaults,
    given: dict[str, Any],
    model_args: dict[str, Any],
    shortcuts: tuple[Shortcut, ...],
    cuts: dict[str, Any],
):
    """The config of a new run: the defaults (or, with init_from, the source run's config) with
    the given options; -m options and shortcuts add to the model's options (those of the source
    run when it trained the same model)."""
    cfg, names = defaults, {f.name for f in dataclasses.fields(defaults)}
    given = dict(given)
    if given.get("init_from"):
        source = RunDir.open(given["init_from"])
        cfg = task_cls.config_from_run(source)
        given["init_from"] = str(source.path.absolute())
    if "model_args" in names:
        model = given.get("model", cfg.model)
        for s in shortcuts:
            if s.name in cuts:
                if model != s.model:
                    raise NNLabError(f"--{s.name} applies to --model {s.model} only")
                model_args[s.name] = s.parse(cuts[s.name])
        given["model_args"] = {**(cfg.model_args if model == cfg.model else {}), **model_args}
    return apply(cfg, given)


# ---- running -------------------------------------------------------------------------------------
def recorded(run: RunDir) -> bool:
    """Whether a run folder holds results: its own metrics or summary, or a child run's (a
    comparison or a sweep whose first models finished)."""
    if run.metrics_path.exists() or (run.path / "summary.json").exists():
        return True
    return any((child / "metrics.jsonl").exists() for child in run.path.glob("*/"))


@contextlib.contextmanager
def new_run(name: str, out: Path | None, resume_hint: str = "") -> Iterator[RunDir]:
    """A fresh run directory for the block; on a clear error before anything was recorded it is
    removed again, on Ctrl-C the user is told what is kept; on success its report is written."""
    from nnlab.report import write_report

    fresh = out is None or not Path(out).exists()
    run = RunDir.create(name, out)
    try:
        yield run
    except KeyboardInterrupt:
        if fresh and not run.config_path.exists():  # nothing recorded: nothing to resume
            shutil.rmtree(run.path, ignore_errors=True)
            raise Interrupted("interrupted before the run began; nothing was kept") from None
        said = resume_hint or "what finished is in"
        raise Interrupted(f"interrupted; {said} {run.path}") from None
    except Exception:  # a clear error, or a bug: a run that recorded nothing is not left behind
        if fresh and not recorded(run):  # (it would block the same --out)
            shutil.rmtree(run.path, ignore_errors=True)
            if out is None:  # runs/ itself, if this run made it
                with contextlib.suppress(OSError):
                    run.path.parent.rmdir()
        raise
    write_report(run)


def launch(
    runner,
    group_name: str,
    out: Path | None = None,
    resume: Path | None = None,
    show: Callable | None = None,
    name: str | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Run `runner` (a Task, or any object with check / run_name / execute and `distributed`)
    into a new run directory, or continue the one at `resume`: join the process group under
    torchrun (rank 0 alone writes and talks), turn Ctrl-C into a resume hint, remove a directory a
    failed start left empty, write the report, print the summary table. `epochs` with `resume`:
    the run's new number of epochs, written to its config (`extend_epochs`) after the checks;
    `max_steps` likewise (`set_max_steps`)."""
    rank, distributed = 0, getattr(runner, "distributed", True)
    if distributed:
        from nnlab.train.distributed import broadcast_object, finish_distributed, init_distributed

        rank, _ = init_distributed()  # torchrun ... -m nnlab <group> train: one process per device
        if rank != 0:
            quiet()
            runner.console = None
    runner.check(resume is not None)  # fail on bad arguments before a run directory exists
    command = f"nnlab {group_name} {getattr(runner, 'verb', 'train')}".rstrip()
    hint = f"resume with: {command} --resume"
    if resume is not None:
        run = RunDir.open(resume)
        if epochs is not None and rank == 0:  # a new end, once the arguments have been checked
            extend_epochs(run, epochs)
        if max_steps is not None and rank == 0:
            set_max_steps(run, max_steps)
        context = contextlib.nullcontext(run)
    elif rank == 0:
        context = new_run(name or runner.run_name(), out, hint)
    else:
        context = contextlib.nullcontext(None)
    try:
        with context as run:
            if distributed:
                run = RunDir(broadcast_object(run.path if run is not None else None))
            summary = runner.execute(run, resume is not None)
            if resume is not None and rank == 0:
                from nnlab.report import write_report

                write_report(run)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {hint} {resume}") from None
    if rank == 0:
        (show or default_show)(runner, summary)
        stopped = summary.get("stopped")
        if stopped and "--max-steps" in stopped:
            console.print(
                f"stopped early: {stopped}; continue with: {command} --resume {run.path} "
                "--max-steps N (a larger limit, or 0 for none)"
            )
        elif stopped:
            console.print(
                f"stopped early: {stopped}; continue with: {command} "
                f"--resume {run.path} (a time budget counts again in every process; "
                "--budget-min 0 trains to the end)"
            )
        console.print(f"report: {run.report_path.resolve()}")
    if distributed:
        finish_distributed()
    return summary


def default_show(runner, summary: dict[str, Any]) -> None:
    keys = [k for k in runner.summary_keys if k in summary]
    console.print(table([{k: summary[k] for k in keys}], "test split, best checkpoint"))
