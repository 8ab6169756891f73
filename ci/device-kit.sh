#!/usr/bin/env bash
# Prepare, on a machine with PyPI, what a leased GPU machine (the workplace's `device`
# tool: an H200 node with Python 3.12, numba, numba-cuda and CuPy, no network) needs to
# run ci/gpu-check.sh on a copy of this working tree:
#   .whl/      the wheels (CPython 3.12, manylinux x86-64) of the packages its image lacks,
#              pinned in ci/device-wheels.txt (voevent-parse, an sdist, built as a wheel)
#   .devdata   a link to the real data (../shared/data or $RTAFAST_DATA), never a copy in
#              the tree: the call carries the folders the checks read through it
#              (H.E.S.S. DL3 DR1, prod5 IRFs, gammapy's light-curve reference), which
#              arrive there as a plain folder .devdata (the device tool's README); CTA 1DC
#              (11 MiB) no longer fits beside the carried numpy: its rows skip there
# Both are git-ignored; the device call names them in `carry`:
#   carry=[".whl", ".devdata/hess-dl3-dr1", ".devdata/cta-caldb", ".devdata/estimators"]
# What travels must stay under 64 MiB: the script fails above 60 MiB.
# Usage: bash ci/device-kit.sh [PYTHON]   (an interpreter with pip and packaging, e.g. the
# project's venv: .venv/bin/python; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-python3}"
data="${RTAFAST_DATA:-../shared/data}"
[ -d "$data/hess-dl3-dr1" ] || { echo "device-kit: no real data at $data (set RTAFAST_DATA)" >&2; exit 1; }

rm -rf .whl .devdata
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux_2_5_x86_64 manylinux1_x86_64; do platforms+=(--platform "$p"); done
mapfile -t pins < <(grep -v '^\s*#' ci/device-wheels.txt | grep -v '^\s*$' | grep -v '^voevent-parse')
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d .whl "${pins[@]}"
voevent=$(grep '^voevent-parse' ci/device-wheels.txt)
"$python" -m pip wheel --quiet --no-deps -w .whl "$voevent"   # pure Python: any interpreter

ln -s "$(cd "$data" && pwd)" .devdata
carried=(.whl)
for folder in hess-dl3-dr1 cta-caldb estimators; do  # not gammapy's test files
    carried+=(".devdata/$folder/")
done

"$python" ci/device_kit_check.py .whl
size=$(du -scmL "${carried[@]}" $(git ls-files) 2>/dev/null | tail -1 | cut -f1)
echo "device-kit: .whl $(du -sm .whl | cut -f1) MiB, data $(du -scmL "${carried[@]:1}" | tail -1 | cut -f1) MiB;" \
     "with the tracked files ~${size} MiB travel (limit 64 MiB)"
[ "$size" -le 60 ] || { echo "device-kit: too large for the device call" >&2; exit 1; }
