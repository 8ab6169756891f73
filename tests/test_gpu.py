"""Tests that need a real CUDA GPU (marked ``gpu``; skipped elsewhere).

Run on a GPU node with ``RTAFAST_TEST_REAL_GPU=1 python -m pytest -m gpu``
(``ci/gpu-bench.sh`` does).
"""

import numpy as np
import pytest

import rtafast
import rtafast_kernels as rk
from rtafast_devtools.reference_data import CRAB_POSITION, point_source_models

pytestmark = pytest.mark.gpu


def test_cuda_backend_uses_cupy_arrays():
    backend = rk.resolve_backend("cuda")
    array = backend.asarray(np.arange(10.0))
    assert type(array).__module__.startswith("cupy")
    assert "simulator" not in backend.device_name()


@pytest.mark.parametrize("background_free", [False, True])
def test_cuda_matches_numba_on_whole_crab_dataset(hess_crab_stacked, background_free):
    values = {}
    for name in ("numba", "cuda"):
        hess_crab_stacked.models = point_source_models(
            hess_crab_stacked, CRAB_POSITION, background_norm_free=background_free
        )
        result = rtafast.Fit(array_backend=name).run(hess_crab_stacked)
        assert result.array_backend == name and result.success
        values[name] = [(p.value, p.error) for p in result.parameters.free_parameters]
        values[name].append((result.total_stat, result.ts["source"]))
    np.testing.assert_allclose(values["cuda"], values["numba"], rtol=1e-9)
