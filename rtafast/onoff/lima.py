"""Alpha, excess, its error and Li & Ma significance of on/off counts (vectorised NumPy).

:class:`OnOffStatistics` gives gammapy's ``WStatCountsStatistic(n_on, n_off, alpha)``
numbers (``n_sig``, ``n_bkg``, ``error``, ``ts``, ``sqrt_ts``, ``stat_null``,
``stat_max``) with gammapy's own arithmetic (the WStat profile likelihood, its
``extra_terms`` included), so they are equal to gammapy's to rounding; and Li & Ma's
eq. 17 in its closed form (:func:`lima_significance`), which is ``sqrt_ts`` written
differently (equal within ~1e-12 relative where the TS is not tiny).
"""

import numpy as np

__all__ = ["OnOffStatistics", "alpha_from_acceptance", "lima_significance", "wstat"]


def alpha_from_acceptance(acceptance, acceptance_off, n_bins=None):
    """Exposure-weighted ``alpha = acceptance / acceptance_off``, as gammapy's
    ``SpectrumDatasetOnOff.alpha`` (0 where ``acceptance_off`` is 0, gammapy's
    ``nan_to_num``).

    Raises
    ------
    ValueError
        Negative or non-finite acceptances (the message names the bins).
    """
    on = np.asarray(acceptance, dtype=np.float64)
    off = np.asarray(acceptance_off, dtype=np.float64)
    if n_bins is not None:
        on, off = np.broadcast_to(on, (n_bins,)), np.broadcast_to(off, (n_bins,))
    for name, values in (("acceptance", on), ("acceptance_off", off)):
        bad = ~np.isfinite(values) | (values < 0)
        if np.any(bad):
            raise ValueError(f"{name} must be finite and >= 0; bins {np.flatnonzero(bad)} are not")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(on / off)


def _mu_bkg(n_on, n_off, alpha, mu_sig):
    c = alpha * (n_on + n_off) - (1 + alpha) * mu_sig
    d = np.sqrt(c**2 + 4 * alpha * (alpha + 1) * n_off * mu_sig)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c + d) / (2 * alpha * (alpha + 1))


def wstat(n_on, n_off, alpha, mu_sig):
    """WStat per bin with the background profiled, gammapy's ``wstat`` (extra terms)."""
    n_on, n_off, alpha, mu_sig = (
        np.asarray(a, dtype=np.float64) for a in (n_on, n_off, alpha, mu_sig)
    )
    mu_bkg = _mu_bkg(n_on, n_off, alpha, mu_sig)
    term1 = mu_sig + (1 + alpha) * mu_bkg
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.where(n_on == 0, 0, -n_on * np.log(mu_sig + alpha * mu_bkg))
        term3 = np.where(n_off == 0, 0, -n_off * np.log(mu_bkg))
    stat = 2 * (term1 + term2 + term3)
    gof = np.zeros(n_on.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        gof += np.where(n_on == 0, 0, -n_on * (1 - np.log(n_on)))
        gof += np.where(n_off == 0, 0, -n_off * (1 - np.log(n_off)))
    return stat + 2 * gof


def lima_significance(n_on, n_off, alpha):
    """Li & Ma (1983) eq. 17, signed by the excess ``n_on - alpha n_off``."""
    n_on, n_off, alpha = (np.asarray(a, dtype=np.float64) for a in (n_on, n_off, alpha))
    total = n_on + n_off
    with np.errstate(divide="ignore", invalid="ignore"):
        t_on = np.where(n_on > 0, n_on * np.log((1 + alpha) / alpha * n_on / total), 0.0)
        t_off = np.where(n_off > 0, n_off * np.log((1 + alpha) * n_off / total), 0.0)
    ts = np.clip(2 * (t_on + t_off), 0, None)
    return np.sign(n_on - alpha * n_off) * np.sqrt(ts)


class OnOffStatistics:
    """On/off statistics of counts per bin (arrays broadcast together).

    Parameters
    ----------
    n_on, n_off : array_like
        On and off counts (>= 0).
    alpha : array_like
        ``acceptance / acceptance_off`` (> 0).

    Raises
    ------
    ValueError
        Negative or non-finite counts, or alpha not > 0 (no off acceptance: e.g. no
        off region was found) — naming the bins; never NaN statistics.
    """

    def __init__(self, n_on, n_off, alpha):
        arrays = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (n_on, n_off, alpha)))
        self.n_on, self.n_off, self.alpha = arrays
        for name, values, ok in (
            ("n_on", self.n_on, self.n_on >= 0),
            ("n_off", self.n_off, self.n_off >= 0),
            ("alpha", self.alpha, self.alpha > 0),
        ):
            bad = ~(np.isfinite(values) & ok)
            if np.any(bad):
                hint = " (no off acceptance: no off region?)" if name == "alpha" else ""
                raise ValueError(
                    f"{name} must be finite and {'> 0' if name == 'alpha' else '>= 0'}{hint}; "
                    f"bins {np.flatnonzero(bad.ravel())} are not"
                )

    @property
    def n_bkg(self):
        """Background estimate ``alpha * n_off``."""
        return self.alpha * self.n_off

    @property
    def n_sig(self):
        """Excess ``n_on - alpha * n_off``."""
        return self.n_on - self.n_bkg

    excess = n_sig

    @property
    def error(self):
        """Excess error ``sqrt(n_on + alpha^2 n_off)`` (gammapy's ``error``)."""
        return np.sqrt(self.n_on + self.alpha**2 * self.n_off)

    @property
    def stat_null(self):
        """WStat of no excess."""
        return wstat(self.n_on, self.n_off, self.alpha, 0)

    @property
    def stat_max(self):
        """WStat of the best excess."""
        return wstat(self.n_on, self.n_off, self.alpha, self.n_sig)

    @property
    def ts(self):
        """``stat_null - stat_max`` clipped at 0."""
        return np.clip(self.stat_null - self.stat_max, 0, None)

    @property
    def sqrt_ts(self):
        """Signed ``sqrt(ts)``: gammapy's ``WStatCountsStatistic.sqrt_ts``."""
        return np.sign(self.n_sig) * np.sqrt(self.ts)

    @property
    def significance(self):
        """Li & Ma eq. 17 (closed form), see :func:`lima_significance`."""
        return lima_significance(self.n_on, self.n_off, self.alpha)

    def sum(self, axis=None):
        """Summed over ``axis``; alpha = sum(alpha n_off) / sum(n_off), as gammapy."""
        n_off = self.n_off.sum(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = self.n_bkg.sum(axis=axis) / n_off
        return OnOffStatistics(self.n_on.sum(axis=axis), n_off, alpha)
