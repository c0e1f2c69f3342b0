"""A model's channels found in a recording of another montage (`nnlab.data.montage`): labels
parsed, renamed, reversed and derived from two channels on one reference; never mixed across
references. Patients without a summary (TUH, BIDS), indexed from their annotated files and read
through derived channels, and the commands end to end on one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlab.data.montage import derive_channels, electrode, parse_label, referential_montage
from nnlab.errors import NNLabError


@pytest.mark.parametrize(
    "label, parsed",
    [
        ("FP1-F7", ("FP1", "F7")),
        ("fp1-f7 ", ("FP1", "F7")),
        ("T3-T5", ("T7", "P7")),  # the old 10-20 names
        ("EEG FP1-REF", ("FP1", "REF")),
        ("EEG T4-LE", ("T8", "LE")),
        ("POL Fp2", ("FP2", "")),  # Siena's and Nihon Kohden's: no reference named
        ("EEG Cz", ("CZ", "")),
        ("F7-CS2", ("F7", "CS2")),  # a reference word the parser does not know is kept
        ("FT9-FT10", ("FT9", "FT10")),
        ("EEG A1-REF", ("A1", "REF")),
        ("ECG", None),
        ("EKG1-EKG2", None),
        ("-", None),
        ("FP1-", None),
        ("EEG FP1-F7-REF", None),
        ("EEG FP1 F7", None),
        ("PHOTIC-REF", None),
    ],
)
def test_labels_parse_to_an_electrode_and_its_reference(label, parsed):
    assert parse_label(label) == parsed


def test_electrode_names():
    assert [electrode(n) for n in ("Fpz", "t6", "AF7", "PO10", "Oz", "REF", "X1")] == [
        "FPZ", "P8", "AF7", "PO10", "OZ", None, None,
    ]  # fmt: skip


def test_each_way_of_finding_a_channel_and_its_mixing_matrix():
    wanted = ["FP1-F7", "T7-P7", "P7-T7", "FZ-CZ", "FP2-F8"]
    available = [
        "EEG FP1-REF", "EEG F7-REF", "T3-T5", "EEG FZ-REF", "EEG CZ-REF", "FP2-F8", "EKG", "-",
    ]  # fmt: skip
    d, missing = derive_channels(wanted, available)
    assert missing == []
    assert d.sources == ("EEG FP1-REF", "EEG F7-REF", "T3-T5", "EEG FZ-REF", "EEG CZ-REF", "FP2-F8")
    assert d.notes == (
        "FP1-F7 = EEG FP1-REF - EEG F7-REF",
        "T7-P7 = T3-T5",
        "P7-T7 = -(T3-T5)",
        "FZ-CZ = EEG FZ-REF - EEG CZ-REF",
    )  # FP2-F8 is read as it is: no note
    np.testing.assert_array_equal(
        d.mix,
        [
            [1, -1, 0, 0, 0, 0],
            [0, 0, 1, 0, 0, 0],
            [0, 0, -1, 0, 0, 0],
            [0, 0, 0, 1, -1, 0],
            [0, 0, 0, 0, 0, 1],
        ],
    )
    x = np.random.default_rng(0).standard_normal((6, 50)).astype(np.float32)
    y = d.apply(x)
    np.testing.assert_allclose(y[0], x[0] - x[1], atol=1e-6)
    np.testing.assert_allclose(y[2], -x[2])
    assert not d.identity


def test_an_electrode_reference_is_a_common_reference_too():
    # channels against Cz (an electrode) give the pairs between them; the pair with Cz is direct
    d, missing = derive_channels(["FP1-F7", "FP1-CZ"], ["FP1-CZ", "F7-CZ"])
    assert missing == [] and d.notes == ("FP1-F7 = FP1-CZ - F7-CZ",)


def test_channels_on_different_references_are_never_combined():
    d, missing = derive_channels(["FP1-F7", "O1-O2"], ["EEG FP1-REF", "EEG F7-LE", "EEG O1-LE"])
    assert d is None and missing == ["FP1-F7", "O1-O2"]
    # nor is one reference taken for another, or an unnamed one for a named one
    assert derive_channels(["EEG FP1-REF"], ["EEG FP1-LE", "EEG Fp1"])[1] == ["EEG FP1-REF"]


def test_the_same_labels_give_the_identity():
    d, _ = derive_channels(["FP1-F7", "F7-T7"], ["fp1-f7", "F7-T7", "ECG"])
    assert d.identity and d.notes == () and d.sources == ("fp1-f7", "F7-T7")


def test_referential_montage_gives_back_a_chain_exactly_and_a_loop_by_least_squares():
    rng = np.random.default_rng(1)
    chain = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    x = rng.standard_normal((4, 100))
    E, names = referential_montage(x, chain, reference=rng.standard_normal(100))
    d, _ = derive_channels(chain, names)
    np.testing.assert_allclose(d.apply(E[[names.index(s) for s in d.sources]]), x, atol=1e-5)
    # a loop (FP1 -> F7 -> T7 and back): inconsistent pairs get their least-squares potentials,
    # whose pairs are the projection of x onto the consistent ones (here: the loop sum removed)
    loop = ["FP1-F7", "F7-T7", "T7-FP1"]
    x = rng.standard_normal((3, 100))
    E, names = referential_montage(x, loop)
    d, _ = derive_channels(loop, names)
    y = d.apply(E[[names.index(s) for s in d.sources]])
    np.testing.assert_allclose(y, x - x.sum(0) / 3, atol=1e-5)
    with pytest.raises(ValueError, match="not a bipolar pair"):
        referential_montage(x[:1], ["EEG FP1-REF"])


def test_a_referential_file_among_bipolar_ones_is_read_through_derived_channels(tmp_path):
    """A patient's third file written against a common reference (as when a montage changes
    mid-stay): load_patient keeps it, says so, and reads the bipolar channels from it."""
    from nnlab.data.eeg import Recording, load_patient, read_edf, write_edf
    from nnlab.data.synthetic import make_small_patient

    chain = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    make_small_patient(tmp_path)
    third = tmp_path / "chb01" / "chb01_03.edf"
    before = read_edf(third, chain)
    E, names = referential_montage(
        before.data, chain, reference=np.random.default_rng(2).normal(0, 50, before.n_samples)
    )
    write_edf(third, Recording("chb01_03", before.fs, names, E))
    with pytest.warns(UserWarning, match="derived from two on one reference in 1 file"):
        patient = load_patient(tmp_path, "chb01", channels=chain)
    assert [f.name for f in patient.files] == ["chb01_01.edf", "chb01_02.edf", "chb01_03.edf"]
    assert patient.files[0].derivation is None
    assert patient.files[2].derivation.notes[0] == "FP1-F7 = EEG FP1-REF - EEG F7-REF"
    after = patient.read(2, start_s=10.0, duration_s=20.0)
    assert after.labels == chain and after.start_s == patient.files[2].start_s + 10.0
    n0 = int(10 * before.fs)
    np.testing.assert_allclose(after.data, before.data[:, n0 : n0 + after.n_samples], atol=0.05)
    # at another rate: a stretch read and resampled alone equals the whole file resampled
    from nnlab.data.eeg import resample

    write_edf(third, Recording("chb01_03", 200.0, names, resample(E, before.fs, 200.0)[0]))
    with pytest.warns(UserWarning, match="derived"):
        patient = load_patient(tmp_path, "chb01", channels=chain)
    whole = patient.read(2, fs=256.0).data
    n = whole.shape[1]
    for a, b in ((0, 1280), (5000, 9001), (n - 1280, n)):
        np.testing.assert_allclose(patient.read_span(2, 256.0, a, b), whole[:, a:b], atol=1e-3)
    with pytest.raises(NNLabError, match="outside the file"):
        patient.read_span(2, 256.0, n - 10, n + 10)
    # a channel that no file can give is still missing: the file is skipped, named
    with pytest.warns(UserWarning, match="skipping chb01_03.edf: missing channel\\(s\\) FZ-CZ"):
        patient = load_patient(tmp_path, "chb01", channels=[*chain, "FZ-CZ"])
    assert len(patient.files) == 2


def test_a_named_montage_expands_to_its_channels(tmp_path):
    from nnlab.data.montage import MONTAGES, montage_channels
    from nnlab.data.synthetic import CHBMIT_LABELS, make_small_patient
    from nnlab.tasks.seizure import SeizureConfig, prepare_patient

    banana = MONTAGES["double-banana"]
    assert montage_channels(["Double-Banana"]) == list(banana) == list(CHBMIT_LABELS[:18])
    assert montage_channels(["FP1-F7", "EKG"]) == ["FP1-F7", "EKG"]
    make_small_patient(tmp_path)
    cfg = SeizureConfig(
        data=str(tmp_path), cache=str(tmp_path / "cache"), channels=("double-banana",),
        sop_s=60.0, sph_s=10.0, interictal_gap_s=120.0,
    )  # fmt: skip
    prep = prepare_patient(cfg)
    assert prep.patient.channels == list(banana) and prep.store.window_shape[0] == 18


def tuh_tree(tmp_path, dates=True):
    """The small patient's three files as a TUH Seizure Corpus patient 'p1': referential EDF
    files ('EEG FP1-REF', the chain's five electrodes) in session / montage folders, a .csv_bi
    beside each but the last of an extra session, start dates from the original clock."""
    from datetime import datetime, timedelta

    from nnlab.data.eeg import Recording, load_patient, read_edf, write_edf
    from nnlab.data.synthetic import make_small_patient

    chain = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    small = make_small_patient(tmp_path / "chb")
    truth = load_patient(small.folder, "chb01", channels=chain)
    day0 = datetime(2003, 7, 18, 9, 0, 0)
    tree = tmp_path / "tuh"
    for i, f in enumerate(truth.files):
        folder = tree / "p1" / f"s00{i + 1}_2003" / "01_tcp_ar"
        folder.mkdir(parents=True)
        rec = read_edf(f.path, chain)
        E, names = referential_montage(rec.data, chain)
        stem = f"p1_s00{i + 1}_t000"
        start = day0 + timedelta(seconds=f.start_s) if dates else datetime(2001, 1, 1)
        write_edf(folder / f"{stem}.edf", Recording(stem, rec.fs, names, E), start)
        rows = "".join(
            f"TERM,{on - f.start_s},{off - f.start_s},seiz,1.0\n" for on, off in f.seizures
        )
        (folder / f"{stem}.csv_bi").write_text(
            f"# version = csv_v1.0.0\n# bname = {stem}\n"
            "channel,start_time,stop_time,label,confidence\n" + rows
        )
    extra = tree / "p1" / "s009_2004" / "01_tcp_ar"
    extra.mkdir(parents=True)
    (extra / "p1_s009_t000.edf").write_bytes((folder / f"{stem}.edf").read_bytes())
    return tree, truth, chain


@pytest.mark.filterwarnings("ignore:p1:UserWarning")  # asserted with pytest.warns where meant
def test_a_tuh_patient_indexes_from_its_annotated_files(tmp_path):
    from nnlab.data.eeg import Recording, load_patient, read_edf, write_edf

    tree, truth, chain = tuh_tree(tmp_path)
    with pytest.warns(UserWarning, match="1 EDF file\\(s\\) without an annotation file"):
        patient = load_patient(tree, "p1", channels=chain)
    assert [f.name for f in patient.files] == [
        f"p1/s00{i}_2003/01_tcp_ar/p1_s00{i}_t000.edf" for i in (1, 2, 3)
    ]
    # placed in time by the headers' dates: the same starts and seizures as the CHB-MIT folder
    assert [f.start_s for f in patient.files] == [f.start_s for f in truth.files]
    np.testing.assert_allclose(patient.seizures, truth.seizures)
    assert all(f.derivation is not None for f in patient.files)  # referential: derived
    x = patient.read(1, start_s=240.0, duration_s=30.0).data
    y = truth.read(1, start_s=240.0, duration_s=30.0).data
    np.testing.assert_allclose(x, y, atol=0.05)
    # channels on a named reference: a file on another is skipped, with the way out named
    le = tree / "p1" / "s003_2003" / "01_tcp_ar" / "p1_s003_t000.edf"
    rec = read_edf(le)
    write_edf(le, Recording("le", rec.fs, [c.replace("REF", "LE") for c in rec.labels], rec.data))
    with pytest.warns(UserWarning, match="p1_s003_t000.edf: missing channel.* double-banana"):
        assert len(load_patient(tree, "p1", channels=["EEG FP1-REF", "EEG F7-REF"]).files) == 2
    assert len(load_patient(tree, "p1", channels=chain).files) == 3  # bipolar: every reference
    # the folder above the patient's, by file names: the same
    assert len(load_patient(tree / "p1", "p1", channels=chain).files) == 3
    with pytest.raises(
        NNLabError, match="no p2-summary.txt .* no EDF files of p2 with annotations"
    ):
        load_patient(tree, "p2")


@pytest.mark.filterwarnings("ignore:p1:UserWarning")  # asserted with pytest.warns where meant
def test_tuh_files_with_equal_dates_are_placed_back_to_back(tmp_path):
    from nnlab.data.eeg import load_patient

    tree, truth, chain = tuh_tree(tmp_path, dates=False)
    with pytest.warns(UserWarning, match="start dates are missing or overlap; files are placed"):
        patient = load_patient(tree, "p1", channels=chain)
    assert [f.start_s for f in patient.files] == [0.0, 360.0, 720.0]
    assert patient.seizures.tolist() == [[610.0, 640.0], [970.0, 1000.0]]
    # an unreadable file: skipped, and its seizure, whose time nothing gives, left out
    second = tree / "p1" / "s002_2003" / "01_tcp_ar" / "p1_s002_t000.edf"
    second.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="skipping p1/s002_2003/01_tcp_ar/p1_s002_t000.edf"):
        patient = load_patient(tree, "p1", channels=chain)
    assert [f.start_s for f in patient.files] == [0.0, 360.0]
    assert patient.seizures.tolist() == [[610.0, 640.0]]


def train_and_detect(tmp_path, data, patient, chain, edf, capsys) -> str:
    """`seizure train --target detection` on `patient` (1 epoch, 2 folds: one per seizure),
    then `seizure detect` on `edf` with the annotations beside it; detect's output."""
    import torch

    from nnlab.cli import main
    from nnlab.run import RunDir

    out = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(SystemExit) as e:
            main(
                ["seizure", "train", "--data", str(data), "--patient", patient]
                + ["--target", "detection", "--channels", ",".join(chain)]
                + ["--cache", str(tmp_path / "cache"), "--epochs", "1", "--batch-size", "32"]
                + ["-m", "dim=16", "--out", str(out)]
            )
        assert e.value.code == 0
        s = RunDir.open(out).summary()
        assert s["folds"] == 2 and s["target"] == "detection"
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["seizure", "detect", str(edf), "--model", str(out), "--out", str(tmp_path / "d")])
        assert e.value.code == 0
    finally:
        torch.set_num_threads(threads)
    return capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:p1:UserWarning")  # asserted with pytest.warns where meant
