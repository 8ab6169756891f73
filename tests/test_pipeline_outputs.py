"""Pipeline outputs, the output directory: atomic files, results.ecsv, alerts, maps and
the run marker written by OutputDir, and its reruns (the alert book, GCN notices and
VOEvents: test_pipeline_outputs_alerts.py)."""

import io
import json
import math

import astropy.units as u
import numpy as np
import pytest
import voeventparse as vp
from astropy.table import Table

from rtafast.pipeline import atomic
from rtafast.pipeline.gcn import NoticeValidationError, validate_notice
from rtafast.pipeline.outputs import (
    LATENCY_FILES,
    RESULT_COLUMNS,
    OutputDir,
    OutputDirError,
)
from tests._pipeline_outputs_helpers import T0, candidate


def results_row(fields):
    return {key: value for key, value in fields.items() if key in RESULT_COLUMNS}


# -- atomic writes --------------------------------------------------------------------------
def test_write_atomic_replaces_content(tmp_path):
    target = tmp_path / "file.txt"
    atomic.write_atomic(target, "old")
    atomic.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [path.name for path in tmp_path.iterdir()] == ["file.txt"]


def test_failing_writer_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.ecsv"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("half a tab")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_failing_writer_keeps_the_previous_version(tmp_path):
    target = tmp_path / "table.ecsv"
    atomic.write_atomic(target, "complete")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "complete"
    assert [path.name for path in tmp_path.iterdir()] == ["table.ecsv"]


