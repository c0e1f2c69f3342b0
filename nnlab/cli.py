"""The `nnlab` command. Each command is a thin layer: parse and validate arguments, call the library,
print a table. Bad input is an NNLabError or a usage error: one line on stderr, non-zero exit."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from nnlab.errors import NNLabError

app = typer.Typer(
    name="nnlab", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="nnlab: neural networks on images and signals -- implement, train on real data, verify, look.")
datasets_app = typer.Typer(no_args_is_help=True, help="List, download and verify datasets.")
app.add_typer(datasets_app, name="datasets")
numpy_app = typer.Typer(no_args_is_help=True, help="The from-scratch NumPy engine: train, sweep, experiments.")
app.add_typer(numpy_app, name="numpy")
conv_app = typer.Typer(no_args_is_help=True, help="Convolution made executable: properties, priors, DCT, filters.")
app.add_typer(conv_app, name="conv")
segment_app = typer.Typer(no_args_is_help=True, help="Segmentation (Kvasir-SEG polyps or your folder): train, predict, compare.")
app.add_typer(segment_app, name="segment")

# paths must not wrap; piped output (logs, CI) gets wide tables instead of rich's default 80 columns
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)

SeedOpt = typer.Option(0, "--seed", help="Random seed; the same seed gives the same run.")
DeviceOpt = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N.")
OutOpt = typer.Option(None, "--out", help="Run directory (default: runs/<name>-<timestamp>).")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
    return str(v)


def _table(rows: list[dict], title: str = "") -> Table:
    table = Table(title=title or None)
    for col, value in rows[0].items():
        numeric = isinstance(value, (int, float)) or col in ("error", "tolerance")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=col in ("fact", "file"),
                         min_width=min(len(col), 12))
    for r in rows:
        table.add_row(*(_fmt(v) for v in r.values()))
    return table


# ---- demo ---------------------------------------------------------------------------------------
@app.command()
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
    console.print(_table(rows, "nnlab demo: scikit-learn 8x8 digits, test split, best checkpoint"))
    console.print(f"report: {run.report_path.resolve()}")


# ---- train ----------------------------------------------------------------------------------------
def _parse_model_args(items: list[str]) -> dict:
    args = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NNLabError(f"--model-arg expects KEY=VALUE, got '{item}'")
        try:
            args[key] = json.loads(value)
        except json.JSONDecodeError:
            args[key] = value  # a bare string such as activation=gelu
    return args


def _patch(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise NNLabError(f"--patch expects P or HxW with positive integers (7, 1x28), got '{text}'")
    return (sizes[0], sizes[0]) if len(sizes) == 1 else sizes


TASKS = ("classify",)  # segmentation, diffusion, ... plug in here as their issues land


@app.command()
def train(
    task: str = typer.Option("classify", help=f"What to train: {', '.join(TASKS)}."),
    data: str = typer.Option("digits", help="Dataset: digits, mnist or nist."),
    model: str = typer.Option("mlp", help="Model: mlp or cnn."),
    model_arg: list[str] = typer.Option(
        [], "--model-arg", "-m", help="Model option KEY=VALUE (JSON value), e.g. -m 'hidden=[256,128]'."),
    patch: Optional[str] = typer.Option(None, help="ViT patch size: 7 (7x7) or HxW, e.g. 1x28 (image rows)."),
    augment: bool = typer.Option(False, help="Random affine augmentation of every training batch."),
    precision: str = typer.Option("auto", help="auto, bf16, fp16 or fp32 (mixed precision on CUDA only)."),
    epochs: int = typer.Option(10, min=1, help="Number of epochs."),
    batch_size: int = typer.Option(64, min=1, help="Mini-batch size."),
    lr: float = typer.Option(3e-3, help="Peak learning rate (> 0)."),
    weight_decay: float = typer.Option(1e-4, min=0, help="Weight decay (not on biases / norms)."),
    optimizer: str = typer.Option("adamw", help="adamw or sgd."),
    schedule: str = typer.Option("cosine", help="cosine or constant, after the warm-up."),
    warmup: float = typer.Option(0.0, min=0, help="Warm-up length in epochs."),
    grad_clip: float = typer.Option(1.0, min=0, help="Max gradient norm; 0 disables clipping."),
    patience: int = typer.Option(0, min=0, help="Early stopping patience in epochs; 0 = off."),
    val_fraction: float = typer.Option(0.1, help="Part of the training data held out for validation."),
    limit: int = typer.Option(0, min=0, help="Use only the first N training images (0 = all)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
    resume: Optional[Path] = typer.Option(
        None, help="Continue the run in this directory from its last checkpoint (its config is used)."),
) -> None:
    """Train a model with the shared training loop; writes a run directory and its report."""
    if task not in TASKS:
        raise NNLabError(f"unknown task '{task}' (known: {', '.join(TASKS)})")
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.classify import ClassifyConfig, load_classify_config, run_classify
    from nnlab.train import TrainConfig
    from nnlab.train.distributed import broadcast_object, finish_distributed, init_distributed

    rank, world = init_distributed()  # torchrun -m nnlab train ...: one process per device
    if rank != 0:
        global console
        console = Console(quiet=True)
    if resume is not None:
        run = RunDir.open(resume)
        cfg = load_classify_config(run)
    else:
        model_args = _parse_model_args(model_arg)
        if patch is not None:
            if model != "vit":
                raise NNLabError("--patch applies to --model vit only")
            model_args["patch"] = _patch(patch)
        cfg = ClassifyConfig(
            data=data, model=model, model_args=model_args, val_fraction=val_fraction, limit=limit,
            augment=augment,
            train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                              optimizer=optimizer, schedule=schedule, warmup_epochs=warmup,
                              grad_clip=grad_clip, patience=patience, monitor="val/acc",
                              precision=precision, seed=seed, device=device))
        # fail on bad arguments before a run directory is created
        cfg.train.validate()
        from nnlab.data.registry import get_info
        from nnlab.models import model_config
        from nnlab.train import resolve_device

        from nnlab.data import available_splits

        get_info(cfg.data, task="classify")
        model_config(cfg.model, **cfg.model_args)
        resolve_device(device)
        if not available_splits(cfg.data):
            raise NNLabError(f"{cfg.data}: no data files found; run `nnlab datasets fetch "
                             f"{cfg.data}` or set NNLAB_DATA to a folder that holds them")
        if not 0.0 < val_fraction < 0.5:
            raise NNLabError(f"--val-fraction must be in (0, 0.5), got {val_fraction}")
        fresh = out is None or not Path(out).exists()
        path = RunDir.create(f"{cfg.model}-{cfg.data}", out).path if rank == 0 else None
        run = RunDir(broadcast_object(path))
    try:
        summary = run_classify(cfg, run, console, resume=resume is not None)
    except KeyboardInterrupt:
        raise NNLabError(f"interrupted; resume with: nnlab train --resume {run.path}") from None
    except NNLabError:
        # failed before the first epoch finished (bad data, a model that does not fit it):
        # remove the empty run directory this command made
        if resume is None and fresh and rank == 0 and not run.metrics_path.exists():
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    if rank == 0:
        write_report(run)
        keys = ("model", "data", "parameters", "epochs", "best_epoch", "test/acc", "train_time_s")
        console.print(_table([{k: summary[k] for k in keys}], "test split, best checkpoint"))
        console.print(f"report: {run.report_path.resolve()}")
    finish_distributed()


# ---- explain -----------------------------------------------------------------------------------------
@app.command()
def explain(
    run_dir: Path = typer.Argument(..., help="A run directory of a ViT classifier."),
    image: int = typer.Option(0, "--image", min=0, help="Index of the test image."),
) -> None:
    """Attention maps of a trained ViT on one test image: every layer and head, and the rollout."""
    import torch

    from nnlab.data import load_splits
    from nnlab.models import build_model, model_config
    from nnlab.run import RunDir
    from nnlab.tasks.classify import explain_figure, load_classify_config
    from nnlab.train import load_checkpoint

    run = RunDir.open(run_dir)
    cfg = load_classify_config(run)
    if cfg.model != "vit":
        raise NNLabError(f"{run.path} trained a {cfg.model}; attention maps need a ViT run")
    raw = run.config()["model_config"]
    model = build_model("vit", model_config("vit", **raw))
    load_checkpoint(run.checkpoint_dir / "best.safetensors", model)
    test = load_splits(cfg.data, cfg.val_fraction, cfg.train.seed, cfg.limit)["test"]
    with torch.no_grad():
        path = run.save_figure(f"attention_test{image}", explain_figure(model, test, image))
    console.print(f"attention maps: {path.resolve()}")


# ---- report ----------------------------------------------------------------------------------------
@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Rebuild RUN_DIR/report.html from the run's files."""
    from nnlab.report import write_report
    from nnlab.run import RunDir

    console.print(f"report: {Path(write_report(RunDir.open(run_dir))).resolve()}")


