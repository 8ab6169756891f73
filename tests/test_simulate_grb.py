"""simulate_grb_observations: DL3 files gammapy reads back, event times following the decay."""

import json

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from scipy import stats

from rtafast.simulate_grb import find_prod5_irf, simulate_grb_observations

#: Small and fast: 2 runs of 2 min, 1-10 TeV, 3 deg maps; bright, for the KS test.
SMALL = dict(
    seed=5,
    irf="analytic",
    duration="2 min",
    onset="20 s",
    alpha=1.4,
    amplitude="1e-9 cm-2 s-1 TeV-1",
    n_runs=2,
    energy_range=("1 TeV", "10 TeV"),
    width="3 deg",
)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("grb")
    files, truth = simulate_grb_observations(outdir, **SMALL)
    return outdir, files, truth


def _events(path):
    with fits.open(path) as hdus:
        return hdus["EVENTS"].header, np.asarray(hdus["EVENTS"].data)


def test_truth_and_files(simulated):
    outdir, files, truth = simulated
    assert [f.name for f in files] == ["grb_obs_000001.fits", "grb_obs_000002.fits"]
    assert truth["irf"] == "analytic" and truth["irf_file"] is None
    assert (truth["onset"], truth["tau"], truth["alpha"], truth["index"]) == (20.0, 20.0, 1.4, 2.2)
    assert truth["amplitude"] == pytest.approx(1e-9)
    assert Time(truth["t0"], scale="tt").mjd == pytest.approx(truth["t0_mjd_tt"], abs=1e-9)
    assert json.loads((outdir / "truth.json").read_text()) == json.loads(json.dumps(truth))
    first, second = truth["pointings"]
    assert first["tstop"] == second["tstart"]
    assert first["dec"] == pytest.approx(truth["dec"] + 0.7)  # wobble north, then south
    assert second["dec"] == pytest.approx(truth["dec"] - 0.7)
    assert first["n_source_events"] > 500 and second["n_source_events"] > 10


def test_files_are_read_by_gammapy_with_their_irfs(simulated):
    from gammapy.data import DataStore, Observation

    _, files, truth = simulated
    observation = Observation.read(files[0])
    assert set(observation.available_irfs) == {"aeff", "edisp", "psf", "bkg"}
    assert observation.obs_id == 1
    assert observation.observation_live_time_duration.to_value("s") == pytest.approx(120 * 0.98)
    pointing = observation.get_pointing_icrs(observation.tmid)
    assert pointing.dec.deg == pytest.approx(truth["pointings"][0]["dec"])
    store = DataStore.from_events_files([str(f) for f in files])
    observations = store.get_observations(required_irf="all-optional")
    assert [o.obs_id for o in observations] == [1, 2]
    assert len(observations[1].events.table) == truth["pointings"][1]["n_events"]


def test_event_times_are_sorted_tt_seconds_within_the_gti(simulated):
    _, files, truth = simulated
    t0 = Time(truth["t0"], scale="tt")
    for index, path in enumerate(files):
        header, events = _events(path)
        assert header["TIMESYS"] == "TT" and header["TIMEUNIT"] == "s"
        assert (header["MJDREFI"], header["MJDREFF"]) == (51544, 0.5)
        assert header["DEADC"] == pytest.approx(0.98)
        assert header["LIVETIME"] == pytest.approx(header["ONTIME"] * 0.98)
        assert np.all(np.diff(events["TIME"]) >= 0)
        with fits.open(path) as hdus:
            gti = hdus["GTI"].data
        assert events["TIME"].min() >= gti["START"][0] and events["TIME"].max() <= gti["STOP"][0]
        reference = Time(51544.5, format="mjd", scale="tt")
        start_after_t0 = (reference + gti["START"][0] * u.s - t0).to_value("s")
        assert start_after_t0 == pytest.approx(120.0 * index, abs=1e-4)


def _source_seconds_after_t0(files, truth):
    reference = Time(51544.5, format="mjd", scale="tt")
    offset = (reference - Time(truth["t0"], scale="tt")).to_value("s")
    elapsed = []
    for path in files:
        _, events = _events(path)
        source = events["MC_ID"] > 0
        elapsed.append(events["TIME"][source] + offset)
    return np.concatenate(elapsed)


