"""Editing a stored case's details: ``ReviewStore.update_case_fields``, its history and the v2 -> v3 upgrade."""

from __future__ import annotations

import sqlite3

import pytest

from dermascan.reviews import SCHEMA_VERSION, CaseRecord, Decision, ReviewStore, ReviewStoreError

SHA = "ab" * 32

# `iterdump()` of a database written by the release before case details became editable (schema 2): one case
# with its details, two decisions (sqlite_sequence and transaction lines trimmed, user_version added back since
# dumps omit it). Frozen here so the upgrade is tested on a real old file, not on today's migrations replayed.
V2_DUMP = """
CREATE TABLE cases (
        case_id         INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at      TEXT NOT NULL,
        session_id      TEXT,
        source          TEXT,
        file_name       TEXT,
        image_sha256    TEXT NOT NULL,
        patient_id      TEXT,
        lesion_id       TEXT,
        body_site       TEXT,
        fitzpatrick     INTEGER,
        age             INTEGER,
        sex             TEXT,
        model_name      TEXT,
        model_version   TEXT NOT NULL DEFAULT '',
        preprocessing   TEXT,
        resize          TEXT,
        cam_layer       TEXT,
        top_label       TEXT NOT NULL,
        top_probability REAL,
        malignant_score REAL,
        triage          TEXT,
        explanation     TEXT,
        probabilities   TEXT NOT NULL DEFAULT '{}',
        thumbnail       BLOB, explained_label TEXT,
        UNIQUE (image_sha256, created_at, model_version)
    );
INSERT INTO "cases" VALUES(1,'2025-03-01T10:00:00.000000+00:00','s1','single','old.jpg',
    'abababababababababababababababababababababababababababababababab','P-7','L-1','back',2,61,'male','demo','1.0',
    NULL,NULL,NULL,'mel',0.7,0.72,'high','Top class: mel.','{"mel": 0.7, "nv": 0.3}',NULL,'mel');
CREATE TABLE decision_history (
        history_id INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id    INTEGER NOT NULL REFERENCES cases (case_id),
    reviewer_agrees    INTEGER CHECK (reviewer_agrees IN (0, 1)),
    reviewer_diagnosis TEXT,
    management         TEXT,
    note               TEXT NOT NULL DEFAULT '',
    reviewer           TEXT,
    decided_at         TEXT NOT NULL,
        saved_at   TEXT NOT NULL
    );
INSERT INTO "decision_history" VALUES(1,1,NULL,NULL,'monitor','',NULL,'2025-03-01T10:05:00.000000+00:00',
    '2026-11-24T03:08:54.871983+00:00');
INSERT INTO "decision_history" VALUES(2,1,1,'mel','excise','','dr.a','2025-03-02T09:00:00.000000+00:00',
    '2026-11-24T03:08:54.875868+00:00');
CREATE TABLE decisions (
        case_id INTEGER PRIMARY KEY REFERENCES cases (case_id),
    reviewer_agrees    INTEGER CHECK (reviewer_agrees IN (0, 1)),
    reviewer_diagnosis TEXT,
    management         TEXT,
    note               TEXT NOT NULL DEFAULT '',
    reviewer           TEXT,
    decided_at         TEXT NOT NULL
    );
INSERT INTO "decisions" VALUES(1,1,'mel','excise','','dr.a','2025-03-02T09:00:00.000000+00:00');
CREATE INDEX cases_by_session ON cases (session_id, created_at);
CREATE INDEX decision_history_by_case ON decision_history (case_id, decided_at);
PRAGMA user_version = 2;
"""


def make_case(**overrides) -> CaseRecord:
    fields = dict(image_sha256=SHA, top_label="mel", top_probability=0.7, malignant_score=0.72, triage="high",
                  probabilities={"mel": 0.7, "nv": 0.3}, model_version="1.0", created_at="2025-03-01T10:00:00Z",
                  patient_id="P-1", fitzpatrick=3, age=54, sex="female")
    fields.update(overrides)
    return CaseRecord(**fields)


@pytest.fixture
def db(new_db):
    """A fresh review database on each backend."""
    return new_db()


@pytest.fixture
def sqlite_db(tmp_path):
    return tmp_path / "reviews.sqlite3"


