"""NumPy-engine runs: run directory and report, resume, NaN stop, bad input, the CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from test_cli import run_cli

from nnlab.data import ImageSet
from nnlab.errors import NNLabError
from nnlab.run import RunDir
from nnlab.tasks import numpy_classify
from nnlab.tasks.numpy_classify import NumpyClassifyConfig, build_net, run_numpy_classify
from nnlab.tasks.numpy_experiments import gradient_flow
from nnlab.train import TrainingDiverged
from nnlab.train.numpy_loop import NumpyTrainer, check_inputs


def test_numpy_train_writes_a_full_run(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, "numpy", "train", "--epochs", "3", "--hidden", "32", "--out", str(tmp_path / "r")
    )
    assert code == 0 and "most confused" in out
    run = RunDir(tmp_path / "r")
    assert {p.name for p in run.figures()} == {
        "curves.png",
        "confusion.png",
        "first_layer_weights.png",
    }
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3]
    summary = run.summary()
    assert summary["test/acc"] > 0.8 and summary["parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert (run.path / "checkpoints" / "last.safetensors").exists()
    html = (run.path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "most confused" in html


def test_numpy_cv_on_nist36_files_uses_letters_and_digits(capsys, tmp_path, data_dir):
    rng = np.random.default_rng(0)
    k, n = 36, 180
    labels = np.arange(n) % k
    images = np.ones((n, 32, 32))
    for i, c in enumerate(labels):  # a class-dependent mark so the net has something to learn
        images[i, c % 6 * 5 : (c % 6) * 5 + 5, c // 6 * 5 : (c // 6) * 5 + 5] = 0
    data = images.transpose(0, 2, 1).reshape(n, 1024) + rng.normal(0, 0.02, (n, 1024))
    scipy.io.savemat(
        data_dir / "nist36_valid.mat",
        {"valid_data": data, "valid_labels": np.eye(k, dtype=np.uint8)[labels]},
    )
    code, out, _ = run_cli(
        capsys,
        "numpy",
        "train",
        "--data",
        "nist",
        "--folds",
        "3",
        "--epochs",
        "20",
        "--val-fraction",
        "0",
        "--out",
        str(tmp_path / "cv"),
    )
    assert code == 0 and "3-fold cross-validation" in out
    summary = json.loads((tmp_path / "cv" / "summary.json").read_text())
    assert len(summary["folds"]) == 3 and sum(f["test images"] for f in summary["folds"]) == n
    assert summary["test/acc"] > 0.5  # chance is 1/36
    fold = json.loads((tmp_path / "cv" / "fold0" / "summary.json").read_text())
    names = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    assert all(p["true"] in names and p["predicted"] in names for p in fold["most_confused"])


def test_numpy_resume_is_exact(tmp_path, monkeypatch):
    cfg = NumpyClassifyConfig(epochs=4, hidden=(16,), augment=True, limit=400)
    run_numpy_classify(cfg, RunDir.create("a", tmp_path / "a"))

    original = NumpyTrainer._epoch

    def interrupted(self, epoch, *args):
        if epoch == 3:  # Ctrl-C once epoch 2 is checkpointed
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(NumpyTrainer, "_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_numpy_classify(cfg, RunDir.create("b", tmp_path / "b"))
    assert [r["epoch"] for r in RunDir(tmp_path / "b").metrics()] == [1, 2]
    monkeypatch.setattr(NumpyTrainer, "_epoch", original)
    run_numpy_classify(cfg, RunDir(tmp_path / "b"), resume=True)

    def strip(rs):
        return [{k: v for k, v in r.items() if k != "time/epoch_s"} for r in rs]

    assert strip(RunDir(tmp_path / "b").metrics()) == strip(RunDir(tmp_path / "a").metrics())
    a, b = (open(tmp_path / d / "checkpoints" / "last.safetensors", "rb").read() for d in "ab")
    assert a == b


def test_nan_loss_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = NumpyClassifyConfig(epochs=2, hidden=(16,), limit=300)
    run = RunDir.create("n", tmp_path / "n")
    run_numpy_classify(cfg, run)
    before = (run.checkpoint_dir / "last.safetensors").read_bytes()
    resume_cfg = NumpyClassifyConfig(epochs=4, hidden=(16,), limit=300)
    original = NumpyTrainer.resume

    def poisoned(self):
        done = original(self)
        self.net.layers[0].W.data[0, 0] = np.nan  # e.g. a bad update: the loss turns NaN
        return done

    monkeypatch.setattr(NumpyTrainer, "resume", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 3, batch 1.*epoch 2"):
        run_numpy_classify(resume_cfg, run, resume=True)
    assert (run.checkpoint_dir / "last.safetensors").read_bytes() == before


def test_diverging_lr_is_a_clear_cli_error(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "numpy", "train", "--epochs", "2", "--lr", "1e30", "--out", str(tmp_path / "d")
    )
    assert code == 1 and "loss became nan" in err and "smaller --lr" in err and err.count("\n") == 1


def test_a_huge_but_finite_loss_is_a_divergence_too(capsys, tmp_path):
    """The stable cross-entropy keeps a diverged run's loss finite (here ~1e16): a mean above
    100 x chance's loss after an epoch is a divergence. Before, a sweep called it "ok"."""
    code, _, err = run_cli(capsys, "numpy", "train", "--data", "digits", "--epochs", "2",
                           "--lr", "1e5", "--out", str(tmp_path / "d"))  # fmt: skip
    assert code == 1 and "its mean over the epoch" in err and "smaller --lr" in err


