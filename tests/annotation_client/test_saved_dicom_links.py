"""The Saved page's *DICOM* links decide as the SEG and SR routes decide, from what they read.

The page reads each DICOM's header as the routes do (however long it is before
``NumberOfFrames``) and each version's record (not the index's columns), and checks them
with the routes' own rules (:func:`annotation_client._dicom_seg.check_header`,
:func:`annotation_client._export.sr_refusal`): it links what the routes serve, and a cell
without a link says the route's reason. Versions are saved as the Annotate page saves them,
over DICOM files in a worklist; the routes are asked through Flask's test client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import numpy as np
import pydicom
import pytest
import sqlalchemy as sa
from image_samples import dicom_bytes

import vectorizer
from annotation_client import AnnotationStore, build_record, create_app
from annotation_client._measurements import summarize

pytestmark = pytest.mark.usefixtures("an_app_exists")

STUDY, SERIES = "1.2.826.0.1.3680043.8.498.11", "1.2.826.0.1.3680043.8.498.12"
SPACING = (0.1, 0.2)
FRAMES_SAID = ("the DICOM file holds 3 frames: a DICOM SEG or SR is written for "
               "single-frame images only (the outline is on the first frame)")


def _grey() -> np.ndarray:
    return (np.arange(16 * 20, dtype=np.uint16).reshape(16, 20) % 200).astype(np.uint8)


def _lesion() -> np.ndarray:
    mask = np.zeros((16, 20), bool)
    mask[4:11, 5:14] = True
    return mask


def _dicom(frames: int = 1, *, private: int = 0, comments: int = 0, preamble: bool = True,
           **elements) -> bytes:
    """A DICOM of ``frames`` frames, with a private block of ``private`` bytes (0009,xx10)
    and ``comments`` characters of ImageComments (0020,4000), both before NumberOfFrames."""
    pixels = _grey() if frames == 1 else np.stack([_grey()] * frames)
    data = dicom_bytes(pixels, StudyInstanceUID=STUDY,
                       SeriesInstanceUID=pydicom.uid.generate_uid(), **elements)
    ds = pydicom.dcmread(io.BytesIO(data))
    if private:
        ds.private_block(0x0009, "SONOTRACE TEST", create=True).add_new(
            0x10, "OB", bytes(range(256)) * (private // 256))
    if comments:
        ds.ImageComments = "x" * comments
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    return data if preamble else data[128:]  # "DICM" first, as some writers save it


def _frames_at(data: bytes) -> int:
    """Where NumberOfFrames (0028,0008) is in ``data`` (explicit VR little endian)."""
    return data.index(b"\x28\x00\x08\x00IS")


def _save(store, data, name, *, mask=None, label="malignant", spacing=SPACING, day=1,
          upload=False) -> str:
    """Save one version of ``data``: opened from the worklist as ``name``, or with
    ``upload`` uploaded under that name, its copy not kept."""
    sha = hashlib.sha256(data).hexdigest()
    mask = _lesion() if mask is None else mask
    spaced = {} if spacing is None else {"pixel_spacing_mm": list(spacing),
                                         "pixel_spacing_source": "file"}
    record = build_record(
        image={"sha256": sha, "name": name, "width": 20, "height": 16,
               "worklist_path": None if upload else name, **spaced},
        annotator="Dr Ada", final_mask=mask, final_label=label, ai_mask=None, model=None,
        saved_at=dt.datetime(2026, 12, day, 9, 0, tzinfo=dt.UTC),
        measurements=summarize(mask, spacing),
    )  # fmt: skip
    store.save(sha, svg=vectorizer.mask_to_svg(mask), mask_png=vectorizer.mask_to_png(mask),
               record=record)
    return sha


class Listing:
    """One client over a worklist: its Saved page's *DICOM* cells and its routes."""

    def __init__(self, tmp_path):
        self.worklist, self.data = tmp_path / "worklist", tmp_path / "data"
        self.worklist.mkdir()
        self.store = AnnotationStore(self.data)
        self.sha: dict[str, str] = {}

    def add(self, name: str, data: bytes, **save) -> str:
        (self.worklist / name).write_bytes(data)
        self.sha[name] = _save(self.store, data, name, **save)
        return self.sha[name]

    def app(self):
        return create_app({"DATA_DIR": self.data, "WORKLIST_DIR": self.worklist,
                           "MODEL_SERVER_URL": "http://127.0.0.1:9"})

    @staticmethod
    def cells(app) -> dict[tuple[str, int], tuple[str, str]]:
        """``{(image, version): (cell, hover text)}`` of the page's *DICOM* column."""
        from annotation_client.pages import saved as page

        with app.server.test_request_context("/_dash-update-component"):
            data, tooltips, *_ = page.show_saved(True, None, None, "__any__", False)
        return {(row["image"], row["version"]): (row["dicom"], tip.get("dicom"))
                for row, tip in zip(data, tooltips, strict=True)}


