"""Batch analysis: every run of a configuration analysed alone, as Dask tasks, merged.

``rtafast batch CONFIG -o OUTDIR`` (:mod:`rtafast.cli.batch`) and
:func:`analyse_runs`: one task per run (a DataStore observation or an event file), each
running the alert pipeline into ``OUTDIR/runs/<unit>/``; resumable (finished runs are
skipped); the results and alerts merged into ``OUTDIR/results.ecsv`` and
``OUTDIR/alerts.jsonl``, the bookkeeping in ``OUTDIR/batch.json``.
"""

from .runs import analyse_runs
from .units import BatchUnit, complete_run, list_units, run_unit

__all__ = ["BatchUnit", "analyse_runs", "complete_run", "list_units", "run_unit"]
