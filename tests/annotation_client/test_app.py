import io
import json
import re

import dash
import pytest
from _dash_helpers import as_callback, find_component

from annotation_client import create_app
from annotation_client._app import BOOTSTRAP_CSS
from annotation_client._signing import KEY_FILE
from annotation_client._storage import DATA_MARK

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def client(tmp_path):
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    return app.server.test_client()


def test_health_answers_json(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["model_server_url"] == "http://127.0.0.1:9"


def test_health_says_when_the_data_folder_went_away(tmp_path):
    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    data_dir.rename(tmp_path / "away")
    data_dir.mkdir()  # an empty mount point in its place
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert response.get_json()["data_folder"] == "is not the folder this client started on"
    data_dir.rmdir()
    (tmp_path / "away").rename(data_dir)  # back
    assert client.get("/health").get_json()["status"] == "ok"


@pytest.mark.parametrize("errno_name, why", [
    ("ENOSPC", "cannot be written (No space left on device)"),
    ("EROFS", "cannot be written (Read-only file system)"),
    ("EACCES", "cannot be written (Permission denied)"),
])
def test_health_says_when_the_data_folder_cannot_be_written(tmp_path, monkeypatch, caplog,
                                                            errno_name, why):
    # A disk full, a remount read-only after a disk error, permissions changed: the
    # folder is the one the client started on, and every save fails all the same.
    import errno
    import os

    from annotation_client import _storage

    monkeypatch.setattr(_storage, "WRITE_PROBE_S", 0.0)  # every check probes
    caplog.set_level("INFO", logger="annotation_client._storage")
    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/health").status_code == 200
    code = getattr(errno, errno_name)
    real_write = os.write
    if errno_name == "ENOSPC":
        # The file is made (an inode is free), its first page is not.
        def write(fd, data):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "write", write)
    else:
        def mkstemp(*args, **kwargs):
            raise OSError(code, os.strerror(code), str(data_dir / ".write-check-x"))

        monkeypatch.setattr(_storage.tempfile, "mkstemp", mkstemp)
    response = client.get("/health")
    monkeypatch.undo()
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and body["data_folder"] == why
    assert body["service"] == "annotation_client" and "version" in body
    assert f"the data folder {data_dir} {why}: saves fail" in caplog.text
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".write-check")] == []
    assert os.write is real_write
    monkeypatch.setattr(_storage, "WRITE_PROBE_S", 0.0)
    # Writable again: healthy again, without a restart.
    assert client.get("/health").get_json()["status"] == "ok"
    assert f"the data folder {data_dir} can be written again" in caplog.text


def test_the_write_probe_is_reused_between_checks(tmp_path, monkeypatch):
    from annotation_client import _storage

    made = []
    real = _storage.tempfile.mkstemp
    monkeypatch.setattr(_storage.tempfile, "mkstemp",
                        lambda *a, **k: made.append(1) or real(*a, **k))
    probe = _storage.WriteProbe(tmp_path, every_s=3600)
    assert [probe.problem() for _ in range(5)] == [None] * 5
    assert len(made) == 1  # frequent health checks cost one file a period
    assert list(tmp_path.iterdir()) == []
    assert _storage.WriteProbe(tmp_path / "gone").problem() == (
        "cannot be written (No such file or directory)")


def test_index_loads_nothing_from_outside(client):
    html = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, "the index page should reference its scripts and styles"
    external = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert external == []
    assert BOOTSTRAP_CSS in urls


def test_bootstrap_css_is_served_from_the_install(client):
    response = client.get(BOOTSTRAP_CSS)
    assert response.status_code == 200
    css = response.get_data(as_text=True)
    assert "Bootstrap  v5" in css[:200]
    assert ".btn-primary" in css
    assert client.get("/_sonotrace/vendor/bootstrap/../../../etc/passwd").status_code == 404


def test_every_script_the_page_needs_is_served_locally(client):
    html = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts
    for src in scripts:
        assert client.get(src).status_code == 200, src


def test_pages_are_discovered_and_the_navbar_links_them(client):
    paths = {page["path"] for page in dash.page_registry.values()}
    assert "/" in paths
    layout = json.dumps(client.get("/_dash-layout").get_json())
    assert "/learn" in paths
    assert '"href": "/"' in layout
    assert '"href": "/learn"' in layout
    modules = {page["module"].split(".")[-1] for page in dash.page_registry.values()}
    assert "not_found_404" in modules


def test_an_unknown_address_is_a_404_with_the_not_found_page(client):
    # Dash answers every path with its page shell: a stale bookmark or a mistyped link
    # was a 200, invisible to link checkers and monitoring (audit helper-503, 7).
    for path in ("/", "/saved", "/saved/", "/learn", "/?open=a.png"):
        assert client.get(path).status_code == 200, path
    for path in ("/nonexistent", "/saved/extra", "/404", "/learn.html"):
        response = client.get(path)
        assert response.status_code == 404, path
        # Still the shell, so the browser shows "Page not found" with a way back.
        assert response.mimetype == "text/html" and "_dash-config" in response.get_data(
            as_text=True)
    assert client.head("/nonexistent").status_code == 404
    # Routes that are not pages keep their own answers.
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/assets/favicon.ico").status_code == 200


def test_the_stable_ids_are_on_the_annotate_page(client, tmp_path):
    from annotation_client import ids

    app = create_app({"DATA_DIR": tmp_path})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        rendered = json.dumps(
            page["layout"]().to_plotly_json(), default=lambda o: o.to_plotly_json()
        )
    for name in (
        "IMAGE_UPLOAD",
        "ANNOTATION_GRAPH",
        "SEGMENT_BUTTON",
        "CLASSIFY_BUTTON",
        "SAVE_BUTTON",
        "FINAL_LABEL",
        "UNDO_BUTTON",
        "REDO_BUTTON",
        "VERTEX_DENSITY",
    ):
        value = getattr(ids, name)
        assert value == name.lower().replace("_", "-")
        assert f'"id": "{value}"' in rendered, value


