from typing import Any, Optional, Protocol, TypeVar, Union

from . import AfterError, CredentialFeed, PgLogin
from . import blocking

_E = TypeVar("_E")

class _AsyncFeed(Protocol):
    async def login(self) -> Optional[PgLogin]: ...
    async def after_error(self, version: int, sqlstate: str, message: str) -> AfterError: ...

class _Feed(Protocol):
    def login(self) -> Optional[PgLogin]: ...
    def after_error(self, version: int, sqlstate: str, message: str) -> AfterError: ...

REFUSED: str

async def asyncpg_connect(feed: Union[CredentialFeed, _AsyncFeed], dsn: Optional[str] = None, **kwargs: Any) -> Any:
    """An asyncpg.Connection logged in through `feed`."""

async def asyncpg_pool(feed: Union[CredentialFeed, _AsyncFeed], dsn: Optional[str] = None, **pool_kwargs: Any) -> Any:
    """An asyncpg.Pool whose new connections log in through `feed`."""

def psycopg_async_pool(feed: Union[CredentialFeed, _AsyncFeed], conninfo: str = "", **pool_kwargs: Any) -> Any:
    """A psycopg_pool.AsyncConnectionPool (not yet open) logging in through `feed`."""

def psycopg_pool(feed: Union[blocking.CredentialFeed, _Feed], conninfo: str = "", **pool_kwargs: Any) -> Any:
    """A psycopg_pool.ConnectionPool (not yet open) logging in through `feed`."""

def sqlalchemy_use_feed(engine: _E, feed: Union[blocking.CredentialFeed, _Feed]) -> _E:
    """Makes a SQLAlchemy Engine log in through `feed`; returns it."""
