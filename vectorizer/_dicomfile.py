"""Reading an uploaded DICOM file: its header, its first frame, its pixel spacing.

:func:`read_dicom_file` is the DICOM half of :func:`vectorizer.read_image_file`.
It tells the two ways a DICOM cannot be read apart: :class:`UnsupportedEncoding`
when no installed decoder handles its transfer syntax (or the decoder says it
does not support that variant: 12-bit JPEG in Pillow...), :class:`CorruptImage`
when the file or its pixel data is damaged, truncated or inconsistent. The
8-bit pixels come from :func:`vectorizer.dicom_frame_to_uint8`.

Arrays are numpy ``(row, col)``.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

import numpy as np

from ._dicom import (
    DicomPixelError,
    dicom_frame_to_uint8,
    dicom_pixel_spacing,
    ensure_transfer_syntax,
)
from ._imagerules import (
    MAX_IMAGE_SIDE,
    CorruptImage,
    ImageTooLarge,
    UnsupportedEncoding,
    check_image_size,
)

_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# (7FE0,0010) Pixel Data, (7FE0,0008) Float and (7FE0,0009) Double Float Pixel Data,
# little- and big-endian.
_PIXEL_DATA_TAGS = tuple(
    group + element
    for element_le, element_be in ((b"\x10\x00", b"\x00\x10"), (b"\x08\x00", b"\x00\x08"),
                                   (b"\x09\x00", b"\x00\x09"))
    for group, element in ((b"\xe0\x7f", element_le), (b"\x7f\xe0", element_be))
)
_WINDOW_NOTE = "ignored the DICOM VOI window: "
#: Bytes per pixel of the pixel limit (``max_pixels``, at most :data:`MAX_IMAGE_SIDE`
#: squared) that a DICOM may take once inflated or decoded: 8-bit RGB or 16-bit grey at
#: the pixel limit fit, and 16-bit colour up to two thirds of it.
MAX_DICOM_BYTES_PER_PIXEL = 4
# Room for the header, overlays, icons... beside the pixels of an inflated data set.
_HEADER_ROOM = 16 << 20


@dataclass(frozen=True)
class ImageNote:
    """Something in the file that was ignored, and why; the image is read without it.

    Attributes
    ----------
    subject : str
        ``"VOI window"`` (the header's suggested view) or ``"pixel spacing"``.
    reason : str
        One sentence without a final full stop.
    """

    subject: str
    reason: str

    def __str__(self) -> str:
        return f"ignored the DICOM {self.subject}: {self.reason}"


#: The header elements an ignored value can be in: a log line names these, never the
#: note's own text, which quotes the value (a patient's name typed into the wrong
#: field, WindowCenter 'JANE^DOE2', reached the log) or an error that does.
_NOTE_ELEMENTS = re.compile(
    r"\b(?:WindowCenter|WindowWidth|PixelSpacing|ImagerPixelSpacing|PhysicalDelta[XY]"
    r"|SequenceOfUltrasoundRegions|VOILUTSequence|LUTDescriptor|LUTData)\b"
)
#: The kinds of flaw the reader's notes state, by the words that state them.
_NOTE_FLAWS = (("not a number", "not a number"), ("not a finite number", "not a number"),
               ("cannot be read", "unreadable"), ("must be", "out of range"),
               ("not a value from", "out of range"), ("does not hold", "inconsistent"),
               ("is not known", "sources disagree"), ("are needed", "wrong number of values"))


def logged_note(note: ImageNote) -> str:
    """An :class:`ImageNote` as a log line says it: the element and the kind of flaw,
    without the value.

    Both services log what a DICOM header stated that was ignored this way; the
    person who opened the file still gets the whole note.

    Parameters
    ----------
    note : ImageNote
        A note of :func:`read_dicom_file` (or :func:`vectorizer.read_image_file`).

    Returns
    -------
    str
        ``ignored the DICOM <subject> (<elements>: <flaw>)``, the subject
        ``"header"`` when it is not one of the reader's own.

    Examples
    --------
    >>> logged_note(ImageNote("VOI window", "the DICOM WindowCenter 'JANE^DOE' is not a number"))
    'ignored the DICOM VOI window (WindowCenter: not a number)'
    """
    reason = str(note.reason)
    elements = sorted(set(_NOTE_ELEMENTS.findall(reason)))
    if not elements and "ultrasound region" in reason:
        elements = ["SequenceOfUltrasoundRegions"]
    flaw = next((kind for words, kind in _NOTE_FLAWS if words in reason), "not usable")
    subject = note.subject if note.subject in ("VOI window", "pixel spacing") else "header"
    return f"ignored the DICOM {subject} ({', '.join(elements) or 'an element'}: {flaw})"


@dataclass(frozen=True)
class DicomFrame:
    """The first frame of a DICOM file, as :func:`read_dicom_file` reads it.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``uint8`` ``(H, W)`` grey or ``(H, W, 3)`` RGB.
    stored : numpy.ndarray
        The frame as decoded, before the header's rescale, window or LUT.
    pixel_spacing : tuple of float or None
        ``(row_mm, col_mm)``.
    notes : tuple of ImageNote
    frames : int
        How many frames the file holds (``NumberOfFrames``; 1 when it says none).
    """

    pixels: np.ndarray
    stored: np.ndarray
    pixel_spacing: tuple[float, float] | None
    notes: tuple[ImageNote, ...]
    frames: int = 1


def looks_like_dicom(data: bytes) -> bool:
    """Whether ``data`` starts as a DICOM file, with or without the 128-byte preamble."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    if data[:4] == b"DICM":
        # The magic without the 128-byte preamble before it, as some writers save it: a
        # file meta group (explicit VR, PS3.10 7.1) must follow.
        return data[4:6] == b"\x02\x00" and _elements_well_formed(data[4:], explicit=True)
    # A data set written without the preamble starts with a little-endian tag of
    # group 0x0002 (file meta) or 0x0008 (identifying). Any file starting with 08 00
    # used to pass, and was then refused as a DICOM without pixel data (400, not 415):
    # its first elements must also be well formed, in explicit VR (a VR DICOM defines)
    # or implicit, their tags ascending and their lengths within the file.
    if len(data) < 8 or data[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    return _elements_well_formed(data, explicit=data[4:6] in _VRS)


def with_preamble(data: bytes) -> bytes:
    """``data`` with an empty 128-byte preamble before its "DICM" magic when a writer
    left the preamble out (pydicom looks for the magic after one only); else as it is."""
    if data[:4] == b"DICM" and data[128:132] != b"DICM":
        return bytes(128) + data
    return data


_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI "
    b"UL UN UR US UT UV".split()
)
# VRs whose length takes 4 bytes, after 2 reserved ones (PS3.5 7.1.2).
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT UV".split())


def _elements_well_formed(data: bytes, *, explicit: bool, count: int = 3) -> bool:
    """Whether the first ``count`` elements of a bare little-endian data set (fewer
    when the data ends after one) have valid headers, ascending tags, and lengths
    that fit."""
    position, previous = 0, None
    for _ in range(count):
        if position == len(data):
            return True
        if position + 8 > len(data):
            return False
        tag = (int.from_bytes(data[position : position + 2], "little"),
               int.from_bytes(data[position + 2 : position + 4], "little"))
        if previous is not None and tag <= previous:
            return False
        header, length = 8, int.from_bytes(data[position + 4 : position + 8], "little")
        if explicit:
            vr = data[position + 4 : position + 6]
            if vr not in _VRS:
                return False
            if vr in _LONG_VRS:
                if data[position + 6 : position + 8] != b"\0\0" or position + 12 > len(data):
                    return False
                header, length = 12, int.from_bytes(data[position + 8 : position + 12], "little")
            else:
                length = int.from_bytes(data[position + 6 : position + 8], "little")
        if length == 0xFFFFFFFF:  # undefined length (a sequence): its items follow
            return True
        position += header + length
        if position > len(data):
            return False
        previous = tag
    return True


def read_dicom_file(data: bytes, max_pixels: int | None) -> DicomFrame:
    """Read the first frame of a DICOM file.

    Parameters
    ----------
    data : bytes
        The whole file, which :func:`looks_like_dicom`.
    max_pixels : int or None
        Largest accepted ``Columns * Rows``, checked before any pixel is decoded.

    Returns
    -------
    DicomFrame

    Raises
    ------
    UnsupportedEncoding
        No installed decoder handles the transfer syntax, or the decoder does not
        support this variant of it.
    CorruptImage
        A file pydicom cannot parse; no pixel data, empty or truncated pixel data;
        a header without Rows or Columns, or whose photometric interpretation its
        samples per pixel contradict (RGB and YBR need 3, MONOCHROME and PALETTE
        COLOR 1); native pixel data longer than the header's image; corrupt
        compressed data; a rescale or LUT that makes the pixels meaningless.
    ImageTooLarge
        See :func:`vectorizer.check_image_size`; also a deflated data set that would
        inflate beyond :func:`dicom_byte_limit` plus 16 MiB (its ``width`` and
        ``height`` are then 0: the header is not read).
    """
    import pydicom
    import pydicom.pixels

    data = with_preamble(data)
    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        ds = _parse(data, has_preamble, max_pixels)
    except (CorruptImage, ImageTooLarge):
        raise
    except Exception as exc:  # pydicom raises many types for a malformed file
        raise CorruptImage(f"could not parse the DICOM file: {_reason(exc)}") from None
    present = [keyword for keyword in _PIXEL_DATA_KEYWORDS if keyword in ds]
    if not present:
        if any(tag in data for tag in _PIXEL_DATA_TAGS):
            # pydicom drops an element the file ends inside of (with only a warning).
            raise CorruptImage("the DICOM pixel data is truncated: the file ends inside it")
        raise CorruptImage("the DICOM file has no pixel data")
    try:
        # The value is parsed on first access: a damaged VR raises NotImplementedError.
        empty = not ds[present[0]].value
    except Exception:  # pydicom's message names the raw bytes: said here in words
        raise CorruptImage(
            f"the DICOM file's {present[0]} element cannot be read: its header is damaged"
        ) from None
    if empty:
        raise CorruptImage(f"the DICOM file's {present[0]} element is empty (zero length)")
    ensure_transfer_syntax(ds)
    try:
        rows, cols = _header_size(ds, "Rows"), _header_size(ds, "Columns")
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    except CorruptImage:
        raise
    except Exception as exc:
        raise CorruptImage(f"the DICOM header is incomplete: {_reason(exc)}") from None
    _check_samples(photometric.strip(), samples, "PhotometricInterpretation" in ds)
    check_image_size(cols, rows, max_pixels)
    _check_frame_bytes(ds, rows, cols, samples, max_pixels)
    syntax = ds.file_meta.TransferSyntaxUID
    if not isinstance(syntax, str) or not syntax:  # several values, or none
        raise CorruptImage("the DICOM file's Transfer Syntax UID is not one UID")
    syntax_name = getattr(syntax, "name", None) or str(syntax)
    _ensure_decoder(syntax, syntax_name)
    if not syntax.is_encapsulated:
        _check_native_length(ds, present[0], rows, cols, samples, photometric.strip())
    _check_encoded_frame(ds, syntax, rows, cols, samples, max_pixels)
    try:
        # index=0 decodes only the first frame of a multi-frame file; YBR comes out RGB.
        frame = pydicom.pixels.pixel_array(ds, index=0)
    except NotImplementedError as exc:
        raise UnsupportedEncoding(
            f"cannot decode DICOM pixel data encoded with {syntax_name}: {_plugin_errors(exc)}",
        ) from None
    except RuntimeError as exc:
        # A decoder for the syntax is installed (checked above), so its failure is the
        # data's fault, unless the decoder itself says it does not support this variant.
        reason = _plugin_errors(exc)
        if _UNSUPPORTED.search(reason):
            raise UnsupportedEncoding(
                f"cannot decode this DICOM pixel data encoded with {syntax_name}: {reason}",
                ) from None
        raise CorruptImage(
            f"the DICOM pixel data ({syntax_name}) is corrupt or truncated: {reason}"
        ) from None
    except Exception as exc:
        if "could not broadcast" in str(exc):  # numpy's words for a frame of another size
            raise CorruptImage(
                f"the DICOM pixel data ({syntax_name}) does not decode to the {cols}x{rows} "
                f"pixels of {samples} sample(s) its header states"
            ) from None
        raise CorruptImage(f"could not decode the DICOM pixel data: {_reason(exc)}") from None
    notes: list[ImageNote] = []

    def ignored_window(message: str) -> None:
        notes.append(ImageNote("VOI window", message.removeprefix(_WINDOW_NOTE)))

    try:
        pixels = dicom_frame_to_uint8(frame, ds, on_ignored=ignored_window)
    except DicomPixelError as exc:
        raise CorruptImage(str(exc)) from None
    except Exception as exc:  # a malformed header element pydicom trips over
        raise CorruptImage(f"could not convert the DICOM pixel data: {_reason(exc)}") from None
    if pixels.ndim not in (2, 3) or pixels.shape[:2] != (rows, cols):
        raise CorruptImage(f"DICOM pixel data has shape {pixels.shape}, expected {rows}x{cols}")
    spacing, skipped = dicom_pixel_spacing(ds)
    notes.extend(ImageNote("pixel spacing", reason) for reason in skipped)
    try:
        frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        frames = 1  # its first frame decoded all the same
    return DicomFrame(np.ascontiguousarray(pixels), frame, spacing, tuple(notes), frames)


def pixel_limit(max_pixels: int | None) -> int:
    """The most pixels an image can have: ``max_pixels``, but never more than
    :data:`MAX_IMAGE_SIDE` squared, the most any image is read with (its side is
    refused above that), and the whole limit when ``max_pixels`` is None."""
    largest = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
    return largest if max_pixels is None else min(max_pixels, largest)


def dicom_byte_limit(max_pixels: int | None) -> int:
    """Bytes a DICOM's first frame may take decoded: :data:`MAX_DICOM_BYTES_PER_PIXEL`
    per pixel of :func:`pixel_limit`.

    Capped there, not at ``max_pixels`` itself: a limit of 10**10 pixels, set to mean
    "no pixel limit", let a 40 MB deflated file inflate to 40 GB, for an image that
    could not be more than 8192x8192 anyway.
    """
    return MAX_DICOM_BYTES_PER_PIXEL * pixel_limit(max_pixels)


def _parse(data: bytes, has_preamble: bool, max_pixels: int | None):
    """``data`` read by pydicom, a deflated data set inflated here within a bound.

    pydicom inflates a Deflated Explicit VR Little Endian data set whole, in memory,
    before it reads a single element: a 1 MB file holding a gigabyte of zeros as pixel
    data took 2.3 GB. Here it is inflated up to :func:`dicom_byte_limit` plus room for
    the header, and refused (:class:`ImageTooLarge`) when it would go further.
    """
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble

    fp = io.BytesIO(data)
    try:
        preamble = read_preamble(fp, not has_preamble)
        meta = _read_file_meta_info(fp)
        syntax = meta.get("TransferSyntaxUID")
        deflated = bool(getattr(syntax, "is_deflated", False))
    except Exception:  # dcmread below says what is wrong with the file
        deflated = False
    if not deflated:
        return pydicom.dcmread(io.BytesIO(data), force=not has_preamble)
    limit = dicom_byte_limit(max_pixels) + _HEADER_ROOM
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data[fp.tell():], limit + 1)
    except zlib.error as exc:
        raise CorruptImage(f"the deflated DICOM data set is corrupt: {exc}") from None
    if len(inflated) > limit:
        raise ImageTooLarge(
            f"the deflated DICOM data set inflates to more than the limit of {limit} bytes "
            f"({MAX_DICOM_BYTES_PER_PIXEL} bytes per pixel of the "
            f"{pixel_limit(max_pixels)}-pixel limit, and "
            f"{_HEADER_ROOM >> 20} MiB for the header)",
            0, 0, max_pixels, max_bytes=limit,
        )
    if not inflater.eof:
        raise CorruptImage(
            "the deflated DICOM data set is truncated: its deflate stream ends early"
        )
    # What pydicom's dcmread does with the data set it has inflated itself.
    dataset = read_dataset(io.BytesIO(inflated), is_implicit_VR=False, is_little_endian=True)
    ds = pydicom.FileDataset(
        io.BytesIO(inflated), dataset, preamble, meta, is_implicit_VR=False, is_little_endian=True
    )
    ds.set_original_encoding(False, True, dataset.original_character_set)
    return ds


