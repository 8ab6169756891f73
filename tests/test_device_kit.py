"""ci/device_kit_check.py: the carried wheels' requirements are carried or in the image."""

import importlib.util
import zipfile
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "ci" / "device_kit_check.py"


@pytest.fixture(scope="module")
def kit_check():
    spec = importlib.util.spec_from_file_location("device_kit_check", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(folder, name, version, requires):
    """A minimal wheel whose METADATA lists ``requires`` (Requires-Dist lines)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(lines) + "\n")
    return path


def test_requirements_carried_or_in_image_pass(tmp_path, kit_check):
    _wheel(tmp_path, "gammapy", "2.1", ["numpy>=1.21", "regions>=0.5", "pydantic>=2.5"])
    _wheel(tmp_path, "regions", "0.11", ["astropy>=6"])
    _wheel(tmp_path, "astropy", "8.0.2", ["pyerfa>=2", "numpy"])
    _wheel(tmp_path, "pyerfa", "2.0.1.5", ["numpy>=1.19"])
    _wheel(tmp_path, "pydantic", "2.14.4", [
        'importlib-metadata; python_version < "3.10"',  # not for the lease's 3.12
        'email-validator>=2.0.0; extra == "email"',  # an extra: not installed
        "typing-extensions>=4.14",
    ])
    assert kit_check.missing_requirements(tmp_path) == []


def test_missing_requirement_is_named(tmp_path, kit_check):
    _wheel(tmp_path, "gammapy", "2.1", ["numpy", "click", "regions>=0.5"])
    _wheel(tmp_path, "distributed", "2026.8.0", ['tblib>=1.6; python_version >= "3.11"'])
    missing = kit_check.missing_requirements(tmp_path)
    assert missing == [
        ("distributed-2026.8.0-py3-none-any.whl", 'tblib>=1.6; python_version >= "3.11"'),
        ("gammapy-2.1-py3-none-any.whl", "regions>=0.5"),
    ]
