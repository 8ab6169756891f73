"""Calibration trials: rtafast's batched trials against the same trial written with gammapy.

The window: the IRFs and pointing of H.E.S.S. run 33787 (PKS 2155-304; real DL3 IRFs
from ``../shared/data``), the pipeline's default cube (5 deg x 5 deg, 0.02 deg, 10
energy bins, 1-10 TeV), a 10 s exposure, the flux-only fit of a power law of index 3.4
at PKS 2155-304 (``examples/pks2155-flare.yaml``'s target).

* fixed-position null trial: rtafast: :func:`rtafast.trials.batch.run_batch` of
  ``FIXED_BATCH`` trials per call (Poisson counts of the fit's bins, every fit on the
  kernel at once); gammapy: :class:`rtafast_devtools.gammapy_trials.GammapyTrials`
  ``.fixed_trial`` (``dataset.fake``, ``Fit``).
* blind-search null trial: rtafast: ``run_batch`` with ``trials.blind`` of
  ``BLIND_BATCH`` trials (whole cube drawn, the pipeline's TS map, peaks, localisation
  and the fixed-position fit); gammapy: ``.blind_trial`` (``fake``, ``TSMapEstimator``,
  ``find_peaks``, ``Fit``).

Rows are per trial (``units``): the ratio is the ratio of trials per core-second.
numba runs on one thread here (``numba.set_num_threads(1)``), as each Dask worker does:
the figures are per core. Agreement: the null TS distributions of both are checked in
``tests/`` (rtafast's fit against gammapy's ``Fit`` trial by trial).
"""

import numba
import numpy as np
import pytest
from bench_settings import rounds

from rtafast.pipeline.config import dump_yaml, load_config
from rtafast.trials.batch import run_batch, trial_window
from rtafast_devtools.gammapy_trials import GammapyTrials

RUN = 33787
EXPOSURE_S = 10.0
FIXED_BATCH = 10_000
BLIND_BATCH = 10
SIZE = "H.E.S.S. 33787 IRFs, 10 s, 250x250x10 cube, PKS 2155 target"


@pytest.fixture(scope="module")
def config_text(hess_datastore):
    config = load_config(
        None,
        [
            f"input.datastore={hess_datastore.hdu_table.base_dir}",
            f"input.obs_ids=[{RUN}]",
            "target.ra=329.71694",
            "target.dec=-30.2255",
            "fit.index=3.4",
            "backend=numba",
        ],
    )
    return dump_yaml(config, comments=False)


@pytest.fixture
def one_thread():
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)


def _rtafast(benchmark, text, n, blind, n_rounds):
    if blind:
        text = text.replace("blind: false", "blind: true")
    run_batch(text, 0, EXPOSURE_S, 0, 0, min(n, 3), 0)  # window made, kernels compiled
    calls = iter(range(1, 10**6))
    table, info = benchmark.pedantic(
        lambda: run_batch(text, 0, EXPOSURE_S, next(calls), 0, n, 0),
        rounds=rounds(n_rounds),
        iterations=1,
    )
    assert table.num_rows == n
    # unconverged only where the minimum is on the physical limit -min(b/s), as fit_norm
    norm, converged = table.column("norm").to_numpy(), table.column("converged").to_numpy()
    assert np.all(norm[~converged] == norm.min()) and converged.mean() > 0.99
    benchmark.extra_info["check"] = (
        f"{n / info['cpu_s']:.4g} trials per core-second (one batch of {n}: "
        f"{info['cpu_s']:.3f} core-s); fit bins {trial_window(text, EXPOSURE_S).support.size}"
    )


def _gammapy(config_text, seed=0):
    import yaml

    from rtafast.pipeline.config import validate_config

    window = trial_window(config_text, EXPOSURE_S)
    config = validate_config(yaml.safe_load(config_text))
    target = (window.target.ra.deg, window.target.dec.deg)
    return GammapyTrials(window.window.to_dataset(), config, target, seed)


FIXED = "trials: fixed-position null trial"
BLIND = "trials: blind-search null trial"


@pytest.mark.parametrize(
    "capability, n, blind, n_rounds",
    [(FIXED, FIXED_BATCH, False, 5), (BLIND, BLIND_BATCH, True, 3)],
    ids=["fixed", "blind"],
)
def test_rtafast_trials(benchmark, record, config_text, one_thread, capability, n, blind, n_rounds):
    record(capability, SIZE, "rtafast", "numba", units=n)
    _rtafast(benchmark, config_text, n, blind=blind, n_rounds=n_rounds)


def test_gammapy_fixed_trial(benchmark, record, config_text):
    record(FIXED, SIZE, "gammapy")
    trials = _gammapy(config_text)
    fit = benchmark.pedantic(trials.fixed_trial, rounds=rounds(10), iterations=1)
    assert fit["ts"] >= -1e-6


def test_gammapy_blind_trial(benchmark, record, config_text):
    record(BLIND, SIZE, "gammapy")
    trials = _gammapy(config_text)
    best, _, _ = benchmark.pedantic(trials.blind_trial, rounds=rounds(3), iterations=1)
    assert np.isfinite(best)
