#!/usr/bin/env bash
# Tests the uniffi FFI: checks the checked-in Swift sources are current, then
# runs the scenario suite through uniffi's generated Python bindings (there is
# no Swift compiler here). Honours CARGO_TARGET_DIR.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export STRONGROOM_XLANG_DIR="${STRONGROOM_XLANG_DIR:-$CARGO_TARGET_DIR/strongroom-xlang}"
export STRONGROOM_UNIFFI_PY="$CARGO_TARGET_DIR/strongroom-uniffi-py"
VENV="${STRONGROOM_UNIFFI_VENV:-$CARGO_TARGET_DIR/venv-strongroom-uniffi}"

rm -rf "$STRONGROOM_UNIFFI_PY"
"$HERE/generate.sh" --check --python "$STRONGROOM_UNIFFI_PY"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.strongroom-deps-1"
if [ ! -f "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet 'pytest>=8'
    touch "$STAMP"
fi
mkdir -p "$STRONGROOM_XLANG_DIR"
cd "$HERE"
"$VENV/bin/python" -m pytest -q tests_py "$@"
