"""Per-pixel flux-only fit of a TS map, written once in plain Python.

:func:`make_fit_pixel` builds, with a compiler from :mod:`rtafast_kernels.jit`
(``cpu`` for numba, ``gpu_device`` for CUDA), the function that fits one pixel
of a TS map: the free norm ``x`` of ``mu = b + x m`` over the bins of the kernel
footprint around the pixel. The CPU kernel (:mod:`rtafast_kernels.tsmap_numba`)
and the GPU kernel (:mod:`rtafast_kernels.tsmap_cuda`) call the same source; the
NumPy reference (:mod:`rtafast_kernels.tsmap_numpy`) is its vectorised twin.

Conventions are gammapy 2.1's (``gammapy.estimators.map.ts``):

* bins with ``n = b = m = 0`` are dropped; the model of a bin is
  ``m = ktab[kidx, dy, dx] * expo`` (kernel table row chosen per bin);
* the root of ``f(x) = sum_{m>0} m (1 - n / (b + x m))`` (terms with ``n = 0``
  are ``m``) is bracketed by gammapy's bounds ``[c_min / S_m - s_min,
  S_n / S_m - s_min]`` and the norm is then raised to ``-min(b / m)`` over
  ``m > 0`` (negative norms down to the physical limit);
* when ``sum n <= 0`` or ``sum m <= 0`` the norm is that limit, with 0 iterations;
* with a threshold, the fit only runs where the TS of the initial guess exceeds it;
* ``TS = stat(0) - stat(best)``, ``norm_err = n_sigma / sqrt(sum n m^2 / mu^2)``;
* ``errn``/``errp``/``ul``: where ``stat`` crosses ``stat_best + n_sigma^2``
  (``n_sigma_ul^2``) within 100 ``norm_err`` of the norm, NaN when it does not.

The norm is found by Newton's method inside the bracket (where the step from
the current point leaves it: the lower bound itself once, then the step from the
last point left of the root, which stays inside for the concave ``f``, else
bisection); it stops when the Newton step is below ``rtol`` times the norm's
one-sigma error (``rtol = 1e-10`` by default, against gammapy's relative
``rtol = 0.01`` on the norm). ``niter`` counts these Newton iterations (gammapy
counts brentq iterations). The per-pixel bins are copied once into a scratch row
(counted bins ``n > 0, m > 0`` at the front, the other bins with ``m != 0`` at
the back; bins with ``m = 0`` only add a constant), so the iterations visit only
the counted bins.
"""

import math

from . import element

__all__ = ["N_OUTPUTS", "OUTPUT_NAMES", "make_fit_pixel"]

#: Rows of the output array, in order.
OUTPUT_NAMES = (
    "norm",
    "norm_err",
    "ts",
    "stat",
    "stat_null",
    "niter",
    "success",
    "npred",
    "npred_excess",
    "norm_errn",
    "norm_errp",
    "norm_ul",
)
N_OUTPUTS = len(OUTPUT_NAMES)
#: Largest ``|stat - target|`` at which a tiny Newton step ends a confidence search.
STAT_TOL = 1e-6


