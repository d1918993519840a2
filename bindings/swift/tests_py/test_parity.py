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


def test_metadata_updates_and_the_inventory(tmp_path):
    async def go():
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(KEY))
        for path in ["prod/a", "prod/b", "dev/c"]:
            await room.put_secret(path, b"v", None)
        m = await room.update_secret_metadata("prod/a", sr.MetadataUpdate(
            owner="payments", tags=["pci"], custom={"ticket": "OPS-1"}, rotation_interval_ms=3_600_000))
        assert m.owner == "payments" and m.tags == ["pci"] and m.custom == {"ticket": "OPS-1"}
        assert m.rotation_interval_ms == 3_600_000 and m.rotation_due_ms == m.created_ms + 3_600_000
        await room.update_secret_metadata("prod/b", sr.MetadataUpdate(owner="search", tags=["pci"]))
        cleared = await room.update_secret_metadata("prod/b", sr.MetadataUpdate(clear=["owner", "tags"]))
        assert cleared.owner is None and cleared.tags == []
        with pytest.raises(E.InvalidArgument):
            await room.update_secret_metadata("prod/b", sr.MetadataUpdate(clear=["path"]))
        with pytest.raises(E.InvalidArgument):
            await room.update_secret_metadata("prod/b", sr.MetadataUpdate(owner="x", clear=["owner"]))
        with pytest.raises(E.SecretNotFound):
            await room.update_secret_metadata("prod/none", sr.MetadataUpdate(owner="x"))

        everything = await room.inventory("")
        assert [e.metadata.path for e in everything] == ["dev/c", "prod/a", "prod/b"]
        assert all(e.last_read_ms is None and not e.rotation_overdue for e in everything)
        pci = await room.inventory("prod/", filter=sr.InventoryFilter(tags=["pci"]))
        assert [e.metadata.path for e in pci] == ["prod/a"]

        # last reads come from the verified audit file of a principal's reads
        log_path = str(tmp_path / "audit.jsonl")
        audit = await room.open_audit_log(log_path, True)
        policy = sr.Policy.from_toml('name = "r"\n[[path]]\npattern = "prod/*"\ncapabilities = ["read", "update"]\n')
        app = room.as_principal("app", [policy], audit)
        await app.read("prod/a", None)
        await app.update_metadata("prod/a", sr.MetadataUpdate(environment="prod"))
        entries = {e.metadata.path: e for e in await room.inventory("prod/", audit_file=log_path)}
        assert entries["prod/a"].last_read_ms is not None and entries["prod/b"].last_read_ms is None
        assert entries["prod/a"].metadata.environment == "prod"
        unread = await room.inventory("prod/", audit_file=log_path, filter=sr.InventoryFilter(unread_for_ms=60_000))
        assert [e.metadata.path for e in unread] == ["prod/b"]
        with pytest.raises(E.PolicyDenied):
            await app.update_metadata("dev/c", sr.MetadataUpdate(owner="x"))
        # an edited audit file is refused, not believed
        lines = open(log_path).read().splitlines()
        with open(log_path, "w") as f:
            f.write("\n".join(lines[1:]) + "\n")
        with pytest.raises(E.AuditChainBroken):
            await room.inventory("prod/", audit_file=log_path)

    run(go())
