"""PowerLawDecayTemporalModel and decay_weights: integrals, time scales, gammapy use, sampling."""

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time
from scipy import integrate, stats

from rtafast.models import PowerLawDecayTemporalModel, decay_weights

T0 = Time("2019-01-14T20:57:03.19", scale="utc").tt


def decay(t_s, tau_s, alpha, t_start_s):
    """The decay written out independently of the module (s since T0)."""
    t_s = np.asarray(t_s, dtype=float)
    active = (t_s > 0) & (t_s > t_start_s)
    return np.where(active, (np.where(active, t_s, 1.0) / tau_s) ** -alpha, 0.0)


def quad_integral(start_s, stop_s, tau_s, alpha, t_start_s):
    """Numerical integral of :func:`decay` over [start, stop] s (breakpoint at the onset)."""
    lower = max(start_s, t_start_s, 0.0)
    if stop_s <= lower:
        return 0.0
    value, _ = integrate.quad(
        decay, lower, stop_s, args=(tau_s, alpha, t_start_s), epsabs=0, epsrel=1e-11, limit=200
    )
    return value


def model(alpha=1.6, tau="1 s", t_start="0 s", t0=T0):
    return PowerLawDecayTemporalModel(t0=t0, tau=tau, alpha=alpha, t_start=t_start)


CASES = [
    # alpha, tau (s), onset (s), intervals in s since T0
    (1.6, 1.0, 30.0, [(30, 40), (40, 50), (100, 1900)]),
    (1.6, 30.0, 30.0, [(0, 10), (10, 20), (20, 30), (25, 35), (30, 40), (50, 60)]),  # first min
    (1.0, 1.0, 5.0, [(-20, 10), (0, 60), (5, 6), (1000, 1e5)]),  # alpha = 1, straddling t0
    (0.5, 2.0, 0.0, [(-10, 10), (-10, 0), (0, 1e-3), (1, 2)]),  # converges at t0
    (2.5, 10.0, 1.0, [(-60, 60), (-5, 1.5), (1.5, 1.6)]),
    (1.0 + 1e-12, 1.0, 5.0, [(5, 60), (-1, 1e4)]),  # next to alpha = 1
]


@pytest.mark.parametrize(("alpha", "tau", "onset", "intervals"), CASES)
def test_integral_matches_quadrature(alpha, tau, onset, intervals):
    intervals = np.array(intervals, dtype=float)
    decay_model = model(alpha=alpha, tau=f"{tau} s", t_start=f"{onset} s")
    burst = decay_model.reference_time  # T0 as stored (a float MJD: ~1 us from T0)
    t_min = burst + intervals[:, 0] * u.s
    t_max = burst + intervals[:, 1] * u.s
    expected = np.array([quad_integral(a, b, tau, alpha, onset) for a, b in intervals])
    duration = np.sum(intervals[:, 1] - intervals[:, 0])
    result = decay_model.integral(t_min, t_max)
    assert result.unit.is_equivalent(u.one)
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result.to_value(""), expected / duration, rtol=1e-7, atol=1e-14)


def test_integral_zero_before_onset_and_before_t0():
    decay_model = model(alpha=1.6, tau="30 s", t_start="30 s")
    starts = T0 + [-100, -69.184, 0, 10] * u.s
    result = decay_model.integral(starts, starts + 20 * u.s)
    np.testing.assert_array_equal(result.to_value(""), 0.0)


def test_alpha_one_is_the_limit_of_the_power_law():
    intervals = np.array([[5.0, 60.0], [30.0, 1800.0]])
    at_one = decay_weights(intervals, 0.0, 1.0, 1.0, 5.0)
    for delta in (1e-9, -1e-9):
        np.testing.assert_allclose(
            decay_weights(intervals, 0.0, 1.0, 1.0 + delta, 5.0), at_one, rtol=1e-7
        )
    np.testing.assert_allclose(at_one, np.log(intervals[:, 1] / intervals[:, 0]), rtol=1e-12)


