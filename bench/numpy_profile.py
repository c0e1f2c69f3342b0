"""Where the NumPy engine's time goes (the figures behind docs/RESULTS.md's speed sections):

1. cProfile of one MNIST epoch of the 784-512-256-10 MLP at batch 64 (top functions);
2. one SGD-with-momentum step over that MLP's parameters: the engine's one-pass BLAS calls
   (axpby, axpy through NumPy's own OpenBLAS) vs its NumPy fallback (four passes);
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
    """The engine's SGD.step (momentum 0.9, no weight decay) over the MLP's parameters, both ways:
    one-pass BLAS axpby/axpy through NumPy's own OpenBLAS (the engine's path) and NumPy's four
    passes (the path it takes where that BLAS is not found)."""
    import nnlab.numpy_nn.optim as optim

    net = mlp([784, 512, 256, 10], "relu", seed=0)
    params = net.parameters()
    rng = np.random.default_rng(0)
    for q in params:
        q.grad = rng.standard_normal(q.data.shape, dtype=np.float32)
    opt = SGD(params, lr=1e-6, momentum=0.9)  # a tiny rate: the weights barely move
    available = optim.blas.available

    def with_blas():
        optim.blas.available = available
        opt.step()

    def numpy_passes():
        optim.blas.available = lambda dtype: False
        opt.step()

    t = interleaved({"blas": with_blas, "numpy": numpy_passes}, repeats)
    optim.blas.available = available
    print(f"\n2. one SGD momentum step over {sum(q.data.size for q in params):,} parameters (ms):")
    print(f"   BLAS axpby + axpy {spread(t['blas'])}, NumPy operators {spread(t['numpy'])}")


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
