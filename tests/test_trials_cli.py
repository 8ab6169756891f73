"""``rtafast trials`` on the command line: a small run and its report, and bad input as one
line with exit code 2 (no traceback, nothing written)."""

import json

import pytest

from rtafast.cli import main
from tests.test_trials_batch import SMALL

SETS = [item for override in SMALL for item in ("--set", override)]


@pytest.fixture(autouse=True)
def config_file(tmp_path, monkeypatch):
    """``c.yaml`` (the defaults) in the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("trials:\n  seed: 3\n")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_and_its_report(tmp_path, capsys):
    outdir = tmp_path / "out"
    code, out, err = _run(
        capsys,
        "trials",
        "c.yaml",
        "--n",
        "300",
        "-o",
        str(outdir),
        "--workers",
        "1",
        "--no-progress",
        *SETS,
        "--set",
        "trials.batch_size=100",
    )
    assert code == 0, err
    assert "3 batch(es) run (300 trials)" in out
    assert json.loads((outdir / "trials.json").read_text())["n"] == 300
    code, out, err = _run(capsys, "trials", "report", str(outdir))
    assert code == 0, err
    assert (outdir / "report" / "summary.json").is_file()
    assert "report written to" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trials", "c.yaml", "-o", "X"], "give --n"),
        (["trials", "c.yaml", "--n", "10"], "give --n"),
        (
            ["trials", "c.yaml", "--n", "10", "-o", "X", "--set", "trials.bacth_size=5"],
            "bacth_size",
        ),
        (
            ["trials", "c.yaml", "--n", "10", "-o", "X", "--set", "trials.hypothesis=signal"],
            "hypothesis",
        ),
        (["trials", "report"], "usage: rtafast trials report OUTDIR"),
        (["trials", "report", "NOPE"], "NOPE"),
        (["trials", "report", "NOPE", "--n", "3"], "takes no other option"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith("rtafast: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "X").exists()


def test_an_output_path_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    code, _, err = _run(capsys, "trials", "c.yaml", "--n", "5", "-o", str(path), *SETS)
    assert code == 2 and "not a directory" in err
