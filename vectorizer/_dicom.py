"""How a decoded DICOM frame becomes 8-bit pixels: the one rule of both services.

The model server segments the pixels this gives and the annotation client shows
them, so the outline is drawn over the very picture the model saw. Before this
module each service had its own rule, and a DICOM with a rescale, a VOI LUT, a
palette or 16-bit colour was segmented as one picture and shown as another.

Reading the file and decoding its pixel data (transfer syntaxes, truncation) is
:mod:`vectorizer._dicomfile`, shared by both services too, so they also refuse
the same files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from ._measure import MAX_PIXEL_SPACING_MM, MIN_PIXEL_SPACING_MM, is_plausible_spacing


class DicomPixelError(ValueError):
    """The DICOM header makes the decoded pixels meaningless; the message says why."""


def dicom_frame_to_uint8(
    frame: np.ndarray, ds, *, on_ignored: Callable[[str], None] | None = None
) -> np.ndarray:
    """Turn one decoded DICOM frame into the 8-bit pixels both services use.

    Grey frames (``SamplesPerPixel`` 1) go through the modality rescale or
    Modality LUT (PS3.3 C.11.1), then the first VOI window if it is valid, else
    the VOI LUT, else 8-bit data stays as it is, data of fewer bits stored is
    scaled from ``0..2**BitsStored - 1`` to ``0..255`` and wider data is stretched
    from its minimum to its maximum; MONOCHROME1 is then inverted. A window that is
    not valid (PS3.3 C.11.2.1.2) is only a display preset gone wrong: it is
    ignored, as is one whose values are not numbers, and ``on_ignored`` is told
    why. PALETTE COLOR goes through its
    colour LUT, and colour frames with more than 8 bits stored are scaled from
    ``0..2**BitsStored - 1`` to ``0..255``.

    Parameters
    ----------
    frame : numpy.ndarray
        One frame as ``pydicom.pixels.pixel_array`` gives it (YBR already
        converted to RGB): ``(H, W)`` for grey and palette, ``(H, W, S)`` with
        ``S >= 3`` for colour; rows first.
    ds : pydicom.Dataset
        The data set the frame came from (its header only is read).
    on_ignored : callable, optional
        Called with a one-line reason when a VOI window is ignored.

    Returns
    -------
    numpy.ndarray
        ``uint8``, ``(H, W)`` grey or ``(H, W, 3)`` RGB.

    Raises
    ------
    DicomPixelError
        A Rescale Slope or Intercept that is not a finite number, a slope of 0,
        a rescale beyond the floating-point range, float pixels that are not
        finite, a header number that is not a number, or a LUT that cannot be
        applied. These used to give a black image that was then segmented.
    """
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples == 1 and photometric == "PALETTE COLOR":
        return _palette_to_uint8(frame, ds)
    if samples == 1:
        if frame.ndim != 2:
            raise DicomPixelError(f"grey pixel data has shape {frame.shape}, not rows x columns")
        return _grey_to_uint8(frame, ds, invert=photometric == "MONOCHROME1",
                              on_ignored=on_ignored)
    return _colour_to_uint8(frame, ds)


def dicom_pixel_spacing(ds) -> tuple[tuple[float, float] | None, tuple[str, ...]]:
    """The size of one pixel from a DICOM header, and the sources ignored on the way.

    ``PixelSpacing`` is used first, then ``ImagerPixelSpacing`` (both are "row
    spacing, column spacing" in mm), then the ultrasound regions of
    ``SequenceOfUltrasoundRegions`` calibrated in cm in both directions (their
    deltas taken as magnitudes: a negative delta only says the axis runs the
    other way), leaving out strips (M-mode, spectral, waveform:
    ``RegionSpatialFormat`` other than 1) and regions placed outside the image.
    When those regions disagree (a split screen at two depths, a zoom box), none
    is used: which one holds the lesion is not known here. Nor is a header spacing
    that a calibrated region disagrees with by more than 1 %: the region is the
    ultrasound image's own calibration (PS3.3 C.8.5.5), and which of the two is right
    is not known here either. A source that cannot be read, that has not two values,
    or whose values are not finite, under :data:`MIN_PIXEL_SPACING_MM` or above
    :data:`MAX_PIXEL_SPACING_MM`, is skipped: such a header is corrupt, and the image
    is still usable, only without millimetre measurements.

    Parameters
    ----------
    ds : pydicom.Dataset
        The header.

    Returns
    -------
    spacing : tuple of float or None
        ``(row_mm, col_mm)``: a pixel's height and width in millimetres; None
        when no source gives a usable one, or when sources disagree.
    ignored : tuple of str
        Why each source present before the one used (all, when none is) was
        skipped, one sentence each without a final full stop.
    """
    ignored: list[str] = []
    header = None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = _header_spacing(ds, keyword, ignored)
        if pair is not None:
            header = keyword, pair
            break
    before_regions = tuple(ignored)
    found = _region_spacings(ds, ignored)
    if header is not None:
        keyword, pair = header
        if all(_same_scale(pair, region) for region in found):
            return pair, before_regions
        scales = ", ".join(f"{c:.3g} × {r:.3g}" for r, c in found)
        ignored.append(
            f"{keyword} gives {pair[1]:.3g} × {pair[0]:.3g} mm per pixel (width × height) but "
            f"the ultrasound region's calibration (SequenceOfUltrasoundRegions) {scales}: "
            "which is right is not known")
        return None, tuple(ignored)
    if not found:
        return None, tuple(ignored)
    first = found[0]
    # Two image regions of other scales (a split screen, a zoom box): which one holds
    # the lesion is not known here, and the first one's scale gave sizes twice or a
    # quarter of the truth. None, said, and the page offers the spacing by hand.
    if any(not _same_scale(first, region) for region in found[1:]):
        scales = ", ".join(f"{c:.3g} × {r:.3g}" for r, c in found)
        ignored.append(f"the ultrasound regions give different scales ({scales} mm per pixel, "
                       "width × height): which one holds the lesion is not known")
        return None, tuple(ignored)
    return first, tuple(ignored)


def _same_scale(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two ``(row_mm, col_mm)`` agree within 1 % in both directions."""
    return math.isclose(a[0], b[0], rel_tol=0.01) and math.isclose(a[1], b[1], rel_tol=0.01)


def _header_spacing(ds, keyword: str, ignored: list[str]) -> tuple[float, float] | None:
    """``(row_mm, col_mm)`` of header element ``keyword`` when it gives a plausible one;
    else None, with why in ``ignored`` when it is present."""
    try:
        value = ds.get(keyword)
        if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
            return None
        # One value is a DSfloat, not a list: "object of type 'DSfloat' has no len()"
        # was the radiologist's note.
        values = list(value) if isinstance(value, Sequence) and not isinstance(
            value, (str, bytes)) else [value]
        if not values:
            return None
        if len(values) != 2:
            ignored.append(f"{keyword} has {len(values)} value{'s' if len(values) > 1 else ''}; "
                           "2 are needed (row\\column)")
            return None
        pair = (float(values[0]), float(values[1]))
    except Exception as exc:  # pydicom raises various types for a malformed DS value
        ignored.append(f"{keyword} cannot be read ({_reason(exc)})")
        return None
    if is_plausible_spacing(*pair):
        return pair
    ignored.append(_implausible(keyword, *pair))
    return None


def _region_spacings(ds, ignored: list[str]) -> list[tuple[float, float]]:
    """``(row_mm, col_mm)`` of each plausible ultrasound image region calibrated in cm
    (see :func:`dicom_pixel_spacing`), why others were skipped in ``ignored``."""
    source = "the ultrasound region's PhysicalDeltaY/X (SequenceOfUltrasoundRegions)"
    try:
        regions = list(ds.get("SequenceOfUltrasoundRegions", None) or [])
    except Exception as exc:
        ignored.append(f"the ultrasound regions cannot be read ({_reason(exc)})")
        regions = []
    found = []
    for region in regions:
        # One region that cannot be read does not hide the next (each is tried alone).
        try:
            # Physical units code 3 is centimetres (PS3.3 C.8.5.5.1.15).
            if not (region.get("PhysicalUnitsXDirection") == 3
                    and region.get("PhysicalUnitsYDirection") == 3):
                continue
            # Spatial format 1 is a 2D image (tissue or flow); M-mode, spectral and
            # waveform strips have other scales. Absent: taken as an image.
            if region.get("RegionSpatialFormat") not in (None, 1):
                continue
            if _outside_image(ds, region):
                continue
            row = abs(float(region.PhysicalDeltaY)) * 10.0
            col = abs(float(region.PhysicalDeltaX)) * 10.0
        except Exception as exc:
            ignored.append(f"an ultrasound region's calibration cannot be read ({_reason(exc)})")
            continue
        if is_plausible_spacing(row, col):
            found.append((row, col))
        else:
            ignored.append(_implausible(source, row, col))
    return found


def _outside_image(ds, region) -> bool:
    """Whether ``region``'s stated location lies wholly outside the image (a region
    with no location, or an image with no size, is not)."""
    try:
        x0, y0 = int(region.RegionLocationMinX0), int(region.RegionLocationMinY0)
        columns, rows = int(ds.Columns), int(ds.Rows)
    except (AttributeError, TypeError, ValueError):
        return False
    return x0 >= columns or y0 >= rows


def _implausible(source: str, row: float, col: float) -> str:
    return (f"{source} gives {row:g} × {col:g} mm per pixel, not a value from "
            f"{MIN_PIXEL_SPACING_MM:g} to {MAX_PIXEL_SPACING_MM:g} mm")


def ensure_transfer_syntax(ds) -> None:
    """State the transfer syntax of a data set read without file meta, in place.

    A bare data set (no preamble, no file meta) is necessarily uncompressed, in
    the encoding it was read with; pydicom needs that stated to decode its pixels.

    Parameters
    ----------
    ds : pydicom.Dataset
        As ``pydicom.dcmread`` returned it.
    """
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


def header_number(ds, keyword: str) -> float | None:
    """The (first) value of numeric element ``keyword``; None when absent or empty.

    A zero-length value is legal for these Type 1C and 3 attributes and means
    the same as an absent one. Window values may hold several presets: the
    first is the default.

    Raises
    ------
    DicomPixelError
        The value is not a number.
    """
    try:
        value = ds.get(keyword)
    except Exception:
        raise DicomPixelError(f"the DICOM {keyword} is not a number") from None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0] if len(value) else None
    if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DicomPixelError(f"the DICOM {keyword} {str(value)[:40]!r} is not a number") from None


def stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max scale values to 0..255 (a constant image maps to 0).

    Computed in float64 a block of rows at a time (:func:`_by_rows`), from values of
    any numeric type: a float64 copy of the whole image, and two temporaries of its
    size, took 600 MB of a 25-megapixel frame.

    Raises
    ------
    DicomPixelError
        A value is not finite: mapping it to a number made a NaN image a black
        one that got segmented.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        values = values.astype(np.float64)
    if values.dtype.kind == "f" and not _all_finite(values):
        raise DicomPixelError("the pixel values are not all finite numbers (NaN or infinity)")
    if not values.size:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    scale = 255.0 / (hi - lo)
    return _by_rows(values, lambda block: np.round((block.astype(np.float64) - lo) * scale))


#: Values converted at a time by :func:`_by_rows`: its float64 temporaries are then a few
#: megabytes, whatever the image's size.
_BLOCK_VALUES = 1 << 19


def _by_rows(values: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``convert`` (values to 0..255, as floats) applied to ``values`` a block of rows at a
    time, the results cast to ``uint8``; the same pixels as converting it whole."""
    out = np.empty(values.shape, dtype=np.uint8)
    if not values.size:
        return out
    rows = max(1, _BLOCK_VALUES // (values.size // values.shape[0] or 1))
    for start in range(0, values.shape[0], rows):
        out[start : start + rows] = convert(values[start : start + rows])
    return out


def _all_finite(values: np.ndarray) -> bool:
    """Whether every value of a float array is finite (checked by blocks of rows)."""
    if values.ndim == 0 or not values.size:
        return bool(np.isfinite(values).all())
    rows = max(1, _BLOCK_VALUES // (values.size // values.shape[0] or 1))
    return all(np.isfinite(values[start : start + rows]).all()
               for start in range(0, values.shape[0], rows))


def _grey_to_uint8(
    frame: np.ndarray, ds, *, invert: bool, on_ignored: Callable[[str], None] | None
) -> np.ndarray:
    values = _modality_values(frame, ds)
    function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
    try:
        center = header_number(ds, "WindowCenter")
        width = header_number(ds, "WindowWidth")
    except DicomPixelError as exc:
        # Only the suggested view is broken, not the pixels: shown as with no window.
        center = width = None
        if on_ignored is not None:
            on_ignored(f"ignored the DICOM VOI window: {exc}")
    window = center is not None and width is not None
    if window and (flaw := _window_flaw(center, width, function)):
        if on_ignored is not None:
            on_ignored(f"ignored the DICOM VOI window: {flaw}")
        window = False
    if window:
        out = _window(values, center, width, function)
    elif ds.get("VOILUTSequence") and (looked_up := _voi_lut(values, ds, on_ignored)) is not None:
        out = stretch_to_uint8(looked_up)
    elif (
        np.issubdtype(frame.dtype, np.integer)
        and values.size
        and values.min() >= 0
        and values.max() <= 255
        and int(ds.get("BitsStored", 8) or 8) <= 8
    ):
        top = (1 << max(int(ds.get("BitsStored", 8) or 8), 1)) - 1
        if top < 255 and values.max() <= top:
            # Fewer bits (1-bit, 6-bit...): their full range is black to white, not 0..top
            # of 255, which left a 1-bit image all but black.
            out = _by_rows(values, lambda block: np.round(block * (255.0 / top)))
        else:
            out = values.astype(np.uint8)  # 8-bit: keep the scanner's own grey levels
    else:
        out = stretch_to_uint8(values)
    if invert:  # MONOCHROME1: the minimum value is displayed white
        out = 255 - out
    return np.ascontiguousarray(out)


def _voi_lut(
    values: np.ndarray, ds, on_ignored: Callable[[str], None] | None
) -> np.ndarray | None:
    """``values`` through the first VOI LUT of ``ds`` (PS3.3 C.11.2.1.1), or None, with
    ``on_ignored`` told why, when that LUT contradicts itself.

    Applied here, not by pydicom: pydicom 3.0's ``apply_voi`` builds its index in the
    LUT's own dtype, so an 8-bit LUT over 12-bit data indexed it modulo 256 and showed
    noise, which was segmented. Each value is rounded to an integer; values below the
    first value mapped take the first entry, values past the last entry the last one.
    A LUT whose data do not hold the entries its descriptor states, or whose entries
    are not 8 to 16 bits, is only a display preset gone wrong, as an invalid window
    is: ignored, the image read as if it had none.

    Raises
    ------
    DicomPixelError
        The LUT's descriptor or data cannot be read at all.
    """
    try:
        item = ds.VOILUTSequence[0]
        descriptor = [int(v) for v in item.LUTDescriptor]
        data = item.LUTData
    except Exception as exc:  # pydicom raises many types for a malformed element
        raise DicomPixelError(
            f"the DICOM VOILUTSequence cannot be applied: {_reason(exc)}"
        ) from None
    flaw = None
    table = None
    if len(descriptor) != 3:
        flaw = f"its LUTDescriptor has {len(descriptor)} values, not 3"
    else:
        entries, first, bits = descriptor
        entries = entries or 1 << 16  # PS3.3 C.11.1.1.1: 0 means 65536 entries
        if not 8 <= bits <= 16:
            flaw = f"its LUTDescriptor gives {bits} bits per entry; it must be 8 to 16"
        else:
            table = _lut_entries(data, entries, bits, ds)
            if table is None:
                flaw = (f"its LUTData does not hold the {entries} entries its "
                        "LUTDescriptor states")
    if flaw is not None:
        if on_ignored is not None:
            on_ignored(f"ignored the DICOM VOI window: the VOILUTSequence {flaw}")
        return None
    out = np.empty(values.shape, dtype=table.dtype)
    if not values.size:
        return out
    rows = max(1, _BLOCK_VALUES // (values.size // values.shape[0] or 1))
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows].astype(np.float64)
        # Clipped as floats first: a value far out of range would overflow the cast.
        out[start : start + rows] = table[
            np.clip(np.rint(block) - first, 0, entries - 1).astype(np.intp)]
    return out


def _lut_entries(data, entries: int, bits: int, ds) -> np.ndarray | None:
    """A LUTData value as an array of ``entries`` entries, or None when it holds
    another number.

    As US values it is a list (one int for one entry). As OW bytes each entry takes 16
    bits in the data set's byte order; 8-bit entries packed one per byte (with the pad
    byte of an odd count) are read too, as some writers store them.
    """
    if isinstance(data, (bytes, bytearray)):
        if len(data) == 2 * entries:
            little = _little_endian(ds)
            return np.frombuffer(data, dtype="<u2" if little else ">u2").astype(np.uint16)
        if bits == 8 and len(data) in (entries, entries + entries % 2):
            return np.frombuffer(data[:entries], dtype=np.uint8).copy()
        return None
    values = [data] if isinstance(data, int) else list(data)
    if len(values) != entries:
        return None
    table = np.asarray(values, dtype=np.int64)
    # US entries fit 16 bits: the looked-up image is then 2 bytes a pixel, not 8.
    return table.astype(np.uint16) if table.min() >= 0 and table.max() < 1 << 16 else table


def _little_endian(ds) -> bool:
    """Whether ``ds`` was (or is to be) encoded little endian; so when it says nothing."""
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if syntax is not None and getattr(syntax, "is_transfer_syntax", False):
        return bool(syntax.is_little_endian)
    little = getattr(ds, "original_encoding", (None, None))[1]
    return True if little is None else bool(little)


def _modality_values(frame: np.ndarray, ds) -> np.ndarray:
    """Stored pixel values -> modality values (PS3.3 C.11.1), as float32 where that is
    exact enough, else float64.

    A Modality LUT Sequence is applied by pydicom. An empty Rescale element
    counts as absent (slope 1, intercept 0). Float32 holds every integer up to 2**24
    exactly, so 8- and 16-bit data (and float32 data) are kept in it as they are; a
    rescale is computed in float64 and kept in float32 when its result is within
    :data:`_FLOAT32_SPAN` times the image's range of values of zero (a rounding
    error then under 1/30 000 of a grey level of its full range), else in float64: a
    25-megapixel frame's float64 copy took 200 MB, and each step beside it as much.
    """
    if ds.get("ModalityLUTSequence"):
        from pydicom.pixels import apply_modality_lut

        try:
            looked_up = apply_modality_lut(frame, ds)
        except Exception as exc:
            raise DicomPixelError(
                f"the DICOM ModalityLUTSequence cannot be applied: {_reason(exc)}"
            ) from None
        return looked_up.astype(_exact_float(looked_up.dtype), copy=False)
    if frame.dtype.kind == "f" and not _all_finite(frame):
        raise DicomPixelError(
            "the DICOM pixel data holds values that are not finite numbers (NaN or infinity)"
        )
    slope = header_number(ds, "RescaleSlope")
    intercept = header_number(ds, "RescaleIntercept")
    if slope is None and intercept is None:
        return frame.astype(_exact_float(frame.dtype), copy=False)
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    for keyword, number in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
        if not math.isfinite(number):
            raise DicomPixelError(f"the DICOM {keyword} is {number}, not a finite number")
    if slope == 0:
        raise DicomPixelError(
            "the DICOM RescaleSlope is 0, which makes every pixel the same value"
        )
    if not frame.size:
        return frame.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        low, high = float(frame.min()) * slope + intercept, float(frame.max()) * slope + intercept
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DicomPixelError(
            f"the DICOM rescale (RescaleSlope {slope:g}, RescaleIntercept {intercept:g}) "
            "takes pixel values beyond the floating-point range"
        )
    largest = max(abs(low), abs(high))
    narrow = largest < 1e30 and largest <= _FLOAT32_SPAN * abs(high - low)
    values = np.empty(frame.shape, dtype=np.float32 if narrow else np.float64)
    rows = max(1, _BLOCK_VALUES // (frame.size // frame.shape[0] or 1))
    for start in range(0, frame.shape[0], rows):
        values[start : start + rows] = frame[start : start + rows] * slope + intercept
    return values


#: How far from zero (times the image's range of values) float32 keeps rescaled values.
_FLOAT32_SPAN = 256


def _exact_float(dtype: np.dtype) -> type:
    """The float type that holds every value of ``dtype`` exactly: float32 for integers
    of up to 16 bits (and float32 itself), float64 for the rest."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu" and dtype.itemsize <= 2 or dtype == np.float32:
        return np.float32
    return np.float64


