"""Convolution made executable: PatchMLP = convnet, the DCT as convolution, and the properties
(equivariance and its limits, stride, pooling invariance, parameter counts)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab.models.patch_mlp import PatchMLP, to_convnet
from nnlab.numpy_nn.conv import MaxPool2d, conv2d
from nnlab.numpy_nn.dct import blockwise_dct_1d, blockwise_dct_2d, dct_basis_2d, dct_filters
from nnlab.tasks.conv_experiments import (
    conv_vs_dense_parameters,
    maxpool_shift_stability,
    transform_commutation,
)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_patch_mlp_equals_its_convnet(k, layers, channels, activation):
    torch.manual_seed(k * 100 + layers * 10 + channels)
    widths = (16, 8, 5)[:layers]
    model = PatchMLP(channels, k, widths, activation)
    conv = to_convnet(model)
    x = torch.randn(3, channels, 12, 9)
    with torch.no_grad():
        a, b = model(x), conv(x)
    assert a.shape == b.shape == (3, widths[-1], 12 - k + 1, 9 - k + 1)
    assert (a - b).abs().max() < 1e-5
    # the first-layer kernels are the rows of W1, reshaped to (C, k, k)
    W1 = model.layers[0].weight.detach()
    for o in range(widths[0]):
        assert torch.equal(conv[0].weight[o], W1[o].reshape(channels, k, k))
    assert sum(isinstance(m, torch.nn.Conv2d) for m in conv) == layers
    assert all(m.kernel_size == (1, 1) for m in list(conv)[1:] if isinstance(m, torch.nn.Conv2d))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([4, 8]), st.integers(1, 8), st.integers(0, 2**31))
def test_dct_1d_by_convolution_equals_scipy(n, blocks, seed):
    sig = np.random.default_rng(seed).standard_normal(n * blocks)
    assert np.allclose(
        blockwise_dct_1d(sig, n), scipy.fft.dct(sig.reshape(blocks, n), norm="ortho")
    )


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([4, 8]), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31))
def test_dct_2d_by_convolution_equals_scipy(n, by, bx, seed):
    img = np.random.default_rng(seed).standard_normal((n * by, n * bx))
    blocks = img.reshape(by, n, bx, n).transpose(0, 2, 1, 3)
    ours = blockwise_dct_2d(img, n)
    assert np.allclose(ours, scipy.fft.dctn(blocks, axes=(2, 3), norm="ortho"))
    # two separable 1-D passes give the same
    D = dct_filters(n)
    assert np.allclose(ours, D @ blocks @ D.T)


def test_dct_basis():
    D = dct_filters(8)
    assert np.allclose(D @ D.T, np.eye(8))
    assert np.allclose(D[0], 1 / np.sqrt(8))  # the DC filter is flat
    assert np.allclose(D[1], np.sqrt(2 / 8) * np.cos(np.pi * (np.arange(8) + 0.5) / 8))
    B = dct_basis_2d(8)
    assert B.shape == (64, 8, 8)
    assert np.allclose(B.reshape(64, 64) @ B.reshape(64, 64).T, np.eye(64))


def test_convolution_commutes_with_translation_not_rotation_or_scaling():
    r = transform_commutation(seed=0)
    assert r["circular shift"] < 1e-12
    assert r["shift, zero padding (interior)"] < 1e-12
    assert r["shift, zero padding (whole image)"] > 1e-3  # the borders break it
    assert r["rotation by 90 degrees"] > 0.1  # a generic kernel is not rotation-symmetric
    assert r["scaling by 2"] > 0.1


def test_stride_is_subsampling_for_random_shapes():
    rng = np.random.default_rng(0)
    for s in (2, 3):
        x, w = rng.standard_normal((1, 2, 11, 14)), rng.standard_normal((2, 2, 3, 3))
        assert np.allclose(conv2d(x, w, stride=s), conv2d(x, w)[..., ::s, ::s])


def test_max_pooling_is_more_stable_under_small_shifts_than_the_features():
    for seed in range(3):
        r = maxpool_shift_stability(seed=seed)
        assert r["conv features"][0] == r["max pool 2x2"][0] == 0.0  # no shift, nothing changes
        for s in (1, 2):
            assert r["max pool 2x2"][s] < 0.9 * r["conv features"][s]


def test_conv_has_far_fewer_parameters_than_dense():
    rows = conv_vs_dense_parameters()
    first = rows[0]
    assert first["conv parameters"] == 16 * 1 * 3 * 3 + 16
    assert first["dense parameters"] == (28 * 28) * (16 * 28 * 28) + 16 * 28 * 28
    assert all(r["dense parameters"] > 1000 * r["conv parameters"] for r in rows)


def test_maxpool_layer_is_numpy_engine():
    assert MaxPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4)).tolist() == [
        [[[5.0, 7.0], [13.0, 15.0]]]
    ]


# ---- commands and experiments ------------------------------------------------------------------
from test_cli import run_cli  # noqa: E402


def test_conv_properties_command(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "conv", "properties", "--out", str(tmp_path / "p"))
    assert code == 0 and "rotation by 90 degrees" in out
    names = {p.name for p in (tmp_path / "p" / "figures").iterdir()}
    assert names == {"equivariance.png", "stride.png", "pooling.png", "dct_basis.png"}


def test_wrong_prior_cnn_cannot_tell_where_mlp_can(capsys, tmp_path):
    """Conv + global pooling is blind to position ('where' stays at chance, 1/2) while an MLP
    solves it; on small data and few epochs the reverse task is not decided yet (see RESULTS.md)."""
    code, out, _ = run_cli(
        capsys,
        "conv",
        "prior",
        "--epochs",
        "4",
        "--train",
        "600",
        "--test",
        "300",
        "--out",
        str(tmp_path / "w"),
    )
    assert code == 0
    import json

    rows = json.loads((tmp_path / "w" / "summary.json").read_text())["accuracy"]
    where = rows[0]
    assert where["CNN + global pooling accuracy"] < 0.7 and where["MLP accuracy"] > 0.9
    # the wrong prior shows in training too: the CNN cannot fit 'where' (loss near ln 2)
    assert where["CNN + global pooling train loss"] > 0.6 > 0.3 > where["MLP train loss"]
    assert where["CNN + global pooling train accuracy"] < 0.7


def test_conv_command_errors(capsys):
    code, _, err = run_cli(capsys, "conv", "prior", "--data", "cifar")
    assert code == 1 and "--data must be digits or mnist" in err
    code, _, err = run_cli(capsys, "conv", "filters", "--data", "mnist")
    assert code == 1 and "nnlab datasets fetch mnist" in err


def test_filters_run_shows_gabor_bank(capsys, tmp_path, real_data):
    code, out, _ = run_cli(
        capsys, "conv", "filters", "--epochs", "1", "--limit", "600", "--out", str(tmp_path / "f")
    )
    assert code == 0
    assert (tmp_path / "f" / "figures" / "first_layer_filters.png").exists()


# ---- the equalities over >= 100 hypothesis-drawn cases each -------------------------------------
@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([1, 3, 5]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(5, 12),
    st.integers(5, 12),
    st.sampled_from(["relu", "tanh", "gelu"]),
    st.integers(0, 2**31),
)
def test_patch_mlp_equals_convnet_hypothesis(k, layers, channels, H, W, activation, seed):
    torch.manual_seed(seed)
    widths = tuple(int(w) for w in np.random.default_rng(seed).integers(1, 12, layers))
    model = PatchMLP(channels, k, widths, activation)
    x = torch.randn(2, channels, H, W)
    with torch.no_grad():
        assert (model(x) - to_convnet(model)(x)).abs().max() < 1e-5


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from([1, 3, 5]),
    st.integers(6, 14),
    st.integers(6, 14),
    st.integers(-20, 20),
    st.integers(-20, 20),
    st.integers(0, 2**31),
)
def test_circular_translation_equivariance_hypothesis(c, o, k, H, W, dy, dx, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((1, c, H, W)), rng.standard_normal((o, c, k, k))
    p = k // 2

    def circ(z):
        return conv2d(np.pad(z, ((0, 0), (0, 0), (p, p), (p, p)), mode="wrap"), w)

    assert np.allclose(
        circ(np.roll(x, (dy, dx), (2, 3))), np.roll(circ(x), (dy, dx), (2, 3)), atol=1e-10
    )


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(4, 15),
    st.integers(4, 15),
    st.integers(2, 4),
    st.integers(0, 2**31),
)
def test_stride_is_subsampling_hypothesis(c, o, k, pad, H, W, s, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, c, H, W)), rng.standard_normal((o, c, k, k))
    assert np.allclose(
        conv2d(x, w, stride=s, padding=pad), conv2d(x, w, padding=pad)[..., ::s, ::s]
    )


def test_one_cnn_runs_at_every_input_size(capsys, tmp_path):
    """Global average pooling lets the CNN trained on 16x16 digits take 8..64-pixel inputs; at
    its own size it has learnt the digits, and the padded inputs keep the digit's scale."""
    code, out, _ = run_cli(
        capsys,
        "conv",
        "input-size",
        "--data",
        "digits",
        "--epochs",
        "8",
        "--out",
        str(tmp_path / "s"),
    )
    assert code == 0, out
    import json

    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    rows = {(r["resize"], r["size"]): r for r in summary["input_size"]}
    assert summary["native"] == 16 and ("scale", 8) in rows and ("pad", 64) in rows
    assert rows[("pad", 16)]["accuracy"] == rows[("scale", 16)]["accuracy"] > 0.8
    assert all(0 <= r["accuracy"] <= 1 for r in rows.values())


