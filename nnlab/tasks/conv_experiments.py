"""Convolution facts as experiments with numbers and figures: equivariance and its limits, stride,
pooling, parameter counts, the prior that helps or hurts, the DCT basis, Gabor-like filters."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from nnlab.data import ImageSet, available_splits, load_image_set
from nnlab.errors import NNLabError
from nnlab.numpy_nn.conv import MaxPool2d, conv2d
from nnlab.numpy_nn.dct import dct_basis_2d
from nnlab.run import RunDir
from nnlab.tasks.classify import ClassifyTask
from nnlab.train import TrainConfig, Trainer, predict
from nnlab.viz import image_grid_figure

EDGE = np.array(
    [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
)  # Sobel: not rotation-symmetric


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))


def _digit(seed: int = 0, size: int = 24) -> np.ndarray:
    """One 8x8 digit, upsampled x2 and placed in the middle of a size x size canvas."""
    images = load_image_set("digits", "all").images
    d = images[seed % len(images), 0]  # any seed picks a digit
    big = np.kron(d, np.ones((2, 2)))
    canvas = np.zeros((size, size))
    o = (size - 16) // 2
    canvas[o : o + 16, o : o + 16] = big
    return canvas


def transform_commutation(seed: int = 0) -> dict[str, float]:
    """Relative difference |f(g(x)) - g(f(x))| / |g(f(x))| for f = convolution with a random 3x3
    kernel and g a shift, rotation or scaling."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((1, 1, 3, 3))
    x = _digit(seed)[None, None]
    wrap = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap")

    def conv(z):
        return conv2d(z, w, padding=1)

    out = {}
    shift = (3, 5)
    circ = conv2d(
        np.pad(np.roll(x, shift, (2, 3)), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap"), w
    )
    out["circular shift"] = _rel(circ, np.roll(conv2d(wrap, w), shift, (2, 3)))
    a, b = conv(np.roll(x, shift, (2, 3))), np.roll(conv(x), shift, (2, 3))
    out["shift, zero padding (interior)"] = _rel(a[..., 8:-2, 8:-2], b[..., 8:-2, 8:-2])
    edge = np.zeros_like(x)
    edge[..., :, -4:] = 1.0  # content touching the border: the wrapped shift meets the padding
    out["shift, zero padding (whole image)"] = _rel(
        conv(np.roll(edge, shift, (2, 3))), np.roll(conv(edge), shift, (2, 3))
    )
    out["rotation by 90 degrees"] = _rel(conv(np.rot90(x, 1, (2, 3))), np.rot90(conv(x), 1, (2, 3)))
    up = np.kron(x, np.ones((1, 1, 2, 2)))
    out["scaling by 2"] = _rel(conv(up), np.kron(conv(x), np.ones((1, 1, 2, 2))))
    return out


def maxpool_shift_stability(
    seed: int = 0, shifts: tuple[int, ...] = (0, 1, 2, 3, 4)
) -> dict[str, list[float]]:
    """Relative change ||f(shift_s x) - f(x)|| / ||f(x)|| of the features after a 3x3 conv + ReLU
    (8 random filters) and of the same features after 2x2 max pooling, for shifts of s pixels:
    lower = more invariant. Conv features are equivariant (they move with x), so compared in
    place they change; pooling absorbs part of a small shift."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((8, 1, 3, 3))
    x = _digit(seed, 32)[None, None]
    f0 = np.maximum(conv2d(x, w, padding=1), 0)
    p0 = MaxPool2d(2)(f0)
    out: dict[str, list[float]] = {"conv features": [], "max pool 2x2": []}
    for s in shifts:
        fs = np.maximum(conv2d(np.roll(x, s, axis=3), w, padding=1), 0)
        out["conv features"].append(float(np.linalg.norm(fs - f0) / np.linalg.norm(f0)))
        out["max pool 2x2"].append(
            float(np.linalg.norm(MaxPool2d(2)(fs) - p0) / np.linalg.norm(p0))
        )
    return out


def conv_vs_dense_parameters(
    shapes=((1, 16, 28, 3), (16, 32, 14, 3), (3, 64, 224, 7)),
) -> list[dict[str, Any]]:
    """Parameters of a k x k conv layer (C -> O channels, 'same' padding) vs a fully connected layer
    mapping the same input (C, H, H) to the same output (O, H, H)."""
    rows = []
    for c, o, h, k in shapes:
        conv = o * c * k * k + o
        dense = (c * h * h) * (o * h * h) + o * h * h
        rows.append(
            {
                "layer": f"{c}x{h}x{h} -> {o}x{h}x{h}, {k}x{k}",
                "conv parameters": conv,
                "dense parameters": dense,
                "ratio": dense / conv,
            }
        )
    return rows


# ---- figures ------------------------------------------------------------------------------------
def equivariance_figure(seed: int = 0) -> Figure:
    w = np.array(EDGE)[None, None]
    x = _digit(seed)[None, None]
    shift = (3, 5)

    def f(z):
        return conv2d(z, w, padding=1)

    rows = [
        ("x", x),
        ("conv(x)", f(x)),
        ("shift(conv(x))", np.roll(f(x), shift, (2, 3))),
        ("conv(shift(x))", f(np.roll(x, shift, (2, 3)))),
        ("rot(conv(x))", np.rot90(f(x), 1, (2, 3))),
        ("conv(rot(x))", f(np.rot90(x, 1, (2, 3)))),
    ]
    fig = Figure(figsize=(12, 2.4))
    axes = fig.subplots(1, len(rows))
    for ax, (title, img) in zip(axes, rows):
        ax.imshow(
            img[0, 0],
            cmap="RdBu_r" if title != "x" else "gray_r",
            vmin=None if title == "x" else -np.abs(img).max(),
            vmax=None if title == "x" else np.abs(img).max(),
        )
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(
        "a Sobel filter commutes with shifts (columns 3 = 4), not with rotation (5 != 6)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def stride_figure(seed: int = 0) -> Figure:
    w = np.array(EDGE)[None, None]
    x = _digit(seed)[None, None]
    s1, s2 = conv2d(x, w, padding=1), conv2d(x, w, padding=1, stride=2)
    imgs = [
        (x[0, 0], "x"),
        (s1[0, 0], "stride 1"),
        (s1[0, 0, ::2, ::2], "stride 1, every 2nd pixel"),
        (s2[0, 0], "stride 2"),
        (s2[0, 0] - s1[0, 0, ::2, ::2], "difference"),
    ]
    fig = Figure(figsize=(11, 2.5))
    for ax, (img, title) in zip(fig.subplots(1, 5), imgs):
        m = np.abs(s1).max()
        ax.imshow(
            img,
            cmap="gray_r" if title == "x" else "RdBu_r",
            vmin=None if title == "x" else -m,
            vmax=None if title == "x" else m,
            interpolation="nearest",
        )
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("stride 2 = stride 1 subsampled by 2 (the difference is exactly 0)", fontsize=10)
    fig.tight_layout()
    return fig


def pooling_figure(result: dict[str, list[float]], shifts=(0, 1, 2, 3, 4)) -> Figure:
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for name, vals in result.items():
        ax.plot(shifts, vals, "o-", label=name)
    ax.set_xlabel("horizontal shift of the input (pixels)")
    ax.set_ylabel("relative change of the output")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("max pooling makes small shifts matter less", fontsize=10)
    fig.tight_layout()
    return fig


def dct_basis_figure(n: int = 8) -> Figure:
    B = dct_basis_2d(n)
    fig = Figure(figsize=(6, 6))
    axes = fig.subplots(n, n)
    for i, ax in enumerate(axes.flat):
        ax.imshow(B[i], cmap="gray", vmin=-B.max(), vmax=B.max(), interpolation="nearest")
        ax.axis("off")
    fig.suptitle(
        f"the {n}x{n} DCT-II basis: {n * n} convolution filters (row k, column l)", fontsize=10
    )
    return fig


# ---- training a classifier on arrays (shared by the experiments below) ---------------------------
def labelled(x: np.ndarray, y: np.ndarray) -> torch.utils.data.TensorDataset:
    """(N, C, H, W) float images and (N,) integer labels as a dataset for the training loop."""
    return torch.utils.data.TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        torch.from_numpy(np.asarray(y, dtype=np.int64)),
    )


def fit_classifier(
    make: Callable[[], nn.Module], x: np.ndarray, y: np.ndarray, cfg: TrainConfig, classes: int = 10
) -> tuple[Trainer, float]:
    """Build the model after seeding with cfg.seed (the same initial weights for the same seed)
    and train it on (x, y) with the shared loop: the fitted Trainer and the seconds fit took."""
    torch.manual_seed(cfg.seed)
    trainer = Trainer(make(), ClassifyTask.for_classes(classes), cfg)
    t0 = time.perf_counter()
    trainer.fit(labelled(x, y))
    return trainer, time.perf_counter() - t0


def logits(net: nn.Module, x: np.ndarray | torch.Tensor, batch: int = 500) -> torch.Tensor:
    """(N, K) outputs on the CPU of `net` in eval mode for (N, C, H, W) images."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return predict(net, torch.utils.data.TensorDataset(x), batch)


# ---- when the prior is wrong ---------------------------------------------------------------------
class GapCNN(nn.Module):
    """Convolutions + global average pooling, circular padding: invariant to (circular) shifts by
    construction -- zero padding would leak the distance to the border, i.e. position."""

    def __init__(self, classes: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2, padding_mode="circular"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, classes),
        )

    def forward(self, x):
        return self.net(x)