def test_seizure_train_and_detect_on_a_tuh_patient(tmp_path, capsys):
    """The command line end to end on the TUH-like patient: detection training through derived
    channels (2 folds, one per seizure), then detect on one of its files, scored by the .csv_bi
    beside it."""
    tree, _, chain = tuh_tree(tmp_path)
    edf = tree / "p1" / "s002_2003" / "01_tcp_ar" / "p1_s002_t000.edf"
    text = train_and_detect(tmp_path, tree, "p1", chain, edf, capsys)
    assert "4 of them derived" in text and "seizure 250-280 s: " in text


@pytest.mark.filterwarnings("ignore:sub-01:UserWarning")
def test_a_bids_patient_indexes_from_its_events_files(tmp_path):
    """The same three recordings as a BIDS subject (SzCORE's layout): sub-01/ses-0N/eeg/
    ..._eeg.edf with ..._events.tsv beside each, referential."""
    from datetime import datetime, timedelta

    from nnlab.data.eeg import Recording, load_patient, read_edf, write_edf
    from nnlab.data.synthetic import make_small_patient

    chain = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    small = make_small_patient(tmp_path / "chb")
    truth = load_patient(small.folder, "chb01", channels=chain)
    for i, f in enumerate(truth.files):
        eeg = tmp_path / "bids" / "sub-01" / f"ses-0{i + 1}" / "eeg"
        eeg.mkdir(parents=True)
        stem = f"sub-01_ses-0{i + 1}_task-szMonitoring_run-00"
        rec = read_edf(f.path, chain)
        E, names = referential_montage(rec.data, chain)
        start = datetime(2000, 1, 1, 9) + timedelta(seconds=f.start_s)
        write_edf(eeg / f"{stem}_eeg.edf", Recording(stem, rec.fs, names, E), start)
        rows = "".join(f"{on - f.start_s:.2f}\t{off - on:.2f}\tsz\tn/a\n" for on, off in f.seizures)
        (eeg / f"{stem}_events.tsv").write_text(
            "onset\tduration\teventType\tconfidence\n0.00\t360.00\tbckg\tn/a\n" + rows
        )
    with pytest.warns(UserWarning, match="derived"):
        patient = load_patient(tmp_path / "bids", "sub-01", channels=chain)
    assert [Path(f.name).name for f in patient.files] == [
        f"sub-01_ses-0{i}_task-szMonitoring_run-00_eeg.edf" for i in (1, 2, 3)
    ]
    assert [f.start_s for f in patient.files] == [f.start_s for f in truth.files]
    np.testing.assert_allclose(patient.seizures, truth.seizures)
    # a session recorded as BDF (BioSemi's 24-bit EDF; BIDS allows it): indexed as the EDF was
    import pyedflib

    edf = (
        tmp_path
        / "bids"
        / "sub-01"
        / "ses-02"
        / "eeg"
        / "sub-01_ses-02_task-szMonitoring_run-00_eeg.edf"
    )
    rec = read_edf(edf, None)
    bdf = pyedflib.EdfWriter(
        str(edf.with_suffix(".bdf")), len(rec.labels), pyedflib.FILETYPE_BDFPLUS
    )
    bdf.setSignalHeaders(
        [
            {"label": label, "dimension": "uV", "sample_frequency": rec.fs}
            | {"physical_min": -2000.0, "physical_max": 2000.0, "transducer": "", "prefilter": ""}
            | {"digital_min": -(2**23), "digital_max": 2**23 - 1}
            for label in rec.labels
        ]
    )
    bdf.setStartdatetime(datetime(2000, 1, 1, 9) + timedelta(seconds=truth.files[1].start_s))
    bdf.writeSamples(list(rec.data))
    bdf.close()
    edf.unlink()
    with pytest.warns(UserWarning, match="derived"):
        patient = load_patient(tmp_path / "bids", "sub-01", channels=chain)
    assert Path(patient.files[1].name).name == edf.with_suffix(".bdf").name
    assert [f.start_s for f in patient.files] == [f.start_s for f in truth.files]
    np.testing.assert_allclose(patient.seizures, truth.seizures)
    np.testing.assert_allclose(read_edf(edf.with_suffix(".bdf"), None).data, rec.data, atol=1e-3)


