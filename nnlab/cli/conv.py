"""`nnlab conv properties | prior | filters | receptive-field | input-size | invariance | gabor`:
convolution made executable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import DeviceOpt, OutOpt, SeedOpt, console, group, launch, new_run, table
from nnlab.errors import NNLabError


def properties(seed: int = SeedOpt, out: Optional[Path] = OutOpt) -> None:
    """Equivariance (and where it fails), stride as subsampling, pooling, parameter counts,
    DCT basis."""
    from nnlab.tasks.conv_experiments import run_properties

    with new_run("conv-properties", out) as run:
        tables = run_properties(run, seed)
    for title, rows in tables:
        console.print(table(rows, title))
    console.print(f"report: {run.report_path.resolve()}")


def prior(
    data: str = typer.Option(
        "digits", help="digits (16x16 on a 32x32 canvas) or mnist (28x28 on 56x56)."
    ),
    epochs: int = typer.Option(20, min=1, help="Epochs per model and task."),
    train_size: int = typer.Option(4000, "--train", min=10, help="Training images per task."),
    test_size: int = typer.Option(1000, "--test", min=10, help="Test images per task."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """When the prior is wrong: conv + global pooling vs an MLP on 'where is the digit?' and on
    'which digit?' with training digits on the left and test digits on the right."""
    from nnlab.tasks.conv_experiments import check_data, run_prior
    from nnlab.train import resolve_device

    check_data(data, ("digits", "mnist"), "")
    resolve_device(device)
    with new_run("conv-prior", out) as run:
        rows = run_prior(run, data, epochs, train_size, test_size, seed, device, console)
    canvas = run.summary()["canvas"]
    console.print(table(rows, f"test accuracy, {data} on a {canvas}x{canvas} canvas"))
    console.print(f"report: {run.report_path.resolve()}")


def filters(
    data: str = typer.Option("mnist", help="mnist (28x28; 7x7 filters need room) or nist."),
    epochs: int = typer.Option(3, min=1, help="Epochs."),
    limit: int = typer.Option(20000, min=0, help="Training images (0 = all)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Train a small CNN with 7x7 first-layer filters and show them beside a Gabor filter bank."""
    from nnlab.tasks.classify import ClassifyConfig, ClassifyTask
    from nnlab.tasks.conv_experiments import check_data
    from nnlab.train import TrainConfig

    check_data(data, ("mnist", "nist"), " (images large enough for 7x7 filters)")
    cfg = ClassifyConfig(
        data=data,
        model="cnn",
        limit=limit,
        model_args={"first_kernel": 7, "first_init_scale": 0.05, "channels": (16, 32)},
        train=TrainConfig(
            epochs=epochs, lr=3e-3, seed=seed, device=device, monitor="val/acc", mode="max"
        ),
    )
    launch(
        ClassifyTask(cfg, console),
        "classify",
        out,
        name=f"conv-filters-{data}",
        show=lambda runner, s: console.print(
            f"test accuracy {s['test/acc']:.4f}; filters: "
            f"{out or 'the run'}/figures/first_layer_filters.png"
        ),
    )


