"""Dynamic PostgreSQL credentials from the stored role catalog, against a
private cluster (strongroom-testpg): issue, log in, revoke through the
lease manager (the role is dropped), and a pool over a feed that renews
the role on the store's clock."""

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg
import pytest
import strongroom
import strongroom.pg as srpg


def bare(url: str) -> str:
    u = urlsplit(url)
    return f"postgresql://{u.hostname}:{u.port}{u.path}"


def catalog(db: str) -> str:
    return f'''
connection_secret = "infra/pg/admin-url"

[roles.readonly]
default_ttl_secs = 600
grants = [{{ privileges = ["Connect"], object = {{ Database = {{ name = "{db}" }} }} }}]
'''


async def login_ok(url, username, password) -> bool:
    try:
        c = await asyncpg.connect(bare(url), user=username, password=password.reveal().decode())
    except asyncpg.InvalidPasswordError:
        return False
    await c.close()
    return True


def test_issue_revoke_and_a_renewing_pool(pg_db, key_file):
    db = urlsplit(pg_db).path.lstrip("/")

    async def go():
        # the server compares VALID UNTIL with its own clock: start at now
        clock = strongroom.ManualClock(int(time.time() * 1000))
        prot = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(), prot, clock=clock)
        leases = strongroom.LeaseManager(sr, clock)
        with pytest.raises(strongroom.InvalidArgument):
            await strongroom.DynamicPg.open(sr, leases)  # no catalog stored
        await sr.put_secret("infra/pg/admin-url", pg_db.encode())
        assert strongroom.configure_pg_catalog(sr, catalog(db)) == 1
        with pytest.raises(strongroom.InvalidArgument):
            strongroom.configure_pg_catalog(sr, catalog(db))  # stale revision
        with pytest.raises(strongroom.InvalidArgument):
            strongroom.configure_pg_catalog(sr, "roles = 1", 1)

        dyn = await strongroom.DynamicPg.open(sr, leases)
        assert dyn.roles() == ["readonly"]
        cred = await dyn.issue("readonly", ttl=120)
        assert cred.lease.path.endswith("/creds/readonly") and cred.lease.ttl == 120
        assert "redacted" in repr(cred) and cred.password.reveal().decode() not in repr(cred)
        assert await login_ok(pg_db, cred.username, cred.password)
        await leases.revoke(cred.lease.id)
        assert not await login_ok(pg_db, cred.username, cred.password)
        with pytest.raises(strongroom.InvalidArgument):
            await dyn.issue("nosuchrole")
        with pytest.raises(strongroom.InvalidArgument):
            await dyn.feed("readonly", refresh_fraction=float("nan"))

        # a pool over a feed that issues a new role at half of each TTL
        feed = await dyn.feed("readonly", ttl=120, refresh_fraction=0.5)
        pool = await srpg.asyncpg_pool(feed, bare(pg_db), min_size=1, max_size=2)
        first = await pool.fetchval("SELECT current_user")
        clock.advance(61)
        for _ in range(200):
            now = await feed.login()
            if now.username != first:
                break
            await asyncio.sleep(0.01)
        assert now.username != first, "the feed did not renew"
        # new connections log in as the new role
        conn = await srpg.asyncpg_connect(feed, bare(pg_db))
        assert await conn.fetchval("SELECT current_user") == now.username
        await conn.close()
        await pool.close()

    asyncio.run(go())


def test_blocking_dynamic(pg_db, key_file):
    db = urlsplit(pg_db).path.lstrip("/")
    sr = strongroom.blocking.Strongroom.init(
        strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key_file(key_file))
    leases = strongroom.blocking.LeaseManager(sr, None)
    sr.put_secret("infra/pg/admin-url", pg_db.encode())
    strongroom.configure_pg_catalog(sr, catalog(db))
    dyn = strongroom.blocking.DynamicPg.open(sr, leases)
    cred = dyn.issue("readonly")
    assert cred.lease.ttl == 600
    assert asyncio.run(login_ok(pg_db, cred.username, cred.password))
    feed = dyn.feed("readonly")
    assert feed.login().username.startswith("sr_")
    sr.close()
    with pytest.raises(strongroom.Closed):
        dyn.issue("readonly")