def test_atomic_path_needs_a_file_and_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="did not create"):
        with atomic.atomic_path(tmp_path / "x.fits"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic.write_atomic(tmp_path / "missing" / "x.txt", "data")
    with pytest.raises(TypeError, match="bytes or str"):
        atomic.write_atomic(tmp_path / "x.txt", 3)


def test_temporary_name_keeps_the_extension(tmp_path):
    name = atomic.temporary_name(tmp_path / "map.fits.gz").name
    assert name.startswith(".tmp-") and name.endswith("-map.fits.gz")

# -- results.ecsv --------------------------------------------------------------------------------
@pytest.fixture
def outdir(tmp_path):
    output = OutputDir(tmp_path / "run", flush_interval=0.0)
    output.prepare()
    return output


def test_results_round_trip(outdir):
    rows = [candidate(window=index, sqrt_ts=3.0 + index) for index in range(3)]
    rows.append(dict(runid=33788, window=3, window_start=0.0, window_stop=40.0,
                     texp=10 * u.min, backend="numba"))
    for row in rows:
        outdir.add_result(results_row(row))
    outdir.finish({})
    table = Table.read(outdir.path / "results.ecsv")
    assert table.colnames == RESULT_COLUMNS
    assert table["flux"].unit == u.Unit("cm-2 s-1") and table["ra"].unit == u.deg
    assert table["texp"].unit == u.s and table["sqrt_ts"].unit is None
    assert list(table["sqrt_ts"][:3]) == [3.0, 4.0, 5.0]
    assert table["texp"][3] == 600.0  # a Quantity is written in the column's unit
    assert table["candidate"].mask[3] and math.isnan(table["flux"][3])
    assert table["oncounts"].dtype.kind == "i"
    assert table["r95"].description.startswith("95 % containment")


def test_incremental_results_equal_a_full_write(outdir, tmp_path):
    awkward = ["numba", "", 'quote " inside', "two words", "x"]
    whole = OutputDir(tmp_path / "whole")
    whole.prepare()
    for index in range(7):
        row = results_row(candidate(
            window=index, candidate=None if index % 3 else 1, window_kind=awkward[index % 5],
            sqrt_ts=[math.nan, 1e-300, 1 / 3, -0.0, 7e22][index % 5],
            oncounts=None if index == 4 else index,
        ))
        outdir.add_result(row)
        whole.add_result(row)
        if index % 2:
            assert outdir.flush(force=True)
    outdir.flush(force=True)
    whole.flush(force=True)  # one write of every row
    assert (outdir.path / "results.ecsv").read_text() == (
        whole.path / "results.ecsv").read_text()
    outdir.meta["target"] = "PKS 2155-304"  # a new header: rewritten whole
    outdir.add_result(results_row(candidate(window=7)))
    assert outdir.n_results == 8 and len(outdir.results_table()) == 8  # 7 written, 1 not
    outdir.flush(force=True)
    table = Table.read(outdir.path / "results.ecsv")
    assert table.meta["target"] == "PKS 2155-304"
    assert list(table["window"]) == list(range(8))
    buffer = io.StringIO()
    outdir.results_table().write(buffer, format="ascii.ecsv")
    assert (outdir.path / "results.ecsv").read_text() == buffer.getvalue()


def test_results_are_flushed_at_most_every_interval(tmp_path):
    output = OutputDir(tmp_path / "run", flush_interval=3600.0)
    output.prepare()
    output.add_result(results_row(candidate()))
    assert output.flush()  # the first one
    output.add_result(results_row(candidate(window=1)))
    assert not output.flush()
    assert len(Table.read(output.path / "results.ecsv")) == 1
    assert output.flush(force=True)
    assert len(Table.read(output.path / "results.ecsv")) == 2


def test_bad_rows_name_the_column(outdir):
    with pytest.raises(OutputDirError, match="unknown column.*colour"):
        outdir.add_result(dict(results_row(candidate()), colour="red"))
    row = results_row(candidate())
    del row["texp"]
    with pytest.raises(OutputDirError, match="missing column.*texp"):
        outdir.add_result(row)
    with pytest.raises(OutputDirError, match="column flux"):
        outdir.add_result(dict(results_row(candidate()), flux="bright"))
    with pytest.raises(OutputDirError, match="column texp"):
        outdir.add_result(dict(results_row(candidate()), texp=3 * u.deg))
    assert outdir.n_results == 0


# -- alerts, maps and the run marker -------------------------------------------------------------
def test_add_alert_writes_every_format(outdir, initial_and_update):
    first, update = initial_and_update
    first.arrived = 0.0  # perf_counter origin: the time to alert becomes large but finite
    for alert in initial_and_update:
        outdir.add_alert(alert)
    assert first.time_to_alert > 0 and update.time_to_alert is None
    lines = (outdir.path / "alerts.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["alert_id"] for record in records] == [first.alert_id, update.alert_id]
    assert records[1]["ref_alert_id"] == first.alert_id and "arrived" not in records[0]
    for alert in initial_and_update:
        notice = json.loads((outdir.path / "notices" / f"{alert.alert_id}.json").read_text())
        validate_notice(notice)
        packet = vp.load(open(outdir.path / "voevents" / f"{alert.alert_id}.xml", "rb"))
        assert vp.valid_as_v2_0(packet)
    with pytest.raises(OutputDirError, match="already written"):
        outdir.add_alert(first)


def test_an_alert_that_fails_validation_writes_nothing(outdir, book):
    alert = book.consider(candidate(backend=""))
    with pytest.raises(NoticeValidationError):
        outdir.add_alert(alert)
    assert not list((outdir.path / "voevents").iterdir())
    assert not (outdir.path / "alerts.jsonl").exists()


def test_formats_choose_the_files(tmp_path, initial_and_update):
    output = OutputDir(tmp_path / "run", formats=["gcn"])
    output.prepare()
    output.add_alert(initial_and_update[0])
    output.finish({})
    assert sorted(path.name for path in output.path.iterdir()) == [
        "notices", "results.ecsv", "run.json"]
    with pytest.raises(OutputDirError, match="unknown"):
        OutputDir(tmp_path / "other", formats=["email"])


def test_write_map(tmp_path):
    from gammapy.maps import Map

    output = OutputDir(tmp_path / "run", maps=True)
    output.prepare()
    sky_map = Map.create(npix=5, binsz=0.1, skydir=(83.6, 22.0))
    sky_map.data += np.arange(25).reshape(5, 5)
    path = output.write_map("cumulative_00000", sky_map)
    assert path.name == "cumulative_00000.fits"
    np.testing.assert_array_equal(Map.read(path).data, sky_map.data)
    with pytest.raises(OutputDirError, match="letters"):
        output.write_map("../escape", sky_map)
    no_maps = OutputDir(tmp_path / "other")
    no_maps.prepare()
    with pytest.raises(OutputDirError, match="not requested"):
        no_maps.write_map("x", sky_map)


def test_finish_writes_the_marker(outdir, initial_and_update):
    outdir.add_alert(initial_and_update[0])
    summary = {"n_windows": np.int64(3), "bunch": 10 * u.s, "trigger": T0,
               "skips": {"n_empty_bunches": 2}, "ratio": math.nan}
    marker = json.loads(outdir.finish(summary).read_text())
    assert marker["producer"] == "rtafast" and marker["status"] == "finished"
    assert marker["summary"] == {"n_windows": 3, "bunch": "10.0 s",
                                 "trigger": "2025-12-31T23:58:50.816Z",
                                 "skips": {"n_empty_bunches": 2}, "ratio": None}
    assert marker["outputs"]["n_alerts"] == 1
    assert "alerts.jsonl" in marker["files"] and "results.ecsv" in marker["files"]
    assert not (outdir.path / ".rtafast-journal").exists()


def test_finish_names_a_summary_value_it_cannot_write(outdir):
    with pytest.raises(ValueError, match="summary.stats.obj"):
        outdir.finish({"stats": {"obj": object()}})


def test_writing_needs_prepare(tmp_path, initial_and_update):
    with pytest.raises(RuntimeError, match="prepare"):
        OutputDir(tmp_path / "run").add_alert(initial_and_update[0])


# -- reruns ----------------------------------------------------------------------------------------
def _run(path, alerts, **options):
    output = OutputDir(path, **options)
    lines = output.prepare()
    for alert in alerts:
        output.add_alert(alert)
    for name in LATENCY_FILES[:1]:
        (path / name).write_text("{}")
    output.finish({})
    return lines


def test_prepare_on_a_new_and_a_file_path(tmp_path):
    assert OutputDir(tmp_path / "new").prepare() == [f"{tmp_path / 'new'}: new output directory"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        OutputDir(tmp_path / "file").prepare()


def test_files_not_written_by_rtafast_are_never_touched(tmp_path, initial_and_update):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    lines = OutputDir(folder).prepare()
    assert "1 file(s) not written by rtafast are left untouched" in lines[0]
    (folder / "run.json").unlink()
    (folder / ".rtafast-journal").unlink()
    (folder / "results.ecsv").write_text("someone else's")
    with pytest.raises(OutputDirError, match="results.ecsv exist.*not written by rtafast"):
        OutputDir(folder).prepare()
    assert (folder / "results.ecsv").read_text() == "someone else's"
    (folder / "results.ecsv").unlink()
    (folder / "run.json").write_text('{"tool": "other"}')
    with pytest.raises(OutputDirError, match="not an rtafast run marker"):
        OutputDir(folder).prepare()
    assert (folder / "notes.txt").read_text() == "mine"


def test_rerun_says_what_it_replaces_and_removes_the_old_alerts(tmp_path, initial_and_update):
    folder = tmp_path / "run"
    first, update = initial_and_update
    _run(folder, [first, update])
    (folder / "voevents" / "mine.xml").write_text("not rtafast's")
    output = OutputDir(folder)
    lines = output.prepare()
    assert "holds a previous rtafast run (finished" in lines[0]
    assert lines[1] == "  replaced by this run: results.ecsv, run.json, alerts.jsonl, latency.json"
    assert lines[2] == ("  removed at the end of this run unless written again: "
                        "2 file(s) in voevents/, 2 file(s) in notices/")
    assert lines[3] == "  1 file(s) not written by rtafast are left untouched"
    output.add_alert(first)  # the same id again: replaced
    assert (folder / "notices" / f"{update.alert_id}.json").exists()  # removed at the end only
    output.finish({})
    assert sorted(path.name for path in (folder / "voevents").iterdir()) == [
        f"{first.alert_id}.xml", "mine.xml"]
    assert not (folder / "notices" / f"{update.alert_id}.json").exists()
    assert not (folder / "latency.json").exists()  # not rewritten by this run: stale


def test_an_alert_on_a_foreign_file_is_refused(tmp_path, initial_and_update):
    folder = tmp_path / "run"
    output = OutputDir(folder, formats=["voevent"])
    output.prepare()
    foreign = folder / "voevents" / f"{initial_and_update[0].alert_id}.xml"
    foreign.write_text("someone else's")
    with pytest.raises(OutputDirError, match="not written by rtafast"):
        output.add_alert(initial_and_update[0])
    assert foreign.read_text() == "someone else's"


def test_an_interrupted_run_is_recognised(tmp_path, initial_and_update):
    folder = tmp_path / "run"
    first, update = initial_and_update
    crashed = OutputDir(folder)
    crashed.prepare()
    crashed.add_alert(first)
    crashed.add_result(results_row(candidate()))
    crashed.flush(force=True)
    (folder / ".tmp-0123456789ab-results.ecsv").write_text("half")  # an interrupted write
    del crashed  # no finish(): run.json says "running", the journal lists the alert's files
    output = OutputDir(folder)
    lines = output.prepare()
    assert "(running, started" in lines[0]
    assert "1 file(s) in voevents/, 1 file(s) in notices/" in lines[2]
    assert lines[-1] == "  removed 1 temporary file(s) of an interrupted write"
    output.add_alert(update)
    output.finish({})
    assert sorted(path.name for path in (folder / "notices").iterdir()) == [
        f"{update.alert_id}.json"]
    assert not list(folder.glob(".tmp-*"))


def test_a_doctored_marker_cannot_remove_files_elsewhere(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    assert OutputDir(folder).prepare() == [
        f"{folder}: existing directory without a previous rtafast run (empty)"]
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    marker = json.loads((folder / "run.json").read_text())
    marker["files"] += ["../outside.txt", str(outside)]
    (folder / "run.json").write_text(json.dumps(marker))
    output = OutputDir(folder)
    output.prepare()
    output.finish({})
    assert outside.read_text() == "keep"
