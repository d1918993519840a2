#!/usr/bin/env bash
# Builds the binary that Package.swift's `StrongroomFFI` binary target points
# at: bindings/swift/StrongroomFFI.xcframework, the static library
# libstrongroom_ffi.a (release) with the uniffi C header and a module map, for
#   macOS          arm64 + x86_64   (aarch64-apple-darwin, x86_64-apple-darwin)
#   iOS            arm64            (aarch64-apple-ios)
#   iOS simulator  arm64 + x86_64   (aarch64-apple-ios-sim, x86_64-apple-ios)
# and, with --zip, StrongroomFFI.xcframework.zip plus its SwiftPM checksum
# (for a `.binaryTarget(name:url:checksum:)` in a release; see README.md).
#
# Usage (macOS with Xcode's command-line tools and rustup):
#   bash bindings/swift/build-xcframework.sh [--zip]
# Intermediate files go under $CARGO_TARGET_DIR (default target/); the
# xcframework (git-ignored) goes beside Package.swift, where SwiftPM wants a
# path-based binary target.
#
# It cannot run on this project's Linux machines (no Xcode, no Apple SDKs):
# there it says so and exits with status 2 without building anything.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

ZIP=0
for arg in "$@"; do
    case "$arg" in
        --zip) ZIP=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build-xcframework.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

if [ "$(uname -s)" != Darwin ]; then
    echo "build-xcframework.sh: needs macOS with Xcode (xcodebuild, lipo and the Apple SDKs);" >&2
    echo "this machine is $(uname -s), so nothing was built. On Linux use the system-library" >&2
    echo "variant instead: see 'Using it from Swift' in bindings/swift/README.md." >&2
    exit 2
fi
for tool in xcodebuild lipo cargo rustup; do
    command -v "$tool" >/dev/null || { echo "build-xcframework.sh: $tool not found" >&2; exit 1; }
done

TARGETS=(aarch64-apple-darwin x86_64-apple-darwin aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
installed="$(rustup target list --installed)"
for t in "${TARGETS[@]}"; do
    echo "$installed" | grep -qx "$t" || rustup target add "$t"
done

cd "$ROOT"
for t in "${TARGETS[@]}"; do
    echo "==> cargo build --release -p strongroom-ffi --lib --target $t"
    cargo build --release -p strongroom-ffi --lib --target "$t"
done
lib() { echo "$CARGO_TARGET_DIR/$1/release/libstrongroom_ffi.a"; }

WORK="$CARGO_TARGET_DIR/strongroom-xcframework"
rm -rf "$WORK"
mkdir -p "$WORK/macos" "$WORK/ios" "$WORK/ios-simulator" "$WORK/headers"

# One library per platform; lipo joins the architectures of a platform.
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$WORK/macos/libstrongroom_ffi.a"
cp "$(lib aarch64-apple-ios)" "$WORK/ios/libstrongroom_ffi.a"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$WORK/ios-simulator/libstrongroom_ffi.a"

# The header is the checked-in uniffi one (generate.sh --check keeps it
# current). The module map has no `link` line: SwiftPM links the binary
# target's library itself.
cp "$HERE/Sources/StrongroomFFI/include/StrongroomFFI.h" "$WORK/headers/"
cat > "$WORK/headers/module.modulemap" <<'EOF'
module StrongroomFFI {
    header "StrongroomFFI.h"
    export *
}
EOF

OUT="$HERE/StrongroomFFI.xcframework"
rm -rf "$OUT"
xcodebuild -create-xcframework \
    -library "$WORK/macos/libstrongroom_ffi.a" -headers "$WORK/headers" \
    -library "$WORK/ios/libstrongroom_ffi.a" -headers "$WORK/headers" \
    -library "$WORK/ios-simulator/libstrongroom_ffi.a" -headers "$WORK/headers" \
    -output "$OUT"
echo "==> $OUT"

if [ "$ZIP" = 1 ]; then
    rm -f "$OUT.zip"
    (cd "$HERE" && zip -qry "StrongroomFFI.xcframework.zip" "StrongroomFFI.xcframework")
    echo "==> $OUT.zip"
    echo "checksum: $(cd "$HERE" && swift package compute-checksum StrongroomFFI.xcframework.zip)"
fi
