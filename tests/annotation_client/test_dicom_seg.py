"""The outline as a DICOM SEG: what the file says, read back with highdicom, and the
Annotate page's *Download DICOM SEG* (offered for a DICOM only, refusals said)."""

from __future__ import annotations

import base64
import io
import re

import highdicom as hd
import numpy as np
import pydicom
import pytest
from _dash_helpers import as_callback
from dash.exceptions import PreventUpdate
from image_samples import dicom_bytes, png_bytes, speckle_image

import vectorizer
from annotation_client import _dicom_seg, _dicom_sr, _editing, _history, create_app, ids

SHAPE = (60, 80)  # (rows, cols)
STUDY, SERIES = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()


def _source(pixels=None, **elements) -> bytes:
    pixels = speckle_image(*SHAPE) if pixels is None else pixels
    fields = {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES, "PatientID": "P-7"}
    return dicom_bytes(pixels, **{**fields, **elements})


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[10:30, 20:50] = True  # 20 rows x 30 columns
    mask[40:45, 5:8] = True
    return mask


def _read(seg: bytes):
    return hd.seg.segread(io.BytesIO(seg))


# ------------------------------------------------------------------------- the file


def test_the_seg_holds_the_mask_and_refers_to_its_image():
    source = _source()
    seg = _read(_dicom_seg.dicom_seg(source, _mask(), label="benign", annotator="Dr A"))
    image = pydicom.dcmread(io.BytesIO(source))
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    # It files itself beside the image: same patient and study, a new series.
    assert seg.PatientID == "P-7" and seg.StudyInstanceUID == STUDY
    assert seg.SeriesInstanceUID not in (SERIES, image.SOPInstanceUID)
    assert seg.get_source_image_uids() == [(STUDY, SERIES, image.SOPInstanceUID)]
    # Row 0 at the top, column 0 at the left: the same pixels as the outline.
    assert seg.pixel_array.shape == SHAPE
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), _mask())
    (segment,) = seg.SegmentSequence
    assert segment.SegmentLabel == "Lesion" and segment.SegmentNumber == 1
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"  # lesion
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert segment.AnatomicRegionSequence[0].CodeValue == "76752008"  # breast
    assert segment.SegmentAlgorithmType == "MANUAL"
    assert seg.ContentDescription == "Lesion outline, final label benign"
    assert str(seg.ContentCreatorName) == "Dr A^"


def test_an_outline_started_from_the_model_is_semiautomatic_and_names_it():
    seg = _read(_dicom_seg.dicom_seg(_source(), _mask(),
                                     model=("sonotrace_unet", "2026-12-03.10")))
    (segment,) = seg.SegmentSequence
    assert segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert segment.SegmentAlgorithmName == "sonotrace_unet"
    assert seg.ContentDescription == "Lesion outline"
    assert "ContentCreatorName" not in seg or not str(seg.ContentCreatorName)


@pytest.mark.parametrize("elements", [
    {"PixelSpacing": [0.1, 0.1]},
    {"PixelSpacing": [0.1, 0.1], "FrameOfReferenceUID": pydicom.uid.generate_uid(),
     "ImagePositionPatient": [0, 0, 0], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0]},
    {"PixelSpacing": [0.1, 0.1], "FrameOfReferenceUID": pydicom.uid.generate_uid(),
     "ImagePositionPatient": [0, 0, 0], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
     "SliceThickness": 1.0},
], ids=["spacing", "position-without-thickness", "position-with-thickness"])
def test_a_dicom_with_a_pixel_spacing_or_a_position_gets_a_seg_that_reads_back(elements):
    """Without a slice thickness (a 2-D ultrasound frame), the SEG gave the spacing in
    pixel measures that highdicom itself could not read back."""
    seg = _read(_dicom_seg.dicom_seg(_source(**elements), _mask()))
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), _mask())


