"""Statistics of a trials run, on plain arrays: the numbers of :mod:`rtafast.trials.report`.

- the fixed-position TS of background-only trials against its null distribution
  ``½δ(0) + ½χ²₁`` (Chernoff: the norm is bounded at 0), :func:`null_ts_summary`;
- the blind search's highest significance per map and its effective trials factor,
  :func:`blind_summary` and :func:`fit_trials_factor`;
- the detection efficiency against injected flux, :func:`detection_efficiency`;
- the coverage of the localisation error radii, :func:`containment`.

Fractions carry Clopper–Pearson intervals (:func:`clopper_pearson`), 68 % meaning the
central 1σ probability 0.6827. Significances are in σ (one-sided Gaussian), TS is
``2 Δ ln L`` (dimensionless), fluxes in cm⁻² s⁻¹, offsets and radii in deg, times in s.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

__all__ = [
    "CL_1SIGMA",
    "MIN_FIT_COUNTS",
    "binomial_fraction",
    "blind_summary",
    "bounded_ts",
    "clopper_pearson",
    "containment",
    "detection_efficiency",
    "fit_trials_factor",
    "global_pvalue",
    "local_threshold",
    "null_ts_summary",
    "pvalue_table",
    "survival",
]

#: Central probability of the "68 %" intervals: the 1σ Gaussian probability (0.6827).
CL_1SIGMA = float(stats.norm.cdf(1.0) - stats.norm.cdf(-1.0))
#: Thresholds used in the fit of the trials factor need at least this many trials above.
MIN_FIT_COUNTS = 10
#: Step (σ) of the thresholds of the trials-factor fit.
_FIT_STEP = 0.05
#: Error-radius columns and their nominal containment.
_CONTAINMENT_LEVELS = (("r68", 0.68), ("r95", 0.95), ("r997", 0.997))


# --- binomial fractions --------------------------------------------------------------------
def clopper_pearson(k, n, cl=CL_1SIGMA):
    """Clopper–Pearson (exact) central interval of a binomial fraction.

    Parameters
    ----------
    k, n : int or array_like
        Successes and trials (``0 <= k <= n``).
    cl : float
        Central probability of the interval (default: 1σ, 0.6827).

    Returns
    -------
    low, high : float or ndarray
        Interval bounds on ``k / n`` (NaN where ``n == 0``).
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    alpha = 1.0 - cl
    safe_k = np.where(k > 0, k, 1.0)
    safe_rest = np.where(n - k > 0, n - k, 1.0)
    low = np.where(k > 0, stats.beta.ppf(alpha / 2, safe_k, n - k + 1), 0.0)
    high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, safe_rest), 1.0)
    empty = n <= 0
    low, high = np.where(empty, np.nan, low), np.where(empty, np.nan, high)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def binomial_fraction(k, n, expected=None):
    """A fraction ``k / n`` with its errors, as a JSON-ready dict.

    Parameters
    ----------
    k, n : int
        Successes and trials.
    expected : float, optional
        The fraction expected; adds ``expected`` and ``pull`` (the difference in units of
        the binomial error at the expected fraction, ``sqrt(e (1 - e) / n)``).

    Returns
    -------
    fraction : dict
        ``k``, ``n``, ``fraction``, ``err`` (``sqrt(f (1 - f) / n)``), ``low`` and
        ``high`` (68 % Clopper–Pearson); NaN fraction when ``n == 0``.
    """
    k, n = int(k), int(n)
    fraction = k / n if n else math.nan
    err = math.sqrt(fraction * (1 - fraction) / n) if n else math.nan
    low, high = clopper_pearson(k, n)
    out = {"k": k, "n": n, "fraction": fraction, "err": err, "low": low, "high": high}
    if expected is not None:
        spread = math.sqrt(expected * (1 - expected) / n) if n else math.nan
        out["expected"] = float(expected)
        out["pull"] = (fraction - expected) / spread if n and spread > 0 else math.nan
    return out