def test_source_event_times_follow_the_decay_ks(simulated):
    """gammapy's event sampler draws source times from the model: KS against the analytic CDF."""
    _, files, truth = simulated
    elapsed = _source_seconds_after_t0(files, truth)
    onset, stop, beta = 20.0, 240.0, 1 - 1.4
    assert elapsed.min() >= onset - 1e-4 and elapsed.max() <= stop + 1e-4

    def cdf(x, beta=beta):
        x = np.clip(x, onset, stop)
        return (x**beta - onset**beta) / (stop**beta - onset**beta)

    assert stats.kstest(elapsed, cdf).pvalue > 0.01
    assert stats.kstest(elapsed, lambda x: cdf(x, beta - 0.4)).pvalue < 1e-6


def test_source_events_around_the_true_position(simulated):
    _, files, truth = simulated
    _, events = _events(files[0])
    source = events["MC_ID"] > 0
    np.testing.assert_allclose(events["RA_TRUE"][source], truth["ra"])  # exact, not pixelised
    np.testing.assert_allclose(events["DEC_TRUE"][source], truth["dec"])
    dec_offset = events["DEC"][source] - truth["dec"]
    assert abs(np.median(dec_offset)) < 0.01 and 0.01 < np.std(dec_offset) < 0.2


def test_same_seed_same_events_and_auto_falls_back_to_analytic(simulated, tmp_path, monkeypatch):
    _, files, _ = simulated
    monkeypatch.setenv("RTAFAST_DATA", str(tmp_path))  # no cta-caldb there
    assert find_prod5_irf("south") is None
    again, truth = simulate_grb_observations(tmp_path / "again", **{**SMALL, "irf": "auto"})
    assert truth["irf"] == "analytic"
    for first, second in zip(files, again, strict=True):
        _, events_first = _events(first)
        _, events_second = _events(second)
        for column in ("TIME", "RA", "DEC", "ENERGY", "MC_ID"):
            np.testing.assert_array_equal(events_first[column], events_second[column])


def test_other_seed_other_events(simulated, tmp_path):
    _, files, _ = simulated
    other, _ = simulate_grb_observations(tmp_path, **{**SMALL, "seed": 6, "n_runs": 1})
    _, events_first = _events(files[0])
    _, events_other = _events(other[0])
    assert len(events_first) != len(events_other) or np.any(
        events_first["TIME"] != events_other["TIME"]
    )


def test_prod5_irf_from_the_shared_data(data_dir, tmp_path, monkeypatch):
    from gammapy.data import Observation

    if not (data_dir / "cta-caldb").is_dir():
        pytest.skip(f"no cta-caldb/ in {data_dir}")
    monkeypatch.setenv("RTAFAST_DATA", str(data_dir))
    files, truth = simulate_grb_observations(
        tmp_path, seed=1, duration="1 min", energy_range=("1 TeV", "10 TeV"), width="3 deg"
    )
    assert truth["irf"] == "prod5-south"
    assert truth["irf_file"].endswith(
        "Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz"
    )
    observation = Observation.read(files[0])
    assert set(observation.available_irfs) == {"aeff", "edisp", "psf", "bkg"}  # PSF_3GAUSS too
    assert observation.aeff.meta["INSTRUME"] == "Southern Array"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"duration": "-1 s"}, "duration must be > 0"),
        ({"duration": "5 deg"}, "duration must be a quantity in s"),
        ({"onset": "0 s"}, "onset must be > 0"),
        ({"onset": "3 min"}, "onset .* must be before the end"),
        ({"amplitude": "0 cm-2 s-1 TeV-1"}, "amplitude must be > 0"),
        ({"amplitude": "1e-10"}, "amplitude must be a quantity"),
        ({"alpha": "fast"}, "alpha must be a number"),
        ({"n_runs": 0}, "n_runs must be an integer >= 1"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"irf": "prod6"}, "irf must be one of"),
        ({"pointing_offset": "-0.5 deg"}, "pointing_offset must be >= 0"),
        ({"energy_range": ("10 TeV", "1 TeV")}, "energy_range"),
        ({"t0": "yesterday"}, "t0 must be"),
    ],
)
def test_bad_arguments_are_clear_value_errors(tmp_path, overrides, message):
    arguments = {**SMALL, "n_runs": 1, **overrides}
    with pytest.raises(ValueError, match=message):
        simulate_grb_observations(tmp_path, **arguments)
    assert not list(tmp_path.iterdir())  # nothing written


def test_missing_prod5_is_an_error_when_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("RTAFAST_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="prod5-north.*not found"):
        simulate_grb_observations(tmp_path / "out", **{**SMALL, "irf": "prod5-north"})
