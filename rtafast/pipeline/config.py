"""The pipeline's configuration: one YAML file, validated with pydantic.

``load_config(path, overrides)`` reads the YAML file, applies ``"section.key=value"``
overrides (values read as YAML) and validates the result into a :class:`PipelineConfig`.
Every problem ends as one :class:`ConfigError` line naming the file (and line), the key and
what is allowed, e.g. ``run.yaml:12: detection.treshold: unknown key (did you mean
'threshold'? allowed: method, kernel_width, ...)``.

Values with units are written as strings, ``"0.02 deg"``, ``"10 s"``, ``"1 TeV"``, and
become `~astropy.units.Quantity` (unit checked: angle, duration or energy). Times are
ISO strings (``"2026-01-01T00:00:00"``), ``"MJD 60676.5"`` or a bare number (an MJD),
read in TT unless a scale is appended (``"2026-01-01T00:00:00 UTC"``; an unquoted YAML
timestamp ending in ``Z`` is UTC too); they become `~astropy.time.Time` in the TT scale,
the scale of the event files. ``model_dump(mode="json")`` and :func:`dump_yaml` give the
strings back, so a dumped configuration loads into the same one.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import math
import numbers
import os
import textwrap
import typing
from pathlib import Path
from typing import Annotated, Literal

import astropy.units as u
import yaml
from astropy.time import Time
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AlertConfig",
    "ConfigError",
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
    "dump_yaml",
    "load_config",
    "template_yaml",
    "validate_config",
]


class ConfigError(ValueError):
    """A configuration problem, as one line: ``source[:line]: key: problem``.

    Parameters
    ----------
    problem : str
        What is wrong and what is allowed.
    key : str, optional
        Dotted key (``"detection.threshold"``, ``"detection.exclusion[0].radius"``).
    source : str, optional
        Where the value came from: the file name or ``"--set section.key=value"``.
    line : int, optional
        Line (1-based) in ``source``.
    """

    def __init__(self, problem, key=None, source=None, line=None):
        self.problem = problem
        self.key = key
        self.source = source
        self.line = line
        super().__init__(self._one_line())

    def _one_line(self):
        where = None
        if self.source is not None:
            where = self.source if self.line is None else f"{self.source}:{self.line}"
        parts = [part for part in (where, self.key, self.problem) if part]
        return ": ".join(parts)


class _KeyProblem(ValueError):
    """Raised by a cross-field validator: names the key within its section."""

    def __init__(self, key, problem):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


# -- quantities and times ------------------------------------------------------------------
_KINDS = {"angle": u.deg, "duration": u.s, "energy": u.TeV}
_EXAMPLES = {"angle": "0.02 deg", "duration": "10 s", "energy": "1 TeV"}


def _to_quantity(value, kind, sign="positive", optional=False):
    """Validate ``value`` (a string such as ``"0.02 deg"`` or a Quantity) as a scalar of ``kind``.

    ``sign``: ``"positive"`` (> 0), ``"nonnegative"`` (>= 0) or ``"any"``.
    """
    if value is None:
        if optional:
            return None
        raise ValueError(f"expected a {kind} such as '{_EXAMPLES[kind]}', got None")
    if isinstance(value, numbers.Number) and not isinstance(value, u.Quantity):
        raise ValueError(f"{value!r} has no unit: write it as e.g. '{value} {_KINDS[kind]}'")
    if not isinstance(value, (str, u.Quantity)):
        raise ValueError(f"expected a {kind} such as '{_EXAMPLES[kind]}', got {value!r}")
    article = "an" if kind[0] in "aeiou" else "a"
    try:
        quantity = u.Quantity(value)
    except (TypeError, ValueError) as error:
        reason = str(error).split(". ")[0].rstrip(".")
        raise ValueError(
            f"{value!r} is not {article} {kind} such as '{_EXAMPLES[kind]}' ({reason})"
        ) from None
    if not quantity.isscalar:
        raise ValueError(f"{value!r}: expected one {kind}, got an array")
    if not quantity.unit.is_equivalent(_KINDS[kind]):
        raise ValueError(f"{value!r} is not {article} {kind} (unit {quantity.unit})")
    number = float(quantity.value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    if sign == "positive" and number <= 0:
        raise ValueError(f"{value!r} must be positive")
    if sign == "nonnegative" and number < 0:
        raise ValueError(f"{value!r} must not be negative")
    return quantity


def _quantity_to_str(quantity):
    """``0.02 deg`` as the string ``"0.02 deg"`` (None stays None)."""
    if quantity is None:
        return None
    number = repr(float(quantity.value))
    if number.endswith(".0"):
        number = number[: -len(".0")]
    return f"{number} {quantity.unit.to_string()}"


def _quantity_type(kind, sign="positive", optional=False):
    """An annotated Quantity type: validated by :func:`_to_quantity`, dumped as a string."""
    validate = functools.partial(_to_quantity, kind=kind, sign=sign, optional=optional)
    if optional:
        return Annotated[
            typing.Optional[u.Quantity],  # noqa: UP045 (runtime type expression)
            PlainValidator(validate),
            PlainSerializer(_quantity_to_str, return_type=typing.Optional[str]),  # noqa: UP045
        ]
    return Annotated[
        u.Quantity,
        PlainValidator(validate),
        PlainSerializer(_quantity_to_str, return_type=str),
    ]


Angle = _quantity_type("angle")
OptionalAngle = _quantity_type("angle", optional=True)
Energy = _quantity_type("energy")
Duration = _quantity_type("duration")
NonNegativeDuration = _quantity_type("duration", sign="nonnegative")
OptionalRelativeTime = _quantity_type("duration", sign="any", optional=True)

#: Time scales accepted after a time string (converted to TT); UT1 would need IERS tables.
TIME_SCALES = ("tt", "utc", "tai")


def _time_from_string(text):
    """``"2026-01-01T00:00:00 [UTC]"`` or ``"MJD 60676.5 [UTC]"`` as a Time."""
    tokens = text.split()
    scale = "tt"
    if len(tokens) > 1 and tokens[-1].lower() in Time.SCALES:
        scale = tokens.pop().lower()
        if scale not in TIME_SCALES:
            raise ValueError(
                f"{text!r}: time scale {scale!r} not supported (use one of "
                f"{', '.join(s.upper() for s in TIME_SCALES)})"
            )
    if tokens and tokens[0].upper() == "MJD":
        if len(tokens) != 2:
            raise ValueError(f"{text!r} is not a time such as 'MJD 60676.5'")
        try:
            mjd = float(tokens[1])
        except ValueError:
            raise ValueError(f"{text!r} is not a time such as 'MJD 60676.5'") from None
        return Time(mjd, format="mjd", scale=scale)
    try:
        return Time(" ".join(tokens), scale=scale)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time such as '2026-01-01T00:00:00', "
            "'2026-01-01T00:00:00 UTC' or 'MJD 60676.5'"
        ) from None


def _to_time(value):
    """Validate a time (string, MJD number, datetime, Time or None) into a TT Time."""
    if value is None:
        return None
    if isinstance(value, Time):
        time = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a time, got {value!r}")
    elif isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a time")
        time = Time(float(value), format="mjd", scale="tt")
    elif isinstance(value, datetime.datetime):
        # an unquoted YAML timestamp: naive means TT (as strings), an explicit zone is UTC
        time = Time(value, scale="tt") if value.tzinfo is None else Time(value)
    elif isinstance(value, datetime.date):
        time = Time(datetime.datetime.combine(value, datetime.time()), scale="tt")
    elif isinstance(value, str):
        time = _time_from_string(value)
    else:
        raise ValueError(f"expected a time such as '2026-01-01T00:00:00', got {value!r}")
    if not time.isscalar:
        raise ValueError(f"{value!r}: expected one time, got an array")
    if time.scale not in TIME_SCALES:
        raise ValueError(f"{value!r}: time scale {time.scale!r} not supported")
    return time.tt


def _time_to_str(time):
    """A Time as ``"2026-01-01T00:01:09.184000000 TT"`` (None stays None)."""
    if time is None:
        return None
    return f"{Time(time.tt, precision=9).isot} TT"


OptionalTime = Annotated[
    typing.Optional[Time],  # noqa: UP045 (runtime type expression)
    PlainValidator(_to_time),
    PlainSerializer(_time_to_str, return_type=typing.Optional[str]),  # noqa: UP045
]


def _as_list(value):
    """A single value where a list is expected becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, (str, numbers.Number, dict)):
        return [value]
    return value


