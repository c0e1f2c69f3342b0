"""`nnlab classify train | explain` (also `nnlab train`, `nnlab explain`) and `nnlab demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import (
    DeviceOpt,
    OutOpt,
    SeedOpt,
    Shortcut,
    console,
    group,
    table,
    train_command,
)
from nnlab.errors import NNLabError
from nnlab.io import claim_outputs
from nnlab.run import RunDir


def parse_patch(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise NNLabError(f"--patch expects P or HxW with positive integers (7, 1x28), got '{text}'")
    return (sizes[0], sizes[0]) if len(sizes) == 1 else sizes


def demo(
    epochs: int = typer.Option(30, min=1, help="Epochs per model."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Train a small MLP and a small CNN on the embedded 8x8 digits and compare them (< 1 min)."""
    from nnlab.tasks.demo import run_demo
    from nnlab.train import resolve_device

    resolve_device(device)
    run, rows = run_demo(out=out, epochs=epochs, seed=seed, device=device, console=console)
    console.print(table(rows, "nnlab demo: scikit-learn 8x8 digits, test split, best checkpoint"))
    console.print(f"report: {run.report_path.resolve()}")


def explain(
    run_dir: Path = typer.Argument(..., help="A run directory of a ViT classifier."),
    image: int = typer.Option(0, "--image", min=0, help="Index of the test image."),
    overwrite: bool = typer.Option(False, help="Replace the figure if it exists."),
    device: str = DeviceOpt,
) -> None:
    """Attention maps of a trained ViT on one test image: every layer and head, and the rollout."""
    from nnlab.tasks.classify import explain as explain_run

    run = RunDir.open(run_dir)
    path = run.figure_dir / f"attention_test{image}.png"
    claim_outputs([path], overwrite)
    fig = explain_run(run, image, device)
    console.print(f"attention maps: {run.save_figure(path.stem, fig).resolve()}")


def ink_attention(
    run_dir: Path = typer.Argument(..., help="A run directory of a ViT classifier."),
    threshold: float = typer.Option(
        0.2, min=0.0, max=1.0, help="A patch is inked if a pixel is above this."
    ),
    overwrite: bool = typer.Option(False, help="Replace the figure if it exists."),
    device: str = DeviceOpt,
) -> None:
    """Over the test set: the share of the class token's attention on patches with ink, per layer
    and head and through rollout, against the share of inked patches."""
    from nnlab.tasks.classify import ink_attention as measure

    run = RunDir.open(run_dir)
    name = "ink_attention" + ("" if threshold == 0.2 else f"_t{threshold:g}")
    claim_outputs([run.figure_dir / f"{name}.png"], overwrite)  # never replaced unasked
    result, rows, fig = measure(run, threshold, device, name)
    console.print(
        table(
            rows,
            f"share of class-token attention on inked patches ({result['images']} test images); "
            f"inked patches {result['inked']:.3f}, rollout {result['rollout']:.3f}",
        )
    )
    console.print(f"figure: {run.save_figure(name, fig).resolve()}")


def register(app: typer.Typer) -> None:
    from nnlab.tasks.classify import ClassifyTask

    train = train_command(
        ClassifyTask,
        "classify",
        "Train a classifier (MLP, CNN, ViT) with the shared training loop; writes a run directory "
        "and its report.",
        shortcuts=(
            Shortcut(
                "patch",
                str,
                "ViT patch size: 7 (7x7) or HxW, e.g. 1x28 (image rows).",
                "vit",
                parse_patch,
            ),
        ),
    )
    classify = group("classify", "Image classification: digits, MNIST, NIST characters.")
    for target in (app, classify):
        target.command("train")(train)
        target.command("explain")(explain)
        target.command("ink-attention")(ink_attention)
    app.command("demo")(demo)
    app.add_typer(classify)
