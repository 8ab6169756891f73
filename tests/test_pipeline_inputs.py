"""The pipeline's input: observations read and checked, bunches cut, a directory watched.

References are gammapy's own selections (``select_energy``, ``select_time``,
``select_offset``) on the same observations. Real data: the 15 H.E.S.S. runs of the
PKS 2155-304 flare replayed as 10 s bunches (skipped without ``../shared/data``). Every
other test writes small DL3 files (EVENTS + GTI; the package's analytic IRFs in a separate
IRF file, written once) into ``tmp_path``. Bad input (one line naming the problem) is
tested in ``tests/test_pipeline_inputs_bad.py``; the helpers are in
``tests/pipeline_input_helpers.py``.
"""

import logging
import shutil
import threading
import time

import astropy.units as u
import numpy as np
import pytest
from gammapy.data import DataStore, Observation

from rtafast.pipeline.inputs import (
    Bunch,
    InputError,
    InputStats,
    iter_bunches,
    open_observations,
    watch_bunches,
)
from rtafast.pipeline.watch import DirectoryPoller
from tests.pipeline_input_helpers import (
    ENERGY_RANGE,
    REFERENCE,
    analytic_irf_hdus,
    bunch_intervals,
    event_seconds,
    file_config,
    gammapy_selection,
    make_config,
    random_events,
    seconds_since_reference,
    union_of_bunches,
    write_events_file,
    write_irf_file,
)

PKS_RUNS = list(range(33787, 33802))


@pytest.fixture(scope="module")
def irf_file(tmp_path_factory):
    return write_irf_file(tmp_path_factory.mktemp("irf") / "irf.fits", analytic_irf_hdus())


# -- real data: the PKS 2155-304 flare as 10 s bunches -------------------------------------


@pytest.fixture(scope="module")
def pks_replay(hess_dir):
    config = make_config(
        f"input.datastore={hess_dir}", f"input.obs_ids={PKS_RUNS}", "stream.bunch=10 s"
    )
    stats = InputStats()
    bunches = list(iter_bunches(config, stats))
    by_run = {}
    for bunch in bunches:
        by_run.setdefault(bunch.runid, []).append(bunch)
    return stats, bunches, by_run


def test_pks_union_of_bunches_is_gammapy_selection(pks_replay):
    stats, bunches, by_run = pks_replay
    assert sorted(by_run) == PKS_RUNS
    total = 0
    for runid, run in by_run.items():
        reference = gammapy_selection(run[0].observation)
        union = union_of_bunches(run)
        assert union.size == reference.size, runid
        np.testing.assert_array_equal(union, np.sort(reference))
        total += reference.size
    assert stats.n_events_in_bunches == total > 20000


def test_pks_bunches_contiguous_in_order_within_gtis(pks_replay):
    _, bunches, by_run = pks_replay
    for run in by_run.values():
        gti = run[0].observation.gti
        assert len(gti.table) == 1  # the H.E.S.S. runs: one GTI interval each
        assert abs((run[0].start - gti.time_start[0]).to_value("s")) < 1e-6
        assert abs((run[-1].stop - gti.time_stop[-1]).to_value("s")) < 1e-6
        durations = np.array([b.duration.to_value("s") for b in run])
        np.testing.assert_allclose(durations[:-1], 10.0, atol=1e-6)
        assert 0 < durations[-1] <= 10.0 + 1e-6
        for before, after in zip(run, run[1:], strict=False):
            assert (after.start - before.stop).to_value("s") == 0.0
    for before, after in zip(bunches, bunches[1:], strict=False):
        assert after.start >= before.stop
    for bunch in bunches[::7]:
        times = bunch.events.time
        if len(times):
            assert np.all(times[:-1] <= times[1:])
            assert (times[0] >= bunch.start) and (times[-1] < bunch.stop)
            assert bunch.last_event_time == times[-1]
        else:
            assert bunch.last_event_time is None


def test_pks_bunch_counts_match_gammapy_select_time(pks_replay):
    _, bunches, _ = pks_replay
    for bunch in bunches[::40]:
        selected = bunch.observation.events.select_energy(ENERGY_RANGE)
        reference = selected.select_time((bunch.start, bunch.stop))
        assert len(bunch.events.table) == len(reference.table)


