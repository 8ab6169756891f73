"""``rtafast batch``: every run of a config analysed alone, as Dask tasks, then merged."""

import argparse
import sys

from ._args import PROG
from .pipeline import _add_overrides

__all__ = ["add_batch_command", "run_batch"]


def _positive_int(value):
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: at least 1 worker")
    return number


def add_batch_command(sub):
    """``rtafast batch CONFIG -o OUTDIR [--scheduler ADDRESS] [--workers N] [--set ...]``.

    Parameters
    ----------
    sub : argparse subparsers
        The ``rtafast`` command's subcommands.
    """
    batch = sub.add_parser(
        "batch",
        help="analyse each run (or event file) of a config alone as a Dask task, locally "
        "or on a cluster; resumable; results and alerts merged",
    )
    batch.add_argument("path", help="the YAML config (input.datastore or input.events)")
    batch.add_argument(
        "-o", "--outdir", required=True, help="the batch's directory (runs/ inside; resumed)"
    )
    batch.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786); default: a local cluster",
    )
    batch.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="local cluster: worker processes (default: the usable cores)",
    )
    _add_overrides(batch)
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.set_defaults(func=run_batch)


def run_batch(args):
    """Run a batch; returns the exit code (0; 2 when a unit failed on its input, 1 when
    one failed otherwise: the line says which and where the records are).

    Parameters
    ----------
    args : argparse.Namespace
        ``path, outdir, scheduler, workers, overrides, no_progress``.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Bad config, input or output directory (before any task runs).
    OSError
        The scheduler cannot be reached.
    """
    from rtafast.batch import analyse_runs
    from rtafast.pipeline.config import load_config

    if args.scheduler is not None and args.workers is not None:
        raise ValueError(
            "--workers sizes the local cluster; with --scheduler the cluster's own workers "
            "run the tasks"
        )
    config = load_config(args.path, args.overrides, require_input=True)
    summary = analyse_runs(
        config,
        args.outdir,
        scheduler=args.scheduler,
        n_workers=args.workers,
        progress=not args.no_progress,
    )
    failed = [unit for unit in summary["units"] if unit["status"] == "failed"]
    if not failed:
        return 0
    first = failed[0]
    print(
        f"{PROG}: error: {len(failed)} of {len(summary['units'])} unit(s) failed (records in "
        f"{args.outdir}/batch.json); {first['name']}: {first['error']}",
        file=sys.stderr,
    )
    return 2 if all(unit["error_kind"] == "input" for unit in failed) else 1
