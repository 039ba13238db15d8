"""Annotate page (``/``): open an image, auto-segment, edit, measure, classify, save.

State lives in the app shell's stores (see :mod:`annotation_client._app`), so
going to another page and back keeps the work. The outline's single source of
truth is the undo history (``ids.HISTORY``); one callback, :func:`edit`, owns
it and redraws the graph's shapes from it after every change.
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import functools
import hashlib
import itertools
import json
import logging
import math
import re
import secrets
import threading
import time
from pathlib import PurePosixPath

import dash
import dash_bootstrap_components as dbc
import flask
import numpy as np
from dash import Input, Output, Patch, State, callback, clientside_callback, ctx, dcc, html
from dash.exceptions import MissingCallbackContextException, PreventUpdate

import vectorizer
from annotation_client import (
    _claims,
    _compare,
    _consistency,
    _dicom_seg,
    _dicom_sr,
    _editing,
    _figure,
    _history,
    _measurements,
    _shapes,
    _shortcuts,
    _signin,
    _signing,
    _spacing_aids,
    _unsaved,
    _views,
    _worklist,
    ids,
)
from annotation_client._app import (
    get_config,
    get_health_watch,
    get_index,
    get_model_slots,
    get_reader,
    get_store,
)
from annotation_client._config import ClientConfig
from annotation_client._database import IndexUnavailable
from annotation_client._imageio import ImageDecodeError, decode_image, parse_data_url
from annotation_client._record import (
    ASSESSMENT_MEANINGS,
    DESCRIPTOR_OPTIONS,
    LABELS,
    MAX_NOTE_CHARS,
    MULTI_VALUED,
    build_record,
    clean_descriptors,
    margin_conflict,
    parse_based_on,
    parse_box_models,
    revision_losses,
    same_reading,
)
from annotation_client._server_client import (
    ModelServerBusy,
    ModelServerClient,
    ModelServerError,
    ModelServerUnavailable,
    ModelServerUnreachable,
)
from annotation_client._storage import DataFolderChanged

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/", name="Annotate", title="SonoTrace · Annotate", order=0)

DESCRIPTOR_LABELS = {
    "shape": "Shape",
    "orientation": "Orientation",
    "margin": "Margin",
    "echo_pattern": "Echo pattern",
    "posterior_features": "Posterior features",
    "assessment": "BI-RADS assessment",
}
_MEMORY = {"persistence": True, "persistence_type": "memory"}
#: The vertex-density slider's range, per region.
SLIDER_VERTICES = (8, 128)
#: How often the status badge asks the model server's /health, and how long it waits
#: (at page load too: the request timeout held a thread for 30 s against a hung server).
SERVER_POLL_MS = 20_000
HEALTH_TIMEOUT_S = 5.0
#: How long a page's health check waits for the answer before it is given the one
#: before (the check goes on in its thread: see _server_client.HealthWatch), and how
#: old an answer may be to be taken as it is (two pages' polls share one check).
HEALTH_WAIT_S = 0.3
HEALTH_FRESH_S = 1.5
#: How soon a page asks again for a check that was not answered in HEALTH_WAIT_S.
SERVER_RECHECK_MS = 1000
#: Asked before a new image replaces unsaved work: by the worklist's confirm dialog,
#: and by sonotrace.js before an upload (read from the upload's data attribute).
UNSAVED_QUESTION = (
    "The work on the open image (its outline, label, BI-RADS, note or pixel spacing) is "
    "not saved. Open the new file anyway and lose it?"
)
#: Asked by sonotrace.js before *Load it to revise* replaces unsaved work (read from the
#: data attribute of the button's container): the label, descriptors and note on screen
#: become the version's, and only the outline comes back with Undo.
LOAD_QUESTION = (
    "The work on the open image (its outline, label, BI-RADS, note or pixel spacing) is "
    "not saved. Load the saved version anyway? Its label, BI-RADS descriptors and note "
    "replace those on screen (Undo brings back only the outline)."
)
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "dicom": "application/dicom"}
#: The tool every image opens with: a drag pans, a click selects an outline to edit.
DEFAULT_TOOL = "pan"


# =========================================================================== layout


def _tool_bar():
    return html.Div(
        [
            dbc.Button(
                "Auto-segment",
                id=ids.SEGMENT_BUTTON,
                color="primary",
                size="sm",
                class_name="me-2",
                disabled=True,
            ),
            # Not shown: sonotrace.js makes the tools a radio group this label names.
            html.Label("Editing tool", htmlFor=ids.TOOL, className="visually-hidden"),
            dbc.RadioItems(
                id=ids.TOOL,
                # One group: one Tab stop, the arrow keys move within it.
                name=ids.TOOL,
                options=[
                    {"label": "Pan", "value": "pan"},
                    {"label": "Zoom", "value": "zoom"},
                    {"label": "Draw region", "value": "draw"},
                    {"label": "Box re-segment", "value": "box"},
                    {
                        "label": html.Span(
                            "Cut away",
                            title="Draw around what is not lesion to take it off the "
                            "outline (C)",
                        ),
                        "value": "cut",
                    },
                ],
                value=DEFAULT_TOOL,
                class_name="btn-group me-2",
                input_class_name="btn-check",
                label_class_name="btn btn-sm btn-outline-secondary",
                label_checked_class_name="active",
                **_MEMORY,
            ),
            dbc.ButtonGroup(
                [
                    dbc.Button(
                        "Erase selected",
                        id=ids.ERASE_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        # Until an image is open: there is no outline to select.
                        disabled=True,
                        title="Erase the selected outline (Delete)",
                    ),
                    dbc.Button(
                        "Undo",
                        id=ids.UNDO_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        disabled=True,
                        title="Undo (Ctrl+Z)",
                    ),
                    dbc.Button(
                        "Redo",
                        id=ids.REDO_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        disabled=True,
                        title="Redo (Ctrl+Y)",
                    ),
                    dbc.Button(
                        "Reset to AI",
                        id=ids.RESET_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        disabled=True,
                    ),
                ],
                class_name="me-2",
            ),
            dbc.ButtonGroup(
                [
                    dbc.Button(
                        "Grow",
                        id=ids.GROW_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        disabled=True,
                        title=f"Widen every outline by a step: "
                        f"{_editing.OFFSET_STEP_MM:g} mm when the image's pixel spacing is "
                        "known, else about 0.4 % of its longer side (+)",
                    ),
                    dbc.Button(
                        "Shrink",
                        id=ids.SHRINK_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        disabled=True,
                        title=f"Narrow every outline by a step: "
                        f"{_editing.OFFSET_STEP_MM:g} mm when the image's pixel spacing is "
                        "known, else about 0.4 % of its longer side (−)",
                    ),
                ],
                class_name="me-2",
            ),
            _shortcuts.button(ids.SHORTCUTS_BUTTON),
            _shortcuts.panel(ids.SHORTCUTS_PANEL),
        ],
        className="d-flex flex-wrap align-items-center gap-1 mb-2",
        # What choose_tool sets for each tool, for sonotrace.js to set at once.
        **{"data-tool-modes": _tool_modes()},
    )


def _tool_modes() -> str:
    """JSON ``{tool: {"dragmode", "newshape"}}``: what :func:`choose_tool` sets on the
    graph for each tool.

    sonotrace.js sets it on the plot as a tool is picked while a box is segmented. Dash
    holds choose_tool until every callback upstream of it in its graph has answered, and
    that graph reaches the tool bar from a box's answer: while a box was segmented the
    radio showed *Draw region* and a drag still drew a box (a cut picked meanwhile would
    have been drawn as a region). Not while an opened image is segmented: the tool waits
    for the AI outline then, which must not replace a region drawn by hand.
    """
    return json.dumps({tool: {"dragmode": mode, "newshape": _figure.newshape_style(tool)}
                       for tool, mode in _figure.TOOL_DRAGMODES.items()})


# In the browser: the list is only shown, and a round trip would delay it.
clientside_callback(
    "function (clicks) { return clicks ? true : window.dash_clientside.no_update; }",
    Output(ids.SHORTCUTS_PANEL, "is_open"),
    Input(ids.SHORTCUTS_BUTTON, "n_clicks"),
    prevent_initial_call=True,
)


def _sliders(default_vertices: int, auto_segment: bool):
    return dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label(
                        html.Span(
                            [
                                "Vertex density: ",
                                # Kept by sonotrace.js from the handle: a callback here
                                # would show the layout's value, not the one the slider
                                # keeps across pages.
                                html.Span(str(default_vertices), id=ids.VERTEX_DENSITY_VALUE),
                                " points per region",
                            ],
                            title="How many points each outline gets when it is redrawn: "
                            "fewer are quicker to drag, more follow a lobulated margin "
                            "closely.",
                        ),
                        html_for=ids.VERTEX_DENSITY,
                        class_name="small mb-0",
                    ),
                    dcc.Slider(
                        id=ids.VERTEX_DENSITY,
                        min=SLIDER_VERTICES[0],
                        max=SLIDER_VERTICES[1],
                        step=4,
                        value=default_vertices,
                        marks={v: str(v) for v in (8, 32, 64, 96, 128)},
                        allow_direct_input=False,
                        updatemode="mouseup",
                        **_MEMORY,
                    ),
                ],
                md=5,
            ),
            dbc.Col(
                [
                    dbc.Label(
                        "Overlay fill opacity",
                        html_for=ids.OVERLAY_OPACITY,
                        class_name="small mb-0",
                    ),
                    dcc.Slider(
                        id=ids.OVERLAY_OPACITY,
                        min=0,
                        max=_figure.MAX_FILL_OPACITY,
                        step=0.05,
                        value=_figure.DEFAULT_FILL_OPACITY,
                        marks={0: "0", 0.25: "0.25", 0.5: "0.5"},
                        allow_direct_input=False,
                        **_MEMORY,
                    ),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    dbc.Switch(
                        id=ids.OVERLAY_VISIBLE,
                        label="Show outline (H)",
                        value=True,
                        class_name="small mb-0",
                        **_MEMORY,
                    ),
                    dbc.Switch(
                        id=ids.SHOW_CALIPERS,
                        label="Show calipers",
                        value=True,
                        class_name="small mb-0",
                        **_MEMORY,
                    ),
                    dbc.Switch(
                        id=ids.AUTO_SEGMENT,
                        label="Segment on open",
                        value=auto_segment,
                        class_name="small mb-0",
                        **_MEMORY,
                    ),
                ],
                md=3,
            ),
        ],
        class_name="g-2 mb-1",
    )


#: The display levels' sliders, in percent: (low, high, step, marks). 100 shows the
#: image as opened. Up to 3x, as a dark, low-contrast scan needs; at 20% it is still seen.
LEVEL_RANGE = (20, 300, 5, (50, 100, 200))


def _level_slider(component_id: str, label: str):
    low, high, step, marks = LEVEL_RANGE
    return dbc.Col(
        [
            dbc.Label(label, html_for=component_id, class_name="small mb-0"),
            dcc.Slider(
                id=component_id,
                min=low,
                max=high,
                step=step,
                value=100,
                marks={v: f"{v}%" for v in marks},
                allow_direct_input=False,
                **_MEMORY,
            ),
        ],
        md=4,
    )


def _levels():
    """Brightness and contrast of the image on screen (display only; see sonotrace.css).

    The model, the measurements and the saved files see the image as opened; only the
    picture under the outline changes, so a dark or flat scan's margin can be followed.
    """
    return dbc.Row(
        [
            _level_slider(ids.IMAGE_BRIGHTNESS, "Brightness (display only)"),
            _level_slider(ids.IMAGE_CONTRAST, "Contrast (display only)"),
            dbc.Col(
                dbc.Button(
                    "Reset levels",
                    id=ids.LEVELS_RESET,
                    size="sm",
                    color="secondary",
                    outline=True,
                    class_name="mt-3",
                ),
                md=4,
            ),
        ],
        class_name="g-2 mb-1",
    )


def _annotator_field(signed_in: bool):
    """The Annotator field: typed by the user, or, behind a sign-in proxy, shown only."""
    field = dbc.InputGroup(
        [
            # A real label, so screen readers name the field.
            dbc.InputGroupText(
                html.Label("Annotator", htmlFor=ids.ANNOTATOR, className="mb-0")
            ),
            dbc.Input(
                id=ids.ANNOTATOR,
                placeholder="from sign-in" if signed_in else "your name",
                debounce=True,
                # Disabled from the start, not only once recall_annotator answers, so
                # there is no moment in which typing looks possible.
                disabled=signed_in,
                # The names saved before, offered as the name is typed, so that each
                # reader keeps one spelling (a save refuses another spelling anyway).
                list=ids.ANNOTATOR_NAMES,
                autoComplete="off",
                # As long as a save takes (checked_name refuses a longer one).
                maxLength=_signin.MAX_NAME_CHARS,
            ),
        ],
        size="sm",
        class_name="mb-1" if signed_in else "mb-2",
    )
    # Filled by recall_annotator behind a sign-in proxy; empty otherwise.
    hint = html.Div(id=ids.ANNOTATOR_HINT, className="small mb-2" if signed_in else "small")
    return html.Div([field, html.Datalist(id=ids.ANNOTATOR_NAMES), hint])


def _option_label(name: str, value: str) -> str:
    if name == "assessment":
        return f"{value} — {ASSESSMENT_MEANINGS[value]}"
    return value


def _others_saves_notice():
    """Above the image: the image was saved before by other readers, not by this one.

    Their reading is not loaded unasked (a second reader's read stays independent),
    but the reader must see it exists before reading the image again: the Record
    card's line is below the fold. Shown by :func:`show_others_saves`.
    """
    return html.Div(
        [
            html.Span(id=ids.OTHERS_SAVES_TEXT, className="me-2"),
            # Dark on the note's light blue: Bootstrap's info blue as text on it is 1.9:1.
            dbc.Button("Load it to revise", id=ids.OTHERS_SAVES_LOAD, color="dark",
                       outline=True, size="sm"),
        ],
        id=ids.OTHERS_SAVES,
        className="alert alert-info py-2 mb-2 small",
        role="status",
        style={"display": "none"},
        **{"data-unsaved-question": LOAD_QUESTION},
    )


def _compare_row():
    """*Compare with*: another saved version of the open image drawn over it, read-only
    (see :func:`list_compare_versions` and :func:`compare_version`). Shown when the
    image has a version the reader may see."""
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Label("Compare with", html_for=ids.COMPARE_VERSION, width=5,
                              class_name="small"),
                    dbc.Col(
                        dbc.Select(
                            id=ids.COMPARE_VERSION,
                            options=[_compare.NONE_OPTION],
                            value=_compare.NONE_VALUE,
                            # dbc.Select's own hidden option of value "" is what the
                            # browser shows for "": it reads as the choice it is.
                            placeholder="None",
                            size="sm",
                        ),
                        width=7,
                    ),
                ],
                class_name="mb-1",
            ),
            html.Div(id=ids.COMPARE_CAPTION, className="small", role="status"),
            dcc.Store(id=ids.COMPARE_SHOWN),
        ],
        id=ids.COMPARE,
        className="mb-2",
        style={"display": "none"},
    )


def _record_card(signed_in: bool = False, blinded: bool = False):
    descriptor_controls = []
    for name, options in DESCRIPTOR_OPTIONS.items():
        if name in MULTI_VALUED:
            control = html.Div([
                dbc.Checklist(
                    id=ids.descriptor(name),
                    options=[{"label": o, "value": o} for o in options],
                    value=[],
                    inline=True,
                    class_name="small",
                    **_MEMORY,
                ),
                # Says at once what Save would refuse (see margin_conflict).
                html.Div(id=ids.MARGIN_HINT, className="small text-danger", role="status"),
            ])
        else:
            control = dbc.Select(
                id=ids.descriptor(name),
                # dbc.Select always adds a hidden placeholder option of value "", which
                # the browser shows for the unset value: it reads "—". The option that
                # takes a choice back needs a name of its own, or "—" is listed twice.
                options=[{"label": "Not set", "value": ""}]
                + [{"label": _option_label(name, o), "value": o} for o in options],
                value="",
                placeholder="—",
                size="sm",
                **_MEMORY,
            )
        descriptor_controls.append(
            dbc.Row(
                [
                    dbc.Label(
                        DESCRIPTOR_LABELS[name],
                        html_for=ids.descriptor(name),
                        width=5,
                        class_name="small",
                    ),
                    dbc.Col(control, width=7),
                ],
                class_name="mb-1",
            )
        )
    return dbc.Card(
        [
            dbc.CardHeader("Record"),
            dbc.CardBody(
                [
                    # Shown when the open image has saved versions: revising starts from one.
                    html.Div(
                        [
                            html.Span(id=ids.PREVIOUS_SAVES_TEXT, className="me-2"),
                            dbc.Button(
                                "Load it to revise",
                                id=ids.LOAD_SAVED_BUTTON,
                                color="primary",  # info's light blue text fails contrast
                                outline=True,
                                size="sm",
                            ),
                            html.Span(id=ids.PREVIOUS_SAVES_ON_SCREEN,
                                      className="text-body-secondary"),
                            dcc.Store(id=ids.LOADED_SAVE),
                            dcc.Store(id=ids.PREVIOUS_SAVES_SHOWN),
                        ],
                        id=ids.PREVIOUS_SAVES,
                        className="small mb-2",
                        style={"display": "none"},
                        **{"data-unsaved-question": LOAD_QUESTION},
                    ),
                    _compare_row(),
                    dbc.Label("Final label", html_for=ids.FINAL_LABEL, class_name="small mb-0"),
                    dbc.RadioItems(
                        id=ids.FINAL_LABEL,
                        name=ids.FINAL_LABEL,
                        options=[{"label": label, "value": label} for label in LABELS],
                        value=None,
                        inline=True,
                        class_name="mb-0",
                        **_MEMORY,
                    ),
                    # Says when label, outline and BI-RADS assessment disagree (see
                    # _consistency); Save repeats it, and saves all the same.
                    html.Div(id=ids.READING_HINT, className="small text-warning-emphasis mb-2",
                             role="status"),
                    html.Div(descriptor_controls),
                    dbc.Label("Note", html_for=ids.NOTE, class_name="small mb-0"),
                    dbc.Textarea(
                        id=ids.NOTE,
                        placeholder="Note",
                        maxLength=MAX_NOTE_CHARS,
                        rows=2,
                        size="sm",
                        class_name="mb-2",
                        **_MEMORY,
                    ),
                    _annotator_field(signed_in),
                    html.Div(
                        [
                            dbc.Button(
                                "Download SVG",
                                id=ids.DOWNLOAD_SVG_BUTTON,
                                color="secondary",
                                outline=True,
                                size="sm",
                                class_name="me-1",
                                disabled=True,
                            ),
                            dbc.Button(
                                "Download PNG mask",
                                id=ids.DOWNLOAD_PNG_BUTTON,
                                color="secondary",
                                outline=True,
                                size="sm",
                                class_name="me-1",
                                disabled=True,
                            ),
                            # A disabled button takes no pointer events (Bootstrap), so
                            # its own title never shows: the wrapper's says why.
                            html.Span(
                                [
                                    dbc.Button(
                                        "Download DICOM SEG",
                                        id=ids.DOWNLOAD_SEG_BUTTON,
                                        color="secondary",
                                        outline=True,
                                        size="sm",
                                        disabled=True,
                                        title="The outline as a DICOM Segmentation of the "
                                              "open DICOM image, for a PACS or a DICOM viewer",
                                        class_name="me-1",
                                    ),
                                    dbc.Button(
                                        "Download DICOM SR",
                                        id=ids.DOWNLOAD_SR_BUTTON,
                                        color="secondary",
                                        outline=True,
                                        size="sm",
                                        disabled=True,
                                        title="The outline's measurements in millimetres as a "
                                              "DICOM Structured Report (TID 1500) of the open "
                                              "DICOM image",
                                    ),
                                ],
                                id=ids.DICOM_DOWNLOADS,
                                className="d-inline-block",
                                title=DICOM_ONLY_NO_IMAGE,
                            ),
                            html.Div(id=ids.DOWNLOAD_NOTE, className="small text-danger",
                                     role="status"),
                        ],
                        className="mb-2",
                    ),
                    # Session storage: survives a visit to another page and a reload.
                    # Not under blinded reading: it holds the last save's outline,
                    # label and note, which the next reader signed in to this tab
                    # could read; there, the page's return compares with the disk.
                    dcc.Store(
                        id=ids.SAVED_WORK,
                        storage_type="memory" if blinded else "session",
                    ),
                    # Asked by Save when it would leave out the label or the edited
                    # outline of the latest version (see _before_writing).
                    dcc.ConfirmDialog(id=ids.SAVE_QUESTION),
                    dcc.Download(id=ids.DOWNLOAD_SVG),
                    dcc.Download(id=ids.DOWNLOAD_PNG),
                    dcc.Download(id=ids.DOWNLOAD_SEG),
                    dcc.Download(id=ids.DOWNLOAD_SR),
                ]
            ),
        ],
        class_name="mb-2",
    )


def _action_bar(config):
    """Save, Save & next and the save's message, at the foot of the side column.

    Held at the window's foot while the column runs on below it (sonotrace.css,
    ``position: sticky``): at 1440x900 Save was 600 px below the fold, under the
    Record card, and every case meant a scroll down to it and back up to the
    worklist. Still in the page's flow, after the Record card: it covers nothing
    once the column's end is in view, and the keyboard reaches it after the
    record's fields. Save & next is there when a worklist is.
    """
    return html.Div(
        [
            html.Div(
                [
                    dbc.Button(
                        "Save",
                        id=ids.SAVE_BUTTON,
                        color="success",
                        size="sm",
                        disabled=True,
                        title="Save the outline and record as the image's next version "
                        "(Ctrl+S, ⌘S on a Mac)",
                    ),
                    dbc.Button(
                        "Save & next",
                        id=ids.SAVE_NEXT_BUTTON,
                        color="success",
                        outline=True,
                        size="sm",
                        disabled=True,
                        title="Save, then open the next image of the worklist not annotated "
                        "(Ctrl+Shift+S, ⌘⇧S on a Mac)",
                        style={"display": "none"} if config.worklist_dir is None else None,
                    ),
                    html.Div(id=ids.UNSAVED_MARK, className="small"),
                ],
                className="d-flex flex-wrap align-items-center gap-2",
            ),
            html.Div(id=ids.SAVE_ALERT),
            dcc.Store(id=ids.SAVE_NEXT_PENDING),
            dcc.Store(id=ids.IMAGE_SHOWN),
            dcc.Store(id=ids.SAVE_PRESS),
            dcc.Store(id=ids.SAVED_BEFORE_NEXT),
            dcc.Store(id=ids.SAVE_ALERT_ON_OPEN),
        ],
        id=ids.ACTION_BAR,
        className="sonotrace-actions",
    )


def _worklist_card(config):
    """The worklist, at the top of the side column (beside the image, not above it).

    Without ``SONOTRACE_WORKLIST_DIR`` it is on the page but hidden: the list is
    refreshed after every open and save, and Dash reports an error for a callback
    whose output is missing from the page.
    """
    folder = config.worklist_dir
    button = {"color": "secondary", "outline": True, "size": "sm"}
    return html.Div(
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(
                        [
                            dbc.Label(
                                "Worklist",
                                html_for=ids.WORKLIST,
                                class_name="small fw-semibold mb-0 me-2",
                            ),
                            html.Span(str(folder or ""), className="small text-muted text-break"),
                        ],
                        className="d-flex align-items-baseline mb-1",
                    ),
                    html.Div(
                        [
                            html.Div(
                                dcc.Dropdown(
                                    id=ids.WORKLIST,
                                    options=[],
                                    placeholder="Open an image of the worklist (type to search)",
                                    searchable=True,
                                    clearable=False,
                                    search_order="original",
                                    maxHeight=320,
                                ),
                                className="flex-grow-1",
                                style={"minWidth": "16rem"},
                            ),
                            dbc.Button("Refresh", id=ids.WORKLIST_REFRESH, **button),
                            dbc.Button("Open next not annotated", id=ids.WORKLIST_NEXT, **button),
                        ],
                        className="d-flex flex-wrap align-items-center gap-2",
                    ),
                    # Where the open entry is: the dropdown goes back to its placeholder
                    # (see request_entry), so it is said here.
                    html.Div(
                        [
                            dbc.Button("‹ Previous", id=ids.WORKLIST_PREVIOUS, **button,
                                       title="Open the entry before the open one, whatever "
                                       "its status"),
                            dbc.Button("Next ›", id=ids.WORKLIST_FOLLOWING, **button,
                                       title="Open the entry after the open one, whatever "
                                       "its status"),
                            html.Span(id=ids.WORKLIST_POSITION, className="small text-break"),
                        ],
                        className="d-flex flex-wrap align-items-center gap-2 mt-1",
                    ),
                    html.Div(id=ids.WORKLIST_NOTE, className="small text-muted mt-1"),
                ],
                class_name="py-2",
            ),
            class_name="mb-2",
        ),
        id=ids.WORKLIST_CARD,
        hidden=folder is None,
    )


def _calibration_form():
    """Pixel spacing typed by hand, for a PNG or JPEG (or a DICOM without one).

    Radiologists report sizes in millimetres; an exported frame has lost the
    scanner's calibration, but its depth scale is on screen: 40 mm of depth over
    465 pixels is 0.086 mm per pixel. Shown only when the file gives no spacing.
    """
    return html.Div(
        [
            dbc.InputGroup(
                [
                    dbc.InputGroupText(
                        html.Label("Pixel spacing", htmlFor=ids.SPACING_INPUT, className="mb-0")
                    ),
                    dbc.Input(
                        id=ids.SPACING_INPUT,
                        # Text, not a number field: one drops a decimal comma ("0,09"
                        # became 9 mm per pixel) and sends an out-of-range number as
                        # empty, which means "back to pixels". The callback reads a
                        # comma as the decimal point and refuses the rest with a reason;
                        # phones still show a decimal keypad.
                        type="text",
                        inputMode="decimal",
                        autoComplete="off",
                        placeholder="mm per pixel",
                    ),
                    dbc.Button("Set", id=ids.SPACING_SET, color="secondary", outline=True),
                    dbc.Button(
                        "Calibrate",
                        id=ids.SPACING_CALIBRATE,
                        color="secondary",
                        outline=True,
                        title="Draw a line on the image along a known distance of its "
                        "depth scale, then type that distance in mm",
                    ),
                ],
                size="sm",
                class_name="mt-2",
            ),
            html.Div(
                "From the depth scale: its length in mm over its length in pixels "
                "(Calibrate measures the pixels on the image). Empty and Set goes back "
                "to pixels.",
                className="small text-muted",
            ),
            _reuse_row(),
            _line_form(),
            html.Div(id=ids.SPACING_NOTE, className="small", role="status"),
            # The last spacing Set, offered on the next image (see _spacing_aids). Only
            # a number and an image's name and size, so kept for the session even
            # under blinded reading (unlike SAVED_WORK): a reload keeps the offer.
            dcc.Store(id=ids.SPACING_LAST, storage_type="session"),
            dcc.Store(id=ids.SPACING_CALIBRATION),
            dcc.Store(id=ids.SPACING_OFFERED),
            dcc.Store(id=ids.SPACING_LINE_DRAWN),
        ],
        id=ids.SPACING_FORM,
        hidden=True,
    )


def _reuse_row():
    """The spacing Set on an earlier image, offered in one click (never applied unasked)."""
    return html.Div(
        [
            dbc.Button(id=ids.SPACING_REUSE, color="primary", outline=True, size="sm"),
            html.Div(id=ids.SPACING_REUSE_NOTE, className="small text-warning-emphasis"),
        ],
        id=ids.SPACING_REUSE_ROW,
        className="mt-1",
        hidden=True,
    )


def _line_form():
    """After Calibrate: the drawn line's length in pixels, and its length in mm to type."""
    return dbc.InputGroup(
        [
            dbc.InputGroupText(
                html.Label(id=ids.SPACING_LINE_TEXT, htmlFor=ids.SPACING_LINE_MM, className="mb-0")
            ),
            dbc.Input(id=ids.SPACING_LINE_MM, type="number", step="any", placeholder="mm"),
            dbc.Button("Compute", id=ids.SPACING_LINE_COMPUTE, color="secondary",
                       outline=True),
        ],
        id=ids.SPACING_LINE_FORM,
        size="sm",
        class_name="mt-1",
        style={"display": "none"},
    )


#: The query parameter that opens a worklist entry with the page (``/?open=cases/a.png``).
OPEN_QUERY = "open"
#: The query parameter that opens the kept copy of an uploaded image (``/?saved=SHA256``).
SAVED_QUERY = "saved"
#: With ``open``: the sha256 of the image the linked version was saved from
#: (``/?open=cases/a.png&expect=SHA256``), so that a file changed since is told.
EXPECT_QUERY = "expect"
#: With ``open`` or ``saved``: the saved version to load (``&version=2``), rather than
#: the latest; a Saved page row's link names its own version.
VERSION_QUERY = "version"
#: Most digits a version number in a link may have (``vNNN`` files go past 999).
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


#: ``className`` of the box's wait line (``BOX_WAITING``) while a box is segmented: shown
#: only once the wait outlasts the graph's spinner's delay (sonotrace.css).
BOX_WAITING_SHOWN = "sonotrace-box-waiting small bg-white border rounded px-2 py-1"


def _graph_loading(config: ClientConfig) -> dcc.Loading:
    """The graph, under a spinner while an image opens or the model outlines it.

    Not while a box is segmented: that spinner covered the graph for the whole wait (the
    model server's timeout, when it hangs), so nothing could be drawn, against the rule
    that drawing and editing go on while a box is segmented; and its text said an image
    was being opened. The box's wait has its own line (``BOX_WAITING``).
    """
    return dcc.Loading(
        [
            html.Div(
                dcc.Graph(
                    id=ids.ANNOTATION_GRAPH,
                    figure=_figure.empty_figure(),
                    config=_figure.GRAPH_CONFIG,
                    # What the window has left under the bars above it, so
                    # that the whole image is in view with its tools.
                    style={"height": "calc(100vh - 260px)", "minHeight": "380px"},
                ),
                id=ids.GRAPH_FRAME,
            ),
            dcc.Store(id=ids.SEGMENT_DONE),
            # Here for the spinner: opening a large DICOM takes a second or two.
            dcc.Store(id=ids.IMAGE_OPENED),
        ],
        id=ids.GRAPH_LOADING,
        # Says what is awaited, and for how long at most: a bare spinner over a
        # server that hung read as a page that hung, for the whole timeout.
        custom_spinner=html.Div(
            [
                html.Div(className="spinner-border text-primary", role="status"),
                html.Div(
                    "Opening the image, or asking the model for its outline: up "
                    f"to {config.request_timeout:g} s, then you can draw by hand.",
                    className="small bg-white border rounded px-2 py-1 mt-2",
                ),
            ],
            id=ids.GRAPH_WAITING,
            className="d-flex flex-column align-items-center",
        ),
        delay_show=350,
        overlay_style={"visibility": "visible", "opacity": 0.6},
        # Only opening an image and the model's outline of it, which take seconds and
        # replace the outline: the spinner covers the graph, and an edit answered
        # slowly (a busy machine) would have it swallow the radiologist's next click
        # or drag. Not a box either (see above).
        target_components={ids.IMAGE_OPENED: "data", ids.SEGMENT_DONE: "data"},
    )


