"""Character error rate (CER) of recognised text against the truth, by Levenshtein distance.

    CER = (substitutions + deletions + insertions) / len(truth) = d_L(truth, read) / len(truth)

the fewest single-character edits that turn the truth into what was read, per truth character
(Levenshtein 1966; `rapidfuzz.distance.Levenshtein`, unit costs). It can exceed 1 when more is
read than was there. Character accuracy is 1 - CER.

Both strings are compared case-insensitively (upper case), in one of two forms:
- with spaces: every run of white space (spaces, line breaks) is one space, ends stripped, so a
  missed word gap costs one edit and a line break counts as a gap;
- without spaces: all white space removed, so only the characters themselves count.

Several pages are pooled as sum of distances / sum of truth lengths (a long page weighs more),
not as the mean of the pages' rates.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein


def normalise(text: str, spaces: bool = True) -> str:
    """`text` upper-cased, white space collapsed to single spaces (`spaces`) or removed."""
    words = text.upper().split()
    return " ".join(words) if spaces else "".join(words)


def edit_distance(truth: str, read: str, spaces: bool = True) -> int:
    """Levenshtein distance between the normalised strings (unit costs)."""
    return int(Levenshtein.distance(normalise(truth, spaces), normalise(read, spaces)))


def cer(truth: str, read: str, spaces: bool = True) -> float:
    """The character error rate d_L / len(truth) of normalised strings; an empty truth gives
    0.0 when nothing was read and 1.0 otherwise."""
    n = len(normalise(truth, spaces))
    d = edit_distance(truth, read, spaces)
    return d / n if n else float(d > 0)


def pooled_cer(pairs: Iterable[tuple[str, str]], spaces: bool = True) -> float:
    """CER over many (truth, read) pairs: total distance / total truth length."""
    dist = total = 0
    for truth, read in pairs:
        dist += edit_distance(truth, read, spaces)
        total += len(normalise(truth, spaces))
    return dist / total if total else float(dist > 0)


def cer_report(truth: str, read: str) -> dict[str, float | int]:
    """Everything `nnlab ocr eval` shows for one page: CER with and without spaces, character
    accuracy (1 - CER without spaces), and the distances and truth lengths (for pooling)."""
    return {
        "cer": cer(truth, read, spaces=True),
        "cer_nospace": cer(truth, read, spaces=False),
        "char_accuracy": 1.0 - cer(truth, read, spaces=False),
        "edits": edit_distance(truth, read, spaces=True),
        "edits_nospace": edit_distance(truth, read, spaces=False),
        "chars": len(normalise(truth, True)),
        "chars_nospace": len(normalise(truth, False)),
    }
