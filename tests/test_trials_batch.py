"""One batch of calibration trials: the pipeline's fit and detection, reproducibly.

The trials' fixed-position fit (every trial at once on the kernel) is compared with the
pipeline's own `fit_flux` and with gammapy's `Fit` on the same simulated counts; the
blind columns with the pipeline's `detect` on the same cube; batches are reproducible
from their seed. The IRFs are the package's default (CTAO prod5 South when the shared
data has it, else the analytic CTA-like IRF): no skip without data.
"""

import numpy as np
import pytest

from rtafast.pipeline.config import dump_yaml, load_config
from rtafast.trials.batch import _fixed_counts, batch_seed, decay_factor, run_batch
from rtafast.trials.sampling import PoissonSampler
from rtafast.trials.window import make_trial_window

#: A small window: 2 deg at 0.05 deg, 4 energy bins (fast to build and to search).
SMALL = [
    "target.ra=83.6331",
    "target.dec=22.0145",
    "geometry.width=2 deg",
    "geometry.binsz=0.05 deg",
    "geometry.energy_nbins=4",
    "geometry.energy_true_nbins=8",
    "backend=numba",
]


def same_rows(first, second):
    """Two trial tables hold the same values (NaN equal to NaN), column by column."""
    if first.column_names != second.column_names or first.num_rows != second.num_rows:
        return False
    for name in first.column_names:
        a, b = first.column(name).to_numpy(), second.column(name).to_numpy()
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            return False
    return True


def small_config(*overrides):
    return load_config(None, [*SMALL, *overrides])


@pytest.fixture(scope="module")
def window():
    return make_trial_window(small_config(), 600.0)


def _window_with_counts(window, counts_row):
    from rtafast.stream.window import StreamWindow

    base = window.window
    cube = np.zeros(window.background.size)
    cube[window.support] = counts_row
    return StreamWindow(
        base.geom,
        base.energy_axis_true,
        "trial",
        base.backend,
        base.parts,
        counts=base.backend.upload(cube.reshape(window.background.shape)),
    )


def _counts(window, norms, seed=3):
    return _fixed_counts(np.random.default_rng(seed), window, np.asarray(norms, float))


def test_fit_equals_the_pipelines_fit_flux(window):
    """Norm, TS and flux of the batched fit = the pipeline's `fit_flux` on the window with
    those counts (it fits the same bins: within the Newton stopping rule, 1e-6)."""
    from rtafast.pipeline.measure import MeasureCache, fit_flux
    from rtafast.trials.batch import _fit

    config = small_config()
    norms = [0.0, 0.0, 0.5, 2.0, 8.0]
    counts = _counts(window, norms)
    fit = _fit(window, counts, window.window.backend)
    cache = MeasureCache()
    ra, dec = window.target.ra.deg, window.target.dec.deg
    for i in range(len(norms)):
        reference = fit_flux(_window_with_counts(window, counts[i]), ra, dec, config, cache)
        assert fit["norm"][i] == pytest.approx(reference.norm, rel=1e-6, abs=1e-8)
        assert fit["ts"][i] == pytest.approx(reference.ts, rel=1e-6, abs=1e-8)
        assert fit["flux"][i] == pytest.approx(reference.flux, rel=1e-6, abs=1e-20)
        assert fit["flux_err"][i] == pytest.approx(reference.flux_err, rel=1e-6)
        assert fit["sqrt_ts"][i] == pytest.approx(reference.sqrt_ts, rel=1e-6, abs=1e-6)


def test_fit_equals_gammapys_fit(window):
    """TS and norm against gammapy's `Fit` (MINUIT, tol 1e-6, strategy 2, as the
    pipeline's own comparison) of the window's dataset with the pipeline's source model,
    amplitude free: TS within 1e-4 relative, the norm within 1e-3 of its error."""
    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    from rtafast.pipeline.measure_templates import REFERENCE_AMPLITUDE, source_model
    from rtafast.trials.batch import _fit

    config = small_config()
    counts = _counts(window, [2.0, 6.0], seed=11)
    fit = _fit(window, counts, window.window.backend)
    for i in range(2):
        dataset = _window_with_counts(window, counts[i]).to_dataset()
        model = source_model(window.target.ra.deg, window.target.dec.deg, config)
        dataset.models = Models([model])
        model.spectral_model.amplitude.value = 0.0
        stat_null = dataset.stat_sum()
        model.spectral_model.amplitude.value = REFERENCE_AMPLITUDE
        result = Fit(optimize_opts={"tol": 1e-6, "strategy": 2}).run([dataset])
        assert result.success
        norm = model.spectral_model.amplitude.value / REFERENCE_AMPLITUDE
        assert fit["norm"][i] == pytest.approx(
            norm, abs=1e-3 * fit["flux_err"][i] / window.flux_scale
        )
        assert fit["ts"][i] == pytest.approx(stat_null - result.total_stat, rel=1e-4)
        assert fit["ts"][i] > 4  # sources seen: the comparison is not of noise


