"""Simulated datasets that need no external data: the demo and the offline tests.

:func:`analytic_cta_irfs` builds a CTA-like instrument response from formulas
(gammapy's CTAO effective-area parametrisation, a Gaussian PSF and energy
dispersion, a power-law background falling off with offset);
:func:`simulate_dataset` reduces an observation with it through gammapy's
``MapDatasetMaker`` and draws Poisson counts from the model prediction with
``MapDataset.fake``. With ``irf_file`` it uses a real GADF IRF instead (e.g. the
CTAO prod5 files in the shared data).
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

__all__ = ["analytic_cta_irfs", "simulate_dataset", "point_source_models", "DEMO_POSITION"]

#: Default simulated source position (ICRS), near the Crab.
DEMO_POSITION = SkyCoord(83.633, 22.014, unit="deg", frame="icrs")


def _psf_sigma_deg(energy_tev):
    """68 %-like PSF width of a CTA-like array: ~0.1 deg at 1 TeV, 0.04 deg at 10 TeV."""
    return np.clip(0.1 * np.asarray(energy_tev) ** -0.4, 0.03, 0.3)


def analytic_cta_irfs():
    """Return a CTA-like IRF dict (``aeff``, ``edisp``, ``psf``, ``bkg``) built from formulas.

    Returns
    -------
    dict
        gammapy IRF objects, as ``load_irf_dict_from_file`` returns them.
    """
    from gammapy.irf import PSF3D, Background3D, EffectiveAreaTable2D, EnergyDispersion2D
    from gammapy.maps import MapAxis

    energy_true = MapAxis.from_energy_bounds(0.03, 200, 40, unit="TeV", name="energy_true")
    offset = MapAxis.from_bounds(0, 5, 11, unit="deg", name="offset")
    aeff_1d = EffectiveAreaTable2D.from_parametrization(energy_true, instrument="CTAO")
    offset_factor = np.exp(-0.5 * (offset.center.to_value("deg") / 2.5) ** 2)
    aeff = EffectiveAreaTable2D(
        axes=[energy_true, offset],
        data=aeff_1d.data[:, :1] * offset_factor[None, :],
        unit=aeff_1d.unit,
    )

    migra = MapAxis.from_bounds(0.2, 5, 150, unit="", name="migra")
    edisp = EnergyDispersion2D.from_gauss(
        energy_axis_true=energy_true, migra_axis=migra, offset_axis=offset, bias=0, sigma=0.1
    )

    rad = MapAxis.from_bounds(0, 1.0, 200, unit="deg", name="rad")
    sigma = np.deg2rad(_psf_sigma_deg(energy_true.center.to_value("TeV")))
    rad_rad = rad.center.to_value("rad")
    sigma = sigma[:, None]
    profile = np.exp(-0.5 * (rad_rad[None, :] / sigma) ** 2) / (2 * np.pi * sigma**2)
    psf = PSF3D(
        axes=[energy_true, offset, rad],
        data=np.repeat(profile[:, None, :], offset.nbin, axis=1),
        unit="sr-1",
    )

    energy = MapAxis.from_energy_bounds(0.03, 200, 40, unit="TeV", name="energy")
    fov_lon = MapAxis.from_bounds(-5, 5, 41, unit="deg", name="fov_lon")
    fov_lat = MapAxis.from_bounds(-5, 5, 41, unit="deg", name="fov_lat")
    lon, lat = np.meshgrid(fov_lon.center.value, fov_lat.center.value, indexing="ij")
    radial = np.exp(-0.5 * (lon**2 + lat**2) / 2.5**2)
    spectrum = 2e-3 * energy.center.to_value("TeV") ** -2.7
    bkg = Background3D(
        axes=[energy, fov_lon, fov_lat],
        data=spectrum[:, None, None] * radial[None, :, :],
        unit="s-1 MeV-1 sr-1",
    )
    return {"aeff": aeff, "edisp": edisp, "psf": psf, "bkg": bkg}


def simulate_dataset(
    position=DEMO_POSITION,
    livetime="30 min",
    amplitude="2e-12 cm-2 s-1 TeV-1",
    index=2.6,
    width_deg=2.5,
    binsz_deg=0.02,
    n_energy=6,
    irf_file=None,
    offset_deg=0.5,
    random_state=0,
    name="simulated",
):
    """Simulate a binned dataset of a point source observed in wobble mode.

    Parameters
    ----------
    position : `~astropy.coordinates.SkyCoord`
        Source position; the pointing is ``offset_deg`` north of it.
    livetime : str or `~astropy.units.Quantity`
        Observation live time.
    amplitude : str or `~astropy.units.Quantity`
        Power-law amplitude at 1 TeV (cm-2 s-1 TeV-1).
    index : float
        Power-law index.
    width_deg, binsz_deg : float
        Map width and pixel size, deg.
    n_energy : int
        Reconstructed-energy bins between 1 and 10 TeV (true energy: 0.5-20 TeV, 2x bins).
    irf_file : path, optional
        A GADF IRF file (e.g. prod5); default: :func:`analytic_cta_irfs`.
    offset_deg : float
        Pointing offset from the source, deg.
    random_state : int
        Seed of the Poisson draw.
    name : str
        Dataset name.

    Returns
    -------
    dataset : `~gammapy.datasets.MapDataset`
        With counts drawn from the true models, which are attached as
        ``dataset.models`` (amplitude free, index and position frozen,
        FoV background norm frozen).
    """
    from gammapy.data import FixedPointingInfo, Observation
    from gammapy.datasets import MapDataset
    from gammapy.irf import load_irf_dict_from_file
    from gammapy.makers import MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom

    irfs = load_irf_dict_from_file(irf_file) if irf_file else analytic_cta_irfs()
    pointing = SkyCoord(position.icrs.ra, position.icrs.dec + offset_deg * u.deg, frame="icrs")
    observation = Observation.create(
        pointing=FixedPointingInfo(fixed_icrs=pointing),
        livetime=u.Quantity(livetime),
        irfs=irfs,
    )
    energy = MapAxis.from_energy_bounds(1, 10, n_energy, unit="TeV")
    energy_true = MapAxis.from_energy_bounds(0.5, 20, 2 * n_energy, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=position,
        binsz=binsz_deg,
        width=(width_deg, width_deg),
        frame="icrs",
        axes=[energy],
    )
    empty = MapDataset.create(geom, energy_axis_true=energy_true, name=name)
    maker = MapDatasetMaker(selection=["exposure", "background", "psf", "edisp"])
    dataset = maker.run(empty, observation)
    dataset = SafeMaskMaker(methods=["offset-max"], offset_max=2.5 * u.deg).run(
        dataset, observation
    )
    models = point_source_models(dataset, position, index=index, amplitude=amplitude)
    dataset.models = models
    dataset.fake(random_state=random_state)
    return dataset


def point_source_models(
    dataset, position, index=2.6, amplitude="1e-11 cm-2 s-1 TeV-1", background_norm_free=False
):
    """Point source with a power law of fixed index and position, plus FoV background.

    Only the amplitude is free (and the background norm if asked): the flux-only
    fit of real-time analysis.
    """
    from gammapy.modeling.models import (
        FoVBackgroundModel,
        Models,
        PointSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )

    spectral = PowerLawSpectralModel(index=index, amplitude=amplitude, reference="1 TeV")
    spectral.index.frozen = True
    spatial = PointSpatialModel.from_position(position)
    spatial.lon_0.frozen = True
    spatial.lat_0.frozen = True
    background = FoVBackgroundModel(dataset_name=dataset.name)
    background.spectral_model.norm.frozen = not background_norm_free
    return Models([SkyModel(spectral, spatial, name="source"), background])
