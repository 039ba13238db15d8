"""Blinded reading: each signed-in reader sees only their own saves, reviewers see all.

Everything runs against a real data directory and SQLite index in tmp_path. Dr Ada
saved image A twice and Dr Bo image B once (``_saved_data.save_three``); Dr Bo then
saves image A too. The callbacks of the Saved and Annotate pages run inside
``app.server.test_request_context(headers=...)``, where the sign-in proxy's header
is what the request carries; ``/api/saved`` goes through Flask's test client.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import dash
import numpy as np
import pytest
from _dash_helpers import (
    as_callback,
    console_errors,
    find_component,
    signed_in_by_cookie,
    text_of,
    wait_for,
)
from _dash_helpers import sign_in as cookie_sign_in
from _saved_data import (
    AI_A,
    HEADER,
    NOTE_A1,
    SHA_A,
    SHA_B,
    UTC,
    png_bytes,
    save_three,
    save_version,
)

from annotation_client import _readers, _shapes, create_app, ids
from annotation_client._config import ClientConfig
from annotation_client._signin import SignInError
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.usefixtures("an_app_exists")

USER = "X-Forwarded-User"
ADA, BO, CHAIR = ({USER: name} for name in ("Dr Ada", "Dr Bo", "Dr Chair"))
BLINDED = {"ANNOTATOR_HEADER": USER, "BLINDED_READING": True, "REVIEWERS": "Dr Chair"}


@pytest.fixture
def paths(data_dir) -> dict[str, str]:
    """Record paths: a1, a2 (Dr Ada), b1 (Dr Bo), a3 (Dr Bo, image A)."""
    found = save_three(data_dir)
    found["a3"] = save_version(data_dir, SHA_A, annotator="Dr Bo", ai=AI_A, final=AI_A,
                               label="benign", saved_at=dt.datetime(2024, 5, 3, tzinfo=UTC))
    return found


@pytest.fixture
def app(data_dir, paths):
    return create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"} | BLINDED)


@pytest.fixture
def saved():
    from annotation_client.pages import saved

    return saved


def _versions(rows) -> list[tuple[str, int, str]]:
    return [(row["image_sha256"][:2], row["version"], row["annotator"]) for row in rows]


# --------------------------------------------------------------------------- whose saves


def test_the_visible_annotator_is_the_reader_unless_off_or_a_reviewer():
    blinded = ClientConfig.load(BLINDED, environ={})
    assert _readers.visible_annotator(blinded, {USER: " Dr Ada "}) == "Dr Ada"
    assert _readers.visible_annotator(blinded, CHAIR) is None
    shared = ClientConfig.load({"ANNOTATOR_HEADER": USER}, environ={})
    assert _readers.visible_annotator(shared, ADA) is None
    assert _readers.visible_annotator(ClientConfig.load(environ={}), {}) is None


@pytest.mark.parametrize("headers", [{}, {USER: " "}, {USER: "Dr Ada, Dr Chair"}])
def test_a_request_the_proxy_named_nobody_in_sees_nothing(headers):
    # "Dr Ada, Dr Chair" is the browser's copy of the header joined to the proxy's.
    with pytest.raises(SignInError):
        _readers.visible_annotator(ClientConfig.load(BLINDED, environ={}), headers)


# --------------------------------------------------------------------------- /api/saved


def _api(app, headers, query=""):
    return app.server.test_client().get("/api/saved" + query, headers=headers)


def test_the_api_gives_a_reader_their_own_saves_only(app):
    body = _api(app, ADA).get_json()
    assert _versions(body["rows"]) == [("a1", 2, "Dr Ada"), ("a1", 1, "Dr Ada")]
    assert body["summary"]["annotators"] == 1 and body["summary"]["versions"] == 2
    bo = _api(app, BO, "?latest=1").get_json()
    # Latest of each image among Dr Bo's own: A v3 and B v1.
    assert _versions(bo["rows"]) == [("a1", 3, "Dr Bo"), ("b2", 1, "Dr Bo")]
    assert _versions(_api(app, ADA, "?annotator=Dr%20Ada").get_json()["rows"]) == [
        ("a1", 2, "Dr Ada"), ("a1", 1, "Dr Ada")]


def test_a_readers_latest_is_their_own_newest_not_the_images(app):
    # Image A's newest version is Dr Bo's v3; Dr Ada's latest of A is still her v2.
    assert _versions(_api(app, ADA, "?latest=1").get_json()["rows"]) == [("a1", 2, "Dr Ada")]
    label = _api(app, ADA, "?latest=1&label=malignant").get_json()["rows"]
    assert _versions(label) == [("a1", 2, "Dr Ada")]
    # The reviewer's latest is each image's: v3 by Dr Bo, and B v1.
    assert _versions(_api(app, CHAIR, "?latest=1").get_json()["rows"]) == [
        ("a1", 3, "Dr Bo"), ("b2", 1, "Dr Bo")]


def test_the_api_refuses_another_readers_saves_and_an_unnamed_request(app):
    other = _api(app, ADA, "?annotator=Dr%20Bo")
    assert other.status_code == 403
    assert other.get_json()["error"]["code"] == "forbidden"
    assert "only the annotations you saved" in other.get_json()["error"]["message"]
    nobody = _api(app, {})
    assert nobody.status_code == 401
    assert nobody.get_json()["error"]["code"] == "not_signed_in"
    assert USER in nobody.get_json()["error"]["message"]


def test_the_api_csv_of_a_reader_holds_their_rows_only(app):
    text = _api(app, BO, "?format=csv").get_data(as_text=True)
    lines = text.splitlines()
    assert lines[0] == HEADER
    assert [line.split(",")[:4] for line in lines[1:]] == [
        [SHA_A, "3", "2024-05-03T00:00:00Z", "Dr Bo"],
        [SHA_B, "1", "2024-05-01T12:00:00Z", "Dr Bo"],
    ]


def test_a_readers_api_and_csv_hold_no_other_readers_note_or_bi_rads(app):
    # Dr Ada's first version of image A holds her note and BI-RADS 3 (save_three).
    assert _api(app, ADA, "?assessment=3").get_json()["rows"][0]["note"] == NOTE_A1
    for query in ("", "?format=csv", "?assessment=3", "?assessment=3&format=csv"):
        answer = _api(app, BO, query).get_data(as_text=True)
        assert "fibroadenoma" not in answer and "oval" not in answer
    assert _api(app, BO, "?assessment=3").get_json()["rows"] == []
    assert _api(app, CHAIR, "?assessment=3").get_json()["rows"][0]["note"] == NOTE_A1


def test_a_reviewer_and_a_client_without_blinding_see_every_save(app, data_dir):
    assert len(_api(app, CHAIR).get_json()["rows"]) == 4
    assert _versions(_api(app, CHAIR, "?annotator=Dr%20Bo").get_json()["rows"]) == [
        ("a1", 3, "Dr Bo"), ("b2", 1, "Dr Bo")]
    shared = create_app({"DATA_DIR": data_dir, "ANNOTATOR_HEADER": USER})
    assert len(_api(shared, ADA).get_json()["rows"]) == 4
    assert _versions(_api(shared, ADA, "?latest=1").get_json()["rows"]) == [
        ("a1", 3, "Dr Bo"), ("b2", 1, "Dr Bo")]


def test_the_annotator_parameter_is_stripped_and_answers_are_not_cached(app):
    own = _api(app, ADA, "?annotator=%20Dr%20Ada%20")
    assert own.status_code == 200 and len(own.get_json()["rows"]) == 2
    # A shared cache between the browser and the client must not hand one reader's rows
    # to another: the answer depends on the sign-in header.
    assert own.headers["Cache-Control"] == "private, no-store"
    assert USER in own.headers["Vary"]


# --------------------------------------------------------------------------- Saved page


def _show(app, saved, headers, annotator=None, latest=False):
    with app.server.test_request_context("/_dash-update-component", headers=headers):
        return saved.show_saved(True, None, annotator, "__any__", latest)


def test_the_saved_page_shows_a_reader_their_own_saves_and_says_so(app, saved):
    data, _tooltips, summary, names, notes = _show(app, saved, BO)
    assert [(r["image"], r["version"], r["annotator"]) for r in data] == [
        ("left.png", 3, "Dr Bo"), ("study7/right.png", 1, "Dr Bo")]
    assert names == ["Dr Bo"]  # the filter offers no other reader's name
    assert text_of(summary).startswith("2 version(s) of 2 image(s) by 1 annotator(s).")
    assert text_of(notes) == _readers.BLINDED_NOTE
    # A request naming another reader (the dropdown never offers one) still gets their own.
    forged, *_ = _show(app, saved, BO, annotator="Dr Ada")
    assert [r["annotator"] for r in forged] == ["Dr Bo", "Dr Bo"]
    latest, *_ = _show(app, saved, ADA, latest=True)
    assert [(r["image"], r["version"]) for r in latest] == [("left.png", 2)]


def test_the_saved_page_of_a_reviewer_has_every_save_and_no_note(app, saved):
    data, _tooltips, _summary, names, notes = _show(app, saved, CHAIR)
    assert len(data) == 4 and names == ["Dr Ada", "Dr Bo"] and notes is None


def test_the_saved_page_shows_nothing_when_the_proxy_named_nobody(app, saved):
    data, tooltips, summary, names, alert = _show(app, saved, {})
    assert (data, tooltips, summary, names) == ([], [], None, [])
    assert "Blinded reading: no saves are shown." in text_of(alert)
    assert f"no {USER}" in text_of(alert)


def test_the_csv_download_of_a_reader_holds_their_rows_only(app, saved):
    with app.server.test_request_context("/_dash-update-component", headers=ADA):
        href = saved.csv_link("Dr Bo", "__any__", False)  # a forged filter
    assert href == "/api/saved?annotator=Dr+Ada&latest=0&format=csv"
    client = app.server.test_client()
    mine = client.get(href, headers=ADA).get_data(as_text=True)
    assert [line.split(",")[3] for line in mine.splitlines()[1:]] == ["Dr Ada", "Dr Ada"]
    # The layout's link, before any filter: the API keeps the reader to their own.
    with app.server.test_request_context("/saved", headers=ADA):
        first = find_component(saved.layout(), ids.SAVED_CSV_BUTTON).href
    mine = client.get(first, headers=ADA).get_data(as_text=True)
    assert [line.split(",")[3] for line in mine.splitlines()[1:]] == ["Dr Ada"]
    assert client.get(first).status_code == 401  # the proxy named nobody


# --------------------------------------------------------------------------- Annotate page

SQUARE = "M1,1L3,1L3,2L1,2Z"
META = {"sha256": "c3" * 32, "name": "scan.png", "width": 4, "height": 3}


def _save_paths(data_dir, annotator, paths, label, source=None):
    """Save ``paths`` of a 4 x 3 image as the page's Save does (the image's own SHA-256
    when ``source`` bytes are kept with it)."""
    from annotation_client._record import build_record

    meta = META if source is None else META | {"sha256": hashlib.sha256(source).hexdigest()}
    mask = _shapes.paths_to_mask(paths, (3, 4))
    record = build_record(image=meta, annotator=annotator, final_mask=mask, final_label=label,
                          saved_at=dt.datetime(2024, 6, 1, tzinfo=UTC))
    AnnotationStore(data_dir).save(
        meta["sha256"], svg=_shapes.paths_to_svg(paths, 4, 3), mask_png=png_bytes(mask),
        record=record, source=source, source_name=None if source is None else "scan.png",
    )
    return meta


def _previous_and_load(app, headers, meta=META):
    from annotation_client.pages import annotate

    with app.server.test_request_context("/_dash-update-component", headers=headers):
        style, text, _shown = annotate.show_previous_saves(meta, None, True)
        loaded, label, *_ = annotate.load_saved(1, meta)
    return style, text, loaded, label


def _nothing_loaded(loaded) -> bool:
    """No outline given: a failed load answers only that it failed (annotate.load_saved)."""
    return loaded is dash.no_update or (
        set(loaded) == {"image", "failed", "at", "signature"} and loaded["failed"] is True)


def test_a_reader_is_not_told_of_nor_given_another_readers_outline(app, data_dir):
    _save_paths(data_dir, "Dr Ada", [SQUARE], "malignant")
    style, text, loaded, label = _previous_and_load(app, BO)
    assert style == {"display": "none"} and text is None
    assert _nothing_loaded(loaded) and label is dash.no_update
    with app.server.test_request_context("/_dash-update-component", headers=BO):
        from annotation_client.pages import annotate

        alert = annotate.load_saved(1, META)[4]
    assert "you saved no version of this image" in text_of(alert)
    assert "malignant" not in text_of(alert)


def test_a_reader_revises_their_own_latest_not_the_images_latest(app, data_dir):
    _save_paths(data_dir, "Dr Bo", ["M0,0L2,0L2,2Z"], "benign")
    _save_paths(data_dir, "Dr Ada", [SQUARE], "malignant")  # v2, the image's latest
    style, text, loaded, label = _previous_and_load(app, BO)
    assert style == {}
    assert text.startswith("You saved this image before: v1 (1 of yours), 2024-06-01 00:00 UTC")
    assert text.endswith("final label benign.")
    assert loaded["version"] == 1 and label == "benign"
    # The reviewer, and a client without blinding, see the image's latest: Dr Ada's v2.
    _style, text, loaded, label = _previous_and_load(app, CHAIR)
    assert text.startswith("Saved before: v2 (of 2) by Dr Ada")
    assert (loaded["version"], label) == (2, "malignant")


def test_a_readers_own_damaged_latest_is_reported_to_them_not_hidden(data_dir):
    _save_paths(data_dir, "Dr Bo", ["M0,0L2,0L2,2Z"], "benign")
    _save_paths(data_dir, "Dr Bo", [SQUARE], "malignant")  # v2, Bo's latest
    # Started after the saves: its index learns at start-up that v2 is Dr Bo's.
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"} | BLINDED)
    record = AnnotationStore(data_dir).record_path(META["sha256"], 2)
    record.write_bytes(record.read_bytes()[:30])  # damaged since
    style, text, loaded, _label = _previous_and_load(app, BO)
    # Not v1 offered as Bo's latest, as when a damaged record named nobody.
    assert style == {} and text.startswith(
        "This image has saved versions, but the latest cannot be read")
    assert _nothing_loaded(loaded)
    # Nobody else is shown the damaged version as theirs.
    style, text, _loaded, _label = _previous_and_load(app, ADA)
    assert style == {"display": "none"} and text is None


def test_a_reader_revising_their_own_read_stays_independent_and_cannot_claim_anothers(
        app, data_dir):
    from annotation_client import _history
    from annotation_client.pages import annotate

    _save_paths(data_dir, "Dr Bo", ["M0,0L2,0L2,2Z"], "benign")  # v1
    _save_paths(data_dir, "Dr Ada", [SQUARE], "malignant")  # v2

    def save_after_loading(headers, versions):
        history = dict(_history.new_history({"paths": [SQUARE]}, image=META["sha256"]),
                       loaded_versions=versions)
        with app.server.test_request_context("/_dash-update-component", headers=headers):
            alert, _work = annotate.save(1, META, history, None, None, "benign", "", None,
                                         None, *[None] * len(annotate.DESCRIPTOR_OPTIONS))
        return text_of(alert)

    assert save_after_loading(BO, [1]).startswith("Saved.")
    record = AnnotationStore(data_dir).load_record(META["sha256"], 3)
    assert record["based_on"] == {"version": 1, "annotator": "Dr Bo", "readers": ["Dr Bo"]}
    # A request that names Dr Ada's v2, which Dr Bo cannot load, is refused.
    text = save_after_loading(BO, [2])
    assert text.startswith("Not saved.") and "Version 2, which this work revises, is not" in text
    assert "if the sign-in changed since it was loaded, open the image again" in text
    # Named as what it is: another reader's version, not one missing from the folder.
    assert "under blinded reading you may load your own only" in text
    assert "data folder" not in text
    assert AnnotationStore(data_dir).next_version(META["sha256"]) == 4


def test_without_a_named_reader_nothing_saved_is_shown_or_loaded(app, data_dir):
    _save_paths(data_dir, "Dr Ada", [SQUARE], "malignant")
    style, text, loaded, _label = _previous_and_load(app, {})
    assert style == {"display": "none"} and text is None and _nothing_loaded(loaded)


def test_the_worklist_status_and_next_are_each_readers_own(data_dir, tmp_path):


    from annotation_client import ids
    from annotation_client.pages import annotate

    folder = tmp_path / "worklist"
    folder.mkdir()
    for n, name in enumerate(("one.png", "two.png")):
        data = png_bytes(np.add.outer(np.arange(12), np.arange(16)) % (3 + n) == 0)
        (folder / name).write_bytes(data)
        if name == "one.png":
            _save_paths(data_dir, "Dr Ada", [SQUARE], "benign", source=data)
    app = create_app({"DATA_DIR": data_dir, "WORKLIST_DIR": folder} | BLINDED)

    def listing(headers):
        with app.server.test_request_context("/_dash-update-component", headers=headers):
            options, note = annotate.list_worklist(True, None, None, None)
        return [o["label"] for o in options], text_of(note)

    def next_entry(headers):
        request, *_rest, note = as_callback(
            lambda: annotate.request_entry(None, 1, None, None, "", None),
            f"{ids.WORKLIST_NEXT}.n_clicks", app=app, headers=headers, value=1)
        return request if request is dash.no_update else request["path"], text_of(note)

    assert listing(ADA) == (["one.png — saved v1", "two.png — not annotated"],
                            "2 image(s) · 1 not annotated by you")
    assert listing(BO) == (["one.png — not annotated", "two.png — not annotated"],
                           "2 image(s) · 2 not annotated by you")
    assert listing(CHAIR) == (["one.png — saved v1", "two.png — not annotated"],
                              "2 image(s) · 1 not annotated")
    assert listing({})[0] == [] and f"no {USER}" in listing({})[1]
    assert next_entry(BO)[0] == "one.png"  # Dr Ada's save is not Dr Bo's
    assert next_entry(ADA)[0] == "two.png"
    _save_paths(data_dir, "Dr Ada", [SQUARE], "benign",
                source=(folder / "two.png").read_bytes())
    assert next_entry(ADA) == (
        dash.no_update, "Every other image of the worklist has a saved annotation of yours.")
    assert next_entry(CHAIR)[1] == "Every other image of the worklist has a saved annotation."


def test_a_blinded_tab_keeps_no_saved_work_in_its_session_storage(data_dir):
    from dash import dcc

    from annotation_client import ids
    from annotation_client.pages import annotate

    def storage(settings):
        app = create_app({"DATA_DIR": data_dir} | settings)
        with app.server.test_request_context("/"):
            store = find_component(annotate.layout(), ids.SAVED_WORK)
        assert isinstance(store, dcc.Store)
        return store.storage_type

    # The snapshot holds the last save's outline, label and note: the next reader
    # signed in to the same tab could read it from the browser's session storage.
    assert storage(BLINDED) == "memory"
    assert storage({"ANNOTATOR_HEADER": USER}) == "session"


def test_a_kept_upload_opens_only_for_a_reader_who_saved_it(app, data_dir):
    from annotation_client.pages import annotate

    source = png_bytes(np.add.outer(np.arange(12), np.arange(16)) % 3 == 0)  # 16 x 12
    meta = _save_paths(data_dir, "Dr Ada", [SQUARE], "benign", source=source)

    def opened(headers):
        with app.server.test_request_context("/_dash-update-component", headers=headers):
            out = annotate.open_kept_upload({"saved": meta["sha256"]}, None)
        return out[0], text_of(out[4]) if out[4] is not None else None

    shown, alert = opened(ADA)
    assert shown["sha256"] == meta["sha256"] and alert is None
    assert opened(CHAIR)[0]["sha256"] == meta["sha256"]
    shown, alert = opened(BO)
    assert shown is dash.no_update
    assert "No copy of this image was kept with your annotations" in alert
    shown, alert = opened({})
    assert shown is dash.no_update and f"no {USER}" in alert


# --------------------------------------------------------------------------- in the browser


@pytest.mark.browser
def test_readers_and_a_reviewer_in_the_browser_see_what_they_may(dash_duo, tmp_path, data_dir,
                                                                 artifacts_dir):
    from selenium.webdriver.common.by import By

    from annotation_client import ids

    folder = tmp_path / "worklist"
    folder.mkdir()
    files = []
    for n, name in enumerate(("one.png", "two.png")):
        files.append(png_bytes(np.add.outer(np.arange(24), np.arange(32)) % (3 + n) == 0))
        (folder / name).write_bytes(files[-1])
    # Dr Ada and Dr Cy saved one.png, Dr Bo two.png, each as the page's Save writes it.
    # Dr Cy's outline is Dr Ada's moved 3 pixels right (20 of 35 + 35 pixels shared).
    from annotation_client._record import build_record

    for annotator, data, left, label in (("Dr Ada", files[0], 5, "benign"),
                                         ("Dr Bo", files[1], 5, "benign"),
                                         ("Dr Cy", files[0], 8, "malignant")):
        meta = META | {"sha256": hashlib.sha256(data).hexdigest(), "width": 32, "height": 24}
        mask = np.zeros((24, 32), bool)
        mask[5:10, left : left + 7] = True
        AnnotationStore(data_dir).save(
            meta["sha256"], svg=_shapes.paths_to_svg([SQUARE], 32, 24),
            mask_png=png_bytes(mask),
            record=build_record(image=meta, annotator=annotator, final_mask=mask,
                                final_label=label,
                                saved_at=dt.datetime(2024, 6, 1, tzinfo=UTC)),
        )
    app = create_app({"DATA_DIR": data_dir, "WORKLIST_DIR": folder, "AUTO_SEGMENT": False,
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"} | BLINDED)
    signed_in_by_cookie(app)
    dash_duo.start_server(app)
    driver = dash_duo.driver

    def sign_in(name, path="/"):
        cookie_sign_in(driver, name)
        driver.get(dash_duo.server_url + path)

    def worklist_count():
        found = driver.find_elements(By.ID, "worklist-count")
        return found[0].text if found else ""

    def saved_rows():
        cells = driver.find_elements(
            By.CSS_SELECTOR, f"#{ids.SAVED_TABLE} td[data-dash-column=annotator]"
        )
        return [cell.text for cell in cells]

    def summary():
        return driver.find_element(By.ID, ids.SAVED_SUMMARY).text

    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    for name, todo in (("Dr Bo", 1), ("Dr Cy", 1), ("Dr Di", 2), ("Dr Chair", 0)):
        sign_in(name)
        expected = f"2 image(s) · {todo} not annotated" + ("" if name == "Dr Chair" else " by you")
        wait_for(dash_duo, lambda e=expected: worklist_count() == e, 20,
                 f"{name}'s worklist says {worklist_count()!r}, not {expected!r}")
        field = driver.find_element(By.ID, ids.ANNOTATOR)
        assert field.get_attribute("value") == name and not field.is_enabled()

    sign_in("Dr Bo", "/saved")
    wait_for(dash_duo, lambda: summary().startswith("1 version(s)"), 20, "Dr Bo's table")
    assert saved_rows() == ["Dr Bo"]
    assert _readers.BLINDED_NOTE in driver.find_element(By.ID, ids.SAVED_ALERT).text
    # Reader agreement would show the others' work: a reader is not offered it (checked
    # once its callback has run: the button starts hidden).
    def button_classes():
        return driver.find_element(By.ID, ids.SAVED_AGREEMENT_BUTTON).get_attribute("class")

    wait_for(dash_duo, lambda: "agreement-unchecked" not in button_classes(), 20,
             "the Reader agreement button's callback did not run")
    assert not driver.find_element(By.ID, ids.SAVED_AGREEMENT_BUTTON).is_displayed()
    # Nor reading progress, which shows what the others read.
    progress = driver.find_element(By.ID, ids.SAVED_PROGRESS_BUTTON)
    wait_for(dash_duo, lambda: "progress-unchecked" not in progress.get_attribute("class"), 20,
             "the Reading progress button's callback did not run")
    assert not progress.is_displayed()
    driver.save_screenshot(str(artifacts_dir / "01-bo-saved.png"))

    sign_in("Dr Di", "/saved")
    wait_for(dash_duo, lambda: summary() == "No saved annotation matches.", 20, "Dr Di's table")
    assert saved_rows() == []

    sign_in("Dr Chair", "/saved")
    # Each image's latest version (the page's default): Dr Cy's of one.png, Dr Bo's two.png.
    wait_for(dash_duo, lambda: summary().startswith("2 version(s) of 2 image(s) by 2"), 20,
             "the reviewer's table")
    assert sorted(saved_rows()) == ["Dr Bo", "Dr Cy"]
    assert _readers.BLINDED_NOTE not in driver.find_element(By.ID, ids.SAVED_ALERT).text
    button = driver.find_element(By.ID, ids.SAVED_AGREEMENT_BUTTON)
    wait_for(dash_duo, button.is_displayed, 20, "the reviewer is not offered reader agreement")
    progress = driver.find_element(By.ID, ids.SAVED_PROGRESS_BUTTON)
    wait_for(dash_duo, progress.is_displayed, 20, "the reviewer is not offered reading progress")
    button.click()
    agreement = wait_for(dash_duo, lambda: driver.find_element(By.ID, "agreement-summary"), 20)
    assert agreement.text == (
        "1 image(s) read by two or more of 2 reader(s), 1 pair(s) of reads. "
        "Outlines: mean Dice 0.571 (median 0.571) over 1 pair(s), 0 of them both empty. "
        "Final labels: the same in 0% of the 1 pair(s) that both gave one; "
        "Fleiss' kappa -1.00."
    )
    cells = driver.find_elements(By.CSS_SELECTOR, "#agreement-table tbody td")
    assert [cell.text for cell in cells] == ["Dr Ada · Dr Cy", "1", "0.571", "1", "0%", "0.00"]
    driver.save_screenshot(str(artifacts_dir / "02-chair-saved.png"))
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
