"""EEG data: EDF reading/writing, the CHB-MIT summary, the patient index, resampling, the
synthetic CHB-MIT stand-in, prediction labels, and the Bonn sets."""

from __future__ import annotations

import os
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from nnlab.data import registry
from nnlab.data.bonn import BONN_FS, load_bonn, pair_labels, read_bonn_mat, read_bonn_texts
from nnlab.data.eeg import (
    Recording,
    common_channels,
    edf_header,
    global_starts,
    load_patient,
    parse_summary,
    read_edf,
    resample,
    resample_ratio,
    split_discontinuous,
    write_edf,
)
from nnlab.data.synthetic import CHBMIT_LABELS, EEGSynthConfig, make_chbmit_folder, synthetic_eeg
from nnlab.errors import NNLabError
from nnlab.signal.labels import LabelConfig, label_windows, leading_seizures, preictal_intervals


def _recording(n_s: int = 4, fs: int = 256, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal((3, n_s * fs)) * [[50.0], [5.0], [300.0]]).astype(np.float32)
    return Recording("rec", float(fs), ["FP1-F7", "T8-P8", "T8-P8"], data)


# ---- EDF -----------------------------------------------------------------------------------------
def test_edf_round_trip_keeps_labels_rate_and_values_to_16_bit_resolution(tmp_path):
    rec = _recording()
    path = write_edf(tmp_path / "r.edf", rec)
    back = read_edf(path)
    assert back.labels == rec.labels and back.fs == 256.0 and back.data.dtype == np.float32
    assert back.data.shape == rec.data.shape and back.duration_s == 4.0
    # each channel's step is its integer physical range over 65535 digital steps
    lo, hi = np.floor(rec.data.min(axis=1)), np.ceil(rec.data.max(axis=1))
    step = (hi - lo) / 65535
    err = np.abs(back.data - rec.data).max(axis=1)
    assert np.all(err <= step / 2 + 1e-4 * np.abs(rec.data).max(axis=1))
    assert err[2] > err[1]  # the wide channel is quantised more coarsely: per-channel ranges
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.edf"]  # no temporary left behind


def test_read_edf_selects_channels_by_label_in_the_given_order_and_a_part(tmp_path):
    rec = _recording()
    path = write_edf(tmp_path / "r.edf", rec)
    back = read_edf(path, ["t8-p8", "FP1-F7"])  # case-insensitive; a repeated label: the first
    assert back.labels == ["t8-p8", "FP1-F7"]
    np.testing.assert_allclose(back.data, rec.data[[1, 0]], atol=0.01)
    part = read_edf(path, ["FP1-F7"], start_s=1.0, duration_s=2.0)
    assert part.start_s == 1.0 and part.data.shape == (1, 512)
    np.testing.assert_allclose(part.data[0], rec.data[0, 256:768], atol=0.01)
    with pytest.raises(NNLabError, match=r"r\.edf.*CZ-PZ"):
        read_edf(path, ["FP1-F7", "CZ-PZ"])


def test_edf_header_reads_no_samples(tmp_path, monkeypatch):
    import pyedflib

    path = write_edf(tmp_path / "r.edf", _recording(n_s=3))

    def forbidden(*args, **kwargs):
        raise AssertionError("edf_header read samples")

    monkeypatch.setattr(pyedflib.EdfReader, "readSignal", forbidden)
    head = edf_header(path)
    assert head.labels == ("FP1-F7", "T8-P8", "T8-P8")
    assert head.fs == (256.0,) * 3 and head.n_samples == (768,) * 3
    assert head.duration_s == 3.0 and head.units == ("uV",) * 3
    assert head.find("t8-p8") == 1 and head.find("CZ-PZ") is None


def test_channels_at_different_rates_are_read_only_when_they_agree(tmp_path):
    import pyedflib

    path = tmp_path / "mixed.edf"
    writer = pyedflib.EdfWriter(str(path), 3, pyedflib.FILETYPE_EDFPLUS)
    rates = [256, 128, 256]
    writer.setSignalHeaders(
        [
            {
                "label": label,
                "dimension": "mV",
                "sample_frequency": fs,
                "physical_min": -1.0,
                "physical_max": 1.0,
                "digital_min": -32768,
                "digital_max": 32767,
                "transducer": "",
                "prefilter": "",
            }
            for label, fs in zip(["A", "B", "C"], rates)
        ]
    )
    writer.writeSamples([np.full(2 * fs, 0.5) for fs in rates])
    writer.close()
    assert edf_header(path).fs == (256.0, 128.0, 256.0)
    both = read_edf(path, ["C", "A"])
    assert both.fs == 256.0 and both.data.shape == (2, 512)
    np.testing.assert_allclose(both.data, 500.0, atol=0.05)  # 0.5 mV read as 500 uV
    assert read_edf(path, ["B"]).data.shape == (1, 256)
    with pytest.raises(NNLabError, match=r"mixed\.edf.*different sampling rates"):
        read_edf(path, ["A", "B"])
    with pytest.raises(NNLabError, match="different sampling rates"):
        read_edf(path)


@pytest.mark.parametrize("damage", ["truncated", "header_only", "not_edf", "empty"])
def test_a_damaged_or_foreign_file_is_an_error_naming_it(tmp_path, damage):
    good = write_edf(tmp_path / "good.edf", _recording()).read_bytes()
    content = {
        "truncated": good[: 256 * 5 + 100],  # not one whole data record
        "header_only": good[:300],
        "not_edf": b"this is not an EDF file\n" * 40,
        "empty": b"",
    }[damage]
    path = tmp_path / f"{damage}.edf"
    path.write_bytes(content)
    for reader in (edf_header, read_edf):
        with pytest.raises(NNLabError, match=f"{damage}\\.edf"):
            reader(path)


def _header_field(raw: bytes, ns: int, offset: int, width: int, i: int = 0) -> slice:
    """Where signal i's field at `offset` (per signal, as in the standard) lies in the header."""
    start = 256 + offset * ns + i * width
    return slice(start, start + width)


NONCOMPLIANT = {
    # a clinical exporter's unit in Latin-1, and in UTF-8
    "unit_latin1": lambda b, ns: b.__setitem__(_header_field(b, ns, 96, 8), b"\xb5V      "),
    "unit_utf8": lambda b, ns: b.__setitem__(_header_field(b, ns, 96, 8), b"\xc2\xb5V     "),
    "name": lambda b, ns: b.__setitem__(slice(8, 88), "Müller".encode("latin-1").ljust(80)),
    "date": lambda b, ns: b.__setitem__(slice(168, 176), b"01/02/03"),
    "records": lambda b, ns: b.__setitem__(slice(236, 244), b"-1      "),
    "label_nul": lambda b, ns: b.__setitem__(_header_field(b, ns, 0, 16), b"Fp1\x00".ljust(16)),
    "comma": lambda b, ns: b.__setitem__(
        _header_field(b, ns, 104, 8), bytes(b[_header_field(b, ns, 104, 8)]).replace(b".", b",")
    ),
}


def _decimal_minimum(good: bytes) -> bytes:
    """good with its first signal's physical minimum given a decimal fraction ('-195.5')."""
    raw = bytearray(good)
    where = _header_field(raw, int(raw[252:256]), 104, 8)
    raw[where] = (bytes(raw[where]).strip() + b".5").ljust(8)
    return bytes(raw)


