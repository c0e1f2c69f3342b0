"""How good are generated digits, offline? torchmetrics' FID needs Inception weights that cannot be
downloaded here, so samples are judged in the feature space of nnlab's own classifier: a CNN
trained once on the real training images and kept as a versioned run in the cache. Its
penultimate features (after global pooling, before the last linear layer) give

    own-feature FD   the Frechet distance of Gaussians fitted to sample and reference features
    own-feature KD   the kernel (KID-style, unbiased, cubic polynomial kernel) distance

-- NOT Inception FID: the numbers are comparable only with each other (same judge, same counts).
Every evaluation reports beside the samples the floor (real test images vs the same reference
training images) and a weak baseline (samples of a Gaussian fitted in the 50-dim PCA space of
the training images), and the judge's predicted-class histogram and mean confidence."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn

from nnlab.data import load_splits
from nnlab.data.registry import cache_dir
from nnlab.errors import NNLabError
from nnlab.metrics.frechet import frechet_distance, kernel_distance
from nnlab.run import RunDir
from nnlab.tasks.base import load_model, run_task
from nnlab.tasks.classify import ClassifyConfig, ClassifyTask
from nnlab.train import TrainConfig

JUDGE_VERSION = 1  # bump when the recipe below changes: a new judge, new numbers
JUDGE_EPOCHS = {"mnist": 4, "digits": 40}


def max_evaluation_samples(data: str) -> int:
    """The most samples an evaluation can score: as many training and test images are needed."""
    splits = load_splits(data, 0.1, 0)
    return min(len(splits["train"]), len(splits["test"]))


def judge(data: str, device: str = "auto", console=None) -> tuple[nn.Module, RunDir]:
    """The judge classifier of `data` (CNN, channels 32-64, seed 0), trained on first use into
    cache/judges/<data>-cnn-v<VERSION> (trained in a temporary folder, renamed when done)."""
    root = cache_dir() / "judges"
    path = root / f"{data}-cnn-v{JUDGE_VERSION}"
    if not (path / "checkpoints" / "best.safetensors").exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{path.name}-", dir=root)
        cfg = ClassifyConfig(
            data=data,
            model="cnn",
            model_args={"channels": [32, 64]},
            train=TrainConfig(
                epochs=JUDGE_EPOCHS[data],
                batch_size=128,
                lr=3e-3,
                warmup_epochs=0.5,
                seed=0,
                device=device,
                monitor="val/acc",
                mode="max",
            ),
        )
        if console is not None:
            console.print(f"training the judge classifier once: {path}")
        try:
            run_task(ClassifyTask(cfg, console), RunDir(tmp))
        except BaseException:  # an interrupted judge leaves no half-made folder behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(path, ignore_errors=True)
        shutil.move(tmp, path)
    run = RunDir(path)
    try:
        return load_model(run, "best", device), run
    except NNLabError as e:
        raise NNLabError(
            f"{e}; the judge is a cache: remove {path} and it is trained again"
        ) from None


@torch.no_grad()
def judge_outputs(model: nn.Module, images: np.ndarray, batch: int = 1000):
    """(penultimate features (N, F), class probabilities (N, K)) of images (N, C, H, W) in
    [0, 1]."""
    device = next(model.parameters()).device
    feats, probs = [], []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).float().to(device)
        f = model.head[:-1](model.features(x))  # pooled features, dropout off in eval: (B, F)
        feats.append(f.cpu().numpy())
        probs.append(torch.softmax(model.head[-1](f), 1).cpu().numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(probs)


def pca_gaussian(train: np.ndarray, n: int, components: int = 50, seed: int = 0) -> np.ndarray:
    """n samples of the weak baseline: a Gaussian fitted in the PCA space of the training images,
    mapped back and clipped to [0, 1]."""
    flat = train.reshape(len(train), -1)
    pca = PCA(components, random_state=seed).fit(flat)
    z = np.random.default_rng(seed).normal(size=(n, components)) * np.sqrt(pca.explained_variance_)
    return np.clip(pca.inverse_transform(z), 0, 1).reshape(n, *train.shape[1:]).astype(np.float32)


def score(
    model: nn.Module, images: np.ndarray, reference: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """Own-feature FD and KD of `images` against the reference features, the predicted classes'
    shares and the mean confidence."""
    feats, probs = judge_outputs(model, images)
    kd, kd_sd = kernel_distance(
        feats, reference, subsets=50, subset_size=min(1000, len(feats)), seed=seed
    )
    share = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
    return {
        "fd": frechet_distance(feats, reference),
        "kd": kd,
        # 50 subsets of all n samples are one subset 50 times: no spread to report then
        "kd_sd": kd_sd if len(feats) > 1000 else None,
        "confidence": float(probs.max(1).mean()),
        "class_share_min": float(share.min()),
        "class_share_max": float(share.max()),
        "class_share": share.round(4).tolist(),
    }


def evaluate(
    samples: np.ndarray,
    data: str,
    device: str = "auto",
    baselines: bool = True,
    console=None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of scores, all against the same n training images (n = len(samples)): the floor (n
    test images), the PCA-Gaussian baseline (n draws), and the samples."""
    model, run = judge(data, device, console)
    n = len(samples)
    splits = load_splits(data, 0.1, 0)
    train, test = splits["train"].images, splits["test"].images
    if n > min(len(train), len(test)):
        raise NNLabError(f"{n} samples: at most {min(len(train), len(test))} for {data}")
    rng = np.random.default_rng(seed)
    reference = judge_outputs(model, train[rng.permutation(len(train))[:n]])[0]
    rows = []
    if baselines:
        floor = test[rng.permutation(len(test))[:n]]
        rows.append({"images": "real test images (floor)", **score(model, floor, reference)})
        rows.append(
            {
                "images": "PCA-50 Gaussian (baseline)",
                **score(model, pca_gaussian(train, n, seed=seed), reference),
            }
        )
    rows.append({"images": "samples", **score(model, samples, reference)})
    judge_acc = run.summary().get("test/acc")
    for r in rows:
        r.update({"n": n, "judge": run.path.name, "judge test acc": judge_acc})
    return rows
