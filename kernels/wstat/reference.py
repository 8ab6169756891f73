"""WStat family, NumPy reference: vectorised twins of :mod:`rtafast_kernels.wstat.element`."""

import numpy as np

__all__ = ["wstat_terms", "wstat_reduce"]


def _d_squared(n_on, n_off, alpha, s, c):
    e, a_term, b_term = alpha * n_on, alpha * n_off, -(1.0 + alpha) * s
    negative = (a_term - b_term) ** 2 + e * (e + 2.0 * (a_term + b_term))
    return np.where(s >= 0.0, c * c + 4.0 * alpha * (alpha + 1.0) * n_off * s, negative)


def wstat_terms(n_on, n_off, alpha, s):
    """Half the WStat value per bin and its derivatives in ``s`` (see ``element``).

    Parameters
    ----------
    n_on, n_off, alpha, s : ndarray, shape (N,)
        On counts, off counts, on/off exposure ratio, predicted signal counts.

    Returns
    -------
    value, d1, d2 : ndarray, shape (N,)
    """
    n_on, n_off, alpha, s = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (n_on, n_off, alpha, s))
    )
    valid = (alpha > 0.0) & (alpha < np.inf)
    alpha = np.where(valid, alpha, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gof = np.where(n_on > 0, -n_on * (1.0 - np.log(n_on)), 0.0)
        gof += np.where(n_off > 0, -n_off * (1.0 - np.log(n_off)), 0.0)

        # n_on = 0: closed forms on both sides of s = -a n_off / (1 + a)
        right = s >= -alpha * n_off / (1.0 + alpha)
        log_right = np.where(n_off > 0, n_off * np.log(n_off / (1.0 + alpha)), 0.0)
        log_left = np.where(n_off > 0, n_off * np.log(-s / alpha), 0.0)
        v0 = np.where(right, s + n_off - log_right, -s / alpha - log_left)
        g0 = np.where(right, 1.0, -1.0 / alpha - np.where(n_off > 0, n_off / s, 0.0))
        h0 = np.where(right | (n_off <= 0), 0.0, (n_off / s) / s)

        # n_on > 0
        c = alpha * (n_on + n_off) - (1.0 + alpha) * s
        d = np.sqrt(_d_squared(n_on, n_off, alpha, s, c))
        b = np.where(c >= 0, (c + d) / (2.0 * alpha * (alpha + 1.0)), 2.0 * n_off * s / (d - c))
        e, a_term, b_term = alpha * n_on, alpha * n_off, -(1.0 + alpha) * s
        first = e + a_term - b_term
        mu_neg = np.where(
            first >= 0,
            (first + d) / (2.0 * (1.0 + alpha)),
            2.0 * e * b_term / ((1.0 + alpha) * (d - first)),
        )
        mu_on = np.where(s >= 0, s + alpha * b, mu_neg)
        v1 = s + (1.0 + alpha) * b - n_on * np.log(mu_on)
        v1 -= np.where(n_off > 0, n_off * np.log(b), 0.0)
        g1 = 1.0 - n_on / mu_on
        h1 = np.where(
            (b > 0) & (n_off > 0),
            1.0 / (alpha * alpha * b * (b / n_off) + mu_on * (mu_on / n_on)),
            np.where(b > 0, 0.0, (n_on / mu_on) / mu_on),
        )
    on = n_on > 0
    value = np.where(valid, np.where(on, v1, v0) + gof, 0.0)
    d1 = np.where(valid, np.where(on, g1, g0), 0.0)
    d2 = np.where(valid, np.where(on, h1, h0), 0.0)
    return value, d1, d2


def wstat_reduce(backend, n_on, n_off, alpha, signal, norm):
    """Operation ``wstat_reduce``: WStat summed over bins, and its derivatives in a norm.

    Parameters
    ----------
    n_on, n_off, alpha, signal : ndarray, shape (N,)
        On counts, off counts, on/off exposure ratio, predicted signal counts at
        norm 1 (the fitted bins only: the caller removes masked bins).
    norm : float
        The predicted signal counts are ``norm * signal``.

    Returns
    -------
    stat, grad, hess : float
        ``sum wstat`` (gammapy's, goodness-of-fit terms included), and its first and
        second derivatives with respect to ``norm``.
    """
    value, d1, d2 = wstat_terms(n_on, n_off, alpha, float(norm) * signal)
    return (
        float(2.0 * value.sum()),
        float(2.0 * (signal * d1).sum()),
        float(2.0 * (signal * signal * d2).sum()),
    )
