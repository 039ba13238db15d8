"""The outline's measurements as a DICOM SR: what the report says, read back with
highdicom, and the Annotate page's *Download DICOM SR* (offered for a DICOM only, at the
page's pixel spacing, refusals said)."""

from __future__ import annotations

import base64
import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
import shapely
from _dash_helpers import as_callback
from image_samples import dicom_bytes, png_bytes, speckle_image

import vectorizer
from annotation_client import _dicom_sr, _editing, _history, _shapes, create_app, ids

SHAPE = (60, 80)  # (rows, cols)
STUDY, SERIES = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
SPACING = (0.1, 0.2)  # mm between rows, between columns


def _source(pixels=None, **elements) -> bytes:
    pixels = speckle_image(*SHAPE) if pixels is None else pixels
    fields = {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES, "PatientID": "P-7"}
    return dicom_bytes(pixels, **{**fields, **elements})


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[2:7, 5:8] = True        # 5 rows x 3 columns: the smaller region, above the other
    mask[10:30, 20:50] = True    # 20 rows x 30 columns
    return mask


def _groups(sr: bytes):
    report = hd.sr.srread(io.BytesIO(sr))
    return report, report.content.get_planar_roi_measurement_groups()


def _measured(group) -> dict:
    return {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}


# ------------------------------------------------------------------------- the file


def test_the_report_measures_each_region_in_mm_and_outlines_it_on_its_image():
    source = _source()
    sr = _dicom_sr.dicom_sr(source, _mask(), SPACING, label="malignant", annotator="Dr A")
    report, groups = _groups(sr)
    image = pydicom.dcmread(io.BytesIO(source))
    assert report.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert report.Modality == "SR" and report.CompletionFlag == "COMPLETE"
    # It files itself beside the image: the same patient and study, a series of its own.
    assert report.PatientID == "P-7" and report.StudyInstanceUID == STUDY
    assert report.SeriesInstanceUID != SERIES
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == image.SOPInstanceUID
    # Largest first: 20 x 30 pixels of 0.1 x 0.2 mm, so 6 mm wide and 2 mm high.
    assert [str(g.tracking_identifier) for g in groups] == ["Lesion 1", "Lesion 2"]
    big, small = (_measured(g) for g in groups)
    assert big["Area"] == (pytest.approx(12.0), "mm2")
    assert big["Long axis"] == (pytest.approx(np.hypot(6.0, 2.0), abs=1e-3), "mm")
    expected = vectorizer.measure_regions(_mask(), pixel_spacing=SPACING)
    by_area = sorted(expected, key=lambda r: r["area_px"], reverse=True)
    assert big["Perpendicular Axis"][0] == pytest.approx(
        by_area[0]["perpendicular_diameter_mm"], abs=1e-3)
    assert small["Area"][0] == pytest.approx(15 * 0.02)
    # The outline is a closed polyline in the image's pixel coordinates, on this image.
    roi = groups[0].roi
    assert roi.GraphicType == "POLYLINE"
    points = np.asarray(roi.value)
    np.testing.assert_array_equal(points[0], points[-1])
    assert points[:, 0].min() == 20 and points[:, 0].max() == 50
    assert points[:, 1].min() == 10 and points[:, 1].max() == 30
    assert roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID \
        == image.SOPInstanceUID
    # The reader's label, the finding and the observer.
    for group in groups:
        (impression,) = group.get_qualitative_evaluations()
        assert (impression.name.meaning, impression.value.meaning) == ("Impression",
                                                                       "Malignant")
        assert group.finding_type.meaning == "Lesion"
    observer = report.content.get_observer_contexts()[0]
    assert str(observer.observer_identifying_attributes[0].value) == "Dr A^"


def test_an_outline_started_from_the_model_names_it_as_the_algorithm():
    sr = _dicom_sr.dicom_sr(_source(), _mask(), SPACING, model=("sonotrace_unet", "v9"),
                            model_outline=_mask())
    text = str(pydicom.dcmread(io.BytesIO(sr)))
    assert "sonotrace_unet" in text and "v9" in text
    manual = str(pydicom.dcmread(io.BytesIO(_dicom_sr.dicom_sr(_source(), _mask(), SPACING))))
    assert "sonotrace_unet" not in manual and "Algorithm Name" not in manual
    # With no reader named, the observer is the device.
    assert "Device Observer Name" in manual and "SonoTrace" in manual


def _made_by(group) -> tuple:
    """``(algorithm name or None, the group's own person observer or None)`` of a
    measurement group, read from its content items."""
    items = group[0].ContentSequence if hasattr(group[0], "ContentSequence") else []
    by_name = {}
    for item in items:
        meaning = item.ConceptNameCodeSequence[0].CodeMeaning
        value = item.get("TextValue") or item.get("PersonName")
        by_name.setdefault(meaning, str(value) if value is not None else None)
    return by_name.get("Algorithm Name"), by_name.get("Person Observer Name")


def _every_group(sr: bytes) -> dict:
    report = hd.sr.srread(io.BytesIO(sr))
    groups = [*report.content.get_planar_roi_measurement_groups(),
              *report.content.get_image_measurement_groups()]
    return {str(g.tracking_identifier): _made_by(g) for g in groups}