def _links(sha: str, version: int = 1, sr: bool = True) -> str:
    api = f"/api/saved/{sha}/{version}"
    return f"[SEG]({api}/dicom-seg)" + (f" · [SR]({api}/dicom-sr)" if sr else "")


def _answer(client, sha: str, version: int, kind: str) -> tuple[int, str]:
    response = client.get(f"/api/saved/{sha}/{version}/{kind}")
    message = response.get_json()["error"]["message"] if response.is_json else ""
    return response.status_code, message


# ------------------------------------------------------------------------ the header


def test_a_cine_loop_whose_header_is_longer_than_4_kb_gets_no_link_and_the_routes_reason(
    tmp_path
):
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    # A vendor's private block, then a long comment: NumberOfFrames far past 4 KB.
    cine = _dicom(3, private=8192, comments=5000)
    assert _frames_at(cine) > 8192 + 4096
    sha = listing.add("cine.dcm", cine)
    # The same without a preamble ("DICM" first), which the page reads as the route does.
    bare = _dicom(3, private=8192, preamble=False)
    assert bare[:4] == b"DICM" and _frames_at(bare) > 4096
    bare_sha = listing.add("bare.dcm", bare)
    app = listing.app()
    cells = Listing.cells(app)
    assert cells[("cine.dcm", 1)][0] == cells[("bare.dcm", 1)][0] == ""
    said = page.DICOM_REFUSED.format(FRAMES_SAID)
    assert cells[("cine.dcm", 1)][1] == cells[("bare.dcm", 1)][1] == said
    # The route refuses them, for the same reason.
    client = app.server.test_client()
    for image in (sha, bare_sha):
        for kind, what in (("dicom-seg", "DICOM SEG"), ("dicom-sr", "DICOM SR")):
            status, message = _answer(client, image, 1, kind)
            assert status == 422
            assert message == f"no {what} of version 1: " + FRAMES_SAID.replace(
                "DICOM SEG or SR", what)


def test_a_still_image_whose_header_is_longer_than_4_kb_keeps_its_links(tmp_path):
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    still = _dicom(1, private=8192, comments=5000, NumberOfFrames=1)
    assert _frames_at(still) > 4096
    sha = listing.add("still.dcm", still)
    app = listing.app()
    assert Listing.cells(app)[("still.dcm", 1)] == (_links(sha), page.DICOM_LINKS)
    client = app.server.test_client()
    for kind in ("dicom-seg", "dicom-sr"):
        assert _answer(client, sha, 1, kind)[0] == 200


def test_the_header_is_read_at_the_cost_of_its_elements_not_of_its_bytes(
    tmp_path, monkeypatch
):
    """A private block of megabytes before NumberOfFrames is skipped, not read."""
    import builtins

    from annotation_client._dicom_seg import HEADER_DEFER_BYTES, header_refusal

    path = tmp_path / "cine.dcm"
    path.write_bytes(_dicom(3, private=4 << 20))
    read = []
    real_open = builtins.open

    class Counting(io.FileIO):
        def readinto(self, buffer):
            count = super().readinto(buffer)
            read.append(count or 0)
            return count

    def counting_open(file, mode="r", *args, **kwargs):
        if str(file) == str(path):
            return io.BufferedReader(Counting(file, "rb"))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert header_refusal(path, "DICOM SEG or SR") == FRAMES_SAID
    monkeypatch.undo()
    assert 0 < sum(read) < 4 * HEADER_DEFER_BYTES


