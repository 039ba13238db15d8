"""vectorizer.dicom_frame_to_uint8: the DICOM display rule both services share.

The services' own tests check it through their decoders (and that the two agree);
these check the rule's parts that only show here: the callback, the error type and
the shapes.
"""

import numpy as np
import pytest
from pydicom.dataset import Dataset

from vectorizer import DicomPixelError, dicom_frame_to_uint8, stretch_to_uint8


def _header(**elements):
    ds = Dataset()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 12
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


FRAME = np.arange(0, 4000, 10, dtype=np.uint16).reshape(20, 20)


def test_a_linear_window_maps_its_range_to_0_255():
    out = dicom_frame_to_uint8(FRAME, _header(WindowCenter=1000.5, WindowWidth=1001))
    assert out.dtype == np.uint8 and out.shape == FRAME.shape
    assert out[FRAME <= 500].max() == 0 and out[FRAME >= 1500].min() == 255
    middle = out[(FRAME > 600) & (FRAME < 1400)]
    assert 0 < middle.min() and middle.max() < 255


def test_an_invalid_window_is_reported_and_the_frame_stretched():
    told = []
    out = dicom_frame_to_uint8(
        FRAME, _header(WindowCenter=100, WindowWidth=0), on_ignored=told.append
    )
    np.testing.assert_array_equal(out, stretch_to_uint8(FRAME))
    assert told == ["ignored the DICOM VOI window: WindowWidth is 0; "
                    "a LINEAR window's must be at least 1"]


def test_a_window_that_is_not_a_number_is_ignored_not_refused():
    told = []
    ds = _header(WindowWidth=100)
    ds.add_new(0x00281050, "DS", None)  # WindowCenter, then made unreadable
    ds["WindowCenter"]._value = "abc"
    out = dicom_frame_to_uint8(FRAME, ds, on_ignored=told.append)
    np.testing.assert_array_equal(out, stretch_to_uint8(FRAME))
    assert len(told) == 1 and "WindowCenter" in told[0]


def test_header_errors_are_value_errors_with_the_reason():
    with pytest.raises(DicomPixelError, match="RescaleSlope is 0") as info:
        dicom_frame_to_uint8(FRAME, _header(RescaleSlope=0))
    assert isinstance(info.value, ValueError)
    with pytest.raises(DicomPixelError, match="not all finite"):
        stretch_to_uint8(np.array([[0.0, np.nan]]))