def test_bad_inputs_are_named():
    x, y = np.zeros((4, 64), np.float32), np.array([0, 1, 2, 3])
    check_inputs(x, y, 64, 10, "data")
    with pytest.raises(NNLabError, match=r"shape \(4, 63\).*\(N, 64\)"):
        check_inputs(x[:, :63], y, 64, 10, "data")
    with pytest.raises(NNLabError, match="labels must lie in 0..9, found 0..12"):
        check_inputs(x, np.array([0, 1, 2, 12]), 64, 10, "data")
    with pytest.raises(NNLabError, match="labels must be integers"):
        check_inputs(x, y.astype(float), 64, 10, "data")
    bad = x.copy()
    bad[2, 5] = np.nan
    with pytest.raises(NNLabError, match="1 NaN or infinite input values \\(first in sample 2\\)"):
        check_inputs(bad, y, 64, 10, "data")
    with pytest.raises(NNLabError, match="4 inputs but labels"):
        check_inputs(x, y[:3], 64, 10, "data")


def test_nan_in_training_data_stops_before_training(tmp_path, monkeypatch):
    real = numpy_classify.load_data

    def with_nan(cfg):
        data = real(cfg)
        images = data["train"].images.copy()
        images[3, 0, 2, 2] = np.nan
        data["train"] = ImageSet(images, data["train"].labels, data["train"].class_names)
        return data

    monkeypatch.setattr(numpy_classify, "load_data", with_nan)
    with pytest.raises(NNLabError, match="training data: 1 NaN"):
        run_numpy_classify(NumpyClassifyConfig(epochs=1), RunDir.create("x", tmp_path / "x"))


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--hidden", "64,x"], "--hidden expects"),
        (["--hidden", "0"], "widths must be >= 1"),
        (["--activation", "elu"], "activation must be one of"),
        (["--init", "orthogonal"], "init must be one of"),
        (["--lr", "-0.1"], "learning rate must be > 0"),
        (["--folds", "3", "--data", "mnist"], "nnlab datasets fetch mnist"),
    ],
)
def test_numpy_cli_bad_input(capsys, tmp_path, argv, message):
    code, _, err = run_cli(capsys, "numpy", "train", *argv)
    assert code == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_sweep_lr_puts_three_runs_in_one_figure(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "numpy",
        "sweep-lr",
        "--epochs",
        "3",
        "--lr",
        "0.05",
        "--limit",
        "300",
        "--out",
        str(tmp_path / "s"),
    )
    assert code == 0
    run = RunDir(tmp_path / "s")
    assert sorted(c.path.name for c in run.children()) == ["lr-0.005", "lr-0.05", "lr-0.5"]
    assert [r["lr"] for r in run.summary()["sweep"]] == pytest.approx([0.005, 0.05, 0.5])
    assert (run.figure_dir / "curves.png").exists()


def test_gradient_flow_vanishes_without_skips_for_sigmoid():
    r = gradient_flow(depth=20, activations=("sigmoid",), steps=0)
    plain, residual = r["sigmoid/plain"]["init"], r["sigmoid/residual"]["init"]
    assert plain[0] / plain[-2] < 1e-6  # first hidden layer gets a millionth of the last one's
    assert residual[0] / residual[-2] > 1e-2


