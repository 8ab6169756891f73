"""The backend registry, the CLI and the import-time promise (no CuPy)."""

import os
import subprocess
import sys

import pytest

import rtafast
from rtafast.cli import main
from rtafast_kernels import registry as backends


def test_names_resolve_to_cached_backends():
    assert rtafast.resolve_backend("numpy").name == "numpy"
    assert rtafast.resolve_backend("NumBa") is rtafast.resolve_backend("numba")


def test_auto_picks_numba_without_a_gpu():
    # CI has no GPU: a simulated CUDA device is never picked by "auto"
    assert backends.auto_backend_name() in ("numba", "cuda")
    if not backends.available_backends()["cuda"][0] or __import__("numba").config.ENABLE_CUDASIM:
        assert rtafast.resolve_backend("auto").name == "numba"


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv("RTAFAST_BACKEND", "numpy")
    assert rtafast.resolve_backend(None).name == "numpy"
    monkeypatch.setenv("RTAFAST_BACKEND", "fortran")
    with pytest.raises(ValueError, match=r"unknown rtafast backend 'fortran' \(from \$RTAFAST"):
        rtafast.resolve_backend(None)


def test_unknown_name():
    with pytest.raises(ValueError, match="choose one of 'auto', 'numpy', 'numba', 'cuda'"):
        rtafast.resolve_backend("opencl")


def test_unavailable_backend_says_why(monkeypatch):
    monkeypatch.setattr(backends, "_cuda_status", lambda: (False, "no CUDA device or driver"))
    monkeypatch.setattr(backends, "_instances", {})
    with pytest.raises(rtafast.BackendUnavailableError, match="'cuda' is not available: no CUDA"):
        rtafast.resolve_backend("cuda")


def test_import_rtafast_does_not_import_cupy():
    code = (
        "import sys, rtafast; rtafast.Fit; rtafast.resolve_backend('numba');"
        "print('cupy' in sys.modules, 'numba.cuda' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


def test_cli_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "rtafast 0.1.0" in out and "gammapy" in out
    assert "auto picks:" in out
    for name in ("numpy", "numba", "cuda"):
        assert f"  {name}" in out


def test_cli_error_is_one_line_without_traceback(monkeypatch, capsys):
    monkeypatch.setenv("RTAFAST_BACKEND", "nope")
    assert main(["compare", "--repeat", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtafast: error: unknown rtafast backend 'nope' (from $RTAFAST_BACKEND)")
    assert "Traceback" not in err


def test_cli_compare_runs(capsys):
    assert main(["compare", "--repeat", "1", "--livetime", "10 min"]) == 0
    out = capsys.readouterr().out
    assert "gammapy Fit" in out and "rtafast Fit" in out and "TS =" in out


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "10000"), ({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "active"}, "unset")],
)
def test_openmp_spin_count_default_respects_the_environment(env, expected):
    code = "import os, rtafast_kernels; print(os.environ.get('GOMP_SPINCOUNT', 'unset'))"
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**base, **env},
    )
    assert out.stdout.strip() == expected
