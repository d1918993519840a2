#!/usr/bin/env bash
# Runs the quickstart: an embedded store (SQLite file + software root key) in
# a temporary directory, through init, write, read, rotate, rewrap and reopen.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run --quiet -p strongroom-examples --example quickstart -- "$dir"
