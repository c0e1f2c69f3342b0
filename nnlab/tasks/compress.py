"""Compression: PCA, the NumPy MLP autoencoder, a convolutional autoencoder (and its denoising
variant) and JPEG, compared on held-out images by PSNR, SSIM, parameters and bytes.

Every learnt method stores an image as `code` numbers in float16 (2 x code bytes); its scores are
those of the image decoded from the float16 code. PSNR and SSIM come from scikit-image (data range
1, per image, then averaged); on MNIST the models see 28x28 padded to 32x32 with zeros and every
score (and JPEG) uses the 28x28 image itself.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from rich.console import Console

from nnlab.config import from_dict, to_dict
from nnlab.data import ImageSet, available_splits, load_image_set
from nnlab.data.augment import random_affine_torch
from nnlab.data.splits import partition
from nnlab.errors import NNLabError
from nnlab.models import count_parameters, model_config
from nnlab.numpy_nn import Linear, Sequential, Sigmoid, mlp
from nnlab.numpy_nn.pca import PCA
from nnlab.run import RunDir, run_children_resumable
from nnlab.tasks.base import Task, load_model, run_task
from nnlab.train import StepOutput, TrainConfig
from nnlab.train.core import TrainingDiverged
from nnlab.train.numpy_loop import NumpyAutoencoderTrainer
from nnlab.viz import curves_figure, image_grid_figure

METHODS = ("pca", "mlp", "conv", "denoise", "jpeg")
LABELS = {
    "pca": "PCA",
    "mlp": "MLP autoencoder (NumPy)",
    "conv": "conv autoencoder",
    "denoise": "denoising conv autoencoder",
    "jpeg": "JPEG",
}


# ---- data ----------------------------------------------------------------------------------------
@dataclass
class CompressionData:
    sets: dict[str, ImageSet]  # train / val / test: (N, 1, S, S) float32 in [0, 1], ink = 1
    pad: int  # zero pixels added on each side for the models (MNIST 28 -> 32); scores crop them
    source: str  # which files and split, for the report

    def crop(self, images: np.ndarray) -> np.ndarray:
        """(N, 1, S, S) or (N, S*S) -> (N, H, W): the images as stored, without the padding."""
        side = self.sets["train"].images.shape[-1]
        x = images.reshape(len(images), side, side)
        p = self.pad
        return x[:, p : side - p, p : side - p] if p else x


def compression_data(name: str, seed: int = 0, limit: int = 0) -> CompressionData:
    """Train / val / test images for the comparison. NIST: train on nist36_train and score on the
    valid split when those files exist; with only one file (the NIST26 letters here) a seeded
    80/20 split by image. MNIST: its train / test files, padded to 32x32. digits: 80/20 (tests).
    val is 10% of the training part (the autoencoders' checkpoint choice); every method is fitted
    on the same training images."""
    pad = 0
    splits = available_splits(name)
    if not splits:
        raise NNLabError(
            f"{name}: no data files found; run `nnlab datasets fetch {name}` or set NNLAB_DATA "
            "to a folder that holds them"
        )
    if "train" in splits and ({"valid", "test"} & set(splits)):
        held = "valid" if "valid" in splits else "test"
        rest, test = load_image_set(name, "train"), load_image_set(name, held)
        source = f"{name}: train split for fitting, {held} split held out"
    else:
        whole = load_image_set(name, splits[0])
        tr, te = partition(len(whole), (0.8, 0.2), whole.labels, seed)
        rest, test = whole.subset(tr), whole.subset(te)
        source = (
            f"{name}: the {len(whole)} images of '{splits[0]}' split 80/20 by image (seed {seed})"
        )
    if name == "mnist":
        pad = 2
        rest, test = (
            ImageSet(np.pad(s.images, ((0, 0), (0, 0), (2, 2), (2, 2))), s.labels, s.class_names)
            for s in (rest, test)
        )
        source += "; 28x28 padded to 32x32 for the models, scored on the 28x28 images"
    tr, va = partition(len(rest), (0.9, 0.1), rest.labels, seed)
    train, val = rest.subset(tr), rest.subset(va)
    if limit > 0:
        train = train.subset(np.arange(min(limit, len(train))))
    return CompressionData({"train": train, "val": val, "test": test}, pad, source)


# ---- the convolutional autoencoder as a task of the shared loop ---------------------------------
@dataclass
class AutoencodeConfig:
    data: str = "nist"  # nist, mnist or digits
    model: str = "conv_ae"  # conv_ae
    model_args: dict[str, Any] = field(default_factory=dict)  # the model config's fields
    code: int = 32  # numbers per encoded image
    noise: float = 0.0  # > 0: a denoising autoencoder, trained on x + noise * N(0, 1), target x
    augment: bool = False  # random affine transform of every training batch (input and target)
    limit: int = 0  # > 0: only the first N training images
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=32, lr=2e-3, monitor="val/loss", mode="min"
        )
    )

    def check(self) -> None:
        if self.code < 1:
            raise NNLabError(f"--code must be >= 1, got {self.code}")
        if self.noise < 0:
            raise NNLabError(f"--noise must be >= 0, got {self.noise}")
        model_config(self.model, **self.model_args)


class AutoencodeTask(Task):
    """Reconstruct the (clean) image through the bottleneck; the loss is the mean squared error
    (PSNR's), logged beside torchmetrics' PSNR."""

    name, config_class, models, noun = "autoencode", AutoencodeConfig, ("conv_ae",), "autoencoder"
    summary_keys = ("model", "parameters", "epochs", "test/psnr", "train_time_s")

    def __init__(self, cfg: AutoencodeConfig, console=None, data: CompressionData | None = None):
        super().__init__(cfg, console)
        self.data = data

    @property
    def sets(self) -> dict[str, ImageSet]:
        return self.data.sets

    def datasets(self, run, resume):
        if self.data is None:
            self.data = compression_data(self.cfg.data, self.cfg.train.seed, self.cfg.limit)
        return {k: v.tensors() for k, v in self.data.sets.items()}

    def model_config(self, train):
        images = self.data.sets["train"].images
        args = {"in_channels": images.shape[1], "size": images.shape[-1], "code": self.cfg.code}
        if images.shape[-1] < 16:  # 8x8 digits: two halvings
            args["widths"] = (16, 32)
        return model_config("conv_ae", **{**args, **self.cfg.model_args})

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cfg.noise * torch.randn_like(x) if self.cfg.noise > 0 else x

    def loss(self, model, batch) -> StepOutput:
        x, _ = batch  # (B, C, S, S) in [0, 1]; the labels are not needed
        if self.cfg.augment and model.training:
            x = random_affine_torch(x).clamp(0, 1)
        x_hat = model(self.noisy(x))
        return StepOutput({"loss": F.mse_loss(x_hat, x)}, x_hat, x)

    def metrics(self):
        psnr = torchmetrics.image.PeakSignalNoiseRatio(
            data_range=1.0, reduction=None, dim=(1, 2, 3)
        )
        return torchmetrics.MetricCollection({"psnr": _MeanOf(psnr)})

    def title(self) -> str:
        kind = f"denoising (sigma {self.cfg.noise:g}) " if self.cfg.noise else ""
        return f"{kind}conv autoencoder, code {self.cfg.code}, on {self.cfg.data}"


class _MeanOf(torchmetrics.Metric):
    """The mean over images of a per-image metric (PSNR per image, then averaged -- not the PSNR
    of the pooled error, which torchmetrics gives by default)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, per_image: torchmetrics.Metric):
        super().__init__()
        self.per_image = per_image
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        values = self.per_image(pred.float().clamp(0, 1), target.float())
        self.per_image.reset()
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


# ---- the comparison ------------------------------------------------------------------------------
@dataclass
class CompressConfig:
    data: str = "nist"  # nist (NIST36, or the 1300 NIST26 letters split 80/20), mnist or digits
    code: int = 32  # numbers per encoded image: PCA's rank, the autoencoders' bottleneck
    sweep: tuple[int, ...] = ()  # more code sizes for the PSNR-against-bytes plot, e.g. 8,16,64
    methods: tuple[str, ...] = METHODS  # which of pca, mlp, conv, denoise, jpeg to run
    mlp_epochs: int = 600  # epochs of the NumPy MLP autoencoder
    mlp_lr: float = 1e-4  # its SGD learning rate (momentum 0.9) on the *summed* squared error
    mlp_schedule: str = "cosine"  # cosine | constant learning rate over its epochs
    mlp_mean_bias: bool = True  # its output bias starts at logit(mean training image)
    mlp_batch_size: int = 36  # its images per SGD step
    mlp_augment: bool = True  # random affine transform of its training images every epoch
    conv_epochs: int = 40  # epochs of the conv autoencoders
    conv_lr: float = 2e-3  # their AdamW learning rate (cosine schedule)
    conv_batch_size: int = 32  # their images per step
    conv_augment: bool = True  # random affine transform of their training batches
    noise: float = 0.3  # sigma of the Gaussian noise the denoising autoencoder is trained on
    limit: int = 0  # > 0: only the first N training images (quick runs)
    seed: int = 0  # seeds the split, the weights and the data order
    device: str = "auto"  # the conv autoencoders' device: auto, cpu, cuda, cuda:1, mps

    def check(self) -> None:
        if self.data not in ("nist", "mnist", "digits"):
            raise NNLabError(f"--data must be nist, mnist or digits, got '{self.data}'")
        unknown = set(self.methods) - set(METHODS)
        if unknown or not self.methods:
            raise NNLabError(f"--methods takes some of {', '.join(METHODS)}; got {self.methods}")
        for name in ("code", "mlp_epochs", "mlp_batch_size", "conv_epochs", "conv_batch_size"):
            if getattr(self, name) < 1:
                raise NNLabError(f"--{name.replace('_', '-')} must be >= 1")
        if any(c < 1 for c in self.sweep):
            raise NNLabError(f"--sweep code sizes must be >= 1, got {self.sweep}")
        if self.mlp_schedule not in ("cosine", "constant"):
            raise NNLabError(
                f"--mlp-schedule must be cosine or constant, got '{self.mlp_schedule}'"
            )
        if not (self.mlp_lr > 0 and self.conv_lr > 0) or self.noise < 0:
            raise NNLabError("learning rates must be > 0 and --noise >= 0")
        if not available_splits(self.data):
            raise NNLabError(
                f"{self.data}: no data files found; run `nnlab datasets fetch {self.data}` or "
                "set NNLAB_DATA to a folder that holds them"
            )

    @property
    def codes(self) -> list[int]:
        return sorted({self.code, *self.sweep})


@dataclass
class MLPAEConfig:
    """What the NumPy trainer reads (the fields of NumpyClassifyConfig it uses)."""

    sizes: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    seed: int
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: bool = False
    blur: float = 0.0
    arch: str = "mlp"
    monitor: str = "val/loss"
    mode: str = "min"


def mlp_sizes(pixels: int, code: int) -> tuple[int, ...]:
    """The course's 1024 -> 32 -> 32 -> 32 -> 1024 for code 32: the outer hidden layers keep
    32 units (or the code's width, if larger) around the code."""
    h = max(32, code)
    return (pixels, h, code, h, pixels)


def build_mlp_autoencoder(
    sizes: tuple[int, ...], seed: int = 0, mean: np.ndarray | None = None
) -> Sequential:
    """ReLU hidden layers (Xavier init, as in the course), sigmoid output.

    With `mean` (the mean training image), the output layer's bias starts at logit(mean), so the
    untrained network outputs the mean image -- PCA's reconstruction from a zero code -- instead of
    0.5 everywhere (the NIST letters' held-out PSNR with and without it: docs/RESULTS.md)."""
    net = mlp(list(sizes), "relu", init="xavier", seed=seed)
    if mean is not None:
        m = np.clip(mean.reshape(-1), 0.01, 0.99)
        net.layers[-1].b.data[...] = np.log(m / (1 - m))
    return Sequential(*net.layers, Sigmoid())


def mlp_parameter_formula(sizes: tuple[int, ...]) -> str:
    """'1024*32 + 32 + 32*32 + 32 + ... = 68,704': weights and biases of every layer."""
    terms = [f"{a}*{b} + {b}" for a, b in zip(sizes[:-1], sizes[1:])]
    total = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return f"{' + '.join(terms)} = {total:,}"


def mlp_halves(net: Sequential) -> tuple[Sequential, Sequential]:
    """(encoder, decoder) of the MLP autoencoder: the code is the output of the second ReLU."""
    linears = [i for i, m in enumerate(net.layers) if isinstance(m, Linear)]
    cut = linears[2]  # Linear, ReLU, Linear, ReLU | Linear, ReLU, Linear, Sigmoid
    return Sequential(*net.layers[:cut]), Sequential(*net.layers[cut:])


def train_mlp_autoencoder(
    data: CompressionData, code: int, cfg: CompressConfig, run: RunDir, console=None, lr=None
) -> dict[str, Any]:
    pixels = int(np.prod(data.sets["train"].images.shape[1:]))
    mcfg = MLPAEConfig(
        mlp_sizes(pixels, code),
        cfg.mlp_epochs,
        cfg.mlp_batch_size,
        lr or cfg.mlp_lr,
        cfg.seed,
        schedule=cfg.mlp_schedule,
        augment=cfg.mlp_augment,
    )
    train = data.sets["train"].images
    mean = train.reshape(len(train), -1).mean(axis=0) if cfg.mlp_mean_bias else None
    net = build_mlp_autoencoder(mcfg.sizes, cfg.seed, mean)
    meta = {"name": "numpy-mlp-autoencoder", "config": to_dict(mcfg)}
    trainer = NumpyAutoencoderTrainer(net, mcfg, 0, run, console, model_meta=meta)
    run.save_config({"task": "numpy-autoencoder", **to_dict(mcfg)})
    trainer.fit(data.sets["train"], data.sets["val"])
    trainer.load(run.checkpoint_dir / "best.safetensors")
    summary = {
        "sizes": list(mcfg.sizes),
        "parameters": int(sum(p.data.size for p in net.parameters())),
        "parameter_formula": mlp_parameter_formula(mcfg.sizes),
        "epochs": len(trainer.history),
        "best_epoch": trainer.best_epoch,
        "lr": mcfg.lr,
        **{f"test/{k}": v for k, v in trainer.evaluate(data.sets["test"]).items()},
        "train_time_s": sum(r["time/epoch_s"] for r in trainer.history),
    }
    run.save_summary(summary)
    sizes = "-".join(map(str, mcfg.sizes))
    run.save_figure(
        "curves", curves_figure(trainer.history, f"NumPy MLP autoencoder {sizes}, lr {mcfg.lr:g}")
    )
    return summary


def load_mlp_autoencoder(run: RunDir) -> Sequential:
    from nnlab.train.core import prefixed, read_checkpoint

    tensors, meta = read_checkpoint(run.checkpoint_dir / "best.safetensors", "np")
    net = build_mlp_autoencoder(tuple(meta["model"]["config"]["sizes"]))
    net.load_state_dict(prefixed(tensors, "model."))
    return net


def train_conv_autoencoder(
    data: CompressionData, code: int, noise: float, cfg: CompressConfig, run: RunDir, console=None
) -> dict[str, Any]:
    acfg = AutoencodeConfig(
        data=cfg.data,
        code=code,
        noise=noise,
        augment=cfg.conv_augment,
        limit=cfg.limit,
        train=TrainConfig(
            epochs=cfg.conv_epochs,
            batch_size=cfg.conv_batch_size,
            lr=cfg.conv_lr,
            warmup_epochs=min(1.0, cfg.conv_epochs / 10),
            seed=cfg.seed,
            device=cfg.device,
            monitor="val/loss",
            mode="min",
        ),
    )
    return run_task(AutoencodeTask(acfg, console, data), run)


# ---- encoders as functions: images (N, 1, S, S) -> reconstructions from float16 codes ---------
def pca_codec(pca: PCA):
    def codec(images: np.ndarray) -> np.ndarray:
        z = pca.encode(images.reshape(len(images), -1)).astype(np.float16)
        return np.clip(pca.decode(z.astype(np.float64)), 0, 1)

    return codec


def mlp_codec(net: Sequential):
    encoder, decoder = mlp_halves(net)

    def codec(images: np.ndarray) -> np.ndarray:
        z = encoder(images.reshape(len(images), -1).astype(np.float32))
        if not np.all(np.abs(z) <= np.finfo(np.float16).max):
            raise NNLabError(
                f"the MLP autoencoder's codes reach {np.abs(z).max():.3g}, past float16's 65504: "
                "it diverged; lower --mlp-lr"
            )
        return decoder(z.astype(np.float16).astype(np.float32))

    return codec


def conv_codec(model: torch.nn.Module, noise: float = 0.0, seed: int = 0, batch: int = 500):
    """The conv autoencoder through float16 codes; `noise` > 0 feeds it noisy images (the
    denoising score), with a fixed seed."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def codec(images: np.ndarray) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        out = []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).float()
            if noise > 0:
                x = x + noise * torch.randn(x.shape, generator=g)
            z = model.encode(x.to(device)).half().float()
            out.append(model.decode(z).cpu().numpy())
        return np.concatenate(out)

    return codec


# ---- JPEG ----------------------------------------------------------------------------------------
def jpeg_encode(image: np.ndarray, quality: int) -> bytes:
    """A 2-D image in [0, 1] as a baseline grayscale JPEG (Pillow, optimised Huffman tables)."""
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def jpeg_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32) / 255.0


def jpeg_header_bytes(data: bytes) -> int:
    """Bytes that are not entropy-coded image data: markers, JFIF header, quantisation and
    Huffman tables, the scan header and the end marker."""
    i = 2  # after SOI
    while i < len(data):
        if data[i] != 0xFF:
            raise NNLabError("not a JPEG stream")
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data follows up to the EOI marker
            start = i + 2 + length
            end = data.rindex(b"\xff\xd9")
            return len(data) - (end - start)
        i += 2 + length
    raise NNLabError("JPEG stream without a scan")


def jpeg_at(images: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reconstructions, file sizes, header sizes) of (N, H, W) images at one quality."""
    streams = [jpeg_encode(im, quality) for im in images]
    recon = np.stack([jpeg_decode(s) for s in streams])
    sizes = np.array([len(s) for s in streams])
    headers = np.array([jpeg_header_bytes(s) for s in streams])
    return recon, sizes, headers


def jpeg_quality_for(images: np.ndarray, target_bytes: float, probe: int = 200) -> int:
    """The quality (1..95) whose mean file size on (up to `probe` of) the images is closest to
    `target_bytes`: every 5th quality first, then each one around the best of those."""
    sample = images[:probe]
    sizes: dict[int, float] = {}

    def size(q: int) -> float:
        if q not in sizes:
            sizes[q] = float(np.mean([len(jpeg_encode(im, q)) for im in sample]))
        return sizes[q]

    def best(qs) -> int:
        return min(qs, key=lambda q: (abs(size(q) - target_bytes), q))

    coarse = best(range(1, 96, 5))
    return best(range(max(1, coarse - 4), min(95, coarse + 4) + 1))


# ---- scores --------------------------------------------------------------------------------------
def image_scores(recon: np.ndarray, clean: np.ndarray) -> dict[str, np.ndarray]:
    """PSNR and SSIM per image (skimage, data range 1) of (N, H, W) arrays."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    recon = np.clip(recon, 0, 1).astype(np.float64)
    clean = clean.astype(np.float64)
    win = 7 if min(clean.shape[1:]) >= 7 else 3  # skimage's default window, or the smallest
    psnr = [
        peak_signal_noise_ratio(c, r, data_range=1.0) if np.any(c != r) else np.inf
        for c, r in zip(clean, recon)
    ]
    ssim = [structural_similarity(c, r, data_range=1.0, win_size=win) for c, r in zip(clean, recon)]
    return {"psnr": np.array(psnr), "ssim": np.array(ssim)}


def serialized_bytes(tensors: dict[str, np.ndarray]) -> int:
    """Bytes of the model stored as float32 safetensors (header included)."""
    from safetensors.numpy import save

    return len(save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}))


def row(method: str, code: int, recon: np.ndarray, clean: np.ndarray, **extra) -> dict[str, Any]:
    s = image_scores(recon, clean)
    return {
        "method": method,
        "code": code,
        "psnr": float(s["psnr"].mean()),
        "psnr_sd": float(s["psnr"].std()),
        "ssim": float(s["ssim"].mean()),
        **extra,
    }


def pick_examples(labels: np.ndarray, classes: int = 5, per_class: int = 2) -> np.ndarray:
    """Indices of the first `per_class` test images of the first `classes` classes present."""
    out = []
    for c in np.unique(labels)[:classes]:
        out += list(np.flatnonzero(labels == c)[:per_class])
    return np.array(out)


def run_compress(cfg: CompressConfig, run: RunDir, console=None, resume: bool = False):
    """PCA, the MLP autoencoder, the conv autoencoder and its denoising variant at every code size
    (child runs mlp-c<k>, conv-c<k>, denoise-c<k>; a finished child is reused on --resume), JPEG;
    the table at `cfg.code`, figures, summary.json."""
    t0 = time.perf_counter()
    data = compression_data(cfg.data, cfg.seed, cfg.limit)
    if not resume:
        run.save_config({"task": "compress", **to_dict(cfg)})
    train, test = data.sets["train"], data.sets["test"]
    clean = data.crop(test.images)  # (N, H, W): what every method is scored against
    pixels = int(np.prod(train.images.shape[1:]))
    say = console.print if console is not None else (lambda *a, **k: None)
    say(f"{data.source}; {len(train)} train / {len(data.sets['val'])} val / {len(test)} test")
    rows, recons, extras = [], {"original": clean}, {}
    for code in cfg.codes:
        main = code == cfg.code

        def add(method: str, recon: np.ndarray, code=code, main=main, **extra) -> None:
            """One table row (a learnt code: 2 x code bytes per image); keep the main size's
            reconstructions for the figure."""
            extra = {"bytes_per_image": 2 * code, "parameter_formula": "", **extra}
            rows.append(row(method, code, recon, clean, **extra))
            if main:
                recons[method] = recon

        if "pca" in cfg.methods:
            p0 = time.perf_counter()
            pca = PCA(code).fit(train.images.reshape(len(train), -1))
            fit_s = time.perf_counter() - p0
            add(
                "pca",
                data.crop(pca_codec(pca)(test.images)),
                parameters=pca.parameter_count(),
                parameter_formula=f"{pixels}*{code} (+ {pixels} mean) = "
                f"{pixels * code:,} (+ {pixels:,})",
                model_bytes=serialized_bytes(pca.state_dict()),
                train_s=fit_s,
            )
            if main:
                extras["pca"] = pca
        jobs = {}
        if "mlp" in cfg.methods:
            jobs[f"mlp-c{code}"] = lambda child, c=code: train_mlp_autoencoder(
                data, c, cfg, child, console
            )
        for method, noise in (("conv", 0.0), ("denoise", cfg.noise)):
            if method in cfg.methods:
                jobs[f"{method}-c{code}"] = lambda child, c=code, n=noise: train_conv_autoencoder(
                    data, c, n, cfg, child, console
                )
        for name, (child, summary) in run_children_resumable(
            run, jobs, console, resume, tolerate=(TrainingDiverged,)
        ).items():
            method = name.rsplit("-", 1)[0]
            if method == "mlp":
                net = load_mlp_autoencoder(child)
                add(
                    "mlp",
                    data.crop(mlp_codec(net)(test.images)),
                    parameters=summary["parameters"],
                    parameter_formula=summary["parameter_formula"],
                    model_bytes=serialized_bytes(net.state_dict()),
                    train_s=summary["train_time_s"],
                )
                if main:
                    extras["mlp"] = net
                continue
            model = load_model(child, device=cfg.device)
            extra = {}
            if cfg.noise > 0:
                noisy = data.crop(conv_codec(model, cfg.noise, cfg.seed)(test.images))
                extra["psnr_from_noisy"] = float(image_scores(noisy, clean)["psnr"].mean())
            state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
            state = {k: v for k, v in state.items() if v.dtype != np.int64}  # BN counters
            add(
                method,
                data.crop(conv_codec(model)(test.images)),
                parameters=count_parameters(model),
                model_bytes=serialized_bytes(state),
                train_s=summary["train_time_s"],
                **extra,
            )
        if "jpeg" in cfg.methods:
            quality = jpeg_quality_for(clean, 2 * code)
            recon, sizes, headers = jpeg_at(clean, quality)
            add(
                "jpeg",
                recon,
                quality=quality,
                parameters=0,
                model_bytes=0,
                bytes_per_image=float(sizes.mean()),
                header_bytes=float(headers.mean()),
                train_s=0.0,
            )
    jpeg_curve = []
    if "jpeg" in cfg.methods:
        for q in (1, 5, 10, 20, 30, 50, 75, 90):
            recon, sizes, headers = jpeg_at(clean, q)
            jpeg_curve.append(
                row("jpeg", 0, recon, clean, quality=q, bytes_per_image=float(sizes.mean()))
            )
    summary = {
        "task": "compress",
        "data": cfg.data,
        "source": data.source,
        "code": cfg.code,
        "test_images": len(test),
        "rows": rows,
        "jpeg_curve": jpeg_curve,
        "wall_s": time.perf_counter() - t0,
    }
    run.save_summary(summary)
    save_figures(run, cfg, data, test, recons, extras, rows, jpeg_curve)
    return summary


# ---- figures -------------------------------------------------------------------------------------
def save_figures(run, cfg, data, test, recons, extras, rows, jpeg_curve) -> None:
    from nnlab.viz.compress import psnr_bytes_figure, reconstructions_figure

    idx = pick_examples(test.labels)
    names = [test.class_names[c] for c in test.labels[idx]]
    run.save_figure(
        "reconstructions",
        reconstructions_figure(
            {("original" if k == "original" else LABELS[k]): v[idx] for k, v in recons.items()},
            names,
            f"held-out {cfg.data} images, code {cfg.code} ({2 * cfg.code} bytes as float16)",
        ),
    )
    run.save_figure(
        "psnr_vs_bytes",
        psnr_bytes_figure(rows, jpeg_curve, LABELS, f"{cfg.data}: PSNR against bytes per image"),
    )
    side = test.images.shape[-1]
    if "pca" in extras:
        basis = extras["pca"].components.reshape(-1, side, side)
        run.save_figure(
            "pca_basis",
            image_grid_figure(
                basis / np.abs(basis).max(axis=(1, 2), keepdims=True),
                cols=8,
                title=f"the {len(basis)} PCA basis images (each scaled to its max |value|; "
                "white = 0)",
                cmap="RdBu_r",
                vlim=(-1.0, 1.0),
            ),
        )
    if "mlp" in extras:
        encoder, decoder = mlp_halves(extras["mlp"])
        codes = encoder(data.sets["train"].images.reshape(len(data.sets["train"]), -1))
        # a typical large value of each unit: its 95th percentile (its maximum for a unit that is
        # active on fewer than 5% of the images; 1 for a dead one, zero on every image)
        top, p95 = codes.max(axis=0), np.percentile(codes, 95, axis=0)
        scale = np.where(p95 > 0, p95, np.where(top > 0, top, 1.0))
        images = decoder(np.diag(scale).astype(np.float32)).reshape(-1, side, side)
        titles = [f"unit {i}" + ("" if top[i] > 0 else " (dead)") for i in range(len(scale))]
        run.save_figure(
            "mlp_decoder_units",
            image_grid_figure(
                images,
                titles,
                cols=8,
                title="MLP decoder of the unit codes a * e_i "
                "(a = unit i's 95th percentile on the training images)",
            ),
        )


# ---- the runner for the CLI ----------------------------------------------------------------------
class Compress:
    """`nnlab compress` for the shared launcher."""

    name, config_class, distributed = "compress", CompressConfig, False
    verb = ""

    def __init__(self, cfg: CompressConfig, console: Console | None = None):
        self.cfg, self.console = cfg, console

    def check(self, resume: bool = False) -> None:
        self.cfg.check()

    def run_name(self) -> str:
        return f"compress-{self.cfg.data}-c{self.cfg.code}"

    @classmethod
    def config_from_run(cls, run: RunDir) -> CompressConfig:
        raw = run.config()
        if raw.get("task") != "compress":
            raise NNLabError(f"{run.path}: not a compression run (task {raw.get('task')!r})")
        return from_dict(CompressConfig, {k: v for k, v in raw.items() if k != "task"})

    def execute(self, run: RunDir, resume: bool = False) -> dict[str, Any]:
        return run_compress(self.cfg, run, self.console, resume)


def table_rows(summary: dict[str, Any], code: int | None = None) -> list[dict[str, Any]]:
    """The comparison table at one code size (the run's own by default)."""
    code = summary["code"] if code is None else code
    out = []
    for r in summary["rows"]:
        if r["code"] != code:
            continue
        name = LABELS[r["method"]] + (f" (quality {r['quality']})" if r["method"] == "jpeg" else "")
        out.append(
            {
                "method": name,
                "PSNR dB": f"{r['psnr']:.2f} ± {r['psnr_sd']:.2f}",
                "SSIM": f"{r['ssim']:.3f}",
                "parameters": f"{r['parameters']:,}",
                "model bytes": f"{r['model_bytes']:,}",
                "bytes / image": f"{r['bytes_per_image']:.0f}"
                + (f" ({r['header_bytes']:.0f} header)" if "header_bytes" in r else ""),
                "train s": f"{r['train_s']:.1f}",
            }
        )
    return out
