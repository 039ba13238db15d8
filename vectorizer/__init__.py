"""SonoTrace vectorizer: binary masks to editable outlines and back.

Coordinates: arrays are indexed ``(row, col)``; SVG and path strings use ``(x, y)``
image pixels with y pointing down, and pixel ``(r, c)`` covers ``x in [c, c+1]``,
``y in [r, r+1]``.

Public API
----------
mask_to_svg
    Trace a mask with the potrace C library into an SVG document.
svg_to_mask
    Rasterise an SVG document, or a list of path strings, back into a mask.
check_svg_document
    Refuse, before svgelements parses it, an SVG document whose ``<use>`` elements
    expand without bound or beyond the limits (``svg_to_mask`` applies it itself).
mask_to_paths
    Polygon outlines with a vertex budget per ring, for editing in plotly.
offset_mask, MAX_OFFSET_PX
    A mask grown or shrunk by a Euclidean distance in pixels (the editor's *Grow*
    and *Shrink*).
outline_mask, MaskOutline
    A mask without its specks, its SVG, paths and measurements in one call (the
    model server's answer), faster than the three functions in turn.
measure_lesion
    The same measures for all of a mask's pixels taken as one lesion, in pieces or not.
measure_regions
    Area, perimeter, bounding box, maximum diameter and centroid per region.
MAX_OUTLINES, MAX_BOUNDARY_EDGES
    The most outlines (regions plus holes) a mask may have to be traced or measured,
    and the most pixel edges they may be long in all.
MAX_COORDINATE, MAX_PARSED_BYTES
    ``svg_to_mask``'s limits: coordinates within +/- this many pixels, and at most
    this many characters of path data outside its own documents' form.
MIN_PIXEL_SPACING_MM, MAX_PIXEL_SPACING_MM, is_plausible_spacing
    The smallest and largest pixel spacing ``measure_regions`` accepts (mm per
    pixel), and the check of a ``(row_mm, col_mm)`` pair against them.
mask_to_png, png_to_mask
    Masks to and from 8-bit 0/255 PNG bytes.
image_to_mask
    ``png_to_mask``'s foreground rule for an image already decoded with Pillow.
sixteen_bit_to_uint8
    How a 16-bit grey image becomes 8-bit, the one rule of the server and the client.
wide_grey_to_uint8
    That rule applied to a Pillow image of 16-bit, 32-bit integer or float grey.
dicom_frame_to_uint8, DicomPixelError
    How a decoded DICOM frame becomes 8-bit (rescale, VOI window or LUT, palette),
    the one rule of the server and the client; the error for a header that makes
    the pixels meaningless.
dicom_pixel_spacing
    A pixel's size in mm from a DICOM header (the one rule of both services), and
    the sources it skipped as implausible or unreadable.
ensure_transfer_syntax
    Make a DICOM data set read without file meta (no preamble) decodable.
stretch_to_uint8
    Min-max scaling to 8 bits, for data without a stated range.
read_image_file, ImageFile, ImageNote
    Read an uploaded PNG, JPEG or DICOM file into 8-bit pixels, its pixel spacing
    and what was ignored on the way: the one reading of the server and the client.
open_picture, read_mask_file
    The same checks for a PNG or JPEG read as a Pillow image; a mask PNG's foreground
    by ``image_to_mask``'s rule (the server's masks), 16-bit colour on its full values.
read_wide_colour, wide_colour_type, MAX_WIDE_COLOUR_PIXELS
    A 16-bit colour PNG's (RGB, grey+alpha, RGBA) stored samples, which Pillow cuts
    to their high byte, and the most pixels of such a file that are read.
sniff_image_format, SUPPORTED_IMAGE_FORMATS
    A file's format from its first bytes, never its name.
ImageFileError, UnsupportedImage, UnsupportedEncoding, CorruptImage, ImageTooLarge,
UnusableImage
    Why a file is refused (the server answers 415, 415, 400, 413 and 400), each
    with a ``message`` for the person who sent it.
check_image_size, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
    The size rule, checked from a header before any pixel is decoded, and the
    longest and shortest side accepted.

The command-line interface is ``python -m vectorizer {trace,rasterize}``.
"""

from ._dicom import (
    DicomPixelError,
    dicom_frame_to_uint8,
    dicom_pixel_spacing,
    ensure_transfer_syntax,
    stretch_to_uint8,
)
from ._dicomfile import ImageNote
from ._imagefile import (
    SUPPORTED_IMAGE_FORMATS,
    ImageFile,
    open_picture,
    read_image_file,
    read_mask_file,
    sniff_image_format,
)
from ._imagerules import (
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    CorruptImage,
    ImageFileError,
    ImageTooLarge,
    UnsupportedEncoding,
    UnsupportedImage,
    UnusableImage,
    check_image_size,
)
from ._io import (
    image_to_mask,
    mask_to_png,
    png_to_mask,
    sixteen_bit_to_uint8,
    wide_grey_to_uint8,
)
from ._measure import (
    MAX_PIXEL_SPACING_MM,
    MIN_PIXEL_SPACING_MM,
    is_plausible_spacing,
    measure_lesion,
    measure_regions,
)
from ._offset import MAX_OFFSET_PX, offset_mask
from ._orientation import browser_orientation, turn_upright
from ._outline import MaskOutline, outline_mask
from ._png16 import MAX_WIDE_COLOUR_PIXELS, read_wide_colour, wide_colour_type
from ._polygons import mask_to_paths
from ._rasterize import MAX_COORDINATE, svg_to_mask
from ._svg import mask_to_svg
from ._svgcheck import MAX_PARSED_BYTES, check_svg_document
from ._trace import MAX_BOUNDARY_EDGES, MAX_OUTLINES

__all__ = [
    "mask_to_svg",
    "svg_to_mask",
    "check_svg_document",
    "mask_to_paths",
    "offset_mask",
    "MAX_OFFSET_PX",
    "measure_regions",
    "measure_lesion",
    "outline_mask",
    "MaskOutline",
    "MAX_OUTLINES",
    "MAX_BOUNDARY_EDGES",
    "MAX_COORDINATE",
    "MAX_PARSED_BYTES",
    "MAX_PIXEL_SPACING_MM",
    "MIN_PIXEL_SPACING_MM",
    "is_plausible_spacing",
    "mask_to_png",
    "png_to_mask",
    "image_to_mask",
    "sixteen_bit_to_uint8",
    "wide_grey_to_uint8",
    "dicom_frame_to_uint8",
    "DicomPixelError",
    "ensure_transfer_syntax",
    "dicom_pixel_spacing",
    "stretch_to_uint8",
    "read_image_file",
    "ImageFile",
    "ImageNote",
    "open_picture",
    "read_mask_file",
    "read_wide_colour",
    "wide_colour_type",
    "MAX_WIDE_COLOUR_PIXELS",
    "browser_orientation",
    "turn_upright",
    "sniff_image_format",
    "SUPPORTED_IMAGE_FORMATS",
    "ImageFileError",
    "UnsupportedImage",
    "UnsupportedEncoding",
    "CorruptImage",
    "ImageTooLarge",
    "UnusableImage",
    "check_image_size",
    "MAX_IMAGE_SIDE",
    "MIN_IMAGE_SIDE",
]
