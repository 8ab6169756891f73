"""Where a backend's arrays live: the host (numpy, numba) or a CUDA device (cuda).

A backend is one of these array handlers plus the operations of every kernel family,
looked up in :mod:`rtafast_kernels.registry` on first use. This module imports CuPy
only when a :class:`CudaDevice` is created (and not under numba's CUDA simulator).
"""

import os
import platform

import numpy as np

from .launch import BIN_CHUNK_EVENTS, SIMULATED
from .registry import Backend

__all__ = ["CudaDevice", "HostDevice", "cpu_description", "is_host_array"]


def is_host_array(array):
    """True for a NumPy array in host memory (not a CuPy array, nor a simulated device
    array of the ``"cuda"`` backend under numba's CUDA simulator)."""
    from .simulated_device import SimulatedDeviceArray

    return isinstance(array, np.ndarray) and not isinstance(array, SimulatedDeviceArray)


def cpu_description():
    """Return the CPU model name and the number of cores usable by this process."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model} ({cores} cores)"


class HostDevice(Backend):
    """Arrays of the host backends (``"numpy"``, ``"numba"``): NumPy, synchronous."""

    xp = np

    def __init__(self, name):
        super().__init__(name)
        #: Events per ``bin_events`` call (see :data:`rtafast_kernels.launch.BIN_CHUNK_EVENTS`).
        self.bin_chunk_events = BIN_CHUNK_EVENTS[name]

    def device_name(self):
        """Return a human-readable description of where this backend computes."""
        if self.name == "numba":
            import numba

            return f"{cpu_description()}, {numba.get_num_threads()} numba threads"
        return cpu_description()

    def asarray(self, array):
        """Return ``array`` as a contiguous float64 NumPy array."""
        return np.ascontiguousarray(array, dtype=np.float64)

    def upload(self, array, dtype=None):
        """Return a host array as a contiguous array of this backend (here: NumPy).

        The twin of :meth:`CudaDevice.upload`; ``dtype`` defaults to the array's own.
        """
        return np.ascontiguousarray(array, dtype=dtype)

    def to_numpy(self, array):
        """Return a host NumPy view of a backend array."""
        return np.asarray(array)

    def synchronize(self):
        """Wait for pending work (host computations are synchronous)."""


class CudaDevice(Backend):
    """Arrays of the ``"cuda"`` backend: CuPy on the GPU; under numba's CUDA simulator NumPy
    arrays that refuse host arrays as CuPy does (:mod:`rtafast_kernels.simulated_device`)."""

    def __init__(self, name="cuda"):
        super().__init__(name)
        self.bin_chunk_events = BIN_CHUNK_EVENTS[name]
        if SIMULATED:  # NumPy with CuPy's refusals (see simulated_device)
            from .simulated_device import simcupy

            self.xp = simcupy
        else:
            import cupy

            self.xp = cupy

    def device_name(self):
        """Return the GPU's name (or say that the simulator is used)."""
        if SIMULATED:
            return "numba CUDA simulator"
        from numba import cuda

        device = cuda.get_current_device()
        name = device.name.decode() if isinstance(device.name, bytes) else device.name
        return f"{name} (compute capability {device.compute_capability})"

    def asarray(self, array):
        """Return ``array`` as a contiguous float64 array on the device."""
        return self.xp.ascontiguousarray(self.xp.asarray(array, dtype=self.xp.float64))

    def upload(self, array, dtype=None):
        """Copy a host array to the device (contiguous; ``dtype`` defaults to its own).

        The one host-to-device copy of array data in rtafast's window path (the
        per-observation inputs, once per pointing); :meth:`to_numpy` the one copy back.
        """
        return self.xp.ascontiguousarray(self.xp.asarray(array, dtype=dtype))

    def to_numpy(self, array):
        """Copy a device array to a host NumPy array."""
        return self.xp.asnumpy(array)

    def synchronize(self):
        """Wait until the GPU finished all queued work."""
        if not SIMULATED:
            self.xp.cuda.get_current_stream().synchronize()
