"""Where the NumPy engine's time goes (the figures behind docs/RESULTS.md's speed sections):

1. cProfile of one MNIST epoch of the 784-512-256-10 MLP at batch 64 (top functions);
2. one SGD-with-momentum step over that MLP's parameters: NumPy operators (the engine) vs BLAS
   scal/axpy through SciPy (what NumPy does not expose);
3. filling the 58 MB im2col matrix of a 64 x 32 -> 32 x 28 x 28 conv layer into a fresh array vs a
   reused one, and its GEMM into a fresh output vs `out=` (page faults of fresh memory).

    NNLAB_DATA=../shared/data python bench/numpy_profile.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy.linalg.blas import get_blas_funcs
from timing import header, interleaved, spread

from nnlab.data import load_image_set
from nnlab.numpy_nn import SGD, CrossEntropyLoss, mlp


def profile_epoch(batch: int) -> None:
    data = load_image_set("mnist", "train")
    x, y = data.images.reshape(len(data), -1), data.labels
    net = mlp([784, 512, 256, 10], "relu", seed=0).no_input_grad()
    opt, loss = SGD(net.parameters(), lr=0.01, momentum=0.9), CrossEntropyLoss()
    order = np.random.default_rng(0).permutation(len(x))

    def epoch():
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss(net(x[idx]), y[idx])
            opt.zero_grad()
            net.backward(loss.backward())
            opt.step()

    epoch()  # warm-up
    prof = cProfile.Profile()
    prof.runcall(epoch)
    print(f"\n1. cProfile of one epoch, MLP 784-512-256-10, batch {batch}:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(6)


def sgd_step(repeats: int) -> None:
    rng = np.random.default_rng(0)
    shapes = [(784, 512), (512,), (512, 256), (256,), (256, 10), (10,)]
    p, g, v = ([rng.standard_normal(s, dtype=np.float32) for s in shapes] for _ in range(3))
    lr, m = 0.01, 0.9
    scal, axpy = get_blas_funcs(("scal", "axpy"), (p[0],))

    def numpy_ops():  # the engine's SGD.step
        for pi, gi, vi in zip(p, g, v):
            vi *= m
            vi += gi
            pi -= lr * vi

    def blas():  # one pass per operation, in place
        for pi, gi, vi in zip(p, g, v):
            scal(m, vi.reshape(-1))
            axpy(gi.reshape(-1), vi.reshape(-1), a=1.0)
            axpy(vi.reshape(-1), pi.reshape(-1), a=-lr)

    t = interleaved({"numpy": numpy_ops, "blas": blas}, repeats)
    print("\n2. one SGD momentum step over 535,818 parameters (ms, median (min-max)):")
    print(f"   NumPy operators {spread(t['numpy'])}, BLAS scal/axpy {spread(t['blas'])}")


def fresh_vs_reused(repeats: int) -> None:
    b, c, s = 64, 32, 28
    xp = np.random.default_rng(0).random((b, s + 2, s + 2, c), dtype=np.float32)
    sb, sh, sw, sc = xp.strides
    cols = as_strided(xp, (b, s, s, 3, 3, c), (sb, sh, sw, sh, sw, sc), writeable=False)
    X = np.empty(cols.shape, np.float32)
    W = np.ones((9 * c, 32), np.float32)
    Xm, out = X.reshape(-1, 9 * c), np.empty((b * s * s, 32), np.float32)
    np.copyto(X, cols)
    t = interleaved(
        {
            "copy fresh": lambda: cols.reshape(-1, 9 * c),
            "copy reused": lambda: np.copyto(X, cols),
            "gemm fresh": lambda: Xm @ W,
            "gemm out=": lambda: np.matmul(Xm, W, out=out),
        },
        repeats,
    )
    print("\n3. im2col matrix of 64 x 32 -> 32 x 28 x 28 (58 MB) and its GEMM (ms):")
    for k, v in t.items():
        print(f"   {k:12s} {spread(v)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    header("where the NumPy engine's time goes")
    profile_epoch(args.batch)
    sgd_step(args.repeats)
    fresh_vs_reused(args.repeats)


if __name__ == "__main__":
    main()
