"""A power-law decay temporal model for gamma-ray burst afterglows.

:class:`PowerLawDecayTemporalModel` is a gammapy ``TemporalModel``:

.. math::

    F(t) = \\left(\\frac{t - t_0}{\\tau}\\right)^{-\\alpha}
    \\quad \\text{for } t > t_0 + t_\\mathrm{start}, \\qquad F(t) = 0 \\text{ before,}

so the spectral model's amplitude is the flux at :math:`t_0 + \\tau`. Its time scale
is TT, always: ``t0`` is a TT MJD and every `~astropy.time.Time` argument is
converted to TT before use (gammapy's own ``PowerLawTemporalModel`` reads its
``t_ref`` as UTC: with TT event times the two differ by 69.184 s, and for times less
than that after T0 its ``integral`` is NaN). Integrals are analytic (α ≠ 1 and α = 1)
and time sampling is the analytic inverse CDF.

:func:`decay_weights` is the same integral on plain arrays of seconds, for
likelihoods that weight bunches by the decay.
"""

import astropy.units as u
import numpy as np
from astropy.time import Time
from gammapy.modeling import Parameter
from gammapy.modeling.models import TemporalModel
from gammapy.utils.random import get_random_state

__all__ = ["PowerLawDecayTemporalModel", "decay_weights"]

#: The only time scale of the model.
TIME_SCALE = "tt"
#: Below this |1 - α| the α = 1 (logarithmic) formulas are used.
_ALPHA_ONE_TOLERANCE = 1e-10


def _check_shape_parameters(tau_s, alpha, t_start_s):
    """Raise ValueError naming the parameter when ``tau``/``alpha``/``t_start`` are invalid."""
    if not np.isfinite(tau_s) or tau_s <= 0:
        raise ValueError(f"tau must be a positive time, got {tau_s} s")
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha}")
    if not np.isfinite(t_start_s) or t_start_s < 0:
        raise ValueError(f"t_start must be a non-negative time, got {t_start_s} s")


def _decay_value(elapsed_s, tau_s, alpha, t_start_s):
    """``(elapsed / tau) ** -alpha`` after the onset, 0 before (dimensionless Quantity)."""
    elapsed_s = np.asarray(elapsed_s, dtype=float)
    active = (elapsed_s > 0) & (elapsed_s > t_start_s)
    base = np.where(active, elapsed_s, tau_s) / tau_s  # 1 where inactive: no 0 ** -alpha
    return u.Quantity(np.where(active, base**-alpha, 0.0), "")


def _expm1_ratio(beta, log_ratio):
    """``expm1(beta * log_ratio) / beta``, continuous at ``beta = 0`` (there: ``log_ratio``)."""
    if abs(beta) < _ALPHA_ONE_TOLERANCE:
        return log_ratio
    return np.expm1(beta * log_ratio) / beta


def _decay_integral_s(start_s, stop_s, tau_s, alpha, t_start_s=0.0):
    """Integral of ``((t - t0) / tau) ** -alpha`` over ``[start, stop]``, in s.

    Parameters
    ----------
    start_s, stop_s : array-like
        Interval bounds, s since ``t0`` (any sign; ``stop >= start``).
    tau_s : float
        Decay time scale, s (> 0).
    alpha : float
        Decay index.
    t_start_s : float
        Onset, s after ``t0`` (>= 0): the flux is zero before it.

    Returns
    -------
    integral : `~numpy.ndarray`
        Same shape as the broadcast bounds, s. Zero for intervals before the onset.

    Raises
    ------
    ValueError
        On invalid parameters, ``stop < start``, or a divergent integral (an interval
        reaching down to ``t0`` with ``t_start = 0`` and ``alpha >= 1``).
    """
    _check_shape_parameters(tau_s, alpha, t_start_s)
    start_s, stop_s = np.broadcast_arrays(
        np.asarray(start_s, dtype=float), np.asarray(stop_s, dtype=float)
    )
    if np.any(stop_s < start_s):
        index = int(np.flatnonzero(stop_s < start_s)[0])
        raise ValueError(
            f"interval {index} ends before it starts: "
            f"[{start_s.flat[index]}, {stop_s.flat[index]}] s"
        )
    lower = np.maximum(start_s, t_start_s)
    upper = np.maximum(stop_s, t_start_s)
    beta = 1.0 - alpha
    result = np.zeros(start_s.shape)
    from_t0 = (lower <= 0) & (upper > 0)
    if np.any(from_t0):
        if alpha >= 1:
            raise ValueError(
                f"the decay integral diverges at t0 for alpha = {alpha} >= 1 "
                "and t_start = 0: set t_start > 0 or start the interval after t0"
            )
        result[from_t0] = tau_s * (upper[from_t0] / tau_s) ** beta / beta
    regular = (lower > 0) & (upper > lower)
    if np.any(regular):
        low = lower[regular]
        log_ratio = np.log(upper[regular] / low)
        result[regular] = tau_s * (low / tau_s) ** beta * _expm1_ratio(beta, log_ratio)
    return result


