"""Bad input gets a clear error naming the problem; nothing is silently dropped.

Each test is one bad input: a dataset whose maps have other axes or another sky
geometry than its counts, numpy scalars in messages, events outside their bunch's
interval (real H.E.S.S. run 23523 has one), a bad ``$RTAFAST_BACKEND`` or
``$RTAFAST_DATA``, unusable backend objects. The command line's own bad inputs are
in ``test_bench_cli.py``.
"""

import logging
import os
import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time
from gammapy.data import EventList
from gammapy.maps import Map, MapAxis, WcsGeom

import rtafast
from rtafast.simulate import DEMO_POSITION
from rtafast.stream import BunchAccumulator, BunchStats
from rtafast_devtools.reference_data import (
    DATA_ENV_VARIABLE,
    DataNotFoundError,
    find_data_dir,
    hess_crab_dataset,
    missing_data_file,
    point_source_models,
)
from rtafast_kernels import registry as backends
from tests.conftest import host_counts

# -- 1. geometries: axes and WCS are compared, not shapes ---------------------------------


@pytest.fixture
def dataset(simulated):
    """A copy of the simulated dataset (1-10 TeV, 3 bins, 20x20 CAR) with fresh models."""
    copy = simulated.copy(name="sim")
    copy.models = point_source_models(copy, DEMO_POSITION, amplitude="1e-12 cm-2 s-1 TeV-1")
    return copy


def _with_energy_axis(template, axis):
    """``template``'s data on the same sky, with ``axis`` as its energy axis."""
    geom = template.geom.to_image().to_cube([axis])
    return Map.from_geom(geom, data=template.data.copy(), unit=template.unit)


def test_background_with_other_energy_edges_is_an_error(dataset):
    """Same shape, other edges (1-20 TeV instead of 1-10 TeV): not a silent wrong fit."""
    axis = MapAxis.from_energy_bounds(1, 20, 3, unit="TeV")
    dataset.background = _with_energy_axis(dataset.background, axis)
    assert dataset.background.data.shape == dataset.counts.data.shape
    with pytest.raises(
        ValueError,
        match="dataset 'sim': energy axis edges differ: background 1\u201320 TeV, "
        "counts 1\u201310 TeV",
    ):
        rtafast.Fit().run(dataset)


def test_gammapy_fits_the_same_mismatched_background_without_a_word(dataset):
    """For reference: gammapy 2.1 does not check the background's axes, it fits bin by
    bin as if the edges were the counts' (a wrong answer reported as a success).
    rtafast raises instead (test above): a deliberate difference."""
    from gammapy.modeling import Fit as GammapyFit

    axis = MapAxis.from_energy_bounds(1, 20, 3, unit="TeV")
    dataset.background = _with_energy_axis(dataset.background, axis)
    result = GammapyFit().run(dataset)
    assert result.success


def test_background_with_other_interior_edges_names_the_edge(dataset):
    axis = MapAxis.from_bounds(1, 10, 3, unit="TeV", name="energy", interp="lin")
    dataset.background = _with_energy_axis(dataset.background, axis)
    with pytest.raises(
        ValueError, match=r"energy axis edges differ: edge 1 of 4 is 4 TeV in background, 2\.15"
    ):
        rtafast.Fit().run(dataset)


def test_mask_safe_with_other_energy_bins_is_an_error(dataset):
    axis = MapAxis.from_energy_bounds(1, 10, 2, unit="TeV")
    geom = dataset.counts.geom.to_image().to_cube([axis])
    dataset.mask_safe = Map.from_geom(geom, data=True, dtype=bool)
    with pytest.raises(ValueError, match="energy axis has 2 bins in mask_safe .* but 3 in counts"):
        rtafast.Fit().run(dataset)


def test_mask_fit_without_the_energy_axis_is_an_error(dataset):
    dataset.mask_fit = Map.from_geom(dataset.counts.geom.to_image(), data=True, dtype=bool)
    with pytest.raises(
        ValueError, match=r"non-spatial axes differ: mask_fit has \[\], counts has \['energy'\]"
    ):
        rtafast.Fit().run(dataset)


