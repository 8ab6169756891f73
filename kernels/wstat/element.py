"""Element math of the WStat statistic (on/off counts, background profiled), written once.

Scalar, side-effect-free functions using only :mod:`math`: the same source compiles
with ``numba.njit`` for the CPU and ``numba.cuda.jit(device=True)`` for the GPU (see
:mod:`rtafast_kernels.jit`); :mod:`rtafast_kernels.wstat.reference` is the vectorised
NumPy twin.

Conventions are gammapy 2.1's ``gammapy.stats.wstat`` with the background from
``get_wstat_mu_bkg`` (the profile of the likelihood in the background) and the
goodness-of-fit terms (``extra_terms=True``), as ``WStatFitStatistic`` sums them. With
``s`` the predicted signal counts of one bin, ``a`` its alpha (on/off exposure ratio)::

    C = a (n_on + n_off) - (1 + a) s
    D = sqrt(C**2 + 4 a (a + 1) n_off s)
    b = (C + D) / (2 a (a + 1))               # profiled background in the off region
    stat = 2 [s + (1 + a) b - n_on ln(s + a b) - n_off ln b] + gof(n_on, n_off)

with the ``n_on ln`` term only where ``n_on > 0`` and the ``n_off ln`` term only where
``n_off > 0``. The same numbers are computed in forms free of cancellation (``C + D``
when ``C < 0``, ``s + a b`` when ``s < 0``, ``D**2`` as a sum of non-negative terms
when ``s < 0``); the derivatives are analytic:

* ``n_on > 0``: ``d stat / ds = 2 (1 - n_on / mu_on)`` with ``mu_on = s + a b`` (``b``
  is stationary, or held at 0 where ``n_off = 0`` and ``C <= 0``), and
  ``d2 stat / ds2 = 2 n_on n_off / (a**2 n_on b**2 + n_off mu_on**2)``, or the Cash
  curvature ``2 n_on / s**2`` where ``b = 0``;
* ``n_on = 0``: gammapy's ``b`` is ``n_off / (1 + a)`` for ``s >= -a n_off / (1 + a)``
  (statistic ``2 s + const``) and ``-s / a`` below (``mu_on = 0``; statistic
  ``2 [-s / a - n_off ln(-s / a)]``, derivative ``2 (-1 / a - n_off / s)``,
  curvature ``2 n_off / s**2``). With ``n_on = n_off = 0`` the statistic is ``2 s``
  for ``s >= 0`` and ``-2 s / a`` below: a kink at 0, where the right derivative is
  given.

Every bin's statistic is convex in ``s`` and finite for any real ``s`` when
``0 < a < inf``. gammapy replaces a non-finite bin value by ``nan_to_num`` (a NaN
bin counts 0): a bin whose alpha is not a finite positive number (NaN, 0, inf) is
NaN in gammapy for every ``s`` (apart from the corner ``a = 0``,
``n_on = n_off = 0``, ``s < 0``, where it is inf) and counts 0 here, derivatives 0.

No input raises: with counts or signals near the floating-point underflow (e.g.
``n_on ~ 1e-306``) a quotient may divide by 0 and give inf/NaN, as NumPy (and
gammapy) do; the CPU kernels are compiled with ``error_model="numpy"`` for that,
logarithms of 0 are ``-inf``, and the curvatures are written as quotients of
comparable numbers so that they stay finite wherever the true value is.
"""

import math

__all__ = ["wstat_add_bin", "wstat_mu_bkg", "wstat_mu_on", "wstat_gof_half", "wstat_terms"]


def _log(x):
    """``ln x``, ``-inf`` at 0 (NumPy's value; Python's ``math.log`` would raise there
    under numba's CUDA simulator, which runs this source as Python)."""
    if x > 0.0:
        return math.log(x)
    return -math.inf


def _c_parts(n_on, n_off, alpha, s):
    """The parts ``E = a n_on``, ``A = a n_off``, ``B = -(1 + a) s`` of ``C = E + A + B``."""
    return alpha * n_on, alpha * n_off, -(1.0 + alpha) * s


def _d_squared(n_on, n_off, alpha, s, c):
    """``C**2 + 4 a (a + 1) n_off s`` without cancellation (>= 0 for n_on, n_off >= 0)."""
    if s >= 0.0:
        return c * c + 4.0 * alpha * (alpha + 1.0) * n_off * s
    # with B > 0 (s < 0): C**2 - 4 A B = (A - B)**2 + E (E + 2 (A + B))
    e, a_term, b_term = _c_parts(n_on, n_off, alpha, s)
    return (a_term - b_term) ** 2 + e * (e + 2.0 * (a_term + b_term))


