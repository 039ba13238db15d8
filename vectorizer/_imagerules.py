"""What an uploaded image is refused for: the error taxonomy and the size and content rules.

Both services read an upload with :func:`vectorizer.read_image_file`, which
raises only the errors defined here; each service turns them into its own form
(the model server into a JSON 415, 400 or 413, the annotation client into a
message on the page). Each error's ``message`` is one clear sentence without a
final full stop, the model server's own wording.

Sizes are ``width`` x ``height`` in pixels (x = column), as image headers state them.
"""

from __future__ import annotations

import numpy as np

#: Largest width or height accepted. Ultrasound images are at most a few thousand
#: pixels a side (BUSI: about 1000); a longer side is a mistake, or a strip of absurd
#: shape that the models would squeeze into their square input.
MAX_IMAGE_SIDE = 8192
#: Smallest width or height accepted: the smallest region the segmentation model uses
#: (a box under 8x8 pixels is refused too); a smaller image holds nothing to outline.
MIN_IMAGE_SIDE = 8
#: An image with at least this share of its pixels within :data:`NEAR_LEVELS` grey
#: levels of one value is nearly blank: a frame exported with the probe lifted, black
#: but for a "NO SIGNAL" label or a burned-in caliper, came back "malignant" with a
#: lesion over a third of it. On BUSI's 622 images that share is at most 0.48 (a
#: sector on a black canvas); at 0.95 the scan would fill under 5 % of the frame.
NEARLY_BLANK_SHARE = 0.95
#: How far from the most common value a pixel may be and still count as background
#: (JPEG noise on a black frame).
NEAR_LEVELS = 2


