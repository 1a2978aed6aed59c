"""``ReviewStore``: the SQLite file where reviewed cases and decisions live.

Durability: WAL journal with ``synchronous=FULL`` (a committed decision survives a crash or power cut),
every write in one ``BEGIN IMMEDIATE`` transaction, a busy timeout so several users on one server (or
several server processes on one file) wait for each other instead of failing.

Threading: ONE connection per store, opened with ``check_same_thread=False`` and guarded by a lock.
Streamlit runs every rerun of every session on a fresh thread, so per-thread connections would be
opened on nearly every click and only closed when the garbage collector gets to them; one shared,
serialised connection is simpler and fast enough for a review workload. Other processes (or other
``ReviewStore`` objects) on the same file coordinate through SQLite's own locking and the busy timeout.

Permissions: a new database file is created 0600 and missing folders 0700. An existing file keeps its
mode (an administrator may have opened it to a group on purpose); a warning is logged if others can read it.
A database that cannot be read is reported, never deleted or overwritten. A file from a newer release or
another application's SQLite database is refused from a read-only look, before anything could write to it.

Decisions and imports (the rule a clinician can rely on):

- Every decision ever saved is kept in ``decision_history``, in the order it was saved into this file
  (``history_id``, stamped ``saved_at`` by the store). A ``decided_at`` read from a file is a *claim*: it
  never reorders the history.
- Saving a decision in the app makes it the current one.
- An imported decision becomes the current one only if the case has none, or if it differs from the current
  one and claims a later ``decided_at``; the replaced decision stays in the history. One that claims an
  earlier time (a stale file, a colleague's older review) is added to the history only and never overrides
  the newer decision. Claims in the future (beyond a few minutes of clock skew) are refused per row by the
  CSV import, so a forged ``9999-12-31`` cannot win forever.
- Every stored case whose decisions an import touched is listed, with both reviewers and decisions, in the
  import's result (``MergeCounts.changes`` / ``ImportResult.changes``), so no replacement is silent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ..config import DEFAULT_REVIEW_DB as DEFAULT_DB_PATH
from . import csvio, engine, errors, queries, schema
from .columns import CASE, CASE_NAMES, DECISION_NAMES, names
from .query import CaseQuery
from .records import CASE_DETAIL_FIELDS, CaseRecord, Decision, DecisionChange, InvalidRecord, utc_now
from .tables import CASE_KEY, case_details_history, cases, decision_history, decisions

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT = 5.0
MERGE_CHUNK = 1000
"""Records per transaction of ``merge_cases``: a 100k-row import never holds the write lock for long."""

_CASE_COLUMNS = CASE_NAMES
_CASE_YES_NO = names(CASE, kind="yes_no")
_DECISION_FIELDS = DECISION_NAMES
_RETRIES = 3  # a PostgreSQL deadlock or serialization failure runs the whole transaction again
_T = TypeVar("_T")


class MergeCounts(NamedTuple):
    """What ``ReviewStore.merge_cases`` did with the incoming records."""

    added: int
    updated: int
    skipped: int
    kept_in_history: int
    changes: tuple[DecisionChange, ...] = ()
    """Every stored case whose decisions changed (``updated`` + ``kept_in_history`` of them), in file order."""

    def __add__(self, other: MergeCounts) -> MergeCounts:  # type: ignore[override]
        return MergeCounts(self.added + other.added, self.updated + other.updated, self.skipped + other.skipped,
                           self.kept_in_history + other.kept_in_history, self.changes + other.changes)


def default_db_path() -> Path:
    """``$DERMASCAN_REVIEW_DB`` if set, else ``.dermascan/reviews.sqlite3`` under the current directory.

    For a file only; ``default_db_url()`` also reads a ``postgresql://`` URL.
    """
    configured = engine.configured()
    return Path(configured).expanduser() if configured else DEFAULT_DB_PATH


def default_db_url() -> str:
    """``$DERMASCAN_REVIEW_DB`` as given (a path or a URL), else the default file's path."""
    return engine.configured() or str(DEFAULT_DB_PATH)


