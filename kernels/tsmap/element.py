"""Per-pixel flux-only fit of a TS map, written once in plain Python.

:func:`make_scan_functions` builds, with a compiler from :mod:`rtafast_kernels.jit`
(``cpu`` for numba, ``gpu_device`` for CUDA), the functions that fit one pixel
of a TS map: the free norm ``x`` of ``mu = b + x m`` over the bins of the kernel
footprint around the pixel. The CPU kernel (:mod:`rtafast_kernels.tsmap.cpu`)
and the GPU kernel (:mod:`rtafast_kernels.tsmap.gpu`) call the same source; the
NumPy reference (:mod:`rtafast_kernels.tsmap.reference`) is its vectorised twin.

Conventions are gammapy 2.1's (``gammapy.estimators.map.ts``):

* bins with ``n = b = m = 0`` are dropped; the model of a bin is
  ``m = ktab[kidx, dy, dx] * expo`` (kernel table row chosen per bin);
* the root of ``f(x) = sum_{m>0} m (1 - n / (b + x m))`` (terms with ``n = 0``
  are ``m``) is bracketed by gammapy's bounds ``[c_min / S_m - s_min,
  S_n / S_m - s_min]`` and the norm is then raised to ``-min(b / m)`` over
  ``m > 0`` (negative norms down to the physical limit);
* when ``sum n <= 0`` or ``sum m <= 0`` the norm is that limit, with 0 iterations
  and success; when no bin with counts has ``m > 0`` (``f > 0``: the statistic
  increases from the limit on) gammapy's brentq finds no sign change and fails:
  the limit, ``max_niter`` iterations, no success;
* with a threshold, the fit only runs where the TS of the initial guess exceeds it
  (without one, the guess is not used);
* ``TS = stat(0) - stat(best)``, ``norm_err = n_sigma / sqrt(sum n m^2 / mu^2)``;
* ``errn``/``errp``/``ul``: where ``stat`` crosses ``stat_best + n_sigma^2``
  (``n_sigma_ul^2``) within 100 ``norm_err`` of the norm, NaN when it does not.

Bins and sums (see :class:`rtafast_kernels.tsmap.inputs.ScanTables`): the bins
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

Root search: scipy's ``brentq`` (``scipy/optimize/Zeros/brentq.c``), step for step
(:func:`brentq_step`), as gammapy's ``BrentqFluxEstimator`` calls it: on
``f(x) = sum_{m>0} m (1 - n / (b + x m))`` (gammapy's ``f_cash_root`` / 2; the factor
2 changes no iterate) over the bracket ``[c_min / S_m - s_min, S_n / S_m - s_min]``,
``xtol = 2e-12``, relative tolerance ``rtol`` (brentq's: it stops when half the bracket
is below ``(xtol + rtol |x|) / 2``), at most ``max_niter`` iterations; the norm is
``max(root, norm_min_total)``, ``niter`` brentq's iteration count (the two evaluations
at the ends, done in one pass over the bins, not included) and ``success`` its
converged flag. The CPU sums ``f`` in vector lanes (:func:`rtafast_kernels.jit.cpu_reduction`):
its values differ from the sequential sum by rounding, which can move brentq's stopping
test by one iteration in rare pixels. Where gammapy's brentq
raises (no sign change over the bracket, a NaN value, no convergence, ``rtol`` below
``4 eps``) the norm is the physical limit, ``niter = max_niter`` and ``success = 0``,
as gammapy's ``except`` clause sets them. ``errn``/``errp``/``ul`` run the same
brentq on ``stat_best + n_sigma^2 - stat(x)`` over gammapy's brackets ``[norm - 100
norm_err, norm]`` and ``[norm, norm + 100 norm_err]`` (``find_roots`` with one bin: no
sampling, the bracket as it is), NaN where it fails; the end at the norm is not
evaluated again (its statistic is the fit's). With gammapy's default
``rtol = 0.01`` this returns gammapy's numbers (a norm within 1 % of the minimum), not
the exact minimum; a small ``rtol`` (e.g. 1e-10) gives the minimum to rounding.
"""

import math

from ..cash import element

