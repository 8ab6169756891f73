"""The per-pixel fit of a TS map: ``fit_pixels``, assembled from the family's pieces.

For each pixel: copy its listed bins (:mod:`.listed`), add its linear sums
(:mod:`.footprint`), fit its norm (:mod:`.brentq`), evaluate the statistic and its
curvature at the norm (:mod:`.statistic`), search the confidence bounds (:mod:`.bounds`)
and write its column of the output (rows in :data:`.constants.OUTPUT_NAMES` order).

On the CPU every tuple of arrays built, unpacked or handed to an inlined function costs
reference counting: ``fit_pixels`` builds those tuples once per call, before its loop
over pixels, hands arrays only to pieces compiled on their own, and the functions it
inlines take scalars only.
"""

import math

__all__ = ["make_fit_pixels"]


def pixel_problem(gathered, linear_sums, ring):
    """Combine a pixel's listed-bin sums with its linear sums.

    Parameters
    ----------
    gathered : tuple
        What a gather loop of :mod:`.listed` returned for the pixel.
    linear_sums : tuple of float
        The pixel's five linear sums (see :func:`.footprint.dense_bin`).
    ring : float
        Counts of the pixel's bins outside gammapy's footprint (a kernel zero-padded to
        a larger one's shape): not in gammapy's sum of counts nor its bracket.

    Returns
    -------
    counts : tuple
        ``(n_front, n_back, const)`` of the stored listed bins (see :mod:`.statistic`).
    stat_null : float
        The statistic at norm 0.
    lin : tuple
        ``(limit, upper, lin_m, lin_b)`` (see :mod:`.statistic`).
    sums : tuple
        ``(sum_n, sum_m, sum_b)``: counts, model counts at norm 1, background counts.
    bracket : tuple
        ``(c_min, s_counts, s_model, r_min, s_m_empty)`` of gammapy's root bracket.
    """
    n_front, n_back, const, totals, bracket = gathered
    stat0, sum_n, sum_m, sum_b = totals
    s_counts, s_model, s_m_empty, r_min, c_min, r_total = bracket
    lin_pos, lin_neg, lin_b, lin_ratio, lin_up = linear_sums
    lin_m = lin_pos + lin_neg
    ratio_total = r_total
    if lin_ratio < ratio_total:
        ratio_total = lin_ratio
    lin = (-ratio_total, lin_up, lin_m, lin_b)
    sums = (sum_n - ring, sum_m + lin_m, sum_b + lin_b)
    bracket = (c_min, s_counts - ring, s_model + lin_pos, r_min, s_m_empty + lin_pos)
    return (n_front, n_back, const), 2.0 * (stat0 + lin_b), lin, sums, bracket


def make_fit_pixels(
    compile_function, compile_piece, gathers, fit_norm, statistic, linear_exact, bounds
):
    """Compile ``fit_pixels``, the fit of a run of pixels.

    Parameters
    ----------
    compile_function, compile_piece : callable
        Compilers of the element functions and of the larger pieces (``jit.cpu`` and
        ``jit.cpu_piece``, or ``jit.gpu_device`` for both; see :mod:`.element`).
    gathers : tuple of callable
        ``(gather_regular, gather_irregular)`` of :func:`.listed.make_gather_listed`.
    fit_norm : callable
        Of :func:`.brentq.make_fit_norm`.
    statistic : tuple of callable
        ``(stat_at, listed_stat_and_curvature)`` of
        :func:`.statistic.make_statistic_functions`.
    linear_exact : callable
        Of :func:`.footprint.make_linear_exact`.
    bounds : callable
        ``confidence_bounds`` of :func:`.bounds.make_confidence_bounds`.

    Returns
    -------
    callable
        ``fit_pixels(first, last, order, lin_sums, lin_row, lin_offset, arrays, options,
        scratch, row, out)`` (see :func:`.element.make_scan_functions`).
    """
    gather_regular, gather_irregular = gathers
    stat_at, listed_stat_and_curvature = statistic
    problem_c = compile_function(pixel_problem)

    def fit_pixels(
        first, last, order, lin_sums, lin_row, lin_offset, arrays, options, scratch, row, out
    ):
        pixels, linear, kernels, listed = arrays
        pix_y, pix_x, guess, ring_counts = pixels
        e_lin, b_lin, _, kidx, layer_kid = linear
        regular, ny_pad, nx_pad, threshold, use_threshold, rtol, max_niter = options[:7]
        errors = options[7:]
        n_sigma, _, want_errs, want_ul = errors
        search = (rtol, max_niter)
        tables = (e_lin, b_lin, kidx, kernels[0], ny_pad, nx_pad)
        layers = layer_kid.shape[0]
        # the loop over pixels is inside: arrays are taken (and reference-counted)
        # once per call, not once per pixel
        for s in range(first, last):
            j = order[s]
            y = pix_y[j]
            x = pix_x[j]
            if regular:
                gathered = gather_regular(
                    scratch, row, y, x, listed, kernels, layers, ny_pad, nx_pad
                )
            else:
                gathered = gather_irregular(
                    scratch, row, y, x, listed, kernels, layers, ny_pad, nx_pad
                )
            t = x - lin_offset
            linear_sums = (
                lin_sums[lin_row, 0, t],
                lin_sums[lin_row, 1, t],
                lin_sums[lin_row, 2, t],
                lin_sums[lin_row, 3, t],
                lin_sums[lin_row, 4, t],
            )
            counts, stat_null, lin, sums, bracket = problem_c(gathered, linear_sums, ring_counts[j])
            n_front, n_back, const = counts
            limit, upper, lin_m, lin_b = lin
            pixel = (y, x, n_front, n_back, const)
            sum_n, sum_m, sum_b = sums
            norm = guess[j]
            niter = 0
            success = 1.0
            if (
                not use_threshold
                or stat_null - stat_at(norm, lin, pixel, scratch, row, tables) > threshold
            ):
                norm, niter, success = fit_norm(
                    sum_n, sum_m, limit, bracket, scratch, row, n_front, search
                )
            # final pass: statistic and curvature at the norm
            stat, curvature = listed_stat_and_curvature(norm, pixel, scratch, row)
            if limit <= norm <= upper:
                stat += lin_b + norm * lin_m
            else:
                stat += linear_exact(norm, pixel, tables)
            stat = 2.0 * stat
            norm_err = n_sigma / math.sqrt(curvature) if curvature > 0.0 else math.inf
            errn = errp = ul = math.nan
            if want_errs or want_ul:
                errn, errp, ul = bounds(
                    norm, stat, norm_err, errors, search, lin, pixel, scratch, row, tables
                )
            npred = sum_b + norm * sum_m
            # the row of each value is its place in OUTPUT_NAMES
            fitted = (norm, norm_err, stat_null - stat, stat, stat_null, float(niter))
            values = fitted + (success, npred, npred - sum_b, errn, errp, ul)
            for k in range(len(values)):
                out[k, j] = values[k]

    return compile_piece(fit_pixels)
