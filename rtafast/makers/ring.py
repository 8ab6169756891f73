"""Drop-in ring background makers (gammapy 2.1's API and numbers, arrays underneath).

`RingBackgroundMaker.run` makes gammapy's ``MapDatasetOnOff`` from a ``MapDataset``:
``counts_off`` and ``acceptance_off`` are the counts and the predicted background, both
multiplied by the exclusion mask reprojected onto the dataset's geometry, convolved with
the ring kernel (astropy's ``Ring2DKernel`` normalised to its peak, as gammapy); the
``acceptance`` is ``dataset.npred_background()``; the safe mask is switched off where
``acceptance_off <= 0``. The two convolutions run on the array backend's kernel family
``rtafast_kernels.convolution`` in one call; the exclusion mask's reprojection and the
ring kernel are computed once per geometry; the maps are built from arrays without
``Map`` arithmetic.

`AdaptiveRingBackgroundMaker` runs gammapy's own code (counted as a delegation,
reason ``adaptive-ring``).
"""

from typing import NamedTuple

import numpy as np
from gammapy.datasets import MapDataset, MapDatasetOnOff
from gammapy.makers import AdaptiveRingBackgroundMaker as GammapyAdaptiveRingBackgroundMaker
from gammapy.makers import RingBackgroundMaker as GammapyRingBackgroundMaker
from gammapy.maps import Map, WcsGeom

from rtafast import dispatch
from rtafast.cache.lru import LRUCache
from rtafast_kernels import resolve_backend

__all__ = ["RingBackgroundMaker", "AdaptiveRingBackgroundMaker", "RingInputError"]

ENTRY = "RingBackgroundMaker.run"


class RingInputError(ValueError):
    """A dataset or exclusion mask the ring background cannot be made from (named)."""


class _Exclusion(NamedTuple):
    #: The exclusion mask object and a copy of its data (the entry is valid while equal).
    mask: object
    mask_data: np.ndarray
    #: The dataset geometry it was reprojected onto.
    geom: object
    #: The reprojected mask, shape of the geometry's data (gammapy's values and dtype).
    data: np.ndarray


_exclusions = LRUCache(maxsize=8)
_rings = LRUCache(maxsize=8)


def _delegation_reason(dataset):
    """``(reason code, detail)`` when :meth:`RingBackgroundMaker.run` runs gammapy's code."""
    if type(dataset) is not MapDataset:
        return (
            "ring-unsupported-dataset",
            f"a {type(dataset).__name__}, not a MapDataset",
        )
    counts = dataset.counts
    if counts is not None and not isinstance(counts.geom, WcsGeom):
        return "unsupported-geometry", f"a {type(counts.geom).__name__}"
    return None


def _check_dataset(dataset):
    """Raise :class:`RingInputError` for a dataset gammapy would fail on or fill with NaN."""
    name = dataset.name
    if dataset.counts is None:
        raise RingInputError(f"RingBackgroundMaker: dataset {name!r} has no counts map")
    if dataset.background is None:
        raise RingInputError(
            f"RingBackgroundMaker: dataset {name!r} has no background map (the off "
            "acceptance is the background convolved with the ring); make it with "
            "MapDatasetMaker(selection=[..., 'background'])"
        )
    if dataset.mask_safe is None:
        raise RingInputError(
            f"RingBackgroundMaker: dataset {name!r} has no safe mask (gammapy's maker "
            "switches it off where the off acceptance is 0); set one, e.g. with SafeMaskMaker"
        )


def _finite(data, what, name):
    bad = data.size - np.count_nonzero(np.isfinite(data))
    if bad:
        raise RingInputError(
            f"RingBackgroundMaker: the {what} of dataset {name!r} has {bad} non-finite "
            "values (the ring's FFT convolution would spread NaN over the whole map)"
        )


def _like(map_, data):
    """A map of ``map_``'s geometry (shared), unit and meta (copied) holding ``data``."""
    meta = None if map_.meta is None else dict(map_.meta)
    return Map.from_geom(map_.geom, data=data, unit=map_.unit, meta=meta)


