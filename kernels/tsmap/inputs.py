"""TS-scan inputs and the per-bin tables every backend's kernel reads.

:class:`TSScanInputs` holds the flat arrays every backend's ``ts_scan`` takes;
:func:`scan_tables` turns them into the per-bin tables (:class:`ScanTables`: listed
and linear bins, see :mod:`rtafast_kernels.tsmap.element`). Both work where the
arrays are: NumPy arrays on the host, CuPy arrays on the GPU (the tables are then
built on the device, with the array module of the inputs, :func:`array_module`).
"""

from dataclasses import dataclass

import numpy as np

from ..cash.element import LOG_TRUNCATION_VALUE, TRUNCATION_VALUE

__all__ = [
    "TSScanInputs",
    "ScanTables",
    "array_module",
    "scan_tables",
    "pixel_inputs",
    "cash_half",
]


@dataclass
class TSScanInputs:
    """Arrays of a TS scan: NumPy arrays, or arrays of the backend's array module.

    The arrays may live on the device of the backend that runs the scan (CuPy arrays
    for ``"cuda"``, with ``xp`` its array module): the tables are then built there and
    nothing is copied to the host; host arrays given to the cuda backend are copied.

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
    xp : module, optional
        Array module of the arrays (``numpy``, ``cupy``); default: found from
        ``counts`` (:func:`array_module`).
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
    xp: object = None


def array_module(inputs):
    """The array module of a scan's arrays: ``inputs.xp``, else NumPy, or CuPy for CuPy
    arrays (CuPy is not imported otherwise)."""
    if inputs.xp is not None:
        return inputs.xp
    if type(inputs.counts).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def pixel_inputs(inputs):
    """Per-pixel inputs of the compiled kernels, shape ``(2, npix)``: the initial
    norms and ``ring_counts`` (0 without); where the inputs are (:func:`array_module`)."""
    xp = array_module(inputs)
    out = xp.zeros((2, inputs.pix_y.shape[0]))
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


def cash_half(n, mu, xp=np):
    """Half the Cash term per bin, with gammapy's truncation (vectorised, array module
    ``xp``)."""
    truncated = mu <= TRUNCATION_VALUE
    safe = xp.where(truncated, 1.0, mu)
    log_mu = xp.where(truncated, LOG_TRUNCATION_VALUE, xp.log(safe))
    return xp.where(truncated, TRUNCATION_VALUE, mu) - xp.where(n > 0, n * log_mu, 0.0)


def scan_tables(inputs):
    """Per-bin tables of TS-scan inputs (O(map size), where the inputs are).

    Built with the inputs' array module (:func:`array_module`): on the GPU for CuPy
    inputs, with one scalar brought to the host (``regular``) besides what CuPy's
    ``flatnonzero`` reads (the number of listed bins).

    Parameters
    ----------
    inputs : TSScanInputs

    Returns
    -------
    ScanTables
        Arrays of the inputs' array module; ``regular`` a Python bool.
    """
    xp = array_module(inputs)
    counts = xp.ascontiguousarray(inputs.counts, dtype=np.float64)
    background = xp.ascontiguousarray(inputs.background, dtype=np.float64)
    expo = xp.ascontiguousarray(inputs.expo, dtype=np.float64)
    kidx = xp.ascontiguousarray(inputs.kidx, dtype=np.int32)
    ktab = xp.ascontiguousarray(inputs.ktab, dtype=np.float64)
    layers, ny_pad, nx_pad = counts.shape
    regular = bool(
        xp.isfinite(ktab).all() & (expo >= 0).all() & (counts >= 0).all() & (background >= 0).all()
    )
    if regular:
        listed = counts > 0
    else:
        listed = (counts != 0) | (background != 0) | (expo != 0)
    linear = ~listed
    e_lin = xp.where(linear, expo, 0.0)
    b_lin = xp.where(linear, background, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_lin = xp.where(linear & (expo > 0), background / xp.where(expo > 0, expo, 1.0), np.inf)
        inv_ktab = xp.where(ktab > 0, 1.0 / xp.where(ktab > 0, ktab, 1.0), np.inf)
        neg_inv_ktab = xp.where(ktab < 0, -1.0 / xp.where(ktab < 0, ktab, 1.0), np.inf)
    relevant = (linear & ((expo != 0) | (background != 0))).reshape(layers, -1)
    layer_kidx = kidx.reshape(layers, -1)
    # the kernel row shared by a layer's relevant linear bins (-1: several, 0: none)
    lowest = xp.where(relevant, layer_kidx, np.iinfo(np.int32).max).min(axis=1)
    highest = xp.where(relevant, layer_kidx, -1).max(axis=1)
    layer_kid = xp.where(highest < 0, 0, xp.where(lowest == highest, lowest, -1))
    layer_kid = layer_kid.astype(np.int64)
    flat_listed = listed.ravel()
    index = xp.flatnonzero(flat_listed)
    start = xp.zeros(flat_listed.size + 1, dtype=np.int64)
    start[1:] = xp.cumsum(flat_listed, dtype=np.int64)
    ln = counts.ravel()[index]
    lb = background.ravel()[index]
    le = expo.ravel()[index]
    with np.errstate(divide="ignore", invalid="ignore"):
        lib = 1.0 / lb
        lrb = xp.where(le > 0, lb / xp.where(le > 0, le, 1.0), np.inf)
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
        lc0=cash_half(ln, lb, xp),
        lib=lib,
        lrb=lrb,
        regular=regular,
    )
    return tables
