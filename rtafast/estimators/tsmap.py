"""Drop-in replacement of gammapy 2.1's ``TSMapEstimator`` with rtafast's TS-scan kernels."""

import astropy.units as u
import numpy as np
from gammapy.datasets import Datasets
from gammapy.estimators import FluxMaps
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator
from gammapy.maps import Map, Maps

from rtafast import dispatch
from rtafast_kernels import resolve_backend
from rtafast_kernels.tsmap.element import OUTPUT_NAMES

from ..stream.window import StreamWindow
from . import ts_kernel
from .ts_inputs import build_scan_inputs, default_cache, squashed_geom
from .ts_window import pointing_layers, window_fallback, window_scan_inputs

__all__ = ["TSMapEstimator"]

#: Selections that rtafast's kernels do not compute: gammapy's per-pixel loop runs.
DELEGATED_SELECTIONS = ("stat_scan", "sensitivity")


class TSMapEstimator(GammapyTSMapEstimator):
    """TS map of a point-like or small extended source, fitted pixel by pixel on a backend.

    Same constructor arguments, conventions and output as
    `gammapy.estimators.TSMapEstimator` (gammapy 2.1), plus ``array_backend`` and
    ``cache``. ``run(dataset)`` returns a `gammapy.estimators.FluxMaps` with
    gammapy's keys and units (``ts``, ``sqrt_ts``, ``norm``/``flux``/...,
    ``norm_err``, ``npred``, ``npred_excess``, ``niter``, ``success``, ``stat``,
    ``stat_null`` and, when selected, ``norm_errn``, ``norm_errp``, ``norm_ul``).

    Padding, downsampling, energy grouping, the masks (of any dtype) and the
    initial flux map are gammapy's; the kernel and the reconstructed-energy
    exposures are gammapy's numbers computed from the IRF arrays
    (:mod:`rtafast.estimators.ts_kernel`; gammapy's functions for the cases it
    does not cover) and cached per IRF content: the IRF maps and mask are
    compared with the cached entries' at every call, and a multiple of them -- a
    longer live time of the same pointing -- rescales the exposures, see
    :mod:`rtafast.estimators.ts_inputs`. Joint maps of datasets whose kernels
    differ in shape are computed too. The per-pixel fits run on the backend's
    ``ts_scan`` kernel (:mod:`rtafast_kernels.tsmap.element`).

    Differences from gammapy:

    * none in the numbers of the fit: each pixel's norm is found by scipy's brentq,
      step for step, as gammapy calls it (``rtol`` is brentq's relative
      tolerance, ``xtol`` 2e-12, ``max_niter`` its ``maxiter``, gammapy's bracket,
      ``norm = max(root, norm_min_total)``), so the default ``rtol = 0.01`` gives
      gammapy's numbers (a norm within ~1 % of the likelihood minimum) and
      ``niter``/``success`` are brentq's iterations and converged flag (a failed
      brentq: the physical limit, ``max_niter``, False, as in gammapy); a small
      ``rtol`` (e.g. 1e-10) gives the minimum to rounding. ``norm_errn``,
      ``norm_errp`` and ``norm_ul`` are gammapy's brentq searches on its brackets
      (see `rtafast_kernels.tsmap.element`); values differ from gammapy's only by
      the rounding of the sums;
    * the initial flux map (gammapy's starting point) is only computed with a
      ``threshold``, which it decides; without one each fit starts at norm 0;
    * maps are float64 (gammapy's are float32);
    * ``selection_optional`` with ``"stat_scan"`` or ``"sensitivity"`` runs
      gammapy's own per-pixel loop (``array_backend`` is then unused).

    Parameters
    ----------
    kernel_model, kernel_width, downsampling_factor, n_sigma, n_sigma_ul, \
n_sigma_sensitivity, threshold, rtol, selection_optional, energy_edges, \
sum_over_energy_groups, n_jobs, parallel_backend, norm, max_niter
        As `gammapy.estimators.TSMapEstimator` (``kernel_width`` in deg or an
        angle; ``rtol``: brentq's relative tolerance, see above; ``max_niter``:
        brentq's ``maxiter`` of each per-pixel root search).
    array_backend : {None, "auto", "numpy", "numba", "cuda"}, optional
        rtafast backend (see `rtafast_kernels.resolve_backend`).
    cache : `rtafast.estimators.ts_inputs.TSInputCache`, optional
        Kernel and exposure cache; default: the process-wide one.
    """

    tag = "TSMapEstimator"

    def __init__(self, *args, array_backend=None, cache=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.array_backend = array_backend
        self.cache = default_cache if cache is None else cache

    def estimate_kernel(self, dataset):
        """Kernel map of the source model for a dataset (gammapy's numbers, computed from
        the IRF arrays by :func:`rtafast.estimators.ts_kernel.estimate_kernel`; cached by
        content).

        Parameters
        ----------
        dataset : `gammapy.datasets.MapDataset`

        Returns
        -------
        `gammapy.maps.Map`
            Kernel, normalised to unit sum in each energy bin.
        """
        return self.cache.get(self, dataset)[0]

    def run(self, datasets):
        """Compute the TS map (same call and output as gammapy's ``run``).

        Without downsampling and energy groups, the datasets are neither padded
        nor sliced (the scan arrays are padded instead); otherwise gammapy's
        ``run`` does padding, downsampling and grouping around
        :meth:`estimate_flux_map`.

        A `rtafast.stream.StreamWindow` of one observation is mapped from its counts
        on the backend and its pointing's per-second inputs scaled by its live time
        and on-time (:mod:`rtafast.estimators.ts_window`): on ``"cuda"`` only the
        results come to the host. Other windows (several observations, models, a
        threshold, downsampling or energy groups) are mapped as
        ``run(window.to_dataset())``, which the fast path equals up to rounding.

        Parameters
        ----------
        datasets : `gammapy.datasets.MapDataset`, `gammapy.datasets.Datasets` or \
`rtafast.stream.StreamWindow`
            Datasets with the same image geometry and Cash statistic, or a window.

        Returns
        -------
        `gammapy.estimators.FluxMaps`
        """
        if isinstance(datasets, StreamWindow):
            return self._run_window(datasets)
        selection = set(self.selection_optional or ())
        delegated = sorted(selection & set(DELEGATED_SELECTIONS))
        if delegated:
            dispatch.record(
                "TSMapEstimator.run",
                dispatch.GAMMAPY,
                f"selection-{delegated[0].replace('_', '-')}",
            )
            return super().run(datasets)
        dispatch.record("TSMapEstimator.run", dispatch.FAST)
        simple = (self.downsampling_factor in (None, 1)) and self.energy_edges is None
        if not simple:
            return super().run(datasets)  # gammapy's padding and grouping, rtafast's fits
        datasets = Datasets(datasets)
        geom_ref = datasets[0].counts.geom
        for dataset in datasets:
            if dataset.stat_type != "cash":
                raise TypeError(f"{type(dataset)} is not a valid type for {self.__class__}")
            if dataset.counts.geom.to_image() != geom_ref.to_image():
                raise TypeError("Datasets geometries must match")
        if self.kernel_width is None:
            widths = [np.max(self.estimate_kernel(d).geom.width) for d in datasets]
            self.kernel_width = np.max(u.Quantity(widths))
        return self._flux_maps(self.estimate_flux_map(datasets), datasets[-1].gti)

    def _run_window(self, window):
        """The TS map of a stream window (see :meth:`run`)."""
        if window_fallback(self, window) is not None:
            return self.run(window.to_dataset())
        dispatch.record("TSMapEstimator.run", dispatch.FAST)
        backend = window.backend
        if self.kernel_width is None:
            kernel = pointing_layers(self, window.pointing, self.cache, backend).kernel
            self.kernel_width = np.max(kernel.geom.width)
        layers = pointing_layers(self, window.pointing, self.cache, backend)
        if not layers.positions[0].size:
            raise ValueError(
                "No valid positions found. Check that the dataset background is defined and "
                "not only zeros, or that the mask is not all False."
            )
        out = backend.ts_scan(window_scan_inputs(layers, window, **self._scan_options()))
        geom = squashed_geom(window.geom)
        return self._flux_maps(
            _result_maps(out, layers.positions, geom, self.selection_all), window.gti
        )

    def _scan_options(self):
        """The options of :class:`rtafast_kernels.tsmap.inputs.TSScanInputs`."""
        selection = set(self.selection_optional or ())
        return dict(
            threshold=0.0 if self.threshold is None else float(self.threshold),
            use_threshold=self.threshold is not None,
            n_sigma=float(self.n_sigma),
            n_sigma_ul=float(self.n_sigma_ul),
            rtol=float(self.rtol),
            max_niter=int(self.max_niter),
            want_errs="errn-errp" in selection,
            want_ul="ul" in selection,
        )

    def _flux_maps(self, result, gti):
        """gammapy's ``FluxMaps`` of the per-quantity images of :meth:`estimate_flux_map`."""
        maps = Maps()
        for name in self.selection_all:
            maps[name] = result[name]
        maps["success"].data = maps["success"].data.astype(bool)
        meta = {"n_sigma": self.n_sigma, "n_sigma_ul": self.n_sigma_ul}
        return FluxMaps(data=maps, reference_model=self.kernel_model, gti=gti, meta=meta)

    def _compute_kernel(self, dataset):
        return ts_kernel.estimate_kernel(self, dataset)

    def estimate_flux_map(self, datasets):
        """Fit every valid pixel of one energy group on the backend.

        Parameters
        ----------
        datasets : `gammapy.datasets.Datasets`
            Padded (and downsampled) datasets sharing the image geometry.

        Returns
        -------
        dict of `gammapy.maps.Map`
            One image per quantity of ``selection_all`` (NaN at pixels not fitted).
        """
        selection = set(self.selection_optional or ())
        if selection & set(DELEGATED_SELECTIONS):
            return super().estimate_flux_map(datasets)
        impl = resolve_backend(self.array_backend)
        inputs, positions, ring = build_scan_inputs(
            self, datasets, self.cache, self.sum_over_energy_groups, **self._scan_options()
        )
        out = impl.ts_scan(inputs)
        if ring is not None:  # kernels padded to a common shape: gammapy's footprints
            for name in ("stat", "stat_null"):
                out[OUTPUT_NAMES.index(name)] -= 2.0 * ring[0]
            out[OUTPUT_NAMES.index("npred")] -= ring[1]
        geom = squashed_geom(datasets[0].counts.geom)
        return _result_maps(out, positions, geom, self.selection_all)


def _result_maps(out, positions, geom, names):
    """One image per quantity ``names`` from the scan's rows (NaN at pixels not fitted).

    Parameters
    ----------
    out : ndarray, shape (N_OUTPUTS, npix)
        Host array, rows in ``OUTPUT_NAMES`` order.
    positions : (ndarray, ndarray)
        ``(y, x)`` of the fitted pixels.
    geom : `gammapy.maps.WcsGeom`
        Image geometry of the maps.
    names : list of str

    Returns
    -------
    dict of `gammapy.maps.Map`
    """
    y, x = positions
    names = list(names)
    rows = [OUTPUT_NAMES.index(name) for name in names]
    ny, nx = geom.data_shape[-2:]
    data = np.full((len(names), 1, ny, nx), np.nan)
    data.reshape(len(names), -1)[:, y * nx + x] = out[rows]
    return {name: Map.from_geom(geom, data=data[i], unit="") for i, name in enumerate(names)}
