"""Versioned secrets, policies, principal handles and the audit trail through
the uniffi FFI (the same checks as bindings/python/tests/test_secrets.py)."""

import asyncio
import json

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError

POLICY = """
name = "payment-svc"
[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["create", "read"]
"""


def run(coro):
    return asyncio.run(coro)


async def new_store():
    return await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(bytes(range(32))))


def test_versions_and_cas_conflict():
    async def go():
        room = await new_store()
        v1 = await room.put_secret("prod/app/db", b"pw-1", 0)
        assert isinstance(v1, sr.VersionInfo) and v1.version == 1
        assert v1.deleted_ms is None and v1.destroyed_ms is None and v1.created_ms > 0
        v2 = await room.put_secret("prod/app/db", b"pw-2", cas=1)
        assert v2.version == 2

        with pytest.raises(E.SecretCasMismatch) as e:
            await room.put_secret("prod/app/db", b"pw-x", cas=1)
        assert fields(e.value) == {"path": "prod/app/db", "expected": 1, "current": 2}
        assert e.value.code == "secret.cas_mismatch"
        assert "pw-x" not in str(e.value)

        read = await room.get_secret("prod/app/db")
        assert read.info.version == 2 and read.secret.reveal() == b"pw-2"
        read = await room.get_secret("prod/app/db", 1)
        assert read.info.version == 1 and read.secret.reveal() == b"pw-1"
        assert "pw-1" not in repr(read) and "pw-1" not in repr(read.secret)
        assert repr(read.secret) == "Secret([REDACTED; 4 bytes])"
        read.secret.wipe()
        assert read.secret.reveal() == bytes(4)
        assert (await room.get_secret("prod/app/db", 1)).secret.reveal() == b"pw-1"  # store untouched

        await room.put_secret("prod/app/api", b"k")
        assert await room.list_secrets("prod/") == ["app/"]
        assert sorted(await room.list_secrets("prod/app/")) == ["api", "db"]

        meta = await room.secret_metadata("prod/app/db")
        assert meta.path == "prod/app/db" and meta.current_version == 2 and meta.oldest_version == 1
        assert [v.version for v in meta.versions] == [1, 2]

        with pytest.raises(E.SecretNotFound) as e:
            await room.get_secret("prod/app/none")
        assert fields(e.value) == {"path": "prod/app/none", "version": None} and e.value.code == "secret.not_found"
        with pytest.raises(E.SecretNotFound) as e:
            await room.get_secret("prod/app/db", 9)
        assert fields(e.value)["version"] == 9
        with pytest.raises(E.InvalidPath) as e:
            await room.put_secret("Prod/../x", b"v")
        assert e.value.code.startswith("path.") and fields(e.value)["path"] == "Prod/../x"

    run(go())


def test_deleted_and_destroyed_are_distinct():
    async def go():
        room = await new_store()
        for v in (b"a", b"b", b"c"):
            await room.put_secret("prod/app/db", v)
        assert await room.delete_secret("prod/app/db", [1]) == [1]
        assert await room.destroy_secret("prod/app/db", [2]) == [2]

        with pytest.raises(E.SecretVersionDeleted) as deleted:
            await room.get_secret("prod/app/db", 1)
        with pytest.raises(E.SecretVersionDestroyed) as destroyed:
            await room.get_secret("prod/app/db", 2)
        assert fields(deleted.value)["version"] == 1 and fields(deleted.value)["deleted_at"] > 0
        assert deleted.value.code == "secret.version_deleted"
        assert fields(destroyed.value)["version"] == 2 and fields(destroyed.value)["destroyed_at"] > 0
        assert destroyed.value.code == "secret.version_destroyed"

        meta = await room.secret_metadata("prod/app/db")
        states = {v.version: (v.deleted_ms is not None, v.destroyed_ms is not None) for v in meta.versions}
        assert states[1] == (True, False) and states[2][1] and states[3] == (False, False)

        # A deleted version comes back; a destroyed one does not.
        assert await room.undelete_secret("prod/app/db", [1]) == [1]
        assert (await room.get_secret("prod/app/db", 1)).secret.reveal() == b"a"
        with pytest.raises(E.SecretVersionDestroyed):
            await room.undelete_secret("prod/app/db", [2])

        # No versions given: the current one.
        assert await room.delete_secret("prod/app/db") == [3]
        with pytest.raises(E.SecretVersionDeleted):
            await room.get_secret("prod/app/db")

    run(go())