class ReviewStore:
    """Reviewed cases and decisions in an SQLite file or a PostgreSQL database; safe to share between threads.

    ``path``: a file path, ``sqlite:///path`` or ``postgresql://user:password@host/database`` (default:
    ``$DERMASCAN_REVIEW_DB``, else ``.dermascan/reviews.sqlite3``). ``busy_timeout``: seconds to wait for another
    writer (or a row lock) before giving up with ``ReviewStoreError``. ``read_only``: open without write access
    (every write then fails with ``ReviewStoreError``). Every failure is a ``ReviewStoreError``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 read_only: bool = False):
        self.location = engine.locate(path)
        self.backend = self.location.backend
        # Absolute now (locate), so a later chdir (some tools do) cannot split one store across two files.
        self.path: Path | None = self.location.path
        self.read_only = read_only
        self.busy_timeout = float(busy_timeout)
        self._name = self.location.name
        self._closed = False
        if self.path is not None:
            self._writer, self._reader = self._open_sqlite()
            self._insert = sqlite_dialect.insert
        else:
            self._writer = self._reader = self._open_postgres()
            self._insert = pg_dialect.insert

    # -- opening -------------------------------------------------------------------------------------------

    def _open_sqlite(self) -> tuple[sa.Engine, sa.Engine]:
        self._check_before_writing()
        if not self.read_only:
            try:
                self._create_private_file()
            except OSError as exc:
                raise errors.from_os(exc, self._name) from None
        writer, reader = engine.sqlite_engines(self.path, busy_timeout=self.busy_timeout, read_only=self.read_only)
        try:
            raw = writer.raw_connection()
        except (sa.exc.DBAPIError, sqlite3.Error) as exc:
            raise errors.from_db(exc, self._name) from None
        try:
            conn = raw.driver_connection
            # A read first: a file that is not a database fails here, before anything could be written to it.
            conn.execute("PRAGMA schema_version").fetchone()
            if self.read_only:
                if schema.check_ours(conn, self._name) < schema.SCHEMA_VERSION:
                    raise errors.needs_upgrade(self._name)
            else:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                schema.migrate(conn, self._name)
        except sqlite3.Error as exc:
            raw.invalidate()
            _dispose(writer, reader)
            raise errors.from_sqlite(exc, self._name) from None
        except BaseException:
            raw.invalidate()
            _dispose(writer, reader)
            raise
        finally:
            raw.close()
        log.info("review database opened (SQLite, schema %d)", schema.SCHEMA_VERSION)
        return writer, reader

    def _open_postgres(self) -> sa.Engine:
        db = engine.postgres_engine(self.location.url, busy_timeout=self.busy_timeout, read_only=self.read_only)
        try:
            with db.begin() as conn:
                if self.read_only:
                    if schema.postgres_version(conn, self._name) < schema.SCHEMA_VERSION:
                        raise errors.needs_upgrade(self._name)
                else:
                    schema.migrate_postgres(conn, self._name)
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            db.dispose()
            raise errors.from_db(exc, self._name) from None
        except BaseException:
            db.dispose()
            raise
        log.info("review database opened (PostgreSQL, schema %d)", schema.SCHEMA_VERSION)
        return db

    def _check_before_writing(self) -> None:
        # Opening read-write is not neutral: journal_mode=WAL rewrites the header (and creates -wal/-shm). So a
        # file from a newer release, another application's database or a non-database is refused from a
        # read-only look first, and stays byte-for-byte as it was.
        try:
            if self.path.stat().st_size == 0:
                return
        except OSError:
            return  # missing or unreadable: created, or reported, by the real open
        # immutable=1 reads the main file without locks and without creating -shm; that is only right when no
        # -wal holds newer pages, so with a -wal beside it (a database in use) a normal read-only open is used.
        wal = self.path.with_name(self.path.name + "-wal")
        target = f"file:{urllib.parse.quote(str(self.path))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
        try:
            probe = sqlite3.connect(target, timeout=self.busy_timeout, uri=True)
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, self._name) from None
        try:
            probe.execute("PRAGMA schema_version").fetchone()
            schema.check_ours(probe, self._name)
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, self._name) from None
        finally:
            probe.close()

    def _create_private_file(self) -> None:
        missing = []
        folder = self.path.parent
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process may create it meanwhile
                os.mkdir(folder, 0o700)
        try:
            # Created here rather than by SQLite so it is private from the first byte (SQLite would use 0644).
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = self.path.stat().st_mode
            if stat.S_ISREG(mode) and mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning("the review database file can be read by other users; consider chmod 600")
            return
        os.close(fd)

    def close(self) -> None:
        """Close the connections (idempotent). Later calls raise ``ReviewStoreError``."""
        if not self._closed:
            self._closed = True
            _dispose(self._writer, self._reader)

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReviewStore({self._name!r}, backend={self.backend!r}, read_only={self.read_only})"

    # -- transactions --------------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        # SQLite: a reader connection of its own in a deferred transaction (one WAL snapshot), never the writer's.
        if self._closed:
            raise errors.closed()
        try:
            with self._reader.connect() as conn:
                yield conn
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise errors.from_db(exc, self._name) from None
        except UnicodeEncodeError:  # a lone surrogate in a parameter: the drivers raise this, not a database error
            raise errors.not_unicode(self._name) from None

    def _transaction(self, work: Callable[[sa.Connection], _T]) -> _T:
        """Run ``work`` in one write transaction (all or nothing); ``BEGIN IMMEDIATE`` on SQLite (see engine.py).

        On PostgreSQL a deadlock or serialization failure (two imports locking the same cases in another order)
        rolls everything back and runs ``work`` again, up to three times.
        """
        if self._closed:
            raise errors.closed()
        for attempt in range(_RETRIES):
            try:
                with self._writer.begin() as conn:
                    return work(conn)
            except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
                if attempt + 1 < _RETRIES and errors.retryable(exc):
                    log.info("review database: transaction retried after a deadlock")
                    continue
                raise errors.from_db(exc, self._name) from None
            except UnicodeEncodeError:
                raise errors.not_unicode(self._name) from None
        raise AssertionError("unreachable")

    # -- cases ---------------------------------------------------------------------------------------------

    def add_case(self, record: CaseRecord) -> int:
        """Save a case (and its ``decision``, if set) in one transaction; returns and sets ``record.case_id``.

        Adding the same analysis again (same image_sha256, created_at, model_version) returns the existing
        id and leaves the stored case as it was.
        """
        record.validate().check_writable()

        def work(conn: sa.Connection) -> int:
            case_id, _ = self._insert_case(conn, record)
            if record.decision is not None:
                self._lock_case(conn, case_id)
                self._put_decision(conn, case_id, record.decision)
            return case_id

        case_id = self._transaction(work)
        record.case_id = case_id
        log.info("review case saved")
        return case_id

    def get_case(self, case_id: int) -> CaseRecord | None:
        """The case with its current decision, or ``None`` if there is no such case."""
        if not _is_case_id(case_id):
            return None
        with self._reading() as conn:
            return self._case_in(conn, case_id)

    def update_case_fields(self, case_id: int, **fields: Any) -> CaseRecord:
        """Change the case details (``CASE_DETAIL_FIELDS``) of a stored case in one transaction; returns the case.

        Only the fields given change (``None`` clears one), validated exactly as ``CaseRecord`` validates them.
        The details an edit replaces are kept (see ``case_details_history``) and ``updated_at`` is stamped;
        giving the stored values again changes nothing. The AI result can never be changed this way.
        Raises ``ReviewStoreError`` for an unknown case, a field that is not a case detail, or an invalid value.
        """
        not_details = sorted(set(fields) - set(CASE_DETAIL_FIELDS))
        if not_details:
            raise errors.ReviewStoreError(f"Only the case details ({', '.join(CASE_DETAIL_FIELDS)}) can be changed, "
                                          f"not {', '.join(not_details)}.")

        def work(conn: sa.Connection) -> tuple[CaseRecord, list[str]]:
            if not _is_case_id(case_id) or not self._lock_case(conn, case_id):
                raise errors.no_such_case(case_id)
            current = self._case_in(conn, case_id)
            updated = _with_details(current, fields)
            changed = [name for name in fields if getattr(updated, name) != getattr(current, name)]
            if changed:
                updated.updated_at = utc_now()
                _replace_details(conn, current, updated, changed)
            return updated, changed

        updated, changed = self._transaction(work)
        if changed:
            log.info("review case details updated")
        return updated

    def case_details_history(self, case_id: int) -> list[dict[str, Any]]:
        """The case details each edit replaced, oldest first: ``CASE_DETAIL_FIELDS`` plus ``replaced_at``.

        The current details are on the case itself (``get_case``); a case never edited has no history.
        """
        if not _is_case_id(case_id):
            return []
        table = case_details_history
        columns = [table.c[name] for name in (*CASE_DETAIL_FIELDS, "replaced_at")]
        with self._reading() as conn:
            rows = conn.execute(sa.select(*columns).where(table.c.case_id == case_id)
                                .order_by(table.c.history_id)).all()
        return [dict(row._mapping) for row in rows]

    def list_cases(self, session_first: str | None = None, *, session_id: str | None = None,
                   limit: int | None = None, with_thumbnails: bool = True) -> list[CaseRecord]:
        """Cases with their current decisions, newest first.

        ``session_first``: cases of this session come first (the reviewer's current work on top), then
        all others. ``session_id``: only that session's cases. ``limit``: at most that many.
        """
        query = CaseQuery(session_id=session_id, session_first=session_first)
        statement = self._select(query, with_thumbnails)
        if limit is not None:
            statement = statement.limit(max(int(limit), 0))
        with self._reading() as conn:
            rows = conn.execute(statement).all()
        return self._cases_from_rows(rows)

    def count_cases(self, session_id: str | None = None) -> int:
        """How many cases are stored (in one session if ``session_id`` is given)."""
        return self.count_matching(CaseQuery(session_id=session_id))

    # -- queries (CaseQuery) -------------------------------------------------------------------------------
    # WHERE / ORDER BY / LIMIT in SQL (queries.py); query.matches / query.sort_key are the reference meaning.

    def count_matching(self, query: CaseQuery) -> int:
        """How many cases pass ``query``'s filters."""
        # The join only when a filter reads the decision: a plain count stays an index scan.
        source = queries.joined() if query.decided is not None or query.words else cases
        statement = sa.select(sa.func.count()).select_from(source).where(*queries.where(query))
        with self._reading() as conn:
            return int(conn.execute(statement).scalar_one())

    def page_cases(self, query: CaseQuery, *, offset: int = 0, limit: int = 50) -> list[CaseRecord]:
        """One page of the cases that pass ``query``, in its order, without thumbnails."""
        offset, limit = max(int(offset), 0), max(int(limit), 0)
        if limit == 0:
            return []
        first = query.session_first
        if first is None or query.session_id is not None:  # with session_id set, every case is of one session
            return self._page(dataclasses.replace(query, session_first=None), offset, limit)
        # "This session first" as two queries, each in the plain order an index serves, rather than one ORDER BY
        # over a CASE expression, which sorts every matching case on every rerun of the page.
        mine = dataclasses.replace(query, session_id=first, session_first=None)
        n_mine = self.count_matching(mine)
        page = self._page(mine, offset, limit) if offset < n_mine else []
        if len(page) < limit:
            others = dataclasses.replace(query, session_first=None)
            page += self._page(others, max(offset - n_mine, 0), limit - len(page),
                               cases.c.session_id.is_distinct_from(first))
        return page

    def _page(self, query: CaseQuery, offset: int, limit: int, *extra: sa.ColumnElement) -> list[CaseRecord]:
        statement = self._select(query, with_thumbnails=False).where(*extra).offset(offset).limit(limit)
        with self._reading() as conn:
            rows = conn.execute(statement).all()
        return self._cases_from_rows(rows)

    def iter_cases(self, query: CaseQuery, *, chunk: int = 1000) -> Iterator[CaseRecord]:
        """Every case that passes ``query``, in its order, read ``chunk`` rows at a time (for exports)."""
        chunk = max(int(chunk), 1)
        keys = queries.sort_keys(query)
        n = len(_CASE_COLUMNS) + 1 + len(_DECISION_FIELDS)
        base = self._select(query, with_thumbnails=False, with_keys=True).limit(chunk)
        last: tuple | None = None
        while True:
            # Keyset pagination: each chunk continues after the last row read, so it costs the same wherever it is
            # (OFFSET would re-read every row before it), and no connection is held between chunks.
            statement = base if last is None else base.where(queries.after(keys, last))
            with self._reading() as conn:
                rows = conn.execute(statement).all()
            yield from self._cases_from_rows([row[:n] for row in rows])
            if len(rows) < chunk:
                return
            last = tuple(rows[-1][n:])

    def labels_matching(self, query: CaseQuery) -> list[str]:
        """The labels of the probabilities stored with the cases that pass ``query``, sorted (the CSV header)."""
        if self.backend == "postgresql":
            label = sa.func.json_object_keys(sa.cast(cases.c.probabilities, sa.JSON)).label("label")
            statement = sa.select(label).select_from(queries.joined()).where(*queries.where(query))
            statement = sa.select(statement.subquery().c.label).distinct()
        else:
            entries = sa.func.json_each(cases.c.probabilities).table_valued("key")
            statement = (sa.select(entries.c.key).select_from(queries.joined()).join(entries, sa.true())
                         .where(*queries.where(query)).distinct())
        with self._reading() as conn:
            return sorted(str(label) for label in conn.execute(statement).scalars())

    # -- prior reviews of one image ------------------------------------------------------------------------

    def find_cases(self, image_sha256: str, model_version: str | None = None) -> list[CaseRecord]:
        """The cases of the image ``image_sha256`` (only ``model_version``'s, if given), newest first, no thumbnails.

        Indexed: ``image_sha256`` leads the cases' unique key.
        """
        statement = (sa.select(*_case_columns(False)).select_from(queries.joined())
                     .where(cases.c.image_sha256 == str(image_sha256).lower())
                     .order_by(cases.c.created_at.desc(), cases.c.case_id.desc()))
        if model_version is not None:
            statement = statement.where(cases.c.model_version == str(model_version))
        with self._reading() as conn:
            rows = conn.execute(statement).all()
        return self._cases_from_rows(rows)

    # -- decisions -----------------------------------------------------------------------------------------

    def save_decision(self, case_id: int, decision: Decision) -> Decision:
        """Make ``decision`` the current one for the case; the previous one stays in the history.

        Saving the same content again is a no-op (the earlier ``decided_at`` is kept), so a rerun that
        re-saves an unchanged form does not grow the history. Returns the stored current decision.
        """
        decision.validate()

        def work(conn: sa.Connection) -> Decision:
            if not _is_case_id(case_id) or not self._lock_case(conn, case_id):
                raise errors.no_such_case(case_id)
            self._put_decision(conn, case_id, decision)
            return _current_decision(conn, case_id)

        current = self._transaction(work)
        log.info("review decision saved")
        return current

    def get_decision(self, case_id: int) -> Decision | None:
        """The current decision for the case, or ``None`` if it has not been reviewed."""
        if not _is_case_id(case_id):
            return None
        with self._reading() as conn:
            return _current_decision(conn, case_id)

    def decision_history(self, case_id: int) -> list[Decision]:
        """Every version ever saved for the case, in the order it was saved into this database (oldest first).

        The order is the store's own (``history_id``), never the ``decided_at`` a file claims. The current
        decision is included; it is the last entry unless an older import was kept in the history after it.
        """
        if not _is_case_id(case_id):
            return []
        columns = [decision_history.c[name] for name in _DECISION_FIELDS]
        with self._reading() as conn:
            rows = conn.execute(sa.select(*columns).where(decision_history.c.case_id == case_id)
                                .order_by(decision_history.c.history_id)).all()
        return [_decision_from_row(row) for row in rows]

    # -- bulk merge (CSV import) ---------------------------------------------------------------------------

    def merge_cases(self, records: Iterable[CaseRecord], *, chunk: int = MERGE_CHUNK) -> MergeCounts:
        """Merge records from elsewhere, ``chunk`` records per transaction, matching cases on
        (image_sha256, created_at, model_version).

        New cases are added with their decision. For a known case the stored case fields never change;
        its decision is replaced only by a different one that claims a later ``decided_at`` (the old one
        stays in the history). A different but older incoming decision is kept in the history only, so no
        reviewer's work is lost and a stale file never overrides a newer local decision. Every such case is
        listed in ``MergeCounts.changes``. Incoming ``case_id`` values are ignored (ids are local to a
        database). Callers vet the claimed timestamps first (``csvio`` refuses ones in the future).
        The merge is idempotent: if a chunk fails, the chunks before it stay merged and merging the same records
        again finishes the job without duplicating anything.
        """
        total = MergeCounts(0, 0, 0, 0)
        batch: list[CaseRecord] = []
        for record in records:
            batch.append(record.validate().check_writable())
            if len(batch) >= max(int(chunk), 1):
                total += self._merge_chunk(batch)
                batch = []
        if batch:
            total += self._merge_chunk(batch)
        log.info("review merge: %d added, %d updated, %d skipped, %d kept in history",
                 total.added, total.updated, total.skipped, total.kept_in_history)
        return total

    def _merge_chunk(self, records: list[CaseRecord]) -> MergeCounts:
        def work(conn: sa.Connection) -> MergeCounts:
            # New cases (the bulk of any import) go in as multi-row INSERTs, their decisions and history too;
            # only cases already stored take the row-by-row path that compares decisions.
            new_ids = self._insert_new_cases(conn, records)
            fresh: list[tuple[int, CaseRecord]] = []
            rest: list[CaseRecord] = []
            for record in records:
                # The first record of a new key is that new case; a repeat later in the chunk is then an existing
                # case (pop), compared with the first one's decision below.
                case_id = new_ids.pop(record.key, None)
                if case_id is None:
                    rest.append(record)
                else:
                    fresh.append((case_id, record))
            _insert_new_decisions(conn, [(case_id, r.decision) for case_id, r in fresh if r.decision is not None])
            added, updated, skipped, kept = len(fresh), 0, 0, 0
            changes: list[DecisionChange] = []
            for record in rest:
                case_id = self._case_id_of(conn, record)
                file_name = self._lock_case(conn, case_id)[1]
                incoming = record.decision
                current = _current_decision(conn, case_id)
                if incoming is None or incoming.same_content(current):
                    skipped += 1
                elif current is None or incoming.decided_at > current.decided_at:
                    self._put_decision(conn, case_id, incoming)
                    updated += 1
                    changes.append(DecisionChange(case_id, file_name, current, incoming, became_current=True))
                else:
                    if _append_history(conn, case_id, incoming):
                        kept += 1
                        changes.append(DecisionChange(case_id, file_name, current, incoming, became_current=False))
                    skipped += 1
            return MergeCounts(added, updated, skipped, kept, tuple(changes))

        return self._transaction(work)

    def _insert_new_cases(self, conn: sa.Connection, records: list[CaseRecord]) -> dict[tuple, int]:
        """Insert the cases not stored yet (executemany: multi-row INSERTs); the new cases' ids by key."""
        statement = (self._insert(cases).on_conflict_do_nothing(index_elements=list(CASE_KEY))
                     .returning(cases.c.case_id, *(cases.c[name] for name in CASE_KEY)))
        # A row whose key is already stored (or repeats one earlier in the chunk) is skipped and returns nothing.
        rows = conn.execute(statement, [_case_values(record) for record in records]).all()
        return {tuple(row[1:]): int(row[0]) for row in rows}

    def _case_id_of(self, conn: sa.Connection, record: CaseRecord) -> int:
        return int(conn.execute(sa.select(cases.c.case_id).where(
            *(cases.c[name] == value for name, value in zip(CASE_KEY, record.key, strict=True)))).scalar_one())

    # -- CSV -----------------------------------------------------------------------------------------------

    def export_csv(self, dest: str | os.PathLike[str] | BinaryIO | None = None, *,
                   session_id: str | None = None) -> bytes:
        """All cases (or one session's) as CSV bytes (see ``csvio``); also written to ``dest`` if given."""
        return csvio.export_csv(self, dest, session_id=session_id)

    def iter_export_csv(self, query: CaseQuery | None = None, *, chunk: int = 1000) -> Iterator[bytes]:
        """The cases that pass ``query`` (default: all, oldest first) as CSV bytes, ``chunk`` rows at a time."""
        return csvio.iter_export_csv(self, query, chunk=chunk)

    def import_csv(self, source: Any, *, max_rows: int = csvio.MAX_IMPORT_ROWS) -> csvio.ImportResult:
        """Merge a CSV export (bytes, a path, or a binary file such as Streamlit's upload); see ``csvio``."""
        return csvio.import_csv(self, source, max_rows=max_rows)

    # -- SQL helpers (caller holds the transaction) --------------------------------------------------------

    def _select(self, query: CaseQuery, with_thumbnails: bool, *, with_keys: bool = False) -> sa.Select:
        # with_keys: the sort values follow the case columns, for the keyset of iter_cases.
        keys = queries.sort_keys(query)
        extra = [key.expr.label(f"sort_{i}") for i, key in enumerate(keys)] if with_keys else []
        return (sa.select(*_case_columns(with_thumbnails), *extra).select_from(queries.joined())
                .where(*queries.where(query)).order_by(*(key.clause for key in keys)))

    def _case_in(self, conn: sa.Connection, case_id: int) -> CaseRecord | None:
        row = conn.execute(sa.select(*_case_columns(True)).select_from(queries.joined())
                           .where(cases.c.case_id == case_id)).first()
        return None if row is None else self._cases_from_rows([row])[0]

    def _cases_from_rows(self, rows: list) -> list[CaseRecord]:
        try:
            return [_case_from_row(tuple(row)) for row in rows]
        except (ValueError, TypeError):  # SQLite has no checksums: a damaged row reads back as invalid values
            log.warning("review database: a stored case could not be read")
            raise errors.corrupt(self._name) from None

    def _lock_case(self, conn: sa.Connection, case_id: int) -> tuple[int, str | None] | None:
        # FOR UPDATE: two servers saving decisions on one case take turns (PostgreSQL). SQLite has no row locks
        # and needs none: BEGIN IMMEDIATE already holds the whole file's write lock.
        row = conn.execute(sa.select(cases.c.case_id, cases.c.file_name).where(cases.c.case_id == case_id)
                           .with_for_update()).first()
        return None if row is None else (int(row[0]), row[1])

    def _insert_case(self, conn: sa.Connection, record: CaseRecord) -> tuple[int, bool]:
        statement = (self._insert(cases).values(_case_values(record))
                     .on_conflict_do_nothing(index_elements=list(CASE_KEY)).returning(cases.c.case_id))
        row = conn.execute(statement).first()
        if row is not None:
            return int(row[0]), True
        return self._case_id_of(conn, record), False

    def _put_decision(self, conn: sa.Connection, case_id: int, decision: Decision) -> None:
        current = _current_decision(conn, case_id)
        if decision.same_content(current):
            return
        if current is not None:
            # Normally already there (every save is appended); this keeps the guarantee for older files.
            _append_history(conn, case_id, current)
        values = _decision_values(decision)
        statement = self._insert(decisions).values(case_id=case_id, **values)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[decisions.c.case_id], set_={name: statement.excluded[name] for name in _DECISION_FIELDS}))
        _append_history(conn, case_id, decision)


