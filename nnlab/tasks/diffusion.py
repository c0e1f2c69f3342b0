"""Diffusion on digits: a time-conditioned U-Net trained by the shared loop to predict eps, x_0 or
v (nnlab.diffusion), sampled by DDPM or DDIM from its averaged (EMA) weights; figures of the
forward and reverse processes, sample grids during training, and the loss per range of t."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnlab.data import available_splits, load_splits
from nnlab.diffusion.process import OBJECTIVES, SPACINGS, DenoiseDiffusion
from nnlab.diffusion.schedules import SCHEDULES, make_schedule, q_sample
from nnlab.errors import NNLabError
from nnlab.io import atomic_write_bytes, atomic_write_json, claim_outputs, writable_folder
from nnlab.models import model_config
from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.base import Task, load_config, load_model
from nnlab.train import StepOutput, TrainConfig
from nnlab.viz.diffusion import bucket_loss_figure, class_share_figure, grid_figure, strip_figure

BUCKETS = 10  # the training loss is also tracked per tenth of 1..T
SAMPLERS = ("ddpm", "ddim")
SHAPES = {"mnist": (1, 28, 28), "digits": (1, 8, 8)}  # (C, H, W) of one image
CLASSES = 10  # both data sets are digits 0-9


@dataclass
class DiffusionConfig:
    data: str = "mnist"  # mnist (28x28) or digits (8x8: a run of seconds)
    model: str = "diffusion_unet"  # diffusion_unet
    model_args: dict[str, Any] = field(default_factory=dict)  # the model config's fields
    objective: str = "eps"  # what the network predicts: eps | x0 | v
    schedule: str = "linear"  # noise schedule: linear (beta 1e-4 .. 0.02) | cosine
    min_snr: float = 0.0  # > 0: min-SNR-gamma loss weights (Hang et al. 2023), e.g. 5; 0: plain
    timesteps: int = 1000  # T, the number of noising steps
    conditional: bool = False  # class-conditional U-Net: the digit to draw is an input
    p_uncond: float = 0.1  # conditional: the share of training labels dropped (for guidance)
    guidance: float = 0.0  # conditional: classifier-free guidance w of the run's own samples
    limit: int = 0  # > 0: use only the first N training images
    sample_every: int = 5  # epochs between sample grids of the averaged model; 0: at the end only
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=20,
            batch_size=128,
            lr=1e-3,
            weight_decay=0.0,
            warmup_epochs=0.5,
            ema=0.999,
            monitor="val/loss",
            mode="min",
        )
    )

    def check_guidance(self, w: float) -> None:
        """Guidance w fits this run: w >= 0, and w > 0 only for a conditional model trained with
        label dropout (guidance mixes in the model without labels, which only dropout trains)."""
        if not 0 <= w < float("inf"):
            raise NNLabError(f"--guidance must be a finite number >= 0, got {w}")
        if w and not (self.conditional and self.p_uncond):
            raise NNLabError(
                "--guidance needs a run trained with --conditional and --p-uncond > 0 (it "
                "mixes in the model without labels, which only label dropout trains)"
            )

    def check(self) -> None:
        self.check_values()
        if not available_splits(self.data):
            raise NNLabError(
                f"{self.data}: no data files found; run `nnlab datasets fetch "
                f"{self.data}` or set NNLAB_DATA to a folder that holds them"
            )

    def check_values(self) -> None:
        """Every value in range (what a hand-edited config.json is checked for, too)."""
        if self.objective not in OBJECTIVES:
            raise NNLabError(f"--objective must be eps, x0 or v, got '{self.objective}'")
        if self.schedule not in SCHEDULES:
            raise NNLabError(f"--schedule must be linear or cosine, got '{self.schedule}'")
        if not 2 <= self.timesteps <= 10_000:
            raise NNLabError(f"--timesteps must be in 2..10000, got {self.timesteps}")
        if self.limit < 0 or self.sample_every < 0 or self.min_snr < 0:
            raise NNLabError("--limit, --sample-every and --min-snr must be >= 0")
        if not 0 <= self.p_uncond < 1:
            raise NNLabError(f"--p-uncond must be in [0, 1), got {self.p_uncond}")
        self.check_guidance(self.guidance)
        if self.data not in ("mnist", "digits"):
            raise NNLabError(f"--data must be mnist or digits, got '{self.data}'")
        fixed = sorted({"in_channels", "out_channels", "classes"} & set(self.model_args))
        if fixed:
            raise NNLabError(f"-m {', '.join(fixed)}: set by the data and --conditional")


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1  # images in [0, 1] -> [-1, 1], the range the process assumes


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


class DiffusionTask(Task):
    name, config_class, models, noun = (
        "diffusion",
        DiffusionConfig,
        ("diffusion_unet",),
        "diffusion",
    )
    summary_keys = (
        "model",
        "objective",
        "schedule",
        "parameters",
        "epochs",
        "test/loss",
        "train_time_s",
        "sample_s_per_image",
    )

    def __init__(self, cfg: DiffusionConfig, console=None):
        super().__init__(cfg, console)
        self.buckets = torch.zeros(2, BUCKETS, dtype=torch.float64)  # (sum, count) this epoch
        self._eval_batch = 0

    @functools.cached_property
    def schedule(self):
        return make_schedule(self.cfg.schedule, self.cfg.timesteps)

    def process(self, model: nn.Module, guidance: float | None = None) -> DenoiseDiffusion:
        """The process around `model`; guidance: w for sampling (None: the run's own)."""
        cfg = self.cfg
        return DenoiseDiffusion(
            model,
            self.schedule,
            cfg.objective,
            cfg.min_snr,
            CLASSES if cfg.conditional else None,
            cfg.guidance if guidance is None else guidance,
        )

    def datasets(self, run: RunDir, resume: bool):
        self.sets = load_splits(self.cfg.data, 0.1, self.cfg.train.seed, self.cfg.limit)
        shape, want = self.sets["train"].images.shape[1:], SHAPES[self.cfg.data]
        if tuple(shape) != want:  # the samples are drawn at the data set's own size
            raise NNLabError(
                f"{self.cfg.data} images are {'x'.join(map(str, shape))} (channels x H x W); "
                f"a diffusion run on {self.cfg.data} samples {'x'.join(map(str, want))}"
            )
        return {k: v.tensors() for k, v in self.sets.items()}

    def model_config(self, train):
        channels = SHAPES[self.cfg.data][0]
        return model_config(
            self.cfg.model,
            **{
                "in_channels": channels,
                "out_channels": channels,
                "classes": CLASSES if self.cfg.conditional else 0,
                **self.cfg.model_args,
            },
        )

    def loss(self, model: nn.Module, batch) -> StepOutput:
        x, y = batch  # (B, C, H, W) in [0, 1], (B,) labels (used by a conditional model)
        if model.training:
            generator, self._eval_batch = None, 0
        else:  # the same t and noise at every evaluation: validation losses compare over epochs
            generator = torch.Generator(x.device).manual_seed(10_000 + self._eval_batch)
            self._eval_batch += 1
        process = self.process(model)
        labels = y if self.cfg.conditional else None
        err, t = process.losses(to_model_range(x), generator, labels, self.cfg.p_uncond)
        if model.training:
            # summed where the errors are: a copy to the CPU every step would wait for the GPU
            self.buckets = self.buckets.to(err.device)
            bucket = (t - 1) * BUCKETS // self.schedule.T
            self.buckets[0] += torch.bincount(bucket, err.detach().double(), BUCKETS)
            self.buckets[1] += torch.bincount(bucket, minlength=BUCKETS)
        return StepOutput({"loss": process.loss(err, t)})

    @property
    def grid_steps(self) -> int:
        """DDIM steps of the sample grids a run draws itself: 50, or T when T is smaller."""
        return min(50, self.schedule.T)

    def on_epoch_end(self, trainer, epoch: int) -> dict[str, float]:
        """The epoch's mean loss per tenth of 1..T, logged with its record (loss_t/0..9: the
        loss-per-t figure is drawn from the log, so a resumed run keeps the epochs before)."""
        means = (self.buckets[0] / self.buckets[1].clamp(min=1)).cpu().tolist()
        self.buckets.zero_()
        every = self.cfg.sample_every
        if trainer.is_main and every and epoch % every == 0 and epoch < self.cfg.train.epochs:
            grid = self.sample(trainer, 64, "ddim", self.grid_steps, seed=0)[0]
            trainer.run.save_figure(
                f"samples_epoch{epoch:03d}",
                grid_figure(
                    grid,
                    f"epoch {epoch}: 64 DDIM-{self.grid_steps} samples of the averaged model",
                ),
            )
        return {f"loss_t/{k}": v for k, v in enumerate(means)}

    def sample(
        self,
        trainer,
        n: int,
        sampler: str,
        steps: int,
        seed: int = 0,
        eta: float = 0.0,
        variance: str = "posterior",
        keep=None,
    ):
        """n images in [0, 1] (n, C, H, W) as NumPy, and the kept trajectory, from the evaluated
        model (the average of the weights when EMA is on); a conditional model draws the digits
        0-9 in turn (a grid's columns)."""
        model = trainer.ema.module if trainer.ema is not None else trainer.module
        return sample_images(
            model,
            self.process(model),
            SHAPES[self.cfg.data],
            n,
            sampler,
            steps,
            seed,
            eta,
            variance,
            trainer.device,
            keep,
            labels=grid_labels(n) if self.cfg.conditional else None,
        )

    def finish(self, trainer, data, test) -> dict[str, Any]:
        run, cfg, T = trainer.run, self.cfg, self.schedule.T
        evaluations = keep_current_evaluations(run, trainer.best_epoch, self.say)
        note = run.summary().get("evaluation note")  # the summary before this one
        buckets = [  # per epoch, from the log (epochs before a resume included)
            [r[f"loss_t/{k}"] for k in range(BUCKETS)] for r in trainer.history if "loss_t/0" in r
        ]
        marks = [round(T * k / 10) for k in range(11)]  # t = 0, T/10, ..., T
        x0 = to_model_range(torch.from_numpy(self.sets["test"].images[:1]))  # (1, C, H, W)
        g = torch.Generator().manual_seed(0)
        eps = torch.randn(x0.shape, generator=g)
        noisy = [
            x0 if t == 0 else q_sample(self.schedule, x0, torch.tensor([t]), eps) for t in marks
        ]
        run.save_figure(
            "forward_process",
            strip_figure(
                [to_image_range(x)[0].numpy() for x in noisy],
                [f"t = {t}" for t in marks],
                f"forward process q(x_t | x_0) of a test digit, {cfg.schedule} schedule",
            ),
        )
        _, kept = self.sample(trainer, 1, "ddpm", T, seed=1, keep=lambda t: t in marks)
        run.save_figure(
            "reverse_process",
            strip_figure(
                [to_image_range(kept[t])[0].numpy() for t in reversed(marks)],
                [f"t = {t}" for t in reversed(marks)],
                "reverse process: one DDPM sample, x_T to x_0",
            ),
        )
        t0 = time.perf_counter()
        grid = self.sample(trainer, 100, "ddim", self.grid_steps, seed=2)[0]
        per_image = (time.perf_counter() - t0) / 100
        what = f", digits 0-9 by column, guidance {cfg.guidance:g}" if cfg.conditional else ""
        run.save_figure(
            "samples",
            grid_figure(grid, f"100 DDIM-{self.grid_steps} samples of the averaged model{what}"),
        )
        run.save_figure(
            "loss_per_t",
            bucket_loss_figure(
                buckets,
                T,
                f"training loss per range of t ({cfg.objective} objective, unweighted)",
            ),
        )
        return {
            "objective": cfg.objective,
            "schedule": cfg.schedule,
            "min_snr": cfg.min_snr,
            "timesteps": T,
            # the training set's class shares: what a conditional model's evaluation draws from
            "label_share": (
                np.bincount(self.sets["train"].labels, minlength=CLASSES) / len(self.sets["train"])
            ).tolist(),
            "sample_s_per_image": per_image,
            "loss_per_t_bucket": buckets[-1] if buckets else [],
            **evaluations,  # those of this best checkpoint, kept across a resume
            **({"evaluation note": note} if evaluations and note else {}),
        }


@torch.no_grad()
def sample_images(
    model: nn.Module,
    process: DenoiseDiffusion,
    shape: tuple[int, ...],
    n: int,
    sampler: str,
    steps: int,
    seed: int,
    eta: float,
    variance: str,
    device: torch.device,
    keep=None,
    batch: int = 500,
    precision: str = "fp32",
    spacing: str = "uniform",
    labels: torch.Tensor | None = None,
):
    """n samples in [0, 1] (NumPy, (n, *shape)) in batches, and the trajectory of the first batch
    at the kept steps (images in [-1, 1], torch). precision "bf16": the network runs under bf16
    autocast (its output is cast back: the sampler's arithmetic stays fp32). spacing: DDIM's
    timesteps, uniform or quadratic. labels (n,): the class of each sample (conditional models;
    guidance is the process's)."""
    check_sampling(sampler, precision, spacing)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} samples")
    was = model.training
    model.eval()
    g = torch.Generator(device).manual_seed(seed)
    out, kept = [], None
    for start in range(0, n, batch):
        size = (min(batch, n - start), *shape)
        y = None if labels is None else labels[start : start + size[0]].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            if sampler == "ddpm":
                x, k = process.ddpm(size, variance, generator=g, device=device, keep=keep, labels=y)
            else:
                x, k = process.ddim(
                    size,
                    steps,
                    eta,
                    generator=g,
                    device=device,
                    keep=keep,
                    spacing=spacing,
                    labels=y,
                )
        if not torch.isfinite(x).all():
            raise NNLabError(
                "the samples are NaN or infinite: the checkpoint's weights diverged or are "
                "damaged (or the guidance is too strong)"
            )
        out.append(to_image_range(x).float().cpu().numpy())
        kept = k if kept is None else kept
    model.train(was)
    return np.concatenate(out), kept