def test_a_second_app_in_one_process_gets_the_callbacks_once(tmp_path):
    # Dash hands page callbacks to one app per process (each gunicorn worker builds
    # one); a test that builds several must still get each callback exactly once.
    create_app({"DATA_DIR": tmp_path})
    second = create_app({"DATA_DIR": tmp_path})
    client = second.server.test_client()
    dependencies = client.get("/_dash-dependencies").get_json()
    outputs = [d["output"] for d in dependencies]
    assert len(outputs) == len(set(outputs))
    assert any("outline-history.data" in o for o in outputs)


@pytest.mark.parametrize("setting", ["false", "true"])
def test_segment_on_open_follows_sonotrace_auto_segment(tmp_path, setting):
    from annotation_client import ids

    app = create_app({"DATA_DIR": tmp_path, "AUTO_SEGMENT": setting})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        switch = find_component(page["layout"](), ids.AUTO_SEGMENT)
    assert switch is not None
    assert switch.value is (setting == "true")


def _png_uri(seed):
    import base64
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_opening_another_image_clears_the_descriptors_of_the_last_one(tmp_path):
    from annotation_client._record import DESCRIPTOR_OPTIONS, MULTI_VALUED
    from annotation_client.pages import annotate

    app = create_app({"DATA_DIR": tmp_path})
    n = len(DESCRIPTOR_OPTIONS)
    with app.server.test_request_context("/"):
        first = annotate.open_upload(_png_uri(0), "a.png", None)
        again = annotate.open_upload(_png_uri(0), "a.png", first[0])
        other = annotate.open_upload(_png_uri(1), "b.png", first[0])
        broken = annotate.open_upload("data:image/png;base64,AAAA", "c.png", first[0])
    blank = [[] if name in MULTI_VALUED else "" for name in DESCRIPTOR_OPTIONS]
    assert list(other[-n:]) == blank
    assert other[5] is None and other[6] == ""  # final label and note too
    # The same image opened again, or a file that cannot be opened, keeps the work.
    assert all(v is dash.no_update for v in again[-n:])
    assert all(v is dash.no_update for v in broken[-n:])
    assert "Cannot open this file" in json.dumps(broken[4].to_plotly_json(), default=str)


def test_an_image_over_the_configured_pixel_limit_is_refused_at_open(tmp_path):
    # The client's limit is the model server's (SONOTRACE_MAX_PIXELS): an image the
    # server would refuse is not opened for AI tools that can only fail.
    from annotation_client.pages import annotate

    small = create_app({"DATA_DIR": tmp_path, "MAX_PIXELS": 48 * 64 - 1})
    with small.server.test_request_context("/"):
        refused = annotate.open_upload(_png_uri(0), "a.png", None)
    message = json.dumps(refused[4].to_plotly_json(), default=str)
    assert "Cannot open this file" in message and "3,071 pixels" in message
    assert refused[0] is dash.no_update
    exact = create_app({"DATA_DIR": tmp_path, "MAX_PIXELS": 48 * 64})
    with exact.server.test_request_context("/"):
        assert annotate.open_upload(_png_uri(0), "a.png", None)[0]["width"] == 64


def test_the_log_names_an_opened_image_by_its_hash_not_its_file_name(tmp_path, caplog):
    # Scanners' exports often carry the patient's name in the file name.
    from annotation_client.pages import annotate

    app = create_app({"DATA_DIR": tmp_path})
    with caplog.at_level("INFO"), app.server.test_request_context("/"):
        opened = annotate.open_upload(_png_uri(0), "DOE^JANE 1961.png", None)
    assert "DOE^JANE" not in caplog.text
    assert f"opened image {opened[0]['sha256'][:12]} (png, 64x48)" in caplog.text


def test_opening_an_image_echoes_it_for_the_page(tmp_path):
    from annotation_client.pages import annotate

    app = create_app({"DATA_DIR": tmp_path})
    with app.server.test_request_context("/"):
        opened = annotate.open_upload(_png_uri(0), "a.png", None)
        broken = annotate.open_upload("data:image/png;base64,AAAA", "c.png", opened[0])
    assert opened[9]["image"] == opened[0]["sha256"] and opened[9]["at"] > 0
    assert broken[9] is dash.no_update


def test_segment_runs_on_a_real_open_not_on_the_page_drawn_again(tmp_path):

    from dash.exceptions import PreventUpdate

    from annotation_client import ids
    from annotation_client.pages import annotate

    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    with app.server.test_request_context("/"):
        first = annotate.open_upload(_png_uri(0), "a.png", None)
    meta, image_data, opened = first[0], first[1], first[9]

    def segment(echo, auto=True, fired=(ids.IMAGE_OPENED,), ai=None, history=None,
                back=None, label=None):
        return as_callback(lambda: annotate.segment(
            None, meta, auto, image_data, 32, ai, history, echo, None, back, label,
        ), [f"{prop}.data" for prop in fired], app=app)

    def asks_the_server(result) -> bool:
        ai, alert, done = result  # the server is down here, so the answer is the alert
        text = json.dumps(alert.to_plotly_json(), default=str)
        return ai is dash.no_update and "Auto-segmentation" in text and done > 0

    # An empty echo (the page drawn again reports it) is no open.
    with pytest.raises(PreventUpdate):
        segment(None)
    with pytest.raises(PreventUpdate):
        segment(opened, auto=False)
    assert asks_the_server(segment(opened))
    # The page drawn again asks only for an image with no outline yet: the answer to
    # the first request may have been dropped while another page was shown.
    assert asks_the_server(segment(None, fired=(ids.IMAGE_OPENED, ids.PAGE_LOAD)))
    ai = {"image": meta["sha256"], "paths": ["M1,1L5,1L5,5Z"], "at": 1}
    with pytest.raises(PreventUpdate):
        segment(None, fired=(ids.PAGE_LOAD,), ai=ai)
    with pytest.raises(PreventUpdate):
        segment(None, fired=(ids.PAGE_LOAD,), auto=False)
    # The server answering again after it could not be reached: an image opened
    # meanwhile with nothing on it is outlined now (here the server is down again).
    from annotation_client import _editing, _history

    opened_history = _history.new_history(_editing.empty_state(), image=meta["sha256"])
    assert asks_the_server(segment(None, fired=(ids.SERVER_BACK,), back=5))
    assert asks_the_server(segment(None, fired=(ids.SERVER_BACK,), back=5,
                                   history=opened_history))
    # Not over anything done meanwhile: a saved reading loaded (a normal with no
    # outline got the AI's put over it), a label given, an edit, Segment on open off.
    loaded = _history.push(opened_history, _editing.make_state([], "saved"))
    loaded["loaded_versions"] = [2]
    for kept in ({"ai": ai}, {"auto": False}, {"back": None}, {"history": loaded},
                 {"label": "normal"}):
        with pytest.raises(PreventUpdate):
            segment(None, fired=(ids.SERVER_BACK,), **({"back": 5} | kept))


