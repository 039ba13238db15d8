"""Upload decoding: formats, conversions, DICOM handling and rejections (no models)."""

from __future__ import annotations

import hashlib
import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from image_samples import grey_png_bytes, png_chunk
from PIL import Image
from server_samples import (
    dicom_bytes,
    huge_png_bytes,
    jpeg_bytes,
    palette_png_bytes,
    png16_bytes,
    png_bytes,
    recompressed_dicom_bytes,
    speckle_image,
)

from model_server import decode_image, decode_mask, sniff_format
from model_server._errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType

LIMIT = 1_000_000
GREY = speckle_image(48, 64, seed=3)


def decode(data: bytes, **kwargs):
    return decode_image(data, max_pixels=kwargs.pop("max_pixels", LIMIT), **kwargs)


# --------------------------------------------------------------------------- sniffing


def test_sniff_recognises_formats_from_bytes_not_names():
    assert sniff_format(png_bytes(GREY)) == "png"
    assert sniff_format(jpeg_bytes(GREY)) == "jpeg"
    assert sniff_format(dicom_bytes(GREY)) == "dicom"
    assert sniff_format(dicom_bytes(GREY, preamble=False)) == "dicom"
    assert sniff_format(b"hello, I am a text file named scan.png\n") is None
    assert sniff_format(b"GIF89a" + b"\0" * 20) is None
    assert sniff_format(b"") is None


# --------------------------------------------------------------------------- PNG / JPEG


def test_grey_png_decodes_exactly():
    image = decode(png_bytes(GREY))
    assert image.format == "png"
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, GREY)
    assert (image.width, image.height) == (64, 48)
    assert image.pixel_spacing is None


def test_grey_stored_as_rgb_becomes_grey_and_colour_stays_rgb():
    rgb_grey = np.repeat(GREY[..., None], 3, axis=2)
    np.testing.assert_array_equal(decode(png_bytes(rgb_grey)).pixels, GREY)
    colour = rgb_grey.copy()
    colour[10:20, 10:20, 0] = 255  # a red annotation overlay
    decoded = decode(png_bytes(colour)).pixels
    assert decoded.shape == (48, 64, 3)
    np.testing.assert_array_equal(decoded, colour)


def test_sixteen_bit_png_is_scaled_not_clipped():
    # Pillow's own I;16 -> L conversion clips everything above 255 to white.
    decoded = decode(png16_bytes(GREY)).pixels
    np.testing.assert_array_equal(decoded, GREY)


def test_sixteen_bit_png_full_range():
    ramp = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    decoded = decode(png_bytes(Image.fromarray(ramp))).pixels
    assert decoded.min() == 0 and decoded.max() == 255
    assert np.all(np.diff(decoded.astype(int).ravel()[:64]) >= 0)


