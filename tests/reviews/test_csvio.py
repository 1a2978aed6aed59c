"""CSV export / import of reviews: round trips, duplicates, formula injection and malformed files."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest

from dermascan.reviews import CSV_COLUMNS, CaseRecord, Decision, ReviewStore, csv_header
from dermascan.reviews.csvio import format_cell, parse_cell, to_csv_bytes

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
def store(new_db):
    with ReviewStore(new_db("a")) as opened:
        yield opened


@pytest.fixture
def empty(new_db):
    with ReviewStore(new_db("b")) as opened:
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


# -- issue 11: history cannot be rewritten through an import ------------------------------------------------

def clinic_case(store: ReviewStore) -> int:
    """dr.a's decision on a case: excise, melanoma (the decision a forged file tried to replace)."""
    return store.add_case(make_case(40, decision=Decision(
        reviewer_agrees=False, reviewer_diagnosis="mel", management="excise", reviewer="dr.a",
        decided_at="2025-06-01T09:00:00Z")))


def same_case_with(decision: Decision) -> bytes:
    """An export of another database holding the same analysis with ``decision``."""
    return to_csv_bytes([make_case(40, decision=decision)])


def test_a_decision_dated_in_the_future_is_a_row_error_and_the_stored_one_stays(store):
    case_id = clinic_case(store)
    before = store.decision_history(case_id)
    forged = same_case_with(Decision(reviewer_agrees=True, management="reassure", reviewer="mallory",
                                     decided_at="9999-12-31T00:00:00Z"))
    soon = datetime.now(UTC) + timedelta(hours=2)  # well past the allowed clock skew
    later = same_case_with(Decision(management="reassure", reviewer="mallory", decided_at=soon.isoformat()))
    for data in (forged, later):
        result = store.import_csv(data)
        assert (result.added, result.updated, result.rejected) == (0, 0, 1)
        assert len(result.errors) == 1 and result.errors[0].startswith("Row 2: decided_at is in the future")
        assert "mallory" not in result.errors[0] and result.changes == []
    current = store.get_decision(case_id)
    assert (current.management, current.reviewer_diagnosis, current.reviewer) == ("excise", "mel", "dr.a")
    assert store.decision_history(case_id) == before


def test_a_case_created_in_the_future_is_a_row_error_and_the_others_import(empty):
    data = to_csv_bytes([make_case(1), make_case(2, created_at="9999-12-31T23:59:59Z"), make_case(3)])
    result = empty.import_csv(data)
    assert (result.added, result.rejected) == (2, 1)
    assert result.errors == ["Row 3: created_at is in the future (more than 5 minutes ahead of this computer's "
                             "clock)."]
    assert sorted(c.file_name for c in empty.list_cases()) == ["f1.jpg", "f3.jpg"]


def test_clock_skew_of_a_minute_is_accepted(empty):
    near = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    result = empty.import_csv(to_csv_bytes([make_case(1, created_at=near, decision=Decision(decided_at=near))]))
    assert (result.added, result.errors) == (1, [])


@pytest.mark.parametrize("value", ["2025-01-01", "01/03/2025 10:00", "yesterday", "2025-13-01T00:00:00Z",
                                   "1.3.2025 10:00:00", "٢٠٢٥-٠١-٠١T00:00"])
def test_timestamps_that_are_not_an_iso_date_and_time_are_row_errors(empty, value):
    lines = [header_line(), row_line(1, created_at=value), row_line(2, decided_at=value, management="monitor"),
             row_line(3)]
    result = empty.import_csv("\n".join(lines).encode())
    assert (result.added, result.rejected) == (1, 2)
    assert result.errors[0].startswith("Row 2: created_at is not")
    assert result.errors[1].startswith("Row 3: decided_at is not")


def test_an_older_imported_decision_is_kept_in_history_only_and_the_summary_says_so(store):
    case_id = clinic_case(store)
    stale = same_case_with(Decision(reviewer_agrees=True, management="reassure", reviewer="dr.b",
                                    decided_at="2025-01-15T08:00:00Z"))
    result = store.import_csv(stale)
    assert (result.added, result.updated, result.skipped, result.errors) == (0, 0, 1, [])
    current = store.get_decision(case_id)
    assert (current.management, current.reviewer) == ("excise", "dr.a")
    # Save order, not the claimed decided_at: the older claim comes after the decision it did not replace.
    assert [(d.reviewer, d.management) for d in store.decision_history(case_id)] == [
        ("dr.a", "excise"), ("dr.b", "reassure")]
    [change] = result.changes
    assert (change.case_id, change.file_name, change.became_current) == (case_id, "f40.jpg", False)
    assert change.previous == current and change.incoming.reviewer == "dr.b"
    assert result.change_lines() == [
        f"Case {case_id} (f40.jpg): kept in the history only, older than the current decision (dr.a: excise, "
        "diagnosis mel, disagrees with the AI (decided 2025-06-01 09:00 UTC)): dr.b: reassure, agrees with the AI "
        "(decided 2025-01-15 08:00 UTC)"]
    assert any("kept in the decision history only" in w for w in result.warnings)
    again = store.import_csv(stale)  # nothing new the second time
    assert again.changes == [] and len(store.decision_history(case_id)) == 2


