"""The arguments of the compiled TS-scan kernels, packed in one place.

:func:`pack_scan` turns :class:`rtafast_kernels.tsmap.inputs.TSScanInputs` and its
:class:`rtafast_kernels.tsmap.inputs.ScanTables` into two records that the CPU kernel
(:mod:`.cpu`) and the GPU kernel (:mod:`.gpu`) both take: :class:`ScanArrays` (the
arrays, grouped by use) and :class:`ScanOptions` (the scalars). Both are named tuples:
numba (CPU) and ``numba.cuda`` type them as tuples, and the element functions
(:mod:`.element`) unpack them by position, so the same code also compiles for plain
tuples (as the PTX test, ``tests/test_cuda_ptx.py``, records them). The arrays are
grouped by use, so each piece unpacks only the group it reads; the CPU kernel rebuilds
the groups inside its ``prange`` loop (numba's parallel loops take no tuple of arrays
from outside).
"""

from collections import namedtuple

import numpy as np

from .inputs import pixel_inputs, scan_tables

__all__ = [
    "ScanPixels",
    "LinearBins",
    "KernelTable",
    "ListedBins",
    "ScanArrays",
    "ScanOptions",
    "pack_scan",
]


def _record(name, fields, doc):
    """A named tuple type ``name`` with ``fields`` (space-separated) and docstring ``doc``."""
    record = namedtuple(name, fields)
    record.__doc__ = doc
    return record


ScanPixels = _record(
    "ScanPixels",
    "pix_y pix_x guess ring_counts",
    """The fitted pixels (arrays of shape ``(npix,)``): ``pix_y``, ``pix_x`` (int64,
    unpadded coordinates = corner of the footprint in the padded layers), ``guess``
    (float64, initial norm), ``ring_counts`` (float64, counts outside gammapy's
    footprint, 0 without; see ``TSScanInputs``).""",
)
LinearBins = _record(
    "LinearBins",
    "e_lin b_lin r_lin kidx layer_kid",
    """Linear bins of the padded layers: ``e_lin``, ``b_lin``, ``r_lin`` (float64),
    ``kidx`` (int32), ``layer_kid`` (int64), as in ``ScanTables``.""",
)
KernelTable = _record(
    "KernelTable",
    "ktab inv_ktab neg_inv_ktab",
    """Kernel table ``ktab``, ``inv_ktab``, ``neg_inv_ktab`` (float64, ``(nK, ky, kx)``),
    as in ``ScanTables``.""",
)
ListedBins = _record(
    "ListedBins",
    "start lcol lk ln lb le lc0 lrb",
    """Listed bins: ``start``, ``lcol`` (int64), ``lk`` (int32), ``ln``, ``lb``, ``le``,
    ``lc0``, ``lrb`` (float64), as in ``ScanTables``.""",
)
ScanArrays = _record(
    "ScanArrays",
    "pixels linear kernels listed",
    """Every array a TS-scan kernel reads, in four groups: :class:`ScanPixels`,
    :class:`LinearBins`, :class:`KernelTable`, :class:`ListedBins`.""",
)
ScanOptions = _record(
    "ScanOptions",
    "regular ny_pad nx_pad threshold use_threshold rtol max_niter "
    "n_sigma n_sigma_ul want_errs want_ul",
    """The scalars of a TS scan (flat: numba's ``prange`` loops take no nested tuple).

    ``regular`` (bool), ``ny_pad``, ``nx_pad`` (int) describe the tables
    (``ScanTables``); the others are ``TSScanInputs``'s options: ``threshold`` (TS),
    ``use_threshold`` (bool), ``rtol`` (float), ``max_niter`` (int), ``n_sigma``,
    ``n_sigma_ul`` (sigma), ``want_errs``, ``want_ul`` (bool).""",
)


#: Integer arrays of the records and their dtype (every other array is float64).
_INTEGER_DTYPES = {
    "pix_y": np.int64,
    "pix_x": np.int64,
    "kidx": np.int32,
    "layer_kid": np.int64,
    "start": np.int64,
    "lcol": np.int64,
    "lk": np.int32,
}


def _host_array(array, dtype):
    return np.ascontiguousarray(array, dtype=dtype)


def _group(record, source, to_array):
    """``record`` with each field the array of the same name of ``source``, converted."""
    return record(
        *(
            to_array(getattr(source, name), _INTEGER_DTYPES.get(name, np.float64))
            for name in record._fields
        )
    )


def pack_scan(inputs, tables=None, to_array=_host_array):
    """Pack a TS scan's inputs into the two records the compiled kernels take.

    Parameters
    ----------
    inputs : TSScanInputs
    tables : ScanTables, optional
        :func:`rtafast_kernels.tsmap.inputs.scan_tables` of ``inputs`` (built if not given).
    to_array : callable, optional
        ``to_array(array, dtype)``: a contiguous array of that dtype where the kernel
        runs (default: a host NumPy array; the GPU kernel passes a device copier).

    Returns
    -------
    arrays : ScanArrays
    options : ScanOptions
    """
    if tables is None:
        tables = scan_tables(inputs)
    per_pixel = pixel_inputs(inputs)
    pixels = ScanPixels(
        to_array(inputs.pix_y, np.int64),
        to_array(inputs.pix_x, np.int64),
        to_array(per_pixel[0], np.float64),
        to_array(per_pixel[1], np.float64),
    )
    arrays = ScanArrays(
        pixels,
        _group(LinearBins, tables, to_array),
        _group(KernelTable, tables, to_array),
        _group(ListedBins, tables, to_array),
    )
    options = ScanOptions(
        regular=bool(tables.regular),
        ny_pad=int(tables.ny_pad),
        nx_pad=int(tables.nx_pad),
        threshold=float(inputs.threshold),
        use_threshold=bool(inputs.use_threshold),
        rtol=float(inputs.rtol),
        max_niter=int(inputs.max_niter),
        n_sigma=float(inputs.n_sigma),
        n_sigma_ul=float(inputs.n_sigma_ul),
        want_errs=bool(inputs.want_errs),
        want_ul=bool(inputs.want_ul),
    )
    return arrays, options
