"""VOEvent 2.0 packets of alerts (voevent-parse), validated against the VOEvent 2.0 schema.

One packet per alert, IVORN ``ivo://<stream>#<alert_id>`` (default stream
``ctao.rtafast/alert``), role ``observation`` (``test`` for simulations):

- **Who**: author IVORN, date (the alert's ``alert_datetime``), author title/short name,
  rtafast's version.
- **What**: ``alert_type``, ``runid``, ``method`` and ``statistic`` (what raised the
  alert), ``sqrt_ts`` (sigma), ``ts``, ``flux``, ``flux_err``, ``flux_ul`` (cm-2 s-1;
  left out when the fit failed),
  ``energy_min``/``energy_max`` (TeV), ``window_start``/``window_stop`` (ISO UTC and
  s after the trigger), ``livetime`` (s), ``time_to_alert`` (s, when measured), ``far``
  (Hz), ``r68`` and ``r95`` (deg), ``backend``.
- **WhereWhen**: the position in ICRS (``UTC-ICRS-TOPO``, ground observatory), the
  error radius ``Error2Radius`` = r95 (95 % containment, statistical), the time of the
  window's start.
- **How**: a description of the analysis.
- **Why**: ``importance`` = min(1, sqrt_ts / 10) (5 sigma: 0.5, 10 sigma and above: 1)
  and a description (significance, false-alarm rate).
- **Citations** (updates and retractions): the first alert's IVORN, cited as
  ``supersedes`` (update) or ``retraction``.

voevent-parse 1.0.3's list helpers (``add_citations``, ``add_how(references=...)``,
``add_why(inferences=...)``) use ``collections.Iterable``, gone since Python 3.10
(timstaley/voevent-parse PR 11, open): the Citations are built here with lxml directly.
"""

import datetime
import math

import voeventparse as vp
from lxml import etree

from .atomic import write_atomic

__all__ = [
    "DEFAULT_AUTHOR",
    "DEFAULT_STREAM",
    "VOEventValidationError",
    "alert_ivorn",
    "importance",
    "voevent_xml",
    "write_voevent",
]

#: Default stream of the IVORNs: ``ivo://ctao.rtafast/alert#<alert_id>``.
DEFAULT_STREAM = "ctao.rtafast/alert"
#: Default author IVORN (without ``ivo://``).
DEFAULT_AUTHOR = "ctao.rtafast"

_CITE_TYPES = {"update": vp.definitions.cite_types.supersedes,
               "retraction": vp.definitions.cite_types.retraction}


class VOEventValidationError(ValueError):
    """A packet does not validate against the VOEvent 2.0 schema (a bug)."""


def alert_ivorn(alert_id, stream=DEFAULT_STREAM):
    """``ivo://<stream>#<alert_id>``."""
    return f"ivo://{stream}#{alert_id}"


def importance(sqrt_ts):
    """The VOEvent ``Why/@importance`` of a significance: min(1, sqrt_ts / 10), >= 0."""
    return min(1.0, max(0.0, float(sqrt_ts) / 10.0))


def _utc_datetime(iso):
    """An ISO UTC string with ``Z`` as a timezone-aware datetime."""
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _rtafast_version():
    from .. import __version__

    return __version__


def _finite(value):
    return value is not None and math.isfinite(value)


def _what_params(alert):
    """The What section's Params (unset or non-finite optional values left out)."""
    times = alert.utc_times
    params = [
        vp.Param("alert_type", alert.alert_type),
        vp.Param("runid", int(alert.runid)),
        vp.Param("sqrt_ts", float(alert.sqrt_ts), unit="sigma", ucd="stat.snr"),
        vp.Param("ts", float(alert.ts), ucd="stat.likelihood"),
        vp.Param("far", float(alert.far), unit="Hz"),
        vp.Param("r68", float(alert.r68), unit="deg", ucd="stat.error;pos.eq"),
        vp.Param("r95", float(alert.r95), unit="deg", ucd="stat.error;pos.eq"),
        vp.Param("window_start", times["observation_start"], ucd="time.start"),
        vp.Param("window_stop", times["observation_stop"], ucd="time.end"),
        vp.Param("window_start_after_trigger", float(alert.window_start), unit="s"),
        vp.Param("window_stop_after_trigger", float(alert.window_stop), unit="s"),
        vp.Param("trigger_time", times["trigger_time"], ucd="time.epoch"),
        vp.Param("backend", alert.backend),
        vp.Param("method", alert.method),
    ]
    if _finite(alert.statistic):
        params.append(vp.Param("statistic", float(alert.statistic), ucd="stat.value"))
    flux_params = (("flux", alert.flux, "phot.flux"),
                   ("flux_err", alert.flux_err, "stat.error;phot.flux"),
                   ("flux_ul", alert.flux_ul, "phot.flux;stat.max"))
    for name, value, ucd in flux_params:
        if _finite(value):
            params.append(vp.Param(name, float(value), unit="cm-2.s-1", ucd=ucd))
    if alert.energy_range is not None:
        low, high = (float(value) for value in alert.energy_range)
        params.append(vp.Param("energy_min", low, unit="TeV", ucd="em.energy;stat.min"))
        params.append(vp.Param("energy_max", high, unit="TeV", ucd="em.energy;stat.max"))
    if _finite(alert.livetime):
        params.append(vp.Param("livetime", float(alert.livetime), unit="s", ucd="time.duration"))
    if _finite(alert.time_to_alert):
        params.append(vp.Param("time_to_alert", float(alert.time_to_alert), unit="s"))
    return params


