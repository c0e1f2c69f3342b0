"""DDPM on MNIST within a CPU budget, scored offline by nnlab's own classifier (not Inception FID).

    NNLAB_DATA=../shared/data python bench/diffusion.py --out runs/bench-diffusion

1. trains the eps-objective U-Net (= nnlab diffusion train --data mnist --epochs 10
   --batch-size 64 --lr 5e-4 --budget-min 60 --sample-every 2), or reuses --eps-run;
2. scores 5000 DDIM-50 samples beside the floor (real test images) and the PCA-Gaussian baseline
   (= nnlab diffusion evaluate RUN --n 5000), and checks the issue's targets;
3. DDPM-1000 vs DDIM-50 on the same model, 1000 samples each: own-feature FD and sampling time;
4. eps vs x0 objective at an equal budget: trains the x0 run the same way (or reuses --x0-run),
   DDIM-50, 1000 samples each.

On a GPU, --fit-min M picks the number of epochs that fills about M minutes of training: after a
discarded warm-up probe it times two short probe runs (40 and up to 240 steps, one epoch at most;
their difference, set-up and finish cancel) and divides by the steps they differ by. Both
objectives then train for the same epochs (bench/gpu_run.sh runs this with the GPU check):

    python bench/diffusion.py --fit-min 2 --batch-size 512 --lr 1e-3 -m base=64 --out runs/gpu

On a CPU that multiplies in bf16 (AMX: `lscpu | grep amx`), --precision bf16 takes a step in half
the time; the hour of docs/RESULTS.md's bf16 row:

    NNLAB_DATA=../shared/data python bench/diffusion.py --precision bf16 --fit-min 55 --skip x0 ddpm

The hour that meets the FD target: a class-conditional U-Net sampled with classifier-free
guidance 0.25 (the labels of the samples drawn from the training set's class shares):

    NNLAB_DATA=../shared/data python bench/diffusion.py --precision bf16 --epochs 14 \
        --skip x0 ddpm --conditional --guidance 0.25 --sample-precision bf16 --out runs/cond

Tables are printed as Markdown; each evaluation is also kept as JSON in its run's evaluations/.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import torch
from rich.console import Console

from nnlab.report import write_report
from nnlab.run import RunDir
from nnlab.tasks.base import run_task
from nnlab.tasks.diffusion import DiffusionConfig, DiffusionTask, evaluate_run, sampler_label
from nnlab.train import TrainConfig


def config(
    objective: str, budget: float, epochs: int, args, sample_every: int = 2, **train
) -> DiffusionConfig:
    return DiffusionConfig(
        data="mnist",
        objective=objective,
        min_snr=args.min_snr,
        conditional=args.conditional,
        guidance=args.guidance,
        sample_every=sample_every,
        model_args=dict(args.model_arg),
        train=TrainConfig(
            epochs=epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=0.0,
            warmup_epochs=0.5,
            ema=0.999,
            budget_min=budget,
            monitor="val/loss",
            mode="min",
            channels_last=args.channels_last,
            precision=args.precision,
            **train,
        ),
    )


def add_model_arg(ap: argparse.ArgumentParser) -> None:
    """-m KEY=VALUE, repeatable: the U-Net's options (bench/diffusion_step.py takes it too)."""
    ap.add_argument(
        "-m",
        "--model-arg",
        action="append",
        default=[],
        type=lambda kv: (kv.split("=", 1)[0], json.loads(kv.split("=", 1)[1])),
        help="U-Net option KEY=VALUE (a JSON value), e.g. -m base=64",
    )


