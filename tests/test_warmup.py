"""``rtafast warmup`` and the log line that announces each kernel compilation."""

import logging

import numba
import numpy as np
import pytest

from rtafast.cli import main
from rtafast.warmup import WARMUP_STEPS, warmup
from rtafast_kernels.jit import COMPILE_LOGGER


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_warmup_runs_every_step_and_reports_it(backend_name):
    reported = []
    times = warmup(backend_name, report=lambda step, s: reported.append((step, s)))
    assert list(times) == list(WARMUP_STEPS)
    assert [step for step, _ in reported] == list(WARMUP_STEPS)
    assert all(seconds >= 0 for seconds in times.values())


def test_cli_warmup_prints_each_step(capsys):
    assert main(["warmup", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    for step in WARMUP_STEPS:
        assert step in out
    assert "done in" in out


def test_cli_warmup_bad_backend_is_one_line(capsys):
    assert main(["warmup", "--backend", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown backend 'gpu'" in err


def _kernel_of_rtafast():
    def add_one(values):
        total = 0.0
        for value in values:
            total += value + 1.0
        return total

    add_one.__module__ = "rtafast_kernels.probe"  # as a kernel of the package
    return numba.njit(add_one)


def test_compilation_of_a_kernel_is_announced_once(caplog):
    kernel = _kernel_of_rtafast()
    with caplog.at_level(logging.INFO, logger=COMPILE_LOGGER):
        assert kernel(np.zeros(3)) == 3.0
        assert kernel(np.ones(3)) == 6.0  # compiled already: no second line
    lines = [r.getMessage() for r in caplog.records if r.name == COMPILE_LOGGER]
    assert len(lines) == 2, lines
    assert lines[0].startswith("compiling rtafast_kernels.probe.")
    assert "add_one" in lines[0] and "cached on disk" in lines[0]
    assert lines[1].startswith("compiled ") and lines[1].endswith(" s")


def test_compilation_of_other_code_is_not_announced(caplog):
    @numba.njit
    def user_function(x):
        return x + 1

    with caplog.at_level(logging.INFO, logger=COMPILE_LOGGER):
        assert user_function(1) == 2
    assert not [r for r in caplog.records if r.name == COMPILE_LOGGER]
