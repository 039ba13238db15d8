"""vectorizer._dicomfile: a DICOM that cannot be read is unsupported or corrupt, never both.

The model server answers the first 415 and the second 400; the annotation client
used to call both "cannot decode". Its pixel rule is tests/vectorizer/test_dicom_pixels.py.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pydicom
import pytest
from image_samples import (
    deflated_dicom_bytes,
    dicom_bytes,
    jpeg_bytes,
    recompressed_dicom_bytes,
    speckle_image,
)
from PIL import Image
from pydicom.uid import (
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    RLELossless,
)

from vectorizer import (
    CorruptImage,
    ImageTooLarge,
    UnsupportedEncoding,
    UnsupportedImage,
    read_image_file,
)
from vectorizer._dicomfile import logged_note, looks_like_dicom

GREY = speckle_image(48, 64, seed=3)
JPEG_LS_START = b"\xff\xd8\xff\xf7"  # SOI, then SOF55 (JPEG-LS)
HTJ2K_START = b"\xff\x4f\xff\x51"  # SOC, then SIZ (a JPEG 2000 codestream)


def _pixel_data_vr(data: bytes, vr: bytes) -> bytes:
    """``data`` (explicit VR little endian) with its Pixel Data element's VR replaced."""
    tag = b"\xe0\x7f\x10\x00"
    at = data.rindex(tag) + len(tag)
    return data[:at] + vr + data[at + 2 :]


def read(data: bytes):
    return read_image_file(data, max_pixels=10**6)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(recompressed_dicom_bytes(GREY, "1.2.3.4.5.6", b"anything"),
                     "no decoder for this transfer syntax is installed", id="unknown-syntax"),
        # JPEG-LS has one since highdicom brought pyjpegls; High-Throughput JPEG 2000 none.
        pytest.param(recompressed_dicom_bytes(GREY, HTJ2KLossless, HTJ2K_START + bytes(99)),
                     "High-Throughput JPEG 2000", id="htj2k-without-decoder"),
        pytest.param(recompressed_dicom_bytes(GREY.astype(np.uint16) * 16, JPEGExtended12Bit,
                                              jpeg_bytes(GREY), BitsStored=12),
                     "12-bit", id="variant-the-decoder-does-not-support"),
    ],
)
def test_an_encoding_no_installed_decoder_reads_is_unsupported(data, says):
    with pytest.raises(UnsupportedEncoding, match=says):
        read(data)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(dicom_bytes(None), "the DICOM file has no pixel data", id="no-pixel-data"),
        pytest.param(recompressed_dicom_bytes(GREY, JPEGBaseline8Bit, b"\xff\xd8\xff" + bytes(99)),
                     "is corrupt or truncated", id="corrupt-jpeg"),
        pytest.param(recompressed_dicom_bytes(GREY, RLELossless)[:-1000], "truncated",
                     id="truncated-rle"),
        pytest.param(dicom_bytes(GREY)[:-2000], "less than expected", id="truncated"),
        pytest.param(dicom_bytes(GREY, RescaleSlope=0), "RescaleSlope is 0", id="slope-0"),
        # pydicom raises NotImplementedError when the element is read: was a 500.
        pytest.param(_pixel_data_vr(dicom_bytes(GREY), b"O["), "PixelData element cannot be read",
                     id="pixel-data-vr-damaged"),
        # Two values, the second empty: pydicom's decoder lookup raised TypeError, a 500.
        pytest.param(dicom_bytes(GREY).replace(b"1.2.840.10008.1.2.1\x00",
                                               b"1.2.840.10008.1.2.1\\", 1),
                     "Transfer Syntax UID is not one UID", id="two-transfer-syntaxes"),
    ],
)
def test_a_damaged_dicom_is_corrupt(data, says):
    with pytest.raises(CorruptImage, match=says) as info:
        read(data)
    assert not isinstance(info.value, UnsupportedEncoding)
    assert "0x" not in info.value.message and "\n" not in info.value.message


