"""The pipeline's latency profile: stage timing, statistics, RTA-SCI mapping and files."""

import csv
import json
import sys
import time
import tracemalloc

import numpy as np
import pytest

import rtafast.pipeline.latency as latency
from rtafast.pipeline.latency import RTASCI_STAGES, STAGE_TO_RTASCI, STAGES, LatencyProfile


class FakeClock:
    """A ``perf_counter`` stand-in that only moves when told (dyadic steps: exact sums)."""

    def __init__(self):
        self.now = 1024.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(latency, "perf_counter", fake)
    return fake


def _step(k):
    """k / 1024 s: exactly representable, so differences of clock readings are exact."""
    return k / 1024


def _replay(profile, clock, durations, alerts=None, meta=None):
    """One window per row of ``durations`` (seconds per stage; NaN: the stage does not run)."""
    for index, row in enumerate(durations):
        with profile.window(index, meta=None if meta is None else meta[index]) as w:
            for stage, seconds in zip(STAGES, row, strict=True):
                if np.isnan(seconds):
                    continue
                with w.stage(stage):
                    clock.advance(seconds)
            for seconds in (alerts or {}).get(index, ()):
                w.time_to_alert(seconds)


@pytest.fixture
def synthetic(clock):
    """20 windows with random dyadic stage times; localise/fit/photometry in 1 of 3; the
    time-aware stages never (a run with a map method)."""
    rng = np.random.default_rng(3)
    ran = [s for s in STAGES if s not in ("lima_time", "cusum", "lift")]
    durations = np.full((20, len(STAGES)), np.nan)
    durations[:, [STAGES.index(s) for s in ran]] = _step(
        rng.integers(1, 4000, size=(20, len(ran)))
    )
    sometimes = [STAGES.index(s) for s in ("localise", "fit", "photometry")]
    for slot in sometimes:
        durations[np.arange(20) % 3 != 0, slot] = np.nan
    alerts = {0: [_step(30)], 3: [_step(40), _step(25 * 1024)], 9: [_step(7)]}
    profile = LatencyProfile(budget_s=20.0)
    _replay(profile, clock, durations, alerts)
    return profile, durations, alerts


def _expected_stats(seconds):
    ms = 1e3 * np.percentile(seconds, [50, 95, 99])
    return {
        "n": len(seconds),
        "p50_ms": ms[0],
        "p95_ms": ms[1],
        "p99_ms": ms[2],
        "max_ms": 1e3 * np.max(seconds),
        "mean_ms": 1e3 * np.mean(seconds),
    }


def _assert_stats(stats, seconds):
    expected = _expected_stats(np.asarray(seconds))
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_stage_percentiles_are_numpys(synthetic):
    profile, durations, _ = synthetic
    summary = profile.summary()
    assert summary["n_windows"] == 20
    for slot, stage in enumerate(STAGES):
        ran = ~np.isnan(durations[:, slot])
        stats = summary["stages"][stage]
        assert stats["rtasci"] == STAGE_TO_RTASCI[stage]
        assert stats["calls"] == ran.sum()
        if not ran.any():  # a stage that never ran: no figures
            assert stats["n"] == 0 and stats["p50_ms"] is None and stats["max_ms"] is None
            continue
        _assert_stats(stats, durations[ran, slot])
        np.testing.assert_array_equal(profile.stage_seconds(stage), durations[ran, slot])
    # no untimed code in the synthetic windows: total = the sum of the stages
    _assert_stats(summary["total"], np.nansum(durations, axis=1))
    assert summary["untimed"]["max_ms"] == 0


def test_rtasci_groups_sum_their_stages(synthetic):
    profile, durations, _ = synthetic
    profile.setup(_step(2048))
    rtasci = profile.summary()["rtasci"]
    assert list(rtasci) == list(RTASCI_STAGES)
    for name, parts in RTASCI_STAGES.items():
        assert rtasci[name]["parts"] == list(parts)
        if name == "setup":
            _assert_stats(rtasci[name], [2.0])
        elif name == "total":
            _assert_stats(rtasci[name], np.nansum(durations, axis=1))
        else:
            slots = [STAGES.index(s) for s in parts]
            group = durations[:, slots]
            ran = ~np.isnan(group).all(axis=1)
            _assert_stats(rtasci[name], np.nansum(group[ran], axis=1))
    assert RTASCI_STAGES["data reduction"] == ("read", "select", "accumulate")
    assert STAGE_TO_RTASCI["write"] is None


def test_time_to_alert_keeps_every_value_and_budget(synthetic):
    profile, durations, alerts = synthetic
    summary = profile.summary()
    every = [s for index in sorted(alerts) for s in alerts[index]]
    np.testing.assert_array_equal(profile.time_to_alert_seconds(), every)
    _assert_stats(summary["time_to_alert"], every)
    assert summary["time_to_alert"]["n_windows"] == 3
    # window 3 has a 25 s alert: the only one over the 20 s budget (all totals are < 20 s)
    assert np.nansum(durations, axis=1).max() < 20
    assert summary["over_budget"] == {"n": 1, "fraction": 1 / 20}