def test_auxiliary_channels_among_named_electrodes_are_left_out(tmp_path):
    """A Siena-like patient: 'EEG Fp1' ... plus channels named '1', '2' and 'MK' in every file;
    the common set keeps the electrodes, and says why the others are out."""
    from nnlab.data.eeg import Recording, load_patient, read_edf, write_edf
    from nnlab.data.synthetic import make_small_patient

    chain = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    small = make_small_patient(tmp_path)
    for f in sorted(small.folder.glob("*.edf")):
        rec = read_edf(f, chain)
        E, names = referential_montage(rec.data, chain)
        extra = np.random.default_rng(0).normal(0, 5, (3, rec.n_samples))
        labels = [n.replace("-REF", "") for n in names] + ["1", "2", "MK"]
        write_edf(f, Recording(f.stem, rec.fs, labels, np.concatenate([E, extra])))
    with pytest.warns(UserWarning, match="1 .no 10-20 electrode name.*MK"):
        patient = load_patient(tmp_path, "chb01")
    assert patient.channels == ["EEG FP1", "EEG F7", "EEG T7", "EEG P7", "EEG O1"]
    # with its contacts' own names (an intracranial set), nothing is taken for auxiliary
    for f in sorted(small.folder.glob("*.edf")):
        rec = read_edf(f)
        write_edf(f, Recording(f.stem, rec.fs, ["LA1", "LA2", "LA3", "RH1", "RH2", "1", "2", "MK"],
                               rec.data))  # fmt: skip
    assert len(load_patient(tmp_path, "chb01").channels) == 8


