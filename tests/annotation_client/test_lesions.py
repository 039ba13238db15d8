"""The lesions of an outline and the areas each encloses, the one rule of the status line,
the measurements panel, the saved record and the DICOM SR (``_lesions``)."""

from __future__ import annotations

import numpy as np
import shapely

from annotation_client import _lesions, _shapes

SHAPE = (60, 80)  # (rows, cols)
#: A bow-tie: the ring crosses itself at (34, 28); the mask fills both loops (even-odd).
BOW_TIE = "M10,10 L50,40 L50,20 L10,40 Z"
TRIANGLES = [[(10, 10), (34, 28), (10, 40)], [(34, 28), (50, 40), (50, 20)]]
SQUARE = "M10,10 L30,10 L30,30 L10,30 Z"


def _mask_of(paths) -> np.ndarray:
    return _shapes.paths_to_mask(paths, SHAPE)


def _placed(inside: np.ndarray, origin) -> np.ndarray:
    """A region's pixels (h, w), whose pixel (0, 0) is the image's ``origin`` (row, col),
    on an image of ``SHAPE``."""
    placed = np.zeros(SHAPE, dtype=bool)
    (row, col), (h, w) = origin, inside.shape
    placed[row:row + h, col:col + w] = inside
    return placed


def test_a_bow_tie_is_one_lesion_enclosing_two_areas_that_share_its_pixels_out():
    mask = _mask_of([BOW_TIE])
    found = _lesions.find_lesions(mask, [BOW_TIE])
    # Its loops rasterise apart, and one outline covers both: one lesion.
    assert found.groups == [[1, 2]]
    (areas,) = found.areas
    assert [round(a.area, 6) for a in areas] == [
        round(shapely.Polygon(t).area, 6) for t in TRIANGLES]
    pixels, box = found.pixels(0)
    np.testing.assert_array_equal(pixels, mask)
    assert pixels[box].sum() == mask.sum()
    parts = found.regions(0, pixels, box)
    # Largest first, each its own loop, the pixels the mask fills inside it, each once.
    assert len(parts) == 2
    parts = [(ring, _placed(inside, origin)) for ring, inside, origin in parts]
    for (ring, inside), triangle in zip(parts, TRIANGLES, strict=True):
        assert ring.dtype == np.float32 and ring.shape[1] == 2
        assert shapely.Polygon(ring).symmetric_difference(
            shapely.Polygon(triangle)).area < 1e-3
        expected = _mask_of(["M" + " L".join(f"{x},{y}" for x, y in triangle) + " Z"]) & mask
        np.testing.assert_array_equal(inside, expected)
    assert not (parts[0][1] & parts[1][1]).any()
    np.testing.assert_array_equal(parts[0][1] | parts[1][1], mask)


def test_an_ordinary_outline_is_one_lesion_of_one_area_and_all_its_pixels():
    with_hole = SQUARE + " M15,15 L25,15 L25,25 L15,25 Z"
    nested = [SQUARE, "M15,15 L25,15 L25,25 L15,25 Z"]
    overlapping = [SQUARE, "M25,12 L45,12 L45,28 L25,28 Z"]
    for paths in ([SQUARE], [with_hole], nested, overlapping):
        mask = _mask_of(paths)
        found = _lesions.find_lesions(mask, paths)
        assert len(found.groups) == 1 and len(found.areas[0]) == 1, paths
        pixels, box = found.pixels(0)
        ((ring, inside, origin),) = found.regions(0, pixels, box)
        # No raster of its own: the lesion's pixels, holes left out as the mask leaves them.
        assert origin == (box[0].start, box[1].start)
        np.testing.assert_array_equal(inside, pixels[box])
        np.testing.assert_array_equal(_placed(inside, origin), mask)
    assert not _mask_of([with_hole])[20, 20]


def test_without_outlines_each_region_is_a_lesion_with_no_drawn_area():
    mask = _mask_of([SQUARE, "M40,40 L50,40 L50,50 L40,50 Z"])
    found = _lesions.find_lesions(mask)
    assert found.groups == [[1], [2]] and found.areas == [[], []]
    assert found.regions(0, *found.pixels(0)) == []
    # Paths that enclose nothing are no outline.
    assert _lesions.find_lesions(mask, ["M10,10 L30,30 Z"]).areas == [[], []]


def test_an_outline_whose_first_subpath_encloses_nothing_is_read_by_the_one_that_does():
    # Its first subpath a point: the area is the square's (before, shapely refused a ring
    # of one vertex, and the SR said the outline could not be measured).
    path = "M2,2 Z " + SQUARE
    mask = _mask_of([path])
    found = _lesions.find_lesions(mask, [path])
    ((area,),) = found.areas
    assert area.equals(shapely.Polygon([(10, 10), (30, 10), (30, 30), (10, 30)]))


def test_an_outline_written_hole_first_is_read_by_its_outer_ring():
    # A saved SVG of another writer may list a region's hole before its outer ring: the
    # area was the hole's square (the first subpath that encloses any), and the DICOM SR's
    # polyline of the lesion was drawn round the hole, inside the lesion.
    hole = "M15,15 L25,15 L25,25 L15,25 Z"
    path = hole + " " + SQUARE
    mask = _mask_of([path])
    assert not mask[15:25, 15:25].any() and mask.sum() == 300
    found = _lesions.find_lesions(mask, [path])
    ((area,),) = found.areas
    assert area.equals(shapely.Polygon([(10, 10), (30, 10), (30, 30), (10, 30)]))
    pixels, box = found.pixels(0)
    ((ring, inside, origin),) = found.regions(0, pixels, box)
    assert shapely.Polygon(ring).equals(area) and inside.sum() == 300
    # Written outer ring first, it reads the same.
    assert _lesions.find_lesions(mask, [SQUARE + " " + hole]).areas == found.areas