def _unique(values, key):
    """Raise when ``values`` has a repeated item."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise _KeyProblem(key, f"repeated value(s): {', '.join(repeated)}")


def _ordered(section, low, high):
    """Raise unless ``section.low < section.high`` (both given)."""
    low_value, high_value = getattr(section, low), getattr(section, high)
    if low_value is not None and high_value is not None and not low_value < high_value:
        raise _KeyProblem(
            low,
            f"{_quantity_to_str(low_value)} must be below {high} ({_quantity_to_str(high_value)})",
        )


# -- the models ------------------------------------------------------------------------------
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

    _as_lists = field_validator("windows", mode="before")(_as_list)

    @model_validator(mode="after")
    def _consistent(self):
        _unique(self.windows, "windows")
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

    method: Literal["tsmap", "lima"] = Field(
        "tsmap", description="tsmap: TS map of a point source; lima: Li & Ma excess map"
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

    _as_lists = field_validator("formats", mode="before")(_as_list)

    @model_validator(mode="after")
    def _unique_formats(self):
        _unique(self.formats, "formats")
        return self


class OutputConfig(_Section):
    """What is written besides results and alerts."""

    maps: bool = Field(False, description="write each window's significance map (FITS)")
    latency_budget: Duration = Field(
        "20 s", description="time-to-alert budget drawn in the latency chart (time)"
    )


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
    backend: Literal["auto", "numpy", "numba", "cuda"] = Field(
        "auto",
        description="array backend (auto: $RTAFAST_BACKEND when set, else cuda when a GPU "
        "is usable, else numba)",
    )


# -- pydantic errors as one line ---------------------------------------------------------------
def _model_of(annotation):
    """The model class inside ``annotation`` (``X``, ``list[X]``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        model = _model_of(argument)
        if model is not None:
            return model
    return None


def _model_at(path):
    """The model class that ``path`` (a pydantic loc) points into, or None."""
    model = PipelineConfig
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _model_of(field.annotation)
    return model


def _dotted(path):
    """``("detection", "exclusion", 0, "radius")`` as ``"detection.exclusion[0].radius"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown_key_problem(path):
    """``unknown key (did you mean 'x'? allowed: ...)`` for the last key of ``path``."""
    model = _model_at(path[:-1])
    allowed = list(model.model_fields) if model is not None else []
    kind = "section" if len(path) == 1 else "key"
    hint = ""
    close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
    if close:
        hint = f"did you mean {close[0]!r}? "
    return f"unknown {kind} ({hint}allowed: {', '.join(allowed)})"


def _error_problem(error):
    """One pydantic error (a dict of ``ValidationError.errors()``) as ``(path, problem)``."""
    path = tuple(error["loc"])
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _KeyProblem):
        return path + (cause.key,), cause.problem
    if kind == "extra_forbidden":
        return path, _unknown_key_problem(path)
    if kind == "missing":
        model = _model_at(path[:-1])
        required = [name for name, f in model.model_fields.items() if f.is_required()]
        return path, f"missing (required: {', '.join(required)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        model = _model_at(path)
        keys = f" ({', '.join(model.model_fields)})" if model is not None else ""
        return path, f"expected a mapping of keys{keys}, got {_short_repr(error['input'])}"
    if kind in ("value_error", "assertion_error") and cause is not None:
        return path, str(cause)
    message = error["msg"].split(", unable to parse")[0]
    message = message[0].lower() + message[1:]
    return path, f"{message}, got {_short_repr(error['input'])}"


# -- YAML with line numbers ---------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text, source):
    """``(data, node)`` of a YAML document; a syntax error is a ConfigError with its line."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", source=source, line=line) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", source=source) from None
    finally:
        loader.dispose()
    return data, node


