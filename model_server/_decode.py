"""Decode uploaded PNG, JPEG and DICOM files into uint8 arrays, defensively.

The format is recognised from the file's first bytes, never from its name or
the declared content type: a text file named ``scan.png`` is not a PNG and is
answered 415 like any other unsupported content. A file that starts like a
supported format but cannot be decoded (truncated, corrupt) is answered 400;
so is a DICOM whose compressed pixel data is corrupt. A DICOM is 415 only when
no installed decoder handles its transfer syntax (or the decoder says it does
not support that variant). A PNG whose compressed data ends, validly, before
its last row is truncated too: Pillow would hand back the missing rows as zeros.

A DICOM header that makes the pixels meaningless (a Rescale Slope or
Intercept that is not a finite number, a slope of 0) is answered 400 rather
than turned into a black image; a VOI window that is not valid only loses its
say in the view, as in the annotation client, and is logged.

An image that decodes to one value everywhere (blank) is answered 400: it
holds no ultrasound to segment or classify, yet the models would still draw
an outline on it.

Size is checked from the header before any pixel is decoded, so a small
file that claims 20000x20000 pixels is refused (413) without allocating the
image; Pillow's own decompression-bomb guard is set to the same limit as a
second line of defence.

Arrays are numpy ``(row, col)``: grey images are ``(H, W)`` uint8 and colour
images ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vectorizer import (
    DicomPixelError,
    dicom_frame_to_uint8,
    dicom_pixel_spacing,
    ensure_transfer_syntax,
    image_to_mask,
    wide_grey_to_uint8,
)

from ._errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SUPPORTED_FORMATS = ("png", "jpeg", "dicom")
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG"}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class DecodedImage:
    """An uploaded image, ready for the models.

    Attributes
    ----------
    pixels : np.ndarray
        uint8, ``(H, W)`` grey or ``(H, W, 3)`` RGB, rows first.
    format : str
        ``"png"``, ``"jpeg"`` or ``"dicom"``.
    pixel_spacing : tuple of float or None
        ``(row_mm, col_mm)``: the height and width of one pixel in millimetres,
        from the DICOM header; None when unknown.
    """

    pixels: np.ndarray
    format: str
    pixel_spacing: tuple[float, float] | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def sniff_format(data: bytes) -> str | None:
    """Return ``"png"``, ``"jpeg"``, ``"dicom"`` or None from the leading bytes of ``data``."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if _looks_like_bare_dicom(data):
        return "dicom"
    return None


def _looks_like_bare_dicom(data: bytes) -> bool:
    # A DICOM data set written without the 128-byte preamble starts with a
    # little-endian tag of group 0x0002 (file meta) or 0x0008 (identifying), followed
    # by an explicit VR of two capital letters or an implicit 4-byte length.
    if len(data) < 8 or data[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    vr = data[4:6]
    explicit_vr = vr.isalpha() and vr.isupper()
    return explicit_vr or int.from_bytes(data[4:8], "little") < len(data)


def check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    """Raise 400 for a non-positive size and 413 when ``width * height > max_pixels``."""
    if width <= 0 or height <= 0:
        raise BadRequest(f"image has an invalid size {width}x{height}")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height} pixels, "
            f"over the limit of {max_pixels} pixels"
        )


def decode_image(
    data: bytes, *, max_pixels: int, formats: tuple[str, ...] = SUPPORTED_FORMATS
) -> DecodedImage:
    """Decode an uploaded file into a :class:`DecodedImage`.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int
        Largest accepted ``width * height``, checked from the header.
    formats : tuple of str
        Formats accepted here (a subset of ``SUPPORTED_FORMATS``).

    Raises
    ------
    BadRequest
        Empty or undecodable data, a DICOM without pixel data or with corrupt or
        truncated pixel data, a DICOM rescale that is not valid, or an image
        whose pixels all have one value (400).
    PayloadTooLarge
        More pixels than ``max_pixels`` (413).
    UnsupportedMediaType
        Content that is none of ``formats``, or a DICOM transfer syntax that no
        installed decoder handles (415).
    """
    fmt = _check_format(data, formats)
    if fmt == "dicom":
        return _decode_dicom(data, max_pixels)
    image = _decode_pil(data, fmt, max_pixels)
    _refuse_blank(image.pixels)
    return image


