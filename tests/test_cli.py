"""The CLI: --help everywhere, one-line errors with non-zero exits, and end-to-end runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from nnlab.cli import main
from nnlab.run import RunDir

COMMANDS = [
    [],
    ["demo"],
    ["train"],
    ["report"],
    ["facts"],
    ["datasets"],
    ["datasets", "list"],
    ["datasets", "fetch"],
    ["datasets", "verify"],
    ["datasets", "cache"],
    ["numpy"],
    ["numpy", "train"],
    ["numpy", "sweep-lr"],
    ["numpy", "gradient-flow"],
    ["numpy", "least-squares"],
    ["numpy", "perceptron"],
    ["numpy", "wiener"],
    ["numpy", "init"],
    ["conv"],
    ["conv", "properties"],
    ["conv", "prior"],
    ["conv", "receptive-field"],
    ["conv", "input-size"],
    ["conv", "invariance"],
    ["conv", "gabor"],
    ["conv", "filters"],
    ["explain"],
    ["ink-attention"],
    ["classify"],
    ["classify", "train"],
    ["classify", "explain"],
    ["classify", "ink-attention"],
    ["segment"],
    ["segment", "train"],
    ["segment", "predict"],
    ["segment", "explain"],
    ["segment", "compare"],
    ["diffusion"],
    ["diffusion", "train"],
    ["diffusion", "sample"],
    ["diffusion", "evaluate"],
    ["compress"],
    ["ocr"],
    ["ocr", "train"],
    ["ocr", "train-ctc"],
    ["ocr", "read"],
    ["ocr", "eval"],
    ["ocr", "compose"],
    ["seizure"],
    ["seizure", "bonn"],
    ["seizure", "prepare"],
    ["seizure", "train"],
    ["seizure", "evaluate"],
    ["seizure", "detect"],
    ["seizure", "split"],
]


def test_every_command_is_in_the_help_list():
    """A command added to the CLI without a --help check here makes this fail."""
    import typer

    from nnlab.cli import build_app

    command = typer.main.get_command(build_app())
    listed = {tuple(c) for c in COMMANDS}
    for name, sub in command.commands.items():
        assert (name,) in listed, name
        for child in getattr(sub, "commands", {}):
            assert (name, child) in listed, (name, child)


def test_command_help_breaks_lines_only_between_paragraphs():
    """Typer's rich help keeps a docstring's single line breaks: a command list would break a
    description where its source line ended (as `seizure --help` once did)."""
    import typer

    from nnlab.cli import build_app

    def walk(command, path=()):
        for name, sub in getattr(command, "commands", {}).items():
            yield path + (name,), sub
            yield from walk(sub, path + (name,))

    for path, sub in walk(typer.main.get_command(build_app())):
        text = (sub.help or "").replace("\n\n", "")
        assert "\n" not in text, (path, sub.help)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "nnlab")
def test_help(capsys, cmd):
    code, out, _ = run_cli(capsys, *cmd, "--help")
    assert code == 0 and "Usage" in out


BAD = [
    (["train", "--epochs", "-1"], 1, "epochs must be >= 1, got -1"),
    (["train", "--mode", "up"], 1, "mode must be min or max"),
    (["train", "--monitor", "val/acc", "--mode", "min"], 1, "val/acc is better when higher"),
    (["train", "--resume", "no/such/run", "--lr", "0.1"], 1, "drop --lr"),
    (["train", "--sampler", "uniform"], 1, "sampler must be shuffle or balanced"),
    (["train", "--accumulate", "0"], 1, "accumulate must be >= 1"),
    (["train", "--ema", "1.5"], 1, "ema decay must be in [0, 1)"),
    (["train", "--epochs", "ten"], 2, "--epochs"),
    (["train", "--data", "imagenet"], 1, "unknown dataset 'imagenet'"),
    (["train", "--model", "resnet"], 1, "unknown model 'resnet'"),
    (["train", "--lr", "0"], 1, "learning rate must be > 0"),
    (["train", "--optimizer", "adam9"], 1, "optimizer must be adamw or sgd"),
    (["train", "--device", "tpu"], 1, "unknown device 'tpu'"),
    (["train", "--val-fraction", "0.9"], 1, "--val-fraction"),
    (["train", "--model-arg", "hidden"], 1, "KEY=VALUE"),
    (["train", "--model-arg", "depth=3"], 1, "no option"),
    (["train", "--resume", "no/such/run"], 1, "no such run directory"),
    (["train", "--data", "mnist", "--epochs", "1"], 1, "nnlab datasets fetch mnist"),
    (["demo", "--epochs", "0"], 2, "--epochs"),
    (["demo", "--device", "cuda:x"], 1, "device"),
    (["report", "nowhere"], 1, "no such run directory"),
    (["facts", "--topic", "astrology"], 1, "unknown topic"),
    (["facts", "--name", "nope"], 1, "no fact named"),
    (["datasets", "fetch", "imagenet"], 1, "unknown dataset"),
    (["datasets", "verify", "imagenet"], 1, "unknown dataset"),
    (["datasets", "cache", "--clean", "--part", "mnist"], 1, "not a folder nnlab makes again"),
    (["bogus"], 2, "No such command"),
    (["train", "--out", ""], 1, "--out is empty"),
    (["train", "--seed", "-5"], 1, "seed must be >= 0"),
    (["train", "--lr", "inf"], 1, "learning rate must be > 0"),
    (["numpy", "train", "--lr", "inf"], 1, "learning rate must be > 0"),
    (["conv", "gabor", "--filters", "4"], 1, "--filters must be 8 to 144"),
    (["conv", "properties", "--seed", "-1"], 2, "--seed"),
    (["numpy", "sweep-lr", "--seed", "-1"], 1, "seed must be >= 0"),
    (
        ["facts", "--topic", "numpy-engine", "--name", "bipolar-from-referential"],
        1,
        "is in topic 'eeg', not 'numpy-engine'",
    ),
    (["demo", "--device", "tpu"], 1, "unknown device 'tpu'"),
    (["datasets", "cache", "--clean", "--older-than", "nan"], 1, "--older-than must be >= 0"),
    (["train", "--data", "digits", "-m", "activation=swish"], 1, "cannot be built from its"),
    (["train", "--data", "digits", "-m", "dropout=1.5"], 1, "dropout probability"),
    (["train", "--data", "digits", "-m", 'hidden=[64,"x"]'], 1, "whole number >= 1"),
    (["train", "--data", "digits", "-m", "hidden=wide"], 1, "option hidden takes a tuple"),
    (["numpy", "train", "--blur", "-1"], 1, "--blur must be 0 to 10"),
    (["compress", "--data", "kvasir"], 1, "--data must be nist, mnist or digits"),
    (["compress", "--methods", "pca,zip"], 1, "--methods takes some of"),
    (["compress", "--data", "mnist"], 1, "nnlab datasets fetch mnist"),
    (["compress", "--resume", "no/such/run"], 1, "no such run directory"),
    (["ocr", "train", "--model", "rnn"], 1, "unknown model 'rnn' for ocr"),
    (["ocr", "train", "--val-fraction", "0.5", "--test-fraction", "0.4"], 1, "below 0.8"),
    (["ocr", "read", "no/page.jpg"], 1, "no/page.jpg: no such file"),
    (["ocr", "eval", "no/pages"], 1, "no/pages: no such folder"),
    (["ocr", "read", "x.png", "--recognizer", "tess"], 1, "--recognizer must be chars or ctc"),
    (["seizure", "train"], 1, "--data is required"),
    (["seizure", "prepare", "--data", "nowhere"], 1, "no chb01-summary.txt"),
    (["seizure", "train", "--data", ".", "--alarm-k", "31"], 1, "--alarm-k <= --alarm-n"),
    (["seizure", "evaluate", "no/such/run"], 1, "no such run directory"),
    (["seizure", "detect", "none.edf", "--model", "x"], 1, "none.edf: no such EDF file"),
    (["seizure", "split", "none.edf"], 1, "none.edf: no such EDF file"),
]


@pytest.mark.parametrize(
    "argv,code,message", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_bad_input_is_one_line(capsys, tmp_path, argv, code, message):
    got, out, err = run_cli(capsys, *argv)
    assert got == code
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_an_interruption_while_the_commands_load_is_one_line(capsys, monkeypatch):
    """Ctrl-C in the first seconds (the commands' modules still importing) ends as any other
    interruption: one line and exit code 130, no traceback."""
    import nnlab.cli

    def interrupted(argv=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(nnlab.cli, "build_app", interrupted)
        code, out, err = run_cli(capsys, "seizure", "bonn", "--help")
    assert code == 130 and err == "nnlab: interrupted\n"

    class Returns130:  # typer's own catch, inside a command: it returns the code
        def main(self, **kwargs):
            return 130

    with monkeypatch.context() as m:
        m.setattr(nnlab.cli.typer.main, "get_command", lambda app: Returns130())
        code, out, err = run_cli(capsys, "seizure", "detect", "x.edf")
    assert code == 130 and err == "nnlab: interrupted\n"


def test_a_step_limit_is_raised_on_resume_and_the_hint_says_how(capsys, tmp_path):
    """A run stopped by --max-steps: the hint names --max-steps, and `--resume --max-steps 0`
    trains to the end (written to the config). Before, the hint led to a resume that stopped at
    once and --max-steps was refused on resume."""
    run = tmp_path / "ms"
    code, out, err = run_cli(capsys, "train", "--data", "digits", "--epochs", "2", "--max-steps",
                             "5", "--out", str(run), "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert "--max-steps N" in out.replace("\n", " ")
    code, out, err = run_cli(capsys, "train", "--resume", str(run), "--max-steps", "0")
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == 0
    assert [r["epoch"] for r in RunDir(run).metrics()] == [1, 2]
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--epochs", "1")
    assert code == 1 and "has finished 2 epochs; --epochs 1 is fewer" in err


def test_out_that_holds_another_runs_files_or_is_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "metrics.jsonl").write_text('{"epoch": 1}\n')
    code, _, err = run_cli(capsys, "train", "--data", "digits", "--out", str(tmp_path / "stale"))
    assert code == 1 and "holds metrics.jsonl of an earlier run" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "train", "--data", "digits", "--out", str(tmp_path / "afile"))
    assert code == 1 and "is a file" in err
    assert (tmp_path / "stale" / "metrics.jsonl").read_text() == '{"epoch": 1}\n'


def test_ctrl_c_before_a_run_begins_keeps_nothing_and_exits_130(capsys, tmp_path, monkeypatch):
    """Interrupted while its data loads (no config.json yet): no folder is left and no resume
    hint that could not work is given; the exit code is 130, as for any interruption."""
    import nnlab.tasks.classify as classify

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(classify.ClassifyTask, "datasets", interrupted)
        code, _, err = run_cli(capsys, "train", "--data", "digits", "--out", str(tmp_path / "r"))
    assert code == 130 and "before the run began; nothing was kept" in err
    assert not (tmp_path / "r").exists()


def test_damaged_or_edited_run_files_are_one_line(capsys, tmp_path):
    """One finished run, damaged in turn: a folder named like a figure is skipped; a summary or
    metrics file that is not a JSON object (or not UTF-8), and a hand-edited config whose values
    are of the wrong kind, each end in one line, not a traceback."""
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", "digits", "--epochs", "1", "--out", str(run),
                           "--device", "cpu")  # fmt: skip
    assert code == 0, err
    (run / "figures" / "odd.png").mkdir()
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0, err
    for name, text, message in (
        ("summary.json", "[1, 2]", "holds a JSON list, not an object"),
        ("summary.json", "{bad", "summary.json: unreadable"),
        ("metrics.jsonl", b"\xff\xfe\x00{", "metrics.jsonl: unreadable"),
    ):
        before = (run / name).read_bytes()
        (run / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        code, _, err = run_cli(capsys, "report", str(run))
        assert code == 1 and message in err and err.count("\n") == 1, (name, err)
        (run / name).write_bytes(before)
    config = json.loads((run / "config.json").read_text())
    for train, message in (("oops", "'train' holds a str"), ({**config["train"], "epochs": "3"},
                           "a value nnlab cannot read")):  # fmt: skip
        (run / "config.json").write_text(json.dumps({**config, "train": train}))
        code, _, err = run_cli(capsys, "train", "--resume", str(run))
        assert code == 1 and message in err and err.count("\n") == 1, err


def test_real_process_errors_without_traceback():
    p = subprocess.run(
        [sys.executable, "-m", "nnlab", "train", "--data", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    assert p.stderr.strip() == "nnlab: error: unknown dataset 'nope' (known: digits, mnist, nist)"


def test_facts_command(capsys):
    code, out, _ = run_cli(capsys, "facts")
    assert code == 0 and "softmax-shift-invariance" in out and "FAIL" not in out
    code, out, _ = run_cli(capsys, "facts", "--list", "--topic", "numpy-engine")
    assert code == 0 and "linear-layers-collapse" in out


def test_train_resume_and_report(capsys, tmp_path):
    out_dir = tmp_path / "r"
    code, out, _ = run_cli(
        capsys,
        "train",
        "--model",
        "cnn",
        "--epochs",
        "2",
        "--limit",
        "300",
        "-m",
        "channels=[8]",
        "--out",
        str(out_dir),
    )
    assert code == 0 and "report:" in out
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model_config"]["channels"] == [8] and config["train"]["epochs"] == 2
    assert [
        json.loads(l)["epoch"] for l in (out_dir / "metrics.jsonl").read_text().splitlines()
    ] == [1, 2]
    # same --out again is refused, resume goes on
    code, _, err = run_cli(capsys, "train", "--out", str(out_dir))
    assert code == 1 and "already holds a run" in err
    code, out, _ = run_cli(capsys, "train", "--resume", str(out_dir))
    assert code == 0 and "resuming" in out and "after epoch 2" in out
    # --epochs extends a finished run: one more epoch, written to its config for later resumes
    code, out, _ = run_cli(capsys, "train", "--resume", str(out_dir), "--epochs", "3")
    assert code == 0 and "2 -> 3 epochs" in out
    config = json.loads((out_dir / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["model_config"]["channels"] == [8]
    assert [
        json.loads(l)["epoch"] for l in (out_dir / "metrics.jsonl").read_text().splitlines()
    ] == [1, 2, 3]
    code, out, _ = run_cli(capsys, "train", "--resume", str(out_dir))
    assert code == 0 and "after epoch 3" in out
    (out_dir / "report.html").unlink()
    code, out, _ = run_cli(capsys, "report", str(out_dir))
    assert code == 0 and (out_dir / "report.html").exists()


def test_demo_writes_report_with_figures(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "demo", "--epochs", "4", "--out", str(tmp_path / "demo"))
    assert code == 0
    path = re.search(r"report: (\S+)", out).group(1)
    assert path.endswith("demo/report.html")
    html = (tmp_path / "demo" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 + 3 * 3  # parent + each model's figures
    assert 'src="http' not in html and "<link" not in html  # self-contained
    for model in ("mlp", "cnn"):
        run = tmp_path / "demo" / model
        expected = {"curves.png", "confusion.png", "misclassified.png"}
        if model == "cnn":
            expected.add("first_layer_filters.png")
        assert {p.name for p in (run / "figures").iterdir()} == expected
        assert (run / "checkpoints" / "best.safetensors").exists()
        summary = json.loads((run / "summary.json").read_text())
        assert summary["test/acc"] > 0.8  # 4 epochs on digits: far above chance (0.1)
        assert model in out
    rows = json.loads((tmp_path / "demo" / "summary.json").read_text())["models"]
    assert [r["model"] for r in rows] == ["mlp", "cnn", "numpy-mlp"]
    numpy_run = tmp_path / "demo" / "numpy-mlp"
    assert (numpy_run / "figures" / "first_layer_weights.png").exists()
    assert json.loads((numpy_run / "summary.json").read_text())["test/acc"] > 0.8


def test_tables_print_brackets_as_text():
    """Rich would read "[c, 1]" as a markup tag and drop it; table cells are escaped."""
    from rich.console import Console

    from nnlab.cli.common import table

    out = Console(width=200, record=True)
    out.print(table([{"statement": "N(0, [[1, c], [c, 1]])"}]))
    assert "N(0, [[1, c], [c, 1]])" in out.export_text()


def test_nnlab_warnings_are_one_line_others_as_python_writes_them():
    import warnings
    from pathlib import Path

    import nnlab.cli as cli
    from nnlab.cli import _warning_line

    default = warnings.formatwarning
    inside = str(Path(cli.__file__).parent / "seizure.py")
    line = _warning_line("a.edf: odd", UserWarning, inside, 3, "code()", default=default)
    assert line == "nnlab: warning: a.edf: odd\n"
    other = _warning_line("deprecated", UserWarning, "/elsewhere/lib.py", 3, "x", default=default)
    assert other == default("deprecated", UserWarning, "/elsewhere/lib.py", 3, "x")
    dep = _warning_line("old", DeprecationWarning, inside, 3, "x", default=default)
    assert "DeprecationWarning" in dep


def test_the_cache_is_listed_and_its_unused_derived_files_cleaned(tmp_path, capsys):
    """`nnlab datasets cache`: a row per folder; --clean removes the files nnlab makes again that
    have not been used for --older-than days (and the folders left empty), never a download;
    --dry-run removes nothing."""
    import os

    cache = tmp_path / "cache"
    old = [cache / "segments" / "set-1.npy", cache / "eeg-windows" / "chb01" / "a-1.npy"]
    fresh = [cache / "segments" / "set-2.npy", cache / "mnist" / "train-images-idx3-ubyte.gz"]
    for path in old + fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    for path in [*old, fresh[1]]:  # the download is old too: it stays
        os.utime(path, (0, 0))
    code, out, _ = run_cli(capsys, "datasets", "cache")
    assert code == 0 and "segments" in out and "made from data" in out and "mnist" in out
    code, out, _ = run_cli(capsys, "datasets", "cache", "--clean", "--dry-run")
    assert code == 0 and "would remove 2 file(s)" in out and all(p.exists() for p in old)
    code, out, _ = run_cli(capsys, "datasets", "cache", "--clean", "--older-than", "7")
    assert code == 0 and "removed 2 file(s)" in out
    assert [p.exists() for p in old + fresh] == [False, False, True, True]
    assert not (cache / "eeg-windows" / "chb01").exists()  # left empty: removed


def test_the_cli_may_open_as_many_files_as_the_system_allows(capsys):
    """A patient's prepared recordings are memory maps, a file descriptor each: the CLI raises
    its soft limit on open files to the hard one (often 1,024 against thousands)."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 300:
        pytest.skip("no finite hard limit above 300 to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        assert run_cli(capsys, "datasets", "cache")[0] == 0
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_open_file_limit_falls_back_below_a_system_cap(monkeypatch):
    """macOS: soft 256, hard unlimited, and a system cap that refuses 65,536 and 10,240: the
    limit is raised to 4,096 all the same."""
    resource = pytest.importorskip("resource")
    from nnlab.cli import more_open_files

    asked = []

    def setrlimit(which, limits):
        asked.append(limits[0])
        if limits[0] > 5000:
            raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, resource.RLIM_INFINITY))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    more_open_files()
    assert asked == [65536, 10240, 4096]


