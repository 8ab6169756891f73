"""The sections of the pipeline configuration, as pydantic models.

One model per YAML section (``input``, ``target``, ``selection``, ``geometry``, ``stream``,
``detection``, ``fit``, ``photometry``, ``alert``, ``output``) and :class:`PipelineConfig`, the
whole file. Unknown keys are refused; each field carries its default and the description that
the documented template shows; cross-field checks raise ``_KeyProblem`` naming the key.
Re-exported by :mod:`rtafast.pipeline.config`.
"""

from __future__ import annotations

from typing import Literal

import astropy.units as u
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config_types import (
    Angle,
    ConfigError,
    Duration,
    Energy,
    NonNegativeDuration,
    OptionalAngle,
    OptionalRelativeTime,
    OptionalTime,
    _as_list,
    _KeyProblem,
    _ordered,
    _quantity_to_str,
    _unique,
    _unique_list_validators,
)

__all__ = [
    "AlertConfig",
    "DetectionConfig",
    "ExclusionRegion",
    "FitConfig",
    "GeometryConfig",
    "InputConfig",
    "OutputConfig",
    "PhotometryConfig",
    "PipelineConfig",
    "SelectionConfig",
    "StreamConfig",
    "TargetConfig",
    "TrialsConfig",
]


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        validate_default=True,
        validate_assignment=True,
        allow_inf_nan=False,
    )


class InputConfig(_Section):
    """Where the events come from: event files, a DataStore, or a directory to watch."""

    events: list[str] = Field(
        [],
        description="DL3 event files (EVENTS with the IRF HDUs in the same file, or irf_file); "
        "replayed in time order",
    )
    datastore: str | None = Field(
        None, description="a DataStore directory (with hdu-index and obs-index files)"
    )
    obs_ids: list[int] = Field(
        [], description="with datastore: the runs to use (empty: all whose files exist)"
    )
    watch: str | None = Field(
        None, description="a directory to watch for new event files (real-time mode)"
    )
    watch_pattern: str = Field("*.fits*", description="with watch: file names to pick up (glob)")
    watch_idle_timeout: Duration = Field(
        "60 s", description="with watch: stop after this long without a new file (time)"
    )
    irf_file: str | None = Field(
        None, description="a caldb IRF file replacing the IRFs of the event files"
    )

    _as_lists = field_validator("events", "obs_ids", mode="before")(_as_list)

    @model_validator(mode="after")
    def _one_source(self):
        given = self._sources_given()
        if len(given) > 1:
            raise _KeyProblem(
                given[1], f"give only one of events, datastore, watch (got {', '.join(given)})"
            )
        if self.obs_ids and self.datastore is None:
            raise _KeyProblem("obs_ids", "only used with datastore (no datastore given)")
        _unique(self.obs_ids, "obs_ids")
        return self

    def _sources_given(self):
        return [
            name
            for name, value in (
                ("events", self.events),
                ("datastore", self.datastore),
                ("watch", self.watch),
            )
            if value
        ]

    @property
    def source(self):
        """Which input is given: ``"events"``, ``"datastore"`` or ``"watch"``.

        Raises
        ------
        ConfigError
            None of them is given (the defaults give none: the demo brings its own events).
        """
        given = self._sources_given()
        if not given:
            raise ConfigError(
                "give one of input.events, input.datastore, input.watch (none given)",
                key="input",
            )
        return given[0]


class TargetConfig(_Section):
    """The target: the centre of the maps."""

    name: str = Field("target", description="name in the alerts")
    ra: float | None = Field(
        None, description="right ascension (deg, ICRS); null: the pointing of the first run"
    )
    dec: float | None = Field(
        None, ge=-90, le=90, description="declination (deg, ICRS); null with ra"
    )

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.ra is None) != (self.dec is None):
            missing = "ra" if self.ra is None else "dec"
            raise _KeyProblem(missing, "give both ra and dec, or neither (the pointing)")
        return self


class SelectionConfig(_Section):
    """Which events are analysed."""

    energy_min: Energy = Field("1 TeV", description="lowest reconstructed energy (energy)")
    energy_max: Energy = Field("10 TeV", description="highest reconstructed energy (energy)")
    roi_radius: OptionalAngle = Field(
        None, description="drop events farther than this from the map centre (angle); null: none"
    )
    offset_max: OptionalAngle = Field(
        "2.5 deg",
        description="safe mask: map pixels farther than this from the pointing are left out "
        "of detection, fit and photometry (gammapy's SafeMaskMaker offset-max; the IRFs' "
        "background is not trusted beyond it) (angle); null: the whole map",
    )
    time_start: OptionalRelativeTime = Field(
        None, description="first event time, after the trigger (time); null: from the start"
    )
    time_stop: OptionalRelativeTime = Field(
        None, description="last event time, after the trigger (time); null: to the end"
    )

    @model_validator(mode="after")
    def _ranges(self):
        _ordered(self, "energy_min", "energy_max")
        _ordered(self, "time_start", "time_stop")
        return self


