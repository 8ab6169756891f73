"""Per-pixel flux-only fit of a TS map, written once in plain Python.

:func:`make_scan_functions` builds, with compilers from :mod:`rtafast_kernels.jit`
(``cpu``, ``cpu_reduction``, ``cpu_piece`` for numba, ``gpu_device`` for CUDA), the
functions that fit one pixel of a TS map: the free norm ``x`` (dimensionless) of
``mu = b + x m`` (counts) over the bins of the kernel footprint around the pixel. The
CPU kernel (:mod:`rtafast_kernels.tsmap.cpu`) and the GPU kernel
(:mod:`rtafast_kernels.tsmap.gpu`) call the same source; the NumPy reference
(:mod:`rtafast_kernels.tsmap.reference`) is its vectorised twin. The pieces, each built
by a small factory that takes the compilers:

* :mod:`.footprint`: the sums over the linear bins of a pixel's footprint;
* :mod:`.listed`: the copy of a pixel's listed bins into a scratch row;
* :mod:`.statistic`: the statistic at a norm, its curvature, gammapy's root function;
* :mod:`.brentq`: scipy's brentq step, the norm fit;
* :mod:`.bounds`: the confidence bounds (``errn``, ``errp``, ``ul``);
* :mod:`.fit`: the per-pixel fit (``fit_pixels``) assembled from them;
* :mod:`.record`: the kernels' arguments (:class:`.record.ScanArrays`,
  :class:`.record.ScanOptions`), packed in one place.

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

from collections.abc import Callable
from typing import NamedTuple

from ..cash import element
from .bounds import make_confidence_bounds
from .brentq import brentq_step, make_fit_norm
from .constants import BRENTQ_RTOL_MIN, BRENTQ_XTOL, N_OUTPUTS, OUTPUT_NAMES, RATIO_INIT
from .fit import make_fit_pixels
from .footprint import dense_bin, make_dense_pixel, make_linear_exact
from .listed import make_gather_listed
from .statistic import make_cash_root, make_statistic_functions

__all__ = [
    "N_OUTPUTS",
    "OUTPUT_NAMES",
    "RATIO_INIT",
    "BRENTQ_XTOL",
    "BRENTQ_RTOL_MIN",
    "dense_bin",
    "brentq_step",
    "ScanFunctions",
    "make_scan_functions",
]


class ScanFunctions(NamedTuple):
    """The compiled scan functions the kernels call (see :func:`make_scan_functions`)."""

    dense_bin: Callable
    dense_pixel: Callable
    fit_pixels: Callable


def make_scan_functions(compile_function, compile_reduction=None, compile_piece=None):
    """Compile the per-pixel scan functions with ``compile_function``.

    Parameters
    ----------
    compile_function : callable
        ``jit.cpu`` or ``jit.gpu_device``: the element functions (inlined into their
        callers on the CPU).
    compile_reduction : callable, optional
        Compiler of the root function's sums over the bins (``jit.cpu_reduction``:
        the sum in vector lanes, ~2x faster, rounding changes only); default
        ``compile_function`` (sequential sum, the NumPy twin's order).
    compile_piece : callable, optional
        Compiler of the larger pieces (the copy of the listed bins, the statistic's loops,
        the brentq step, the norm fit, the confidence search, the per-pixel fit):
        ``jit.cpu_piece`` compiles each once as a function of its own instead of
        inlining it at every call site (the TS scan compiled in 65 s with everything
        inlined, 12 s this way, no slower); default ``compile_function``. On the CPU the
        per-pixel fit hands arrays only to such pieces, and the element functions it
        inlines take scalars only: numba reference-counts the arrays handed to an
        inlined function (or held in a tuple built) at every call, ~7 % of the fit
        when done per pixel.

    Returns
    -------
    ScanFunctions
        ``(dense_bin, dense_pixel, fit_pixels)``:

        * ``dense_bin``: :func:`dense_bin`, compiled;
        * ``dense_pixel(y, x, linear, kernels, ny_pad, nx_pad)``: the linear sums of
          pixel ``(y, x)`` (:func:`dense_bin` over its footprint, bin by bin);
        * ``fit_pixels(first, last, order, lin_sums, lin_row, lin_offset, arrays,
          options, scratch, row, out)``: fits the pixels ``j = order[first:last]``
          (pixel ``j`` is ``(pix_y[j], pix_x[j])`` of ``arrays.pixels``, its footprint
          ``[y, y + ky) x [x, x + kx)`` of the padded layers; its ``dense_pixel`` sums
          are ``lin_sums[lin_row, :, x - lin_offset]``) and writes column ``j`` of
          ``out`` (rows in :data:`OUTPUT_NAMES` order), using row ``row`` of ``scratch``
          (shape ``(rows, 4, L * ky * kx)``: counts, model, background and ``b / m`` of
          the stored bins). ``arrays`` and ``options`` are the records of
          :func:`rtafast_kernels.tsmap.record.pack_scan` (or plain tuples in the same
          order). The loop over pixels is inside the function: the CPU kernel fits a
          whole image row per call, so the arrays are reference-counted once per row
          (once per pixel costs ~30 % of the fit); the GPU kernel passes one pixel.
    """
    compile_piece = compile_piece or compile_function
    cash_term = compile_function(element.cash_term)
    dense_bin_c = compile_function(dense_bin)
    brentq_step_c = compile_piece(brentq_step)
    linear_exact = make_linear_exact(compile_piece, cash_term)
    statistic = make_statistic_functions(compile_function, compile_piece, cash_term, linear_exact)
    cash_root, cash_root_ends = make_cash_root(compile_reduction or compile_function)
    fit_norm = make_fit_norm(compile_piece, brentq_step_c, cash_root, cash_root_ends)
    bounds = make_confidence_bounds(compile_function, compile_piece, brentq_step_c, statistic[0])
    gathers = make_gather_listed(compile_piece)
    fit_pixels = make_fit_pixels(
        compile_function, compile_piece, gathers, fit_norm, statistic, linear_exact, bounds
    )
    return ScanFunctions(dense_bin_c, make_dense_pixel(compile_function, dense_bin_c), fit_pixels)
