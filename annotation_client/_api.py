"""The client's small read-only HTTP API over the index of saved annotations.

``GET /api/saved`` answers what the Saved page shows, for scripts: audit
reports, exports to a PACS, dashboards. Parameters (all optional):

- ``annotator``: exact name;
- ``label``: ``normal``, ``benign``, ``malignant`` or ``none``;
- ``assessment``: a BI-RADS category, ``0`` to ``6`` (``4A``, ``4B``, ``4C``; either
  case), or ``none``;
- ``latest``: ``1`` for each image's highest version only (default ``0``); with
  ``annotator``, that annotator's highest version of each image they saved;
- ``limit``: 1 to 5000 rows, newest first (default 500; for ``csv``, every matching
  row, streamed page by page);
- ``offset``: skip this many of the newest matching rows first (default 0): the rows
  after a page are at ``offset`` + its ``limit``;
- ``format``: ``json`` (default) or ``csv``.

Nothing is cut silently. The JSON answer holds, besides ``rows`` and ``summary`` (of
every matching version, not only the rows returned), ``total`` (every matching version,
damaged ones too), ``offset``, ``limit``, ``truncated`` (matching rows remain after
these) and ``next`` (the path and query of the next page, or null). Both formats say
the total in an ``X-Total-Count`` header, and a cut answer its next page in a ``Link``
header (``rel="next"``). A save made while a script pages shifts the rows by one: each
version is one ``(image_sha256, version)``.

``GET /api/agreement`` answers how far readers agree on the images two or more
of them saved (:mod:`annotation_client._agreement`): Dice of their outlines,
label agreement, Fleiss' and Cohen's kappa, and which versions it left out
(``dependent``; ``left_out``: those whose record file is damaged). No parameters.

``GET /api/progress`` answers how far each reader, and the study, has got through
the worklist's images, or the index's without a worklist
(:mod:`annotation_client._progress`): per reader the images read and saved and
the last save; overall the images with a read, with two or more, and whose readers'
labels disagree with no version adjudicating them. No parameters.

``GET /api/saved/<image_sha256>/<version>/dicom-seg`` answers one saved version's
outline as a DICOM Segmentation, when its image was opened from a DICOM file the client
can still read back (:func:`annotation_client._export.version_seg`: the file the export
writes for it with ``--dicom-seg``), as an attachment (``application/dicom``). It is the
Saved page's *SEG* link (in its *DICOM* column). No parameters. 404 (``not_found``) for
a version that is not saved; 409 when its record is damaged (``damaged_record``), its
image cannot be read back (``image_unavailable``: an upload whose copy was not kept or
was pruned, a worklist file gone or changed) or its outline cannot be
(``outline_unavailable``); 422 when its image is no DICOM (``not_dicom``: a PNG or JPEG)
or a DICOM that cannot have a SEG (``seg_unavailable``: several frames, no UIDs).

``GET /api/saved/<image_sha256>/<version>/dicom-sr`` answers the same version's
measurements as a DICOM Structured Report (a TID 1500 measurement report, at the pixel
spacing the version states: :func:`annotation_client._export.version_sr`, the file the
export writes for it with ``--dicom-sr``), as an attachment (``application/dicom``). It
is the Saved page's *SR* link. No parameters. The SEG's statuses and codes, and 422
when the version states no pixel spacing (``no_pixel_spacing``: neither its file nor
the reader gave one, so its measurements have no unit) or its DICOM cannot have an SR
(``sr_unavailable``: several frames, no UIDs, an empty outline).

``GET /api/saved/<image_sha256>/<version>/svg`` and ``.../mask`` answer the version's
stored outline (``vNNN.svg``, ``image/svg+xml``) and mask (``vNNN_mask.png``, 0/255 at
the image's size, ``image/png``), the files byte for byte, as attachments named after
the image (``left breast_v002.svg``, ``left breast_v002_mask.png``). They are the Saved
page's *SVG* and *PNG* links (in its *Files* column). No parameters. 404 (``not_found``)
for a version that is not saved, or one whose file is not beside its record (removed
or lost: restore it from a backup); 409 (``file_unreadable``) for a file the client
cannot read. A version whose record is damaged still has its files.

The listings each read again, first, the record files of versions marked damaged whose
file changed or that were last read a minute ago or more
(:meth:`~annotation_client._database.AnnotationIndex.recheck_damaged`): one readable
again is listed as it says, without a restart.

Under blinded reading (``SONOTRACE_BLINDED_READING``) a reader gets only their
own saves: without ``annotator``, or with their own name; another name is 403
(``forbidden``), and a request the sign-in proxy named nobody in is 401
(``not_signed_in``). Reviewers (``SONOTRACE_REVIEWERS``) get every save. A reader
gets the DICOM SEG and SR, the SVG and the mask of their own versions only, as *Load
it to revise* loads only those: another reader's version is 403.
``/api/agreement`` and ``/api/progress`` compare readers, so under blinded reading
only reviewers get them (403 for a reader).

Errors are JSON ``{"error": {"code", "message"}}``: 400 for a bad parameter,
401 or 403 as above, 404, 409 or 422 for a version's file as above, 503 when the index
cannot be read (or, for ``/api/progress``, the worklist folder cannot be listed:
``worklist_unavailable``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import flask
from werkzeug.exceptions import HTTPException

from ._agreement import index_agreement
from ._config import ClientConfig
from ._database import (
    ASSESSMENTS,
    MAX_LIMIT,
    AnnotationIndex,
    IndexUnavailable,
    csv_lines,
)
from ._export import NoVersionDicom, version_seg, version_sr
from ._progress import WorklistUnavailable, index_progress
from ._readers import BLINDED_NOTE, visible_annotator
from ._record import LABELS
from ._signin import SignInError, checked_name, shown_text
from ._storage import AnnotationStore

logger = logging.getLogger(__name__)

_TRUE = ("1", "true", "yes")
_LIMIT = re.compile(r"[0-9]{1,6}")
_OFFSET = re.compile(r"[0-9]{1,12}")
_FALSE = ("0", "false", "no", "")


def _under_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _error(status: int, code: str, message: str):
    return flask.jsonify({"error": {"code": code, "message": message}}), status


#: The parameters /api/saved takes (README); any other is refused.
SAVED_PARAMETERS = ("annotator", "label", "assessment", "latest", "limit", "offset",
                    "format")


#: The HTTP status of each reason a version has no DICOM SEG or SR
#: (NoVersionDicom.reason): the version's files or image are not as they should be (409),
#: or its image (or, for the SR, its record's spacing) can have none.
DICOM_STATUS = {"damaged": (409, "damaged_record"),
                "image_unavailable": (409, "image_unavailable"),
                "outline_unavailable": (409, "outline_unavailable"),
                "not_dicom": (422, "not_dicom"),
                "seg_unavailable": (422, "seg_unavailable"),
                "no_spacing": (422, "no_pixel_spacing"),
                "sr_unavailable": (422, "sr_unavailable")}

#: A saved version's DICOM downloads: ``{kind: (what, how it is made, file name end)}``,
#: each ``GET /api/saved/<image_sha256>/<version>/<kind>``.
VERSION_DICOM = {"dicom-seg": ("DICOM SEG", version_seg, "_seg.dcm"),
                 "dicom-sr": ("DICOM SR", version_sr, "_sr.dcm")}
#: A saved version's stored files: ``{kind: (what, where the store keeps it, content
#: type, file name end)}``, each ``GET /api/saved/<image_sha256>/<version>/<kind>``.
VERSION_FILES = {"svg": ("SVG", AnnotationStore.svg_path, "image/svg+xml", ".svg"),
                 "mask": ("PNG mask", AnnotationStore.mask_path, "image/png", "_mask.png")}
#: An SVG is served under a policy of its own: opened rather than saved (a browser
#: shows a same-origin SVG as a page), any script in it (a file restored from
#: elsewhere) runs nowhere.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def seg_path(image_sha256: str, version: int, kind: str = "dicom-seg") -> str:
    """The path of a saved version's DICOM SEG, or with ``kind`` its SR (``"dicom-sr"``),
    SVG (``"svg"``) or mask (``"mask"``) (``GET``; under the app's own prefix).

    >>> seg_path("ab" * 32, 3).endswith("/3/dicom-seg")
    True
    >>> seg_path("ab" * 32, 3, "mask").endswith("/3/mask")
    True
    """
    if kind not in VERSION_DICOM and kind not in VERSION_FILES:
        raise ValueError(f"kind must be one of {', '.join([*VERSION_DICOM, *VERSION_FILES])}")
    return f"/api/saved/{image_sha256}/{int(version)}/{kind}"


def sr_path(image_sha256: str, version: int) -> str:
    """The path of a saved version's DICOM SR (see :func:`seg_path`).

    >>> sr_path("ab" * 32, 3).endswith("/3/dicom-sr")
    True
    """
    return seg_path(image_sha256, version, "dicom-sr")


def seg_file_name(image_name, version: int, end: str = "_seg.dcm") -> str:
    """The download's file name: the image's name, its version, ``end``.

    >>> seg_file_name("scans/left breast.dcm", 2)
    'left breast_v002_seg.dcm'
    >>> seg_file_name("", 2, "_sr.dcm")
    'image_v002_sr.dcm'
    """
    stem = Path(str(image_name or "")).stem.strip()
    # Quotes, slashes and controls out of a header value (a name is typed or a file's).
    stem = "".join(c for c in shown_text(stem) if c.isprintable() and c not in '"\\/')
    return f"{stem or 'image'}_v{int(version):03d}{end}"


def register(server: flask.Flask, index: AnnotationIndex, config: ClientConfig) -> None:
    """Add ``GET /api/saved``, ``GET /api/agreement``, ``GET /api/progress`` and a saved
    version's ``GET /api/saved/<image_sha256>/<version>/dicom-seg``, ``.../dicom-sr``,
    ``.../svg`` and ``.../mask`` to ``server``.

    Parameters
    ----------
    server : flask.Flask
        The client's Flask server.
    index : AnnotationIndex
        Where the saved versions are listed.
    config : ClientConfig
        The client's settings: its data directory (the masks reader agreement
        reads), its worklist (which reading progress counts), and who may see which
        saves (blinded reading).
    """

    @server.after_request
    def api_answers_are_private(response: flask.Response) -> flask.Response:
        # Patients' data, and under a sign-in an answer that depends on the user: no
        # cache between the browser and the client may keep it or hand it to another.
        if _under_api(flask.request.path):
            response.headers["Cache-Control"] = "private, no-store"
            if config.annotator_header:
                response.vary.add(config.annotator_header)
        return response

    @server.errorhandler(HTTPException)
    def api_errors_are_json(exc: HTTPException):
        # Only under /api/: the Dash pages keep Flask's own answers.
        if not _under_api(flask.request.path):
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        body, status = _error(exc.code or 500, code, exc.description or exc.name)
        if status == 405 and getattr(exc, "valid_methods", None):
            # RFC 9110: a 405 names the methods the resource takes. Sorted: werkzeug
            # lists them from a set, in an order that changes with each start.
            body.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return body, status

    @server.get("/api")
    @server.get("/api/")
    @server.get("/api/<path:_rest>")
    def unknown(_rest=None):
        # Without this, Dash's page routing would answer an unknown API path with HTML
        # (and /api itself with the page, as a 200).
        return _error(404, "not_found", f"no API endpoint {flask.request.path}; the API is "
                      "GET /api/saved, GET /api/saved/<image_sha256>/<version>/dicom-seg, "
                      "GET /api/saved/<image_sha256>/<version>/dicom-sr, "
                      "GET /api/saved/<image_sha256>/<version>/svg, "
                      "GET /api/saved/<image_sha256>/<version>/mask, "
                      "GET /api/agreement and GET /api/progress")

    def unknown_parameters(known: tuple[str, ...]):
        # A filter guessed (image=, sha256=, version=) and silently ignored would hand
        # back every row as if filtered.
        args = flask.request.args
        extra = sorted(set(args) - set(known))
        if extra:
            takes = f"it takes {', '.join(known)}" if known else "it takes no parameter"
            return _error(400, "bad_parameter", f"unknown parameter {', '.join(extra)} for "
                          f"{flask.request.path}: {takes}")
        # label=benign&label=malignant read as benign alone: the same silent filter.
        twice = sorted(name for name in args if len(args.getlist(name)) > 1)
        if twice:
            return _error(400, "bad_parameter", f"{', '.join(twice)} given more than once: "
                          "each parameter takes one value")
        return None

    def signed_in_reader():
        """``(reader, None)`` for a request without parameters from whoever may see its
        answer (None: every reader's work), or ``(None, refusal)``."""
        refused = unknown_parameters(())
        if refused is not None:
            return None, refused
        try:
            return visible_annotator(config, flask.request.headers), None
        except SignInError as exc:
            return None, _error(401, "not_signed_in", str(exc))

    def refused_to_readers(what: str):
        # Both compare readers: under blinded reading, a reader would see the others'.
        reader, refused = signed_in_reader()
        if refused is not None:
            return refused
        if reader is not None:
            return _error(403, "forbidden",
                          f"{BLINDED_NOTE} {what} shows other readers' work: ask a reviewer.")
        return None

    @server.get("/api/agreement")
    def agreement():
        refused = refused_to_readers("Reader agreement")
        if refused is not None:
            return refused
        try:
            result = index_agreement(index, AnnotationStore(config.data_dir))
        except IndexUnavailable as exc:
            logger.error("/api/agreement: %s", exc.logged())
            return _error(503, "index_unavailable", f"{exc}; the client's log says why")
        return flask.jsonify(result)

    @server.get("/api/progress")
    def progress():
        refused = refused_to_readers("Reading progress")
        if refused is not None:
            return refused
        try:
            result = index_progress(index, AnnotationStore(config.data_dir),
                                    config.worklist_dir, config.max_upload_bytes)
        except IndexUnavailable as exc:
            logger.error("/api/progress: %s", exc.logged())
            return _error(503, "index_unavailable", f"{exc}; the client's log says why")
        except WorklistUnavailable as exc:
            # The folder's path is the log's (and the settings'), not a caller's.
            logger.error("/api/progress: %s: %s", exc, exc.cause)
            return _error(503, "worklist_unavailable", f"{exc}; the client's log says why")
        return flask.jsonify(result)

    def not_saved(image_sha256: str, version: int):
        return _error(404, "not_found", f"no saved version {version} of image "
                      f"{image_sha256[:64]}")

    def saved_version(image_sha256: str, version: int):
        """``(store, None)`` when the request may have this saved version's files, or
        ``(None, refusal)``: as the SEG, the SR, the SVG and the mask are refused alike."""
        reader, refused = signed_in_reader()
        if refused is not None:
            return None, refused
        store = AnnotationStore(config.data_dir, index)
        try:
            # Whose versions the reader may open, as Load it to revise and Compare ask.
            visible = store.versions(image_sha256, reader)
        except ValueError:  # not a SHA-256
            return None, not_saved(image_sha256, version)
        if version not in visible:
            if reader is not None and version in store.versions(image_sha256):
                return None, _error(403, "forbidden", f"{BLINDED_NOTE} Version {version} "
                                    "of this image is another reader's.")
            return None, not_saved(image_sha256, version)
        return store, None

    def download(store, image_sha256: str, version: int, data: bytes, content_type: str,
                 end: str, headers: dict | None = None) -> flask.Response:
        """``data`` as an attachment named after the version's image. ``content_type`` is
        sent as it is: an SVG's charset is its XML declaration's, not always UTF-8."""
        try:
            name = store.load_record(image_sha256, version)["image"].get("name")
        except (OSError, ValueError, KeyError, AttributeError):  # read a moment ago
            name = None
        return flask.Response(data, content_type=content_type, headers={
            "Content-Disposition": _attachment(seg_file_name(name, version, end)),
            **(headers or {})})

    @server.get("/api/saved/<image_sha256>/<int:version>/<any('dicom-seg', 'dicom-sr'):kind>")
    def saved_dicom(image_sha256: str, version: int, kind: str):
        # One route, so the SEG and the SR are refused and answered alike.
        what, make, end = VERSION_DICOM[kind]
        store, refused = saved_version(image_sha256, version)
        if refused is not None:
            return refused
        try:
            dicom = make(store, config.worklist_dir, image_sha256, version)
        except FileNotFoundError:  # removed since it was listed
            return not_saved(image_sha256, version)
        except NoVersionDicom as exc:
            status, code = DICOM_STATUS[exc.reason]
            return _error(status, code, f"no {what} of version {version}: {exc}")
        return download(store, image_sha256, version, dicom, "application/dicom", end)

    @server.get("/api/saved/<image_sha256>/<int:version>/<any('svg', 'mask'):kind>")
    def saved_file(image_sha256: str, version: int, kind: str):
        # The stored file itself, byte for byte: what a script or another workstation
        # takes the version's outline from, not the Annotate page's drawing of it.
        what, where, content_type, end = VERSION_FILES[kind]
        store, refused = saved_version(image_sha256, version)
        if refused is not None:
            return refused
        path = where(store, image_sha256, version)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return _error(404, "not_found", f"version {version} of image {image_sha256} has "
                          f"no {what}: {path.name} is not beside its record (removed or lost; "
                          "restore it from a backup)")
        except OSError as exc:
            # The data folder's path is the log's, not a caller's.
            logger.error("%s of %s v%d not read: %s", what, image_sha256[:12], version, exc)
            return _error(409, "file_unreadable", f"the {what} of version {version} "
                          f"({path.name}) cannot be read: {exc.strerror or exc}")
        headers = {"Content-Security-Policy": SVG_POLICY} if kind == "svg" else None
        return download(store, image_sha256, version, data, content_type, end, headers)

    @server.get("/api/saved")
    def saved():
        refused = unknown_parameters(SAVED_PARAMETERS)
        if refused is not None:
            return refused
        args = flask.request.args
        latest = args.get("latest", "0").strip().lower()
        if latest not in _TRUE + _FALSE:
            return _error(400, "bad_parameter", "latest must be 0 or 1")
        fmt = args.get("format", "json").strip().lower()
        if fmt not in ("json", "csv"):
            return _error(400, "bad_parameter", "format must be json or csv")
        # A CSV is a whole export: without a limit, every matching row.
        raw_limit = args.get("limit", "" if fmt == "csv" else "500").strip()
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if ("limit" in args or fmt == "json") and (
                not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT):
            return _error(400, "bad_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit) if raw_limit else None
        raw_offset = args.get("offset", "0").strip()
        if not _OFFSET.fullmatch(raw_offset):
            return _error(400, "bad_parameter", "offset must be a whole number of 0 or more")
        offset = int(raw_offset)
        label = args.get("label", "").strip().lower() or None
        if label not in (None, "none", *LABELS):
            return _error(400, "bad_parameter", f"label must be none or one of {', '.join(LABELS)}")
        assessment = args.get("assessment", "").strip().upper() or None
        if assessment == "NONE":
            assessment = "none"
        if assessment not in (None, "none", *ASSESSMENTS):
            return _error(
                400, "bad_parameter",
                f"assessment must be none or one of {', '.join(ASSESSMENTS)}",
            )
        # Names are recorded stripped, so " Dr Ada " asks for Dr Ada.
        annotator = args.get("annotator", "").strip() or None
        if annotator is not None:
            try:
                # As recorded: composed Unicode (NFC), so a decomposed spelling finds it.
                annotator = checked_name(annotator, "annotator")
            except SignInError as exc:
                return _error(400, "bad_parameter", str(exc))
        try:
            reader = visible_annotator(config, flask.request.headers)
        except SignInError as exc:
            return _error(401, "not_signed_in", str(exc))
        if reader is not None:
            if annotator not in (None, reader):
                return _error(403, "forbidden", f"{BLINDED_NOTE} Ask without annotator=.")
        index.recheck_damaged(config.data_dir)  # never raises: the query says if it fails
        filters = {"annotator": annotator, "reader": reader, "final_label": label,
                   "assessment": assessment, "latest_only": latest in _TRUE}
        try:
            # The first page before the summary: a save between the two then counts in
            # the total, and the next page holds it, rather than a row left unsaid.
            rows = index.query(**filters, offset=offset, limit=min(limit or MAX_LIMIT, MAX_LIMIT))
            summary = index.summary(**filters)
        except IndexUnavailable as exc:
            # The database's own message names its host, user and SQL: the log's, not a caller's.
            logger.error("/api/saved: %s", exc.logged())
            return _error(503, "index_unavailable", f"{exc}; the client's log says why")
        total = summary["versions"] + summary["damaged"]
        after = offset + len(rows)
        cut = limit is not None and len(rows) == limit and after < total
        following = _page_path(after) if cut else None
        headers = {"X-Total-Count": str(total)}
        if following:
            headers["Link"] = f'<{following}>; rel="next"'
        if fmt == "csv":
            lines = csv_lines(rows if limit is not None
                              else _every_row(index, filters, offset, rows))
            return flask.Response(lines, mimetype="text/csv", headers=headers | {
                "Content-Disposition": 'attachment; filename="sonotrace_saved.csv"'})
        summary = {key: summary[key] for key in SUMMARY_KEYS}
        return flask.jsonify({"rows": rows, "summary": summary, "total": total,
                              "offset": offset, "limit": limit, "truncated": cut,
                              "next": following}), headers


#: The keys of /api/saved's ``summary`` (:func:`~annotation_client._database.summarize`'s).
SUMMARY_KEYS = ("versions", "images", "annotators", "mean_dice", "edited",
                "label_agreement", "damaged")


def _page_path(offset: int) -> str:
    """This request's path and query (under the app's prefix) at ``offset``."""
    query = [(name, value) for name, value in flask.request.args.items() if name != "offset"]
    return (f"{flask.request.script_root}{flask.request.path}?"
            f"{urlencode(query + [('offset', offset)])}")


def _every_row(index: AnnotationIndex, filters: dict, offset: int, first: list[dict]):
    """``first`` (the page at ``offset``), then every matching row after it, a page of
    :data:`MAX_LIMIT` at a time: an export of any size holds one page in memory, and the
    index is read in short transactions, never holding a save up while the download runs.

    A save made meanwhile is listed first and shifts the rest down: the rows of the page
    before that come again are left out. A failure mid-way raises, so the download ends
    as failed (the connection is closed without the end of its chunked body) rather
    than as a file silently cut short.
    """
    page = shown = first
    while True:
        yield from shown
        if len(page) < MAX_LIMIT:
            return
        offset += len(page)
        sent = {(row["image_sha256"], row["version"]) for row in page}
        try:
            page = index.query(**filters, offset=offset, limit=MAX_LIMIT)
        except IndexUnavailable as exc:
            logger.error("/api/saved: CSV cut short at row %d: %s", offset, exc.logged())
            raise
        shown = [row for row in page if (row["image_sha256"], row["version"]) not in sent]


def _attachment(name: str) -> str:
    """A Content-Disposition header downloading as ``name``, in any script (RFC 6266)."""
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    return f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{quote(name, safe="")}'
