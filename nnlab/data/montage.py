"""A model's channels found in a recording of another montage.

EEG files name the same signals in several ways. A CHB-MIT file holds bipolar derivations
('FP1-F7': the potential at Fp1 minus that at F7); the TUH corpus stores each electrode against a
common reference ('EEG FP1-REF', 'EEG FP1-LE'); the Siena database writes 'EEG Fp1'; older files
use the 10-20 system's first names for four temporal and parietal sites (T3, T4, T5, T6 for
today's T7, T8, P7, P8). A multi-channel model trained on one of these reads its channels by
label, and `derive_channels` finds each of them in a file labelled another way:

1. the same label (compared by `norm_label`);
2. the same derivation written otherwise: 'T3-T5' for 'T7-P7', 'EEG FP1-REF' for 'FP1-REF';
3. the reversed pair, negated: 'P7-T7' = -('T7-P7');
4. a bipolar pair from two channels on one reference: 'FP1-F7' = 'EEG FP1-REF' - 'EEG F7-REF'.
   The reference cancels, (Fp1 - R) - (F7 - R) = Fp1 - F7, whatever R is (an ear, an average,
   the amplifier's own): the derived channel is the bipolar one, up to the file's quantisation.
   (fact `bipolar-from-referential`)

A channel on one reference is never taken for one on another ('EEG FP1-LE' is not 'EEG FP1-REF'):
that would change the signal, not its name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nnlab.data.eeg import norm_label

# the 10-20 system's old names of four sites, and their 10-10 names
OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
# a 10-10 electrode: a region (prefrontal, anterior frontal, frontal, fronto-temporal, ...,
# ear A1/A2, mastoid M1/M2) and a site: Z on the midline, odd on the left, even on the right
ELECTRODE = re.compile(r"^(?:FP|AF|FT|FC|TP|CP|PO|F|C|T|P|O|I|N|A|M)(?:Z|[0-9]{1,2})$")
# words before a label's name in clinical files: 'EEG FP1-REF', 'POL Fp1'
PREFIXES = frozenset({"EEG", "POL"})


# named montages a model can be trained on: the 18 longitudinal bipolar pairs ("double banana")
# of the 10-20 system, the first 18 channels of CHB-MIT, derivable from any referential recording
# of the 19 10-20 electrodes (TUH, Siena), so that a model trained on one set reads the others
MONTAGES = {
    "double-banana": (
        "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1",
        "FP2-F4", "F4-C4", "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
        "FZ-CZ", "CZ-PZ",
    ),
}  # fmt: skip


def montage_channels(channels: Sequence[str]) -> list[str]:
    """`channels` with the name of a montage of `MONTAGES` ('double-banana') replaced by its
    channel labels."""
    out: list[str] = []
    for c in channels:
        out += MONTAGES.get(c.strip().lower(), (c,))
    return out


def electrode(name: str) -> str | None:
    """The 10-10 name of an electrode ('Fp1' -> 'FP1', 'T3' -> 'T7'), or None for anything else
    (a reference word such as 'REF', 'LE', 'AVG'; an ECG lead)."""
    name = name.strip().upper()
    if not ELECTRODE.match(name):
        return None
    return OLD_NAMES.get(name, name)


def parse_label(label: str) -> tuple[str, str] | None:
    """(electrode, reference) of a channel label, or None when it is not one electrode against
    something: 'FP1-F7' -> ('FP1', 'F7'); 'EEG T3-REF' -> ('T7', 'REF'); 'EEG Fp1' -> ('FP1',
    '') (its reference unnamed); 'ECG', 'EEG FP1-F7-REF' -> None. A reference that is an
    electrode gets its 10-10 name; any other keeps its word."""
    words = norm_label(label).split()
    while words and words[0] in PREFIXES:
        words = words[1:]
    if len(words) != 1:
        return None
    parts = words[0].split("-")
    if len(parts) > 2:
        return None
    plus = electrode(parts[0])
    if plus is None:
        return None
    minus = parts[1] if len(parts) == 2 else ""
    if len(parts) == 2 and not minus:
        return None
    return plus, electrode(minus) or minus


def auxiliary(labels: Sequence[str]) -> list[str]:
    """The labels that name no electrode (`parse_label` None: '1', 'MK') when most of `labels`
    carry 10-20 names: a recorder's auxiliary inputs among scalp channels. Empty when most do not
    (an intracranial set, whose contacts carry other names: 'LA1', 'RH2')."""
    unnamed = [c for c in labels if parse_label(c) is None]
    return unnamed if len(unnamed) < len(labels) / 2 else []


@dataclass(frozen=True)
class Derivation:
    """How to get `labels` (the model's channels) from a file: read `sources` (the file's labels,
    each once), then `mix` (C, S) @ sources. `notes` says, for each channel not read as labelled,
    how it was found ('FP1-F7 = EEG FP1-REF - EEG F7-REF')."""

    labels: tuple[str, ...]
    sources: tuple[str, ...]
    mix: np.ndarray = field(compare=False)  # (C, S) float32, +1 / -1 entries: set by the rest
    notes: tuple[str, ...]

    @property
    def identity(self) -> bool:
        """Every channel read as it is, in order (no mixing needed)."""
        return len(self.sources) == len(self.labels) and np.array_equal(
            self.mix, np.eye(len(self.labels), dtype=np.float32)
        )

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(S, N) samples of `sources` -> (C, N) samples of `labels`."""
        if self.identity:
            return x
        return (self.mix @ x.astype(np.float64)).astype(np.float32)


