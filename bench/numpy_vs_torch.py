"""Speed of the NumPy engine vs PyTorch on the CPU: one epoch of the same MLP on MNIST, same batch
size, float32, SGD with momentum; the epochs of the two sides interleaved, median of --repeats
(min-max beside it).

    NNLAB_DATA=../shared/data python bench/numpy_vs_torch.py [--hidden 512,256] \
        [--batch-size 64,128]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import header, interleaved, ratio, spread

from nnlab.data import load_image_set
from nnlab.numpy_nn import SGD, CrossEntropyLoss, mlp


def numpy_side(sizes, x, y, batch):
    net = mlp(sizes, "relu", seed=0).no_input_grad()  # the images need no gradient (both sides)
    opt, loss = SGD(net.parameters(), lr=0.01, momentum=0.9), CrossEntropyLoss()
    rng = np.random.default_rng(0)

    def epoch():
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss(net(x[idx]), y[idx])
            opt.zero_grad()
            net.backward(loss.backward())
            opt.step()

    return epoch


def torch_side(sizes, x, y, batch):
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    xt, yt, gen = torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = order[i : i + batch]
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="512,256")
    p.add_argument("--batch-size", default="64,128", help="one or more, comma-separated")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]
    data = load_image_set("mnist", "train")
    x = data.images.reshape(len(data), -1)  # (60000, 784) float32
    y = data.labels
    sizes = [784, *hidden, 10]
    header(
        f"one MNIST epoch ({len(x)} images) of MLP {sizes}, float32, SGD momentum 0.9; "
        f"median of {args.repeats} interleaved epochs"
    )
    print(
        "\n| MLP | batch | NumPy s/epoch | PyTorch s/epoch | ratio |"
        "\n| --- | --- | --- | --- | --- |"
    )
    for batch in (int(b) for b in args.batch_size.split(",")):
        sides = {"numpy": numpy_side(sizes, x, y, batch), "torch": torch_side(sizes, x, y, batch)}
        t = interleaved(sides, args.repeats, block=0.0)
        print(
            f"| {'-'.join(map(str, sizes))} | {batch} | {spread(t['numpy'], 1, '.2f')} | "
            f"{spread(t['torch'], 1, '.2f')} | {ratio(t['numpy'], t['torch']):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
