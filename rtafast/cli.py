"""The ``rtafast`` command line: ``info``, ``demo`` and ``bench``.

Errors are reported as one line on stderr with a non-zero exit code, never a
traceback (``--debug`` shows it).
"""

import argparse
import logging
import sys
import time

__all__ = ["main"]


def _info(args):
    import numba
    import numpy

    import rtafast
    from rtafast_kernels import auto_backend_name, available_backends, resolve_backend

    lines = [f"rtafast {rtafast.__version__}"]
    for module_name in ("numpy", "numba", "gammapy", "astropy", "iminuit"):
        module = sys.modules.get(module_name) or __import__(module_name)
        lines.append(f"  {module_name:<8} {module.__version__}")
    del numpy, numba
    lines.append("backends:")
    auto = auto_backend_name()
    for name, (usable, reason) in available_backends().items():
        mark = "yes" if usable else "no "
        device = ""
        if usable and (name != "cuda" or auto == "cuda" or args.probe_gpu):
            device = f" -> {resolve_backend(name).device_name()}"
        lines.append(f"  {name:<6} {mark}  {reason}{device}")
    lines.append(f"auto picks: {auto}")
    print("\n".join(lines))
    return 0


def _demo(args):
    import statistics

    from gammapy.modeling import Fit as GammapyFit

    import rtafast
    from rtafast.reference_data import point_source_models
    from rtafast.simulate import DEMO_POSITION, simulate_dataset

    backend = rtafast.resolve_backend(args.backend)  # fail early on a bad name
    print(f"Simulating a {args.livetime} observation of a point source (CTA-like analytic IRF)...")
    dataset = simulate_dataset(
        livetime=args.livetime, amplitude=args.amplitude, random_state=args.seed
    )
    true_value = dataset.models["source"].spectral_model.amplitude.value
    print(f"  {dataset.counts.data.sum():.0f} counts in {dataset.counts.data.size} bins")

    fitters = (
        ("gammapy Fit", lambda: GammapyFit(optimize_opts={"tol": 1e-5})),
        (f"rtafast Fit ({backend.name})", lambda: rtafast.Fit(backend=backend)),
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


def _bench(args):
    from pathlib import Path

    from rtafast.bench import markdown_table, plot_rows, run_suite

    backends = [b.strip() for b in args.backend.split(",")] if args.backend else None
    rows = run_suite(backends=backends, quick=args.quick, full=args.full)
    table = markdown_table(rows)
    print(table)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.plot:
        plot_rows(rows, args.plot)
    return 0


def build_parser():
    """Return the argument parser of the ``rtafast`` command."""
    parser = argparse.ArgumentParser(prog="rtafast", description=__doc__.splitlines()[0])
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
    demo.add_argument("--backend", default=None, help="auto | numpy | numba | cuda")
    demo.add_argument("--livetime", default="30 min", help="observation live time (default 30 min)")
    demo.add_argument(
        "--amplitude", default="5e-12 cm-2 s-1 TeV-1", help="true power-law amplitude at 1 TeV"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    demo.add_argument("--repeat", type=int, default=5, help="timed repeats after the first fit")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="run the benchmark suite (rtafast vs gammapy)")
    bench.add_argument("--backend", default=None, help="comma-separated backends (default all)")
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except Exception as error:  # noqa: BLE001 - one clear line, no traceback
        if args.debug:
            raise
        print(f"rtafast {args.command}: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
