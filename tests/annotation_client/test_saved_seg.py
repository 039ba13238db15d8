"""A saved version's DICOM SEG and SR: ``GET /api/saved/<sha256>/<version>/dicom-seg``
and ``.../dicom-sr``, and the Saved page's *DICOM* column linking them.

The versions are saved as the Annotate page saves them (:class:`AnnotationStore` saves of
:func:`build_record` records) over small DICOM, PNG and multi-frame files in a worklist,
and over an uploaded DICOM kept beside its versions. The SEG and the SR are read back
with pydicom and highdicom and compared with the version's own mask and with what
``export_busi(..., dicom_seg=True, dicom_sr=True)`` writes for the same version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import pydicom
import pytest
from _dash_helpers import api_error as _error
from _dash_helpers import saved_link_cells, wait_for
from image_samples import dicom_bytes, png_bytes

import vectorizer
from annotation_client import AnnotationStore, build_record, create_app
from annotation_client._export import export_busi
from annotation_client._measurements import summarize

pytestmark = pytest.mark.usefixtures("an_app_exists")

USER = "X-Forwarded-User"
ADA, BO, CHAIR = ({USER: name} for name in ("Dr Ada", "Dr Bo", "Dr Chair"))
BLINDED = {"ANNOTATOR_HEADER": USER, "BLINDED_READING": True, "REVIEWERS": "Dr Chair"}
STUDY, SERIES = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
#: Elements highdicom stamps anew on each SEG it writes (the time, random UIDs of its
#: dimension index): all the rest of two SEGs of one version must be equal.
STAMPED = {"InstanceCreationDate", "InstanceCreationTime", "ContentDate", "ContentTime",
           "SeriesDate", "SeriesTime", "ContributingEquipmentSequence",
           "DimensionOrganizationSequence", "DimensionIndexSequence"}
#: The pixel spacing (mm, row and column) the still image's versions state.
SPACING = (0.1, 0.2)


def _grey() -> np.ndarray:
    return (np.arange(16 * 20, dtype=np.uint16).reshape(16, 20) % 200).astype(np.uint8)


def _lesion(shift: int = 0) -> np.ndarray:
    mask = np.zeros((16, 20), bool)
    mask[4:11, 5 + shift:14 + shift] = True
    return mask


def _save(store, data, *, mask, worklist_path, name, annotator="Dr Ada", label="malignant",
          ai=None, day=1, keep=False, spacing=None, descriptors=None) -> str:
    sha = hashlib.sha256(data).hexdigest()
    spaced = {} if spacing is None else {"pixel_spacing_mm": list(spacing),
                                         "pixel_spacing_source": "file"}
    record = build_record(
        image={"sha256": sha, "name": name, "width": 20, "height": 16,
               "worklist_path": worklist_path, **spaced},
        annotator=annotator, final_mask=mask, final_label=label, ai_mask=ai,
        model={"name": "unet", "version": "2.1"} if ai is not None else None,
        saved_at=dt.datetime(2026, 12, day, 9, 0, tzinfo=dt.UTC),
        measurements=summarize(mask, spacing), descriptors=descriptors,
    )  # fmt: skip
    store.save(sha, svg=vectorizer.mask_to_svg(mask), mask_png=vectorizer.mask_to_png(mask),
               record=record, ai_mask_png=None if ai is None else vectorizer.mask_to_png(ai),
               source=data if keep else None, source_name=name if keep else None)
    return sha


@pytest.fixture
def saved(tmp_path):
    """A worklist DICOM (Dr Ada's v1 from the model's outline, Dr Bo's v2; both at a pixel
    spacing), a PNG, a cine loop, and an uploaded DICOM kept beside its version (no
    spacing)."""
    worklist, data_dir = tmp_path / "worklist", tmp_path / "data"
    worklist.mkdir()
    store = AnnotationStore(data_dir)
    still = dicom_bytes(_grey(), StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES,
                        PatientID="P-7")
    cine = dicom_bytes(np.stack([_grey()] * 3), StudyInstanceUID=STUDY,
                       SeriesInstanceUID=SERIES)
    upload = dicom_bytes(255 - _grey(), StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES)
    (worklist / "still.dcm").write_bytes(still)
    (worklist / "cine.dcm").write_bytes(cine)
    (worklist / "plain.png").write_bytes(png_bytes(_grey()))
    dicom = _save(store, still, mask=_lesion(), ai=_lesion(1), worklist_path="still.dcm",
                  name="still.dcm", spacing=SPACING)
    _save(store, still, mask=_lesion(2), worklist_path="still.dcm", name="still.dcm",
          annotator="Dr Bo", label="benign", day=2, spacing=SPACING)
    png = _save(store, (worklist / "plain.png").read_bytes(), mask=_lesion(),
                worklist_path="plain.png", name="plain.png")
    loop = _save(store, cine, mask=_lesion(), worklist_path="cine.dcm", name="cine.dcm")
    kept = _save(store, upload, mask=_lesion(3), worklist_path=None, name="upload.dcm",
                 keep=True)
    return {"worklist": worklist, "data": data_dir, "still": still, "upload": upload,
            "sha": {"dicom": dicom, "png": png, "cine": loop, "upload": kept}}


def _client(saved, **config):
    app = create_app({"DATA_DIR": saved["data"], "WORKLIST_DIR": saved["worklist"],
                      "MODEL_SERVER_URL": "http://127.0.0.1:9", **config})
    return app.server.test_client()


def _seg_url(sha: str, version: int) -> str:
    return f"/api/saved/{sha}/{version}/dicom-seg"


def _sr_url(sha: str, version: int) -> str:
    return f"/api/saved/{sha}/{version}/dicom-sr"


def _same_but_stamps(a: pydicom.Dataset, b: pydicom.Dataset) -> None:
    keywords = {e.keyword for e in a} | {e.keyword for e in b}
    for keyword in sorted(keywords - STAMPED):
        assert a.get(keyword) == b.get(keyword), keyword


def test_a_dicom_versions_seg_refers_to_its_image_and_holds_its_mask(saved):
    import highdicom as hd

    sha = saved["sha"]["dicom"]
    response = _client(saved).get(_seg_url(sha, 1))
    assert response.status_code == 200
    assert response.mimetype == "application/dicom"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="still_v001_seg.dcm"')
    assert response.headers["Cache-Control"] == "private, no-store"  # a patient's data
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(io.BytesIO(response.data)))
    image = pydicom.dcmread(io.BytesIO(saved["still"]))
    assert seg.get_source_image_uids() == [(STUDY, SERIES, image.SOPInstanceUID)]
    assert seg.PatientID == "P-7" and str(seg.ContentCreatorName) == "Dr Ada^"
    assert seg.ContentDescription == "Lesion outline, final label malignant"
    # Started from the model's outline, which it overlaps: the model is named.
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    mask = vectorizer.png_to_mask((saved["data"] / sha / "v001_mask.png").read_bytes())
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), mask)


def test_the_seg_is_the_one_the_export_writes_for_that_version(saved, tmp_path):
    """Same function, same UIDs: the same version gives the same SOP Instance UID."""
    client = _client(saved)
    out = tmp_path / "out"
    report = export_busi(saved["data"], saved["worklist"], out, dicom_seg=True)
    assert report.segs == 2  # the still image's latest version (Dr Bo's v2), the upload
    exported = [pydicom.dcmread(path) for path in sorted((out / "dicom_seg").iterdir())]
    by_image = {ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
                .ReferencedSOPInstanceUID: ds for ds in exported}
    served = {}
    for key, image, version in (("dicom", "still", 2), ("upload", "upload", 1)):
        response = client.get(_seg_url(saved["sha"][key], version))
        assert response.status_code == 200, response.data[:300]
        served[key] = pydicom.dcmread(io.BytesIO(response.data))
        written = by_image[pydicom.dcmread(io.BytesIO(saved[image])).SOPInstanceUID]
        assert served[key].SOPInstanceUID == written.SOPInstanceUID
        assert served[key].SeriesInstanceUID == written.SeriesInstanceUID
        _same_but_stamps(served[key], written)
    # Asked again, the same instance: a PACS that gets it twice keeps one.
    again = pydicom.dcmread(io.BytesIO(client.get(_seg_url(saved["sha"]["dicom"], 2)).data))
    assert again.SOPInstanceUID == served["dicom"].SOPInstanceUID
    first = pydicom.dcmread(io.BytesIO(client.get(_seg_url(saved["sha"]["dicom"], 1)).data))
    assert first.SOPInstanceUID != again.SOPInstanceUID  # another outline, another instance


def test_a_version_without_a_final_label_has_a_seg_naming_none(saved):
    """The export leaves such a version out; its SEG is the Annotate page's unlabelled one."""
    sha = _save(AnnotationStore(saved["data"]), saved["still"], mask=_lesion(),
                worklist_path="still.dcm", name="still.dcm", label=None, day=3)
    response = _client(saved).get(_seg_url(sha, 3))
    assert response.status_code == 200, response.data[:300]
    seg = pydicom.dcmread(io.BytesIO(response.data))
    assert seg.ContentDescription == "Lesion outline"
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"


