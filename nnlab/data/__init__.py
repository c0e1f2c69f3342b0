"""Datasets: real loaders for the real formats, returning numpy arrays (and torch tensors on
demand).

Every image-classification dataset comes out the same way, as an `ImageSet`: images (N, C, H, W)
float32 in [0, 1] with 1 = ink, labels (N,) int64, and class names. `load_splits` gives the
train / val / test partition a training run uses; the partition is seeded and saved with the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlab.data.registry import REGISTRY, get_info
from nnlab.data.splits import partition
from nnlab.errors import NNLabError


@dataclass
class ImageSet:
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1], ink bright
    labels: np.ndarray  # (N,) int64
    class_names: list[str]

    def __post_init__(self):
        if self.images.ndim != 4:
            raise NNLabError(f"images must be (N, C, H, W), got shape {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise NNLabError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.class_names)

    def tensors(self):
        """A torch TensorDataset of (image, label) (torch is imported here, not by the module:
        the NumPy engine reads the same sets without it)."""
        import torch

        return torch.utils.data.TensorDataset(
            torch.from_numpy(self.images), torch.from_numpy(self.labels)
        )


def _digits() -> ImageSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    return ImageSet(images, d.target.astype(np.int64), [str(i) for i in range(10)])


def _mnist(split: str) -> ImageSet:
    from nnlab.data.mnist import load_mnist

    images, labels = load_mnist(split)
    return ImageSet(
        (images / 255.0).astype(np.float32)[:, None], labels, [str(i) for i in range(10)]
    )


def _nist(split: str) -> ImageSet:
    from nnlab.data.nist import load_nist

    images, labels, names = load_nist(split)
    ink = np.clip(1.0 - images, 0.0, 1.0).astype(np.float32)[:, None]  # (N, 1, 32, 32), ink = 1
    return ImageSet(ink, labels, names)


def available_splits(name: str) -> list[str]:
    get_info(name, task="classify")
    if name == "digits":
        return ["all"]
    if name == "mnist":
        from nnlab.data.mnist import SPLITS, find_split_files

        return [s for s in SPLITS if find_split_files(s) is not None]
    if name == "nist":
        from nnlab.data.nist import available_splits as nist_splits

        return nist_splits()
    raise NNLabError(f"dataset '{name}' has no image-classification loader")


def load_image_set(name: str, split: str) -> ImageSet:
    """One split of an image-classification dataset as stored (no partitioning)."""
    get_info(name, task="classify")
    if name == "digits":
        if split != "all":
            raise NNLabError("digits has one split, 'all' (load_splits partitions it)")
        return _digits()
    if name == "mnist":
        return _mnist(split)
    if name == "nist":
        return _nist(split)
    raise NNLabError(f"dataset '{name}' has no image-classification loader")


def load_splits(
    name: str, val_fraction: float = 0.1, seed: int = 0, limit: int = 0
) -> dict[str, ImageSet]:
    """Train / val / test sets for a training run.

    An official test split is used as is (MNIST, NIST36); val is carved from train. A dataset with a
    single split (digits; NIST26 with only its valid file) is partitioned 70/10/20 by `seed`.
    `limit` > 0 keeps only the first `limit` training images (quick runs)."""
    if not 0.0 < val_fraction < 0.5:
        raise NNLabError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
    splits = available_splits(name)
    if "train" in splits and ("test" in splits or "valid" in splits):
        train = load_image_set(name, "train")
        test = load_image_set(name, "test" if "test" in splits else "valid")
        tr, va = partition(len(train), (1 - val_fraction, val_fraction), train.labels, seed)
        out = {"train": train.subset(tr), "val": train.subset(va), "test": test}
    elif len(splits) >= 1:
        if name == "mnist":  # it has a test split of its own: say that it is not used
            import warnings

            warnings.warn(
                f"mnist: only the {splits[0]} files were found; the test split is carved from "
                "them (70/10/20), not MNIST's own t10k files",
                stacklevel=2,
            )
        whole = load_image_set(name, splits[0])
        test_fraction = 0.2
        tr, va, te = partition(
            len(whole),
            (1 - test_fraction - val_fraction, val_fraction, test_fraction),
            whole.labels,
            seed,
        )
        out = {"train": whole.subset(tr), "val": whole.subset(va), "test": whole.subset(te)}
    else:
        raise NNLabError(
            f"{name}: no data files found; run `nnlab datasets fetch {name}` or set "
            "NNLAB_DATA to a folder that holds them"
        )
    check_agree(name, out)
    if limit > 0:
        out["train"] = out["train"].subset(np.arange(min(limit, len(out["train"]))))
    return out


def check_agree(name: str, parts: dict[str, ImageSet]) -> None:
    """Splits read from different files must fit one model: the same image size and classes as
    the first, none empty -- said before training, not after it."""
    first, train = next(iter(parts.items()))
    for part, s in parts.items():
        if len(s) == 0:
            raise NNLabError(f"{name}: the {part} split is empty")
        if s.images.shape[1:] != train.images.shape[1:]:
            raise NNLabError(
                f"{name}: {part} images are {'x'.join(map(str, s.images.shape[1:]))} but {first} "
                f"images are {'x'.join(map(str, train.images.shape[1:]))} (channels x H x W)"
            )
        if list(s.class_names) != list(train.class_names):
            raise NNLabError(
                f"{name}: the {part} split has {len(s.class_names)} classes, {first} has "
                f"{len(train.class_names)}"
            )


__all__ = [
    "REGISTRY",
    "ImageSet",
    "available_splits",
    "check_agree",
    "load_image_set",
    "load_splits",
    "partition",
]