class GeometryConfig(_Section):
    """The map geometry: a square sky map around the target, log energy bins."""

    binsz: Angle = Field("0.02 deg", description="pixel size (angle)")
    width: Angle = Field("5 deg", description="map width and height (angle), a multiple of binsz")
    projection: Literal["CAR", "TAN"] = Field("CAR", description="WCS projection")
    frame: Literal["icrs", "galactic"] = Field("icrs", description="sky frame of the maps")
    energy_nbins: int = Field(
        10, ge=1, description="reconstructed-energy bins, log-spaced over the selection's range"
    )
    energy_true_min: Energy = Field("0.5 TeV", description="lowest true energy of the IRF maps")
    energy_true_max: Energy = Field("50 TeV", description="highest true energy of the IRF maps")
    energy_true_nbins: int = Field(20, ge=1, description="true-energy bins (in total), log-spaced")

    @model_validator(mode="after")
    def _consistent(self):
        _ordered(self, "energy_true_min", "energy_true_max")
        pixels = (self.width / self.binsz).to_value(u.one)
        if pixels < 1 - 1e-6 or abs(pixels - round(pixels)) > 1e-6 * max(pixels, 1):
            raise _KeyProblem(
                "width",
                f"{_quantity_to_str(self.width)} is not a multiple of binsz "
                f"({_quantity_to_str(self.binsz)}): {pixels:.4g} pixels",
            )
        return self

    @property
    def npix(self):
        """Pixels along each side (int)."""
        return int(round((self.width / self.binsz).to_value(u.one)))


class StreamConfig(_Section):
    """How events are cut into bunches and accumulated into windows."""

    bunch: Duration = Field("10 s", description="bunch duration (time): one window per bunch")
    windows: list[Literal["cumulative", "sliding"]] = Field(
        ["cumulative"],
        min_length=1,
        description="window kinds analysed after each bunch: cumulative (since the start) "
        "and/or sliding (the last sliding_duration)",
    )
    sliding_duration: Duration = Field(
        "100 s", description="sliding window length (time), at least one bunch"
    )
    trigger_time: OptionalTime = Field(
        None,
        description="trigger time T0 (TT unless a scale is given); null: start of the first run",
    )
    start_delay: NonNegativeDuration = Field(
        "0 s", description="events before trigger_time + start_delay are not analysed (time)"
    )
    per_observation: bool = Field(
        True,
        description="windows start again with each observation (run), as RTA-SCI analyses "
        "each observation; false: windows span observations (stacked)",
    )

    _as_lists, _unique_items = _unique_list_validators("windows")

    @model_validator(mode="after")
    def _consistent(self):
        if "sliding" in self.windows and self.sliding_duration < self.bunch:
            raise _KeyProblem(
                "sliding_duration",
                f"{_quantity_to_str(self.sliding_duration)} is shorter than one bunch "
                f"({_quantity_to_str(self.bunch)})",
            )
        return self


class ExclusionRegion(_Section):
    """A circle excluded from the detection (and from off regions)."""

    ra: float = Field(description="centre right ascension (deg, ICRS)")
    dec: float = Field(ge=-90, le=90, description="centre declination (deg, ICRS)")
    radius: Angle = Field(description="radius (angle)")


class DetectionConfig(_Section):
    """The blind search on each window."""

    method: Literal["tsmap", "lima", "lima_time", "cusum", "lift"] = Field(
        "tsmap",
        description="tsmap: TS map of a point source; lima: Li & Ma excess map; the "
        "time-aware methods (the blind search a TS map; the target's alerts from its "
        "on/off counts bunch by bunch, cumulative windows): lima_time: brightest stretch "
        "since the observation start (Li & Ma); cusum: CuSum; lift: decay-aware likelihood",
    )
    kernel_width: Angle = Field("0.3 deg", description="tsmap: kernel width (angle)")
    correlation_radius: Angle = Field("0.1 deg", description="lima: correlation radius (angle)")
    threshold: float = Field(
        5.0, gt=0, description="candidate threshold (sigma: sqrt(TS) or Li & Ma)"
    )
    max_candidates: int = Field(3, ge=1, description="most candidates per window")
    min_separation: Angle = Field("0.3 deg", description="least distance between candidates")
    exclusion: list[ExclusionRegion] = Field(
        [],
        description="regions not searched, e.g. [{ra: 83.63, dec: 22.01, radius: 0.3 deg}]",
    )
    decay_indices: list[float] = Field(
        [0.8, 1.2, 1.6, 2.0], description="lift: decay indices of the templates (F ~ t^-index)"
    )
    decay_onsets: list[NonNegativeDuration] = Field(
        ["10 s", "60 s", "100 s"],
        description="lift: afterglow onsets after the trigger time of the templates (duration)",
    )
    cusum_ratio: float = Field(
        3.0, gt=0, description="cusum: the signal it is tuned to, as a multiple of the background"
    )
    cusum_threshold: float = Field(
        20.0, gt=0, description="cusum: alert threshold of the CuSum statistic (log-likelihood)"
    )

    _time_lists = field_validator("decay_indices", "decay_onsets", mode="before")(_as_list)

    @model_validator(mode="after")
    def _templates_given(self):
        if not self.decay_indices or not self.decay_onsets:
            raise ValueError("decay_indices and decay_onsets: give at least one value each")
        return self


