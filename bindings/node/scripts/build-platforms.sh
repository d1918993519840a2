#!/usr/bin/env bash
# Builds the per-platform npm packages of the Node binding and the main
# package, checks each addon and packs everything into tarballs:
#
#   strongroom-linux-x64-gnu    x86_64-unknown-linux-gnu  (glibc >= 2.17)
#   strongroom-linux-x64-musl   x86_64-unknown-linux-musl
#   strongroom-linux-arm64-gnu  aarch64-unknown-linux-gnu (glibc >= 2.17)
#   strongroom-linux-arm64-musl aarch64-unknown-linux-musl
#   strongroom                  index.js, index.mjs, index.d.ts, binding.js;
#                               optionalDependencies on the four above
#
# Usage: bash bindings/node/scripts/build-platforms.sh [TARGET...]
#   TARGET is a Rust target triple from the list; default: all four.
# Each addon is a release build through `napi build -x` (cargo-zigbuild with
# zig from PyPI, in the venv $CARGO_TARGET_DIR/venv-strongroom-zig): glibc
# targets are linked against glibc 2.17, musl targets dynamically against
# musl's libc (-crt-static), as Node on Alpine loads them.
# Output, all under $CARGO_TARGET_DIR/strongroom-npm/ (nothing in the tree):
#   build/<platform>/   napi's output (the .node, binding.js, binding.d.ts)
#   pkg/<package>/      the package folders as packed
#   tarballs/*.tgz      `npm pack` of each
# Checks, each of which fails the script: the addon is an ELF shared object
# for the target's machine; glibc: no GLIBC_x.y symbol version above 2.17;
# musl: no glibc symbol version or library, musl's libc linked; the main
# package holds no .node and no install script.
# Needs node/npm with this folder's devDependencies installed (npm install),
# python3 with venv, readelf, and PyPI and rustup on first run.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
STAGE="$CARGO_TARGET_DIR/strongroom-npm"

TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(x86_64-unknown-linux-gnu x86_64-unknown-linux-musl
             aarch64-unknown-linux-gnu aarch64-unknown-linux-musl)
fi

# zig and cargo-zigbuild (both PyPI packages) for `napi build -x`.
ZVENV="${STRONGROOM_ZIG_VENV:-$CARGO_TARGET_DIR/venv-strongroom-zig}"
if [ ! -x "$ZVENV/bin/python" ]; then
    python3 -m venv "$ZVENV"
fi
if [ ! -f "$ZVENV/.strongroom-deps-1" ]; then
    "$ZVENV/bin/python" -m pip install --quiet 'ziglang>=0.13' 'cargo-zigbuild>=0.19'
    touch "$ZVENV/.strongroom-deps-1"
fi
export PATH="$ZVENV/bin:$PATH"

cd "$HERE"
[ -x node_modules/.bin/napi ] || npm install --no-audit --no-fund
VERSION="$(node -p 'require("./package.json").version')"
mkdir -p "$STAGE/build" "$STAGE/pkg" "$STAGE/tarballs"

# check_addon FILE ARCH LIBC
check_addon() {
    local so="$1" arch="$2" libc="$3" machine needed versions v lib bad=""
    machine="$(readelf -h "$so" | sed -n 's/^ *Machine: *//p')"
    case "$arch:$machine" in
        x64:*X86-64*|arm64:AArch64) ;;
        *) bad="$bad machine is '$machine', not $arch;" ;;
    esac
    readelf -h "$so" | grep -q 'DYN (Shared object file)' || bad="$bad not a shared object;"
    needed="$(readelf -dW "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)"
    versions="$(readelf -VW "$so" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV || true)"
    if [ "$libc" = gnu ]; then
        for v in $versions; do
            if [ "$(printf '%s\n%s\n' "$v" GLIBC_2.17 | sort -V | tail -n 1)" != GLIBC_2.17 ]; then
                bad="$bad requires $v (> GLIBC_2.17);"
            fi
        done
        echo "    $(basename "$so"): newest glibc version required: $(echo "$versions" | tail -n 1); links $(echo $needed)"
    else
        [ -z "$versions" ] || bad="$bad requires glibc symbol versions ($(echo $versions));"
        for lib in $needed; do
            case "$lib" in
                libc.musl-*.so.1|libc.so|libgcc_s.so.1) ;;
                *) bad="$bad links $lib (not musl's libc);" ;;
            esac
        done
        echo "$needed" | grep -Eq '^libc(\.musl-.*\.so\.1|\.so)$' || bad="$bad links no libc (needed: $(echo $needed));"
        echo "    $(basename "$so"): links $(echo $needed), no glibc"
    fi
    if [ -n "$bad" ]; then
        echo "$so:$bad" >&2
        return 1
    fi
}