def receptive_field(
    data: str = typer.Option("mnist", help="mnist (28x28) or digits (8x8 shown at 32x32)."),
    images: int = typer.Option(64, min=1, help="Images the gradient maps are averaged over."),
    seed: int = SeedOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Theoretical receptive field of every layer of the CNN, the NumPy CNN and a U-Net, beside
    the measured one (input gradient of the centre unit, averaged over images)."""
    from nnlab.tasks.conv_experiments import check_data
    from nnlab.tasks.receptive_field import run_receptive_field

    check_data(data, ("digits", "mnist"), "")
    with new_run("receptive-field", out) as run:
        rows = run_receptive_field(run, data, images, seed)
    console.print(table(rows, "receptive field side (input pixels): theory vs the gradient"))
    console.print(f"report: {run.report_path.resolve()}")


def input_size(
    data: str = typer.Option("mnist", help="mnist (28x28) or digits (8x8 shown at 16x16)."),
    epochs: int = typer.Option(2, min=1, help="Training epochs (20,000 MNIST images)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Train one CNN with global average pooling, then feed it larger and smaller images (the
    digit on a bigger canvas, or the digit itself scaled): accuracy and confidence per size."""
    from nnlab.tasks.conv_experiments import check_data, run_input_size
    from nnlab.train import resolve_device

    check_data(data, ("digits", "mnist"), "")
    resolve_device(device)
    with new_run("conv-input-size", out) as run:
        rows = run_input_size(run, data, epochs, seed, device, console)
    native = run.summary()["native"]
    console.print(table(rows, f"trained at {native}x{native}, evaluated at other sizes"))
    console.print(f"report: {run.report_path.resolve()}")


def invariance(
    data: str = typer.Option("mnist", help="mnist (28x28) or digits (8x8 shown at 24x24)."),
    bank: int = typer.Option(24, min=2, help="Rotated copies of the filter pooled by max."),
    trained: bool = typer.Option(
        False,
        "--trained",
        help="Measure a trained CNN with global max pooling instead of the matched filter: test "
        "accuracy against shift, angle and scale, alone and as the max of its logits over "
        "--bank rotations of the input (MNIST on a 48x48 canvas, digits on 32x32).",
    ),
    epochs: int = typer.Option(3, min=1, help="With --trained: training epochs."),
    train_size: int = typer.Option(
        8000, "--train", min=10, help="With --trained: training digits (random positions)."
    ),
    test_size: int = typer.Option(
        1000, "--test", min=10, help="With --trained: test digits under every transformation."
    ),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """A detector (the pattern as a filter, max over positions) against shifted, rotated and
    scaled copies of its pattern, and the max over a bank of rotated filters; with --trained the
    same for a trained CNN and the max over rotated copies of it."""
    from nnlab.tasks.conv_experiments import (
        TrainedInvarianceConfig,
        check_data,
        run_invariance,
        run_trained_invariance,
    )
    from nnlab.train import resolve_device

    check_data(data, ("digits", "mnist"), "")
    if not trained:
        with new_run("conv-invariance", out) as run:
            rows = run_invariance(run, data, bank, seed)
        console.print(table(rows, "detector response (correlation coefficient, 1 = the pattern)"))
        console.print(f"report: {run.report_path.resolve()}")
        return
    resolve_device(device)
    cfg = TrainedInvarianceConfig(
        data=data,
        epochs=epochs,
        n_train=train_size,
        n_test=test_size,
        bank=bank,
        seed=seed,
        device=device,
    )
    with new_run("conv-invariance-trained", out) as run:
        result = run_trained_invariance(run, cfg, console)
    summary = run.summary()
    console.print(table(result["accuracy"], f"test accuracy ({summary['test digits']} digits)"))
    console.print(table(result["confusions"], "confusions at 0 degrees (true -> predicted)"))
    console.print(f"training: {summary['training seconds']:.1f} s")
    console.print(f"report: {run.report_path.resolve()}")


def gabor(
    size: int = typer.Option(12, min=5, max=32, help="Patch and filter side (pixels)."),
    filters: int = typer.Option(64, min=2, help="Independent components (filters)."),
    patches: int = typer.Option(20000, min=100, help="Natural-image patches for the ICA."),
    mnist_epochs: int = typer.Option(
        1, min=0, help="Epochs of the MNIST CNN whose 7x7 filters are fitted too (0: skip)."
    ),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Learn filters from natural-image patches (ICA), fit a 2-D Gabor function to each, and
    compare the fit (R^2) with a CNN's first layer trained on MNIST and with random filters."""
    from nnlab.tasks.conv_experiments import check_data
    from nnlab.tasks.gabor import run_gabor
    from nnlab.train import resolve_device

    if not 8 <= filters <= min(size * size, patches):
        raise NNLabError(
            f"--filters must be 8 to {min(size * size, patches)} (the patch's {size}x{size} "
            f"pixels, and at most --patches), got {filters}"
        )
    if mnist_epochs:
        check_data("mnist", ("mnist",), "")
    resolve_device(device)
    with new_run("conv-gabor", out) as run, console.status("ICA, training and Gabor fits"):
        rows = run_gabor(run, size, filters, patches, mnist_epochs, seed, device)
    console.print(table(rows, "how Gabor-like: R^2 of a fitted 2-D Gabor function"))
    console.print(f"report: {run.report_path.resolve()}")


def register(app: typer.Typer) -> None:
    conv = group(
        "conv", "Convolution made executable: properties, priors, DCT, filters, receptive fields."
    )
    conv.command("properties")(properties)
    conv.command("prior")(prior)
    conv.command("filters")(filters)
    conv.command("receptive-field")(receptive_field)
    conv.command("input-size")(input_size)
    conv.command("invariance")(invariance)
    conv.command("gabor")(gabor)
    app.add_typer(conv)
