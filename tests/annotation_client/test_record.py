import datetime as dt
import json

import numpy as np
import pytest

from annotation_client import _record as r

IMAGE = {"sha256": "ab" * 32, "name": "benign (1).png", "width": 6, "height": 4}


def _masks():
    ai = np.zeros((4, 6), bool)
    ai[1:3, 1:4] = True  # 6 pixels
    final = np.zeros((4, 6), bool)
    final[1:3, 2:5] = True  # 6 pixels, 4 shared with ai
    return ai, final


def test_dice_and_iou_on_hand_made_masks():
    ai, final = _masks()
    assert r.dice(ai, final) == pytest.approx(2 * 4 / 12)
    assert r.iou(ai, final) == pytest.approx(4 / 8)
    assert r.dice(ai, ai) == 1.0
    empty = np.zeros_like(ai)
    assert r.dice(empty, empty) == 1.0
    assert r.dice(ai, empty) == 0.0
    with pytest.raises(ValueError, match="shape"):
        r.dice(ai, final[:, :5])


def test_record_holds_everything_and_is_json():
    ai, final = _masks()
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    record = r.build_record(
        image=IMAGE,
        annotator="  Dr. Ada  ",
        final_mask=final,
        ai_mask=ai,
        final_label="malignant",
        descriptors={"shape": "irregular", "margin": ["spiculated", "angular"], "assessment": "4C"},
        note=" grows since last visit ",
        measurements={"count": 1, "area_px": np.float64(6.0), "regions": []},
        model={"name": "unet", "version": "1.2", "extra": "dropped"},
        classification={
            "label": "benign",
            "probabilities": {"normal": 0.1, "benign": 0.6, "malignant": 0.3},
            "model": {"name": "clf", "version": "3"},
        },
        vertices=17,
        based_on={"version": 3, "annotator": " Dr. Bea "},
        saved_at=when,
    )
    json.dumps(record, allow_nan=False)
    assert record["based_on"] == {"version": 3, "annotator": "Dr. Bea", "readers": ["Dr. Bea"]}
    assert r.descends_from_others(record) is True
    assert record["saved_at"] == "2024-05-06T07:08:09Z"
    assert record["annotator"] == "Dr. Ada"
    assert record["image"]["sha256"] == IMAGE["sha256"]
    assert record["image"]["worklist_path"] is None
    assert record["model"] == {
        "segmentation": {"name": "unet", "version": "1.2"},
        "classification": {"name": "clf", "version": "3"},
        "box": None,  # no box re-segmentation
        "box_differs": None,
    }
    assert record["ai"]["label"] == "benign"
    assert record["ai"]["probabilities"]["malignant"] == 0.3
    assert record["final"]["label"] == "malignant"
    assert record["final"]["note"] == "grows since last visit"
    assert record["final"]["descriptors"]["margin"] == ["angular", "spiculated"]
    assert record["final"]["descriptors"]["orientation"] is None
    assert record["agreement"]["dice_ai_vs_final"] == pytest.approx(2 / 3)
    assert record["agreement"]["edited"] is True
    assert isinstance(record["measurements"]["area_px"], float)


def test_record_without_ai():
    _, final = _masks()
    record = r.build_record(image=IMAGE, annotator="B", final_mask=final)
    assert record["agreement"] == {"dice_ai_vs_final": None, "edited": None,
                                   "offered_paths": None}
    assert record["ai"] == {"segmented": False, "label": None, "probabilities": None}
    assert record["final"]["label"] is None
    assert record["saved_at"].endswith("Z")
    assert record["based_on"] is None
    assert r.descends_from_others(record) is None


