"""``find_lesions`` labels the mask within the box of its pixels and reads each outline's
labels within the outline's own reach (``_lesions._label``, ``_lesions._covered``), and
finds the very lesions it found scanning the whole image: the same labels, groups,
areas and boxes, for random outlines of fractional, pixel-centre and outside-the-image
coordinates, self-crossing and joining pieces, on masks drawn from them or not."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from annotation_client import _lesions, _shapes

SETTINGS = settings(
    max_examples=int(os.environ.get("SONOTRACE_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _whole_label(mask):
    """The labels, their count and boxes, scanning the whole image (as before)."""
    labels, count = ndimage.label(mask, structure=_lesions.EIGHT)
    return labels, count, ndimage.find_objects(labels)


def _whole_covered(labels, path):
    """The labels an outline covers, rasterised over the whole image (as before)."""
    return np.unique(labels[_shapes.paths_to_mask([path], labels.shape)])


def _whole_image_lesions(mask, outlines, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(_lesions, "_label", _whole_label)
        patched.setattr(_lesions, "_covered", _whole_covered)
        return _lesions.find_lesions(mask, outlines)


def _assert_same(mask, outlines, monkeypatch):
    fast = _lesions.find_lesions(mask, outlines)
    whole = _whole_image_lesions(mask, outlines, monkeypatch)
    assert fast.labels.dtype == whole.labels.dtype
    np.testing.assert_array_equal(fast.labels, whole.labels)
    assert fast.groups == whole.groups
    assert fast.boxes == whole.boxes
    assert [[a.wkb for a in areas] for areas in fast.areas] == [
        [a.wkb for a in areas] for areas in whole.areas]
    return fast


@st.composite
def coordinates(draw, size):
    """A coordinate on or around an image ``size`` pixels long: whole, on a pixel
    centre, within a rounding error of one, or anywhere."""
    k = draw(st.integers(-4, size + 4))
    kind = draw(st.sampled_from(["whole", "centre", "near centre", "any"]))
    if kind == "whole":
        return float(k)
    if kind == "centre":
        return k + 0.5
    if kind == "near centre":
        return k + 0.5 + draw(st.sampled_from([-1e-9, -1e-13, 1e-13, 1e-9]))
    return draw(st.floats(-4.0, size + 4.0, allow_nan=False))


@st.composite
def outlines(draw, height, width):
    """Region paths, one to four, of one or two rings of 3 to 8 vertices each (so
    self-crossing ones and holes), written as the editor writes them."""
    paths = []
    for _ in range(draw(st.integers(1, 4))):
        rings = [[(draw(coordinates(width)), draw(coordinates(height)))
                  for _ in range(draw(st.integers(3, 8)))]
                 for _ in range(draw(st.integers(1, 2)))]
        paths.append(_shapes.format_path(rings, exact=True))
    return paths


@st.composite
def cases(draw):
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    paths = draw(outlines(height, width))
    mask = _shapes.paths_to_mask(paths, (height, width))
    extra = draw(st.sampled_from(["none", "specks", "only specks"]))
    if extra != "none":
        # A mask saved with other pixels than its outlines': regions no outline covers.
        seed = draw(st.integers(0, 2**32 - 1))
        specks = np.random.default_rng(seed).random((height, width)) < 0.05
        mask = specks if extra == "only specks" else mask | specks
    return mask, paths


@SETTINGS
@given(cases())
def test_the_lesions_are_those_found_over_the_whole_image(case):
    mask, paths = case
    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_same(mask, paths, monkeypatch)


@st.composite
def one_outline(draw):
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    return (height, width), draw(outlines(height, width))[0]


@SETTINGS
@given(one_outline())
def test_an_outline_covers_the_pixels_it_covers_rasterised_over_the_whole_image(case):
    """With every pixel its own label, the labels an outline covers are its pixels."""
    (height, width), path = case
    every_pixel = np.arange(1, height * width + 1, dtype=np.int64).reshape(height, width)
    np.testing.assert_array_equal(_lesions._covered(every_pixel, path),
                                  _whole_covered(every_pixel, path))


def test_edge_cases_far_from_the_origin(monkeypatch):
    shape = (300, 400)
    square = "M350.5,250.5 L399.5,250.5 L399.5,299.5 L350.5,299.5 Z"
    cases = [
        # Touching the image's right and bottom edges, and reaching beyond them.
        ["M360,260 L400,260 L400,300 L360,300 Z"],
        ["M370.3,270.7 L420.1,265 L430,330.2 L365,310 Z"],
        # Beyond the top-left corner, and wholly outside the image.
        ["M-20.2,-10 L30.5,-5 L25,40.5 L-8,33 Z"],
        ["M-50,-50 L-10,-50 L-10,-10 Z", square],
        ["M500,10 L560,10 L560,50 Z", square],
        # A bow-tie far from the origin: its two loops rasterise apart, one lesion.
        ["M300.3,200.2 L380.7,280.9 L380.7,220.1 L300.3,260.6 Z"],
        # Two outlines joining two pieces; a hole; a ring traced out and back.
        [square, "M340,240 L360.5,240 L360.5,260.5 L340,260.5 Z"],
        ["M250,150 L350,150 L350,250 L250,250 Z M270,170 L330,170 L330,230 L270,230 Z"],
        ["M100,100 L150,150 L100,100 Z", square],
    ]
    for paths in cases:
        mask = _shapes.paths_to_mask(paths, shape)
        _assert_same(mask, paths, monkeypatch)
        _assert_same(mask, None, monkeypatch)
    # A neck narrower than a pixel, between pixel centres: one outline joins the pieces.
    pinched = ("M200,100 L220,100 L220,110.2 L240,110.2 L240,100 L260,100 L260,130 "
               "L240,130 L240,110.4 L220,110.4 L220,130 L200,130 Z")
    found = _assert_same(_shapes.paths_to_mask([pinched], shape), [pinched], monkeypatch)
    assert found.groups == [[1, 2]]
    # Nothing drawn, and a mask of no pixel at all.
    _assert_same(np.zeros(shape, dtype=bool), [square], monkeypatch)
    _assert_same(np.zeros(shape, dtype=bool), None, monkeypatch)
    _assert_same(np.ones(shape, dtype=bool), [square], monkeypatch)


def test_an_image_over_the_vectorizers_pixel_limit_is_refused_as_it_was():
    """Only a corner is rasterised, but the whole image's size is checked."""
    huge = np.broadcast_to(np.int32(0), (10_001, 10_000))  # 100,010,000 pixels, no memory
    square = "M10,10 L30,10 L30,30 L10,30 Z"
    with pytest.raises(ValueError) as whole:
        _whole_covered(huge, square)
    with pytest.raises(ValueError) as corner:
        _lesions._covered(huge, square)
    assert str(corner.value) == str(whole.value)
    assert "limit of 100000000 pixels" in str(corner.value)