def test_an_unknown_version_or_image_is_404(saved):
    client = _client(saved)
    sha = saved["sha"]["dicom"]
    assert "no saved version 3" in _error(client.get(_seg_url(sha, 3)), 404, "not_found")
    _error(client.get(_seg_url("ab" * 32, 1)), 404, "not_found")
    _error(client.get(_seg_url("not-a-sha", 1)), 404, "not_found")
    _error(client.get(_seg_url(sha, 0)), 404, "not_found")
    _error(client.get(f"/api/saved/{sha}/one/dicom-seg"), 404, "not_found")
    _error(client.get(_seg_url(sha, 1) + "?frame=2"), 400, "bad_parameter")


def test_a_png_version_has_no_seg_and_says_why(saved):
    message = _error(_client(saved).get(_seg_url(saved["sha"]["png"], 1)), 422, "not_dicom")
    assert "is not a DICOM file" in message


def test_a_dicom_that_cannot_have_one_or_is_gone_says_why(saved):
    client = _client(saved)
    message = _error(client.get(_seg_url(saved["sha"]["cine"], 1)), 422, "seg_unavailable")
    assert "holds 3 frames" in message
    # The kept copy damaged on disk: named by its file, not the data folder's path.
    sha = saved["sha"]["upload"]
    kept = saved["data"] / sha / "source.dcm"
    kept.write_bytes(kept.read_bytes()[:-1] + b"x")
    message = _error(client.get(_seg_url(sha, 1)), 409, "image_unavailable")
    assert "the kept copy source.dcm is damaged" in message
    assert str(saved["data"]) not in message
    # The kept copy pruned, and no worklist file holds the upload's bytes.
    kept.unlink()
    message = _error(client.get(_seg_url(sha, 1)), 409, "image_unavailable")
    assert "the image was not kept" in message
    # A worklist file replaced since it was annotated.
    (saved["worklist"] / "still.dcm").write_bytes(saved["upload"])
    _error(client.get(_seg_url(saved["sha"]["dicom"], 1)), 409, "image_unavailable")