def test_max_pooling_over_positions_and_rotations(capsys, tmp_path):
    """The detector's response is 1 wherever the pattern sits, falls when it is rotated, and the
    max over rotated filters brings it back; no filter bank here helps against scaling."""
    code, out, _ = run_cli(
        capsys, "conv", "invariance", "--data", "digits", "--out", str(tmp_path / "i")
    )
    assert code == 0, out
    import json

    rows = json.loads((tmp_path / "i" / "summary.json").read_text())["invariance"]
    pooled = "max over 24 rotations"
    by = {(r["change"], r["amount"]): r for r in rows}
    for r in rows:
        if r["change"] == "shift (px)":
            assert r["single filter"] > 0.999 and r[pooled] > 0.999
    assert by[("rotation (degrees)", 90)]["single filter"] < 0.8
    assert all(r[pooled] > 0.85 for r in rows if r["change"] == "rotation (degrees)")
    assert by[("scale", 2.0)][pooled] < 0.9


def test_max_over_rotations_is_invariant_to_its_bank_rotations_and_one_network_is_not():
    """g(x) = max_i f(R_{-360 i / 8} x) with a random CNN (global max pooling): a quarter turn of
    the input only permutes the bank, so g does not change, while f alone does."""
    from nnlab.models import build_model, model_config
    from nnlab.tasks.conv_experiments import logits, max_over_rotations, rotate_images

    torch.manual_seed(0)
    net = build_model(
        "cnn", model_config("cnn", channels=(4, 8), global_pool="max", num_classes=5)
    ).eval()
    x = torch.rand(6, 1, 16, 16)
    turned = rotate_images(x, 90)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-6)  # counter-clockwise
    g_change = (max_over_rotations(net, x, 8) - max_over_rotations(net, turned, 8)).abs().max()
    f_change = (logits(net, x) - logits(net, turned)).abs().max()
    assert g_change < 1e-6 and f_change > 1000 * g_change, (g_change, f_change)


