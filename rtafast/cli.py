"""The ``rtafast`` command line: ``info``, ``demo``, ``warmup`` and ``bench``.

Errors are reported as one line on stderr, ``rtafast: error: <message>``, never a
traceback (``--debug`` shows it): exit code 2 for bad input (arguments, backend
names, ``$RTAFAST_BACKEND``, missing data, output paths, values), 1 for a failed
benchmark suite or an internal error, 130 when interrupted. Inputs are checked
before any long work starts.
"""

import argparse
import logging
import sys
import time

__all__ = ["main"]

PROG = "rtafast"


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error of the other rtafast errors."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class BenchmarkSuiteError(RuntimeError):
    """The benchmark suite's pytest run failed (its output says why)."""


def _devtools_bench():
    """``rtafast_devtools.bench`` of the source checkout this rtafast runs from.

    Raises
    ------
    FileNotFoundError
        When rtafast is not run from a source checkout (an installed wheel has no
        benchmarks): the message says what ``rtafast bench`` needs.
    """
    import importlib
    from pathlib import Path

    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "rtafast_devtools" / "bench.py").is_file():
        raise FileNotFoundError(
            f"rtafast bench needs a source checkout of rtafast (its rtafast_devtools/ and "
            f"benchmarks/ folders), not found next to the rtafast package in {checkout}: "
            "clone the repository and pip install -e '.[test]' there"
        )
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    return importlib.import_module("rtafast_devtools.bench")


def _user_errors():
    """Exception types that are the user's input or environment, not rtafast's bugs."""
    from astropy.units import UnitsError

    from rtafast.fit.templates import UnsupportedDatasetError
    from rtafast_kernels import BackendUnavailableError

    return (ValueError, OSError, UnitsError, BackendUnavailableError, UnsupportedDatasetError)


def _one_line(error):
    text = " ".join(str(error).split())
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    return text or type(error).__name__


def _backend_name(value):
    """argparse type of ``--backend``: one backend name (``auto`` allowed)."""
    from rtafast_kernels import BACKEND_NAMES

    name = value.strip().lower()
    if name != "auto" and name not in BACKEND_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown backend {value!r}; choose one of auto, {', '.join(BACKEND_NAMES)}"
        )
    return name