def test_a_damaged_record_is_409(saved):
    sha = saved["sha"]["dicom"]
    (saved["data"] / sha / "v001.json").write_text("{cut short", encoding="utf-8")
    message = _error(_client(saved).get(_seg_url(sha, 1)), 409, "damaged_record")
    assert str(saved["data"]) not in message


def test_under_blinded_reading_a_reader_gets_only_their_own_versions_seg(saved):
    client = _client(saved, **BLINDED)
    sha = saved["sha"]["dicom"]
    assert client.get(_seg_url(sha, 1), headers=ADA).status_code == 200
    message = _error(client.get(_seg_url(sha, 1), headers=BO), 403, "forbidden")
    assert "another reader's" in message
    _error(client.get(_seg_url(sha, 2), headers=ADA), 403, "forbidden")
    assert client.get(_seg_url(sha, 2), headers=BO).status_code == 200
    # A reviewer sees every save; nobody signed in, nothing.
    assert client.get(_seg_url(sha, 1), headers=CHAIR).status_code == 200
    _error(client.get(_seg_url(sha, 1)), 401, "not_signed_in")


# --------------------------------------------------------------------------- the SR


def _sr_area_mm2(data: bytes) -> float:
    import highdicom as hd

    (group,) = hd.sr.srread(io.BytesIO(data)).content.get_planar_roi_measurement_groups()
    (area,) = [m for m in group.get_measurements() if m.name.meaning == "Area"]
    assert area.unit.value == "mm2"
    return area.value