class ImageFileError(ValueError):
    """An uploaded file that is not read as an image; ``message`` says why.

    Parameters
    ----------
    message : str
        One sentence for the person who sent the file, without a final full stop.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnsupportedImage(ImageFileError):
    """Content that is none of the accepted formats, or a DICOM encoding no installed
    decoder reads (the model server answers 415).

    Attributes
    ----------
    found : str or None
        The format the content has (``"GIF"``, ``"JPEG"``...), when it is recognised.
    """

    def __init__(self, message: str, found: str | None = None):
        super().__init__(message)
        self.found = found


class UnsupportedEncoding(UnsupportedImage):
    """A file of an accepted format whose encoding no installed decoder reads: a DICOM
    transfer syntax without a decoder, or a variant its decoder does not support (415)."""


class CorruptImage(ImageFileError):
    """A file that starts like a supported format but cannot be read as one: empty,
    truncated, damaged, or a header that makes its pixels meaningless (400)."""


class ImageTooLarge(ImageFileError):
    """More pixels than the limit, or a side longer than :data:`MAX_IMAGE_SIDE`, read
    from the header before any pixel is decoded (413); or, for a DICOM, more bytes
    than its pixels may take (deep samples, a deflated data set that inflates too far).

    Attributes
    ----------
    width, height : int
        The size the header states (0 when it was not read).
    max_pixels : int or None
        The limit on ``width * height`` that applied (None: none).
    max_side : int
        The limit on each side.
    max_bytes : int or None
        The limit on bytes that was passed, when it is bytes and not the size that is
        over a limit; None otherwise.
    """

    def __init__(self, message: str, width: int, height: int, max_pixels: int | None,
                 *, max_bytes: int | None = None):
        super().__init__(message)
        self.width, self.height = width, height
        self.max_pixels, self.max_side = max_pixels, MAX_IMAGE_SIDE
        self.max_bytes = max_bytes


class UnusableImage(ImageFileError):
    """An image that decodes but holds nothing to segment or classify: one value
    everywhere, or under :data:`MIN_IMAGE_SIDE` pixels a side (400)."""


def check_image_size(width: int, height: int, max_pixels: int | None) -> None:
    """Refuse a size read from a header before any pixel is decoded.

    Parameters
    ----------
    width, height : int
        As the header states them.
    max_pixels : int or None
        Largest accepted ``width * height``; None sets no limit but the side's.

    Raises
    ------
    CorruptImage
        A side that is not positive.
    ImageTooLarge
        More than ``max_pixels`` pixels, or a side over :data:`MAX_IMAGE_SIDE`.
    """
    if width <= 0 or height <= 0:
        raise CorruptImage(f"image has an invalid size {width}x{height}")
    # The pixel count is named first: it is the limit a deployment sets.
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels, "
            f"over the limit of {max_pixels} pixels",
            width, height, max_pixels,
        )
    if max(width, height) > MAX_IMAGE_SIDE:
        raise ImageTooLarge(
            f"image is {width}x{height}, over the limit of {MAX_IMAGE_SIDE} pixels a side",
            width, height, max_pixels,
        )


def refuse_unusable(pixels: np.ndarray, raw: np.ndarray | None = None) -> None:
    """Refuse decoded pixels that hold nothing to segment or classify.

    An image of one value everywhere is answered with an outline and a label by
    the models (an all-black image came back "malignant" with a lesion over a
    third of it), and so is one nearly so (:func:`nearly_blank`: a black frame
    with a "NO SIGNAL" label); an image under :data:`MIN_IMAGE_SIDE` pixels a side
    is below the smallest region they use. Masks are not checked: an empty mask is
    valid.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``uint8`` ``(H, W)`` or ``(H, W, 3)``, rows first.
    raw : numpy.ndarray, optional
        The values before a DICOM header's rescale and window: when only ``pixels``
        is of one value, the message says the header made it so.

    Raises
    ------
    UnusableImage
    """
    shown = blank_value(pixels)
    if shown is not None:
        detail = ""
        if raw is not None and blank_value(raw) is None:
            detail = " once the DICOM header's rescale and VOI window are applied"
        raise UnusableImage(
            f"the image is blank: every pixel is {shown}{detail}; "
            "there is nothing to segment or classify in it"
        )
    nearly = nearly_blank(pixels)
    if nearly is not None:
        share, value = nearly
        raise UnusableImage(
            f"the image is nearly blank: {share:.1%} of its pixels are {value} (within "
            f"{NEAR_LEVELS} grey levels), so at most a label or a mark on an empty frame; "
            "there is no scan to segment or classify in it"
        )
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise UnusableImage(
            f"the image is only {width}x{height} pixels; images of at least "
            f"{MIN_IMAGE_SIDE} pixels a side are read"
        )


def nearly_blank(pixels: np.ndarray) -> tuple[float, str] | None:
    """``(share, value)`` when at least :data:`NEARLY_BLANK_SHARE` of the pixels lie
    within :data:`NEAR_LEVELS` of the most common value (in every channel), else None.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``uint8`` ``(H, W)`` or ``(H, W, C)``, rows first; other dtypes are not checked.

    Returns
    -------
    tuple of (float, str) or None
        The share of such pixels, and the most common value as text (``"0"``,
        ``"(0, 0, 0)"``).
    """
    if pixels.dtype != np.uint8 or pixels.size == 0:
        return None
    flat = pixels.reshape(-1, pixels.shape[2] if pixels.ndim == 3 else 1)
    # A sample of about 65,000 pixels clears a scan at once: its share is far below
    # the threshold. Only a frame that looks nearly blank on it is counted in full.
    for rows in (flat[:: max(1, flat.shape[0] // 65536)], flat):
        modes = [int(np.bincount(rows[:, c], minlength=256).argmax())
                 for c in range(rows.shape[1])]
        near = np.ones(rows.shape[0], dtype=bool)
        for c, mode in enumerate(modes):
            near &= np.abs(rows[:, c].astype(np.int16) - mode) <= NEAR_LEVELS
        share = float(near.mean())
        if share < NEARLY_BLANK_SHARE - (0.01 if rows is not flat else 0.0):
            return None
    value = str(modes[0]) if len(modes) == 1 else str(tuple(modes))
    return share, value


def blank_value(pixels: np.ndarray) -> str | None:
    """The one value of every pixel, as text (``"0"``, ``"(0, 0, 255)"``), or None.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` of any dtype.
    """
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