def test_the_record_names_each_box_model_once_and_whether_one_is_not_the_outlines():
    final = np.zeros((4, 6), bool)
    unet = {"name": "unet", "version": "1.2"}
    newer = {"name": "unet", "version": "1.3", "ignored": True}
    record = r.build_record(image=IMAGE, annotator="B", final_mask=final, model=unet,
                            box_models=[unet, newer, unet, {"name": "unet", "version": "1.3"}])
    assert record["model"]["box"] == [unet, {"name": "unet", "version": "1.3"}]
    assert record["model"]["box_differs"] is True
    same = r.build_record(image=IMAGE, annotator="B", final_mask=final, model=unet,
                          box_models=[unet])["model"]
    assert (same["box"], same["box_differs"]) == ([unet], False)
    # A box on an outline drawn by hand: the only model that shaped it is the box's.
    by_hand = r.build_record(image=IMAGE, annotator="B", final_mask=final,
                             box_models=[unet])["model"]
    assert (by_hand["segmentation"], by_hand["box"], by_hand["box_differs"]) == (
        None, [unet], True)
    with pytest.raises(TypeError, match="box_models"):
        r.build_record(image=IMAGE, annotator="B", final_mask=final, box_models=unet)


def test_a_records_box_models_are_read_back_as_a_revision_keeps_them():
    final = np.zeros((4, 6), bool)
    unet, newer = {"name": "unet", "version": "1.2"}, {"name": "unet", "version": "1.3"}
    record = r.build_record(image=IMAGE, annotator="B", final_mask=final, model=unet,
                            box_models=[unet, newer])
    assert r.parse_box_models(json.loads(json.dumps(record))) == [unet, newer]
    # No box, or a record saved before box models were recorded: none.
    assert r.parse_box_models(r.build_record(image=IMAGE, annotator="B",
                                             final_mask=final)) == []
    assert r.parse_box_models({"model": {"segmentation": unet}}) == []
    assert r.parse_box_models({}) == []
    # Only the name and version of each, as build_record keeps them.
    assert r.parse_box_models({"model": {"box": [dict(newer, extra=1)]}}) == [newer]
    for damaged in ("unet", [["unet", "1.2"]], {"name": "unet"}):
        with pytest.raises(ValueError, match="model.box .* is not a list of models"):
            r.parse_box_models({"model": {"box": damaged}})
    with pytest.raises(ValueError, match="model .* is not a mapping of models"):
        r.parse_box_models({"model": ["unet"]})


def test_record_keeps_the_worklist_path():
    _, final = _masks()
    image = IMAGE | {"worklist_path": "2024/case 7/benign (1).png"}
    record = r.build_record(image=image, annotator="B", final_mask=final)
    assert record["image"]["worklist_path"] == "2024/case 7/benign (1).png"
    assert record["image"]["name"] == "benign (1).png"
    with pytest.raises(ValueError, match="worklist_path"):
        r.build_record(image=IMAGE | {"worklist_path": 7}, annotator="B", final_mask=final)


def test_unchanged_ai_outline_has_dice_one():
    ai, _ = _masks()
    record = r.build_record(image=IMAGE, annotator="B", final_mask=ai.copy(), ai_mask=ai)
    assert record["agreement"] == {"dice_ai_vs_final": 1.0, "edited": False,
                                   "offered_paths": None}


def test_the_outline_offered_is_kept_only_with_the_ai_mask():
    ai, final = _masks()
    square = "M1,1L4,1L4,4L1,4Z"
    record = r.build_record(image=IMAGE, annotator="B", final_mask=final, ai_mask=ai,
                            offered_paths=(square,))
    assert record["agreement"]["offered_paths"] == [square]
    # Without an AI mask there was nothing offered: the paths are not believed.
    record = r.build_record(image=IMAGE, annotator="B", final_mask=final,
                            offered_paths=[square])
    assert record["agreement"]["offered_paths"] is None
    for wrong in (square, [7], 3):
        with pytest.raises(TypeError, match="offered_paths"):
            r.build_record(image=IMAGE, annotator="B", final_mask=final, ai_mask=ai,
                           offered_paths=wrong)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"annotator": " "}, "annotator"),
        ({"final_label": "cancer"}, "final_label"),
        ({"final_mask": np.zeros((3, 6), bool)}, "final_mask"),
        ({"ai_mask": np.zeros((4, 5), bool)}, "ai_mask"),
        ({"descriptors": {"shape": "square"}}, "shape"),
        ({"descriptors": {"colour": "red"}}, "unknown"),
        ({"descriptors": {"assessment": ["3", "4A"]}}, "one value"),
        ({"saved_at": dt.datetime(2024, 1, 1)}, "timezone"),
        ({"classification": {"label": "x", "probabilities": {}}}, "label"),
        ({"based_on": {"version": 0, "annotator": "B"}}, "based_on version"),
        ({"based_on": {"version": True, "annotator": "B"}}, "based_on version"),
        ({"based_on": {"version": 2}}, "based_on annotator"),
        ({"based_on": {"version": 2, "annotator": "  "}}, "based_on annotator"),
        ({"based_on": {"version": 2, "annotator": "B", "readers": "B"}}, "based_on readers"),
        ({"based_on": {"version": 2, "annotator": "B", "readers": ["B", ""]}},
         "based_on readers"),
    ],
)
def test_bad_record_input_is_refused(kwargs, match):
    _, final = _masks()
    arguments = {"image": IMAGE, "annotator": "A", "final_mask": final} | kwargs
    with pytest.raises(ValueError, match=match):
        r.build_record(**arguments)


