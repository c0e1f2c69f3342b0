"""Seizure prediction on long recordings (issue 16 items 3, 4, 6, 7): prepare (cache and labels),
leave-one-seizure-out folds, the normaliser's data, train + evaluate end to end, exact resume,
detection on a resampled, remontaged file, the k-of-n alarms within stretches, the CLI.

A tiny synthetic patient: three 6-minute files 10 minutes apart, a seizure in the second and the
third, labelled with SOP 60 s, SPH 10 s and an interictal gap of 120 s, four channels."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from nnlab.cli import main
from nnlab.data.eeg import (
    Recording,
    edf_header,
    read_edf,
    resample,
    split_discontinuous,
    unique_labels,
    write_edf,
)
from nnlab.data.synthetic import make_small_patient
from nnlab.errors import NNLabError
from nnlab.run import RunDir
from nnlab.signal.labels import INTERICTAL, PREICTAL, label_windows
from nnlab.signal.spectral import Normalizer
from nnlab.tasks.base import load_config, run_task
from nnlab.tasks.seizure import (
    SeizureConfig,
    SeizureCV,
    SeizureFoldTask,
    alarm_windows,
    detect_file,
    evaluate_run,
    fold_parts,
    loso_folds,
    prepare_patient,
    read_heldout,
    run_seizure_cv,
)

CHANNELS = ("FP1-F7", "F7-T7", "T7-P7", "P7-O1")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two cores shared with other training runs: one thread each is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("eeg")
    make_small_patient(root)
    return root


EPOCHS = 2  # the trained run's; the resume test interrupts a run like it in its last epoch


def config(folder, **over) -> SeizureConfig:
    """The config of `trained`: the task's defaults with the tiny patient's options."""
    train = dataclasses.replace(
        SeizureConfig().train, epochs=over.pop("epochs", EPOCHS), batch_size=32
    )
    args = dict(
        data=str(folder),
        patient="chb01",
        cache=str(folder / "cache"),
        channels=CHANNELS,
        sop_s=60.0,
        sph_s=10.0,
        interictal_gap_s=120.0,
        alarm_k=3,
        alarm_n=5,
        model_args={"dim": 16},
        train=train,
    )
    return SeizureConfig(**{**args, **over})


def cli_args(folder) -> list[str]:
    """The options of `config(folder)` on the command line."""
    return [
        *("--data", str(folder), "--patient", "chb01", "--cache", str(folder / "cache")),
        *("--channels", ",".join(CHANNELS), "--sop-s", "60", "--sph-s", "10"),
        *("--interictal-gap-s", "120"),
    ]


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """`nnlab seizure train` through the command line: `config(folder)`."""
    out = tmp_path_factory.mktemp("runs") / "cv"
    code = cli(
        *("seizure", "train", *cli_args(folder), "--alarm-k", "3", "--alarm-n", "5"),
        *("--epochs", str(EPOCHS), "--batch-size", "32", "-m", "dim=16", "--out", str(out)),
    )
    assert code == 0
    run = RunDir.open(out)
    return run, run.summary()


# ---- prepare -------------------------------------------------------------------------------------
def test_prepare_caches_every_recording_and_labels_as_label_windows(folder):
    cfg = config(folder)
    prep = prepare_patient(cfg)
    cached = sorted((folder / "cache").glob("chb01_*.npy"))
    assert [p.name.split("-")[0] for p in cached] == ["chb01_01", "chb01_02", "chb01_03"]
    assert (folder / "cache" / "chb01-prepared.json").exists()
    assert prep.store.window_shape[0] == len(CHANNELS)
    # the labels are label_windows' on the windows' global times
    seizures = prep.patient.seizures
    np.testing.assert_array_equal(
        prep.label, label_windows(prep.start_s, prep.end_s, seizures, cfg.labels())
    )
    # base windows tile each file every 5 s; the extra (oversampled) ones are all preictal
    for f, entry in enumerate(prep.patient.files):
        base = prep.start_s[(prep.file == f) & prep.base] - entry.start_s
        np.testing.assert_allclose(base, 5.0 * np.arange(len(base)))
        assert len(base) == int(entry.duration_s // 5)
    assert (~prep.base).sum() > 0 and (prep.label[~prep.base] == PREICTAL).all()
    assert [r["preictal"] for r in prep.rows] == [0, 12, 12]  # SOP / window = 60 / 5
    # a second call reads the cache (the files are not rewritten)
    stamps = [p.stat().st_mtime_ns for p in cached]
    prepare_patient(cfg)
    assert [p.stat().st_mtime_ns for p in cached] == stamps


# ---- folds ---------------------------------------------------------------------------------------
def overlaps(prep, a, b) -> bool:
    """Some window of a overlaps some window of b in time."""
    sa, ea, sb, eb = prep.start_s[a], prep.end_s[a], prep.start_s[b], prep.end_s[b]
    return bool(((sa[:, None] < eb[None, :]) & (ea[:, None] > sb[None, :])).any())


@pytest.mark.parametrize("guard_s", [0.0, 30.0])
def test_folds_hold_out_one_seizure_and_keep_overlaps_out_of_training(folder, guard_s):
    cfg = config(folder, guard_s=guard_s)
    prep = prepare_patient(cfg)
    folds = fold_parts(prep, cfg)
    assert len(folds) == len(prep.leading) == 2  # one per leading seizure
    inter = np.flatnonzero((prep.label == INTERICTAL) & prep.base)
    blocks = []
    for k, fold in enumerate(folds):
        train, val, test = fold["train"], fold["val"], fold["test"]
        assert int(fold["seizure"]) == k
        # the test part: every base preictal window of seizure k, no other preictal window
        pre = (prep.label[test] == PREICTAL) & (prep.episode[test] == k)
        assert set(test[prep.label[test] == PREICTAL]) == set(
            np.flatnonzero((prep.episode == k) & prep.base)
        )
        assert pre.sum() == 12 and prep.base[test].all()
        blocks.append(test[prep.label[test] == INTERICTAL])
        # disjoint, and no training or validation window overlaps a test window in time
        assert not set(train) & set(test) and not set(val) & set(test) and not set(train) & set(val)
        assert not overlaps(prep, train, test) and not overlaps(prep, val, test)
        assert not overlaps(prep, train, val)
        if guard_s:
            near = (prep.start_s[train, None] < prep.end_s[None, test] + guard_s) & (
                prep.end_s[train, None] > prep.start_s[None, test] - guard_s
            )
            assert not near.any()
        # the oversampled copies of the test seizure's windows never reach training
        assert not (prep.episode[train] == k).any()
        assert (prep.episode[train] == 1 - k).any() and (prep.label[train] == INTERICTAL).any()
        assert prep.base[val].all() and {0, 1} <= set(prep.label[val].tolist())
    # the interictal blocks: contiguous in time, in order, together every interictal window
    assert np.array_equal(np.concatenate(blocks), inter)


def test_loso_folds_cut_interictal_time_into_ordered_blocks_and_validate_on_the_tail():
    # 3 seizures' preictal runs (4 windows each) among 30 interictal windows, 1-s windows
    start = np.arange(42, dtype=float)
    label = np.zeros(42, int)
    episode = np.full(42, -1)
    for k, a in enumerate((10, 24, 38)):
        label[a : a + 4], episode[a : a + 4] = PREICTAL, k
    folds = loso_folds(start, start + 1, label, np.ones(42, bool), episode, val_fraction=0.25)
    inter = np.flatnonzero(label == INTERICTAL)
    for k, fold in enumerate(folds):
        block = np.array_split(inter, 3)[k]
        assert set(fold["test"]) == set(block) | set(np.flatnonzero(episode == k))
        # validation: the last quarter (by time) of every other block
        other = [b for j, b in enumerate(np.array_split(inter, 3)) if j != k]
        other += [np.flatnonzero(episode == j) for j in range(3) if j != k]
        want = np.concatenate([b[len(b) - max(1, round(0.25 * len(b))) :] for b in other])
        assert set(fold["val"]) == set(want)
    with pytest.raises(NNLabError, match="at least 2 \\(leading\\) seizures"):
        loso_folds(start, start + 1, np.where(episode == 0, 1, 0), np.ones(42, bool), episode)


@pytest.mark.parametrize("target", ["prediction", "detection"])
def test_a_patient_without_seizures_prepares_and_is_refused_for_training(tmp_path, target):
    """Prepare caches a seizure-free recording (all of it interictal); leave one seizure out then
    says in one line that it needs seizures (it raised a NumPy error before)."""
    from nnlab.data.synthetic import make_chbmit_folder

    make_chbmit_folder(tmp_path, "chb01", n_files=1, hours=0.05, seizures={})
    cfg = dataclasses.replace(
        config(tmp_path, target=target), cache=str(tmp_path / "cache"), interictal_gap_s=-1.0
    )
    prep = prepare_patient(cfg)
    assert len(prep.label) == 36 and (prep.label == INTERICTAL).all() and (prep.episode == -1).all()
    with pytest.raises(NNLabError, match="at least 2 \\(leading\\) seizures .*got 0"):
        fold_parts(prep, cfg)


# ---- train, evaluate, resume ---------------------------------------------------------------------
def test_train_and_evaluate_end_to_end(trained):
    run, summary = trained
    for key in (
        "event_sensitivity",
        "fpr_per_h",
        "time_in_warning",
        "segment/sensitivity",
        "segment/specificity",
        "segment/precision",
        "segment/auc",
        "rows",
        "gates",
    ):
        assert key in summary
    assert summary["folds"] == 2 and len(summary["rows"]) == 2
    assert summary["interictal_h"] == pytest.approx(124 * 5 / 3600)  # every interictal window once
    assert {r["class"] for r in summary["gates"]} == {"interictal", "preictal"}
    figures = {p.stem for p in run.figures()}
    assert {"gates", "timeline_chb01_01", "timeline_chb01_02", "timeline_chb01_03"} <= figures
    for child in (run.path / "fold00", run.path / "fold01"):
        assert (child / "split.json").exists() and (child / "normalizer.json").exists()
        h = read_heldout(RunDir(child))
        assert np.all(np.diff(h["start_s"]) > 0)  # time order
        assert np.all((h["prob"] >= 0) & (h["prob"] <= 1)) and h["gates"].shape[1] == 3
    assert load_config(run, SeizureCV).sop_s == 60.0
    assert run.report_path.exists() and (run.path / "fold00" / "report.html").exists()
    assert run.config()["label_config"]["lead_gap_s"] == 70.0  # resolved: SOP + SPH
    # re-evaluated with another rule: the alarms change, the windows' scores do not
    again = evaluate_run(run, alarm_k=1, alarm_n=1)
    assert again["alarm_k"] == 1 and again["segment/auc"] == summary["segment/auc"]
    assert sum(r["alarms"] for r in again["rows"]) >= sum(r["alarms"] for r in summary["rows"])


def test_normaliser_is_fitted_on_the_training_windows_only(folder, trained):
    run, _ = trained
    cfg = config(folder)
    prep = prepare_patient(cfg)
    fold = fold_parts(prep, cfg)[0]
    saved = Normalizer.from_dict(json.loads((run.path / "fold00" / "normalizer.json").read_text()))
    train = fold["train"][prep.base[fold["train"]]]
    mine = Normalizer(per="channel-frequency").fit(prep.store.get(train))
    np.testing.assert_allclose(saved.mean, mine.mean, rtol=1e-6)
    np.testing.assert_allclose(saved.std, mine.std, rtol=1e-6)
    labelled = np.flatnonzero(prep.label >= 0)
    everything = Normalizer(per="channel-frequency").fit(prep.store.get(labelled))
    assert not np.allclose(saved.mean, everything.mean)


def test_resume_continues_exactly(folder, trained, tmp_path, monkeypatch):
    """Killed in fold 1's second epoch and resumed: fold 0 is kept, fold 1 continues from its
    checkpoint, and the metrics equal those of the uninterrupted run (`trained`, same config)."""
    import nnlab.tasks.seizure as sz

    full, _ = trained
    cfg = config(folder)
    assert load_config(full, SeizureCV).train == cfg.train
    step, calls = sz.SeizureFoldTask.loss, []
    batches = int(np.ceil(len(read_split(full.path / "fold00")) / 32))

    def interrupting(self, model, batch):
        if model.training:
            calls.append(1)
            if len(calls) > (2 * EPOCHS - 1) * batches:  # fold 0 done, fold 1 in its last
                raise KeyboardInterrupt
        return step(self, model, batch)

    part = RunDir.create("b", tmp_path / "b")
    with monkeypatch.context() as mp:
        mp.setattr(sz.SeizureFoldTask, "loss", interrupting)
        with pytest.raises(KeyboardInterrupt):
            run_seizure_cv(cfg, part)
    assert (part.path / "fold00" / "summary.json").exists()
    assert [r["epoch"] for r in RunDir(part.path / "fold01").metrics()] == [1]
    assert not (part.path / "fold01" / "summary.json").exists()
    kept = (part.path / "fold00" / "summary.json").stat().st_mtime_ns
    summary = run_seizure_cv(load_config(part, SeizureCV), part, resume=True)
    assert (part.path / "fold00" / "summary.json").stat().st_mtime_ns == kept

    def strip(rs):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]

    for name in ("fold00", "fold01"):
        assert strip(RunDir(part.path / name).metrics()) == strip(
            RunDir(full.path / name).metrics()
        )
    assert summary["segment/auc"] == full.summary()["segment/auc"]  # not changed by re-evaluation


def read_split(path) -> list[str]:
    return json.loads((path / "split.json").read_text())["train"]


# ---- detect --------------------------------------------------------------------------------------
def remontaged(folder, path, fs=200.0, drop=(), extra=True):
    """chb01_02 at another rate, its channels reversed, an EKG channel added, `drop` removed."""
    source = folder / "chb01" / "chb01_02.edf"
    labels = unique_labels(edf_header(source).labels)
    rec = read_edf(source, labels)
    x, _ = resample(rec.data, rec.fs, fs)
    keep = [i for i in reversed(range(len(labels))) if labels[i] not in drop]
    data, names = x[keep], [labels[i] for i in keep]
    if extra:
        data, names = np.concatenate([data, np.zeros((1, x.shape[1]), np.float32)]), names + ["EKG"]
    write_edf(path, Recording(path.stem, fs, names, data))
    return path


def test_a_patient_file_with_gaps_is_read_as_its_continuous_stretches(tmp_path, edf_plus_d):
    """A patient's EDF+D file with a 30-s gap after 120 s is indexed as two files, named as the
    pieces `nnlab seizure split` writes, placed in time around the gap; each reads the samples
    of that piece (resampled, in part, or whole), and `prepare` caches their windows, none
    across the gap."""
    import shutil

    from nnlab.data.eeg import load_patient, read_resampled

    root = tmp_path / "eeg"
    make_small_patient(root)
    edf = root / "chb01" / "chb01_01.edf"
    edf.write_bytes(edf_plus_d(edf.read_bytes(), gap_after=119, gap_s=30.0))
    with pytest.warns(UserWarning, match="chb01_01.edf has gaps .* chb01_01_part01.edf, chb01_01"):
        patient = load_patient(root, "chb01", CHANNELS)
    one, two = patient.files[:2]
    assert (one.name, two.name) == ("chb01_01_part01.edf", "chb01_01_part02.edf")
    assert two.start_s == one.start_s + 150.0 and (one.duration_s, two.duration_s) == (120, 240)
    pieces = split_discontinuous(edf, tmp_path / "pieces")
    piece = pieces[1]["file"]
    assert pieces[1]["onset_s"] == 150.0
    # at another rate, a part of it: the piece's samples resampled alike
    want, at, _, _ = read_resampled(piece, CHANNELS, 256.0, 240 * 256, 200.0, 1000, 9000)
    got = patient.read_span(1, 200.0, 1000, 9000)
    np.testing.assert_array_equal(got, want[:, 1000 - at : 9000 - at])
    whole = patient.read(1)
    np.testing.assert_array_equal(whole.data, read_edf(piece, list(CHANNELS)).data)
    assert whole.start_s == two.start_s
    cfg = config(root, cache=str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="has gaps"):
        prep = prepare_patient(cfg)
    assert prep.end_s[prep.file == 0].max() <= one.end_s  # no window across the gap
    assert prep.start_s[prep.file == 1].min() >= two.start_s
    assert prep.names[int(np.flatnonzero(prep.file == 1)[0])].startswith("chb01_01_part02@")
    shutil.rmtree(tmp_path / "pieces")


def test_a_patient_file_whose_channels_are_at_two_rates_is_read(tmp_path):
    """A patient file with two of the model's channels at 512 Hz and the rest at 256: indexed
    (not skipped), each rate read and resampled on its own -- the samples of each channel as
    resampling that channel whole gives them --, and prepared like the others."""
    from nnlab.data.eeg import load_patient

    root = tmp_path / "eeg"
    make_small_patient(root)
    edf = root / "chb01" / "chb01_02.edf"
    rec = read_edf(edf, unique_labels(edf_header(edf).labels))
    fast = list(CHANNELS[:2])
    mixed_rates(edf, rec, fast=set(fast))
    with pytest.warns(UserWarning, match="several rates in 1 file\\(s\\) \\(chb01_02.edf\\)"):
        patient = load_patient(root, "chb01", CHANNELS)
    entry = patient.entry("chb01_02.edf")
    assert entry.rates == (256.0, 512.0) and entry.duration_s == rec.data.shape[1] / 256
    got = patient.read_span("chb01_02.edf", 200.0, 3000, 9000)
    for row, c in enumerate(CHANNELS):
        x = read_edf(edf, [c]).data
        want = resample(x, 512.0 if c in fast else 256.0, 200.0)[0][0, 3000:9000]
        np.testing.assert_allclose(got[row], want, rtol=1e-5, atol=1e-3)
    whole = patient.read("chb01_02.edf")
    assert whole.fs == 512.0 and whole.data.shape == (4, rec.data.shape[1] * 2)
    cfg = config(root, cache=str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="several rates"):
        prep = prepare_patient(cfg)
    i = patient.files.index(entry)
    # as many windows as a 256-Hz file as long (less the extra ones oversampling adds)
    assert prep.base[prep.file == i].sum() == prep.base[prep.file == 0].sum() == 72


def test_detect_on_a_resampled_remontaged_recording(folder, trained, tmp_path):
    run, _ = trained
    edf = remontaged(folder, tmp_path / "other.edf")
    # 200 Hz: the model's bins above 100 Hz hold nothing there, and detect says so
    with pytest.warns(UserWarning, match="other.edf: recorded at 200 Hz, .* 21 of the 114 freq"):
        found = detect_file(edf, run, tmp_path / "out")
    assert found["file_fs"] == 200.0 and found["model_fs"] == 256.0 and found["models"] == 2
    assert found["channels"] == list(CHANNELS) and found["positive_class"] == "preictal"
    with open(tmp_path / "out" / "other_windows.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == found["windows"] == 72
    towers = [f"gate[{t}]" for t in ("spatial", "temporal", "spectral")]
    assert list(rows[0]) == ["start_s", "end_s", "probability", "positive", "alarm", *towers]
    p = np.array([float(r["probability"]) for r in rows])
    assert np.all((p >= 0) & (p <= 1))
    g = np.array([[float(r[t]) for t in towers] for r in rows])
    np.testing.assert_allclose(g.sum(axis=1), 1.0, atol=2e-4)  # a softmax, 4 decimals each
    assert set(found["gates"]) == {"positive", "negative"}
    alarms = [float(r["end_s"]) for r in rows if r["alarm"] == "1"]
    assert alarms == pytest.approx(found["alarms_s"])
    assert (tmp_path / "out" / "other_alarms.csv").exists()
    assert (tmp_path / "out" / "other_timeline.png").stat().st_size > 0
    with pytest.raises(NNLabError, match="exists"):
        detect_file(edf, run, tmp_path / "out")
    # read in 1-minute chunks (each resampled on its own), the same probabilities
    with pytest.warns(UserWarning, match="recorded at 200 Hz"):
        chunked = detect_file(edf, run, tmp_path / "chunked", chunk_s=60)
    with open(tmp_path / "chunked" / "other_windows.csv") as f:
        q = np.array([float(r["probability"]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(q, p, atol=1e-4)  # float32, batches of other sizes
    assert chunked["alarms_s"] == found["alarms_s"]


@pytest.mark.filterwarnings("ignore:.*recorded at 200 Hz:UserWarning")  # remontaged(): 200 Hz
def test_detect_errors_name_the_problem(folder, trained, tmp_path):
    run, _ = trained
    edf = remontaged(folder, tmp_path / "less.edf", drop=("T7-P7", "P7-T7"))
    with pytest.raises(NNLabError, match="needs channel\\(s\\) T7-P7"):
        detect_file(edf, run, tmp_path)
    # with P7-T7 still there, T7-P7 is its negative
    found = detect_file(remontaged(folder, tmp_path / "rev.edf", drop=("T7-P7",)), run, tmp_path)
    assert found["derived"] == ["T7-P7 = -(P7-T7)"]
    with pytest.raises(NNLabError, match="--channels is for a single-channel model"):
        detect_file(edf, run, tmp_path, channels=["FP1-F7"])
    short = tmp_path / "short.edf"
    write_edf(short, Recording("s", 256.0, list(CHANNELS), np.zeros((4, 3 * 256), np.float32)))
    with pytest.raises(NNLabError, match="shorter than one 5-s window"):
        detect_file(short, run, tmp_path)
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"not an EDF file at all")
    with pytest.raises(NNLabError, match="not a readable EDF"):
        detect_file(bad, run, tmp_path)
    # samples in volts under a uV header: read, and said
    rec = read_edf(folder / "chb01" / "chb01_02.edf", list(CHANNELS))
    volts = tmp_path / "volts.edf"
    write_edf(volts, Recording("v", rec.fs, list(CHANNELS), rec.data * 1e-6))
    with pytest.warns(UserWarning, match="volts.edf: the EEG's median standard deviation is"):
        detect_file(volts, run, tmp_path / "v")
    # a channel the model needs, disconnected all along: read (it must be), and said
    data = rec.data.copy()
    data[CHANNELS.index("F7-T7")] = 0.0
    dead = tmp_path / "dead.edf"
    write_edf(dead, Recording("d", rec.fs, list(CHANNELS), data))
    with pytest.warns(UserWarning, match="dead.edf: channel\\(s\\) F7-T7 are flat through"):
        found = detect_file(dead, run, tmp_path / "d")
    assert found["flat"] == ["F7-T7"] and found["skipped"] == []


def test_detect_on_files_as_recorders_and_users_leave_them(folder, trained, tmp_path, edf_plus_d):
    """An EDF+D file whose last piece is shorter than a window: the rest read (the short piece
    said); an output folder that cannot be made: one line, before any work; events beside the
    file that cannot be scored: read all the same, said; options that would repeat windows or
    turn the alarm rule off: refused."""
    run, _ = trained
    edf = remontaged(folder, tmp_path / "x.edf")
    short_last = tmp_path / "short_last.edf"
    records = int(edf_header(edf).duration_s)  # 1-s data records
    short_last.write_bytes(edf_plus_d(edf.read_bytes(), gap_after=records - 4, gap_s=100.0))
    with pytest.warns(UserWarning, match="shorter than one 5-s window: not read"):
        found = detect_file(short_last, run, tmp_path / "a")
    with open(tmp_path / "a" / "short_last_windows.csv") as f:
        ends = [float(row["end_s"]) for row in csv.DictReader(f)]
    assert found["windows"] == len(ends) > 0 and max(ends) <= records - 3  # the short piece: none
    (tmp_path / "file").write_text("")
    with pytest.raises(NNLabError, match=r"--out .*file: cannot make the folder"):
        detect_file(edf, run, tmp_path / "file")
    events = tmp_path / "sub-01_eeg.edf"
    events.write_bytes(edf.read_bytes())
    (tmp_path / "sub-01_events.tsv").write_text("onset\tduration\ttrial_type\n20\tn/a\tseizure\n")
    with pytest.warns(UserWarning, match="sub-01_eeg.edf is read, its seizures not scored"):
        found = detect_file(events, run, tmp_path / "b")
    assert found["sidecar"] is None and not found["events"]
    with pytest.raises(NNLabError, match="--alarm-k must be >= 1, got 0"):
        detect_file(edf, run, tmp_path / "c", alarm_k=0)  # alone: not "24 and 5"
    with pytest.raises(NNLabError, match="--hop-s must be at least one sample of the model's rate"):
        detect_file(edf, run, tmp_path / "c", hop_s=0.001)
    from nnlab.tasks.seizure import evaluate_run

    with pytest.raises(NNLabError, match="--alarm-k must be >= 1, got 0"):  # not the target's 24
        evaluate_run(run, alarm_k=0)


def mixed_rates(path, rec, fast: set[str], zero: str = ""):
    """rec written with the channels in `fast` upsampled to twice its rate (EDF allows a rate
    per signal), the channel `zero` flat."""
    import pyedflib

    writer = pyedflib.EdfWriter(str(path), len(rec.labels), file_type=pyedflib.FILETYPE_EDFPLUS)
    signals, headers = [], []
    for label, x in zip(rec.labels, rec.data):
        x = np.zeros_like(x) if label == zero else x
        fs = rec.fs * (2 if label in fast else 1)
        signals.append((resample(x[None], rec.fs, fs)[0][0] if label in fast else x).astype(float))
        headers.append(
            {"label": label, "dimension": "uV", "sample_frequency": fs, "physical_min": -3000.0}
            | {"physical_max": 3000.0, "digital_min": -32768, "digital_max": 32767}
            | {"transducer": "", "prefilter": ""}
        )
    writer.setSignalHeaders(headers)
    writer.writeSamples(signals)
    writer.close()
    return path


def test_detect_reads_the_model_channels_at_several_rates(folder, trained, tmp_path):
    """A file whose channels the model needs are at two rates (two of them at 512 Hz, the rest
    at 256): each rate is read and resampled on its own, then stacked. The probabilities are
    those of one 256-Hz file holding the same samples (the 512-Hz channels resampled whole),
    to the file's 16-bit rounding. A flat channel at the other rate is still found."""
    run, _ = trained
    rec = read_edf(folder / "chb01" / "chb01_02.edf", list(CHANNELS))
    fast = list(CHANNELS[:2])
    two = mixed_rates(tmp_path / "two.edf", rec, fast=set(fast))
    assert sorted(set(edf_header(two).fs)) == [256.0, 512.0]
    back = resample(read_edf(two, fast).data, 512.0, 256.0)[0][:, : rec.data.shape[1]]
    one = tmp_path / "one.edf"
    write_edf(one, dataclasses.replace(rec, data=np.concatenate([back, rec.data[2:]])))
    want = detect_file(one, run, tmp_path / "one")
    got = detect_file(two, run, tmp_path / "two")
    assert got["channels"] == want["channels"] and got["windows"] == want["windows"]
    p, q = (
        np.array([float(r["probability"]) for r in csv.DictReader(open(d / f"{n}_windows.csv"))])
        for d, n in ((tmp_path / "one", "one"), (tmp_path / "two", "two"))
    )
    assert np.abs(p - q).max() < 2e-3, np.abs(p - q).max()
    assert got["alarms_s"] == want["alarms_s"]
    dead = mixed_rates(tmp_path / "dead.edf", rec, fast={CHANNELS[0]}, zero=CHANNELS[0])
    with pytest.warns(UserWarning, match=f"dead.edf: channel\\(s\\) {CHANNELS[0]} are flat"):
        found = detect_file(dead, run, tmp_path / "dead")
    assert found["flat"] == [CHANNELS[0]]