def test_a_header_highdicom_refuses_to_copy_is_said_naming_the_element():
    # An image whose SOP class is a SEG's: highdicom looks for its frames.
    with pytest.raises(_dicom_seg.SegUnavailable,
                       match="whose header it must copy: the element NumberOfFrames is missing"):
        _dicom_seg.dicom_seg(_source(SOPClassUID=pydicom.uid.SegmentationStorage), _mask())


@pytest.mark.parametrize(("elements", "written"), [
    ({"PatientSex": "f"}, {"PatientSex": "F"}),
    ({"StudyTime": "12:00:00"}, {"StudyTime": "120000"}),
    ({"StudyTime": "08:30"}, {"StudyTime": "0830"}),
    ({"StudyDate": "2020.01.02"}, {"StudyDate": "20200102"}),
    ({"PatientSex": "M", "PatientBirthDate": "19700101", "StudyDate": "20261206",
      "StudyTime": "093000.25"}, {"PatientSex": "M", "PatientBirthDate": "19700101",
                                  "StudyDate": "20261206", "StudyTime": "093000.25"}),
], ids=["lower-case-sex", "acr-nema-time", "acr-nema-short-time", "acr-nema-date", "valid"])
def test_a_patient_or_study_value_highdicom_refuses_as_written_is_written_as_it_accepts(
        elements, written):
    notes = []
    seg = pydicom.dcmread(io.BytesIO(_dicom_seg.dicom_seg(_source(**elements), _mask(),
                                                          notes=notes)))
    assert {keyword: str(seg[keyword].value) for keyword in written} == written
    assert notes == []


@pytest.mark.parametrize(("elements", "said"), [
    ({"PatientSex": "U"}, ["PatientSex 'U' is not M, F or O"]),
    ({"PatientBirthDate": "00000000"}, ["PatientBirthDate '00000000' is not a date"]),
    ({"PatientBirthDate": "notadate", "StudyDate": "2026"},
     ["PatientBirthDate 'notadate' is not a date", "StudyDate '2026' is not a date"]),
    ({"StudyTime": "noon"}, ["StudyTime 'noon' is not a time"]),
], ids=["sex-u", "zero-birth-date", "garbage-dates", "garbage-time"])
def test_a_patient_or_study_value_highdicom_refuses_is_left_empty_and_said(elements, said):
    # Such a file had no SEG and no SR: "year 0 is out of range", naming no element.
    notes = []
    data = _dicom_seg.dicom_seg(_source(PatientName="Doe^Jane", **elements), _mask(),
                                notes=notes)
    assert notes == [f"{note}: left empty in the DICOM SEG" for note in said]
    seg = pydicom.dcmread(io.BytesIO(data))
    for keyword in elements:
        assert keyword in seg and not seg[keyword].value  # type 2: present, empty
    assert str(seg.PatientName) == "Doe^Jane" and seg.PatientID == "P-7"
    np.testing.assert_array_equal(_read(data).pixel_array.astype(bool), _mask())


def test_an_empty_outline_is_an_empty_segment_not_a_refusal():
    seg = _read(_dicom_seg.dicom_seg(_source(), np.zeros(SHAPE, dtype=bool), label="normal"))
    assert seg.NumberOfFrames == 1 and not seg.pixel_array.any()


def test_an_rgb_dicom_gets_a_seg_of_its_grid():
    rgb = np.stack([speckle_image(*SHAPE)] * 3, axis=-1)
    seg = _read(_dicom_seg.dicom_seg(_source(rgb, photometric="RGB"), _mask()))
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), _mask())



