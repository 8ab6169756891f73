"""Drop-in replacement of gammapy 2.1's ``ExcessMapEstimator`` (arrays and a cached exposure)."""

import astropy.units as u
import numpy as np
from gammapy.datasets import MapDataset, MapDatasetOnOff
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.estimators import FluxMaps
from gammapy.estimators.map.excess import convolved_map_dataset_counts_statistics
from gammapy.estimators.utils import apply_threshold_sensitivity
from gammapy.maps import Map, WcsGeom
from gammapy.modeling.models import SkyModel
from gammapy.stats import CashCountsStatistic, WStatCountsStatistic

from rtafast import dispatch
from rtafast.cache.lru import LRUCache
from rtafast.onoff.lima import lima_significance
from rtafast_kernels import resolve_backend

from ..stream.window import StreamWindow
from .convolution import convolve_images
from .excess_inputs import (
    default_cache,
    energy_grouping,
    estimator_mask,
    resample_on_off,
    resample_sum,
)
from .excess_window import pointing_excess_inputs, window_statistics

__all__ = ["ExcessMapEstimator"]


def _convolve(map_, kernel):
    """``map_.convolve(kernel)`` as gammapy computes it, without its process-pool overhead."""
    return map_._init_copy(data=convolve_images(map_.data, kernel))


_reference_models = LRUCache(maxsize=8)


def _reference_model(spectral_model):
    """``SkyModel(spectral_model)``, made once per spectral model object (~1 ms each)."""
    entry = _reference_models.lookup(id(spectral_model))
    if entry is None or entry[0] is not spectral_model:
        entry = (spectral_model, SkyModel(spectral_model))
        _reference_models.store(id(spectral_model), entry)
    return entry[1]


def _delegation_reason(dataset):
    """``(reason code, detail)`` when :meth:`ExcessMapEstimator.run` must run gammapy's code.

    None when it computes the dataset on arrays.
    """
    kind = type(dataset)
    if kind is not MapDataset and kind is not MapDatasetOnOff:
        return "unsupported-dataset", f"a {kind.__name__}, not a MapDataset or MapDatasetOnOff"
    if dataset.counts is None:
        return "unsupported-dataset", "a dataset without counts"
    geom = dataset.counts.geom
    if not isinstance(geom, WcsGeom) or geom.axes.names != ["energy"]:
        return "unsupported-geometry", f"a {type(geom).__name__} with axes {geom.axes.names}"
    expected = "wstat" if kind is MapDatasetOnOff else "cash"
    if dataset.stat_type != expected:
        return "unsupported-dataset", f"a {kind.__name__} with stat_type {dataset.stat_type!r}"
    if kind is MapDatasetOnOff:
        for name in ("counts_off", "acceptance", "acceptance_off"):
            map_ = getattr(dataset, name)
            if map_ is None:
                return "unsupported-dataset", f"a MapDatasetOnOff without {name}"
            if map_.unit != u.dimensionless_unscaled:
                return "unsupported-dataset", f"a MapDatasetOnOff with {name} in {map_.unit}"
    return None


_zero_convolutions = LRUCache(maxsize=8)


def _convolved_zeros(grouping, kernel):
    """``convolve_images`` of zeros (no signal model): computed once per shape and kernel."""

    def compute():
        out = convolve_images(np.zeros(grouping.shape), kernel)
        out.setflags(write=False)
        return out

    return _zero_convolutions.get_or_compute((grouping.shape, kernel.tobytes()), compute)


