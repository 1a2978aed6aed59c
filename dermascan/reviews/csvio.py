"""CSV export and import of reviewed cases (resume on another machine, hand over to a registry, audit).

Export: UTF-8 *with* a byte-order mark. Excel opens a BOM-less CSV as the local ANSI code page and
mangles accented names and notes; with the BOM it reads UTF-8. ``csv``/pandas readers opened with
``utf-8-sig`` (or pandas' default) ignore it. Text cells a spreadsheet would run as formulas are
neutralised with ``dermascan.csvsafe.safe_cell``; numbers are written as plain numbers.

Import: our own export, with or without BOM, also after a round trip through Excel (``;`` or tab
separators, Windows-1252 / Latin-1 text, UTF-16 with or without BOM, decimal commas). Bad rows become
lines in ``ImportResult.errors`` and never stop the good rows (a NUL byte rejects its row, not the file);
a file whose header is not ours imports nothing. Timestamps must survive the round trip unchanged: they
identify cases (reformatting them in a spreadsheet makes them look like new cases), so a row whose
``created_at`` / ``decided_at`` is not an ISO 8601 date *and* time, or lies in the future (more than
``MAX_CLOCK_SKEW`` ahead of this computer's clock), is rejected. How imported decisions are merged, and why
a later claimed ``decided_at`` is not enough to rewrite history, is in ``dermascan.reviews.store``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from dermascan.csvsafe import safe_cell, unsafe_cell

from . import columns
from .columns import PROBABILITY_PREFIX
from .query import CaseQuery
from .records import MAX_TEXT_CHARS, CaseRecord, Decision, DecisionChange, normalize_timestamp

log = logging.getLogger(__name__)

COLUMN_DESCRIPTIONS: dict[str, str] = {
    **{column.name: column.description for column in columns.CASE if column.description is not None},
    f"{PROBABILITY_PREFIX}<label>": columns.PROBABILITY_DESCRIPTION,
    **{column.name: column.description for column in columns.DECISION if column.description is not None},
}
"""One-line meaning of every column (``p_<label>`` stands for the probability columns)."""

CASE_COLUMNS = columns.CSV_CASE_NAMES
DECISION_COLUMNS = columns.DECISION_NAMES
CSV_COLUMNS = CASE_COLUMNS + DECISION_COLUMNS
"""The fixed columns in file order; the ``p_<label>`` columns go after the case columns, before ``reviewer_agrees``."""

MAX_IMPORT_ROWS = 100_000
MAX_IMPORT_BYTES = 256 * 1024 * 1024
MAX_ERROR_LINES = 50
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of this computer's clock an imported timestamp may be (another machine's clock skew)."""

_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}
_TIMESTAMP_COLUMNS = columns.names((*columns.CASE, *columns.DECISION), kind="timestamp", exported=True)
# A date alone (or a spreadsheet's "01/03/2025 10:00") is a reformatted timestamp, not ours.
_DATE_AND_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
_UTF16_SAMPLE = 512  # bytes: within our (ASCII) header, whatever the rows hold


