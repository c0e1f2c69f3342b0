"""nnlab.data.splits: the same draws as the functions it replaces, groups never split, k-fold and
leave-one-group-out cover every item once, split.json round-trips by name and refuses a changed
dataset, old split files still load."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, StratifiedKFold

from nnlab.data.splits import (
    kfold,
    leave_one_group_out,
    load_split,
    partition,
    save_split,
    split_by_group,
    split_by_item,
    split_info,
)
from nnlab.errors import NNLabError

SPLITS_PY = Path(__file__).resolve().parents[1] / "nnlab" / "data" / "splits.py"


def _labels(n: int, n_classes: int, seed: int) -> np.ndarray:
    """Unbalanced labels, some classes tiny (down to one item)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(n_classes, 0.5))
    return rng.choice(n_classes, size=n, p=p)


def _assert_parts_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(x, y)


# The functions as they were before this module existed (nnlab.data.partition and
# nnlab.data.segmentation.split_indices, commit 6e4fc8d), kept verbatim as the reference: runs
# made before the move must get the same splits.
def _original_partition(n, fractions, labels, seed):
    rng = np.random.default_rng(seed)
    position = np.empty(n)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        position[idx] = (np.arange(len(idx)) + rng.uniform(size=len(idx))) / len(idx)
    order = np.argsort(position, kind="stable")
    bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return [np.sort(part) for part in np.split(order, bounds)]


def _original_split_indices(n, seed, fractions=(0.6, 0.2, 0.2)):
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return {k: np.sort(part) for k, part in zip(("train", "val", "test"), np.split(order, bounds))}


# ---- the same draws as the originals -------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 50, 1797])
@pytest.mark.parametrize("seed", [0, 1, 123])
@pytest.mark.parametrize("fractions", [(0.9, 0.1), (0.7, 0.1, 0.2), (0.6, 0.2, 0.2)])
def test_partition_is_the_one_in_nnlab_data(n, seed, fractions):
    original = _original_partition

    for labels in (
        _labels(n, 10, seed),
        np.zeros(n, dtype=np.int64),
        np.array(["cat", "dog", "eel"])[np.arange(n) % 3],
    ):
        _assert_parts_equal(
            partition(n, fractions, labels, seed), original(n, fractions, labels, seed)
        )


@pytest.mark.parametrize("n", [0, 5, 13, 40, 1000])
@pytest.mark.parametrize("seed", [0, 3, 2024])
def test_split_by_item_without_labels_is_split_indices(n, seed):
    split_indices = _original_split_indices

    ours, theirs = split_by_item(n, seed=seed), split_indices(n, seed)
    assert list(ours) == list(theirs) == ["train", "val", "test"]
    _assert_parts_equal(list(ours.values()), list(theirs.values()))
    ours = split_by_item(n, (0.8, 0.1, 0.1), seed)
    _assert_parts_equal(list(ours.values()), list(split_indices(n, seed, (0.8, 0.1, 0.1)).values()))


@pytest.mark.parametrize("seed", [0, 7])
def test_split_by_item_with_labels_is_the_stratified_partition(seed):
    original = _original_partition

    labels = _labels(300, 6, seed)
    ours = split_by_item(300, (0.7, 0.1, 0.2), seed, labels)
    _assert_parts_equal(list(ours.values()), original(300, (0.7, 0.1, 0.2), labels, seed))
    two = split_by_item(300, (0.9, 0.1), seed, labels, parts=("train", "val"))
    assert list(two) == ["train", "val"]
    _assert_parts_equal(list(two.values()), original(300, (0.9, 0.1), labels, seed))


def test_split_by_item_checks_its_arguments():
    with pytest.raises(NNLabError, match="2 fractions for 3 parts"):
        split_by_item(10, (0.5, 0.5))
    with pytest.raises(NNLabError, match="sum to 1"):
        split_by_item(10, (0.6, 0.2, 0.1))
    with pytest.raises(NNLabError, match=r"labels must have shape \(10,\)"):
        split_by_item(10, labels=np.zeros(9))


