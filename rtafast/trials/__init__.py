"""Calibration trials at scale on Dask: null and injected-source windows, and their report.

``rtafast trials CONFIG --n N -o OUTDIR [--scheduler ADDRESS]`` simulates ``N`` windows
per exposure of the config's geometry and IRFs (background only, or a point source
injected at the target) and analyses each with the pipeline's flux-only fit at the target
(fixed-position TS) and, with ``trials.blind``, its blind search (TS map, peaks,
localisation); batches of trials run as `distributed` tasks and are written as Parquet
files (:mod:`rtafast.trials.schema`), reproducible from the base seed and resumable.
``rtafast trials report OUTDIR`` compares the TS distribution with ½χ²₁, measures
p-values out to the largest TS reached, the blind search's trials factor, the detection
efficiency against flux and the localisation containment.

Modules: :mod:`~rtafast.trials.window` (what the trials of one exposure share),
:mod:`~rtafast.trials.batch` (one batch: simulate and analyse),
:mod:`~rtafast.trials.store` (the output directory), :mod:`~rtafast.trials.run` (the
Dask orchestration), :mod:`~rtafast.trials.report` (plots and tables).
"""

from .run import TrialsSummary, plan_batches, run_trials

__all__ = ["TrialsSummary", "plan_batches", "run_trials"]
