"""Development tooling of a source checkout (not installed with rtafast).

``bench`` (the ``rtafast bench`` runner and its report), ``bench_floors`` (physical
floors of the benchmarked capabilities) and ``reference_data`` (the real-data datasets
tests and benchmarks use). ``rtafast bench`` imports this package from the checkout
its ``rtafast`` package lives in, and says so when run from an installed copy.
"""
