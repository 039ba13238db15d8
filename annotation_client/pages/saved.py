"""The Saved page (``/saved``): every saved annotation version, from the index.

A radiologist checks what was saved and by whom; whoever audits the AI sees
how far the saved outlines and labels are from the model's (Dice AI vs final,
share of outlines edited, label agreement). The rows come from the database
index (:mod:`annotation_client._database`); the files in the data directory
stay the record, and the page says where each version's record is.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import NamedTuple
from urllib.parse import quote, urlencode

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, callback, clientside_callback, dash_table, dcc, html
from dash.exceptions import PreventUpdate

from annotation_client import _agreement, _progress, _readers, _signin, _views, _worklist, ids
from annotation_client._api import seg_path, sr_path
from annotation_client._app import get_config, get_index, get_reader, get_store
from annotation_client._database import (
    ASSESSMENTS,
    MAX_READ_IMAGES,
    IndexUnavailable,
    summarize,
)
from annotation_client._dicom_seg import header_refusal
from annotation_client._export import outline_refusal, sr_refusal, unoutlined_seg
from annotation_client._record import ASSESSMENT_MEANINGS, LABELS
from vectorizer._dicomfile import looks_like_dicom

logger = logging.getLogger(__name__)

dash.register_page(
    __name__, path="/saved", name="Saved", title="SonoTrace · Saved annotations", order=10
)

#: Why a version has no *Open* link (hover text of its empty cell).
NOT_KEPT = ("Uploaded, and no copy of the image is kept (saved before copies were kept, "
            "SONOTRACE_KEEP_UPLOADS is off, or a retention rule removed it): upload the "
            "image again to revise it.")
NO_WORKLIST = "From a worklist, but this client has none (SONOTRACE_WORKLIST_DIR)."
#: The *DICOM* cell's hover text: what its links give, or why there are none.
_SEG_SAID = "SEG: the outline as a DICOM Segmentation of its DICOM image"
_REFUSED_SAID = "(if its image or outline no longer reads back whole, the link says why)"
DICOM_LINKS = (f"{_SEG_SAID}; SR: its measurements (long and perpendicular axes, area, in "
               "mm), label and BI-RADS reading as a DICOM Structured Report; as the export's "
               "--dicom-seg and --dicom-sr "
               f"write them {_REFUSED_SAID}.")
NO_SR_SPACING = (f"{_SEG_SAID}, as the export's --dicom-seg writes it {_REFUSED_SAID}. No SR: "
                 "the version states no pixel spacing, so its measurements have no unit (open "
                 "it, set the pixel spacing and save it again).")
#: The hover text of a SEG without an SR the route refuses for another reason than the
#: spacing (``{}``: the route's reason, such as an empty outline without a label).
NO_SR = f"{_SEG_SAID}, as the export's --dicom-seg writes it {_REFUSED_SAID}. No SR: {{}}."
#: The hover text of an SR without a SEG (``{}``: why, a lesion reading with no outline).
NO_SEG = ("SR: its label and BI-RADS reading as a DICOM Structured Report, as the export's "
          f"--dicom-sr writes it {_REFUSED_SAID}. No SEG: {{}}.")
NOT_DICOM = ("A PNG or JPEG image: a DICOM SEG or SR is made only for an image opened from a "
             "DICOM file.")
NO_DICOM_SOURCE = ("Its image cannot be read back here (an upload whose copy was not kept and "
                   "that no worklist file holds, or a worklist file this client cannot find): "
                   "no DICOM SEG or SR.")
DICOM_DAMAGED = "Its record file is damaged: no DICOM SEG or SR."
NO_RECORD = ("Its record file is not in this client's data folder (removed since, or another "
             "data folder's version): no DICOM SEG or SR.")
#: The *Files* cell's hover text: what its links give, a file gone, or why there are none.
FILES_SAID = ("SVG: the saved outline; PNG: the saved mask (0/255, the image's size): the "
              "files as they were saved, byte for byte.")
FILES_GONE = " Not linked: {} cannot be found beside the record (restore it from a backup)."
NO_FILES = ("Its record file is not in this client's data folder (removed since, or another "
            "data folder's version): no SVG or PNG.")
#: The hover text of a version whose DICOM the routes refuse (``{}``: their reason, such as
#: a cine loop's frames, as the link would have answered it).
DICOM_REFUSED = "No DICOM SEG or SR: {}."

#: The rows the page shows at most; the CSV download (GET /api/saved) holds every one.
PAGE_LIMIT = 2000
ANY = "__any__"

#: (column id, header) of the table, left to right.
COLUMNS = (
    ("saved_at", "Saved (UTC)"),
    ("annotator", "Annotator"),
    ("image", "Image"),
    ("open", "Open"),
    # The version's own files (SVG, PNG mask), then the DICOM made from them.
    ("files", "Files"),
    # The SEG and the SR in one column: two links side by side keep the table narrow.
    ("dicom", "DICOM"),
    ("version", "Version"),
    ("final_label", "Final label"),
    ("birads_assessment", "BI-RADS"),
    ("ai_label", "AI label"),
    ("ai_p_malignant", "AI P(malignant)"),
    ("dice_ai_vs_final", "Dice AI vs final"),
    ("edited", "Outline edited"),
    ("regions", "Regions"),
    # In mm (the image had a pixel spacing) and in pixels, apart: one column of both
    # units sorted 6.2 mm below 70 px.
    ("long_axis_mm", "Long axis (mm)"),
    ("perpendicular_axis_mm", "Perpendicular axis (mm)"),
    ("long_axis_px", "Long axis (px)"),
    ("perpendicular_axis_px", "Perpendicular axis (px)"),
    # Each model's own version: the outline and the AI label of one reading can come from
    # two (the model server upgraded between them), and the label's is its P(malignant)'s;
    # so can the boxes that re-segmented parts of the outline (Box re-segment).
    ("model_version", "Outline model"),
    ("classification_model_version", "AI label model"),
    ("box_model_versions", "Box models"),
    ("record_status", "Record file"),
)


#: Decimals shown of the numeric columns: a Dice of 1 reads "1.000", as in the summary
#: and the save's message, and the column's figures line up. The data keep the numbers.
DECIMALS = {"ai_p_malignant": 3, "dice_ai_vs_final": 3, "long_axis_mm": 1,
            "perpendicular_axis_mm": 1, "long_axis_px": 1, "perpendicular_axis_px": 1}


def _column(key: str, name: str) -> dict:
    """The table's column ``key``: links as markdown, numbers with fixed decimals."""
    if key in ("open", "files", "dicom"):
        return {"id": key, "name": name, "presentation": "markdown"}
    if key in DECIMALS:
        return {"id": key, "name": name, "type": "numeric",
                "format": dash_table.Format.Format(
                    precision=DECIMALS[key], scheme=dash_table.Format.Scheme.fixed)}
    return {"id": key, "name": name}