# ---- facts ---------------------------------------------------------------------------------------
@app.command()
def facts(
    topic: Optional[str] = typer.Option(None, help="Only the facts of this topic."),
    name: Optional[str] = typer.Option(None, help="Only the fact with this name."),
    list_only: bool = typer.Option(False, "--list", help="List the facts without running them."),
) -> None:
    """Check every registered mathematical fact numerically; exit 1 if one fails."""
    from nnlab.facts import TOPICS, run_fact, select

    chosen = select(topic, name)
    if list_only:
        console.print(_table([{"fact": f.name, "topic": f.topic, "statement": f.statement}
                              for f in chosen] or [{"fact": "none"}], f"topics: {', '.join(TOPICS)}"))
        return
    rows, failed = [], 0
    for f in chosen:
        r = run_fact(f)
        failed += not r.passed
        rows.append({"fact": f.name, "statement": f.statement, "error": f"{r.error:.2e}",
                     "tolerance": f"{f.tol:.0e}", "result": "pass" if r.passed else "FAIL"})
    if rows:
        console.print(_table(rows, f"{len(rows) - failed} of {len(rows)} facts hold"))
    if failed:
        raise typer.Exit(1)


# ---- datasets --------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list() -> None:
    """The known datasets, their files and where each file was found."""
    from nnlab.data.registry import REGISTRY, cache_dir, locate

    table = Table(title=f"cache: {cache_dir()}")
    for col in ("dataset", "file", "found at", "description"):
        table.add_column(col)
    for info in REGISTRY.values():
        if not info.files:
            table.add_row(info.name, "(embedded)", "-", info.description)
        for i, f in enumerate(info.files):
            path = locate(info, f.name)
            table.add_row(info.name if i == 0 else "", f.name, str(path) if path else "missing",
                          info.description if i == 0 else "")
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    name: str = typer.Argument(..., help="Dataset name (see `nnlab datasets list`)."),
    mirror: Optional[str] = typer.Option(None, help="Base URL to download the files from instead."),
    force: bool = typer.Option(False, help="Download again even if a good copy is present."),
) -> None:
    """Download a dataset's files into the cache, verified by sha256 (skips files already present)."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)

    from nnlab.data.registry import fetch, get_info

    info = get_info(name)
    if not any(f.url for f in info.files):
        console.print(f"{name}: nothing to download ({'embedded' if not info.files else 'no public URL'})")
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as progress:
        def bar(f):
            task = progress.add_task(f.name, total=f.size)
            return lambda done, total: progress.update(task, completed=done, total=total)

        paths = fetch(name, mirror=mirror, force=force, progress=bar)
    for p in paths:
        console.print(f"ok  {p}")


@datasets_app.command("verify")
def datasets_verify(
    name: Optional[str] = typer.Argument(None, help="Dataset name; all datasets if omitted."),
) -> None:
    """Check the sha256 of every dataset file found; exit 1 on a mismatch."""
    from nnlab.data.registry import REGISTRY, get_info, verify

    names = [get_info(name).name] if name else list(REGISTRY)
    rows, bad = [], 0
    for n in names:
        for st in verify(n):
            if st.status == "missing" and st.file.optional:
                continue
            bad += st.status == "mismatch"
            rows.append({"dataset": n, "file": st.file.name, "status": st.status,
                         "path": str(st.path) if st.path else "-"})
    if rows:
        console.print(_table(rows))
    else:
        console.print("no dataset files found")
    if bad:
        raise NNLabError(f"{bad} file(s) do not match their checksum; fetch them again with --force")


# ---- numpy ---------------------------------------------------------------------------------------
def _hidden(text: str, option: str = "--hidden") -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise NNLabError(f"{option} expects comma-separated layer widths like 64 or 512,256, got '{text}'") from None
    if not sizes or min(sizes) < 1:
        raise NNLabError(f"{option} needs at least one width >= 1, got '{text}'")
    return sizes


def _numpy_config(data, hidden, activation, init, epochs, batch_size, lr, momentum, weight_decay,
                  schedule, augment, blur, val_fraction, folds, limit, seed, arch="mlp", channels="8,16"):
    from nnlab.data.registry import get_info
    from nnlab.tasks.numpy_classify import NumpyClassifyConfig

    get_info(data, task="classify")
    cfg = NumpyClassifyConfig(data=data, arch=arch, hidden=_hidden(hidden), channels=_hidden(channels, "--channels"),
                              activation=activation, init=init,
                              epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                              weight_decay=weight_decay, schedule=schedule, augment=augment, blur=blur,
                              val_fraction=val_fraction, folds=folds, limit=limit, seed=seed)
    cfg.validate()
    from nnlab.data import available_splits

    if not available_splits(data):
        raise NNLabError(f"{data}: no data files found; run `nnlab datasets fetch {data}` or set "
                         "NNLAB_DATA to a folder that holds them")
    return cfg


_np_opts = dict(
    data=typer.Option("digits", help="Dataset: digits, mnist or nist."),
    hidden=typer.Option("64", help="Hidden layer widths, comma-separated (64 or 512,256)."),
    activation=typer.Option("relu", help="relu, sigmoid or tanh."),
    init=typer.Option("", help="xavier, he or zero (default: he for relu, xavier otherwise)."),
    epochs=typer.Option(50, min=1, help="Number of epochs."),
    batch_size=typer.Option(32, min=1, help="Mini-batch size."),
    lr=typer.Option(0.05, help="Learning rate (> 0)."),
    momentum=typer.Option(0.9, min=0, max=1, help="SGD momentum."),
    weight_decay=typer.Option(0.0, min=0, help="L2 weight decay."),
    schedule=typer.Option("cosine", help="cosine or constant learning rate over the epochs."),
    augment=typer.Option(False, help="Random affine augmentation of the training images."),
    blur=typer.Option(0.0, min=0, help="Gaussian blur sigma on every input (pixels)."),
    val_fraction=typer.Option(0.1, help="Validation part of the training data (0 = none)."),
    folds=typer.Option(0, min=0, help="k-fold cross-validation over all the data (0 = off)."),
    limit=typer.Option(0, min=0, help="Use only the first N training images (0 = all)."),
)


@numpy_app.command("train")
def numpy_train(
    data: str = _np_opts["data"], hidden: str = _np_opts["hidden"],
    activation: str = _np_opts["activation"], init: str = _np_opts["init"],
    epochs: int = _np_opts["epochs"], batch_size: int = _np_opts["batch_size"],
    lr: float = _np_opts["lr"], momentum: float = _np_opts["momentum"],
    weight_decay: float = _np_opts["weight_decay"], schedule: str = _np_opts["schedule"],
    augment: bool = _np_opts["augment"], blur: float = _np_opts["blur"],
    val_fraction: float = _np_opts["val_fraction"], folds: int = _np_opts["folds"],
    limit: int = _np_opts["limit"], seed: int = SeedOpt, out: Optional[Path] = OutOpt,
    arch: str = typer.Option("mlp", help="mlp, or cnn: [conv3x3-relu-maxpool] per --channels entry, linear."),
    channels: str = typer.Option("8,16", help="CNN channel widths, comma-separated."),
    resume: Optional[Path] = typer.Option(None, help="Continue this run from its last checkpoint."),
) -> None:
    """Train an MLP with the NumPy engine (manual backprop, SGD with momentum); with --folds k,
    k-fold cross-validation with one child run per fold."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.numpy_classify import load_numpy_config, run_numpy_classify, run_numpy_cv

    if resume is not None:
        run = RunDir.open(resume)
        cfg = load_numpy_config(run)
        summary = run_numpy_classify(cfg, run, console, resume=True)
    else:
        cfg = _numpy_config(data, hidden, activation, init, epochs, batch_size, lr, momentum,
                            weight_decay, schedule, augment, blur, val_fraction, folds, limit, seed,
                            arch, channels)
        run = RunDir.create(f"numpy-{cfg.arch}-{cfg.data}", out)
        if cfg.folds:
            summary = run_numpy_cv(cfg, run, console)
        else:
            summary = run_numpy_classify(cfg, run, console)
    write_report(run)
    if "folds" in summary:
        console.print(_table(summary["folds"], f"{cfg.folds}-fold cross-validation"))
        console.print(f"mean test accuracy {summary['test/acc']:.4f} ± {summary['test/acc_sd']:.4f}")
    else:
        keys = ("data", "parameters", "epochs", "test/acc", "train_time_s")
        console.print(_table([{k: summary[k] for k in keys}], "NumPy engine, test split"))
        pairs = ", ".join(f"{p['true']}→{p['predicted']} ({p['count']})" for p in summary["most_confused"][:5])
        console.print(f"most confused (true→predicted): {pairs or 'none'}")
    console.print(f"report: {run.report_path.resolve()}")


