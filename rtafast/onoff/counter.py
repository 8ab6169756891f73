"""On/off counts from event lists, bunch by bunch: :class:`OnOffCounter`."""

import logging
from dataclasses import dataclass

import numpy as np
from gammapy.maps import MapAxis, RegionGeom

from rtafast_kernels import resolve_backend

from ..events.binning import event_columns, wrap_longitudes
from .circles import ExactCounter, energy_tolerance, near_circles
from .compiled import compiled_circles
from .lima import OnOffStatistics, alpha_from_acceptance

__all__ = ["OnOffCounter", "OnOffStats"]

log = logging.getLogger(__name__)


@dataclass
class OnOffStats:
    """What happened to the events of :meth:`OnOffCounter.add` calls (summed)."""

    n_events: int = 0
    n_ambiguous: int = 0
    n_invalid: int = 0

    def __iadd__(self, other):
        self.n_events += other.n_events
        self.n_ambiguous += other.n_ambiguous
        self.n_invalid += other.n_invalid
        return self


def _energy_axis(energy_axis):
    if isinstance(energy_axis, MapAxis):
        if energy_axis.name != "energy":
            raise ValueError(f"the energy axis must be named 'energy', got {energy_axis.name!r}")
        return energy_axis
    return MapAxis.from_edges(energy_axis, name="energy", interp="log")


