"""Light curve: rtafast.estimators.LightCurveEstimator against gammapy's, same data, same run.

The PKS 2155-304 flare, all 15 H.E.S.S. runs (33787-33801), 1D reflected on/off
datasets (on region 0.11 deg, 0.4-20 TeV), one energy bin 0.5-7 TeV, the flux-only
light curve (norm, error, TS: ``selection_optional=None``) and, run-wise, with
errn/errp, ul and the scan:

* ``run-wise``: one dataset and one time bin per run (``time_intervals=None``);
* ``4-min``: the runs cut into 4-minute slices (``Observations.select_time``, as
  gammapy's light_curve_flare tutorial), one time bin per slice.

The datasets are reduced once per module (outside the timing). Each rtafast result
is checked against gammapy's in the same run: norm and TS within 1e-6 relative (rtafast
runs gammapy's MINUIT, with gammapy's settings, on its own statistic).
"""

import astropy.units as u
import numpy as np
import pytest
from bench_settings import QUICK, rounds
from gammapy.estimators import LightCurveEstimator as GammapyLightCurveEstimator

from rtafast.estimators import LightCurveEstimator

ENERGY_EDGES = [0.5, 7] * u.TeV
#: 20:30 to 04:02 UTC in 4-minute bins: every flare run is inside.
N_4MIN_BINS = 113
SELECTIONS = {"flux-only": None, "errn-errp, ul, scan": ["errn-errp", "ul", "scan"]}
CASES = [("run-wise", "flux-only"), ("4-min", "flux-only"), ("run-wise", "errn-errp, ul, scan")]


@pytest.fixture(scope="module")
def flare_inputs(data_dir):
    from rtafast_devtools.lightcurve_data import flare_time_intervals, pks2155_onoff_datasets

    intervals = flare_time_intervals(n_bins=N_4MIN_BINS, minutes=4)
    return {
        "run-wise": (pks2155_onoff_datasets(data_dir), None),
        "4-min": (pks2155_onoff_datasets(data_dir, time_intervals=intervals), intervals),
    }


def _size(binning, selection):
    return f"15 flare runs, {binning} bins, {selection}"


_REFERENCES = {}


def _gammapy_reference(flare_inputs, binning, selection):
    """gammapy's light curve of a case, computed once per module (checks, not timed)."""
    key = (binning, selection)
    if key not in _REFERENCES:
        datasets, intervals = flare_inputs[binning]
        estimator = _estimator(GammapyLightCurveEstimator, intervals, selection)
        _REFERENCES[key] = estimator.run(datasets)
    return _REFERENCES[key]


def _estimator(cls, intervals, selection, **kwargs):
    return cls(
        energy_edges=ENERGY_EDGES,
        source="pks2155",
        time_intervals=intervals,
        selection_optional=SELECTIONS[selection],
        **kwargs,
    )


@pytest.mark.parametrize("binning, selection", CASES)
def test_gammapy_lightcurve(benchmark, record, flare_inputs, binning, selection):
    if QUICK and binning == "4-min":
        pytest.skip("quick mode: run-wise bins only")
    record("light curve", _size(binning, selection), "gammapy")
    datasets, intervals = flare_inputs[binning]
    estimator = _estimator(GammapyLightCurveEstimator, intervals, selection)
    result = benchmark.pedantic(
        estimator.run, args=(datasets,), rounds=rounds(3), warmup_rounds=0, iterations=1
    )
    _REFERENCES.setdefault((binning, selection), result)
    assert np.nanmax(result.ts.data) > 25


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("binning, selection", CASES)
def test_rtafast_lightcurve(benchmark, record, flare_inputs, binning, selection, backend_name):
    if QUICK and binning == "4-min":
        pytest.skip("quick mode: run-wise bins only")
    record("light curve", _size(binning, selection), "rtafast", backend_name)
    datasets, intervals = flare_inputs[binning]
    estimator = _estimator(LightCurveEstimator, intervals, selection, array_backend=backend_name)
    estimator.run(datasets)  # JIT compilation and imports
    result = benchmark.pedantic(
        estimator.run, args=(datasets,), rounds=rounds(10), warmup_rounds=1, iterations=1
    )
    reference = _gammapy_reference(flare_inputs, binning, selection)
    np.testing.assert_allclose(result.norm.data, reference.norm.data, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.ts.data, reference.ts.data, rtol=1e-6, atol=1e-6)
    benchmark.extra_info["check"] = (
        f"{result.geom.axes['time'].nbin} bins: norm and TS within 1e-6 of gammapy's"
    )