@numpy_app.command("sweep-lr")
def numpy_sweep_lr(
    data: str = _np_opts["data"], hidden: str = _np_opts["hidden"],
    activation: str = _np_opts["activation"], epochs: int = _np_opts["epochs"],
    batch_size: int = _np_opts["batch_size"], lr: float = _np_opts["lr"],
    momentum: float = _np_opts["momentum"], val_fraction: float = _np_opts["val_fraction"],
    limit: int = _np_opts["limit"], seed: int = SeedOpt, out: Optional[Path] = OutOpt,
) -> None:
    """Train at LR, 10 x LR and LR / 10 and plot the three loss and accuracy curves together."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.numpy_classify import run_lr_sweep

    cfg = _numpy_config(data, hidden, activation, "", epochs, batch_size, lr, momentum, 0.0,
                        "constant", False, 0.0, val_fraction, 0, limit, seed)
    if cfg.val_fraction == 0:
        raise NNLabError("sweep-lr compares validation curves; --val-fraction must be > 0")
    run = RunDir.create(f"numpy-sweep-lr-{cfg.data}", out)
    rows = run_lr_sweep(cfg, run, console)
    write_report(run)
    console.print(_table(rows, "learning-rate sweep (validation accuracy)"))
    console.print(f"report: {run.report_path.resolve()}")


@numpy_app.command("gradient-flow")
def numpy_gradient_flow(
    depth: int = typer.Option(20, min=2, max=200, help="Number of hidden layers."),
    steps: int = typer.Option(50, min=0, help="SGD steps before the second measurement."),
    seed: int = SeedOpt, out: Optional[Path] = OutOpt,
) -> None:
    """Per-layer gradient norms of a deep MLP with and without skip connections (sigmoid, tanh, relu)."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.numpy_experiments import gradient_flow, gradient_flow_figure, gradient_flow_rows

    run = RunDir.create("numpy-gradient-flow", out)
    run.save_config({"task": "numpy-gradient-flow", "depth": depth, "steps": steps, "seed": seed})
    results = gradient_flow(depth=depth, steps=steps, seed=seed)
    rows = gradient_flow_rows(results)
    run.save_summary({"gradient_flow": rows})
    run.save_figure("gradient_flow", gradient_flow_figure(results, steps))
    write_report(run)
    console.print(_table(rows, f"{depth}-layer MLP on digits: gradient norm ratio, first / last hidden layer"))
    console.print(f"report: {run.report_path.resolve()}")