def _decay_inverse_cdf_s(lower_s, upper_s, uniform, alpha):
    """Times in ``[lower, upper]`` (s since t0, ``lower >= 0``) with CDF value ``uniform``."""
    beta = 1.0 - alpha
    times = np.empty(uniform.shape)
    from_t0 = lower_s <= 0
    if np.any(from_t0):  # only reached for alpha < 1 (the integral converges)
        times[from_t0] = upper_s[from_t0] * uniform[from_t0] ** (1.0 / beta)
    regular = ~from_t0
    if np.any(regular):
        low = lower_s[regular]
        log_ratio = np.log(upper_s[regular] / low)
        fraction = uniform[regular]
        if abs(beta) < _ALPHA_ONE_TOLERANCE:
            times[regular] = low * np.exp(fraction * log_ratio)
        else:
            exponent = np.log1p(fraction * np.expm1(beta * log_ratio)) / beta
            times[regular] = low * np.exp(exponent)
    return times


def decay_weights(intervals_s, t0_s, tau_s, alpha, t_start_s=0.0):
    """Integral of the power-law decay over each interval (plain NumPy).

    The same integral as :meth:`PowerLawDecayTemporalModel.integral`, not divided by
    the duration: the expected-count weight of each bunch of a decaying source.

    Parameters
    ----------
    intervals_s : array-like, shape (n, 2)
        Interval start and stop, s since any reference (the one of ``t0_s``).
    t0_s : float
        Burst time T0, s since the same reference.
    tau_s : float
        Decay time scale, s (> 0); the decay is 1 at ``t0 + tau``.
    alpha : float
        Decay index (``F ∝ ((t - t0)/tau) ** -alpha``).
    t_start_s : float, optional
        Onset, s after T0 (>= 0): zero flux before ``t0 + t_start``.

    Returns
    -------
    weights : `~numpy.ndarray`, shape (n,)
        ``∫ ((t - t0)/tau) ** -alpha dt`` over each interval, s.

    Raises
    ------
    ValueError
        On a malformed ``intervals_s``, an interval ending before it starts, invalid
        parameters or a divergent integral.
    """
    intervals = np.asarray(intervals_s, dtype=float)
    if intervals.ndim != 2 or intervals.shape[1] != 2:
        raise ValueError(f"intervals_s must have shape (n, 2), got {intervals.shape}")
    return _decay_integral_s(
        intervals[:, 0] - t0_s,
        intervals[:, 1] - t0_s,
        float(tau_s),
        float(alpha),
        float(t_start_s),
    )


def _as_tt_time(value, name):
    """``value`` (a `~astropy.time.Time`) in TT; anything else is a clear ValueError."""
    if not isinstance(value, Time):
        raise ValueError(f"{name} must be an astropy Time, got {type(value).__name__}")
    return value.tt