def survival(values, thresholds):
    """Measured survival function ``P(X >= t)`` with 68 % Clopper–Pearson intervals.

    Parameters
    ----------
    values : array_like
        The sample (NaN excluded).
    thresholds : array_like
        Where to evaluate it, in the units of ``values``.

    Returns
    -------
    k, n, p, low, high
        Counts at or above each threshold (ndarray), sample size (int), ``k / n`` and
        its interval (ndarrays).
    """
    values = np.sort(np.asarray(values, dtype=np.float64))
    values = values[np.isfinite(values)]
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = values.size
    k = n - np.searchsorted(values, thresholds, side="left")
    p = k / n if n else np.full(thresholds.shape, np.nan)
    low, high = clopper_pearson(k, np.full(k.shape, n))
    return k, n, p, low, high


# --- fixed-position TS under the null hypothesis -------------------------------------------
def bounded_ts(ts, norm):
    """The TS of a fit whose norm is bounded at 0: ``ts`` where ``norm > 0`` else 0.

    Its null distribution is ``½δ(0) + ½χ²₁`` (Chernoff). Negative ``ts`` of a positive
    norm (rounding) is clipped to 0.
    """
    ts = np.asarray(ts, dtype=np.float64)
    return np.where(np.asarray(norm) > 0, np.maximum(ts, 0.0), 0.0)


