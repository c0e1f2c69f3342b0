"""`nnlab ocr train | train-ctc | read | eval | compose`: handwriting OCR, a page photo in, its
text out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import console, group, table, train_command

ModelOpt = typer.Option(
    None,
    "--model",
    help="A run directory of `nnlab ocr train` (default: $NNLAB_OCR_MODEL, else the newest "
    "runs/ocr-* run).",
)
RecognizerOpt = typer.Option(
    "chars",
    "--recognizer",
    help="chars: segment into characters, classify each; ctc: read whole lines (CTC model).",
)
DeviceOpt = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N for the classifier.")
LowOpt = typer.Option(
    0.8,
    "--low-confidence",
    min=0.0,
    max=1.0,
    help="Below this confidence a character's top 3 are shown.",
)


def read(
    page: Path = typer.Argument(..., help="A photo or scan of a handwritten page (jpg, png, ...)."),
    model: Optional[Path] = ModelOpt,
    recognizer: str = RecognizerOpt,
    out: Path = typer.Option(
        Path("."), "--out", help="Folder for <page>.overlay.png and <page>.ocr.json."
    ),
    overwrite: bool = typer.Option(False, help="Replace an overlay and JSON that exist already."),
    low_confidence: float = LowOpt,
    device: str = DeviceOpt,
) -> None:
    """Read a handwritten page: print its text; write an overlay (numbered boxes, characters,
    confidences) and a JSON of the boxes and lines."""
    from nnlab.tasks.ocr import read_to_folder

    reading, paths = read_to_folder(page, out, model, recognizer, device, overwrite, low_confidence)
    print(reading.text)
    if reading.analysis is not None and reading.analysis.turn:
        tried = ", ".join(f"{t}: {v:.2f}" for t, v in reading.turns.items())
        console.print(f"read turned by {reading.analysis.turn} degrees: the photo was saved "
                      f"sideways or upside down (sureness by turn: {tried})")  # fmt: skip
    if reading.analysis is not None and reading.analysis.light is not None:
        console.print("read writing in a shadow that looked like the desk around the page")
    if reading.analysis is not None and reading.analysis.lines is not None:
        console.print("squared paper (lines across and down): pen along the lines kept")
    unsure = reading.unsure()
    if unsure:
        console.print(f"unsure ({len(unsure)} below {low_confidence:.2f}):")
        for c in unsure:
            top = ", ".join(f"{n} {p:.2f}" for n, p in c.top3)
            console.print(f"  #{c.index} line {c.line + 1}: {top}")
    console.print(f"overlay: {paths[0].resolve()}")
    console.print(f"boxes and lines: {paths[1].resolve()}")


def evaluate(
    pages: Path = typer.Argument(..., help="A folder of name.jpg|png pages, each with name.txt."),
    model: Optional[Path] = ModelOpt,
    recognizer: str = RecognizerOpt,
    out: Optional[Path] = typer.Option(
        None, "--out", help="JSON of per-page and overall figures (default: <folder>-eval.json)."
    ),
    overwrite: bool = typer.Option(False, help="Replace the JSON if it exists."),
    device: str = DeviceOpt,
) -> None:
    """Score a recognizer on pages with known text: CER (Levenshtein, case ignored) with and
    without spaces, per page and overall; box recall where name.json holds the boxes."""
    from nnlab.io import atomic_write_json, claim_outputs, writable_folder
    from nnlab.tasks.ocr import evaluate_pages, load_reader, page_files

    page_files(pages)  # no pages: say so before loading a model
    out = out or Path(f"{pages.resolve().name}-eval.json")
    claim_outputs([out], overwrite)
    writable_folder(out.parent)  # before the pages are read
    reader = load_reader(model, recognizer, device)
    rows, overall = evaluate_pages(pages, reader)
    keys = ["page", "cer", "cer_nospace", "char_accuracy", "box_recall", "seconds", "note"]
    shown = [{k: r.get(k, "-") for k in keys} for r in rows]
    console.print(table(shown, f"{pages}: {recognizer} recognizer, model {reader.model}"))
    total = {k: overall[k] for k in ("pages", "cer", "cer_nospace", "char_accuracy")}
    total.update({k: overall[k] for k in ("box_recall", "seconds_per_page") if k in overall})
    console.print(table([total], "overall (edits pooled over all pages)"))
    atomic_write_json(out, {"overall": overall, "pages": rows})
    console.print(f"figures: {out.resolve()}")


def compose(
    out: Path = typer.Argument(..., help="Folder to write the pages to."),
    pages: int = typer.Option(10, "--pages", min=1, help="How many pages."),
    hard: bool = typer.Option(
        False,
        help="Photograph them hard: rules, lighting, tilt, blur, noise, JPEG, touching "
        "and broken letters.",
    ),
    seed: int = typer.Option(0, "--seed", help="Page i is drawn from (seed, i)."),
    model: Optional[Path] = typer.Option(
        None,
        "--model",
        help="Take the held-out characters of this run's split (default: the "
        "default split, which `nnlab ocr train` uses unless told otherwise).",
    ),
    fmt: str = typer.Option("jpg", "--format", help="jpg or png."),
    char_height: int = typer.Option(40, "--char-height", help="Median character height, px."),
    desk: float = typer.Option(
        0.0,
        "--desk",
        help="Lay each page on a darker, grained desk that shows this x the page's size on "
        "each side (0 = the page fills the photo; try 0.3).",
    ),
    turns: str = typer.Option(
        "0",
        "--turns",
        help="Save each photo turned by one of these degrees, counter-clockwise (e.g. "
        "90,180,270: as a phone with a wrong orientation tag does).",
    ),
    shadow: float = typer.Option(
        0.0,
        "--shadow",
        help="Cast a shadow with a sharp edge (a hand, the phone) over part of each photo, "
        "taking this fraction of the light there (0 = none; try 0.5).",
    ),
    grid: float = typer.Option(
        0.0,
        "--grid",
        help="Write on squared paper, squares this x the character height (0 = none; try 1); "
        "hard pages then have squares in place of their ruled lines.",
    ),
) -> None:
    """Write pages of held-out handwritten characters (never seen in training) with their exact
    text (name.txt) and character boxes (name.json)."""
    from nnlab.tasks.ocr import compose_pages

    paths, info = compose_pages(
        out,
        pages,
        hard,
        seed,
        model,
        fmt,
        char_height,
        say=console.print,
        desk=desk,
        turns=turns,
        shadow=shadow,
        grid=grid,
    )
    by = ", ".join(f"{s} {c['letters'] + c['digits']}" for s, c in info["by_source"].items())
    kind = ("hard" if hard else "plain") + (" pages on a desk" if desk else " pages")
    console.print(
        f"{len(paths)} {kind} in {Path(out).resolve()} from "
        f"{info['test_characters']} held-out characters ({by}); split: {info['split_from']}"
    )


def register(app: typer.Typer) -> None:
    from nnlab.tasks.ocr import OCRTask

    train = train_command(
        OCRTask,
        "ocr",
        "Train the 36-class character classifier (A-Z, 0-9) on NIST letters, MNIST digits and "
        "Chars74K in one canonical form: a CNN (shared loop) or the NumPy MLP (--model "
        "numpy-mlp); writes a run directory with its split and report.",
    )
    ocr = group("ocr", "Handwriting OCR: a page photo in, its text out.")
    ocr.command("train")(train)
    from nnlab.tasks.ocr_ctc import CTCLineTask

    class CTCTrain(CTCLineTask):
        verb = "train-ctc"  # what the resume hint names

    ocr.command("train-ctc")(
        train_command(
            CTCTrain,
            "ocr",
            "Train the CTC line recogniser (CNN encoder + sequence head, no segmentation) on "
            "lines composed from the training part of the character split; `nnlab ocr read "
            "--recognizer ctc` reads with it.",
        )
    )
    ocr.command("read")(read)
    ocr.command("eval")(evaluate)
    ocr.command("compose")(compose)
    app.add_typer(ocr)