__all__ = [
    "N_OUTPUTS",
    "OUTPUT_NAMES",
    "RATIO_INIT",
    "BRENTQ_XTOL",
    "BRENTQ_RTOL_MIN",
    "dense_bin",
    "brentq_step",
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
#: Initial value of the minimum of ``b / m`` (gammapy's ``1e14``).
RATIO_INIT = 1e14
#: brentq's absolute tolerance (scipy's default, which gammapy keeps).
BRENTQ_XTOL = 2e-12
#: Smallest ``rtol`` scipy's brentq accepts (``4 eps``; below it raises ValueError).
BRENTQ_RTOL_MIN = 4.0 * 2.220446049250313e-16


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


def brentq_step(xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, xtol, rtol):
    """One iteration of scipy's ``brentq`` (``scipy/optimize/Zeros/brentq.c``).

    The state is brentq's: ``xcur`` the latest point (value ``fcur``), ``xpre`` the
    previous one, ``xblk`` the other end of the bracket. Returns the new state and
    ``done``: when ``done``, ``xcur`` is the root (converged: ``fcur == 0`` or half the
    bracket below ``(xtol + rtol |xcur|) / 2``); else ``xcur`` is the next point, whose
    value the caller puts in ``fcur``. A zero denominator (an infinite or NaN trial
    step in C, rejected by the step test) bisects.
    """
    if fpre != 0.0 and fcur != 0.0 and (fpre < 0.0) != (fcur < 0.0):
        xblk = xpre
        fblk = fpre
        spre = xcur - xpre
        scur = spre
    if abs(fblk) < abs(fcur):
        xpre = xcur
        xcur = xblk
        xblk = xpre
        fpre = fcur
        fcur = fblk
        fblk = fpre
    delta = (xtol + rtol * abs(xcur)) / 2.0
    sbis = (xblk - xcur) / 2.0
    if fcur == 0.0 or abs(sbis) < delta:
        return xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, True
    bisect = True
    if abs(spre) > delta and abs(fcur) < abs(fpre):
        stry = 0.0
        if xpre == xblk:
            # interpolate
            den = fcur - fpre
            if den != 0.0:
                stry = -fcur * (xcur - xpre) / den
                bisect = False
        elif xpre != xcur:
            # extrapolate
            dpre = (fpre - fcur) / (xpre - xcur)
            dblk = (fblk - fcur) / (xblk - xcur)
            den = dblk * dpre * (fblk - fpre)
            if den != 0.0:
                stry = -fcur * (fblk * dblk - fpre * dpre) / den
                bisect = False
        if not bisect and 2.0 * abs(stry) < min(abs(spre), 3.0 * abs(sbis) - delta):
            # good short step
            spre = scur
            scur = stry
        else:
            bisect = True
    if bisect:
        spre = sbis
        scur = sbis
    xpre = xcur
    fpre = fcur
    if abs(scur) > delta:
        xcur += scur
    elif sbis > 0.0:
        xcur += delta
    else:
        xcur -= delta
    return xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, False


def make_scan_functions(compile_function, compile_reduction=None, compile_piece=None):
    """Compile the per-pixel scan functions with ``compile_function``.

    Parameters
    ----------
    compile_function : callable
        ``jit.cpu`` or ``jit.gpu_device``.
    compile_reduction : callable, optional
        Compiler of the root function's sums over the bins (``jit.cpu_reduction``:
        the sum in vector lanes, ~2x faster, rounding changes only); default
        ``compile_function`` (sequential sum, the NumPy twin's order).
    compile_piece : callable, optional
        Compiler of the larger pieces (the statistic's loops, the confidence search,
        the per-pixel fit): ``jit.cpu_piece`` compiles each once as a function of its
        own instead of inlining it at every call site (the TS scan compiled in 65 s
        with everything inlined, 12 s this way, no slower); default ``compile_function``.

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
        column ``j`` of ``out`` (rows in :data:`OUTPUT_NAMES` order; ``guess`` is
        :func:`rtafast_kernels.tsmap.inputs.pixel_inputs`: row 0 the initial norms,
        row 1 the counts outside gammapy's footprint), using row
        ``row`` of ``scratch`` (shape ``(rows, 4, L * ky * kx)``: counts, model,
        background and ``b / m`` of the stored bins). ``tables = (e_lin, b_lin,
        kidx, ktab, inv_ktab, start, lcol, lk, ln, lb, le, lc0, lib, lrb)`` (see
        :class:`rtafast_kernels.tsmap.inputs.ScanTables`) and ``options =
        (regular, ny_pad, nx_pad, threshold, use_threshold, n_sigma, n_sigma_ul,
        rtol, max_niter, want_errs, want_ul)`` are tuples because a call with 30
        or more arguments compiles to ``f(*args)``, which numba cannot inline. The
        loop over pixels is inside the function: the CPU kernel fits a whole image
        row per call, so the arrays are reference-counted once per row (once per
        pixel costs ~30 % of the fit); the GPU kernel passes one pixel.
    """
    compile_piece = compile_piece or compile_function
    cash_term = compile_function(element.cash_term)
    dense_bin_c = compile_function(dense_bin)
    brentq_step_c = compile_piece(brentq_step)

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
        """Half statistic of the linear bins summed bin by bin, with truncation."""
        layers = kidx.shape[0] // (ny_pad * nx_pad)
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        value = 0.0
        for layer in range(layers):
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + x
                for dx in range(kx):
                    p = base + dx
                    m = ktab[kidx[p], dy, dx] * e_lin[p]
                    b = b_lin[p]
                    if b == 0.0 and m == 0.0:
                        continue
                    value += cash_term(0.0, b + x_norm * m)
        return value

    linear_exact_c = compile_piece(linear_exact)

    def listed_stat(x_norm, scratch, row, n_front, n_back, const):
        """Half statistic over the stored listed bins (``const`` plus front and back)."""
        size = scratch.shape[2]
        stat = const
        for i in range(n_front):
            stat += cash_term(scratch[row, 0, i], scratch[row, 2, i] + x_norm * scratch[row, 1, i])
        for i in range(size - n_back, size):
            stat += cash_term(scratch[row, 0, i], scratch[row, 2, i] + x_norm * scratch[row, 1, i])
        return stat

    listed_stat_c = compile_piece(listed_stat)

    def stat_at(
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
        """Cash statistic at norm ``x_norm`` (all footprint bins).

        ``lin = (limit, upper, lin_m, lin_b)``: between ``limit`` (the physical
        limit) and ``upper`` (where a linear bin with ``m < 0`` reaches 0) the linear
        bins are ``lin_b + x lin_m``; elsewhere they are summed bin by bin.
        """
        limit, upper, lin_m, lin_b = lin
        stat = listed_stat_c(x_norm, scratch, row, n_front, n_back, const)
        if limit <= x_norm <= upper:
            stat += lin_b + x_norm * lin_m
        else:
            stat += linear_exact_c(x_norm, y, x, e_lin, b_lin, kidx, ktab, ny_pad, nx_pad)
        return 2.0 * stat

    stat_at_c = compile_piece(stat_at)

    def confidence(
        target,
        start,
        end,
        norm_at_start,
        stat_norm,
        rtol,
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
        """Root of ``target - stat`` in ``[start, end]`` as gammapy's ``find_roots``.

        ``find_roots`` with one bin runs scipy's brentq (``xtol`` 2e-12) on the bracket
        as it is: NaN when the ends have the same sign, a value is NaN or brentq does
        not converge in ``max_niter`` iterations. One end is the best-fit norm, whose
        statistic ``stat_norm`` is known (the start if ``norm_at_start``, else the
        end): it is not evaluated again.
        """
        if rtol < BRENTQ_RTOL_MIN:
            return math.nan
        xpre = start
        xcur = end
        xblk = 0.0
        fpre = 0.0
        fcur = 0.0
        fblk = 0.0
        spre = 0.0
        scur = 0.0
        # both ends and every iterate through one call site (one inlined copy)
        for k in range(max_niter + 1):
            point = start if k == 0 else xcur
            if (k == 0 and norm_at_start) or (k == 1 and not norm_at_start):
                value = target - stat_norm
            else:
                value = target - stat_at_c(
                    point,
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
            if value != value:
                return math.nan
            if k == 0:
                fpre = value
                continue
            fcur = value
            if k == 1:
                if fpre == 0.0:
                    return start
                if fcur == 0.0:
                    return end
                if (fpre < 0.0) == (fcur < 0.0):
                    return math.nan
            xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, done = brentq_step_c(
                xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, BRENTQ_XTOL, rtol
            )
            if done:
                return xcur
        return math.nan

    confidence_c = compile_piece(confidence)

    def cash_root(x_norm, scratch, row, n_front, s_empty):
        """gammapy's ``f_cash_root`` / 2: ``sum m (1 - n / (b + x m))`` over the bins
        with ``m > 0`` (``m`` where ``n = 0``: ``s_empty`` holds their sum)."""
        counts = scratch[row, 0, :n_front]
        model = scratch[row, 1, :n_front]
        background = scratch[row, 2, :n_front]
        total = s_empty
        for i in range(n_front):
            m = model[i]
            total += m * (1.0 - counts[i] / (x_norm * m + background[i]))
        return total

    def cash_root_ends(x_lo, x_hi, scratch, row, n_front, s_empty):
        """:func:`cash_root` at both ends of the bracket in one pass over the bins."""
        counts = scratch[row, 0, :n_front]
        model = scratch[row, 1, :n_front]
        background = scratch[row, 2, :n_front]
        total_lo = s_empty
        total_hi = s_empty
        for i in range(n_front):
            m = model[i]
            total_lo += m * (1.0 - counts[i] / (x_lo * m + background[i]))
            total_hi += m * (1.0 - counts[i] / (x_hi * m + background[i]))
        return total_lo, total_hi

    compile_sum = compile_reduction or compile_function
    cash_root_c = compile_sum(cash_root)
    cash_root_ends_c = compile_sum(cash_root_ends)

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
            if i_min >= 0:
                # counts of the counted bin with the smallest b / m (gammapy's c_min)
                c_min = scratch[row, 0, i_min]
            # counts of bins outside gammapy's footprint (a kernel zero-padded to a
            # larger one's shape): not in gammapy's sum of counts nor its bracket
            sum_n -= guess[1, j]
            s_counts -= guess[1, j]
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
            norm = guess[0, j]
            if use_threshold:
                stat_guess = stat_at_c(
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
                )
                fit = stat_null - stat_guess > threshold
            if fit:
                if sum_n <= 0.0 or sum_m <= 0.0:
                    norm = norm_min_total
                elif n_front == 0:
                    # f = sum of m > 0 > 0 everywhere: the statistic increases from the
                    # limit on (gammapy's brentq finds no sign change and fails)
                    norm = norm_min_total
                    niter = max_niter
                    success = 0.0
                else:
                    # scipy's brentq on gammapy's bracket (norm_bounds); a sign error,
                    # a NaN or no convergence is gammapy's failure
                    x_lo = c_min / s_model - r_min
                    x_hi = s_counts / s_model - r_min
                    norm = norm_min_total
                    niter = max_niter
                    success = 0.0
                    fpre, fcur = cash_root_ends_c(x_lo, x_hi, scratch, row, n_front, s_m_empty)
                    if rtol < BRENTQ_RTOL_MIN or fpre != fpre or fcur != fcur:
                        pass
                    elif fpre == 0.0:
                        norm = max(x_lo, norm_min_total)
                        niter = 0
                        success = 1.0
                    elif fcur == 0.0:
                        norm = max(x_hi, norm_min_total)
                        niter = 0
                        success = 1.0
                    elif (fpre < 0.0) != (fcur < 0.0):
                        xpre = x_lo
                        xcur = x_hi
                        xblk = 0.0
                        fblk = 0.0
                        spre = 0.0
                        scur = 0.0
                        for k in range(1, max_niter + 1):
                            xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, done = brentq_step_c(
                                xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, BRENTQ_XTOL, rtol
                            )
                            if done:
                                norm = max(xcur, norm_min_total)
                                niter = k
                                success = 1.0
                                break
                            fcur = cash_root_c(xcur, scratch, row, n_front, s_m_empty)
                            if fcur != fcur:
                                break
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
                stat += linear_exact_c(norm, y, x, e_lin, b_lin, kidx, ktab, ny_pad, nx_pad)
            stat = 2.0 * stat
            norm_err = n_sigma / math.sqrt(curvature) if curvature > 0.0 else math.inf
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
                elif search == 0:
                    target = stat + n_sigma * n_sigma
                    start_norm = norm
                    end_norm = norm + 1e2 * norm_err
                else:
                    target = stat + n_sigma * n_sigma
                    start_norm = norm - 1e2 * norm_err
                    end_norm = norm
                found = confidence_c(
                    target,
                    start_norm,
                    end_norm,
                    search != 1,
                    stat,
                    rtol,
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

    return dense_bin_c, dense_pixel_c, compile_piece(fit_pixels)