def test_detect_on_a_referential_recording_derives_the_bipolar_channels(folder, trained, tmp_path):
    """The chain FP1-F7, F7-T7, T7-P7, P7-O1 written as five electrodes against a common reference
    (a large, noisy one, with the old names T3, T5 for T7, P7, as TUH files have them): detect
    derives the bipolar channels and gives the bipolar file's probabilities and alarms."""
    from nnlab.data.montage import referential_montage

    run, _ = trained
    source = folder / "chb01" / "chb01_02.edf"
    rec = read_edf(source, list(CHANNELS))
    rng = np.random.default_rng(0)
    t = np.arange(rec.n_samples) / rec.fs
    reference = 80 * rng.standard_normal(rec.n_samples) + 30 * np.sin(2 * np.pi * 60 * t)
    E, labels = referential_montage(rec.data, CHANNELS, reference)
    assert labels == ["EEG FP1-REF", "EEG F7-REF", "EEG T7-REF", "EEG P7-REF", "EEG O1-REF"]
    labels = [lab.replace("T7", "T3").replace("P7", "T5") for lab in labels]
    order = [4, 2, 0, 3, 1]  # any order in the file
    write_edf(tmp_path / "ref.edf", Recording("ref", rec.fs, [labels[i] for i in order], E[order]))

    # its seizure in a TUH annotation file beside it, found by detect without --summary
    (tmp_path / "ref.csv_bi").write_text(
        "# version = csv_v1.0.0\n# bname = ref\nchannel,start_time,stop_time,label,confidence\n"
        "TERM,0.0,250.0,bckg,1.0\nTERM,250.0,280.0,seiz,1.0\nTERM,280.0,360.0,bckg,1.0\n"
    )
    # a seizure given after the recording's end (another file's?) is said and left out
    with pytest.warns(UserWarning, match="seizure\\(s\\) 900-950 s start after the recording ends"):
        bipolar = detect_file(source, run, tmp_path / "bip", seizures=[(250, 280), (900, 950)])
    found = detect_file(tmp_path / "ref.edf", run, tmp_path / "ref")
    assert found["sidecar"] == str(tmp_path / "ref.csv_bi") and bipolar["sidecar"] is None
    assert found["events"] == bipolar["events"] and found["events"]["seizures"][0]["onset_s"] == 250
    assert found["derived"] == [
        "FP1-F7 = EEG FP1-REF - EEG F7-REF",
        "F7-T7 = EEG F7-REF - EEG T3-REF",
        "T7-P7 = EEG T3-REF - EEG T5-REF",
        "P7-O1 = EEG T5-REF - EEG O1-REF",
    ]
    assert "4 of them derived" in found["rule"] and bipolar["derived"] == []

    def probabilities(path):
        with open(path) as f:
            return np.array([float(r["probability"]) for r in csv.DictReader(f)])

    p = probabilities(tmp_path / "bip" / "chb01_02_windows.csv")
    q = probabilities(tmp_path / "ref" / "ref_windows.csv")
    assert p.std() > 0.01  # the model's output moves: equal probabilities are not a constant
    np.testing.assert_allclose(q, p, atol=2e-3)  # 16-bit EDF samples of other ranges
    assert found["alarms_s"] == bipolar["alarms_s"]
    # without the reference's name on the pair, no derivation: an error naming the channel
    write_edf(
        tmp_path / "mixed.edf",
        Recording("m", rec.fs, ["EEG FP1-REF", "EEG F7-LE", *CHANNELS[1:]], E[[0, 1, 2, 3, 4]]),
    )
    with pytest.raises(NNLabError, match="needs channel\\(s\\) FP1-F7, which the file neither"):
        detect_file(tmp_path / "mixed.edf", run, tmp_path / "mixed")