def _check_samples(photometric: str, samples: int, stated: bool) -> None:
    """Refuse a photometric interpretation the samples per pixel contradict.

    RGB with ``SamplesPerPixel`` 1 had its interleaved bytes read as a grey image three
    times as wide, folded into the header's rows: a striped picture that was segmented,
    and a SEG written on it. YBR would be converted to RGB anyway and fail on the shapes.
    A photometric interpretation not stated (taken as MONOCHROME2) or of another kind is
    left to the decoder.
    """
    if photometric == "RGB" or photometric.startswith("YBR"):
        needed = 3
    elif stated and (photometric.startswith("MONOCHROME") or photometric == "PALETTE COLOR"):
        needed = 1
    else:
        return
    if samples != needed:
        raise CorruptImage(
            f"the DICOM header is inconsistent: PhotometricInterpretation {photometric} "
            f"needs {needed} sample{'s' if needed > 1 else ''} per pixel, but "
            f"SamplesPerPixel is {samples}"
        )


def _check_native_length(
    ds, keyword: str, rows: int, cols: int, samples: int, photometric: str
) -> None:
    """Refuse native (uncompressed) pixel data longer than the header's image needs.

    Rows x Columns x samples x bytes per sample (1-bit data packed eight to a byte;
    uncompressed YBR_FULL_422 two thirds of that) x frames, and the pad byte of an odd
    length. A file whose Rows were halved, or whose frames outnumber its NumberOfFrames,
    had its first part shown as the whole image, with only pydicom's warning in the
    log. Data that is too short is refused by the decoder (corrupt or truncated). A
    header whose numbers are not valid is left to the decoder's message.
    """
    try:
        bits = int(ds.get("BitsAllocated", 8) or 8)
        frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
        length = len(ds[keyword].value)
    except Exception:  # pydicom raises many types for a value it cannot read
        return
    if bits != 1 and (bits < 8 or bits % 8):
        return
    values = rows * cols * samples * frames
    needed = (values + 7) // 8 if bits == 1 else values * (bits // 8)
    if photometric == "YBR_FULL_422":
        needed = needed // 3 * 2  # two luminance samples share one pair of chrominance
    if length > needed + needed % 2:
        count = f"{frames} frames of " if frames > 1 else ""
        raise CorruptImage(
            f"the DICOM header is inconsistent: its {keyword} holds {length} bytes, but "
            f"{count}{cols}x{rows} pixels of {samples} sample(s) of {bits} bits "
            f"take {needed}"
        )


