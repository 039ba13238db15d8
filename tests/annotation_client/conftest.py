"""Fixtures shared by the tests of the annotation client.

Fixtures
--------
an_app_exists
    Module-scoped: creates one app before the module's tests. Dash refuses
    ``register_page`` before any app exists, so a test that imports a page module
    (``annotation_client.pages.saved``, ``.annotate``) first would fail when its file
    runs alone (``-k``). Opt in with ``pytestmark = pytest.mark.usefixtures("an_app_exists")``.
data_dir
    ``tmp_path / "data"``, the client's DATA_DIR (a test module may define its own).
annotate
    The Annotate page's module, imported once an app exists (use with ``an_app_exists``).
saved_paths
    The three versions of :func:`_saved_data.save_three`, saved into ``data_dir`` before
    any app starts; ``{"a1" | "a2" | "b1": record path}``.
psycopg_installed
    Skips (fails under ``CI``) when psycopg 3, the ``postgres`` extra, is missing.
postgres
    Session-scoped: a throwaway PostgreSQL server (:class:`_postgres.Cluster`), started
    on first use from the newest ``/usr/lib/postgresql/*/bin`` and stopped at the end.
    Skipped with the reason when the server programs or psycopg are missing; under
    ``CI`` that fails instead, because CI installs them (``scripts/install.sh``).
postgres_url
    SQLAlchemy URL (``postgresql+psycopg://...``) of an empty database on that server:
    its schema is dropped and recreated before each test that asks for it.
db_url
    Parametrised over both databases: an empty SQLite file's URL, then ``postgres_url``.

Builders and constants (masks, SHAs, ``save_version``) live in ``_saved_data.py``, and
Dash helpers in ``_dash_helpers.py``: import them by name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import _postgres
import pytest
from _saved_data import save_three

from annotation_client import create_app


@pytest.fixture(scope="module")
def an_app_exists(tmp_path_factory):
    create_app({"DATA_DIR": tmp_path_factory.mktemp("first-app")})


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def annotate():
    from annotation_client.pages import annotate

    return annotate


@pytest.fixture
def saved_paths(data_dir) -> dict[str, str]:
    return save_three(data_dir)


@pytest.fixture(scope="session")
def psycopg_installed(skip_or_fail) -> None:
    if importlib.util.find_spec("psycopg") is None:
        skip_or_fail("psycopg is not installed: pip install -e '.[postgres]' (make install does)")


@pytest.fixture(scope="session")
def postgres(skip_or_fail, psycopg_installed) -> Iterator[_postgres.Cluster]:
    bindir = _postgres.find_bindir()
    if bindir is None:
        skip_or_fail(
            f"no PostgreSQL server programs (initdb, pg_ctl) in {_postgres.DEBIAN_ROOT}/*/bin "
            "or on PATH: install the Debian package postgresql (`make install-all` does)"
        )
    _postgres.stop_abandoned(bindir)  # servers of sessions killed before their teardown
    cluster = _postgres.start_cluster(bindir)  # a failure here is an error, not a skip
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_url(postgres) -> str:
    postgres.reset()
    return postgres.url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """URL of an empty index database: a SQLite file, or the test server's database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite3'}"
    return request.getfixturevalue("postgres_url")