def _dispose(*engines: sa.Engine) -> None:
    for each in dict.fromkeys(engines):
        each.dispose()


def _case_columns(with_thumbnail: bool) -> list[sa.ColumnElement]:
    # Thumbnails are the only large column; lists that do not show them should not read them.
    columns = [cases.c[name] if name != "thumbnail" or with_thumbnail else sa.null().label("thumbnail")
               for name in _CASE_COLUMNS]
    return [*columns, decisions.c.case_id.label("decision_case_id"), *(decisions.c[f] for f in _DECISION_FIELDS)]


def _replace_details(conn: sa.Connection, current: CaseRecord, updated: CaseRecord, changed: list[str]) -> None:
    # The whole previous set, not just the changed fields: each history row reads on its own.
    conn.execute(sa.insert(case_details_history).values(
        case_id=current.case_id, replaced_at=updated.updated_at,
        **{name: getattr(current, name) for name in CASE_DETAIL_FIELDS}))
    # Column names come from CASE_DETAIL_FIELDS (checked by the caller), never from user input.
    conn.execute(sa.update(cases).where(cases.c.case_id == current.case_id).values(
        updated_at=updated.updated_at, **{name: getattr(updated, name) for name in changed}))


def _append_history(conn: sa.Connection, case_id: int, decision: Decision) -> int:
    values = _decision_values(decision)
    # IS NOT DISTINCT FROM (SQLite: IS), not =: it also matches NULL with NULL.
    exists = conn.execute(sa.select(sa.literal(1)).where(
        decision_history.c.case_id == case_id,
        *(decision_history.c[name].is_not_distinct_from(value) for name, value in values.items()))).first()
    if exists:
        return 0
    conn.execute(sa.insert(decision_history).values(case_id=case_id, saved_at=utc_now(), **values))
    return 1


