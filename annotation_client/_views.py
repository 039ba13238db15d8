"""Small rendering helpers for the annotate page (components from plain data)."""

from __future__ import annotations

from pathlib import PurePosixPath

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import html

from . import _measurements
from ._claims import held
from ._record import LABELS
from ._signin import shown_text

LABEL_COLORS = {"normal": "#198754", "benign": "#0d6efd", "malignant": "#dc3545"}


def alert(message: str, color: str = "danger", *, title: str | None = None, **kwargs) -> dbc.Alert:
    """A dismissable alert (``color`` is a Bootstrap contextual colour)."""
    children = [html.Strong(title + " "), message] if title else message
    return dbc.Alert(children, color=color, dismissable=True, class_name="py-2 mb-2", **kwargs)


def shown_dice(value: float) -> float:
    """A Dice for reading at three decimals: never 1.000 unless the outlines are the same.

    An edited outline a few pixels off the AI's has a Dice of 0.9997, which rounds to
    1.000 beside "outline edited: yes"; it is shown 0.999.

    >>> shown_dice(0.99973), shown_dice(1.0), shown_dice(0.6666)
    (0.999, 1.0, 0.667)
    """
    value = float(value)
    return value if value >= 1 else min(round(value, 3), 0.999)


def human_bytes(size: int) -> str:
    """``1536`` -> ``'1.5 KB'``."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def image_info(meta: dict | None):
    """One line describing the open image: name, file size, pixel size, spacing.

    An image opened from the worklist also shows its folder there, since a worklist
    of one folder per study holds many files of the same name.
    """
    if not meta:
        return html.Span("No image open.", className="text-muted")
    folder = shown_text(str(PurePosixPath(meta.get("worklist_path") or "").parent))
    where = (
        [html.Span(f"{folder}/", className="text-muted text-break", id="image-folder")]
        if folder != "."
        else []
    )
    spacing = meta.get("pixel_spacing_mm")
    spacing_text = (
        f"pixel spacing {spacing[0]:.3f} × {spacing[1]:.3f} mm (row × col"
        + {
            "manual": ", set by hand)",
            "calibrated": ", calibrated on the image's depth scale)",
            "reused": ", reused, as set on an earlier image)",
        }.get(meta.get("pixel_spacing_source"), ")")
        if spacing
        else "pixel spacing unknown (measurements in pixels)"
    )
    return html.Div(
        [
            *where,
            html.Strong(meta["name"], className="me-2 text-break", id="image-name"),
            dbc.Badge(meta["kind"].upper(), color="secondary", class_name="me-2"),
            html.Span(
                f"{human_bytes(meta['size_bytes'])} · {meta['width']} × {meta['height']} px · "
                f"{spacing_text}",
                className="text-muted small",
            ),
            # Why the file was read differently from what it states, e.g. an ignored
            # pixel spacing: measurements in pixels must not look like an oversight.
            *[
                html.Div(note, className="small text-warning-emphasis image-note")
                for note in meta.get("notes") or []
            ],
        ]
    )


def measurements_table(summary: dict | None):
    """The measurements panel's table."""
    if summary is None:
        return html.P("No image open.", className="text-muted mb-0")
    rows = _measurements.table_rows(summary)
    return dbc.Table(
        html.Tbody(
            [
                html.Tr(
                    [
                        html.Th(label, className="fw-normal text-muted"),
                        html.Td(value, className="text-nowrap"),  # "3169 px²" on one line
                    ]
                )
                for label, value in rows
            ]
        ),
        size="sm",
        borderless=True,
        class_name="mb-0",
    )


def probability_figure(classification: dict | None) -> go.Figure:
    """Horizontal bar chart of the three class probabilities."""
    probabilities = (classification or {}).get("probabilities") or {}
    values = [float(probabilities.get(label, 0.0)) for label in LABELS]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=list(LABELS),
            orientation="h",
            marker_color=[LABEL_COLORS[label] for label in LABELS],
            text=[f"{v:.0%}" if classification else "" for v in values],
            # Inside a bar wide enough, else beside it; never turned on its side, where
            # a narrow bar's "6%" read as "%9".
            textposition="auto",
            textangle=0,
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        template="plotly_white",
        height=140,
        # Room on the right for a figure beside a bar that is nearly full width.
        margin={"l": 70, "r": 40, "t": 5, "b": 25},
        xaxis={"range": [0, 1], "tickformat": ".0%", "fixedrange": True},
        yaxis={"autorange": "reversed", "fixedrange": True},
        showlegend=False,
    )
    return figure


