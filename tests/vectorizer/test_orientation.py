"""EXIF orientation is taken only where a browser takes it (audit 702, F1).

Pillow's ``getexif`` also reads XMP, ImageMagick's raw profile, an eXIf chunk after the
image data and malformed tags; Chromium shows such files as stored, and so must we.
Each case below also checks that Pillow alone reads an orientation there, so the test
would catch a return to it.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vectorizer import browser_orientation, png_to_mask, read_image_file, turn_upright

# A tall, asymmetric picture: stored (60, 40), upright after orientation 6 it is (40, 60).
STORED = np.zeros((60, 40), np.uint8)
STORED[5:20, 5:30] = 200
STORED[30:55, 10:15] = 90
STORED += np.arange(40, dtype=np.uint8)[None, :]
XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF>'
       '</x:xmpmeta>')


def _tiff(value=6, kind=3, count=1, order="<"):
    """EXIF's TIFF data with one IFD entry, the orientation tag (0x0112)."""
    head = b"II*\x00" if order == "<" else b"MM\x00*"
    field = struct.pack(order + "H", value) + b"\x00\x00" if kind == 3 else struct.pack(
        order + "I", value)
    entry = struct.pack(order + "HHI", 0x0112, kind, count) + field
    return head + struct.pack(order + "I", 8) + struct.pack(order + "H", 1) + entry + b"\0" * 4


def _jpeg(**save):
    buffer = io.BytesIO()
    Image.fromarray(STORED).save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()


def _with_app1(jpeg, tiff, after_sof=False):
    segment = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    if not after_sof:
        return jpeg[:2] + app1 + jpeg[2:]
    sof = jpeg.index(b"\xff\xc0")
    end = sof + 2 + struct.unpack(">H", jpeg[sof + 2:sof + 4])[0]
    return jpeg[:end] + app1 + jpeg[end:]


def _after_sos(jpeg, tiff):
    """``jpeg`` with an Exif APP1 between its scan header and the scan's data: libjpeg
    has stopped reading markers there, and Chromium reads no orientation from it."""
    segment = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    sos = jpeg.index(b"\xff\xda")
    end = sos + 2 + struct.unpack(">H", jpeg[sos + 2:sos + 4])[0]
    return jpeg[:end] + app1 + jpeg[end:]


def _bad_crc(png):
    at = png.index(b"eXIf")
    length = struct.unpack(">I", png[at - 4:at])[0]
    crc = at + 4 + length
    return png[:crc] + bytes(b ^ 0xFF for b in png[crc:crc + 4]) + png[crc + 4:]


def _png(**save):
    buffer = io.BytesIO()
    Image.fromarray(STORED).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _pillow_orientation(data):
    return Image.open(io.BytesIO(data)).getexif().get(0x0112, 1)


def _shape(data):
    return read_image_file(data, max_pixels=None).pixels.shape[:2]