def _refuse_blank(pixels: np.ndarray, detail: str = "") -> None:
    """Raise 400 when every pixel of ``pixels`` has one value (one colour).

    Such an image holds nothing to segment or classify, yet the models answer
    it with an outline and a label (an all-black image came back "malignant"
    with a lesion over a third of it). Masks are not checked: an empty mask is
    a valid answer.
    """
    shown = _blank_value(pixels)
    if shown is not None:
        raise BadRequest(
            f"the image is blank: every pixel is {shown}{detail}; "
            "there is nothing to segment or classify in it"
        )


def _blank_value(pixels: np.ndarray) -> str | None:
    """The one value of every pixel, as text (``"0"``, ``"(0, 0, 255)"``), or None."""
    flat = pixels.reshape(-1, pixels.shape[2] if pixels.ndim == 3 else 1)
    if flat.shape[0] == 0:
        return None
    # A sample of a few thousand pixels settles almost every real image at once;
    # only an image that is constant on the sample is read in full, one channel at
    # a time (a reduction along axis 0 of an (N, 3) array is many times slower).
    sample = flat[:: max(1, flat.shape[0] // 4096)]
    if np.any(sample != sample[0]):
        return None
    channels = [flat[:, c] for c in range(flat.shape[1])]
    if any(channel.min() != channel.max() for channel in channels):
        return None
    value = [channel[0].item() for channel in channels]
    return str(value[0]) if len(value) == 1 else str(tuple(value))


def _check_format(data: bytes, formats: tuple[str, ...]) -> str:
    if not data:
        raise BadRequest("the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None or fmt not in formats:
        names = ", ".join(f.upper() for f in formats)
        found = f"a {fmt.upper()} file" if fmt else "content that is not an image we read"
        raise UnsupportedMediaType(f"unsupported image type: got {found}; expected {names}")
    return fmt


def decode_mask(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode a mask PNG into a bool ``(H, W)`` array.

    A pixel is foreground when its stored value is above 0, whatever the
    PNG's mode, by ``vectorizer.image_to_mask`` (``png_to_mask``'s rule, after the
    size check and EXIF orientation here): a 16-bit mask of 0/1 is as
    valid as an 8-bit mask of 0/255. Colour masks are foreground where any
    channel is above 0; alpha is ignored.

    Parameters
    ----------
    data : bytes
        The whole PNG file.
    max_pixels : int
        Largest accepted ``width * height``, checked from the header.

    Returns
    -------
    np.ndarray
        bool ``(H, W)``, rows first.

    Raises
    ------
    BadRequest, PayloadTooLarge, UnsupportedMediaType
        As :func:`decode_image` (400, 413, 415); anything but a PNG is 415.
    """
    _check_format(data, ("png",))
    image = _open_pil(data, "png", max_pixels)
    try:
        return image_to_mask(image)
    except Exception as exc:  # truncated/corrupt pixel data: a client error, not a bug
        raise BadRequest(f"could not decode the PNG mask: {_short(exc)}") from None


# --------------------------------------------------------------------------- PNG / JPEG


def _decode_pil(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    image = _open_pil(data, fmt, max_pixels)
    try:
        pixels = _pil_to_uint8(image)
    except Exception as exc:  # truncated/corrupt pixel data: a client error, not a bug
        raise BadRequest(f"could not decode the {fmt.upper()} image: {_short(exc)}") from None
    return DecodedImage(pixels=pixels, format=fmt)


def _open_pil(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Open, size-check and load a PNG or JPEG with Pillow, upright as EXIF says."""
    label = fmt.upper()
    try:
        image = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except UnidentifiedImageError:
        raise BadRequest(
            f"could not decode the {label} image: it starts like one but is not valid"
        ) from None
    except Image.DecompressionBombError as exc:
        # Pillow's guard (at twice its process-wide limit) fired before our own header
        # check could; its message names Pillow's limit, so state only the server's.
        raise PayloadTooLarge(_too_many_pixels(label, exc, max_pixels)) from None
    except Exception as exc:  # corrupt headers raise many exception types in Pillow
        raise BadRequest(f"could not decode the {label} image: {_short(exc)}") from None
    width, height = image.size
    check_pixel_count(width, height, max_pixels)
    try:
        image.load()
        if fmt == "png":
            _check_png_complete(image, data)
        # Browsers show JPEGs upright according to EXIF; the mask must match that view.
        # (exif_transpose copies the image even when there is nothing to turn.)
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(_too_many_pixels(label, exc, max_pixels)) from None
    except Exception as exc:  # truncated/corrupt pixel data: a client error, not a bug
        raise BadRequest(f"could not decode the {label} image: {_short(exc)}") from None
    return image


# Colour type -> samples per pixel (PNG specification, IHDR).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (first row, row step, first column, column step).
_ADAM7 = (
    (0, 8, 0, 8),
    (0, 8, 4, 8),
    (4, 8, 0, 4),
    (0, 4, 2, 4),
    (2, 4, 0, 2),
    (0, 2, 1, 2),
    (1, 2, 0, 1),
)
_INFLATE_BLOCK = 1 << 20


def _check_png_complete(image: Image.Image, data: bytes) -> None:
    """Raise ValueError when the PNG's compressed data ends before its last row.

    Pillow's zlib decoder reports "done, no error" when the compressed stream
    ends (validly) early, and the rows it never wrote stay zero: a 564-byte
    file declaring 5000x4999 pixels loads as a black image. Image memory starts
    zeroed and rows are written in order, so a last row that is not all zero
    proves the image complete at the cost of reading one row, which settles
    every BUSI image. Otherwise (or for an interlaced PNG, whose last row can be
    written before the last pass) the IDAT stream is inflated again, in
    bounded blocks, and its length compared with what the header implies.
    """
    width, height = image.size
    interlaced = bool(image.info.get("interlace"))
    if not interlaced and image.crop((0, height - 1, width, height)).tobytes().strip(b"\0"):
        return
    header, idat = _png_chunks(data)
    if len(header) < 13:
        raise ValueError("its IHDR chunk is cut short")
    bit_depth, colour_type = header[8], header[9]
    bits = bit_depth * _PNG_SAMPLES.get(colour_type, 1)

    def scanlines(w: int, h: int) -> int:  # bytes of h rows of w pixels, filter byte included
        return h * (1 + (w * bits + 7) // 8) if w and h else 0

    if interlaced:
        expected = sum(
            scanlines((width - c0 + cs - 1) // cs, (height - r0 + rs - 1) // rs)
            for r0, rs, c0, cs in _ADAM7
            if width > c0 and height > r0
        )
    else:
        expected = scanlines(width, height)
    inflater = zlib.decompressobj()
    found = 0
    for chunk in idat:
        pending = chunk
        while pending and not inflater.eof and found < expected:
            found += len(inflater.decompress(pending, _INFLATE_BLOCK))
            pending = inflater.unconsumed_tail
    if found >= expected:
        return
    if interlaced:
        raise ValueError(
            f"its image data ends after {found} of its {expected} bytes (truncated)"
        )
    rows = found // (expected // height)
    raise ValueError(f"its image data ends after {rows} of its {height} rows (truncated)")


def _png_chunks(data: bytes) -> tuple[bytes, list[memoryview]]:
    """The IHDR payload and the IDAT payloads of a PNG file, in file order."""
    view = memoryview(data)
    header = b""
    idat: list[memoryview] = []
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        payload = view[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = bytes(payload)
        elif kind == b"IDAT":
            idat.append(payload)
        elif idat or kind == b"IEND":
            break  # the image data is one run of IDAT chunks
        position += 12 + length
    return header, idat


def _too_many_pixels(label: str, exc: Exception, max_pixels: int) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"is {found.group(1)} pixels," if found else "is"
    return f"{label} image {size} over the limit of {max_pixels} pixels"


def _pil_to_uint8(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB."""
    mode = image.mode
    wide = wide_grey_to_uint8(image)
    if wide is not None:
        return wide
    if mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if mode == "1":
        return np.ascontiguousarray(np.asarray(image.convert("L"), dtype=np.uint8))
    if mode in ("LA", "La"):
        return np.ascontiguousarray(np.asarray(image.getchannel("L"), dtype=np.uint8))
    # P, PA, RGB, RGBA, RGBa, RGBX, CMYK (Pillow undoes Adobe's inverted CMYK), YCbCr, LAB...
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return _grey_if_neutral(rgb)


def _grey_if_neutral(rgb: np.ndarray) -> np.ndarray:
    """Return ``(H, W)`` when all three channels are equal, else the RGB array itself."""
    red = rgb[..., 0]
    if np.array_equal(red, rgb[..., 1]) and np.array_equal(red, rgb[..., 2]):
        return np.ascontiguousarray(red)
    return np.ascontiguousarray(rgb)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- DICOM


def _decode_dicom(data: bytes, max_pixels: int) -> DecodedImage:
    import pydicom
    import pydicom.pixels

    _quiet_pydicom_logs()
    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not has_preamble)
    except Exception as exc:
        raise BadRequest(f"could not parse the DICOM file: {_dicom_reason(exc)}") from None
    present = [kw for kw in _PIXEL_DATA_KEYWORDS if kw in ds]
    if not present:
        if any(tag in data for tag in _PIXEL_DATA_TAGS):
            # pydicom drops an element the file ends inside of (with only a warning).
            raise BadRequest("the DICOM pixel data is truncated: the file ends inside it")
        raise BadRequest("the DICOM file has no pixel data")
    if not ds[present[0]].value:
        raise BadRequest(f"the DICOM file's {present[0]} element is empty (zero length)")
    ensure_transfer_syntax(ds)
    try:
        rows, cols = _header_size(ds, "Rows"), _header_size(ds, "Columns")
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    except ApiError:
        raise
    except Exception as exc:
        raise BadRequest(f"the DICOM header is incomplete: {_dicom_reason(exc)}") from None
    if photometric.startswith("YBR") and samples != 3:
        # pydicom would convert YBR to RGB anyway and fail on the shapes.
        raise BadRequest(
            f"the DICOM header is inconsistent: PhotometricInterpretation {photometric} "
            f"needs 3 samples per pixel, but SamplesPerPixel is {samples}"
        )
    check_pixel_count(cols, rows, max_pixels)
    syntax = ds.file_meta.TransferSyntaxUID
    syntax_name = getattr(syntax, "name", None) or str(syntax)
    _ensure_decoder(syntax, syntax_name)
    try:
        # index=0 decodes only the first frame of a multi-frame file.
        frame = pydicom.pixels.pixel_array(ds, index=0)
    except NotImplementedError as exc:
        raise UnsupportedMediaType(
            f"cannot decode DICOM pixel data encoded with {syntax_name}: {_plugin_errors(exc)}"
        ) from None
    except RuntimeError as exc:
        # A decoder for the syntax is installed (checked above), so its failure is the
        # data's fault, unless the decoder itself says it does not support this variant.
        reason = _plugin_errors(exc)
        if _UNSUPPORTED.search(reason):
            raise UnsupportedMediaType(
                f"cannot decode this DICOM pixel data encoded with {syntax_name}: {reason}"
            ) from None
        raise BadRequest(
            f"the DICOM pixel data ({syntax_name}) is corrupt or truncated: {reason}"
        ) from None
    except Exception as exc:
        raise BadRequest(f"could not decode the DICOM pixel data: {_dicom_reason(exc)}") from None
    try:
        pixels = dicom_frame_to_uint8(frame, ds, on_ignored=logger.warning)
    except DicomPixelError as exc:
        raise BadRequest(str(exc)) from None
    except Exception as exc:
        raise BadRequest(f"could not convert the DICOM pixel data: {_dicom_reason(exc)}") from None
    if pixels.ndim == 3:
        pixels = _grey_if_neutral(pixels)
    if pixels.ndim not in (2, 3) or pixels.shape[:2] != (rows, cols):
        raise BadRequest(f"DICOM pixel data has shape {pixels.shape}, expected {rows}x{cols}")
    if _blank_value(pixels) is not None:
        # Say whether the stored pixels are blank or the header's LUTs made them so.
        detail = (
            ""
            if _blank_value(frame) is not None
            else " once the DICOM header's rescale and VOI window are applied"
        )
        _refuse_blank(pixels, detail)
    return DecodedImage(pixels=pixels, format="dicom", pixel_spacing=_dicom_spacing(ds))


_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# pydicom loggers that report problems of the file being read: the decoders log each
# plugin's failure with a traceback at ERROR, though the failure is also raised (and
# answered 400 with its message), and the reader logs malformed elements at ERROR.
_PYDICOM_CLIENT_LOGGERS = ("pydicom", "pydicom.pixels.decoders.base")


def _downgrade_pydicom_record(record: logging.LogRecord) -> bool:
    # A client's broken file is not an error of the server: the request's own log line
    # (400) records it. A decoder's traceback is kept for DEBUG runs only; the reader's
    # one-line notes of a malformed element stay visible as warnings.
    if record.levelno < logging.ERROR:
        return True
    level = logging.DEBUG if record.exc_info else logging.WARNING
    record.levelno, record.levelname = level, logging.getLevelName(level)
    # The logger let the record through at ERROR; handlers usually have no level of
    # their own, so the new level is checked here, against the logger's.
    return logging.getLogger(record.name).isEnabledFor(level)


def _quiet_pydicom_logs() -> None:
    for name in _PYDICOM_CLIENT_LOGGERS:
        logging.getLogger(name).addFilter(_downgrade_pydicom_record)  # no-op when present


def _header_size(ds, keyword: str) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise BadRequest(f"the DICOM header is incomplete: {keyword} is missing or empty")
    return int(value)


_MISSING_ATTRIBUTE = re.compile(r"object has no attribute '(\w+)'")


def _dicom_reason(exc: BaseException) -> str:
    """``exc``'s message for the client: no reprs, no Python internals."""
    text = _plugin_errors(exc)
    found = _MISSING_ATTRIBUTE.search(text)
    if found:
        return f"the element {found.group(1)} is missing"
    if "NoneType" in text:
        return "an element it needs is empty"
    return text


# (7FE0,0010) Pixel Data, (7FE0,0008) Float and (7FE0,0009) Double Float Pixel Data,
# little- and big-endian.
_PIXEL_DATA_TAGS = tuple(
    group + element
    for element_le, element_be in ((b"\x10\x00", b"\x00\x10"), (b"\x08\x00", b"\x00\x08"),
                                   (b"\x09\x00", b"\x00\x09"))
    for group, element in ((b"\xe0\x7f", element_le), (b"\x7f\xe0", element_be))
)
# Decoder messages that mean "valid data this decoder cannot handle" (12-bit JPEG in
# Pillow, more bits than numpy holds...) rather than corrupt data.
_UNSUPPORTED = re.compile(r"support|cannot decode", re.IGNORECASE)
# Reprs such as "<_io.BytesIO object at 0x7fa7...>" tell the client nothing.
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
_ALL_PLUGINS_FAILED = re.compile(
    r"^Unable to decode as exceptions were raised by all available plugins:\s*"
)


def _plugin_errors(exc: BaseException) -> str:
    """``exc``'s message on one line, without pydicom's preamble and object reprs."""
    text = _ALL_PLUGINS_FAILED.sub("", str(exc))
    text = _OBJECT_REPR.sub("", text)
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _ensure_decoder(syntax, name: str) -> None:
    """Raise 415 when no installed decoder handles transfer ``syntax`` at all."""
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise UnsupportedMediaType(
            f"cannot decode DICOM pixel data encoded with {name}: "
            "no decoder for this transfer syntax is installed"
        )


def _dicom_spacing(ds) -> tuple[float, float] | None:
    """``(row_mm, col_mm)`` by :func:`vectorizer.dicom_pixel_spacing`, the client's rule
    too; each source it skipped is logged."""
    spacing, ignored = dicom_pixel_spacing(ds)
    for reason in ignored:
        logger.warning("ignoring the DICOM pixel spacing: %s", reason)
    return spacing
