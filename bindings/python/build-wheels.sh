#!/usr/bin/env bash
# Builds the distributable abi3 wheels (CPython >= 3.11) with maturin and zig
# (the `ziglang` package from PyPI), without docker, and checks each one:
#
#   x86_64  manylinux2014 (glibc >= 2.17)   aarch64 manylinux2014
#   x86_64  musllinux_1_2 (musl >= 1.2)     aarch64 musllinux_1_2
#
# Usage: bash bindings/python/build-wheels.sh [--profile dev|release] [TARGET...]
#   TARGET is a Rust target triple; default: all four above
#   (x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl,
#   aarch64-unknown-linux-gnu, aarch64-unknown-linux-musl).
#   --profile defaults to release.
# Wheels land in $CARGO_TARGET_DIR/wheels/ (default target/wheels/); tools in
# the venv $CARGO_TARGET_DIR/venv-strongroom-python (maturin, ziglang).
# Installs the rustup targets it needs. Needs python3 with venv, readelf
# (binutils) and access to PyPI and the rustup dist server on first run.
#
# Checks, each of which fails the script:
#   - the wheel's tags are cp311-abi3 and the platform tag asked for;
#   - the extension is an ELF shared object for the target's machine;
#   - glibc wheels: every GLIBC_x.y symbol version it requires is <= 2.17 and
#     it links only libraries manylinux2014 allows;
#   - musl wheels: it requires no GLIBC symbol version and links no glibc
#     library, only musl's libc.
# bindings/python/test.sh builds the x86_64 manylinux2014 wheel the same way
# (dev profile) and runs the test suite against it installed in a fresh venv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

PROFILE=release
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) PROFILE="$2"; shift 2 ;;
        --profile=*) PROFILE="${1#--profile=}"; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(x86_64-unknown-linux-gnu x86_64-unknown-linux-musl
             aarch64-unknown-linux-gnu aarch64-unknown-linux-musl)
fi
OUT="${STRONGROOM_WHEEL_DIR:-$CARGO_TARGET_DIR/wheels}"

# shellcheck source=wheel-tools.sh
. "$HERE/wheel-tools.sh"
wheel_tools_venv

mkdir -p "$OUT"
for target in "${TARGETS[@]}"; do
    echo "==> $target ($PROFILE)"
    build_and_check_wheel "$target" "$PROFILE" "$OUT"
done
echo "==> wheels in $OUT:"
ls -1 "$OUT"/*.whl
