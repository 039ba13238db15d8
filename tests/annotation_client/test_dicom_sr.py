"""The outline's measurements as a DICOM SR: what the report says, read back with
highdicom, and the Annotate page's *Download DICOM SR* (offered for a DICOM only, at the
page's pixel spacing, refusals said)."""

from __future__ import annotations

import base64
import io
from contextvars import copy_context

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict
from image_samples import dicom_bytes, png_bytes, speckle_image

import vectorizer
from annotation_client import _dicom_sr, _editing, _history, create_app, ids

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
    sr = _dicom_sr.dicom_sr(_source(), _mask(), SPACING, model=("sonotrace_unet", "v9"))
    text = str(pydicom.dcmread(io.BytesIO(sr)))
    assert "sonotrace_unet" in text and "v9" in text
    manual = str(pydicom.dcmread(io.BytesIO(_dicom_sr.dicom_sr(_source(), _mask(), SPACING))))
    assert "sonotrace_unet" not in manual and "Algorithm Name" not in manual
    # With no reader named, the observer is the device.
    assert "Device Observer Name" in manual and "SonoTrace" in manual


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


def _download(annotate, meta, history, image_data, label="benign", annotator="Dr B"):
    def run():
        context_value.set(AttributeDict(triggered_inputs=[
            {"prop_id": f"{ids.DOWNLOAD_SR_BUTTON}.n_clicks", "value": 1}]))
        return annotate.download_sr(1, meta, history, image_data, None, label, annotator)
    return copy_context().run(run)


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
