"""The measurements panel: lesion size and orientation from the current outline."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import vectorizer

from ._lesions import find_lesions

PARALLEL = "parallel"
NOT_PARALLEL = "not parallel"


def orientation(width: float, height: float) -> str:
    """BI-RADS orientation from a lesion's extent.

    A lesion is *parallel* when its long axis follows the skin line, i.e. when it
    is wider than tall; otherwise it is *not parallel* (taller than or as tall as
    wide).

    Parameters
    ----------
    width, height : float
        Horizontal and vertical extent, in the same unit (mm when the pixel
        spacing is known, since pixels need not be square in millimetres).
    """
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise TypeError(f"{name} must be a number")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and non-negative, got {value}")
    return PARALLEL if width > height else NOT_PARALLEL


def _check_spacing(pixel_spacing):
    """``(row_mm, col_mm)`` as floats, or None; refused as the vectorizer would refuse it.

    Checked here, with the vectorizer's own limit, so a bad spacing is reported
    naming this function's parameter before any measuring starts.
    """
    if pixel_spacing is None:
        return None
    if len(pixel_spacing) != 2:
        raise ValueError("pixel_spacing must be (row_mm, col_mm)")
    row, col = (float(v) for v in pixel_spacing)
    if not vectorizer.is_plausible_spacing(row, col):
        raise ValueError(
            f"pixel_spacing must be from {vectorizer.MIN_PIXEL_SPACING_MM:g} to "
            f"{vectorizer.MAX_PIXEL_SPACING_MM:g} mm per pixel, got {pixel_spacing!r}"
        )
    return (row, col)


def _lesion_measurements(mask: np.ndarray, outlines, spacing) -> tuple[list[dict], int]:
    """Per region of each lesion (:func:`._lesions.find_lesions`), its measurements, and
    the number of 8-connected regions of ``mask``.

    A lesion of one region of the mask, whose outlines enclose one area, is the
    vectorizer's entry for it; one of several regions of the mask is measured as one
    (:func:`vectorizer.measure_lesion`: its total area, the chords of its common hull),
    so that the record lists as many as it counts; one whose outlines enclose apart
    areas (a self-crossing ring's loops, outlines that only touch) is each area's pixels
    measured (:meth:`._lesions.Lesions.regions`), as the DICOM SR reports them.
    """
    regions = [dict(r) for r in vectorizer.measure_regions(mask, spacing)]
    if not outlines or not regions:
        return regions, len(regions)
    found = find_lesions(mask, outlines)
    for head, ks in enumerate(found.groups):
        if len(ks) < 2 and len(found.areas[head]) < 2:
            continue  # the usual lesion: the vectorizer's entry stands
        pixels, box = found.pixels(head)
        parts = found.regions(head, pixels, box)
        if len(ks) < 2 and len(parts) < 2:
            continue  # apart loops, all but one between pixel centres
        for k in ks:
            rows, cols = found.boxes[k - 1]
            bbox = [cols.start, rows.start, cols.stop, rows.stop]
            area = int(np.count_nonzero(found.labels[rows, cols] == k))
            # The region's own entry leaves: the lesion's measurements stand for it.
            at = next((i for i, r in enumerate(regions)
                       if list(r["bbox"]) == bbox and r["area_px"] == area), None)
            if at is not None:
                del regions[at]
        regions.extend(dict(vectorizer.measure_lesion(inside, spacing, origin=origin))
                       for _ring, inside, origin in parts
                       or [(None, pixels[box], (box[0].start, box[1].start))])
    return regions, len(found.boxes)


def summarize(
    mask: np.ndarray,
    pixel_spacing: Sequence[float] | None = None,
    outlines: Sequence[str] | None = None,
) -> dict:
    """Measure the outline's lesions for the panel and the saved record.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` bool mask of the current outline (rows are y, columns are x).
    pixel_spacing : (row_mm, col_mm), optional
        Physical pixel size; when given, millimetre values are added.
    outlines : sequence of str, optional
        The region paths the mask was drawn from (image pixels, x right, y down). The
        lesions are the mask's 8-connected regions, those one outline covers together
        joined (:func:`._lesions.find_lesions`): a hand-edited outline can pinch off
        slivers a pixel wide, which are separate regions of the mask but not separate
        lesions, and a region drawn over the lesion's outline to widen it is a second
        outline of the same lesion (their union, one region, is saved). A lesion whose
        outlines enclose apart areas (a self-crossing ring's loops, a bow-tie; outlines
        that only touch) is those areas, each measured over the mask's pixels inside it,
        as the DICOM SR reports them (one measurement group each).

    Returns
    -------
    dict
        ``count`` (number of regions: lesions, a lesion's apart areas each one; the
        status line's and the record's ``final.regions``), ``components`` (8-connected
        regions of the mask), ``area_px`` (total), ``area_mm2`` (total or None),
        ``regions`` (one entry per region, largest first: the vectorizer's measurements,
        each with an added ``orientation``) and ``largest`` (the first of them, or
        None).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    spacing = _check_spacing(pixel_spacing)
    if outlines is not None and (isinstance(outlines, str) or not isinstance(outlines, Sequence)
                                 or not all(isinstance(p, str) for p in outlines)):
        raise TypeError("outlines must be a sequence of path strings")
    regions, components = _lesion_measurements(mask.astype(bool), outlines, spacing)
    regions.sort(key=lambda r: r["area_px"], reverse=True)
    for region in regions:
        if spacing is not None and "width_mm" in region:
            region["orientation"] = orientation(region["width_mm"], region["height_mm"])
        else:
            region["orientation"] = orientation(region["width_px"], region["height_px"])
    area_px = float(sum(r["area_px"] for r in regions))
    area_mm2 = (
        float(sum(r["area_mm2"] for r in regions))
        if spacing is not None and all("area_mm2" in r for r in regions)
        else None
    )
    return {
        "count": len(regions),
        "components": components,
        "area_px": area_px,
        "area_mm2": area_mm2,
        "pixel_spacing_mm": list(spacing) if spacing else None,
        "regions": regions,
        "largest": regions[0] if regions else None,
    }


def table_rows(summary: dict) -> list[tuple[str, str]]:
    """Label/value rows for the measurements panel, formatted for reading.

    Parameters
    ----------
    summary : dict
        The output of :func:`summarize`.
    """
    rows = [("Regions", str(summary["count"]))]
    if summary["components"] == 0:
        return rows
    area = f"{summary['area_px']:.0f} px²"
    if summary["area_mm2"] is not None:
        area += f" ({summary['area_mm2']:.1f} mm²)"
    rows.append(("Area (total)", area))
    largest = summary["largest"]

    spacing = summary.get("pixel_spacing_mm")
    square = not spacing or math.isclose(spacing[0], spacing[1], rel_tol=1e-9)

    def length(key: str) -> str:
        if not square and f"{key}_mm_endpoints" in largest:
            # With pixels that are not square, the mm diameters are other chords than
            # the longest in pixels (the calipers draw those), and a length in pixels
            # along them is no measure: the mm alone. The record keeps the px chords'.
            return f"{largest[key + '_mm']:.1f} mm"
        text = f"{largest[key + '_px']:.1f} px"
        if f"{key}_mm" in largest:
            text += f" ({largest[key + '_mm']:.1f} mm)"
        return text

    # One outline whose edit pinched off a pixel-wide sliver is still one region to
    # the reader: its measurements are the region's, not "the largest" of two.
    def named(name: str) -> str:
        if summary["count"] > 1:
            return f"Largest region: {name}"
        return name[:1].upper() + name[1:]  # a row's name, as "Regions" and "Area (total)"

    # Named as a report (and the Saved page) names them: the long axis, its maximum
    # diameter, and the perpendicular axis, the second caliper (size = long x this).
    rows.append((named("long axis"), length("max_diameter")))
    rows.append((named("perpendicular axis"), length("perpendicular_diameter")))
    rows.append((named("width"), length("width")))
    rows.append((named("height"), length("height")))
    rows.append((named("orientation"), largest["orientation"]))
    return rows
