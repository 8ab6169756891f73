"""TS scan, NumPy reference: :mod:`rtafast_kernels.tsmap.element` vectorised over pixels.

The same algorithm as the compiled kernels (sums, start, pole-model steps with
bisection safeguard, stopping rules) on all pixels at once, looping over the kernel
footprint with gathers of one value per pixel, in the same order as the per-pixel
loops, so memory stays O(map size).
"""

import numpy as np

from .constants import BRENTQ_RTOL_MIN, BRENTQ_XTOL, N_OUTPUTS, RATIO_INIT
from .inputs import cash_half, pixel_inputs, scan_tables

__all__ = ["ts_scan_numpy", "ts_scan"]


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
    """Per-pixel state of the vectorised twin (the scalars of ``fit_pixels``,
    :mod:`rtafast_kernels.tsmap.fit`)."""


def _gather(fp):
    """Linear and listed sums of every pixel (:mod:`rtafast_kernels.tsmap.footprint`'s
    ``dense_bin`` and the copy loop of :mod:`rtafast_kernels.tsmap.listed`)."""
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
        # the regular copy loop (all listed n > 0): s_counts = sum_n, r_total = r_min
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
        value = _add(value, use, cash_half(0.0, b_lin + x * m))
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
    """Cash statistic at norms ``x`` (``stat_at`` of :mod:`rtafast_kernels.tsmap.statistic`)."""
    stat = s.const.copy()
    front_bins, back_bins = _listed_bins(fp, s)
    for _, use, n, b, m, _ in front_bins + back_bins:
        stat = _add(stat, use, cash_half(n, b + x * m))
    above = (x >= s.norm_min_total) & (x <= s.lin_up)
    stat = np.where(above, stat + (s.lin_b + x * s.lin_m), stat + _linear_exact(fp, x))
    return 2.0 * stat


def _cash_root(front_bins, s, x):
    """gammapy's ``f_cash_root`` / 2 at norms ``x`` (``cash_root`` of
    :mod:`rtafast_kernels.tsmap.statistic`)."""
    total = s.s_m_empty.copy()
    for _, front, n, b, m, _ in front_bins:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            total = _add(total, front, m * (1.0 - n / (x * m + b)))
    return total


def _brentq_step(state, xtol, rtol):
    """Vectorised :func:`rtafast_kernels.tsmap.brentq.brentq_step`: ``(state, done)``."""
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
    """Vectorised twin of ``confidence`` in :mod:`rtafast_kernels.tsmap.bounds`."""

    def f(x):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return target - stat_at(x)

    root, _, _ = _brentq(f, start, end, np.ones(start.shape, dtype=bool), rtol, max_niter)
    return root


def ts_scan_numpy(inputs):
    """Reference TS scan, vectorised over pixels (see :mod:`rtafast_kernels.tsmap.element`).

    Returns
    -------
    ndarray, shape (N_OUTPUTS, npix)
        Rows in :data:`rtafast_kernels.tsmap.constants.OUTPUT_NAMES` order.
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
        stat = _add(stat, use, cash_half(n, mu))
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


def ts_scan(backend, inputs):
    """Operation ``ts_scan`` (numpy): host array ``(N_OUTPUTS, npix)``; see :mod:`.element`."""
    return ts_scan_numpy(inputs)
