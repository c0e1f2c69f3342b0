"""Losses as modules: `forward(pred, target)` returns the scalar loss, `backward()` dL/dpred."""

from __future__ import annotations

import numpy as np

from nnlab.numpy_nn import functional as F


class CrossEntropyLoss:
    """Softmax + cross-entropy on logits, with the combined gradient
    (softmax(z) - onehot(y)) / B."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        self.logits, self.labels = logits, labels
        return F.cross_entropy(logits, labels)

    def backward(self) -> np.ndarray:
        return F.cross_entropy_backward(self.logits, self.labels)

    __call__ = forward


class NLLLoss:
    """Cross-entropy on probabilities (softmax outputs): -mean log p[y]."""

    def forward(self, probs: np.ndarray, labels: np.ndarray) -> float:
        self.probs, self.labels = probs, labels
        return F.nll(probs, labels)

    def backward(self) -> np.ndarray:
        return F.nll_backward(self.probs, self.labels)

    __call__ = forward


class MSELoss:
    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self.pred, self.target = pred, target
        return F.mse(pred, target)

    def backward(self) -> np.ndarray:
        return F.mse_backward(self.pred, self.target)

    __call__ = forward


class SSELoss:
    """Total squared error, summed over the batch (the course's autoencoder loss): its gradient
    grows with the batch size, so the useful learning rates are ~1 / (batch x pixels) smaller
    than for a mean."""

    reduction = "sum"

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self.pred, self.target = pred, target
        return F.sse(pred, target)

    def backward(self) -> np.ndarray:
        return F.sse_backward(self.pred, self.target)

    __call__ = forward


class BCELoss:
    """Binary cross-entropy on probabilities."""

    def forward(self, p: np.ndarray, t: np.ndarray) -> float:
        self.p, self.t = p, t
        return F.binary_cross_entropy(p, t)

    def backward(self) -> np.ndarray:
        return F.binary_cross_entropy_backward(self.p, self.t)

    __call__ = forward