def test_a_single_channel_model_reads_every_eeg_channel_and_takes_the_maximum(folder, tmp_path):
    cfg = config(folder, channels=("FP1-F7",), fold=0, epochs=1)
    run = RunDir.create("one", tmp_path / "one")
    run_task(SeizureFoldTask(cfg), run)
    assert run.config()["model_config"]["towers"] == ["temporal", "spectral"]
    edf = remontaged(folder, tmp_path / "all.edf", fs=256.0, extra=False)
    found = detect_file(edf, run, tmp_path / "out")
    assert found["rule"] == "maximum over channels" and len(found["channels"]) == 22
    assert found["skipped"] == []
    with open(tmp_path / "out" / "all_windows.csv") as f:
        rows = list(csv.DictReader(f))
    per_channel = np.array([[float(r[f"p[{c}]"]) for c in found["channels"]] for r in rows])
    p = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_allclose(p, per_channel.max(axis=1), atol=2e-6)
    # the gate columns are those of the channel that decides each window
    from nnlab.tasks.seizure import load_fold_models, window_probabilities

    models = load_fold_models(run, device="cpu")
    x = read_edf(edf, found["channels"]).data  # at the model's 256 Hz already
    L = 5 * 256
    q, g = window_probabilities(models, x, np.arange(len(rows)) * L, gates=True)
    want = g[np.arange(len(rows)), q.argmax(axis=1)]  # (W, 2)
    got = np.array([[float(r["gate[temporal]"]), float(r["gate[spectral]"])] for r in rows])
    np.testing.assert_allclose(got, want, atol=2e-4)

    # a clinical file: an EKG lead and a disconnected (flat) electrode are not read; the other
    # channels give the same probabilities as before
    rec = read_edf(edf)
    data = np.concatenate([rec.data, 300 * np.sin(np.arange(rec.data.shape[1]) / 40)[None]])
    data[rec.labels.index("T7-P7")] = 0.0
    data[rec.labels.index("FP2-F4"), : 256 * 60] = 7.0  # its first minute: electrode off
    clinical = tmp_path / "clinical.edf"
    write_edf(clinical, Recording("clinical", rec.fs, rec.labels + ["POL EKG1"], data))
    found = detect_file(clinical, run, tmp_path / "out")
    assert found["skipped"] == ["POL EKG1 (labelled EKG)", "T7-P7 (flat)"]
    assert found["channels"] == [c for c in rec.labels if c != "T7-P7"]
    with open(tmp_path / "out" / "clinical_windows.csv") as f:
        rows = list(csv.DictReader(f))
    again = np.array([[float(r[f"p[{c}]"]) for c in found["channels"]] for r in rows])
    before = per_channel[:, [rec.labels.index(c) for c in found["channels"]]]
    off = np.isnan(again)  # the 12 windows of the electrode's first minute, that channel only
    assert off.sum() == 12 and off[:12, found["channels"].index("FP2-F4")].all()
    np.testing.assert_allclose(again[~off], before[~off], atol=1e-4)  # other batch shapes
    p = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_allclose(p, np.nanmax(again, axis=1), atol=2e-6)

    # --channels picks; a label the file lacks is named
    found = detect_file(clinical, run, tmp_path / "two", channels=["fp1-f7", "F7-T7"])
    assert found["channels"] == ["fp1-f7", "F7-T7"] and found["skipped"] == []
    with pytest.raises(NNLabError, match="no channel\\(s\\) CZ, nor two channels"):
        detect_file(clinical, run, tmp_path / "three", channels=["CZ"])
    # a pair the file stores the other way round is read negated (a spectrogram: the same p)
    found = detect_file(clinical, run, tmp_path / "four", channels=["F7-FP1", "F7-T7"])
    assert found["derived"] == ["F7-FP1 = -(FP1-F7)"]
    banana = detect_file(clinical, run, tmp_path / "five", channels=["double-banana"])
    assert len(banana["channels"]) == 17 and banana["skipped"] == ["T7-P7 (flat)"]  # 18 less one
    with open(tmp_path / "two" / "clinical_windows.csv") as f:
        two = np.array([float(r["p[fp1-f7]"]) for r in csv.DictReader(f)])
    with open(tmp_path / "four" / "clinical_windows.csv") as f:
        four = np.array([float(r["p[F7-FP1]"]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(four, two, atol=1e-4)
    # channels asked for at two rates: each read at its own (FP1-F7 at 512 Hz here); F7-T7,
    # at 256 Hz, gives what it gives in the same file at one rate
    plain = mixed_rates(tmp_path / "plain.edf", rec, fast=set())
    mixed = mixed_rates(tmp_path / "mixed.edf", rec, fast={"FP1-F7"})
    detect_file(plain, run, tmp_path / "six", channels=["F7-T7"])
    found = detect_file(mixed, run, tmp_path / "six", channels=["FP1-F7", "F7-T7"])
    assert found["channels"] == ["FP1-F7", "F7-T7"] and found["skipped"] == []
    with open(tmp_path / "six" / "plain_windows.csv") as f:
        before = np.array([float(r["probability"]) for r in csv.DictReader(f)])
    with open(tmp_path / "six" / "mixed_windows.csv") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["p[F7-T7]"]) for r in rows], before, atol=1e-4)
    assert all(0 <= float(r["p[FP1-F7]"]) <= 1 for r in rows)


