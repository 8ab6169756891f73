"""The time-domain kernel family on every backend against direct computations.

Brute force in plain Python (every stretch summed again, the CuSum recursion written
out, the LiFT norm by scipy's bounded scalar minimiser) and gammapy's own statistics
(``WStatCountsStatistic`` for a stretch's Li & Ma, ``CashCountsStatistic`` for LiFT
with flat weights: a known background) on random series. Tolerances: 1e-9 relative
(the LiFT norm converges to 1e-12 of its bracket; scipy's minimiser to ~1e-10).
"""

import math

import numpy as np
import pytest
from gammapy.stats import CashCountsStatistic, WStatCountsStatistic
from scipy.optimize import minimize_scalar

N_SERIES, N_BUNCHES = 9, 23  # 9 >= the numba kernels' parallel threshold


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(7)
    livetime = rng.uniform(5.0, 10.0, (N_SERIES, N_BUNCHES))
    livetime[0, 3] = 0.0  # a bunch without livetime
    alpha = rng.uniform(0.1, 0.5, N_SERIES)
    background = 0.4 * livetime
    decay = np.arange(1, N_BUNCHES + 1, dtype=float) ** -1.2
    signal = np.outer(rng.uniform(0, 15, N_SERIES), decay)
    on = rng.poisson(background + signal).astype(float)
    off = rng.poisson(background / alpha[:, None]).astype(float)
    on[0, 3] = off[0, 3] = 0.0  # no livetime, no counts
    off[1, :4] = 0.0  # windows without off counts yet
    on[2] = 0.0  # a series without counts
    weights = np.stack([decay, np.arange(1, N_BUNCHES + 1, dtype=float) ** -0.8])
    return {"on": on, "off": off, "alpha": alpha, "livetime": livetime, "weights": weights}


def _run(backend, name, series, *args):
    device = {key: backend.asarray(value) for key, value in series.items()}
    out = backend.asarray(np.full((N_SERIES, N_BUNCHES), -99.0))
    keys = {"stretch_lima": ("on", "off", "alpha"),
            "cusum": ("on", "off", "alpha", "livetime"),
            "lift": ("on", "off", "alpha", "livetime", "weights")}[name]
    getattr(backend, name)(*(device[key] for key in keys), *args, out)
    return backend.to_numpy(out)


def _brute_stretch(on, off, alpha, k):
    values = []
    for i in range(k + 1):
        stat = WStatCountsStatistic(on[i : k + 1].sum(), off[i : k + 1].sum(), alpha)
        values.append(float(stat.sqrt_ts))  # gammapy's is signed by the excess
    return max(values)


def test_stretch_lima_is_the_brightest_stretch_by_gammapys_wstat(backend, series):
    out = _run(backend, "stretch_lima", series, 5)
    assert np.all(out[:, :5] == -99.0)  # windows before `first` untouched
    for s in range(N_SERIES):
        for k in range(5, N_BUNCHES):
            expected = _brute_stretch(series["on"][s], series["off"][s], series["alpha"][s], k)
            assert out[s, k] == pytest.approx(expected, rel=1e-9, abs=1e-12), (s, k)


def test_cusum_is_pages_recursion(backend, series):
    ratio = 0.7
    out = _run(backend, "cusum", series, ratio)
    for s in range(N_SERIES):
        value, off_sum, time_sum = 0.0, 0.0, 0.0
        for j in range(N_BUNCHES):
            off_sum += series["off"][s, j]
            time_sum += series["livetime"][s, j]
            background = series["alpha"][s] * off_sum * series["livetime"][s, j] / time_sum
            value = max(0.0, value + series["on"][s, j] * math.log(1 + ratio) - ratio * background)
            assert out[s, j] == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert out.max() > 0 and np.all(out >= 0)


