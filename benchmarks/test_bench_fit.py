"""Flux-only fit: rtafast.Fit against gammapy.modeling.Fit on the stacked H.E.S.S. Crab runs.

Timed, in the same run, for the amplitude alone free and with the FoV background
norm free too:
- ``step``: rtafast's solve on the prepared arrays (bin classification, upload to
  the backend, Newton iterations, errors, TS), against gammapy's whole
  ``Fit().run`` (the issue's definition of the step's ratio);
- ``run``: the whole ``Fit.run`` call with fresh models every round (as for each
  new candidate): rtafast with its PSF-kernel cache warm (repeat fits on the same
  PSF), rtafast with the cache cleared every round (``cold PSF``), and gammapy's
  default ``Fit().run``.
Each test asserts its answer agrees with gammapy's.
"""

import pytest
from bench_settings import rounds, skip_simulated_cuda
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit

import rtafast
from rtafast.linear_models import plan_linear_fit
from rtafast.psf_kernels import default_cache
from rtafast.reference_data import CRAB_POSITION, point_source_models
from rtafast.templates import build_arrays
from rtafast_kernels import CashProblem, fit_norms

ROUNDS = dict(rounds=rounds(15), warmup_rounds=2, iterations=1)
CASES = {"amplitude": False, "amplitude+bkgnorm": True}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, hess_crab_stacked):
    """(dataset, background_free, size label, gammapy's tight amplitude)."""
    background_free = CASES[request.param]
    dataset = hess_crab_stacked
    dataset.models = point_source_models(
        dataset, CRAB_POSITION, background_norm_free=background_free
    )
    GammapyFit(optimize_opts={"tol": 1e-5}).run(dataset)
    amplitude = dataset.models["source"].spectral_model.amplitude.value
    return dataset, background_free, f"crab 6x125x125, {request.param}", amplitude


def _fresh_models(dataset, background_free):
    def setup():
        dataset.models = point_source_models(
            dataset, CRAB_POSITION, background_norm_free=background_free
        )
        return (dataset,), {}

    return setup


def _amplitude(dataset):
    return dataset.models["source"].spectral_model.amplitude.value


def test_gammapy_fit_run(benchmark, record, case):
    dataset, background_free, size, reference = case
    record("flux-only fit", size, "gammapy")
    result = benchmark.pedantic(
        lambda d: GammapyFit().run(d), setup=_fresh_models(dataset, background_free), **ROUNDS
    )
    assert result.success
    assert _amplitude(dataset) == pytest.approx(reference, rel=1e-3)  # default tolerance


def test_rtafast_fit_step(benchmark, record, case, backend):
    dataset, background_free, size, reference = case
    skip_simulated_cuda(backend)
    record("flux-only fit", size, "rtafast", f"{backend.name} step")
    dataset.models = point_source_models(
        dataset, CRAB_POSITION, background_norm_free=background_free
    )
    datasets = Datasets([dataset])
    plan = plan_linear_fit(datasets)
    arrays = build_arrays(datasets, plan)
    x0 = [p.value for p in plan.parameters]

    def step():
        problem = CashProblem(arrays.counts, arrays.fixed, arrays.templates, backend=backend)
        result = fit_norms(problem, x0=x0, ts_for=[0])  # TS of the source, as Fit does
        backend.synchronize()
        return result

    step()  # JIT warm-up
    result = benchmark.pedantic(step, **ROUNDS)
    assert result.success
    assert result.norm[0] == pytest.approx(reference, rel=1e-4)


@pytest.mark.parametrize("psf_cache", ["warm", "cold"])
def test_rtafast_fit_run(benchmark, record, case, psf_cache):
    dataset, background_free, size, reference = case
    label = "numba run" if psf_cache == "warm" else "numba run, cold PSF"
    record("flux-only fit", size, "rtafast", label)
    fresh = _fresh_models(dataset, background_free)
    fresh()
    rtafast.Fit(backend="numba").run(dataset)  # JIT and PSF cache warm-up

    def setup():
        if psf_cache == "cold":
            default_cache.clear()
        return fresh()

    result = benchmark.pedantic(
        lambda d: rtafast.Fit(backend="numba").run(d), setup=setup, **ROUNDS
    )
    assert result.fast_path and result.success
    assert _amplitude(dataset) == pytest.approx(reference, rel=1e-4)
