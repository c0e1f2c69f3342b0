"""The three-tower EEG transformer (shapes, gate, what each tower reads) and the Bonn
segment-classification task end to end on generated stand-in segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnlab.errors import NNLabError
from nnlab.models import build_model, model_config
from nnlab.models.eeg_transformer import EEGTransformer, EEGTransformerConfig, tower_tokens

# ---- the model ----------------------------------------------------------------------------------


def tiny(**overrides) -> EEGTransformer:
    args = dict(channels=3, frames=5, freqs=7, dim=16, depth=2, heads=2, dropout=0.0)
    torch.manual_seed(0)
    return EEGTransformer(EEGTransformerConfig(**{**args, **overrides}))


@pytest.mark.parametrize(
    "towers",
    [
        ("spatial", "temporal", "spectral"),
        ("temporal", "spectral"),
        ("spectral",),
        ("temporal", "spatial"),
    ],
)
def test_shapes_gates_and_gradients(towers):
    model = tiny(towers=towers, num_classes=3)
    x = torch.randn(4, 3, 5, 7)
    logits, gates = model(x, return_gates=True)
    assert logits.shape == (4, 3) and gates.shape == (4, len(towers))
    assert torch.isfinite(logits).all() and (gates >= 0).all()
    torch.testing.assert_close(gates.sum(1), torch.ones(4))
    assert list(model.towers) == list(towers)  # gate columns in the order of cfg.towers
    (logits * torch.randn_like(logits)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if len(towers) == 1:
        torch.testing.assert_close(gates, torch.ones(4, 1))


def test_registered_and_plain_logits_by_default():
    cfg = model_config("eeg_transformer", channels=1, frames=4, freqs=6, towers=["temporal"])
    assert cfg.towers == ("temporal",)  # JSON lists become tuples
    model = build_model("eeg_transformer", cfg)
    out = model(torch.randn(2, 1, 4, 6))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2)


def test_tokens_are_channels_frames_and_bins():
    """One changed value x[b, c, t, f] changes exactly spatial token c, temporal token t and
    spectral token f, and each token holds the slice the docstring names."""
    x = torch.randn(2, 3, 5, 7)
    s, t, f = (tower_tokens(x, k) for k in ("spatial", "temporal", "spectral"))
    assert s.shape == (2, 3, 35) and t.shape == (2, 5, 21) and f.shape == (2, 7, 15)
    torch.testing.assert_close(t[1, 4], x[1, :, 4, :].reshape(-1))
    torch.testing.assert_close(f[0, 2], x[0, :, :, 2].reshape(-1))
    torch.testing.assert_close(s[1, 2], x[1, 2].reshape(-1))
    y = x.clone()
    y[1, 2, 3, 6] += 1.0
    for tower, index in (("spatial", 2), ("temporal", 3), ("spectral", 6)):
        changed = (tower_tokens(y, tower) != tower_tokens(x, tower)).any(-1)  # (B, N)
        assert changed.nonzero().tolist() == [[1, index]], tower


def test_the_temporal_tower_embeds_one_token_per_frame():
    """Inside the model: changing frame t changes only token t of the temporal tower's first
    block input, and every token of the spectral tower (each bin spans all frames)."""
    model = tiny().eval()
    seen = {}
    for name in ("temporal", "spectral"):
        block = model.towers[name].blocks[0]
        block.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, args[0].detach())
        )
    x = torch.randn(1, 3, 5, 7)
    model(x)
    before = dict(seen)
    x[:, :, 2, :] += torch.randn(3, 7)
    model(x)
    temporal = (seen["temporal"] != before["temporal"]).any(-1)[0]  # (T,)
    assert temporal.tolist() == [False, False, True, False, False]
    assert (seen["spectral"] != before["spectral"]).any(-1).all()


def test_forward_follows_the_gate_equation():
    """logits = W_y sum_i g_i h_i + b_y with g = softmax(W_g [h_1; ...; h_M] + b_g)."""
    model = tiny().eval()
    x = torch.randn(3, 3, 5, 7)
    with torch.no_grad():
        logits, gates = model(x, return_gates=True)
        h = [model.towers[k](tower_tokens(x, k))[0] for k in model.towers]  # each (B, D)
        g = torch.softmax(model.gate(torch.cat(h, dim=1)), dim=1)
        expected = model.head(sum(g[:, i : i + 1] * h[i] for i in range(len(h))))
    torch.testing.assert_close(gates, g)
    torch.testing.assert_close(logits, expected)


def test_attention_weights_per_tower_and_layer():
    model = tiny(depth=2, heads=2).eval()
    x = torch.randn(2, 3, 5, 7)
    logits, gates, attention = model(x, return_gates=True, return_attention=True)
    logits2, attention2 = model(x, return_attention=True)
    torch.testing.assert_close(logits, logits2)  # the explicit path computes the same
    torch.testing.assert_close(logits, model(x))
    for tower, n in (("spatial", 3), ("temporal", 5), ("spectral", 7)):
        maps = attention[tower]
        assert len(maps) == 2 and all(m.shape == (2, 2, n, n) for m in maps)
        torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, n))


def test_sinusoidal_position_is_fixed():
    model = tiny(position="sinusoidal")
    assert not any("pos" in name for name, _ in model.named_parameters())
    assert "towers.temporal.pos" not in model.state_dict()  # rebuilt, never saved
    assert torch.isfinite(model(torch.randn(2, 3, 5, 7))).all()


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="towers"):
        tiny(towers=("temporal", "temporal"))
    with pytest.raises(ValueError, match="towers"):
        tiny(towers=("channels",))
    with pytest.raises(ValueError, match="position"):
        tiny(position="rotary")
    with pytest.raises(ValueError, match="built for"):
        tiny()(torch.randn(2, 3, 6, 7))


# ---- the Bonn task on generated stand-in segments -----------------------------------------------
FS, N = 173.61, 4097


def stand_in_set(letter: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(4097, n) int16 like a Bonn set's `eeg_data`: noise with an alpha rhythm (A), slower
    background (D), or a large 3-Hz spike-and-wave (E)."""
    t = np.arange(N) / FS
    x = rng.normal(0, 20, (n, N))
    if letter == "A":
        x += 30 * np.sin(2 * np.pi * rng.uniform(9, 11, (n, 1)) * t)
    elif letter == "D":
        x = np.cumsum(x, axis=1) * 0.2
        x -= x.mean(axis=1, keepdims=True)
    else:
        phase = 2 * np.pi * rng.uniform(2.8, 3.2, (n, 1)) * t
        x += 200 * np.sin(phase) ** 15 + 80 * np.sin(phase)
    return np.clip(x, -2048, 2047).astype(np.int16).T  # (4097, n)


@pytest.fixture
def bonn_folder(tmp_path, monkeypatch):
    import scipy.io

    from nnlab.data.bonn import FILES

    root = tmp_path / "data" / "bonn-eeg"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for letter, name in FILES.items():
        scipy.io.savemat(root / name, {"eeg_data": stand_in_set(letter, 12, rng)})
    monkeypatch.setenv("NNLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "cache"))
    return root


def run_cli(*argv: str) -> int:
    from nnlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code


def test_bonn_cross_validation_end_to_end(bonn_folder, tmp_path, capsys, monkeypatch):
    from nnlab.data.bonn import load_bonn
    from nnlab.run import RunDir
    from nnlab.tasks.bonn import BonnConfig, spectrograms

    out = tmp_path / "cv"
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "2", "--device", "cpu")
    assert (
        run_cli("seizure", "bonn", "--pair", "AD-E", "--folds", "2", *quick, "--out", str(out)) == 0
    )
    text = capsys.readouterr().out
    assert "mean over 2 of 2 folds" in text and "mean gate weight" in text

    run = RunDir.open(out)
    assert run.config()["task"] == "bonn-cv"
    s = run.summary()
    for key in ("acc", "sensitivity", "specificity", "auc", "acc_sd", "pooled", "rows"):
        assert key in s, key
    assert s["folds_run"] == 2 and s["towers"] == ["temporal", "spectral"]
    assert s["pooled"]["segments"] == 36  # every segment tested once
    for c in ("non-seizure", "seizure"):
        g = s["gates_by_class"][c]
        assert g["temporal"] + g["spectral"] == pytest.approx(1.0, abs=1e-5)
    assert s["gates_by_class"]["seizure"]["segments"] == 12
    assert (run.figure_dir / "folds_and_gates.png").is_file() and run.report_path.is_file()

    children = run.children()
    assert [c.path.name for c in children] == ["fold00", "fold01"]
    data = load_bonn("ADE")
    logp, _ = spectrograms(data.x[:, None], data.fs, BonnConfig())
    index = {name: i for i, name in enumerate(data.names)}
    tested = []
    for k, child in enumerate(children):
        assert child.config()["task"] == "bonn" and child.config()["fold"] == k
        assert child.summary()["test_items"] == 18
        # the default checkpoint "last": no validation part, the final epoch is the one tested
        assert child.summary()["best_epoch"] == child.summary()["epochs"] == 2
        split = json.loads((child.path / "split.json").read_text())
        assert "val" not in split
        train, test = set(split["train"]), set(split["test"])
        assert not (train & test) and len(train | test) == 36
        assert sum(name.startswith("E") for name in test) == 6  # stratified: 12 E over 2 folds
        tested += split["test"]
        # the normaliser's statistics are those of the training segments only
        norm = json.loads((child.path / "normalizer.json").read_text())
        rows = [index[name] for name in split["train"]]
        expected = logp[rows].mean(axis=(0, 1, 2))
        np.testing.assert_allclose(norm["mean"], expected, rtol=1e-4, atol=1e-4)
        assert not np.allclose(norm["mean"], logp.mean(axis=(0, 1, 2)), atol=1e-3)
    assert sorted(tested) == sorted(data.names)  # every segment in exactly one test fold

    # the saved front end describes what the model reads (one 18-s crop: 35 frames), so
    # `nnlab seizure detect` slides windows of that length over a recording of any length
    from nnlab.tasks.seizure import load_fold_models, window_probabilities

    models = load_fold_models(children[0], device="cpu")
    assert models[0].spectral.frames(FS) == models[0].model.cfg.frames == 35
    x = load_bonn("E").x[:2].reshape(1, -1)  # one channel, two segments end to end (47 s)
    starts = np.array([0, 3000, 5000])
    p = window_probabilities(models, x, starts)
    assert p.shape == (3, 1) and np.isfinite(p).all()
    detect_stitched(children[0], data, index, tmp_path, capsys, monkeypatch)

    # a run saved before crops existed resumes with its own recipe, not today's defaults
    from nnlab.tasks.bonn import BonnCV, BonnTask

    assert BonnCV.config_from_run(run).crop_s == -1.0  # 18-s crops of 23.6-s segments
    for cls, r in ((BonnCV, run), (BonnTask, children[0])):
        raw = r.config()
        older = {k: v for k, v in raw.items() if k not in ("crop_s", "checkpoint")}
        (tmp_path / "older").mkdir(exist_ok=True)
        (tmp_path / "older" / "config.json").write_text(json.dumps(older))
        cfg = cls.config_from_run(RunDir.open(tmp_path / "older"))
        assert (cfg.crop_s, cfg.checkpoint) == (0.0, "best"), cls

    # --resume keeps finished folds: nothing is trained again, the summary is rebuilt the same
    before = (children[0].path / "metrics.jsonl").read_text()
    assert run_cli("seizure", "bonn", "--resume", str(out)) == 0
    assert (children[0].path / "metrics.jsonl").read_text() == before
    assert run.summary()["acc"] == s["acc"]