def test_a_mask_of_no_row_or_column_is_refused_as_it_was():
    """The errors the whole-image scan raised, in its order: an outline's rasterisation
    refuses the size first; without one, ndimage.find_objects fails on the labels."""
    square = "M1,1 L3,1 L3,3 Z"
    for shape in [(0, 5), (5, 0), (0, 0)]:
        mask = np.zeros(shape, dtype=bool)
        side = "shape[0]" if shape[0] == 0 else "shape[1]"
        with pytest.raises(ValueError, match=rf"^{re.escape(side)} must be positive, got 0$"):
            _lesions.find_lesions(mask, [square])
        with pytest.raises(ValueError, match="^zero-size array to reduction operation"):
            _lesions.find_lesions(mask)


def test_a_12_megapixel_image_is_labelled_within_the_box_of_its_outline(monkeypatch):
    """Labelling and boxing the whole image cost about 60 ms an edit on 12 megapixels."""
    shape = (3000, 4000)
    outline = "M3500.5,2500.2 L3600.7,2510 L3590,2600.4 L3510.2,2590.9 Z"
    mask = _shapes.paths_to_mask([outline], shape)
    scanned = []

    def spy_on(real):
        def spy(array, *args, **kwargs):
            scanned.append(np.shape(array))
            return real(array, *args, **kwargs)
        return spy

    for name in ("label", "find_objects"):
        monkeypatch.setattr(_lesions.ndimage, name, spy_on(getattr(ndimage, name)))
    found = _lesions.find_lesions(mask, [outline])
    assert found.labels.shape == shape and found.groups == [[1]]
    assert scanned and all(rows <= 101 and cols <= 101 for rows, cols in scanned), scanned


# --------------------------------------------------------------------------- regions


def _whole_image_regions(found, lesion, monkeypatch):
    """``found.regions`` with each area rasterised over the whole image, and read as far
    as the canvas ``regions`` asks for."""
    real = _shapes.paths_to_mask

    def whole(paths, canvas):
        return real(paths, found.labels.shape)[: canvas[0], : canvas[1]]

    with monkeypatch.context() as patched:
        patched.setattr(_shapes, "paths_to_mask", whole)
        return found.regions(lesion, *found.pixels(lesion))


def _assert_same_regions(found, monkeypatch):
    for lesion in range(len(found.groups)):
        fast = found.regions(lesion, *found.pixels(lesion))
        whole = _whole_image_regions(found, lesion, monkeypatch)
        assert len(fast) == len(whole)
        for (ring, pixels, origin), (ring_w, pixels_w, origin_w) in zip(fast, whole,
                                                                         strict=True):
            np.testing.assert_array_equal(ring, ring_w)
            np.testing.assert_array_equal(pixels, pixels_w)
            assert origin == origin_w


@SETTINGS
@given(cases())
def test_the_regions_are_those_of_the_areas_rasterised_over_the_whole_image(case):
    mask, paths = case
    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_same_regions(_lesions.find_lesions(mask, paths), monkeypatch)


def test_an_area_right_of_the_lesions_box_keeps_the_pixel_it_rounds_into(monkeypatch):
    """A sliver between row centres, but for its vertex on the centre of pixel (25, 2):
    its edge from (28.77, 25.9) crosses row 25 at x = 2.4999999999999964 (rounded), so
    the mask has that pixel, the last column of the lesion's box, from it. Rasterised on
    a canvas cut at the box, the fill passed over the sliver (it starts at the canvas's
    last pixel centre), and the pixel went to the square: one region, not two."""
    square = "M0,20 L2.2,20 L2.2,30 L0,30 Z"
    sliver = "M2.5,25.5 L26.6,26.22 L28.77,25.9 Z"
    shape = (60, 40)
    assert np.argwhere(_shapes.paths_to_mask([sliver], shape)).tolist() == [[25, 2]]
    found = _lesions.find_lesions(_shapes.paths_to_mask([square, sliver], shape),
                                  [square, sliver])
    assert found.groups == [[1]] and len(found.areas[0]) == 2
    pixels, box = found.pixels(0)
    assert box == (slice(20, 30), slice(0, 3))
    parts = found.regions(0, pixels, box)
    assert [(inside.sum(), origin) for _ring, inside, origin in parts] == [
        (20, (20, 0)), (1, (25, 2))]
    _assert_same_regions(found, monkeypatch)