def test_a_circumscribed_margin_excludes_the_others():
    _, final = _masks()
    for margin in (["circumscribed", "spiculated"], ["angular", "circumscribed", "indistinct"]):
        with pytest.raises(ValueError, match="both circumscribed and"):
            r.build_record(image=IMAGE, annotator="A", final_mask=final,
                           descriptors={"margin": margin})
    assert r.margin_conflict(["circumscribed", "angular", "spiculated"]) == (
        "The margin cannot be both circumscribed and angular and spiculated: in BI-RADS a "
        "circumscribed margin is the opposite of the others. Untick one.")
    # The not-circumscribed kinds go together, and either half alone is fine.
    for margin in (["circumscribed"], ["angular", "spiculated", "microlobulated"], [], None):
        assert r.margin_conflict(margin) is None
        record = r.build_record(image=IMAGE, annotator="A", final_mask=final,
                                descriptors={"margin": margin})
        assert record["final"]["descriptors"]["margin"] == [
            m for m in r.DESCRIPTOR_OPTIONS["margin"] if m in (margin or [])]
    # A version saved before the rule still reads back, to be revised.
    old = r.clean_descriptors({"margin": ["spiculated", "circumscribed"]})
    assert old["margin"] == ["circumscribed", "spiculated"]


def test_the_page_says_at_once_when_the_margin_contradicts_itself(tmp_path):
    from annotation_client import create_app

    create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    assert "Untick one" in annotate.check_margin(["circumscribed", "indistinct"])
    assert annotate.check_margin(["indistinct"]) is None
    assert annotate.check_margin(None) is None
    # A forged request's values outside the lexicon are Save's to refuse, not a 500 here.
    assert annotate.check_margin(["circumscribed", 1, None, ["x"]]) is None
    assert annotate.check_margin(["circumscribed", {"a": 1}, "angular"]).startswith(
        "The margin cannot be both circumscribed and angular:")


def test_the_record_says_where_the_pixel_spacing_came_from():
    _, final = _masks()

    def source(**image):
        record = r.build_record(image=IMAGE | image, annotator="A", final_mask=final)
        return record["image"]["pixel_spacing_mm"], record["image"]["pixel_spacing_source"]

    assert source() == (None, None)
    assert source(pixel_spacing_mm=[0.1, 0.2]) == ([0.1, 0.2], "file")  # a DICOM header
    assert source(pixel_spacing_mm=[0.08, 0.08], pixel_spacing_source="manual") == (
        [0.08, 0.08], "manual")
    assert source(pixel_spacing_source="manual") == (None, None)  # nothing to qualify
    # Set on an earlier image and reused on this one: the reader's too, told apart.
    assert source(pixel_spacing_mm=[0.08, 0.08], pixel_spacing_source="reused") == (
        [0.08, 0.08], "reused")
    # Measured on the image's depth scale and Set unchanged.
    assert source(pixel_spacing_mm=[0.08, 0.08], pixel_spacing_source="calibrated") == (
        [0.08, 0.08], "calibrated")
    with pytest.raises(ValueError, match="pixel_spacing_source"):
        source(pixel_spacing_mm=[0.1, 0.1], pixel_spacing_source="guessed")


