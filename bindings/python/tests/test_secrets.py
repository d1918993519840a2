"""Versioned secrets, principal handles, policies and audit, through the
asyncio and the blocking API."""

import asyncio
import inspect
import json

import pytest
import strongroom

FLAVORS = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}

POLICY = """
name = "payment-svc"
[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["create", "read"]
"""


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


async def new_store(cls):
    prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
    return await m(cls.init(strongroom.Storage.memory(), prot))


@pytest.fixture(params=list(FLAVORS))
def cls(request):
    return FLAVORS[request.param]


def test_versions_and_cas_conflict(cls):
    async def go():
        sr = await new_store(cls)
        v1 = await m(sr.put_secret("prod/app/db", b"pw-1", cas=0))
        assert isinstance(v1, strongroom.VersionInfo) and v1.version == 1
        assert v1.deleted_ms is None and v1.destroyed_ms is None
        v2 = await m(sr.put_secret("prod/app/db", bytearray(b"pw-2"), cas=1))
        assert v2.version == 2

        with pytest.raises(strongroom.SecretCasMismatch) as e:
            await m(sr.put_secret("prod/app/db", b"pw-x", cas=1))
        assert isinstance(e.value, strongroom.SecretError)
        assert (e.value.path, e.value.expected, e.value.current) == ("prod/app/db", 1, 2)
        assert e.value.code == "secret.cas_mismatch"
        assert "pw-x" not in str(e.value)

        info, secret = await m(sr.get_secret("prod/app/db"))
        assert info.version == 2 and secret.reveal() == b"pw-2"
        info, secret = await m(sr.get_secret("prod/app/db", 1))
        assert info.version == 1 and secret.reveal() == b"pw-1"
        assert "pw-1" not in repr(secret)

        await m(sr.put_secret("prod/app/api", b"k"))
        assert await m(sr.list_secrets("prod/")) == ["app/"]
        assert sorted(await m(sr.list_secrets("prod/app/"))) == ["api", "db"]

        meta = await m(sr.secret_metadata("prod/app/db"))
        assert meta.path == "prod/app/db" and meta.current_version == 2
        assert [v.version for v in meta.versions] == [1, 2]

        with pytest.raises(strongroom.SecretNotFound) as e:
            await m(sr.get_secret("prod/app/none"))
        assert e.value.path == "prod/app/none" and e.value.version is None
        with pytest.raises(strongroom.SecretNotFound) as e:
            await m(sr.get_secret("prod/app/db", 9))
        assert e.value.version == 9
        with pytest.raises(strongroom.InvalidPath):
            await m(sr.put_secret("Prod/../x", b"v"))

    asyncio.run(go())


def test_deleted_and_destroyed_are_distinct(cls):
    async def go():
        sr = await new_store(cls)
        for v in (b"a", b"b", b"c"):
            await m(sr.put_secret("prod/app/db", v))
        assert await m(sr.delete_secret("prod/app/db", [1])) == [1]
        assert await m(sr.destroy_secret("prod/app/db", [2])) == [2]

        with pytest.raises(strongroom.SecretVersionDeleted) as deleted:
            await m(sr.get_secret("prod/app/db", 1))
        with pytest.raises(strongroom.SecretVersionDestroyed) as destroyed:
            await m(sr.get_secret("prod/app/db", 2))
        assert not isinstance(deleted.value, strongroom.SecretVersionDestroyed)
        assert not isinstance(destroyed.value, strongroom.SecretVersionDeleted)
        assert deleted.value.version == 1 and deleted.value.deleted_at > 0
        assert destroyed.value.version == 2 and destroyed.value.destroyed_at > 0

        meta = await m(sr.secret_metadata("prod/app/db"))
        states = {v.version: (v.deleted_ms is not None, v.destroyed_ms is not None) for v in meta.versions}
        assert states[1] == (True, False) and states[2][1] and states[3] == (False, False)

        # A deleted version comes back; a destroyed one does not.
        assert await m(sr.undelete_secret("prod/app/db", [1])) == [1]
        _, s = await m(sr.get_secret("prod/app/db", 1))
        assert s.reveal() == b"a"
        with pytest.raises(strongroom.SecretVersionDestroyed):
            await m(sr.undelete_secret("prod/app/db", [2]))
        with pytest.raises(strongroom.SecretVersionDestroyed):
            await m(sr.get_secret("prod/app/db", 2))

        # No versions given: the current one.
        assert await m(sr.delete_secret("prod/app/db")) == [3]
        with pytest.raises(strongroom.SecretVersionDeleted):
            await m(sr.get_secret("prod/app/db"))

    asyncio.run(go())


