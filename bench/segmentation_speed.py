"""Training cost of the segmentation models on this machine: forward + backward + AdamW step on a
batch of random images, per image (median of --repeats steps, min-max beside it), and what that
makes one Kvasir-SEG epoch (600 images).

    python bench/segmentation_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import torch
from timing import header, interleaved, median

from nnlab.models import build_model, count_parameters, model_config

CONFIGS = [
    ("unet", {"base": 16}, 128),
    ("unet", {"base": 16}, 256),
    ("unet", {"base": 32}, 256),
    ("segvit", {"patch": 8}, 128),
    ("segvit", {"patch": 16}, 256),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    header(f"segmentation training step, batch {args.batch}, median of {args.repeats} steps")
    print(
        "\n| model | px | parameters | ms / image (min-max) | min / 600-image epoch (model alone) |"
        "\n| --- | --- | --- | --- | --- |"
    )
    for name, options, size in CONFIGS:
        torch.manual_seed(0)
        if name == "segvit":
            options = {**options, "image_size": size}
        model = build_model(name, model_config(name, **options))
        opt = torch.optim.AdamW(model.parameters())
        x = torch.randn(args.batch, 3, size, size)

        def step(model=model, opt=opt, x=x):
            loss = model(x).float().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        t = [v / args.batch for v in interleaved({"step": step}, args.repeats, block=0.0)["step"]]
        label = ", ".join(f"{k} {v}" for k, v in options.items() if k != "image_size")
        print(
            f"| {name} {label} | {size} | {count_parameters(model):,} | "
            f"{median(t) * 1e3:.1f} ({min(t) * 1e3:.1f}-{max(t) * 1e3:.1f}) | "
            f"{median(t) * 600 / 60:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
