"""``rtafast bench`` plumbing (the suite itself runs in benchmarks/)."""

import json
import os

import pytest

import rtafast_devtools.bench
from rtafast.cli import build_parser, main
from rtafast_devtools.bench import find_benchmarks, markdown_table, plot_rows

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
        return rtafast_devtools.bench.add_floors([dict(row) for row in SUITE_ROWS])

    monkeypatch.setattr(rtafast_devtools.bench, "run_suite", fake_run_suite)
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
    monkeypatch.setattr(rtafast_devtools.bench, "_real_gpu", lambda: real_gpu)
    env = rtafast_devtools.bench.suite_environment(quick=True, rows_path="rows.json")
    assert env["RTAFAST_BENCH_QUICK"] == "1" and env["RTAFAST_BENCH_JSON"] == "rows.json"
    assert "RTAFAST_BACKENDS" not in env and "RTAFAST_BENCH_FULL" not in env
    assert (env.get("RTAFAST_TEST_REAL_GPU") == "1") is real_gpu
    cuda = rtafast_devtools.bench.suite_environment(["cuda", "numba"], full=True)
    assert cuda["RTAFAST_BACKENDS"] == "cuda,numba" and cuda["RTAFAST_BENCH_FULL"] == "1"
    assert (cuda.get("RTAFAST_TEST_REAL_GPU") == "1") is real_gpu
    cpu_only = rtafast_devtools.bench.suite_environment(["numba"])
    assert "RTAFAST_TEST_REAL_GPU" not in cpu_only


# -- bad input: checked before the suite runs, one line, no traceback, nothing half-written


@pytest.fixture
def no_suite(monkeypatch):
    """``run_suite`` replaced by one that records its calls and returns fixed rows."""
    calls = []

    def fake_run_suite(backends=None, quick=False, full=False):
        calls.append(backends)
        return rtafast_devtools.bench.add_floors([dict(row) for row in SUITE_ROWS])

    monkeypatch.setattr(rtafast_devtools.bench, "run_suite", fake_run_suite)
    return calls


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("option", ["--json", "--markdown", "--plot"])
def test_bench_output_in_missing_folder_fails_before_the_suite(no_suite, capsys, option):
    target = "/nonexistent/dir/out.png"
    assert main(["bench", "--quick", option, target]) == 2
    assert _one_error_line(capsys) == (
        f"rtafast: error: {option} {target}: folder /nonexistent/dir does not exist"
    )
    assert no_suite == []  # nothing ran


def test_bench_output_paths_are_checked(no_suite, capsys, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = {
        str(a_file / "out.json"): f"--json {a_file / 'out.json'}: {a_file} is not a folder",
        str(tmp_path): f"--json {tmp_path}: is a folder, not a file",
    }
    for target, message in cases.items():
        assert main(["bench", "--json", target]) == 2
        assert _one_error_line(capsys) == f"rtafast: error: {message}"
    assert main(["bench", "--plot", str(tmp_path / "plot.xyz")]) == 2
    assert "--plot" in _one_error_line(capsys)
    same = str(tmp_path / "same.txt")
    assert main(["bench", "--json", same, "--markdown", same]) == 2
    assert _one_error_line(capsys) == (
        f"rtafast: error: --json and --markdown name the same file {same}"
    )
    assert no_suite == [] and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_bench_output_in_read_only_folder(no_suite, capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    assert main(["bench", "--json", str(folder / "out.json")]) == 2
    assert f"cannot write in {folder}" in _one_error_line(capsys)
    assert no_suite == []


def test_bench_writes_only_its_outputs(no_suite, tmp_path, capsys):
    """No temporary file is left next to the outputs; modes follow the umask."""
    paths = [tmp_path / name for name in ("rows.json", "table.md", "plot.png")]
    args = ["bench", "--json", str(paths[0]), "--markdown", str(paths[1]), "--plot", str(paths[2])]
    assert main(args) == 0
    assert sorted(tmp_path.iterdir()) == sorted(paths)
    umask = os.umask(0o022)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~umask) for p in paths[:2])


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "rows.json"
    target.write_text("old")

    def half_then_fail(tmp):
        with open(tmp, "w") as handle:
            handle.write('{"half": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        rtafast_devtools.bench._write_atomic(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]
    rtafast_devtools.bench.write_text_atomic(target, "new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_bench_bad_backend_fails_before_the_suite(no_suite, capsys, monkeypatch):
    assert main(["bench", "--backend", "numba,fortran"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("rtafast: error: argument --backend: unknown backend 'fortran'")
    monkeypatch.setenv("RTAFAST_BACKEND", "bogus")
    assert main(["bench", "--quick"]) == 2
    assert _one_error_line(capsys).startswith(
        "rtafast: error: unknown rtafast backend 'bogus' (from $RTAFAST_BACKEND)"
    )
    assert no_suite == []


def test_bench_auto_backend_is_the_one_auto_picks(no_suite, capsys):
    from rtafast_kernels import auto_backend_name

    assert main(["bench", "--backend", "auto,numpy,numpy"]) == 0
    assert no_suite == [list(dict.fromkeys([auto_backend_name(), "numpy"]))]


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            rtafast_devtools.bench.BenchmarkSuiteError(
                "the benchmark suite failed (pytest exit 1)"
            ),
            1,
            "rtafast: error: the benchmark suite failed (pytest exit 1)",
        ),
        (
            FileNotFoundError("no benchmarks/ folder next to the rtafast package"),
            2,
            "rtafast: error: no benchmarks/ folder next to the rtafast package",
        ),
        (
            ValueError("a bad value\non two lines"),
            2,
            "rtafast: error: a bad value on two lines",
        ),
        (
            ZeroDivisionError("float division by zero"),
            1,
            "rtafast: internal error: ZeroDivisionError: float division by zero "
            "(rerun as 'rtafast --debug bench ...' for the traceback)",
        ),
    ],
)
def test_cli_errors_are_one_line(monkeypatch, capsys, error, code, line):
    def failing_suite(**kwargs):
        raise error

    monkeypatch.setattr(rtafast_devtools.bench, "run_suite", failing_suite)
    assert main(["bench", "--quick"]) == code
    assert _one_error_line(capsys) == line
    with pytest.raises(type(error)):
        main(["--debug", "bench", "--quick"])


def test_cli_missing_data_is_a_user_error(monkeypatch, capsys, tmp_path):
    from rtafast_devtools.reference_data import find_data_dir

    monkeypatch.setenv("RTAFAST_DATA", str(tmp_path / "missing"))
    monkeypatch.setattr(rtafast_devtools.bench, "run_suite", lambda **kwargs: find_data_dir())
    assert main(["bench"]) == 2
    assert _one_error_line(capsys) == (
        f"rtafast: error: $RTAFAST_DATA is set to {tmp_path / 'missing'}, which does not "
        "exist; point it at the shared data folder or unset it"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["compare", "--livetime", "3 parsec"], "argument --livetime: '3 parsec' is not a"),
        (["compare", "--livetime", "-5 min"], "argument --livetime: '-5 min': a duration must be"),
        (["compare", "--amplitude", "1e-12"], "argument --amplitude: '1e-12' is not a"),
        (["compare", "--repeat", "-1"], "argument --repeat: '-1' is negative"),
        (["compare", "--seed", "x"], "argument --seed: 'x' is not an integer"),
        (["compare", "--backend", "opencl"], "argument --backend: unknown backend 'opencl'"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    ],
)
def test_cli_bad_arguments_are_one_line(capsys, args, expected):
    assert main(args) == 2
    assert _one_error_line(capsys).startswith(f"rtafast: error: {expected}")