def test_classify_asks_again_on_return_only_for_a_click_left_unanswered(tmp_path):

    from dash.exceptions import PreventUpdate

    from annotation_client import _editing, _history, ids
    from annotation_client.pages import annotate

    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    with app.server.test_request_context("/"):
        first = annotate.open_upload(_png_uri(0), "a.png", None)
    meta, image_data = first[0], first[1]
    outline = ["M2,2L20,2L20,20Z"]
    history = _history.push(
        _history.new_history(_editing.empty_state(), image=meta["sha256"]),
        _editing.make_state(outline, "edit", density=32),
    )

    def classify(fired, clicks=None, pending=None, classification=None):
        return as_callback(lambda: annotate.classify(
            clicks, meta, image_data, history, True, pending, classification,
        ), fired, app=app)

    def asks_the_server(result) -> bool:
        label, alert, done = result  # the server is down here, so the answer is the alert
        text = json.dumps(alert.to_plotly_json(), default=str)
        return label is dash.no_update and "Classification" in text and done > 0

    redraw = [f"{ids.PAGE_LOAD}.data", f"{ids.CLASSIFY_BUTTON}.n_clicks"]
    assert asks_the_server(classify([f"{ids.CLASSIFY_BUTTON}.n_clicks"], clicks=1))
    assert asks_the_server(classify(redraw, pending=True))
    answered = {"image": meta["sha256"], "label": "benign", "paths": outline}
    for pending, classification in [(None, None), (False, None), (True, answered)]:
        with pytest.raises(PreventUpdate):
            classify(redraw, pending=pending, classification=classification)
    # An answer for another outline does not answer the click on this one.
    assert asks_the_server(
        classify(redraw, pending=True, classification=dict(answered, paths=[]))
    )


def test_the_record_fields_have_labels(tmp_path):
    from annotation_client import ids

    app = create_app({"DATA_DIR": tmp_path})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        layout = page["layout"]().to_plotly_json()
    rendered = json.dumps(layout, default=lambda o: o.to_plotly_json())
    for field in (ids.NOTE, ids.ANNOTATOR, ids.FINAL_LABEL):
        assert re.search(rf'"(html_for|htmlFor)": "{field}"', rendered), field


def test_segment_on_open_spares_an_image_that_has_an_outline():
    from annotation_client import _editing
    from annotation_client.pages.annotate import _segment_on_open

    meta = {"sha256": "abc"}
    drawn = {"image": "abc", "past": [], "future": [],
             "present": _editing.make_state(["M 1,1 L 5,1 L 5,5 Z"], "edit")}
    other_image = dict(drawn, image="def")
    assert _segment_on_open(True, meta, None, None)
    assert _segment_on_open(True, meta, None, other_image)  # another image's outline
    assert _segment_on_open(True, meta, {"image": "def"}, None)  # another image's AI
    assert not _segment_on_open(False, meta, None, None)  # "Segment on open" is off
    assert not _segment_on_open(True, meta, {"image": "abc"}, None)  # AI outline there
    assert not _segment_on_open(True, meta, None, drawn)  # drawn by hand, server was down


def test_the_slider_follows_undo_and_only_undo_redo_or_reset():
    from annotation_client import ids
    from annotation_client.pages.annotate import _slider_value

    at32 = {"density": 32}
    assert _slider_value(at32, {ids.UNDO_BUTTON}, 64) == 32
    assert _slider_value(at32, {ids.REDO_BUTTON}, 64) == 32
    assert _slider_value(at32, {ids.RESET_BUTTON}, 64) == 32
    # Moving the slider itself, or a step that lands on the same density: leave it.
    assert _slider_value(at32, {ids.VERTEX_DENSITY}, 64) is dash.no_update
    assert _slider_value(at32, {ids.UNDO_BUTTON}, 32) is dash.no_update
    assert _slider_value({"density": None}, {ids.UNDO_BUTTON}, 64) is dash.no_update