@numpy_app.command("least-squares")
def numpy_least_squares(seed: int = SeedOpt, out: Optional[Path] = OutOpt) -> None:
    """Fit y = b0 + b1 x on (x, y) ~ N(0, [[1, c], [c, 1]]): closed form and gradient descent give b1 = c."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.numpy_experiments import least_squares_experiment, least_squares_figure

    run = RunDir.create("numpy-least-squares", out)
    run.save_config({"task": "numpy-least-squares", "seed": seed})
    rows = least_squares_experiment(seed=seed)
    run.save_summary({"least_squares": rows})
    run.save_figure("least_squares", least_squares_figure(rows))
    write_report(run)
    console.print(_table(rows, "least squares: fitted slope b1 vs the true c"))
    console.print(f"report: {run.report_path.resolve()}")


@numpy_app.command("perceptron")
def numpy_perceptron(max_epochs: int = typer.Option(100, min=1, help="Epochs before giving up.")) -> None:
    """The perceptron rule on the logic gates: it learns NAND, AND, OR, NOR, and never XOR."""
    import numpy as np

    from nnlab.numpy_nn.perceptron import INPUTS, TRUTH_TABLES, Perceptron

    rows = []
    for gate, t in TRUTH_TABLES.items():
        p = Perceptron()
        converged, epochs = p.fit(INPUTS, t, max_epochs=max_epochs)
        rows.append({"gate": gate, "truth table": "".join(map(str, t)), "converged": str(converged),
                     "epochs": epochs, "w": f"({p.w[0]:g}, {p.w[1]:g})", "b": f"{p.b:g}",
                     "learnt": "".join(map(str, p.predict(INPUTS)))})
    console.print(_table(rows, "perceptron rule, inputs (0,0) (0,1) (1,0) (1,1)"))
    nand = Perceptron(np.array([-2.0, -2.0]), 3.0)
    console.print(f"hand-chosen NAND w = (-2, -2), b = 3 gives {nand.predict(INPUTS).tolist()}")


# ---- conv ----------------------------------------------------------------------------------------
@conv_app.command("properties")
def conv_properties(seed: int = SeedOpt, out: Optional[Path] = OutOpt) -> None:
    """Equivariance (and where it fails), stride as subsampling, pooling, parameter counts, DCT basis."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks import conv_experiments as ce

    run = RunDir.create("conv-properties", out)
    run.save_config({"task": "conv-properties", "seed": seed})
    commute = [{"transform g": k, "|conv(g(x)) - g(conv(x))| / |g(conv(x))|": v}
               for k, v in ce.transform_commutation(seed).items()]
    pooling = ce.maxpool_shift_stability(seed)
    shifts = [{"shift (px)": s, "conv features": pooling["conv features"][i],
               "max pool 2x2": pooling["max pool 2x2"][i]} for i, s in enumerate(range(len(pooling["conv features"])))]
    params = ce.conv_vs_dense_parameters()
    run.save_summary({"commutation": commute, "relative change under shifts": shifts, "parameters": params})
    run.save_figure("equivariance", ce.equivariance_figure(seed))
    run.save_figure("stride", ce.stride_figure(seed))
    run.save_figure("pooling", ce.pooling_figure(pooling))
    run.save_figure("dct_basis", ce.dct_basis_figure(8))
    write_report(run)
    console.print(_table(commute, "does convolution commute with g?"))
    console.print(_table(shifts, "relative change of the output when the input shifts"))
    console.print(_table(params, "parameters: conv layer vs fully connected layer, same input and output"))
    console.print(f"report: {run.report_path.resolve()}")


