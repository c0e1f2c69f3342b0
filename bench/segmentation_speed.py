"""Training cost of the segmentation models on this machine: forward + backward + AdamW step on a
batch of random images, per image, and what that makes one Kvasir-SEG epoch (600 images).

    python bench/segmentation_speed.py
"""

from __future__ import annotations

import time

import torch

from nnlab.models import build_model, count_parameters, model_config

CONFIGS = [
    ("unet", {"base": 16}, 128),
    ("unet", {"base": 16}, 256),
    ("unet", {"base": 32}, 256),
    ("segvit", {"patch": 8}, 128),
    ("segvit", {"patch": 16}, 256),
]


def main(batch: int = 8, steps: int = 3) -> None:
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}, "
        f"best of {steps} steps"
    )
    print(
        f"{'model':8} {'options':14} {'px':>4} {'parameters':>11} {'ms / image':>11} "
        f"{'min / 600-image epoch':>22}"
    )
    for name, args, size in CONFIGS:
        torch.manual_seed(0)
        if name == "segvit":
            args = {**args, "image_size": size}
        model = build_model(name, model_config(name, **args))
        opt = torch.optim.AdamW(model.parameters())
        x = torch.randn(batch, 3, size, size)
        times = []
        for _ in range(steps + 1):  # the first step warms up
            t0 = time.perf_counter()
            loss = model(x).float().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        per_image = min(times[1:]) / batch
        options = ",".join(f"{k}={v}" for k, v in args.items() if k != "image_size")
        print(
            f"{name:8} {options:14} {size:>4} {count_parameters(model):>11,} "
            f"{per_image * 1000:>11.1f} "
            f"{per_image * 600 / 60:>22.2f}"
        )


if __name__ == "__main__":
    main()
