"""Flux-only WStat fit: rtafast.Fit against gammapy.modeling.Fit, the 15 PKS 2155-304
flare runs' on/off spectra (reflected regions, 0.4-20 TeV in 10 bins), same run.

The amplitude of a power law (index 3.4, frozen) free, fitted jointly over the 15
run-wise ``SpectrumDatasetOnOff``, fresh models every round:

* ``run``: the whole ``Fit.run`` (templates from gammapy's evaluators, the WStat
  kernel's Newton solve, covariance and TS written back) against gammapy's default
  ``Fit().run`` (MIGRAD + HESSE);
* ``step``: ``rtafast.fit.norm_profile.fit_flux_norm`` on the prepared arrays (norm,
  error and TS; then with errn/errp/ul too), against the same gammapy ``Fit().run``.

Each test asserts its amplitude agrees with gammapy's within 1e-4 relative.
"""

import numpy as np
import pytest
from bench_settings import rounds
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit

import rtafast
from rtafast.fit.norm_profile import fit_flux_norm
from tests.test_norm_profile import flare_onoff_datasets, source_model

SIZE = "PKS 2155 flare, 15 on/off spectra x 10 bins"
RUNS = tuple(range(33787, 33802))
ROUNDS = dict(rounds=rounds(10), warmup_rounds=1, iterations=1)


@pytest.fixture(scope="module")
def flare(hess_datastore):
    return flare_onoff_datasets(hess_datastore, RUNS)


def _models():
    model = source_model()
    model.spectral_model.index.frozen = True
    return [model]


@pytest.fixture(scope="module")
def gammapy_amplitude(flare):
    datasets = Datasets(list(flare))
    datasets.models = _models()
    GammapyFit(optimize_opts={"tol": 1e-5}).run(datasets)
    return datasets.models[0].spectral_model.amplitude.value


def _fit_setup(flare):
    def setup():
        datasets = Datasets(list(flare))
        datasets.models = _models()
        return (datasets,), {}

    return setup


def test_gammapy_wstat_fit(benchmark, record, flare, gammapy_amplitude):
    record("wstat fit", SIZE, "gammapy")
    fit = GammapyFit()

    def run(datasets):
        fit.run(datasets)
        return datasets.models[0].spectral_model.amplitude.value

    value = benchmark.pedantic(run, setup=_fit_setup(flare), **ROUNDS)
    assert value == pytest.approx(gammapy_amplitude, rel=1e-3)


def test_rtafast_wstat_fit(benchmark, record, flare, gammapy_amplitude):
    record("wstat fit", SIZE, "rtafast", "numba: whole Fit.run")
    fit = rtafast.Fit(array_backend="numba")

    def run(datasets):
        result = fit.run(datasets)
        assert result.fast_path
        return datasets.models[0].spectral_model.amplitude.value

    value = benchmark.pedantic(run, setup=_fit_setup(flare), **ROUNDS)
    assert value == pytest.approx(gammapy_amplitude, rel=1e-4)


@pytest.mark.parametrize("optional", [False, True], ids=["norm-ts", "errn-errp-ul"])
def test_rtafast_wstat_step(benchmark, record, flare, gammapy_amplitude, optional):
    label = "with errn/errp/ul" if optional else "norm, error, TS"
    record("wstat fit", SIZE, "rtafast", f"numba: fit_flux_norm on arrays, {label}")
    datasets = Datasets(list(flare))
    datasets.models = _models()
    columns = [[], [], [], []]
    for dataset in datasets:
        mask = dataset.mask.data
        sources = (dataset.counts, dataset.counts_off, dataset.alpha, dataset.npred_signal())
        for column, data in zip(columns, sources, strict=True):
            column.append(np.asarray(data.data, dtype=float)[mask])
    counts, counts_off, alpha, signal = (np.concatenate(c) for c in columns)
    kwargs = dict(counts_off=counts_off, alpha=alpha, array_backend="numba")
    kwargs.update(errn_errp=optional, ul=optional)
    result = benchmark.pedantic(fit_flux_norm, args=(counts, signal), kwargs=kwargs, **ROUNDS)
    reference = datasets.models[0].spectral_model.amplitude.value
    assert result.norm * reference == pytest.approx(gammapy_amplitude, rel=1e-4)