def _hidden_label(text: str, component_id: str) -> html.Label:
    return html.Label(text, htmlFor=component_id, className="visually-hidden")


def layout(**_query):
    """The Saved page: filters, an agreement summary and the table of versions."""
    label_options = [{"label": "Any final label", "value": ANY}] + [
        {"label": label.capitalize(), "value": label} for label in LABELS
    ] + [{"label": "No final label", "value": "none"}]
    # Each category with its meaning, as the Annotate page offers them.
    assessment_options = [{"label": "Any BI-RADS", "value": ANY}] + [
        {"label": f"BI-RADS {code} — {ASSESSMENT_MEANINGS[code]}", "value": code}
        for code in ASSESSMENTS
    ] + [{"label": "No BI-RADS assessment", "value": "none"}]
    filters = dbc.Row(
        [
            dbc.Col(
                [
                    # Each filter is named by its label for screen readers (sonotrace.js
                    # adds it to the dropdown's own name, which is only its value).
                    _hidden_label("Annotator", ids.SAVED_ANNOTATOR),
                    dcc.Dropdown(
                        id=ids.SAVED_ANNOTATOR,
                        placeholder="Any annotator",
                        clearable=True,
                    ),
                ],
                md=2,
            ),
            dbc.Col(
                [
                    _hidden_label("Final label", ids.SAVED_LABEL),
                    dcc.Dropdown(
                        id=ids.SAVED_LABEL, options=label_options, value=ANY, clearable=False
                    ),
                ],
                md=2,
            ),
            dbc.Col(
                [
                    _hidden_label("BI-RADS assessment", ids.SAVED_ASSESSMENT),
                    dcc.Dropdown(
                        id=ids.SAVED_ASSESSMENT, options=assessment_options, value=ANY,
                        clearable=False,
                    ),
                ],
                md=3,
            ),
            dbc.Col(
                dbc.Switch(
                    id=ids.SAVED_LATEST,
                    label="Latest version of each image only",
                    value=True,
                    class_name="mt-2",
                ),
                md=2,
            ),
            dbc.Col(
                [
                    dbc.Button(
                        "Refresh", id=ids.SAVED_REFRESH, color="secondary", size="sm",
                        class_name="me-2",
                    ),
                    # A link to the API's CSV, which streams every matching row: a
                    # callback's download is held whole, in the client and the browser.
                    # "download": an error is a failed download, never the tab left.
                    dbc.Button("Download CSV", id=ids.SAVED_CSV_BUTTON, color="primary",
                               size="sm", href=csv_href(None, ANY, True),
                               external_link=True, download="sonotrace_saved.csv"),
                ],
                md=3,
                class_name="text-md-end mt-1",
            ),
        ],
        class_name="g-2 mb-2",
    )
    table = dash_table.DataTable(
        id=ids.SAVED_TABLE,
        columns=[_column(key, name) for key, name in COLUMNS],
        # The Open links load the Annotate page in this tab, where the workspace is
        # (the browser asks first if it holds unsaved work).
        markdown_options={"link_target": "_self"},
        data=[],
        sort_action="native",
        page_size=25,
        style_table={"overflowX": "auto"},
        style_cell={
            "fontSize": "0.85rem", "padding": "4px 8px", "textAlign": "left",
            "fontFamily": "inherit",
        },
        style_header={"fontWeight": "600"},
        # A damaged record's cell stands out: its row's blanks are not "no label".
        style_data_conditional=[{
            "if": {"filter_query": '{record_status} contains "damaged"',
                   "column_id": "record_status"},
            "color": "#842029", "backgroundColor": "#f8d7da", "fontWeight": "600",
        }, {
            "if": {"filter_query": '{record_status} contains "missing"',
                   "column_id": "record_status"},
            "color": "#842029", "backgroundColor": "#f8d7da", "fontWeight": "600",
        }],
        tooltip_duration=None,
    )
    follows = _follows_the_sign_in()
    return html.Div(
        [
            dcc.Store(id=ids.SAVED_PAGE_LOAD, data=True),
            # follow_the_sign_in: a blinded page is drawn afresh for a new reader.
            dcc.Store(id=ids.SAVED_SHOWN_FOR, data=_reader_now() if follows else None),
            dcc.Store(id=ids.SAVED_AFRESH),
            dcc.Interval(id=ids.SAVED_SIGNIN_POLL, interval=SIGNIN_POLL_MS,
                         disabled=not follows),
            # The page's one h1, at the size the page was laid out with.
            html.H1("Saved annotations", className="h4 mt-2"),
            html.P(
                "Each save is a version; nothing is overwritten. The outline, masks and "
                "record of each version are files in the data directory.",
                className="text-muted small",
            ),
            filters,
            html.Div(id=ids.SAVED_ALERT),
            html.Div(id=ids.SAVED_SUMMARY, className="mb-2"),
            dbc.Button(
                "Reader agreement",
                id=ids.SAVED_AGREEMENT_BUTTON,
                color="secondary",
                outline=True,
                size="sm",
                # Hidden until show_agreement_button knows who is asking.
                class_name=AGREEMENT_UNCHECKED,
                title="Outline Dice and label agreement between readers, on the images "
                "two or more of them saved",
            ),
            dbc.Button(
                "Reading progress",
                id=ids.SAVED_PROGRESS_BUTTON,
                color="secondary",
                outline=True,
                size="sm",
                # Hidden until show_progress_button knows who is asking.
                class_name=PROGRESS_UNCHECKED,
                title="Per reader, the images read and saved and the last save; how many "
                "images have a read, two or more, or readers' labels that disagree",
            ),
            dcc.Loading(html.Div(id=ids.SAVED_AGREEMENT), type="dot"),
            dcc.Loading(html.Div(id=ids.SAVED_PROGRESS), type="dot"),
            table,
        ]
    )


def _filters(annotator, label, latest, reader=None, assessment=ANY) -> dict:
    # Under blinded reading the reader's own name replaces any other the request
    # names: the dropdown offers no other, but a request can carry anything.
    return {
        "annotator": reader or annotator or None,
        "reader": reader,
        "final_label": None if label in (None, ANY) else label,
        "assessment": None if assessment in (None, ANY) else assessment,
        "latest_only": bool(latest),
    }


def _fetch(annotator, label, latest, limit=PAGE_LIMIT, reader=None, assessment=ANY) -> list[dict]:
    # A damaged record whose file changed since, or was read a minute ago or more, is
    # read again first: a read error that passed needs no restart. Never raises.
    get_index().recheck_damaged(get_config().data_dir)
    return get_index().query(**_filters(annotator, label, latest, reader, assessment),
                             limit=limit)


