#!/usr/bin/env bash
# Builds the Python extension into a private venv and runs its pytest suite.
# Needs python3 (>= 3.11) with venv, cargo, and access to PyPI on first run.
# Re-runs reuse the venv and cargo's cache. Honours CARGO_TARGET_DIR.
# tests/test_pkcs11.py needs SoftHSM2: bash scripts/setup-softhsm.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${STRONGROOM_PY_VENV:-$CARGO_TARGET_DIR/venv-strongroom-python}"
export STRONGROOM_XLANG_DIR="${STRONGROOM_XLANG_DIR:-$CARGO_TARGET_DIR/strongroom-xlang}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.strongroom-deps-1"
if [ ! -f "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet 'maturin>=1.16,<2' 'pytest>=8'
    touch "$STAMP"
fi
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
cd "$HERE"
maturin develop --quiet ${STRONGROOM_PY_RELEASE:+--release}
mkdir -p "$STRONGROOM_XLANG_DIR"
python -m pytest -q tests "$@"
