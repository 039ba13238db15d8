"""Opening uploaded images: PNG, JPEG and DICOM (first frame), in Python.

The browser only reads the file; the reading is :func:`vectorizer.read_image_file`,
the model server's too, so the picture shown is the one the model is given and a
file the server would refuse is refused at open, for the same reason. Here its
refusals become a clear :class:`ImageDecodeError` for the page, and the decoded
pixels a picture the browser shows exactly so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vectorizer import (
    MAX_IMAGE_SIDE,
    ImageFile,
    ImageFileError,
    ImageTooLarge,
    UnsupportedEncoding,
    UnsupportedImage,
    UnusableImage,
    read_image_file,
)
from vectorizer._dicomfile import logged_note

logger = logging.getLogger(__name__)

#: Largest width or height accepted (``vectorizer.MAX_IMAGE_SIDE``, the server's too).
MAX_SIDE = MAX_IMAGE_SIDE
#: Largest width x height opened by default: the model server's default
#: ``SONOTRACE_MAX_PIXELS``, over which it refuses every request (413), so such an
#: image could be looked at but never segmented or classified.
DEFAULT_MAX_PIXELS = 25_000_000
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
        The file name (shown and recorded). The format is read from the bytes only,
        as the model server reads it.
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
        With a message for the user, for empty, oversized, unknown, corrupt or blank
        files: every file :func:`vectorizer.read_image_file` refuses.
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
    # Each refusal is logged by the file's hash and the reader's reason, never the name
    # the page's message gives: an operator told "the file would not open" has a trace.
    if not data:
        logger.info("refused an empty file")
        raise ImageDecodeError(f"{name} is empty.")
    try:
        check_size(len(data), name, max_bytes)
    except ImageDecodeError:
        logger.info("refused a file of %d bytes: over the upload limit", len(data))
        raise
    try:
        read = read_image_file(data, max_pixels=max_pixels)
    except ImageFileError as exc:
        logger.info("%s refused: %s", _log_ref(data), _valueless(exc))
        raise ImageDecodeError(_refusal(exc, name)) from None
    except Exception as exc:  # a bug in the reader: the page still only gets a message
        logger.exception("could not decode %s", _log_ref(data))
        raise ImageDecodeError(f"{name} is damaged and cannot be read ({exc}).") from None
    notes = []
    for note in read.notes:
        if note.subject == "pixel spacing":
            # Said on the page only when no source gave a spacing: the image then opens
            # with measurements in pixels rather than failing at the first measurement.
            if read.pixel_spacing is None:
                notes.append(f"Pixel spacing ignored: {note.reason}. Measurements are in pixels.")
        else:
            # The element and the kind of flaw, never the value (it may be a patient's
            # name), as the model server's log says it; the page's user opened the file.
            logger.warning("%s: %s", _log_ref(data), logged_note(note))
    if read.frames > 1:
        # A cine loop or a multi-frame export: the reader must know which frame the
        # outline and its measurements are of.
        what = "DICOM holds" if read.format == "dicom" else "animated PNG has"
        notes.append(f"This {what} {read.frames} frames: the first is shown, "
                     "outlined and saved.")
    return DecodedImage(
        data=data,
        name=name,
        kind=read.format,
        pixels=read.pixels,
        pixel_spacing_mm=read.pixel_spacing,
        display_uri=_display_uri(read, data),
        notes=tuple(notes),
    )


def _refusal(exc: ImageFileError, name: str) -> str:
    """The page's message for a file the reader refused."""
    if isinstance(exc, UnsupportedImage) and not isinstance(exc, UnsupportedEncoding):
        if exc.found:
            article = "an" if exc.found[0] in "AEIOU" else "a"  # an ICO file
            return f"{name} is {article} {exc.found} file; open a PNG, JPEG or DICOM image."
        return f"{name} is not a PNG, JPEG or DICOM image."
    if isinstance(exc, ImageTooLarge) and exc.max_bytes is not None:
        # Refused for the bytes its pixels would take (deep samples, a deflated DICOM
        # that inflates too far), not its size: the reader's message says which.
        return f"{name} is too large to open: {exc.message}."
    if isinstance(exc, ImageTooLarge):
        width, height = exc.width, exc.height
        if max(width, height) > exc.max_side:
            return f"{name} is {width}x{height}; images up to {exc.max_side} px are accepted."
        return (
            f"{name} is {width}x{height} ({width * height:,} pixels); images up to "
            f"{exc.max_pixels:,} pixels are accepted."
        )
    if isinstance(exc, UnsupportedEncoding | UnusableImage):
        return f"{name}: {exc.message}."
    return f"{name} is damaged and cannot be read ({exc.message})."  # CorruptImage


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