def csv_href(annotator, label, latest, assessment=ANY) -> str:
    """The *Download CSV* link: ``GET /api/saved?format=csv`` with the page's filters,
    every matching row (under blinded reading the API keeps a reader to their own).

    >>> csv_href(None, ANY, True).endswith("/api/saved?latest=1&format=csv")
    True
    """
    query = {"annotator": annotator or None,
             "label": None if label in (None, ANY) else label,
             "assessment": None if assessment in (None, ANY) else assessment,
             "latest": "1" if latest else "0", "format": "csv"}
    path = dash.get_relative_path("/api/saved") if flask.has_request_context() else "/api/saved"
    return f"{path}?{urlencode({k: v for k, v in query.items() if v is not None})}"


def open_link(worklist_path: str, page: str = "/", expect: str | None = None,
              version: int | None = None) -> str:
    """The Markdown link that opens ``worklist_path`` on the Annotate page at ``page``.

    The path is percent-encoded whole (``/`` too), so no file name can end the
    link early or add a query parameter. ``expect``, the SHA-256 the version was
    saved under, goes with it (``&expect=``): the Annotate page can then tell a file
    that holds other bytes than those annotated (re-exported under the same name).
    ``version`` (``&version=``) is the saved version the page loads, rather than
    the image's latest: each row opens its own.
    """
    link = f"{page}?open={quote(worklist_path, safe='')}"
    if expect:
        link += f"&expect={quote(expect, safe='')}"
    return f"[Open]({link}{_version_query(version)})"


def kept_link(image_sha256: str, page: str = "/", version: int | None = None) -> str:
    """The Markdown link that opens the kept copy of an uploaded image on the Annotate
    page, and loads its saved ``version`` (else the latest)."""
    return f"[Open]({page}?saved={quote(image_sha256, safe='')}{_version_query(version)})"


def _version_query(version) -> str:
    return (f"&version={version}" if isinstance(version, int) and not isinstance(version, bool)
            and version > 0 else "")


def table_rows(
    rows: list[dict],
    annotate_page: str | None = None,
    kept: frozenset | set = frozenset(),
    worklist: bool = True,
    located: dict | None = None,
    dicom: dict | None = None,
    files: dict | None = None,
) -> list[dict]:
    """Index rows as the table shows them (rounded numbers, yes/no, the image's path).

    Parameters
    ----------
    rows : list of dict
        Rows as :meth:`AnnotationIndex.query` returns them.
    annotate_page : str, optional
        URL path of the Annotate page, which the *Open* links load; None, no links.
    kept : set of str
        SHA-256 of the uploaded images whose copy was kept with their versions:
        their versions get an *Open* link to it.
    worklist : bool
        Whether this client has a worklist: a version saved from the worklist
        then gets an *Open* link to its image.
    located : dict, optional
        ``{sha256: relative path}`` of the worklist images found where they are now
        (:func:`annotation_client._worklist.locate`): a version whose image was
        renamed or moved links to it there. An image not in it links to its
        recorded path.
    dicom : dict, optional
        ``{(sha256, version): DicomCell}`` (:func:`_dicom_cells`): the versions whose
        cell offers it get a *SEG* link (``GET /api/saved/<sha256>/<version>/dicom-seg``)
        in the *DICOM* column, and an *SR* link beside it (``.../dicom-sr``). A version
        not in it has none.
    files : dict, optional
        ``{(sha256, version): kinds}`` (:func:`_downloadable`): the versions in it get
        an *SVG* link (``GET /api/saved/<sha256>/<version>/svg``) and a *PNG* link
        (``.../mask``) in the *Files* column, of the kinds (``"svg"``, ``"mask"``) whose
        file is there. A version not in it has none.
    """
    out = []
    for row in rows:
        path = row["worklist_path"]
        out.append(
            {
                "saved_at": row["saved_at"].replace("T", " ").removesuffix("Z"),
                "annotator": row["annotator"],
                # A worklist path says which study folder; an upload has only its name;
                # a damaged record never indexed, only its folder's hash.
                # Shown cleaned: a path's bidi override or line break (the name the
                # Annotate page recorded is cleaned already) reorders or splits the row.
                "image": _signin.shown_text(
                    path or row["image_name"] or row["image_sha256"][:12]),
                "open": _link(row, annotate_page, kept, worklist, located or {}),
                "files": _file_links(row, annotate_page, files or {}),
                "dicom": _dicom_links(row, annotate_page, dicom or {}),
                "version": row["version"],
                "final_label": row["final_label"] or "—",
                # "0" to "6" then "—": as text, the table sorts them in the scale's order.
                "birads_assessment": row["birads_assessment"] or "—",
                "ai_label": row["ai_label"] or "—",
                "ai_p_malignant": _rounded(row["ai_p_malignant"]),
                "dice_ai_vs_final": (None if row["dice_ai_vs_final"] is None
                                     else _views.shown_dice(row["dice_ai_vs_final"])),
                "edited": {True: "yes", False: "no", None: "—"}[row["edited"]],
                "regions": row["regions"],
                **size(row),
                "model_version": row["model_version"] or "—",
                "classification_model_version": row.get("classification_model_version") or "—",
                # Each box model's version once, joined by ", " (the index's text, as the
                # CSV gives it); "—" without a box, as the other model columns say none.
                "box_model_versions": row.get("box_model_versions") or "—",
                # Damaged: the record cannot be read, so the row's reading is blank.
                "record_status": f"damaged: {row['damaged']}" if row.get("damaged") else "ok",
                "record": row["record_path"],
            }
        )
    return out


def _link(row: dict, page: str | None, kept, worklist: bool, located: dict) -> str:
    if not page:
        return ""
    if row["worklist_path"]:
        if not worklist:
            return ""
        sha = row["image_sha256"]
        # The image's file now, found by its hash; else where it was, with the hash
        # expected, so that the Annotate page can say the file there is another.
        return open_link(located.get(sha, row["worklist_path"]), page, expect=sha,
                         version=row["version"])
    return (kept_link(row["image_sha256"], page, version=row["version"])
            if row["image_sha256"] in kept else "")


def _dicom_links(row: dict, page: str | None, dicom) -> str:
    """The Markdown links to a version's DICOM SEG and SR, as its :class:`DicomCell`
    offers them; "" when it has none to give."""
    cell = dicom.get((row["image_sha256"], row["version"]))
    if not page or cell is None or not (cell.seg or cell.sr):
        return ""
    # The API is beside the pages, under the same prefix ("/sonotrace/api/...").
    api = page.rstrip("/")
    sha, version = row["image_sha256"], row["version"]
    links = [f"[SEG]({api}{seg_path(sha, version)})"] if cell.seg else []
    if cell.sr:
        links.append(f"[SR]({api}{sr_path(sha, version)})")
    return " · ".join(links)


