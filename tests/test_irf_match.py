"""When IRF arrays count as a multiple of cached ones (rtafast.cache.irf_match)."""

import numpy as np
import pytest

from rtafast.cache.irf_match import PROPORTIONAL_RTOL, RescalingCache, exposure_factor


def _arrays(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    exposure = rng.uniform(1e9, 5e10, (4, 20, 20)).astype(dtype)
    psf = rng.uniform(0, 1e4, (4, 10, 3, 3)).astype(np.float32)
    psf_exposure = rng.uniform(1e9, 5e10, (4, 1, 3, 3))
    edisp = rng.uniform(0, 1, (4, 5, 3, 3)).astype(np.float32)
    edisp_exposure = rng.uniform(1e9, 5e10, (4, 1, 3, 3))
    mask = rng.uniform(size=(20, 20)) > 0.1
    return [exposure, psf, psf_exposure, edisp, edisp_exposure, mask]


def _scaled(arrays, factor, irf_factor=None):
    irf_factor = factor if irf_factor is None else irf_factor
    exposure, psf, psf_exposure, edisp, edisp_exposure, mask = arrays
    return [
        exposure * factor,
        psf,
        psf_exposure * irf_factor,
        edisp,
        edisp_exposure * irf_factor,
        mask,
    ]


@pytest.mark.parametrize("factor", [1.0, 1.7, 1e-3, 250.0])
def test_a_longer_live_time_is_a_multiple(factor):
    arrays = _arrays()
    assert exposure_factor(_scaled(arrays, factor), arrays) == pytest.approx(factor, rel=1e-15)


def test_irf_exposure_maps_may_scale_differently():
    arrays = _arrays()
    assert exposure_factor(_scaled(arrays, 2.0, irf_factor=3.0), arrays) == pytest.approx(2.0)


def test_float32_maps_rescaled_in_float32_match_within_their_rounding():
    arrays = _arrays(dtype=np.float32)
    scaled = _scaled(arrays, 1.3)
    scaled[0] = (arrays[0] * np.float32(1.3)).astype(np.float32)
    assert exposure_factor(scaled, arrays) == pytest.approx(1.3, rel=1e-6)


@pytest.mark.parametrize("index", [0, 1, 3, 5])
def test_a_changed_array_is_not_a_multiple(index):
    arrays = _arrays()
    changed = _scaled(arrays, 1.5)
    changed[index] = changed[index].copy()
    flat = changed[index].reshape(-1)
    if flat.dtype == bool:
        flat[7] = not flat[7]
    else:
        flat[7] += 1e-4 * np.abs(flat).max()  # far above float32 rounding of the peak
    assert exposure_factor(changed, arrays) is None


def test_psf_and_edisp_must_not_scale():
    arrays = _arrays()
    for index in (1, 3):
        scaled = list(arrays)
        scaled[index] = arrays[index] * np.float32(2.0)
        assert exposure_factor(scaled, arrays) is None


def test_tolerance_of_float64_maps():
    arrays = _arrays()
    nudged = _scaled(arrays, 2.0)
    peak = np.abs(nudged[0]).max()
    nudged[0] = nudged[0].copy()
    nudged[0].flat[3] += 0.5 * PROPORTIONAL_RTOL * peak
    assert exposure_factor(nudged, arrays) == pytest.approx(2.0)
    nudged[0].flat[3] += 4 * PROPORTIONAL_RTOL * peak
    assert exposure_factor(nudged, arrays) is None


def test_missing_arrays_must_match():
    arrays = _arrays()
    without_psf = list(arrays)
    without_psf[1] = without_psf[2] = None
    assert exposure_factor(without_psf, arrays) is None
    assert exposure_factor(without_psf, without_psf) == 1.0


class _Entry:
    def __init__(self, arrays, value):
        self.arrays = [None if a is None else a.copy() for a in arrays]
        self.value = value


def test_rescaling_cache_finds_the_multiple_of_the_right_layout():
    cache = RescalingCache(maxsize=4)
    first, other = _arrays(0), _arrays(1)
    cache.add("layout", _Entry(first, "first"))
    cache.add("layout", _Entry(other, "other"))
    cache.add("elsewhere", _Entry(first, "elsewhere"))
    entry, factor = cache.find("layout", _scaled(first, 3.0))
    assert entry.value == "first" and factor == pytest.approx(3.0)
    entry, factor = cache.find("layout", other)
    assert entry.value == "other" and factor == 1.0
    assert cache.find("layout", _arrays(2)) == (None, None)
    assert cache.find("layout", first, accept=lambda e: e.value != "first") == (None, None)
    assert (cache.hits, cache.rescaled, cache.misses) == (2, 1, 2)