class DenseMLP(nn.Module):
    def __init__(self, pixels: int, classes: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.net(x)


def place_on_canvas(images: np.ndarray, canvas: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(N, 1, h, w) digits pasted at column xs, row ys of (N, 1, canvas, canvas) black canvases."""
    N, _, h, w = images.shape
    out = np.zeros((N, 1, canvas, canvas), dtype=np.float32)
    rows = ys[:, None] + np.arange(h)[None]  # (N, h)
    cols = xs[:, None] + np.arange(w)[None]  # (N, w)
    out[np.arange(N)[:, None, None], 0, rows[:, :, None], cols[:, None, :]] = images[:, 0]
    return out


def position_tasks(
    train_digits: ImageSet, test_digits: ImageSet, canvas: int, n_train: int, n_test: int, seed: int
) -> dict[str, tuple]:
    """Two tasks on digits pasted into a black canvas twice their size (test digits are other
    images than the training digits):
    'where': label = 1 if the digit sits in the right half (its class is irrelevant);
    'what': label = the digit; training digits sit in the left half, test digits in the right."""
    rng = np.random.default_rng(seed)
    h = train_digits.images.shape[2]
    span, half = canvas - h, canvas // 2

    def sample(pool: ImageSet, n: int, side: np.ndarray):
        idx = rng.integers(0, len(pool), n)
        xs = np.where(side == 1, rng.integers(half, span + 1, n), rng.integers(0, half - h + 1, n))
        ys = rng.integers(0, span + 1, n)
        return place_on_canvas(pool.images[idx], canvas, xs, ys), pool.labels[idx]

    side_tr, side_te = rng.integers(0, 2, n_train), rng.integers(0, 2, n_test)
    (xtr, _), (xte, _) = (
        sample(train_digits, n_train, side_tr),
        sample(test_digits, n_test, side_te),
    )
    tasks = {"where: left or right half?": (xtr, side_tr, xte, side_te, 2)}
    (xtr, ytr) = sample(train_digits, n_train, np.zeros(n_train, int))
    (xte, yte) = sample(test_digits, n_test, np.ones(n_test, int))
    tasks["what: which digit? (train left, test right)"] = (xtr, ytr, xte, yte, 10)
    return tasks


def prior_experiment(
    train_digits: ImageSet,
    test_digits: ImageSet,
    canvas: int,
    n_train: int = 4000,
    n_test: int = 1000,
    epochs: int = 20,
    seed: int = 0,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Test accuracy of a conv + global-pooling net and an MLP on both tasks (shared training
    loop), beside each model's loss and accuracy on its own training images at the end: a wrong
    prior shows as a training loss that stays high (the model cannot even fit what it sees), not
    only as poor generalisation."""
    rows = []
    tasks = position_tasks(train_digits, test_digits, canvas, n_train, n_test, seed)
    for task, (xtr, ytr, xte, yte, k) in tasks.items():
        row: dict[str, Any] = {"task": task}
        for name, make in (
            ("CNN + global pooling", lambda k=k: GapCNN(k)),
            ("MLP", lambda k=k: DenseMLP(canvas * canvas, k)),
        ):
            cfg = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, device=device)
            trainer, seconds = fit_classifier(make, xtr, ytr, cfg, k)
            fitted = trainer.evaluate(labelled(xtr, ytr))
            row[f"{name} accuracy"] = trainer.evaluate(labelled(xte, yte))["acc"]
            row[f"{name} train loss"] = fitted["loss"]
            row[f"{name} train accuracy"] = fitted["acc"]
            row[f"{name} time (s)"] = seconds
        rows.append(row)
    return rows


def prior_examples_figure(
    train_digits: ImageSet, test_digits: ImageSet, canvas: int, seed: int = 0
) -> Figure:
    tasks = position_tasks(train_digits, test_digits, canvas, 4, 4, seed)
    (name1, t1), (name2, t2) = tasks.items()
    imgs = np.concatenate([t1[0], t1[2], t2[0], t2[2]])
    side = ["left", "right"]
    titles = (
        [f"train: {side[y]}" for y in t1[1]]
        + [f"test: {side[y]}" for y in t1[3]]
        + [f"train: {y}" for y in t2[1]]
        + [f"test: {y}" for y in t2[3]]
    )
    return image_grid_figure(imgs, titles, cols=8, title=f"row 1: {name1}   row 2: {name2}")


def prior_data(name: str, seed: int = 0) -> tuple[ImageSet, ImageSet, int]:
    """Digit pools for the prior experiment: (train pool, test pool, canvas size). digits are
    upsampled to 16x16 on a 32x32 canvas; MNIST is 28x28 on 56x56."""
    from nnlab.data import load_splits

    if name == "mnist":
        return load_image_set("mnist", "train"), load_image_set("mnist", "test"), 56
    splits = load_splits(name, seed=seed)
    up = (
        {
            k: ImageSet(
                np.kron(v.images, np.ones((1, 1, 2, 2), np.float32)), v.labels, v.class_names
            )
            for k, v in splits.items()
        }
        if name == "digits"
        else splits
    )
    return up["train"], up["test"], 2 * up["train"].images.shape[2]


# ---- the commands' runs --------------------------------------------------------------------------
def run_properties(run: RunDir, seed: int = 0) -> list[tuple[str, list[dict[str, Any]]]]:
    """`nnlab conv properties` into `run`: the tables (title, rows) it measured, and figures."""
    run.save_config({"task": "conv-properties", "seed": seed})
    commute = [
        {"transform g": k, "|conv(g(x)) - g(conv(x))| / |g(conv(x))|": v}
        for k, v in transform_commutation(seed).items()
    ]
    pooling = maxpool_shift_stability(seed)
    shifts = [
        {
            "shift (px)": s,
            "conv features": pooling["conv features"][i],
            "max pool 2x2": pooling["max pool 2x2"][i],
        }
        for i, s in enumerate(range(len(pooling["conv features"])))
    ]
    params = conv_vs_dense_parameters()
    run.save_summary(
        {"commutation": commute, "relative change under shifts": shifts, "parameters": params}
    )
    run.save_figure("equivariance", equivariance_figure(seed))
    run.save_figure("stride", stride_figure(seed))
    run.save_figure("pooling", pooling_figure(pooling))
    run.save_figure("dct_basis", dct_basis_figure(8))
    return [
        ("does convolution commute with g?", commute),
        ("relative change of the output when the input shifts", shifts),
        ("parameters: conv layer vs fully connected layer, same input and output", params),
    ]


def check_data(data: str, allowed: tuple[str, ...], why: str) -> None:
    if data not in allowed:
        raise NNLabError(f"--data must be {' or '.join(allowed)}{why}, got '{data}'")
    if not available_splits(data):
        raise NNLabError(f"{data}: no data files found; run `nnlab datasets fetch {data}`")


def run_prior(
    run: RunDir,
    data: str,
    epochs: int,
    train_size: int,
    test_size: int,
    seed: int,
    device: str,
    console=None,
) -> list[dict[str, Any]]:
    """`nnlab conv prior` into `run`: test accuracy of both models on both tasks."""
    train, test, canvas = prior_data(data, seed)
    run.save_config(
        {
            "task": "conv-prior",
            "data": data,
            "epochs": epochs,
            "train": train_size,
            "test": test_size,
            "seed": seed,
            "canvas": canvas,
        }
    )
    run.save_figure("tasks", prior_examples_figure(train, test, canvas, seed))
    status = console.status("training 2 models x 2 tasks") if console else contextlib.nullcontext()
    with status:
        rows = prior_experiment(train, test, canvas, train_size, test_size, epochs, seed, device)
    run.save_summary({"accuracy": rows, "canvas": canvas})
    return rows


# ---- one CNN, many input sizes -------------------------------------------------------------------
def resize_to(x: np.ndarray, size: int, mode: str) -> np.ndarray:
    """(N, C, h, w) -> (N, C, size, size): `pad` keeps the digit's scale on a larger blank canvas
    (centred); `scale` enlarges the digit itself (bilinear)."""
    h, w = x.shape[2:]
    if mode == "pad":
        top, left = (size - h) // 2, (size - w) // 2
        return np.pad(x, ((0, 0), (0, 0), (top, size - h - top), (left, size - w - left)))
    t = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=(size, size), mode="bilinear", align_corners=False
    )
    return t.numpy()


