#!/usr/bin/env bash
# Builds the Node binding from source and runs its node --test suite.
# Idempotent; honours CARGO_TARGET_DIR (napi build runs cargo). Needs node
# >= 20.17, npm and a Rust toolchain; fetches only from the npm registry (and
# installs SoftHSM2 with apt-get if it is missing).
set -euo pipefail
cd "$(dirname "$0")"

# `npm install` (not `npm ci`: npm 11 rejects this lockfile's optional
# per-platform packages of @napi-rs/cli) follows package-lock.json and runs
# the install script, `napi build --platform --release`, which builds the
# addon; a no-op rebuild when nothing changed.
npm install --no-audit --no-fund

# The S9 tests (test/s9-pkcs11.test.js) need SoftHSM2; the project's script
# installs it with apt-get when it is missing and does nothing otherwise.
bash ../../scripts/setup-softhsm.sh >/dev/null

node --test test/*.test.js test/*.test.mjs
