"""Flux-only fit: rtafast.Fit against gammapy.modeling.Fit on the stacked H.E.S.S. Crab runs.

Timed, in the same run, for the amplitude alone free and with the FoV background
norm free too:
- ``step``: rtafast's solve on the prepared arrays (bin classification, upload to
  the backend, Newton iterations, errors, TS), against gammapy's whole
  ``Fit().run`` (the issue's definition of the step's ratio);
- ``run``: the whole ``Fit.run`` call, fresh models every round (as for each new
  candidate), side by side:
  ``warm``: a repeat fit of the same dataset, rtafast's PSF-kernel cache holding its
  kernel (successive fits on one pointing);
  ``cold``: the first fit of a new dataset (a fresh copy every round, made outside
  the timing) with rtafast's PSF-kernel cache emptied; numba's JIT already compiled;
  and gammapy's default ``Fit().run`` (it caches nothing between calls on fresh models).
Each test asserts its answer agrees with gammapy's.
"""

import pytest
from bench_settings import rounds, skip_simulated_cuda
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit

import rtafast
from rtafast.cache.psf import default_cache
from rtafast.fit.linear_models import plan_linear_fit
from rtafast.fit.templates import build_arrays
from rtafast_devtools.reference_data import CRAB_POSITION, point_source_models
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


RUN_LABELS = {
    "warm": "numba run, warm: repeat fit, PSF kernel cached",
    "cold": "numba run, cold: first fit of a new dataset, PSF cache empty",
}


@pytest.mark.parametrize("start", list(RUN_LABELS))
def test_rtafast_fit_run(benchmark, record, case, start):
    dataset, background_free, size, reference = case
    record("flux-only fit", size, "rtafast", RUN_LABELS[start])
    models = dataset.models
    dataset.models = None
    pristine = dataset.copy(name="pristine")  # no models, no evaluators: never fitted
    dataset.models = models
    fresh = _fresh_models(dataset, background_free)
    fresh()
    rtafast.Fit(array_backend="numba").run(dataset)  # JIT and PSF cache warm-up
    made, last = [], []

    def setup():
        if start == "warm":
            return fresh()
        made.append(1)
        new = pristine.copy(name=f"new-{len(made)}")
        new.models = point_source_models(new, CRAB_POSITION, background_norm_free=background_free)
        default_cache.clear()
        return (new,), {}

    def run(d):
        last[:] = [d]
        return rtafast.Fit(array_backend="numba").run(d)

    result = benchmark.pedantic(run, setup=setup, **ROUNDS)
    assert result.fast_path and result.success
    assert _amplitude(last[0]) == pytest.approx(reference, rel=1e-4)
    if start == "cold" and benchmark.stats is not None:  # a new dataset every round
        assert len(made) == ROUNDS["rounds"] + ROUNDS["warmup_rounds"]
