"""CuPy's manners for the ``"cuda"`` backend under numba's CUDA simulator.

Under the simulator the "device" is the host, and plain NumPy arrays would do. But CuPy
refuses what NumPy allows, and code written against NumPy's leniency passes every
simulated test and fails on the first GPU (it did on 2026-12-04: a fit handed host
arrays to ``cupy.where``; a counter unwrapped a Map with ``getattr(x, "data", x)``,
which on a CuPy array is its memory pointer). So the simulated backend's arrays are
:class:`SimulatedDeviceArray` and its ``xp`` is :data:`simcupy`, which, like CuPy:

- turn a host array into a device array only in ``asarray``, ``array``,
  ``ascontiguousarray`` (an *upload*: a copy);
- refuse a NumPy array (any shape, 0-d too) in any other operation on device arrays,
  ufuncs and NumPy functions included (``TypeError``); Python and NumPy scalars pass;
- give device arrays back from reductions (0-d), so that ``bool``, ``int``, ``float``
  or ``item`` of a device value is a *scalar sync*;
- have ``.data`` a :class:`DevicePointer`, not the buffer.

:func:`count_transfers` logs every upload, download (``simcupy.asnumpy``, which the
backend's ``to_numpy`` calls) and scalar sync, for tests of what a window moves.
Not imitated: ``np.asarray(device_array)`` (CuPy refuses the implicit download; a NumPy
subclass cannot), an element read by indexing (NumPy returns a host scalar), indexing
with host index arrays (CuPy accepts those).
"""

import contextlib
import types
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DevicePointer", "SimulatedDeviceArray", "Transfers", "count_transfers", "simcupy"]

_UPLOADS = frozenset({"asarray", "ascontiguousarray", "array", "asanyarray"})


@dataclass
class Transfers:
    """Copies between host and device, in order: ``(kind, bytes, what)``; kinds
    ``"upload"``, ``"download"``, ``"scalar"``."""

    log: list = field(default_factory=list)

    def add(self, kind, nbytes, what):
        self.log.append((kind, int(nbytes), what))

    def of(self, kind):
        return [entry for entry in self.log if entry[0] == kind]

    def clear(self):
        self.log.clear()


_transfers = None


@contextlib.contextmanager
def count_transfers():
    """Log the simulated device's copies while the block runs; yield the
    :class:`Transfers`."""
    global _transfers
    saved, _transfers = _transfers, Transfers()
    try:
        yield _transfers
    finally:
        _transfers = saved


def _count(kind, nbytes, what):
    if _transfers is not None:
        _transfers.add(kind, nbytes, what)


class DevicePointer:
    """What ``.data`` of a simulated device array is, as ``cupy.cuda.MemoryPointer``
    is for a CuPy array: an address, with no array interface."""

    def __init__(self, array):
        self.ptr = array.ctypes.data

    def __repr__(self):
        return f"<simulated device pointer 0x{self.ptr:x}>"


class SimulatedDeviceArray(np.ndarray):
    """A NumPy array that stands for a CuPy array (see the module's notes)."""

    @property
    def data(self):
        return DevicePointer(self)

    def get(self):
        """Copy to a host NumPy array (``cupy.ndarray.get``; a download)."""
        _count("download", self.nbytes, "get")
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host((inputs, kwargs.get("out")), f"numpy.{ufunc.__name__}.{method}")
        result = getattr(ufunc, method)(*_to_host_views(inputs), **_to_host_views(kwargs))
        return _to_device(result)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host((args, kwargs), f"numpy.{func.__name__}")
        return _to_device(func(*_to_host_views(args), **_to_host_views(kwargs)))

    def _sync(self, convert):
        _count("scalar", self.nbytes, "scalar sync")
        return convert(self.view(np.ndarray))

    def __bool__(self):
        return self._sync(bool)

    def __int__(self):
        return self._sync(int)

    def __float__(self):
        return self._sync(float)

    def __index__(self):
        return self._sync(lambda a: a.__index__())

    def item(self, *args):
        return self._sync(lambda a: a.item(*args))

    def tolist(self):
        return self._sync(lambda a: a.tolist())


def _refuse_host(value, operation):
    """Raise TypeError where ``value`` (nested lists, tuples, dicts) holds a host array."""
    if isinstance(value, np.ndarray) and not isinstance(value, SimulatedDeviceArray):
        raise TypeError(
            f"{operation}: a host NumPy array {value.shape} in an operation on device arrays"
            " (CuPy refuses it: Unsupported type <class 'numpy.ndarray'>); upload it first"
            " (backend.upload / backend.asarray)"
        )
    if isinstance(value, list | tuple):
        for item in value:
            _refuse_host(item, operation)
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_host(item, operation)


def _to_host_views(value):
    """Plain NumPy views of the device arrays in ``value`` (same memory)."""
    if isinstance(value, SimulatedDeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, list | tuple):
        return type(value)(_to_host_views(item) for item in value)
    if isinstance(value, dict):
        return {key: _to_host_views(item) for key, item in value.items()}
    return value


def _to_device(value):
    """``value`` with its NumPy arrays and scalars as device arrays (CuPy's reductions
    give 0-d arrays)."""
    if isinstance(value, np.ndarray):
        return value.view(SimulatedDeviceArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(SimulatedDeviceArray)
    if isinstance(value, tuple | list):
        return type(value)(_to_device(item) for item in value)
    return value


def _upload(function, name):
    def upload(array, *args, **kwargs):
        _refuse_host((args, kwargs), f"cupy.{name}")
        if isinstance(array, SimulatedDeviceArray):
            return _to_device(function(array.view(np.ndarray), *args, **kwargs))
        if isinstance(array, list | tuple):  # no host arrays inside a sequence
            _refuse_host(array, f"cupy.{name} of a sequence")
            array = _to_host_views(array)
        host = np.array(function(array, *args, **kwargs), copy=True)
        _count("upload", host.nbytes, f"xp.{name}")
        return _to_device(host)

    return upload


def _device_function(function, name):
    def on_device(*args, **kwargs):
        _refuse_host((args, kwargs), f"cupy.{name}")
        return _to_device(function(*_to_host_views(args), **_to_host_views(kwargs)))

    on_device.__name__ = name
    return on_device


class _SimulatedArrayModule:
    """NumPy's namespace with CuPy's rules (the simulated backend's ``xp``)."""

    def __init__(self, module, prefix="cupy"):
        self._module = module
        self._prefix = prefix

    def __getattr__(self, name):
        attribute = getattr(self._module, name)
        if isinstance(attribute, types.ModuleType):
            wrapped = _SimulatedArrayModule(attribute, f"{self._prefix}.{name}")
        elif name in _UPLOADS and self._module is np:
            wrapped = _upload(attribute, name)
        elif callable(attribute) and not isinstance(attribute, type):
            wrapped = _device_function(attribute, f"{self._prefix}.{name}")
        else:
            return attribute  # dtypes, constants, errstate
        setattr(self, name, wrapped)
        return wrapped

    @staticmethod
    def asnumpy(array):
        """Copy to a host NumPy array (``cupy.asnumpy``, a download); host arrays pass."""
        if isinstance(array, SimulatedDeviceArray):
            return array.get()
        return np.asarray(array)

    def __repr__(self):
        return f"<simulated CuPy namespace over {self._module.__name__}>"


#: The simulated ``"cuda"`` backend's array module.
simcupy = _SimulatedArrayModule(np)