@pytest.mark.parametrize(("elements", "said"), [
    ({}, None),
    ({"PatientOrientation": ["A", "FR"]}, ["A", "FR"]),
    ({"PatientOrientation": ["A", "X"]}, None),  # not a biped's direction: unknown
    ({"PatientOrientation": ["A", "F"], "AnatomicalOrientationType": "QUADRUPED"}, None),
    ({"PixelSpacing": [0.1, 0.1], "FrameOfReferenceUID": pydicom.uid.generate_uid(),
      "ImagePositionPatient": [0, 0, 0], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0]},
     None),
], ids=["none", "biped", "not-a-direction", "quadruped", "position-without-thickness"])
def test_a_seg_without_a_plane_orientation_says_its_images_patient_orientation(elements,
                                                                               said):
    """Patient Orientation is type 2C, required of an image without Image Orientation
    (Patient): every SEG of an ultrasound frame lacked it (dciodvfy: "Missing attribute
    Type 2C Conditional Element=<PatientOrientation>"). On its image's grid, it says the
    image's directions."""
    seg = pydicom.dcmread(io.BytesIO(_dicom_seg.dicom_seg(_source(**elements), _mask())))
    assert "PatientOrientation" in seg
    assert (list(seg.PatientOrientation) if said else seg.PatientOrientation) == (said or "")


def test_a_seg_with_a_plane_orientation_needs_no_patient_orientation():
    elements = {"PixelSpacing": [0.1, 0.1], "FrameOfReferenceUID": pydicom.uid.generate_uid(),
                "ImagePositionPatient": [0, 0, 0], "SliceThickness": 1.0,
                "ImageOrientationPatient": [1, 0, 0, 0, 1, 0]}
    seg = pydicom.dcmread(io.BytesIO(_dicom_seg.dicom_seg(_source(**elements), _mask())))
    shared = seg.SharedFunctionalGroupsSequence[0]
    assert shared.PlaneOrientationSequence[0].ImageOrientationPatient == [1, 0, 0, 0, 1, 0]
    assert "PatientOrientation" not in seg


@pytest.mark.parametrize("shape", [(1, 1), (61, 83), (17, 1), (5, 3)])
def test_the_bits_past_the_last_pixel_are_zero(shape):
    """The packed frame is padded to an even length with a null byte (PS3.5 8.1.1):
    highdicom padded with "0" (0x30), two bits set past the last pixel, which a reader
    counting the pixel data's set bits took for two more lesion pixels."""
    rows, cols = shape
    source = dicom_bytes(np.zeros(shape, dtype=np.uint8), StudyInstanceUID=STUDY,
                         SeriesInstanceUID=SERIES)
    mask = np.ones(shape, dtype=bool)
    seg = pydicom.dcmread(io.BytesIO(_dicom_seg.dicom_seg(source, mask)))
    bits = np.unpackbits(np.frombuffer(seg.PixelData, dtype=np.uint8), bitorder="little")
    assert len(seg.PixelData) % 2 == 0
    assert bits[: rows * cols].all() and not bits[rows * cols:].any()
    assert int(bits.sum()) == mask.sum()
    np.testing.assert_array_equal(
        _read(_dicom_seg.dicom_seg(source, mask)).pixel_array.astype(bool), mask)

def test_the_same_outline_is_the_same_instance_and_every_seg_of_an_image_one_series():
    """A PACS files one instance for an outline sent twice, not two."""
    source = _source()
    first = _read(_dicom_seg.dicom_seg(source, _mask(), label="benign", annotator="Dr A"))
    again = _read(_dicom_seg.dicom_seg(source, _mask(), label="benign", annotator="Dr A"))
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.SOPInstanceUID.startswith("2.25.")
    # The same in every element but the times it was made at: one instance, not two
    # files under one UID (highdicom draws the dimension organization's UID at random).
    made_at = {"InstanceCreationTime", "InstanceCreationDate", "ContentTime", "ContentDate",
               "ContributionDateTime"}
    def elements(ds):
        return [(e.tag, str(e.value)) for e in ds.iterall()
                if e.keyword not in made_at and e.VR != "SQ"]
    assert elements(first) == elements(again)
    changed = [
        _dicom_seg.dicom_seg(source, ~_mask(), label="benign", annotator="Dr A"),
        _dicom_seg.dicom_seg(source, _mask(), label="malignant", annotator="Dr A"),
        _dicom_seg.dicom_seg(source, _mask(), label="benign", annotator="Dr B"),
        _dicom_seg.dicom_seg(source, _mask(), label="benign", annotator="Dr A",
                             model=("unet", "1")),
    ]
    uids = {first.SOPInstanceUID} | {_read(seg).SOPInstanceUID for seg in changed}
    assert len(uids) == 5
    assert {_read(seg).SeriesInstanceUID for seg in changed} == {first.SeriesInstanceUID}
    other_image = _read(_dicom_seg.dicom_seg(_source(), _mask()))
    assert other_image.SeriesInstanceUID != first.SeriesInstanceUID


