"""PostgreSQL against a private cluster (strongroom-testpg): a store in
PostgreSQL, PgRotation and its CredentialFeed, and the pools of
strongroom.pg (asyncpg, psycopg 3, SQLAlchemy) while passwords rotate."""

import asyncio
import threading
import time
import uuid
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest
import sqlalchemy
import strongroom
import strongroom.pg as srpg


def bare(url: str) -> str:
    """`url` without user and password (the feed supplies them)."""
    u = urlsplit(url)
    return f"postgresql://{u.hostname}:{u.port}{u.path}"


def role_name() -> str:
    return "app_" + uuid.uuid4().hex[:8]


async def store(url, key_file, clock=None):
    prot = strongroom.SoftwareProtector.from_key_file(key_file)
    return await strongroom.Strongroom.init(strongroom.Storage.open(url), prot, clock=clock)


def test_a_store_in_postgresql(pg_db, key_file):
    s = strongroom.Storage.open(pg_db)
    assert s.backend == "postgres" and "@" not in repr(s)

    async def go():
        prot = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await strongroom.Strongroom.init(s, prot)
        await sr.put_secret("db/pw", b"v1")
        sr.close()
        sr = await strongroom.open(pg_db, key_file=key_file)
        assert (await sr.get_secret("db/pw"))[1].reveal() == b"v1"
        sr.close()

    asyncio.run(go())
    b = strongroom.blocking.open(pg_db, key_file=key_file)
    assert b.get_secret("db/pw")[1].reveal() == b"v1"
    b.close()
    u = urlsplit(pg_db)
    wrong = u._replace(netloc=f"postgres:hunter2wrong@{u.hostname}:{u.port}").geturl()
    with pytest.raises(strongroom.StorageError) as e:
        strongroom.Storage.open(wrong)
    assert "hunter2wrong" not in str(e.value) and e.value.code == "storage.rejected"


def test_pg_rotation_and_its_feed(pg_db, key_file):
    role = role_name()
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN")

    async def go():
        clock = strongroom.ManualClock(1_000_000)
        sr = await store(pg_db, key_file, clock)
        with pytest.raises(strongroom.InvalidArgument):
            await strongroom.PgRotation.open(sr, "db/x", pg_db, role, mode="both")
        with pytest.raises(strongroom.StorageError) as e:
            await strongroom.PgRotation.open(sr, "db/x", "postgres://u:hunter2@", role)
        assert "hunter2" not in str(e.value)
        rot = await strongroom.PgRotation.open(sr, "db/single", pg_db, role, mode="single", grace_period=30)
        feed = rot.credential_feed()
        assert await feed.login() is None
        with pytest.raises(strongroom.InvalidArgument):
            await srpg.asyncpg_connect(feed, bare(pg_db))  # nothing rotated yet
        assert (await rot.rotate_now()).promoted == 1
        first = await feed.login()
        assert first.version == 1 and first.username == role
        assert "redacted" in repr(first) and first.password.reveal().decode() not in repr(first)
        conn = await asyncpg.connect(bare(pg_db), user=role, password=first.password.reveal().decode())
        assert (await rot.rotate_now()).promoted == 2
        # an open connection keeps working; a new login with version 1 is refused
        assert await conn.fetchval("SELECT session_user") == role
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError) as refused:
            await srpg.asyncpg_connect(Pinned(feed, first, retry=False), bare(pg_db))
        err = refused.value
        after = await feed.after_error(first.version, err.sqlstate, str(err))
        assert after.kind == "retry" and after.login.version == 2
        again = await feed.after_error(first.version, "28P01", "again")
        assert again.kind == "retry" and feed.refreshes == 1
        assert (await feed.after_error(2, "42P01", "no table")).kind == "not-a-credential-error"
        assert (await feed.after_error(2, "28P01", "refused")).kind == "no-other-credential"
        assert feed.refreshes == 2
        status = await rot.status()
        assert status.current == 2 and status.previous == 1
        clock.advance(31)
        assert await rot.revoke_due() is True
        # another feed of the same credential, and the blocking forms
        other = strongroom.CredentialFeed.rotated(sr, "db/single").blocking()
        assert other.login().version == 2
        assert rot.blocking().status().previous is None
        brot = strongroom.blocking.PgRotation.open(sr, "db/single", pg_db, role, mode="single")
        assert brot.status().current == 2 and brot.credential_feed().login().version == 2
        brot.close()
        await rot.close()
        sr.close()
        with pytest.raises(strongroom.Closed):
            await feed.login()

    asyncio.run(go())


class Pinned:
    """A feed whose logins were read before a rotation (as another process
    that read the store a moment earlier would): every login() gives
    `stale`; after_error goes to the real feed."""

    def __init__(self, feed, stale, retry=True):
        self.feed, self.stale, self.retry = feed, stale, retry

    def login(self):
        if isinstance(self.feed, strongroom.CredentialFeed):

            async def stale():
                return self.stale

            return stale()
        return self.stale

    def after_error(self, version, sqlstate, message):
        if not self.retry:
            raise asyncpg.InvalidPasswordError(message)
        return self.feed.after_error(version, sqlstate, message)


K = 8


