"""``rtafast run``, ``rtafast config`` and ``rtafast demo``: the alert pipeline's commands."""

import sys

from ._options import BACKEND, NO_PROGRESS, OVERRIDES, SEED, Argument, add_command, duration

__all__ = ["add_config_command", "add_demo_command", "add_run_command"]

#: The ``rtafast demo`` arguments, passed on to `rtafast.pipeline.demo.run_grb_demo` by name.
_DEMO_ARGUMENTS = ("seed", "backend", "duration", "onset", "alpha", "outdir", "overrides")


def add_config_command(sub):
    """``rtafast config --template`` / ``rtafast config CONFIG [--set ...]``."""
    add_command(
        sub,
        "config",
        "print a documented config template, or check a config and print it in full",
        [
            Argument("path", nargs="?", default=None, help="a YAML config to check"),
            Argument("--template", action="store_true", help="print the documented default config"),
            OVERRIDES,
        ],
        run_config,
    )


def add_run_command(sub):
    """``rtafast run CONFIG -o OUTDIR``."""
    add_command(
        sub,
        "run",
        "run the alert pipeline of a YAML config: events in, results and alerts out",
        [
            Argument("path", help="the YAML config (see 'rtafast config --template')"),
            Argument("-o", "--outdir", required=True, help="output directory"),
            OVERRIDES,
            Argument(
                "--profile",
                action="store_true",
                help="print the per-stage latency table at the end",
            ),
            NO_PROGRESS,
        ],
        run_run,
    )


def add_demo_command(sub):
    """``rtafast demo``: a simulated GRB afterglow through the pipeline."""
    add_command(
        sub,
        "demo",
        "simulate a GRB afterglow and run the alert pipeline on it (needs no data)",
        [
            BACKEND,
            SEED,
            duration(
                "--duration",
                "10 min",
                "observation length, a duration with its unit (default '10 min')",
            ),
            duration(
                "--onset",
                "30 s",
                "afterglow onset after T0 (the observation start), with its unit "
                "(default '30 s')",
            ),
            Argument(
                "--alpha", type=_decay_index, default=1.6, help="decay index alpha (default 1.6)"
            ),
            Argument(
                "-o",
                "--outdir",
                default=None,
                help="output directory (default: a new temporary directory, printed)",
            ),
            OVERRIDES,
        ],
        run_demo,
    )


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

    return run_grb_demo(**{name: getattr(args, name) for name in _DEMO_ARGUMENTS})