def test_the_module_never_imports_torch():
    """Only NumPy, scikit-learn, the standard library, nnlab.errors and nnlab.io -- checked in
    the source and by loading the file in a fresh interpreter where torch cannot be imported."""
    allowed = {"numpy", "sklearn", "nnlab", "__future__"} | set(sys.stdlib_module_names)
    tree = ast.parse(SPLITS_PY.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert {m.split(".")[0] for m in imported} <= allowed, imported
    assert {m for m in imported if m.startswith("nnlab")} <= {"nnlab.errors", "nnlab.io"}
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('splits', {str(SPLITS_PY)!r}); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "m.kfold(20, 2, labels=[0, 1] * 10); m.split_by_group([1, 2, 3]); "
        "print(sorted(k for k in sys.modules if k == 'torch' or k.startswith('nnlab')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['nnlab',", "'nnlab.errors',", "'nnlab.io']"]


# ---- by group ------------------------------------------------------------------------------------
def _groups(sizes: list[int], seed: int) -> np.ndarray:
    """Items of len(sizes) groups named like patients, in a shuffled order."""
    groups = np.repeat([f"patient{g:03d}" for g in range(len(sizes))], sizes)
    return np.random.default_rng(seed).permutation(groups)


FRACTIONS = [(0.6, 0.2, 0.2), (0.8, 0.2), (0.5, 0.3, 0.2), (0.7, 0.3, 0.0)]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=3, max_size=40),
    seed=st.integers(0, 2**32 - 1),
    fractions=st.sampled_from(FRACTIONS),
)
def test_split_by_group_never_puts_a_group_in_two_parts(sizes, seed, fractions):
    groups = _groups(sizes, seed)
    parts = split_by_group(
        groups, fractions, seed, parts=("train", "val", "test")[: len(fractions)]
    )
    everything = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(everything), np.arange(len(groups)))  # each item exactly once
    part_of = {}
    for name, idx in parts.items():
        assert np.array_equal(idx, np.sort(idx))
        for g in set(groups[idx]):
            assert part_of.setdefault(g, name) == name, f"{g} in {part_of[g]} and {name}"
    # the documented bounds: over by at most the largest group, short by (parts - 1) times it
    n, biggest = len(groups), max(sizes)
    for (name, idx), f in zip(parts.items(), fractions):
        assert len(idx) > 0 if f > 0 else len(idx) == 0, name
        assert -(len(fractions) - 1) * biggest <= len(idx) - f * n <= biggest


@pytest.mark.parametrize("seed", range(20))
def test_split_by_group_meets_the_fractions_with_many_small_groups(seed):
    """300 groups of 1 to 4 items (~750 items): every part within the largest group (4 items,
    about 0.5% of n) of its fraction of the items."""
    sizes = np.random.default_rng(seed).integers(1, 5, size=300).tolist()
    groups = _groups(sizes, seed)
    parts = split_by_group(groups, (0.6, 0.2, 0.2), seed)
    for idx, f in zip(parts.values(), (0.6, 0.2, 0.2)):
        assert abs(len(idx) - f * len(groups)) <= 4


def test_split_by_group_depends_on_the_seed_not_on_the_item_order():
    groups = _groups([5, 1, 8, 3, 3, 9, 2, 4, 6, 7], 0)
    part_of = [
        {g: p for p, idx in split_by_group(gr, seed=s).items() for g in gr[idx]}
        for gr, s in ((groups, 1), (groups[::-1], 1), (groups, 2))
    ]
    assert part_of[0] == part_of[1]
    assert any(
        part_of[0] != split
        for split in [part_of[2]]
        + [
            {g: p for p, idx in split_by_group(groups, seed=s).items() for g in groups[idx]}
            for s in range(3, 8)
        ]
    )


def test_split_by_group_needs_a_group_for_every_non_empty_part():
    with pytest.raises(NNLabError, match="2 groups cannot fill 3 non-empty parts"):
        split_by_group(["a", "a", "b", "b", "b"])
    parts = split_by_group([1, 1, 2, 2, 2], (0.5, 0.5, 0.0))  # a zero fraction needs no group
    assert len(parts["test"]) == 0 and len(parts["train"]) and len(parts["val"])


# ---- k-fold and leave-one-group-out --------------------------------------------------------------
def _check_folds(folds, n, k):
    assert len(folds) == k
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(n))  # every item in exactly one test fold
    for train, test in folds:
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_stratified_kfold_is_what_numpy_classify_does(seed):
    labels = _labels(500, 10, seed) % 7
    labels[:70] = np.arange(70) % 7  # at least 10 of each class for k = 10 folds
    images = np.random.default_rng(seed).random((500, 1, 8, 8))
    theirs = list(StratifiedKFold(10, shuffle=True, random_state=seed).split(images, labels))
    ours = kfold(500, 10, seed, labels)
    assert len(ours) == len(theirs)
    for (a, b), (c, d) in zip(ours, theirs):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    _check_folds(ours, 500, 10)
    for _, test in ours:  # each class: floor or ceil of n_c / k in every test fold
        for c in np.unique(labels):
            n_c = np.sum(labels == c)
            assert abs(np.sum(labels[test] == c) - n_c / 10) < 1


