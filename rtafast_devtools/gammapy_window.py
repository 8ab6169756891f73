"""The alert pipeline's analysis of one window, done with gammapy alone (the reference).

For the agreement checks and the benchmark of ``rtafast run``: the same window (the
events of an observation between two times), the same geometry and the same models as
the pipeline's config, analysed the way a gammapy user would write it:
``Observation.select_time`` → ``MapDatasetMaker`` → ``TSMapEstimator`` (blind search) →
``find_peaks`` → ``Fit`` of the flux-only point source at each position → reflected
regions on/off counts with Li & Ma. Nothing of rtafast's runs here except the config
and its geometry helpers.
"""

import time
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time

__all__ = ["GammapyWindow", "gammapy_window_analysis"]


@dataclass
class GammapyWindow:
    """gammapy's answers for one window, and the time each stage took (s)."""

    sqrt_ts_map: object = None
    peaks: list = field(default_factory=list)  # (ra, dec, sqrt_ts) above the threshold
    fits: dict = field(default_factory=dict)  # (ra, dec) -> dict(sqrt_ts, ts, flux, flux_err)
    onoff: dict = field(default_factory=dict)  # (ra, dec) -> dict(n_on, n_off, alpha, sigma)
    seconds: dict = field(default_factory=dict)

    @property
    def total_s(self):
        """Wall time of the whole analysis, s."""
        return sum(self.seconds.values())


def _dataset(observation, start, stop, config, center):
    from gammapy.datasets import MapDataset
    from gammapy.makers import MapDatasetMaker, SafeMaskMaker

    from rtafast.pipeline.geometry import energy_axis_true, make_geom

    window = observation.select_time(Time([start, stop]))
    geom = make_geom(config, center)
    empty = MapDataset.create(geom, energy_axis_true=energy_axis_true(config), name="window")
    dataset = MapDatasetMaker().run(empty, window)
    offset_max = config.selection.offset_max
    if offset_max is not None:
        dataset = SafeMaskMaker(methods=["offset-max"], offset_max=offset_max).run(
            dataset, window
        )
    return dataset, window


def _models(dataset, ra, dec, config):
    from gammapy.modeling.models import (
        FoVBackgroundModel,
        Models,
        PointSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )

    spectral = PowerLawSpectralModel(
        index=config.fit.index, amplitude="1e-12 cm-2 s-1 TeV-1", reference=config.fit.reference
    )
    spectral.index.frozen = True
    spatial = PointSpatialModel(lon_0=ra * u.deg, lat_0=dec * u.deg, frame="icrs")
    spatial.lon_0.frozen = spatial.lat_0.frozen = True
    background = FoVBackgroundModel(dataset_name=dataset.name)
    background.spectral_model.norm.frozen = not config.fit.free_background_norm
    return Models([SkyModel(spectral, spatial, name="source"), background])


def _fit(dataset, ra, dec, config):
    from gammapy.modeling import Fit

    dataset.models = _models(dataset, ra, dec, config)
    result = Fit().run([dataset])
    stat = result.total_stat
    amplitude = dataset.models["source"].spectral_model.amplitude
    best, error = amplitude.value, amplitude.error
    amplitude.value = 0.0
    ts = dataset.stat_sum() - stat
    amplitude.value = best
    spectral = dataset.models["source"].spectral_model
    e_min, e_max = config.selection.energy_min, config.selection.energy_max
    flux = spectral.integral(e_min, e_max).to_value("cm-2 s-1")
    return {
        "ts": ts,
        "sqrt_ts": float(np.sign(best) * np.sqrt(max(ts, 0.0))),
        "flux": flux,
        "flux_err": flux * error / best if best else np.nan,
        "norm": best,
    }


def _onoff(observation, ra, dec, config):
    from gammapy.datasets import SpectrumDataset
    from gammapy.makers import ReflectedRegionsBackgroundMaker, SpectrumDatasetMaker
    from gammapy.maps import RegionGeom
    from gammapy.stats import WStatCountsStatistic
    from regions import CircleSkyRegion

    from rtafast.pipeline.geometry import energy_axis, energy_axis_true

    on = CircleSkyRegion(SkyCoord(ra, dec, unit="deg"), config.photometry.on_radius)
    geom = RegionGeom.create(region=on, axes=[energy_axis(config)])
    empty = SpectrumDataset.create(geom, energy_axis_true=energy_axis_true(config))
    dataset = SpectrumDatasetMaker(selection=["counts", "exposure"]).run(empty, observation)
    onoff = ReflectedRegionsBackgroundMaker(
        max_region_number=config.photometry.max_off_regions
    ).run(dataset, observation)
    n_on, n_off = onoff.counts.data.sum(), onoff.counts_off.data.sum()
    alpha = float(np.mean(onoff.alpha.data)) if n_off else np.nan
    stat = WStatCountsStatistic(n_on, n_off, alpha)
    return {"n_on": int(n_on), "n_off": int(n_off), "alpha": alpha, "sigma": stat.sqrt_ts}


def gammapy_window_analysis(observation, start, stop, config, center, positions=()):
    """Analyse one window with gammapy (see the module's notes).

    Parameters
    ----------
    observation : `~gammapy.data.Observation`
    start, stop : `~astropy.time.Time`
        The window.
    config : `~rtafast.pipeline.config.PipelineConfig`
    center : `~astropy.coordinates.SkyCoord`
        Centre of the maps (the pipeline's ``map_center``).
    positions : sequence of (ra, dec), deg
        Where to fit and measure on/off besides the peaks found.

    Returns
    -------
    GammapyWindow
    """
    from gammapy.estimators import TSMapEstimator
    from gammapy.estimators.utils import find_peaks

    out = GammapyWindow()
    clock = time.perf_counter()
    dataset, window = _dataset(observation, start, stop, config, center)
    out.seconds["reduce"] = time.perf_counter() - clock
    clock = time.perf_counter()
    dataset.models = _models(dataset, center.ra.deg, center.dec.deg, config)
    estimator = TSMapEstimator(
        model=dataset.models["source"],
        kernel_width=config.detection.kernel_width,
        selection_optional=[],
        sum_over_energy_groups=True,
    )
    dataset.models = dataset.models[1:]  # the background only, as the blind search has it
    maps = estimator.run(dataset)
    out.sqrt_ts_map = maps["sqrt_ts"]
    peaks = find_peaks(
        maps["sqrt_ts"],
        threshold=config.detection.threshold,
        min_distance=config.detection.min_separation,
    )
    for row in peaks[: config.detection.max_candidates]:
        out.peaks.append((float(row["ra"]), float(row["dec"]), float(row["value"])))
    out.seconds["detect"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for ra, dec in [*positions, *((p[0], p[1]) for p in out.peaks)]:
        out.fits[(ra, dec)] = _fit(dataset, ra, dec, config)
    out.seconds["fit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for ra, dec in [*positions, *((p[0], p[1]) for p in out.peaks)]:
        out.onoff[(ra, dec)] = _onoff(window, ra, dec, config)
    out.seconds["photometry"] = time.perf_counter() - clock
    return out
