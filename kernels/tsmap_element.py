"""Per-pixel flux-only fit of a TS map, written once in plain Python.

:func:`make_scan_functions` builds, with a compiler from :mod:`rtafast_kernels.jit`
(``cpu`` for numba, ``gpu_device`` for CUDA), the functions that fit one pixel
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
  likewise when no bin with counts has ``m > 0`` (``f > 0``: the statistic
  increases from the limit on; gammapy's brentq reports a failure there);
* with a threshold, the fit only runs where the TS of the initial guess exceeds it
  (without one, the guess is not used);
* ``TS = stat(0) - stat(best)``, ``norm_err = n_sigma / sqrt(sum n m^2 / mu^2)``;
* ``errn``/``errp``/``ul``: where ``stat`` crosses ``stat_best + n_sigma^2``
  (``n_sigma_ul^2``) within 100 ``norm_err`` of the norm, NaN when it does not.

Bins and sums (see :class:`rtafast_kernels.tsmap_numpy.ScanTables`): the bins
of a map are split once into *listed* bins (``n > 0``) and *linear* bins
(``n = 0``; when counts, backgrounds or exposures are negative somewhere, every
non-zero bin is listed instead). A linear bin's term ``b + x m`` is linear in
the norm between the physical limit and, for ``m < 0`` (negative kernel values,
which gammapy's PSF kernels can have), the norm where it reaches 0; so the
linear bins of a footprint enter only through five sums (``sum m`` over
``k > 0`` and ``k <= 0``, ``sum b``, ``min b / m`` over ``m > 0`` and
``min b / |m|`` over ``m < 0``) that :func:`dense_bin` accumulates per
footprint offset (the CPU kernel runs it vectorised along image rows). Outside
that range (confidence searches, a skipped fit's guess) the linear bins are
summed bin by bin with gammapy's truncation. Each pixel copies its listed bins
(found through a prefix count of listed bins along the rows) into a scratch
row: counted bins with ``m > 0`` (the only ones the root search visits, with
their pole distance ``b / m``) at the front, other bins with ``m != 0`` at the
back, constant terms summed.

Root search: writing ``f = S - F`` with ``F(x) = sum n_i / (x - p_i)`` (poles
``p_i = -b_i / m_i``), the pole ``P = max p_i`` (gammapy's ``-s_min``) is kept
exactly and the other terms ``R`` are modelled by one pole ``a / (x - P')``
matched to ``R`` and ``R'`` at the current point (:func:`pole_step`, a
quadratic). ``1 / R`` is concave (a harmonic mean), so the model lies below
``R`` and its root between ``P`` and the root: iterates never leave the domain
and converge from the left, fast (exact with one or two distinct poles). The
first point is ``x = 0`` whose sums come with the copy of the bins (no
division), when ``0 > P``; else gammapy's lower bound. A model root outside
the current bracket is replaced by bisection. Stop when the step is below
``rtol`` times the norm's 1-sigma error, or when the step has shrunk by at
least ``PREDICT_SHRINK`` and the error it leaves, predicted from quadratic
convergence (``|d_k|^3 / d_(k-1)^2``), is below ``PREDICT_SAFETY`` times that
tolerance (this saves the iteration that would only confirm the step).
``niter`` counts the evaluations of the sums, the one at ``x = 0`` included
(3.6 on average on the H.E.S.S. Crab map; gammapy's brentq takes ~9).
"""

import math

from . import element

__all__ = [
    "N_OUTPUTS",
    "OUTPUT_NAMES",
    "RATIO_INIT",
    "PREDICT_SHRINK",
    "PREDICT_SAFETY",
    "STAT_TOL",
    "dense_bin",
    "pole_step",
    "make_scan_functions",
]

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
#: Initial value of the minimum of ``b / m`` (gammapy's ``1e14``).
RATIO_INIT = 1e14
#: A step must be this much shorter than the previous one for the predicted stop.
PREDICT_SHRINK = 1e-3
#: The predicted error must be below this fraction of the tolerance.
PREDICT_SAFETY = 0.1