SAMPLING_PRECISIONS = ("fp32", "bf16")


def grid_labels(n: int) -> torch.Tensor:
    """The digits 0-9 in turn: in a grid of 10 columns, one digit per column."""
    return torch.arange(n) % CLASSES


def sample_labels(run: RunDir, n: int, seed: int) -> torch.Tensor:
    """n labels drawn (with `seed`) from the run's training-set class shares: a conditional
    model's samples then have the data's class mix, not one chosen for them."""
    share = run.summary().get("label_share")
    if not share:
        raise NNLabError(
            f"{run.path}: the run has not finished (no class shares in summary.json): finish it "
            f"with nnlab diffusion train --resume {run.path}"
        )
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.tensor(share, dtype=torch.float64), n, True, generator=g)


def sampling_guidance(task: "DiffusionTask", guidance: float | None) -> float:
    """The guidance w to sample a run with: the given one (checked), or the run's own."""
    if guidance is None:
        return task.cfg.guidance
    task.cfg.check_guidance(guidance)
    return guidance


def check_sampling(sampler: str, precision: str, spacing: str) -> None:
    """A sampling setting from the command line, checked: one line for a bad value."""
    if sampler not in SAMPLERS:
        raise NNLabError(f"--sampler must be ddpm or ddim, got '{sampler}'")
    if precision not in SAMPLING_PRECISIONS:
        raise NNLabError(f"--precision must be fp32 or bf16, got '{precision}'")
    if spacing not in SPACINGS:
        raise NNLabError(f"--spacing must be uniform or quadratic, got '{spacing}'")


