"""Values a hand-written callback request can carry that the browser never sends.

The stores the server writes are signed (test_signing.py); these are the values
the browser does write (the graph's events, the slider, the note, the upload's
name, the worklist request): each gets a message or is ignored, never a server
error, and nothing outlandish is written.
"""

import base64
import io
import json

import numpy as np
import pytest
from _dash_helpers import as_callback, find_component
from dash.exceptions import PreventUpdate
from PIL import Image

import vectorizer
from annotation_client import _editing, _shapes, create_app, decode_image
from annotation_client._record import MAX_NOTE_CHARS, build_record
from annotation_client._signing import KEY_FILE
from annotation_client._storage import DATA_MARK

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def app(tmp_path):
    return create_app({"DATA_DIR": tmp_path / "data", "MODEL_SERVER_URL": "http://127.0.0.1:9"})


@pytest.fixture
def annotate(app):
    from annotation_client.pages import annotate

    return annotate


def _image():
    buffer = io.BytesIO()
    # Not blank: the client, like the server, refuses an image of one value.
    Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    meta = decode_image(data, "scan.png").meta()
    image_data = {"contents": "data:image/png;base64," + base64.b64encode(data).decode()}
    return meta, image_data


def _history(meta, paths=("M 5,5 L 15,5 L 15,15 L 5,15 Z",)):
    state = dict(_editing.empty_state(), paths=list(paths))
    return {"image": meta["sha256"], "present": state, "past": [], "future": []}


def _text(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json())


@pytest.mark.parametrize(
    ("path", "says"),
    [("M 0,0 L 1e999,0 L 5,5 Z", "within"), ("M 0,0 L nan,0 L 5,5 Z", "nan"),
     ("M 0,0 L 2e7,0 L 5,5 Z", "within"),
     ("M 0,0 " + "l 9e6,0 " * 3 + "Z", "beyond")],
)
def test_a_path_out_of_the_vectorizers_range_is_refused_where_it_comes_in(path, says):
    with pytest.raises(ValueError, match=says):
        _shapes.parse_path(path)
    assert not _shapes.is_region(path)