def test_the_algorithm_is_named_on_the_models_own_lesion_only():
    # Audit 1006 F1: the model outlined the larger region; the reader drew the smaller
    # one by hand and gave the BI-RADS assessment. Only the model's lesion is the model's.
    offered = _mask() & ~_mask_rows(2, 7)
    sr = _dicom_sr.dicom_sr(_source(), _mask(), SPACING, label="malignant",
                            annotator="Dr A", model=("sonotrace_unet", "v9"),
                            model_outline=offered, descriptors={"assessment": "5"})
    assert _every_group(sr) == {
        "Lesion 1": ("sonotrace_unet", None),   # the model's, untouched
        "Lesion 2": (None, "Dr A^"),            # drawn by hand: the reader's
        "Image": (None, "Dr A^"),               # the reader's BI-RADS reading
    }
    # Edited: one row more than the model gave is the reader's measurement.
    edited = offered.copy()
    edited[30, 20:50] = True
    sr = _dicom_sr.dicom_sr(_source(), edited | _mask(), SPACING, annotator="Dr A",
                            model=("sonotrace_unet", "v9"), model_outline=offered)
    assert _every_group(sr) == {"Lesion 1": (None, "Dr A^"), "Lesion 2": (None, "Dr A^")}
    # Unnamed, a hand-drawn lesion names no one (a person observer needs a name), and
    # still no algorithm.
    sr = _dicom_sr.dicom_sr(_source(), _mask(), SPACING, model=("sonotrace_unet", "v9"),
                            model_outline=offered)
    assert _every_group(sr) == {"Lesion 1": ("sonotrace_unet", None),
                                "Lesion 2": (None, None)}


def _mask_rows(start, stop) -> np.ndarray:
    rows = np.zeros(SHAPE, dtype=bool)
    rows[start:stop] = True
    return rows


@pytest.mark.parametrize(("spacing", "area", "axis"), [
    ((0.01, 0.01), 0.0004, 0.02828),  # thousandths alone: an area of 0.0
    ((0.03, 0.03), 0.0036, 0.08485),  # and of 0.004
    ((0.001, 0.002), 0.000008, 0.004472),
])
def test_a_small_region_at_a_fine_spacing_is_measured_not_rounded_away(spacing, area,
                                                                        axis):
    mask = np.zeros(SHAPE, dtype=bool)
    mask[10:12, 10:12] = True  # 2 x 2 pixels
    _, (group,) = _groups(_dicom_sr.dicom_sr(_source(), mask, spacing, label="benign"))
    measured = _measured(group)
    assert measured["Area"] == (pytest.approx(area, rel=1e-3), "mm2")
    assert measured["Long axis"] == (pytest.approx(axis, rel=1e-3), "mm")
    # A usual lesion is reported in thousandths of a millimetre, as ever.
    _, (big, *_) = _groups(_dicom_sr.dicom_sr(_source(), _mask(), SPACING, label="benign"))
    assert _measured(big)["Area"] == (12.0, "mm2")
    assert _measured(big)["Long axis"] == (round(np.hypot(2.0, 6.0), 3), "mm")


def test_the_same_report_is_the_same_instance_and_another_spacing_another():
    source = _source()
    first = pydicom.dcmread(io.BytesIO(_dicom_sr.dicom_sr(source, _mask(), SPACING)))
    again = pydicom.dcmread(io.BytesIO(_dicom_sr.dicom_sr(source, _mask(), SPACING)))
    other = pydicom.dcmread(io.BytesIO(_dicom_sr.dicom_sr(source, _mask(), (0.2, 0.2))))
    assert first.SOPInstanceUID == again.SOPInstanceUID != other.SOPInstanceUID
    # The same in every element but the times it was made at: one instance, not two.
    made_at = {"InstanceCreationTime", "InstanceCreationDate", "ContentTime", "ContentDate",
               "ContributionDateTime"}
    def elements(ds):
        return [(e.tag, str(e.value)) for e in ds.iterall()
                if e.keyword not in made_at and e.VR != "SQ"]
    assert elements(first) == elements(again)
    assert first.SeriesInstanceUID == other.SeriesInstanceUID


@pytest.mark.parametrize(("source", "mask", "spacing", "says"), [
    (_source, _mask, lambda: None, "pixel size is not known"),
    (_source, lambda: np.zeros(SHAPE, dtype=bool), lambda: SPACING, "no outline to measure"),
    (lambda: _source(np.zeros((3, *SHAPE), dtype=np.uint8)), _mask, lambda: SPACING,
     "3 frames: a DICOM SR is written"),
    (lambda: _source(SOPInstanceUID=""), _mask, lambda: SPACING,
     "no SOPInstanceUID: a DICOM SR could not"),
    (lambda: png_bytes(speckle_image(*SHAPE)), _mask, lambda: SPACING, "not a DICOM file"),
    (lambda: _source(speckle_image(40, 80)), _mask, lambda: SPACING,
     "the DICOM image is 80x40"),
    (_source, _mask, lambda: (0.0, 0.1), "cannot be measured"),
])
def test_an_outline_that_cannot_have_a_report_says_why(source, mask, spacing, says):
    with pytest.raises(_dicom_sr.SrUnavailable, match=says):
        _dicom_sr.dicom_sr(source(), mask(), spacing())


def test_a_patient_or_study_value_highdicom_refuses_is_left_empty_and_said():
    # Such a file had no SR: "year 0 is out of range", naming no element.
    notes = []
    source = _source(PatientSex="f", PatientBirthDate="00000000", StudyTime="12:00:00")
    sr = _dicom_sr.dicom_sr(source, _mask(), SPACING, label="benign", notes=notes)
    assert notes == ["PatientBirthDate '00000000' is not a date: left empty in the DICOM SR"]
    read = pydicom.dcmread(io.BytesIO(sr))
    assert (read.PatientSex, read.PatientBirthDate, read.StudyTime) == ("F", "", "120000")
    assert len(_groups(sr)[1]) == 2