@conv_app.command("prior")
def conv_prior(
    data: str = typer.Option("digits", help="digits (16x16 on a 32x32 canvas) or mnist (28x28 on 56x56)."),
    epochs: int = typer.Option(20, min=1, help="Epochs per model and task."),
    train_size: int = typer.Option(4000, "--train", min=10, help="Training images per task."),
    test_size: int = typer.Option(1000, "--test", min=10, help="Test images per task."),
    seed: int = SeedOpt, device: str = DeviceOpt, out: Optional[Path] = OutOpt,
) -> None:
    """When the prior is wrong: conv + global pooling vs an MLP on 'where is the digit?' and on
    'which digit?' with training digits on the left and test digits on the right."""
    from nnlab.data import available_splits
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks import conv_experiments as ce
    from nnlab.train import resolve_device

    if data not in ("digits", "mnist"):
        raise NNLabError(f"--data must be digits or mnist, got '{data}'")
    resolve_device(device)
    if not available_splits(data):
        raise NNLabError(f"{data}: no data files found; run `nnlab datasets fetch {data}`")
    train, test, canvas = ce.prior_data(data, seed)
    run = RunDir.create("conv-prior", out)
    run.save_config({"task": "conv-prior", "data": data, "epochs": epochs, "train": train_size,
                     "test": test_size, "seed": seed, "canvas": canvas})
    run.save_figure("tasks", ce.prior_examples_figure(train, test, canvas, seed))
    with console.status("training 2 models x 2 tasks"):
        rows = ce.prior_experiment(train, test, canvas, train_size, test_size, epochs, seed, device)
    run.save_summary({"accuracy": rows})
    write_report(run)
    console.print(_table(rows, f"test accuracy, {data} on a {canvas}x{canvas} canvas"))
    console.print(f"report: {run.report_path.resolve()}")