def test_first_minute_after_t0_utc_and_tt_inputs_agree():
    """The TT/UTC trap: times given in UTC are the same instants as in TT (no 69 s shift)."""
    decay_model = model(alpha=1.6, tau="30 s", t_start="30 s")
    burst = decay_model.reference_time  # T0 as stored (a float MJD: ~1 us from T0)
    edges_s = np.arange(0, 61, 10.0)
    t_min_tt = burst + edges_s[:-1] * u.s
    t_max_tt = burst + edges_s[1:] * u.s
    from_tt = decay_model.integral(t_min_tt, t_max_tt).to_value("")
    from_utc = decay_model.integral(t_min_tt.utc, t_max_tt.utc).to_value("")
    np.testing.assert_allclose(from_utc, from_tt, rtol=1e-9, atol=1e-12)
    expected = [quad_integral(a, a + 10, 30.0, 1.6, 30.0) / 60 for a in edges_s[:-1]]
    np.testing.assert_allclose(from_tt, expected, rtol=1e-7, atol=1e-15)
    assert np.all(from_tt[:3] == 0) and np.all(from_tt[3:] > 0)  # zero until the onset at 30 s
    # read as UTC, t0 would be 69.184 s later: [40, 50] s TT would lie before its onset
    values = decay_model(burst.utc + [31, 45, 59] * u.s).to_value("")
    np.testing.assert_allclose(values, decay([31, 45, 59], 30.0, 1.6, 30.0), rtol=1e-9)


def test_t0_given_as_utc_time_is_stored_as_tt_mjd():
    from_utc = model(t0=T0.utc)
    from_mjd = model(t0=T0.mjd * u.d)
    assert from_utc.t0.value == pytest.approx(T0.mjd, abs=1e-11)
    assert from_mjd.reference_time.scale == "tt"
    assert abs((from_utc.reference_time - T0).to_value("s")) < 1e-5


def test_evaluate_is_one_at_t0_plus_tau_and_zero_before_onset():
    decay_model = model(alpha=1.6, tau="30 s", t_start="10 s")
    burst = decay_model.reference_time
    values = decay_model(burst + [-5, 0, 5, 10, 10.5, 30, 300] * u.s).to_value("")
    expected = [0, 0, 0, 0, (10.5 / 30) ** -1.6, 1.0, 10**-1.6]
    np.testing.assert_allclose(values, expected, rtol=1e-8)
    static = PowerLawDecayTemporalModel.evaluate(
        (T0 + 300 * u.s).mjd * u.d, T0.mjd * u.d, 30 * u.s, 1.6, 10 * u.s
    )
    assert static.to_value("") == pytest.approx(10**-1.6, rel=1e-6)


