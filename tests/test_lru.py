"""The LRU cache behind the PSF-kernel, IRF-map and TS-input caches."""

from rtafast.cache.irf import IRFMapCache
from rtafast.cache.lru import LRUCache
from rtafast.cache.psf import PSFKernelCache
from rtafast.estimators.excess_inputs import ExcessInputCache
from rtafast.estimators.ts_inputs import TSInputCache


def test_least_recently_used_goes_first():
    cache = LRUCache(maxsize=2)
    calls = []

    def compute(value):
        calls.append(value)
        return value

    assert cache.get_or_compute("a", lambda: compute(1)) == 1
    assert cache.get_or_compute("b", lambda: compute(2)) == 2
    assert cache.get_or_compute("a", lambda: compute(-1)) == 1  # hit: "a" is now the newest
    assert cache.get_or_compute("c", lambda: compute(3)) == 3  # evicts "b"
    assert len(cache) == 2 and cache.lookup("b") is None and cache.lookup("a") == 1
    assert calls == [1, 2, 3]
    assert (cache.hits, cache.misses) == (2, 4)
    cache.clear()
    assert len(cache) == 0 and cache.lookup("a") is None


def test_storing_again_refreshes_an_entry():
    cache = LRUCache(maxsize=2)
    cache.store("a", 1)
    cache.store("b", 2)
    cache.store("a", 10)
    cache.store("c", 3)  # evicts "b", the least recently stored
    assert cache.lookup("a") == 10 and cache.lookup("b") is None and cache.lookup("c") == 3


def test_irf_map_cache_returns_rescaled_values():
    cache = IRFMapCache(maxsize=1)
    assert cache.get("k", lambda: 6.0, duration=3.0, kind="map") == 6.0
    assert cache.get("k", lambda: -1.0, duration=5.0, kind="map") == 10.0  # 2 per second
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_caches_share_it():
    for cache in (PSFKernelCache(), TSInputCache(), IRFMapCache(), ExcessInputCache()):
        assert isinstance(cache, LRUCache) and cache.maxsize > 0