def _case_values(record: CaseRecord) -> dict[str, Any]:
    return {name: json.dumps(record.probabilities, ensure_ascii=False, allow_nan=False)
            if name == "probabilities" else getattr(record, name) for name in _CASE_COLUMNS[1:]}


def _insert_new_decisions(conn: sa.Connection, decided: list[tuple[int, Decision]]) -> None:
    """The decisions of freshly inserted cases, current and in the history (there is nothing to compare with)."""
    if not decided:
        return
    rows = [{"case_id": case_id, **_decision_values(decision)} for case_id, decision in decided]
    conn.execute(sa.insert(decisions), rows)
    saved_at = utc_now()
    conn.execute(sa.insert(decision_history), [{**row, "saved_at": saved_at} for row in rows])


def _decision_values(decision: Decision) -> dict[str, Any]:
    return {name: getattr(decision, name) for name in _DECISION_FIELDS}


def _decision_from_row(row: Iterable[Any]) -> Decision:
    fields = dict(zip(_DECISION_FIELDS, row, strict=True))
    agrees = fields["reviewer_agrees"]
    fields["reviewer_agrees"] = None if agrees is None else bool(agrees)
    fields["note"] = fields["note"] or ""
    return Decision(**fields)


def _is_case_id(value: Any) -> bool:
    # bool is an int subclass, and SQLite would happily match True to case 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _with_details(current: CaseRecord, fields: dict[str, Any]) -> CaseRecord:
    try:
        # replace() re-runs CaseRecord's own validation, so the rules live in one place.
        return dataclasses.replace(current, **fields).check_writable(fields)
    except InvalidRecord as exc:  # the message names the field, never the value
        raise errors.ReviewStoreError(f"The case details were not saved: {exc}; correct it and save again.") from None


def _current_decision(conn: sa.Connection, case_id: int) -> Decision | None:
    row = conn.execute(sa.select(*(decisions.c[name] for name in _DECISION_FIELDS))
                       .where(decisions.c.case_id == case_id)).first()
    return None if row is None else _decision_from_row(row)


def _case_from_row(row: tuple[Any, ...]) -> CaseRecord:
    n = len(_CASE_COLUMNS)
    fields = dict(zip(_CASE_COLUMNS, row[:n], strict=True))
    fields["probabilities"] = json.loads(fields["probabilities"] or "{}")
    for name in _CASE_YES_NO:  # older SQLite files hold 0 / 1
        fields[name] = None if fields[name] is None else bool(fields[name])
    if fields["thumbnail"] is not None:
        fields["thumbnail"] = bytes(fields["thumbnail"])
    decision = None if row[n] is None else _decision_from_row(row[n + 1:])
    return CaseRecord(**fields, decision=decision)
