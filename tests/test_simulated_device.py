"""The simulated cuda backend's arrays refuse what CuPy refuses (no GPU needed).

A real GPU run (2026-12-04, H200) failed on two host/device mix-ups that the plain-NumPy
simulation had let pass; these tests pin the rules that now catch them in CI.
"""

import numpy as np
import pytest

from rtafast_kernels import is_host_array
from rtafast_kernels.simulated_device import (
    DevicePointer,
    SimulatedDeviceArray,
    count_transfers,
    simcupy,
)


def _device(values):
    return simcupy.asarray(np.asarray(values, dtype=np.float64))


def test_upload_copies_and_download_gives_plain_numpy():
    host = np.arange(4.0)
    device = simcupy.asarray(host)
    assert isinstance(device, SimulatedDeviceArray)
    device[0] = 42.0
    assert host[0] == 0.0  # an upload is a copy
    back = simcupy.asnumpy(device)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, [42.0, 1.0, 2.0, 3.0])
    assert type(device.get()) is np.ndarray


@pytest.mark.parametrize(
    "mix",
    [
        lambda d, h: simcupy.where(d > 1, h, 0.0),
        lambda d, h: d + h,
        lambda d, h: h * d,
        lambda d, h: np.where(d > 1, d, h),
        lambda d, h: simcupy.concatenate([d, h]),
        lambda d, h: d - np.float64(1.0) * np.ones(1),
        lambda d, h: simcupy.minimum(d, np.asarray(1.0)),  # 0-d host arrays too
    ],
    ids=["xp.where", "add", "radd", "np.where", "concatenate", "sub", "0-d"],
)
def test_host_arrays_in_device_operations_raise(mix):
    with pytest.raises(TypeError, match="host NumPy array"):
        mix(_device([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))


def test_device_operations_stay_on_the_device():
    device = _device([1.0, 2.0, 3.0])
    for result in (
        device * 2.0 + np.float64(1.0),
        simcupy.where(device > 1.5, device, -np.inf),
        simcupy.zeros(3),
        np.cumsum(device),
        device.reshape(3, 1)[:, 0],
        simcupy.fft.rfft(device),
    ):
        assert isinstance(result, SimulatedDeviceArray)
    assert float(device.sum()) == 6.0
    assert simcupy.float64 is np.float64


def test_data_is_a_pointer_not_the_buffer():
    device = _device([1.0, 2.0])
    assert isinstance(device.data, DevicePointer)
    assert not hasattr(device.data, "shape")


def test_host_arrays_are_told_from_device_arrays():
    assert is_host_array(np.zeros(2))
    assert not is_host_array(_device([0.0, 0.0]))
    assert not is_host_array([0.0, 0.0])


def test_backends_arrays_live_where_they_say(backend):
    """cuda's arrays are device arrays (CuPy, or simulated ones), the others' host arrays."""
    uploaded = backend.asarray(np.arange(3.0))
    assert is_host_array(uploaded) == (backend.name != "cuda")
    assert is_host_array(backend.to_numpy(uploaded))


def test_copies_are_counted():
    """Uploads, downloads and scalar syncs (a reduction stays a 0-d device array)."""
    host = np.arange(4.0)
    with count_transfers() as transfers:
        device = simcupy.asarray(host)
        total = device.sum()
        assert isinstance(total, SimulatedDeviceArray) and total.ndim == 0
        assert float(total) == 6.0
        simcupy.asnumpy(device * 2.0)
    assert [(kind, nbytes) for kind, nbytes, _ in transfers.log] == [
        ("upload", 32),
        ("scalar", 8),
        ("download", 32),
    ]
