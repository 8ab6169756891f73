"""``rtafast run``, ``rtafast config`` and ``rtafast demo``: the alert pipeline's commands."""

import sys

from ._args import backend_name, non_negative_int, quantity

__all__ = ["add_config_command", "add_demo_command", "add_run_command"]


def _add_overrides(parser):
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (value read as YAML: 5, '0.1 deg', [23523, 23526]); repeat",
    )


def add_config_command(sub):
    """``rtafast config --template`` / ``rtafast config CONFIG [--set ...]``."""
    config = sub.add_parser(
        "config",
        help="print a documented config template, or check a config and print it in full",
    )
    config.add_argument("path", nargs="?", default=None, help="a YAML config to check")
    config.add_argument(
        "--template", action="store_true", help="print the documented default config"
    )
    _add_overrides(config)
    config.set_defaults(func=run_config)


def add_run_command(sub):
    """``rtafast run CONFIG -o OUTDIR``."""
    run = sub.add_parser(
        "run",
        help="run the alert pipeline of a YAML config: events in, results and alerts out",
    )
    run.add_argument("path", help="the YAML config (see 'rtafast config --template')")
    run.add_argument("-o", "--outdir", required=True, help="output directory")
    _add_overrides(run)
    run.add_argument(
        "--profile", action="store_true", help="print the per-stage latency table at the end"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=run_run)


def add_demo_command(sub):
    """``rtafast demo``: a simulated GRB afterglow through the pipeline."""
    demo = sub.add_parser(
        "demo",
        help="simulate a GRB afterglow and run the alert pipeline on it (needs no data)",
    )
    demo.add_argument(
        "--backend", type=backend_name, default=None, help="auto | numpy | numba | cuda"
    )
    demo.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed of the simulation"
    )
    demo.add_argument(
        "--duration",
        type=quantity("s", "a duration"),
        default="10 min",
        help="observation length, a duration with its unit (default '10 min')",
    )
    demo.add_argument(
        "--onset",
        type=quantity("s", "a duration"),
        default="30 s",
        help="afterglow onset after T0 (the observation start), with its unit (default '30 s')",
    )
    demo.add_argument(
        "--alpha", type=_decay_index, default=1.6, help="decay index alpha (default 1.6)"
    )
    demo.add_argument(
        "-o",
        "--outdir",
        default=None,
        help="output directory (default: a new temporary directory, printed)",
    )
    _add_overrides(demo)
    demo.set_defaults(func=run_demo)


def _decay_index(value):
    import argparse

    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < number < 5:
        raise argparse.ArgumentTypeError(f"{value!r}: the decay index must be in (0, 5)")
    return number


def run_config(args):
    """Print the template, or check a config (with overrides) and print it in full."""
    from rtafast.pipeline.config import dump_yaml, load_config, template_yaml

    if args.template:
        if args.path is not None or args.overrides:
            raise ValueError("--template takes no config path and no --set")
        sys.stdout.write(template_yaml())
        return 0
    if args.path is None:
        raise ValueError("give a config to check, or --template for a documented default")
    sys.stdout.write(dump_yaml(load_config(args.path, args.overrides)))
    return 0


def _load(path, overrides):
    from rtafast.pipeline.config import load_config

    return load_config(path, overrides, require_input=True)


def run_run(args):
    """Run the pipeline of a config; print the alerts (and the latency table)."""
    from rtafast.pipeline.report import print_report
    from rtafast.pipeline.run import AlertPipeline

    config = _load(args.path, args.overrides)  # every key checked before any work
    pipeline = AlertPipeline(config, args.outdir, progress=not args.no_progress)
    summary = pipeline.run()
    print_report(summary, pipeline, profile=args.profile)
    return 0


def run_demo(args):
    """Simulate a GRB afterglow, run the pipeline on it, print the alerts and latency."""
    from rtafast.pipeline.demo import run_grb_demo

    return run_grb_demo(
        seed=args.seed,
        backend=args.backend,
        duration=args.duration,
        onset=args.onset,
        alpha=args.alpha,
        outdir=args.outdir,
        overrides=args.overrides,
    )