def _line_of(node, path):
    """Line (1-based) of the deepest key of ``path`` found in the YAML node tree."""
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not match:
                break
            key_node, node = match[-1]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# -- overrides -------------------------------------------------------------------------------
def _split_override(text):
    """``"section.key=value"`` as ``(("section", "key"), value)``, value read as YAML."""
    source = f"--set {text}"
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError("expected section.key=value", source=source)
    dotted, raw = text.split("=", 1)
    path = tuple(part.strip() for part in dotted.strip().split("."))
    if not all(path):
        raise ConfigError(f"expected section.key=value, got key {dotted!r}", source=source)
    try:
        value = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"invalid YAML value {raw!r}: {problem}", source=source) from None
    _check_override_path(path, source)
    return path, value


def _check_override_path(path, source):
    """Raise unless every part of ``path`` is a key of the section it is in."""
    model = PipelineConfig
    for depth, part in enumerate(path):
        if model is None:
            raise ConfigError(
                f"{_dotted(path[:depth])} is not a section", key=_dotted(path), source=source
            )
        if part not in model.model_fields:
            key = _dotted(path[: depth + 1])
            raise ConfigError(_unknown_key_problem(path[: depth + 1]), key=key, source=source)
        annotation = model.model_fields[part].annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_section else None


