"""The reader's newer page steps leave the main OCR bench's pages alone: each page that
bench/ocr.py composes (plain, hard and desk pages of the given seeds) is analysed with
`PageConfig()` and with the steps switched off (`shade=False`: no search for writing in a
shadow taken for desk; `squared_pen=False`: no pen kept along squared paper's lines), and the
two must give the same boxes, the same ink masks, the same sheet, and no light or lines for the
line cutter. Then every reading of those pages, and every figure the main tables give, is what
it was before the steps.

    NNLAB_DATA=../shared/data python bench/ocr_steps_check.py --model RUN_DIR \
        [--seeds 2026,2027,2028] [--pages 20] [--out DIR]

Prints, per seed and setting, the pages compared and the pages that differ (named), and exits 1
when any page differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def same(a, b) -> bool:
    """Two PageAnalysis results with the same boxes, masks and sheet, and no light or lines."""
    return (
        len(a.boxes) == len(b.boxes)
        and all(
            (x.x0, x.y0, x.x1, x.y1) == (y.x0, y.y0, y.x1, y.y1) and np.array_equal(x.mask, y.mask)
            for x, y in zip(a.boxes, b.boxes)
        )
        and a.sheet == b.sheet
        and a.light is None
        and a.lines is None
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="nnlab ocr train run (its split)")
    ap.add_argument("--seeds", default="2026,2027,2028")
    ap.add_argument("--pages", type=int, default=20, help="pages per setting (bench/ocr.py's)")
    ap.add_argument("--out", type=Path, default=None, help="where the pages go (default: temp)")
    args = ap.parse_args()

    from nnlab.ocr.page import PageConfig, analyse_page, load_page
    from nnlab.tasks.ocr import compose_pages

    off = PageConfig(shade=False, squared_pen=False)
    differ = []
    with tempfile.TemporaryDirectory(prefix="nnlab-ocr-steps-") as tmp:
        root = args.out or Path(tmp)
        for seed in (int(s) for s in args.seeds.split(",")):
            for setting in ("plain", "hard", "desk"):
                folder = root / str(seed) / setting
                hard, desk = setting != "plain", 0.3 if setting == "desk" else 0.0
                paths, _ = compose_pages(
                    folder, args.pages, hard=hard, seed=seed, model=args.model, desk=desk
                )
                bad = []
                for p in paths:
                    image = load_page(p)
                    if not same(analyse_page(image), analyse_page(image, off)):
                        bad.append(p.name)
                differ += [f"{seed}/{setting}/{n}" for n in bad]
                print(f"seed {seed} {setting:5s}: {len(paths)} pages, {len(bad)} differ {bad}")
    print(f"\n{len(differ)} page(s) differ" + (f": {', '.join(differ)}" if differ else ""))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