async def single_user_refused(pg_db, key_file):
    """A single-user rotation whose pool's logins were read before it."""
    role = role_name()
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN")
    sr = await store(pg_db, key_file)
    rot = await strongroom.PgRotation.open(sr, "db/app", pg_db, role, mode="single")
    await rot.rotate_now()
    feed = rot.credential_feed()
    stale = await feed.login()
    await rot.rotate_now()
    return sr, rot, feed, stale


def test_single_user_refused_logins_recover_with_one_refresh_asyncpg(pg_db, key_file):
    async def go():
        sr, rot, feed, stale = await single_user_refused(pg_db, key_file)
        pool = await srpg.asyncpg_pool(Pinned(feed, stale), bare(pg_db), min_size=K, max_size=K)

        async def q():
            async with pool.acquire() as c:
                return await c.fetchval("SELECT 1")

        assert await asyncio.gather(*(q() for _ in range(4 * K))) == [1] * (4 * K)
        assert feed.refreshes == 1, "one refresh for K refused connections"
        await pool.close()
        await rot.close()
        sr.close()

    asyncio.run(go())


def test_single_user_refused_logins_recover_with_one_refresh_psycopg(pg_db, key_file):
    async def go():
        sr, rot, feed, stale = await single_user_refused(pg_db, key_file)
        async with srpg.psycopg_async_pool(Pinned(feed, stale), bare(pg_db), min_size=K, max_size=K) as pool:

            async def q():
                async with pool.connection() as c:
                    return (await (await c.execute("SELECT 1")).fetchone())[0]

            assert await asyncio.gather(*(q() for _ in range(4 * K))) == [1] * (4 * K)
        assert feed.refreshes == 1
        # the blocking pool and SQLAlchemy: a blocking feed, its own refusal
        bfeed = rot.blocking().credential_feed()
        with srpg.psycopg_pool(Pinned(bfeed, stale), bare(pg_db), min_size=2, max_size=K) as pool:
            with pool.connection() as c:
                assert c.execute("SELECT 1").fetchone()[0] == 1
        assert bfeed.refreshes == 1
        sfeed = rot.blocking().credential_feed()
        host = bare(pg_db).replace("postgresql://", "postgresql+psycopg://")
        engine = srpg.sqlalchemy_use_feed(sqlalchemy.create_engine(host, pool_size=K), Pinned(sfeed, stale))

        def run():
            with engine.connect() as c:
                assert c.execute(sqlalchemy.text("SELECT 1")).scalar() == 1

        threads = [threading.Thread(target=run) for _ in range(K)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sfeed.refreshes == 1
        engine.dispose()
        await rot.close()
        sr.close()

    asyncio.run(go())


ROTATIONS = 4


async def rotate_under_load(pg_db, key_file, make_pool, query, close):
    """K tasks query in a loop while the password rotates ROTATIONS times
    (alternating roles; each grace period elapses on the manual clock and
    the previous password is revoked). Returns (queries, failed, refreshes,
    users seen)."""
    clock = strongroom.ManualClock(1_000_000)
    sr = await store(pg_db, key_file, clock)
    rot = await strongroom.PgRotation.open(sr, "db/app", pg_db, role_name(), grace_period=60)
    await rot.rotate_now()
    feed = rot.credential_feed()
    pool = await make_pool(feed)
    stop, counts, failures, users = asyncio.Event(), [0], [], set()

    async def worker():
        while not stop.is_set():
            try:
                users.add(await query(pool))
                counts[0] += 1
            except Exception as e:  # counted, reported below
                failures.append(repr(e))

    tasks = [asyncio.create_task(worker()) for _ in range(K)]
    for _ in range(ROTATIONS):
        await asyncio.sleep(0.25)
        await rot.rotate_now()
        clock.advance(61)
        assert await rot.revoke_due() is True
    await asyncio.sleep(0.25)
    stop.set()
    await asyncio.gather(*tasks)
    await close(pool)
    refreshes = feed.refreshes
    await rot.close()
    sr.close()
    print(f"queries={counts[0]} failed={len(failures)} refreshes={refreshes} users={sorted(users)}")
    assert failures == [], failures[:3]
    assert counts[0] > 50 and refreshes <= ROTATIONS
    assert len(users) == 2, "both alternating roles served queries"
    return counts[0], len(failures), refreshes


def test_asyncpg_pool_keeps_working_while_the_password_rotates(pg_db, key_file):
    async def make(feed):
        # max_queries: connections are replaced often, so new logins happen
        # during the rotations
        return await srpg.asyncpg_pool(feed, bare(pg_db), min_size=2, max_size=K, max_queries=3)

    async def query(pool):
        async with pool.acquire() as c:
            return await c.fetchval("SELECT session_user")

    async def close(pool):
        await pool.close()

    asyncio.run(rotate_under_load(pg_db, key_file, make, query, close))


def test_psycopg_pool_keeps_working_while_the_password_rotates(pg_db, key_file):
    async def make(feed):
        pool = srpg.psycopg_async_pool(feed, bare(pg_db), min_size=2, max_size=K, max_lifetime=0.2)
        await pool.open(wait=True)
        return pool

    async def query(pool):
        async with pool.connection() as c:
            return (await (await c.execute("SELECT session_user")).fetchone())[0]

    async def close(pool):
        await pool.close()

    asyncio.run(rotate_under_load(pg_db, key_file, make, query, close))