def _brute_lift(on, off, alpha, livetime, weights, k):
    if off[: k + 1].sum() == 0:
        return 0.0
    background = alpha * off[: k + 1].sum() * livetime[: k + 1] / livetime[: k + 1].sum()
    background = np.maximum(background, 1e-300)
    best = 0.0
    for w in weights[:, : k + 1]:
        def cost(norm, w=w):
            return -2 * (np.sum(on[: k + 1] * np.log1p(norm * w / background)) - norm * w.sum())
        upper = max(on[: k + 1].sum() / w.sum(), 1e-12)
        fit = minimize_scalar(cost, bounds=(0.0, upper), method="bounded",
                              options={"xatol": 1e-12 * upper})
        best = max(best, math.sqrt(max(-fit.fun, 0.0)))
    return best


def test_lift_is_the_decay_weighted_poisson_fit(backend, series):
    out = _run(backend, "lift", series, 2)
    assert np.all(out[:, :2] == -99.0)
    assert np.all(out[1, 2:4] == 0.0)  # no off counts yet: no background estimate
    assert np.all(out[2] == 0.0) or np.all(out[2, 2:] == 0.0)
    for s in range(N_SERIES):
        for k in range(2, N_BUNCHES):
            expected = _brute_lift(*(series[key][s] for key in ("on", "off", "alpha",
                                                                 "livetime")),
                                   series["weights"], k)
            assert out[s, k] == pytest.approx(expected, rel=1e-6, abs=1e-6), (s, k)
    assert out.max() > 3  # the simulated signals are detected


def test_lift_with_exposure_weights_is_gammapys_cash_with_known_background(backend, series):
    """A template proportional to the livetime (no decay): the window's counts against
    the background a * OFF, one bin: gammapy's ``CashCountsStatistic``."""
    for s in (0, 3, 4, 8):
        flat = dict(series, weights=series["livetime"][s : s + 1].copy())
        out = _run(backend, "lift", flat, N_BUNCHES - 1)
        stat = CashCountsStatistic(series["on"][s].sum(),
                                   series["alpha"][s] * series["off"][s].sum())
        expected = float(stat.sqrt_ts) if stat.n_sig > 0 else 0.0
        assert out[s, -1] == pytest.approx(expected, rel=1e-9), s
        assert expected > 0 or s != 0


def test_series_gives_each_windows_statistics_incrementally():
    """OnOffSeries from cumulative counts = the statistics of the whole series, window by
    window, also when a window's statistics are skipped (no alpha yet)."""
    from rtafast.timedomain import (
        OnOffSeries,
        brightest_stretch,
        cusum,
        decay_likelihood,
        decay_templates,
    )

    rng = np.random.default_rng(11)
    on = rng.poisson(np.linspace(6, 1, 15)).astype(float)
    off = rng.poisson(10.0, 15).astype(float)
    livetime = np.full(15, 10.0)
    starts = 30.0 + 10.0 * np.arange(15)
    series = OnOffSeries(cusum_ratio=2.0, backend="numpy")
    got = []
    for k in range(15):
        alpha = np.nan if k == 2 else 0.2  # window 2: no off region, skipped
        series.add_window(on[: k + 1].sum(), off[: k + 1].sum(), livetime[: k + 1].sum(),
                          alpha, starts[k], starts[k] + 10.0)
        if k != 2:
            got.append((k, series.statistics()))
    templates = decay_templates(starts, starts + 10.0, livetime)
    expected = {
        "lima_time": brightest_stretch(on[None], off[None], 0.2, backend="numpy")[0],
        "cusum": cusum(on[None], off[None], 0.2, livetime[None], 2.0, backend="numpy")[0],
        "lift": decay_likelihood(on[None], off[None], 0.2, livetime[None], templates,
                                 backend="numpy")[0],
    }
    for k, values in got[1:]:  # window 0's statistics are with alpha 0.2 too
        for name in expected:
            assert getattr(values, name) == pytest.approx(expected[name][k], rel=1e-6), (k, name)
    with pytest.raises(ValueError, match="fewer counts"):
        series.add_window(0, 0, 0, 0.2, 200.0, 210.0)