def _apply_override(data, path, value):
    """Set ``data[path[0]]...[path[-1]] = value`` (sections created as needed)."""
    for part in path[:-1]:
        section = data.get(part)
        if not isinstance(section, dict):
            section = data[part] = {}
        data = section
    data[path[-1]] = value


# -- loading ---------------------------------------------------------------------------------
def validate_config(data, source=None, overridden=None, node=None):
    """Validate a mapping into a :class:`PipelineConfig`; problems as one ConfigError line.

    Parameters
    ----------
    data : dict or None
        The sections (None: the defaults). A section given as null gets its defaults.
    source : str, optional
        Named in errors (the file name).
    overridden : dict, optional
        ``{path tuple: override text}``: errors under these keys name the override.
    node : yaml.Node, optional
        The YAML node tree of ``data``, for line numbers.

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ConfigError
        The first problem found (and how many more there are).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of sections ({', '.join(PipelineConfig.model_fields)}), "
            f"got {_short_repr(data)}",
            source=source,
        )
    data = {
        key: ({} if value is None and _model_at((key,)) else value) for key, value in data.items()
    }
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as error:
        raise _config_error(error, source, overridden or {}, node) from None


def _config_error(error, source, overridden, node):
    errors = error.errors()
    path, problem = _error_problem(errors[0])
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})"
    cause = (errors[0].get("ctx") or {}).get("error")
    # a cross-field problem concerns its whole section: any override within it is named
    scope = path[:-1] if isinstance(cause, _KeyProblem) else path
    for override_path, text in reversed(overridden.items()):
        if path[: len(override_path)] == override_path or override_path[: len(scope)] == scope:
            return ConfigError(problem, key=_dotted(path), source=f"--set {text}")
    line = _line_of(node, path) if node is not None else None
    return ConfigError(problem, key=_dotted(path), source=source, line=line)


def _read_text(path):
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML file", source=str(path)) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text ({error.reason})", source=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", source=str(path)) from None


def load_config(path=None, overrides=(), require_input=False):
    """Read, override and validate a pipeline configuration.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The YAML file; None: the defaults (:func:`template_yaml`).
    overrides : iterable of str
        ``"section.key=value"`` (or ``"backend=cuda"``), applied in order after the file;
        the value is read as YAML, so ``detection.threshold=4`` is a number and
        ``input.obs_ids=[33787, 33788]`` a list.
    require_input : bool
        Also require exactly one input source (``rtafast run``; the demo brings its own).

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ConfigError
        One line naming the file (and line) or the override, the key and what is allowed:
        missing or unreadable file, YAML syntax error, duplicate key, unknown section or key,
        a value of the wrong type or unit, inconsistent values.
    """
    data, node, source = {}, None, None
    if path is not None:
        source = os.fspath(path)
        data, node = _parse_yaml(_read_text(path), source)
        if data is None:
            data = {}
    if isinstance(overrides, str):
        overrides = [overrides]
    overridden = {}
    for text in overrides:
        override_path, value = _split_override(text)
        if not isinstance(data, dict):
            break  # validate_config names the file's problem
        _apply_override(data, override_path, value)
        overridden[override_path] = text
    config = validate_config(data, source=source, overridden=overridden, node=node)
    if require_input:
        try:
            config.input.source  # noqa: B018 (raises when no input is given)
        except ConfigError as error:
            raise ConfigError(error.problem, key=error.key, source=source) from None
    return config


# -- writing ---------------------------------------------------------------------------------
_HEADER = """\
rtafast pipeline configuration (rtafast run CONFIG -o OUTDIR).
Values with units are strings: angles '0.02 deg', times '10 s', energies '1 TeV'.
Times: '2026-01-01T00:00:00' (read as TT), '2026-01-01T00:00:00 UTC', 'MJD 60676.5' (TT).
Override a key on the command line: --set section.key=value (the value is read as YAML)."""


def _yaml_value(value):
    """One value as inline YAML (``0.02 deg``, ``[jsonl, gcn]``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text


def _allowed(annotation):
    """``"one of: a, b"`` for a Literal field (or a list of them), else ``""``."""
    if typing.get_origin(annotation) is Literal:
        return "one of: " + ", ".join(str(v) for v in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        choices = _allowed(typing.get_args(annotation)[0])
        return choices.replace("one of", "any of", 1)
    return ""


def _comment(text, indent):
    prefix = " " * indent + "# "
    return textwrap.fill(text, width=96, initial_indent=prefix, subsequent_indent=prefix)


def _key_lines(name, field, value, indent):
    """The commented ``key: value`` lines of one field."""
    notes = [field.description or "", _allowed(field.annotation)]
    text = "; ".join(note for note in notes if note)
    lines = [_comment(text, indent)] if text else []
    lines.append(f"{' ' * indent}{name}: {_yaml_value(value)}")
    return lines


def dump_yaml(config, comments=True):
    """A configuration as YAML that :func:`load_config` reads back into the same one.

    Parameters
    ----------
    config : PipelineConfig
    comments : bool
        Document every section and key (units, allowed values) in comments.

    Returns
    -------
    str
    """
    data = config.model_dump(mode="json")
    lines = [_comment(line, 0) for line in _HEADER.splitlines()]
    for name, field in PipelineConfig.model_fields.items():
        model = _model_of(field.annotation)
        lines.append("")
        if model is None:
            lines.extend(_key_lines(name, field, data[name], 0))
            continue
        lines.append(_comment(model.__doc__.strip().splitlines()[0], 0))
        lines.append(f"{name}:")
        for key, subfield in model.model_fields.items():
            lines.extend(_key_lines(key, subfield, data[name][key], 2))
    if not comments:
        lines = [line for line in lines if line and not line.lstrip().startswith("#")]
    return "\n".join(lines) + "\n"


def template_yaml():
    """The documented default configuration (``rtafast config --template``).

    Returns
    -------
    str
        YAML with every section and key and a comment on each (units, allowed values);
        :func:`load_config` reads it into the defaults.
    """
    return dump_yaml(PipelineConfig())