def test_plain_kfold_is_shuffled_kfold():
    ours = kfold(103, 5, seed=3)
    theirs = list(KFold(5, shuffle=True, random_state=3).split(np.zeros((103, 1))))
    for (a, b), (c, d) in zip(ours, theirs):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    _check_folds(ours, 103, 5)
    assert not np.array_equal(ours[0][1], np.arange(len(ours[0][1])))  # shuffled, not blocks


@pytest.mark.parametrize("seed", range(5))
def test_group_kfold_never_splits_a_group(seed):
    sizes = np.random.default_rng(seed).integers(1, 20, size=23).tolist()
    groups = _groups(sizes, seed)
    labels = np.arange(len(groups)) % 3
    for folds in (
        kfold(len(groups), 4, seed, groups=groups),
        kfold(len(groups), 4, seed, labels=labels, groups=groups),
    ):
        _check_folds(folds, len(groups), 4)
        for train, test in folds:
            assert not set(groups[train]) & set(groups[test])


def test_kfold_errors_are_clear():
    with pytest.raises(NNLabError, match="k >= 2"):
        kfold(10, 1)
    with pytest.raises(NNLabError, match="k=11 folds need at least 11 items, got 10"):
        kfold(10, 11)
    with pytest.raises(NNLabError, match="k=3 folds need at least 3 groups, got 2"):
        kfold(4, 3, groups=["a", "a", "b", "b"])
    labels = np.array([0] * 10 + [1] * 2)
    with pytest.raises(NNLabError, match="at least 3 items of every class; class 1 has 2"):
        kfold(12, 3, labels=labels)
    with pytest.raises(NNLabError, match=r"labels must have shape \(12,\)"):
        kfold(12, 3, labels=labels[:5])


def test_leave_one_group_out_gives_one_fold_per_group():
    groups = _groups([3, 1, 4, 1, 5], 0)
    folds = leave_one_group_out(groups)
    assert [name for name, _, _ in folds] == sorted(set(groups.tolist()))
    for name, train, test in folds:
        assert set(groups[test]) == {name} and name not in set(groups[train])
        assert len(test) == np.sum(groups == name) and len(train) + len(test) == len(groups)
    assert [name for name, _, _ in leave_one_group_out([3, 1, 3, 2])] == ["1", "2", "3"]
    with pytest.raises(NNLabError, match="at least 2 groups, got 1"):
        leave_one_group_out(["p1", "p1"])


# ---- saving and checking -------------------------------------------------------------------------
NAMES = [f"case{i:03d}.png" for i in range(40)]


def test_a_saved_split_reloads_to_the_same_indices(tmp_path):
    parts = split_by_item(len(NAMES), seed=4)
    parts["val"] = parts["val"][::-1].copy()  # any order comes back as it was given
    path = tmp_path / "split.json"
    save_split(path, parts, NAMES, method="by_item", seed=np.int64(4), fractions=(0.6, 0.2, 0.2))
    back = load_split(path, NAMES)
    assert list(back) == ["train", "val", "test"]
    for name in parts:
        assert back[name].dtype == np.int64 and np.array_equal(back[name], parts[name])
    assert split_info(path) == {"method": "by_item", "seed": 4, "fractions": [0.6, 0.2, 0.2]}
    # the same items listed in another order: the indices follow the names
    shuffled = list(np.random.default_rng(0).permutation(NAMES))
    again = load_split(path, shuffled)
    for name in parts:
        assert [shuffled[i] for i in again[name]] == [NAMES[i] for i in parts[name]]


def test_the_split_file_is_readable_json_by_name(tmp_path):
    path = tmp_path / "split.json"
    parts = {"train": np.array([2, 0]), "test": np.array([1])}
    save_split(path, parts, ["b", "a", "c"], method="by_group", k=5, fold=2)
    text = path.read_text()
    assert text.startswith('{\n  "dataset": {\n')
    obj = json.loads(text)
    assert obj["train"] == ["c", "b"] and obj["test"] == ["a"]
    assert obj["how"] == {"method": "by_group", "k": 5, "fold": 2}
    assert obj["dataset"] == {"items": 3, "sha256": hashlib.sha256(b"a\nb\nc").hexdigest()}