def input_size_experiment(
    train: ImageSet,
    test: ImageSet,
    sizes: tuple[int, ...],
    epochs: int = 2,
    n_train: int = 20000,
    n_test: int = 2000,
    seed: int = 0,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Train nnlab's CNN (channels 16,32, global average pooling) at the images' own size, then
    evaluate the same weights on the test images padded or scaled to every size in `sizes`:
    accuracy, mean confidence (max softmax) and the most predicted class's share."""
    from nnlab.models import build_model, model_config

    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, device=device)
    trainer, _ = fit_classifier(
        lambda: build_model("cnn", model_config("cnn", channels=(16, 32), num_classes=10)),
        train.images[:n_train],
        train.labels[:n_train],
        cfg,
    )
    net = trainer.eval_model
    xte, yte = test.images[:n_test], test.labels[:n_test]
    rows = []
    for mode in ("pad", "scale"):
        for size in sizes:
            if mode == "pad" and size < xte.shape[2]:
                continue
            p = logits(net, resize_to(xte, size, mode)).softmax(1).numpy()
            pred = p.argmax(1)
            rows.append(
                {
                    "resize": mode,
                    "size": size,
                    "accuracy": float((pred == yte).mean()),
                    "mean confidence": float(p.max(1).mean()),
                    "most predicted class share": float(np.bincount(pred, minlength=10).max())
                    / len(pred),
                }
            )
    return rows


