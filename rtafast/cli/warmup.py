"""``rtafast warmup``: compile every kernel now (numba caches them on disk)."""

import logging

__all__ = ["run_warmup"]


def run_warmup(args):
    from rtafast.warmup import warmup
    from rtafast_kernels import resolve_backend
    from rtafast_kernels.jit import COMPILE_LOGGER, kernel_cache_dir

    backend = resolve_backend(args.backend)  # fail early on a bad name
    logging.getLogger(COMPILE_LOGGER).setLevel(logging.INFO)
    print(
        f"Compiling rtafast's kernels for backend {backend.name!r} "
        f"(numba's cache: {kernel_cache_dir() or 'none, not writable'})..."
    )

    def report(step, seconds):
        print(f"  {step:<16} {seconds:7.1f} s", flush=True)

    times = warmup(backend.name, report=report)
    print(f"done in {sum(times.values()):.1f} s; later processes load the kernels from the cache")
    return 0
