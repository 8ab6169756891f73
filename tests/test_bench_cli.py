"""``rtafast bench`` plumbing (the suite itself runs in benchmarks/)."""

from rtafast.bench import find_benchmarks, markdown_table, plot_rows
from rtafast.cli import build_parser

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