def _corrupt_files() -> dict[str, bytes]:
    """Files that look like a DICOM (its magic) and whose header cannot be read whole."""
    good = _dicom(1, private=8192, NumberOfFrames=1)
    frames = _frames_at(good)
    # An element whose length runs past the end of the file: the private block's.
    overlong = bytearray(good)
    block = overlong.index(b"\x09\x00\x10\x10OB")
    overlong[block + 8:block + 12] = (0xFFFFFFF0).to_bytes(4, "little")
    # A number of frames that is no number.
    bad_frames = bytearray(good)
    bad_frames[frames + 8:frames + 10] = b"x "
    return {
        "junk.dcm": bytes(128) + b"DICM" + bytes(range(256)) * 24,
        "cut.dcm": good[:frames - 100],
        "overlong.dcm": bytes(overlong),
        "frames.dcm": bytes(bad_frames),
    }


def test_a_corrupt_dicom_gets_no_link_and_says_why_and_the_page_still_lists(tmp_path):
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    still = listing.add("still.dcm", _dicom(1))
    for name, data in _corrupt_files().items():
        listing.add(name, data)
    app = listing.app()
    cells = Listing.cells(app)
    assert cells[("still.dcm", 1)] == (_links(still), page.DICOM_LINKS)
    client = app.server.test_client()
    assert {name: cells[(name, 1)][0] for name in _corrupt_files()} == dict.fromkeys(
        _corrupt_files(), "")
    for name in _corrupt_files():
        assert cells[(name, 1)][1] == page.DICOM_REFUSED.format(
            "the image is not a DICOM file that can be read"), name
        # The route refuses them too (their pixels, which it decodes, or their header).
        for kind in ("dicom-seg", "dicom-sr"):
            assert _answer(client, listing.sha[name], 1, kind)[0] in (409, 422), name


# ------------------------------------------------------------------------ the record


def _index_spacing(app, sha: str, version: int, value) -> None:
    """Set the index's spacing columns of a version, as an index that copied another
    record (or none) would hold them; the record file is left as it is."""
    from annotation_client._app import get_index
    from annotation_client._database import SavedRow

    with app.server.app_context():
        engine = get_index().engine
    with engine.begin() as conn:
        conn.execute(sa.update(SavedRow).where(SavedRow.image_sha256 == sha,
                                               SavedRow.version == version)
                     .values(pixel_spacing_row_mm=value, pixel_spacing_col_mm=value))


def test_the_sr_link_follows_the_record_not_the_index_columns(tmp_path):
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    spaced = listing.add("spaced.dcm", _dicom(1))
    bare = listing.add("bare.dcm", _dicom(1), spacing=None)
    app = listing.app()
    # The index says the opposite of each record: the link follows the record, as the
    # route does.
    _index_spacing(app, spaced, 1, None)
    _index_spacing(app, bare, 1, 0.3)
    cells = Listing.cells(app)
    assert cells[("spaced.dcm", 1)] == (_links(spaced), page.DICOM_LINKS)
    assert cells[("bare.dcm", 1)] == (_links(bare, sr=False), page.NO_SR_SPACING)
    client = app.server.test_client()
    assert _answer(client, spaced, 1, "dicom-sr")[0] == 200
    assert _answer(client, bare, 1, "dicom-sr")[0] == 422