def test_pks_bunch_columns_native_with_the_files_values(pks_replay):
    """The input byte-swaps the FITS columns once per observation: every bunch hands its
    consumers native arrays (no per-bunch copy) with the file's values and units."""
    _, bunches, _ = pks_replay
    checked = 0
    for bunch in bunches[::25]:
        table = bunch.events.table
        if not len(table):
            continue
        original = bunch.observation.events.table
        first = original["TIME"][0]
        rows = np.searchsorted(
            (original["TIME"] - first).to_value("s"), (table["TIME"] - first).to_value("s")
        )
        for name in ("RA", "DEC", "ENERGY"):
            assert original[name].dtype.byteorder == ">", name  # as read: big-endian
            assert table[name].dtype.isnative, name
            assert table[name].dtype.itemsize == original[name].dtype.itemsize, name
            assert table[name].unit == original[name].unit, name
            np.testing.assert_array_equal(np.asarray(table[name]), np.asarray(original[name])[rows])
        checked += 1
    assert checked > 10


def test_native_byte_order_keeps_masks_units_and_mixins():
    from astropy.table import MaskedColumn, Table
    from astropy.time import Time

    from rtafast.pipeline.inputs import native_byte_order

    table = Table(
        {
            "ENERGY": MaskedColumn(np.arange(4, dtype=">f4"), mask=[0, 1, 0, 0], unit="TeV"),
            "EVENT_ID": np.arange(4, dtype=">i8"),
            "TIME": Time(55000 + np.arange(4), format="mjd"),
        }
    )
    native = native_byte_order(table)
    assert native["ENERGY"].dtype == np.float32 and native["ENERGY"].dtype.isnative
    assert isinstance(native["ENERGY"], MaskedColumn) and native["ENERGY"].unit == "TeV"
    np.testing.assert_array_equal(native["ENERGY"].mask, [False, True, False, False])
    assert native["EVENT_ID"].dtype == np.int64 and native["EVENT_ID"].dtype.isnative
    np.testing.assert_array_equal(native["EVENT_ID"], np.arange(4))
    assert isinstance(native["TIME"], Time)


def test_pks_every_event_accounted_for(pks_replay):
    stats, bunches, by_run = pks_replay
    n_read = sum(len(run[0].observation.events.table) for run in by_run.values())
    n_selected = sum(
        len(run[0].observation.events.select_energy(ENERGY_RANGE).table) for run in by_run.values()
    )
    assert stats.n_events_read == n_read
    assert stats.n_events_selected == n_selected
    assert stats.n_duplicates == stats.n_unsorted == stats.n_outside_time_range == 0
    assert stats.n_events_selected == stats.n_events_in_bunches + stats.n_outside_gti
    assert stats.n_outside_gti > 0  # the real runs have a few events just past their GTI
    assert stats.n_bunches == len(bunches) and stats.n_observations == len(PKS_RUNS)
    assert stats.n_empty_bunches == sum(len(b.events.table) == 0 for b in bunches)
    assert "15 observation(s)" in stats.summary() and "\n" not in stats.summary()


# -- bunch intervals: GTI gaps, trigger, start delay, time range ------------------------------


def test_bunches_never_span_a_gti_gap(events_file, irf_file):
    config = file_config([events_file], irf_file, "stream.bunch=15 s")
    stats = InputStats()
    bunches = list(iter_bunches(config, stats))
    assert bunch_intervals(bunches) == [
        (0, 15), (15, 30), (30, 45), (45, 50), (60, 75), (75, 90), (90, 100)
    ]  # fmt: skip
    observation = Observation.read(events_file, irf_file=irf_file)
    reference = gammapy_selection(observation)
    np.testing.assert_array_equal(union_of_bunches(bunches), reference)
    in_gap = seconds_since_reference(observation.events.select_energy(ENERGY_RANGE).time)
    assert stats.n_outside_gti == np.count_nonzero((in_gap >= 50) & (in_gap < 60)) > 0
    for bunch in bunches:
        assert isinstance(bunch, Bunch) and bunch.runid == 1
        assert bunch.start.scale == bunch.stop.scale == "tt"