def test_detection_target_trains_on_ictal_windows_and_scores_each_seizure_latency(
    folder, tmp_path, capsys
):
    """`seizure train --target detection`: ictal windows (at least half inside a seizure) against
    interictal ones at least 60 s from any seizure (the target's default gap), one fold per
    seizure, alarms 2 of 3 once per run of them, each held-out seizure scored by the latency of
    its first alarm; `detect` uses the same rule and reports the file's seizure."""
    from nnlab.signal.labels import label_ictal

    out = tmp_path / "det"
    argv = [a for a in cli_args(folder) if a not in ("--interictal-gap-s", "120")]
    code = cli(
        *("seizure", "train", *argv, "--target", "detection", "--epochs", "2"),
        *("--batch-size", "32", "-m", "dim=16", "--out", str(out)),
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "seizures detected" in text and "time in warning" not in text
    run = RunDir.open(out)
    s = run.summary()
    assert s["target"] == "detection" and s["folds"] == 2
    assert (s["alarm_k"], s["alarm_n"], s["refractory_s"]) == (2, 3, 60.0)
    assert [g["class"] for g in s["gates"]] == ["interictal", "ictal"]
    cfg = load_config(run, SeizureCV)
    assert cfg.gap_s == 60.0 and cfg.positive == "ictal"
    for k, child in enumerate(c for c in run.children() if c.path.name.startswith("fold")):
        h = read_heldout(child)
        seizures = h["seizures"]
        # every seizure is an event (no lead gap), and the labels are label_ictal's
        np.testing.assert_array_equal(h["leading"], seizures)
        np.testing.assert_array_equal(
            h["label"], label_ictal(h["start_s"], h["end_s"], seizures, 60.0)
        )
        on, off = seizures[int(h["held_out"])]
        held = h["label"] == PREICTAL  # class 1: the held-out seizure's ictal windows
        assert held.sum() >= 5
        assert (h["start_s"][held] < off).all() and (h["end_s"][held] > on).all()
        # the fold's latency: its first alarm between the onset and a window past the offset
        idx = alarm_windows(h["prob"], h["start_s"], h["end_s"], 0.5, 2, 3, 60.0, episodes=True)
        alarms = h["end_s"][idx]
        hits = alarms[(alarms >= on) & (alarms <= off + 5.0)]
        latency = s["latency_s"][k]
        if len(hits):
            assert latency == pytest.approx(hits.min() - on, abs=1e-3)
        else:
            assert np.isnan(latency)
        assert s["rows"][k]["detected"] == int(len(hits) > 0)

    # detect: the run's own windows (no overlap) and rule, the file's seizure from the summary
    summary_txt = folder / "chb01" / "chb01-summary.txt"
    found = detect_file(folder / "chb01" / "chb01_02.edf", run, tmp_path / "d", summary=summary_txt)
    assert found["positive_class"] == "ictal" and found["hop_s"] == found["window_s"] == 5.0
    assert (found["alarm_k"], found["alarm_n"]) == (2, 3)
    (event,) = found["events"]["seizures"]
    assert (event["onset_s"], event["offset_s"]) == (250.0, 280.0)

    # a patient's folder at once: every file, scored by the summary, with totals
    capsys.readouterr()
    argv = ["seizure", "detect", str(folder / "chb01"), "--model", str(out)]
    assert cli(*argv, "--summary", str(summary_txt), "--out", str(tmp_path / "all")) == 0
    text = capsys.readouterr().out
    assert all(f"chb01_0{i}.edf: " in text for i in (1, 2, 3))
    h = 3 * 360 / 3600  # three 6-minute files
    assert f"3 annotated file(s), {h:.2f} h: " in text and " of 2 seizures found" in text
    from nnlab.tasks.seizure import detection_totals

    one = detect_file(folder / "chb01" / "chb01_03.edf", run, tmp_path / "d", summary=summary_txt)
    t = detection_totals([found, one])
    assert t["seizures"] == 2 and t["hours"] == pytest.approx(2 * 360 / 3600)
    assert t["false_alarms"] == found["events"]["false_alarms"] + one["events"]["false_alarms"]
    assert t["false_per_h"] == pytest.approx(t["false_alarms"] / ((720 - 60) / 3600))
    # a file the summary does not list is named before any file is read
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "x.edf").write_bytes((folder / "chb01" / "chb01_01.edf").read_bytes())
    assert (
        cli("seizure", "detect", str(stray), "--model", str(out), "--summary", str(summary_txt))
        == 1
    )
    assert "does not list x.edf" in capsys.readouterr().err
    assert cli("seizure", "detect", str(tmp_path / "nothing"), "--model", str(out)) == 1
    assert "no such EDF file or folder" in capsys.readouterr().err
    # a damaged file among good ones: named and skipped, the others read, the exit status 1
    (stray / "x.edf").write_bytes(b"not an EDF file")
    (stray / "y.edf").write_bytes((folder / "chb01" / "chb01_02.edf").read_bytes())
    assert cli("seizure", "detect", str(stray), "--model", str(out), "--out", str(stray)) == 1
    captured = capsys.readouterr()
    assert "x.edf: skipped:" in captured.out and "y.edf: " in captured.out
    assert "1 of 2 files skipped: x.edf" in captured.err
    assert (stray / "y_windows.csv").exists() and not (stray / "x_windows.csv").exists()


