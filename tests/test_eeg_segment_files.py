"""Segment files as real datasets and spreadsheets export them (`nnlab.data.segments`): text in
every common layout, the files systems leave beside them, links, tables, and what is said when a
folder is not what `--data` expects. Each case once read wrongly or stopped with numpy's message."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from nnlab.data.segments import (
    load_segment_folders,
    load_segment_table,
    parse_pair,
    read_segment,
)
from nnlab.errors import NNLabError

FS = 128
RNG = np.random.default_rng(4)
EEG = np.round(30 * RNG.standard_normal((2, 4 * FS)), 3)  # (2 channels, 512 samples), 3 decimals


def lines(cols, fmt="{:.3f}", sep=",") -> list[str]:
    """One line per sample of the channels `cols` (K, L)."""
    return [sep.join(fmt.format(v) for v in row) for row in np.asarray(cols).T]


def euro(text: str) -> str:
    return text.replace(".", ",")


# (file name, its text, the channels expected (indices into EEG), their names, a note expected)
LAYOUTS = [
    ("plain.txt", "\n".join(lines(EEG[:1])), [0], None, None),
    ("crlf.txt", "\r\n".join(lines(EEG[:1])) + "\r\n", [0], None, None),
    ("spaces.txt", "\n".join(lines(EEG, sep="  ")), [0, 1], None, None),
    ("commas.txt", "\n".join(lines(EEG)), [0, 1], None, None),  # Bern-Barcelona's way
    ("header.csv", "Fp1,F7\n" + "\n".join(lines(EEG)), [0, 1], ["Fp1", "F7"], None),
    ("bom.csv", "\ufeffFp1\n" + "\n".join(lines(EEG[:1])), [0], ["Fp1"], None),
    (
        "semicolons.csv",
        "Fp1;F7\n" + "\n".join(map(euro, lines(EEG, sep=";"))),
        [0, 1],
        ["Fp1", "F7"],
        "decimal commas",
    ),
    ("tabs.csv", "\n".join(lines(EEG, sep="\t")), [0, 1], None, None),
    ("decimal_commas.csv", "\n".join(map(euro, lines(EEG[:1]))), [0], None, "decimal commas"),
    ("decimal_commas.txt", "\n".join(map(euro, lines(EEG[:1]))), [0], None, "decimal commas"),
    (
        "decimals_of_any_width.csv",
        "\n".join(euro(f"{v:g}") for v in EEG[0]),
        [0],
        None,
        "decimal commas",
    ),
    (
        "quoted.csv",
        "\n".join('"' + line.replace(",", '","') + '"' for line in lines(EEG)),
        [0, 1],
        None,
        None,
    ),
    ("trailing.csv", "\n".join(line + "," for line in lines(EEG)), [0, 1], None, None),
    (
        "comment.txt",
        "% exported from MATLAB\n# 128 Hz\n" + "\n".join(lines(EEG[:1])),
        [0],
        None,
        None,
    ),
    (
        "time_first.csv",
        "\n".join(lines(np.vstack([np.arange(4 * FS) / FS, EEG]), "{:.4f}")),
        [0, 1],
        None,
        "times or sample numbers (column 0)",
    ),
    (
        "time_named.csv",
        "time (s),Fp1\n" + "\n".join(lines(np.vstack([np.arange(4 * FS), EEG[:1]]))),
        [0],
        ["Fp1"],
        "times or sample numbers ('time (s)')",
    ),
]


@pytest.mark.parametrize("name,text,channels,labels,note", LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_text_segments_in_the_layouts_exports_use(tmp_path, name, text, channels, labels, note):
    """The same samples from every layout; the names a header row gives; a note where the file
    was read otherwise than as written (decimal commas, a time column left out)."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    seg = read_segment(path)
    np.testing.assert_allclose(seg.x, EEG[channels], atol=2e-3)
    assert seg.labels == labels
    assert (note is None and not seg.notes) or (note is not None and note in " ".join(seg.notes))


