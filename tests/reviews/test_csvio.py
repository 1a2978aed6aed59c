"""CSV export / import of reviews: round trips, duplicates, formula injection and malformed files."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from dermascan.reviews import CSV_COLUMNS, CaseRecord, Decision, ReviewStore, csv_header
from dermascan.reviews.csvio import format_cell, parse_cell

FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1:A2)", "\tTAB", "\rCR", "'=already quoted"]


def sha(n: int) -> str:
    return hashlib.sha256(f"img{n}".encode()).hexdigest()


def make_case(n: int, *, decision: Decision | None = None, **overrides) -> CaseRecord:
    fields = dict(
        image_sha256=sha(n), top_label="nv", top_probability=0.6, malignant_score=0.15, triage="routine",
        probabilities={"nv": 0.6, "mel": 0.15, "bkl": 0.25}, model_name="demo", model_version="1.0",
        created_at=f"2025-02-0{1 + n % 9}T08:30:00.123456+00:00", session_id="s", file_name=f"f{n}.jpg",
        patient_id=f"P{n}", body_site="back", fitzpatrick=2, age=40 + n, sex="male", explanation="Top class: nv.",
        decision=decision,
    )
    fields.update(overrides)
    return CaseRecord(**fields)


@pytest.fixture
def store(tmp_path):
    with ReviewStore(tmp_path / "a.sqlite3") as opened:
        yield opened


@pytest.fixture
def empty(tmp_path):
    with ReviewStore(tmp_path / "b.sqlite3") as opened:
        yield opened


def fill(store: ReviewStore) -> None:
    store.add_case(make_case(1, decision=Decision(reviewer_agrees=True, management="monitor", note="ok",
                                                  reviewer="dr.b", decided_at="2025-02-02T09:00:00Z")))
    store.add_case(make_case(2, probabilities={"nv": 0.5, "df": 0.5}, top_probability=0.5))
    store.add_case(make_case(3, decision=Decision(
        reviewer_agrees=False, reviewer_diagnosis="mel", management="excise", note="Zoë: «irregular» ✓",
        decided_at="2025-02-04T10:00:00Z")))


def read_back(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_export_parses_back_to_the_same_rows(store):
    fill(store)
    rows = read_back(store.export_csv())
    assert list(rows[0]) == csv_header(["bkl", "df", "mel", "nv"])
    assert len(rows) == 3
    by_patient = {row["patient_id"]: row for row in rows}
    for case in store.list_cases():
        row, expected = by_patient[case.patient_id], case.to_row()
        for column in CSV_COLUMNS:
            value = expected[column]
            wanted = "" if value is None else ("yes" if value is True else "no" if value is False else str(value))
            assert row[column] == wanted, column
        for label, p in case.probabilities.items():
            assert float(row[f"p_{label}"]) == p
    assert by_patient["P2"]["p_bkl"] == ""  # label not predicted for that case


def test_export_to_a_path_and_import_into_an_empty_database(store, empty, tmp_path):
    fill(store)
    target = tmp_path / "out.csv"
    store.export_csv(target)
    result = empty.import_csv(target)
    assert (result.added, result.updated, result.skipped, result.errors) == (3, 0, 0, [])
    strip = lambda cases: sorted(  # noqa: E731
        [{**c.to_row(), "case_id": None} for c in cases], key=lambda row: row["patient_id"])
    assert strip(empty.list_cases()) == strip(store.list_cases())


def test_importing_twice_adds_no_duplicates(store, empty):
    fill(store)
    data = store.export_csv()
    empty.import_csv(data)
    again = empty.import_csv(io.BytesIO(data))
    assert (again.added, again.updated, again.skipped) == (0, 0, 3)
    assert empty.count_cases() == 3
    assert all(len(empty.decision_history(c.case_id)) <= 1 for c in empty.list_cases())


def test_newer_decision_wins_and_an_older_one_is_kept_in_history(store, empty):
    case_id = store.add_case(make_case(7, decision=Decision(management="monitor", decided_at="2025-05-01T00:00:00Z")))
    empty.import_csv(store.export_csv())
    target = empty.list_cases()[0].case_id

    store.save_decision(case_id, Decision(management="biopsy", decided_at="2025-06-01T00:00:00Z"))
    result = empty.import_csv(store.export_csv())
    assert result.updated == 1
    assert empty.get_decision(target).management == "biopsy"
    assert [d.management for d in empty.decision_history(target)] == ["monitor", "biopsy"]

    empty.save_decision(target, Decision(management="excise", decided_at="2025-07-01T00:00:00Z"))
    stale = empty.import_csv(store.export_csv())  # the file's decision (biopsy) is older now
    assert (stale.updated, stale.skipped) == (0, 1)
    assert empty.get_decision(target).management == "excise"


def test_formula_strings_are_neutralised_in_the_file_and_restored_on_import(store, empty):
    for i, text in enumerate(FORMULAS):
        store.add_case(make_case(10 + i, patient_id=text, body_site=text,
                                 decision=Decision(note=text, reviewer_diagnosis=text)))
    data = store.export_csv()
    rows = read_back(data)
    for row in rows:
        for column in ("patient_id", "body_site", "note", "reviewer_diagnosis"):
            assert row[column].startswith("'"), (column, row[column])
    empty.import_csv(data)
    restored = {c.patient_id for c in empty.list_cases()}
    assert restored == set(FORMULAS)
    for case in empty.list_cases():
        assert case.body_site == case.decision.note == case.decision.reviewer_diagnosis == case.patient_id


def test_numbers_stay_numbers_and_negative_text_is_protected():
    assert format_cell(-0.25) == "-0.25"
    assert format_cell(-3) == "-3"
    assert format_cell(0.1 + 0.2) == repr(0.1 + 0.2)
    assert format_cell(True) == "yes"
    assert format_cell("-12") == "'-12"
    for text in [*FORMULAS, "plain", "'quoted", "''=double"]:
        assert parse_cell(format_cell(text)) == text


def test_numeric_columns_are_written_unquoted(store):
    store.add_case(make_case(1))
    raw = store.export_csv().decode("utf-8-sig").splitlines()[1]
    assert ",0.6," in raw and ",0.15," in raw and ",41," in raw


def header_line(delimiter: str = ",") -> str:
    return delimiter.join(csv_header(["mel", "nv"]))


def row_line(n: int, delimiter: str = ",", **changes: str) -> str:
    values = {column: "" for column in csv_header(["mel", "nv"])}
    values.update(created_at=f"2025-01-01T00:00:0{n}Z", image_sha256=sha(n), top_label="mel", model_version="1",
                  top_probability="0.9", p_mel="0.9", p_nv="0.1")
    values.update(changes)
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(values.values())
    return buffer.getvalue()


def test_malformed_rows_are_reported_and_good_rows_still_import(empty):
    lines = [
        header_line(),
        row_line(1),
        row_line(2, image_sha256=""),
        row_line(3, top_label=""),
        row_line(4, age="forty"),
        row_line(5, management="burn it", decided_at="2025-01-02T00:00:00Z"),
        row_line(6, note="x" * 10_001, decided_at="2025-01-02T00:00:00Z"),
        row_line(7, p_mel="1.7"),
        row_line(8) + ",extra",
        row_line(9, management="refer"),  # a decision without decided_at
        "",
        row_line(0, management="Biopsy", decided_at="2025-01-02T00:00:00Z", reviewer_agrees="no", age="-1"),
        row_line(0, created_at="2025-01-01T00:00:09Z", age="-1.0"),
        row_line(0, created_at="2025-01-01T00:00:08Z", fitzpatrick="IV"),
    ]
    result = empty.import_csv("\n".join(lines).encode())
    assert result.added == 2
    assert result.rejected == len(result.errors) == 10
    text = "\n".join(result.errors)
    for fragment in ("Row 3: image_sha256 is empty", "Row 4: top_label is empty", "Row 5: age is not a number",
                     "Row 6: management must be one of", "Row 7: note is longer than 10,000",
                     "Row 8: p_mel must be between 0 and 1", "Row 9: more cells", "Row 10: decided_at is empty",
                     "Row 12: age must be between 0 and 150", "Row 13: age must be between"):
        assert fragment in text
    assert "xxxx" not in text
    assert empty.list_cases(session_first=None)[0].fitzpatrick == 4


def test_a_wrong_header_imports_nothing(empty):
    result = empty.import_csv(b"name,age\nAda,36\n")
    assert len(result.errors) == 1 and "not a DermaScan review export" in result.errors[0]
    assert (result.added, empty.count_cases()) == (0, 0)


def test_row_limit(empty):
    lines = [header_line()] + [row_line(n) for n in range(1, 6)]
    result = empty.import_csv("\n".join(lines).encode(), max_rows=3)
    assert result.added == 3
    assert len(result.errors) == 1 and "first 3 rows" in result.errors[0]


def test_files_resaved_by_a_spreadsheet_still_import(empty):
    # Excel in a comma-decimal locale: ';' separators, Windows-1252 text, decimal commas.
    semicolons = header_line(";") + "\r\n" + row_line(1, ";", note="café", decided_at="2025-01-02T00:00:00Z",
                                                         p_mel="0,9")
    result = empty.import_csv(semicolons.encode("cp1252"))
    assert result.added == 1 and result.errors == []
    assert "Windows-1252" in result.warnings[0]
    case = empty.list_cases()[0]
    assert case.decision.note == "café" and case.probabilities["mel"] == 0.9
    no_bom = (header_line() + "\n" + row_line(2)).encode("utf-8")
    assert empty.import_csv(no_bom).added == 1


@pytest.mark.parametrize(("payload", "message"), [
    (b"PK\x03\x04rest-of-a-zip", "Excel workbook"),
    (b"\x00\x01\x02binary\x00", "not a readable text CSV"),
    (b"", "empty"),
])
def test_files_that_are_not_csv_are_reported(empty, payload, message):
    result = empty.import_csv(payload)
    assert len(result.errors) == 1 and message in result.errors[0]
    assert empty.count_cases() == 0


def test_missing_file_is_an_import_error_not_an_exception(empty, tmp_path):
    result = empty.import_csv(tmp_path / "nope.csv")
    assert "Could not read nope.csv" in result.errors[0]
    assert str(tmp_path) not in result.errors[0]
