"""The time-aware detection methods in the alert pipeline (``detection.method``:
``lima_time``, ``cusum``, ``lift``).

A GRB afterglow simulated on the analytic CTA-like IRF (no shared data needed) is
replayed as 20 s bunches with its position as the target: each method must alert on
it (initial, then updates citing it, every one valid as VOEvent 2.0 and against the
project's notice schema, with its method and statistic), and the results table's time
statistics of the target must be those of :mod:`rtafast.timedomain` (NumPy backend) on
the on/off counts of the same table, bunch by bunch; the brightest stretch is never
below the cumulative window's Li & Ma significance (itself checked against gammapy).
"""

import json

import jsonschema
import numpy as np
import pytest
import voeventparse
from astropy.table import Table
from gammapy.stats import WStatCountsStatistic

from rtafast.pipeline.config import load_config
from rtafast.pipeline.gcn import load_schema
from rtafast.pipeline.run import AlertPipeline
from rtafast.simulate_grb import simulate_grb_observations
from rtafast.timedomain import brightest_stretch, cusum, decay_likelihood, decay_templates
from tests.test_pipeline_run import SMALL as RUN_SMALL

METHODS = ("lima_time", "cusum", "lift")
SMALL = [*RUN_SMALL, "detection.cusum_threshold=8"]  # the end-to-end test's small cube


@pytest.fixture(scope="module")
def grb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grb_time")
    return simulate_grb_observations(
        folder, seed=3, irf="analytic", duration="4 min", onset="20 s", alpha=1.2,
        width="4 deg",
    )


@pytest.fixture(scope="module", params=METHODS)
def run(request, grb, tmp_path_factory):
    files, truth = grb
    overrides = [
        f"input.events={[str(path) for path in files]}",
        f"stream.trigger_time={truth['t0']}",
        f"target.ra={truth['ra']}",
        f"target.dec={truth['dec']}",
        f"detection.method={request.param}",
        *SMALL,
    ]
    outdir = tmp_path_factory.mktemp(f"run_{request.param}") / "out"
    pipeline = AlertPipeline(load_config(None, overrides), outdir, say=lambda line: None)
    return request.param, pipeline, pipeline.run(), outdir


def test_each_method_alerts_on_the_grb_with_valid_updates(run):
    method, pipeline, summary, outdir = run
    target = [alert for alert in summary.alerts if alert.method == method]
    assert target, f"{method}: no alert on a bright simulated GRB"
    first = target[0]
    assert first.alert_type == "initial" and first.r95 == 0.0  # the catalogue position
    threshold = 8.0 if method == "cusum" else 5.0
    assert first.statistic >= threshold
    assert [alert.alert_type for alert in target[1:]] == ["update"] * (len(target) - 1)
    assert all(alert.ref_alert_id == first.alert_id for alert in target[1:])
    statistics = [alert.statistic for alert in target]
    assert all(b >= a + 1.0 for a, b in zip(statistics, statistics[1:], strict=False))
    schema = load_schema()
    for alert in target:
        with open(outdir / "voevents" / f"{alert.alert_id}.xml", "rb") as file:
            packet = voeventparse.load(file)
        assert voeventparse.valid_as_v2_0(packet)
        params = voeventparse.get_grouped_params(packet)["alert"]
        assert params["method"]["value"] == method
        assert float(params["statistic"]["value"]) == pytest.approx(alert.statistic)
        notice = json.loads((outdir / "notices" / f"{alert.alert_id}.json").read_text())
        jsonschema.validate(notice, schema)
        assert notice["detection_method"] == method
        assert notice["alert_type"] == alert.alert_type


def _target_series(outdir):
    table = Table.read(outdir / "results.ecsv")
    rows = table[table["candidate"] == 0]
    on = np.diff(np.asarray(rows["oncounts"], float), prepend=0.0)[None]
    off = np.diff(np.asarray(rows["offcounts"], float), prepend=0.0)[None]
    livetime = np.diff(np.asarray(rows["texp"], float), prepend=0.0)[None]
    return table, rows, on, off, livetime


def test_time_statistics_are_rtafast_timedomain_on_the_tables_counts(run):
    method, pipeline, _, outdir = run
    table, rows, on, off, livetime = _target_series(outdir)
    assert len(rows) == 12 and np.all(np.isnan(table[table["candidate"] > 0]["lift"]))
    alpha = float(rows["alpha"][-1])
    stops = np.asarray(rows["window_stop"], float)
    starts = np.concatenate([[rows["window_start"][0]], stops[:-1]])
    detection = pipeline.config.detection
    templates = decay_templates(starts, stops, livetime[0], detection.decay_indices,
                                onsets_s=[o.to_value("s") for o in detection.decay_onsets])
    expected = {
        "lima_time": brightest_stretch(on, off, alpha, backend="numpy")[0],
        "cusum": cusum(on, off, alpha, livetime, detection.cusum_ratio, backend="numpy")[0],
        "lift": decay_likelihood(on, off, alpha, livetime, templates, backend="numpy")[0],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(rows[name], values, rtol=1e-6, atol=1e-9, err_msg=name)
    gammapy = [float(WStatCountsStatistic(n_on, n_off, alpha).sqrt_ts)
               for n_on, n_off in zip(rows["oncounts"], rows["offcounts"], strict=True)]
    np.testing.assert_allclose(rows["sigma"], gammapy, rtol=1e-6)
    assert np.all(rows["lima_time"] >= np.asarray(gammapy) - 1e-9)


def test_each_method_is_timed_in_the_latency_profile(run):
    _, _, _, outdir = run
    latency = json.loads((outdir / "latency.json").read_text())
    assert set(METHODS) <= set(latency["stages"])
