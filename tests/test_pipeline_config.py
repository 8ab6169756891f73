"""The pipeline configuration (``rtafast.pipeline.config``) and geometry (``.geometry``)."""

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion

from rtafast.pipeline.config import (
    ConfigError,
    PipelineConfig,
    dump_yaml,
    load_config,
    template_yaml,
    validate_config,
)
from rtafast.pipeline.geometry import (
    energy_axis,
    energy_axis_true,
    exclusion_mask,
    make_geom,
    map_center,
)


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(*args, **kwargs):
    """The ConfigError that ``load_config(*args, **kwargs)`` raises, checked to be one line."""
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    return info.value


# -- defaults and round trips -------------------------------------------------------------
def test_defaults_are_the_spec():
    config = load_config()
    assert config == PipelineConfig()
    assert config.input.events == [] and config.input.datastore is None
    assert config.selection.energy_min == 1 * u.TeV
    assert config.selection.energy_max == 10 * u.TeV
    assert config.geometry.binsz == 0.02 * u.deg and config.geometry.width == 5 * u.deg
    assert config.geometry.npix == 250
    assert (config.geometry.projection, config.geometry.frame) == ("CAR", "icrs")
    assert config.stream.bunch == 10 * u.s and config.stream.windows == ["cumulative"]
    assert config.stream.trigger_time is None
    assert config.detection.method == "tsmap" and config.detection.threshold == 5.0
    assert config.detection.kernel_width == 0.3 * u.deg
    assert config.alert.formats == ["jsonl", "voevent", "gcn"]
    assert config.output.latency_budget == 20 * u.s
    assert config.backend == "auto"
    assert isinstance(config.input.watch_idle_timeout, u.Quantity)


def test_template_loads_into_the_defaults(tmp_path):
    text = template_yaml()
    config = load_config(write(tmp_path, text))
    assert config == PipelineConfig()
    assert config.model_dump(mode="json") == PipelineConfig().model_dump(mode="json")


def test_template_documents_every_key():
    lines = template_yaml().splitlines()
    starts = {line.split(":")[0]: i for i, line in enumerate(lines) if line[:1].isalpha()}
    assert list(starts) == list(PipelineConfig.model_fields)
    ends = [*list(starts.values())[1:], len(lines)]
    for (section, field), end in zip(PipelineConfig.model_fields.items(), ends, strict=True):
        start = starts[section]
        assert lines[start - 1].startswith("# "), section
        keys = getattr(field.annotation, "model_fields", {})
        block = lines[start + 1 : end]
        for key in keys:
            (index,) = [i for i, line in enumerate(block) if line.startswith(f"  {key}:")]
            assert block[index - 1].startswith("  # "), f"{section}.{key}"
    assert "one of: tsmap, lima" in template_yaml()
    assert "any of: jsonl, voevent, gcn" in template_yaml()


def test_dump_yaml_round_trip_of_a_full_config(tmp_path):
    overrides = [
        "input.datastore=/data/hess",
        "input.obs_ids=[33787, 33788]",
        "target.ra=329.72",
        "target.dec=-30.22",
        "selection.energy_min=500 GeV",
        "selection.roi_radius=2.5 deg",
        "selection.time_start=-5 s",
        "stream.trigger_time=2006-07-29T20:56:50.123456 UTC",
        "stream.windows=[cumulative, sliding]",
        "detection.exclusion=[{ra: 83.63, dec: 22.01, radius: 0.3 deg}]",
        "backend=numba",
    ]
    config = load_config(overrides=overrides)
    for comments in (True, False):
        again = load_config(write(tmp_path, dump_yaml(config, comments=comments)))
        assert again.model_dump(mode="json") == config.model_dump(mode="json")
        assert abs((again.stream.trigger_time - config.stream.trigger_time).to_value(u.ns)) < 1
        assert again.selection.energy_min == 0.5 * u.TeV
        assert again.detection.exclusion[0].radius == 0.3 * u.deg


def test_model_dump_json_gives_strings():
    data = load_config(overrides=["stream.trigger_time=MJD 60676.5"]).model_dump(mode="json")
    assert data["geometry"]["binsz"] == "0.02 deg"
    assert data["selection"]["energy_max"] == "10 TeV"
    assert data["selection"]["roi_radius"] is None
    assert data["stream"]["trigger_time"] == "2025-01-01T12:00:00.000000000 TT"


