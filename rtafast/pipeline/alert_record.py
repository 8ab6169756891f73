"""The alert record: :class:`Alert`, one notice (a source above the alert threshold in
one window: position and error radii, significance, flux, timing), checked on creation
and written as a JSON-ready dict; the allowed alert types and tenses, deterministic
alert-id prefixes and ISO UTC times as in GCN notices (re-exported by
:mod:`rtafast.pipeline.alerts`, whose :class:`~rtafast.pipeline.alerts.AlertBook` makes
the alerts).
"""

import math
import re
from dataclasses import dataclass, field
from functools import cached_property

import astropy.units as u
import numpy as np
from astropy.time import Time

__all__ = [
    "ALERT_TENSES",
    "ALERT_TYPES",
    "Alert",
    "alert_id_prefix",
    "iso_utc",
]

#: Alert types, as in the GCN notices' core schema.
ALERT_TYPES = ("initial", "update", "retraction")
#: Alert tenses, as in the GCN notices' core schema (``current``: real-time data;
#: ``archival``: a replay of recorded data).
ALERT_TENSES = ("current", "archival", "planned")

_ID_PATTERN = re.compile(r"^[A-Za-z0-9._+-]+$")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def iso_utc(time):
    """An `~astropy.time.Time` as an ISO 8601 UTC string with a ``Z`` (millisecond
    precision), as in GCN notices: ``2026-01-01T00:01:09.000Z``; a list of them for an
    array of times."""
    utc = time.utc
    utc.precision = 3
    if utc.isscalar:
        return f"{utc.isot}Z"
    return [f"{value}Z" for value in utc.isot]


def alert_id_prefix(target_name, runid):
    """``<target>-<runid>``: the part of the alert ids before the sequence number, with
    characters outside ``[A-Za-z0-9._+-]`` replaced by ``_`` (ids are file names and
    IVORN fragments)."""
    safe = _ID_UNSAFE.sub("_", str(target_name)).strip("_") or "target"
    return f"{safe}-{int(runid)}"


