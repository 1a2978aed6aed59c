"""``python -m dermascan reviews``: the review log's administration (stats, export, import, backup, migrate).

The logic is here, UI-free; ``dermascan.cli`` only hooks the subcommand in (``add_parser``, ``run``). Every
failure is a ``DermascanError`` with a one-line message, which the CLI prints as ``error: ...`` (exit code 2).
A filtered export is read through ``ReviewStore.iter_cases`` a chunk at a time, so the Review log page's download
and this command write the same file for the same filter, whatever the size of the log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from ..config import REVIEW_DB_ENV
from ..errors import DermascanError
from ..render.text import display_text
from . import csvio, errors, schema
from .query import NO_BAND, CaseQuery
from .store import ReviewStore, default_db_path

EXPORT_CHUNK = 1000  # cases read per query while exporting: bounded memory at any log size
BANDS = ("high", "medium", "low", "indeterminate")
NO_BAND_NAME = "none"  # how NO_BAND is spelled on a command line and in file names
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


# -- where the database is ----------------------------------------------------------------------------------

def configured_db(db: str | None = None) -> str | None:
    """``db``, else ``$DERMASCAN_REVIEW_DB``, else None (the store's embedded default file)."""
    return (db or "").strip() or os.environ.get(REVIEW_DB_ENV, "").strip() or None


def is_postgres(db: str | None) -> bool:
    """True when ``db`` is a PostgreSQL URL (``postgresql://``, ``postgres://``, ``postgresql+psycopg://``)."""
    return bool(db) and urllib.parse.urlsplit(db).scheme.lower() in _POSTGRES_SCHEMES


def sqlite_path(db: str | None) -> Path:
    """The SQLite file ``db`` names (a path or ``sqlite:///path``; None: the default file)."""
    if db is None:
        return default_db_path()
    if db.lower().startswith("sqlite:///"):
        return Path(urllib.parse.unquote(db[len("sqlite:///"):])).expanduser()
    if "://" in db:
        raise DermascanError("The review database must be a file path, sqlite:///PATH or postgresql://...; "
                             f"{display_url(db)} is neither.")
    return Path(db).expanduser()


def display_url(db: str) -> str:
    """``db`` without its password (safe to print or log)."""
    parts = urllib.parse.urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def open_store(db: str | None = None) -> ReviewStore:
    """The store for ``db`` (see ``configured_db``); opening it runs the migrations an older file needs."""
    db = configured_db(db)
    if is_postgres(db):
        return ReviewStore(db)  # the store speaks database URLs itself
    return ReviewStore(sqlite_path(db))


# -- the export -----------------------------------------------------------------------------------------------

def export_query(query: CaseQuery) -> CaseQuery:
    """``query``'s filters in the file order of every export: oldest first, this session not first.

    The view's order is for reading; a file in one fixed order lets two exports of the same filter be compared
    line by line, and an unfiltered one equals ``ReviewStore.export_csv``.
    """
    return replace(query, sort="oldest", session_first=None)


def export_chunks(store: ReviewStore, query: CaseQuery, *, chunk: int = EXPORT_CHUNK,
                  tally: dict[str, int] | None = None) -> Iterator[bytes]:
    """The cases passing ``query`` as a review-log CSV export (``csvio.iter_export_csv``), in byte chunks.

    ``tally``, if given, has ``"cases"`` set to the number of cases written so far.
    """
    return csvio.iter_export_csv(store, export_query(query), chunk=chunk, tally=tally)


def export_bytes(store: ReviewStore, query: CaseQuery) -> bytes:
    """The whole export of ``query`` as bytes (for a download button)."""
    return b"".join(export_chunks(store, query))


def export_file_name(query: CaseQuery, day: date | None = None) -> str:
    """``dermascan-review-log_<filter>_<YYYY-MM-DD>.csv``: the file name says which cases it holds."""
    return f"dermascan-review-log_{query.describe()}_{day or date.today():%Y-%m-%d}.csv"


def write_export(store: ReviewStore, query: CaseQuery, out: Path) -> int:
    """Write the export of ``query`` to ``out`` (0600, through a temporary file); returns the number of cases."""
    out = Path(out)
    if out.is_dir():
        raise DermascanError(f"{out.name} is a folder; give a file name for the export.")
    tally: dict[str, int] = {}
    try:
        csvio.write_private(out, export_chunks(store, query, tally=tally))
    except OSError:
        raise DermascanError(f"Cannot write {out.name}: check that its folder exists and is writable, and the "
                             "disk has space.") from None
    return tally["cases"]


# -- the other subcommands ---------------------------------------------------------------------------------

def stats(store: ReviewStore) -> dict[str, Any]:
    """Counts by triage band, decided / undecided, and by model (name and version)."""
    total = store.count_cases()
    bands = {band: store.count_matching(CaseQuery(bands=(band,))) for band in BANDS}
    bands[NO_BAND_NAME] = store.count_matching(CaseQuery(bands=(NO_BAND,)))
    other = total - sum(bands.values())
    if other:
        bands["other"] = other  # an imported file may carry bands of another release
    decided = store.count_matching(CaseQuery(decided=True))
    models = Counter((case.model_name or "—", case.model_version or "—")
                     for case in store.iter_cases(CaseQuery(sort="oldest"), chunk=5000))
    return {"cases": total, "bands": bands, "decided": decided, "undecided": total - decided,
            "models": [{"name": name, "version": version, "cases": n} for (name, version), n in models.most_common()]}


def format_stats(report: dict[str, Any]) -> str:
    """``stats`` as a few readable lines."""
    lines = [f"{report['cases']:,} case(s): {report['decided']:,} decided, {report['undecided']:,} undecided",
             "triage: " + ", ".join(f"{band} {n:,}" for band, n in report["bands"].items())]
    lines += [f"model {m['name']} {m['version']}: {m['cases']:,}" for m in report["models"]]
    return "\n".join(lines)


def backup(db: str | None, out: Path) -> Path:
    """Copy the SQLite database into ``out`` with SQLite's online backup (safe while the app writes).

    ``out`` must not exist (a backup never overwrites); it is created 0600. A PostgreSQL URL is refused with
    the ``pg_dump`` command to use instead (its password left out).
    """
    db = configured_db(db)
    if is_postgres(db):
        raise DermascanError(f"This database is on PostgreSQL: back it up with pg_dump "
                             f"(pg_dump --format=custom --file=OUT '{display_url(db)}').")
    source, out = sqlite_path(db), Path(out)
    if not source.is_file():
        raise DermascanError(f"There is no review database {source.name} to back up.")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private from the first byte
    except FileExistsError:
        raise DermascanError(f"{out.name} already exists; a backup never overwrites a file.") from None
    except OSError:
        raise DermascanError(f"Cannot create {out.name}: its folder does not exist or is not writable.") from None
    os.close(fd)
    try:
        # Opening the store first runs its checks (a foreign or newer file is refused) and any migration.
        open_store(str(source)).close()
        src = sqlite3.connect(f"file:{urllib.parse.quote(str(source.absolute()))}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(out)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except DermascanError:
        out.unlink(missing_ok=True)
        raise
    except sqlite3.Error as exc:
        out.unlink(missing_ok=True)
        raise DermascanError(f"The backup of {source.name} failed ({type(exc).__name__}); "
                             "nothing was written.") from None
    return out


def import_file(store: ReviewStore, path: Path) -> csvio.ImportResult:
    """Merge a Review log export into the store (the page's rules: ``ReviewStore.import_csv``)."""
    return store.import_csv(Path(path))


# -- the command line --------------------------------------------------------------------------------------

def add_parser(sub: Any) -> None:
    """Add ``reviews`` and its subcommands to the CLI's subparsers ``sub``."""
    p = sub.add_parser("reviews", help="administer the review log: stats, export, import, backup, migrate")
    p.add_argument("--db", help=f"a file path, sqlite:///PATH or postgresql://... (default: ${REVIEW_DB_ENV}, "
                   "else .dermascan/reviews.sqlite3)")
    actions = p.add_subparsers(dest="reviews_command", required=True, parser_class=type(p))
    actions.add_parser("stats", help="counts by triage band, decided / undecided, by model")
    e = actions.add_parser("export", help="write the cases (all, or a filter) as a review-log CSV")
    e.add_argument("--csv", required=True, help="output file")
    e.add_argument("--band", action="append", choices=(*BANDS, NO_BAND_NAME), help="a triage band to keep (repeatable)")
    status = e.add_mutually_exclusive_group()
    status.add_argument("--decided", dest="decided", action="store_const", const=True, help="only decided cases")
    status.add_argument("--undecided", dest="decided", action="store_const", const=False,
                        help="only cases without a decision")
    e.add_argument("--search", default="", help="words to find in patient, lesion, reviewer, note, file, diagnosis")
    i = actions.add_parser("import", help="merge a Review log CSV export (nothing is ever deleted)")
    i.add_argument("csv_file", metavar="CSV")
    b = actions.add_parser("backup", help="SQLite: an online backup into OUT; PostgreSQL: how to use pg_dump")
    b.add_argument("out", metavar="OUT")
    actions.add_parser("migrate", help="open the database (which upgrades it) and print its schema version")


def run(args: argparse.Namespace) -> int:
    """Run ``reviews <subcommand>``; returns the exit code (a ``DermascanError`` is the CLI's to print)."""
    command = args.reviews_command
    if not getattr(args, "verbose", False):
        # The store logs each database failure it translates; the CLI prints that translation as its one line.
        logging.getLogger(errors.__name__).setLevel(logging.ERROR)
    if command == "backup":
        out = backup(args.db, Path(args.out))
        print(f"Backed up the review database into {out.name}.", file=sys.stderr)
        return 0
    if command == "export":
        try:
            query = CaseQuery(bands=tuple(NO_BAND if b == NO_BAND_NAME else b for b in dict.fromkeys(args.band or ())),
                              decided=args.decided, text=args.search)
        except ValueError as exc:
            raise DermascanError(f"--search: {exc}.") from None
    if command == "import" and not os.access(args.csv_file, os.R_OK):
        # Checked before the store is opened, so a mistyped name does not create an empty database.
        raise DermascanError(f"Could not read {Path(args.csv_file).name}; check that the file exists and is readable.")
    with open_store(args.db) as store:
        if command == "stats":
            print(format_stats(stats(store)))
        elif command == "export":
            rows = write_export(store, query, Path(args.csv))
            print(f"Wrote {rows:,} case(s) ({query.describe()}) to {Path(args.csv).name}.", file=sys.stderr)
        elif command == "import":
            return _report_import(import_file(store, Path(args.csv_file)))
        elif command == "migrate":
            print(f"schema version {schema.SCHEMA_VERSION}")
    return 0


def _report_import(result: csvio.ImportResult) -> int:
    print(result.summary())
    # Lines carry file names and reviewers from the file: one visible line each, no terminal control characters.
    for line in result.change_lines():
        print(f"changed: {display_text(line)}")
    merged = result.added + result.updated + result.skipped
    for warning in result.warnings if merged else ():  # a file refused whole gets its one reason, not notes on it
        print(f"warning: {display_text(warning)}", file=sys.stderr)
    for error in result.errors:
        print(f"error: {display_text(error)}", file=sys.stderr)
    return 2 if result.errors else 0
