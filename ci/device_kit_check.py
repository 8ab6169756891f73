"""Check that the carried wheels plus the GPU lease's image hold every requirement.

Usage: ``python ci/device_kit_check.py WHEEL_DIR``. Reads each wheel's ``Requires-Dist``,
keeps those that apply to CPython 3.12 on Linux x86-64 without extras, and fails
(naming the wheel and the requirement) if a required distribution is neither carried
nor in the image's package list below (the device tool's KINDS.md, read 2026-11-17).
Versions of the image's packages are not known here: ci/gpu-check.sh prints them.
"""

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

__all__ = ["IMAGE_PACKAGES", "missing_requirements"]

IMAGE_PACKAGES = frozenset(
    canonicalize_name(name)
    for name in """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
    jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
    linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl
    meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind
    narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx opencv-python-headless
    optax opt-einsum orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
    portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
    pygments pyparsing pyproject-hooks pytest pytest-benchmark pytest-cov pytest-mock
    pytest-timeout pytest-xdist python-dateutil pyyaml regex requests rich safetensors scipy
    setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate
    threadpoolctl tifffile toolz torch tqdm triton typer typing-extensions typing-inspect
    urllib3 wheel wrapt xarray xxhash yarl zipp
    """.split()
)

#: The lease's interpreter: CPython 3.12 on Linux x86-64.
_ENVIRONMENT = {
    **default_environment(),
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}


def _requirements(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(_ENVIRONMENT):
            yield requirement


def missing_requirements(wheel_dir):
    """``[(wheel name, requirement)]`` satisfied neither by a carried wheel nor the image."""
    wheels = sorted(Path(wheel_dir).glob("*.whl"))
    carried = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in wheels}
    available = carried | IMAGE_PACKAGES
    return [
        (wheel.name, str(requirement))
        for wheel in wheels
        for requirement in _requirements(wheel)
        if canonicalize_name(requirement.name) not in available
    ]


if __name__ == "__main__":
    missing = missing_requirements(sys.argv[1])
    for wheel, requirement in missing:
        print(f"device-kit: {wheel} needs {requirement}: neither carried nor in the image")
    if missing:
        sys.exit(1)
    print(f"device-kit: each requirement of the wheels in {sys.argv[1]}: carried or in the image")
