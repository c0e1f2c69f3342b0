"""Convolution facts as experiments with numbers and figures: equivariance and its limits, stride,
pooling, parameter counts, the prior that helps or hurts, the DCT basis, Gabor-like filters."""

from __future__ import annotations

import contextlib
import time
from typing import Any

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
from nnlab.train import TrainConfig, Trainer
from nnlab.viz import image_grid_figure

EDGE = np.array(
    [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
)  # Sobel: not rotation-symmetric


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))


def _digit(seed: int = 0, size: int = 24) -> np.ndarray:
    """One 8x8 digit, upsampled x2 and placed in the middle of a size x size canvas."""
    d = load_image_set("digits", "all").images[seed, 0]
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
            torch.manual_seed(seed)
            cfg = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, device=device)
            trainer = Trainer(make(), ClassifyTask.for_classes(k), cfg)
            train = torch.utils.data.TensorDataset(
                torch.from_numpy(xtr), torch.from_numpy(ytr.astype(np.int64))
            )
            test = torch.utils.data.TensorDataset(
                torch.from_numpy(xte), torch.from_numpy(yte.astype(np.int64))
            )
            t0 = time.perf_counter()
            trainer.fit(train)
            seconds = time.perf_counter() - t0
            fitted = trainer.evaluate(train)
            row[f"{name} accuracy"] = trainer.evaluate(test)["acc"]
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

    torch.manual_seed(seed)
    model = build_model("cnn", model_config("cnn", channels=(16, 32), num_classes=10))
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, device=device)
    trainer = Trainer(model, ClassifyTask.for_classes(10), cfg)
    xtr, ytr = train.images[:n_train], train.labels[:n_train].astype(np.int64)
    trainer.fit(torch.utils.data.TensorDataset(torch.from_numpy(xtr), torch.from_numpy(ytr)))
    net = trainer.eval_model.eval()
    dev = next(net.parameters()).device
    xte, yte = test.images[:n_test], test.labels[:n_test]
    rows = []
    for mode in ("pad", "scale"):
        for size in sizes:
            if mode == "pad" and size < xte.shape[2]:
                continue
            x = torch.from_numpy(np.ascontiguousarray(resize_to(xte, size, mode)))
            with torch.no_grad():
                p = torch.cat([net(b.to(dev)).softmax(1).cpu() for b in x.split(500)]).numpy()
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


def invariance_figure(rows: list[dict[str, Any]]) -> Figure:
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
        ax.set_xlabel(change)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("detector response (1 = perfect match)")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "a detector with global max pooling: shift-invariant; pooling over rotated "
        "filters adds rotation, nothing here adds scale",
        fontsize=9,
    )
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
