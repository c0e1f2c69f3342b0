"""The pieces behind nnlab/facts/course.py, checked on their own: the Wiener filter against SciPy's
Toeplitz solver, the simulated signal's statistics, the per-layer variances."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from nnlab.facts.course import S2, TAPS, A, activation_variances, noisy_ar1, wiener_filter


def test_wiener_filter_equals_scipy_toeplitz_solver():
    column = A ** np.arange(TAPS) + S2 * (np.arange(TAPS) == 0)  # R is symmetric Toeplitz
    np.testing.assert_allclose(
        wiener_filter(), scipy.linalg.solve_toeplitz(column, A ** np.arange(TAPS)), rtol=1e-12
    )
    # without noise the best estimate of x_t is y_t itself: w = (1, 0, ..., 0)
    np.testing.assert_allclose(wiener_filter(s2=0.0), np.eye(TAPS)[0], atol=1e-12)


def test_noisy_ar1_has_the_stated_statistics():
    """200,000 samples: Var x = 1, lag-1 correlation a = 0.9, noise variance 0.5 (tolerances of a
    few standard errors of an AR(1) with this correlation)."""
    windows, x = noisy_ar1(200_000, seed=3)
    y = windows[:, 0]  # column 0 is y_t
    assert abs(x.var() - 1) < 0.03
    assert abs(np.corrcoef(x[1:], x[:-1])[0, 1] - A) < 0.005
    assert abs((y - x).var() - S2) < 0.01
    np.testing.assert_array_equal(windows[1:, 1], windows[:-1, 0])  # column k is y_{t-k}


def test_layer_variances_explode_vanish_or_stay():
    xavier, big, small = (activation_variances(s, depth=5) for s in (None, 1.0, 0.01))
    assert np.all((0.8 < xavier) & (xavier < 1.25))
    np.testing.assert_allclose(big[1:] / big[:-1], 256, rtol=0.1)  # x width per layer
    np.testing.assert_allclose(small[1:] / small[:-1], 256e-4, rtol=0.1)


def test_mlp_beats_the_wiener_filter_only_when_the_sensor_is_nonlinear():
    """Small run (4,000 windows, 15 epochs): the SGD neuron lands on the closed-form filter; behind
    the squaring sensor the MLP's test error is well below the Wiener filter's, behind the linear
    one it is not below it (the Wiener filter is optimal there)."""
    from nnlab.tasks.numpy_experiments import wiener_vs_mlp

    rows = wiener_vs_mlp(n=4000, epochs=15)["rows"]
    mse = {(r["sensor"], r["estimator"].split(" ")[0]): r["test MSE"] for r in rows}
    for sensor in ("linear", "squaring"):
        assert abs(mse[(sensor, "linear")] / mse[(sensor, "Wiener")] - 1) < 0.02
    assert mse[("squaring", "MLP")] < 0.7 * mse[("squaring", "Wiener")]
    assert mse[("linear", "MLP")] > 0.97 * mse[("linear", "Wiener")]


def test_init_command_writes_the_per_layer_variances(tmp_path):
    from typer.testing import CliRunner

    from nnlab.cli import build_app

    argv = ["numpy", "init", "--depth", "6", "--out", str(tmp_path / "i")]
    result = CliRunner().invoke(build_app(argv), argv)
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads((tmp_path / "i" / "summary.json").read_text())["variances"]
    assert [r["layer"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["N(0, 1)"] > 1e12 and rows[-1]["N(0, 0.01^2)"] < 1e-8
    assert 0.8 < rows[-1]["Xavier, Var w = 1 / width"] < 1.25
    assert (tmp_path / "i" / "figures" / "init_variance.png").exists()