def test_auxiliary_names_only_among_electrode_names():
    from nnlab.data.montage import auxiliary

    assert auxiliary(["EEG Fp1", "EEG F7", "EEG T3", "1", "MK"]) == ["1", "MK"]
    assert auxiliary(["LA1", "LA2", "RH1", "1"]) == []  # depth contacts: no 10-20 names at all
    assert auxiliary(["HIPP-REF"]) == [] and auxiliary([]) == []


@pytest.mark.filterwarnings("ignore:eeg1:UserWarning")  # the derived channels, named
def test_seizure_train_and_detect_on_a_helsinki_recording(tmp_path, capsys):
    """The Helsinki neonatal set's layout: eeg1.edf (referential, 'EEG Fp1-Ref'), one recording
    a patient, and three annotators' per-second tables beside it that disagree at the edges.
    `seizure train --patient eeg1` labels by their majority (2 folds: one per seizure), and
    `detect` scores the recording by the same vote without --summary."""
    from nnlab.data.eeg import Recording, load_patient, read_edf, write_edf
    from nnlab.data.synthetic import EEGSynthConfig, make_chbmit_folder

    chain = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    one = make_chbmit_folder(
        tmp_path / "chb", "chb01", n_files=1, hours=0.2,
        seizures={0: [(250, 280), (560, 590)]}, cfg=EEGSynthConfig(preictal_s=90.0),
    )  # fmt: skip
    rec = read_edf(one.folder / "chb01_01.edf", chain)
    E, names = referential_montage(rec.data, chain)
    names = [n.replace("FP1", "Fp1").replace("REF", "Ref") for n in names]
    data = tmp_path / "helsinki"
    data.mkdir()
    write_edf(data / "eeg1.edf", Recording("eeg1", rec.fs, names, E))
    n = int(rec.data.shape[1] / rec.fs)
    for annotator, (d0, d1) in zip("ABC", ((0, 0), (-3, 2), (2, -4))):  # edges that disagree
        marks = np.zeros(n, dtype=int)
        for on, off in ((250, 280), (560, 590)):
            marks[on + d0 : off + d1] = 1
        (data / f"annotations_2017_{annotator}.csv").write_text(
            '"1","2"\n' + "".join(f"{m},0\n" for m in marks)
        )
    patient = load_patient(data, "eeg1", channels=chain)
    assert [f.name for f in patient.files] == ["eeg1.edf"]
    assert patient.seizures.tolist() == [[250.0, 280.0], [560.0, 590.0]]  # 2 of 3 agree there
    text = train_and_detect(tmp_path, data, "eeg1", chain, data / "eeg1.edf", capsys)
    assert "more than half of 3 annotators" in text
    assert "seizure 250-280 s: " in text and "seizure 560-590 s: " in text
