"""Time bins of the light curve's fast path: which datasets, and one row per energy bin.

gammapy's ``LightCurveEstimator`` runs, per time bin, a ``FluxPointsEstimator`` on
the datasets whose GTI lies inside the bin (``Datasets.select_time``), which runs a
``FluxEstimator`` per energy bin: the datasets sliced in energy, every parameter but
the source's norm frozen, MINUIT for the norm and its Hesse error, the statistic at
norm 0 for TS, scipy's root search for errn/errp/ul, the statistic on the norm's
scan values. Here the datasets' arrays (:mod:`.lightcurve_inputs`) are selected,
their fitted bins concatenated and the norm solved by
`rtafast.fit.norm_profile.fit_flux_norm`; :func:`energy_bin_row` returns the dict
gammapy's ``estimate_flux_point`` returns (same keys and meaning).
"""

import numpy as np
from gammapy.stats.fit_statistics import get_wstat_mu_bkg

from ..fit.migrad import estimate_norm
from ..fit.norm_profile import NormProfile, fit_flux_norm, norm_problem, stat_profile
from .lightcurve_inputs import seconds_since
from .lightcurve_sensitivity import norm_sensitivity

__all__ = ["UNCONSTRAINED", "select_time_bins", "energy_bin_row", "fitted_norm", "scan_values"]

#: ``NormProfile.message`` of a bin where the source predicts no counts.
UNCONSTRAINED = "no source counts predicted in the fitted bins"


def select_time_bins(spans, time_start, time_stop, reference_time, atol_s):
    """Indices of the datasets inside each time interval, as ``Datasets.select_time``.

    Parameters
    ----------
    spans : numpy.ndarray, shape (n_datasets, 2)
        Per dataset, in order: its first GTI start and last GTI stop, TT seconds
        since ``reference_time``.
    time_start, time_stop : astropy.time.Time
        The intervals (after gammapy's ``GTI.union``).
    reference_time : astropy.time.Time
        Origin of the arrays' ``t_start``/``t_stop``.
    atol_s : float
        gammapy's ``atol`` in seconds.

    Returns
    -------
    list of numpy.ndarray
        For each interval, the indices (ascending) of the datasets whose first GTI
        start is ``>= start - atol`` and last GTI stop ``<= stop + atol``.
    """
    start = seconds_since(time_start, reference_time)[:, None]
    stop = seconds_since(time_stop, reference_time)[:, None]
    t_start, t_stop = spans[:, 0][None, :], spans[:, 1][None, :]
    inside = (t_start >= start - atol_s) & (t_stop <= stop + atol_s)
    return [np.flatnonzero(row) for row in inside]


def fitted_norm(norm_parameter, norm, norm_err, n_sigma):
    """A copy of the estimator's norm as gammapy's fit leaves it: value and Hesse error."""
    parameter = norm_parameter.copy()
    parameter.value = norm if np.isfinite(norm) else parameter.value
    if np.isfinite(norm_err):
        parameter.error = norm_err / n_sigma
    return parameter


def scan_values(norm_parameter, norm, norm_err, n_sigma):
    """gammapy's ``parameter.scan_values`` of the norm after the fit.

    The default norm scans fixed values (0.2 to 5); a norm defined by
    ``scan_n_sigma`` scans around the best fit with the Hesse error.
    """
    return fitted_norm(norm_parameter, norm, norm_err, n_sigma).scan_values


def _pieces(arrays, energy_slice):
    """Per dataset: the fitted bins (mask) of the energy slice, and the sliced arrays."""
    pieces = []
    for a in arrays:
        mask = a.mask[energy_slice]
        sliced = {"mask": mask, "counts": a.counts[energy_slice][mask]}
        sliced["signal"] = a.signal[energy_slice][mask]
        if a.is_wstat:
            sliced["counts_off"] = a.counts_off[energy_slice][mask]
            sliced["alpha"] = a.alpha[energy_slice][mask]
        else:
            sliced["fixed"] = a.fixed[energy_slice][mask]
        pieces.append(sliced)
    return pieces


def _joined(pieces, key):
    return np.concatenate([p[key].ravel() for p in pieces]) if pieces else np.zeros(0)


def _statistic_inputs(pieces, wstat):
    if wstat:
        return {"counts_off": _joined(pieces, "counts_off"), "alpha": _joined(pieces, "alpha")}
    return {"background": _joined(pieces, "fixed")}


