"""Physical floors of the benchmarks (rtafast_devtools.bench_floors) and their plot."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rtafast_devtools import bench_floors as bf
from rtafast_devtools.bench import plot_rows

CPU = "AMD EPYC (2 cores)"
NUMBA = "AMD EPYC (2 cores), 2 numba threads"

# The size labels exactly as benchmarks/test_bench_*.py build them, and what they mean.
LABELS = [
    ("flux-only fit", "crab 6x125x125, amplitude", {"n_bins": 93750, "n_norms": 1}),
    ("flux-only fit", "crab 6x125x125, amplitude+bkgnorm", {"n_bins": 93750, "n_norms": 2}),
    ("select+bin", f"{10**6:.0e} events 10x200x200", {"n_events": 10**6, "n_bins": 400_000}),
    ("select+bin", f"{10**7:.0e} events 10x200x200", {"n_events": 10**7, "n_bins": 400_000}),
    ("accumulate bunch", "1e4 events into 10x200x200", {"n_events": 10**4, "n_bins": 400_000}),
    (
        "ts map",
        "crab 125x125x6, kernel 15x15",
        {"ny": 125, "nx": 125, "ky": 15, "kx": 15, "n_energy": 6},
    ),
    (
        "ts scan kernel",
        f"map {1024}^2, kernel {41}^2",
        {"ny": 1024, "nx": 1024, "ky": 41, "kx": 41, "n_energy": 1},
    ),
    (
        "excess map",
        "crab 125x125x6, r=0.1 deg",
        {"ny": 125, "nx": 125, "n_energy": 6, "radius_pix": 5.0},
    ),
]

# increasing sizes of each capability's work function
SWEEPS = {
    "flux-only fit": [{"n_bins": n, "n_norms": 1} for n in (10, 10**3, 10**5)]
    + [{"n_bins": 10**5, "n_norms": k} for k in (2, 3)],
    "select+bin": [{"n_events": n, "n_bins": 400_000} for n in (10, 10**4, 10**7)],
    "accumulate bunch": [{"n_events": n, "n_bins": 400_000} for n in (10, 10**4, 10**6)],
    "ts map": [
        {"ny": n, "nx": n, "ky": k, "kx": k, "n_energy": 1} for n, k in ((8, 3), (64, 9), (256, 21))
    ],
    "ts scan kernel": [
        {"ny": n, "nx": n, "ky": 9, "kx": 9, "n_energy": e} for n, e in ((64, 1), (64, 4), (256, 4))
    ],
    "excess map": [
        {"ny": n, "nx": n, "n_energy": 6, "radius_pix": r} for n, r in ((32, 2), (125, 5), (512, 5))
    ],
}


@pytest.fixture(autouse=True)
def fixed_peaks(monkeypatch):
    """Peak figures from the environment: no measurement in the tests."""
    monkeypatch.setenv("RTAFAST_PEAK_GFLOPS_CORE", "50")
    monkeypatch.setenv("RTAFAST_PEAK_GBS_CORE", "20")
    monkeypatch.setenv("RTAFAST_PEAK_GBS", "30")


@pytest.mark.parametrize(("capability", "size", "expected"), LABELS)
def test_parser_handles_each_benchmark_label(capability, size, expected):
    assert bf.parse_size(capability, size) == expected
    work = bf.problem_work(capability, expected)
    assert work.flops > 0 and work.bytes > 0 and work.size > 0 and work.size_unit


@pytest.mark.parametrize(
    ("capability", "size"),
    [
        ("flux-only fit", "crab"),
        ("accumulate bunch", "1e4"),
        ("select+bin", "many events"),
        ("ts map", "crab 125x125x6, r=0.1 deg"),
        ("new capability", "1e+06 events 10x200x200"),
        ("excess map", None),
    ],
)
def test_unknown_labels_have_no_floor(capability, size):
    assert bf.parse_size(capability, size) is None
    row = {"capability": capability, "size": size, "backend": "numba", "rtafast_median_s": 1.0}
    bf.add_floors([row])
    assert row["floor_arith_s"] is None and row["floor_bw_s"] is None and row["size_x"] is None


@pytest.mark.parametrize("capability", list(SWEEPS))
def test_work_positive_and_monotone_in_size(capability):
    works = [bf.problem_work(capability, params) for params in SWEEPS[capability]]
    for work in works:
        assert work.flops > 0 and work.bytes > 0
    for small, large in zip(works, works[1:], strict=False):
        assert large.flops > small.flops
        assert large.bytes > small.bytes
        assert large.size >= small.size
    peaks = bf.cpu_peaks(1)
    floors = [bf.floors(work, peaks) for work in works]
    assert all(arith > 0 and bandwidth > 0 for arith, bandwidth in floors)
    for small, large in zip(floors, floors[1:], strict=False):
        assert large[0] > small[0] and large[1] > small[1]


def test_counts_of_the_formulas():
    t = bf.TRANSCENDENTAL_FLOPS
    fit = bf.fit_step_work(1000, 1)
    assert fit.flops == 1000 * (5 + 2 + 6 + t) and fit.bytes == 8 * (3000 + 4)
    binning = bf.binning_work(100, 10)
    assert binning.flops == 100 * (46 + 5 * t) and binning.bytes == 12 * 100 + 8 * 10
    assert bf.accumulate_work(100, 10).bytes == 12 * 100 + 16 * 10
    ts = bf.ts_map_work(10, 10, 3, 3)
    assert ts.flops == 100 * 9 * (15 + t) + 100 * (3 + t + 2)
    assert ts.size == 900
    assert bf._disk_pixels(5.0) == 81  # astropy's Tophat2DKernel(5) has 81 non-zero pixels


def test_floors_are_work_over_peaks_per_backend():
    rows = [
        {
            "capability": "select+bin",
            "size": "1e+06 events 10x200x200",
            "backend": backend,
            "device": device,
            "rtafast_median_s": 0.05,
        }
        for backend, device in (("numba", NUMBA), ("numpy", CPU))
    ]
    bf.add_floors(rows)
    numba_row, numpy_row = rows
    work = bf.binning_work(10**6, 400_000)
    assert numba_row["peak_cores"] == 2 and numpy_row["peak_cores"] == 1
    assert numba_row["floor_arith_s"] == pytest.approx(work.flops / (2 * 50e9))
    assert numpy_row["floor_arith_s"] == pytest.approx(work.flops / 50e9)
    assert numba_row["floor_bw_s"] == pytest.approx(work.bytes / 30e9)
    assert numpy_row["floor_bw_s"] == pytest.approx(work.bytes / 20e9)
    floor = max(numba_row["floor_arith_s"], numba_row["floor_bw_s"])
    assert numba_row["above_floor"] == pytest.approx(0.05 / floor)
    assert numba_row["size_x"] == 10**6 and numba_row["size_unit"] == "events"


def test_record_params_take_precedence_over_the_label():
    row = {
        "capability": "select+bin",
        "size": "1e+06 events 10x200x200",
        "params": {"n_events": 5, "n_bins": 7},
        "backend": "numpy",
        "rtafast_median_s": 1.0,
    }
    bf.add_floors([row])
    assert row["size_x"] == 5 and row["bytes"] == 12 * 5 + 8 * 7


def test_cpu_rows_do_not_import_cupy():
    had_cupy = "cupy" in sys.modules
    rows = [
        {"capability": c, "size": s, "backend": "numba step", "device": NUMBA} for c, s, _ in LABELS
    ]
    bf.add_floors(rows)
    assert all(row["floor_arith_s"] > 0 for row in rows)
    assert ("cupy" in sys.modules) == had_cupy


def test_gpu_peaks_from_device_attributes():
    h100 = {
        "MultiProcessorCount": 132,
        "ClockRate": 1_980_000,  # kHz
        "MemoryClockRate": 2_619_000,  # kHz
        "GlobalMemoryBusWidth": 5120,  # bits
        "ComputeCapabilityMajor": 9,
        "ComputeCapabilityMinor": 0,
    }
    peaks = bf.gpu_peaks_from_attributes(h100)
    assert peaks.flops_per_s == pytest.approx(33.45e12, rel=1e-3)  # H100 SXM: 34 TFLOP/s FP64
    assert peaks.bytes_per_s == pytest.approx(3.352e12, rel=1e-3)  # 3.35 TB/s HBM3
    unknown = bf.gpu_peaks_from_attributes(h100 | {"ComputeCapabilityMajor": 99})
    assert unknown.flops_per_s == peaks.flops_per_s  # the largest rate: still a lower bound


def test_gpu_peaks_from_the_environment(monkeypatch):
    monkeypatch.setenv("RTAFAST_GPU_PEAK_GFLOPS", "1000")
    monkeypatch.setenv("RTAFAST_GPU_PEAK_GBS", "500")
    peaks = bf.backend_peaks("cuda step", "NVIDIA")
    assert peaks.flops_per_s == 1e12 and peaks.bytes_per_s == 5e11


def test_bad_environment_rate(monkeypatch):
    monkeypatch.setenv("RTAFAST_PEAK_GFLOPS_CORE", "-1")
    with pytest.raises(ValueError, match="RTAFAST_PEAK_GFLOPS_CORE"):
        bf.cpu_peaks(1)


def test_measurements_are_positive_and_cheap():
    """The measuring code itself, on tiny sizes (the real sizes run once per ``bench``)."""
    assert bf._measured_core_flops(n=64, repeats=2) > 1e6
    assert bf._measured_bandwidth(1, n_elements=2**14, repeats=2) > 1e6
    assert bf._measured_bandwidth(2, n_elements=2**14, repeats=2) > 1e6
    assert bf._llc_bytes() > 0


def _row(capability, size, backend, median, gammapy):
    return {
        "capability": capability,
        "size": size,
        "backend": backend,
        "device": NUMBA if backend.startswith("numba") else CPU,
        "rtafast_median_s": median,
        "gammapy_median_s": gammapy,
        "ratio": gammapy / median if gammapy else None,
    }


def test_plot_several_sizes_single_sizes_and_unknown_labels(tmp_path):
    rows = [
        _row("select+bin", "1e+06 events 10x200x200", "numba", 0.044, 0.125),
        _row("select+bin", "1e+07 events 10x200x200", "numba", 0.43, 1.8),
        _row("select+bin", "1e+06 events 10x200x200", "numpy", 0.13, 0.125),
        _row("ts scan kernel", "map 64^2, kernel 9^2", "numba", 0.0016, None),
        _row("ts scan kernel", "map 256^2, kernel 21^2", "numba", 0.11, None),
        _row("flux-only fit", "crab 6x125x125, amplitude", "numba step", 0.0007, 0.17),
        _row("flux-only fit", "crab 6x125x125, amplitude", "numba run", 0.033, 0.17),
        _row("accumulate bunch", "1e4 events into 10x200x200", "numba", 0.0008, None),
        _row("something new", "whatever", "numba", 0.01, 0.02),
    ]
    for name in ("bench.png", "bench.pdf"):
        plot_rows(rows, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 1000
    assert "floor_arith_s" not in rows[0]  # the caller's rows are left as they were


def test_plot_rows_of_one_size(tmp_path):
    rows = [
        _row("ts map", "crab 125x125x6, kernel 15x15", "numba", 0.028, 1.47),
        _row("ts map", "crab 125x125x6, kernel 15x15", "numpy", 2.8, 1.47),
    ]
    bf.add_floors(rows)  # rows of run_suite already carry their floors
    plot_rows(rows, tmp_path / "one.png")
    assert (tmp_path / "one.png").stat().st_size > 1000


def test_conftest_rows_carry_record_params():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_bench_conftest_under_test", path)
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    def bench(impl, backend, median, **params):
        info = {"capability": "select+bin", "size": "10 events 1x2x2", "impl": impl}
        info["backend"] = backend
        if params:
            info["params"] = params
        return SimpleNamespace(extra_info=info, stats=SimpleNamespace(median=median))

    session = SimpleNamespace(
        disabled=False,
        benchmarks=[
            bench("gammapy", "", 2.0),
            bench("rtafast", "numba", 0.5, n_events=10, n_bins=4),
        ],
    )
    rows = conftest._rows(SimpleNamespace(_benchmarksession=session))
    assert rows == [
        {
            "capability": "select+bin",
            "size": "10 events 1x2x2",
            "backend": "numba",
            "rtafast_median_s": 0.5,
            "gammapy_median_s": 2.0,
            "ratio": 4.0,
            "params": {"n_events": 10, "n_bins": 4},
        }
    ]