def sampler_label(
    sampler: str,
    steps: int,
    eta: float,
    precision: str,
    spacing: str,
    guidance: float = 0.0,
    variance: str = "posterior",
) -> str:
    """A sampling setting as a file-name part: ddim50, ddim50-quad-eta0.5-w1-bf16, ddpm,
    ddpm-beta (checked first: a bad setting is an error before any output is claimed)."""
    check_sampling(sampler, precision, spacing)
    if variance not in ("posterior", "beta"):
        raise NNLabError(f"--variance must be posterior or beta, got '{variance}'")
    if not 0.0 <= eta <= 1.0:
        raise NNLabError(f"--eta must be between 0 (DDIM) and 1 (DDPM's variance), got {eta:g}")
    if sampler == "ddpm":
        label = "ddpm" + ("-beta" if variance == "beta" else "")
    else:
        label = f"ddim{steps}" + ("-quad" if spacing == "quadratic" else "")
        label += f"-eta{eta:g}" if eta else ""
    label += f"-w{guidance:g}" if guidance else ""
    return label + ("-bf16" if precision == "bf16" else "")


def save_figure(path: Path, fig) -> Path:
    """A figure as PNG at any path (atomically), not only in a run's figures/."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def run_task_of(run: RunDir) -> DiffusionTask:
    """The task of a diffusion run, its config's values checked (a hand-edited one says what is
    wrong in a line)."""
    cfg = load_config(run, DiffusionTask)
    try:
        cfg.check_values()
    except NNLabError as e:
        raise NNLabError(f"{run.config_path}: {e}") from None
    return DiffusionTask(cfg)


def load_sampler(run: RunDir, device: str = "auto") -> tuple[DiffusionTask, nn.Module]:
    """A trained diffusion run's task (config, schedule) and model (best = averaged weights)."""
    return run_task_of(run), load_model(run, "best", device)