def _display_uri(read: ImageFile, data: bytes) -> str:
    """``data:`` URI the browser shows as exactly ``read.pixels``: the upload itself
    when :func:`_shown_as_decoded` says a browser shows it so, else the pixels as a PNG.

    The browser would otherwise apply its own alpha, gamma, colour profile, CMYK,
    orientation or 16-bit handling and show another picture than the one the model
    and the measurements use.
    """
    if read.format != "dicom" and read.orientation == 1 and _shown_as_decoded(read, data):
        mime = "image/png" if read.format == "png" else "image/jpeg"
        return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return _png_uri(read.pixels)


def _shown_as_decoded(read: ImageFile, data: bytes) -> bool:
    """Whether a browser shows the PNG or JPEG file ``data`` as exactly its decoded pixels.

    True only for an 8-bit grey or RGB PNG with no chunk outside
    :data:`_PLAIN_PNG_CHUNKS`, and a grey or YCbCr/RGB JPEG without a colour
    profile; EXIF orientation is the caller's to check. These need no re-encoding
    (13 ms for a BUSI image, about 0.3-0.7 s at 4000x3000), which every BUSI
    image is. A baseline or progressive JPEG decoded by Chromium (libjpeg-turbo,
    as Pillow) was checked equal to Pillow's pixels, grey and colour, 4:2:0 and 4:4:4.

    Parameters
    ----------
    read : vectorizer.ImageFile
        ``data`` as the reader read it.
    data : bytes
        The file.
    """
    if read.format == "jpeg":
        # CMYK (and Adobe's inverted CMYK) is shown differently by every browser,
        # and a colour profile is applied by the browser but not by Pillow.
        return read.mode in ("L", "RGB") and not read.icc_profile
    if read.format != "png" or len(data) < 33:
        return False
    # IHDR is the first chunk: bit depth at byte 24, colour type at 25 (0 grey, 2 RGB).
    if data[24] != 8 or data[25] not in (0, 2):
        return False
    position = 8  # past the 8-byte PNG signature, which the reader has checked
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind not in _PLAIN_PNG_CHUNKS:
            return False
        if kind == b"IEND":
            return True
        position += 12 + length
    return True


#: A value the reader quotes in its reason (``'JANE^DOE'``, ``"..."``).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _valueless(exc: Exception) -> str:
    """The reader's reason for a log line, each value it quotes left out.

    A header element the reader refuses is quoted with its value, and a
    mis-encoded header can hold a patient's name in a numeric element: the log says
    which element and why, as :func:`vectorizer.logged_note` does for one ignored.

    >>> _valueless(ValueError("the DICOM RescaleSlope 'JANE^DOE' is not a number"))
    'the DICOM RescaleSlope … is not a number'
    """
    return _QUOTED.sub("…", " ".join(str(exc).split()))[:300]


def _log_ref(data: bytes) -> str:
    """How the log names an image: by its hash, as the Annotate page's log lines do,
    never by its file name (scanners' exports often put the patient's name there)."""
    return f"image {hashlib.sha256(data).hexdigest()[:12]}"


def _png_uri(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
