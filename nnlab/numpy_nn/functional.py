"""Activations and losses as pure functions: each forward with its backward right below it.

Conventions: a batch is the first axis; `*_backward(grad_out, ...)` returns dL/d(input) given
dL/d(output); losses are means over the batch and their backward returns dL/d(prediction).
"""

from __future__ import annotations

import numpy as np

# ---- activations ------------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """sigma(x) = 1 / (1 + e^-x), written with e^-|x| so no exp ever overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sigma'(x) = sigma(x) (1 - sigma(x)), from the forward output y = sigma(x)."""
    return grad_out * y * (1 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x) = 2 sigma(2x) - 1."""
    return np.tanh(x)


def tanh_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """tanh'(x) = 1 - tanh(x)^2, from y = tanh(x)."""
    return grad_out * (1 - y * y)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """relu'(x) = 1 if x > 0 else 0 (the subgradient 0 at x = 0, as PyTorch)."""
    return grad_out * (x > 0)


# ---- softmax ------------------------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = e^{x_i} / sum_j e^{x_j}, computed as softmax(x - max x): the same value
    (shift invariance), and every exponent <= 0, so nothing overflows even for x ~ 1e4."""
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = (x - m) - log sum_j e^{x_j - m}, m = max x (the log-sum-exp trick)."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Jacobian-vector product of softmax: dL/dx = y * (g - sum_j g_j y_j), y = softmax(x)."""
    return y * (grad_out - (grad_out * y).sum(axis=-1, keepdims=True))


# ---- losses -------------------------------------------------------------------------------------


def one_hot(labels: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    out = np.zeros((len(labels), num_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """CE = -1/B sum_b log softmax(z_b)[y_b], from logits (stable: log_softmax)."""
    logp = log_softmax(logits)
    return float(-logp[np.arange(len(labels)), labels].mean())


def cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The combined softmax + CE gradient: dCE/dz = (softmax(z) - onehot(y)) / B."""
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1
    return grad / len(labels)


def nll(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-12) -> float:
    """Cross-entropy on softmax *outputs* p: -1/B sum_b log p_b[y_b] (eps keeps log finite)."""
    return float(-np.log(probs[np.arange(len(labels)), labels] + eps).mean())


def nll_backward(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """dL/dp = -onehot(y) / (p B); chained through softmax_backward it gives softmax - onehot."""
    grad = np.zeros_like(probs)
    idx = np.arange(len(labels))
    grad[idx, labels] = -1.0 / ((probs[idx, labels] + eps) * len(labels))
    return grad


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """MSE = mean over all elements of (pred - target)^2."""
    return float(np.mean((pred - target) ** 2))


def mse_backward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return 2 * (pred - target) / pred.size


def sse(pred: np.ndarray, target: np.ndarray) -> float:
    """Total squared error: the sum over the batch and every element of (pred - target)^2."""
    return float(np.sum((pred - target) ** 2))


def sse_backward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return 2 * (pred - target)


def binary_cross_entropy(p: np.ndarray, t: np.ndarray, eps: float = 1e-12) -> float:
    """BCE = -mean[t log p + (1 - t) log(1 - p)] for probabilities p in (0, 1)."""
    return float(-np.mean(t * np.log(p + eps) + (1 - t) * np.log(1 - p + eps)))


def binary_cross_entropy_backward(p: np.ndarray, t: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """dBCE/dp = (p - t) / (p (1 - p)) / N."""
    return (p - t) / ((p + eps) * (1 - p + eps)) / p.size
