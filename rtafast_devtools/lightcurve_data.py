"""Real-data datasets of the light-curve tests and benchmarks (gammapy's reduction only).

* the PKS 2155-304 flare (H.E.S.S. DL3 DR1 runs 33787-33801): 1D reflected on/off
  datasets, on region 0.11 deg, reco energy 0.4-20 TeV (10 bins), true energy
  0.1-40 TeV (20 bins), safe mask aeff-max 10 %, containment correction — the
  reference analysis of ``estimators/pks2155_hess_lc/config.yaml`` and gammapy's
  light_curve_flare tutorial; per run or per time slice (``observations.select_time``);
* the four Crab runs as one 3D ``MapDataset`` per run (FoV background), for 3D light
  curves.
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.time import Time
from regions import CircleSkyRegion

from .reference_data import (
    CRAB_POSITION,
    HESS_CRAB_RUNS,
    _axes,
    _data_subdir,
    _get_observations,
)

__all__ = [
    "PKS2155_POSITION",
    "PKS2155_FLARE_RUNS",
    "FLARE_START",
    "flare_time_intervals",
    "pks2155_model",
    "pks2155_onoff_datasets",
    "crab_model",
    "crab_run_map_datasets",
]

#: PKS 2155-304 (ICRS), as the reference analysis.
PKS2155_POSITION = SkyCoord(329.71693826, -30.2255890, unit="deg", frame="icrs")
#: The 15 runs of the July 2006 flare.
PKS2155_FLARE_RUNS = tuple(range(33787, 33802))
#: Start of the reference analysis' light curve (UTC).
FLARE_START = "2006-07-29T20:30:00"


def flare_time_intervals(n_bins=34, minutes=10.0, start=FLARE_START):
    """``n_bins`` consecutive intervals of ``minutes`` from ``start`` (a list of ``Time`` pairs)."""
    edges = Time(start) + np.arange(n_bins + 1) * minutes * u.min
    return [Time([t_min, t_max]) for t_min, t_max in zip(edges[:-1], edges[1:], strict=True)]


def pks2155_model():
    """The reference analysis' source: power law, index 3.4, 2e-11 cm-2 s-1 TeV-1 at 1 TeV."""
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    spectral = PowerLawSpectralModel(
        index=3.4, amplitude=2e-11 * u.Unit("cm-2 s-1 TeV-1"), reference=1 * u.TeV
    )
    return SkyModel(spectral_model=spectral, name="pks2155")


def pks2155_onoff_datasets(data_dir=None, runs=PKS2155_FLARE_RUNS, time_intervals=None):
    """1D on/off datasets of the flare runs: one per run, or one per run and time slice.

    Parameters
    ----------
    data_dir : str or Path, optional
        The shared data folder (found when None).
    runs : sequence of int
        H.E.S.S. run numbers.
    time_intervals : list of astropy.time.Time, optional
        Cut the runs into these slices first (``Observations.select_time``), as
        gammapy's light_curve_flare tutorial does.

    Returns
    -------
    gammapy.datasets.Datasets
        ``SpectrumDatasetOnOff`` named ``"<run>"`` or ``"<run>_<slice start MJD>"``,
        with the `pks2155_model` attached.
    """
    from gammapy.data import DataStore
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.makers import (
        ReflectedRegionsBackgroundMaker,
        SafeMaskMaker,
        SpectrumDatasetMaker,
    )
    from gammapy.maps import MapAxis, RegionGeom

    root = _data_subdir(data_dir, "hess-dl3-dr1")
    observations = _get_observations(DataStore.from_dir(root), runs, root)
    if time_intervals is not None:
        observations = observations.select_time(time_intervals)
    energy = MapAxis.from_energy_bounds("0.4 TeV", "20 TeV", nbin=10)
    energy_true = MapAxis.from_energy_bounds("0.1 TeV", "40 TeV", nbin=20, name="energy_true")
    on_region = CircleSkyRegion(center=PKS2155_POSITION, radius=Angle("0.11 deg"))
    empty = SpectrumDataset.create(
        geom=RegionGeom.create(region=on_region, axes=[energy]), energy_axis_true=energy_true
    )
    maker = SpectrumDatasetMaker(
        containment_correction=True, selection=["counts", "exposure", "edisp"]
    )
    background = ReflectedRegionsBackgroundMaker()
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10)
    datasets = Datasets()
    for observation in observations:
        name = str(observation.obs_id)
        if time_intervals is not None:
            name += f"_{observation.gti.time_start[0].mjd:.6f}"
        dataset = maker.run(empty.copy(name=name), observation)
        dataset = background.run(dataset, observation)
        datasets.append(safe.run(dataset, observation))
    datasets.models = pks2155_model()
    return datasets


def crab_model():
    """Point source at the Crab: power law, index 2.6, 4e-11 cm-2 s-1 TeV-1 at 1 TeV."""
    from gammapy.modeling.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    spectral = PowerLawSpectralModel(
        index=2.6, amplitude=4e-11 * u.Unit("cm-2 s-1 TeV-1"), reference=1 * u.TeV
    )
    spatial = PointSpatialModel.from_position(CRAB_POSITION)
    return SkyModel(spectral_model=spectral, spatial_model=spatial, name="crab")


def crab_run_map_datasets(data_dir=None, runs=HESS_CRAB_RUNS, width_deg=1.5):
    """One 3D ``MapDataset`` per Crab run (0.02 deg pixels, 1-10 TeV in 6 bins).

    Safe mask offset-max 2.5 deg + aeff-default, FoV background scaled with a 0.3 deg
    exclusion around the Crab; models: `crab_model` and a ``FoVBackgroundModel``
    per dataset (norm as fitted by the maker, frozen as the light curve freezes it).
    """
    from gammapy.data import DataStore
    from gammapy.datasets import Datasets, MapDataset
    from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import WcsGeom
    from gammapy.modeling.models import FoVBackgroundModel, Models

    root = _data_subdir(data_dir, "hess-dl3-dr1")
    observations = _get_observations(DataStore.from_dir(root), runs, root)
    energy, energy_true = _axes()
    geom = WcsGeom.create(
        skydir=CRAB_POSITION, binsz=0.02, width=(width_deg, width_deg), axes=[energy]
    )
    maker = MapDatasetMaker()
    safe = SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=2.5 * u.deg)
    exclusion = ~geom.to_image().region_mask([CircleSkyRegion(CRAB_POSITION, 0.3 * u.deg)])
    fov = FoVBackgroundMaker(method="scale", exclusion_mask=exclusion)
    datasets = Datasets()
    models = [crab_model()]
    for observation in observations:
        name = str(observation.obs_id)
        empty = MapDataset.create(geom, energy_axis_true=energy_true, name=name)
        dataset = safe.run(maker.run(empty, observation), observation)
        dataset.models = FoVBackgroundModel(dataset_name=name)
        dataset = fov.run(dataset)
        models.append(dataset.models[0])
        datasets.append(dataset)
    datasets.models = Models(models)
    return datasets
