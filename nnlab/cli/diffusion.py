"""`nnlab diffusion train | sample | evaluate`: DDPM / DDIM on digits."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import DeviceOpt, console, group, table, train_command
from nnlab.run import RunDir

SamplerOpt = typer.Option("ddim", help="ddpm (ancestral, every step) or ddim.")
StepsOpt = typer.Option(50, min=1, help="DDIM steps (DDPM always takes all T).")
EtaOpt = typer.Option(
    0.0, min=0.0, max=1.0, help="DDIM noise: 0 deterministic, 1 = DDPM's variance."
)
VarianceOpt = typer.Option("posterior", help="DDPM step variance: posterior (beta~_t) or beta.")
SpacingOpt = typer.Option(
    "uniform", help="DDIM's timesteps: uniform, or quadratic (crowded near the data)."
)
SeedOpt = typer.Option(0, help="Seed of the initial noise (and of DDPM's steps).")
GuidanceOpt = typer.Option(
    None,
    min=0.0,
    help="Classifier-free guidance w of a --conditional run: (1+w) f(x, y) - w f(x); 0 = plain "
    "conditional (default: the run's own).",
)
PrecisionOpt = typer.Option(
    "fp32", help="fp32, or bf16: the network under bf16 autocast (about 2x on a CPU with AMX)."
)


def sample(
    run_dir: Path = typer.Argument(..., help="A diffusion run directory."),
    n: int = typer.Option(64, "--n", min=1, help="Number of samples."),
    sampler: str = SamplerOpt,
    steps: int = StepsOpt,
    eta: float = EtaOpt,
    variance: str = VarianceOpt,
    seed: int = SeedOpt,
    out: Optional[Path] = typer.Option(
        None, help="PNG file (default: in RUN_DIR, named by the settings)."
    ),
    overwrite: bool = typer.Option(False, help="Replace the file if it exists."),
    precision: str = PrecisionOpt,
    spacing: str = SpacingOpt,
    guidance: Optional[float] = GuidanceOpt,
    device: str = DeviceOpt,
) -> None:
    """Draw samples from a trained run's averaged model and write them as one grid PNG."""
    from nnlab.tasks.diffusion import sample_grid

    path, seconds = sample_grid(
        RunDir.open(run_dir),
        n,
        sampler,
        steps,
        eta,
        variance,
        seed,
        out,
        overwrite,
        device,
        precision=precision,
        spacing=spacing,
        guidance=guidance,
    )
    console.print(f"{n} samples in {seconds:.1f} s ({seconds / n * 1000:.0f} ms each): {path}")


def evaluate(
    run_dir: Path = typer.Argument(..., help="A diffusion run directory."),
    n: int = typer.Option(1000, "--n", min=10, help="Samples (and real images per row)."),
    sampler: str = SamplerOpt,
    steps: int = StepsOpt,
    eta: float = EtaOpt,
    variance: str = VarianceOpt,
    seed: int = SeedOpt,
    baselines: bool = typer.Option(True, help="Also score real test images and a PCA Gaussian."),
    overwrite: bool = typer.Option(False, help="Replace an earlier evaluation of these settings."),
    precision: str = PrecisionOpt,
    spacing: str = SpacingOpt,
    guidance: Optional[float] = GuidanceOpt,
    device: str = DeviceOpt,
) -> None:
    """Score samples in the feature space of nnlab's own classifier (not Inception FID): own-
    feature Frechet and kernel distances to the training images, class shares, confidence."""
    from nnlab.tasks.diffusion import evaluate_run

    result = evaluate_run(
        RunDir.open(run_dir),
        n,
        sampler,
        steps,
        eta,
        variance,
        seed,
        baselines,
        overwrite,
        device,
        console,
        precision=precision,
        spacing=spacing,
        guidance=guidance,
    )
    keys = ("images", "n", "fd", "kd", "confidence", "class_share_min", "class_share_max")
    console.print(
        table(
            [{k: r[k] for k in keys} for r in result["rows"]],
            f"own-feature scores ({result['rows'][0]['judge']}; not Inception FID)",
        )
    )
    console.print(
        f"sampling: {result['sample_s']:.1f} s for {n} ({result['sampler']}); "
        f"written to {result['path']}"
    )


def register(app: typer.Typer) -> None:
    from nnlab.tasks.diffusion import DiffusionTask

    diffusion = group("diffusion", "Diffusion (DDPM, DDIM) on digits: train, sample, evaluate.")
    diffusion.command("train")(
        train_command(
            DiffusionTask,
            "diffusion",
            "Train a time-conditioned U-Net to predict eps, x0 or v; the run holds sample grids, "
            "the forward and reverse processes and the loss per range of t.",
        )
    )
    diffusion.command("sample")(sample)
    diffusion.command("evaluate")(evaluate)
    app.add_typer(diffusion)