@pytest.fixture
def one_thread():
    """Two cores shared with other runs: torch's thread pool spinning on them is several times
    slower than one thread for these small convolutions."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_trained_cnn_tolerates_shifts_and_needs_rotation_pooling_for_angles(
    capsys, tmp_path, one_thread
):
    """A CNN with global max pooling trained on upright digits anywhere on the canvas keeps its
    accuracy under shifts and loses it at 90 degrees; the max over 8 rotated copies gets it back,
    and pays for it in 6 <-> 9 confusions."""
    args = ["conv", "invariance", "--trained", "--data", "digits", "--epochs", "10"]
    code, out, _ = run_cli(capsys, *args, "--bank", "8", "--out", str(tmp_path / "t"))
    assert code == 0, out
    import json

    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    f, g = "single network", "max over 8 rotations"
    by = {(r["change"], r["amount"]): r for r in summary["invariance_trained"]}
    at0 = by[("rotation (degrees)", 0)]
    assert at0[f] > 0.85
    shifts = [r for r in summary["invariance_trained"] if r["change"] == "shift (px)"]
    assert len(shifts) == 5 and all(abs(r[f] - at0[f]) < 0.06 for r in shifts), shifts
    turned = by[("rotation (degrees)", 90)]
    assert turned[f] < at0[f] - 0.5 and turned[g] > turned[f] + 0.4
    assert by[("rotation (degrees)", 45)][g] > 0.6  # 45: on the bank's 45-degree grid
    six_nine = [
        r
        for r in summary["confusions at 0 degrees"]
        if r["true -> predicted"] in ("6 -> 9", "9 -> 6")
    ]
    assert sum(r[g] for r in six_nine) > sum(r[f] for r in six_nine)
    assert (tmp_path / "t" / "figures" / "invariance_trained.png").exists()


def test_natural_image_filters_are_gabor_like_and_random_ones_are_not(capsys, tmp_path):
    args = ["conv", "gabor", "--filters", "8", "--patches", "3000", "--mnist-epochs", "0"]
    code, out, _ = run_cli(capsys, *args, "--out", str(tmp_path / "g"))
    assert code == 0, out
    import json

    rows = json.loads((tmp_path / "g" / "summary.json").read_text())["gabor"]
    ica, rand = rows[0]["median R^2"], rows[-1]["median R^2"]
    assert rows[0]["filters"].startswith("ICA") and rows[-1]["filters"].startswith("random")
    assert ica > rand + 0.3 and rand < 0.4, rows


def test_gabor_fit_recovers_a_gabor():
    import numpy as np

    from nnlab.tasks.gabor import fit_gabor, gabor

    true = np.array([1.0, 5.5, 6.0, 2.0, 3.0, 0.6, 0.2, 0.3, 0.0])
    r2, params = fit_gabor(gabor(true, 12))
    assert r2 > 0.999
    noisy = gabor(true, 12) + np.random.default_rng(0).normal(0, 0.3, (12, 12))
    assert 0.3 < fit_gabor(noisy)[0] < 0.99  # noise lowers the fit, the Gabor still shows


def test_any_seed_picks_a_digit():
    """`conv properties --seed 1797` (past the 1,797 digits) was an IndexError traceback."""
    from nnlab.tasks.conv_experiments import _digit

    assert np.array_equal(_digit(1797), _digit(0)) and _digit(5).shape == (24, 24)
