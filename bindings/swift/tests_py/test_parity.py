"""Store locations, Shamir, root-key rotation and the shared API-key rules
through the uniffi FFI (the composites come from strongroom-host, the layer
the three bindings share)."""

import asyncio

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError
KEY = bytes(range(32))


def run(coro):
    return asyncio.run(coro)


def test_store_locations(tmp_path):
    async def go():
        mem = await sr.Storage.open("memory:")
        assert mem.backend() == "memory"
        path = tmp_path / "store.db"
        first = await sr.Storage.open(f"sqlite:{path}")
        assert first.backend() == "sqlite"
        room = await sr.Strongroom.create(first, sr.SoftwareProtector.from_key(KEY))
        await room.put_secret("app/db", b"pw-1", None)
        await first.close()
        await first.close()  # harmless
        with pytest.raises(E.StorageError):
            await first.is_initialized()
        # a plain path is an SQLite file too
        again = await sr.Storage.open(str(path))
        room = await sr.Strongroom.unseal(again, sr.SoftwareProtector.from_key(KEY))
        assert (await room.get_secret("app/db", None)).secret.reveal() == b"pw-1"
        await again.close()

        with pytest.raises(E.InvalidArgument) as e:
            await sr.Storage.open("mysql://u:hunter2@127.0.0.1/db")
        assert "hunter2" not in str(e.value)
        # nothing listens on port 1: unavailable, and the URL is not echoed
        with pytest.raises(E.StorageError) as e:
            await sr.Storage.open("postgres://u:hunter2@127.0.0.1:1/db")
        assert "hunter2" not in str(e.value) and "hunter2" not in repr(fields(e.value))

    run(go())


def test_shamir_split_and_combine():
    parts = sr.shamir_split(b"launch code", 2, 3)
    assert len(parts) == 3 and all(p.startswith("srs1-") for p in parts)
    assert sr.shamir_combine([parts[2], parts[0]]).reveal() == b"launch code"
    with pytest.raises(E.ShamirTooFewShares):
        sr.shamir_combine(parts[:1])
    with pytest.raises(E.ShamirNoShares):
        sr.shamir_combine([])
    tampered = parts[1][:-1] + ("A" if parts[1][-1] != "A" else "B")
    with pytest.raises(E.ShamirCorruptShare) as e:
        sr.shamir_combine([parts[0], tampered])
    assert fields(e.value)["index"] == 1
    other = sr.shamir_split(b"launch code", 2, 3)
    with pytest.raises(E.ShamirDifferentSplits):
        sr.shamir_combine([parts[0], other[1]])
    with pytest.raises(E.ShamirInvalidParameters):
        sr.shamir_split(b"x", 1, 3)


def test_shamir_root_key_and_root_key_rotation(tmp_path):
    async def go():
        path = tmp_path / "store.db"
        setup = sr.generate_shamir_protector(2, 3)
        assert setup.protector.threshold() == 2 and len(setup.shares) == 3
        storage = await sr.Storage.open(str(path))
        room = await sr.Strongroom.create_with_shamir(storage, setup.protector)
        await room.put_secret("app/db", b"pw-1", None)

        # two holders' shares open it
        two = sr.ShamirProtector.from_shares([setup.shares[0], setup.shares[2]])
        other = await sr.Strongroom.unseal_with_shamir(storage, two)
        assert (await other.get_secret("app/db", None)).secret.reveal() == b"pw-1"
        with pytest.raises(E.ShamirTooFewShares):
            sr.ShamirProtector.from_shares(setup.shares[:1])

        # move the root key to a software key: the shares no longer open it
        await room.rotate_root_key(sr.SoftwareProtector.from_key(KEY))
        moved = await sr.Strongroom.unseal(storage, sr.SoftwareProtector.from_key(KEY))
        assert (await moved.get_secret("app/db", None)).secret.reveal() == b"pw-1"
        with pytest.raises(E.InvalidArgument) as e:
            await sr.Strongroom.unseal_with_shamir(storage, two)
        assert "protected by" in str(e.value)

        # and back to a new set of shares
        fresh = sr.generate_shamir_protector(3, 5)
        await moved.rotate_root_key_to_shamir(fresh.protector)
        back = sr.ShamirProtector.from_shares(fresh.shares[1:4])
        final = await sr.Strongroom.unseal_with_shamir(storage, back)
        assert (await final.get_secret("app/db", None)).secret.reveal() == b"pw-1"
        await storage.close()

    run(go())


def test_api_key_rules_are_the_shared_ones_and_import_current():
    async def go():
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(KEY))
        verifier = sr.ApiKeyVerifier()
        for bad in [sr.ApiKeyFormat.BASE62(prefix="sk_", chars=15),
                    sr.ApiKeyFormat.HEX(prefix="hk_", bytes=11),
                    sr.ApiKeyFormat.BASE62(prefix="has space", chars=32)]:
            with pytest.raises(E.InvalidArgument):
                await sr.RotationEngine.api_key(room, "svc/k", bad, verifier)
        engine = await sr.RotationEngine.api_key(room, "svc/legacy", sr.ApiKeyFormat.BASE62(prefix="sk_", chars=32),
                                                 verifier)
        assert await engine.import_current(b"legacy-key-in-use") == 1
        assert verifier.verify(b"legacy-key-in-use") == sr.Matched.CURRENT
        with pytest.raises(E.RotationAlreadyInitialized):
            await engine.import_current(b"another")
        await engine.rotate_now()
        assert verifier.verify(b"legacy-key-in-use") == sr.Matched.PREVIOUS

    run(go())