def test_batches_are_reproducible_and_distinct(window):
    config = small_config("trials.batch_size=50")
    text = dump_yaml(config, comments=False)
    first, info = run_batch(text, 0, 600.0, 0, 0, 50, base_seed=7)
    again, _ = run_batch(text, 0, 600.0, 0, 0, 50, base_seed=7)
    other, _ = run_batch(text, 0, 600.0, 1, 50, 50, base_seed=7)
    assert same_rows(first, again)
    assert info["seed"] == batch_seed(7, 0, 0) != batch_seed(7, 0, 1) != batch_seed(8, 0, 0)
    assert first.column("trial").to_pylist() == list(range(50))
    assert other.column("trial").to_pylist() == list(range(50, 100))
    assert not np.array_equal(first.column("ts").to_numpy(), other.column("ts").to_numpy())
    assert np.all(np.isnan(first.column("blind_sqrt_ts").to_numpy()))
    assert np.all(first.column("injected_flux").to_numpy() == 0)


def test_injected_sources_follow_the_config(window):
    """Fluxes log-uniform within [flux_min, flux_max]; the fitted flux follows the
    injected one (bright sources: within 5 errors), a decay scales it by its mean."""
    config = small_config(
        "trials.hypothesis=source", "trials.flux_min=2e-11", "trials.flux_max=1e-10"
    )
    table, _ = run_batch(dump_yaml(config, comments=False), 0, 600.0, 0, 0, 40, 1)
    injected = table.column("injected_flux").to_numpy()
    assert np.all((injected >= 2e-11) & (injected <= 1e-10))
    flux, error = table.column("flux").to_numpy(), table.column("flux_err").to_numpy()
    pulls = (flux - injected) / error
    assert np.all(np.abs(pulls) < 5)
    assert abs(np.mean(pulls)) < 1.0
    assert decay_factor(None, 30, 600) == 1.0
    t = np.linspace(30, 630, 200001)
    mean = np.trapezoid((t / 30) ** -1.6, t) / 600
    assert decay_factor(1.6, 30, 600) == pytest.approx(mean, rel=1e-6)
    assert decay_factor(1.0, 30, 600) == pytest.approx(np.log(21) * 30 / 600)


def test_blind_columns_are_the_pipelines_detection(window):
    """With trials.blind: the highest significance of trial 0's map and its brightest
    candidate equal the pipeline's `detect` on the same simulated cube."""
    from rtafast.pipeline.detect import DetectionEstimators, detect
    from rtafast.stream.window import StreamWindow

    config = small_config("trials.blind=true", "detection.threshold=3")
    table, _ = run_batch(dump_yaml(config, comments=False), 0, 600.0, 0, 0, 3, 5)
    rng = np.random.default_rng(batch_seed(5, 0, 0))
    cube = PoissonSampler(window.background).add_to(rng, np.zeros((1, window.background.size)))
    cube = cube.reshape(window.background.shape)
    base = window.window
    trial = StreamWindow(
        base.geom,
        base.energy_axis_true,
        "t",
        base.backend,
        base.parts,
        counts=base.backend.upload(cube),
    )
    detection = detect(trial, config, DetectionEstimators.from_config(config))
    best = np.nanmax(detection.significance_map.data)
    assert table.column("blind_sqrt_ts")[0].as_py() == pytest.approx(best, rel=1e-12)
    assert table.column("n_candidates")[0].as_py() == len(detection.candidates)
    if detection.candidates:
        assert table.column("blind_ra")[0].as_py() == detection.candidates[0].ra
        assert table.column("blind_r95")[0].as_py() == detection.candidates[0].r95
    # the fixed-position fit of the blind trials uses the same cubes' counts
    counts = cube.ravel()[window.support]
    assert table.column("n_counts")[0].as_py() == counts.sum()


def test_bad_trials_settings():
    from rtafast.pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="flux_min"):
        small_config("trials.flux_min=1e-9", "trials.flux_max=1e-10")
    with pytest.raises(ConfigError, match="exposures"):
        small_config("trials.exposures=[]")
    with pytest.raises(ValueError, match="predicts no counts"):
        make_trial_window(
            small_config(
                "target.ra=120",
                "target.dec=-10",
                "geometry.width=0.2 deg",
                "selection.offset_max=0.1 deg",
            ),
            10.0,
        )