@pytest.mark.filterwarnings("ignore:.*EDFlib refuses it")
@pytest.mark.parametrize("damage", sorted(NONCOMPLIANT))
def test_a_file_edflib_refuses_for_the_letter_of_the_standard_reads(tmp_path, damage):
    """Real exporters write 'µV', names with accents, 01/02/03 dates, decimal commas, NULs and
    '-1' records; EDFlib refuses each. nnlab reads such a file with its own reader and says so
    (EDFlib's reason in a warning): the same labels, rate and samples as the compliant file. A
    truncated file stays an error (but for '-1' records: a recording still being written, read to
    its last whole record)."""
    import pyedflib

    rec = Recording("c", 256.0, ["Fp1", "Fp2", "Cz"], _recording().data[:3])
    good = write_edf(tmp_path / "good.edf", rec).read_bytes()
    if damage == "comma":  # a decimal point to write as a comma
        good = _decimal_minimum(good)
        (tmp_path / "good.edf").write_bytes(good)
    raw = bytearray(good)
    ns = int(raw[252:256])
    NONCOMPLIANT[damage](raw, ns)
    path = tmp_path / f"{damage}.edf"
    path.write_bytes(bytes(raw))
    with pytest.raises(OSError):  # EDFlib refuses it
        pyedflib.EdfReader(str(path)).close()
    with pytest.warns(UserWarning, match=f"{damage}.edf: EDFlib refuses it .*own EDF reader"):
        head = edf_header(path)
        got = read_edf(path)
    want = read_edf(tmp_path / "good.edf")
    assert head.labels == ("Fp1", "Fp2", "Cz") and head.fs == (256.0,) * 3
    assert got.fs == want.fs and got.labels == want.labels
    np.testing.assert_allclose(got.data, want.data, rtol=1e-6, atol=1e-6)
    if damage.startswith("unit"):
        assert head.units[0] == "µV"  # read as microvolts: no scaling
    part = read_edf(path, ["Cz"], start_s=2.0, duration_s=3.0)
    np.testing.assert_allclose(part.data, want.data[2:, 512 : 512 + 768], rtol=1e-6, atol=1e-6)
    path.write_bytes(bytes(raw[:-1000]))  # and cut short: the whole records there are read
    if damage == "records":  # '-1': still being recorded, said by no warning
        assert read_edf(path).data.shape == (3, 256 * 3)
        return
    with pytest.warns(UserWarning, match=f"{damage}.edf: cut short"):
        got = read_edf(path)
    assert got.data.shape == (3, 256 * 3)
    np.testing.assert_allclose(got.data, want.data[:, : 256 * 3], rtol=1e-6, atol=1e-6)


