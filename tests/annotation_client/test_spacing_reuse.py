"""The last pixel spacing Set, offered on the next image in one click (never applied unasked).

Audit: the spacing had to be typed for every image of a worklist. A spacing Set is
kept for the browser session and offered on the next image measured in pixels; a
save records a reused spacing as "reused", the reader's like "manual".
"""

from __future__ import annotations

import dash
import pytest

from annotation_client import _spacing_aids as aids
from annotation_client import ids

CASE10 = {"sha256": "a" * 64, "name": "case10.png", "kind": "png", "size_bytes": 94,
          "width": 30, "height": 20, "pixel_spacing_mm": None, "notes": []}
CASE11 = dict(CASE10, sha256="b" * 64, name="case11.png")


@pytest.fixture
def annotate(tmp_path):
    from annotation_client import create_app

    create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    return annotate


def test_a_spacing_set_is_remembered_and_offered_on_the_next_image_without_one(annotate):
    meta, _info, _changed, _note, last = annotate.set_spacing(1, None, "0.08", CASE10)
    assert meta["pixel_spacing_source"] == "manual"
    assert last == {"mm": 0.08, "name": "case10.png", "sha256": "a" * 64, "width": 30,
                    "height": 20}
    # case11 opens in pixels: the field stays empty (show_calibration), the offer shows.
    assert annotate.show_calibration(1, None, None, CASE11)[:3] == (False, None, None)
    hidden, label, size_note = annotate.offer_last_spacing(1, None, None, last, CASE11)
    assert (hidden, label, size_note) == (False, "Use 0.08 mm/px (as set on case10.png)", None)
    # Not on an image measured in mm already, nor with nothing remembered.
    assert annotate.offer_last_spacing(1, None, None, last, meta)[0] is True
    dicom = dict(CASE11, pixel_spacing_mm=[0.1, 0.1])
    assert annotate.offer_last_spacing(1, None, None, last, dicom)[0] is True
    assert annotate.offer_last_spacing(1, None, None, None, CASE11)[0] is True
    assert annotate.offer_last_spacing(1, None, None, last, None)[0] is True


def test_the_offer_applies_the_spacing_only_when_clicked_and_records_it_as_reused(annotate):
    last = aids.remembered(CASE10, 0.08)
    with pytest.raises(dash.exceptions.PreventUpdate):
        annotate.reuse_spacing(None, last, CASE11)
    meta, info, changed, note, value, hidden = annotate.reuse_spacing(1, last, CASE11)
    assert meta["pixel_spacing_mm"] == [0.08, 0.08]
    assert meta["pixel_spacing_source"] == "reused"
    assert value == 0.08 and hidden is True and isinstance(changed, int)
    assert "as set on case10.png" in str(note.children)
    # A reused spacing is the reader's, not the file's: the field stays offered and
    # editable, shows it, and Set may replace it.
    assert annotate.show_calibration(1, None, None, meta)[:3] == (False, 0.08, None)
    assert not annotate._file_gives_spacing(meta)
    again, *_rest = annotate.set_spacing(1, None, "0.09", meta)
    assert again["pixel_spacing_mm"] == [0.09, 0.09]
    assert again["pixel_spacing_source"] == "manual"
    # The field agrees with the spacing in use: Save does not wait.
    assert annotate._spacing_unset(0.08, meta) is None


def test_a_spacing_set_on_an_image_of_another_size_is_offered_with_a_warning():
    last = aids.remembered(CASE10, 0.08)
    offer = aids.reuse_offer(last, dict(CASE11, width=800, height=600))
    assert offer["label"] == "Use 0.08 mm/px (as set on case10.png)"
    assert offer["size_note"] == ("case10.png was 30 × 20 px, this image is 800 × 600 px: "
                                  "check its depth scale before using it.")


@pytest.mark.parametrize("forged", [
    {"mm": 0}, {"mm": -1}, {"mm": 1e9}, {"mm": float("nan")}, {"mm": "0.08"}, {"mm": True},
    {"mm": 1e-9}, [], "0.08", {"name": "x"},
])
def test_a_remembered_spacing_the_measurements_refuse_is_not_offered(forged):
    # The session store is the browser's to change.
    assert aids.reuse_offer(forged, CASE11) is None


def test_a_name_or_size_of_another_form_still_offers_the_spacing_plainly():
    offer = aids.reuse_offer({"mm": 0.1, "name": 7, "width": "30", "height": True}, CASE11)
    assert offer["label"] == "Use 0.1 mm/px (as set on an earlier image)"
    assert offer["size_note"] is None


def test_a_loaded_version_measured_at_a_reused_spacing_brings_it_back_as_reused(annotate):
    record = {"image": {"pixel_spacing_mm": [0.08, 0.08], "pixel_spacing_source": "reused"}}
    meta = annotate._typed_spacing(CASE11, record)
    assert meta["pixel_spacing_mm"] == [0.08, 0.08]
    assert meta["pixel_spacing_source"] == "reused"
    record["image"]["pixel_spacing_source"] = "file"
    assert annotate._typed_spacing(CASE11, record) is None


def test_the_form_holds_the_offer_hidden_until_there_is_one(annotate):
    from _dash_helpers import find_component

    form = annotate._calibration_form()
    row = find_component(form, ids.SPACING_REUSE_ROW)
    assert row.hidden is True
    assert find_component(form, ids.SPACING_LAST).storage_type == "session"