def test_policy_denied_and_audited(tmp_path):
    async def go():
        room = await new_store()
        file = tmp_path / "audit.jsonl"
        policy = sr.Policy.from_toml(POLICY)
        assert policy.name() == "payment-svc" and repr(policy) == 'Policy("payment-svc")'
        audit = await room.open_audit_log(str(file))
        assert audit.path() == str(file)
        svc = room.as_principal("payment-svc", [policy], audit)
        assert svc.principal() == "payment-svc"

        v = await svc.put("prod/payment-svc/postgres", b"pw-1", cas=0)
        assert v.version == 1
        read = await svc.read("prod/payment-svc/postgres")
        assert read.info.version == 1 and read.secret.reveal() == b"pw-1"

        with pytest.raises(E.PolicyDenied) as e:
            await svc.read("prod/other/db")
        assert fields(e.value) == {"principal": "payment-svc", "capability": "read", "path": "prod/other/db"}
        assert e.value.code == "policy.denied"
        with pytest.raises(E.PolicyDenied):
            await svc.put("prod/other/db", b"x")
        # "create" was granted, "update" was not.
        with pytest.raises(E.PolicyDenied) as e:
            await svc.put("prod/payment-svc/postgres", b"pw-2")
        assert fields(e.value)["capability"] == "update"
        with pytest.raises(E.PolicyDenied):
            await svc.delete("prod/payment-svc/postgres")

        # The denials are in the audit file under the principal, without values.
        text = file.read_text()
        assert "pw-1" not in text and "pw-2" not in text
        denied = [json.loads(l) for l in text.splitlines() if "prod/other/db" in l]
        assert len(denied) == 2
        assert all(r["event"]["principal"] == "payment-svc" for r in denied)
        assert all("denied" in json.dumps(r["event"]["outcome"]) for r in denied)

        with pytest.raises(E.PolicyParse) as e:
            sr.Policy.from_toml('name = "x"\n[[path]]\npattern = "a/*"\ncapabilities = ["fly"]\n')
        assert e.value.code == "policy.parse" and "fly" in e.value.message

    run(go())


def test_audit_file_verifies_and_tampering_names_the_seq(tmp_path):
    async def go():
        room = await new_store()
        file = tmp_path / "audit.jsonl"
        audit = await room.open_audit_log(str(file), fsync=False)
        svc = room.as_principal("payment-svc", [sr.Policy.from_toml(POLICY)], audit)
        await svc.put("prod/payment-svc/a", b"v-a")
        await svc.put("prod/payment-svc/b", b"v-b")
        await svc.read("prod/payment-svc/a")
        with pytest.raises(E.PolicyDenied):
            await svc.read("prod/other/c")

        lines = file.read_text().splitlines()
        report = await sr.verify_audit_file(str(file), room)
        assert report.records == len(lines) >= 4
        assert report.head_seq == json.loads(lines[-1])["seq"] and len(report.head_mac) == 64

        # Edit one record in a copy: the chain breaks at its seq.
        idx = next(i for i, l in enumerate(lines) if "prod/payment-svc/b" in l)
        seq = json.loads(lines[idx])["seq"]
        edited = list(lines)
        edited[idx] = edited[idx].replace("prod/payment-svc/b", "prod/payment-svc/z")
        tampered = tmp_path / "tampered.jsonl"
        tampered.write_text("\n".join(edited) + "\n")
        with pytest.raises(E.AuditChainBroken) as e:
            await sr.verify_audit_file(str(tampered), room)
        assert fields(e.value)["seq"] == seq and "MAC" in fields(e.value)["reason"] and e.value.code == "audit.chain_broken"
        assert fields(e.value)["break_kind"] == "bad_mac"

        # A truncated copy fails where the first missing record should be.
        truncated = tmp_path / "truncated.jsonl"
        truncated.write_text("\n".join(lines[:2]) + "\n")
        with pytest.raises(E.AuditChainBroken) as e:
            await sr.verify_audit_file(str(truncated), room)
        assert fields(e.value)["seq"] == 3

        # Another store's key does not verify this file.
        with pytest.raises(E.AuditChainBroken):
            await sr.verify_audit_file(str(file), await new_store())

        # Reopening continues the chain; an edited file is refused.
        audit2 = await room.open_audit_log(str(file))
        svc2 = room.as_principal("payment-svc", [sr.Policy.from_toml(POLICY)], audit2)
        await svc2.read("prod/payment-svc/a")
        assert (await sr.verify_audit_file(str(file), room)).records > report.records
        file.write_text(file.read_text().replace("prod/payment-svc/b", "prod/payment-svc/z"))
        with pytest.raises(E.AuditChainBroken):
            await room.open_audit_log(str(file))

    run(go())
