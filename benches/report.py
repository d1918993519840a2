#!/usr/bin/env python3
"""Prints Strongroom/baseline ratios from criterion's results of the last run.

Usage: python3 benches/report.py [criterion-dir]
The directory defaults to $CARGO_TARGET_DIR/criterion or target/criterion.
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")


def mean_ns(group, bench):
    path = os.path.join(root, group.replace("/", "_"), bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


# (group, strongroom bench, baseline bench, target ratio)
CHECKS = []
for size in ["32B", "1KiB", "64KiB", "1MiB"]:
    small = size in ("32B", "1KiB")
    if small:
        CHECKS.append((f"seal/{size}", "strongroom", "ring-in-place", 2.0 if size == "1KiB" else None))
        CHECKS.append((f"seal/{size}", "strongroom", "ring-fresh-nonce", None))
        CHECKS.append((f"open/{size}", "strongroom", "ring-in-place", None))
    CHECKS.append((f"seal/{size}", "strongroom-in-place", "ring-in-place", None if small else 1.11))
    CHECKS.append((f"open/{size}", "strongroom-in-place", "ring-in-place", 1.3 if size == "1KiB" else (None if small else 1.11)))

# Lease index and policy/audit groups report their own ratios when present.
EXTRA = [
    ("policy/check", "strongroom-read-with-policy-and-audit", "plain-store-read", None),
]
failed = False
print(f"{'benchmark':44} {'strongroom':>12} {'baseline':>12} {'ratio':>7}  target")
for group, ours, base, target in CHECKS + EXTRA:
    a, b = mean_ns(group, ours), mean_ns(group, base)
    if a is None or b is None:
        continue
    ratio = a / b
    verdict = ""
    if target is not None:
        ok = ratio <= target
        failed |= not ok
        verdict = f"<= {target}  {'ok' if ok else 'MISSED'}"
    print(f"{group + ' ' + ours + '/' + base:44} {a:10.0f}ns {b:10.0f}ns {ratio:7.2f}  {verdict}")
sys.exit(1 if failed and "--strict" in sys.argv else 0)
