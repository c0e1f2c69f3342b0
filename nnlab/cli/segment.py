"""`nnlab segment train | predict | explain | compare`: polyps in Kvasir-SEG, or your folder."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import (
    DeviceOpt,
    OutOpt,
    Shortcut,
    apply,
    config_params,
    console,
    group,
    launch,
    table,
    train_command,
)
from nnlab.errors import NNLabError
from nnlab.run import RunDir

SHORTCUTS = (
    Shortcut("base", int, "U-Net: channels of the first level (default 32).", "unet"),
    Shortcut("patch", int, "SegmentViT: patch size, a power of two (default 16).", "segvit"),
)


def predict(
    run_dir: Path = typer.Argument(..., help="A segmentation run directory."),
    images: list[Path] = typer.Argument(
        ..., help="Image files (jpg, png, ...) or folders of them."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default RUN_DIR/predictions)."
    ),
    overwrite: bool = typer.Option(False, help="Replace masks and overlays that exist already."),
    device: str = DeviceOpt,
) -> None:
    """Segment new images with a trained run: writes NAME_mask.png and NAME_overlay.png (names
    that never collide: a.jpg and a.png give a_jpg_mask.png and a_png_mask.png)."""
    from nnlab.data.segmentation import image_files
    from nnlab.io import writable_folder
    from nnlab.tasks.segment import predict_files

    run = RunDir.open(run_dir)
    files = []
    for path in images:  # a folder: its images
        if path.is_dir():
            found = image_files(path)
            if not found:
                raise NNLabError(f"{path}: a folder without images")
            files += found
        elif not path.is_file():
            raise NNLabError(f"{path}: no such image file")
        else:
            files.append(path)
    out = writable_folder(out or run.path / "predictions")  # before the work
    rows = predict_files(run, files, out, device, overwrite)
    console.print(table(rows, f"predicted with {run.path}"))


def explain(
    run_dir: Path = typer.Argument(..., help="A segvit run directory."),
    image: Optional[int] = typer.Option(
        None,
        "--image",
        min=0,
        help="Index of the test image (default: the best and the worst case).",
    ),
    overwrite: bool = typer.Option(False, help="Replace figures that exist already."),
    device: str = DeviceOpt,
) -> None:
    """SegmentViT attention: where the polyp's patches look, layer by layer, on a test image."""
    from nnlab.tasks.segment import explain_test_image

    path = explain_test_image(RunDir.open(run_dir), image, device, overwrite)
    console.print(f"attention maps: {path.resolve()}")


def compare_command():
    from nnlab.tasks.segment import SegmentCompare, SegmentConfig

    defaults = SegmentConfig()
    params = [
        inspect.Parameter(
            "models",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=str,
            default=typer.Option("unet,segvit", help="Comma-separated models to train."),
        ),
        inspect.Parameter(
            "base",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=int,
            default=typer.Option(32, min=1, help="U-Net: channels of the first level."),
        ),
        inspect.Parameter(
            "patch",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=int,
            default=typer.Option(16, min=2, help="SegmentViT: patch size, a power of two."),
        ),
    ]
    params += config_params(SegmentConfig, defaults, "Data", skip=("model", "init_from"))
    params += config_params(type(defaults.train), defaults.train, "Training")
    params.append(
        inspect.Parameter(
            "out", inspect.Parameter.KEYWORD_ONLY, default=OutOpt, annotation=Optional[Path]
        )
    )
    params.append(
        inspect.Parameter(
            "resume",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None,
                "--resume",
                help="Finish the comparison in this folder: the models that finished are kept, "
                "with the comparison's own options.",
            ),
            annotation=Optional[Path],
        )
    )

    def compare(
        models: str, base: int, patch: int, out: Optional[Path], resume: Optional[Path], **given
    ) -> None:
        if resume is not None:
            extra = [k for k, v in given.items() if v is not None] + (["out"] if out else [])
            if extra:
                raise NNLabError(
                    "--resume continues a comparison with its own options; drop "
                    + ", ".join("--" + e.replace("_", "-") for e in extra)
                )
            runner = SegmentCompare.from_run(RunDir.open(resume), console)
            launch(runner, "segment", None, resume, show=show_compare)
            return
        names = tuple(m.strip() for m in models.split(",") if m.strip())
        cfg = apply(defaults, {k: v for k, v in given.items() if v is not None})
        launch(
            SegmentCompare(
                cfg, names, {"unet": {"base": base}, "segvit": {"patch": patch}}, console
            ),
            "segment",
            out,
            show=show_compare,
        )

    compare.__signature__ = inspect.Signature(params)
    compare.__doc__ = (
        "Train several models with the same split, epochs and optimiser; compare them side by side."
    )
    return compare


def show_compare(runner, summary) -> None:
    console.print(table(summary["models"], "test split, best checkpoints (means over images)"))
    console.print(summary["observations"].strip())


def register(app: typer.Typer) -> None:
    from nnlab.tasks.segment import SegmentTask

    seg = group(
        "segment", "Segmentation (Kvasir-SEG polyps or your folder): train, predict, compare."
    )
    seg.command("train")(
        train_command(
            SegmentTask,
            "segment",
            "Train a U-Net or SegmentViT on BCE + lambda * Dice; "
            "report IoU/Dice and the test cases. "
            "With --init-from RUN: start from RUN's best weights, on its split, with its options "
            "unless given (e.g. train at --size 128, then continue at 256).",
            shortcuts=SHORTCUTS,
        )
    )
    seg.command("predict")(predict)
    seg.command("explain")(explain)
    seg.command("compare")(compare_command())
    app.add_typer(seg)
