"""S1: the shared format vectors, byte for byte, and S2: the cross-language matrix."""

import json
import os

import pytest
import strongroom
from conftest import CHECKED_IN_XLANG, VECTORS, xlang_dir


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_opens(v):
    key = bytes.fromhex(v["key"])
    sealed = bytes.fromhex(v["sealed"])
    s = strongroom.open_sealed(key, v["algorithm"], v["path"], v["version"], sealed)
    assert s.reveal() == bytes.fromhex(v["plaintext"])
    assert strongroom.sealed_key_version(sealed) == v["key_version"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_reseals(v):
    key = bytes.fromhex(v["key"])
    plain = bytes.fromhex(v["plaintext"])
    want = bytes.fromhex(v["sealed"])
    fresh = strongroom.seal_with_key(key, v["algorithm"], v["key_version"], v["path"], v["version"], plain)
    assert len(fresh) == len(want)
    assert fresh[:8] == want[:8]  # magic, format, algorithm, key version
    assert fresh[8:20] != want[8:20]  # a fresh random nonce, never the vector's
    assert strongroom.open_sealed(key, v["algorithm"], v["path"], v["version"], fresh).reveal() == plain


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_bound_to_context_and_bits(v):
    key = bytes.fromhex(v["key"])
    sealed = bytes.fromhex(v["sealed"])
    alg, path, ver = v["algorithm"], v["path"], v["version"]
    with pytest.raises(strongroom.DecryptionFailed):
        strongroom.open_sealed(key, alg, path, (ver + 1) % 2**64, sealed)
    with pytest.raises(strongroom.DecryptionFailed):
        strongroom.open_sealed(key, alg, path + "x", ver, sealed)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(strongroom.DecryptionFailed):
        strongroom.open_sealed(key, alg, path, ver, bytes(flipped))


def matrix_values(writer):
    values = []
    for alg, kv in (("aes-256-gcm", 3), ("chacha20-poly1305", 4)):
        key = os.urandom(32)
        plain = f"sealed by {writer} with {alg}".encode()
        path, version = f"xlang/{writer}/{alg}", 7
        sealed = strongroom.seal_with_key(key, alg, kv, path, version, plain)
        values.append(
            dict(algorithm=alg, key=key.hex(), key_version=kv, path=path, version=version,
                 plaintext=plain.hex(), sealed=sealed.hex())
        )
    return {"writer": writer, "values": values}


def test_matrix_write_then_open_every_language():
    out = xlang_dir() / "python.json"
    out.write_text(json.dumps(matrix_values("python"), indent=2))
    files = sorted(xlang_dir().glob("*.json")) + sorted(CHECKED_IN_XLANG.glob("*.json"))
    writers = set()
    for f in files:
        doc = json.loads(f.read_text())
        for v in doc["values"]:
            got = strongroom.open_sealed(
                bytes.fromhex(v["key"]), v["algorithm"], v["path"], v["version"], bytes.fromhex(v["sealed"])
            )
            assert got.reveal() == bytes.fromhex(v["plaintext"]), f
            assert strongroom.sealed_key_version(bytes.fromhex(v["sealed"])) == v["key_version"]
        writers.add(doc["writer"])
    # The checked-in fixtures carry at least Rust, uniffi and Python.
    assert {"python", "rust", "uniffi"} <= writers, writers
