"""Where the review database is and how to connect to it: an SQLite file (the default) or a PostgreSQL server.

``locate`` reads what the user gave (a path, ``sqlite:///...``, ``postgresql://...``); ``sqlite_engines`` and
``postgres_engine`` build SQLAlchemy engines with each backend's settings. A URL may hold a password: it never
reaches a message or a log line (``Location.name`` is what they show).
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event, pool
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ..config import DEFAULT_REVIEW_DB
from . import errors
from .errors import DB_ENV_VAR

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
SQLITE_SCHEME = "sqlite"
SQLITE_LOWER = "dermascan_lower"
"""The SQL function SQLite connections get for search: Python's ``str.lower``, the reference's own lowering."""

# Text search on PostgreSQL lowers through ICU's root locale: full Unicode, whatever the database's locale
# (the columns themselves sort in "C", whose lower() would only touch ASCII).
POSTGRES_LOWER_COLLATION = "und-x-icu"


@dataclass(frozen=True)
class Location:
    """A review database: ``path`` for an SQLite file, ``url`` (with its password) for PostgreSQL."""

    path: Path | None = None
    url: sa.URL | None = None

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return SQLITE_SCHEME if self.path is not None else "postgresql"

    @property
    def name(self) -> str:
        """How messages name the database: the file name, or ``database on host`` (never a folder or password)."""
        if self.path is not None:
            return self.path.name
        host = self.url.host or self.url.query.get("host") or ""
        if isinstance(host, tuple):
            host = host[0]
        if not host or host.startswith("/"):  # a socket folder is a path: not shown, as with SQLite files
            host = "the local server"
        return f"{self.url.database or 'postgres'} on {host}"


def configured() -> str | None:
    """``$DERMASCAN_REVIEW_DB`` (a path or a URL), or ``None`` when it is unset or blank."""
    value = os.environ.get(DB_ENV_VAR, "").strip()
    return value or None


def locate(target: str | os.PathLike[str] | None) -> Location:
    """Read a path or URL (``None``: ``$DERMASCAN_REVIEW_DB``, else ``.dermascan/reviews.sqlite3``).

    ``ReviewStoreError`` for a URL this store cannot use; the message never repeats the URL.
    """
    if target is None:
        target = configured() or DEFAULT_REVIEW_DB
    if isinstance(target, os.PathLike):
        return Location(path=Path(target).expanduser().absolute())
    if not isinstance(target, str):
        raise TypeError("the review database must be a path or a URL")
    scheme, sep, rest = target.partition("://")
    if not sep:
        return Location(path=Path(target).expanduser().absolute())
    scheme = scheme.lower()
    if scheme == SQLITE_SCHEME:
        # sqlite:///relative/file and sqlite:////absolute/file, as SQLAlchemy spells them.
        path = urllib.parse.unquote(rest[1:] if rest.startswith("/") else rest).split("?", 1)[0]
        if not path or path == ":memory:":
            raise errors.ReviewStoreError("The review database must be a file (sqlite:///path/to/reviews.sqlite3), "
                                          "not an in-memory database.")
        return Location(path=Path(path).expanduser().absolute())
    if scheme in POSTGRES_SCHEMES:
        try:
            url = sa.make_url(target)
        except sa.exc.ArgumentError:
            raise errors.ReviewStoreError(
                f"The PostgreSQL URL in {DB_ENV_VAR} (or --db) cannot be read; write it as "
                "postgresql://user:password@host:5432/database.") from None
        return Location(url=url.set(drivername="postgresql+psycopg"))
    raise errors.ReviewStoreError(
        f"The review database must be a file path, sqlite:///path or postgresql://user@host/database "
        f"(not {scheme[:20]}://); check {DB_ENV_VAR}.")


# -- SQLite -------------------------------------------------------------------------------------------------

def _sqlite_connect(path: Path, busy_timeout: float, read_only: bool):
    def connect() -> sqlite3.Connection:
        target = f"file:{urllib.parse.quote(str(path))}?mode=ro" if read_only else str(path)
        # isolation_level=None: the store issues BEGIN (IMMEDIATE) itself, see sqlite_engines.
        conn = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None, check_same_thread=False,
                               uri=read_only)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        conn.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)
        return conn
    return connect


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _begin_with(engine: sa.Engine, statement: str) -> None:
    @event.listens_for(engine, "begin")
    def begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(statement)


def sqlite_engines(path: Path, *, busy_timeout: float, read_only: bool) -> tuple[sa.Engine, sa.Engine]:
    """``(writer, reader)`` engines on one file.

    The writer has ONE connection, whose every transaction is ``BEGIN IMMEDIATE``: it takes SQLite's write lock up
    front (waiting up to ``busy_timeout`` for other processes), so a read-check-write is atomic; threads of this
    process queue for that connection. Readers get their own connections (``BEGIN`` deferred: a WAL snapshot), so
    they never wait for a writer, here or in another process.
    """
    connect = _sqlite_connect(path, busy_timeout, read_only)
    writer = sa.create_engine("sqlite://", creator=connect, poolclass=pool.QueuePool, pool_size=1, max_overflow=0,
                              pool_timeout=max(busy_timeout, 0.1))
    reader = sa.create_engine("sqlite://", creator=connect, poolclass=pool.QueuePool, pool_size=4, max_overflow=4,
                              pool_timeout=max(busy_timeout, 0.1))
    _begin_with(writer, "BEGIN IMMEDIATE")
    _begin_with(reader, "BEGIN")
    return writer, reader


# -- PostgreSQL ---------------------------------------------------------------------------------------------

def postgres_engine(url: sa.URL, *, busy_timeout: float, read_only: bool) -> sa.Engine:
    """A pooled psycopg 3 engine; a row lock held longer than ``busy_timeout`` ends in a busy error."""
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                              pool_timeout=max(busy_timeout, 0.1), connect_args={"connect_timeout": 10})
    lock_ms = max(int(busy_timeout * 1000), 1)

    @event.listens_for(engine, "connect")
    def settings(dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {lock_ms}")
            if read_only:
                cursor.execute("SET default_transaction_read_only = on")
        dbapi_conn.commit()

    return engine


# -- search -------------------------------------------------------------------------------------------------

class search_lower(FunctionElement):  # noqa: N801 (an SQL function name)
    """``lower()`` as each backend does it for search, matching Python's ``str.lower`` on the reference side."""

    type = sa.Text()
    inherit_cache = True


@compiles(search_lower)
def _lower_default(element, compiler, **kw) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(search_lower, "sqlite")
def _lower_sqlite(element, compiler, **kw) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


@compiles(search_lower, "postgresql")
def _lower_postgres(element, compiler, **kw) -> str:
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "{POSTGRES_LOWER_COLLATION}")'
