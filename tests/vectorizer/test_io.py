"""mask_to_png / png_to_mask: 8-bit 0/255 PNGs of the image's size, any PNG mode read."""

import io

import numpy as np
import pytest
from PIL import Image

from vectorizer import mask_to_png, png_to_mask


def _png(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def test_round_trip_and_file_format():
    rng = np.random.default_rng(0)
    mask = rng.random((17, 31)) < 0.4
    data = mask_to_png(mask)
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.mode == "L" and img.size == (31, 17)
    pixels = np.asarray(img)
    assert set(np.unique(pixels)) <= {0, 255}
    np.testing.assert_array_equal(pixels == 255, mask)
    np.testing.assert_array_equal(png_to_mask(data), mask)
    assert png_to_mask(bytearray(data)).dtype == bool


def _expected():
    mask = np.zeros((5, 7), dtype=bool)
    mask[1:4, 2:6] = True
    mask[0, 0] = True
    return mask


@pytest.mark.parametrize(
    "encode",
    [
        lambda m: _png(Image.fromarray(m)),  # mode "1"
        lambda m: _png(Image.fromarray(m.astype(np.uint8))),  # 0/1 grey, as in BUSI
        lambda m: _png(Image.fromarray(m.astype(np.uint8) * 255)),
        lambda m: _png(Image.fromarray(m.astype(np.uint16) * 65535)),  # 16-bit grey
        lambda m: _png(Image.fromarray(np.dstack([m.astype(np.uint8) * 255] * 3))),
        # RGBA with a transparent background: alpha is ignored, colour decides.
        lambda m: _png(Image.fromarray(np.dstack(
            [m.astype(np.uint8) * 255] * 3 + [np.full(m.shape, 128, np.uint8)]
        ))),
        lambda m: _png(Image.fromarray(m.astype(np.uint8) * 255).convert("P")),
        lambda m: _png(Image.fromarray(m.astype(np.uint8) * 255).convert("LA")),
    ],
)
def test_png_modes_are_read_as_grey_above_zero(encode):
    np.testing.assert_array_equal(png_to_mask(encode(_expected())), _expected())


def test_mask_to_png_accepts_the_usual_encodings():
    m = _expected()
    for variant in (m, m.astype(np.uint8), m.astype(np.uint8) * 255, m.astype(float)):
        np.testing.assert_array_equal(png_to_mask(mask_to_png(variant)), m)


def test_jpeg_and_garbage_are_refused():
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(jpeg, format="JPEG")
    good = mask_to_png(_expected())
    for bad in (b"", b"not a png", jpeg.getvalue(), good[:40], good[:8] + b"\0" * 50):
        with pytest.raises(ValueError, match="data"):
            png_to_mask(bad)


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="data"):
        png_to_mask("mask.png")
    with pytest.raises(TypeError, match="data"):
        png_to_mask(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="mask"):
        mask_to_png(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="mask"):
        mask_to_png(np.array([[0, 7]]))


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_every_compress_level_writes_a_valid_png(level):
    yy, xx = np.mgrid[:120, :170]
    mask = (yy - 60) ** 2 / 40**2 + (xx - 80) ** 2 / 55**2 < 1
    data = mask_to_png(mask, compress_level=level)
    Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
    img = Image.open(io.BytesIO(data))
    assert img.mode == "L" and img.size == (170, 120)
    np.testing.assert_array_equal(np.asarray(img), np.where(mask, 255, 0))
    if level:
        # Unfiltered rows with run-length deflate: far below the 20 kB of raw pixels.
        assert len(data) < 2000


def test_compress_level_is_checked():
    with pytest.raises(ValueError, match="0..9"):
        mask_to_png(_expected(), compress_level=10)
    with pytest.raises(TypeError, match="int"):
        mask_to_png(_expected(), compress_level=1.5)


def test_a_faint_colour_is_foreground():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1, 2] = (1, 0, 0)  # grey conversion would round this to 0
    rgb[3, 4] = (0, 0, 2)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    expected = np.zeros((4, 5), bool)
    expected[1, 2] = expected[3, 4] = True
    np.testing.assert_array_equal(png_to_mask(buf.getvalue()), expected)