def test_trigger_delay_and_time_range_cut_the_bunches(events_file, irf_file):
    trigger = (REFERENCE + 5 * u.s).isot
    config = file_config(
        [events_file],
        irf_file,
        f"stream.trigger_time='{trigger}'",
        "stream.start_delay=10 s",
        "selection.time_stop=80 s",
        "stream.bunch=10 s",
    )
    stats = InputStats()
    bunches = list(iter_bunches(config, stats))
    assert bunch_intervals(bunches) == [
        (15, 25), (25, 35), (35, 45), (45, 50), (60, 70), (70, 80), (80, 85)
    ]  # fmt: skip
    events = Observation.read(events_file, irf_file=irf_file).events.select_energy(ENERGY_RANGE)
    selected = seconds_since_reference(events.time)
    in_gti = ((selected >= 0) & (selected < 50)) | ((selected >= 60) & (selected < 100))
    in_range = (selected >= 15) & (selected < 85)
    assert stats.n_events_in_bunches == np.count_nonzero(in_gti & in_range)
    assert stats.n_outside_time_range == np.count_nonzero(in_gti & ~in_range) > 0


def test_time_start_and_default_trigger(events_file, irf_file):
    config = file_config([events_file], irf_file, "selection.time_start=42 s", "stream.bunch=20 s")
    assert bunch_intervals(iter_bunches(config)) == [(42, 50), (60, 80), (80, 100)]


def test_a_time_range_outside_every_observation_is_an_error(events_file, irf_file):
    config = file_config([events_file], irf_file, "stream.start_delay=200 s")
    stats = InputStats()
    with pytest.raises(InputError, match="no bunch to analyse: the analysis range starting"):
        list(iter_bunches(config, stats))
    assert stats.n_events_selected == stats.n_outside_time_range + stats.n_outside_gti > 0


def test_roi_radius_matches_gammapy_select_offset(events_file, irf_file):
    config = file_config([events_file], irf_file, "selection.roi_radius=0.6 deg")
    bunches = list(iter_bunches(config))
    observation = Observation.read(events_file, irf_file=irf_file)
    events = observation.events.select_energy(ENERGY_RANGE).select_offset([0, 0.6] * u.deg)
    gti = observation.gti
    parts = [events.select_time(pair) for pair in zip(gti.time_start, gti.time_stop, strict=True)]
    reference = np.concatenate([event_seconds(p) for p in parts])
    assert 0 < reference.size < len(gammapy_selection(observation))
    np.testing.assert_array_equal(union_of_bunches(bunches), reference)


def test_several_files_in_time_order_and_as_a_datastore(tmp_path, irf_file):
    late = write_events_file(
        tmp_path / "late.fits", random_events(start=200, stop=300), ((200, 300),), 2
    )
    early = write_events_file(tmp_path / "early.fits", random_events(seed=3), obs_id=1)
    config = file_config([late, early], irf_file, "stream.bunch=25 s")
    bunches = list(iter_bunches(config))
    assert [b.runid for b in bunches] == [1] * 4 + [2] * 4
    assert bunch_intervals(bunches)[3:5] == [(75, 100), (200, 225)]

    store = DataStore.from_events_files([early, late], irfs_paths=[irf_file, irf_file])
    psf = store.hdu_table["HDU_TYPE"] == "psf"  # gammapy's index maker assumes CTA 1DC's PSF
    store.hdu_table["HDU_CLASS"][psf] = "psf_table"
    store.hdu_table["HDU_NAME"][psf] = "PSF_2D_TABLE"
    store.hdu_table.write(tmp_path / "hdu-index.fits.gz")
    store.obs_table.write(tmp_path / "obs-index.fits.gz")
    from_store = list(iter_bunches(make_config(f"input.datastore={tmp_path}", "stream.bunch=25 s")))
    assert bunch_intervals(from_store) == bunch_intervals(bunches)
    np.testing.assert_array_equal(union_of_bunches(from_store), union_of_bunches(bunches))
    caldb = make_config(f"input.datastore={tmp_path}", f"input.irf_file={irf_file}")
    replaced = open_observations(caldb)  # one IRF file read once, for every run
    assert [o.obs_id for o in replaced] == [1, 2] and replaced[0].psf is replaced[1].psf

    late.unlink()  # all runs of the index: the one without its file is skipped and counted
    stats = InputStats()
    observations = open_observations(make_config(f"input.datastore={tmp_path}"), stats)
    assert [o.obs_id for o in observations] == [1]
    assert stats.n_skipped == 1 and "observation 2: file(s) not found" in stats.skipped[0]
    with pytest.raises(InputError, match=r"observation 2: file\(s\) not found: .*late.fits"):
        open_observations(make_config(f"input.datastore={tmp_path}", "input.obs_ids=[1, 2]"))


# -- unsorted and duplicated events ----------------------------------------------------------


