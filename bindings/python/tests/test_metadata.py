"""Secret metadata updates and removal, on the store (asyncio and
blocking) and through a principal's handle."""

import asyncio
import inspect

import pytest
import strongroom

FLAVORS = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}

POLICY = """
name = "ops"
[[path]]
pattern = "prod/*"
capabilities = ["create", "read", "update"]
"""


async def m(x):
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(params=list(FLAVORS))
def cls(request):
    return FLAVORS[request.param]


def test_update_metadata_then_remove_the_secret(cls):
    async def go():
        prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
        sr = await m(cls.init(strongroom.Storage.memory(), prot))
        for i in range(4):
            await m(sr.put_secret("prod/db", b"v%d" % i))
        md = await m(
            sr.update_secret_metadata(
                "prod/db", owner="team-a", environment="prod", tags=["pci", "db"],
                custom={"ticket": "OPS-1"}, rotation_interval=86400, max_versions=2,
            )
        )
        assert (md.owner, md.environment, md.tags) == ("team-a", "prod", ["db", "pci"])
        assert md.custom == {"ticket": "OPS-1"} and md.rotation_interval == 86400.0
        assert md.max_versions == 2 and md.oldest_version == 3, "lowering max_versions prunes"
        assert md.last_rotated_ms is not None
        assert (await m(sr.secret_metadata("prod/db"))).owner == "team-a"
        # left out: unchanged; None: cleared
        md = await m(sr.update_secret_metadata("prod/db", owner=None, tags=None, max_versions=None))
        assert md.owner is None and md.tags == [] and md.environment == "prod"
        assert md.max_versions is None and md.effective_max_versions > 2
        with pytest.raises(strongroom.InvalidArgument):
            await m(sr.update_secret_metadata("prod/db", colour="blue"))
        with pytest.raises(strongroom.SecretInvalidMetadata):
            await m(sr.update_secret_metadata("prod/db", owner="bad\nowner"))
        with pytest.raises(strongroom.SecretInvalidMetadata):
            await m(sr.update_secret_metadata("prod/db", environment=""))
        with pytest.raises(strongroom.SecretNotFound):
            await m(sr.update_secret_metadata("prod/none", owner="x"))
        await m(sr.delete_secret_metadata("prod/db"))
        with pytest.raises(strongroom.SecretNotFound):
            await m(sr.get_secret("prod/db"))
        assert (await m(sr.put_secret("prod/db", b"again"))).version == 1
        sr.close()

    asyncio.run(go())


def test_handles_update_metadata_under_their_policy(cls, tmp_path):
    async def go():
        prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
        sr = await m(cls.init(strongroom.Storage.memory(), prot))
        audit = await m(sr.open_audit_log(str(tmp_path / "audit.jsonl")))
        ops = sr.as_principal("ops", [strongroom.Policy.from_toml(POLICY)], audit)
        await m(ops.put("prod/api", b"k"))
        md = await m(ops.update_metadata("prod/api", owner="ops"))
        assert md.owner == "ops"
        with pytest.raises(strongroom.PolicyDenied):
            await m(ops.delete_metadata("prod/api"))  # no "delete" capability
        assert (await m(ops.metadata("prod/api"))).owner == "ops"
        sr.close()

    asyncio.run(go())


def test_inventory_with_rotation_due_last_reads_and_filters(cls, tmp_path):
    async def go():
        clock = strongroom.ManualClock(1_000_000)
        prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
        sr = await m(cls.init(strongroom.Storage.memory(), prot, clock=clock))
        for path in ("prod/a", "prod/b", "dev/c"):
            await m(sr.put_secret(path, b"v"))
        await m(sr.update_secret_metadata("prod/a", owner="team-a", tags=["pci", "db"], rotation_interval=3600))
        await m(sr.update_secret_metadata("prod/b", owner="team-b", environment="prod"))
        audit_file = tmp_path / "audit.jsonl"
        audit = await m(sr.open_audit_log(str(audit_file)))
        ops = sr.as_principal("ops", [strongroom.Policy.from_toml(POLICY)], audit)
        clock.advance(7200)
        await m(ops.read("prod/b"))

        every = await m(sr.inventory())
        assert [e.metadata.path for e in every] == ["dev/c", "prod/a", "prod/b"]
        assert all(e.last_read_ms is None for e in every), "no audit file given"
        by = {e.metadata.path: e for e in await m(sr.inventory("prod/", audit_file=audit_file))}
        assert set(by) == {"prod/a", "prod/b"}
        assert by["prod/a"].rotation_overdue and not by["prod/b"].rotation_overdue
        assert by["prod/b"].last_read_ms == clock.now() and by["prod/a"].last_read_ms is None
        assert [e.metadata.path for e in await m(sr.inventory(overdue=True))] == ["prod/a"]
        assert [e.metadata.path for e in await m(sr.inventory(owner="team-b"))] == ["prod/b"]
        assert [e.metadata.path for e in await m(sr.inventory(tags=["pci"]))] == ["prod/a"]
        assert [e.metadata.path for e in await m(sr.inventory(environment="prod"))] == ["prod/b"]
        clock.advance(60)
        unread = await m(sr.inventory(audit_file=audit_file, unread_for=30))
        assert [e.metadata.path for e in unread] == ["dev/c", "prod/a", "prod/b"]
        unread = await m(sr.inventory(audit_file=audit_file, unread_for=120))
        assert [e.metadata.path for e in unread] == ["dev/c", "prod/a"]
        audit_file.write_text(audit_file.read_text().replace("prod/b", "prod/x"))
        with pytest.raises(strongroom.AuditError):
            await m(sr.inventory(audit_file=audit_file))
        sr.close()

    asyncio.run(go())
