"""Reports of the latency profile: statistics, the text table, ``latency.csv`` and the figure.

Turns the records of a :class:`~rtafast.pipeline.latency.LatencyProfile` into what it
shows and writes: percentiles in ms (:func:`_stats_ms`), the plain-text table of
``rtafast run --profile`` (:func:`_format_table`), strict-JSON values (:func:`_json_ready`),
the per-window CSV text (:func:`_csv_text`) and the per-stage and time-to-alert figure of
``latency.png`` (:func:`_latency_figure`).
"""

from __future__ import annotations

import csv as csv_module
import io
import math
from typing import Any

import numpy as np

from .latency_arrays import _float_cells, _MetaColumn
from .latency_stages import _STAGE_SLOT, PERCENTILES, STAGES

#: Private helpers of :mod:`rtafast.pipeline.latency`; nothing public.
__all__: list[str] = []

#: Columns of ``latency.csv`` besides the annotations (an annotation of the same name
#: is written as ``meta_<name>``).
_CSV_COLUMNS = (
    "window",
    *(f"{stage}_ms" for stage in STAGES),
    "total_ms",
    "untimed_ms",
    "n_alerts",
    "time_to_alert_max_ms",
)


# --- statistics and text -------------------------------------------------------------------
def _stats_ms(seconds: np.ndarray) -> dict:
    """``n``, p50/p95/p99/max/mean in ms of ``seconds`` (``None`` for an empty array)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    stats: dict[str, Any] = {"n": int(seconds.size)}
    keys = [f"p{p}_ms" for p in PERCENTILES] + ["max_ms", "mean_ms"]
    if seconds.size == 0:
        return stats | dict.fromkeys(keys)
    values = [*np.percentile(seconds, PERCENTILES), seconds.max(), seconds.mean()]
    return stats | {key: 1e3 * float(v) for key, v in zip(keys, values, strict=True)}


def _stat_cells(stats: dict) -> list[str]:
    cells = [str(stats["n"])]
    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
        cells.append("-" if stats[key] is None else f"{stats[key]:.3g}")
    return cells


def _format_row(cells, widths) -> str:
    left = 2  # stage and RTA-SCI name left-aligned, numbers right-aligned
    parts = [
        str(c).ljust(w) if i < left else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(parts).rstrip()


def _format_table(summary: dict, budget_s: float) -> str:
    """A plain-text table (ms) of ``summary`` (:meth:`LatencyProfile.summary`)."""
    header = ("stage", "RTA-SCI", "n", "p50", "p95", "p99", "max")
    rows = [
        (stage, stats["rtasci"] or "-", *_stat_cells(stats))
        for stage, stats in summary["stages"].items()
    ]
    rows.append(("untimed", "-", *_stat_cells(summary["untimed"])))
    rows.append(("window total", "total", *_stat_cells(summary["total"])))
    rows.append(("time to alert", "-", *_stat_cells(summary["time_to_alert"])))
    setup = summary["setup"]
    setup_ms = f"{setup['total_ms']:.3g}" if setup["n"] else "-"
    rows.append(("setup (one-off)", "setup", str(setup["n"]), setup_ms, "", "", ""))
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = [_format_row(header, widths), _format_row(["-" * w for w in widths], widths)]
    lines += [_format_row(row, widths) for row in rows]
    over = summary["over_budget"]
    lines.append(
        f"times in ms; {over['n']} of {summary['n_windows']} windows over the {budget_s:g} s budget"
    )
    return "\n".join(lines)


def _json_ready(value):
    """NaN and infinities to ``None`` so the JSON is strict."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- latency.csv ---------------------------------------------------------------------------
