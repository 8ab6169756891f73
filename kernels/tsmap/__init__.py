"""Kernel family *tsmap*: the TS scan, a flux-only fit in every pixel of a map.

``element`` (the per-pixel fit, written once, assembled from ``footprint``, ``listed``,
``statistic``, ``brentq``, ``bounds`` and ``fit``; constants in ``constants``),
``inputs`` (:class:`TSScanInputs` and the per-bin tables every backend reads),
``record`` (the kernels' arguments, packed in one place), ``reference`` (NumPy,
vectorised over pixels), ``cpu`` (numba, parallel over image rows), ``gpu`` (CUDA, one
thread per pixel).
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "ts_scan": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
