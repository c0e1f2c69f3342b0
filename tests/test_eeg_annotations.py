"""Seizure annotations as the public datasets really publish them (`nnlab.data.eeg.load_patient`):
the Siena lists' mistyped file names and clock times of several days, annotation files saved with
a byte-order mark, onset and offset markers, an hour typed wrong, TUSZ's sessions stored twice,
and what `train` says when a run's labels change or a seizure's file was left out. Each case once
gave wrong labels without a word."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from nnlab.data.eeg import Recording, load_patient, write_edf
from nnlab.errors import NNLabError

LABELS = ["EEG Fp1", "EEG F3", "EEG C3", "EEG Fp2"]


def recording(path, seconds=120, start=None, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 20, (len(LABELS), seconds * 256)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_edf(path, Recording(path.stem, 256.0, LABELS, data), start)


def siena_block(n, name, start, end, seizure):
    return (
        f"Seizure n {n}\nFile name: {name}\nRegistration start time: {start}\n"
        f"Registration end time: {end}\nSeizure start time: {seizure[0]}\n"
        f"Seizure end time: {seizure[1]}\n\n"
    )


def test_a_siena_list_that_mistypes_its_file_names_reads_the_files_on_disk(tmp_path):
    """The published lists name PNO6-1.edf (the letter O), PN01.edf and PN11-.edf for PN06-1,
    PN01-1 and PN11-1: each missing name is read as the one unlisted file it mistypes, said."""
    folder = tmp_path / "PN06"
    recording(folder / "PN06-1.edf")
    recording(folder / "PN06-2.edf", seed=1)
    (folder / "Seizures-list-PN06.txt").write_text(
        siena_block(1, "PNO6-1.edf", "09.00.00", "09.02.00", ("09.00.30", "09.00.50"))
        + siena_block(2, "PN06-2.edf", "10.00.00", "10.02.00", ("10.01.00", "10.01.20"))
    )
    with pytest.warns(UserWarning, match="the list's PNO6-1.edf is not on disk: PN06-1.edf"):
        p = load_patient(tmp_path, "PN06")
    assert [f.name for f in p.files] == ["PN06-1.edf", "PN06-2.edf"]
    np.testing.assert_array_equal(p.seizures, [[30, 50], [3660, 3680]])
    for listed in ("PN11.edf", "PN11-.edf"):
        folder = tmp_path / listed / "PN11"
        recording(folder / "PN11-1.edf")
        (folder / "Seizures-list-PN11.txt").write_text(
            siena_block(1, listed, "09.00.00", "09.02.00", ("09.00.30", "09.00.50"))
        )
        with pytest.warns(UserWarning, match=f"the list's {listed} is not on disk: PN11-1.edf"):
            assert len(load_patient(folder, "PN11").files) == 1
    folder = tmp_path / "chb01"  # a missing file is not guessed among files of another number
    recording(folder / "chb01_03.edf")
    recording(folder / "chb01_04.edf")
    (folder / "chb01-summary.txt").write_text(
        "File Name: chb01_02.edf\nFile Start Time: 10:00:00\nFile End Time: 10:02:00\n"
        "Number of Seizures in File: 0\n\nFile Name: chb01_03.edf\nFile Start Time: 11:00:00\n"
        "File End Time: 11:02:00\nNumber of Seizures in File: 0\n"
    )
    with pytest.warns(UserWarning, match="skipping chb01_02.edf: .*no such EDF file"):
        assert [f.name for f in load_patient(folder, "chb01").files] == ["chb01_03.edf"]


def test_files_a_clock_list_overlaps_are_placed_by_their_headers_or_said(tmp_path):
    """Siena lists give clock times without dates: recordings of later mornings land on one
    another, and one file's seizure would label the other's windows. Placed by their EDF headers'
    dates where those do not overlap; else said, naming both files."""
    folder = tmp_path / "PN05"
    day = datetime(2020, 3, 1, 6, 0, 0)
    recording(folder / "PN05-1.edf", start=day)
    recording(folder / "PN05-2.edf", start=day + timedelta(days=1, seconds=30), seed=1)
    (folder / "Seizures-list-PN05.txt").write_text(
        siena_block(1, "PN05-1.edf", "06.00.00", "06.02.00", ("06.00.30", "06.00.50"))
        + siena_block(2, "PN05-2.edf", "06.00.30", "06.02.30", ("06.01.30", "06.01.50"))
    )
    with pytest.warns(UserWarning, match=r"PN05-1.edf \(0-120 s\) and PN05-2.edf \(30-150 s\) ov"):
        p = load_patient(tmp_path, "PN05")
    assert [f.start_s for f in p.files] == [0.0, 86430.0]  # a day and 30 s later
    recording(folder / "PN05-2.edf", start=day + timedelta(seconds=30), seed=1)  # headers too
    with pytest.warns(
        UserWarning, match="overlap in time, placed by the list's clock times .*chec"
    ):
        p = load_patient(tmp_path, "PN05")
    assert [f.start_s for f in p.files] == [0.0, 30.0]


def test_seizures_of_no_length_or_an_hour_are_said(tmp_path):
    folder = tmp_path / "PN00"
    recording(folder / "PN00-1.edf", seconds=4000)
    (folder / "Seizures-list-PN00.txt").write_text(
        siena_block(1, "PN00-1.edf", "17.00.00", "18.06.40", ("17.05.00", "18.06.00"))
        + siena_block(2, "PN00-1.edf", "17.00.00", "18.06.40", ("17.02.00", "17.02.00"))
    )
    with pytest.warns(UserWarning) as caught:
        load_patient(tmp_path, "PN00")
    said = " | ".join(str(w.message) for w in caught)
    assert "a seizure of 61 min at 300-3960 s (a typo in an hour?)" in said
    assert "a seizure of 0 s at 120 s (an onset or offset marker alone?)" in said


def bids(root, n=2, bom=False):
    for i in range(n):
        eeg = root / "sub-01" / f"ses-0{i + 1}" / "eeg"
        stem = f"sub-01_ses-0{i + 1}_task-x_run-00"
        recording(eeg / f"{stem}_eeg.edf", start=datetime(2020, 1, 1 + i, 9), seed=i)
        text = "onset\tduration\teventType\n20\t10\tsz_foc\n"
        (eeg / f"{stem}_events.tsv").write_text(("\ufeff" if bom else "") + text)
    return root


def test_annotation_files_saved_with_a_byte_order_mark_are_read(tmp_path):
    """Excel's and Notepad's "UTF-8" put U+FEFF first, which str.strip() keeps: a BIDS events
    table and a TUH .csv_bi read as without it."""
    p = load_patient(bids(tmp_path / "bids", bom=True), "sub-01")
    assert len(p.files) == 2 and len(p.seizures) == 2
    tuh = tmp_path / "tuh" / "p1" / "s001_2003" / "01_tcp_ar"
    recording(tuh / "p1_s001_t000.edf", start=datetime(2003, 1, 1))
    (tuh / "p1_s001_t000.csv_bi").write_text(
        "\ufeff# version = csv_v1.0.0\n# bname = p1_s001_t000\n"
        "channel,start_time,stop_time,label,confidence\nTERM,20.0,30.0,seiz,1.0\n"
    )
    recording(tuh.parent.parent / "s002_2003" / "01_tcp_ar" / "p1_s002_t000.edf", seed=1)
    with pytest.warns(UserWarning, match="without an annotation file"):
        p = load_patient(tmp_path / "tuh", "p1")
    np.testing.assert_array_equal(p.seizures, [[20, 30]])


def test_an_events_file_that_is_no_table_is_named(tmp_path):
    root = bids(tmp_path / "bids")
    events = next(root.rglob("*ses-02*_events.tsv"))
    events.write_text("onset duration eventType\n20 10 sz_foc\n")  # spaces, not tabs
    with pytest.warns(UserWarning, match=r"ses-02.*_events.tsv beside it is not a TUH or BIDS"):
        p = load_patient(root, "sub-01")
    assert len(p.files) == 1


def test_a_tusz_session_stored_under_two_montages_is_read_once(tmp_path):
    """TUSZ v2.0.0-2.0.1 keep some sessions under both 01_tcp_ar and 03_tcp_ar_a: the copy would
    count its seizure twice, one in training while the other is held out."""
    tree = tmp_path / "tuh"
    for montage in ("01_tcp_ar", "03_tcp_ar_a"):
        folder = tree / "p1" / "s001_2003" / montage
        recording(folder / "p1_s001_t000.edf", start=datetime(2003, 1, 1, 9))
        (folder / "p1_s001_t000.csv_bi").write_text(
            "# version = csv_v1.0.0\nchannel,start_time,stop_time,label,confidence\n"
            "TERM,20.0,30.0,seiz,1.0\n"
        )
    with pytest.warns(UserWarning, match="stored again as p1/s001_2003/03_tcp_ar_a/p1_s001_t000"):
        p = load_patient(tree, "p1")
    assert len(p.files) == 1 and len(p.seizures) == 1


def test_train_names_the_skipped_files_where_seizures_went(tmp_path):
    from nnlab.tasks.seizure import SeizureConfig, fold_parts

    n = 40
    prep = SimpleNamespace(
        start_s=np.arange(n) * 5.0,
        end_s=np.arange(n) * 5.0 + 5,
        label=np.where(np.arange(n) < 5, 1, 0),
        base=np.ones(n, bool),
        episode=np.where(np.arange(n) < 5, 0, -1),
        patient=SimpleNamespace(skipped=[("chb01_02.edf", "missing channel(s) P7-O1")]),
    )
    with pytest.raises(NNLabError, match=r"got 1 .*chb01_02.edf \(missing channel\(s\) P7-O1\)"):
        fold_parts(prep, SeizureConfig())


def test_a_run_resumed_on_changed_labels_is_refused(tmp_path):
    from nnlab.tasks.seizure import same_windows

    def prep(seizure):
        label = np.zeros(20, np.int8)
        label[seizure] = 1
        return SimpleNamespace(
            file=np.zeros(20, int),
            start_s=np.arange(20.0),
            label=label,
            patient=SimpleNamespace(seizures=np.array([[seizure, seizure + 1.0]])),
        )

    run = SimpleNamespace(path=tmp_path)
    same_windows(prep(5), run, resume=False)
    same_windows(prep(5), run, resume=True)  # the same: goes on
    with pytest.raises(NNLabError, match=r"labels changed since this run started .*another --out"):
        same_windows(prep(9), run, resume=True)
