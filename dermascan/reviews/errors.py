"""``ReviewStoreError`` and the translation of SQLite / PostgreSQL / OS failures into one-line user messages.

Messages name the database file but never its folder (the full path can reveal a user name or a
clinic's share layout), a PostgreSQL database by name and host but never its URL (it may hold a password),
and always say what to do next, so the dashboard can show them as they are.
"""

from __future__ import annotations

import errno
import logging
import sqlite3

import sqlalchemy.exc

from dermascan.config import REVIEW_DB_ENV as DB_ENV_VAR
from dermascan.errors import DermascanError

log = logging.getLogger(__name__)

# Primary SQLite result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_AUTH, _SQLITE_NOTADB = 23, 26


class ReviewStoreError(DermascanError):
    """The review database cannot be used right now; the message says why and what to do."""


def busy(name: str) -> ReviewStoreError:
    """Another connection kept the write lock longer than the busy timeout."""
    return ReviewStoreError(
        f"The review database ({name}) is busy because another user or process is saving; "
        "wait a few seconds and try again."
    )


def read_only(name: str) -> ReviewStoreError:
    """The file or its folder cannot be written."""
    return ReviewStoreError(
        f"The review database ({name}) cannot be written because the file or its folder is read-only; "
        f"make it writable or set {DB_ENV_VAR} to a writable location, then restart the app."
    )


def cannot_open(name: str) -> ReviewStoreError:
    """SQLite could not open (or create) the file at all."""
    return ReviewStoreError(
        f"The review database ({name}) cannot be opened; check that it and its folder exist and are accessible, "
        f"or set {DB_ENV_VAR} to another location, then restart the app."
    )


def corrupt(name: str) -> ReviewStoreError:
    """Not an SQLite database, or a damaged one. The file is never touched."""
    return ReviewStoreError(
        f"{name} is not a readable review database (damaged, or another kind of file) and was left untouched; "
        "move it aside or restore a backup, restart the app, then import your latest CSV export."
    )


def disk_full(name: str) -> ReviewStoreError:
    """No space left (or the database hit its size limit); the transaction was rolled back."""
    return ReviewStoreError(
        f"The disk holding the review database ({name}) is full, so the last change was not saved; "
        "free some space and try again."
    )


def io_error(name: str) -> ReviewStoreError:
    """A low-level read or write failed."""
    return ReviewStoreError(
        f"The review database ({name}) could not be read or written because of a disk error; "
        "check the disk and try again."
    )


def newer_schema(name: str, version: int) -> ReviewStoreError:
    """The file was written by a newer release; refusing to guess how to read it."""
    return ReviewStoreError(
        f"{name} was written by a newer version of DermaScan Review (schema {version}); "
        "upgrade the app to open it."
    )


def foreign_database(name: str) -> ReviewStoreError:
    """An SQLite file that belongs to something else."""
    return ReviewStoreError(
        f"{name} is a database of another application, not a review database; "
        f"set {DB_ENV_VAR} to another file name and restart the app."
    )


def needs_upgrade(name: str) -> ReviewStoreError:
    """A read-only store cannot run the migrations an older file needs."""
    return ReviewStoreError(
        f"{name} was written by an older version of DermaScan Review; open it once with write access to upgrade it."
    )


def no_such_case(case_id: int) -> ReviewStoreError:
    """A decision was saved for a case id that is not (or no longer) in the database."""
    return ReviewStoreError(f"Case {case_id} is not in the review database; reload the page and try again.")


def closed() -> ReviewStoreError:
    """The store was used after ``close()``."""
    return ReviewStoreError("The review store has been closed; reload the page.")


def from_sqlite(exc: sqlite3.Error, name: str) -> ReviewStoreError:
    """Translate an ``sqlite3`` exception into a ``ReviewStoreError`` (logs the SQLite code, not the data)."""
    code = getattr(exc, "sqlite_errorcode", None)
    label = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    log.warning("review database error: %s", label)
    primary = None if code is None else code & 0xFF
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return busy(name)
    if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_AUTH):
        return read_only(name)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return corrupt(name)
    if primary == _SQLITE_FULL:
        return disk_full(name)
    if primary == _SQLITE_IOERR:
        return io_error(name)
    if primary == _SQLITE_CANTOPEN:
        return cannot_open(name)
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc).lower():
        return closed()
    return ReviewStoreError(
        f"The review database ({name}) reported an unexpected error ({label}); "
        "try again, and if it persists export your reviews to CSV and contact support."
    )


