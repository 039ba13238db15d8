import math

import numpy as np
import pytest

from annotation_client import _editing, _lesions, _shapes
from annotation_client import _measurements as m
from annotation_client._figure import caliper_annotations


def _two_rectangles():
    mask = np.zeros((40, 60), bool)
    mask[5:15, 10:40] = True  # 10 tall, 30 wide: 300 px, parallel
    mask[25:37, 50:54] = True  # 12 tall, 4 wide: 48 px, not parallel
    return mask


def test_orientation_follows_the_wider_than_tall_rule():
    assert m.orientation(30, 10) == "parallel"
    assert m.orientation(10, 30) == "not parallel"
    assert m.orientation(10, 10) == "not parallel"
    with pytest.raises(ValueError, match="width"):
        m.orientation(-1, 2)
    with pytest.raises(TypeError, match="height"):
        m.orientation(1, "2")


def test_summary_counts_regions_and_sorts_them_largest_first():
    summary = m.summarize(_two_rectangles())
    assert summary["count"] == 2
    assert summary["area_px"] == pytest.approx(348)
    assert summary["area_mm2"] is None
    largest, small = summary["regions"]
    assert largest["area_px"] == pytest.approx(300)
    assert largest["orientation"] == "parallel"
    assert small["orientation"] == "not parallel"
    assert summary["largest"] is largest
    assert largest["width_px"] > largest["height_px"]
    assert largest["max_diameter_px"] >= largest["width_px"]


def test_millimetres_use_the_pixel_spacing_and_may_flip_orientation():
    mask = np.zeros((40, 60), bool)
    mask[5:25, 10:40] = True  # 20 rows x 30 cols
    summary = m.summarize(mask, pixel_spacing=(0.5, 0.2))
    assert summary["area_mm2"] == pytest.approx(600 * 0.5 * 0.2)
    # 30 columns * 0.2 mm = 6 mm wide, 20 rows * 0.5 mm = 10 mm tall: not parallel
    # in millimetres, although the lesion is wider than tall in pixels.
    assert summary["largest"]["orientation"] == "not parallel"
    assert summary["pixel_spacing_mm"] == [0.5, 0.2]


#: One outline around both of :func:`_two_rectangles`, pinched between them (x, y).
_PINCHED = "M10,5 L40,5 L54,25 L54,37 L50,37 L40,15 L10,15 Z"


def test_regions_one_outline_covers_are_one_lesion():
    summary = m.summarize(_two_rectangles(), outlines=[_PINCHED])
    assert summary["count"] == 1 and summary["components"] == 2
    # Listed as counted: one lesion, measured whole (audit 806 F2).
    (lesion,) = summary["regions"]
    assert lesion["area_px"] == pytest.approx(348)
    assert lesion["bbox"] == [10, 5, 54, 37]
    rows = dict(m.table_rows(summary))
    assert rows["Regions"] == "1"
    # One region to the reader: its rows are not "the largest region's".
    assert "Long axis" in rows and not any(name.startswith("Largest") for name in rows)
    assert list(rows) == ["Regions", "Area (total)", "Long axis", "Perpendicular axis",
                          "Width", "Height", "Orientation"]
    with pytest.raises(TypeError, match="outlines"):
        m.summarize(_two_rectangles(), outlines=1)
    with pytest.raises(TypeError, match="outlines"):
        m.summarize(_two_rectangles(), outlines=_PINCHED)


def test_outlines_that_overlap_are_one_region():
    # A region drawn over the lesion's outline to widen it: two outlines, one lesion
    # (their union is one component), not "Regions 2", which reads as multifocal.
    mask = np.zeros((40, 60), bool)
    mask[5:25, 10:40] = True
    overlapping = ["M10,5 L30,5 L30,25 L10,25 Z", "M20,5 L40,5 L40,25 L20,25 Z"]
    assert m.summarize(mask, outlines=overlapping)["count"] == 1
    apart = ["M10,5 L40,5 L40,15 L10,15 Z", "M50,25 L54,25 L54,37 L50,37 Z"]
    summary = m.summarize(_two_rectangles(), outlines=apart)
    assert summary["count"] == 2 and len(summary["regions"]) == 2
    assert m.summarize(np.zeros((5, 5), bool), outlines=["M1,1 L2,1 L2,2 Z"])["count"] == 0