#: The *Files* column's links: (kind, as the link says it), left to right.
FILE_LINKS = (("svg", "SVG"), ("mask", "PNG"))


def _file_links(row: dict, page: str | None, files) -> str:
    """The Markdown links to a version's stored SVG and PNG mask, those it has."""
    kinds = files.get((row["image_sha256"], row["version"]))
    if not page or not kinds:
        return ""
    api = page.rstrip("/")  # beside the pages, under the same prefix
    sha, version = row["image_sha256"], row["version"]
    return " · ".join(f"[{text}]({api}{seg_path(sha, version, kind)})"
                      for kind, text in FILE_LINKS if kind in kinds)


class DicomCell(NamedTuple):
    """A version's *DICOM* cell: whether it links the SEG (``seg``) and the SR (``sr``),
    and its hover text (``said``): what they give, or why there is none."""

    seg: bool
    sr: bool
    said: str


def _dicom_cells(store, rows: list[dict], images: dict) -> dict[tuple[str, int], DicomCell]:
    """``{(sha256, version): DicomCell}`` of the listed versions, their images as
    :func:`_dicom_images` found them."""
    return {(row["image_sha256"], row["version"]):
            _dicom_cell(store, row, images.get(row["image_sha256"])) for row in rows}


def _dicom_cell(store, row: dict, image) -> DicomCell:
    """A version's *DICOM* cell, decided as the routes decide, from what they read.

    The image's file: its header, as :func:`_dicom_images` read it. The version: its
    record, read as the routes read it (not the index's columns, which only copy it,
    from whenever it was indexed), and checked by the SR route's own rules
    (:func:`annotation_client._export.sr_refusal`): its pixel spacing, final label and
    outline; and its outline and mask files, both gone refusing both
    (:func:`annotation_client._export.outline_refusal`). What only reading the image or
    the outline whole tells (its bytes changed since, pixels that cannot be decoded, an
    outline that does not read) the link still answers, as JSON.
    """
    if row.get("damaged"):
        return DicomCell(False, False, DICOM_DAMAGED)
    if image is not True:
        said = (NO_DICOM_SOURCE if image is None else NOT_DICOM if image is False
                else DICOM_REFUSED.format(image))
        return DicomCell(False, False, said)
    try:
        record = store.load_record(row["image_sha256"], row["version"])
    except FileNotFoundError:
        return DicomCell(False, False, NO_RECORD)
    except (OSError, ValueError):  # damaged (the index is told), or unreadable now
        return DicomCell(False, False, DICOM_DAMAGED)
    try:
        why = (outline_refusal(store, row["image_sha256"], row["version"])
               or sr_refusal(store, row["image_sha256"], row["version"], record))
    except OSError:  # the folder cannot be listed now: the link will say
        why = None
    final = record.get("final") if isinstance(record.get("final"), dict) else {}
    unoutlined = unoutlined_seg(record, final.get("empty") is not True)
    if unoutlined is not None:
        if why is None:
            return DicomCell(False, True, NO_SEG.format(unoutlined))
        return DicomCell(False, False, DICOM_REFUSED.format(f"{unoutlined}; and no SR: {why}"))
    if why is None:
        return DicomCell(True, True, DICOM_LINKS)
    if why.reason == "no_spacing":
        return DicomCell(True, False, NO_SR_SPACING)
    if why.reason == "sr_unavailable":
        return DicomCell(True, False, NO_SR.format(why))
    return DicomCell(False, False, DICOM_REFUSED.format(why))  # its SEG is refused too


def _dicom_images(config, store, rows: list[dict], located: dict) -> dict[str, bool | str | None]:
    """``{sha256: whether its file is a DICOM}`` of the rows' images; None for an image
    whose file this client cannot find (an upload not kept, a worklist file gone), and
    for a DICOM whose header the SEG and SR routes refuse (several frames, no UIDs, a
    header that cannot be read), their reason (:func:`_dicom_file`).

    The file looked at is the one the export reads (the kept copy of an upload, else
    the worklist file that holds its bytes, as ``_export._locate`` finds it; the
    worklist file where it is now), each image's once per listing, and its header
    only: a listing decodes no image. Its versions then get no link that would only
    lead to the route's refusal in place of the page, and their cell says why.
    """
    found: dict[str, bool | str | None] = {}
    kept = {}
    for row in rows:
        if not row["worklist_path"] and row["image_sha256"] not in kept:
            try:
                kept[row["image_sha256"]] = store.source_path(row["image_sha256"])
            except (OSError, ValueError):  # its folder cannot be read: as if none
                kept[row["image_sha256"]] = None
    # Uploads without a kept copy (saved before copies were kept, not kept, or pruned):
    # the routes read the worklist file that holds the same bytes, found by hash.
    in_worklist = _uploads_in_worklist(config, [sha for sha, path in kept.items()
                                                if path is None])
    for row in rows:
        sha = row["image_sha256"]
        if sha in found:
            continue
        path = None
        try:
            relative = (located.get(sha, row["worklist_path"]) if row["worklist_path"]
                        else None if kept[sha] is not None else in_worklist.get(sha))
            if relative and config.worklist_dir is not None:
                path = _worklist.resolve_entry(config.worklist_dir, relative,
                                               data_dir=config.data_dir)
            elif not row["worklist_path"]:
                path = kept[sha]
            found[sha] = None if path is None else _dicom_file(path)
        except (OSError, ValueError):  # gone, unreadable, or a path the worklist refuses
            found[sha] = None
    return found


def _uploads_in_worklist(config, shas: list[str]) -> dict[str, str]:
    """``{sha256: relative path}`` of the worklist files holding the bytes of ``shas``
    (uploads whose copy was not kept), found by hash; ``{}`` without a worklist, or when
    it cannot be walked (logged)."""
    if config.worklist_dir is None or not shas:
        return {}
    try:
        # The routes' own search (the whole folder), so the page links what they serve.
        return _worklist.holders(config.worklist_dir, shas, data_dir=config.data_dir)
    except (OSError, ValueError) as exc:
        logger.warning("Saved page: uploads not looked for in the worklist: %s", exc)
        return {}


#: How many files' answers :func:`_dicom_file` keeps (a few hundred bytes each).
DICOM_FILES_KEPT = 4096


def _dicom_file(path) -> bool | str:
    """False for a file that is no DICOM, True for a DICOM whose header the SEG and SR
    routes accept, else why they refuse it, in their words
    (:func:`annotation_client._dicom_seg.header_refusal`, their own rule).

    Kept per file as it is (path, size, modification time, inode): a listing reads the
    header of only the files new or changed since the last, however many rows it has.

    Raises
    ------
    OSError
        The file cannot be found or opened.
    """
    stat = os.stat(path)
    return _dicom_file_as(os.fspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=DICOM_FILES_KEPT)