def _ks(values, cdf):
    """``{"statistic", "pvalue", "n"}`` of a one-sample KS test (None for no values)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    result = stats.kstest(values, cdf)
    return {
        "statistic": float(result.statistic),
        "pvalue": float(result.pvalue),
        "n": int(values.size),
    }


def pvalue_table(sqrt_ts, start=1.0, step=0.5):
    """Measured against expected p-values of signed sqrt(TS) thresholds.

    Parameters
    ----------
    sqrt_ts : array_like
        Signed sqrt(TS) of the trials, σ (NaN excluded).
    start, step : float
        Thresholds ``start, start + step, ...`` up to the largest value reached, σ.

    Returns
    -------
    rows : list of dict
        Per threshold ``sqrt_ts`` (σ), ``k``, ``n``, ``p`` (``k / n``), ``low``/``high``
        (68 % Clopper–Pearson) and ``expected`` (the one-sided Gaussian ``Q(s)``, which
        is ``½ P_χ²₁(TS >= s²)``).
    """
    values = np.asarray(sqrt_ts, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.max() < start:
        return []
    top = start + step * math.floor((values.max() - start) / step + 1e-9)
    thresholds = np.arange(start, top + step / 2, step)
    k, n, p, low, high = survival(values, thresholds)
    expected = stats.norm.sf(thresholds)
    return [
        {
            "sqrt_ts": float(t),
            "k": int(ki),
            "n": n,
            "p": float(pi),
            "low": float(lo),
            "high": float(hi),
            "expected": float(e),
        }
        for t, ki, pi, lo, hi, e in zip(thresholds, k, p, low, high, expected, strict=True)
    ]


def null_ts_summary(ts, sqrt_ts, norm, converged=None):
    """The fixed-position TS of background-only trials against ``½δ(0) + ½χ²₁``.

    Parameters
    ----------
    ts, sqrt_ts, norm : array_like
        Per trial the TS, signed sqrt(TS) (σ) and fitted norm; trials with a NaN among
        them are left out (counted in ``n_nonfinite``).
    converged : array_like of bool, optional
        Whether each fit converged (counted in ``n_not_converged``; all are kept).

    Returns
    -------
    summary : dict
        ``n``, ``n_nonfinite``, ``n_not_converged``, ``fraction_positive`` (the norm > 0,
        see :func:`binomial_fraction`, expected 0.5), ``ks_ts_chi2_1`` (KS test of the
        TS of positive norms against χ²₁), ``ks_sqrt_ts_normal`` (of signed sqrt(TS)
        against N(0, 1)), ``max_ts``, ``max_sqrt_ts`` and ``pvalue_table``
        (:func:`pvalue_table`).
    """
    ts, sqrt_ts, norm = (np.asarray(a, dtype=np.float64) for a in (ts, sqrt_ts, norm))
    finite = np.isfinite(ts) & np.isfinite(sqrt_ts) & np.isfinite(norm)
    ts, sqrt_ts, norm = ts[finite], sqrt_ts[finite], norm[finite]
    positive = norm > 0
    bounded = bounded_ts(ts, norm)
    n_bad = 0 if converged is None else int(np.count_nonzero(~np.asarray(converged, bool)))
    return {
        "n": int(ts.size),
        "n_nonfinite": int(np.count_nonzero(~finite)),
        "n_not_converged": n_bad,
        "fraction_positive": binomial_fraction(positive.sum(), ts.size, expected=0.5),
        "ks_ts_chi2_1": _ks(np.maximum(ts[positive], 0.0), stats.chi2(1).cdf),
        "ks_sqrt_ts_normal": _ks(sqrt_ts, "norm"),
        "max_ts": float(bounded.max()) if ts.size else math.nan,
        "max_sqrt_ts": float(sqrt_ts.max()) if ts.size else math.nan,
        "pvalue_table": pvalue_table(sqrt_ts),
    }


# --- blind search: trials factor -----------------------------------------------------------
def global_pvalue(sigma, n_eff):
    """``1 - (1 - Q(s))^N``: the chance that the best of ``N`` independent tests reaches
    ``s`` σ (``Q`` the one-sided Gaussian tail); ``sigma`` in σ, result a probability."""
    local = stats.norm.sf(np.asarray(sigma, dtype=np.float64))
    return -np.expm1(n_eff * np.log1p(-local))


def local_threshold(global_sigma, n_eff):
    """The local (single-pixel) significance, σ, whose global significance over ``N``
    independent tests is ``global_sigma`` σ: inverts :func:`global_pvalue`."""
    p_global = stats.norm.sf(global_sigma)
    return float(stats.norm.isf(-np.expm1(np.log1p(-p_global) / n_eff)))


def _log_misfit(log_n, log_p, local):
    model = -np.expm1(np.exp(log_n) * np.log1p(-local))
    return float(np.sum((log_p - np.log(model)) ** 2))


def fit_trials_factor(maxima, min_counts=MIN_FIT_COUNTS, step=_FIT_STEP):
    """Effective trials factor ``N_eff`` of the highest significance per map.

    Method: the measured survival ``P(max >= s)`` at thresholds ``s = 0, step, ...`` σ with
    at least ``min_counts`` trials at or above (and not all of them) is fitted with
    ``p_global(s) = 1 - (1 - Q(s))^N_eff`` by least squares in ``ln p`` (unweighted; a
    scan of ``ln N_eff`` refined by a bounded Brent search). Per-threshold estimates
    ``ln(1 - p) / ln(1 - Q(s))`` are given as a check of the model.

    Parameters
    ----------
    maxima : array_like
        Per trial the highest signed sqrt(TS) of the map, σ (NaN excluded).
    min_counts : int
        Fewest trials above a threshold for it to enter the fit.
    step : float
        Spacing of the thresholds, σ.

    Returns
    -------
    fit : dict
        ``n_eff`` (None when fewer than 2 thresholds qualify, with ``reason``),
        ``method``, ``n_thresholds``, ``sigma_min``/``sigma_max`` (range fitted, σ),
        ``n_eff_per_threshold_min``/``_max`` (spread of the per-threshold estimates).
    """
    values = np.asarray(maxima, dtype=np.float64)
    values = values[np.isfinite(values)]
    fit = {
        "method": f"least squares in ln P(max >= s) over s = 0, {step:g}, ... sigma "
        f"with >= {min_counts} trials above; P = 1 - (1 - Q(s))^N_eff"
    }
    top = float(values.max()) if values.size else 0.0
    thresholds = np.arange(0.0, top + step / 2, step)
    k, n, p, _, _ = survival(values, thresholds)
    use = (k >= min_counts) & (k < n)
    fit["n_thresholds"] = int(use.sum())
    if use.sum() < 2:
        return fit | {
            "n_eff": None,
            "reason": f"fewer than 2 thresholds with >= {min_counts} trials above",
        }
    log_p, local = np.log(p[use]), stats.norm.sf(thresholds[use])
    grid = np.linspace(math.log(1e-3), math.log(1e12), 301)
    best = grid[np.argmin([_log_misfit(g, log_p, local) for g in grid])]
    width = grid[1] - grid[0]
    result = optimize.minimize_scalar(
        _log_misfit, bounds=(best - width, best + width), args=(log_p, local), method="bounded"
    )
    each = np.log1p(-p[use]) / np.log1p(-local)
    return fit | {
        "n_eff": float(math.exp(result.x)),
        "sigma_min": float(thresholds[use].min()),
        "sigma_max": float(thresholds[use].max()),
        "n_eff_per_threshold_min": float(each.min()),
        "n_eff_per_threshold_max": float(each.max()),
    }


def blind_summary(maxima, threshold_sigma):
    """The blind search's highest significance per map under the null hypothesis.

    Parameters
    ----------
    maxima : array_like
        Per trial the highest signed sqrt(TS) of the map, σ (NaN excluded).
    threshold_sigma : float
        The alert threshold, σ (its post-trial significance is reported).

    Returns
    -------
    summary : dict
        ``n``, ``max``, ``trials_factor`` (:func:`fit_trials_factor`), ``table`` (per
        threshold 1, 1.5, ... σ: measured ``p`` with its 68 % interval, ``p_local``
        and ``p_global_fit``), ``local_sigma_for_5sigma_global`` (σ: the post-trial
        threshold) and ``global_sigma_of_alert_threshold`` (σ); the last two None
        without a fitted ``N_eff``.
    """
    values = np.asarray(maxima, dtype=np.float64)
    values = values[np.isfinite(values)]
    fit = fit_trials_factor(values)
    n_eff = fit["n_eff"]
    table = pvalue_table(values)
    for row in table:
        row["p_local"] = row.pop("expected")
        row["p_global_fit"] = float(global_pvalue(row["sqrt_ts"], n_eff)) if n_eff else None
    alert_global = None
    if n_eff:
        alert_global = float(stats.norm.isf(global_pvalue(threshold_sigma, n_eff)))
    return {
        "n": int(values.size),
        "max": float(values.max()) if values.size else math.nan,
        "trials_factor": fit,
        "table": table,
        "local_sigma_for_5sigma_global": local_threshold(5.0, n_eff) if n_eff else None,
        "alert_threshold_sigma": float(threshold_sigma),
        "global_sigma_of_alert_threshold": alert_global,
    }


# --- source trials -------------------------------------------------------------------------
def _flux_edges(flux, n_bins):
    low, high = float(flux.min()), float(flux.max())
    if low == high:
        return np.array([low, high])
    return np.geomspace(low, high, n_bins + 1)


def detection_efficiency(
    injected_flux, sqrt_ts, threshold, blind_sqrt_ts=None, n_bins=10, edges=None
):
    """Fraction of source trials detected, in bins of injected flux.

    Parameters
    ----------
    injected_flux : array_like
        Injected integral flux per trial, cm⁻² s⁻¹ (only finite values > 0 are used).
    sqrt_ts : array_like
        Fixed-position signed sqrt(TS), σ; detected when ``>= threshold`` (NaN: not).
    threshold : float
        Detection (alert) threshold, σ.
    blind_sqrt_ts : array_like, optional
        The blind search's highest significance, σ: adds ``blind`` fractions.
    n_bins : int
        Bins, equal in log flux from the smallest to the largest flux.
    edges : array_like, optional
        Bin edges, cm⁻² s⁻¹ (instead of ``n_bins``); a flux equal to the last edge is in
        the last bin, one outside the edges in none.

    Returns
    -------
    efficiency : dict
        ``threshold_sigma``, ``edges`` and ``bins``: per non-empty bin ``flux_low``,
        ``flux_high``, ``flux_centre`` (geometric mean), ``fixed`` and optionally
        ``blind`` (:func:`binomial_fraction` dicts).
    """
    flux = np.asarray(injected_flux, dtype=np.float64)
    keep = np.isfinite(flux) & (flux > 0)
    if not keep.any():
        return {"threshold_sigma": float(threshold), "edges": [], "bins": []}
    edges = _flux_edges(flux[keep], n_bins) if edges is None else np.asarray(edges, float)
    index = np.searchsorted(edges, flux, side="right") - 1
    index[flux == edges[-1]] = edges.size - 2
    inside = keep & (index >= 0) & (index < edges.size - 1)
    detected = np.asarray(sqrt_ts, dtype=np.float64) >= threshold
    blind = None if blind_sqrt_ts is None else np.asarray(blind_sqrt_ts, float) >= threshold
    bins = []
    for i in range(edges.size - 1):
        rows = inside & (index == i)
        if not rows.any():
            continue
        entry = {
            "flux_low": float(edges[i]),
            "flux_high": float(edges[i + 1]),
            "flux_centre": float(math.sqrt(edges[i] * edges[i + 1])),
            "fixed": binomial_fraction(detected[rows].sum(), rows.sum()),
        }
        if blind is not None:
            entry["blind"] = binomial_fraction(blind[rows].sum(), rows.sum())
        bins.append(entry)
    return {"threshold_sigma": float(threshold), "edges": edges.tolist(), "bins": bins}


def _containment_block(offset, radii, rows):
    return {
        name: binomial_fraction(
            np.count_nonzero(offset[rows] <= radii[name][rows]), rows.sum(), expected=level
        )
        for name, level in _CONTAINMENT_LEVELS
    }


def containment(offset, r68, r95, r997, sqrt_ts, band=(5.0, 10.0)):
    """Coverage of the localisation error radii: fraction of trials with a candidate whose
    offset from the true position is within each radius.

    Parameters
    ----------
    offset, r68, r95, r997 : array_like
        Per trial the candidate's offset from the injected position and its 68, 95 and
        99.7 % error radii, deg (NaN: no candidate).
    sqrt_ts : array_like
        The fixed-position signed sqrt(TS) at the true position, σ, selecting ``band``.
    band : (float, float)
        The sqrt(TS) range ``[low, high)`` of the second block, σ.

    Returns
    -------
    containment : dict
        ``n_trials``, ``n_with_candidate``, ``overall`` and ``band`` (with ``sqrt_ts_min``,
        ``sqrt_ts_max``): per radius ``r68``/``r95``/``r997`` a :func:`binomial_fraction`
        with its nominal ``expected`` level.
    """
    offset = np.asarray(offset, dtype=np.float64)
    radii = {
        name: np.asarray(a, dtype=np.float64)
        for name, a in zip(("r68", "r95", "r997"), (r68, r95, r997), strict=True)
    }
    has = np.isfinite(offset) & np.all([np.isfinite(r) for r in radii.values()], axis=0)
    sqrt_ts = np.asarray(sqrt_ts, dtype=np.float64)
    in_band = has & (sqrt_ts >= band[0]) & (sqrt_ts < band[1])
    return {
        "n_trials": int(offset.size),
        "n_with_candidate": int(has.sum()),
        "overall": _containment_block(offset, radii, has),
        "band": {
            "sqrt_ts_min": float(band[0]),
            "sqrt_ts_max": float(band[1]),
            **_containment_block(offset, radii, in_band),
        },
    }
