"""Compact storage of the latency records: NumPy arrays grown by doubling, annotation columns.

:class:`_GrowingArray` holds the per-window and per-alert records of a
:class:`~rtafast.pipeline.latency.LatencyProfile` (capacity doubled when full, so a replay of
10⁵ windows keeps memory flat); :class:`_MetaColumn` holds one annotation, numbers as float64
or text as category codes, and renders it as ``latency.csv`` cells.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Private helpers of :mod:`rtafast.pipeline.latency`; nothing public.
__all__: list[str] = []

_INITIAL_CAPACITY = 1024
_CSV_FLOAT_FORMAT = ".6g"
_NUMBER_TYPES = (bool, np.bool_, int, float, np.integer, np.floating)


class _GrowingArray:
    """A NumPy array appended to at its end, with capacity grown by doubling.

    Parameters
    ----------
    dtype : numpy dtype
        Element type.
    width : int or None
        Columns per row (``None``: a 1-D array).
    fill : scalar
        Value of rows not yet written (also of rows added when growing).
    """

    __slots__ = ("_data", "size", "_fill")

    def __init__(self, dtype, width=None, fill=0):
        shape = (_INITIAL_CAPACITY,) if width is None else (_INITIAL_CAPACITY, width)
        self._data = np.full(shape, fill, dtype=dtype)
        self._fill = fill
        self.size = 0

    def append(self, value) -> None:
        """Store ``value`` (a scalar or one row) at the end."""
        if self.size == len(self._data):
            self.reserve(2 * self.size)
        self._data[self.size] = value
        self.size += 1

    def put(self, row: int, value) -> None:
        """Store ``value`` at ``row``, growing by doubling; rows skipped keep the fill value."""
        if row >= len(self._data):
            self.reserve(max(row + 1, 2 * len(self._data)))
        self._data[row] = value
        self.size = max(self.size, row + 1)

    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` rows (at least); existing rows are kept."""
        if capacity <= len(self._data):
            return
        grown = np.full((capacity,) + self._data.shape[1:], self._fill, dtype=self._data.dtype)
        grown[: self.size] = self._data[: self.size]
        self._data = grown

    @property
    def values(self) -> np.ndarray:
        """The rows written so far (a view)."""
        return self._data[: self.size]

    @property
    def nbytes(self) -> int:
        """Bytes allocated (capacity, not size)."""
        return self._data.nbytes


class _MetaColumn:
    """One annotation column: numbers as float64 (NaN: missing), text as category codes."""

    __slots__ = ("numbers", "codes", "categories")

    def __init__(self):
        self.numbers = None
        self.codes = None
        self.categories: dict[str, int] = {}

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError when ``value`` cannot be stored in this column."""
        if value is None:
            return
        if isinstance(value, str):
            if self.numbers is not None:
                raise ValueError(f"latency meta {name!r}: a string after numbers, got {value!r}")
            return
        if isinstance(value, _NUMBER_TYPES):
            if self.codes is not None:
                raise ValueError(f"latency meta {name!r}: a number after strings, got {value!r}")
            return
        raise ValueError(
            f"latency meta {name!r}: expected a number or a string, got {type(value).__name__} "
            f"{value!r}"
        )

    def set(self, row: int, value: Any) -> None:
        """Store ``value`` (checked by :meth:`check`) for window ``row``; ``None``: missing."""
        if value is None:
            return
        if isinstance(value, str):
            if self.codes is None:
                self.codes = _GrowingArray(np.int32, fill=-1)
            self.codes.put(row, self.categories.setdefault(value, len(self.categories)))
        else:
            if self.numbers is None:
                self.numbers = _GrowingArray(np.float64, fill=np.nan)
            self.numbers.put(row, float(value))

    def cells(self, n_rows: int) -> list[str]:
        """The column as CSV cells for ``n_rows`` windows (empty: missing)."""
        if self.codes is not None:
            names = {code: text for text, code in self.categories.items()}
            codes = _padded(self.codes, n_rows, -1)
            return [names.get(int(code), "") for code in codes]
        return _float_cells(_padded(self.numbers, n_rows, np.nan))

    @property
    def nbytes(self) -> int:
        """Bytes allocated."""
        column = self.codes if self.codes is not None else self.numbers
        return 0 if column is None else column.nbytes


def _padded(column: _GrowingArray, n_rows: int, fill) -> np.ndarray:
    values = np.full(n_rows, fill, dtype=column.values.dtype)
    values[: column.size] = column.values
    return values


def _float_cells(values: np.ndarray) -> list[str]:
    return ["" if math.isnan(v) else format(v, _CSV_FLOAT_FORMAT) for v in values.tolist()]