@conv_app.command("filters")
def conv_filters(
    data: str = typer.Option("mnist", help="mnist (28x28; 7x7 filters need room) or nist."),
    epochs: int = typer.Option(3, min=1, help="Epochs."),
    limit: int = typer.Option(20000, min=0, help="Training images (0 = all)."),
    seed: int = SeedOpt, device: str = DeviceOpt, out: Optional[Path] = OutOpt,
) -> None:
    """Train a small CNN with 7x7 first-layer filters and show them beside a Gabor filter bank."""
    from nnlab.data import available_splits
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.classify import ClassifyConfig, run_classify
    from nnlab.train import TrainConfig, resolve_device

    if data not in ("mnist", "nist"):
        raise NNLabError(f"--data must be mnist or nist (images large enough for 7x7 filters), got '{data}'")
    resolve_device(device)
    if not available_splits(data):
        raise NNLabError(f"{data}: no data files found; run `nnlab datasets fetch {data}`")
    cfg = ClassifyConfig(data=data, model="cnn", limit=limit,
                         model_args={"first_kernel": 7, "first_init_scale": 0.05, "channels": (16, 32)},
                         train=TrainConfig(epochs=epochs, lr=3e-3, seed=seed, device=device, monitor="val/acc"))
    run = RunDir.create(f"conv-filters-{data}", out)
    summary = run_classify(cfg, run, console)
    write_report(run)
    console.print(f"test accuracy {summary['test/acc']:.4f}; filters: {run.figure_dir / 'first_layer_filters.png'}")
    console.print(f"report: {run.report_path.resolve()}")