# ---------------------------------------------------------------- the Annotate page


@pytest.fixture
def app(tmp_path):
    """The app, made before the page module is imported (Dash registers pages on it)."""
    return create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})


def _opened(annotate, data, name="case 7.dcm"):
    meta, image_data, *_ = annotate._show(name, lambda: data, None)
    return meta, image_data


def _outlined(meta) -> dict:
    region = "M20,10L50,10L50,30L20,30Z"
    state = _editing.make_state([region], "ai", density=32)
    return _history.push(_history.new_history(_editing.empty_state(), image=meta["sha256"]),
                         state)


def _download(annotate, meta, history, image_data, label="benign", annotator="Dr B",
              descriptors=()):
    return as_callback(lambda: annotate.download_sr(
        1, meta, history, image_data, None, label, annotator, *descriptors,
    ), f"{ids.DOWNLOAD_SR_BUTTON}.n_clicks", value=1)


def test_the_download_measures_the_outline_on_screen_at_the_files_spacing(app, annotate):
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, _source(PixelSpacing=[0.1, 0.2]))
        assert meta["pixel_spacing_mm"] == [0.1, 0.2]
        sent, note = _download(annotate, meta, _outlined(meta), image_data)
    assert note is None
    assert sent["filename"] == "case 7_outline_sr.dcm" and sent["type"] == "application/dicom"
    report, groups = _groups(base64.b64decode(sent["content"]))
    (group,) = groups
    assert _measured(group)["Area"] == (pytest.approx(12.0), "mm2")
    assert group.get_qualitative_evaluations()[0].value.meaning == "Benign"


def test_the_download_names_the_model_on_its_untouched_outline_only(app, annotate):
    # Audit 1006 F1, on the page: the AI's outline kept, a square drawn apart from it.
    model = {"name": "sonotrace_unet", "version": "2026-12-03.10"}
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, _source(PixelSpacing=[0.1, 0.2]))
        history = _outlined(meta)
        ai_region = history["present"]["paths"][0]
        raster = _mask_of([ai_region])
        ai = {"image": meta["sha256"], "paths": [ai_region], "model": model, "vertices": 32,
              "mask": base64.b64encode(vectorizer.mask_to_png(raster)).decode()}
        drawn = _editing.make_state([ai_region, "M5,40L15,40L15,55L5,55Z"], "draw",
                                    base="ai", density=32)
        history = _history.push(history, drawn)
        sent, note = as_callback(lambda: annotate.download_sr(
            1, meta, history, image_data, ai, "malignant", "Dr B",
            *["", [], "", "", "", "5"]), f"{ids.DOWNLOAD_SR_BUTTON}.n_clicks", value=1)
    assert note is None
    assert _every_group(base64.b64decode(sent["content"])) == {
        "Lesion 1": ("sonotrace_unet", None),
        "Lesion 2": (None, "Dr B^"),
        "Image": (None, "Dr B^"),
    }


def test_a_saved_versions_sr_names_the_model_only_when_it_was_saved_as_offered():
    from annotation_client import build_record
    from annotation_client._export import _sr_of

    model = {"name": "sonotrace_unet", "version": "v9"}
    offered = _mask() & ~_mask_rows(2, 7)

    def saved(ai_mask):
        record = build_record(
            image={"sha256": "ab" * 32, "name": "case.dcm", "width": SHAPE[1],
                   "height": SHAPE[0], "pixel_spacing_mm": list(SPACING)},
            annotator="Dr A", final_mask=_mask(), final_label="benign", ai_mask=ai_mask,
            model=model, descriptors={"assessment": "3"})
        return _every_group(_sr_of(_source(), _mask(), record))

    assert saved(_mask()) == {"Lesion 1": ("sonotrace_unet", None),
                              "Lesion 2": ("sonotrace_unet", None), "Image": (None, "Dr A^")}
    # Edited (a region drawn): the record cannot tell which lesion is untouched.
    assert saved(offered) == {"Lesion 1": (None, "Dr A^"), "Lesion 2": (None, "Dr A^"),
                              "Image": (None, "Dr A^")}


def test_a_saved_edited_versions_sr_names_the_model_on_the_lesion_left_as_offered():
    # The AI's outline kept, a square drawn apart from it, then saved: the version's SR
    # named the model on neither lesion, as its record kept no outline offered.
    from annotation_client import build_record
    from annotation_client._export import _sr_of

    ai_region, drawn = "M20,10L50,10L50,30L20,30Z", "M5,40L15,40L15,55L5,55Z"
    final = _mask_of([ai_region, drawn])

    def saved(offered):
        record = build_record(
            image={"sha256": "ab" * 32, "name": "case.dcm", "width": SHAPE[1],
                   "height": SHAPE[0], "pixel_spacing_mm": list(SPACING)},
            annotator="Dr A", final_mask=final, final_label="benign",
            ai_mask=_mask_of(offered), offered_paths=offered,
            model={"name": "sonotrace_unet", "version": "v9"},
            descriptors={"assessment": "3"})
        assert record["agreement"]["edited"] is True
        return record

    def groups(record):
        return _every_group(_sr_of(_source(), final, record, outlines=[ai_region, drawn]))

    reader = (None, "Dr A^")
    record = saved([ai_region])
    assert groups(record) == {"Lesion 1": ("sonotrace_unet", None), "Lesion 2": reader,
                              "Image": reader}
    # Offered a row taller, then edited: the lesion is the reader's.
    assert groups(saved(["M20,10L50,10L50,31L20,31Z"]))["Lesion 1"] == reader
    # Saved before the outline offered was kept, or with paths that are none: no lesion
    # is said to be the model's, and the SR is still made.
    for paths in (None, ["M20,10 L nonsense"], ai_region, [7]):
        record["agreement"]["offered_paths"] = paths
        assert groups(record) == {"Lesion 1": reader, "Lesion 2": reader, "Image": reader}


