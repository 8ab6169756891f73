"""``rtafast info``: versions, the backends available here, what ``auto`` picks, the GPU."""

import sys

from ._args import PROG

__all__ = ["run_info"]


def run_info(args):
    import numba
    import numpy

    import rtafast
    from rtafast_kernels import (
        ENV_VARIABLE,
        auto_backend_name,
        available_backends,
        environment_backend_name,
        resolve_backend,
    )

    requested = environment_backend_name()  # raises on a bad $RTAFAST_BACKEND
    lines = [f"rtafast {rtafast.__version__}"]
    for module_name in ("numpy", "numba", "gammapy", "astropy", "iminuit"):
        module = sys.modules.get(module_name) or __import__(module_name)
        lines.append(f"  {module_name:<8} {module.__version__}")
    del numpy, numba
    lines.append("backends:")
    auto = auto_backend_name()
    status = available_backends()
    for name, (usable, reason) in status.items():
        mark = "yes" if usable else "no "
        device = ""
        if usable and (name != "cuda" or auto == "cuda" or args.probe_gpu):
            device = f" -> {resolve_backend(name).device_name()}"
        lines.append(f"  {name:<6} {mark}  {reason}{device}")
    lines.append(f"auto picks: {auto}")
    problem = None
    if requested != "auto":
        lines.append(f"${ENV_VARIABLE}={requested}: the default backend is {requested}")
        usable, reason = status[requested]
        if not usable:
            problem = (
                f"${ENV_VARIABLE}={requested} names a backend that is not available here "
                f"({reason}); every call without array_backend= will fail"
            )
    print("\n".join(lines))
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    return 0
