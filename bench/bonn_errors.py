"""Where Bonn D-E's persistent errors lie in their class: each named segment's amplitude
(standard deviation), line length, and Welch log power in the delta (0.5-4 Hz) and beta (13-30
Hz) bands, each with the share of set D's and of set E's 100 segments below it (percentiles).

    NNLAB_DATA=../shared/data python bench/bonn_errors.py [D031 D060 E016 E043 E084]

The default names are the five segments that every recipe tried so far gets wrong, but one
(docs/RESULTS.md, the Bonn section): an ictal segment at E's lowest percentiles and D's highest
reads as interictal to a model of these inputs, and the other way round.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.signal

DEFAULT = ["D031", "D060", "E016", "E043", "E084"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=DEFAULT, help="segments, e.g. E016")
    args = ap.parse_args()

    from nnlab.data.bonn import load_bonn

    bonn = load_bonn("DE")
    x, y, names = bonn.binary("D-E")
    f, P = scipy.signal.welch(x, bonn.fs, nperseg=512)

    def band(lo: float, hi: float) -> np.ndarray:
        return np.log(P[:, (f >= lo) & (f < hi)].mean(axis=1))

    features = {
        "sd uV": x.std(axis=1),
        "line length uV": np.abs(np.diff(x, axis=1)).mean(axis=1),
        "log delta": band(0.5, 4),
        "log beta": band(13, 30),
    }
    print("| segment | " + " | ".join(features) + " |")
    print("| --- |" + " --- |" * len(features))
    for want in args.names:
        hits = [i for i, n in enumerate(names) if n.split("/")[-1] == want]
        if not hits:
            raise SystemExit(f"no segment {want} in Bonn D-E (names like {names[0]})")
        i = hits[0]
        cells = [
            f"{v[i]:.3g} (D {np.mean(v[y == 0] < v[i]):.0%}, E {np.mean(v[y == 1] < v[i]):.0%})"
            for v in features.values()
        ]
        print(f"| {want} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