def test_the_download_names_the_values_the_sr_left_empty(app, annotate):
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, _source(PixelSpacing=[0.1, 0.2], PatientSex="U"))
        sent, note = _download(annotate, meta, _outlined(meta), image_data)
    assert sent["filename"] == "case 7_outline_sr.dcm"
    assert note == "PatientSex 'U' is not M, F or O: left empty in the DICOM SR."


def test_without_a_spacing_the_page_says_to_set_one(app, annotate):
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, _source())
        assert not meta.get("pixel_spacing_mm")
        sent, note = _download(annotate, meta, _outlined(meta), image_data)
        assert sent is annotate.dash.no_update
        assert note.startswith("No DICOM SR: the image's pixel size is not known")
        # The spacing the reader sets is the one measured with.
        typed = {**meta, "pixel_spacing_mm": [0.3, 0.3]}
        sent, note = _download(annotate, typed, _outlined(meta), image_data)
    assert note is None
    (group,) = _groups(base64.b64decode(sent["content"]))[1]
    assert _measured(group)["Area"][0] == pytest.approx(600 * 0.09)


# ------------------------------------------------------------ lesions, as drawn


def _mask_of(paths) -> np.ndarray:
    from annotation_client import _shapes

    return _shapes.paths_to_mask(paths, SHAPE)


def test_the_pieces_of_one_drawn_outline_are_one_lesion():
    from scipy import ndimage

    # Two squares joined by a neck a tenth of a pixel high, between no pixel centres.
    outline = ["M10,10 L30,10 L30,20 L40,20 L40,10 L60,10 L60,30 L40,30 L40,20.1 L30,20.1 "
               "L30,30 L10,30 Z"]
    mask = _mask_of(outline)
    assert mask.any()
    assert ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))[1] == 2
    sr = _dicom_sr.dicom_sr(_source(), mask, SPACING, outlines=outline)
    (group,) = _groups(sr)[1]
    assert _measured(group)["Area"][0] == pytest.approx(mask.sum() * 0.02)
    # Its long axis spans the whole drawn outline: 50 x 20 pixels, 10 x 2 mm.
    assert _measured(group)["Long axis"][0] == pytest.approx(np.hypot(10.0, 2.0), abs=1e-3)
    # The polyline is the outline as drawn.
    points = np.asarray(group.roi.value)
    assert len(points) == 13 and tuple(points[0]) == tuple(points[-1]) == (10.0, 10.0)
    # Without the outlines each piece is a lesion.
    assert len(_groups(_dicom_sr.dicom_sr(_source(), mask, SPACING))[1]) == 2


def test_overlapping_outlines_are_one_lesion_and_apart_ones_two():
    over = ["M10,10 L30,10 L30,30 L10,30 Z", "M25,12 L45,12 L45,28 L25,28 Z"]
    apart = ["M10,10 L20,10 L20,20 L10,20 Z", "M40,30 L60,30 L60,50 L40,50 Z"]
    (one,) = _groups(_dicom_sr.dicom_sr(_source(), _mask_of(over), SPACING,
                                        outlines=over))[1]
    assert _measured(one)["Area"][0] == pytest.approx(_mask_of(over).sum() * 0.02)
    ring = np.asarray(one.roi.value)
    assert ring[:, 0].min() == 10 and ring[:, 0].max() == 45
    two = _groups(_dicom_sr.dicom_sr(_source(), _mask_of(apart), SPACING, outlines=apart))[1]
    assert [_measured(g)["Area"][0] for g in two] == pytest.approx([400 * 0.02, 100 * 0.02])