def layout(**query):
    """The annotate page.

    ``/?open=PATH`` opens the worklist entry ``PATH`` (relative to
    ``SONOTRACE_WORKLIST_DIR``) as the page loads: the Saved page links each
    version of a worklist image this way. ``/?saved=SHA256`` opens the copy of
    an uploaded image kept with its saved versions (``SONOTRACE_KEEP_UPLOADS``).
    ``&expect=SHA256`` beside ``open`` is the image the linked version was saved
    from: a file that holds another image now is said so when it opens.
    ``&version=N`` loads that saved version rather than the latest.
    """
    config = get_config()
    linked = query.get(OPEN_QUERY)
    kept = query.get(SAVED_QUERY)
    expect = query.get(EXPECT_QUERY)
    version = query.get(VERSION_QUERY)
    left = dbc.Col(
        [
            # For screen readers, which list a page by its headings; the image needs
            # the room more than a visible title would.
            html.H1("Annotate an image", className="visually-hidden"),
            html.Div(id=ids.SERVER_STATUS, className="small text-end mb-1"),
            # Read out when the badge's text changes (sonotrace.js), not at every poll,
            # which draws the badge anew.
            html.Div(id=ids.SERVER_STATUS_SAID, role="status", className="visually-hidden",
                     **{"aria-live": "polite"}),
            dcc.Interval(id=ids.SERVER_POLL, interval=SERVER_POLL_MS),
            # Ticks once when refresh_server_status finds the server back (it sets
            # max_intervals one above n_intervals): a tick is no callback's output, so
            # the health check is upstream of nothing but the badge and the alert. Dash
            # holds every callback downstream of a running one's outputs, and through a
            # Store written by the health check (which segment takes) that was every
            # callback of the page: a stalled /health held the open of a file and the
            # tool bar until it gave up.
            dcc.Interval(id=ids.SERVER_BACK, interval=50, max_intervals=0),
            # Ticks once a second after a health check that the server had not answered
            # yet (check_server and refresh_server_status set it), until it has.
            dcc.Interval(id=ids.SERVER_RECHECK, interval=SERVER_RECHECK_MS,
                         max_intervals=0),
            html.Div(id=ids.SERVER_ALERT),
            html.Div(id=ids.UPLOAD_ALERT),
            _others_saves_notice(),
            # Filled by sonotrace.js, which refuses a file over the limit before it is
            # sent: the server would drop a request that large with no message.
            html.Div(id=ids.UPLOAD_REFUSED),
            html.Div(
                dcc.Upload(
                    id=ids.IMAGE_UPLOAD,
                    children=html.Div(
                        [
                            html.Strong("Drop an ultrasound image here"),
                            " or ",
                            html.A("browse", href="#", className="link-primary"),
                            html.Span(
                                f" — PNG, JPEG or DICOM, up to {config.max_upload_mb:g} MB",
                                className="text-muted",
                            ),
                        ]
                    ),
                    className="sonotrace-upload mb-2",
                    className_active="sonotrace-upload active",
                    multiple=False,
                ),
                id=ids.UPLOAD_LIMIT,
                **{
                    "data-max-bytes": str(config.max_upload_bytes),
                    "data-unsaved-question": UNSAVED_QUESTION,
                },
            ),
            html.Div(_views.image_info(None), id=ids.IMAGE_INFO, className="mb-2"),
            _tool_bar(),
            html.Div(
                [
                    _graph_loading(config),
                    # A box's wait, said over the graph without covering it: drawing and
                    # editing go on meanwhile, and are kept under the box's outline.
                    html.Div(
                        f"Asking the model for the outline inside the box: up to "
                        f"{config.request_timeout:g} s. Draw and edit meanwhile; your "
                        "edits are kept under the box's outline.",
                        id=ids.BOX_WAITING,
                        className="d-none",
                    ),
                ],
                className="position-relative",
            ),
            # Not under the graph's spinner (see _graph_loading).
            dcc.Store(id=ids.BOX_DONE),
            # A status region: a screen reader says what a cut, a box or an erase did.
            html.Div(id=ids.EDIT_STATUS, className="small text-muted mt-1", role="status"),
            # Which outline is selected, said as R (sonotrace.js) or a click selects it.
            html.Div(id=ids.OUTLINE_SELECTED, className="small text-muted", role="status"),
            html.Div(
                "Click an outline to select it, then drag its vertices; double-click a "
                "vertex to delete it. Draw region adds a closed outline; Box re-segment "
                "asks the model again inside the box you draw.",
                className="small text-muted mb-2",
            ),
            # Below the image, not above it: with them above, the image began below
            # the fold of a 1440x900 screen, and every case meant scrolling.
            _sliders(config.default_vertices, config.auto_segment),
            _levels(),
        ],
        lg=8,
        # sonotrace.js: shortcuts act on the image only from here (or the page itself).
        id=ids.IMAGE_PANEL,
    )
    right = dbc.Col(
        [
            # Beside the image, not above it: above, it pushed the image below the fold.
            _worklist_card(config),
            dbc.Card(
                [
                    dbc.CardHeader("Measurements"),
                    dbc.CardBody(
                        [html.Div(id=ids.MEASUREMENTS), _calibration_form()], class_name="py-2"
                    ),
                ],
                class_name="mb-2",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Classification"),
                    dbc.CardBody(
                        [
                            dbc.Button(
                                "Classify",
                                id=ids.CLASSIFY_BUTTON,
                                color="primary",
                                size="sm",
                                disabled=True,
                                class_name="mb-1",
                            ),
                            dcc.Loading(
                                [
                                    dcc.Graph(
                                        id=ids.PROBABILITY_GRAPH,
                                        figure=_views.probability_figure(None),
                                        config={"displayModeBar": False},
                                        style={"height": "140px"},
                                    ),
                                    html.Div(id=ids.AI_LABEL),
                                    dcc.Store(id=ids.CLASSIFY_DONE),
                                ],
                                type="dot",
                                delay_show=300,
                            ),
                            # Says, before a save, when the outline and the AI label came
                            # from different model versions (see check_model_versions);
                            # Save repeats it, and saves all the same.
                            html.Div(id=ids.MODEL_VERSIONS_HINT,
                                     className="small text-warning-emphasis", role="status"),
                        ],
                        class_name="py-2",
                    ),
                ],
                class_name="mb-2",
            ),
            _record_card(
                signed_in=bool(config.annotator_header), blinded=config.blinded_reading
            ),
            _action_bar(config),
        ],
        lg=4,
    )
    return html.Div(
        [
            # New at each drawing of the page: Grow and Shrink's click counts start
            # again with it (see _editing.unapplied_clicks).
            dcc.Store(id=ids.PAGE_LOAD, data=secrets.token_hex(8)),
            dcc.Store(id=ids.OFFSET_CLICKS_LOST),
            dcc.Store(id=ids.STEP_PRESSES),
            dcc.Store(id=ids.EDIT_RESYNC),
            dcc.Store(id=ids.OUTLINE_CHANGED),
            dcc.Store(id=ids.BOX_REQUEST),
            dcc.Store(id=ids.BOX_DRAWN),
            dcc.Store(id=ids.ERASE_DUMMY),
            dcc.Store(id=ids.SHAPES_SHOWN),
            dcc.Store(id=ids.WORKLIST_REQUEST),
            dcc.Store(id=ids.WORKLIST_PENDING),
            # Of the page itself (memory): a reload draws the options again.
            dcc.Store(id=ids.WORKLIST_SENT),
            # The layout's token is the tab's first; session storage keeps it after.
            dcc.Store(id=ids.WORKLIST_CLAIM_TOKEN, storage_type="session",
                      data=secrets.token_hex(8)),
            dcc.Store(id=ids.WORKLIST_FAILED, storage_type="session"),
            dcc.Store(id=ids.WORKLIST_LINK, data=linked if isinstance(linked, str) else None),
            # A tab under blinded reading may pass from one signed-in reader to the next:
            # the next must not find the last one's case open.
            dcc.Store(id=ids.WORKLIST_REOPEN_ON, data=not config.blinded_reading),
            # Behind a sign-in proxy, a user signed in since the work was begun gets
            # a fresh page (start_afresh_for_a_new_sign_in).
            dcc.Store(id=ids.SIGNIN_FOLLOWED, data=bool(config.annotator_header)),
            dcc.Store(id=ids.SAVED_LINK, data=kept if isinstance(kept, str) else None),
            dcc.Store(id=ids.LINK_EXPECT, data=expect if isinstance(expect, str)
                      and _SHA256.fullmatch(expect) else None),
            dcc.Store(id=ids.LINK_VERSION, data=int(version) if isinstance(version, str)
                      and _VERSION.fullmatch(version) else None),
            dcc.Store(id=ids.REVISE_ON_OPEN),
            dcc.ConfirmDialog(id=ids.WORKLIST_CONFIRM, message=UNSAVED_QUESTION),
            dbc.Row([left, right], class_name="g-3"),
        ]
    )


# =========================================================================== helpers


def _client(timeout: float | None = None) -> ModelServerClient:
    """A client of the model server, ``timeout`` seconds (the configured timeout by
    default), whose calls share the worker's slots (``SONOTRACE_MODEL_CALLS``)."""
    config = get_config()
    return ModelServerClient(config.model_server_url,
                             timeout=config.request_timeout if timeout is None else timeout,
                             slots=get_model_slots())


def _health():
    """The model server's health, as :meth:`HealthWatch.ask` answers (the worker's
    watch): a check of at most :data:`HEALTH_TIMEOUT_S`, waited for
    :data:`HEALTH_WAIT_S`, in no model-call slot. The page's callbacks that wait for
    every callback in flight (opening a file) waited for the health check too, and
    checks of a hung server (a page load's took the whole request timeout) held the
    slots that segmentation and classification needed."""
    config = get_config()
    client = ModelServerClient(config.model_server_url,
                               timeout=min(HEALTH_TIMEOUT_S, config.request_timeout))
    return get_health_watch().ask(client, HEALTH_WAIT_S, fresh_for=HEALTH_FRESH_S)


#: Class of the wrapper of an alert saying the model server cannot be reached: the
#: health poll takes that alert away once the server answers again (and no other).
UNREACHABLE_CLASS = "server-unreachable"


def _server_alert(exc: ModelServerError, action: str):
    if isinstance(exc, ModelServerUnavailable):
        alert = _views.alert(
            f"{exc.message} You can still draw, edit and save outlines by hand.",
            "warning",
            title=f"{action} unavailable.",
            id="server-alert-message",
        )
        return html.Div(alert, className=UNREACHABLE_CLASS) if isinstance(
            exc, ModelServerUnreachable) else alert
    return _views.alert(exc.message, "danger", title=f"{action} failed.", id="server-alert-message")


def _shown_uri(image_data: dict, meta: dict) -> str:
    """What the graph shows of the open image: the file itself, or, when the browser
    would show the file otherwise than it is read (a DICOM, a 16-bit PNG, a colour
    profile), its pixels as a PNG, decoded again from the file.
    """
    if isinstance(image_data.get("display"), str):  # a tab opened before 2026-12-05
        return image_data["display"]
    if not image_data.get("reencoded"):
        return image_data["contents"]
    config = get_config()
    try:
        image = decode_image(_image_bytes(image_data, meta), meta.get("name") or "image",
                             max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels)
    except ImageDecodeError as exc:  # read when opened: only a lowered limit gets here
        logger.warning("the open image cannot be shown again: %s", exc)
        raise PreventUpdate from None
    return image.display_uri


def _image_bytes(image_data: dict | None, meta: dict) -> bytes:
    """The open image's file, as the page keeps it beside ``meta``.

    The page's copy of the file is not signed (it is large, and the browser had it
    first); it must be the file ``meta`` (which is signed) describes, or the model
    would answer for another image than the one the outline is saved on.
    """
    if not isinstance(image_data, dict) or not image_data.get("contents"):
        raise PreventUpdate
    try:
        data = parse_data_url(image_data["contents"])
    except (ImageDecodeError, TypeError) as exc:
        logger.warning("ignored a request whose image is no data URL: %s", exc)
        raise PreventUpdate from None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        logger.warning("ignored a request whose image is not the open image %s",
                       str(meta.get("sha256"))[:12])
        raise PreventUpdate
    return data


def _shape(meta: dict) -> tuple[int, int]:
    return (int(meta["height"]), int(meta["width"]))


def _spacing(meta: dict | None) -> list[float] | None:
    """The pixel spacing the open image is measured at (its file's or the reader's)."""
    spacing = meta.get("pixel_spacing_mm") if isinstance(meta, dict) else None
    return list(spacing) if spacing else None


def _decode_mask(b64: str) -> np.ndarray:
    return np.asarray(vectorizer.png_to_mask(base64.b64decode(b64)), dtype=bool)


def _present(history: dict | None, meta: dict | None) -> dict:
    if history and meta and history.get("image") == meta.get("sha256"):
        return history["present"]
    return _editing.empty_state()


def _ai_for(ai: dict | None, meta: dict | None) -> dict | None:
    """The AI result when it belongs to the open image."""
    if ai and meta and ai.get("image") == meta.get("sha256"):
        return ai
    return None


def _as_opened(history: dict | None, meta: dict) -> bool:
    """Whether the open image is as it opened: no edit, no step, no version loaded.

    The server back, only such an image is segmented: a saved reading loaded while
    it was away (a normal with no outline, say) got the AI's outline put over it.
    """
    if history is None:
        return True
    return (isinstance(history, dict) and history.get("image") == meta.get("sha256")
            and not history.get("past") and not history.get("future")
            and isinstance(history.get("present"), dict)
            and history["present"].get("action") == "open"
            and not history.get("loaded_versions"))


def _segment_on_open(auto, meta, ai, history) -> bool:
    """Whether opening ``meta``'s image should ask the model server for an outline.

    Not when the user turned it off, and not when the image already has an
    outline: opening the same image again must not put the AI outline over the
    edits, nor over one drawn by hand while the server was away.
    """
    if auto is False:
        return False
    return _ai_for(ai, meta) is None and not _present(history, meta)["paths"]


#: How many answers (AI results, loaded versions) the history remembers having taken in.
APPLIED_KEPT = 32


def _applied(history: dict, source) -> bool:
    """Whether the answer ``source`` (its time) has been taken into the history already.

    Remembered beside the steps (``applied``), not only found among them: once the
    oldest undo steps are dropped (200 steps, or 4 MiB of outlines), the AI's step goes
    too, and the result it came from, still in the page, was applied again over the
    radiologist's outline, every other edit and without a word.
    """
    if source is None:
        return False
    if source in (history.get("applied") or []):
        return True
    states = history["past"] + [history["present"]] + history["future"]
    return any(isinstance(s, dict) and s.get("source") == source for s in states)


def _push_answer(history: dict, state: dict, source) -> dict:
    """``state`` pushed as the step an answer ``source`` brought, and ``source`` remembered."""
    history = _push(history, dict(state, source=source))
    if source is not None:
        kept = [s for s in history.get("applied") or [] if s != source]
        history["applied"] = [*kept, source][-APPLIED_KEPT:]
    return history


def _triggered() -> set[str]:
    """Component ids whose properties fired this callback; empty outside a Dash request."""
    try:
        return set((ctx.triggered_prop_ids or {}).values())
    except MissingCallbackContextException:  # called directly, as the unit tests do
        return set()


#: Boxes kept waiting for their answer at once: a radiologist draws one or two while
#: the first is segmented; each costs a model-server call.
MAX_PENDING_BOXES = 8


def _pending_boxes(pending, sha) -> list[dict]:
    """The re-segmentation boxes of image ``sha`` asked for and not yet taken in.

    At most the :data:`MAX_PENDING_BOXES` latest, each with its time ``at`` (ns) and
    a box of four finite numbers: the list is kept in the browser, and a
    hand-written one of thousands of boxes would be as many model-server calls.
    """
    if not isinstance(pending, list):
        return []
    boxes = [r for r in pending if _well_formed_box(r) and r.get("image") == sha]
    return boxes[-MAX_PENDING_BOXES:]


def _well_formed_box(request) -> bool:
    if not isinstance(request, dict):
        return False
    at, box = request.get("at"), request.get("box")
    return (
        isinstance(at, int) and not isinstance(at, bool)
        and isinstance(box, list) and len(box) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in box)
    )


def _box_inside(box, meta: dict) -> bool:
    """Whether a well-formed box (:func:`_well_formed_box`) is one the page makes for the
    open image: what :func:`_shapes.clip_box` gives back unchanged (whole pixel edges,
    in order, inside the image). The pending list is the browser's; a box outside the
    image made every later edit fail."""
    return _shapes.clip_box(box, int(meta["width"]), int(meta["height"])) == tuple(box)


def _box_answers(result, sha) -> list[dict]:
    """The answers in the box result store when they are for image ``sha``."""
    if not result or result.get("image") != sha:
        return []
    return [a for a in result.get("answers") or [] if isinstance(a, dict)]


def _same_ai(present: dict, ai: dict) -> bool:
    """Whether ``present`` already is the outline of ``ai`` (asked twice, one step)."""
    return present.get("action") == "ai" and _shapes.same_geometry(
        present.get("paths") or [], ai.get("paths") or []
    )


def _shapes_patch(paths, opacity, visible, calipers, shape, revision=None,
                  spacing=None) -> Patch:
    """The graph's outline, calipers (at the image's pixel ``spacing``, see
    :func:`_calipers`) and ``editrevision`` (``revision``, else a new one: see
    :func:`_drawing`)."""
    patch = Patch()
    patch["layout"]["shapes"] = _figure.region_shapes(
        paths,
        fill_opacity=opacity if opacity is not None else _figure.DEFAULT_FILL_OPACITY,
        visible=bool(visible) if visible is not None else True,
    )
    patch["layout"]["annotations"] = _calipers(paths, shape, visible, calipers, spacing)
    # A fresh editrevision makes plotly take these shapes as they are, instead of
    # re-applying the user's last drag on top of an undo.
    patch["layout"]["editrevision"] = revision if revision is not None else _drawing()
    return patch


def _drawing() -> str:
    """A new ``editrevision``, naming one drawing of the outline: a string, since the
    browser reads a number of nanoseconds only to the nearest 256 and sends it back so."""
    return str(time.time_ns())


#: Between the history's drawing and the rest of a drawing derived from it.
_DERIVED = "~"


def _derived_drawing(history) -> str:
    """A new ``editrevision`` for a redraw of what the graph shows, made by a callback
    other than :func:`edit` (ask_box's, taking the box's rectangle off the graph).

    Fresh, so that plotly takes the shapes as sent rather than keep the rectangle; named
    after the history's drawing (``DRAWN``), so that edits made on it are edits made on
    that one, which :func:`_shown_edits` records. A history with no drawing gets a
    drawing of its own.
    """
    drawn = history.get(DRAWN) if isinstance(history, dict) else None
    if not isinstance(drawn, str) or not drawn or _DERIVED in drawn:
        return _drawing()
    return f"{drawn}{_DERIVED}{_drawing()}"


def _made_on(revision, drawn) -> bool:
    """Whether the graph's drawing ``revision`` is the drawing ``drawn`` (the history's)
    or one derived from it (see :func:`_derived_drawing`)."""
    if not (isinstance(revision, str) and isinstance(drawn, str) and drawn):
        return False
    return revision == drawn or revision.startswith(drawn + _DERIVED)


def _calipers(paths, shape, visible, calipers, spacing=None) -> list[dict]:
    """The largest region's calipers, drawn with the outline (hidden with it).

    Measured at the image's pixel ``spacing`` (``meta["pixel_spacing_mm"]``), as the
    measurements panel is: with non-square pixels the chords its mm figures measure are
    other ones than the longest in pixels, and those are the ones drawn.
    """
    if not paths or visible is False or calipers is False:
        return []
    try:
        largest = _measurements.summarize(_shapes.paths_to_mask(paths, shape),
                                          spacing, outlines=paths)["largest"]
    except ValueError:  # an outline of too many pieces: the measurements panel says so
        return []
    return _figure.caliper_annotations(largest)


# The image, outline, AI result and classification live in the app shell's stores,
# so they outlast a visit to another page. A callback of this page must not take
# them as Inputs, though: an answer that lands after the radiologist has gone to
# another page (a slow /predict, say) would fire it there, where the rest of its
# inputs are missing, and Dash drops the call with a ReferenceError. So the page
# fires on its own echo stores (IMAGE_OPENED, SEGMENT_DONE, CLASSIFY_DONE,
# OUTLINE_CHANGED), written by the same callbacks, and reads the shell as State;
# coming back, PAGE_LOAD and the redrawn inputs bring everything up to date.
# tests/annotation_client/test_app.py checks the rule for every callback.


# =========================================================================== callbacks: server


@callback(
    Output(ids.SERVER_ALERT, "children"),
    Output(ids.SERVER_STATUS, "children"),
    Output(ids.SERVER_RECHECK, "max_intervals"),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.SERVER_RECHECK, "n_intervals"),
)
def check_server(_loaded, rechecked=None):
    """Tell the user at once when the model server cannot be reached.

    The check waits :data:`HEALTH_WAIT_S` for the answer (:func:`_health`); one that
    takes longer goes on without the page, which asks for it again a second later
    (:data:`ids.SERVER_RECHECK`, :func:`refresh_server_status`) and says it then.
    """
    answer = _health()
    if answer is None or not answer[0]:
        return dash.no_update, dash.no_update, _ticks_done(rechecked) + 1
    return (*_checked(*answer[1:]), dash.no_update)


def _checked(health: dict | None, error: ModelServerError | None):
    """The page load's ``(alert, badge)`` for a health check's answer."""
    if error is None:
        return None, _status_badge(health)
    if isinstance(error, ModelServerBusy):  # answering others: no reason to warn yet
        return None, _status_badge(None, error)
    return _server_alert(error, "Auto-segmentation and classification"), _status_badge(
        None, error)


def _status_badge(health: dict | None, error: ModelServerError | None = None):
    """The model server's badge: ready (with the model's name), not ready (it answers
    503: loading, or its models failed), refusing this client (a 4xx: the server does
    not trust the name the client uses for it, say), busy (every one of this worker's
    model-call slots taken, so it was not asked) or offline (no answer)."""
    if health is None:
        if isinstance(error, ModelServerBusy):
            return dbc.Badge("model server busy", color="warning", text_color="dark",
                             title=error.message)
        status = getattr(error, "status", None)
        if status is not None and 400 <= status < 500:
            return dbc.Badge("model server refuses this client", color="danger",
                             title=error.message)
        if status is not None:
            return dbc.Badge("model server not ready", color="warning", text_color="dark",
                             title=error.message)
        return dbc.Badge("model server offline", color="warning", text_color="dark")
    model = health.get("model") or health.get("models") or {}
    name = model.get("name") if isinstance(model, dict) else None
    text = "model server ready" + (f" · {name}" if name else "")
    return dbc.Badge(text, color="success")


@callback(
    Output(ids.SERVER_STATUS, "children", allow_duplicate=True),
    Output(ids.SERVER_ALERT, "children", allow_duplicate=True),
    Output(ids.SERVER_BACK, "max_intervals"),
    Output(ids.SERVER_RECHECK, "max_intervals", allow_duplicate=True),
    Input(ids.SERVER_POLL, "n_intervals"),
    Input(ids.SERVER_ALERT, "children"),
    State(ids.SERVER_BACK, "n_intervals"),
    Input(ids.SERVER_RECHECK, "n_intervals"),
    State(ids.SERVER_STATUS, "children"),
    prevent_initial_call=True,
)
def refresh_server_status(_ticks, alert, ticked=None, rechecked=None, shown=None):
    """Keep the badge true while the page stays open.

    Asked every ``SERVER_POLL_MS`` and whenever a request's answer changes the
    server alert: a server that went away (or came back) after the page loaded
    must not go on being shown as it was. The alert stays the requests' own,
    saying what failed, except one saying the server cannot be reached: once it
    answers again, that is no longer true and goes with the offline badge. A slow
    answer, or a request the server refused, is not taken back by a health check.
    The server back, :data:`ids.SERVER_BACK` is set to tick once more, for
    :func:`segment` to outline an image opened while it was away.

    A check not answered within :data:`HEALTH_WAIT_S` goes on without the page: the
    badge shows the answer before it, and :data:`ids.SERVER_RECHECK` asks again a
    second later, until it has this check's answer (the page load's too, whose alert
    it then gives, when the page shows no badge yet).
    """
    no = dash.no_update
    answer = _health()
    again = _ticks_done(rechecked) + 1
    if answer is None:
        return no, no, no, again
    fresh, health, exc = answer
    if not fresh:
        # The answer before, once the page shows one: before it, the page load's check
        # is still to be answered, with its alert (below).
        return (no if shown is None else _status_badge(health, exc)), no, no, again
    if exc is not None:
        if shown is None and ids.SERVER_RECHECK in _triggered():
            said, badge = _checked(health, exc)
            return badge, no if alert else said, no, no
        # Busy (every slot taken by requests waiting for it) is not offline: the alert
        # that it cannot be reached stays until it answers.
        return _status_badge(None, exc), no, no, no
    if _says_unreachable(alert) and ids.SERVER_ALERT not in _triggered():
        return _status_badge(health), None, _ticks_done(ticked) + 1, no
    # Asked by the alert itself (a request found the server away, and it answers its
    # health check already: one worker's request dropped): the alert stays until the
    # next poll, which takes it away with SERVER_BACK. Here, in the chain of the
    # request that failed, SERVER_BACK would not run that request's callback again
    # (Dash runs no callback a chain of its own outputs triggers), and the image was
    # left with neither its outline nor the alert that says why.
    return _status_badge(health), no, no, no


def _ticks_done(ticked) -> int:
    """A one-shot interval's ticks so far (:data:`ids.SERVER_BACK`, :data:`ids.SERVER_RECHECK`),
    as the browser reports them (checked)."""
    if isinstance(ticked, int) and not isinstance(ticked, bool) and ticked > 0:
        return ticked
    return 0


def _says_unreachable(alert) -> bool:
    """Whether the server alert, as the browser holds it, is one of :func:`_server_alert`
    for a server that could not be reached."""
    props = alert.get("props") if isinstance(alert, dict) else None
    return isinstance(props, dict) and props.get("className") == UNREACHABLE_CLASS


@callback(
    Output(ids.MARGIN_HINT, "children"),
    Input(ids.descriptor("margin"), "value"),
)
def check_margin(margin):
    """Say, as the boxes are ticked, when the margin contradicts itself."""
    return margin_conflict(margin if isinstance(margin, list) else None)


@callback(
    Output(ids.READING_HINT, "children"),
    Input(ids.FINAL_LABEL, "value"),
    Input(ids.descriptor("assessment"), "value"),
    # The history is the shell's: a page callback only reads it, and hears of its
    # changes through the page's own echo (see test_no_callback_mixes_the_shell_and_a_page).
    State(ids.HISTORY, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.PAGE_LOAD, "data"),
)
def check_reading(label, assessment, history, meta, *_echoes):
    """Say, as the record is filled in, when label, outline and assessment disagree.

    A hint only (see :mod:`annotation_client._consistency`): Save repeats it and
    saves all the same. Nothing is said before an image is open.
    """
    if not meta:
        return None
    paths = _present(history, meta)["paths"]
    try:
        # A region that covers no pixel (a drag within one, or drawn off the image) is
        # saved as no outline (final.empty), so it is said as none here too.
        outlined = bool(paths) and bool(_shapes.paths_to_mask(paths, _shape(meta)).any())
    except ValueError:  # an outline of too many pieces: the measurements panel says so
        outlined = True
    return _consistency.reading_conflict(label, outlined, assessment)


@callback(
    Output(ids.MODEL_VERSIONS_HINT, "children"),
    # The stores are the shell's: a page callback only reads them, and hears of their
    # changes through the page's own echoes (see test_no_callback_mixes_the_shell_and_a_page):
    # an outline arrived, a classification, an image opened, a version loaded.
    State(ids.AI_RESULT, "data"),
    State(ids.CLASSIFICATION, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.SEGMENT_DONE, "data"),
    Input(ids.CLASSIFY_DONE, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.LOADED_SAVE, "data"),
    Input(ids.PAGE_LOAD, "data"),
)
def check_model_versions(ai, classification, meta, *_echoes):
    """Say, before a save, when the outline and the AI label came from different model
    versions: the versions Save would record (``model.segmentation`` and
    ``model.classification``) for the open image. A hint only: Save repeats it and
    saves all the same. Gone when both come from one version again."""
    if not meta:
        return None
    # Each only when it is of the open image, as Save takes them.
    ai = _ai_for(ai, meta)
    if not (isinstance(classification, dict) and classification.get("image") == meta["sha256"]):
        classification = None
    return _consistency.model_version_conflict(
        ai.get("model") if ai else None, classification.get("model") if classification else None,
        classification.get("version") if classification else None)


# =========================================================================== callbacks: image


@callback(
    Output(ids.SPACING_FORM, "hidden"),
    Output(ids.SPACING_INPUT, "value"),
    Output(ids.SPACING_NOTE, "children"),
    Output(ids.SPACING_OFFERED, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.PAGE_LOAD, "data"),
    # A loaded version may bring its typed spacing back (see _typed_spacing).
    Input(ids.LOADED_SAVE, "data"),
    State(ids.IMAGE_META, "data"),
)
def show_calibration(_opened, _loaded, _version, meta):
    """Offer the spacing by hand only when the file does not give it.

    The field shows the spacing the image is measured at. An image opened again
    has none until it is set, but when its latest saved version (this reader's,
    under blinded reading) was measured at one the reader gave, the field offers
    that value: the depth scale has not changed, and Set is one click. The offer is
    kept (SPACING_OFFERED), so that Set as offered records the version's source
    ("calibrated" stays so), not "manual".
    """
    no = dash.no_update
    if not meta or _file_gives_spacing(meta):
        return True, None, None, no
    typed = meta.get("pixel_spacing_mm")
    if typed:
        return False, typed[1], None, no
    if ids.IMAGE_OPENED in _triggered():
        earlier = _saved_spacing(meta)
        if earlier is not None:
            version, mm, source = earlier
            how = {_spacing_aids.CALIBRATED: "calibrated on its depth scale",
                   _spacing_aids.REUSED: "reused from an earlier image"}.get(source, "set by hand")
            return False, mm, html.Span(
                f"Version {version} was measured at {mm:g} mm per pixel, {how}; "
                "Set measures at it again.",
                className="text-muted",
            ), {"image": meta["sha256"], "mm": mm, "source": source}
        return False, None, None, None
    return False, None, None, no


def _saved_spacing(meta: dict) -> tuple[int, float, str] | None:
    """``(version, mm per pixel, source)`` the reader gave the image's latest saved version
    (typed, calibrated or reused: ``pixel_spacing_source``).

    None when there is no such version, it states no typed spacing, or it cannot
    be read (loading it says why).
    """
    try:
        version, record = _latest_record(meta)
    except (OSError, ValueError, _signin.SignInError):
        return None
    spaced = _typed_spacing(meta, record) if isinstance(record, dict) else None
    if spaced is None:
        return None
    return version, spaced["pixel_spacing_mm"][1], spaced["pixel_spacing_source"]


def _reader_spacing(meta: dict | None) -> list[float] | None:
    """The pixel spacing (mm, ``(row, column)``) the reader gave the open image (typed,
    calibrated or reused), which a save records and a reload would lose; None when
    the measurements are in pixels or the file gives the spacing."""
    if not meta or meta.get("pixel_spacing_source") not in _spacing_aids.READER_SOURCES:
        return None
    spacing = meta.get("pixel_spacing_mm")
    return list(spacing) if spacing else None


def _file_gives_spacing(meta: dict) -> bool:
    """Whether the spacing the image is measured at is its file's (never overridden)."""
    return bool(meta.get("pixel_spacing_mm")) and (
        meta.get("pixel_spacing_source") not in _spacing_aids.READER_SOURCES)


@callback(
    Output(ids.IMAGE_META, "data", allow_duplicate=True),
    Output(ids.IMAGE_INFO, "children", allow_duplicate=True),
    Output(ids.OUTLINE_CHANGED, "data", allow_duplicate=True),
    Output(ids.SPACING_NOTE, "children", allow_duplicate=True),
    Output(ids.SPACING_LAST, "data"),
    Input(ids.SPACING_SET, "n_clicks"),
    Input(ids.SPACING_INPUT, "n_submit"),
    State(ids.SPACING_INPUT, "value"),
    State(ids.IMAGE_META, "data"),
    State(ids.SPACING_CALIBRATION, "data"),
    State(ids.SPACING_OFFERED, "data"),
    prevent_initial_call=True,
)
def set_spacing(_clicks, _submitted, value, meta, calibration=None, offered=None):
    """Measure in millimetres from a spacing the radiologist typed (square pixels).

    The measurements panel and calipers follow at once (through the outline's
    echo), and a save records the spacing with ``pixel_spacing_source``
    "manual", or "calibrated" when it is the one Compute put in the field from a
    line drawn on this image (``calibration``, SPACING_CALIBRATION). A spacing the
    file gives is not overridden here. The session keeps the spacing Set, to offer it
    on the next image without one (SPACING_LAST).
    """
    if not meta or not (_clicks or _submitted):
        raise PreventUpdate
    no = dash.no_update
    if _file_gives_spacing(meta):
        return no, no, no, "The file gives its own pixel spacing.", no
    meta = _signing.unsigned(meta)
    last = no
    if value in (None, ""):
        meta.update(pixel_spacing_mm=None, pixel_spacing_source=None)
        note = "Measurements in pixels."
    else:
        mm = _typed_mm(value)
        if mm is None or not vectorizer.is_plausible_spacing(mm, mm):
            return no, no, no, _spacing_refusal(value), no
        if (wrong := _implausible_field(meta, mm)) is not None:
            return no, no, no, html.Span(wrong, className="text-danger"), no
        computed = (isinstance(calibration, dict) and calibration.get("image") == meta["sha256"]
                    and calibration.get("spacing") == mm)  # fmt: skip
        # The spacing a saved version was measured at, offered and Set unchanged.
        again = (isinstance(offered, dict) and offered.get("image") == meta["sha256"]
                 and offered.get("mm") == mm
                 and offered.get("source") in _spacing_aids.READER_SOURCES)  # fmt: skip
        source = (_spacing_aids.CALIBRATED if computed else offered["source"] if again
                  else _spacing_aids.MANUAL)
        meta.update(pixel_spacing_mm=[mm, mm], pixel_spacing_source=source)
        how = {_spacing_aids.CALIBRATED: "calibrated on the image's depth scale",
               _spacing_aids.REUSED: "reused from an earlier image"}.get(source, "set by hand")
        note = f"Measuring at {mm:g} mm per pixel, {how}; a save records it so."
        last = _spacing_aids.remembered(meta, mm)
    return (_signing.signed(meta, ids.IMAGE_META), _views.image_info(meta), time.time_ns(),
            html.Span(note, className="text-success-emphasis"), last)


@callback(
    Output(ids.SPACING_REUSE_ROW, "hidden"),
    Output(ids.SPACING_REUSE, "children"),
    Output(ids.SPACING_REUSE_NOTE, "children"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.LOADED_SAVE, "data"),
    Input(ids.SPACING_LAST, "data"),
    State(ids.IMAGE_META, "data"),
)
def offer_last_spacing(_opened, _page, _loaded, last, meta):
    """Offer the spacing Set on an earlier image, on an image measured in pixels.

    A button to click, never applied unasked: the scanner's depth, so the spacing,
    may have changed between the two images. It says so when the image it was Set
    on had another size. Hidden once the image has a spacing (the file's, or one Set).
    """
    offer = _spacing_aids.reuse_offer(last, _signing.unsigned(meta) if meta else None)
    if offer is None:
        return True, None, None
    return False, offer["label"], offer["size_note"]