def _reprojected_exclusion(mask, geom, name):
    """The exclusion mask on ``geom``: gammapy's ``get_by_coord`` of the pixel centres, cached.

    Raises
    ------
    RingInputError
        If some pixels of ``geom`` lie outside the mask's geometry (gammapy would put
        NaN there, and its FFT convolutions would make every off map NaN).
    """
    key = (id(mask), id(geom))  # the entries hold both objects: their ids stay theirs
    entry = _exclusions.lookup(key)
    if entry is not None and not (
        entry.mask is mask and entry.geom is geom and np.array_equal(entry.mask_data, mask.data)
    ):
        entry = None
    if entry is None:  # an equal geometry (a new object) reuses the reprojection
        for _, candidate in _exclusions.items():
            if (
                candidate.mask is mask
                and np.array_equal(candidate.mask_data, mask.data)
                and candidate.geom == geom
            ):
                entry = candidate._replace(geom=geom)
                break
    if entry is None:
        data = mask.get_by_coord(geom.get_coord())
        data.setflags(write=False)
        entry = _Exclusion(mask, mask.data.copy(), geom, data)
    _exclusions.store(key, entry)
    if entry.data.dtype.kind == "f":
        outside = np.count_nonzero(np.isnan(entry.data))
        if outside:
            raise RingInputError(
                f"RingBackgroundMaker: {outside} of {entry.data.size} pixels of dataset "
                f"{name!r} lie outside the exclusion mask's geometry; give an exclusion "
                "mask that covers the dataset (gammapy would make off maps of NaN)"
            )
    return entry.data