class PowerLawDecayTemporalModel(TemporalModel):
    """Power-law decay after a burst: ``F(t) = ((t - t0) / tau) ** -alpha`` after the onset.

    Zero before ``t0 + t_start``. The time scale is TT: ``t0`` is a TT MJD, and
    `~astropy.time.Time` arguments of any scale are converted to TT.

    Parameters
    ----------
    t0 : `~astropy.time.Time` or `~astropy.units.Quantity` or float
        Burst time T0: a Time (any scale; stored as TT) or a TT MJD (day). Frozen.
        Default: 2000-01-01 00:00 TT.
    tau : `~astropy.units.Quantity`
        Decay time scale (s); the model is 1 at ``t0 + tau``. Frozen, default 1 s.
    alpha : float
        Decay index, default 1.6 (free).
    t_start : `~astropy.units.Quantity`
        Onset after T0 (s): zero flux before ``t0 + t_start``. Frozen, default 0 s.
    scale : str
        Time scale; only ``"tt"`` is accepted (kept for gammapy's YAML round trip).

    Raises
    ------
    ValueError
        When ``scale`` is not TT.
    """

    tag = ["PowerLawDecayTemporalModel", "powerlaw-decay"]

    _t0_default = Time("2000-01-01T00:00:00", scale=TIME_SCALE)
    t0 = Parameter("t0", _t0_default.mjd, unit="d", frozen=True)
    tau = Parameter("tau", 1.0, unit="s", frozen=True)
    alpha = Parameter("alpha", 1.6, frozen=False)
    t_start = Parameter("t_start", 0.0, unit="s", frozen=True)

    def __init__(self, scale=TIME_SCALE, **kwargs):
        if scale != TIME_SCALE:
            raise ValueError(
                f"PowerLawDecayTemporalModel works in TT only: got scale={scale!r} "
                "(give t0 as a Time of any scale, it is converted)"
            )
        if isinstance(kwargs.get("t0"), Time):
            kwargs["t0"] = kwargs["t0"].tt.mjd * u.d
        super().__init__(scale=TIME_SCALE, **kwargs)

    @property
    def reference_time(self):
        """T0 as a TT `~astropy.time.Time`."""
        return Time(self.t0.value, format="mjd", scale=TIME_SCALE)

    @reference_time.setter
    def reference_time(self, t0):
        if not isinstance(t0, Time):
            raise TypeError(f"{t0} is not a {Time} object")
        self.t0.value = t0.tt.mjd

    def _shape_values(self):
        """``(tau_s, alpha, t_start_s)`` as floats."""
        return (
            self.tau.quantity.to_value("s"),
            float(self.alpha.value),
            self.t_start.quantity.to_value("s"),
        )

    def _seconds_since_t0(self, time, name="time"):
        """Seconds from T0 to ``time`` (a Time of any scale), computed in TT."""
        return (_as_tt_time(time, name) - self.reference_time).to_value("s")

    @staticmethod
    def evaluate(time, t0, tau, alpha, t_start):
        """Evaluate the decay at MJD (TT) ``time``.

        Parameters
        ----------
        time, t0 : `~astropy.units.Quantity`
            Times as TT MJD (day).
        tau, t_start : `~astropy.units.Quantity`
            Time scale and onset (time).
        alpha : float or `~astropy.units.Quantity`
            Decay index.

        Returns
        -------
        value : `~astropy.units.Quantity`
            Dimensionless; 0 before ``t0 + t_start``.
        """
        return _decay_value(
            u.Quantity(time - t0).to_value("s"),
            u.Quantity(tau, "s").value,
            u.Quantity(alpha, "").value,
            u.Quantity(t_start, "s").value,
        )

    def __call__(self, time, energy=None):
        """Evaluate at ``time`` (a `~astropy.time.Time` of any scale; converted to TT).

        Returns
        -------
        value : `~astropy.units.Quantity`
            Dimensionless model values.
        """
        return _decay_value(self._seconds_since_t0(time), *self._shape_values())

    def integral(self, t_min, t_max, **kwargs):
        """Integrated decay over each interval, divided by the total duration.

        gammapy's convention (its ``MapDataset.npred`` multiplies the flux by the
        sum of this over the GTIs): ``∫ F dt`` over each interval divided by the sum
        of all interval durations.

        Parameters
        ----------
        t_min, t_max : `~astropy.time.Time`
            Interval starts and stops (any scale; converted to TT).

        Returns
        -------
        norm : `~astropy.units.Quantity`
            Dimensionless, the shape of ``t_min``; 0 for intervals before the onset.
        """
        start_s = self._seconds_since_t0(t_min, "t_min")
        stop_s = self._seconds_since_t0(t_max, "t_max")
        integral_s = _decay_integral_s(start_s, stop_s, *self._shape_values())
        duration_s = np.sum(stop_s - start_s)
        if duration_s <= 0:
            raise ValueError(f"the intervals have no duration ({duration_s} s in total)")
        return u.Quantity(integral_s / duration_s, "")

    def sample_time(self, n_events, t_min, t_max, t_delta="1 s", random_state=0):
        """Draw event times from the decay within the intervals (analytic inverse CDF).

        Parameters
        ----------
        n_events : int
            Number of times to draw.
        t_min, t_max : `~astropy.time.Time`
            Interval starts and stops (scalars or arrays, e.g. a GTI's), any scale.
        t_delta : `~astropy.units.Quantity`, optional
            Unused (gammapy's generic sampler's grid step; this one is exact).
        random_state : {int, 'random-seed', 'global-rng', `~numpy.random.RandomState`}
            Passed to `~gammapy.utils.random.get_random_state`.

        Returns
        -------
        time : `~astropy.time.Time`
            ``n_events`` times (unsorted), in the scale of ``t_min``.

        Raises
        ------
        ValueError
            When events are requested but the decay is zero over all intervals.
        """
        random_state = get_random_state(random_state)
        start_s = np.atleast_1d(self._seconds_since_t0(t_min, "t_min"))
        stop_s = np.atleast_1d(self._seconds_since_t0(t_max, "t_max"))
        tau_s, alpha, t_start_s = self._shape_values()
        weights = _decay_integral_s(start_s, stop_s, tau_s, alpha, t_start_s)
        total = weights.sum()
        if n_events > 0 and not total > 0:
            raise ValueError(
                f"cannot sample {n_events} event times: the decay is zero in all intervals "
                f"(onset t0 + {t_start_s} s is after them)"
            )
        if n_events > 0:
            chosen = random_state.choice(len(weights), size=n_events, p=weights / total)
        else:
            chosen = np.zeros(0, dtype=int)
        lower = np.maximum(start_s[chosen], t_start_s)
        upper = np.maximum(stop_s[chosen], t_start_s)
        uniform = random_state.uniform(size=n_events)
        elapsed_s = _decay_inverse_cdf_s(lower, upper, uniform, alpha)
        times = self.reference_time + elapsed_s * u.s
        return getattr(times, t_min.scale)