def detect_stitched(fold, data, index, tmp_path, capsys, monkeypatch):
    """`nnlab seizure detect --summary` with a detection model: a fold's 18 held-out segments
    stitched into one recording (the 12 non-seizure ones, then the 6 seizures), written at 256
    Hz; the detection defaults, the seizure scored against the alarms found."""
    import csv

    from nnlab.data.bonn import stitch
    from nnlab.data.eeg import Recording, resample, summary_lines, write_edf
    from nnlab.signal.alarms import k_of_n_alarms
    from nnlab.tasks.seizure import detect_file

    test = json.loads((fold.path / "split.json").read_text())["test"]
    order = sorted(test, key=lambda name: (name[0] == "E", name))
    x, bounds = stitch([data.x[index[name]] for name in order], FS)
    y, _ = resample(x[None], FS, 256.0)
    n = y.shape[1] // 256 * 256  # whole 1-s EDF records
    onset, offset = bounds[12] / FS, n / 256.0
    edf = tmp_path / "stitched.edf"
    write_edf(edf, Recording("stitched", 256.0, ["HIPP-REF"], y[:, :n]))
    summary = tmp_path / "s-summary.txt"
    summary.write_text("\n".join(summary_lines("stitched.edf", [(onset, offset)])))
    other = tmp_path / "o-summary.txt"
    other.write_text("\n".join(summary_lines("other.edf", [])))
    with pytest.raises(NNLabError, match="stitched.edf is not listed in the summary"):
        detect_file(edf, fold, tmp_path / "none", summary=other)

    import pyedflib  # two EEG channels at two rates, one each: the higher rate's is read

    two = tmp_path / "two_rates.edf"
    writer = pyedflib.EdfWriter(str(two), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders(
        [
            {"label": label, "dimension": "uV", "sample_frequency": rate, "physical_min": -3000.0}
            | {"physical_max": 3000.0, "digital_min": -32768, "digital_max": 32767}
            for label, rate in (("HIPP-REF", 256), ("HIPP2-REF", 512))
        ]
    )
    y512, _ = resample(y[:, :n], 256.0, 512.0)
    writer.writeSamples([y[0, :n].astype(float), y512[0, : 2 * n].astype(float)])
    writer.close()
    found = detect_file(two, fold, tmp_path / "two", device="cpu")
    assert found["channels"] == ["HIPP2-REF"] and found["skipped"] == ["HIPP-REF (256 Hz)"]

    ecg = tmp_path / "ecg.edf"  # a lead asked for that is not EEG: read, and said
    write_edf(ecg, Recording("e", 256.0, ["HIPP-REF", "ECG"], np.vstack([y[:, :n], y[:, :n]])))
    with pytest.warns(UserWarning, match=r"--channels ECG \(labelled ECG\): not EEG by its"):
        detect_file(ecg, fold, tmp_path / "ecg", channels=["ECG"], device="cpu")

    found = detect_file(edf, fold, tmp_path / "det", summary=summary, device="cpu")
    assert found["positive_class"] == "seizure" and found["file_fs"] == 256.0
    assert (found["alarm_k"], found["alarm_n"], found["refractory_s"]) == (3, 4, 60.0)
    assert found["hop_s"] == pytest.approx(found["window_s"] / 4, abs=0.01)
    with open(tmp_path / "det" / "stitched_windows.csv") as f:
        rows = list(csv.DictReader(f))
    start = np.array([float(r["start_s"]) for r in rows])
    end = np.array([float(r["end_s"]) for r in rows])
    p = np.array([float(r["probability"]) for r in rows])
    assert np.diff(start) == pytest.approx(found["hop_s"], abs=0.01)  # overlapping windows
    # the alarms: 3 of the last 4 windows, one per run of them, a minute apart at least
    expect = k_of_n_alarms(p >= 0.5, end, 3, 4, refractory=60.0, episodes=True)
    np.testing.assert_allclose(found["alarms_s"], end[expect], atol=1e-3)
    # the seizure's latency is that of the first alarm between its onset and a window past its end
    alarms = np.array(found["alarms_s"])
    inside = alarms[(alarms >= onset) & (alarms <= offset + found["window_s"])]
    (event,) = found["events"]["seizures"]
    assert event["onset_s"] == pytest.approx(onset, abs=1e-3)
    if len(inside):
        assert event["latency_s"] == pytest.approx(inside.min() - onset, abs=1e-3)
    else:
        assert event["latency_s"] is None
    assert found["events"]["false_alarms"] == len(alarms) - len(inside)
    with open(tmp_path / "det" / "stitched_alarms.csv") as f:
        assert f.readline().strip() == "alarm_s"  # a detection alarm opens no warning interval
    with open(tmp_path / "det" / "stitched_seizures.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["onset_s"]) == pytest.approx(onset, abs=1e-3)

    capsys.readouterr()
    argv = ["seizure", "detect", str(edf), "--model", str(fold.path), "--summary", str(summary)]
    argv += ["--out", str(tmp_path / "cli"), "--alarm-k", "1", "--alarm-n", "1", "--hop-s", "6"]
    assert run_cli(*argv) == 0
    text = capsys.readouterr().out
    assert "every 6 s" in text and "alarms (1 of 1, refractory 60 s)" in text
    assert f"seizure {onset:.0f}-{offset:.0f} s:" in text and "false alarms:" in text
    assert run_cli(*argv[:-2], "--hop-s", "0", "--overwrite") == 1
    assert "--hop-s must be > 0" in capsys.readouterr().err
    # the seizures by hand instead of a summary: the same scoring
    given = [a for a in argv if a not in ("--summary", str(summary))]
    assert run_cli(*given, "--seizures", f"{onset:.3f}-{offset:.3f}", "--overwrite") == 0
    assert text.split("\n", 1)[1] == capsys.readouterr().out.split("\n", 1)[1]
    for bad, message in (
        (["--seizures", "12-x"], "'12-x' is not ONSET-OFFSET"),
        (["--seizures", "30-20"], "the offset not earlier"),
        (["--seizures", "1-2", "--summary", str(summary)], "not both"),
    ):
        assert run_cli(*given, *bad, "--overwrite") == 1
        assert message in capsys.readouterr().err

    # the timing, end to end (resampling, windows, the rule, the matching): a stand-in model whose
    # P(seizure) is "the window's mean is above 50 uV" on noise that steps up by 100 uV at the
    # onset. Window j (starting j h, W long) is positive once more than half of it is past the
    # onset, j0 h > onset - W / 2, and the third positive window raises the alarm at its end.
    import nnlab.tasks.seizure as sz

    def mean_above(models, x, starts, chunk=128, gates=False):
        L = models[0].spectral.window_length(models[0].fs)
        p = np.array([[x[0, s : s + L].mean() > 50] for s in starts], dtype=np.float64)
        return (p, np.full((*p.shape, 2), 0.5)) if gates else p

    monkeypatch.setattr(sz, "window_probabilities", mean_above)
    t = np.arange(n) / 256.0
    step = np.where(t >= onset, 100.0, 0.0) + np.random.default_rng(0).normal(0, 1, n)
    write_edf(tmp_path / "step.edf", Recording("step", 256.0, ["HIPP-REF"], step[None]))
    summary.write_text("\n".join(summary_lines("step.edf", [(onset, offset)])))
    found = detect_file(tmp_path / "step.edf", fold, tmp_path / "step", summary=summary)
    W, h = found["window_s"], found["hop_s"]
    j0 = np.floor((onset - W / 2) / h) + 1
    (event,) = found["events"]["seizures"]
    assert event["latency_s"] == pytest.approx((j0 + 2) * h + W - onset, abs=0.02)
    assert len(found["alarms_s"]) == 1 and found["events"]["false_alarms"] == 0  # one episode


def test_bonn_resampled_with_rate(bonn_folder):
    """--rate on Bonn itself: every segment resampled from 173.61 Hz, as `resample` gives it."""
    from nnlab.data.bonn import load_bonn
    from nnlab.data.eeg import resample
    from nnlab.tasks.bonn import BonnConfig, bonn_segments

    found = bonn_segments(BonnConfig(pair="D-E", rate=128.0))
    bonn = load_bonn("DE")
    want, fs = resample(bonn.binary("D-E")[0], bonn.fs, 128.0)
    assert found.fs == 128.0 and found.x.shape == (24, 1, want.shape[1])
    np.testing.assert_allclose(found.x[:, 0], want, rtol=1e-6)
    assert abs(fs - 128.0) < 0.1  # the rational approximation of 128 / 173.61


@pytest.mark.parametrize(
    "args,message",
    [
        (["--pair", "AB-E"], "set B not found"),
        (["--pair", "A-A"], "names a set twice"),
        (["--folds", "1"], "--folds must be >= 2"),
        (["--fold", "10"], "--fold must be -1"),
        (["--overlap-s", "2"], "--overlap-s"),
        (["--crop-s", "30"], "--crop-s"),
        (["--crop-s", "0.5"], "--crop-s"),
        (["--crop-s", "18", "--test-crops", "0"], "--test-crops"),
        (["-m", 'towers=["spatial","time"]'], "towers"),
        (["--rate", "-5"], "--fs and --rate must be >= 0"),
        (["--fs", "inf"], "--fs and --rate must be >= 0"),
        (["--fs", "0.256"], "--fs is in Hz: 0.256 Hz is below any EEG"),
        (["--class-pattern", "x"], "--class-pattern reads the classes of a folder's file names"),
        (["--group-block", "6"], "--group-block must be >= 0 and needs --group"),
    ],
)
def test_bonn_bad_options(bonn_folder, capsys, args, message):
    assert run_cli("seizure", "bonn", *args) == 1
    assert message in capsys.readouterr().err


# ---- any dataset of single-channel segments, one folder per class ---------------------------
def segment_folders(root, fs=256, seconds=6, n=12, edf=True):
    """'calm' (noise, as text files, one as EDF) and 'spiky' (a 3-Hz spike-wave rhythm, as .npy)
    segments of `seconds` at `fs`: another dataset's layout, rate and length than Bonn's."""
    from nnlab.data.eeg import Recording, write_edf

    rng = np.random.default_rng(1)
    t = np.arange(fs * seconds) / fs
    (root / "calm").mkdir(parents=True)
    (root / "spiky").mkdir()
    for i in range(n):
        calm = 40 * rng.standard_normal(len(t))
        spiky = calm + 200 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)) ** 15
        if edf and i == 0:
            write_edf(root / "calm" / "c00.edf", Recording("c00", fs, ["T3"], calm[None]))
        else:
            np.savetxt(root / "calm" / f"c{i:02d}.txt", calm, fmt="%.3f")
        np.save(root / "spiky" / f"s{i:02d}.npy", spiky.astype(np.float32))
    (root / "spiky" / "notes.md").write_text("not a segment")  # other files are ignored
    return root


