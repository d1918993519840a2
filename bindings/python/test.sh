#!/usr/bin/env bash
# Builds the x86_64 manylinux2014 abi3 wheel (maturin + zig, dev profile),
# checks it like build-wheels.sh does (tags, glibc <= 2.17), installs it into
# a fresh venv and runs the pytest suite against the installed package.
# Needs python3 (>= 3.11) with venv, cargo, readelf, and PyPI on first run
# (maturin, ziglang, pytest; the test venv's pytest comes from pip's cache
# after that; asyncpg, psycopg, psycopg-pool and SQLAlchemy wheels for the
# PostgreSQL tests). tests/test_pg.py needs PostgreSQL server binaries
# (initdb, pg_ctl; see crates/strongroom-testpg). Re-runs reuse the tools
# venv and cargo's cache; the test venv is made anew each run. Honours CARGO_TARGET_DIR.
#   STRONGROOM_PY_RELEASE=1   build the wheel with --release
# tests/test_pkcs11.py needs SoftHSM2: bash scripts/setup-softhsm.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export STRONGROOM_XLANG_DIR="${STRONGROOM_XLANG_DIR:-$CARGO_TARGET_DIR/strongroom-xlang}"

# shellcheck source=wheel-tools.sh
. "$HERE/wheel-tools.sh"
wheel_tools_venv
OUT="$CARGO_TARGET_DIR/wheels-test"
PROFILE=dev
[ -z "${STRONGROOM_PY_RELEASE:-}" ] || PROFILE=release
build_and_check_wheel x86_64-unknown-linux-gnu "$PROFILE" "$OUT"

# The tools venv gets the wheel too, for bench.py and bench_verify.py.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

# A fresh venv with the wheel, pytest and the PostgreSQL drivers the pool
# adapters (strongroom.pg) are tested with.
TVENV="$CARGO_TARGET_DIR/venv-strongroom-python-test"
rm -rf "$TVENV"
python3 -m venv "$TVENV"
"$TVENV/bin/python" -m pip install --quiet --disable-pip-version-check 'pytest>=8' "$WHEEL" \
    'asyncpg==0.30.0' 'psycopg[binary]==3.2.10' 'psycopg-pool==3.2.6' 'sqlalchemy==2.0.43'

# tests/test_pg.py starts a private PostgreSQL cluster through this binary.
(cd "$ROOT" && cargo build --quiet --bin strongroom-testpg)
export STRONGROOM_TESTPG="$CARGO_TARGET_DIR/debug/strongroom-testpg"

# `import strongroom` must be the installed wheel, not python/ in the tree
# (pytest runs from this folder; python/ is not on sys.path).
cd "$HERE"
"$TVENV/bin/python" - <<'PY'
import pathlib, sys, strongroom, strongroom._native as n
site = [pathlib.Path(p) for p in sys.path if p.endswith("site-packages")]
for f in (strongroom.__file__, n.__file__):
    if not any(pathlib.Path(f).is_relative_to(s) for s in site):
        sys.exit(f"strongroom resolves to {f}, not the installed wheel")
PY
mkdir -p "$STRONGROOM_XLANG_DIR"
rc=0
"$TVENV/bin/python" -m pytest -q -p no:cacheprovider tests "$@" || rc=$?
# STRONGROOM_BLESS=1 regenerates the stub's error block in the installed copy
# (tests/test_errors.py edits the stub beside the imported module): bring it
# back into the tree.
if [ -n "${STRONGROOM_BLESS:-}" ]; then
    stub="$("$TVENV/bin/python" -c 'import strongroom, pathlib; print(pathlib.Path(strongroom.__file__).with_name("__init__.pyi"))')"
    cmp -s "$stub" python/strongroom/__init__.pyi || cp "$stub" python/strongroom/__init__.pyi
fi
exit "$rc"