def _check_frame_bytes(ds, rows: int, cols: int, samples: int, max_pixels: int | None) -> None:
    """Refuse a first frame that would take more than :func:`dicom_byte_limit` decoded.

    The pixel limit alone let a 5000x5000 RGB frame of 32-bit samples through: 4.7 MB
    of RLE on the wire, 300 MB decoded and 2.2 GB at the peak of its conversion. Values
    pydicom refuses anyway (a BitsAllocated or SamplesPerPixel that is not valid) are
    left to its decoder's message.
    """
    try:
        bits = int(ds.get("BitsAllocated", 8) or 8)
    except Exception:
        return
    if samples not in (1, 3) or not 1 <= bits <= 64:
        return
    size = rows * cols * samples * ((bits + 7) // 8)
    limit = dicom_byte_limit(max_pixels)
    if size > limit:
        pixels = pixel_limit(max_pixels)
        depth = f"{bits} bits" if samples == 1 else f"{samples} samples of {bits} bits"
        raise ImageTooLarge(
            f"the DICOM image is {cols}x{rows} pixels of {depth}: {size} bytes "
            f"decoded, over the limit of {limit} bytes ({MAX_DICOM_BYTES_PER_PIXEL} bytes "
            f"per pixel of the {pixels}-pixel limit)",
            cols, rows, max_pixels, max_bytes=limit,
        )


def _check_encoded_frame(
    ds, syntax, rows: int, cols: int, samples: int, max_pixels: int | None
) -> None:
    """Refuse a JPEG, JPEG-LS or JPEG 2000 first frame whose own header disagrees with
    the DICOM's, before it is decoded.

    A decoder decodes a frame to the size its codestream states: a 13000x13000 JPEG
    inside a DICOM that says 100x100 took 1.7 GB before the shapes failed to match (and
    was a 400 "decompression bomb" where Pillow's guard fired). Over the pixel limit it
    is :class:`ImageTooLarge`; any other difference in size or components is
    :class:`CorruptImage` naming both. A codestream this does not parse is left to the
    decoder.
    """
    from pydicom.encaps import generate_frames
    from pydicom.uid import RLELossless

    if not syntax.is_encapsulated or syntax == RLELossless:
        return
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        first = next(generate_frames(ds.PixelData, number_of_frames=max(frames, 1)))
    except Exception:  # the decoder says what is wrong with the encapsulation
        return
    if syntax in _JPEG_LS and not first.rstrip(b"\0").endswith(b"\xff\xd9"):
        # CharLS spends seconds of CPU on a stream cut short (5 s for a 400-byte cut of a
        # 64x80 frame) before it fails: refused before it is handed over.
        raise CorruptImage("the DICOM's first frame is a JPEG-LS stream cut short: it has "
                           "no end-of-image marker")
    found = _codestream_size(first)
    if found is None:
        return
    width, height, components = found
    try:
        check_image_size(width, height, max_pixels)
    except ImageTooLarge as exc:
        raise ImageTooLarge(
            f"the DICOM's first frame is encoded as {exc.message.removeprefix('image is ')} "
            f"(its header says {cols}x{rows})",
            width, height, max_pixels,
        ) from None
    if (width, height, components) != (cols, rows, samples):
        raise CorruptImage(
            f"the DICOM's first frame is encoded as {width}x{height} pixels of {components} "
            f"component(s), but its header says {cols}x{rows} pixels of {samples} sample(s)"
        )


#: The JPEG-LS transfer syntaxes (lossless, near-lossless).
_JPEG_LS = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})

