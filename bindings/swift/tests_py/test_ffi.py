"""bindings/SCENARIOS.md through the uniffi FFI (the one Swift uses), via
uniffi's generated Python bindings."""

import asyncio
import json
import os

import pytest
import strongroom_ffi as sr
from conftest import CHECKED_IN_XLANG, VECTORS, fields, xlang_dir

E = sr.StrongroomError


def run(coro):
    return asyncio.run(coro)


# S1 -------------------------------------------------------------------------

@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors(v):
    key, alg, path, ver = bytes.fromhex(v["key"]), v["algorithm"], v["path"], v["version"]
    sealed, plain = bytes.fromhex(v["sealed"]), bytes.fromhex(v["plaintext"])
    assert sr.open_sealed(key, alg, path, ver, sealed).reveal() == plain
    assert sr.sealed_key_version(sealed) == v["key_version"]
    fresh = sr.seal_with_key(key, alg, v["key_version"], path, ver, plain)
    assert len(fresh) == len(sealed) and fresh[:8] == sealed[:8] and fresh[8:20] != sealed[8:20]
    assert sr.open_sealed(key, alg, path, ver, fresh).reveal() == plain
    with pytest.raises(E.DecryptionFailed):
        sr.open_sealed(key, alg, path, (ver + 1) % 2**64, sealed)
    with pytest.raises(E.DecryptionFailed):
        sr.open_sealed(key, alg, path + "x", ver, sealed)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(E.DecryptionFailed):
        sr.open_sealed(key, alg, path, ver, bytes(flipped))


# S2 -------------------------------------------------------------------------

def test_matrix_write_then_open_every_language():
    values = []
    for alg, kv in (("aes-256-gcm", 5), ("chacha20-poly1305", 6)):
        key = os.urandom(32)
        plain = f"sealed by uniffi with {alg}".encode()
        path = f"xlang/uniffi/{alg}"
        sealed = sr.seal_with_key(key, alg, kv, path, 9, plain)
        values.append(dict(algorithm=alg, key=key.hex(), key_version=kv, path=path, version=9,
                           plaintext=plain.hex(), sealed=sealed.hex()))
    (xlang_dir() / "uniffi.json").write_text(json.dumps({"writer": "uniffi", "values": values}, indent=2))
    writers = set()
    for f in sorted(xlang_dir().glob("*.json")) + sorted(CHECKED_IN_XLANG.glob("*.json")):
        doc = json.loads(f.read_text())
        for v in doc["values"]:
            got = sr.open_sealed(bytes.fromhex(v["key"]), v["algorithm"], v["path"], v["version"],
                                 bytes.fromhex(v["sealed"]))
            assert got.reveal() == bytes.fromhex(v["plaintext"]), f
        writers.add(doc["writer"])
    assert {"python", "rust", "uniffi"} <= writers, writers


# S3 -------------------------------------------------------------------------

def test_lifecycle(tmp_path):
    async def go():
        kf = str(tmp_path / "root.key")
        sr.generate_key_file(kf)
        assert oct(os.stat(kf).st_mode & 0o777) == "0o600"
        prot = sr.SoftwareProtector.from_key_file(kf)
        storage = sr.Storage.memory()
        assert storage.backend() == "memory"
        assert not await storage.is_initialized()
        room = await sr.Strongroom.create(storage, prot)
        assert await storage.is_initialized()
        sealed = await room.seal_value(b"hunter2", "prod/app/db", 1)
        assert sealed[:2] == b"SR" and sr.sealed_key_version(sealed) == 1
        assert room.open_value(sealed, "prod/app/db", 1).reveal() == b"hunter2"
        await room.put_sealed("s/app/db", b"pw-1", "app/db", 1)
        assert (await room.get_sealed("s/app/db", "app/db", 1)).reveal() == b"pw-1"
        assert await room.get_sealed("s/missing", "missing", 1) is None
        with pytest.raises(E.AlreadyInitialized):
            await sr.Strongroom.create(storage, prot)
        room.seal()
        assert room.is_sealed()
        with pytest.raises(E.Sealed):
            room.open_value(sealed, "prod/app/db", 1)
        again = await sr.Strongroom.unseal(storage, sr.SoftwareProtector.from_key_file(kf))
        assert (await again.get_sealed("s/app/db", "app/db", 1)).reveal() == b"pw-1"
        with pytest.raises(E.ProtectorError) as e:
            await sr.Strongroom.unseal(storage, sr.SoftwareProtector.from_key(os.urandom(32)))
        assert e.value.code == "protector.unwrap_failed" and fields(e.value)["protector"] == "software"
        with pytest.raises(E.NotInitialized):
            await sr.Strongroom.unseal(sr.Storage.memory(), prot)

    run(go())


# S4 -------------------------------------------------------------------------