def test_same_edges_in_other_units_are_the_same_axis(dataset):
    """1000-10000 GeV is the counts' 1-10 TeV: no error."""
    axis = MapAxis.from_energy_bounds(1e3, 1e4, 3, unit="GeV")
    dataset.mask_safe = _with_energy_axis(dataset.mask_safe, axis)
    assert rtafast.Fit().run(dataset).success


def test_background_on_another_sky_is_an_error(dataset):
    geom = dataset.counts.geom
    shifted = WcsGeom.create(
        skydir=(83.7, 22.014), binsz=0.05, width=1.0, frame="icrs", proj="CAR", axes=geom.axes
    )
    assert shifted.data_shape == geom.data_shape
    dataset.background = Map.from_geom(shifted, data=dataset.background.data.copy())
    with pytest.raises(
        ValueError, match=r"background sky geometry differs: background .* centre \(83\.7, 22"
    ):
        rtafast.Fit().run(dataset)


def test_exposure_on_another_sky_is_an_error(dataset):
    """Exposure is in true energy: only its sky part is compared, and it is."""
    exposure = dataset.exposure
    other = WcsGeom.create(
        skydir=DEMO_POSITION,
        binsz=0.05,
        width=1.0,
        frame="galactic",
        proj="CAR",
        axes=exposure.geom.axes,
    )
    dataset.exposure = Map.from_geom(other, data=exposure.data.copy(), unit=exposure.unit)
    with pytest.raises(ValueError, match="exposure sky geometry differs: exposure .* galactic"):
        rtafast.Fit().run(dataset)


# -- 2. messages print plain numbers, not numpy reprs -------------------------------------


def test_shape_messages_print_plain_ints(dataset):
    small = dataset.background.geom.downsample(2)
    dataset.background = Map.from_geom(small, data=np.ones(small.data_shape))
    with pytest.raises(ValueError) as error:
        rtafast.Fit().run(dataset)
    message = str(error.value)
    assert "background map has shape (3, 10, 10) but counts has (3, 20, 20)" in message
    assert "np." not in message and "int64" not in message


def test_numpy_integer_windows_are_ints(simulated):
    geom = simulated.counts.geom
    with pytest.raises(ValueError, match="^a window of 0 bunches is empty$"):
        BunchAccumulator(geom, window=np.int64(0))
    assert BunchAccumulator(geom, window=np.int64(3)).window == 3
    with pytest.raises(TypeError, match="got bool True"):
        BunchAccumulator(geom, window=True)
    with pytest.raises(ValueError, match="must be a duration"):
        BunchAccumulator(geom, window=3 * u.m)


# -- 3. events outside their bunch's interval: skipped, counted, one warning --------------

ENERGY = MapAxis.from_energy_bounds(0.5, 50, 4, unit="TeV")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.3, 100, 8, unit="TeV", name="energy_true")
T0 = Time("2026-01-01T00:00:00", scale="tt")


def _events(times_s):
    n = len(times_s)
    table = Table({"RA": np.full(n, 83.6), "DEC": np.full(n, 22.0), "ENERGY": np.full(n, 2.0)})
    table["TIME"] = T0 + np.asarray(times_s) * u.s
    table["RA"].unit, table["DEC"].unit, table["ENERGY"].unit = "deg", "deg", "TeV"
    return EventList(table)


