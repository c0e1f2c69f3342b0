"""Rosenblatt's perceptron: y = step(w . x + b), trained by the classic rule

    w <- w + lr (t - y) x,   b <- b + lr (t - y)

which converges in finitely many updates when the classes are linearly separable (Novikoff 1962)
and cycles forever when they are not (XOR)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TRUTH_TABLES = {
    "AND": np.array([0, 0, 0, 1]),
    "OR": np.array([0, 1, 1, 1]),
    "NAND": np.array([1, 1, 1, 0]),
    "NOR": np.array([1, 0, 0, 0]),
    "XOR": np.array([0, 1, 1, 0]),
}
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)


def step(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(np.int64)


@dataclass
class Perceptron:
    w: np.ndarray = field(default_factory=lambda: np.zeros(2))
    b: float = 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        return step(x @ self.w + self.b)

    def fit(
        self, x: np.ndarray, t: np.ndarray, lr: float = 1.0, max_epochs: int = 100
    ) -> tuple[bool, int]:
        """Apply the rule sample by sample (the rule is sequential by definition); return
        (converged, epochs used). Converged = one full epoch without a mistake."""
        for epoch in range(1, max_epochs + 1):
            mistakes = 0
            for xi, ti in zip(x, t):
                err = ti - int(step(np.array(xi @ self.w + self.b)))
                if err:
                    self.w = self.w + lr * err * xi
                    self.b += lr * err
                    mistakes += 1
            if mistakes == 0:
                return True, epoch
        return False, max_epochs
