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

The record lives in :mod:`.alert_record`, the false-alarm rate in :mod:`.false_alarm`.
"""

import math
from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import angular_separation
from astropy.time import Time

from .alert_record import ALERT_TENSES, ALERT_TYPES, Alert, alert_id_prefix, iso_utc
from .false_alarm import false_alarm_rate, far_from_config, independent_trials

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
        #: Thresholds of the statistics not in sigma (``cusum``), by method.
        self.thresholds = dict(defaults.get("thresholds", {}))
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
        method = values.get("method", "fit")
        value = float(values["sqrt_ts"] if method == "fit" else values["statistic"])
        if not value >= self.thresholds.get(method, self.threshold):
            self.n_below_threshold += 1
            return None
        ra, dec, r95 = float(values["ra"]) % 360.0, float(values["dec"]), float(values["r95"])
        source = self._matching_source(ra, dec, r95)
        grown = _significance(method, value) - _significance(
            source.last.method, _raised_on(source.last)) if source is not None else None
        if source is not None and grown < self.min_update_step:
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
            method=str(values.get("method", "fit")),
            statistic=None if values.get("method", "fit") == "fit" else float(values["statistic"]),
            arrived=values.get("arrived"),
        )


def _raised_on(alert):
    """The value an alert was raised on (its method's statistic, or ``sqrt_ts``)."""
    return alert.sqrt_ts if alert.statistic is None else alert.statistic


def _significance(method, value):
    """A statistic on the sigma scale for the update rule: CuSum's log-likelihood ratio
    ``S`` as ``sqrt(2 S)`` (a likelihood-ratio TS of ``2 S``), the others as they are."""
    return math.sqrt(2.0 * max(value, 0.0)) if method == "cusum" else value


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
        "thresholds": {"cusum": config.detection.cusum_threshold},
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