def test_experiment_commands(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "numpy",
        "gradient-flow",
        "--depth",
        "8",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "g"),
    )
    assert code == 0 and (tmp_path / "g" / "figures" / "gradient_flow.png").exists()
    code, out, _ = run_cli(capsys, "numpy", "least-squares", "--out", str(tmp_path / "l"))
    rows = json.loads((tmp_path / "l" / "summary.json").read_text())["least_squares"]
    assert code == 0 and all(r["|b1 - c| / sd"] < 5 for r in rows)
    code, out, _ = run_cli(capsys, "numpy", "perceptron")
    assert code == 0 and "XOR" in out and "[1, 1, 1, 0]" in out


def test_build_net_shapes():
    net = build_net(NumpyClassifyConfig(hidden=(20, 10)), (1, 8, 8), 5)
    assert net(np.zeros((3, 64), np.float32)).shape == (3, 5)
    assert net.layers[0].W.data.dtype == np.float32
    cnn = build_net(NumpyClassifyConfig(arch="cnn", channels=(4, 6)), (1, 28, 28), 7)
    assert cnn(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 7)
    with pytest.raises(NNLabError, match="halve"):
        build_net(NumpyClassifyConfig(arch="cnn", channels=(4, 4, 4, 4)), (1, 8, 8), 3)


def test_numpy_cnn_run(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, "numpy", "train", "--arch", "cnn", "--epochs", "4", "--out", str(tmp_path / "c")
    )
    assert code == 0
    run = RunDir(tmp_path / "c")
    assert run.summary()["test/acc"] > 0.85 and run.summary()["arch"] == "cnn"
    assert (run.figure_dir / "first_layer_filters.png").exists()


def test_numpy_commands_run_without_torch(tmp_path):
    """Every `nnlab numpy` command, in a fresh interpreter where `import torch` fails: the engine,
    its trainer, the shared bookkeeping, the run directory and the report need no torch."""
    script = """
import sys


class NoTorch:  # any import of torch now raises ImportError
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked here")


sys.meta_path.insert(0, NoTorch())
from nnlab.cli import main
commands = [["train", "--epochs", "2", "--out", "t"], ["train", "--resume", "t"],
            ["train", "--arch", "cnn", "--epochs", "1", "--limit", "200", "--out", "c"],
            ["train", "--epochs", "1", "--folds", "2", "--val-fraction", "0", "--out", "cv"],
            ["sweep-lr", "--epochs", "1", "--out", "sw"], ["least-squares", "--out", "ls"],
            ["gradient-flow", "--depth", "3", "--steps", "1", "--out", "gf"], ["perceptron"]]
for argv in commands:
    try:
        main(["numpy", *argv])
    except SystemExit as e:
        assert e.code == 0, (argv, e.code)
print("torch modules:", sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "torch modules: []" in p.stdout
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["epochs"] == 2


def test_cross_validation_resumes_and_keeps_the_finished_folds(capsys, tmp_path, monkeypatch):
    """Ctrl-C in fold 2 of 3: `--resume` keeps fold 1 as it was, trains folds 2 and 3, and the
    result equals an uninterrupted run's. Before, the printed resume command was refused ('not
    a NumPy classification run') and every fold had to be trained again."""
    argv = ["numpy", "train", "--data", "digits", "--epochs", "2", "--hidden", "16", "--folds",
            "3", "--val-fraction", "0"]  # fmt: skip
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "full"))
    assert code == 0, err
    calls = {"n": 0}
    original = numpy_classify.run_numpy_classify

    def interrupted_in_fold_2(cfg, run, console=None, resume=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(cfg, run, console, resume)

    with monkeypatch.context() as m:
        m.setattr(numpy_classify, "run_numpy_classify", interrupted_in_fold_2)
        code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "cv"))
    assert code == 130 and "--resume" in err
    first = (tmp_path / "cv" / "fold0" / "summary.json").read_text()
    code, _, err = run_cli(capsys, "numpy", "train", "--resume", str(tmp_path / "cv"))
    assert code == 0, err
    assert (tmp_path / "cv" / "fold0" / "summary.json").read_text() == first
    full = RunDir(tmp_path / "full").summary()
    again = RunDir(tmp_path / "cv").summary()
    assert again["test/acc"] == full["test/acc"] and len(again["folds"]) == 3