def test_a_newer_imported_decision_replaces_the_current_one_and_the_summary_names_both(store):
    case_id = clinic_case(store)
    store.import_csv(same_case_with(Decision(management="monitor", reviewer="dr.b",
                                             decided_at="2025-01-15T08:00:00Z")))  # older: history only
    result = store.import_csv(same_case_with(Decision(reviewer_agrees=True, management="reassure",
                                                      reviewer="dr.c", decided_at="2025-07-01T10:30:00Z")))
    assert (result.updated, result.errors) == (1, [])
    assert store.get_decision(case_id).reviewer == "dr.c"
    assert [d.reviewer for d in store.decision_history(case_id)] == ["dr.a", "dr.b", "dr.c"]
    assert result.change_lines() == [
        f"Case {case_id} (f40.jpg): dr.a: excise, diagnosis mel, disagrees with the AI (decided 2025-06-01 09:00 UTC)"
        " -> dr.c: reassure, agrees with the AI (decided 2025-07-01 10:30 UTC)"]


def test_a_decision_for_an_undecided_case_is_listed_as_a_change(store):
    case_id = store.add_case(make_case(41))
    result = store.import_csv(to_csv_bytes([make_case(41, decision=Decision(management="biopsy",
                                                                            decided_at="2025-03-01T00:00:00Z"))]))
    assert result.updated == 1
    assert result.change_lines() == [f"Case {case_id} (f41.jpg): no decision -> unnamed reviewer: biopsy "
                                     "(decided 2025-03-01 00:00 UTC)"]


# -- issue 11: every formula variant, encodings, NUL ----------------------------------------------------------

HIDDEN_FORMULAS = [prefix + sign + "HYPERLINK(\"http://evil.invalid\",\"x\")"
                   for prefix in ("\n", " ", "\u00a0", "\v", "\f", "\u2028", "\r", "\t", "\u2003", "\u3000", "\u200b",
                                  "\ufeff", " \u00a0\n")
                   for sign in ("=", "@")] + ["\uff1d1+1", "\uff0bcmd", "\uff0d2+3", "\uff20SUM(A1)", "'\uff1dx"]


def test_every_formula_variant_is_neutralised_in_the_file_and_restored_on_import(store, empty):
    for i, text in enumerate(HIDDEN_FORMULAS):
        store.add_case(make_case(100 + i, age=50, patient_id=text, file_name=text, decision=Decision(
            note=text, reviewer=text, reviewer_diagnosis=text, decided_at="2025-03-01T00:00:00Z")))
    rows = read_back(store.export_csv())
    assert len(rows) == len(HIDDEN_FORMULAS)
    for row in rows:
        for column in ("patient_id", "file_name", "note", "reviewer", "reviewer_diagnosis"):
            assert row[column].startswith("'"), (column, row[column])
    result = empty.import_csv(store.export_csv())
    assert (result.added, result.errors) == (len(HIDDEN_FORMULAS), [])
    for case in empty.list_cases():
        assert case.patient_id in HIDDEN_FORMULAS
        assert case.file_name == case.decision.note == case.decision.reviewer == case.patient_id


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16"])
def test_utf16_with_or_without_byte_order_mark_imports(store, empty, encoding):
    fill(store)
    data = store.export_csv().decode("utf-8-sig").encode(encoding)
    assert data.startswith((b"\xff\xfe", b"\xfe\xff")) == (encoding == "utf-16")
    result = empty.import_csv(data)
    assert (result.added, result.errors, result.warnings) == (3, [], [])
    notes = {c.patient_id: c.decision.note for c in empty.list_cases() if c.decision}
    assert notes == {"P1": "ok", "P3": "Zoë: «irregular» ✓"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_a_nul_byte_rejects_its_row_and_the_others_import(empty, encoding):
    lines = [header_line(), row_line(1), row_line(2, note="dam\x00aged SECRET-NOTE", management="monitor",
                                                   decided_at="2025-01-02T00:00:00Z"), row_line(3, p_nv="0\x00.1"),
             row_line(4)]
    result = empty.import_csv("\r\n".join(lines).encode(encoding))
    assert (result.added, result.rejected) == (2, 2)
    assert [line[:28] for line in result.errors] == ["Row 3: contains a NUL byte (", "Row 4: contains a NUL byte ("]
    assert "SECRET" not in " ".join(result.errors)
    assert sorted(c.image_sha256 for c in empty.list_cases()) == sorted([sha(1), sha(4)])


def test_summary_lines_are_one_short_line_whatever_the_names(store):
    case_id = store.add_case(make_case(42, file_name="scan\n" + "x" * 5000))
    long_name = "dr.\r\nsomeone " + "y" * 5000
    result = store.import_csv(to_csv_bytes([make_case(42, decision=Decision(
        management="refer", reviewer=long_name, reviewer_diagnosis="a\nb", decided_at="2025-03-01T00:00:00Z"))]))
    [line] = result.change_lines()
    assert line.startswith(f"Case {case_id} (scan xxx") and "dr. someone yyy" in line and "diagnosis a b" in line
    assert "\n" not in line and "\r" not in line and len(line) < 400


def test_utf16_without_bom_is_detected_even_when_the_rows_are_not_latin(empty):
    lines = [header_line()] + [row_line(n, note="皮膚病変の所見" * 40, management="monitor",
                                        decided_at="2025-01-02T00:00:00Z") for n in range(1, 4)]
    for encoding in ("utf-16-le", "utf-16-be"):
        result = empty.import_csv("\r\n".join(lines).encode(encoding))
        assert result.errors == [] and result.warnings == []
    assert [c.decision.note for c in empty.list_cases()] == ["皮膚病変の所見" * 40] * 3