def test_segment_folders_of_another_dataset_cross_validate(tmp_path, capsys):
    """`nnlab seizure bonn --data DIR` on class folders of 6-s segments at 256 Hz (text, .npy
    and one EDF file, whose rate sets --fs): the same cross-validation, one test per segment,
    and the saved front end describes the 6-s segments' windows."""
    from nnlab.data.segments import load_segment_folders
    from nnlab.run import RunDir

    root = segment_folders(tmp_path / "other set")
    found = load_segment_folders(root, "calm-spiky")
    assert found.x.shape == (24, 1, 1536) and found.fs == 256 and found.cut == 0
    assert found.y.tolist() == [0] * 12 + [1] * 12 and found.names[0] == "calm/c00"
    out = tmp_path / "cv"
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "2", "--device", "cpu")
    args = ("--data", str(root), "--pair", "calm-spiky", "--folds", "2", "--crop-s", "4")
    assert run_cli("seizure", "bonn", *args, *quick, "--mains", "60", "--out", str(out)) == 0
    s = RunDir.open(out).summary()
    assert s["pooled"]["segments"] == 24 and s["folds_run"] == 2
    fold = RunDir.open(out).children()[0]
    spec = json.loads((fold.path / "normalizer.json").read_text())
    assert spec["fs"] == 256 and spec["spectral"]["window_s"] < 6  # a 4-s crop's window
    assert fold.summary()["frames"] == 11  # 1-s frames every 0.5 s over 6 s
    assert "segments of other set calm-spiky: test folds" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--pair", "calm-ictal"], "no class folder ictal"),
        (["--pair", "calm"], "--pair must be NON-SEIZURE-SEIZURE"),
        (["--pair", "calm-calm"], "distinct"),
        (["--crop-s", "18"], "a segment is 6.0 s"),
        (["--fs", "200", "--crop-s", "0"], "the segment files say 256"),
        (["--column", "-2"], "--column picks a channel"),
    ],
)
def test_segment_folders_bad_options(tmp_path, capsys, args, message):
    root = segment_folders(tmp_path / "set")
    assert run_cli("seizure", "bonn", "--data", str(root), "--pair", "calm-spiky", *args) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_segment_files_need_a_rate_one_channel_and_numbers(tmp_path):
    from nnlab.data.segments import load_segment_folders

    root = segment_folders(tmp_path / "set", edf=False)
    with pytest.raises(NNLabError, match="give it with --fs"):
        load_segment_folders(root, "calm-spiky")
    assert load_segment_folders(root, "calm-spiky", fs=256).fs == 256
    two = np.loadtxt(root / "calm" / "c05.txt")
    np.savetxt(root / "calm" / "c05.txt", np.stack([two, -two], axis=1))  # x and y columns
    # every file of a dataset has the same channels
    with pytest.raises(NNLabError, match="c05.txt: 2 channel\\(s\\), calm/c00 1: .* --column"):
        load_segment_folders(root, "calm-spiky", fs=256)
    found = load_segment_folders(root, "calm-spiky", fs=256, column=1)  # the Bern-Barcelona way
    np.testing.assert_allclose(found.x[5, 0], -two, atol=1e-6)
    with pytest.raises(NNLabError, match="c05.txt: 2 channel\\(s\\) .* --column 2 is not"):
        load_segment_folders(root, "calm-spiky", fs=256, column=2)
    from nnlab.data.eeg import Recording, write_edf  # an EDF file of two signals: the same rule

    np.savetxt(root / "calm" / "c05.txt", two)
    pair = np.stack([two, -two]).astype(np.float32)
    write_edf(root / "calm" / "c07.edf", Recording("c07", 256.0, ["X", "Y"], pair))
    (root / "calm" / "c07.txt").unlink()
    with pytest.raises(NNLabError, match="c07.edf: 2 channel\\(s\\), calm/c00 1"):
        load_segment_folders(root, "calm-spiky", fs=256)
    found = load_segment_folders(root, "calm-spiky", column=1)  # the EDF file gives the rate
    np.testing.assert_allclose(found.x[7, 0], -two, atol=0.05)  # 16-bit EDF samples
    (root / "calm" / "c07.edf").unlink()
    np.savetxt(root / "calm" / "c07.txt", two)
    (root / "calm" / "c05.txt").write_text("1\n2\nthree\n")
    with pytest.raises(NNLabError, match="c05.txt: line 3 is not numbers separated by spaces"):
        load_segment_folders(root, "calm-spiky", fs=256)
    (root / "calm" / "c05.txt").write_text("\n".join(["1"] * 1000))  # a shorter segment
    with pytest.warns(UserWarning, match=r"23 segment\(s\) were cut to the shortest, calm/c05 "):
        found = load_segment_folders(root, "calm-spiky", fs=256)
    assert found.x.shape == (24, 1, 1000) and found.cut == 23
    (root / "calm" / "c05.txt").write_text("\n".join(["1"] * 500))  # cut short: said so
    with pytest.warns(UserWarning, match=r"\(1.95 s; the median is 6 s\): a file cut short\?"):
        load_segment_folders(root, "calm-spiky", fs=256)


def test_mat_segment_files_with_and_without_a_rate(tmp_path):
    """.mat segments (the New Delhi set's layout: one array a file), their rate read from an fs
    variable; a file with two arrays, a v7.3 file and one that is not MATLAB at all are errors
    naming the file."""
    import scipy.io

    from nnlab.data.segments import load_segment_folders

    root = segment_folders(tmp_path / "set", edf=False)
    for i, txt in enumerate(sorted((root / "calm").glob("*.txt"))):
        x = np.loadtxt(txt)
        txt.unlink()
        # a column vector as MATLAB saves one; the first file also says its rate
        scipy.io.savemat(
            root / "calm" / f"c{i:02d}.mat",
            {"interictal": x[:, None]} | ({"Fs": 256.0} if i == 0 else {}),
        )
    found = load_segment_folders(root, "calm-spiky")
    assert found.fs == 256 and found.x.shape == (24, 1, 1536)
    np.testing.assert_allclose(
        found.x[0, 0], scipy.io.loadmat(root / "calm" / "c00.mat")["interictal"][:, 0], rtol=1e-6
    )
    with pytest.raises(NNLabError, match="--fs 200 but the segment files say 256"):
        load_segment_folders(root, "calm-spiky", fs=200)
    scipy.io.savemat(root / "calm" / "c03.mat", {"a": np.ones(10), "b": np.ones(10)})
    with pytest.raises(
        NNLabError,
        match="c03.mat: a segment file holds one array of samples, this one 2 of 10 values: a, b",
    ):
        load_segment_folders(root, "calm-spiky")
    (root / "calm" / "c03.mat").write_bytes(b"MATLAB 7.3 MAT-file" + bytes(200))
    with pytest.raises(NNLabError, match="c03.mat: (a MATLAB v7.3|not a readable .mat)"):
        load_segment_folders(root, "calm-spiky")
    (root / "calm" / "c03.mat").write_bytes(b"not matlab")
    with pytest.raises(NNLabError, match="c03.mat: not a readable .mat file"):
        load_segment_folders(root, "calm-spiky")


