"""How surely a page reads the right way up and the wrong ways up: the evidence for the reader's
`ReadConfig.turn_below` (0.85). Hard pages of held-out characters (one seed), each saved turned
by 0, 90, 180 and 270 degrees; each read once as it lies, by the character reader without the
turns (`PageConfig(turns=False, max_angle_deg=6)`, `turn_below=0`), and its sureness printed;
then read by the reader as it is, with how many ways up it tried and the seconds it took.

    NNLAB_DATA=../shared/data python bench/ocr_sureness.py --model RUN_DIR [--pages 8]
        [--seed 3030] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="nnlab ocr train run (chars)")
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3030)
    ap.add_argument("--out", type=Path, default=Path("bench-ocr-sureness"))
    args = ap.parse_args()

    import numpy as np
    import torch

    from nnlab.ocr.compose import ComposeConfig, write_pages
    from nnlab.ocr.page import PageConfig, load_page
    from nnlab.ocr.read import ReadConfig, sureness
    from nnlab.tasks.ocr import held_out_glyphs, load_reader

    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    glyphs, _ = held_out_glyphs(args.model)
    reader = load_reader(args.model, "chars")
    as_it_lies = ReadConfig(turn_below=0.0, page=PageConfig(turns=False, max_angle_deg=6.0))
    for turn in (0, 90, 180, 270):
        folder = args.out / f"turn{turn}"
        if folder.exists():
            shutil.rmtree(folder)
        cfg = ComposeConfig.hard(turns=(turn,))
        pages = [load_page(p) for p in write_pages(folder, args.pages, glyphs, args.seed, cfg=cfg)]
        once = [sureness(reader.read(page, cfg=as_it_lies)) for page in pages]
        t0, tried = time.perf_counter(), []
        for page in pages:
            reading = reader.read(page)
            tried.append(len(reading.turns))
        seconds = (time.perf_counter() - t0) / len(pages)
        print(
            f"turned {turn:3d}: sureness as it lies {np.min(once):.2f}-{np.max(once):.2f} "
            f"(pages: {' '.join(f'{v:.2f}' for v in once)}); the reader tried "
            f"{min(tried)}-{max(tried)} ways up, {seconds:.2f} s a page",
            flush=True,
        )
    print(f"load average {load0:.1f} at the start")


if __name__ == "__main__":
    main()