def _long_then_short():
    """An IFD whose first orientation entry is a LONG, the second a proper SHORT."""
    entries = [struct.pack("<HHI", 0x0112, 4, 1) + struct.pack("<I", 3),
               struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<H", 6) + b"\0\0"]
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + b"".join(entries) + b"\0" * 4


def test_a_proper_exif_orientation_turns_the_picture_as_browsers_do():
    for order in "<>":
        data = _with_app1(_jpeg(), _tiff(order=order))
        assert browser_orientation(data) == 6 and _shape(data) == (40, 60)
    # As Chromium (checked against it, audit 709): Exif after the frame header but before
    # the scan, stray bytes before the segment, "Exif\0" with any next byte, and a
    # proper entry after a malformed one all turn the picture.
    jpeg = _jpeg()
    late = _with_app1(jpeg, _tiff(), after_sof=True)
    stray = jpeg[:2] + _with_app1(b"\xff\xd8" + b"\x00\x00\x00", _tiff())[2:] + jpeg[2:]
    odd_null = _with_app1(jpeg, _tiff()).replace(b"Exif\x00\x00", b"Exif\x00\xff", 1)
    for data in (late, stray, odd_null, _with_app1(jpeg, _long_then_short())):
        assert browser_orientation(data) == 6 and _shape(data) == (40, 60)
    assert browser_orientation(_png(exif=_long_then_short())) == 6
    png = _png(exif=_tiff())
    assert png.index(b"eXIf") < png.index(b"IDAT")
    assert browser_orientation(png) == 6 and _shape(png) == (40, 60)
    upright = read_image_file(png, max_pixels=None).pixels
    np.testing.assert_array_equal(upright, np.rot90(STORED, -1))  # 90 degrees clockwise


@pytest.mark.parametrize("name", ["xmp jpeg", "xmp png", "raw profile png", "exif after idat",
                                  "long type", "count 2", "app1 after sos", "value 9",
                                  "exif bad crc"])
def test_orientation_that_browsers_ignore_leaves_the_picture_as_stored(name):
    iend = _png().rindex(b"IEND") - 4
    from PIL.PngImagePlugin import PngInfo

    raw = PngInfo()
    hexed = (b"Exif\x00\x00" + _tiff()).hex()
    raw.add_text("Raw profile type exif", f"\nexif\n{len(hexed) // 2:8d}\n{hexed}\n", zip=True)
    xmp_png = PngInfo()
    xmp_png.add_itxt("XML:com.adobe.xmp", XMP)
    data = {
        "xmp jpeg": lambda: _jpeg(xmp=XMP.encode()),
        "xmp png": lambda: _png(pnginfo=xmp_png),
        "raw profile png": lambda: _png(pnginfo=raw),
        "exif after idat": lambda: _png()[:iend] + _chunk(b"eXIf", _tiff()) + _png()[iend:],
        "long type": lambda: _with_app1(_jpeg(), _tiff(kind=4)),
        "count 2": lambda: _with_app1(_jpeg(), _tiff(count=2)),
        "app1 after sos": lambda: _after_sos(_jpeg(), _tiff()),
        "exif bad crc": lambda: _bad_crc(_png(exif=_tiff())),
        "value 9": lambda: _with_app1(_jpeg(), _tiff(value=9)),
    }[name]()
    if name not in ("value 9", "exif bad crc", "app1 after sos"):
        assert _pillow_orientation(data) == 6  # what the reader used to follow
    assert browser_orientation(data) == 1
    if name == "app1 after sos":
        return  # inside the scan's data: the picture itself is damaged by it
    read = read_image_file(data, max_pixels=None)
    assert read.orientation == 1 and read.pixels.shape[:2] == (60, 40)


def test_an_exif_chunk_before_the_header_is_not_read():
    png = _png()
    exif = _chunk(b"eXIf", _tiff())
    assert browser_orientation(png[:8] + exif + png[8:]) == 1  # browsers refuse the file


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"\xff\xd8\xff\xe1\x00\x01",
                                  b"\x89PNG\r\n\x1a\n\x00\x00\x00\x04eXIfII*\x00",
                                  b"GIF89a", b"\xff\xd8\xff\xe1\x00\x0cExif\x00\x00MM\x00*"])
def test_truncated_or_foreign_data_is_orientation_1(data):
    assert browser_orientation(data) == 1


def test_a_truncated_ifd_is_orientation_1():
    tiff = _tiff()
    assert browser_orientation(_with_app1(_jpeg(), tiff[:14])) == 1
    assert browser_orientation(_with_app1(_jpeg(), tiff[:4] + struct.pack("<I", 4000))) == 1


def test_a_mask_png_follows_the_same_rule_as_its_image():
    mask = np.zeros((60, 40), np.uint8)
    mask[5:20, 5:30] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG", exif=_tiff())
    assert png_to_mask(buffer.getvalue()).shape == (40, 60)
    plain = io.BytesIO()
    Image.fromarray(mask).save(plain, format="PNG")
    data = plain.getvalue()
    iend = data.rindex(b"IEND") - 4
    late = data[:iend] + _chunk(b"eXIf", _tiff()) + data[iend:]
    assert _pillow_orientation(late) == 6
    assert png_to_mask(late).shape == (60, 40)


def test_turn_upright_matches_pillows_transpose_for_every_orientation():
    from PIL import ImageOps

    image = Image.fromarray(STORED)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        tagged = Image.open(io.BytesIO(_png(exif=exif.tobytes())))
        tagged.load()
        expected = np.asarray(ImageOps.exif_transpose(tagged))
        np.testing.assert_array_equal(np.asarray(turn_upright(image, orientation)), expected)


def test_the_walk_gives_up_after_a_bounded_number_of_segments():
    # Audit 709: millions of empty segments cost seconds of Python; a camera writes a
    # dozen before the scan. Past the bound the file is taken as stored.
    from vectorizer._orientation import _MAX_SEGMENTS

    comments = b"\xff\xfe\x00\x02" * (_MAX_SEGMENTS + 1)
    assert browser_orientation(_with_app1(b"\xff\xd8" + comments, _tiff())[:2]
                               + comments + _with_app1(b"\xff\xd8", _tiff())[2:]) == 1
    few = b"\xff\xfe\x00\x02" * 100
    assert browser_orientation(b"\xff\xd8" + few + _with_app1(b"\xff\xd8", _tiff())[2:]) == 6
