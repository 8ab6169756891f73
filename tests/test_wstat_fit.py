"""``rtafast.Fit`` on on/off (WStat) datasets against gammapy's ``Fit`` on real data.

PKS 2155-304 flare runs reduced to on/off spectra (reflected regions); the amplitude of
a power law (index 3.4) free. gammapy runs with MIGRAD ``tol=1e-5``. Tolerances: value
1e-5 relative, error 1e-4 relative, total statistic 1e-6 absolute (rtafast's at most
gammapy's), TS against gammapy's ``stat(amplitude=0) - stat(best)`` 1e-6 relative.
"""

import numpy as np
import pytest
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit
from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
from test_norm_profile import flare_onoff_datasets, source_model

import rtafast
from rtafast import dispatch


@pytest.fixture(scope="module")
def flare(hess_datastore):
    return flare_onoff_datasets(hess_datastore)


def _fresh(datasets, models=None):
    copies = Datasets([d.copy(name=d.name) for d in datasets])
    model = source_model()
    model.spectral_model.index.frozen = True
    copies.models = models if models is not None else [model]
    return copies


def _amplitude(datasets):
    return datasets.models["pks2155"].spectral_model.amplitude


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("joint", [False, True], ids=["one-run", "joint"])
def test_fit_matches_gammapy(flare, joint, backend_name):
    selected = list(flare) if joint else [flare[1]]
    reference = _fresh(selected)
    expected = GammapyFit(optimize_opts={"tol": 1e-5}).run(reference)
    datasets = _fresh(selected)
    dispatch.reset()
    result = rtafast.Fit(array_backend=backend_name).run(datasets)
    assert dispatch.counts() == {("Fit.run", "fast", None): 1}
    assert result.fast_path and result.success
    value, error = _amplitude(datasets).value, _amplitude(datasets).error
    assert value == pytest.approx(_amplitude(reference).value, rel=1e-5)
    assert error == pytest.approx(_amplitude(reference).error, rel=1e-4)
    assert result.total_stat == pytest.approx(datasets.stat_sum(), rel=1e-12)
    assert result.total_stat <= expected.total_stat + 1e-9
    assert result.total_stat == pytest.approx(expected.total_stat, abs=1e-6)
    stat_best = reference.stat_sum()
    _amplitude(reference).value = 0.0
    ts = reference.stat_sum() - stat_best
    assert result.ts["pks2155"] == pytest.approx(ts, rel=1e-6)
    assert result.covariance_result.matrix.shape == (3, 3)
    assert np.sqrt(result.covariance_result.matrix[1, 1]) == pytest.approx(error, rel=1e-12)


def test_joint_cash_and_wstat(flare):
    """An on/off spectrum and a Cash spectrum (alpha * n_off as background) fitted jointly."""
    mixed = [flare[0], flare[2].to_spectrum_dataset(name="cash")]
    reference = _fresh(mixed)
    GammapyFit(optimize_opts={"tol": 1e-5}).run(reference)
    datasets = _fresh(mixed)
    result = rtafast.Fit(array_backend="numba").run(datasets)
    assert result.fast_path
    assert _amplitude(datasets).value == pytest.approx(_amplitude(reference).value, rel=1e-5)
    assert _amplitude(datasets).error == pytest.approx(_amplitude(reference).error, rel=1e-4)
    assert result.total_stat == pytest.approx(reference.stat_sum(), abs=1e-6)


def test_bounds_respected(flare):
    datasets = _fresh([flare[1]])
    _amplitude(datasets).max = 1e-10  # below the best fit (~1.7e-10)
    rtafast.Fit(array_backend="numpy").run(datasets)
    assert _amplitude(datasets).value == pytest.approx(1e-10, rel=1e-12)


def test_delegations(flare):
    """Index free: non-linear; two free sources in an on/off dataset: not one norm."""
    dispatch.reset()
    datasets = _fresh([flare[1]])
    datasets.models["pks2155"].spectral_model.index.frozen = False
    result = rtafast.Fit().run(datasets)
    assert not result.fast_path
    second = SkyModel(PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1"), name="b")
    second.spectral_model.index.frozen = True
    first = source_model()
    first.spectral_model.index.frozen = True
    result = rtafast.Fit().run(_fresh([flare[1]], models=[first, second]))
    assert not result.fast_path
    frozen = source_model()
    frozen.spectral_model.index.frozen = True
    second.parameters.freeze_all()
    result = rtafast.Fit().run(_fresh([flare[1]], models=[frozen, second]))
    assert not result.fast_path
    reasons = sorted(key[2] for key in dispatch.counts())
    assert reasons == ["non-linear-parameter", "wstat-not-one-norm"]
    assert dispatch.counts()[("Fit.run", "gammapy", "wstat-not-one-norm")] == 2
    with pytest.raises(rtafast.fit.onoff.WStatPlanError, match="frozen sky model"):
        rtafast.Fit(delegate=False).run(_fresh([flare[1]], models=[frozen, second]))