# ---- segment ---------------------------------------------------------------------------------------
SegDataOpt = typer.Option("kvasir", "--data", help="kvasir, or a folder holding images/ and masks/ (same names).")
SegSizeOpt = typer.Option(256, "--size", min=16, help="Images are resized to SIZE x SIZE (128 for quick runs).")
SegAspectOpt = typer.Option("pad", "--aspect", help="pad (to a square, keeps the aspect ratio) or stretch.")
LambdaOpt = typer.Option(1.0, "--lambda-dice", min=0, help="Loss = BCE + LAMBDA * Dice loss.")
SegAugmentOpt = typer.Option(True, "--augment/--no-augment", help="Flips, rotations, scaling, colour jitter.")
SegEpochsOpt = typer.Option(40, "--epochs", min=1, help="Number of epochs.")
SegBatchOpt = typer.Option(8, "--batch-size", min=1, help="Mini-batch size.")
SegLrOpt = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW, cosine, 1 warm-up epoch).")
SplitSeedOpt = typer.Option(0, "--split-seed", help="Seed of the fixed 60/20/20 train/val/test split.")
SegLimitOpt = typer.Option(0, "--limit", min=0, help="Use only N images of each split (0 = all).")
BaseOpt = typer.Option(None, "--base", min=1, help="U-Net: channels of the first level (default 32).")
SegPatchOpt = typer.Option(None, "--patch", min=2, help="SegmentViT: patch size, a power of two (default 16).")
PrecisionOpt = typer.Option("auto", "--precision", help="auto, bf16, fp16 or fp32 (mixed precision on CUDA only).")


def _segment_config(data, model, model_arg, base, patch, size, aspect, lambda_dice, augment, epochs,
                    batch_size, lr, split_seed, limit, precision, seed, device, init_from=None):
    from nnlab.tasks.segment import SegmentConfig, check_config, data_root
    from nnlab.train import TrainConfig, resolve_device

    model_args = _parse_model_args(model_arg)
    if init_from is not None:  # continue another run: its model, options and split unless told otherwise
        from nnlab.run import RunDir
        from nnlab.tasks.segment import load_segment_config

        src = load_segment_config(RunDir.open(init_from))
        model = model or src.model
        if model == src.model and not model_args and base is None and patch is None:
            model_args = dict(src.model_args)
        split_seed, limit = src.split_seed, src.limit
    model = model or "unet"
    if base is not None:
        if model != "unet":
            raise NNLabError("--base applies to --model unet only")
        model_args["base"] = base
    if patch is not None:
        if model != "segvit":
            raise NNLabError("--patch applies to --model segvit only")
        model_args["patch"] = patch
    cfg = SegmentConfig(data=data, model=model, model_args=model_args, size=size, aspect=aspect,
                        lambda_dice=lambda_dice, augment=augment, split_seed=split_seed, limit=limit,
                        init_from=str(Path(init_from).absolute()) if init_from is not None else "",
                        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=1.0,
                                          monitor="val/dice", precision=precision, seed=seed, device=device))
    check_config(cfg)  # fail on bad arguments before a run directory is created
    resolve_device(device)
    data_root(data)
    return cfg


@segment_app.command("train")
def segment_train(
    data: str = SegDataOpt,
    model: Optional[str] = typer.Option(None, help="unet or segvit (default: unet, or the --init-from run's)."),
    model_arg: list[str] = typer.Option([], "--model-arg", "-m", help="Model option KEY=VALUE, e.g. -m depth=3."),
    base: Optional[int] = BaseOpt,
    patch: Optional[int] = SegPatchOpt,
    size: int = SegSizeOpt,
    aspect: str = SegAspectOpt,
    lambda_dice: float = LambdaOpt,
    augment: bool = SegAugmentOpt,
    epochs: int = SegEpochsOpt,
    batch_size: int = SegBatchOpt,
    lr: float = SegLrOpt,
    split_seed: int = SplitSeedOpt,
    limit: int = SegLimitOpt,
    precision: str = PrecisionOpt,
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
    resume: Optional[Path] = typer.Option(
        None, help="Continue the run in this directory from its last checkpoint (its config and split)."),
    init_from: Optional[Path] = typer.Option(
        None, "--init-from", help="Start from the best weights of this finished run, on its split (e.g. "
        "train at --size 128, then continue at 256). Its model and options unless given."),
) -> None:
    """Train a U-Net or SegmentViT on BCE + lambda * Dice; report IoU/Dice and the test cases."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.segment import load_segment_config, run_segment
    from nnlab.train.distributed import broadcast_object, finish_distributed, init_distributed

    if resume is not None and init_from is not None:
        raise NNLabError("--resume continues a run with its own config, --init-from starts a new one: give one of them")
    rank, _ = init_distributed()  # torchrun -m nnlab segment train ...: one process per device
    if rank != 0:
        global console
        console = Console(quiet=True)
    if resume is not None:
        run = RunDir.open(resume)
        cfg = load_segment_config(run)
        fresh = False
    else:
        cfg = _segment_config(data, model, model_arg, base, patch, size, aspect, lambda_dice, augment, epochs,
                              batch_size, lr, split_seed, limit, precision, seed, device, init_from)
        fresh = out is None or not Path(out).exists()
        path = RunDir.create(f"{cfg.model}-{Path(cfg.data).name}{cfg.size}", out).path if rank == 0 else None
        run = RunDir(broadcast_object(path))
    try:
        summary = run_segment(cfg, run, console, resume=resume is not None)
    except KeyboardInterrupt:
        raise NNLabError(f"interrupted; resume with: nnlab segment train --resume {run.path}") from None
    except NNLabError:
        if fresh and rank == 0 and not run.metrics_path.exists():
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    if rank == 0:
        write_report(run)
        keys = ("model", "size", "parameters", "epochs", "best_epoch", "test/iou", "test/dice", "test/missed",
                "train_time_s")
        console.print(_table([{k: summary[k] for k in keys}], "test split, best checkpoint (means over images)"))
        console.print(f"test cases: {run.figure_dir / 'test_cases.png'}")
        console.print(f"report: {run.report_path.resolve()}")
    finish_distributed()


@segment_app.command("predict")
def segment_predict(
    run_dir: Path = typer.Argument(..., help="A segmentation run directory."),
    images: list[Path] = typer.Argument(..., help="Image files (jpg, png, ...)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default RUN_DIR/predictions)."),
    device: str = DeviceOpt,
) -> None:
    """Segment new images with a trained run: writes NAME_mask.png and NAME_overlay.png."""
    from nnlab.run import RunDir
    from nnlab.tasks.segment import predict_files

    run = RunDir.open(run_dir)
    for path in images:
        if not path.is_file():
            raise NNLabError(f"{path}: no such image file")
    rows = predict_files(run, images, out or run.path / "predictions", device)
    console.print(_table(rows, f"predicted with {run.path}"))


@segment_app.command("explain")
def segment_explain(
    run_dir: Path = typer.Argument(..., help="A segvit run directory."),
    image: Optional[int] = typer.Option(None, "--image", min=0,
                                        help="Index of the test image (default: the best and the worst case)."),
    device: str = DeviceOpt,
) -> None:
    """SegmentViT attention: where the polyp's patches look, layer by layer, on a test image."""
    from nnlab.run import RunDir
    from nnlab.tasks.segment import explain_test_image

    path = explain_test_image(RunDir.open(run_dir), image, device)
    console.print(f"attention maps: {path.resolve()}")


