"""A locked index costs a save one wait, and never under the image's folder lock.

A save uses the index three times (the annotator's name, the image's highest version,
its row); with the SQLite file locked by another process each waited the whole lock
timeout (3 x 15 s), one of them holding the image's folder lock, so every other save of
that image waited too. The wait is shortened here (``SQLITE_WAIT_S``); what is counted
is how many times the database was found locked.
"""

from __future__ import annotations

import fcntl
import sqlite3

import pytest
import sqlalchemy as sa
from _dash_helpers import open_work, text_of

from annotation_client import AnnotationStore, _database, create_app
from annotation_client._database import AnnotationIndex, default_url
from annotation_client._storage import mark_data_folder

SHA = "0123456789abcdef" * 4

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def short_wait(monkeypatch):
    monkeypatch.setattr(_database, "SQLITE_WAIT_S", 0.3)


def _count_locked(index) -> list:
    """The "database is locked" errors the index's engine meets, as they happen."""
    seen = []

    def handle(context):
        if "locked" in str(context.original_exception):
            seen.append(context.original_exception)

    sa.event.listen(index.engine, "handle_error", handle)
    return seen


class _Locked:
    """Another process's exclusive transaction on a SQLite file, while the with runs."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc):
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _record(n):
    import datetime as dt

    import numpy as np

    from annotation_client import build_record

    final = np.zeros((4, 6), bool)
    final[1:3, 2:5] = True
    return build_record(
        image={"sha256": SHA, "name": "scan.png", "width": 6, "height": 4},
        annotator="Ada", final_mask=final, final_label="benign",
        saved_at=dt.datetime(2024, 3, 4, 5, 6, n, tzinfo=dt.UTC),
    )


def test_a_save_waits_for_a_locked_index_once_and_not_under_the_folder_lock(tmp_path,
                                                                            short_wait):
    data = tmp_path / "data"
    data.mkdir()
    index = AnnotationIndex(default_url(data))
    store = AnnotationStore(data, index=index, mark=mark_data_folder(data))
    assert store.save(SHA, svg="<svg/>", mask_png=b"m", record=_record(1)).indexed is True
    # While the index is asked, no other save of the image is kept waiting.
    held, real_max = [], index.max_version

    def max_version(sha):
        with open(data / SHA / ".lock", "a+b") as other:
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.append(True)
            else:
                held.append(False)
                fcntl.flock(other.fileno(), fcntl.LOCK_UN)
        return real_max(sha)

    index.max_version = max_version
    locked = _count_locked(index)
    with _Locked(data / "index.sqlite3"):
        saved = store.save(SHA, svg="<svg/>", mask_png=b"m", record=_record(2))
    assert (saved.version, saved.indexed) == (2, False)
    assert held == [False]
    assert len(locked) == 1  # the highest version's lookup; the row was not tried again
    # The next save tries again (and the next listing catches up).
    assert store.save(SHA, svg="<svg/>", mask_png=b"n", record=_record(3)).indexed is True
    index.recheck_damaged(data)
    assert sorted(row["version"] for row in index.query()) == [1, 2, 3]


def test_a_save_from_the_page_waits_for_a_locked_index_once(tmp_path, short_wait, annotate):
    data = tmp_path / "data"
    app = create_app({"DATA_DIR": data, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    index = app.server.config["SONOTRACE_INDEX"]
    locked = _count_locked(index)
    meta, history, image_data = open_work()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    with _Locked(data / "index.sqlite3"):
        with app.server.test_request_context("/_dash-update-component", method="POST"):
            alert, _work = annotate.save(1, meta, history, None, None, "benign", "", "Dr Ada",
                                         image_data, *blank)
    text = text_of(alert)
    assert text.startswith("Saved.")
    assert "could not be checked against the names saved before" in text
    assert "the Saved page's index could not be updated" in text
    # The annotator's name was the one wait: not the highest version, not the row.
    assert len(locked) == 1
    assert (data / meta["sha256"] / "v001.json").is_file()
