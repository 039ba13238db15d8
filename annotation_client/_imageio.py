"""Opening uploaded images: PNG, JPEG and DICOM (first frame), in Python.

The browser only reads the file; decoding happens here with pillow and pydicom,
so a bad file gives a clear :class:`ImageDecodeError` instead of a broken page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from vectorizer import (
    DicomPixelError,
    dicom_frame_to_uint8,
    dicom_pixel_spacing,
    ensure_transfer_syntax,
    wide_grey_to_uint8,
)

logger = logging.getLogger(__name__)

#: Largest width or height accepted; BUSI images are at most about 1000 px, and a
#: much larger picture is more likely a mistake (or a decompression bomb).
MAX_SIDE = 8192
#: Largest width x height opened by default: the model server's default
#: ``SONOTRACE_MAX_PIXELS``, over which it refuses every request (413), so such an
#: image could be looked at but never segmented or classified.
DEFAULT_MAX_PIXELS = 25_000_000
_EXIF_ORIENTATION = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_DICOM_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
#: PNG chunks that cannot change how a browser shows an 8-bit grey or RGB image
#: (text, resolution, time, significant bits, a background or suggested palette
#: that only matter with transparency). Any other chunk -- tRNS, gAMA, cHRM, iCCP,
#: sRGB, cICP, eXIf, acTL (animation) and unknown ones -- may make the browser's
#: picture differ from the decoded pixels, so the pixels are re-encoded instead.
_PLAIN_PNG_CHUNKS = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tEXt", b"zTXt", b"iTXt", b"pHYs", b"tIME",
     b"sBIT", b"bKGD", b"hIST", b"sPLT"}
)


class ImageDecodeError(ValueError):
    """The uploaded file is not an image this client can open."""


@dataclass(frozen=True)
class DecodedImage:
    """An opened image.

    Attributes
    ----------
    data : bytes
        The file as uploaded (sent unchanged to the model server).
    name : str
        File name.
    kind : {"png", "jpeg", "dicom"}
    pixels : numpy.ndarray
        ``uint8`` ``(H, W)`` grey or ``(H, W, 3)`` RGB; for DICOM the first frame
        with its VOI LUT / window applied.
    pixel_spacing_mm : (float, float) or None
        ``(row_mm, col_mm)`` physical pixel size, when the file states it.
    display_uri : str
        ``data:`` URI of a picture of the pixels for the browser, at full size.
    notes : tuple of str
        Things the user should know about how the file was read, such as a pixel
        spacing that was ignored as implausible.
    """

    data: bytes
    name: str
    kind: str
    pixels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None
    display_uri: str
    notes: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def meta(self) -> dict:
        """JSON-able description for the page's stores (no pixel data)."""
        return {
            "sha256": self.sha256,
            "name": self.name,
            "kind": self.kind,
            "size_bytes": len(self.data),
            "width": self.width,
            "height": self.height,
            "pixel_spacing_mm": list(self.pixel_spacing_mm) if self.pixel_spacing_mm else None,
            "notes": list(self.notes),
        }


