#!/usr/bin/env bash
# The prepared GPU session (issue 38): every CUDA path, the GPU benchmark table and the bundled
# prior's training, in one command, from the repository root of a fresh GPU machine:
#
#   bash scripts/gpu_session.sh                       # everything, 9 minutes; results in $OUT
#   bash scripts/gpu_session.sh --parts 3 --minutes 5 # one part again; --only NAME,... some steps
#   bash scripts/gpu_session.sh --dry                 # the same on a CPU, tiny (tests/test_gpu_session.py)
#
# The steps, their time limits and the summary: restore/bench/session.py (`--list` prints them).
# Results: $OUT when set (the device tool's return folder; then packed: summary.md, summary.json,
# session.tar.gz, model.tar.part-NN), else gpu_session_out/ (unpacked, under work/).
#
# The project's dependencies: already importable, else installed from wheels carried in .whl/ (a
# machine that can reach no registry, as this workplace's card: scripts/gpu_session_prepare.sh
# downloads them), else with the project's own install line, pip install -e ".[dev]" (a machine
# with internet). Training photos and the held-out set come from .train/ (the same script).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=python3
command -v python3 >/dev/null || PY=python
NEEDED="import diffusers, lpips, piq, png, pydantic, yaml, scipy, matplotlib, tqdm, safetensors, pytest"
if "$PY" -c "$NEEDED" 2>/dev/null; then
    INSTALL="nothing to install (every dependency importable)"
elif ls .whl/*.whl >/dev/null 2>&1; then
    SITE=/tmp/gpu_session_site
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl; then
        export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
        INSTALL="$(ls .whl/*.whl | wc -l) carried wheels from .whl/ into $SITE"
    else
        INSTALL="installing the carried wheels failed"
    fi
else
    if "$PY" -m pip install -q -e ".[dev]"; then
        INSTALL='pip install -e ".[dev]"'
    else
        INSTALL='pip install -e ".[dev]" failed'
    fi
fi
if ! "$PY" -c "$NEEDED" 2>/tmp/gpu_session_import.err; then
    echo "error: the project's dependencies are missing ($INSTALL): $(tail -1 /tmp/gpu_session_import.err)" >&2
    echo "       carry .whl/ (scripts/gpu_session_prepare.sh makes it) or run where pip reaches PyPI" >&2
    exit 2
fi
echo "install: $INSTALL"
export GPU_SESSION_INSTALL=$INSTALL PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PACK=()
[ -n "${OUT:-}" ] && PACK=(--pack)
exec "$PY" -m restore.bench.session "${PACK[@]}" "$@"
