"""The rtafast command line.

Commands: demo (a simulated GRB afterglow through the alert pipeline), run (the alert
pipeline on a YAML config), batch (each run of a config as a Dask task, merged), config
(a documented template, or check a config), trials (calibration trials on Dask, and
their report), compare (a simulated point source fitted with gammapy and rtafast), info,
warmup, bench.

Errors are reported as one line on stderr, "rtafast: error: <message>", never a
traceback (--debug shows it): exit code 2 for bad input (arguments, config keys,
backend names, $RTAFAST_BACKEND, missing or unreadable data, output paths, values), 1
for a failed benchmark suite or an internal error, 130 when interrupted. Inputs are
checked before any long work starts.
"""

import logging
import sys

from ._args import (
    PROG,
    BenchmarkSuiteError,
    Parser,
    backend_list,
    non_negative_int,
    one_line,
    quantity,
    user_errors,
)
from ._options import BACKEND, SEED, Argument, add_command, duration

__all__ = ["main", "build_parser", "BenchmarkSuiteError"]

_DESCRIPTION = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1]


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rtafast")
    except PackageNotFoundError:  # a checkout on sys.path without an install
        import rtafast

        return rtafast.__version__


def _command(module, function):
    """A command's function, imported when the command runs (``--help`` stays fast)."""

    def run(args):
        import importlib

        return getattr(importlib.import_module(f"rtafast.cli.{module}"), function)(args)

    return run


def _add_info(sub):
    probe_gpu = Argument(
        "--probe-gpu",
        action="store_true",
        help="initialise the cuda backend to print the GPU even if auto skips it",
    )
    add_command(
        sub,
        "info",
        "versions, available backends, what 'auto' picks, GPU",
        [probe_gpu],
        _command("info", "run_info"),
    )


def _add_compare(sub):
    livetime = duration(
        "--livetime",
        "30 min",
        "observation live time, a duration with its unit (default '30 min')",
    )
    amplitude = Argument(
        "--amplitude",
        type=quantity("cm-2 s-1 TeV-1", "a differential flux"),
        default="5e-12 cm-2 s-1 TeV-1",
        help="true power-law amplitude at 1 TeV, in cm-2 s-1 TeV-1 (default 5e-12)",
    )
    repeat = Argument(
        "--repeat",
        type=non_negative_int,
        default=5,
        help="timed repeats after the first fit (0: the first fit only)",
    )
    add_command(
        sub,
        "compare",
        "simulate a point source and fit it with gammapy and rtafast",
        [BACKEND, livetime, amplitude, SEED, repeat],
        _command("compare", "run_compare"),
    )


def _add_warmup(sub):
    add_command(
        sub,
        "warmup",
        "compile every kernel now (numba caches them on disk for later runs)",
        [BACKEND],
        _command("warmup", "run_warmup"),
    )


def _add_bench(sub):
    bench = sub.add_parser("bench", help="run the benchmark suite (rtafast vs gammapy)")
    bench.add_argument(
        "--backend", type=backend_list, default=None, help="comma-separated backends (default all)"
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer rounds, small sizes only")
    size.add_argument(
        "--full", action="store_true", help="also the large sizes and scaling sweeps (slow)"
    )
    bench.add_argument("--json", default=None, help="write the rows as JSON to this file")
    bench.add_argument("--markdown", default=None, help="write the Markdown table here")
    bench.add_argument(
        "--plot", default=None, help="plot time vs size with the floors (PNG/PDF) here"
    )
    bench.set_defaults(func=_command("bench", "run_bench"))


def build_parser():
    """Return the argument parser of the ``rtafast`` command."""
    import argparse

    from .batch import add_batch_command
    from .pipeline import add_config_command, add_demo_command, add_run_command
    from .trials import add_trials_command

    parser = Parser(
        prog=PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_command(sub)
    add_run_command(sub)
    add_batch_command(sub)
    add_config_command(sub)
    add_trials_command(sub)
    _add_compare(sub)
    _add_info(sub)
    _add_warmup(sub)
    _add_bench(sub)
    return parser


def main(argv=None):
    """Entry point of the ``rtafast`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad argument (its one line is printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rtafast_kernels import environment_backend_name

    try:
        environment_backend_name()  # a bad $RTAFAST_BACKEND fails at once, whatever the command
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BenchmarkSuiteError as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 1
    except user_errors() as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug: still one line, --debug for more
        if args.debug:
            raise
        print(
            f"{PROG}: internal error: {type(error).__name__}: {one_line(error)} "
            f"(rerun as '{PROG} --debug {args.command} ...' for the traceback)",
            file=sys.stderr,
        )
        return 1