def test_non_eeg_channels_are_named_by_label_or_unit():
    from nnlab.data.eeg import non_eeg_reason

    for label in ("FP1-F7", "EEG T3-REF", "C3", "T8-P8-0", "EEG 26-REF", "FT9-FT10", "Cz"):
        assert non_eeg_reason(label, "uV") is None, label
    for label, word in (
        ("ECG", "ECG"),
        ("POL EKG1", "EKG"),
        ("EEG EKG1-REF", "EKG"),
        ("LOC-ROC", "LOC"),
        ("SpO2", "SPO"),
        ("EDF Annotations", "ANNOTATIONS"),
        ("DC03", "DC"),
        ("VNS", "VNS"),
        ("PHOTIC-REF", "PHOTIC"),
        ("Resp Thorax", "RESP"),
    ):
        assert non_eeg_reason(label) == f"labelled {word}", label
    assert non_eeg_reason("X1", "%") == "unit %"
    assert non_eeg_reason("X1", "mV") is None and non_eeg_reason("X1", "") is None


# ---- alarms --------------------------------------------------------------------------------------
def test_alarms_count_within_stretches_and_respect_the_refractory_period():
    prob = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1], float)
    start = np.array([0, 5, 10, 15, 100, 105, 110, 115, 120, 125], float)
    end = start + 5
    # 3 of 3: not across the gap at 20 -> 100 (windows 3 and 4 are in different stretches)
    assert alarm_windows(prob, start, end, 0.5, 3, 3, refractory=0).tolist() == [6, 7, 8, 9]
    assert alarm_windows(prob, start, end, 0.5, 3, 3, refractory=10).tolist() == [6, 8]
    assert alarm_windows(prob, start, end, 0.5, 2, 3, refractory=1000).tolist() == [1]


