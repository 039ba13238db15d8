"""Uploaded PNG, JPEG and DICOM files, read for the models, refused with the right status.

The reading is :func:`vectorizer.read_image_file`, the annotation client's too,
so both services refuse the same files for the same reasons (see
:mod:`vectorizer._imagefile`). Here its refusals become HTTP errors:

- content that is not a PNG, JPEG or DICOM (recognised from its bytes, never its
  name), or a DICOM transfer syntax no installed decoder handles: 415;
- a file that starts like one of them but cannot be read (empty, truncated,
  corrupt, a DICOM header that makes its pixels meaningless): 400;
- an image that holds nothing to segment or classify (one value everywhere, under
  8 pixels a side): 400;
- a JPEG, or a DICOM's JPEG-coded first frame, of more than 500 scans
  (:mod:`vectorizer._jpegscans`): 400;
- more pixels than ``MAX_PIXELS``, or a side over 8192 pixels, read from the header
  before any pixel is decoded: 413.

What a DICOM header states that was ignored (a VOI window that is not valid, a
pixel spacing that is not plausible) is logged as a warning naming the element and
the kind of flaw, never its value (see :func:`vectorizer._dicomfile.logged_note`).

Arrays are numpy ``(row, col)``: grey images are ``(H, W)`` uint8 and colour
images ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from vectorizer import (
    SUPPORTED_IMAGE_FORMATS,
    ImageFile,
    ImageFileError,
    ImageTooLarge,
    UnsupportedImage,
    read_image_file,
    read_mask_file,
    sniff_image_format,
)
from vectorizer._dicomfile import logged_note

from ._errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = SUPPORTED_IMAGE_FORMATS
#: An uploaded image, ready for the models: ``pixels``, ``format``, ``pixel_spacing``
#: (``(row_mm, col_mm)`` or None), ``width`` and ``height``.
DecodedImage = ImageFile
#: ``"png"``, ``"jpeg"``, ``"dicom"`` or None, from the leading bytes of a file.
sniff_format = sniff_image_format


def decode_image(
    data: bytes, *, max_pixels: int, formats: tuple[str, ...] = SUPPORTED_FORMATS
) -> DecodedImage:
    """Read an uploaded file by :func:`vectorizer.read_image_file`.

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
        Empty, truncated or undecodable data, a DICOM without pixel data or with
        corrupt pixel data, a DICOM rescale that is not valid, an image whose
        pixels all have one value or one under 8 pixels a side, a JPEG of more
        scans or markers than any encoder writes (400).
    PayloadTooLarge
        More pixels than ``max_pixels``, or a side over 8192 (413).
    UnsupportedMediaType
        Content that is none of ``formats``, or a DICOM transfer syntax that no
        installed decoder handles (415).
    """
    _quiet_pydicom_logs()
    try:
        image = read_image_file(data, max_pixels=max_pixels, formats=formats)
    except ImageFileError as exc:
        raise _api_error(exc) from None
    for note in image.notes:
        # By hash, as the client's log names images: the server never learns the name.
        logger.warning("image %s: %s", hashlib.sha256(data).hexdigest()[:12], logged_note(note))
    return image


def decode_mask(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode a mask PNG into a bool ``(H, W)`` array.

    A pixel is foreground when its stored value is above 0, whatever the
    PNG's mode, by :func:`vectorizer.read_mask_file` (``png_to_mask``'s rule, after the
    size check and EXIF orientation of :func:`vectorizer.open_picture`): a 16-bit
    mask of 0/1, grey or colour, is as valid as an 8-bit mask of 0/255. Colour masks are foreground
    where any channel is above 0; alpha is ignored. An empty mask is valid.

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
    try:
        return read_mask_file(data, max_pixels=max_pixels)
    except ImageFileError as exc:
        # Named: the reader's own words ("could not decode the PNG image") read as if the
        # image were bad.
        raise _api_error(exc, "mask: ") from None
    except Exception as exc:  # pixel values it cannot compare: a client error, not a bug
        text = str(exc) or type(exc).__name__
        raise BadRequest(f"could not decode the PNG mask: {text[:200]}") from None


def _api_error(exc: ImageFileError, prefix: str = "") -> ApiError:
    if isinstance(exc, UnsupportedImage):
        return UnsupportedMediaType(prefix + exc.message)
    if isinstance(exc, ImageTooLarge):
        return PayloadTooLarge(prefix + exc.message)
    return BadRequest(prefix + exc.message)  # CorruptImage, UnusableImage


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
