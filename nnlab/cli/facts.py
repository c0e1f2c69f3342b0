"""`nnlab facts` (every mathematical fact, checked numerically) and `nnlab report RUN_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import console, table


def report(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Rebuild RUN_DIR/report.html from the run's files."""
    from nnlab.report import write_report
    from nnlab.run import RunDir

    console.print(f"report: {Path(write_report(RunDir.open(run_dir))).resolve()}")


def facts(
    topic: Optional[str] = typer.Option(None, help="Only the facts of this topic."),
    name: Optional[str] = typer.Option(None, help="Only the fact with this name."),
    list_only: bool = typer.Option(False, "--list", help="List the facts without running them."),
) -> None:
    """Check every registered mathematical fact numerically; exit 1 if one fails."""
    from nnlab.facts import TOPICS, run_fact, select

    chosen = select(topic, name)
    if list_only:
        console.print(
            table(
                [{"fact": f.name, "topic": f.topic, "statement": f.statement} for f in chosen]
                or [{"fact": "none"}],
                f"topics: {', '.join(TOPICS)}",
            )
        )
        return
    rows, failed = [], 0
    for f in chosen:
        r = run_fact(f)
        failed += not r.passed
        rows.append(
            {
                "fact": f.name,
                "statement": f.statement,
                "error": f"{r.error:.2e}",
                "tolerance": f"{f.tol:.2g}",
                "result": "pass" if r.passed else "FAIL",
            }
        )
    if rows:
        console.print(table(rows, f"{len(rows) - failed} of {len(rows)} facts hold"))
        console.print("the questions these answer, with their experiments: docs/QUESTIONS.md")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("facts")(facts)
    app.command("report")(report)