@pytest.mark.parametrize("name", ["Dr Ünal", "李医生", "Smith^Zoë"])
def test_a_name_in_any_script_is_written_in_utf8_and_reads_back(name):
    seg = _dicom_seg.dicom_seg(_source(PatientName="Müller^Jürgen"), _mask(), annotator=name)
    read = pydicom.dcmread(io.BytesIO(seg))
    assert read.SpecificCharacterSet == "ISO_IR 192"
    assert str(read.ContentCreatorName) == _dicom_seg._person_name(name)
    assert str(read.PatientName) == "Müller^Jürgen"
    assert "?" not in str(read.ContentCreatorName)


def test_highdicom_logs_no_uids_at_info(caplog):
    import logging

    with caplog.at_level(logging.INFO):
        _dicom_seg.dicom_seg(_source(), _mask())
    assert not [r for r in caplog.records if r.name.startswith("highdicom")]


@pytest.mark.parametrize(("name", "as_pn"), [
    ("Dr A", "Dr A^"), ("Smith^Ann", "Smith^Ann"), ("a\\b=c", "a b c^"), ("  ", None),
    ("Smith^Ann^B^Dr^MD", "Smith^Ann^B^Dr^MD"),
    # Audit 1006: more than 5 components is no PN; the name is kept, in words.
    ("Smith^Ann^B^Dr^MD^PhD", "Smith Ann B Dr MD PhD^"), ("^^^^^", None),
    # Review 1012: carets alone name nobody, at any count.
    ("^^", None), ("^ ^", None), ("^", None),
])
def test_a_typed_name_becomes_a_person_name(name, as_pn):
    assert _dicom_seg._person_name(name) == as_pn


def test_a_name_of_too_many_carets_is_a_valid_person_name_in_the_seg_and_sr():
    from annotation_client import _dicom_sr

    name = "Smith^Ann^B^Dr^MD^PhD^x"
    seg = pydicom.dcmread(io.BytesIO(_dicom_seg.dicom_seg(_source(), _mask(), annotator=name)))
    sr = pydicom.dcmread(io.BytesIO(_dicom_sr.dicom_sr(_source(), _mask(), (0.1, 0.1),
                                                       annotator=name)))
    observer = next(item for item in sr.ContentSequence
                    if item.ConceptNameCodeSequence[0].CodeMeaning == "Person Observer Name")
    for pn in (seg.ContentCreatorName, observer.PersonName):
        assert str(pn) == "Smith Ann B Dr MD PhD x^"
        assert len(pn.components[0].split("^")) <= 5


@pytest.mark.parametrize(("source", "says"), [
    (lambda: _source(np.zeros((3, *SHAPE), dtype=np.uint8)), "3 frames"),
    (lambda: _source(StudyInstanceUID=""), "no StudyInstanceUID"),
    (lambda: png_bytes(speckle_image(*SHAPE)), "not a DICOM file"),
    (lambda: b"", "not a DICOM file"),
    (lambda: _source(speckle_image(40, 80)), "the DICOM image is 80x40"),
])
def test_a_file_that_cannot_have_a_seg_says_why(source, says):
    with pytest.raises(_dicom_seg.SegUnavailable, match=says):
        _dicom_seg.dicom_seg(source(), _mask())


LONG_UID = "1.2.826.0.1.3680043.8.498." + "1" * 50  # 76 characters


