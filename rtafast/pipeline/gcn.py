"""GCN-style JSON notices of alerts, validated against the project's JSON Schema.

:func:`gcn_notice` turns an :class:`~rtafast.pipeline.alerts.Alert` into a dict shaped
like the GCN Kafka JSON notices (nasa-gcn/gcn-schema), modelled on the Fermi-LAT flare
notice (``alert_datetime, mission, instrument, event_name, ra, dec, ra_dec_error,
containment_probability, observation_start/stop, flux, flux_error, flux_unit, TS``) with
the core fields ``alert_type``, ``alert_tense``, ``id``/``ref_ID`` and ``far``, plus
rtafast's ``sqrt_ts, time_to_alert, ra_dec_error_68, flux_ul, energy_range,
energy_unit, runid, backend``. ``ra_dec_error`` is the 95 % containment radius
(``containment_probability`` 0.95, statistical only). The schema lives in
``rtafast/pipeline/schemas/gcn_notice.schema.json`` (JSON Schema draft 2020-12,
``additionalProperties: false``); every notice is validated before it is returned, and
one that does not validate raises :class:`NoticeValidationError` (a bug, not bad input).
"""

import json
import math
from functools import lru_cache
from importlib import resources

import jsonschema

from .atomic import write_atomic

__all__ = [
    "CONTAINMENT_PROBABILITY",
    "NoticeValidationError",
    "SCHEMA_ID",
    "gcn_notice",
    "load_schema",
    "validate_notice",
    "write_gcn_notice",
]

#: The schema's ``$id``, written as each notice's ``$schema``.
SCHEMA_ID = "urn:rtafast:schema:gcn-notice:2"
#: Containment probability of ``ra_dec_error`` (the r95 radius).
CONTAINMENT_PROBABILITY = 0.95
_SCHEMA_FILE = "gcn_notice.schema.json"


class NoticeValidationError(ValueError):
    """A notice does not validate against the schema (a bug in the notice or the alert)."""


@lru_cache(maxsize=1)
def load_schema():
    """The notice schema (a dict), read once from the package's ``schemas`` folder."""
    text = resources.files(__package__).joinpath("schemas", _SCHEMA_FILE).read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@lru_cache(maxsize=1)
def _validator():
    return jsonschema.Draft202012Validator(
        load_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def validate_notice(notice):
    """Validate a notice dict against the schema.

    Raises
    ------
    NoticeValidationError
        With every problem found, one per line (path: message).
    """
    errors = sorted(_validator().iter_errors(notice), key=lambda error: list(error.path))
    if errors:
        problems = "; ".join(
            f"{'/'.join(str(part) for part in error.path) or '(notice)'}: {error.message}"
            for error in errors
        )
        raise NoticeValidationError(f"GCN notice {notice.get('id')!r} is invalid: {problems}")


def _number_or_none(value):
    return None if value is None or not math.isfinite(value) else float(value)


def gcn_notice(alert, *, mission="CTAO", instrument="rtafast"):
    """The GCN-style JSON notice of an alert (a dict), validated.

    Parameters
    ----------
    alert : `~rtafast.pipeline.alerts.Alert`
    mission : str
        Observatory reporting the alert.
    instrument : str
        Instrument or analysis reporting the alert.

    Returns
    -------
    notice : dict
        JSON-ready (NaN fluxes as None).

    Raises
    ------
    NoticeValidationError
        When the notice does not validate against the schema.
    """
    times = alert.utc_times
    notice = {
        "$schema": SCHEMA_ID,
        "alert_datetime": times["alert_datetime"],
        "alert_tense": alert.alert_tense,
        "alert_type": alert.alert_type,
        "id": alert.alert_id,
        "mission": mission,
        "instrument": instrument,
        "event_name": alert.target_name,
        "ra": float(alert.ra),
        "dec": float(alert.dec),
        "ra_dec_error": float(alert.r95),
        "containment_probability": CONTAINMENT_PROBABILITY,
        "systematic_included": False,
        "trigger_time": times["trigger_time"],
        "observation_start": times["observation_start"],
        "observation_stop": times["observation_stop"],
        "observation_livetime": _number_or_none(alert.livetime),
        "flux": _number_or_none(alert.flux),
        "flux_error": _number_or_none(alert.flux_err),
        "flux_ul": _number_or_none(alert.flux_ul),
        "flux_unit": "cm-2 s-1",
        "energy_range": (
            None if alert.energy_range is None else [float(e) for e in alert.energy_range]
        ),
        "energy_unit": "TeV",
        "TS": float(alert.ts),
        "far": float(alert.far),
        "sqrt_ts": float(alert.sqrt_ts),
        "time_to_alert": _number_or_none(alert.time_to_alert),
        "ra_dec_error_68": float(alert.r68),
        "runid": int(alert.runid),
        "backend": alert.backend,
        "detection_method": alert.method,
        "detection_statistic": _number_or_none(alert.statistic),
    }
    if alert.ref_alert_id is not None:
        notice["ref_ID"] = alert.ref_alert_id
    validate_notice(notice)
    return notice


def write_gcn_notice(alert, path, **options):
    """Write an alert's validated notice as JSON to ``path`` (atomically).

    Parameters
    ----------
    alert : `~rtafast.pipeline.alerts.Alert`
    path : str or `~pathlib.Path`
    **options
        Passed to :func:`gcn_notice` (``mission``, ``instrument``).
    """
    notice = gcn_notice(alert, **options)
    write_atomic(path, json.dumps(notice, indent=2, allow_nan=False) + "\n")
