"""Finite-difference gradient checks: central differences (f(x + h) - f(x - h)) / 2h, error O(h^2).
Run them in float64: in float32 the rounding error of f swamps the difference for small h."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnlab.numpy_nn.layers import Module


def numerical_grad(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, perturbing `x` in place (restored afterwards)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-8) -> float:
    """max |a - b| / max(|a| + |b|, floor), elementwise."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor), initial=0.0))


def check_module(module: Module, x: np.ndarray, seed: int = 0, h: float = 1e-6) -> dict[str, float]:
    """Relative error of `module`'s analytic gradients (input and every parameter) against finite
    differences, for the scalar loss L = sum(module(x) * R) with a fixed random R."""
    rng = np.random.default_rng(seed)
    R = rng.standard_normal(module(x).shape)

    def loss() -> float:
        return float(np.sum(module(x) * R))

    module.zero_grad()
    module(x)
    dx = module.backward(R)
    errors = {"input": relative_error(dx, numerical_grad(loss, x, h))}
    analytic = {name: p.grad.copy() for name, p in module.named_parameters()}
    for name, p in module.named_parameters():
        errors[name] = relative_error(analytic[name], numerical_grad(loss, p.data, h))
    return errors