def test_an_sr_the_route_refuses_for_its_record_is_not_linked(tmp_path):
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    # No outline and no label, at a spacing: nothing to report.
    nothing = listing.add("nothing.dcm", _dicom(1), mask=np.zeros((16, 20), bool), label=None)
    # A record whose spacing was edited to one the measurements refuse (the index holds
    # any above 0).
    edited = listing.add("edited.dcm", _dicom(1))
    record_path = listing.data / edited / "v001.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record["image"]["pixel_spacing_mm"] = [50.0, 50.0]
    record_path.write_text(json.dumps(record), encoding="utf-8")
    app = listing.app()
    cells = Listing.cells(app)
    client = app.server.test_client()
    for name, sha in (("nothing.dcm", nothing), ("edited.dcm", edited)):
        status, message = _answer(client, sha, 1, "dicom-sr")
        assert status == 422
        reason = message.removeprefix("no DICOM SR of version 1: ")
        assert cells[(name, 1)][0] == _links(sha, sr=False), name
        assert cells[(name, 1)][1] == page.NO_SR.format(reason), name
        assert _answer(client, sha, 1, "dicom-seg")[0] == 200


# ------------------------------------------------------------------------ both


def test_the_page_links_exactly_what_the_routes_serve(tmp_path):
    """Every listed version, each kind: a link where the route answers a file, none
    where it refuses."""
    listing = Listing(tmp_path)
    listing.add("still.dcm", _dicom(1))
    listing.add("long_still.dcm", _dicom(1, private=8192, NumberOfFrames=1))
    listing.add("no_spacing.dcm", _dicom(1), spacing=None)
    listing.add("normal.dcm", _dicom(1), mask=np.zeros((16, 20), bool), label="normal",
                spacing=None)
    listing.add("nothing.dcm", _dicom(1), mask=np.zeros((16, 20), bool), label=None)
    # A lesion reading with no outline: its SR reports the label, and no SEG says that
    # no lesion was found (audit 916 F1).
    unoutlined = listing.add("unoutlined.dcm", _dicom(1), mask=np.zeros((16, 20), bool))
    listing.add("unoutlined_unspaced.dcm", _dicom(1), mask=np.zeros((16, 20), bool),
                spacing=None, label="benign")
    listing.add("cine.dcm", _dicom(3))
    listing.add("long_cine.dcm", _dicom(3, private=8192, comments=5000))
    no_uid = pydicom.dcmread(io.BytesIO(_dicom(1)))
    del no_uid.StudyInstanceUID
    out = io.BytesIO()
    no_uid.save_as(out, enforce_file_format=True)
    listing.add("no_uid.dcm", out.getvalue())
    listing.add("plain.png", vectorizer.mask_to_png(_lesion()))
    for name, data in _corrupt_files().items():
        listing.add(name, data)
    outline_gone = listing.add("outline_gone.dcm", _dicom(1))
    record_gone = listing.add("record_gone.dcm", _dicom(1))
    app = listing.app()
    # Since the client started (the index still lists them): a version's outline and
    # mask files both removed, and another's record.
    for name in ("v001.svg", "v001_mask.png"):
        (listing.data / outline_gone / name).unlink()
    (listing.data / record_gone / "v001.json").unlink()
    cells = Listing.cells(app)
    client = app.server.test_client()
    assert len(cells) == len(listing.sha)
    for name, sha in listing.sha.items():
        link = cells[(name, 1)][0]
        for kind in ("dicom-seg", "dicom-sr"):
            status, message = _answer(client, sha, 1, kind)
            assert (f"/{kind})" in link) == (status == 200), (name, kind, status, message)
    assert cells[("unoutlined.dcm", 1)][0] == f"[SR](/api/saved/{unoutlined}/1/dicom-sr)"
    assert "No SEG: it is labelled malignant but outlines nothing" in cells[
        ("unoutlined.dcm", 1)][1]


