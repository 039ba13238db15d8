"""Calibrate: a line drawn along the image's depth scale, and its length in mm, give the spacing.

Audit: the radiologist hovered both ends of the ruler burned into the image,
subtracted the coordinates and divided. Calibrate turns the mouse into a line pen;
the line's length in image pixels (the figure's units) and the distance typed in mm
give the spacing, shown in the field for Set. The line is never an outline.
"""

from __future__ import annotations

import dash
import pytest
from _dash_helpers import as_callback

import vectorizer
from annotation_client import _shapes
from annotation_client import _spacing_aids as aids

SQUARE = "M 10,10 L 50,10 L 50,50 L 10,50 Z"
PNG = {"sha256": "a" * 64, "name": "case10.png", "kind": "png", "size_bytes": 94,
       "width": 600, "height": 400, "pixel_spacing_mm": None, "notes": []}


def _line(x0, y0, x1, y1) -> dict:
    return {"type": "line", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "xref": "x", "yref": "y"}


def _event(*lines) -> dict:
    """plotly's relayoutData after a line is drawn: every shape, the outline's among them."""
    return {"shapes": [{"type": "path", "path": SQUARE}, *lines]}


def _operations(patch) -> dict:
    return {tuple(op["location"]): op["params"].get("value")
            for op in patch.to_plotly_json()["operations"]}


@pytest.fixture
def annotate(tmp_path):
    from annotation_client import create_app

    create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    return annotate


def test_a_lines_length_is_measured_in_image_pixels():
    assert aids.line_length_px(_event(_line(50, 100, 450, 100))) == 400  # x right
    assert aids.line_length_px(_event(_line(20, 20, 23, 24))) == 5  # y down, 3-4-5
    # The last line drawn counts; no line, or one plotly would not send, is none.
    assert aids.line_length_px(_event(_line(0, 0, 10, 0), _line(0, 0, 0, 30))) == 30
    assert aids.line_length_px(_event()) is None
    assert aids.line_length_px({"shapes[0].path": SQUARE}) is None
    assert aids.line_length_px(_event({"type": "line", "x0": "a", "y0": 0, "x1": 1, "y1": 1}))\
        is None
    assert aids.line_length_px(None) is None


def test_the_spacing_is_the_length_in_mm_over_the_length_in_pixels():
    assert aids.calibrated("40", 465.0)[0] == pytest.approx(40 / 465, rel=1e-5)
    spacing, message = aids.calibrated(40, 400.0)
    assert spacing == 0.1
    assert message == "40 mm over 400.0 px: 0.1 mm per pixel. Set to measure at it."


@pytest.mark.parametrize("length", [None, "", "abc", 0, "-5", float("nan"), float("inf")])
def test_a_length_that_is_no_positive_number_is_refused_with_the_reason(length):
    spacing, message = aids.calibrated(length, 400.0)
    assert spacing is None
    assert "is not a length" in message and "positive number" in message


def test_a_spacing_out_of_the_plausible_range_is_refused_naming_it():
    low, high = vectorizer.MIN_PIXEL_SPACING_MM, vectorizer.MAX_PIXEL_SPACING_MM
    spacing, message = aids.calibrated(1000, 10.0)  # 100 mm per pixel
    assert spacing is None
    assert message == (f"1000 mm over 10.0 px is 100 mm per pixel, outside {low:g} to "
                       f"{high:g}: check the line and its length in mm.")
    assert aids.calibrated(0.001, 500.0)[0] is None  # too fine
    assert aids.calibrated(40, 0.4) == (None, "Draw the line again: it is shorter than one "
                                              "pixel.")


def test_the_line_is_no_outline_region():
    # edit() records what apply_relayout returns: the line is not among the paths.
    change = _shapes.apply_relayout([SQUARE], _event(_line(50, 100, 450, 100)))
    assert change.paths == [SQUARE] and not change.boxes and not change.dropped


def test_calibrate_turns_the_mouse_into_a_line_pen(annotate):
    figure, calibration, note, form = annotate.start_calibration(1, PNG)
    assert _operations(figure)[("layout", "dragmode")] == "drawline"
    assert calibration == {"image": "a" * 64, "pixels": None}
    assert "Drag along the depth scale" in str(note.children)
    dicom = dict(PNG, pixel_spacing_mm=[0.1, 0.1])
    assert annotate.start_calibration(1, dicom)[:2] == (dash.no_update, dash.no_update)
    with pytest.raises(dash.exceptions.PreventUpdate):
        annotate.start_calibration(None, PNG)