def csv_header(labels: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The header of an export holding these labels' probabilities."""
    return [*CASE_COLUMNS, *(PROBABILITY_PREFIX + label for label in sorted(labels)), *DECISION_COLUMNS]


@dataclass
class ImportResult:
    """What an import did. ``errors``: one line per rejected row (or one for a rejected file), capped at 50.

    ``changes``: every stored case whose decisions the import touched (a decision replaced, or an older one
    kept in the history only), with both decisions; ``change_lines()`` reads them out.
    """

    added: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[DecisionChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return not self.errors

    def summary(self) -> str:
        """One sentence for the UI."""
        text = (f"{self.added} new case(s) imported, {self.updated} decision(s) updated, "
                f"{self.skipped} already up to date")
        if self.rejected:
            text += f", {self.rejected} row(s) rejected"
        return text + "."

    def change_lines(self) -> list[str]:
        """One line per stored case whose decisions changed: case, file name, reviewers, previous -> new."""
        return [change.describe() for change in self.changes]

    def _error(self, line: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERROR_LINES:
            self.errors.append(line)


# -- cells -------------------------------------------------------------------------------------------------

def format_cell(value: Any) -> str:
    """One value as CSV text: numbers as numbers, booleans as yes/no, formula-like text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return safe_cell(str(value))


def parse_cell(text: str) -> str:
    """Undo ``format_cell`` on text read back from an export."""
    return unsafe_cell(text)


# -- export ----------------------------------------------------------------------------------------------
# One writer for every CSV of cases: the Review log export, the Batch page's download and the CLI's ``batch``
# output all have ``csv_header``'s columns, a BOM, CRLF line ends and formula-safe cells.

NOT_ANALYSED = "Not analysed: "
"""How the ``explanation`` cell of a file that could not be analysed begins (the reason follows)."""


def failure_row(file_name: str, reason: str, **context: Any) -> dict[str, Any]:
    """The row of a file that could not be analysed: its name and the reason (in ``explanation``).

    ``context``: other case columns known without an analysis (``source``, ``model_name``, ...). Such a row has no
    ``image_sha256``, so importing the file rejects it on its own with a one-line reason.
    """
    unknown = sorted(set(context) - set(CASE_COLUMNS))
    if unknown:
        raise ValueError(f"not case columns: {', '.join(unknown)}")
    return {**context, "file_name": file_name, "explanation": NOT_ANALYSED + str(reason)}


def run_context(card: Any, *, source: str) -> dict[str, Any]:
    """The case columns a failure row of a run with this model card (duck-typed) still fills in."""
    return dict(source=source, model_name=card.name, model_version=card.version or "",
                preprocessing=card.preprocessing, resize=card.resize)


class CaseCsvWriter:
    """Writes cases (``CaseRecord``) and failure rows to a text stream in the export format, row by row.

    ``stream``: opened with ``newline=""`` (the writer ends lines with CRLF itself). ``labels``: the labels whose
    ``p_<label>`` columns the header has (a batch: the model's labels; an export: every label of its cases).
    """

    def __init__(self, stream: Any, labels: list[str] | tuple[str, ...]):
        self.header = csv_header(labels)
        # CRLF, as RFC 4180: with "\n" alone a CR inside a cell is written unquoted and spreadsheets start a new
        # row there, so "x\r=HYPERLINK(...)" in a file name became a row beginning with a live formula.
        self._writer = csv.writer(stream, lineterminator="\r\n")
        stream.write("\ufeff")
        self._writer.writerow(self.header)

    def write_row(self, row: dict[str, Any]) -> None:
        """One row from a dict keyed by column name (missing columns are empty)."""
        self._writer.writerow([format_cell(row.get(column)) for column in self.header])

    def write_case(self, record: CaseRecord) -> None:
        """One case with its current decision."""
        self.write_row(record.to_row())

    def write_failure(self, file_name: str, reason: str, **context: Any) -> None:
        """One file that could not be analysed (see ``failure_row``)."""
        self.write_row(failure_row(file_name, reason, **context))


def write_csv(records: Iterable[CaseRecord], *, labels: list[str] | tuple[str, ...] | None = None,
              failures: Iterable[dict[str, Any]] = ()) -> bytes:
    """Cases (then ``failure_row`` dicts) as CSV bytes: UTF-8 with BOM, CRLF, ``csv_header(labels)``.

    ``labels`` defaults to every label in the records' probabilities.
    """
    records = list(records)
    if labels is None:
        labels = sorted({label for record in records for label in record.probabilities})
    buffer = io.StringIO(newline="")
    writer = CaseCsvWriter(buffer, labels)
    for record in records:
        writer.write_case(record)
    for row in failures:
        writer.write_row(row)
    return buffer.getvalue().encode("utf-8")


def to_csv_bytes(records: list[CaseRecord]) -> bytes:
    """The records as an export file (UTF-8 with BOM, CRLF line ends), one row per case."""
    return write_csv(records)


def iter_export_csv(store: Any, query: Any = None, *, chunk: int = 1000,
                    tally: dict[str, int] | None = None) -> Iterator[bytes]:
    """The export of ``store``'s cases passing ``query`` (a ``CaseQuery``; default all, oldest first) as byte chunks.

    The first chunk is the BOM and the header (its ``p_<label>`` columns from one SQL query over the same cases),
    then about ``chunk`` rows per chunk, read through ``store.iter_cases``: memory stays flat however many
    cases there are. Joined, the chunks equal ``to_csv_bytes`` of the same records. ``tally``, if given, has
    ``"cases"`` set to the number of cases written so far.
    """
    query = CaseQuery(sort="oldest") if query is None else query
    buffer = io.StringIO(newline="")
    writer = CaseCsvWriter(buffer, store.labels_matching(query))
    yield _drain(buffer)  # the BOM and the header: a download starts before the first case is read
    tally = {} if tally is None else tally
    rows = pending = tally["cases"] = 0
    for record in store.iter_cases(query, chunk=chunk):
        writer.write_case(record)
        rows, pending = rows + 1, pending + 1
        tally["cases"] = rows
        if pending >= chunk:
            yield _drain(buffer)
            pending = 0
    if rest := _drain(buffer):
        yield rest
    log.info("review export: %d cases", rows)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def export_csv(store: Any, dest: str | os.PathLike[str] | BinaryIO | None = None, *,
               session_id: str | None = None) -> bytes:
    """Export a store's cases (oldest first) as CSV bytes; also write them to ``dest`` (path or binary file)."""
    data = b"".join(iter_export_csv(store, CaseQuery(session_id=session_id, sort="oldest")))
    if dest is not None:
        if hasattr(dest, "write"):
            dest.write(data)
        else:
            write_private(Path(dest), [data])
    return data


def write_private(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path``, created 0600, through a temporary file renamed over it (``OSError`` as is).

    A crash or error mid-export never leaves a truncated file where a good one was.
    """
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".csv", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- import ------------------------------------------------------------------------------------------------

def import_csv(store: Any, source: Any, *, max_rows: int = MAX_IMPORT_ROWS) -> ImportResult:
    """Read an export and merge it into ``store`` (see ``ReviewStore.merge_cases``).

    ``source``: bytes, text, a path (``str``/``PathLike``) or a binary file-like (Streamlit's
    UploadedFile). Problems with the file or its rows are reported in the result, never raised; a
    database failure raises ``ReviewStoreError``: the rows merged before it (in transactions of
    ``store.MERGE_CHUNK`` rows) stay, and importing the same file again adds the rest without duplicates.
    """
    result = ImportResult()
    data = _read_source(source, result)
    if data is None:
        return result
    records = parse_csv(data, result, max_rows=max_rows)
    if records:
        counts = store.merge_cases(records)
        result.added, result.updated, result.skipped = counts.added, counts.updated, counts.skipped
        result.changes = list(counts.changes)
        if counts.kept_in_history:
            result.warnings.append(
                f"{counts.kept_in_history} decision(s) in the file were older than the current ones and "
                "differed from them; they were kept in the decision history only.")
    log.info("review import: %d added, %d updated, %d skipped, %d rejected",
             result.added, result.updated, result.skipped, result.rejected)
    return result


def _read_source(source: Any, result: ImportResult) -> bytes | str | None:
    too_big = f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB; split it and import the parts."
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | str = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                result._error(too_big)
                return None
            data = path.read_bytes()
        except OSError:
            result._error(f"Could not read {path.name}; check that the file exists and is readable.")
            return None
    elif hasattr(source, "getvalue"):  # Streamlit's UploadedFile: whole content, whatever was read before
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read(MAX_IMPORT_BYTES + 1)
    else:
        raise TypeError("source must be bytes, a path or a binary file")
    if len(data) > MAX_IMPORT_BYTES:
        result._error(too_big)
        return None
    return data


def _decode(data: bytes, result: ImportResult) -> str | None:
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        result._error("This is an Excel workbook, not a CSV file; save it as 'CSV UTF-8' and import that file.")
        return None
    utf16 = _utf16_codec(data)
    for encoding in [utf16] if utf16 else ["utf-8-sig", "cp1252", "latin-1"]:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding in ("cp1252", "latin-1"):
            result.warnings.append("The file is not UTF-8 and was read as Windows-1252/Latin-1; "
                                   "check accented characters in names and notes.")
        return text.removeprefix("\ufeff")
    _not_text(result)
    return None


def _not_text(result: ImportResult) -> None:
    result._error("The file is not a readable text CSV file; export the reviews again as CSV and import that file.")


def _utf16_codec(data: bytes) -> str | None:
    """``utf-16`` (byte-order mark), ``utf-16-le`` / ``-be`` (none: Excel's "Unicode text", some tools), or None."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    # Our header is ASCII, so in UTF-16 every other byte is NUL (the odd ones little-endian, the even ones
    # big-endian); UTF-8 and Windows-1252 text has next to none. UTF-32 has NULs on both and is not matched.
    sample = data[: _UTF16_SAMPLE - _UTF16_SAMPLE % 2]
    pairs = len(sample) // 2
    if pairs < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= pairs / 2 and even <= pairs / 16:
        return "utf-16-le"
    if even >= pairs / 2 and odd <= pairs / 16:
        return "utf-16-be"
    return None


def _sniff_delimiter(first_line: str) -> str:
    # Our export uses commas; Excel re-saves with ';' in many European locales and tabs as "Unicode text".
    for delimiter in (",", ";", "\t"):
        try:
            names = next(csv.reader([first_line], delimiter=delimiter), [])
        except csv.Error:  # e.g. a cell over csv.field_size_limit(): not our header with this delimiter
            continue
        if "image_sha256" in (name.strip() for name in names):
            return delimiter
    return ","


def parse_csv(data: bytes | str, result: ImportResult | None = None, *,
              max_rows: int = MAX_IMPORT_ROWS) -> list[CaseRecord]:
    """The valid rows of an export as records; problems are added to ``result`` (never raised)."""
    result = result if result is not None else ImportResult()
    text = data if isinstance(data, str) else _decode(data, result)
    if text is None:
        return []
    text = text.removeprefix("\ufeff")
    delimiter = _sniff_delimiter(text.split("\n", 1)[0].split("\r", 1)[0])  # CR alone: "CSV (Macintosh)"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except (StopIteration, csv.Error):
        result._error("The file is empty or not a CSV file; nothing was imported.")
        return []
    if any("\x00" in name for name in header):
        _not_text(result)  # a binary file: our header never holds a NUL
        return []
    if not _check_header(header, result):
        return []
    latest = datetime.now(UTC) + MAX_CLOCK_SKEW  # one clock reading for the whole file
    records: list[CaseRecord] = []
    row_number = 1  # spreadsheet numbering: the header is row 1
    rows_read = 0
    while True:
        row_number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            result._error(f"Row {row_number}: not valid CSV (a cell is too large or badly quoted).")
            continue
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave empty rows at the end
        rows_read += 1
        if rows_read > max_rows:
            result._error(f"Only the first {max_rows:,} rows were imported; split the file and import the rest "
                          "(rows already imported are recognised and skipped).")
            break
        if len(cells) > len(header):
            result._error(f"Row {row_number}: more cells than the header has columns.")
            continue
        if any("\x00" in cell for cell in cells):
            result._error(f"Row {row_number}: contains a NUL byte (a damaged file?); the row was not imported.")
            continue
        cells += [""] * (len(header) - len(cells))
        try:
            records.append(_record_from_cells(dict(zip(header, cells, strict=True)), delimiter == ";", latest))
        except ValueError as exc:
            result._error(f"Row {row_number}: {exc}.")
    return records


def _check_header(header: list[str], result: ImportResult) -> bool:
    missing = [column for column in CSV_COLUMNS if column not in header]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        result._error(f"This is not a DermaScan review export (missing columns: {shown}); nothing was imported.")
        return False
    if len(set(header)) != len(header):
        result._error("The header repeats a column name; nothing was imported.")
        return False
    unknown = [name for name in header if name not in CSV_COLUMNS and not name.startswith(PROBABILITY_PREFIX)]
    if unknown:
        result.warnings.append(f"{len(unknown)} unknown column(s) were ignored.")
    return True


def _record_from_cells(raw: dict[str, str], decimal_comma: bool, latest: datetime) -> CaseRecord:
    for name, value in raw.items():
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"{name} is longer than {MAX_TEXT_CHARS:,} characters")
    cell = {name: parse_cell(value) for name, value in raw.items() if name}
    text = {name: (cell.get(name) or None) for name in CSV_COLUMNS}
    for name in _TIMESTAMP_COLUMNS:
        if text[name] is not None:
            text[name] = _timestamp(name, text[name], latest)
    probabilities = {
        name[len(PROBABILITY_PREFIX):]: _number(name, value, decimal_comma)
        for name, value in cell.items()
        if name.startswith(PROBABILITY_PREFIX) and len(name) > len(PROBABILITY_PREFIX) and value.strip()
    }
    decision = None
    if any(text[name] for name in DECISION_COLUMNS):
        if not text["decided_at"]:
            raise ValueError("decided_at is empty but the row has a decision")
        decision = Decision(**{column.name: _field(column, text[column.name], decimal_comma)
                               for column in columns.DECISION})
    fields = {column.name: _field(column, text[column.name], decimal_comma)
              for column in columns.CASE if column.exported and column.kind != "id"}  # ids are local to a database
    # check_writable: a text the database cannot index costs this row, not the transaction of its chunk.
    return CaseRecord(**fields, probabilities=probabilities, decision=decision).check_writable()


def _field(column: columns.Column, value: str | None, decimal_comma: bool) -> Any:
    """One cell (already un-neutralised, ``None`` when empty) as the record field ``column`` (records validate it)."""
    if column.kind == "sha256":
        return (value or "").strip()
    if column.kind == "skin_type":
        return _fitzpatrick(value, decimal_comma)
    if column.kind == "age":
        return _whole(column.name, value, decimal_comma)
    if column.kind in ("probability", "score"):
        return _maybe_number(column.name, value, decimal_comma)
    if column.kind == "yes_no":
        return _yes_no(column.name, value)
    return value


def _timestamp(name: str, value: str, latest: datetime) -> str:
    """The canonical form of an imported timestamp; ``ValueError`` unless it is an ISO date and time, not ahead."""
    value = value.strip()
    if not _DATE_AND_TIME.match(value):
        raise ValueError(f"{name} is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SS)")
    canonical = normalize_timestamp(value, name)
    if datetime.fromisoformat(canonical) > latest:
        minutes = int(MAX_CLOCK_SKEW.total_seconds() // 60)
        raise ValueError(f"{name} is in the future (more than {minutes} minutes ahead of this computer's clock)")
    return canonical


def _number(name: str, value: str, decimal_comma: bool) -> float:
    value = value.strip()
    if decimal_comma and "," in value and "." not in value:
        value = value.replace(",", ".")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} is not a finite number")
    return number


def _maybe_number(name: str, value: str | None, decimal_comma: bool) -> float | None:
    return None if value is None or not value.strip() else _number(name, value, decimal_comma)


def _whole(name: str, value: str | None, decimal_comma: bool) -> int | None:
    number = _maybe_number(name, value, decimal_comma)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"{name} must be a whole number")
    return int(number)


def _fitzpatrick(value: str | None, decimal_comma: bool) -> int | None:
    if value is not None and value.strip().lower() in _ROMAN:
        return _ROMAN[value.strip().lower()]
    return _whole("fitzpatrick", value, decimal_comma)


def _yes_no(name: str, value: str | None) -> bool | None:
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValueError(f"{name} must be yes, no or empty")
