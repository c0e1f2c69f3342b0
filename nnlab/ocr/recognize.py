"""Character recognition: canonical 32x32 crops -> class probabilities -> the character, its
confidence, and the three likeliest characters when the classifier is unsure.

A classifier is any object with `class_names` (K names) and
`probabilities(crops (N, 32, 32) float32, boxes) -> (N, K)` rows summing to 1. The boxes say where
each crop came from on the page; a classifier of images ignores them (a stand-in "oracle" in the
tests reads the truth there, which checks the reader's geometry without a trained model). The two
trained ones wrap a PyTorch model (the CNN of `nnlab ocr train --model cnn`) and a NumPy engine
network (`--model numpy-mlp`); `load_classifier` (tasks/ocr.py) rebuilds either from a run.

Confidence is the softmax probability of the chosen class, p_k = exp(z_k) / sum_j exp(z_j), with
z the logits. It is not calibrated; it ranks characters by how sure the model is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nnlab.errors import NNLabError


class CharClassifier(Protocol):
    class_names: list[str]

    def probabilities(self, crops: np.ndarray, boxes: Sequence[Any] = ()) -> np.ndarray:
        """crops (N, 32, 32) float32, ink = 1 -> (N, K) probabilities."""
        ...


@dataclass
class Guess:
    char: str
    confidence: float  # softmax probability of `char`
    top3: list[tuple[str, float]] = field(default_factory=list)  # only when unsure


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits z (N, K); the row maximum is subtracted first (exp overflows
    beyond ~88 in float32, and the result does not change)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def guesses(
    probs: np.ndarray, class_names: Sequence[str], low_confidence: float = 0.8, k: int = 3
) -> list[Guess]:
    """One Guess per row of probs (N, K): the likeliest class and its probability; rows whose
    confidence is below `low_confidence` also carry the k likeliest (name, probability)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise NNLabError(f"probabilities of shape {probs.shape} for {len(class_names)} class names")
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
    out = []
    for p, top in zip(probs, order):
        best = int(top[0])
        unsure = p[best] < low_confidence
        top3 = [(class_names[j], float(p[j])) for j in top] if unsure else []
        out.append(Guess(class_names[best], float(p[best]), top3))
    return out


def word_context(
    probs: np.ndarray,
    class_names: Sequence[str],
    words: Sequence[Sequence[int]],
    switch: float = 0.05,
) -> np.ndarray:
    """Class probabilities (N, K) revised by the word each character is in: a word is written in
    letters or in digits (kind T, equally likely a priori), and each of its characters is of the
    other kind with probability `switch` (codes such as B12 stay possible). With
    w_T(c) = 1 - switch for characters c of kind T and `switch` otherwise, and p_i the classifier's
    probabilities for character i of the word,

        P(c_i | word, T) = p_i(c_i) w_T(c_i) / Z_i(T),    Z_i(T) = sum_c p_i(c) w_T(c)
        P(T | word) ∝ prod_i Z_i(T)
        P(c_i | word) = sum_T P(T | word) P(c_i | word, T)

    so an O read in a number becomes a 0 and a 5 read in a word an S unless the classifier is
    much surer of it than the word is of its kind. `words`: index lists into the rows of probs
    (every row in exactly one); switch = 0.5 leaves probs unchanged."""
    probs = np.asarray(probs, dtype=np.float64)
    digit = np.array([c.isdigit() for c in class_names])
    out = probs.copy()
    for idx in words:
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            continue
        p = probs[idx]  # (n, K)
        mixed = np.zeros_like(p)
        log_z, cond = [], []
        for kind in (False, True):  # letters, digits
            w = np.where(digit == kind, 1.0 - switch, switch)  # (K,)
            z = (p * w).sum(1, keepdims=True)  # (n, 1)
            log_z.append(float(np.log(np.maximum(z, 1e-300)).sum()))
            cond.append(p * w / np.maximum(z, 1e-300))
        post = np.exp(np.array(log_z) - max(log_z))
        post /= post.sum()
        for weight, c in zip(post, cond):
            mixed += weight * c
        out[idx] = mixed
    return out


class TorchCharClassifier:
    """A PyTorch model (logits (B, K) from (B, 1, 32, 32)) as a CharClassifier."""

    def __init__(self, model, class_names: Sequence[str], batch_size: int = 512):
        self.model, self.class_names, self.batch_size = model.eval(), list(class_names), batch_size

    def probabilities(self, crops: np.ndarray, boxes: Sequence[Any] = ()) -> np.ndarray:
        import torch

        x = np.asarray(crops, dtype=np.float32)[:, None]  # (N, 1, 32, 32)
        device = next(self.model.parameters()).device
        outs = []
        with torch.no_grad():
            for i in range(0, len(x), self.batch_size):
                batch = torch.from_numpy(x[i : i + self.batch_size]).to(device)
                outs.append(self.model(batch).float().cpu().numpy())
        logits = np.concatenate(outs) if outs else np.zeros((0, len(self.class_names)))
        return softmax(logits)


class NumpyCharClassifier:
    """A NumPy engine network (logits (N, K) from flat (N, 1024) images) as a CharClassifier."""

    def __init__(self, net, class_names: Sequence[str], flatten: bool = True):
        self.net, self.class_names, self.flatten = net, list(class_names), flatten

    def probabilities(self, crops: np.ndarray, boxes: Sequence[Any] = ()) -> np.ndarray:
        x = np.asarray(crops, dtype=np.float32)[:, None]  # (N, 1, 32, 32)
        if self.flatten:
            x = x.reshape(len(x), -1)  # (N, 1024)
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)))
        return softmax(self.net(x))
