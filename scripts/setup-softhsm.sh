#!/usr/bin/env bash
# Installs SoftHSM2 (the PKCS#11 module the strongroom-pkcs11 tests run
# against) if `softhsm2-util` is missing. Debian/Ubuntu only (apt-get).
# The tests create their own token in a temporary directory; this script only
# installs the package.
set -euo pipefail

MODULE_CANDIDATES=(
    /usr/lib/softhsm/libsofthsm2.so
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so
)

have_module() {
    for m in "${MODULE_CANDIDATES[@]}"; do
        [ -e "$m" ] && return 0
    done
    return 1
}

if command -v softhsm2-util >/dev/null 2>&1 && have_module; then
    echo "softhsm2 already installed: $(softhsm2-util --version)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: softhsm2-util is missing and apt-get is not available; install SoftHSM2 (package softhsm2) by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends softhsm2

if ! have_module; then
    echo "error: softhsm2 installed but libsofthsm2.so was not found in: ${MODULE_CANDIDATES[*]}" >&2
    exit 1
fi
echo "softhsm2 installed: $(softhsm2-util --version)"