def test_a_self_crossing_outline_is_reported_as_the_regions_it_encloses():
    # A bow-tie: the ring crosses itself at (34, 28), enclosing two triangles, which the
    # saved mask fills both (even-odd). Before: one group, the larger triangle's loop
    # alone, measured over both triangles' pixels (its long axis spanning the two).
    bow_tie = ["M10,10 L50,40 L50,20 L10,40 Z"]
    mask = _mask_of(bow_tie)
    triangles = [[(10, 10), (34, 28), (10, 40)], [(34, 28), (50, 40), (50, 20)]]
    pixels = [_mask_of(["M" + " L".join(f"{x},{y}" for x, y in t) + " Z"]) & mask
              for t in triangles]
    assert pixels[0].sum() > pixels[1].sum() > 0
    sr = _dicom_sr.dicom_sr(_source(), mask, SPACING, label="benign", outlines=bow_tie)
    groups = _groups(sr)[1]
    assert len(groups) == 2
    # One lesion, as the measurements panel counts it, in two regions, largest first.
    assert [str(g.tracking_identifier) for g in groups] == [
        "Lesion 1, region 1 of 2", "Lesion 1, region 2 of 2"]
    assert len({g.tracking_uid for g in groups}) == 2
    for group, triangle, inside in zip(groups, triangles, pixels, strict=True):
        ring = np.asarray(group.roi.value)
        np.testing.assert_array_equal(ring[0], ring[-1])
        # Its own loop: the triangle, not the other one nor both.
        assert shapely.Polygon(ring).symmetric_difference(
            shapely.Polygon(triangle)).area == pytest.approx(0, abs=1e-3)
        # Measured over the pixels the mask fills inside it, and only those.
        measured = vectorizer.measure_lesion(inside, pixel_spacing=SPACING)
        assert _measured(group)["Area"] == (pytest.approx(inside.sum() * 0.02), "mm2")
        assert _measured(group)["Long axis"][0] == pytest.approx(
            measured["max_diameter_mm"], abs=1e-3)
        assert _measured(group)["Perpendicular Axis"][0] == pytest.approx(
            measured["perpendicular_diameter_mm"], abs=1e-3)
    # Together they are the mask's pixels, each once.
    assert not (pixels[0] & pixels[1]).any()
    assert sum(_measured(g)["Area"][0] for g in groups) == pytest.approx(mask.sum() * 0.02)
    # Read back with pydicom alone too: two SCOORDs, each of one triangle's vertices.

    def items(sequence):
        for item in sequence:
            yield item
            yield from items(item.get("ContentSequence", []))

    scoords = [item for item in items(pydicom.dcmread(io.BytesIO(sr)).ContentSequence)
               if item.ValueType == "SCOORD"]
    assert [len(item.GraphicData) for item in scoords] == [8, 8]


#: Outlines (region paths, x right, y down) whose regions the report, the measurements
#: panel and the saved record must list alike, with the same sizes.
AGREEING = {
    "bow-tie": ["M10,10 L50,40 L50,20 L10,40 Z"],
    "ring run out and back": ["M10,10 L20,10 L20,20 L35,20 L35,10 L45,10 L45,30 L35,30 "
                              "L35,20 L20,20 L20,30 L10,30 Z", "M50,2 L58,2 L58,8 L50,8 Z"],
    "squares meeting at a corner": ["M10,10 L20,10 L20,20 L10,20 Z",
                                    "M20,20 L34,20 L34,34 L20,34 Z"],
    "overlapping": ["M10,10 L30,10 L30,30 L10,30 Z", "M25,12 L45,12 L45,28 L25,28 Z"],
    "apart": ["M10,10 L20,10 L20,20 L10,20 Z", "M40,30 L60,30 L60,50 L40,50 Z"],
    "with a hole": ["M10,10 L50,10 L50,50 L10,50 Z M20,20 L40,20 L40,40 L20,40 Z"],
    "nested": ["M10,10 L50,10 L50,50 L10,50 Z", "M20,20 L40,20 L40,40 L20,40 Z"],
    "first subpath a point": ["M2,2 Z M10,10 L30,10 L30,30 L10,30 Z"],
    "sub-pixel neck": ["M10,10 L30,10 L30,20 L40,20 L40,10 L60,10 L60,30 L40,30 L40,20.1 "
                       "L30,20.1 L30,30 L10,30 Z"],
}


@pytest.mark.parametrize("name", AGREEING)
def test_the_panel_and_the_record_list_the_regions_the_report_reports(name):
    # A bow-tie was one lesion across both loops on the page and in the record, and two
    # regions, each its own size, in the report.
    from annotation_client import build_record, summarize
    from annotation_client._export import _sr_of

    outlines = AGREEING[name]
    mask = _mask_of(outlines)
    summary = summarize(mask, SPACING, outlines=outlines)
    record = build_record(
        image={"sha256": "ab" * 32, "name": "case.dcm", "width": SHAPE[1],
               "height": SHAPE[0], "pixel_spacing_mm": list(SPACING)},
        annotator="Dr A", final_mask=mask, final_label="benign", measurements=summary)
    listed = sorted((r["area_mm2"], r["max_diameter_mm"], r["perpendicular_diameter_mm"])
                    for r in record["measurements"]["regions"])
    assert record["final"]["regions"] == len(listed)
    # The download's report, and the saved version's (its record's spacing, its outlines).
    for sr in (_dicom_sr.dicom_sr(_source(), mask, SPACING, label="benign", outlines=outlines),
               _sr_of(_source(), mask, record, outlines=outlines)):
        reported = sorted((m["Area"][0], m["Long axis"][0], m["Perpendicular Axis"][0])
                          for m in map(_measured, _groups(sr)[1]))
        assert len(reported) == len(listed), (reported, listed)
        for said, kept in zip(reported, listed, strict=True):
            assert said == pytest.approx(kept, abs=1e-3)


def test_an_outline_in_too_many_pieces_is_refused_not_listed():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[::2, ::2] = True  # 30 x 40 separate pixels
    with pytest.raises(_dicom_sr.SrUnavailable, match="1200 separate regions"):
        _dicom_sr.dicom_sr(_source(), mask, SPACING)


def test_a_normal_reading_without_an_outline_is_reported_by_its_impression():
    empty = np.zeros(SHAPE, dtype=bool)
    # No spacing needed: there is nothing to measure.
    report = hd.sr.srread(io.BytesIO(_dicom_sr.dicom_sr(_source(), empty, None,
                                                        label="normal", annotator="Dr A")))
    assert report.content.get_planar_roi_measurement_groups() == []
    (group,) = report.content.get_image_measurement_groups()
    assert str(group.tracking_identifier) == "Image"
    (impression,) = group.get_qualitative_evaluations()
    assert (impression.name.meaning, impression.value.meaning) == ("Impression", "Normal")
    assert group.get_measurements() == []


