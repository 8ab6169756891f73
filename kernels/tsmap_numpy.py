"""TS-scan inputs and the NumPy reference scan (vectorised over pixels).

:class:`TSScanInputs` holds the flat arrays every backend's ``ts_scan`` takes.
:func:`ts_scan_numpy` is the vectorised twin of
:mod:`rtafast_kernels.tsmap_element`: the same algorithm (bracket, start, Newton
steps with bisection safeguard, stopping rule) on all pixels at once, looping
over the kernel footprint with gathers of one value per pixel, so memory stays
O(map size).
"""

from dataclasses import dataclass

import numpy as np

from .element import LOG_TRUNCATION_VALUE, TRUNCATION_VALUE
from .tsmap_element import N_OUTPUTS, STAT_TOL

__all__ = ["TSScanInputs", "ts_scan_numpy"]


@dataclass
class TSScanInputs:
    """Arrays of a TS scan (host NumPy arrays; backends copy them to the device).

    Attributes
    ----------
    counts, background, expo : ndarray, shape (L, NY + ky - 1, NX + kx - 1), float64
        Per layer (energy bin or summed energies, of each dataset): observed
        counts, predicted background counts and the exposure factor of the source
        model, zero-padded by half a kernel on each side.
    kidx : ndarray, shape like ``counts``, int32
        Row of ``ktab`` giving the kernel of each bin.
    ktab : ndarray, shape (nK, ky, kx), float64
        Kernel table; a bin's source counts at norm 1 are ``ktab[kidx] * expo``.
    pix_y, pix_x : ndarray, shape (npix,), int64
        Fitted pixels (unpadded coordinates = corner of the footprint in the padded arrays).
    guess : ndarray, shape (npix,), float64
        Initial norm of each pixel (gammapy's kernel-correlated excess).
    threshold : float
        TS of the initial guess below which the fit is skipped (if ``use_threshold``).
    use_threshold : bool
    n_sigma, n_sigma_ul : float
        Error and upper-limit confidence (in sigma).
    rtol : float
        Stop when the Newton step is below ``rtol`` times the norm's 1-sigma error.
    max_niter : int
        Iteration cap of each root search.
    want_errs, want_ul : bool
        Compute ``norm_errn``/``norm_errp``, ``norm_ul``.
    """

    counts: np.ndarray
    background: np.ndarray
    expo: np.ndarray
    kidx: np.ndarray
    ktab: np.ndarray
    pix_y: np.ndarray
    pix_x: np.ndarray
    guess: np.ndarray
    threshold: float = 0.0
    use_threshold: bool = False
    n_sigma: float = 1.0
    n_sigma_ul: float = 2.0
    rtol: float = 1e-10
    max_niter: int = 100
    want_errs: bool = False
    want_ul: bool = False


def _cash(n, mu):
    """Half the Cash term per bin, with gammapy's truncation (vectorised)."""
    truncated = mu <= TRUNCATION_VALUE
    safe = np.where(truncated, 1.0, mu)
    log_mu = np.where(truncated, LOG_TRUNCATION_VALUE, np.log(safe))
    return np.where(truncated, TRUNCATION_VALUE, mu) - np.where(n > 0, n * log_mu, 0.0)


def _dcash(n, mu):
    live = mu > TRUNCATION_VALUE
    safe = np.where(live, mu, 1.0)
    return np.where(live, np.where(n > 0, 1.0 - n / safe, 1.0), 0.0)


