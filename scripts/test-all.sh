#!/usr/bin/env bash
# Runs every test: Rust (unit, integration, doctests; PostgreSQL tests start a
# private cluster from the machine's initdb; PKCS#11 tests use SoftHSM2),
# the quickstart, and the Python, Node and uniffi binding suites.
# Installs what it needs (SoftHSM2 via apt when missing; Python packages in a
# venv; npm packages) and leaves no server running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
step() { printf '\n==> %s\n' "$*"; }

step "system packages"
bash scripts/setup-softhsm.sh

step "cargo test --workspace"
# Unit, integration and doc tests of every crate (benchmarks are compiled by
# clippy in CI and run with `cargo bench`, not here).
cargo test --workspace

step "quickstart"
bash scripts/quickstart.sh

step "policies example (policy files, handles, verified audit file)"
cargo run --quiet -p strongroom-examples --example policies

step "metrics example (Prometheus text served on 127.0.0.1 and scraped)"
cargo run --quiet -p strongroom-examples --example metrics

step "hsm example (root key in SoftHSM2)"
cargo run --quiet -p strongroom-examples --example hsm

for suite in bindings/python/test.sh bindings/swift/test.sh bindings/node/test.sh; do
  step "$suite"
  bash "$root/$suite"
done

step "all tests passed"
