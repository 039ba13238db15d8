"""A data folder that goes away while the client runs (a volume unmounted, the folder
moved): the Annotate page refuses to save into whatever is in its place, and says so.

The page's callbacks are called directly, in a request of a real app over a real data
folder, as ``test_signin.py`` calls them.
"""

from __future__ import annotations

import shutil

import pytest
from _dash_helpers import open_work, text_of

from annotation_client import create_app
from annotation_client._storage import DATA_MARK

pytestmark = pytest.mark.usefixtures("an_app_exists")


def _save(app, annotate):
    meta, history, image_data = open_work()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        alert, work = annotate.save(1, meta, history, None, None, "benign", "", "Dr Ada",
                                    image_data, *blank)
    return text_of(alert), work, meta


def _previous_line(app, annotate, meta) -> tuple[dict, str]:
    with app.server.test_request_context("/_dash-update-component"):
        style, text, _named = annotate.show_previous_saves(meta, None, True)
    return style, text


@pytest.mark.parametrize("gone", ["unmounted", "moved"])
def test_a_save_into_a_data_folder_gone_is_refused_and_said(tmp_path, annotate, gone):
    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    text, _work, meta = _save(app, annotate)
    assert text.startswith("Saved.")
    assert "v1 (of 1) by Dr Ada" in _previous_line(app, annotate, meta)[1]

    # The volume goes; its mount point stays, empty (or the folder is moved away).
    shutil.move(data_dir, tmp_path / "away")
    if gone == "unmounted":
        data_dir.mkdir()
    text, work, _meta = _save(app, annotate)
    assert text.startswith("Not saved. The data folder (SONOTRACE_DATA_DIR) ")
    assert "Nothing was saved; the work is still on screen" in text
    assert str(tmp_path) not in text  # the page is not told where the data lives
    assert work is annotate.dash.no_update  # still unsaved work, as it is
    assert list(data_dir.iterdir()) == [] if gone == "unmounted" else not data_dir.exists()

    # The Record card says why no earlier version is listed, rather than nothing.
    style, line = _previous_line(app, annotate, meta)
    assert style == {}
    assert line == ("Saved versions cannot be listed: the data folder (SONOTRACE_DATA_DIR) "
                    + ("is not the folder this client started on" if gone == "unmounted"
                       else "is missing") + ". Saving is refused until it is back.")

    # Back: its version 1 is found again (the same work is not saved twice).
    if gone == "unmounted":
        data_dir.rmdir()
    shutil.move(tmp_path / "away", data_dir)
    assert (data_dir / DATA_MARK).is_file()
    assert "v1 (of 1) by Dr Ada" in _previous_line(app, annotate, meta)[1]
    text, _work, _meta = _save(app, annotate)
    assert text == "Nothing changed since version 1; no new version saved."


@pytest.mark.usefixtures("an_app_exists")
def test_the_worklist_is_not_listed_as_unsaved_while_the_data_folder_is_gone(tmp_path,
                                                                             annotate):
    # Every entry read "not annotated", and Open next opened saved cases as new.
    from _dash_helpers import case_png

    worklist = tmp_path / "worklist"
    worklist.mkdir()
    case_png(worklist / "a.png", 1)
    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": data_dir, "WORKLIST_DIR": worklist,
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    shutil.move(data_dir, tmp_path / "away")
    with app.server.test_request_context("/_dash-update-component"):
        options, note, *_ = annotate.show_worklist(True, None, None, None)
    assert options == []
    assert text_of(note) == (
        "Worklist unavailable. The worklist cannot be listed: the data folder "
        "(SONOTRACE_DATA_DIR), which says which images are saved, is missing")


@pytest.mark.parametrize("error, said", [
    (PermissionError(13, "Permission denied"),
     "The data folder (SONOTRACE_DATA_DIR) cannot be read (Permission denied): its "
     "permissions or owner changed, or the client runs as another user than before. "
     "Nothing was saved; the work is still on screen. Ask whoever runs SonoTrace to let "
     "the client read and write the folder again, then save again."),
    (OSError(5, "Input/output error"),
     "The data folder (SONOTRACE_DATA_DIR) cannot be read (Input/output error): a disk or "
     "network error, or a volume unmounted, while the client runs. Nothing was saved; "
     "the work is still on screen. Ask whoever runs SonoTrace to check the disk or "
     "volume of the folder, then save again."),
])
def test_a_data_folder_that_cannot_be_read_is_not_called_unmounted(tmp_path, annotate,
                                                                   monkeypatch, error, said):
    # "a volume unmounted, or the folder moved" sent whoever runs SonoTrace looking for a
    # mount when the mark file's permissions (chmod, another user) were the cause.
    from pathlib import Path

    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    real = Path.read_text

    def read_text(path, *args, **kwargs):
        if path.name == DATA_MARK:
            raise error
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    text, work, _meta = _save(app, annotate)
    assert text == "Not saved. " + said
    assert work is annotate.dash.no_update
    response = app.server.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["data_folder"] == said.split(": ")[0].split(") ", 1)[1]


def test_a_data_folder_above_which_a_folder_may_not_be_searched_is_said_so(tmp_path,
                                                                          annotate,
                                                                          monkeypatch):
    import os

    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    real = os.stat

    def stat(path, *args, **kwargs):
        if str(path) == str(data_dir):
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    text, _work, _meta = _save(app, annotate)
    monkeypatch.undo()
    assert text.startswith("Not saved. The data folder (SONOTRACE_DATA_DIR) cannot be reached "
                           "(Permission denied): its permissions or owner changed")
