"""Compare with another version: a saved version's outline beside the one on screen.

When two readers disagree, whoever adjudicates revises one reading (*Load it to
revise*) and saves; to do that well they must see the other reading's outline too.
The Annotate page's *Compare with* list names the open image's saved versions the
request may see (under blinded reading a reader's own only, as the "Saved before"
line: :func:`annotation_client._readers.visible_annotator`), and the one chosen is
drawn over the image, with the Dice between it and the outline on screen.

The version's outline is drawn as a plotly *trace* (a dashed line), not a shape: the
page's shapes are the outline being edited, one editable path per region, and every
edit is read back from them (:data:`annotation_client._figure.FRESH_VIEW_SCRIPT`), so
a shape would become part of what is edited and saved. A trace is never editable and,
drawn with ``hoverinfo: "skip"``, takes no clicks from the outline.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import _agreement, _shapes, _views
from ._storage import AnnotationStore

#: Orange: unlike the outline's cyan, a box's yellow, the calipers' lime and a cut's red.
COMPARE_COLOR = "#ff9100"
#: The index of the compared version's trace in the figure's ``data`` (the image is 0).
TRACE_INDEX = 1
#: The trace's name, which tests and plotly's hover know it by.
TRACE_NAME = "compared version"
#: The list's first choice: no version drawn.
NONE_VALUE = ""
NONE_OPTION = {"label": "None", "value": NONE_VALUE}


class NotVisible(ValueError):
    """The version asked for is not one this request may see (or not saved any more)."""


def version_label(version: int, record) -> str:
    """``v2 by Dr A, 2026-12-01 09:06 UTC, final label benign`` (the list's entry).

    A record that is not a JSON object says so, so that the version can still be
    chosen and its damage be said in full (:func:`read_version`).
    """
    if not isinstance(record, dict):
        return f"v{version} (its record cannot be read)"
    when = str(record.get("saved_at", "")).replace("T", " ")[:16]
    final = record.get("final")
    label = (final.get("label") if isinstance(final, dict) else None) or "none"
    return f"v{version} by {record.get('annotator')}, {when} UTC, final label {label}"


def version_options(store: AnnotationStore, image_sha256: str,
                    reader: str | None) -> list[dict]:
    """The *Compare with* list: "None", then each version ``reader`` may see, newest first.

    Parameters
    ----------
    store : AnnotationStore
        The client's store (with its index).
    image_sha256 : str
        The open image.
    reader : str or None
        Whose versions (:func:`annotation_client._app.get_reader`: the signed-in
        reader under blinded reading); None for every version.

    Returns
    -------
    list of dict
        ``{"label", "value"}`` options for a ``dbc.Select``; a version's value is its
        number as a string. Only "None" when the image has no version to see.

    Raises
    ------
    OSError
        When the image's folder cannot be listed.
    """
    options = [dict(NONE_OPTION)]
    for version in reversed(store.versions(image_sha256, reader)):
        try:
            record = store.load_record(image_sha256, version)
        except (OSError, ValueError):
            record = None  # listed all the same: choosing it says what is wrong
        options.append({"label": version_label(version, record), "value": str(version)})
    return options


def chosen_version(value) -> int | None:
    """The version number a list value names, or None ("None", or not a number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit() and value.isascii():
        number = int(value)
        return number if number > 0 else None
    return None


def read_version(store: AnnotationStore, meta: dict, version: int,
                 reader: str | None) -> tuple[dict, list[str]]:
    """A version's record and outline (its SVG's paths, in image pixels) to compare with.

    The list's value comes from the browser: the version is checked to be one
    ``reader`` may see, as the list itself was made, so that under blinded reading
    a forged number cannot draw another reader's outline.

    Raises
    ------
    NotVisible
        ``version`` is not one of the image's versions ``reader`` may see.
    OSError
        Its record or SVG cannot be read (removed since, say).
    ValueError
        Its record is damaged, or its SVG is not an outline of this image.
    """
    sha = meta["sha256"]
    if version not in store.versions(sha, reader):
        raise NotVisible(
            f"version {version} is not a saved version of this image"
            + ("" if reader is None else " that you saved (blinded reading)")
        )
    record = store.load_record(sha, version)
    if not isinstance(record, dict):
        raise ValueError(f"the record of version {version} is not a saved record")
    paths = _shapes.svg_to_paths(store.load_svg(sha, version), int(meta["width"]),
                                 int(meta["height"]))
    return record, paths


def dice_with(paths: Sequence[str], on_screen: Sequence[str], shape: tuple[int, int]) -> float:
    """The Dice of two outlines of one image (rasterised as a save rasterises them).

    1.0 when both are empty (both found no lesion), as reader agreement counts it.
    """
    return _agreement.dice(_shapes.paths_to_mask(paths, shape),
                           _shapes.paths_to_mask(on_screen, shape))


def overlay_xy(paths: Sequence[str]) -> tuple[list, list]:
    """The x and y of a trace drawing every ring of ``paths``: each closed (its first
    vertex again at its end) and followed by None, so that plotly lifts the pen.

    Coordinates are the paths' own, image pixels with x right and y down: the
    figure's axes are those (:mod:`annotation_client._figure`).
    """
    xs: list = []
    ys: list = []
    for path in paths:
        for ring in _shapes.parse_path(path):
            if not ring:
                continue
            closed = [*ring, ring[0]]
            xs.extend([x for x, _ in closed] + [None])
            ys.extend([y for _, y in closed] + [None])
    return xs, ys


def overlay_trace(paths: Sequence[str], visible: bool = True) -> dict:
    """The compared version's outline as a plotly scatter trace: a dashed orange line,
    read-only, with no hover (the image's pixel read-out stays) and no legend (the
    caption beside the image names it; a legend would take room from the image);
    hidden (``visible`` false) while *Show outline* is off."""
    xs, ys = overlay_xy(paths)
    return {
        "visible": bool(visible),
        "type": "scatter",
        "mode": "lines",
        "name": TRACE_NAME,
        "x": xs,
        "y": ys,
        "xaxis": "x",
        "yaxis": "y",
        "line": {"color": COMPARE_COLOR, "width": 2, "dash": "dash"},
        "hoverinfo": "skip",
        "showlegend": False,
        "connectgaps": False,
    }


def caption_text(version: int, record: dict, dice: float, outlined: bool = True) -> str:
    """``Dashed orange: v2 by Dr A, ..., final label benign. Dice with the outline on
    screen: 0.870.`` (three decimals, and 1.000 only for the same outline:
    :func:`annotation_client._views.shown_dice`).

    A version with no outline (``outlined`` false) has no line to point at: the caption
    says so, and says it when the record states an outline its SVG does not hold.
    """
    label = version_label(version, record)
    dice_text = f"Dice with the outline on screen: {_views.shown_dice(dice):.3f}."
    if outlined:
        return f"Dashed orange: {label}. {dice_text}"
    final = record.get("final") if isinstance(record, dict) else None
    if isinstance(final, dict) and final.get("empty") is False:
        return (f"{label}: its SVG holds no outline, though its record says it has one "
                f"(restore the file from a backup). {dice_text}")
    return f"{label}: no outline (no lesion outlined), nothing drawn. {dice_text}"
