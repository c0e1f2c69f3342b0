"""Every figure nnlab draws. Functions take arrays and return a matplotlib Figure (no pyplot state,
no files); the caller saves it, usually with `RunDir.save_figure`."""

from nnlab.viz.plots import (
    confusion_figure,
    curves_figure,
    filters_figure,
    first_layer_figure,
    gabor_bank,
    image_grid_figure,
    per_class_figure,
)

__all__ = [
    "confusion_figure",
    "curves_figure",
    "filters_figure",
    "first_layer_figure",
    "gabor_bank",
    "image_grid_figure",
    "per_class_figure",
]
