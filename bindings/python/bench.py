"""Seal/open 1 KiB: strongroom vs cryptography (AESGCM + os.urandom nonce) vs tink.

Not a test: prints per-operation times and ratios (strongroom / other; lower
is better; target seal <= 0.8x cryptography, <= 0.5x tink). Run against a
release build:

    STRONGROOM_PY_RELEASE=1 ./test.sh            # builds with --release
    $CARGO_TARGET_DIR/venv-strongroom-python/bin/pip install cryptography tink
    $CARGO_TARGET_DIR/venv-strongroom-python/bin/python bench.py

Every contender gets the same 1 KiB plaintext and comparable associated data
(strongroom binds a path and version; the others get them as AAD).
"""

import os
import sys
import timeit

import strongroom

SIZE = 1024
PATH, VERSION = "bench/app/db-password", 1
AAD = PATH.encode() + VERSION.to_bytes(8, "big")
data = os.urandom(SIZE)


def best_ns(fn, number=20000, repeat=7):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def strongroom_ops():
    sr = strongroom.blocking.Strongroom.init(
        strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key(os.urandom(32))
    )
    sealed = sr.seal_value(data, PATH, VERSION)
    assert sr.open_value(sealed, PATH, VERSION).reveal() == data
    return (lambda: sr.seal_value(data, PATH, VERSION)), (lambda: sr.open_value(sealed, PATH, VERSION))


def cryptography_ops():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    ct = aes.encrypt(nonce, data, AAD)
    return (lambda: aes.encrypt(os.urandom(12), data, AAD)), (lambda: aes.decrypt(nonce, ct, AAD))


def tink_ops():
    import tink
    from tink import aead

    aead.register()
    primitive = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    ct = primitive.encrypt(data, AAD)
    return (lambda: primitive.encrypt(data, AAD)), (lambda: primitive.decrypt(ct, AAD))


def main():
    results = {"strongroom": strongroom_ops()}
    for name, make in (("cryptography", cryptography_ops), ("tink", tink_ops)):
        try:
            results[name] = make()
        except ImportError as e:
            print(f"{name}: not installed ({e}); skipped", file=sys.stderr)
    times = {name: (best_ns(seal), best_ns(open_)) for name, (seal, open_) in results.items()}
    print(f"1 KiB, best of 7 x 20000, Python {sys.version.split()[0]}")
    for name, (s, o) in times.items():
        print(f"  {name:13s} seal {s:8.0f} ns   open {o:8.0f} ns")
    s0, o0 = times["strongroom"]
    for name, (s, o) in times.items():
        if name != "strongroom":
            print(f"  strongroom / {name:13s} seal {s0 / s:5.2f}x   open {o0 / o:5.2f}x")


if __name__ == "__main__":
    main()