def make_fit_pixel(compile_function):
    """Compile the per-pixel fit with ``compile_function`` (``jit.cpu`` or ``jit.gpu_device``).

    Returns
    -------
    callable
        ``fit_pixel(j, y, x, counts, background, expo, kidx, ktab, guess, threshold,
        use_threshold, n_sigma, n_sigma_ul, rtol, max_niter, want_errs, want_ul,
        scratch, row, out)``: fits pixel ``(y, x)`` (its footprint is
        ``[y, y + ky) x [x, x + kx)`` of the padded layer arrays) and writes column
        ``j`` of ``out`` (rows in :data:`OUTPUT_NAMES` order), using row ``row`` of
        ``scratch`` (shape ``(rows, 3, L * ky * kx)``).
    """
    cash_term = compile_function(element.cash_term)
    cash_dmu = compile_function(element.cash_dmu)

    def stat_grad(x, scratch, row, n_front, n_back, const):
        """Cash statistic and its derivative at norm ``x`` (all stored bins)."""
        size = scratch.shape[2]
        stat = const
        grad = 0.0
        for i in range(n_front):
            n = scratch[row, 0, i]
            m = scratch[row, 1, i]
            mu = scratch[row, 2, i] + x * m
            stat += cash_term(n, mu)
            grad += m * cash_dmu(n, mu)
        for i in range(size - n_back, size):
            n = scratch[row, 0, i]
            m = scratch[row, 1, i]
            mu = scratch[row, 2, i] + x * m
            stat += cash_term(n, mu)
            grad += m * cash_dmu(n, mu)
        return 2.0 * stat, 2.0 * grad

    stat_grad_c = compile_function(stat_grad)

    def confidence(target, start, end, x0, tol, scratch, row, n_front, n_back, const, max_niter):
        """Norm between ``start`` and ``end`` where the statistic equals ``target``.

        NaN when the statistic minus target has the same sign at both ends (as
        gammapy's ``find_roots`` with one bin) or the search does not converge.
        """
        if not (math.isfinite(start) and math.isfinite(end)):
            return math.nan
        g_start = stat_grad_c(start, scratch, row, n_front, n_back, const)[0] - target
        g_end = stat_grad_c(end, scratch, row, n_front, n_back, const)[0] - target
        if g_start == 0.0:
            return start
        if g_end == 0.0:
            return end
        if (g_start > 0.0) == (g_end > 0.0) or not math.isfinite(g_start + g_end):
            return math.nan
        if g_start < 0.0:
            neg = start
            pos = end
        else:
            neg = end
            pos = start
        lo = min(neg, pos)
        hi = max(neg, pos)
        x = x0
        if not (lo < x < hi):
            x = 0.5 * (lo + hi)
        for _ in range(max_niter):
            value, grad = stat_grad_c(x, scratch, row, n_front, n_back, const)
            g = value - target
            if g == 0.0:
                return x
            if g < 0.0:
                neg = x
            else:
                pos = x
            lo = min(neg, pos)
            hi = max(neg, pos)
            new = x - g / grad if grad != 0.0 else math.nan
            if not (lo < new < hi):
                new = 0.5 * (lo + hi)
            # a tiny step is only trusted where the statistic is continuous: across
            # the jump of a truncated bin the step is tiny but g is not
            if (abs(new - x) <= tol and abs(g) <= STAT_TOL) or hi - lo <= tol:
                return new
            x = new
        return math.nan

    confidence_c = compile_function(confidence)

    def fit_pixel(
        j,
        y,
        x,
        counts,
        background,
        expo,
        kidx,
        ktab,
        guess,
        threshold,
        use_threshold,
        n_sigma,
        n_sigma_ul,
        rtol,
        max_niter,
        want_errs,
        want_ul,
        scratch,
        row,
        out,
    ):
        layers = counts.shape[0]
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        size = scratch.shape[2]
        n_front = 0
        n_back = 0
        const = 0.0
        stat_null = 0.0
        sum_n = 0.0
        sum_m = 0.0
        sum_b = 0.0
        s_counts = 0.0
        s_model = 0.0
        s_m_empty = 0.0
        b_min = 1e14
        m_min = 1.0
        c_min = 1.0
        b_total = 1e14
        m_total = 1.0
        for layer in range(layers):
            for dy in range(ky):
                for dx in range(kx):
                    n = counts[layer, y + dy, x + dx]
                    b = background[layer, y + dy, x + dx]
                    m = ktab[kidx[layer, y + dy, x + dx], dy, dx] * expo[layer, y + dy, x + dx]
                    if n == 0.0 and b == 0.0 and m == 0.0:
                        continue
                    sum_n += n
                    sum_m += m
                    sum_b += b
                    term = cash_term(n, b)
                    stat_null += term
                    if m > 0.0:
                        # min of b / m over bins, compared without dividing
                        s_model += m
                        if b * m_total < b_total * m:
                            b_total = b
                            m_total = m
                        if n > 0.0:
                            s_counts += n
                            if b * m_min < b_min * m:
                                b_min = b
                                m_min = m
                                c_min = n
                        else:
                            s_m_empty += m
                    elif n > 0.0:
                        s_counts += n
                    if m == 0.0:
                        const += term
                    elif n > 0.0 and m > 0.0:
                        scratch[row, 0, n_front] = n
                        scratch[row, 1, n_front] = m
                        scratch[row, 2, n_front] = b
                        n_front += 1
                    else:
                        n_back += 1
                        scratch[row, 0, size - n_back] = n
                        scratch[row, 1, size - n_back] = m
                        scratch[row, 2, size - n_back] = b
        stat_null = 2.0 * stat_null
        sn_min = b_min / m_min
        sn_min_total = b_total / m_total
        norm_min_total = -sn_min_total
        niter = 0
        success = 1.0
        fit = True
        norm = guess
        if use_threshold:
            stat_guess = stat_grad_c(guess, scratch, row, n_front, n_back, const)[0]
            fit = stat_null - stat_guess > threshold
        if fit:
            if sum_n <= 0.0 or sum_m <= 0.0:
                norm = norm_min_total
            else:
                lo = c_min / s_model - sn_min
                hi = s_counts / s_model - sn_min
                root = guess
                if not (lo < root < hi):
                    root = hi
                success = 0.0
                f_left = 0.0
                fp_left = 0.0
                lo_tested = False
                for _ in range(max_niter):
                    f = s_m_empty
                    fp = 0.0
                    for i in range(n_front):
                        n = scratch[row, 0, i]
                        m = scratch[row, 1, i]
                        mu = scratch[row, 2, i] + root * m
                        ratio = n / mu
                        f += m * (1.0 - ratio)
                        fp += ratio * m * m / mu
                    niter += 1
                    if f == 0.0:
                        success = 1.0
                        break
                    if f < 0.0:
                        lo = root
                        f_left = f
                        fp_left = fp
                    else:
                        hi = root
                    new = root - f / fp
                    base = root
                    if not (lo < new < hi):
                        if new <= lo and not lo_tested:
                            # the root can sit exactly on gammapy's lower bound (one
                            # counted bin in the footprint): try the bound itself once
                            new = lo
                            lo_tested = True
                        elif fp_left > 0.0:
                            # from the right, the tangent of the concave f can land
                            # below the bracket; from the left point it lands inside
                            new = lo - f_left / fp_left
                            base = lo
                            if not (lo < new < hi):
                                new = 0.5 * (lo + hi)
                                base = root
                        else:
                            new = 0.5 * (lo + hi)
                    tol = rtol / math.sqrt(fp)
                    if abs(new - base) <= tol or hi - lo <= tol:
                        root = new
                        success = 1.0
                        break
                    root = new
                if success > 0.0:
                    norm = max(root, norm_min_total)
                else:
                    norm = norm_min_total
        # final pass: statistic, curvature and sums at the norm
        stat, _ = stat_grad_c(norm, scratch, row, n_front, n_back, const)
        curvature = 0.0
        for i in range(n_front):
            m = scratch[row, 1, i]
            mu = scratch[row, 2, i] + norm * m
            if mu != 0.0:
                curvature += m * m * scratch[row, 0, i] / (mu * mu)
        for i in range(size - n_back, size):
            m = scratch[row, 1, i]
            mu = scratch[row, 2, i] + norm * m
            if mu != 0.0:
                curvature += m * m * scratch[row, 0, i] / (mu * mu)
        norm_err = n_sigma / math.sqrt(curvature) if curvature > 0.0 else math.inf
        sigma1 = norm_err / n_sigma
        tol = rtol * sigma1 if math.isfinite(sigma1) else 0.0
        errn = math.nan
        errp = math.nan
        ul = math.nan
        if want_errs:
            target = stat + n_sigma * n_sigma
            root = confidence_c(
                target,
                norm,
                norm + 1e2 * norm_err,
                norm + n_sigma * sigma1,
                tol,
                scratch,
                row,
                n_front,
                n_back,
                const,
                max_niter,
            )
            errp = root - norm
            root = confidence_c(
                target,
                norm - 1e2 * norm_err,
                norm,
                norm - n_sigma * sigma1,
                tol,
                scratch,
                row,
                n_front,
                n_back,
                const,
                max_niter,
            )
            errn = norm - root
        if want_ul:
            target = stat + n_sigma_ul * n_sigma_ul
            root = confidence_c(
                target,
                norm,
                norm + 1e2 * norm_err,
                norm + n_sigma_ul * sigma1,
                tol,
                scratch,
                row,
                n_front,
                n_back,
                const,
                max_niter,
            )
            ul = root
        npred = sum_b + norm * sum_m
        out[0, j] = norm
        out[1, j] = norm_err
        out[2, j] = stat_null - stat
        out[3, j] = stat
        out[4, j] = stat_null
        out[5, j] = niter
        out[6, j] = success
        out[7, j] = npred
        out[8, j] = npred - sum_b
        out[9, j] = errn
        out[10, j] = errp
        out[11, j] = ul

    return compile_function(fit_pixel)
