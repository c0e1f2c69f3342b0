"""The Vision Transformer written from the formulas, its attention maps, and the training loop's
distributed, precision and schedule options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import run_cli

from nnlab.data.augment import random_affine_torch
from nnlab.models import build_model, model_config
from nnlab.models.layers import Attention, PatchEmbed
from nnlab.train.loop import lr_factor
from nnlab.viz.attention import cls_attention, rollout


@pytest.mark.parametrize("patch,tokens", [((7, 7), 16), ((1, 28), 28), ((4, 4), 49), ((1, 7), 112)])
def test_vit_shapes_backward_and_attention(patch, tokens):
    torch.manual_seed(0)
    model = build_model("vit", model_config("vit", patch=patch, dim=32, depth=2, heads=4))
    x = torch.randn(3, 1, 28, 28)
    logits, maps = model(x, return_attention=True)
    assert logits.shape == (3, 10) and len(maps) == 2
    assert maps[0].shape == (3, 4, tokens + 1, tokens + 1)
    assert torch.allclose(maps[1].sum(-1), torch.ones(3, 4, tokens + 1), atol=1e-5)  # softmax rows
    model(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_fused_and_explicit_attention_agree():
    """The training path (scaled_dot_product_attention) and the explicit softmax(QK^T/sqrt(d_k))V
    path give the same outputs."""
    torch.manual_seed(1)
    model = build_model("vit", model_config("vit", dim=48, depth=3, heads=6)).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        fused = model(x)
        explicit, _ = model(x, return_attention=True)
    assert (fused - explicit).abs().max() < 1e-5
    attn = Attention(16, 4).eval()
    z = torch.randn(2, 9, 16)
    with torch.no_grad():
        assert torch.allclose(attn(z)[0], attn(z, need_weights=True)[0], atol=1e-6)


@pytest.mark.parametrize("patch,channels", [((7, 7), 1), ((1, 28), 1), ((4, 2), 3)])
def test_patch_embedding_is_a_strided_convolution(patch, channels):
    torch.manual_seed(2)
    embed = PatchEmbed(channels, patch, 24)
    x = torch.randn(2, channels, 28, 28)
    with torch.no_grad():
        linear = embed(x)  # (B, N, D)
        conv = embed.as_conv()(x).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)
    assert (linear - conv).abs().max() < 1e-5


def test_rollout_and_class_token_maps():
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(3):
        a = rng.random((2, 5, 5))
        maps.append(a / a.sum(-1, keepdims=True))
    cls = cls_attention(maps, (2, 2))
    assert cls.shape == (3, 2, 2, 2)
    r = rollout(maps, (2, 2))
    assert r.shape == (2, 2) and 0 < r.sum() < 1  # the rest of the mass stays on the class token
    identity = [np.broadcast_to(np.eye(5), (2, 5, 5)) for _ in range(3)]
    assert np.allclose(rollout(identity, (2, 2)), 0)  # tokens that only attend to themselves


def test_vit_run_report_and_explain(capsys, tmp_path):
    out = tmp_path / "v"
    code, _, _ = run_cli(
        capsys,
        "train",
        "--model",
        "vit",
        "--patch",
        "4",
        "-m",
        "dim=32",
        "-m",
        "depth=2",
        "--epochs",
        "2",
        "--out",
        str(out),
    )
    assert code == 0
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"attention_test0.png", "attention_test1.png", "attention_test2.png"} <= figures
    assert "attention_test0" in (out / "report.html").read_text()
    code, stdout, _ = run_cli(capsys, "explain", str(out), "--image", "17")
    assert code == 0 and (out / "figures" / "attention_test17.png").exists()
    code, _, err = run_cli(capsys, "explain", str(out), "--image", "100000")
    assert code == 1 and "outside" in err
    code, stdout, _ = run_cli(capsys, "ink-attention", str(out))
    assert code == 0 and (out / "figures" / "ink_attention.png").exists()
    ink = json.loads((out / "summary.json").read_text())["ink_attention"]
    assert len(ink["rows"]) == 2 and 0 < ink["inked"] < 1 and 0 <= ink["rollout"] <= 1
    # another threshold beside it; the same one again is not replaced unasked
    code, _, err = run_cli(capsys, "ink-attention", str(out), "--threshold", "0.5")
    assert code == 0 and (out / "figures" / "ink_attention_t0.5.png").exists(), err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ink_attention"] == ink and summary["ink_attention_t0.5"]["threshold"] == 0.5
    code, _, err = run_cli(capsys, "ink-attention", str(out))
    assert code == 1 and "--overwrite" in err


def test_ink_share_of_uniform_attention_is_the_inked_fraction():
    """A stand-in model whose class token attends uniformly to every token: its share on inked
    patches is the share of inked patches, image by image; attention on the inked patch only
    gives 1."""
    from types import SimpleNamespace

    from nnlab.data import ImageSet
    from nnlab.tasks.ink_attention import ink_shares, inked_patches

    images = np.zeros((3, 1, 4, 4), np.float32)
    images[0, 0, 0, 0] = 1  # patch (0, 0) of 2x2 patches inked
    images[1, 0, :, :] = 1  # every patch inked
    images[2, 0, 3, 3] = 0.1  # below the threshold: no ink
    ink = inked_patches(images, (2, 2), 0.2)
    assert ink.tolist() == [[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]

    class Uniform(torch.nn.Module):
        cfg = SimpleNamespace(patch=(2, 2), grid=(2, 2))

        def __init__(self, focus=False):
            super().__init__()
            self.w, self.focus = torch.nn.Parameter(torch.zeros(1)), focus

        def forward(self, x, return_attention=False):
            a = torch.full((len(x), 2, 5, 5), 0.2)  # (B, heads, N + 1, N + 1)
            if self.focus:
                a[:, :, 0] = torch.tensor([0.5, 0.5, 0, 0, 0])  # class token -> patch (0, 0)
            return torch.zeros(len(x), 10), [a, a]

    data = ImageSet(images, np.zeros(3, np.int64), [str(i) for i in range(10)])
    result = ink_shares(Uniform(), data)
    np.testing.assert_allclose(result["layer_head"], ink.mean(1).mean(), rtol=1e-6)
    np.testing.assert_allclose(result["inked"], ink.mean())
    focused = ink_shares(Uniform(focus=True), data.subset(np.arange(1)))
    np.testing.assert_allclose(focused["layer_head"], 1.0)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "vit", "--patch", "3"], "does not tile"),
        (["--model", "vit", "--patch", "2x"], "--patch expects"),
        (["--model", "cnn", "--patch", "2"], "--model vit only"),
        (["--precision", "fp8"], "precision must be"),
        (["--lr-schedule", "step"], "lr_schedule must be"),
    ],
)
def test_train_option_errors(capsys, tmp_path, argv, message):
    code, _, err = run_cli(capsys, "train", *argv)
    assert code == 1 and message in err
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # no run directory left behind


def test_onecycle_schedule():
    total = 100
    f = [lr_factor(s, total, 30, "onecycle") for s in range(total)]
    assert f[0] < 0.05 and max(f) == pytest.approx(1.0) and int(np.argmax(f)) == 29 and f[-1] < 0.01


def test_torch_augmentation():
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1
    same = random_affine_torch(x, rotate=0, scale=0, shear=0, shift=0)
    assert torch.allclose(same, x, atol=1e-5)
    moved = random_affine_torch(x)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    assert abs(moved.sum() - x.sum()) / x.sum() < 0.3  # shape preserved, not destroyed


def test_ddp_two_cpu_processes(tmp_path):
    """torchrun --nproc_per_node=2 -m nnlab train: gloo on 127.0.0.1, one run directory written by
    rank 0, metrics of all ranks combined."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    p = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "nnlab",
            "train",
            "--data",
            "digits",
            "--model",
            "mlp",
            "--epochs",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[:3000]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]  # one writer: no duplicated lines
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test/acc"] > 0.75  # 4 epochs at an effective batch of 2 x 64
    assert p.stdout.count("report:") == 1  # only rank 0 prints the result
