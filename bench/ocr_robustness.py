"""Handwriting OCR on photos that are harder than the composed test pages, and what each of the
reader's newer steps buys there: one benchmark run, nnlab's readers only, on pages of held-out
characters written once per setting with one seed --

    hard    `ComposeConfig.hard()` (as bench/ocr.py's hard pages)
    desk    hard pages lying on a darker, grained desk (`--desk 0.3`: the desk shows 0.15-0.45 x
            the page's size on each side)
    tilt    hard pages photographed more obliquely: perspective 0.06 (corners moved by up to 6 %
            of the page), rotation up to 5 degrees
    tight   hard pages with lines closer together (1.45 x the character height, baseline to
            baseline, instead of 1.9)
    thin-desk  hard pages on a desk that shows only 0.01-0.03 x the page's size per side
            (`--desk 0.02`: narrower than find_paper's blocks; not in the default run)
    steep   hard pages rotated by up to 14 degrees (not in the default run)
    turned  hard pages saved a quarter, half or three quarters turned, as a phone without its
            orientation tag saves them (not in the default run)
    shadow  hard pages with a cast shadow of a sharp edge (a hand, the phone) taking half the
            light on 8-55 % of the photo (`--shadow 0.5`; not in the default run)
    desk-shadow  the shadow over a page on a desk (`--desk 0.3 --shadow 0.5`; not in the
            default run)
    squared hard pages on squared paper instead of lined paper: squares one character height
            wide, lines as dark as the rules (`--grid 1`; not in the default run)
    small-squares  squares 0.6 character heights wide, their lines darker (0.6 of the light
            absorbed; pen 0.7-0.9) (not in the default run)

-- each read by the CTC reader as it is (`full`) and with one step switched off: `no-desk`
(`PageConfig.desk=False`: no search for the sheet), `no-level` (`ReadConfig.level_lines=False`:
strips cut along the page's mean direction, not each line's own), `greedy` (`ReadConfig.beam=0`:
greedy decoding with the word rule at greedy's columns), `no-turns` (the reader before the
turns: `PageConfig(turns=False, max_angle_deg=6)` and `ReadConfig.turn_below=0`: no search
around 90 degrees, a 6-degree skew search, and one way up read), `no-shade`
(`PageConfig(shade=False, squared_pen=False)`: no search for writing in a shadow taken for the
desk, and no pen kept along the lines of squared paper); and by the character reader
(`chars`), also without the turns (`chars-no-turns`) and without those two steps
(`chars-no-shade`).

    NNLAB_DATA=../shared/data python bench/ocr_robustness.py --model RUN_DIR --ctc RUN_DIR
        [--pages 12] [--seed 3030] [--out DIR] [--settings hard,desk,tilt,tight]

Prints character accuracy (1 - CER, case and spaces ignored, pooled over the pages; the metric
of bench/ocr.py) per setting and variant, and on how many pages `find_paper` saw a desk around
the sheet; writes DIR/results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

SETTINGS = {
    "hard": {},
    "desk": {"desk": 0.3},
    "tilt": {"perspective": 0.06, "rotation_deg": 5.0},
    "tight": {"line_spacing": 1.45},
    "thin-desk": {"desk": 0.02},
    "steep": {"rotation_deg": 14.0},
    "turned": {"turns": (90, 180, 270)},
    "shadow": {"shadow": 0.5},
    "desk-shadow": {"desk": 0.3, "shadow": 0.5},
    "squared": {"ruled_lines": False, "grid": 1.0},
    "small-squares": {"ruled_lines": False, "grid": 0.6, "rule_darkness": 0.6},
}
VARIANTS = (
    "full",
    "no-desk",
    "no-level",
    "greedy",
    "no-turns",
    "no-shade",
    "chars",
    "chars-no-turns",
    "chars-no-shade",
)


def variant_config(name: str):
    from nnlab.ocr.page import PageConfig
    from nnlab.ocr.read import ReadConfig

    base = ReadConfig()
    if name == "no-desk":
        return dataclasses.replace(base, page=PageConfig(desk=False))
    if name == "no-level":
        return dataclasses.replace(base, level_lines=False)
    if name == "greedy":
        return dataclasses.replace(base, beam=0)
    if name.endswith("no-turns"):
        page = PageConfig(turns=False, max_angle_deg=6.0)
        return dataclasses.replace(base, page=page, turn_below=0.0)
    if name.endswith("no-shade"):
        return dataclasses.replace(base, page=PageConfig(shade=False, squared_pen=False))
    return base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="nnlab ocr train run (chars)")
    ap.add_argument("--ctc", type=Path, required=True, help="nnlab ocr train-ctc run")
    ap.add_argument("--pages", type=int, default=12, help="pages per setting")
    ap.add_argument("--seed", type=int, default=3030)
    ap.add_argument("--out", type=Path, default=Path("bench-ocr-robustness"))
    ap.add_argument("--settings", default="hard,desk,tilt,tight", help=f"of {', '.join(SETTINGS)}")
    args = ap.parse_args()
    settings = args.settings.split(",")
    if not set(settings) <= set(SETTINGS):
        ap.error(f"--settings: of {', '.join(SETTINGS)}, got {args.settings}")

    import torch

    from nnlab.metrics.ocr import pooled_cer
    from nnlab.ocr.compose import ComposeConfig, write_pages
    from nnlab.ocr.page import analyse_page, load_page
    from nnlab.tasks.ocr import held_out_glyphs, load_reader

    torch.set_num_threads(1)
    t_start, load0 = time.perf_counter(), os.getloadavg()
    glyphs, _ = held_out_glyphs(args.model)
    readers = {"ctc": load_reader(args.ctc, "ctc"), "chars": load_reader(args.model, "chars")}
    results: dict[str, dict[str, float]] = {}
    found: dict[str, int] = {}
    right: dict[str, dict[str, int]] = {}  # pages read the way up they were written
    for setting in settings:
        folder = args.out / setting
        if folder.exists():
            shutil.rmtree(folder)
        cfg = ComposeConfig.hard(**SETTINGS[setting])
        paths = write_pages(folder, args.pages, glyphs, seed=args.seed, cfg=cfg)
        pages = [(load_page(p), p.with_suffix(".txt").read_text()) for p in paths]
        # the way up each photo was saved in (its quarter turns: 0, 90, 180 or 270)
        ups = [round(json.loads(p.with_suffix(".json").read_text())["angle_deg"] / 90) % 4 * 90
               for p in paths]  # fmt: skip
        results[setting] = {}
        right[setting] = {}
        found[setting] = sum(analyse_page(image).sheet < 1 for image, _ in pages)
        for variant in VARIANTS:
            reader = readers["chars" if variant.startswith("chars") else "ctc"]
            rcfg = variant_config(variant)
            readings = [reader.read(image, cfg=rcfg) for image, _ in pages]
            pairs = [(truth, r.text) for (_, truth), r in zip(pages, readings)]
            results[setting][variant] = 1 - pooled_cer(pairs, spaces=False)
            right[setting][variant] = sum(
                r.analysis is not None and r.analysis.turn == up for r, up in zip(readings, ups)
            )
            print(f"{setting:6s} {variant:9s} {results[setting][variant]:.4f}", flush=True)
    report = {
        "character_accuracy": results,
        "sheet_found": found,
        "read_the_right_way_up": right,
        "pages_per_setting": args.pages,
        "seed": args.seed,
        "model": str(args.model),
        "ctc": str(args.ctc),
        "loadavg_start": load0,
        "wall_s": time.perf_counter() - t_start,
    }
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"\ncharacter accuracy, {args.pages} pages per setting (seed {args.seed})")
    print(f"{'setting':10s}" + "".join(f"{v:>15s}" for v in VARIANTS) + "  sheet found")
    for setting, row in results.items():
        cells = "".join(f"{row[v]:15.4f}" for v in VARIANTS)
        print(f"{setting:10s}{cells}  {found[setting]} of {args.pages}")
    print("\npages read the right way up")
    for setting, row in right.items():
        print(f"{setting:10s}" + "".join(f"{row[v]:15d}" for v in VARIANTS))
    print(f"wall {report['wall_s']:.0f} s; load average {load0[0]:.1f} at the start")


if __name__ == "__main__":
    main()
