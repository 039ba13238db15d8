"""Aids to the pixel spacing typed by hand: reuse the last one, or calibrate on the image.

An exported PNG or JPEG has lost the scanner's calibration, and a worklist of them
asked for the spacing image after image. Two aids, neither applied unasked (a wrong
mm figure is worse than none, and the depth setting, so the spacing, can change
between images):

* the spacing the radiologist set on an earlier image of the browser session is
  *offered* on the next image without one, in one click (:func:`reuse_offer`), and a
  save records it with ``pixel_spacing_source`` :data:`REUSED`;
* a line drawn on the image along a known distance of its depth scale, with that
  distance in mm, gives the spacing (:func:`line_length_px`, :func:`calibrated`),
  shown in the field for the radiologist to Set; Set as computed, a save records it
  with ``pixel_spacing_source`` :data:`CALIBRATED`.

Coordinates are the figure's: image pixels, x to the right, y downwards, pixel
``(r, c)`` covering x in [c, c+1] and y in [r, r+1] (see :mod:`._figure`), so a
line's length in data units is its length in image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import vectorizer

#: ``pixel_spacing_source`` of a spacing typed and Set on this image.
MANUAL = "manual"
#: ``pixel_spacing_source`` of a spacing measured on this image's depth scale (a line
#: drawn along it) and Set as computed; edited before Set, it is MANUAL.
CALIBRATED = "calibrated"
#: ``pixel_spacing_source`` of a spacing set on an earlier image and reused on this one.
REUSED = "reused"
#: The sources that mean "given by the reader", not by the file's header.
READER_SOURCES = (MANUAL, CALIBRATED, REUSED)
#: Longest image name kept for the offer's label.
MAX_NAME_CHARS = 120


def remembered(meta: Mapping, mm: float) -> dict:
    """What the session keeps of a spacing Set on the image ``meta``.

    Parameters
    ----------
    meta : mapping
        The open image's ``name``, ``sha256``, ``width`` and ``height`` (pixels).
    mm : float
        The spacing Set, mm per pixel (square pixels).

    Returns
    -------
    dict
        ``{"mm", "name", "sha256", "width", "height"}``, JSON-ready.
    """
    return {
        "mm": float(mm),
        "name": str(meta.get("name") or "")[:MAX_NAME_CHARS],
        "sha256": meta.get("sha256"),
        "width": meta.get("width"),
        "height": meta.get("height"),
    }


def valid_last(last) -> dict | None:
    """``last`` (the session's store, written in the browser) if it holds a usable spacing.

    The store is the browser's to change: a spacing out of the vectorizer's
    plausible range, or a record of another form, is none.
    """
    if not isinstance(last, Mapping):
        return None
    mm = last.get("mm")
    if isinstance(mm, bool) or not isinstance(mm, int | float):
        return None
    if not (math.isfinite(mm) and vectorizer.is_plausible_spacing(mm, mm)):
        return None
    name = last.get("name")
    return {
        "mm": float(mm),
        "name": name[:MAX_NAME_CHARS] if isinstance(name, str) and name else "an earlier image",
        "width": _size(last.get("width")),
        "height": _size(last.get("height")),
    }


def _size(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def reuse_offer(last, meta) -> dict | None:
    """The spacing to offer on the image ``meta``, set on an earlier one; None for none.

    Offered only for an image measured in pixels: none when no image is open, when
    the file gives a spacing, or when one is in use already.

    Returns
    -------
    dict or None
        ``{"mm", "name", "label", "size_note"}``: ``label`` is the button's text,
        ``size_note`` says when the image it was set on had another size (in pixels,
        width x height), else None.
    """
    if not isinstance(meta, Mapping) or not meta.get("sha256") or meta.get("pixel_spacing_mm"):
        return None
    last = valid_last(last)
    if last is None:
        return None
    size_note = None
    then = (last["width"], last["height"])
    now = (meta.get("width"), meta.get("height"))
    if None not in then and then != now:
        size_note = (f"{last['name']} was {then[0]} × {then[1]} px, this image is "
                     f"{now[0]} × {now[1]} px: check its depth scale before using it.")
    return {
        "mm": last["mm"],
        "name": last["name"],
        "label": f"Use {last['mm']:g} mm/px (as set on {last['name']})",
        "size_note": size_note,
    }


def line_length_px(relayout) -> float | None:
    """Length in image pixels of the last line in a plotly ``relayoutData``; None for none.

    Parameters
    ----------
    relayout : mapping or None
        ``{"shapes": [...]}`` as plotly reports a shape drawn; a line is
        ``{"type": "line", "x0", "y0", "x1", "y1"}`` in the axes' units, which are
        image pixels (x right, y down).
    """
    if not isinstance(relayout, Mapping):
        return None
    shapes = relayout.get("shapes")
    if not isinstance(shapes, list):
        return None
    for shape in reversed(shapes):
        if not isinstance(shape, Mapping) or shape.get("type") != "line":
            continue
        try:
            x0, y0, x1, y1 = (float(shape[k]) for k in ("x0", "y0", "x1", "y1"))
        except (KeyError, TypeError, ValueError):
            return None
        length = math.hypot(x1 - x0, y1 - y0)
        return length if math.isfinite(length) else None
    return None


def calibrated(length_mm, pixels) -> tuple[float | None, str]:
    """The spacing from a line of ``pixels`` image pixels that is ``length_mm`` long.

    Parameters
    ----------
    length_mm : float or str or None
        What the radiologist typed: the line's length on the depth scale, in mm.
    pixels : float
        The line's length in image pixels.

    Returns
    -------
    (float or None, str)
        The spacing in mm per pixel (6 significant digits) and what to say; None and
        the reason when the length is not a positive number, the line has no length,
        or the spacing would fall outside the vectorizer's plausible range.
    """
    if not (isinstance(pixels, int | float) and math.isfinite(pixels) and pixels >= 1):
        return None, "Draw the line again: it is shorter than one pixel."
    try:
        mm = float(length_mm)
    except (TypeError, ValueError):
        mm = math.nan
    if not (math.isfinite(mm) and mm > 0):
        return None, (f"{str(length_mm)[:40]!r} is not a length: type how many mm the "
                      f"line covers on the depth scale (a positive number).")
    spacing = float(f"{mm / pixels:.6g}")
    low, high = vectorizer.MIN_PIXEL_SPACING_MM, vectorizer.MAX_PIXEL_SPACING_MM
    if not vectorizer.is_plausible_spacing(spacing, spacing):
        return None, (f"{mm:g} mm over {pixels:.1f} px is {spacing:g} mm per pixel, outside "
                      f"{low:g} to {high:g}: check the line and its length in mm.")
    return spacing, (f"{mm:g} mm over {pixels:.1f} px: {spacing:g} mm per pixel. "
                     "Set to measure at it.")