# ------------------------------------------------------------ the BI-RADS reading

#: A full reading of the lexicon: each descriptor set, the margin twice.
READING = {"shape": "irregular", "orientation": "not parallel",
           "margin": ["angular", "spiculated"], "echo_pattern": "hypoechoic",
           "posterior_features": "shadowing", "assessment": "4C"}


def _image_group(sr: bytes):
    """The report and its image-level group (None without one)."""
    report = hd.sr.srread(io.BytesIO(sr))
    groups = report.content.get_image_measurement_groups()
    assert len(groups) <= 1
    return report, groups[0] if groups else None


def _said(group) -> list[tuple]:
    """``(name, scheme, code, meaning)`` of a group's qualitative evaluations, in order."""
    return [(e.name.meaning, e.value.scheme_designator, e.value.value, e.value.meaning)
            for e in group.get_qualitative_evaluations()]


def test_the_birads_reading_is_said_of_the_image_with_dicoms_codes():
    source = _source()
    sr = _dicom_sr.dicom_sr(source, _mask(), SPACING, label="malignant", descriptors=READING)
    report, image = _image_group(sr)
    # The record holds one reading per image: said once, of the image, beside the lesions.
    assert str(image.tracking_identifier) == "Image"
    assert [s.referenced_sop_instance_uid for s in image.source_images] == [
        pydicom.dcmread(io.BytesIO(source)).SOPInstanceUID]
    assert _said(image) == [
        ("Shape", "SCT", "49608001", "Irregular"),
        ("Orientation", "DCM", "111356", "Not parallel"),
        ("Margins", "DCM", "111343", "Angular margins"),
        ("Margins", "SCT", "129742005", "Spiculated lesion"),
        ("Echo pattern", "DCM", "111364", "Hypoechoic"),
        ("Posterior acoustic features", "DCM", "111369", "Posterior shadowing"),
        ("Assessment Category", "99SONOTRACE", "BIRADS-4C",
         "BI-RADS 4C: high suspicion of malignancy"),
    ]
    assert [e.name.value for e in image.get_qualitative_evaluations()][-1] == "111005"
    # The lesions' groups keep their measurements and impression alone.
    lesions = report.content.get_planar_roi_measurement_groups()
    assert [str(g.tracking_identifier) for g in lesions] == ["Lesion 1", "Lesion 2"]
    for group in lesions:
        assert [e.name.meaning for e in group.get_qualitative_evaluations()] == ["Impression"]
    # The private scheme is declared.
    (scheme,) = report.CodingSchemeIdentificationSequence
    assert scheme.CodingSchemeDesignator == "99SONOTRACE"
    assert scheme.CodingSchemeName and scheme.CodingSchemeResponsibleOrganization


def _codes_in(ds) -> list[tuple[str, str, str]]:
    """``(scheme, value, meaning)`` of every code item anywhere in ``ds``."""
    found = []
    for element in ds.iterall():
        if element.VR == "SQ":
            for item in element.value:
                if "CodeValue" in item and "CodingSchemeDesignator" in item:
                    found.append((item.CodingSchemeDesignator, item.CodeValue,
                                  item.CodeMeaning))
    return found


def _every_reading():
    """Readings that between them hold every value of the lexicon."""
    from annotation_client._record import DESCRIPTOR_OPTIONS

    longest = max(len(v) for v in DESCRIPTOR_OPTIONS.values())
    for k in range(longest):
        yield {name: ([options[k]] if name == "margin" else options[k])
               for name, options in DESCRIPTOR_OPTIONS.items() if k < len(options)}


def test_every_standard_code_the_report_uses_is_in_pydicoms_dictionaries():
    from pydicom.sr._concepts_dict import concepts

    from annotation_client._record import DESCRIPTOR_OPTIONS

    known: dict[tuple[str, str], set[str]] = {}
    for scheme, keywords in concepts.items():
        for by_value in keywords.values():
            for value, (meaning, _cids) in by_value.items():
                known.setdefault((scheme, value), set()).add(meaning)
    # Every value of the lexicon has a code.
    for name, options in DESCRIPTOR_OPTIONS.items():
        table = (_dicom_sr.ASSESSMENT_CODES if name == "assessment"
                 else _dicom_sr.DESCRIPTOR_CODES[name][1])
        assert set(table) == set(options), name
    used = set()
    for reading in _every_reading():
        for mask in (_mask(), np.zeros(SHAPE, dtype=bool)):
            sr = _dicom_sr.dicom_sr(_source(), mask, SPACING, label="benign",
                                    descriptors=reading)
            used |= set(_codes_in(pydicom.dcmread(io.BytesIO(sr))))
    private = {(s, v) for s, v, _ in used if s == _dicom_sr.PRIVATE_SCHEME}
    assert len(private) == len(DESCRIPTOR_OPTIONS["assessment"]) + 1  # + heterogeneous
    # The BI-RADS codes, as this module names them.
    tables = [*_dicom_sr.DESCRIPTOR_CODES.values(),
              (_dicom_sr.ASSESSMENT_NAME, _dicom_sr.ASSESSMENT_CODES)]
    birads = {_dicom_sr._code(spec) for name, values in tables
              for spec in (name, *values.values())}
    birads = {(c.scheme_designator, c.value): c.meaning for c in birads}
    assert {(s, v) for s, v, _ in used} >= set(birads)
    for scheme, value, meaning in used:
        if scheme in ("SCT", "DCM"):
            # Never a code invented under SNOMED CT's or DICOM's name: each is one of
            # pydicom's (highdicom's own, such as SCT "Source", may shorten its meaning;
            # the BI-RADS ones have it exactly).
            assert (scheme, value) in known, (scheme, value, meaning)
            if (scheme, value) in birads:
                assert meaning in known[scheme, value], (scheme, value, meaning)
        else:
            assert scheme in (_dicom_sr.PRIVATE_SCHEME, "UCUM", "RFC5646"), scheme