def _add_citation(packet, alert, stream):
    """Cite the first alert of the source (lxml directly: see the module docstring)."""
    if alert.ref_alert_id is None:
        return
    citations = etree.SubElement(packet, "Citations")
    citations.append(vp.EventIvorn(alert_ivorn(alert.ref_alert_id, stream),
                                   _CITE_TYPES[alert.alert_type]))
    citations.Description = f"{alert.alert_type} of alert {alert.ref_alert_id}"


def voevent_xml(alert, *, stream=DEFAULT_STREAM, role="observation",
                author_ivorn=DEFAULT_AUTHOR, author_title="rtafast real-time analysis"):
    """The VOEvent 2.0 packet of an alert, validated.

    Parameters
    ----------
    alert : `~rtafast.pipeline.alerts.Alert`
    stream : str
        IVORN stream: the packet is ``ivo://<stream>#<alert_id>``.
    role : {"observation", "test", "utility", "prediction"}
        ``test`` for simulated data.
    author_ivorn : str
        Author IVORN, without ``ivo://``.
    author_title : str
        Author title.

    Returns
    -------
    xml : bytes
        UTF-8 XML with declaration.

    Raises
    ------
    VOEventValidationError
        When the packet does not validate against the VOEvent 2.0 schema.
    """
    packet = vp.Voevent(stream=stream, stream_id=alert.alert_id, role=role)
    times = alert.utc_times
    vp.set_who(packet, date=_utc_datetime(times["alert_datetime"]), author_ivorn=author_ivorn)
    vp.set_author(packet, title=author_title, shortName="rtafast")
    packet.Who.Description = f"rtafast {_rtafast_version()} real-time analysis"
    packet.What.append(vp.Group(_what_params(alert), name="alert"))
    packet.What.Description = (
        f"{alert.alert_type} alert on {alert.target_name}: sqrt(TS) "
        f"{alert.sqrt_ts:.2f} in the window {alert.window_start:g}-{alert.window_stop:g} s "
        "after the trigger"
    )
    position = vp.Position2D(
        ra=float(alert.ra), dec=float(alert.dec), err=float(alert.r95),
        units=vp.definitions.units.degree, system=vp.definitions.sky_coord_system.utc_icrs_topo,
    )
    vp.add_where_when(packet, coords=position, obs_time=_utc_datetime(times["observation_start"]),
                      observatory_location=vp.definitions.observatory_location.geosurface)
    vp.add_how(packet, descriptions=(
        f"rtafast real-time analysis ({alert.backend} backend): blind search, localisation "
        "from the TS surface, flux-only fit with a fixed power-law index. Error2Radius is "
        "the 95 % containment radius (statistical only)."
    ))
    vp.add_why(packet, importance=importance(alert.sqrt_ts))
    packet.Why.Description = (
        f"gamma-ray source above the alert threshold: sqrt(TS) {alert.sqrt_ts:.2f}, "
        f"estimated false-alarm rate {alert.far:.3g} Hz"
    )
    _add_citation(packet, alert, stream)
    if not vp.valid_as_v2_0(packet):
        try:
            vp.assert_valid_as_v2_0(packet)
        except etree.DocumentInvalid as error:
            raise VOEventValidationError(f"VOEvent {alert.alert_id}: {error}") from error
    return vp.dumps(packet, pretty_print=True)


def write_voevent(alert, path, **options):
    """Write an alert's validated VOEvent to ``path`` (atomically).

    Parameters
    ----------
    alert : `~rtafast.pipeline.alerts.Alert`
    path : str or `~pathlib.Path`
    **options
        Passed to :func:`voevent_xml`.
    """
    write_atomic(path, voevent_xml(alert, **options))
