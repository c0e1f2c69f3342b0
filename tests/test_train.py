"""The shared training loop: exact resume (at epoch ends, inside an epoch, with EMA and gradient
accumulation), NaN stop keeping the last good checkpoint, checkpoints, schedule, early stopping,
step and time budgets, named loss terms, the epoch hook, collate functions, samplers, the
monitor's explicit direction; and the bookkeeping both engines share."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import nnlab.train.loop as loop
from nnlab.config import from_dict, to_dict
from nnlab.errors import NNLabError
from nnlab.models import build_model, model_config
from nnlab.run import RunDir
from nnlab.tasks.classify import ClassifyTask
from nnlab.train import (
    StepOutput,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_checkpoint,
    save_checkpoint,
)
from nnlab.train.core import Bookkeeper, lr_factor, read_checkpoint
from nnlab.train.ema import EMA


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].sum((1, 2)) > x[:, 0, 4:].sum((1, 2))).long() + 2 * (
        x[:, 0, :, :4].mean((1, 2)) > 0
    ).long()
    return TensorDataset(x, y)


def _trainer(run, epochs, model="mlp", task=None, **kw):
    torch.manual_seed(0)
    args = {"in_shape": (1, 8, 8), "hidden": (32,)} if model == "mlp" else {"channels": (8,)}
    net = build_model(model, model_config(model, num_classes=4, **args))
    cfg = TrainConfig(
        **{
            "epochs": epochs,
            "batch_size": 16,
            "lr": 1e-2,
            "device": "cpu",
            "monitor": "val/acc",
            "mode": "max",
            **kw,
        }
    )
    return Trainer(net, task or ClassifyTask.for_classes(4), cfg, run)


class _Interrupting:
    """A task that behaves like `task` until its n-th training step, where the user hits Ctrl-C."""

    def __init__(self, task, after_steps: int):
        self.task, self.left = task, after_steps

    def loss(self, model, batch):
        if model.training:
            self.left -= 1
            if self.left < 0:
                raise KeyboardInterrupt
        return self.task.loss(model, batch)

    def metrics(self):
        return self.task.metrics()


def _strip(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def _interrupted_then_resumed(tmp_path, model, steps, **kw):
    """An uninterrupted run, and one killed after `steps` training steps and resumed."""
    train, val = _data(), _data(48, seed=1)
    full = _trainer(RunDir.create("a", tmp_path / "a"), 5, model, **kw)
    full.fit(train, val)
    part = _trainer(RunDir.create("b", tmp_path / "b"), 5, model, **kw)
    part.task = _Interrupting(part.task, after_steps=steps)
    with pytest.raises(KeyboardInterrupt):
        part.fit(train, val)
    resumed = _trainer(RunDir(tmp_path / "b"), 5, model, **kw)
    done = resumed.resume()
    resumed.fit(train, val)
    assert _strip(RunDir(tmp_path / "b").metrics()) == _strip(RunDir(tmp_path / "a").metrics())
    _same_weights(full.module, resumed.module)
    return full, resumed, done


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_resume_continues_exactly(tmp_path, model):
    """Stopped in the middle of epoch 3 and resumed to epoch 5: the same metrics and weights as an
    uninterrupted run (dropout, shuffling, AdamW state, BN statistics, learning rate)."""
    _, _, done = _interrupted_then_resumed(tmp_path, model, 2 * 6 + 3)  # 96 / 16 = 6 steps/epoch
    assert done == 2


def test_resume_with_ema_and_accumulation_inside_an_epoch(tmp_path):
    """EMA on, 2 micro-batches per step, a checkpoint every 2 optimizer steps: killed after 17
    micro-batches (epoch 3, after its 4th) and resumed from the mid-epoch checkpoint, the run ends
    exactly as the uninterrupted one: weights, averaged weights, logged figures."""
    full, resumed, done = _interrupted_then_resumed(
        tmp_path, "cnn", 17, ema=0.9, accumulate=2, checkpoint_every=2
    )
    assert done == 2 and resumed.step == full.step == 5 * 3
    _same_weights(full.ema.module, resumed.ema.module)
    state = read_checkpoint(tmp_path / "b" / "checkpoints" / "best.safetensors", "pt")[1]
    assert state["weights"] == "ema" and state["model"] == {}


def test_accumulation_equals_the_large_batch():
    """Two micro-batches of 8 per step take the same SGD steps as batches of 16 (no dropout, no
    batch-dependent layers): the loss is the mean over the group."""
    nets = []
    for batch, accumulate in ((16, 1), (8, 2)):
        torch.manual_seed(0)
        net = build_model(
            "mlp", model_config("mlp", in_shape=(1, 8, 8), hidden=(16,), num_classes=4, dropout=0.0)
        )
        cfg = TrainConfig(
            epochs=2,
            batch_size=batch,
            accumulate=accumulate,
            lr=0.1,
            optimizer="sgd",
            grad_clip=0,
            device="cpu",
            monitor="train/loss",
        )
        t = Trainer(net, ClassifyTask.for_classes(4), cfg)
        t.fit(_data())
        nets.append(t)
    assert nets[0].step == nets[1].step == 12
    for a, b in zip(nets[0].module.parameters(), nets[1].module.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_ema_follows_its_formula_and_is_what_is_evaluated():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema, expect = EMA(model, decay=0.9), model.weight.detach().clone()
    for step in range(1, 6):
        with torch.no_grad():
            model.weight.add_(1.0)
        ema.update(model, step)
        d = min(0.9, (1 + step) / (10 + step))
        expect = d * expect + (1 - d) * model.weight.detach()
        torch.testing.assert_close(ema.module.weight, expect)
    t = _trainer(None, 2, ema=0.99)
    t.fit(_data())
    data = _data(48, seed=1)
    direct = Trainer(t.ema.module, ClassifyTask.for_classes(4), t.cfg).evaluate(data)
    assert t.evaluate(data) == direct
    assert (
        t.evaluate(data)["loss"]
        != Trainer(t.module, ClassifyTask.for_classes(4), t.cfg).evaluate(data)["loss"]
    )


def test_time_budget_stops_cleanly_and_the_run_continues_exactly(tmp_path):
    """A budget spent after the first step stops inside epoch 1 with a checkpoint; resumed without
    a budget, the run finishes exactly as one that never stopped."""
    train, val = _data(), _data(48, seed=1)
    full = _trainer(RunDir.create("a", tmp_path / "a"), 3)
    full.fit(train, val)
    part = _trainer(RunDir.create("b", tmp_path / "b"), 3, budget_min=1e-9)
    part.fit(train, val)
    assert part.step == 1 and "time budget" in part.stopped and len(part.history) == 1
    state = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.safetensors")
    assert (state["epoch"], state["batch"], state["step"]) == (0, 1, 1)
    resumed = _trainer(RunDir(tmp_path / "b"), 3)
    assert resumed.resume() == 0
    resumed.fit(train, val)
    assert resumed.stopped is None
    assert _strip(RunDir(tmp_path / "b").metrics()) == _strip(RunDir(tmp_path / "a").metrics())
    _same_weights(full.module, resumed.module)


def test_max_steps_stop_and_the_schedule_ends_there():
    t = _trainer(None, 10, max_steps=8)
    t.fit(_data(), _data(32, 1))
    assert t.step == 8 and "8 optimizer steps" in t.stopped
    assert [r["epoch"] for r in t.history] == [1, 2] and t.history[-1][
        "lr"
    ] < 0.05 * t.cfg.lr  # cosine ends at step 8


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = RunDir.create("n", tmp_path / "n")
    t = _trainer(run, 4)
    t.fit(_data(), _data(32, 1))  # 4 good epochs
    good = load_checkpoint(run.checkpoint_dir / "last.safetensors")
    before = (run.checkpoint_dir / "last.safetensors").read_bytes()
    t2 = _trainer(run, 6)
    t2.resume()
    with torch.no_grad():
        next(t2.module.parameters()).fill_(float("nan"))  # poison the weights: the loss turns NaN
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 5, step 1.*epoch 4"):
        t2.fit(_data(), _data(32, 1))
    assert good["epoch"] == 4
    assert (run.checkpoint_dir / "last.safetensors").read_bytes() == before
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3, 4]


class _NanValidationAt:
    """A task whose validation loss turns NaN from epoch `epoch` on (finite weights that
    overflow on the validation data, as a diverging diffusion run showed)."""

    def __init__(self, task, epoch: int):
        self.task, self.epoch, self.seen = task, epoch, 0

    def loss(self, model, batch):
        out = self.task.loss(model, batch)
        if not model.training and self.seen >= self.epoch:
            out.losses["loss"] = out.loss * float("nan")
        return out

    def on_epoch_end(self, trainer, epoch):
        return {}

    def metrics(self):
        return self.task.metrics()


def test_a_nan_validation_loss_is_a_divergence_and_never_the_best(tmp_path):
    """Epochs 1-2 good; epoch 3's validation loss NaN: the error names it and the checkpoints of
    epoch 2 stay (before, NaN was taken for the best and saved as "the last good")."""
    run = RunDir.create("v", tmp_path / "v")
    task = _NanValidationAt(ClassifyTask.for_classes(4), 3)
    t = _trainer(run, 4, task=task, monitor="val/loss", mode="min")
    counting = t._train_epoch

    def train_epoch(epoch, *a):
        task.seen = epoch
        return counting(epoch, *a)

    t._train_epoch = train_epoch
    with pytest.raises(TrainingDiverged, match=r"nan at epoch 3, val/loss on the validation"):
        t.fit(_data(), _data(32, 1))
    assert load_checkpoint(run.checkpoint_dir / "last.safetensors")["epoch"] == 2
    assert load_checkpoint(run.checkpoint_dir / "best.safetensors")["epoch"] <= 2
    books = Bookkeeper("val/loss", "min")
    assert books.end_epoch({"epoch": 1, "val/loss": float("nan")}) is False


def test_the_best_checkpoint_is_written_before_the_last(tmp_path, monkeypatch):
    """A stop between the two writes must leave `last` an epoch behind (that epoch is redone on
    resume), never `last` ahead of `best` (a resumed run then scored stale weights as the best
    epoch's)."""
    order = []
    run = RunDir.create("o", tmp_path / "o")
    t = _trainer(run, 2)
    monkeypatch.setattr(t, "_save_best", lambda epoch: order.append(("best", epoch)))
    monkeypatch.setattr(t, "_save_last", lambda epoch, partial=None: order.append(("last", epoch)))
    t.fit(_data(), _data(32, 1))
    assert order[:2] == [("best", 1), ("last", 1)]


def test_resume_without_a_checkpoint_starts_over_without_the_old_records(tmp_path):
    """Stopped after an epoch's record was written but before its checkpoint: resumed, the run
    starts at epoch 1 and its metrics hold each epoch once."""
    run = RunDir.create("r", tmp_path / "r")
    _trainer(run, 2).fit(_data(), _data(32, 1))
    for f in run.checkpoint_dir.glob("last.*"):
        f.unlink()
    again = _trainer(run, 2)
    assert again.resume() == 0
    again.fit(_data(), _data(32, 1))
    assert [r["epoch"] for r in run.metrics()] == [1, 2]


class _NanAt:
    """A task that behaves like `task` but whose n-th training loss is NaN."""

    def __init__(self, task, at_step: int):
        self.task, self.left = task, at_step

    def loss(self, model, batch):
        out = self.task.loss(model, batch)
        if model.training:
            self.left -= 1
            if self.left == 0:
                out.losses["loss"] = out.loss * float("nan")
        return out

    def metrics(self):
        return self.task.metrics()


def test_losses_read_every_few_steps_give_the_same_figures_and_name_the_nan_step(tmp_path):
    """On a GPU the loop reads the losses back every 25 steps, not every step (no wait for the
    device per step). Forced here on the CPU: the same epoch figures as reading every step, and
    a NaN at the 11th step (epoch 2, step 5; read at the epoch's end) is reported at its own
    step, and the checkpoint taken inside the epoch before it (step 10) is the last one written."""
    every_step = _trainer(None, 2)
    every_step.fit(_data(), _data(32, 1))
    batched = _trainer(None, 2)
    batched.read_every = 4  # 6 steps per epoch: reads at steps 4 and the epoch's end
    batched.fit(_data(), _data(32, 1))
    assert _strip(batched.history) == _strip(every_step.history)
    assert batched.history[-1]["train/loss"] > 0

    run = RunDir.create("n", tmp_path / "n")
    t = _trainer(run, 3, task=_NanAt(ClassifyTask.for_classes(4), 11), checkpoint_every=2)
    t.read_every = 4
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 5.*epoch 1"):
        t.fit(_data(), _data(32, 1))
    assert [r["epoch"] for r in run.metrics()] == [1]
    state = load_checkpoint(run.checkpoint_dir / "last.safetensors")
    assert state["step"] == 10 and state["partial"]["sums"]["loss"] < 1e6  # finite, before it


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    t = _trainer(None, 1)
    t.fit(_data())
    path = tmp_path / "c.safetensors"
    save_checkpoint(
        path,
        t.model,
        t.optimizer,
        {"epoch": 1, "note": "x"},
        meta={"model": {"name": "mlp", "config": {"hidden": [32]}}},
    )
    t2 = _trainer(None, 1)
    assert load_checkpoint(path, t2.model, t2.optimizer) == {"epoch": 1, "note": "x"}
    _same_weights(t.model, t2.model)
    s1, s2 = t.optimizer.state_dict(), t2.optimizer.state_dict()
    assert all(
        torch.equal(s1["state"][i]["exp_avg"], s2["state"][i]["exp_avg"]) for i in s1["state"]
    )
    meta = read_checkpoint(path, "pt")[1]
    assert meta["format"] == 1 and meta["engine"] == "torch" and meta["model"]["name"] == "mlp"
    assert (tmp_path / "c.json").exists()
    raw = path.read_bytes()
    (tmp_path / "bad.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(NNLabError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path / "bad.safetensors", t2.model)
    other = build_model("mlp", model_config("mlp", in_shape=(1, 8, 8), hidden=(7,), num_classes=4))
    with pytest.raises(NNLabError, match="do not fit the model"):
        load_checkpoint(path, other)
    with pytest.raises(NNLabError, match="checkpoint of the torch engine"):
        read_checkpoint(path, "np")


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


def test_bookkeeper_direction_is_explicit(tmp_path):
    """The same figures pick opposite best epochs under min and max; without validation figures
    the latest epoch is the best; a monitor that is never logged is an error."""
    recs = [
        {"epoch": e, "val/cer": v, "time/epoch_s": 0.0} for e, v in ((1, 0.5), (2, 0.2), (3, 0.9))
    ]
    for mode, best in (("min", 2), ("max", 3)):
        books = Bookkeeper("val/cer", mode)
        for r in recs:
            books.end_epoch(r)
        assert books.best_epoch == best
    books = Bookkeeper("val/cer", "min")
    assert all(books.end_epoch({"epoch": e, "train/loss": 1.0}) for e in (1, 2))
    with pytest.raises(NNLabError, match="monitor 'val/cer' is not a logged figure"):
        Bookkeeper("val/cer", "min").end_epoch({"epoch": 1, "val/wer": 0.1})
    with pytest.raises(NNLabError, match="val/acc is better when higher: use --mode max"):
        _trainer(None, 1, mode="min").fit(_data())


class _TermsTask:
    """Two named loss terms, an extra figure from the epoch hook, variable-length targets."""

    collate_fn = staticmethod(
        lambda items: (torch.stack([x for x, _ in items]), [t for _, t in items])
    )

    def loss(self, model, batch):
        x, targets = batch  # targets: a list of 1-D tensors of different lengths
        out = model(x).mean(1)
        a = ((out - torch.stack([t.float().mean() for t in targets])) ** 2).mean()
        b = out.abs().mean()
        return StepOutput({"loss": a + 0.1 * b, "fit": a, "size": b})

    def metrics(self):
        return torchmetrics.MetricCollection({})

    def on_epoch_end(self, trainer, epoch):
        return {"val/score": 1.0 / epoch}


def test_named_terms_hook_and_collate_fn():
    data = [(torch.randn(1, 8, 8), torch.arange(i % 5 + 1)) for i in range(40)]
    t = _trainer(None, 3, task=_TermsTask(), monitor="val/score", mode="max")
    history = t.fit(data, data)
    r = history[-1]
    assert {"train/loss", "train/fit", "train/size", "val/loss", "val/fit", "val/size"} <= set(r)
    assert r["train/loss"] == pytest.approx(r["train/fit"] + 0.1 * r["train/size"], rel=1e-6)
    assert [h["val/score"] for h in history] == [1.0, 0.5, 1 / 3] and t.best_epoch == 1


def test_orders_reproduce_dataloader_and_distributed_sampler(monkeypatch):
    """The loop's sample order is a shuffling DataLoader's (one process) and DistributedSampler's
    shard (DDP), so runs from before the loop built its own loader reproduce."""
    data, t = _data(50), _trainer(None, 1, seed=3)
    g = torch.Generator().manual_seed(3 * 100_003 + 2)
    ref = [
        int(i) for b in DataLoader(range(50), batch_size=50, shuffle=True, generator=g) for i in b
    ]
    assert t.order(len(data), 2, True) == ref
    t.distributed = True
    monkeypatch.setattr(loop, "world_size", lambda: 3)
    for r in range(3):
        monkeypatch.setattr(loop, "rank", lambda r=r: r)
        for train in (True, False):
            s = DistributedSampler(range(50), num_replicas=3, rank=r, shuffle=train, seed=3)
            s.set_epoch(2)
            assert t.order(50, 2 if train else 0, train) == list(s)


def test_balanced_sampler_draws_every_class_equally():
    y = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    data = TensorDataset(torch.zeros(1000, 1, 8, 8), y)
    t = _trainer(None, 1, sampler="balanced")
    counts = torch.bincount(y[t.order(1000, 1, True, t._sample_weights(data))], minlength=3)
    # each class 1/3 of 1000 draws: sd = sqrt(1000 * 1/3 * 2/3) = 15; 5 sd = 75
    assert (counts - 1000 / 3).abs().max() < 75, counts
    assert t.order(1000, 1, True, t._sample_weights(data)) != t.order(
        1000, 2, True, t._sample_weights(data)
    )


def test_bad_train_config():
    for bad in (
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": -1.0},
        {"optimizer": "adam9"},
        {"accumulate": 0},
        {"ema": 1.0},
        {"mode": "up"},
        {"sampler": "x"},
        {"monitor": "acc"},
        {"budget_min": -1.0},
    ):
        with pytest.raises(NNLabError):
            TrainConfig(**bad).validate()
    if not torch.cuda.is_available():  # on a CUDA machine the same config is valid
        with pytest.raises(NNLabError, match="no CUDA"):
            Trainer(nn.Linear(2, 2), ClassifyTask.for_classes(2), TrainConfig(device="cuda"), None)


def test_config_roundtrip_is_strict():
    cfg = TrainConfig(epochs=3, lr=0.1, ema=0.5)
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    assert model_config("mlp", hidden=[8, 4]).hidden == (8, 4)
    with pytest.raises(NNLabError, match="unknown field"):
        from_dict(TrainConfig, {"epochs": 3, "lr_typo": 1})
    with pytest.raises(NNLabError, match="no option"):
        model_config("cnn", hidden=3)


def test_channels_last_changes_the_layout_not_the_result():
    """NHWC weights and inputs (for tensor cores on CUDA) give the same training run."""
    runs = []
    for channels_last in (False, True):
        t = _trainer(None, 2, "cnn", channels_last=channels_last)
        t.fit(_data(), _data(32, 1))
        runs.append(t)
    conv = next(m for m in runs[1].module.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(runs[0].module.parameters(), runs[1].module.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_bf16_on_the_cpu_only_when_asked_and_it_trains_like_fp32():
    """precision auto stays fp32 on the CPU (results as before); bf16 is honoured there: the
    conv runs in bf16 under autocast, and two epochs end at the fp32 run's held-out loss."""
    seen = {}
    runs = {}
    for precision in ("auto", "bf16"):
        t = _trainer(None, 2, "cnn", precision=precision)
        conv = next(m for m in t.module.modules() if isinstance(m, nn.Conv2d))
        hook = conv.register_forward_hook(
            lambda m, i, o, p=precision: seen.setdefault(p, o.dtype) and None
        )
        t.fit(_data(), _data(32, 1))
        hook.remove()
        runs[precision] = t
    assert runs["auto"].amp_dtype is None and seen["auto"] == torch.float32
    assert runs["bf16"].amp_dtype == torch.bfloat16 and seen["bf16"] == torch.bfloat16
    a, b = (torch.cat([p.flatten() for p in runs[k].module.parameters()]) for k in runs)
    assert a.dtype == b.dtype == torch.float32  # the weights stay fp32; only the products are bf16
    assert not torch.equal(a, b)
    x, y = _data(200, seed=7).tensors
    with torch.no_grad():
        loss = {k: F.cross_entropy(t.module.eval()(x), y).item() for k, t in runs.items()}
    assert abs(loss["bf16"] - loss["auto"]) < 0.02  # measured 0.0002 (both about 1.378)