def test_latin1_text_and_a_chosen_time_column(tmp_path):
    """Latin-1 text (a 'µV' header of an older program) reads; with --column the file's column
    is taken as asked, a time column too (the user chose it)."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        ("t,Fp1 µV\n" + "\n".join(lines(np.vstack([np.arange(512.0), EEG[0]])))).encode("latin-1")
    )
    seg = read_segment(path)
    np.testing.assert_allclose(seg.x, EEG[:1], atol=2e-3)
    assert seg.labels == ["Fp1 µV"]
    np.testing.assert_allclose(read_segment(path, column=0).x[0], np.arange(512.0))


def test_integer_columns_are_not_decimal_commas(tmp_path):
    """Two integer channels 'a,b' (ADC counts) stay two channels: decimal commas are taken only
    where the digits after the comma have one width and leading zeros."""
    counts = RNG.integers(-500, 500, size=(2, 512))
    path = tmp_path / "counts.csv"
    path.write_text("\n".join(lines(counts, "{:d}")))
    seg = read_segment(path)
    np.testing.assert_array_equal(seg.x, counts)
    assert not seg.notes


def test_a_line_that_is_not_numbers_is_named_by_its_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("% header\n1\n2\nthree\n4\n")
    with pytest.raises(NNLabError, match=r"bad.txt: line 4 is not numbers .*'three'"):
        read_segment(path)
    path.write_bytes(b"\x00\x05\x16\x07Mac OS X" + bytes(100))
    with pytest.raises(NNLabError, match="a binary file, not text"):
        read_segment(path)
    path.write_text("\n".join(["1e40"] + ["1"] * 20))
    with pytest.raises(NNLabError, match="beyond float32's range"):
        read_segment(path)


def two_classes(root, n=4):
    for cls in ("normal", "ictal"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            np.savetxt(root / cls / f"{cls[0]}{i}.txt", EEG[0] * (i + 1), fmt="%.3f")
    return root


def test_a_set_read_with_notes_says_so_once(tmp_path):
    """Files read alike are said in one line for the set, not one line per file."""
    root = tmp_path / "set"
    for cls in ("normal", "ictal"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.csv").write_text("\n".join(map(euro, lines(EEG[:1]))))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = load_segment_folders(root, "normal-ictal", fs=FS)
    said = [str(w.message) for w in caught]
    assert found.x.shape == (6, 1, 512)
    assert [m for m in said if "decimal commas" in m] == [
        f"{root}: 6 of 6 files were read with decimal commas ('-12,5' as -12.5) "
        "(the first: normal/0)"
    ]


def test_files_systems_leave_beside_segments_are_not_segments(tmp_path):
    """macOS's AppleDouble '._x.txt' files and '__MACOSX' folders, Office's '~$x.csv' lock files
    and hidden files are skipped; a link to a missing file is an error naming it."""
    root = two_classes(tmp_path / "set")
    (root / "normal" / "._n0.txt").write_bytes(b"\x00\x05\x16\x07Mac OS X" + bytes(100))
    (root / "ictal" / "~$i0.csv").write_bytes(b"\x05Alice" + bytes(50))
    (root / "ictal" / ".hidden.txt").write_text("x")
    (root / "__MACOSX" / "ictal").mkdir(parents=True)
    (root / "__MACOSX" / "ictal" / "._i0.txt").write_bytes(bytes(10))
    found = load_segment_folders(root, "normal-ictal", fs=FS)
    assert found.x.shape == (8, 1, 512)
    by_pattern = load_segment_folders(root, "n-i", fs=FS, class_pattern=r"([ni])\d")
    assert len(by_pattern.names) == 8 and not any("MACOSX" in n for n in by_pattern.names)
    os.symlink(root / "normal" / "gone.txt", root / "normal" / "n9.txt")
    with pytest.raises(NNLabError, match="n9.txt: a link to a missing file"):
        load_segment_folders(root, "normal-ictal", fs=FS)


def test_class_pattern_follows_linked_folders_once(tmp_path):
    """A set put together from linked folders (as on a cluster) is read whole; a link back up
    the tree is not followed twice."""
    store = two_classes(tmp_path / "store")
    root = tmp_path / "set"
    (root / "part1").mkdir(parents=True)
    np.savetxt(root / "part1" / "n7.txt", EEG[0], fmt="%.3f")
    os.symlink(store, root / "part2")
    os.symlink(root, root / "part1" / "loop")
    found = load_segment_folders(root, "n-i", fs=FS, class_pattern=r"^([ni])\d")
    assert len(found.names) == 9 and "n/part1/n7" in found.names


def test_a_folder_that_is_not_a_class_folder_says_why(tmp_path):
    root = tmp_path / "set"
    two_classes(root)
    for f in (root / "ictal").iterdir():
        f.rename(f.with_suffix(".dat"))
    with pytest.raises(NNLabError, match=r"set/ictal holds no segment files .* it holds 4 \.dat"):
        load_segment_folders(root, "normal-ictal", fs=FS)
    nested = tmp_path / "nested"
    two_classes(nested / "Z")
    with pytest.raises(NNLabError, match=r"nested/Z holds only folders \(.*\): point --data one"):
        load_segment_folders(nested, "Z-ictal", fs=FS)
    with pytest.raises(NNLabError, match="holds segment files itself: --data is the folder above"):
        load_segment_folders(root / "normal", "normal-ictal", fs=FS)


def test_edf_segments_cut_from_chbmit_drop_repeated_and_dummy_signals(tmp_path):
    """CHB-MIT's montage repeats T8-P8 and pads with '-': the repeat and the dummy are left out,
    and said; --column on a repeated label is refused by name."""
    from nnlab.data.eeg import Recording, write_edf

    root = tmp_path / "set"
    labels = ["FP1-F7", "T8-P8", "-", "FZ-CZ", "T8-P8"]
    for cls in ("interictal", "ictal"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            x = np.vstack([EEG, np.zeros(512), EEG[:1], EEG[1:]]).astype(np.float32)
            write_edf(root / cls / f"chb01_{i}.edf", Recording("s", 256.0, labels, x))
    with pytest.warns(UserWarning, match="6 of 6 files had repeated or dummy"):
        found = load_segment_folders(root, "interictal-ictal")
    assert found.channels == ["FP1-F7", "T8-P8", "FZ-CZ"]
    with pytest.raises(NNLabError, match="signal 1 is labelled T8-P8, as another one is"):
        load_segment_folders(root, "interictal-ictal", column=1)


def table(path, header, rows, bom=False, sep=","):
    text = "\n".join([sep.join(header)] + [sep.join(map(str, r)) for r in rows])
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


def test_tables_as_spreadsheets_write_them(tmp_path):
    """A byte-order mark before the class column; semicolons and decimal commas; a segment-id
    column that names the rows; a trailing separator: the same segments each time."""
    X = [f"X{k}" for k in range(1, 9)]
    samples = np.round(RNG.standard_normal((6, 8)) * 10, 2)
    ys = [1, 2, 1, 2, 1, 2]
    want = samples[:, None, :].astype(np.float32)
    cases = {
        "bom.csv": table(
            tmp_path / "bom.csv", ["y", *X], [[y, *s] for y, s in zip(ys, samples)], bom=True
        ),
        "euro.csv": table(
            tmp_path / "euro.csv",
            ["id", *X, "y"],
            [[f"r{i}", *map(euro, map(str, s)), y] for i, (y, s) in enumerate(zip(ys, samples))],
            sep=";",
        ),
        "ids.csv": table(
            tmp_path / "ids.csv",
            ["segment_id", *X, "y"],
            [[1000 + i, *s, y] for i, (y, s) in enumerate(zip(ys, samples))],
        ),
        "trailing.csv": table(
            tmp_path / "trailing.csv", [*X, "y", ""], [[*s, y, ""] for y, s in zip(ys, samples)]
        ),
    }
    for name, path in cases.items():
        found = load_segment_table(path, "2-1", fs=FS)
        np.testing.assert_allclose(found.x, want, atol=1e-5, err_msg=name)
        assert found.y.tolist() == [1, 0, 1, 0, 1, 0], name
    assert load_segment_table(cases["ids.csv"], "2-1", fs=FS).names[0] == "1/1000"


def test_a_table_without_a_header_or_a_named_class_column_is_said(tmp_path):
    rows = [[*np.round(RNG.standard_normal(8), 2), i % 2] for i in range(6)]
    headerless = table(tmp_path / "headerless.csv", [str(v) for v in rows[0]], rows[1:])
    with pytest.raises(NNLabError, match="the first row holds numbers, not column names"):
        load_segment_table(headerless, "0-1", fs=FS)
    other = table(tmp_path / "other.csv", [*(f"X{k}" for k in range(8)), "patient"], rows)
    with pytest.warns(UserWarning, match="the class is read from the last column, 'patient'"):
        load_segment_table(other, "0-1", fs=FS)


def test_pair_names_are_stripped_and_misnamed_pairs_explained():
    assert parse_pair("normal - ictal", ["ictal", "normal"]) == (("normal",), ("ictal",))
    with pytest.raises(NNLabError, match=r"NON-SEIZURE-SEIZURE.*\(the folders with segments: "):
        parse_pair("normal_ictal", ["ictal", "normal"])
    with pytest.raises(NNLabError, match="splits into classes in 2 ways"):
        parse_pair("a-b-c", ["a", "b", "c", "a-b", "b-c"], "class")


def test_resuming_on_changed_segments_is_refused(tmp_path, capsys):
    """A run resumed after files were added would mix folds split on two sets: refused, with
    what changed."""
    from nnlab.cli import main

    def cli(*argv: str) -> int:
        with pytest.raises(SystemExit) as e:
            main(list(argv))
        return e.value.code

    root = two_classes(tmp_path / "set", n=6)
    out = tmp_path / "cv"
    quick = ["-m", "dim=16", "-m", "depth=1", "-m", "heads=2", "--epochs", "1", "--device", "cpu"]
    args = ["--data", str(root), "--pair", "normal-ictal", "--fs", str(FS), "--folds", "2"]
    assert cli("seizure", "bonn", *args, "--mains", "60", "--out", str(out), *quick) == 0
    (out / "fold01" / "summary.json").unlink()  # as if stopped in the second fold
    np.savetxt(root / "ictal" / "i9.txt", EEG[0], fmt="%.3f")
    capsys.readouterr()
    assert cli("seizure", "bonn", "--resume", str(out)) == 1
    err = capsys.readouterr().err
    assert "the dataset changed since this split was made: 12 items then, 13 now" in err
    assert "start a new run" in err and err.count("\n") == 1


def test_what_a_mat_file_was_read_from_and_bonns_folder_names_are_said(tmp_path):
    """A .mat file of several arrays is read from its largest, named with the others; Bonn's
    letters in --pair on the original folders (Z, O, N, F, S) are translated in the error."""
    import scipy.io

    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"eeg": EEG[0], "features": np.zeros(64), "index": np.arange(16)})
    seg = read_segment(path)
    assert seg.notes == ("were read from their largest array, 'eeg' (beside features)",)
    root = tmp_path / "bonn"
    for folder in ("Z", "F", "S"):
        (root / folder).mkdir(parents=True)
        np.savetxt(root / folder / f"{folder}001.txt", EEG[0])
    with pytest.raises(NNLabError, match=r"Bonn's sets A-E are its folders .*: AD is Z\+F"):
        load_segment_folders(root, "AD-E", fs=173.61)
