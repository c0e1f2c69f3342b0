"""Stochastic gradient descent with momentum and weight decay, with PyTorch's semantics:

g = grad + weight_decay * p;   v = momentum * v + g;   p = p - lr * v

Where its time goes: four passes over every parameter-sized array per step (v *= m, v += g,
lr * v, p -= it), one core: 0.59 ms per step for the 535,818 parameters of the 784-512-256-10
MLP, a third of that MLP's step at batch 64, when lr * v was a fresh array each step (new memory:
a page fault per 4 KiB); it now goes into a buffer kept from step to step, which with the
in-place weight gradients (`Parameter.add_matmul`) took that MLP from 1.20x to 1.06x PyTorch's
epoch at batch 64 (docs/RESULTS.md). The same update as BLAS level-1 calls (scal v = m v, then
axpy y = y + a x twice, one pass each; through SciPy) took 0.30 ms (bench/numpy_profile.py), but
NumPy does not expose them, and the engine imports NumPy only.
"""

from __future__ import annotations

import numpy as np

from nnlab.numpy_nn.layers import Parameter


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
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            np.multiply(g, self.lr, out=scratch)
            p.data -= scratch

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self.velocity):
            v[...] = state[f"velocity.{i}"]
