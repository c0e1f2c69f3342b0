"""One self-contained HTML page per run directory: summary, config, metric table, figures (PNG
embedded as base64), and the sections of its child runs. `nnlab report RUN_DIR` rebuilds it."""

from __future__ import annotations

import base64
import datetime
import html
import json
from typing import Any

from nnlab.io import atomic_write_text
from nnlab.run import RunDir

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}\
h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:.6em;font-size:.8em;overflow:auto}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
.muted{color:#777;font-size:.85em}details{margin:.5em 0}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    if isinstance(v, (dict, list)):
        return html.escape(json.dumps(v))
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class=muted>none</p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary(summary: dict[str, Any]) -> str:
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
    out = (
        [_table([{"": k, "value": v} for k, v in scalars.items()], ["", "value"])]
        if scalars
        else []
    )
    for key, value in summary.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            out.append(f"<h3>{html.escape(key.replace('_', ' '))}</h3>{_table(value)}")
        elif isinstance(value, str) and "\n" in value:
            out.append(f"<p>{html.escape(value)}</p>")
    return "\n".join(out)


def _metrics(records: list[dict[str, Any]]) -> str:
    if not records:
        return "<p class=muted>no metrics recorded</p>"
    cols = ["epoch"] + sorted(
        {k for r in records for k in r} - {"epoch"},
        key=lambda k: (not k.startswith("train"), not k.startswith("val"), k),
    )
    return f"<details><summary>{len(records)} records</summary>{_table(records, cols)}</details>"


def _figures(run: RunDir) -> str:
    out = []
    for path in run.figures():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        out.append(
            f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>"
        )
    return "\n".join(out)


def _section(run: RunDir, level: int) -> str:
    h = f"h{min(level, 6)}"
    parts = []
    summary = run.summary()
    if summary:
        parts.append(f"<{h}>Summary</{h}>{_summary(summary)}")
    figs = _figures(run)
    if figs:
        parts.append(f"<{h}>Figures</{h}>{figs}")
    if run.metrics_path.exists():
        parts.append(f"<{h}>Metrics</{h}>{_metrics(run.metrics())}")
    if run.config_path.exists():
        parts.append(
            f"<details><summary>config</summary><pre>"
            f"{html.escape(json.dumps(run.config(), indent=2))}</pre></details>"
        )
    for child in run.children():
        parts.append(f"<h2>{html.escape(child.path.name)}</h2>{_section(child, level + 1)}")
    return "\n".join(parts)


def build_report(run: RunDir) -> str:
    title = f"nnlab run {run.path.name}"
    made = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class=muted>{html.escape(str(run.path.resolve()))} — report written {made}</p>"
        f"{_section(run, 2)}</body></html>\n"
    )


def write_report(run: RunDir) -> str:
    """Write run/report.html (and every child's own report.html); return the top one's path."""
    for child in run.children():
        write_report(child)
    atomic_write_text(run.report_path, build_report(run))
    return str(run.report_path)
