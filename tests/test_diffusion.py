"""The diffusion process: schedules, the three objectives, and both samplers driven by an oracle
denoiser for Gaussian data, whose samples must have the data's mean and variance. (The closed
forms themselves are facts: `nnlab facts --topic diffusion`, run by tests/test_facts.py.)"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnlab.diffusion.process import DenoiseDiffusion, ddim_times
from nnlab.diffusion.schedules import (
    cosine_schedule,
    joint_covariance,
    linear_schedule,
    make_schedule,
    min_snr_weight,
    q_sample,
    snr,
    v_target,
)
from nnlab.facts import diffusion as facts

MU, SD = 0.4, 0.3  # the data: every pixel ~ N(MU, SD^2), independent


class Oracle(nn.Module):
    """The exact denoiser for Gaussian data: E[x_0 | x_t] = MU + sqrt(ab) SD^2 / (ab SD^2 + 1 - ab)
    (x_t - sqrt(ab) MU), given as eps, x0 or v -- what a perfectly trained network would output."""

    def __init__(self, schedule, objective):
        super().__init__()
        self.s, self.objective = schedule, objective

    def forward(self, xt, t):
        ab = self.s.alpha_bars[t.cpu()].to(xt.dtype).view(-1, *([1] * (xt.dim() - 1)))
        x0 = MU + ab.sqrt() * SD**2 / (ab * SD**2 + 1 - ab) * (xt - ab.sqrt() * MU)
        eps = (xt - ab.sqrt() * x0) / (1 - ab).sqrt()
        if self.objective == "eps":
            return eps
        return x0 if self.objective == "x0" else ab.sqrt() * eps - (1 - ab).sqrt() * x0


def test_schedules():
    lin, cos = linear_schedule(1000), cosine_schedule(1000)
    assert lin.T == cos.T == 1000
    assert lin.betas[0] == 0 and lin.alpha_bars[0] == 1
    assert lin.betas[1] == pytest.approx(1e-4) and lin.betas[1000] == pytest.approx(0.02)
    assert bool((lin.alpha_bars[1:] < lin.alpha_bars[:-1]).all())  # strictly noisier
    assert lin.alpha_bars[1000] < 1e-4 and cos.alpha_bars[1000] < 1e-4  # x_T is almost pure noise
    # the cosine schedule destroys information more slowly in the middle (Nichol & Dhariwal, fig. 5)
    assert cos.alpha_bars[500] > 2 * lin.alpha_bars[500]
    with pytest.raises(ValueError, match="linear or cosine"):
        make_schedule("quadratic")


def test_schedule_moves_to_a_device_once_with_the_same_numbers():
    """The training loss looks t up where t is (a GPU): the schedule is moved there once (kept
    per device), its alphas and alpha_bars copied rather than recomputed there (a cumprod on
    another device could round differently); the lookup functions index where the schedule is."""
    s = linear_schedule(1000)
    assert s.to("cpu") is s
    meta = s.to("meta")  # a device other than the CPU, on any machine
    assert meta is s.to(torch.device("meta")) and meta.T == 1000
    assert {"alphas", "alpha_bars"} <= meta.__dict__.keys()  # copied in, not left to compute
    for name in ("betas", "alphas", "alpha_bars"):
        moved = getattr(meta, name)
        assert moved.device.type == "meta" and moved.shape == getattr(s, name).shape
        assert moved.dtype == torch.float64
    t = torch.tensor([1, 2, 500, 999, 1000, 7])
    want = torch.sqrt(1 - s.betas[t]) * (1 - torch.cumprod(1 - s.betas, 0)[t - 1])
    assert torch.allclose(joint_covariance(s, t), want, rtol=1e-12)


def test_the_closed_form_checks_can_fail():
    """The Monte Carlo checks catch the usual slip: sqrt(alpha_bar_t) where sqrt(alpha_t)
    belongs."""
    s = linear_schedule(1000)
    wrong = type(s)(betas=s.betas.clone())
    wrong.__dict__["alphas"] = s.alpha_bars.clone()  # a forward step scaled by sqrt(alpha_bar_t)
    assert facts.t_steps_equal_closed_form(n=2000, s=wrong) > 5 * facts.Z_TOL  # measured: 31
    assert facts.t_steps_equal_closed_form(n=2000, s=s) < facts.Z_TOL
    t = torch.tensor([300])
    slip = math.sqrt(s.alpha_bars[300]) * (1 - s.alpha_bars[299])
    assert abs(float(joint_covariance(s, t)) - slip) > 0.1  # the two covariances really differ


def test_the_min_snr_fact_can_fail(monkeypatch):
    """v weighted as if it were eps (a missing + 1 in the SNR) is caught: measured 4e8."""
    right = facts.min_snr_weighting()
    monkeypatch.setattr(
        facts,
        "min_snr_weight",
        lambda s, t, o, g: min_snr_weight(s, t, "eps" if o == "v" else o, g),
    )
    assert right < 1e-9 and facts.min_snr_weighting() > 1.0


@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_objectives_share_one_model(objective):
    """The oracle in any parametrisation gives the same (eps, x0) and a loss of 0 in expectation
    only for its own target; the three targets are what the closed forms say."""
    s = linear_schedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = MU + SD * torch.randn(64, 1, 4, 4, generator=g)
    eps = torch.randn(64, 1, 4, 4, generator=g)
    t = torch.randint(1, 1001, (64,), generator=g)
    xt = q_sample(s, x0, t, eps)
    ref = DenoiseDiffusion(Oracle(s, "eps"), s, "eps").predict(xt, t, clip=False)
    got = DenoiseDiffusion(Oracle(s, objective), s, objective).predict(xt, t, clip=False)
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    target = DenoiseDiffusion(Oracle(s, objective), s, objective).target(x0, eps, t)
    want = {"eps": eps, "x0": x0, "v": v_target(s, x0, eps, t)}[objective]
    torch.testing.assert_close(target, want)


def test_loss_draws_t_and_noise_and_is_per_sample():
    s = linear_schedule(100)
    zero = DenoiseDiffusion(lambda x, t: torch.zeros_like(x), s, "eps")
    g = torch.Generator().manual_seed(1)
    err, t = zero.losses(torch.zeros(4096, 1, 2, 2), generator=g)
    assert err.shape == t.shape == (4096,) and int(t.min()) >= 1 and int(t.max()) <= 100
    # predicting 0 for eps ~ N(0, I) costs E|eps|^2 / 4 pixels = 1 per pixel: 4096 x 4 draws,
    # the mean of chi^2_4 / 4 has sd sqrt(2 / 4) / sqrt(4096) = 0.011: 5 sd = 0.055
    assert abs(float(err.mean()) - 1.0) < 0.055


def test_min_snr_weights_turn_down_only_the_nearly_clean_steps():
    """min-SNR-5 with eps: weight 1 wherever SNR_t <= 5 (t >= 130 of 1000, linear), SNR-limited
    below; the loss is the weighted mean of the per-sample errors; gamma 0 is the plain mean."""
    s = linear_schedule(1000)
    t = torch.arange(1, 1001)
    w = min_snr_weight(s, t, "eps", 5.0)
    r = snr(s, t)
    assert torch.equal(w[r <= 5], torch.ones(int((r <= 5).sum()), dtype=w.dtype))
    assert 120 <= int((r > 5).sum()) <= 140 and float(w[0]) == pytest.approx(5 / float(r[0]))
    assert float(w[0]) < 0.01  # SNR_1 = 9999: the first step counts 1/2000 of its plain weight
    err = torch.rand(8, generator=torch.Generator().manual_seed(0))
    tt = torch.tensor([1, 2, 50, 100, 200, 500, 900, 1000])
    weighted = DenoiseDiffusion(lambda x, t: x, s, "eps", min_snr=5.0)
    want = (min_snr_weight(s, tt, "eps", 5.0).float() * err).mean()
    torch.testing.assert_close(weighted.loss(err, tt), want)
    assert float(weighted.loss(err, tt)) < float(err.mean())
    torch.testing.assert_close(DenoiseDiffusion(lambda x, t: x, s, "eps").loss(err, tt), err.mean())
    with pytest.raises(ValueError, match="min_snr"):
        DenoiseDiffusion(lambda x, t: x, s, "eps", min_snr=-1)


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_ddpm_reproduces_the_data_distribution(variance):
    """With the exact denoiser, DDPM samples of Gaussian data have its mean and variance: N = 20000
    pixels, standard errors SD / sqrt(N) = 0.002 (mean) and SD^2 sqrt(2 / N) = 0.0009 (variance),
    tolerances of 5 sd. beta_t instead of beta~_t (the paper's other choice) is allowed 5% more
    variance."""
    s = linear_schedule(1000)
    process = DenoiseDiffusion(Oracle(s, "eps"), s, "eps")
    x, _ = process.ddpm(
        (2000, 1, 2, 5), variance=variance, clip=False, generator=torch.Generator().manual_seed(2)
    )
    assert abs(float(x.mean()) - MU) < 0.01
    tol = 0.0045 if variance == "posterior" else 0.05 * SD**2
    assert abs(float(x.var()) - SD**2) < tol, float(x.var())


def test_ddim_converges_to_the_data_distribution_as_steps_grow():
    """DDIM with the exact denoiser discretises the reverse process: with few steps it shrinks
    the variance of Gaussian data (measured: to 0.076 of 0.09 at 50 steps on the linear schedule),
    the error falls as the steps grow, and on all 1000 steps it is within the Monte Carlo
    tolerance above (eta = 0: 2%; eta = 1, which is DDPM there: 5 sd)."""
    s = linear_schedule(1000)
    process = DenoiseDiffusion(Oracle(s, "eps"), s, "eps")
    errors = []
    for steps in (10, 50, 200, 1000):
        x, _ = process.ddim(
            (2000, 1, 2, 5), steps, eta=0.0, clip=False, generator=torch.Generator().manual_seed(2)
        )
        assert abs(float(x.mean()) - MU) < 0.01
        errors.append(abs(float(x.var()) - SD**2))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.02 * SD**2, errors
    x, _ = process.ddim(
        (2000, 1, 2, 5), 1000, eta=1.0, clip=False, generator=torch.Generator().manual_seed(3)
    )
    assert abs(float(x.var()) - SD**2) < 0.0045


def test_quadratic_spacing_keeps_more_of_the_spread():
    """Quadratic DDIM timesteps: `steps` distinct ones from T to 1, crowded near t = 1; with the
    exact denoiser of Gaussian data (N = 20000 pixels, variance sd 0.0009), 50 of them keep the
    variance better than 50 evenly spaced ones (measured 0.084 vs 0.076 of 0.09, linear
    schedule)."""
    for steps in (1, 2, 10, 50, 999, 1000):
        times = ddim_times(1000, steps, "quadratic")
        assert len(set(times)) == steps and times == sorted(times, reverse=True)
        assert times[0] == 1000 and (steps == 1 or times[-1] == 1)
    quad = ddim_times(1000, 50, "quadratic")
    assert sum(t <= 100 for t in quad) > 3 * sum(t <= 100 for t in ddim_times(1000, 50))
    with pytest.raises(ValueError, match="spacing must be"):
        ddim_times(1000, 50, "cubic")
    s = linear_schedule(1000)
    process = DenoiseDiffusion(Oracle(s, "eps"), s, "eps")
    var = {
        spacing: float(
            process.ddim(
                (2000, 1, 2, 5),
                50,
                clip=False,
                generator=torch.Generator().manual_seed(0),
                spacing=spacing,
            )[0].var()
        )
        for spacing in ("uniform", "quadratic")
    }
    assert var["uniform"] + 0.005 < var["quadratic"] < SD**2 + 0.003, var


def test_ddim_is_deterministic_and_keeps_the_strip():
    s = linear_schedule(1000)
    process = DenoiseDiffusion(Oracle(s, "x0"), s, "x0")
    runs = [
        process.ddim(
            (3, 1, 4, 4),
            20,
            generator=torch.Generator().manual_seed(5),
            keep=lambda t: t % 200 == 0 or t == 1000,
        )[0]
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
    _, kept = process.ddpm(
        (1, 1, 4, 4), generator=torch.Generator().manual_seed(0), keep=lambda t: t % 250 == 0
    )
    assert sorted(kept) == [0, 250, 500, 750, 1000]
    assert ddim_times(1000, 50)[0] == 1000 and ddim_times(1000, 50)[-1] == 1
    assert len(ddim_times(1000, 50)) == 50 and ddim_times(1000, 1000) == list(range(1000, 0, -1))
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        process.ddim((1, 1, 2, 2), steps=0)
    with pytest.raises(ValueError, match="objective must be"):
        DenoiseDiffusion(Oracle(s, "x0"), s, "score")


# ---- the task, end to end on the 8x8 digits ------------------------------------------------
def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from nnlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


TINY = ["-m", "base=8", "-m", "mults=[1,2]", "-m", "heads=2"]


def test_diffusion_run_samples_and_evaluation(capsys, tmp_path, monkeypatch):
    """A seconds-long run: the loss falls, the run holds the forward and reverse strips, sample
    grids and the loss per t; `sample` writes a grid and refuses to replace it; `evaluate`
    scores samples, real test images and the PCA baseline with the judge classifier."""
    import json

    import nnlab.tasks.sample_quality as quality

    out = tmp_path / "d"
    code, _, err = run_cli(
        capsys,
        "diffusion",
        "train",
        "--data",
        "digits",
        "--epochs",
        "4",
        "--sample-every",
        "2",
        "--timesteps",
        "100",
        *TINY,
        "--out",
        str(out),
    )
    assert code == 0, err
    history = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert history[-1]["train/loss"] < 0.9 * history[0]["train/loss"]  # measured: 0.80
    figures = {p.stem for p in (out / "figures").iterdir()}
    assert {
        "forward_process",
        "reverse_process",
        "samples",
        "loss_per_t",
        "samples_epoch002",
        "curves",
    } <= figures
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["loss_per_t_bucket"]) == 10 and summary["sample_s_per_image"] > 0

    argv = [
        "diffusion",
        "sample",
        str(out),
        "--n",
        "12",
        "--steps",
        "10",
        "--out",
        str(tmp_path / "g.png"),
    ]
    code, text, err = run_cli(capsys, *argv)
    assert code == 0 and (tmp_path / "g.png").stat().st_size > 0, err
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "--overwrite" in err
    code, _, err = run_cli(capsys, *argv[:-2], "--spacing", "quadratic")  # named by its settings
    assert code == 0 and (out / "samples-ddim10-quad-n12-seed0.png").stat().st_size > 0, err
    code, _, err = run_cli(capsys, *argv[:-2])
    assert code == 0 and (out / "samples-ddim10-n12-seed0.png").exists(), err
    code, _, err = run_cli(capsys, *argv[:-2], "--eta", "0.5")  # not the eta-0 file: "exists"
    assert code == 0 and (out / "samples-ddim10-eta0.5-n12-seed0.png").exists(), err
    code, _, err = run_cli(capsys, *argv[:-2], "--spacing", "cubic")  # before "exists" below
    assert code == 1 and "--spacing must be uniform or quadratic" in err and err.count("\n") == 1
    code, _, err = run_cli(
        capsys,
        "diffusion",
        "sample",
        str(out),
        "--sampler",
        "ddpm",
        "--n",
        "4",
        "--out",
        str(tmp_path / "ddpm.png"),
    )
    assert code == 0, err

    # bf16 sampling: the network under autocast, the sampler in fp32 -- near the fp32 images
    from nnlab.run import RunDir
    from nnlab.tasks.diffusion import SHAPES, load_sampler, sample_images

    task, model = load_sampler(RunDir.open(out), "cpu")
    images = {
        p: sample_images(
            model,
            task.process(model),
            SHAPES["digits"],
            16,
            "ddim",
            10,
            0,
            0.0,
            "posterior",
            torch.device("cpu"),
            precision=p,
        )[0]
        for p in ("fp32", "bf16")
    }
    gap = abs(images["bf16"] - images["fp32"]).mean()
    assert 0 < gap < 0.005, gap  # pixels in [0, 1]; measured 1e-4
    code, _, err = run_cli(capsys, *argv[:-1], str(tmp_path / "g16.png"), "--precision", "bf16")
    assert code == 0 and (tmp_path / "g16.png").stat().st_size > 0, err
    code, _, err = run_cli(capsys, *argv, "--precision", "fp16")
    assert code == 1 and "--precision must be fp32 or bf16" in err and err.count("\n") == 1

    monkeypatch.setitem(quality.JUDGE_EPOCHS, "digits", 8)  # a quick judge is enough here
    code, text, err = run_cli(
        capsys, "diffusion", "evaluate", str(out), "--n", "100", "--steps", "10"
    )
    assert code == 0, err
    result = json.loads(next((out / "evaluations").glob("*.json")).read_text())
    rows = {r["images"].split(" (")[0]: r for r in result["rows"]}
    assert set(rows) == {"real test images", "PCA-50 Gaussian", "samples"}
    assert rows["real test images"]["fd"] < rows["PCA-50 Gaussian"]["fd"]  # the judge sees it
    for r in rows.values():
        assert r["n"] == 100 and abs(sum(r["class_share"]) - 1) < 1e-3
        assert 0.1 <= r["confidence"] <= 1 and r["judge"] == "digits-cnn-v1"
    assert "not Inception FID" in text
    assert (
        result["checkpoint_epoch"] == json.loads((out / "summary.json").read_text())["best_epoch"]
    )

    # trained on: an evaluation of the old best checkpoint moves to evaluations/stale (before,
    # its figure stayed in the report, its summary row vanished and re-evaluating was refused
    # as "exists"); one of a best checkpoint that stayed the best is kept, row and all
    name = next((out / "evaluations").glob("*.json")).name
    code, _, err = run_cli(capsys, "diffusion", "train", "--resume", str(out), "--epochs", "6")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    key = f"evaluation {name[:-5]}"
    if summary["best_epoch"] != result["checkpoint_epoch"]:
        assert (out / "evaluations" / "stale" / name).exists() and key not in summary
        assert not list((out / "figures").glob("eval_*"))
    else:
        assert (out / "evaluations" / name).exists() and key in summary


def test_diffusion_bad_input_is_one_line(capsys, tmp_path):
    for argv, message in (
        (["--objective", "score"], "--objective must be eps, x0 or v"),
        (["--schedule", "quadratic"], "--schedule must be linear or cosine"),
        (["--data", "nist"], "--data must be mnist or digits"),
        (["--min-snr", "-1"], "--min-snr must be >= 0"),
    ):
        code, _, err = run_cli(capsys, "diffusion", "train", *argv)
        assert code == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("objective", ["eps", "v"])
def test_the_task_trains_on_the_min_snr_weighted_loss(objective):
    """With --min-snr the task's loss is the weighted mean of the process's errors (the same t and
    noise: evaluation draws them from a fixed seed), not the plain mean."""
    from nnlab.models import build_model
    from nnlab.tasks.diffusion import DiffusionConfig, DiffusionTask, to_model_range

    tiny = {"base": 8, "mults": [1, 2], "heads": 2}
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    task = DiffusionTask(
        DiffusionConfig(data="digits", objective=objective, min_snr=5.0, model_args=tiny)
    )
    model = build_model("diffusion_unet", task.model_config(None)).eval()
    with torch.no_grad():
        got = task.loss(model, (x, None)).losses["loss"]
        process = task.process(model)
        err, t = process.losses(to_model_range(x), torch.Generator().manual_seed(10_000))
    weights = process.weights(t)
    torch.testing.assert_close(got, (weights * err).mean())
    assert float(weights.min()) < 0.9 and not torch.allclose(got, err.mean())


# ---- class-conditional models and classifier-free guidance -------------------------------------


class Labelled(nn.Module):
    """A stand-in conditional network: its output depends on x_t, t and the label in a known way
    (label 3 = none)."""

    def forward(self, xt, t, y):
        return xt * 0.5 + t.view(-1, 1, 1, 1) * 1e-3 + y.view(-1, 1, 1, 1).to(xt.dtype)


def test_guidance_mixes_the_labelled_and_unlabelled_outputs():
    s = linear_schedule(100)
    g = torch.Generator().manual_seed(0)
    xt, t, y = torch.randn(6, 1, 2, 2, generator=g), torch.arange(1, 7) * 10, torch.arange(6) % 3
    net = Labelled()
    cond, none = net(xt, t, y), net(xt, t, torch.full_like(y, 3))
    for w in (0.0, 0.5, 2.0):
        got = DenoiseDiffusion(net, s, "eps", null_label=3, guidance=w).output(xt, t, y)
        torch.testing.assert_close(got, (1 + w) * cond - w * none)
    # no labels: the network is called as an unconditional one (x_t, t)
    plain = DenoiseDiffusion(lambda x, t: x + 1, s, "eps").output(xt, t)
    torch.testing.assert_close(plain, xt + 1)
    with pytest.raises(ValueError, match="class-conditional"):
        DenoiseDiffusion(net, s, "eps", guidance=1.0)  # guidance without a "none" label
    with pytest.raises(ValueError, match="class-conditional"):
        DenoiseDiffusion(lambda x, t: x, s, "eps").losses(xt, labels=y)


def test_label_dropout_replaces_the_share_asked_for():
    """losses() hands the network the label, or `null_label` with probability p_uncond: with
    4000 labels and p = 0.25 the share dropped has sd sqrt(.25 .75 / 4000) = 0.007: 5 sd = 0.035."""
    seen = []

    def net(xt, t, y):
        seen.append(y.clone())
        return torch.zeros_like(xt)

    s = linear_schedule(100)
    process = DenoiseDiffusion(net, s, "eps", null_label=10)
    y = torch.arange(4000) % 10
    for p, share in ((0.0, 0.0), (0.25, 0.25), (1.0, 1.0)):
        process.losses(torch.zeros(4000, 1, 1, 1), torch.Generator().manual_seed(1), y, p)
        got = seen[-1]
        dropped = got == 10
        assert abs(float(dropped.float().mean()) - share) < 0.035
        assert torch.equal(got[~dropped], y[~dropped])  # the others are kept as they were


def test_the_conditional_unet_reads_its_label():
    from nnlab.models.diffusion_unet import DiffusionUNet, DiffusionUNetConfig

    torch.manual_seed(0)
    net = DiffusionUNet(DiffusionUNetConfig(base=8, mults=(1, 2), heads=2, classes=10))
    nn.init.normal_(net.out_conv.weight)  # not zero at the start: the output shows the label
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 50])
    a, b = net(x, t, torch.tensor([0, 0])), net(x, t, torch.tensor([1, 1]))
    assert (a - b).abs().mean() > 1e-3
    torch.testing.assert_close(net(x, t), net(x, t, torch.tensor([10, 10])))  # None = no label
    with pytest.raises(ValueError, match="labels in 0..10"):
        net(x, t, torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="labels in 0..10"):
        net(x, t, torch.tensor([0]))
    plain = DiffusionUNet(DiffusionUNetConfig(base=8, mults=(1, 2), heads=2))
    with pytest.raises(ValueError, match="not class-conditional"):
        plain(x, t, torch.tensor([0, 1]))


def test_the_guidance_fact_can_fail(monkeypatch):
    """The guided output with the two terms swapped, (1 + w) f(x) - w f(x, y), is caught."""
    right = facts.guidance_tilts_score()

    def wrong(self, xt, t, labels=None):
        none = torch.full_like(labels, self.null_label)
        cond, uncond = self.model(xt, t, labels), self.model(xt, t, none)
        return uncond + self.guidance * (uncond - cond)

    monkeypatch.setattr(DenoiseDiffusion, "output", wrong)
    assert right < 1e-6 and facts.guidance_tilts_score() > 0.1


def test_a_conditional_run_draws_the_digit_asked_for(capsys, tmp_path):
    """A seconds-long conditional run on the 8x8 digits (x0 objective, cosine schedule, raw
    weights): from pure noise, told the label, its denoiser predicts an image nearer that class's
    mean training image than any other class's (measured: 10 of 10, 2 with eps, whose x_0 at t = T
    is noise amplified, and 6 with the EMA of 88 steps); guided grids and
    evaluations are named by w; guidance on an unconditional run or without label dropout is a
    one-line error; the run records the class shares its evaluations draw labels from."""
    import json

    from nnlab.data import load_splits
    from nnlab.run import RunDir
    from nnlab.tasks.diffusion import load_sampler, sample_labels, to_model_range

    out = tmp_path / "c"
    argv = ["diffusion", "train", "--data", "digits", "--epochs", "8", "--timesteps", "100"]
    argv += ["--schedule", "cosine", "--objective", "x0", "--batch-size", "64", "--lr", "2e-3"]
    code, _, err = run_cli(capsys, *argv, "--conditional", "--ema", "0", *TINY, "--out", str(out))
    assert code == 0, err
    share = json.loads((out / "summary.json").read_text())["label_share"]
    assert len(share) == 10 and abs(sum(share) - 1) < 1e-9 and min(share) > 0.08

    train = load_splits("digits", 0.1, 0)["train"]
    images = torch.from_numpy(train.images)
    means = torch.stack([to_model_range(images[train.labels == k].mean(0)) for k in range(10)])
    task, model = load_sampler(RunDir.open(out), "cpu")
    process = task.process(model)
    g = torch.Generator().manual_seed(0)
    xt = torch.randn(10, 64, 1, 8, 8, generator=g)  # at t = T: all noise, the label is all
    hits = 0
    for k in range(10):
        _, x0 = process.predict(xt[k], torch.full((64,), 100), labels=torch.full((64,), k))
        dist = (x0.mean(0, keepdim=True) - means).flatten(1).norm(dim=1)
        hits += int(dist.argmin()) == k
    assert hits >= 8, hits  # chance: 1 in 10

    drawn = sample_labels(RunDir.open(out), 5000, 0)
    counts = torch.bincount(drawn, minlength=10).double() / 5000
    assert (counts - torch.tensor(share)).abs().max() < 0.02  # sd of a share: 0.004

    grid = ["diffusion", "sample", str(out), "--n", "10", "--steps", "5"]
    code, _, err = run_cli(capsys, *grid, "--guidance", "2")
    assert code == 0 and (out / "samples-ddim5-w2-n10-seed0.png").stat().st_size > 0, err
    code, _, err = run_cli(capsys, *argv, "--guidance", "1", "--out", str(tmp_path / "u"))
    assert code == 1 and "needs a run trained with --conditional" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, *argv, "--conditional", "--p-uncond", "0", "--guidance", "1")
    assert code == 1 and "--p-uncond > 0" in err and err.count("\n") == 1
    plain = tmp_path / "p"
    code, _, err = run_cli(capsys, *argv[:5], "1", *argv[6:], *TINY, "--out", str(plain))
    assert code == 0, err
    code, _, err = run_cli(capsys, "diffusion", "sample", str(plain), "--guidance", "1")
    assert code == 1 and "--conditional" in err and err.count("\n") == 1
    assert not list(plain.glob("samples-*.png"))  # refused before any file was claimed


def test_a_short_schedule_run_finishes_and_sampling_options_are_checked_first(
    capsys, tmp_path, monkeypatch
):
    """T = 20: the run draws its own grids with 20 DDIM steps (before, every T < 50 run ended
    in a traceback after training, and no resume could finish it). Sampling settings are
    checked before any sampling: --steps above T, --eta above 1, a bad --variance, too many
    evaluation samples, an --out that is a folder. DDPM with beta variance is named apart from
    the posterior one. NaN samples (diverged weights) are an error, not a blank grid."""
    import torch

    import nnlab.tasks.diffusion as diffusion

    out = tmp_path / "t20"
    code, _, err = run_cli(capsys, "diffusion", "train", "--data", "digits", "--epochs", "1",
                           "--timesteps", "20", *TINY, "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert (out / "figures" / "samples.png").exists() and (out / "summary.json").exists()
    for argv, message in (
        (["sample", str(out)], "--steps must be 1 to T = 20"),
        (["sample", str(out), "--variance", "big", "--sampler", "ddpm"], "--variance must be"),
        (["evaluate", str(out), "--steps", "20", "--n", "100000"], "at most"),
        (["sample", str(out), "--steps", "20", "--out", str(tmp_path)], "is a folder"),
    ):
        code, _, err = run_cli(capsys, "diffusion", *argv)
        assert code == 1 and message in err and err.count("\n") == 1, (argv, err)
    code, _, err = run_cli(capsys, "diffusion", "sample", str(out), "--eta", "1.5")
    assert code == 2 and "--eta" in err
    code, out_text, err = run_cli(capsys, "diffusion", "sample", str(out), "--sampler", "ddpm",
                                  "--variance", "beta", "--n", "4")  # fmt: skip
    assert code == 0 and (out / "samples-ddpm-beta-n4-seed0.png").exists(), err

    def nan_ddim(self, shape, *a, **k):
        return torch.full(shape, float("nan")), None

    with monkeypatch.context() as m:
        m.setattr(diffusion.DenoiseDiffusion, "ddim", nan_ddim)
        code, _, err = run_cli(capsys, "diffusion", "sample", str(out), "--steps", "20",
                               "--n", "4", "--out", str(tmp_path / "nan.png"))  # fmt: skip
    assert code == 1 and "NaN or infinite" in err
    assert not (tmp_path / "nan.png").exists()


def test_mnist_files_of_another_image_size_are_refused_before_training(capsys, data_dir):
    """IDX files of 20x20 images under MNIST's names: before, the model trained on them and
    sampled 28x28 images without a word."""
    import numpy as np

    from nnlab.data.idx import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(data_dir / "mnist" / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 20, 20), np.uint8))  # fmt: skip
        write_idx(data_dir / "mnist" / f"{prefix}-labels-idx1-ubyte.gz",
                  rng.integers(0, 10, n).astype(np.uint8))  # fmt: skip
    code, _, err = run_cli(capsys, "diffusion", "train", "--data", "mnist", "--epochs", "1", *TINY)
    assert code == 1 and "mnist images are 1x20x20" in err and "samples 1x28x28" in err


def test_evaluations_of_another_checkpoint_move_aside(tmp_path):
    import json

    from nnlab.run import RunDir
    from nnlab.tasks.diffusion import keep_current_evaluations

    run = RunDir.create("e", tmp_path / "e")
    (run.path / "evaluations").mkdir()
    row = {"images": "samples", "n": 10, "fd": 1.0, "kd": 0.1, "confidence": 0.9,
           "class_share_min": 0.05, "class_share_max": 0.2}  # fmt: skip
    for name, epoch in (("ddim50-n10-seed0", 3), ("ddim10-n10-seed0", 4)):
        (run.path / "evaluations" / f"{name}.json").write_text(
            json.dumps({"checkpoint_epoch": epoch, "rows": [row]})
        )
        run.figure_dir.mkdir(exist_ok=True)
        (run.figure_dir / f"eval_{name.replace('-', '_')}_classes.png").write_bytes(b"png")
    said = []
    rows = keep_current_evaluations(run, 4, said.append)
    assert list(rows) == ["evaluation ddim10-n10-seed0"] and rows[list(rows)[0]] == [row]
    assert (run.path / "evaluations" / "stale" / "ddim50-n10-seed0.json").exists()
    assert (run.path / "evaluations" / "stale" / "eval_ddim50_n10_seed0_classes.png").exists()
    assert [p.name for p in run.figure_dir.iterdir()] == ["eval_ddim10_n10_seed0_classes.png"]
    assert len(said) == 1 and "another checkpoint" in said[0]


def test_model_options_and_an_edited_config_are_checked_in_a_line(capsys, tmp_path):
    for argv, message in (
        (["-m", "base=3"], "base must be even"),
        (["-m", "in_channels=3"], "-m in_channels: set by the data"),
    ):
        code, _, err = run_cli(capsys, "diffusion", "train", "--data", "digits", "--epochs", "1",
                               *argv, "--out", str(tmp_path / "x"))  # fmt: skip
        assert code == 1 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()
    import json

    run = tmp_path / "r"
    code, _, err = run_cli(capsys, "diffusion", "train", "--data", "digits", "--epochs", "1",
                           "--timesteps", "20", *TINY, "--out", str(run))  # fmt: skip
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "objective": "foo"}))
    code, _, err = run_cli(capsys, "diffusion", "sample", str(run), "--steps", "10")
    assert code == 1 and "config.json: --objective must be eps, x0 or v" in err


def test_a_run_resumed_between_epochs_keeps_its_loss_per_t(capsys, tmp_path, monkeypatch):
    """Interrupted after epoch 1 and resumed: the log (loss per tenth of t included) and the
    summary's loss per t equal an uninterrupted run's. Before, the per-t sums lived only in
    memory: the figure lost every epoch before the resume."""
    import json

    import nnlab.tasks.diffusion as diffusion

    argv = ["diffusion", "train", "--data", "digits", "--epochs", "2", "--limit", "64",
            "--batch-size", "32", "--timesteps", "20", "--sample-every", "0", *TINY]  # fmt: skip
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "full"))
    assert code == 0, err
    steps = {"n": 0}
    original = diffusion.DiffusionTask.loss

    def interrupted(self, model, batch):
        if model.training:
            steps["n"] += 1
            if steps["n"] == 3:  # the first step of epoch 2 (2 steps an epoch)
                raise KeyboardInterrupt
        return original(self, model, batch)

    with monkeypatch.context() as m:
        m.setattr(diffusion.DiffusionTask, "loss", interrupted)
        code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "part"))
    assert code == 130, err
    code, _, err = run_cli(capsys, "diffusion", "train", "--resume", str(tmp_path / "part"))
    assert code == 0, err

    def log(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if not k.startswith("time/")}
                for x in lines]  # fmt: skip

    assert log("part") == log("full") and "loss_t/9" in log("full")[0]
    full, part = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("full", "part"))
    assert part["loss_per_t_bucket"] == full["loss_per_t_bucket"]
    assert part["test/loss"] == full["test/loss"]