@pytest.mark.parametrize(("tool", "dragmode"), [("pan", "pan"), ("draw", "drawclosedpath")])
def test_the_line_drawn_is_measured_taken_off_and_the_tool_given_back(annotate, tool, dragmode):
    history = {"image": "a" * 64, "present": {"paths": [SQUARE]}, "past": [], "future": []}
    calibration = {"image": "a" * 64, "pixels": None}
    event = _event(_line(50, 100, 450, 100))
    figure, taken, note, form, text = annotate.take_calibration_line(
        event, PNG, history, calibration, tool, None, True, True)
    operations = _operations(figure)
    # The graph shows the outline alone again, with the tool's mouse mode and pen.
    shapes = operations[("layout", "shapes")]
    assert [s["type"] for s in shapes] == ["path"] and shapes[0]["path"] == SQUARE
    assert operations[("layout", "dragmode")] == dragmode
    assert operations[("layout", "newshape")] == annotate._figure.newshape_style(tool)
    assert taken == {"image": "a" * 64, "pixels": 400.0}
    assert form is None and text == "Line 400.0 px ="
    assert "in mm, then Compute" in str(note.children)


def test_a_line_drawn_without_calibrate_is_only_taken_off(annotate):
    history = {"image": "a" * 64, "present": {"paths": [SQUARE]}, "past": [], "future": []}
    no = dash.no_update
    for calibration in (None, {"image": "b" * 64, "pixels": None}):
        figure, *rest = annotate.take_calibration_line(
            _event(_line(0, 0, 40, 0)), PNG, history, calibration, "pan", None, True, True)
        assert rest == [no, no, no, no]
        assert [s["type"] for s in _operations(figure)[("layout", "shapes")]] == ["path"]


def test_compute_fills_the_field_for_set_and_refuses_with_the_reason(annotate):
    calibration = {"image": "a" * 64, "pixels": 400.0}
    value, note, kept = annotate.compute_calibration(1, None, 40, calibration, PNG)
    assert value == 0.1 and "Set to measure at it" in str(note.children)
    assert kept == {"image": "a" * 64, "pixels": 400.0, "spacing": 0.1}
    # Not Set yet: Save waits until the radiologist confirms it.
    assert "it was not Set" in annotate._spacing_unset(value, PNG)
    value, note, kept = annotate.compute_calibration(1, None, -3, calibration, PNG)
    assert value is dash.no_update and "is not a length" in str(note.children)
    assert kept is dash.no_update
    value, note, kept = annotate.compute_calibration(
        None, 1, 40, {"image": "b" * 64, "pixels": 400}, PNG)
    assert value is dash.no_update and "Click Calibrate" in str(note.children)
    assert annotate.end_calibration(1) == (None, {"display": "none"})


def test_a_spacing_set_as_computed_is_recorded_as_calibrated(annotate):
    # A Calibrate result was recorded as "manual", as if typed: who audits the
    # millimetres could not tell a measured depth scale from a number typed in.
    computed = {"image": "a" * 64, "pixels": 400.0, "spacing": 0.1}
    meta, info, _changed, note, _last = annotate.set_spacing(1, None, 0.1, PNG, computed)
    assert meta["pixel_spacing_source"] == "calibrated"
    assert "calibrated on the image's depth scale" in str(note.children)
    assert "calibrated on the image's depth scale" in str(info)
    # Edited before Set, computed on another image, or never computed: typed by hand.
    for value, calibration in [("0.11", computed), (0.1, dict(computed, image="b" * 64)),
                               (0.1, {"image": "a" * 64, "pixels": 400.0}), (0.1, None)]:
        meta, *_ = annotate.set_spacing(1, None, value, PNG, calibration)
        assert meta["pixel_spacing_source"] == "manual", (value, calibration)


