"""Pipeline outputs: atomic files, results.ecsv, the alert book, GCN notices, VOEvents,
the output directory's reruns."""

import io
import json
import math
from pathlib import Path

import astropy.units as u
import jsonschema
import numpy as np
import pytest
import voeventparse as vp
from astropy.table import Table
from astropy.time import Time
from scipy.stats import norm

from rtafast.pipeline import atomic
from rtafast.pipeline.alerts import (
    Alert,
    AlertBook,
    false_alarm_rate,
    far_from_config,
    independent_trials,
)
from rtafast.pipeline.gcn import (
    CONTAINMENT_PROBABILITY,
    NoticeValidationError,
    gcn_notice,
    load_schema,
    validate_notice,
)
from rtafast.pipeline.outputs import (
    LATENCY_FILES,
    RESULT_COLUMNS,
    OutputDir,
    OutputDirError,
)
from rtafast.pipeline.voevent import VOEventValidationError, alert_ivorn, voevent_xml

T0 = Time("2026-01-01T00:00:00", scale="tt")
EMITTED = Time("2026-01-01T00:01:00", scale="utc")
SCHEMA_FILE = (
    Path(__file__).parents[1] / "rtafast" / "pipeline" / "schemas" / "gcn_notice.schema.json"
)


def clock():
    return EMITTED


def candidate(**changes):
    """A candidate's fields as the runner passes them (a results row plus trigger)."""
    fields = dict(
        runid=33787, window=0, window_start=0.0, window_stop=10.0, texp=9.5, candidate=1,
        sqrt_ts=6.0, ts=36.0, flux=2.0e-11, flux_err=3.0e-12, flux_ul=2.6e-11,
        ra=329.717, dec=-30.226, r68=0.02, r95=0.04, oncounts=60, offcounts=110,
        alpha=0.1, excess=49.0, sigma=8.1, offset=0.5, delay=10.0, backend="numba",
        window_kind="cumulative", trigger_time=T0,
    )
    fields.update(changes)
    return fields


def results_row(fields):
    return {key: value for key, value in fields.items() if key in RESULT_COLUMNS}


@pytest.fixture
def book():
    return AlertBook(target_name="PKS 2155-304", far=2.3e-5, energy_range=(1.0, 10.0),
                     clock=clock)


@pytest.fixture
def initial_and_update(book):
    first = book.consider(candidate())
    update = book.consider(candidate(sqrt_ts=7.5, ts=56.25, window=1, window_stop=20.0))
    return first, update


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


# -- the alert book ---------------------------------------------------------------------------
def test_below_threshold_gives_no_alert(book):
    assert book.consider(candidate(sqrt_ts=4.9)) is None
    assert book.n_below_threshold == 1 and book.emitted == []


def test_initial_then_update_only_when_grown_by_the_step(book):
    first = book.consider(candidate())
    assert first.alert_type == "initial" and first.ref_alert_id is None
    assert first.alert_id == "PKS_2155-304-33787-1"
    assert first.alert_datetime == EMITTED
    # same source, grew by 0.9 sigma < 1: no notice
    assert book.consider(candidate(sqrt_ts=6.9, ra=329.72)) is None
    assert book.n_suppressed == 1
    second = book.consider(candidate(sqrt_ts=7.0, runid=33788))
    assert second.alert_type == "update"
    assert second.ref_alert_id == first.alert_id
    assert second.alert_id == "PKS_2155-304-33788-2"
    # the step counts from the last notice (7.0), and updates refer to the first alert
    assert book.consider(candidate(sqrt_ts=7.9)) is None
    third = book.consider(candidate(sqrt_ts=8.0))
    assert third.ref_alert_id == first.alert_id
    assert book.summary() == {"n_alerts": 3, "n_initial": 1, "n_update": 2,
                              "n_suppressed": 2, "n_below_threshold": 0, "far_hz": 2.3e-5}


def test_match_distance_is_the_larger_95_radius(book):
    book.consider(candidate(r68=0.01, r95=0.02))
    # 0.05 deg away in Dec: outside 0.02 and 0.04, inside 0.06
    assert book.consider(candidate(dec=-30.176, r68=0.02, r95=0.04)).alert_type == "initial"
    fresh = AlertBook(far=0.0, clock=clock)
    fresh.consider(candidate(r68=0.01, r95=0.02))
    assert fresh.consider(candidate(dec=-30.176, r95=0.06, sqrt_ts=6.5)) is None
    assert fresh.n_suppressed == 1


def test_fixed_match_radius(book):
    fixed = AlertBook(far=0.0, match_radius=1.0, clock=clock)
    fixed.consider(candidate())
    assert fixed.consider(candidate(dec=-29.5)) is None  # 0.73 deg away, within 1 deg


def test_a_second_source_gets_its_own_initial_alert(book):
    book.consider(candidate())
    other = book.consider(candidate(ra=331.0, dec=-29.0, sqrt_ts=5.5))
    assert other.alert_type == "initial" and other.ref_alert_id is None


