"""The one definition of the review columns agrees with the database, the records, the CSV and the README."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import sqlite3
from pathlib import Path

import pytest

from dermascan.errors import DermascanError
from dermascan.reviews import COLUMN_DESCRIPTIONS, CSV_COLUMNS, CaseRecord, Decision, ReviewStore, csv_header
from dermascan.reviews.columns import CASE, DECISION, names
from dermascan.reviews.records import InvalidRecord

README = Path(__file__).resolve().parents[2] / "README.md"
SHA = "ab" * 32


def _table_columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))


def test_columns_match_the_migrated_tables(tmp_path):
    # The migrations are frozen history written out by hand; the definition must describe what they built.
    ReviewStore(tmp_path / "r.sqlite3").close()
    with sqlite3.connect(tmp_path / "r.sqlite3") as conn:
        assert _table_columns(conn, "cases") == names(CASE)
        assert _table_columns(conn, "decisions") == ("case_id", *names(DECISION))
        assert _table_columns(conn, "decision_history") == ("history_id", "case_id", *names(DECISION), "saved_at")


def test_columns_are_the_record_fields():
    case_fields = {f.name for f in dataclasses.fields(CaseRecord)} - {"decision"}
    assert set(names(CASE)) == case_fields
    assert names(DECISION) == tuple(f.name for f in dataclasses.fields(Decision))


def test_every_exported_column_is_described_in_file_order():
    assert [name for name in COLUMN_DESCRIPTIONS if name != "p_<label>"] == list(CSV_COLUMNS)
    n_case = len(CSV_COLUMNS) - len(names(DECISION))
    assert csv_header(["b", "a"]) == [*CSV_COLUMNS[:n_case], "p_a", "p_b", *CSV_COLUMNS[n_case:]]
    assert "thumbnail" not in CSV_COLUMNS and "probabilities" not in CSV_COLUMNS


def test_export_header_is_the_list_documented_in_the_readme(new_db):
    text = README.read_text(encoding="utf-8")
    documented = re.search(r"Columns: `([^`]+)`", text)
    assert documented is not None, "README no longer lists the export columns"
    listed = [name.strip() for name in documented.group(1).split(",")]
    with ReviewStore(new_db()) as store:
        store.add_case(CaseRecord(image_sha256=SHA, top_label="mel", probabilities={"mel": 0.6, "nv": 0.4}))
        header = next(csv.reader(io.StringIO(store.export_csv().decode("utf-8-sig"))))
    probability_at = listed.index("p_<label>...")
    assert header == [*listed[:probability_at], "p_mel", "p_nv", *listed[probability_at + 1:]]


@pytest.mark.parametrize("build", [
    lambda: CaseRecord(image_sha256="not a hash", top_label="mel"),
    lambda: CaseRecord(image_sha256=SHA, top_label="mel", age=151),
    lambda: Decision(management="amputate"),
    lambda: Decision(decided_at="yesterday"),
])
def test_an_invalid_record_is_one_error_both_kinds_of_caller_catch(build):
    with pytest.raises(InvalidRecord) as caught:
        build()
    assert isinstance(caught.value, DermascanError) and isinstance(caught.value, ValueError)


def test_v4_analysis_fields_round_trip_through_the_store_and_the_csv(new_db):
    record = CaseRecord(image_sha256="ab" * 32, top_label="mel", probabilities={"mel": 0.9, "nv": 0.1},
                        cam_method="hirescam", off_card=True, gate="indeterminate",
                        gate_reasons="The image is blurred. | It does not look like a dermoscopic image.",
                        faithfulness=-0.25, stability=0.75, dx="nv")
    with ReviewStore(new_db("a")) as store:
        stored = store.get_case(store.add_case(record))
        exported = store.export_csv()
    assert (stored.cam_method, stored.off_card, stored.gate, stored.faithfulness, stored.stability, stored.dx) == (
        "hirescam", True, "indeterminate", -0.25, 0.75, "nv")
    with ReviewStore(new_db("b")) as other:
        assert other.import_csv(exported).added == 1
        (back,) = other.list_cases()
    assert back.off_card is True and back.gate_reasons == record.gate_reasons and back.faithfulness == -0.25


@pytest.mark.parametrize("field, value", [("off_card", "yes"), ("faithfulness", float("nan")),
                                          ("stability", 1.5), ("faithfulness", True)])
def test_v4_fields_refuse_wrong_values(field, value):
    with pytest.raises(InvalidRecord, match=field):
        CaseRecord(image_sha256="ab" * 32, top_label="mel", **{field: value})


def test_the_table_definitions_describe_what_the_sqlite_migrations_built(tmp_path):
    # tables.py (PostgreSQL's schema, every query's columns) and the frozen migrations must agree, index included.
    from dermascan.reviews import tables
    ReviewStore(tmp_path / "r.sqlite3").close()
    with sqlite3.connect(tmp_path / "r.sqlite3") as conn:
        for table in tables.SQLITE_TABLES:
            info = {row[1]: bool(row[3]) or bool(row[5]) for row in conn.execute(f"PRAGMA table_info({table.name})")}
            assert info == {c.name: not c.nullable for c in table.columns}, table.name
            built = {row[1]: tuple(r[2] for r in conn.execute(f"PRAGMA index_info({row[1]})"))
                     for row in conn.execute(f"PRAGMA index_list({table.name})") if row[3] == "c"}
            assert built == {index.name: tuple(c.name for c in index.columns) for index in table.indexes}, table.name
    conn.close()
