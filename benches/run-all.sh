#!/usr/bin/env bash
# Runs every benchmark once, one after another, in one go, so the figures in
# docs/BENCHMARKS.md come from a single run on one machine state. Each
# bench's output goes to target/strongroom-bench/<bench>.txt (the benches
# also save <bench>.json there); report.py then prints and checks every
# target. Not part of the test command: it takes 20-40 minutes.
#
#   bash benches/run-all.sh            # all of them
#   bash benches/run-all.sh cache seal # some
set -euo pipefail
cd "$(dirname "$0")/.."
out="${CARGO_TARGET_DIR:-target}/strongroom-bench"
mkdir -p "$out"
all=(seal cache sqlite_store secrets_store lease_rate lease_memory lease_index
     barrier multiprocess pool policy_audit alerts metrics signing pki)
benches=("${@:-${all[@]}}")
cargo bench -p strongroom-benches --no-run >/dev/null
cargo bench -p strongroom-pki --no-run >/dev/null
{
  echo "run started $(date -u +%FT%TZ) on $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for b in "${benches[@]}"; do
    start=$(date +%s)
    echo "== $b (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    # the CA's bench lives with its crate (crates/strongroom-pki/benches)
    pkg=strongroom-benches
    [ "$b" = pki ] && pkg=strongroom-pki
    cargo bench -q -p "$pkg" --bench "$b" >"$out/$b.txt" 2>&1 ||
      echo "   $b FAILED, see $out/$b.txt"
    echo "   $b took $(( $(date +%s) - start )) s"
  done
  echo "run ended $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/run-all.log"
python3 benches/report.py