def test_events_outside_the_bunch_are_skipped_counted_and_logged(simulated_observation, caplog):
    geom = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, width=2, axes=[ENERGY])
    accumulator = BunchAccumulator(geom, ENERGY_TRUE, window=30 * u.s)
    events = _events([-0.5, 1.0, 2.0, 10.0, 12.0])  # 1 before, 2 at or after the stop
    with caplog.at_level(logging.WARNING, logger="rtafast.stream"):
        stats = accumulator.add(events, simulated_observation, (T0, T0 + 10 * u.s))
    assert isinstance(stats, BunchStats)
    assert (stats.n_events, stats.n_outside_interval, stats.n_counted) == (5, 3, 2)
    assert stats.n_counted + stats.n_outside + stats.n_invalid + stats.n_outside_interval == 5
    assert accumulator.counts_cube.sum() == 2
    (record,) = [r for r in caplog.records if r.name == "rtafast.stream"]
    assert "\n" not in record.getMessage()
    assert "3 event(s) of the bunch" in record.getMessage()
    assert "(1 before, 2 at or after its end) and were skipped" in record.getMessage()
    # the totals keep them too
    accumulator.add(_events([15.0, 25.0]), simulated_observation, (T0 + 10 * u.s, T0 + 20 * u.s))
    assert (accumulator.stats.n_events, accumulator.stats.n_outside_interval) == (7, 4)
    assert accumulator.stats.n_counted == 3 == accumulator.counts_cube.sum()


def test_bunch_inside_its_interval_logs_nothing(simulated_observation, caplog):
    geom = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, width=2, axes=[ENERGY])
    accumulator = BunchAccumulator(geom, ENERGY_TRUE)
    with caplog.at_level(logging.WARNING, logger="rtafast.stream"):
        stats = accumulator.add(_events([0.0, 9.999]), simulated_observation, (T0, T0 + 10 * u.s))
    assert stats.n_outside_interval == 0 and stats.n_counted == 2
    assert not [r for r in caplog.records if r.name == "rtafast.stream"]


@pytest.mark.data
def test_hess_run_23523_as_one_bunch_with_its_gti(hess_datastore, caplog):
    """Run 23523 has one event 6 ms after its GTI stop: the run added as one bunch with
    its own GTI skips and counts it, and the counts are gammapy's of the GTI's events."""
    observation = hess_datastore.obs(23523)
    start, stop = observation.gti.time_start[0], observation.gti.time_stop[0]
    events = observation.events
    geom = WcsGeom.create(
        skydir=observation.get_pointing_icrs(observation.tmid), binsz=0.05, width=3, axes=[ENERGY]
    )
    accumulator = BunchAccumulator(geom, ENERGY_TRUE)
    with caplog.at_level(logging.WARNING, logger="rtafast.stream"):
        stats = accumulator.add(events, observation, (start, stop))
    assert stats.n_outside_interval == 1
    assert stats.n_events == len(events.table)
    assert (
        stats.n_counted + stats.n_outside + stats.n_invalid + stats.n_outside_interval
        == stats.n_events
    )
    messages = [r.getMessage() for r in caplog.records if r.name == "rtafast.stream"]
    assert len(messages) == 1 and "1 event(s) of the bunch" in messages[0]
    assert "observation 23523" in messages[0]
    expected = Map.from_geom(geom)
    expected.fill_events(events.select_time(Time([start, stop])))
    np.testing.assert_array_equal(host_counts(accumulator), expected.data)
    assert accumulator.dataset().gti.time_sum.to_value("s") == pytest.approx(
        (stop - start).to_value("s")
    )


# -- 4. a bad $RTAFAST_BACKEND fails at once, naming the variable and the valid values ----


def test_bogus_backend_environment_variable(monkeypatch):
    monkeypatch.setenv("RTAFAST_BACKEND", "bogus")
    expected = (
        r"unknown rtafast backend 'bogus' \(from \$RTAFAST_BACKEND\); "
        r"choose one of 'auto', 'numpy', 'numba', 'cuda'"
    )
    with pytest.raises(ValueError, match=expected):
        rtafast.resolve_backend(None)
    with pytest.raises(ValueError, match=expected):
        backends.environment_backend_name()
    with pytest.raises(ValueError, match=expected):
        backends.default_backend_name()
    # an explicit name does not read the variable
    assert rtafast.resolve_backend("numpy").name == "numpy"


