"""The shared training loop: exact resume, NaN stop keeping the last good checkpoint, checkpoints,
schedule, early stopping; and the models' smoke tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nnlab.config import from_dict, to_dict
from nnlab.errors import NNLabError
from nnlab.models import build_model, count_parameters, model_config
from nnlab.run import RunDir
from nnlab.tasks.classify import ClassifyTask
from nnlab.train import TrainConfig, Trainer, TrainingDiverged, load_checkpoint, save_checkpoint
from nnlab.train.loop import lr_factor


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].sum((1, 2)) > x[:, 0, 4:].sum((1, 2))).long() + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0).long()
    return torch.utils.data.TensorDataset(x, y)


def _trainer(run, epochs, model="mlp", **kw):
    torch.manual_seed(0)
    args = {"in_shape": (1, 8, 8), "hidden": (32,)} if model == "mlp" else {"channels": (8,)}
    net = build_model(model, model_config(model, num_classes=4, **args))
    cfg = TrainConfig(**{"epochs": epochs, "batch_size": 16, "lr": 1e-2, "device": "cpu",
                         "monitor": "val/acc", **kw})
    return Trainer(net, ClassifyTask(4), cfg, run)


class _Interrupting:
    """A task that behaves like `task` until its n-th training step, where the user hits Ctrl-C."""

    def __init__(self, task, after_steps: int):
        self.task, self.left = task, after_steps

    def step(self, model, batch):
        if model.training:
            self.left -= 1
            if self.left < 0:
                raise KeyboardInterrupt
        return self.task.step(model, batch)

    def metrics(self):
        return self.task.metrics()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_resume_continues_exactly(tmp_path, model):
    """A run stopped after epoch 2 and resumed to epoch 5 logs the same metrics and ends with the
    same weights as an uninterrupted 5-epoch run (dropout, shuffling, AdamW state, BN stats, lr)."""
    train, val = _data(), _data(48, seed=1)
    full = _trainer(RunDir.create("a", tmp_path / "a"), 5, model)
    full.fit(train, val)

    part = _trainer(RunDir.create("b", tmp_path / "b"), 5, model)
    part.task = _Interrupting(part.task, after_steps=2 * 6 + 3)  # 96 / 16 = 6 steps per epoch
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of epoch 3
        part.fit(train, val)
    resumed = _trainer(RunDir(tmp_path / "b"), 5, model)
    assert resumed.resume() == 2
    resumed.fit(train, val)

    def strip(rs):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]

    assert strip(RunDir(tmp_path / "b").metrics()) == strip(RunDir(tmp_path / "a").metrics())
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = RunDir.create("n", tmp_path / "n")
    t = _trainer(run, 4)
    t.fit(_data(), _data(32, 1))  # 4 good epochs
    good = load_checkpoint(run.checkpoint_dir / "last.safetensors")
    before = (run.checkpoint_dir / "last.safetensors").read_bytes()

    t2 = _trainer(run, 6)
    t2.resume()
    with torch.no_grad():
        next(t2.model.parameters()).fill_(float("nan"))  # poison the weights: the loss turns NaN
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 5, step 1.*epoch 4"):
        t2.fit(_data(), _data(32, 1))
    assert good["epoch"] == 4
    assert (run.checkpoint_dir / "last.safetensors").read_bytes() == before
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3, 4]


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    t = _trainer(None, 1)
    t.fit(_data())
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, t.model, t.optimizer, {"epoch": 1, "note": "x"})
    t2 = _trainer(None, 1)
    assert load_checkpoint(path, t2.model, t2.optimizer) == {"epoch": 1, "note": "x"}
    for a, b in zip(t.model.parameters(), t2.model.parameters()):
        assert torch.equal(a, b)
    s1, s2 = t.optimizer.state_dict(), t2.optimizer.state_dict()
    assert all(torch.equal(s1["state"][i]["exp_avg"], s2["state"][i]["exp_avg"]) for i in s1["state"])
    assert (tmp_path / "c.json").exists()
    raw = path.read_bytes()
    (tmp_path / "bad.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(NNLabError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path / "bad.safetensors", t2.model)
    other = build_model("mlp", model_config("mlp", in_shape=(1, 8, 8), hidden=(7,), num_classes=4))
    with pytest.raises(NNLabError, match="do not fit the model"):
        load_checkpoint(path, other)


def test_lr_schedule():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(70, 100, 0, "constant") == 1.0


def test_early_stopping(tmp_path):
    t = _trainer(RunDir.create("e", tmp_path / "e"), 50, patience=2, lr=1e-9)  # nothing improves
    history = t.fit(_data(), _data(32, 1))
    assert len(history) == 3 and t.best_epoch == 1


def test_bad_train_config():
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"lr": -1.0}, {"optimizer": "adam9"}):
        with pytest.raises(NNLabError):
            TrainConfig(**bad).validate()
    if not torch.cuda.is_available():  # on a CUDA machine the same config is valid
        with pytest.raises(NNLabError, match="no CUDA"):
            Trainer(nn.Linear(2, 2), ClassifyTask(2), TrainConfig(device="cuda"), None)


@pytest.mark.parametrize("name,shape", [("mlp", (1, 28, 28)), ("cnn", (1, 28, 28)), ("cnn", (3, 32, 32))])
def test_models_smoke(name, shape):
    args = {"in_shape": shape} if name == "mlp" else {"in_channels": shape[0]}
    model = build_model(name, model_config(name, num_classes=7, **args))
    x = torch.randn(5, *shape)
    out = model(x)
    assert out.shape == (5, 7) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert count_parameters(model) > 0


def test_config_roundtrip_is_strict():
    cfg = TrainConfig(epochs=3, lr=0.1)
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    mcfg = model_config("mlp", hidden=[8, 4])
    assert mcfg.hidden == (8, 4)
    with pytest.raises(NNLabError, match="unknown field"):
        from_dict(TrainConfig, {"epochs": 3, "lr_typo": 1})
    with pytest.raises(NNLabError, match="no option"):
        model_config("cnn", hidden=3)
    assert math.isfinite(np.float64(cfg.lr))
