"""Shared fixtures: real HAM10000 images from ../shared, synthetic RGB images, review databases on both backends.

Plain helpers live in ``shared_data.py`` and ``tiny_models.py``: test modules import them
from there, because every ``conftest`` of the suite shares that module name.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pg_server
import pytest
from shared_data import HAM, ham_sample

PG_URL_ENV = "DERMASCAN_TEST_PG_URL"
"""A PostgreSQL server for the tests (a superuser's URL, or one that may create schemas); unset: one is started."""

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def ham_paths() -> list[Path]:
    """Eight real HAM10000 images, one per class first."""
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    return ham_sample(8, per_class=True)


@pytest.fixture
def rgb_images() -> list[np.ndarray]:
    """Four deterministic synthetic RGB images of different sizes."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=s, dtype=np.uint8) for s in [(40, 40, 3), (64, 48, 3), (30, 90, 3), (32, 32, 3)]]


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a PostgreSQL server for the tests: ``$DERMASCAN_TEST_PG_URL``, else a throwaway one started here.

    Skips (with the reason) only when no server can be started.
    """
    given = os.environ.get(PG_URL_ENV, "").strip()
    if given:
        yield given
        return
    try:
        server = pg_server.start()
    except pg_server.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Each review-store test runs once per backend."""
    return request.param


@pytest.fixture
def new_db(backend, tmp_path, request):
    """``new_db(name)``: a fresh, empty review database on this test's backend, the same one for the same name.

    SQLite: a file under ``tmp_path``. PostgreSQL: a schema of its own on the test server (the URL sets
    ``search_path``), dropped after the test.
    """
    if backend == "sqlite":
        yield lambda name="reviews": tmp_path / f"{name}.sqlite3"
        return
    import sqlalchemy as sa

    admin = sa.create_engine(sa.make_url(request.getfixturevalue("postgres_url")).set(
        drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    made: dict[str, str] = {}

    def make(name: str = "reviews") -> str:
        if name not in made:
            schema = f"test_{uuid.uuid4().hex[:16]}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            made[name] = admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False)
        return made[name]

    yield make
    with admin.connect() as conn:
        for url in made.values():
            schema = sa.make_url(url).query["options"].split("=", 1)[1]
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.dispose()
