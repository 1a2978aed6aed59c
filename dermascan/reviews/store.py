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
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from ..config import DEFAULT_REVIEW_DB as DEFAULT_DB_PATH
from . import csvio, errors, schema
from .columns import CASE, CASE_NAMES, DECISION_NAMES, names
from .errors import DB_ENV_VAR
from .query import CaseQuery, matches, sort_key
from .records import CASE_DETAIL_FIELDS, CaseRecord, Decision, DecisionChange, InvalidRecord, utc_now

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT = 5.0

_CASE_COLUMNS = CASE_NAMES
_CASE_YES_NO = names(CASE, kind="yes_no")
_DECISION_FIELDS = DECISION_NAMES
_DECISION_PLACEHOLDERS = ", ".join("?" * len(_DECISION_FIELDS))


class MergeCounts(NamedTuple):
    """What ``ReviewStore.merge_cases`` did with the incoming records."""

    added: int
    updated: int
    skipped: int
    kept_in_history: int
    changes: tuple[DecisionChange, ...] = ()
    """Every stored case whose decisions changed (``updated`` + ``kept_in_history`` of them), in file order."""


def default_db_path() -> Path:
    """``$DERMASCAN_REVIEW_DB`` if set, else ``.dermascan/reviews.sqlite3`` under the current directory."""
    configured = os.environ.get(DB_ENV_VAR, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_DB_PATH


class ReviewStore:
    """Reviewed cases and decisions in one SQLite file; safe to share between threads (one per process is enough).

    ``path``: the database file (default: ``default_db_path()``). ``busy_timeout``: seconds to wait for
    another writer before giving up with ``ReviewStoreError``. ``read_only``: open without write access
    (every write then fails with ``ReviewStoreError``). Every failure is a ``ReviewStoreError``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 read_only: bool = False):
        # Absolute now, so a later chdir (some tools do) cannot split one store across two files.
        self.path = Path(path).expanduser().absolute() if path is not None else default_db_path().absolute()
        self.read_only = read_only
        self.busy_timeout = float(busy_timeout)
        self._name = self.path.name
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = self._open()

    # -- opening -------------------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self._check_before_writing()
        if not self.read_only:
            try:
                self._create_private_file()
            except OSError as exc:
                raise errors.from_os(exc, self._name) from None
        target = f"file:{urllib.parse.quote(str(self.path))}?mode=ro" if self.read_only else str(self.path)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see _write).
            conn = sqlite3.connect(target, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False, uri=self.read_only)
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, self._name) from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            # A read first: a file that is not a database fails here, before anything could be written to it.
            conn.execute("PRAGMA schema_version").fetchone()
            if self.read_only:
                if schema.check_ours(conn, self._name) < schema.SCHEMA_VERSION:
                    raise errors.needs_upgrade(self._name)
            else:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute("PRAGMA synchronous = FULL")
                schema.migrate(conn, self._name)
        except sqlite3.Error as exc:
            conn.close()
            raise errors.from_sqlite(exc, self._name) from None
        except BaseException:
            conn.close()
            raise
        log.info("review database opened (schema %d)", schema.SCHEMA_VERSION)
        return conn

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
        """Close the connection (idempotent). Later calls raise ``ReviewStoreError``."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReviewStore({self._name!r}, read_only={self.read_only})"

    # -- transactions --------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise errors.closed()
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise errors.from_sqlite(exc, self._name) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Not `with conn:`: Python's implicit transaction only starts at the first INSERT/UPDATE, so a
        # read-check-write would not be atomic, and a deferred transaction that must upgrade its lock
        # fails at once with SQLITE_BUSY instead of waiting. BEGIN IMMEDIATE takes the write lock up
        # front (waiting up to busy_timeout), and everything in the block commits or rolls back together.
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself (disk full)
                        conn.execute("ROLLBACK")
                raise

    # -- cases ---------------------------------------------------------------------------------------------

    def add_case(self, record: CaseRecord) -> int:
        """Save a case (and its ``decision``, if set) in one transaction; returns and sets ``record.case_id``.

        Adding the same analysis again (same image_sha256, created_at, model_version) returns the existing
        id and leaves the stored case as it was.
        """
        record.validate()
        with self._write() as conn:
            case_id, _ = self._insert_case(conn, record)
            if record.decision is not None:
                self._put_decision(conn, case_id, record.decision)
        record.case_id = case_id
        log.info("review case saved")
        return case_id

    def get_case(self, case_id: int) -> CaseRecord | None:
        """The case with its current decision, or ``None`` if there is no such case."""
        with self._read() as conn:
            return _case_in(conn, case_id)

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
        with self._write() as conn:
            current = _case_in(conn, case_id) if _is_case_id(case_id) else None
            if current is None:
                raise errors.no_such_case(case_id)
            updated = _with_details(current, fields)
            changed = [name for name in fields if getattr(updated, name) != getattr(current, name)]
            if changed:
                updated.updated_at = utc_now()
                self._replace_details(conn, current, updated, changed)
        if changed:
            log.info("review case details updated")
        return updated

    def case_details_history(self, case_id: int) -> list[dict[str, Any]]:
        """The case details each edit replaced, oldest first: ``CASE_DETAIL_FIELDS`` plus ``replaced_at``.

        The current details are on the case itself (``get_case``); a case never edited has no history.
        """
        names = (*CASE_DETAIL_FIELDS, "replaced_at")
        with self._read() as conn:
            rows = conn.execute(f"SELECT {', '.join(names)} FROM case_details_history WHERE case_id = ? "
                                "ORDER BY history_id", (case_id,)).fetchall()
        return [dict(zip(names, row, strict=True)) for row in rows]

    def list_cases(self, session_first: str | None = None, *, session_id: str | None = None,
                   limit: int | None = None, with_thumbnails: bool = True) -> list[CaseRecord]:
        """Cases with their current decisions, newest first.

        ``session_first``: cases of this session come first (the reviewer's current work on top), then
        all others. ``session_id``: only that session's cases. ``limit``: at most that many.
        """
        sql = _select_cases(with_thumbnails)
        params: list[Any] = []
        if session_id is not None:
            sql += " WHERE c.session_id = ?"
            params.append(session_id)
        # NULL = anything is NULL, so with no session_first (or a case without session) the CASE gives 1.
        sql += " ORDER BY CASE WHEN c.session_id = ? THEN 0 ELSE 1 END, c.created_at DESC, c.case_id DESC"
        params.append(session_first)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(int(limit), 0))
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        try:
            return [_case_from_row(row) for row in rows]
        except (ValueError, TypeError):  # SQLite has no checksums: a damaged row reads back as invalid values
            log.warning("review database: a stored case could not be read")
            raise errors.corrupt(self._name) from None

    def count_cases(self, session_id: str | None = None) -> int:
        """How many cases are stored (in one session if ``session_id`` is given)."""
        with self._read() as conn:
            if session_id is None:
                return int(conn.execute("SELECT count(*) FROM cases").fetchone()[0])
            return int(conn.execute("SELECT count(*) FROM cases WHERE session_id = ?", (session_id,)).fetchone()[0])

    # -- queries (CaseQuery) -------------------------------------------------------------------------------
    # PROVISIONAL: these three read every case and filter in Python (query.matches / query.sort_key, the
    # reference meaning). The SQL versions (WHERE / ORDER BY / LIMIT, indexes) replace them; the signatures stay.

    def count_matching(self, query: CaseQuery) -> int:
        """How many cases pass ``query``'s filters."""
        return sum(1 for case in self.list_cases(with_thumbnails=False) if matches(query, case))

    def page_cases(self, query: CaseQuery, *, offset: int = 0, limit: int = 50) -> list[CaseRecord]:
        """One page of the cases that pass ``query``, in its order, without thumbnails."""
        kept = sorted((c for c in self.list_cases(with_thumbnails=False) if matches(query, c)),
                      key=lambda case: sort_key(query, case))
        return kept[max(int(offset), 0):max(int(offset), 0) + max(int(limit), 0)]

    def iter_cases(self, query: CaseQuery, *, chunk: int = 1000) -> Iterator[CaseRecord]:
        """Every case that passes ``query``, in its order, read ``chunk`` rows at a time (for exports)."""
        offset = 0
        while page := self.page_cases(query, offset=offset, limit=chunk):
            yield from page
            offset += len(page)

    # -- prior reviews of one image ------------------------------------------------------------------------
    # PROVISIONAL, like the query methods above: plain SQL on this connection; the SQLAlchemy port replaces the
    # body, the signature stays. (image_sha256 leads the cases' unique index, so the lookup is indexed.)

    def find_cases(self, image_sha256: str, model_version: str | None = None) -> list[CaseRecord]:
        """The cases of the image ``image_sha256`` (only ``model_version``'s, if given), newest first, no thumbnails."""
        sql = f"{_select_cases(False)} WHERE c.image_sha256 = ?"
        params: list[Any] = [str(image_sha256)]
        if model_version is not None:
            sql += " AND c.model_version = ?"
            params.append(str(model_version))
        sql += " ORDER BY c.created_at DESC, c.case_id DESC"
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        try:
            return [_case_from_row(row) for row in rows]
        except (ValueError, TypeError):
            log.warning("review database: a stored case could not be read")
            raise errors.corrupt(self._name) from None

    # -- decisions -----------------------------------------------------------------------------------------

    def save_decision(self, case_id: int, decision: Decision) -> Decision:
        """Make ``decision`` the current one for the case; the previous one stays in the history.

        Saving the same content again is a no-op (the earlier ``decided_at`` is kept), so a rerun that
        re-saves an unchanged form does not grow the history. Returns the stored current decision.
        """
        decision.validate()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
                raise errors.no_such_case(case_id)
            self._put_decision(conn, case_id, decision)
            current = _current_decision(conn, case_id)
        log.info("review decision saved")
        return current

    def get_decision(self, case_id: int) -> Decision | None:
        """The current decision for the case, or ``None`` if it has not been reviewed."""
        with self._read() as conn:
            return _current_decision(conn, case_id)

    def decision_history(self, case_id: int) -> list[Decision]:
        """Every version ever saved for the case, in the order it was saved into this database (oldest first).

        The order is the store's own (``history_id``), never the ``decided_at`` a file claims. The current
        decision is included; it is the last entry unless an older import was kept in the history after it.
        """
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_DECISION_FIELDS)} FROM decision_history WHERE case_id = ? "
                "ORDER BY history_id", (case_id,)).fetchall()
        return [_decision_from_row(row) for row in rows]

    # -- bulk merge (CSV import) ---------------------------------------------------------------------------

    def merge_cases(self, records: Iterable[CaseRecord]) -> MergeCounts:
        """Merge records from elsewhere in one transaction, matching cases on (image_sha256, created_at, model_version).

        New cases are added with their decision. For a known case the stored case fields never change;
        its decision is replaced only by a different one that claims a later ``decided_at`` (the old one
        stays in the history). A different but older incoming decision is kept in the history only, so no
        reviewer's work is lost and a stale file never overrides a newer local decision. Every such case is
        listed in ``MergeCounts.changes``. Incoming ``case_id`` values are ignored (ids are local to a
        database). Callers vet the claimed timestamps first (``csvio`` refuses ones in the future).
        """
        added = updated = skipped = kept = 0
        changes: list[DecisionChange] = []
        with self._write() as conn:
            for record in records:
                record.validate()
                found = conn.execute(
                    "SELECT case_id, file_name FROM cases WHERE image_sha256 = ? AND created_at = ? "
                    "AND model_version = ?", record.key).fetchone()
                if found is None:
                    case_id, _ = self._insert_case(conn, record)
                    if record.decision is not None:
                        self._put_decision(conn, case_id, record.decision)
                    added += 1
                    continue
                (case_id, file_name), incoming = found, record.decision
                current = _current_decision(conn, case_id)
                if incoming is None or incoming.same_content(current):
                    skipped += 1
                elif current is None or incoming.decided_at > current.decided_at:
                    self._put_decision(conn, case_id, incoming)
                    updated += 1
                    changes.append(DecisionChange(case_id, file_name, current, incoming, became_current=True))
                else:
                    if self._append_history(conn, case_id, incoming):
                        kept += 1
                        changes.append(DecisionChange(case_id, file_name, current, incoming, became_current=False))
                    skipped += 1
        log.info("review merge: %d added, %d updated, %d skipped, %d kept in history", added, updated, skipped, kept)
        return MergeCounts(added, updated, skipped, kept, tuple(changes))

    # -- CSV -----------------------------------------------------------------------------------------------

    def export_csv(self, dest: str | os.PathLike[str] | BinaryIO | None = None, *,
                   session_id: str | None = None) -> bytes:
        """All cases (or one session's) as CSV bytes (see ``csvio``); also written to ``dest`` if given."""
        return csvio.export_csv(self, dest, session_id=session_id)

    def import_csv(self, source: Any, *, max_rows: int = csvio.MAX_IMPORT_ROWS) -> csvio.ImportResult:
        """Merge a CSV export (bytes, a path, or a binary file such as Streamlit's upload); see ``csvio``."""
        return csvio.import_csv(self, source, max_rows=max_rows)

    # -- SQL helpers (caller holds the lock and the transaction) -------------------------------------------

    def _insert_case(self, conn: sqlite3.Connection, record: CaseRecord) -> tuple[int, bool]:
        names = _CASE_COLUMNS[1:]
        values = [json.dumps(record.probabilities, ensure_ascii=False, allow_nan=False) if name == "probabilities"
                  else _sql_value(getattr(record, name)) for name in names]
        cursor = conn.execute(
            f"INSERT INTO cases ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            "ON CONFLICT (image_sha256, created_at, model_version) DO NOTHING", values)
        if cursor.rowcount == 1:
            return int(cursor.lastrowid), True
        row = conn.execute(
            "SELECT case_id FROM cases WHERE image_sha256 = ? AND created_at = ? AND model_version = ?",
            record.key).fetchone()
        return int(row[0]), False

    def _replace_details(self, conn: sqlite3.Connection, current: CaseRecord, updated: CaseRecord,
                         changed: list[str]) -> None:
        # The whole previous set, not just the changed fields: each history row reads on its own.
        conn.execute(
            f"INSERT INTO case_details_history (case_id, {', '.join(CASE_DETAIL_FIELDS)}, replaced_at) "
            f"VALUES (?, {', '.join('?' * len(CASE_DETAIL_FIELDS))}, ?)",
            (current.case_id, *(getattr(current, name) for name in CASE_DETAIL_FIELDS), updated.updated_at))
        # Column names come from CASE_DETAIL_FIELDS (checked by the caller), never from user input.
        conn.execute(
            f"UPDATE cases SET {', '.join(f'{name} = ?' for name in changed)}, updated_at = ? WHERE case_id = ?",
            (*(getattr(updated, name) for name in changed), updated.updated_at, current.case_id))

    def _put_decision(self, conn: sqlite3.Connection, case_id: int, decision: Decision) -> None:
        current = _current_decision(conn, case_id)
        if decision.same_content(current):
            return
        if current is not None:
            # Normally already there (every save is appended); this keeps the guarantee for older files.
            self._append_history(conn, case_id, current)
        values = _decision_values(decision)
        conn.execute(
            f"INSERT INTO decisions (case_id, {', '.join(_DECISION_FIELDS)}) VALUES (?, {_DECISION_PLACEHOLDERS}) "
            "ON CONFLICT (case_id) DO UPDATE SET "
            + ", ".join(f"{name} = excluded.{name}" for name in _DECISION_FIELDS),
            (case_id, *values))
        self._append_history(conn, case_id, decision)

    def _append_history(self, conn: sqlite3.Connection, case_id: int, decision: Decision) -> int:
        values = _decision_values(decision)
        # IS, not =: it also matches NULL with NULL (an empty diagnosis equals an empty diagnosis).
        exists = conn.execute(
            "SELECT 1 FROM decision_history WHERE case_id = ? AND "
            + " AND ".join(f"{name} IS ?" for name in _DECISION_FIELDS), (case_id, *values)).fetchone()
        if exists:
            return 0
        conn.execute(
            f"INSERT INTO decision_history (case_id, {', '.join(_DECISION_FIELDS)}, saved_at) "
            f"VALUES (?, {_DECISION_PLACEHOLDERS}, ?)", (case_id, *values, utc_now()))
        return 1


def _select_cases(with_thumbnail: bool) -> str:
    # Thumbnails are the only large column; lists that do not show them should not read them.
    columns = ", ".join("c.thumbnail" if c == "thumbnail" and with_thumbnail else "NULL" if c == "thumbnail"
                        else f"c.{c}" for c in _CASE_COLUMNS)
    decision = ", ".join(f"d.{f}" for f in _DECISION_FIELDS)
    return f"SELECT {columns}, d.case_id, {decision} FROM cases c LEFT JOIN decisions d ON d.case_id = c.case_id"


def _sql_value(value: Any) -> Any:
    # SQLite has no booleans: yes / no fields are stored as 0 / 1.
    return int(value) if isinstance(value, bool) else value


def _decision_values(decision: Decision) -> tuple[Any, ...]:
    return tuple(_sql_value(getattr(decision, name)) for name in _DECISION_FIELDS)


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
        return dataclasses.replace(current, **fields)
    except InvalidRecord as exc:  # the message names the field, never the value
        raise errors.ReviewStoreError(f"The case details were not saved: {exc}; correct it and save again.") from None


def _case_in(conn: sqlite3.Connection, case_id: int) -> CaseRecord | None:
    row = conn.execute(f"{_select_cases(True)} WHERE c.case_id = ?", (case_id,)).fetchone()
    return None if row is None else _case_from_row(row)


def _current_decision(conn: sqlite3.Connection, case_id: int) -> Decision | None:
    row = conn.execute(f"SELECT {', '.join(_DECISION_FIELDS)} FROM decisions WHERE case_id = ?",
                       (case_id,)).fetchone()
    return None if row is None else _decision_from_row(row)


def _case_from_row(row: tuple[Any, ...]) -> CaseRecord:
    n = len(_CASE_COLUMNS)
    fields = dict(zip(_CASE_COLUMNS, row[:n], strict=True))
    fields["probabilities"] = json.loads(fields["probabilities"] or "{}")
    for name in _CASE_YES_NO:  # SQLite has no booleans: 0 / 1 come back as integers
        fields[name] = None if fields[name] is None else bool(fields[name])
    decision = None if row[n] is None else _decision_from_row(row[n + 1:])
    return CaseRecord(**fields, decision=decision)
