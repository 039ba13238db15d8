"""Compare with another version: annotation_client._compare, and the Annotate page's
*Compare with* callbacks, called directly.

Versions are saved into a real data directory (and its SQLite index) in tmp_path by
:class:`AnnotationStore` saves of :func:`build_record` records of an 8 x 6 image, as the
page's Save writes them. The callbacks run inside ``app.server.test_request_context()``
(with the sign-in proxy's header for blinded reading), in a copied context whose
``triggered_inputs`` name the input that fired, as the Dash docs show for testing
callbacks.
"""

from __future__ import annotations

import datetime as dt

import dash
import numpy as np
import pytest
from _dash_helpers import as_callback, find_component, text_of
from dash.exceptions import PreventUpdate

import vectorizer
from annotation_client import _compare, _editing, _history, _shapes, create_app, ids
from annotation_client._record import build_record
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.usefixtures("an_app_exists")

SHA = "e5" * 32
OTHER_SHA = "f6" * 32
WIDTH, HEIGHT = 8, 6
META = {"sha256": SHA, "name": "scan.png", "width": WIDTH, "height": HEIGHT}
UTC = dt.UTC
USER = "X-Forwarded-User"
BLINDED = {"ANNOTATOR_HEADER": USER, "BLINDED_READING": True, "REVIEWERS": "Dr Chair"}

#: Columns 1-4 of rows 1-4 (16 pixels) and columns 3-6 of the same rows (16 pixels):
#: 8 shared, Dice 2 * 8 / 32 = 0.5.
LEFT = "M1,1L5,1L5,5L1,5Z"
RIGHT = "M3,1L7,1L7,5L3,5Z"
#: A ring: a square with a square hole, two subpaths of one region.
RING = "M0,0L8,0L8,6L0,6ZM2,2L4,2L4,4L2,4Z"

VALUE = f"{ids.COMPARE_VERSION}.value"
CHANGED = f"{ids.OUTLINE_CHANGED}.data"
OPENED = f"{ids.IMAGE_OPENED}.data"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})


def _save(data_dir, paths, annotator="Dr Ada", label=None,
          saved_at=dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)) -> int:
    """Save ``paths`` as the image's next version, as the page's Save does; its number."""
    mask = _shapes.paths_to_mask(paths, (HEIGHT, WIDTH))
    record = build_record(image=META, annotator=annotator, final_mask=mask,
                          final_label=label, saved_at=saved_at)
    return AnnotationStore(data_dir).save(
        SHA, svg=_shapes.paths_to_svg(paths, WIDTH, HEIGHT),
        mask_png=vectorizer.mask_to_png(mask), record=record,
    ).version


def _history_of(paths, image=SHA) -> dict:
    """The undo history with ``paths`` as the outline on screen."""
    history = _history.new_history(_editing.empty_state(), image=image)
    return _history.push(history, _editing.make_state(list(paths), "edit", density=32))


def _call(app, function, triggered, *args, headers=None):
    """``function(*args)`` as Dash calls it when the inputs ``triggered`` fired."""
    return as_callback(lambda: function(*args), triggered, app=app, headers=headers)


def _compare_call(app, annotate, value, history, *, triggered=(VALUE,), shown=None,
                  meta=META, headers=None):
    return _call(app, annotate.compare_version, triggered, value, None, None, shown, meta,
                 history, headers=headers)


def _list_call(app, annotate, *, meta=META, listed=None, value="", triggered=(),
               headers=None):
    """``list_compare_versions``'s answer; the list it was drawn with is ``listed``
    (the layout's, only "None", unless given)."""
    listed = [{"label": "None", "value": ""}] if listed is None else listed
    return _call(app, annotate.list_compare_versions, triggered, meta, listed, value, 1,
                 headers=headers)


def _operations(figure) -> list[dict]:
    return figure.to_plotly_json()["operations"]


# --------------------------------------------------------------------------- the module


def test_dice_of_two_outlines_as_a_save_rasterises_them():
    shape = (HEIGHT, WIDTH)
    assert _compare.dice_with([LEFT], [RIGHT], shape) == pytest.approx(0.5)
    assert _compare.dice_with([LEFT], [LEFT], shape) == 1.0
    assert _compare.dice_with([LEFT], [], shape) == 0.0
    # Both found no lesion: they agree, as reader agreement counts it.
    assert _compare.dice_with([], [], shape) == 1.0
    # The hole is no part of the ring: 48 - 4 pixels against LEFT's 16, 12 shared.
    assert _compare.dice_with([RING], [LEFT], shape) == pytest.approx(2 * 12 / (44 + 16))