@pytest.mark.parametrize("descriptors", [None, {}, {"shape": "", "margin": [],
                                                   "assessment": None}])
def test_a_reading_without_descriptors_reports_none_and_is_the_report_it_was(descriptors):
    source = _source()
    sr = _dicom_sr.dicom_sr(source, _mask(), SPACING, label="benign",
                            descriptors=descriptors)
    report, image = _image_group(sr)
    assert image is None and "CodingSchemeIdentificationSequence" not in report
    # The same instance as a report made without them: its UID did not move.
    without = _dicom_sr.dicom_sr(source, _mask(), SPACING, label="benign")
    assert report.SOPInstanceUID == pydicom.dcmread(io.BytesIO(without)).SOPInstanceUID
    # A normal reading's image-level group holds its impression alone, as before.
    empty = np.zeros(SHAPE, dtype=bool)
    _, image = _image_group(_dicom_sr.dicom_sr(source, empty, None, label="normal",
                                               descriptors=descriptors))
    assert [e.value.meaning for e in image.get_qualitative_evaluations()] == ["Normal"]


def test_a_partial_reading_reports_what_is_given_and_its_uid_follows_it():
    source = _source()
    partial = _dicom_sr.dicom_sr(source, _mask(), SPACING, descriptors={"assessment": "3"})
    report, image = _image_group(partial)
    assert _said(image) == [("Assessment Category", "99SONOTRACE", "BIRADS-3",
                             "BI-RADS 3: probably benign")]
    # A standard code alone needs no declared scheme.
    _, shaped = _image_group(_dicom_sr.dicom_sr(source, _mask(), SPACING,
                                                descriptors={"shape": "oval"}))
    assert _said(shaped) == [("Shape", "SCT", "84360004", "Ovoid shape (Oval)")]
    assert "CodingSchemeIdentificationSequence" not in pydicom.dcmread(io.BytesIO(
        _dicom_sr.dicom_sr(source, _mask(), SPACING, descriptors={"shape": "oval"})))
    # Another reading, another instance; the same one again, the same.
    again = _dicom_sr.dicom_sr(source, _mask(), SPACING, descriptors={"assessment": "3"})
    other = _dicom_sr.dicom_sr(source, _mask(), SPACING, descriptors={"assessment": "4A"})
    uids = [pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID for d in (partial, again, other)]
    assert uids[0] == uids[1] != uids[2]
    # An image with no outline and no label, but assessed, is reported by its assessment.
    _, alone = _image_group(_dicom_sr.dicom_sr(source, np.zeros(SHAPE, dtype=bool), None,
                                               descriptors={"assessment": "1"}))
    assert _said(alone) == [("Assessment Category", "99SONOTRACE", "BIRADS-1",
                             "BI-RADS 1: negative")]


def test_a_self_contradictory_margin_is_left_out_and_the_rest_reported():
    # Circumscribed and spiculated: possible in a version saved before Save refused it.
    reading = {"shape": "round", "margin": ["circumscribed", "spiculated"],
               "assessment": "4B"}
    _, image = _image_group(_dicom_sr.dicom_sr(_source(), _mask(), SPACING,
                                               descriptors=reading))
    assert [name for name, *_ in _said(image)] == ["Shape", "Assessment Category"]
    # A contradictory margin alone, with no outline nor label, is nothing to report.
    with pytest.raises(_dicom_sr.SrUnavailable, match="nor a label or BI-RADS descriptor"):
        _dicom_sr.dicom_sr(_source(), np.zeros(SHAPE, dtype=bool), None,
                           descriptors={"margin": ["circumscribed", "angular"]})


@pytest.mark.parametrize("descriptors", [{"shape": "lobulated"}, {"colour": "red"},
                                         {"orientation": ["parallel", "not parallel"]},
                                         "oval"])
def test_descriptors_outside_the_lexicon_are_refused_with_the_reason(descriptors):
    with pytest.raises(_dicom_sr.SrUnavailable, match="BI-RADS descriptors cannot be reported"):
        _dicom_sr.dicom_sr(_source(), _mask(), SPACING, descriptors=descriptors)


