#!/usr/bin/env bash
# Fresh virtual environment, install as README says, lint, run README's test command.
# Used by .ci/run; runs on a machine with nothing installed but python3.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${RTAFAST_CI_VENV:-$(mktemp -d)/venv}"
python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]"

rtafast info
ruff check .
# README's test command (pytest exits non-zero on failures and with 5 when no test ran)
python -m pytest --benchmark-disable