def derive_channels(
    wanted: Sequence[str], available: Sequence[str]
) -> tuple[Derivation | None, list[str]]:
    """(the Derivation of `wanted` from `available`, []) or (None, the wanted labels that cannot
    be found) -- see the module docstring for the four ways, tried in that order. `available`
    lists the file's labels (dummies and repeats are harmless: the first of a repeat is used)."""
    exact: dict[str, str] = {}
    keyed: dict[tuple[str, str], str] = {}
    for label in available:
        exact.setdefault(norm_label(label), label)
        key = parse_label(label)
        if key is not None:
            keyed.setdefault(key, label)
    by_reference: dict[str, dict[str, str]] = {}  # reference -> electrode -> label
    for (plus, minus), label in keyed.items():
        by_reference.setdefault(minus, {}).setdefault(plus, label)

    terms: list[list[tuple[str, float]]] = []
    notes, missing = [], []
    for w in wanted:
        key = parse_label(w)
        found: list[tuple[str, float]] | None = None
        if norm_label(w) in exact:
            found = [(exact[norm_label(w)], 1.0)]
        elif key is not None and key in keyed:
            found = [(keyed[key], 1.0)]
            notes.append(f"{w} = {keyed[key]}")
        elif key is not None and (key[1], key[0]) in keyed:
            found = [(keyed[key[1], key[0]], -1.0)]
            notes.append(f"{w} = -({keyed[key[1], key[0]]})")
        elif key is not None and electrode(key[1]) is not None:
            plus, minus = key
            for reference, sites in by_reference.items():
                if plus in sites and minus in sites and reference not in (plus, minus):
                    found = [(sites[plus], 1.0), (sites[minus], -1.0)]
                    notes.append(f"{w} = {sites[plus]} - {sites[minus]}")
                    break
        if found is None:
            missing.append(w)
        else:
            terms.append(found)
    if missing:
        return None, missing
    sources = list(dict.fromkeys(label for t in terms for label, _ in t))
    mix = np.zeros((len(wanted), len(sources)), dtype=np.float32)
    for row, t in enumerate(terms):
        for label, sign in t:
            mix[row, sources.index(label)] += sign
    return Derivation(tuple(wanted), tuple(sources), mix, tuple(notes)), []


def referential_montage(
    x: np.ndarray, labels: Sequence[str], reference: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """Electrode potentials against a common reference from which the bipolar channels `labels`
    ('A-B') are the differences: (E (K, N), ['EEG A-REF', ...]). Each connected set of electrodes
    gets its potentials by least squares (exact when the pairs form no loop, as a chain or a
    tree), the set's first electrode at 0; `reference` (N,) is then added to every electrode, as
    an amplifier's reference would be. Used to write a referential copy of a bipolar recording
    (tests and `bench/eeg_montage.py`)."""
    pairs = []
    for label in labels:
        key = parse_label(label)
        if key is None or electrode(key[1]) is None:
            raise ValueError(f"{label}: not a bipolar pair of electrodes")
        pairs.append(key)
    sites = list(dict.fromkeys(s for p in pairs for s in p))
    A = np.zeros((len(pairs) + 1, len(sites)))
    for row, (a, b) in enumerate(pairs):
        A[row, sites.index(a)] += 1
        A[row, sites.index(b)] -= 1
    A[-1, 0] = 1  # pins the level of the first electrode; lstsq handles the other components
    b = np.concatenate([x.astype(np.float64), np.zeros((1, x.shape[1]))])
    E = np.linalg.lstsq(A, b, rcond=None)[0]  # (K, N)
    if reference is not None:
        E = E + reference[None, :]
    return E.astype(np.float32), [f"EEG {s}-REF" for s in sites]
