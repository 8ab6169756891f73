"""Every CUDA kernel compiles for a real GPU, without a GPU.

numba's CUDA simulator (how CI runs the cuda backend) executes the kernels as
Python: it accepts code that real ``numba.cuda`` cannot type or lower (a tuple of
arrays it does not support, a Python object, a shared array of a non-constant
shape). This test closes that gap on a machine without a GPU:

1. the cuda backend runs small inputs under the simulator, and every kernel launch
   records the numba types of its arguments (float32 and float64 event columns,
   every reduction, binning, selection, scatter-add and the TS scan);
2. a subprocess *without* the simulator compiles each kernel for each recorded
   signature to PTX (``numba.cuda.compile_ptx``, compute capabilities 8.0 and 9.0:
   A100, H100/H200), which runs numba's real CUDA typing and NVVM.

NVVM and NVRTC come from the ``nvidia-cuda-nvcc-cu12`` and ``nvidia-cuda-nvrtc-cu12``
wheels (the ``test`` extra installs them); without them the test skips and says so.
It does not replace running on a GPU (``ci/gpu-bench.sh``): launches, memory and
numbers are only checked there.
"""

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numba
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from gammapy.data import EventList
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion

import rtafast_kernels as rk
from rtafast.events.binning import fill_counts
from rtafast.events.selection import select_events
from rtafast.onoff.counter import OnOffCounter
from rtafast_kernels.tsmap.inputs import TSScanInputs

#: Compute capabilities compiled for (A100; H100 and H200).
CCS = ((8, 0), (9, 0))

pytestmark = pytest.mark.skipif(
    not numba.config.ENABLE_CUDASIM,
    reason="records launches under the CUDA simulator; on a GPU node the gpu tests compile",
)


def _describe(value):
    """A JSON description of a kernel argument's numba type."""
    if isinstance(value, np.ndarray):
        layout = "C" if value.flags.c_contiguous else ("F" if value.flags.f_contiguous else "A")
        return ["array", value.dtype.str, value.ndim, layout]
    if isinstance(value, tuple):
        return ["tuple", [_describe(item) for item in value]]
    return ["scalar", np.dtype(str(numba.typeof(value))).str]


def _kernels():
    """``{(module, name): kernel}`` of every (non-device) CUDA kernel."""
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    found = {}
    for info in pkgutil.walk_packages(rk.__path__, prefix="rtafast_kernels."):
        module_name = info.name.removeprefix("rtafast_kernels.")
        module = importlib.import_module(f"rtafast_kernels.{module_name}")
        for name, value in vars(module).items():
            if isinstance(value, FakeCUDAKernel) and not value._device:
                found[(module_name, name)] = value
    return found


class _Recording:
    """Stands in for a simulated kernel; records each launch's argument types."""

    def __init__(self, kernel, signatures):
        self._kernel = kernel
        self._signatures = signatures

    def __getitem__(self, config):
        launch = self._kernel[config]

        def run(*args):
            signature = json.dumps([_describe(arg) for arg in args])
            self._signatures.add(signature)
            return launch(*args)

        return run


def _record_launches(monkeypatch):
    """Record the argument types of every CUDA kernel launch from now on."""
    recorded = {}
    for (module_name, name), kernel in _kernels().items():
        signatures = recorded.setdefault(f"{module_name}.{name}", set())
        module = importlib.import_module(f"rtafast_kernels.{module_name}")
        monkeypatch.setattr(module, name, _Recording(kernel, signatures))
    return recorded


def _events(dtype, n=40, seed=1):
    rng = np.random.default_rng(seed)
    table = Table(
        {
            "RA": (83.6 + rng.normal(0, 0.5, n)).astype(dtype),
            "DEC": (22.0 + rng.normal(0, 0.5, n)).astype(dtype),
            "ENERGY": (10 ** rng.uniform(-1, 1.5, n)).astype(dtype),
        }
    )
    table["TIME"] = Time(60000.0, format="mjd", scale="tt") + rng.uniform(0, 100, n) * u.s
    table["RA"].unit, table["DEC"].unit, table["ENERGY"].unit = "deg", "deg", "TeV"
    table.meta.update({"MJDREFI": 60000, "MJDREFF": 0.0, "TIMESYS": "TT"})
    return EventList(table)