# ---- segments of several channels: the Kaggle and Melbourne layouts ---------------------------
KAGGLE_CHANNELS = ("LT1", "LT2", "RT1", "RT2")


def kaggle_folders(root, fs=200.0, seconds=8, n=8):
    """Segments as the Kaggle seizure prediction set ships them: one .mat file each holding a
    struct (data: channels x samples, sampling_frequency, channels: a cell of names, ...).
    'interictal' is noise on four named channels; 'ictal' adds a 3-Hz spike-wave rhythm to the
    two left ones. The second file of each class lists its channels in reverse order."""
    import scipy.io

    rng = np.random.default_rng(2)
    t = np.arange(int(fs * seconds)) / fs
    for cls in ("interictal", "ictal"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            x = 40 * rng.standard_normal((4, len(t)))
            if cls == "ictal":
                x[:2] += 200 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)) ** 15
            names = list(KAGGLE_CHANNELS)
            if i == 1:
                x, names = x[::-1], names[::-1]
            struct = {
                "data": x,
                "data_length_sec": seconds,
                "sampling_frequency": fs,
                "channels": np.array(names, dtype=object),
                "sequence": i % 6 + 1,
            }
            name = f"Dog_1_{cls}_segment_{i + 1:04d}.mat"
            scipy.io.savemat(root / cls / name, {f"{cls}_segment_{i + 1}": struct})
    return root


def test_segments_of_several_named_channels_train_three_towers_and_detect(tmp_path, capsys):
    """Kaggle-style .mat structs of four named channels: read by name (a file in another order
    is reordered), cross-validated by all three towers, and the fold model run by `detect` on an
    EDF recording at another rate whose channels come in another order, with an ECG among them:
    the model reads its four by name, so the order of the file's signals changes nothing."""
    import csv

    import scipy.io

    from nnlab.data.eeg import Recording, write_edf
    from nnlab.data.segments import load_segment_folders
    from nnlab.run import RunDir
    from nnlab.tasks.seizure import detect_file

    root = kaggle_folders(tmp_path / "Dog_1")
    found = load_segment_folders(root, "interictal-ictal")
    assert found.x.shape == (16, 4, 1600) and found.fs == 200.0
    assert found.channels == list(KAGGLE_CHANNELS)
    raw = scipy.io.loadmat(
        root / "interictal" / "Dog_1_interictal_segment_0002.mat", simplify_cells=True
    )["interictal_segment_2"]["data"]
    np.testing.assert_allclose(found.x[1], raw[::-1], rtol=1e-6)  # back in the first's order
    out = tmp_path / "cv"
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "2", "--device", "cpu")
    args = ("--data", str(root), "--pair", "interictal-ictal", "--folds", "2", "--crop-s", "4")
    assert run_cli("seizure", "bonn", *args, *quick, "--mains", "60", "--out", str(out)) == 0
    s = RunDir.open(out).summary()
    assert s["towers"] == ["spatial", "temporal", "spectral"] and s["pooled"]["segments"] == 16
    assert s["classes"] == ["interictal", "ictal"]  # the pair's names, not Bonn's
    assert set(s["gates_by_class"]) == {"interictal", "ictal"}
    said = capsys.readouterr().out
    assert "ictal called interictal, " in said
    assert (
        "16 segments (8 interictal, 8 ictal) of 4 channels (LT1, LT2, RT1, RT2), 8 s at 200 Hz"
        in said
    )
    fold = RunDir.open(out).children()[0]
    meta = json.loads((fold.path / "normalizer.json").read_text())
    assert meta["channels"] == list(KAGGLE_CHANNELS) and meta["fs"] == 200.0

    rng = np.random.default_rng(3)
    fs, n = 256.0, 256 * 40
    t = np.arange(n) / fs
    signals = {c: 40 * rng.standard_normal(n) for c in (*KAGGLE_CHANNELS, "ECG")}
    for c in ("LT1", "LT2"):
        signals[c][20 * 256 :] += 200 * np.sin(2 * np.pi * 3 * t[20 * 256 :]) ** 15
    outputs = []
    for k, order in enumerate(
        (["RT2", "ECG", "LT1", "LT2", "RT1"], ["LT2", "RT1", "ECG", "RT2", "LT1"])
    ):
        edf = tmp_path / f"order{k}" / "dog.edf"
        edf.parent.mkdir()
        data = np.stack([signals[c] for c in order]).astype(np.float32)
        write_edf(edf, Recording("dog", fs, order, data))
        got = detect_file(edf, fold, tmp_path / f"det{k}", device="cpu")
        assert got["channels"] == list(KAGGLE_CHANNELS) and got["rule"] != "maximum over channels"
        assert got["positive_class"] == "ictal"  # the pair's class 1, by name
        with open(tmp_path / f"det{k}" / "dog_windows.csv") as f:
            outputs.append([(r["start_s"], r["probability"]) for r in csv.DictReader(f)])
    assert outputs[0] == outputs[1] and len(outputs[0]) > 10
    assert all(0.0 <= float(p) <= 1.0 for _, p in outputs[0])


def test_segment_files_of_several_montages_keep_the_channels_they_share(tmp_path):
    """Named channels that only some files have (one file lacks RT2, another adds an EKG) are left
    out with a warning naming them; the rest are read by name (as labels compare: 'lt1 ' is
    LT1) in the first file's order."""
    import scipy.io

    from nnlab.data.segments import load_segment_folders

    root = kaggle_folders(tmp_path / "Dog_1")
    lacking = root / "interictal" / "Dog_1_interictal_segment_0003.mat"
    struct = scipy.io.loadmat(lacking, simplify_cells=True)["interictal_segment_3"]
    struct["data"], struct["channels"] = struct["data"][:3], np.array(["LT1", "LT2", "RT1"], object)
    scipy.io.savemat(lacking, {"interictal_segment_3": struct})
    extra = root / "ictal" / "Dog_1_ictal_segment_0004.mat"
    struct = scipy.io.loadmat(extra, simplify_cells=True)["ictal_segment_4"]
    struct["data"] = np.concatenate([np.zeros((1, struct["data"].shape[1])), struct["data"]])
    struct["channels"] = np.array(["EKG", "lt1 ", *KAGGLE_CHANNELS[1:]], object)  # 'lt1 ': LT1
    scipy.io.savemat(extra, {"ictal_segment_4": struct})
    with pytest.warns(UserWarning, match=r"channel\(s\) RT2, EKG are not in every segment file"):
        found = load_segment_folders(root, "interictal-ictal")
    assert found.channels == ["LT1", "LT2", "RT1"] and found.x.shape == (16, 3, 1600)
    np.testing.assert_allclose(found.x[8 + 3], struct["data"][1:4], rtol=1e-6)  # EKG left out
    for f in root.glob("*/*.mat"):  # no channel in common: an error
        if f not in (lacking, extra):
            f.unlink()
    struct["channels"] = np.array(["A", "B", "C", "D", "E"], object)
    scipy.io.savemat(extra, {"ictal_segment_4": struct})
    with pytest.raises(NNLabError, match="no channel is named in every segment file"):
        load_segment_folders(root, "interictal-ictal")


def test_a_class_pattern_finds_the_files_in_folders_below(tmp_path):
    """The Bern-Barcelona set unpacks into folders of 750 files each (Data_F_Ind_1_750/
    Data_F_Ind0001.txt: two columns, x and y): --class-pattern finds them in every folder below
    the one given, and the names keep the folders."""
    from nnlab.data.segments import load_segment_folders

    rng = np.random.default_rng(0)
    for c, first in (("F", 1), ("F", 3), ("N", 1), ("N", 3)):
        folder = tmp_path / "bern" / f"Data_{c}_Ind_{first}_{first + 1}"
        folder.mkdir(parents=True)
        for n in (first, first + 1):
            np.savetxt(folder / f"Data_{c}_Ind{n:04d}.txt", rng.normal(0, 30, (1024, 2)))
    (tmp_path / "bern" / "readme.txt").write_text("the Bern-Barcelona focal and non-focal set")
    found = load_segment_folders(tmp_path / "bern", "N-F", fs=512, class_pattern="^Data_([FN])_")
    assert found.x.shape == (8, 2, 1024) and found.y.tolist() == [0] * 4 + [1] * 4
    assert found.names[0] == "N/Data_N_Ind_1_2/Data_N_Ind0001"
    assert found.names[-1] == "F/Data_F_Ind_3_4/Data_F_Ind0004"


