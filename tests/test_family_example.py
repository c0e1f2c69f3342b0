"""docs/ADDING_A_FAMILY.md is a working family: its three files, taken from the page, registered
with the two lines it names, train from the command line, resume, and stay under 80 lines each."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

import nnlab.cli
import nnlab.models
from nnlab.cli import main

PAGE = Path(__file__).resolve().parents[1] / "docs" / "ADDING_A_FAMILY.md"


def blocks() -> dict[str, str]:
    """{module path: source} of every ### `nnlab/...py` section's python block."""
    text = PAGE.read_text()
    found = re.findall(r"### `(nnlab/[\w/]+\.py)`[^\n]*\n+```python\n(.*?)```", text, re.S)
    return dict(found)


@pytest.fixture
def family(monkeypatch, tmp_path):
    sources = blocks()
    assert sorted(sources) == [
        "nnlab/cli/denoise.py",
        "nnlab/models/dae.py",
        "nnlab/tasks/denoise.py",
    ]
    modules = {}
    for path in ("nnlab/models/dae.py", "nnlab/tasks/denoise.py", "nnlab/cli/denoise.py"):
        name = path[:-3].replace("/", ".")
        file = tmp_path / path.replace("/", "_")
        file.write_text(sources[path])
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        modules[path] = module
    dae = modules["nnlab/models/dae.py"]
    monkeypatch.setitem(nnlab.models.MODELS, "dae", (dae.DAEConfig, dae.DAE))  # the two lines
    monkeypatch.setitem(nnlab.cli.COMMANDS, "denoise", "denoise")
    return sources


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_each_file_is_under_80_lines(family):
    for path, source in family.items():
        assert len(source.splitlines()) < 80, path


def test_the_example_family_trains_resumes_and_explains_itself(family, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "denoise", "train", "--help")
    assert code == 0
    assert "--sigma" in out and "standard deviation of the added" in out and "(default: 0.3)" in out
    assert "--ema" in out and "--budget-min" in out and "--accumulate" in out
    code, _, err = run_cli(capsys, "denoise", "train", "--sigma", "-1")
    assert code == 1 and "--sigma must be > 0" in err and not (tmp_path / "runs").exists()

    out_dir = tmp_path / "d"
    code, out, err = run_cli(capsys, "denoise", "train", "--epochs", "6", "--out", str(out_dir))
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["test/psnr"] > summary["noisy/psnr"] + 3  # it denoises: +3 dB at least
    assert (out_dir / "figures" / "examples.png").exists() and (out_dir / "report.html").exists()
    checkpoint = json.loads((out_dir / "checkpoints" / "best.json").read_text())
    assert checkpoint["monitor"] == "val/psnr" and checkpoint["mode"] == "max"

    code, _, err = run_cli(capsys, "denoise", "train", "--resume", str(out_dir), "--sigma", "1")
    assert code == 1 and "drop --sigma" in err
    config = json.loads((out_dir / "config.json").read_text())
    config["train"]["epochs"] = 7  # one epoch more, resumed from the sixth
    (out_dir / "config.json").write_text(json.dumps(config))
    code, out, err = run_cli(capsys, "denoise", "train", "--resume", str(out_dir))
    assert code == 0, err
    assert [json.loads(line)["epoch"] for line in (out_dir / "metrics.jsonl").open()] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]
