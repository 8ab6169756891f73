"""Compile CUDA kernels to PTX without a GPU (run by ``tests/test_cuda_ptx.py``).

Runs in its own process with the CUDA simulator off. Reads a JSON request on
stdin, ``{"kernels": {"module.name": [signature, ...]}, "cc": [major, minor],
"ptx_dir": folder}`` (signatures as written by the test), compiles each kernel
for each signature with ``numba.cuda.compile_ptx`` into ``ptx_dir`` and prints one
JSON line: ``{"unavailable": why}`` when numba cannot compile a probe kernel that
calls a device function here (no NVVM or NVRTC, or a numba-cuda that needs a device
for that), else ``{"results": {key: {"error", "ptx", "threads"}}}``, ``threads`` being
the block size the backend launches the kernel with.
"""

import importlib
import json
import sys
import types as pytypes
from pathlib import Path

import numpy as np
from numba import cuda, types
from numba.cuda import dispatcher
from numba.np.numpy_support import from_dtype


def numba_type(description):
    """The numba type of a JSON argument description (see the test's ``_describe``)."""
    kind = description[0]
    if kind == "array":
        _, dtype, ndim, layout = description
        return types.Array(from_dtype(np.dtype(dtype)), ndim, layout)
    if kind == "tuple":
        return types.BaseTuple.from_types([numba_type(item) for item in description[1]])
    return from_dtype(np.dtype(description[1]))


def _probe_kernel(out):
    out[0] = _probe_device(out[0])


@cuda.jit(device=True)
def _probe_device(x):
    return 2.0 * x


def main():
    request = json.load(sys.stdin)
    cc = tuple(request["cc"])
    ptx_dir = Path(request["ptx_dir"])
    # Device functions are compiled for the current device's compute capability;
    # without a GPU, say it is the one asked for (numba-cuda internals: the probe below
    # tells whether this still works with the installed version).
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=cc)
    try:  # a kernel calling a device function, as ours do
        cuda.compile_ptx(_probe_kernel, (types.float64[::1],), cc=cc)
    except Exception as error:  # no NVVM/NVRTC, or numba-cuda needs a device: skip
        print(json.dumps({"unavailable": f"{type(error).__name__}: {error}"}))
        return
    default_threads = importlib.import_module("rtafast_kernels.launch").THREADS
    results = {}
    for qualified, signatures in request["kernels"].items():
        module_name, name = qualified.rsplit(".", 1)
        module = importlib.import_module(f"rtafast_kernels.{module_name}")
        kernel = getattr(module, name)
        for number, signature in enumerate(signatures):
            argtypes = tuple(numba_type(item) for item in json.loads(signature))
            key = f"{qualified}[{number}] sm_{cc[0]}{cc[1]}"
            path = ptx_dir / f"{qualified}.{number}.sm_{cc[0]}{cc[1]}.ptx"
            entry = {"signature": str(argtypes), "error": None, "ptx": str(path)}
            entry["threads"] = getattr(module, "THREADS", default_threads)
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, argtypes, cc=cc)
                path.write_text(ptx)
            except Exception as error:
                entry["error"] = f"{type(error).__name__}: {error}"[:3000]
            results[key] = entry
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
