"""The alert pipeline, one window at a time: a bunch in, its results and alerts out.

H.E.S.S. run 33787 (PKS 2155-304, the July 2006 flare) replayed as 10 s bunches through
the pipeline of ``examples/pks2155-flare.yaml``: a cumulative window on the 5 deg x 5 deg,
0.02 deg, 10-energy-bin cube, blind TS-map detection (0.3 deg kernel), localisation of
each candidate, flux-only fit and reflected-region photometry of the target and of
each candidate, results and alerts written (an alert in every window whose target
significance grew by 1 sigma).

* rtafast, per window: :meth:`rtafast.pipeline.run.AlertPipeline.process` of the next
  bunch after ``WARM_WINDOWS`` windows (the run's IRF maps, TS kernel and the
  target's templates made; numba compiled): read stage excluded (the bunch is cut
  before the timer), everything else in (the latency profile's window total, which
  for a window that alerts is its time to alert). The profile's p50/p95 of the timed
  windows go into the row's ``check``.
* gammapy, per window: the same analysis written with gammapy
  (:func:`rtafast_devtools.gammapy_window.gammapy_window_analysis`: the window's dataset
  from the observation, ``TSMapEstimator``, ``find_peaks``, ``Fit`` of the target and
  each peak, reflected-region on/off counts), on the window of the first
  ``WARM_WINDOWS`` bunches, caching nothing.

Agreement: the target's sqrt(TS) and flux of that window against gammapy's (also
``tests/test_pipeline_flare.py``).
"""

import astropy.units as u
import numpy as np
import pytest
from bench_settings import rounds

from rtafast.pipeline.geometry import map_center
from rtafast.pipeline.inputs import InputStats, iter_bunches
from rtafast.pipeline.run import AlertPipeline, RunSummary
from rtafast_devtools.gammapy_window import gammapy_window_analysis
from tests._pks2155_flare_helpers import PKS2155, RUN, flare_config, target_row

WARM_WINDOWS = 12
SIZE = "PKS 2155 run, 10 s bunch, 250x250x10, TS map + 2 sources"


@pytest.fixture(scope="module")
def config(hess_datastore):
    return flare_config(hess_datastore)


def _warm(config, folder):
    """The pipeline after WARM_WINDOWS windows, the rest of the bunches, and the summary."""
    pipeline = AlertPipeline(config, folder / "out", say=str)
    pipeline.prepare()
    bunches = iter_bunches(config, InputStats())
    summary = RunSummary()
    for _ in range(WARM_WINDOWS):
        pipeline.process(next(bunches), summary)
    return pipeline, bunches, summary


@pytest.fixture(scope="module")
def warm(config, tmp_path_factory):
    return _warm(config, tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def warm_time_aware(hess_datastore, tmp_path_factory):
    """The same with ``detection.method: lift`` (the three time-aware statistics of the
    target computed in every window; its alerts raised by the decay likelihood)."""
    config = flare_config(hess_datastore, "detection.method=lift")
    return _warm(config, tmp_path_factory.mktemp("bench_time"))


def test_gammapy_pipeline_window(benchmark, record, config, hess_datastore, warm):
    record("pipeline: window analysis", SIZE, "gammapy")
    pipeline, _, _ = warm
    observation = hess_datastore.obs(RUN)
    row = target_row(pipeline.outputs.results_table(), WARM_WINDOWS - 1)
    start = pipeline.trigger + row["window_start"] * u.s
    stop = pipeline.trigger + row["window_stop"] * u.s
    center = map_center(config, observation.get_pointing_icrs(observation.tmid))
    target = (PKS2155.ra.deg, PKS2155.dec.deg)
    result = benchmark.pedantic(
        gammapy_window_analysis,
        args=(observation, start, stop, config, center, [target]),
        rounds=rounds(3),
        iterations=1,
    )
    mine = row
    assert mine["sqrt_ts"] == pytest.approx(result.fits[target]["sqrt_ts"], abs=0.02)
    assert mine["flux"] == pytest.approx(result.fits[target]["flux"], rel=2e-3)
    benchmark.extra_info["check"] = (
        f"target sqrt(TS) {mine['sqrt_ts']:.3f} vs gammapy {result.fits[target]['sqrt_ts']:.3f}"
        f", flux ratio {mine['flux'] / result.fits[target]['flux']:.5f}; gammapy stages "
        + ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
    )


def test_rtafast_pipeline_window(benchmark, record, warm):
    record("pipeline: window analysis", SIZE, "rtafast", "numba")
    _time_windows(benchmark, warm)


def test_rtafast_pipeline_window_time_aware(benchmark, record, warm_time_aware):
    record("pipeline: window analysis", SIZE + ", time-aware stats", "rtafast", "numba")
    pipeline = _time_windows(benchmark, warm_time_aware)
    stages = pipeline.latency.summary()["stages"]
    benchmark.extra_info["check"] += "; " + ", ".join(
        f"{name} p50 {stages[name]['p50_ms']:.3f} ms p95 {stages[name]['p95_ms']:.3f} ms"
        for name in ("lima_time", "cusum", "lift")
    )
    assert all(alert.method == "lift" for alert in pipeline.alerts.emitted)


def _time_windows(benchmark, warm):
    """Time the next windows; the latency profile's p50/p95 into the row's check."""
    pipeline, bunches, summary = warm

    def next_bunch():
        return (next(bunches),), {}

    first_timed = summary.n_windows
    benchmark.pedantic(
        lambda bunch: pipeline.process(bunch, summary),
        setup=next_bunch,
        rounds=rounds(40),
        iterations=1,
    )
    totals = pipeline.latency.window_seconds()[first_timed:]
    alerts = len(pipeline.alerts.emitted)
    p50, p95 = np.percentile(totals, [50, 95]) * 1e3
    benchmark.extra_info["check"] = (
        f"latency profile of the {len(totals)} timed windows: p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms; {alerts} alert(s) in the run so far"
    )
    assert alerts >= 1
    return pipeline