def test_config_checks(folder):
    for over, message in (
        ({"data": ""}, "--data is required"),
        ({"patient": "chb99"}, "no chb99-summary.txt"),
        ({"alarm_k": 40}, "alarm-k"),
        ({"oversample": 0}, "--oversample"),
        ({"sop_s": 0.0}, "sop_s must be positive"),
        ({"segment_s": 6.0}, "segment_s"),
    ):
        with pytest.raises(NNLabError, match=message):
            dataclasses.replace(config(folder), **over).check()


@pytest.mark.filterwarnings("ignore:.*recorded at 200 Hz:UserWarning")  # remontaged(): 200 Hz
def test_cli_prepare_evaluate_detect(capsys, folder, trained, tmp_path, edf_plus_d):
    run, _ = trained
    assert cli("seizure", "prepare", *cli_args(folder)) == 0
    out = capsys.readouterr().out
    assert "chb01_02.edf" in out and "total" in out and "SOP 60 s, SPH 10 s" in out
    assert cli("seizure", "evaluate", str(run.path), "--alarm-k", "2", "--alarm-n", "4") == 0
    out = capsys.readouterr().out
    assert "held-out folds" in out and "2 of 4 windows" in out
    edf = remontaged(folder, tmp_path / "x.edf")
    code = cli("seizure", "detect", str(edf), "--model", str(run.path), "--out", str(tmp_path))
    assert code == 0 and "x_windows.csv" in capsys.readouterr().out
    assert cli("seizure", "detect", str(tmp_path / "none.edf"), "--model", str(run.path)) == 1
    assert "no such EDF file" in capsys.readouterr().err
    # the same file marked discontinuous (EDF+D) but without a gap: read directly, alike
    marked = tmp_path / "marked.edf"
    marked.write_bytes(edf_plus_d(edf.read_bytes()))
    assert (
        cli("seizure", "detect", str(marked), "--model", str(run.path), "--out", str(tmp_path)) == 0
    )
    capsys.readouterr()
    same = [(tmp_path / f"{stem}_windows.csv").read_text() for stem in ("x", "marked")]
    assert same[0] == same[1]
    # the same file marked discontinuous (EDF+D), a gap of 10 s after 60 s: read stretch by
    # stretch, each as if it were a file of its own -- as `nnlab seizure split` writes them
    gappy = tmp_path / "gappy.edf"
    gappy.write_bytes(edf_plus_d(edf.read_bytes(), gap_after=59, gap_s=10.0))
    assert (
        cli("seizure", "detect", str(gappy), "--model", str(run.path), "--out", str(tmp_path)) == 0
    )
    assert "2 continuous stretches over 370 s; not recorded: 60-70 s" in capsys.readouterr().out
    found = json.loads((tmp_path / "gappy_detect.json").read_text())
    whole = edf_header(edf).duration_s
    assert found["gaps"] == [[60.0, 70.0]] and found["span_s"] == whole + 10.0
    assert found["duration_s"] == whole
    pieces = split_discontinuous(gappy, tmp_path / "pieces")
    expect = []
    for piece in pieces:
        argv = ("seizure", "detect", str(piece["file"]), "--model", str(run.path))
        assert cli(*argv, "--out", str(tmp_path / "pieces")) == 0
        stem = piece["file"].stem
        with open(tmp_path / "pieces" / f"{stem}_windows.csv") as f:
            for row in csv.DictReader(f):
                row["start_s"] = f"{float(row['start_s']) + piece['onset_s']:.3f}"
                row["end_s"] = f"{float(row['end_s']) + piece['onset_s']:.3f}"
                expect.append(row)
    with open(tmp_path / "gappy_windows.csv") as f:
        got = list(csv.DictReader(f))
    assert got == expect and any(float(r["start_s"]) >= 70.0 for r in got)
    assert all(float(r["end_s"]) <= 60.0 or float(r["start_s"]) >= 70.0 for r in got)
    # a seizure in the gap was not recorded: warned about, not scored
    argv = ("seizure", "detect", str(gappy), "--model", str(run.path), "--out", str(tmp_path))
    with pytest.warns(UserWarning, match="62-68 s lie in a gap of the recording: not scored"):
        assert cli(*argv, "--seizures", "62-68", "--overwrite") == 0


