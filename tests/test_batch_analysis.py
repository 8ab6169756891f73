"""Batch analysis (``rtafast.batch``, ``rtafast batch``): each run a Dask task, merged.

Two PKS 2155-304 runs of H.E.S.S. DL3 DR1 (33787, 33788; first 200 s, the end-to-end
test's small cube, 20 s bunches) analysed as a batch on a local cluster of 2 worker
processes: the merged results must be, row for row, those of the pipeline run on each
run alone; a second call skips every run and leaves the results as they were; a bad
unit (an unknown observation id, an event file that is not FITS) fails alone, with its
error recorded; a watched directory is refused. Needs the shared data (skipped without).
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table, vstack

from rtafast.batch import analyse_runs, list_units
from rtafast.batch.units import BatchUnit
from rtafast.cli.batch import add_batch_command, run_batch
from rtafast.pipeline.config import dump_yaml, load_config
from rtafast.pipeline.output_reruns import OutputDirError
from rtafast.pipeline.run import run_pipeline
from tests.test_pipeline_run import SMALL

data = pytest.mark.data
RUNS = (33787, 33788)
#: The end-to-end test's small cube on the first 200 s of each run: ~2 s a run.
OVERRIDES = [
    *SMALL,
    "target.name=PKS 2155-304",
    "target.ra=329.71694",
    "target.dec=-30.2255",
    "selection.time_stop=200 s",
    "fit.index=3.4",
]


@pytest.fixture(scope="module")
def datastore(hess_datastore):
    return hess_datastore.hdu_table.base_dir


def _config(datastore, obs_ids, *more):
    return load_config(
        None, [f"input.datastore={datastore}", f"input.obs_ids={list(obs_ids)}", *OVERRIDES, *more]
    )


def _quiet(line):
    pass


@pytest.fixture(scope="module")
def alone(datastore, tmp_path_factory):
    """Each run analysed alone, in this process, one after the other."""
    folder = tmp_path_factory.mktemp("alone")
    tables, alert_ids = [], []
    for obs_id in RUNS:
        summary = run_pipeline(_config(datastore, [obs_id]), folder / str(obs_id), say=_quiet)
        tables.append(Table.read(folder / str(obs_id) / "results.ecsv"))
        alert_ids += [alert.alert_id for alert in summary.alerts]
    return tables, alert_ids


@pytest.fixture(scope="module")
def batch(datastore, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("batch") / "out"
    said = []
    config = _config(datastore, RUNS)
    summary = analyse_runs(
        config, outdir, n_workers=2, processes=True, progress=False, say=said.append
    )
    return config, outdir, summary, said


def _assert_same_rows(actual, expected):
    assert actual.colnames == expected.colnames
    assert len(actual) == len(expected)
    for name in expected.colnames:
        got, want = actual[name], expected[name]
        assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(want)), name
        got, want = np.ma.getdata(got), np.ma.getdata(want)
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=0, equal_nan=True, err_msg=name)
        else:
            assert got.tolist() == want.tolist(), name


def _sorted(tables):
    table = vstack(tables, metadata_conflicts="silent")
    return table[np.lexsort((np.arange(len(table)), table["window_start"], table["runid"]))]


@data
def test_merged_results_are_each_run_analysed_alone(batch, alone):
    _, outdir, summary, _ = batch
    tables, alert_ids = alone
    merged = Table.read(outdir / "results.ecsv")
    assert set(merged["runid"]) == set(RUNS) and len(merged) == sum(map(len, tables))
    _assert_same_rows(merged, _sorted(tables))
    assert list(merged["runid"]) == sorted(merged["runid"])
    assert set(merged.meta["trigger_times"]) == {str(obs_id) for obs_id in RUNS}
    for obs_id, table in zip(RUNS, tables, strict=True):  # each run's own output is there
        _assert_same_rows(Table.read(outdir / "runs" / str(obs_id) / "results.ecsv"), table)
    lines = (outdir / "alerts.jsonl").read_text().splitlines()
    assert alert_ids and [json.loads(line)["alert_id"] for line in lines] == alert_ids


@data
def test_batch_json_counts_every_unit(batch, alone):
    _, outdir, summary, said = batch
    marker = json.loads((outdir / "batch.json").read_text())
    assert marker == summary
    assert marker["status"] == "finished" and marker["cluster"] == "LocalCluster(2)"
    totals = marker["totals"]
    assert (totals["units"], totals["done"], totals["skipped"], totals["failed"]) == (2, 2, 0, 0)
    assert marker["n_results"] == sum(map(len, alone[0]))
    assert totals["n_alerts"] == marker["n_alerts"] == len(alone[1])
    for unit, obs_id in zip(marker["units"], RUNS, strict=True):
        assert unit["name"] == str(obs_id) and unit["status"] == "ok" and unit["error"] is None
        assert unit["n_windows"] == 10 and unit["wall_s"] > 0
        assert unit["worker"].startswith("tcp://")
        assert f"runs/{obs_id}: new output directory" in " ".join(unit["messages"])
        run = json.loads((outdir / unit["rundir"] / "run.json").read_text())
        assert run["status"] == "finished" and run["summary"]["n_alerts"] == unit["n_alerts"]
    assert said[-1].startswith("done 2, skipped 0, failed 0 of 2 unit(s)")
    assert (outdir / "config.yaml").is_file()


@data
def test_a_second_call_skips_every_run_and_keeps_the_results(batch, tmp_path, capsys):
    config, outdir, _, _ = batch
    before = (outdir / "results.ecsv").read_bytes()
    markers = {
        obs_id: (outdir / "runs" / str(obs_id) / "run.json").stat().st_mtime_ns for obs_id in RUNS
    }
    path = tmp_path / "batch.yaml"  # through the command's function this time
    path.write_text(dump_yaml(config))
    parser = argparse.ArgumentParser()
    add_batch_command(parser.add_subparsers())
    args = parser.parse_args(["batch", str(path), "-o", str(outdir), "--no-progress"])
    assert run_batch(args) == 0
    assert "2 complete already (skipped), 0 to run" in capsys.readouterr().out
    marker = json.loads((outdir / "batch.json").read_text())
    assert [unit["status"] for unit in marker["units"]] == ["skipped", "skipped"]
    assert marker["totals"]["skipped"] == 2 and marker["cluster"] is None
    assert marker["totals"]["n_alerts"] == marker["n_alerts"] > 0
    assert (outdir / "results.ecsv").read_bytes() == before
    for obs_id, mtime in markers.items():
        assert (outdir / "runs" / str(obs_id) / "run.json").stat().st_mtime_ns == mtime


@data
def test_a_resumed_batch_must_keep_its_config(batch):
    config, outdir, _, _ = batch
    other = config.model_copy(deep=True)
    other.detection.threshold = 4.0
    with pytest.raises(OutputDirError, match=r"another configuration .*detection\.threshold"):
        analyse_runs(other, outdir, processes=False, progress=False, say=_quiet)


@data
def test_an_unknown_run_fails_alone_and_the_command_says_so(datastore, tmp_path, capsys):
    outdir = tmp_path / "out"
    config = _config(datastore, [33787, 99999])
    summary = analyse_runs(config, outdir, n_workers=2, processes=False, progress=False, say=_quiet)
    units = {unit["name"]: unit for unit in summary["units"]}
    assert units["33787"]["status"] == "ok" and units["33787"]["n_windows"] == 10
    assert units["99999"]["status"] == "failed" and units["99999"]["error_kind"] == "input"
    assert "observation 99999 is not in" in units["99999"]["error"]
    assert summary["totals"]["done"] == 1 and summary["totals"]["failed"] == 1
    assert set(Table.read(outdir / "results.ecsv")["runid"]) == {33787}
    # the command: the finished run skipped, the failed one tried again, exit 2
    path = tmp_path / "batch.yaml"
    path.write_text(dump_yaml(config))
    parser = argparse.ArgumentParser()
    add_batch_command(parser.add_subparsers())
    args = parser.parse_args(
        ["batch", str(path), "-o", str(outdir), "--workers", "1", "--no-progress"]
    )
    assert run_batch(args) == 2
    captured = capsys.readouterr()
    assert "1 complete already (skipped), 1 to run" in captured.out
    err = captured.err.strip()
    assert err.count("\n") == 0 and "1 of 2 unit(s) failed" in err and "99999" in err


@data
def test_an_event_file_that_is_not_fits_fails_alone(datastore, hess_datastore, alone, tmp_path):
    good = hess_datastore.hdu_table.hdu_location(obs_id=RUNS[1], hdu_type="events").path()
    bad = tmp_path / "bad.fits"
    bad.write_text("not a FITS file\n")
    config = load_config(None, [f"input.events={[str(good), str(bad)]}", *OVERRIDES])
    outdir = tmp_path / "out"
    summary = analyse_runs(config, outdir, n_workers=2, processes=False, progress=False, say=_quiet)
    ok, failed = summary["units"]
    assert ok["status"] == "ok" and ok["rundir"] == f"runs/{good.name.split('.')[0]}"
    assert failed["name"] == "bad" and failed["status"] == "failed"
    assert str(bad) in failed["error"] and failed["error_kind"] == "input"
    assert not (outdir / "runs" / "bad").exists()  # bad input: no run directory
    _assert_same_rows(Table.read(outdir / "results.ecsv"), alone[0][1])


def test_a_watched_directory_is_refused(tmp_path):
    config = load_config(None, [f"input.watch={tmp_path}"])
    with pytest.raises(ValueError, match="input.watch: a batch needs a fixed list"):
        analyse_runs(config, tmp_path / "out", progress=False, say=_quiet)
    assert not (tmp_path / "out").exists()
    args = argparse.Namespace(scheduler="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(ValueError, match="--workers sizes the local cluster"):
        run_batch(args)


@data
def test_units_of_files_and_of_a_whole_datastore(datastore, hess_datastore):
    events = load_config(None, ["input.events=[a/run.fits.gz, b/run.fits, c d.fits]"])
    units, excluded = list_units(events)
    assert [unit.name for unit in units] == ["run", "run-2", "c_d"] and excluded == []
    assert units[0] == BatchUnit("run", events=str(Path.cwd() / "a" / "run.fits.gz"))
    whole = load_config(None, [f"input.datastore={datastore}"])
    units, excluded = list_units(whole)
    assert len(units) + len(excluded) == len(hess_datastore.obs_table)
    assert {33787, 33788} <= {unit.obs_id for unit in units}


@data
def test_a_datastore_under_home_is_read_as_the_pipeline_reads_it(datastore, tmp_path, monkeypatch):
    """``~`` in input.datastore is expanded by the batch as by ``rtafast run``."""
    (tmp_path / "hess").symlink_to(Path(datastore).resolve())
    monkeypatch.setenv("HOME", str(tmp_path))
    direct = list_units(load_config(None, [f"input.datastore={datastore}"]))
    assert list_units(load_config(None, ["input.datastore=~/hess"])) == direct


@data
def test_a_run_directory_of_rtafast_run_is_not_a_batch_directory(batch, tmp_path):
    config, outdir, _, _ = batch
    single = tmp_path / "single"
    shutil.copytree(outdir / "runs" / "33787", single)
    with pytest.raises(OutputDirError, match="single run of 'rtafast run'"):
        analyse_runs(config, single, processes=False, progress=False, say=_quiet)
