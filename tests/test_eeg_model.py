"""The three-tower EEG transformer (shapes, gate, what each tower reads) and the Bonn
segment-classification task end to end on generated stand-in segments."""

from __future__ import annotations

import pytest
import torch

from nnlab.models import build_model, model_config
from nnlab.models.eeg_transformer import EEGTransformer, EEGTransformerConfig, tower_tokens

# ---- the model ----------------------------------------------------------------------------------


def tiny(**overrides) -> EEGTransformer:
    args = dict(channels=3, frames=5, freqs=7, dim=16, depth=2, heads=2, dropout=0.0)
    torch.manual_seed(0)
    return EEGTransformer(EEGTransformerConfig(**{**args, **overrides}))


@pytest.mark.parametrize(
    "towers",
    [
        ("spatial", "temporal", "spectral"),
        ("temporal", "spectral"),
        ("spectral",),
        ("temporal", "spatial"),
    ],
)
def test_shapes_gates_and_gradients(towers):
    model = tiny(towers=towers, num_classes=3)
    x = torch.randn(4, 3, 5, 7)
    logits, gates = model(x, return_gates=True)
    assert logits.shape == (4, 3) and gates.shape == (4, len(towers))
    assert torch.isfinite(logits).all() and (gates >= 0).all()
    torch.testing.assert_close(gates.sum(1), torch.ones(4))
    assert list(model.towers) == list(towers)  # gate columns in the order of cfg.towers
    (logits * torch.randn_like(logits)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if len(towers) == 1:
        torch.testing.assert_close(gates, torch.ones(4, 1))


def test_registered_and_plain_logits_by_default():
    cfg = model_config("eeg_transformer", channels=1, frames=4, freqs=6, towers=["temporal"])
    assert cfg.towers == ("temporal",)  # JSON lists become tuples
    model = build_model("eeg_transformer", cfg)
    out = model(torch.randn(2, 1, 4, 6))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2)


def test_tokens_are_channels_frames_and_bins():
    """One changed value x[b, c, t, f] changes exactly spatial token c, temporal token t and
    spectral token f, and each token holds the slice the docstring names."""
    x = torch.randn(2, 3, 5, 7)
    s, t, f = (tower_tokens(x, k) for k in ("spatial", "temporal", "spectral"))
    assert s.shape == (2, 3, 35) and t.shape == (2, 5, 21) and f.shape == (2, 7, 15)
    torch.testing.assert_close(t[1, 4], x[1, :, 4, :].reshape(-1))
    torch.testing.assert_close(f[0, 2], x[0, :, :, 2].reshape(-1))
    torch.testing.assert_close(s[1, 2], x[1, 2].reshape(-1))
    y = x.clone()
    y[1, 2, 3, 6] += 1.0
    for tower, index in (("spatial", 2), ("temporal", 3), ("spectral", 6)):
        changed = (tower_tokens(y, tower) != tower_tokens(x, tower)).any(-1)  # (B, N)
        assert changed.nonzero().tolist() == [[1, index]], tower


def test_the_temporal_tower_embeds_one_token_per_frame():
    """Inside the model: changing frame t changes only token t of the temporal tower's first
    block input, and every token of the spectral tower (each bin spans all frames)."""
    model = tiny().eval()
    seen = {}
    for name in ("temporal", "spectral"):
        block = model.towers[name].blocks[0]
        block.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, args[0].detach())
        )
    x = torch.randn(1, 3, 5, 7)
    model(x)
    before = dict(seen)
    x[:, :, 2, :] += torch.randn(3, 7)
    model(x)
    temporal = (seen["temporal"] != before["temporal"]).any(-1)[0]  # (T,)
    assert temporal.tolist() == [False, False, True, False, False]
    assert (seen["spectral"] != before["spectral"]).any(-1).all()


def test_forward_follows_the_gate_equation():
    """logits = W_y sum_i g_i h_i + b_y with g = softmax(W_g [h_1; ...; h_M] + b_g)."""
    model = tiny().eval()
    x = torch.randn(3, 3, 5, 7)
    with torch.no_grad():
        logits, gates = model(x, return_gates=True)
        h = [model.towers[k](tower_tokens(x, k))[0] for k in model.towers]  # each (B, D)
        g = torch.softmax(model.gate(torch.cat(h, dim=1)), dim=1)
        expected = model.head(sum(g[:, i : i + 1] * h[i] for i in range(len(h))))
    torch.testing.assert_close(gates, g)
    torch.testing.assert_close(logits, expected)


def test_attention_weights_per_tower_and_layer():
    model = tiny(depth=2, heads=2).eval()
    x = torch.randn(2, 3, 5, 7)
    logits, gates, attention = model(x, return_gates=True, return_attention=True)
    logits2, attention2 = model(x, return_attention=True)
    torch.testing.assert_close(logits, logits2)  # the explicit path computes the same
    torch.testing.assert_close(logits, model(x))
    for tower, n in (("spatial", 3), ("temporal", 5), ("spectral", 7)):
        maps = attention[tower]
        assert len(maps) == 2 and all(m.shape == (2, 2, n, n) for m in maps)
        torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, n))


def test_sinusoidal_position_is_fixed():
    model = tiny(position="sinusoidal")
    assert not any("pos" in name for name, _ in model.named_parameters())
    assert "towers.temporal.pos" not in model.state_dict()  # rebuilt, never saved
    assert torch.isfinite(model(torch.randn(2, 3, 5, 7))).all()


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="towers"):
        tiny(towers=("temporal", "temporal"))
    with pytest.raises(ValueError, match="towers"):
        tiny(towers=("channels",))
    with pytest.raises(ValueError, match="position"):
        tiny(position="rotary")
    with pytest.raises(ValueError, match="built for"):
        tiny()(torch.randn(2, 3, 6, 7))