# -- overrides ---------------------------------------------------------------------------------
def test_overrides_numbers_lists_and_top_level(tmp_path):
    path = write(tmp_path, "input:\n  datastore: /data\ndetection:\n  threshold: 6\n")
    config = load_config(
        path,
        [
            "input.obs_ids=[33787, 33788]",
            "detection.threshold=4",
            "detection.max_candidates=7",
            "backend=cuda",
            "geometry.binsz=0.05 deg",
            "alert.formats=jsonl",
        ],
    )
    assert config.input.obs_ids == [33787, 33788]
    assert config.detection.threshold == 4.0 and isinstance(config.detection.threshold, float)
    assert config.detection.max_candidates == 7
    assert config.backend == "cuda"
    assert config.geometry.binsz == 0.05 * u.deg and config.geometry.npix == 100
    assert config.alert.formats == ["jsonl"]


def test_later_override_wins_and_a_single_file_is_a_list():
    config = load_config(
        overrides=["input.events=a.fits", "detection.threshold=3", "detection.threshold=4.5"]
    )
    assert config.input.events == ["a.fits"]
    assert config.input.source == "events"
    assert config.detection.threshold == 4.5


def test_null_section_gets_its_defaults(tmp_path):
    config = load_config(write(tmp_path, "detection:\nfit:\n  index: 2.1\n"))
    assert config.detection == PipelineConfig().detection
    assert config.fit.index == 2.1


def test_empty_file_is_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing\n")) == PipelineConfig()


# -- one-line errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["detection.treshold=4"],
            "--set detection.treshold=4: detection.treshold: unknown key (did you mean "
            "'threshold'? allowed: method, kernel_width, correlation_radius, threshold, ",
        ),
        (["detectoin.threshold=4"], "detectoin: unknown section (did you mean 'detection'?"),
        (
            ["detection.threshold=abc"],
            "detection.threshold: input should be a valid number, got 'abc'",
        ),
        (["geometry.binsz=0.02 m"], "geometry.binsz: '0.02 m' is not an angle (unit m)"),
        (["geometry.binsz=0.05"], "geometry.binsz: 0.05 has no unit: write it as e.g. '0.05 deg'"),
        (["geometry.binsz=bla"], "geometry.binsz: 'bla' is not an angle such as '0.02 deg'"),
        (["stream.bunch=1 TeV"], "stream.bunch: '1 TeV' is not a duration"),
        (["selection.energy_max=2 deg"], "selection.energy_max: '2 deg' is not an energy"),
        (["detection.kernel_width=0 deg"], "detection.kernel_width: '0 deg' must be positive"),
        (["stream.start_delay=-1 s"], "stream.start_delay: '-1 s' must not be negative"),
        (["detection.threshold=.nan"], "detection.threshold: input should be a finite number"),
        (["detection.method=foo"],
         "detection.method: input should be 'tsmap', 'lima', 'lima_time', 'cusum' or 'lift', got"),
        (["geometry.energy_nbins=0"], "geometry.energy_nbins: input should be greater than"),
        (["stream.windows=[daily]"], "stream.windows[0]: input should be 'cumulative' or"),
        (["input=5"], "input: expected a mapping of keys (events, datastore, obs_ids, watch"),
        (
            ["detection.exclusion=[{ra: 1, dec: 2}]"],
            "detection.exclusion[0].radius: missing (required: ra, dec, radius)",
        ),
        (
            ["selection.energy_min=20 TeV"],
            "selection.energy_min: 20 TeV must be below energy_max (10 TeV)",
        ),
        (
            ["selection.time_start=30 s", "selection.time_stop=10 s"],
            "selection.time_start: 30 s must be below time_stop (10 s)",
        ),
        (
            ["input.events=[a.fits]", "input.watch=/incoming"],
            "input.watch: give only one of events, datastore, watch (got events, watch)",
        ),
        (["input.obs_ids=[1]"], "input.obs_ids: only used with datastore"),
        (["target.ra=10"], "target.dec: give both ra and dec, or neither"),
        (["geometry.binsz=0.03 deg"], "geometry.width: 5 deg is not a multiple of binsz"),
        (["stream.windows=[sliding, sliding]"], "stream.windows: repeated value(s): sliding"),
        (
            ["stream.windows=[sliding]", "stream.sliding_duration=5 s"],
            "stream.sliding_duration: 5 s is shorter than one bunch (10 s)",
        ),
        (["stream.trigger_time=nonsense"], "stream.trigger_time: 'nonsense' is not a time"),
        (["stream.trigger_time=MJD 60000 UT1"], "time scale 'ut1' not supported"),
        (["detection.threshold"], "--set detection.threshold: expected section.key=value"),
        (["input.obs_ids=[1, 2"], "--set input.obs_ids=[1, 2: invalid YAML value '[1, 2'"),
        (["detection.threshold.x=1"], "detection.threshold.x: detection.threshold is not a"),
        (["detection.exclusion.ra=1"], "detection.exclusion is not a section"),
    ],
)
def test_each_error_is_one_line_naming_the_key(overrides, expected):
    error = config_error(overrides=overrides)
    assert expected in str(error)
    assert str(error).startswith("--set ")