@callback(
    Output(ids.IMAGE_META, "data", allow_duplicate=True),
    Output(ids.IMAGE_INFO, "children", allow_duplicate=True),
    Output(ids.OUTLINE_CHANGED, "data", allow_duplicate=True),
    Output(ids.SPACING_NOTE, "children", allow_duplicate=True),
    Output(ids.SPACING_INPUT, "value", allow_duplicate=True),
    Output(ids.SPACING_REUSE_ROW, "hidden", allow_duplicate=True),
    Input(ids.SPACING_REUSE, "n_clicks"),
    State(ids.SPACING_LAST, "data"),
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
def reuse_spacing(clicks, last, meta):
    """Measure at the spacing Set on an earlier image: the radiologist's click says so.

    A save records it with ``pixel_spacing_source`` "reused" (the reader's, like
    "manual"). Offered again from the stores, so a stale button (another image
    opened since) does nothing it does not say.
    """
    if not clicks or not meta:
        raise PreventUpdate
    offer = _spacing_aids.reuse_offer(last, _signing.unsigned(meta))
    if offer is None:
        raise PreventUpdate
    meta = _signing.unsigned(meta)
    mm = offer["mm"]
    meta.update(pixel_spacing_mm=[mm, mm], pixel_spacing_source=_spacing_aids.REUSED)
    note = (f"Measuring at {mm:g} mm per pixel, as set on {offer['name']}; a save records "
            "it as reused.")
    return (_signing.signed(meta, ids.IMAGE_META), _views.image_info(meta), time.time_ns(),
            html.Span(note, className="text-success-emphasis"), mm, True)


# Calibration on the depth scale: Calibrate turns the mouse into a line pen; the line
# drawn along a known distance of the scale gives its length in image pixels (the
# figure's units: see _figure), and the distance typed in mm gives the spacing, put
# in the field for the radiologist to Set. The line is no outline: edit() leaves a
# line out of the regions (_shapes.apply_relayout keeps paths only), and it is taken
# off the graph as soon as it is measured, the tool's own mouse mode back.

#: ``layout.newshape`` of the calibration line: thin, in the calipers' lime.
CALIBRATION_PEN = {"line": {"color": _figure.CALIPER_COLOR, "width": 2}}


@callback(
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Output(ids.SPACING_CALIBRATION, "data"),
    Output(ids.SPACING_NOTE, "children", allow_duplicate=True),
    Output(ids.SPACING_LINE_FORM, "style"),
    Input(ids.SPACING_CALIBRATE, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
def start_calibration(clicks, meta):
    """Calibrate: the next drag on the image draws a line (plotly's ``drawline``)."""
    if not clicks or not meta:
        raise PreventUpdate
    no = dash.no_update
    if _file_gives_spacing(meta):
        return no, no, "The file gives its own pixel spacing.", no
    patch = Patch()
    patch["layout"]["dragmode"] = "drawline"
    patch["layout"]["newshape"] = CALIBRATION_PEN
    note = html.Span("Drag along the depth scale from one mark to another whose distance "
                     "you know (the longer, the closer).", className="text-info-emphasis")
    return patch, {"image": meta["sha256"], "pixels": None}, note, {"display": "none"}


def _passes_shapes_of(kind: str) -> str:
    """A clientside function passing on the graph's relayout event only when its
    shapes hold one of plotly type ``kind`` ("rect": a box drawn; "line": a calibration
    line), and answering nothing otherwise."""
    return f"""
    function(relayout) {{
        var shapes = relayout && relayout.shapes;
        if (!Array.isArray(shapes)) {{ return window.dash_clientside.no_update; }}
        var drawn = shapes.some(function(s) {{ return s && s.type === '{kind}'; }});
        return drawn ? relayout : window.dash_clientside.no_update;
    }}
    """


# Only a graph event that holds a line goes on to take_calibration_line (as for boxes:
# the other events must not wait for a round trip that answers nothing).
clientside_callback(
    _passes_shapes_of("line"),
    Output(ids.SPACING_LINE_DRAWN, "data"),
    Input(ids.ANNOTATION_GRAPH, "relayoutData"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Output(ids.SPACING_CALIBRATION, "data", allow_duplicate=True),
    Output(ids.SPACING_NOTE, "children", allow_duplicate=True),
    Output(ids.SPACING_LINE_FORM, "style", allow_duplicate=True),
    Output(ids.SPACING_LINE_TEXT, "children"),
    Input(ids.SPACING_LINE_DRAWN, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.SPACING_CALIBRATION, "data"),
    State(ids.TOOL, "value"),
    State(ids.OVERLAY_OPACITY, "value"),
    State(ids.OVERLAY_VISIBLE, "value"),
    State(ids.SHOW_CALIPERS, "value"),
    prevent_initial_call=True,
)
def take_calibration_line(relayout, meta, history, calibration, tool, opacity, visible,
                          calipers):
    """Measure the line drawn after Calibrate, take it off the graph, give the tool back.

    ``relayout`` is the graph's event holding the line (``{"shapes": [...]}``, the
    outline's paths with it). The graph is redrawn with those paths alone, as a
    drawing derived from the history's (see _derived_drawing, as ask_box does), and
    the mouse mode and pen of the tool the tool bar shows.
    """
    if not meta:
        raise PreventUpdate
    present = _present(history, meta)
    change = _relayout_change(present["paths"], relayout)
    paths = change.paths if change.paths is not None else present["paths"]
    figure = _shapes_patch(paths, opacity, visible, calipers, _shape(meta),
                           _derived_drawing(history), _spacing(meta))
    tool = tool if tool in _figure.TOOL_DRAGMODES else DEFAULT_TOOL
    figure["layout"]["dragmode"] = _figure.TOOL_DRAGMODES[tool]
    figure["layout"]["newshape"] = _figure.newshape_style(tool)
    no = dash.no_update
    calibrating = isinstance(calibration, dict) and calibration.get("image") == meta["sha256"]
    pixels = _spacing_aids.line_length_px(relayout)
    if not calibrating or _file_gives_spacing(meta):
        return figure, no, no, no, no
    if pixels is None or pixels < 1:
        note = html.Span("The line has no length: click Calibrate and drag from one mark "
                         "of the depth scale to another.", className="text-danger")
        return figure, {"image": meta["sha256"], "pixels": None}, note, {"display": "none"}, no
    note = html.Span("Type the line's length on the depth scale in mm, then Compute.",
                     className="text-info-emphasis")
    return (figure, {"image": meta["sha256"], "pixels": pixels}, note, None,
            f"Line {pixels:.1f} px =")


@callback(
    Output(ids.SPACING_INPUT, "value", allow_duplicate=True),
    Output(ids.SPACING_NOTE, "children", allow_duplicate=True),
    Output(ids.SPACING_CALIBRATION, "data", allow_duplicate=True),
    Input(ids.SPACING_LINE_COMPUTE, "n_clicks"),
    Input(ids.SPACING_LINE_MM, "n_submit"),
    State(ids.SPACING_LINE_MM, "value"),
    State(ids.SPACING_CALIBRATION, "data"),
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
def compute_calibration(clicks, submitted, length_mm, calibration, meta):
    """The spacing from the line: its length in mm over its length in image pixels.

    Put in the field, not Set: the radiologist reads it and clicks Set (until then
    Save waits, see _spacing_unset). The calibration store keeps it, so that Set
    records a spacing Set as computed as "calibrated" (see set_spacing). A length
    that is no positive number, or a spacing outside the vectorizer's plausible
    range, is refused with the reason.
    """
    if not meta or not (clicks or submitted):
        raise PreventUpdate
    no = dash.no_update
    if not (isinstance(calibration, dict) and calibration.get("image") == meta["sha256"]):
        return no, html.Span("Click Calibrate and draw a line on this image first.",
                             className="text-danger"), no
    spacing, message = _spacing_aids.calibrated(length_mm, calibration.get("pixels"))
    if spacing is None:
        return no, html.Span(message, className="text-danger"), no
    return (spacing, html.Span(message, className="text-info-emphasis"),
            dict(calibration, spacing=spacing))


@callback(
    Output(ids.SPACING_CALIBRATION, "data", allow_duplicate=True),
    Output(ids.SPACING_LINE_FORM, "style", allow_duplicate=True),
    Input(ids.IMAGE_OPENED, "data"),
    prevent_initial_call=True,
)
def end_calibration(_opened):
    """A line measured on one image calibrates no other: a new image starts without."""
    return None, {"display": "none"}


#: The widest side a breast-ultrasound frame is taken to show, in mm: a linear probe's
#: field is 4 to 6 cm, a panoramic (extended field of view) sweep up to about 30 cm. A
#: spacing that makes the image wider is a slip (a decimal point lost: "0,09" read as 9).
MAX_FIELD_MM = 500.0


def _typed_mm(value) -> float | None:
    """The spacing typed in the field, in mm per pixel; None if it is not a number.

    The field is text (see _calibration_form): a decimal comma, as in "0,086", is
    read as the decimal point; a number (set by the page itself) is taken as it is.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if value.count(",") == 1 and "." not in value:
            value = value.replace(",", ".")
    try:
        mm = float(value)
    except (TypeError, ValueError):
        return None
    return mm if math.isfinite(mm) else None


def _implausible_field(meta: dict, mm: float) -> str | None:
    """Why ``mm`` per pixel cannot be this image's spacing, from the size it gives the
    image (over :data:`MAX_FIELD_MM` across); None if it can."""
    width, height = int(meta["width"]), int(meta["height"])
    if max(width, height) * mm <= MAX_FIELD_MM:
        return None
    return (f"Not set: at {mm:g} mm per pixel this {width}x{height} image would be "
            f"{width * mm / 10:.3g} x {height * mm / 10:.3g} cm across, and a breast-"
            f"ultrasound frame is at most {MAX_FIELD_MM / 10:g} cm. Check the value (mm per "
            f"pixel: the depth scale's length in mm over its length in pixels).")


def _spacing_refusal(value) -> html.Span:
    return html.Span(
        f"{str(value)[:40]!r} is not a pixel spacing: give mm per pixel, from "
        f"{vectorizer.MIN_PIXEL_SPACING_MM:g} to {vectorizer.MAX_PIXEL_SPACING_MM:g} "
        "(the vectorizer's plausible range).",
        className="text-danger",
    )


def _spacing_unset(typed, meta: dict) -> str | None:
    """Why a save must wait when the spacing field shows other than the spacing in use.

    The record states the spacing the measurements use, which only *Set* (or Enter)
    changes; a value typed and left, or a field emptied, would have the record
    disagree with the screen. None when they agree, or the file gives the spacing
    (the field is hidden then).
    """
    if _file_gives_spacing(meta):
        return None
    spacing = meta.get("pixel_spacing_mm")
    used = float(spacing[1]) if spacing else None
    if typed in (None, ""):
        if used is None:
            return None
        return (f"The pixel spacing field is empty, but the measurements use {used:g} mm per "
                "pixel. Click Set to measure in pixels, or type the spacing again, then save.")
    shown = _typed_mm(typed)
    if shown is not None and shown == used:
        return None
    text = str(typed)[:40]
    if used is None:
        return (f"The pixel spacing field shows {text} mm per pixel, but it was not Set: the "
                "measurements are in pixels. Click Set to measure at it, or empty the field "
                "to save in pixels, then save.")
    return (f"The pixel spacing field shows {text} mm per pixel, but the measurements use "
            f"{used:g} (the new value was not Set). Click Set to measure at {text}, or put "
            f"back {used:g}, then save.")


@callback(
    Output(ids.SAVE_ALERT_ON_OPEN, "data"),
    Output(ids.SAVED_BEFORE_NEXT, "data", allow_duplicate=True),
    Input(ids.IMAGE_OPENED, "data"),
    State(ids.SAVED_BEFORE_NEXT, "data"),
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
def clear_save_message(opened, saved_before=None, meta=None):
    """A save's message (success or failure) is about the image it was for.

    Left under Save, "Saved." would stand beside the next image, which no one
    has saved. After *Save & next*, though, the reader has not seen it: one line
    says which image was saved, as which version, once the next is open.

    Returns ``{"opened": IMAGE_OPENED's "at", "alert": the message or None}`` for
    ``SAVE_ALERT_ON_OPEN``, which puts it under Save only if Save was not pressed on
    that open meanwhile (see there), and SAVED_BEFORE_NEXT emptied.
    """
    if not opened:
        raise PreventUpdate
    at = opened.get("at") if isinstance(opened, dict) else None
    done = _saved_before_next(saved_before, meta)
    if done is None:
        return {"opened": at, "alert": None}, None
    name, version = done
    return {"opened": at, "alert": _views.alert(
        f"{name}, as version {version}, before this image was opened.",
        "success", title="Saved.", id="save-next-result",
    )}, None


# The open's message goes under Save here, in the browser, as it arrives, and not when a
# Save was pressed on that open (SAVE_PRESS's "opened"): that press's answer is the later
# word. Dash holds clear_save_message back while a callback in flight may still change
# its input, even through others (an open follows a save, through Save & next), and on a
# busy page a Ctrl+S pressed at once on the image just opened was answered first: its
# "Not saved." was replaced by the line about the image before, or cleared, and the
# reader did not see why nothing was saved. Which message is on screen when the open's
# arrives only the browser knows. A message of an earlier open (one opened since is on
# its way) is not put either.
clientside_callback(
    """
    function(message, opened, press) {
        var no = window.dash_clientside.no_update;
        if (!message || !opened || message.opened == null || message.opened !== opened.at) {
            return no;
        }
        if (press && press.opened === opened.at) { return no; }
        return message.alert;
    }
    """,
    Output(ids.SAVE_ALERT, "children", allow_duplicate=True),
    Input(ids.SAVE_ALERT_ON_OPEN, "data"),
    State(ids.IMAGE_OPENED, "data"),
    State(ids.SAVE_PRESS, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.SAVED_BEFORE_NEXT, "data", allow_duplicate=True),
    Input(ids.WORKLIST_NOTE, "children"),
    State(ids.SAVED_BEFORE_NEXT, "data"),
    prevent_initial_call=True,
)
def forget_saved_before_next(note, saved_before=None):
    """Save & next that opened nothing (every other case saved, or open elsewhere, or
    the list unavailable) leaves its save's message where it is: the line for the next
    image is dropped, or it would stand over a case opened much later."""
    if saved_before is None or not set(_components_in(note)) & {
            "worklist-done", "worklist-all-claimed", "worklist-error", "worklist-all-failed"}:
        raise PreventUpdate
    return None


def _components_in(tree) -> dict[str, object]:
    """``{id: children}`` of the components with an id in a Dash tree, as the layout holds
    it or as the browser sends it back (JSON: ``{"type", "namespace", "props"}``)."""
    if isinstance(tree, list | tuple):
        found = {}
        for part in tree:
            found |= _components_in(part)
        return found
    if isinstance(tree, dict):
        props = tree.get("props")
        props = props if isinstance(props, dict) else {}
        component_id, children = props.get("id"), props.get("children")
    else:
        component_id, children = getattr(tree, "id", None), getattr(tree, "children", None)
    found = {component_id: children} if isinstance(component_id, str) else {}
    if children is not None and not isinstance(children, str | int | float):
        found |= _components_in(children)
    return found


def _saved_before_next(saved_before, meta) -> tuple[str, int] | None:
    """``(name, version)`` of the save *Save & next* went on from, when the image now
    open is another; None otherwise (the store is the browser's: checked)."""
    if not (isinstance(saved_before, dict) and isinstance(meta, dict)):
        return None
    name, version = saved_before.get("name"), saved_before.get("version")
    if saved_before.get("image") == meta.get("sha256") or not isinstance(name, str):
        return None
    try:
        version = int(version)
    except (TypeError, ValueError):
        return None
    return (name[:200], version) if version > 0 else None


def _opening(contents) -> str:
    """Which of the open's inputs this call opens: ``ids.IMAGE_UPLOAD`` or
    ``ids.WORKLIST_REQUEST``.

    Both can fire in one call: the browser merges an upload made while the page's first
    request for a worklist entry (every page load makes one, most often empty) is held
    back behind a slow one, such as the health poll of a stalled model server. Dispatched
    on the first trigger, the empty request won and the file dropped was dropped with
    it, silently. A file that came wins: it is the later of the two actions (the page's
    own request goes as it loads, or with a click the drop came after).
    """
    fired = _triggered()
    if ids.WORKLIST_REQUEST in fired and not (ids.IMAGE_UPLOAD in fired and contents):
        return ids.WORKLIST_REQUEST
    return ids.IMAGE_UPLOAD


def _asked_for(request) -> str | None:
    """How a message names what a worklist request asked for; None for no request."""
    if not isinstance(request, dict):
        return None
    if request.get("saved"):
        return "the saved image the link names"
    path = request.get("path")
    return _signin.shown_text(str(path)) if path else None


def open_image(contents, request, filename, current_meta, tool="pan"):
    """Open the uploaded file or the worklist entry asked for (see :func:`_show`);
    a file uploaded in the same call as a request wins (:func:`_opening`)."""
    if _opening(contents) == ids.WORKLIST_REQUEST:
        if isinstance(request, dict) and request.get("saved"):
            return open_kept_upload(request, current_meta, tool)
        return open_worklist_entry(request, current_meta, tool)
    opened = open_upload(contents, filename, current_meta, tool)
    passed = _asked_for(request) if ids.WORKLIST_REQUEST in _triggered() else None
    if passed is None:
        return opened
    # Said, not only done: the entry asked for was not opened, and may be opened now.
    note = _views.alert(
        f"Not opened: {passed}, asked for at the same moment as this file (the file goes "
        "first). Open it again from the worklist or its link to read it.",
        "info", id="upload-over-request")
    shown = opened[4]
    return (*opened[:4], note if shown is None else [shown, note], *opened[5:])


@callback(
    Output(ids.IMAGE_META, "data"),
    Output(ids.IMAGE_DATA, "data"),
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Output(ids.IMAGE_INFO, "children", allow_duplicate=True),
    Output(ids.UPLOAD_ALERT, "children"),
    Output(ids.FINAL_LABEL, "value"),
    Output(ids.NOTE, "value"),
    Output(ids.CLASSIFICATION, "data"),
    # Emptied after every open, of a file or a worklist entry, and after a file that did
    # not open: uploading the same file again is then a change (Dash fires no callback
    # for a property set to the value it has).
    Output(ids.IMAGE_UPLOAD, "contents"),
    Output(ids.IMAGE_OPENED, "data"),
    # The BI-RADS descriptors describe one image's lesion: a new image starts blank.
    *[Output(ids.descriptor(name), "value") for name in DESCRIPTOR_OPTIONS],
    # A worklist file that did not open, which Open next then passes over (_failed_open).
    Output(ids.WORKLIST_FAILED, "data"),
    # Written with IMAGE_OPENED, which revise_linked and edit answer: set later, the
    # model's outline could be drawn before the wish to load over it was known.
    Output(ids.REVISE_ON_OPEN, "data", allow_duplicate=True),
    Input(ids.IMAGE_UPLOAD, "contents"),
    Input(ids.WORKLIST_REQUEST, "data"),
    State(ids.IMAGE_UPLOAD, "filename"),
    State(ids.IMAGE_META, "data"),
    State(ids.TOOL, "value"),
    State(ids.REVISE_ON_OPEN, "data"),
    State(ids.ANNOTATOR, "value"),
    State(ids.WORKLIST_FAILED, "data"),
    State(ids.SAVED_BEFORE_NEXT, "data"),
    prevent_initial_call=True,
)
def open_to_revise(contents, request, filename, current_meta, tool="pan", revise=None,
                   annotator=None, failed=None, saved_before=None):
    """Open an image (:func:`open_image`) and load the reader's saved reading of it.

    Reopening a case shows what was saved of it, not the AI's outline with a blank
    label that a Save would then record as a new version. The rule
    (:func:`_version_to_revise`): the latest version the reader saved, when a reader
    is known (signed in, or named in the Annotator field); none with no reader known.
    Other readers' versions are not loaded, so that a second reading stays
    independent: :func:`show_others_saves`
    says they exist, above the image, with *Load it to revise*. The load itself is
    a Saved-page link's (``REVISE_ON_OPEN``, see :func:`revise_linked`); a link's
    own wish for this image stands, and an image opened again keeps its work.
    """
    # A new image opens with the default tool (reset_tool sets the tool bar to it): a
    # figure drawn with the old one would let a drag draw a box until that answers.
    opened = open_image(contents, request, filename, current_meta, DEFAULT_TOOL)
    if isinstance(opened[9], dict) and _saved_before_next(saved_before, opened[0]) is not None:
        # Opened by Save & next: a save of it a moment later is a second press of the
        # keys, not a reading (_unseen_save).
        opened = (*opened[:9], dict(opened[9], after_save_next=True), *opened[10:])
    return (*opened, _failed_open(opened[0], request, failed, contents),
            _wish_on_open(opened[0], current_meta, revise, annotator))


#: Most worklist files a tab remembers having failed to open.
MAX_FAILED_KEPT = 200


def _failed_entries(failed) -> dict[str, str]:
    """``{path: sha256}`` of the ``WORKLIST_FAILED`` store (the browser's: checked)."""
    entries = failed.get("entries") if isinstance(failed, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {p: h for p, h in entries.items()
            if isinstance(p, str) and isinstance(h, str) and _SHA256.fullmatch(h)}


def _failed_open(meta, request, failed, contents=None):
    """``WORKLIST_FAILED`` after an open: with the worklist file that did not open added,
    by its path and the hash of its bytes (a file exported again opens once more).

    *Open next not annotated* claims the entry it picks before it opens; a damaged file
    then stayed first in line, so every click (and *Save & next*) picked it again, and
    the reading went no further. :func:`_follow_claim` hands the page's claim back to the
    image still open, and :func:`_next_path` passes the file over.
    """
    if not isinstance(request, dict) or not isinstance(request.get("path"), str) \
            or ids.WORKLIST_REQUEST not in _triggered():
        return dash.no_update
    path = request["path"]
    if _opening(contents) != ids.WORKLIST_REQUEST:
        # An upload in the same call was opened in its place (_opening): the entry did
        # not fail, and is not passed over; only the claim Open next may have moved to
        # it goes back (_follow_claim), when the upload did not open either.
        if meta is not dash.no_update:
            return dash.no_update
        return {"entries": _failed_entries(failed), "at": time.time_ns(), "last": path}
    if meta is not dash.no_update:
        return dash.no_update
    config = get_config()
    try:
        sha = _worklist.entry_sha256(config.worklist_dir, path, data_dir=config.data_dir)
    except (OSError, ValueError, TypeError):
        # Gone, unreadable or never a worklist entry: the listing has no such entry to
        # pass over, but the page's claim is handed back all the same.
        sha = None
    entries = {p: h for p, h in _failed_entries(failed).items() if p != path}
    if sha is not None:
        entries[path] = sha
    entries = dict(list(entries.items())[-MAX_FAILED_KEPT:])
    # The time: the same file failing again is a change of the store, which hands the
    # claim back again; "last", the file whose claim is to go.
    return {"entries": entries, "at": time.time_ns(), "last": path}


def _wish_on_open(meta, current_meta, revise, annotator):
    """``REVISE_ON_OPEN`` once ``meta`` is open: ``{"sha256", "version"}`` or None."""
    if not isinstance(meta, dict):
        return dash.no_update  # the file did not open: the open image and its wish stay
    if _links_to(revise, meta):
        return dash.no_update  # a Saved page link's, for this very image
    if isinstance(current_meta, dict) and current_meta.get("sha256") == meta["sha256"]:
        return None  # opened again: its outline and record are kept as they are
    version = _version_to_revise(meta, annotator)
    return None if version is None else {"sha256": meta["sha256"], "version": version}


def _reader_named(annotator) -> str | None:
    """Who is reading: the signed-in reader, else the name typed in Annotator, else None.

    Raises
    ------
    _signin.SignInError
        A sign-in proxy that named nobody, or a typed name no save would take.
    """
    reader = get_reader()  # blinded reading: the signed-in reader
    if reader is not None:
        return reader
    header = get_config().annotator_header
    if header:
        return _signin.signed_in_name(flask.request.headers, header)
    if isinstance(annotator, str) and annotator.strip():
        return _signin.checked_name(annotator, "The annotator's name")
    return None


def _version_to_revise(meta: dict, annotator) -> int | None:
    """The saved version an image opened loads: the latest of the reader's own when a
    reader is named (:func:`_reader_named`); None for none, and with no reader named.

    A reader whose name cannot be read (a sign-in that failed, a name a save refuses)
    gets none: another reader's version is never loaded for them by default. Nor is
    one loaded before the reader is known: a second reader in a new browser who
    opened a case before typing a name got the first reader's whole reading (outline,
    label, BI-RADS, note), and the save made of it counted as a revision of theirs,
    not an independent read. :func:`show_others_saves` says what was saved, with
    *Load it to revise*.
    """
    try:
        reader = _reader_named(annotator)
        if reader is None:
            return None
        versions = get_store().versions(meta["sha256"], reader)
    except (OSError, ValueError, _signin.SignInError):
        return None
    return versions[-1] if versions else None


def open_upload(contents, filename, current_meta, tool="pan"):
    """Open a file from ``dcc.Upload`` (its ``data:`` URL contents)."""
    if not contents:
        raise PreventUpdate
    return _show(filename, lambda: parse_data_url(contents), current_meta, tool)


def _file_name(filename) -> str:
    """The uploaded file's name as the record keeps it: each character an annotator's
    name may not hold (control characters, C1 ones included, the line and paragraph
    separators and the bidirectional formatting characters: ``_signin.checked_name``'s
    rule) replaced by "_"; at most 255 characters; "image" without one.

    The index and the CSV cannot hold control characters, and a separator breaks the
    Saved page's rows. A bidi override shows the name reordered there and in a
    spreadsheet: "scan\u202egnp.exe" reads as "scanexe.png".
    """
    if not isinstance(filename, str):
        return "image"
    # The annotator names' rules, not copies of them.
    return _signin.shown_text(filename).strip()[:255] or "image"


def open_worklist_entry(request, current_meta, tool="pan"):
    """Open the worklist entry ``request["path"]``, relative to ``SONOTRACE_WORKLIST_DIR``."""
    config = get_config()
    if not isinstance(request, dict) or not request.get("path") or config.worklist_dir is None:
        raise PreventUpdate
    path = str(request["path"])

    def read() -> bytes:
        # Every failure becomes the message a bad upload gets.
        try:
            return _worklist.read_entry(
                config.worklist_dir, path, max_bytes=config.max_upload_bytes,
                data_dir=config.data_dir,
            )
        except ImageDecodeError:
            raise
        except FileNotFoundError:
            raise ImageDecodeError(
                f"{path} is not in the worklist folder (moved, renamed or never there); "
                "refresh the list."
            ) from None
        except ValueError:  # a path out of the folder: only a forged request or link
            raise ImageDecodeError(
                f"{path} is not a file inside the worklist folder."
            ) from None
        except OSError as exc:
            raise ImageDecodeError(f"{path} cannot be read ({exc.strerror or exc}).") from None

    return _show(PurePosixPath(path).name, read, current_meta, tool, worklist_path=path)


#: The smallest box the model segments, in image pixels a side (models.runtime).
MIN_BOX_SIDE = 8


def open_kept_upload(request, current_meta, tool="pan"):
    """Open the copy of an upload kept beside its saved versions (``request["saved"]``)."""
    sha = str(request["saved"])
    store = get_store()
    try:
        reader = get_reader()
    except _signin.SignInError as exc:
        refused = str(exc)

        def unnamed() -> bytes:
            raise ImageDecodeError(refused)

        return _show("image", unnamed, current_meta, tool)
    try:
        versions = store.versions(sha, reader)
        record = store.load_record(sha, versions[-1]) if versions else {}
        name = str(record.get("image", {}).get("name") or "image")
    except (ValueError, OSError):  # a forged link or an unreadable record: read() says why
        versions, name = [], "image"

    def read() -> bytes:
        # Every failure becomes the message a bad upload gets.
        if reader is not None and not versions:
            # Blinded reading: a copy kept with other readers' saves only is theirs,
            # and the message is the same as for no copy, so it tells nothing.
            raise ImageDecodeError(
                "No copy of this image was kept with your annotations: upload it again."
            )
        try:
            return store.load_source(sha)
        except FileNotFoundError:
            raise ImageDecodeError(
                "No copy of this image was kept with its annotations: upload it again."
            ) from None
        except ValueError as exc:  # not a SHA-256 (a forged link), or a damaged copy
            if not _SHA256.fullmatch(sha):
                raise ImageDecodeError(
                    "This link does not name a saved image (?saved= takes the image's "
                    "SHA-256, as the Saved page's Open links give it)."
                ) from None
            raise ImageDecodeError(str(exc)) from None
        except OSError as exc:
            raise ImageDecodeError(
                f"The kept image cannot be read ({exc.strerror or exc})."
            ) from None

    return _show(name, read, current_meta, tool)


def _show(name, read, current_meta, tool="pan", *, worklist_path=None):
    """Decode the file ``read()`` gives and show it; a bad file only gets a message.

    The one way an image is opened, uploaded or from the worklist: the same
    decoding and size limit, the same error (the open image stays), and a new
    image starts with no label, note, descriptors or classification.
    """
    # An upload's name, a worklist file's or a kept copy's: shown, recorded and indexed.
    name = _file_name(name)
    try:
        data = read()
        config = get_config()
        image = decode_image(
            data, name, max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels
        )
    except ImageDecodeError as exc:
        keep = " The open image and its outline are unchanged." if current_meta else ""
        message = _views.alert(
            f"{exc}{keep}", "danger", title="Cannot open this file.", id="upload-error"
        )
        no = dash.no_update
        # The upload emptied, as after an open: the file dropped again (mended, or once
        # the cause is gone) is a change, which Dash fires the open for.
        return (no, no, no, no, message, no, no, no, None, no, *[no] * len(DESCRIPTOR_OPTIONS))
    meta = image.meta()
    if worklist_path:
        # Kept with the image, so the saved record says which worklist file it was.
        meta["worklist_path"] = worklist_path
    # The image's hash, not its name: scanners' exports often put the patient's name
    # in the file name, and a log is read by more people than the records are.
    logger.info("opened image %s (%s, %dx%d)", meta["sha256"][:12], image.kind,
                image.width, image.height)
    contents = f"data:{_MIME[image.kind]};base64," + base64.b64encode(data).decode("ascii")
    figure = _figure.image_figure(
        image.display_uri, image.width, image.height, meta["sha256"], tool
    )
    # Named, and the name sent with IMAGE_OPENED: until edit answers, this is the drawing
    # a new history's edits are made on (see edit and _shown_edits).
    drawing = _drawing()
    figure.update_layout(editrevision=drawing)
    meta = _signing.signed(meta, ids.IMAGE_META)
    same = bool(current_meta) and current_meta.get("sha256") == meta["sha256"]
    no = dash.no_update
    return (
        meta,
        # Not the picture the graph shows when it is another (a DICOM's, a 16-bit
        # PNG's): this store goes with every model call and save, and the two together
        # outgrew the callback limit for a large file well under the upload limit.
        # Coming back to the page decodes the file again (see restore_workspace).
        {"contents": contents, "reencoded": image.display_uri != contents},
        figure,
        _views.image_info(meta),
        None,
        no if same else None,
        no if same else "",
        no if same else None,
        # Emptied once opened, so that the same file dropped again is a change.
        None,
        _opened_store(meta["sha256"], drawing),
        *[no if same else ([] if name in MULTI_VALUED else "") for name in DESCRIPTOR_OPTIONS],
    )


#: The latest version of the image the reader could see as it opened (0 for none), in
#: ``IMAGE_OPENED`` and then in the history begun on it: a save of work that loaded no
#: version names the versions saved after it (:func:`_saved_meanwhile`).
LATEST_AT_OPEN = "latest_at_open"


def _opened_store(sha: str, drawing: str) -> dict:
    """``IMAGE_OPENED`` for image ``sha`` opened now, drawn as ``drawing``."""
    opened = {"image": sha, "at": time.time_ns(), "drawing": drawing}
    try:
        opened[LATEST_AT_OPEN] = max(get_store().versions(sha, get_reader()), default=0)
    except _signin.SignInError:
        pass  # unknown (the Annotator field says why): a save names none saved meanwhile
    except (OSError, ValueError) as exc:
        logger.warning("versions of the image opened not listed: %s", exc)
    return opened


@callback(
    Output(ids.ANNOTATION_GRAPH, "figure"),
    Output(ids.IMAGE_INFO, "children"),
    Output(ids.UNDO_BUTTON, "disabled"),
    Output(ids.REDO_BUTTON, "disabled"),
    Output(ids.RESET_BUTTON, "disabled"),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.IMAGE_DATA, "data"),
    State(ids.HISTORY, "data"),
    State(ids.AI_RESULT, "data"),
    State(ids.OVERLAY_OPACITY, "value"),
    State(ids.OVERLAY_VISIBLE, "value"),
    State(ids.TOOL, "value"),
    State(ids.SHOW_CALIPERS, "value"),
)
def restore_workspace(
    _loaded, meta, image_data, history, ai, opacity, visible, tool="pan", calipers=True
):
    """Coming back to the page shows the open image and its outline again."""
    if not meta or not image_data:
        raise PreventUpdate
    if not history or history.get("image") != meta["sha256"]:
        history = None
    uri = _shown_uri(image_data, meta)
    figure = _figure.image_figure(uri, meta["width"], meta["height"], meta["sha256"], tool)
    paths = _present(history, meta)["paths"]
    figure.update_layout(
        shapes=_figure.region_shapes(
            paths,
            fill_opacity=opacity if opacity is not None else _figure.DEFAULT_FILL_OPACITY,
            visible=visible is not False,
        ),
        annotations=_calipers(paths, _shape(meta), visible, calipers, _spacing(meta)),
    )
    return (
        figure,
        _views.image_info(meta),
        not _history.can_undo(history),
        not _history.can_redo(history),
        _ai_for(ai, meta) is None,
    )


@callback(
    Output(ids.SEGMENT_BUTTON, "disabled"),
    Output(ids.CLASSIFY_BUTTON, "disabled"),
    Output(ids.SAVE_BUTTON, "disabled"),
    Output(ids.DOWNLOAD_SVG_BUTTON, "disabled"),
    Output(ids.DOWNLOAD_PNG_BUTTON, "disabled"),
    Output(ids.ERASE_BUTTON, "disabled"),
    Output(ids.DOWNLOAD_SEG_BUTTON, "disabled"),
    Output(ids.DOWNLOAD_SR_BUTTON, "disabled"),
    Output(ids.DICOM_DOWNLOADS, "title"),
    State(ids.IMAGE_META, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.IMAGE_OPENED, "data"),
)
def enable_actions(meta, _loaded, _opened=None):
    disabled = not meta
    # A SEG or an SR refers to the DICOM image it outlines: there is none for a PNG or
    # a JPEG.
    dicom = not disabled and meta.get("kind") == "dicom"
    if disabled:
        why = DICOM_ONLY_NO_IMAGE
    elif not dicom:
        kind = str(meta.get("kind") or "this").upper()
        why = (f"A DICOM SEG or SR refers to the DICOM image it outlines, and the open "
               f"image is a {kind} file: open the study's DICOM file to download them. "
               "Download SVG or PNG mask keeps this outline.")
    else:
        why = ""
    return (disabled,) * 6 + (not dicom,) * 2 + (why,)


#: The DICOM downloads' title before any image is open.
DICOM_ONLY_NO_IMAGE = ("Open a DICOM image to download its outline as a DICOM SEG and "
                       "its measurements as a DICOM SR.")


# =========================================================================== callbacks: worklist


def _worklist_listing() -> _worklist.Worklist:
    """The worklist with each entry's status.

    Raises
    ------
    OSError, ValueError
        The folder cannot be listed; or the data folder, which says what is saved, is
        gone (every entry would read "not annotated", and Open next would open saved
        cases as new).
    """
    config = get_config()
    store = get_store()
    try:
        store.check_folder()
    except DataFolderChanged as exc:
        raise OSError(f"the data folder (SONOTRACE_DATA_DIR), which says which images are "
                      f"saved, {exc.why}") from None
    return _worklist.list_images(
        config.worklist_dir,
        store,
        max_bytes=config.max_upload_bytes,
        # The status of each entry is the reader's own under blinded reading, so
        # "Next not annotated" walks the reader through every image.
        annotator=get_reader(),
    )


def _worklist_current(meta, entries) -> str | None:
    """The entry of the open image: the one it was opened from, else one with its bytes."""
    if not meta:
        return None
    opened = meta.get("worklist_path")
    if any(e.path == opened for e in entries):
        return opened
    return next((e.path for e in entries if e.sha256 == meta.get("sha256")), None)


def _worklist_place(meta, entries) -> str | None:
    """Where Previous and Next step from: the open image's entry (:func:`_worklist_current`),
    else the path it was opened from, moved or deleted since (the place it had)."""
    current = _worklist_current(meta, entries)
    opened = (meta or {}).get("worklist_path")
    return current or (opened if isinstance(opened, str) and opened else None)


def _worklist_error(exc: Exception):
    return _views.alert(
        f"The worklist cannot be listed: {exc}",
        "warning",
        title="Worklist unavailable.",
        id="worklist-error",
    )


@callback(
    Output(ids.WORKLIST, "options"),
    Output(ids.WORKLIST_NOTE, "children"),
    Output(ids.WORKLIST_POSITION, "children"),
    Output(ids.WORKLIST_PREVIOUS, "disabled"),
    Output(ids.WORKLIST_FOLLOWING, "disabled"),
    Output(ids.WORKLIST_SENT, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.WORKLIST_REFRESH, "n_clicks"),
    Input(ids.SAVED_WORK, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    State(ids.WORKLIST_CLAIM_TOKEN, "data"),
    # An Input: which claims are another reader's depends on who reads (the name a
    # shared browser recalls on load is often the last reader's, typed over after).
    Input(ids.ANNOTATOR, "value"),
    # Other readers save and open cases meanwhile: the statuses follow at the health
    # poll's pace.
    Input(ids.SERVER_POLL, "n_intervals"),
    State(ids.WORKLIST_NOTE, "children"),
    # A worklist file failed to open: the claim goes back to the image still open.
    Input(ids.WORKLIST_FAILED, "data"),
    State(ids.WORKLIST_SENT, "data"),
    # What the reader types in the dropdown: the files past its limit that it finds are
    # added to the options (show_worklist), so that one can be picked.
    Input(ids.WORKLIST, "search_value"),
)
def send_worklist(*args):
    """:func:`show_worklist`, its options sent only when they changed since the page last
    got them (``WORKLIST_SENT``, their digest); the last argument is the dropdown's
    search text.

    Every open, save and health poll lists the folder again; at 5000 entries the options
    are over 500 KB, which went down (uncompressed) each time, every 20 s in each idle
    tab (audit helper-901, F1 and F2). The digest is of the options themselves, so any
    change a reader would see (a new file, a status, a claim, the open mark) sends them.
    """
    *args, sent, search = args
    shown_note = args[8]
    if shown_note and _triggered() == {ids.WORKLIST} and not _lists_past_cap():
        # A keystroke in a folder whose every file is listed: the browser's own search
        # of the options finds them all, and the statuses follow at the poll's pace, so
        # a status pass over 5000 entries at each keystroke would change nothing
        # (review 1010, F2). With no note shown yet it runs: it may be the load's answer.
        raise PreventUpdate
    shown = show_worklist(*args, search=search)
    digest = _options_digest(shown[0])
    if digest == sent:
        return (dash.no_update, *shown[1:], dash.no_update)
    return (_options_change(sent, shown[0], digest), *shown[1:], digest)


def _lists_past_cap() -> bool:
    """Whether the worklist folder holds files past the dropdown's limit
    (``_worklist.MAX_ENTRIES``), which only a search sent here finds; True when that
    cannot be told (the folder is unreadable: the full answer says why)."""
    config = get_config()
    if config.worklist_dir is None:
        return True  # no worklist: show_worklist says so
    try:
        return _worklist.count_images(config.worklist_dir, get_store().root) > \
            _worklist.MAX_ENTRIES
    except (OSError, ValueError):
        return True


#: Options sent lately, by digest (as tuples), least recently sent first: an answer whose
#: options differ from the page's in a few entries (the open mark moved on an open, a
#: save's status) sends those entries only. Bounded: about 1 MB each at 5000 entries.
_SENT_OPTIONS: collections.OrderedDict[str, tuple] = collections.OrderedDict()
_SENT_MAX = 16
_SENT_LOCK = threading.Lock()


def _options_digest(options) -> str:
    """A short digest of the worklist's dropdown options (plain JSON: labels, paths)."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _options_change(sent, options, digest):
    """What to send for ``options`` (of digest ``digest``) to a page that has those of
    digest ``sent``: a Patch of the entries that changed when it is known what the page
    has and few changed (the same paths in the same order), else ``options`` whole.
    ``options`` are remembered."""
    rows = tuple((o["value"], o["label"], o["disabled"]) for o in options)
    with _SENT_LOCK:
        before = _SENT_OPTIONS.get(sent) if isinstance(sent, str) else None
        _SENT_OPTIONS[digest] = rows
        _SENT_OPTIONS.move_to_end(digest)
        while len(_SENT_OPTIONS) > _SENT_MAX:
            _SENT_OPTIONS.popitem(last=False)
    if before is None:
        return options
    # The files a search found past the list's limit come and go at its end, as the
    # reader types: those are deleted or added there, the list before them patched.
    shared = min(len(before), len(rows))
    changed = [i for i in range(shared) if before[i] != rows[i]]
    tail = abs(len(rows) - len(before))
    if (len(changed) + tail) * 4 > len(rows) or any(before[i][0] != rows[i][0]
                                                    for i in changed):
        return options  # many changed, or a file came or went: the whole list
    patch = Patch()
    for i in changed:
        patch[i] = options[i]
    for i in reversed(range(shared, len(before))):
        del patch[i]
    if len(rows) > shared:
        patch.extend(options[shared:])
    return patch


def show_worklist(_loaded, _refresh, saved, meta, _opened=None, token=None, annotator=None,
                  _ticks=None, shown_note=None, failed=None, search=None):
    """The worklist's entries and their status: on load, on Refresh, after each open and
    save, and at each health poll; and where the open entry is ("Open: case07.png (7 of
    18)", Previous and Next).

    The options are the listed entries (``_worklist.MAX_ENTRIES`` at most), and after
    them the files past that limit that the dropdown's search text ``search`` finds
    (:func:`_worklist.search_unlisted`): the dropdown searches its options in the
    browser, and would find none of those.

    Listing again is cheap: only new or changed files are read (and hashed). The
    page's claim follows what it opened and saved (:func:`_follow_claim`), and an
    open entry another page claimed is said so. The poll redraws the note under the
    list only when its count is shown and has changed, or when nothing is shown yet: a
    message in its place (Open next's "every other image has a saved annotation", say)
    stays until the reader acts, and a notice dismissed does not come back every 20 s.
    """
    if get_config().worklist_dir is None:
        raise PreventUpdate
    book = _claim_book()
    if book is not None:
        _follow_claim(book, meta, saved, token, annotator, failed)
    try:
        listing = _worklist_listing()
    except (ValueError, OSError) as exc:  # the folder went away (an unmounted share)
        logger.warning("worklist: %s", exc)
        return [], _worklist_error(exc), None, True, True
    current = _worklist_current(meta, listing.entries)
    own = get_reader() is not None  # the listing succeeded, so the reader was named
    claims = book.held_by_others(token, _claim_reader(annotator)) if book is not None else {}
    note = _views.worklist_summary(listing, own=own)
    claim = _claims.held(claims, current, (meta or {}).get("sha256")) if current else None
    if claim is not None:
        # A copy of the image under another path is the same image to read.
        copy = "" if claim.path == current else (
            f" It is open there as {_signin.shown_text(claim.path)}, a copy of this file.")
        latest = _latest_save(listing.entries, current)
        note.append(_views.alert(claim.sentence(time.time(), latest) + copy, "info",
                                 id="worklist-claimed"))
    passed = _passed_over(listing.entries, failed)
    if passed:
        note.append(_views.alert(
            "Open next not annotated passes over, on this page, what it could not open: "
            f"{', '.join(_signin.shown_text(p) for p in passed[:5])}"
            + (f" and {len(passed) - 5} more" if len(passed) > 5 else "")
            + ". Pick one from the list to try it again.", "warning",
            id="worklist-passed-over"))
    # The poll, or a search: the note stays as it is; but not when none is shown yet.
    # The browser drops the answer to the page's load when a poll (or a search) asks
    # again before it came (a slow share's listing), and the poll, seeing no count in
    # the note, left it empty until the reader acted.
    if shown_note and (_triggered() == {ids.SERVER_POLL} and _shown_count(shown_note) in (
            None, _shown_count(note)) or _triggered() == {ids.WORKLIST}):
        note = dash.no_update
    found = _views.worklist_found_options(_worklist.search_unlisted(listing, search),
                                          len(listing.entries), (meta or {}).get("worklist_path"))
    return (
        _views.worklist_options(listing.entries, current, claims) + found,
        note,
        _views.worklist_position(listing.entries, _worklist_place(meta, listing.entries),
                                 set(listing.unlisted)),
        _neighbour(listing, meta, -1) is None,
        _neighbour(listing, meta, 1) is None,
    )


def _latest_save(entries, path: str) -> tuple[int, float] | None:
    """``(version, saved at)`` (``time.time()`` seconds) of the newest saved version of
    the worklist entry ``path`` (as listed), or None: none saved, or its record cannot
    be read (a claim then says what it said before)."""
    entry = next((e for e in entries if e.path == path), None)
    if entry is None or not entry.version or not entry.sha256:
        return None
    try:
        saved_at = get_store().load_record(entry.sha256, entry.version)["saved_at"]
        when = _dt.datetime.fromisoformat(str(saved_at).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("worklist: the time of %s v%03d is unknown: %s", entry.sha256[:12],
                    entry.version, exc)
        return None
    if when.tzinfo is None:
        return None
    return entry.version, when.timestamp()


def _neighbour(listing: _worklist.Worklist, meta, step: int) -> str | None:
    """The entry Previous (``step`` -1) or Next (1) opens: in the folder's order, past
    the list's limit too (:func:`_worklist.neighbour`)."""
    limit = get_config().max_upload_bytes

    def opens(relative: str) -> bool:
        # As the listing marks an entry too large, from its size alone.
        try:
            return (listing.root / relative).stat().st_size <= limit
        except OSError:
            return False  # gone since the listing, or unreadable: passed over

    return _worklist.neighbour(listing.entries, _worklist_place(meta, listing.entries), step,
                               listing.unlisted, opens)


def _passed_over(entries, failed) -> list[str]:
    """The listed entries this page failed to open (``WORKLIST_FAILED``) whose bytes
    have not changed since: the ones *Open next not annotated* passes over."""
    known = _failed_entries(failed)
    return [e.path for e in entries if e.sha256 is not None and known.get(e.path) == e.sha256
            and not e.annotated and not e.too_large]


def _shown_count(note) -> str | None:
    """What the note under the worklist says of it: the text of its count line (id
    ``worklist-count``), ``"unavailable"`` for the listing's failure, None for anything
    else (a message in their place). ``note`` as the layout holds it, or as the browser
    sends it back (JSON)."""
    shown = _components_in(note)
    if "worklist-count" in shown:
        return str(shown["worklist-count"])
    return "unavailable" if "worklist-error" in shown else None


def list_worklist(*args, **kwargs):
    """The worklist's options and note: :func:`show_worklist` without the position."""
    return show_worklist(*args, **kwargs)[:2]


def _claim_book() -> _claims.Claims | None:
    """The worklist claims of the index database; None under blinded reading, where
    every reader reads every image and who reads which is no other reader's business."""
    if get_config().blinded_reading:
        return None
    return _claims.claims_of(get_index())


def _claim_reader(annotator) -> str | None:
    """The name a claim shows other pages: the reader's, when one is known."""
    try:
        return _reader_named(annotator)
    except _signin.SignInError:
        return None


def _follow_claim(book, meta, saved, token, annotator, failed=None) -> None:
    """Move the page's claim to the worklist entry it opened (none for an upload), and
    end it once that entry is saved."""
    triggered = _triggered()
    path = (meta or {}).get("worklist_path")
    if ids.IMAGE_OPENED in triggered:
        if path:
            book.claim(token, path, sha256=meta.get("sha256"), reader=_claim_reader(annotator))
        else:
            book.release(token)
    elif ids.SAVED_WORK in triggered and path and isinstance(saved, dict) \
            and saved.get("image") == meta.get("sha256") and saved.get("versions"):
        # A save: its SAVED_WORK lists the versions this page saved. A load writes the
        # work it put on screen, without them, and the reader goes on reading the entry
        # (every case reopened to revise was left unclaimed).
        book.release(token, path, reader=_claim_reader(annotator))
    elif ids.WORKLIST_FAILED in triggered:
        # An entry failed to open: Open next had claimed it, moving the page's claim off
        # the image still open (one claim a page). Back as it was: on that image unless
        # this page saved it since it opened, else none.
        saved_here = isinstance(saved, dict) and saved.get("image") == (meta or {}).get(
            "sha256") and saved.get("versions")
        # (The store is also read back from the tab's session storage as a page loads:
        # then only a claim left on the file that failed goes.)
        last = failed.get("last") if isinstance(failed, dict) else None
        if path and not saved_here:
            book.claim(token, path, sha256=meta.get("sha256"), reader=_claim_reader(annotator))
        elif isinstance(last, str) and last:
            book.release(token, last)


@callback(
    Output(ids.WORKLIST_REQUEST, "data"),
    Output(ids.WORKLIST, "value"),
    Output(ids.WORKLIST_CONFIRM, "displayed"),
    Output(ids.WORKLIST_PENDING, "data"),
    Output(ids.WORKLIST_NOTE, "children", allow_duplicate=True),
    Input(ids.WORKLIST, "value"),
    Input(ids.WORKLIST_NEXT, "n_clicks"),
    Input(ids.WORKLIST_CONFIRM, "submit_n_clicks"),
    State(ids.WORKLIST_PENDING, "data"),
    State(ids.UNSAVED_MARK, "className"),
    State(ids.IMAGE_META, "data"),
    State(ids.WORKLIST_CLAIM_TOKEN, "data"),
    State(ids.ANNOTATOR, "value"),
    Input(ids.WORKLIST_PREVIOUS, "n_clicks"),
    Input(ids.WORKLIST_FOLLOWING, "n_clicks"),
    State(ids.WORKLIST_FAILED, "data"),
    prevent_initial_call=True,
)
def request_entry(picked, next_clicks, confirmed, pending, mark, meta, token=None,
                  annotator=None, previous=None, following=None, failed=None):
    """Ask :func:`open_image` for a worklist entry, picked or the next not annotated.

    Unsaved work is not dropped silently: the user is asked first, as before an
    upload. The dropdown goes back to its placeholder, so picking the same entry
    again (after a failed open, say) is a new request. The next not annotated passes
    over entries other pages claim (:func:`_next_path`); a picked one opens anyway.
    Previous and Next open the entry before or after the open one in the folder's order
    (past the list's limit too), whatever its status.
    """
    no = dash.no_update
    trigger = ctx.triggered_id
    if trigger == ids.WORKLIST_CONFIRM:
        if not confirmed or not pending:
            raise PreventUpdate
        return _request(pending), no, False, None, no
    if trigger == ids.WORKLIST_NEXT:
        if not next_clicks:  # the page drawn again reports the button, unclicked
            raise PreventUpdate
        try:
            listing = _worklist_listing()
        except (ValueError, OSError) as exc:
            return no, no, False, None, _worklist_error(exc)
        path = _next_path(listing, meta, token, annotator, claim=not _has_unsaved_work(mark),
                          failed=failed)
        if path is _ALL_FAILED:
            return no, no, False, None, _views.alert(
                "The other images not annotated could not be opened on this page (see the "
                "note under the list). Pick one from the list to try it again.", "warning",
                id="worklist-all-failed")
        if path is _ALL_CLAIMED:
            return no, no, False, None, _views.alert(
                "The other images not annotated are open on other pages (opened less than "
                f"{_claims.CLAIM_MINUTES} minutes ago and not saved). Pick one from the list "
                "to open it all the same.", "info", id="worklist-all-claimed")
        if path is None:
            done = _views.alert(
                "Every other image of the worklist has a saved annotation"
                + (" of yours." if get_reader() is not None else "."),
                "info",
                id="worklist-done",
            )
            return no, no, False, None, done
    elif trigger in (ids.WORKLIST_PREVIOUS, ids.WORKLIST_FOLLOWING):
        step = -1 if trigger == ids.WORKLIST_PREVIOUS else 1
        if not (previous if step < 0 else following):  # drawn again, unclicked
            raise PreventUpdate
        try:
            listing = _worklist_listing()
        except (ValueError, OSError) as exc:
            return no, no, False, None, _worklist_error(exc)
        path = _neighbour(listing, meta, step)
        if path is None:  # past either end (the button is disabled there)
            raise PreventUpdate
    elif picked:
        path = picked
    else:
        raise PreventUpdate
    if _has_unsaved_work(mark):
        return no, None, True, path, no
    return _request(path), None, False, None, no


@callback(
    Output(ids.WORKLIST_REQUEST, "data", allow_duplicate=True),
    Output(ids.WORKLIST_CONFIRM, "displayed", allow_duplicate=True),
    Output(ids.WORKLIST_PENDING, "data", allow_duplicate=True),
    # Not the worklist's own note: without a worklist its card is hidden.
    Output(ids.UPLOAD_ALERT, "children", allow_duplicate=True),
    Output(ids.REVISE_ON_OPEN, "data"),
    Input(ids.WORKLIST_LINK, "data"),
    Input(ids.SAVED_LINK, "data"),
    State(ids.UNSAVED_MARK, "className"),
    State(ids.LINK_EXPECT, "data"),
    State(ids.LINK_VERSION, "data"),
    # Runs as the page is drawn: the link is the reason the page was opened.
    prevent_initial_call="initial_duplicate",
)
def open_linked(path, sha, mark, expect=None, version=None):
    """Ask :func:`open_image` for the image the page's URL names.

    ``?open=PATH`` names a worklist entry, ``?saved=SHA256`` the kept copy of
    an upload: the Saved page's *Open* links, followed to see and revise a saved
    annotation, so the image's latest saved version is loaded once it is open
    (:func:`revise_linked`). A link followed in the same tab reloads the page,
    and the browser asks first if the work is unsaved; should the page be drawn
    again without a reload, unsaved work is asked about here, as for an entry
    picked from the list.
    """
    no = dash.no_update
    if sha:
        target = {"saved": sha}
    elif path:
        if get_config().worklist_dir is None:
            note = _views.alert(
                f"The link asks for {path} from the worklist, but this client has no "
                "worklist (SONOTRACE_WORKLIST_DIR is not set).",
                "warning",
                id="worklist-link-error",
            )
            return no, False, None, note, None
        if isinstance(expect, str) and _SHA256.fullmatch(expect):
            # A link older than a rename (a bookmark, a Saved page tab left open): the
            # worklist file that holds the image now, as the Saved page finds it.
            path = _located(path, expect)
        target = path
    else:
        raise PreventUpdate
    revise = {"sha256": sha} if sha else {"worklist_path": path}
    if not sha and isinstance(expect, str) and _SHA256.fullmatch(expect):
        revise["expect"] = expect
    if isinstance(version, int) and not isinstance(version, bool) and version > 0:
        revise["version"] = version
    if _has_unsaved_work(mark):
        return no, True, target, no, revise
    return _request(target), False, None, no, revise


# The entry the tab has open is kept in its session storage (an upload: none), and a
# reload, which empties the page's memory, opens it again as a link would: with the
# reader's latest saved version of it, and with the image's hash as the link's expect,
# so that a file replaced under the same path is said so, and one moved is found. Not
# when the page was drawn with an image still open (back from the Saved page) or with a
# link of its own, nor under blinded reading. Spent as it is used: an entry that no
# longer opens (its file removed) is not tried at every reload; once it opens, it is
# kept again.
clientside_callback(
    """
    function(meta) {
        if (!meta) { return window.dash_clientside.no_update; }
        if (typeof meta.worklist_path !== "string") { return null; }
        return {path: meta.worklist_path, sha256: meta.sha256};
    }
    """,
    Output(ids.WORKLIST_REOPEN, "data"),
    Input(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
clientside_callback(
    """
    function(_page, reopen, on, meta, link, saved) {
        var no = window.dash_clientside.no_update;
        if (!on || meta || link || saved || !reopen || typeof reopen.path !== "string") {
            return [no, no, no];
        }
        var sha = typeof reopen.sha256 === "string" ? reopen.sha256 : null;
        return [reopen.path, sha, null];
    }
    """,
    Output(ids.WORKLIST_LINK, "data", allow_duplicate=True),
    Output(ids.LINK_EXPECT, "data", allow_duplicate=True),
    Output(ids.WORKLIST_REOPEN, "data", allow_duplicate=True),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.WORKLIST_REOPEN, "data"),
    State(ids.WORKLIST_REOPEN_ON, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.WORKLIST_LINK, "data"),
    State(ids.SAVED_LINK, "data"),
    prevent_initial_call="initial_duplicate",
)


def _located(path, sha: str):
    """``path``, or the worklist file that holds the image ``sha`` now when ``path``
    does not (renamed or moved since); ``path`` when none does, for the open to say so."""
    return _worklist.locate_now(get_config(), {sha: path}, context="link").get(sha, path)


@callback(
    Output(ids.REVISE_ON_OPEN, "data", allow_duplicate=True),
    Input(ids.WORKLIST_CONFIRM, "cancel_n_clicks"),
    prevent_initial_call=True,
)
def keep_work_over_link(cancelled):
    """The user kept the unsaved work over the link's image: its load is off too.

    Left pending, opening that image later another way would load its saved
    version unasked.
    """
    if not cancelled:
        raise PreventUpdate
    return None


@callback(
    Output(ids.LOAD_SAVED_BUTTON, "n_clicks"),
    Output(ids.REVISE_ON_OPEN, "data", allow_duplicate=True),
    # A file that changed since the linked version was saved is said so here.
    Output(ids.UPLOAD_ALERT, "children", allow_duplicate=True),
    # The version the link names, for load_saved (the Record card's line names the
    # latest, and is drawn again at the next poll).
    Output(ids.PREVIOUS_SAVES_SHOWN, "data", allow_duplicate=True),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.SEGMENT_DONE, "data"),
    State(ids.REVISE_ON_OPEN, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.AUTO_SEGMENT, "value"),
    State(ids.LOAD_SAVED_BUTTON, "n_clicks"),
    State(ids.ANNOTATOR, "value"),
    prevent_initial_call=True,
)
def revise_linked(_opened, _segmented, revise, meta, auto, clicks, annotator=None):
    """Load the saved version a Saved page link names (``version``), else the one the
    image would load picked from the worklist (:func:`_version_to_revise`: the
    reader's own latest; none when only other readers saved it, or no reader is named
    yet, so that a second reading stays independent), of the image the
    link opened; or the version an image opened from the worklist, an upload or a
    kept copy revises (:func:`open_to_revise` names it).

    As a click of *Load it to revise* would, and only once the model server has
    answered for the image (or none is asked: segment on open is off), since an
    outline arriving after the load would cover it. The :func:`edit` call that
    the same answer fires leaves the history alone (:func:`_revise_due`), so
    that its reply cannot land after the load's and drop it: the load's own
    call puts the AI outline on the history, then the loaded one. Not on
    ``OUTLINE_CHANGED``: the load changes the outline, and Dash does not run a
    callback that a chain of its own outputs would trigger again. An image
    opened otherwise, or one with no version this reader may load, is left as
    opened.

    A worklist file that holds another image than the one the link's version was
    saved from (``expect``: re-exported, or replaced under the same name) is said
    so as it opens: versions follow an image's content, so the linked one is not
    loaded, and without the note the radiologist would take the work for lost; its
    own latest version, if it has one, is loaded as for any link.
    """
    if not isinstance(revise, dict) or not meta:
        raise PreventUpdate
    no = dash.no_update
    if not _links_to(revise, meta):
        if ids.IMAGE_OPENED in _triggered():
            return no, None, no, no  # another image opened: the link's wish is spent
        raise PreventUpdate  # the linked image is not open yet
    changed = no
    expect = revise.get("expect")
    if expect is not None and expect != meta.get("sha256") and ids.IMAGE_OPENED in _triggered():
        changed = _changed_file_note(meta)
        # Said once; the version numbers the other image's versions.
        revise = {k: v for k, v in revise.items() if k not in ("expect", "version")}
    if not _answered(auto):
        if changed is no:
            raise PreventUpdate  # the model server has not answered yet
        return no, revise, changed, no
    clicks = clicks if isinstance(clicks, int) and not isinstance(clicks, bool) else 0
    if not _loadable(meta):
        named = revise.get("version")
        if changed is no and isinstance(named, int) and _anothers_version(meta, named):
            # Not gone: a radiologist told "not saved any more" reports lost data.
            changed = _views.alert(
                f"Version {named} of this image, which the link names, is another "
                "reader's: under blinded reading only your own versions open, and you "
                "have saved none of this image yet. The image is shown as opened.",
                "info", id="link-version-gone")
        elif changed is no and isinstance(named, int):
            # The link named a saved version: none is left (its files removed since).
            changed = _views.alert(
                f"Version {named} of this image, which the link names, is not "
                "saved any more, and no other version of it is: the image is shown as "
                "opened.", "warning", id="link-version-gone")
        return no, None, changed, no
    version = revise.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        # A bare link (a bookmark, a message, another system's): as the entry picked.
        # It loaded the image's latest, another reader's reading among them.
        version = _version_to_revise(meta, annotator)
        if version is None:
            return no, None, changed, no
    return clicks + 1, None, changed, {"image": meta["sha256"], "version": version}


def _changed_file_note(meta: dict):
    """The warning for a linked worklist file that holds another image than the one
    its version was saved from."""
    name = meta.get("worklist_path") or meta.get("name") or "The file"
    return _views.alert(
        f"{name} has changed since the version you opened was saved: it now holds "
        "another image (other pixels or another encoding), so that annotation is not "
        "loaded over it. Saved versions follow an image's content, not its file name; "
        "the Saved page keeps the version with the image it was saved from.",
        "warning",
        title="Not the image that was annotated.",
        id="link-changed-file",
    )


def _links_to(revise, meta: dict) -> bool:
    """Whether the open image is the one a link's wish to revise names (its path or
    its hash; ``expect``, the hash the link expects, is checked apart, and
    ``version`` is which of its versions to load)."""
    return isinstance(revise, dict) and all(
        meta.get(k) == v for k, v in revise.items() if k not in ("expect", "version"))


def _answered(auto) -> bool:
    """Whether this call comes after the model server's answer for the open image."""
    return auto is False or ids.SEGMENT_DONE in _triggered()


def _anothers_version(meta: dict, version) -> bool:
    """Whether ``version`` of the open image is saved but, under blinded reading,
    another reader's: not gone, only not this reader's to open."""
    try:
        reader = get_reader()
        if reader is None:
            return False
        store = get_store()
        return (version in store.versions(meta["sha256"])
                and version not in store.versions(meta["sha256"], reader))
    except (OSError, ValueError, _signin.SignInError):
        return False


def _loadable(meta: dict) -> bool:
    try:
        return bool(get_store().versions(meta["sha256"], get_reader()))
    except (OSError, ValueError, _signin.SignInError):
        return False  # the Record card's own line says why


def _revise_due(revise, meta: dict, auto) -> bool:
    """Whether :func:`revise_linked` loads a saved version in answer to this call."""
    return _links_to(revise, meta) and _answered(auto) and _loadable(meta)


#: What :func:`_next_path` answers when other pages claim every candidate.
_ALL_CLAIMED = object()
#: What :func:`_next_path` answers when every candidate is one it was told to skip.
_ALL_FAILED = object()


#: How many candidates :func:`_next_path` looks at a time: past the listing's limit each
#: is read (hashed) as the walk reaches it, so it stops as soon as one is free.
_NEXT_BATCH = 100


def _next_path(listing, meta, token, annotator, *, claim: bool, failed=None):
    """The next entry not annotated that no other page claims (see :mod:`_claims`),
    in the whole folder: past the listing's limit too (:func:`_worklist.unannotated_walk`),
    once the listed ones after the open image are done.

    With ``claim`` it is claimed for the page at once, in the same transaction as the
    look (two pages clicking together get two entries); else (unsaved work is asked
    about first) it is claimed when it opens. None when no entry is left to annotate;
    :data:`_ALL_CLAIMED` when the ones left are all claimed by other pages;
    :data:`_ALL_FAILED` when they are all files this page failed to open (``failed``,
    ``WORKLIST_FAILED``) with the same bytes still.
    """
    config = get_config()
    known = _failed_entries(failed)
    walk = _worklist.unannotated_walk(
        listing, get_store(), _worklist_place(meta, listing.entries),
        max_bytes=config.max_upload_bytes, annotator=get_reader())
    book = _claim_book()
    reader = _claim_reader(annotator)
    taken = None
    candidates = tried = 0
    while batch := list(itertools.islice(walk, _NEXT_BATCH)):
        candidates += len(batch)
        batch = [e for e in batch if e.sha256 is None or known.get(e.path) != e.sha256]
        if not batch:
            continue
        tried += len(batch)
        if book is None:
            return batch[0].path
        shas = {e.path: e.sha256 for e in batch}
        if claim and token:
            chosen = book.claim_first(token, list(shas), shas=shas, reader=reader)
        else:
            taken = book.held_by_others(token, reader) if taken is None else taken
            chosen = next((p for p in shas if not _claims.held(taken, p, shas[p])), None)
        if chosen is not None:
            return chosen
    if not candidates:
        return None
    return _ALL_CLAIMED if tried else _ALL_FAILED


def _has_unsaved_work(mark: str | None) -> bool:
    """Whether the unsaved-work mark's class names (``ids.UNSAVED_MARK``) say so."""
    return isinstance(mark, str) and "dirty" in mark.split()


def _request(target: str | dict) -> dict:
    """A request for a worklist entry (its path) or a kept upload (``{"saved": sha}``)."""
    # The time makes asking for the same entry again a change of the store.
    if isinstance(target, dict):
        return {"saved": target.get("saved"), "at": time.time_ns()}
    return {"path": target, "at": time.time_ns()}


# ====================================================================== callbacks: saved versions


@callback(
    Output(ids.PREVIOUS_SAVES, "style"),
    Output(ids.PREVIOUS_SAVES_TEXT, "children"),
    Output(ids.PREVIOUS_SAVES_SHOWN, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.SAVED_WORK, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    # Another tab or workstation may save the image while it is open here: the line
    # follows it at the health poll's pace (a folder listing and one small JSON).
    Input(ids.SERVER_POLL, "n_intervals"),
)
def show_previous_saves(meta, _saved, _loaded, _opened=None, _ticks=None):
    """Say when the open image was saved before, and offer its latest version.

    Asked on open, save and load, and at each health poll, so that a version saved
    since elsewhere shows here too. The version named is kept beside the line: *Load
    it to revise* loads that one, the one the radiologist read about.
    """
    hidden = {"display": "none"}
    if not meta:
        return hidden, None, None
    try:
        reader = get_reader()
    except _signin.SignInError:
        return hidden, None, None  # the Annotator field already says the sign-in failed
    store = get_store()
    try:
        # Else a data folder gone (an unmounted volume) reads as an image never saved.
        store.check_folder()
    except DataFolderChanged as exc:
        return {}, (f"Saved versions cannot be listed: the data folder (SONOTRACE_DATA_DIR) "
                    f"{exc.why}. Saving is refused until it is back."), None
    try:
        versions = store.versions(meta["sha256"], reader)
        if not versions:
            return hidden, None, None
        record = store.load_record(meta["sha256"], versions[-1])
        if not isinstance(record, dict):
            raise ValueError("its record is not a JSON object")
    except (OSError, ValueError) as exc:
        return {}, f"This image has saved versions, but the latest cannot be read ({exc}).", None
    return ({}, previous_save_text(record, len(versions), own=reader is not None),
            {"image": meta["sha256"], "version": versions[-1]})


@callback(
    Output(ids.OTHERS_SAVES, "style"),
    Output(ids.OTHERS_SAVES_TEXT, "children"),
    Input(ids.IMAGE_OPENED, "data"),
    # A load (of theirs, or any) or a save answers the notice: it goes.
    Input(ids.LOADED_SAVE, "data"),
    Input(ids.SAVED_WORK, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.ANNOTATOR, "value"),
    prevent_initial_call=True,
)
def show_others_saves(_opened, _loaded, _saved, meta, annotator=None):
    """Say above the image that other readers saved it, when the reader did not.

    The image opened loads the reader's own latest version (:func:`open_to_revise`);
    without one, another reader's is left unloaded, so that this reading stays
    independent, and said here where it is seen, with *Load it to revise* to take
    it up all the same. Not under blinded reading, where others' saves are hidden.
    """
    hidden = {"display": "none"}
    if ids.IMAGE_OPENED not in _triggered() or not meta:
        return hidden, None
    try:
        reader = _reader_named(annotator)
        store = get_store()
        if reader is not None and store.versions(meta["sha256"], reader):
            return hidden, None  # loaded as it opened
        versions = store.versions(meta["sha256"], get_reader())
        if not versions:
            return hidden, None
        record = store.load_record(meta["sha256"], versions[-1])
        if not isinstance(record, dict):
            raise ValueError("its record is not a JSON object")
    except (OSError, ValueError, _signin.SignInError):
        return hidden, None  # the Record card's line says why
    return {}, others_saves_text(record, len(versions), reader)


def others_saves_text(record: dict, count: int, reader: str | None) -> str:
    """The notice above the image: who saved it, and that this reading starts afresh
    (with no reader named yet, that none was loaded until one is)."""
    if reader is None:
        return (
            f"{previous_save_text(record, count)} No reader is named yet, so nothing "
            "saved was loaded: your reading starts from the AI's outline. Type your name "
            "in Annotator to have your own saved reading load as a case opens; Load it to "
            "revise this version."
        )
    return (
        f"{previous_save_text(record, count)} You ({reader}) have not saved it: your "
        "reading starts from the AI's outline, independent of theirs. Load theirs only "
        "to revise it."
    )


def previous_save_text(record: dict, count: int, own: bool = False) -> str:
    """``Saved before: v2 (of 2) by Dr A, 2026-12-01 09:06 UTC, final label benign.``

    With ``own`` (blinded reading, ``count`` of the reader's versions only):
    ``You saved this image before: v3 (1 of yours), 2026-12-01 09:06 UTC, ...``.
    """
    when = str(record.get("saved_at", "")).replace("T", " ")[:16]
    final = record.get("final")
    label = (final.get("label") if isinstance(final, dict) else None) or "none"
    if own:
        return (
            f"You saved this image before: v{record.get('version')} ({count} of yours), "
            f"{when} UTC, final label {label}."
        )
    return (
        f"Saved before: v{record.get('version')} (of {count}) by {record.get('annotator')}, "
        f"{when} UTC, final label {label}."
    )


def _latest_record(meta: dict, version: int | None = None) -> tuple[int, object]:
    """``(version, record)`` of the open image's latest saved version (under blinded
    reading, the latest the signed-in reader saved); the record as read, unchecked.

    With ``version``, that version instead, when it is one the reader may load
    (otherwise the latest).

    Raises
    ------
    OSError, ValueError, _signin.SignInError
        No version, an unreadable record, or no reader named under blinded reading.
    """
    reader = get_reader()
    versions = get_store().versions(meta["sha256"], reader)
    if not versions:
        raise ValueError(
            "this image has no saved version"
            if reader is None
            else "you saved no version of this image"
        )
    chosen = version if version in versions else versions[-1]
    return chosen, get_store().load_record(meta["sha256"], chosen)


def _read_latest_save(
    meta: dict, version: int | None = None
) -> tuple[int, str | None, str, dict, list[str], dict]:
    """The open image's latest saved version (or ``version``, see :func:`_latest_record`).

    Returns ``(version, label, note, descriptors, paths, record)``. ``paths`` are
    SVG path data in image pixels, read back from the version's SVG; ``record``
    is the version's JSON record. Under blinded reading, the latest version the
    signed-in reader saved.

    Raises
    ------
    OSError, ValueError, TypeError
        With a message for the radiologist, when there is no version or it is
        damaged, or the sign-in proxy named nobody under blinded reading.
    """
    version, record = _latest_record(meta, version)
    final = record.get("final") if isinstance(record, dict) else None
    if not isinstance(final, dict):
        raise ValueError(f"the record of version {version} is not a saved record")
    label, note = final.get("label"), final.get("note") or ""
    if label not in (None, *LABELS) or not isinstance(note, str):
        raise ValueError(f"the record of version {version} has a bad label or note")
    saved = clean_descriptors(final.get("descriptors"))
    paths = _shapes.svg_to_paths(
        get_store().load_svg(meta["sha256"], version), int(meta["width"]), int(meta["height"])
    )
    descriptors = {
        name: saved.get(name) or ([] if name in MULTI_VALUED else "")
        for name in DESCRIPTOR_OPTIONS
    }
    return version, label, note, descriptors, paths, record


def _revision_of(record: dict, version: int) -> dict:
    """What a save that revises ``record``, version ``version``, records as ``based_on``.

    Its number and annotator, and every reader it descends from: the annotator and
    whoever the version itself revised.

    Raises
    ------
    ValueError
        The record names no annotator, or its own ``based_on`` cannot be read:
        provenance is not guessed.
    """
    annotator = record.get("annotator")
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError(f"the record of version {version} names no annotator")
    try:
        prior = parse_based_on(record.get("based_on"))
    except ValueError as exc:
        raise ValueError(f"the record of version {version} cannot say what it revised: "
                         f"{exc}") from None
    readers = {annotator.strip(), *(prior["readers"] if prior else [])}
    return {"version": version, "annotator": annotator.strip(), "readers": sorted(readers)}


#: How many of its own saves of the open image a page remembers (``SAVED_WORK``).
MAX_OWN_VERSIONS = 50


def _version_numbers(values) -> list[int]:
    """The whole numbers of ``values`` (a list the browser kept), nothing else."""
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _own_versions(saved_work, meta: dict) -> list[int]:
    """The versions of the open image this page saved, from the last save's snapshot.

    Kept by the browser, unsigned: a forged list only changes which versions the
    next save's message names as saved meanwhile.
    """
    if not isinstance(saved_work, dict) or saved_work.get("image") != meta.get("sha256"):
        return []
    return _version_numbers(saved_work.get("versions"))[-MAX_OWN_VERSIONS:]


def _saved_meanwhile(
    meta: dict, history, version: int | None, own: list[int] | tuple[int, ...] = ()
) -> tuple[int | None, list[int]] | None:
    """``(seen, newer)`` when versions this reader may see were saved after the latest
    one this work holds (loaded into it, or saved from this page: ``own``) and before
    ``version``, the one just saved (None: asked before saving, any since): two tabs on
    one image, or two readers, each revising what they loaded. Work that holds none
    names those saved after the page opened the image (``seen`` None): two tabs that
    both started from the AI's outline. None otherwise, and when the versions cannot be
    listed (the save itself stands).
    """
    # The versions loaded into this image's work (_revised read them for the record).
    same = bool(history) and history.get("image") == meta["sha256"]
    loaded = _version_numbers(history.get("loaded_versions")) if same else []
    if loaded or own:
        seen = max([*loaded, *own])
        after = seen
    else:
        # Copied by edit from IMAGE_OPENED, which the browser keeps: a forged number
        # changes only which versions this message names.
        opened = _version_numbers([history.get(LATEST_AT_OPEN)]) if same else []
        if not opened or opened[0] < 0:
            return None  # a history begun before the number was kept: nothing known
        seen, after = None, opened[0]
    try:
        newer = [v for v in get_store().versions(meta["sha256"], get_reader())
                 if after < v and (version is None or v < version)]
    except (OSError, ValueError) as exc:
        logger.warning("versions saved meanwhile not listed: %s", exc)
        return None
    return (seen, newer) if newer else None


def _revised(meta: dict, history: dict | None,
             own: list[int] | tuple[int, ...] = ()) -> dict | None:
    """``based_on`` of a save of ``history``: the saved versions it descends from, if any:
    those loaded into it and the latest this page saved of the image (``own``).

    A page's own earlier save is part of its work: when the Annotator field names
    someone else before the next save (a shared reading-room workstation), that save
    revises the first reader's work and is not an independent read.

    The history in the browser holds only the numbers of the versions loaded
    (``loaded_versions``, oldest first); who saved them, and whose work those
    descend from, is read here from their records, so a request cannot claim
    another provenance. Under blinded reading, only versions the reader may load.

    Raises
    ------
    ValueError
        With a message for the radiologist: a version that is not one of the image's
        (or not the reader's), cannot be read, or cannot say what it revised.
    """
    same = bool(history) and history.get("image") == meta["sha256"]
    versions = (history.get("loaded_versions") or []) if same else []
    if not isinstance(versions, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in versions
    ):
        raise ValueError("the editor's list of loaded versions is damaged; open the image again")
    if not versions and not own:
        return None
    store, sha = get_store(), meta["sha256"]
    loadable = set(store.versions(sha, get_reader()))
    # The page's list is kept by the browser, unsigned: a version in it that is not
    # the reader's to load (or no longer saved) is left out rather than refused, so
    # that it can neither fail the save nor claim another reader's work.
    mine = max((v for v in own if v in loadable), default=None)
    if mine is not None and mine not in versions:
        # Newest last, as loaded: a save numbered above every version loaded came after
        # those loads (a load takes the latest), so the next save revises it; otherwise
        # a load came after it, and it only adds its reader.
        versions = ([*versions, mine] if mine > max(versions, default=0)
                    else [mine, *versions])
    if not versions:
        return None
    readers: set[str] = set()
    for version in versions:
        based_on = _revision_of(_revised_record(store, sha, version, loadable), version)
        readers |= set(based_on["readers"])
    return dict(based_on, readers=sorted(readers))


def _revised_record(store, sha: str, version: int, loadable) -> dict:
    """The record of ``version`` of image ``sha``, which the work on screen revises.

    Raises
    ------
    ValueError
        With a message for the radiologist: a version not in ``loadable`` (the reader's
        to load), or whose record cannot be read.
    """
    if version not in loadable:
        raise ValueError(_not_loadable(store, sha, version))
    try:
        record = store.load_record(sha, version)
    except OSError as exc:
        raise ValueError(f"Version {version}, which this work revises, cannot be read "
                         f"({exc.strerror or exc})") from None
    if not isinstance(record, dict):
        raise ValueError(f"the record of version {version} is not a saved record")
    return record


def _saved_box_models(record: dict, version: int) -> list[dict]:
    """The box models of saved ``version`` (its record ``record``), which a revision of
    it keeps (see :func:`_box_models`).

    Raises
    ------
    ValueError
        The record's ``model.box`` cannot be read: which models made the outline is
        not guessed.
    """
    try:
        return parse_box_models(record)
    except ValueError as exc:
        raise ValueError(f"the record of version {version} cannot say which models "
                         f"answered its boxes: {exc}. The version stays as it is, in "
                         f"v{version:03d}.json of the image's folder in the data folder: "
                         "ask whoever runs SonoTrace to check it. To save a reading "
                         "meanwhile, open the image again and read it afresh") from None


def _not_loadable(store, sha: str, version: int) -> str:
    """Why a save refuses to revise ``version`` of image ``sha``, which the reader may
    not load: named by its real cause (audit 904 F5, where blinded reading was off and
    the data folder had been replaced, but the message blamed blinded reading)."""
    if version in store.versions(sha):
        # A sign-in that changed since the load (another reader at the same browser,
        # under blinded reading): the work on screen is another's.
        return (f"Version {version}, which this work revises, is not one of your saved "
                "versions: under blinded reading you may load your own only (if the "
                "sign-in changed since it was loaded, open the image again)")
    return (f"Version {version}, which this work revises, is not saved in the data folder "
            "(SONOTRACE_DATA_DIR): the folder was changed, or the version taken out of it, "
            "since it was loaded. Ask whoever runs SonoTrace whether the data folder is "
            "the right one; to save this image afresh, open it again")


@callback(
    Output(ids.LOADED_SAVE, "data"),
    Output(ids.FINAL_LABEL, "value", allow_duplicate=True),
    Output(ids.NOTE, "value", allow_duplicate=True),
    Output(ids.SAVED_WORK, "data", allow_duplicate=True),
    Output(ids.SAVE_ALERT, "children", allow_duplicate=True),
    *[Output(ids.descriptor(name), "value", allow_duplicate=True) for name in DESCRIPTOR_OPTIONS],
    # A spacing typed by hand for the version comes back with it (see _typed_spacing).
    Output(ids.IMAGE_META, "data", allow_duplicate=True),
    Output(ids.IMAGE_INFO, "children", allow_duplicate=True),
    # The version's AI classification, shown and carried into the revision's record.
    Output(ids.CLASSIFICATION, "data", allow_duplicate=True),
    Input(ids.LOAD_SAVED_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.PREVIOUS_SAVES_SHOWN, "data"),
    # The same button in the notice above the image (show_others_saves).
    Input(ids.OTHERS_SAVES_LOAD, "n_clicks"),
    prevent_initial_call=True,
    # A second click while this one runs would push the same version twice; the
    # segment callback also disables the button while /predict runs.
    running=[(Output(ids.LOAD_SAVED_BUTTON, "disabled"), True, False),
             (Output(ids.OTHERS_SAVES_LOAD, "disabled"), True, False)],
)
def load_saved(clicks, meta, shown=None, notice_clicks=None):
    """Put the saved version the Record card names back in the editor, to revise it.

    That is the image's latest version when the line was last drawn (``shown``);
    one saved since elsewhere (another tab, another workstation) is not loaded in
    its place unseen: the message says it exists, and the line, drawn again, names
    it for the next click. The outline goes onto the undo history (Undo brings
    back the one before); the final label, note and descriptors are those of the
    version. Saving again makes the next version; the AI's outline, if any, stays
    the one the next record compares with.
    """
    if not (clicks or notice_clicks) or not meta:
        raise PreventUpdate
    no = dash.no_update
    sha = meta["sha256"]
    named = (shown.get("version") if isinstance(shown, dict) and shown.get("image") == sha
             else None)
    try:
        version, label, note, descriptors, paths, record = _read_latest_save(meta, named)
        based_on = _revision_of(record, version)
        # Said now rather than at the save: a revision keeps the version's box models.
        _saved_box_models(record, version)
        next_version = get_store().next_version(sha)
        newest = get_store().versions(sha, get_reader())[-1]
    except (OSError, ValueError, TypeError) as exc:
        message = _views.alert(
            _os_reason(exc) if isinstance(exc, OSError) else f"{exc}", "danger",
            title="The saved version cannot be loaded.", id="load-error"
        )
        # Still an answer for edit: a Saved page link's load is why the model's outline
        # was left unapplied (see _revise_due), and it must now appear.
        failed = _signing.signed({"image": sha, "failed": True, "at": time.time_ns()},
                                 ids.LOADED_SAVE)
        return (failed, no, no, no, message, *[no] * len(DESCRIPTOR_OPTIONS), no, no, no)
    spaced = _typed_spacing(meta, record)
    work = _unsaved.snapshot(sha, paths, label, note, descriptors,
                             _reader_spacing(meta if spaced is None else spaced))
    work["version"] = version  # what the work is while unchanged (see offer_load)
    newer = (
        f" A newer version, v{newest}, exists (saved since in another tab or by another "
        "reader, or this is an older version opened from the Saved page): the Record "
        "card names it now, and Load it to revise loads it."
        if newest > version else ""
    )
    if isinstance(named, int) and named != version and _anothers_version(meta, named):
        # A link to another reader's version, under blinded reading: not gone.
        newer = (f" Version {named}, which was asked for, is another reader's: under "
                 f"blinded reading only your own versions open, so your latest, version "
                 f"{version}, is loaded instead.{newer}")
    elif isinstance(named, int) and named != version:
        # A link's version, or the one the line named, whose files were removed since.
        latest = "the latest" if get_reader() is None else "your latest"
        newer = (f" Version {named}, which was asked for, is not saved any more: version "
                 f"{version}, {latest}, is loaded instead.{newer}")
    message = _views.alert(
        f"Version {version} loaded: {len(paths)} outline(s). Saving makes version "
        f"{next_version}, recorded as a revision of version {version} by "
        f"{based_on['annotator']}; Undo brings back the outline shown before.{newer}",
        "warning" if newer else "info",
        id="load-result",
    )
    loaded = _signing.signed(
        {"image": sha, "version": version, "paths": paths, "at": time.time_ns()},
        ids.LOADED_SAVE,
    )
    classification = _saved_classification(record, sha, version, paths)
    return (loaded, label, note, work, message, *descriptors.values(),
            *((no, no) if spaced is None else
              (_signing.signed(spaced, ids.IMAGE_META), _views.image_info(spaced))),
            no if classification is None else _signing.signed(classification,
                                                               ids.CLASSIFICATION))


# ====================================================================== compare with a version


@callback(
    Output(ids.COMPARE, "style"),
    Output(ids.COMPARE_VERSION, "options"),
    Output(ids.COMPARE_VERSION, "value"),
    State(ids.IMAGE_META, "data"),
    State(ids.COMPARE_VERSION, "options"),
    State(ids.COMPARE_VERSION, "value"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.SAVED_WORK, "data"),
    # A version saved meanwhile elsewhere joins the list, as it joins the Saved before line.
    Input(ids.SERVER_POLL, "n_intervals"),
)
def list_compare_versions(meta, listed, value, _loaded, _opened=None, _saved=None,
                          _ticks=None):
    """List the open image's saved versions the reader may see, for *Compare with*.

    The same versions as the "Saved before" line counts (:func:`show_previous_saves`):
    under blinded reading, the reader's own only. A new image (or the same one opened
    again) starts with none compared; a version no longer listed (removed, or the
    sign-in changed) is dropped from the choice.
    """
    no = dash.no_update
    hidden = {"display": "none"}
    options = [_compare.NONE_OPTION]
    if meta:
        try:
            options = _compare.version_options(get_store(), meta["sha256"], get_reader())
        except (OSError, _signin.SignInError) as exc:
            # The Saved before line and the Annotator field say what is wrong.
            logger.warning("versions to compare with not listed: %s", exc)
    values = {option["value"] for option in options}
    if ids.IMAGE_OPENED in _triggered() or value not in values:
        chosen = _compare.NONE_VALUE
    else:
        chosen = value
    return (
        {} if len(options) > 1 else hidden,
        no if options == listed else options,
        no if chosen == value else chosen,
    )


@callback(
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Output(ids.COMPARE_CAPTION, "children"),
    Output(ids.COMPARE_SHOWN, "data"),
    Input(ids.COMPARE_VERSION, "value"),
    # The Dice follows every change of the outline on screen.
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    State(ids.COMPARE_SHOWN, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    # Show outline (H) hides the compared line with the outline: the image seen bare.
    Input(ids.OVERLAY_VISIBLE, "value"),
    prevent_initial_call=True,
)
def compare_version(value, _changed, _opened, shown, meta, history, visible=True):
    """Draw the saved version chosen in *Compare with* over the image, read-only, and
    say which it is and its Dice with the outline on screen.

    A trace, not a shape (see :mod:`annotation_client._compare`): the outline being
    edited, its undo history and what Save writes are the shapes', and stay so. A
    new image's figure has no trace; the list goes back to "None" with it
    (:func:`list_compare_versions`), and an outline change of that image before then
    draws nothing (``COMPARE_SHOWN`` names the image and version drawn).
    """
    no = dash.no_update
    triggered = _triggered()
    if ids.IMAGE_OPENED in triggered:
        return no, None, None
    drawn = bool(meta and isinstance(shown, dict) and shown.get("image") == meta["sha256"])
    if triggered == {ids.OVERLAY_VISIBLE}:
        if not drawn:
            raise PreventUpdate
        figure = Patch()
        figure["data"][_compare.TRACE_INDEX]["visible"] = visible is not False
        return figure, no, no
    version = _compare.chosen_version(value)
    chosen = ids.COMPARE_VERSION in triggered
    if not chosen and not (meta and isinstance(shown, dict)
                           and shown.get("image") == meta["sha256"]
                           and shown.get("version") == version):
        raise PreventUpdate  # an outline change with nothing compared
    if version is None or not meta:
        return _without_comparison(), None, None
    try:
        record, paths = _compare.read_version(get_store(), meta, version, get_reader())
        dice = _compare.dice_with(paths, _present(history, meta)["paths"], _shape(meta))
    except (OSError, ValueError, TypeError, _signin.SignInError) as exc:
        reason = _os_reason(exc) if isinstance(exc, OSError) else f"{exc}"
        message = _views.alert(reason, "warning", id="compare-error",
                               title=f"Version {version} cannot be compared.")
        return _without_comparison(), message, None
    if chosen:
        figure = Patch()
        figure["data"][_compare.TRACE_INDEX] = _compare.overlay_trace(
            paths, visible=visible is not False)
    else:
        figure = no  # drawn already: only the Dice changes
    caption = html.Span(
        [
            # A sample of the line, as a legend would show it; the text says it too.
            html.Span(className="me-1", **{"aria-hidden": "true"},
                      style={"borderTop": f"2px dashed {_compare.COMPARE_COLOR}",
                             "display": "inline-block", "width": "1.5em",
                             "verticalAlign": "middle"}),
            _compare.caption_text(version, record, dice, outlined=bool(paths)),
        ],
        id="compare-caption-text",
    )
    return figure, caption, {"image": meta["sha256"], "version": version}


def _without_comparison() -> Patch:
    """The graph without a compared version's trace (a figure that has none is left as
    it is: the list index past its end is no trace)."""
    figure = Patch()
    del figure["data"][_compare.TRACE_INDEX]
    return figure


def _os_reason(exc: OSError) -> str:
    """Why a file could not be read or written, for the page: the system's reason and the
    file's name, not its path (which would give the data directory away; the log has it).

    >>> _os_reason(FileNotFoundError(2, "No such file or directory", "/data/ab/v001.svg"))
    'No such file or directory: v001.svg'
    """
    if isinstance(exc, DataFolderChanged):
        return str(exc)
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {PurePosixPath(str(exc.filename)).name}" if exc.filename else reason


def _typed_spacing(meta: dict, record: dict) -> dict | None:
    """``meta`` with the spacing the version was measured at, if the reader gave it.

    Revising a version measured in mm must not save the revision in pixels. None
    when there is nothing to restore: the file gives its own spacing, the version
    had none typed, or the one it states is not plausible.
    """
    image = record.get("image")
    source = image.get("pixel_spacing_source") if isinstance(image, dict) else None
    if source not in _spacing_aids.READER_SOURCES:
        return None
    if _file_gives_spacing(meta):
        return None
    try:
        # The measurements' own check, as for the record that states it.
        spacing = _measurements._check_spacing(image.get("pixel_spacing_mm"))
    except (TypeError, ValueError):
        return None
    if spacing is None:
        return None
    # Its source too: a spacing reused on that version is still the reused one.
    return dict(_signing.unsigned(meta), pixel_spacing_mm=list(spacing),
                pixel_spacing_source=source)


# =========================================================================== callbacks: model


@callback(
    Output(ids.AI_RESULT, "data"),
    Output(ids.SERVER_ALERT, "children", allow_duplicate=True),
    Output(ids.SEGMENT_DONE, "data"),
    Input(ids.SEGMENT_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.AUTO_SEGMENT, "value"),
    State(ids.IMAGE_DATA, "data"),
    State(ids.VERTEX_DENSITY, "value"),
    State(ids.AI_RESULT, "data"),
    State(ids.HISTORY, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.SERVER_BACK, "n_intervals"),
    State(ids.FINAL_LABEL, "value"),
    prevent_initial_call=True,
    running=[
        (Output(ids.SEGMENT_BUTTON, "disabled"), True, False),
        # A saved version loaded now would be covered by the outline on its way.
        (Output(ids.LOAD_SAVED_BUTTON, "disabled"), True, False),
        (Output(ids.OTHERS_SAVES_LOAD, "disabled"), True, False),
    ],
)
def segment(
    _clicks, meta, auto, image_data, max_vertices, ai, history=None, opened=None, _page=None,
    back=None, label=None,
):
    """``/predict`` on the open image; the outline arrives through the AI store.

    Asked by a click, by opening an image, by the page drawn again with an
    image that still has neither an AI outline nor a drawn one (an answer that
    landed while another page was shown can be dropped by the browser with the
    page's callbacks, so the page asks again rather than show no outline), and by
    the model server answering again after it could not be reached: an image
    opened meanwhile, with nothing drawn on it, was left with no outline, which
    looked like "the AI found no lesion" once the server's alert went.
    """
    if not meta or not image_data:
        raise PreventUpdate
    triggered = _triggered()
    clicked = ids.SEGMENT_BUTTON in triggered and _clicks
    # The page drawn again reports the button (unclicked) and the echo (empty) too.
    opening = ((ids.IMAGE_OPENED in triggered and opened) or ids.PAGE_LOAD in triggered
               or (ids.SERVER_BACK in triggered and back and _as_opened(history, meta)
                   and not label))
    if not clicked and not (opening and _segment_on_open(auto, meta, ai, history)):
        raise PreventUpdate
    started = time.perf_counter()
    try:
        result = _client().predict(
            _image_bytes(image_data, meta), meta["name"], max_vertices=_vertices(max_vertices)
        )
    except ModelServerError as exc:
        logger.warning("segmentation failed: %s", exc.logged())
        return dash.no_update, _server_alert(exc, "Auto-segmentation"), time.time_ns()
    if (result["width"], result["height"]) != (meta["width"], meta["height"]):
        message = (
            f"The model server segmented a {result['width']}x{result['height']} image, "
            f"but this one is {meta['width']}x{meta['height']}."
        )
        alert = _views.alert(message, "danger", title="Auto-segmentation failed.")
        return dash.no_update, alert, time.time_ns()
    logger.info("segmented image %s in %.0f ms", meta["sha256"][:12],
                1000 * (time.perf_counter() - started))
    return (
        _signing.signed({
            "image": meta["sha256"],
            "paths": [p for p in result["paths"] if _shapes.is_region(p)],
            "mask": result["mask"],
            "model": result.get("model"),
            "vertices": _vertices(max_vertices),
            "at": time.time_ns(),  # tells a new result from the same one seen again
        }, ids.AI_RESULT),
        None,
        time.time_ns(),
    )


@callback(
    Output(ids.BOX_RESULT, "data"),
    Output(ids.SERVER_ALERT, "children", allow_duplicate=True),
    Output(ids.BOX_DONE, "data"),
    Input(ids.BOX_REQUEST, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.IMAGE_DATA, "data"),
    State(ids.VERTEX_DENSITY, "value"),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.BOX_PENDING, "data"),
    State(ids.BOX_RESULT, "data"),
    prevent_initial_call=True,
    # Said over the graph, which stays free to draw on (see _graph_loading).
    running=[(Output(ids.BOX_WAITING, "className"), BOX_WAITING_SHOWN, "d-none")],
)
def segment_box(request, meta, image_data, max_vertices, _page=None, pending=None,
                answered=None):
    """``/predict`` restricted to the box the user drew.

    Asked by a new box, and by the page drawn again for every box of the open
    image still pending with no answer: an answer that landed while another
    page was shown can be dropped by the browser with the page's callbacks.
    The answers go to the shell, one per box, each naming its request
    (``at``); a box the server could not segment is answered ``failed``, so
    that it is not asked again on every return.
    """
    if not meta or not image_data:
        raise PreventUpdate
    sha = meta["sha256"]
    triggered = _triggered()
    boxes = _pending_boxes(pending, sha)
    if request and ids.BOX_REQUEST in triggered:
        # The page asks with four finite numbers; a hand-made request is not sent on.
        if (not _well_formed_box(request) or request.get("image") != sha
                or not _box_inside(request["box"], meta)):
            raise PreventUpdate
        if request.get("at") not in {r.get("at") for r in boxes}:
            boxes = [*boxes, request]
    elif ids.PAGE_LOAD not in triggered:
        raise PreventUpdate
    # Every pending box without an answer is asked, not only the new one: the browser
    # drops the answer of a call still running when the next box starts another, and
    # answers not yet drawn stay in the store, which this call's answer replaces.
    waiting = {r.get("at") for r in boxes}
    kept = [a for a in _box_answers(answered, sha) if a.get("request") in waiting]
    done = {a.get("request") for a in kept}
    asks = sorted((r for r in boxes if r.get("at") not in done and _box_inside(r["box"], meta)),
                  key=lambda r: r.get("at"))
    if not asks:
        raise PreventUpdate
    answers, alert = [], None
    for ask in asks:
        try:
            result = _client().predict(
                _image_bytes(image_data, meta),
                meta["name"],
                box=ask["box"],
                max_vertices=_vertices(max_vertices),
            )
        except ModelServerError as exc:
            logger.warning("box re-segmentation failed: %s", exc.logged())
            alert = _server_alert(exc, "Box re-segmentation")
            answers.append({"request": ask["at"], "box": ask["box"], "failed": True})
            continue
        # The model that answered: it may be another version than the first outline's
        # (the server upgraded meanwhile), and the record says which (_box_models).
        model = result.get("model") if isinstance(result.get("model"), dict) else {}
        answers.append({"request": ask["at"], "box": ask["box"], "mask": result["mask"],
                        "model": {k: str(model[k]) for k in ("name", "version")
                                  if model.get(k) is not None} or None})
    answer = _signing.signed({"image": sha, "answers": kept + answers}, ids.BOX_RESULT)
    return answer, alert, time.time_ns()


@callback(
    Output(ids.CLASSIFICATION, "data", allow_duplicate=True),
    Output(ids.SERVER_ALERT, "children", allow_duplicate=True),
    Output(ids.CLASSIFY_DONE, "data"),
    Input(ids.CLASSIFY_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.IMAGE_DATA, "data"),
    State(ids.HISTORY, "data"),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.CLASSIFY_PENDING, "data"),
    State(ids.CLASSIFICATION, "data"),
    prevent_initial_call=True,
    running=[
        (Output(ids.CLASSIFY_BUTTON, "disabled"), True, False),
        # In the shell, so a click whose answer the browser drops on another page
        # (with this page's callbacks) is still known when the page comes back.
        (Output(ids.CLASSIFY_PENDING, "data"), True, False),
    ],
)
def classify(_clicks, meta, image_data, history, _page=None, pending=None,
             classification=None):
    """``/classify`` with the corrected outline as the lesion mask.

    Asked by a click, and by the page drawn again when a click's answer never
    arrived for the outline now on screen.
    """
    if not meta:
        raise PreventUpdate
    triggered = _triggered()
    paths = _present(history, meta)["paths"]
    clicked = ids.CLASSIFY_BUTTON in triggered and _clicks
    answered = (
        classification
        and classification.get("image") == meta["sha256"]
        and _classified(classification, paths)
    )
    lost = ids.PAGE_LOAD in triggered and pending is True and not answered
    if not clicked and not lost:
        raise PreventUpdate
    mask = _shapes.paths_to_mask(paths, _shape(meta))
    try:
        result = _client().classify(
            _image_bytes(image_data, meta), meta["name"], mask_png=vectorizer.mask_to_png(mask)
        )
    except ModelServerError as exc:
        logger.warning("classification failed: %s", exc.logged())
        return dash.no_update, _server_alert(exc, "Classification"), time.time_ns()
    return (
        _signing.signed({
            "image": meta["sha256"],
            "label": result["label"],
            "probabilities": result["probabilities"],
            "model": result.get("model"),
            "paths": paths,
        }, ids.CLASSIFICATION),
        None,
        time.time_ns(),
    )


def _classified(classification: dict, paths) -> bool:
    """Whether ``classification`` (the CLASSIFICATION store) is of the outline ``paths``.

    Its ``paths`` are None when the outline it was made on is not known: a saved
    version's classification, made on an outline other than the version's.
    """
    classified = classification.get("paths")
    return classified is not None and _shapes.same_geometry(classified, paths)


def _saved_classification(record: dict, sha: str, version: int, paths) -> dict | None:
    """The AI classification a saved version recorded, as the CLASSIFICATION store holds
    one (signed by the caller), or None when the version has none (or a damaged one).

    A revision that is saved without classifying again then records it, rather than
    nothing: its ``paths`` are the version's outline when the record says the outline
    classified was the final one, else None (unknown: shown as made on another outline).
    ``version`` is shown with it (:func:`_views.ai_label`).
    """
    ai, model = record.get("ai"), record.get("model")
    if not isinstance(ai, dict) or ai.get("label") not in LABELS:
        return None
    probabilities = ai.get("probabilities")
    try:
        probabilities = {k: float(probabilities[k]) for k in LABELS}
    except (TypeError, KeyError, ValueError):
        return None
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in probabilities.values()):
        return None
    classifier = model.get("classification") if isinstance(model, dict) else None
    return {
        "image": sha,
        "label": ai["label"],
        "probabilities": probabilities,
        "model": classifier if isinstance(classifier, dict) else None,
        "paths": list(paths) if ai.get("classified_outline_is_final") is True else None,
        "version": version,
    }


@callback(
    Output(ids.PROBABILITY_GRAPH, "figure"),
    Output(ids.AI_LABEL, "children"),
    State(ids.CLASSIFICATION, "data"),
    State(ids.HISTORY, "data"),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.CLASSIFY_DONE, "data"),
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.IMAGE_OPENED, "data"),
)
def show_classification(classification, history, _loaded, meta, *_echoes):
    if not classification or not meta or classification.get("image") != meta.get("sha256"):
        return _views.probability_figure(None), _views.ai_label(None)
    stale = not _classified(classification, _present(history, meta)["paths"])
    # Always redraw the bars: when the page is drawn again, Dash fires this
    # callback only for the history store that the page's own callbacks restore,
    # so skipping the figure on history changes left a blank chart.
    figure = _views.probability_figure(classification)
    return figure, _views.ai_label(classification, stale=stale)


# =========================================================================== callbacks: editing


# Only a graph event that holds a rectangle goes on to ask_box. Dash holds edit until
# every callback downstream of the event has answered (the box's answer is one of
# edit's inputs), so without this gate in the browser every vertex drag and zoom would
# wait one round trip to the server for ask_box to say "no box" before edit could start.
clientside_callback(
    _passes_shapes_of("rect"),
    Output(ids.BOX_DRAWN, "data"),
    Input(ids.ANNOTATION_GRAPH, "relayoutData"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.BOX_REQUEST, "data"),
    Output(ids.BOX_PENDING, "data", allow_duplicate=True),
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Output(ids.SERVER_ALERT, "children", allow_duplicate=True),
    Input(ids.BOX_DRAWN, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.BOX_PENDING, "data"),
    State(ids.OVERLAY_OPACITY, "value"),
    State(ids.OVERLAY_VISIBLE, "value"),
    State(ids.SHOW_CALIPERS, "value"),
    prevent_initial_call=True,
)
def ask_box(relayout, meta, history, pending, opacity, visible, calipers):
    """A rectangle drawn with *Box re-segment* asks the model for the outline inside it.

    ``relayout`` is the graph's event, passed on by the gate above only when it holds
    a rectangle.

    Not part of :func:`edit`, which takes the answer: a request that edit made would
    come back to edit through :func:`segment_box`, and Dash does not run a callback
    again from a chain it started, so the outline would wait for the next, unrelated
    input. Asked from here, Dash holds edit's call for this event until the answer
    is in (edit's inputs include it), then runs edit once with both. Meanwhile the
    rectangle is taken off the graph at once, and the box waits in the pending list
    (``at``: when it was drawn, ns).
    """
    if not meta:
        raise PreventUpdate
    sha = meta["sha256"]
    present = _present(history, meta)
    change = _relayout_change(present["paths"], relayout)
    if not change.boxes:
        raise PreventUpdate
    shape = _shape(meta)
    box = _shapes.clip_box(change.boxes[-1], shape[1], shape[0])
    # The outline as the graph shows it, the rectangle taken off: edits whose answers
    # are on their way stay on screen. Drawn as a drawing derived from the history's,
    # so edits made on it while the box is segmented are recorded (see _shown_edits).
    paths = change.paths if change.paths is not None else present["paths"]
    figure = _shapes_patch(paths, opacity, visible, calipers, shape, _derived_drawing(history),
                           _spacing(meta))
    if box is None:
        return dash.no_update, dash.no_update, figure, dash.no_update
    side = MIN_BOX_SIDE
    if box[2] - box[0] < side or box[3] - box[1] < side:
        # The model server refuses it; saying so here names the remedy.
        message = (
            f"Draw a larger box: at least {side}x{side} pixels of the image; this one "
            f"covers {box[2] - box[0]}x{box[3] - box[1]}."
        )
        alert = _views.alert(message, "warning", title="Box too small.")
        return dash.no_update, dash.no_update, figure, alert
    request = {"image": sha, "box": list(box), "at": time.time_ns()}
    return request, [*_pending_boxes(pending, sha), request], figure, None


@callback(
    Output(ids.HISTORY, "data"),
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Output(ids.UNDO_BUTTON, "disabled", allow_duplicate=True),
    Output(ids.REDO_BUTTON, "disabled", allow_duplicate=True),
    Output(ids.RESET_BUTTON, "disabled", allow_duplicate=True),
    Output(ids.VERTEX_DENSITY, "value"),
    Output(ids.OUTLINE_CHANGED, "data"),
    Output(ids.BOX_PENDING, "data"),
    # Emptied when the outline moves by anything but a graph event (see below).
    Output(ids.ANNOTATION_GRAPH, "relayoutData"),
    State(ids.IMAGE_META, "data"),
    State(ids.AI_RESULT, "data"),
    State(ids.BOX_RESULT, "data"),
    Input(ids.ANNOTATION_GRAPH, "relayoutData"),
    Input(ids.UNDO_BUTTON, "n_clicks"),
    Input(ids.REDO_BUTTON, "n_clicks"),
    Input(ids.RESET_BUTTON, "n_clicks"),
    Input(ids.VERTEX_DENSITY, "value"),
    Input(ids.OVERLAY_OPACITY, "value"),
    Input(ids.OVERLAY_VISIBLE, "value"),
    Input(ids.SHOW_CALIPERS, "value"),
    Input(ids.LOADED_SAVE, "data"),
    State(ids.HISTORY, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.SEGMENT_DONE, "data"),
    Input(ids.BOX_DONE, "data"),
    State(ids.BOX_PENDING, "data"),
    State(ids.REVISE_ON_OPEN, "data"),
    State(ids.AUTO_SEGMENT, "value"),
    Input(ids.GROW_BUTTON, "n_clicks"),
    Input(ids.SHRINK_BUTTON, "n_clicks"),
    State(ids.PAGE_LOAD, "data"),
    # Written in the browser as plotly reports a graph edit (see _figure.FRESH_VIEW_SCRIPT).
    State(ids.SHAPES_SHOWN, "data"),
    # Written by assets/sonotrace.js when one of these requests gets no answer.
    State(ids.OFFSET_CLICKS_LOST, "data"),
    # Written by assets/sonotrace.js when the client answers again after one of these
    # requests got no answer: the graph edits it carried are recorded from the screen.
    Input(ids.EDIT_RESYNC, "data"),
    # Written in the browser at each Undo, Redo and Reset to AI press: their order.
    State(ids.STEP_PRESSES, "data"),
    prevent_initial_call=True,
)
def edit(
    meta,
    ai,
    box_result,
    relayout,
    _undo,
    _redo,
    _reset,
    max_vertices,
    opacity,
    visible,
    calipers,
    loaded,
    history,
    _opened=None,
    _segmented=None,
    _boxed=None,
    pending=None,
    revise=None,
    auto=None,
    _grow=None,
    _shrink=None,
    page=None,
    shown=None,
    lost=None,
    _resync=None,
    presses=None,
):
    """Every change of the outline goes through here and onto the undo history."""
    if not meta:
        raise PreventUpdate
    triggered = _triggered()
    if (triggered & {ids.SEGMENT_DONE, ids.IMAGE_OPENED} and ids.LOADED_SAVE not in triggered
            and _revise_due(revise, meta, auto)):
        # A saved version is being loaded in answer to this very event; the load's
        # call applies the AI outline first. Writing the history here too could land
        # after the load and drop it.
        raise PreventUpdate
    sha = meta["sha256"]
    on_open = False  # the screen is the open's drawing, which the history is of
    if not history or history.get("image") != sha:
        # A new image starts a new history; the same image opened again keeps its edits.
        # Grow and Shrink clicks counted so far were for the image before.
        history = _history.new_history(_editing.empty_state(), image=sha)
        counted = _editing.unapplied_clicks(None, page, _grow, _shrink)[1]
        if counted:
            history[OFFSET_CLICKS] = counted
        # So were Undo, Redo and Reset to AI clicks.
        counted = _editing.new_clicks(None, page, _step_counts(_undo, _redo, _reset))[1]
        if counted:
            history[STEP_CLICKS] = counted
        # Until this callback answers, the graph shows the open's drawing of this empty
        # outline: a region drawn on it whose answer a newer call overtook is recovered
        # from the screen like edits on any drawing of the history (_shown_edits).
        opened = _opened if isinstance(_opened, dict) and _opened.get("image") == sha else {}
        on_open = isinstance(opened.get("drawing"), str) and opened["drawing"].isdigit()
        if on_open:
            history[DRAWN] = opened["drawing"]
        latest = opened.get(LATEST_AT_OPEN)
        if isinstance(latest, int) and not isinstance(latest, bool) and latest >= 0:
            history[LATEST_AT_OPEN] = latest
    # Signed when it leaves (only this callback writes it); the guard checked it came
    # back as it left.
    history = _signing.unsigned(history)
    before = history
    shape = _shape(meta)
    ai = _ai_for(ai, meta)
    redraw = False
    if on_open:
        # The open's drawing never showed the AI outline, which the model answered
        # before the graph could be drawn on: edits on it go over it, as their graph
        # event's would.
        history = _take_ai(history, ai)
    unedited = history
    # First, as they came first: graph edits on screen whose answer the browser dropped.
    history, shown_cut = _shown_edits(history, shown, max_vertices, shape)
    missed = shown_cut is False
    # The outline as the graph edits of this call left it (None: they changed nothing).
    edited = history["present"] if history is not unedited else None

    # Dash reports every input of a page that is drawn again as triggered (coming
    # back from another page, say), so each branch checks that its input really is
    # new: a click count, an AI result not applied before, a different density.
    # The AI result is taken on any call, not only when segmentation reports done:
    # one that arrived while the radiologist was on another page (where this page's
    # callbacks cannot run) is applied when the page is drawn again.
    history = _take_ai(history, ai)
    if (
        ids.LOADED_SAVE in triggered
        and loaded
        and loaded.get("image") == sha
        and not loaded.get("failed")
        and not _applied(history, loaded.get("at"))
    ):
        state = _editing.make_state(loaded["paths"], "saved", density=_vertices(max_vertices))
        version = loaded.get("version")
        numbered = isinstance(version, int) and not isinstance(version, bool)
        if numbered:
            # Which version's outline the step is: the box models behind it are read
            # from that version's record when the work is saved (_box_models).
            state[SAVED_VERSION] = version
        history = _push_answer(history, state, loaded.get("at"))
        if numbered:
            # Newest last: the next save revises it, and descends from all of them,
            # since the editor may still hold an earlier one's label, note or outline.
            earlier = [v for v in history.get("loaded_versions") or [] if v != version]
            history["loaded_versions"] = [*earlier, version]
    # The graph's event describes the outline it showed, before any answer that comes
    # with it in this call: a drawn box waits here for its answer (see ask_box), and
    # the event's unchanged shapes must not be recorded over the box's outline.
    drawn_box = False  # a box drawn in this very event, which ask_box asks for
    shaped = False  # this very event moved, drew or cut shapes (not a zoom, say)
    if ids.ANNOTATION_GRAPH in triggered:
        change = _relayout_change(history["present"]["paths"], relayout)
        drawn_box = _box_asked(change.boxes, shape)
        shaped = change.paths is not None or bool(change.cuts)
        if change.boxes or change.dropped or change.cuts:
            # Remove the drawn rectangle, a stroke enclosing nothing, or a cut's path.
            redraw = True
        present_paths = history["present"]["paths"]
        # Plotly re-sends paths in its own number format; only real changes count. A
        # screen with a cut was taken whole from the store above (this event is in it):
        # its outline is no longer the screen's, which the event's shape numbers name.
        if (shown_cut is None and change.paths is not None
                and not _shapes.same_geometry(change.paths, present_paths)):
            # A hand-made outline counts as drawn at the slider's current density.
            density = history["present"].get("density") or _vertices(max_vertices)
            history = _push(
                history, _editing.make_state(change.paths, "edit", density=density)
            )
            edited = history["present"]
        if shown_cut is None and change.cuts:
            history, cut = _cut(history, change.cuts, shape, max_vertices)
            missed = not cut
            edited = history["present"] if cut else edited
    # A slider move, before the clicks that may have come after it. The move whose
    # answer was dropped (a drag right after it) comes after the graph's edits all the
    # same: they were made on the outline of before, which the density then redraws.
    if (ids.VERTEX_DENSITY in triggered and max_vertices) or _slider_moved(
            before, max_vertices, page):
        history = _density_change(history, max_vertices, shape, ai)
    history, offset = _offset_clicks(history, _grow, _shrink, page, shape, meta, max_vertices,
                                     lost)
    # Like the AI result, box answers are taken on any call, each once, oldest first:
    # an answer is applied only while its box is still pending. After the edits,
    # because Dash holds this call until the answer is in, and merges the clicks and
    # the slider moves of the wait into it: they are kept under the box. An answer
    # leaves the list with every box drawn before it (their answers, if any, came
    # with it or are lost: the browser drops a callback's older answer once a newer
    # request is on its way).
    boxes = _pending_boxes(pending, sha)
    found_nothing = answered = False
    answers = sorted(_box_answers(box_result, sha), key=lambda a: a.get("request") or 0)
    for answer in answers:
        if answer.get("request") not in {r.get("at") for r in boxes}:
            continue
        answered = True
        boxes = [r for r in boxes if r.get("at") > answer["request"]]
        if answer.get("failed"):
            continue
        try:
            state = _editing.merge_box(
                history["present"]["paths"],
                answer["box"],
                _decode_mask(answer["mask"]),
                shape,
                _vertices(max_vertices),
            )
        except ValueError as exc:
            # An answer that does not fit the image (asked before segment_box checked
            # its box) is dropped: kept, it failed every later edit of the image.
            logger.warning("box answer for %s not applied: %s", sha[:12], exc)
            continue
        if _editing.box_note(state) == _editing.BOX_FOUND_NOTHING:
            # The outline stays as it was: an undo step would take back nothing. The
            # status line still says the box was answered (see measure).
            found_nothing = True
            continue
        if edited is not None and history["present"] == edited:
            # Graph edits in this call were made while the box was segmented (Dash
            # held the call for its answer): they are the step under the box's, and
            # the status line says so, since inside the box the answer replaced them.
            state[OVER_EDITS] = True
        if answer.get("model"):
            state[BOX_MODEL] = answer["model"]
        history = _push(history, state)
    # Undo, Redo and Reset to AI come after the box: pressed while it was segmented,
    # they were pressed after it was drawn. Before it, an Undo took back the step
    # under the box, which the box's step then cleared from the redo list: a region
    # drawn by hand was lost for good. Now they wait for the box's answer (Dash sends
    # them in a call of their own, or with the box's event, before the answer), and
    # the box is made, then undone, as a cut or a Grow click whose answer was on its way.
    # A graph event that edited the outline was made after the presses it brings (its
    # edit may have been taken from the screen, see _shown_edits). A zoom's brings edits
    # made before the presses, if any, as a click's request does.
    graph_edited = drawn_box or (shaped and edited is not None)
    history, clicked = _step_clicks(history, triggered, _step_counts(_undo, _redo, _reset),
                                    page, lost, after=graph_edited, presses=presses)
    history = _after_box(history, clicked, (drawn_box and not answered) or _box_waited(boxes),
                         ai)
    if triggered & {ids.OVERLAY_OPACITY, ids.OVERLAY_VISIBLE, ids.SHOW_CALIPERS, ids.IMAGE_OPENED}:
        redraw = True

    slider = _slider_value(history["present"], triggered | offset, max_vertices)
    history = _slider_record(history, max_vertices if slider is dash.no_update else slider, page)

    # A click record alone (a Shrink of nothing) is written, but moves no outline. A cut
    # that missed moves none either, but the status line must say so.
    changed = _outline_of(history) != _outline_of(before) or missed or found_nothing
    # Boxes of another image are dropped from the list too.
    boxes_changed = boxes != (pending or [])
    if history == before and not redraw and not boxes_changed:
        raise PreventUpdate
    revision = _drawing()
    figure = _shapes_patch(history["present"]["paths"], opacity, visible, calipers, shape,
                           revision, _spacing(meta))
    # The drawing the graph's next edits are made on (see _shown_edits).
    history = {**{k: v for k, v in history.items() if k not in (CUT_MISSED, BOX_EMPTY)},
               DRAWN: revision}
    # Each said while this drawing is the graph's.
    if missed:
        history[CUT_MISSED] = revision
    if found_nothing:
        history[BOX_EMPTY] = revision
    # The browser passes on a graph event only when it differs from the last one, so
    # after Undo (or a reset, a load, an answer) the same edit made again, erasing the
    # same outline or deleting the same vertex, would be shown and never recorded,
    # and a save would keep the outline no longer on screen. Emptying the last event
    # lets the next one through. (Dash does not call a callback for its own output.)
    moved_otherwise = changed and ids.ANNOTATION_GRAPH not in triggered
    return (
        _signing.signed(history, ids.HISTORY),
        figure,
        not _history.can_undo(history),
        not _history.can_redo(history),
        ai is None,
        slider,
        time.time_ns() if changed else dash.no_update,
        boxes if boxes_changed else dash.no_update,
        None if moved_otherwise else dash.no_update,
    )


def _take_ai(history: dict, ai: dict | None) -> dict:
    """``history`` with the AI result ``ai`` as a step, unless taken in already."""
    if ai and not _applied(history, ai.get("at")) and not _same_ai(history["present"], ai):
        state = _editing.make_state(ai["paths"], "ai", base="ai", density=ai.get("vertices"))
        history = _push_answer(history, state, ai.get("at"))
    return history


#: A box's state marked so was applied over graph edits made while it was segmented.
OVER_EDITS = "over_edits"
#: A box's state holds under this key the ``{"name", "version"}`` of the model that
#: answered the box (see _box_models).
BOX_MODEL = "model"
#: A loaded version's state (action "saved") holds under this key the version's number.
SAVED_VERSION = "version"
#: The actions whose state replaces the whole outline: the model's first outline (or
#: Reset to AI), a saved version loaded to revise, a new image.
_WHOLE_OUTLINE_ACTIONS = ("ai", "reset", "saved", "open")


def _box_models(history: dict, meta: dict | None = None) -> list[dict]:
    """The models that answered the box re-segmentations the present outline was made
    with: those of the box steps since the last step that replaced the whole outline
    (an undone box is not among them; nor is a box drawn before Reset to AI, or before
    a saved version was loaded).

    A saved version loaded to revise (*Load it to revise*) brings the box models its own
    record names (its ``model.box``, read from the data folder of image ``meta``, as
    :func:`_revised` reads its provenance): the outline kept is partly theirs until it
    is replaced whole (Reset to AI, another load) or the load is undone. Kept, too, when
    the loaded outline is edited, even where a box of it is erased: which part of an
    outline each model drew is not recorded, and the record's models are those of the
    steps the outline was made with. A version saved before box models were recorded
    brings none. Steps dropped from the undo history (200 edits on, or 4 MiB of
    outlines) still count, through what :func:`_push` kept of them (:data:`BOX_FLOOR`).

    Returns
    -------
    list of dict
        ``{"name", "version"}`` of each box step, oldest first, a loaded version's first
        (duplicates kept: :func:`_record.build_record` keeps each model once).

    Raises
    ------
    ValueError
        With a message for the radiologist: the loaded version is not the reader's to
        load, or its record cannot be read or cannot say its box models.
    """
    steps = [*history.get("past", []), history.get("present")]
    loaded, models = _box_steps(_box_floor(history), steps)
    if loaded is None or not meta:
        return models
    store, sha = get_store(), meta["sha256"]
    record = _revised_record(store, sha, loaded, store.versions(sha, get_reader()))
    return [*_saved_box_models(record, loaded), *models]


#: The history's record of what the undo steps it dropped (the oldest, beyond
#: ``_history.DEFAULT_LIMIT`` or ``DEFAULT_MAX_BYTES``) said of the outline's box models:
#: ``{"image": sha256, "loaded": version or None, "models": [{"name", "version"}, ...]}``,
#: as :func:`_box_steps` reads the steps (see :func:`_push`).
BOX_FLOOR = "box_floor"


def _box_steps(start: tuple[int | None, list[dict]], steps) -> tuple[int | None, list[dict]]:
    """``(the loaded version whose outline the last whole replacement was, or None; the
    models of the box steps since)`` after ``steps`` (outline states, oldest first), from
    ``start``, the same of the steps before them."""
    loaded, models = start[0], list(start[1])
    for state in steps:
        if not isinstance(state, dict):
            continue
        if state.get("action") in _WHOLE_OUTLINE_ACTIONS:
            models = []
            version = state.get(SAVED_VERSION) if state.get("action") == "saved" else None
            loaded = (version if isinstance(version, int) and not isinstance(version, bool)
                      else None)
        elif state.get("action") == "box" and isinstance(state.get(BOX_MODEL), dict):
            models.append(state[BOX_MODEL])
    return loaded, models


def _box_floor(history: dict) -> tuple[int | None, list[dict]]:
    """What the steps ``history`` dropped said of the box models (:data:`BOX_FLOOR`), as
    :func:`_box_steps` gives it; nothing for a record of another image, or one that is
    not what :func:`_push` writes (kept by the browser, as the steps are)."""
    floor = history.get(BOX_FLOOR)
    if not isinstance(floor, dict) or floor.get("image") != history.get("image"):
        return None, []
    loaded, models = floor.get("loaded"), floor.get("models")
    if isinstance(loaded, bool) or not isinstance(loaded, int):
        loaded = None
    if not isinstance(models, list):
        models = []
    return loaded, [m for m in models if isinstance(m, dict)]


def _push(history: dict, state: dict, *, amend: bool = False) -> dict:
    """``_history.push`` of ``state`` (or ``_history.amend``), keeping in
    :data:`BOX_FLOOR` what the steps it drops from the undo history said of the box
    models: a long revision's outline is still partly the models of a box, or of the
    version loaded, whose step was dropped 200 edits on."""
    after = (_history.amend if amend else _history.push)(history, state)
    if not amend and state == history["present"]:
        return after  # nothing pushed
    steps = [*history["past"], *([] if amend else [history["present"]])]
    dropped = len(steps) - len(after["past"])
    if dropped > 0:
        loaded, models = _box_steps(_box_floor(history), steps[:dropped])
        # Each model once (as the record keeps them): a long session's boxes add none.
        models = [m for at, m in enumerate(models) if m not in models[:at]]
        after[BOX_FLOOR] = {"image": history["image"], "loaded": loaded, "models": models}
    return after


#: What the status line adds after such a box.
OVER_EDITS_TEXT = (
    "over the edits made while the box was segmented; Undo shows them without it"
)

#: The history's record of the drawing of its present outline that the graph was last
#: sent (its ``editrevision``): graph edits made on that drawing are edits of that
#: outline (see _shown_edits).
DRAWN = "drawn"


def _shown_edits(history: dict, shown, max_vertices, shape) -> tuple[dict, bool | None]:
    """``history`` with the graph edits on screen that it does not hold yet.

    A graph event tells only what it changed (a dragged vertex or moved shape is
    ``{"shapes[i].path": ...}``), and the browser keeps only the newest answer of
    this callback: an edit made while the one before was on its way (drag a vertex,
    then another, or press Grow) came with the history from before that one, and its
    answer drew the outline without the edit before. ``shown`` (the SHAPES_SHOWN
    store) is every outline on screen after the last graph edit; when it was edited
    from the very drawing of ``history``'s present (``DRAWN``: the two came in one
    answer), what it holds beyond that present was made on screen and is recorded
    here, as one undo step (the edits whose answers were dropped, with the next if
    it is a graph edit too). So is a drawing derived from it (see
    :func:`_derived_drawing`: the graph redrawn as it was, the box's rectangle taken
    off, while the box is segmented). A drawing made since (Undo, an answer) is
    another: the store is then out of date and left alone.

    Paths drawn with *Cut away* on that screen (the store's ``cuts``) are cut from it
    after: a cut drawn before the answer to an edit is neither lost nor taken for a
    region. Returns the history, and whether the screen held a cut that cut the
    outline (True), one that reached no outline (False), or none (None).
    """
    if not (isinstance(shown, dict) and _made_on(shown.get("revision"), history.get(DRAWN))
            and isinstance(shown.get("paths"), list)):
        return history, None
    cuts = shown.get("cuts") if isinstance(shown.get("cuts"), list) else []
    event = {"shapes": [{"type": "path", "path": p} for p in shown["paths"]]
             + [{"type": "path", "path": p, "name": _shapes.CUT_NAME} for p in cuts]}
    change = _relayout_change(history["present"]["paths"], event)
    if change.paths is None:
        return history, None
    if not _shapes.same_geometry(change.paths, history["present"]["paths"]):
        density = history["present"].get("density") or _vertices(max_vertices)
        history = _push(
            history, _editing.make_state(change.paths, "edit", density=density))
    if not change.cuts:
        return history, None
    return _cut(history, change.cuts, shape, max_vertices)


#: The history's record of a cut that reached no outline: the drawing it was answered
#: with, while which the status line says so (see measure).
CUT_MISSED = "cut_missed"
#: The same for a box the model found nothing in (no undo step is made for it).
BOX_EMPTY = "box_empty"
#: The status line's words for it.
BOX_EMPTY_TEXT = f"box re-segment: {_editing.BOX_FOUND_NOTHING}"


def _cut(history: dict, cuts, shape, max_vertices) -> tuple[dict, bool]:
    """``history`` with the *Cut away* paths ``cuts`` taken off its outline, an undo
    step for each cut that reaches it, in the order drawn (see _editing.cut_outline),
    and whether any did (when none does, the history is as it was)."""
    # Two cuts drawn before the first was answered arrive together; each is still its
    # own step, so Undo takes back the last cut drawn, not both.
    reached = False
    for cut in cuts:
        density = history["present"].get("density") or _vertices(max_vertices)
        state = _editing.cut_outline(history["present"]["paths"], [cut], shape, density)
        if state is not None:
            history, reached = _push(history, state), True
    return history, reached


# A click on one of edit's buttons while edit's previous call is on its way: Dash
# (4.4) drops that call's answer and holds the new request until some callback
# completes, which the dropped call never does. Two quick Grow clicks then moved
# nothing at all until the next click or poll. This callback on the same clicks
# completes at once and lets the new request go; its answer takes both clicks in
# (see _offset_clicks). The output is never written.
clientside_callback(
    "function() { return window.dash_clientside.no_update; }",
    Output(ids.IMAGE_PANEL, "className"),
    Input(ids.GROW_BUTTON, "n_clicks"),
    Input(ids.SHRINK_BUTTON, "n_clicks"),
    Input(ids.UNDO_BUTTON, "n_clicks"),
    Input(ids.REDO_BUTTON, "n_clicks"),
    Input(ids.RESET_BUTTON, "n_clicks"),
    prevent_initial_call=True,
)

#: The most Undo, Redo and Reset to AI presses STEP_PRESSES keeps (the newest).
STEP_PRESSES_KEPT = 64

# Each Undo, Redo and Reset to AI press, in order, with the count it made: edit's request
# carries only the counts, and presses merged in one request were made in the order
# they came (see _step_clicks).
clientside_callback(
    """
    function(undo, redo, reset, log, page) {
        var ctx = window.dash_clientside.callback_context;
        var keys = {"undo-button": "undo", "redo-button": "redo", "reset-button": "reset"};
        var presses = log && log.page === page && Array.isArray(log.presses)
            ? log.presses.slice() : [];
        ((ctx && ctx.triggered) || []).forEach(function (fired) {
            var key = keys[String(fired.prop_id).split(".")[0]];
            if (key && typeof fired.value === "number") { presses.push([key, fired.value]); }
        });
        return {page: page, presses: presses.slice(-KEPT)};
    }
    """.replace("KEPT", str(STEP_PRESSES_KEPT)),
    Output(ids.STEP_PRESSES, "data"),
    Input(ids.UNDO_BUTTON, "n_clicks"),
    Input(ids.REDO_BUTTON, "n_clicks"),
    Input(ids.RESET_BUTTON, "n_clicks"),
    State(ids.STEP_PRESSES, "data"),
    State(ids.PAGE_LOAD, "data"),
    prevent_initial_call=True,
)


#: The history's record of the Grow and Shrink clicks applied (see
#: _editing.unapplied_clicks): beside the states, so Undo does not make them new again.
OFFSET_CLICKS = "offset_clicks"


def _offset_clicks(history, grow, shrink, page, shape, meta, max_vertices,
                   lost=None) -> tuple[dict, set]:
    """``history`` with the Grow and Shrink clicks not yet applied, and ``{GROW_BUTTON}``
    when they moved the outline (else an empty set).

    Counted from the history's record rather than taken from the trigger: the browser
    keeps only the newest answer, so a click whose answer was dropped (a second click,
    or any other change, made before it came) comes with the next request, whatever
    that request's trigger. So they are applied before Undo, Redo and Reset, which
    came after them. All the clicks one answer takes are one undo step, the outline as
    it changed on screen, and one offset however many they are: a hand-written count
    of millions costs one click's work, clamped to ``vectorizer.MAX_OFFSET_PX``.
    Clicks of a request that got no answer (``lost``, the OFFSET_CLICKS_LOST store)
    moved nothing on screen, and are not applied later.
    """
    steps, record = _editing.unapplied_clicks(history.get(OFFSET_CLICKS), page, grow, shrink,
                                              lost)
    if record is not history.get(OFFSET_CLICKS):
        history = {**history, OFFSET_CLICKS: record}
    present = history["present"]
    # Shrink needs an outline; Grow, an outline or a run that shrank it away (to bring
    # it back). A Shrink of nothing would only pile up steps that Grow must undo.
    if not ((steps < 0 and present["paths"]) or (steps > 0 and (
            present["paths"] or present.get("offset_from")))):
        return history, set()
    # Worked out from where the run of clicks began.
    density = present.get("density") or _vertices(max_vertices)
    state = _editing.offset_outline(
        present, steps, shape, density, pixel_spacing=meta.get("pixel_spacing_mm")
    )
    return _push(history, state), {ids.GROW_BUTTON}


def _outline_of(history: dict) -> dict:
    """``history`` without its click and slider records: what the outline's echo follows."""
    return {k: v for k, v in history.items() if k not in (OFFSET_CLICKS, STEP_CLICKS, SLIDER)}


#: The history's record of the Undo, Redo and Reset to AI clicks applied (see
#: _step_clicks), as OFFSET_CLICKS is of Grow and Shrink's.
STEP_CLICKS = "step_clicks"
#: Each step button's key in STEP_CLICKS (and in OFFSET_CLICKS_LOST), and its id.
_STEP_BUTTONS = (("undo", ids.UNDO_BUTTON), ("redo", ids.REDO_BUTTON),
                 ("reset", ids.RESET_BUTTON))


def _step_counts(undo, redo, reset) -> dict:
    """The step buttons' ``n_clicks`` by their STEP_CLICKS keys."""
    return {"undo": undo, "redo": redo, "reset": reset}


def _step_clicks(history: dict, triggered: set, counts: dict, page, lost=None,
                 after: bool = False, presses=None) -> tuple[dict, list[str]]:
    """``history`` with its record of the Undo, Redo and Reset to AI clicks, and the
    clicks not yet applied, in the order they are to be applied.

    The browser keeps only the newest answer of the edit callback: Ctrl+Z pressed twice
    before the first was answered made two requests from one history, and the second
    took back one step, not two. Counted like Grow and Shrink's clicks (see
    :func:`_offset_clicks`), each press counts, whichever request brings it; a request
    that got no answer (``lost``) undid nothing on screen, and its clicks are not made
    later. The order between buttons is the page's record of the presses (``presses``,
    STEP_PRESSES); a press it does not hold (the newest, whose record the request may
    have left before) comes after those it does, the one that set off this call last.
    Undo, Redo, Undo, Redo pressed to compare, each making its button's count alone,
    made both Redos first, the first of them with nothing to redo, then both Undos: two
    steps back. Beyond the record, a Reset to AI is made once however often it was
    pressed, and Undo and Redo no more often than there are steps. Without this drawing
    of the page's token (a request not from the page) the trigger is the one click, as it
    was.

    Presses brought by a graph event that edited the outline (``after``), none of
    them its trigger, were made before it, and the edit was made on the outline the
    screen still showed: they are counted, not made. Made after it, Ctrl+Z then a
    vertex dragged before its answer took the drag back, and the screen went back to
    the outline from before both.
    """
    if _page_token(page) is None:
        return history, [op for op, button in _STEP_BUTTONS
                         if button in triggered and counts.get(op)]
    new, record = _editing.new_clicks(history.get(STEP_CLICKS), page, counts, lost)
    if record is not history.get(STEP_CLICKS):
        history = {**history, STEP_CLICKS: record}
    if after and not triggered & {button for _op, button in _STEP_BUTTONS}:
        return history, []
    ops = _pressed_order(presses, page, new, record)
    left = {op: new[op] - ops.count(op) for op in new}
    steps = len(history.get("past") or []) + len(history.get("future") or []) + 2
    for op, _button in sorted(_STEP_BUTTONS, key=lambda pair: pair[1] in triggered):
        ops += [op] * min(left[op], 1 if op == "reset" else steps)
    return history, ops


def _pressed_order(presses, page, new: dict, record) -> list[str]:
    """The new presses (``new``, up to each count ``record`` now holds) that the page's
    record ``presses`` of this drawing ``page`` holds, in the order it holds them."""
    if not (isinstance(presses, dict) and presses.get("page") == page
            and isinstance(presses.get("presses"), list) and isinstance(record, dict)):
        return []
    ops, seen = [], set()
    for entry in presses["presses"][-STEP_PRESSES_KEPT:]:
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in new):
            continue
        op, n = entry[0], _editing.click_count(entry[1])
        top = _editing.click_count(record.get(op)) or 0
        if n is not None and top - new[op] < n <= top and (op, n) not in seen:
            seen.add((op, n))
            ops.append(op)
    return ops


#: The history's record of the Undo, Redo and Reset to AI clicks made while a box was
#: segmented, in order: they act once its answer is in (see _after_box).
AFTER_BOX = "after_box"
#: The most such clicks kept.
AFTER_BOX_KEPT = 50
#: The status line's words for them, meanwhile (the outline does not move yet).
AFTER_BOX_NAMES = {"undo": "Undo", "redo": "Redo", "reset": "Reset to AI"}
#: Seconds beyond the model server's timeout (SONOTRACE_REQUEST_TIMEOUT) that Undo waits
#: for a box's answer: a box whose request got no answer at all (the client
#: unreachable) must not hold Undo back for good.
BOX_WAIT_MARGIN_S = 10


def _box_asked(boxes, shape) -> bool:
    """Whether a graph event's rectangles ``boxes`` make ask_box ask for a box (the last
    one, inside the image and not under MIN_BOX_SIDE a side)."""
    box = _shapes.clip_box(boxes[-1], shape[1], shape[0]) if boxes else None
    return box is not None and min(box[2] - box[0], box[3] - box[1]) >= MIN_BOX_SIDE


def _box_waited(boxes) -> bool:
    """Whether a box of ``boxes`` (pending, with no answer yet) is still waited for."""
    if not boxes:
        return False
    # The default outside a request (the unit tests call the callbacks directly).
    timeout = (get_config().request_timeout if flask.has_app_context()
               else ClientConfig.request_timeout)
    now, limit = time.time_ns(), (timeout + BOX_WAIT_MARGIN_S) * 1e9
    return any(0 <= now - r["at"] < limit for r in boxes)


def _after_box(history: dict, clicked: list[str], waiting: bool, ai) -> dict:
    """``history`` with the Undo, Redo and Reset to AI clicks that waited for a box's
    answer, then ``clicked`` (this call's, in that order), applied; or, while a box
    is ``waiting`` for its answer, with them all recorded to apply after it.

    Applied before the answer, an Undo took back the step under the box, and the box's
    step then cleared it from the redo list.
    """
    ops = [op for op in history.get(AFTER_BOX) or [] if op in ("undo", "redo", "reset")]
    ops += clicked
    if waiting and ops:
        return {**history, AFTER_BOX: ops[-AFTER_BOX_KEPT:]}
    if AFTER_BOX in history:
        history = {k: v for k, v in history.items() if k != AFTER_BOX}
    for op in ops:
        if op == "undo":
            history = _history.undo(history)
        elif op == "redo":
            history = _history.redo(history)
        elif ai:
            state = _editing.make_state(ai["paths"], "reset", base="ai",
                                        density=ai.get("vertices"))
            history = _push(history, state)
    return history


#: The history's record of the vertex density the slider was left showing, when that
#: is not the present outline's own (see _slider_moved): ``{"page": str, "vertices": int}``.
SLIDER = "slider"


def _page_token(page) -> str | None:
    """This drawing of the page's token, or None for anything but the page's own kind."""
    return page if isinstance(page, str) and 0 < len(page) <= 64 else None


def _slider_seen(history: dict, page) -> int | None:
    """The vertex density the slider showed when ``history`` was written.

    The outline's own density, unless the record says otherwise for this drawing of the
    page (on another, the slider was drawn anew). None when the outline has no density
    (no outline yet): then any value the slider shows is as good as seen.
    """
    record = history.get(SLIDER)
    page = _page_token(page)
    if (page is not None and isinstance(record, dict) and record.get("page") == page
            and _slider_gives(record.get("vertices"))):
        return record["vertices"]
    return history["present"].get("density")


def _slider_moved(history: dict, max_vertices, page) -> bool:
    """Whether the slider shows a density that ``history`` has not taken in.

    The browser keeps only the newest answer of the edit callback: a vertex dragged
    right after the slider moved is sent with the history from before the move, and
    the move's answer (the outline at the new density) is dropped. The slider, which
    the user moved, still shows the new value; its request says so, not the trigger.
    Without this drawing of the page's token (a request not from the page) nothing is
    taken for a move: the record could not be told from one of another drawing.
    """
    if _page_token(page) is None or not _slider_gives(max_vertices):
        return False
    seen = _slider_seen(history, page)
    return seen is not None and _vertices(max_vertices) != seen


def _slider_gives(value) -> bool:
    """Whether ``value`` is a density the slider can show (not none, nor a forged one)."""
    return value is not None and _vertices(value) == value


def _density_change(history: dict, max_vertices, shape, ai) -> dict:
    """``history`` with its outline drawn again at the slider's density, when that is not
    the outline's own and there is an outline (or a base to draw it from)."""
    present = history["present"]
    vertices = _vertices(max_vertices)
    # The slider also reports its value when the page is drawn again; only a value
    # other than the outline's own density is a request to re-vectorize.
    if vertices == present.get("density") or not (present["paths"] or present.get("base")):
        return history
    ai_mask = _decode_mask(ai["mask"]) if ai and present.get("base") == "ai" else None
    state = _editing.revectorize(present, vertices, shape, ai_mask)
    # A run of density changes (the slider moved with the arrow keys, a step each) is
    # one undo step: each starts from the same geometry anyway.
    return _push(history, state, amend=present.get("action") == "density")


def _slider_record(history: dict, vertices, page) -> dict:
    """``history`` with the record of the density the slider is left showing.

    Kept only while it says something the outline does not (a move with no outline to
    redraw, an AI outline of the density it was asked at): otherwise the outline's own
    density tells it, and a history written without any move stays as it was. A value
    the slider cannot show changes nothing.
    """
    if not _slider_gives(vertices):
        return history
    density = history["present"].get("density")
    page = _page_token(page)
    if page is None or density is None or vertices == density:
        if SLIDER not in history:
            return history
        return {k: v for k, v in history.items() if k != SLIDER}
    record = {"page": page, "vertices": int(vertices)}
    return history if history.get(SLIDER) == record else {**history, SLIDER: record}


def _vertices(value) -> int:
    """The vertex-density slider's value as a vertex budget: 32 for a value the slider
    cannot give (none yet, or a hand-written request's ``"abc"`` or ``1000``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (isinstance(value, bool) or not isinstance(value, int)
            or not SLIDER_VERTICES[0] <= value <= SLIDER_VERTICES[1]):
        return 32
    return value


def _relayout_change(paths, relayout) -> _shapes.RelayoutEdit:
    """The graph event's change to ``paths``; none for an event that cannot be one.

    Plotly sends well-formed events; one the shapes module refuses (more path data
    than can be saved, a coordinate that is no number, a body that is not an event)
    was written by hand, and is dropped rather than answered with a server error.
    """
    try:
        return _shapes.apply_relayout(paths, relayout)
    except (ValueError, TypeError) as exc:
        logger.warning("ignored a graph event: %s", exc)
        return _shapes.RelayoutEdit()


def _slider_value(present: dict, triggered: set, max_vertices):
    """The vertex-density slider after a step through the history.

    Undo, redo and reset bring back an outline drawn at another density; the
    slider must show it, or the page drawn again (which re-sends the slider's
    value) would re-vectorize at the stale value and drop the redo steps.
    """
    density = present.get("density")
    # Grow can bring back an outline shrunk away, at the density it was drawn at.
    stepped = triggered & {ids.UNDO_BUTTON, ids.REDO_BUTTON, ids.RESET_BUTTON,
                           ids.GROW_BUTTON, ids.SHRINK_BUTTON}
    if stepped and density and density != max_vertices:
        return int(density)
    return dash.no_update


# Erasing the *selected* region needs plotly's notion of the active shape, which only
# the browser knows; relayout drops it and plotly reports the new shape list through
# relayoutData, which edit() then records like any other change.
clientside_callback(
    """
    function(n) {
        if (!n) { return window.dash_clientside.no_update; }
        var gd = document.querySelector('#annotation-graph .js-plotly-plot');
        if (!gd || !gd._fullLayout) { return window.dash_clientside.no_update; }
        var i = gd._fullLayout._activeShapeIndex;
        // Numbered: a store set to the value it has fires nothing, and every
        // click with nothing selected must be answered.
        if (typeof i !== 'number' || i < 0) { return 'no-selection-' + n; }
        var shapes = (gd.layout.shapes || []).filter(function(s, k) { return k !== i; });
        // Let go of it first: plotly.js keeps the selection as a position in the list,
        // which after the erase is the next outline, one nobody picked (audit 806 F1).
        if (typeof gd._fullLayout._deactivateShape === 'function') {
            gd._fullLayout._deactivateShape(gd);
        } else { delete gd._fullLayout._activeShapeIndex; }
        window.Plotly.relayout(gd, {shapes: shapes});
        return 'erased-' + n;
    }
    """,
    Output(ids.ERASE_DUMMY, "data"),
    Input(ids.ERASE_BUTTON, "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.EDIT_STATUS, "children", allow_duplicate=True),
    Input(ids.ERASE_DUMMY, "data"),
    prevent_initial_call=True,
)
def say_nothing_selected(erased):
    """Answer an *Erase selected* click that had nothing to erase, rather than none."""
    if not (isinstance(erased, str) and erased.startswith("no-selection")):
        raise PreventUpdate
    # The drawing tools leave the outline alone (_figure.EDITING_DRAGMODES): say which select.
    return html.Span("Nothing is selected: click an outline to select it (with Pan or Zoom), "
                     "or press R, then Erase selected.", className="text-danger",
                     id="erase-nothing",
                     **{"data-click": erased.rpartition("-")[2]})


# Every newly opened image is drawn as on a fresh graph: see _figure.FRESH_VIEW_SCRIPT
# (plotly.js kept the first image's range for the next, with a black strip beside a
# narrower one). The output is never written (a clientside callback needs one); it is
# outside the graph's dcc.Loading, which would count this callback as loading.
clientside_callback(
    _figure.FRESH_VIEW_SCRIPT,
    Output(ids.IMAGE_PANEL, "style"),
    Input(ids.ANNOTATION_GRAPH, "figure"),
)

# The outline is editable only while the mouse pans or zooms, so that a box, a cut, a
# region or the calibration line can be drawn from a press on its edge (plotly.js gave
# that press to the outline, and the drag drew nothing): see
# _figure.OUTLINE_EDITING_SCRIPT. After every figure (a tool picked, an outline drawn)
# and every mode bar button.
clientside_callback(
    _figure.OUTLINE_EDITING_SCRIPT,
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Input(ids.ANNOTATION_GRAPH, "figure"),
    Input(ids.ANNOTATION_GRAPH, "relayoutData"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.ANNOTATION_GRAPH, "figure", allow_duplicate=True),
    Input(ids.TOOL, "value"),
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
def choose_tool(tool, meta):
    """Pan, zoom, draw a region, draw a re-segmentation box or draw a cut."""
    if not meta or tool not in _figure.TOOL_DRAGMODES:
        raise PreventUpdate
    patch = Patch()
    patch["layout"]["dragmode"] = _figure.TOOL_DRAGMODES[tool]
    patch["layout"]["newshape"] = _figure.newshape_style(tool)
    return patch


@callback(
    Output(ids.TOOL, "value"),
    Input(ids.IMAGE_OPENED, "data"),
    State(ids.TOOL, "value"),
    prevent_initial_call=True,
)
def reset_tool(opened, tool):
    """Every image opens with the default tool (pan, and a click to edit).

    Box re-segment or Draw region carried over from the image before made the
    first drag on the next one, meant to pan, a box sent to the model or a region.
    The tool's change redraws the mouse's mode (:func:`choose_tool`).
    """
    if not opened or tool == DEFAULT_TOOL:
        raise PreventUpdate
    return DEFAULT_TOOL


# Save & next (the action bar, shown with a worklist): a click of Save, then, once
# that save has answered "Saved.", a click of "Open next not annotated". Two steps in
# the browser, so that the save callback stays the one way of saving, and the next
# image is asked for only after the work is safe. The Save click it makes is written
# down (SAVE_NEXT_PENDING) with the image it is for; Save's old message is cleared, so
# that only the new answer counts.
clientside_callback(
    """
    function(clicks, saveClicks, saveDisabled, meta) {
        var no = window.dash_clientside.no_update;
        if (!clicks || saveDisabled || !meta || !meta.sha256) { return [no, no, no]; }
        var click = (saveClicks || 0) + 1;
        return [click, {clicks: click, image: meta.sha256}, null];
    }
    """,
    Output(ids.SAVE_BUTTON, "n_clicks", allow_duplicate=True),
    Output(ids.SAVE_NEXT_PENDING, "data"),
    Output(ids.SAVE_ALERT, "children", allow_duplicate=True),
    Input(ids.SAVE_NEXT_BUTTON, "n_clicks"),
    State(ids.SAVE_BUTTON, "n_clicks"),
    State(ids.SAVE_BUTTON, "disabled"),
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)

# Every press of Save (a click, Ctrl+S, which clicks it, or the click Save & next makes)
# says how long this tab has shown the image it is for (SAVE_PRESS), which the server
# cannot know: its own clock starts as it opens the image, before the answer travels and
# is drawn (_unseen_save). Marked with the click count and the image, so that the save
# takes only its own press. Counted up to the press itself (sonotrace.js notes when Save
# or Save & next was clicked): Dash runs this callback only when a slot among the
# requests in flight is free, and after an open a busy page has a dozen on their way;
# counted to when it ran, a press at once was taken as seconds of reading. A press
# made before the image was drawn saw none of it. ``over``: the image the graph showed at
# the press (null before one was drawn); ``image`` is the one open when this ran, which a
# pick or an open made meanwhile has changed (_pressed_over_another); ``opened``, that
# open's time (IMAGE_OPENED's "at"), whose message does not replace this press's answer
# (SAVE_ALERT_ON_OPEN).
clientside_callback(
    """
    function(clicks, meta, shown, opened) {
        if (!clicks || !meta || !meta.sha256) { return window.dash_clientside.no_update; }
        var now = performance.now(), pressed = window.sonotraceSavePressed;
        var at = (typeof pressed === 'number' && pressed <= now) ? pressed : now;
        var shownMs = (shown && shown.image === meta.sha256 && typeof shown.at === 'number')
            ? Math.max(0, Math.round(at - shown.at)) : null;
        var over = window.sonotraceSavePressedOver;
        return {clicks: clicks, image: meta.sha256, shown_ms: shownMs,
                over: typeof over === 'string' ? over : null,
                opened: opened && opened.at != null ? opened.at : null};
    }
    """,
    Output(ids.SAVE_PRESS, "data"),
    Input(ids.SAVE_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.IMAGE_SHOWN, "data"),
    State(ids.IMAGE_OPENED, "data"),
    prevent_initial_call=True,
)

# When the tab showed the image just opened: the open's answer carries the figure with
# IMAGE_OPENED. The graph notes when it first drew the image (_figure.FRESH_VIEW_SCRIPT):
# this callback waits for a free slot among the requests the open set off, on a busy
# page seconds after the image was drawn, and a press in between counted from then.
clientside_callback(
    """
    function(opened) {
        if (!opened || !opened.image) { return null; }
        var gd = document.querySelector('#annotation-graph .js-plotly-plot');
        var drawn = gd && gd.__sonotraceImage === opened.image ? gd.__sonotraceImageAt : null;
        var now = performance.now();
        return {image: opened.image,
                at: (typeof drawn === 'number' && drawn <= now) ? drawn : now};
    }
    """,
    Output(ids.IMAGE_SHOWN, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    prevent_initial_call=True,
)

# The save's answer: "Saved." (its message carries data-version) opens the next entry;
# a refusal or a failure leaves its message and the image. An input on the unsaved
# mark, though the mark is not read: Dash runs a callback only after every callback
# that may still change one of its inputs, so this waits for mark_unsaved, and the
# worklist's request_entry (which asks before unsaved work is dropped) reads the mark
# the save left, not the one before it.
clientside_callback(
    """
    function(alert, _mark, pending, saveClicks, meta, nextClicks) {
        var no = window.dash_clientside.no_update;
        if (!pending) { return [no, no, no]; }
        if (pending.clicks !== saveClicks || !meta || meta.sha256 !== pending.image) {
            return [no, null, no];  // Save clicked again, or another image: not this save's
        }
        var props = alert && alert.props;
        // No answer yet; or a question first (data-question), whose OK saves.
        if (!props || props['data-question']) { return [no, no, no]; }
        if (props['data-version'] === undefined) { return [no, null, no]; }  // not saved
        // Saved with something to read (a reading that contradicts itself, an index
        // not updated, versions saved meanwhile): the message stays, with the image.
        if (props['data-attention']) { return [no, null, no]; }
        // What was saved, said over the next image (clear_save_message): its own
        // message goes with it.
        var saved = {image: meta.sha256, name: meta.name, version: props['data-version']};
        return [(nextClicks || 0) + 1, null, saved];
    }
    """,
    Output(ids.WORKLIST_NEXT, "n_clicks"),
    Output(ids.SAVE_NEXT_PENDING, "data", allow_duplicate=True),
    Output(ids.SAVED_BEFORE_NEXT, "data"),
    Input(ids.SAVE_ALERT, "children"),
    Input(ids.UNSAVED_MARK, "className"),
    State(ids.SAVE_NEXT_PENDING, "data"),
    State(ids.SAVE_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.WORKLIST_NEXT, "n_clicks"),
    prevent_initial_call=True,
)

# Save & next can be clicked when Save can.
clientside_callback(
    "function(disabled) { return !!disabled; }",
    Output(ids.SAVE_NEXT_BUTTON, "disabled"),
    Input(ids.SAVE_BUTTON, "disabled"),
)


@callback(
    Output(ids.MEASUREMENTS, "children"),
    Output(ids.EDIT_STATUS, "children"),
    State(ids.HISTORY, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.IMAGE_OPENED, "data"),
)
def measure(history, meta, _loaded, *_echoes):
    """Live measurements of the current outline."""
    if not meta:
        return _views.measurements_table(None), ""
    present = _present(history, meta)
    # The status line counts regions as the panel, the saved record and the DICOM SR do
    # (_lesions.find_lesions): overlapping outlines are one, an outline's pinched-off
    # sliver no second (audit 806 F2), a self-crossing outline's loops one each.
    regions = len(present["paths"])
    try:
        mask = _shapes.paths_to_mask(present["paths"], _shape(meta))
        summary = _measurements.summarize(
            mask, meta.get("pixel_spacing_mm"), outlines=present["paths"]
        )
        regions = summary["count"]
        table = _views.measurements_table(summary)
    except ValueError as exc:  # an outline of more pieces than can be measured quickly
        table = html.P(f"Cannot measure this outline: {exc}.", className="text-danger mb-0")
    steps = len(history["past"]) if history and history.get("image") == meta["sha256"] else 0
    change = present["action"]
    offset = present.get("offset_from")
    if isinstance(offset, dict) and isinstance(offset.get("pixels"), int):
        # The click's own step, and the run's net offset since its first click.
        previous = history["past"][-1] if steps else None
        change = _editing.offset_change_text(present, previous, meta.get("pixel_spacing_mm"))
    else:
        # What a box did beyond its inside (_editing.box_note), and over edits of its wait;
        # what a cut took away.
        notes = [_editing.box_note(present), present.get(OVER_EDITS) and OVER_EDITS_TEXT,
                 _editing.cut_note(present, meta.get("pixel_spacing_mm"))]
        if any(notes):
            change += f" ({'; '.join(n for n in notes if n)})"
    status = (
        f"{regions} region(s) · {_shapes.vertex_count(present['paths'])} vertices"
        f" · last change: {change} · {steps} undo step(s)"
    )
    if present["action"] in ("ai", "reset") and not present["paths"]:
        # Without it an empty outline on a normal scan reads like a segmentation that
        # never ran.
        status += " · the AI found no lesion"
    if history and history.get("image") == meta["sha256"]:
        for key, text in ((CUT_MISSED, _editing.CUT_MISSED_TEXT), (BOX_EMPTY, BOX_EMPTY_TEXT)):
            if isinstance(history.get(key), str) and history.get(key) == history.get(DRAWN):
                status += f" · {text}"
        waiting = [AFTER_BOX_NAMES.get(op) for op in history.get(AFTER_BOX) or []]
        if waiting and all(waiting):
            status += f" · {', '.join(waiting)} when the box's answer is in"
    return table, html.Span(
        status, id="edit-status-text", **{"data-regions": str(len(present["paths"]))}
    )


@callback(
    Output(ids.GROW_BUTTON, "disabled"),
    Output(ids.SHRINK_BUTTON, "disabled"),
    State(ids.HISTORY, "data"),
    State(ids.IMAGE_META, "data"),
    Input(ids.PAGE_LOAD, "data"),
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.IMAGE_OPENED, "data"),
)
def enable_offset(history, meta, _loaded, *_echoes):
    """*Grow* and *Shrink* while there is an outline; *Grow* also after a run of them
    shrank it away (growing brings it back)."""
    present = _present(history, meta)
    return not present["paths"] and not present.get("offset_from"), not present["paths"]


# =========================================================================== callbacks: record


def _waits_for_the_index_once(callback_function):
    """Run a callback within the index's ``one_wait``: a save that found the index locked
    (the annotator's name not checked) does not wait for it again for the image's
    highest version and for its row (15 s, not 45 s)."""

    @functools.wraps(callback_function)
    def run(*args, **kwargs):
        with get_index().one_wait():
            return callback_function(*args, **kwargs)

    return run


def _known_annotators() -> list[str] | None:
    """Every annotator name the index holds, or None when it cannot be read (logged)."""
    try:
        return get_index().annotators()
    except IndexUnavailable as exc:
        logger.warning("annotator names not read: %s", exc.logged())
        return None


@callback(
    Output(ids.ANNOTATOR, "value"),
    Output(ids.ANNOTATOR, "disabled"),
    Output(ids.ANNOTATOR_HINT, "children"),
    Output(ids.ANNOTATOR_NAMES, "children"),
    Input(ids.PAGE_LOAD, "data"),
    State(ids.ANNOTATOR_STORE, "data"),
    State(ids.ANNOTATOR, "value"),
    # Behind a sign-in proxy, another user may sign in without the page being reloaded.
    Input(ids.SERVER_POLL, "n_intervals"),
)
def recall_annotator(_loaded, stored, typed=None, _ticks=None):
    """Fill in the annotator's name, and say whether it can be typed.

    Without ``SONOTRACE_ANNOTATOR_HEADER`` the name is typed once and kept in
    the browser's local storage, and the names saved before are offered as it is
    typed. A name already in the field (``typed``: typed while a busy page was still
    answering its load) is left as it is, and so is an empty field when no name is
    kept: the answer comes after the typing, and would put the kept name, or
    nothing, in its place. With it, the field shows the name the sign-in proxy sent with this
    request, read only, since that is the name a save records; if the proxy
    named nobody, the hint says a save will be refused. No other reader's name is
    offered then: under blinded reading even the names are not every reader's to see.

    At each health poll behind the proxy, the field follows a sign-in changed since
    (the old name stayed until a reload, and the save's refusal was the first to say
    so); a name that has not changed is not sent again, which would list the worklist
    again and move the page's claims for nothing.
    """
    header = get_config().annotator_header
    polled = _triggered() == {ids.SERVER_POLL}
    if not header:
        if polled:
            raise PreventUpdate  # a typed name is the reader's to change
        names = [html.Option(value=name) for name in _known_annotators() or []]
        keep = (isinstance(typed, str) and typed.strip()) or not stored
        return dash.no_update if keep else stored, False, None, names
    try:
        name = _signin.signed_in_name(flask.request.headers, header)
    except _signin.SignInError as exc:
        if polled and typed == "":
            raise PreventUpdate from None  # already said
        return "", True, html.Span(
            [html.Strong("Saving is refused. "), str(exc)], className="text-danger"
        ), []
    if polled and name == typed:
        raise PreventUpdate
    return name, True, html.Span(
        "Your name comes from the sign-in and cannot be changed here.",
        className="text-muted",
        title=f"Set by the sign-in proxy ({header} header)",
    ), []


# Kept apart from recall_annotator, which fills the field when the page is drawn: this
# one stores what is typed. Its only Input is on the page; a callback with an Input in the
# app shell must keep all its Inputs and Outputs there, or a shell change while another
# page is shown fires it and Dash reports what is missing (test_app.py checks the rule).
@callback(
    Output(ids.ANNOTATOR_STORE, "data"),
    Input(ids.ANNOTATOR, "value"),
    State(ids.ANNOTATOR_STORE, "data"),
    prevent_initial_call=True,
)
def remember_annotator(typed, stored):
    if get_config().annotator_header:
        # Nothing to remember: the proxy names the user on every request, and a name
        # kept in a shared workstation's browser would outlive that user's sign-in. One
        # typed before the setting was turned on is cleared.
        if stored is None:
            raise PreventUpdate
        return None
    # The field sends a string of at most MAX_NAME_CHARS (its maxLength); anything else
    # came from a hand-made request and is not kept in the browser.
    if typed is not None and not isinstance(typed, str):
        raise PreventUpdate
    name = (typed or "").strip()
    if len(name) > _signin.MAX_NAME_CHARS or name == (stored or ""):
        raise PreventUpdate
    return name


# A shared workstation's tab may pass from one signed-in user to the next without a
# reload: recall_annotator then shows the new name at the next health poll (or as the
# page is drawn again), but the label, note, outline, AI answers, save messages and
# loaded version on screen are still the last user's. Under blinded reading the next
# reader must not see them; without it, the next user must not save, under their own
# name, work they did not do. So the page is loaded afresh, at its path without the
# query (a link to the last reader's version), and without the "unsaved work" question
# (sonotrace.js's startAfresh): the last user's unsaved work cannot be saved under their
# name any more. The first name the document shows is the one its work is done under;
# an empty field (signed out, or the page not yet answered) changes nothing, so a
# proxy that once names nobody does not throw away the reader's work. Run in the
# browser: the check is a comparison, and a reload must not wait for the server.
clientside_callback(
    """
    function(name, follows, seen) {
        var no = window.dash_clientside.no_update;
        if (!follows || typeof name !== "string" || !name) { return no; }
        if (typeof seen === "string" && seen && seen !== name) {
            window.sonotrace.startAfresh();
            return no;
        }
        return name === seen ? no : name;
    }
    """,
    Output(ids.SIGNED_IN_AS, "data"),
    Input(ids.ANNOTATOR, "value"),
    State(ids.SIGNIN_FOLLOWED, "data"),
    State(ids.SIGNED_IN_AS, "data"),
)


def _with_screen(history, meta: dict, shown):
    """``history`` with the graph edits on screen that it does not hold yet.

    An edit whose request got no answer (the client restarting, the network gone)
    stays on screen, and never reached the history: a Save then wrote the outline
    before it and said "Saved" (audit 904 F1). ``shown`` (the SHAPES_SHOWN store) is
    the screen after the last graph edit; it is taken as :func:`edit` takes it, only
    when it was edited from the history's own drawing (:func:`_shown_edits`), so a
    screen drawn since (an Undo, an answer) is left alone. The downloads take the
    screen so too. The browser's history catches up as well, as the page's script
    asks :func:`edit` again (EDIT_RESYNC).
    """
    if not (isinstance(history, dict) and isinstance(meta, dict)
            and history.get("image") == meta.get("sha256")):
        return history
    return _shown_edits(_signing.unsigned(history), shown, None, _shape(meta))[0]


def _current_geometry(meta, history):
    paths = _present(history, meta)["paths"]
    return (paths, *_outline_files(paths, meta))


def _offered(ai: dict, ai_mask: np.ndarray, steps: list) -> list[str]:
    """The AI outline as the radiologist last had it offered: its paths, or the same
    mask vectorized at another vertex density when the slider moved it, though the
    outline was edited since (``steps``: the outline states of the open image, oldest
    first, the present last).

    A finer or coarser polygon of the model's own mask corrects nothing, so the
    record must not count it as an edit, nor the DICOM SR a lesion of it left as the
    slider drew it as the reader's. Checked against the mask rather than trusted from
    the history's ``base``: an older AI answer undone back to, say, is not this one.
    """
    for state in reversed(steps):
        if not isinstance(state, dict) or state.get("action") in ("ai", "reset"):
            break  # offered at its own density since
        density = state.get("density")
        if (state.get("base") == "ai" and state.get("action") == "density"
                and isinstance(density, int) and ai_mask is not None):
            try:
                again = _editing.mask_to_regions(ai_mask, density)
            except ValueError:
                break
            if _shapes.same_geometry(again, state["paths"]):
                return state["paths"]
            break
    return ai["paths"]


def _steps(history: dict | None, meta: dict) -> list[dict]:
    """The outline states of ``history`` (undo steps, then the present) when it is the
    open image's (``meta``); its present alone, as :func:`_present` gives it, if not."""
    if history and history.get("image") == meta.get("sha256"):
        return [*history.get("past", []), history["present"]]
    return [_present(history, meta)]


def _offered_mask(ai: dict | None, ai_mask: np.ndarray | None, meta: dict,
                  history) -> np.ndarray | None:
    """The ``(H, W)`` bool mask of the AI's outline as it was offered (:func:`_offered`)
    to the outline of ``history``, or None when the image has no AI outline (``ai``, of
    the open image, and its raster ``ai_mask``).

    The radiologist was offered the AI's outline, not its raster: an outline saved as
    offered is unedited (Dice 1), though its polygon differs from the raster by a few
    pixels; and a lesion of the DICOM SR that is it, untouched, is the model's.
    """
    if not ai or ai_mask is None:
        return None
    return _outline_files(_offered(ai, ai_mask, _steps(history, meta)), meta)[1]


def _outline_files(paths, meta) -> tuple[str, np.ndarray]:
    """The SVG of ``paths`` on the image, and its ``(H, W)`` bool mask."""
    svg = _shapes.paths_to_svg(paths, int(meta["width"]), int(meta["height"]))
    # The saved mask is the saved SVG rasterised, so the two can never disagree.
    mask = (
        np.asarray(vectorizer.svg_to_mask(svg), dtype=bool)
        if paths
        else np.zeros(_shape(meta), dtype=bool)
    )
    return svg, mask


SIGNIN_CHANGED = ("Another user was signed in when this work was begun: it is not saved "
                  "under your name. The page is loaded afresh for you at the next check of the "
                  "sign-in (within 20 s).")


@callback(
    Output(ids.SAVE_ALERT, "children"),
    Output(ids.SAVED_WORK, "data"),
    Input(ids.SAVE_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.AI_RESULT, "data"),
    State(ids.CLASSIFICATION, "data"),
    State(ids.FINAL_LABEL, "value"),
    State(ids.NOTE, "value"),
    State(ids.ANNOTATOR, "value"),
    State(ids.IMAGE_DATA, "data"),
    *[State(ids.descriptor(name), "value") for name in DESCRIPTOR_OPTIONS],
    # Last, after the descriptors: what the pixel spacing field shows (see _spacing_unset),
    # then the last save's snapshot (which versions this page saved: _saved_meanwhile).
    State(ids.SPACING_INPUT, "value"),
    State(ids.SAVED_WORK, "data"),
    # OK in the question a save asked (see _before_writing): save all the same.
    Input(ids.SAVE_QUESTION, "submit_n_clicks"),
    # Whether the model's outline of the image just opened is still on its way, and
    # when and what the open image opened as (_outline_on_its_way, _unseen_save).
    State(ids.AUTO_SEGMENT, "value"),
    State(ids.IMAGE_OPENED, "data"),
    State(ids.SEGMENT_DONE, "data"),
    # The image a Save & next was pressed for: a case is not saved unseen (_unseen_save).
    State(ids.SAVE_NEXT_PENDING, "data"),
    # The signed-in name the page's work was begun under (start_afresh_for_a_new_sign_in).
    State(ids.SIGNED_IN_AS, "data"),
    # The outline on screen, which graph edits the client never answered left out of the
    # history (_with_screen).
    State(ids.SHAPES_SHOWN, "data"),
    # How long the tab had shown the image when Save was pressed (_unseen_save). An input,
    # though written only with Save's n_clicks (one call per press): Dash runs a callback
    # only after every callback that may still change one of its inputs, and a State could
    # be read before this press's was written.
    Input(ids.SAVE_PRESS, "data"),
    prevent_initial_call=True,
    running=[(Output(ids.SAVE_BUTTON, "disabled"), True, False)],
)
@_waits_for_the_index_once
def save(_clicks, meta, history, ai, classification, final_label, note, annotator, image_data,
         *descriptors):
    """Save the edited outline, masks and record as the image's next version.

    Unless it adds nothing: work identical to the latest version the reader may
    see (outline mask, label, descriptors, note, annotator and spacing) is not
    saved again, and the message names that version. A save that leaves out the
    final label of that version, or saves the AI's untouched outline over its
    edited one, is asked about first (:func:`_before_writing`); OK saves it. A
    label, outline and assessment that disagree (:mod:`_consistency`) are said in
    the message, and saved all the same.
    """
    if not meta or not _clicks:  # not a click: the page was drawn again
        raise PreventUpdate
    no = dash.no_update
    confirmed = ids.SAVE_QUESTION in _triggered()
    # The spacing field's value follows the descriptors (absent in a call without it).
    count = len(DESCRIPTOR_OPTIONS)
    descriptors, field = descriptors[:count], descriptors[count:]
    own = _own_versions(field[1] if len(field) > 1 else None, meta)
    # field: spacing, saved work, the question's OK, then the States (and the press) after it.
    auto, opened, done, pending, begun, shown, press = (list(field[3:10]) + [None] * 7)[:7]
    # Before anything reads the history: what is saved is what the reader sees.
    history = _with_screen(history, meta, shown)
    unseen = None if confirmed else _unseen_save(
        meta, history, ai, final_label, note, descriptors, _clicks, opened, pending, press)
    # Also after the question's OK: its call carries the press that asked it.
    unseen = unseen or _pressed_over_another(meta, _clicks, press)
    if unseen is not None:
        return _refusal([(unseen, "warning")]), no
    # Every refusal at once, not one per click: (message, colour).
    refusals = []
    # A typed name that could not be checked against the names saved before.
    unchecked = False
    unset = _spacing_unset(field[0], meta) if field else None
    if unset is not None:
        refusals.append((unset, "warning"))
    if _outline_on_its_way(meta, history, ai, auto, opened, done):
        refusals.append((OUTLINE_ON_ITS_WAY, "warning"))
    header = get_config().annotator_header
    if header:
        # Behind a sign-in proxy the record names the signed-in user; the field is
        # read only, but a request can carry any value in it, so it is not asked.
        try:
            annotator = _signin.signed_in_name(flask.request.headers, header)
        except _signin.SignInError as exc:
            logger.warning("save refused: %s", exc)
            refusals.append((str(exc), "danger"))
        else:
            if isinstance(begun, str) and begun and begun != annotator:
                # Another user signed in since the work on screen was begun, and the
                # page has not been loaded afresh yet: it is not this user's to save.
                # The other user is not named (under blinded reading, not even that).
                refusals.append((SIGNIN_CHANGED, "danger"))
    elif not isinstance(annotator, str) or not annotator.strip():
        refusals.append(("Enter your name in Annotator before saving.", "warning"))
    else:
        # The index's annotator column holds 200 characters (a database that enforces
        # it would fail the index write after the files were in place), and a control
        # character would break the Saved page's rows, the CSV and the log.
        try:
            annotator = _signin.checked_name(annotator, "The annotator's name")
        except _signin.SignInError as exc:
            refusals.append((str(exc), "warning"))
        else:
            # A typed name is all that says who saved: two spellings would be two
            # readers. Without the index the check is skipped, as saving works
            # without it too.
            known = _known_annotators()
            unchecked = known is None
            spelled = _signin.same_reader_spelled_otherwise(annotator, known or ())
            if spelled is not None:
                refusals.append((
                    f"“{annotator}” differs from “{spelled}”, who has saved before, only "
                    f"in case or spacing. Type “{spelled}” to save as that reader (it is "
                    "offered as you type), or a name that tells another reader apart.",
                    "warning"))
    if refusals:
        # Marked with the image, so that the refusal goes once the outline is in
        # (outline_arrived).
        waiting = meta["sha256"] if (OUTLINE_ON_ITS_WAY, "warning") in refusals else None
        return _refusal(refusals, waiting=waiting), no
    if classification and classification.get("image") != meta["sha256"]:
        classification = None
    descriptor_values = dict(zip(DESCRIPTOR_OPTIONS, descriptors, strict=True))
    try:
        paths, svg, mask = _current_geometry(meta, history)
        ai = _ai_for(ai, meta)
        ai_mask = _decode_mask(ai["mask"]) if ai else None
        # The raster is kept beside the outline, as the model's own answer; the record
        # compares the outline offered (see _offered_mask), and keeps its paths.
        offered_paths = (_offered(ai, ai_mask, _steps(history, meta))
                         if ai and ai_mask is not None else None)
        offered = (None if offered_paths is None
                   else _outline_files(offered_paths, meta)[1])
        # Inside the try: a spacing the measurements refuse is a "Not saved." message.
        summary = _measurements.summarize(
            mask, meta.get("pixel_spacing_mm"), outlines=paths
        )
        record = build_record(
            image=meta,
            annotator=annotator,
            final_mask=mask,
            ai_mask=offered,
            final_label=final_label,
            descriptors=descriptor_values,
            note=note or "",
            measurements=summary,
            model=ai.get("model") if ai else None,
            box_models=_box_models(history, meta),
            classification=classification,
            vertices=_shapes.vertex_count(paths),
            based_on=_revised(meta, history, own),
            offered_paths=offered_paths,
        )
        record["ai"]["classified_outline_is_final"] = (
            None
            if not classification
            else _classified(classification, paths)
        )
        held = _before_writing(meta, record, mask, confirmed,
                               None if confirmed else _left_out(meta, history, record, own))
        if held is not None:
            return held, no
        # A worklist image stays in its folder; an upload exists nowhere else.
        keep = get_config().keep_uploads and not meta.get("worklist_path") and image_data
        saved = get_store().save(
            meta["sha256"],
            svg=svg,
            mask_png=vectorizer.mask_to_png(mask),
            ai_mask_png=vectorizer.mask_to_png(ai_mask) if ai_mask is not None else None,
            record=record,
            source=parse_data_url(image_data["contents"]) if keep else None,
            # The suffix of what the file is, as read, not of the name the browser sent:
            # a PNG named "x.exe" was kept as source.exe.
            source_name="source" + _KEPT_SUFFIX.get(meta.get("kind"), ".bin"),
        )
    except (ValueError, TypeError) as exc:
        # TypeError: a value of the wrong type in the request (a note that is a number)
        # is the request's fault, and nothing has been written.
        return _views.alert(str(exc), "danger", title="Not saved.", id="save-result"), no
    except DataFolderChanged as exc:
        logger.error("save refused: the data folder %s %s", get_config().data_dir, exc.why)
        said = str(exc)
        return _views.alert(said[:1].upper() + said[1:], "danger", title="Not saved.",
                            id="save-result"), no
    except OSError as exc:
        logger.exception("saving failed")
        return _views.alert(
            f"The annotation could not be written: {_os_reason(exc)}. Nothing was saved; "
            "the work is still on screen.",
            "danger",
            title="Not saved.",
            id="save-result",
        ), no
    dice = record["agreement"]["dice_ai_vs_final"]
    # What the radiologist reads: the version, the image and the label; where the files
    # are is for the tooltip and data-folder (a 64-hex folder name says nothing here).
    details = (f"Version {saved.version} of {record['image']['name']} "
               f"({record['final']['label'] or 'no final label'}).")
    if dice is not None:
        details += f" Dice AI vs final: {_views.shown_dice(dice):.3f}."
    details += _own_count_note(meta, saved.version)
    if saved.indexed is False:
        details += (
            " The files are saved, but the Saved page's index could not be updated;"
            " it lists this version once the index answers again (after a restart at the"
            " latest)."
        )
    if unchecked:
        # Said, not only skipped: another spelling of a reader's name splits that
        # reader in two for the Saved page and reader agreement, for good.
        details += (
            f" Your name, “{record['annotator']}”, could not be checked against the names"
            " saved before (the index cannot be read): make sure it is spelled as in"
            " your earlier saves."
        )
    replaced = _worklist_file_replaced(meta)
    if replaced:
        details += replaced
    missed = _saved_meanwhile(meta, history, saved.version, own)
    if missed:
        seen, newer = missed
        named = ", ".join(f"v{v}" for v in newer)
        details += (
            # Not "in another tab or by another reader": an older version opened from
            # the Saved page has newer ones of the reader's own.
            f" Not part of it: {named}, saved after v{seen}, the latest version this "
            "work started from; every version is kept, see the Saved page."
            if seen is not None else
            f" Not part of it: {named}, saved after this page opened the image (this "
            "work loaded no saved version); every version is kept, see the Saved page."
        )
    based_on = record.get("based_on")
    if isinstance(based_on, dict) and based_on.get("annotator") != record.get("annotator"):
        # A second reader at a shared workstation may not know: the page's own earlier
        # save, or a version loaded, makes this one a revision of another's work.
        details += (
            f" Recorded as a revision of version {based_on.get('version')} by "
            f"{based_on.get('annotator')}: reader agreement does not count it as an "
            "independent read."
        )
    work = _unsaved.snapshot(meta["sha256"], paths, final_label, note, descriptor_values,
                             _reader_spacing(meta))
    work["versions"] = [*own, saved.version][-MAX_OWN_VERSIONS:]
    work["version"] = saved.version
    conflict = _consistency.reading_conflict(
        record["final"]["label"], not record["final"]["empty"],
        descriptor_values.get("assessment"))
    # Of the record: the versions it holds.
    models = _consistency.model_version_conflict(
        record["model"]["segmentation"], record["model"]["classification"],
        classification.get("version") if classification else None)
    # Saved, with something to read: Save & next stays on the image, or the message
    # would go with it (cleared as the next image opens) unread.
    attention = bool(missed or conflict or models or replaced or saved.indexed is False)
    return html.Div(
        [
            _views.alert(details,
                         "warning" if missed or replaced or saved.indexed is False
                         else "success",
                         title="Saved."),
            # Repeated from the hint beside the label: saved, but worth a second look.
            *([_views.alert(conflict, "warning", title="Check:", id="save-check")]
              if conflict else []),
            *([_views.alert(models, "warning", title="Check:", id="save-models-check")]
              if models else []),
        ],
        id="save-result",
        title=f"Saved in {saved.folder}",
        **{"data-version": str(saved.version), "data-folder": str(saved.folder),
           **({"data-attention": "1"} if attention else {})},
    ), work


def _worklist_file_replaced(meta: dict) -> str:
    """What a save says when the worklist file the image was opened from now holds
    other bytes, or is gone; ``""`` when it still holds the image, or for an upload.

    The save itself is right: a version follows the image's content, and the reader
    read the pixels on screen. But a PACS that exports again under the same name
    leaves the file's new image unread, listed as not annotated, and left out of the
    export; a reload said so, the save did not. The hash cache answers from a stat
    for a file that did not change, so this costs a save nothing in the usual case.
    """
    path = meta.get("worklist_path")
    config = get_config()
    if not isinstance(path, str) or not path or config.worklist_dir is None:
        return ""
    try:
        sha = _worklist.entry_sha256(config.worklist_dir, path, data_dir=config.data_dir)
    except FileNotFoundError:
        return (f" {path} is no longer in the worklist folder: this version is kept with "
                "the image on screen, which no worklist file now holds.")
    except (OSError, ValueError) as exc:
        logger.warning("worklist file %s could not be checked after a save: %s", path, exc)
        return ""
    if sha == meta["sha256"]:
        return ""
    return (f" {path} has changed since it was opened: it now holds another image, which "
            "is listed as not annotated. This version is kept with the image on screen, "
            "which no worklist file now holds; open the file again to read its new image.")


#: Save's refusal while the model's outline of the image just opened is on its way.
OUTLINE_ON_ITS_WAY = ("The model's outline of this image is still on its way: wait for the "
                      "automatic outline, then save. (To save without it, turn off Segment "
                      "on open.)")


def _outline_on_its_way(meta: dict, history, ai, auto=None, opened=None, done=None) -> bool:
    """Whether the model's outline of the image just opened has yet to reach its
    history (``auto``: *Segment on open*; ``opened``, ``done``: the IMAGE_OPENED and
    SEGMENT_DONE echoes).

    A save then recorded the blank outline as the reader's, edited (Dice 0) next to
    the model's, and the outline that came after it looked like the work saved.
    """
    if auto is not True or not _still_as_opened(history, meta):
        return False
    if _ai_for(ai, meta) is not None:
        return True  # answered: the history takes it next (or the version loaded over it)
    mine = isinstance(opened, dict) and opened.get("image") == meta["sha256"]
    at = opened.get("at") if mine else None
    # Not once the model server has answered since the open, were it only with an error.
    return isinstance(at, int) and not (isinstance(done, int) and done > at)


#: Seconds after Save & next opens an image in which a save of it with nothing changed is
#: refused: Save & next pressed twice saved the next case, shown for a moment, unseen.
SEEN_SECONDS = 1.5


def _unseen_save(meta: dict, history, ai, final_label, note, descriptors, clicks,
                 opened=None, pending=None, press=None) -> str | None:
    """Why this save would record a case its reader has not seen; None when it would not.

    A second press of Save & next (Ctrl+Shift+S) lands on the next case less than a
    second after it opened: that case was saved with the AI's untouched outline and no
    label, marked saved, never offered again, and counted as a read. Refused: a save
    from a Save & next pressed for another image (``pending``, the image it was pressed
    over), and a save of an image that Save & next opened (``opened``, ``IMAGE_OPENED``)
    less than :data:`SEEN_SECONDS` ago with nothing changed on it, counted from when the
    tab showed it when this save's press says so (``press``, ``SAVE_PRESS``:
    :func:`_shown_seconds`; never longer than the server's clock says), else by the
    server's clock from when it opened it.
    Nothing changed: the outline as it opened or as the model gave it, no label, note,
    descriptor or spacing. An image picked or uploaded is the reader's own doing: its
    model outline may be saved as it is as soon as it is drawn.
    """
    sha = meta["sha256"]
    name = _said_name(meta)
    if isinstance(pending, dict) and pending.get("clicks") == clicks \
            and pending.get("image") != sha:
        return (f"Save & next was pressed for another image, before {name} opened. Look at "
                f"{name}, then save it.")
    if not (isinstance(opened, dict) and opened.get("image") == sha
            and opened.get("after_save_next") is True):
        return None
    at = opened.get("at")
    if isinstance(at, bool) or not isinstance(at, int):
        return None
    age = (time.time_ns() - at) / 1e9
    shown = _shown_seconds(press, clicks, sha)
    if shown is not None:
        # The tab drew it after the server opened it: a longer time is no browser's.
        age = min(age, shown)
    present = _present(history, meta)
    work = _work_on_screen(history, meta, final_label, note, descriptors)
    # The model's outline as it gave it, or none as the image opened.
    given = present["paths"] if present.get("action") == "ai" else []
    untouched = present.get("action") in ("open", "ai") and _unsaved.same_work(
        work, _unsaved.untouched(sha, given))
    if not (0 <= age < SEEN_SECONDS and untouched):
        return None
    return (f"{name} opened less than {SEEN_SECONDS:g} seconds ago, and nothing on it has "
            "changed: a case is not saved before it has been seen (a second press of Save "
            "& next, say). Look at it, then save again.")


def _said_name(meta: dict) -> str:
    """The open image's name as a message says it (at most 200 characters)."""
    return _signin.shown_text(str(meta.get("name") or "this image"))[:200]


def _pressed_over_another(meta: dict, clicks, press) -> str | None:
    """Why this save is not the one its press was for; None when it is, or unknown.

    Save pressed over image A (``press["over"]``, ``SAVE_PRESS``: the image the graph
    showed at the press, by its uirevision) waits, on a busy page, among the requests in
    flight; picked from the worklist meanwhile, image B is the one open when it goes out,
    and B's untouched outline was saved as a read its reader never made. ``clicks``:
    Save's n_clicks, so that only this save's press counts; a press made before any image
    was drawn (``over`` null) says nothing.
    """
    if not (isinstance(press, dict) and press.get("clicks") == clicks):
        return None
    over = press.get("over")
    if not isinstance(over, str) or not over or over == meta["sha256"]:
        return None
    name = _said_name(meta)
    return (f"Save was pressed over another image, before {name} opened, and nothing was "
            f"saved. Look at {name}, then save it.")


def _shown_seconds(press, clicks, sha: str) -> float | None:
    """Seconds the tab had shown image ``sha`` when Save was pressed for this save
    (``press["shown_ms"]``, ``SAVE_PRESS``, by the tab's own clock); None when unknown,
    or when ``press`` is another click's (``clicks``: Save's n_clicks) or image's.

    The server's clock (``IMAGE_OPENED["at"]``) starts as it opens the image; on a busy
    machine the answer took over 1.5 s to be drawn, and a save pressed at once then
    (Save & next pressed again, or Ctrl+S) saved the case it had not shown.
    """
    if not (isinstance(press, dict) and press.get("clicks") == clicks
            and press.get("image") == sha):
        return None
    shown = press.get("shown_ms")
    if isinstance(shown, bool) or not isinstance(shown, (int, float)) \
            or not math.isfinite(shown) or shown < 0:
        return None
    return shown / 1000


def _compared_version(meta: dict, record: dict,
                      shape: tuple[int, int]) -> tuple[int, dict, np.ndarray] | None:
    """``(version, record, mask)`` of the saved version a save of ``record`` follows on
    from: the newest of the image's versions this reader may see that is the reader's
    own (``record``'s annotator) or the one the work revises (``based_on``).

    Another reader's version that the work never loaded is no earlier state of it: a
    second reader's independent read was asked whether to "leave out" the first's.
    None when there is no such version, or the newest cannot be read (its damage is
    said elsewhere, and must not stop a save).
    """
    store, sha = get_store(), meta["sha256"]
    based_on = record.get("based_on") if isinstance(record.get("based_on"), dict) else {}
    try:
        versions = store.versions(sha, get_reader())
        for version in reversed(versions):
            old = store.load_record(sha, version)
            if not isinstance(old, dict):
                return None
            if version == based_on.get("version") or old.get("annotator") == record.get(
                    "annotator"):
                mask = store.load_mask(sha, version)
                return (version, old, mask) if mask.shape == shape else None
    except (OSError, ValueError) as exc:
        logger.warning("saved versions of %s not compared: %s", sha[:12], exc)
    return None


def _outline_readable(meta: dict, version: int) -> bool:
    """Whether a saved version's outline (its SVG) can be read back, as a load reads it.

    A version whose SVG was damaged cannot be loaded to revise; work identical to it is
    then saved again as a new version, the one way to replace it without an edit."""
    try:
        _shapes.svg_to_paths(get_store().load_svg(meta["sha256"], version),
                             int(meta["width"]), int(meta["height"]))
    except (OSError, ValueError):
        return False
    return True


def _own_count_note(meta: dict, version: int) -> str:
    """Under blinded reading, which of the reader's own saves of the image ``version``
    is, when the numbers differ: a reader's first save called "Version 2" had readers
    asking where their version 1 went. Empty otherwise."""
    try:
        reader = get_reader()
        own = len(get_store().versions(meta["sha256"], reader)) if reader else 0
    except (OSError, ValueError, _signin.SignInError):
        return ""
    if not own or own == version:
        return ""
    nth = {1: "first", 2: "second", 3: "third"}.get(own) or _ordinal(own)
    return (f" It is your {nth} save of this image: version numbers count every reader's "
            "saves.")


def _ordinal(n: int) -> str:
    """``n`` as an ordinal in figures: 4th, 11th, 21st, 22nd, 103rd.

    >>> [_ordinal(n) for n in (4, 11, 12, 13, 21, 22, 23, 101, 111)]
    ['4th', '11th', '12th', '13th', '21st', '22nd', '23rd', '101st', '111th']
    """
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


#: The suffix an upload's kept copy takes, by the kind of file it was read as.
_KEPT_SUFFIX = {"png": ".png", "jpeg": ".jpg", "dicom": ".dcm"}


def _before_writing(meta: dict, record: dict, mask: np.ndarray, confirmed: bool,
                    left_out: str | None = None):
    """The answer a save gives instead of writing ``record``, or None to write it.

    The work is compared with the version it follows on from (:func:`_compared_version`:
    the reader's own latest, or the one it revises). Nothing is written when it is
    that version over again (a second click, or a case reopened and saved unchanged):
    the answer says which version holds it, with that number in ``data-version`` (the
    work is saved). Unless ``confirmed``, a save that leaves out what that version
    holds (:func:`revision_losses`), or versions saved since the work began
    (``left_out``, :func:`_left_out`), asks first: ``data-question`` holds the question
    that :data:`ids.SAVE_QUESTION` puts to the radiologist. Cancel leaves the answer
    on screen: not saved yet, and the work kept.
    """
    compared = _compared_version(meta, record, mask.shape)
    losses: list[str] = []
    if compared is not None:
        version, old, old_mask = compared
        if (same_reading(record, old) and np.array_equal(old_mask, mask)
                and _outline_readable(meta, version)):
            return html.Div(
                _views.alert(f"Nothing changed since version {version}; no new version "
                             "saved.", "info"),
                id="save-result",
                **{"data-version": str(version), "data-unchanged": "true"},
            )
        losses = [] if confirmed else revision_losses(record, old, version)
    if not losses and not left_out:
        return None
    said = " ".join([*losses, *([left_out] if left_out else [])])
    asked = []
    if losses:
        which = ("your latest" if old.get("annotator") == record.get("annotator")
                 else "the one it revises")
        asked.append(f"This save would leave out what version {version}, {which}, holds. "
                     + " ".join(losses))
        then = f"; or Load it to revise version {version} first."
    else:
        then = "; until then the work stays on screen, unsaved."
    if left_out:
        asked.append(left_out)
    return html.Div(
        _views.alert(
            f"{said} To save it anyway, click Save again and answer OK{then}",
            "warning",
            title="Not saved yet.",
        ),
        id="save-result",
        **{"data-question": "\n\n".join(asked) + "\n\nSave it as a new version anyway?"
           + (" Cancel keeps the work on screen, unsaved." if left_out else "")},
    )


def _left_out(meta: dict, history, record: dict, own: list[int]) -> str | None:
    """What a save says, and asks, before it leaves out versions saved since its work
    began (:func:`_saved_meanwhile`); None when there are none.

    Two tabs on one image: the second's save made a new version without the first's
    work, and said so only once it had. Work that loaded no version is asked only
    about saves under its own name: another reader's is an independent read, which
    this one need not hold.
    """
    missed = _saved_meanwhile(meta, history, None, own)
    if missed is None:
        return None
    seen, newer = missed
    if seen is None and not _any_saved_by(meta, newer, record.get("annotator")):
        return None
    named = ", ".join(f"v{v}" for v in newer)
    were, their = ("was", "its") if len(newer) == 1 else ("were", "their")
    since = (f"after v{seen}, the latest version this work started from" if seen is not None
             else "after this page opened the image (in another tab or window, say)")
    return f"{named} {were} saved {since}: this save would not hold {their} work."


def _any_saved_by(meta: dict, versions: list[int], annotator) -> bool:
    """Whether any of the image's ``versions`` was saved by ``annotator`` (one whose
    record cannot be read may have been)."""
    store = get_store()
    for version in versions:
        try:
            record = store.load_record(meta["sha256"], version)
        except (OSError, ValueError):
            return True
        if not isinstance(record, dict) or record.get("annotator") == annotator:
            return True
    return False


# A save that asked first (data-question in its answer): the question, at once, in the
# browser's own dialog; OK is save's SAVE_QUESTION input.
clientside_callback(
    """
    function(answer) {
        var props = answer && answer.props;
        var question = props && props['data-question'];
        if (!question) { return [window.dash_clientside.no_update, false]; }
        return [question, true];
    }
    """,
    Output(ids.SAVE_QUESTION, "message"),
    Output(ids.SAVE_QUESTION, "displayed"),
    Input(ids.SAVE_ALERT, "children"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.UNSAVED_MARK, "children"),
    Output(ids.UNSAVED_MARK, "className"),
    Output(ids.UNSAVED_FLAG, "className"),
    State(ids.HISTORY, "data"),
    Input(ids.FINAL_LABEL, "value"),
    Input(ids.NOTE, "value"),
    *[Input(ids.descriptor(name), "value") for name in DESCRIPTOR_OPTIONS],
    Input(ids.SAVED_WORK, "data"),
    State(ids.IMAGE_META, "data"),
    State(ids.AI_RESULT, "data"),
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.IMAGE_OPENED, "data"),
    Input(ids.SEGMENT_DONE, "data"),
    Input(ids.PAGE_LOAD, "data"),
)
def mark_unsaved(history, final_label, note, *rest):
    """Show whether the open image has work in no save.

    ``assets/sonotrace.js`` reads the shell's flag (``ids.UNSAVED_FLAG``, the
    ``dirty`` class, as the mark) to ask before a reload, a closed tab or a new
    file throws that work away.
    """
    *descriptors, saved, meta, ai = rest[: len(DESCRIPTOR_OPTIONS) + 3]
    if not meta:
        return "", "small", ""
    current = _work_on_screen(history, meta, final_label, note, descriptors)
    ai = _ai_for(ai, meta)
    # Until the AI outline (or a version loaded to revise) reaches the history, the
    # image is still as opened. An Undo back to the blank outline is not: it is work.
    opened = _still_as_opened(history, meta)
    if (_unsaved.is_unsaved(current, saved, ai["paths"] if ai else None, as_opened=opened)
            and not _saved_on_disk(current, meta)):
        return "Unsaved changes", "small text-warning-emphasis dirty", "dirty"
    return "", "small", ""


def _still_as_opened(history, meta: dict) -> bool:
    """Whether the open image's outline is as it opened: no history of it yet, or one
    with no step taken (:func:`_as_opened`)."""
    mine = isinstance(history, dict) and history.get("image") == meta.get("sha256")
    return not mine or _as_opened(history, meta)


def _work_on_screen(history, meta: dict, final_label, note, descriptors) -> dict:
    """The :func:`_unsaved.snapshot` of the open image's work as the page shows it
    (``descriptors``: the values in :data:`DESCRIPTOR_OPTIONS` order)."""
    return _unsaved.snapshot(
        meta["sha256"],
        _present(history, meta)["paths"],
        final_label,
        note,
        dict(zip(DESCRIPTOR_OPTIONS, descriptors, strict=True)),
        _reader_spacing(meta),
    )


@callback(
    Output(ids.LOAD_SAVED_BUTTON, "style"),
    Output(ids.PREVIOUS_SAVES_ON_SCREEN, "children"),
    Input(ids.PREVIOUS_SAVES_SHOWN, "data"),
    # Redrawn after every change of the work (and after a save or a load, since
    # mark_unsaved follows those too).
    Input(ids.UNSAVED_MARK, "className"),
    State(ids.SAVED_WORK, "data"),
    State(ids.HISTORY, "data"),
    State(ids.FINAL_LABEL, "value"),
    State(ids.NOTE, "value"),
    *[State(ids.descriptor(name), "value") for name in DESCRIPTOR_OPTIONS],
    State(ids.IMAGE_META, "data"),
    prevent_initial_call=True,
)
def offer_load(shown, _mark, saved, history, final_label, note, *rest):
    """Offer *Load it to revise* only when it would change what is on screen.

    Just after that version was saved or loaded, and until the work changes, the
    click would only add an undo step that changes nothing: the line says the
    version is on screen instead.
    """
    *descriptors, meta = rest
    offered = ({}, None)
    if not (meta and isinstance(shown, dict) and isinstance(saved, dict)):
        return offered
    sha = meta["sha256"]
    if not (shown.get("image") == saved.get("image") == sha
            and shown.get("version") == saved.get("version")):
        return offered
    if not _unsaved.same_work(_work_on_screen(history, meta, final_label, note, descriptors),
                              saved):
        return offered
    return {"display": "none"}, "It is the version on screen."


def _refusal(refusals: list[tuple[str, str]], waiting: str | None = None):
    """The "Not saved." message of one or more ``(reason, colour)``: a list when more
    than one, in danger's colour when any is. ``waiting``: the image whose model
    outline one of them waits for (:data:`OUTLINE_ON_ITS_WAY`, see :func:`outline_arrived`)."""
    color = "danger" if any(c == "danger" for _, c in refusals) else "warning"
    if len(refusals) == 1:
        body = refusals[0][0]
    else:
        body = html.Ul([html.Li(reason) for reason, _ in refusals], className="mb-0")
    if not waiting:
        return _views.alert(body, color, title="Not saved.", id="save-result")
    # An alert takes no data-* attribute: the mark goes on a frame, as "Saved."'s does.
    return html.Div(_views.alert(body, color, title="Not saved."), id="save-result",
                    **{"data-outline-waiting": waiting})


#: What replaces Save's refusal for an outline on its way once it is in (outline_arrived).
OUTLINE_ARRIVED = "The model's outline has arrived: check it, then save."


def _refusal_reasons(props: dict) -> list[str]:
    """The reasons of a :func:`_refusal` as the browser sends it back (its props)."""
    children = props.get("children")
    body = children[-1] if isinstance(children, list) and children else None
    if isinstance(body, str):
        return [body]
    items = (body or {}).get("props", {}).get("children") if isinstance(body, dict) else None
    return [item["props"].get("children") for item in items or []
            if isinstance(item, dict) and isinstance(item.get("props"), dict)
            and isinstance(item["props"].get("children"), str)]


@callback(
    Output(ids.SAVE_ALERT, "children", allow_duplicate=True),
    Input(ids.OUTLINE_CHANGED, "data"),
    Input(ids.SEGMENT_DONE, "data"),
    State(ids.SAVE_ALERT, "children"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.AI_RESULT, "data"),
    State(ids.AUTO_SEGMENT, "value"),
    State(ids.IMAGE_OPENED, "data"),
    prevent_initial_call=True,
)
def outline_arrived(_changed, done, alert, meta, history, ai, auto, opened):
    """Save's refusal "the model's outline is still on its way" goes once it is not.

    Left on screen after the outline arrived, it read as "still waiting", and the
    radiologist kept waiting (audit 806 F3). The other reasons of the refusal, if any,
    stay; without any, a line says the outline is in.
    """
    frame = alert.get("props") if isinstance(alert, dict) else None
    if (not meta or not isinstance(frame, dict)
            or frame.get("data-outline-waiting") != meta.get("sha256")
            or _outline_on_its_way(meta, history, ai, auto, opened, done)):
        raise PreventUpdate
    inner = frame.get("children")
    props = inner.get("props") if isinstance(inner, dict) else None
    props = props if isinstance(props, dict) else {}
    color = props.get("color") if props.get("color") in ("danger", "warning") else "warning"
    others = [(reason, color) for reason in _refusal_reasons(props)
              if reason != OUTLINE_ON_ITS_WAY]
    if others:
        return _refusal(others)
    return _views.alert(OUTLINE_ARRIVED, "info", id="outline-arrived")


def _saved_on_disk(current: dict, meta: dict) -> bool:
    """Whether the work equals the image's latest saved version on disk.

    Asked only when the page is drawn again: a save whose answer landed on
    another page is on disk, but the browser dropped the note of it, and the
    work must not be called unsaved (and saved twice) for that.
    """
    if ids.PAGE_LOAD not in _triggered():
        return False
    try:
        _version, label, note, descriptors, paths, record = _read_latest_save(meta)
    except (OSError, ValueError, TypeError):
        return False
    latest = _unsaved.snapshot(meta["sha256"], paths, label, note, descriptors,
                               _reader_spacing(_typed_spacing(meta, record)))
    return not _unsaved.is_unsaved(current, latest)


def _download_name(meta, suffix):
    stem = meta["name"].rsplit(".", 1)[0] or "image"
    return f"{stem}_outline{suffix}"


@callback(
    Output(ids.DOWNLOAD_SVG, "data"),
    Input(ids.DOWNLOAD_SVG_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    # Each download is of the outline on screen, as a save is (see _with_screen).
    State(ids.SHAPES_SHOWN, "data"),
    prevent_initial_call=True,
)
def download_svg(_clicks, meta, history, shown=None):
    if not meta or not _clicks:
        raise PreventUpdate
    _, svg, _ = _current_geometry(meta, _with_screen(history, meta, shown))
    return dcc.send_string(svg, _download_name(meta, ".svg"), type="image/svg+xml")


@callback(
    Output(ids.DOWNLOAD_PNG, "data"),
    Input(ids.DOWNLOAD_PNG_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.SHAPES_SHOWN, "data"),
    prevent_initial_call=True,
)
def download_png(_clicks, meta, history, shown=None):
    if not meta or not _clicks:
        raise PreventUpdate
    _, _, mask = _current_geometry(meta, _with_screen(history, meta, shown))
    return dcc.send_bytes(
        vectorizer.mask_to_png(mask), _download_name(meta, "_mask.png"), type="image/png"
    )


@callback(
    Output(ids.DOWNLOAD_SEG, "data"),
    Output(ids.DOWNLOAD_NOTE, "children"),
    Input(ids.DOWNLOAD_SEG_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.IMAGE_DATA, "data"),
    State(ids.AI_RESULT, "data"),
    State(ids.FINAL_LABEL, "value"),
    State(ids.ANNOTATOR, "value"),
    State(ids.SHAPES_SHOWN, "data"),
    prevent_initial_call=True,
)
def download_seg(_clicks, meta, history, image_data, ai, label, annotator, shown=None):
    """The outline on screen as a DICOM SEG of the open DICOM (see _dicom_seg), unsaved
    like the other downloads; or, when the file cannot have one, why (until the next
    image opens: the note is cleared in the browser then)."""
    if not meta or not _clicks or meta.get("kind") != "dicom":
        raise PreventUpdate
    data = _image_bytes(image_data, meta)
    _, _, mask = _current_geometry(meta, _with_screen(history, meta, shown))
    started = _started_from_model(_ai_for(ai, meta), mask > 0)
    try:
        reader = _reader_named(annotator)
    except _signin.SignInError:
        reader = None  # the SEG is no save: an unnamed reader does not stop it
    emptied: list[str] = []
    try:
        seg = _dicom_seg.dicom_seg(data, mask > 0, label=label if label in LABELS else None,
                                   annotator=reader, model=started, notes=emptied)
    except _dicom_seg.SegUnavailable as exc:
        return dash.no_update, f"No DICOM SEG: {exc}."
    return (dcc.send_bytes(seg, _download_name(meta, "_seg.dcm"), type="application/dicom"),
            _emptied_note(emptied))


# The downloads' note goes as the next image opens. In the browser, not in
# download_seg: a server callback sends its States with every call, and that one's
# include the image (IMAGE_DATA, the whole file as a data URL), which each open
# uploaded back for nothing (audit helper-901, F5).
clientside_callback(
    "function(opened) { return null; }",
    Output(ids.DOWNLOAD_NOTE, "children", allow_duplicate=True),
    Input(ids.IMAGE_OPENED, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.DOWNLOAD_SR, "data"),
    Output(ids.DOWNLOAD_NOTE, "children", allow_duplicate=True),
    Input(ids.DOWNLOAD_SR_BUTTON, "n_clicks"),
    State(ids.IMAGE_META, "data"),
    State(ids.HISTORY, "data"),
    State(ids.IMAGE_DATA, "data"),
    State(ids.AI_RESULT, "data"),
    State(ids.FINAL_LABEL, "value"),
    State(ids.ANNOTATOR, "value"),
    *[State(ids.descriptor(name), "value") for name in DESCRIPTOR_OPTIONS],
    State(ids.SHAPES_SHOWN, "data"),
    prevent_initial_call=True,
)
def download_sr(_clicks, meta, history, image_data, ai, label, annotator, *descriptors):
    """The outline's measurements as a DICOM SR of the open DICOM (see _dicom_sr), at the
    pixel spacing the page measures with, with the BI-RADS descriptors and assessment on
    screen; or, when there can be none, why (cleared by the next image, as the SEG's).
    A margin ticked both circumscribed and not is left out of it, and the note says so."""
    if not meta or not _clicks or meta.get("kind") != "dicom":
        raise PreventUpdate
    data = _image_bytes(image_data, meta)
    # The outline on screen follows the descriptors (absent in a call without it).
    count = len(DESCRIPTOR_OPTIONS)
    descriptors, shown = descriptors[:count], (descriptors[count:] or [None])[0]
    history = _with_screen(history, meta, shown)
    paths, _, mask = _current_geometry(meta, history)
    try:
        reader = _reader_named(annotator)
    except _signin.SignInError:
        reader = None  # the SR is no save: an unnamed reader does not stop it
    emptied: list[str] = []
    ai = _ai_for(ai, meta)
    try:
        # The lesions that are the AI's outline as offered, untouched, are the model's;
        # the others (drawn or edited by hand) and the BI-RADS reading the reader's.
        offered = _offered_mask(ai, _decode_mask(ai["mask"]) if ai else None, meta, history)
    except (ValueError, TypeError) as exc:
        logger.warning("the AI mask of the open image cannot be read: %s", exc)
        offered = None
    try:
        # The drawn outlines say which pieces are one lesion, as the panel counts them.
        sr = _dicom_sr.dicom_sr(data, mask > 0, _spacing(meta),
                                label=label if label in LABELS else None, annotator=reader,
                                model=_started_from_model(ai, mask > 0), model_outline=offered,
                                outlines=paths,
                                descriptors=_set_descriptors(descriptors), notes=emptied)
    except _dicom_sr.SrUnavailable as exc:
        return dash.no_update, f"No DICOM SR: {exc}."
    margin = _set_descriptors(descriptors).get("margin")
    left_out = (MARGIN_LEFT_OUT if margin_conflict(margin if isinstance(margin, list) else None)
                else None)
    said = " ".join(note for note in (left_out, _emptied_note(emptied)) if note)
    return (dcc.send_bytes(sr, _download_name(meta, "_sr.dcm"), type="application/dicom"),
            said or None)


def _emptied_note(emptied: list[str]) -> str | None:
    """The download's note of the patient and study values a DICOM SEG or SR left empty
    (see _dicom_seg.fit_type2_values), or None when it left none."""
    return "; ".join(emptied) + "." if emptied else None


#: The download's note when the SR leaves the margin out (see _dicom_sr._birads_evaluations).
MARGIN_LEFT_OUT = ("The DICOM SR leaves the margin out: circumscribed and the others are "
                   "opposites in BI-RADS. Untick one and download it again to report it.")


def _set_descriptors(values) -> dict:
    """The descriptor controls' ``values`` (in :data:`DESCRIPTOR_OPTIONS`' order) as
    ``{name: value}``: those of a call without them (older tests, a forged request) are
    none. An unset select is "" and an unticked checklist [], which
    :func:`clean_descriptors` reads as not given."""
    if len(values) != len(DESCRIPTOR_OPTIONS):
        return {}
    return dict(zip(DESCRIPTOR_OPTIONS, values, strict=True))


def _started_from_model(ai: dict | None, mask: np.ndarray) -> tuple[str, str] | None:
    """``(name, version)`` of the model when the outline ``mask`` started from its
    outline (it outlined the image, and the two overlap), else None: drawn by hand."""
    model = ai.get("model") if ai else None
    if not (isinstance(model, dict) and model.get("name") and ai.get("mask")):
        return None
    try:
        offered = _decode_mask(ai["mask"])
    except (ValueError, TypeError) as exc:
        logger.warning("the AI mask of the open image cannot be read: %s", exc)
        return None
    if offered.shape != mask.shape or not (offered & mask).any():
        return None
    return str(model["name"]), str(model.get("version"))


# Levels on screen: CSS variables on the graph's frame, which sonotrace.css feeds to a
# filter on the image layer only. Done in the browser, so the picture follows the
# slider without a round trip, and plotly's redraws (each edit) keep it: the rule is
# in the style sheet, not on the <image> element plotly replaces.
clientside_callback(
    """
    function(brightness, contrast) {
        function level(v) {
            // null (a slider not drawn yet) would be Number(null) = 0: shown as opened.
            if (v === null || v === undefined || v === "") { return 1; }
            v = Number(v);
            return isFinite(v) ? Math.min(Math.max(v, LOW), HIGH) / 100 : 1;
        }
        return {"--st-brightness": String(level(brightness)),
                "--st-contrast": String(level(contrast))};
    }
    """.replace("LOW", str(LEVEL_RANGE[0])).replace("HIGH", str(LEVEL_RANGE[1])),
    Output(ids.GRAPH_FRAME, "style"),
    Input(ids.IMAGE_BRIGHTNESS, "value"),
    Input(ids.IMAGE_CONTRAST, "value"),
)


@callback(
    Output(ids.IMAGE_BRIGHTNESS, "value"),
    Output(ids.IMAGE_CONTRAST, "value"),
    Input(ids.LEVELS_RESET, "n_clicks"),
    prevent_initial_call=True,
)
def reset_levels(_clicks):
    """Back to the image as opened."""
    return 100, 100
