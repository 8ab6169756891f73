# Sourced by ci/gpu-check.sh and ci/gpu-bench.sh (bash, from the repository root, with
# $python set): run rtafast from this tree on a machine where it is not pip-installed,
# e.g. a device lease's copy of the tree (no network there).
#   - the carried wheels (.whl, made by ci/device-kit.sh) when the image lacks gammapy,
#     installed into /tmp/rtafast-site;
#   - the tree, and kernels/ as rtafast_kernels (as pyproject maps it), on PYTHONPATH
#     when rtafast is not importable as installed;
#   - the carried real data (.devdata) as RTAFAST_DATA and GAMMAPY_DATA.
# Returns 2 when the wheels do not install.

if [ -d .whl ] && ! "$python" -c "import gammapy" 2>/dev/null; then
    # installed by an earlier call on the same machine, or now
    PYTHONPATH=/tmp/rtafast-site "$python" -c "import gammapy" 2>/dev/null ||
        { "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target /tmp/rtafast-site .whl/*.whl &&
          # compiled now: else Python 3.12 prints gammapy's SyntaxWarnings (invalid escape
          # sequences) on the stderr of whichever process imports it first, a CLI's too
          { "$python" -m compileall -q -j 0 /tmp/rtafast-site > /dev/null 2>&1 || true; }; } ||
        { echo "tree-env: wheel install failed"; return 2; }
    export PYTHONPATH="/tmp/rtafast-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$python" -c "import rtafast, rtafast_kernels" 2>/dev/null; then
    mkdir -p /tmp/rtafast-src
    ln -sfn "$PWD/kernels" /tmp/rtafast-src/rtafast_kernels
    export PYTHONPATH="$PWD:/tmp/rtafast-src${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d .devdata ]; then
    export RTAFAST_DATA="$PWD/.devdata" GAMMAPY_DATA="$PWD/.devdata"
fi