class _LiMaStatistic(WStatCountsStatistic):
    """gammapy's ``WStatCountsStatistic`` without signal, its TS in Li & Ma's closed form.

    ``ts`` is Li & Ma's eq. 17 squared (:func:`rtafast.onoff.lima.lima_significance`:
    the WStat profile likelihood ratio without a signal model, written in one pass
    instead of gammapy's two WStat evaluations, equal within float64 rounding of the
    statistic's terms) where ``alpha`` is finite and positive and the counts finite
    and non-negative; gammapy's own ``ts`` elsewhere (same NaN/inf pattern). ``n_sig``
    is computed once (gammapy's arithmetic). Used by the non-NumPy backends.
    """

    def __init__(self, n_on, n_off, alpha):
        super().__init__(n_on, n_off, alpha)
        self._n_sig = self.n_on - self.n_bkg - self.mu_sig
        n_on, n_off, alpha = self.n_on, self.n_off, self.alpha
        with np.errstate(invalid="ignore"):
            regular = (alpha > 0) & (alpha < np.inf) & (n_on >= 0) & (n_off >= 0)
            regular &= (n_on < np.inf) & (n_off < np.inf)
        self._ts = lima_significance(n_on, n_off, alpha) ** 2
        if not regular.all():
            irregular = ~regular
            self._ts[irregular] = WStatCountsStatistic(
                n_on[irregular], n_off[irregular], alpha[irregular]
            ).ts

    @property
    def n_sig(self):
        """Excess ``n_on - alpha * n_off`` (gammapy's, computed once)."""
        return self._n_sig

    @property
    def ts(self):
        """TS of the excess (see the class notes)."""
        return self._ts


