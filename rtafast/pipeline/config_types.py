"""Value types of the pipeline configuration: quantities, times and the configuration errors.

Values with units are validated from strings such as ``"0.02 deg"`` into scalar
`~astropy.units.Quantity` (unit kind and sign checked) and dumped back as strings; times from
ISO strings, ``"MJD 60676.5"``, numbers (MJD) or YAML timestamps into `~astropy.time.Time` in
the TT scale. :class:`ConfigError` is the one-line problem that every failure ends as;
``_KeyProblem`` is what the sections' cross-field validators raise. Re-exported by
:mod:`rtafast.pipeline.config`.
"""

from __future__ import annotations

import datetime
import functools
import math
import numbers
import typing
from typing import Annotated

import astropy.units as u
from astropy.time import Time
from pydantic import PlainSerializer, PlainValidator, field_validator, model_validator

__all__ = [
    "TIME_SCALES",
    "Angle",
    "ConfigError",
    "Duration",
    "Energy",
    "NonNegativeDuration",
    "OptionalAngle",
    "OptionalRelativeTime",
    "OptionalTime",
]


class ConfigError(ValueError):
    """A configuration problem, as one line: ``source[:line]: key: problem``.

    Parameters
    ----------
    problem : str
        What is wrong and what is allowed.
    key : str, optional
        Dotted key (``"detection.threshold"``, ``"detection.exclusion[0].radius"``).
    source : str, optional
        Where the value came from: the file name or ``"--set section.key=value"``.
    line : int, optional
        Line (1-based) in ``source``.
    """

    def __init__(self, problem, key=None, source=None, line=None):
        self.problem = problem
        self.key = key
        self.source = source
        self.line = line
        super().__init__(self._one_line())

    def _one_line(self):
        where = None
        if self.source is not None:
            where = self.source if self.line is None else f"{self.source}:{self.line}"
        parts = [part for part in (where, self.key, self.problem) if part]
        return ": ".join(parts)


class _KeyProblem(ValueError):
    """Raised by a cross-field validator: names the key within its section."""

    def __init__(self, key, problem):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


# -- quantities and times ------------------------------------------------------------------
_KINDS = {"angle": u.deg, "duration": u.s, "energy": u.TeV}
_EXAMPLES = {"angle": "0.02 deg", "duration": "10 s", "energy": "1 TeV"}


def _to_quantity(value, kind, sign="positive", optional=False):
    """Validate ``value`` (a string such as ``"0.02 deg"`` or a Quantity) as a scalar of ``kind``.

    ``sign``: ``"positive"`` (> 0), ``"nonnegative"`` (>= 0) or ``"any"``.
    """
    if value is None:
        if optional:
            return None
        raise ValueError(f"expected a {kind} such as '{_EXAMPLES[kind]}', got None")
    if isinstance(value, numbers.Number) and not isinstance(value, u.Quantity):
        raise ValueError(f"{value!r} has no unit: write it as e.g. '{value} {_KINDS[kind]}'")
    if not isinstance(value, (str, u.Quantity)):
        raise ValueError(f"expected a {kind} such as '{_EXAMPLES[kind]}', got {value!r}")
    article = "an" if kind[0] in "aeiou" else "a"
    try:
        quantity = u.Quantity(value)
    except (TypeError, ValueError) as error:
        reason = str(error).split(". ")[0].rstrip(".")
        raise ValueError(
            f"{value!r} is not {article} {kind} such as '{_EXAMPLES[kind]}' ({reason})"
        ) from None
    if not quantity.isscalar:
        raise ValueError(f"{value!r}: expected one {kind}, got an array")
    if not quantity.unit.is_equivalent(_KINDS[kind]):
        raise ValueError(f"{value!r} is not {article} {kind} (unit {quantity.unit})")
    number = float(quantity.value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    if sign == "positive" and number <= 0:
        raise ValueError(f"{value!r} must be positive")
    if sign == "nonnegative" and number < 0:
        raise ValueError(f"{value!r} must not be negative")
    return quantity


def _quantity_to_str(quantity):
    """``0.02 deg`` as the string ``"0.02 deg"`` (None stays None)."""
    if quantity is None:
        return None
    number = repr(float(quantity.value))
    if number.endswith(".0"):
        number = number[: -len(".0")]
    return f"{number} {quantity.unit.to_string()}"


def _quantity_type(kind, sign="positive", optional=False):
    """An annotated Quantity type: validated by :func:`_to_quantity`, dumped as a string."""
    validate = functools.partial(_to_quantity, kind=kind, sign=sign, optional=optional)
    if optional:
        return Annotated[
            typing.Optional[u.Quantity],  # noqa: UP045 (runtime type expression)
            PlainValidator(validate),
            PlainSerializer(_quantity_to_str, return_type=typing.Optional[str]),  # noqa: UP045
        ]
    return Annotated[
        u.Quantity,
        PlainValidator(validate),
        PlainSerializer(_quantity_to_str, return_type=str),
    ]


Angle = _quantity_type("angle")
OptionalAngle = _quantity_type("angle", optional=True)
Energy = _quantity_type("energy")
Duration = _quantity_type("duration")
NonNegativeDuration = _quantity_type("duration", sign="nonnegative")
OptionalRelativeTime = _quantity_type("duration", sign="any", optional=True)

#: Time scales accepted after a time string (converted to TT); UT1 would need IERS tables.
TIME_SCALES = ("tt", "utc", "tai")


def _time_from_string(text):
    """``"2026-01-01T00:00:00 [UTC]"`` or ``"MJD 60676.5 [UTC]"`` as a Time."""
    tokens = text.split()
    scale = "tt"
    if len(tokens) > 1 and tokens[-1].lower() in Time.SCALES:
        scale = tokens.pop().lower()
        if scale not in TIME_SCALES:
            raise ValueError(
                f"{text!r}: time scale {scale!r} not supported (use one of "
                f"{', '.join(s.upper() for s in TIME_SCALES)})"
            )
    if tokens and tokens[0].upper() == "MJD":
        if len(tokens) != 2:
            raise ValueError(f"{text!r} is not a time such as 'MJD 60676.5'")
        try:
            mjd = float(tokens[1])
        except ValueError:
            raise ValueError(f"{text!r} is not a time such as 'MJD 60676.5'") from None
        return Time(mjd, format="mjd", scale=scale)
    try:
        return Time(" ".join(tokens), scale=scale)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time such as '2026-01-01T00:00:00', "
            "'2026-01-01T00:00:00 UTC' or 'MJD 60676.5'"
        ) from None