def test_one_folder_of_segments_classes_by_name_and_hours_as_groups(tmp_path, capsys):
    """The Kaggle sets keep a patient's segments in one folder, the class in each file's name,
    test segments beside them; consecutive 10-minute segments of one hour must not be split
    between training and test: --class-pattern and --group with --group-block."""
    import shutil

    from nnlab.data.segments import load_segment_folders
    from nnlab.run import RunDir
    from nnlab.tasks.bonn import fold_parts, segment_groups

    flat = tmp_path / "Dog_1"
    flat.mkdir()
    for f in kaggle_folders(tmp_path / "k").glob("*/*.mat"):
        f.rename(flat / f.name)
    shutil.copy(flat / "Dog_1_ictal_segment_0001.mat", flat / "Dog_1_test_segment_0001.mat")
    pattern = "_(interictal|ictal)_"
    found = load_segment_folders(flat, "interictal-ictal", class_pattern=pattern)
    assert found.x.shape == (16, 4, 1600) and found.y.tolist() == [0] * 8 + [1] * 8
    assert found.names[0] == "interictal/Dog_1_interictal_segment_0001"
    with pytest.raises(NNLabError, match="no class test .*classes in .*Dog_1: ictal, interictal"):
        load_segment_folders(flat, "interictal-test", class_pattern=pattern)
    groups = segment_groups(found.names, r"_(\d+)$", 6)
    hours = ["interictal/0"] * 6 + ["interictal/1"] * 2 + ["ictal/0"] * 6 + ["ictal/1"] * 2
    assert groups.tolist() == hours
    for k in (0, 1):
        parts = fold_parts(found.y, 2, k, 0, 0.1, groups)
        test = set(groups[parts["test"]])
        assert not test & set(groups[np.concatenate([parts["train"], parts["val"]])])
    base = ("seizure", "bonn", "--data", str(flat), "--pair", "interictal-ictal")
    base += ("--class-pattern", pattern, "--folds", "2")
    assert run_cli(*base, "--group-block", "6") == 1
    assert "--group-block must be >= 0 and needs --group" in capsys.readouterr().err
    assert run_cli(*base, "--group", "_(\\w+)_segment", "--group-block", "6") == 1
    assert "needs a --group match that is a number" in capsys.readouterr().err
    out = tmp_path / "cv"
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "1", "--device", "cpu")
    grouped = ("--group", r"_(\d+)$", "--group-block", "6", "--crop-s", "4", "--mains", "60")
    assert run_cli(*base, *grouped, *quick, "--out", str(out)) == 0
    for fold in RunDir.open(out).children():
        split = json.loads((fold.path / "split.json").read_text())
        index = {name: i for i, name in enumerate(found.names)}
        test = {groups[index[n]] for n in split["test"]}
        assert not test & {groups[index[n]] for n in split["train"]}


def test_nested_selection_keeps_groups_whole_in_outer_and_inner_folds(tmp_path):
    """bench/bonn_select.py with --group: neither the outer test fold nor an inner fold splits a
    group (the hours of the Kaggle layout), and no outer test segment is in an inner part."""
    import importlib.util
    from pathlib import Path

    from nnlab.data.segments import load_segment_folders
    from nnlab.tasks.bonn import fold_parts, segment_groups

    bench = Path(__file__).parents[1] / "bench" / "bonn_select.py"
    spec = importlib.util.spec_from_file_location("bonn_select", bench)
    select = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(select)
    root = kaggle_folders(tmp_path / "Dog_1", n=12)
    found = load_segment_folders(root, "interictal-ictal")
    data = {"data": str(root), "group": r"_(\d+)$", "group_block": 3, "mains": 60.0}
    groups = segment_groups(found.names, data["group"], data["group_block"])
    for outer in (0, 1):
        test = set(fold_parts(found.y, 2, outer, 0, 0.1, groups)["test"].tolist())
        for inner in (0, 1):
            cfg = select.inner_config("crop18-all-fmax40", "interictal-ictal", 2, outer, 0, data)
            parts = select.InnerTask(cfg, inner, 2).split(found.y, found.names)
            train, inner_test = parts["train"], parts["test"]
            assert not test & set(train.tolist()) and not test & set(inner_test.tolist())
            assert not set(groups[train]) & set(groups[inner_test])
            assert len(train) + len(inner_test) + len(test) == len(found.y)


def test_an_edf_segment_with_signals_at_two_rates_reads_at_the_higher(tmp_path):
    """An EDF segment file of two signals, at 256 and 128 Hz: both read, the slower resampled to
    256 Hz, as `resample` gives it."""
    import pyedflib

    from nnlab.data.eeg import read_edf, resample
    from nnlab.data.segments import read_segment

    path = tmp_path / "two.edf"
    writer = pyedflib.EdfWriter(str(path), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    headers = [
        {"label": label, "dimension": "uV", "sample_frequency": fs, "physical_min": -500.0}
        | {"physical_max": 500.0, "digital_min": -32768, "digital_max": 32767}
        | {"transducer": "", "prefilter": ""}
        for label, fs in (("F3", 256), ("F4", 128))
    ]
    writer.setSignalHeaders(headers)
    rng = np.random.default_rng(0)
    writer.writeSamples([rng.normal(0, 40, 256 * 6), rng.normal(0, 40, 128 * 6)])
    writer.close()
    seg = read_segment(path)
    assert seg.x.shape == (2, 256 * 6) and seg.fs == 256.0 and seg.labels == ["F3", "F4"]
    np.testing.assert_array_equal(seg.x[0], read_edf(path, ["F3"]).data[0])
    np.testing.assert_allclose(seg.x[1], resample(read_edf(path, ["F4"]).data, 128, 256)[0][0])
    one = read_segment(path, column=1)
    assert one.fs == 128.0 and one.x.shape == (1, 128 * 6)
    # BioSemi's 24-bit BDF: the same reading
    bdf = tmp_path / "one.bdf"
    writer = pyedflib.EdfWriter(str(bdf), 1, file_type=pyedflib.FILETYPE_BDFPLUS)
    writer.setSignalHeaders([{**headers[0], "digital_min": -(2**23), "digital_max": 2**23 - 1}])
    writer.writeSamples([rng.normal(0, 40, 256 * 6)])
    writer.close()
    seg = read_segment(bdf)
    assert seg.x.shape == (1, 256 * 6) and seg.fs == 256.0 and seg.labels == ["F3"]
    np.testing.assert_array_equal(seg.x[0], read_edf(bdf, ["F3"]).data[0])


def test_segments_of_unnamed_channels_at_two_rates(tmp_path, capsys):
    """The Melbourne set's layout (a struct dataStruct of samples x channels and
    iEEGsamplingRate, channels unnamed), one patient at 400 Hz and one file at 500: refused
    without --rate, read at 200 Hz with it; a dropout (all zeros) is warned about. A model of
    unnamed channels cannot be run on a recording, whose channels it could only take by
    position: `detect` says so."""
    import scipy.io

    from nnlab.data.eeg import Recording, resample, write_edf
    from nnlab.data.segments import load_segment_folders
    from nnlab.run import RunDir

    rng = np.random.default_rng(4)
    kept = {}
    for cls in ("0", "1"):
        (tmp_path / "train_1" / cls).mkdir(parents=True)
        for i in range(6):
            fs = 500.0 if (cls, i) == ("1", 5) else 400.0
            x = 30 * rng.standard_normal((int(fs * 6), 3))  # samples x channels
            if cls == "1":
                x[:, 0] += 150 * np.sin(2 * np.pi * 4 * np.arange(len(x)) / fs) ** 9
            if (cls, i) == ("0", 2):
                x[:] = 0.0  # a dropout: warned about
            kept[(cls, i)] = (x, fs)
            struct = {"data": x, "iEEGsamplingRate": fs, "nSamplesSegment": float(len(x))}
            struct |= {"channelIndices": np.arange(1.0, 4.0)[None], "sequence": 1.0}
            mat = tmp_path / "train_1" / cls / f"1_{i + 1}_{cls}.mat"
            scipy.io.savemat(mat, {"dataStruct": struct})
    root = tmp_path / "train_1"
    with pytest.raises(NNLabError, match=r"different rates \[400.0, 500.0\] Hz; .* --rate HZ"):
        load_segment_folders(root, "0-1")
    found = load_segment_folders(root, "0-1", rate=200.0)
    assert found.x.shape == (12, 3, 1200) and found.fs == 200.0 and found.channels is None
    x, fs = kept[("1", 5)]
    np.testing.assert_allclose(found.x[11], resample(x.T, fs, 200.0)[0], rtol=1e-5, atol=1e-3)
    out = tmp_path / "cv"
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "1", "--device", "cpu")
    args = ("--data", str(root), "--pair", "0-1", "--folds", "2", "--rate", "200", "--mains", "60")
    with pytest.warns(UserWarning, match=r"1 segment\(s\) are flat in every channel, no signal"):
        assert run_cli("seizure", "bonn", *args, *quick, "--out", str(out)) == 0
    fold = RunDir.open(out).children()[0]
    edf = tmp_path / "rec.edf"
    write_edf(edf, Recording("rec", 200.0, ["A", "B", "C"], np.zeros((3, 200 * 30), np.float32)))
    capsys.readouterr()
    assert run_cli("seizure", "detect", str(edf), "--model", str(fold.path)) == 1
    err = capsys.readouterr().err
    assert "reads 3 channels, but the segments it learnt from did not name them" in err
    assert err.count("\n") == 1


def test_short_clips_warn_that_the_temporal_tower_reads_few_frames(tmp_path):
    """1-s clips (the Kaggle detection set's) with the default 1-s STFT segments: one frame, one
    temporal token, said in a warning that gives shorter segments; with those, no warning. And
    a set of one class four times the other's: a warning names the balanced sampler."""
    import warnings

    from nnlab.tasks.bonn import BonnConfig

    root = segment_folders(tmp_path / "clips", seconds=1, edf=False)
    with pytest.warns(UserWarning, match=r"segments of 1 s give 1 STFT frame\(s\) of 1 s: .*"):
        BonnConfig(data=str(root), pair="calm-spiky", fs=256, folds=2).check()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = BonnConfig(data=str(root), pair="calm-spiky", fs=256, folds=2, mains=60)
        cfg.segment_s, cfg.overlap_s = 0.25, 0.125
        cfg.check()
    # a class four times the other's size: the balanced sampler is suggested
    for f in sorted((root / "spiky").glob("*.npy"))[3:]:
        f.unlink()
    with pytest.warns(UserWarning, match="calm-spiky: 12 segments against 3; .* 80% .* balanced"):
        cfg.check()
    cfg.train.sampler = "balanced"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg.check()