def test_a_decimal_comma_is_the_decimal_point_and_a_slip_is_refused(tmp_path):
    # A number field dropped the comma of "0,09": Set measured at 9 mm per pixel, a
    # lesion 3.26 m long. The field is text; the comma is read as the decimal point,
    # and a spacing that makes the frame wider than 50 cm is refused with the reason.
    import dash

    from annotation_client import create_app

    create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    png = {"sha256": "a" * 64, "name": "a.png", "kind": "png", "size_bytes": 94,
           "width": 678, "height": 571, "pixel_spacing_mm": None, "notes": []}
    meta, _info, _changed, note, _last = annotate.set_spacing(1, None, " 0,09 ", png)
    assert meta["pixel_spacing_mm"] == [0.09, 0.09]
    assert "0.09 mm per pixel" in str(note.children)
    assert annotate._spacing_unset("0,09", meta) is None  # the field shows what is in use
    for slip in ("9", 9, "0,9"):
        meta, info, changed, note, last = annotate.set_spacing(1, None, slip, png)
        assert (meta, info, changed, last) == (dash.no_update,) * 4, slip
        assert str(note.children).startswith(
            f"Not set: at {float(str(slip).replace(',', '.')):g} mm per pixel this 678x571 "
            "image would be"), slip
        assert "at most 50 cm" in str(note.children)
    for bad in ("0,0,9", "1.000,5", "0.08.1"):
        _meta, _info, _changed, note, _last = annotate.set_spacing(1, None, bad, png)
        assert "is not a pixel spacing" in str(note.children), bad
    # The widest a frame may be: 500 mm over its 678 pixels is taken.
    meta, *_ = annotate.set_spacing(1, None, str(500 / 678), png)
    assert meta["pixel_spacing_mm"] == [500 / 678, 500 / 678]


def test_a_spacing_set_by_hand_marks_the_work_unsaved_until_it_is_saved(tmp_path):
    # The reload and next-image prompts read this mark: a calibration was lost on
    # Previous without a word, though Save made a version of it.


    from annotation_client import _editing, _history, _unsaved, create_app, ids
    from annotation_client._record import DESCRIPTOR_OPTIONS

    app = create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    png = {"sha256": "a" * 64, "name": "a.png", "kind": "png", "size_bytes": 94,
           "width": 30, "height": 20, "pixel_spacing_mm": None, "notes": []}
    history = _history.new_history(_editing.empty_state(), image=png["sha256"])
    blank = [None] * len(DESCRIPTOR_OPTIONS)

    def mark(meta, saved=None):
        return as_callback(lambda: annotate.mark_unsaved(
            history, None, None, *blank, saved, meta, None, 1, None, None, None,
        )[2], f"{ids.OUTLINE_CHANGED}.data", app=app, value=1)

    assert mark(png) == ""
    typed, *_ = annotate.set_spacing(1, None, "0.08", png)
    assert mark(typed) == "dirty"
    saved = _unsaved.snapshot(png["sha256"], [], spacing=[0.08, 0.08])
    assert mark(typed, saved) == ""  # as saved
    dicom = dict(png, pixel_spacing_mm=[0.1, 0.1])  # the file's own: opening gives it back
    assert mark(dicom) == ""


def test_the_calipers_drawn_are_the_chords_the_mm_figures_measure(annotate):
    # The panel's mm figures were measured at the spacing, the calipers on the graph
    # without it: with pixels of 0.3 x 0.1 mm, lines 3 mm off what the panel said.
    import math

    square = ["M 10,10 L 110,10 L 110,70 L 10,70 Z"]  # 100 x 60 px
    drawn = {a["name"]: a for a in annotate._calipers(square, (80, 120), True, True,
                                                        [0.3, 0.1])}
    summary = annotate._measurements.summarize(
        annotate._shapes.paths_to_mask(square, (80, 120)), (0.3, 0.1))
    for key in ("max_diameter", "perpendicular_diameter"):
        line = drawn[f"{key}_endpoints"]
        mm = math.hypot((line["x"] - line["ax"]) * 0.1, (line["y"] - line["ay"]) * 0.3)
        assert mm == pytest.approx(summary["largest"][f"{key}_mm"])
    # In pixels, the longest chords in pixels.
    plain = {a["name"]: a for a in annotate._calipers(square, (80, 120), True, True)}
    line = plain["perpendicular_diameter_endpoints"]
    assert math.hypot(line["x"] - line["ax"], line["y"] - line["ay"]) == pytest.approx(
        summary["largest"]["perpendicular_diameter_px"])