def test_a_version_whose_outline_or_record_is_gone_gets_no_link_and_says_why(tmp_path):
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    outline_gone = listing.add("outline_gone.dcm", _dicom(1))
    record_gone = listing.add("record_gone.dcm", _dicom(1))
    mask_gone = listing.add("mask_gone.dcm", _dicom(1))
    app = listing.app()
    for name in ("v001.svg", "v001_mask.png"):
        (listing.data / outline_gone / name).unlink()
    (listing.data / record_gone / "v001.json").unlink()
    (listing.data / mask_gone / "v001_mask.png").unlink()  # the outline is read instead
    cells = Listing.cells(app)
    assert cells[("outline_gone.dcm", 1)][0] == cells[("record_gone.dcm", 1)][0] == ""
    assert cells[("mask_gone.dcm", 1)] == (_links(mask_gone), page.DICOM_LINKS)
    client = app.server.test_client()
    status, message = _answer(client, outline_gone, 1, "dicom-seg")
    assert status == 409
    assert cells[("outline_gone.dcm", 1)][1] == page.DICOM_REFUSED.format(
        message.removeprefix("no DICOM SEG of version 1: "))
    assert _answer(client, record_gone, 1, "dicom-seg")[0] == 404
    assert cells[("record_gone.dcm", 1)][1] == page.NO_RECORD
    assert _answer(client, mask_gone, 1, "dicom-sr")[0] == 200


def test_an_upload_without_a_kept_copy_links_the_worklist_file_that_holds_it(tmp_path):
    """Saved as an upload, its copy not kept (saved before copies were kept, or pruned),
    while a worklist file holds the same bytes: the routes read that file, found by its
    hash, and answer; so the page links them. An upload no worklist file holds is not
    linked, and its cell says why."""
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    data = _dicom()
    (listing.worklist / "study").mkdir()
    (listing.worklist / "study" / "IM0001.dcm").write_bytes(data)
    sha = _save(listing.store, data, "scan.dcm", upload=True)
    lost = _dicom(SOPInstanceUID=pydicom.uid.generate_uid())
    lost_sha = _save(listing.store, lost, "lost.dcm", upload=True)
    assert listing.store.source_path(sha) is None
    app = listing.app()
    client = app.server.test_client()
    assert _answer(client, sha, 1, "dicom-seg")[0] == 200
    assert _answer(client, sha, 1, "dicom-sr")[0] == 200
    assert _answer(client, lost_sha, 1, "dicom-seg")[0] != 200
    cells = listing.cells(app)
    assert cells[("scan.dcm", 1)] == (_links(sha), page.DICOM_LINKS)
    assert cells[("lost.dcm", 1)] == ("", page.NO_DICOM_SOURCE)


def test_an_upload_held_by_a_file_past_the_lists_cap_is_linked_as_the_routes_serve_it(
        tmp_path):
    """The routes look for an upload's bytes in the whole worklist; the page looked among
    the first ``MAX_ENTRIES`` files only, and said "no file" of one the routes served.
    Both now ask :func:`annotation_client._worklist.holders`."""
    from annotation_client import _worklist
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    for n in range(_worklist.MAX_ENTRIES):  # sorted before "study/": the list's files
        (listing.worklist / f"a{n:05d}.png").write_bytes(b"%d" % n)
    data = _dicom()
    (listing.worklist / "study").mkdir()
    (listing.worklist / "study" / "IM0001.dcm").write_bytes(data)
    sha = _save(listing.store, data, "scan.dcm", upload=True)
    app = listing.app()
    assert _answer(app.server.test_client(), sha, 1, "dicom-seg")[0] == 200
    assert listing.cells(app)[("scan.dcm", 1)] == (_links(sha), page.DICOM_LINKS)
    assert _worklist.holders(listing.worklist, [sha], data_dir=listing.data) == {
        sha: "study/IM0001.dcm"}