BINDING_JS=""
for target in "${TARGETS[@]}"; do
    case "$target" in
        x86_64-unknown-linux-gnu) plat=linux-x64-gnu; arch=x64; libc=gnu; zt="$target.2.17" ;;
        x86_64-unknown-linux-musl) plat=linux-x64-musl; arch=x64; libc=musl; zt="$target" ;;
        aarch64-unknown-linux-gnu) plat=linux-arm64-gnu; arch=arm64; libc=gnu; zt="$target.2.17" ;;
        aarch64-unknown-linux-musl) plat=linux-arm64-musl; arch=arm64; libc=musl; zt="$target" ;;
        *) echo "unsupported target $target" >&2; exit 2 ;;
    esac
    echo "==> $plat ($target)"
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    out="$STAGE/build/$plat"
    rm -rf "$out"
    # musl: link musl's libc dynamically (a cdylib with a static libc
    # inside does not belong in a Node process).
    env_name="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
    if [ "$libc" = musl ]; then
        export "$env_name=-C target-feature=-crt-static"
    fi
    npx napi build --platform --release -x --target "$zt" -o "$out" \
        --js binding.js --dts binding.d.ts
    node="$out/strongroom.$plat.node"
    [ -f "$node" ] || { echo "napi build wrote no $node" >&2; ls -la "$out" >&2; exit 1; }
    check_addon "$node" "$arch" "$libc"
    BINDING_JS="$out/binding.js"

    pkg="$STAGE/pkg/$plat"
    rm -rf "$pkg" && mkdir -p "$pkg"
    cp "npm/$plat/package.json" "npm/$plat/README.md" "$pkg/"
    cp "$node" "$pkg/"
    rm -f "$STAGE/tarballs/strongroom-$plat-"*.tgz
    (cd "$pkg" && npm pack --silent --pack-destination "$STAGE/tarballs" >/dev/null)
done

# The main package: JavaScript only; the loader (binding.js) picks the local
# .node in a dev checkout and the platform package when installed.
main="$STAGE/pkg/strongroom"
rm -rf "$main" && mkdir -p "$main"
cp package.json README.md index.js index.mjs index.d.ts pg.js pg.d.ts "$main/"
cp "$BINDING_JS" "$main/binding.js"
node -e '
const p = require(process.argv[1] + "/package.json")
const bad = []
if (p.scripts && (p.scripts.install || p.scripts.preinstall || p.scripts.postinstall)) bad.push("has an install script")
for (const f of p.files) if (f.endsWith(".node")) bad.push("ships " + f)
const want = ["linux-x64-gnu", "linux-x64-musl", "linux-arm64-gnu", "linux-arm64-musl"]
for (const plat of want) {
  const dep = p.optionalDependencies && p.optionalDependencies["strongroom-" + plat]
  const sub = require(process.argv[2] + "/npm/" + plat + "/package.json")
  if (dep !== p.version || sub.version !== p.version) bad.push(`strongroom-${plat}: optionalDependency ${dep}, package ${sub.version}, main ${p.version}`)
}
if (bad.length) { console.error("package.json: " + bad.join("; ")); process.exit(1) }
' "$main" "$HERE"
rm -f "$STAGE/tarballs/strongroom-$VERSION.tgz"
(cd "$main" && npm pack --silent --pack-destination "$STAGE/tarballs" >/dev/null)
if tar -tzf "$STAGE/tarballs/strongroom-$VERSION.tgz" | grep -q '\.node$'; then
    echo "the main package holds a .node" >&2; exit 1
fi
echo "==> tarballs in $STAGE/tarballs:"
ls -1 "$STAGE/tarballs"