def _dicom_file_as(path: str, _size: int, _mtime_ns: int, _inode: int) -> bool | str:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not looks_like_dicom(head):
        return False
    why = header_refusal(path, "DICOM SEG or SR")
    return True if why is None else why


def _located(config, rows: list[dict]) -> dict:
    """``{sha256: relative path}`` of the rows' worklist images where they are now."""
    wanted = {r["image_sha256"]: r["worklist_path"] for r in rows if r["worklist_path"]}
    return _worklist.locate_now(config, wanted, context="Saved page")


def _models_tooltip(row: dict) -> dict:
    """The hover text of the *AI label model* cell when the AI label came from another
    model version than the outline, and of the *Box models* cell when a box did; ``{}``
    otherwise."""
    outline, label = row["model_version"], row.get("classification_model_version")
    said = {}
    if outline and label and outline != label:
        said["classification_model_version"] = (
            f"The AI label and P(malignant) came from model version {label}, the outline "
            f"from {outline}: the model server changed between them.")
    boxes = row.get("box_model_versions")
    # The index keeps each box version once, joined by ", " (_database._box_versions).
    if outline and boxes and set(boxes.split(", ")) != {outline}:
        said["box_model_versions"] = (
            f"Parts of the outline were re-segmented in a box by model version(s) {boxes}, "
            f"the outline first given by {outline}: the model server changed between them.")
    return said


def _open_tooltip(shown: dict, row: dict, located: dict) -> dict:
    """The *Open* cell's hover text: why there is no link, or where the image is now."""
    path = row["worklist_path"]
    if not shown["open"]:
        return {"open": NO_WORKLIST if path else NOT_KEPT}
    now = located.get(row["image_sha256"])
    if path and now and now != path:
        return {"open": f"Opens {now}: the image was renamed or moved since it was saved."}
    return {}


def _damaged_tooltip(row: dict) -> dict:
    """The *Record file* cell's hover text of a version whose record cannot be read."""
    if not row.get("damaged"):
        return {}
    return {"record_status": f"{row['record_path']} cannot be read ({row['damaged']}): its "
                             "label, outline measures and reading are unknown, and it counts "
                             "in no summary or agreement. Restore it from a backup: the page "
                             "reads it again when it next lists it (an unchanged file at most "
                             "once a minute)."}


def _missing_files(store, rows: list[dict]) -> dict[tuple[str, int], list[str]]:
    """``{(sha256, version): [file names]}`` of the listed versions whose record is in the
    data folder: the names of their outline or mask file that are gone, [] for none (a
    stat of each: the record alone says a version is complete)."""
    missing = {}
    for row in rows:
        key = (row["image_sha256"], row["version"])
        try:
            if not store.record_path(*key).is_file():
                continue  # another data folder's row, or one the next start's sync drops
            missing[key] = store.missing_files(*key)
        except (ValueError, OSError):  # an odd row or an unreadable folder: not said here
            continue
    return missing


def _downloadable(store, stored: dict) -> dict[tuple[str, int], tuple[str, ...]]:
    """``{(sha256, version): kinds}``: of the versions :func:`_missing_files` found, the
    kinds of their files (``"svg"``, ``"mask"``) that are there."""
    return {key: tuple(kind for kind, where in (("svg", store.svg_path),
                                                ("mask", store.mask_path))
                       if where(*key).name not in gone)
            for key, gone in stored.items()}


def _files_tooltip(stored: dict, key: tuple[str, int]) -> dict:
    """The *Files* cell's hover text (``stored``: :func:`_missing_files`)."""
    if key not in stored:
        return {"files": NO_FILES}
    gone = stored[key]
    return {"files": FILES_SAID + (FILES_GONE.format(", ".join(gone)) if gone else "")}


def _missing_tooltip(gone: list[str] | None) -> dict:
    if not gone:
        return {}
    return {"record_status": f"{', '.join(gone)} cannot be found beside the record: restore "
                             "from a backup (the outline is what Load it to revise reads; "
                             "the mask, what reader agreement reads; the export reads "
                             "either, making the mask from the outline)."}


def _has_copy(store, sha: str) -> bool:
    try:
        return store.source_path(sha) is not None
    except (ValueError, OSError):  # an odd row or an unreadable folder: no link, no failure
        return False


def size(row: dict) -> dict[str, float | None]:
    """The largest region's size as a report gives it: long axis, perpendicular axis,
    in mm when the image had a pixel spacing and in pixels.

    Numbers, rounded to 0.1, so that the table sorts them as numbers; None for what the
    row does not have (no spacing; versions saved before the perpendicular diameter was
    measured have the long axis only).

    Examples
    --------
    >>> size({"max_diameter_mm": 12.34, "max_diameter_px": 123.4})["long_axis_mm"]
    12.3
    >>> size({"max_diameter_px": 70.26})["long_axis_mm"] is None
    True
    """
    def rounded(key):
        value = row.get(key)
        return None if value is None else round(float(value), 1)

    return {
        f"{name}_{unit}": rounded(f"{diameter}_{unit}")
        for unit in ("mm", "px")
        for name, diameter in (("long_axis", "max_diameter"),
                               ("perpendicular_axis", "perpendicular_diameter"))
    }


def _rounded(value):
    return None if value is None else round(float(value), 3)


def page_summary(rows: list[dict]) -> dict:
    """:func:`summarize` of ``rows``, with how many versions each share is of: ``with_ai``
    (an AI outline, for the Dice and edits) and ``labelled`` (both an AI and a final label)."""
    # A damaged row's reading is blank, so it adds to neither count.
    return summarize(rows) | {
        "with_ai": sum(r["dice_ai_vs_final"] is not None for r in rows),
        "labelled": sum(bool(r["ai_label"] and r["final_label"]) for r in rows),
    }


def _of(summary: dict, key: str, what: str) -> str:
    """" of the N <what>" when ``summary`` says how many, else " of those <what>"."""
    count = summary.get(key)
    return f" of those {what}" if count is None else f" of the {count} {what}"


def summary_text(summary: dict) -> list:
    """The agreement summary as a line of text parts.

    A share says how many versions it is of, when ``summary`` holds the counts
    (:func:`page_summary`): 100 % of 2 versions reads otherwise like 100 % of all.
    """
    damaged = summary.get("damaged") or 0
    if not summary["versions"] and not damaged:
        return [html.Span("No saved annotation matches.", className="text-muted")]
    parts = [
        html.Strong(
            f"{summary['versions']} version(s) of {summary['images']} image(s) "
            f"by {summary['annotators']} annotator(s)."
        )
    ]
    if damaged:
        # Not in the counts above nor the shares below: what they say is unknown.
        parts.append(f" Not counted: {damaged} version(s) whose record file is damaged.")
    if summary["mean_dice"] is not None:
        parts.append(
            f" Mean Dice AI vs final {summary['mean_dice']:.3f}; "
            f"outline edited in {summary['edited']:.0%}"
            f"{_of(summary, 'with_ai', 'with an AI outline')}."
        )
    if summary["label_agreement"] is not None:
        counted = summary.get("labelled") is not None
        parts.append(
            f" AI label = final label in {summary['label_agreement']:.0%}"
            + (_of(summary, "labelled", "version(s) with both") + "." if counted else ".")
        )
    return parts