def test_a_worklist_image_moved_past_the_lists_cap_is_found_as_the_routes_find_it(tmp_path):
    """A worklist image renamed since it was saved, to a file past the first
    ``MAX_ENTRIES``: the routes found it (the whole folder), while the Saved page's *Open*
    and *DICOM* links and the Annotate page's ``?open=…&expect=`` link looked among the
    first ``MAX_ENTRIES`` files only, so the page gave no DICOM link and the Open link
    named the old path. All now ask :func:`annotation_client._worklist.locate`."""
    from annotation_client import _worklist
    from annotation_client.pages import annotate
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    sha = listing.add("scan.dcm", _dicom())
    for n in range(_worklist.MAX_ENTRIES):  # sorted before "study/": the list's files
        (listing.worklist / f"a{n:05d}.png").write_bytes(b"%d" % n)
    (listing.worklist / "study").mkdir()
    (listing.worklist / "scan.dcm").rename(listing.worklist / "study" / "IM0001.dcm")
    app = listing.app()
    assert _answer(app.server.test_client(), sha, 1, "dicom-seg")[0] == 200
    assert listing.cells(app)[("scan.dcm", 1)] == (_links(sha), page.DICOM_LINKS)
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = page.show_saved(True, None, None, "__any__", False)
        request, *_rest = annotate.open_linked("scan.dcm", None, "", sha)
    assert data[0]["open"] == page.open_link("study/IM0001.dcm", "/", expect=sha, version=1)
    assert "study/IM0001.dcm" in tooltips[0]["open"]
    assert request["path"] == "study/IM0001.dcm"


def test_an_upload_no_file_holds_is_not_looked_for_again_until_the_folder_changes(
        tmp_path, monkeypatch):
    """Every Saved page render looked for the uploads whose copy was not kept (each one
    under ``SONOTRACE_KEEP_UPLOADS=false``) in the whole worklist: a listing and a hash
    look-up (a read, past the cache's size) of every file, again and again, for an image
    no file holds. "Not found" is now kept while no folder of the worklist changes; a
    file added later is found all the same."""
    import os
    import threading
    import time

    from annotation_client import _app, _worklist
    from annotation_client.pages import saved as page

    listing = Listing(tmp_path)
    (listing.worklist / "study").mkdir()
    for n in range(20):
        (listing.worklist / "study" / f"a{n:02d}.png").write_bytes(b"%d" % n)
    lost = _dicom()
    sha = _save(listing.store, lost, "lost.dcm", upload=True)
    when = time.time() - 60  # not changed in the last seconds: see _worklist._RACY_NS
    for folder in (listing.worklist / "study", listing.worklist):
        os.utime(folder, (when, when))
    counts = {"listings": 0, "hashes": 0}
    scandir, hashed = os.scandir, _worklist._CACHE.sha256

    def counted_scandir(path="."):
        counts["listings"] += os.fspath(path) == os.fspath(listing.worklist.resolve())
        return scandir(path)

    def counted_sha256(path, stat=None):
        counts["hashes"] += 1
        return hashed(path, stat)

    app = listing.app()
    for thread in threading.enumerate():  # the start's hashing of the list, not counted
        if thread.name == _app.WARMUP_THREAD:
            thread.join(30)
    monkeypatch.setattr(_worklist.os, "scandir", counted_scandir)
    monkeypatch.setattr(_worklist._CACHE, "sha256", counted_sha256)
    said = ("", page.NO_DICOM_SOURCE)
    assert listing.cells(app)[("lost.dcm", 1)] == said
    assert counts["hashes"] == 20  # every file looked at (the listing may be the start's)
    monkeypatch.setattr(_worklist, "LISTING_KEPT_S", 0.0)  # no listing kept from before
    for _ in range(2):
        counts.update(listings=0, hashes=0)
        assert listing.cells(app)[("lost.dcm", 1)] == said
        assert _answer(app.server.test_client(), sha, 1, "dicom-seg")[0] != 200
        assert counts == {"listings": 0, "hashes": 0}
    # A file that arrives, in a folder under the worklist's, is looked at.
    (listing.worklist / "study" / "IM0001.dcm").write_bytes(lost)
    assert listing.cells(app)[("lost.dcm", 1)] == (_links(sha), page.DICOM_LINKS)
    assert _answer(app.server.test_client(), sha, 1, "dicom-seg")[0] == 200