def test_a_self_crossing_outline_counts_and_lists_as_many_lesions_as_its_mask_shows():
    # A vertex dragged across its neighbours: the ring rasterises in pieces. The record
    # listed every piece as a region while counting one lesion per outline (audit 806 F2).

    # Two squares joined by an edge run out and back, which encloses nothing: the ring
    # encloses two apart areas, each a region, as the DICOM SR reports them.
    pinched = ("M10,10 L20,10 L20,20 L35,20 L35,10 L45,10 L45,30 L35,30 L35,20 L20,20"
               " L20,30 L10,30 Z")
    square = "M50,2 L58,2 L58,8 L50,8 Z"
    outlines = [pinched, square]
    mask = _shapes.paths_to_mask(outlines, (40, 60))
    summary = m.summarize(mask, outlines=outlines)
    assert summary["components"] == 3
    assert summary["count"] == len(summary["regions"]) == 3
    assert summary["area_px"] == pytest.approx(np.count_nonzero(mask))
    groups = _lesions.find_lesions(mask, outlines).groups
    assert groups == _lesions.find_lesions(mask, outlines[::-1]).groups == [[1], [2, 3]]
    assert len(_lesions.find_lesions(mask).groups) == summary["components"]


#: A bow-tie wider than tall, whose loops are each taller than wide: the ring crosses
#: itself at about (32.2, 26.7).
_BOW_TIE = "M10,10 L50,40 L50,16 L10,40 Z"
_LOOPS = ["M10,10 L32.2222,26.6667 L10,40 Z", "M32.2222,26.6667 L50,40 L50,16 Z"]


def test_the_small_loops_of_a_twisted_outline_are_no_regions_of_their_own():
    # A vertex dragged across the outline's first edge twists it: two loops of about
    # 5 px² beside a square of 1500 were "Regions 3" (the browser test's drag: "4" for
    # two outlines). They are the square's, as is their every pixel, on the page as in
    # the DICOM SR.
    twisted = "M10,10 L50,10 L50,50 L10,50 L14,6 L6,18 Z"
    mask = _shapes.paths_to_mask([twisted], (60, 60))
    assert len(_lesions.find_lesions(mask, [twisted]).groups) == 1
    summary = m.summarize(mask, outlines=[twisted])
    assert summary["count"] == len(summary["regions"]) == 1
    assert summary["regions"][0]["area_px"] == mask.sum()
    # Beside a bow-tie's loop, a twist's pixels go to the loop nearest them, not to the
    # largest.
    twist = "M50,40 L50,16 L53,17 L52,15 Z"
    mask = _shapes.paths_to_mask([_BOW_TIE, twist], (60, 80))
    summary = m.summarize(mask, outlines=[_BOW_TIE, twist])
    assert summary["count"] == 2
    twist_pixels = _shapes.paths_to_mask([twist], (60, 80)) & ~_shapes.paths_to_mask(
        [_BOW_TIE], (60, 80))
    assert twist_pixels.any()
    loops = [_shapes.paths_to_mask([loop], (60, 80)) & mask for loop in _LOOPS]
    small = min(summary["regions"], key=lambda r: r["area_px"])
    assert small["area_px"] == (loops[1] | twist_pixels).sum()