#: How often a blinded Saved page checks who is signed in, as the Annotate page's poll.
SIGNIN_POLL_MS = 20_000


def _follows_the_sign_in() -> bool:
    config = get_config()
    return bool(config.blinded_reading and config.annotator_header)


def _reader_now() -> str | None:
    """The reader signed in to this request under blinded reading, or None (no request,
    as when Dash lays the pages out at start, or the proxy named nobody)."""
    if not flask.has_request_context():
        return None
    try:
        return get_reader()
    except _signin.SignInError:
        return None


# A shared workstation's tab may pass from one signed-in reader to the next without a
# reload. Under blinded reading, the table, summary and progress on screen are the last
# reader's saves, which the next must not see: the Annotate page's work is drawn afresh
# for a new sign-in (start_afresh_for_a_new_sign_in), and so is this page. A proxy that
# names nobody for a moment changes nothing (the table's next refresh says so), so that
# a glitch does not throw away the Annotate page's unsaved work kept in the shell.
@callback(
    Output(ids.SAVED_AFRESH, "data"),
    Input(ids.SAVED_SIGNIN_POLL, "n_intervals"),
    State(ids.SAVED_SHOWN_FOR, "data"),
    prevent_initial_call=True,
)
def follow_the_sign_in(_ticks, shown_for):
    """True once a reader other than the one the page was drawn for is signed in.

    A page drawn while the proxy named nobody listed no save (it said so), and is left
    as it is: drawn afresh, it would throw away the Annotate page's unsaved work, kept
    in the shell, of the reader who is back.
    """
    reader = _reader_now() if _follows_the_sign_in() else None
    if not reader or not shown_for or reader == shown_for:
        raise PreventUpdate
    return True


clientside_callback(
    """
    function(afresh) {
        if (afresh) { window.sonotrace.startAfresh(); }
        return window.dash_clientside.no_update;
    }
    """,
    Output(ids.SAVED_AFRESH, "data", allow_duplicate=True),
    Input(ids.SAVED_AFRESH, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.SAVED_TABLE, "data"),
    Output(ids.SAVED_TABLE, "tooltip_data"),
    Output(ids.SAVED_SUMMARY, "children"),
    Output(ids.SAVED_ANNOTATOR, "options"),
    Output(ids.SAVED_ALERT, "children"),
    Input(ids.SAVED_PAGE_LOAD, "data"),
    Input(ids.SAVED_REFRESH, "n_clicks"),
    Input(ids.SAVED_ANNOTATOR, "value"),
    Input(ids.SAVED_LABEL, "value"),
    Input(ids.SAVED_LATEST, "value"),
    Input(ids.SAVED_ASSESSMENT, "value"),
)
def show_saved(_loaded, _refresh, annotator, label, latest, assessment=ANY):
    """Fill the table and summary from the index, with the filters applied."""
    try:
        reader = get_reader()
    except _signin.SignInError as exc:
        message = _views.alert(
            str(exc), "danger", title="Blinded reading: no saves are shown.", id="saved-error"
        )
        return [], [], None, [], message
    try:
        rows = _fetch(annotator, label, latest, reader=reader, assessment=assessment)
        # Of every matching version, not only the PAGE_LIMIT shown.
        summary = get_index().summary(**_filters(annotator, label, latest, reader, assessment))
        names = [reader] if reader is not None else get_index().annotators()
    except IndexUnavailable as exc:
        logger.error("Saved page: %s", exc.logged())
        # "could not be read" is the title's own sentence: said once (a newer client's
        # index, say, has its own reason to give).
        reason = "" if str(exc) == "the annotation index could not be read" else f"{exc}. "
        message = _views.alert(
            f"{reason[:1].upper()}{reason[1:]}The client's log says why. Saving still works: "
            "the files are written first, and the index catches up with them once it "
            "answers again.",
            "danger",
            title="The saved-annotation index cannot be read.",
            id="saved-error",
        )
        return [], [], None, [], message
    except ValueError as exc:
        # A filter value the dropdowns never offer: a forged request, or a tab from
        # before an upgrade that changed them. Said, not a 500.
        message = _views.alert(f"{exc}; reload the page.", "warning",
                               title="A filter is not one this page offers.", id="saved-error")
        return [], [], None, [], message
    config = get_config()
    worklist = config.worklist_dir is not None
    store = get_store()
    uploads = {r["image_sha256"] for r in rows if not r["worklist_path"]}
    kept = {sha for sha in uploads if _has_copy(store, sha)}
    located = _located(config, rows) if worklist else {}
    dicom = _dicom_cells(store, rows, _dicom_images(config, store, rows, located))
    stored = _missing_files(store, rows)
    shown = table_rows(rows, dash.get_relative_path("/"), kept, worklist, located, dicom,
                       _downloadable(store, stored))
    missing = {key: gone for key, gone in stored.items() if gone}
    for row, source in zip(shown, rows, strict=True):
        gone = missing.get((source["image_sha256"], source["version"]))
        if gone and not source.get("damaged"):
            row["record_status"] = f"missing: {', '.join(gone)}"
    tooltips = [
        {"image": f"record: {row['record']}"} | _open_tooltip(row, source, located)
        | _files_tooltip(stored, (source["image_sha256"], source["version"]))
        | {"dicom": dicom[(source["image_sha256"], source["version"])].said}
        | _damaged_tooltip(source) | _models_tooltip(source)
        | _missing_tooltip(missing.get((source["image_sha256"], source["version"])))
        for row, source in zip(shown, rows, strict=True)
    ]
    notes = []
    if reader is not None:
        notes.append(_views.alert(_readers.BLINDED_NOTE, "secondary", id="saved-blinded"))
    filtered = annotator or label not in (None, ANY) or assessment not in (None, ANY)
    if not rows and latest and filtered and reader is None and not annotator:
        # "Latest version" is the image's latest, whoever saved it (with an annotator
        # chosen, theirs): a label whose every image was relabelled since has none,
        # which reads like a bug.
        notes.append(_views.alert(
            "With Latest version of each image only, an image is listed when its latest "
            "version, whoever saved it, matches the filters; turn it off to see every "
            "matching version.",
            "info",
            id="saved-latest-note",
        ))
    damaged = [r for r in rows if r.get("damaged")]
    if damaged:
        # The file is the record: what it said is unknown until it is restored.
        notes.append(_views.alert(
            f"{len(damaged)} listed version(s) have a record file that cannot be read "
            f"(first: {damaged[0]['record_path']}): they show as damaged in Record file, "
            "with no label or reading, and count in no summary. Restore the file from a "
            "backup: the page reads it again when it next lists it (Refresh; an unchanged "
            "file at most once a minute).",
            "warning",
            id="saved-damaged",
        ))
    if missing:
        first = next(iter(missing.values()))
        notes.append(_views.alert(
            f"{len(missing)} listed version(s) lack their outline or mask file (first: "
            f"{', '.join(first)}): they show as missing in Record file. Without its outline a "
            "version cannot be loaded to revise; without its mask it is left out of reader "
            "agreement, and the export makes the mask again from the outline (without both, "
            "the export leaves it out). Restore the files from a backup.",
            "warning",
            id="saved-missing",
        ))
    matching = summary["versions"] + summary["damaged"]
    # Fewer rows than the page takes are every one (a save since the query aside).
    if len(rows) == PAGE_LIMIT and matching > len(rows):
        notes.append(_views.alert(
            f"Showing the newest {len(rows)} of {matching} matching version(s): "
            f"{matching - len(rows)} more version(s) are not in the table (the summary "
            f"counts them all). Narrow the filters, or Download CSV: it holds all {matching}.",
            "info",
            id="saved-more",
        ))
    return shown, tooltips, summary_text(summary), names, notes or None


