#!/usr/bin/env bash
# Builds the Node binding as the packages users install, installs them into an
# empty folder and runs the node --test suite from there:
#   1. npm install here (devDependencies: @napi-rs/cli, typescript; the
#      package has no install script);
#   2. scripts/build-platforms.sh x86_64-unknown-linux-gnu: the addon (release,
#      glibc 2.17 via zig), the platform package strongroom-linux-x64-gnu and
#      the main package strongroom, packed with npm pack;
#   3. `npm install <main>.tgz <platform>.tgz` into an empty folder with only
#      node and npm on PATH (no napi, no cargo) and an empty npm cache
#      (--offline: nothing comes from the registry);
#   4. `pg` (node-postgres, for strongroom/pg) is installed into that folder
#      as the application's own dependency, as a user does;
#   5. the suite (test/ and the two scripts it uses, copied into the installed
#      package) runs against the installed package, with one private
#      PostgreSQL cluster for the whole run (strongroom-testpg, from a
#      `cargo build --workspace` of its binary; stopped when the run ends).
# Idempotent; all output under $CARGO_TARGET_DIR/strongroom-npm. Needs node >=
# 20.17, npm, a Rust toolchain, python3 with venv (zig and cargo-zigbuild come
# from PyPI), the npm registry on first run, and installs SoftHSM2 with
# apt-get if it is missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export STRONGROOM_XLANG_DIR="${STRONGROOM_XLANG_DIR:-$CARGO_TARGET_DIR/strongroom-xlang}"
STAGE="$CARGO_TARGET_DIR/strongroom-npm"
cd "$HERE"

# `npm install` (not `npm ci`: npm 11 rejects this lockfile's optional
# per-platform packages of @napi-rs/cli). The optionalDependencies on
# strongroom-linux-* are not on the registry; npm skips them.
npm install --no-audit --no-fund

bash scripts/build-platforms.sh x86_64-unknown-linux-gnu
VERSION="$(node -p 'require("./package.json").version')"
MAIN_TGZ="$STAGE/tarballs/strongroom-$VERSION.tgz"
PLAT_TGZ="$STAGE/tarballs/strongroom-linux-x64-gnu-$VERSION.tgz"

# Install into an empty folder. PATH holds only node's and npm's folder and
# /bin (for sh), so an install script needing napi or cargo would fail.
APP="$STAGE/install-test"
rm -rf "$APP" "$STAGE/npm-cache"
mkdir -p "$APP"
NODE_PATH_DIRS="$(dirname "$(command -v node)"):$(dirname "$(command -v npm)"):/bin"
(
    cd "$APP"
    export PATH="$NODE_PATH_DIRS"
    if command -v napi >/dev/null || command -v cargo >/dev/null; then
        echo "napi or cargo is on the install PATH ($PATH)" >&2; exit 1
    fi
    npm install --no-audit --no-fund --offline --cache "$STAGE/npm-cache" \
        "$MAIN_TGZ" "$PLAT_TGZ"
)
# The application's own node-postgres (strongroom/pg loads it), the version
# this folder's devDependencies resolved; npm's usual cache.
PG_VERSION="$(node -p 'require("./node_modules/pg/package.json").version')"
(cd "$APP" && npm install --no-audit --no-fund --prefer-offline "pg@$PG_VERSION" >/dev/null)
INSTALLED="$APP/node_modules/strongroom"
[ -f "$APP/node_modules/strongroom-linux-x64-gnu/strongroom.linux-x64-gnu.node" ] \
    || { echo "strongroom-linux-x64-gnu was not installed" >&2; exit 1; }
if find "$INSTALLED" -name '*.node' | grep -q .; then
    echo "the installed main package holds a .node" >&2; exit 1
fi
# The installed package loads its addon from the platform package.
(cd "$APP" && node -e '
const sr = require("strongroom")
const addon = Object.keys(require.cache).find((f) => f.endsWith(".node"))
const want = require("path").join(process.cwd(), "node_modules", "strongroom-linux-x64-gnu", "strongroom.linux-x64-gnu.node")
if (addon !== want || typeof sr.Strongroom !== "function") {
  console.error(`loaded ${addon}, expected ${want}`); process.exit(1)
}')

# The suite, run from the installed package. Its tests find the repository
# (docs/, bindings/xlang, the Python stub) three folders above test/, which
# is $APP here: link those in. typescript and @types/node (types.test.js)
# come from this folder's devDependencies.
cp -r test "$INSTALLED/test"
mkdir -p "$INSTALLED/scripts"
cp scripts/xlang.js scripts/gen-errors.js "$INSTALLED/scripts/"
ln -s "$ROOT/docs" "$APP/docs"
ln -s "$ROOT/bindings" "$APP/bindings"
mkdir -p "$INSTALLED/node_modules/@types"
ln -s "$HERE/node_modules/typescript" "$INSTALLED/node_modules/typescript"
ln -s "$HERE/node_modules/@types/node" "$INSTALLED/node_modules/@types/node"

# The S9 tests (test/s9-pkcs11.test.js) need SoftHSM2; the project's script
# installs it with apt-get when it is missing and does nothing otherwise.
bash ../../scripts/setup-softhsm.sh >/dev/null

# One private PostgreSQL cluster for the run: strongroom-testpg prints its
# superuser URL and stops it when its standard input closes.
(cd "$ROOT" && cargo build --workspace --bin strongroom-testpg --quiet)
coproc TESTPG { "$CARGO_TARGET_DIR/debug/strongroom-testpg"; }
TESTPG_IN="${TESTPG[1]}"
trap 'exec {TESTPG_IN}>&-; wait' EXIT
read -r STRONGROOM_NODE_PG_URL <&"${TESTPG[0]}"
case "$STRONGROOM_NODE_PG_URL" in
    postgres://*) export STRONGROOM_NODE_PG_URL ;;
    *) echo "strongroom-testpg did not start a cluster" >&2; exit 1 ;;
esac

cd "$INSTALLED"
node --test test/*.test.js test/*.test.mjs
