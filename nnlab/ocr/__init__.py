"""Handwriting OCR, page -> boxes -> lines -> text (no torch here; the classifiers come later).

- `page`: a page photo -> character boxes (`find_characters`, `analyse_page` with the reason an
  empty page is empty), each step a pure function.
- `lines`: boxes -> lines in reading order with spaces (`group_lines`); the canonical 32x32 form
  of a character image (`canonical_char`, `crop_for_classifier`).
- `compose`: pages made of real handwritten character images, with their text and boxes
  (`compose_page`, `write_pages`).
"""

from nnlab.ocr.compose import ComposeConfig, PageTruth, compose_page, write_pages
from nnlab.ocr.lines import Line, LineConfig, canonical_char, crop_for_classifier, group_lines
from nnlab.ocr.page import Box, PageAnalysis, PageConfig, analyse_page, find_characters

__all__ = [
    "Box",
    "ComposeConfig",
    "Line",
    "LineConfig",
    "PageAnalysis",
    "PageConfig",
    "PageTruth",
    "analyse_page",
    "canonical_char",
    "compose_page",
    "crop_for_classifier",
    "find_characters",
    "group_lines",
    "write_pages",
]