@segment_app.command("compare")
def segment_compare(
    data: str = SegDataOpt,
    models: str = typer.Option("unet,segvit", help="Comma-separated models to train."),
    base: int = typer.Option(32, "--base", min=1, help="U-Net: channels of the first level."),
    patch: int = typer.Option(16, "--patch", min=2, help="SegmentViT: patch size, a power of two."),
    size: int = SegSizeOpt,
    aspect: str = SegAspectOpt,
    lambda_dice: float = LambdaOpt,
    augment: bool = SegAugmentOpt,
    epochs: int = SegEpochsOpt,
    batch_size: int = SegBatchOpt,
    lr: float = SegLrOpt,
    split_seed: int = SplitSeedOpt,
    limit: int = SegLimitOpt,
    precision: str = PrecisionOpt,
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    out: Optional[Path] = OutOpt,
) -> None:
    """Train several models with the same split, epochs and optimiser; compare them side by side."""
    from nnlab.report import write_report
    from nnlab.run import RunDir
    from nnlab.tasks.segment import SEG_MODELS, run_compare

    names = tuple(m.strip() for m in models.split(",") if m.strip())
    unknown = [m for m in names if m not in SEG_MODELS]
    if not names or unknown or len(set(names)) != len(names):
        raise NNLabError(f"--models expects distinct names from {', '.join(SEG_MODELS)}, got '{models}'")
    per_model = {"unet": {"base": base}, "segvit": {"patch": patch}}
    cfg = None
    for name in names:
        cfg = _segment_config(data, name, [], base if name == "unet" else None,
                              patch if name == "segvit" else None, size, aspect, lambda_dice, augment,
                              epochs, batch_size, lr, split_seed, limit, precision, seed, device)
    run = RunDir.create(f"compare-{Path(data).name}{size}", out)
    try:
        summary = run_compare(cfg, run, names, {m: per_model[m] for m in names}, console)
    except KeyboardInterrupt:
        raise NNLabError(f"interrupted; the finished models are in {run.path}") from None
    write_report(run)
    console.print(_table(summary["models"], "test split, best checkpoints (means over images)"))
    console.print(summary["observations"].strip())
    console.print(f"report: {run.report_path.resolve()}")


# ---- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn user errors into one line on stderr and an exit code (1, usage 2)."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="nnlab", standalone_mode=False)
    except NNLabError as e:
        print(f"nnlab: error: {e}", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as e:  # usage errors: bad option, bad value, unknown command
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message())
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "nnlab"
        print(f"{where}: error: {e.format_message()} (see --help)", file=sys.stderr)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("nnlab: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
