"""``rtafast trials CONFIG --n N -o OUTDIR`` and ``rtafast trials report OUTDIR``."""

import sys

from ._args import non_negative_int
from ._options import NO_PROGRESS, OVERRIDES, Argument, add_command

__all__ = ["add_trials_command", "run_trials_command"]


def _positive_int(value):
    import argparse

    number = non_negative_int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: must be >= 1")
    return number


def add_trials_command(sub):
    """``rtafast trials``: calibration trials on Dask, and their report."""
    add_command(
        sub,
        "trials",
        "calibration trials (null or injected sources) as Dask tasks; "
        "'rtafast trials report OUTDIR' for their plots and tables",
        [
            Argument("config", metavar="CONFIG | report", help="a YAML config, or 'report'"),
            Argument(
                "report_dir",
                nargs="?",
                default=None,
                metavar="OUTDIR",
                help="with 'report': the trials' output directory",
            ),
            Argument("--n", type=_positive_int, default=None, help="trials per exposure"),
            Argument("-o", "--outdir", default=None, help="output directory"),
            Argument(
                "--scheduler",
                default=None,
                help="address of a running Dask scheduler (tcp://host:8786); default: a local "
                "cluster of one single-threaded worker process per core",
            ),
            Argument(
                "--workers",
                type=_positive_int,
                default=None,
                help="local cluster: worker processes (default: the usable cores)",
            ),
            OVERRIDES.but(
                help="override a config key (value read as YAML), e.g. trials.exposures=[1 s, 10 s]"
            ),
            NO_PROGRESS,
        ],
        run_trials_command,
        description="Run calibration trials: 'rtafast trials CONFIG --n N -o OUTDIR "
        "[--scheduler ADDRESS]' (the config's trials section: hypothesis, exposures, "
        "batch size, seed, blind search), or report on a run: 'rtafast trials report "
        "OUTDIR'. A run stopped part-way continues where it stopped when started again "
        "with the same config, --n and output directory.",
    )


def run_trials_command(args):
    """Run the trials of a config, or write the report of a trials directory."""
    if args.config == "report":
        return _report(args)
    if args.report_dir is not None:
        raise ValueError(f"unexpected argument {args.report_dir!r} (the output goes to -o)")
    if args.n is None or args.outdir is None:
        raise ValueError("give --n (trials per exposure) and -o OUTDIR")
    from rtafast.pipeline.config import load_config
    from rtafast.trials.run import run_trials

    config = load_config(args.config, args.overrides)  # every key checked before any work
    summary = run_trials(
        config,
        args.outdir,
        args.n,
        scheduler=args.scheduler,
        n_workers=args.workers,
        progress=not args.no_progress,
    )
    rate = summary["trials_per_core_second"]
    print(
        f"{summary['n_run']} batch(es) run ({summary['n_trials_run']} trials), "
        f"{summary['n_skipped']} already there; {summary['wall_s']:.1f} s wall, "
        f"{summary['cpu_s']:.1f} core-s in the workers ({rate:.4g} trials per core-second); "
        f"'rtafast trials report {args.outdir}' for the plots and tables"
    )
    return 0


def _report(args):
    if args.report_dir is None:
        raise ValueError("usage: rtafast trials report OUTDIR")
    unused = [name for name in ("n", "outdir", "scheduler", "workers") if getattr(args, name)]
    if unused or args.overrides:
        raise ValueError("'rtafast trials report OUTDIR' takes no other option")
    from rtafast.trials.report import report

    report(args.report_dir, say=lambda line: print(line, file=sys.stdout))
    return 0
