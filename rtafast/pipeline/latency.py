"""Latency profile of the alert pipeline: every stage of every window timed.

A :class:`LatencyProfile` records, for each analysed window, the wall time spent in each
pipeline stage (:data:`STAGES`), the window's total wall time and the time-to-alert of
each alert it raised, plus the one-off setup time of the run. It summarises them as
percentiles per stage, maps the stages onto RTA-SCI's timing names
(:data:`RTASCI_STAGES`) so figures compare with RTA-SCI's logs, and writes
``latency.json``, ``latency.csv`` and ``latency.png``.

Per-window records live in compact NumPy arrays grown by doubling (112 bytes per window,
plus 8 per numeric or 4 per text annotation and 16 per alert), so a replay of 10⁵
windows keeps memory flat. Entering and leaving a stage costs two
:func:`time.perf_counter` calls and a few list operations (about 0.6 µs on a 2-core
shared CPU).

Examples
--------
>>> profile = LatencyProfile(budget_s=20.0)
>>> with profile.stage_setup():
...     pass  # build estimators, caches
>>> with profile.window(0, meta={"runid": 23523}) as w:
...     with w.stage("read"):
...         pass
...     with w.stage("detect"):
...         pass
...     w.time_to_alert(0.012)
>>> summary = profile.summary()
>>> summary["stages"]["detect"]["n"]
1
"""

from __future__ import annotations

import csv as csv_module
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from .atomic import atomic_path, write_atomic

__all__ = [
    "STAGES",
    "RTASCI_STAGES",
    "STAGE_TO_RTASCI",
    "PERCENTILES",
    "LatencyProfile",
    "WindowTimer",
]

#: Pipeline stages timed in each window, in pipeline order.
STAGES = ("read", "select", "accumulate", "detect", "localise", "fit", "photometry", "write")

#: RTA-SCI's timing names and the rtafast records they sum. ``"setup"`` is the run's
#: one-off setup (:meth:`LatencyProfile.setup`), ``"total"`` the window's wall time
#: (stages plus untimed code between them). RTA-SCI has no stage for writing results:
#: ``write`` only counts in ``"total"``. RTA-SCI's ``Imports`` are not measured here.
RTASCI_STAGES: dict[str, tuple[str, ...]] = {
    "setup": ("setup",),
    "data reduction": ("read", "select", "accumulate"),
    "blind search": ("detect",),
    "statistics": ("photometry",),
    "modelling": ("localise",),
    "fitting": ("fit",),
    "total": ("total",),
}

#: The RTA-SCI name of each stage (``None``: no RTA-SCI counterpart).
STAGE_TO_RTASCI: dict[str, str | None] = {
    stage: next((name for name, parts in RTASCI_STAGES.items() if stage in parts), None)
    for stage in STAGES
}

#: Percentiles reported for every timing (numpy's default ``"linear"`` method).
PERCENTILES = (50, 95, 99)

_STAGE_SLOT = {name: slot for slot, name in enumerate(STAGES)}
_INITIAL_CAPACITY = 1024
_CSV_FLOAT_FORMAT = ".6g"
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
_NUMBER_TYPES = (bool, np.bool_, int, float, np.integer, np.floating)


