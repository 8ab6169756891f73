"""A pipeline run's set-up: what its first bunch fixes (:class:`RunSetup`) and its
window streams, one per configured window kind (:class:`WindowStream`)."""

from dataclasses import dataclass

from astropy.coordinates import SkyCoord
from astropy.time import Time
from gammapy.makers import SafeMaskMaker

from ..stream import BunchAccumulator
from ..timedomain.series import METHODS as TIME_METHODS
from ..timedomain.series import OnOffSeries
from .detect import DetectionEstimators
from .geometry import energy_axis_true, make_geom, map_center

__all__ = ["RunSetup", "WindowStream"]


@dataclass(eq=False)
class WindowStream:
    """One configured window kind (cumulative or sliding) and its accumulator (a new one
    for each observation with ``stream.per_observation``)."""

    kind: str
    geom: object
    config: object
    backend: object
    accumulator: object = None
    runid: object = None
    index: int = 0
    series: object = None

    def add(self, bunch):
        """Add a bunch; returns the current window."""
        if self.accumulator is None or (
            self.config.stream.per_observation and bunch.runid != self.runid
        ):
            self.accumulator = self._accumulator()
            self.series = self._series()
        self.runid = bunch.runid
        self.accumulator.add(bunch.events, bunch.observation, (bunch.start, bunch.stop))
        return self.accumulator.current_window()

    def _series(self):
        """The target's on/off counts bunch by bunch (time-aware methods, cumulative
        windows only), or None."""
        detection = self.config.detection
        if detection.method not in TIME_METHODS or self.kind != "cumulative":
            return None
        return OnOffSeries(
            detection.decay_indices,
            detection.cusum_ratio,
            backend=self.backend,
            onsets_s=[onset.to_value("s") for onset in detection.decay_onsets],
        )

    def _accumulator(self):
        config = self.config
        duration = config.stream.sliding_duration if self.kind == "sliding" else None
        offset_max = config.selection.offset_max
        safe = None
        if offset_max is not None:
            safe = SafeMaskMaker(methods=["offset-max"], offset_max=offset_max)
        return BunchAccumulator(
            self.geom,
            energy_axis_true=energy_axis_true(config),
            window=duration,
            array_backend=self.backend,
            safe_mask_maker=safe,
            name=self.kind,
        )


@dataclass(frozen=True)
class RunSetup:
    """What a run's first bunch fixes: the map centre and geometry, the streams, the
    detection estimators and the trigger time."""

    center: SkyCoord
    geom: object
    streams: tuple
    estimators: DetectionEstimators
    trigger: Time

    @classmethod
    def from_bunch(cls, bunch, config, backend):
        """The setup of a run whose first bunch is ``bunch``."""
        observation = bunch.observation
        center = map_center(config, observation.get_pointing_icrs(observation.tmid))
        geom = make_geom(config, center)
        streams = tuple(WindowStream(kind, geom, config, backend) for kind in config.stream.windows)
        trigger = config.stream.trigger_time
        trigger = trigger if trigger is not None else observation.tstart
        return cls(center, geom, streams, DetectionEstimators.from_config(config), trigger)