def from_os(exc: OSError, name: str) -> ReviewStoreError:
    """Translate a file-system error met while creating the database file or its folder."""
    log.warning("review database file error: %s", errno.errorcode.get(exc.errno or 0, type(exc).__name__))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return read_only(name)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return disk_full(name)
    return cannot_open(name)


def unreachable(name: str) -> ReviewStoreError:
    """The PostgreSQL server did not answer, or the connection broke."""
    return ReviewStoreError(
        f"The review database server ({name}) cannot be reached; check that it is running and that {DB_ENV_VAR} "
        "names it, then try again."
    )


def login_refused(name: str) -> ReviewStoreError:
    """The server refused the user name or password (the message never repeats either)."""
    return ReviewStoreError(
        f"The review database server ({name}) refused the user name or password in {DB_ENV_VAR}; "
        "correct them and restart the app."
    )


def no_database(name: str) -> ReviewStoreError:
    """The server is up but has no such database."""
    return ReviewStoreError(
        f"The review database ({name}) does not exist on that server; create it (see docs/deployment.md) "
        "and restart the app."
    )


def not_allowed(name: str) -> ReviewStoreError:
    """The database user may not read or change the tables."""
    return ReviewStoreError(
        f"The database user in {DB_ENV_VAR} may not use the review tables of {name}; grant it access "
        "(see docs/deployment.md) and restart the app."
    )


def too_long(name: str) -> ReviewStoreError:
    """A value over one of the database's own limits (an index entry, a field size); nothing was saved."""
    return ReviewStoreError(
        f"The review database ({name}) refused a value as too long to store, so the last change was not saved; "
        "shorten the longest text and try again."
    )


def not_unicode(name: str) -> ReviewStoreError:
    """A text holding a lone surrogate reached the driver (records refuse them; this is the safety net)."""
    return ReviewStoreError(
        f"A text given to the review database ({name}) is not valid Unicode, so nothing was read or saved; "
        "retype it and try again."
    )


# SQLSTATE classes and codes of PostgreSQL (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_BUSY = {"55P03", "40P01", "40001", "57014"}  # lock timeout, deadlock, serialization failure, statement timeout
_PG_RETRY = {"40P01", "40001"}


def retryable(exc: BaseException) -> bool:
    """True for a PostgreSQL deadlock or serialization failure: the whole transaction may simply run again."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in _PG_RETRY


def from_postgres(exc: BaseException, name: str) -> ReviewStoreError:
    """Translate a psycopg exception (logs its SQLSTATE, never its text: that may quote data)."""
    state = getattr(exc, "sqlstate", None) or _connect_state(exc)
    log.warning("review database error: %s %s", type(exc).__name__, state or "(no sqlstate)")
    if state in _PG_BUSY:
        return busy(name)
    if state.startswith("28"):
        return login_refused(name)
    if state == "3D000":
        return no_database(name)
    if state == "25006":
        return read_only(name)
    if state == "42501":
        return not_allowed(name)
    if state.startswith("53"):
        return disk_full(name)
    if state.startswith("54"):  # program limit exceeded: the same value would fail again
        return too_long(name)
    if state.startswith("XX"):
        return corrupt(name)
    if state.startswith(("08", "57P")) or (not state and type(exc).__name__ == "OperationalError"):
        return unreachable(name)
    return ReviewStoreError(
        f"The review database ({name}) reported an unexpected error ({state or type(exc).__name__}); "
        "try again, and if it persists export your reviews to CSV and contact support."
    )


def _connect_state(exc: BaseException) -> str:
    # A failed connection has no SQLSTATE in psycopg, only libpq's text (read here, never shown: it names hosts).
    text = str(exc).lower()
    if "password authentication failed" in text or "no password supplied" in text or "role" in text and (
            "does not exist" in text):
        return "28P01"
    if "database" in text and "does not exist" in text:
        return "3D000"
    return ""


def from_db(exc: BaseException, name: str) -> ReviewStoreError:
    """Translate any database failure met through SQLAlchemy (or the drivers directly) into a one-line error."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # every pooled connection stayed busy
        return busy(name)
    orig = getattr(exc, "orig", None) if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        return from_sqlite(orig, name)
    if orig is not None and type(orig).__module__.startswith("psycopg"):
        return from_postgres(orig, name)
    log.warning("review database error: %s", type(exc).__name__)
    return ReviewStoreError(
        f"The review database ({name}) reported an unexpected error ({type(exc).__name__}); "
        "try again, and if it persists export your reviews to CSV and contact support."
    )