def test_the_overlay_closes_every_ring_and_lifts_the_pen_between_them():
    xs, ys = _compare.overlay_xy([RING, "M5,1L7,1L6,2Z"])
    assert xs == [0, 8, 8, 0, 0, None, 2, 4, 4, 2, 2, None, 5, 7, 6, 5, None]
    assert ys == [0, 0, 6, 6, 0, None, 2, 2, 4, 4, 2, None, 1, 1, 2, 1, None]
    assert _compare.overlay_xy([]) == ([], [])


def test_the_overlay_of_a_saved_version_is_in_the_figures_pixel_convention(data_dir):
    # Pixel (r, c) covers x in [c, c+1], y in [r, r+1] (annotation_client._figure): a
    # saved block of rows 1-3 and columns 2-4, read back from its SVG, spans exactly
    # x 2..5 and y 1..4, on the image trace's pixels.
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[1:4, 2:5] = True
    paths = list(vectorizer.mask_to_paths(mask, max_vertices=32))
    version = _save(data_dir, paths)
    store = AnnotationStore(data_dir)
    _record, read = _compare.read_version(store, META, version, None)
    trace = _compare.overlay_trace(read)
    xs = [x for x in trace["x"] if x is not None]
    ys = [y for y in trace["y"] if y is not None]
    assert (min(xs), max(xs), min(ys), max(ys)) == (2, 5, 1, 4)
    assert np.array_equal(_shapes.paths_to_mask(read, (HEIGHT, WIDTH)), mask)
    # A read-only dashed line that takes no hover from the image, on the image's axes.
    assert trace["type"] == "scatter" and trace["mode"] == "lines"
    assert trace["line"]["dash"] == "dash" and trace["line"]["color"] == _compare.COMPARE_COLOR
    assert trace["hoverinfo"] == "skip" and (trace["xaxis"], trace["yaxis"]) == ("x", "y")


def test_the_list_names_each_version_newest_first_with_its_reader_date_and_label(data_dir):
    _save(data_dir, [LEFT], "Dr Ada", "benign")
    _save(data_dir, [RIGHT], "Dr Bo", None, saved_at=dt.datetime(2024, 5, 2, 9, 30, tzinfo=UTC))
    options = _compare.version_options(AnnotationStore(data_dir), SHA, None)
    assert options == [
        {"label": "None", "value": ""},
        {"label": "v2 by Dr Bo, 2024-05-02 09:30 UTC, final label none", "value": "2"},
        {"label": "v1 by Dr Ada, 2024-05-01 10:00 UTC, final label benign", "value": "1"},
    ]
    assert _compare.version_options(AnnotationStore(data_dir), OTHER_SHA, None) == [
        {"label": "None", "value": ""}]


def test_a_reader_sees_only_their_own_versions_and_cannot_read_anothers(data_dir):
    ada = _save(data_dir, [LEFT], "Dr Ada", "benign")
    bo = _save(data_dir, [RIGHT], "Dr Bo", "malignant")
    store = AnnotationStore(data_dir)
    assert [o["value"] for o in _compare.version_options(store, SHA, "Dr Ada")] == ["", "1"]
    assert [o["value"] for o in _compare.version_options(store, SHA, "Dr Bo")] == ["", "2"]
    with pytest.raises(_compare.NotVisible, match="that you saved"):
        _compare.read_version(store, META, bo, "Dr Ada")
    record, paths = _compare.read_version(store, META, ada, "Dr Ada")
    assert record["annotator"] == "Dr Ada" and _shapes.same_geometry(paths, [LEFT])
    with pytest.raises(_compare.NotVisible, match="not a saved version"):
        _compare.read_version(store, META, 9, None)


@pytest.mark.parametrize(("value", "version"), [
    ("", None), ("2", 2), (3, 3), ("0", None), ("-1", None), ("2.5", None), (True, None),
    (None, None), ("٣", None), ({"v": 1}, None),
])  # fmt: skip
def test_only_a_version_number_is_a_version(value, version):
    assert _compare.chosen_version(value) == version


