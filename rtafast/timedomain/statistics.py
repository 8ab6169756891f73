"""The time-domain statistics of on/off series, on the chosen backend.

Arrays ``on``, ``off``, ``livetime`` of shape ``(n_series, n_bunches)`` and ``alpha`` of
shape ``(n_series,)`` (NumPy or the backend's arrays); window ``k`` is bunches
``0 .. k`` of a series. Formulas: :mod:`rtafast_kernels.timedomain.element`.
"""

import numpy as np

from rtafast_kernels import resolve_backend

__all__ = ["brightest_stretch", "cusum", "decay_likelihood", "stretch_significance"]



def _prepare(on, off, alpha, backend):
    backend = resolve_backend(backend)
    on, off = backend.asarray(on), backend.asarray(off)
    alpha = backend.asarray(np.broadcast_to(np.asarray(alpha, float), (on.shape[0],)).copy())
    return backend, on, off, alpha


def stretch_significance(on, off, alpha, first=0, backend=None):
    """Largest signed Li & Ma significance of the stretches ending at each bunch.

    Returns
    -------
    significance : array, shape (n_series, n_bunches), on the backend
        ``[s, k]``: the best stretch ``i .. k``; NaN for ``k < first``.
    """
    backend, on, off, alpha = _prepare(on, off, alpha, backend)
    out = backend.xp.full(on.shape, np.nan)
    return backend.stretch_lima(on, off, alpha, int(first), out)


def brightest_stretch(on, off, alpha, backend=None):
    """Time-dependent Li & Ma: significance of the brightest stretch of consecutive
    bunches since the first bunch, at each window (running maximum; a host array)."""
    backend = resolve_backend(backend)
    values = backend.to_numpy(stretch_significance(on, off, alpha, 0, backend))
    return np.maximum.accumulate(values, axis=1)


def cusum(on, off, alpha, livetime, ratio=1.0, backend=None):
    """Page's CuSum at each bunch, against a signal ``ratio`` times the background
    (the background rate from the off counts so far, times ``alpha``); an array on the
    backend, shape ``(n_series, n_bunches)``."""
    backend, on, off, alpha = _prepare(on, off, alpha, backend)
    out = backend.xp.empty(on.shape)
    return backend.cusum(on, off, alpha, backend.asarray(livetime), float(ratio), out)


def decay_likelihood(on, off, alpha, livetime, templates, first=0, backend=None):
    """LiFT-like sqrt(TS) of each window ``0 .. k`` (``k >= first``; NaN before): the
    flux-only Poisson fit of a decaying source (``templates``, ``(n_templates,
    n_bunches)``, :func:`~rtafast.timedomain.templates.decay_templates`), background from
    the window's off counts, the best template; an array on the backend, shape
    ``(n_series, n_bunches)``."""
    backend, on, off, alpha = _prepare(on, off, alpha, backend)
    out = backend.xp.full(on.shape, np.nan)
    return backend.lift(on, off, alpha, backend.asarray(livetime),
                        backend.asarray(templates), int(first), out)
