"""The "sensitivity" selection of the light curve on arrays (gammapy's search, fast statistic).

gammapy's ``ParameterEstimator.estimate_sensitivity`` looks for the norm whose Asimov
dataset (counts = the prediction at that norm) reaches ``n_sigma_sensitivity``
(``ParameterSensitivityEstimator``): ``find_roots`` samples the norm's confidence
range in 100 log-spaced points and refines each sign change with brentq
(``rtol=0.01``, 100 iterations at most); the first positive root is the result. Each
evaluation builds Asimov datasets and two statistic sums with gammapy's models (~1 s
per bin). Here the same ``find_roots`` runs on a function computing the Asimov
counts and the two statistics on the fitted bins' arrays with gammapy's vectorised
``cash``/``wstat``: the same samples, the same iterates, the same root up to rounding.

gammapy's functions are kept here on purpose, not the ``wstat_reduce`` kernels (which
no longer raise on such inputs): at the underflowing norms the search samples, a bin
can be NaN in gammapy (``nan_to_num``: it counts 0) where the kernels give inf (e.g.
``n_on = n_off = 5e-324``, ``mu_sig = -1e-300``), so only gammapy's own NaN handling
reproduces gammapy's iterates there.
"""

import warnings

import numpy as np
from gammapy.stats import cash, wstat
from gammapy.stats.fit_statistics import get_wstat_mu_bkg
from gammapy.stats.utils import ts_to_sigma
from gammapy.utils.roots import find_roots

__all__ = ["asimov_ts", "norm_sensitivity"]


def _stat_sum(counts, mu_sig, inputs):
    """gammapy's ``stat_sum`` of the bins: Cash of ``background + mu_sig`` or WStat."""
    if "background" in inputs:
        return float(np.sum(cash(counts, inputs["background"] + mu_sig)))
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = wstat(n_on=counts, n_off=inputs["counts_off"], alpha=inputs["alpha"], mu_sig=mu_sig)
    return float(np.sum(np.nan_to_num(stat)))


def asimov_ts(norm, counts, signal, inputs):
    """TS of the source at ``norm`` in the Asimov dataset of that norm.

    The statistic is gammapy's own vectorised ``cash``/``wstat`` (with its
    ``nan_to_num``): the search samples norms down to ~1e-305, where the Asimov
    counts underflow and only gammapy's NaN handling gives gammapy's answer.

    Parameters
    ----------
    norm : float
        The norm.
    counts, signal : numpy.ndarray
        Observed counts and source counts at norm 1 of the fitted bins.
    inputs : dict
        ``background`` (Cash) or ``counts_off`` and ``alpha`` (WStat).

    Returns
    -------
    float
        ``stat(Asimov, norm 0) - stat(Asimov, norm)``, as gammapy's ``ts_asimov``.
    """
    mu_sig = norm * signal
    if "background" in inputs:
        asimov = inputs["background"] + mu_sig
    else:
        alpha = inputs["alpha"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mu_bkg = alpha * get_wstat_mu_bkg(counts, inputs["counts_off"], alpha, mu_sig)
        asimov = mu_sig + np.nan_to_num(mu_bkg)
    asimov = np.nan_to_num(asimov, nan=0.0, posinf=0.0, neginf=0.0)
    return _stat_sum(asimov, np.zeros_like(mu_sig), inputs) - _stat_sum(asimov, mu_sig, inputs)


def norm_sensitivity(counts, signal, inputs, parameter, n_sigma):
    """gammapy's ``norm_sensitivity`` of one fit (NaN when no positive root).

    Parameters
    ----------
    counts, signal, inputs
        As :func:`asimov_ts`.
    parameter : gammapy.modeling.Parameter
        The norm as gammapy holds it then: value the best fit, error the Hesse
        error (its ``conf_min``/``conf_max`` bound the search, ``interp`` scales it).
    n_sigma : float
        The estimator's ``n_sigma_sensitivity``.
    """

    def excess_sigma(value):
        ts = asimov_ts(value, counts, signal, inputs)
        return ts_to_sigma(ts, ts_asimov=ts) - n_sigma

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roots, _ = find_roots(
            excess_sigma,
            parameter.conf_min,
            parameter.conf_max,
            nbin=100,
            maxiter=100,
            rtol=0.01,
            points_scale=parameter.interp,
        )
    roots = roots[roots > 0]
    return float(roots[0]) if roots.size > 0 else np.nan
