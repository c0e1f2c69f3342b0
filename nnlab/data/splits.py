"""Seeded dataset splits for every task family, saved by item name and checked on reload.

The kinds of split, and when each is the right one:

- **by item** (`split_by_item`): a seeded permutation of range(n), cut at
  round(cumsum(fractions) * n). Right when the items are independent of each other (one image
  per patient, say).
- **stratified** (`split_by_item(..., labels=...)`, `partition`): the same cut, but every part keeps
  the class proportions as closely as the sizes allow -- a rare class cannot end up only in train.
- **by group** (`split_by_group`): every group (patient, recording session, page, writer) lands
  entirely in one part. Items of one group are not independent: EEG recordings of one patient share
  that patient's signature (electrode placement, background rhythm, artefacts), lines of one page
  share its writer and scanner. With the patient in both train and test, a model can recognise the
  *patient* instead of the seizure, and the test score measures memory, not generalisation to a new
  patient. Splitting by group is what makes the test score mean "on someone we have never seen".
- **k-fold** (`kfold`): k disjoint test folds covering every item once; stratified with labels,
  by group with groups (and both with both).
- **leave-one-group-out** (`leave_one_group_out`): one fold per group, the group as test set; the
  usual protocol for per-patient EEG results.

A split is saved to `split.json` by item *name*, never by index, with the way it was made ("how")
and a fingerprint of the dataset (item count and sha256 of the sorted names). `load_split` maps the
names back to indices in the current dataset and refuses a dataset that changed underneath it, so a
resumed or continued run never tests on an item it trained on. Files written before the fingerprint
existed ({"seed", "fractions", "train", "val", "test", optional "init_from"}) still load, checked by
name only.

This module needs only NumPy, scikit-learn and the standard library (never torch).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
)

from nnlab.errors import NNLabError
from nnlab.io import atomic_write_json

PARTS = ("train", "val", "test")
RESERVED = ("dataset", "how")  # top-level keys of split.json that are not parts
# GroupKFold takes shuffle/random_state from scikit-learn 1.6 on; before that it is deterministic.
_GROUP_KFOLD_SHUFFLES = "shuffle" in inspect.signature(GroupKFold).parameters


# ---- making splits -------------------------------------------------------------------------------
def partition(
    n: int, fractions: tuple[float, ...], labels: np.ndarray, seed: int
) -> list[np.ndarray]:
    """Stratified random partition of range(n) into parts of sizes round(cumsum(fractions) * n).

    Each class is shuffled and its members spread evenly over [0, 1) (member j of n_c at
    (j + u) / n_c); cutting that global order gives every part the class proportions as closely as
    the sizes allow -- also for classes too small to split one by one."""
    rng = np.random.default_rng(seed)
    position = np.empty(n)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        position[idx] = (np.arange(len(idx)) + rng.uniform(size=len(idx))) / len(idx)
    order = np.argsort(position, kind="stable")
    bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return [np.sort(part) for part in np.split(order, bounds)]


def split_by_item(
    n: int,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    labels: np.ndarray | None = None,
    parts: Sequence[str] = PARTS,
) -> dict[str, np.ndarray]:
    """Seeded split of range(n) into `parts` of sizes round(cumsum(fractions) * n) (sorted indices).

    Without labels: one permutation of range(n), cut at those bounds. With labels (n,): stratified
    by `partition`, so each part keeps the class proportions."""
    _check_fractions(fractions, parts)
    if labels is None:
        order = np.random.default_rng(seed).permutation(n)
        bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
        cut = np.split(order, bounds)
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise NNLabError(f"labels must have shape ({n},), got {labels.shape}")
        cut = partition(n, tuple(fractions), labels, seed)
    return {name: np.sort(part) for name, part in zip(parts, cut)}


def split_by_group(
    groups: Sequence[str | int],
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    parts: Sequence[str] = PARTS,
) -> dict[str, np.ndarray]:
    """Seeded split of the items into `parts` such that every group lies entirely in one part.

    groups: (n,) the group of each item (patient id, page, writer). The rule: the distinct groups
    are sorted, shuffled by `seed`, and dealt out in that order; each goes to the part furthest
    below its target item count fractions[p] * n (ties: the earlier part). That choice is one
    that most lowers sum_p |count_p - target_p|. So that no part with a positive fraction stays
    empty, once only as many groups are left as there are empty parts, each goes to an empty one.
    A part overshoots its target by at most the largest group, and falls short by at most
    (number of parts - 1) * the largest group; with many small groups the fractions hold closely.
    Returns sorted item indices per part."""
    _check_fractions(fractions, parts)
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) == 0:
        raise NNLabError(f"groups must be a non-empty 1-D sequence, got shape {groups.shape}")
    unique, group_of_item = np.unique(groups, return_inverse=True)
    size = np.bincount(group_of_item, minlength=len(unique))
    wanted = [p for p, f in enumerate(fractions) if f > 0]
    if len(unique) < len(wanted):
        raise NNLabError(
            f"{len(unique)} groups cannot fill {len(wanted)} non-empty parts "
            f"({', '.join(parts[p] for p in wanted)}); need at least one group each"
        )
    target = np.asarray(fractions, dtype=float) * len(groups)
    count = np.zeros(len(parts))
    part_of_group = np.empty(len(unique), dtype=int)
    order = np.random.default_rng(seed).permutation(len(unique))
    for left, g in zip(range(len(order), 0, -1), order):
        empty = [p for p in wanted if count[p] == 0]
        candidates = empty if left <= len(empty) else wanted
        p = max(candidates, key=lambda q: (target[q] - count[q], -q))
        part_of_group[g] = p
        count[p] += size[g]
    part_of_item = part_of_group[group_of_item]
    return {name: np.flatnonzero(part_of_item == p) for p, name in enumerate(parts)}


def kfold(
    n: int,
    k: int,
    seed: int = 0,
    labels: np.ndarray | None = None,
    groups: Sequence[str | int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds of range(n) as (train_idx, test_idx); every item is in exactly one test fold.

    - labels only: StratifiedKFold(k, shuffle=True, random_state=seed) -- each test fold holds
      floor or ceil of n_c / k items of every class c;
    - neither: KFold(k, shuffle=True, random_state=seed);
    - groups: GroupKFold (shuffled by seed where scikit-learn >= 1.6 allows); no group is split.
      With shuffle, GroupKFold balances the number of *groups* per fold, not of items;
    - labels and groups: StratifiedGroupKFold(k, shuffle=True, random_state=seed)."""
    if k < 2:
        raise NNLabError(f"k-fold needs k >= 2 folds, got {k}")
    X = np.zeros((n, 1))  # scikit-learn only looks at len(X)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise NNLabError(f"labels must have shape ({n},), got {labels.shape}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise NNLabError(f"groups must have shape ({n},), got {groups.shape}")
        n_groups = len(np.unique(groups))
        if k > n_groups:
            raise NNLabError(f"k={k} folds need at least {k} groups, got {n_groups}")
        if labels is not None:
            splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        elif _GROUP_KFOLD_SHUFFLES:
            splitter = GroupKFold(k, shuffle=True, random_state=seed)
        else:
            splitter = GroupKFold(k)
    elif labels is not None:
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() < k:
            c = classes[np.argmin(counts)]
            raise NNLabError(
                f"stratified k={k} folds need at least {k} items of every class; "
                f"class {c} has {counts.min()}"
            )
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    else:
        if k > n:
            raise NNLabError(f"k={k} folds need at least {k} items, got {n}")
        splitter = KFold(k, shuffle=True, random_state=seed)
    try:
        return list(splitter.split(X, labels, groups))
    except ValueError as e:
        raise NNLabError(f"k-fold split: {e}") from None