def test_decay_weights_are_the_model_integral_times_duration():
    reference_s = 6.0e8  # s since some MJDREF
    t0_s = reference_s + 12.5
    edges = reference_s + np.arange(0, 200, 10.0)
    intervals = np.c_[edges[:-1], edges[1:]]
    weights = decay_weights(intervals, t0_s, 30.0, 1.6, 30.0)
    decay_model = model(alpha=1.6, tau="30 s", t_start="30 s")
    starts = T0 + (intervals[:, 0] - t0_s) * u.s
    stops = T0 + (intervals[:, 1] - t0_s) * u.s
    per_interval = [
        decay_model.integral(a, b).to_value("") * 10 for a, b in zip(starts, stops, strict=True)
    ]
    np.testing.assert_allclose(weights, per_interval, rtol=1e-6)
    assert weights.shape == (len(intervals),)
    assert np.all(weights[:4] == 0) and weights[4] > 0  # onset at 42.5 s after reference


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decay_weights([[0, 1, 2]], 0, 1, 1.6), "shape"),
        (lambda: decay_weights([[5, 1]], 0, 1, 1.6), "ends before it starts"),
        (lambda: decay_weights([[-1, 1]], 0, 1, 1.6), "diverges"),
        (lambda: decay_weights([[1, 2]], 0, 0, 1.6), "tau"),
        (lambda: decay_weights([[1, 2]], 0, 1, np.nan), "alpha"),
        (lambda: decay_weights([[1, 2]], 0, 1, 1.6, -1), "t_start"),
        (lambda: PowerLawDecayTemporalModel(scale="utc"), "TT only"),
        (lambda: model().integral(T0, T0), "no duration"),
        (lambda: model().integral(T0.mjd, T0.mjd + 1), "astropy Time"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_yaml_round_trip_through_gammapy_models():
    from gammapy.modeling.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel

    decay_model = model(alpha=1.3, tau="25 s", t_start="40 s")
    sky_model = SkyModel(
        spectral_model=PowerLawSpectralModel(),
        spatial_model=PointSpatialModel(lon_0="10 deg", lat_0="-20 deg", frame="icrs"),
        temporal_model=decay_model,
        name="grb",
    )
    text = Models([sky_model]).to_yaml()
    assert "PowerLawDecayTemporalModel" in text
    restored = Models.from_yaml(text)["grb"].temporal_model
    assert isinstance(restored, PowerLawDecayTemporalModel)
    assert restored.scale == "tt"
    for name in ("t0", "tau", "alpha", "t_start"):
        assert restored.parameters[name].quantity == decay_model.parameters[name].quantity
        assert restored.parameters[name].frozen == decay_model.parameters[name].frozen


@pytest.fixture(scope="module")
def small_dataset():
    """A 5x5-pixel, 2-energy-bin MapDataset with a flat exposure (no PSF/EDisp needed)."""
    from gammapy.datasets import MapDataset
    from gammapy.maps import Map, MapAxis, WcsGeom

    energy = MapAxis.from_energy_bounds(1, 10, 2, unit="TeV")
    geom = WcsGeom.create(skydir=(54.51, -26.94), binsz=0.1, width=0.5, frame="icrs", axes=[energy])
    dataset = MapDataset.create(
        geom, energy_axis_true=energy.copy(name="energy_true"), reference_time=T0
    )
    dataset.exposure.quantity = np.full(dataset.exposure.data.shape, 1e9) * u.Unit("m2 s")
    dataset.mask_safe = Map.from_geom(geom, data=np.ones(geom.data_shape, dtype=bool))
    dataset.psf = None
    dataset.edisp = None
    return dataset


def _sky_model(temporal_model):
    from gammapy.modeling.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    return SkyModel(
        spectral_model=PowerLawSpectralModel(amplitude="1e-10 cm-2 s-1 TeV-1"),
        spatial_model=PointSpatialModel(lon_0="54.51 deg", lat_0="-26.94 deg", frame="icrs"),
        temporal_model=temporal_model,
        name="grb",
    )


@pytest.mark.parametrize(
    "intervals_s",
    [[(20, 80)], [(0, 10), (30, 40), (300, 360)], [(0, 25)]],
    ids=["straddling-onset", "three-gtis", "before-onset"],
)
def test_gammapy_npred_with_the_decay_equals_the_analytic_expectation(small_dataset, intervals_s):
    from gammapy.data import GTI

    dataset = small_dataset.copy()
    intervals_s = np.array(intervals_s, dtype=float)
    dataset.gti = GTI.create(intervals_s[:, 0] * u.s, intervals_s[:, 1] * u.s, reference_time=T0)
    dataset.models = [_sky_model(None)]
    constant = dataset.npred_signal().data.sum()
    dataset.models = [_sky_model(model(alpha=1.6, tau="30 s", t_start="30 s"))]
    decaying = dataset.npred_signal().data.sum()
    mean_decay = sum(quad_integral(a, b, 30.0, 1.6, 30.0) for a, b in intervals_s) / np.sum(
        intervals_s[:, 1] - intervals_s[:, 0]
    )
    assert constant > 0
    np.testing.assert_allclose(decaying, constant * mean_decay, rtol=1e-7, atol=1e-12)


def _analytic_cdf(elapsed_s, lower_s, upper_s, alpha):
    """CDF of the decay between lower and upper (s since T0, lower > 0), written out."""
    if alpha == 1:
        return np.log(elapsed_s / lower_s) / np.log(upper_s / lower_s)
    beta = 1 - alpha
    return (elapsed_s**beta - lower_s**beta) / (upper_s**beta - lower_s**beta)


@pytest.mark.parametrize("alpha", [1.6, 1.0])
def test_sample_time_follows_the_decay_ks(alpha):
    decay_model = model(alpha=alpha, tau="30 s", t_start="30 s")
    t_min, t_max = T0.utc, T0.utc + 1800 * u.s  # UTC bounds: sampled in TT all the same
    times = decay_model.sample_time(3000, t_min, t_max, random_state=7)
    assert times.scale == "utc" and times.shape == (3000,)
    elapsed = (times - T0).to_value("s")
    assert elapsed.min() >= 30 and elapsed.max() <= 1800
    result = stats.kstest(elapsed, lambda x: _analytic_cdf(x, 30.0, 1800.0, alpha))
    assert result.pvalue > 0.01
    wrong = stats.kstest(elapsed, lambda x: _analytic_cdf(x, 30.0, 1800.0, alpha + 0.3))
    assert wrong.pvalue < 1e-6  # the test can tell a different decay index


def test_sample_time_shares_events_between_intervals_by_their_integral():
    decay_model = model(alpha=1.6, tau="30 s", t_start="30 s")
    starts = T0 + [0, 60, 600] * u.s
    stops = T0 + [45, 120, 900] * u.s
    times = decay_model.sample_time(20000, starts, stops, random_state=3)
    elapsed = (times - T0).to_value("s")
    bounds = [(30, 45), (60, 120), (600, 900)]
    inside = [(elapsed >= a) & (elapsed <= b) for a, b in bounds]
    assert np.sum(inside) == len(elapsed)  # all within the intervals, after the onset
    weights = decay_weights([[0, 45], [60, 120], [600, 900]], 0, 30, 1.6, 30)
    counts = np.array([np.sum(mask) for mask in inside])
    expected = weights / weights.sum() * len(elapsed)
    assert stats.chisquare(counts, expected).pvalue > 0.01


def test_sample_time_edge_cases():
    decay_model = model(alpha=1.6, tau="30 s", t_start="30 s")
    assert decay_model.sample_time(0, T0, T0 + 10 * u.s).shape == (0,)
    with pytest.raises(ValueError, match="zero in all intervals"):
        decay_model.sample_time(5, T0, T0 + 10 * u.s)
    first = decay_model.sample_time(50, T0, T0 + 100 * u.s, random_state=11)
    again = decay_model.sample_time(50, T0, T0 + 100 * u.s, random_state=11)
    assert np.all(first == again)


def test_gammapy_fit_recovers_the_decay_index_from_windows(small_dataset):
    """Three windows of Asimov counts: a joint gammapy fit finds alpha and the amplitude."""
    from gammapy.data import GTI
    from gammapy.datasets import Datasets
    from gammapy.modeling import Fit

    truth = _sky_model(model(alpha=1.6, tau="30 s", t_start="30 s"))
    datasets = Datasets()
    for index, (start, stop) in enumerate([(30, 40), (60, 90), (300, 400)]):
        dataset = small_dataset.copy(name=f"window-{index}")
        dataset.gti = GTI.create([start] * u.s, [stop] * u.s, reference_time=T0)
        dataset.models = [truth]
        dataset.counts = dataset.npred()
        datasets.append(dataset)
    fitted = truth.copy(name="grb")
    fitted.temporal_model.alpha.value = 1.2
    fitted.spectral_model.amplitude.value = 3e-10
    fitted.spectral_model.index.frozen = True
    fitted.spatial_model.freeze()  # all counts in one pixel: the position is not constrained
    datasets.models = [fitted]
    result = Fit().run(datasets)
    assert result.success
    assert fitted.temporal_model.alpha.value == pytest.approx(1.6, abs=1e-3)
    assert fitted.spectral_model.amplitude.value == pytest.approx(1e-10, rel=1e-3)
