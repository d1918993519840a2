"""PostgreSQL pools that log in with a Strongroom :class:`~strongroom.CredentialFeed`.

Each new connection asks the feed for its login (role and password of the
rotated credential's current version). When the server refuses a login
(SQLSTATE 28P01: a rotated or revoked password), the connection attempt
tells the feed, which records the refused version once however many
connections report it, and the attempt is made again with the next stored
version. Connections already open are not affected by a rotation (the
server checks passwords only when logging in), so queries keep running.

- :func:`asyncpg_pool`: an ``asyncpg`` pool (its ``connect=`` hook).
- :func:`psycopg_async_pool` / :func:`psycopg_pool`: ``psycopg_pool``
  pools whose connection class logs in through the feed.
- :func:`sqlalchemy_use_feed`: a SQLAlchemy ``Engine`` (``do_connect`` event).

The drivers are imported only by the function that uses them; none is a
dependency of ``strongroom``.
"""

from __future__ import annotations

REFUSED = "28P01"
"""The SQLSTATE of a refused login (wrong or revoked password, dropped role,
expired ``VALID UNTIL``)."""

_ATTEMPTS = 4
"""Logins tried per new connection: the current version, then pending and
previous (a refused version is not offered again)."""

def _password(login) -> str:
    return login.password.reveal().decode()


def _libpq_sqlstate(error) -> str:
    """The SQLSTATE of a psycopg connection error, or "" when libpq gives
    only text: a refused login comes as "password authentication failed for
    user ...", which the feed recognises itself (strongroom-host)."""
    return getattr(error, "sqlstate", None) or ""


def _no_login():
    from . import _native

    return _native.InvalidArgument(
        "the credential has no stored version yet: rotate or import it before opening a pool"
    )


async def _alogin_loop(feed, connect, sqlstate_of, errors):
    login = await feed.login()
    if login is None:
        raise _no_login()
    for attempt in range(_ATTEMPTS):
        try:
            return await connect(login)
        except errors as e:
            if attempt + 1 == _ATTEMPTS:
                raise
            after = await feed.after_error(login.version, sqlstate_of(e), str(e))
            if after.kind != "retry":
                raise
            login = after.login
    raise AssertionError("unreachable")


def _login_loop(feed, connect, sqlstate_of, errors):
    login = feed.login()
    if login is None:
        raise _no_login()
    for attempt in range(_ATTEMPTS):
        try:
            return connect(login)
        except errors as e:
            if attempt + 1 == _ATTEMPTS:
                raise
            after = feed.after_error(login.version, sqlstate_of(e), str(e))
            if after.kind != "retry":
                raise
            login = after.login
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# asyncpg


async def asyncpg_connect(feed, dsn=None, **kwargs):
    """One ``asyncpg`` connection logged in through `feed` (a
    :class:`strongroom.CredentialFeed`); `dsn` and `kwargs` as for
    ``asyncpg.connect`` (without user or password)."""
    import asyncpg

    kwargs.pop("user", None)
    kwargs.pop("password", None)

    async def connect(login):
        return await asyncpg.connect(dsn, user=login.username, password=_password(login), **kwargs)

    return await _alogin_loop(feed, connect, lambda e: e.sqlstate or "", asyncpg.PostgresError)


async def asyncpg_pool(feed, dsn=None, **pool_kwargs):
    """An ``asyncpg`` pool (``asyncpg.create_pool(dsn, **pool_kwargs)``)
    whose new connections log in through `feed`. A refused login is
    reported to the feed and tried again with the next stored version
    inside the pool's connect, so ``acquire()`` and queries see no error."""
    import asyncpg

    async def connect(*args, **kwargs):
        return await asyncpg_connect(feed, *args, **kwargs)

    return await asyncpg.create_pool(dsn, connect=connect, **pool_kwargs)


# ---------------------------------------------------------------------------
# psycopg 3


def _psycopg_async_class(feed):
    import psycopg

    class StrongroomAsyncConnection(psycopg.AsyncConnection):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs):
            kwargs.pop("user", None)
            kwargs.pop("password", None)
            base = super().connect

            async def connect(login):
                return await base(conninfo, user=login.username, password=_password(login), **kwargs)

            return await _alogin_loop(feed, connect, _libpq_sqlstate, psycopg.OperationalError)

    return StrongroomAsyncConnection


def _psycopg_class(feed):
    import psycopg

    class StrongroomConnection(psycopg.Connection):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs):
            kwargs.pop("user", None)
            kwargs.pop("password", None)
            base = super().connect

            def connect(login):
                return base(conninfo, user=login.username, password=_password(login), **kwargs)

            return _login_loop(feed, connect, _libpq_sqlstate, psycopg.OperationalError)

    return StrongroomConnection


def psycopg_async_pool(feed, conninfo: str = "", **pool_kwargs):
    """A ``psycopg_pool.AsyncConnectionPool(conninfo, **pool_kwargs)``
    whose connections log in through `feed` (a
    :class:`strongroom.CredentialFeed`). Open it as usual (``await
    pool.open()`` or ``async with``)."""
    from psycopg_pool import AsyncConnectionPool

    pool_kwargs.setdefault("open", False)
    return AsyncConnectionPool(conninfo, connection_class=_psycopg_async_class(feed), **pool_kwargs)


def psycopg_pool(feed, conninfo: str = "", **pool_kwargs):
    """A ``psycopg_pool.ConnectionPool(conninfo, **pool_kwargs)`` whose
    connections log in through `feed` (a
    :class:`strongroom.blocking.CredentialFeed`)."""
    from psycopg_pool import ConnectionPool

    pool_kwargs.setdefault("open", False)
    return ConnectionPool(conninfo, connection_class=_psycopg_class(feed), **pool_kwargs)


# ---------------------------------------------------------------------------
# SQLAlchemy


def sqlalchemy_use_feed(engine, feed):
    """Makes a SQLAlchemy ``Engine`` (``postgresql+psycopg://host/db``,
    no user or password in the URL) log in through `feed` (a
    :class:`strongroom.blocking.CredentialFeed`): its ``do_connect`` event
    connects each new connection with the feed's user and password (the
    engine's own parameters are not changed) and, after a refused login,
    connects again with the feed's next login. Returns `engine`."""
    from sqlalchemy import event

    dbapi = engine.dialect.dbapi
    errors = getattr(dbapi, "OperationalError", Exception)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, conn_rec, cargs, cparams):
        # cparams is the engine's, shared by every thread: connect with a copy
        def connect(login):
            params = dict(cparams, user=login.username, password=_password(login))
            return dialect.connect(*cargs, **params)

        return _login_loop(feed, connect, _libpq_sqlstate, errors)

    return engine


__all__ = [
    "REFUSED",
    "asyncpg_connect",
    "asyncpg_pool",
    "psycopg_async_pool",
    "psycopg_pool",
    "sqlalchemy_use_feed",
]