def _backend_list(value):
    """argparse type of ``bench --backend``: comma-separated backend names."""
    names = [_backend_name(item) for item in value.split(",") if item.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no backend named in {value!r}")
    return ",".join(names)


def _quantity(unit, what):
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


def _non_negative_int(value):
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is negative")
    return number


def _info(args):
    import numba
    import numpy

    import rtafast
    from rtafast_kernels import (
        ENV_VARIABLE,
        auto_backend_name,
        available_backends,
        environment_backend_name,
        resolve_backend,
    )

    requested = environment_backend_name()  # raises on a bad $RTAFAST_BACKEND
    lines = [f"rtafast {rtafast.__version__}"]
    for module_name in ("numpy", "numba", "gammapy", "astropy", "iminuit"):
        module = sys.modules.get(module_name) or __import__(module_name)
        lines.append(f"  {module_name:<8} {module.__version__}")
    del numpy, numba
    lines.append("backends:")
    auto = auto_backend_name()
    status = available_backends()
    for name, (usable, reason) in status.items():
        mark = "yes" if usable else "no "
        device = ""
        if usable and (name != "cuda" or auto == "cuda" or args.probe_gpu):
            device = f" -> {resolve_backend(name).device_name()}"
        lines.append(f"  {name:<6} {mark}  {reason}{device}")
    lines.append(f"auto picks: {auto}")
    problem = None
    if requested != "auto":
        lines.append(f"${ENV_VARIABLE}={requested}: the default backend is {requested}")
        usable, reason = status[requested]
        if not usable:
            problem = (
                f"${ENV_VARIABLE}={requested} names a backend that is not available here "
                f"({reason}); every call without array_backend= will fail"
            )
    print("\n".join(lines))
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    return 0


def _demo(args):
    import statistics

    from gammapy.modeling import Fit as GammapyFit

    import rtafast
    from rtafast.simulate import DEMO_POSITION, point_source_models, simulate_dataset

    backend = rtafast.resolve_backend(args.backend)  # fail early on a bad name
    from rtafast_kernels.jit import COMPILE_LOGGER

    logging.getLogger(COMPILE_LOGGER).setLevel(logging.INFO)  # say when kernels compile
    print(f"Simulating a {args.livetime} observation of a point source (CTA-like analytic IRF)...")
    dataset = simulate_dataset(
        livetime=args.livetime, amplitude=args.amplitude, random_state=args.seed
    )
    true_value = dataset.models["source"].spectral_model.amplitude.value
    print(f"  {dataset.counts.data.sum():.0f} counts in {dataset.counts.data.size} bins")

    fitters = (
        ("gammapy Fit", lambda: GammapyFit(optimize_opts={"tol": 1e-5})),
        (f"rtafast Fit ({backend.name})", lambda: rtafast.Fit(array_backend=backend)),
    )
    rows = []
    for label, make_fitter in fitters:
        times = []
        for _ in range(1 + args.repeat):
            # fresh models each time, as for a new candidate: gammapy rebuilds its evaluator
            dataset.models = point_source_models(dataset, DEMO_POSITION)
            start = time.perf_counter()
            result = make_fitter().run(dataset)
            times.append(time.perf_counter() - start)
        amplitude = dataset.models["source"].spectral_model.amplitude
        rows.append(
            (
                label,
                amplitude.value,
                amplitude.error,
                result.total_stat,
                times[0],
                statistics.median(times[1:]) if args.repeat else float("nan"),
                getattr(result, "ts", {}).get("source"),
            )
        )
    print(
        f"\n{'fit':<22} {'amplitude':>12} {'error':>10} {'total_stat':>12} "
        f"{'first':>9} {'median':>9}"
    )
    for label, value, error, stat, first, median, _ in rows:
        print(
            f"{label:<22} {value:12.5e} {error:10.3e} {stat:12.4f} "
            f"{first * 1e3:6.1f} ms {median * 1e3:6.1f} ms"
        )
    print(
        f"\ntrue amplitude {true_value:.3e} cm-2 s-1 TeV-1; rtafast TS = {rows[-1][-1]:.1f}; "
        f"speed-up (median of {args.repeat} repeats): {rows[0][5] / rows[1][5]:.1f}x"
    )
    print(
        "The first rtafast call includes numba's JIT compilation and the PSF kernel, which\n"
        "later fits reuse; see docs/benchmarks.md for the benchmark suite."
    )
    return 0


def _warmup(args):
    from rtafast.warmup import warmup
    from rtafast_kernels import resolve_backend
    from rtafast_kernels.jit import COMPILE_LOGGER, kernel_cache_dir

    backend = resolve_backend(args.backend)  # fail early on a bad name
    logging.getLogger(COMPILE_LOGGER).setLevel(logging.INFO)
    print(
        f"Compiling rtafast's kernels for backend {backend.name!r} "
        f"(numba's cache: {kernel_cache_dir() or 'none, not writable'})..."
    )

    def report(step, seconds):
        print(f"  {step:<16} {seconds:7.1f} s", flush=True)

    times = warmup(backend.name, report=report)
    print(f"done in {sum(times.values()):.1f} s; later processes load the kernels from the cache")
    return 0


def _bench_backends(names):
    """The concrete backends of ``bench --backend`` (``auto`` replaced by what it picks).

    Whether each can run is the suite's business (on a machine without a GPU it
    times the cuda kernels under numba's CUDA simulator).
    """
    if not names:
        return None
    from rtafast_kernels import auto_backend_name

    chosen = [auto_backend_name() if name == "auto" else name for name in names]
    return list(dict.fromkeys(chosen))


def _bench(args):
    bench = _devtools_bench()
    check_output_path, markdown_table = bench.check_output_path, bench.markdown_table
    plot_rows, run_suite, write_text_atomic = (
        bench.plot_rows,
        bench.run_suite,
        bench.write_text_atomic,
    )
    OutputPathError = bench.OutputPathError  # noqa: N806

    # every output is checked before the suite runs (minutes), not after
    outputs = {}
    for option, value in (
        ("--json", args.json),
        ("--markdown", args.markdown),
        ("--plot", args.plot),
    ):
        if value is None:
            continue
        path = check_output_path(value, option, plot=option == "--plot")
        for other, other_path in outputs.items():
            if other_path.resolve() == path.resolve():
                raise OutputPathError(f"{other} and {option} name the same file {value}")
        outputs[option] = path
    backends = _bench_backends(args.backend.split(",") if args.backend else None)
    rows = run_suite(backends=backends, quick=args.quick, full=args.full)
    table = markdown_table(rows)
    print(table)
    if "--json" in outputs:
        import json

        write_text_atomic(outputs["--json"], json.dumps(rows, indent=2))
    if "--markdown" in outputs:
        write_text_atomic(outputs["--markdown"], table)
    if "--plot" in outputs:
        plot_rows(rows, outputs["--plot"])
    return 0


def build_parser():
    """Return the argument parser of the ``rtafast`` command."""
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="versions, available backends, what 'auto' picks, GPU")
    info.add_argument(
        "--probe-gpu",
        action="store_true",
        help="initialise the cuda backend to print the GPU even if auto skips it",
    )
    info.set_defaults(func=_info)

    demo = sub.add_parser(
        "demo", help="simulate a point source and fit it with gammapy and rtafast"
    )
    demo.add_argument(
        "--backend", type=_backend_name, default=None, help="auto | numpy | numba | cuda"
    )
    demo.add_argument(
        "--livetime",
        type=_quantity("s", "a duration"),
        default="30 min",
        help="observation live time (default 30 min)",
    )
    demo.add_argument(
        "--amplitude",
        type=_quantity("cm-2 s-1 TeV-1", "a differential flux"),
        default="5e-12 cm-2 s-1 TeV-1",
        help="true power-law amplitude at 1 TeV",
    )
    demo.add_argument(
        "--seed", type=_non_negative_int, default=0, help="random seed of the simulation"
    )
    demo.add_argument(
        "--repeat", type=_non_negative_int, default=5, help="timed repeats after the first fit"
    )
    demo.set_defaults(func=_demo)

    warm = sub.add_parser(
        "warmup", help="compile every kernel now (numba caches them on disk for later runs)"
    )
    warm.add_argument(
        "--backend", type=_backend_name, default=None, help="auto | numpy | numba | cuda"
    )
    warm.set_defaults(func=_warmup)

    bench = sub.add_parser("bench", help="run the benchmark suite (rtafast vs gammapy)")
    bench.add_argument(
        "--backend", type=_backend_list, default=None, help="comma-separated backends (default all)"
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
    bench.set_defaults(func=_bench)
    return parser


def main(argv=None):
    """Entry point of the ``rtafast`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a bad argument (its one line is printed)
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
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except _user_errors() as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug: still one line, --debug for more
        if args.debug:
            raise
        print(
            f"{PROG}: internal error: {type(error).__name__}: {_one_line(error)} "
            f"(rerun as '{PROG} --debug {args.command} ...' for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
