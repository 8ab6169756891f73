"""The afterglow study's pieces (``rtafast_devtools.afterglow_study``): thresholds at a
false-alarm probability, the tail extrapolation, the simulated counts, and a small
study end to end (fake rates: no shared data needed)."""

import numpy as np
import pytest
from scipy.stats import norm

from rtafast_devtools.afterglow_rates import REFERENCE_AMPLITUDE, AfterglowRates
from rtafast_devtools.afterglow_study import (
    METHODS,
    P_5SIGMA,
    Setup,
    calibrate,
    extrapolated_threshold,
    simulate,
    study,
)

RATES = AfterglowRates(signal=3.0, background=0.03, irf="fake", energy_min_tev=0.1,
                       energy_max_tev=10.0, index=2.2, offset_deg=0.7, on_radius_deg=0.1)


def test_calibrated_threshold_allows_the_probability_and_no_more():
    values = np.random.default_rng(1).normal(size=20000)
    threshold = calibrate({"x": values}, 1e-3)["x"]
    assert np.mean(values >= threshold) <= 1e-3
    assert np.mean(values >= np.nextafter(np.sort(values)[-21], -np.inf)) > 1e-3
    assert np.isnan(calibrate({"x": values[:100]}, 1e-3)["x"])  # too few to pin it


def test_gaussian_tail_extrapolates_to_five_sigma():
    values = np.random.default_rng(2).normal(size=200000)
    assert extrapolated_threshold(values, P_5SIGMA, power=2) == pytest.approx(5.0, abs=0.25)
    assert norm.isf(P_5SIGMA) == pytest.approx(5.0, abs=1e-6)


def test_simulated_counts_follow_the_afterglow_and_the_background():
    setup = Setup(RATES, duration=600.0)
    grbs = {"amplitude": np.array([REFERENCE_AMPLITUDE]), "onset": np.array([45.0]),
            "decay": np.array([1.5])}
    signal = setup.signal(grbs)[0]
    # the decay's integral from the onset on: ∫ (t/45)^-1.5 dt over [45, 630] s
    expected = 3.0 * 45.0 / 0.5 * (1 - (630 / 45) ** -0.5)
    assert signal.sum() == pytest.approx(expected, rel=1e-9)
    assert signal[0] == 0.0 and signal[1] > 0  # the onset is in the second bunch
    on, off = simulate(setup, np.tile(signal, (4000, 1)), np.random.default_rng(3))
    assert on.sum(1).mean() == pytest.approx(expected + 18.0, rel=0.01)
    assert off.sum(1).mean() == pytest.approx(18.0 / setup.alpha, rel=0.01)


def test_a_small_study_pins_each_threshold_and_detects_bright_afterglows():
    setup = Setup(RATES, duration=300.0, amplitude=(3e-11, 1e-10),
                  cusum_ratio=3.0, lift_onsets=(10.0, 60.0, 100.0))
    result = study(setup, n_grbs=40, n_background=3000, seed=4, probability=1e-2)
    for method in METHODS:
        assert result["realised_probability"][method] <= 1e-2
        times = np.asarray(result["detection_time"][method], float)
        assert np.isfinite(times).mean() > 0.9, method  # bright: nearly all detected
        assert np.nanmin(times) >= setup.edges[1]
