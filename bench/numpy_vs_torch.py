"""Speed of the NumPy engine vs PyTorch on the CPU: one epoch of the same MLP on MNIST, same batch
size, float32, SGD with momentum, measured in one run (best of --repeats epochs each).

    NNLAB_DATA=../shared/data python bench/numpy_vs_torch.py [--hidden 512,256] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from nnlab.data import load_image_set
from nnlab.numpy_nn import SGD, CrossEntropyLoss, mlp


def numpy_epoch(net, opt, x, y, batch, rng) -> float:
    loss = CrossEntropyLoss()
    order = rng.permutation(len(x))
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        loss(net(x[idx]), y[idx])
        opt.zero_grad()
        net.backward(loss.backward())
        opt.step()
    return time.perf_counter() - t0


def torch_epoch(net, opt, x, y, batch, gen) -> float:
    order = torch.randperm(len(x), generator=gen)
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="512,256")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]
    data = load_image_set("mnist", "train")
    x = data.images.reshape(len(data), -1)  # (60000, 784) float32
    y = data.labels
    sizes = [784, *hidden, 10]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); MLP {sizes}, "
        f"batch {args.batch_size}, {len(x)} images"
    )

    net = mlp(sizes, "relu", seed=0)
    opt = SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    t_np = [numpy_epoch(net, opt, x, y, args.batch_size, rng) for _ in range(args.repeats)]

    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    tnet = torch.nn.Sequential(*layers[:-1])
    topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
    xt, yt, gen = torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(0)
    t_torch = [torch_epoch(tnet, topt, xt, yt, args.batch_size, gen) for _ in range(args.repeats)]

    print(f"numpy engine: {min(t_np):.2f} s/epoch (all: {', '.join(f'{t:.2f}' for t in t_np)})")
    print(
        f"pytorch     : {min(t_torch):.2f} s/epoch (all: {', '.join(f'{t:.2f}' for t in t_torch)})"
    )
    print(f"ratio numpy / pytorch: {min(t_np) / min(t_torch):.2f}")


if __name__ == "__main__":
    main()
