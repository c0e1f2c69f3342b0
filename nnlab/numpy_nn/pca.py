"""Principal component analysis from scratch: centre, SVD, keep the top k directions.

With the centred data X_c = X - mean (N x d) factored as X_c = U S V^T, the rows of V^T are the
principal directions and S^2 / (N - 1) their variances. The rank-k projection is the d x k matrix
P = V[:, :k] (for 32x32 images, 1024 x k): encode z = (x - mean) P, decode x^ = mean + z P^T.
Among all rank-k linear encoder/decoder pairs (with biases) this one has the smallest squared
reconstruction error on X (Eckart-Young); the error left is the sum of the dropped S_i^2.
Signs: SVD directions are defined up to sign; `svd_flip` fixes them the way scikit-learn does
(the largest-|.| entry of each direction positive) so both give the same components.
"""

from __future__ import annotations

import numpy as np

from nnlab.errors import NNLabError


class PCA:
    def __init__(self, k: int):
        if k < 1:
            raise NNLabError(f"PCA needs k >= 1 components, got {k}")
        self.k = k

    def fit(self, x: np.ndarray) -> PCA:
        """x: (N, d). Keeps mean (d,), components (k, d), explained variance (k,) and its ratio."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise NNLabError(f"PCA takes a matrix (N, d), got shape {x.shape}")
        n, d = x.shape
        if self.k > min(n, d):
            raise NNLabError(f"PCA: k = {self.k} exceeds min(N, d) = {min(n, d)}")
        self.mean = x.mean(axis=0)  # (d,)
        u, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)  # (N, r), (r,), (r, d)
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])  # scikit-learn's flip
        signs[signs == 0] = 1
        vt = vt * signs[:, None]
        variance = s**2 / max(n - 1, 1)
        self.components = vt[: self.k]  # (k, d): orthonormal rows
        self.explained_variance = variance[: self.k]
        self.explained_variance_ratio = variance[: self.k] / variance.sum()
        self.dropped_variance = float(variance[self.k :].sum())  # what rank k cannot explain
        return self

    @property
    def projection(self) -> np.ndarray:
        """The d x k matrix P: encode z = (x - mean) P, decode x^ = mean + z P^T."""
        return self.components.T

    def encode(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.projection  # (N, k)

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self.mean + np.asarray(z, dtype=np.float64) @ self.components  # (N, d)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))

    def parameter_count(self, with_mean: bool = True) -> int:
        d = self.components.shape[1]
        return d * self.k + (d if with_mean else 0)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean.astype(np.float32),
            "components": self.components.astype(np.float32),
        }
