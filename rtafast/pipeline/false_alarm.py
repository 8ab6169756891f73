"""False-alarm rate of the alerts, an estimate: the one-sided Gaussian p-value of the
alert threshold ``Q(s)`` times the independent tests per window (map area over
point-spread-sized cells, times the window kinds) over the time between windows (the
bunch duration), ``far = p * N / T`` in Hz (see :mod:`rtafast.pipeline.alerts`, which
re-exports these functions, for what it ignores).
"""

import math

import astropy.units as u

__all__ = ["false_alarm_rate", "far_from_config", "independent_trials"]


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
