"""The one place where element math and kernels are compiled for each target.

* :func:`cpu` compiles a plain-Python scalar function with ``numba.njit``, inlined
  into the CPU kernels that call it;
* :func:`gpu_device` compiles the same function as a CUDA device function (or for
  numba's CUDA simulator); it imports ``numba.cuda`` only when called;
* :func:`cpu_kernel` compiles a kernel (serial or ``parallel=True``) with numba's
  on-disk cache, so a new process does not pay the compilation again.

numba's cache only checks the source file of the cached function itself, not the
element functions it inlines from :mod:`rtafast_kernels.cash.element`. The cache is
therefore kept in a folder named after a hash of every source file of this package
(and numba's version): any edit gives a fresh folder, never stale machine code.
The folder is ``$RTAFAST_CACHE_DIR`` or ``~/.cache/rtafast`` (``$XDG_CACHE_HOME``);
if it is not writable, kernels are compiled without a cache.
"""

import contextlib
import functools
import hashlib
import logging
import os
import time
import types
from pathlib import Path

import numba
from numba.core import event as numba_event

__all__ = [
    "cpu",
    "cpu_piece",
    "cpu_reduction",
    "gpu_device",
    "cpu_functions",
    "gpu_functions",
    "cpu_kernel",
    "kernel_cache_dir",
    "COMPILE_LOGGER",
]

#: Name of the logger that announces each kernel compilation (INFO level).
COMPILE_LOGGER = "rtafast.compile"
log = logging.getLogger(COMPILE_LOGGER)


class _CompileAnnouncer(numba_event.Listener):
    """Logs one line when numba starts compiling one of rtafast's kernels, one when done.

    numba raises its ``numba:compile`` event only for a real compilation (not when the
    machine code comes from the on-disk cache). Functions compiled inside another
    compilation (inlined element functions) are part of the outer one's line.
    """

    def __init__(self):
        self.depth = 0
        self.started = None

    def on_start(self, event):
        self.depth += 1
        dispatcher = event.data["dispatcher"]
        function = getattr(dispatcher, "py_func", None)
        module = getattr(function, "__module__", "") or ""
        if self.depth == 1 and module.split(".")[0] == __package__:
            self.started = (function.__qualname__, time.perf_counter())
            log.info(
                "compiling %s.%s for the CPU (numba, first use with these argument types: "
                "seconds to a minute; cached on disk afterwards, see 'rtafast warmup')",
                module,
                function.__qualname__,
            )

    def on_end(self, event):
        self.depth -= 1
        if self.depth == 0 and self.started is not None:
            name, start = self.started
            self.started = None
            log.info("compiled %s in %.1f s", name, time.perf_counter() - start)


numba_event.register("numba:compile", _CompileAnnouncer())


def cpu(func):
    """Compile ``func`` for the CPU (nopython, no GIL, inlined into callers)."""
    return numba.njit(nogil=True, inline="always")(func)


#: LLVM fast-math flags of :func:`cpu_reduction`: reassociation (and signed-zero
#: freedom) lets a floating-point sum be split into vector lanes; no approximate
#: division, reciprocal or function, no assumption of finite values.
REDUCTION_FLAGS = frozenset({"reassoc", "nsz", "contract"})


def cpu_piece(func):
    """Compile a larger piece of a kernel for the CPU as a function of its own.

    Unlike :func:`cpu`, numba does not copy it into every caller (LLVM may still
    inline it): each piece is compiled once, which keeps the compilation of kernels
    made of many pieces short.
    """
    return numba.njit(nogil=True)(func)


def cpu_reduction(func):
    """Compile a summing loop for the CPU so that LLVM may vectorise the sum.

    The order of the additions is left to the compiler (results change by rounding
    only); the function is compiled on its own (its flags are kept where LLVM
    inlines it), not inlined at numba's level as :func:`cpu` does.
    """
    return numba.njit(nogil=True, fastmath=set(REDUCTION_FLAGS), error_model="numpy")(func)


def gpu_device(func):
    """Compile ``func`` as a CUDA device function (or for numba's CUDA simulator)."""
    from numba import cuda

    return cuda.jit(device=True)(func)


def _compile_module_functions(module, compile_one):
    """Compile every plain function of an element module, calls between them included.

    Each function is rebuilt over a shared globals dict in which the module's
    functions are replaced by their compiled versions (numba resolves globals when it
    compiles, lazily, at the first call), so ``f`` calling ``g`` calls compiled ``g``.
    """
    namespace = dict(vars(module))
    compiled = {}
    for name, value in vars(module).items():
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            twin = types.FunctionType(value.__code__, namespace, name, value.__defaults__)
            compiled[name] = compile_one(twin)
    namespace.update(compiled)
    return types.SimpleNamespace(**compiled)


def cpu_functions(module):
    """All functions of an element module compiled for the CPU (see :func:`cpu`)."""
    return _compile_module_functions(module, cpu)


def gpu_functions(module):
    """All functions of an element module compiled as CUDA device functions."""
    return _compile_module_functions(module, gpu_device)


@functools.lru_cache(maxsize=1)
def kernel_cache_dir():
    """Return the versioned on-disk cache folder of the CPU kernels, or None."""
    digest = hashlib.sha256(numba.__version__.encode())
    package = Path(__file__).parent
    for source in sorted(package.rglob("*.py")):  # the kernel families' folders too
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    root = os.environ.get("RTAFAST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rtafast"
    )
    folder = Path(root) / f"numba-{digest.hexdigest()[:16]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError:
        return None
    return str(folder)


@contextlib.contextmanager
def _versioned_cache():
    folder = kernel_cache_dir()
    if folder is None:
        yield False
        return
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = folder  # read when the dispatcher is created, just below
    try:
        yield True
    finally:
        numba.config.CACHE_DIR = previous


def cpu_kernel(func, parallel=False, error_model="python"):
    """Compile a CPU kernel from plain-Python source, cached on disk.

    The same source can be compiled serial and parallel (``numba.prange`` is
    ``range`` when not parallel); each compilation gets its own cache entry.
    ``error_model="numpy"`` lets a division by zero give inf/NaN instead of
    raising, which a loop needs to be vectorised when it divides.
    """
    suffix = "parallel" if parallel else "serial"
    twin = types.FunctionType(
        func.__code__,
        func.__globals__,
        f"{func.__name__}_{suffix}",
        func.__defaults__,
        func.__closure__,
    )
    twin.__qualname__ = f"{func.__qualname__}_{suffix}"
    twin.__module__ = func.__module__
    with _versioned_cache() as cache:
        return numba.njit(parallel=parallel, nogil=True, cache=cache, error_model=error_model)(twin)