class RingBackgroundMaker(GammapyRingBackgroundMaker):
    """Ring background (gammapy 2.1's `~gammapy.makers.RingBackgroundMaker`, same numbers).

    Parameters
    ----------
    r_in : `~astropy.units.Quantity` or str
        Inner ring radius (an angle).
    width : `~astropy.units.Quantity` or str
        Ring width (an angle).
    exclusion_mask : `~gammapy.maps.WcsNDMap`, optional
        Exclusion mask (True where the sky may be used for the background).
    array_backend : {None, "auto", "numpy", "numba", "cuda"}, optional
        Backend of the two ring convolutions. ``"numpy"`` is scipy's FFT as gammapy calls
        it (bit for bit); numba sums the ring's runs directly, cuda uses cuFFT with the
        ring's spectrum cached (both within float32 rounding of gammapy's maps).

    Notes
    -----
    :meth:`run` works on arrays for a `~gammapy.datasets.MapDataset` with a WCS
    geometry. Other dataset classes and HEALPix or region geometries run gammapy's
    ``run`` (counted by `rtafast.dispatch`). Differences from gammapy, on bad input
    only: a dataset without counts, background or safe mask, non-finite counts or
    background, and an exclusion mask that does not cover the dataset's geometry raise
    `RingInputError` (gammapy raises an ``AttributeError``/``TypeError`` or returns
    off maps of NaN).
    """

    tag = "RingBackgroundMaker"

    def __init__(self, r_in, width, exclusion_mask=None, array_backend=None):
        super().__init__(r_in=r_in, width=width, exclusion_mask=exclusion_mask)
        self.array_backend = array_backend

    def _ring_array(self, counts):
        """gammapy's ring kernel array for the counts map's pixel size (cached per size).

        Keyed by the radii and the WCS's pixel matrix (``cdelt`` and ``pc``, which
        determine gammapy's ``pixel_scales``; reading them costs microseconds where
        ``pixel_scales`` costs ~0.2 ms).
        """
        wcs = counts.geom.wcs.wcs
        key = (
            float(self.r_in.deg),
            float(self.width.deg),
            str(wcs.cunit[0]),
            wcs.get_cdelt().tobytes(),
            wcs.get_pc().tobytes(),
        )

        def compute():
            array = np.array(self.kernel(counts).array)
            array.setflags(write=False)
            return array

        return _rings.get_or_compute(key, compute)

    def _exclusion(self, geom, name):
        """The exclusion mask on ``geom`` (an all-True array without a mask)."""
        if self.exclusion_mask is None:
            return np.ones(geom.data_shape, dtype=bool)
        return _reprojected_exclusion(self.exclusion_mask, geom, name)

    def make_maps_off(self, dataset):
        """Off counts and off acceptance maps (gammapy's, computed on arrays).

        Parameters
        ----------
        dataset : `~gammapy.datasets.MapDataset`

        Returns
        -------
        dict of `~gammapy.maps.WcsNDMap`
            ``counts_off`` and ``acceptance_off`` (float32).
        """
        if _delegation_reason(dataset) is not None:
            return super().make_maps_off(dataset)
        _check_dataset(dataset)
        return self._maps_off(dataset, dataset.npred_background())

    def _maps_off(self, dataset, background):
        counts = dataset.counts
        geom = counts.geom
        _finite(counts.data, "counts", dataset.name)
        _finite(background.data, "predicted background", dataset.name)
        exclusion = self._exclusion(geom, dataset.name)
        ring = self._ring_array(counts)
        backend = resolve_backend(self.array_backend)
        dtype = np.result_type(counts.data, exclusion)
        if dtype == np.result_type(background.data, exclusion):
            # both products written into one stack (no copy by np.stack)
            planes = np.empty((2,) + counts.data.shape, dtype=dtype)
            np.multiply(counts.data, exclusion, out=planes[0])
            np.multiply(background.data, exclusion, out=planes[1])
            off = backend.to_numpy(backend.convolve_planes(planes, ring))
            counts_off, acceptance_off = off[0], off[1]
        else:  # each as gammapy transforms it (scipy keeps a float32 image in float32)
            counts_excluded = counts.data * exclusion
            background_excluded = background.data * exclusion
            counts_off = backend.to_numpy(backend.convolve_planes(counts_excluded, ring))
            acceptance_off = backend.to_numpy(backend.convolve_planes(background_excluded, ring))
        return {
            "counts_off": _like(counts, counts_off),
            "acceptance_off": _like(background, acceptance_off),
        }

    def run(self, dataset, observation=None):
        """Ring background of a dataset: gammapy's ``MapDatasetOnOff``.

        Parameters
        ----------
        dataset : `~gammapy.datasets.MapDataset`
            Input map dataset (counts, background and safe mask).
        observation : `~gammapy.data.Observation`, optional
            Unused (as gammapy).

        Returns
        -------
        `~gammapy.datasets.MapDatasetOnOff`
            ``counts_off`` and ``acceptance_off`` (the ring sums, float32),
            ``acceptance`` (``dataset.npred_background()``), and the safe mask switched
            off where ``acceptance_off <= 0``.

        Raises
        ------
        RingInputError
            See the class notes.
        """
        reason = _delegation_reason(dataset)
        if reason is not None:
            dispatch.record(ENTRY, dispatch.GAMMAPY, *reason)
            return super().run(dataset, observation)
        _check_dataset(dataset)
        dispatch.record(ENTRY, dispatch.FAST)
        background = dataset.npred_background()
        maps_off = self._maps_off(dataset, background)
        maps_off["acceptance"] = background
        mask = dataset.mask_safe
        mask_data = mask.data.copy()
        mask_data[maps_off["acceptance_off"].data <= 0] = 0
        mask_safe = _like(mask, mask_data)
        dataset_on_off = MapDatasetOnOff.from_map_dataset(
            dataset=dataset, name=dataset.name, **maps_off
        )
        dataset_on_off.mask_safe = mask_safe
        return dataset_on_off


class AdaptiveRingBackgroundMaker(GammapyAdaptiveRingBackgroundMaker):
    """gammapy 2.1's `~gammapy.makers.AdaptiveRingBackgroundMaker`, counted.

    :meth:`run` is gammapy's (recorded by `rtafast.dispatch` as a delegation with the
    reason ``adaptive-ring``): the adaptive ring's cube of ring sizes is not on the
    kernel family yet.
    """

    def run(self, dataset, observation=None):
        """gammapy's adaptive ring background (see the class notes)."""
        dispatch.record(
            "AdaptiveRingBackgroundMaker.run",
            dispatch.GAMMAPY,
            "adaptive-ring",
            "the adaptive ring runs gammapy's code",
        )
        return super().run(dataset, observation)