def test_a_dicom_is_recognised_with_or_without_its_preamble():
    assert looks_like_dicom(dicom_bytes(GREY))
    bare = dicom_bytes(GREY, preamble=False)
    assert bare[:2] == b"\x08\x00" and looks_like_dicom(bare)
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    assert looks_like_dicom(buffer.getvalue()[132:])  # no preamble, starts with (0002,0000)
    assert not looks_like_dicom(b"\x00" * 300)
    np.testing.assert_array_equal(read(bare).pixels, GREY)
    explicit = io.BytesIO()
    pydicom.dcmwrite(explicit, pydicom.Dataset(ds), implicit_vr=False, little_endian=True)
    assert explicit.getvalue()[:2] == b"\x08\x00" and explicit.getvalue()[4:6].isupper()
    assert looks_like_dicom(explicit.getvalue())
    np.testing.assert_array_equal(read(explicit.getvalue()).pixels, GREY)


def test_a_dicom_with_its_magic_but_no_preamble_is_read():
    """Some writers keep "DICM" and drop the 128 bytes before it."""
    magic_first = dicom_bytes(GREY)[128:]
    assert magic_first[:4] == b"DICM" and looks_like_dicom(magic_first)
    np.testing.assert_array_equal(read(magic_first).pixels, GREY)
    # The magic alone, or before something that is no file meta group, is no DICOM.
    assert not looks_like_dicom(b"DICM")
    assert not looks_like_dicom(b"DICM" + b"not a data set at all" * 4)


@pytest.mark.parametrize(
    "data",
    [
        # (0008,0000) of length 0, then text: any file starting 08 00 was taken for a
        # bare DICOM and refused as one without pixel data (400), not as unsupported.
        pytest.param(b"\x08\x00\x00\x00\x00\x00\x00\x00" + b"random binary junk" * 10,
                     id="implicit-then-junk"),
        pytest.param(b"\x08\x00\x10\x00" + bytes(range(256)) * 2, id="length-past-the-end"),
        pytest.param(b"\x08\x00\x05\x00ZZ\x02\x00ab" + bytes(40), id="not-a-vr"),
        pytest.param(b"\x08\x00\x16\x00UI\x02\x00ab\x08\x00\x05\x00CS\x00\x00",
                     id="tags-not-ascending"),
    ],
)
def test_binary_starting_like_a_bare_data_set_is_unsupported_not_a_dicom(data):
    assert not looks_like_dicom(data)
    with pytest.raises(UnsupportedImage, match="unsupported image type"):
        read(data)


def test_a_deflated_dicom_reads_as_the_same_dicom_uncompressed():
    np.testing.assert_array_equal(read(deflated_dicom_bytes(GREY)).pixels, GREY)
    with pytest.raises(CorruptImage, match="deflated DICOM data set is truncated"):
        read(deflated_dicom_bytes(GREY)[:-200])


def test_a_deflated_dicom_that_inflates_beyond_the_limit_is_too_large_before_it_is_inflated():
    # 64 MiB of zero pixel data, 64 kB deflated, under a 48x64 header: pydicom inflated a
    # data set whole (1 MB on the wire took 2.3 GB). The limit here is 4 bytes per pixel
    # of max_pixels (10**6) plus 16 MiB for the header: about 20 MB.
    bomb = deflated_dicom_bytes(GREY, bytes(64 << 20))
    assert len(bomb) < 1 << 20
    with pytest.raises(ImageTooLarge, match="deflated DICOM data set inflates to more than"):
        read(bomb)
    # Within the limit a data set inflates, only to be refused for what it holds: more
    # pixel data than its header's image.
    with pytest.raises(CorruptImage, match="its PixelData holds 8388608 bytes"):
        read(deflated_dicom_bytes(GREY, bytes(8 << 20)))


