import base64
import hashlib
import io
import time
import zlib

import numpy as np
import pydicom
import pytest
from image_samples import dicom_bytes, palette_png_bytes, progressive_jpeg, speckle_image
from PIL import Image
from pydicom.dataset import Dataset

from annotation_client import ImageDecodeError, decode_image, parse_data_url


def _png(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _gradient(h=20, w=30):
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


def _dicom(pixels, *, spacing=None, regions_cm=None, photometric="MONOCHROME2"):
    """A DICOM of ``pixels`` (``(frames, rows, cols)`` for several frames), with a pixel
    spacing in mm or an ultrasound region calibrated in cm, ``(delta_x, delta_y)``."""
    elements = {}
    if spacing:
        elements["PixelSpacing"] = list(spacing)
    if regions_cm:
        region = Dataset()
        region.PhysicalUnitsXDirection = 3
        region.PhysicalUnitsYDirection = 3
        region.PhysicalDeltaX, region.PhysicalDeltaY = regions_cm
        elements["SequenceOfUltrasoundRegions"] = [region]
    return dicom_bytes(pixels, photometric=photometric, **elements)


def test_grey_png_keeps_pixels_and_reports_size_and_hash():
    pixels = _gradient()
    data = _png(pixels)
    image = decode_image(data, "scan.png")
    assert image.kind == "png"
    assert (image.width, image.height) == (30, 20)
    np.testing.assert_array_equal(image.pixels, pixels)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.pixel_spacing_mm is None
    # The browser is shown the uploaded PNG itself, no re-encoding.
    assert image.display_uri == "data:image/png;base64," + base64.b64encode(data).decode()
    meta = image.meta()
    assert meta["size_bytes"] == len(data) and meta["name"] == "scan.png"


def test_rgb_png_and_jpeg():
    rgb = np.stack([_gradient(), _gradient()[::-1], _gradient()], axis=-1)
    assert decode_image(_png(rgb), "c.png").pixels.shape == (20, 30, 3)
    # Colour whose channels are equal everywhere is grey, as the model server reads it.
    neutral = np.stack([_gradient()] * 3, axis=-1)
    assert decode_image(_png(neutral), "c.png").pixels.shape == (20, 30)
    buffer = io.BytesIO()
    Image.fromarray(_gradient()).save(buffer, format="JPEG", quality=95)
    image = decode_image(buffer.getvalue(), "x.jpg")
    assert image.kind == "jpeg" and image.pixels.shape == (20, 30)
    assert image.display_uri.startswith("data:image/jpeg;base64,")


def _shown(image):
    """The pixels a browser gets from ``image.display_uri``, as Pillow decodes them."""
    header, _, payload = image.display_uri.partition(",")
    assert header in ("data:image/png;base64", "data:image/jpeg;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))


def test_full_range_sixteen_bit_png_is_divided_by_257_as_the_model_server_does():
    from model_server import decode_image as server_decode

    values = (np.arange(600).reshape(20, 30) * 109).astype(np.uint16)  # up to 65291
    data = _png(values)
    image = decode_image(data, "deep.png")
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, (values.astype(int) + 128) // 257)
    np.testing.assert_array_equal(image.pixels, server_decode(data, max_pixels=10**6).pixels)
    # An 8-bit image expanded to 16 bits (v * 257) comes back exactly.
    full = np.arange(256, dtype=np.uint16).reshape(16, 16)
    np.testing.assert_array_equal(decode_image(_png(full * 257), "x.png").pixels, full)


def test_twelve_bit_data_in_a_sixteen_bit_png_is_scaled_by_its_own_depth():
    # 12-bit data (0..4095), as an ultrasound export may store it in a 16-bit PNG: the
    # smallest depth that holds it is 12 bits, so 4095 is white, not 4095/257 = 16.
    values = np.arange(0, 4096, 7, dtype=np.uint16)[:576].reshape(24, 24)
    values[0, 0] = 4095
    image = decode_image(_png(values), "twelve.png")
    expected = np.rint(values * (255 / 4095)).astype(np.uint8)
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.pixels.max() == 255
    # The browser is shown those pixels, not the raw 16-bit file (nearly black there).
    np.testing.assert_array_equal(_shown(image), image.pixels)


@pytest.mark.parametrize("kind", ["twelve-bit", "ten-bit", "full-range", "dark-expanded",
                                  "expanded", "low"])
def test_a_sixteen_bit_png_shows_the_pixels_the_model_server_decodes(kind):
    # What the radiologist sees must be what the model is given; the two services
    # decode separately, so one rule is checked on both.
    from model_server._decode import decode_image as server_decode

    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (24, 32))
    values = {
        "twelve-bit": rng.integers(0, 4096, (24, 32)),
        "ten-bit": rng.integers(0, 1024, (24, 32)),
        "full-range": rng.integers(0, 65536, (24, 32)),
        "dark-expanded": (grey // 4) * 257,  # an 8-bit image of at most 63, expanded
        "expanded": grey * 257,
        "low": grey,
    }[kind].astype(np.uint16)
    data = _png(values)
    client = decode_image(data, "scan.png").pixels
    np.testing.assert_array_equal(client, server_decode(data, max_pixels=10**6).pixels)
    if kind in ("dark-expanded", "expanded"):
        np.testing.assert_array_equal(client, values // 257)


def test_sixteen_bit_values_that_fit_in_eight_bits_are_kept():
    values = np.arange(600, dtype=np.uint16).reshape(20, 30) % 200
    image = decode_image(_png(values), "low.png")
    np.testing.assert_array_equal(image.pixels, values.astype(np.uint8))


def _png_chunks(array, *chunks, mode=None):
    """A PNG of ``array`` with raw ``(type, payload)`` chunks added after IHDR."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for kind, payload in chunks:
        info.add(kind, payload)
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _png_saved(array, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _grey_rgba(alpha):
    grey = np.full((20, 30), 168, np.uint8)
    grey[5:15, 10:20] = 40  # a dark "lesion"
    return np.dstack([grey, grey, grey, np.full_like(grey, alpha)])


def test_an_rgba_png_is_shown_as_its_pixels_without_alpha():
    # With alpha 128 a browser would blend the picture into the page's dark background.
    rgba = _grey_rgba(128)
    image = decode_image(_png(rgba), "rgba.png")
    np.testing.assert_array_equal(image.pixels, rgba[..., 0])  # grey: the channels are equal
    np.testing.assert_array_equal(_shown(image), image.pixels)


def _jpeg_with(array, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, **options)
    return buffer.getvalue()


def _cmyk_jpeg():
    buffer = io.BytesIO()
    Image.fromarray(_grey_rgba(255)[..., :3]).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_png(_grey_rgba(0)[..., [0, 3]], "LA"), id="grey+alpha"),
        pytest.param(_png_chunks(_gradient(), (b"gAMA", (100000).to_bytes(4, "big"))),
                     id="gamma"),
        pytest.param(_png_chunks(_gradient(), (b"sRGB", b"\x00")), id="srgb"),
        pytest.param(_png_chunks(_gradient(), (b"cICP", bytes([9, 16, 0, 1]))), id="cicp"),
        pytest.param(_png_saved(_gradient(), transparency=5), id="grey-trns"),
        pytest.param(_png_saved(np.dstack([_gradient()] * 3), transparency=(5, 5, 5)),
                     id="rgb-trns"),
        pytest.param(_png_saved(_gradient(), icc_profile=b"not applied"),
                     id="icc"),
        pytest.param(palette_png_bytes(_gradient()), id="palette"),
        pytest.param(_cmyk_jpeg(), id="cmyk-jpeg"),
        pytest.param(_jpeg_with(_gradient(), icc_profile=b"not applied by pillow"),
                     id="jpeg-icc"),
    ],
)
def test_what_a_browser_would_show_otherwise_is_shown_as_the_decoded_pixels(data):
    image = decode_image(data, "scan")
    assert not image.display_uri.endswith(base64.b64encode(data).decode())
    np.testing.assert_array_equal(_shown(image), image.pixels)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_png(_gradient()), id="grey-png"),
        pytest.param(_png(np.dstack([_gradient(), _gradient()[::-1], _gradient()])), id="rgb-png"),
        pytest.param(_png_chunks(_gradient(), (b"tEXt", b"Software\x00scanner"),
                                 (b"pHYs", bytes(9))), id="png-with-text"),
        pytest.param(_jpeg_with(_gradient()), id="grey-jpeg"),
        pytest.param(_jpeg_with(np.dstack([_gradient(), _gradient()[::-1], _gradient()])),
                     id="colour-jpeg"),
    ],
)
def test_a_plain_png_or_jpeg_is_shown_as_uploaded(data):
    # A browser shows these as the very pixels decoded (checked in Chromium for JPEG):
    # no re-encoding, which costs more than the decoding itself.
    image = decode_image(data, "scan")
    assert image.display_uri.endswith("," + base64.b64encode(data).decode())
    np.testing.assert_array_equal(_shown(image), image.pixels)


def test_a_png_turned_by_its_exif_chunk_opens_upright_as_the_model_server_sees_it():
    from model_server import decode_image as server_decode

    pixels = np.zeros((40, 60), np.uint8)
    pixels[:10, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif.tobytes())
    data = buffer.getvalue()
    image = decode_image(data, "turned.png")
    np.testing.assert_array_equal(image.pixels, server_decode(data, max_pixels=10**6).pixels)
    assert image.pixels.shape == (60, 40)
    np.testing.assert_array_equal(_shown(image), image.pixels)


def test_dicom_first_frame_with_pixel_spacing():
    frames = np.stack([_gradient(), 255 - _gradient()])
    data = _dicom(frames, spacing=(0.1, 0.2))
    image = decode_image(data, "us.dcm")
    assert image.kind == "dicom"
    assert image.pixel_spacing_mm == (0.1, 0.2)
    np.testing.assert_array_equal(image.pixels, _gradient())
    assert image.display_uri.startswith("data:image/png;base64,")
    # Said: the outline is the first frame's (a cine loop was annotated on frame 1
    # without a word).
    assert image.notes == ("This DICOM holds 2 frames: the first is shown, outlined and "
                           "saved.",)
    assert decode_image(_dicom(_gradient(), spacing=(0.1, 0.2)), "us.dcm").notes == ()


def test_dicom_ultrasound_region_calibration_in_cm():
    image = decode_image(_dicom(_gradient(), regions_cm=(0.02, 0.015)), "noext")
    assert image.pixel_spacing_mm == pytest.approx((0.15, 0.2))


def test_dicom_monochrome1_is_inverted():
    pixels = _gradient()
    image = decode_image(_dicom(pixels, photometric="MONOCHROME1"), "m1.dcm")
    np.testing.assert_array_equal(image.pixels, 255 - pixels)


@pytest.mark.parametrize(
    ("data", "name", "match"),
    [
        (b"", "empty.png", "empty"),
        (b"hello, I am text", "notes.txt", "not a PNG, JPEG or DICOM"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "broken.png", "not a PNG|damaged"),
        (b"\x00" * 300, "fake.dcm", "DICOM"),
    ],
)
def test_bad_files_raise_a_readable_error(data, name, match, caplog):
    with caplog.at_level("INFO", logger="annotation_client._imageio"):
        with pytest.raises(ImageDecodeError, match=match):
            decode_image(data, name)
    # Logged for the operator, by the file's hash, never by its name.
    logged = [r.getMessage() for r in caplog.records if r.name == "annotation_client._imageio"]
    assert len(logged) == 1 and "refused" in logged[0], logged
    assert name not in logged[0]
    if data:
        assert name.rsplit(".")[0] not in logged[0]
        assert hashlib.sha256(data).hexdigest()[:12] in logged[0]


def test_other_formats_and_tiny_and_oversized_files_are_refused():
    buffer = io.BytesIO()
    Image.fromarray(_gradient()).save(buffer, format="GIF")
    with pytest.raises(ImageDecodeError, match="GIF"):
        decode_image(buffer.getvalue(), "a.gif")
    with pytest.raises(ImageDecodeError, match="pixels"):
        decode_image(_png(_gradient(4, 4)), "tiny.png")
    with pytest.raises(ImageDecodeError, match="limit"):
        decode_image(_png(_gradient()), "big.png", max_bytes=10)
    # The limit is stated in the unit of SONOTRACE_MAX_UPLOAD_MB (MiB, shown as MB).
    with pytest.raises(ImageDecodeError, match=r"is 3\.0 MB; the limit is 2 MB"):
        decode_image(b"\x89PNG" + bytes(3 * 2**20 - 4), "big.png", max_bytes=2 * 2**20)


def test_a_jpeg_of_thousands_of_scans_is_refused_before_it_is_decoded():
    # libjpeg decodes every empty scan over the whole image: about 12 s for this file.
    pixels = np.full((2048, 2048), 100, np.uint8)
    pixels[:64, :64] = 200
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="more than 500 scans"):
        decode_image(progressive_jpeg(pixels, 20_000), "scans.jpg")
    assert time.perf_counter() - start < 5.0
    # A scan script of hundreds of scans is still read.
    assert decode_image(progressive_jpeg(speckle_image(), 400), "fine.jpg").width == 200


def test_a_dicom_refused_for_its_bytes_says_so_not_its_pixel_count():
    # 100x100 is within a 10,000-pixel limit, but 16-bit RGB takes 6 bytes a pixel.
    deep = np.zeros((100, 100, 3), np.uint16)
    deep[10:40, 20:70] = 3000
    with pytest.raises(ImageDecodeError) as refused:
        decode_image(dicom_bytes(deep, photometric="RGB"), "deep.dcm", max_pixels=10_000)
    message = str(refused.value)
    assert message.startswith("deep.dcm is too large to open: the DICOM image is 100x100")
    assert "bytes" in message and "pixels are accepted" not in message


def test_a_format_named_with_a_vowel_takes_an():
    icon = io.BytesIO()
    Image.fromarray(_gradient(16, 16)).save(icon, format="ICO")
    with pytest.raises(ImageDecodeError, match="is an ICO file; open a PNG"):
        decode_image(icon.getvalue(), "logo.ico")


def _png_claiming(width, height, bit_depth=1):
    """A grey PNG whose header claims ``width`` x ``height``, with one row of pixel data.

    Enough for Pillow to read the header; decoding it would fail, so opening it
    must stop at the size.
    """
    def chunk(kind, payload):
        body = kind + payload
        return len(payload).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bit_depth, 0, 0, 0, 0])
    row = zlib.compress(bytes(1 + (width * bit_depth + 7) // 8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row)
            + chunk(b"IEND", b""))


def _jpeg_claiming(width, height):
    """A small real JPEG with its frame header patched to claim ``width`` x ``height``."""
    data = bytearray(_jpeg(_gradient(16, 16)))
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    data[frame + 5 : frame + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("make", [_png_claiming, _jpeg_claiming], ids=["png", "jpeg"])
def test_a_huge_image_is_refused_by_its_size_not_called_unreadable(make):
    # 20000 x 20000 trips Pillow's own decompression-bomb error before the size is read.
    with pytest.raises(ImageDecodeError, match=r"bomb\.\w+ is 20000x20000; images up to 8192 px"):
        decode_image(make(20000, 20000), "bomb.img")
    # 12000 x 8000 only trips Pillow's warning; refused by size too.
    with pytest.raises(ImageDecodeError, match=r"is 12000x8000; images up to 8192 px"):
        decode_image(make(12000, 8000), "wide.img")


@pytest.mark.parametrize("make", [_png_claiming, _jpeg_claiming], ids=["png", "jpeg"])
def test_an_image_over_the_model_servers_pixel_limit_is_refused_at_open(make):
    # 8000 x 8000 is within 8192 px per side, but 64 Mpx: the server would refuse it.
    message = r"big\.img is 8000x8000 \(64,000,000 pixels\); images up to 25,000,000 pixels"
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(make(8000, 8000), "big.img")
    with pytest.raises(ImageDecodeError, match=r"is 5000x5001 .*up to 25,000,000 pixels"):
        decode_image(make(5000, 5001), "big.img")
    with pytest.raises(ImageDecodeError, match=r"\(5,001 pixels\); images up to 5,000 pixels"):
        decode_image(make(5001, 1), "big.img", max_pixels=5000)


def test_the_pixel_limit_is_the_one_given():
    pixels = _gradient()  # 30 x 20 = 600 pixels
    assert decode_image(_png(pixels), "x.png", max_pixels=600).width == 30
    assert decode_image(_png(pixels), "x.png", max_pixels=None).width == 30
    with pytest.raises(ImageDecodeError, match=r"x\.png is 30x20 \(600 pixels\)"):
        decode_image(_png(pixels), "x.png", max_pixels=599)
    with pytest.raises(ImageDecodeError, match=r"30x20 \(600 pixels\); images up to 599"):
        decode_image(_dicom(pixels), "x.dcm", max_pixels=599)
    for bad in (0, -1, 2.5, True, "600"):
        with pytest.raises(ValueError, match="max_pixels"):
            decode_image(_png(pixels), "x.png", max_pixels=bad)


def test_data_url_round_trip_and_errors():
    data = _png(_gradient())
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert parse_data_url(url) == data
    for bad in ("not a url", "data:image/png,rawdata", "data:image/png;base64,@@@"):
        with pytest.raises(ImageDecodeError):
            parse_data_url(bad)


def test_a_busi_image_opens(busi_dir):
    path = sorted((busi_dir / "benign").glob("benign (*).png"))[0]
    image = decode_image(path.read_bytes(), path.name)
    reference = np.asarray(Image.open(path).convert("L"))
    assert image.pixels.shape[:2] == reference.shape
    grey = image.pixels if image.pixels.ndim == 2 else np.asarray(
        Image.fromarray(image.pixels).convert("L"))
    np.testing.assert_array_equal(grey, reference)


def test_an_unreadable_spacing_value_opens_the_image_in_pixels_as_the_server_does():
    from model_server import decode_image as server_decode

    good = _dicom(_gradient(), spacing=(0.25, 0.5))
    assert decode_image(good, "good.dcm").pixel_spacing_mm == (0.25, 0.5)
    bad = good.replace(b"0.25\\0.5", b"a.25\\0.5")  # same length: only the value is broken
    image = decode_image(bad, "bad.dcm")
    assert image.pixel_spacing_mm is None
    assert any("PixelSpacing cannot be read" in note for note in image.notes)
    np.testing.assert_array_equal(image.pixels, decode_image(good, "good.dcm").pixels)
    assert server_decode(bad, max_pixels=10**7).pixel_spacing is None


@pytest.mark.parametrize("orientation", [3, 6, 2])
def test_a_rotated_jpeg_opens_upright_as_the_model_server_sees_it(orientation):
    from model_server import decode_image as server_decode

    pixels = np.zeros((40, 60), np.uint8)
    pixels[:10, :20] = 255  # a bright corner shows which way the picture is turned
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    data = buffer.getvalue()
    image = decode_image(data, "turned.jpg")
    upright = server_decode(data, max_pixels=10**6).pixels
    assert image.pixels.shape == upright.shape
    assert np.abs(image.pixels.astype(int) - upright).max() <= 1
    # ...and that is not the file's own pixel order.
    raw = np.asarray(Image.open(io.BytesIO(data)))
    assert raw.shape != upright.shape or np.abs(raw.astype(int) - upright).mean() > 20
    # The browser gets those upright pixels, not the JPEG to turn (or not) itself.
    assert image.display_uri.startswith("data:image/png;base64,")


# --------------------------------------------------------------------------- format by content


def _jpeg(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["x.dcm", "scan.DICOM", "noext"])
def test_a_png_opens_as_a_png_whatever_its_name(name):
    pixels = _gradient()
    image = decode_image(_png(pixels), name)
    assert image.kind == "png"
    np.testing.assert_array_equal(image.pixels, pixels)


def test_a_jpeg_named_dcm_opens_as_a_jpeg():
    assert decode_image(_jpeg(_gradient()), "x.dcm").kind == "jpeg"


def test_a_dicom_opens_as_a_dicom_whatever_its_name():
    pixels = _gradient()
    image = decode_image(_dicom(pixels, spacing=(0.1, 0.2)), "scan.png")
    assert image.kind == "dicom"
    np.testing.assert_array_equal(image.pixels, pixels)


def test_a_dicom_data_set_without_preamble_is_recognised_by_its_first_tag():
    pixels = _gradient()
    bare = _dicom(pixels)[132:]  # no preamble, no "DICM": starts with tag (0002,0000)
    assert bare[:2] == b"\x02\x00"
    for name in ("bare.dcm", "bare.bin"):
        image = decode_image(bare, name)
        assert image.kind == "dicom"
        np.testing.assert_array_equal(image.pixels, pixels)


def test_a_bare_data_set_without_file_meta_opens_as_the_model_server_reads_it():
    # No preamble and no group 0002 either, as some exporters write them: the
    # transfer syntax is the encoding the data set was read with.
    from model_server import decode_image as server_decode

    pixels = _gradient()
    ds = pydicom.dcmread(io.BytesIO(_dicom(pixels)))
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    bare = buffer.getvalue()
    assert bare[:2] == b"\x08\x00"  # starts with group 0008
    image = decode_image(bare, "bare.dcm")
    assert image.kind == "dicom"
    np.testing.assert_array_equal(image.pixels, pixels)
    np.testing.assert_array_equal(server_decode(bare, max_pixels=10**6).pixels, pixels)


def test_the_client_and_the_model_server_read_a_misnamed_file_alike():
    from model_server import decode_image as server_decode

    pixels = _gradient()
    data = _png(pixels)
    server = server_decode(data, max_pixels=10**6)
    client = decode_image(data, "x.dcm")
    assert (client.kind, server.format) == ("png", "png")
    np.testing.assert_array_equal(client.pixels, server.pixels)


# ------------------------------------------------------------------ DICOM windows and floats


def _with(data, **elements):
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _stretched(values):
    values = np.asarray(values, np.float64)
    return np.rint((values - values.min()) * 255.0 / (values.max() - values.min())).astype(np.uint8)


@pytest.mark.parametrize(
    ("center", "width"), [(128, -5), (128, 0), ("12345678", 0), (128, [-5, 400])]
)
def test_an_invalid_window_is_ignored_and_the_pixels_min_max_shown(center, width, caplog):
    pixels = (np.arange(20 * 30).reshape(20, 30) % 200 + 20).astype(np.uint16)
    data = _with(_dicom(pixels), WindowCenter=center, WindowWidth=width)
    # pydicom will not write a centre that is not a number; the same bytes, broken.
    data = data.replace(b"12345678", b"abcdefgh")
    with caplog.at_level("WARNING"):
        image = decode_image(data, "DOE^JANE window.dcm")
    np.testing.assert_array_equal(image.pixels, _stretched(pixels))
    # The log names the file by its hash, never by its name.
    assert f"image {hashlib.sha256(data).hexdigest()[:12]}: ignored" in caplog.text
    assert "DOE^JANE" not in caplog.text


def test_a_valid_window_is_still_applied():
    pixels = (np.arange(20 * 30).reshape(20, 30) % 200).astype(np.uint16)
    image = decode_image(_with(_dicom(pixels), WindowCenter=50, WindowWidth=20), "w.dcm")
    assert image.pixels[pixels < 39].max() == 0
    assert image.pixels[pixels > 60].min() == 255


def _float_dicom(values):
    ds = pydicom.dcmread(io.BytesIO(_dicom(np.zeros(values.shape, np.uint8))))
    del ds.PixelData
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.astype(np.float32).tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def test_float_pixel_data_opens_scaled_to_eight_bits():
    values = np.linspace(-1.5, 2.5, 20 * 30).reshape(20, 30)
    image = decode_image(_float_dicom(values), "float.dcm")
    assert image.kind == "dicom" and image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, _stretched(values.astype(np.float32)))


# --------------------------------------------------------------------------- implausible spacing


@pytest.mark.parametrize(
    "spacing", [(1e200, 1e200), (0.1, 10.5), (0.0, 0.2), (-0.1, 0.2), ("inf", 0.2), ("nan", 1)]
)
def test_an_implausible_pixel_spacing_is_unknown_with_a_note(spacing):
    data = _with(_dicom(_gradient()), PixelSpacing=list(spacing))
    image = decode_image(data, "s.dcm")
    assert image.pixel_spacing_mm is None
    assert image.meta()["pixel_spacing_mm"] is None
    assert len(image.notes) == 1 and "ignored" in image.notes[0]
    assert image.meta()["notes"] == list(image.notes)


def test_a_spacing_at_the_vectorizer_limit_is_kept():
    from vectorizer import MAX_PIXEL_SPACING_MM

    image = decode_image(_dicom(_gradient(), spacing=(MAX_PIXEL_SPACING_MM, 0.5)), "s.dcm")
    assert image.pixel_spacing_mm == (MAX_PIXEL_SPACING_MM, 0.5)
    assert image.notes == ()


def test_an_implausible_ultrasound_region_calibration_is_unknown_with_a_note():
    image = decode_image(_dicom(_gradient(), regions_cm=(1e300, 1e300)), "us.dcm")
    assert image.pixel_spacing_mm is None
    assert "PhysicalDelta" in image.notes[0]


def test_a_bad_pixel_spacing_gives_way_to_a_good_region_calibration_silently():
    data = _with(_dicom(_gradient(), regions_cm=(0.02, 0.015)), PixelSpacing=[1e200, 1e200])
    image = decode_image(data, "us.dcm")
    assert image.pixel_spacing_mm == pytest.approx((0.15, 0.2))
    assert image.notes == ()


def test_an_image_opened_with_an_ignored_spacing_can_be_measured():
    from annotation_client import summarize

    image = decode_image(_with(_dicom(_gradient()), PixelSpacing=[1e200, 1e200]), "s.dcm")
    mask = np.zeros((image.height, image.width), bool)
    mask[2:6, 3:9] = True
    summary = summarize(mask, image.meta()["pixel_spacing_mm"])
    assert summary["area_px"] == 24.0 and summary["area_mm2"] is None


# ------------------------------------------------------- DICOM: shown as the server segments


def _voi_lut(first, bits, entries):
    item = Dataset()
    item.LUTDescriptor = [len(entries), first, bits]
    item.LUTData = np.asarray(entries).astype("<u2").tobytes()
    return [item]


def _palette_elements():
    ramp = np.arange(256)
    tables = {"Red": ramp * 257, "Green": (255 - ramp) * 257, "Blue": (ramp // 2) * 257}
    elements = {}
    for colour, table in tables.items():
        elements[f"{colour}PaletteColorLookupTableDescriptor"] = [256, 0, 16]
        elements[f"{colour}PaletteColorLookupTableData"] = table.astype("<u2").tobytes()
    return elements


_RNG = np.random.default_rng(11)
_TWELVE = _RNG.integers(0, 4096, (24, 32)).astype(np.uint16)
_EIGHT = _RNG.integers(40, 200, (24, 32)).astype(np.uint8)
_RGB8 = _RNG.integers(0, 256, (24, 32, 3)).astype(np.uint8)
# Each differed between the services before they shared one rule (vectorizer._dicom).
_DICOM_VARIANTS = {
    # the window is in rescaled units: applied to stored values it shows another picture
    "rescale and window": lambda: dicom_bytes(
        _TWELVE, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1024,
        WindowCenter=1500, WindowWidth=3000,
    ),
    "VOI LUT": lambda: dicom_bytes(
        _TWELVE, bits_stored=12, VOILUTSequence=_voi_lut(0, 16, np.sqrt(np.arange(4096)) * 1000),
    ),
    "window beside a VOI LUT": lambda: dicom_bytes(
        _TWELVE, bits_stored=12, WindowCenter=2000, WindowWidth=1000,
        VOILUTSequence=_voi_lut(0, 16, np.arange(4096)[::-1] * 16),
    ),
    # the window's output does not reach its ends: not stretched to them
    "narrow image, wide window": lambda: dicom_bytes(_EIGHT, WindowCenter=128, WindowWidth=256),
    "sigmoid window": lambda: dicom_bytes(
        _TWELVE, bits_stored=12, WindowCenter=2048, WindowWidth=1024, VOILUTFunction="SIGMOID"
    ),
    "monochrome1 sixteen-bit": lambda: dicom_bytes(
        _TWELVE, photometric="MONOCHROME1", bits_stored=12
    ),
    "palette colour": lambda: dicom_bytes(
        _EIGHT, photometric="PALETTE COLOR", **_palette_elements()
    ),
    "twelve-bit colour": lambda: dicom_bytes(
        (_RGB8.astype(np.uint16) * 8), photometric="RGB", bits_stored=12
    ),
    "YBR_FULL colour": lambda: dicom_bytes(_RGB8, photometric="YBR_FULL"),
    "invalid window": lambda: dicom_bytes(_TWELVE, bits_stored=12, WindowCenter=9,
                                          WindowWidth=0.5),
}


@pytest.mark.parametrize("variant", sorted(_DICOM_VARIANTS))
def test_a_dicom_shows_the_pixels_the_model_server_segments(variant):
    from model_server import decode_image as server_decode

    data = _DICOM_VARIANTS[variant]()
    server = server_decode(data, max_pixels=10**6).pixels
    client = decode_image(data, "scan.dcm").pixels
    # The server keeps neutral colour as grey; both are the same picture then.
    if client.ndim == 3 and server.ndim == 2:
        server = np.repeat(server[..., None], 3, axis=2)
    np.testing.assert_array_equal(client, server)
    assert len(np.unique(client)) > 16  # a real picture, not a blank both agree on


def test_a_dicom_window_applies_to_rescaled_values():
    # Stored 0..4095, rescaled to -1024..7166: the window over 0..3000 shows stored
    # values below 512 black and above 2012 white.
    image = decode_image(_DICOM_VARIANTS["rescale and window"](), "scan.dcm").pixels
    assert image[_TWELVE < 500].max() == 0
    assert image[_TWELVE > 2020].min() == 255


def test_a_palette_colour_dicom_shows_its_colours():
    image = decode_image(_DICOM_VARIANTS["palette colour"](), "scan.dcm").pixels
    assert image.shape == (*_EIGHT.shape, 3)
    np.testing.assert_array_equal(image[..., 0], _EIGHT)
    np.testing.assert_array_equal(image[..., 1], 255 - _EIGHT)


def test_a_ybr_dicom_is_converted_to_rgb_once():
    image = decode_image(_DICOM_VARIANTS["YBR_FULL colour"](), "scan.dcm").pixels
    from pydicom.pixels import convert_color_space

    np.testing.assert_array_equal(image, convert_color_space(_RGB8, "YBR_FULL", "RGB"))


@pytest.mark.parametrize(
    ("elements", "says"),
    [({"RescaleSlope": 0}, "RescaleSlope is 0"),
     ({"RescaleSlope": "nan"}, "RescaleSlope is nan")],
)
def test_a_dicom_the_model_server_refuses_is_refused_at_open(elements, says):
    from model_server import decode_image as server_decode
    from model_server._errors import BadRequest

    data = dicom_bytes(_TWELVE, bits_stored=12, **elements)
    with pytest.raises(BadRequest, match=says):
        server_decode(data, max_pixels=10**6)
    with pytest.raises(ImageDecodeError, match=says):
        decode_image(data, "scan.dcm")


def test_a_refused_header_value_is_left_out_of_the_log(caplog):
    # A mis-encoded header can hold a name in a numeric element: the page says the
    # value, the log only which element and why (the log said 'JANE^DO').
    data = dicom_bytes(_TWELVE, bits_stored=12, RescaleSlope="7.12345")
    assert data.count(b"7.12345") == 1
    data = data.replace(b"7.12345", b"JANE^DO")
    with caplog.at_level("INFO", logger="annotation_client._imageio"):
        with pytest.raises(ImageDecodeError, match="JANE"):
            decode_image(data, "scan.dcm")
    logged = [r.getMessage() for r in caplog.records if r.name == "annotation_client._imageio"]
    assert len(logged) == 1 and "RescaleSlope … is not a number" in logged[0], logged
    assert "JANE" not in caplog.text


def _region(units, delta_x, delta_y):
    region = Dataset()
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = units
    region.PhysicalDeltaX, region.PhysicalDeltaY = delta_x, delta_y
    return region


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        # a region in seconds and cm/s (a Doppler strip, units 4) before the B-mode one
        ([_region(4, 0.01, 0.5), _region(3, 0.02, 0.015)], (0.15, 0.2)),
        # a negative delta: the axis runs the other way, the pixel is as large
        ([_region(3, -0.02, 0.015)], (0.15, 0.2)),
        # an implausible first calibrated region gives way to the next
        ([_region(3, 5.0, 5.0), _region(3, 0.02, 0.015)], (0.15, 0.2)),
    ],
)
def test_a_dicom_pixel_spacing_is_read_as_the_model_server_reads_it(regions, expected):
    from model_server import decode_image as server_decode

    data = dicom_bytes(_EIGHT, SequenceOfUltrasoundRegions=regions)
    assert decode_image(data, "us.dcm").pixel_spacing_mm == pytest.approx(expected)
    assert server_decode(data, max_pixels=10**6).pixel_spacing == pytest.approx(expected)


def test_ignored_dicom_values_are_logged_by_element_never_by_value(caplog):
    # A patient's name typed into WindowCenter and PixelSpacing: the page is told what
    # was ignored (its user opened the file); the log names the element and the flaw.
    pixels = (np.arange(20 * 30).reshape(20, 30) % 200 + 20).astype(np.uint16)
    data = _with(_dicom(pixels, spacing=(0.25, 0.25)), WindowCenter="12345678", WindowWidth=400)
    assert b"12345678" in data and b"0.25\\0.25 " in data
    data = data.replace(b"12345678", b"JANE^DOE").replace(b"0.25\\0.25 ", b"DOE^JANE\\1")
    with caplog.at_level("WARNING"):
        image = decode_image(data, "scan.dcm")
    assert image.pixel_spacing_mm is None
    assert any("PixelSpacing cannot be read" in note for note in image.notes)
    sha = hashlib.sha256(data).hexdigest()[:12]
    assert f"image {sha}: ignored the DICOM VOI window (WindowCenter: not a number)" in caplog.text
    assert "JANE" not in caplog.text and "DOE" not in caplog.text


def _apng(frames, default_image=False):
    buffer = io.BytesIO()
    first, *rest = [Image.fromarray(f) for f in frames]
    first.save(buffer, format="PNG", save_all=True, append_images=rest,
               default_image=default_image, duration=100)
    return buffer.getvalue()


def test_an_animated_png_says_which_frame_is_outlined_and_shows_the_browsers_first():
    upright, mirrored = _gradient(), _gradient()[:, ::-1]
    image = decode_image(_apng([upright, mirrored]), "loop.png")
    np.testing.assert_array_equal(image.pixels, upright)
    assert image.notes == ("This animated PNG has 2 frames: the first is shown, outlined "
                           "and saved.",)
    # A default image left out of the animation is never drawn by a browser, whose
    # frames are composited on a transparent canvas (audit 709): refused, not outlined.
    with pytest.raises(ImageDecodeError, match="default image is not part of its animation"):
        decode_image(_apng([upright, mirrored, upright], default_image=True), "h.png")
    # An acTL with no frame at all (no fcTL): Chromium draws it blank (audit 805 F5).
    still = io.BytesIO()
    Image.fromarray(upright).save(still, format="PNG")
    png = still.getvalue()
    actl = b"acTL" + (1).to_bytes(4, "big") + (0).to_bytes(4, "big")
    no_frame = (png[:33] + (8).to_bytes(4, "big") + actl
                + zlib.crc32(actl).to_bytes(4, "big") + png[33:])
    with pytest.raises(ImageDecodeError, match="default image is not part of its animation"):
        decode_image(no_frame, "no_frame.png")
    # The frame count is the frames the file holds, not what its acTL claims.
    data = _apng([upright, mirrored])
    at = data.index(b"acTL")
    claimed = data[:at + 4] + (100000).to_bytes(4, "big") + data[at + 8:]
    claimed = claimed[:at + 12] + zlib.crc32(claimed[at:at + 12]).to_bytes(4, "big") + \
        claimed[at + 16:]
    assert decode_image(claimed, "claims.png").notes[0].startswith(
        "This animated PNG has 2 frames")
    still = io.BytesIO()
    Image.fromarray(upright).save(still, format="PNG")
    assert decode_image(still.getvalue(), "still.png").notes == ()
