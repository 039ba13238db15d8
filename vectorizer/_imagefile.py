"""Reading an uploaded image file (PNG, JPEG, DICOM): the one reading of both services.

The model server segments the pixels :func:`read_image_file` gives and the
annotation client shows them, and both refuse the same files for the same
reasons (:mod:`vectorizer._imagerules`): before this module each service had
its own reader, and a file one refused the other opened.

- The format is recognised from the file's first bytes, never from its name: a
  text file named ``scan.png`` is :class:`UnsupportedImage`.
- A file that starts like a supported format but cannot be read (empty,
  truncated, corrupt) is :class:`CorruptImage`. So is a PNG whose compressed
  data ends, validly, before its last row or whose image data fails its CRC
  (:mod:`vectorizer._pngcheck`), and a JPEG whose scan data an early EOI marker
  cuts short (:mod:`vectorizer._jpegcheck`): Pillow reads each without a word.
- A valid JPEG whose samples are 12 or 16 bits deep, which Pillow does not decode,
  is :class:`UnsupportedEncoding` saying so (415 at the server), as the same
  codestream inside a DICOM is; not a file said to be broken.
- The size is checked from the header before any pixel is decoded
  (:func:`check_image_size`), so a small file that claims 20000x20000 pixels is
  :class:`ImageTooLarge` without the image being allocated.
- An image of one value everywhere, or under 8 pixels a side, is
  :class:`UnusableImage`.
- DICOM is read by :mod:`vectorizer._dicomfile`.

Arrays are numpy ``(row, col)``: grey images are ``(H, W)`` uint8 and colour
images ``(H, W, 3)`` uint8 RGB; PNG and JPEG are turned upright by their EXIF
orientation, as browsers show them.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin

from ._dicomfile import ImageNote, looks_like_dicom, read_dicom_file
from ._imagerules import (
    CorruptImage,
    ImageTooLarge,
    UnsupportedEncoding,
    UnsupportedImage,
    check_image_size,
    refuse_unusable,
)
from ._io import image_to_mask, sixteen_bit_to_uint8, wide_grey_to_uint8
from ._jpegcheck import check_jpeg_complete
from ._jpegscans import dicom_jpeg_scan_problem, jpeg_scan_problem
from ._orientation import browser_orientation, turn_upright
from ._png16 import (
    MAX_WIDE_COLOUR_PIXELS,
    colour_samples,
    read_wide_colour,
    wide_colour_too_large,
    wide_colour_type,
)
from ._pngcheck import (
    PNG_SIGNATURE,
    check_chunk_count,
    check_png_complete,
    png_chunks,
    without_damaged_ancillary_chunks,
)

JPEG_SIGNATURE = b"\xff\xd8\xff"
#: The formats :func:`read_image_file` reads.
SUPPORTED_IMAGE_FORMATS = ("png", "jpeg", "dicom")
# Each format is opened by its own Pillow plugin rather than Image.open: Image.open's
# decompression-bomb check refuses a large image before its size can be read, and
# check_image_size refuses it by that size, with the limits of the service.
_PLUGINS = {"png": PngImagePlugin.PngImageFile, "jpeg": JpegImagePlugin.JpegImageFile}
_COMPLETENESS = {"png": check_png_complete, "jpeg": check_jpeg_complete}
# ImageFile.mode of a 16-bit colour PNG, by its samples a pixel (Pillow has no such mode).
_WIDE_MODES = {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}


@dataclass(frozen=True)
class ImageFile:
    """An uploaded image, read.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``uint8``, ``(H, W)`` grey or ``(H, W, 3)`` RGB, rows first. Colour whose
        three channels are equal everywhere is grey. For DICOM, the first frame
        through its rescale and VOI window or LUT.
    format : str
        ``"png"``, ``"jpeg"`` or ``"dicom"``.
    pixel_spacing : tuple of float or None
        ``(row_mm, col_mm)``: the height and width of one pixel in millimetres,
        from a DICOM header; None when unknown.
    notes : tuple of ImageNote
        What the file states that was ignored (a VOI window that is not valid, a
        pixel spacing that is not plausible), and why.
    mode : str or None
        Pillow's mode of the stored PNG or JPEG picture (``"L"``, ``"RGB"``,
        ``"RGBA"``, ``"CMYK"``, ``"I;16"``...), or for a 16-bit colour PNG, which
        Pillow has no mode for, ``"RGB;16"``, ``"LA;16"`` or ``"RGBA;16"``; None for
        DICOM.
    orientation : int
        The EXIF orientation the pixels were turned by (1: as stored).
    icc_profile : bool
        Whether the PNG or JPEG carries a colour profile (not applied to ``pixels``).
    frames : int
        How many frames a DICOM file holds, or an animated PNG animates, of which
        ``pixels`` is the first shown; 1 for other PNG files and for JPEG.
    """

    pixels: np.ndarray
    format: str
    pixel_spacing: tuple[float, float] | None = None
    notes: tuple[ImageNote, ...] = ()
    mode: str | None = None
    orientation: int = 1
    icc_profile: bool = False
    frames: int = 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def sniff_image_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"dicom"`` or None, from the leading bytes of ``data``.

    Examples
    --------
    >>> sniff_image_format(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
    'png'
    >>> sniff_image_format(b"hello, I am a text file named scan.png") is None
    True
    """
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if looks_like_dicom(data):
        return "dicom"
    return None