def test_several_problems_report_the_first_and_count_the_rest():
    error = config_error(overrides=["geometry.binsz=1 m", "detection.threshold=x"])
    assert str(error).endswith("(and 1 more problem)")
    assert error.key == "geometry.binsz"


def test_file_errors_name_the_file_and_line(tmp_path):
    text = "geometry:\n  binsz: 0.02 deg\ndetection:\n  method: tsmap\n  treshold: 4\n"
    error = config_error(write(tmp_path, text))
    assert str(error).startswith(f"{tmp_path / 'run.yaml'}:5: detection.treshold: unknown key")
    assert (error.key, error.line) == ("detection.treshold", 5)

    nested = "detection:\n  exclusion:\n    - {ra: 1, dec: 2, radius: 1 m}\n"
    error = config_error(write(tmp_path, nested))
    assert (error.key, error.line) == ("detection.exclusion[0].radius", 3)


def test_an_override_error_names_the_override_not_the_file(tmp_path):
    path = write(tmp_path, "detection:\n  threshold: 4\n")
    error = config_error(path, ["detection.threshold=abc"])
    assert error.source == "--set detection.threshold=abc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detection:\n  threshold: 4\n method: x\n", ":3: invalid YAML: expected <block end>"),
        (
            "detection:\n  threshold: 4\n  threshold: 5\n",
            ":3: invalid YAML: duplicate key 'threshold' (first on line 2)",
        ),
        ("- a\n- b\n", ": expected a mapping of sections (input, target,"),
        ("detection: [1, 2]\n", ":1: detection: expected a mapping of keys (method,"),
    ],
)
def test_yaml_problems(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert str(config_error(path)).startswith(f"{path}{expected}")


def test_missing_and_unreadable_files(tmp_path):
    assert str(config_error(tmp_path / "nope.yaml")) == f"{tmp_path / 'nope.yaml'}: no such file"
    assert "is a directory" in str(config_error(tmp_path))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8 text" in str(config_error(binary))


def test_input_source_is_required_only_when_asked(tmp_path):
    with pytest.raises(ConfigError, match="give one of input.events, input.datastore"):
        PipelineConfig().input.source  # noqa: B018
    path = write(tmp_path, "detection:\n  threshold: 4\n")
    error = config_error(path, require_input=True)
    assert str(error).startswith(f"{path}: input: give one of input.events")
    assert load_config(path, ["input.watch=/incoming"], require_input=True).input.source == "watch"


def test_validate_config_and_assignment_are_checked():
    config = validate_config({"detection": {"threshold": 3}})
    assert config.detection.threshold == 3.0
    with pytest.raises(ConfigError, match=r"^detection.threshold: input should be a valid number"):
        validate_config({"detection": {"threshold": "x"}})
    with pytest.raises(ValueError, match="is not an angle"):
        config.geometry.binsz = "1 s"


# -- quantities and times --------------------------------------------------------------------
def test_quantities_keep_their_unit_and_compare_by_value():
    config = load_config(overrides=["selection.energy_min=300 GeV", "geometry.width=300 arcmin"])
    assert config.selection.energy_min.unit == u.GeV
    assert config.selection.energy_min == 0.3 * u.TeV
    assert config.geometry.npix == 250
    config = validate_config({"geometry": {"binsz": 0.1 * u.deg}})
    assert config.geometry.binsz == 0.1 * u.deg


@pytest.mark.parametrize(
    ("value", "expected_tt"),
    [
        ("2026-01-01T00:00:00", "2026-01-01T00:00:00.000"),
        ("2026-01-01 00:00:00", "2026-01-01T00:00:00.000"),
        ("2026-01-01T00:00:00 UTC", "2026-01-01T00:01:09.184"),
        ("2026-01-01T00:00:00 TAI", "2026-01-01T00:00:32.184"),
        ("MJD 61041.0", "2026-01-01T00:00:00.000"),
        ("MJD 61041 UTC", "2026-01-01T00:01:09.184"),
        (61041.5, "2026-01-01T12:00:00.000"),
        (Time("2026-01-01T00:00:00", scale="utc"), "2026-01-01T00:01:09.184"),
    ],
)
def test_times_become_tt(value, expected_tt):
    config = validate_config({"stream": {"trigger_time": value}})
    time = config.stream.trigger_time
    assert time.scale == "tt"
    assert time.isot == expected_tt


def test_unquoted_yaml_timestamps(tmp_path):
    naive = load_config(write(tmp_path, "stream:\n  trigger_time: 2026-01-01T00:00:00\n"))
    zoned = load_config(write(tmp_path, "stream:\n  trigger_time: 2026-01-01T00:00:00Z\n"))
    assert naive.stream.trigger_time.isot == "2026-01-01T00:00:00.000"
    difference = (zoned.stream.trigger_time - naive.stream.trigger_time).to_value(u.s)
    assert difference == pytest.approx(69.184, abs=1e-6)  # TT - UTC in 2026


def test_time_precision_survives_the_dump(tmp_path):
    time = Time(61041.123456789, format="mjd", scale="tt")
    config = validate_config({"stream": {"trigger_time": time}})
    again = load_config(write(tmp_path, dump_yaml(config)))
    assert abs((again.stream.trigger_time - time).to_value(u.ns)) < 1


# -- geometry ----------------------------------------------------------------------------------
POINTING = SkyCoord(83.63, 22.51, unit="deg", frame="icrs")


def test_map_center_target_or_pointing():
    assert map_center(load_config(), POINTING).separation(POINTING) < 1e-9 * u.deg
    galactic = POINTING.galactic
    assert map_center(load_config(), galactic).frame.name == "icrs"
    assert map_center(load_config(), galactic).separation(POINTING) < 1e-9 * u.deg
    config = load_config(overrides=["target.ra=329.72", "target.dec=-30.22"])
    center = map_center(config, POINTING)
    assert (center.ra.deg, center.dec.deg) == (329.72, -30.22)
    with pytest.raises(ValueError, match="no pointing"):
        map_center(load_config(), None)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["geometry.projection=TAN", "geometry.frame=galactic"],
        [
            "geometry.binsz=3 arcmin",
            "geometry.width=2 deg",
            "geometry.energy_nbins=4",
            "selection.energy_min=300 GeV",
            "selection.energy_max=30 TeV",
        ],
    ],
)
def test_make_geom_is_gammapys(overrides):
    config = load_config(overrides=overrides)
    center = map_center(config, POINTING)
    geometry = config.geometry
    expected_axis = MapAxis.from_energy_bounds(
        config.selection.energy_min.to_value("TeV"),
        config.selection.energy_max.to_value("TeV"),
        nbin=geometry.energy_nbins,
        unit="TeV",
        name="energy",
    )
    expected = WcsGeom.create(
        skydir=center,
        binsz=geometry.binsz.to_value("deg"),
        width=geometry.width.to_value("deg"),
        proj=geometry.projection,
        frame=geometry.frame,
        axes=[expected_axis],
    )
    geom = make_geom(config, center)
    assert geom == expected
    assert geom.data_shape == (geometry.energy_nbins, geometry.npix, geometry.npix)
    assert geom.frame == geometry.frame and geom.projection == geometry.projection
    assert geom.center_skydir.separation(center) < 1e-6 * u.deg
    assert u.allclose(geom.axes["energy"].edges, expected_axis.edges)
    assert u.isclose(geom.axes["energy"].edges[0], config.selection.energy_min)
    assert u.isclose(geom.axes["energy"].edges[-1], config.selection.energy_max)
    assert energy_axis(config) == expected_axis