class _Footprints:
    """Iterate over the footprint bins of all pixels: ``(n, b, m, keep)`` arrays."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.ky, self.kx = inputs.ktab.shape[1:]

    def __iter__(self):
        inp = self.inputs
        for layer in range(inp.counts.shape[0]):
            for dy in range(self.ky):
                yy = inp.pix_y + dy
                for dx in range(self.kx):
                    xx = inp.pix_x + dx
                    n = inp.counts[layer, yy, xx]
                    b = inp.background[layer, yy, xx]
                    m = inp.ktab[inp.kidx[layer, yy, xx], dy, dx] * inp.expo[layer, yy, xx]
                    keep = ~((n == 0) & (b == 0) & (m == 0))
                    yield n, b, m, keep


def _stat_grad(bins, x):
    stat = np.zeros_like(x)
    grad = np.zeros_like(x)
    for n, b, m, keep in bins:
        mu = b + x * m
        stat += np.where(keep, _cash(n, mu), 0.0)
        grad += np.where(keep, m * _dcash(n, mu), 0.0)
    return 2.0 * stat, 2.0 * grad


def _confidence(bins, target, start, end, x0, tol, max_niter):
    """Vectorised twin of ``confidence`` in :mod:`rtafast_kernels.tsmap_element`."""
    result = np.full(start.shape, np.nan)
    finite = np.isfinite(start) & np.isfinite(end)
    g_start = _stat_grad(bins, np.where(finite, start, 0.0))[0] - target
    g_end = _stat_grad(bins, np.where(finite, end, 0.0))[0] - target
    done = ~finite
    hit = ~done & (g_start == 0)
    result[hit] = start[hit]
    done |= hit
    hit = ~done & (g_end == 0)
    result[hit] = end[hit]
    done |= hit
    done |= ((g_start > 0) == (g_end > 0)) | ~np.isfinite(g_start + g_end)
    neg = np.where(g_start < 0, start, end)
    pos = np.where(g_start < 0, end, start)
    lo, hi = np.minimum(neg, pos), np.maximum(neg, pos)
    x = np.where((lo < x0) & (x0 < hi), x0, 0.5 * (lo + hi))
    for _ in range(max_niter):
        if done.all():
            break
        value, grad = _stat_grad(bins, np.where(done, 0.0, x))
        g = value - target
        exact = ~done & (g == 0)
        result[exact] = x[exact]
        done |= exact
        neg = np.where(~done & (g < 0), x, neg)
        pos = np.where(~done & (g > 0), x, pos)
        lo, hi = np.minimum(neg, pos), np.maximum(neg, pos)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(grad != 0, x - g / grad, np.nan)
        new = np.where((lo < new) & (new < hi), new, 0.5 * (lo + hi))
        small = (np.abs(new - x) <= tol) & (np.abs(g) <= STAT_TOL)
        stop = ~done & (small | (hi - lo <= tol))
        result[stop] = new[stop]
        done |= stop
        x = np.where(done, x, new)
    return result


def ts_scan_numpy(inputs):
    """Reference TS scan, vectorised over pixels (see :mod:`rtafast_kernels.tsmap_element`).

    Returns
    -------
    ndarray, shape (N_OUTPUTS, npix)
        Rows in :data:`rtafast_kernels.tsmap_element.OUTPUT_NAMES` order.
    """
    bins = _Footprints(inputs)
    shape = inputs.pix_y.shape
    zeros = lambda: np.zeros(shape)  # noqa: E731
    stat_null, sum_n, sum_m, sum_b = zeros(), zeros(), zeros(), zeros()
    s_counts, s_model, s_m_empty = zeros(), zeros(), zeros()
    sn_min, c_min, sn_min_total = np.full(shape, 1e14), np.ones(shape), np.full(shape, 1e14)
    for n, b, m, keep in bins:
        stat_null += np.where(keep, _cash(n, b), 0.0)
        sum_n += np.where(keep, n, 0.0)
        sum_m += np.where(keep, m, 0.0)
        sum_b += np.where(keep, b, 0.0)
        positive = keep & (m > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            sn = np.where(positive, b / np.where(positive, m, 1.0), np.inf)
        s_model += np.where(positive, m, 0.0)
        sn_min_total = np.minimum(sn_min_total, sn)
        s_counts += np.where(keep & (n > 0), n, 0.0)
        counted = positive & (n > 0)
        better = counted & (sn < sn_min)
        sn_min = np.where(better, sn, sn_min)
        c_min = np.where(better, n, c_min)
        s_m_empty += np.where(positive & ~(n > 0), m, 0.0)
    stat_null = 2.0 * stat_null
    norm_min_total = -sn_min_total
    norm = inputs.guess.astype(np.float64).copy()
    niter = np.zeros(shape)
    success = np.ones(shape)
    fit = np.ones(shape, dtype=bool)
    if inputs.use_threshold:
        fit = stat_null - _stat_grad(bins, norm)[0] > inputs.threshold
    trivial = fit & ((sum_n <= 0) | (sum_m <= 0))
    norm = np.where(trivial, norm_min_total, norm)
    active = fit & ~trivial
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = c_min / s_model - sn_min
        hi = s_counts / s_model - sn_min
    root = np.where((lo < norm) & (norm < hi), norm, hi)
    converged = np.zeros(shape, dtype=bool)
    f_left, fp_left = zeros(), zeros()
    lo_tested = np.zeros(shape, dtype=bool)
    for _ in range(int(inputs.max_niter)):
        if not active.any():
            break
        f = s_m_empty.copy()
        fp = np.zeros(shape)
        x = np.where(active, root, 0.0)
        for n, b, m, keep in bins:
            use = active & keep & (n > 0) & (m > 0)
            mu = np.where(use, b + x * m, 1.0)
            ratio = n / mu
            f += np.where(use, m * (1.0 - ratio), 0.0)
            fp += np.where(use, ratio * m * m / mu, 0.0)
        niter += active
        exact = active & (f == 0)
        converged |= exact
        active &= ~exact
        left = active & (f < 0)
        lo = np.where(left, root, lo)
        f_left = np.where(left, f, f_left)
        fp_left = np.where(left, fp, fp_left)
        hi = np.where(active & (f > 0), root, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = root - f / fp
            from_left = lo - f_left / np.where(fp_left > 0, fp_left, 1.0)
            tol = inputs.rtol / np.sqrt(fp)
        base = root
        outside = ~((lo < new) & (new < hi))
        test_lo = outside & (new <= lo) & ~lo_tested
        lo_tested |= active & test_lo
        use_left = outside & ~test_lo & (fp_left > 0)
        left_ok = (lo < from_left) & (from_left < hi)
        bisect = outside & ~test_lo & ~(use_left & left_ok)
        new = np.where(test_lo, lo, np.where(use_left & left_ok, from_left, new))
        base = np.where(use_left & left_ok, lo, base)
        new = np.where(bisect, 0.5 * (lo + hi), new)
        stop = active & ((np.abs(new - base) <= tol) | (hi - lo <= tol))
        root = np.where(active, new, root)
        converged |= stop
        active &= ~stop
    fitted = fit & ~trivial
    success = np.where(fitted, converged.astype(float), success)
    norm = np.where(
        fitted, np.where(converged, np.maximum(root, norm_min_total), norm_min_total), norm
    )
    stat = _stat_grad(bins, norm)[0]
    curvature = zeros()
    for n, b, m, keep in bins:
        mu = b + norm * m
        nonzero = keep & (mu != 0)
        safe = np.where(nonzero, mu, 1.0)
        curvature += np.where(nonzero, m * m * n / (safe * safe), 0.0)
    with np.errstate(divide="ignore"):
        norm_err = np.where(curvature > 0, inputs.n_sigma / np.sqrt(curvature), np.inf)
    sigma1 = norm_err / inputs.n_sigma
    tol = np.where(np.isfinite(sigma1), inputs.rtol * sigma1, 0.0)
    out = np.full((N_OUTPUTS, shape[0]), np.nan)
    max_niter = int(inputs.max_niter)
    if inputs.want_errs:
        target = stat + inputs.n_sigma**2
        up = norm + 1e2 * norm_err
        root = _confidence(bins, target, norm, up, norm + inputs.n_sigma * sigma1, tol, max_niter)
        out[10] = root - norm
        down = norm - 1e2 * norm_err
        root = _confidence(bins, target, down, norm, norm - inputs.n_sigma * sigma1, tol, max_niter)
        out[9] = norm - root
    if inputs.want_ul:
        target = stat + inputs.n_sigma_ul**2
        up = norm + 1e2 * norm_err
        x0 = norm + inputs.n_sigma_ul * sigma1
        out[11] = _confidence(bins, target, norm, up, x0, tol, max_niter)
    npred = sum_b + norm * sum_m
    out[0], out[1], out[2], out[3], out[4] = norm, norm_err, stat_null - stat, stat, stat_null
    out[5], out[6], out[7], out[8] = niter, success, npred, npred - sum_b
    return out
