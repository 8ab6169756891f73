"""Alerts: which candidates become notices, initial or update, and their false-alarm rate.

An :class:`Alert` is one notice: a source above the alert threshold in one window, its
position and error radii, significance, flux and timing. :class:`AlertBook` decides,
window after window, which candidates are worth a notice:

- a candidate below the threshold gives none;
- a candidate that matches no earlier alert's position gives an **initial** alert;
- a candidate that matches an earlier alert (its angular distance to the position of
  that source's last notice is at most the larger of the two 95 % radii, or a fixed
  ``match_radius``) gives an **update** only when its significance grew by at least
  ``min_update_step`` (sigma) since that last notice; the update refers to the source's
  first alert (``ref_alert_id``); otherwise no notice (counted as suppressed).

Alert ids are deterministic: ``<target>-<runid>-<n>``, ``n`` counting this book's alerts
from 1, the target name with characters outside ``[A-Za-z0-9._+-]`` replaced by ``_``;
a rerun of the same data gives the same ids. ``alert_datetime`` is the wall clock (UTC)
when the alert is emitted.

False-alarm rate (an estimate until the empty-field calibration of issue 15 replaces
it): with the alert threshold ``s`` (sigma), the one-sided Gaussian p-value of one test
``p = Q(s) = 1 - Phi(s)``, the number of independent tests per window
``N = A_map / (pi r_cell^2)`` (map area over point-spread-sized cells; ``r_cell`` the
Li & Ma correlation radius for ``lima``, the photometry on-region radius for
``tsmap``) times the windows analysed per bunch, and windows every bunch duration
``T``::

    far = p * N / T      [Hz]

It ignores the correlation of successive cumulative windows and of neighbouring cells
(both make it conservative) and the deviations from Gaussian tails at low counts.
"""

import math
import re
from dataclasses import dataclass, field
from functools import cached_property

import astropy.units as u
import numpy as np
from astropy.coordinates import angular_separation
from astropy.time import Time

__all__ = [
    "ALERT_TYPES",
    "ALERT_TENSES",
    "Alert",
    "AlertBook",
    "alert_id_prefix",
    "false_alarm_rate",
    "far_from_config",
    "independent_trials",
    "iso_utc",
]

#: Alert types, as in the GCN notices' core schema.
ALERT_TYPES = ("initial", "update", "retraction")
#: Alert tenses, as in the GCN notices' core schema (``current``: real-time data;
#: ``archival``: a replay of recorded data).
ALERT_TENSES = ("current", "archival", "planned")

_ID_PATTERN = re.compile(r"^[A-Za-z0-9._+-]+$")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")

#: What :meth:`AlertBook.consider` needs in its fields.
REQUIRED_FIELDS = (
    "runid",
    "ra",
    "dec",
    "r68",
    "r95",
    "sqrt_ts",
    "ts",
    "flux",
    "flux_err",
    "flux_ul",
    "window_start",
    "window_stop",
    "delay",
    "backend",
    "trigger_time",
)


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


# -- false-alarm rate --------------------------------------------------------------------
def independent_trials(map_width, cell_radius):
    """Approximate number of independent positions tested in one map.

    Parameters
    ----------
    map_width : float or `~astropy.units.Quantity`
        Width (= height) of the square map, deg.
    cell_radius : float or `~astropy.units.Quantity`
        Radius of one point-spread-sized cell, deg.

    Returns
    -------
    n : float
        ``map_width**2 / (pi cell_radius**2)``, at least 1.
    """
    width = u.Quantity(map_width, u.deg).to_value(u.deg)
    radius = u.Quantity(cell_radius, u.deg).to_value(u.deg)
    if width <= 0 or radius <= 0:
        raise ValueError(f"independent_trials: map_width {width} deg and cell_radius "
                         f"{radius} deg must be > 0")
    return max(1.0, width**2 / (math.pi * radius**2))


def false_alarm_rate(threshold, cadence, n_trials):
    """False-alarm rate of a Gaussian-significance threshold, Hz (an estimate).

    Parameters
    ----------
    threshold : float
        Alert threshold, sigma.
    cadence : float or `~astropy.units.Quantity`
        Time between two analysed windows (the bunch duration), s.
    n_trials : float
        Independent tests per window interval (positions times windows per bunch).

    Returns
    -------
    far : float
        ``Q(threshold) * n_trials / cadence``, Hz, with ``Q`` the one-sided Gaussian
        tail probability.
    """
    from scipy.stats import norm

    seconds = u.Quantity(cadence, u.s).to_value(u.s)
    if seconds <= 0 or n_trials < 1:
        raise ValueError(f"false_alarm_rate: cadence {seconds} s must be > 0 and n_trials "
                         f"{n_trials} >= 1")
    return float(norm.sf(threshold)) * n_trials / seconds