@pytest.mark.filterwarnings("ignore:.*recorded at 200 Hz:UserWarning")  # remontaged(): 200 Hz
def test_cli_detect_on_a_tuh_like_tree(capsys, folder, trained, tmp_path):
    """A folder of sessions as the TUH corpus lays them out: recordings in subfolders, one with
    its .csv_bi annotation beside it, one a BDF file without one. detect finds both, scores the
    annotated one and totals over it; two recordings of one name are refused before any work."""
    import pyedflib
    from pyedflib import highlevel

    run, _ = trained
    tree = tmp_path / "tuh"
    (tree / "s001" / "01_tcp_ar").mkdir(parents=True)
    (tree / "s002" / "01_tcp_ar").mkdir(parents=True)
    annotated = remontaged(folder, tree / "s001" / "01_tcp_ar" / "p_s001_t000.edf")
    annotated.with_suffix(".csv_bi").write_text(
        "# version = csv_v1.0.0\nchannel,start_time,stop_time,label,confidence\n"
        "TERM,250.0,280.0,seiz,1.0\n"
    )
    rec = read_edf(folder / "chb01" / "chb01_01.edf", list(CHANNELS))
    headers = highlevel.make_signal_headers(
        list(CHANNELS), sample_frequency=rec.fs, physical_min=-2000, physical_max=2000
    )
    bdf = tree / "s002" / "01_tcp_ar" / "p_s002_t000.bdf"
    highlevel.write_edf(
        str(bdf), np.clip(rec.data, -2000, 2000), headers, file_type=pyedflib.FILETYPE_BDFPLUS
    )
    argv = ["seizure", "detect", str(tree), "--model", str(run.path), "--out", str(tmp_path / "o")]
    assert cli(*argv) == 0
    text = capsys.readouterr().out
    assert "p_s001_t000.edf: " in text and "p_s002_t000.bdf: " in text
    assert f"seizures from {annotated.with_suffix('.csv_bi')}" in text
    assert "1 annotated file(s), 0.10 h: " in text and " of 1 seizures found" in text
    # the BDF file's own BIDS-style events (no seizure), whatever file name they imply
    bdf.with_name("p_s002_t000_events.tsv").write_text("onset\tduration\teventType\n0\t360\tbckg\n")
    assert cli(*argv, "--overwrite") == 0
    assert "2 annotated file(s), 0.20 h: " in capsys.readouterr().out
    # resumed: nothing is read again, the totals are the same
    outputs = sorted((tmp_path / "o").iterdir())
    stamps = [q.stat().st_mtime_ns for q in outputs]
    assert cli(*argv, "--resume") == 0
    text = capsys.readouterr().out
    assert text.count("(done before, read back)") == 2 and "2 annotated file(s), 0.20 h: " in text
    assert [q.stat().st_mtime_ns for q in outputs] == stamps
    # an interrupted one (outputs but no _detect.json) is made again; other arguments refused
    (tmp_path / "o" / "p_s001_t000_detect.json").unlink()
    assert cli(*argv, "--resume") == 0
    assert capsys.readouterr().out.count("(done before, read back)") == 1
    assert cli(*argv, "--resume", "--alarm-k", "1", "--alarm-n", "1") == 1
    said = capsys.readouterr()
    assert said.out.count("was made with other arguments") == 2 and "2 of 2 files" in said.err
    (tree / "s002" / "copy").mkdir()
    (tree / "s002" / "copy" / "p_s001_t000.edf").write_bytes(annotated.read_bytes())
    assert cli(*argv) == 1
    assert "two recordings named p_s001_t000" in capsys.readouterr().err