def test_a_sixteen_bit_png_of_fewer_bits_is_scaled_by_the_depth_that_holds_it():
    # 12-bit data (0..4095) divided by 257 came out 0..16: an almost black picture the
    # model outlined as one large lesion.
    twelve = (GREY.astype(np.int64) * 4095 // 255).astype(np.uint16)
    decoded = decode(png_bytes(Image.fromarray(twelve))).pixels
    assert np.abs(decoded.astype(int) - GREY).max() <= 1
    assert decoded.max() == GREY.max()
    # Ten bits: scaled by 255 / 1023, to the nearest step.
    ten = np.array([[0, 1, 511, 512, 1023, 700]], np.uint16)
    decoded = decode(png_bytes(Image.fromarray(np.tile(ten, (8, 2))))).pixels
    np.testing.assert_array_equal(decoded[0, :6], [0, 0, 127, 128, 255, 174])
    # An 8-bit image expanded to 16 bits stays exact even when it is dark (its largest
    # value, 60 * 257, fits in 14 bits).
    dark = (GREY // 5).astype(np.uint16) * 257
    np.testing.assert_array_equal(decode(png_bytes(Image.fromarray(dark))).pixels, GREY // 5)


def test_palette_png_converts_through_its_palette():
    np.testing.assert_array_equal(decode(palette_png_bytes(GREY)).pixels, GREY)
    colour = Image.fromarray(np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) % 4, mode="I")
    palette = Image.new("P", (64, 48))
    palette.putdata(np.asarray(colour).ravel().tolist())
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    decoded = decode(png_bytes(palette)).pixels
    assert decoded.shape == (48, 64, 3)
    np.testing.assert_array_equal(decoded[0, 1], [255, 0, 0])


def test_alpha_and_one_bit_pngs():
    la = Image.merge("LA", [Image.fromarray(GREY), Image.new("L", (64, 48), 128)])
    np.testing.assert_array_equal(decode(png_bytes(la)).pixels, GREY)
    rgba = Image.fromarray(np.dstack([GREY] * 3 + [np.full_like(GREY, 200)]), mode="RGBA")
    np.testing.assert_array_equal(decode(png_bytes(rgba)).pixels, GREY)
    bits = Image.fromarray(GREY > 60).convert("1")
    np.testing.assert_array_equal(decode(png_bytes(bits)).pixels, np.where(GREY > 60, 255, 0))


def test_jpeg_grey_rgb_and_cmyk_decode_close_to_the_original():
    for data in (jpeg_bytes(GREY), jpeg_bytes(GREY, mode="RGB"), jpeg_bytes(GREY, mode="CMYK")):
        pixels = decode(data).pixels
        grey = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
        assert grey.shape == GREY.shape
        # Lossy, but a CMYK JPEG must not come back inverted or black.
        assert np.abs(grey.astype(float) - GREY).mean() < 6


def test_exif_orientation_is_applied_to_jpeg():
    image = Image.fromarray(GREY)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    decoded = decode(buffer.getvalue()).pixels
    assert decoded.shape == (64, 48)
    # Turned clockwise, as a viewer shows it; JPEG loss only, not another rotation.
    right = np.abs(decoded.astype(float) - np.rot90(GREY, -1)).mean()
    wrong = np.abs(decoded.astype(float) - np.rot90(GREY, 1)).mean()
    assert right < 6 and right < wrong / 2


# --------------------------------------------------------------------------- rejections


def test_empty_data_is_400():
    with pytest.raises(BadRequest, match="empty"):
        decode(b"")


def test_text_named_png_is_415():
    with pytest.raises(UnsupportedMediaType, match="expected PNG, JPEG, DICOM"):
        decode(b"this is not an image\n" * 10)


def test_a_12_bit_jpeg_is_415_naming_the_precision():
    # Audit 802 F2: it was 400 "it starts like one but is not valid".
    data = bytearray(jpeg_bytes(GREY))
    sof = data.find(b"\xff\xc0")
    data[sof + 1], data[sof + 4] = 0xC1, 12
    with pytest.raises(UnsupportedMediaType, match="12-bit precision"):
        decode(bytes(data))


def test_other_image_formats_are_415():
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format="GIF")
    with pytest.raises(UnsupportedMediaType):
        decode(buffer.getvalue())


@pytest.mark.parametrize("make", [png_bytes, jpeg_bytes], ids=["png", "jpeg"])
def test_truncated_files_are_400(make):
    data = make(speckle_image(120, 160))
    for cut in (len(data) // 2, 40, 12):
        with pytest.raises(BadRequest, match="could not decode"):
            decode(data[:cut])


def test_corrupt_png_data_is_400():
    data = bytearray(png_bytes(speckle_image(120, 160)))
    data[60:80] = b"\xff" * 20
    with pytest.raises(BadRequest):
        decode(bytes(data))


def test_pixel_limit_is_checked_from_the_header():
    data = png_bytes(GREY)
    with pytest.raises(PayloadTooLarge, match="64x48 = 3072 pixels"):
        decode(data, max_pixels=3071)
    assert decode(data, max_pixels=3072).width == 64


def test_20000_square_png_is_413_without_decoding():
    data = huge_png_bytes()
    assert len(data) < 1_000_000
    # Refused by the header check, or by Pillow's bomb guard when it is the stricter.
    with pytest.raises(PayloadTooLarge, match="400000000 pixels"):
        decode(data, max_pixels=25_000_000)


def test_mask_decoding_binarises_and_accepts_png_only():
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:20] = 1  # 0/1 masks are as valid as 0/255 ones
    np.testing.assert_array_equal(decode_mask(png_bytes(mask), max_pixels=LIMIT), mask > 0)
    with pytest.raises(UnsupportedMediaType):
        decode_mask(jpeg_bytes(mask * 255), max_pixels=LIMIT)


@pytest.mark.parametrize("level", [1, 2, 128, 255, 65535])
def test_sixteen_bit_mask_any_non_zero_level_is_foreground(level):
    # Scaling 16-bit values by 1/257 first (as for images) turned 1..128 into 0.
    mask = np.zeros((20, 30), np.uint16)
    mask[5:10, 5:20] = level
    decoded = decode_mask(png_bytes(Image.fromarray(mask)), max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded, mask > 0)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_mask_of_every_png_mode_agrees_with_the_vectorizer(mode):
    from vectorizer import png_to_mask

    values = np.zeros((20, 30), np.uint8)
    values[5:10, 5:20] = 1  # the faintest non-zero level
    values[12:18, 2:8] = 255
    image = Image.fromarray(values).convert(mode) if mode != "1" else Image.fromarray(values > 0)
    data = png_bytes(image)
    decoded = decode_mask(data, max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded, values > 0)
    np.testing.assert_array_equal(decoded, png_to_mask(data))


def test_a_faint_colour_mask_agrees_with_the_vectorizer():
    from vectorizer import png_to_mask

    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[5:10, 5:20] = (1, 0, 0)  # a grey conversion would round this to 0
    rgb[12:18, 2:8] = (0, 0, 255)
    data = png_bytes(Image.fromarray(rgb, "RGB"))
    decoded = decode_mask(data, max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded, rgb.max(axis=2) > 0)
    np.testing.assert_array_equal(decoded, png_to_mask(data))


def test_decompression_bomb_message_names_only_the_server_limit(monkeypatch):
    # Pillow's guard (at twice its limit) would fire before the header check and name
    # its own limit ("exceeds limit of ..."); the reader opens PNG and JPEG by their
    # plugins, so the size is read and the server's limit is the one stated.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = png_bytes(np.zeros((100, 100), np.uint8))
    with pytest.raises(PayloadTooLarge) as info:
        decode(data, max_pixels=1000)
    assert info.value.message == "image is 100x100 = 10000 pixels, over the limit of 1000 pixels"


# --------------------------------------------------------------------------- DICOM


def test_dicom_monochrome2_with_pixel_spacing():
    image = decode(dicom_bytes(GREY, PixelSpacing=[0.1, 0.2]))
    assert image.format == "dicom"
    np.testing.assert_array_equal(image.pixels, GREY)
    assert image.pixel_spacing == pytest.approx((0.1, 0.2))


def test_dicom_imager_pixel_spacing_and_ultrasound_regions():
    from pydicom.dataset import Dataset

    image = decode(dicom_bytes(GREY, ImagerPixelSpacing=[0.3, 0.3]))
    assert image.pixel_spacing == pytest.approx((0.3, 0.3))
    region = Dataset()
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = 0.01
    region.PhysicalDeltaY = 0.02
    image = decode(dicom_bytes(GREY, SequenceOfUltrasoundRegions=[region]))
    assert image.pixel_spacing == pytest.approx((0.2, 0.1))


@pytest.mark.parametrize(
    "spacing", [[1e200, 1e200], [0.1, 1e200], [10.5, 0.1], [0.0, 0.1], [-0.1, -0.1]]
)
def test_dicom_absurd_pixel_spacing_is_unknown_and_logged(spacing, caplog):
    with caplog.at_level("WARNING", logger="model_server._decode"):
        image = decode(dicom_bytes(GREY, PixelSpacing=spacing))
    np.testing.assert_array_equal(image.pixels, GREY)  # the image itself is still served
    assert image.pixel_spacing is None
    assert "PixelSpacing" in caplog.text


def test_dicom_absurd_pixel_spacing_falls_back_to_the_next_source():
    image = decode(dicom_bytes(GREY, PixelSpacing=[1e200, 1e200], ImagerPixelSpacing=[0.3, 0.3]))
    assert image.pixel_spacing == pytest.approx((0.3, 0.3))


def test_dicom_pixel_spacing_at_the_vectorizer_limit_is_kept():
    from vectorizer import MAX_PIXEL_SPACING_MM

    limit = MAX_PIXEL_SPACING_MM
    image = decode(dicom_bytes(GREY, PixelSpacing=[limit, limit]))
    assert image.pixel_spacing == pytest.approx((limit, limit))


@pytest.mark.parametrize("delta_cm", [1e300, 2.0, float("inf")])
def test_dicom_absurd_ultrasound_region_spacing_is_unknown(delta_cm, caplog):
    from pydicom.dataset import Dataset

    region = Dataset()
    region.PhysicalUnitsXDirection = 3  # cm: 2 cm per pixel is 20 mm, over the limit
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = delta_cm
    region.PhysicalDeltaY = 0.01
    with caplog.at_level("WARNING", logger="model_server._decode"):
        image = decode(dicom_bytes(GREY, SequenceOfUltrasoundRegions=[region]))
    assert image.pixel_spacing is None
    assert "SequenceOfUltrasoundRegions" in caplog.text


def test_dicom_monochrome1_is_inverted():
    image = decode(dicom_bytes(255 - GREY, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(image.pixels, GREY)


def test_dicom_first_frame_of_multiframe():
    frames = np.stack([GREY, 255 - GREY, np.zeros_like(GREY)])
    image = decode(dicom_bytes(frames))
    np.testing.assert_array_equal(image.pixels, GREY)


def test_dicom_twelve_bit_with_window():
    values = (GREY.astype(np.uint16) * 16).astype(np.uint16)  # 0..4080, 12-bit
    image = decode(
        dicom_bytes(values, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ).pixels
    assert image.dtype == np.uint8
    # Linear window over the whole 12-bit range is a division by 16, within rounding.
    assert np.abs(image.astype(int) - GREY.astype(int)).max() <= 1


def test_dicom_sixteen_bit_without_window_is_stretched():
    values = (GREY.astype(np.uint16) * 100 + 1000).astype(np.uint16)
    pixels = decode(dicom_bytes(values)).pixels
    assert pixels.min() == 0 and pixels.max() == 255
    # Monotonic mapping: the order of grey levels is kept.
    order = np.argsort(GREY.ravel(), kind="stable")
    assert np.all(np.diff(pixels.ravel()[order].astype(int)) >= 0)


def test_dicom_rgb():
    rgb = np.dstack([GREY, 255 - GREY, GREY // 2])
    pixels = decode(dicom_bytes(rgb, photometric="RGB")).pixels
    np.testing.assert_array_equal(pixels, rgb)


def test_bare_dicom_without_preamble():
    np.testing.assert_array_equal(decode(dicom_bytes(GREY, preamble=False)).pixels, GREY)


def test_dicom_without_pixel_data_is_400():
    with pytest.raises(BadRequest, match="no pixel data"):
        decode(dicom_bytes(None))


def test_truncated_dicom_is_400():
    data = dicom_bytes(speckle_image(100, 100))
    with pytest.raises(BadRequest):
        decode(data[: len(data) - 2000])


def test_dicom_pixel_limit_checked_before_decoding():
    with pytest.raises(PayloadTooLarge):
        decode(dicom_bytes(GREY), max_pixels=100)


# --------------------------------------------------------------------------- fuzzing

SEEDS = [png_bytes(GREY), jpeg_bytes(GREY), dicom_bytes(GREY), png16_bytes(GREY)]


@settings(max_examples=80, deadline=None)
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=8)), max_size=4
    ),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_corrupted_files_only_raise_client_errors(seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for position, patch in edits:
        position %= len(data)
        data[position : position + len(patch)] = patch
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        image = decode(bytes(data))
    except ApiError as exc:
        assert exc.status in (400, 413, 415)
    else:
        assert image.pixels.dtype == np.uint8 and image.pixels.ndim in (2, 3)


def test_compressed_dicoms_rle_and_jpeg_baseline():
    from pydicom.uid import JPEGBaseline8Bit, RLELossless

    np.testing.assert_array_equal(decode(recompressed_dicom_bytes(GREY, RLELossless)).pixels, GREY)
    grey = decode(recompressed_dicom_bytes(GREY, JPEGBaseline8Bit, jpeg_bytes(GREY))).pixels
    assert np.abs(grey.astype(float) - GREY).mean() < 4
    rgb = np.dstack([GREY, GREY, 255 - GREY])
    fragment = jpeg_bytes(rgb)
    colour = decode(
        recompressed_dicom_bytes(
            GREY, JPEGBaseline8Bit, fragment,
            SamplesPerPixel=3, PhotometricInterpretation="YBR_FULL_422", PlanarConfiguration=0,
        )
    ).pixels
    # Exactly what Pillow makes of the same JPEG stream: YBR -> RGB converted once.
    np.testing.assert_array_equal(colour, np.asarray(Image.open(io.BytesIO(fragment))))


def test_dicom_compression_without_a_decoder_is_415():
    from pydicom.uid import HTJ2KLossless

    data = recompressed_dicom_bytes(GREY, HTJ2KLossless, b"\xff\x4f\xff\x51" + bytes(100))
    with pytest.raises(UnsupportedMediaType, match="High-Throughput JPEG 2000"):
        decode(data)


def test_truncated_jpeg_dicom_is_400_not_415():
    from pydicom.uid import JPEGBaseline8Bit

    stream = jpeg_bytes(speckle_image(120, 160, seed=4))
    whole = recompressed_dicom_bytes(speckle_image(120, 160, seed=4), JPEGBaseline8Bit, stream)
    assert decode(whole).width == 160  # a decoder is installed: the cut is the problem
    cut = recompressed_dicom_bytes(
        speckle_image(120, 160, seed=4), JPEGBaseline8Bit, stream[: len(stream) // 3]
    )
    with pytest.raises(BadRequest, match="corrupt or truncated") as info:
        decode(cut)
    assert info.value.status == 400


@pytest.mark.parametrize("syntax_name", ["JPEGBaseline8Bit", "JPEG2000Lossless", "RLELossless"])
def test_junk_compressed_dicom_is_400_without_object_reprs(syntax_name):
    import pydicom.uid

    syntax = getattr(pydicom.uid, syntax_name)
    junk = b"\xff\xd8\xff" + bytes(range(256)) * 4 if "JPEG" in syntax_name else b"junk" * 50
    with pytest.raises(BadRequest) as info:
        decode(recompressed_dicom_bytes(GREY, syntax, junk))
    message = info.value.message
    assert "corrupt or truncated" in message
    assert "0x" not in message and "<_io" not in message and "object at" not in message
    assert "\n" not in message


def test_truncated_rle_dicom_says_truncated_not_missing():
    from pydicom.uid import RLELossless

    data = recompressed_dicom_bytes(GREY, RLELossless)
    with pytest.raises(BadRequest) as info:
        decode(data[:-1000])
    assert "truncated" in info.value.message
    assert "no pixel data" not in info.value.message


def test_unknown_transfer_syntax_is_415():
    data = recompressed_dicom_bytes(GREY, "1.2.3.4.5.6", b"anything")
    with pytest.raises(UnsupportedMediaType, match="no decoder"):
        decode(data)


def test_dicom_variant_the_installed_decoder_does_not_support_stays_415():
    # Pillow decodes 8-bit JPEG Extended only; 12-bit data is valid, just not decodable here.
    from pydicom.uid import JPEGExtended12Bit

    twelve_bit = GREY.astype(np.uint16) * 16
    data = recompressed_dicom_bytes(twelve_bit, JPEGExtended12Bit, jpeg_bytes(GREY), BitsStored=12)
    with pytest.raises(UnsupportedMediaType, match="12-bit"):
        decode(data)


# --------------------------------------------------------------------------- blank images


def _one_value(value, shape=(48, 64)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        pytest.param(png_bytes(_one_value(0)), "0", id="black-png"),
        pytest.param(png_bytes(_one_value(255)), "255", id="white-png"),
        pytest.param(png16_bytes(_one_value(128)), "128", id="16-bit-png"),
        pytest.param(png_bytes(_one_value((10, 20, 30), (48, 64, 3))), "(10, 20, 30)", id="rgb"),
        pytest.param(jpeg_bytes(_one_value(128)), "128", id="jpeg"),
        pytest.param(dicom_bytes(_one_value(7)), "7", id="dicom"),
        pytest.param(dicom_bytes(_one_value(0, (1, 1))), "0", id="one-pixel-dicom"),
    ],
)
def test_a_blank_image_is_400_naming_its_one_value(data, shown):
    # The models outlined a "malignant" lesion over a third of an all-black image.
    with pytest.raises(BadRequest) as info:
        decode(data)
    assert info.value.status == 400
    assert info.value.message == (
        f"the image is blank: every pixel is {shown}; "
        "there is nothing to segment or classify in it"
    )


@pytest.mark.parametrize("where", [(0, 0), (47, 63), (23, 37)])
def test_one_pixel_unlike_the_rest_is_nearly_blank_not_blank(where):
    # The blank check first reads a sample of the pixels; one that differs from the
    # others off the sample must still count: not "every pixel is 0", but nearly blank.
    pixels = _one_value(0)
    pixels[where] = 200
    with pytest.raises(BadRequest, match=r"nearly blank: 100.0% of its pixels are 0 \(within"):
        decode(png_bytes(pixels))
    colour = _one_value(9, (48, 64, 3))
    colour[where + (2,)] = 200
    with pytest.raises(BadRequest, match=r"nearly blank: .* are \(9, 9, 9\)"):
        decode(png_bytes(colour))


def test_a_black_frame_with_a_label_is_nearly_blank_and_a_small_scan_is_not():
    # A frame exported with the probe lifted: black, "NO SIGNAL" burned in. The models
    # drew a lesion over a third of it and called it malignant (audit helper-501, 1).
    frame = np.zeros((120, 160), np.uint8)
    frame[50:58, 40:120] = 255  # the label
    frame[(np.arange(120) * 7) % 120, np.arange(120)] = 1  # JPEG-like noise near black
    with pytest.raises(BadRequest) as info:
        decode(png_bytes(frame))
    assert info.value.status == 400 and "nearly blank: 96.7% of its pixels are 0" in str(
        info.value.message)
    # A scan on a wide black canvas, as BUSI has (at most 48 % background): read.
    speckle = np.random.default_rng(3).integers(20, 230, (120, 160), dtype=np.uint8)
    canvas = np.zeros((120, 160), np.uint8)
    canvas[40:80, 40:100] = speckle[40:80, 40:100]  # 12.5 % of the frame is scan
    np.testing.assert_array_equal(decode(png_bytes(canvas)).pixels, canvas)


def test_a_dicom_window_that_makes_every_pixel_one_value_says_so():
    # Finite and wide enough, but far above every stored value: all black.
    data = dicom_bytes(GREY, WindowCenter=10000, WindowWidth=10)
    with pytest.raises(BadRequest, match=r"blank: every pixel is 0 once the DICOM header's"):
        decode(data)


@pytest.mark.parametrize("endpoint", ["/predict", "/classify"])
def test_the_server_answers_a_blank_image_with_a_json_400(endpoint):
    # Decoding comes before the models, so an app that loads none answers it.
    from model_server import create_app

    client = create_app({"TESTING": True, "WARMUP": False}).test_client()
    response = client.post(
        endpoint, data=png_bytes(_one_value(0)), content_type="application/octet-stream"
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == {
        "code": 400,
        "message": "the image is blank: every pixel is 0; "
        "there is nothing to segment or classify in it",
    }


def test_an_empty_mask_is_still_a_mask():
    # Masks are not images to segment: all background is a valid mask.
    mask = decode_mask(png_bytes(_one_value(0)), max_pixels=LIMIT)
    assert mask.shape == (48, 64) and not mask.any()


# --------------------------------------------------------------------------- PNG cut short


def test_a_png_whose_data_ends_early_but_validly_is_400():
    # 564 bytes declaring 5000x4999: Pillow loads it without a word, rows 100 on zero.
    width, height = 5000, 4999
    stream = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(100)), 9)
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", stream)
        + png_chunk(b"IEND", b"")
    )
    assert len(data) < 1000
    with pytest.raises(BadRequest) as info:
        decode(data, max_pixels=25_000_000)
    assert info.value.message == (
        "could not decode the PNG image: its image data ends after 100 of its 4999 rows "
        "(truncated)"
    )


def test_a_textured_png_cut_after_some_rows_is_400_for_images_and_masks():
    data = grey_png_bytes(GREY, rows=30)
    with pytest.raises(BadRequest, match="ends after 30 of its 48 rows"):
        decode(data)
    with pytest.raises(BadRequest, match="ends after 30 of its 48 rows"):
        decode_mask(data, max_pixels=LIMIT)


@pytest.mark.parametrize("interlaced", [False, True], ids=["sequential", "interlaced"])
@pytest.mark.parametrize("shape", [(48, 64), (45, 61), (3, 5)])
def test_a_complete_png_with_a_black_last_row_decodes(shape, interlaced):
    # A black last row is what a cut PNG leaves too: the whole stream is then counted.
    # A mask may be of any size (3x5: Adam7 passes without pixels); an image under 8
    # pixels a side is refused anyway.
    pixels = speckle_image(*shape, seed=7)
    pixels[-1] = 0
    data = grey_png_bytes(pixels, interlaced=interlaced)
    np.testing.assert_array_equal(decode_mask(data, max_pixels=LIMIT), pixels > 0)
    if min(shape) >= 8:
        np.testing.assert_array_equal(decode(data).pixels, pixels)


def test_an_interlaced_png_cut_after_some_passes_is_400():
    # Passes 1-5 and part of 6; the seven passes of a 64x48 image hold 3162 bytes.
    data = grey_png_bytes(GREY, rows=60, interlaced=True)
    with pytest.raises(BadRequest) as info:
        decode(data)
    assert info.value.message == (
        "could not decode the PNG image: its image data ends after 1404 of its 3162 bytes "
        "(truncated)"
    )


# --------------------------------------------------------------------------- DICOM headers


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        pytest.param(
            {"RescaleSlope": "nan", "RescaleIntercept": 0},
            "the DICOM RescaleSlope is nan, not a finite number",
            id="slope-nan",
        ),
        pytest.param(
            {"RescaleSlope": 1, "RescaleIntercept": "-inf"},
            "the DICOM RescaleIntercept is -inf, not a finite number",
            id="intercept-inf",
        ),
        pytest.param(
            {"RescaleSlope": 0, "RescaleIntercept": 0},
            "the DICOM RescaleSlope is 0, which makes every pixel the same value",
            id="slope-0",
        ),
        pytest.param(
            {"RescaleSlope": "1e308", "RescaleIntercept": "1e308"},
            "the DICOM rescale (RescaleSlope 1e+308, RescaleIntercept 1e+308) "
            "takes pixel values beyond the floating-point range",
            id="overflow",
        ),
    ],
)
def test_a_dicom_rescale_that_is_not_valid_is_400(elements, message):
    # A NaN slope or a 0 slope decoded to a black image that was then segmented; the
    # standard allows neither (PS3.3 C.11.1).
    values = (GREY.astype(np.uint16) * 257).astype(np.uint16)
    with pytest.raises(BadRequest) as info:
        decode(dicom_bytes(values, **elements))
    assert info.value.message == message