def test_segments_too_large_for_the_memory_are_warned_about(tmp_path, monkeypatch):
    """The samples and twice the spectrograms, against the machine's memory (here made small):
    a warning gives the sizes and names --rate and --fmax."""
    import warnings

    from nnlab.tasks import bonn
    from nnlab.tasks.bonn import BonnConfig

    root = segment_folders(tmp_path / "set", edf=False)
    cfg = BonnConfig(data=str(root), pair="calm-spiky", fs=256, folds=2, mains=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg.check()  # a few hundred kB: no warning on any machine
    monkeypatch.setattr(bonn, "physical_memory", lambda: 2**18)  # 256 kiB
    monkeypatch.setattr(bonn, "ON_DISK_SHARE", 100.0)  # the set kept in memory all the same
    with pytest.warns(UserWarning, match=r"24 segments need about 0\.0 GiB .* --rate .* --fmax"):
        cfg.check()
    monkeypatch.setattr(bonn, "ON_DISK_SHARE", 0.125)  # as by default: on disk, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg.check()
    assert isinstance(bonn.bonn_segments(cfg).x, np.memmap)


def test_a_set_too_large_for_the_memory_is_put_on_disk_and_read_back(tmp_path, monkeypatch):
    """Above ON_DISK_SHARE of the memory a folder set goes to $NNLAB_CACHE/segments: a memory map
    of the same samples, names and classes; a second reading reads no file and gives the first
    one's warnings again; a changed file makes a new entry; a cut-short entry is rebuilt, never
    read; the spectrograms are stored beside it, equal to those made in memory."""
    import os
    import shutil

    from nnlab.data import segments
    from nnlab.data.segments import load_segment_folders
    from nnlab.tasks import bonn
    from nnlab.tasks.bonn import BonnConfig, fold_spectrograms, spectrograms

    root = segment_folders(tmp_path / "set", edf=False)
    np.save(root / "spiky" / "s05.npy", np.zeros(1536, np.float32))  # one flat segment
    store = tmp_path / "cache" / "segments"
    held = load_segment_folders(root, "calm-spiky", fs=256)
    assert not isinstance(held.x, np.memmap) and held.flat == ["spiky/s05"]
    found = load_segment_folders(root, "calm-spiky", fs=256, store=store, memory_limit=1000)
    assert isinstance(found.x, np.memmap) and Path(found.x.filename).parent == store
    np.testing.assert_array_equal(found.x, held.x)
    assert found.names == held.names and found.y.tolist() == held.y.tolist()
    assert (found.fs, found.cut, found.flat) == (256, 0, ["spiky/s05"])
    assert not [p for p in store.iterdir() if p.is_dir() or p.suffix == ".tmp"]  # no leftovers
    # what a killed run left: swept a day later, not while it may still be written
    stale = [store / ".set-0.npy.x1.tmp", store / "tmpabc", store / ".set-0.npy.x2.tmp"]
    stale[0].write_bytes(b"half")
    stale[1].mkdir()
    (stale[1] / "0.npy").write_bytes(b"x")
    stale[2].write_bytes(b"now")
    for path in stale[:2]:
        os.utime(path, (0, 0))
    load_segment_folders(root, "calm-spiky", fs=256, store=store, memory_limit=1000)
    assert [p.exists() for p in stale] == [False, False, True]
    stale[2].unlink()
    # a first file far shorter than the rest: the running count puts the set on disk all the same
    shorter = tmp_path / "shorter first"
    shutil.copytree(root, shorter)
    np.savetxt(shorter / "calm" / "c00.txt", np.ones(3))  # 3 samples: 24 files seem 288 bytes
    late = load_segment_folders(shorter, "calm-spiky", fs=256, store=store, memory_limit=20_000)
    assert isinstance(late.x, np.memmap) and late.x.shape == (24, 1, 3)
    elsewhere = tmp_path / "other cache"  # under the limit: in memory, nothing stored
    small = load_segment_folders(root, "calm-spiky", fs=256, store=elsewhere, memory_limit=10**9)
    assert not isinstance(small.x, np.memmap) and not elsewhere.exists()
    # read back: no segment file is read
    with monkeypatch.context() as m:  # (undo() would drop the test's own NNLAB_CACHE too)
        m.setattr(segments, "read_segment", lambda *a: pytest.fail("a file was read"))
        again = load_segment_folders(root, "calm-spiky", fs=256, store=store, memory_limit=1000)
    assert again.x.filename == found.x.filename and again.flat == found.flat
    # another file: a new entry; a cut-short one: rebuilt
    np.save(root / "calm" / "c99.npy", np.ones((1, 1536), np.float32))
    other = load_segment_folders(root, "calm-spiky", fs=256, store=store, memory_limit=1000)
    assert other.x.filename != found.x.filename and len(other.x) == 25
    npy = Path(other.x.filename)
    del other
    with open(npy, "r+b") as f:
        f.truncate(os.path.getsize(npy) - 100)
    rebuilt = load_segment_folders(root, "calm-spiky", fs=256, store=store, memory_limit=1000)
    assert os.path.getsize(npy) == rebuilt.x.nbytes + 128 and rebuilt.x[-1].any()
    # the warnings of the first reading are given again
    from nnlab.data.eeg import Recording, write_edf

    named = tmp_path / "named"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (named / c).mkdir(parents=True)
        for i, labels in enumerate((["T3", "T4"], ["T4", "T3", "EKG"])):
            x = rng.normal(0, 30, (len(labels), 1024))
            write_edf(named / c / f"{i}.edf", Recording(f"{i}", 256, labels, x))
    for _ in range(2):
        with pytest.warns(UserWarning, match="EKG are not in every segment file"):
            on_disk = load_segment_folders(named, "a-b", store=store, memory_limit=1)
        assert isinstance(on_disk.x, np.memmap) and on_disk.channels == ["T3", "T4"]
    # the spectrograms, made on disk beside the samples
    cfg = BonnConfig(data=str(root), pair="calm-spiky", fs=256, folds=2, mains=60)
    monkeypatch.setattr(bonn, "ON_DISK_SHARE", 0.0)
    logp, freqs = fold_spectrograms(bonn.bonn_segments(cfg), cfg)
    assert isinstance(logp, np.memmap) and Path(logp.filename).parent == store  # the test's
    want, want_freqs = spectrograms(np.asarray(rebuilt.x), 256, cfg)
    np.testing.assert_array_equal(logp, want)
    np.testing.assert_array_equal(freqs, want_freqs)


def test_a_fold_on_disk_gives_what_a_fold_in_memory_gives(tmp_path, monkeypatch, capsys):
    """`nnlab seizure bonn` on a set put on disk (memory mapped samples and spectrograms): the
    same test probabilities and gate weights as on the set held in memory."""
    from nnlab.run import RunDir
    from nnlab.tasks import bonn

    root = segment_folders(tmp_path / "set", edf=False)
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "1", "--device", "cpu")
    args = ("--data", str(root), "--pair", "calm-spiky", "--folds", "2", "--fold", "0")
    args += ("--fs", "256", "--crop-s", "4", "--mains", "60", *quick)
    assert run_cli("seizure", "bonn", *args, "--out", str(tmp_path / "memory")) == 0
    assert "on disk" not in capsys.readouterr().out
    monkeypatch.setattr(bonn, "ON_DISK_SHARE", 0.0)
    assert run_cli("seizure", "bonn", *args, "--out", str(tmp_path / "disk")) == 0
    assert "at 256 Hz; on disk in " in capsys.readouterr().out
    assert list((tmp_path / "cache" / "segments").glob("set-*-spectra-*.npy"))
    cases = [
        json.loads(
            (RunDir.open(tmp_path / d).children()[0].path / "test_predictions.json").read_text()
        )
        for d in ("memory", "disk")
    ]
    assert cases[0] == cases[1] and len(cases[0]) == 12


