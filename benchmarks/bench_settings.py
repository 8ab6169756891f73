"""Settings shared by the benchmark files (quick mode, sizes)."""

import os

__all__ = ["QUICK", "FULL", "rounds"]

#: ``rtafast bench --quick`` (``RTAFAST_BENCH_QUICK=1``): fewer rounds, small sizes only.
QUICK = os.environ.get("RTAFAST_BENCH_QUICK") == "1"
#: ``RTAFAST_BENCH_FULL=1``: also the large sizes and scaling sweeps.
FULL = os.environ.get("RTAFAST_BENCH_FULL") == "1" and not QUICK


def rounds(n):
    """Benchmark rounds: ``n``, or a third of it (at least 3) in quick mode."""
    return max(3, n // 3) if QUICK else n