def test_window_without_alert_over_budget_by_its_total(clock):
    profile = LatencyProfile(budget_s=1.0)
    with profile.window(0) as w, w.stage("detect"):
        clock.advance(2.0)
    with profile.window(1) as w:
        with w.stage("detect"):
            clock.advance(2.0)
        w.time_to_alert(0.5)  # its alert came in time: the window is within budget
    assert profile.summary()["over_budget"] == {"n": 1, "fraction": 0.5}


def test_nested_stages_are_exclusive_and_repeats_add_up(clock):
    profile = LatencyProfile()
    with profile.window(7) as w:
        clock.advance(0.25)  # untimed
        with w.stage("detect"):
            clock.advance(1.0)
            with w.stage("localise"):
                clock.advance(0.5)
                with w.stage("localise"):  # the same stage nested: counted once
                    clock.advance(0.125)
            clock.advance(2.0)
        for _ in range(3):  # one fit per candidate
            with w.stage("fit"):
                clock.advance(0.0625)
        w.add("read", 4.0)  # measured before the window opened
    stages = profile.summary()["stages"]
    assert stages["detect"]["max_ms"] == 3000.0
    assert stages["localise"]["max_ms"] == 625.0
    assert stages["localise"]["calls"] == 2
    assert stages["fit"]["max_ms"] == 187.5
    assert stages["fit"]["calls"] == 3
    assert stages["read"]["max_ms"] == 4000.0
    assert stages["select"]["n"] == 0 and stages["select"]["p50_ms"] is None
    summary = profile.summary()
    assert summary["total"]["max_ms"] == 250 + 3000 + 625 + 187.5 + 4000
    assert summary["untimed"]["max_ms"] == 250


def test_window_recorded_when_its_code_raises(clock):
    profile = LatencyProfile()
    with pytest.raises(ZeroDivisionError), profile.window(0) as w, w.stage("fit"):
        clock.advance(0.5)
        1 / 0  # noqa: B018
    assert profile.n_windows == 1
    assert profile.summary()["stages"]["fit"]["max_ms"] == 500
    with profile.window(1) as w:  # the profile is usable again
        pass
    assert profile.n_windows == 2


@pytest.mark.parametrize("name", ["detection", "Detect", "", None, "setup", "total"])
def test_unknown_stage_rejected(name):
    profile = LatencyProfile()
    with profile.window(0) as w:
        with pytest.raises(ValueError, match=r"unknown stage \(allowed: read, select"):
            w.stage(name)
        with pytest.raises(ValueError, match="unknown stage"):
            w.add(name, 1.0)
    with pytest.raises(ValueError, match="unknown stage"):
        profile.stage_seconds(name)


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf"), "abc", None])
def test_bad_seconds_rejected(seconds):
    profile = LatencyProfile()
    with profile.window(3) as w:
        with pytest.raises(ValueError, match="time_to_alert of window 3: expected a finite"):
            w.time_to_alert(seconds)
        with pytest.raises(ValueError, match="'read' of window 3: expected a finite"):
            w.add("read", seconds)
    with pytest.raises(ValueError, match="latency setup: expected a finite"):
        profile.setup(seconds)
    with pytest.raises(ValueError, match="latency budget_s"):
        LatencyProfile(budget_s=seconds)
    assert profile.summary()["time_to_alert"]["n"] == 0


def test_misuse_rejected():
    profile = LatencyProfile()
    with pytest.raises(ValueError, match="budget_s: expected seconds > 0"):
        LatencyProfile(budget_s=0)
    with profile.window(0) as w:
        with pytest.raises(RuntimeError, match="window 0 is still open"):
            profile.window(1)
    with pytest.raises(RuntimeError, match="window 0 is not open"):
        w.stage("read")
    with pytest.raises(ValueError, match=r"meta 'runid': expected a number or a string, got list"):
        profile.window(1, meta={"runid": [1, 2]})
    with profile.window(1, meta={"kind": "sliding"}):
        pass
    with pytest.raises(ValueError, match="meta 'kind': a number after strings"):
        profile.window(2, meta={"kind": 3})
    assert profile.n_windows == 2


def test_setup_time(clock):
    profile = LatencyProfile()
    with profile.stage_setup():
        clock.advance(1.5)
    profile.setup(0.25)
    setup = profile.summary()["setup"]
    assert setup == {"n": 2, "total_ms": 1750.0}
    line = next(line for line in profile.table().splitlines() if line.startswith("setup"))
    assert line.split() == ["setup", "(one-off)", "setup", "2", "1.75e+03"]


