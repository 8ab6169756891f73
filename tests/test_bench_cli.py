"""``rtafast bench`` plumbing (the suite itself runs in benchmarks/)."""

import json

import pytest

import rtafast.bench
from rtafast.bench import find_benchmarks, markdown_table, plot_rows
from rtafast.cli import build_parser, main

ROWS = [
    {
        "capability": "flux-only fit",
        "size": "crab",
        "backend": "numba step",
        "device": "cpu",
        "rtafast_median_s": 0.0005,
        "gammapy_median_s": 0.17,
        "ratio": 340.0,
    },
    {
        "capability": "accumulate bunch",
        "size": "1e4",
        "backend": "numba",
        "device": "cpu",
        "rtafast_median_s": 0.0004,
        "gammapy_median_s": None,
        "ratio": None,
    },
]

# rows with the suite's real size labels (floors computed)
SUITE_ROWS = [
    {
        "capability": "select+bin",
        "size": "1e+06 events 10x200x200",
        "backend": backend,
        "device": device,
        "rtafast_median_s": median,
        "gammapy_median_s": 0.125,
        "ratio": 0.125 / median,
    }
    for backend, device, median in (
        ("numba", "AMD EPYC (2 cores), 2 numba threads", 0.044),
        ("numpy", "AMD EPYC (2 cores)", 0.13),
    )
] + [
    {
        "capability": "flux-only fit",
        "size": "crab 6x125x125, amplitude",
        "backend": "numba step",
        "device": "AMD EPYC (2 cores), 2 numba threads",
        "rtafast_median_s": 0.0007,
        "gammapy_median_s": 0.17,
        "ratio": 0.17 / 0.0007,
    }
]


@pytest.fixture(autouse=True)
def fixed_peaks(monkeypatch):
    """Peak figures from the environment: no measurement in the tests."""
    monkeypatch.setenv("RTAFAST_PEAK_GFLOPS_CORE", "50")
    monkeypatch.setenv("RTAFAST_PEAK_GBS_CORE", "20")
    monkeypatch.setenv("RTAFAST_PEAK_GBS", "30")


def test_finds_the_suite_in_the_source_tree():
    folder = find_benchmarks()
    assert (folder / "test_bench_fit.py").is_file()


def test_markdown_table_and_plot(tmp_path):
    table = markdown_table(ROWS)
    assert "| flux-only fit | crab | numba step | cpu | 0.500 ms | 170.00 ms | 340.0× |" in table
    assert "| accumulate bunch | 1e4 | numba | cpu | 0.400 ms | n/a | n/a |" in table
    plot_rows(ROWS, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 1000


def test_cli_options():
    args = build_parser().parse_args(
        ["bench", "--quick", "--backend", "numba", "--json", "a.json", "--markdown", "b.md"]
    )
    assert args.quick and args.backend == "numba" and args.json == "a.json"
    args = build_parser().parse_args(["bench", "--plot", "c.png"])
    assert args.plot == "c.png" and not args.quick and not args.full
    assert build_parser().parse_args(["bench", "--full"]).full
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--full", "--quick"])


def test_cli_bench_writes_table_json_and_plot(tmp_path, monkeypatch, capsys):
    """``rtafast bench --json --markdown --plot`` with the suite run replaced by fixed rows."""
    calls = []

    def fake_run_suite(backends=None, quick=False, full=False):
        calls.append((backends, quick, full))
        return rtafast.bench.add_floors([dict(row) for row in SUITE_ROWS])

    monkeypatch.setattr(rtafast.bench, "run_suite", fake_run_suite)
    paths = {name: tmp_path / name for name in ("rows.json", "table.md", "plot.png")}
    code = main(
        [
            "bench",
            "--quick",
            "--backend",
            "numba,numpy",
            "--json",
            str(paths["rows.json"]),
            "--markdown",
            str(paths["table.md"]),
            "--plot",
            str(paths["plot.png"]),
        ]
    )
    assert code == 0 and calls == [(["numba", "numpy"], True, False)]
    assert "| select+bin | 1e+06 events 10x200x200 | numba |" in capsys.readouterr().out
    rows = json.loads(paths["rows.json"].read_text())
    assert all(row["floor_arith_s"] > 0 and row["floor_bw_s"] > 0 for row in rows)
    assert rows[0]["above_floor"] > 1
    assert paths["table.md"].read_text().startswith("| capability |")
    assert paths["plot.png"].stat().st_size > 1000


@pytest.mark.parametrize("real_gpu", [False, True])
def test_suite_times_the_real_gpu_when_there_is_one(monkeypatch, real_gpu):
    """On a GPU node the suite's conftest must not fall back to the CUDA simulator."""
    monkeypatch.delenv("RTAFAST_TEST_REAL_GPU", raising=False)
    monkeypatch.setattr(rtafast.bench, "_real_gpu", lambda: real_gpu)
    env = rtafast.bench.suite_environment(quick=True, rows_path="rows.json")
    assert env["RTAFAST_BENCH_QUICK"] == "1" and env["RTAFAST_BENCH_JSON"] == "rows.json"
    assert "RTAFAST_BACKENDS" not in env and "RTAFAST_BENCH_FULL" not in env
    assert (env.get("RTAFAST_TEST_REAL_GPU") == "1") is real_gpu
    cuda = rtafast.bench.suite_environment(["cuda", "numba"], full=True)
    assert cuda["RTAFAST_BACKENDS"] == "cuda,numba" and cuda["RTAFAST_BENCH_FULL"] == "1"
    assert (cuda.get("RTAFAST_TEST_REAL_GPU") == "1") is real_gpu
    cpu_only = rtafast.bench.suite_environment(["numba"])
    assert "RTAFAST_TEST_REAL_GPU" not in cpu_only
