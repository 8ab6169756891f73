"""``rtafast batch``: every run of a config analysed alone, as Dask tasks, then merged."""

import sys

from ._args import PROG, int_at_least
from ._options import NO_PROGRESS, OVERRIDES, Argument, add_command

__all__ = ["add_batch_command", "run_batch"]

#: argparse type of ``--workers``.
_workers = int_at_least(1, "{value!r}: at least 1 worker")


def add_batch_command(sub):
    """``rtafast batch CONFIG -o OUTDIR [--scheduler ADDRESS] [--workers N] [--set ...]``.

    Parameters
    ----------
    sub : argparse subparsers
        The ``rtafast`` command's subcommands.
    """
    add_command(
        sub,
        "batch",
        "analyse each run (or event file) of a config alone as a Dask task, locally "
        "or on a cluster; resumable; results and alerts merged",
        [
            Argument("path", help="the YAML config (input.datastore or input.events)"),
            Argument(
                "-o",
                "--outdir",
                required=True,
                help="the batch's directory (runs/ inside; resumed)",
            ),
            Argument(
                "--scheduler",
                default=None,
                metavar="ADDRESS",
                help="a running Dask scheduler (tcp://host:8786); default: a local cluster",
            ),
            Argument(
                "--workers",
                type=_workers,
                default=None,
                metavar="N",
                help="local cluster: worker processes (default: the usable cores)",
            ),
            OVERRIDES,
            NO_PROGRESS,
        ],
        run_batch,
    )


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