def sampling_settings(
    run: RunDir,
    sampler: str,
    steps: int,
    eta: float,
    precision: str,
    spacing: str,
    guidance: float | None,
    variance: str = "posterior",
) -> tuple[DiffusionTask, float, str]:
    """A run's task, the guidance w to sample it with and the settings' file-name label, all
    checked before any output is claimed or the model is loaded."""
    task = run_task_of(run)
    w = sampling_guidance(task, guidance)
    label = sampler_label(sampler, steps, eta, precision, spacing, w, variance)
    if sampler == "ddim" and not 1 <= steps <= task.schedule.T:
        raise NNLabError(f"--steps must be 1 to T = {task.schedule.T} of this run, got {steps}")
    return task, w, label


def draw(
    run: RunDir,
    task: DiffusionTask,
    w: float,
    n: int,
    sampler: str,
    steps: int,
    eta: float,
    variance: str,
    seed: int,
    device: str,
    precision: str,
    spacing: str,
    labels: torch.Tensor | None,
) -> tuple[np.ndarray, float, torch.device]:
    """n samples (see sample_images) of the run's averaged model, the seconds they took and the
    device they were drawn on."""
    model = load_model(run, "best", device)
    on = next(model.parameters()).device
    t0 = time.perf_counter()
    images, _ = sample_images(
        model,
        task.process(model, w),
        SHAPES[task.cfg.data],
        n,
        sampler,
        steps,
        seed,
        eta,
        variance,
        on,
        precision=precision,
        spacing=spacing,
        labels=labels,
    )
    return images, time.perf_counter() - t0, on