def test_the_download_reports_the_birads_reading_on_screen(app, annotate):
    from annotation_client._record import DESCRIPTOR_OPTIONS

    # As the controls hold them: "" for a select left unset, [] for no margin ticked.
    on_screen = {**dict.fromkeys(DESCRIPTOR_OPTIONS, ""), "margin": [],
                 "shape": "oval", "assessment": "2"}
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, _source(PixelSpacing=[0.1, 0.2]))
        sent, note = _download(annotate, meta, _outlined(meta), image_data,
                               descriptors=[on_screen[n] for n in DESCRIPTOR_OPTIONS])
        assert note is None
        _, image = _image_group(base64.b64decode(sent["content"]))
        assert [(name, code) for name, _, code, _ in _said(image)] == [
            ("Shape", "84360004"), ("Assessment Category", "BIRADS-2")]
        # None set: no image-level group.
        unset = [[] if n == "margin" else "" for n in DESCRIPTOR_OPTIONS]
        sent, _ = _download(annotate, meta, _outlined(meta), image_data, descriptors=unset)
        assert _image_group(base64.b64decode(sent["content"]))[1] is None
        # A margin that contradicts itself is left out, and the note says so.
        both = {**on_screen, "margin": ["circumscribed", "spiculated"]}
        sent, note = _download(annotate, meta, _outlined(meta), image_data,
                               descriptors=[both[n] for n in DESCRIPTOR_OPTIONS])
    assert note == annotate.MARGIN_LEFT_OUT
    _, image = _image_group(base64.b64decode(sent["content"]))
    assert [name for name, *_ in _said(image)] == ["Shape", "Assessment Category"]


def test_a_saved_versions_sr_holds_its_records_reading(tmp_path):
    """The export's and the Saved page's SR: ``_sr_of`` a record as Save builds it."""
    from annotation_client import build_record
    from annotation_client._export import _sr_of

    source = _source()
    record = build_record(
        image={"sha256": "ab" * 32, "name": "case.dcm", "width": SHAPE[1],
               "height": SHAPE[0], "pixel_spacing_mm": list(SPACING)},
        annotator="Dr A", final_mask=_mask(), final_label="benign", descriptors=READING)
    _, image = _image_group(_sr_of(source, _mask(), record))
    assert [code for _, _, code, _ in _said(image)] == [
        "49608001", "111356", "111343", "129742005", "111364", "111369", "BIRADS-4C"]
    # A record from before descriptors (none kept) has none.
    del record["final"]["descriptors"]
    assert _image_group(_sr_of(source, _mask(), record))[1] is None


@pytest.mark.parametrize("centre", [(1, 30), (40, 30), (78, 30), (1, 1)])
def test_an_outline_of_a_region_at_the_images_edge_stays_on_the_image(centre):
    # Audit 801 F12: the outline the report makes of the mask had vertices a quarter
    # pixel off the image (a disc as high as the image), negative coordinates in the SCOORD.
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    mask = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= 30**2
    (group,) = _groups(_dicom_sr.dicom_sr(_source(), mask, SPACING))[1]
    points = np.asarray(group.roi.value)
    assert points.min() >= 0
    assert points[:, 0].max() <= SHAPE[1] and points[:, 1].max() <= SHAPE[0]


def test_the_ai_outline_redrawn_by_the_slider_is_the_one_offered_though_edited_since(
        app, annotate):
    # The AI's two lesions offered at 8 vertices, the slider moved to 64 (the model's own
    # mask drawn again), then one lesion edited: the other, as the slider drew it, is the
    # model's. It was the reader's: the outline offered was taken at the AI's 8 vertices.
    model = {"name": "sonotrace_unet", "version": "2026-12-03.10"}
    rows, cols = np.mgrid[:SHAPE[0], :SHAPE[1]]
    raster = (((cols - 22) / 14) ** 2 + ((rows - 30) / 10) ** 2 < 1) | (
        ((cols - 60) / 12) ** 2 + ((rows - 28) / 16) ** 2 < 1)
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, _source(PixelSpacing=[0.1, 0.1]))
        coarse = _editing.mask_to_regions(raster, 8)
        ai = {"image": meta["sha256"], "paths": coarse, "model": model, "vertices": 8,
              "mask": base64.b64encode(vectorizer.mask_to_png(raster)).decode()}
        history = _history.push(
            _history.new_history(_editing.empty_state(), image=meta["sha256"]),
            _editing.make_state(coarse, "ai", base="ai", density=8))
        redrawn = _editing.revectorize(history["present"], 64, SHAPE, raster)
        history = _history.push(history, redrawn)
        def by_x(paths):
            return sorted(paths, key=lambda p: _shapes.parse_path(p)[0][0][0])

        (left, right) = by_x(redrawn["paths"])
        rings = _shapes.parse_path(right)
        rings[0][0] = (rings[0][0][0] + 3, rings[0][0][1])  # a vertex dragged 3 px
        history = _history.push(history, _editing.make_state(
            [left, _shapes.format_path(rings, exact=True)], "edit", density=64))
        # The untouched lesion is another raster at 8 vertices: the test tells them apart.
        assert (_mask_of([left]) != _mask_of(by_x(coarse)[:1])).any()
        sent, note = as_callback(lambda: annotate.download_sr(
            1, meta, history, image_data, ai, "benign", "Dr B",
            *["", [], "", "", "", "3"]), f"{ids.DOWNLOAD_SR_BUTTON}.n_clicks", value=1)
        groups = _every_group(base64.b64decode(sent["content"]))
        assert sorted(map(str, groups.values())) == sorted(map(str, [
            ("sonotrace_unet", None), (None, "Dr B^"), (None, "Dr B^")]))
        # What a save keeps as offered (agreement.offered_paths) and compares with.
        assert annotate._offered(ai, raster, annotate._steps(history, meta)) == (
            redrawn["paths"])
        # Undone back to the AI's own outline, or reset to it: its 8 vertices again.
        for steps in (annotate._steps(_history.undo(_history.undo(history)), meta),
                      [*annotate._steps(history, meta),
                       _editing.make_state(coarse, "reset", base="ai", density=8)]):
            assert annotate._offered(ai, raster, steps) == coarse
