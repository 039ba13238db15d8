"""Reading progress: per reader and per study, from hand-made saves in a real index.

Each version is saved as the Annotate page saves it (``_saved_data.save_version``) into a
data directory in tmp_path, indexed by a real :class:`AnnotationIndex` (SQLite; the
counts also on PostgreSQL through ``db_url``). The study of :func:`study`:

- image A: Dr Ada v1 benign, Dr Bo v2 malignant: two reads that disagree, nothing
  adjudicated;
- image B: Dr Ada v1 benign, Dr Bo v2 benign *revising Dr Ada's v1*: no read of Dr Bo's,
  so one read;
- image C: Dr Bo v1 normal, Dr Cy v2 benign, Dr Chair v3 normal revising Dr Cy's v2: two
  reads whose labels differ, but the latest version adjudicated them.
"""

from __future__ import annotations

import datetime as dt
import doctest
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from _saved_data import SHA_A, SHA_B, UTC, png_bytes, save_version
from dash import html

from annotation_client import _agreement, _export, _progress, create_app
from annotation_client._database import AnnotationIndex, default_url
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.usefixtures("an_app_exists")

SHA_C = "c3" * 32
USER = "X-Forwarded-User"
BLINDED = {"ANNOTATOR_HEADER": USER, "BLINDED_READING": True, "REVIEWERS": "Dr Chair"}


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2024, 6, day, hour, tzinfo=UTC)


def revising(version: int, annotator: str) -> dict:
    """``based_on`` of a version loaded to revise ``annotator``'s ``version``."""
    return {"version": version, "annotator": annotator, "readers": [annotator]}


def save_study(data_dir, index=None) -> dict[str, str]:
    """The study of the module docstring; returns each version's record path."""
    def save(sha, annotator, label, when, **kwargs):
        return save_version(data_dir, sha, annotator=annotator, label=label, saved_at=when,
                            index=index, **kwargs)

    return {
        "a1": save(SHA_A, "Dr Ada", "benign", at(1)),
        "a2": save(SHA_A, "Dr Bo", "malignant", at(2)),
        "b1": save(SHA_B, "Dr Ada", "benign", at(1, 10)),
        "b2": save(SHA_B, "Dr Bo", "benign", at(3), based_on=revising(1, "Dr Ada")),
        "c1": save(SHA_C, "Dr Bo", "normal", at(2, 10)),
        "c2": save(SHA_C, "Dr Cy", "benign", at(4)),
        "c3": save(SHA_C, "Dr Chair", "normal", at(5), based_on=revising(2, "Dr Cy")),
    }


def reader(name, read, saved, versions, last, left_out=0) -> dict:
    return {"annotator": name, "read": read, "saved": saved, "versions": versions,
            "last_saved_at": last, "left_out": left_out}


#: The study's progress, counted by hand.
EXPECTED = {
    "images": 3, "read": 3, "unread": 0, "read_by_two_or_more": 2, "disagreed": 1,
    "left_out": 0, "outside_worklist": None, "worklist": None,
    "readers": [
        reader("Dr Ada", 2, 2, 2, "2024-06-01T10:00:00Z"),
        # Three images saved, but B only as a revision of Dr Ada's: two reads.
        reader("Dr Bo", 2, 3, 3, "2024-06-03T09:00:00Z"),
        reader("Dr Chair", 0, 1, 1, "2024-06-05T09:00:00Z"),  # adjudicated only
        reader("Dr Cy", 1, 1, 1, "2024-06-04T09:00:00Z"),
    ],
}


@pytest.fixture
def study(data_dir) -> dict[str, str]:
    return save_study(data_dir)


def _cut_short(record) -> None:
    """Truncate a record file inside its annotator's name: it no longer parses."""
    whole = Path(record).read_bytes()
    Path(record).write_bytes(whole[: whole.index(b'"annotator": "') + 17])


# --------------------------------------------------------------------------- the counts


def test_the_docstring_examples_of_the_reused_rules_hold():
    assert doctest.testmod(_export).failed == 0
    assert doctest.testmod(_agreement).failed == 0


def test_the_study_counted_from_the_index_as_by_hand(db_url, data_dir):
    index = AnnotationIndex(db_url)
    save_study(data_dir, index)
    try:
        assert _progress.index_progress(index, AnnotationStore(data_dir)) == EXPECTED
    finally:
        index.dispose()


def test_the_images_read_twice_are_those_reader_agreement_compares(data_dir, study):
    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    progress = _progress.index_progress(index, store)
    agreement = _agreement.index_agreement(index, store)
    assert progress["read_by_two_or_more"] == agreement["images"] == 2
    index.dispose()