def parse_data_url(contents: str) -> bytes:
    """The bytes of a ``data:<mime>;base64,<payload>`` URL, as ``dcc.Upload`` gives them.

    Raises
    ------
    ImageDecodeError
        If ``contents`` is not a base64 data URL.
    """
    if not isinstance(contents, str) or not contents.startswith("data:"):
        raise ImageDecodeError("The upload is not a file (expected a data: URL).")
    header, sep, payload = contents.partition(",")
    if not sep or ";base64" not in header:
        raise ImageDecodeError("The upload is not base64-encoded.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError("The upload's base64 payload is corrupt.") from exc


def _is_dicom(data: bytes, name: str) -> bool:
    """Whether to read ``data`` as DICOM: by its bytes, by its name only when they are silent.

    The order is the model server's (``model_server.sniff_format``), so the client
    never shows one image while the server segments another reading of the bytes.
    """
    if data.startswith((_PNG_SIGNATURE, _JPEG_SIGNATURE)):
        return False
    if data[128:132] == b"DICM" or _looks_like_bare_dicom(data):
        return True
    # Content that has none of these marks: a DICOM data set written oddly, or a
    # picture in another format, which pillow names in its refusal.
    return name.lower().endswith((".dcm", ".dicom"))


def _looks_like_bare_dicom(data: bytes) -> bool:
    # A data set written without the 128-byte preamble starts with a little-endian
    # tag of group 0x0002 (file meta) or 0x0008 (identifying), then an explicit VR
    # of two capital letters or an implicit 4-byte length.
    if len(data) < 8 or data[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    vr = data[4:6]
    return (vr.isalpha() and vr.isupper()) or int.from_bytes(data[4:8], "little") < len(data)


def decode_image(
    data: bytes,
    name: str = "image",
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> DecodedImage:
    """Open a PNG, JPEG or DICOM file.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    name : str, optional
        The file name (shown and recorded). The format is read from the bytes; a
        ``.dcm``/``.dicom`` name decides only for content with no known signature.
    max_bytes : int, optional
        Refuse larger files.
    max_pixels : int or None, optional
        Refuse images of more than ``max_pixels`` pixels (width x height, read from
        the header before any pixel is decoded); the model server refuses them.
        Default :data:`DEFAULT_MAX_PIXELS`, the server's default; pass the client
        config's ``max_pixels``. None sets no limit beyond :data:`MAX_SIDE`.

    Returns
    -------
    DecodedImage

    Raises
    ------
    ImageDecodeError
        With a message for the user, for empty, oversized, unknown or corrupt files.
    """
    if not isinstance(data, bytes | bytearray):
        raise TypeError("data must be bytes")
    if not isinstance(name, str):
        raise TypeError("name must be a str")
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0
    ):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    data = bytes(data)
    if not data:
        raise ImageDecodeError(f"{name} is empty.")
    check_size(len(data), name, max_bytes)
    try:
        notes: list[str] = []
        if _is_dicom(data, name):
            pixels, spacing = _decode_dicom(data, name, notes, max_pixels)
            kind = "dicom"
            display = _png_uri(pixels)
        else:
            pixels, kind, display = _decode_picture(data, name, max_pixels)
            spacing = None
    except ImageDecodeError:
        raise
    except Exception as exc:  # a malformed header value (window, spacing, EXIF) raises anything
        logger.exception("could not decode %s", _log_ref(data))
        raise ImageDecodeError(f"{name} is damaged and cannot be read ({exc}).") from None
    height, width = pixels.shape[:2]
    if min(height, width) < 8:
        raise ImageDecodeError(f"{name} is only {width}x{height} pixels.")
    return DecodedImage(
        data=data,
        name=name,
        kind=kind,
        pixels=pixels,
        pixel_spacing_mm=spacing,
        display_uri=display,
        notes=tuple(notes),
    )


def check_size(size: int, name: str, max_bytes: int | None) -> None:
    """Refuse a file of ``size`` bytes over ``max_bytes``, as :func:`decode_image` does.

    So a file can be refused from its size alone, before it is read.

    Raises
    ------
    ImageDecodeError
        If ``max_bytes`` is not None and ``size`` is larger.
    """
    if max_bytes is not None and size > max_bytes:
        raise ImageDecodeError(
            # MB here are MiB, as in SONOTRACE_MAX_UPLOAD_MB.
            f"{name} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:g} MB."
        )


def _check_dimensions(width: int, height: int, name: str, max_pixels: int | None) -> None:
    """Refuse an image over :data:`MAX_SIDE` per side or ``max_pixels`` in all.

    Called with the size from the file's header, before any pixel is decoded.
    """
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageDecodeError(
            f"{name} is {width}x{height}; images up to {MAX_SIDE} px are accepted."
        )
    if max_pixels is not None and width * height > max_pixels:
        raise ImageDecodeError(
            f"{name} is {width}x{height} ({width * height:,} pixels); images up to "
            f"{max_pixels:,} pixels are accepted."
        )


def _open_header(data: bytes, name: str) -> Image.Image:
    """The file opened by Pillow with only its header read.

    A PNG or JPEG (by signature, as the model server tells them) is opened by its
    own Pillow plugin, without :func:`PIL.Image.open`'s decompression-bomb check:
    that check refuses a large image before its size can be read, and the size
    is checked against this client's own, smaller limits right after.
    Other content goes through :func:`PIL.Image.open`, only so that the refusal
    can name its format.
    """
    buffer = io.BytesIO(data)
    try:
        if data.startswith(_PNG_SIGNATURE):
            return PngImagePlugin.PngImageFile(buffer)
        if data.startswith(_JPEG_SIGNATURE):
            return JpegImagePlugin.JpegImageFile(buffer)
        return Image.open(buffer)
    # The errors Image.open turns into UnidentifiedImageError for a header that is not
    # its format's; the bomb error only for other formats, which are refused anyway.
    except (UnidentifiedImageError, SyntaxError, IndexError, TypeError, struct.error,
            Image.DecompressionBombError):
        raise ImageDecodeError(f"{name} is not a PNG, JPEG or DICOM image.") from None


def _decode_picture(data: bytes, name: str, max_pixels: int | None) -> tuple[np.ndarray, str, str]:
    """Pixels, kind and display URI of a PNG or JPEG.

    Returns
    -------
    pixels : numpy.ndarray
        ``uint8`` ``(H, W)`` or ``(H, W, 3)``, upright, as the model server decodes them.
    kind : {"png", "jpeg"}
    display_uri : str
        ``data:`` URI the browser shows as exactly ``pixels``: the upload itself when
        :func:`_shown_as_decoded` says a browser shows it so, else ``pixels`` as a PNG.
    """
    try:
        image = _open_header(data, name)
        _check_dimensions(image.width, image.height, name, max_pixels)
        fmt = image.format
        if fmt not in ("PNG", "JPEG"):
            raise ImageDecodeError(
                f"{name} is a {fmt or 'unknown'} file; open a PNG, JPEG or DICOM image."
            )
        image.load()
        # The model server turns a PNG or JPEG upright by its EXIF orientation before
        # segmenting it, so the outline is in upright coordinates (a PNG's eXIf chunk
        # is read after loading, as it may follow the pixel data).
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        upright = image if orientation == 1 else ImageOps.exif_transpose(image)
    except ImageDecodeError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageDecodeError(f"{name} is damaged and cannot be read ({exc}).") from None
    try:
        pixels = _to_uint8(upright)
    except ValueError as exc:  # pixel values that are not finite numbers
        raise ImageDecodeError(f"{name} cannot be shown: {exc}.") from None
    kind = fmt.lower()
    if orientation == 1 and _shown_as_decoded(image, data):
        mime = "image/png" if kind == "png" else "image/jpeg"
        uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    else:
        # The browser would apply its own alpha, gamma, colour profile, CMYK,
        # orientation or 16-bit handling and show another picture than the one
        # the model and the measurements use: it is shown the decoded pixels.
        uri = _png_uri(pixels)
    return pixels, kind, uri


def _shown_as_decoded(image: Image.Image, data: bytes) -> bool:
    """Whether a browser shows the file ``data`` as exactly the pixels decoded from it.

    True only for an 8-bit grey or RGB PNG with no chunk outside
    :data:`_PLAIN_PNG_CHUNKS`, and a grey or YCbCr/RGB JPEG without a colour
    profile; EXIF orientation is the caller's to check. These need no re-encoding
    (13 ms for a BUSI image, about 0.3-0.7 s at 4000x3000), which every BUSI
    image is. A baseline or progressive JPEG decoded by Chromium (libjpeg-turbo,
    as Pillow) was checked equal to Pillow's pixels, grey and colour, 4:2:0 and 4:4:4.

    Parameters
    ----------
    image : PIL.Image.Image
        ``data`` opened by Pillow, loaded, before any orientation is applied.
    data : bytes
        The file.
    """
    if image.format == "JPEG":
        # CMYK (and Adobe's inverted CMYK) is shown differently by every browser,
        # and a colour profile is applied by the browser but not by Pillow.
        return image.mode in ("L", "RGB") and not image.info.get("icc_profile")
    if image.format != "PNG" or len(data) < 33:
        return False
    # IHDR is the first chunk: bit depth at byte 24, colour type at 25 (0 grey, 2 RGB).
    if data[24] != 8 or data[25] not in (0, 2):
        return False
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind not in _PLAIN_PNG_CHUNKS:
            return False
        if kind == b"IEND":
            return True
        position += 12 + length
    return True


def _to_uint8(image: Image.Image) -> np.ndarray:
    """``uint8`` ``(H, W)`` grey or ``(H, W, 3)`` RGB pixels, by the model server's rules.

    16-bit grey by :func:`vectorizer.sixteen_bit_to_uint8`, as the model server; alpha
    dropped (not composited); palette through its colours; CMYK and YCbCr converted to RGB.
    """
    wide = wide_grey_to_uint8(image)
    if wide is not None:
        return wide
    if image.mode in ("RGBA", "P", "PA", "LA", "CMYK", "YCbCr", "1"):
        image = image.convert("RGB" if image.mode not in ("LA", "1") else "L")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _decode_dicom(
    data: bytes, name: str, notes: list[str], max_pixels: int | None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
        raise ImageDecodeError(f"{name} is not a readable DICOM file ({exc}).") from None
    if not any(keyword in ds for keyword in _DICOM_PIXEL_KEYWORDS):
        raise ImageDecodeError(f"{name} is a DICOM file without an image.")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    _check_dimensions(cols, rows, name, max_pixels)
    try:
        from pydicom.pixels import pixel_array

        ensure_transfer_syntax(ds)

        # index=0 decodes only the first frame; YBR comes out as RGB.
        frame = pixel_array(ds, index=0)
    except Exception as exc:  # pydicom raises many types for unsupported encodings
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        detail = f"transfer syntax {syntax.name}" if syntax is not None else str(exc)
        raise ImageDecodeError(f"{name}: cannot decode the DICOM pixels ({detail}).") from None
    ref = _log_ref(data)
    try:
        # The model server's own rule, so the picture shown is the one it segments.
        pixels = dicom_frame_to_uint8(
            frame, ds, on_ignored=lambda why: logger.warning("%s: %s", ref, why)
        )
    except DicomPixelError as exc:
        raise ImageDecodeError(f"{name}: {exc}.") from None
    except Exception as exc:  # a malformed header element pydicom trips over
        raise ImageDecodeError(f"{name}: cannot convert the DICOM pixels ({exc}).") from None
    if pixels.shape[:2] != (rows, cols):
        raise ImageDecodeError(f"{name}: unsupported DICOM pixel layout {frame.shape}.")
    return np.ascontiguousarray(pixels), _dicom_spacing(ds, notes)


def _log_ref(data: bytes) -> str:
    """How the log names an image: by its hash, as the Annotate page's log lines do,
    never by its file name (scanners' exports often put the patient's name there)."""
    return f"image {hashlib.sha256(data).hexdigest()[:12]}"


def _dicom_spacing(ds, notes: list[str]) -> tuple[float, float] | None:
    """``(row_mm, col_mm)`` by :func:`vectorizer.dicom_pixel_spacing`, the model server's
    rule too.

    A stated spacing that cannot be read, is not finite, not positive or above
    ``vectorizer.MAX_PIXEL_SPACING_MM`` is ignored with a note in ``notes`` (when no
    other source gives one): the image opens with measurements in pixels rather
    than failing at the first measurement.
    """
    spacing, ignored = dicom_pixel_spacing(ds)
    if spacing is None:
        notes.extend(
            f"Pixel spacing ignored: {reason}. Measurements are in pixels." for reason in ignored
        )
    return spacing


def _png_uri(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
