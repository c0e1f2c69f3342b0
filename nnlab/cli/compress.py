"""`nnlab compress`: PCA, the NumPy MLP autoencoder, a conv autoencoder (and its denoising
variant) and JPEG on held-out images; every option comes from CompressConfig."""

from __future__ import annotations

import typer

from nnlab.cli.common import console, table, train_command


def show(runner, summary) -> None:
    from nnlab.tasks.compress import table_rows

    console.print(
        table(table_rows(summary), f"{summary['data']}, {summary['test_images']} held-out images")
    )
    for r in summary["rows"]:
        if r["code"] == summary["code"] and r.get("parameter_formula"):
            console.print(f"{r['method']} parameters: {r['parameter_formula']}")
        if r["code"] == summary["code"] and "psnr_from_noisy" in r:
            console.print(
                f"{r['method']}: {r['psnr_from_noisy']:.2f} dB from noisy inputs "
                f"(sigma {runner.cfg.noise:g}), scored against the clean images"
            )
    console.print(f"wall time {summary['wall_s']:.0f} s")


def register(app: typer.Typer) -> None:
    from nnlab.tasks.compress import Compress

    app.command("compress")(
        train_command(
            Compress,
            "compress",
            "Compress held-out images with PCA, the NumPy MLP autoencoder, a conv autoencoder "
            "(and its denoising variant) and JPEG; compare PSNR, SSIM, parameters and bytes.",
            show=show,
        )
    )