def test_a_bow_tie_is_listed_and_measured_as_the_regions_it_encloses():
    # Its loops, which the saved mask fills both, were one lesion measured across both:
    # "Regions 1", a long axis from one loop to the other and "parallel", while the DICOM
    # SR reports each loop with its own size.
    import vectorizer

    mask = _shapes.paths_to_mask([_BOW_TIE], (60, 80))
    summary = m.summarize(mask, (0.1, 0.1), outlines=[_BOW_TIE])
    assert summary["count"] == len(summary["regions"]) == 2
    loops = [_shapes.paths_to_mask([loop], (60, 80)) & mask for loop in _LOOPS]
    assert loops[0].sum() > loops[1].sum() > 0
    for region, inside in zip(summary["regions"], loops, strict=True):
        measured = vectorizer.measure_lesion(inside, (0.1, 0.1))
        for key in ("area_px", "bbox", "max_diameter_mm", "perpendicular_diameter_mm",
                    "width_px", "height_px"):
            assert region[key] == pytest.approx(measured[key]), key
        assert region["width_px"] < region["height_px"]
        assert region["orientation"] == "not parallel"
    assert summary["area_px"] == pytest.approx(mask.sum())
    rows = dict(m.table_rows(summary))
    assert rows["Regions"] == "2"
    assert rows["Largest region: orientation"] == "not parallel"
    largest = summary["largest"]
    assert rows["Largest region: long axis"] == (
        f"{largest['max_diameter_px']:.1f} px ({largest['max_diameter_mm']:.1f} mm)")
    # The calipers drawn are the larger loop's, inside it.
    drawn = {a["name"]: a for a in caliper_annotations(largest)}
    for line in drawn.values():
        for x in (line["x"], line["ax"]):
            assert 10 <= x <= 33


def test_outlines_with_holes_nested_or_cut_keep_their_measurements():
    # One area each: the measurements are the mask's regions' as the vectorizer gives them
    # (with no outlines), as before.
    square = "M10,10 L40,10 L40,40 L10,40 Z"
    holed = square + " M20,20 L30,20 L30,30 L20,30 Z"
    nested = [square, "M20,20 L30,20 L30,30 L20,30 Z"]
    necked = ("M10,10 L30,10 L30,20 L40,20 L40,10 L55,10 L55,30 L40,30 L40,20.1 L30,20.1 "
              "L30,30 L10,30 Z")  # a neck between no pixel centres: one lesion, measured whole
    # Cut away (_editing.cut_outline): a hole cut inside, and a cut across, in two.
    cut = [_editing.cut_outline([square], [c], (60, 80), 32)["paths"]
           for c in ("M20,20 L30,20 L30,30 L20,30 Z", "M23,0 L27,0 L27,60 L23,60 Z")]
    assert [len(paths) for paths in cut] == [1, 2]
    for outlines in ([square], [holed], nested, [square, "M45,5 L55,5 L55,15 L45,15 Z"],
                     *cut):
        mask = _shapes.paths_to_mask(outlines, (60, 80))
        assert m.summarize(mask, (0.1, 0.2), outlines=outlines) == m.summarize(mask, (0.1, 0.2))
    assert m.summarize(_shapes.paths_to_mask([holed], (60, 80)))["area_px"] == 800
    mask = _shapes.paths_to_mask([necked], (60, 80))
    summary = m.summarize(mask, outlines=[necked])
    assert summary["components"] == 2 and summary["count"] == 1
    assert summary["largest"]["bbox"] == [10, 10, 55, 30]


def test_empty_mask():
    summary = m.summarize(np.zeros((10, 10), bool))
    assert summary["count"] == 0 and summary["area_px"] == 0 and summary["largest"] is None
    assert m.table_rows(summary) == [("Regions", "0")]


def test_table_rows_show_px_and_mm():
    rows = dict(m.table_rows(m.summarize(_two_rectangles(), pixel_spacing=(0.1, 0.1))))
    assert rows["Regions"] == "2"
    assert rows["Area (total)"] == "348 px² (3.5 mm²)"
    assert rows["Largest region: orientation"] == "parallel"
    assert "mm)" in rows["Largest region: long axis"]
    # 30 x 10 px: the long axis is the diagonal; across it, 10 * sqrt(1000) / 30 px.
    assert rows["Largest region: long axis"] == "31.6 px (3.2 mm)"
    assert rows["Largest region: perpendicular axis"] == "10.5 px (1.1 mm)"
    names = [name for name, _ in m.table_rows(m.summarize(_two_rectangles()))]
    assert names.index("Largest region: perpendicular axis") == (
        names.index("Largest region: long axis") + 1
    )


