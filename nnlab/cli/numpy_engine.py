"""`nnlab numpy train | sweep-lr | gradient-flow | least-squares | perceptron | wiener | init`:
the from-scratch NumPy engine. Nothing here (nor in what it calls) imports torch."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import OutOpt, SeedOpt, apply, config_params, console, group, new_run, table

SWEEP_FIELDS = (
    "data",
    "hidden",
    "activation",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "val_fraction",
    "limit",
    "seed",
)


def show_train(runner, summary) -> None:
    if "folds" in summary:
        console.print(table(summary["folds"], f"{runner.cfg.folds}-fold cross-validation"))
        console.print(
            f"mean test accuracy {summary['test/acc']:.4f} ± {summary['test/acc_sd']:.4f}"
        )
        return
    keys = ("data", "parameters", "epochs", "test/acc", "train_time_s")
    console.print(table([{k: summary[k] for k in keys}], "NumPy engine, test split"))
    pairs = ", ".join(
        f"{p['true']}→{p['predicted']} ({p['count']})" for p in summary["most_confused"][:5]
    )
    console.print(f"most confused (true→predicted): {pairs or 'none'}")


def sweep_command():
    from nnlab.tasks.numpy_classify import NumpyClassifyConfig

    defaults = dataclasses.replace(NumpyClassifyConfig(), schedule="constant")
    skip = tuple(
        f.name for f in dataclasses.fields(NumpyClassifyConfig) if f.name not in SWEEP_FIELDS
    )

    def sweep_lr(out: Optional[Path], **given) -> None:
        from nnlab.errors import NNLabError
        from nnlab.tasks.numpy_classify import run_lr_sweep

        cfg = apply(defaults, {k: v for k, v in given.items() if v is not None})
        cfg.check()
        if cfg.val_fraction == 0:
            raise NNLabError("sweep-lr compares validation curves; --val-fraction must be > 0")
        with new_run(f"numpy-sweep-lr-{cfg.data}", out) as run:
            rows = run_lr_sweep(cfg, run, console)
        console.print(table(rows, "learning-rate sweep (validation accuracy)"))
        console.print(f"report: {run.report_path.resolve()}")

    import inspect

    params = config_params(NumpyClassifyConfig, defaults, "Options", skip=skip)
    params.append(
        inspect.Parameter(
            "out", inspect.Parameter.KEYWORD_ONLY, default=OutOpt, annotation=Optional[Path]
        )
    )
    sweep_lr.__signature__ = inspect.Signature(params)
    sweep_lr.__doc__ = (
        "Train at LR, 10 x LR and LR / 10 (constant rate) and plot the three curves together."
    )
    return sweep_lr


def gradient_flow(
    depth: int = typer.Option(20, min=2, max=200, help="Number of hidden layers."),
    steps: int = typer.Option(50, min=0, help="SGD steps before the second measurement."),
    seed: int = SeedOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Per-layer gradient norms of a deep MLP with and without skip connections
    (sigmoid, tanh, relu)."""
    from nnlab.tasks.numpy_experiments import run_gradient_flow

    with new_run("numpy-gradient-flow", out) as run:
        rows = run_gradient_flow(run, depth, steps, seed)
    console.print(
        table(rows, f"{depth}-layer MLP on digits: gradient norm ratio, first / last hidden layer")
    )
    console.print(f"report: {run.report_path.resolve()}")


def least_squares(seed: int = SeedOpt, out: Optional[Path] = OutOpt) -> None:
    """Fit y = b0 + b1 x on (x, y) ~ N(0, [[1, c], [c, 1]]): closed form and gradient descent
    give b1 = c."""
    from nnlab.tasks.numpy_experiments import run_least_squares

    with new_run("numpy-least-squares", out) as run:
        rows = run_least_squares(run, seed)
    console.print(table(rows, "least squares: fitted slope b1 vs the true c"))
    console.print(f"report: {run.report_path.resolve()}")


def wiener(
    epochs: int = typer.Option(60, min=1, help="SGD epochs of the neuron and the MLP."),
    seed: int = SeedOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Estimate a signal from 8 noisy readings: the Wiener filter (closed form), one linear neuron
    and a one-hidden-layer MLP trained by SGD, for a linear and a squaring sensor."""
    from nnlab.tasks.numpy_experiments import run_wiener

    with new_run("numpy-wiener", out) as run:
        rows = run_wiener(run, epochs, seed)
    console.print(table(rows, "test MSE of x_t from the last 8 readings"))
    console.print(f"report: {run.report_path.resolve()}")


def init(
    depth: int = typer.Option(20, min=1, max=200, help="Linear layers, 256 wide."),
    seed: int = SeedOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Activation variance layer by layer for Xavier, N(0, 1) and N(0, 0.01^2) weights."""
    from nnlab.tasks.numpy_experiments import run_init

    with new_run("numpy-init", out) as run:
        rows = run_init(run, depth, seed)
    console.print(table(rows, "activation variance after each layer (input variance 1)"))
    console.print(f"report: {run.report_path.resolve()}")


def perceptron(max_epochs: int = typer.Option(100, min=1, help="Epochs before giving up.")) -> None:
    """The perceptron rule on the logic gates: it learns NAND, AND, OR, NOR, and never XOR."""
    import numpy as np

    from nnlab.numpy_nn.perceptron import INPUTS, Perceptron
    from nnlab.tasks.numpy_experiments import perceptron_rows

    console.print(
        table(perceptron_rows(max_epochs), "perceptron rule, inputs (0,0) (0,1) (1,0) (1,1)")
    )
    nand = Perceptron(np.array([-2.0, -2.0]), 3.0)
    console.print(f"hand-chosen NAND w = (-2, -2), b = 3 gives {nand.predict(INPUTS).tolist()}")


def register(app: typer.Typer) -> None:
    from nnlab.cli.common import train_command
    from nnlab.tasks.numpy_classify import NumpyClassify

    np_app = group("numpy", "The from-scratch NumPy engine: train, sweep, experiments.")
    np_app.command("train")(
        train_command(
            NumpyClassify,
            "numpy",
            "Train an MLP or CNN with the NumPy engine (manual backprop, SGD with momentum); with "
            "--folds k, k-fold cross-validation with one child run per fold.",
            show=show_train,
        )
    )
    np_app.command("sweep-lr")(sweep_command())
    np_app.command("gradient-flow")(gradient_flow)
    np_app.command("least-squares")(least_squares)
    np_app.command("perceptron")(perceptron)
    np_app.command("wiener")(wiener)
    np_app.command("init")(init)
    app.add_typer(np_app)