def test_a_comparison_whose_later_model_fails_keeps_the_finished_one(tmp_path):
    """A run folder with a finished child (a comparison, a sweep) is not removed when a later
    child fails: before, the whole folder went, the finished model with it."""
    from nnlab.cli.common import new_run
    from nnlab.errors import NNLabError

    with pytest.raises(NNLabError), new_run("cmp", tmp_path / "cmp") as run:
        (run.path / "unet").mkdir()
        (run.path / "unet" / "metrics.jsonl").write_text('{"epoch": 1}\n')
        raise NNLabError("loss became nan in the second model")
    assert (tmp_path / "cmp" / "unet" / "metrics.jsonl").exists()
    with pytest.raises(NNLabError), new_run("cmp", tmp_path / "empty"):
        raise NNLabError("failed before anything was recorded")
    assert not (tmp_path / "empty").exists()


def test_explain_on_a_model_that_does_not_read_its_data_is_one_line(capsys, tmp_path, monkeypatch):
    """A ViT checkpoint with a config naming other data (hand-edited, or copied from another
    run): before, a shape error deep in the model."""
    run = tmp_path / "vit"
    code, _, err = run_cli(capsys, "train", "--data", "digits", "--model", "vit", "--patch", "4",
                           "--epochs", "1", "--out", str(run), "--device", "cpu")  # fmt: skip
    assert code == 0, err
    from nnlab.data.idx import write_idx

    data = tmp_path / "data" / "mnist"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), np.uint8))  # fmt: skip
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "data": "mnist"}))
    monkeypatch.setenv("NNLAB_DATA", str(tmp_path / "data"))
    code, _, err = run_cli(capsys, "explain", str(run), "--image", "1", "--overwrite")
    assert code == 1 and "does not read the 28x28 images" in err and err.count("\n") == 1
