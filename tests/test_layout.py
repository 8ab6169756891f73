"""The layout rules of docs/design.md, checked: small modules, short functions, two layers,
kernel families registered in one place."""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import rtafast_kernels
from rtafast_kernels import registry

ROOT = Path(__file__).resolve().parents[1]
#: Source folders under the size rules (tests and benchmarks are not).
SOURCES = ("rtafast", "kernels", "rtafast_devtools")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 120


def _python_files():
    return sorted(path for folder in SOURCES for path in (ROOT / folder).rglob("*.py"))


def test_modules_are_small():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _python_files()
        if (n := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines"


def test_functions_fit_on_a_screen():
    long = {}
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = n
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines"


def test_array_layer_imports_no_astronomy():
    """``rtafast_kernels`` takes and returns arrays: no astropy, gammapy or rtafast."""
    offenders = []
    for path in (ROOT / "kernels").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] in ("astropy", "gammapy", "regions", "rtafast"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_every_family_folder_is_registered_and_complete():
    """Each kernel family sub-package is in ``registry.FAMILIES`` and its operations name
    modules and functions that exist for every backend."""
    folders = {info.name for info in pkgutil.iter_modules(rtafast_kernels.__path__) if info.ispkg}
    assert folders == set(registry.FAMILIES)
    table = registry.operation_table()
    assert table, "no operations declared"
    for name, (family, modules) in table.items():
        assert set(modules) == set(registry.BACKEND_NAMES), (name, family)
        for module in modules.values():
            implementation = importlib.import_module(f"rtafast_kernels.{family}.{module}")
            assert callable(getattr(implementation, name)), (family, module, name)


def test_unknown_operation_is_an_attribute_error():
    backend = rtafast_kernels.resolve_backend("numpy")
    with pytest.raises(AttributeError, match="no kernel family provides operation 'nope'"):
        backend.nope  # noqa: B018


def test_every_package_is_installed():
    """pyproject's explicit package list names every package folder (a folder missing from
    it works in the editable install of the tests and breaks a wheel install)."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    names = {"rtafast": "rtafast", "kernels": "rtafast_kernels"}
    found = {
        ".".join([names[init.relative_to(ROOT).parts[0]], *init.relative_to(ROOT).parts[1:-1]])
        for folder in names
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - listed == set(), "package folders missing from pyproject.toml"