def _unconstrained(counts, signal, inputs, backend, start):
    """gammapy's result when the source predicts no counts in any fitted bin.

    (zero exposure: no live time.) MINUIT cannot move the norm: gammapy returns the
    norm's start value with NaN errors, ``success`` False, the statistic of the
    fixed part as ``stat`` and ``stat_null`` (TS 0), and no source counts.
    """
    stat = float(stat_profile(counts, signal, [0.0], **inputs, array_backend=backend)[0])
    nan = np.nan
    return NormProfile(start, nan, nan, nan, nan, 0.0, stat, stat, False, 0, UNCONSTRAINED)


def _npred(piece, norm, wstat):
    """gammapy's ``dataset.npred().data[mask].sum()`` at the best-fit norm."""
    mu_sig = norm * piece["signal"]
    if not wstat:
        return float(np.sum(piece["fixed"] + mu_sig))
    alpha = piece["alpha"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_bkg = alpha * get_wstat_mu_bkg(piece["counts"], piece["counts_off"], alpha, mu_sig)
    return float(np.sum(mu_sig + np.nan_to_num(mu_bkg)))


def energy_bin_row(arrays, energy_slice, reference, options, backend):
    """gammapy's ``FluxPointsEstimator.estimate_flux_point`` result for one energy bin.

    Parameters
    ----------
    arrays : list of `DatasetArrays`
        The time bin's datasets (all Cash or all WStat).
    energy_slice : slice
        Reco-energy bins of the energy bin.
    reference : dict
        The energy bin's ``reference_fluxes`` (``e_min``, ``ref_dnde``, ...), scalars.
    options : `LightCurveOptions`
        The estimator's settings the fast path uses.
    backend : str or backend
        rtafast array backend of the fits.

    Returns
    -------
    dict
        Keys and meaning of gammapy's row: the reference fluxes, ``norm``,
        ``norm_err``, ``ts``, ``stat``, ``stat_null``, ``success``, ``npred``,
        ``npred_excess``, ``counts`` (per dataset), ``datasets`` and the optional
        ``norm_errn``/``norm_errp``, ``norm_ul``, ``norm_scan``/``stat_scan``,
        ``norm_sensitivity``.
    """
    wstat = arrays[0].is_wstat
    pieces = _pieces(arrays, energy_slice)
    counts, signal = _joined(pieces, "counts"), _joined(pieces, "signal")
    inputs = _statistic_inputs(pieces, wstat)
    parameter = None
    if counts.size > 0 and not np.any(signal):
        fit = _unconstrained(counts, signal, inputs, backend, options.norm.value)
    elif counts.size > 0:
        problem = norm_problem(counts, signal, **inputs, backend=backend)
        fit, parameter = estimate_norm(problem, options.fit, options.norm, options)
    else:  # no fitted bin: gammapy's result without a fit
        fit = fit_flux_norm(counts, signal, **inputs, array_backend=backend)
    contributes = counts.size > 0
    norm = fit.norm
    row = dict(reference)
    row.update(norm=norm, stat=fit.stat, success=bool(fit.success), norm_err=fit.norm_err)
    npred = [_npred(p, norm, wstat) for p in pieces]
    row.update(ts=fit.ts, npred=np.array(npred) if contributes else np.full(len(pieces), np.nan))
    row["stat_null"] = fit.stat_null
    if options.errn_errp:
        row.update(norm_errp=fit.norm_errp, norm_errn=fit.norm_errn)
    if options.ul:
        row["norm_ul"] = fit.norm_ul
    if options.scan:
        values = (
            parameter.scan_values
            if parameter is not None
            else scan_values(options.norm, norm, fit.norm_err, options.n_sigma)
        )
        stats = (
            stat_profile(counts, signal, values, **inputs, array_backend=backend)
            if contributes
            else values * np.nan
        )
        row.update(norm_scan=values, stat_scan=stats)
    if options.sensitivity:
        row["norm_sensitivity"] = np.nan
        if contributes and fit.message != UNCONSTRAINED:
            if parameter is None:
                parameter = fitted_norm(options.norm, norm, fit.norm_err, options.n_sigma)
            row["norm_sensitivity"] = norm_sensitivity(
                counts, signal, inputs, parameter, options.n_sigma_sensitivity
            )
    row["npred_excess"] = np.array([float(np.sum(norm * p["signal"])) for p in pieces])
    row["datasets"] = [a.name for a in arrays]
    row["counts"] = np.array([p["counts"].sum() for p in pieces], dtype=int)
    return row