@pytest.mark.parametrize(("elements", "says"), [
    ({"SOPInstanceUID": "1.2.3.abc"}, "SOPInstanceUID '1.2.3.abc' is not a valid UID"),
    ({"StudyInstanceUID": "1.2.03.4"}, "StudyInstanceUID '1.2.03.4' is not a valid UID"),
    ({"SeriesInstanceUID": LONG_UID},
     "SeriesInstanceUID is 76 characters long; a UID has at most 64"),
    ({"FrameOfReferenceUID": "1..2"}, "FrameOfReferenceUID '1..2' is not a valid UID"),
], ids=["letters", "leading-zero", "too-long", "empty-component"])
def test_an_invalid_uid_a_seg_would_refer_to_is_refused_by_its_element(elements, says,
                                                                       tmp_path):
    # The SEG and SR were written referring to it, for a PACS to reject or misfile.
    source = _source(**elements)
    for make in (_dicom_seg.dicom_seg, lambda *a: _dicom_sr.dicom_sr(*a, (0.1, 0.1))):
        with pytest.raises(ValueError, match=re.escape(f"the DICOM file's {says}")):
            make(source, _mask())
    # The Saved page's links say it in the routes' words.
    path = tmp_path / "scan.dcm"
    path.write_bytes(source)
    assert says in _dicom_seg.header_refusal(path, "DICOM SEG or SR")


def test_valid_uids_of_any_form_are_referred_to():
    uids = {"SOPInstanceUID": "2.25.0", "StudyInstanceUID": "1.2.840.10008.0.1",
            "SeriesInstanceUID": "1.2.3." + "9" * 58, "FrameOfReferenceUID": "0.0.10"}
    seg = _read(_dicom_seg.dicom_seg(_source(**uids), _mask()))
    assert seg.get_source_image_uids() == [(uids["StudyInstanceUID"],
                                            uids["SeriesInstanceUID"], "2.25.0")]


# ---------------------------------------------------------------- the Annotate page


@pytest.fixture
def app(tmp_path):
    """The app, made before the page module is imported (Dash registers pages on it)."""
    return create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})


def _opened(annotate, app, name, data):
    meta, image_data, *_ = annotate._show(name, lambda: data, None)
    return meta, image_data


def _outlined(meta) -> dict:
    region = "M20,10L50,10L50,30L20,30Z"  # the mask's first rectangle
    state = _editing.make_state([region], "ai", density=32)
    history = _history.push(_history.new_history(_editing.empty_state(), image=meta["sha256"]),
                            state)
    return history


def _download(annotate, meta, history, image_data, ai=None, label="malignant",
              annotator="Dr B", trigger=ids.DOWNLOAD_SEG_BUTTON):
    return as_callback(lambda: annotate.download_seg(
        1, meta, history, image_data, ai, label, annotator,
    ), f"{trigger}.n_clicks", value=1)


def test_the_page_offers_the_seg_for_a_dicom_only(app, annotate):
    with app.server.test_request_context("/"):
        dicom_meta, _ = _opened(annotate, app, "scan.dcm", _source())
        png_meta, _ = _opened(annotate, app, "scan.png", png_bytes(speckle_image(*SHAPE)))
    assert annotate.enable_actions(dicom_meta, None)[-3:] == (False, False, "")
    *png_buttons, why = annotate.enable_actions(png_meta, None)
    assert png_buttons[-2:] == [True, True]
    # Greyed out, the buttons take no pointer events: their wrapper's title says why.
    assert "the open image is a PNG file: open the study's DICOM file" in why
    *buttons, why = annotate.enable_actions(None, None)
    assert buttons == [True] * 8 and why == annotate.DICOM_ONLY_NO_IMAGE