@callback(
    Output(ids.SAVED_CSV_BUTTON, "href"),
    Input(ids.SAVED_ANNOTATOR, "value"),
    Input(ids.SAVED_LABEL, "value"),
    Input(ids.SAVED_LATEST, "value"),
    Input(ids.SAVED_ASSESSMENT, "value"),
)
def csv_link(annotator, label, latest, assessment=ANY) -> str:
    """*Download CSV* follows the filters: :func:`csv_href`; under blinded reading with the
    reader's own name, as the table (the API would refuse another's: 403)."""
    return csv_href(_reader_now() or annotator, label, latest, assessment)


# ----------------------------------------------------------------------- reader agreement


def _number(value, digits=3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _share(value) -> str:
    return "—" if value is None else f"{value:.0%}"


#: The Reader agreement button's classes: before its callback, offered, and hidden.
AGREEMENT_UNCHECKED = "mb-2 d-none agreement-unchecked"
AGREEMENT_OFFERED = "mb-2"
AGREEMENT_HIDDEN = "mb-2 d-none"


def _image_name(item: dict) -> str:
    """An image as a radiologist knows it: its file name (worklist path), the hash's
    first 12 digits in brackets; the hash alone when the index knows no name."""
    short = item["image_sha256"][:12]
    return f"{item['image']} ({short})" if item.get("image") else short


#: How many damaged versions the agreement panel names; the API lists each.
LEFT_OUT_NAMED = 3


def _left_out_note(result: dict) -> list:
    """A line naming the damaged versions the agreement left out, if any (``left_out``)."""
    left = result.get("left_out") or []
    if not left:
        return []
    named = [
        f"{_image_name(item)} v{item['version']}"
        + (f" by {item['annotator']}" if item.get("annotator") else "")
        for item in left[:LEFT_OUT_NAMED]
    ]
    more = f" and {len(left) - LEFT_OUT_NAMED} more" if len(left) > LEFT_OUT_NAMED else ""
    return [_views.alert(
        f"{len(left)} damaged version(s) left out: {', '.join(named)}{more}. Their record "
        f"file cannot be read (first: {left[0]['reason']}), so their label and outline are "
        "unknown; restore them from a backup.",
        "warning",
        id="agreement-left-out",
    )]


def agreement_view(result: dict) -> list:
    """The reader agreement as the page shows it: a line, a table by pair, warnings.

    Parameters
    ----------
    result : dict
        :func:`annotation_client._agreement.index_agreement`'s result.

    Returns
    -------
    list of Dash components
    """
    # What the comparison left out, said after it (or alone, when nothing is compared).
    notes = _left_out_note(result)
    if result.get("dependent"):
        first = result["dependent"][0]
        # "Revising" names the version loaded, which may be the reader's own that
        # itself revised someone else's: the record's readers say whose.
        notes.append(_views.alert(
            f"{len(result['dependent'])} latest version(s) descend from another reader's "
            "saved work (loaded to revise, or saved over in the same page) and are left "
            "out, the reader's own earlier read counting instead if there is one (first: "
            f"{_image_name(first)} v{first['version']} by {first['annotator']}, "
            f"revising v{first['based_on']['version']} by {first['based_on']['annotator']}).",
            "info",
        ))
    if not result["images"]:
        return [html.P("No image was saved by two or more readers independently: nothing "
                       "to compare.", className="text-muted small mb-2"), *notes]
    line = [
        html.Strong(
            f"{result['images']} image(s) read by two or more of {len(result['readers'])} "
            f"reader(s), {result['pairs']} pair(s) of reads. "
        ),
        f"Outlines: mean Dice {_number(result['mean_dice'])} "
        f"(median {_number(result['median_dice'])}) over {result['dice_pairs']} pair(s), "
        f"{result['both_empty']} of them both empty. ",
        f"Final labels: the same in {_share(result['label_agreement'])} of the "
        f"{result['label_pairs']} pair(s) that both gave one; Fleiss' kappa "
        f"{_number(result['fleiss_kappa'], 2)}.",
    ]
    header = html.Thead(html.Tr([html.Th(name) for name in (
        "Readers", "Images", "Mean Dice", "Label pairs", "Same label", "Cohen's kappa")]))
    body = html.Tbody([
        html.Tr([
            html.Td(" · ".join(pair["readers"])),
            html.Td(pair["images"]),
            html.Td(_number(pair["mean_dice"])),
            html.Td(pair["label_pairs"]),
            html.Td(_share(pair["label_agreement"])),
            html.Td(_number(pair["cohen_kappa"], 2)),
        ])
        for pair in result["by_pair"]
    ])
    parts = [
        html.P(line, className="small mb-1", id="agreement-summary"),
        dbc.Table([header, body], size="sm", bordered=True, class_name="small mb-2 w-auto",
                  id="agreement-table"),
    ]
    if result["unreadable"]:
        first = result["unreadable"][0]
        parts.append(_views.alert(
            f"{len(result['unreadable'])} saved mask(s) could not be read and are left out "
            f"of the Dice (first: {first['image_sha256'][:12]} v{first['version']} by "
            f"{first['annotator']}: {first['reason']}).",
            "warning",
        ))
    if result["truncated"]:
        parts.append(_views.alert(
            f"Only the {MAX_READ_IMAGES} images saved most recently are compared.", "info"
        ))
    return parts + notes


@callback(
    Output(ids.SAVED_AGREEMENT_BUTTON, "class_name"),
    Input(ids.SAVED_PAGE_LOAD, "data"),
)
def show_agreement_button(_loaded):
    """Offer reader agreement to whoever may see every reader's saves."""
    return AGREEMENT_OFFERED if _sees_every_reader() else AGREEMENT_HIDDEN


def _sees_every_reader() -> bool:
    """Whether the asker may see every reader's saves (not a reader under blinded
    reading, nor a sign-in that names nobody)."""
    try:
        return get_reader() is None
    except _signin.SignInError:
        return False


def _others_work_refused(what: str):
    """An alert when the asker may not see ``what`` ("reader agreement"), which shows
    every reader's work; None when they may. The buttons are hidden from them, but a
    request can still ask."""
    try:
        reader = get_reader()
    except _signin.SignInError as exc:
        return _views.alert(str(exc), "danger", title=f"No {what}.")
    if reader is not None:
        return _views.alert(
            f"{_readers.BLINDED_NOTE} {what[:1].upper()}{what[1:]} shows other readers' work.",
            "secondary",
        )
    return None


@callback(
    Output(ids.SAVED_AGREEMENT, "children"),
    Input(ids.SAVED_AGREEMENT_BUTTON, "n_clicks"),
    prevent_initial_call=True,
)
def show_agreement(clicks):
    """Compare the readers: Dice of their outlines, their labels, kappas."""
    if not clicks:
        raise PreventUpdate
    refused = _others_work_refused("reader agreement")
    if refused is not None:
        return refused
    try:
        result = _agreement.index_agreement(get_index(), get_store())
    except IndexUnavailable as exc:
        logger.error("Saved page, reader agreement: %s", exc.logged())
        return _views.alert(f"{exc}; the client's log says why.", "danger",
                            title="No reader agreement.")
    return agreement_view(result)


# ----------------------------------------------------------------------- reading progress

#: The Reading progress button's classes, as the Reader agreement button's (whom it is
#: offered to is the same), with a gap after that one.
PROGRESS_UNCHECKED = "mb-2 ms-2 d-none progress-unchecked"
PROGRESS_OFFERED = "mb-2 ms-2"
PROGRESS_HIDDEN = "mb-2 ms-2 d-none"


def _progress_notes(result: dict) -> list:
    """What the counts leave out, each said once: damaged versions, other images, files."""
    notes = []
    if result["left_out"]:
        notes.append(_views.alert(
            f"{result['left_out']} damaged version(s) may have been a reader's read and are "
            "not counted: their record file cannot be read. Reader agreement names them; "
            "restore them from a backup.",
            "warning",
            id="progress-left-out",
        ))
    worklist = result.get("worklist")
    if worklist is None:
        return notes
    if not worklist["found"]:
        # A share that did not mount looks like an empty folder: every count is then 0.
        notes.append(_views.alert(
            "The worklist folder holds no image: is its share mounted? Every count above "
            "is of its images.",
            "warning",
            id="progress-empty-worklist",
        ))
    if result["outside_worklist"]:
        notes.append(_views.alert(
            f"{result['outside_worklist']} saved image(s) are in no worklist file (uploads, "
            "or files removed or changed since) and are not counted.",
            "info",
            id="progress-outside",
        ))
    if worklist["too_large"]:
        notes.append(_views.alert(
            f"{worklist['too_large']} worklist file(s) are over the upload limit, cannot be "
            "opened, and are not counted.",
            "info",
        ))
    if worklist["truncated"]:
        notes.append(_views.alert(
            f"Only the first {worklist['files']} of the worklist's {worklist['found']} files "
            "are counted, as the worklist lists them.",
            "info",
        ))
    return notes


def progress_view(result: dict) -> list:
    """The reading progress as the page shows it: a line, a table by reader, notes.

    Parameters
    ----------
    result : dict
        :func:`annotation_client._progress.index_progress`'s result.

    Returns
    -------
    list of Dash components
    """
    where = "in the worklist" if result.get("worklist") is not None else "saved"
    line = html.P(
        [
            html.Strong(
                f"{result['images']} image(s) {where}: {result['read']} read by at least one "
                f"reader, {result['read_by_two_or_more']} by two or more, {result['unread']} "
                "not read yet. "
            ),
            f"{result['disagreed']} image(s) with readers' final labels that differ and no "
            "version adjudicating them. A read: a reader's latest version of an image that "
            "revised no other reader's work.",
        ],
        className="small mb-1",
        id="progress-summary",
    )
    if not result["readers"]:
        return [line, html.P("No reader has saved any of these images yet.",
                             className="text-muted small mb-2"), *_progress_notes(result)]
    header = html.Thead(html.Tr([html.Th(name) for name in (
        "Reader", "Images read", "Images saved", "Versions", "Last save (UTC)")]))
    body = html.Tbody([
        html.Tr([
            html.Td(_signin.shown_text(reader["annotator"])),
            html.Td(reader["read"]),
            html.Td(reader["saved"]),
            html.Td(reader["versions"]),
            html.Td((reader["last_saved_at"] or "—").replace("T", " ").removesuffix("Z")),
        ])
        for reader in result["readers"]
    ])
    table = dbc.Table([header, body], size="sm", bordered=True, class_name="small mb-2 w-auto",
                      id="progress-table")
    return [line, table, *_progress_notes(result)]


@callback(
    Output(ids.SAVED_PROGRESS_BUTTON, "class_name"),
    Input(ids.SAVED_PAGE_LOAD, "data"),
)
def show_progress_button(_loaded):
    """Offer reading progress to whoever may see every reader's saves."""
    return PROGRESS_OFFERED if _sees_every_reader() else PROGRESS_HIDDEN


@callback(
    Output(ids.SAVED_PROGRESS, "children"),
    Input(ids.SAVED_PROGRESS_BUTTON, "n_clicks"),
    prevent_initial_call=True,
)
def show_progress(clicks):
    """Each reader's images read and saved, and the study's reads, for its coordinator."""
    if not clicks:
        raise PreventUpdate
    refused = _others_work_refused("reading progress")
    if refused is not None:
        return refused
    config = get_config()
    try:
        result = _progress.index_progress(get_index(), get_store(), config.worklist_dir,
                                          config.max_upload_bytes)
    except IndexUnavailable as exc:
        logger.error("Saved page, reading progress: %s", exc.logged())
        return _views.alert(f"{exc}; the client's log says why.", "danger",
                            title="No reading progress.")
    except _progress.WorklistUnavailable as exc:
        logger.error("Saved page, reading progress: %s: %s", exc, exc.cause)
        why = str(exc)
        return _views.alert(f"{why[:1].upper()}{why[1:]}; the client's log says why.", "danger",
                            title="No reading progress.")
    return progress_view(result)