@pytest.mark.parametrize(
    ("elements", "flaw"),
    [
        ({"WindowCenter": "nan", "WindowWidth": 100}, "(WindowCenter: not a number)"),
        ({"WindowCenter": 128, "WindowWidth": "inf"}, "(WindowWidth: not a number)"),
        ({"WindowCenter": 128, "WindowWidth": 0.5}, "(WindowWidth: out of range)"),
        ({"WindowCenter": 128, "WindowWidth": 0, "VOILUTFunction": "SIGMOID"},
         "(WindowWidth: out of range)"),
    ],
    ids=["center-nan", "width-inf", "linear-width-0.5", "sigmoid-width-0"],
)
def test_a_dicom_window_that_is_not_valid_is_ignored_as_the_client_ignores_it(
    elements, flaw, caplog
):
    # The pixels are sound, only the suggested view is not: the image decodes as it does
    # without a window (the annotation client shows it so), and the log says why (the
    # element and the kind of flaw, not the value).
    values = (GREY.astype(np.uint16) * 257).astype(np.uint16)
    plain = decode(dicom_bytes(values)).pixels
    with caplog.at_level("WARNING", logger="model_server._decode"):
        np.testing.assert_array_equal(decode(dicom_bytes(values, **elements)).pixels, plain)
    assert "ignored the DICOM VOI window " + flaw in caplog.text