def test_a_corrupted_header_is_read_or_refused_in_one_line(tmp_path):
    """200 files, each with one to three header bytes set at random: each is read (EDFlib, or
    nnlab's own reader) or refused with an NNLabError; nothing else escapes."""
    good = write_edf(tmp_path / "good.edf", _recording()).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "bad.edf"
    outcomes = set()
    for _ in range(200):
        raw = bytearray(good)
        for _ in range(rng.integers(1, 4)):
            raw[int(rng.integers(0, 256 * 4))] = int(rng.integers(0, 256))
        path.write_bytes(bytes(raw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                read_edf(path, ["FP1-F7"])
                outcomes.add("read")
            except NNLabError as e:
                assert "bad.edf" in str(e) and "\n" not in str(e)
                outcomes.add("refused")
    assert outcomes == {"read", "refused"}


@pytest.mark.parametrize("kind", ["edf", "bdf"])
def test_an_edf_plus_d_file_reads_when_its_records_have_no_gaps(tmp_path, kind, edf_plus_d):
    """EDFlib refuses every EDF+D file ("The file is discontinuous and cannot be read"); some
    recorders mark all their files so. nnlab reads one whose data records follow each other
    (`EDFRecords`: the same samples as the file marked EDF+C, all of it or a part), and
    refuses one with a gap in one line that names it (tests/test_seizure.py runs `seizure
    detect` on one)."""
    import pyedflib

    rec = _recording(n_s=6)
    good = tmp_path / f"c.{kind}"
    if kind == "edf":
        write_edf(good, rec)
    else:  # 24-bit samples
        w = pyedflib.EdfWriter(str(good), 3, pyedflib.FILETYPE_BDFPLUS)
        w.setSignalHeaders([
            {"label": lab, "dimension": "uV", "sample_frequency": 256, "physical_max": 1000.0,
             "physical_min": -1000.0, "digital_max": 8388607, "digital_min": -8388608}
            for lab in ("FP1-F7", "C3", "EKG")
        ])  # fmt: skip
        w.setStartdatetime(datetime(2003, 7, 18, 9, 30, 5))
        w.writeSamples([x.astype(np.float64) for x in rec.data])
        w.close()
    raw = good.read_bytes()
    path = tmp_path / f"d.{kind}"
    path.write_bytes(edf_plus_d(raw))
    want, got = edf_header(good), edf_header(path)
    assert got.labels == want.labels and got.fs == want.fs and got.n_samples == want.n_samples
    assert got.units == want.units and got.duration_s == want.duration_s == 6.0
    assert got.start == want.start
    for part in ({}, {"start_s": 1.5, "duration_s": 2.25}, {"start_s": 5.0}):
        a, b = read_edf(good, **part), read_edf(path, **part)
        assert b.labels == a.labels and b.start_s == a.start_s
        np.testing.assert_allclose(b.data, a.data, rtol=1e-6, atol=1e-6)
    path.write_bytes(edf_plus_d(raw, gap_after=2))
    for reader in (edf_header, read_edf):
        with pytest.raises(
            NNLabError,
            match=rf"d\.{kind}: an EDF\+D \(discontinuous\) file whose data records have gaps "
            r"in time \(the first: record 3 starts at 5 s, not 3 s\)",
        ):
            reader(path)
    path.write_bytes(edf_plus_d(raw)[:-700])  # cut short: the 5 whole records, said
    with pytest.warns(UserWarning, match=r"cut short .*: 5 whole data records \(5 s\) where its"):
        assert edf_header(path).duration_s == 5.0
    bad = bytearray(edf_plus_d(raw))
    bad[256 + 216 * 4 : 256 + 216 * 4 + 8] = b"-5      "  # a signal's samples per record
    path.write_bytes(bytes(bad))
    with pytest.raises(NNLabError, match="malformed header"):
        read_edf(path)


def test_the_edf_plus_d_reader_agrees_with_edflib_on_files_edflib_wrote(tmp_path, edf_plus_d):
    """pyedflib's own test recordings (EDF+ and BDF+, written by EDFlib: 6-12 signals of several
    rates, data records of 0.5, 1 and 2 s, a start with a fraction of a second), each marked
    EDF+D: `EDFRecords` gives what EDFlib reads from the original (to float32 rounding)."""
    import pyedflib

    folder = Path(pyedflib.__file__).parent / "tests" / "data"
    files = [f for f in sorted(folder.glob("*.*df")) if f.read_bytes()[193:197] == b"DF+C"]
    if len(files) < 3:
        pytest.skip(f"pyedflib's test recordings are not installed in {folder}")
    for f in files:
        path = tmp_path / f.name
        path.write_bytes(edf_plus_d(f.read_bytes()))
        want, got = edf_header(f), edf_header(path)
        assert got.labels == want.labels and got.fs == want.fs, f.name
        assert got.n_samples == want.n_samples and got.units == want.units, f.name
        assert got.duration_s == want.duration_s, f.name
        # to the second: EDFlib's fraction of a second is 10x too small (0.039 for '+0.3945312')
        assert got.start.replace(microsecond=0) == want.start.replace(microsecond=0), f.name
        for part in ({}, {"start_s": 0.75, "duration_s": 3.0}):
            for rate in sorted(set(want.fs)):
                channels = [lab for lab, fs in zip(want.labels, want.fs) if fs == rate]
                a, b = read_edf(f, channels, **part), read_edf(path, channels, **part)
                np.testing.assert_allclose(b.data, a.data, rtol=1e-6, atol=1e-6, err_msg=f.name)


def test_the_fallback_reader_agrees_with_edflib_on_plain_and_continuous_files():
    """nnlab's own reader (`EDFRecords`, what reads the files EDFlib refuses) on pyedflib's test
    recordings as they are -- EDF, BDF, EDF+C, a legacy EDF without '+' --: every signal EDFlib
    reads, the same rate, length and samples. (A legacy file's 'EDF Annotations' signal, read by
    EDFlib as data, is not a signal here.)"""
    import pyedflib

    from nnlab.data.eeg import EDFRecords

    folder = Path(pyedflib.__file__).parent / "tests" / "data"
    files = sorted(folder.glob("*.*df"))
    if len(files) < 3:
        pytest.skip(f"pyedflib's test recordings are not installed in {folder}")
    for f in files:
        want, got = pyedflib.EdfReader(str(f)), EDFRecords(f)
        try:
            theirs = [want.getLabel(i).strip() for i in range(want.signals_in_file)]
            assert got.signals_in_file >= want.signals_in_file - 1, f.name
            for i in range(got.signals_in_file):
                j = theirs.index(got.getLabel(i))
                assert got.getSampleFrequency(i) == want.getSampleFrequency(j), f.name
                np.testing.assert_allclose(
                    got.readSignal(i), want.readSignal(j), rtol=0, atol=1e-9, err_msg=f.name
                )
        finally:
            want.close()
            got.close()


@pytest.mark.parametrize("kind", ["edf", "bdf"])
def test_split_writes_the_continuous_pieces_of_an_edf_plus_d_file(tmp_path, kind, edf_plus_d):
    """`nnlab seizure split`: an EDF+D file with a gap of 2.5 s after its third second becomes
    two EDF+C files that EDFlib reads: the same samples, bit for bit; the second piece's header
    clock 5 s after the first's (its first record at +0.5 s inside it). Existing pieces are not
    replaced without --overwrite; an EDF+C file has nothing to split."""
    from nnlab.cli import main

    good = tmp_path / f"c.{kind}"
    if kind == "edf":
        rec = _recording(n_s=6)
        rec = Recording("rec", rec.fs, ["FP1-F7", "C3", "C4"], rec.data)
        write_edf(good, rec, start=datetime(2003, 7, 18, 23, 59, 58))
    else:
        import pyedflib

        w = pyedflib.EdfWriter(str(good), 2, pyedflib.FILETYPE_BDFPLUS)
        w.setSignalHeaders([
            {"label": lab, "dimension": "uV", "sample_frequency": fs, "physical_max": 1000.0,
             "physical_min": -1000.0, "digital_max": 8388607, "digital_min": -8388608}
            for lab, fs in (("C3", 256), ("EKG", 128))
        ])  # fmt: skip
        w.setStartdatetime(datetime(2003, 7, 18, 23, 59, 58))
        rng = np.random.default_rng(1)
        w.writeSamples([rng.normal(0, 50, 6 * 256), rng.normal(0, 50, 6 * 128)])
        w.close()
    gappy = tmp_path / f"gappy.{kind}"
    gappy.write_bytes(edf_plus_d(good.read_bytes(), gap_after=2, gap_s=2.5))
    with pytest.raises(NNLabError, match="`nnlab seizure split gappy.* writes its 2 continuous"):
        read_edf(gappy)
    with pytest.raises(SystemExit) as e:
        main(["seizure", "split", str(gappy)])
    assert e.value.code == 0
    parts = sorted((tmp_path / "gappy_parts").iterdir())
    assert [p.name for p in parts] == [f"gappy_part01.{kind}", f"gappy_part02.{kind}"]
    whole, heads = edf_header(good), [edf_header(p) for p in parts]
    assert [h.duration_s for h in heads] == [3.0, 3.0] and all(
        h.labels == whole.labels for h in heads
    )
    assert heads[0].start == whole.start.replace(microsecond=0)
    # 2.5 s of gap: the second piece's clock 5 s after the first's, across midnight
    assert heads[1].start.replace(microsecond=0) == datetime(2003, 7, 19, 0, 0, 3)
    for rate in sorted(set(whole.fs)):
        channels = [lab for lab, fs in zip(whole.labels, whole.fs) if fs == rate]
        x = read_edf(good, channels).data
        y = np.concatenate([read_edf(p, channels).data for p in parts], axis=1)
        np.testing.assert_array_equal(x, y)
    with pytest.raises(SystemExit) as e:
        main(["seizure", "split", str(gappy)])
    assert e.value.code == 1
    with pytest.raises(NNLabError, match="not an EDF\\+D .*nothing to split"):
        split_discontinuous(good, tmp_path / "none")


def test_write_edf_refuses_partial_records_and_leaves_nothing(tmp_path):
    rec = Recording("short", 256.0, ["A"], np.zeros((1, 300), dtype=np.float32))
    with pytest.raises(NNLabError, match="whole"):
        write_edf(tmp_path / "short.edf", rec)
    assert list(tmp_path.iterdir()) == []


# ---- the summary ---------------------------------------------------------------------------------
SUMMARY = """Data Sampling Rate: 256 Hz
*************************

Channels in EDF Files:
**********************
Channel 1: FP1-F7
Channel 2: F7-T7
Channel 3: T8-P8
Channel 4: T8-P8

File Name: chb99_01.edf
File Start Time: 22:50:00
File End Time: 23:50:00
Number of Seizures in File: 1
Seizure Start Time: 2996 seconds
Seizure End Time: 3036 seconds

File Name: chb99_02.edf
File Start Time: 23:50:05
File End Time: 24:50:05
Number of Seizures in File: 0

Channels changed:
*****************
Channel 1: FP1-F7
Channel 2: -
Channel 3: F7-T7
Channel 4: .
Channel 5: ECG

File Name: chb99_03.edf
File Start Time: 00:55:00
File End Time: 01:55:00
Number of Seizures in File: 2
Seizure 1 Start Time:  120 seconds
Seizure 1 End Time: 180 seconds
Seizure 2 Start Time: 1862 seconds
Seizure 2 End Time: 1900.5 seconds
"""


def test_summary_parser_reads_both_spellings_montage_changes_and_midnight():
    s = parse_summary(SUMMARY)
    assert s.fs == 256.0 and [f.name for f in s.files] == [f"chb99_0{i}.edf" for i in (1, 2, 3)]
    f1, f2, f3 = s.files
    assert (f1.clock_start_s, f1.clock_end_s) == (22 * 3600 + 50 * 60, 23 * 3600 + 50 * 60)
    assert f2.clock_end_s == 24 * 3600 + 50 * 60 + 5  # written past 24:00, kept as written
    assert f1.seizures == ((2996.0, 3036.0),) and f2.seizures == ()
    assert f3.seizures == ((120.0, 180.0), (1862.0, 1900.5))
    assert f1.channels == f2.channels == ("FP1-F7", "F7-T7", "T8-P8", "T8-P8")
    assert f3.channels == ("FP1-F7", "-", "F7-T7", ".", "ECG")
    # 00:55 follows 23:50:05, so it is the next day: 2 h 5 min after the first start
    assert global_starts([f.clock_start_s for f in s.files]) == [0, 3605, 7500]


def test_summary_lines_round_trip_through_the_parser():
    from nnlab.data.eeg import summary_lines

    lines = ["Data Sampling Rate: 256 Hz", ""]
    lines += summary_lines("a.edf", [(2996.25, 3036.0)], "11:42:54", "12:42:54")
    lines += summary_lines("b.edf", [(12.0, 40.5), (1_234_567.0, 1_234_600.0)])
    lines += summary_lines("c.edf", [])
    a, b, c = parse_summary("\n".join(lines)).files
    assert a.seizures == ((2996.25, 3036.0),) and a.clock_start_s == 11 * 3600 + 42 * 60 + 54
    assert b.seizures == ((12.0, 40.5), (1_234_567.0, 1_234_600.0)) and b.clock_start_s is None
    assert c.seizures == ()


def test_stitched_segments_cross_fade_at_each_junction():
    from nnlab.data.bonn import stitch

    fs = 100.0
    segs = [np.full(500, 10.0 * i) for i in range(4)]  # 5-s segments at 0, 10, 20, 30 uV
    x, bounds = stitch(segs, fs, fade_s=0.5)  # F = 50 samples
    assert len(x) == 4 * 500 - 3 * 50 and bounds.tolist() == [0, 475, 925, 1375, 1850]
    assert np.abs(np.diff(x)).max() < 10.0 / 50 + 1e-6  # a ramp, never a 10-uV step
    for i in range(4):  # each segment's own samples, between the cross-fades, unchanged
        lo, hi = bounds[i] + 25, bounds[i + 1] - 25
        np.testing.assert_array_equal(x[lo:hi], 10.0 * i)
    x0, b0 = stitch(segs, fs, fade_s=0.0)  # no cross-fade: plain concatenation
    np.testing.assert_array_equal(x0, np.concatenate(segs))
    assert b0.tolist() == [0, 500, 1000, 1500, 2000]
    with pytest.raises(NNLabError, match="longer than twice"):
        stitch([np.zeros(80)], fs, fade_s=0.5)


def test_summary_parser_rejects_an_unpaired_seizure_time():
    text = "File Name: a.edf\nSeizure 1 Start Time: 10 seconds\nSeizure 2 Start Time: 20 seconds\n"
    with pytest.raises(NNLabError, match="line 3"):
        parse_summary(text)


def test_common_channels_drop_dummies_and_repeats_and_keep_the_majority():
    lists = [
        ["FP1-F7", "T8-P8", "-", "T8-P8", "CZ-PZ"],
        ["fp1-f7", ".", "T8-P8", "CZ-PZ", "ECG"],
        ["CZ-PZ", "FP1-F7", "T8-P8", "VNS"],
    ]
    assert common_channels(lists) == ["FP1-F7", "T8-P8", "CZ-PZ"]
    assert common_channels(lists[:2]) == ["FP1-F7", "T8-P8", "CZ-PZ"]  # ECG in 1 of 2: not more
    assert common_channels(lists, min_fraction=0.3) == ["FP1-F7", "T8-P8", "CZ-PZ", "ECG", "VNS"]


# ---- resampling ----------------------------------------------------------------------------------
def test_resampling_200_to_256_hz_preserves_a_10_hz_sine():
    t = np.arange(2000) / 200.0
    y, fs = resample(np.sin(2 * np.pi * 10 * t)[None, :], 200.0, 256.0)
    assert fs == 256.0 and y.shape == (1, 2560) and y.dtype == np.float32
    t_out = np.arange(2560) / 256.0
    inner = (t_out > 0.5) & (t_out < 9.5)  # the FIR's edge transients aside
    np.testing.assert_allclose(y[0, inner], np.sin(2 * np.pi * 10 * t_out[inner]), atol=5e-3)
    up, down = resample_ratio(173.61, 256.0)
    assert down <= 1000 and abs(173.61 * up / down - 256.0) < 0.01


# ---- synthetic CHB-MIT folder and the patient index ----------------------------------------------
def test_synthetic_folder_round_trip_through_the_patient_index(tmp_path):
    seizures = {0: [(100, 130)], 2: [(20, 50), (140, 170)]}
    sp = make_chbmit_folder(
        tmp_path, "chb07", n_files=3, hours=0.05, seizures=seizures, first_start="23:52:00"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean folder raises no warning
        p = load_patient(tmp_path, "chb07")
    assert [f.name for f in p.files] == sp.names == ["chb07_01.edf", "chb07_02.edf", "chb07_03.edf"]
    assert [f.start_s for f in p.files] == sp.starts_s == [0.0, 780.0, 1560.0]
    assert all(f.duration_s == 180.0 and f.fs == 256.0 for f in p.files)
    # summary seizure times are the generator's, also across midnight (24:05:00 ...)
    expected = [[100, 130], [1580, 1610], [1700, 1730]]
    np.testing.assert_array_equal(p.seizures, expected)
    np.testing.assert_array_equal(sp.seizures, expected)
    assert p.files[2].seizures == ((1580.0, 1610.0), (1700.0, 1730.0))
    assert p.channels == list(dict.fromkeys(CHBMIT_LABELS)) and len(p.channels) == 22
    rec = p.read("chb07_02")
    assert rec.data.shape == (22, 180 * 256) and rec.start_s == 780.0
    np.testing.assert_array_equal(rec.data[3], read_edf(p.files[1].path, ["P7-O1"]).data[0])
    low = p.read(1, fs=128.0, start_s=10.0, duration_s=20.0)
    assert low.fs == 128.0 and low.data.shape == (22, 2560) and low.start_s == 790.0
    text = sp.summary.read_text()
    assert "File Start Time: 24:05:00" in text and "Seizure 2 Start Time: 140 seconds" in text
    assert "Seizure Start Time: 100 seconds" in text  # one seizure: the unnumbered spelling


def test_montage_change_and_a_file_missing_a_channel(tmp_path):
    sp = make_chbmit_folder(
        tmp_path,
        "chb12",
        n_files=4,
        hours=0.01,
        seizures={1: [(10, 20)]},
        montage_change_at=2,
        missing_channel_file=1,
        wrap_clock=True,
    )
    assert "-" in sp.labels[2] and "ECG" in sp.labels[2] and "FT9-FT10" not in sp.labels[1]
    with pytest.warns(UserWarning, match=r"chb12_02\.edf: missing channel\(s\) FT9-FT10"):
        p = load_patient(tmp_path / "chb12", "chb12")
    assert [f.name for f in p.files] == ["chb12_01.edf", "chb12_03.edf", "chb12_04.edf"]
    assert p.skipped == [("chb12_02.edf", "missing channel(s) FT9-FT10")]
    assert "-" not in p.channels and "ECG" not in p.channels and len(p.channels) == 22
    np.testing.assert_array_equal(p.seizures, [[36 + 600 + 10, 36 + 600 + 20]])  # kept
    changed = p.read(2)  # reordered montage with dummies: rows still follow p.channels
    first = p.read(0)
    assert changed.labels == first.labels == p.channels
    # FZ-CZ moved to the front of the changed montage, and is still found by its label
    assert changed.data[p.channels.index("FZ-CZ")].std() > 1.0


def test_synthetic_eeg_has_the_seizures_and_pre_seizure_change_it_documents():
    from scipy.signal import welch

    fs, cfg = 256, EEGSynthConfig(preictal_s=300.0)
    x = synthetic_eeg(420, [(360, 400)], fs=fs, n_channels=12, seed=3, cfg=cfg)
    assert x.shape == (12, 420 * fs) and x.dtype == np.float32
    np.testing.assert_array_equal(x, synthetic_eeg(420, [(360, 400)], 256, 12, seed=3, cfg=cfg))
    focus = round(cfg.focus_fraction * 12)

    def band_power(a, b, lo, hi):
        f, P = welch(x[:, a * fs : b * fs], fs, nperseg=fs)
        return P[:, (f >= lo) & (f < hi)].sum(axis=1)  # (C,)

    ictal, calm = band_power(365, 395, 2, 4), band_power(5, 35, 2, 4)
    assert np.all(ictal[:focus] > 10 * calm[:focus])  # spike-wave at ~3 Hz on the focus
    assert np.all(ictal[focus:] < 2 * calm[focus:])  # and not elsewhere
    late, early = band_power(320, 355, 15, 25), band_power(5, 40, 15, 25)
    assert np.all(late[:focus] > 1.5 * early[:focus])  # beta grows before the onset
    # 60 Hz mains: the amplitude of the 60 Hz component is line_uv times a gain in [0.5, 1.5]
    t = np.arange(30 * fs) / fs
    segment = x[:, 5 * fs : 35 * fs]
    amplitude = 2 * np.abs(segment @ np.exp(-2j * np.pi * 60 * (t + 5))) / len(t)
    assert np.all((amplitude > 0.45 * cfg.line_uv) & (amplitude < 1.55 * cfg.line_uv))


# ---- labels for prediction -----------------------------------------------------------------------
def test_leading_seizures_skip_those_soon_after_the_previous_end():
    szr = [(40000, 40100), (20000, 20060), (21000, 21050)]  # unsorted on purpose
    np.testing.assert_array_equal(
        leading_seizures(szr, 2100), [[20000, 20060], [40000, 40100]]
    )  # 21000 - 20060 = 940 s < 2100
    assert len(leading_seizures(szr, 900)) == 3
    assert LabelConfig().lead_gap_s == 1800 + 300  # default: SOP + SPH
    np.testing.assert_array_equal(
        preictal_intervals(szr, LabelConfig()), [[17900, 19700], [37900, 39700]]
    )


def test_window_labels_on_hand_computed_cases():
    cfg = LabelConfig(sop_s=1800, sph_s=300, interictal_gap_s=14400)
    szr = [(20000, 20060), (21000, 21050), (40000, 40100)]
    cases = {
        17900: 1,  # first window of the SOP of seizure 1: [20000 - 2100, 20000 - 300)
        17895: -1,  # just before it: too close for interictal
        19695: 1,  # last window ending at onset - SPH
        19696: -1,  # reaches into the SPH
        19700: -1,  # inside the SPH
        20010: -1,  # ictal
        20500: -1,  # in the would-be SOP of non-leading seizure 2 (and postictal)
        38000: 1,  # SOP of leading seizure 3
        0: 0,  # far from everything
        5595: 0,  # ends exactly 4 h before the first onset
        5596: -1,
        35450: -1,  # 4 h after seizure 2's end but within 4 h of seizure 3's onset
        54500: 0,  # starts exactly 4 h after the last offset
        54495: -1,
    }
    starts = np.array(list(cases), dtype=float)
    got = label_windows(starts, starts + 5, szr, cfg)
    assert got.dtype == np.int8
    assert dict(zip(cases, got.tolist())) == cases


def test_ictal_labels_for_detection_on_hand_computed_cases():
    from nnlab.signal.labels import label_ictal

    szr = [(1000, 1060), (5000, 5003)]
    cases = {  # 5-s windows [start, start + 5), gap 60 s
        997.5: 1,  # exactly half inside seizure 1
        997.4: -1,  # less than half: excluded (the onset's edge), not interictal
        1030: 1,
        1057.5: 1,  # half inside at the offset
        1058: -1,
        935: 0,  # ends exactly 60 s before the onset
        936: -1,
        1120: 0,  # starts exactly 60 s after the offset
        5000: 1,  # a 3-s seizure covers 3 of the window's 5 s
        4999: 1,
        4998: 1,  # [4998, 5003): the whole seizure, 3 of 5 s
        4997: -1,  # 2 of 5 s
    }
    starts = np.array(list(cases), dtype=float)
    got = label_ictal(starts, starts + 5, szr, gap_s=60)
    assert got.dtype == np.int8 and dict(zip(cases, got.tolist())) == cases
    assert (label_ictal([0.0, 10.0], [5.0, 15.0], [], gap_s=60) == 0).all()
    with pytest.raises(NNLabError, match="gap"):
        label_ictal([0.0], [5.0], szr, gap_s=-1)


def test_labels_preictal_wins_over_interictal_and_never_covers_a_seizure():
    # a small gap makes windows both "far enough" and preictal: preictal wins
    cfg = LabelConfig(sop_s=600, sph_s=60, interictal_gap_s=0)
    assert label_windows([5500], [5510], [(6000, 6030)], cfg).tolist() == [1]  # in [5340, 5940)
    # lead gap 0: seizure 2 leads although seizure 1 lies inside its SOP; that window is ictal
    cfg = LabelConfig(sop_s=1800, sph_s=300, lead_gap_s=0)
    got = label_windows([1050, 1200], [1055, 1205], [(1000, 1100), (2000, 2050)], cfg)
    assert got.tolist() == [-1, 1]
    assert label_windows([0, 10], [5, 15], [], cfg).tolist() == [0, 0]  # no seizures
    assert LabelConfig(**cfg.to_dict()) == cfg
    with pytest.raises(NNLabError):
        LabelConfig(sop_s=0)


# ---- Bonn ----------------------------------------------------------------------------------------
def test_pair_labels():
    assert pair_labels("A-E") == (("A",), ("E",))
    assert pair_labels("ad-e") == (("A", "D"), ("E",))
    assert pair_labels("BC-DE") == (("B", "C"), ("D", "E"))
    for bad in ("AE", "A-F", "A-A", "-E", "A-E-D"):
        with pytest.raises(NNLabError):
            pair_labels(bad)


def test_bonn_file_with_wrong_variable_or_shape_is_an_error(tmp_path):
    scipy.io.savemat(tmp_path / "v.mat", {"data": np.zeros((4097, 3), dtype=np.int16)})
    scipy.io.savemat(tmp_path / "s.mat", {"eeg_data": np.zeros((4096, 3), dtype=np.int16)})
    (tmp_path / "x.mat").write_bytes(b"not matlab")
    with pytest.raises(NNLabError, match=r"v\.mat: no variable 'eeg_data'"):
        read_bonn_mat(tmp_path / "v.mat")
    with pytest.raises(NNLabError, match=r"s\.mat: eeg_data has shape \(4096, 3\)"):
        read_bonn_mat(tmp_path / "s.mat")
    with pytest.raises(NNLabError, match=r"x\.mat"):
        read_bonn_mat(tmp_path / "x.mat")
    x = np.arange(4097 * 2, dtype=np.int16).reshape(2, 4097).T  # column j = segment j
    scipy.io.savemat(tmp_path / "ok.mat", {"eeg_data": x})
    np.testing.assert_array_equal(read_bonn_mat(tmp_path / "ok.mat"), x.T)


def _bonn_text(rng, n=4097) -> str:
    return "\n".join(str(int(v)) for v in rng.integers(-500, 500, n)) + "\n"


def test_bonn_original_text_files_folder_and_zip(data_dir):
    """The original distribution: set B as a folder O/ of O001.txt.., set C as N.zip of N00k.TXT
    (upper-case, as in the real zip): both load, in file-name order, with the values written;
    the pair BC-E then needs E, which is absent: a one-line error naming where it looked."""
    import zipfile

    rng = np.random.default_rng(0)
    folder = data_dir / "bonn-eeg" / "O"
    folder.mkdir(parents=True)
    texts_b = [_bonn_text(rng) for _ in range(3)]
    for i, t in enumerate(texts_b):
        (folder / f"O{i + 1:03d}.txt").write_text(t)
    (folder / "readme.pdf").write_bytes(b"%PDF")  # not a segment
    texts_c = [_bonn_text(rng) for _ in range(2)]
    with zipfile.ZipFile(data_dir / "bonn-eeg" / "N.zip", "w") as z:
        for i, t in reversed(list(enumerate(texts_c))):
            z.writestr(f"N{i + 1:03d}.TXT", t)
        z.writestr("__MACOSX/._N001.TXT", b"\x00\x05\x16\x07 resource fork")  # not a segment
    b = load_bonn("BC")
    assert b.x.shape == (5, 4097) and b.names == ["B001", "B002", "B003", "C001", "C002"]
    np.testing.assert_array_equal(b.x[0], np.array(texts_b[0].split(), dtype=np.float32))
    np.testing.assert_array_equal(b.x[4], np.array(texts_c[1].split(), dtype=np.float32))
    x, y, _ = b.binary("B-C")
    assert y.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(NNLabError, match=r"set E not found .*S\.zip"):
        load_bonn("BE")


def test_bonn_bad_text_segments_are_one_line_errors(tmp_path):
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "Z001.txt").write_text("1\n2\n3\n")
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "Z001.txt").write_text("1\nfoo\n" * 2000)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.zip").write_bytes(b"PK not a zip")
    with pytest.raises(NNLabError, match=r"Z001\.txt: 3 samples, expected 4097"):
        read_bonn_texts(tmp_path / "short")
    with pytest.raises(NNLabError, match=r"Z001\.txt: not a column of numbers"):
        read_bonn_texts(tmp_path / "words")
    with pytest.raises(NNLabError, match="no .txt segment files"):
        read_bonn_texts(tmp_path / "empty")
    with pytest.raises(NNLabError, match="not a readable zip"):
        read_bonn_texts(tmp_path / "bad.zip")


def test_bonn_sets_from_nnlab_data(real_data):
    info = registry.get_info("bonn")
    if any(registry.locate(info, f.name) is None for f in info.files):
        pytest.skip("Bonn .mat files not in NNLAB_DATA")
    b = load_bonn(("A", "D", "E"))
    assert b.x.shape == (300, 4097) and b.x.dtype == np.float32 and b.fs == BONN_FS
    assert b.names[:2] == ["A001", "A002"] and b.names[-1] == "E100"
    ranges = {"A": (-288, 294), "D": (-1147, 2047), "E": (-1885, 2047)}  # SOURCE.md
    for s, (lo, hi) in ranges.items():
        seg = b.x[b.sets == s]
        assert len(seg) == 100 and seg.min() == lo and seg.max() == hi
    np.testing.assert_array_equal(b.x[0, :10], [12, 22, 35, 45, 69, 74, 79, 78, 66, 43])
    assert len(np.unique(b.x, axis=0)) == 300
    x, y, names = b.binary("AD-E")
    assert x.shape == (300, 4097) and y.sum() == 100 and y[names.index("E001")] == 1
    x, y, names = load_bonn("AE").binary("A-E")
    assert len(x) == 200 and names[100] == "E001"
    with pytest.raises(NNLabError, match="set B"):
        load_bonn("AB")


SIENA_LIST = """Seizures list of patient PN05

Seizure n 1
File name: PN05-1.edf
Registration start time: 09.10.00
Registration end time: 09.12.00
Seizure start time: 09.10.30
Seizure end time: 09.10.50

Seizure n 2
File name: PN05-1.edf
Registration start time: 09.10.00
Registration end time:  09.12.00
Start time: 09.11.10
End time: 09.11.25

Seizure n 3
File name: PN05-2.edf
Registration start time: 23.59.00
Registration end time: 0.02.20
Seizure start time: 1 6.00.00
Seizure end time: 16.00.05

Seizure n 4
File name: PN05-2.edf
Registration start time: 23:59:00
Registration end time: 00:02:20
Seizure start time: 00:01:30
Seizure end time: 01:01:40
"""


def siena_folder(root):
    """A Siena Scalp EEG-like patient: 512 Hz, 'EEG Fp1'-style labels beside EKG and SpO2, its
    Seizures-list file (dotted clock times, both seizure-time spellings, an hour with a stray
    space, a recording across midnight and a seizure end an hour too late, as published lists
    have them)."""
    from nnlab.data.eeg import Recording, write_edf

    folder = root / "PN05"
    rng = np.random.default_rng(0)
    labels = ["EEG Fp1", "EEG F3", "EEG C3", "EEG Fp2", "EKG EKG", "SPO2"]
    for name, seconds in (("PN05-1.edf", 120), ("PN05-2.edf", 200)):
        data = rng.normal(0, 20, (len(labels), seconds * 512)).astype(np.float32)
        write_edf(folder / name, Recording(name, 512.0, labels, data))
    (folder / "Seizures-list-PN05.txt").write_text(SIENA_LIST)
    return folder


def test_a_siena_seizure_list_reads_as_a_summary(tmp_path):
    from nnlab.data.eeg import parse_seizure_list, read_summary

    s = parse_seizure_list(SIENA_LIST)
    assert s.fs is None and [f.name for f in s.files] == ["PN05-1.edf", "PN05-2.edf"]
    one, two = s.files
    assert (one.clock_start_s, one.clock_end_s) == (9 * 3600 + 600, 9 * 3600 + 720)
    assert one.seizures == ((30.0, 50.0), (70.0, 85.0))
    # 23:59:00 -> '1 6.00.00' is 16:00:00, 16 h 1 min after the start (mod a day); 00:01:30 is
    # 150 s after it, across midnight
    assert two.seizures == ((150.0, 3760.0), (57660.0, 57665.0))
    folder = siena_folder(tmp_path)
    assert read_summary(folder / "Seizures-list-PN05.txt").files == s.files
    with pytest.raises(NNLabError, match="line 3: a seizure end without its start"):
        parse_seizure_list("File name: a.edf\nRegistration start time: 10.00.00\nEnd time: 1.0.0")


def test_a_siena_patient_loads_with_its_eeg_channels_and_seizures(tmp_path):
    from nnlab.tasks.seizure import SeizureConfig

    siena_folder(tmp_path)
    with pytest.warns(UserWarning) as caught:
        p = load_patient(tmp_path, "PN05")
    text = " | ".join(str(w.message) for w in caught)
    assert "EKG EKG (labelled EKG)" in text and "SPO2" in text  # not EEG: left out, named
    assert p.channels == ["EEG Fp1", "EEG F3", "EEG C3", "EEG Fp2"]
    assert [f.fs for f in p.files] == [512.0, 512.0]
    # the second recording starts at 23:59:00, 14 h 49 min after the first (09:10:00)
    start2 = 14 * 3600 + 49 * 60
    assert [f.start_s for f in p.files] == [0.0, float(start2)]
    # the seizure ending an hour after its recording is cut at the recording's end, with a
    # warning; the one 16 h after the start lies outside the file and is kept as listed
    assert "PN05-2.edf: the seizure at 150-3760 s ends after the file (200 s)" in text
    assert "the seizure at 57660-57665 s starts after the file's end (200 s)" in text
    np.testing.assert_array_equal(
        p.seizures,
        [[30, 50], [70, 85], [start2 + 150, start2 + 200], [start2 + 57660, start2 + 57665]],
    )
    SeizureConfig(data=str(tmp_path), patient="PN05").check()  # found by its seizure list

    # prepared for detection: 512 Hz resampled to the model's 256, four EEG channels, and the
    # ictal windows where the list puts the seizures (5-s windows at least half inside one)
    from nnlab.tasks.seizure import prepare_patient

    cfg = SeizureConfig(
        data=str(tmp_path), patient="PN05", target="detection", cache=str(tmp_path / "cache")
    )
    with pytest.warns(UserWarning):
        prep = prepare_patient(cfg)
    assert prep.store.window_shape[0] == 4
    ictal = prep.base & (prep.label == 1)
    assert [r["ictal"] for r in prep.rows] == [7, 10]  # 20 s + 15 s; 50 s cut at the file's end
    assert ((prep.start_s[ictal] < 50) | (prep.start_s[ictal] >= 70)).all()


def test_an_ecg_lead_in_every_file_is_not_a_model_input(tmp_path):
    """From the first file on, the montage holds an ECG channel: the common set leaves it out
    (with a warning that names it), unless --channels names it."""
    make_chbmit_folder(tmp_path, "chb09", n_files=2, hours=0.01, montage_change_at=0)
    with pytest.warns(UserWarning, match=r"not EEG, left out of the channel set.*ECG \(labelled"):
        p = load_patient(tmp_path / "chb09", "chb09")
    assert "ECG" not in p.channels and len(p.channels) == 22
    kept = load_patient(tmp_path / "chb09", "chb09", channels=["FP1-F7", "ECG"])
    assert kept.channels == ["FP1-F7", "ECG"] and kept.read(0).data.shape[0] == 2


# ---- TUH EEG Seizure Corpus annotations ----------------------------------------------------------
TUH_CSV_BI = """# version = csv_v1.0.0
# bname = aaaaaajy_s001_t000
# duration = 1750.0000 secs
# montage_file = $NEDC_NFC/lib/nedc_eas_default_montage.txt
#
channel,start_time,stop_time,label,confidence
TERM,0.0000,36.8868,bckg,1.0000
TERM,36.8868,183.3055,seiz,1.0000
TERM,183.3055,1100.0000,bckg,1.0000
TERM,1100.0000,1160.5000,seiz,1.0000
TERM,1160.5000,1750.0000,bckg,1.0000
"""

TUH_CSV = """# version = csv_v1.0.0
# bname = aaaaaajy_s001_t000
channel,start_time,stop_time,label,confidence
FP1-F7,0.0000,40.0000,bckg,1.0000
FP1-F7,40.0000,180.0000,fnsz,1.0000
F7-T7,36.8868,150.0000,fnsz,1.0000
F7-T7,150.0000,183.3055,fnsz,1.0000
T7-P7,1100.0000,1160.5000,gnsz,1.0000
T7-P7,1200.0000,1210.0000,eyem,1.0000
"""

TUH_TSE = """version = tse_v1.0.0

0.0000 36.8868 bckg 1.0000
36.8868 183.3055 seiz 1.0000
183.3055 1750.0000 bckg 1.0000
"""


def test_tuh_annotations_read_as_a_one_file_summary(tmp_path):
    from nnlab.data.eeg import annotation_sidecar, read_summary

    expected = ((36.8868, 183.3055), (1100.0, 1160.5))
    for suffix, text in ((".csv_bi", TUH_CSV_BI), (".csv", TUH_CSV)):
        path = tmp_path / f"x{suffix}"
        path.write_text(text)
        summary = read_summary(path)
        (f,) = summary.files
        # the per-channel rows of one seizure are merged; an eye-movement artifact is no seizure
        assert f.name == "aaaaaajy_s001_t000.edf" and f.seizures == expected
        assert summary.file("aaaaaajy_s001_t000.edf") is f
    (tmp_path / "rec.tse_bi").write_text(TUH_TSE)
    assert read_summary(tmp_path / "rec.tse_bi").file("rec.edf").seizures == ((36.8868, 183.3055),)
    (tmp_path / "rec.csv").write_text("a,b\n1,2\n")  # a CSV that is not TUH's: not a sidecar
    sidecar = annotation_sidecar(tmp_path / "rec.edf")
    assert sidecar.paths == (tmp_path / "rec.tse_bi",)
    assert sidecar.seizures == ((36.8868, 183.3055),)
    assert str(sidecar) == str(tmp_path / "rec.tse_bi")
    assert annotation_sidecar(tmp_path / "none.edf") is None
    (tmp_path / "bad.csv_bi").write_text(TUH_CSV_BI.replace("1100.0000,1160", "soon,1160"))
    with pytest.raises(NNLabError, match="bad.csv_bi: line 10: not an annotation row"):
        read_summary(tmp_path / "bad.csv_bi")


BIDS_EVENTS = (
    "onset\tduration\teventType\tconfidence\tchannels\tdateTime\trecordingDuration\n"
    "0.00\t3600.00\tbckg\tn/a\tn/a\t2000-01-01 09:00:00\t3600.00\n"
    "2996.00\t40.00\tsz\tn/a\tn/a\t2000-01-01 09:00:00\t3600.00\n"
    "3020.00\t30.00\tsz_foc_ia_m_automatisms\tn/a\tn/a\t2000-01-01 09:00:00\t3600.00\n"
    "3300.50\t12.50\tSZ_GEN_M_TONICCLONIC\tn/a\tn/a\t2000-01-01 09:00:00\t3600.00\n"
)


def test_bids_events_read_as_a_one_file_summary(tmp_path):
    """SzCORE's BIDS events (CHB-MIT, Siena, TUSZ, SeizeIT converted): seizures by an eventType
    that starts with 'sz', overlapping ones merged; found beside X_eeg.edf as X_events.tsv."""
    from nnlab.data.eeg import annotation_sidecar, read_summary

    eeg = tmp_path / "sub-01" / "ses-01" / "eeg"
    eeg.mkdir(parents=True)
    events = eeg / "sub-01_ses-01_task-szMonitoring_run-00_events.tsv"
    events.write_text(BIDS_EVENTS)
    edf = eeg / "sub-01_ses-01_task-szMonitoring_run-00_eeg.edf"
    assert annotation_sidecar(edf).paths == (events,)
    (f,) = read_summary(events).files
    assert f.name == edf.name and f.seizures == ((2996.0, 3050.0), (3300.5, 3313.0))
    (tmp_path / "t_events.tsv").write_text("onset\tduration\ttrial_type\n10\t5\tseizure\n")
    assert read_summary(tmp_path / "t_events.tsv").files[0].seizures == ((10.0, 15.0),)
    (tmp_path / "n_events.tsv").write_text("onset\tduration\teventType\n10\tn/a\tsz\n")
    with pytest.raises(NNLabError, match="line 2: a seizure needs a numeric onset and duration"):
        read_summary(tmp_path / "n_events.tsv")
    (tmp_path / "x_events.tsv").write_text("onset\tduration\tsample\n10\t5\t2560\n")
    with pytest.raises(NNLabError, match="no eventType, trial_type or value column"):
        read_summary(tmp_path / "x_events.tsv")


def helsinki_table(columns: dict[int, list[int]]) -> str:
    """One annotator's per-second table as the Helsinki neonatal set writes it: a header of
    recording numbers, one row a second, empty cells past a shorter recording's end."""
    n = max(len(v) for v in columns.values())
    rows = [",".join(f'"{k}"' for k in columns)]
    for i in range(n):
        rows.append(",".join(str(v[i]) if i < len(v) else "" for v in columns.values()))
    return "\n".join(rows) + "\n"


def test_helsinki_per_second_tables_one_annotator_and_the_majority(tmp_path):
    """Each annotator's table is a summary of eegN.edf; beside eegN.edf the tables vote: a second
    is ictal when more than half of them mark it."""
    from nnlab.data.eeg import annotation_sidecar, is_per_second_table, read_summary

    a = {1: [0, 1, 1, 1, 0, 0, 1, 1], 3: [0, 0, 0, 0, 0]}
    b = {1: [0, 0, 1, 1, 1, 0, 0, 1], 3: [0, 0, 0, 1, 1]}
    c = {1: [0, 0, 0, 1, 1, 0, 0, 0], 3: [0, 0, 0, 1, 1]}
    for name, table in zip("ABC", (a, b, c)):
        (tmp_path / f"annotations_2017_{name}.csv").write_text(helsinki_table(table))
    assert is_per_second_table(helsinki_table(a))
    assert not is_per_second_table("a,b\n1,2\n") and not is_per_second_table("1,2\n")
    one = read_summary(tmp_path / "annotations_2017_A.csv")
    assert [f.name for f in one.files] == ["eeg1.edf", "eeg3.edf"]
    assert one.file("eeg1.edf").seizures == ((1.0, 4.0), (6.0, 8.0))  # row i: [i, i + 1) s
    assert one.file("eeg3.edf").seizures == ()
    # the three vote, per second
    (tmp_path / "eeg1.edf").write_bytes(b"")  # found by name only; not read here
    s1 = annotation_sidecar(tmp_path / "eeg1.edf")
    assert [p.name for p in s1.paths] == [f"annotations_2017_{k}.csv" for k in "ABC"]
    assert s1.seizures == ((2.0, 5.0), (7.0, 8.0)) and "more than half of 3 annotators" in str(s1)
    assert annotation_sidecar(tmp_path / "eeg3.edf").seizures == ((3.0, 5.0),)
    assert annotation_sidecar(tmp_path / "eeg2.edf") is None  # no column 2
    # a bad cell is named: a 2, or a hole before the column's end; beside a recording, that
    # table is left out with a warning and the others vote (both of 2)
    (tmp_path / "annotations_2017_C.csv").write_text(helsinki_table({1: [0, 2, 0], 3: [0, 0, 0]}))
    with pytest.raises(NNLabError, match="annotations_2017_C.csv: line 3: column 1: .*not 0 or 1"):
        read_summary(tmp_path / "annotations_2017_C.csv")
    with pytest.warns(UserWarning, match="annotations_2017_C.csv: line 3: .*not read as seizure"):
        s1 = annotation_sidecar(tmp_path / "eeg1.edf")
    assert len(s1.paths) == 2 and s1.seizures == ((2.0, 4.0), (7.0, 8.0))
    (tmp_path / "bad.csv").write_text('"7"\n0\n\n1\n')  # a blank line is no hole: skipped
    assert read_summary(tmp_path / "bad.csv").file("eeg7.edf").seizures == ((1.0, 2.0),)
    (tmp_path / "bad.csv").write_text('"7","8"\n0,1\n,1\n1,0\n')
    with pytest.raises(NNLabError, match="bad.csv: line 3: column 7"):
        read_summary(tmp_path / "bad.csv")


# ---- files as recorders and copies leave them ---------------------------------------------------
def _with_field(raw: bytes, at: int, value: str) -> bytes:
    out = bytearray(raw)
    out[at : at + 8] = value.ljust(8).encode()
    return bytes(out)


def test_a_file_longer_than_its_header_counts_is_read_whole_and_said(tmp_path, capfd):
    """A recorder stopped before it rewrote the count of data records: the records beyond it are
    read (nothing lost), with a warning; EDFlib's own printing of a file's size does not reach
    the terminal."""
    good = write_edf(tmp_path / "good.edf", _recording()).read_bytes()
    path = tmp_path / "undercount.edf"
    path.write_bytes(_with_field(good, 236, "2"))  # 4 records in the file
    with pytest.warns(UserWarning, match=r"longer than its header says.*: 4 whole data records"):
        got = read_edf(path)
    np.testing.assert_allclose(got.data, read_edf(tmp_path / "good.edf").data, atol=1e-6)
    path.write_bytes(good[:-700])
    with pytest.warns(UserWarning, match="cut short"):
        edf_header(path)
    assert "filesize" not in capfd.readouterr().out
    from nnlab.data.eeg import quiet_stdout

    capfd.readouterr()
    with quiet_stdout():  # what a C library writes to descriptor 1 (EDFlib's own printing)
        os.write(1, b"filesize 353173 != 11378*60+6144 ")
    os.write(1, b"after\n")
    assert capfd.readouterr().out == "after\n"


def test_files_without_samples_or_time_are_refused_in_one_line(tmp_path):
    """Data records of 0 s with signals in them (EDF+ allows 0 for annotations alone), and a
    file of annotations alone: each refused by name, before any rate is computed."""
    good = write_edf(tmp_path / "good.edf", _recording()).read_bytes()
    path = tmp_path / "zero.edf"
    path.write_bytes(_with_field(good, 244, "0"))
    for reader in (edf_header, read_edf):
        with pytest.raises(NNLabError, match=r"zero.edf: .*data records last 0 s, with 3 signals"):
            reader(path)
    import pyedflib

    notes = tmp_path / "notes.edf"
    w = pyedflib.EdfWriter(str(notes), 0, pyedflib.FILETYPE_EDFPLUS)
    w.writeAnnotation(1.0, 2.0, "seizure")
    w.close()
    with pytest.raises(NNLabError, match="notes.edf: holds no signals, only annotations"):
        edf_header(notes)


def test_an_uncalibrated_signal_reads_flat_not_scaled(tmp_path):
    """Digital minimum = maximum: no calibration. Read as flat (and said), not scaled by the
    physical range over 1 (once a false seizure alarm on noise)."""
    good = write_edf(tmp_path / "good.edf", _recording()).read_bytes()
    raw = bytearray(good)
    ns = int(raw[252:256])
    for offset in (120, 128):  # digital minimum and maximum of signal 1
        raw[256 + offset * ns + 8 : 256 + offset * ns + 16] = b"0".ljust(8)
    path = tmp_path / "uncalibrated.edf"
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=r"T8-P8: no calibration .* read as flat"):
        got = read_edf(path)
    assert np.ptp(got.data[1]) == 0 and np.ptp(got.data[0]) > 0


