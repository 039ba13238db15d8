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

Builders and constants (masks, SHAs, ``save_version``) live in ``_saved_data.py``, and
Dash helpers in ``_dash_helpers.py``: import them by name.
"""

from __future__ import annotations

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
