"""Fixtures shared by tests/ and benchmarks/.

The backend fixture (every numeric test runs on every backend), the CUDA
simulator switch (its blocks wait for their threads instead of spinning:
``tests/_cudasim_wait.py``, ~100x faster on 2 cores), and the real-data datasets.

Unless ``RTAFAST_TEST_REAL_GPU=1`` is set (GPU nodes, ``ci/gpu-bench.sh``), the
cuda backend runs under numba's CUDA simulator, so the GPU kernels are tested on
every CI run; tests marked ``gpu`` need a real device and skip without one.
"""

import os

if os.environ.get("RTAFAST_TEST_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numba  # after the simulator switch
import pytest

from rtafast_devtools.reference_data import DataNotFoundError, find_data_dir, missing_data_file
from rtafast_kernels import available_backends, resolve_backend

SIMULATED_CUDA = bool(numba.config.ENABLE_CUDASIM)
if SIMULATED_CUDA:
    from tests._cudasim_wait import install as _install_simulator_wait

    _install_simulator_wait()  # the simulator's blocks wait instead of spinning
ALL_BACKENDS = ("numpy", "numba", "cuda")


def pytest_collection_modifyitems(config, items):
    real_gpu = not SIMULATED_CUDA and available_backends()["cuda"][0]
    skip_gpu = pytest.mark.skip(
        reason="needs a real CUDA GPU (set RTAFAST_TEST_REAL_GPU=1 on a GPU node)"
    )
    for item in items:
        if "gpu" in item.keywords and not real_gpu:
            item.add_marker(skip_gpu)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test stopped by an absent file of a partial real-data folder (e.g. the folders a
    GPU lease carries) is reported as skipped, naming the file."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or report.skipped:
        return
    missing = missing_data_file(call.excinfo.value)
    if missing:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1], f"real data file not here: {missing}")


@pytest.fixture(params=ALL_BACKENDS)
def backend(request):
    """Each rtafast backend in turn (cuda: simulated unless on a GPU node).

    ``$RTAFAST_BACKENDS`` (comma-separated) restricts the set (``rtafast bench --backend``).
    """
    chosen = os.environ.get("RTAFAST_BACKENDS")
    if chosen and request.param not in chosen.split(","):
        pytest.skip(f"backend {request.param!r} not in $RTAFAST_BACKENDS={chosen}")
    usable, reason = available_backends()[request.param]
    if not usable:
        pytest.skip(f"backend {request.param!r} unavailable: {reason}")
    return resolve_backend(request.param)


def _data_dir(sub):
    try:
        return find_data_dir(sub)
    except DataNotFoundError as error:
        pytest.skip(f"real data not available: {error}")


@pytest.fixture(scope="session")
def data_dir():
    """The shared real-data folder (skips the test when absent)."""
    return _data_dir(None)


@pytest.fixture(scope="session")
def hess_datastore():
    """gammapy DataStore of H.E.S.S. DL3 DR1 (skips the test when absent)."""
    from gammapy.data import DataStore

    return DataStore.from_dir(_data_dir("hess-dl3-dr1") / "hess-dl3-dr1")


@pytest.fixture(scope="session")
def hess_crab_stacked():
    """Stacked dataset of the 4 H.E.S.S. Crab runs (built once per session)."""
    from rtafast_devtools.reference_data import hess_crab_dataset

    return hess_crab_dataset(_data_dir("hess-dl3-dr1"))


@pytest.fixture(scope="session")
def cta_1dc_gc():
    """CTA 1DC run 110380 around the Galactic Centre (built once per session)."""
    from rtafast_devtools.reference_data import cta_1dc_dataset

    return cta_1dc_dataset(_data_dir("cta-1dc"))


@pytest.fixture(scope="session")
def simulated():
    """A small simulated dataset with the analytic CTA-like IRF (no data needed)."""
    from rtafast.simulate import simulate_dataset

    return simulate_dataset(
        width_deg=1.0, binsz_deg=0.05, n_energy=3, amplitude="5e-12 cm-2 s-1 TeV-1", random_state=1
    )


@pytest.fixture(autouse=True)
def _reset_shared_dataset_models(request):
    """Give the session-scoped real datasets back without models after each test.

    Fit tests attach source models to them; a TS or excess map computed afterwards on
    the same object would otherwise see the fitted Crab as background.
    """
    yield
    for name in ("hess_crab_stacked", "cta_1dc_gc"):
        if name in request.fixturenames:
            request.getfixturevalue(name).models = None