def dense_bin(
    sum_pos, sum_neg, sum_b, ratio_min, ratio_up, k, inv_k, neg_inv_k, e_lin, b_lin, r_lin
):
    """Add one linear bin of a footprint to the pixel's linear sums.

    ``k`` is the kernel value at the bin's offset, ``inv_k = 1 / k`` where
    ``k > 0`` (else ``inf``) and ``neg_inv_k = -1 / k`` where ``k < 0`` (else
    ``inf``); ``e_lin``, ``b_lin`` are the bin's exposure and background (0 for
    listed bins), ``r_lin = b / e`` (``inf`` where ``e <= 0`` or the bin is
    listed). Sums: ``m`` of the bins with ``k > 0`` and with ``k <= 0``, ``b``,
    the minimum of ``b / m`` over ``m > 0`` and of ``b / |m|`` over ``m < 0``
    (where ``b + x m`` reaches 0). A NaN ratio (``0 * inf``: no model) is never a
    minimum.
    """
    m = k * e_lin
    if k > 0.0:
        sum_pos += m
    else:
        sum_neg += m
    sum_b += b_lin
    ratio = r_lin * inv_k
    if ratio < ratio_min:
        ratio_min = ratio
    up = r_lin * neg_inv_k
    if up < ratio_up:
        ratio_up = up
    return sum_pos, sum_neg, sum_b, ratio_min, ratio_up


def pole_step(x, sn_min, c_min, s_model, rest, rest_grad):
    """Root of the model ``c_min / (x - P) + a / (x - P') = s_model`` (``P = -sn_min``).

    ``a / (x - P')`` matches the value ``rest`` and the slope ``-rest_grad`` of the
    other counted terms at ``x``; without other terms the root is ``P + c_min / S``.
    """
    if rest > 0.0 and rest_grad > 0.0:
        dist = rest / rest_grad
        weight = rest * dist
        shift = x - dist + sn_min  # P' - P
        b_coef = s_model * shift + c_min + weight
        disc = b_coef * b_coef - 4.0 * s_model * c_min * shift
        if disc < 0.0:
            disc = 0.0
        if b_coef > 0.0:
            u = (b_coef + math.sqrt(disc)) / (2.0 * s_model)
        else:
            u = 2.0 * c_min * shift / (b_coef - math.sqrt(disc))
        return u - sn_min
    return c_min / s_model - sn_min