def test_the_download_is_the_outline_on_screen_as_a_seg(app, annotate):
    source = _source()
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, app, "case 7.dcm", source)
        offered = np.zeros(SHAPE, dtype=bool)
        offered[12:32, 25:55] = True  # the model's outline, which the reader moved
        ai = {"image": meta["sha256"], "model": {"name": "sonotrace_unet", "version": "v9"},
              "mask": base64.b64encode(vectorizer.mask_to_png(offered)).decode()}
        sent, note = _download(annotate, meta, _outlined(meta), image_data, ai=ai)
        # The model's outline elsewhere, erased, and this one drawn by hand: manual.
        elsewhere = {**ai, "mask": base64.b64encode(
            vectorizer.mask_to_png(np.roll(offered, 30, axis=0))).decode()}
        drawn, _ = _download(annotate, meta, _outlined(meta), image_data, ai=elsewhere)
    assert note is None
    assert sent["filename"] == "case 7_outline_seg.dcm" and sent["type"] == "application/dicom"
    seg = _read(base64.b64decode(sent["content"]))
    expected = np.zeros(SHAPE, dtype=bool)
    expected[10:30, 20:50] = True
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), expected)
    (segment,) = seg.SegmentSequence
    assert segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "v9"
    assert seg.ContentDescription == "Lesion outline, final label malignant"
    assert str(seg.ContentCreatorName) == "Dr B^"
    manual = _read(base64.b64decode(drawn["content"]))
    assert manual.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in manual.SegmentSequence[0]


def test_a_dicom_that_cannot_have_a_seg_is_said_and_cleared_by_the_next_image(app, annotate):
    cine = _source(np.stack([speckle_image(*SHAPE)] * 4))
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, app, "loop.dcm", cine)
        sent, note = _download(annotate, meta, _outlined(meta), image_data)
        assert sent is annotate.dash.no_update
        assert note == ("No DICOM SEG: the DICOM file holds 4 frames: a DICOM SEG is written "
                        "for single-frame images only (the outline is on the first frame).")
        # A page's copy of another file than the open image's is not written over.
        other = {**image_data, "contents": "data:application/dicom;base64,"
                 + base64.b64encode(_source()).decode()}
        with pytest.raises(PreventUpdate):
            _download(annotate, meta, _outlined(meta), other)


def test_an_open_clears_the_note_without_sending_the_image_back(app):
    # The SEG's callback fired on every open, its States carrying the whole image up to
    # the server for nothing (audit helper-901, F5): the note is cleared in the browser.
    if not app.callback_map:
        app.server.test_client().get("/")  # the pages' callbacks join the map
    on_open = {out: spec for out, spec in app.callback_map.items()
               if {"id": ids.IMAGE_OPENED, "property": "data"} in spec["inputs"]}
    clearing = [spec for out, spec in on_open.items() if f"{ids.DOWNLOAD_NOTE}.children" in out]
    assert clearing and all("callback" not in spec for spec in clearing)  # in the browser
    image = {"id": ids.IMAGE_DATA, "property": "data"}
    assert not [out for out, spec in on_open.items()
                if "download" in out and image in spec["inputs"] + spec.get("state", [])]


def test_the_download_names_the_values_the_seg_left_empty(app, annotate):
    with app.server.test_request_context("/"):
        meta, image_data = _opened(annotate, app, "anonymised.dcm",
                                   _source(PatientSex="U", PatientBirthDate="00000000"))
        sent, note = _download(annotate, meta, _outlined(meta), image_data)
    assert sent["filename"] == "anonymised_outline_seg.dcm"
    assert note == ("PatientSex 'U' is not M, F or O: left empty in the DICOM SEG; "
                    "PatientBirthDate '00000000' is not a date: left empty in the DICOM SEG.")


# ------------------------------------------------------------------------ in a browser


