# Sourced by build-wheels.sh and test.sh: the tools venv, and building and
# checking one wheel. Expects HERE (this directory) and CARGO_TARGET_DIR.

# The venv with maturin, ziglang (zig as a C compiler and linker for old glibc
# and for musl) and pytest; made once, reused (a stamp file per dependency set).
wheel_tools_venv() {
    VENV="${STRONGROOM_PY_VENV:-$CARGO_TARGET_DIR/venv-strongroom-python}"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.strongroom-deps-2"
    if [ ! -f "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet 'maturin>=1.16,<2' 'ziglang>=0.13' 'pytest>=8'
        touch "$stamp"
    fi
}

# The rustup target, installed when missing (rustup is idempotent but slow to
# ask, so look first).
ensure_rust_target() {
    if ! rustup target list --installed | grep -qx "$1"; then
        rustup target add "$1"
    fi
}

# build_and_check_wheel TARGET PROFILE OUTDIR: builds the abi3 wheel for
# TARGET into OUTDIR (replacing an older wheel of the same platform), checks
# it (see build-wheels.sh) and sets WHEEL to its path.
build_and_check_wheel() {
    local target="$1" profile="$2" out="$3" compat arch plat
    case "$target" in
        x86_64-*) arch=x86_64 ;;
        aarch64-*) arch=aarch64 ;;
        *) echo "unsupported target $target" >&2; return 1 ;;
    esac
    case "$target" in
        *-linux-gnu) compat=manylinux2014; plat="manylinux2014_$arch" ;;
        *-linux-musl) compat=musllinux_1_2; plat="musllinux_1_2_$arch" ;;
        *) echo "unsupported target $target" >&2; return 1 ;;
    esac
    ensure_rust_target "$target"
    mkdir -p "$out"
    rm -f "$out"/strongroom-*-"$plat"*.whl "$out"/strongroom-*."$plat"*.whl
    local profile_args=(--profile "$profile")
    [ "$profile" = release ] && profile_args=(--release)
    (cd "$HERE" && PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --quiet \
        "${profile_args[@]}" --zig --target "$target" --compatibility "$compat" --out "$out")
    WHEEL="$(ls -1t "$out"/strongroom-*"$plat"*.whl | head -n 1)"
    check_wheel "$WHEEL" "$arch" "$compat"
}

# check_wheel WHEEL ARCH COMPAT: the checks listed in build-wheels.sh.
check_wheel() {
    local wheel="$1" arch="$2" compat="$3" tmp
    tmp="$(mktemp -d "$CARGO_TARGET_DIR/wheel-check.XXXXXX")"
    if "$VENV/bin/python" - "$wheel" "$arch" "$compat" "$tmp" <<'PY'
import sys, zipfile
wheel, arch, compat, tmp = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    info = next(n for n in names if n.endswith(".dist-info/WHEEL"))
    tags = [l.split(": ", 1)[1].strip() for l in z.read(info).decode().splitlines() if l.startswith("Tag: ")]
    want = {"manylinux2014": [f"cp311-abi3-manylinux2014_{arch}", f"cp311-abi3-manylinux_2_17_{arch}"],
            "musllinux_1_2": [f"cp311-abi3-musllinux_1_2_{arch}"]}[compat]
    if sorted(tags) != sorted(want):
        sys.exit(f"{wheel}: tags {tags}, expected {want}")
    ext = [n for n in names if n.startswith("strongroom/_native") and n.endswith(".so")]
    if ext != ["strongroom/_native.abi3.so"]:
        sys.exit(f"{wheel}: extension modules {ext}, expected strongroom/_native.abi3.so")
    z.extract(ext[0], tmp)
for f in ("__init__.py", "__init__.pyi", "blocking.py", "blocking.pyi", "py.typed"):
    if f"strongroom/{f}" not in names:
        sys.exit(f"{wheel}: strongroom/{f} missing")
PY
    then :; else rm -rf "$tmp"; return 1; fi
    local so="$tmp/strongroom/_native.abi3.so" machine needed versions bad
    machine="$(readelf -h "$so" | sed -n 's/^ *Machine: *//p')"
    case "$arch:$machine" in
        x86_64:*X86-64*|aarch64:AArch64) ;;
        *) echo "$wheel: extension is for '$machine', not $arch" >&2; rm -rf "$tmp"; return 1 ;;
    esac
    readelf -h "$so" | grep -q 'DYN (Shared object file)' \
        || { echo "$wheel: extension is not a shared object" >&2; rm -rf "$tmp"; return 1; }
    needed="$(readelf -dW "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)"
    versions="$(readelf -VW "$so" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV || true)"
    bad=""
    if [ "$compat" = manylinux2014 ]; then
        # manylinux2014 (PEP 599): glibc symbol versions up to 2.17 and only
        # these system libraries.
        local v
        for v in $versions; do
            if [ "$(printf '%s\n%s\n' "$v" GLIBC_2.17 | sort -V | tail -n 1)" != GLIBC_2.17 ]; then
                bad="$bad requires $v (> GLIBC_2.17);"
            fi
        done
        local lib
        for lib in $needed; do
            case "$lib" in
                libc.so.6|libm.so.6|libdl.so.2|libpthread.so.0|librt.so.1|libgcc_s.so.1|\
                ld-linux-x86-64.so.2|ld-linux-aarch64.so.1) ;;
                *) bad="$bad links $lib (not allowed by manylinux2014);" ;;
            esac
        done
        echo "    $(basename "$wheel"): newest glibc version required: $(echo "$versions" | tail -n 1)"
    else
        [ -z "$versions" ] || bad="$bad requires glibc symbol versions ($(echo $versions));"
        # musl's libc is `libc.so` (its soname, as zig links it) or
        # `libc.musl-<arch>.so.1` (Alpine's name); glibc's is libc.so.6.
        local lib
        for lib in $needed; do
            case "$lib" in
                libc.so|libc.musl-*.so.1|libgcc_s.so.1) ;;
                *) bad="$bad links $lib (not musl's libc);" ;;
            esac
        done
        echo "$needed" | grep -Eq '^libc(\.so|\.musl-.*\.so\.1)$' || bad="$bad does not link musl's libc (needed: $(echo $needed));"
        echo "    $(basename "$wheel"): links $(echo $needed), no glibc"
    fi
    rm -rf "$tmp"
    if [ -n "$bad" ]; then
        echo "$wheel:$bad" >&2
        return 1
    fi
}
