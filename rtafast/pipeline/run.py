"""The alert pipeline's loop: bunches in, windows, candidates, results and alerts out.

:class:`AlertPipeline` takes a validated :class:`~rtafast.pipeline.config.PipelineConfig`
and an output directory. For every bunch of the input (replayed files in time order,
or files landing in a watched directory) it adds the bunch to each configured window
(cumulative and/or sliding, :class:`rtafast.stream.BunchAccumulator`), and for each
window: detects and localises candidates (:mod:`rtafast.pipeline.detect`), fits
their flux and measures their on/off photometry (:mod:`rtafast.pipeline.measure`),
measures the target too when the config names its position, writes one results row
per window and source and, for a source above the alert threshold, an alert
(initial or update, :mod:`rtafast.pipeline.alerts`). A blind candidate within
``detection.min_separation`` of the configured target is the target: its row is
written with its localisation and detection significance only (no fit, no
photometry: those are the target's row, at the catalogue position, which raises the
alerts). With
``stream.per_observation`` (the default) the windows start again with each
observation, as RTA-SCI analyses each run; pixels beyond ``selection.offset_max`` of
the pointing are outside the safe mask. Every stage of every window is
timed (:mod:`rtafast.pipeline.latency`).

Time to alert: the wall time from the moment a bunch is handed to the pipeline (the
data of the window's last events are available) to its alert files written; the
window's latency is the same span for every window, alert or not.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from astropy.coordinates import angular_separation

from rtafast_kernels import resolve_backend

from ..cache.irf import default_irf_cache
from ..cache.psf import default_cache as default_psf_cache
from ..timedomain.series import METHODS as TIME_METHODS
from . import inputs as input_module
from .alerts import AlertBook
from .detect import detect
from .latency import LatencyProfile
from .measure import MeasureCache, fit_flux, photometry
from .memory import release_free_memory
from .outputs import OutputDir
from .run_setup import RunSetup

__all__ = ["AlertPipeline", "RunSummary", "run_pipeline", "window_bounds"]

log = logging.getLogger(__name__)
_BINNING_LOGGER = "rtafast.events.binning"
#: Bunches between two full garbage collections. A window leaves reference cycles
#: holding arrays (gammapy datasets and models); Python's oldest generation is
#: collected rarely once a run holds many long-lived objects, and over a replay of 15
#: runs as 1 s bunches the resident memory grew from ~520 to ~800 MiB in 3 runs
#: without it (flat with it).
_COLLECT_EVERY = 500


class _OutsideMapCounter(logging.Filter):
    """Counts (instead of printing) the binning's warning that none of a bunch's events
    falls inside the map: a short bunch whose few events all lie outside a small map is
    normal in a stream; the run reports how many bunches that was."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def filter(self, record):
        if record.msg.startswith("none of the"):
            self.count += 1
            return False
        return True


@dataclass
class RunSummary:
    """What a run did: counts, skips, alerts and the latency summary."""

    n_bunches: int = 0
    n_windows: int = 0
    n_rows: int = 0
    n_candidates: int = 0
    n_bunches_outside_map: int = 0
    alerts: list = field(default_factory=list)
    alert_counts: dict = field(default_factory=dict)
    input_stats: object = None
    latency: dict = field(default_factory=dict)
    backend: str = ""
    wall_s: float = 0.0

    def as_dict(self):
        """JSON-ready summary (``run.json``)."""
        stats = self.input_stats
        return {
            "n_bunches": self.n_bunches,
            "n_windows": self.n_windows,
            "n_rows": self.n_rows,
            "n_candidates": self.n_candidates,
            "n_bunches_outside_map": self.n_bunches_outside_map,
            "n_alerts": len(self.alerts),
            "alert_ids": [alert.alert_id for alert in self.alerts],
            "alerts": self.alert_counts,
            "input": stats.as_dict() if hasattr(stats, "as_dict") else str(stats),
            "backend": self.backend,
            "wall_s": self.wall_s,
        }