def test_the_spacing_form_is_offered_only_when_the_file_gives_none(tmp_path):
    from annotation_client import create_app

    create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    png = {"sha256": "a" * 64, "pixel_spacing_mm": None}
    assert annotate.show_calibration(1, None, None, None)[:3] == (True, None, None)  # no image
    assert annotate.show_calibration(1, None, None, png)[:3] == (False, None, None)
    dicom = dict(png, pixel_spacing_mm=[0.1, 0.1])
    assert annotate.show_calibration(1, None, None, dicom)[0] is True
    typed = dict(png, pixel_spacing_mm=[0.07, 0.07], pixel_spacing_source="manual")
    assert annotate.show_calibration(1, None, None, typed)[:3] == (False, 0.07, None)

    # A request the form would not send: the header's spacing is not overridden, and
    # what is not a plausible spacing is refused with a reason, the image unchanged.
    import dash

    no = dash.no_update
    assert annotate.set_spacing(1, None, 0.2, dicom) == (
        no, no, no, "The file gives its own pixel spacing.", no)
    for bad in ("nan", "inf", "1e9", 0, -0.1, "two", [0.1]):
        meta, info, changed, note, last = annotate.set_spacing(1, None, bad, png)
        assert (meta, info, changed, last) == (no, no, no, no), bad
        assert "is not a pixel spacing" in str(note.children)


def test_a_spacing_too_fine_to_be_plausible_is_refused_naming_the_range(tmp_path):
    """1e-9 mm per pixel made every area 0.0 mm²; the vectorizer's lower bound refuses it."""
    import dash

    import vectorizer
    from annotation_client import create_app

    create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})
    from annotation_client.pages import annotate

    low = vectorizer.MIN_PIXEL_SPACING_MM
    assert 0 < low <= 0.01  # ultrasound frames are 0.02 mm per pixel or coarser
    png = {"sha256": "a" * 64, "name": "a.png", "kind": "png", "size_bytes": 94, "width": 30,
           "height": 20, "pixel_spacing_mm": None, "notes": []}
    for bad in (1e-9, "1e-9", low / 2):
        meta, info, changed, note, last = annotate.set_spacing(1, None, bad, png)
        assert (meta, info, changed, last) == (dash.no_update,) * 4, bad
        assert f"from {low:g} to {vectorizer.MAX_PIXEL_SPACING_MM:g}" in str(note.children)
    meta, _info, _changed, _note, _last = annotate.set_spacing(1, None, low, png)
    assert meta["pixel_spacing_mm"] == [low, low]


def test_descriptor_lists_match_the_birads_lexicon_of_the_issue():
    options = r.DESCRIPTOR_OPTIONS
    assert options["shape"] == ("oval", "round", "irregular")
    assert options["orientation"] == ("parallel", "not parallel")
    assert set(options["margin"]) == {
        "circumscribed",
        "indistinct",
        "angular",
        "microlobulated",
        "spiculated",
    }
    assert (
        len(options["echo_pattern"]) == 6 and "complex cystic and solid" in options["echo_pattern"]
    )
    assert options["posterior_features"] == ("none", "enhancement", "shadowing", "combined")
    # The whole scale: 1 for a normal breast (its label "normal"), 0 and 6 too.
    assert options["assessment"] == ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6")


@pytest.mark.parametrize(
    "spacing", [[float("inf"), 0.1], [float("nan"), 0.1], [0.0, 0.1], [1e200, 1e200], [10.5, 1]]
)
def test_a_record_refuses_a_pixel_spacing_the_measurements_refuse(spacing):
    _, final = _masks()
    with pytest.raises(ValueError, match="pixel_spacing_mm"):
        r.build_record(
            image=IMAGE | {"pixel_spacing_mm": spacing}, annotator="Ada", final_mask=final
        )


def test_a_record_keeps_a_plausible_pixel_spacing():
    _, final = _masks()
    record = r.build_record(
        image=IMAGE | {"pixel_spacing_mm": (0.1, 10)}, annotator="Ada", final_mask=final
    )
    assert record["image"]["pixel_spacing_mm"] == [0.1, 10.0]