def _ts_inputs(ny=4, nx=3, k=3, layers=2):
    rng = np.random.default_rng(2)
    shape = (layers, ny + k - 1, nx + k - 1)
    g = np.exp(-((np.arange(k) - k // 2) ** 2) / 2.0)
    ktab = np.stack([np.outer(g, g), np.outer(g, g) ** 2])
    py, px = np.mgrid[:ny, :nx]
    return TSScanInputs(
        counts=rng.poisson(1.0, shape).astype(float),
        background=rng.uniform(0.2, 1.0, shape),
        expo=rng.uniform(0.5, 1.5, shape),
        kidx=rng.integers(0, 2, shape).astype(np.int32),
        ktab=ktab / ktab.sum(axis=(1, 2), keepdims=True),
        pix_y=py.ravel().astype(np.int64),
        pix_x=px.ravel().astype(np.int64),
        guess=np.full(ny * nx, 0.5),
        rtol=1e-8,
        max_niter=50,
    )


def _exercise_cuda_backend():
    """Call every kernel of the cuda backend on small inputs (simulated)."""
    backend = rk.resolve_backend("cuda")
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, 64).astype(float)
    fixed = rng.uniform(0.5, 2.0, 64)
    templates = rng.uniform(0.0, 1.0, (2, 64))
    backend.cash_sum(counts, fixed)
    backend.cash_reduce(counts, fixed, templates, np.array([1.0, 0.5]), True)
    geom = WcsGeom.create(
        skydir=SkyCoord(83.6, 22.0, unit="deg"),
        width=2.0,
        binsz=0.1,
        axes=[MapAxis.from_energy_bounds(0.1, 30, 4, unit="TeV")],
        frame="icrs",
        proj="TAN",
    )
    start = Time(60000.0, format="mjd", scale="tt")
    for dtype in (np.float32, np.float64):
        events = _events(dtype)
        fill_counts(geom, events, array_backend="cuda")
        select_events(
            events,
            [(start + 10 * u.s, start + 60 * u.s)],
            (0.5 * u.TeV, 10 * u.TeV),
            (SkyCoord(83.6, 22.0, unit="deg"), 0.8 * u.deg),
            array_backend="cuda",
        )
    cube = backend.xp.zeros(10)
    backend.scatter_add(cube, np.array([1, 3, 3], dtype=np.int64), 1.0)
    backend.ts_scan(_ts_inputs())
    backend.wstat_reduce(counts, counts, np.full(64, 0.2), fixed, 1.0)
    series = rng.poisson(3.0, (3, 16)).astype(np.float64)
    alpha, out = np.full(3, 0.2), np.zeros((3, 16))
    backend.stretch_lima(series, series, alpha, 0, out)
    backend.cusum(series, series, alpha, np.full((3, 16), 10.0), 1.0, out)
    backend.lift(series, series, alpha, np.full((3, 16), 10.0), np.ones((2, 16)), 0, out)
    rk.fit_norm_rows(series, fixed[:16], templates[0, :16], backend)
    on = CircleSkyRegion(SkyCoord(83.6, 22.0, unit="deg"), 0.3 * u.deg)
    off = CircleSkyRegion(SkyCoord(84.6, 22.0, unit="deg"), 0.3 * u.deg)
    counter = OnOffCounter(on, [off], geom.axes["energy"], array_backend="cuda")
    for dtype in (np.float32, np.float64):
        counter.add(_events(dtype))


@pytest.fixture(scope="module")
def recorded_launches():
    """Argument types of every kernel launch of :func:`_exercise_cuda_backend`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        launches = _record_launches(monkeypatch)
        _exercise_cuda_backend()
    return {name: sorted(signatures) for name, signatures in launches.items()}


def test_exercise_launches_every_kernel(recorded_launches):
    assert set(recorded_launches) == {f"{m}.{n}" for m, n in _kernels()}
    missing = sorted(name for name, signatures in recorded_launches.items() if not signatures)
    assert not missing, f"kernels never launched by the exercise: {missing}"
    binning = recorded_launches["binning.gpu._bin_kernel"]
    assert len(binning) == 2  # float32 and float64 event columns


def _ptxas():
    """Path of NVIDIA's PTX assembler (the ``nvidia-cuda-nvcc-cu12`` wheel's), or None."""
    try:
        from nvidia import cuda_nvcc
    except ImportError:
        return shutil.which("ptxas")
    candidate = Path(next(iter(cuda_nvcc.__path__))) / "bin" / "ptxas"
    return str(candidate) if candidate.exists() else shutil.which("ptxas")


def _assemble(ptxas, ptx, cc):
    """Assemble PTX for ``sm_<cc>``; return (registers per thread, static shared bytes)."""
    done = subprocess.run(
        [ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", "-o", os.devnull, ptx],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"ptxas failed on {ptx}:\n{done.stderr[-3000:]}"
    registers = [int(n) for n in re.findall(r"Used (\d+) registers", done.stderr)]
    shared = [int(n) for n in re.findall(r"(\d+) bytes smem", done.stderr)]
    assert registers, done.stderr
    return max(registers), max(shared, default=0)


@pytest.mark.parametrize("cc", CCS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_every_cuda_kernel_compiles_for_a_real_gpu(recorded_launches, cc, tmp_path):
    """Typing, lowering and NVVM for every recorded launch; then ptxas: the kernel
    assembles and one block of the backend's size fits an SM's registers (64 Ki) and
    static shared memory (48 KiB)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    request = {"kernels": recorded_launches, "cc": cc, "ptx_dir": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_ptx_compile.py"))],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if "unavailable" in report:
        pytest.skip(
            "numba.cuda cannot compile to PTX here (install nvidia-cuda-nvcc-cu12 and "
            f"nvidia-cuda-nvrtc-cu12): {report['unavailable']}"
        )
    results = report["results"]
    assert len(results) == sum(len(v) for v in recorded_launches.values())
    failures = {key: entry for key, entry in results.items() if entry["error"]}
    assert not failures, "\n".join(
        f"{key} {entry['signature']}: {entry['error']}" for key, entry in failures.items()
    )
    ptxas = _ptxas()
    if ptxas is None:
        pytest.skip("PTX compiled; ptxas not found, so not assembled")
    for key, entry in results.items():
        registers, shared = _assemble(ptxas, entry["ptx"], cc)
        print(f"{key}: {registers} registers/thread, {shared} B static shared memory")
        assert registers * entry["threads"] <= 65536, key
        assert shared <= 48 * 1024, key