class AlertPipeline:
    """Run the alert pipeline of a config into an output directory.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
    outdir : str or `~pathlib.Path`
    progress : bool
        Show a progress bar over the bunches (tqdm) on stderr.
    say : callable
        Where one-line messages go (default: print).
    """

    def __init__(self, config, outdir, progress=False, say=print, voevent_role="observation"):
        self.config = config
        # "auto" defers to $RTAFAST_BACKEND, as every rtafast entry point does
        self.backend = resolve_backend(None if config.backend == "auto" else config.backend)
        self.outputs = OutputDir(
            outdir,
            formats=config.alert.formats,
            maps=config.output.maps,
            voevent_options={"role": voevent_role},
            meta={"target": config.target.name, "backend": self.backend.name},
        )
        self.cache = MeasureCache()
        self.latency = LatencyProfile(budget_s=config.output.latency_budget.to_value("s"))
        self.alerts = AlertBook(config)
        self.progress = progress
        self.say = say
        self._prepared = False
        self._runid = None
        self._fixed = None

    # -- setup ---------------------------------------------------------------------------
    def prepare(self):
        """Check the output directory, create it and say what the run will do there.

        :meth:`run` calls it (and says its lines) once the input's first bunch is read, so
        that bad input leaves no output directory behind; call it earlier to check the
        directory first.

        Returns
        -------
        lines : list of str
        """
        self._prepared = True
        return self.outputs.prepare()

    @property
    def trigger(self):
        """`~astropy.time.Time` or None: the trigger time (window times count from it),
        fixed by the first bunch."""
        return None if self._fixed is None else self._fixed.trigger

    def _setup(self, first_bunch):
        """Geometry, accumulators and estimators, from the first bunch's observation."""
        start = time.perf_counter()
        self._fixed = RunSetup.from_bunch(first_bunch, self.config, self.backend)
        self.outputs.meta["trigger_time"] = self._fixed.trigger.isot
        self.latency.setup(time.perf_counter() - start)

    # -- the loop ------------------------------------------------------------------------
    def run(self, bunches=None, stats=None):
        """Process every bunch; returns a :class:`RunSummary`.

        Parameters
        ----------
        bunches : iterable of `~rtafast.pipeline.inputs.Bunch`, optional
            Default: the config's input (replay, or the watched directory).
        stats : `~rtafast.pipeline.inputs.InputStats`, optional
            Filled by the input while it reads.
        """
        wall = time.perf_counter()
        stats = stats if stats is not None else input_module.InputStats()
        if bunches is None:
            source = self.config.input.watch and input_module.watch_bunches
            bunches = (source or input_module.iter_bunches)(self.config, stats)
        summary = RunSummary(input_stats=stats, backend=self.backend.name)
        counter = _OutsideMapCounter()
        logging.getLogger(_BINNING_LOGGER).addFilter(counter)
        try:
            self._loop(self._first_then_rest(bunches), summary)
        finally:
            logging.getLogger(_BINNING_LOGGER).removeFilter(counter)
        summary.n_bunches_outside_map = counter.count
        summary.alerts = list(self.alerts.emitted)
        summary.alert_counts = self.alerts.summary()
        summary.latency = self.latency.summary()
        summary.wall_s = time.perf_counter() - wall
        self.latency.write(self.outputs.path)
        self.outputs.finish(summary.as_dict())
        return summary

    def _first_then_rest(self, bunches):
        """The bunches, the output directory prepared once the first one is read (the
        input opens and checks every file before it yields one)."""
        iterator = iter(bunches)
        first = next(iterator, None)
        if not self._prepared:
            for line in self.prepare():
                self.say(line)
        if first is None:
            return
        yield first
        yield from iterator

    def _loop(self, iterator, summary):
        """Hand every bunch to every stream (the progress bar starts with the first)."""
        bar = None
        while True:
            arrived = time.perf_counter()
            try:
                bunch = next(iterator)
            except StopIteration:
                break
            read_s = time.perf_counter() - arrived
            if self._fixed is None:
                bar = self._progress_bar()
            self.process(bunch, summary, arrived, read_s)
            if summary.n_bunches % _COLLECT_EVERY == 0:
                release_free_memory()  # between bunches, outside every window's timing
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()

    def process(self, bunch, summary, arrived=None, read_s=0.0):
        """Analyse one bunch: every configured window after it (what :meth:`run` does
        for each bunch; the benchmark calls it bunch by bunch).

        Parameters
        ----------
        bunch : `~rtafast.pipeline.inputs.Bunch`
        summary : RunSummary
            Counts updated.
        arrived : float, optional
            `time.perf_counter` when the bunch was handed over (default: now).
        read_s : float
            Time spent reading it, s (the ``read`` stage).
        """
        arrived = time.perf_counter() if arrived is None else arrived
        if self._fixed is None:
            self._setup(bunch)
        elif bunch.runid != self._runid and self.config.stream.per_observation:
            self._forget_observations()
        self._runid = bunch.runid
        summary.n_bunches += 1
        for stream in self._fixed.streams:
            self._window(stream, bunch, arrived, read_s, summary)

    def _forget_observations(self):
        """A new observation and windows per observation: nothing of the previous
        pointings is used again, so the caches keyed on them are emptied (IRF maps, PSF
        kernels, TS inputs, templates, regions): memory stays flat over a long replay
        (a later run at the same pointing makes its maps again, ~0.3 s once per run)."""
        default_irf_cache.clear()
        default_psf_cache.clear()
        self.cache.clear()
        estimators = self._fixed.estimators
        for estimator in (estimators.estimator, estimators.localiser):
            cache = getattr(estimator, "cache", None)
            if cache is not None:
                cache.clear()
        release_free_memory()

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(unit="bunch", desc="rtafast run", leave=False)

    def _window(self, stream, bunch, arrived, read_s, summary):
        """Add the bunch to one stream and analyse its window."""
        index = summary.n_windows
        summary.n_windows += 1
        with self.latency.window(index, meta={"kind": stream.kind}) as timer:
            timer.add("read", read_s)
            with timer.stage("accumulate"):
                window = stream.add(bunch)
            context = self._context(stream, bunch, window)
            detection = detect(window, self.config, self._fixed.estimators, stage=timer.stage)
            sources = self._sources(detection)
            summary.n_candidates += len(detection.candidates)
            for number, source in sources:
                # off regions avoid the other sources (a blind find of the target is the
                # target: excluding it would change the target's regions every window)
                others = [
                    (ra, dec)
                    for n, (ra, dec, found) in sources
                    if n != number and not (found is not None and self._is_target(ra, dec))
                ]
                row, alert = self._measure(window, number, source, others, context, timer)
                if alert is not None:
                    row["alert_id"] = alert.alert_id
                    alert.arrived = arrived
                self.outputs.add_result(row)
                summary.n_rows += 1
                if alert is not None:
                    with timer.stage("write"):
                        written = self.outputs.add_alert(alert)
                    timer.time_to_alert(written - arrived)
            if self.config.output.maps:
                with timer.stage("write"):
                    self.outputs.write_map(
                        f"{stream.kind}_{stream.index:05d}", detection.significance_map
                    )
            with timer.stage("write"):
                self.outputs.flush()
            stream.index += 1

    def _context(self, stream, bunch, window):
        start, stop = window_bounds(window)
        return {
            "runid": bunch.runid,
            "kind": stream.kind,
            "window": stream.index,
            "window_start": start,
            "window_stop": stop,
            "texp": window.livetime,
            "series": stream.series,
        }

    def _sources(self, detection):
        """The target (when the config gives its position) and the blind candidates."""
        sources = []
        target = self.config.target
        if target.ra is not None and target.dec is not None:
            sources.append((0, (target.ra, target.dec, None)))
        for number, candidate in enumerate(detection.candidates, start=1):
            sources.append((number, (candidate.ra, candidate.dec, candidate)))
        return sources

    def _is_target(self, ra, dec):
        """Whether a blind candidate is the configured target (within
        ``detection.min_separation``): it is measured and written, the target's row
        alerts for both."""
        target = self.config.target
        if target.ra is None or target.dec is None:
            return False
        separation = angular_separation(
            *np.radians([ra, dec]), *np.radians([target.ra, target.dec])
        )
        return np.degrees(separation) < self.config.detection.min_separation.to_value("deg")

    def _measure(self, window, number, source, others, context, timer):
        ra, dec, candidate = source
        if candidate is not None and self._is_target(ra, dec):
            # the target, found blind: its localisation is written, its measurements are
            # the target's row (made at the catalogue position)
            return self._row(number, ra, dec, candidate, None, None, context), None
        with timer.stage("fit"):
            flux = fit_flux(window, ra, dec, self.config, cache=self.cache)
        with timer.stage("photometry"):
            onoff = photometry(window, ra, dec, self.config, cache=self.cache, exclude=others)
        row = self._row(number, ra, dec, candidate, flux, onoff, context)
        method = {}
        if number == 0 and context["series"] is not None:
            row.update(self._time_statistics(context["series"], onoff, row, timer))
            chosen = self.config.detection.method
            method = {"method": chosen, "statistic": row[chosen]}
        alert = None
        if method or flux.sqrt_ts >= self.config.alert.threshold:
            alert = self.alerts.consider(self._alert_fields(row), **method)
        return row, alert

    def _time_statistics(self, series, onoff, row, timer):
        """Add the window to the target's series; its time statistics, each timed."""
        with timer.stage("photometry"):
            start = series.last_stop if len(series) else row["window_start"]
            series.add_window(onoff.oncounts, onoff.offcounts, row["texp"], onoff.alpha,
                              start, row["window_stop"])
        values = {}
        for method in TIME_METHODS:
            with timer.stage(method):
                values[method] = getattr(series.statistics((method,)), method)
        return values

    def _row(self, number, ra, dec, candidate, flux, onoff, context):
        trigger = self._fixed.trigger
        row = {
            "runid": context["runid"],
            "window_kind": context["kind"],
            "window": context["window"],
            "window_start": (context["window_start"] - trigger).to_value("s"),
            "window_stop": (context["window_stop"] - trigger).to_value("s"),
            "texp": context["texp"],
            "candidate": number,
            "ra": ra,
            "dec": dec,
            "r68": candidate.r68 if candidate is not None else 0.0,
            "r95": candidate.r95 if candidate is not None else 0.0,
            "detection_sqrt_ts": candidate.sqrt_ts if candidate is not None else float("nan"),
            "delay": (context["window_stop"] - trigger).to_value("s"),
            "backend": self.backend.name,
        }
        if flux is not None:
            row.update(sqrt_ts=flux.sqrt_ts, ts=flux.ts, flux=flux.flux)
            row.update(flux_err=flux.flux_err, flux_ul=flux.flux_ul)
        if onoff is not None:
            row.update(oncounts=onoff.oncounts, offcounts=onoff.offcounts, alpha=onoff.alpha)
            row.update(excess=onoff.excess, sigma=onoff.sigma, offset=onoff.offset)
        return row

    def _alert_fields(self, row):
        return dict(row, target_name=self.config.target.name, trigger_time=self._fixed.trigger)


def window_bounds(window):
    """(start, stop) of a stream window as `~astropy.time.Time`: the first bunch's start
    and the last bunch's stop over its observations."""
    import astropy.units as u

    starts = [part.reference + part.intervals[0][0] * u.s for part in window.parts]
    stops = [part.reference + part.intervals[-1][1] * u.s for part in window.parts]
    return min(starts), max(stops)


def run_pipeline(config, outdir, progress=False, say=print):
    """Run the pipeline of ``config`` into ``outdir``; returns its :class:`RunSummary`."""
    return AlertPipeline(config, outdir, progress=progress, say=say).run()

