"""Kernel family *trials*: many one-norm Cash fits at once (calibration trials).

Each row of a counts matrix is a simulated window fitted with one free norm ``x`` of a
template at a fixed position: predicted counts ``mu = b + x s`` over the bins, the
background ``b`` and the template ``s`` (counts at norm 1) shared by every row. The fit is
:func:`rtafast_kernels.fit_norm`'s (one norm, no extra bounds; gammapy's Cash statistic
with truncation), row by row.

``element`` (one row's fit), ``reference`` (NumPy, vectorised over rows), ``cpu``
(numba, parallel over rows), ``gpu`` (CUDA, one thread per row). Arrays: ``counts``
float64 ``(n_rows, n_bins)``, ``fixed`` and ``template`` float64 ``(n_bins,)``, ``out``
float64 ``(n_rows, 5)``, columns :data:`~.element.NORM`, :data:`~.element.TS`,
:data:`~.element.NORM_ERR`, :data:`~.element.NITER`, :data:`~.element.CONVERGED`.

* ``fit_norm_rows(backend, counts, fixed, template, settings, out)``: ``settings`` a tuple
  of 6 floats, the same for every row, indexed by :data:`~.element.LOWER` (``-min(b/s)``
  over ``s > 0``, the physical limit of the norm), :data:`~.element.FIXED_SUM` and
  :data:`~.element.TEMPLATE_SUM` (``b`` and ``s`` summed over the bins with ``s != 0``),
  :data:`~.element.TEMPLATE_MIN` (the smallest positive ``s``), :data:`~.element.RTOL`
  and :data:`~.element.MAX_ITER`, computed once by the caller (``s >= 0`` everywhere);
  fills and returns ``out``.

:func:`fit_norm_rows` (re-exported as ``rtafast_kernels.fit_norm_rows``) checks the
inputs, computes those scalars and calls the operation on the chosen backend.
"""

from typing import NamedTuple

import numpy as np

from ..cash.normfit import DEFAULT_RTOL
from ..registry import resolve_backend
from . import element
from .element import CONVERGED, N_OUTPUTS, NITER, NORM, NORM_ERR, TS

__all__ = ["OPERATIONS", "TrialFits", "fit_norm_rows"]

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "fit_norm_rows": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}


class TrialFits(NamedTuple):
    """Per-row results of :func:`fit_norm_rows`, arrays of shape ``(n_rows,)`` on the backend.

    Attributes
    ----------
    norm : array of float64
        Best-fit norm (dimensionless factor of the template), ``>= -min(b/s)``.
    ts : array of float64
        ``stat(0) - stat(best)`` (Cash statistic, ``-2 ln L``).
    norm_err : array of float64
        ``sqrt(2 / hess)`` at the best norm (``inf`` where the curvature is 0).
    niter : array of int64
        Newton iterations (0 for rows without counts where the template is non-zero).
    converged : array of bool
        False where ``max_iter`` iterations did not reach the tolerance.
    """

    norm: object
    ts: object
    norm_err: object
    niter: object
    converged: object


def _host_vector(name, value):
    array = np.ascontiguousarray(value, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array, got shape {array.shape}")
    bad = ~(np.isfinite(array) & (array >= 0))
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} negative or non-finite value(s) "
            f"(first at index {int(np.argmax(bad))})"
        )
    return array


def _device_counts(backend, counts, n_bins):
    xp = backend.xp
    if not hasattr(counts, "ndim"):  # a list
        counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != n_bins:
        raise ValueError(
            f"counts must have shape (n_rows, {n_bins}) (n_bins from fixed and template), "
            f"got {counts.shape}"
        )
    counts = backend.asarray(counts)
    # two passes without temporaries; the count of bad values only when there are some
    if counts.size and not (float(counts.min()) >= 0.0 and np.isfinite(float(counts.sum()))):
        n_bad = int(xp.count_nonzero(~(xp.isfinite(counts) & (counts >= 0))))
        if n_bad:
            raise ValueError(f"counts has {n_bad} negative or non-finite value(s)")
    return counts


def fit_norm_rows(counts, fixed, template, backend=None, rtol=DEFAULT_RTOL, max_iter=100):
    """Fit one free norm of a template to every row of a counts matrix.

    Row ``r`` is fitted with the predicted counts ``fixed + norm * template`` exactly
    as ``fit_norm(CashProblem(counts[r], fixed, template))`` fits it.

    Parameters
    ----------
    counts : array_like, shape (n_rows, n_bins)
        Observed counts of each trial (NumPy, or the backend's arrays), ``>= 0``.
    fixed : array_like, shape (n_bins,)
        Background counts of each bin (fixed), ``>= 0``.
    template : array_like, shape (n_bins,)
        Counts of the template at norm 1, ``>= 0``, positive somewhere.
    backend : str or backend object, optional
        See :func:`rtafast_kernels.resolve_backend`.
    rtol : float
        Newton stops when its step is below ``rtol`` times the norm's error.
    max_iter : int
        Most Newton iterations per row.

    Returns
    -------
    TrialFits
        Arrays of shape ``(n_rows,)`` on the backend (``backend.to_numpy`` copies them).

    Raises
    ------
    ValueError
        Naming the argument, on a wrong shape, a negative or non-finite value, or a
        template without a positive value.
    """
    fixed = _host_vector("fixed", fixed)
    template = _host_vector("template", template)
    if fixed.shape != template.shape:
        raise ValueError(f"fixed {fixed.shape} and template {template.shape} differ in shape")
    support = template > 0.0
    if not support.any():
        raise ValueError("template has no positive value: the norm is not constrained")
    backend = resolve_backend(backend)
    counts = _device_counts(backend, counts, fixed.size)
    settings = [0.0] * 6
    settings[element.LOWER] = -float(np.min(fixed[support] / template[support]))
    settings[element.FIXED_SUM] = float(fixed[support].sum())
    settings[element.TEMPLATE_SUM] = float(template[support].sum())
    settings[element.TEMPLATE_MIN] = float(template[support].min())
    settings[element.RTOL] = float(rtol)
    settings[element.MAX_ITER] = float(int(max_iter))
    out = backend.xp.empty((counts.shape[0], N_OUTPUTS))
    backend.fit_norm_rows(
        counts, backend.asarray(fixed), backend.asarray(template), tuple(settings), out
    )
    return TrialFits(
        norm=out[:, NORM].copy(),
        ts=out[:, TS].copy(),
        norm_err=out[:, NORM_ERR].copy(),
        niter=out[:, NITER].astype(np.int64),
        converged=out[:, CONVERGED] != 0.0,
    )
