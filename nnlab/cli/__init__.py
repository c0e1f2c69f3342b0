"""The `nnlab` command: one module per command group, each a thin layer -- parse the options
(generated from the config dataclasses), call the library, print a table. Bad input is an
NNLabError or a usage error: one line on stderr, non-zero exit.

Only the group a command line names is imported: `nnlab numpy ...` never loads torch."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import typer

from nnlab.cli.common import Commands
from nnlab.errors import Interrupted, NNLabError

# top-level name -> the module that registers it (a module may add several names)
COMMANDS = {
    "demo": "classify",
    "train": "classify",
    "explain": "classify",
    "classify": "classify",
    "segment": "segment",
    "numpy": "numpy_engine",
    "conv": "conv",
    "datasets": "datasets",
    "facts": "facts",
    "report": "facts",
    "diffusion": "diffusion",
    "compress": "compress",
    "ocr": "ocr",
    "seizure": "seizure",
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The typer app with the command groups the command line needs (all of them for help)."""
    app = Commands(
        name="nnlab",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        help="nnlab: neural networks on images and signals -- implement, train on "
        "real data, verify, look.",
    )
    # a callback keeps the root a group even when only one plain command (compress) is loaded:
    # typer would otherwise make that command the root and reject its own name as an argument
    app.callback()(lambda: None)
    words = [a for a in (argv or []) if not a.startswith("-")]
    wanted = COMMANDS.get(words[0]) if words else None
    for module in dict.fromkeys(COMMANDS.values()):
        if wanted in (None, module):
            importlib.import_module(f"nnlab.cli.{module}").register(app)
    return app


_PACKAGE = Path(__file__).resolve().parents[1]


def _warning_line(message, category, filename, lineno, line=None, *, default=None) -> str:
    """nnlab's own warnings (about the user's data or options) as one line, 'nnlab: warning:
    ...', without the source line that Python's format adds; other libraries' as Python writes
    them."""
    if issubclass(category, UserWarning) and Path(filename).resolve().is_relative_to(_PACKAGE):
        return f"nnlab: warning: {message}\n"
    return default(message, category, filename, lineno, line)


def more_open_files() -> None:
    """Let this process open as many files as the system lets it (the soft limit raised to the
    hard one): a patient's prepared recordings, and a set's stored arrays, are memory maps that
    hold a file descriptor each, and the soft limit is often 1,024."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):  # no such limits here
        return
    top = hard if hard != resource.RLIM_INFINITY else 65536
    # macOS: an unlimited hard limit, but a system cap below it (kern.maxfilesperproc)
    for target in sorted({top, min(top, 10240), min(top, 4096)}, reverse=True):
        if soft == resource.RLIM_INFINITY or target <= soft:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return
        except (ValueError, OSError):  # above what the system allows: a lower one
            continue


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn user errors into one line on stderr and an exit code (1, usage 2)."""
    argv = sys.argv[1:] if argv is None else argv
    more_open_files()
    default = warnings.formatwarning
    warnings.formatwarning = lambda *a, **k: _warning_line(*a, **k, default=default)
    try:
        # built inside: a Ctrl-C while the commands are imported is an interruption too
        command = typer.main.get_command(build_app(argv))
        code = command.main(args=argv, prog_name="nnlab", standalone_mode=False)
    except NNLabError as e:
        print(f"nnlab: error: {e}", file=sys.stderr)
        sys.exit(130 if isinstance(e, Interrupted) else 1)
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
    finally:
        warnings.formatwarning = default
    if code == 130:  # typer returns Ctrl-C as exit code 130 where it catches it itself
        print("nnlab: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
