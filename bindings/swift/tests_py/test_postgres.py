"""PostgreSQL through the uniffi FFI, against a private cluster
(conftest's `pg_url`): a store shared through the server, a rotated
password with the credential feed a pool logs in with, and dynamic
credentials from the stored role catalog. Logins are checked with psql."""

import asyncio
import os
import subprocess
import urllib.parse

import pytest
import strongroom_ffi as sr

E = sr.StrongroomError
KEY = bytes(range(32))


def run(coro):
    return asyncio.run(coro)


def psql_login(db_url: str, user: str, password: bytes) -> bool:
    """Whether `user` with `password` logs in to `db_url`'s database."""
    u = urllib.parse.urlsplit(db_url)
    url = f"postgresql://{urllib.parse.quote(user)}@{u.hostname}:{u.port}{u.path}"
    env = dict(os.environ, PGPASSWORD=password.decode(), PGCONNECT_TIMEOUT="10")
    r = subprocess.run(["psql", url, "-qAt", "-c", "SELECT 1"], env=env, capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "1"


def test_a_store_shared_through_postgres(pg_db):
    async def go():
        first = await sr.Storage.open(pg_db)
        assert first.backend() == "postgres"
        room = await sr.Strongroom.create(first, sr.SoftwareProtector.from_key(KEY))
        await room.put_secret("app/db", b"pw-1", None)
        # another process of the fleet
        second = await sr.Storage.open(pg_db)
        other = await sr.Strongroom.unseal(second, sr.SoftwareProtector.from_key(KEY))
        assert (await other.get_secret("app/db", None)).secret.reveal() == b"pw-1"
        await first.close()
        await second.close()

    run(go())


def test_a_refused_store_login_is_typed_and_quiet(pg_url):
    async def go():
        u = urllib.parse.urlsplit(pg_url)
        bad = f"postgres://postgres:wrong-hunter2@{u.hostname}:{u.port}/postgres"
        with pytest.raises(E.StorageError) as e:
            await sr.Storage.open(bad)
        assert e.value.code == "storage.rejected"
        assert "hunter2" not in str(e.value)

    run(go())


def test_rotated_password_and_its_feed(pg_db):
    async def go():
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(KEY))
        rot = await sr.PgRotation.open(room, "db/app", pg_db, "ffi_app", sr.PgRotationMode.ALTERNATING,
                                       sr.RotationOptions(grace_period_ms=0))
        feed = rot.credential_feed()
        assert await feed.login() is None
        engine = rot.engine()
        await engine.rotate_now()
        first = await feed.login()
        assert first.username in ("ffi_app_a", "ffi_app_b")
        assert psql_login(pg_db, first.username, first.password.reveal())
        # rotate: the other role gets a password; with no grace period the
        # first one is revoked
        await engine.rotate_now()
        await engine.revoke_due()
        assert not psql_login(pg_db, first.username, first.password.reveal())
        outcomes = await asyncio.gather(*[
            feed.after_error(first.version, "28P01", "password authentication failed") for _ in range(8)
        ])
        assert all(o.is_RETRY() for o in outcomes)
        nxt = outcomes[0].login
        assert nxt.version > first.version and psql_login(pg_db, nxt.username, nxt.password.reveal())
        assert feed.refreshes() == 1
        assert (await feed.after_error(nxt.version, "42P01", "no such table")).is_NOT_A_CREDENTIAL_ERROR()
        with pytest.raises(E.StorageError):
            await sr.PgRotation.open(room, "db/x", pg_db.replace("postgres:", "postgres:x", 1), "ffi_x",
                                     sr.PgRotationMode.ALTERNATING)
        with pytest.raises(E.InvalidArgument):
            await engine.import_current(b"k")
        await rot.close()

    run(go())


def test_dynamic_credentials_from_the_catalog(pg_db):
    async def go():
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(KEY))
        leases = sr.LeaseManager(room)
        with pytest.raises(E.InvalidArgument):
            await sr.DynamicPg.open(room, leases)
        await room.put_secret("infra/pg/admin-url", pg_db.encode(), None)
        db = urllib.parse.urlsplit(pg_db).path.lstrip("/")
        catalog = f'''
connection_secret = "infra/pg/admin-url"

[roles.readonly]
default_ttl_secs = 600
grants = [{{ privileges = ["Connect"], object = {{ Database = {{ name = "{db}" }} }} }}]
'''
        assert await sr.configure_pg_catalog(room, catalog, None) == 1
        with pytest.raises(E.InvalidArgument):  # stale revision
            await sr.configure_pg_catalog(room, catalog, None)
        dyn = await sr.DynamicPg.open(room, leases)
        assert dyn.roles() == ["readonly"]
        cred = await dyn.issue("readonly", 120_000)
        assert cred.lease.ttl_ms == 120_000 and cred.lease.path.endswith("/creds/readonly")
        assert psql_login(pg_db, cred.username, cred.password.reveal())
        await leases.revoke(cred.lease.id)
        assert not psql_login(pg_db, cred.username, cred.password.reveal())
        feed = await dyn.feed("readonly")
        login = await feed.login()
        assert psql_login(pg_db, login.username, login.password.reveal())

    run(go())