def read_image_file(
    data: bytes, *, max_pixels: int | None, formats: tuple[str, ...] = SUPPORTED_IMAGE_FORMATS
) -> ImageFile:
    """Read an uploaded PNG, JPEG or DICOM file into 8-bit pixels.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int or None
        Largest accepted ``width * height``, checked from the header; None sets
        no limit but :data:`MAX_IMAGE_SIDE` a side.
    formats : tuple of str
        Formats accepted (a subset of :data:`SUPPORTED_IMAGE_FORMATS`).

    Returns
    -------
    ImageFile

    Raises
    ------
    UnsupportedImage
        Content that is none of ``formats``; :class:`UnsupportedEncoding` for a
        DICOM transfer syntax that no installed decoder handles, or a JPEG of 12- or
        16-bit samples.
    CorruptImage
        Empty, truncated or undecodable data; a DICOM without pixel data, with
        corrupt pixel data or a header that makes its pixels meaningless; a JPEG, or a
        DICOM's JPEG-coded first frame, of more scans or markers than any encoder
        writes (:mod:`._jpegscans`).
    ImageTooLarge
        More than ``max_pixels`` pixels or a side over :data:`MAX_IMAGE_SIDE`.
    UnusableImage
        Pixels of one value everywhere or nearly, or a side under :data:`MIN_IMAGE_SIDE`.
    """
    data = _check_arguments(data, max_pixels, formats, SUPPORTED_IMAGE_FORMATS)
    fmt = _check_format(data, formats)
    # Before any decoder runs: libjpeg spends as long on each empty scan as on a full one.
    problem = (jpeg_scan_problem(data) if fmt == "jpeg"
               else dicom_jpeg_scan_problem(data) if fmt == "dicom" else None)
    if problem is not None:
        raise CorruptImage(f"could not decode the {fmt.upper()} image: {problem}")
    if fmt == "dicom":
        frame = read_dicom_file(data, max_pixels)
        pixels = _grey_if_neutral(frame.pixels) if frame.pixels.ndim == 3 else frame.pixels
        refuse_unusable(pixels, frame.stored)
        return ImageFile(pixels, "dicom", frame.pixel_spacing, frame.notes, frames=frame.frames)
    image, orientation, frames, wide = _open_picture(data, fmt, max_pixels)
    try:
        pixels = _pil_to_uint8(image) if wide is None else _wide_colour_to_uint8(wide)
    except Exception as exc:  # pixel values that are not finite numbers, say
        raise CorruptImage(f"could not decode the {fmt.upper()} image: {_short(exc)}") from None
    refuse_unusable(pixels)
    return ImageFile(
        pixels,
        fmt,
        mode=image.mode if wide is None else _WIDE_MODES[wide.shape[2]],
        orientation=orientation,
        icc_profile=bool(image.info.get("icc_profile")),
        frames=frames,
    )


def open_picture(
    data: bytes, *, max_pixels: int | None, formats: tuple[str, ...] = ("png", "jpeg")
) -> Image.Image:
    """Open, size-check, load and check a PNG or JPEG, upright as its EXIF says.

    For readers of the picture itself rather than of 8-bit pixels (the model
    server's mask upload): the same refusals as :func:`read_image_file`, but
    blank and tiny pictures are not refused.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int or None
        As for :func:`read_image_file`.
    formats : tuple of str
        A subset of ``("png", "jpeg")``.

    Returns
    -------
    PIL.Image.Image
        Loaded, in its stored mode; but a 16-bit colour PNG (RGB, grey+alpha, RGBA)
        comes in Pillow's 8-bit reduction of it, each sample's high byte:
        :func:`read_image_file` and :func:`read_mask_file` read its full values.

    Raises
    ------
    UnsupportedImage, CorruptImage, ImageTooLarge
        As :func:`read_image_file`.
    """
    data = _check_arguments(data, max_pixels, formats, tuple(_PLUGINS))
    fmt = _check_format(data, formats)
    return _open_picture(data, fmt, max_pixels)[0]