def test_rotate_rewrap():
    async def go():
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(os.urandom(32)))
        for i in range(3):
            await room.put_sealed(f"s/r{i}", f"value-{i}".encode(), f"r/{i}", 1)
        old = await room.seal_value(b"old", "o", 1)
        info = await room.rotate()
        assert info.version == 2 and info.state == sr.KeyState.PRIMARY
        assert {k.version: k.state for k in room.keys()} == {1: sr.KeyState.ACTIVE, 2: sr.KeyState.PRIMARY}
        assert sr.sealed_key_version(await room.seal_value(b"new", "n", 1)) == 2
        await room.set_min_decryption_version(2)
        with pytest.raises(E.KeyVersionRetired) as e:
            room.open_value(old, "o", 1)
        assert fields(e.value)["version"] == 1 and fields(e.value)["min_decryption_version"] == 2
        with pytest.raises(E.KeyInUse) as e:
            await room.destroy_key(1)
        assert fields(e.value)["records"] == 3
        await room.set_min_decryption_version(1)
        report = await room.rewrap(2)
        assert (report.scanned, report.rewrapped, report.unreadable) == (3, 3, [])
        await room.set_min_decryption_version(2)
        await room.destroy_key(1)
        for i in range(3):
            assert (await room.get_sealed(f"s/r{i}", f"r/{i}", 1)).reveal() == f"value-{i}".encode()
        assert {k.version: k.state for k in room.keys()} == {1: sr.KeyState.DESTROYED, 2: sr.KeyState.PRIMARY}
        await room.promote(2)
        await room.reload()

    run(go())


# S5 -------------------------------------------------------------------------

def test_bad_input(tmp_path):
    async def go():
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(os.urandom(32)))
        with pytest.raises(E.MalformedSealedValue):
            room.open_value(b"not a sealed value at all, no no no no", "p", 1)
        sealed = bytearray(await room.seal_value(b"x", "p", 1))
        sealed[4:8] = (99).to_bytes(4, "big")
        with pytest.raises(E.UnknownKeyVersion) as e:
            room.open_value(bytes(sealed), "p", 1)
        assert fields(e.value) == {"version": 99, "latest": 1} and e.value.code == "unknown_key_version"
        with pytest.raises(E.InvalidArgument):
            await room.put_sealed("outside/prefix", b"x", "p", 1)

    run(go())
    with pytest.raises(E.InvalidArgument):
        sr.seal_with_key(os.urandom(31), "aes-256-gcm", 1, "p", 1, b"x")
    with pytest.raises(E.InvalidArgument):
        sr.seal_with_key(os.urandom(32), "des", 1, "p", 1, b"x")
    kf = str(tmp_path / "loose.key")
    sr.generate_key_file(kf)
    os.chmod(kf, 0o644)
    with pytest.raises(E.KeyFileError) as e:
        sr.SoftwareProtector.from_key_file(kf)
    assert "chmod 600" in e.value.message and fields(e.value)["path"] == kf
    assert e.value.code == "key_file.loose_permissions" and fields(e.value)["mode"] == 0o644
    with pytest.raises(E.KeyFileError):
        sr.generate_key_file(kf)
    for case in ("DecryptionFailed", "PolicyDenied", "LeaseExpired", "SecretCasMismatch", "StorageConflict",
                 "SecretNotFound", "SecretVersionDeleted", "SecretVersionDestroyed", "SecretVersionPruned",
                 "AuditChainBroken", "LeaseNotFound", "LeaseInvalidId", "LeaseNotRenewable",
                 "LeaseQuotaExceeded", "LeaseRevocationDeferred", "LeaseRevokerFailed", "RotationRolledBack",
                 "RandomFailed", "ShamirNoShares", "Other"):
        assert issubclass(getattr(E, case), E)
    # Every case carries the core's stable code and its message.
    with pytest.raises(E.DecryptionFailed) as e:
        sr.open_sealed(os.urandom(32), "aes-256-gcm", "p", 1, sr.seal_with_key(os.urandom(32), "aes-256-gcm", 1, "p", 1, b"x"))
    assert (e.value.code, e.value.message, e.value.fields) == ("decryption_failed", "decryption failed", {})


# S6 -------------------------------------------------------------------------

def test_secret_redacted_and_wiped():
    key = os.urandom(32)
    s = sr.open_sealed(key, "aes-256-gcm", "p", 1, sr.seal_with_key(key, "aes-256-gcm", 1, "p", 1, b"correct horse"))
    assert repr(s) == "Secret([REDACTED; 13 bytes])" and str(s) == repr(s)
    assert s.len() == 13 and s.reveal() == b"correct horse"
    s.wipe()
    assert s.reveal() == bytes(13)


def test_store_file_across_languages(tmp_path):
    """S2 for stores: write uniffi-store.db, read the Python one if present;
    plus an SQLite reopen."""
    async def go():
        d = xlang_dir()
        for f in ("uniffi-store.db", "uniffi-store.db-wal", "uniffi-store.db-shm", "uniffi-store.key"):
            (d / f).unlink(missing_ok=True)
        sr.generate_key_file(str(d / "uniffi-store.key"))
        prot = sr.SoftwareProtector.from_key_file(str(d / "uniffi-store.key"))
        room = await sr.Strongroom.create(await sr.Storage.sqlite(str(d / "uniffi-store.db")), prot)
        await room.put_sealed("s/xlang", b"stored by uniffi", "xlang", 1)
        again = await sr.Strongroom.unseal(await sr.Storage.sqlite(str(d / "uniffi-store.db")), prot)
        assert (await again.get_sealed("s/xlang", "xlang", 1)).reveal() == b"stored by uniffi"
        if (d / "python-store.db").exists():
            other = await sr.Strongroom.unseal(
                await sr.Storage.sqlite(str(d / "python-store.db")),
                sr.SoftwareProtector.from_key_file(str(d / "python-store.key")))
            assert (await other.get_sealed("s/xlang", "xlang", 1)).reveal() == b"stored by python"
        (tmp_path / "junk").write_bytes(b"not sqlite" * 300)
        with pytest.raises(E.StorageError) as e:
            await sr.Storage.sqlite(str(tmp_path / "junk"))
        assert fields(e.value)["backend"] == "sqlite" and e.value.code == "storage.corrupt"

    run(go())
