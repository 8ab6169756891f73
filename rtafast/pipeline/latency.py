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

The stage vocabulary lives in :mod:`rtafast.pipeline.latency_stages`, the record arrays in
:mod:`rtafast.pipeline.latency_arrays`, and the statistics, table, CSV and figure in
:mod:`rtafast.pipeline.latency_report`; the public names are re-exported here.

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

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from .atomic import atomic_path, write_atomic
from .latency_arrays import _GrowingArray, _MetaColumn
from .latency_report import _csv_text, _format_table, _json_ready, _latency_figure, _stats_ms
from .latency_stages import (
    _STAGE_SLOT,
    PERCENTILES,
    RTASCI_STAGES,
    STAGE_TO_RTASCI,
    STAGES,
    _seconds,
    _slot,
)

__all__ = [
    "STAGES",
    "RTASCI_STAGES",
    "STAGE_TO_RTASCI",
    "PERCENTILES",
    "LatencyProfile",
    "WindowTimer",
]


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
        return _format_table(self.summary(), self.budget_s)

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
        return _csv_text(
            self._index.values, self._meta, self._elapsed.values, self._calls.values,
            self._total.values, self._alert_rows.values, self._window_latency(),
        )

    def _figure(self, summary: dict):
        return _latency_figure(summary, self._alert_values.values, self.budget_s)
