"""A model's channels found in a recording of another montage (`nnlab.data.montage`): labels
parsed, renamed, reversed and derived from two channels on one reference; never mixed across
references."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.data.montage import derive_channels, electrode, parse_label, referential_montage


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