def test_time_that_goes_back_is_an_error_naming_the_record(tmp_path, edf_plus_d):
    """A clock set back in an EDF+D file: records that overlap the ones before them would give
    windows at repeated times. Refused, naming the record; `split` still writes the pieces."""
    from nnlab.data.eeg import split_discontinuous

    raw = write_edf(tmp_path / "c.edf", _recording(n_s=6)).read_bytes()
    path = tmp_path / "back.edf"
    path.write_bytes(edf_plus_d(raw, gap_after=2, gap_s=-2.0))
    with pytest.raises(NNLabError, match=r"time goes back at data record 3, which starts at 1 s"):
        edf_header(path, gaps_ok=True)
    assert len(split_discontinuous(path, tmp_path / "parts")) == 2


@pytest.mark.parametrize(
    "unit,scale",
    [("uV", 1.0), ("µV", 1.0), ("microvol", 1.0), ("mcV", 1.0), ("mV", 1e3), ("millivolt", 1e3),
     ("V", 1e6), ("volts", 1e6), ("nV", 1e-3), ("%", None), ("bpm", None), ("", None)],
)  # fmt: skip
def test_voltage_units_as_headers_spell_them(unit, scale):
    from nnlab.data.eeg import non_eeg_reason, unit_to_microvolts

    assert unit_to_microvolts(unit) == scale
    assert (non_eeg_reason("FP1-F7", unit) is None) == (scale is not None or unit == "")


@pytest.mark.parametrize(
    "label,eeg",
    [("C4-M1", True), ("E1-M2", False), ("E2 - M1", False), ("E1", True), ("E117", True),
     ("LAT", False), ("RAT", False), ("Leg/L", False), ("Pos", False), ("POz", True),
     ("PO3", True), ("SaO2", False), ("Chin1-Chin2", False), ("PTAF", False)],
)  # fmt: skip
def test_a_sleep_montages_other_leads_are_not_eeg(label, eeg):
    """A home sleep study holds 3 EEG leads and more eye, leg, breathing and position channels:
    a single-channel model must not read those as EEG (a leg's muscle burst once raised the
    only alarm). An EGI net's E1, E117 and the 10-10 parietal-occipital leads stay EEG."""
    from nnlab.data.eeg import non_eeg_reason

    assert (non_eeg_reason(label) is None) == eeg