def test_a_revision_of_anothers_version_is_no_read_until_the_reader_reads_it_alone(data_dir,
                                                                                   study):
    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    # Dr Cy revises Dr Bo's revision of Dr Ada's B: still no read of B by Dr Cy, and
    # the latest version adjudicated, whatever the labels.
    save_version(data_dir, SHA_B, annotator="Dr Cy", label="malignant", saved_at=at(6),
                 based_on={"version": 2, "annotator": "Dr Bo", "readers": ["Dr Ada", "Dr Bo"]},
                 index=index)
    result = _progress.index_progress(index, store)
    assert (result["read_by_two_or_more"], result["disagreed"]) == (2, 1)
    assert result["readers"][3] == reader("Dr Cy", 1, 2, 2, "2024-06-06T09:00:00Z")
    # Then he saves B from the AI's outline, on his own: now a read, and B has two that
    # disagree (Dr Ada benign, Dr Cy normal; Dr Bo's benign), adjudicated by nothing.
    save_version(data_dir, SHA_B, annotator="Dr Cy", label="normal", saved_at=at(7),
                 index=index)
    result = _progress.index_progress(index, store)
    assert (result["read_by_two_or_more"], result["disagreed"]) == (3, 2)
    assert result["readers"][3] == reader("Dr Cy", 2, 2, 3, "2024-06-07T09:00:00Z")
    index.dispose()


@pytest.mark.parametrize("rebuilt", [False, True], ids=["old-index", "rebuilt-index"])
def test_a_damaged_record_is_no_read_and_is_counted_apart(data_dir, study, rebuilt):
    """Dr Cy's C v2 damaged: C has one read (Dr Bo's), and the damaged version is left
    out, Dr Cy's when the index knew it as his before. Restored, it counts again."""
    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    whole = Path(study["c2"]).read_bytes()
    _cut_short(study["c2"])
    if rebuilt:
        index.dispose()
        (data_dir / "index.sqlite3").unlink()
        index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    result = _progress.index_progress(index, store)
    cy = [] if rebuilt else [reader("Dr Cy", 0, 1, 1, "2024-06-04T09:00:00Z", left_out=1)]
    assert result == EXPECTED | {
        "read_by_two_or_more": 1, "left_out": 1,
        "readers": EXPECTED["readers"][:3] + cy,
    }
    # Restored from a backup: read again before counting, without a sync.
    Path(study["c2"]).write_bytes(whole)
    assert _progress.index_progress(index, store) == EXPECTED
    index.dispose()


def _png(seed: int) -> bytes:
    return png_bytes(np.add.outer(np.arange(12), np.arange(16)) % (3 + seed) == 0)