def test_based_on_names_every_reader_it_descends_from():
    _, final = _masks()

    def saved(annotator, based_on):
        return r.build_record(image=IMAGE, annotator=annotator, final_mask=final,
                              based_on=based_on)

    own = saved("Ada", {"version": 1, "annotator": "Ada"})
    assert own["based_on"]["readers"] == ["Ada"]
    assert r.descends_from_others(own) is False  # revising one's own read
    # Ada's v3 revises her v2, which revised Bea's v1: still not independent of Bea.
    chained = saved("Ada", {"version": 2, "annotator": "Ada", "readers": ["Bea", " Ada "]})
    assert chained["based_on"]["readers"] == ["Ada", "Bea"]
    assert r.descends_from_others(chained) is True


# --------------------------------------------------------------------------- saving again


def _reading_record(**overrides):
    args = {"image": {"sha256": "a" * 64, "name": "x.png", "width": 4, "height": 3},
            "annotator": "Dr A", "final_mask": np.zeros((3, 4), bool), "final_label": "benign",
            "descriptors": {"assessment": "3", "margin": ["angular", "spiculated"]},
            "note": "seen"}
    return r.build_record(**(args | overrides))


def test_same_reading_compares_reader_label_note_descriptors_and_spacing():
    record = _reading_record()
    # Read back from disk, saved at another time, with the margins in another order.
    again = _reading_record(descriptors={"margin": ["spiculated", "angular"], "assessment": "3"},
                            saved_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), note=" seen ")
    assert r.same_reading(again, record)
    for change in ({"annotator": "Dr B"}, {"final_label": None}, {"note": "seen twice"},
                   {"descriptors": {"assessment": "4A", "margin": ["angular", "spiculated"]}},
                   {"image": {"sha256": "a" * 64, "name": "x.png", "width": 4, "height": 3,
                              "pixel_spacing_mm": [0.1, 0.1]}}):
        assert not r.same_reading(_reading_record(**change), record), change
    # A record that cannot be read is never the same: the save goes on.
    assert not r.same_reading(record, {"final": "?"})
    assert not r.same_reading(record, dict(record, final=dict(record["final"],
                                                             descriptors={"x": 1})))


def test_revision_losses_name_the_label_and_the_edited_outline_left_out():
    old = _reading_record(ai_mask=np.ones((3, 4), bool))  # edited: its mask is not the AI's
    untouched = _reading_record(final_label=None, ai_mask=np.zeros((3, 4), bool))
    assert r.revision_losses(untouched, old, 2) == [
        "This save has no final label; version 2 is labelled benign.",
        "This save's outline is the AI's, untouched; version 2's, by Dr A, was edited.",
    ]
    # Drawn by hand, with no AI outline: as much the radiologist's.
    drawn = _reading_record(final_mask=np.ones((3, 4), bool))
    assert r.revision_losses(untouched, drawn, 1)[1].endswith("by Dr A, was drawn by hand.")
    # Nothing is lost: a label kept, the outline edited too, or a version without them.
    assert r.revision_losses(_reading_record(ai_mask=np.ones((3, 4), bool)), old, 2) == []
    bare = _reading_record(final_label=None)  # no label, nothing outlined, no AI
    assert r.revision_losses(untouched, bare, 1) == []
    assert r.revision_losses(untouched, {"final": None}, 1) == []


def test_revision_losses_name_an_outline_erased_whole_unless_the_label_is_normal():
    # A stray Delete took the lesion's outline: the save of a "malignant" case with no
    # outline over a version that had one asks first.
    outlined = _reading_record(final_mask=np.ones((3, 4), bool), final_label="malignant",
                               ai_mask=np.ones((3, 4), bool))
    erased = _reading_record(final_label="malignant", ai_mask=np.ones((3, 4), bool))
    assert r.revision_losses(erased, outlined, 3) == [
        "This save has no outline; version 3, by Dr A, has one."]
    # Read as normal now: the reader says so with the label, and is not asked.
    assert r.revision_losses(dict(erased, final=dict(erased["final"], label="normal")),
                             outlined, 3) == []
    # Over a version with no outline, nothing is lost.
    assert r.revision_losses(erased, erased, 3) == []
