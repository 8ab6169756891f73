"""Drop-in replacement of gammapy 2.1's ``ExcessMapEstimator`` (shared convolutions)."""

import numpy as np
from gammapy.datasets import MapDatasetOnOff
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.estimators import FluxMaps
from gammapy.estimators.map.excess import convolved_map_dataset_counts_statistics
from gammapy.estimators.utils import apply_threshold_sensitivity
from gammapy.maps import Map
from gammapy.modeling.models import SkyModel

from .convolution import convolve_images

__all__ = ["ExcessMapEstimator"]


def _convolve(map_, kernel):
    """``map_.convolve(kernel)`` as gammapy computes it, without its process-pool overhead."""
    return map_._init_copy(data=convolve_images(map_.data, kernel))


class ExcessMapEstimator(GammapyExcessMapEstimator):
    """Correlated excess, significance, flux and errors (gammapy 2.1's API and numbers).

    Same constructor and output as `gammapy.estimators.ExcessMapEstimator`
    (Cash or Li & Ma counts statistics within a top-hat ``correlation_radius``),
    plus ``backend`` for API symmetry with `rtafast.estimators.TSMapEstimator`
    (the counts statistics are vectorised NumPy on every backend). The image
    convolutions are :func:`rtafast.estimators.convolution.convolve_images`
    (gammapy's FFT convolution, float32 results); ``MapDatasetOnOff`` inputs run
    gammapy's own code.

    Parameters
    ----------
    correlation_radius, n_sigma, n_sigma_ul, selection_optional, energy_edges, \
correlate_off, spectral_model, sum_over_energy_groups, ...
        As `gammapy.estimators.ExcessMapEstimator` (``correlation_radius`` in deg
        or an angle).
    backend : {None, "auto", "numpy", "numba", "cuda"}, optional
        Accepted for symmetry; unused.
    """

    tag = "ExcessMapEstimator"

    def __init__(self, *args, backend=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.backend = backend

    def estimate_exposure_reco_energy(self, dataset, kernel, mask, reco_exposure):
        """Kernel-averaged exposure in reconstructed energy (gammapy's, shared convolution).

        Returns
        -------
        `gammapy.maps.Map` or int
            ``conv(exposure) / conv(mask)`` in cm2 s, or 1 without exposure.
        """
        if not dataset.exposure:
            return 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return _convolve(reco_exposure, kernel.data) / _convolve(mask, kernel.data)

    def estimate_excess_map(self, dataset, reco_exposure):
        """Excess and significance maps of one dataset (see gammapy's method).

        Parameters
        ----------
        dataset : `gammapy.datasets.MapDataset`
        reco_exposure : `gammapy.maps.Map` or None

        Returns
        -------
        `gammapy.estimators.FluxMaps`
        """
        if isinstance(dataset, MapDatasetOnOff):
            return super().estimate_excess_map(dataset, reco_exposure)
        kernel = self.estimate_kernel(dataset)
        kernel_data = kernel.data / kernel.data.max()
        geom = dataset.counts.geom
        mask = self.estimate_mask_default(dataset)
        n_on = dataset.counts * mask
        convolved_maps = {
            "n_on_conv": np.rint(_convolve(n_on, kernel_data).data),
            "background_conv": _convolve(dataset.npred() * mask, kernel_data),
        }
        stat = convolved_map_dataset_counts_statistics(convolved_maps, dataset.stat_type)
        maps = {}
        maps["npred"] = Map.from_geom(geom, data=stat.n_on)
        maps["npred_excess"] = Map.from_geom(geom, data=stat.n_sig)
        maps["counts"] = maps["npred"]
        maps["ts"] = Map.from_geom(geom, data=stat.ts)
        maps["sqrt_ts"] = Map.from_geom(geom, data=stat.sqrt_ts)
        reco_exposure = self.estimate_exposure_reco_energy(dataset, kernel, mask, reco_exposure)
        selection = self.selection_optional
        with np.errstate(invalid="ignore", divide="ignore"):
            maps["norm"] = maps["npred_excess"] / reco_exposure
            maps["norm_err"] = Map.from_geom(geom, data=stat.error * self.n_sigma) / reco_exposure
            if "errn-errp" in selection:
                errn = stat.compute_errn(self.n_sigma)
                errp = stat.compute_errp(self.n_sigma)
                maps["norm_errn"] = Map.from_geom(geom, data=errn) / reco_exposure
                maps["norm_errp"] = Map.from_geom(geom, data=errp) / reco_exposure
            if "ul" in selection:
                ul = stat.compute_upper_limit(self.n_sigma_ul)
                maps["norm_ul"] = Map.from_geom(geom, data=ul) / reco_exposure
            if "sensitivity" in selection:
                excess = stat.n_sig_matching_significance(self.n_sigma_sensitivity)
                if self.apply_threshold_sensitivity:
                    excess = apply_threshold_sensitivity(
                        dataset.background.data,
                        excess,
                        self.gamma_min_sensitivity,
                        self.bkg_syst_fraction_sensitivity,
                    )
                maps["norm_sensitivity"] = Map.from_geom(geom, data=excess) / reco_exposure
        for name in maps:
            maps[name].data[~mask] = np.nan
        meta = {
            "n_sigma": self.n_sigma,
            "n_sigma_ul": self.n_sigma_ul,
            "n_sigma_sensitivity": self.n_sigma_sensitivity,
            "sed_type_init": "likelihood",
        }
        if self.apply_threshold_sensitivity:
            meta["gamma_min_sensitivity"] = self.gamma_min_sensitivity
            meta["bkg_syst_fraction_sensitivity"] = self.bkg_syst_fraction_sensitivity
        return FluxMaps.from_maps(
            maps=maps,
            meta=meta,
            reference_model=SkyModel(self.spectral_model),
            sed_type="likelihood",
        )