def test_a_dicom_versions_sr_is_the_one_the_export_writes_for_that_version(saved, tmp_path):
    """Same function, same record, same spacing: the same SOP Instance UID, the same
    content; the version's own area in mm2."""
    client = _client(saved)
    out = tmp_path / "out"
    report = export_busi(saved["data"], saved["worklist"], out, dicom_sr=True)
    assert report.srs == 1  # the still image's latest version (Dr Bo's v2)
    (written,) = [path.read_bytes() for path in (out / "dicom_sr").iterdir()]
    response = client.get(_sr_url(saved["sha"]["dicom"], 2))
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/dicom"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="still_v002_sr.dcm"')
    assert response.headers["Cache-Control"] == "private, no-store"  # a patient's data
    served, exported = (pydicom.dcmread(io.BytesIO(d)) for d in (response.data, written))
    assert served.Modality == "SR"
    assert served.SOPInstanceUID == exported.SOPInstanceUID
    _same_but_stamps(served, exported)
    import highdicom as hd

    observer = hd.sr.srread(io.BytesIO(response.data)).content.get_observer_contexts()[0]
    assert str(observer.observer_identifying_attributes[0].value) == "Dr Bo^"  # its reader
    assert _sr_area_mm2(response.data) == pytest.approx(
        np.count_nonzero(_lesion(2)) * SPACING[0] * SPACING[1])
    # Another version, another instance; the same again, the same.
    first = pydicom.dcmread(io.BytesIO(client.get(_sr_url(saved["sha"]["dicom"], 1)).data))
    again = pydicom.dcmread(io.BytesIO(client.get(_sr_url(saved["sha"]["dicom"], 2)).data))
    assert first.SOPInstanceUID != again.SOPInstanceUID == served.SOPInstanceUID
    # Dr Ada's v1 started from the model's outline, which she edited: its SEG names the
    # model (SEMIAUTOMATIC), its SR's measurements are hers (audit 1006 F1); Dr Bo's v2
    # names it in neither.
    seg = pydicom.dcmread(io.BytesIO(client.get(_seg_url(saved["sha"]["dicom"], 1)).data))
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert "unet" not in str(first) and "unet" not in str(served)
    assert "Dr Ada^" in [str(item.PersonName) for item in first.ContentSequence[-1]
                         .ContentSequence[0].ContentSequence if "PersonName" in item]


def test_a_version_without_a_pixel_spacing_has_no_sr_and_says_so(saved):
    client = _client(saved)
    message = _error(client.get(_sr_url(saved["sha"]["upload"], 1)), 422, "no_pixel_spacing")
    assert message.startswith("no DICOM SR of version 1: its version states no pixel spacing")
    # Its SEG needs none.
    assert client.get(_seg_url(saved["sha"]["upload"], 1)).status_code == 200


def test_the_srs_refusals_are_the_segs(saved):
    client = _client(saved)
    sha = saved["sha"]["dicom"]
    assert "no saved version 3" in _error(client.get(_sr_url(sha, 3)), 404, "not_found")
    _error(client.get(_sr_url("ab" * 32, 1)), 404, "not_found")
    _error(client.get(_sr_url(sha, 1) + "?frame=2"), 400, "bad_parameter")
    _error(client.get(f"/api/saved/{sha}/1/dicom-xx"), 404, "not_found")
    message = _error(client.get(_sr_url(saved["sha"]["png"], 1)), 422, "not_dicom")
    assert "a DICOM SR refers to a DICOM image" in message
    # Several frames, said before the spacing it lacks too: setting one would not help.
    message = _error(client.get(_sr_url(saved["sha"]["cine"], 1)), 422, "sr_unavailable")
    assert "holds 3 frames" in message
    (saved["data"] / sha / "v001.json").write_text("{cut short", encoding="utf-8")
    _error(client.get(_sr_url(sha, 1)), 409, "damaged_record")


