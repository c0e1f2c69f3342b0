"""Preictal / interictal labels for seizure prediction, and ictal / interictal labels for seizure
detection (`label_ictal`, at the end), from window times and seizure times.

All times are patient-global seconds. With seizures (on_k, off_k) sorted by onset, the seizure
occurrence period SOP and the seizure prediction horizon SPH (Maiwald et al. 2004; the windows of
Yan et al. 2022):

    leading:     k = 1, or  on_k - max_{j<k} off_j >= lead_gap      (otherwise part of a cluster)
    preictal:    P_k = [on_k - SPH - SOP, on_k - SPH)  for each leading seizure k

A window [a, b) gets

    1  (preictal)    if a >= on_k - SPH - SOP and b <= on_k - SPH for a leading k,
                     and it overlaps no seizure [on_j, off_j];
    0  (interictal)  if for every seizure j: b <= on_j - G or a >= off_j + G
                     (G = interictal_gap: at least G from onset and offset of every seizure);
   -1  (excluded)    otherwise: ictal, postictal, the SPH, the run-up to non-leading seizures,
                     and everything closer than G to a seizure but outside a preictal period.

An alarm raised inside P_k predicts seizure k: it comes at least SPH before the onset (time to
act) and at most SPH + SOP before it (so the warning is specific).

Default lead gap: SOP + SPH (35 min). A seizure that follows the previous one's end by less than
that would have the previous seizure (or its immediate aftermath) inside its own preictal period,
so its "preictal" EEG is really ictal/postictal; it is not a new event to predict. With the
default, a leading seizure's P_k never contains an earlier seizure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nnlab.errors import NNLabError

PREICTAL, INTERICTAL, EXCLUDED = 1, 0, -1
ICTAL = 1  # detection's class 1, where prediction has PREICTAL


@dataclass
class LabelConfig:
    """Labelling parameters, in seconds; saved as-is in a run's config.json.
    `lead_gap_s=None` means SOP + SPH and is resolved on construction."""

    sop_s: float = 1800.0
    sph_s: float = 300.0
    interictal_gap_s: float = 4 * 3600.0
    lead_gap_s: float | None = None

    def __post_init__(self):
        if self.lead_gap_s is None:
            self.lead_gap_s = self.sop_s + self.sph_s
        if not self.sop_s > 0:
            raise NNLabError(f"sop_s must be positive, got {self.sop_s}")
        for name in ("sph_s", "interictal_gap_s", "lead_gap_s"):
            if not getattr(self, name) >= 0:
                raise NNLabError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _as_seizures(seizures) -> np.ndarray:
    s = np.asarray(seizures, dtype=np.float64).reshape(-1, 2)  # (K, 2) onset, offset
    if np.any(s[:, 1] < s[:, 0]):
        raise NNLabError("a seizure ends before it starts")
    return s[np.argsort(s[:, 0], kind="stable")]


def leading_mask(seizures, min_gap: float) -> np.ndarray:
    """(K,) bool over the seizures sorted by onset: True where on_k - max_{j<k} off_j >= min_gap
    (always True for the first)."""
    s = _as_seizures(seizures)
    if len(s) == 0:
        return np.zeros(0, dtype=bool)
    last_end = np.maximum.accumulate(s[:, 1])  # latest offset among seizures 1..k
    gap = s[1:, 0] - last_end[:-1]  # onset k minus the latest earlier offset
    return np.concatenate([[True], gap >= min_gap])


def leading_seizures(seizures, min_gap: float) -> np.ndarray:
    """(K', 2) the leading seizures (onset, offset), sorted by onset: those starting at least
    `min_gap` seconds after every earlier seizure has ended."""
    s = _as_seizures(seizures)
    return s[leading_mask(s, min_gap)]


def preictal_intervals(seizures, cfg: LabelConfig) -> np.ndarray:
    """(K', 2) [on_k - SPH - SOP, on_k - SPH) for each leading seizure k: where an alarm counts
    as a correct prediction of seizure k."""
    onsets = leading_seizures(seizures, cfg.lead_gap_s)[:, 0]
    return np.stack([onsets - cfg.sph_s - cfg.sop_s, onsets - cfg.sph_s], axis=1)


def label_windows(starts, ends, seizures, cfg: LabelConfig) -> np.ndarray:
    """(W,) int8 labels (1 preictal, 0 interictal, -1 excluded) of the windows [starts, ends)
    (W,) given the seizures (K, 2); the rules are in the module docstring. Without seizures every
    window is interictal."""
    a = np.asarray(starts, dtype=np.float64).reshape(-1, 1)  # (W, 1)
    b = np.asarray(ends, dtype=np.float64).reshape(-1, 1)  # (W, 1)
    if a.shape != b.shape:
        raise NNLabError(f"{a.shape[0]} window starts but {b.shape[0]} ends")
    if np.any(b < a):
        raise NNLabError("a window ends before it starts")
    s = _as_seizures(seizures)
    on, off = s[:, 0][None, :], s[:, 1][None, :]  # (1, K)
    G = cfg.interictal_gap_s
    far = (b <= on - G) | (a >= off + G)  # (W, K)
    interictal = far.all(axis=1)
    ictal = ((a < off) & (b > on)).any(axis=1)  # overlaps a seizure
    P = preictal_intervals(s, cfg)  # (K', 2)
    inside = (a >= P[:, 0][None, :]) & (b <= P[:, 1][None, :])  # (W, K')
    preictal = inside.any(axis=1) & ~ictal
    labels = np.full(len(a), EXCLUDED, dtype=np.int8)
    labels[interictal] = INTERICTAL
    labels[preictal] = PREICTAL  # wins over interictal when G < SOP + SPH
    return labels


def label_ictal(starts, ends, seizures, gap_s: float) -> np.ndarray:
    """(W,) int8 labels for seizure *detection* of the windows [a, b) (W,) given the seizures
    (K, 2) [on, off]:

        1  (ictal)       if some seizure covers at least half the window: |[a, b) & [on, off)| >=
                         (b - a) / 2, so a window's label is what most of it shows;
        0  (interictal)  if for every seizure: b <= on - gap or a >= off + gap;
       -1  (excluded)    otherwise: the edges of a seizure and the `gap` around it (annotated
                         onsets and offsets are uncertain by seconds; post-ictal EEG is neither).

    Without seizures every window is interictal."""
    a = np.asarray(starts, dtype=np.float64).reshape(-1, 1)  # (W, 1)
    b = np.asarray(ends, dtype=np.float64).reshape(-1, 1)
    if a.shape != b.shape:
        raise NNLabError(f"{a.shape[0]} window starts but {b.shape[0]} ends")
    if np.any(b < a):
        raise NNLabError("a window ends before it starts")
    if gap_s < 0:
        raise NNLabError(f"the interictal gap must be >= 0, got {gap_s}")
    s = _as_seizures(seizures)
    on, off = s[:, 0][None, :], s[:, 1][None, :]  # (1, K)
    covered = np.clip(np.minimum(b, off) - np.maximum(a, on), 0, None)  # (W, K) seconds
    ictal = (covered >= (b - a) / 2).any(axis=1) & (covered > 0).any(axis=1)
    interictal = ((b <= on - gap_s) | (a >= off + gap_s)).all(axis=1)
    labels = np.full(len(a), EXCLUDED, dtype=np.int8)
    labels[interictal] = INTERICTAL
    labels[ictal] = ICTAL
    return labels