def test_the_training_part_is_normalised_as_it_is_read():
    """NormalisedSegments gives what normalising the training part at once gives, batch by batch
    and item by item; the normaliser fitted in chunks equals the one fitted at once."""
    from nnlab.signal.spectral import Normalizer
    from nnlab.tasks.bonn import NormalisedSegments

    rng = np.random.default_rng(0)
    logp = rng.normal(3, 2, (40, 2, 7, 5)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    idx = rng.permutation(40)[:30]
    whole = Normalizer(per="frequency").fit(logp[idx])
    chunked = Normalizer(per="frequency").fit(logp[idx[i : i + 7]] for i in range(0, 30, 7))
    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(chunked.std, whole.std, rtol=1e-12)
    data = NormalisedSegments(logp, y, idx, whole)
    assert len(data) == 30 and data.shape == (2, 7, 5)
    batch = data.__getitems__([3, 0, 29])
    want = whole(logp[idx[[3, 0, 29]]])
    for (x, label), w, i in zip(batch, want, [3, 0, 29]):
        np.testing.assert_array_equal(x.numpy(), w)
        assert int(label) == y[idx[i]]
    x, label = data[5]
    np.testing.assert_array_equal(x.numpy(), whole(logp[idx[5]]))
    assert data.labels.tolist() == y[idx].tolist()
    # in order, a few at a time (the test part's prediction)
    np.testing.assert_array_equal(torch.cat(list(data.batches(7))).numpy(), whole(logp[idx]))


def test_the_test_part_is_predicted_a_batch_at_a_time():
    """BonnTask.predict: the same probabilities and gates in batches of 3 as in one batch, each
    segment the mean over its test crops."""
    from nnlab.signal.spectral import Normalizer
    from nnlab.tasks.bonn import BonnConfig, BonnTask, NormalisedSegments, averaged_prediction

    rng = np.random.default_rng(0)
    logp = rng.normal(3, 2, (10, 1, 46, 12)).astype(np.float32)
    data = NormalisedSegments(logp, np.arange(10) % 2, np.arange(10), Normalizer().fit(logp))
    task = BonnTask(BonnConfig())
    cfg = model_config(
        "eeg_transformer", channels=1, frames=35, freqs=12, towers=["temporal", "spectral"], dim=16
    )
    model = build_model("eeg_transformer", cfg).eval()
    task.cfg.train.batch_size = 3
    probs, gates = task.predict(model, data)
    with torch.no_grad():
        want, want_gates = averaged_prediction(model, torch.from_numpy(data.norm(logp)), 35, 5)
    np.testing.assert_allclose(probs, want.numpy(), atol=1e-6)
    np.testing.assert_allclose(gates, want_gates.numpy(), atol=1e-6)
    assert probs.shape == (10, 2) and gates.shape == (10, 2)


def test_the_folds_of_a_run_share_one_array_of_spectrograms(tmp_path):
    """`fold_spectrograms`: the same segments with the same front end give the array made last
    (read only, shared by the folds); another front end makes a new one, equal to
    `spectrograms`."""
    import dataclasses

    from nnlab.tasks.bonn import BonnConfig, bonn_segments, fold_spectrograms, spectrograms

    root = segment_folders(tmp_path / "set", edf=False)
    cfg = BonnConfig(data=str(root), pair="calm-spiky", fs=256, folds=2, mains=60)
    found = bonn_segments(cfg)
    a, _ = fold_spectrograms(found, cfg)
    b, _ = fold_spectrograms(found, dataclasses.replace(cfg, fold=1))
    assert a is b and not a.flags.writeable
    c, _ = fold_spectrograms(found, dataclasses.replace(cfg, fmax=30.0))
    assert c is not a and c.shape[-1] < a.shape[-1]
    np.testing.assert_array_equal(
        c, spectrograms(found.x, found.fs, dataclasses.replace(cfg, fmax=30.0))[0]
    )


def test_long_segments_are_covered_by_the_test_crops():
    """A 10-minute segment of 1199 frames read in 18-s crops of 35 frames: the test averages at
    least enough evenly spaced crops to cover every frame (35), Bonn's 46 frames still 5."""
    from nnlab.tasks.bonn import BonnConfig, BonnTask, crop_starts

    task = BonnTask(BonnConfig())
    for T, k in ((1199, 35), (46, 5)):
        L = task.cfg.crop_frames(T)
        assert L == 35 and task.k_crops(T) == k
        covered = np.zeros(T, bool)
        for s in crop_starts(T, L, task.k_crops(T)):
            covered[s : s + L] = True
        assert covered.all()


# ---- random time crops and test-time averaging ---------------------------------------------
def test_crop_frames_of_the_config():
    from nnlab.tasks.bonn import BonnConfig

    # 1-s STFT segments every 0.5 s: a 23.6-s segment has 46 frames, an 18-s crop 35
    assert BonnConfig(crop_s=0.0).crop_frames(46) == 46  # no crops: the whole segment
    # the default: 18-s crops of a segment longer than 18 s, the whole of a shorter one
    assert BonnConfig().crop_frames(46) == 35 and BonnConfig().crop_frames(35) == 35
    assert BonnConfig().crop_frames(11) == 11  # 6-s segments
    assert BonnConfig(crop_s=18.0).crop_frames(46) == 35
    assert BonnConfig(crop_s=1.0).crop_frames(46) == 1
    assert BonnConfig(crop_s=23.6).crop_frames(46) == 46


def test_crops_lie_inside_the_segment_and_cover_it():
    from nnlab.tasks.bonn import crop, crop_starts

    x = torch.randn(4, 1, 10, 3)
    starts = torch.tensor([0, 3, 6, 2])
    out = crop(x, 4, starts)
    assert out.shape == (4, 1, 4, 3)
    for b, s in enumerate(starts.tolist()):
        torch.testing.assert_close(out[b], x[b, :, s : s + 4])
    s = crop_starts(46, 35, 5)
    assert s[0] == 0 and s[-1] == 46 - 35 and s == sorted(s)
    covered = set().union(*(range(k, k + 35) for k in s))
    assert covered == set(range(46))  # every frame read by some crop
    assert crop_starts(10, 4, 1) == [3]  # one crop: the centred one


def crop_task(crop_s: float, test_crops: int = 3):
    from nnlab.tasks.bonn import BonnConfig, BonnTask

    return BonnTask(BonnConfig(crop_s=crop_s, test_crops=test_crops))


def test_training_reads_one_random_crop_per_segment_inside_it():
    """The training part (NormalisedSegments with crop) gives L consecutive frames of each
    segment, starting anywhere from frame 0 to T - L, drawn anew at each batch from torch's
    generator; the loss takes them whole, and refuses uncropped training batches."""
    from nnlab.signal.spectral import Normalizer
    from nnlab.tasks.bonn import NormalisedSegments

    T = 46
    logp = np.tile(np.arange(T, dtype=np.float32)[None, None, :, None], (64, 1, 1, 2))
    norm = Normalizer(mean=np.zeros(2, np.float32), std=np.ones(2, np.float32))
    data = NormalisedSegments(logp, np.zeros(64, np.int64), np.arange(64), norm, crop=35)
    torch.manual_seed(0)
    first = torch.stack([x for x, _ in data.__getitems__(list(range(64)))])
    second = torch.stack([x for x, _ in data.__getitems__(list(range(64)))])
    assert first.shape == (64, 1, 35, 2)
    starts = first[:, 0, 0, 0].long()
    # consecutive frames of the segment itself (frame t holds the value t)
    torch.testing.assert_close(first[:, 0, :, 0], starts[:, None] + torch.arange(35.0))
    assert starts.min() >= 0 and starts.max() <= T - 35
    assert len(set(starts.tolist())) > 5  # random, not one fixed window
    assert not torch.equal(starts, second[:, 0, 0, 0].long())  # new crops at the next batch
    torch.manual_seed(0)  # the loop's seeded generator: the same draws as the loss once made
    assert starts.tolist() == torch.randint(0, T - 35 + 1, (64,)).tolist()

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, return_gates=False):
            seen.append(x.clone())
            return torch.zeros(x.shape[0], 2, requires_grad=True)

    task, model = crop_task(18.0), Spy().train()
    task.loss(model, (first, torch.zeros(64, dtype=torch.long)))
    assert torch.equal(seen[0], first)  # the crops, as they came
    with pytest.raises(RuntimeError, match="training batches are crops"):
        task.loss(model, (torch.from_numpy(logp), torch.zeros(64, dtype=torch.long)))


def test_training_gain_shifts_each_segments_log_power_by_one_draw():
    """gain_db: each training segment's log power is shifted by one uniform draw in
    +-gain_db ln10 / 10 (a gain of the signal: every frame, bin and channel alike), drawn after the
    crops from the same generator, anew at each batch; without it the crops are drawn as before."""
    from nnlab.signal.spectral import Normalizer
    from nnlab.tasks.bonn import BonnConfig, NormalisedSegments

    rng = np.random.default_rng(0)
    logp = rng.normal(size=(64, 2, 46, 5)).astype(np.float32)
    norm = Normalizer(mean=np.zeros(5, np.float32), std=np.ones(5, np.float32))
    plain = NormalisedSegments(logp, np.zeros(64, np.int64), np.arange(64), norm, crop=35)
    gained = NormalisedSegments(logp, np.zeros(64, np.int64), np.arange(64), norm, 35, 6.0)
    torch.manual_seed(3)
    a = torch.stack([x for x, _ in plain.__getitems__(list(range(64)))])
    torch.manual_seed(3)
    b = torch.stack([x for x, _ in gained.__getitems__(list(range(64)))])
    c = torch.stack([x for x, _ in gained.__getitems__(list(range(64)))])
    shift = (b - a).double()  # the same crops: only the gain differs
    per_segment = shift[:, 0, 0, 0]
    torch.testing.assert_close(
        shift, per_segment[:, None, None, None].expand_as(shift), atol=1e-5, rtol=0
    )
    bound = 6.0 * np.log(10.0) / 10.0
    assert per_segment.abs().max() <= bound + 1e-5 and per_segment.abs().max() > 0.8 * bound
    assert per_segment.std() > 0.3 * bound  # spread over the range, not one constant
    assert not torch.equal(b, c)  # drawn anew
    torch.manual_seed(3)
    torch.randint(0, 46 - 35 + 1, (64,))  # the crops' draws come first
    expected = (2 * torch.rand(64, dtype=torch.float64) - 1) * bound
    torch.testing.assert_close(per_segment, expected, atol=1e-5, rtol=0)
    with pytest.raises(NNLabError, match="gain-db"):
        BonnConfig(gain_db=-1.0).check()


def test_evaluation_averages_the_probabilities_of_the_crops():
    """Eval mode: P(seizure) = mean over the evenly spaced crops of softmax(model(crop))[:, 1];
    the loss is the cross-entropy of that mean; the gates are the mean of the crops' gates."""
    from nnlab.tasks.bonn import averaged_prediction, crop_starts

    task = crop_task(18.0, test_crops=3)
    model = tiny(channels=1, frames=35, freqs=6).eval()
    x, y = torch.randn(5, 1, 46, 6), torch.tensor([0, 1, 1, 0, 1])
    with torch.no_grad():
        out = task.loss(model, (x, y))
        per_crop = [model(x[:, :, s : s + 35], return_gates=True) for s in crop_starts(46, 35, 3)]
        probs = torch.stack([torch.softmax(lg, 1) for lg, _ in per_crop]).mean(0)
        _, gates = averaged_prediction(model, x, 35, 3)
    torch.testing.assert_close(out.preds, probs[:, 1])
    torch.testing.assert_close(out.losses["loss"], F.nll_loss(probs.log(), y))
    torch.testing.assert_close(gates, torch.stack([g for _, g in per_crop]).mean(0))
    # the mean of the probabilities, not the probability of the mean logits
    mean_logits = torch.stack([lg for lg, _ in per_crop]).mean(0)
    assert not torch.allclose(out.preds, torch.softmax(mean_logits, 1)[:, 1])


