"""Reference backend: vectorised NumPy twins of :mod:`rtafast_kernels.element`."""

import numpy as np

from ._host import HostArrays
from .binning import bin_events_numpy
from .element import TRUNCATION_VALUE
from .prepare import prepare_numpy
from .selection import select_numpy

__all__ = ["NumpyBackend"]


class NumpyBackend(HostArrays):
    """Plain NumPy implementation of the reductions (the reference for tests)."""

    name = "numpy"
    #: Events per ``bin_events`` call (~100 bytes of float64 temporaries per event).
    bin_chunk_events = 1 << 20

    def device_name(self):
        """Return a human-readable description of where this backend computes."""
        from .device import cpu_description

        return cpu_description()

    def prepare(self, counts, fixed, templates):
        """Classify the bins of a Cash problem (vectorised)."""
        return prepare_numpy(counts, fixed, templates)

    def cash_sum(self, counts, mu):
        """Cash statistic ``2 * sum(mu - n ln mu)`` of 1-d arrays (gammapy semantics)."""
        truncated = mu <= TRUNCATION_VALUE
        mu = np.where(truncated, TRUNCATION_VALUE, mu)
        log_term = np.where(counts > 0, counts * np.log(mu), 0.0)
        return float(2.0 * np.sum(mu - log_term))

    def cash_reduce(self, counts, fixed, templates, norms, need_stat):
        """Cash statistic, gradient and Hessian with respect to linear norms.

        Parameters
        ----------
        counts : ndarray, shape (N,)
            Observed counts.
        fixed : ndarray, shape (N,)
            Predicted counts of the components whose norm is fixed.
        templates : ndarray, shape (K, N)
            Predicted counts of each free component at norm 1.
        norms : ndarray, shape (K,)
            Current norms; ``mu = fixed + norms @ templates``.
        need_stat : bool
            Compute the statistic too (it needs a log per bin); NaN otherwise.

        Returns
        -------
        stat : float
            ``2 * sum(mu - n ln mu)`` or NaN.
        grad : ndarray, shape (K,)
            Derivative of the statistic with respect to each norm.
        hess : ndarray, shape (K, K)
            Second derivatives.
        """
        norms = np.asarray(norms, dtype=np.float64)
        mu = fixed + norms @ templates
        live = mu > TRUNCATION_VALUE
        safe_mu = np.where(live, mu, 1.0)
        dmu = np.where(live, 1.0 - counts / safe_mu, 0.0)
        d2mu = np.where(live, counts / (safe_mu * safe_mu), 0.0)
        grad = 2.0 * (templates @ dmu)
        hess = 2.0 * ((templates * d2mu) @ templates.T)
        stat = self.cash_sum(counts, mu) if need_stat else np.nan
        return stat, grad, hess

    def bin_events(self, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
        """Bin events into the flat counts ``cube`` in place.

        Returns a :class:`rtafast_kernels.binning.BinOutcome` (with the counted
        events' bins when ``keep_codes``).
        """
        return bin_events_numpy(lon, lat, energy, params, scaled_edges, cube, keep_codes)

    def scatter_add(self, cube, codes, weight):
        """``cube[codes] += weight`` with repeated codes accumulated."""
        np.add.at(cube, codes, weight)

    def select_events(self, time, energy, ra, dec, params, intervals):
        """Selection code of each event: 1 selected, 0 rejected, 2 ambiguous."""
        return select_numpy(time, energy, ra, dec, params, intervals)

    def ts_scan(self, inputs):
        """TS scan of :class:`rtafast_kernels.tsmap_numpy.TSScanInputs` (vectorised NumPy).

        Returns a host array ``(N_OUTPUTS, npix)``; see :mod:`rtafast_kernels.tsmap_element`.
        """
        from .tsmap_numpy import ts_scan_numpy

        return ts_scan_numpy(inputs)
