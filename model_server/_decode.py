"""Decode uploaded PNG, JPEG and DICOM files into uint8 arrays, defensively.

The format is recognised from the file's first bytes, never from its name or
the declared content type: a text file named ``scan.png`` is not a PNG and is
answered 415 like any other unsupported content. A file that starts like a
supported format but cannot be decoded (truncated, corrupt) is answered 400.

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
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

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
        Empty or undecodable data, or a DICOM without pixel data (400).
    PayloadTooLarge
        More pixels than ``max_pixels`` (413).
    UnsupportedMediaType
        Content that is none of ``formats`` (415).
    """
    if not data:
        raise BadRequest("the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None or fmt not in formats:
        names = ", ".join(f.upper() for f in formats)
        found = f"a {fmt.upper()} file" if fmt else "content that is not an image we read"
        raise UnsupportedMediaType(f"unsupported image type: got {found}; expected {names}")
    if fmt == "dicom":
        return _decode_dicom(data, max_pixels)
    return _decode_pil(data, fmt, max_pixels)


def decode_mask(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode a mask PNG into a bool ``(H, W)`` array (any non-zero grey level is foreground)."""
    image = decode_image(data, max_pixels=max_pixels, formats=("png",))
    pixels = image.pixels
    if pixels.ndim == 3:
        pixels = pixels.max(axis=2)
    return pixels > 0


# --------------------------------------------------------------------------- PNG / JPEG


def _decode_pil(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    label = fmt.upper()
    try:
        image = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except UnidentifiedImageError:
        raise BadRequest(
            f"could not decode the {label} image: it starts like one but is not valid"
        ) from None
    except Image.DecompressionBombError as exc:
        message = f"{label} image is over the limit of {max_pixels} pixels: {exc}"
        raise PayloadTooLarge(message) from None
    except Exception as exc:  # corrupt headers raise many exception types in Pillow
        raise BadRequest(f"could not decode the {label} image: {_short(exc)}") from None
    width, height = image.size
    check_pixel_count(width, height, max_pixels)
    try:
        image.load()
        # Browsers show JPEGs upright according to EXIF; the mask must match that view.
        # (exif_transpose copies the image even when there is nothing to turn.)
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        pixels = _pil_to_uint8(image)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"{label} image is too large: {exc}") from None
    except Exception as exc:  # truncated/corrupt pixel data: a client error, not a bug
        raise BadRequest(f"could not decode the {label} image: {_short(exc)}") from None
    return DecodedImage(pixels=pixels, format=fmt)


def _pil_to_uint8(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and values.min() >= 0 and values.max() <= 65535:
            # v / 257 exactly inverts the standard 8 -> 16 bit expansion (v * 257), so a
            # 16-bit export of an 8-bit image decodes to the very same pixels.
            return ((values + 128) // 257).astype(np.uint8)
        return _stretch(values)
    if mode == "F":
        return _stretch(np.asarray(image, dtype=np.float64))
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


def _stretch(values: np.ndarray) -> np.ndarray:
    """Min-max scale finite values to 0..255 (a constant image maps to 0)."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- DICOM


def _decode_dicom(data: bytes, max_pixels: int) -> DecodedImage:
    import pydicom
    import pydicom.pixels

    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not has_preamble)
    except Exception as exc:
        raise BadRequest(f"could not parse the DICOM file: {_short(exc)}") from None
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise BadRequest("the DICOM file has no pixel data")
    _ensure_transfer_syntax(ds)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    except Exception as exc:
        raise BadRequest(f"the DICOM header is incomplete: {_short(exc)}") from None
    check_pixel_count(cols, rows, max_pixels)
    try:
        # index=0 decodes only the first frame of a multi-frame file.
        frame = pydicom.pixels.pixel_array(ds, index=0)
    except (NotImplementedError, RuntimeError) as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", None) or "this transfer syntax"
        raise UnsupportedMediaType(
            f"cannot decode DICOM pixel data compressed with {name}: {_short(exc)}"
        ) from None
    except Exception as exc:
        raise BadRequest(f"could not decode the DICOM pixel data: {_short(exc)}") from None
    try:
        if samples == 1 and photometric == "PALETTE COLOR":
            pixels = _dicom_palette_to_uint8(frame, ds)
        elif samples == 1:
            pixels = _dicom_grey_to_uint8(frame, ds, invert=photometric == "MONOCHROME1")
        else:
            pixels = _dicom_colour_to_uint8(frame, ds)
    except Exception as exc:
        raise BadRequest(f"could not convert the DICOM pixel data: {_short(exc)}") from None
    if pixels.ndim not in (2, 3) or pixels.shape[:2] != (rows, cols):
        raise BadRequest(f"DICOM pixel data has shape {pixels.shape}, expected {rows}x{cols}")
    return DecodedImage(pixels=pixels, format="dicom", pixel_spacing=dicom_pixel_spacing(ds))


def _ensure_transfer_syntax(ds) -> None:
    # A bare data set (no preamble, no file meta) is necessarily uncompressed, in the
    # encoding it was read with; pydicom needs that stated to decode its pixels.
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _first(value) -> float:
    # Window values may be multi-valued (several presets); the first is the default one.
    try:
        return float(value)
    except TypeError:
        return float(value[0])


def _dicom_grey_to_uint8(frame: np.ndarray, ds, *, invert: bool) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(frame, ds).astype(np.float64)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        out = _window(
            values,
            _first(ds.WindowCenter),
            _first(ds.WindowWidth),
            str(ds.get("VOILUTFunction", "LINEAR")).upper(),
        )
    elif "VOILUTSequence" in ds:
        out = _stretch(apply_voi_lut(values, ds, index=0, prefer_lut=True))
    elif (
        np.issubdtype(frame.dtype, np.integer)
        and values.size
        and values.min() >= 0
        and values.max() <= 255
        and int(ds.get("BitsStored", 8) or 8) <= 8
    ):
        out = values.astype(np.uint8)  # already 8-bit: keep the scanner's own grey levels
    else:
        out = _stretch(values)
    if invert:  # MONOCHROME1: the minimum value is displayed white
        out = 255 - out
    return np.ascontiguousarray(out)


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """Apply a DICOM VOI window (PS3.3 C.11.2.1.2) mapping to 0..255."""
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        return _stretch(values)
    if function == "SIGMOID":
        scaled = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (values - center) / width, -700, 700)))
    elif function == "LINEAR_EXACT":
        scaled = (values - center) / width + 0.5
    else:
        if width < 1:
            return np.where(values > center - 0.5, 255, 0).astype(np.uint8)
        scaled = (values - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def _dicom_colour_to_uint8(frame: np.ndarray, ds) -> np.ndarray:
    # pixel_array already converted YBR_* photometric interpretations to RGB.
    if frame.ndim != 3 or frame.shape[2] < 3:
        raise ValueError(f"colour pixel data has shape {frame.shape}")
    rgb = frame[..., :3]
    if rgb.dtype != np.uint8:
        bits = int(ds.get("BitsStored", 8) or 8)
        top = float((1 << bits) - 1) if bits > 8 else 255.0
        rgb = np.round(np.clip(rgb.astype(np.float64), 0, top) * (255.0 / top)).astype(np.uint8)
    return _grey_if_neutral(rgb)


def _dicom_palette_to_uint8(frame: np.ndarray, ds) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(frame, ds)
    if rgb.dtype != np.uint8:
        rgb = ((rgb.astype(np.int64) + 128) // 257).clip(0, 255).astype(np.uint8)
    return _grey_if_neutral(rgb)


def dicom_pixel_spacing(ds) -> tuple[float, float] | None:
    """Return ``(row_mm, col_mm)`` from a DICOM data set, or None.

    ``PixelSpacing`` is used first, then ``ImagerPixelSpacing`` (both are
    "row spacing, column spacing" in mm), then the first ultrasound region of
    ``SequenceOfUltrasoundRegions`` calibrated in cm in both directions.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            value = ds.get(keyword)
            if value is not None and len(value) == 2:
                spacing = (float(value[0]), float(value[1]))
                if all(math.isfinite(v) and v > 0 for v in spacing):
                    return spacing
        except Exception:  # malformed values are treated as absent
            logger.debug("ignoring malformed %s", keyword)
    try:
        for region in ds.get("SequenceOfUltrasoundRegions", None) or []:
            # Physical units code 3 is centimetres (PS3.3 C.8.5.5.1.15).
            if region.get("PhysicalUnitsXDirection") == 3 and region.get(
                "PhysicalUnitsYDirection"
            ) == 3:
                dy, dx = abs(float(region.PhysicalDeltaY)), abs(float(region.PhysicalDeltaX))
                if all(math.isfinite(v) and v > 0 for v in (dx, dy)):
                    return (dy * 10.0, dx * 10.0)
    except Exception:
        logger.debug("ignoring malformed SequenceOfUltrasoundRegions")
    return None
