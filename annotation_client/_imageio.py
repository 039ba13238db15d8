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
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

#: Largest width or height accepted; BUSI images are at most about 1000 px, and a
#: much larger picture is more likely a mistake (or a decompression bomb).
MAX_SIDE = 8192
_EXIF_ORIENTATION = 0x0112


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
    """

    data: bytes
    name: str
    kind: str
    pixels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None
    display_uri: str

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
    return data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom"))


def decode_image(data: bytes, name: str = "image", *, max_bytes: int | None = None) -> DecodedImage:
    """Open a PNG, JPEG or DICOM file.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    name : str, optional
        The file name (shown, recorded, and used to recognise DICOM without preamble).
    max_bytes : int, optional
        Refuse larger files.

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
    data = bytes(data)
    if not data:
        raise ImageDecodeError(f"{name} is empty.")
    check_size(len(data), name, max_bytes)
    try:
        if _is_dicom(data, name):
            pixels, spacing = _decode_dicom(data, name)
            kind = "dicom"
            display = _png_uri(pixels)
        else:
            pixels, kind, display = _decode_picture(data, name)
            spacing = None
    except ImageDecodeError:
        raise
    except Exception as exc:  # a malformed header value (window, spacing, EXIF) raises anything
        logger.exception("could not decode %s", name)
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


def _check_side(width: int, height: int, name: str) -> None:
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageDecodeError(
            f"{name} is {width}x{height}; images up to {MAX_SIDE} px are accepted."
        )


def _decode_picture(data: bytes, name: str) -> tuple[np.ndarray, str, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_side(image.width, image.height, name)
            fmt = image.format
            if fmt not in ("PNG", "JPEG"):
                raise ImageDecodeError(
                    f"{name} is a {fmt or 'unknown'} file; open a PNG, JPEG or DICOM image."
                )
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1) if fmt == "JPEG" else 1
            image.load()
            if orientation != 1:
                image = ImageOps.exif_transpose(image)
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageDecodeError(f"{name} is not a PNG, JPEG or DICOM image.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{name} is damaged and cannot be read ({exc}).") from None
    pixels = _to_uint8(image)
    kind = fmt.lower()
    # The model server turns a JPEG upright by its EXIF orientation before segmenting
    # it, so the outline is in upright coordinates: the browser is shown the same
    # upright pixels as a PNG (whether it would turn the JPEG itself varies).
    if orientation != 1:
        uri = _png_uri(pixels)
    else:
        mime = "image/png" if kind == "png" else "image/jpeg"
        uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return pixels, kind, uri


def _to_uint8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        return _rescale(array)
    if image.mode in ("RGBA", "P", "PA", "LA", "CMYK", "YCbCr", "1"):
        image = image.convert("RGB" if image.mode not in ("LA", "1") else "L")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _rescale(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(array)
    if not finite.any():
        return np.zeros(array.shape, dtype=np.uint8)
    low, high = float(array[finite].min()), float(array[finite].max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    scaled = (np.where(finite, array, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _decode_dicom(data: bytes, name: str) -> tuple[np.ndarray, tuple[float, float] | None]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
        raise ImageDecodeError(f"{name} is not a readable DICOM file ({exc}).") from None
    if "PixelData" not in ds:
        raise ImageDecodeError(f"{name} is a DICOM file without an image.")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    _check_side(cols, rows, name)
    try:
        from pydicom.pixels import apply_voi_lut, pixel_array

        frames = int(ds.get("NumberOfFrames", 1) or 1)
        array = pixel_array(ds, index=0) if frames > 1 else ds.pixel_array
    except Exception as exc:  # pydicom raises many types for unsupported encodings
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        detail = f"transfer syntax {syntax.name}" if syntax is not None else str(exc)
        raise ImageDecodeError(f"{name}: cannot decode the DICOM pixels ({detail}).") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            array = convert_color_space(array, photometric, "RGB")
        pixels = array[..., :3]
        pixels = pixels.astype(np.uint8) if pixels.dtype == np.uint8 else _rescale(pixels)
    elif array.ndim == 2:
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            array = apply_voi_lut(array, ds, index=0)
        pixels = array.astype(np.uint8) if array.dtype == np.uint8 else _rescale(array)
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
    else:
        raise ImageDecodeError(f"{name}: unsupported DICOM pixel layout {array.shape}.")
    return np.ascontiguousarray(pixels), _dicom_spacing(ds)


def _dicom_spacing(ds) -> tuple[float, float] | None:
    """``(row_mm, col_mm)`` from PixelSpacing, or from the ultrasound region calibration."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2:
            row, col = float(value[0]), float(value[1])
            if row > 0 and col > 0:
                return (row, col)
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions:
        region = regions[0]
        # Units code 3 is centimetres (DICOM PS3.3 C.8.5.5.1.15).
        if (
            region.get("PhysicalUnitsXDirection") == 3
            and region.get("PhysicalUnitsYDirection") == 3
        ):
            dx, dy = float(region.get("PhysicalDeltaX", 0)), float(region.get("PhysicalDeltaY", 0))
            if dx > 0 and dy > 0:
                return (abs(dy) * 10.0, abs(dx) * 10.0)
    return None


def _png_uri(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