# Start-of-frame markers: JPEG SOF0-SOF15 but DHT, JPG and DAC; JPEG-LS SOF55.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}


def _codestream_size(frame: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` from a JPEG, JPEG-LS or JPEG 2000 codestream's
    header (a JP2 file's too), or None when it is none of these or cannot be read."""
    if frame[:2] == b"\xff\xd8":
        position, ls_components = 2, None
        while position + 4 <= len(frame):
            if frame[position] != 0xFF:
                break
            marker = frame[position + 1]
            if marker == 0xFF:  # fill byte
                position += 1
                continue
            if 0xD0 <= marker <= 0xD9 or marker in (0x01, 0xDA):  # no frame size first
                break
            segment = frame[position + 4 : position + 2 + _u16(frame, position + 2)]
            if marker in _SOF_MARKERS:
                if len(segment) < 6:
                    return None
                height, width = _u16(segment, 1), _u16(segment, 3)
                if width and height:
                    return width, height, segment[5]
                if marker != 0xF7:
                    return None  # a JPEG's height of 0 is given later (DNL): the decoder's
                # A JPEG-LS size of 0 is given by an LSE "oversize image dimension"
                # segment before the scan, which CharLS decodes to, however large.
                ls_components = segment[5]
            elif marker == 0xF8 and ls_components is not None and segment[:1] == b"\x04":
                size = segment[1] if len(segment) > 1 else 0  # bytes per dimension
                if 1 <= size <= 4 and len(segment) >= 2 + 2 * size:
                    height = int.from_bytes(segment[2 : 2 + size], "big")
                    width = int.from_bytes(segment[2 + size : 2 + 2 * size], "big")
                    if width and height:
                        return width, height, ls_components
            position += 2 + _u16(frame, position + 2)
        if ls_components is not None:
            raise CorruptImage("the DICOM's first frame is a JPEG-LS stream that gives no "
                               "size before its pixels")
        return None
    at = frame.find(b"\xff\x4f\xff\x51", 0, 1 << 16)  # SOC, then SIZ
    siz = frame[at + 4 : at + 42] if at >= 0 else b""
    if len(siz) < 38:
        return None
    x, y, x_offset, y_offset = (int.from_bytes(siz[i : i + 4], "big") for i in (4, 8, 12, 16))
    if x <= x_offset or y <= y_offset:
        return None
    return x - x_offset, y - y_offset, _u16(siz, 36)


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def _header_size(ds, keyword: str) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise CorruptImage(f"the DICOM header is incomplete: {keyword} is missing or empty")
    return int(value)


def _ensure_decoder(syntax, name: str) -> None:
    """Refuse transfer ``syntax`` when no installed decoder handles it at all."""
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise UnsupportedEncoding(
            f"cannot decode DICOM pixel data encoded with {name}: "
            "no decoder for this transfer syntax is installed",
        )


# Decoder messages that mean "valid data this decoder cannot handle" (12-bit JPEG in
# Pillow, more bits than numpy holds...) rather than corrupt data.
_UNSUPPORTED = re.compile(r"support|cannot decode", re.IGNORECASE)
# Reprs such as "<_io.BytesIO object at 0x7fa7...>" tell a person nothing.
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
_ALL_PLUGINS_FAILED = re.compile(
    r"^Unable to decode as exceptions were raised by all available plugins:\s*"
)
_MISSING_ATTRIBUTE = re.compile(r"object has no attribute '(\w+)'")


def _plugin_errors(exc: BaseException) -> str:
    """``exc``'s message on one line, without pydicom's preamble and object reprs."""
    text = _ALL_PLUGINS_FAILED.sub("", str(exc))
    text = _OBJECT_REPR.sub("", text)
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _reason(exc: BaseException) -> str:
    """``exc``'s message for a person: one line, no reprs, no Python internals."""
    text = _plugin_errors(exc)
    found = _MISSING_ATTRIBUTE.search(text)
    if found:
        return f"the element {found.group(1)} is missing"
    if "NoneType" in text:
        return "an element it needs is empty"
    return text