def test_alert_ids_are_deterministic():
    rows = [candidate(), candidate(sqrt_ts=7.2), candidate(ra=10.0)]
    first = AlertBook(target_name="GRB 260101A", far=0.0)
    second = AlertBook(target_name="GRB 260101A", far=0.0)
    ids = [[alert.alert_id for alert in map(book.consider, rows)] for book in (first, second)]
    assert ids[0] == ids[1] == ["GRB_260101A-33787-1", "GRB_260101A-33787-2",
                                "GRB_260101A-33787-3"]


def test_alert_datetime_is_the_wall_clock():
    before = Time.now()
    alert = AlertBook(far=0.0).consider(candidate())
    assert before <= alert.alert_datetime <= Time.now()
    assert alert.alert_datetime.scale == "utc"


def test_window_bounds_may_be_times(book):
    alert = book.consider(candidate(window_start=T0 + 5 * u.s, window_stop=T0 + 15 * u.s))
    assert alert.window_start == pytest.approx(5.0) and alert.window_stop == pytest.approx(15.0)
    assert alert.observation_start.tt.isot == "2026-01-01T00:00:05.000"


def test_consider_names_a_missing_field(book):
    fields = candidate()
    del fields["r95"]
    with pytest.raises(ValueError, match="missing field.*r95"):
        book.consider(fields)


def test_alert_checks_its_values():
    alert = AlertBook(far=0.0).consider(candidate())
    values = {name: getattr(alert, name) for name in alert.__dataclass_fields__}
    with pytest.raises(ValueError, match="ref_alert_id"):
        Alert(**dict(values, alert_type="update"))
    with pytest.raises(ValueError, match="r68/r95"):
        Alert(**dict(values, r68=0.1, r95=0.05))
    with pytest.raises(ValueError, match="window_stop"):
        Alert(**dict(values, window_stop=0.0))
    with pytest.raises(ValueError, match="sqrt_ts"):
        Alert(**dict(values, sqrt_ts=math.nan))
    with pytest.raises(ValueError, match="alert_id"):
        Alert(**dict(values, alert_id="a b"))


# -- false-alarm rate ---------------------------------------------------------------------------
def test_false_alarm_rate_formula():
    trials = independent_trials(5.0 * u.deg, 0.1 * u.deg)
    assert trials == pytest.approx(25.0 / (math.pi * 0.01))
    far = false_alarm_rate(5.0, 10 * u.s, trials)
    assert far == pytest.approx(2.866515718791939e-07 * trials / 10.0, rel=1e-12)
    assert independent_trials(0.1, 1.0) == 1.0  # never below one test
    with pytest.raises(ValueError, match="cadence"):
        false_alarm_rate(5.0, 0 * u.s, 10)


def test_far_from_config():
    from rtafast.pipeline.config import load_config

    config = load_config(None)
    expected = norm.sf(config.alert.threshold) * 25.0 / (math.pi * 0.1**2) / 10.0
    assert far_from_config(config) == pytest.approx(expected, rel=1e-12)
    both = load_config(None, ["stream.windows=[cumulative, sliding]",
                              "detection.method=lima", "detection.correlation_radius=0.2 deg"])
    assert far_from_config(both) == pytest.approx(2 * expected / 4, rel=1e-12)
    book = AlertBook(config)
    assert book.far == far_from_config(config) and book.tense == "archival"
    assert book.energy_range == (1.0, 10.0) and book.threshold == 5.0


# -- GCN notices ---------------------------------------------------------------------------------
def test_schema_file_is_a_valid_draft_2020_12_schema():
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert load_schema() == schema


def test_notices_validate_against_the_schema_file(initial_and_update):
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    for alert in initial_and_update:
        notice = gcn_notice(alert)
        validator.validate(notice)
        assert json.loads(json.dumps(notice, allow_nan=False)) == notice


def test_notice_fields(initial_and_update):
    first, update = initial_and_update
    notice = gcn_notice(update)
    assert notice["alert_type"] == "update" and notice["ref_ID"] == first.alert_id
    assert "ref_ID" not in gcn_notice(first)
    assert notice["ra_dec_error"] == update.r95 and notice["ra_dec_error_68"] == update.r68
    assert notice["containment_probability"] == CONTAINMENT_PROBABILITY == 0.95
    assert notice["mission"] == "CTAO" and notice["flux_unit"] == "cm-2 s-1"
    assert notice["TS"] == 56.25 and notice["sqrt_ts"] == 7.5 and notice["far"] == 2.3e-5
    assert notice["alert_datetime"] == "2026-01-01T00:01:00.000Z"
    # the window times are TT + s; notices are UTC: 69.184 s earlier
    assert notice["observation_start"] == "2025-12-31T23:58:50.816Z"
    assert notice["observation_stop"] == "2025-12-31T23:59:10.816Z"
    assert notice["energy_range"] == [1.0, 10.0] and notice["energy_unit"] == "TeV"


