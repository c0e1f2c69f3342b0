"""Receptive fields: the theoretical one of every layer (which input pixels can reach a unit at all)
and the effective one (how much each input pixel moves that unit, measured as the input gradient
of one unit at the centre of the feature map, averaged over images).

The recursion, input side first, for a layer of kernel k, stride s and dilation d:
    r_l = r_{l-1} + (k - 1) d j_{l-1},   j_l = j_{l-1} s,   r_0 = j_0 = 1,
where j is the jump (input pixels between neighbouring units) and r the receptive field's side.
A transposed convolution of kernel k and stride s (the U-Net's up-convolution) reads
ceil(k / s) input units per output unit and divides the jump by s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from nnlab.run import RunDir


@dataclass(frozen=True)
class Step:
    """One layer as the receptive field sees it."""

    name: str
    kernel: int
    stride: int = 1
    dilation: int = 1
    transposed: bool = False


def receptive_fields(steps: list[Step]) -> list[dict[str, Any]]:
    """Side r (input pixels) and jump j after every step of the list, input side first."""
    r, j, rows = 1.0, 1.0, []
    for st in steps:
        if st.transposed:
            r += (math.ceil(st.kernel / st.stride) - 1) * j
            j /= st.stride
        else:
            r += (st.kernel - 1) * st.dilation * j
            j *= st.stride
        rows.append({"layer": st.name, "receptive field": int(r), "jump": j})
    return rows


def _pair0(v) -> int:
    return v[0] if isinstance(v, tuple) else v


def _step(name: str, m: nn.Module) -> Step | None:
    """The Step of a convolution or pooling module; None for anything else."""
    if isinstance(m, nn.ConvTranspose2d):
        return Step(name, _pair0(m.kernel_size), _pair0(m.stride), transposed=True)
    if isinstance(m, nn.Conv2d):
        return Step(name, _pair0(m.kernel_size), _pair0(m.stride), _pair0(m.dilation))
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return Step(name, _pair0(m.kernel_size), _pair0(m.stride or m.kernel_size))
    return None


def torch_steps(model: nn.Module) -> list[Step]:
    """Convolutions and pooling of a feed-forward model in the order `modules()` lists them (the
    forward order for nnlab's CNN; not for the U-Net, whose pooling is shared: `unet_steps`)."""
    steps = [_step(name, m) for name, m in model.named_modules()]
    return [st for st in steps if st is not None]


def _unet_path(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The U-Net's deepest path, which sees the most: down through every level (the shared pool
    between levels), up again, the head."""
    path: list[tuple[str, nn.Module]] = []
    for i, block in enumerate(model.down):
        if i:
            path.append((f"pool {i}", model.pool))
        path += [(f"down{i}.{n}", m) for n, m in block.named_children() if type(m) is nn.Conv2d]
    for i, (up, fuse) in enumerate(zip(model.up, model.fuse)):
        path.append((f"up{i}", up))
        path += [(f"fuse{i}.{n}", m) for n, m in fuse.named_children() if type(m) is nn.Conv2d]
    return path + [("head", model.head)]


def unet_steps(model: nn.Module) -> list[Step]:
    return [_step(name, m) for name, m in _unet_path(model)]


def unet_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The path's modules whose output is one place in it (the shared pool's is not)."""
    return [(name, m) for name, m in _unet_path(model) if m is not model.pool]


def numpy_steps(net) -> list[Step]:
    """Convolutions and pooling of a NumPy-engine Sequential, up to its Flatten."""
    from nnlab.numpy_nn.conv import Conv2d, Flatten, MaxPool2d

    steps = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            break
        if isinstance(layer, Conv2d):
            steps.append(Step(f"{i} conv", layer.W.data.shape[2], layer.stride, layer.dilation))
        elif isinstance(layer, MaxPool2d):
            steps.append(Step(f"{i} maxpool", layer.k, layer.stride))
    return steps


# ---- the effective receptive field ---------------------------------------------------------------
def gradient_map(unit, images: torch.Tensor) -> np.ndarray:
    """Mean over images of |d unit / d input|, summed over input channels: (H, W). `unit` maps a
    batch (requiring grad) to one scalar per image."""
    x = images.clone().requires_grad_(True)
    unit(x).sum().backward()
    return x.grad.abs().sum(1).mean(0).numpy()


def centre_unit(features):
    """The unit at the centre of a (B, C, h, w) feature map, summed over channels."""
    h, w = features.shape[2:]
    return features[:, :, h // 2, w // 2].sum(1)


def support_side(grad: np.ndarray, rel: float = 1e-12) -> int:
    """Side of the smallest square around the nonzero gradient (its bounding box's larger side)."""
    ys, xs = np.nonzero(grad > rel * grad.max())
    return int(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1) if len(ys) else 0


def support_centre(grad: np.ndarray, rel: float = 1e-12) -> tuple[float, float]:
    """Centre (row, column) of the nonzero gradient's bounding box: the unit's field's centre."""
    ys, xs = np.nonzero(grad > rel * grad.max())
    return (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2


def mass_side(grad: np.ndarray, fraction: float = 0.95) -> int:
    """Side of the smallest square around the field's centre that holds `fraction` of the
    gradient's mass (a side-s square around a half-integer centre: s even; else s odd)."""
    cy, cx = support_centre(grad)
    total = grad.sum()
    for s in range(1, 2 * max(grad.shape) + 1):
        y0, x0 = int(np.ceil(cy - (s - 1) / 2)), int(np.ceil(cx - (s - 1) / 2))
        if (cy - (s - 1) / 2) % 1 or (cx - (s - 1) / 2) % 1:
            continue  # this side does not centre on (cy, cx)
        box = grad[max(0, y0) : y0 + s, max(0, x0) : x0 + s]
        if box.sum() >= fraction * total:
            return s
    return max(grad.shape)


def torch_layer_maps(model: nn.Module, layers: list[tuple[str, nn.Module]], images: torch.Tensor):
    """{layer name: gradient map of the centre unit of that module's output}."""
    model.eval()
    maps = {}
    for name, module in layers:
        maps[name] = gradient_map(_unit_at(model, module), images)
    return maps


def _unit_at(model: nn.Module, module: nn.Module):
    """x -> the centre unit of `module`'s output when `model` runs on x (a forward hook)."""

    def unit(x):
        grabbed = []
        handle = module.register_forward_hook(lambda m, i, o: grabbed.append(o))
        try:
            model(x)
        finally:
            handle.remove()
        return centre_unit(grabbed[-1])

    return unit


def numpy_layer_maps(net, images: np.ndarray) -> dict[str, np.ndarray]:
    """The same for the NumPy engine: forward to each conv/pool layer, then its backward pass from
    a gradient of ones at the centre unit (all channels) back to the input."""
    from nnlab.numpy_nn.conv import Conv2d, Flatten, MaxPool2d

    maps = {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            break
        if not isinstance(layer, (Conv2d, MaxPool2d)):
            continue
        h = images
        for m in net.layers[: i + 1]:
            h = m(h)
        g = np.zeros_like(h)
        g[:, :, h.shape[2] // 2, h.shape[3] // 2] = 1
        for m in reversed(net.layers[: i + 1]):
            g = m.backward(g)
        name = f"{i} {'conv' if isinstance(layer, Conv2d) else 'maxpool'}"
        maps[name] = np.abs(g).sum(1).mean(0)
    return maps


def rf_rows(model_name: str, theory: list[dict[str, Any]], maps: dict[str, np.ndarray]):
    """Table rows: theoretical side beside the measured gradient support and 95%-mass side."""
    rows = []
    for t in theory:
        if t["layer"] not in maps:
            continue
        g = maps[t["layer"]]
        rows.append(
            {
                "model": model_name,
                "layer": t["layer"],
                "theoretical RF": t["receptive field"],
                "gradient support": support_side(g),
                "95% of the gradient": mass_side(g),
                "input side": g.shape[0],
            }
        )
    return rows


def rf_figure(panels: list[tuple[str, str, np.ndarray, int]], title: str) -> Figure:
    """One panel per (model, layer, gradient map, theoretical side): the map with the theoretical
    field drawn as a square around the centre unit."""
    cols = 6
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (model, layer, g, side) in zip(axes, panels):
        ax.imshow(g / (g.max() or 1), cmap="magma")
        cy, cx = support_centre(g)
        box = Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, ec="cyan", lw=1)
        ax.add_patch(box)
        ax.set_title(f"{model}\n{layer}: RF {side}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# ---- the command's run ---------------------------------------------------------------------------
def rf_images(data: str, n: int, seed: int) -> np.ndarray:
    """n test images (N, 1, H, W) of `data` (mnist: 28x28; digits: 8x8 upsampled to 32x32)."""
    from nnlab.data import load_image_set, load_splits

    if data == "mnist":
        return load_image_set("mnist", "test").images[:n].astype(np.float32)
    x = load_splits("digits", seed=seed)["test"].images[:n]
    return np.kron(x, np.ones((1, 1, 4, 4))).astype(np.float32)


def run_receptive_field(run: RunDir, data: str = "mnist", n: int = 64, seed: int = 0):
    """`nnlab conv receptive-field` into `run`: theory and measurement for nnlab's CNN (channels
    32,64), the NumPy CNN (16,32) on the images, and a depth-4 U-Net (base 8) on the same images
    upsampled to 128x128; weights at initialisation (seeded). Returns the table rows."""
    from nnlab.models import build_model, model_config
    from nnlab.tasks.numpy_classify import NumpyClassifyConfig, build_net

    run.save_config({"task": "receptive-field", "data": data, "images": n, "seed": seed})
    x = rf_images(data, n, seed)
    torch.manual_seed(seed)
    rows, panels = [], []

    cnn = build_model("cnn", model_config("cnn"))
    named = [
        (k, m) for k, m in cnn.features.named_modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))
    ]
    maps = torch_layer_maps(cnn, named, torch.from_numpy(x))
    theory = receptive_fields(torch_steps(cnn.features))
    rows += rf_rows("CNN 32,64", theory, maps)

    net = build_net(NumpyClassifyConfig(arch="cnn", channels=(16, 32), seed=seed), x.shape[1:], 10)
    np_maps = numpy_layer_maps(net, x)
    rows += rf_rows("NumPy CNN 16,32", receptive_fields(numpy_steps(net)), np_maps)

    unet = build_model("unet", model_config("unet", in_channels=1, base=8, depth=4))
    big = np.kron(
        np.pad(x, ((0, 0), (0, 0), (0, (-x.shape[2]) % 32), (0, (-x.shape[3]) % 32))),
        np.ones((1, 1, 4, 4), np.float32),
    )
    big = big[:, :, :128, :128]
    u_maps = torch_layer_maps(
        unet, unet_modules(unet), torch.from_numpy(np.ascontiguousarray(big[: max(8, n // 8)]))
    )
    rows += rf_rows("U-Net depth 4", receptive_fields(unet_steps(unet)), u_maps)

    for model, m, th in (
        ("CNN", maps, theory),
        ("NumPy CNN", np_maps, receptive_fields(numpy_steps(net))),
        ("U-Net", u_maps, receptive_fields(unet_steps(unet))),
    ):
        for t in th:
            if t["layer"] in m:
                panels.append((model, t["layer"], m[t["layer"]], t["receptive field"]))
    run.save_summary({"receptive_fields": rows})
    run.save_figure(
        "receptive_fields",
        rf_figure(
            panels,
            "mean |d unit / d input| of the centre unit, theoretical field in cyan "
            "(weights at initialisation)",
        ),
    )
    return rows