def fit_epochs(minutes: float, args, console) -> int:
    """The number of epochs that fills about `minutes` of training on this machine: two probe
    runs of 40 and up to 240 steps; the difference of their training-loop times over the
    difference of the steps they took gives the seconds per step; one epoch is
    ceil(training images / batch) steps, plus 15% for its validation pass and sample grid. A
    first, discarded probe of 10 steps pays the process's one-time costs (CUDA context, cuDNN's
    algorithm search). Each probe is one epoch long at most: the steps are read from its record,
    not assumed (at batch 512 an epoch is 106 steps, and dividing by the 200 steps asked for made
    two GPU runs' probes 3x too fast)."""
    took, steps = {}, {}
    for asked in (10, 40, 240):
        with tempfile.TemporaryDirectory(prefix="nnlab-probe-") as tmp:
            task = DiffusionTask(config("eps", 0.0, 1, args, max_steps=asked, sample_every=0), None)
            run_task(task, RunDir(tmp))
            record = RunDir(tmp).metrics()[-1]
            took[asked], steps[asked] = record["time/epoch_s"], record["step"]
            n_train = len(task.sets["train"])
    if steps[240] <= steps[40]:
        raise SystemExit(f"--fit-min: an epoch is {steps[240]} steps, too few to probe")
    per_step = max(took[240] - took[40], 1e-3) / (steps[240] - steps[40])
    per_epoch = 1.15 * math.ceil(n_train / args.batch_size) * per_step
    epochs = max(1, int(60 * minutes / per_epoch))
    console.print(
        f"probe: {per_step * 1000:.1f} ms per step of {args.batch_size} ({steps[240] - steps[40]} "
        f"steps timed), about {per_epoch:.1f} s per epoch of {n_train} images -> {epochs} epochs "
        f"in {minutes:g} min"
    )
    return epochs


def train(out: Path, objective: str, budget: float, epochs: int, args, console) -> RunDir:
    cfg = config(objective, budget, epochs, args)
    run = RunDir.create(f"mnist-{objective}", out / objective)
    run_task(DiffusionTask(cfg, console), run)
    write_report(run)
    return run


def evaluation(
    run: RunDir,
    n: int,
    sampler: str,
    steps: int,
    baselines: bool,
    console,
    precision="fp32",
    spacing="uniform",
    guidance=0.0,
):
    label = sampler_label(sampler, steps, 0.0, precision, spacing, guidance)
    path = run.path / "evaluations" / f"{label}-n{n}-seed0.json"
    if path.exists():  # evaluated before (the bench can be re-run after an interruption)
        done = json.loads(path.read_text())
        if len(done["rows"]) == 3 or not baselines:  # not one made with --no-baselines
            return done
    return evaluate_run(
        run,
        n,
        sampler,
        steps,
        0.0,
        "posterior",
        0,
        baselines,
        path.exists(),  # replace an evaluation without the baselines
        "auto",
        console,
        precision=precision,
        spacing=spacing,
        guidance=guidance,
    )


