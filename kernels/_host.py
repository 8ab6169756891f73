"""Array handling shared by the backends that compute on the host (numpy, numba)."""

import numpy as np

__all__ = ["HostArrays"]


class HostArrays:
    """``asarray``/``to_numpy``/``synchronize`` for backends computing on NumPy arrays."""

    xp = np

    def asarray(self, array):
        """Return ``array`` as a contiguous float64 NumPy array."""
        return np.ascontiguousarray(array, dtype=np.float64)

    def to_numpy(self, array):
        """Return a host NumPy view of a backend array."""
        return np.asarray(array)

    def synchronize(self):
        """Wait for pending work (host computations are synchronous)."""
