"""Speed of the NumPy engine's convolution and pooling vs PyTorch on the CPU: forward + backward
(input gradient included on both sides), float32, every layer shape of the NumPy CNN on MNIST, of
nnlab's CNN (models/cnn.py, channels 32,64) and of the issue's table; interleaved, median of
--repeats (min-max beside it).

    python bench/conv_speed.py [--repeats 15] [--only conv|pool] [--memory nchw|channels-last]
                               [--before]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as TF
from timing import header, interleaved, ratio, spread

import nnlab.numpy_nn.conv as conv
from nnlab.numpy_nn.conv import Conv2d, MaxPool2d

SHIFTS_FROM = conv.SHIFT_MIN_CHANNELS

# (batch, in channels, out channels, size, where the shape comes from); 3x3 kernels, padding 1
CONVS = [
    (64, 1, 16, 28, "NumPy CNN layer 1, table"),
    (64, 16, 32, 14, "NumPy CNN layer 2, table"),
    (64, 32, 64, 7, "table"),
    (128, 32, 64, 14, "table"),
    (64, 1, 32, 28, "nnlab CNN block 1 conv 1"),
    (64, 32, 32, 28, "nnlab CNN block 1 conv 2"),
    (64, 32, 64, 14, "nnlab CNN block 2 conv 1"),
    (64, 64, 64, 14, "nnlab CNN block 2 conv 2"),
]
# (batch, channels, size, where); 2x2 max pooling, stride 2
POOLS = [
    (64, 16, 28, "NumPy CNN pool 1"),
    (64, 32, 14, "NumPy CNN pool 2"),
    (64, 32, 28, "nnlab CNN pool 1"),
    (64, 64, 14, "nnlab CNN pool 2"),
]


def arrays(shape, channels_last: bool, rng) -> np.ndarray:
    """Random (B, C, H, W) float32, stored NCHW or channels-last (an NCHW view of NHWC memory,
    as activations and gradients flow between the engine's layers; torch.from_numpy keeps the
    strides, so PyTorch gets the same memory and runs its channels-last kernels)."""
    b, c, h, w = shape
    if channels_last:
        return rng.standard_normal((b, h, w, c), dtype=np.float32).transpose(0, 3, 1, 2)
    return rng.standard_normal(shape, dtype=np.float32)


def conv_sides(b: int, c: int, o: int, s: int, channels_last: bool, before: bool):
    """The two sides (and with `before`, the engine with its input gradient by col2im's adds,
    as it was before `Conv2d._input_grad_by_shifts`)."""
    rng = np.random.default_rng(0)
    x = arrays((b, c, s, s), channels_last, rng)
    g = arrays((b, o, s, s), channels_last, rng)
    layer = Conv2d(c, o, 3, padding=1, rng=rng)

    def numpy_step():
        conv.SHIFT_MIN_CHANNELS = SHIFTS_FROM
        layer.zero_grad()
        layer(x)
        layer.backward(g)

    def col2im_step():
        conv.SHIFT_MIN_CHANNELS = 1 << 30
        layer.zero_grad()
        layer(x)
        layer.backward(g)

    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(layer.W.data.copy()).requires_grad_(True)
    bt = torch.zeros(o, requires_grad=True)
    gt = torch.from_numpy(g)

    def torch_step():
        xt.grad = wt.grad = bt.grad = None
        TF.conv2d(xt, wt, bt, padding=1).backward(gt)

    sides = {"numpy": numpy_step, "torch": torch_step}
    return {**sides, "col2im": col2im_step} if before else sides


def pool_sides(b: int, c: int, s: int, channels_last: bool):
    rng = np.random.default_rng(0)
    x = arrays((b, c, s, s), channels_last, rng)
    g = arrays((b, c, s // 2, s // 2), channels_last, rng)
    layer = MaxPool2d(2)

    def numpy_step():
        layer(x)
        layer.backward(g)

    xt, gt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(g)

    def torch_step():
        xt.grad = None
        TF.max_pool2d(xt, 2).backward(gt)

    return {"numpy": numpy_step, "torch": torch_step}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--only", choices=["conv", "pool"])
    p.add_argument(
        "--memory",
        choices=["nchw", "channels-last"],
        default="nchw",
        help="how x and the output gradient are stored, for both sides (default: nchw)",
    )
    p.add_argument(
        "--before",
        action="store_true",
        help="also time the engine's input gradient by col2im (before the shifted GEMMs)",
    )
    args = p.parse_args()
    cl = args.memory == "channels-last"
    header(
        f"conv/pool forward + backward, float32, x and gradient stored {args.memory}, "
        f"median of {args.repeats} interleaved repeats"
    )
    extra = " NumPy with col2im ms | its ratio |" if args.before else ""
    print(f"\n| layer | shape (B, C -> O, HxW) | NumPy ms | PyTorch ms | ratio |{extra}")
    print("| --- | --- | --- | --- | --- |" + (" --- | --- |" if args.before else ""))
    worst = 0.0
    if args.only != "pool":
        for b, c, o, s, where in CONVS:
            t = interleaved(conv_sides(b, c, o, s, cl, args.before), args.repeats)
            r = ratio(t["numpy"], t["torch"])
            worst = max(worst, r)
            before = (
                f" {spread(t['col2im'])} | {ratio(t['col2im'], t['torch']):.2f} |"
                if args.before
                else ""
            )
            print(
                f"| conv3x3 p1: {where} | {b}, {c} -> {o}, {s}x{s} | {spread(t['numpy'])} | "
                f"{spread(t['torch'])} | {r:.2f} |{before}"
            )
    if args.only != "conv":
        for b, c, s, where in POOLS:
            t = interleaved(pool_sides(b, c, s, cl), args.repeats)
            r = ratio(t["numpy"], t["torch"])
            worst = max(worst, r)
            print(
                f"| maxpool2: {where} | {b}, {c}, {s}x{s} | {spread(t['numpy'])} | "
                f"{spread(t['torch'])} | {r:.2f} |"
            )
    print(f"\nlargest ratio (median NumPy / median PyTorch): {worst:.2f}; target <= 1.5")


if __name__ == "__main__":
    main()