def test_an_old_segmentation_split_file_still_loads(tmp_path):
    """The format segmentation runs wrote before the fingerprint: checked by name only."""
    path = tmp_path / "split.json"
    old = {
        "seed": 5,
        "fractions": [0.6, 0.2, 0.2],
        "init_from": "runs/a",
        "train": NAMES[10:],
        "val": NAMES[5:10],
        "test": NAMES[:5],
    }
    path.write_text(json.dumps(old, indent=2, sort_keys=True))
    parts = load_split(path, NAMES + ["new.png"])  # a new image is fine without a fingerprint
    assert list(parts) == ["train", "val", "test"]
    assert parts["test"].tolist() == [0, 1, 2, 3, 4]
    assert parts["train"].tolist() == list(range(10, 40))
    assert split_info(path) == {"seed": 5, "fractions": [0.6, 0.2, 0.2], "init_from": "runs/a"}
    with pytest.raises(
        NNLabError,
        match=r"1 items of the saved split are not in the dataset "
        r"\(e\.g\. case000\.png\)",
    ):
        load_split(path, NAMES[1:])


def _one_line(excinfo, path):
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message


def test_load_split_errors_are_one_line_and_name_the_file(tmp_path):
    path = tmp_path / "split.json"
    with pytest.raises(NNLabError, match="no split file") as e:
        load_split(path, NAMES)
    _one_line(e, path)
    for text in (
        '{"train": [',
        "[1, 2]",
        '{"train": ["a"], "val": []}',
        '{"train": "abc", "val": [], "test": []}',
        '{"train": [1], "val": [], "test": []}',
        '{"dataset": {"items": "3"}, "train": []}',
        '{"dataset": {"items": 3, "sha256": "x"}, "how": [], "train": []}',
    ):
        path.write_text(text)
        with pytest.raises(NNLabError, match="damaged split file") as e:
            load_split(path, NAMES)
        _one_line(e, path)
        with pytest.raises(NNLabError, match="damaged split file"):
            split_info(path)
    path.write_text(json.dumps({"train": NAMES[:3], "val": NAMES[2:4], "test": []}))
    with pytest.raises(NNLabError, match=f"item {NAMES[2]} is in train and val") as e:
        load_split(path, NAMES)
    _one_line(e, path)
    path.write_text(json.dumps({"train": NAMES[:3] + NAMES[:1], "val": [], "test": []}))
    with pytest.raises(NNLabError, match=f"item {NAMES[0]} is twice in train"):
        load_split(path, NAMES)


def test_load_split_refuses_a_dataset_that_changed(tmp_path):
    path = tmp_path / "split.json"
    save_split(path, split_by_item(len(NAMES), seed=1), NAMES, method="by_item", seed=1)
    with pytest.raises(
        NNLabError,
        match=r"the dataset changed since this split was made: "
        r"40 items then, 38 now; 2 items of the saved split "
        r"are not in the dataset \(e\.g\. ",
    ) as e:
        load_split(path, NAMES[:19] + NAMES[21:])
    _one_line(e, path)
    with pytest.raises(NNLabError, match="40 items then, 41 now$"):
        load_split(path, NAMES + ["extra.png"])  # every saved item is there, yet one is in no part
    renamed = NAMES[:-1] + ["other.png"]
    with pytest.raises(NNLabError, match="40 items then and now, but not the same names; 1 items"):
        load_split(path, renamed)
    with pytest.raises(NNLabError, match="item names are not unique"):
        load_split(path, NAMES + NAMES[:1])


def test_save_split_refuses_what_could_not_be_read_back(tmp_path):
    path = tmp_path / "split.json"
    with pytest.raises(NNLabError, match="'case001.png' occurs twice"):
        save_split(path, {"train": np.array([0])}, NAMES[:3] + NAMES[1:2])
    with pytest.raises(NNLabError, match="item case002.png is in two parts \\(train and test\\)"):
        save_split(path, {"train": np.array([0, 2]), "test": np.array([2])}, NAMES)
    with pytest.raises(NNLabError, match="out of range for 40 items"):
        save_split(path, {"train": np.array([40])}, NAMES)
    with pytest.raises(NNLabError, match="bad part name 'how'"):
        save_split(path, {"how": np.array([0])}, NAMES)
    with pytest.raises(NNLabError, match="must be JSON-like"):
        save_split(path, {"train": np.array([0])}, NAMES, model=object())
    assert not path.exists()