def test_energy_axis_true():
    config = load_config(overrides=["geometry.energy_true_nbins=12"])
    axis = energy_axis_true(config)
    assert axis == MapAxis.from_energy_bounds(0.5, 50, nbin=12, unit="TeV", name="energy_true")
    assert axis.nbin == 12 and axis.name == "energy_true"
    ratios = axis.edges[1:] / axis.edges[:-1]
    assert np.allclose(ratios, 10 ** (2 / 12))


def test_exclusion_mask():
    assert exclusion_mask(load_config(), make_geom(load_config(), POINTING)) is None
    radius = 0.5
    config = load_config(
        overrides=[f"detection.exclusion=[{{ra: 83.63, dec: 22.51, radius: {radius} deg}}]"]
    )
    geom = make_geom(config, POINTING)
    mask = exclusion_mask(config, geom)
    region = CircleSkyRegion(POINTING, radius * u.deg)
    expected = geom.to_image().region_mask([region], inside=False)
    assert mask.geom == geom.to_image() and mask.data.dtype == bool
    np.testing.assert_array_equal(mask.data, expected.data)
    excluded_area = (~mask.data).sum() * geom.to_image().solid_angle()[0, 0]
    assert excluded_area.to_value("deg2") == pytest.approx(math.pi * radius**2, rel=0.02)
    assert not mask.get_by_coord(POINTING)[0]
    assert mask.get_by_coord(SkyCoord(83.63, 24.5, unit="deg"))[0]
