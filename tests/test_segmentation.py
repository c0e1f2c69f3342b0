"""Segmentation (issue 6): paired augmentation, U-Net / SegmentViT shapes, loss and metrics against
hand formulas and torchmetrics, the cache of resized arrays, training end to end on generated
polyps (split saved, figures, exact resume), prediction on new files, the comparison, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from nnlab.cli import main
from nnlab.data.augment import augment_pair_torch
from nnlab.data.segmentation import load_folder, read_image, unsquare
from nnlab.data.synthetic import make_polyp_folder
from nnlab.errors import NNLabError
from nnlab.metrics.segmentation import (
    PerImageScore,
    per_image_scores,
    segmentation_loss,
    segmentation_losses,
)
from nnlab.models import build_model, count_parameters, model_config
from nnlab.run import RunDir
from nnlab.tasks.base import load_config
from nnlab.tasks.segment import (
    SegmentConfig,
    SegmentTask,
    choose_cases,
    explain_test_image,
    output_stems,
    predict_files,
    run_compare,
    run_segment,
)
from nnlab.train import TrainConfig

TINY_UNET = {"base": 8, "depth": 2}
TINY_VIT = {"patch": 8, "dim": 32, "depth": 2, "heads": 2, "decoder": 16}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


# ---- augmentation --------------------------------------------------------------------------------
def test_augmentation_moves_image_and_mask_together():
    torch.manual_seed(0)
    m = torch.zeros(16, 1, 32, 32)
    m[:, :, 6:20, 4:14] = 1  # an off-centre rectangle: flips and rotations move it
    x = m.expand(-1, 3, -1, -1).clone()  # the image *is* the mask, in all three channels
    xa, ma = augment_pair_torch(x, m, jitter=0.0)
    assert set(ma.unique().tolist()) <= {0.0, 1.0}  # nearest: still a binary mask
    moved = (ma != m).flatten(1).any(1)
    assert moved.float().mean() > 0.5  # most samples were transformed
    # same geometry: the bilinear image thresholded at 0.5 is the nearest-resampled mask except
    # on boundary pixels
    agree = ((xa[:, 0:1] > 0.5) == (ma > 0.5)).float().mean()
    assert agree > 0.97


def test_flips_are_exact_and_jitter_leaves_the_mask_alone():
    torch.manual_seed(1)
    x, m = torch.rand(8, 3, 16, 16), (torch.rand(8, 1, 16, 16) > 0.5).float()
    xa, ma = augment_pair_torch(x, m, rotate=0.0, scale=0.0, jitter=0.0)
    for i in range(8):
        flips = [(), (-1,), (-2,), (-2, -1)]
        hits = [
            f
            for f in flips
            if torch.allclose(ma[i], m[i].flip(f) if f else m[i])
            and torch.allclose(xa[i], x[i].flip(f) if f else x[i], atol=1e-5)
        ]
        assert hits, i  # image and mask got the same one of the four flips
    _, mj = augment_pair_torch(x, m, rotate=0.0, scale=0.0, flip=False, jitter=0.3)
    assert torch.equal(mj, m)


# ---- models --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,args,size",
    [
        ("unet", TINY_UNET, 32),
        ("unet", {"base": 4}, 48),
        ("segvit", TINY_VIT, 32),
        ("segvit", {**TINY_VIT, "patch": 4}, 24),
    ],
)
def test_models_give_a_logit_per_pixel(name, args, size):
    if name == "segvit":
        args = {**args, "image_size": size}
    model = build_model(name, model_config(name, **args))
    x = torch.randn(2, 3, size, size)
    y = model(x)
    assert y.shape == (2, 1, size, size) and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unet_skip_connections_carry_detail():
    """The output at a pixel depends on the input pixel itself through the level-0 skip: a change
    of one input pixel changes the output there (and not only a 16-pixel-wide blob)."""
    torch.manual_seed(0)
    model = build_model("unet", model_config("unet", base=4, depth=4)).eval()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    model(x)[0, 0, 10, 10].backward()
    g = x.grad.abs().sum(1)[0]
    assert g[10, 10] > 0 and g[10, 10] >= 0.1 * g.max()
    # receptive field of the whole net, not just the first block's 5x5
    assert (g > 0).sum() > 100


def test_segvit_attention_maps_and_bad_patch():
    model = build_model("segvit", model_config("segvit", image_size=32, **TINY_VIT))
    logits, maps = model(torch.randn(1, 3, 32, 32), return_attention=True)
    assert len(maps) == 2 and maps[0].shape == (1, 2, 16, 16)
    assert torch.allclose(maps[0].sum(-1), torch.ones(1, 2, 16))
    with pytest.raises(NNLabError, match="power of two"):
        build_model("segvit", model_config("segvit", image_size=36, patch=6))


# ---- loss and metrics ----------------------------------------------------------------------------
def test_scores_match_the_definitions():
    g = torch.Generator().manual_seed(0)
    pred = (torch.rand(10, 1, 12, 12, generator=g) > 0.5).long()
    target = (torch.rand(10, 1, 12, 12, generator=g) > 0.6).long()
    target[3] = 0
    pred[3] = 0  # both empty: a perfect answer
    pred[4] = 0  # a missed polyp
    iou, dice = per_image_scores(pred, target)
    for i in range(10):
        p, t = pred[i].bool(), target[i].bool()
        union = (p | t).sum().item()
        want = 1.0 if union == 0 else (p & t).sum().item() / union
        assert iou[i].item() == pytest.approx(want, abs=1e-6)
    assert iou[3] == 1 and dice[3] == 1 and iou[4] == 0 and dice[4] == 0
    metric = PerImageScore("iou")
    metric.update(pred[:4], target[:4])
    metric.update(pred[4:], target[4:])
    assert metric.compute().item() == pytest.approx(iou.mean().item(), abs=1e-6)


def test_loss_is_bce_plus_lambda_dice():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 1, 8, 8, generator=g)
    y = (torch.rand(3, 1, 8, 8, generator=g) > 0.5).float()
    p = torch.sigmoid(z)
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    dice = ((2 * (p * y).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1)).mean()
    for lam in (0.0, 1.0, 2.5):
        assert segmentation_loss(z, y, lam).item() == pytest.approx(
            (bce + lam * (1 - dice)).item(), rel=1e-5
        )
    # the BCE weight: 0 leaves the Dice loss alone (and no BCE term logged)
    dice_only = segmentation_losses(z, y, 1.0, lambda_bce=0.0)
    assert set(dice_only) == {"loss", "dice_loss"}
    assert dice_only["loss"].item() == pytest.approx((1 - dice).item(), rel=1e-5)
    assert segmentation_losses(z, y, 0.5, lambda_bce=2.0)["loss"].item() == pytest.approx(
        (2 * bce + 0.5 * (1 - dice)).item(), rel=1e-5
    )
    with pytest.raises(ValueError, match="both 0"):
        segmentation_losses(z, y, 0.0, lambda_bce=0.0)
    # a confident perfect prediction has a loss near 0, a confident wrong one a large loss
    assert segmentation_loss(20 * (2 * y - 1), y).item() < 1e-3
    assert segmentation_loss(-20 * (2 * y - 1), y).item() > 10


def test_paired_observations_match_images_by_name():
    from nnlab.tasks.segment import paired_observations

    mine = [
        {"name": f"c{i}", "iou": 0.9, "true_area": a}
        for i, a in enumerate([0.01, 0.02, 0.1, 0.2, 0.3, 0.4])
    ]
    other = [
        {"name": f"c{i}", "iou": v}
        for i, v in reversed(list(enumerate([0.1, 0.95, 0.5, 0.5, 0.5, 0.5])))
    ]
    text = " ".join(paired_observations("a", mine, other))
    assert (
        "better on 83% of the 6 test images" in text
    )  # c1 is the one it loses, whatever the order
    assert "mean IoU is 0.900 vs 0.525" in text  # smallest third: c0, c1
    with pytest.raises(NNLabError, match="different images"):
        paired_observations("a", mine, other[1:])


def test_choose_cases_best_median_worst():
    iou = np.array([0.5, 0.9, 0.1, 0.7, 0.3, 0.0, 0.95])
    chosen = choose_cases(iou, k=2)
    labels = [label for label, _ in chosen]
    assert labels[:2] == ["best", "best"] and labels[-2:] == ["worst", "worst"]
    assert [i for _, i in chosen][:2] == [6, 1] and [i for _, i in chosen][-2:] == [2, 5]
    assert len({i for _, i in chosen}) == len(chosen)


# ---- data cache and geometry --------------------------------------------------------------------
def test_resized_arrays_are_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    import nnlab.data.segmentation as seg

    root = make_polyp_folder(tmp_path / "p", n=5)
    first = load_folder(root, size=32)
    files = list((tmp_path / "cache" / "segmentation").glob("*.npz"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("decoded again despite the cache")

    with monkeypatch.context() as mp:
        mp.setattr(seg, "read_pair_uint8", boom)
        again = load_folder(root, size=32)
    assert np.array_equal(again.images, first.images) and again.names == first.names
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated cache file
    rebuilt = load_folder(root, size=32)
    assert np.array_equal(rebuilt.masks, first.masks)
    assert np.load(files[0])["images"].shape == (5, 3, 32, 32)  # rewritten whole
    # another size or an edited file is another cache entry
    load_folder(root, size=16)
    Image.new("L", (64, 48)).save(root / "masks" / "case000.png")
    edited = load_folder(root, size=32)
    assert edited.masks[0].sum() == 0
    assert len(list((tmp_path / "cache" / "segmentation").glob("*.npz"))) == 3


@pytest.mark.parametrize("aspect", ["pad", "stretch"])
def test_unsquare_inverts_the_resize(tmp_path, aspect):
    root = make_polyp_folder(tmp_path / "g", n=1, size=(60, 90))
    image, rgb, size = read_image(root / "images" / "case000.jpg", 30, aspect)
    assert image.shape == (3, 30, 30) and rgb.shape == (60, 90, 3) and size == (90, 60)
    mask = np.asarray(Image.open(root / "masks" / "case000.png")) >= 128
    if aspect == "pad":
        canvas = np.zeros((90, 90), np.uint8)
        canvas[15:75] = mask * 255
        small = np.asarray(Image.fromarray(canvas).resize((30, 30), Image.NEAREST))
    else:
        small = np.asarray(
            Image.fromarray(mask.astype(np.uint8) * 255).resize((30, 30), Image.NEAREST)
        )
    back = unsquare(small >= 128, (90, 60), aspect)
    assert back.shape == (60, 90)
    assert (back == mask).mean() > 0.95  # equal up to the resampling of the boundary


# ---- training end to end -------------------------------------------------------------------------
def _cfg(root, model="unet", epochs=6, **kw):
    return SegmentConfig(
        data=str(root),
        model=model,
        model_args=TINY_UNET if model == "unet" else TINY_VIT,
        size=32,
        train=TrainConfig(
            epochs=epochs, batch_size=8, lr=3e-3, warmup_epochs=1.0, monitor="val/dice", mode="max"
        ),
        **kw,
    )


@pytest.fixture(scope="module")
def polyps(tmp_path_factory):
    return make_polyp_folder(tmp_path_factory.mktemp("seg") / "polyps", n=40, size=(48, 64), seed=3)


def test_unet_learns_generated_polyps_and_writes_its_run(tmp_path, polyps):
    run = RunDir.create("u", tmp_path / "u")
    s = run_segment(_cfg(polyps, epochs=12), run)
    assert s["test/dice"] > 0.8 and s["test/iou"] > 0.65, s  # an easy task: redder blobs
    split = json.loads((run.path / "split.json").read_text())
    assert [len(split[k]) for k in ("train", "val", "test")] == [24, 8, 8]
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(
        split["test"]
    )
    cases = json.loads((run.path / "test_cases.json").read_text())
    assert sorted(c["name"] for c in cases) == sorted(split["test"])
    assert np.mean([c["dice"] for c in cases]) == pytest.approx(s["test/dice"], abs=1e-6)
    assert {p.stem for p in run.figures()} >= {"curves", "test_cases", "iou_vs_area"}
    assert [r["case"] for r in s["test_table"]][:1] == ["best"]
    rec = run.metrics()[-1]
    assert {"train/loss", "val/loss", "val/iou", "val/dice", "train/dice"} <= set(rec)


def test_segment_resume_continues_exactly(tmp_path, polyps, monkeypatch):
    """Killed in the middle of epoch 3 and resumed: the same split, metrics and weights as an
    uninterrupted run (augmentation draws included)."""
    import nnlab.tasks.segment as seg

    full = RunDir.create("a", tmp_path / "a")
    run_segment(_cfg(polyps, epochs=4), full)
    step, calls = seg.SegmentTask.loss, []

    def interrupting(self, model, batch):
        if model.training:
            calls.append(1)
            if len(calls) > 2 * 3 + 1:  # 24 images / 8 = 3 steps per epoch
                raise KeyboardInterrupt
        return step(self, model, batch)

    part = RunDir.create("b", tmp_path / "b")
    with monkeypatch.context() as mp:
        mp.setattr(seg.SegmentTask, "loss", interrupting)
        with pytest.raises(KeyboardInterrupt):
            run_segment(_cfg(polyps, epochs=4), part)
    assert [r["epoch"] for r in part.metrics()] == [1, 2]
    run_segment(load_config(part, seg.SegmentTask), part, resume=True)

    def strip(rs):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]

    assert strip(part.metrics()) == strip(full.metrics())
    assert part.summary()["test/dice"] == full.summary()["test/dice"]
    assert (part.path / "split.json").read_text() == (full.path / "split.json").read_text()


def test_predict_writes_mask_and_overlay_at_the_image_size(tmp_path, polyps):
    run = RunDir.create("p", tmp_path / "p")
    run_segment(_cfg(polyps, epochs=8), run)
    img = polyps / "images" / "case000.jpg"
    rows = predict_files(run, [img], tmp_path / "pred")
    mask = np.asarray(Image.open(tmp_path / "pred" / "case000_mask.png"))
    over = np.asarray(Image.open(tmp_path / "pred" / "case000_overlay.png"))
    assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
    assert over.shape == (48, 64, 3)
    truth = np.asarray(Image.open(polyps / "masks" / "case000.png")) >= 128
    inter, union = ((mask > 0) & truth).sum(), ((mask > 0) | truth).sum()
    assert inter / union > 0.5 and rows[0]["polyp area"] == pytest.approx((mask > 0).mean())


def test_a_large_photo_is_decoded_reduced_and_its_mask_kept_at_full_size(tmp_path, polyps):
    """A JPEG longer than the view side (here 256 px, 4096 by default) is decoded at a reduced
    scale: the model's input is within a few grey levels of the full decode's, the overlay is
    drawn at most at the view side, and the mask still has the photo's own upright size (its
    EXIF orientation turns it by a quarter here)."""
    big = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (16, 24, 3)), np.ones((50, 50, 1))).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter clockwise for viewing: 1200 x 800 on disk, 800 x 1200 up
    Image.fromarray(smooth).save(big, quality=95, exif=exif)
    square, view, size = read_image(big, 32, "pad", view_side=256)
    whole, full, _ = read_image(big, 32, "pad", view_side=10_000)
    assert size == (800, 1200) and full.shape == (1200, 800, 3)
    assert max(view.shape[:2]) <= 256 and view.shape[0] > view.shape[1]
    assert np.abs(square.astype(int) - whole).mean() < 4
    run = RunDir.create("p", tmp_path / "p")
    run_segment(_cfg(polyps, epochs=1), run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("nnlab.tasks.segment.read_image",
                   lambda p, s, a: read_image(p, s, a, view_side=256))  # fmt: skip
        predict_files(run, [big], tmp_path / "pred")
    assert Image.open(tmp_path / "pred" / "big_mask.png").size == (800, 1200)
    assert max(Image.open(tmp_path / "pred" / "big_overlay.png").size) <= 256


def test_output_names_never_collide(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    paths = [
        tmp_path / "a.jpg",
        tmp_path / "a.png",
        tmp_path / "b.jpg",
        tmp_path / "x" / "c.jpg",
        tmp_path / "y" / "c.jpg",
    ]
    assert output_stems(paths) == ["a_jpg", "a_png", "b", "x_c_jpg", "y_c_jpg"]
    with pytest.raises(NNLabError, match="given twice"):
        output_stems([tmp_path / "b.jpg", tmp_path / "x" / ".." / "b.jpg"])


def test_predict_keeps_distinct_inputs_apart_and_replaces_only_with_overwrite(
    capsys, tmp_path, polyps
):
    """`segment predict RUN a.jpg a.png` used to write both to a_mask.png (the second replacing
    the first); now each input has its own files, and a second call needs --overwrite."""
    run = RunDir.create("p", tmp_path / "p")
    run_segment(_cfg(polyps, epochs=1), run)
    src = Image.open(polyps / "images" / "case000.jpg")
    src.save(tmp_path / "a.jpg")
    src.transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "a.png")  # a different image, same stem
    argv = [
        "segment",
        "predict",
        str(run.path),
        str(tmp_path / "a.jpg"),
        str(tmp_path / "a.png"),
        "--out",
        str(tmp_path / "pred"),
    ]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert written == ["a_jpg_mask.png", "a_jpg_overlay.png", "a_png_mask.png", "a_png_overlay.png"]
    overlays = [(tmp_path / "pred" / f"a_{e}_overlay.png").read_bytes() for e in ("jpg", "png")]
    assert overlays[0] != overlays[1]  # each overlay shows its own image
    (tmp_path / "pred" / "a_png_overlay.png").write_bytes(b"kept")
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "exists" in err and "--overwrite" in err
    assert (tmp_path / "pred" / "a_png_overlay.png").read_bytes() == b"kept"  # nothing touched
    code, _, err = run_cli(capsys, *argv, "--overwrite")
    assert code == 0 and (tmp_path / "pred" / "a_png_overlay.png").read_bytes() != b"kept"


def test_compare_trains_both_on_one_split_and_writes_observations(tmp_path, polyps):
    run = RunDir.create("c", tmp_path / "c")
    base = _cfg(polyps, epochs=2)
    s = run_compare(base, run, ("unet", "segvit"), {"unet": TINY_UNET, "segvit": TINY_VIT})
    assert [r["model"] for r in s["models"]] == ["unet", "segvit"]
    splits = [json.loads((run.path / m / "split.json").read_text()) for m in ("unet", "segvit")]
    assert splits[0] == splits[1]
    for r in s["models"]:  # each row is what the child run itself measured
        child = RunDir(run.path / r["model"])
        cases = json.loads((child.path / "test_cases.json").read_text())
        assert r["test Dice"] == pytest.approx(np.mean([c["dice"] for c in cases]), abs=1e-6)
        assert r["test IoU"] == pytest.approx(np.mean([c["iou"] for c in cases]), abs=1e-6)
        assert r["train time (s)"] == pytest.approx(sum(m["time/epoch_s"] for m in child.metrics()))
        assert r["parameters"] == child.summary()["parameters"] and r["epochs"] == 2
    assert s["models"][0]["parameters"] == count_parameters(
        build_model("unet", model_config("unet", **TINY_UNET))
    )
    text = s["observations"]
    assert "unet" in text and "segvit" in text and "smallest third" in text
    best = max(s["models"], key=lambda r: r["test Dice"])
    assert text.startswith(f"{best['model']} reaches a test Dice of {best['test Dice']:.3f}")
    assert {p.stem for p in run.figures()} >= {"curves", "paired_iou", "iou_vs_area"}
    vit_figures = {p.stem for p in RunDir(run.path / "segvit").figures()}
    assert {"attention_best", "attention_worst", "test_cases"} <= vit_figures
    path = explain_test_image(RunDir(run.path / "segvit"), 1)
    assert path.name == "attention_test1.png" and path.exists()
    with pytest.raises(NNLabError, match="need a segvit run"):
        explain_test_image(RunDir(run.path / "unet"))
    with pytest.raises(NNLabError, match="outside 0..7"):
        explain_test_image(RunDir(run.path / "segvit"), 8)


def test_init_from_continues_another_run_at_a_larger_size_on_its_split(capsys, tmp_path, polyps):
    """Progressive resizing: a U-Net trained at 32 px starts a 64-px run with its best weights and
    its split (the new run never tests on images the first one trained on)."""
    from safetensors.torch import load_file

    code, _, err = run_cli(
        capsys,
        "segment",
        "train",
        "--data",
        str(polyps),
        "--size",
        "32",
        "--base",
        "8",
        "-m",
        "depth=2",
        "--epochs",
        "1",
        "--split-seed",
        "5",
        "--out",
        str(tmp_path / "a"),
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys,
        "segment",
        "train",
        "--data",
        str(polyps),
        "--size",
        "64",
        "--epochs",
        "1",
        "--lr",
        "1e-12",
        "--init-from",
        str(tmp_path / "a"),
        "--out",
        str(tmp_path / "b"),
    )
    assert code == 0, err
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (
        cfg["model_args"] == {"base": 8, "depth": 2}
        and cfg["size"] == 64
        and cfg["split_seed"] == 5
    )
    assert cfg["init_from"] == str(tmp_path / "a")
    split_a, split_b = (json.loads((tmp_path / r / "split.json").read_text()) for r in "ab")
    assert all(split_a[k] == split_b[k] for k in ("train", "val", "test"))
    wa, wb = (load_file(tmp_path / r / "checkpoints" / "best.safetensors") for r in "ab")
    convs = [k for k in wa if k.startswith("model.") and wa[k].ndim == 4]
    assert convs and all(
        torch.allclose(wa[k], wb[k], atol=1e-6) for k in convs
    )  # lr ~ 0: the weights it started from
    # a different model is refused before anything is written
    code, _, err = run_cli(
        capsys,
        "segment",
        "train",
        "--data",
        str(polyps),
        "--size",
        "64",
        "--base",
        "16",
        "--init-from",
        str(tmp_path / "a"),
        "--out",
        str(tmp_path / "c"),
    )
    assert code == 1 and "--init-from needs the same model" in err and "base 8 vs 16" in err, err
    assert not (tmp_path / "c").exists()
    code, _, err = run_cli(
        capsys, "segment", "train", "--data", str(polyps), "--init-from", str(tmp_path / "z")
    )
    assert code == 1 and "no such run directory" in err
    # resuming the continued run no longer needs the run it started from
    shutil.rmtree(tmp_path / "a")
    run_b = RunDir.open(tmp_path / "b")
    assert run_segment(load_config(run_b, SegmentTask), run_b, resume=True)["size"] == 64


# ---- CLI -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cmd",
    [
        ["segment"],
        ["segment", "train"],
        ["segment", "predict"],
        ["segment", "compare"],
        ["segment", "explain"],
    ],
)
def test_segment_help(capsys, cmd):
    code, out, _ = run_cli(capsys, *cmd, "--help")
    assert code == 0 and "Usage" in out


def test_segment_cli_end_to_end(capsys, tmp_path, polyps):
    code, out, err = run_cli(
        capsys,
        "segment",
        "train",
        "--data",
        str(polyps),
        "--size",
        "32",
        "--base",
        "8",
        "-m",
        "depth=2",
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    assert "test/dice" in out and (tmp_path / "r" / "report.html").exists()
    code, out, err = run_cli(
        capsys,
        "segment",
        "predict",
        str(tmp_path / "r"),
        str(polyps / "images" / "case001.jpg"),
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 0, err
    assert (tmp_path / "o" / "case001_mask.png").exists() and (
        tmp_path / "o" / "case001_overlay.png"
    ).exists()


BAD = [
    (["segment", "train", "--data", "nowhere"], "--data must be kvasir or a folder"),
    (["segment", "train", "--data", "POLYPS", "--size", "40"], "divisible by 16"),
    (
        [
            "segment",
            "train",
            "--data",
            "POLYPS",
            "--model",
            "segvit",
            "--patch",
            "12",
            "--size",
            "48",
        ],
        "power of two",
    ),
    (["segment", "train", "--data", "POLYPS", "--model", "fcn"], "unknown model 'fcn' for segment"),
    (["segment", "train", "--data", "POLYPS", "--aspect", "crop"], "pad or stretch"),
    (["segment", "train", "--data", "POLYPS", "--size", "16"], "too small for a U-Net of depth 4"),
    (["segment", "train", "--data", "POLYPS", "--patch", "8"], "--patch applies to --model segvit"),
    (["segment", "train", "--data", "kvasir"], "Kvasir-SEG not found"),
    (["segment", "compare", "--data", "POLYPS", "--models", "unet,unet"], "distinct names"),
    (["segment", "predict", "NOTARUN", "x.jpg"], "no such run directory"),
    (
        ["segment", "train", "--resume", "NOTARUN", "--init-from", "NOTARUN"],
        "own config; drop --init-from",
    ),
]


@pytest.mark.parametrize(
    "argv,message", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_segment_bad_input_is_one_line(capsys, tmp_path, polyps, argv, message):
    argv = [
        str(polyps) if a == "POLYPS" else str(tmp_path / a) if a == "NOTARUN" else a for a in argv
    ]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("unet-*")) and not (tmp_path / "runs").exists()


def test_predict_rejects_an_unreadable_image_and_a_classifier_run(capsys, tmp_path, polyps):
    run = RunDir.create("p", tmp_path / "p")
    run_segment(_cfg(polyps, epochs=1), run)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    code, _, err = run_cli(capsys, "segment", "predict", str(run.path), str(bad))
    assert code == 1 and "bad.jpg: unreadable image" in err
    other = RunDir.create("c", tmp_path / "c")
    other.save_config({"task": "classify"})
    code, _, err = run_cli(capsys, "segment", "predict", str(other.path), str(bad))
    assert code == 1 and "not a segmentation run" in err
    # a folder of images is read whole; an --out that cannot take the masks is said first
    folder = tmp_path / "new"
    folder.mkdir()
    for name in ("a.jpg", "b.png"):
        Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(folder / name)
    (folder / "._a.jpg").write_bytes(bytes(10))  # macOS's: not an image
    code, out, _ = run_cli(capsys, "segment", "predict", str(run.path), str(folder), "--out",
                           str(tmp_path / "masks"))  # fmt: skip
    assert code == 0 and sorted(p.name for p in (tmp_path / "masks").glob("*_mask.png")) == [
        "a_mask.png",
        "b_mask.png",
    ]
    (tmp_path / "afile").write_text("")
    code, _, err = run_cli(capsys, "segment", "predict", str(run.path), str(folder), "--out",
                           str(tmp_path / "afile"))  # fmt: skip
    assert code == 1 and "cannot make the folder" in err and len(err.strip().splitlines()) == 1
    # an image that is no image, after good ones: said before any mask is written
    (folder / "c.png").write_bytes(b"not a png")
    code, _, err = run_cli(capsys, "segment", "predict", str(run.path), str(folder), "--out",
                           str(tmp_path / "later"))  # fmt: skip
    assert code == 1 and "c.png: unreadable image" in err
    assert not list((tmp_path / "later").glob("*.png"))


# ---- the kvasir archive: download and unpack against a loopback server ---------------------------
@pytest.fixture
def zip_server(tmp_path):
    import functools
    import http.server
    import threading
    import zipfile

    www = tmp_path / "www"
    www.mkdir()
    src = make_polyp_folder(tmp_path / "src" / "Kvasir-SEG", n=6)
    with zipfile.ZipFile(www / "kvasir-seg.zip", "w") as z:  # the official layout: Kvasir-SEG/...
        for p in sorted(src.rglob("*")):
            z.write(p, p.relative_to(tmp_path / "src"))
    (www / "evil").mkdir()
    with zipfile.ZipFile(www / "evil" / "kvasir-seg.zip", "w") as z:
        z.writestr("../escaped.txt", "x")
    (www / "corrupt").mkdir()
    (www / "corrupt" / "kvasir-seg.zip").write_bytes((www / "kvasir-seg.zip").read_bytes()[:300])
    handler = functools.partial(
        type("H", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(www),
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_kvasir_downloads_and_unpacks(capsys, tmp_path, zip_server):
    from nnlab.data.segmentation import kvasir_root

    with pytest.raises(NNLabError, match="nnlab datasets fetch kvasir"):
        kvasir_root()
    for bad, message in (("evil", "unsafe path"), ("corrupt", "not a valid zip")):
        code, _, err = run_cli(
            capsys, "datasets", "fetch", "kvasir", "--mirror", f"{zip_server}/{bad}"
        )
        assert code == 1 and message in err
        assert not (tmp_path / "cache" / "kvasir-seg" / "Kvasir-SEG").exists()
        assert not list(
            (tmp_path / "cache" / "kvasir-seg").glob(".Kvasir-SEG*")
        )  # no half-unpacked folder
        (tmp_path / "cache" / "kvasir-seg" / "kvasir-seg.zip").unlink()
    assert (
        not (tmp_path / "escaped.txt").exists()
        and not (tmp_path / "cache" / "escaped.txt").exists()
    )
    code, out, err = run_cli(capsys, "datasets", "fetch", "kvasir", "--mirror", zip_server)
    assert code == 0, err
    root = kvasir_root()
    assert root == tmp_path / "cache" / "kvasir-seg" / "Kvasir-SEG"
    assert len(load_folder(root, size=16)) == 6
    code, out, _ = run_cli(
        capsys, "datasets", "fetch", "kvasir", "--mirror", zip_server + "/corrupt"
    )
    assert code == 0  # already unpacked: nothing downloaded again


def test_a_damaged_or_foreign_split_file_is_a_clear_error(tmp_path, polyps):
    from nnlab.data.segmentation import load_folder as load
    from nnlab.tasks.segment import make_split

    run = RunDir.create("s", tmp_path / "s")
    data = load(polyps, size=16)
    cfg = _cfg(polyps)
    parts = make_split(run, data, cfg, resume=False)
    assert make_split(run, data, cfg, resume=True)["test"].tolist() == parts["test"].tolist()
    (run.path / "split.json").write_text('{"train": [')
    with pytest.raises(NNLabError, match="damaged split file"):
        make_split(run, data, cfg, resume=True)
    (run.path / "split.json").write_text(json.dumps({"train": ["case999"], "val": [], "test": []}))
    with pytest.raises(NNLabError, match="1 items of the saved split are not in"):
        make_split(run, data, cfg, resume=True)
    own = make_polyp_folder(tmp_path / "own", n=12, size=(24, 24), seed=1)
    cfg = _cfg(own)
    make_split(run, load(own, size=16), cfg, resume=False)  # with the dataset's fingerprint
    (own / "images" / "case000.jpg").unlink()
    (own / "masks" / "case000.png").unlink()
    with pytest.raises(
        NNLabError, match="dataset changed since this split was made: 12 items then, 11 now"
    ):
        make_split(run, load(own, size=16), cfg, resume=True)


def test_an_interrupted_comparison_is_finished_with_resume(capsys, tmp_path, polyps, monkeypatch):
    """Ctrl-C in the second model: `segment compare --resume` keeps the first model as it was,
    trains the second and writes the comparison. Before, the hint named `segment train --resume`,
    which refused the folder, and the comparison could not be finished."""
    import nnlab.tasks.segment as seg

    out = tmp_path / "cmp"
    argv = ["segment", "compare", "--data", str(polyps), "--size", "32", "--epochs", "1",
            "--batch-size", "8", "--base", "8", "--patch", "8", "--device", "cpu"]  # fmt: skip
    calls = {"n": 0}
    original = seg.run_segment

    def interrupted_in_the_second(cfg, run, console=None, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(cfg, run, console, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(seg, "run_segment", interrupted_in_the_second)
        code, _, err = run_cli(capsys, *argv, "--out", str(out))
    assert code == 130 and "nnlab segment compare --resume" in err
    first = (out / "unet" / "summary.json").read_text()
    code, _, err = run_cli(capsys, "segment", "compare", "--resume", str(out), "--epochs", "2")
    assert code == 1 and "drop --epochs" in err
    code, _, err = run_cli(capsys, "segment", "compare", "--resume", str(out))
    assert code == 0, err
    assert (out / "unet" / "summary.json").read_text() == first
    summary = json.loads((out / "summary.json").read_text())
    assert [r["model"] for r in summary["models"]] == ["unet", "segvit"]
