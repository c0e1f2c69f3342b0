"""The run directory: everything one training command leaves behind, self-contained.

runs/<name>-<YYYYmmdd-HHMMSS>/
    config.json          resolved config of the run (enough to rebuild and resume it)
    metrics.jsonl        one JSON line per epoch / evaluation
    summary.json         final figures (test metrics, parameters, time)
    checkpoints/         last.safetensors (+ last.json, readable state), best.safetensors
    figures/*.png        the task's figures
    report.html          one page, images embedded (`nnlab report RUN_DIR` rebuilds it)
    <child>/             a run may hold child runs (the demo holds one per model)
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.errors import NNLabError
from nnlab.io import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
)

# what a run writes beside its config.json: an --out that holds them but no config is refused
RUN_FILES = ("metrics.jsonl", "summary.json", "checkpoints", "report.html")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, name: str, out: str | Path | None = None, root: str | Path = "runs") -> RunDir:
        """A new, empty run directory: `out` if given, else runs/<name>-<timestamp>."""
        if out is not None:
            if not str(out).strip() or Path(out) == Path("."):  # typer reads '' as '.'
                raise NNLabError(
                    "--out is empty (an unset variable?) or the current folder: name a folder "
                    "for the run"
                )
            path = Path(out)
            if (path / "config.json").exists():
                raise NNLabError(
                    f"{path} already holds a run: choose another --out (or continue it with "
                    f"--resume {path}, where the command has --resume)"
                )
            if path.exists() and not path.is_dir():
                raise NNLabError(f"--out {path} is a file, not a folder")
            left = [n for n in RUN_FILES if (path / n).exists()]
            if left:  # a run's files without its config: appended to, they would mix two runs
                raise NNLabError(
                    f"--out {path} holds {', '.join(left)} of an earlier run but no config.json: "
                    "remove them or choose another --out"
                )
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path(root) / f"{name}-{stamp}"
            k = 1
            while path.exists():
                k += 1
                path = Path(root) / f"{name}-{stamp}-{k}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NNLabError(f"{path}: cannot make the run folder ({e.strerror or e})") from None
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(path)
        if not run.path.is_dir():
            raise NNLabError(f"{run.path}: no such run directory")
        if not run.config_path.exists():
            raise NNLabError(f"{run.path}: not a run directory (no config.json)")
        return run

    # ---- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figure_dir(self) -> Path:
        return self.path / "figures"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    # ---- contents ----------------------------------------------------------------------------
    def save_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def config(self) -> dict[str, Any]:
        return _json_object(self.config_path)

    def log(self, record: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, record)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def keep_metrics(self, up_to_epoch: int) -> None:
        """Drop the records of epochs after `up_to_epoch` (a resumed run redoes them)."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.metrics() if r.get("epoch", 0) <= up_to_epoch]
        atomic_write_text(
            self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
        )

    def save_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    def summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        return _json_object(path) if path.exists() else {}

    def save_figure(self, name: str, fig) -> Path:
        """Save a matplotlib Figure as figures/<name>.png (atomically) and close it."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        path = self.figure_dir / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        return path

    def figures(self) -> list[Path]:
        if not self.figure_dir.is_dir():
            return []
        return sorted(p for p in self.figure_dir.glob("*.png") if p.is_file())

    def children(self) -> list[RunDir]:
        return [
            RunDir(p)
            for p in sorted(self.path.iterdir())
            if p.is_dir() and (p / "config.json").exists()
        ]


@dataclass
class ChildResult:
    summary: dict[str, Any]  # empty when the child failed with a tolerated error
    history: list[dict[str, Any]]  # its metrics.jsonl
    wall_s: float
    error: Exception | None = None


def run_children(
    parent: RunDir,
    jobs: dict[str, Callable[[RunDir], dict[str, Any]]],
    console=None,
    titles: dict[str, str] | None = None,
    tolerate: tuple[type[Exception], ...] = (),
) -> dict[str, ChildResult]:
    """Run every job, one after another, in its own child run directory `parent/<name>` (a
    comparison, a sweep, cross-validation folds); a `tolerate`d error (a diverging learning rate in
    a sweep) is recorded and the next job runs."""
    results = {}
    for name, job in jobs.items():
        if console is not None:
            console.rule((titles or {}).get(name, name))
        child = RunDir.create(name, out=parent.path / name)
        t0 = time.perf_counter()
        try:
            summary, error = job(child), None
        except tolerate as e:
            summary, error = {}, e
        results[name] = ChildResult(summary, child.metrics(), time.perf_counter() - t0, error)
    return results


def run_children_resumable(
    parent: RunDir,
    jobs: dict[str, Callable[[RunDir], dict[str, Any]]],
    console=None,
    resume: bool = False,
    tolerate: tuple[type[Exception], ...] = (),
) -> dict[str, tuple[RunDir, dict[str, Any]]]:
    """{name: (child run, summary)} in the order of `jobs`, each job in its child run (see
    `run_children`); with `resume`, a child that finished before (summary.json written) is kept
    and a half-done one is trained again from the start. A tolerated error is an NNLabError here:
    every child is needed."""
    import shutil

    done, todo = {}, {}
    for name, job in jobs.items():
        path = parent.path / name
        if resume and (path / "summary.json").exists():
            child = RunDir.open(path)
            done[name] = (child, child.summary())
            continue
        if path.exists():
            shutil.rmtree(path)
        todo[name] = job
    for name, r in run_children(parent, todo, console, tolerate=tolerate).items():
        if r.error is not None:
            raise NNLabError(f"{name}: {r.error}")
        done[name] = (RunDir.open(parent.path / name), r.summary)
    return {name: done[name] for name in jobs}


def _json_object(path: Path) -> dict[str, Any]:
    """A run file that holds one JSON object; a damaged or hand-edited one is said in a line."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NNLabError(f"{path}: unreadable ({e})") from None
    if not isinstance(value, dict):
        raise NNLabError(f"{path}: holds a JSON {type(value).__name__}, not an object")
    return value