@pytest.mark.browser
def test_a_dicom_of_a_busi_lesion_downloads_the_outline_on_screen_as_a_seg(
    dash_duo, live_model_server, busi_dir, tmp_path
):
    """Real parts: the shipped model outlines a BUSI lesion sent as a DICOM; the SEG the
    button downloads holds the outline on screen and refers to that DICOM."""
    import time
    from pathlib import Path

    from _dash_helpers import click, settled, store_data, upload, wait_for
    from PIL import Image
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By

    from annotation_client import _shapes

    pixels = np.asarray(Image.open(busi_dir / "benign" / "benign (4).png").convert("L"))
    source = _source(pixels)
    scan, frame = tmp_path / "scan.dcm", tmp_path / "frame.png"
    scan.write_bytes(source)
    frame.write_bytes(png_bytes(pixels))
    app = create_app({"MODEL_SERVER_URL": live_model_server, "DATA_DIR": tmp_path / "data"})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    settled(dash_duo, quiet=0.5)
    button = lambda: driver.find_element(By.ID, ids.DOWNLOAD_SEG_BUTTON)  # noqa: E731

    def outlined(name):
        return lambda: ((store_data(dash_duo, ids.IMAGE_META) or {}).get("name") == name
                        and (store_data(dash_duo, ids.HISTORY) or {}).get("present", {})
                        .get("action") == "ai")

    upload(dash_duo, frame)  # a PNG has no DICOM image for a SEG to refer to
    wait_for(dash_duo, outlined("frame.png"), 60, "the PNG got no AI outline")
    assert not button().is_enabled()
    upload(dash_duo, scan)
    wait_for(dash_duo, outlined("scan.dcm"), 60, "the DICOM got no AI outline")
    wait_for(dash_duo, lambda: button().is_enabled(), 10, "the SEG button stayed disabled")
    paths = store_data(dash_duo, ids.HISTORY)["present"]["paths"]
    assert paths, "the model outlined nothing on benign (4)"
    # Scrolled to, as a user would; the page settles first, since a click sent while it
    # still moves lands on the sticky action bar (seen once in a full run).
    for attempt in range(3):
        settled(dash_duo, quiet=0.5)
        try:
            click(driver, By.ID, ids.DOWNLOAD_SEG_BUTTON)
            break
        except ElementClickInterceptedException:
            if attempt == 2:
                raise
    folder = Path(dash_duo.download_path)
    wait_for(dash_duo, lambda: list(folder.glob("*.dcm")) and not list(folder.glob("*.crdownload")),
             20, "no SEG was downloaded")
    time.sleep(0.2)
    (written,) = folder.glob("*.dcm")
    assert written.name == "scan_outline_seg.dcm"
    seg = _read(written.read_bytes())
    on_screen = _shapes.paths_to_mask(paths, pixels.shape)
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), on_screen > 0)
    image = pydicom.dcmread(io.BytesIO(source))
    assert seg.get_source_image_uids() == [(STUDY, SERIES, image.SOPInstanceUID)]
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert not driver.find_element(By.ID, ids.DOWNLOAD_NOTE).text
    # This DICOM gives no pixel size, so its measurements have no unit: no SR, and why.
    sr_button = driver.find_element(By.ID, ids.DOWNLOAD_SR_BUTTON)
    assert sr_button.is_enabled()
    for attempt in range(3):
        settled(dash_duo, quiet=0.5)
        try:
            click(driver, By.ID, ids.DOWNLOAD_SR_BUTTON)
            break
        except ElementClickInterceptedException:
            if attempt == 2:
                raise
    wait_for(dash_duo, lambda: "No DICOM SR" in driver.find_element(
        By.ID, ids.DOWNLOAD_NOTE).text, 20, "the SR's refusal was not said")
    assert "pixel size is not known" in driver.find_element(By.ID, ids.DOWNLOAD_NOTE).text
    assert [p.name for p in folder.glob("*.dcm")] == ["scan_outline_seg.dcm"]


@pytest.mark.parametrize("make", ["seg", "sr"])
def test_a_japanese_iso_2022_file_gets_a_seg_and_an_sr_in_utf8(make):
    """ISO 2022 files declare their character set with an empty first value (ASCII), as
    the standard allows; highdicom refuses such a set, so the text is decoded first."""
    from annotation_client import _dicom_sr

    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    source = _source(SpecificCharacterSet=["", "ISO 2022 IR 87"], PatientName=name)
    assert pydicom.dcmread(io.BytesIO(source)).SpecificCharacterSet == ["", "ISO 2022 IR 87"]
    written = (_dicom_seg.dicom_seg(source, _mask()) if make == "seg"
               else _dicom_sr.dicom_sr(source, _mask(), (0.1, 0.1)))
    ds = pydicom.dcmread(io.BytesIO(written))
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == name