class ExcessMapEstimator(GammapyExcessMapEstimator):
    """Correlated excess, significance, flux and errors (gammapy 2.1's API and numbers).

    Same constructor and output as `gammapy.estimators.ExcessMapEstimator`
    (Cash or Li & Ma counts statistics within a top-hat ``correlation_radius``),
    plus ``array_backend`` (the backend of the top-hat correlations and, for
    on/off datasets without models, of the Li & Ma statistic) and ``cache``.

    For a `gammapy.datasets.MapDataset` or `gammapy.datasets.MapDatasetOnOff`
    (exactly those classes) with a WCS counts geometry with one ``energy`` axis,
    :meth:`run` works on arrays: counts and ``dataset.npred()`` (models included,
    as gammapy) summed over the energy groups with the safe mask as weights,
    gammapy's masks, top-hat kernel and counts statistics, and the
    kernel-averaged exposure in reconstructed energy from an
    `rtafast.estimators.excess_inputs.ExcessInputCache` (reused while the IRF maps
    and masks are unchanged, rescaled when the exposure is a multiple of the
    cached one: a longer live time of the same pointing). For a
    ``MapDatasetOnOff`` the off counts and acceptances are resampled as
    ``MapDatasetOnOff.resample_energy_axis`` does and the WStat (Li & Ma)
    statistics use gammapy's ``alpha`` (``correlate_off`` or not) and the signal
    of the dataset's models; the ``alpha``, ``acceptance_on`` and
    ``acceptance_off`` maps can be selected. Without an exposure the ``norm`` is
    the excess itself (gammapy's). Every map equals gammapy's within float32
    rounding (bit for bit on a cache miss or without exposure). One difference:
    the results' ``reference_model`` is one `SkyModel` per ``spectral_model``
    object, made at its first use and shared by the results (gammapy makes a new
    one, of the same spectral model object, at every call: ~1 ms).

    Other inputs run gammapy's own ``run`` (with the convolutions below): other
    dataset classes, datasets without counts, a ``MapDatasetOnOff`` without off
    counts or acceptances or with acceptances carrying units, a ``stat_type``
    other than the class's, HEALPix geometries and counts geometries with axes
    other than ``energy``.

    Parameters
    ----------
    correlation_radius, n_sigma, n_sigma_ul, selection_optional, energy_edges, \
correlate_off, spectral_model, sum_over_energy_groups, ...
        As `gammapy.estimators.ExcessMapEstimator` (``correlation_radius`` in deg
        or an angle).
    array_backend : {None, "auto", "numpy", "numba", "cuda"}, optional
        None or ``"numpy"`` (default): scipy's FFT correlations and gammapy's counts
        statistics, gammapy's maps bit for bit (see above). Another backend: the
        correlations of the on/off and Cash statistics run on that backend's kernel
        family ``rtafast_kernels.convolution`` (float64 sums rounded to float32:
        within float32 rounding of scipy's maps; the correlated counts, rounded to
        integers, are equal) and, for an on/off dataset without models, the TS is
        Li & Ma's closed form (:class:`_LiMaStatistic`, equal within float64
        rounding). ``sqrt_ts`` then agrees with gammapy's within ~1e-5 absolute on
        the H.E.S.S. Crab ring maps (``tests/test_ring.py``). The exposure cache's
        entries are computed with scipy on every backend.
    cache : `rtafast.estimators.excess_inputs.ExcessInputCache`, optional
        Cache of the reconstructed-energy exposures; default: the process-wide one.
    """

    tag = "ExcessMapEstimator"

    def __init__(self, *args, array_backend=None, cache=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.array_backend = array_backend
        self.cache = default_cache if cache is None else cache

    @property
    def _fast_arrays(self):
        """Whether the correlations and Li & Ma statistic run off scipy (a non-NumPy backend)."""
        if self.array_backend is None:
            return False
        return resolve_backend(self.array_backend).name != "numpy"

    def _correlate(self, data, kernel):
        """Top-hat correlation of image planes (scipy's, or the backend's: see the notes)."""
        if not self._fast_arrays:
            return convolve_images(data, kernel)
        return convolve_images(data, kernel, array_backend=self.array_backend)

    def run(self, dataset):
        """Correlated excess, significance and flux maps (gammapy's ``run``, same output).

        A `rtafast.stream.StreamWindow` of one observation without models is mapped
        from its counts and its pointing's per-second inputs scaled by its live time
        and on-time (:mod:`rtafast.estimators.excess_window`; the counts come to the
        host for the correlation); other windows as ``run(window.to_dataset())``,
        which the fast path equals up to float32 rounding.

        Parameters
        ----------
        dataset : `gammapy.datasets.MapDataset`, `gammapy.datasets.MapDatasetOnOff` or \
`rtafast.stream.StreamWindow`

        Returns
        -------
        `gammapy.estimators.FluxMaps`
            ``npred``, ``npred_excess``, ``counts``, ``ts``, ``sqrt_ts``, ``norm``,
            ``norm_err`` (dimensionless) and the selected ``norm_errn``,
            ``norm_errp``, ``norm_ul``, ``norm_sensitivity``; NaN outside the mask.
        """
        if isinstance(dataset, StreamWindow):
            return self._run_window(dataset)
        reason = _delegation_reason(dataset)
        if reason is not None:
            dispatch.record("ExcessMapEstimator.run", dispatch.GAMMAPY, *reason)
            return super().run(dataset)
        dispatch.record("ExcessMapEstimator.run", dispatch.FAST)
        grouping = energy_grouping(self, dataset)
        mask = estimator_mask(dataset, grouping)
        if isinstance(dataset, MapDatasetOnOff):
            stat, background, on_off_maps = self._wstat_statistics(dataset, grouping, mask)
        else:
            stat, background = self._counts_statistics(dataset, grouping, mask)
            on_off_maps = {}
        if dataset.exposure is None:
            # gammapy divides by ``Map / 1`` (an astropy Quantity: a float64 one)
            exposure, unit = np.float64(1.0), u.dimensionless_unscaled
        else:
            exposure, unit = self.cache.get(self, dataset, grouping)
        data = self._norm_maps(stat, background, exposure)
        return self._flux_maps(grouping.geom, stat, data, 1 / unit, mask, on_off_maps)

    def _run_window(self, window):
        """The excess map of a stream window (see :meth:`run`)."""
        if window.pointing is None or window.models is not None:
            return self.run(window.to_dataset())
        dispatch.record("ExcessMapEstimator.run", dispatch.FAST)
        inputs = pointing_excess_inputs(self, window.pointing, self.cache)
        stat, background, exposure = window_statistics(inputs, window)
        data = self._norm_maps(stat, background, exposure)
        unit = inputs.exposure.unit
        return self._flux_maps(inputs.grouping.geom, stat, data, 1 / unit, inputs.mask, {})

    def _counts_statistics(self, dataset, grouping, mask):
        """Cash statistics of the kernel-correlated counts and ``npred`` in each group.

        Returns
        -------
        stat : `gammapy.stats.CashCountsStatistic`
        background : ndarray, float64
            ``npred`` summed over the groups (the resampled dataset's background).
        """
        weights = None if dataset.mask_safe is None else dataset.mask_safe.data
        counts = resample_sum(dataset.counts.data, weights, grouping)
        background = resample_sum(dataset.npred().data, weights, grouping)
        kernel = grouping.kernel / grouping.kernel.max()
        n_on_conv = np.rint(self._correlate(counts * mask, kernel))
        background_conv = self._correlate(background * mask, kernel)
        return CashCountsStatistic(n_on_conv, background_conv), background

    def _wstat_statistics(self, dataset, grouping, mask):
        """WStat (Li & Ma) statistics of the kernel-correlated on/off counts in each group.

        gammapy's ``_get_convolved_maps`` of the resampled ``MapDatasetOnOff`` on
        arrays: the on counts, the signal of the dataset's models and, with
        ``correlate_off``, the off counts and the background ``alpha * n_off`` (0
        where ``acceptance_off`` is) correlated, ``alpha`` their ratio; without it,
        ``alpha`` is the correlated on acceptance over the off acceptance.

        Returns
        -------
        stat : `gammapy.stats.WStatCountsStatistic`
        background : ndarray, float64
            ``alpha * counts_off`` of the resampled dataset (its ``background``).
        maps : dict of ndarray
            ``alpha``, ``acceptance_on``, ``acceptance_off`` (the optional outputs).
        """
        weights = None if dataset.mask_safe is None else dataset.mask_safe.data
        counts = resample_sum(dataset.counts.data, weights, grouping)
        on_off = resample_on_off(dataset, grouping)
        kernel = grouping.kernel / grouping.kernel.max()
        n_on_conv = np.rint(self._correlate(counts * mask, kernel))
        n_off = on_off.counts_off * mask
        npred_signal = self._npred_signal(dataset)
        if npred_signal is None:
            npred_signal_conv = _convolved_zeros(grouping, kernel)
        else:
            npred_signal_conv = self._correlate(npred_signal * mask, kernel)
        acceptance_on = on_off.acceptance * mask
        acceptance_off = on_off.acceptance_off * mask
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.correlate_off:
                background = on_off.background * mask
                background[on_off.acceptance_off == 0] = 0.0
                n_off = self._correlate(n_off, kernel)
                alpha = self._correlate(background, kernel) / n_off
            else:
                alpha = self._correlate(acceptance_on, kernel) / acceptance_off
        if npred_signal is None and self._fast_arrays:
            stat = _LiMaStatistic(n_on_conv, n_off, alpha)
        else:
            stat = WStatCountsStatistic(n_on_conv, n_off, alpha, npred_signal_conv)
        maps = {"alpha": alpha, "acceptance_on": acceptance_on, "acceptance_off": acceptance_off}
        return stat, on_off.background, maps

    def _npred_signal(self, dataset):
        """``npred_signal()`` of the resampled dataset with the models, or None without models.

        gammapy evaluates the models on the resampled dataset (its reconstructed
        energy groups, EDisp kernel resampled with the safe mask); the same
        evaluation here, on gammapy's ``MapDataset.resample_energy_axis`` (the on/off
        maps, which the evaluation does not read, are not resampled).
        """
        if not dataset.evaluators:
            return None
        axis = self._get_energy_axis(dataset)
        resampled = MapDataset.resample_energy_axis(dataset, energy_axis=axis, name=dataset.name)
        resampled.models = dataset.models
        return resampled.npred_signal().data

    def _norm_maps(self, stat, background, exposure):
        """Norm, its errors, upper limit and sensitivity arrays (excess / exposure)."""
        data = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            data["norm"] = stat.n_sig / exposure
            data["norm_err"] = stat.error * self.n_sigma / exposure
            selection = self.selection_optional
            if "errn-errp" in selection:
                data["norm_errn"] = stat.compute_errn(self.n_sigma) / exposure
                data["norm_errp"] = stat.compute_errp(self.n_sigma) / exposure
            if "ul" in selection:
                data["norm_ul"] = stat.compute_upper_limit(self.n_sigma_ul) / exposure
            if "sensitivity" in selection:
                excess = stat.n_sig_matching_significance(self.n_sigma_sensitivity)
                if self.apply_threshold_sensitivity:
                    excess = apply_threshold_sensitivity(
                        background,
                        excess,
                        self.gamma_min_sensitivity,
                        self.bkg_syst_fraction_sensitivity,
                    )
                data["norm_sensitivity"] = excess / exposure
        return data

    def _flux_maps(self, geom, stat, norm_data, norm_unit, mask, on_off_maps):
        """gammapy's `FluxMaps` of the statistics and norm arrays, NaN outside the mask."""
        npred = Map.from_geom(geom, data=stat.n_on)
        # ``stat.sqrt_ts`` is ``sign(n_sig) * sqrt(stat.ts)``: the same numbers, with the
        # statistic (two WStat or Cash evaluations) computed once instead of twice
        ts = stat.ts
        maps = {
            "npred": npred,
            "npred_excess": Map.from_geom(geom, data=stat.n_sig),
            "counts": npred,
            "ts": Map.from_geom(geom, data=ts),
            "sqrt_ts": Map.from_geom(geom, data=np.sign(stat.n_sig) * np.sqrt(ts)),
        }
        for name, data in norm_data.items():
            maps[name] = Map.from_geom(geom, data=data, unit=norm_unit)
        if on_off_maps:
            # gammapy's own (set) order of the selected on/off maps
            keys_onoff = set(["alpha", "acceptance_on", "acceptance_off"])
            for key in keys_onoff.intersection(self.selection_optional):
                maps[key] = Map.from_geom(geom, data=on_off_maps[key])
        outside = ~mask
        for map_ in maps.values():
            map_.data[outside] = np.nan
        return FluxMaps.from_maps(
            maps=maps,
            meta=self._meta(),
            reference_model=_reference_model(self.spectral_model),
            sed_type="likelihood",
        )

    def _meta(self):
        meta = {
            "n_sigma": self.n_sigma,
            "n_sigma_ul": self.n_sigma_ul,
            "n_sigma_sensitivity": self.n_sigma_sensitivity,
            "sed_type_init": "likelihood",
        }
        if self.apply_threshold_sensitivity:
            meta["gamma_min_sensitivity"] = self.gamma_min_sensitivity
            meta["bkg_syst_fraction_sensitivity"] = self.bkg_syst_fraction_sensitivity
        return meta

    def estimate_exposure_reco_energy(self, dataset, kernel, mask, reco_exposure):
        """Kernel-averaged exposure in reconstructed energy (gammapy's, shared convolution).

        Used by gammapy's code path (see the class notes).

        Returns
        -------
        `gammapy.maps.Map` or int
            ``conv(exposure) / conv(mask)`` (the unit of ``reco_exposure``), or 1
            without exposure.
        """
        if not dataset.exposure:
            return 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return _convolve(reco_exposure, kernel.data) / _convolve(mask, kernel.data)

    def estimate_excess_map(self, dataset, reco_exposure):
        """Excess and significance maps of one resampled dataset (gammapy's code path).

        Used by gammapy's ``run`` for the inputs :meth:`run` does not compute on
        arrays (see the class notes); the same as gammapy's method, with
        :func:`rtafast.estimators.convolution.convolve_images`.

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
        return FluxMaps.from_maps(
            maps=maps,
            meta=self._meta(),
            reference_model=SkyModel(self.spectral_model),
            sed_type="likelihood",
        )
