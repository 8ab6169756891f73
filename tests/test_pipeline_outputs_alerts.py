"""Pipeline outputs, the alerts: the alert book, the false-alarm rate, GCN notices,
VOEvents and their standalone writers."""

import json
import math
from pathlib import Path

import astropy.units as u
import jsonschema
import pytest
import voeventparse as vp
from astropy.time import Time
from scipy.stats import norm

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
from rtafast.pipeline.voevent import VOEventValidationError, alert_ivorn, voevent_xml
from tests._pipeline_outputs_helpers import (
    EMITTED,
    T0,
    candidate,
    clock,
)

SCHEMA_FILE = (
    Path(__file__).parents[1] / "rtafast" / "pipeline" / "schemas" / "gcn_notice.schema.json"
)


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


def test_time_aware_alerts_are_raised_on_their_statistic(book):
    """lift/lima_time: sigma against alert.threshold; cusum: its own threshold, updates on
    sqrt(2 S); the fit's sqrt_ts does not decide (it may be below 5)."""
    book.thresholds["cusum"] = 20.0
    assert book.consider(candidate(sqrt_ts=3.0), method="lift", statistic=4.9) is None
    first = book.consider(candidate(sqrt_ts=3.0), method="lift", statistic=5.1)
    assert (first.method, first.statistic, first.sqrt_ts) == ("lift", 5.1, 3.0)
    assert book.consider(candidate(sqrt_ts=9.0), method="lift", statistic=6.0) is None
    other = candidate(ra=100.0, dec=10.0)
    assert book.consider(other, method="cusum", statistic=19.9) is None
    start = book.consider(other, method="cusum", statistic=20.0)  # sqrt(40) = 6.32
    assert start.alert_type == "initial" and start.method == "cusum"
    assert book.consider(other, method="cusum", statistic=26.0) is None  # sqrt(52) = 7.21
    update = book.consider(other, method="cusum", statistic=27.0)  # sqrt(54) = 7.35
    assert update.alert_type == "update" and update.ref_alert_id == start.alert_id
    assert book.consider(candidate(sqrt_ts=7.0), method="fit").statistic is None


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


def test_standalone_writers(tmp_path, initial_and_update):
    from rtafast.pipeline.gcn import write_gcn_notice
    from rtafast.pipeline.voevent import write_voevent

    update = initial_and_update[1]
    write_voevent(update, tmp_path / "update.xml", role="test")
    write_gcn_notice(update, tmp_path / "update.json", instrument="LST-1")
    assert vp.valid_as_v2_0(vp.load(open(tmp_path / "update.xml", "rb")))
    validate_notice(json.loads((tmp_path / "update.json").read_text()))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["update.json", "update.xml"]