def test_edited_details_survive_a_reopen_and_the_replaced_ones_are_kept(db):
    with ReviewStore(db) as store:
        case_id = store.add_case(make_case(decision=Decision(management="monitor")))
        updated = store.update_case_fields(case_id, patient_id="P-2", lesion_id="L-9", body_site="left shin",
                                           fitzpatrick=5, age=55.0, sex=None)
        assert (updated.patient_id, updated.age, updated.sex) == ("P-2", 55, None)  # normalised like CaseRecord
        assert updated.decision.management == "monitor" and updated.updated_at is not None
    with ReviewStore(db) as reopened:
        case = reopened.get_case(case_id)
        assert (case.patient_id, case.lesion_id, case.body_site, case.fitzpatrick, case.age, case.sex) == \
            ("P-2", "L-9", "left shin", 5, 55, None)
        assert case.updated_at == updated.updated_at
        assert (case.top_label, case.malignant_score, case.probabilities) == ("mel", 0.72, {"mel": 0.7, "nv": 0.3})
        [replaced] = reopened.case_details_history(case_id)
        assert replaced == {"patient_id": "P-1", "lesion_id": None, "body_site": None, "fitzpatrick": 3, "age": 54,
                            "sex": "female", "replaced_at": updated.updated_at}


def test_only_the_given_fields_change_and_an_unchanged_save_is_a_no_op(db):
    with ReviewStore(db) as store:
        case_id = store.add_case(make_case())
        store.update_case_fields(case_id, body_site="scalp")
        case = store.get_case(case_id)
        assert (case.patient_id, case.body_site, case.age) == ("P-1", "scalp", 54)
        stamped = case.updated_at
        again = store.update_case_fields(case_id, body_site="scalp", patient_id="P-1")  # a rerun re-saving
        assert again.updated_at == stamped
        assert len(store.case_details_history(case_id)) == 1
        assert store.update_case_fields(case_id).updated_at == stamped  # nothing given: nothing changes


@pytest.mark.parametrize(("fields", "message"), [
    ({"fitzpatrick": 9}, "fitzpatrick must be between 1 and 6"),
    ({"age": -1}, "age must be between 0 and 150"),
    ({"age": 40.5}, "age must be a whole number"),
    ({"patient_id": 17}, "patient_id must be text"),
    ({"body_site": "x" * 10_001}, "body_site is longer than"),
    ({"top_label": "nv"}, "not top_label"),
    ({"malignant_score": 0.0, "patient_id": "P-3"}, "not malignant_score"),
])
def test_invalid_or_non_detail_fields_are_refused_and_nothing_changes(db, fields, message):
    with ReviewStore(db) as store:
        case_id = store.add_case(make_case())
        with pytest.raises(ReviewStoreError, match=message) as info:
            store.update_case_fields(case_id, **fields)
        assert "\n" not in str(info.value) and "xxxx" not in str(info.value)
        case = store.get_case(case_id)
        assert (case.patient_id, case.fitzpatrick, case.age, case.updated_at) == ("P-1", 3, 54, None)
        assert (case.top_label, case.malignant_score) == ("mel", 0.72)
        assert store.case_details_history(case_id) == []


@pytest.mark.parametrize("case_id", [42, True, "1"])
def test_unknown_case_is_a_store_error(db, case_id):
    with ReviewStore(db) as store:
        store.add_case(make_case())
        with pytest.raises(ReviewStoreError, match="not in the review database"):
            store.update_case_fields(case_id, patient_id="P-2")


def test_read_only_store_refuses_edits(db):
    with ReviewStore(db) as store:
        case_id = store.add_case(make_case())
    with ReviewStore(db, read_only=True) as viewer, pytest.raises(ReviewStoreError, match="read-only"):
        viewer.update_case_fields(case_id, patient_id="P-2")


def test_a_v2_database_is_upgraded_in_place_and_its_cases_become_editable(sqlite_db):
    db = sqlite_db
    with sqlite3.connect(db) as raw:
        raw.executescript(V2_DUMP)
    raw.close()
    with ReviewStore(db) as store:
        [case] = store.list_cases()
        assert (case.patient_id, case.fitzpatrick, case.explained_label, case.updated_at) == ("P-7", 2, "mel", None)
        assert [d.management for d in store.decision_history(case.case_id)] == ["monitor", "excise"]
        assert store.case_details_history(case.case_id) == []
        store.update_case_fields(case.case_id, patient_id="P-8")
        new_id = store.add_case(make_case(image_sha256="cd" * 32))  # new cases still go in
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert raw.execute("SELECT patient_id, updated_at IS NOT NULL FROM cases WHERE case_id = 1").fetchone() == \
            ("P-8", 1)
        assert raw.execute("SELECT patient_id FROM case_details_history").fetchall() == [("P-7",)]
    raw.close()
    with ReviewStore(db, read_only=True) as viewer:  # upgraded once, readable without write access
        assert viewer.get_case(new_id).updated_at is None