def test_a_dicom_whose_first_frame_takes_too_many_bytes_decoded_is_too_large():
    # The pixel limit alone let 5000x5000 RGB of 32-bit samples through (4.7 MB of RLE,
    # 2.2 GB at the peak). A frame may take 4 bytes per pixel of the limit: 16-bit RGB
    # (6 bytes a pixel) passes a limit of 1.5 times its pixels, not one of its pixels.
    rgb16 = np.stack([GREY, 255 - GREY, GREY // 2], axis=-1).astype(np.uint16) * 257
    native = dicom_bytes(rgb16, photometric="RGB")
    ds = pydicom.dcmread(io.BytesIO(native))
    ds.compress(RLELossless)
    rle = io.BytesIO()
    ds.save_as(rle)
    for data in (native, rle.getvalue()):
        assert read_image_file(data, max_pixels=GREY.size * 3 // 2).pixels.shape == (48, 64, 3)
        with pytest.raises(ImageTooLarge, match="64x48 pixels of 3 samples of 16 bits") as info:
            read_image_file(data, max_pixels=GREY.size)
        assert info.value.max_bytes == 4 * GREY.size
        assert (info.value.width, info.value.height) == (64, 48)
    # 16-bit grey, 2 bytes a pixel, is read up to the pixel limit itself.
    read_image_file(dicom_bytes(GREY.astype(np.uint16) * 257), max_pixels=GREY.size)


def _j2k_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG2000", irreversible=False)
    return buffer.getvalue()


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEG2000Lossless])
def test_an_encoded_frame_over_the_pixel_limit_is_too_large_before_it_is_decoded(syntax):
    # A 13000x13000 JPEG in a DICOM whose header says 100x100 was decoded whole (1.7 GB)
    # before its shape failed to match, or a 400 "decompression bomb" where Pillow's
    # guard fired. Its codestream's own header is read first.
    big = np.zeros((1000, 1200), np.uint8)
    big[::7] = 200
    frame = jpeg_bytes(big) if syntax == JPEGBaseline8Bit else _j2k_bytes(big)
    with pytest.raises(ImageTooLarge, match=r"first frame is encoded as 1200x1000 = 1200000 "
                                            r"pixels, over the limit of 1000000 pixels "
                                            r"\(its header says 64x48\)") as info:
        read(recompressed_dicom_bytes(GREY, syntax, frame))
    assert (info.value.width, info.value.height) == (1200, 1000)


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEG2000Lossless])
def test_an_encoded_frame_that_disagrees_with_the_header_is_corrupt_and_says_how(syntax):
    # numpy's "could not broadcast input array from shape (9216,) into shape (3072,)".
    encode = jpeg_bytes if syntax == JPEGBaseline8Bit else _j2k_bytes
    colour = np.stack([GREY, 255 - GREY, GREY], axis=-1)
    for frame, says in (
        (encode(colour), "encoded as 64x48 pixels of 3 component(s), but its header says "
                         "64x48 pixels of 1 sample(s)"),
        (encode(GREY[:32, :40]), "encoded as 40x32 pixels of 1 component(s), but its header "
                                 "says 64x48"),
    ):
        with pytest.raises(CorruptImage, match=re.escape(says)):
            read(recompressed_dicom_bytes(GREY, syntax, frame))
    # The frame the header describes is read as ever.
    assert read(recompressed_dicom_bytes(GREY, syntax, encode(GREY))).pixels.shape == (48, 64)


def test_a_jpeg_ls_dicom_is_read_exactly_and_a_damaged_one_is_corrupt():
    """Ultrasound archives store JPEG-LS; pyjpegls (highdicom's) decodes it."""
    np.testing.assert_array_equal(read(recompressed_dicom_bytes(GREY, JPEGLSLossless)).pixels,
                                  GREY)
    with pytest.raises(CorruptImage, match="JPEG-LS") as info:
        read(recompressed_dicom_bytes(GREY, JPEGLSLossless, JPEG_LS_START + bytes(99)))
    assert not isinstance(info.value, UnsupportedEncoding)


def _jpeg_ls_sized(height: int, width: int, oversize: tuple[int, int] | None) -> bytes:
    """GREY's JPEG-LS DICOM with its SOF55 size replaced, and an LSE "oversize image
    dimension" segment (ID 4, 4 bytes a dimension) after it when ``oversize`` is given."""
    import struct

    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(io.BytesIO(recompressed_dicom_bytes(GREY, JPEGLSLossless)))
    stream = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    at = stream.find(b"\xff\xf7")
    end = at + 2 + int.from_bytes(stream[at + 2 : at + 4], "big")
    struct.pack_into(">HH", stream, at + 5, height, width)
    if oversize is not None:
        body = bytes([4, 4]) + struct.pack(">II", *oversize)
        stream[end:end] = b"\xff\xf8" + struct.pack(">H", len(body) + 2) + body
    ds.PixelData = encapsulate([bytes(stream)])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_a_jpeg_ls_size_given_in_an_oversize_segment_is_checked_before_decoding():
    """A 4.7 kB JPEG-LS whose frame header says 0x0 and whose LSE segment says
    30000x30000 took 3.2 GB to be refused: its real size is now read first."""
    with pytest.raises(ImageTooLarge, match="30000x30000"):
        read(_jpeg_ls_sized(0, 0, (30000, 30000)))
    # The header's own size given that way is read as usual.
    height, width = GREY.shape
    np.testing.assert_array_equal(read(_jpeg_ls_sized(0, 0, (height, width))).pixels, GREY)
    # Another size is the header's disagreement, said before decoding too.
    with pytest.raises(CorruptImage, match="encoded as 64x96"):
        read(_jpeg_ls_sized(0, 0, (96, 64)))
    # A size of 0 and no oversize segment: nothing to check the pixels against.
    with pytest.raises(CorruptImage, match="gives no size"):
        read(_jpeg_ls_sized(0, 0, None))


