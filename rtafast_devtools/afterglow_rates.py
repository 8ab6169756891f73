"""Count rates of an afterglow study from the CTAO prod5 IRF, computed by gammapy.

For an on region (a circle of ``on_radius`` at ``offset`` from the pointing) gammapy's
``SpectrumDatasetMaker`` (exposure with the PSF containment in the region, energy
dispersion, the IRF's background model) gives, per second of live time:

* ``signal``: the counts of a power law ``amplitude * (E / 1 TeV) ** -index`` with
  ``amplitude = 1e-10 cm-2 s-1 TeV-1`` (``npred_signal`` summed over the reconstructed
  energies), and
* ``background``: the background counts in the region.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

__all__ = ["REFERENCE_AMPLITUDE", "AfterglowRates", "prod5_rates"]

#: The amplitude of :attr:`AfterglowRates.signal` (cm-2 s-1 TeV-1 at 1 TeV).
REFERENCE_AMPLITUDE = 1e-10


@dataclass(frozen=True)
class AfterglowRates:
    """Counts per second of live time in the on region (see the module docstring)."""

    signal: float
    background: float
    irf: str
    energy_min_tev: float
    energy_max_tev: float
    index: float
    offset_deg: float
    on_radius_deg: float


def prod5_rates(irf_path, energy_min=0.1, energy_max=10.0, index=2.2, offset=0.7,
                on_radius=0.1):
    """:class:`AfterglowRates` from a prod5 IRF file (energies in TeV, angles in deg)."""
    from gammapy.data import Observation
    from gammapy.datasets import SpectrumDataset
    from gammapy.irf import load_irf_dict_from_file
    from gammapy.makers import SpectrumDatasetMaker
    from gammapy.maps import MapAxis, RegionGeom
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
    from regions import CircleSkyRegion

    irfs = load_irf_dict_from_file(irf_path)
    source = SkyCoord(0.0, 0.0, unit="deg", frame="icrs")
    pointing = SkyCoord(0.0, offset, unit="deg", frame="icrs")
    observation = Observation.create(pointing=pointing, livetime=1 * u.s, irfs=irfs)
    energy = MapAxis.from_energy_bounds(energy_min, energy_max, 12, unit="TeV")
    energy_true = MapAxis.from_energy_bounds(energy_min / 2, energy_max * 2, 40, unit="TeV",
                                             name="energy_true")
    geom = RegionGeom.create(CircleSkyRegion(source, on_radius * u.deg), axes=[energy])
    empty = SpectrumDataset.create(geom, energy_axis_true=energy_true)
    maker = SpectrumDatasetMaker(selection=["exposure", "edisp", "background"],
                                 containment_correction=True)
    dataset = maker.run(empty, observation)
    spectrum = PowerLawSpectralModel(index=index, reference="1 TeV",
                                     amplitude=f"{REFERENCE_AMPLITUDE} cm-2 s-1 TeV-1")
    dataset.models = [SkyModel(spectral_model=spectrum, name="afterglow")]
    return AfterglowRates(
        signal=float(np.sum(dataset.npred_signal().data)),
        background=float(np.sum(dataset.background.data)),
        irf=str(irf_path.name if hasattr(irf_path, "name") else irf_path),
        energy_min_tev=energy_min, energy_max_tev=energy_max, index=index,
        offset_deg=offset, on_radius_deg=on_radius,
    )