def test_monochrome1_is_the_negative_of_monochrome2():
    ds1 = _header(PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_array_equal(
        dicom_frame_to_uint8(FRAME, ds1), 255 - dicom_frame_to_uint8(FRAME, _header())
    )


def test_colour_is_scaled_by_its_bits_stored_not_its_own_range():
    rgb = np.stack([FRAME // 4, FRAME // 4, FRAME // 8], axis=-1)  # at most 999: dim 12-bit
    ds = _header(SamplesPerPixel=3, PhotometricInterpretation="RGB")
    out = dicom_frame_to_uint8(rgb, ds)
    assert out.shape == (20, 20, 3)
    np.testing.assert_array_equal(out, np.round(rgb * (255 / 4095)).astype(np.uint8))


def test_grey_data_of_the_wrong_shape_is_refused():
    with pytest.raises(DicomPixelError, match="shape"):
        dicom_frame_to_uint8(np.zeros((4, 4, 3), np.uint8), _header())


@pytest.mark.parametrize(("bits", "top"), [(1, 1), (6, 63)])
def test_fewer_bits_stored_span_black_to_white(bits, top):
    frame = (np.arange(64).reshape(8, 8) % (top + 1)).astype(np.uint8)
    out = dicom_frame_to_uint8(frame, _header(BitsStored=bits))
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_array_equal(out, np.round(frame * (255 / top)).astype(np.uint8))


def test_eight_bit_data_keeps_its_grey_levels():
    frame = np.arange(40, 104, dtype=np.uint8).reshape(8, 8)
    np.testing.assert_array_equal(dicom_frame_to_uint8(frame, _header(BitsStored=8)), frame)
    # A header that says fewer bits than the data holds is not believed.
    np.testing.assert_array_equal(dicom_frame_to_uint8(frame, _header(BitsStored=4)), frame)


def test_a_region_that_cannot_be_read_does_not_hide_the_next():
    from vectorizer import dicom_pixel_spacing

    broken, good = Dataset(), Dataset()
    for region in (broken, good):
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
    broken.PhysicalDeltaX = 0.01  # no PhysicalDeltaY
    good.PhysicalDeltaX, good.PhysicalDeltaY = 0.02, 0.015
    spacing, ignored = dicom_pixel_spacing(_header(SequenceOfUltrasoundRegions=[broken, good]))
    assert spacing == pytest.approx((0.15, 0.2))
    assert len(ignored) == 1 and "PhysicalDeltaY" in ignored[0]


def _cm_region(delta_x, delta_y, **location):
    region = Dataset()
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX, region.PhysicalDeltaY = delta_x, delta_y
    for key, value in location.items():
        setattr(region, key, value)
    return region


def test_regions_of_other_scales_give_no_spacing_and_say_why():
    # A split screen (0.12 and 0.06 mm per pixel): the first region's scale measured a
    # lesion in the second at twice its size, and the page gave no way to correct it.
    from vectorizer import dicom_pixel_spacing

    split = [_cm_region(0.012, 0.012, RegionLocationMinX0=0, RegionLocationMinY0=0),
             _cm_region(0.006, 0.006, RegionLocationMinX0=281, RegionLocationMinY0=0)]
    spacing, ignored = dicom_pixel_spacing(_header(SequenceOfUltrasoundRegions=split,
                                                   Rows=400, Columns=562))
    assert spacing is None
    assert ignored == ("the ultrasound regions give different scales (0.12 × 0.12, "
                       "0.06 × 0.06 mm per pixel, width × height): which one holds the "
                       "lesion is not known",)
    # Regions of one scale (a dual view of the same depth) agree: that scale.
    same = [_cm_region(0.008, 0.008), _cm_region(0.008, 0.008)]
    assert dicom_pixel_spacing(_header(SequenceOfUltrasoundRegions=same))[0] == (
        pytest.approx((0.08, 0.08)))


def test_a_strip_or_a_region_outside_the_image_is_no_image_scale():
    from vectorizer import dicom_pixel_spacing

    # An M-mode strip (spatial format 2) and a region placed past the image's width
    # have scales of their own, or none of the image's: the B-mode region's is taken.
    strip = _cm_region(0.002, 0.002, RegionSpatialFormat=2)
    outside = _cm_region(0.003, 0.003, RegionLocationMinX0=600, RegionLocationMinY0=0)
    bmode = _cm_region(0.008, 0.009, RegionSpatialFormat=1)
    spacing, ignored = dicom_pixel_spacing(_header(
        SequenceOfUltrasoundRegions=[strip, outside, bmode], Rows=400, Columns=562))
    assert spacing == pytest.approx((0.09, 0.08)) and ignored == ()


@pytest.mark.parametrize(("value", "count"), [(0.1, 1), ([0.1, 0.1, 0.1], 3)],
                         ids=["one-value", "three-values"])
def test_a_pixel_spacing_of_another_number_of_values_is_said_in_words(value, count):
    # One value gave "object of type 'DSfloat' has no len()" on the radiologist's screen.
    from vectorizer import dicom_pixel_spacing

    plural = "s" if count > 1 else ""
    spacing, ignored = dicom_pixel_spacing(_header(PixelSpacing=value))
    assert spacing is None
    assert ignored == (f"PixelSpacing has {count} value{plural}; 2 are needed (row\\column)",)
    # The next source is tried.
    spacing, ignored = dicom_pixel_spacing(_header(PixelSpacing=value,
                                                   ImagerPixelSpacing=[0.2, 0.3]))
    assert spacing == pytest.approx((0.2, 0.3)) and len(ignored) == 1


def test_a_pixel_spacing_a_calibrated_region_disagrees_with_gives_no_spacing_and_says_why():
    # PixelSpacing 0.5 mm over a region calibrated at 0.1 mm: the long axis was 26.2 mm
    # where the region gave 5.2 mm, and nothing said so.
    from vectorizer import dicom_pixel_spacing

    spacing, ignored = dicom_pixel_spacing(_header(
        PixelSpacing=[0.5, 0.5], SequenceOfUltrasoundRegions=[_cm_region(0.01, 0.01)]))
    assert spacing is None
    assert ignored == ("PixelSpacing gives 0.5 × 0.5 mm per pixel (width × height) but the "
                       "ultrasound region's calibration (SequenceOfUltrasoundRegions) "
                       "0.1 × 0.1: which is right is not known",)
    # Within 1 % they agree: the header's, as before.
    spacing, ignored = dicom_pixel_spacing(_header(
        PixelSpacing=[0.1, 0.2], SequenceOfUltrasoundRegions=[_cm_region(0.02, 0.01005)]))
    assert spacing == (0.1, 0.2) and ignored == ()
    # A region without a calibration in cm, or a strip, is none to disagree with.
    spacing, _ = dicom_pixel_spacing(_header(
        PixelSpacing=[0.5, 0.5],
        SequenceOfUltrasoundRegions=[_cm_region(0.01, 0.01, RegionSpatialFormat=2)]))
    assert spacing == (0.5, 0.5)


# ------------------------------------------------------------------- memory


def _peak_bytes(convert) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        convert()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BIG = np.random.default_rng(5).integers(0, 4096, (3000, 3000)).astype(np.uint16)


@pytest.mark.parametrize("elements", [
    {}, {"WindowCenter": 2000, "WindowWidth": 3000},
    {"RescaleSlope": 0.7, "RescaleIntercept": -1024, "WindowCenter": 500, "WindowWidth": 2000},
    {"VOILUTFunction": "SIGMOID", "WindowCenter": 2000, "WindowWidth": 3000},
], ids=["stretch", "window", "rescale-and-window", "sigmoid"])
def test_a_large_sixteen_bit_frame_is_converted_without_float64_copies_of_it(elements):
    # Full float64 copies and their temporaries took about 1 GB of a 25-megapixel frame in
    # the server's worker: 24 to 32 bytes a pixel here, where float32 values and float64 blocks
    # of rows take under 8.
    peak = _peak_bytes(lambda: dicom_frame_to_uint8(BIG, _header(**elements)))
    assert peak < 8 * BIG.size


def test_values_in_float32_give_the_pixels_of_float64_within_one_grey_level():
    frame = BIG[:500]
    for elements in ({"RescaleSlope": 0.7, "RescaleIntercept": -1024},
                     {"RescaleSlope": 0.7, "RescaleIntercept": -1024, "WindowCenter": 500,
                      "WindowWidth": 2000}):
        out = dicom_frame_to_uint8(frame, _header(**elements)).astype(int)
        values = frame * 0.7 - 1024.0  # float64, as the values were before
        if "WindowCenter" in elements:
            expected = np.round(np.clip((values - 499.5) / 1999 + 0.5, 0, 1) * 255)
        else:
            expected = np.round((values - values.min()) * (255 / np.ptp(values)))
        assert np.abs(out - expected).max() <= 1
    # Without a rescale, 16-bit values are exact in float32: the same pixels.
    np.testing.assert_array_equal(
        dicom_frame_to_uint8(frame, _header()),
        np.round((frame - float(frame.min())) * (255 / float(np.ptp(frame)))).astype(np.uint8))