def _window_flaw(center: float, width: float, function: str) -> str | None:
    """Why a VOI window cannot be applied, or None when it can.

    The standard requires a finite center and a width of at least 1 for LINEAR
    (any other function name is read as LINEAR) and above 0 for LINEAR_EXACT
    and SIGMOID (PS3.3 C.11.2.1.2).
    """
    exact = function in ("LINEAR_EXACT", "SIGMOID")
    if not math.isfinite(center):
        return f"WindowCenter is {center}, not a finite number"
    if not math.isfinite(width):
        return f"WindowWidth is {width}, not a finite number"
    if (width <= 0) if exact else (width < 1):
        least = "above 0" if exact else "at least 1"
        name = function if exact else "LINEAR"
        return f"WindowWidth is {width:g}; a {name} window's must be {least}"
    return None


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """Apply a valid DICOM VOI window (see :func:`_window_flaw`) mapping to 0..255, in
    float64 a block of rows at a time (:func:`_by_rows`)."""

    def convert(block: np.ndarray) -> np.ndarray:
        block = block.astype(np.float64)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if function == "SIGMOID":
                scaled = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (block - center) / width,
                                                     -700, 700)))
            elif function == "LINEAR_EXACT":
                scaled = (block - center) / width + 0.5
            else:
                scaled = (block - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5
        return np.round(np.clip(scaled, 0.0, 1.0) * 255.0)

    return _by_rows(values, convert)


def _colour_to_uint8(frame: np.ndarray, ds) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] < 3:
        raise DicomPixelError(f"colour pixel data has shape {frame.shape}, not rows x columns x 3")
    rgb = frame[..., :3]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype.kind == "f" and not _all_finite(rgb):
        raise DicomPixelError("the pixel values are not all finite numbers (NaN or infinity)")
    bits = int(ds.get("BitsStored", 8) or 8)
    top = float((1 << bits) - 1) if bits > 8 else 255.0
    return _by_rows(rgb, lambda block: np.round(
        np.clip(block.astype(np.float64), 0, top) * (255.0 / top)))


def _palette_to_uint8(frame: np.ndarray, ds) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    try:
        rgb = apply_color_lut(frame, ds)
    except Exception as exc:
        raise DicomPixelError(
            f"the DICOM palette colour lookup table cannot be applied: {_reason(exc)}"
        ) from None
    if rgb.dtype != np.uint8:
        # pydicom gives 16-bit entries; 65535 / 257 = 255 exactly.
        rgb = ((rgb.astype(np.int64) + 128) // 257).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb)


_MISSING_ATTRIBUTE = re.compile(r"object has no attribute '(\w+)'")


def _reason(exc: BaseException) -> str:
    """``exc``'s message for a person: one line, no Python internals."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    found = _MISSING_ATTRIBUTE.search(text)
    if found:
        return f"the element {found.group(1)} is missing"
    if "NoneType" in text:
        return "an element it needs is empty"
    return text if len(text) <= 200 else text[:197] + "..."