def ai_label(classification: dict | None, stale: bool = False):
    """The AI's label as a coloured badge, with a hint when the outline changed since."""
    if not classification:
        return html.Span("Not classified yet.", className="text-muted small")
    label = classification["label"]
    model = classification.get("model") or {}
    parts = [
        html.Span("AI label: ", className="small"),
        dbc.Badge(
            label,
            color="light",
            text_color="dark",
            class_name="me-2 border",
            style={"borderColor": LABEL_COLORS[label]},
        ),
    ]
    if model.get("name"):
        parts.append(
            html.Span(f"{model['name']} {model.get('version', '')}", className="small text-muted")
        )
    version = classification.get("version")
    if version is not None:
        # Loaded with a saved version (annotate._saved_classification): a save of the
        # revision records it unless Classify is asked again.
        parts.append(html.Div(f"As saved with version {version}.", className="small text-muted"))
    if stale:
        parts.append(
            html.Div(
                "The outline changed since; classify again to update."
                if classification.get("paths") is not None or version is None else
                "Made on another outline than the version's; classify again to update.",
                className="small text-warning-emphasis",
            )
        )
    return html.Div(parts, id="ai-label-text", **{"data-label": label})


def worklist_options(entries, current: str | None = None, claims=None) -> list[dict]:
    """Dropdown options of worklist entries: path and status, the open one marked.

    ``entries`` are :class:`~annotation_client._worklist.WorklistEntry`; a file
    over the upload limit is shown but cannot be picked. ``claims`` (``{path:
    Claim}``, see :mod:`annotation_client._claims`) are other pages' fresh claims:
    such an entry's status adds "open by Dr B", and a copy of its image under another
    path "open by Dr B as cases/a.png" (both readers would save versions of one image).
    """
    claims = claims or {}
    options = []
    for entry in entries:
        status = entry.status
        if entry.too_large:
            status += f" ({human_bytes(entry.size_bytes)})"
        claim = held(claims, entry.path, entry.sha256)
        if claim is not None:
            status += f" · open by {claim.who()}"
            if claim.path != entry.path:
                status += f" as {shown_text(claim.path)}"
        shown = shown_text(entry.path)  # the value stays the path itself
        label = f"{shown} — {status}" + (" · open" if entry.path == current else "")
        options.append({"label": label, "value": entry.path, "disabled": entry.too_large})
    return options


def worklist_found_options(paths, listed: int, current: str | None = None) -> list[dict]:
    """Dropdown options of the files past the list's limit that a search found
    (:func:`annotation_client._worklist.search_unlisted`), after the listed ones: each
    says it is past the first ``listed``, as its status is not read until it is open."""
    return [{"label": f"{shown_text(path)} — not listed: past the first {listed}"
                      + (" · open" if path == current else ""),
             "value": path, "disabled": False} for path in paths]


def worklist_summary(listing, own: bool = False) -> list:
    """One line under the worklist: how many images, how many still to annotate.

    With ``own`` (blinded reading: the listing counts the reader's saves only) the
    line says "not annotated by you".
    """
    entries = listing.entries
    todo = sum(1 for e in entries if not e.annotated and not e.too_large)
    by_you = " by you" if own else ""
    if listing.truncated:
        # Never "0 not annotated" alone: the files past the limit were not looked at.
        unlisted = listing.found - len(entries)
        text = (f"{len(entries)} of {listing.found} image(s) listed · {todo} of them not "
                f"annotated{by_you} · {unlisted} more not listed, not counted")
    else:
        text = f"{len(entries)} image(s) · {todo} not annotated{by_you}"
    too_large = sum(1 for e in entries if e.too_large)
    if too_large:
        text += f" · {too_large} too large to open"
    parts = [html.Span(text, id="worklist-count", **{"data-todo": str(todo)})]
    if listing.note:
        parts.append(html.Div(listing.note, className="text-warning-emphasis"))
    return parts


def worklist_position(entries, current: str | None, unlisted=()):
    """"Open: case07.png (7 of 18)" for the open entry, None when none is open; for a
    file of ``unlisted`` (past the listing's limit, opened by Open next not annotated),
    "Open: case7001.png (not listed: past the first 5000)"."""
    for number, entry in enumerate(entries, start=1):
        if entry.path == current:
            return [
                "Open: ",
                html.Strong(shown_text(entry.path), className="text-break"),
                f" ({number} of {len(entries)})",
            ]
    if current is not None and current in unlisted:
        return ["Open: ", html.Strong(shown_text(current), className="text-break"),
                f" (not listed: past the first {len(entries)})"]
    return None
