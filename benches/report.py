#!/usr/bin/env python3
"""Prints Strongroom/baseline ratios from the last bench runs and checks the targets.

Usage: python3 benches/report.py [results-dir] [--strict]
The directory defaults to $CARGO_TARGET_DIR/strongroom-bench or
target/strongroom-bench (`benches/run-all.sh` fills it).

Sealing and opening (`cargo bench --bench seal`) come from the interleaved
bench's results, `seal.json` in that directory:
each ratio is the median of paired per-round ratios, printed with its
25th-75th percentile and min-max spread and the load average of the run.
Each target is checked against the API the README shows (`seal_value`,
`open_value`); the in-place variants are printed beside them.

Every other bench (cache, sqlite_store, secrets_store, lease_rate, ...)
saves `strongroom-bench/<bench>.json` through `strongroom_benches::Figures`:
figures that are medians of paired per-round ratios, each naming the API it
measures, its baseline and its target; they are printed and checked here
too. With --strict the exit code is 1 when a target present in the results
is missed.
"""
import glob
import json
import os
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
interleaved_dir = args[0] if args else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "strongroom-bench")


# Targets: (group, strongroom variant, baseline variant) -> ratio.
# Variants (benches/benches/seal.rs): `strongroom` is `seal_value` /
# `open_value`; baselines are raw ring AES-256-GCM doing the same work.
TARGETS = {
    # seal_value against ring sealing in place with a counter nonce.
    ("seal/1KiB", "strongroom", "ring-counter"): 2.0,
    # seal_value against ring allocating, copying and sealing with a pooled
    # nonce (the same work), and the in-place seal against ring in place.
    ("seal/64KiB", "strongroom", "ring-copy-pooled"): 1.11,
    ("seal/1MiB", "strongroom", "ring-copy-pooled"): 1.11,
    ("seal/64KiB", "strongroom-in-place", "ring-counter"): 1.11,
    ("seal/1MiB", "strongroom-in-place", "ring-counter"): 1.11,
    # open_value against ring copying the ciphertext into a fresh Vec and
    # opening it in place.
    ("open/1KiB", "strongroom", "ring-copy"): 1.3,
    ("open/64KiB", "strongroom", "ring-copy"): 1.11,
    ("open/1MiB", "strongroom", "ring-copy"): 1.11,
}

def verdict(ratio, target):
    if target is None:
        return "", False
    ok = ratio <= target
    return f"<= {target}  {'ok' if ok else 'MISSED'}", not ok


failed = False
checked = set()
seal_file = os.path.join(interleaved_dir, "seal.json")
try:
    with open(seal_file) as f:
        seal = json.load(f)
except FileNotFoundError:
    seal = None
if seal is not None:
    print(f"seal bench ({seal_file}): {seal['rounds']} interleaved rounds; "
          f"load average {seal['load_start']} at start, {seal['load_end']} at end")
    print(f"{'benchmark':46} {'strongroom':>12} {'baseline':>12} {'ratio':>7}  "
          f"{'p25-p75':>11}  {'min-max':>11}  target")
    for r in seal["results"]:
        key = (r["group"], r["ours"], r["base"])
        target = TARGETS.get(key)
        checked.add(key)
        ratio = r["ratio_median"]
        text, missed = verdict(ratio, target)
        failed |= missed
        name = f"{r['group']} {r['ours']}/{r['base']}"
        print(f"{name:46} {r['ours_ns']:10.0f}ns {r['base_ns']:10.0f}ns {ratio:7.3f}  "
              f"{r['ratio_p25']:.3f}-{r['ratio_p75']:.3f}  "
              f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f}  {text}")
    for key in TARGETS:
        if key not in checked:
            failed = True
            print(f"{key[0] + ' ' + key[1] + '/' + key[2]:46} missing from {seal_file}")
    print()

figure_files = sorted(f for f in glob.glob(os.path.join(interleaved_dir, "*.json"))
                      if os.path.basename(f) != "seal.json")
for path in figure_files:
    with open(path) as f:
        run = json.load(f)
    print()
    print(f"{run['bench']} ({path}): load average {run['load_start']} at start, "
          f"{run['load_end']} at end")
    for fig in run["figures"]:
        t = fig["target"]
        m = fig["median"]
        if t is None or m is None:
            text = ""
        elif "at_most" in t:
            ok = m <= t["at_most"]
            text = f"<= {t['at_most']}  {'ok' if ok else 'MISSED'}"
            failed |= not ok
        else:
            ok = m >= t["at_least"]
            text = f">= {t['at_least']}  {'ok' if ok else 'MISSED'}"
            failed |= not ok
        spread = (f"{fig['min']:.2f}-{fig['max']:.2f}"
                  if fig["min"] is not None and fig["max"] is not None else "n/a")
        shown = f"{m:.2f}x" if m is not None else "n/a"
        print(f"  {fig['name']:52} {shown:>8}  ({spread}, {fig['rounds']} rounds)  {text}")
        print(f"  {'':52} api: {fig['api']}; baseline: {fig['baseline']}")

if seal is None and not figure_files:
    print(f"no results found in {interleaved_dir}; run benches/run-all.sh first")
sys.exit(1 if failed and "--strict" in sys.argv else 0)