def leave_one_group_out(groups: Sequence[str | int]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One fold per group, in sorted group order: (group name, train_idx, test_idx), the test set
    being exactly that group's items."""
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise NNLabError(f"groups must be a 1-D sequence, got shape {groups.shape}")
    unique = np.unique(groups)
    if len(unique) < 2:
        raise NNLabError(f"leave-one-group-out needs at least 2 groups, got {len(unique)}")
    folds = LeaveOneGroupOut().split(np.zeros((len(groups), 1)), groups=groups)
    return [(str(g), train, test) for g, (train, test) in zip(unique, folds)]


def _check_fractions(fractions: Sequence[float], parts: Sequence[str]) -> None:
    if len(fractions) != len(parts):
        raise NNLabError(f"{len(fractions)} fractions for {len(parts)} parts ({', '.join(parts)})")
    if min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise NNLabError(f"fractions must be >= 0 and sum to 1, got {tuple(fractions)}")


# ---- saving and checking -------------------------------------------------------------------------
def fingerprint(names: Sequence[str]) -> dict[str, Any]:
    """A dataset's identity: its item count and the sha256 of its newline-joined sorted names."""
    digest = hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()
    return {"items": len(names), "sha256": digest}


def save_split(
    path: str | os.PathLike,
    parts: dict[str, np.ndarray],
    names: Sequence[str],
    /,
    **how: Any,
) -> None:
    """Write split.json (atomically): per part the item *names* in the given order, "how" (the
    keyword arguments: method, seed, fractions, k, fold, ...) and "dataset" (`fingerprint`).

    names: (n,) the names of the whole dataset, unique; parts: index arrays into names."""
    names = list(names)
    if not all(isinstance(s, str) for s in names):
        raise NNLabError("item names must be strings")
    if len(set(names)) != len(names):
        dup = next(s for s, count in Counter(names).items() if count > 1)
        raise NNLabError(f"item names must be unique to save a split; '{dup}' occurs twice")
    out: dict[str, Any] = {"dataset": fingerprint(names), "how": _plain(how)}
    owner: dict[int, str] = {}
    for part, index in parts.items():
        if not isinstance(part, str) or part in RESERVED:
            raise NNLabError(f"bad part name {part!r}: a string other than {' or '.join(RESERVED)}")
        index = np.asarray(index)
        if index.ndim != 1 or (index.size and not np.issubdtype(index.dtype, np.integer)):
            raise NNLabError(f"part {part}: indices must be a 1-D integer array")
        if index.size and (index.min() < 0 or index.max() >= len(names)):
            raise NNLabError(f"part {part}: indices out of range for {len(names)} items")
        for i in index.tolist():
            if i in owner:
                raise NNLabError(f"item {names[i]} is in two parts ({owner[i]} and {part})")
            owner[i] = part
        out[part] = [names[i] for i in index.tolist()]
    atomic_write_json(path, out)


def load_split(path: str | os.PathLike, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The split saved at `path` as indices (int64) into the current dataset `names`, each part in
    its saved order (parts: train, val, test, then others by name). Refuses a dataset that changed
    since the split was made (when the file has a fingerprint) and saved names the dataset lacks."""
    path = Path(path)
    saved, _, dataset = _read(path)
    names = list(names)
    index = {s: i for i, s in enumerate(names)}
    if len(index) != len(names):
        raise NNLabError(f"{path}: the dataset's item names are not unique")
    missing = [s for part in saved.values() for s in part if s not in index]
    gone = f"{len(missing)} items of the saved split are not in the dataset"
    if dataset is not None and dataset != fingerprint(names):
        if dataset["items"] != len(names):
            change = f"{dataset['items']} items then, {len(names)} now"
        else:
            change = f"{len(names)} items then and now, but not the same names"
        extra = f"; {gone} (e.g. {missing[0]})" if missing else ""
        raise NNLabError(f"{path}: the dataset changed since this split was made: {change}{extra}")
    if missing:
        raise NNLabError(f"{path}: {gone} (e.g. {missing[0]})")
    return {
        part: np.array([index[s] for s in items], dtype=np.int64) for part, items in saved.items()
    }


def split_info(path: str | os.PathLike) -> dict[str, Any]:
    """How the split at `path` was made (the "how" of save_split; for an old file, its seed,
    fractions and init_from)."""
    return _read(Path(path))[1]


def _read(path: Path) -> tuple[dict[str, list[str]], dict[str, Any], dict[str, Any] | None]:
    """(parts by name, how, dataset fingerprint or None for an old file), structure checked."""
    if not path.is_file():
        raise NNLabError(f"{path}: no split file")
    damaged = f"{path}: damaged split file (not the JSON nnlab wrote)"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NNLabError(damaged) from None
    if not isinstance(obj, dict):
        raise NNLabError(damaged)
    if "dataset" in obj:
        dataset, how = obj["dataset"], obj.get("how", {})
        ok = (
            isinstance(dataset, dict)
            and set(dataset) == {"items", "sha256"}
            and isinstance(dataset["items"], int)
            and isinstance(dataset["sha256"], str)
            and isinstance(how, dict)
        )
        if not ok:
            raise NNLabError(damaged)
        # the file's keys are sorted: give train, val, test first, then any other part by name
        keys = [k for k in PARTS if k in obj] + sorted(set(obj) - set(PARTS) - set(RESERVED))
        saved = {k: obj[k] for k in keys}
    else:  # written before the fingerprint: train/val/test, the rest says how
        if not all(part in obj for part in PARTS):
            raise NNLabError(damaged)
        dataset, how = None, {k: v for k, v in obj.items() if k not in PARTS}
        saved = {part: obj[part] for part in PARTS}
    if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in saved.values()):
        raise NNLabError(damaged)
    owner: dict[str, str] = {}
    for part, items in saved.items():
        for s in items:
            if s in owner:
                where = f"twice in {part}" if owner[s] == part else f"in {owner[s]} and {part}"
                raise NNLabError(f"{path}: item {s} is {where}; a split puts each item in one part")
            owner[s] = part
    return saved, how, dataset


def _plain(how: dict[str, Any]) -> dict[str, Any]:
    """`how` as JSON values (tuples, NumPy scalars and arrays, paths allowed)."""

    def convert(x):
        if isinstance(x, (np.generic, np.ndarray)):
            return x.tolist()
        if isinstance(x, os.PathLike):
            return os.fspath(x)
        raise NNLabError(f"split 'how' values must be JSON-like; got {type(x).__name__}")

    return json.loads(json.dumps(how, default=convert))
