"""What a trials run writes: its output directory and the columns of its Parquet files.

Layout of ``OUTDIR`` (``rtafast trials CONFIG -o OUTDIR``)::

    OUTDIR/trials.json                      the manifest (see :data:`MANIFEST_NAME`)
    OUTDIR/batches/e{E:02d}-b{B:06d}.parquet one file per batch: exposure index E, batch B

The manifest (JSON) holds ``config`` (the pipeline config as YAML text), ``hypothesis``,
``exposures_s`` (list of float, s), ``batch_size``, ``seed``, ``blind``, ``n`` (trials
asked per exposure), ``flux_scale`` (cm-2 s-1 per unit norm), ``target`` (ra, dec deg),
``rtafast_version`` and ``batches``: per written batch ``{"file", "exposure_index",
"batch", "n", "wall_s", "cpu_s"}`` (cpu_s: the worker process's CPU seconds spent on it).

Each batch file holds one row per trial with the columns of :data:`COLUMNS` (name ->
Arrow type, description). Blind-search columns are NaN (floats) or -1 (ints) when the
run has ``trials.blind: false``.
"""

import pyarrow as pa

__all__ = ["BATCH_DIR", "COLUMNS", "MANIFEST_NAME", "SCHEMA", "batch_file_name"]

MANIFEST_NAME = "trials.json"
BATCH_DIR = "batches"

#: Column name -> (Arrow type, description with units).
COLUMNS = {
    "trial": (pa.int64(), "trial number within its exposure (0 .. n-1)"),
    "batch": (pa.int32(), "batch number within its exposure"),
    "seed": (pa.int64(), "the batch's seed (derived from the base seed, exposure, batch)"),
    "exposure_s": (pa.float64(), "live time of the simulated window, s"),
    "injected_flux": (pa.float64(), "injected integral flux, cm-2 s-1 (0: background only)"),
    "ts": (pa.float64(), "fixed-position TS at the target (norm free, may be negative)"),
    "sqrt_ts": (pa.float64(), "signed sqrt(TS): negative when the fitted norm is not > 0"),
    "norm": (pa.float64(), "fitted norm (amplitude / reference amplitude)"),
    "flux": (pa.float64(), "fitted integral flux over the selection's energy range, cm-2 s-1"),
    "flux_err": (pa.float64(), "its error (Hessian), cm-2 s-1"),
    "n_counts": (pa.float64(), "counts in the fitted bins (where the source predicts counts)"),
    "converged": (pa.bool_(), "the fixed-position fit converged"),
    "blind_sqrt_ts": (
        pa.float64(),
        "blind search: highest significance of the map (signed sqrt TS), sigma",
    ),
    "blind_ts": (pa.float64(), "blind search: that maximum as TS (sign kept: s * |s|)"),
    "blind_ra": (pa.float64(), "brightest candidate's localised RA, deg (NaN: no candidate)"),
    "blind_dec": (pa.float64(), "its Dec, deg"),
    "blind_offset": (pa.float64(), "its distance from the target (the true position), deg"),
    "blind_r68": (pa.float64(), "its 68 % error radius, deg"),
    "blind_r95": (pa.float64(), "its 95 % error radius, deg"),
    "blind_r997": (
        pa.float64(),
        "its 99.7 % error radius, deg: r95 scaled as for a circular Gaussian "
        "(sqrt of the 2-dof chi2 quantiles 0.997 / 0.95)",
    ),
    "n_candidates": (pa.int32(), "blind search: candidates above the detection threshold"),
}

SCHEMA = pa.schema([pa.field(name, kind) for name, (kind, _) in COLUMNS.items()])


def batch_file_name(exposure_index, batch):
    """``e{E:02d}-b{B:06d}.parquet``."""
    return f"e{int(exposure_index):02d}-b{int(batch):06d}.parquet"
