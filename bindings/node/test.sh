#!/usr/bin/env bash
# Builds the Node binding from source and runs its node --test suite.
# Idempotent; honours CARGO_TARGET_DIR (napi build runs cargo). Needs node
# >= 20.17, npm and a Rust toolchain; fetches only from the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

# `npm install` (not `npm ci`: npm 11 rejects this lockfile's optional
# per-platform packages of @napi-rs/cli) follows package-lock.json and runs
# the install script, `napi build --platform --release`, which builds the
# addon; a no-op rebuild when nothing changed.
npm install --no-audit --no-fund

node --test test/*.test.js test/*.test.mjs
