"""A stricter stand-in for the GPU under numba's CUDA simulator: device arrays that
CuPy would keep apart from host arrays, and every copy between them counted.

Under the simulator the cuda backend's arrays are NumPy arrays (``backend.xp`` is
NumPy), so nothing tells a device array from a host one. :func:`install` gives the
backend an array module whose arrays are :class:`DeviceArray` (a NumPy subclass) and
which, like CuPy:

* turns a host array into a device array only in ``asarray``/``array``/
  ``ascontiguousarray`` (an *upload*, counted with its bytes);
* refuses host arrays (not 0-d) in any other operation, ufuncs and
  NumPy functions applied to device arrays included;
* gives device arrays back from reductions (0-d), so that ``bool``, ``int``,
  ``float`` or ``item`` of a device value is a *scalar sync*, counted;

and the backend's ``to_numpy`` becomes the *download*, counted with its bytes. What it
cannot see: a device array's element read by indexing (NumPy returns a host scalar),
and ``numpy.asarray`` of a device array (a silent host view; CuPy raises).
"""

import contextlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DeviceArray", "Transfers", "install"]

#: NumPy functions that copy host data to the device when given a host array.
_UPLOADS = ("asarray", "array", "ascontiguousarray", "asanyarray")


@dataclass
class Transfers:
    """Copies between host and device, in order: ``(kind, bytes, what)``."""

    log: list = field(default_factory=list)

    def add(self, kind, nbytes, what):
        self.log.append((kind, int(nbytes), what))

    def of(self, kind):
        return [entry for entry in self.log if entry[0] == kind]

    def clear(self):
        self.log.clear()


_transfers = None


def _is_host(value):
    return isinstance(value, np.ndarray) and not isinstance(value, DeviceArray) and value.ndim > 0


def _check(values, what):
    for value in values:
        if isinstance(value, (list, tuple)):
            _check(value, what)
        elif _is_host(value):
            raise TypeError(f"host array of shape {value.shape} given to device operation {what}")


def _plain(value):
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _device(value):
    if isinstance(value, np.ndarray):
        return value.view(DeviceArray)
    if isinstance(value, np.generic):  # reductions stay on the device (CuPy: 0-d arrays)
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_device(v) for v in value)
    if isinstance(value, list):
        return [_device(v) for v in value]
    return value


class DeviceArray(np.ndarray):
    """An array on the simulated device (see the module's notes)."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _check(inputs, f"{ufunc.__name__}.{method}")
        if out is not None:
            _check(out, f"{ufunc.__name__}.{method} (out)")
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        return _device(result)

    def __array_function__(self, func, types, args, kwargs):
        _check(args, func.__name__)
        _check(tuple(kwargs.values()), func.__name__)
        return _device(func(*_plain(args), **_plain_kwargs(kwargs)))

    def _sync(self, convert):
        _transfers.add("scalar", self.nbytes, "scalar sync")
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


def _plain_kwargs(kwargs):
    return {name: _plain(value) for name, value in kwargs.items()}


class _DeviceModule:
    """NumPy as a device array module (see the module's notes)."""

    def __getattr__(self, name):
        attribute = getattr(np, name)
        if isinstance(attribute, type) or not callable(attribute):
            return attribute  # dtypes, constants, errstate

        def function(*args, **kwargs):
            hosts = [a for a in args if _is_host(a)]
            if name in _UPLOADS and hosts:
                for host in hosts:
                    _transfers.add("upload", host.nbytes, f"xp.{name}")
            else:
                _check(args, f"xp.{name}")
            _check(tuple(kwargs.values()), f"xp.{name}")
            return _device(attribute(*_plain(args), **_plain_kwargs(kwargs)))

        return function


@contextlib.contextmanager
def install(backend, monkeypatch):
    """Give the (simulated) cuda ``backend`` the strict device module; yield the
    :class:`Transfers` log of its copies."""
    global _transfers
    _transfers = Transfers()

    def to_numpy(array):
        if isinstance(array, DeviceArray):
            _transfers.add("download", array.nbytes, "to_numpy")
            return np.array(array.view(np.ndarray))
        return np.asarray(array)

    monkeypatch.setattr(backend, "xp", _DeviceModule())
    monkeypatch.setattr(backend, "to_numpy", to_numpy)
    try:
        yield _transfers
    finally:
        _transfers = None
