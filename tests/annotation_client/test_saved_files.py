"""A saved version's stored SVG and PNG mask: ``GET /api/saved/<sha256>/<version>/svg``
and ``.../mask``, and the Saved page's *Files* column linking them (audit 1006 F4).

Before, the page offered *Open* and, for DICOM, *SEG · SR*; from another workstation a
saved outline was reachable only by opening the version and downloading the Annotate
page's drawing of it, not the stored file. The versions are saved as the Annotate page
saves them (:class:`AnnotationStore` saves of :func:`build_record` records, the SVG and
PNG the vectorizer makes), and every answer is compared with the file on disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import numpy as np
import pytest
from _dash_helpers import api_error as _error
from _dash_helpers import saved_link_cells, wait_for
from image_samples import png_bytes

import vectorizer
from annotation_client import AnnotationStore, build_record, create_app
from annotation_client._api import SVG_POLICY
from annotation_client._measurements import summarize

pytestmark = pytest.mark.usefixtures("an_app_exists")

USER = "X-Forwarded-User"
ADA, BO, CHAIR = ({USER: name} for name in ("Dr Ada", "Dr Bo", "Dr Chair"))
BLINDED = {"ANNOTATOR_HEADER": USER, "BLINDED_READING": True, "REVIEWERS": "Dr Chair"}
KINDS = ("svg", "mask")


def _lesion(shift: int = 0) -> np.ndarray:
    mask = np.zeros((16, 20), bool)
    mask[4:11, 5 + shift:14 + shift] = True
    mask[6:8, 8 + shift:10 + shift] = False  # a hole: a subpath of its own
    return mask


def _save(store, data, *, mask, name, worklist_path=None, annotator="Dr Ada", day=1,
          keep=False) -> str:
    sha = hashlib.sha256(data).hexdigest()
    record = build_record(
        image={"sha256": sha, "name": name, "width": 20, "height": 16,
               "worklist_path": worklist_path},
        annotator=annotator, final_mask=mask, final_label="benign",
        saved_at=dt.datetime(2026, 12, day, 9, 0, tzinfo=dt.UTC),
        measurements=summarize(mask),
    )  # fmt: skip
    store.save(sha, svg=vectorizer.mask_to_svg(mask), mask_png=vectorizer.mask_to_png(mask),
               record=record, source=data if keep else None, source_name=name if keep else None)
    return sha


@pytest.fixture
def saved(tmp_path):
    """A worklist image saved by Dr Ada (v1) and Dr Bo (v2), and an upload of a name
    that is not ASCII, kept, saved by Dr Ada."""
    worklist, data_dir = tmp_path / "worklist", tmp_path / "data"
    (worklist / "study").mkdir(parents=True)
    grey = (np.arange(16 * 20).reshape(16, 20) % 200).astype(np.uint8)
    still = png_bytes(grey)
    (worklist / "study" / "left breast.png").write_bytes(still)
    store = AnnotationStore(data_dir)
    left = _save(store, still, mask=_lesion(), name="left breast.png",
                 worklist_path="study/left breast.png")
    _save(store, still, mask=_lesion(2), name="left breast.png",
          worklist_path="study/left breast.png", annotator="Dr Bo", day=2)
    upload = _save(store, png_bytes(255 - grey), mask=_lesion(3), name="Brust_ö.png", keep=True)
    return {"worklist": worklist, "data": data_dir, "sha": {"left": left, "upload": upload}}


def _app(saved, **config):
    return create_app({"DATA_DIR": saved["data"], "WORKLIST_DIR": saved["worklist"],
                       "MODEL_SERVER_URL": "http://127.0.0.1:9", **config})


def _client(saved, **config):
    return _app(saved, **config).server.test_client()


def _url(sha: str, version: int, kind: str) -> str:
    return f"/api/saved/{sha}/{version}/{kind}"


def _stored(saved, sha: str, version: int, kind: str) -> bytes:
    end = ".svg" if kind == "svg" else "_mask.png"
    return (saved["data"] / sha / f"v{version:03d}{end}").read_bytes()


def test_a_versions_svg_and_mask_are_the_stored_files_byte_for_byte(saved):
    client = _client(saved)
    sha = saved["sha"]["left"]
    for version in (1, 2):
        svg = client.get(_url(sha, version, "svg"))
        assert svg.status_code == 200, svg.data[:300]
        assert svg.data == _stored(saved, sha, version, "svg")
        # As is: no charset added, an SVG's own XML declaration says its encoding.
        assert svg.headers["Content-Type"] == "image/svg+xml"
        assert svg.headers["Content-Disposition"] == (
            f"attachment; filename=\"left breast_v00{version}.svg\"; "
            f"filename*=UTF-8''left%20breast_v00{version}.svg")
        assert svg.headers["Content-Security-Policy"] == SVG_POLICY
        assert svg.headers["Cache-Control"] == "private, no-store"  # a patient's data
        mask = client.get(_url(sha, version, "mask"))
        assert mask.status_code == 200, mask.data[:300]
        assert mask.data == _stored(saved, sha, version, "mask")
        assert mask.headers["Content-Type"] == "image/png"
        assert mask.headers["Content-Disposition"].startswith(
            f'attachment; filename="left breast_v00{version}_mask.png"')
        assert mask.headers["Cache-Control"] == "private, no-store"
    # Each version its own outline: Dr Bo's v2 is shifted 2 pixels.
    np.testing.assert_array_equal(vectorizer.png_to_mask(mask.data), _lesion(2))
    np.testing.assert_array_equal(vectorizer.svg_to_mask(svg.data.decode()), _lesion(2))
    # A name in another script: the header's ASCII name stands in, filename* is exact.
    upload = client.get(_url(saved["sha"]["upload"], 1, "mask"))
    assert upload.headers["Content-Disposition"] == (
        "attachment; filename=\"Brust___v001_mask.png\"; "
        "filename*=UTF-8''Brust_%C3%B6_v001_mask.png")


def test_an_svg_not_in_utf_8_is_served_as_stored(saved):
    """A file converted or restored elsewhere, whose XML declaration says its encoding."""
    sha = saved["sha"]["left"]
    path = saved["data"] / sha / "v001.svg"
    text = path.read_text(encoding="utf-8").replace("<svg", "<!-- Größe --><svg", 1)
    data = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + text.encode("latin-1")
    path.write_bytes(data)
    response = _client(saved).get(_url(sha, 1, "svg"))
    assert response.status_code == 200
    assert response.data == data
    assert response.headers["Content-Type"] == "image/svg+xml"


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_version_image_or_parameter_is_refused(saved, kind):
    client = _client(saved)
    sha = saved["sha"]["left"]
    assert "no saved version 3" in _error(client.get(_url(sha, 3, kind)), 404, "not_found")
    _error(client.get(_url("ab" * 32, 1, kind)), 404, "not_found")
    _error(client.get(_url("not-a-sha", 1, kind)), 404, "not_found")
    _error(client.get(_url(sha, 0, kind)), 404, "not_found")
    _error(client.get(f"/api/saved/{sha}/one/{kind}"), 404, "not_found")
    _error(client.get(_url(sha, 1, kind) + "?as=zip"), 400, "bad_parameter")
    _error(client.post(_url(sha, 1, kind)), 405, "method_not_allowed")


def test_the_api_index_names_the_svg_and_mask_routes(saved):
    message = _error(_client(saved).get(f"/api/saved/{saved['sha']['left']}/1/svgz"), 404,
                     "not_found")
    assert "GET /api/saved/<image_sha256>/<version>/svg, " in message
    assert "GET /api/saved/<image_sha256>/<version>/mask, " in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_gone_from_beside_its_record_is_404_naming_it(saved, kind):
    sha = saved["sha"]["left"]
    name = "v001.svg" if kind == "svg" else "v001_mask.png"
    (saved["data"] / sha / name).unlink()
    client = _client(saved)
    message = _error(client.get(_url(sha, 1, kind)), 404, "not_found")
    assert f"{name} is not beside its record" in message
    assert str(saved["data"]) not in message
    # The version's other file is still there, and served.
    other = "mask" if kind == "svg" else "svg"
    assert client.get(_url(sha, 1, other)).data == _stored(saved, sha, 1, other)


def test_a_file_that_cannot_be_read_is_409(saved):
    sha = saved["sha"]["left"]
    path = saved["data"] / sha / "v001_mask.png"
    path.unlink()
    path.mkdir()  # read_bytes() fails, and not as "not found" (root reads any mode)
    message = _error(_client(saved).get(_url(sha, 1, "mask")), 409, "file_unreadable")
    assert "(v001_mask.png) cannot be read" in message
    assert str(saved["data"]) not in message


def test_a_version_with_a_damaged_record_still_has_its_files(saved):
    sha = saved["sha"]["left"]
    (saved["data"] / sha / "v001.json").write_text("{cut short", encoding="utf-8")
    client = _client(saved)
    for kind in KINDS:
        response = client.get(_url(sha, 1, kind))
        assert response.status_code == 200, response.data[:300]
        assert response.data == _stored(saved, sha, 1, kind)
        # The record names the image; unread, the name is the generic one.
        assert 'filename="image_v001' in response.headers["Content-Disposition"]


@pytest.mark.parametrize("kind", KINDS)
def test_under_blinded_reading_a_reader_gets_only_their_own_versions_files(saved, kind):
    client = _client(saved, **BLINDED)
    sha = saved["sha"]["left"]
    assert client.get(_url(sha, 1, kind), headers=ADA).data == _stored(saved, sha, 1, kind)
    message = _error(client.get(_url(sha, 1, kind), headers=BO), 403, "forbidden")
    assert "another reader's" in message
    _error(client.get(_url(sha, 2, kind), headers=ADA), 403, "forbidden")
    assert client.get(_url(sha, 2, kind), headers=BO).status_code == 200
    # A reviewer gets every save; nobody signed in, nothing.
    assert client.get(_url(sha, 1, kind), headers=CHAIR).status_code == 200
    _error(client.get(_url(sha, 1, kind)), 401, "not_signed_in")
    # Not one's own and not saved are told apart only for whoever may see both.
    _error(client.get(_url(sha, 3, kind), headers=ADA), 404, "not_found")


# --------------------------------------------------------------------------- the Saved page


def _page_rows(saved, **config):
    from annotation_client.pages import saved as page

    app = _app(saved, **config)
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = page.show_saved(True, None, None, "__any__", False)
    return page, {(row["image"], row["version"]): (row["files"], tip.get("files"))
                  for row, tip in zip(data, tooltips, strict=True)}


def _links(sha: str, version: int, kinds=KINDS) -> str:
    text = {"svg": "SVG", "mask": "PNG"}
    return " · ".join(f"[{text[k]}](/api/saved/{sha}/{version}/{k})" for k in kinds)


def test_the_saved_page_links_every_versions_svg_and_mask(saved):
    page, rows = _page_rows(saved)
    left, upload = saved["sha"]["left"], saved["sha"]["upload"]
    assert rows == {
        ("study/left breast.png", 1): (_links(left, 1), page.FILES_SAID),
        ("study/left breast.png", 2): (_links(left, 2), page.FILES_SAID),
        ("Brust_ö.png", 1): (_links(upload, 1), page.FILES_SAID),
    }
    # A file gone: the other one's link, and the cell says which is missing.
    (saved["data"] / left / "v002.svg").unlink()
    # A damaged record: its files are still there, and linked.
    (saved["data"] / left / "v001.json").write_text("{cut", encoding="utf-8")
    _, rows = _page_rows(saved)
    assert rows[("study/left breast.png", 2)] == (
        _links(left, 2, ["mask"]), page.FILES_SAID + page.FILES_GONE.format("v002.svg"))
    assert rows[("study/left breast.png", 1)] == (_links(left, 1), page.FILES_SAID)
    # A row whose record is not in this data folder (another client's, on a shared
    # index): nothing to link, and the cell says why.
    assert page._files_tooltip({}, (upload, 1)) == {"files": page.NO_FILES}
    row = {"image_sha256": upload, "version": 1}
    assert page._file_links(row, "/", {}) == ""


def test_under_blinded_reading_the_page_links_the_readers_own_files(saved):
    from annotation_client.pages import saved as page

    app = _app(saved, **BLINDED)
    with app.server.test_request_context("/_dash-update-component", headers=BO):
        data, *_ = page.show_saved(True, None, None, "__any__", False)
    left = saved["sha"]["left"]
    assert [(row["version"], row["files"]) for row in data] == [(2, _links(left, 2))]


@pytest.mark.browser
def test_the_svg_and_png_links_download_the_stored_files(dash_duo, saved, tmp_path):
    from selenium.webdriver.common.by import By

    from annotation_client import ids

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dash_duo.start_server(_app(saved))
    dash_duo.driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/saved")

    def file_cells() -> dict[str, list]:
        return saved_link_cells(dash_duo, "files")

    # Latest version of each image: the worklist image's v2 (Dr Bo's), the upload's v1.
    wait_for(dash_duo, lambda: len(file_cells()) == 2, 20, "the table did not fill")
    left, upload = saved["sha"]["left"], saved["sha"]["upload"]
    assert {image: tuple(cell) for image, cell in file_cells().items()} == {
        "study/left breast.png": ("SVG · PNG", [_url(left, 2, "svg"), _url(left, 2, "mask")]),
        "Brust_ö.png": ("SVG · PNG", [_url(upload, 1, "svg"), _url(upload, 1, "mask")]),
    }
    header = dash_duo.find_element(f"#{ids.SAVED_TABLE} th[data-dash-column='files']")
    assert header.text.strip() == "Files"
    page = dash_duo.driver.current_url
    for sha, version, name in ((left, 2, "left breast"), (upload, 1, "Brust_ö")):
        for kind, end in (("svg", ".svg"), ("mask", "_mask.png")):
            href = _url(sha, version, kind)
            link = dash_duo.driver.find_element(
                By.CSS_SELECTOR, f"td[data-dash-column='files'] a[href='{href}']")
            assert link.is_displayed()
            _hover_uncovered(dash_duo, link)
            link.click()
            target = downloads / f"{name}_v{version:03d}{end}"
            deadline = time.monotonic() + 20
            while not target.is_file() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert target.is_file(), sorted(p.name for p in downloads.iterdir())
            assert target.read_bytes() == _stored(saved, sha, version, kind)
            # Downloaded, not opened: the page stays.
            assert dash_duo.driver.current_url == page


#: Whether an element is the top one at its own centre: nothing (a tooltip) covers it.
_ON_TOP = """
const box = arguments[0].getBoundingClientRect();
const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
return arguments[0].contains(top);
"""


def _hover_uncovered(dash_duo, element) -> None:
    """Move the pointer onto ``element`` as a user does before a click, and wait until
    no tooltip covers it: the table's tooltip of the cell clicked before (they stay
    while hovered) can lie over the next row's link until the pointer leaves that cell,
    and a click sent at once landed on the tooltip."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(dash_duo.driver).move_to_element(element).perform()
    wait_for(dash_duo, lambda: dash_duo.driver.execute_script(_ON_TOP, element), 10,
             "a tooltip stays over the link")
