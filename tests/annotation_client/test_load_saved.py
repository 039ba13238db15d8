"""Loading a saved version to revise it, and the outline's calipers and measurements:
the Annotate page's callbacks, called directly.

``show_previous_saves`` and ``load_saved`` run inside ``app.server.test_request_context()``
against a real data directory in tmp_path, filled by :class:`AnnotationStore` saves of
:func:`build_record` records of an 8 x 6 image. ``edit`` reads ``dash.ctx`` to know
which input fired, so it runs in a copied context whose ``triggered_inputs`` name that
input, as the Dash docs show for testing callbacks.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import dash
import numpy as np
import pytest
from _dash_helpers import as_callback, find_component, text_of
from dash.exceptions import PreventUpdate

import vectorizer
from annotation_client import _editing, _history, _shapes, _unsaved, create_app, ids
from annotation_client._record import DESCRIPTOR_OPTIONS, build_record
from annotation_client._storage import AnnotationStore

SHA = "c3" * 32
OTHER_SHA = "d4" * 32
META = {"sha256": SHA, "name": "scan.png", "width": 8, "height": 6}
WIDTH, HEIGHT = 8, 6
UTC = dt.UTC

# A ring (a square with a square hole) at fractional coordinates, and a triangle; written
# as format_path writes them, so what is loaded is character for character what was saved.
RING = "M0.5,0.25L7.5,0.25L7.5,5.75L0.5,5.75ZM2.125,2L4,2L4,3.5L2.125,3.5Z"
TRIANGLE = "M1,1L3,1L2,2.5Z"
SAVED_PATHS = [RING, TRIANGLE]
DRAWN = "M5,1L7,1L7,3Z"  # a hand-drawn outline on screen before the load
N = len(DESCRIPTOR_OPTIONS)  # shape, orientation, margin, echo_pattern, posterior, assessment


pytestmark = pytest.mark.usefixtures("an_app_exists")


def _unsigned(value: dict) -> dict:
    """A store's value without the signature the server adds (annotation_client._signing)."""
    return {k: v for k, v in value.items() if k != "signature"}


def _steps(history: dict) -> dict:
    """A history without its signature and ``drawn`` (the drawing each answer sends the
    graph, new in every answer): what the undo history holds."""
    return {k: v for k, v in history.items() if k not in ("signature", "drawn")}


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "annotations"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir})


def _save(data_dir, paths, *, annotator="Dr Ada", label=None, note="", descriptors=None,
          saved_at=dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC), width=WIDTH, height=HEIGHT,
          box_models=None):
    """Save ``paths`` as the image's next version, as the page's Save does; its number."""
    mask = _shapes.paths_to_mask(paths, (HEIGHT, WIDTH))
    record = build_record(
        image=META, annotator=annotator, final_mask=mask, final_label=label,
        descriptors=descriptors, note=note, saved_at=saved_at, box_models=box_models,
    )
    saved = AnnotationStore(data_dir).save(
        SHA, svg=_shapes.paths_to_svg(paths, width, height),
        mask_png=vectorizer.mask_to_png(mask), record=record,
    )
    return saved.version


def _load(app, annotate, clicks=1, meta=META):
    """``load_saved``'s answer without its last three (the image's meta and info line,
    which change only for a spacing typed by hand, and the version's AI classification:
    see their own tests)."""
    with app.server.test_request_context("/_dash-update-component"):
        return annotate.load_saved(clicks, meta)[:-3]


def _previous(app, annotate, meta=META, shown=None):
    """The line's style and text; into the list ``shown``, the version it names."""
    with app.server.test_request_context("/_dash-update-component"):
        style, text, named = annotate.show_previous_saves(meta, None, True)
    if shown is not None:
        shown.append(named)
    return style, text


# --------------------------------------------------------------------------- previous_save_text