def test_unsorted_and_duplicated_events_are_sorted_dropped_and_counted(tmp_path, irf_file, caplog):
    columns = random_events(n=100)
    columns["ENERGY"] = np.full(100, 2.0)  # all selected
    order = np.arange(100)
    order[[10, 11, 12, 40]] = order[[12, 10, 11, 41]]  # 12 moved early, 41 listed twice
    order[41] = 40
    columns = {k: v[order] for k, v in columns.items()}
    # three exact copies of rows 5, 70, 70, and a same-time row that differs in RA
    rows = [5, 70, 70, 30]
    extra = {k: v[rows].copy() for k, v in columns.items()}
    extra["RA"][3] += 0.01
    columns = {k: np.concatenate([v, extra[k]]) for k, v in columns.items()}
    path = write_events_file(tmp_path / "messy.fits", columns)
    stats = InputStats()
    with caplog.at_level(logging.WARNING, logger="rtafast.pipeline.inputs"):
        bunches = list(iter_bunches(file_config([path], irf_file), stats))
    times = np.concatenate([event_seconds(b.events) for b in bunches])
    # out of order: rows 10 and 11 (after 12), 40 (after 41), and the four appended rows
    assert stats.n_unsorted == 7
    assert stats.n_duplicates == 3
    assert times.size == 101 and np.all(np.diff(times) >= 0)
    assert stats.n_events_read == 104 and stats.n_events_in_bunches == 101
    messages = [r.getMessage() for r in caplog.records]
    assert sum("out of time order" in m for m in messages) == 1
    assert sum("duplicate event row(s)" in m for m in messages) == 1


# -- real-time mode: a watched directory -----------------------------------------------------


def test_poller_waits_until_a_file_stops_growing(tmp_path):
    poller = DirectoryPoller(tmp_path, "*.fits*")
    path = tmp_path / "run.fits"
    path.write_bytes(b"x" * 2880)
    assert poller.poll() == []  # first seen
    with path.open("ab") as stream:
        stream.write(b"y" * 2880)  # still being copied
    assert poller.poll() == []
    assert poller.poll() == [path]  # unchanged across two polls
    assert poller.poll() == []  # taken once
    (tmp_path / "notes.txt").write_text("not matching")
    assert poller.poll() == poller.poll() == []


def test_watch_reads_present_then_landing_files_skips_bad_ones_and_stops_when_idle(
    tmp_path, irf_file
):
    watched, staging = tmp_path / "watched", tmp_path / "staging"
    watched.mkdir()
    staging.mkdir()
    (watched / "a_bad.fits").write_text("not FITS")
    write_events_file(
        watched / "b_run.fits", random_events(start=1000, stop=1030), ((1000, 1030),), 1
    )
    write_events_file(watched / "c_early.fits", random_events(stop=30), ((0, 30),), 9)  # before b
    landing = write_events_file(
        staging / "d_run.fits", random_events(start=2000, stop=2020), ((2000, 2020),), 2
    )
    config = make_config(
        f"input.watch={watched}",
        f"input.irf_file={irf_file}",
        "input.watch_idle_timeout=2 s",
        "stream.bunch=10 s",
    )

    def copy_in():
        time.sleep(0.3)
        shutil.copy(landing, watched / "d_run.fits")

    copier = threading.Thread(target=copy_in)
    stats = InputStats()
    started = time.monotonic()
    copier.start()
    bunches = list(watch_bunches(config, stats, poll_interval=0.05))
    copier.join()
    assert time.monotonic() - started < 10
    assert [b.runid for b in bunches] == [1, 1, 1, 2, 2]
    assert bunch_intervals(bunches)[2:4] == [(1020, 1030), (2000, 2010)]
    assert stats.n_files == 2 and stats.n_skipped == 2
    assert "a_bad.fits: unreadable or truncated FITS file" in stats.skipped[0]
    assert "c_early.fits starts at" in stats.skipped[1] and "time order" in stats.skipped[1]


def test_watch_stops_on_request(tmp_path):
    config = make_config(f"input.watch={tmp_path}", "input.watch_idle_timeout=60 s")
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    started = time.monotonic()
    timer.start()
    assert list(watch_bunches(config, poll_interval=0.05, stop=stop)) == []
    assert time.monotonic() - started < 5


def test_watch_directory_must_exist(tmp_path):
    config = make_config(f"input.watch={tmp_path / 'absent'}")
    with pytest.raises(InputError, match="input.watch: .*absent: not a directory"):
        next(watch_bunches(config))