def test_a_tiny_positive_sigmoid_window_is_legal():
    pixels = decode(
        dicom_bytes(GREY, WindowCenter=100, WindowWidth=1e-300, VOILUTFunction="SIGMOID")
    ).pixels
    np.testing.assert_array_equal(pixels, np.where(GREY > 100, 255, np.where(GREY < 100, 0, 128)))


def test_dicom_float_pixel_data_with_nan_is_400():
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    del ds.PixelData, ds.PixelRepresentation
    values = GREY.astype(np.float32)
    ds.FloatPixelData = values.tobytes()
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert decode(buffer.getvalue()).width == 64  # finite float data decodes
    values[3, 4] = np.nan
    ds.FloatPixelData = values.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(BadRequest, match="values that are not finite numbers"):
        decode(buffer.getvalue())


@pytest.mark.parametrize(
    "elements",
    [
        {"WindowCenter": "", "WindowWidth": ""},
        {"WindowCenter": [], "WindowWidth": []},
        {"WindowCenter": "", "WindowWidth": 40},
        {"RescaleSlope": "", "RescaleIntercept": ""},
    ],
    ids=["empty-window", "empty-multi-valued-window", "empty-center", "empty-rescale"],
)
def test_empty_dicom_window_and_rescale_values_count_as_absent(elements):
    # Zero-length values are legal DICOM for these elements; they gave a 400 "'NoneType'
    # object is not subscriptable".
    np.testing.assert_array_equal(decode(dicom_bytes(GREY, **elements)).pixels, GREY)