@dataclass
class Alert:
    """One alert notice.

    Attributes
    ----------
    alert_id : str
        ``<target>-<runid>-<n>`` (see the module docstring).
    alert_type : {"initial", "update", "retraction"}
    ref_alert_id : str or None
        The first alert of the same source, for an update or a retraction; None for an
        initial alert.
    alert_datetime : `~astropy.time.Time`
        Wall clock when the alert was emitted (UTC).
    target_name : str
    runid : int
        Observation id of the window's last bunch.
    ra, dec : float
        Position, deg (ICRS).
    r68, r95 : float
        Radii of the 68 % and 95 % containment error circles, deg (0 for a fixed,
        configured target position: not localised).
    sqrt_ts, ts : float
        Significance (sigma) and test statistic of the source in the window.
    flux, flux_err, flux_ul : float
        Integral photon flux over ``energy_range``, its 1-sigma error and 95 % upper
        limit, cm-2 s-1 (NaN when the fit failed).
    window_start, window_stop : float
        The window, s after ``trigger_time``.
    delay : float
        Delay of the window after the trigger, s (as in the results table).
    far : float
        False-alarm rate, Hz (see the module docstring: an estimate).
    backend : str
        Array backend of the analysis.
    trigger_time : `~astropy.time.Time`
        The reference time (T0) of the window times.
    time_to_alert : float or None
        s from the window's data handed to the pipeline to the alert's files written
        (set by :meth:`~rtafast.pipeline.outputs.OutputDir.add_alert` from ``arrived``).
    livetime : float or None
        Live time of the window, s.
    energy_range : tuple of float or None
        (min, max) reconstructed energy of the flux, TeV.
    alert_tense : {"current", "archival", "planned"}
    window_kind : str or None
        ``cumulative`` or ``sliding``.
    method : str
        The statistic that raised the alert: ``fit`` (``sqrt_ts``, the flux fit), or a
        time-aware method of ``detection.method``: ``lima_time``, ``cusum``, ``lift``.
    statistic : float or None
        That statistic's value (sigma; CuSum: its log-likelihood ratio); None for
        ``fit`` (it is ``sqrt_ts``).
    arrived : float or None
        `time.perf_counter` when the window's data were handed to the pipeline (not
        written out).
    """

    alert_id: str
    alert_type: str
    ref_alert_id: str | None
    alert_datetime: Time
    target_name: str
    runid: int
    ra: float
    dec: float
    r68: float
    r95: float
    sqrt_ts: float
    ts: float
    flux: float
    flux_err: float
    flux_ul: float
    window_start: float
    window_stop: float
    delay: float
    far: float
    backend: str
    trigger_time: Time
    time_to_alert: float | None = None
    livetime: float | None = None
    energy_range: tuple | None = None
    alert_tense: str = "current"
    window_kind: str | None = None
    method: str = "fit"
    statistic: float | None = None
    arrived: float | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self._check_identity()
        self._check_numbers()
        for name in ("alert_datetime", "trigger_time"):
            if not isinstance(getattr(self, name), Time):
                raise ValueError(f"Alert.{name}: must be an astropy Time")

    def _check_identity(self):
        if not _ID_PATTERN.match(str(self.alert_id)):
            raise ValueError(f"Alert.alert_id: {self.alert_id!r} has characters outside "
                             "[A-Za-z0-9._+-]")
        if self.alert_type not in ALERT_TYPES:
            raise ValueError(f"Alert.alert_type: {self.alert_type!r} not in {ALERT_TYPES}")
        if self.alert_tense not in ALERT_TENSES:
            raise ValueError(f"Alert.alert_tense: {self.alert_tense!r} not in {ALERT_TENSES}")
        initial = self.alert_type == "initial"
        if initial != (self.ref_alert_id is None):
            raise ValueError(
                f"Alert.ref_alert_id: {self.ref_alert_id!r} for a {self.alert_type} alert "
                "(None for an initial alert, the first alert's id otherwise)"
            )

    def _check_numbers(self):
        for name in ("ra", "dec", "r68", "r95", "sqrt_ts", "ts", "window_start",
                     "window_stop", "delay", "far"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"Alert.{name}: must be finite, got {value!r}")
        if not 0.0 <= self.ra < 360.0 or not -90.0 <= self.dec <= 90.0:
            raise ValueError(f"Alert.ra/dec: ({self.ra}, {self.dec}) deg out of range")
        if self.r68 < 0 or self.r95 < self.r68:
            raise ValueError(f"Alert.r68/r95: need 0 <= r68 <= r95, got {self.r68}, {self.r95}")
        if self.window_stop <= self.window_start:
            raise ValueError(
                f"Alert.window_stop: {self.window_stop} s is not after window_start "
                f"{self.window_start} s"
            )
        if self.far < 0:
            raise ValueError(f"Alert.far: must be >= 0 Hz, got {self.far}")

    @property
    def observation_start(self):
        """Start of the window, `~astropy.time.Time`."""
        return self.trigger_time + self.window_start * u.s

    @property
    def observation_stop(self):
        """Stop of the window, `~astropy.time.Time`."""
        return self.trigger_time + self.window_stop * u.s

    @cached_property
    def utc_times(self):
        """ISO UTC strings (with ``Z``) of ``alert_datetime``, ``trigger_time``,
        ``observation_start`` and ``observation_stop``, computed once (astropy time
        arithmetic costs ~0.5 ms a call: an alert is written in three formats)."""
        window = self.trigger_time + np.array([self.window_start, self.window_stop]) * u.s
        start, stop = iso_utc(window)
        return {
            "alert_datetime": iso_utc(self.alert_datetime),
            "trigger_time": iso_utc(self.trigger_time),
            "observation_start": start,
            "observation_stop": stop,
        }

    def to_dict(self):
        """JSON-ready record (one line of ``alerts.jsonl``): times as ISO UTC strings,
        NaN as None, ``observation_start``/``observation_stop`` added, ``arrived`` left
        out."""
        record = {name: getattr(self, name) for name in _RECORD_FIELDS}
        record.update(self.utc_times)
        if record["energy_range"] is not None:
            record["energy_range"] = [float(value) for value in record["energy_range"]]
        return {key: _finite_or_none(value) for key, value in record.items()}


_RECORD_FIELDS = [name for name in Alert.__dataclass_fields__ if name != "arrived"]


def _finite_or_none(value):
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