def rows_table(result) -> None:
    print(
        f"\n{result['sampler']}, {result['n']} samples, sampling {result['sample_s']:.0f} s "
        f"({result['device']})\n"
    )
    print("| images | own-feature FD | own-feature KD | mean confidence | class share min / max |")
    print("| --- | --- | --- | --- | --- |")
    for r in result["rows"]:
        print(
            f"| {r['images']} | {r['fd']:.3f} | {r['kd']:.4f} | {r['confidence']:.3f} | "
            f"{r['class_share_min']:.3f} / {r['class_share_max']:.3f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench-diffusion")
    ap.add_argument("--eps-run", help="a finished eps run to reuse")
    ap.add_argument("--x0-run", help="a finished x0 run to reuse")
    ap.add_argument("--budget-min", type=float, default=60.0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--skip", nargs="*", default=[], choices=["ddpm", "x0"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument(
        "--min-snr",
        type=float,
        default=0.0,
        help="> 0: min-SNR-gamma loss weights (e.g. 5) for every run; 0: the plain squared error",
    )
    ap.add_argument(
        "--conditional",
        action="store_true",
        help="class-conditional U-Nets (labels dropped 10%% of the time); the evaluations draw "
        "the labels from the training set's class shares",
    )
    ap.add_argument(
        "--guidance",
        type=float,
        default=0.0,
        help="with --conditional: classifier-free guidance w of every evaluation (0: none)",
    )
    add_model_arg(ap)
    ap.add_argument(
        "--fit-min",
        type=float,
        default=0.0,
        help="> 0: choose the epochs that fill about this many minutes (probe runs)",
    )
    ap.add_argument("--channels-last", action="store_true", help="NHWC layout (conv speed)")
    ap.add_argument(
        "--spacing",
        default="uniform",
        choices=["uniform", "quadratic"],
        help="DDIM's timesteps in the main evaluation (the DDPM-vs-DDIM rows keep uniform)",
    )
    ap.add_argument(
        "--sample-precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="the main evaluation's sampling: bf16 is 2.5x faster on an AMX CPU, same scores",
    )
    ap.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "fp16", "fp32"],
        help="the loop's precision: auto = bf16 autocast on a GPU, fp32 on the CPU; bf16 on a "
        "CPU with bf16 units (AMX) trains the U-Net 1.6-2x faster",
    )
    ap.add_argument(
        "--cudnn-benchmark", action="store_true", help="cuDNN picks its fastest algorithms"
    )
    ap.add_argument(
        "--loop-settings",
        help="JSON of bench/diffusion_step.py: take its fastest variant's channels_last and "
        "cudnn benchmark",
    )
    args = ap.parse_args()
    if args.loop_settings:
        fastest = json.loads(Path(args.loop_settings).read_text())
        args.channels_last |= fastest["channels_last"]
        args.cudnn_benchmark |= fastest["cudnn_benchmark"]
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    console, out = Console(), Path(args.out)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA "
        f"{torch.cuda.is_available()}, channels_last {args.channels_last}, cudnn benchmark "
        f"{args.cudnn_benchmark}, precision {args.precision}, min-SNR gamma {args.min_snr:g}, "
        f"conditional {args.conditional}, guidance {args.guidance:g}"
    )
    if args.fit_min > 0:
        args.epochs = fit_epochs(args.fit_min, args, console)
        args.budget_min = min(args.budget_min, 1.5 * args.fit_min)  # a guard, not the plan
    eps = (
        RunDir.open(args.eps_run)
        if args.eps_run
        else train(out, "eps", args.budget_min, args.epochs, args, console)
    )
    s = eps.summary()
    print(
        f"\neps run {eps.path}: {s['epochs']} epochs, {s['train_time_s'] / 60:.1f} min of "
        f"training, stopped: {s.get('stopped')}"
    )
    main_eval = evaluation(
        eps, args.n, "ddim", 50, True, console, args.sample_precision, args.spacing, args.guidance
    )
    rows_table(main_eval)
    floor, _, samples = main_eval["rows"]
    print(
        "\ntargets: confidence >= 0.9:",
        samples["confidence"] >= 0.9,
        "| every class 5%..15%"
        + (" (labels drawn from the data's shares)" if main_eval.get("conditional") else "")
        + ":",
        0.05 <= samples["class_share_min"] and samples["class_share_max"] <= 0.15,
        f"| FD <= 3 x floor ({3 * floor['fd']:.2f}):",
        samples["fd"] <= 3 * floor["fd"],
        f"| FD < baseline / 10 ({main_eval['rows'][1]['fd'] / 10:.2f}):",
        samples["fd"] < main_eval["rows"][1]["fd"] / 10,
    )
    if "ddpm" not in args.skip:
        ddim = evaluation(eps, 1000, "ddim", 50, False, console, guidance=args.guidance)
        ddpm = evaluation(eps, 1000, "ddpm", 1000, False, console, guidance=args.guidance)
        print("\n| sampler | own-feature FD (1000) | sampling s | speed-up |")
        print("| --- | --- | --- | --- |")
        for r in (ddpm, ddim):
            print(
                f"| {r['sampler']} | {r['rows'][-1]['fd']:.2f} | {r['sample_s']:.0f} | "
                f"{ddpm['sample_s'] / r['sample_s']:.1f}x |"
            )
    if "x0" not in args.skip:
        x0 = (
            RunDir.open(args.x0_run)
            if args.x0_run
            else train(out, "x0", args.budget_min, args.epochs, args, console)
        )
        print(
            "\n| objective | epochs | training min | test loss (own objective) | "
            "own-feature FD (DDIM-50, 1000) | confidence |\n| --- | --- | --- | --- | --- | --- |"
        )
        for run in (eps, x0):
            r, s = (
                evaluation(run, 1000, "ddim", 50, False, console, guidance=args.guidance),
                run.summary(),
            )
            print(
                f"| {s['objective']} | {s['epochs']} | {s['train_time_s'] / 60:.1f} | "
                f"{s['test/loss']:.4f} | {r['rows'][-1]['fd']:.2f} | "
                f"{r['rows'][-1]['confidence']:.3f} |"
            )


if __name__ == "__main__":
    main()