def input_size_figure(rows: list[dict[str, Any]], native: int) -> Figure:
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for mode, marker in (("pad", "o-"), ("scale", "s-")):
        pts = [
            (r["size"], r["accuracy"], r["mean confidence"]) for r in rows if r["resize"] == mode
        ]
        s, a, c = map(np.array, zip(*pts))
        line = ax.plot(s, a, marker, label=f"{mode}: accuracy")[0]
        ax.plot(s, c, marker, color=line.get_color(), alpha=0.4, label=f"{mode}: mean confidence")
    ax.axvline(native, color="k", ls=":", lw=1, label=f"training size {native}")
    ax.set_xlabel("input side (pixels)")
    ax.set_ylim(0, 1.02)
    ax.set_title("one CNN with global pooling, evaluated at other input sizes")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def run_input_size(
    run: RunDir, data: str, epochs: int, seed: int, device: str, console=None
) -> list[dict[str, Any]]:
    """`nnlab conv input-size` into `run`."""
    from nnlab.data import load_splits

    if data == "mnist":
        train, test = load_image_set("mnist", "train"), load_image_set("mnist", "test")
    else:
        s = load_splits("digits", seed=seed)
        up = np.ones((1, 1, 2, 2), np.float32)  # 8x8 -> 16x16: room for two poolings
        train, test = (
            ImageSet(np.kron(v.images, up), v.labels, v.class_names)
            for v in (s["train"], s["test"])
        )
    native = train.images.shape[2]
    sizes = tuple(
        sorted({native // 2, native, native * 3 // 2, native * 2, native * 3, native * 4})
    )
    run.save_config(
        {
            "task": "conv-input-size",
            "data": data,
            "epochs": epochs,
            "seed": seed,
            "sizes": list(sizes),
        }
    )
    status = console.status("training the CNN") if console else contextlib.nullcontext()
    with status:
        rows = input_size_experiment(train, test, sizes, epochs, seed=seed, device=device)
    run.save_summary({"input_size": rows, "native": native})
    run.save_figure("input_size", input_size_figure(rows, native))
    return rows


# ---- invariance beyond translation ---------------------------------------------------------------
def place(pattern: np.ndarray, canvas: int, dy: int = 0, dx: int = 0) -> np.ndarray:
    """The pattern in the middle of a blank canvas, moved by (dy, dx)."""
    out = np.zeros((canvas, canvas), np.float64)
    h, w = pattern.shape
    y, x = (canvas - h) // 2 + dy, (canvas - w) // 2 + dx
    out[y : y + h, x : x + w] = pattern
    return out


def detector_response(image: np.ndarray, filters: np.ndarray) -> float:
    """max over positions and over the filters of the normalised correlation: each filter is
    zero-mean with unit norm, each image window is centred and divided by its norm, so the
    response is a correlation coefficient (1 = the pattern exactly)."""
    k = filters.shape[-1]
    x, box = image[None, None], np.ones((1, 1, k, k))
    corr = conv2d(x, filters[:, None], padding=k // 2)  # (1, F, H, W), the engine's convolution
    sums, squares = conv2d(x, box, padding=k // 2), conv2d(x**2, box, padding=k // 2)
    centred = np.maximum(squares - sums**2 / k**2, 0)  # window sum of (x - window mean)^2
    return float((corr / np.sqrt(centred + 1e-9)).max())


def rotated_bank(pattern: np.ndarray, n: int) -> np.ndarray:
    """n copies of the pattern rotated by 360 / n degrees each, as zero-mean unit-norm filters."""
    from scipy.ndimage import rotate

    bank = np.stack([rotate(pattern, 360 * i / n, reshape=False, order=1) for i in range(n)])
    bank = bank - bank.mean(axis=(1, 2), keepdims=True)
    return bank / np.linalg.norm(bank.reshape(n, -1), axis=1)[:, None, None]


def invariance_experiment(
    pattern: np.ndarray,
    others: np.ndarray,
    canvas: int = 64,
    shifts: tuple[int, ...] = (-16, -8, -4, 0, 4, 8, 16),
    angles: tuple[float, ...] = tuple(range(0, 181, 10)),  # off the bank's 15-degree grid too
    scales: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 2.0),
    bank: int = 24,
) -> list[dict[str, Any]]:
    """Response of a matched filter (the pattern itself) and of the max over `bank` rotated
    copies of it, when the pattern is shifted, rotated or scaled, and on `others` (images of other
    classes, the false alarms); global max pooling over positions makes both shift-invariant, the
    max over the bank adds rotation."""
    from scipy.ndimage import rotate, zoom

    single, pooled = rotated_bank(pattern, 1), rotated_bank(pattern, bank)
    rows = []

    def add(change: str, amount: float, image: np.ndarray) -> None:
        rows.append(
            {
                "change": change,
                "amount": amount,
                "single filter": detector_response(image, single),
                f"max over {bank} rotations": detector_response(image, pooled),
            }
        )

    for s in shifts:
        add("shift (px)", s, place(pattern, canvas, s, s // 2))
    for a in angles:
        add("rotation (degrees)", a, place(rotate(pattern, a, reshape=False, order=1), canvas))
    for z in scales:
        scaled = zoom(pattern, z, order=1)
        if max(scaled.shape) > canvas:
            continue
        add("scale", z, place(scaled, canvas))
    for i, other in enumerate(others):
        add("another digit", i, place(other, canvas))
    return rows


def invariance_figure(
    rows: list[dict[str, Any]],
    ylabel: str = "detector response (1 = perfect match)",
    title: str = "a detector with global max pooling: shift-invariant; pooling over rotated "
    "filters adds rotation, nothing here adds scale",
    chance: float | None = None,
) -> Figure:
    """Three panels (shift, rotation, scale), one line per value column of `rows`."""
    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3, sharey=True)
    keys = [k for k in rows[0] if k not in ("change", "amount")]
    others = [r for r in rows if r["change"] == "another digit"]
    for ax, change in zip(axes, ("shift (px)", "rotation (degrees)", "scale")):
        sub = [r for r in rows if r["change"] == change]
        for key, style in zip(keys, ("o-", "s--")):
            line = ax.plot([r["amount"] for r in sub], [r[key] for r in sub], style, label=key)[0]
            if others:  # the mean response to other digits: what a false alarm scores
                level = np.mean([r[key] for r in others])
                ax.axhline(
                    level, color=line.get_color(), ls=":", lw=1, label=f"{key}: other digits"
                )
        if chance is not None:
            ax.axhline(chance, color="k", ls=":", lw=1, label="chance")
        ax.set_xlabel(change)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def run_invariance(run: RunDir, data: str, bank: int, seed: int) -> list[dict[str, Any]]:
    """`nnlab conv invariance` into `run`: the first test image of class 7 is the pattern."""
    from nnlab.data import load_splits

    test = (
        load_image_set("mnist", "test") if data == "mnist" else load_splits(data, seed=seed)["test"]
    )
    images = test.images[:, 0].astype(np.float64)
    if data == "digits":
        images = np.kron(images, np.ones((1, 3, 3)))  # 8x8 -> 24x24: room to rotate and scale
    image = images[int(np.flatnonzero(test.labels == 7)[0])]
    others = images[np.flatnonzero(test.labels != 7)[:20]]
    run.save_config({"task": "conv-invariance", "data": data, "bank": bank, "seed": seed})
    rows = invariance_experiment(image, others, canvas=64, bank=bank)
    run.save_summary({"invariance": rows})
    run.save_figure("invariance", invariance_figure(rows))
    return rows


# ---- the same measurement on a trained network ---------------------------------------------------
INVARIANCE_CANVAS = {"mnist": 48, "digits": 32}  # 28x28 digits with 10 px around, 16x16 with 8
# nnlab's CNN, one conv per block, its last features max-pooled over the canvas; receptive field
# 24 px, a 28x28 digit's ink fits in about 20x20
INVARIANCE_CNN = dict(channels=(8, 16, 32), convs_per_block=1, first_kernel=5, global_pool="max")


@dataclass
class TrainedInvarianceConfig:
    """`nnlab conv invariance --trained`: the CNN's training and what is measured."""

    data: str = "mnist"  # mnist (28x28) | digits (8x8 shown at 16x16)
    epochs: int = 3
    n_train: int = 8000  # training digits, upright, each at a random place on the canvas
    n_test: int = 1000  # the first test digits: the same ones under every transformation
    bank: int = 24  # rotated copies pooled by max, every 360 / bank degrees
    scales: tuple[float, ...] = (0.5, 0.7, 1.0, 1.4, 1.7, 2.0)  # those that fit the canvas
    seed: int = 0
    device: str = "auto"


def rotate_images(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """(N, C, S, S) square images rotated counter-clockwise (as displayed) by `degrees` about
    their centre; bilinear, zeros come in from outside. Multiples of 90 degrees only move pixels."""
    if degrees % 360 == 0:
        return x
    N = x.shape[0]
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    # affine_grid maps each output position (x right, y down, in [-1, 1]) to where it samples
    A = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype).expand(N, 2, 3)
    grid = nn.functional.affine_grid(A, list(x.shape), align_corners=False)  # (N, S, S, 2)
    return nn.functional.grid_sample(x, grid, mode="bilinear", align_corners=False)


def rotation_logits(net: nn.Module, x: torch.Tensor, angles: list[float]) -> torch.Tensor:
    """(A, N, K): f(R_a x) for every angle a."""
    return torch.stack([logits(net, rotate_images(x, a)) for a in angles])


def max_over_rotations(net: nn.Module, x: torch.Tensor, bank: int) -> torch.Tensor:
    """(N, K) logits of the rotation-pooled classifier

        g(x) = max_i f(R_{-theta_i} x),   theta_i = 360 i / bank,  the max per class.

    Rotating the input by -theta is the same as rotating every filter of f (and its pooling
    windows) by theta: convolution commutes with rotation once the filter turns too, ReLU and
    BatchNorm act per pixel, and the global max does not care where the rotated network found
    its feature. So g is f with `bank` rotated copies of every filter, pooled by max: g(R x) = g(x)
    for rotations R by a multiple of 360 / bank (up to interpolation and the canvas's corners),
    and a 6 may now be read as an upside-down 9."""
    return rotation_logits(net, x, [-360 * i / bank for i in range(bank)]).amax(0)


def trained_invariance_experiment(
    net: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    canvas: int,
    bank: int,
    scales: tuple[float, ...],
) -> dict[str, list[dict[str, Any]]]:
    """Test accuracy of a trained classifier f (`net`) and of g = max over `bank` rotations, on
    (N, 1, h, w) test digits centred on a blank canvas, then shifted (s px down, s/2 right, up to
    the margin), rotated (0 to 180 degrees) or scaled, and the confusions at 0 degrees.

    Angles are multiples of half the bank's step (7.5 degrees for 24): on the bank's grid and
    halfway between, where g is worst. One table serves both lines: T[k] = f(R_{k step} x) for
    k < 2 bank gives f at angle k step, and g there is the max of T over the k' = k (mod 2), as
    the digit turned by a and back by theta_i is the digit turned by a - theta_i (one
    interpolation instead of two). Shifted and scaled inputs take `bank` passes of f each."""
    N, _, side, _ = images.shape
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    single, pooled = "single network", f"max over {bank} rotations"

    def centred(x: np.ndarray, dy: int = 0, dx: int = 0) -> torch.Tensor:
        top = np.full(N, (canvas - x.shape[2]) // 2)
        return torch.from_numpy(place_on_canvas(x, canvas, top + dx, top + dy))

    def both(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = rotation_logits(net, x, [-360 * i / bank for i in range(bank)])  # (bank, N, K)
        return T[0], T.amax(0)  # f(x), g(x)

    def row(change: str, amount: float, f: torch.Tensor, g: torch.Tensor) -> dict[str, Any]:
        acc = {k: float((v.argmax(1) == y).float().mean()) for k, v in ((single, f), (pooled, g))}
        return {"change": change, "amount": amount, **acc}

    step = 180 / bank
    T = rotation_logits(net, centred(images), [k * step for k in range(2 * bank)])  # (2 bank, N, K)
    f0, g0 = T[0], T[0::2].amax(0)
    margin = (canvas - side) // 2
    rows = [
        row("shift (px)", s, *((f0, g0) if s == 0 else both(centred(images, s, s // 2))))
        for s in (-margin, -margin // 2, 0, margin // 2, margin)
    ]
    rows += [
        row("rotation (degrees)", k * step, T[k], T[k % 2 :: 2].amax(0)) for k in range(bank + 1)
    ]
    for z in scales:
        size = round(side * z)
        if size > canvas:
            continue
        fg = (f0, g0) if size == side else both(centred(resize_to(images, size, "scale")))
        rows.append(row("scale", z, *fg))
    return {
        "accuracy": rows,
        "confusions": confusion_changes(y, f0.argmax(1), g0.argmax(1), (single, pooled)),
    }


def confusion_changes(
    y: torch.Tensor,
    pred_a: torch.Tensor,
    pred_b: torch.Tensor,
    names: tuple[str, str],
    top: int = 3,
) -> list[dict[str, Any]]:
    """Counts of true -> predicted for 6 -> 9, 9 -> 6 and the `top` other pairs that grow most
    from classifier a to b."""
    C = [torch.bincount(y * 10 + p, minlength=100).reshape(10, 10) for p in (pred_a, pred_b)]
    grow = (C[1] - C[0]).flatten()
    grow[torch.arange(10) * 11] = -1 << 30  # the diagonal: correct answers
    grow[[69, 96]] = -1 << 30  # listed first anyway
    pairs = [(6, 9), (9, 6)] + [divmod(int(i), 10) for i in grow.argsort(descending=True)[:top]]
    return [
        {"true -> predicted": f"{t} -> {p}", names[0]: int(C[0][t, p]), names[1]: int(C[1][t, p])}
        for t, p in pairs
    ]


def run_trained_invariance(
    run: RunDir, cfg: TrainedInvarianceConfig, console=None
) -> dict[str, list[dict[str, Any]]]:
    """`nnlab conv invariance --trained` into `run`: a CNN with global max pooling trained on
    upright digits anywhere on the canvas, then measured like the matched filter."""
    from nnlab.models import build_model, model_config

    train, test, _ = prior_data(cfg.data, cfg.seed)
    canvas = INVARIANCE_CANVAS[cfg.data]
    n, side = min(cfg.n_train, len(train)), train.images.shape[2]
    rng = np.random.default_rng(cfg.seed)
    xs, ys = rng.integers(0, canvas - side + 1, (2, n))
    x = place_on_canvas(train.images[:n], canvas, xs, ys)
    run.save_config(
        {
            "task": "conv-invariance-trained",
            **dataclasses.asdict(cfg),
            "canvas": canvas,
            "model": {"name": "cnn", **INVARIANCE_CNN},
        }
    )
    status = console.status("") if console else contextlib.nullcontext()
    with status as shown:
        if shown is not None:
            shown.update(f"training the CNN: {n} digits on {canvas}x{canvas}, {cfg.epochs} epochs")
        trainer, seconds = fit_classifier(
            lambda: build_model("cnn", model_config("cnn", **INVARIANCE_CNN, num_classes=10)),
            x,
            train.labels[:n],
            TrainConfig(
                epochs=cfg.epochs,
                batch_size=64,
                lr=3e-3,
                seed=cfg.seed,
                device=cfg.device,
                channels_last=True,  # about twice as fast for these narrow convolutions on a CPU
            ),
        )
        if shown is not None:
            shown.update(
                f"accuracy under shifts, rotations and scales, max over {cfg.bank} rotations"
            )
        m = min(cfg.n_test, len(test))
        result = trained_invariance_experiment(
            trainer.eval_model, test.images[:m], test.labels[:m], canvas, cfg.bank, cfg.scales
        )
    run.save_summary(
        {
            "invariance_trained": result["accuracy"],
            "confusions at 0 degrees": result["confusions"],
            "training seconds": seconds,
            "canvas": canvas,
            "test digits": m,
        }
    )
    run.save_figure(
        "invariance_trained",
        invariance_figure(
            result["accuracy"],
            ylabel=f"test accuracy ({m} digits)",
            title=f"a CNN with global max pooling trained on upright digits anywhere on a "
            f"{canvas}x{canvas} canvas, and the max of its logits over {cfg.bank} rotations "
            "of the input",
            chance=0.1,
        ),
    )
    return result
