#!/usr/bin/env bash
# Builds the strongroom-ffi cdylib and generates its uniffi bindings.
#   generate.sh                  regenerate the checked-in Swift sources
#   generate.sh --check          fail if the checked-in Swift sources are stale
#   generate.sh --python DIR     also generate the Python bindings into DIR
#                                (with the cdylib copied beside them)
# Honours CARGO_TARGET_DIR.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CHECK=0
PYOUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --check) CHECK=1 ;;
        --python) PYOUT="$2"; shift ;;
        *) echo "generate.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

cd "$ROOT"
cargo build --workspace --quiet
LIB="$CARGO_TARGET_DIR/debug/libstrongroom_ffi.so"
BINDGEN="$CARGO_TARGET_DIR/debug/uniffi-bindgen"
[ -f "$LIB" ] || { echo "generate.sh: $LIB was not built" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$BINDGEN" generate --library "$LIB" --language swift --out-dir "$TMP/swift" >/dev/null 2>&1
mkdir -p "$TMP/Sources/Strongroom" "$TMP/Sources/StrongroomFFI/include"
mv "$TMP/swift/Strongroom.swift" "$TMP/Sources/Strongroom/Strongroom.swift"
mv "$TMP/swift/StrongroomFFI.h" "$TMP/Sources/StrongroomFFI/include/StrongroomFFI.h"

SRC="$HERE/Sources"
if [ "$CHECK" = 1 ]; then
    if ! diff -r "$TMP/Sources/Strongroom" "$SRC/Strongroom" >/dev/null \
        || ! diff "$TMP/Sources/StrongroomFFI/include/StrongroomFFI.h" "$SRC/StrongroomFFI/include/StrongroomFFI.h" >/dev/null; then
        echo "generate.sh: bindings/swift/Sources is stale; run bindings/swift/generate.sh and commit" >&2
        diff -ru "$SRC" "$TMP/Sources" | head -40 >&2 || true
        exit 1
    fi
else
    mkdir -p "$SRC/Strongroom" "$SRC/StrongroomFFI/include"
    cp "$TMP/Sources/Strongroom/Strongroom.swift" "$SRC/Strongroom/Strongroom.swift"
    cp "$TMP/Sources/StrongroomFFI/include/StrongroomFFI.h" "$SRC/StrongroomFFI/include/"
fi

if [ -n "$PYOUT" ]; then
    mkdir -p "$PYOUT"
    "$BINDGEN" generate --library "$LIB" --language python --out-dir "$PYOUT" >/dev/null
    cp "$LIB" "$PYOUT/"
fi