def test_a_jpeg_ls_stream_cut_short_is_refused_before_the_decoder_spends_seconds_on_it():
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(io.BytesIO(recompressed_dicom_bytes(GREY, JPEGLSLossless)))
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert stream.rstrip(b"\0").endswith(b"\xff\xd9")
    for cut in (stream[: len(stream) // 2], stream[: len(stream) // 10]):
        ds.PixelData = encapsulate([cut])
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        with pytest.raises(CorruptImage, match="JPEG-LS stream cut short"):
            read(out.getvalue())


# ------------------------------------------------------------ VOI LUT: applied here


def _voi_lut_item(entries, bits: int, first: int = 0, *, as_words: bool = False):
    """A VOI LUT Sequence item: ``entries`` as US values, or as OW bytes."""
    item = pydicom.Dataset()
    item.LUTDescriptor = [len(entries) % 65536, first, bits]
    if as_words:
        item.add_new(0x00283006, "OW", np.asarray(entries, dtype="<u2").tobytes())
    else:
        item.add_new(0x00283006, "US", [int(v) for v in entries])
    return item


# A picture from black to white, and its 12-bit values, which show it through value // 16
# (a VOI LUT's output is stretched from its lowest to its highest value).
FULL = GREY.copy()
FULL[0, :2] = 0, 255
TWELVE = FULL.astype(np.uint16) * 16


@pytest.mark.parametrize("as_words", [False, True], ids=["US", "OW"])
@pytest.mark.parametrize("bits", [8, 16])
def test_a_voi_lut_of_8_or_16_bit_entries_over_12_bit_data_shows_the_picture(bits, as_words):
    # pydicom's apply_voi indexed an 8-bit LUT in uint8: 12-bit values wrapped modulo 256
    # and the picture was noise, which the model segmented.
    scale = 1 if bits == 8 else 257
    lut = _voi_lut_item((np.arange(4096) // 16) * scale, bits, as_words=as_words)
    image = read(dicom_bytes(TWELVE, bits_stored=12, VOILUTSequence=[lut]))
    np.testing.assert_array_equal(image.pixels, FULL)
    assert image.notes == ()


def test_a_voi_lut_maps_from_its_first_value_and_clips_beyond_its_ends():
    values = np.tile(np.array([0, 99, 100, 101, 140, 4095, 102, 103], dtype=np.uint16), (8, 1))
    lut = _voi_lut_item([0, 10, 20, 30, 255], 8, first=100)
    image = read(dicom_bytes(values, bits_stored=12, VOILUTSequence=[lut]))
    np.testing.assert_array_equal(image.pixels[0], [0, 0, 0, 10, 255, 255, 20, 30])


def test_a_voi_lut_whose_data_disagree_with_its_descriptor_is_ignored_with_a_note():
    lut = _voi_lut_item(np.arange(100), 8)
    lut.LUTDescriptor = [4096, 0, 8]
    image = read(dicom_bytes(TWELVE, bits_stored=12, VOILUTSequence=[lut]))
    np.testing.assert_array_equal(image.pixels, read(dicom_bytes(TWELVE, bits_stored=12)).pixels)
    assert [str(note) for note in image.notes] == [
        "ignored the DICOM VOI window: the VOILUTSequence its LUTData does not hold the "
        "4096 entries its LUTDescriptor states"]
    assert logged_note(image.notes[0]) == (
        "ignored the DICOM VOI window (LUTData, LUTDescriptor, VOILUTSequence: inconsistent)")


# --------------------------------------------- a header that contradicts its pixel data


def _with(data: bytes, **elements) -> bytes:
    """A DICOM file ``data`` with header ``elements`` changed, its pixel data kept."""
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


RGB = np.stack([GREY, 255 - GREY, GREY // 2], axis=-1)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        # Its interleaved bytes were read as a striped grey image three times as wide.
        pytest.param(_with(dicom_bytes(RGB, photometric="RGB"), SamplesPerPixel=1),
                     "PhotometricInterpretation RGB needs 3 samples per pixel, but "
                     "SamplesPerPixel is 1", id="rgb-one-sample"),
        pytest.param(_with(dicom_bytes(GREY), PhotometricInterpretation="RGB"),
                     "RGB needs 3 samples", id="grey-called-rgb"),
        pytest.param(_with(dicom_bytes(RGB, photometric="RGB"),
                           PhotometricInterpretation="MONOCHROME2"),
                     "PhotometricInterpretation MONOCHROME2 needs 1 sample per pixel, but "
                     "SamplesPerPixel is 3", id="colour-called-grey"),
        pytest.param(_with(dicom_bytes(RGB, photometric="RGB"),
                           PhotometricInterpretation="PALETTE COLOR"),
                     "PALETTE COLOR needs 1 sample per pixel", id="colour-called-palette"),
        # Its top half was shown as the whole image.
        pytest.param(_with(dicom_bytes(GREY), Rows=24),
                     "its PixelData holds 3072 bytes, but 64x24 pixels of 1 sample(s) of 8 "
                     "bits take 1536", id="rows-halved"),
        pytest.param(_with(dicom_bytes(np.stack([GREY] * 3)), NumberOfFrames=2),
                     "holds 9216 bytes, but 2 frames of 64x48 pixels", id="frames-beyond-count"),
        pytest.param(_with(dicom_bytes(RGB.astype(np.uint16) * 16, photometric="RGB",
                                       bits_stored=12), BitsAllocated=8, BitsStored=8,
                           HighBit=7),
                     "of 3 sample(s) of 8 bits take 9216", id="sixteen-bit-called-eight"),
    ],
)
def test_a_header_that_contradicts_itself_is_corrupt(data, says):
    with pytest.raises(CorruptImage, match="header is inconsistent: .*" + re.escape(says)):
        read(data)


def test_pixel_data_shorter_than_the_header_states_is_corrupt():
    with pytest.raises(CorruptImage, match="less than expected"):
        read(_with(dicom_bytes(GREY), Rows=96))


def test_native_pixel_data_of_the_header_size_is_read_with_its_pad_byte():
    odd = speckle_image(9, 11, seed=5)  # 99 bytes, padded to 100
    image = read(dicom_bytes(odd))
    np.testing.assert_array_equal(image.pixels, odd)
    three = np.stack([GREY, 255 - GREY, GREY])
    assert read(dicom_bytes(three, NumberOfFrames=3)).frames == 3
    one_bit = (GREY > np.median(GREY)).astype(np.uint8)
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    ds.set_pixel_data(one_bit, photometric_interpretation="MONOCHROME2", bits_stored=1)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    np.testing.assert_array_equal(read(out.getvalue()).pixels, one_bit * 255)


# ------------------------------------------------------------------- pixel spacing


def _us_region(delta_cm: float):
    region = pydicom.Dataset()
    region.RegionSpatialFormat = 1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = region.PhysicalDeltaY = delta_cm
    return region


def test_a_pixel_spacing_its_ultrasound_region_contradicts_is_no_spacing_and_a_note():
    image = read(dicom_bytes(GREY, PixelSpacing=[0.5, 0.5],
                             SequenceOfUltrasoundRegions=[_us_region(0.01)]))
    assert image.pixel_spacing is None
    (note,) = image.notes
    assert note.subject == "pixel spacing" and "which is right is not known" in note.reason
    assert logged_note(note) == (
        "ignored the DICOM pixel spacing (PixelSpacing, SequenceOfUltrasoundRegions: "
        "sources disagree)")
    agreeing = read(dicom_bytes(GREY, PixelSpacing=[0.1, 0.1],
                                SequenceOfUltrasoundRegions=[_us_region(0.01)]))
    assert agreeing.pixel_spacing == (0.1, 0.1) and agreeing.notes == ()


def test_a_one_value_pixel_spacing_is_said_in_words():
    (note,) = read(dicom_bytes(GREY, PixelSpacing=0.1)).notes
    assert note.reason == "PixelSpacing has 1 value; 2 are needed (row\\column)"
    assert logged_note(note) == (
        "ignored the DICOM pixel spacing (PixelSpacing: wrong number of values)")