def best_epoch(run: RunDir) -> int:
    """The epoch of the run's best checkpoint (the averaged weights that are sampled)."""
    from nnlab.train.checkpoint import load_checkpoint

    return int(load_checkpoint(run.checkpoint_dir / "best.safetensors")["epoch"])


# an evaluation's figures per row that go into the run's summary
EVAL_KEYS = ("images", "n", "fd", "kd", "confidence", "class_share_min", "class_share_max")


def keep_current_evaluations(run: RunDir, epoch: int, say=None) -> dict[str, Any]:
    """After training: evaluations of another checkpoint than the best one (`epoch`) move to
    evaluations/stale/ with their class figures (scores of weights no longer sampled; kept, not
    shown); the summary rows of those still current, to carry into the new summary."""
    folder = run.path / "evaluations"
    rows: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        figure = run.figure_dir / f"eval_{path.stem.replace('-', '_')}_classes.png"
        if isinstance(record, dict) and record.get("checkpoint_epoch") == epoch:
            rows[f"evaluation {path.stem}"] = [
                {k: r.get(k) for k in EVAL_KEYS} for r in record.get("rows", [])
            ]
            continue
        stale = folder / "stale"
        stale.mkdir(exist_ok=True)
        path.replace(stale / path.name)
        if figure.exists():
            figure.replace(stale / figure.name)
        if say is not None:
            say(f"{path.name} scored another checkpoint: moved to {stale}")
    return rows