def make_scan_functions(compile_function):
    """Compile the per-pixel scan functions with ``compile_function``.

    Parameters
    ----------
    compile_function : callable
        ``jit.cpu`` or ``jit.gpu_device``.

    Returns
    -------
    dense_bin : callable
        :func:`dense_bin`, compiled.
    dense_pixel : callable
        ``dense_pixel(y, x, e_lin, b_lin, r_lin, kidx, ktab, inv_ktab,
        neg_inv_ktab, ny_pad, nx_pad)``: the linear sums of pixel ``(y, x)``
        (:func:`dense_bin`), its footprint bin by bin (flat tables of the padded layers).
    fit_pixels : callable
        ``fit_pixels(first, last, order, pix_y, pix_x, lin_sums, lin_row, lin_offset,
        tables, options, guess, scratch, row, out)``: fits the pixels
        ``j = order[first:last]`` (pixel ``j`` is ``(pix_y[j], pix_x[j])``, its
        footprint ``[y, y + ky) x [x, x + kx)`` of the padded layers; its
        ``dense_pixel`` sums are ``lin_sums[lin_row, :, x - lin_offset]``) and writes
        column ``j`` of ``out`` (rows in :data:`OUTPUT_NAMES` order), using row
        ``row`` of ``scratch`` (shape ``(rows, 4, L * ky * kx)``: counts, model,
        background and ``b / m`` of the stored bins). ``tables = (e_lin, b_lin,
        kidx, ktab, inv_ktab, start, lcol, lk, ln, lb, le, lc0, lib, lrb)`` (see
        :class:`rtafast_kernels.tsmap_numpy.ScanTables`) and ``options =
        (regular, ny_pad, nx_pad, threshold, use_threshold, n_sigma, n_sigma_ul,
        rtol, max_niter, want_errs, want_ul)`` are tuples because a call with 30
        or more arguments compiles to ``f(*args)``, which numba cannot inline. The
        loop over pixels is inside the function: the CPU kernel fits a whole image
        row per call, so the arrays are reference-counted once per row (once per
        pixel costs ~30 % of the fit); the GPU kernel passes one pixel.
    """
    cash_term = compile_function(element.cash_term)
    cash_dmu = compile_function(element.cash_dmu)
    dense_bin_c = compile_function(dense_bin)
    pole_step_c = compile_function(pole_step)

    def dense_pixel(y, x, e_lin, b_lin, r_lin, kidx, ktab, inv_ktab, neg_inv_ktab, ny_pad, nx_pad):
        layers = kidx.shape[0] // (ny_pad * nx_pad)
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        sum_pos = 0.0
        sum_neg = 0.0
        sum_b = 0.0
        ratio_min = RATIO_INIT
        ratio_up = RATIO_INIT
        for layer in range(layers):
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + x
                for dx in range(kx):
                    p = base + dx
                    kid = kidx[p]
                    sum_pos, sum_neg, sum_b, ratio_min, ratio_up = dense_bin_c(
                        sum_pos,
                        sum_neg,
                        sum_b,
                        ratio_min,
                        ratio_up,
                        ktab[kid, dy, dx],
                        inv_ktab[kid, dy, dx],
                        neg_inv_ktab[kid, dy, dx],
                        e_lin[p],
                        b_lin[p],
                        r_lin[p],
                    )
        return sum_pos, sum_neg, sum_b, ratio_min, ratio_up

    dense_pixel_c = compile_function(dense_pixel)

    def linear_exact(x_norm, y, x, e_lin, b_lin, kidx, ktab, ny_pad, nx_pad):
        """Linear bins summed bin by bin (value and derivative), with truncation."""
        layers = kidx.shape[0] // (ny_pad * nx_pad)
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        value = 0.0
        grad = 0.0
        for layer in range(layers):
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + x
                for dx in range(kx):
                    p = base + dx
                    m = ktab[kidx[p], dy, dx] * e_lin[p]
                    b = b_lin[p]
                    if b == 0.0 and m == 0.0:
                        continue
                    mu = b + x_norm * m
                    value += cash_term(0.0, mu)
                    grad += m * cash_dmu(0.0, mu)
        return value, grad

    linear_exact_c = compile_function(linear_exact)

    def listed_stat(x_norm, scratch, row, n_front, n_back, const):
        """Half statistic and its derivative over the stored listed bins."""
        size = scratch.shape[2]
        stat = const
        grad = 0.0
        for i in range(n_front):
            n = scratch[row, 0, i]
            m = scratch[row, 1, i]
            mu = scratch[row, 2, i] + x_norm * m
            stat += cash_term(n, mu)
            grad += m * cash_dmu(n, mu)
        for i in range(size - n_back, size):
            n = scratch[row, 0, i]
            m = scratch[row, 1, i]
            mu = scratch[row, 2, i] + x_norm * m
            stat += cash_term(n, mu)
            grad += m * cash_dmu(n, mu)
        return stat, grad

    listed_stat_c = compile_function(listed_stat)

    def stat_grad(
        x_norm,
        lin,
        scratch,
        row,
        n_front,
        n_back,
        const,
        y,
        x,
        e_lin,
        b_lin,
        kidx,
        ktab,
        ny_pad,
        nx_pad,
    ):
        """Cash statistic and its derivative at norm ``x_norm`` (all footprint bins).

        ``lin = (limit, upper, lin_m, lin_b)``: between ``limit`` (the physical
        limit) and ``upper`` (where a linear bin with ``m < 0`` reaches 0) the linear
        bins are ``lin_b + x lin_m``; elsewhere they are summed bin by bin.
        """
        limit, upper, lin_m, lin_b = lin
        stat, grad = listed_stat_c(x_norm, scratch, row, n_front, n_back, const)
        if limit <= x_norm <= upper:
            stat += lin_b + x_norm * lin_m
            grad += lin_m
        else:
            value, slope = linear_exact_c(x_norm, y, x, e_lin, b_lin, kidx, ktab, ny_pad, nx_pad)
            stat += value
            grad += slope
        return 2.0 * stat, 2.0 * grad

    stat_grad_c = compile_function(stat_grad)

    def confidence(
        target,
        start,
        end,
        x0,
        tol,
        max_niter,
        lin,
        scratch,
        row,
        n_front,
        n_back,
        const,
        y,
        x,
        e_lin,
        b_lin,
        kidx,
        ktab,
        ny_pad,
        nx_pad,
    ):
        """Norm between ``start`` and ``end`` where the statistic equals ``target``.

        NaN when the statistic minus target has the same sign at both ends (as
        gammapy's ``find_roots`` with one bin) or the search does not converge.
        """
        if not (math.isfinite(start) and math.isfinite(end)):
            return math.nan
        # both ends through one call site (each call site is one inlined copy)
        g_start = 0.0
        g_end = 0.0
        for side in range(2):
            value = stat_grad_c(
                start if side == 0 else end,
                lin,
                scratch,
                row,
                n_front,
                n_back,
                const,
                y,
                x,
                e_lin,
                b_lin,
                kidx,
                ktab,
                ny_pad,
                nx_pad,
            )[0]
            if side == 0:
                g_start = value - target
            else:
                g_end = value - target
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
        xc = x0
        if not (lo < xc < hi):
            xc = 0.5 * (lo + hi)
        for _ in range(max_niter):
            value, grad = stat_grad_c(
                xc,
                lin,
                scratch,
                row,
                n_front,
                n_back,
                const,
                y,
                x,
                e_lin,
                b_lin,
                kidx,
                ktab,
                ny_pad,
                nx_pad,
            )
            g = value - target
            if g == 0.0:
                return xc
            if g < 0.0:
                neg = xc
            else:
                pos = xc
            lo = min(neg, pos)
            hi = max(neg, pos)
            new = xc - g / grad if grad != 0.0 else math.nan
            if not (lo < new < hi):
                new = 0.5 * (lo + hi)
            # a tiny step is only trusted where the statistic is continuous: across
            # the jump of a truncated bin the step is tiny but g is not
            if (abs(new - xc) <= tol and abs(g) <= STAT_TOL) or hi - lo <= tol:
                return new
            xc = new
        return math.nan

    confidence_c = compile_function(confidence)

    def counted_sums(x_norm, scratch, row, n_front, i_min):
        """Sums ``sum n q`` and ``sum n q^2`` (``q = m / mu = 1 / (x + b / m)``) of the
        counted bins but ``i_min`` (row 3 of the scratch holds their ``b / m``)."""
        rest = 0.0
        rest_grad = 0.0
        for i in range(i_min):
            q = 1.0 / (x_norm + scratch[row, 3, i])
            w = scratch[row, 0, i] * q
            rest += w
            rest_grad += w * q
        for i in range(i_min + 1, n_front):
            q = 1.0 / (x_norm + scratch[row, 3, i])
            w = scratch[row, 0, i] * q
            rest += w
            rest_grad += w * q
        return rest, rest_grad

    counted_sums_c = compile_function(counted_sums)

    def fit_pixels(
        first,
        last,
        order,
        pix_y,
        pix_x,
        lin_sums,
        lin_row,
        lin_offset,
        tables,
        options,
        guess,
        scratch,
        row,
        out,
    ):
        e_lin, b_lin, kidx, ktab, inv_ktab, start, lcol, lk, ln, lb, le, lc0, lib, lrb = tables
        (
            regular,
            ny_pad,
            nx_pad,
            threshold,
            use_threshold,
            n_sigma,
            n_sigma_ul,
            rtol,
            max_niter,
            want_errs,
            want_ul,
        ) = options
        layers = kidx.shape[0] // (ny_pad * nx_pad)
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        size = scratch.shape[2]
        # the loop over pixels is inside: arrays are taken (and reference-counted)
        # once per call, not once per pixel
        for s in range(first, last):
            j = order[s]
            y = pix_y[j]
            x = pix_x[j]
            t = x - lin_offset
            lin_pos = lin_sums[lin_row, 0, t]
            lin_neg = lin_sums[lin_row, 1, t]
            lin_b = lin_sums[lin_row, 2, t]
            lin_ratio = lin_sums[lin_row, 3, t]
            lin_up = lin_sums[lin_row, 4, t]
            lin_m = lin_pos + lin_neg
            n_front = 0
            n_back = 0
            const = 0.0
            stat0 = 0.0
            sum_n = 0.0
            sum_m = 0.0
            sum_b = 0.0
            s_counts = 0.0
            s_model = 0.0
            s_m_empty = 0.0
            r_min = RATIO_INIT
            i_min = -1
            r_total = RATIO_INIT
            f_zero = 0.0
            g_zero = 0.0
            if regular:
                # every listed bin has n > 0 and m >= 0: counted (m > 0) or constant
                for layer in range(layers):
                    for dy in range(ky):
                        base = (layer * ny_pad + y + dy) * nx_pad + x
                        for i in range(start[base], start[base + kx]):
                            dx = lcol[i] - x
                            kid = lk[i]
                            n = ln[i]
                            b = lb[i]
                            m = ktab[kid, dy, dx] * le[i]
                            c0 = lc0[i]
                            sum_n += n
                            sum_m += m
                            sum_b += b
                            stat0 += c0
                            if m > 0.0:
                                r = lrb[i] * inv_ktab[kid, dy, dx]
                                q = m * lib[i]
                                w = n * q
                                f_zero += w
                                g_zero += w * q
                                if r < r_min:
                                    r_min = r
                                    i_min = n_front
                                scratch[row, 0, n_front] = n
                                scratch[row, 1, n_front] = m
                                scratch[row, 2, n_front] = b
                                scratch[row, 3, n_front] = r
                                n_front += 1
                                s_model += m
                            elif m == 0.0:
                                const += c0
                            else:
                                n_back += 1
                                scratch[row, 0, size - n_back] = n
                                scratch[row, 1, size - n_back] = m
                                scratch[row, 2, size - n_back] = b
                s_counts = sum_n
                r_total = r_min
            else:
                for layer in range(layers):
                    for dy in range(ky):
                        base = (layer * ny_pad + y + dy) * nx_pad + x
                        for i in range(start[base], start[base + kx]):
                            dx = lcol[i] - x
                            n = ln[i]
                            b = lb[i]
                            m = ktab[lk[i], dy, dx] * le[i]
                            if n == 0.0 and b == 0.0 and m == 0.0:
                                continue
                            c0 = lc0[i]
                            sum_n += n
                            sum_m += m
                            sum_b += b
                            stat0 += c0
                            if m > 0.0:
                                s_model += m
                                r = b / m
                                if r < r_total:
                                    r_total = r
                                if n > 0.0:
                                    s_counts += n
                                    q = m * lib[i]
                                    w = n * q
                                    f_zero += w
                                    g_zero += w * q
                                    if r < r_min:
                                        r_min = r
                                        i_min = n_front
                                    scratch[row, 0, n_front] = n
                                    scratch[row, 1, n_front] = m
                                    scratch[row, 2, n_front] = b
                                    scratch[row, 3, n_front] = r
                                    n_front += 1
                                else:
                                    s_m_empty += m
                                    n_back += 1
                                    scratch[row, 0, size - n_back] = n
                                    scratch[row, 1, size - n_back] = m
                                    scratch[row, 2, size - n_back] = b
                            elif m == 0.0:
                                const += c0
                                if n > 0.0:
                                    s_counts += n
                            else:
                                if n > 0.0:
                                    s_counts += n
                                n_back += 1
                                scratch[row, 0, size - n_back] = n
                                scratch[row, 1, size - n_back] = m
                                scratch[row, 2, size - n_back] = b
            c_min = 1.0
            w_min = 0.0
            g_min = 0.0
            if i_min >= 0:
                # the counted bin with the largest pole -b / m, kept out of the modelled sums
                c_min = scratch[row, 0, i_min]
                q = scratch[row, 1, i_min] * (1.0 / scratch[row, 2, i_min])
                w_min = c_min * q
                g_min = w_min * q
            sum_m += lin_m
            sum_b += lin_b
            s_model += lin_pos
            s_m_empty += lin_pos
            stat_null = 2.0 * (stat0 + lin_b)
            ratio_total = r_total
            if lin_ratio < ratio_total:
                ratio_total = lin_ratio
            norm_min_total = -ratio_total
            lin = (norm_min_total, lin_up, lin_m, lin_b)
            niter = 0
            success = 1.0
            fit = True
            norm = guess[j]
            if use_threshold:
                stat_guess = stat_grad_c(
                    norm,
                    lin,
                    scratch,
                    row,
                    n_front,
                    n_back,
                    const,
                    y,
                    x,
                    e_lin,
                    b_lin,
                    kidx,
                    ktab,
                    ny_pad,
                    nx_pad,
                )[0]
                fit = stat_null - stat_guess > threshold
            if fit:
                if sum_n <= 0.0 or sum_m <= 0.0:
                    norm = norm_min_total
                elif n_front == 0:
                    # f = sum of m > 0 > 0 everywhere: the statistic increases from the
                    # limit on (gammapy's brentq finds no sign change and fails)
                    norm = norm_min_total
                else:
                    sn_min = r_min
                    lo = c_min / s_model - sn_min
                    hi = s_counts / s_model - sn_min
                    success = 0.0
                    root = lo
                    step_prev = 0.0
                    if sn_min > 0.0:
                        # x = 0 is right of the pole: its sums came with the copy
                        x_norm = 0.0
                        rest = f_zero - w_min
                        rest_grad = g_zero - g_min
                    else:
                        x_norm = lo
                        rest, rest_grad = counted_sums_c(x_norm, scratch, row, n_front, i_min)
                    for it in range(max_niter):
                        if it > 0:
                            rest, rest_grad = counted_sums_c(x_norm, scratch, row, n_front, i_min)
                        niter += 1
                        inv_pole = 1.0 / (x_norm + sn_min)
                        f_pole = c_min * inv_pole
                        total = f_pole + rest
                        curv = f_pole * inv_pole + rest_grad
                        if total == s_model:
                            root = x_norm
                            success = 1.0
                            break
                        if total > s_model:
                            if x_norm > lo:
                                lo = x_norm
                        elif total < s_model and x_norm < hi:
                            hi = x_norm
                        new = pole_step_c(x_norm, sn_min, c_min, s_model, rest, rest_grad)
                        step = abs(new - x_norm)
                        tol = rtol / math.sqrt(curv)
                        if step <= tol:
                            # converged (near the root, rounding can put the model
                            # root a hair outside the bracket: test the step first)
                            root = new
                            success = 1.0
                            break
                        modelled = lo <= new <= hi
                        if not modelled:
                            new = 0.5 * (lo + hi)
                            step = abs(new - x_norm)
                        if hi - lo <= tol:
                            root = new
                            success = 1.0
                            break
                        if (
                            modelled
                            and step <= PREDICT_SHRINK * step_prev
                            and step * step * step <= PREDICT_SAFETY * tol * step_prev * step_prev
                        ):
                            root = new
                            success = 1.0
                            break
                        step_prev = step if modelled else 0.0
                        x_norm = new
                    if success > 0.0:
                        norm = max(root, norm_min_total)
                    else:
                        norm = norm_min_total
            # final pass: statistic and curvature at the norm
            stat = const
            curvature = 0.0
            for i in range(n_front):
                n = scratch[row, 0, i]
                m = scratch[row, 1, i]
                mu = scratch[row, 2, i] + norm * m
                stat += cash_term(n, mu)
                if mu != 0.0:
                    curvature += m * m * n / (mu * mu)
            for i in range(size - n_back, size):
                n = scratch[row, 0, i]
                m = scratch[row, 1, i]
                mu = scratch[row, 2, i] + norm * m
                stat += cash_term(n, mu)
                if mu != 0.0:
                    curvature += m * m * n / (mu * mu)
            if norm_min_total <= norm <= lin_up:
                stat += lin_b + norm * lin_m
            else:
                stat += linear_exact_c(norm, y, x, e_lin, b_lin, kidx, ktab, ny_pad, nx_pad)[0]
            stat = 2.0 * stat
            norm_err = n_sigma / math.sqrt(curvature) if curvature > 0.0 else math.inf
            sigma1 = norm_err / n_sigma
            tol = rtol * sigma1 if math.isfinite(sigma1) else 0.0
            errn = math.nan
            errp = math.nan
            ul = math.nan
            # errp, errn and ul through one call site (each call site is one inlined copy)
            for search in range(3):
                if (search < 2 and not want_errs) or (search == 2 and not want_ul):
                    continue
                if search == 2:
                    target = stat + n_sigma_ul * n_sigma_ul
                    start_norm = norm
                    end_norm = norm + 1e2 * norm_err
                    x0 = norm + n_sigma_ul * sigma1
                elif search == 0:
                    target = stat + n_sigma * n_sigma
                    start_norm = norm
                    end_norm = norm + 1e2 * norm_err
                    x0 = norm + n_sigma * sigma1
                else:
                    target = stat + n_sigma * n_sigma
                    start_norm = norm - 1e2 * norm_err
                    end_norm = norm
                    x0 = norm - n_sigma * sigma1
                found = confidence_c(
                    target,
                    start_norm,
                    end_norm,
                    x0,
                    tol,
                    max_niter,
                    lin,
                    scratch,
                    row,
                    n_front,
                    n_back,
                    const,
                    y,
                    x,
                    e_lin,
                    b_lin,
                    kidx,
                    ktab,
                    ny_pad,
                    nx_pad,
                )
                if search == 0:
                    errp = found - norm
                elif search == 1:
                    errn = norm - found
                else:
                    ul = found
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

    return dense_bin_c, dense_pixel_c, compile_function(fit_pixels)
