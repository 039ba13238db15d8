"""vectorizer.read_image_file: the one reading of an uploaded file, and why it refuses one.

The model server's and the annotation client's own tests check how each turns
these refusals into a status or a message; here are the rules themselves.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from image_samples import (
    dicom_bytes,
    grey_png_bytes,
    huge_png_bytes,
    jpeg_bytes,
    png_bytes,
    png_chunk,
    speckle_image,
    with_bad_crc,
)
from PIL import Image

from vectorizer import (
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    CorruptImage,
    ImageFileError,
    ImageTooLarge,
    UnsupportedEncoding,
    UnsupportedImage,
    UnusableImage,
    check_image_size,
    open_picture,
    read_image_file,
    sniff_image_format,
)

GREY = speckle_image(48, 64, seed=3)


def read(data: bytes, **kwargs):
    return read_image_file(data, max_pixels=kwargs.pop("max_pixels", 10**6), **kwargs)


def test_the_refusals_are_value_errors_each_with_its_message():
    kinds = (UnsupportedImage, UnsupportedEncoding, CorruptImage, ImageTooLarge, UnusableImage)
    assert all(issubclass(kind, ImageFileError) for kind in kinds)
    assert issubclass(ImageFileError, ValueError)
    assert issubclass(UnsupportedEncoding, UnsupportedImage)  # both are 415 on the server
    with pytest.raises(CorruptImage) as info:
        read(b"")
    assert info.value.message == str(info.value) == "the uploaded file is empty"


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"data": "not bytes"}, TypeError, "data"),
        ({"max_pixels": 0}, ValueError, "max_pixels"),
        ({"max_pixels": True}, ValueError, "max_pixels"),
        ({"max_pixels": 2.5}, ValueError, "max_pixels"),
        ({"formats": ("gif",)}, ValueError, "formats"),
        ({"formats": ()}, ValueError, "formats"),
        ({"formats": "png"}, ValueError, "formats"),
    ],
)
def test_the_arguments_are_checked_naming_the_parameter(kwargs, error, names):
    arguments = {"data": png_bytes(GREY), "max_pixels": 10**6} | kwargs
    with pytest.raises(error, match=names):
        read_image_file(arguments.pop("data"), **arguments)
    with pytest.raises(ValueError, match="formats"):
        open_picture(png_bytes(GREY), max_pixels=None, formats=("dicom",))


# --------------------------------------------------------------------------- formats


def test_the_format_is_read_from_the_bytes():
    assert sniff_image_format(png_bytes(GREY)) == "png"
    assert sniff_image_format(jpeg_bytes(GREY)) == "jpeg"
    assert sniff_image_format(dicom_bytes(GREY)) == "dicom"
    assert sniff_image_format(dicom_bytes(GREY, preamble=False)) == "dicom"
    assert sniff_image_format(b"\x00" * 300) is None
    assert sniff_image_format(b"") is None


def test_a_grey_png_a_jpeg_and_a_dicom_are_read_with_what_they_state():
    png = read(png_bytes(GREY))
    assert (png.format, png.mode, png.orientation, png.pixel_spacing) == ("png", "L", 1, None)
    np.testing.assert_array_equal(png.pixels, GREY)
    assert (png.width, png.height) == (64, 48)
    jpeg = read(jpeg_bytes(GREY, mode="RGB"))
    assert (jpeg.format, jpeg.mode, jpeg.pixels.shape) == ("jpeg", "RGB", (48, 64))  # neutral
    dicom = read(dicom_bytes(GREY, PixelSpacing=[0.1, 0.2]))
    assert (dicom.format, dicom.mode, dicom.pixel_spacing) == ("dicom", None, (0.1, 0.2))
    np.testing.assert_array_equal(dicom.pixels, GREY)


def test_an_exif_orientation_is_applied_and_reported():
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format="PNG", exif=exif.tobytes())
    image = read(buffer.getvalue())
    assert image.orientation == 6
    np.testing.assert_array_equal(image.pixels, np.rot90(GREY, -1))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_that_is_not_tiff_data_is_ignored_as_browsers_ignore_it(fmt):
    # A PNG's eXIf chunk of garbage was refused: "could not decode the PNG image: not a
    # TIFF file"; the same garbage in a JPEG was read, as a browser shows both.
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format=fmt, exif=b"\xde\xad\xbe\xef" * 8, quality=100)
    image = read(buffer.getvalue())
    assert image.orientation == 1 and image.pixels.shape == (48, 64)
    with pytest.raises(SyntaxError, match="not a TIFF file"):  # Pillow's own reading
        Image.open(io.BytesIO(png_bytes(GREY, exif=b"\xde\xad\xbe\xef" * 8))).getexif()


def test_a_colour_profile_is_reported_not_applied():
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format="JPEG", quality=95, icc_profile=b"profile")
    assert read(buffer.getvalue()).icc_profile
    assert not read(jpeg_bytes(GREY)).icc_profile


@pytest.mark.parametrize(
    ("data", "found", "message"),
    [
        (b"hello, I am a text file named scan.png\n" * 4, None,
         "unsupported image type: got content that is not an image we read; "
         "expected PNG, JPEG, DICOM"),
        (b"GIF89a" + bytes(40), "GIF",
         "unsupported image type: got a GIF file; expected PNG, JPEG, DICOM"),
        (b"\x00" * 300, None,
         "unsupported image type: got content that is not an image we read; "
         "expected PNG, JPEG, DICOM"),
        # Was "got a ICO file".
        (b"\x00\x00\x01\x00" + bytes(40), "ICO",
         "unsupported image type: got an ICO file; expected PNG, JPEG, DICOM"),
    ],
    ids=["text", "gif", "zeros", "ico"],
)
def test_other_content_is_unsupported_and_named_when_recognised(data, found, message):
    with pytest.raises(UnsupportedImage) as info:
        read(data)
    assert (info.value.found, info.value.message) == (found, message)


def test_a_format_not_accepted_here_is_named():
    with pytest.raises(UnsupportedImage) as info:
        open_picture(jpeg_bytes(GREY), max_pixels=10**6, formats=("png",))
    assert info.value.message == "unsupported image type: got a JPEG file; expected PNG"


# --------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("precision", [12, 16])
def test_a_jpeg_of_deep_samples_is_unsupported_with_the_reason_not_corrupt(precision):
    # Audit 802 F2: a valid 12-bit JPEG was "not valid" (400); inside a DICOM it is 415.
    data = bytearray(jpeg_bytes(GREY))
    sof = data.find(b"\xff\xc0")
    data[sof + 1], data[sof + 4] = 0xC1, precision  # SOF1, extended sequential
    with pytest.raises(UnsupportedEncoding, match=f"{precision}-bit precision") as caught:
        read(bytes(data))
    assert "8-bit JPEG" in caught.value.message


@pytest.mark.parametrize("make", [png_bytes, jpeg_bytes], ids=["png", "jpeg"])
def test_a_truncated_file_is_corrupt(make):
    data = make(speckle_image(120, 160))
    for cut in (len(data) // 2, 40, 12):
        with pytest.raises(CorruptImage, match="could not decode"):
            read(data[:cut])


def test_a_png_ending_validly_before_its_last_row_is_corrupt():
    with pytest.raises(CorruptImage) as info:
        read(grey_png_bytes(GREY, rows=30))
    assert info.value.message == (
        "could not decode the PNG image: its image data ends after 30 of its 48 rows (truncated)"
    )


@pytest.mark.parametrize("kind", [b"IDAT", b"IEND"])
def test_a_png_whose_image_data_fails_its_crc_is_corrupt(kind):
    # Pillow checks the CRC of the chunks it reads while opening, not of these;
    # libpng, so a browser, refuses a critical chunk whose CRC does not match.
    data = png_bytes(GREY)
    np.testing.assert_array_equal(read(data).pixels, GREY)
    with pytest.raises(CorruptImage) as info:
        read(with_bad_crc(data, kind))
    assert info.value.message == (
        f"could not decode the PNG image: its {kind.decode()} chunk is damaged "
        "(its CRC does not match)"
    )


def test_an_ancillary_chunk_with_a_bad_crc_is_dropped_as_libpng_drops_it():
    # Pillow refused the file for a tEXt chunk before the image data ("starts like one
    # but is not valid"; one after it, it reads unchecked); libpng only warns and drops
    # the chunk, and a browser shows the image. Both are dropped now.
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "scanner")
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format="PNG", pnginfo=info)
    before = with_bad_crc(buffer.getvalue(), b"tEXt")
    end = png_bytes(GREY).rindex(b"IEND") - 4
    text = png_chunk(b"tEXt", b"Comment\0after the image data")
    after = with_bad_crc(png_bytes(GREY)[:end] + text + png_bytes(GREY)[end:], b"tEXt")
    for data in (before, after):
        np.testing.assert_array_equal(read(data).pixels, GREY)
        assert open_picture(data, max_pixels=10**6).size == (64, 48)
    # Its CRC intact, the chunk is read; a critical chunk's CRC still counts.
    assert open_picture(buffer.getvalue(), max_pixels=10**6).info["Software"] == "scanner"
    palette = with_bad_crc(png_bytes(Image.fromarray(GREY).convert("P")), b"PLTE")
    with pytest.raises(CorruptImage):
        read(palette)


def test_a_png_signature_with_nothing_valid_after_it_is_corrupt_not_unsupported():
    with pytest.raises(CorruptImage) as info:
        read(b"\x89PNG\r\n\x1a\n" + bytes(40))
    assert info.value.message == (
        "could not decode the PNG image: it starts like one but is not valid"
    )


# --------------------------------------------------------------------------- sizes


def test_the_pixel_limit_is_read_from_the_header_with_both_sides_reported():
    with pytest.raises(ImageTooLarge) as info:
        read(png_bytes(GREY), max_pixels=3071)
    error = info.value
    assert (error.width, error.height, error.max_pixels, error.max_side) == (
        64, 48, 3071, MAX_IMAGE_SIDE)  # fmt: skip
    assert error.message == "image is 64x48 = 3072 pixels, over the limit of 3071 pixels"
    assert read(png_bytes(GREY), max_pixels=3072).width == 64
    assert read(png_bytes(GREY), max_pixels=None).width == 64


def test_a_20000_square_png_is_too_large_without_being_decoded():
    data = huge_png_bytes()
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLarge, match="20000x20000 = 400000000 pixels"):
        read(data, max_pixels=25_000_000)
    # Without a pixel limit, the side's: a strip longer than any ultrasound image.
    with pytest.raises(ImageTooLarge) as info:
        read(huge_png_bytes(MAX_IMAGE_SIDE + 1, 8), max_pixels=None)
    assert info.value.message == (
        f"image is {MAX_IMAGE_SIDE + 1}x8, over the limit of {MAX_IMAGE_SIDE} pixels a side"
    )


def test_the_size_rule():
    check_image_size(MAX_IMAGE_SIDE, 1, max_pixels=None)
    check_image_size(100, 100, max_pixels=10_000)
    with pytest.raises(ImageTooLarge):
        check_image_size(100, 101, max_pixels=10_000)
    with pytest.raises(ImageTooLarge, match="a side"):
        check_image_size(1, MAX_IMAGE_SIDE + 1, max_pixels=None)
    with pytest.raises(CorruptImage, match="invalid size 0x5"):
        check_image_size(0, 5, max_pixels=None)


def test_a_dicom_over_the_limit_is_refused_before_its_pixels_are_decoded():
    with pytest.raises(ImageTooLarge, match="64x48 = 3072 pixels"):
        read(dicom_bytes(GREY), max_pixels=100)


# --------------------------------------------------------------------------- nothing to use


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (png_bytes(np.zeros((48, 64), np.uint8)), "0"),
        (png_bytes(np.full((48, 64, 3), (10, 20, 30), np.uint8)), "(10, 20, 30)"),
        (dicom_bytes(np.full((48, 64), 7, np.uint8)), "7"),
    ],
    ids=["black-png", "rgb", "dicom"],
)
def test_a_blank_image_is_unusable(data, shown):
    with pytest.raises(UnusableImage) as info:
        read(data)
    assert info.value.message == (
        f"the image is blank: every pixel is {shown}; there is nothing to segment or classify in it"
    )


def test_a_dicom_window_that_blanks_the_image_is_named():
    with pytest.raises(UnusableImage, match="once the DICOM header's rescale and VOI window"):
        read(dicom_bytes(GREY, WindowCenter=10000, WindowWidth=10))


@pytest.mark.parametrize("shape", [(7, 64), (48, 7), (4, 4)])
def test_an_image_under_eight_pixels_a_side_is_unusable(shape):
    pixels = speckle_image(*shape, seed=1)
    with pytest.raises(UnusableImage) as info:
        read(png_bytes(pixels))
    height, width = shape
    assert info.value.message == (
        f"the image is only {width}x{height} pixels; images of at least "
        f"{MIN_IMAGE_SIDE} pixels a side are read"
    )
    assert read(png_bytes(speckle_image(8, 8, seed=1))).width == 8


def test_a_blank_or_tiny_picture_is_still_a_picture_to_open():
    # Masks are read as pictures: an empty mask is valid, and of any size.
    assert open_picture(png_bytes(np.zeros((3, 5), np.uint8)), max_pixels=100).size == (5, 3)


# --------------------------------------------------------------------------- DICOM notes


def test_what_a_dicom_header_states_and_is_ignored_comes_back_as_notes():
    values = (GREY.astype(np.uint16) * 257).astype(np.uint16)
    image = read(dicom_bytes(values, WindowCenter=128, WindowWidth=0.5,
                             PixelSpacing=[0.0, 0.1], ImagerPixelSpacing=[0.3, 0.3]))
    assert image.pixel_spacing == (0.3, 0.3)
    assert [(note.subject, note.reason) for note in image.notes] == [
        ("VOI window", "WindowWidth is 0.5; a LINEAR window's must be at least 1"),
        ("pixel spacing",
         "PixelSpacing gives 0 × 0.1 mm per pixel, not a value from 0.001 to 10 mm"),
    ]
    assert str(image.notes[0]) == (
        "ignored the DICOM VOI window: WindowWidth is 0.5; a LINEAR window's must be at least 1"
    )


def test_a_dicom_pixel_spacing_too_small_to_be_real_is_ignored():
    # PixelSpacing 1e-300 was taken: every area 0.0 mm².
    image = read(dicom_bytes(GREY, PixelSpacing=[1e-300, 1e-300],
                             ImagerPixelSpacing=[0.0005, 0.2]))
    assert image.pixel_spacing is None
    assert [note.reason for note in image.notes] == [
        "PixelSpacing gives 1e-300 × 1e-300 mm per pixel, not a value from 0.001 to 10 mm",
        "ImagerPixelSpacing gives 0.0005 × 0.2 mm per pixel, not a value from 0.001 to 10 mm",
    ]


# --------------------------------------------------------------------------- one direction


def test_reading_imports_neither_flask_nor_dash_nor_tensorflow():
    tests = Path(__file__).resolve().parents[1]
    code = (
        "import sys\n"
        f"sys.path.append({str(tests)!r})\n"
        "from image_samples import dicom_bytes, jpeg_bytes, png_bytes, speckle_image\n"
        "from vectorizer import read_image_file\n"
        "grey = speckle_image(48, 64)\n"
        "for data in (png_bytes(grey), jpeg_bytes(grey), dicom_bytes(grey)):\n"
        "    read_image_file(data, max_pixels=None)\n"
        "services = ('flask', 'dash', 'tensorflow', 'werkzeug')\n"
        "print(sorted(m for m in services if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=tests.parent)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_a_png_whose_text_is_too_large_for_pillow_is_read_without_it():
    # 2 MB of metadata text in a 4 kB zTXt chunk: Pillow refuses the file (its limit is
    # 1 MB a chunk), and the message said "not valid"; a browser shows the picture.
    import zlib

    end = png_bytes(GREY).index(b"IDAT") - 4
    text = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * 2_000_000, 9))
    data = png_bytes(GREY)[:end] + text + png_bytes(GREY)[end:]
    assert len(data) < 10_000
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):
        Image.open(io.BytesIO(data))
    np.testing.assert_array_equal(read(data).pixels, GREY)
    # A text within the limit is still read with the picture.
    small = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"scanner", 9))
    kept = open_picture(png_bytes(GREY)[:end] + small + png_bytes(GREY)[end:],
                        max_pixels=10**6)
    assert kept.info["Comment"] == "scanner"


def test_a_png_of_millions_of_chunks_is_refused_at_once():
    # Audit 711: 3.5 million empty chunks (42 MB, under the upload limit) held a server
    # worker 12-17 s in Python loops over them; a real encoder writes a few thousand.
    import struct
    import zlib

    from vectorizer import png_to_mask
    from vectorizer._pngcheck import MAX_PNG_CHUNKS

    png = png_bytes(GREY)
    at = png.index(b"IDAT") - 4
    empty = struct.pack(">I", 0) + b"tEXt" + struct.pack(">I", zlib.crc32(b"tEXt"))
    with pytest.raises(CorruptImage, match=f"more than {MAX_PNG_CHUNKS} chunks"):
        read_image_file(png[:at] + empty * 2_000_000 + png[at:], max_pixels=None)
    with pytest.raises(ValueError, match="more than"):
        png_to_mask(png[:at] + empty * (MAX_PNG_CHUNKS + 1) + png[at:])
    # Many chunks under the limit are read as before.
    assert read_image_file(png[:at] + empty * 1000 + png[at:], max_pixels=None).pixels.shape
