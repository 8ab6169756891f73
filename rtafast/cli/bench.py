"""``rtafast bench``: the benchmark suite (rtafast vs gammapy) of a source checkout."""

import sys

__all__ = ["run_bench"]


def _devtools_bench():
    """``rtafast_devtools.bench`` of the source checkout this rtafast runs from.

    Raises
    ------
    FileNotFoundError
        When rtafast is not run from a source checkout (an installed wheel has no
        benchmarks): the message says what ``rtafast bench`` needs.
    """
    import importlib
    from pathlib import Path

    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "rtafast_devtools" / "bench.py").is_file():
        raise FileNotFoundError(
            f"rtafast bench needs a source checkout of rtafast (its rtafast_devtools/ and "
            f"benchmarks/ folders), not found next to the rtafast package in {checkout}: "
            "clone the repository and pip install -e '.[test]' there"
        )
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    return importlib.import_module("rtafast_devtools.bench")


def _bench_backends(names):
    """The concrete backends of ``bench --backend`` (``auto`` replaced by what it picks).

    Whether each can run is the suite's business (on a machine without a GPU it
    times the cuda kernels under numba's CUDA simulator).
    """
    if not names:
        return None
    from rtafast_kernels import auto_backend_name

    chosen = [auto_backend_name() if name == "auto" else name for name in names]
    return list(dict.fromkeys(chosen))


def run_bench(args):
    bench = _devtools_bench()
    check_output_path, markdown_table = bench.check_output_path, bench.markdown_table
    plot_rows, run_suite, write_text_atomic = (
        bench.plot_rows,
        bench.run_suite,
        bench.write_text_atomic,
    )
    OutputPathError = bench.OutputPathError  # noqa: N806

    # every output is checked before the suite runs (minutes), not after
    outputs = {}
    for option, value in (
        ("--json", args.json),
        ("--markdown", args.markdown),
        ("--plot", args.plot),
    ):
        if value is None:
            continue
        path = check_output_path(value, option, plot=option == "--plot")
        for other, other_path in outputs.items():
            if other_path.resolve() == path.resolve():
                raise OutputPathError(f"{other} and {option} name the same file {value}")
        outputs[option] = path
    backends = _bench_backends(args.backend.split(",") if args.backend else None)
    rows = run_suite(backends=backends, quick=args.quick, full=args.full)
    table = markdown_table(rows)
    print(table)
    if "--json" in outputs:
        import json

        write_text_atomic(outputs["--json"], json.dumps(rows, indent=2))
    if "--markdown" in outputs:
        write_text_atomic(outputs["--markdown"], table)
    if "--plot" in outputs:
        plot_rows(rows, outputs["--plot"])
    return 0
