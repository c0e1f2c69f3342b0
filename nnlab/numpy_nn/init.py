"""Weight initialisation: Xavier/Glorot (Glorot & Bengio 2010), He (He et al. 2015), and zeros --
the last only to *show* why it fails (every hidden unit stays identical: no symmetry breaking)."""

from __future__ import annotations

import numpy as np


def xavier_uniform(
    fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32
) -> np.ndarray:
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)): keeps activation and gradient variance
    ~ constant."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype)


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, 2 / fan_in): compensates ReLU zeroing half of its inputs."""
    return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)


def zeros(fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    return np.zeros((fan_in, fan_out), dtype=dtype)


INITS = {"xavier": xavier_uniform, "he": he_normal, "zero": zeros}
