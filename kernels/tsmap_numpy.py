"""TS-scan inputs, their per-bin tables, and the NumPy reference scan.

:class:`TSScanInputs` holds the flat arrays every backend's ``ts_scan`` takes;
:func:`scan_tables` turns them into the per-bin tables every backend's kernel
reads (:class:`ScanTables`: listed and linear bins, see
:mod:`rtafast_kernels.tsmap_element`). :func:`ts_scan_numpy` is the vectorised
twin of :mod:`rtafast_kernels.tsmap_element`: the same algorithm (sums, start,
pole-model steps with bisection safeguard, stopping rules) on all pixels at
once, looping over the kernel footprint with gathers of one value per pixel,
in the same order as the per-pixel loops, so memory stays O(map size).
"""

from dataclasses import dataclass

import numpy as np

from .element import LOG_TRUNCATION_VALUE, TRUNCATION_VALUE
from .tsmap_element import (
    BRENTQ_RTOL_MIN,
    BRENTQ_XTOL,
    N_OUTPUTS,
    RATIO_INIT,
)

__all__ = ["TSScanInputs", "ScanTables", "scan_tables", "pixel_inputs", "ts_scan_numpy"]


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
        Initial norm of each pixel (gammapy's kernel-correlated excess): only
        used with a threshold (the TS of the guess decides whether the pixel
        is fitted; a skipped pixel keeps it as its norm).
    threshold : float
        TS of the initial guess below which the fit is skipped (if ``use_threshold``).
    use_threshold : bool
    n_sigma, n_sigma_ul : float
        Error and upper-limit confidence (in sigma).
    rtol : float
        brentq's relative tolerance (gammapy's ``rtol``) of the fit and of the
        confidence searches (``xtol`` is scipy's 2e-12).
    max_niter : int
        brentq's ``maxiter`` of each root search.
    want_errs, want_ul : bool
        Compute ``norm_errn``/``norm_errp``, ``norm_ul``.
    ring_counts : ndarray, shape (npix,), float64, optional
        Counts of each pixel's footprint bins that gammapy's footprint does not have
        (a kernel zero-padded to a larger kernel's shape): left out of the sum of
        counts (the trivial-fit test) and of the bracket's upper end.
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
    ring_counts: np.ndarray | None = None


def pixel_inputs(inputs):
    """Per-pixel inputs of the compiled kernels, shape ``(2, npix)``: the initial
    norms and ``ring_counts`` (0 without)."""
    out = np.zeros((2, inputs.pix_y.size))
    out[0] = inputs.guess
    if inputs.ring_counts is not None:
        out[1] = inputs.ring_counts
    return out


@dataclass
class ScanTables:
    """Per-bin tables of a TS scan (flat, row-major over the padded ``(L, NYp, NXp)``).

    Attributes
    ----------
    ny_pad, nx_pad : int
        Padded image shape.
    e_lin, b_lin : ndarray, float64
        Exposure and background of the linear bins (``n = 0``), 0 at listed bins.
    r_lin : ndarray, float64
        ``b / e`` of the linear bins with ``e > 0``, ``inf`` elsewhere.
    kidx : ndarray, int32
        Kernel row of each bin.
    layer_kid : ndarray, int64, shape (L,)
        The kernel row shared by all linear bins of a layer that have exposure
        or background, or -1 where they use several rows.
    ktab, inv_ktab, neg_inv_ktab : ndarray, float64, shape (nK, ky, kx)
        Kernel table, ``1 / ktab`` where ``ktab > 0`` and ``-1 / ktab`` where
        ``ktab < 0`` (``inf`` elsewhere).
    start : ndarray, int64, shape (L * NYp * NXp + 1,)
        Number of listed bins before each bin (the listed bins of a row segment
        ``[p, q)`` are ``start[p]:start[q]`` of the listed arrays).
    lcol, lk : ndarray, int64 / int32
        Column and kernel row of each listed bin.
    ln, lb, le, lc0, lib, lrb : ndarray, float64
        Counts, background, exposure, ``cash_term(n, b)``, ``1 / b`` and ``b / e``
        (``inf`` where ``e <= 0``) of each listed bin.
    regular : bool
        Whether all counts, backgrounds and exposures are >= 0 and the kernel
        values finite (then the listed bins are those with ``n > 0``); otherwise
        every bin with a non-zero value is listed and there are no linear bins.
    """

    ny_pad: int
    nx_pad: int
    e_lin: np.ndarray
    b_lin: np.ndarray
    r_lin: np.ndarray
    kidx: np.ndarray
    layer_kid: np.ndarray
    ktab: np.ndarray
    inv_ktab: np.ndarray
    neg_inv_ktab: np.ndarray
    start: np.ndarray
    lcol: np.ndarray
    lk: np.ndarray
    ln: np.ndarray
    lb: np.ndarray
    le: np.ndarray
    lc0: np.ndarray
    lib: np.ndarray
    lrb: np.ndarray
    regular: bool


def _cash(n, mu):
    """Half the Cash term per bin, with gammapy's truncation (vectorised)."""
    truncated = mu <= TRUNCATION_VALUE
    safe = np.where(truncated, 1.0, mu)
    log_mu = np.where(truncated, LOG_TRUNCATION_VALUE, np.log(safe))
    return np.where(truncated, TRUNCATION_VALUE, mu) - np.where(n > 0, n * log_mu, 0.0)


def scan_tables(inputs):
    """Per-bin tables of TS-scan inputs (built on the host, O(map size)).

    Parameters
    ----------
    inputs : TSScanInputs

    Returns
    -------
    ScanTables
    """
    counts = np.ascontiguousarray(inputs.counts, dtype=np.float64)
    background = np.ascontiguousarray(inputs.background, dtype=np.float64)
    expo = np.ascontiguousarray(inputs.expo, dtype=np.float64)
    kidx = np.ascontiguousarray(inputs.kidx, dtype=np.int32)
    ktab = np.ascontiguousarray(inputs.ktab, dtype=np.float64)
    layers, ny_pad, nx_pad = counts.shape
    regular = bool(
        np.isfinite(ktab).all()
        and (expo >= 0).all()
        and (counts >= 0).all()
        and (background >= 0).all()
    )
    if regular:
        listed = counts > 0
    else:
        listed = (counts != 0) | (background != 0) | (expo != 0)
    linear = ~listed
    e_lin = np.where(linear, expo, 0.0)
    b_lin = np.where(linear, background, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_lin = np.where(linear & (expo > 0), background / np.where(expo > 0, expo, 1.0), np.inf)
        inv_ktab = np.where(ktab > 0, 1.0 / np.where(ktab > 0, ktab, 1.0), np.inf)
        neg_inv_ktab = np.where(ktab < 0, -1.0 / np.where(ktab < 0, ktab, 1.0), np.inf)
    relevant = linear & ((expo != 0) | (background != 0))
    layer_kid = np.zeros(layers, dtype=np.int64)
    for layer in range(layers):
        kids = kidx[layer][relevant[layer]]
        if kids.size and (kids != kids[0]).any():
            layer_kid[layer] = -1
        elif kids.size:
            layer_kid[layer] = kids[0]
    flat_listed = listed.ravel()
    index = np.flatnonzero(flat_listed)
    start = np.zeros(flat_listed.size + 1, dtype=np.int64)
    np.cumsum(flat_listed, out=start[1:])
    ln = counts.ravel()[index]
    lb = background.ravel()[index]
    le = expo.ravel()[index]
    with np.errstate(divide="ignore", invalid="ignore"):
        lib = 1.0 / lb
        lrb = np.where(le > 0, lb / np.where(le > 0, le, 1.0), np.inf)
    tables = ScanTables(
        ny_pad=ny_pad,
        nx_pad=nx_pad,
        e_lin=e_lin.ravel(),
        b_lin=b_lin.ravel(),
        r_lin=r_lin.ravel(),
        kidx=kidx.ravel(),
        layer_kid=layer_kid,
        ktab=ktab,
        inv_ktab=inv_ktab,
        neg_inv_ktab=neg_inv_ktab,
        start=start,
        lcol=index % nx_pad,
        lk=kidx.ravel()[index],
        ln=ln,
        lb=lb,
        le=le,
        lc0=_cash(ln, lb),
        lib=lib,
        lrb=lrb,
        regular=regular,
    )
    return tables


class _Footprint:
    """Gathers over the footprints of all pixels, one offset ``(layer, dy, dx)`` at a time."""

    def __init__(self, inputs, tables):
        self.t = tables
        self.py = np.asarray(inputs.pix_y, dtype=np.int64)
        self.px = np.asarray(inputs.pix_x, dtype=np.int64)
        self.ring_counts = pixel_inputs(inputs)[1]
        self.layers = tables.kidx.size // (tables.ny_pad * tables.nx_pad)
        self.ky, self.kx = tables.ktab.shape[1:]

    def offsets(self):
        """``(o, dy, dx, p)``: offset number and flat bin index per pixel, in loop order."""
        t = self.t
        o = 0
        for layer in range(self.layers):
            for dy in range(self.ky):
                base = (layer * t.ny_pad + self.py + dy) * t.nx_pad + self.px
                for dx in range(self.kx):
                    yield o, dy, dx, base + dx
                    o += 1

    def linear(self):
        """``(k, inv_k, neg_inv_k, e_lin, b_lin, r_lin)`` of each offset."""
        t = self.t
        for _, dy, dx, p in self.offsets():
            kid = t.kidx[p]
            yield (
                t.ktab[kid, dy, dx],
                t.inv_ktab[kid, dy, dx],
                t.neg_inv_ktab[kid, dy, dx],
                t.e_lin[p],
                t.b_lin[p],
                t.r_lin[p],
            )

    def listed(self):
        """``(o, keep, n, b, m, c0, ib, r)`` of each offset (``keep``: a kept listed
        bin; ``r``: its ``b / m`` as the element computes it where ``m > 0``)."""
        t = self.t
        last = max(t.ln.size - 1, 0)
        for o, dy, dx, p in self.offsets():
            has = t.start[p + 1] > t.start[p]
            if t.ln.size == 0:
                zeros = np.zeros(p.shape)
                yield o, has, zeros, zeros, zeros, zeros, zeros, zeros
                continue
            i = np.minimum(t.start[p], last)
            n = np.where(has, t.ln[i], 0.0)
            b = np.where(has, t.lb[i], 0.0)
            kid = t.lk[i]
            m = np.where(has, t.ktab[kid, dy, dx] * t.le[i], 0.0)
            keep = has & ~((n == 0) & (b == 0) & (m == 0))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if t.regular:
                    r = t.lrb[i] * t.inv_ktab[kid, dy, dx]
                else:
                    r = b / m
            yield o, keep, n, b, m, t.lc0[i], t.lib[i], r


def _add(acc, mask, value):
    """``acc + value`` where ``mask`` (the per-pixel ``if mask: acc += value``)."""
    return np.where(mask, acc + value, acc)


class _Pixels:
    """Per-pixel state of the vectorised twin (the scalars of ``fit_pixel``)."""


def _gather(fp):
    """Linear and listed sums of every pixel (the copy loop of ``fit_pixel``)."""
    s = _Pixels()
    shape = fp.py.shape
    s.lin_pos, s.lin_neg, s.lin_b = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    s.lin_ratio, s.lin_up = np.full(shape, RATIO_INIT), np.full(shape, RATIO_INIT)
    for k, inv_k, neg_inv_k, e_lin, b_lin, r_lin in fp.linear():
        m = k * e_lin
        s.lin_pos = _add(s.lin_pos, k > 0, m)
        s.lin_neg = _add(s.lin_neg, ~(k > 0), m)
        s.lin_b = s.lin_b + b_lin
        with np.errstate(invalid="ignore"):
            ratio = r_lin * inv_k
            s.lin_ratio = np.where(ratio < s.lin_ratio, ratio, s.lin_ratio)
            up = r_lin * neg_inv_k
            s.lin_up = np.where(up < s.lin_up, up, s.lin_up)
    s.lin_m = s.lin_pos + s.lin_neg
    names = ("const", "stat0", "sum_n", "sum_m", "sum_b", "s_counts", "s_model", "s_m_empty")
    for name in names:
        setattr(s, name, np.zeros(shape))
    s.n_front = np.zeros(shape, dtype=np.int64)
    s.r_min = np.full(shape, RATIO_INIT)
    s.r_total = np.full(shape, RATIO_INIT)
    s.o_min = np.full(shape, -1, dtype=np.int64)
    s.c_min, n_c, m_c, b_c = np.ones(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for o, keep, n, b, m, c0, ib, r in fp.listed():
        s.sum_n = _add(s.sum_n, keep, n)
        s.sum_m = _add(s.sum_m, keep, m)
        s.sum_b = _add(s.sum_b, keep, b)
        s.stat0 = _add(s.stat0, keep, c0)
        positive = keep & (m > 0)
        s.s_model = _add(s.s_model, positive, m)
        s.r_total = np.where(positive & (r < s.r_total), r, s.r_total)
        front = positive & (n > 0)
        s.s_counts = _add(s.s_counts, front, n)
        better = front & (r < s.r_min)
        s.r_min = np.where(better, r, s.r_min)
        s.o_min = np.where(better, o, s.o_min)
        n_c = np.where(better, n, n_c)
        m_c = np.where(better, m, m_c)
        b_c = np.where(better, b, b_c)
        s.n_front += front
        s.s_m_empty = _add(s.s_m_empty, positive & ~(n > 0), m)
        s.const = _add(s.const, keep & (m == 0), c0)
        s.s_counts = _add(s.s_counts, keep & ~(m > 0) & (n > 0), n)
    if fp.t.regular:
        # the element's fast copy loop (all listed n > 0): s_counts = sum_n, r_total = r_min
        s.s_counts = s.sum_n.copy()
        s.r_total = s.r_min.copy()
    # counts outside gammapy's footprint (a zero-padded kernel): not gammapy's
    s.sum_n = s.sum_n - fp.ring_counts
    s.s_counts = s.s_counts - fp.ring_counts
    has_min = s.o_min >= 0
    s.c_min = np.where(has_min, n_c, 1.0)
    s.sum_m = s.sum_m + s.lin_m
    s.sum_b = s.sum_b + s.lin_b
    s.s_model = s.s_model + s.lin_pos
    s.s_m_empty = s.s_m_empty + s.lin_pos
    s.stat_null = 2.0 * (s.stat0 + s.lin_b)
    ratio_total = np.where(s.lin_ratio < s.r_total, s.lin_ratio, s.r_total)
    s.norm_min_total = -ratio_total
    return s


def _linear_exact(fp, x):
    """Half statistic of the linear bins summed bin by bin, with truncation."""
    value = np.zeros(x.shape)
    for k, _, _, e_lin, b_lin, _ in fp.linear():
        m = k * e_lin
        use = ~((b_lin == 0) & (m == 0))
        value = _add(value, use, _cash(0.0, b_lin + x * m))
    return value


def _listed_bins(fp, s):
    """``(o, use, n, b, m, r)`` per offset: front bins in order, back bins reversed."""
    front_bins, back_bins = [], []
    for o, keep, n, b, m, _, _, r in fp.listed():
        front = keep & (m > 0) & (n > 0)
        back = keep & (((m > 0) & ~(n > 0)) | (m < 0))
        front_bins.append((o, front, n, b, m, r))
        back_bins.append((o, back, n, b, m, r))
    return front_bins, back_bins[::-1]


def _stat_at(fp, s, x):
    """Cash statistic at norms ``x`` (the element's ``stat_at``)."""
    stat = s.const.copy()
    front_bins, back_bins = _listed_bins(fp, s)
    for _, use, n, b, m, _ in front_bins + back_bins:
        stat = _add(stat, use, _cash(n, b + x * m))
    above = (x >= s.norm_min_total) & (x <= s.lin_up)
    stat = np.where(above, stat + (s.lin_b + x * s.lin_m), stat + _linear_exact(fp, x))
    return 2.0 * stat


def _cash_root(front_bins, s, x):
    """gammapy's ``f_cash_root`` / 2 at norms ``x`` (the element's ``cash_root``)."""
    total = s.s_m_empty.copy()
    for _, front, n, b, m, _ in front_bins:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            total = _add(total, front, m * (1.0 - n / (x * m + b)))
    return total


def _brentq_step(state, xtol, rtol):
    """Vectorised :func:`rtafast_kernels.tsmap_element.brentq_step`: ``(state, done)``."""
    xpre, xcur, xblk, fpre, fcur, fblk, spre, scur = state
    flip = (fpre != 0) & (fcur != 0) & ((fpre < 0) != (fcur < 0))
    xblk = np.where(flip, xpre, xblk)
    fblk = np.where(flip, fpre, fblk)
    spre = np.where(flip, xcur - xpre, spre)
    scur = np.where(flip, spre, scur)
    swap = np.abs(fblk) < np.abs(fcur)
    xpre, xcur, xblk = (
        np.where(swap, xcur, xpre),
        np.where(swap, xblk, xcur),
        np.where(swap, xcur, xblk),
    )
    fpre, fcur, fblk = (
        np.where(swap, fcur, fpre),
        np.where(swap, fblk, fcur),
        np.where(swap, fcur, fblk),
    )
    delta = (xtol + rtol * np.abs(xcur)) / 2.0
    sbis = (xblk - xcur) / 2.0
    done = (fcur == 0) | (np.abs(sbis) < delta)
    trial = (np.abs(spre) > delta) & (np.abs(fcur) < np.abs(fpre))
    interp = xpre == xblk
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        den_i = fcur - fpre
        stry_i = -fcur * (xcur - xpre) / den_i
        dpre = (fpre - fcur) / (xpre - xcur)
        dblk = (fblk - fcur) / (xblk - xcur)
        den_e = dblk * dpre * (fblk - fpre)
        stry_e = -fcur * (fblk * dblk - fpre * dpre) / den_e
        valid = np.where(interp, den_i != 0, (xpre != xcur) & (den_e != 0))
        stry = np.where(interp, stry_i, stry_e)
        good = (
            trial
            & valid
            & (2.0 * np.abs(stry) < np.minimum(np.abs(spre), 3.0 * np.abs(sbis) - delta))
        )
    spre = np.where(good, scur, sbis)
    scur = np.where(good, stry, sbis)
    step = np.where(np.abs(scur) > delta, scur, np.where(sbis > 0, delta, -delta))
    return (xcur, xcur + step, xblk, fcur, fcur, fblk, spre, scur), done, xcur


def _brentq(f, a, b, active, rtol, max_niter):
    """scipy's brentq on ``[a, b]`` for the active pixels: ``(root, niter, converged)``.

    Where brentq raises (same signs at the ends, a NaN value, ``rtol`` below ``4 eps``)
    or does not converge: root NaN, ``niter = max_niter``, not converged.
    """
    shape = a.shape
    root = np.full(shape, np.nan)
    niter = np.full(shape, float(max_niter))
    converged = np.zeros(shape, dtype=bool)
    if rtol < BRENTQ_RTOL_MIN or max_niter < 1 or not active.any():
        return root, niter, converged
    fa = f(a)
    fb = f(b)
    live = active & ~np.isnan(fa) & ~np.isnan(fb)
    for hit, point in ((live & (fa == 0), a), (live & (fa != 0) & (fb == 0), b)):
        root[hit] = point[hit]
        niter[hit] = 0.0
        converged |= hit
        live &= ~hit
    live &= (fa < 0) != (fb < 0)
    zero = np.zeros(shape)
    state = (a, b, zero, fa, fb, zero, zero, zero)
    for it in range(1, max_niter + 1):
        new, done, xdone = _brentq_step(state, BRENTQ_XTOL, rtol)
        stop = live & done
        root[stop] = xdone[stop]
        niter[stop] = it
        converged |= stop
        live &= ~done
        if it == max_niter or not live.any():
            break
        state = tuple(np.where(live, n, o) for n, o in zip(new, state, strict=True))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fc = f(state[1])
        live &= ~np.isnan(fc)
        state = state[:4] + (np.where(live, fc, state[4]),) + state[5:]
    return root, niter, converged


def _confidence(stat_at, target, start, end, rtol, max_niter):
    """Vectorised twin of ``confidence`` in :mod:`rtafast_kernels.tsmap_element`."""

    def f(x):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return target - stat_at(x)

    root, _, _ = _brentq(f, start, end, np.ones(start.shape, dtype=bool), rtol, max_niter)
    return root


def ts_scan_numpy(inputs):
    """Reference TS scan, vectorised over pixels (see :mod:`rtafast_kernels.tsmap_element`).

    Returns
    -------
    ndarray, shape (N_OUTPUTS, npix)
        Rows in :data:`rtafast_kernels.tsmap_element.OUTPUT_NAMES` order.
    """
    fp = _Footprint(inputs, scan_tables(inputs))
    s = _gather(fp)
    shape = fp.py.shape
    max_niter = int(inputs.max_niter)

    def stat_at(x):
        return _stat_at(fp, s, x)

    norm = np.asarray(inputs.guess, dtype=np.float64).copy()
    niter = np.zeros(shape)
    success = np.ones(shape)
    fit = np.ones(shape, dtype=bool)
    if inputs.use_threshold:
        fit = s.stat_null - stat_at(norm) > inputs.threshold
    trivial = fit & ((s.sum_n <= 0) | (s.sum_m <= 0))
    norm = np.where(trivial, s.norm_min_total, norm)
    no_front = fit & ~trivial & (s.n_front == 0)
    norm = np.where(no_front, s.norm_min_total, norm)
    niter = np.where(no_front, float(max_niter), niter)
    success = np.where(no_front, 0.0, success)
    active = fit & ~trivial & ~no_front
    front_bins, _ = _listed_bins(fp, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_lo = s.c_min / s.s_model - s.r_min
        x_hi = s.s_counts / s.s_model - s.r_min
    root, iterations, converged = _brentq(
        lambda x: _cash_root(front_bins, s, x), x_lo, x_hi, active, float(inputs.rtol), max_niter
    )
    niter = np.where(active, iterations, niter)
    success = np.where(active, converged.astype(float), success)
    norm = np.where(
        active,
        np.where(converged, np.maximum(root, s.norm_min_total), s.norm_min_total),
        norm,
    )
    # final pass: statistic and curvature at the norm
    stat = s.const.copy()
    curvature = np.zeros(shape)
    front_bins, back_bins = _listed_bins(fp, s)
    for _, use, n, b, m, _ in front_bins + back_bins:
        mu = b + norm * m
        stat = _add(stat, use, _cash(n, mu))
        nonzero = use & (mu != 0)
        safe = np.where(nonzero, mu, 1.0)
        curvature = _add(curvature, nonzero, m * m * n / (safe * safe))
    value = _linear_exact(fp, norm)
    above = (norm >= s.norm_min_total) & (norm <= s.lin_up)
    stat = 2.0 * np.where(above, stat + (s.lin_b + norm * s.lin_m), stat + value)
    with np.errstate(divide="ignore"):
        norm_err = np.where(curvature > 0, inputs.n_sigma / np.sqrt(curvature), np.inf)
    out = np.full((N_OUTPUTS, shape[0]), np.nan)
    rtol = float(inputs.rtol)
    if inputs.want_errs:
        target = stat + inputs.n_sigma**2
        found = _confidence(stat_at, target, norm, norm + 1e2 * norm_err, rtol, max_niter)
        out[10] = found - norm
        found = _confidence(stat_at, target, norm - 1e2 * norm_err, norm, rtol, max_niter)
        out[9] = norm - found
    if inputs.want_ul:
        target = stat + inputs.n_sigma_ul**2
        out[11] = _confidence(stat_at, target, norm, norm + 1e2 * norm_err, rtol, max_niter)
    npred = s.sum_b + norm * s.sum_m
    out[0], out[1], out[2], out[3], out[4] = norm, norm_err, s.stat_null - stat, stat, s.stat_null
    out[5], out[6], out[7], out[8] = niter, success, npred, npred - s.sum_b
    return out
