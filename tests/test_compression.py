"""Compression: PCA against scikit-learn, the summed squared error, the NumPy autoencoder's
trainer, JPEG byte accounting, the data splits, and `nnlab compress` end to end on the digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA
from typer.testing import CliRunner

from nnlab.cli import build_app
from nnlab.errors import NNLabError
from nnlab.numpy_nn import SSELoss
from nnlab.numpy_nn.pca import PCA
from nnlab.run import RunDir
from nnlab.tasks.compress import (
    CompressConfig,
    CompressionData,
    build_mlp_autoencoder,
    compression_data,
    image_scores,
    jpeg_at,
    jpeg_encode,
    jpeg_header_bytes,
    jpeg_quality_for,
    mlp_halves,
    mlp_parameter_formula,
    mlp_sizes,
)
from nnlab.train.numpy_loop import NumpyAutoencoderTrainer, psnr


def digits() -> np.ndarray:
    return load_digits().data / 16.0


# ---- PCA -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 5, 32])
def test_pca_equals_scikit_learn_up_to_sign(k):
    x = digits()
    ours, ref = PCA(k).fit(x), SkPCA(k, svd_solver="full").fit(x)
    # sign-free comparison first (holds whatever sign convention either side uses) ...
    np.testing.assert_allclose(np.abs(ours.components @ ref.components_.T), np.eye(k), atol=1e-8)
    # ... then exactly: both fix the sign the same way
    np.testing.assert_allclose(ours.components, ref.components_, atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(
        ours.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-10
    )
    np.testing.assert_allclose(ours.encode(x), ref.transform(x), atol=1e-8)
    np.testing.assert_allclose(
        ours.reconstruct(x), ref.inverse_transform(ref.transform(x)), atol=1e-8
    )


def test_pca_projection_shapes_orthonormality_and_parameters():
    x = np.random.default_rng(0).random((50, 1024))
    pca = PCA(32).fit(x)
    assert pca.projection.shape == (1024, 32)
    np.testing.assert_allclose(pca.projection.T @ pca.projection, np.eye(32), atol=1e-10)
    assert pca.parameter_count() == 1024 * 32 + 1024 and pca.parameter_count(False) == 32768
    # the full rank (N - 1 directions for centred data) reconstructs the training data exactly
    np.testing.assert_allclose(PCA(49).fit(x).reconstruct(x), x, atol=1e-10)


def test_pca_rejects_bad_rank_and_shape():
    with pytest.raises(NNLabError, match="k >= 1"):
        PCA(0)
    with pytest.raises(NNLabError, match="exceeds"):
        PCA(10).fit(np.zeros((5, 20)))
    with pytest.raises(NNLabError, match="matrix"):
        PCA(1).fit(np.zeros(5))


# ---- the summed squared error and the autoencoder trainer ----------------------------------------
def test_sse_loss_and_gradient_match_torch():
    rng = np.random.default_rng(0)
    pred, target = rng.random((4, 10)), rng.random((4, 10))
    loss = SSELoss()
    value = loss(pred, target)
    t = torch.tensor(pred, requires_grad=True)
    ref = torch.nn.functional.mse_loss(t, torch.tensor(target), reduction="sum")
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), t.grad.numpy(), rtol=1e-12)


def test_psnr_per_image_equals_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(1)
    a, b = rng.random((3, 64)), rng.random((3, 64))
    ref = [peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b)]
    np.testing.assert_allclose(psnr(b, a), ref, rtol=1e-12)
    np.testing.assert_allclose(image_scores(b.reshape(3, 8, 8), a.reshape(3, 8, 8))["psnr"], ref)


def test_mlp_autoencoder_layout_halves_and_parameter_formula():
    sizes = mlp_sizes(1024, 32)
    assert sizes == (1024, 32, 32, 32, 1024) and mlp_sizes(1024, 64) == (1024, 64, 64, 64, 1024)
    assert mlp_parameter_formula(sizes).endswith("= 68,704")
    net = build_mlp_autoencoder(sizes)
    assert sum(p.data.size for p in net.parameters()) == 68_704
    x = np.random.default_rng(0).random((5, 1024)).astype(np.float32)
    encoder, decoder = mlp_halves(net)
    code = encoder(x)
    assert code.shape == (5, 32) and code.min() >= 0  # the code is a ReLU output
    np.testing.assert_allclose(decoder(code), net(x), rtol=1e-6)
    assert 0 < net(x).min() and net(x).max() < 1  # sigmoid output


def test_mlp_autoencoder_starts_at_the_mean_image():
    """With the training mean, the output bias is logit(mean): an input that leaves every ReLU
    at zero (so the code is zero) decodes to the mean image exactly (clipped to [0.01, 0.99])."""
    rng = np.random.default_rng(1)
    mean = rng.random(1024).astype(np.float32)
    mean[:10] = 0  # pixels that are never ink: clipped before the logit, no -inf
    net = build_mlp_autoencoder(mlp_sizes(1024, 32), mean=mean)
    _, decoder = mlp_halves(net)
    out = decoder(np.zeros((1, 32), dtype=np.float32))[0]
    # zero code: the decoder's hidden layer is relu(b) = 0 (biases start at 0)
    np.testing.assert_allclose(out, np.clip(mean, 0.01, 0.99), rtol=1e-5)
    assert np.isfinite(net.layers[-2].b.data).all()


def test_numpy_autoencoder_trainer_learns_the_digits_and_refuses_nan():
    from nnlab.data import load_splits
    from nnlab.tasks.compress import MLPAEConfig

    sets = load_splits("digits", 0.1, 0)
    cfg = MLPAEConfig((64, 32, 16, 32, 64), epochs=8, batch_size=16, lr=3e-3, seed=0)
    trainer = NumpyAutoencoderTrainer(build_mlp_autoencoder(cfg.sizes), cfg, 0)
    before = trainer.evaluate(sets["test"])
    history = trainer.fit(sets["train"], sets["val"])
    after = trainer.evaluate(sets["test"])
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert after["psnr"] > before["psnr"] + 3, (before, after)
    bad = sets["train"].subset(np.arange(10))
    bad.images[0, 0, 0, 0] = np.nan
    with pytest.raises(NNLabError, match="NaN"):
        NumpyAutoencoderTrainer(build_mlp_autoencoder(cfg.sizes), cfg, 0).fit(bad, sets["val"])


# ---- JPEG ----------------------------------------------------------------------------------------
def test_jpeg_bytes_split_into_header_and_scan_and_quality_choice():
    rng = np.random.default_rng(0)
    images = rng.random((6, 32, 32)) * 0.2
    images[:, 8:24, 12:20] = 1.0
    low, high = jpeg_encode(images[0], 5), jpeg_encode(images[0], 95)
    assert low[:2] == b"\xff\xd8" and low[-2:] == b"\xff\xd9"
    assert len(low) < len(high)
    head = jpeg_header_bytes(low)
    assert 100 < head < len(low)  # tables dominate a 32x32 file at low quality
    recon, sizes, headers = jpeg_at(images, 50)
    assert recon.shape == images.shape and sizes.shape == headers.shape == (6,)
    assert np.all(headers < sizes)
    # the chosen quality's mean size is the closest to the target of all qualities tried
    target = float(np.mean([len(jpeg_encode(im, 40)) for im in images]))
    q = jpeg_quality_for(images, target)
    got = np.mean([len(jpeg_encode(im, q)) for im in images])
    assert abs(got - target) <= abs(np.mean([len(jpeg_encode(im, 40)) for im in images]) - target)
    with pytest.raises(NNLabError, match="JPEG"):
        jpeg_header_bytes(b"\xff\xd8\x00\x00")


# ---- data ----------------------------------------------------------------------------------------
def _fake_nist(path, split, k, n):
    rng = np.random.default_rng(0)
    data = rng.random((n, 1024))
    labels = np.eye(k, dtype=np.uint8)[np.arange(n) % k]
    scipy.io.savemat(path, {f"{split}_data": data, f"{split}_labels": labels})


def test_nist_is_split_80_20_by_image_with_one_file_and_uses_train_valid_with_nist36(data_dir):
    _fake_nist(data_dir / "nist26_valid.mat", "valid", 26, 260)
    d = compression_data("nist", seed=0)
    n = {k: len(v) for k, v in d.sets.items()}
    assert n["test"] == 52 and n["train"] + n["val"] == 208 and d.pad == 0
    assert "80/20" in d.source
    again = compression_data("nist", seed=0)
    np.testing.assert_array_equal(again.sets["test"].images, d.sets["test"].images)  # seeded
    _fake_nist(data_dir / "nist36_train.mat", "train", 36, 360)
    _fake_nist(data_dir / "nist36_valid.mat", "valid", 36, 72)
    d = compression_data("nist", seed=0)
    assert len(d.sets["test"]) == 72 and len(d.sets["train"]) + len(d.sets["val"]) == 360
    assert len(d.sets["test"].class_names) == 36 and "valid split held out" in d.source


def test_padding_is_cropped_before_scoring():
    from nnlab.data import ImageSet

    images = np.zeros((2, 1, 32, 32), np.float32)
    images[:, :, 2:30, 2:30] = 1.0
    data = CompressionData({"train": ImageSet(images, np.zeros(2, np.int64), ["0"])}, 2, "")
    assert data.crop(images).shape == (2, 28, 28) and data.crop(images).min() == 1.0
    assert data.crop(images.reshape(2, -1)).shape == (2, 28, 28)


def test_compress_config_errors():
    with pytest.raises(NNLabError, match="--data"):
        CompressConfig(data="kvasir").check()
    with pytest.raises(NNLabError, match="--methods"):
        CompressConfig(data="digits", methods=("pca", "zip")).check()
    with pytest.raises(NNLabError, match="--code"):
        CompressConfig(data="digits", code=0).check()
    with pytest.raises(NNLabError, match="--mlp-schedule"):
        CompressConfig(data="digits", mlp_schedule="linear").check()


# ---- the command, end to end ---------------------------------------------------------------------
def test_compress_command_on_digits_tables_figures_and_resume(tmp_path):
    out = tmp_path / "c"
    args = ["compress", "--data", "digits", "--code", "8", "--sweep", "4", "--mlp-epochs", "3"]
    args += ["--mlp-lr", "1e-3", "--conv-epochs", "1", "--limit", "300", "--out", str(out)]
    result = CliRunner().invoke(build_app(args), args)
    assert result.exit_code == 0, result.output
    assert "PCA" in result.output and "JPEG" in result.output
    summary = json.loads((out / "summary.json").read_text())
    methods = {(r["method"], r["code"]) for r in summary["rows"]}
    for m in ("pca", "mlp", "conv", "denoise", "jpeg"):
        assert (m, 8) in methods and (m, 4) in methods
    by = {(r["method"], r["code"]): r for r in summary["rows"]}
    assert by[("pca", 8)]["bytes_per_image"] == 16
    formula = "64*32 + 32 + 32*8 + 8 + 8*32 + 32 + 32*64 + 64 = 4,744"
    assert by[("mlp", 8)]["parameter_formula"] == formula and by[("mlp", 8)]["parameters"] == 4744
    assert by[("pca", 8)]["psnr"] > by[("pca", 4)]["psnr"]  # more components, less error
    assert by[("jpeg", 8)]["header_bytes"] < by[("jpeg", 8)]["bytes_per_image"]
    assert "psnr_from_noisy" in by[("denoise", 8)]
    for name in ("reconstructions", "psnr_vs_bytes", "pca_basis", "mlp_decoder_units"):
        assert (out / "figures" / f"{name}.png").exists(), name
    assert (out / "report.html").exists()
    # --resume keeps the finished children (their checkpoints are not rewritten)
    stamp = (out / "conv-c8" / "checkpoints" / "best.safetensors").stat().st_mtime_ns
    result = CliRunner().invoke(build_app(["compress"]), ["compress", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "conv-c8" / "checkpoints" / "best.safetensors").stat().st_mtime_ns == stamp

    def scores(rows):
        return [{k: v for k, v in r.items() if k != "train_s"} for r in rows]  # PCA's fit time

    assert scores(RunDir.open(out).summary()["rows"]) == scores(summary["rows"])


def test_mlp_codes_past_float16_are_an_error_not_a_nan_score(monkeypatch):
    """A diverged MLP autoencoder's codes overflow float16 (65504): before, its PSNR was
    reported as "nan +- nan" with exit 0."""
    from nnlab.tasks import compress

    monkeypatch.setattr(compress, "mlp_halves", lambda net: (lambda x: x * 1e6, lambda z: z))
    with pytest.raises(NNLabError, match="past float16's 65504"):
        compress.mlp_codec(None)(np.ones((2, 8, 8), np.float32))
    monkeypatch.setattr(compress, "mlp_halves", lambda net: (lambda x: x, lambda z: z))
    assert np.isfinite(compress.mlp_codec(None)(np.ones((2, 8, 8), np.float32))).all()