def wstat_mu_bkg(n_on, n_off, alpha, s):
    """gammapy's profiled background ``mu_bkg`` of one bin (off-region counts).

    Parameters
    ----------
    n_on, n_off : float
        On and off counts (>= 0).
    alpha : float
        On/off exposure ratio (> 0).
    s : float
        Predicted signal counts in the on region.

    Returns
    -------
    float
        ``(C + D) / (2 a (a + 1))``, computed as ``2 n_off s / (D - C)`` where
        ``C < 0`` (the same number without cancellation).
    """
    c = alpha * (n_on + n_off) - (1.0 + alpha) * s
    d = math.sqrt(_d_squared(n_on, n_off, alpha, s, c))
    if c >= 0.0:
        return (c + d) / (2.0 * alpha * (alpha + 1.0))
    return 2.0 * n_off * s / (d - c)


def wstat_mu_on(n_on, n_off, alpha, s, b):
    """Predicted on counts ``s + a b`` of one bin, with ``b`` from :func:`wstat_mu_bkg`."""
    if s >= 0.0:
        return s + alpha * b
    # s + a b = (E + A - B + D) / (2 (1 + a)); where E + A - B < 0 it equals
    # 4 E B / ((D + B - A - E) 2 (1 + a)) (D**2 - (B - A - E)**2 = 4 E B).
    e, a_term, b_term = _c_parts(n_on, n_off, alpha, s)
    c = e + a_term + b_term
    d = math.sqrt(_d_squared(n_on, n_off, alpha, s, c))
    first = e + a_term - b_term
    if first >= 0.0:
        return (first + d) / (2.0 * (1.0 + alpha))
    return 2.0 * e * b_term / ((1.0 + alpha) * (d - first))


def wstat_gof_half(n_on, n_off):
    """Half of gammapy's goodness-of-fit terms, ``-n (1 - ln n)`` for on and off counts."""
    total = 0.0
    if n_on > 0.0:
        total -= n_on * (1.0 - _log(n_on))
    if n_off > 0.0:
        total -= n_off * (1.0 - _log(n_off))
    return total


def wstat_terms(n_on, n_off, alpha, s):
    """Half the WStat value of one bin and its first and second derivatives in ``s``.

    Parameters
    ----------
    n_on, n_off : float
        On and off counts (>= 0).
    alpha : float
        On/off exposure ratio; a bin with alpha not finite and positive counts 0.
    s : float
        Predicted signal counts (any real value).

    Returns
    -------
    value, d1, d2 : float
        Half of gammapy's ``wstat(n_on, n_off, alpha, s)`` (goodness-of-fit terms
        included) and half its first and second derivatives with respect to ``s``.
    """
    if not (alpha > 0.0 and alpha < math.inf):
        return 0.0, 0.0, 0.0
    gof = wstat_gof_half(n_on, n_off)
    if n_on <= 0.0:
        edge = -alpha * n_off / (1.0 + alpha)
        if s >= edge:  # b = n_off / (1 + a): the statistic is 2 s + const
            value = s + n_off
            if n_off > 0.0:
                value -= n_off * _log(n_off / (1.0 + alpha))
            return value + gof, 1.0, 0.0
        # b = -s / a, mu_on = 0
        b = -s / alpha
        value = -s / alpha
        d1 = -1.0 / alpha
        d2 = 0.0
        if n_off > 0.0:
            value -= n_off * _log(b)
            d1 -= n_off / s
            d2 = (n_off / s) / s
        return value + gof, d1, d2
    b = wstat_mu_bkg(n_on, n_off, alpha, s)
    mu_on = wstat_mu_on(n_on, n_off, alpha, s, b)
    value = s + (1.0 + alpha) * b - n_on * _log(mu_on)
    if n_off > 0.0:
        value -= n_off * _log(b)
    d1 = 1.0 - n_on / mu_on
    # curvatures as quotients of comparable numbers: no square underflows to 0
    if b > 0.0 and n_off > 0.0:
        d2 = 1.0 / (alpha * alpha * b * (b / n_off) + mu_on * (mu_on / n_on))
    elif b > 0.0:  # n_off = 0 and C > 0: mu_on = a n_on / (1 + a), linear in s
        d2 = 0.0
    else:  # n_off = 0 and C <= 0: b stays 0, the Cash statistic of s
        d2 = (n_on / mu_on) / mu_on
    return value + gof, d1, d2


def wstat_add_bin(stat, grad, hess, n_on, n_off, alpha, signal, norm):
    """Add one bin's half WStat terms in the signal norm to running sums.

    The step of the reductions over bins (the numba chunks and the CUDA threads).

    Parameters
    ----------
    stat, grad, hess : float
        The sums so far: half the statistic and its first and second derivatives in
        the norm.
    n_on, n_off, alpha : float
        The bin's counts and alpha (see :func:`wstat_terms`).
    signal : float
        The bin's predicted signal counts at norm 1.
    norm : float
        The signal norm.

    Returns
    -------
    stat, grad, hess : float
        The sums with the bin's :func:`wstat_terms` at ``norm * signal`` added
        (derivatives by the chain rule: times ``signal`` and ``signal**2``).
    """
    value, d1, d2 = wstat_terms(n_on, n_off, alpha, norm * signal)
    return stat + value, grad + signal * d1, hess + signal * signal * d2