def test_the_upload_hint_states_the_size_limit(tmp_path):
    from annotation_client import ids

    app = create_app({"DATA_DIR": tmp_path, "MAX_UPLOAD_MB": "12"})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        upload = find_component(page["layout"](), ids.IMAGE_UPLOAD)
    hint = json.dumps(upload.to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert "up to 12 MB" in hint


def test_the_unsaved_mark_follows_edits_and_saves():
    from annotation_client import _editing, _unsaved
    from annotation_client._record import DESCRIPTOR_OPTIONS
    from annotation_client.pages.annotate import mark_unsaved

    meta = {"sha256": "abc"}
    ai = {"image": "abc", "paths": ["M 1,1 L 9,1 L 9,9 Z"]}
    blank = [None] * len(DESCRIPTOR_OPTIONS)

    def history(paths, action):
        return {"image": "abc", "past": [], "future": [],
                "present": _editing.make_state(paths, action)}

    def mark(hist, label=None, note="", saved=None, result=ai, image=meta):
        text, classes, flag = mark_unsaved(hist, label, note, *blank, saved, image, result)
        assert bool(text) == ("dirty" in classes.split()) == (flag == "dirty")
        return "dirty" in classes.split()

    assert not mark(None, image=None)
    # Opened, and the AI result arrived before the history took it: still as opened.
    assert not mark(history([], "open"))
    assert not mark(history(ai["paths"], "ai"))
    edited = history(["M 1,1 L 9,1 L 5,9 Z"], "edit")
    assert mark(edited)
    assert mark(history(ai["paths"], "ai"), note="irregular margin")
    saved = _unsaved.snapshot("abc", edited["present"]["paths"], "benign", "", {})
    assert not mark(edited, label="benign", saved=saved)
    assert mark(edited, label="malignant", saved=saved)


def _annotate_layout(app):
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        return page["layout"]()


def test_the_worklist_shows_only_when_one_is_configured(tmp_path):
    from annotation_client import ids

    hidden = find_component(_annotate_layout(create_app({"DATA_DIR": tmp_path})),
                            ids.WORKLIST_CARD)
    assert hidden is not None and hidden.hidden is True
    folder = tmp_path / "studies"
    folder.mkdir()
    app = create_app({"DATA_DIR": tmp_path / "annotations", "WORKLIST_DIR": folder})
    shown = find_component(_annotate_layout(app), ids.WORKLIST_CARD)
    assert shown.hidden is False
    assert str(folder) in json.dumps(shown.to_plotly_json(), default=lambda o: o.to_plotly_json())


def test_a_worklist_entry_opens_like_an_upload(tmp_path):
    import base64

    from annotation_client._record import DESCRIPTOR_OPTIONS
    from annotation_client.pages import annotate

    folder = tmp_path / "studies"
    (folder / "left").mkdir(parents=True)
    png = base64.b64decode(_png_uri(3).split(",", 1)[1])
    (folder / "left" / "scan.png").write_bytes(png)
    (folder / "broken.png").write_bytes(b"not a png")
    (tmp_path / "outside.png").write_bytes(png)
    app = create_app({"DATA_DIR": tmp_path / "annotations", "WORKLIST_DIR": folder})
    n = len(DESCRIPTOR_OPTIONS)
    with app.server.test_request_context("/"):
        opened = annotate.open_worklist_entry({"path": "left/scan.png", "at": 1}, None)
        uploaded = annotate.open_upload(_png_uri(3), "scan.png", None)
        broken = annotate.open_worklist_entry({"path": "broken.png", "at": 2}, opened[0])
        escape = annotate.open_worklist_entry({"path": "../outside.png", "at": 3}, opened[0])
        gone = annotate.open_worklist_entry({"path": "left/gone.png", "at": 4}, opened[0])
    # The same image, decoded the same way: the same meta, picture and blank record;
    # the meta also says which worklist file it is, for the saved record.
    assert opened[0].pop("worklist_path") == "left/scan.png"
    assert "worklist_path" not in uploaded[0]
    # Each is signed as it is, worklist path included (the signature changes with it).
    assert opened[0].pop("signature") != uploaded[0].pop("signature")
    assert opened[0] == uploaded[0]
    assert opened[0]["name"] == "scan.png"
    assert opened[1] == uploaded[1]
    assert opened[1]["contents"] == _png_uri(3)
    assert opened[4] is None and opened[5] is None and opened[6] == ""
    # The info line shows the entry's folder before its name; an upload has none.
    opened_info = json.dumps(opened[3].to_plotly_json(), default=str)
    assert "left/" in opened_info and "image-folder" in opened_info
    assert "image-folder" not in json.dumps(uploaded[3].to_plotly_json(), default=str)
    # The upload is emptied after every open, so uploading the file open before (or one
    # that did not open) is a change again.
    assert opened[8] is None and uploaded[8] is None
    for failed, words in (
        (broken, "broken.png"),
        (escape, "../outside.png is not a file inside the worklist folder."),
        (gone, "left/gone.png is not in the worklist folder (moved, renamed or never there)"),
    ):
        assert all(v is dash.no_update for v in failed[:4]), words
        assert all(v is dash.no_update for v in failed[-n:]), words
        assert failed[8] is None, words
        text = json.dumps(failed[4].to_plotly_json(), default=str)
        assert "Cannot open this file" in text and words in text and "unchanged" in text


def test_a_link_with_open_asks_for_that_worklist_entry(tmp_path):
    """``/?open=PATH`` (the Saved page's links) opens the entry as the page loads."""
    from dash.exceptions import PreventUpdate

    from annotation_client import ids
    from annotation_client.pages import annotate

    folder = tmp_path / "studies"
    folder.mkdir()
    app = create_app({"DATA_DIR": tmp_path / "annotations", "WORKLIST_DIR": folder})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/?open=left/scan.png"):
        linked = find_component(page["layout"](open="left/scan.png"), ids.WORKLIST_LINK)
        plain = find_component(page["layout"](), ids.WORKLIST_LINK)
        # A repeated parameter is not a path: nothing is asked for.
        repeated = find_component(page["layout"](open=["a.png", "b.png"]), ids.WORKLIST_LINK)
    assert linked.data == "left/scan.png"
    assert plain.data is None and repeated.data is None

    no = dash.no_update
    with app.server.test_request_context("/"):
        with pytest.raises(PreventUpdate):
            annotate.open_linked(None, None, "")
        asked = annotate.open_linked("left/scan.png", None, "unsaved-mark")
        # Unsaved work on a page drawn again without a reload: asked first, as for a pick.
        pending = annotate.open_linked("left/scan.png", None, "unsaved-mark dirty")
    request, confirm, waiting, alert, revise = asked
    assert request["path"] == "left/scan.png" and (confirm, waiting, alert) == (False, None, no)
    # Followed to see the saved work: its latest version is loaded once the image is open.
    assert revise == {"worklist_path": "left/scan.png"}
    assert pending == (no, True, "left/scan.png", no, revise)
    # The request is the one a pick from the list makes, so open_image reads the entry the
    # same way, refusals included (a path out of the folder: see the test above).
    assert set(request) == set(annotate._request("x"))

    # Without a worklist the link cannot be followed, and the page says why.
    bare = create_app({"DATA_DIR": tmp_path / "other"})
    with bare.server.test_request_context("/"):
        result = annotate.open_linked("left/scan.png", None, "")
    assert result[:3] == (no, False, None) and result[4] is None
    text = json.dumps(result[3].to_plotly_json(), default=str)
    assert "left/scan.png" in text and "SONOTRACE_WORKLIST_DIR" in text


def test_a_worklist_entry_over_the_limit_gets_the_upload_message(tmp_path):
    from annotation_client.pages import annotate

    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "big.png").write_bytes(b"x" * 200_000)
    app = create_app(
        {"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder, "MAX_UPLOAD_MB": 0.125}
    )
    with app.server.test_request_context("/"):
        result = annotate.open_worklist_entry({"path": "big.png", "at": 1}, None)
        options, _ = annotate.list_worklist(True, None, None, None)
    text = json.dumps(result[4].to_plotly_json(), default=str)
    assert "big.png is 0.2 MB; the limit is 0.125 MB" in text
    assert options == [
        {"label": "big.png — too large (195.3 KB)", "value": "big.png", "disabled": True}
    ]


def test_the_worklist_labels_show_the_status_and_the_open_entry(tmp_path):
    import base64
    import hashlib

    from annotation_client import AnnotationStore
    from annotation_client.pages import annotate

    folder = tmp_path / "studies"
    folder.mkdir()
    first = base64.b64decode(_png_uri(1).split(",", 1)[1])
    (folder / "a.png").write_bytes(first)
    (folder / "b.png").write_bytes(base64.b64decode(_png_uri(2).split(",", 1)[1]))
    data_dir = tmp_path / "annotations"
    AnnotationStore(data_dir).save(
        hashlib.sha256(first).hexdigest(), svg="<svg/>", mask_png=b"", record={}
    )
    app = create_app({"DATA_DIR": data_dir, "WORKLIST_DIR": folder})
    with app.server.test_request_context("/"):
        opened = annotate.open_worklist_entry({"path": "b.png", "at": 1}, None)
        options, note = annotate.list_worklist(True, None, None, opened[0])
    assert [o["label"] for o in options] == [
        "a.png — saved v1",
        "b.png — not annotated · open",
    ]
    assert note[0].children == "2 image(s) · 1 not annotated"


def _save_records(data_dir):
    """Three versions of two images, saved by a store without an index; their keys."""
    import datetime as dt

    import numpy as np

    from annotation_client import AnnotationStore, build_record

    store = AnnotationStore(data_dir)
    keys = []
    for n, sha in enumerate(["ab" * 32, "ab" * 32, "cd" * 32]):
        record = build_record(
            image={"sha256": sha, "name": f"{n}.png", "width": 3, "height": 2},
            annotator="Ada",
            final_mask=np.ones((2, 3), bool),
            saved_at=dt.datetime(2024, 1, 1 + n, tzinfo=dt.UTC),
        )
        saved = store.save(sha, svg="<svg/>", mask_png=b"png", record=record)
        assert saved.indexed is None
        keys.append((sha, saved.version))
    return keys


def test_the_app_indexes_the_records_already_saved_at_start(tmp_path, monkeypatch):
    import sqlalchemy as sa

    from annotation_client._app import INDEX_KEY
    from annotation_client._database import AnnotationIndex

    monkeypatch.delenv("SONOTRACE_DATABASE_URL", raising=False)
    data_dir = tmp_path / "annotations"
    keys = _save_records(data_dir)
    assert not (data_dir / "index.sqlite3").exists()
    app = create_app({"DATA_DIR": data_dir})
    index = app.server.config["SONOTRACE_INDEX"]
    assert INDEX_KEY == "SONOTRACE_INDEX"
    assert isinstance(index, AnnotationIndex)
    assert sa.engine.make_url(index.url).database == str(data_dir.resolve() / "index.sqlite3")
    assert (data_dir / "index.sqlite3").is_file()
    rows = index.query()
    assert [(r["image_sha256"], r["version"]) for r in rows] == keys[::-1]
    assert rows[-1]["record_path"] == str(data_dir / keys[0][0] / "v001.json")
    # A second start finds nothing new.
    again = create_app({"DATA_DIR": data_dir})
    assert len(again.server.config["SONOTRACE_INDEX"].query()) == 3


def test_the_app_indexes_into_the_configured_database(tmp_path):
    data_dir = tmp_path / "annotations"
    keys = _save_records(data_dir)
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'index.sqlite3'}"
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url})
    index = app.server.config["SONOTRACE_INDEX"]
    assert index.url == url
    assert sorted((r["image_sha256"], r["version"]) for r in index.query()) == sorted(keys)
    assert not (data_dir / "index.sqlite3").exists()


