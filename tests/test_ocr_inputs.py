"""Page photos and truth files as phones, scanners and editors leave them (`nnlab.ocr.page.
load_page`, `nnlab.tasks.ocr`): each case once ended in a traceback, a misleading message, or a
silently wrong score."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from nnlab.cli import main
from nnlab.errors import NNLabError
from nnlab.ocr.page import load_page


def cli(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    return e.value.code, capsys.readouterr().err


def page(h=300, w=400) -> Image.Image:
    a = np.full((h, w), 235, np.uint8)
    a[100:140, 50:60] = 20  # a stroke
    return Image.fromarray(a)


@pytest.mark.parametrize(
    "head,said",
    [
        (b"%PDF-1.7\n" + bytes(200), "a PDF, not an image: export the page as PNG or JPEG"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(200), "a HEIC photo (an iPhone's default)"),
        (b"", "an empty file (0 bytes)"),
    ],
)
def test_files_pillow_cannot_read_are_named_for_what_they_are(tmp_path, head, said):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(head)
    with pytest.raises(NNLabError, match=said.replace("(", r"\(").replace(")", r"\)")):
        load_page(path)
    with pytest.raises(NNLabError, match="a folder, not a page image"):
        load_page(tmp_path)


def test_a_scanners_many_pages_read_the_first_and_say_so(tmp_path):
    blank = Image.new("L", (400, 300), 235)
    blank.save(tmp_path / "scan.tif", save_all=True, append_images=[page(), page()])
    with pytest.warns(UserWarning, match="^scan.tif: 3 pages or frames; the first is read"):
        first = load_page(tmp_path / "scan.tif")
    assert first.shape == (300, 400) and np.ptp(first) == 0


def test_a_200_megapixel_photo_is_read_at_a_reduced_scale(tmp_path, monkeypatch):
    """Pillow's "decompression bomb" limit (179 Mpx) would refuse a 200-Mpx phone photo; a
    JPEG that large is decoded at 1/2, 1/4 or 1/8 scale (the reader works at far fewer pixels).
    Checked on a smaller photo with the limits scaled down alike."""
    import nnlab.ocr.page as page_module

    big = page(3000, 4000).convert("RGB")
    big.save(tmp_path / "phone.jpg", quality=90)
    monkeypatch.setattr(page_module, "DECODE_SIDE", 1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000_000)  # 12 Mpx > twice this
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        image = load_page(tmp_path / "phone.jpg")
    assert image.shape[:2] == (750, 1000)  # 1/4 scale: the long side stays >= 1000
    assert Image.MAX_IMAGE_PIXELS == 3_000_000  # the process's own limit is left as it was
    monkeypatch.setattr(page_module, "PAGE_PIXELS", 8_000_000)
    with pytest.raises(NNLabError, match="4000 x 3000 pixels, more than 8 Mpx: resize it"):
        load_page(tmp_path / "phone.jpg")
    monkeypatch.setattr(page_module, "PAGE_PIXELS", 1_000_000)  # past Pillow's own check too
    with pytest.raises(NNLabError, match="phone.jpg: more than 2 Mpx: resize it"):
        load_page(tmp_path / "phone.jpg")


def test_pillows_warnings_are_one_line_naming_the_file(tmp_path):
    buf = io.BytesIO()
    page().save(buf, format="PNG")
    (tmp_path / "p.png").write_bytes(buf.getvalue())

    def warn_on_open(*args, **kwargs):
        warnings.warn("Corrupt EXIF data.  Expecting 4 bytes, got 0.", UserWarning, stacklevel=2)
        return real_open(*args, **kwargs)

    real_open = Image.open
    Image.open = warn_on_open
    try:
        with pytest.warns(UserWarning, match="p.png: Corrupt EXIF data"):
            load_page(tmp_path / "p.png")
    finally:
        Image.open = real_open


def test_a_blackboard_is_told_from_a_page_without_ink():
    """Light writing on a dark ground finds nothing darker than the ground: the message says the
    page is dark and what to do, where a light page without ink does not."""
    from nnlab.ocr.page import threshold_ink

    board = np.full((300, 400), 0.15, np.float32)
    board[100:140, 50:60] = 0.85  # chalk
    mask, _, reason = threshold_ink(board)
    assert not mask.any() and reason.startswith("no ink")
    assert "(a blackboard)? invert the image" in reason
    paper = np.full((300, 400), 0.9, np.float32)
    paper[100:140, 50:60] = 0.8  # too faint to be ink
    mask, _, reason = threshold_ink(paper)
    assert reason.startswith("no ink") and "blackboard" not in reason


def test_an_output_folder_that_cannot_take_the_results_is_said_first(capsys, tmp_path):
    page().save(tmp_path / "p.png")
    (tmp_path / "afile").write_text("")
    code, err = cli(capsys, "ocr", "read", tmp_path / "p.png", "--out", tmp_path / "afile")
    assert code == 1 and "--out" in err and "cannot make the folder" in err
    assert err.count("\n") == 1
    (tmp_path / "pages").mkdir()
    page().save(tmp_path / "pages" / "p.png")
    (tmp_path / "pages" / "p.txt").write_text("A")
    code, err = cli(
        capsys, "ocr", "eval", tmp_path / "pages", "--out", tmp_path / "afile" / "x.json"
    )
    assert code == 1 and "cannot make the folder" in err and err.count("\n") == 1


def test_truth_texts_as_editors_save_them():
    """UTF-16 (Notepad's "Unicode", PowerShell's `>`), with or without its mark; a UTF-8 mark;
    Windows-1252: the same text, and a note where it was not UTF-8."""
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from nnlab.tasks.ocr import read_truth_text

    text = "Grüße, 12 Äpfel\r\nzwei\r\n"
    cases = {
        "utf-16": (text.encode("utf-16"), "UTF-16"),
        "utf-16-le": (text.encode("utf-16-le"), "UTF-16"),
        "utf-8-sig": (text.encode("utf-8-sig"), ""),
        "utf-8": (text.encode("utf-8"), ""),
        "cp1252": (text.encode("cp1252"), "Windows-1252"),
    }
    with TemporaryDirectory() as d:
        for name, (raw, note) in cases.items():
            path = Path(d) / f"{name}.txt"
            path.write_bytes(raw)
            got, how = read_truth_text(path)
            assert got == text, name
            assert (note in how) if note else how == "", name


def test_a_truth_box_that_is_not_four_numbers_is_a_note_not_a_traceback(tmp_path):
    from nnlab.ocr.compose import read_truth

    truth = {"lines": ["A"], "size": [300, 400], "chars": [{"char": "A", "box": [1, 2, 3]}]}
    (tmp_path / "p.json").write_text(json.dumps(truth))
    with pytest.raises(NNLabError, match="not a page truth file .* four numbers"):
        read_truth(tmp_path / "p.json")
    truth["chars"][0]["box"] = {"x": 1, "y": 2, "w": 3, "h": 4}
    (tmp_path / "p.json").write_text(json.dumps(truth))
    with pytest.raises(NNLabError, match="four numbers"):
        read_truth(tmp_path / "p.json")
