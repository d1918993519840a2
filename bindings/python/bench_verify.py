"""API-key verification: ApiKeyRotation.verify vs the same work in Python's
standard library (HMAC-SHA256 of the presented key, constant-time compare
with the current and previous tags).

Not a test: prints per-call times and the ratio (strongroom / stdlib; lower
is better). Run against a release build:

    STRONGROOM_PY_RELEASE=1 ./test.sh
    $CARGO_TARGET_DIR/venv-strongroom-python/bin/python bench_verify.py
"""

import hmac
import os
import timeit

import strongroom


def best_ns(fn, number=50000, repeat=7):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def main():
    sr = strongroom.blocking.Strongroom.init(
        strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key(os.urandom(32))
    )
    rot = strongroom.blocking.ApiKeyRotation.open(sr, "bench/api-key")
    rot.rotate_now()
    rot.rotate_now()
    staged = rot.staged()
    current = staged.current.secret.reveal().decode()
    previous = staged.previous.secret.reveal()
    wrong = "sk_" + "0" * 32
    assert rot.verify(current) == strongroom.Matched.Current
    assert rot.verify(previous) == strongroom.Matched.Previous

    key = os.urandom(32)
    tags = [hmac.digest(key, current.encode(), "sha256"), hmac.digest(key, previous, "sha256")]

    def stdlib(presented):
        t = hmac.digest(key, presented.encode(), "sha256")
        cur = hmac.compare_digest(t, tags[0])
        prev = hmac.compare_digest(t, tags[1])
        return "current" if cur else "previous" if prev else "no match"

    assert stdlib(current) == "current"
    for label, presented in [("current", current), ("no match", wrong)]:
        ours = best_ns(lambda: rot.verify(presented))
        base = best_ns(lambda: stdlib(presented))
        print(f"verify {label:9s} strongroom {ours:7.0f} ns   stdlib hmac {base:7.0f} ns   ratio {ours / base:.2f}x")


if __name__ == "__main__":
    main()
