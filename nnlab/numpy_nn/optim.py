"""Stochastic gradient descent with momentum and weight decay, with PyTorch's semantics:

g = grad + weight_decay * p;   v = momentum * v + g;   p = p - lr * v

Where its time goes: four NumPy passes over every parameter-sized array per step (v *= m,
v += g, lr * v, p -= it), on one core: 0.59 ms per step for the 535,818 parameters of the
784-512-256-10 MLP, a third of that MLP's step at batch 64 (when lr * v was a fresh array each
step it was more: new memory, a page fault per 4 KiB; it now goes into a kept buffer). Without
weight decay the update runs as two BLAS level-1 calls instead, through NumPy's own OpenBLAS
(`nnlab.numpy_nn.blas`): v = 1 g + m v (axpby) and p = -lr v + p (axpy), one pass each, split
over the BLAS's threads where they are long: 0.51 ms instead of 0.67 for that MLP
(bench/numpy_profile.py), and the MLP's epoch against PyTorch's in docs/RESULTS.md. The same
arithmetic in another order of rounding: float32 results agree to rounding, not bit for bit.
"""

from __future__ import annotations

import numpy as np

from nnlab.numpy_nn import blas
from nnlab.numpy_nn.layers import Parameter


def _one_pass(*arrays: np.ndarray) -> bool:
    """Whether the BLAS update applies: one float dtype NumPy's BLAS serves, C-contiguous."""
    return blas.available(arrays[0].dtype) and all(
        a.dtype == arrays[0].dtype and a.flags.c_contiguous for a in arrays
    )


class SGD:
    def __init__(
        self, params: list[Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ):
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.velocity = [np.zeros_like(p.data) for p in params]
        # lr * v goes here rather than into a fresh array each step: a new array of the first
        # layer's size is new memory every step, and filling it costs page faults
        self._scratch = [np.empty_like(p.data) for p in params]

    def step(self) -> None:
        for p, v, scratch in zip(self.params, self.velocity, self._scratch):
            if not self.weight_decay and _one_pass(p.data, p.grad, v):
                self._step_blas(p, v)
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            np.multiply(g, self.lr, out=scratch)
            p.data -= scratch

    def _step_blas(self, p: Parameter, v: np.ndarray) -> None:
        """The same update in one pass per line: v = m v + g (axpby), p = p - lr v (axpy)."""
        if self.momentum:
            blas.axpby(v, 1.0, p.grad, self.momentum)
            blas.axpy(p.data, -self.lr, v)
        else:
            blas.axpy(p.data, -self.lr, p.grad)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self.velocity):
            v[...] = state[f"velocity.{i}"]