def sample_grid(
    run: RunDir,
    n: int,
    sampler: str,
    steps: int,
    eta: float,
    variance: str,
    seed: int,
    out: Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    precision: str = "fp32",
    spacing: str = "uniform",
    guidance: float | None = None,
) -> tuple[Path, float]:
    """`nnlab diffusion sample`: n samples as one grid PNG (by default in the run, named by the
    settings); returns its path and the sampling time in seconds. A conditional run draws the
    digits 0-9 in turn, one per column; guidance None: the run's own."""
    task, w, label = sampling_settings(
        run, sampler, steps, eta, precision, spacing, guidance, variance
    )
    path = Path(out) if out is not None else run.path / f"samples-{label}-n{n}-seed{seed}.png"
    if path.is_dir():
        raise NNLabError(f"--out {path} is a folder: name the PNG file to write")
    claim_outputs([path], overwrite)
    writable_folder(path.parent, "--out")  # before the sampling, which would be lost
    labels = grid_labels(n) if task.cfg.conditional else None
    images, seconds, _ = draw(
        run, task, w, n, sampler, steps, eta, variance, seed, device, precision, spacing, labels
    )
    what = ", digits 0-9 by column" if task.cfg.conditional else ""
    save_figure(
        path, grid_figure(images, f"{n} {label} samples (eta {eta:g}) of {run.path.name}{what}")
    )
    return path, seconds


def evaluate_run(
    run: RunDir,
    n: int,
    sampler: str,
    steps: int,
    eta: float,
    variance: str,
    seed: int,
    baselines: bool = True,
    overwrite: bool = False,
    device: str = "auto",
    console=None,
    precision: str = "fp32",
    spacing: str = "uniform",
    guidance: float | None = None,
) -> dict[str, Any]:
    """`nnlab diffusion evaluate`: n samples scored by the judge classifier beside the floor and
    the baseline (see nnlab.tasks.sample_quality); written to RUN/evaluations/<settings>.json.
    A conditional run's labels are drawn from its training set's class shares."""
    from nnlab.tasks.sample_quality import evaluate, judge, max_evaluation_samples

    task, w, label = sampling_settings(
        run, sampler, steps, eta, precision, spacing, guidance, variance
    )
    most = max_evaluation_samples(task.cfg.data)
    if n > most:
        raise NNLabError(f"--n {n}: at most {most} samples for {task.cfg.data} (its test split)")
    run.summary()  # a damaged summary said before the sampling, not after it
    path = run.path / "evaluations" / f"{label}-n{n}-seed{seed}.json"
    labels = sample_labels(run, n, seed) if task.cfg.conditional else None
    claim_outputs([path], overwrite)
    judge(task.cfg.data, device, console)  # trained or loaded (a damaged one said) before sampling
    images, seconds, on = draw(
        run, task, w, n, sampler, steps, eta, variance, seed, device, precision, spacing, labels
    )
    rows = evaluate(images, task.cfg.data, device, baselines, console, seed)
    result = {
        "checkpoint_epoch": best_epoch(run),  # the weights scored: an evaluation of them only
        "sampler": label,
        "variance": variance,
        "spacing": spacing,
        "precision": precision,
        "conditional": task.cfg.conditional,
        "guidance": w,
        "n": n,
        "seed": seed,
        "sample_s": seconds,
        "device": str(on),
        "rows": rows,
        "path": str(path),
    }
    atomic_write_json(path, result)
    # into the run's report: the table, what the numbers are, the class histogram
    run.save_figure(
        f"eval_{path.stem.replace('-', '_')}_classes",
        class_share_figure(
            {r["images"]: r["class_share"] for r in rows},
            f"{label}, {n} samples: classes the judge predicts (ideal: 10% each)",
        ),
    )
    summary = run.summary()
    summary[f"evaluation {path.stem}"] = [{k: r[k] for k in EVAL_KEYS} for r in rows]
    summary["evaluation note"] = (
        f"Evaluations score samples in the penultimate-feature space of nnlab's own classifier "
        f"({rows[0]['judge']}, test accuracy {rows[0]['judge test acc']:.4f}): own-feature "
        "Frechet distance (FD) and kernel distance (KD) to the same training images for every "
        "row. This is not Inception FID; compare only rows of the same judge and sample count.\n"
    )
    run.save_summary(summary)
    write_report(run)
    return result