def far_from_config(config):
    """The false-alarm rate estimate (Hz) of a `~rtafast.pipeline.config.PipelineConfig`:
    threshold ``alert.threshold``, cadence ``stream.bunch``, map ``geometry.width``,
    cells of ``detection.correlation_radius`` (``lima``) or ``photometry.on_radius``
    (``tsmap``), times the number of window kinds in ``stream.windows``."""
    if config.detection.method == "lima":
        cell = config.detection.correlation_radius
    else:
        cell = config.photometry.on_radius
    trials = independent_trials(config.geometry.width, cell) * len(config.stream.windows)
    return false_alarm_rate(config.alert.threshold, config.stream.bunch, trials)


# -- the book ----------------------------------------------------------------------------
@dataclass
class _Source:
    """The alerts of one source: its first and its last notice."""

    first: Alert
    last: Alert


class AlertBook:
    """Decide which candidates become alerts (initial or update) over a run.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`, optional
        Gives the defaults of the other parameters: ``alert.threshold``,
        ``alert.min_update_step``, ``target.name``, the false-alarm rate
        (:func:`far_from_config`), the energy range (``selection``) and the tense
        (``current`` when ``input.watch`` is set, ``archival`` for a replay).
    threshold : float, optional
        Alert threshold, sigma (default 5).
    min_update_step : float, optional
        Least growth of the significance since a source's last notice for an update,
        sigma (default 1).
    target_name : str, optional
        Default ``"target"``.
    far : float, optional
        False-alarm rate of every alert, Hz (default: the config's estimate, or 0.0
        without a config).
    match_radius : float, optional
        Fixed matching distance, deg; default: the larger of the two 95 % radii.
    tense : {"current", "archival", "planned"}, optional
    energy_range : tuple of float, optional
        (min, max) energy of the fluxes, TeV.
    clock : callable, optional
        Returns the current `~astropy.time.Time` (default `Time.now`; tests pass a fixed
        clock).

    Attributes
    ----------
    emitted : list of `Alert`
        Every alert emitted, in order.
    n_suppressed : int
        Candidates above the threshold on an already alerted source that did not grow
        enough for an update.
    n_below_threshold : int
        Candidates considered below the threshold.
    """

    def __init__(self, config=None, *, threshold=None, min_update_step=None,
                 target_name=None, far=None, match_radius=None, tense=None,
                 energy_range=None, clock=None):
        defaults = _defaults_from_config(config)
        self.threshold = float(_first_given(threshold, defaults.get("threshold"), 5.0))
        self.min_update_step = float(
            _first_given(min_update_step, defaults.get("min_update_step"), 1.0)
        )
        self.target_name = str(_first_given(target_name, defaults.get("target_name"), "target"))
        self.far = float(_first_given(far, defaults.get("far"), 0.0))
        self.match_radius = None if match_radius is None else float(match_radius)
        self.tense = _first_given(tense, defaults.get("tense"), "current")
        self.energy_range = _first_given(energy_range, defaults.get("energy_range"), None)
        self.clock = clock or Time.now
        if self.tense not in ALERT_TENSES:
            raise ValueError(f"AlertBook tense: {self.tense!r} not in {ALERT_TENSES}")
        if self.min_update_step < 0:
            raise ValueError(f"AlertBook min_update_step: must be >= 0, got {min_update_step}")
        self.emitted = []
        self.n_suppressed = 0
        self.n_below_threshold = 0
        self._sources = []

    def consider(self, fields=None, **more):
        """Decide on one candidate of one window; returns the new `Alert` or None.

        Parameters
        ----------
        fields : mapping, optional
            The candidate's values (a results row will do; keys not listed here are
            ignored): required ``runid, ra, dec (deg), r68, r95 (deg), sqrt_ts, ts, flux,
            flux_err, flux_ul (cm-2 s-1), window_start, window_stop (s after the
            trigger, or Time), delay (s), backend, trigger_time (Time)``; optional
            ``target_name, texp (s, the live time), window_kind, arrived
            (perf_counter), time_to_alert (s)``.
        **more
            More fields (override ``fields``).

        Returns
        -------
        alert : `Alert` or None

        Raises
        ------
        ValueError
            A required field is missing or a value is out of range (naming it).
        """
        values = dict(fields or {}, **more)
        missing = [name for name in REQUIRED_FIELDS if name not in values]
        if missing:
            raise ValueError(f"AlertBook.consider: missing field(s) {', '.join(missing)}")
        sqrt_ts = float(values["sqrt_ts"])
        if not sqrt_ts >= self.threshold:
            self.n_below_threshold += 1
            return None
        ra, dec, r95 = float(values["ra"]) % 360.0, float(values["dec"]), float(values["r95"])
        source = self._matching_source(ra, dec, r95)
        if source is not None and sqrt_ts < source.last.sqrt_ts + self.min_update_step:
            self.n_suppressed += 1
            return None
        alert = self._make_alert(values, ra, source)
        if source is None:
            self._sources.append(_Source(first=alert, last=alert))
        else:
            source.last = alert
        self.emitted.append(alert)
        return alert

    def summary(self):
        """Counts for ``run.json``: initial, update, suppressed, below threshold."""
        types = [alert.alert_type for alert in self.emitted]
        return {
            "n_alerts": len(self.emitted),
            "n_initial": types.count("initial"),
            "n_update": types.count("update"),
            "n_suppressed": self.n_suppressed,
            "n_below_threshold": self.n_below_threshold,
            "far_hz": self.far,
        }

    # -- helpers ---------------------------------------------------------------------------
    def _matching_source(self, ra, dec, r95):
        """The alerted source nearest to (ra, dec) within the matching distance, or None."""
        best, best_distance = None, math.inf
        for source in self._sources:
            last = source.last
            distance = math.degrees(
                angular_separation(
                    math.radians(ra), math.radians(dec),
                    math.radians(last.ra), math.radians(last.dec),
                )
            )
            radius = self.match_radius if self.match_radius is not None else max(r95, last.r95)
            if distance <= radius and distance < best_distance:
                best, best_distance = source, distance
        return best

    def _make_alert(self, values, ra, source):
        target_name = str(values.get("target_name", self.target_name))
        trigger = values["trigger_time"]
        number = len(self.emitted) + 1
        return Alert(
            alert_id=f"{alert_id_prefix(target_name, values['runid'])}-{number}",
            alert_type="initial" if source is None else "update",
            ref_alert_id=None if source is None else source.first.alert_id,
            alert_datetime=self.clock(),
            target_name=target_name,
            runid=int(values["runid"]),
            ra=ra,
            dec=float(values["dec"]),
            r68=float(values["r68"]),
            r95=float(values["r95"]),
            sqrt_ts=float(values["sqrt_ts"]),
            ts=float(values["ts"]),
            flux=float(values["flux"]),
            flux_err=float(values["flux_err"]),
            flux_ul=float(values["flux_ul"]),
            window_start=_seconds_after(values["window_start"], trigger, "window_start"),
            window_stop=_seconds_after(values["window_stop"], trigger, "window_stop"),
            delay=_seconds(values["delay"], "delay"),
            far=self.far,
            backend=str(values["backend"]),
            trigger_time=trigger,
            time_to_alert=values.get("time_to_alert"),
            livetime=_optional_seconds(values.get("texp"), "texp"),
            energy_range=self.energy_range,
            alert_tense=self.tense,
            window_kind=values.get("window_kind"),
            arrived=values.get("arrived"),
        )


def _first_given(*values):
    for value in values:
        if value is not None:
            return value
    return None


def _defaults_from_config(config):
    if config is None:
        return {}
    selection = config.selection
    return {
        "threshold": config.alert.threshold,
        "min_update_step": config.alert.min_update_step,
        "target_name": config.target.name,
        "far": far_from_config(config),
        "tense": "current" if config.input.watch else "archival",
        "energy_range": (
            float(selection.energy_min.to_value(u.TeV)),
            float(selection.energy_max.to_value(u.TeV)),
        ),
    }


def _seconds(value, name):
    try:
        return float(u.Quantity(value, u.s).to_value(u.s))
    except (TypeError, u.UnitsError) as error:
        raise ValueError(f"AlertBook.consider: {name} must be seconds, got {value!r}") from error


def _optional_seconds(value, name):
    return None if value is None else _seconds(value, name)


def _seconds_after(value, trigger, name):
    """A window bound as s after the trigger (accepts s, a Quantity or a Time)."""
    if isinstance(value, Time):
        return float((value - trigger).to_value(u.s))
    return _seconds(value, name)
