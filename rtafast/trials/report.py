"""The report of a trials run: ``report(OUTDIR)`` reads ``OUTDIR/trials.json`` and every
``OUTDIR/batches/e*-b*.parquet`` (layout and columns: :mod:`rtafast.trials.schema`) and writes
``OUTDIR/report/``: PNG figures, ``summary.json`` and ``summary.md``.

Per exposure (rows grouped by ``exposure_s``):

1. background-only trials (all rows of a ``hypothesis: background`` run, the rows with
   ``injected_flux == 0`` of a source run): the fixed-position TS, with the norm bounded
   at 0, against ``½δ(0) + ½χ²₁``;
2. with ``blind: true``, the blind search's highest significance per map of the same
   trials: its effective trials factor and the post-trial threshold;
3. source trials (``injected_flux > 0``): detection efficiency against injected flux
   (threshold ``alert.threshold`` of the run's config, σ) and, blind, the coverage of the
   localisation error radii;

and the throughput of the batches. Statistics: :mod:`rtafast.trials.report_stats`;
figures and ``summary.md``: :mod:`rtafast.trials.report_plots`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from . import report_plots as plots
from . import report_stats as st
from .schema import BATCH_DIR, COLUMNS, MANIFEST_NAME

__all__ = ["REPORT_DIR", "load_trials", "read_manifest", "report", "throughput"]

#: Sub-folder of OUTDIR the report is written to.
REPORT_DIR = "report"
#: Alert threshold (σ) when the run's config has no ``alert.threshold``.
DEFAULT_THRESHOLD = 5.0
#: The batch files' names (:func:`~rtafast.trials.schema.batch_file_name`).
_BATCH_GLOB = "e*-b*.parquet"


# --- reading -------------------------------------------------------------------------------
def read_manifest(outdir):
    """The manifest ``OUTDIR/trials.json`` as a dict.

    Raises
    ------
    FileNotFoundError
        No manifest in ``outdir``.
    ValueError
        The manifest is not a JSON object.
    """
    path = Path(outdir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{outdir}: no {MANIFEST_NAME} (not the output directory "
            f"of `rtafast trials`, or the run has not started)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable manifest: {error}") from error
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: the manifest is not a JSON object")
    return manifest


def _column_array(column, kind):
    """One Arrow column as a NumPy array of its schema type (nulls: NaN, -1 or False)."""
    column = column.cast(kind)
    if pa.types.is_boolean(kind):
        column = column.fill_null(False)
    elif pa.types.is_integer(kind):
        column = column.fill_null(-1)
    return column.to_numpy(zero_copy_only=False)


def _read_batch(path):
    """The columns of :data:`~rtafast.trials.schema.COLUMNS` of one batch file."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path}: unreadable batch file: {error}") from error
    missing = [name for name in COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(f"{path}: batch file lacks column(s) {', '.join(missing)}")
    try:
        return {
            name: _column_array(table.column(name), kind) for name, (kind, _) in COLUMNS.items()
        }
    except (pa.ArrowException, ValueError) as error:
        raise ValueError(f"{path}: a column has the wrong type: {error}") from error


def load_trials(outdir):
    """Every trial of ``OUTDIR/batches/e*-b*.parquet``, one array per column.

    Only the names :func:`~rtafast.trials.schema.batch_file_name` gives are read: the
    temporary ``.tmp-*`` files of a batch being written are not.

    Parameters
    ----------
    outdir : str or Path
        The output directory of ``rtafast trials``.

    Returns
    -------
    columns : dict of str to ndarray
        The columns of :data:`~rtafast.trials.schema.COLUMNS`, the batches concatenated.
    files : list of Path
        The batch files read, sorted.

    Raises
    ------
    FileNotFoundError
        No batch file.
    ValueError
        A batch file is unreadable, lacks a column or has one of the wrong type (the
        message names the file).
    """
    files = sorted((Path(outdir) / BATCH_DIR).glob(_BATCH_GLOB))
    if not files:
        raise FileNotFoundError(f"{outdir}: no batch file {BATCH_DIR}/{_BATCH_GLOB}")
    parts = [_read_batch(path) for path in files]
    columns = {name: np.concatenate([part[name] for part in parts]) for name in COLUMNS}
    return columns, files


def _alert_threshold(manifest):
    """``alert.threshold`` (σ) of the manifest's config YAML, else 5."""
    try:
        config = yaml.safe_load(manifest.get("config") or "") or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{MANIFEST_NAME}: its config is not YAML: {error}") from error
    alert = config.get("alert") if isinstance(config, dict) else None
    value = alert.get("threshold") if isinstance(alert, dict) else None
    return DEFAULT_THRESHOLD if value is None else float(value)


def _check_listing(manifest, files, say):
    """Says which batch files the manifest does not list, and which it lists but lack."""
    listed = {Path(str(b.get("file", ""))).name for b in manifest.get("batches") or []}
    found = {path.name for path in files}
    if found - listed:
        say(f"note: {len(found - listed)} batch file(s) not in the manifest (read anyway)")
    if listed - found:
        say(f"note: {len(listed - found)} batch file(s) of the manifest are missing")


# --- sections of one exposure --------------------------------------------------------------
# Each section fills its keys of ``entry`` and returns ``{key: why}`` for what it skipped.
def _null_section(rows, context, entry, prefix):
    if not rows["ts"].size:
        return {"null_ts": "no background-only trials (injected_flux == 0)"}
    entry["null_ts"] = summary = st.null_ts_summary(
        rows["ts"], rows["sqrt_ts"], rows["norm"], rows["converged"]
    )
    if not summary["max_ts"] > 0:
        return {"null_ts_plot": "no trial with a positive TS"}
    finite = np.isfinite(rows["ts"]) & np.isfinite(rows["norm"])
    name = f"{prefix}-null-ts.png"
    title = f"{context['label']}: fixed-position TS"
    plots.null_ts_figure(rows["ts"][finite], rows["norm"][finite], context["out"] / name, title)
    entry["plots"].append(name)
    return {}


def _blind_section(rows, context, entry, prefix):
    if not context["blind"]:
        return {"blind_search": "the run has blind: false"}
    if not rows["ts"].size:
        return {"blind_search": "no background-only trials (injected_flux == 0)"}
    maxima = rows["blind_sqrt_ts"][np.isfinite(rows["blind_sqrt_ts"])]
    if not maxima.size:
        return {"blind_search": "no background-only trial has a finite blind_sqrt_ts"}
    entry["blind_search"] = summary = st.blind_summary(maxima, context["threshold"])
    name = f"{prefix}-blind.png"
    title = f"{context['label']}: blind search, highest significance per map"
    plots.blind_figure(maxima, summary["trials_factor"]["n_eff"], context["out"] / name, title)
    entry["plots"].append(name)
    return {}


def _source_section(rows, context, entry, prefix):
    if context["hypothesis"] != "source":
        why = f"hypothesis {context['hypothesis']!r}: no injected source"
        return {"efficiency": why, "containment": why}
    if not rows["ts"].size:
        why = "no source trials (injected_flux > 0)"
        return {"efficiency": why, "containment": why}
    blind = context["blind"] and bool(np.isfinite(rows["blind_sqrt_ts"]).any())
    entry["efficiency"] = efficiency = st.detection_efficiency(
        rows["injected_flux"],
        rows["sqrt_ts"],
        context["threshold"],
        rows["blind_sqrt_ts"] if blind else None,
    )
    name = f"{prefix}-efficiency.png"
    title = f"{context['label']}: detection efficiency"
    plots.efficiency_figure(efficiency, context["out"] / name, title)
    entry["plots"].append(name)
    if not blind:
        return {"containment": "no blind search (blind: false or no finite blind_sqrt_ts)"}
    entry["containment"] = st.containment(
        rows["blind_offset"],
        rows["blind_r68"],
        rows["blind_r95"],
        rows["blind_r997"],
        rows["sqrt_ts"],
    )
    if not entry["containment"]["n_with_candidate"]:
        return {"containment_table": "no source trial has a localised candidate"}
    return {}


def _rows(columns, mask):
    return {name: values[mask] for name, values in columns.items()}


def _exposure_report(columns, exposure, index, context, say):
    """The summary entry of one exposure (and its figures)."""
    here = columns["exposure_s"] == exposure
    flux = columns["injected_flux"]
    null = here & ((flux == 0) if context["hypothesis"] == "source" else True)
    source = here & (flux > 0)
    entry = {
        "exposure_s": float(exposure),
        "index": index,
        "n_trials": int(here.sum()),
        "n_expected": context["n"],
        "null_ts": None,
        "blind_search": None,
        "efficiency": None,
        "containment": None,
        "skipped": {},
        "plots": [],
    }
    context = context | {"label": f"exposure {exposure:g} s"}
    say(f"{context['label']}: {entry['n_trials']} trials")
    for section, mask in ((_null_section, null), (_blind_section, null), (_source_section, source)):
        skipped = section(_rows(columns, mask), context, entry, f"e{index:02d}")
        for key, why in skipped.items():
            say(f"  {key}: skipped ({why})")
        entry["skipped"] |= skipped
    return entry


def _exposure_index(exposures_s, exposure, fallback):
    for i, value in enumerate(exposures_s):
        if math.isclose(float(value), exposure, rel_tol=1e-9):
            return i
    return fallback


def throughput(batches):
    """Trials per core-second of the batches of a manifest.

    Parameters
    ----------
    batches : list of dict
        The manifest's ``batches`` entries (``n``, ``cpu_s``, ``wall_s``; missing: 0).

    Returns
    -------
    throughput : dict
        ``n_batches``, ``trials``, ``cpu_s`` and ``wall_s`` (sums, s),
        ``trials_per_core_s`` (trials / cpu_s) and ``trials_per_wall_s`` (trials / the
        summed wall time of the batches, which may have run in parallel); None when the
        time is 0.
    """
    trials = sum(int(b.get("n", 0) or 0) for b in batches)
    cpu = sum(float(b.get("cpu_s", 0.0) or 0.0) for b in batches)
    wall = sum(float(b.get("wall_s", 0.0) or 0.0) for b in batches)
    return {
        "n_batches": len(batches),
        "trials": trials,
        "cpu_s": cpu,
        "wall_s": wall,
        "trials_per_core_s": trials / cpu if cpu > 0 else None,
        "trials_per_wall_s": trials / wall if wall > 0 else None,
    }


def _throughput(manifest):
    batches = manifest.get("batches") or []
    exposures = list(manifest.get("exposures_s") or [])
    per = []
    for i, exposure in enumerate(exposures):
        these = [b for b in batches if b.get("exposure_index") == i]
        per.append({"exposure_s": float(exposure), **throughput(these)})
    return {"total": throughput(batches), "per_exposure": per}


# --- writing -------------------------------------------------------------------------------
def _json_ready(value):
    """``value`` with NumPy scalars as Python numbers and NaN / inf as None."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report(outdir, say=print):
    """Write the report of a trials run into ``OUTDIR/report/``.

    Parameters
    ----------
    outdir : str or Path
        The output directory of ``rtafast trials`` (manifest and batch files).
    say : callable
        Receives one line of progress or of a skipped section at a time.

    Returns
    -------
    summary : dict
        What ``summary.json`` holds: ``outdir``, ``hypothesis``, ``blind``,
        ``alert_threshold_sigma`` (σ), ``n_rows``, ``n_files``, ``exposures`` (per
        exposure ``exposure_s``, ``index``, ``n_trials``, ``n_expected``, ``null_ts``,
        ``blind_search``, ``efficiency``, ``containment`` — None when skipped —,
        ``skipped`` (key -> why: those sections, or ``null_ts_plot`` and
        ``containment_table`` when only the figure or table has nothing to show) and
        ``plots``), ``throughput`` (``total`` and ``per_exposure``) and ``files`` (what
        the report folder holds). NaN is None.

    Raises
    ------
    FileNotFoundError
        No manifest, or no batch file.
    ValueError
        An unreadable manifest or batch file, or a batch file lacking columns.
    """
    outdir = Path(outdir)
    manifest = read_manifest(outdir)
    columns, files = load_trials(outdir)
    _check_listing(manifest, files, say)
    out = outdir / REPORT_DIR
    out.mkdir(exist_ok=True)
    context = {
        "out": out,
        "hypothesis": str(manifest.get("hypothesis", "background")),
        "blind": bool(manifest.get("blind", False)),
        "threshold": _alert_threshold(manifest),
        "n": manifest.get("n"),
    }
    exposures_s = list(manifest.get("exposures_s") or [])
    found = np.unique(columns["exposure_s"][np.isfinite(columns["exposure_s"])])
    entries = [
        _exposure_report(
            columns,
            float(exposure),
            _exposure_index(exposures_s, float(exposure), len(exposures_s) + j),
            context,
            say,
        )
        for j, exposure in enumerate(found)
    ]
    summary = _json_ready(
        {
            "outdir": str(outdir),
            "hypothesis": context["hypothesis"],
            "blind": context["blind"],
            "alert_threshold_sigma": context["threshold"],
            "n_rows": int(columns["trial"].size),
            "n_files": len(files),
            "exposures": entries,
            "throughput": _throughput(manifest),
        }
    )
    summary["files"] = sorted(
        [*(p for e in entries for p in e["plots"]), "summary.json", "summary.md"]
    )
    (out / "summary.json").write_text(
        json.dumps(summary, indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    (out / "summary.md").write_text(plots.markdown(summary), encoding="utf-8")
    say(f"report written to {out}")
    return summary