def test_more_path_data_than_can_be_saved_is_refused_before_it_is_parsed():
    huge = "M" + " 1 1" * (_shapes.MAX_PATH_CHARS // 4 + 1)
    with pytest.raises(ValueError, match="characters of path data"):
        _shapes.apply_relayout([], {"shapes": [{"type": "path", "path": huge}]})
    with pytest.raises(ValueError, match="characters of path data"):
        _shapes.apply_relayout(["M 0,0 L 4,0 L 4,4 Z"], {"shapes[0].path": huge})
    with pytest.raises(ValueError, match="must be a list"):
        _shapes.apply_relayout([], {"shapes": "M 0,0"})


def _squares(count: int, digits: int) -> list[str]:
    """``count`` square regions whose path data is padded to about ``digits`` per number."""
    paths = []
    for n in range(count):
        x, y = 10 + 20 * (n % 140), 10 + 20 * (n // 140)
        steps = [i * 9 / 8 for i in range(8)]  # 32 vertices around a 9 x 9 square
        corners = ([(x + t, y) for t in steps] + [(x + 9, y + t) for t in steps]
                   + [(x + 9 - t, y + 9) for t in steps] + [(x, y + 9 - t) for t in steps])
        paths.append("M " + " L ".join(f"{a:0{digits}.4f},{b:0{digits}.4f}"
                                       for a, b in corners) + " Z")
    return paths


def test_an_outline_the_editor_takes_is_one_a_save_can_rasterise():
    # An outline just under the limit on path data alone made a saved SVG over it: the
    # editor drew it and Save refused it in the vectorizer's words (audit helper-502, 3).
    paths = _squares(389, 10)
    assert sum(map(len, paths)) < _shapes.MAX_PATH_CHARS
    assert len(_shapes.paths_to_svg(paths, 3000, 3000)) > _shapes.MAX_PATH_CHARS
    with pytest.raises(ValueError, match="more than can be drawn and saved"):
        _shapes.apply_relayout([], {"shapes": [{"type": "path", "path": p} for p in paths]})
    # What the editor does take, the save rasterises as one document.
    fewer = paths[:360]
    edit = _shapes.apply_relayout([], {"shapes": [{"type": "path", "path": p} for p in fewer]})
    assert len(edit.paths) == 360
    mask = vectorizer.svg_to_mask(_shapes.paths_to_svg(edit.paths, 3000, 3000))
    assert mask.sum() == 360 * 81


@pytest.mark.parametrize(
    "relayout",
    [["not", "a", "dict"], {"shapes": 5},
     {"shapes": [{"type": "path", "path": "M" + " 1 1" * 100_000}]}],
)
def test_the_edit_callback_ignores_a_graph_event_no_graph_sends(app, annotate, relayout):
    meta, _ = _image()
    history = _history(meta)
    with app.server.test_request_context(), pytest.raises(PreventUpdate):
        # Nothing changed: no update, rather than a server error.
        annotate.edit(meta, None, None, relayout, None, None, None, 32, 0.3, True, True,
                      None, history)


def test_the_slider_value_is_a_vertex_budget_or_the_default(annotate):
    assert [annotate._vertices(v) for v in (8, 64, 128.0, 32)] == [8, 64, 128, 32]
    assert [annotate._vertices(v) for v in (None, "abc", 2.5, 1000, 4, True, [8])] == [32] * 7


def test_an_uploaded_files_name_loses_control_characters_and_length(annotate):
    assert annotate._file_name("scan\x00 1\n.png") == "scan_ 1_.png"
    assert annotate._file_name("x" * 1000) == "x" * 255
    assert [annotate._file_name(v) for v in (None, ["a.png"], 5, " \t")] == ["image"] * 3 + ["_"]


@pytest.mark.parametrize("request_value", ["left/scan.png", 5, ["left/scan.png"]])
def test_a_worklist_request_that_is_not_one_is_ignored(app, annotate, request_value):
    with app.server.test_request_context(), pytest.raises(PreventUpdate):
        annotate.open_worklist_entry(request_value, None)


@pytest.mark.parametrize(("note", "says"), [(5, "note must be a str"), (["a"], "note must be"),
                                            ("x" * (MAX_NOTE_CHARS + 1), "at most")])
def test_a_note_that_is_no_note_is_not_saved(app, annotate, tmp_path, note, says):
    meta, image_data = _image()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    with app.server.test_request_context():
        alert, _work = annotate.save(1, meta, _history(meta), None, None, "benign", note,
                                     "Ada", image_data, *blank)
    assert "Not saved." in _text(alert) and says in _text(alert)
    assert not any(p.is_file() and p.suffix != ".sqlite3"
                   and p.name not in (KEY_FILE, DATA_MARK)
                   for p in (tmp_path / "data").rglob("*"))


def test_a_note_at_the_limit_is_kept():
    meta, _ = _image()
    record = build_record(image=meta, annotator="Ada", final_mask=np.zeros((20, 30), bool),
                          note="n" * MAX_NOTE_CHARS)
    assert len(record["final"]["note"]) == MAX_NOTE_CHARS


def test_the_model_is_asked_only_about_the_open_image(app, annotate):
    # The page's copy of the file is not signed: it must be the file the signed meta
    # names, or the model would answer for another image than the outline's.


    meta, image_data = _image()
    other = io.BytesIO()
    Image.fromarray(np.full((20, 30), 9, np.uint8)).save(other, format="PNG")
    swapped = {"contents": "data:image/png;base64," + base64.b64encode(other.getvalue()).decode()}

    def segment(data):
        return as_callback(lambda: annotate.segment(1, meta, True, data, 32, None, None, None),
                           "segment-button.n_clicks", app=app, value=1)

    for data in (swapped, {"contents": "not a data url"}, "a string"):
        with pytest.raises(PreventUpdate):
            segment(data)
    # The right file goes on to the model server (down here: the answer is its alert).
    ai, alert, _done = segment(image_data)
    assert "Auto-segmentation" in _text(alert)


def test_the_pending_boxes_are_few_and_well_formed(annotate):
    sha = "ab" * 32
    good = [{"image": sha, "box": [0, 0, 40, 40], "at": i} for i in range(1, 21)]
    bad = [{"image": sha, "box": [0, 0, 40], "at": 99}, {"image": sha, "box": "0,0,4,4", "at": 98},
           {"image": sha, "box": [0, 0, float("inf"), 4], "at": 97},
           {"image": sha, "box": [0, 0, 4, 4], "at": "now"}, "box", None,
           {"image": "cd" * 32, "box": [0, 0, 4, 4], "at": 96}]
    kept = annotate._pending_boxes(good + bad, sha)
    # The latest few only: each is a model-server call.
    assert [r["at"] for r in kept] == list(range(21 - annotate.MAX_PENDING_BOXES, 21))
    assert annotate._pending_boxes("not a list", sha) == []


def test_an_uploaded_files_name_loses_bidi_c1_and_separator_characters(annotate):
    # Shown reordered on the Saved page and in a spreadsheet: "scan\u202egnp.exe" reads
    # as "scanexe.png".
    assert annotate._file_name("scan\u202egnp.exe") == "scan_gnp.exe"
    for char in ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
                 "\x80\x85\x9f\u2028\u2029"):
        assert annotate._file_name(f"a{char}b.png") == "a_b.png", hex(ord(char))
    # Joiners and other scripts' letters are names' own.
    assert annotate._file_name("\u0646\u200c\u0627 \U0001f469\u200d\u2695.png") == (
        "\u0646\u200c\u0627 \U0001f469\u200d\u2695.png")
    # Every character an annotator's name may not hold, an image's name does not keep.
    from annotation_client._signin import SignInError, checked_name

    for code in range(0x3000):
        try:
            checked_name(f"a{chr(code)}b", "x")
        except SignInError:
            assert annotate._file_name(f"a{chr(code)}b") == "a_b", hex(code)


def test_the_annotators_name_is_kept_only_as_the_field_can_send_it(app, annotate):
    from annotation_client._signin import MAX_NAME_CHARS

    with app.server.test_request_context():
        assert annotate.remember_annotator("  Dr. Ada  ", None) == "Dr. Ada"
        assert annotate.remember_annotator("x" * MAX_NAME_CHARS, None) == "x" * MAX_NAME_CHARS
        assert annotate.remember_annotator(None, "Dr. Ada") == ""
        # A number (an error in the server's log), or more than a save takes: not kept.
        for typed in (5, ["Dr. Ada"], {"name": "x"}, "x" * (MAX_NAME_CHARS + 1)):
            with pytest.raises(PreventUpdate):
                annotate.remember_annotator(typed, "Dr. Ada")


def test_the_annotator_field_takes_no_longer_name_than_a_save(app):
    from annotation_client import ids
    from annotation_client._signin import MAX_NAME_CHARS
    from annotation_client.pages import annotate

    with app.server.test_request_context():
        field = annotate._annotator_field(signed_in=False)
    assert find_component(field, ids.ANNOTATOR).maxLength == MAX_NAME_CHARS
