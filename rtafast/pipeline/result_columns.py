"""The columns of ``results.ecsv`` and their formatting: one :class:`ResultColumn` per
column (name, kind, unit, description, in :data:`RESULT_COLUMN_SPECS`), a results row's
values as cells, cells as astropy columns, and a table as ECSV header and data lines
(used by :class:`~rtafast.pipeline.outputs.OutputDir`, which re-exports the public names).
"""

import io
import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn

__all__ = [
    "REQUIRED_RESULT_KEYS",
    "RESULT_COLUMNS",
    "RESULT_COLUMN_INDEX",
    "RESULT_COLUMN_SPECS",
    "ResultColumn",
    "ecsv_lines",
    "ecsv_parts",
    "ecsv_text_parts",
    "result_cell",
    "result_column",
]


@dataclass(frozen=True)
class ResultColumn:
    """One column of ``results.ecsv``: name, kind (``int``, ``float``, ``str``),
    unit (None: dimensionless or not a quantity) and description."""

    name: str
    kind: str
    unit: str | None
    description: str


#: The columns of ``results.ecsv``, in order: RTA-SCI's result row (runid, texp,
#: sqrt_ts, flux, flux_err, ra, dec, oncounts, offcounts, alpha, excess, sigma, offset,
#: delay) with the window, candidate, error radii and backend, then rtafast's extras.
RESULT_COLUMN_SPECS = (
    ResultColumn("runid", "int", None, "observation id of the window's last bunch"),
    ResultColumn("window", "int", None, "window index in its stream (0, 1, ...)"),
    ResultColumn("window_start", "float", "s", "window start after the trigger"),
    ResultColumn("window_stop", "float", "s", "window stop after the trigger"),
    ResultColumn("texp", "float", "s", "live time of the window"),
    ResultColumn("candidate", "int", None,
                 "0: the configured target position; n >= 1: the n-th blind candidate"),
    ResultColumn("sqrt_ts", "float", None, "significance of the flux fit, sigma"),
    ResultColumn("ts", "float", None, "test statistic of the flux fit"),
    ResultColumn("flux", "float", "cm-2 s-1", "integral photon flux in the energy range"),
    ResultColumn("flux_err", "float", "cm-2 s-1", "1-sigma error of flux"),
    ResultColumn("flux_ul", "float", "cm-2 s-1", "95 % upper limit on flux"),
    ResultColumn("ra", "float", "deg", "right ascension (ICRS)"),
    ResultColumn("dec", "float", "deg", "declination (ICRS)"),
    ResultColumn("r68", "float", "deg", "68 % containment error radius (0: not localised)"),
    ResultColumn("r95", "float", "deg", "95 % containment error radius (0: not localised)"),
    ResultColumn("oncounts", "int", None, "counts in the on region"),
    ResultColumn("offcounts", "int", None, "counts in the off regions"),
    ResultColumn("alpha", "float", None, "on/off exposure ratio"),
    ResultColumn("excess", "float", None, "oncounts - alpha offcounts"),
    ResultColumn("sigma", "float", None, "Li & Ma significance of the on/off counts"),
    ResultColumn("offset", "float", "deg", "distance to the pointing position"),
    ResultColumn("delay", "float", "s", "window stop after the trigger (data age)"),
    ResultColumn("backend", "str", None, "array backend"),
    ResultColumn("window_kind", "str", None, "cumulative or sliding"),
    ResultColumn("detection_sqrt_ts", "float", None, "peak significance in the detection map"),
    ResultColumn("lima_time", "float", None,
                 "time-aware: Li & Ma significance of the brightest stretch of bunches, sigma"),
    ResultColumn("cusum", "float", None, "time-aware: CuSum statistic (log-likelihood ratio)"),
    ResultColumn("lift", "float", None,
                 "time-aware: sqrt(TS) of the decay-aware likelihood, sigma"),
    ResultColumn("alert_id", "str", None, "the alert this row raised ('' for none)"),
)
#: Column names of ``results.ecsv``, in order.
RESULT_COLUMNS = [column.name for column in RESULT_COLUMN_SPECS]
#: Keys every results row must give.
REQUIRED_RESULT_KEYS = ("runid", "window", "window_start", "window_stop", "texp", "backend")
#: Position of each column in a row, by name.
RESULT_COLUMN_INDEX = {column.name: index for index, column in enumerate(RESULT_COLUMN_SPECS)}
_MISSING = {"int": None, "float": math.nan, "str": ""}


def result_cell(spec, value):
    """One row value for a column: Quantities in the column's unit, numpy scalars as
    Python numbers, None as missing."""
    if value is None:
        return _MISSING[spec.kind]
    if isinstance(value, u.Quantity):
        value = value.to_value(spec.unit or u.dimensionless_unscaled)
    if spec.kind == "float":
        return float(value)
    if spec.kind == "int":
        return int(value)
    return str(value)


def result_column(spec, values):
    """An astropy column from one column's row values (masked ints where missing)."""
    if spec.kind == "int":
        mask = np.array([value is None for value in values], dtype=bool)
        data = np.array([0 if value is None else value for value in values], dtype=np.int64)
        column = MaskedColumn(data, mask=mask, name=spec.name) if mask.any() else data
    elif spec.kind == "float":
        column = np.array(values, dtype=np.float64)
    else:
        column = np.array(values, dtype=str) if values else np.array([], dtype=str)
    return column


def ecsv_parts(table):
    """(header, data lines) of a table written by astropy's ECSV writer: the header is
    the ``#`` lines and the column-name line."""
    buffer = io.StringIO()
    table.write(buffer, format="ascii.ecsv")
    return ecsv_text_parts(buffer.getvalue())


def ecsv_text_parts(text):
    """(header, data lines) of an ECSV text: the header is the ``#`` lines and the
    column-name line."""
    position = 0
    while text.startswith("#", position):
        position = text.index("\n", position) + 1
    position = text.index("\n", position) + 1
    return text[:position], text[position:]


def ecsv_lines(table):
    """The ECSV data lines of a table (no header): what astropy's ECSV writer puts after
    its header, written by the basic writer with ECSV's delimiter (the tests check the
    two agree)."""
    buffer = io.StringIO()
    table.write(buffer, format="ascii.no_header", delimiter=" ")
    return buffer.getvalue()