class FitConfig(_Section):
    """The flux-only fit of each candidate."""

    spectral_model: Literal["powerlaw"] = Field("powerlaw", description="spectral model")
    index: float = Field(2.5, description="spectral index (fixed)")
    reference: Energy = Field("1 TeV", description="reference energy of the power law")
    free_background_norm: bool = Field(False, description="fit the background norm too")


class PhotometryConfig(_Section):
    """The on/off photometry of each candidate."""

    on_radius: Angle = Field("0.1 deg", description="on-region radius (angle)")
    method: Literal["reflected", "wobble"] = Field("reflected", description="off regions")
    max_off_regions: int = Field(11, ge=1, description="most off regions")


class AlertConfig(_Section):
    """When and how alerts are issued."""

    threshold: float = Field(5.0, gt=0, description="alert threshold (sigma)")
    formats: list[Literal["jsonl", "voevent", "gcn"]] = Field(
        ["jsonl", "voevent", "gcn"], description="alert files written"
    )
    min_update_step: float = Field(
        1.0,
        ge=0,
        description="a later alert on the same candidate is an update when its significance "
        "grew by this (sigma)",
    )

    _as_lists, _unique_items = _unique_list_validators("formats")


class OutputConfig(_Section):
    """What is written besides results and alerts."""

    maps: bool = Field(False, description="write each window's significance map (FITS)")
    latency_budget: Duration = Field(
        "20 s", description="time-to-alert budget drawn in the latency chart (time)"
    )


class TrialsConfig(_Section):
    """Calibration trials (rtafast trials CONFIG): simulated windows, analysed as the pipeline does.

    The windows have the config's geometry, selection and IRFs; each trial is analysed
    with the pipeline's flux-only fit at the target and, with ``blind``, its detection.
    """

    hypothesis: Literal["background", "source"] = Field(
        "background",
        description="background: null trials (background only); source: a point source "
        "injected at the target position",
    )
    exposures: list[Duration] = Field(
        ["10 s"], description="live time of the simulated windows; one set of trials each (time)"
    )
    batch_size: int = Field(1000, ge=1, description="trials per Dask task (one Parquet file)")
    seed: int = Field(0, ge=0, description="base seed; each batch's seed is derived from it")
    blind: bool = Field(
        False,
        description="also run the blind search (TS map, peaks, localisation) on the whole "
        "simulated cube of every trial (milliseconds per trial instead of microseconds)",
    )
    pointing_offset: Angle = Field(
        "0.5 deg",
        description="simulated pointing's offset from the target (wobble), when the IRFs are "
        "not an observation's (angle)",
    )
    flux_min: float = Field(
        1e-12, gt=0, description="source: lowest injected integral flux (cm-2 s-1, log-uniform)"
    )
    flux_max: float = Field(
        1e-10, gt=0, description="source: highest injected integral flux (cm-2 s-1)"
    )
    decay_index: float | None = Field(
        None,
        description="source: flux fading as (t / decay_start)^-decay_index over the window; "
        "null: steady",
    )
    decay_start: Duration = Field(
        "30 s", description="source with decay: window start after the burst (time)"
    )

    _lists = field_validator("exposures", mode="before")(_as_list)

    @model_validator(mode="after")
    def _ranges(self):
        if not self.exposures:
            raise _KeyProblem("exposures", "give at least one exposure")
        if self.flux_min > self.flux_max:
            raise _KeyProblem(
                "flux_min", f"{self.flux_min:g} must not exceed flux_max ({self.flux_max:g})"
            )
        return self


class PipelineConfig(_Section):
    """The whole pipeline configuration (``rtafast run CONFIG``)."""

    input: InputConfig = Field(default_factory=InputConfig)
    target: TargetConfig = Field(default_factory=TargetConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    fit: FitConfig = Field(default_factory=FitConfig)
    photometry: PhotometryConfig = Field(default_factory=PhotometryConfig)
    alert: AlertConfig = Field(default_factory=AlertConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    trials: TrialsConfig = Field(default_factory=TrialsConfig)
    backend: Literal["auto", "numpy", "numba", "cuda"] = Field(
        "auto",
        description="array backend (auto: $RTAFAST_BACKEND when set, else cuda when a GPU "
        "is usable, else numba)",
    )