def test_under_blinded_reading_a_reader_gets_only_their_own_versions_sr(saved):
    client = _client(saved, **BLINDED)
    sha = saved["sha"]["dicom"]
    assert client.get(_sr_url(sha, 1), headers=ADA).status_code == 200
    message = _error(client.get(_sr_url(sha, 1), headers=BO), 403, "forbidden")
    assert "another reader's" in message
    _error(client.get(_sr_url(sha, 2), headers=ADA), 403, "forbidden")
    assert client.get(_sr_url(sha, 1), headers=CHAIR).status_code == 200
    _error(client.get(_sr_url(sha, 1)), 401, "not_signed_in")


# --------------------------------------------------------------------------- the Saved page


def _page_rows(saved, **config):
    from annotation_client.pages import saved as page

    app = create_app({"DATA_DIR": saved["data"], "WORKLIST_DIR": saved["worklist"],
                      "MODEL_SERVER_URL": "http://127.0.0.1:9", **config})
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = page.show_saved(True, None, None, "__any__", False)
    return page, {(row["image"], row["version"]): (row["dicom"], tip.get("dicom"))
                  for row, tip in zip(data, tooltips, strict=True)}


def test_the_saved_page_links_the_seg_and_sr_of_each_dicom_version_only(saved):
    page, rows = _page_rows(saved)
    sha = saved["sha"]

    def links(key, version, sr=True):
        api = f"/api/saved/{sha[key]}/{version}"
        return f"[SEG]({api}/dicom-seg)" + (f" · [SR]({api}/dicom-sr)" if sr else "")

    assert rows == {
        ("still.dcm", 1): (links("dicom", 1), page.DICOM_LINKS),
        ("still.dcm", 2): (links("dicom", 2), page.DICOM_LINKS),
        # No pixel spacing: no SR, and the cell says why.
        ("upload.dcm", 1): (links("upload", 1, sr=False), page.NO_SR_SPACING),
        # A cine loop, told by its header: no link, and the cell says why, as the route.
        ("cine.dcm", 1): ("", page.DICOM_REFUSED.format(
            "the DICOM file holds 3 frames: a DICOM SEG or SR is written for single-frame "
            "images only (the outline is on the first frame)")),
        ("plain.png", 1): ("", page.NOT_DICOM),
    }
    (saved["data"] / sha["upload"] / "source.dcm").unlink()  # pruned
    (saved["data"] / sha["dicom"] / "v001.json").write_text("{cut", encoding="utf-8")
    _, rows = _page_rows(saved)
    assert rows[("upload.dcm", 1)] == ("", page.NO_DICOM_SOURCE)
    assert rows[("still.dcm", 1)] == ("", page.DICOM_DAMAGED)
    assert rows[("still.dcm", 2)][0]  # the image's other version is still linked


