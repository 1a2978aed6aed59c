"""Fixtures of the robustness suite: ``fresh_db`` gives each example of a fuzz test an empty review database.

Plain helpers live in ``robust_helpers.py`` (every ``conftest`` of the suite shares this module name).
"""

from __future__ import annotations

import itertools

import pytest


@pytest.fixture
def fresh_db(new_db, backend, tmp_path):
    """``fresh_db()``: an empty review database on this test's backend, a new one on every call.

    SQLite: a new file. PostgreSQL: the test's own schema, emptied (``TRUNCATE ... RESTART IDENTITY``), since
    creating a schema and its tables for every Hypothesis example would cost more than the example itself.
    Close the previous example's store first: ``TRUNCATE`` waits for every other transaction on the tables.
    """
    if backend == "sqlite":
        numbers = itertools.count()
        yield lambda: tmp_path / f"fresh-{next(numbers)}.sqlite3"
        return
    import sqlalchemy as sa

    from dermascan.reviews import ReviewStore
    from dermascan.reviews.tables import SQLITE_TABLES

    url = new_db("fresh")
    ReviewStore(url).close()  # the tables, created once
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool)
    truncate = f"TRUNCATE {', '.join(table.name for table in SQLITE_TABLES)} RESTART IDENTITY CASCADE"

    def emptied() -> str:
        with engine.begin() as conn:
            conn.exec_driver_sql(truncate)
        return url

    yield emptied
    engine.dispose()