class _GrowingArray:
    """A NumPy array appended to at its end, with capacity grown by doubling.

    Parameters
    ----------
    dtype : numpy dtype
        Element type.
    width : int or None
        Columns per row (``None``: a 1-D array).
    fill : scalar
        Value of rows not yet written (also of rows added when growing).
    """

    __slots__ = ("_data", "size", "_fill")

    def __init__(self, dtype, width=None, fill=0):
        shape = (_INITIAL_CAPACITY,) if width is None else (_INITIAL_CAPACITY, width)
        self._data = np.full(shape, fill, dtype=dtype)
        self._fill = fill
        self.size = 0

    def append(self, value) -> None:
        """Store ``value`` (a scalar or one row) at the end."""
        if self.size == len(self._data):
            self.reserve(2 * self.size)
        self._data[self.size] = value
        self.size += 1

    def put(self, row: int, value) -> None:
        """Store ``value`` at ``row``, growing by doubling; rows skipped keep the fill value."""
        if row >= len(self._data):
            self.reserve(max(row + 1, 2 * len(self._data)))
        self._data[row] = value
        self.size = max(self.size, row + 1)

    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` rows (at least); existing rows are kept."""
        if capacity <= len(self._data):
            return
        grown = np.full((capacity,) + self._data.shape[1:], self._fill, dtype=self._data.dtype)
        grown[: self.size] = self._data[: self.size]
        self._data = grown

    @property
    def values(self) -> np.ndarray:
        """The rows written so far (a view)."""
        return self._data[: self.size]

    @property
    def nbytes(self) -> int:
        """Bytes allocated (capacity, not size)."""
        return self._data.nbytes


class _MetaColumn:
    """One annotation column: numbers as float64 (NaN: missing), text as category codes."""

    __slots__ = ("numbers", "codes", "categories")

    def __init__(self):
        self.numbers = None
        self.codes = None
        self.categories: dict[str, int] = {}

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError when ``value`` cannot be stored in this column."""
        if value is None:
            return
        if isinstance(value, str):
            if self.numbers is not None:
                raise ValueError(f"latency meta {name!r}: a string after numbers, got {value!r}")
            return
        if isinstance(value, _NUMBER_TYPES):
            if self.codes is not None:
                raise ValueError(f"latency meta {name!r}: a number after strings, got {value!r}")
            return
        raise ValueError(
            f"latency meta {name!r}: expected a number or a string, got {type(value).__name__} "
            f"{value!r}"
        )

    def set(self, row: int, value: Any) -> None:
        """Store ``value`` (checked by :meth:`check`) for window ``row``; ``None``: missing."""
        if value is None:
            return
        if isinstance(value, str):
            if self.codes is None:
                self.codes = _GrowingArray(np.int32, fill=-1)
            self.codes.put(row, self.categories.setdefault(value, len(self.categories)))
        else:
            if self.numbers is None:
                self.numbers = _GrowingArray(np.float64, fill=np.nan)
            self.numbers.put(row, float(value))

    def cells(self, n_rows: int) -> list[str]:
        """The column as CSV cells for ``n_rows`` windows (empty: missing)."""
        if self.codes is not None:
            names = {code: text for text, code in self.categories.items()}
            codes = _padded(self.codes, n_rows, -1)
            return [names.get(int(code), "") for code in codes]
        return _float_cells(_padded(self.numbers, n_rows, np.nan))

    @property
    def nbytes(self) -> int:
        """Bytes allocated."""
        column = self.codes if self.codes is not None else self.numbers
        return 0 if column is None else column.nbytes


def _padded(column: _GrowingArray, n_rows: int, fill) -> np.ndarray:
    values = np.full(n_rows, fill, dtype=column.values.dtype)
    values[: column.size] = column.values
    return values


def _float_cells(values: np.ndarray) -> list[str]:
    return ["" if math.isnan(v) else format(v, _CSV_FLOAT_FORMAT) for v in values.tolist()]


class _StageTimer:
    """Context manager timing one stage inside the open window (reused across windows)."""

    __slots__ = ("_timer", "_slot")

    def __init__(self, timer: WindowTimer, slot: int):
        self._timer = timer
        self._slot = slot

    def __enter__(self):
        now = perf_counter()
        timer = self._timer
        active = timer._active
        if active:
            timer._elapsed[active[-1]] += now - timer._mark
        active.append(self._slot)
        timer._calls[self._slot] += 1
        timer._mark = now
        return self

    def __exit__(self, exc_type, exc, tb):
        now = perf_counter()
        timer = self._timer
        timer._elapsed[timer._active.pop()] += now - timer._mark
        timer._mark = now
        return False


class WindowTimer:
    """The open window of a :class:`LatencyProfile` (returned by :meth:`LatencyProfile.window`).

    Stage times are exclusive: while a stage is open inside another, only the inner one is
    charged, so the stages of a window partition its timed wall time. A stage entered several
    times in one window (one fit per candidate) adds up. The window's total is the wall
    time of its block plus the seconds charged with :meth:`add`.
    """

    __slots__ = (
        "_profile", "_timers", "_elapsed", "_calls", "_active", "_mark", "_start",
        "_index", "_meta", "_open", "_alerts", "_added",
    )

    def __init__(self, profile: LatencyProfile):
        self._profile = profile
        self._timers = {name: _StageTimer(self, slot) for name, slot in _STAGE_SLOT.items()}
        self._elapsed = [0.0] * len(STAGES)
        self._calls = [0] * len(STAGES)
        self._active: list[int] = []
        self._mark = 0.0
        self._start = 0.0
        self._index = 0
        self._meta: Mapping[str, Any] | None = None
        self._open = False
        self._alerts: list[float] = []
        self._added = 0.0

    def _arm(self, index: int, meta: Mapping[str, Any] | None) -> None:
        if self._open:
            raise RuntimeError(
                f"latency window {index}: window {self._index} is still open (windows do not nest)"
            )
        self._profile._check_meta(meta)
        self._index = int(index)
        self._meta = meta

    def __enter__(self) -> WindowTimer:
        self._elapsed[:] = [0.0] * len(STAGES)
        self._calls[:] = [0] * len(STAGES)
        self._active.clear()
        self._alerts.clear()
        self._added = 0.0
        self._open = True
        self._start = perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        now = perf_counter()
        while self._active:  # a stage entered by hand and never left: charge it up to now
            self._elapsed[self._active.pop()] += now - self._mark
            self._mark = now
        total = now - self._start + self._added
        self._open = False
        self._profile._record_window(
            self._index, total, self._elapsed, self._calls, self._alerts, self._meta
        )
        return False

    def stage(self, name: str) -> _StageTimer:
        """Time a stage: ``with window.stage("detect"): ...``.

        Parameters
        ----------
        name : str
            One of :data:`STAGES`.

        Raises
        ------
        ValueError
            ``name`` is not a stage.
        RuntimeError
            The window is closed.
        """
        if not self._open:
            raise RuntimeError(f"latency stage {name!r}: window {self._index} is not open")
        try:
            return self._timers[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"latency stage {name!r}: unknown stage (allowed: {', '.join(STAGES)})"
            ) from None

    def add(self, name: str, seconds: float) -> None:
        """Charge ``seconds`` measured elsewhere to a stage of this window.

        For work done before the window opened on its behalf (reading the bunch that
        several windows share). The seconds also count in the window's total.

        Parameters
        ----------
        name : str
            One of :data:`STAGES`.
        seconds : float
            Wall time (s), finite and >= 0.
        """
        timer = self.stage(name)
        value = _seconds(seconds, f"latency stage {name!r} of window {self._index}")
        self._elapsed[timer._slot] += value
        self._calls[timer._slot] += 1
        self._added += value

    def time_to_alert(self, seconds: float) -> None:
        """Record the time-to-alert of one alert of this window.

        Parameters
        ----------
        seconds : float
            From the last event of the window to the alert written (s), finite and >= 0.
            Call once per alert; every value is kept.
        """
        self._alerts.append(_seconds(seconds, f"latency time_to_alert of window {self._index}"))

    @property
    def index(self) -> int:
        """The window's index."""
        return self._index


class LatencyProfile:
    """Per-stage wall times of every window, time-to-alert and setup time of one run.

    Parameters
    ----------
    budget_s : float
        Latency budget (s): a window is over budget when its largest time-to-alert, or for
        a window without alerts its total wall time, exceeds it (CTA: 20 s).

    Notes
    -----
    Usage: ``with profile.window(index, meta) as w:`` around each window, ``with
    w.stage(name):`` around each stage and ``w.time_to_alert(seconds)`` for each alert.
    Windows are recorded in the order they close, even when indices repeat (for instance
    a cumulative and a sliding window of the same bunch: tell them apart with ``meta``).
    """

    def __init__(self, budget_s: float = 20.0):
        budget = _seconds(budget_s, "latency budget_s")
        if budget == 0:
            raise ValueError(f"latency budget_s: expected seconds > 0, got {budget_s!r}")
        self.budget_s = budget
        self._index = _GrowingArray(np.int64)
        self._total = _GrowingArray(np.float64)
        self._elapsed = _GrowingArray(np.float64, width=len(STAGES))
        self._calls = _GrowingArray(np.uint32, width=len(STAGES))
        self._alert_values = _GrowingArray(np.float64)
        self._alert_rows = _GrowingArray(np.int64)
        self._meta: dict[str, _MetaColumn] = {}
        self._setup: list[float] = []
        self._timer = WindowTimer(self)

    # --- recording -------------------------------------------------------------------------
    def window(self, index: int, meta: Mapping[str, Any] | None = None) -> WindowTimer:
        """Open window ``index`` for timing: ``with profile.window(index) as w: ...``.

        Parameters
        ----------
        index : int
            The window's index (written to the CSV).
        meta : mapping of str to number or str, optional
            Annotations kept as CSV columns (``runid``, ``kind``, ``n_events``...).
        """
        self._timer._arm(index, meta)
        return self._timer

    def setup(self, seconds: float) -> None:
        """Record one-off setup time (s); several calls add up."""
        self._setup.append(_seconds(seconds, "latency setup"))

    @contextmanager
    def stage_setup(self) -> Iterator[None]:
        """Time a block as one-off setup: ``with profile.stage_setup(): ...``."""
        start = perf_counter()
        try:
            yield
        finally:
            self._setup.append(perf_counter() - start)

    def _record_window(self, index, total, elapsed, calls, alerts, meta) -> None:
        row = self._total.size
        self._index.append(index)
        self._total.append(total)
        self._elapsed.append(elapsed)
        self._calls.append(calls)
        for value in alerts:
            self._alert_values.append(value)
            self._alert_rows.append(row)
        if meta:
            for name, value in meta.items():
                self._meta.setdefault(str(name), _MetaColumn()).set(row, value)

    def _check_meta(self, meta: Mapping[str, Any] | None) -> None:
        """Raise ValueError for annotations that cannot be stored (before the window runs)."""
        if meta is None:
            return
        if not isinstance(meta, Mapping):
            raise ValueError(f"latency meta: expected a mapping, got {type(meta).__name__}")
        for name, value in meta.items():
            column = self._meta.get(str(name))
            (column or _MetaColumn()).check(str(name), value)

    # --- arrays ----------------------------------------------------------------------------
    @property
    def n_windows(self) -> int:
        """Number of windows recorded."""
        return self._total.size

    @property
    def nbytes(self) -> int:
        """Bytes allocated by the per-window and per-alert records."""
        arrays = (
            self._index, self._total, self._elapsed, self._calls, self._alert_values,
            self._alert_rows,
        )
        return sum(a.nbytes for a in arrays) + sum(c.nbytes for c in self._meta.values())

    def stage_seconds(self, stage: str) -> np.ndarray:
        """Wall time (s) of ``stage`` in each window where it ran."""
        slot = _slot(stage)
        ran = self._calls.values[:, slot] > 0
        return self._elapsed.values[ran, slot]

    def window_seconds(self) -> np.ndarray:
        """Total wall time (s) of each window."""
        return self._total.values.copy()

    def time_to_alert_seconds(self) -> np.ndarray:
        """Every recorded time-to-alert (s), in the order recorded."""
        return self._alert_values.values.copy()

    def _window_latency(self) -> np.ndarray:
        """Per window: its largest time-to-alert, or its total wall time without alerts (s)."""
        latency = self._total.values.copy()
        if self._alert_values.size:
            largest = np.full(self.n_windows, -np.inf)
            np.maximum.at(largest, self._alert_rows.values, self._alert_values.values)
            has_alert = np.isfinite(largest)
            latency[has_alert] = largest[has_alert]
        return latency

    def _group_seconds(self, stages: tuple[str, ...]) -> np.ndarray:
        """Per window where any of ``stages`` ran, the sum of their wall times (s)."""
        slots = [_STAGE_SLOT[s] for s in stages]
        ran = (self._calls.values[:, slots] > 0).any(axis=1)
        return self._elapsed.values[ran][:, slots].sum(axis=1)

    # --- summary ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """Statistics of every timing, as JSON-ready numbers.

        Returns
        -------
        dict
            ``budget_s``; ``n_windows``; ``stages``: per stage ``n`` (windows where it
            ran), ``calls``, ``rtasci`` (its RTA-SCI name) and ``p50_ms``, ``p95_ms``,
            ``p99_ms``, ``max_ms``, ``mean_ms`` (``None`` when ``n`` is 0); ``total``
            (window wall time) and ``untimed`` (wall time outside stages), same
            statistics; ``setup``: ``n`` and ``total_ms``; ``time_to_alert``: ``n``,
            ``n_windows`` (windows with an alert) and the statistics; ``rtasci``: per
            RTA-SCI name its rtafast parts and statistics (``setup``: the one-off setup
            records); ``over_budget``: ``n`` and ``fraction`` of windows whose latency
            exceeds ``budget_s`` (see the class docstring).
        """
        stages = {}
        for stage in STAGES:
            slot = _STAGE_SLOT[stage]
            stages[stage] = {
                "rtasci": STAGE_TO_RTASCI[stage],
                "calls": int(self._calls.values[:, slot].sum()),
                **_stats_ms(self.stage_seconds(stage)),
            }
        untimed = self._total.values - self._elapsed.values.sum(axis=1)
        rtasci = {}
        for name, parts in RTASCI_STAGES.items():
            if parts == ("setup",):
                seconds = np.asarray(self._setup)
            elif parts == ("total",):
                seconds = self._total.values
            else:
                seconds = self._group_seconds(parts)
            rtasci[name] = {"parts": list(parts), **_stats_ms(seconds)}
        latency = self._window_latency()
        n_over = int(np.count_nonzero(latency > self.budget_s))
        return {
            "budget_s": self.budget_s,
            "n_windows": self.n_windows,
            "stages": stages,
            "total": _stats_ms(self._total.values),
            "untimed": _stats_ms(np.maximum(untimed, 0.0)),
            "setup": {"n": len(self._setup), "total_ms": 1e3 * float(sum(self._setup))},
            "time_to_alert": {
                "n_windows": int(np.unique(self._alert_rows.values).size),
                **_stats_ms(self._alert_values.values),
            },
            "rtasci": rtasci,
            "over_budget": {
                "n": n_over,
                "fraction": n_over / self.n_windows if self.n_windows else None,
            },
        }

    def table(self) -> str:
        """A plain-text table of the per-stage statistics (ms), for ``rtafast run --profile``."""
        summary = self.summary()
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
            f"times in ms; {over['n']} of {summary['n_windows']} windows over the "
            f"{self.budget_s:g} s budget"
        )
        return "\n".join(lines)

    # --- files -----------------------------------------------------------------------------
    def write(self, outdir: str | os.PathLike, csv: bool = True, plot: bool = True) -> list[Path]:
        """Write ``latency.json`` (the summary), ``latency.csv`` and ``latency.png`` atomically.

        Parameters
        ----------
        outdir : path
            Existing directory.
        csv : bool
            Write ``latency.csv``: one row per window, its index, annotations, each stage's
            wall time (ms, empty where the stage did not run), total and untimed (ms), the
            number of alerts and the largest time-to-alert (ms).
        plot : bool
            Write ``latency.png``: per-stage p50/p95/max bars on a log-ms axis and the
            time-to-alert distribution against the budget.

        Returns
        -------
        list of Path
            The files written.
        """
        outdir = Path(outdir)
        if not outdir.is_dir():
            raise ValueError(f"latency output directory {str(outdir)!r}: not a directory")
        summary = self.summary()
        written = [outdir / "latency.json"]
        write_atomic(written[0], json.dumps(_json_ready(summary), indent=2) + "\n")
        if csv:
            written.append(outdir / "latency.csv")
            write_atomic(written[-1], self._csv_text())
        if plot:
            written.append(outdir / "latency.png")
            with atomic_path(written[-1]) as tmp:
                self._figure(summary).savefig(tmp, format="png", dpi=100)
        return written

    def _csv_text(self) -> str:
        n = self.n_windows
        ms = 1e3
        columns: dict[str, list[str]] = {"window": [str(i) for i in self._index.values.tolist()]}
        for name, column in self._meta.items():
            columns[f"meta_{name}" if name in _CSV_COLUMNS else name] = column.cells(n)
        for stage in STAGES:
            slot = _STAGE_SLOT[stage]
            ran = self._calls.values[:, slot] > 0
            values = np.where(ran, self._elapsed.values[:, slot], np.nan)
            columns[f"{stage}_ms"] = _float_cells(ms * values)
        columns["total_ms"] = _float_cells(ms * self._total.values)
        untimed = self._total.values - self._elapsed.values.sum(axis=1)
        columns["untimed_ms"] = _float_cells(ms * np.maximum(untimed, 0.0))
        n_alerts = np.bincount(self._alert_rows.values, minlength=n)
        columns["n_alerts"] = [str(k) for k in n_alerts.tolist()]
        largest = np.where(n_alerts > 0, self._window_latency(), np.nan)
        columns["time_to_alert_max_ms"] = _float_cells(ms * largest)
        buffer = io.StringIO()
        writer = csv_module.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        return buffer.getvalue()

    def _figure(self, summary: dict):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(12, 5), layout="constrained")
        FigureCanvasAgg(figure)
        bars, alerts = figure.subplots(1, 2, width_ratios=(3, 2))
        _plot_stage_bars(bars, summary, self.budget_s)
        _plot_time_to_alert(alerts, self._alert_values.values, self.budget_s)
        figure.suptitle(f"rtafast latency: {summary['n_windows']} windows")
        return figure


# --- helpers -------------------------------------------------------------------------------
def _seconds(value, what: str) -> float:
    """``value`` as a float number of seconds, finite and >= 0, else ValueError naming ``what``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0.0):
        raise ValueError(f"{what}: expected a finite number of seconds >= 0, got {value!r}")
    return seconds


def _slot(stage: str) -> int:
    try:
        return _STAGE_SLOT[stage]
    except (KeyError, TypeError):
        raise ValueError(
            f"latency stage {stage!r}: unknown stage (allowed: {', '.join(STAGES)})"
        ) from None


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


def _json_ready(value):
    """NaN and infinities to ``None`` so the JSON is strict."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