def test_an_unreadable_record_is_listed_to_say_its_damage_when_chosen(data_dir):
    _save(data_dir, [LEFT])
    (data_dir / SHA / "v001.json").write_text("{ not json")
    options = _compare.version_options(AnnotationStore(data_dir), SHA, None)
    assert options[1] == {"label": "v1 (its record cannot be read)", "value": "1"}


# --------------------------------------------------------------------------- the page


def test_the_row_is_in_the_record_card_hidden_until_there_is_a_version(app, annotate):
    with app.server.test_request_context("/"):
        layout = annotate.layout()
    row = find_component(layout, ids.COMPARE)
    assert row is not None and row.style == {"display": "none"}
    select = find_component(layout, ids.COMPARE_VERSION)
    assert select.value == "" and select.options == [{"label": "None", "value": ""}]


def test_choosing_a_version_draws_its_outline_as_a_trace_and_says_its_dice(
        app, annotate, data_dir):
    _save(data_dir, [LEFT], "Dr Ada", "benign")
    figure, caption, shown = _compare_call(app, annotate, "1", _history_of([RIGHT]))
    [operation] = _operations(figure)
    # A trace beside the image, never a shape: the edited outline is the shapes'.
    assert operation["operation"] == "Assign" and operation["location"] == ["data", 1]
    assert operation["params"]["value"] == _compare.overlay_trace([LEFT])
    assert text_of(caption) == ("Dashed orange: v1 by Dr Ada, 2024-05-01 10:00 UTC, final "
                                "label benign. Dice with the outline on screen: 0.500.")
    assert shown == {"image": SHA, "version": 1}


def test_an_outline_change_recomputes_the_dice_and_leaves_the_trace(app, annotate, data_dir):
    _save(data_dir, [LEFT])
    shown = {"image": SHA, "version": 1}
    figure, caption, again = _compare_call(app, annotate, "1", _history_of([LEFT]),
                                           triggered=(CHANGED,), shown=shown)
    assert figure is dash.no_update and again == shown
    assert text_of(caption).endswith("Dice with the outline on screen: 1.000.")
    figure, caption, _ = _compare_call(app, annotate, "1", _history_of([]),
                                       triggered=(CHANGED,), shown=shown)
    assert text_of(caption).endswith("Dice with the outline on screen: 0.000.")


@pytest.mark.parametrize("shown", [None, {"image": OTHER_SHA, "version": 1},
                                   {"image": SHA, "version": 2}])
def test_an_outline_change_with_nothing_compared_draws_nothing(app, annotate, data_dir, shown):
    # The last one: the list already names another version, whose own call draws it.
    _save(data_dir, [LEFT])
    with pytest.raises(PreventUpdate):
        _compare_call(app, annotate, "1", _history_of([LEFT]), triggered=(CHANGED,),
                      shown=shown)


def test_choosing_none_takes_the_trace_away(app, annotate, data_dir):
    _save(data_dir, [LEFT])
    figure, caption, shown = _compare_call(app, annotate, "", _history_of([LEFT]),
                                           shown={"image": SHA, "version": 1})
    assert _operations(figure) == [{"operation": "Delete", "location": ["data", 1],
                                    "params": {}}]
    assert caption is None and shown is None


def test_a_new_image_forgets_the_comparison(app, annotate, data_dir):
    # Its figure is new, without the trace; the list goes back to None.
    _save(data_dir, [LEFT])
    assert _compare_call(app, annotate, "1", _history_of([LEFT]), triggered=(OPENED,),
                         shown={"image": SHA, "version": 1}) == (dash.no_update, None, None)
    style, options, value = _list_call(app, annotate, value="1", triggered=(OPENED,))
    assert value == "" and style == {} and [o["value"] for o in options] == ["", "1"]


def test_the_list_follows_the_saves_and_keeps_the_choice(app, annotate, data_dir):
    assert _list_call(app, annotate) == ({"display": "none"}, dash.no_update, dash.no_update)
    _save(data_dir, [LEFT])
    style, options, value = _list_call(app, annotate)
    assert style == {} and len(options) == 2 and value is dash.no_update
    _save(data_dir, [RIGHT])
    style, options, value = _list_call(app, annotate, listed=options, value="1")
    assert [o["value"] for o in options] == ["", "2", "1"] and value is dash.no_update
    # Unchanged: the list is not sent again.
    assert _list_call(app, annotate, listed=options, value="1")[1] is dash.no_update
    # A version no longer listed (its files removed) is no longer chosen.
    for path in (data_dir / SHA).glob("v001*"):
        path.unlink()
    style, options, value = _list_call(app, annotate, listed=options, value="1")
    assert [o["value"] for o in options] == ["", "2"] and value == ""


