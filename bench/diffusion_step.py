"""Time one training step of the diffusion U-Net through the shared loop, variant by variant:
where a small model's step goes on a GPU, and which loop settings the long run should take.

    python bench/diffusion_step.py --batch-size 512 -m base=64 [--json FILE]
    python bench/diffusion_step.py --batch-size 64 --size 28 --variants fp32 "bf16 autocast"   # CPU

Variants (each a fresh Trainer on random 32x32 images, so no dataset is read):
    read 1 / read 25   the losses read back to the host every step (the loop before
                       RunningLosses: each read waits for the GPU) or every 25 steps (the loop's
                       default on a GPU). Predicted: a step costs host time + GPU time with a
                       read per step and about the larger of the two with one per 25;
    cudnn benchmark    cuDNN times its convolution algorithms once per shape and keeps the
                       fastest (a global switch: bench/diffusion.py --cudnn-benchmark);
    channels_last      NHWC layout (TrainConfig.channels_last);
    fp32 / bf16 autocast   the loop's precision where "auto" means fp32: the CPU (the default
                       variants there). bf16 pays on a CPU that multiplies in bf16 (AMX).
Variants run in rounds, every other round in reverse order, and each gets the median of its
rounds (run once each, one after the other, four variants came out slower in the order they ran,
twice on an H100: a drift of the machine, not of the variants). Each is timed by two runs of the
same loop (20 and 80 optimizer steps): their difference over 60 steps is the time of a step,
set-up and finish cancel. Prints a table (ms per step,
images/s) and, with --json, writes it and the fastest variant's settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from diffusion import add_model_arg
from torch.utils.data import TensorDataset

from nnlab.models import build_model
from nnlab.tasks.diffusion import DiffusionConfig, DiffusionTask
from nnlab.train import TrainConfig, Trainer

VARIANTS = {  # name: (read_every, cudnn benchmark, channels_last, precision)
    "read 1": (1, False, False, "auto"),
    "read 25": (25, False, False, "auto"),
    "read 25 + cudnn benchmark": (25, True, False, "auto"),
    "read 25 + cudnn benchmark + channels_last": (25, True, True, "auto"),
    "fp32": (1, False, False, "fp32"),
    "bf16 autocast": (1, False, False, "bf16"),
}
GPU_DEFAULT = [n for n in VARIANTS if n.startswith("read")]
CPU_DEFAULT = ["fp32", "bf16 autocast"]  # the CPU: nothing to wait for or tune but the precision


def loop_seconds(
    steps: int, read_every: int, channels_last: bool, args, precision: str = "auto"
) -> float:
    """Wall time of Trainer.fit over `steps` steps of one epoch (no validation, no samples)."""
    cfg = DiffusionConfig(
        data="mnist",
        sample_every=0,
        model_args=dict(args.model_arg),
        train=TrainConfig(
            epochs=1,
            batch_size=args.batch_size,
            lr=1e-4,
            ema=0.999,
            max_steps=steps,
            channels_last=channels_last,
            precision=precision,
            monitor="val/loss",
        ),
    )
    task = DiffusionTask(cfg, None)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.model_config(None))
    trainer = Trainer(model, task, cfg.train)
    trainer.read_every = read_every
    x = torch.rand(steps * args.batch_size, 1, args.size, args.size)
    data = TensorDataset(x, torch.zeros(len(x), dtype=torch.long))
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.fit(data)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=512)
    add_model_arg(ap)
    ap.add_argument("--size", type=int, default=32, help="image side (MNIST runs use 28)")
    ap.add_argument("--short", type=int, default=20, help="steps of the short run")
    ap.add_argument("--long", type=int, default=80, help="steps of the long run")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the variants (median)")
    ap.add_argument(
        "--variants",
        nargs="*",
        choices=list(VARIANTS),
        help="default: the read/cuDNN/layout ones on a GPU, fp32 and bf16 on the CPU",
    )
    ap.add_argument("--json", help="write the table and the fastest variant here")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    print(
        f"torch {torch.__version__}, "
        + (torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads")
        + f", batch {args.batch_size}, U-Net {dict(args.model_arg) or 'default'}"
    )
    loop_seconds(5, 25, False, args)  # one-time costs: CUDA context, first kernels
    names = args.variants or (GPU_DEFAULT if cuda else CPU_DEFAULT)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):  # interleaved: a drift of the machine (clocks, heat) hits all
        for name in names if r % 2 == 0 else names[::-1]:
            read_every, bench, channels_last, precision = VARIANTS[name]
            torch.backends.cudnn.benchmark = bench
            settings = (read_every, channels_last, args, precision)
            loop_seconds(5, *settings)  # this variant's algorithm search
            short = loop_seconds(args.short, *settings)
            long = loop_seconds(args.long, *settings)
            times[name].append(1000 * (long - short) / (args.long - args.short))
            print(f"  round {r + 1}, {name}: {times[name][-1]:.1f} ms per step", flush=True)
    rows = []
    for name, ms_all in times.items():
        ms = statistics.median(ms_all)
        rows.append(
            {
                "variant": name,
                "ms_per_step": ms,
                "ms_all": ms_all,
                "images_per_s": args.batch_size / ms * 1e3,
            }
        )
    print("\n| variant | ms per step (median) | each round | images/s |\n| --- | --- | --- | --- |")
    for r in rows:
        each = " / ".join(f"{m:.1f}" for m in r["ms_all"])
        print(f"| {r['variant']} | {r['ms_per_step']:.1f} | {each} | {r['images_per_s']:,.0f} |")
    best = min(rows, key=lambda r: r["ms_per_step"])
    read_every, bench, channels_last, precision = VARIANTS[best["variant"]]
    print(f"\nfastest: {best['variant']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "rows": rows,
                    "fastest": best["variant"],
                    "channels_last": channels_last,
                    "cudnn_benchmark": bench,
                    "precision": precision,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
