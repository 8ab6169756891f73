"""Kernel plans of the convolution family: computed once per kernel (and image shape).

``scipy.signal.convolve(image, kernel, mode="same")`` is, for output pixel ``(y, x)``,
``sum over (dy, dx) of flipped[dy, dx] * image[y + dy - oy, x + dx - ox]`` with the
kernel flipped on both axes and the offsets ``o = kernel size - 1 - (size - 1) // 2``
(pixels outside the image are 0). A :class:`RunPlan` lists each row of the flipped
kernel as runs of equal non-zero values: the sum over a run is a difference of two
prefix sums of an image row, so a ring or top-hat kernel (0/1 values, one or two runs
per row) costs two reads per run and pixel instead of one per kernel pixel.
"""

from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import scipy.fft

__all__ = ["RunPlan", "run_plan", "fft_size", "kernel_key", "check_kernel", "CachedPlans"]


class RunPlan(NamedTuple):
    """Runs of equal non-zero values of the flipped kernel, row by row.

    ``runs[r] = (dy, start, stop)``: image row offset ``dy`` (pixels) and the indices,
    in an image row's padded prefix sums (see ``element.prefix_row``), whose difference
    is the run's sum at output column 0 (``+ x`` at column ``x``). ``values[r]``: the
    run's kernel value. ``pad``: the padding of the prefix sums on each side.
    """

    runs: np.ndarray
    values: np.ndarray
    pad: int


class CachedPlans:
    """A small least-recently-used mapping (kernel plans, kernel spectra).

    Parameters
    ----------
    maxsize : int
        Entries kept.
    """

    def __init__(self, maxsize=16):
        self.maxsize = maxsize
        self._entries = OrderedDict()

    def get(self, key, compute):
        """The entry of ``key``, or ``compute()`` stored under it."""
        entry = self._entries.get(key)
        if entry is None:
            entry = compute()
            self._entries[key] = entry
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry

    def __len__(self):
        return len(self._entries)

    def clear(self):
        """Forget every entry."""
        self._entries.clear()


def check_kernel(kernel):
    """The kernel as a 2D float64 array, checked.

    Raises
    ------
    ValueError
        If it is not 2D, empty, or has non-finite values.
    """
    kernel = np.ascontiguousarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(
            f"convolution kernel must be a non-empty 2D array, got shape {kernel.shape}"
        )
    bad = np.count_nonzero(~np.isfinite(kernel))
    if bad:
        raise ValueError(f"convolution kernel has {bad} non-finite values")
    return kernel


def kernel_key(kernel):
    """Content key of a (checked) kernel: shape and bytes."""
    return kernel.shape, kernel.tobytes()


def _offsets(size):
    """Offset of the flipped kernel's index 0 relative to the output pixel (scipy "same")."""
    return -(size - 1 - (size - 1) // 2)


_runs = CachedPlans(maxsize=16)


def run_plan(kernel):
    """:class:`RunPlan` of a checked 2D kernel (cached per kernel content)."""
    return _runs.get(kernel_key(kernel), lambda: _compute_run_plan(kernel))


def _compute_run_plan(kernel):
    flipped = kernel[::-1, ::-1]
    oy, ox = _offsets(kernel.shape[0]), _offsets(kernel.shape[1])
    rows = []
    for i, row in enumerate(flipped):
        j, n = 0, row.shape[0]
        while j < n:
            value = row[j]
            if value == 0.0:
                j += 1
                continue
            start = j
            while j + 1 < n and row[j + 1] == value:
                j += 1
            rows.append((i + oy, start + ox, j + ox, value))
            j += 1
    if not rows:
        runs = np.zeros((0, 3), dtype=np.int64)
        return RunPlan(runs, np.zeros(0), 0)
    table = np.array([r[:3] for r in rows], dtype=np.int64)
    pad = int(np.abs(table[:, 1:]).max()) + 1
    runs = np.empty_like(table)
    runs[:, 0] = table[:, 0]
    runs[:, 1] = table[:, 1] + pad  # first pixel of the run
    runs[:, 2] = table[:, 2] + 1 + pad  # one past its last pixel
    values = np.array([r[3] for r in rows], dtype=np.float64)
    for array in (runs, values):
        array.setflags(write=False)
    return RunPlan(runs, values, pad)


def fft_size(n_image, n_kernel):
    """FFT length along one axis for a "same"-mode convolution without wrap-around.

    The kept part of the full convolution starts at ``(n_kernel - 1) // 2``; a cyclic
    convolution of length ``L`` aliases nothing into it when
    ``L >= n_image + n_kernel - 1 - (n_kernel - 1) // 2``.
    """
    return scipy.fft.next_fast_len(n_image + n_kernel - 1 - (n_kernel - 1) // 2, real=True)