@pytest.mark.parametrize(
    ("mode", "build"),
    [
        ("F", lambda v: Image.fromarray(v.astype(np.float32) / 255.0, "F")),
        ("I", lambda v: Image.fromarray(v.astype(np.int32), "I")),
        ("LA", lambda v: Image.fromarray(np.dstack([v, np.full_like(v, 7)]), "LA")),
        ("RGBA", lambda v: Image.fromarray(np.dstack([0 * v, v, 0 * v, 255 - v]), "RGBA")),
        ("P", lambda v: Image.fromarray(v).convert("P")),
    ],
)
def test_image_to_mask_reads_decoded_images_by_the_same_rule(mode, build):
    from vectorizer import image_to_mask

    values = np.zeros((12, 9), np.uint8)
    values[2:5, 1:4] = 1  # the faintest level
    values[7:11, 5:8] = 200
    image = build(values)
    assert image.mode == mode
    mask = image_to_mask(image)
    assert mask.dtype == bool and mask.shape == (12, 9)
    np.testing.assert_array_equal(mask, values > 0)
    if mode not in ("F", "I"):  # PNG stores neither mode as such
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        np.testing.assert_array_equal(png_to_mask(buf.getvalue()), mask)


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "LAB", "HSV"])
def test_image_to_mask_refuses_modes_whose_zero_is_not_black(mode):
    from vectorizer import image_to_mask

    # A blank CMYK image converts to white RGB: read through RGB it was all mask.
    blank = Image.new(mode, (4, 3))
    with pytest.raises(ValueError, match=f"unsupported mask mode '{mode}'"):
        image_to_mask(blank)


def test_image_to_mask_wants_a_pillow_image():
    from vectorizer import image_to_mask

    with pytest.raises(TypeError, match="image must be a PIL.Image.Image, got ndarray"):
        image_to_mask(np.zeros((3, 3), np.uint8))


def test_a_mask_is_turned_upright_by_its_exif_orientation_as_the_server_turns_it():
    from model_server._decode import decode_mask

    mask = np.zeros((4, 6), bool)
    mask[0, :2] = True  # top-left corner, wider than tall
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    Image.fromarray(mask).convert("L").save(buffer, format="PNG", exif=exif)
    got = png_to_mask(buffer.getvalue())
    assert got.shape == (6, 4)
    np.testing.assert_array_equal(got, np.rot90(mask, -1))
    np.testing.assert_array_equal(got, decode_mask(buffer.getvalue(), max_pixels=10**6))


def test_wide_grey_images_become_eight_bit_by_the_shared_rule():
    from vectorizer import sixteen_bit_to_uint8, wide_grey_to_uint8

    twelve = (np.arange(48).reshape(6, 8) * 85).astype(np.uint16)  # 0..3995: 12-bit
    got = wide_grey_to_uint8(Image.fromarray(twelve))
    np.testing.assert_array_equal(got, sixteen_bit_to_uint8(twelve))
    signed = Image.fromarray((np.arange(48).reshape(6, 8) - 10).astype(np.int32), "I")
    assert wide_grey_to_uint8(signed).tolist()[0][:3] == [0, 5, 11]  # stretched min..max
    floats = np.linspace(-1, 3, 48, dtype=np.float32).reshape(6, 8)
    assert wide_grey_to_uint8(Image.fromarray(floats)).max() == 255
    floats[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        wide_grey_to_uint8(Image.fromarray(floats))
    assert wide_grey_to_uint8(Image.fromarray(np.zeros((6, 8), np.uint8))) is None


@pytest.mark.parametrize("side", [10_001, 13_000, 50_000])
def test_a_mask_over_the_pixel_limit_is_refused_from_its_header_with_one_limit(side):
    # Pillow's bomb checks answered first, quoting 89478485 or 178956970 pixels as the
    # limit, where the vectorizer's is 100000000: a 10001x10001 mask (100.02 MP) got
    # Pillow's words, a 9000x11000 one (99 MP) its warning as an error.
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")  # a few KB
    with pytest.raises(ValueError, match=rf"^data: PNG size {side}x{side} is above 100000000 "
                                         r"pixels$"):
        png_to_mask(buffer.getvalue())


def test_a_mask_under_the_limit_but_over_pillows_warning_is_read(monkeypatch):
    import io

    from PIL import Image

    # Pillow's own default (an app in this process may have set a smaller one: its
    # refusal at twice that is Pillow's, process-wide).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    buffer = io.BytesIO()
    Image.new("1", (9_000, 11_000)).save(buffer, format="PNG")  # 99 MP, over Pillow's 89
    mask = png_to_mask(buffer.getvalue())
    assert mask.shape == (11_000, 9_000) and not mask.any()