def test_dicom_rescale_is_applied_before_the_window():
    # Stored 0..255 -> modality -1024..-769; the window is in modality units and spans
    # exactly that range, so it gives the stored values back.
    data = dicom_bytes(
        GREY, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=-896, WindowWidth=256
    )
    np.testing.assert_array_equal(decode(data).pixels, GREY)


def test_ybr_dicom_with_one_sample_per_pixel_is_400_without_numpy_internals():
    data = dicom_bytes(GREY, PhotometricInterpretation="YBR_FULL")
    with pytest.raises(BadRequest) as info:
        decode(data)
    assert info.value.message == (
        "the DICOM header is inconsistent: PhotometricInterpretation YBR_FULL needs 3 "
        "samples per pixel, but SamplesPerPixel is 1"
    )


def test_dicom_with_empty_pixel_data_is_400_saying_so():
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    ds.PixelData = b""
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(BadRequest) as info:
        decode(buffer.getvalue())
    assert info.value.message == "the DICOM file's PixelData element is empty (zero length)"


def test_dicom_header_problems_are_named_not_python_errors():
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    del ds.Rows
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(BadRequest) as info:
        decode(buffer.getvalue())
    assert info.value.message == "the DICOM header is incomplete: Rows is missing or empty"
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    ds.ModalityLUTSequence = [pydicom.Dataset()]  # an item without its LUTDescriptor
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(BadRequest) as info:
        decode(buffer.getvalue())
    assert info.value.message == (
        "the DICOM ModalityLUTSequence cannot be applied: the element LUTDescriptor is missing"
    )