def test_with_non_square_pixels_the_panel_and_the_calipers_give_the_mm_chords():
    # A 100 x 60 px rectangle at 0.3 x 0.1 mm: the panel said "70.0 px (11.4 mm)" for
    # the perpendicular axis, two different chords, and drew the px one (18.4 mm long).
    mask = np.zeros((80, 120), bool)
    mask[10:70, 10:110] = True
    summary = m.summarize(mask, pixel_spacing=(0.3, 0.1))
    largest = summary["largest"]
    rows = dict(m.table_rows(summary))
    drawn = {a["name"]: a for a in caliper_annotations(largest)}
    for key, row in (("max_diameter", "Long axis"), ("perpendicular_diameter",
                                                      "Perpendicular axis")):
        line = drawn[f"{key}_endpoints"]
        dx, dy = line["x"] - line["ax"], line["y"] - line["ay"]
        # What is drawn measures the mm figure shown; a px length along it is no measure
        # with such pixels, and the record's px figure is the longest px chord's: mm alone.
        assert math.hypot(dx * 0.1, dy * 0.3) == pytest.approx(largest[f"{key}_mm"])
        assert rows[row] == f"{largest[key + '_mm']:.1f} mm"
    assert rows["Width"] == "100.0 px (10.0 mm)"  # an extent, the same in both
    # Square pixels: the same chords either way, px and mm as ever.
    summary = m.summarize(mask, pixel_spacing=(0.1, 0.1))
    across = summary["largest"]["perpendicular_diameter_px"]
    assert dict(m.table_rows(summary))["Perpendicular axis"] == (
        f"{across:.1f} px ({across * 0.1:.1f} mm)")
    # In pixels only, the px chords, as before.
    plain = m.summarize(mask)["largest"]
    line = {a["name"]: a for a in caliper_annotations(plain)}["perpendicular_diameter_endpoints"]
    assert [[line["ax"], line["ay"]], [line["x"], line["y"]]] == (
        plain["perpendicular_diameter_endpoints"])


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        m.summarize(np.zeros((2, 3, 4), bool))
    with pytest.raises(ValueError, match="pixel_spacing"):
        m.summarize(np.zeros((4, 4), bool), pixel_spacing=(0, 1))


@pytest.mark.parametrize("spacing", [(10.5, 0.1), (1e200, 1e200), (float("inf"), 1),
                                     (1e-9, 1e-9), (0.0005, 0.1)])
def test_a_spacing_outside_the_vectorizer_range_is_refused_naming_the_parameter(spacing):
    import vectorizer

    # Refused before any region is measured, with the vectorizer's own limits.
    with pytest.raises(ValueError, match=rf"pixel_spacing must be from "
                       rf"{vectorizer.MIN_PIXEL_SPACING_MM:g} to "
                       rf"{vectorizer.MAX_PIXEL_SPACING_MM:g} mm"):
        m.summarize(np.zeros((4, 4), bool), pixel_spacing=spacing)
    assert m.summarize(np.zeros((4, 4), bool), (vectorizer.MAX_PIXEL_SPACING_MM, 1))["count"] == 0


def test_a_self_crossing_outline_of_many_loops_on_a_large_image_is_measured_in_little_memory():
    """A ribbon twisted 60 times across a 4000x3000 image: 61 loops, each a region. Each
    region's pixels were an image-sized mask, all kept at once (12 MB each: 0.8 GB at
    every edit, as the panel measures the outline again); now each its own box's."""
    import tracemalloc

    twists, length = 60, 3600
    ends = [(200 + i * length / twists, 1400 + 200 * (i % 2)) for i in range(twists + 1)]
    back = [(x, 3000 - y) for x, y in reversed(ends)]
    path = _shapes.format_path([ends + back], exact=True)
    mask = _shapes.paths_to_mask([path], (3000, 4000))
    tracemalloc.start()
    try:
        summary = m.summarize(mask, (0.1, 0.1), outlines=[path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary["count"] == twists + 1 and summary["components"] == 1
    assert sum(r["area_px"] for r in summary["regions"]) == mask.sum()
    # The mask's labels (48 MB) and a lesion's pixels (12 MB) are image-sized; no more.
    assert peak < 150e6, f"{peak / 1e6:.0f} MB"