def _to_time(value):
    """Validate a time (string, MJD number, datetime, Time or None) into a TT Time."""
    if value is None:
        return None
    if isinstance(value, Time):
        time = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a time, got {value!r}")
    elif isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a time")
        time = Time(float(value), format="mjd", scale="tt")
    elif isinstance(value, datetime.datetime):
        # an unquoted YAML timestamp: naive means TT (as strings), an explicit zone is UTC
        time = Time(value, scale="tt") if value.tzinfo is None else Time(value)
    elif isinstance(value, datetime.date):
        time = Time(datetime.datetime.combine(value, datetime.time()), scale="tt")
    elif isinstance(value, str):
        time = _time_from_string(value)
    else:
        raise ValueError(f"expected a time such as '2026-01-01T00:00:00', got {value!r}")
    if not time.isscalar:
        raise ValueError(f"{value!r}: expected one time, got an array")
    if time.scale not in TIME_SCALES:
        raise ValueError(f"{value!r}: time scale {time.scale!r} not supported")
    return time.tt


def _time_to_str(time):
    """A Time as ``"2026-01-01T00:01:09.184000000 TT"`` (None stays None)."""
    if time is None:
        return None
    return f"{Time(time.tt, precision=9).isot} TT"


OptionalTime = Annotated[
    typing.Optional[Time],  # noqa: UP045 (runtime type expression)
    PlainValidator(_to_time),
    PlainSerializer(_time_to_str, return_type=typing.Optional[str]),  # noqa: UP045
]


def _as_list(value):
    """A single value where a list is expected becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, (str, numbers.Number, dict)):
        return [value]
    return value


def _unique(values, key):
    """Raise when ``values`` has a repeated item."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise _KeyProblem(key, f"repeated value(s): {', '.join(repeated)}")


def _unique_list_validators(key):
    """The two validators of a list ``key`` that takes a single value as a one-item list and
    refuses repeated items (a ``_KeyProblem`` naming ``key``, checked before the validators
    defined after them in the section): ``_as_lists, _unique_items =
    _unique_list_validators("formats")`` in the section's body."""

    def unique_items(section):
        _unique(getattr(section, key), key)
        return section

    as_list = field_validator(key, mode="before")(_as_list)
    return as_list, model_validator(mode="after")(unique_items)


def _ordered(section, low, high):
    """Raise unless ``section.low < section.high`` (both given)."""
    low_value, high_value = getattr(section, low), getattr(section, high)
    if low_value is not None and high_value is not None and not low_value < high_value:
        raise _KeyProblem(
            low,
            f"{_quantity_to_str(low_value)} must be below {high} ({_quantity_to_str(high_value)})",
        )