def test_pydicom_does_not_log_a_clients_corrupt_pixel_data_as_an_error(caplog):
    # pydicom logs each decoding plugin's failure with its traceback at ERROR; the
    # request is answered 400 and the server's own log line records it.
    from pydicom.uid import JPEGBaseline8Bit

    data = recompressed_dicom_bytes(GREY, JPEGBaseline8Bit, b"\xff\xd8\xff" + bytes(99))
    with caplog.at_level("INFO"), pytest.raises(BadRequest, match="corrupt or truncated"):
        decode(data)
    assert [r for r in caplog.records if r.name.startswith("pydicom")] == []
    # With pydicom's own logger at DEBUG (pydicom.config.debug()) they are still there.
    with caplog.at_level("DEBUG", logger="pydicom"), pytest.raises(BadRequest):
        decode(data)
    kept = [r for r in caplog.records if r.name.startswith("pydicom")]
    assert kept and {r.levelname for r in kept} == {"DEBUG"}


def _dicom_with_names_in_numbers() -> bytes:
    """A DICOM whose WindowCenter and PixelSpacing hold a patient's name, as a scanner
    operator who typed it in the wrong field would leave them."""
    data = dicom_bytes(GREY, WindowCenter="12345678", WindowWidth=400, PixelSpacing=[0.25, 0.25])
    # pydicom will not write such values: the same bytes, changed in place.
    assert b"12345678" in data and b"0.25\\0.25 " in data
    return data.replace(b"12345678", b"JANE^DOE").replace(b"0.25\\0.25 ", b"DOE^JANE\\1")