def test_without_an_image_there_is_nothing_to_compare(app, annotate):
    assert _list_call(app, annotate, meta=None, value="3") == (
        {"display": "none"}, dash.no_update, "")
    figure, caption, shown = _compare_call(app, annotate, "", None, meta=None)
    assert caption is None and shown is None


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda folder: (folder / "v001.svg").unlink(), "No such file or directory: v001.svg"),
    (lambda folder: (folder / "v001.svg").write_text("<svg><path d='M0,0"),
     "the SVG cannot be parsed"),
    (lambda folder: (folder / "v001.svg").write_text(_shapes.paths_to_svg([LEFT], 9, 6)),
     "the SVG is sized 9x6, the image 8x6"),
    (lambda folder: (folder / "v001.json").write_text("{ not json"), "v001.json"),
    (lambda folder: (folder / "v001.json").write_text("[]"), "v001.json"),
])  # fmt: skip
def test_a_damaged_version_says_why_and_draws_nothing(app, annotate, data_dir, damage, reason):
    _save(data_dir, [LEFT])
    damage(data_dir / SHA)
    figure, caption, shown = _compare_call(app, annotate, "1", _history_of([LEFT]))
    assert _operations(figure) == [{"operation": "Delete", "location": ["data", 1],
                                    "params": {}}]
    text = text_of(caption)
    assert text.startswith("Version 1 cannot be compared.") and reason in text
    assert str(data_dir) not in text  # the data folder's path is not the page's to show
    assert shown is None


# --------------------------------------------------------------------------- blinded reading


@pytest.fixture
def blinded(data_dir):
    _save(data_dir, [LEFT], "Dr Ada", "benign")
    _save(data_dir, [RIGHT], "Dr Bo", "malignant")
    return create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"} | BLINDED)


def test_under_blinded_reading_a_reader_lists_only_their_own_versions(blinded, annotate):
    _style, options, _value = _list_call(blinded, annotate, headers={USER: "Dr Ada"})
    assert [o["label"] for o in options] == [
        "None", "v1 by Dr Ada, 2024-05-01 10:00 UTC, final label benign"]
    # A reviewer sees every version.
    _style, options, _value = _list_call(blinded, annotate, headers={USER: "Dr Chair"})
    assert [o["value"] for o in options] == ["", "2", "1"]
    # Nobody signed in: nothing to list.
    assert _list_call(blinded, annotate, value="2", headers={})[0] == {"display": "none"}


def test_under_blinded_reading_anothers_version_is_not_drawn_even_when_asked(
        blinded, annotate):
    # The list's value comes from the browser: a forged "2" is refused.
    figure, caption, shown = _compare_call(blinded, annotate, "2", _history_of([LEFT]),
                                           headers={USER: "Dr Ada"})
    assert [o["operation"] for o in _operations(figure)] == ["Delete"]
    assert "Dr Bo" not in text_of(caption) and "malignant" not in text_of(caption)
    assert "is not a saved version of this image that you saved" in text_of(caption)
    assert shown is None
    # The reviewer's is.
    figure, caption, _ = _compare_call(blinded, annotate, "2", _history_of([LEFT]),
                                       headers={USER: "Dr Chair"})
    assert _operations(figure)[0]["location"] == ["data", 1]
    assert "v2 by Dr Bo" in text_of(caption) and "final label malignant" in text_of(caption)


def test_a_version_without_an_outline_is_said_not_pointed_at():
    record = {"annotator": "Dr Ada", "saved_at": "2024-05-01T10:00:00Z",
              "final": {"label": "normal", "empty": True}}
    assert _compare.caption_text(1, record, 1.0, outlined=False) == (
        "v1 by Dr Ada, 2024-05-01 10:00 UTC, final label normal: no outline (no lesion "
        "outlined), nothing drawn. Dice with the outline on screen: 1.000.")
    damaged = {**record, "final": {"label": "benign", "empty": False}}
    assert "its SVG holds no outline, though its record says it has one" in (
        _compare.caption_text(1, damaged, 0.0, outlined=False))
    assert _compare.caption_text(1, damaged, 0.5).startswith("Dashed orange: v1 by Dr Ada")