def test_notice_of_a_failed_fit_and_a_fixed_target(book):
    alert = book.consider(candidate(flux=math.nan, flux_err=math.nan, flux_ul=math.nan,
                                    r68=0.0, r95=0.0))
    notice = gcn_notice(alert, mission="H.E.S.S.", instrument="HESS-I")
    assert notice["flux"] is None and notice["ra_dec_error"] == 0.0
    assert notice["mission"] == "H.E.S.S."


@pytest.mark.parametrize("change", [
    {"unknown_key": 1},
    {"containment_probability": 0.68},
    {"ra": 400.0},
    {"alert_type": "initial", "ref_ID": "x-1-1"},
    {"observation_start": "2026-01-01 00:00:00"},
    {"runid": -1},
])
def test_schema_rejects_bad_notices(initial_and_update, change):
    notice = dict(gcn_notice(initial_and_update[0]), **change)
    with pytest.raises(NoticeValidationError):
        validate_notice(notice)


def test_schema_requires_ref_id_for_an_update(initial_and_update):
    notice = gcn_notice(initial_and_update[1])
    del notice["ref_ID"]
    with pytest.raises(NoticeValidationError, match="ref_ID"):
        validate_notice(notice)


def test_an_invalid_notice_raises(book):
    alert = book.consider(candidate(backend=""))
    with pytest.raises(NoticeValidationError, match="backend"):
        gcn_notice(alert)


# -- VOEvents ----------------------------------------------------------------------------------
def test_every_voevent_validates(initial_and_update):
    for alert in initial_and_update:
        packet = vp.loads(voevent_xml(alert))
        assert vp.valid_as_v2_0(packet)
        assert packet.attrib["ivorn"] == f"ivo://ctao.rtafast/alert#{alert.alert_id}"


def test_voevent_content(initial_and_update):
    first, update = initial_and_update
    packet = vp.loads(voevent_xml(update))
    position = vp.get_event_position(packet)
    assert (position.ra, position.dec, position.err) == (update.ra, update.dec, update.r95)
    assert position.system == "UTC-ICRS-TOPO"
    params = vp.get_grouped_params(packet)["alert"]
    for name in ("sqrt_ts", "ts", "flux", "flux_err", "flux_ul", "far", "livetime"):
        assert float(params[name]["value"]) == pytest.approx(getattr(update, name))
    assert params["window_start"]["value"] == "2025-12-31T23:58:50.816Z"
    assert float(packet.Why.attrib["importance"]) == pytest.approx(0.75)
    assert vp.get_event_time_as_utc(packet).isoformat().startswith("2025-12-31T23:58:50.816")


def test_an_update_cites_the_first_alert(initial_and_update):
    first, update = initial_and_update
    packet = vp.loads(voevent_xml(update))
    cited = packet.Citations.EventIVORN
    assert cited.text == alert_ivorn(first.alert_id)
    assert cited.attrib["cite"] == "supersedes"
    assert not vp.loads(voevent_xml(first)).xpath("Citations")


def test_voevent_options_and_validation(initial_and_update, book):
    packet = vp.loads(voevent_xml(initial_and_update[0], stream="example.org/test",
                                  role="test"))
    assert packet.attrib["ivorn"].startswith("ivo://example.org/test#")
    assert packet.attrib["role"] == "test"
    with pytest.raises(VOEventValidationError, match="role"):
        voevent_xml(initial_and_update[0], role="rumour")
    failed = book.consider(candidate(ra=100.0, flux=math.nan, flux_ul=math.nan))
    params = vp.get_grouped_params(vp.loads(voevent_xml(failed)))["alert"]
    assert "flux" not in params and "flux_ul" not in params


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


def test_incremental_results_equal_a_full_write(outdir):
    awkward = ["numba", "", 'quote " inside', "two words", "x"]
    for index in range(7):
        outdir.add_result(results_row(candidate(
            window=index, candidate=None if index % 3 else 1, window_kind=awkward[index % 5],
            sqrt_ts=[math.nan, 1e-300, 1 / 3, -0.0, 7e22][index % 5],
            oncounts=None if index == 4 else index,
        )))
        if index % 2:
            assert outdir.flush(force=True)
    outdir.flush(force=True)
    buffer = io.StringIO()
    outdir.results_table().write(buffer, format="ascii.ecsv")
    assert (outdir.path / "results.ecsv").read_text() == buffer.getvalue()
    outdir.meta["target"] = "PKS 2155-304"  # a new header: rewritten whole
    outdir.flush(force=True)
    assert Table.read(outdir.path / "results.ecsv").meta["target"] == "PKS 2155-304"


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


def test_standalone_writers(tmp_path, initial_and_update):
    from rtafast.pipeline.gcn import write_gcn_notice
    from rtafast.pipeline.voevent import write_voevent

    update = initial_and_update[1]
    write_voevent(update, tmp_path / "update.xml", role="test")
    write_gcn_notice(update, tmp_path / "update.json", instrument="LST-1")
    assert vp.valid_as_v2_0(vp.load(open(tmp_path / "update.xml", "rb")))
    validate_notice(json.loads((tmp_path / "update.json").read_text()))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["update.json", "update.xml"]


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
