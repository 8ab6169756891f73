"""Argument types, the parser and the one-line errors of the ``rtafast`` command."""

import argparse

__all__ = [
    "PROG",
    "BenchmarkSuiteError",
    "Parser",
    "backend_name",
    "backend_list",
    "quantity",
    "int_at_least",
    "non_negative_int",
    "one_line",
    "user_errors",
]

PROG = "rtafast"


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error of the other rtafast errors."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class BenchmarkSuiteError(RuntimeError):
    """The benchmark suite's pytest run failed (its output says why)."""


def user_errors():
    """Exception types that are the user's input or environment, not rtafast's bugs."""
    from astropy.units import UnitsError

    from rtafast.fit.templates import UnsupportedDatasetError
    from rtafast_kernels import BackendUnavailableError

    return (ValueError, OSError, UnitsError, BackendUnavailableError, UnsupportedDatasetError)


def one_line(error):
    text = " ".join(str(error).split())
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    return text or type(error).__name__


def backend_name(value):
    """argparse type of ``--backend``: one backend name (``auto`` allowed)."""
    from rtafast_kernels import BACKEND_NAMES

    name = value.strip().lower()
    if name != "auto" and name not in BACKEND_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown backend {value!r}; choose one of auto, {', '.join(BACKEND_NAMES)}"
        )
    return name


def backend_list(value):
    """argparse type of ``bench --backend``: comma-separated backend names."""
    names = [backend_name(item) for item in value.split(",") if item.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no backend named in {value!r}")
    return ",".join(names)


def quantity(unit, what):
    def parse(value):
        import astropy.units as u

        try:
            quantity = u.Quantity(value)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(f"{value!r} is not a quantity: {error}") from None
        if not quantity.isscalar or not quantity.unit.is_equivalent(unit):
            raise argparse.ArgumentTypeError(f"{value!r} is not {what} (in units of {unit})")
        if not quantity.value > 0:
            raise argparse.ArgumentTypeError(f"{value!r}: {what} must be positive")
        return value

    return parse


def int_at_least(minimum, too_small):
    """argparse type: an integer, ``minimum`` or more.

    Parameters
    ----------
    minimum : int
        The smallest value allowed.
    too_small : str
        The error of a smaller value, formatted with ``value`` (the argument's text).

    Returns
    -------
    callable
        ``parse(value) -> int``; raises `argparse.ArgumentTypeError` ("'x' is not an
        integer", or ``too_small``).
    """

    def parse(value):
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(too_small.format(value=value))
        return number

    return parse


#: argparse type: an integer, 0 or more.
non_negative_int = int_at_least(0, "{value!r} is negative")
