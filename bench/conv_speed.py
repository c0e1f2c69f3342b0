"""Speed of the NumPy im2col convolution vs PyTorch on the CPU: forward + backward of one 3x3,
1 -> 16 channel conv layer (padding 1) on a batch of 64 MNIST images, measured in one run.

    NNLAB_DATA=../shared/data python bench/conv_speed.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as TF

from nnlab.data import load_image_set
from nnlab.numpy_nn.conv import Conv2d


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out-channels", type=int, default=16)
    args = p.parse_args()
    x = load_image_set("mnist", "test").images[: args.batch]  # (64, 1, 28, 28) float32
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); x {x.shape}, 3x3, "
        f"1 -> {args.out_channels} channels, padding 1"
    )

    layer = Conv2d(1, args.out_channels, 3, padding=1)
    g = (
        np.random.default_rng(0)
        .standard_normal((args.batch, args.out_channels, 28, 28))
        .astype(np.float32)
    )

    def numpy_step():
        layer.zero_grad()
        layer(x)
        layer.backward(g)

    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(layer.W.data.copy()).requires_grad_(True)
    bt = torch.zeros(args.out_channels, requires_grad=True)
    gt = torch.from_numpy(g)

    def torch_step():
        xt.grad = wt.grad = bt.grad = None
        TF.conv2d(xt, wt, bt, padding=1).backward(gt)

    (n_best, n_med), (t_best, t_med) = (
        best_of(numpy_step, args.repeats),
        best_of(torch_step, args.repeats),
    )
    print(
        f"numpy engine: best {n_best * 1e3:.2f} ms, median {n_med * 1e3:.2f} ms "
        "(forward + backward)"
    )
    print(f"pytorch     : best {t_best * 1e3:.2f} ms, median {t_med * 1e3:.2f} ms")
    print(f"ratio numpy / pytorch: best {n_best / t_best:.2f}, median {n_med / t_med:.2f}")


if __name__ == "__main__":
    main()