def _csv_text(
    index: np.ndarray,
    meta: dict[str, _MetaColumn],
    elapsed: np.ndarray,
    calls: np.ndarray,
    total: np.ndarray,
    alert_rows: np.ndarray,
    window_latency: np.ndarray,
) -> str:
    """``latency.csv``: one row per window.

    Parameters
    ----------
    index : numpy.ndarray
        Window indices, one per window.
    meta : dict of str to _MetaColumn
        Annotation columns.
    elapsed, calls : numpy.ndarray
        Per window and stage, wall time (s) and number of entries.
    total : numpy.ndarray
        Wall time (s) of each window.
    alert_rows : numpy.ndarray
        The window (row) of each recorded alert.
    window_latency : numpy.ndarray
        Per window, its largest time-to-alert (s) where it has alerts.
    """
    n = len(total)
    ms = 1e3
    columns: dict[str, list[str]] = {"window": [str(i) for i in index.tolist()]}
    for name, column in meta.items():
        columns[f"meta_{name}" if name in _CSV_COLUMNS else name] = column.cells(n)
    for stage in STAGES:
        slot = _STAGE_SLOT[stage]
        values = np.where(calls[:, slot] > 0, elapsed[:, slot], np.nan)
        columns[f"{stage}_ms"] = _float_cells(ms * values)
    columns["total_ms"] = _float_cells(ms * total)
    untimed = total - elapsed.sum(axis=1)
    columns["untimed_ms"] = _float_cells(ms * np.maximum(untimed, 0.0))
    n_alerts = np.bincount(alert_rows, minlength=n)
    columns["n_alerts"] = [str(k) for k in n_alerts.tolist()]
    largest = np.where(n_alerts > 0, window_latency, np.nan)
    columns["time_to_alert_max_ms"] = _float_cells(ms * largest)
    buffer = io.StringIO()
    writer = csv_module.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return buffer.getvalue()


# --- latency.png ---------------------------------------------------------------------------
def _latency_figure(summary: dict, alert_seconds: np.ndarray, budget_s: float):
    """The matplotlib figure of ``latency.png``: stage bars and time-to-alert histogram."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 5), layout="constrained")
    FigureCanvasAgg(figure)
    bars, alerts = figure.subplots(1, 2, width_ratios=(3, 2))
    _plot_stage_bars(bars, summary, budget_s)
    _plot_time_to_alert(alerts, alert_seconds, budget_s)
    figure.suptitle(f"rtafast latency: {summary['n_windows']} windows")
    return figure


def _plot_stage_bars(axes, summary: dict, budget_s: float) -> None:
    """Horizontal p50/p95/max bars per stage (and window total) on a log-ms axis."""
    entries = [(name, stats) for name, stats in summary["stages"].items() if stats["n"]]
    entries.append(("window total", summary["total"]))
    labels = [
        f"{name} ({summary['stages'][name]['rtasci'] or 'no RTA-SCI stage'})"
        if name in STAGES
        else name
        for name, _ in entries
    ]
    y = np.arange(len(entries))
    height = 0.27
    for offset, key, label in ((-1, "p50_ms", "p50"), (0, "p95_ms", "p95"), (1, "max_ms", "max")):
        widths = [np.nan if s[key] is None else s[key] for _, s in entries]
        axes.barh(y + offset * height, widths, height, label=label)
    axes.axvline(1e3 * budget_s, color="red", linestyle="--", label=f"budget {budget_s:g} s")
    axes.set_xscale("log")
    axes.set_yticks(y, labels)
    axes.invert_yaxis()
    axes.set_xlabel("wall time per window (ms)")
    axes.set_title("stages (RTA-SCI name)")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(axis="x", which="major", alpha=0.3)


def _plot_time_to_alert(axes, seconds: np.ndarray, budget_s: float) -> None:
    """Histogram of time-to-alert (log-s axis) with the budget line."""
    axes.axvline(budget_s, color="red", linestyle="--", label=f"budget {budget_s:g} s")
    if seconds.size:
        low = max(float(seconds.min()), 1e-6)
        high = max(float(seconds.max()), budget_s) * 1.5
        bins = np.geomspace(low / 1.5, high, 40)
        axes.hist(np.maximum(seconds, low), bins=bins, label=f"{seconds.size} alerts")
    else:
        axes.text(0.5, 0.5, "no alerts", transform=axes.transAxes, ha="center", va="center")
        axes.set_xlim(budget_s / 1e4, budget_s * 10)
    axes.set_xscale("log")
    axes.set_xlabel("time to alert (s)")
    axes.set_ylabel("alerts")
    axes.set_title("time to alert\n(last event of the window to the alert written)", fontsize=10)
    axes.legend(fontsize=8)
