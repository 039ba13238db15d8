"""Whether the open image has work that a reload or a new file would lose.

The outline history, label, note, descriptors and a pixel spacing the reader gave
live in the browser's memory,
so a reload, a closed tab or the next uploaded file drops them. The page marks
the work as unsaved, and ``assets/sonotrace.js`` asks before any of those
happens. The work is compared with one *snapshot*: the one taken at the last
save of this image, or, before any, the untouched image (the AI outline, if any,
with no label, note, descriptor or spacing of the reader's), so that opening an
image and letting the model outline it is not work to lose. Once the image is
saved, opening it again loads that save, not the AI outline: work back to the
untouched image is then work to lose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import _shapes


def snapshot(
    image: str,
    paths: Sequence[str],
    label: str | None = None,
    note: str | None = None,
    descriptors: Mapping[str, str | None] | None = None,
    spacing: Sequence[float] | None = None,
) -> dict:
    """The annotator's work on one image, as JSON-able data.

    Parameters
    ----------
    image : str
        Content hash (sha256) of the image.
    paths : sequence of str
        Outline regions, SVG path data in image pixel coordinates.
    label, note : str, optional
        The final label and the free-text note; empty is the same as None.
    descriptors : mapping, optional
        BI-RADS descriptor values by name; unset ones are dropped, and the values of
        a multi-valued one are sorted.
    spacing : sequence of float, optional
        ``(row, column)`` pixel spacing in mm that the reader gave (typed, calibrated
        or reused), which a save records; None when the measurements are in pixels or
        the file gives the spacing (opening the image again gives it back).
    """
    return {
        "image": image,
        "paths": list(paths or []),
        "label": label or None,
        "note": (note or "").strip() or None,
        # A multi-valued descriptor (margin) in one order: the checklist appends each
        # value ticked, so unticking and ticking one again is no change (the record
        # keeps the lexicon's order).
        "descriptors": {
            k: sorted(map(str, v)) if isinstance(v, list | tuple) else v
            for k, v in sorted((descriptors or {}).items())
            if v
        },
        "spacing": [float(v) for v in spacing] if spacing else None,
    }


def untouched(image: str, ai_paths: Sequence[str] | None) -> dict:
    """The snapshot of an image as opened: the AI outline (or none), nothing else."""
    return snapshot(image, ai_paths or [])


def is_unsaved(current: dict | None, saved: dict | None, ai_paths=None, *,
               as_opened: bool = False) -> bool:
    """Whether ``current`` holds work that is in no save.

    Parameters
    ----------
    current : dict or None
        :func:`snapshot` of the open image, None when no image is open.
    saved : dict or None
        The snapshot taken at the last save; one of another image is ignored.
    ai_paths : sequence of str, optional
        The AI outline of the open image, the baseline before any save.
    as_opened : bool, optional
        Whether the image's outline is still as it opened, before the model's outline
        or the saved version to revise reached it (``current`` has its outline): only
        what the reader entered since is work then, even after a save of the image.
    """
    if not current:
        return False
    same_image = bool(saved) and saved.get("image") == current["image"]
    if same_image and not as_opened:
        # Work equal to the last save is on disk. Work equal to the image as opened
        # is not, once it is saved: opening it again loads the save, not the AI outline.
        return not same_work(current, saved)
    # Before any save, work equal to the image as opened comes back by opening it
    # again. Until the model's outline (or a save loaded to revise) reaches an image
    # just opened, that is its blank outline, whatever was saved of it before.
    opened = untouched(current["image"], current["paths"] if as_opened else ai_paths)
    return not (same_work(current, opened) or (same_image and same_work(current, saved)))


def same_work(a: dict, b: dict) -> bool:
    """Whether two snapshots hold the same work: outline (as geometry), label, note,
    descriptors and the reader's spacing."""
    if not _shapes.same_geometry(a["paths"], b.get("paths") or []):
        return False
    return all(a.get(k) == b.get(k) for k in ("label", "note", "descriptors", "spacing"))