def test_empty_backend_environment_variable_means_auto(monkeypatch):
    monkeypatch.setenv("RTAFAST_BACKEND", " ")
    assert backends.environment_backend_name() == "auto"
    assert rtafast.resolve_backend(None) is rtafast.resolve_backend("auto")
    monkeypatch.setenv("RTAFAST_BACKEND", "NumPy")
    assert backends.default_backend_name() == "numpy"


def test_backend_argument_that_is_no_backend():
    with pytest.raises(ValueError, match=r"unknown rtafast backend 'gpu' \(from argument array_"):
        rtafast.resolve_backend("gpu")
    with pytest.raises(TypeError, match="array_backend must be None, a backend name .* got int"):
        rtafast.resolve_backend(3)
    numba = rtafast.resolve_backend("numba")
    assert rtafast.resolve_backend(numba) is numba


def test_cli_info_with_bogus_backend_variable_fails_at_once():
    env = {**os.environ, "RTAFAST_BACKEND": "bogus"}
    completed = subprocess.run(
        [sys.executable, "-m", "rtafast.cli", "info"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""  # no "auto picks: numba"
    assert completed.stderr.splitlines() == [
        "rtafast: error: unknown rtafast backend 'bogus' (from $RTAFAST_BACKEND); "
        "choose one of 'auto', 'numpy', 'numba', 'cuda'"
    ]


# -- 5. a bad $RTAFAST_DATA is an error naming it, never a silent fall-back --------------


def test_rtafast_data_that_does_not_exist(monkeypatch, tmp_path):
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv(DATA_ENV_VARIABLE, str(missing))
    with pytest.raises(
        DataNotFoundError, match=rf"\$RTAFAST_DATA is set to {missing}, which does not exist"
    ):
        find_data_dir()
    with pytest.raises(DataNotFoundError, match=r"\$RTAFAST_DATA is set to"):
        find_data_dir("hess-dl3-dr1")


def test_rtafast_data_without_the_required_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV_VARIABLE, str(tmp_path))
    assert find_data_dir() == tmp_path
    with pytest.raises(DataNotFoundError, match="which has no hess-dl3-dr1/ folder"):
        find_data_dir("hess-dl3-dr1")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(DATA_ENV_VARIABLE, str(tmp_path / "file"))
    with pytest.raises(DataNotFoundError, match="which is not a folder"):
        find_data_dir()


def test_absent_file_of_a_partial_data_folder_is_named(monkeypatch, tmp_path):
    """What the root conftest reports as a skip: an absent file under the data folder
    (a partial copy), not an absent file elsewhere, a present one or another error."""
    monkeypatch.setenv(DATA_ENV_VARIABLE, str(tmp_path))
    monkeypatch.delenv("GAMMAPY_DATA", raising=False)
    absent = tmp_path / "cta-1dc" / "index" / "hdu-index.fits.gz"
    assert missing_data_file(FileNotFoundError(2, "No such file", str(absent))) == str(absent)
    assert missing_data_file(OSError(f"File not found: {absent}")) == str(absent)
    (tmp_path / "present.fits").write_text("")
    assert missing_data_file(FileNotFoundError(2, "x", str(tmp_path / "present.fits"))) is None
    elsewhere = tmp_path.parent / "not-data" / "file.fits"
    assert missing_data_file(FileNotFoundError(2, "x", str(elsewhere))) is None
    assert missing_data_file(ValueError(f"File not found: {absent}")) is None
    monkeypatch.setenv("GAMMAPY_DATA", str(tmp_path.parent / "not-data"))
    assert missing_data_file(FileNotFoundError(2, "x", str(elsewhere))) == str(elsewhere)


def test_reference_dataset_from_a_folder_without_the_data(tmp_path):
    with pytest.raises(DataNotFoundError, match=f"data folder {tmp_path} has no hess-dl3-dr1/"):
        hess_crab_dataset(tmp_path)