def test_the_app_starts_when_the_index_cannot_be_written(tmp_path, caplog):
    data_dir = tmp_path / "annotations"
    _save_records(data_dir)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the database folder should be")
    url = f"sqlite:///{blocker}/index.sqlite3"
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url})
    assert app.server.config["SONOTRACE_INDEX"].url == url
    # Started, and unhealthy: the Saved page and the saves' rows fail (audit 804 F6).
    response = app.server.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["index"] == "the annotation index could not be opened"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "unavailable" in errors[0]
    assert blocker.read_text() == "a file where the database folder should be"
    assert sorted(p.name for p in data_dir.iterdir()
                  if p.name not in (KEY_FILE, DATA_MARK)) == ["ab" * 32, "cd" * 32]


def test_the_app_indexes_into_a_postgresql_database(tmp_path, postgres_url):
    data_dir = tmp_path / "annotations"
    keys = _save_records(data_dir)
    # As an operator writes it: no driver named, so psycopg 3.
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url})
    index = app.server.config["SONOTRACE_INDEX"]
    try:
        assert index.url == url and index.engine.dialect.driver == "psycopg"
        client = app.server.test_client()
        rows = client.get("/api/saved").get_json()["rows"]
        assert [(r["image_sha256"], r["version"]) for r in rows] == keys[::-1]
        csv = client.get("/api/saved?format=csv&latest=1").get_data(as_text=True)
        assert len(csv.splitlines()) == 1 + 2  # the header, then each image's latest
        assert not (data_dir / "index.sqlite3").exists()
    finally:
        index.dispose()


