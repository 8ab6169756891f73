"""The pipeline's memory helpers: free memory handed back, malloc arenas capped (glibc)."""

import pytest

from rtafast.pipeline import memory

GLIBC = memory._TRIM is not None and memory._MALLOPT is not None


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc_trim/mallopt not available here")
def test_the_arena_cap_is_set(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas() is True


def test_the_users_malloc_arena_max_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False


def test_without_glibc_nothing_is_done(monkeypatch):
    monkeypatch.setattr(memory, "_TRIM", None)
    monkeypatch.setattr(memory, "_MALLOPT", None)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.release_free_memory() is False
    assert memory.limit_malloc_arenas() is False
