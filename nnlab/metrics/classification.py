"""Confusion matrices and the most confused class pairs (NumPy only: both engines use them)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(pred: np.ndarray, true: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts; rows: true class, columns: predicted."""
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def most_confused(cm: np.ndarray, names: list[str], n: int = 5) -> list[dict[str, Any]]:
    """The n largest off-diagonal cells as {"true", "predicted", "count"}."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:n]
    return [
        {"true": names[i], "predicted": names[j], "count": int(off[i, j])}
        for i, j in zip(*np.unravel_index(order, cm.shape))
        if off[i, j] > 0
    ]
