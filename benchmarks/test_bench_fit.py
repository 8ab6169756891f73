"""Flux-only fit: rtafast.Fit against gammapy.modeling.Fit on the stacked H.E.S.S. Crab runs.

Timed, in the same run:
- ``fit step``: rtafast's solve on the prepared arrays (upload to the backend,
  Newton iterations, errors, TS), against gammapy's whole ``Fit().run`` (the
  issue's definition of the step's ratio);
- ``Fit.run``: the whole call, with fresh models every round (as for each new
  candidate): rtafast with its PSF-kernel cache warm (repeat fits), rtafast with
  the cache cleared every round (cold), and gammapy's ``Fit().run``.
Each test asserts the answer agrees with gammapy.
"""

import pytest
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit

import rtafast
from rtafast.linear_models import plan_linear_fit
from rtafast.psf_kernels import default_cache
from rtafast.reference_data import CRAB_POSITION, point_source_models
from rtafast.templates import build_arrays
from rtafast_kernels import CashProblem, fit_norms

SIZE = "crab 4 runs 6x125x125"
ROUNDS = dict(rounds=15, warmup_rounds=2, iterations=1)


@pytest.fixture(scope="module")
def crab(hess_crab_stacked):
    return hess_crab_stacked


@pytest.fixture(scope="module")
def gammapy_amplitude(crab):
    crab.models = point_source_models(crab, CRAB_POSITION)
    GammapyFit(optimize_opts={"tol": 1e-5}).run(crab)
    return crab.models["source"].spectral_model.amplitude.value


def _fresh_models(dataset):
    def setup():
        dataset.models = point_source_models(dataset, CRAB_POSITION)
        return (dataset,), {}

    return setup


def test_gammapy_fit_run(benchmark, record, crab, gammapy_amplitude):
    record("fit (amplitude only)", SIZE, "gammapy")
    result = benchmark.pedantic(lambda d: GammapyFit().run(d), setup=_fresh_models(crab), **ROUNDS)
    assert result.success
    record_amp = crab.models["source"].spectral_model.amplitude.value
    assert record_amp == pytest.approx(gammapy_amplitude, rel=1e-3)


def test_rtafast_fit_step(benchmark, record, crab, gammapy_amplitude, backend):
    if backend.name == "cuda" and not _real_gpu():
        pytest.skip("cuda timings need a real GPU (the simulator is tested in tests/)")
    record("fit (amplitude only)", SIZE, "rtafast", f"{backend.name} step")
    crab.models = point_source_models(crab, CRAB_POSITION)
    datasets = Datasets([crab])
    plan = plan_linear_fit(datasets)
    arrays = build_arrays(datasets, plan)

    def step():
        problem = CashProblem(arrays.counts, arrays.fixed, arrays.templates, backend=backend)
        result = fit_norms(problem, x0=[1e-11])
        backend.synchronize()
        return result

    step()  # JIT warm-up
    result = benchmark.pedantic(step, **ROUNDS)
    assert result.norm[0] == pytest.approx(gammapy_amplitude, rel=1e-4)


def test_rtafast_fit_run(benchmark, record, crab, gammapy_amplitude):
    record("fit (amplitude only)", SIZE, "rtafast", "numba run")
    rtafast.Fit(backend="numba").run(crab)  # JIT and PSF cache warm-up
    result = benchmark.pedantic(
        lambda d: rtafast.Fit(backend="numba").run(d), setup=_fresh_models(crab), **ROUNDS
    )
    assert result.fast_path
    assert crab.models["source"].spectral_model.amplitude.value == pytest.approx(
        gammapy_amplitude, rel=1e-4
    )


def test_rtafast_fit_run_cold(benchmark, record, crab, gammapy_amplitude):
    record("fit (amplitude only)", SIZE, "rtafast", "numba run, cold PSF")
    rtafast.Fit(backend="numba").run(crab)  # JIT warm-up

    def setup():
        default_cache.clear()
        return _fresh_models(crab)()

    result = benchmark.pedantic(
        lambda d: rtafast.Fit(backend="numba").run(d), setup=setup, **ROUNDS
    )
    assert result.fast_path
    assert crab.models["source"].spectral_model.amplitude.value == pytest.approx(
        gammapy_amplitude, rel=1e-4
    )


def _real_gpu():
    import numba

    return not numba.config.ENABLE_CUDASIM
