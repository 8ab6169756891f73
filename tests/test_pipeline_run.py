"""The alert pipeline end to end (``rtafast.pipeline.run``, ``rtafast run``/``config``).

A GRB afterglow simulated on the analytic CTA-like IRF (no shared data needed) is
replayed as 20 s bunches through a small blind TS-map search: the pipeline must alert
on it with the true position inside the 95 % radius, write every output (results
table with RTA-SCI's columns, alerts, VOEvents valid against the VOEvent 2.0 schema,
GCN-style notices valid against the project's JSON Schema, latency profile, run
marker), say what a rerun does, and end bad input and bad configs with one line, exit 2
and no output directory.
"""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import voeventparse
from astropy.coordinates import SkyCoord
from astropy.table import Table

from rtafast.cli import main
from rtafast.pipeline.config import load_config
from rtafast.pipeline.gcn import load_schema
from rtafast.pipeline.outputs import RESULT_COLUMNS
from rtafast.pipeline.run import AlertPipeline
from rtafast.simulate_grb import simulate_grb_observations

#: Small and fast: a 3 deg, 0.05 deg, 4-bin cube, 20 s bunches over 4 min.
SMALL = [
    "geometry.width=3 deg",
    "geometry.binsz=0.05 deg",
    "geometry.energy_nbins=4",
    "geometry.energy_true_nbins=8",
    "stream.bunch=20 s",
    "target.name=GRB test",
]


@pytest.fixture(scope="module")
def grb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grb")
    files, truth = simulate_grb_observations(
        folder, seed=3, irf="analytic", duration="4 min", onset="20 s", alpha=1.2,
        width="4 deg",
    )
    return files, truth


def _overrides(grb):
    files, truth = grb
    return [
        f"input.events={[str(path) for path in files]}",
        f"stream.trigger_time={truth['t0']}",
        *SMALL,
    ]


@pytest.fixture(scope="module")
def run(grb, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("run") / "out"
    said = []
    pipeline = AlertPipeline(load_config(None, _overrides(grb)), outdir, say=said.append)
    summary = pipeline.run()
    return pipeline, summary, outdir, said


def test_the_pipeline_alerts_on_the_grb_inside_its_error_circle(grb, run):
    _, truth = grb
    pipeline, summary, _, said = run
    assert said == [f"{pipeline.outputs.path}: new output directory"]
    assert summary.n_bunches == 12 and summary.n_windows == 12
    assert summary.alerts, "no alert on a bright simulated GRB"
    first = summary.alerts[0]
    assert first.alert_type == "initial"
    assert first.sqrt_ts >= 5
    separation = SkyCoord(first.ra, first.dec, unit="deg").separation(
        SkyCoord(truth["ra"], truth["dec"], unit="deg")
    )
    assert 0 < first.r68 < first.r95 < 0.3
    assert separation.deg <= first.r95
    for later in summary.alerts[1:]:
        assert later.alert_type == "update" and later.ref_alert_id == first.alert_id
    assert all(0 < alert.time_to_alert < 20 for alert in summary.alerts)


def test_results_table_has_rta_scis_columns_and_one_row_per_window_and_source(run):
    pipeline, summary, outdir, _ = run
    table = Table.read(outdir / "results.ecsv")
    assert table.colnames == RESULT_COLUMNS
    assert len(table) == summary.n_rows == summary.n_candidates  # no target position given
    assert set(table["window_kind"]) == {"cumulative"}
    assert np.all(table["window_stop"] > table["window_start"])
    assert np.all(np.diff(table["window"]) >= 0)
    ids = np.ma.filled(np.ma.asarray(table["alert_id"]), "")  # ECSV reads "" as masked
    alerted = table[ids != ""]
    assert sorted(alerted["alert_id"]) == sorted(a.alert_id for a in summary.alerts)
    assert np.all(alerted["sqrt_ts"] >= 5)
    assert table["texp"].unit == "s" and table["flux"].unit == "cm-2 s-1"
    assert set(table["backend"]) == {pipeline.backend.name}


def test_every_alert_is_written_in_every_format_and_validates(run):
    pipeline, summary, outdir, _ = run
    lines = (outdir / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["alert_id"] for line in lines] == [
        alert.alert_id for alert in summary.alerts
    ]
    schema = load_schema()  # the project's JSON Schema file (rtafast/pipeline/schemas)
    for alert in summary.alerts:
        with open(outdir / "voevents" / f"{alert.alert_id}.xml", "rb") as file:
            packet = voeventparse.load(file)
        assert voeventparse.valid_as_v2_0(packet)
        assert packet.attrib["role"] == "observation"
        notice = json.loads((outdir / "notices" / f"{alert.alert_id}.json").read_text())
        jsonschema.validate(notice, schema)
        assert notice["alert_type"] == alert.alert_type


def test_latency_profile_and_run_marker_are_written(run):
    _, summary, outdir, _ = run
    latency = json.loads((outdir / "latency.json").read_text())
    assert {"detect", "localise", "fit", "photometry", "write"} <= set(latency["stages"])
    assert (outdir / "latency.png").stat().st_size > 0
    marker = json.loads((outdir / "run.json").read_text())
    assert marker["status"] == "finished"
    assert marker["summary"]["n_alerts"] == len(summary.alerts)
    assert not list(outdir.glob(".rtafast-tmp*"))


def test_a_rerun_says_what_it_replaces(grb, run, capsys):
    _, _, outdir, _ = run
    config = load_config(None, [*_overrides(grb), "stream.bunch=60 s"])
    said = []
    pipeline = AlertPipeline(config, outdir, say=said.append)
    lines = pipeline.prepare()
    assert any("replace" in line for line in lines), lines


# -- the command line ------------------------------------------------------------------
def test_config_template_is_a_valid_config_and_run_takes_overrides(grb, tmp_path, capsys):
    assert main(["config", "--template"]) == 0
    template = tmp_path / "template.yaml"
    template.write_text(capsys.readouterr().out)
    load_config(template)  # the documented default itself validates
    files, truth = grb
    sets = [item for override in _overrides(grb) for item in ("--set", override)]
    outdir = tmp_path / "cli"
    code = main(["run", str(template), "-o", str(outdir), "--no-progress", "--profile", *sets])
    out = capsys.readouterr().out
    assert code == 0
    assert "alert(s)" in out and "time to alert" in out and "window total" in out
    assert (outdir / "results.ecsv").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("detection.treshold=4", "detection.treshold"),
        ("geometry.binsz=fast", "geometry.binsz"),
        ("stream.windows=[weekly]", "stream.windows"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_no_output(grb, tmp_path, capsys, override, message):
    sets = [item for o in [*_overrides(grb), override] for item in ("--set", o)]
    outdir = tmp_path / "never"
    assert main(["run", "-o", str(outdir), "--no-progress", _empty_config(tmp_path), *sets]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtafast: error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not outdir.exists()


def _empty_config(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    return str(path)


def test_missing_and_truncated_event_files_are_one_line_and_no_output(grb, tmp_path, capsys):
    files, truth = grb
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(Path(files[0]).read_bytes()[:20000])
    for bad in (tmp_path / "missing.fits", truncated):
        outdir = tmp_path / f"out-{bad.stem}"
        args = ["run", _empty_config(tmp_path), "-o", str(outdir), "--no-progress",
                "--set", f"input.events=['{bad}']", "--set", f"stream.trigger_time={truth['t0']}"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("rtafast: error:") and bad.name in err
        assert len(err.strip().splitlines()) == 1
        assert not outdir.exists()