@pytest.mark.browser
def test_the_seg_and_sr_links_are_on_the_saved_page_for_a_dicom_version_not_a_png(
    dash_duo, saved
):
    import requests
    from selenium.webdriver.common.by import By

    from annotation_client import ids

    app = create_app({"DATA_DIR": saved["data"], "WORKLIST_DIR": saved["worklist"],
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    dash_duo.start_server(app)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/saved")

    def dicom_cells() -> dict[str, list]:
        return saved_link_cells(dash_duo, "dicom")

    # Latest version of each image: still.dcm (Dr Bo's v2), plain.png, cine.dcm, upload.dcm.
    wait_for(dash_duo, lambda: len(dicom_cells()) == 4, 20, "the table did not fill")
    cells = {image: tuple(cell) for image, cell in dicom_cells().items()}
    assert cells["plain.png"] == ("", [])
    api = f"/api/saved/{saved['sha']['dicom']}/2"
    assert cells["still.dcm"] == ("SEG · SR", [f"{api}/dicom-seg", f"{api}/dicom-sr"])
    # No pixel spacing: the SEG alone.
    assert cells["upload.dcm"] == ("SEG", [f"/api/saved/{saved['sha']['upload']}/1/dicom-seg"])
    header = dash_duo.find_element(f"#{ids.SAVED_TABLE} th[data-dash-column='dicom']")
    assert header.text.strip() == "DICOM"
    for href, modality in ((f"{api}/dicom-seg", "SEG"), (f"{api}/dicom-sr", "SR")):
        link = dash_duo.driver.find_element(By.CSS_SELECTOR,
                                            f"td[data-dash-column='dicom'] a[href='{href}']")
        assert link.is_displayed()
        # What the link fetches is the SEG, or the SR.
        response = requests.get(dash_duo.server_url + href, timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/dicom"
        assert pydicom.dcmread(io.BytesIO(response.content)).Modality == modality


def test_a_normal_reading_with_no_outline_and_no_spacing_gets_its_sr_link(saved):
    import highdicom as hd

    store = AnnotationStore(saved["data"])
    # Dr Cy read the uploaded DICOM (no spacing) as normal, with no outline.
    _save(store, saved["upload"], mask=np.zeros((16, 20), bool), worklist_path=None,
          name="upload.dcm", annotator="Dr Cy", label="normal", day=3)
    page, rows = _page_rows(saved)
    api = f"/api/saved/{saved['sha']['upload']}/2"
    assert rows[("upload.dcm", 2)] == (f"[SEG]({api}/dicom-seg) · [SR]({api}/dicom-sr)",
                                       page.DICOM_LINKS)
    response = _client(saved).get(_sr_url(saved["sha"]["upload"], 2))
    assert response.status_code == 200, response.data[:300]
    report = hd.sr.srread(io.BytesIO(response.data))
    (group,) = report.content.get_image_measurement_groups()
    assert group.get_qualitative_evaluations()[0].value.meaning == "Normal"


def _birads(data: bytes) -> list[tuple[str, str]]:
    """``(name, code)`` of an SR's image-level evaluations; [] without that group."""
    import highdicom as hd

    groups = hd.sr.srread(io.BytesIO(data)).content.get_image_measurement_groups()
    return [(e.name.meaning, e.value.value) for g in groups
            for e in g.get_qualitative_evaluations()]


def test_a_versions_sr_holds_its_birads_reading_as_the_export_writes_it(saved, tmp_path):
    store = AnnotationStore(saved["data"])
    _save(store, saved["still"], mask=_lesion(1), worklist_path="still.dcm", name="still.dcm",
          annotator="Dr Bo", label="benign", day=3, spacing=SPACING,
          descriptors={"shape": "oval", "orientation": "parallel", "assessment": "3"})
    response = _client(saved).get(_sr_url(saved["sha"]["dicom"], 3))
    assert response.status_code == 200, response.data[:300]
    assert _birads(response.data) == [("Shape", "84360004"), ("Orientation", "111355"),
                                      ("Assessment Category", "BIRADS-3")]
    out = tmp_path / "out"
    export_busi(saved["data"], saved["worklist"], out, dicom_sr=True)
    (written,) = [path.read_bytes() for path in (out / "dicom_sr").iterdir()]
    _same_but_stamps(pydicom.dcmread(io.BytesIO(response.data)),
                     pydicom.dcmread(io.BytesIO(written)))
    # A version saved without them has none.
    assert _birads(_client(saved).get(_sr_url(saved["sha"]["dicom"], 2)).data) == []


def test_an_assessed_reading_with_no_outline_nor_label_gets_its_sr_link(saved):
    store = AnnotationStore(saved["data"])
    # Dr Cy assessed the uploaded DICOM (no spacing) BI-RADS 1, with no outline or label.
    _save(store, saved["upload"], mask=np.zeros((16, 20), bool), worklist_path=None,
          name="upload.dcm", annotator="Dr Cy", label=None, day=3,
          descriptors={"assessment": "1"})
    page, rows = _page_rows(saved)
    api = f"/api/saved/{saved['sha']['upload']}/2"
    assert rows[("upload.dcm", 2)] == (f"[SEG]({api}/dicom-seg) · [SR]({api}/dicom-sr)",
                                       page.DICOM_LINKS)
    response = _client(saved).get(_sr_url(saved["sha"]["upload"], 2))
    assert response.status_code == 200, response.data[:300]
    assert _birads(response.data) == [("Assessment Category", "BIRADS-1")]
