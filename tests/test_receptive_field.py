"""Receptive fields: the recursion against hand-computed cases, and the measured gradient support
equal to the theory wherever the field fits inside the image."""

from __future__ import annotations

import json

from nnlab.models import build_model, model_config
from nnlab.tasks.receptive_field import Step, receptive_fields, unet_steps


def side(steps):
    return receptive_fields(steps)[-1]["receptive field"]


def test_receptive_field_recursion_on_hand_computed_cases():
    assert side([Step("a", 3), Step("b", 3)]) == 5  # two 3x3: 1 + 2 + 2
    assert side([Step("a", 3), Step("p", 2, 2), Step("b", 3)]) == 8  # 3, then 4 (jump 2), 4 + 2*2
    assert side([Step("a", 3, dilation=2)]) == 5  # a dilated 3x3 spans 5
    assert side([Step("a", 3, 2), Step("b", 3, 2), Step("c", 3)]) == 15  # 3, 3 + 2*2, 7 + 2*4
    rows = receptive_fields([Step("p", 2, 2), Step("u", 2, 2, transposed=True)])
    assert [r["jump"] for r in rows] == [2, 1] and rows[-1]["receptive field"] == 2


def test_unet_path_by_hand():
    """depth 1: down0 (3x3, 3x3) -> 5; pool -> 6 (jump 2); down1 -> 10, 14; up-conv 2/2 -> 14
    (jump 1); fuse -> 16, 18; 1x1 head -> 18."""
    unet = build_model("unet", model_config("unet", in_channels=1, base=4, depth=1))
    rows = receptive_fields(unet_steps(unet))
    assert [r["receptive field"] for r in rows] == [3, 5, 6, 10, 14, 14, 16, 18, 18]


def test_gradient_support_equals_theory_on_digits(tmp_path):
    from typer.testing import CliRunner

    from nnlab.cli import build_app

    args = ["conv", "receptive-field", "--data", "digits", "--images", "16"]
    args += ["--out", str(tmp_path / "rf")]
    result = CliRunner().invoke(build_app(args), args)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "rf" / "summary.json").read_text())["receptive_fields"]
    cnns = [r for r in rows if "CNN" in r["model"]]  # their fields fit in the 32x32 images
    assert len(cnns) == 10
    for r in cnns:
        assert r["gradient support"] == r["theoretical RF"], r
    for r in rows:  # no gradient outside the theoretical field, ever (blank input can shrink it)
        assert r["gradient support"] <= r["theoretical RF"], r
    assert (tmp_path / "rf" / "figures" / "receptive_fields.png").exists()


def test_support_and_mass_sides_on_known_maps():
    import numpy as np

    from nnlab.tasks.receptive_field import mass_side, support_side

    g = np.zeros((20, 20))
    g[4:9, 6:11] = 1  # a 5x5 field: support 5, and 95% of its mass needs all of it
    assert support_side(g) == 5 and mass_side(g) == 5
    g[6, 8] = 300  # most of the mass in the centre pixel: 324 in all, 95% = 307.8
    assert support_side(g) == 5 and mass_side(g) == 3  # the pixel holds 300, the 3x3 308
    h = np.zeros((10, 10))
    h[2:6, 3:7] = 1  # an even side centres between pixels
    assert support_side(h) == 4 and mass_side(h) == 4