def test_the_app_starts_when_the_postgresql_server_is_down(tmp_path, caplog, psycopg_installed):
    data_dir = tmp_path / "annotations"
    _save_records(data_dir)
    (tmp_path / "no-server").mkdir()  # a socket folder no server listens in
    url = f"postgresql://sonotrace:s3cret@/sonotrace?host={tmp_path / 'no-server'}"
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url})
    client = app.server.test_client()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json()["status"] == "error"
    assert "no-server" not in health.get_data(as_text=True)
    response = client.get("/api/saved")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_unavailable"
    # Where the server is and who connects stay in the log.
    assert "no-server" not in response.get_data(as_text=True)
    assert "no-server" in caplog.text and "s3cret" not in caplog.text
    assert len(errors) == 1 and "unavailable" in errors[0]
    assert "postgresql+psycopg://sonotrace:***@" in errors[0] and "s3cret" not in errors[0]
    assert sorted(p.name for p in data_dir.iterdir()
                  if p.name not in (KEY_FILE, DATA_MARK)) == ["ab" * 32, "cd" * 32]


@pytest.mark.parametrize("url", [
    "sqlite:///{tmp}/blocker/index.sqlite3",  # a file where its folder should be
    "postgresql://sonotrace:s3cret@/sonotrace?host={tmp}/no-server",  # no server there
])
def test_an_index_that_cannot_be_opened_is_said_at_start_with_no_saved_version(
        tmp_path, caplog, monkeypatch, url):
    # Audit 804 F6. Before: with an empty data folder nothing opened the index at start,
    # /health said "ok", and only the first Saved page logged it, as "damaged records".
    from annotation_client import _storage

    if url.startswith("postgresql"):
        pytest.importorskip("psycopg")
    (tmp_path / "blocker").write_text("a file where the database folder should be")
    (tmp_path / "no-server").mkdir()
    url = url.format(tmp=tmp_path)
    monkeypatch.setattr(_storage, "WRITE_PROBE_S", 0.0)  # every check looks again
    caplog.set_level("INFO")
    app = create_app({"DATA_DIR": tmp_path / "data", "DATABASE_URL": url,
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0].startswith("annotation index ") and "unavailable" in errors[0]
    assert app.server.config["SONOTRACE_INDEX"].safe_url in errors[0]
    assert "s3cret" not in caplog.text
    assert "starting a new database file" not in caplog.text  # none was made
    client = app.server.test_client()
    response = client.get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert body["index"] == "the annotation index could not be opened"
    assert "no-server" not in response.get_data(as_text=True)
    caplog.clear()
    assert client.get("/health").status_code == 503
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []  # once, not each time
    # The listing's own log line names the index, not "damaged records".
    assert client.get("/api/saved").status_code == 503
    assert "damaged records" not in caplog.text


def test_an_index_that_can_be_opened_again_makes_health_ok_again(tmp_path, caplog, monkeypatch):
    from annotation_client import _storage

    monkeypatch.setattr(_storage, "WRITE_PROBE_S", 0.0)
    caplog.set_level("INFO")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the database folder should be")
    url = f"sqlite:///{blocker}/index.sqlite3"
    app = create_app({"DATA_DIR": tmp_path / "data", "DATABASE_URL": url,
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/health").status_code == 503
    blocker.unlink()
    assert client.get("/health").get_json()["status"] == "ok"
    assert f"annotation index {url} can be used again" in caplog.text
    assert (blocker / "index.sqlite3").is_file()


def test_the_app_starts_beside_a_record_the_index_cannot_hold(tmp_path):
    data_dir = tmp_path / "annotations"
    keys = _save_records(data_dir)
    record_file = data_dir / keys[-1][0] / "v001.json"
    record = json.loads(record_file.read_text())
    record["image"]["width"] = 2**70
    record_file.write_text(json.dumps(record))
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": f"sqlite:///{tmp_path / 'i.db'}"})
    rows = app.server.config["SONOTRACE_INDEX"].query()
    # The two others as they are; that one listed as damaged, with why (since layout 7).
    assert sorted(bool(r["damaged"]) for r in rows) == [False, False, True]
    [bad] = [r for r in rows if r["damaged"]]
    assert bad["image_sha256"] == keys[-1][0] and "image.width" in bad["damaged"]


def test_the_worklist_is_hashed_in_the_background_at_start(tmp_path):
    import threading

    import numpy as np
    from PIL import Image

    from annotation_client import AnnotationStore, _app, _worklist

    worklist = tmp_path / "worklist"
    (worklist / "study").mkdir(parents=True)
    for i in range(3):
        path = worklist / "study" / f"image{i}.png"
        Image.fromarray(np.full((4, 5), 40 * i + 7, np.uint8)).save(path)
    before = _worklist._CACHE.reads
    create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": worklist})
    for thread in threading.enumerate():
        if thread.name == _app.WARMUP_THREAD:
            thread.join(timeout=30)
    # Each new file was read once, in the background; the page's first listing reads none.
    assert _worklist._CACHE.reads - before == 3
    store = AnnotationStore(tmp_path / "data")
    listing = _worklist.list_images(worklist, store)
    assert [e.path for e in listing.entries] == [f"study/image{i}.png" for i in range(3)]
    assert _worklist._CACHE.reads - before == 3


def test_no_worklist_starts_no_warm_up(tmp_path):
    import threading

    from annotation_client import _app

    create_app({"DATA_DIR": tmp_path / "data"})
    assert _app.WARMUP_THREAD not in [t.name for t in threading.enumerate()]


def _ids_in(component) -> set[str]:
    found = set()
    if isinstance(getattr(component, "id", None), str):
        found.add(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found |= _ids_in(child)
    return found


def _dependency_ids(spec: str) -> list[str]:
    """Component ids of an output spec such as ``..a.b...c.d@hash..``."""
    parts = spec.strip(".").split("...")
    return [part.split("@")[0].rsplit(".", 1)[0] for part in parts]


def test_no_callback_mixes_the_shell_and_a_page(tmp_path):
    # A callback with Inputs in the app shell and on a page fires when a shell store
    # changes while another page is shown (an answer that lands late), and Dash then
    # drops it with a ReferenceError in the console: the AI outline was lost that way.
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    layout = app.layout() if callable(app.layout) else app.layout
    shell = _ids_in(layout)
    assert {"image-meta", "ai-result", "outline-history", "box-result", "box-pending",
            "_pages_location"} <= shell
    dependencies = app.server.test_client().get("/_dash-dependencies").get_json()
    assert len(dependencies) > 20
    mixed = []
    for dep in dependencies:
        inputs = {i["id"] for i in dep["inputs"]}
        outputs = set(_dependency_ids(dep["output"]))
        on_shell = inputs & shell
        if on_shell and (inputs - shell or outputs - shell):
            mixed.append((sorted(on_shell), sorted(inputs - shell), sorted(outputs - shell)))
    assert mixed == []


def test_only_a_drawn_rectangle_reaches_the_server_callback_that_asks_for_a_box(tmp_path):
    # edit waits for every callback downstream of the graph's event; a server callback
    # there would cost every vertex drag a round trip. The gate runs in the browser.
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    dependencies = app.server.test_client().get("/_dash-dependencies").get_json()
    on_event = [d for d in dependencies
                if {"id": "annotation-graph", "property": "relayoutData"} in
                [{"id": i["id"], "property": i["property"]} for i in d["inputs"]]]
    gate = [d for d in on_event if "box-drawn.data" in d["output"]]
    assert len(gate) == 1 and gate[0].get("clientside_function")
    asking = [d for d in dependencies if "box-request.data" in d["output"]]
    assert len(asking) == 1 and not asking[0].get("clientside_function")
    assert [i["id"] for i in asking[0]["inputs"]] == ["box-drawn"]
    # Every other callback on the event is edit, which must run on it.
    servers = [d for d in on_event if not d.get("clientside_function")]
    assert all("outline-history.data" in d["output"] for d in servers)


def test_segment_box_asks_for_new_boxes_and_on_return_for_unanswered_ones(tmp_path):

    from dash.exceptions import PreventUpdate

    from annotation_client import ids
    from annotation_client.pages import annotate

    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    with app.server.test_request_context("/"):
        first = annotate.open_upload(_png_uri(0), "a.png", None)
    meta, image_data = first[0], first[1]
    sha = meta["sha256"]

    def box(at, image=sha):
        return {"image": image, "box": [2, 2, 20, 20], "at": at}

    def segment_box(fired, request=None, pending=None, answered=None):
        return as_callback(lambda: annotate.segment_box(
            request, meta, image_data, 32, True, pending, answered,
        ), [f"{prop}.data" for prop in fired], app=app)

    def asked(result, kept=()) -> list:
        """The boxes asked for; the server is down here, so each answer is a failure.

        Answers already in the store for boxes still pending (``kept``) come first.
        """
        answers, alert, done = result
        assert "Box re-segmentation" in json.dumps(alert.to_plotly_json(), default=str)
        assert answers["image"] == sha and done > 0
        carried = answers["answers"][: len(kept)]
        assert [a["request"] for a in carried] == list(kept)
        new = answers["answers"][len(kept):]
        assert all(a["failed"] and "mask" not in a for a in new)
        return [a["request"] for a in new]

    assert asked(segment_box([ids.BOX_REQUEST], request=box(1))) == [1]
    # A second box while the first is unanswered asks for both: the browser drops the
    # first call's answer when the second starts, and the first box was lost.
    assert asked(segment_box([ids.BOX_REQUEST], request=box(2), pending=[box(1), box(2)])
                 ) == [1, 2]
    # A first answer not drawn yet stays in the store this call's answer replaces.
    drawn_later = {"image": sha, "answers": [{"request": 1, "box": [2, 2, 20, 20],
                                              "mask": ""}]}
    assert asked(segment_box([ids.BOX_REQUEST], request=box(2), pending=[box(1), box(2)],
                             answered=drawn_later), kept=[1]) == [2]
    with pytest.raises(PreventUpdate):  # a box drawn on another image
        segment_box([ids.BOX_REQUEST], request=box(1, image="e5" * 32))
    # A hand-made request with a box the page never sends is not sent on (it raised
    # in the server client: an HTML 500 and a traceback per request).
    for bad in ([float("nan"), 0, 10, 10], ["a", 0, 1, 2], [1, 2], "box", None):
        with pytest.raises(PreventUpdate):
            segment_box([ids.BOX_REQUEST], request={"image": sha, "box": bad, "at": 4})
    for bad in ("x", 7, ["image", sha]):
        with pytest.raises(PreventUpdate):
            segment_box([ids.BOX_REQUEST], request=bad)
    # Nor a box the page never draws: outside the image, or not on whole pixels. Its
    # answer failed every later edit of the image.
    width, height = meta["width"], meta["height"]
    for bad in ([-5, 0, 10, 10], [0, 0, width + 1, 10], [0, 0, 10, height + 1],
                [10, 2, 2, 20], [2.5, 2, 20, 20]):
        with pytest.raises(PreventUpdate):
            segment_box([ids.BOX_REQUEST], request={"image": sha, "box": bad, "at": 4})
        with pytest.raises(PreventUpdate):  # and not asked again when the page is back
            segment_box([ids.BOX_REQUEST, ids.PAGE_LOAD],
                        pending=[{"image": sha, "box": bad, "at": 4}])
    # Drawn again, the page asks for each pending box of this image with no answer yet.
    redraw = [ids.BOX_REQUEST, ids.PAGE_LOAD]
    answered = {"image": sha, "answers": [{"request": 1, "box": [2, 2, 20, 20], "mask": ""}]}
    pending = [box(1), box(2), box(3, image="e5" * 32)]
    assert asked(segment_box(redraw, pending=pending, answered=answered), kept=[1]) == [2]
    assert asked(segment_box(redraw, pending=pending)) == [1, 2]
    for pending in (None, [], [box(3, image="e5" * 32)], [box(1)]):
        with pytest.raises(PreventUpdate):
            segment_box(redraw, pending=pending, answered=answered)


def _save_outlined(tmp_path, spacing=None, source=None, *field, name="scan.png"):
    """Save a square outline on a 30x20 PNG through ``annotate.save``, its record
    stating ``spacing``; ``field`` is what the spacing field shows, when passed. The
    upload is called ``name``."""
    import base64

    import numpy as np
    from PIL import Image

    from annotation_client import _editing, decode_image
    from annotation_client.pages import annotate

    buffer = io.BytesIO()
    # Not blank: the client, like the server, refuses an image of one value.
    Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    meta = decode_image(data, name).meta()
    if spacing is not None:
        meta["pixel_spacing_mm"] = spacing
        if source:
            meta["pixel_spacing_source"] = source
    state = dict(_editing.empty_state(), paths=["M 5,5 L 15,5 L 15,15 L 5,15 Z"])
    history = {"image": meta["sha256"], "present": state, "past": [], "future": []}
    image_data = {"contents": "data:image/png;base64," + base64.b64encode(data).decode()}
    app = create_app({"DATA_DIR": tmp_path / "data", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    with app.server.test_request_context():
        alert, _work = annotate.save(
            1, meta, history, None, None, "benign", "", "Ada", image_data, *blank, *field
        )
    return json.dumps(alert.to_plotly_json(), default=lambda o: o.to_plotly_json())


@pytest.mark.parametrize("name", ["scan.png", "名前\u202egnp.exe", "scan", "scan.JPG"])
def test_an_uploads_kept_copy_takes_the_suffix_of_what_it_is(tmp_path, name):
    # Kept under the name the browser sent: a PNG uploaded as "...exe" became source.exe.
    assert "Saved." in _save_outlined(tmp_path, name=name)
    [kept] = (tmp_path / "data").glob("*/source.*")
    assert kept.name == "source.png"


def test_a_save_refused_for_its_pixel_spacing_says_so_and_writes_nothing(tmp_path):
    # A spacing the measurements refuse, as a page opened before the decoder checked it holds.
    text = _save_outlined(tmp_path, [1e200, 1e200])
    assert "Not saved." in text and "pixel_spacing" in text
    saved = [p for p in (tmp_path / "data").rglob("*")
             if p.is_file() and p.suffix != ".sqlite3"
             and p.name not in (KEY_FILE, DATA_MARK)]
    assert saved == []


@pytest.mark.parametrize(
    ("spacing", "field", "saved", "said"),
    [
        # Set 0.08, then 0.09 typed and not Set: the record would say 0.08.
        ([0.08, 0.08], 0.09, None, "shows 0.09 mm per pixel, but the measurements use 0.08"),
        ([0.08, 0.08], "0.09", None, "Click Set to measure at 0.09, or put back 0.08"),
        # Typed and never Set: no spacing would be saved at all.
        (None, 0.09, None, "shows 0.09 mm per pixel, but it was not Set"),
        (None, "abc", None, "shows abc mm per pixel, but it was not Set"),
        # Emptied and not Set: still measured at 0.08.
        ([0.08, 0.08], "", None, "field is empty, but the measurements use 0.08"),
        ([0.08, 0.08], None, None, "field is empty"),
        # Shown as used: saved.
        ([0.08, 0.08], 0.08, [0.08, 0.08], "Saved."),
        ([0.08, 0.08], "0.08", [0.08, 0.08], "Saved."),
        (None, None, None, "Saved."),
        (None, "", None, "Saved."),
    ],
)
def test_a_save_waits_while_the_spacing_field_shows_other_than_the_spacing_used(
    tmp_path, spacing, field, saved, said
):
    text = _save_outlined(tmp_path, spacing, "manual", field)
    assert said in text
    records = list((tmp_path / "data").rglob("v001.json"))
    if said == "Saved.":
        record = json.loads(records[0].read_text())
        assert record["image"]["pixel_spacing_mm"] == saved
    else:
        assert "Not saved." in text and records == []


@pytest.mark.parametrize("kind", ["dicom", "png"])
def test_the_page_keeps_the_file_once_and_a_dicom_is_decoded_again_to_be_shown(
    annotate, tmp_path, kind
):
    """The page's copy of the image goes with every model call and save: it holds the
    file, not also the PNG the graph shows of a DICOM (the two together outgrew the
    callback limit for an 18 MB DICOM), and coming back to the page shows that PNG."""
    import base64

    import numpy as np
    from image_samples import dicom_bytes, png_bytes, speckle_image

    pixels = speckle_image(120, 160)
    data = dicom_bytes(pixels.astype(np.uint16) * 16, bits_stored=12) if kind == "dicom" else (
        png_bytes(pixels))
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    with app.server.test_request_context("/"):
        meta, image_data, figure, *_ = annotate._show(f"scan.{kind}", lambda: data, None)
        shown = figure.data[0].source
        assert set(image_data) == {"contents", "reencoded"}
        assert base64.b64decode(image_data["contents"].partition(",")[2]) == data
        assert image_data["reencoded"] is (kind == "dicom")
        assert shown.startswith("data:image/png;base64,")
        assert (shown == image_data["contents"]) is (kind == "png")
        restored, *_ = annotate.restore_workspace(0, meta, image_data, None, None, 0.3, True)
        assert restored.data[0].source == shown