def test_checkpoint_best_carves_a_validation_part_and_last_trains_on_it():
    from nnlab.tasks.bonn import BonnConfig, BonnTask

    y = np.repeat([0, 1], 50)
    best = BonnTask(BonnConfig(folds=5, fold=2, checkpoint="best")).split(y)
    last = BonnTask(BonnConfig(folds=5, fold=2, checkpoint="last")).split(y)
    assert set(best) == {"train", "val", "test"} and set(last) == {"train", "test"}
    np.testing.assert_array_equal(last["test"], best["test"])  # the same test fold
    np.testing.assert_array_equal(last["train"], np.sort(np.r_[best["train"], best["val"]]))
    assert len(best["val"]) == 8 and y[best["val"]].sum() == 4  # a stratified tenth of 80


def test_without_crops_the_loss_is_the_plain_whole_segment_one():
    task = crop_task(0.0)
    model = tiny(channels=1, frames=46, freqs=6).eval()
    x, y = torch.randn(4, 1, 46, 6), torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        out = task.loss(model, (x, y))
        logits = model(x)
    torch.testing.assert_close(out.losses["loss"], F.cross_entropy(logits, y))
    torch.testing.assert_close(out.preds, torch.softmax(logits, 1)[:, 1])


def test_segments_with_line_noise_the_notch_misses_are_warned_about():
    """American segments (60-Hz line noise) read with the Bonn default --mains 50: the notch
    would leave the line in, and the front end says so; with --mains 60, or with the bins above
    40 Hz dropped, it does not."""
    import warnings

    from nnlab.tasks.bonn import BonnConfig, spectrograms

    fs = 256.0
    t = np.arange(int(20 * fs)) / fs
    x = np.random.default_rng(0).normal(0, 10, (12, 1, len(t))) + 8 * np.sin(2 * np.pi * 60 * t)
    with pytest.warns(UserWarning, match="line noise at 60 Hz, but the notch is set for 50 Hz"):
        spectrograms(x, fs, BonnConfig(data="/some/folder", fmax=0))
    for cfg in (BonnConfig(data="/some/folder", fmax=0, mains=60), BonnConfig(fmax=-1)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            spectrograms(x, fs, cfg)


def test_pair_names_class_folders_that_hold_a_dash():
    from nnlab.data.segments import parse_pair

    classes = ["ictal", "interictal", "pre-ictal"]
    assert parse_pair("pre-ictal-ictal", classes) == (("pre-ictal",), ("ictal",))
    assert parse_pair("interictal+pre-ictal-ictal", classes) == (
        ("interictal", "pre-ictal"),
        ("ictal",),
    )
    with pytest.raises(NNLabError, match="splits into class folders in 2 ways"):
        parse_pair("a-b-c", ["a", "b", "c", "a-b", "b-c"])
    with pytest.raises(NNLabError, match="no class folder seizure"):
        parse_pair("interictal-seizure", classes)


def uci_table(path, rows: int = 60, seed: int = 0):
    """A table laid out as the UCI 'Epileptic Seizure Recognition' set: a header ',X1..X178,y',
    then one 1-s segment (178 samples at 173.61 Hz) a row, named 'X21.V1.791', classes 1-5 (1:
    a seizure, here a 3-Hz spike-wave rhythm)."""
    rng = np.random.default_rng(seed)
    t = np.arange(178) / 173.61
    lines = ["," + ",".join(f"X{i}" for i in range(1, 179)) + ",y"]
    for n in range(rows):
        y = n % 5 + 1
        x = rng.normal(0, 30, 178) + (y == 1) * 200 * np.sin(2 * np.pi * 3 * t + n) ** 9
        lines.append(f"X{n}.V1.{n}," + ",".join(str(int(v)) for v in x) + f",{y}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_table_of_segments_cross_validates(tmp_path, capsys):
    """`nnlab seizure bonn --data table.csv`: one segment a row, the classes from its y column
    (2+3+4+5 against 1, as the UCI set is used), the rows named by the first column."""
    from nnlab.data.segments import load_segment_table
    from nnlab.run import RunDir

    table = uci_table(tmp_path / "uci.csv")
    found = load_segment_table(table, "2+3+4+5-1", fs=173.61)
    assert found.x.shape == (60, 1, 178) and found.fs == 173.61
    assert found.y.tolist() == [1, 0, 0, 0, 0] * 12
    assert found.names[:2] == ["1/X0.V1.0", "2/X1.V1.1"]
    assert load_segment_table(table, "2-1", fs=173.61).x.shape == (24, 1, 178)  # only those classes
    out = tmp_path / "cv"
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "2", "--device", "cpu")
    args = ("--data", str(table), "--pair", "2+3+4+5-1", "--fs", "173.61", "--folds", "2")
    args += ("--segment-s", "0.25", "--overlap-s", "0.125")
    assert run_cli("seizure", "bonn", *args, *quick, "--out", str(out)) == 0
    s = RunDir.open(out).summary()
    assert s["pooled"]["segments"] == 60 and s["folds_run"] == 2
    assert "segments of uci.csv 2+3+4+5-1: test folds" in capsys.readouterr().out


def test_a_table_of_segments_bad_input_is_named(tmp_path, capsys):
    from nnlab.data.segments import load_segment_table

    table = uci_table(tmp_path / "uci.csv", rows=10)
    with pytest.raises(NNLabError, match="a table carries no sampling rate"):
        load_segment_table(table, "2-1")
    with pytest.raises(NNLabError, match="no class 6 \\(the table's classes: 1, 2, 3, 4, 5\\)"):
        load_segment_table(table, "2-6", fs=173.61)
    lines = table.read_text().splitlines()
    lines[3] = lines[3].replace(",", ",x", 1)
    (tmp_path / "bad.csv").write_text("\n".join(lines))
    with pytest.raises(NNLabError, match="bad.csv: line 4: 'x.*' is not a number"):
        load_segment_table(tmp_path / "bad.csv", "2-1", fs=173.61)
    lines[3] = lines[3] + ",7"
    (tmp_path / "bad.csv").write_text("\n".join(lines[:2] + [""] + lines[2:]))  # a blank line
    with pytest.raises(NNLabError, match="bad.csv: line 5 has 181 cells, the header 180"):
        load_segment_table(tmp_path / "bad.csv", "2-1", fs=173.61)
    lines = table.read_text().splitlines()
    cells = lines[3].split(",")
    lines[3] = ",".join([cells[0], "nan", *cells[2:]])
    (tmp_path / "bad.csv").write_text("\n".join(lines))
    with pytest.raises(NNLabError, match="bad.csv: line 4: a sample is NaN"):
        load_segment_table(tmp_path / "bad.csv", "2-1", fs=173.61)
    args = ("--data", str(table), "--pair", "2-1", "--fs", "173.61", "--column", "0")
    assert run_cli("seizure", "bonn", *args) == 1
    assert "--column picks a channel" in capsys.readouterr().err
    assert run_cli("seizure", "bonn", "--data", str(tmp_path / "no.csv"), "--pair", "2-1") == 1
    assert "or a .csv / .tsv table of segments" in capsys.readouterr().err


def test_group_keeps_the_chunks_of_one_recording_in_one_fold(tmp_path, capsys):
    """--group: a regular expression on the segments' names; segments whose names give the same
    match never lie on both sides of a fold (nor of the validation split). Bad patterns are one
    line."""
    from nnlab.data.segments import load_segment_table
    from nnlab.run import RunDir
    from nnlab.tasks.bonn import fold_parts, segment_groups

    table = uci_table(tmp_path / "uci.csv", rows=60)
    found = load_segment_table(table, "2+3+4+5-1", fs=173.61)
    groups = segment_groups(found.names, r"\.V1\.(\d+)$")
    assert groups[:3].tolist() == ["0", "1", "2"]
    recording = np.array([str(int(g) // 5) for g in groups])  # 5 rows a "recording"
    for k in range(3):
        parts = fold_parts(found.y, 3, k, 0, 0.2, recording)
        sides = [set(recording[idx]) for idx in parts.values()]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert segment_groups(found.names, "") is None
    with pytest.raises(NNLabError, match="does not match the segment name '1/X0.V1.0'"):
        segment_groups(found.names, "Z+")
    out = tmp_path / "cv"
    args = ("--data", str(table), "--pair", "2+3+4+5-1", "--fs", "173.61", "--folds", "2")
    quick = ("-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "1")
    group = ("--group", r"V1\.(\d)")  # the first digit of the row number: 10 groups
    assert run_cli("seizure", "bonn", *args, *quick, *group, "--out", str(out)) == 0
    names = [json.loads((c.path / "split.json").read_text()) for c in RunDir.open(out).children()]
    firsts = [{n.split(".")[-1][0] for n in s["test"]} for s in names]
    assert not firsts[0] & firsts[1]  # no group in both test folds
    assert run_cli("seizure", "bonn", *args, "--group", "(") == 1
    assert "is not a regular expression" in capsys.readouterr().err
    assert run_cli("seizure", "bonn", *args, "--folds", "3", "--group", "(V1)") == 1  # one group
    assert "3 folds need at least 3 groups (--group) of each class; 2+3+4+5-1 has [1, 1]" in (
        capsys.readouterr().err
    )


def test_a_set_of_more_files_than_a_process_may_open_goes_on_disk(tmp_path):
    """The samples of a set on disk wait to be stacked as files, not as memory maps (each holds a
    file descriptor): 80 files are read under a limit of 30 more descriptors than are open."""
    import os

    resource = pytest.importorskip("resource")
    from nnlab.data.segments import load_segment_folders

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "many" / c).mkdir(parents=True)
        for i in range(40):
            np.save(tmp_path / "many" / c / f"{i:02d}.npy", rng.normal(0, 30, 256).astype("f4"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 30, hard))
    try:
        found = load_segment_folders(
            tmp_path / "many", "a-b", fs=128, store=tmp_path / "store", memory_limit=1
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert isinstance(found.x, np.memmap) and found.x.shape == (80, 1, 256)