def test_previous_save_text_names_version_count_annotator_time_and_label(annotate):
    record = build_record(
        image=META, annotator=" Dr Ada ", final_mask=_shapes.paths_to_mask([TRIANGLE], (6, 8)),
        final_label="benign",
        # 10:06 at UTC+1 is 09:06 UTC; the seconds are not shown.
        saved_at=dt.datetime(2026, 12, 1, 10, 6, 41, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    record["version"] = 2
    assert annotate.previous_save_text(record, 3) == (
        "Saved before: v2 (of 3) by Dr Ada, 2026-12-01 09:06 UTC, final label benign."
    )


def test_previous_save_text_without_a_final_label_says_none(annotate):
    base = {"version": 1, "annotator": "Dr Bo", "saved_at": "2024-05-02T09:30:59.123456Z"}
    expected = "Saved before: v1 (of 1) by Dr Bo, 2024-05-02 09:30 UTC, final label none."
    assert annotate.previous_save_text(dict(base, final={"label": None}), 1) == expected
    assert annotate.previous_save_text(dict(base, final={}), 1) == expected
    assert annotate.previous_save_text(base, 1) == expected


# --------------------------------------------------------------------------- show_previous_saves


def test_previous_saves_are_hidden_without_an_open_image(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    assert _previous(app, annotate, meta=None) == ({"display": "none"}, None)


def test_previous_saves_are_hidden_for_an_image_never_saved(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)  # another image's save does not count
    assert _previous(app, annotate, meta=dict(META, sha256=OTHER_SHA)) == (
        {"display": "none"}, None
    )


def test_previous_saves_are_hidden_when_the_only_save_was_interrupted(app, annotate, data_dir):
    # A crash after the SVG, before the record: no complete version to offer.
    (data_dir / SHA).mkdir(parents=True)
    (data_dir / SHA / "v001.svg").write_text(_shapes.paths_to_svg([TRIANGLE], 8, 6))
    assert _previous(app, annotate) == ({"display": "none"}, None)


def test_previous_saves_show_the_latest_of_several(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, annotator="Dr Ada", label="benign")
    _save(data_dir, [TRIANGLE], annotator="Dr Bo",
          saved_at=dt.datetime(2024, 5, 2, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert _previous(app, annotate) == (
        {}, "Saved before: v2 (of 2) by Dr Bo, 2024-05-02 09:30 UTC, final label none."
    )
    _save(data_dir, [RING], annotator="Dr Cy", label="malignant")
    assert _previous(app, annotate) == (
        {}, "Saved before: v3 (of 3) by Dr Cy, 2024-05-01 10:00 UTC, final label malignant."
    )


def test_previous_saves_say_when_the_latest_record_is_corrupt(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    _save(data_dir, [TRIANGLE])
    record = data_dir / SHA / "v002.json"
    corrupt = record.read_text()[:40]  # cut short
    record.write_text(corrupt)
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(corrupt)
    assert _previous(app, annotate) == (
        {}, "This image has saved versions, but the latest cannot be read (the record file "
        f"v002.json is damaged: {error.value}. Restore it from a backup; the Saved page "
        "lists it as damaged)."
    )


def test_previous_saves_say_when_the_latest_record_cannot_be_opened(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    record = data_dir / SHA / "v002.json"
    record.mkdir()  # named like a record, but a folder: reading it is an OSError
    with pytest.raises(IsADirectoryError) as error:
        record.read_text()
    assert _previous(app, annotate) == (
        {}, f"This image has saved versions, but the latest cannot be read ({error.value})."
    )


def test_previous_saves_say_when_the_latest_record_is_not_an_object(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    (data_dir / SHA / "v001.json").write_text("[]\n")
    style, text = _previous(app, annotate)
    assert style == {}
    assert text.startswith("This image has saved versions, but the latest cannot be read")


# --------------------------------------------------------------------------- load_saved


def test_load_saved_returns_the_saved_outline_label_note_and_descriptors(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, label="malignant", note="  compare with prior ",
          descriptors={"shape": "irregular", "margin": ["spiculated", "angular"]})
    loaded, label, note, work, message, *descriptors = _load(app, annotate)
    at = loaded.pop("at")
    assert isinstance(at, int) and at > 0
    assert isinstance(loaded.pop("signature"), str)  # the server wrote it: signed
    assert loaded == {"image": SHA, "version": 1, "paths": SAVED_PATHS}
    assert label == "malignant"
    assert note == "compare with prior"  # as the record keeps it, stripped
    # In DESCRIPTOR_OPTIONS order; the margin as a list (in lexicon order), unset ones "".
    assert list(DESCRIPTOR_OPTIONS) == [
        "shape", "orientation", "margin", "echo_pattern", "posterior_features", "assessment"
    ]
    assert descriptors == ["irregular", "", ["angular", "spiculated"], "", "", ""]
    assert work == {
        "image": SHA,
        "paths": SAVED_PATHS,
        "label": "malignant",
        "note": "compare with prior",
        "descriptors": {"margin": ["angular", "spiculated"], "shape": "irregular"},
        "spacing": None,  # in pixels
        "version": 1,  # the version the work is while unchanged
    }
    assert {k: v for k, v in work.items() if k != "version"} == _unsaved.snapshot(
        SHA, SAVED_PATHS, "malignant", "compare with prior",
        dict(zip(DESCRIPTOR_OPTIONS, descriptors, strict=True)),
    )
    assert message.id == "load-result" and message.color == "info"
    assert text_of(message) == (
        "Version 1 loaded: 2 outline(s). Saving makes version 2, recorded as a revision "
        "of version 1 by Dr Ada; Undo brings back the outline shown before."
    )


def test_load_saved_of_a_bare_record_gives_blank_fields(app, annotate, data_dir):
    _save(data_dir, [])
    loaded, label, note, work, message, *descriptors = _load(app, annotate)
    assert loaded["paths"] == [] and loaded["version"] == 1
    assert (label, note) == (None, "")
    assert descriptors == ["", "", [], "", "", ""]
    assert work == {"image": SHA, "paths": [], "label": None, "note": None, "descriptors": {},
                    "spacing": None, "version": 1}
    assert text_of(message).startswith("Version 1 loaded: 0 outline(s). Saving makes version 2,")


def test_load_saved_loads_the_latest_of_several_versions(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, label="malignant", note="first",
          descriptors={"margin": ["angular"]})
    _save(data_dir, [RING], label="benign", note="second", descriptors={"shape": "oval"})
    _save(data_dir, [TRIANGLE], label="normal", note="third",
          descriptors={"orientation": "parallel", "assessment": "2"})
    loaded, label, note, work, message, *descriptors = _load(app, annotate)
    assert (loaded["version"], loaded["paths"]) == (3, [TRIANGLE])
    assert (label, note) == ("normal", "third")
    assert descriptors == ["", "parallel", [], "", "", "2"]
    assert work == {**_unsaved.snapshot(
        SHA, [TRIANGLE], "normal", "third", {"orientation": "parallel", "assessment": "2"}
    ), "version": 3}
    assert text_of(message) == (
        "Version 3 loaded: 1 outline(s). Saving makes version 4, recorded as a revision "
        "of version 3 by Dr Ada; Undo brings back the outline shown before."
    )


def test_load_takes_the_version_the_line_names_and_says_a_newer_one_was_saved(
    app, annotate, data_dir
):
    """Two tabs on one image: this one read "v1 by Dr Ada"; Dr Bo saved v2 in the other."""
    _save(data_dir, SAVED_PATHS, annotator="Dr Ada", label="benign")
    shown = []
    _previous(app, annotate, shown=shown)
    assert shown == [{"image": SHA, "version": 1}]
    _save(data_dir, [TRIANGLE], annotator="Dr Bo", label="malignant",
          saved_at=dt.datetime(2024, 5, 2, 10, 0, tzinfo=UTC))
    with app.server.test_request_context("/_dash-update-component"):
        loaded, label, _note, _work, message, *_ = annotate.load_saved(1, META, shown[0])
    # What the radiologist read is what is loaded, and the message says what is newer.
    assert loaded["version"] == 1 and label == "benign"
    assert "Version 1 loaded" in text_of(message)
    assert "A newer version, v2, exists" in text_of(message)
    # The line, drawn again (by the load's answer, or the next poll), names v2 by Dr Bo,
    # and the next click loads that.
    _style, text = _previous(app, annotate, shown=shown)
    assert "v2 (of 2) by Dr Bo" in text and shown[-1] == {"image": SHA, "version": 2}
    with app.server.test_request_context("/_dash-update-component"):
        loaded, label, _note, _work, message, *_ = annotate.load_saved(2, META, shown[-1])
    assert loaded["version"] == 2 and label == "malignant"
    assert "newer" not in text_of(message)
    # A line of another image, or a version that is not one, is no choice: the latest.
    for other in ({"image": OTHER_SHA, "version": 1}, {"image": SHA, "version": 7},
                  {"image": SHA, "version": "1"}, "v1", None):
        with app.server.test_request_context("/_dash-update-component"):
            assert annotate.load_saved(3, META, other)[0]["version"] == 2, other


def test_the_saved_before_line_is_drawn_again_at_each_health_poll(app):
    """So a version saved in another tab shows before Load it to revise is clicked."""
    from annotation_client import ids

    # The callbacks as the browser is told of them.
    specs = app.server.test_client().get("/_dash-dependencies").get_json()
    inputs = [
        [i["id"] + "." + i["property"] for i in spec["inputs"]]
        for spec in specs
        if f"{ids.PREVIOUS_SAVES_TEXT}.children" in spec["output"]
    ]
    assert len(inputs) == 1 and f"{ids.SERVER_POLL}.n_intervals" in inputs[0]


def test_each_click_of_load_is_a_new_load(app, annotate, data_dir):
    # The edit callback tells a new load from one seen before by "at".
    _save(data_dir, SAVED_PATHS)
    first, second = _load(app, annotate, clicks=1)[0], _load(app, annotate, clicks=2)[0]
    assert first["at"] != second["at"]
    assert _unsigned({**first, "at": 0}) == _unsigned({**second, "at": 0})


def test_an_interrupted_save_is_not_loaded(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, label="benign")
    # A crash after the SVG of version 2, before its record.
    (data_dir / SHA / "v002.svg").write_text(_shapes.paths_to_svg([TRIANGLE], 8, 6))
    loaded, label, *_ = _load(app, annotate)
    assert (loaded["version"], loaded["paths"], label) == (1, SAVED_PATHS, "benign")


def test_the_load_message_names_the_version_a_save_will_make(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    (data_dir / SHA / "v002.svg").write_text(_shapes.paths_to_svg([TRIANGLE], 8, 6))
    message = _load(app, annotate)[4]
    made = _save(data_dir, SAVED_PATHS)  # the save the user makes next
    assert made == 3
    assert f"Saving makes version {made}," in text_of(message)


def _assert_load_error(result, reason):
    assert len(result) == 5 + N
    failed, message = result[0], result[4]
    assert all(v is dash.no_update for i, v in enumerate(result) if i not in (0, 4))
    # Still an answer for the outline history (see the test of a link's failed load).
    assert _unsigned(failed) == {"image": failed["image"], "failed": True, "at": failed["at"]}
    assert failed["image"] in (SHA, OTHER_SHA)
    assert message.id == "load-error" and message.color == "danger"
    assert text_of(message) == f"The saved version cannot be loaded. {reason}"


def test_load_saved_with_the_svg_deleted_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    svg = data_dir / SHA / "v001.svg"
    svg.unlink()
    # The file named, not its path, which would give the data directory away.
    _assert_load_error(_load(app, annotate), "No such file or directory: v001.svg")


def test_load_saved_with_the_svg_corrupted_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    svg = data_dir / SHA / "v001.svg"
    svg.write_text(svg.read_text()[:100])  # cut short inside the first <path>
    result = _load(app, annotate)
    text = text_of(result[4])
    assert text.startswith("The saved version cannot be loaded. the SVG cannot be parsed (")
    _assert_load_error(result, text.removeprefix("The saved version cannot be loaded. "))


def test_load_saved_with_an_svg_of_another_size_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, width=16, height=12)
    _assert_load_error(_load(app, annotate), "the SVG is sized 16x12, the image 8x6")


def test_load_saved_with_a_corrupt_record_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    record = data_dir / SHA / "v001.json"
    corrupt = record.read_text()[:-30]
    record.write_text(corrupt)
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(corrupt)
    _assert_load_error(_load(app, annotate), (
        f"the record file v001.json is damaged: {error.value}. Restore it from a backup; "
        "the Saved page lists it as damaged"))


def test_load_saved_of_an_image_never_saved_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    _assert_load_error(
        _load(app, annotate, meta=dict(META, sha256=OTHER_SHA)),
        "this image has no saved version",
    )


def test_load_saved_with_an_svg_that_is_not_svg_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    (data_dir / SHA / "v001.svg").write_text("<html><body>Not found</body></html>\n")
    _assert_load_error(_load(app, annotate), "the file is not an SVG document: its outermost "
                                             "element is <html>, not <svg>")


def test_load_saved_with_a_record_that_is_not_an_object_says_so(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS)
    (data_dir / SHA / "v001.json").write_text("[]\n")
    result = _load(app, annotate)
    assert result[4].id == "load-error"


@pytest.mark.parametrize(("clicks", "meta"), [(None, META), (0, META), (1, None)])
def test_load_saved_needs_a_click_and_an_open_image(app, annotate, data_dir, clicks, meta):
    _save(data_dir, SAVED_PATHS)
    with pytest.raises(PreventUpdate):
        _load(app, annotate, clicks=clicks, meta=meta)


# --------------------------------------------------------------------------- edit


def _edit(annotate, triggered, *, loaded, history, meta=META, max_vertices=32, ai=None,
          box_result=None, pending=None, relayout=None, boxes=False, calipers=True,
          visible=True, revise=None, auto=True, everything=False, undo=None):
    """``edit`` as Dash calls it when the inputs ``triggered`` (prop ids) fired.

    Returns its outputs up to the signed history's echo (``OUTLINE_CHANGED``), then
    the pending boxes if ``boxes``; all of them, the graph event it leaves last, if
    ``everything``.
    """
    out = as_callback(lambda: annotate.edit(
        meta, ai, box_result, relayout, undo, None, None, max_vertices, 0.3, visible,
        calipers, loaded, history, None, None, None, pending, revise, auto,
    ), triggered)
    if everything:
        return out
    return out[:-1] if boxes else out[:-2]


LOADED = f"{ids.LOADED_SAVE}.data"
OPACITY = f"{ids.OVERLAY_OPACITY}.value"


def _drawn_history():
    """The image open with a hand-drawn outline on screen."""
    history = _history.new_history(_editing.empty_state(), image=SHA)
    return _history.push(history, _editing.make_state([DRAWN], "edit", density=32))


def _loaded(at=111, image=SHA, paths=SAVED_PATHS, version=1):
    return {"image": image, "version": version, "paths": list(paths), "at": at}


def _patched_paths(figure) -> list[str]:
    """The region paths a figure Patch draws."""
    operations = figure.to_plotly_json()["operations"]
    shapes = next(o for o in operations if o["location"] == ["layout", "shapes"])
    return [shape["path"] for shape in shapes["params"]["value"]]


def _patched(figure, location) -> object:
    operations = figure.to_plotly_json()["operations"]
    return next(o for o in operations if o["location"] == location)["params"]["value"]


@pytest.mark.parametrize(("visible", "calipers", "drawn"), [
    (True, True, True), (True, False, False), (False, True, False),
])  # fmt: skip
def test_each_outline_change_draws_the_largest_regions_calipers(annotate, visible, calipers,
                                                               drawn):  # fmt: skip
    """The calipers follow the outline, and hide with it or on their own switch."""
    import vectorizer
    from annotation_client import _shapes

    _, figure, *_ = _edit(annotate, [LOADED], loaded=_loaded(), history=_drawn_history(),
                          visible=visible, calipers=calipers)  # fmt: skip
    annotations = _patched(figure, ["layout", "annotations"])
    if not drawn:
        assert annotations == []
        return
    paths = _patched_paths(figure)
    regions = vectorizer.measure_regions(_shapes.paths_to_mask(paths, (6, 8)))
    largest = max(regions, key=lambda r: r["area_px"])
    assert [[[a["ax"], a["ay"]], [a["x"], a["y"]]] for a in annotations] == [
        largest["max_diameter_endpoints"], largest["perpendicular_diameter_endpoints"]
    ]


def _history_of(paths, action="ai"):
    """A history of one step: ``paths`` as the AI's outline, or as ``action`` made it."""
    history = _history.new_history(_editing.empty_state(), image=SHA)
    base = "ai" if action == "ai" else None
    return _history.push(history, _editing.make_state(paths, action, base=base, density=32))


# Two regions: a 6 x 2 rectangle (the largest) and one pixel. The rectangle's long axis
# is a diagonal; across it, through its centre (4, 2), from the top edge to the bottom
# one, 2 * sqrt(40) / 6 long: x moves 1/3 for the 2 it goes down.
RECTANGLE, SPECK = "M1,1L7,1L7,3L1,3Z", "M1,4L2,4L2,5L1,5Z"


def _assert_rectangle_calipers(annotations):
    long, across = ([[a["ax"], a["ay"]], [a["x"], a["y"]]] for a in annotations)
    assert sorted(map(tuple, long)) in ([(1, 1), (7, 3)], [(1, 3), (7, 1)])
    (x0, y0), (x1, y1) = sorted(map(tuple, across), key=lambda p: p[1])
    assert (y0, y1) == pytest.approx((1, 3)) and (x0 + x1) / 2 == pytest.approx(4)
    slope = 1 if sorted(map(tuple, long))[0] == (1, 1) else -1  # long axis down-right?
    assert x0 - x1 == pytest.approx(slope * 2 / 3)


def test_the_calipers_are_the_largest_regions(annotate):
    history = _history_of([SPECK, RECTANGLE])
    _, figure, *_ = _edit(annotate, [OPACITY], loaded=None, history=history)
    _assert_rectangle_calipers(_patched(figure, ["layout", "annotations"]))


@pytest.mark.parametrize("calipers", [True, False])
def test_coming_back_to_the_page_draws_the_calipers_again(annotate, calipers):
    image_data = {"contents": "data:image/png;base64,AAAA"}
    meta = dict(META, kind="png", size_bytes=100)
    figure, *_ = annotate.restore_workspace(
        0, meta, image_data, _history_of([RECTANGLE, SPECK]), None, 0.3, True, "pan", calipers
    )
    annotations = figure.to_plotly_json()["layout"].get("annotations", [])
    if calipers:
        _assert_rectangle_calipers(annotations)
    else:
        assert annotations == []


def test_an_outline_too_broken_to_measure_is_said_so_in_the_panel(annotate):
    """An outline of thousands of pieces: a message in the panel, not a failed callback."""
    specks = "".join(
        f"M{x} {y}h1v1h-1Z" for x in range(0, 220, 2) for y in range(0, 200, 2)
    )  # 11000 one-pixel squares, more than vectorizer.MAX_OUTLINES
    meta = dict(META, width=220, height=200)
    table, status = annotate.measure(_history_of([specks]), meta, None)
    assert "Cannot measure this outline" in text_of(table)
    assert "10000" in text_of(table)
    assert "1 region(s)" in text_of(status)
    assert annotate._calipers([specks], (200, 220), True, True) == []


def test_an_empty_ai_outline_says_the_ai_found_no_lesion(annotate):
    _table, status = annotate.measure(_history_of([]), META, None)
    assert "0 region(s)" in text_of(status) and "the AI found no lesion" in text_of(status)
    _table, status = annotate.measure(_history_of([TRIANGLE]), META, None)
    assert "found no lesion" not in text_of(status)
    # An outline the radiologist erased is not the AI's finding.
    _table, status = annotate.measure(_history_of([], action="edit"), META, None)
    assert "found no lesion" not in text_of(status)


def test_a_loaded_save_goes_onto_the_undo_history(annotate):
    before = _drawn_history()
    history, figure, undo_off, redo_off, reset_off, slider, changed = _edit(
        annotate, [LOADED], loaded=_loaded(), history=before
    )
    assert history["image"] == SHA
    # The step names the version it is (its box models are read from its record).
    assert history["present"] == {
        "paths": SAVED_PATHS, "action": "saved", "base": None, "density": 32, "source": 111,
        "version": 1,
    }
    assert history["past"] == before["past"] + [before["present"]]
    assert history["future"] == []
    assert _patched_paths(figure) == SAVED_PATHS
    assert slider is dash.no_update
    assert isinstance(changed, int)  # the echo the page's other callbacks fire on
    assert (undo_off, redo_off, reset_off) == (False, True, True)  # no AI outline to reset to
    # Undo brings back the outline shown before the load.
    assert _history.undo(history)["present"] == before["present"]


def _ai_result(at=222, image=SHA):
    return {"image": image, "paths": [TRIANGLE], "mask": None, "vertices": 32, "at": at}


def test_an_ai_outline_that_came_while_away_is_applied_when_the_page_is_back(annotate):
    # /predict answered while another page was shown: the page's callbacks could not
    # run, so the outline reaches the history when the page is drawn again.
    start = _history.new_history(_editing.empty_state(), image=SHA)
    history, *_, changed = _edit(annotate, [OPACITY], loaded=None, history=start,
                                 ai=_ai_result())
    assert history["present"]["paths"] == [TRIANGLE]
    assert history["present"]["source"] == 222
    assert isinstance(changed, int)
    # Drawn again later, the same result is not pushed a second time.
    again, *_, changed_again = _edit(annotate, [OPACITY], loaded=None, history=history,
                                     ai=_ai_result())
    assert _steps(again) == _steps(history) and changed_again is dash.no_update
    # Nor a second answer with the same outline (asked again when the page came
    # back while the first was still on its way).
    twice, *_, changed_twice = _edit(annotate, [OPACITY], loaded=None, history=history,
                                     ai=_ai_result(at=333))
    assert _steps(twice) == _steps(history) and changed_twice is dash.no_update
    # Nor is a result for another image.
    other, *_ = _edit(annotate, [OPACITY], loaded=None, history=start,
                      ai=_ai_result(image=OTHER_SHA))
    assert other["present"]["paths"] == []


def test_the_history_keeps_the_versions_loaded_through_every_later_edit(annotate):
    history = _edit(annotate, [LOADED], loaded=_loaded(), history=_drawn_history())[0]
    assert history["loaded_versions"] == [1]
    history = _history.push(history, _editing.make_state([DRAWN], "edit", density=32))
    history = _history.undo(_history.undo(history))  # back before the load, even
    assert history["loaded_versions"] == [1]
    # Another load: the newest last, each once.
    history = _edit(annotate, [LOADED], history=history, loaded=_loaded(at=222, version=3))[0]
    history = _edit(annotate, [LOADED], history=history, loaded=_loaded(at=333, version=1))[0]
    assert history["loaded_versions"] == [3, 1]
    # Another image's history starts afresh, revising nothing.
    other = _edit(annotate, [OPACITY], loaded=None,
                  history=dict(history, image=OTHER_SHA))[0]
    assert "loaded_versions" not in other


def _save_record(data_dir, paths, annotator, based_on=None):
    mask = _shapes.paths_to_mask(paths, (HEIGHT, WIDTH))
    record = build_record(image=META, annotator=annotator, final_mask=mask, based_on=based_on)
    return AnnotationStore(data_dir).save(
        SHA, svg=_shapes.paths_to_svg(paths, WIDTH, HEIGHT),
        mask_png=vectorizer.mask_to_png(mask), record=record).version


def _damage_based_on(data_dir, version, value):
    path = data_dir / SHA / f"v{version:03d}.json"
    record = json.loads(path.read_text())
    record["based_on"] = value
    path.write_text(json.dumps(record))


def _save_from(app, annotate, history, annotator="Dr Bo", note="", confirmed=False):
    alert, _work = as_callback(
        lambda: annotate.save(1, META, history, None, None, "benign", note, annotator,
                              None, *[None] * N),
        f"{ids.SAVE_QUESTION}.submit_n_clicks" if confirmed else f"{ids.SAVE_BUTTON}.n_clicks",
        app=app, value=1)
    return text_of(alert)


def _asked(app, annotate, history, annotator, note="") -> str:
    """The question a save asks before it writes (its ``data-question``); fails when it
    saves instead."""
    alert, work = as_callback(
        lambda: annotate.save(1, META, history, None, None, "benign", note, annotator,
                              None, *[None] * N),
        f"{ids.SAVE_BUTTON}.n_clicks", app=app, value=1)
    assert work is dash.no_update, text_of(alert)
    assert text_of(alert).startswith("Not saved yet."), text_of(alert)
    return alert.to_plotly_json()["props"]["data-question"]


def test_the_load_message_names_whose_version_it_is(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, annotator="Dr Cy")
    _save_record(data_dir, [RING], "Dr Bo", {"version": 1, "annotator": "Dr Cy"})
    loaded, *_rest, message = _load(app, annotate)[:5]
    assert loaded["version"] == 2
    assert "recorded as a revision of version 2 by Dr Bo;" in text_of(message)


def test_a_save_records_the_versions_it_revises_read_from_their_records(
        app, annotate, data_dir):
    from annotation_client._database import AnnotationIndex, default_url

    _save(data_dir, SAVED_PATHS, annotator="Dr Cy")  # v1
    _save_record(data_dir, [RING], "Dr Ada", {"version": 1, "annotator": "Dr Cy"})  # v2
    _save(data_dir, [TRIANGLE], annotator="Dr Bo")  # v3
    history = _edit(annotate, [LOADED], loaded=_loaded(version=3), history=_drawn_history())[0]
    history = _edit(annotate, [LOADED], loaded=_loaded(at=222, version=2), history=history)[0]
    assert _save_from(app, annotate, history).startswith("Saved.")
    # From a history that loaded nothing: it revises nothing.
    assert _save_from(app, annotate, _drawn_history()).startswith("Saved.")
    store = AnnotationStore(data_dir)
    # The newest load is what it revises; it descends from both, and from what v2 revised.
    assert store.load_record(SHA, 4)["based_on"] == {
        "version": 2, "annotator": "Dr Ada", "readers": ["Dr Ada", "Dr Bo", "Dr Cy"]}
    assert store.load_record(SHA, 5)["based_on"] is None
    # The index knows: reader agreement leaves Dr Bo's v4 out.
    rows = {r["version"]: r for r in AnnotationIndex(default_url(data_dir)).query()}
    assert (rows[4]["based_on_version"], rows[4]["based_on_annotator"],
            rows[4]["revises_other_reader"]) == (2, "Dr Ada", True)
    assert rows[5]["revises_other_reader"] is None
    # Dr Bo revising only his own v3 stays independent (OK answered: v4 and v5 came
    # after it).
    history = _edit(annotate, [LOADED], loaded=_loaded(version=3), history=_drawn_history())[0]
    assert _save_from(app, annotate, history, confirmed=True).startswith("Saved.")
    rows = {r["version"]: r for r in AnnotationIndex(default_url(data_dir)).query()}
    assert rows[6]["revises_other_reader"] is False


@pytest.mark.parametrize(
    ("loaded_versions", "reason"),
    [
        ([9], "Version 9, which this work revises, is not saved in the data folder"),
        (["1"], "the editor's list of loaded versions is damaged"),
        ("1", "the editor's list of loaded versions is damaged"),
        ([1], "the record of version 1 cannot say what it revised: based_on readers 'Dr A'"),
    ],
)
def test_a_provenance_that_cannot_be_read_is_not_saved_and_says_why(
        app, annotate, data_dir, loaded_versions, reason):
    _save_record(data_dir, [RING], "Dr Bo")
    _damage_based_on(data_dir, 1, {"version": 1, "annotator": "Dr A", "readers": "Dr A"})
    history = dict(_drawn_history(), loaded_versions=loaded_versions)
    text = _save_from(app, annotate, history)
    assert text.startswith("Not saved.") and reason in text
    assert not (data_dir / SHA / "v002.json").exists()


def test_a_revised_version_gone_from_the_data_folder_is_said_so_not_blinded_reading(
        tmp_path, annotate, data_dir):
    """The data folder replaced under an open revision (restarted on another folder): the
    refusal blamed blinded reading, which was off (audit 904 F5)."""
    _save_record(data_dir, [RING], "Dr Bo")
    history = dict(_drawn_history(), loaded_versions=[1])
    elsewhere = create_app({"DATA_DIR": tmp_path / "another"})
    text = _save_from(elsewhere, annotate, history)
    assert text == (
        "Not saved. Version 1, which this work revises, is not saved in the data folder "
        "(SONOTRACE_DATA_DIR): the folder was changed, or the version taken out of it, "
        "since it was loaded. Ask whoever runs SonoTrace whether the data folder is the "
        "right one; to save this image afresh, open it again")
    assert "blinded" not in text
    assert not (tmp_path / "another" / SHA).exists()


def test_a_malformed_provenance_is_said_on_load_and_not_taken_for_unsaved_work(
        app, annotate, data_dir):
    _save_record(data_dir, [RING], "Dr Bo")
    _damage_based_on(data_dir, 1, ["Dr A"])
    _assert_load_error(_load(app, annotate), "the record of version 1 cannot say what it "
                       "revised: based_on ['Dr A'] is not a version")
    # The version itself is still what is on disk: the page does not call it unsaved.
    def on_disk(paths):
        work = _unsaved.snapshot(SHA, paths, None, "", dict.fromkeys(DESCRIPTOR_OPTIONS))
        return as_callback(lambda: annotate._saved_on_disk(work, META),
                           f"{ids.PAGE_LOAD}.data", app=app)

    assert on_disk([RING])
    assert not on_disk([TRIANGLE])


# Two releases of the model: the box of the version loaded, and a box drawn after the load.
SHIPPED = {"name": "busi-unet", "version": "2026-01-01.1"}
UPGRADED = {"name": "busi-unet", "version": "2027-01-01.1"}


def _boxed(annotate, history, model, paths=(TRIANGLE,)):
    """``history`` with a box step answered by ``model``, as edit takes a box answer."""
    state = _editing.make_state(list(paths), "box", density=32)
    return _history.push(history, dict(state, **{annotate.BOX_MODEL: model}))


def _box_models(app, annotate, history):
    with app.server.test_request_context("/_dash-update-component"):
        return annotate._box_models(history, META)


def test_a_revision_keeps_the_box_models_of_the_version_it_loaded(app, annotate, data_dir):
    # Version 1's outline was partly a box's: the revision that kept it named no box
    # model, as if its outline were the first model's or drawn by hand.
    _save(data_dir, SAVED_PATHS, box_models=[SHIPPED])
    # A box drawn before the load: the loaded outline replaced the one it made.
    before = _boxed(annotate, _drawn_history(), UPGRADED)
    loaded = _edit(annotate, [LOADED], loaded=_loaded(version=1), history=before)[0]
    edited = _history.push(loaded, _editing.make_state([RING], "edit", density=32))
    assert _save_from(app, annotate, edited).startswith("Saved.")
    store = AnnotationStore(data_dir)
    model = store.load_record(SHA, 2)["model"]
    assert (model["box"], model["box_differs"]) == ([SHIPPED], True)  # no AI outline here
    assert _box_models(app, annotate, loaded) == [SHIPPED]
    # A box after the load comes after the version's own; a revision of that revision
    # keeps both, through the record it loads.
    boxed = _boxed(annotate, edited, UPGRADED)
    assert _box_models(app, annotate, boxed) == [SHIPPED, UPGRADED]
    assert _save_from(app, annotate, boxed, confirmed=True).startswith("Saved.")
    assert store.load_record(SHA, 3)["model"]["box"] == [SHIPPED, UPGRADED]
    again = _edit(annotate, [LOADED], loaded=_loaded(at=222, version=3), history=edited)[0]
    assert _box_models(app, annotate, again) == [SHIPPED, UPGRADED]
    # The loaded outline gone, its models go with it: the load undone (the box before
    # it is back), or the outline reset to the AI's.
    assert _box_models(app, annotate, _history.undo(loaded)) == [UPGRADED]
    reset = _history.push(edited, _editing.make_state([TRIANGLE], "reset", base="ai"))
    assert _box_models(app, annotate, reset) == []
    # A version saved before box models were recorded brings none.
    _save_record(data_dir, [RING], "Dr Bo")  # v4, without model.box
    path = data_dir / SHA / "v004.json"
    record = json.loads(path.read_text())
    del record["model"]["box"], record["model"]["box_differs"]
    path.write_text(json.dumps(record))
    old = _edit(annotate, [LOADED], loaded=_loaded(at=333, version=4), history=before)[0]
    assert _box_models(app, annotate, old) == []


def test_a_version_whose_box_models_cannot_be_read_is_not_loaded_nor_revised(
        app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, box_models=[SHIPPED])
    path = data_dir / SHA / "v001.json"
    record = json.loads(path.read_text())
    record["model"]["box"] = "busi-unet"
    path.write_text(json.dumps(record))
    # Why, and what to do about it.
    reason = ("the record of version 1 cannot say which models answered its boxes: "
              "model.box 'busi-unet' is not a list of models. The version stays as it is, "
              "in v001.json of the image's folder in the data folder: ask whoever runs "
              "SonoTrace to check it. To save a reading meanwhile, open the image again "
              "and read it afresh")
    _assert_load_error(_load(app, annotate), reason)
    # Loaded before it was damaged: the save says why, and writes nothing.
    loaded = _edit(annotate, [LOADED], loaded=_loaded(version=1), history=_drawn_history())[0]
    edited = _history.push(loaded, _editing.make_state([RING], "edit", density=32))
    text = _save_from(app, annotate, edited)
    assert text.startswith("Not saved.") and reason in text
    assert not (data_dir / SHA / "v002.json").exists()


def test_a_run_of_density_changes_is_one_undo_step(annotate):
    # The slider moved with the arrow keys reports every step: 32 -> 128 made 28 steps.
    before = _drawn_history()
    density = f"{ids.VERTEX_DENSITY}.value"
    history = before
    for value in (8, 12, 16):
        history = _edit(annotate, [density], loaded=None, history=history,
                        max_vertices=value)[0]
        assert history["present"]["action"] == "density"
        assert history["present"]["density"] == value
    assert len(history["past"]) == len(before["past"]) + 1
    assert history["past"][-1] == before["present"]
    # After another kind of change, density is a new step again.
    history = _edit(annotate, [LOADED], loaded=_loaded(), history=history)[0]
    steps = len(history["past"])
    history = _edit(annotate, [density], loaded=None, history=history, max_vertices=8)[0]
    assert len(history["past"]) == steps + 1


def test_a_loaded_save_takes_the_sliders_density(annotate):
    history = _edit(annotate, [LOADED], loaded=_loaded(), history=_drawn_history(),
                    max_vertices=64)[0]
    assert history["present"]["density"] == 64
    history = _edit(annotate, [LOADED], loaded=_loaded(), history=_drawn_history(),
                    max_vertices=None)[0]
    assert history["present"]["density"] == 32


def test_a_load_into_the_history_of_another_image_starts_a_new_one(annotate):
    other = dict(_drawn_history(), image=OTHER_SHA)
    history = _edit(annotate, [LOADED], loaded=_loaded(), history=other)[0]
    assert history["image"] == SHA
    assert history["past"] == [_editing.empty_state()]
    assert history["present"]["paths"] == SAVED_PATHS


def test_the_same_load_seen_again_is_not_pushed_again(annotate):
    history = _edit(annotate, [LOADED], loaded=_loaded(at=111), history=_drawn_history())[0]
    with pytest.raises(PreventUpdate):
        _edit(annotate, [LOADED], loaded=_loaded(at=111), history=history)
    # With a redraw asked for at the same time, the history comes back unchanged.
    again = _edit(annotate, [LOADED, OPACITY], loaded=_loaded(at=111), history=history)
    assert _steps(again[0]) == _steps(history)
    assert _patched_paths(again[1]) == SAVED_PATHS
    # Nor after Undo: the load waits in the redo list and stays there.
    undone = _history.undo(history)
    with pytest.raises(PreventUpdate):
        _edit(annotate, [LOADED], loaded=_loaded(at=111), history=undone)


def test_a_new_load_of_the_same_version_is_pushed(annotate):
    # Load, edit, load again (a new click, a new "at"): the saved outline is back.
    history = _edit(annotate, [LOADED], loaded=_loaded(at=111), history=_drawn_history())[0]
    history = _history.push(history, _editing.make_state([DRAWN], "edit", density=32))
    history = _edit(annotate, [LOADED], loaded=_loaded(at=222), history=history)[0]
    assert history["present"]["paths"] == SAVED_PATHS
    assert history["present"]["source"] == 222
    assert len(history["past"]) == 4  # open, drawn, first load, edit


def test_a_load_for_another_image_is_ignored(annotate):
    before = _drawn_history()
    with pytest.raises(PreventUpdate):
        _edit(annotate, [LOADED], loaded=_loaded(image=OTHER_SHA), history=before)
    again = _edit(annotate, [LOADED, OPACITY], loaded=_loaded(image=OTHER_SHA), history=before)
    assert _steps(again[0]) == _steps(before)
    assert _patched_paths(again[1]) == [DRAWN]


def test_a_load_that_did_not_fire_is_not_applied(annotate):
    # The store holds a load, but only the opacity slider moved.
    before = _drawn_history()
    history = _edit(annotate, [OPACITY], loaded=_loaded(), history=before)[0]
    assert _steps(history) == _steps(before)


@pytest.mark.parametrize("loaded", [None, {}])
def test_an_empty_loaded_store_changes_nothing(annotate, loaded):
    with pytest.raises(PreventUpdate):
        _edit(annotate, [LOADED], loaded=loaded, history=_drawn_history())


def test_edit_without_an_open_image_does_nothing(annotate):
    with pytest.raises(PreventUpdate):
        _edit(annotate, [LOADED], loaded=_loaded(), history=None, meta=None)


# --------------------------------------------------------------------------- together


def test_loaded_work_is_not_marked_unsaved_until_it_is_changed(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, label="malignant", note="compare with prior",
          descriptors={"shape": "irregular", "margin": ["angular", "spiculated"]})
    loaded, label, note, work, _, *descriptors = _load(app, annotate)
    history = _edit(annotate, [LOADED], loaded=loaded, history=_drawn_history())[0]

    def mark(label=label, note=note, history=history):
        return annotate.mark_unsaved(history, label, note, *descriptors, work, META, None)[0]

    assert mark() == ""
    assert mark(label="benign") == "Unsaved changes"
    assert mark(history=_history.undo(history)) == "Unsaved changes"


def test_load_is_not_offered_for_the_version_on_screen(app, annotate, data_dir):
    """Just loaded, and until the work changes, a click of Load it to revise would only
    add an undo step that changes nothing: the line says the version is on screen."""
    _save(data_dir, SAVED_PATHS, label="malignant", note="compare with prior",
          descriptors={"shape": "irregular", "margin": ["angular", "spiculated"]})
    shown = []
    _previous(app, annotate, shown=shown)
    loaded, label, note, work, _, *descriptors = _load(app, annotate)
    assert work["version"] == 1
    history = _edit(annotate, [LOADED], loaded=loaded, history=_drawn_history())[0]

    def offer(label=label, history=history, named=shown[0], work=work):
        style, said = annotate.offer_load(named, "small", work, history, label, note,
                                          *descriptors, META)
        return style.get("display") != "none", said

    assert offer() == (False, "It is the version on screen.")
    offered = (True, None)
    assert offer(label="benign") == offered  # a change: the click would bring v1 back
    assert offer(history=_history.undo(history)) == offered  # the outline before the load
    # Another version named (saved since elsewhere), or no load or save of this image yet.
    assert offer(named={"image": SHA, "version": 2}) == offered
    assert offer(work=None) == offered
    assert offer(work={**work, "image": OTHER_SHA}) == offered
    unversioned = {k: v for k, v in work.items() if k != "version"}
    assert offer(work=unversioned) == offered


def test_work_saved_while_the_answer_was_dropped_is_not_marked_unsaved(app, annotate, data_dir):
    # Save clicked, then another page: the files are written, but the browser dropped
    # the answer, so the page's note of the last save is missing when it comes back.
    _save(data_dir, SAVED_PATHS, label="benign", note="n")
    loaded, label, note, _work, _, *descriptors = _load(app, annotate)
    history = _edit(annotate, [LOADED], loaded=loaded, history=_drawn_history())[0]

    def mark(fired, label=label):
        return as_callback(lambda: annotate.mark_unsaved(
            history, label, note, *descriptors, None, META, None,
        )[0], fired, app=app)

    page_drawn_again = [f"{ids.PAGE_LOAD}.data", f"{ids.FINAL_LABEL}.value"]
    assert mark(page_drawn_again) == ""
    # Work that differs from the save on disk is still unsaved.
    assert mark(page_drawn_again, label="malignant") == "Unsaved changes"
    # The disk is read only when the page is drawn again, not on every edit.
    assert mark([f"{ids.FINAL_LABEL}.value"]) == "Unsaved changes"


# --------------------------------------------------------------------------- re-segmentation boxes

BOXDONE = f"{ids.BOX_DONE}.data"


def _box_answer(request=5, failed=False, image=SHA, box=(0, 0, 4, 4), meta=META):
    """The shell's box result: one answer, a square lesion filling ``box``."""
    answer = {"request": request, "box": list(box)}
    if failed:
        answer["failed"] = True
    else:
        mask = np.zeros((meta["height"], meta["width"]), bool)
        mask[box[1]:box[3], box[0]:box[2]] = True
        answer["mask"] = base64.b64encode(vectorizer.mask_to_png(mask)).decode()
    return {"image": image, "answers": [answer]}


def _pending(*ats, image=SHA):
    return [{"image": image, "box": [0, 0, 4, 4], "at": at} for at in ats]


def test_a_box_answer_is_applied_once_and_leaves_the_pending_list(annotate):
    before = _drawn_history()
    history, *_, changed, pending = _edit(annotate, [BOXDONE], loaded=None, history=before,
                                          box_result=_box_answer(5), pending=_pending(5, 6),
                                          boxes=True)
    assert history["present"]["action"] == "box"
    assert history["past"] == before["past"] + [before["present"]]
    assert isinstance(changed, int)
    assert pending == _pending(6)  # the box still on its way stays
    # A box drawn before the one answered is dropped: its answer would undo the newer.
    *_, older_dropped = _edit(annotate, [BOXDONE], loaded=None, history=before,
                              box_result=_box_answer(5), pending=_pending(4, 5, 6),
                              boxes=True)
    assert older_dropped == _pending(6)
    # The same answer, seen again (the page drawn again), is not applied twice.
    with pytest.raises(PreventUpdate):
        _edit(annotate, [BOXDONE], loaded=None, history=history,
              box_result=_box_answer(5), pending=pending, boxes=True)
    again = _edit(annotate, [OPACITY], loaded=None, history=history,
                  box_result=_box_answer(5), pending=pending, boxes=True)
    assert _steps(again[0]) == _steps(history) and again[-1] is dash.no_update


def test_a_box_answer_that_came_while_away_is_applied_when_the_page_is_back(annotate):
    # The answer reached the shell while another page was shown; the page's echo did
    # not fire. Drawn again, the page takes it in on whatever call comes first.
    before = _drawn_history()
    history, *_, pending = _edit(annotate, [OPACITY], loaded=None, history=before,
                                 box_result=_box_answer(5), pending=_pending(5), boxes=True)
    assert history["present"]["action"] == "box"
    assert pending == []


def test_a_failed_box_leaves_the_list_and_the_outline_as_it_was(annotate):
    before = _drawn_history()
    history, *_, changed, pending = _edit(annotate, [BOXDONE], loaded=None, history=before,
                                          box_result=_box_answer(5, failed=True),
                                          pending=_pending(5), boxes=True)
    assert _steps(history) == _steps(before) and changed is dash.no_update
    assert pending == []


def test_a_box_answer_not_pending_or_for_another_image_is_not_applied(annotate):
    before = _drawn_history()
    with pytest.raises(PreventUpdate):  # its box was taken in already
        _edit(annotate, [BOXDONE], loaded=None, history=before, box_result=_box_answer(5),
              pending=_pending(6), boxes=True)
    # Boxes pending for another image are dropped; its answer is not drawn on this one.
    history, *_, changed, pending = _edit(
        annotate, [BOXDONE], loaded=None, history=before,
        box_result=_box_answer(5, image=OTHER_SHA), pending=_pending(5, image=OTHER_SHA),
        boxes=True,
    )
    assert _steps(history) == _steps(before) and changed is dash.no_update and pending == []


def test_a_box_answer_that_does_not_fit_the_image_is_dropped_and_editing_goes_on(annotate):
    # An answer for a box outside the image raised in merge_box at every later edit,
    # so the outline could not be edited until the image was opened again.
    before = _drawn_history()
    mask = np.ones((HEIGHT, WIDTH), bool)
    forged = {"image": SHA, "answers": [{
        "request": 5, "box": [-5, 0, 4, 4],
        "mask": base64.b64encode(vectorizer.mask_to_png(mask)).decode()}]}
    pending = [{"image": SHA, "box": [-5, 0, 4, 4], "at": 5}]
    history, *_, changed, left = _edit(annotate, [BOXDONE], loaded=None, history=before,
                                       box_result=forged, pending=pending, boxes=True)
    assert _steps(history) == _steps(before) and changed is dash.no_update and left == []
    # The next edit is drawn as ever.
    again = _edit(annotate, [OPACITY], loaded=None, history=before, box_result=forged,
                  pending=left, boxes=True)
    assert _steps(again[0]) == _steps(before)


RELAYOUT = f"{ids.ANNOTATION_GRAPH}.relayoutData"
# Boxes need an image of at least 8x8 pixels: the model segments no smaller box.
BOX_META = dict(META, width=40, height=30)
DRAWN_BOX = {"shapes": [
    {"type": "path", "path": DRAWN},
    {"type": "rect", "x0": 0.5, "y0": 0.5, "x1": 12.5, "y1": 10.5},
]}


def _ask_box(annotate, relayout, *, history, pending=None, meta=META):
    return annotate.ask_box(relayout, meta, history, pending, 0.3, True, True)


def test_a_drawn_box_is_asked_for_and_pending(annotate):
    before = _drawn_history()
    request, pending, figure, alert = _ask_box(annotate, DRAWN_BOX, history=before,
                                               pending=_pending(4), meta=BOX_META)
    assert alert is None
    assert request["image"] == SHA and request["box"] == [0, 0, 13, 11]
    assert pending == [*_pending(4), request]
    # The rectangle leaves the graph at once: the shapes are the outline's alone.
    assert _patched_paths(figure) == [DRAWN]
    # A drag of the outline, or a rectangle off the image, asks for nothing.
    with pytest.raises(PreventUpdate):
        _ask_box(annotate, {"shapes[0].path": TRIANGLE}, history=before)
    off = {"shapes": [{"type": "rect", "x0": 20, "y0": 20, "x1": 30, "y1": 30}]}
    assert _ask_box(annotate, off, history=before)[:2] == (dash.no_update, dash.no_update)


def test_a_box_smaller_than_the_model_takes_is_refused_with_the_remedy(annotate):
    meta = dict(META, width=100, height=80)
    history = _history.new_history(_editing.empty_state(), image=SHA)
    small = {"shapes": [{"type": "rect", "x0": 10, "y0": 10, "x1": 16.5, "y1": 40}]}
    request, pending, figure, alert = _ask_box(annotate, small, history=history, meta=meta)
    assert request is dash.no_update and pending is dash.no_update
    assert _patched_paths(figure) == []  # the rectangle is taken off all the same
    assert "at least 8x8 pixels of the image; this one covers 7x30" in text_of(alert)
    enough = {"shapes": [{"type": "rect", "x0": 10, "y0": 10, "x1": 18, "y1": 18}]}
    assert _ask_box(annotate, enough, history=history, meta=meta)[0]["box"] == [10, 10, 18, 18]


def test_the_box_and_its_answer_in_one_call_record_the_box_not_the_old_outline(annotate):
    # Dash holds the graph's event for edit until the box's answer is in, then calls edit
    # with both: the event's shapes are the outline shown before the answer, and must not
    # be recorded over the box's outline as an edit.
    before = _drawn_history()
    request, pending, _figure, _alert = _ask_box(annotate, DRAWN_BOX, history=before,
                                                 meta=BOX_META)
    answer = _box_answer(request["at"], box=request["box"], meta=BOX_META)
    history, *_, changed, left = _edit(
        annotate, [RELAYOUT, BOXDONE], loaded=None, history=before, relayout=DRAWN_BOX,
        box_result=answer, pending=pending, boxes=True, meta=BOX_META,
    )
    assert history["present"]["action"] == "box"
    assert history["past"] == before["past"] + [before["present"]]
    assert left == [] and isinstance(changed, int)


UNDO = f"{ids.UNDO_BUTTON}.n_clicks"


def test_an_undo_clicked_while_a_box_is_on_its_way_takes_the_box_back(annotate):
    # The click merged into the call of the box's answer came after the box was drawn:
    # the box is made, then undone, and stays to Redo. (The click undid the edit
    # before, and the box landed on top and cleared that edit from the redo list.)
    before = _history.push(_drawn_history(), _editing.make_state([TRIANGLE], "edit",
                                                                 density=32))
    request, pending, _figure, _alert = _ask_box(annotate, DRAWN_BOX, history=before,
                                                 meta=BOX_META)
    answer = _box_answer(request["at"], box=request["box"], meta=BOX_META)

    history = as_callback(lambda: annotate.edit(
        BOX_META, None, answer, None, 1, None, None, 32, 0.3, True, True, None, before,
        None, None, None, pending,
    ), (UNDO, BOXDONE))[0]
    assert history["present"] == before["present"]  # the triangle, kept
    assert [s["action"] for s in history["future"]] == ["box"]


def test_the_graph_event_is_emptied_when_the_outline_moves_otherwise(annotate):
    """The browser drops a graph event equal to the last one: after Undo, erasing the
    same outline again (the same shape list) would be shown and never recorded."""
    drawn = _drawn_history()
    erased = {"shapes": []}
    after_erase = _edit(annotate, [f"{ids.ANNOTATION_GRAPH}.relayoutData"], loaded=None,
                        history=drawn, relayout=erased, everything=True)
    assert _unsigned(after_erase[0])["present"]["paths"] == []
    assert after_erase[-1] is dash.no_update  # the event itself stays as the graph sent it
    undo = _edit(annotate, [f"{ids.UNDO_BUTTON}.n_clicks"], loaded=None, undo=1,
                 history=_unsigned(after_erase[0]), relayout=erased, everything=True)
    assert _unsigned(undo[0])["present"]["paths"] == [DRAWN]
    assert undo[-1] is None  # so the same erasure, made again, is an event again
    # A redraw that moves no outline (the opacity) leaves it be.
    redrawn = _edit(annotate, [OPACITY], loaded=None, history=_unsigned(undo[0]),
                    relayout=erased, everything=True)
    assert redrawn[0] is not dash.no_update and redrawn[-1] is dash.no_update


def test_a_stroke_enclosing_nothing_is_taken_off_the_graph(annotate):
    """A region drawn out and back along a line encloses nothing: it is not recorded,
    and the graph, which shows it, is drawn again without it."""
    drawn = _drawn_history()
    stroke = {"shapes": [{"type": "path", "path": DRAWN},
                         {"type": "path", "path": "M2,2L9,9L3,3Z"}]}
    out = _edit(annotate, [RELAYOUT], loaded=None, history=drawn, relayout=stroke)
    assert out[0] is not dash.no_update
    assert _steps(out[0]) == _steps(drawn)  # nothing recorded
    assert _patched_paths(out[1]) == [DRAWN]


def test_two_box_answers_in_one_call_are_both_drawn_oldest_first(annotate):
    before = _drawn_history()
    boxes = [{"image": SHA, "box": [0, 0, 10, 10], "at": 5},
             {"image": SHA, "box": [20, 10, 30, 20], "at": 6}]
    first = _box_answer(5, box=(0, 0, 10, 10), meta=BOX_META)["answers"]
    second = _box_answer(6, box=(20, 10, 30, 20), meta=BOX_META)["answers"]
    result = {"image": SHA, "answers": second + first}  # in any order
    history, *_, left = _edit(annotate, [BOXDONE], loaded=None, history=before,
                              box_result=result, pending=boxes, boxes=True, meta=BOX_META)
    assert left == []
    assert [s["action"] for s in history["past"][-1:]] + [history["present"]["action"]] == [
        "box", "box"]
    assert len(history["present"]["paths"]) >= 2  # both lesions outlined


def _confirmed(app, call):
    """``call()`` as Dash runs save when OK was clicked in its question."""
    return as_callback(call, f"{ids.SAVE_QUESTION}.submit_n_clicks", app=app, value=1)


def test_an_ai_outline_saved_as_offered_is_unedited_though_its_raster_differs(
        app, annotate, data_dir):
    # The server's raster and the outline traced from it differ by a few pixels: the
    # radiologist was offered the outline, so saving it untouched is no edit.
    raster = np.zeros((HEIGHT, WIDTH), bool)
    raster[1:3, 1:3] = True
    raster[0, 0] = True  # a pixel the traced outline leaves out
    ai = {"image": SHA, "paths": [TRIANGLE], "at": 1, "vertices": 32, "model": None,
          "mask": base64.b64encode(vectorizer.mask_to_png(raster)).decode()}

    def save(history):
        # Confirmed: the AI's outline saved over an edited version is asked about first.
        alert, _work = _confirmed(app, lambda: annotate.save(
            1, META, history, ai, None, "benign", "", "Dr Ada", None, *[None] * N))
        assert text_of(alert).startswith("Saved."), text_of(alert)
        versions = sorted((data_dir / SHA).glob("v*.json"))
        return json.loads(versions[-1].read_text()), versions[-1]

    record, path = save(_history_of([TRIANGLE]))
    assert record["agreement"] == {"dice_ai_vs_final": 1.0, "edited": False,
                                   "offered_paths": [TRIANGLE]}
    # The model's own raster is still what the AI mask file keeps.
    ai_png = path.with_name(path.stem + "_ai_mask.png").read_bytes()
    np.testing.assert_array_equal(vectorizer.png_to_mask(ai_png), raster)

    record, _path = save(_history_of([RING], action="edit"))
    offered = _shapes.paths_to_mask([TRIANGLE], (HEIGHT, WIDTH))
    final = _shapes.paths_to_mask([RING], (HEIGHT, WIDTH))
    expected = 2 * (offered & final).sum() / (offered.sum() + final.sum())
    assert record["agreement"]["edited"] is True
    assert record["agreement"]["dice_ai_vs_final"] == pytest.approx(expected)
    # The outline offered is kept: it tells, later, which lesion is the model's.
    assert record["agreement"]["offered_paths"] == [TRIANGLE]

    # Only the vertex density moved: the model's own mask at another density is no
    # edit either, though its polygon differs from the one first offered.
    offered = _history_of([TRIANGLE])
    finer = _editing.revectorize(offered["present"], 8, (HEIGHT, WIDTH), raster)
    assert not _shapes.same_geometry(finer["paths"], [TRIANGLE])
    record, _path = save(_history.push(offered, finer))
    assert record["agreement"] == {"dice_ai_vs_final": 1.0, "edited": False,
                                   "offered_paths": finer["paths"]}
    # A history that claims so for other geometry is not believed.
    claimed = dict(finer, paths=[RING])
    record, _path = save(_history.push(offered, claimed))
    assert record["agreement"]["edited"] is True


# --------------------------------------------------------------------------- links from Saved


def _revise(app, annotate, fired, revise, meta=META, auto=True, clicks=None,
            annotator="Dr Ada"):
    """revise_linked's answer, for the reader ``annotator`` (``_save``'s by default)."""
    return as_callback(lambda: annotate.revise_linked(1, 1, revise, meta, auto, clicks, annotator),
                       [f"{prop}.data" for prop in fired], app=app, value=1)


def test_a_linked_image_is_loaded_once_the_model_server_has_answered(app, annotate, data_dir):
    no = dash.no_update
    _save(data_dir, SAVED_PATHS, label="benign")
    linked = {"sha256": SHA}
    # Opened: the AI outline is still to come, and would cover a load made now.
    with pytest.raises(PreventUpdate):
        _revise(app, annotate, [ids.IMAGE_OPENED], linked)
    # Answered (an outline, or a failure): one click of Load, of the reader's latest,
    # and the wish is spent.
    latest = {"image": SHA, "version": 1}
    assert _revise(app, annotate, [ids.SEGMENT_DONE], linked, clicks=2) == (
        3, None, no, latest)
    assert _revise(app, annotate, [ids.SEGMENT_DONE], linked) == (1, None, no, latest)
    # A forged click count is not a 500.
    assert _revise(app, annotate, [ids.SEGMENT_DONE], linked, clicks="many") == (
        1, None, no, latest)
    # No AI asked for: at once.
    assert _revise(app, annotate, [ids.IMAGE_OPENED], linked, auto=False) == (
        1, None, no, latest)
    # A worklist link names its entry.
    worklist_meta = dict(META, worklist_path="left/scan.png")
    assert _revise(app, annotate, [ids.SEGMENT_DONE], {"worklist_path": "left/scan.png"},
                   meta=worklist_meta) == (1, None, no, latest)


def test_a_link_loads_nothing_for_another_image_or_without_a_version(app, annotate, data_dir):
    no = dash.no_update
    linked = {"sha256": SHA}
    # Never saved (or by nobody this reader may load): left as opened.
    assert _revise(app, annotate, [ids.SEGMENT_DONE], linked) == (no, None, no, no)
    _save(data_dir, SAVED_PATHS)
    other = dict(META, sha256=OTHER_SHA)
    # The user opened something else (declined the link's question, then an upload).
    assert _revise(app, annotate, [ids.IMAGE_OPENED], linked, meta=other) == (no, None, no, no)
    with pytest.raises(PreventUpdate):  # an answer for another image: still waiting
        _revise(app, annotate, [ids.SEGMENT_DONE], linked, meta=other)
    with pytest.raises(PreventUpdate):  # no link
        _revise(app, annotate, [ids.SEGMENT_DONE], None)


def test_keeping_the_work_over_a_link_drops_its_load(app, annotate):
    assert annotate.keep_work_over_link(1) is None
    with pytest.raises(PreventUpdate):
        annotate.keep_work_over_link(None)  # the page drawn again, nothing cancelled


def test_a_version_measured_at_a_spacing_typed_by_hand_brings_it_back(app, annotate, data_dir):
    no = dash.no_update
    mask = _shapes.paths_to_mask(SAVED_PATHS, (HEIGHT, WIDTH))

    def save(image):
        record = build_record(image=image, annotator="Dr Ada", final_mask=mask)
        AnnotationStore(data_dir).save(SHA, svg=_shapes.paths_to_svg(SAVED_PATHS, WIDTH, HEIGHT),
                                       mask_png=vectorizer.mask_to_png(mask), record=record)

    shown = dict(META, kind="png", size_bytes=1234)  # what the info line needs too

    def load(meta=shown):
        with app.server.test_request_context("/_dash-update-component"):
            return annotate.load_saved(1, meta)[-3:-1]

    save(dict(META, pixel_spacing_mm=[0.08, 0.08], pixel_spacing_source="manual"))
    meta, info = load()
    assert _unsigned(meta) == dict(shown, pixel_spacing_mm=[0.08, 0.08],
                                   pixel_spacing_source="manual")
    assert "set by hand" in text_of(info)
    # A header's own spacing stays; a version without a typed one changes nothing.
    assert load(dict(shown, pixel_spacing_mm=[0.2, 0.2])) == (no, no)
    save(META)
    assert load() == (no, no)


def test_the_spacing_field_shows_a_spacing_typed_for_the_image_before(app, annotate, data_dir):
    mask = _shapes.paths_to_mask(SAVED_PATHS, (HEIGHT, WIDTH))

    def save(image, annotator="Dr Ada"):
        record = build_record(image=image, annotator=annotator, final_mask=mask)
        AnnotationStore(data_dir).save(SHA, svg=_shapes.paths_to_svg(SAVED_PATHS, WIDTH, HEIGHT),
                                       mask_png=vectorizer.mask_to_png(mask), record=record)

    def shown(fired=ids.IMAGE_OPENED, meta=META):
        return as_callback(lambda: annotate.show_calibration(1, None, None, meta),
                           f"{fired}.data", app=app, value=1)

    assert shown() == (False, None, None, None)  # never saved
    save(dict(META, pixel_spacing_mm=[0.08, 0.08], pixel_spacing_source="manual"))
    # Opened again: the field offers the spacing, which applies only once Set.
    hidden, value, note, offered = shown()
    assert (hidden, value) == (False, 0.08)
    assert offered == {"image": SHA, "mm": 0.08, "source": "manual"}
    assert text_of(note) == ("Version 1 was measured at 0.08 mm per pixel, set by hand; "
                             "Set measures at it again.")
    # A calibrated one says so (a reused one likewise: "reused from an earlier image").
    save(dict(META, pixel_spacing_mm=[0.09, 0.09], pixel_spacing_source="calibrated"))
    hidden, value, note, offered = shown()
    assert (hidden, value) == (False, 0.09)
    assert "0.09 mm per pixel, calibrated on its depth scale;" in text_of(note)
    # Set as offered, it stays calibrated (it was recorded as typed: "manual").
    png = dict(META, kind="png", size_bytes=94, notes=[])
    meta, *_ = annotate.set_spacing(1, None, 0.09, png, None, offered)
    assert meta["pixel_spacing_source"] == "calibrated"
    meta, *_ = annotate.set_spacing(1, None, "0.091", png, None, offered)  # changed: typed
    assert meta["pixel_spacing_source"] == "manual"
    # A version loaded with its spacing (meta now has it): the field shows it.
    typed = dict(META, pixel_spacing_mm=[0.08, 0.08], pixel_spacing_source="manual")
    assert shown(ids.LOADED_SAVE, typed) == (False, 0.08, None, dash.no_update)
    # A header's own spacing is never offered over; the newest version decides.
    assert shown(meta=dict(META, pixel_spacing_mm=[0.2, 0.2]))[0] is True
    save(META)
    assert shown() == (False, None, None, None)  # the offer of another version is gone
    # A damaged record offers nothing (loading it says why).
    (data_dir / SHA / "v003.json").write_text("{")
    assert shown() == (False, None, None, None)


def test_the_answer_a_link_loads_after_leaves_the_history_to_the_load(app, annotate, data_dir):
    """The model's answer fires edit and revise_linked at once; were edit to write the
    history, its reply could land after the load's and drop the loaded outline."""
    ai = {"image": SHA, "paths": [DRAWN], "mask": "", "at": 5, "vertices": 32}
    history = _history.new_history(_editing.empty_state(), image=SHA)
    done = [f"{ids.SEGMENT_DONE}.data"]
    linked = {"sha256": SHA}

    def edit(fired, revise=linked, loaded=None, auto=True):
        with app.server.test_request_context("/_dash-update-component"):
            return _edit(annotate, fired, loaded=loaded, history=history, ai=ai,
                         revise=revise, auto=auto)

    # Nothing saved to load: the answer is applied as always.
    assert _unsigned(edit(done)[0])["present"]["action"] == "ai"
    _save(data_dir, SAVED_PATHS)
    with pytest.raises(PreventUpdate):
        edit(done)
    with pytest.raises(PreventUpdate):  # segment on open off: the opening is the answer
        edit([f"{ids.IMAGE_OPENED}.data"], auto=False)
    # No link, or a link to another image: as always.
    assert _unsigned(edit(done, revise=None)[0])["present"]["action"] == "ai"
    assert _unsigned(edit(done, revise={"sha256": OTHER_SHA})[0])["present"]["action"] == "ai"
    # The load's own call puts the AI outline first, then the saved one.
    loaded, *_ = _load(app, annotate)
    out = _unsigned(edit([LOADED], loaded=loaded)[0])
    assert [s["action"] for s in out["past"]] == ["open", "ai"]
    assert out["present"]["action"] == "saved" and out["present"]["paths"] == SAVED_PATHS
    # A version that cannot be read: its load's answer still applies the AI outline,
    # which would otherwise wait for the next outline action.
    (data_dir / SHA / "v001.svg").write_text("<svg")
    failed, *_ = _load(app, annotate)
    out = _unsigned(edit([LOADED], loaded=failed)[0])
    assert out["present"]["action"] == "ai" and out["present"]["paths"] == [DRAWN]


def test_a_save_says_which_versions_were_saved_after_the_one_it_revised(
        app, annotate, data_dir):
    # Two tabs on one image both load v2; the first saves v3, then the second saves:
    # its v4 does not hold v3's edits, and the radiologist is told so.
    _save(data_dir, SAVED_PATHS, annotator="Dr Cy")  # v1
    _save(data_dir, [RING], annotator="Dr Cy")  # v2
    tab_b = _edit(annotate, [LOADED], loaded=_loaded(version=2), history=_drawn_history())[0]
    tab_a = _edit(annotate, [LOADED], loaded=_loaded(version=2), history=_drawn_history())[0]
    assert _save_from(app, annotate, tab_a, annotator="Dr Cy").startswith("Saved. Version 3")
    # (A note of its own: the same work again would be no new version.) Asked first: it
    # was saved, and said so only once it was.
    question = _asked(app, annotate, tab_b, "Dr Cy", note="tab b")
    assert ("v3 was saved after v2, the latest version this work started from: this save "
            "would not hold its work.") in question
    assert not (data_dir / SHA / "v004.json").exists()  # Cancel: the work stays unsaved
    text = _save_from(app, annotate, tab_b, annotator="Dr Cy", note="tab b", confirmed=True)
    assert text.startswith("Saved. Version 4")
    assert "Not part of it: v3, saved after v2, the latest version this work started from" in (
        text)
    # A revision of the latest version, or work that loaded none, has nothing to say.
    tab_c = _edit(annotate, [LOADED], loaded=_loaded(version=4), history=_drawn_history())[0]
    assert "Not part of it" not in _save_from(app, annotate, tab_c, annotator="Dr Cy")
    assert "Not part of it" not in _save_from(app, annotate, _drawn_history(), annotator="Dr Cy",
                                              note="from scratch")


def _opened_work(app, annotate, paths):
    """The image opened now on a page, its history begun by that open and ``paths`` then
    drawn on it: what that page's Save is given."""
    with app.server.test_request_context("/_dash-update-component"):
        opened = annotate._opened_store(SHA, "1")
    history = as_callback(lambda: annotate.edit(
        META, None, None, None, None, None, None, 32, 0.3, True, True, None, None, opened,
    ), f"{ids.IMAGE_OPENED}.data", app=app)[0]
    return _history.push(_unsigned(history), _editing.make_state(paths, "edit", density=32))


def test_a_save_that_loaded_nothing_names_the_versions_saved_since_the_image_opened(
        app, annotate, data_dir):
    # Two tabs open the image, each with the AI's outline (another reader's v1 is not
    # loaded); the first saves v2, then the second v3: v3 does not hold v2's work, and
    # the radiologist is told so, as for two tabs that loaded a version (audit 602, F2).
    _save(data_dir, SAVED_PATHS, annotator="Dr Cy")  # v1, before either tab opened it
    tab_a = _opened_work(app, annotate, [DRAWN, RING])
    tab_b = _opened_work(app, annotate, [DRAWN])
    assert tab_a[annotate.LATEST_AT_OPEN] == 1
    first = _save_from(app, annotate, tab_a, annotator="Dr Ada")
    assert first.startswith("Saved. Version 2") and "Not part of it" not in first
    # The first tab's save is the same reader's: asked before it is left out.
    question = _asked(app, annotate, tab_b, "Dr Ada", note="tab b")
    assert question.startswith("v2 was saved after this page opened the image")
    assert question.endswith("Cancel keeps the work on screen, unsaved.")
    second = _save_from(app, annotate, tab_b, annotator="Dr Ada", note="tab b",
                        confirmed=True)
    assert second.startswith("Saved. Version 3")
    assert ("Not part of it: v2, saved after this page opened the image (this work loaded "
            "no saved version); every version is kept") in second
    # Still no revision of anything: the two readings were made independently.
    record = json.loads((data_dir / SHA / "v003.json").read_text())
    assert record["based_on"] is None
    # A tab opened after those saves has nothing to be told.
    tab_c = _opened_work(app, annotate, [RING])
    assert "Not part of it" not in _save_from(app, annotate, tab_c, annotator="Dr Ada",
                                              note="tab c")
    # Another reader's save meanwhile is an independent read: told, not asked.
    tab_d = _opened_work(app, annotate, [DRAWN, RING])
    _save(data_dir, [RING], annotator="Dr Cy")  # v5
    text = _save_from(app, annotate, tab_d, annotator="Dr Ada", note="tab d")
    assert text.startswith("Saved. Version 6") and "Not part of it: v5, saved after" in text


def test_an_ai_result_is_not_applied_again_once_its_step_left_the_history(annotate):
    # A long session: 200 edits (or 4 MiB of outlines) later the AI's step is dropped
    # from the undo history, and the result, still in the page, must not come back
    # over the radiologist's outline at the next event.
    start = _history.new_history(_editing.empty_state(), image=SHA)
    history = _edit(annotate, [OPACITY], loaded=None, history=start, ai=_ai_result())[0]
    history = _edit(annotate, [LOADED], loaded=_loaded(at=555), history=history)[0]
    for n in range(_history.DEFAULT_LIMIT + 1):
        history = _history.push(history, _editing.make_state([f"M{n},1L9,1L9,9Z"], "edit"))
    assert all(s.get("source") is None for s in history["past"])  # both steps are gone
    for _ in range(2):  # not once, not every other edit
        history, *_ = _edit(annotate, [OPACITY], loaded=_loaded(at=555), history=history,
                            ai=_ai_result())
        assert history["present"]["paths"] == [f"M{_history.DEFAULT_LIMIT},1L9,1L9,9Z"]
    assert history["applied"] == [222, 555]
    # A new answer is still taken in.
    history, *_ = _edit(annotate, [OPACITY], loaded=None, history=history,
                        ai=_ai_result(at=999))
    assert history["present"]["source"] == 999 and history["applied"] == [222, 555, 999]


def _save_again(app, annotate, history, saved_work, annotator="Dr Cy", note="",
                confirmed=False):
    """``save`` with the spacing field empty (none in use) and the last save's snapshot;
    ``confirmed``: OK answered in its question."""
    alert, work = as_callback(
        lambda: annotate.save(1, META, history, None, None, "benign", note, annotator,
                              None, *[None] * N, None, saved_work),
        f"{ids.SAVE_QUESTION}.submit_n_clicks" if confirmed else f"{ids.SAVE_BUTTON}.n_clicks",
        app=app, value=1)
    return text_of(alert), work


def test_a_page_saving_twice_is_not_told_its_own_save_was_missed(app, annotate, data_dir):
    # Load v1, save (v2), fix something, save again (v3): v2 is this page's own work.
    _save(data_dir, SAVED_PATHS, annotator="Dr Cy")  # v1
    history = _edit(annotate, [LOADED], loaded=_loaded(version=1), history=_drawn_history())[0]
    first, work = _save_again(app, annotate, history, None)
    assert first.startswith("Saved. Version 2") and work["versions"] == [2]
    second, work = _save_again(app, annotate, history, work, note="fixed")
    assert second.startswith("Saved. Version 3") and "Not part of it" not in second
    assert work["versions"] == [2, 3]
    # Another page's save in between is still named, and only it: asked, then told.
    _save(data_dir, [RING], annotator="Dr Cy")  # v4, from elsewhere
    asked, unsaved = _save_again(app, annotate, history, work)
    assert asked.startswith("Not saved yet. v4 was saved after v3,") and unsaved is dash.no_update
    third, work = _save_again(app, annotate, history, work, confirmed=True)
    assert "Not part of it: v4, saved after v3," in third and work["versions"] == [2, 3, 5]
    # The snapshot of another image, or a damaged one, names no version as this page's.
    assert annotate._own_versions(dict(work, image="other"), META) == []
    assert annotate._own_versions(dict(work, versions="2"), META) == []


def _offset_click(annotate, history, meta, button, max_vertices=32):
    """``edit`` as Dash calls it for one click of Grow or Shrink; its outputs."""
    return as_callback(lambda: annotate.edit(
        meta, None, None, None, None, None, None, max_vertices, 0.3, True, True, None,
        history, None, None, None, None, None, None,
        _grow=1 if button == ids.GROW_BUTTON else None,
        _shrink=1 if button == ids.SHRINK_BUTTON else None,
    ), f"{button}.n_clicks", value=1)


def test_shrink_stops_at_nothing_and_grow_brings_the_outline_back_at_its_density(annotate):
    meta = {"sha256": SHA, "name": "scan.png", "width": 100, "height": 80}  # 1-px steps
    yy, xx = np.mgrid[:80, :100]
    disc = np.hypot(yy - 40, xx - 50) <= 3
    start = _editing.make_state(_editing.mask_to_regions(disc, 32), "ai", density=32)
    history = _history.push(_history.new_history(_editing.empty_state(), image=SHA), start)
    shrinks = 0
    while history["present"]["paths"]:
        history = _offset_click(annotate, history, meta, ids.SHRINK_BUTTON, max_vertices=8)[0]
        shrinks += 1
    assert shrinks <= 4 and history["present"]["offset_from"]["pixels"] == -shrinks
    assert annotate.enable_offset(history, meta, None) == (False, True)  # Grow only
    # Shrinking nothing adds no step that Grow would have to take back.
    with pytest.raises(PreventUpdate):
        _offset_click(annotate, history, meta, ids.SHRINK_BUTTON, max_vertices=8)
    for _ in range(shrinks - 1):
        history = _offset_click(annotate, history, meta, ids.GROW_BUTTON, max_vertices=8)[0]
    out = _offset_click(annotate, history, meta, ids.GROW_BUTTON, max_vertices=8)
    history, slider = out[0], out[5]
    assert history["present"]["paths"] == start["paths"]
    # The slider shows the density the outline came back at, not its own 8.
    assert history["present"]["density"] == 32 and slider == 32


def test_a_run_of_shrinks_is_clamped_to_what_the_vectorizer_takes():
    state = _editing.make_state(["M1,1L90,1L90,70L1,70Z"], "edit", density=32)
    far = _editing.offset_outline(state, -10**6, (80, 100), 32)
    assert far["paths"] == [] and far["offset_from"]["pixels"] == -vectorizer.MAX_OFFSET_PX
    back = _editing.offset_outline(far, 10**6, (80, 100), 32)
    assert back["offset_from"]["pixels"] == vectorizer.MAX_OFFSET_PX  # the whole frame
    assert _shapes.paths_to_mask(back["paths"], (80, 100)).all()


def test_a_save_over_another_readers_save_from_the_same_page_revises_it(
        app, annotate, data_dir):
    # A shared reading-room workstation: Dr Amal saves, then Dr Bashir types his name
    # into the same page and saves. Before, his v2 recorded no based_on and counted as
    # an independent read (Dice 1.0 with hers in reader agreement).
    history = _drawn_history()
    first, work = _save_again(app, annotate, history, None, annotator="Dr Amal")
    assert first.startswith("Saved. Version 1")
    second, work = _save_again(app, annotate, history, work, annotator="Dr Bashir")
    assert second.startswith("Saved. Version 2")
    # Said, since he may not know.
    assert ("Recorded as a revision of version 1 by Dr Amal: reader agreement does not "
            "count it as an independent read.") in second
    assert "Recorded as a revision" not in first
    store = AnnotationStore(data_dir)
    assert store.load_record(SHA, 2)["based_on"] == {
        "version": 1, "annotator": "Dr Amal", "readers": ["Dr Amal"]}
    # A page's next save revises its own last one, by whoever saved it.
    third, work = _save_again(app, annotate, history, work, annotator="Dr Bashir", note="v3")
    assert "Recorded as a revision" not in third  # his own read, revised
    assert store.load_record(SHA, 3)["based_on"] == {
        "version": 2, "annotator": "Dr Bashir", "readers": ["Dr Amal", "Dr Bashir"]}


def test_the_pages_own_saves_and_its_loads_are_told_apart_by_order(app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, annotator="Dr Cy")  # v1, from elsewhere
    history = _edit(annotate, [LOADED], loaded=_loaded(version=1), history=_drawn_history())[0]
    _text, work = _save_again(app, annotate, history, None, annotator="Dr Bo")  # v2
    _save(data_dir, [RING], annotator="Dr Ada")  # v3, from elsewhere
    # This page then loads v3: its next save revises v3 (the newest load), and still
    # descends from its own v2 and what that revised.
    history = _edit(annotate, [LOADED], loaded=_loaded(at=333, version=3), history=history)[0]
    _save_again(app, annotate, history, work, annotator="Dr Bo")  # v4
    assert AnnotationStore(data_dir).load_record(SHA, 4)["based_on"] == {
        "version": 3, "annotator": "Dr Ada", "readers": ["Dr Ada", "Dr Bo", "Dr Cy"]}


def test_a_forged_list_of_the_pages_saves_neither_fails_a_save_nor_claims_a_version(
        app, annotate, data_dir):
    # The list is kept by the browser, unsigned: versions that do not exist are left out.
    forged = {"image": SHA, "versions": [7, 9]}
    text, _work = _save_again(app, annotate, _drawn_history(), forged, annotator="Dr Bo")
    assert text.startswith("Saved. Version 1")
    assert AnnotationStore(data_dir).load_record(SHA, 1)["based_on"] is None


def test_a_linked_file_that_holds_another_image_now_is_said_so_once(app, annotate, data_dir):
    no = dash.no_update
    _save(data_dir, SAVED_PATHS, label="benign")
    worklist_meta = dict(META, worklist_path="left/scan.png")
    # The link's version was saved from another image than the file holds now.
    linked = {"worklist_path": "left/scan.png", "expect": OTHER_SHA}
    load, revise, note, named = _revise(app, annotate, [ids.IMAGE_OPENED], linked,
                                 meta=worklist_meta, auto=True)
    assert load is no and named is no and revise == {"worklist_path": "left/scan.png"}
    assert "left/scan.png has changed since the version you opened was saved" in (
        text_of(note))
    # Said once; the wish goes on as for any link (the file's own versions load).
    assert _revise(app, annotate, [ids.SEGMENT_DONE], revise, meta=worklist_meta) == (
        1, None, no, {"image": SHA, "version": 1})
    # The image the link expects: nothing to say.
    same = {"worklist_path": "left/scan.png", "expect": SHA}
    assert _revise(app, annotate, [ids.IMAGE_OPENED], same, meta=worklist_meta,
                   auto=False) == (1, None, no, {"image": SHA, "version": 1})


def test_a_link_carries_the_hash_it_expects_only_when_it_is_one(annotate, tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    app = create_app({"DATA_DIR": tmp_path / "annotations", "WORKLIST_DIR": folder})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        *_rest, revise = annotate.open_linked("left/scan.png", None, "", SHA)
        assert revise == {"worklist_path": "left/scan.png", "expect": SHA}
        *_rest, revise = annotate.open_linked("left/scan.png", None, "", "not-a-hash")
        assert revise == {"worklist_path": "left/scan.png"}
        # A kept upload is named by its hash already.
        *_rest, revise = annotate.open_linked(None, SHA, "", OTHER_SHA)
        assert revise == {"sha256": SHA}

        def stored(**query):
            return find_component(page["layout"](**query), ids.LINK_EXPECT).data

        assert stored(open="a.png", expect=SHA) == SHA
        assert stored(open="a.png", expect="C3" * 32) is None  # not as the links write it
        assert stored(open="a.png", expect=SHA + "00") is None
        assert stored(open="a.png", expect=[SHA, SHA]) is None
        assert stored(open="a.png") is None

        *_rest, revise = annotate.open_linked("left/scan.png", None, "", SHA, 2)
        assert revise == {"worklist_path": "left/scan.png", "expect": SHA, "version": 2}
        *_rest, revise = annotate.open_linked(None, SHA, "", None, 3)
        assert revise == {"sha256": SHA, "version": 3}
        for bad in (0, -1, True, "2"):
            *_rest, revise = annotate.open_linked(None, SHA, "", None, bad)
            assert revise == {"sha256": SHA}

        def version(**query):
            return find_component(page["layout"](**query), ids.LINK_VERSION).data

        assert version(open="a.png", version="12") == 12
        for bad in ("0", "012", "-1", "1.5", "1e3", "1234567890", ["1", "2"]):
            assert version(open="a.png", version=bad) is None, bad
        assert version(open="a.png") is None


def test_a_link_to_an_older_version_loads_that_version(app, annotate, data_dir):
    # The Saved page lists every version; a row's Open loads that row's version, not
    # the latest (before, v1's row opened v2 and the next save revised v2).
    no = dash.no_update
    _save(data_dir, SAVED_PATHS, annotator="Dr Amal", label="benign")  # v1
    _save(data_dir, [RING], annotator="Dr Bashir", label="malignant")  # v2
    load, revise, note, named = _revise(app, annotate, [ids.SEGMENT_DONE],
                                        {"sha256": SHA, "version": 1})
    assert (load, revise, note, named) == (1, None, no, {"image": SHA, "version": 1})
    # load_saved takes the version so named.
    loaded, label = _load_named(app, annotate, named)
    assert loaded["version"] == 1 and label == "benign"
    # A link that names no version loads as the entry picked would: the reader's own
    # latest, and none of another reader's, nor any before a reader is named
    # (a bare ?open= link loaded Dr Bashir's v2 for Dr Amal; a second reader's, for a
    # reader who had saved none, ended their independent reading).
    assert _revise(app, annotate, [ids.SEGMENT_DONE], {"sha256": SHA},
                   annotator=None) == (no, None, no, no)
    assert _revise(app, annotate, [ids.SEGMENT_DONE], {"sha256": SHA},
                   annotator="Dr Amal") == (1, None, no, {"image": SHA, "version": 1})
    assert _revise(app, annotate, [ids.SEGMENT_DONE], {"sha256": SHA},
                   annotator="Dr Cy") == (no, None, no, no)
    # A file that holds another image now: its own versions, not the number the link
    # gave for the image it expected.
    worklist_meta = dict(META, worklist_path="left/scan.png")
    _load_, revise, _note, _named = _revise(
        app, annotate, [ids.IMAGE_OPENED],
        {"worklist_path": "left/scan.png", "expect": OTHER_SHA, "version": 1},
        meta=worklist_meta)
    assert revise == {"worklist_path": "left/scan.png"}


def _load_named(app, annotate, shown):
    with app.server.test_request_context("/_dash-update-component"):
        out = annotate.load_saved(1, META, shown)
    return out[0], out[1]


# ------------------------------------------------------- the version's AI classification

PROBABILITIES = {"normal": 0.02, "benign": 0.07, "malignant": 0.91}
CLASSIFIER = {"name": "sonotrace_unet", "version": "2026-12-03.10"}


def _save_classified(data_dir, paths, classified_outline_is_final):
    mask = _shapes.paths_to_mask(paths, (HEIGHT, WIDTH))
    record = build_record(
        image=META, annotator="Dr Ada", final_mask=mask, final_label="malignant",
        classification={"label": "malignant", "probabilities": PROBABILITIES,
                        "model": CLASSIFIER})
    record["ai"]["classified_outline_is_final"] = classified_outline_is_final
    AnnotationStore(data_dir).save(SHA, svg=_shapes.paths_to_svg(paths, WIDTH, HEIGHT),
                                   mask_png=vectorizer.mask_to_png(mask), record=record)


def _revision_record(app, annotate, data_dir, classification, history):
    with app.server.test_request_context("/_dash-update-component"):
        alert, _work = annotate.save(1, META, history, None, classification, "benign", "",
                                     "Dr Bo", None, *[None] * N)
    assert text_of(alert).startswith("Saved."), text_of(alert)
    return json.loads((data_dir / SHA / "v002.json").read_text())


def test_a_loaded_version_brings_its_ai_classification_and_its_revision_records_it(
        app, annotate, data_dir):
    # The card said "Not classified yet" and a revision saved without Classify recorded
    # no AI label: the image left the Saved page's AI-against-reader statistics.
    _save_classified(data_dir, SAVED_PATHS, classified_outline_is_final=True)
    with app.server.test_request_context("/_dash-update-component"):
        classification = annotate.load_saved(1, META)[-1]
    assert isinstance(classification.pop("signature"), str)  # the server wrote it: signed
    assert classification == {"image": SHA, "label": "malignant",
                              "probabilities": PROBABILITIES, "model": CLASSIFIER,
                              "paths": SAVED_PATHS, "version": 1}
    history = _history_of(SAVED_PATHS, action="edit")
    _figure, label = annotate.show_classification(classification, history, True, META)
    assert text_of(label) == ("AI label: malignantsonotrace_unet 2026-12-03.10"
                              "As saved with version 1.")  # text_of joins the parts
    record = _revision_record(app, annotate, data_dir, classification, history)
    assert record["ai"] == {"segmented": False, "label": "malignant",
                            "probabilities": PROBABILITIES, "classified_outline_is_final": True}
    assert record["model"]["classification"] == CLASSIFIER


def test_a_versions_classification_of_another_outline_is_shown_as_such(app, annotate, data_dir):
    _save_classified(data_dir, SAVED_PATHS, classified_outline_is_final=False)
    with app.server.test_request_context("/_dash-update-component"):
        classification = annotate.load_saved(1, META)[-1]
    assert classification["paths"] is None  # not known
    history = _history_of(SAVED_PATHS, action="edit")
    _figure, label = annotate.show_classification(classification, history, True, META)
    assert text_of(label).endswith(
        "As saved with version 1.Made on another outline than the version's; classify "
        "again to update.")
    record = _revision_record(app, annotate, data_dir, classification, history)
    assert record["ai"]["label"] == "malignant"
    assert record["ai"]["classified_outline_is_final"] is False


def test_a_version_without_a_classification_leaves_the_cards_as_they_are(
        app, annotate, data_dir):
    _save(data_dir, SAVED_PATHS, label="benign")
    with app.server.test_request_context("/_dash-update-component"):
        assert annotate.load_saved(1, META)[-1] is dash.no_update
    # A damaged one is not shown either (it would fail the next save's record).
    _save_classified(data_dir, SAVED_PATHS, classified_outline_is_final=True)
    path = data_dir / SHA / "v002.json"
    record = json.loads(path.read_text())
    record["ai"]["probabilities"] = {"normal": 2.0}
    path.write_text(json.dumps(record))
    with app.server.test_request_context("/_dash-update-component"):
        assert annotate.load_saved(1, META)[-1] is dash.no_update


# --------------------------------------------------------------------------- precision


# As a drag in the editor leaves a vertex: 0.0004 px off a column of pixel centres (x = 3.5),
# in plotly's full digits. Rounded on reading, it covered other pixels than the saved mask.
_DRAGGED = "M3.4996,0.25L7.5,0.25L7.5,5.75L3.499612345678912,5.75Z"


def _save_as_the_page_does(data_dir, paths):
    """Save ``paths`` with the mask rasterised from the SVG, as the page's Save does."""
    svg = _shapes.paths_to_svg(paths, WIDTH, HEIGHT)
    mask = vectorizer.svg_to_mask(svg)
    record = build_record(image=META, annotator="Dr Ada", final_mask=mask)
    AnnotationStore(data_dir).save(SHA, svg=svg, mask_png=vectorizer.mask_to_png(mask),
                                   record=record)
    return mask


def test_a_saved_outline_loads_to_revise_covering_exactly_its_saved_mask(app, annotate,
                                                                          data_dir):
    # Audit 801 F1: refused as "not written by this client" (6 of its 24 pixels differed).
    mask = _save_as_the_page_does(data_dir, [_DRAGGED])
    loaded, *_rest, message = _load(app, annotate)[:5]
    assert message.id == "load-result", text_of(message)
    assert loaded["paths"] == [_DRAGGED]
    np.testing.assert_array_equal(_shapes.paths_to_mask(loaded["paths"], (HEIGHT, WIDTH)),
                                  mask)
    with app.server.test_request_context("/_dash-update-component"):
        assert annotate._outline_readable(META, 1)


def test_the_export_reads_a_saved_outline_as_it_was_saved(data_dir):
    # The DICOM SR's lesions are the version's drawn outlines; an outline it could not
    # read made each region a lesion, silently.
    from annotation_client._export import _version_outlines

    _save_as_the_page_does(data_dir, [_DRAGGED])
    assert _version_outlines(AnnotationStore(data_dir), SHA, 1, (HEIGHT, WIDTH)) == [_DRAGGED]


def test_a_revision_keeps_the_box_models_of_its_load_once_the_load_left_the_undo_history(
        app, annotate, data_dir):
    # A long revision: 200 edits (or 4 MiB of outlines) after the load, the loaded step
    # and a box drawn before the edits are dropped from the undo history; the outline
    # is still partly their models', and so is the record's model.box.
    _save(data_dir, SAVED_PATHS, box_models=[SHIPPED])
    history = _edit(annotate, [LOADED], loaded=_loaded(version=1), history=_drawn_history())[0]
    history = _boxed(annotate, history, UPGRADED, paths=SAVED_PATHS)
    for n in range(_history.DEFAULT_LIMIT + 1):
        moved = f"M0.5,0.25L7.5,0.25L7.5,{5 + n / 1000}L0.5,5.75Z"
        history = _edit(annotate, [RELAYOUT], loaded=_loaded(version=1), history=history,
                        relayout={"shapes[0].path": moved})[0]
        assert history["present"]["action"] != "saved"
    assert not any(s.get("action") in ("saved", "box") for s in history["past"])
    assert _box_models(app, annotate, history) == [SHIPPED, UPGRADED]
    assert _save_from(app, annotate, history).startswith("Saved.")
    assert AnnotationStore(data_dir).load_record(SHA, 2)["model"]["box"] == [SHIPPED, UPGRADED]
    # Undone as far as it goes, the oldest step kept is still after the load and the box.
    while history["past"]:
        history = _history.undo(history)
    assert _box_models(app, annotate, history) == [SHIPPED, UPGRADED]
    # Replaced whole, the outline is none of theirs any more.
    reset = _history.push(history, _editing.make_state([TRIANGLE], "reset", base="ai"))
    assert _box_models(app, annotate, reset) == []