def test_ignored_dicom_values_are_logged_by_element_never_by_value(caplog):
    data = _dicom_with_names_in_numbers()
    with caplog.at_level("WARNING", logger="model_server._decode"):
        image = decode(data)
    assert image.pixel_spacing is None  # both were ignored, and the image still served
    sha = hashlib.sha256(data).hexdigest()[:12]
    assert f"image {sha}: ignored the DICOM VOI window (WindowCenter: not a number)" in caplog.text
    assert f"image {sha}: ignored the DICOM pixel spacing (PixelSpacing: unreadable)" in caplog.text
    assert "JANE" not in caplog.text and "DOE" not in caplog.text


def test_logged_notes_name_the_element_and_the_flaw_of_every_note_the_reader_gives():
    from model_server._decode import logged_note
    from vectorizer import ImageNote

    cases = {
        ("VOI window", "WindowWidth is 0; a LINEAR window's must be at least 1"):
            "ignored the DICOM VOI window (WindowWidth: out of range)",
        ("VOI window", "WindowCenter is nan, not a finite number"):
            "ignored the DICOM VOI window (WindowCenter: not a number)",
        ("pixel spacing", "ImagerPixelSpacing gives 0 × 0 mm per pixel, not a value from "
                          "0.001 to 10 mm"):
            "ignored the DICOM pixel spacing (ImagerPixelSpacing: out of range)",
        ("pixel spacing", "the ultrasound regions cannot be read (JANE^DOE)"):
            "ignored the DICOM pixel spacing (SequenceOfUltrasoundRegions: unreadable)",
        ("pixel spacing", "the ultrasound region's PhysicalDeltaY/X "
                          "(SequenceOfUltrasoundRegions) gives 20 × 0.1 mm per pixel, not a "
                          "value from 0.001 to 10 mm"):
            "ignored the DICOM pixel spacing "
            "(PhysicalDeltaY, SequenceOfUltrasoundRegions: out of range)",
        ("a subject 'DOE'", "'JANE^DOE'"): "ignored the DICOM header (an element: not usable)",
    }
    for (subject, reason), expected in cases.items():
        assert logged_note(ImageNote(subject, reason)) == expected
