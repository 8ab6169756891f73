#!/usr/bin/env bash
# Create a fresh virtual environment at $1 and install rtafast with its test extra,
# exactly as README's set-up step does. Needs nothing but python3.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:?usage: ci/install.sh VENV_DIR}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".[test]"