def test_policy_denied_and_audited(cls, tmp_path):
    async def go():
        sr = await new_store(cls)
        file = tmp_path / "audit.jsonl"
        policy = strongroom.Policy.from_toml(POLICY)
        assert policy.name == "payment-svc"
        audit = await m(sr.open_audit_log(str(file)))
        svc = sr.as_principal("payment-svc", [policy], audit)
        assert svc.principal == "payment-svc"

        v = await m(svc.put("prod/payment-svc/postgres", b"pw-1", cas=0))
        assert v.version == 1
        info, s = await m(svc.read("prod/payment-svc/postgres"))
        assert info.version == 1 and s.reveal() == b"pw-1"

        with pytest.raises(strongroom.PolicyDenied) as e:
            await m(svc.read("prod/other/db"))
        assert isinstance(e.value, strongroom.PolicyError)
        assert (e.value.principal, e.value.capability, e.value.path) == (
            "payment-svc",
            "read",
            "prod/other/db",
        )
        assert e.value.code == "policy.denied"
        with pytest.raises(strongroom.PolicyDenied):
            await m(svc.put("prod/other/db", b"x"))

        # The denials are in the audit file, under the principal's name,
        # without the value.
        text = file.read_text()
        assert "pw-1" not in text and '"x"' not in text
        denied = [json.loads(l) for l in text.splitlines() if "prod/other/db" in l]
        assert len(denied) == 2
        assert all(r["event"]["principal"] == "payment-svc" for r in denied)
        assert all("denied" in json.dumps(r["event"]["outcome"]) for r in denied)

        with pytest.raises(strongroom.PolicyError):
            strongroom.Policy.from_toml('name = "x"\n[[path]]\npattern = "a/*"\ncapabilities = ["fly"]\n')

    asyncio.run(go())


def test_audit_file_verifies_and_tampering_names_the_seq(cls, tmp_path):
    async def go():
        sr = await new_store(cls)
        file = tmp_path / "audit.jsonl"
        audit = await m(sr.open_audit_log(str(file)))
        assert audit.path == str(file)
        svc = sr.as_principal("payment-svc", [strongroom.Policy.from_toml(POLICY)], audit)
        await m(svc.put("prod/payment-svc/a", b"v-a"))
        await m(svc.put("prod/payment-svc/b", b"v-b"))
        await m(svc.read("prod/payment-svc/a"))
        with pytest.raises(strongroom.PolicyDenied):
            await m(svc.read("prod/other/c"))

        lines = file.read_text().splitlines()
        report = strongroom.verify_audit_file(file, sr)
        assert report.records == len(lines) >= 4
        assert report.head_seq == json.loads(lines[-1])["seq"]

        # Edit one record (its path) in a copy: the chain breaks at its seq.
        idx = next(i for i, l in enumerate(lines) if "prod/payment-svc/b" in l)
        seq = json.loads(lines[idx])["seq"]
        edited = list(lines)
        edited[idx] = edited[idx].replace("prod/payment-svc/b", "prod/payment-svc/z")
        tampered = tmp_path / "tampered.jsonl"
        tampered.write_text("\n".join(edited) + "\n")
        with pytest.raises(strongroom.AuditChainBroken) as e:
            strongroom.verify_audit_file(tampered, sr)
        assert isinstance(e.value, strongroom.AuditError)
        assert e.value.seq == seq and "MAC" in e.value.reason

        # A truncated copy fails where the first missing record should be.
        truncated = tmp_path / "truncated.jsonl"
        truncated.write_text("\n".join(lines[:2]) + "\n")
        with pytest.raises(strongroom.AuditChainBroken) as e:
            strongroom.verify_audit_file(truncated, sr)
        assert e.value.seq == 3

        # Another store's key does not verify this file.
        other = await new_store(cls)
        with pytest.raises(strongroom.AuditChainBroken):
            strongroom.verify_audit_file(file, other)

        # Reopening continues the chain; an edited file is refused.
        audit2 = await m(sr.open_audit_log(str(file)))
        svc2 = sr.as_principal("payment-svc", [strongroom.Policy.from_toml(POLICY)], audit2)
        await m(svc2.read("prod/payment-svc/a"))
        assert strongroom.verify_audit_file(file, sr).records > report.records
        file.write_text(file.read_text().replace("prod/payment-svc/b", "prod/payment-svc/z"))
        with pytest.raises(strongroom.AuditChainBroken):
            await m(sr.open_audit_log(str(file)))

    asyncio.run(go())
