"""Launch settings: how many of numba's threads a large call uses (kernels.launch)."""

import os
import sys

import numba
import pytest

from rtafast_kernels import launch

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux_only
def test_own_running_threads_include_the_caller():
    assert 1 <= launch._own_running() <= len(os.listdir("/proc/self/task"))


def test_free_threads_within_the_pool():
    assert 1 <= launch.free_threads() <= numba.get_num_threads()


@linux_only
def test_our_own_running_threads_are_not_counted_as_busy(monkeypatch):
    """``/proc/loadavg`` counts every running task, our pool's spinning threads
    included: only the others make a core busy."""
    cpus = len(os.sched_getaffinity(0))
    pool = numba.get_num_threads()
    monkeypatch.setattr(launch, "_own_running", lambda: 2)

    def with_running(n):
        text = f"0.50 0.40 0.30 {n}/300 12345\n".encode()

        class _File:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def read(self):
                return text

        real_open = open
        monkeypatch.setattr(
            "builtins.open",
            lambda path, *a, **k: _File() if path == "/proc/loadavg" else real_open(path, *a, **k),
        )
        return launch.free_threads()

    assert with_running(2) == min(pool, cpus)  # the two running tasks are ours
    assert with_running(2 + cpus) == 1  # every core busy with other work


def test_threads_context_restores_the_pool():
    before = numba.get_num_threads()
    with launch.threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