def test_with_a_worklist_its_images_are_counted_each_once(tmp_path, data_dir):
    """Five files: one.png and its copy (one image), two.png, never.png (no save) and
    big.png, over the upload limit. Dr Ada read one and two, Dr Bo one; Dr Cy's upload
    is in no worklist file and counts apart."""
    folder = tmp_path / "worklist"
    (folder / "study").mkdir(parents=True)
    files = {"one.png": _png(0), "study/copy of one.png": _png(0), "two.png": _png(1),
             "never.png": _png(2), "big.png": b"\x89PNG" + bytes(5000)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    index = AnnotationIndex(default_url(data_dir))
    for sha_of, annotator, day in (("one.png", "Dr Ada", 1), ("one.png", "Dr Bo", 2),
                                   ("two.png", "Dr Ada", 3)):
        save_version(data_dir, sha[sha_of], annotator=annotator, label="benign",
                     worklist_path=sha_of, saved_at=at(day), index=index)
    save_version(data_dir, SHA_C, annotator="Dr Cy", label="benign", saved_at=at(4),
                 index=index)
    result = _progress.index_progress(index, AnnotationStore(data_dir), folder, max_bytes=4000)
    assert result == {
        "images": 3, "read": 2, "unread": 1, "read_by_two_or_more": 1, "disagreed": 0,
        "left_out": 0, "outside_worklist": 1,
        "worklist": {"files": 5, "found": 5, "too_large": 1, "truncated": False},
        "readers": [reader("Dr Ada", 2, 2, 2, "2024-06-03T09:00:00Z"),
                    reader("Dr Bo", 1, 1, 1, "2024-06-02T09:00:00Z")],
    }
    index.dispose()


def test_nothing_saved_yet_counts_the_worklist_as_unread():
    assert _progress.reading_progress([], {"x" * 64, "y" * 64}) == {
        "images": 2, "read": 0, "unread": 2, "read_by_two_or_more": 0, "disagreed": 0,
        "left_out": 0, "outside_worklist": 0, "readers": []}
    assert _progress.reading_progress([])["images"] == 0


# --------------------------------------------------------------------------- GET /api/progress


def _client(data_dir, **settings):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"} | settings)
    return app.server.test_client()


def test_the_api_gives_the_progress_as_json(data_dir, study):
    response = _client(data_dir).get("/api/progress")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == EXPECTED
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("query", ["annotator=Dr%20Ada", "worklist=0&x=1"])
def test_a_parameter_is_refused_not_ignored(data_dir, study, query):
    client = _client(data_dir)
    response = client.get(f"/api/progress?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"].startswith("unknown parameter ")
    assert error["message"].endswith("for /api/progress: it takes no parameter")


def test_an_unknown_api_path_names_the_endpoint(data_dir):
    message = _client(data_dir).get("/api/progres").get_json()["error"]["message"]
    assert message.endswith("GET /api/saved, GET /api/saved/<image_sha256>/<version>/dicom-seg, "
                            "GET /api/saved/<image_sha256>/<version>/dicom-sr, "
                            "GET /api/saved/<image_sha256>/<version>/svg, "
                            "GET /api/saved/<image_sha256>/<version>/mask, "
                            "GET /api/agreement and GET /api/progress")


def test_under_blinded_reading_only_a_reviewer_gets_the_progress(data_dir, study):
    client = _client(data_dir, **BLINDED)
    ada = client.get("/api/progress", headers={USER: "Dr Ada"})
    assert ada.status_code == 403 and ada.get_json()["error"]["code"] == "forbidden"
    assert "Reading progress shows other readers' work" in ada.get_json()["error"]["message"]
    nobody = client.get("/api/progress")
    assert nobody.status_code == 401 and nobody.get_json()["error"]["code"] == "not_signed_in"
    chair = client.get("/api/progress", headers={USER: "Dr Chair"})
    assert chair.status_code == 200 and chair.get_json() == EXPECTED


def test_an_unreadable_index_is_a_503_and_an_alert(tmp_path, data_dir, caplog):
    from _dash_helpers import text_of

    from annotation_client.pages import saved

    (tmp_path / "blocker").write_text("a regular file, not a folder")
    app = create_app({"DATA_DIR": data_dir,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/blocker/index.sqlite3"})
    response = app.server.test_client().get("/api/progress")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_unavailable"
    assert str(tmp_path) not in response.get_data(as_text=True)
    with app.server.test_request_context("/_dash-update-component"):
        alert = saved.show_progress(1)
    assert text_of(alert).startswith("No reading progress. the annotation index could not")
    assert str(tmp_path) not in text_of(alert)
    assert any("reading progress" in r.getMessage() and str(tmp_path) in r.getMessage()
               for r in caplog.records)


def test_a_worklist_gone_since_the_start_is_a_503(tmp_path, data_dir, study, caplog):
    from _dash_helpers import text_of

    from annotation_client.pages import saved

    folder = tmp_path / "worklist"
    folder.mkdir()
    (folder / "one.png").write_bytes(_png(0))
    app = create_app({"DATA_DIR": data_dir, "WORKLIST_DIR": folder})
    client = app.server.test_client()
    assert client.get("/api/progress").get_json()["worklist"]["files"] == 1
    shutil.rmtree(folder)
    response = client.get("/api/progress")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "worklist_unavailable"
    assert str(folder) not in response.get_data(as_text=True)
    with app.server.test_request_context("/_dash-update-component"):
        assert text_of(saved.show_progress(1)) == (
            "No reading progress. The worklist folder (SONOTRACE_WORKLIST_DIR) cannot be "
            "listed; the client's log says why.")
    # The log says why, the folder named.
    logged = [r.getMessage() for r in caplog.records if "cannot be listed" in r.getMessage()]
    assert len(logged) == 2 and all(str(folder) in message for message in logged)


# --------------------------------------------------------------------------- Saved page


def _page(data_dir, headers=None, **settings):
    """(button classes, what a click shows) on the Saved page for a request with ``headers``."""
    from annotation_client.pages import saved

    app = create_app({"DATA_DIR": data_dir} | settings)
    with app.server.test_request_context("/_dash-update-component", headers=headers or {}):
        return saved.show_progress_button(True), saved.show_progress(1)


def _rows_of(shown) -> list[list[str]]:
    from _dash_helpers import find_component, text_of

    table = find_component(html.Div(shown), "progress-table")
    return [[text_of(cell.children) for cell in row.children]
            for row in table.children[1].children]


#: The table of the study, row by row.
TABLE = [["Dr Ada", "2", "2", "2", "2024-06-01 10:00:00"],
         ["Dr Bo", "2", "3", "3", "2024-06-03 09:00:00"],
         ["Dr Chair", "0", "1", "1", "2024-06-05 09:00:00"],
         ["Dr Cy", "1", "1", "1", "2024-06-04 09:00:00"]]


def test_the_saved_page_shows_the_progress_to_whoever_sees_everything(data_dir, study):
    from _dash_helpers import find_component, text_of

    from annotation_client.pages import saved

    classes, shown = _page(data_dir)
    assert classes == saved.PROGRESS_OFFERED and "d-none" not in classes
    assert text_of(find_component(html.Div(shown), "progress-summary")).startswith(
        "3 image(s) saved: 3 read by at least one reader, 2 by two or more, 0 not read yet. "
        "1 image(s) with readers' final labels that differ and no version adjudicating them.")
    assert _rows_of(shown) == TABLE
    classes, shown = _page(data_dir, {USER: "Dr Chair"}, **BLINDED)
    assert classes == saved.PROGRESS_OFFERED and _rows_of(shown) == TABLE


def test_a_blinded_reader_is_neither_offered_nor_given_the_progress(data_dir, study):
    from _dash_helpers import text_of

    classes, shown = _page(data_dir, {USER: "Dr Ada"}, **BLINDED)
    assert "d-none" in classes and "progress-unchecked" not in classes
    assert "Reading progress shows other readers' work." in text_of(shown)
    assert "Dr Bo" not in text_of(shown)
    classes, shown = _page(data_dir, {}, **BLINDED)
    assert "d-none" in classes and f"no {USER}" in text_of(shown)


def test_the_view_says_what_it_does_not_count():
    from _dash_helpers import text_of

    from annotation_client.pages import saved

    rows = [{"image_sha256": "d" * 64, "version": 1, "annotator": "", "saved_at": "x",
             "final_label": None, "damaged": "Unterminated string"}]
    result = _progress.reading_progress(rows, {"d" * 64, "e" * 64}) | {
        "worklist": {"files": 5000, "found": 5003, "too_large": 2, "truncated": True}}
    text = text_of(saved.progress_view(result))
    assert text.startswith("2 image(s) in the worklist: 0 read by at least one reader, 0 by "
                           "two or more, 2 not read yet. ")
    assert "No reader has saved any of these images yet." in text
    assert "1 damaged version(s) may have been a reader's read and are not counted" in text
    assert "2 worklist file(s) are over the upload limit" in text
    assert "Only the first 5000 of the worklist's 5003 files are counted" in text
    assert "in no worklist file" not in text  # none outside
    assert "holds no image" not in text
    # A share that did not mount lists nothing: said, as every count is then 0.
    empty = _progress.reading_progress([], set()) | {
        "worklist": {"files": 0, "found": 0, "too_large": 0, "truncated": False}}
    assert "The worklist folder holds no image: is its share mounted?" in text_of(
        saved.progress_view(empty))


@pytest.mark.browser
def test_the_reading_progress_button_in_the_browser(dash_duo, data_dir, study, artifacts_dir):
    from _dash_helpers import click, console_errors, wait_for
    from selenium.webdriver.common.by import By

    from annotation_client import ids

    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "AUTO_SEGMENT": False})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")
    button = wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.SAVED_PROGRESS_BUTTON), 20)
    wait_for(dash_duo, button.is_displayed, 20, "Reading progress is not offered")
    agreement = driver.find_element(By.ID, ids.SAVED_AGREEMENT_BUTTON)
    # Beside Reader agreement: on its line, after it.
    assert agreement.is_displayed() and button.text == "Reading progress"
    assert button.location["y"] == agreement.location["y"]
    assert button.location["x"] > agreement.location["x"] + agreement.size["width"]
    click(driver, By.ID, ids.SAVED_PROGRESS_BUTTON)
    summary = wait_for(dash_duo, lambda: driver.find_element(By.ID, "progress-summary"), 20)
    assert summary.text.startswith(
        "3 image(s) saved: 3 read by at least one reader, 2 by two or more, 0 not read yet. "
        "1 image(s) with readers' final labels that differ and no version adjudicating them.")
    headers = driver.find_elements(By.CSS_SELECTOR, "#progress-table thead th")
    assert [h.text for h in headers] == ["Reader", "Images read", "Images saved", "Versions",
                                         "Last save (UTC)"]
    rows = driver.find_elements(By.CSS_SELECTOR, "#progress-table tbody tr")
    assert [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows] == TABLE
    driver.save_screenshot(str(artifacts_dir / "01-progress.png"))
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