def read_mask_file(data: bytes, *, max_pixels: int | None) -> np.ndarray:
    """The foreground of an uploaded mask PNG: every pixel with a stored value above 0.

    :func:`open_picture`'s checks and upright turn, then
    :func:`vectorizer.image_to_mask`'s rule, with a 16-bit colour PNG read on its
    16-bit samples (Pillow's 8-bit reduction reads a mask of 0/1 as empty).

    Parameters
    ----------
    data : bytes
        The whole PNG file.
    max_pixels : int or None
        As for :func:`read_image_file`.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``, rows first; an empty mask is valid.

    Raises
    ------
    UnsupportedImage, CorruptImage, ImageTooLarge
        As :func:`open_picture`; anything but a PNG is :class:`UnsupportedImage`.
    """
    data = _check_arguments(data, max_pixels, ("png",), ("png",))
    fmt = _check_format(data, ("png",))
    image, _, _, wide = _open_picture(data, fmt, max_pixels)
    if wide is not None:  # any colour sample above 0; alpha is ignored
        return np.ascontiguousarray(colour_samples(wide).max(axis=2) > 0)
    return image_to_mask(image)


def _check_arguments(data, max_pixels, formats, allowed: tuple[str, ...]) -> bytes:
    """``data`` as bytes, once the arguments of a public reader are checked."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0
    ):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    if not isinstance(formats, tuple) or not formats or not set(formats) <= set(allowed):
        raise ValueError(f"formats must be a non-empty tuple of {allowed}, got {formats!r}")
    return bytes(data)


def _check_format(data: bytes, formats: tuple[str, ...]) -> str:
    if not data:
        raise CorruptImage("the uploaded file is empty")
    fmt = sniff_image_format(data)
    if fmt is None or fmt not in formats:
        found = fmt.upper() if fmt else _other_format(data)
        names = ", ".join(f.upper() for f in formats)
        article = "an" if found and found[0] in "AEIOU" else "a"  # an ICO, an EPS file
        what = f"{article} {found} file" if found else "content that is not an image we read"
        raise UnsupportedImage(f"unsupported image type: got {what}; expected {names}", found)
    return fmt


def _other_format(data: bytes) -> str | None:
    """The Pillow format whose signature ``data`` starts with (``"GIF"``...), or None.

    Only each plugin's check of the first 16 bytes runs: content refused anyway is
    not parsed for a name in its message.
    """
    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        try:
            if accept is not None and accept(prefix):
                return name
        except Exception:  # a plugin's check tripping over a short prefix
            continue
    return None


#: Pillow's words for a JPEG whose samples are deeper than 8 bits (SOF precision 12 or 16).
_DEEP_JPEG = re.compile(r"cannot handle (\d+)-bit layers")
#: Pillow's words for its limits on a PNG's text (per chunk once inflated, and in all).
_TEXT_LIMIT = re.compile(r"MAX_TEXT_CHUNK|MAX_TEXT_MEMORY")


def _open_picture(
    data: bytes, fmt: str, max_pixels: int | None
) -> tuple[Image.Image, int, int, np.ndarray | None]:
    """The loaded, checked, upright picture, the EXIF orientation it was turned by, how
    many frames the file animates (1 but for an animated PNG), and for a 16-bit colour
    PNG its upright 16-bit samples (:func:`vectorizer._png16.read_wide_colour`; the
    picture then holds only their high bytes), else None.

    Of an animated PNG, the picture is its default image, the one a browser shows
    first; a file that leaves the default image out of its animation is refused
    (:class:`UnsupportedEncoding`), as a browser never draws that image.
    """
    label = fmt.upper()
    if fmt == "png":  # libpng, so a browser, drops them and shows the image
        try:
            check_chunk_count(data)
        except ValueError as exc:
            raise CorruptImage(f"could not decode the {label} image: {exc}") from None
        data = without_damaged_ancillary_chunks(data)
    try:
        try:
            image = _PLUGINS[fmt](io.BytesIO(data))
        except ValueError as exc:
            # Past Pillow's limits on a PNG's text (1 MB a chunk once inflated, 64 MB in
            # all): a browser shows the picture, and nothing here reads the text, so
            # the picture is read without it.
            if fmt != "png" or not _TEXT_LIMIT.search(str(exc)):
                raise
            data = without_damaged_ancillary_chunks(data, text=True)
            image = _PLUGINS[fmt](io.BytesIO(data))
    # The errors Image.open reports as "cannot identify" for a header not of its format.
    except (SyntaxError, OSError, ValueError, IndexError, TypeError, KeyError, EOFError,
            struct.error) as exc:
        depth = _DEEP_JPEG.fullmatch(str(exc)) if fmt == "jpeg" else None
        if depth:
            # A valid file of a kind Pillow does not decode, not a broken one: said as
            # a DICOM holding the same codestream says it.
            raise UnsupportedEncoding(
                f"cannot decode this JPEG: its samples have {depth.group(1)}-bit precision "
                "(extended or lossless JPEG), which Pillow does not support; export it as "
                "an 8-bit JPEG or a 16-bit PNG", "JPEG") from None
        raise CorruptImage(
            f"could not decode the {label} image: it starts like one but is not valid"
        ) from None
    check_image_size(image.width, image.height, max_pixels)
    too_large = wide_colour_too_large(data) if fmt == "png" else None
    if too_large:
        raise ImageTooLarge(too_large, image.width, image.height, MAX_WIDE_COLOUR_PIXELS)
    try:
        image.load()
        _COMPLETENESS[fmt](image, data)
        frames = _animation_frames(data) if getattr(image, "n_frames", 1) > 1 else 1
        # With no frame at all too (an acTL and no fcTL): Chromium then draws nothing.
        hidden_default = bool(getattr(image, "default_image", False))
        # The picture as a browser shows it, so the mask matches that view: turned by
        # the EXIF orientation only where browsers read one (see _orientation).
        orientation = browser_orientation(data)
        image = turn_upright(image, orientation)
        # Checked by Pillow above; read again on its 16-bit samples (pypng).
        wide = (read_wide_colour(data, orientation)
                if fmt == "png" and wide_colour_type(data) else None)
    except Exception as exc:  # truncated/corrupt data raises many types in Pillow
        raise CorruptImage(f"could not decode the {label} image: {_short(exc)}") from None
    if hidden_default:
        # A browser never draws such a default image, only the frames, composited on a
        # transparent canvas that has no grey value to give the model.
        raise UnsupportedEncoding(
            "an animated PNG whose default image is not part of its animation is not "
            "read; save the frame to annotate as a still PNG", "PNG")
    return image, orientation, max(frames, 1), wide


def _animation_frames(data: bytes) -> int:
    """The frames of an animated PNG, counted by their ``fcTL`` chunks (its ``acTL``
    count is a claim the chunks may not bear out); 0 when it has none."""
    return sum(kind == b"fcTL" for kind, _, _ in png_chunks(data))


def _pil_to_uint8(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB; alpha is dropped."""
    wide = wide_grey_to_uint8(image)
    if wide is not None:
        return wide
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if image.mode == "1":
        return np.ascontiguousarray(np.asarray(image.convert("L"), dtype=np.uint8))
    if image.mode in ("LA", "La"):
        return np.ascontiguousarray(np.asarray(image.getchannel("L"), dtype=np.uint8))
    # P, PA, RGB, RGBA, RGBa, RGBX, CMYK (Pillow undoes Adobe's inverted CMYK), YCbCr, LAB...
    return _grey_if_neutral(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _wide_colour_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit colour samples ``(H, W, C)`` as uint8 grey or RGB, alpha dropped, by the
    rule of 16-bit grey (:func:`vectorizer.sixteen_bit_to_uint8`) over all colour samples
    at once, so the channels keep their balance."""
    colour = sixteen_bit_to_uint8(colour_samples(values))
    if colour.shape[2] == 1:
        return np.ascontiguousarray(colour[..., 0])
    return _grey_if_neutral(colour)


def _grey_if_neutral(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` when all three channels are equal, else the RGB array itself."""
    red = rgb[..., 0]
    if np.array_equal(red, rgb[..., 1]) and np.array_equal(red, rgb[..., 2]):
        return np.ascontiguousarray(red)
    return np.ascontiguousarray(rgb)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