@pytest.mark.parametrize("fs_file", [200.0, 256.0, 512.0, 173.0])
def test_a_stretch_read_and_resampled_alone_equals_the_whole_file_resampled(tmp_path, fs_file):
    """detect reads long files in chunks: any stretch [first, last) at the model's rate, read
    with its margin and resampled alone, has the samples of the whole recording resampled at
    once (float32 round-off: 1e-3 uV on signals of about 100 uV)."""
    from nnlab.data.eeg import read_resampled
    from nnlab.tasks.seizure import model_samples

    rng = np.random.default_rng(0)
    n = int(fs_file) * 20  # 20 s of whole 1-s data records
    x = np.cumsum(rng.standard_normal((2, n)), axis=1).astype(np.float32)  # brown noise, uV
    path = tmp_path / "r.edf"
    write_edf(path, Recording("r", fs_file, ["C3", "C4"], x))
    whole, _ = resample(read_edf(path).data, fs_file, 256.0)
    assert whole.shape[1] == model_samples(n, fs_file, 256.0)
    for first, last in [(0, 700), (1000, 2500), (3000, whole.shape[1]), (1, 2)]:
        got, offset, raw, a0 = read_resampled(path, ["C3", "C4"], fs_file, n, 256.0, first, last)
        np.testing.assert_allclose(
            got[:, first - offset : last - offset], whole[:, first:last], atol=1e-3
        )
        assert raw.shape[0] == 2 and a0 >= 0
