"""Gabor-like first-layer filters from natural images: independent component analysis (ICA) of
whitened patches of scikit-learn's two bundled photographs, a 2-D Gabor function fitted to every
filter, and the fit quality (R^2) beside the first-layer filters of a CNN trained on MNIST and
beside random filters.

Gabor function (x', y' the pixel coordinates rotated by theta around the centre (x0, y0)):
    g(x, y) = a exp(-x'^2 / (2 sx^2) - y'^2 / (2 sy^2)) cos(2 pi f x' + phi) + c
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from nnlab.run import RunDir


def natural_patches(size: int, n: int, seed: int = 0) -> np.ndarray:
    """n random size x size greyscale patches (values in [0, 1]) of the bundled photographs
    (`sklearn.datasets.load_sample_images`: china.jpg and flower.jpg, no download), halved in
    size by 2x2 means first: at full size ICA spends components on the JPEG's 8x8 block edges
    and pixel noise (checkerboard filters)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    images = []
    for img in load_sample_images().images:
        g = img.astype(np.float64).mean(axis=2) / 255
        h, w = g.shape[0] // 2 * 2, g.shape[1] // 2 * 2
        images.append(g[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))
    out = np.empty((n, size, size))
    for i in range(n):
        img = images[i % len(images)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        out[i] = img[y : y + size, x : x + size]
    return out


def ica_filters(patches: np.ndarray, n_filters: int, seed: int = 0) -> np.ndarray:
    """FastICA (scikit-learn, whitening inside) on the mean-removed patches; the rows of the
    unmixing matrix are the filters, (n_filters, size, size)."""
    from sklearn.decomposition import FastICA

    n, size, _ = patches.shape
    x = patches.reshape(n, -1)
    x = x - x.mean(axis=1, keepdims=True)  # each patch's mean brightness is not structure
    ica = FastICA(n_filters, whiten="unit-variance", random_state=seed, max_iter=1000, tol=1e-3)
    ica.fit(x)
    return ica.components_.reshape(n_filters, size, size)


def gabor(params: np.ndarray, size: int) -> np.ndarray:
    a, x0, y0, sx, sy, theta, f, phi, c = params
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
    yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
    envelope = np.exp(-(xr**2) / (2 * sx**2) - yr**2 / (2 * sy**2))
    return a * envelope * np.cos(2 * np.pi * f * xr + phi) + c


def fit_gabor(w: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares fit of `gabor` to the filter w from four starts (the filter's spectral peak
    -- orientation and frequency -- with phases 0 and pi/2, and a low-frequency blob at two
    orientations); returns (R^2 = 1 - residual / total sum of squares, the best parameters)."""
    from scipy.optimize import least_squares

    size = w.shape[0]
    w = w / (np.abs(w).max() or 1)
    total = ((w - w.mean()) ** 2).sum()
    energy, (ys, xs) = w**2, np.indices(w.shape)
    cy, cx = (ys * energy).sum() / energy.sum(), (xs * energy).sum() / energy.sum()  # centroid
    lo = [-np.inf, -1, -1, 0.5, 0.5, -np.inf, 0.0, -np.inf, -np.inf]
    hi = [np.inf, size, size, size, size, np.inf, 0.5, np.inf, np.inf]
    spectrum = np.abs(np.fft.fft2(w - w.mean(), s=(32, 32)))
    ky, kx = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    fy, fx = np.fft.fftfreq(32)[ky], np.fft.fftfreq(32)[kx]
    peak = (np.arctan2(fy, fx), min(float(np.hypot(fx, fy)), 0.5))
    best = (np.inf, None)
    for theta, f, phi in (
        (*peak, 0.0),
        (*peak, np.pi / 2),
        (0.0, 0.05, 0.0),
        (np.pi / 2, 0.05, 0.0),
    ):
        start = [1.0, cx, cy, size / 4, size / 4, theta, f, phi, 0.0]
        r = least_squares(lambda p: (gabor(p, size) - w).ravel(), start, bounds=(lo, hi))
        if r.cost < best[0]:
            best = (r.cost, r.x)
    return 1 - 2 * best[0] / total, best[1]


def gabor_rows(groups: dict[str, np.ndarray]) -> tuple[list[dict[str, Any]], dict]:
    """Median and quartiles of the fits' R^2 per group of filters; also every fit, per group."""
    rows, fits = [], {}
    for name, bank in groups.items():
        results = [fit_gabor(w) for w in bank]
        r2 = np.array([r for r, _ in results])
        fits[name] = (r2, [p for _, p in results])
        rows.append(
            {
                "filters": name,
                "count": len(bank),
                "size": bank.shape[1],
                "median R^2": float(np.median(r2)),
                "quartiles": f"{np.quantile(r2, 0.25):.2f} - {np.quantile(r2, 0.75):.2f}",
                "R^2 > 0.8": float((r2 > 0.8).mean()),
            }
        )
    return rows, fits


def gabor_figure(groups: dict[str, np.ndarray], fits: dict, per_group: int = 8) -> Figure:
    """For each group, its first filters (row 1) above their fitted Gabor functions (row 2)."""
    fig = Figure(figsize=(1.3 * per_group, 2.7 * len(groups)))
    sub = fig.subfigures(len(groups), 1) if len(groups) > 1 else [fig]
    for sf, (name, bank) in zip(sub, groups.items()):
        r2, params = fits[name]
        axes = sf.subplots(2, per_group, squeeze=False)
        for i in range(per_group):
            for row, img in (
                (0, bank[i] / (np.abs(bank[i]).max() or 1)),
                (1, gabor(params[i], bank.shape[1])),
            ):
                ax = axes[row, i]
                ax.imshow(img, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            axes[0, i].set_title(f"R^2 {r2[i]:.2f}", fontsize=7)
        axes[0, 0].set_ylabel("filter", fontsize=7)
        axes[1, 0].set_ylabel("Gabor fit", fontsize=7)
        sf.suptitle(f"{name}: median R^2 {np.median(r2):.2f}", fontsize=9)
    return fig


def mnist_first_layer(epochs: int, limit: int, seed: int, device: str) -> np.ndarray:
    """The 7x7 first-layer filters of nnlab's CNN (channels 16,32, small initial scale so the
    learnt part shows) trained on `limit` MNIST images (the shared loop)."""
    import torch

    from nnlab.data import load_image_set
    from nnlab.models import build_model, model_config
    from nnlab.tasks.classify import ClassifyTask
    from nnlab.train import TrainConfig, Trainer

    torch.manual_seed(seed)
    model = build_model(
        "cnn", model_config("cnn", channels=(16, 32), first_kernel=7, first_init_scale=0.05)
    )
    data = load_image_set("mnist", "train")
    x, y = data.images[:limit], data.labels[:limit].astype(np.int64)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed, device=device)
    trainer = Trainer(model, ClassifyTask.for_classes(10), cfg)
    trainer.fit(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))
    w = model.features[0][0][0].weight.detach().cpu().numpy()  # (16, 1, 7, 7)
    return w[:, 0].astype(np.float64)


def run_gabor(
    run: RunDir,
    size: int = 12,
    filters: int = 64,
    patches: int = 20000,
    mnist_epochs: int = 1,
    seed: int = 0,
    device: str = "auto",
    with_mnist: bool | None = None,
) -> list[dict[str, Any]]:
    """`nnlab conv gabor` into `run` (the MNIST group when mnist_epochs > 0)."""
    with_mnist = mnist_epochs > 0 if with_mnist is None else with_mnist
    run.save_config(
        {
            "task": "conv-gabor",
            "size": size,
            "filters": filters,
            "patches": patches,
            "mnist_epochs": mnist_epochs if with_mnist else 0,
            "seed": seed,
        }
    )
    groups = {
        f"ICA of natural-image patches ({size}x{size})": ica_filters(
            natural_patches(size, patches, seed), filters, seed
        )
    }
    rng = np.random.default_rng(seed)
    if with_mnist:  # beside its own-size random baseline: 9 parameters fit 49 pixels more easily
        groups["CNN trained on MNIST, first layer (7x7)"] = mnist_first_layer(
            mnist_epochs, 20000, seed, device
        )
        groups["random N(0, 1) (7x7)"] = rng.standard_normal((16, 7, 7))
    groups[f"random N(0, 1) ({size}x{size})"] = rng.standard_normal((filters, size, size))
    rows, fits = gabor_rows(groups)
    run.save_summary({"gabor": rows})
    run.save_figure("gabor_fits", gabor_figure(groups, fits))
    return rows