class OnOffCounter:
    """On and off region counts of an event stream, per energy bin, on a backend.

    Each event counts in every region that contains it (gammapy's
    ``CircleSkyRegion.contains(skycoord, wcs)``) and in the energy bin of gammapy's
    ``RegionNDMap.fill_events``; ``counts_off`` is the union of the off regions (an event
    in two overlapping off regions counts once, as in gammapy's compound region), and
    ``counts_off_per_region`` counts each region on its own.

    Parameters
    ----------
    on_region : `~regions.CircleSkyRegion`
    off_regions : list of `~regions.CircleSkyRegion`
    energy_axis : `~gammapy.maps.MapAxis` or `~astropy.units.Quantity`
        Reconstructed energy axis named ``energy`` (edges: a log axis is made).
    array_backend : str or backend, optional
        ``"numpy" | "numba" | "cuda" | "auto"`` (default ``$RTAFAST_BACKEND``).
    on_wcs, off_wcs : `~astropy.wcs.WCS`, optional
        The WCS gammapy tests the regions in: by default those of
        ``RegionGeom(on_region)`` (a spectrum dataset's geometry) and
        ``RegionGeom.from_regions(off_regions)``; the reflected maker passes its
        region finder's.
    acceptance, acceptance_off : float or array, optional
        On and off acceptances (exposure weights) per energy bin; default 1 and the
        number of off regions (gammapy's reflected-regions convention).

    Raises
    ------
    CircleProblem
        A region that is not a `~regions.CircleSkyRegion`, a WCS that is not TAN with
        square pixels (the message says which).
    ValueError
        No off region, an axis that is not named ``energy``.
    """

    def __init__(
        self,
        on_region,
        off_regions,
        energy_axis,
        array_backend=None,
        on_wcs=None,
        off_wcs=None,
        acceptance=None,
        acceptance_off=None,
    ):
        off_regions = list(off_regions)
        if not off_regions:
            raise ValueError("OnOffCounter needs at least one off region (got none)")
        self.axis = _energy_axis(energy_axis)
        self.backend = resolve_backend(array_backend)
        on_wcs = on_wcs if on_wcs is not None else RegionGeom(on_region).wcs
        if off_wcs is None:
            off_wcs = RegionGeom.from_regions(off_regions).wcs
        self.regions = [on_region, *off_regions]
        self.wcss = [on_wcs] + [off_wcs] * len(off_regions)
        compiled = compiled_circles(on_region, off_regions, on_wcs, off_wcs)
        self.rows, self.bounds, self.frame_change = (
            compiled.rows,
            compiled.bounds,
            compiled.frame_change,
        )
        upload = self.backend.upload
        self._circles = {name: upload(rows.T) for name, rows in self.rows.items()}
        self._screens = compiled.screens
        self._bounds = upload(self.bounds)
        self._edges = upload(np.asarray(self.axis.edges.value, dtype=np.float64))
        self._etol = {}
        self._native = {}  # column dtypes -> their native-byte-order dtypes
        self._energy_unit = None
        self.exact = ExactCounter(self.regions, self.wcss, self.axis)
        self.n_off_regions = len(off_regions)
        self.acceptance = 1.0 if acceptance is None else acceptance
        self.acceptance_off = self.n_off_regions if acceptance_off is None else acceptance_off
        self.stats = OnOffStats()
        self.reset()

    def reset(self):
        """Set every count to zero (keeps the regions)."""
        shape = (len(self.regions) + 1, self.axis.nbin)
        self._counts = self.backend.xp.zeros(shape, dtype=self.backend.xp.float64)
        self.stats = OnOffStats()

    def _band(self, sky_dtype):
        loose = self.frame_change and np.dtype(sky_dtype) != np.float64
        return "float32-frame" if loose else "exact"

    def add(self, events):
        """Add the events of one bunch.

        Parameters
        ----------
        events : `~gammapy.data.EventList` or `~astropy.table.Table`
            With ``RA``, ``DEC`` (deg, ICRS) and ``ENERGY`` columns.

        Returns
        -------
        OnOffStats
            This call's events, ambiguous ones (decided with gammapy's arithmetic) and
            invalid ones (NaN/inf: counted nowhere, as gammapy; logged).
        """
        ra, dec, energy = self._columns(events)
        stats = OnOffStats(n_events=len(ra))
        if len(ra):
            etol = self._etol.get(energy.dtype)
            if etol is None:
                etol = self._etol.setdefault(
                    energy.dtype, energy_tolerance(self.axis, energy.dtype)
                )
            band = self._band(ra.dtype)
            upload = self.backend.upload
            ambiguous, n_invalid = self.backend.count_in_circles(
                upload(ra),
                upload(dec),
                upload(energy),
                self._circles[band],
                self._bounds,
                self._screens[band],
                self._edges,
                etol,
                self._counts,
            )
            stats.n_invalid = n_invalid
            stats.n_ambiguous = len(ambiguous)
            if len(ambiguous):
                self._add_exact(ra[ambiguous], dec[ambiguous], energy[ambiguous], band)
            if n_invalid:
                log.warning("%d event(s) with NaN/inf RA, Dec or energy were skipped", n_invalid)
        self.stats += stats
        return stats

    def _columns(self, events):
        """RA, Dec, energy columns: ``event_columns``'s, with less overhead for the usual
        table (columns named ``RA``, ``DEC``, ``ENERGY``, float, energy in the axis's
        unit); any other table goes through ``event_columns`` itself."""
        table = getattr(events, "table", events)
        columns = getattr(table, "columns", {})
        try:
            ra, dec, energy = columns["RA"], columns["DEC"], columns["ENERGY"]
        except KeyError:
            return event_columns(events, self.axis.unit)
        unit = getattr(energy, "unit", None)
        if unit is not self._energy_unit:
            if unit is None or unit != self.axis.unit:
                return event_columns(events, self.axis.unit)
            self._energy_unit = unit
        ra, dec, energy = np.asarray(ra), np.asarray(dec), np.asarray(energy)
        kinds = (ra.dtype, dec.dtype, energy.dtype)
        native = self._native.get(kinds)
        if native is None:
            if any(k.kind != "f" or k.itemsize not in (4, 8) for k in kinds):
                return event_columns(events, self.axis.unit)
            native = self._native.setdefault(kinds, tuple(k.newbyteorder("=") for k in kinds))
        ra, dec, energy = (
            a if a.dtype.isnative and a.flags.c_contiguous else a.astype(kind)
            for a, kind in zip((ra, dec, energy), native, strict=True)
        )
        return wrap_longitudes(ra), dec, energy

    def _add_exact(self, ra, dec, energy, band):
        candidates = near_circles(
            np.asarray(ra, np.float64), np.asarray(dec, np.float64), self.rows[band], self.bounds
        )
        exact = self.exact.counts(ra, dec, energy, candidates)
        self._counts += self.backend.upload(exact, np.float64)

    @property
    def counts(self):
        """All counts, host copy: (n_regions + 1, n_energy); rows on, off 1.., off union."""
        return np.array(self.backend.to_numpy(self._counts))

    @property
    def counts_on(self):
        """On region counts per energy bin (host array)."""
        return self.counts[0]

    @property
    def counts_off(self):
        """Off counts per energy bin: events in the union of the off regions."""
        return self.counts[-1]

    @property
    def counts_off_per_region(self):
        """Off counts per region and energy bin, shape (n_off_regions, n_energy)."""
        return self.counts[1:-1]

    @property
    def alpha(self):
        """``acceptance / acceptance_off`` per energy bin (see :func:`.alpha_from_acceptance`)."""
        return alpha_from_acceptance(self.acceptance, self.acceptance_off, self.axis.nbin)

    def statistics(self, energy_sum=False):
        """Excess, its error and Li & Ma significance (:class:`.OnOffStatistics`).

        ``energy_sum=True``: over all energy bins (alpha weighted as gammapy's
        ``WStatCountsStatistic.sum``).
        """
        stats = OnOffStatistics(self.counts_on, self.counts_off, self.alpha)
        return stats.sum() if energy_sum else stats