def test_table(synthetic):
    profile, durations, _ = synthetic
    lines = profile.table().splitlines()
    assert lines[0].split() == ["stage", "RTA-SCI", "n", "p50", "p95", "p99", "max"]
    detect = next(line for line in lines if line.startswith("detect "))
    expected = _expected_stats(durations[:, STAGES.index("detect")])
    assert detect.split() == [
        "detect", "blind", "search", "20",
        *(f"{expected[k]:.3g}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
    ]
    assert next(line for line in lines if line.startswith("write ")).split()[1] == "-"
    assert lines[-1] == "times in ms; 1 of 20 windows over the 20 s budget"


def test_write_files(synthetic, tmp_path):
    profile, durations, alerts = synthetic
    written = profile.write(tmp_path)
    assert [p.name for p in written] == ["latency.json", "latency.csv", "latency.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)

    stored = json.loads((tmp_path / "latency.json").read_text())
    assert stored == json.loads(json.dumps(profile.summary()))

    with open(tmp_path / "latency.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 20
    assert [int(r["window"]) for r in rows] == list(range(20))
    for slot, stage in enumerate(STAGES):
        cells = [r[f"{stage}_ms"] for r in rows]
        ran = ~np.isnan(durations[:, slot])
        assert [c != "" for c in cells] == ran.tolist()
        np.testing.assert_allclose(
            [float(c) for c in cells if c], 1e3 * durations[ran, slot], rtol=1e-5
        )
    assert [int(r["n_alerts"]) for r in rows] == [len(alerts.get(i, ())) for i in range(20)]
    assert float(rows[3]["time_to_alert_max_ms"]) == 25000.0
    assert rows[4]["time_to_alert_max_ms"] == ""

    png = (tmp_path / "latency.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "latency.png").shape[:2] == (500, 1200)


def test_write_meta_columns_and_empty_profile(clock, tmp_path):
    profile = LatencyProfile()
    profile.write(tmp_path)  # no window yet: valid, empty files
    assert json.loads((tmp_path / "latency.json").read_text())["over_budget"]["fraction"] is None
    metas = [{"kind": "cumulative, 1"}, {"runid": 23523, "read_ms": 1}, {"kind": "sliding"}]
    durations = np.full((3, len(STAGES)), np.nan)
    durations[:, 0] = _step(10)
    _replay(profile, clock, durations, meta=metas)
    profile.write(tmp_path)
    with open(tmp_path / "latency.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["kind"] for r in rows] == ["cumulative, 1", "", "sliding"]
    assert [r["runid"] for r in rows] == ["", "23523", ""]
    assert [r["meta_read_ms"] for r in rows] == ["", "1", ""]
    assert [float(r["read_ms"]) for r in rows] == pytest.approx([1e3 * _step(10)] * 3, rel=1e-5)


def test_write_is_atomic(synthetic, tmp_path, monkeypatch):
    profile, _, _ = synthetic
    profile.write(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_savefig(*args, **kwargs):
        raise OSError("disk full")

    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        profile.write(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(after) == set(before)  # no temporary file left behind
    assert after["latency.png"] == before["latency.png"]  # the previous PNG is intact
    with pytest.raises(ValueError, match="not a directory"):
        profile.write(tmp_path / "latency.json")


def test_records_are_compact_numpy_arrays(clock):
    profile = LatencyProfile()
    empty = profile.nbytes
    per_window = 8 + 8 + 8 * len(STAGES) + 4 * len(STAGES)  # index, total, times, calls
    assert empty == 1024 * (per_window + 8 + 8)  # + one alert value and its row
    for index in range(1025):  # one past the initial capacity: doubled once
        with profile.window(index, meta={"runid": 1}) as w, w.stage("detect"):
            clock.advance(_step(1))
    assert profile.nbytes == 2048 * (per_window + 8) + 1024 * 16


def test_memory_stays_flat_over_many_windows():
    """All growth over 20 000 windows is in the profile's arrays: no object per window."""
    n = 20_000

    def run(start):
        for index in range(start, start + n):
            with profile.window(index, meta={"runid": 23523, "kind": "cumulative"}) as w:
                for stage in STAGES:
                    with w.stage(stage):
                        pass
                w.time_to_alert(0.01)

    tracemalloc.start()  # before the profile exists: its arrays' frees are traced too
    try:
        profile = LatencyProfile()
        run(0)  # warm up (first allocations, interned objects)
        arrays_before = profile.nbytes
        before = tracemalloc.get_traced_memory()[0]
        run(n)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    arrays_grown = profile.nbytes - arrays_before
    assert arrays_grown > 0
    assert grown - arrays_grown < 50_000  # a 50-byte object per window would be 1 MB
    bytes_per_row = 8 + 8 + 12 * len(STAGES) + 16 + 8 + 4  # + alert, runid, kind
    assert profile.nbytes <= 2 * profile.n_windows * bytes_per_row


@pytest.mark.skipif(sys.gettrace() is not None, reason="timing under a tracer (coverage)")
def test_stage_overhead_under_2_microseconds():
    profile = LatencyProfile()
    n = 5000
    best = np.inf
    with profile.window(0) as w:
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(n):
                with w.stage("detect"):
                    pass
            timed = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(n):
                pass
            empty = time.perf_counter() - start
            best = min(best, (timed - empty) / n)
    assert best < 2e-6, f"{best * 1e6:.2f} µs per stage"
