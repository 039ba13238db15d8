"""The outline refiner's crop and paste-back, shared by training and serving.

The U-Net sees the whole image at 160x160, where a small lesion is a dozen
pixels wide and its margin a pixel or two. The refiner looks again at a
square around the first outline, cut from the full-resolution image, and
segments the lesion there; its map is pasted back over the same square.

Coordinates: images, masks and maps are numpy ``(row, col)`` arrays; boxes
are ``(x0, y0, x1, y1)`` in pixels, x along columns, half-open.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .lesion_crop import lesion_box

#: Side of the refiner's square input, in pixels.
REFINE_SIZE = 128
#: Context on each side of the first outline, as a fraction of its box's longer side.
#: Wide, because first outlines are more often too small than too large.
REFINE_MARGIN = 0.4
#: Rows of a resized map turned into an array at a time (see :func:`square_window`).
_STRIP_ROWS = 256
#: Training cuts a wider crop once and zooms into it at random (see train_refine).
REFINE_CONTEXT_SIZE = 256
REFINE_CONTEXT_MARGIN = 1.0

#: Human-readable description recorded in the manifest.
REFINE_PREPROCESSING = (
    "square around the first outline's bounding box, side = longer side x (1 + 2 x margin), "
    "centred on the box, zero outside the image -> antialiased bilinear resize to "
    "crop_size -> float32 / 255 -> shape (1, crop_size, crop_size, 1); the output map is "
    "resized back to the square and blended with the U-Net's map inside it"
)


def _window(array, box):
    """The part of ``array`` under ``box``, zero-padded where the box leaves it."""
    x0, y0, x1, y1 = box
    h, w = array.shape
    pad = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)))
    return np.pad(array[max(0, y0):min(h, y1), max(0, x0):min(w, x1)], pad)


def crop_square(array, box, size):
    """Cut ``box`` out of a 2-D uint8 or float array and resize it to ``size`` x ``size``.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` uint8 image (scaled to [0, 1] on output) or float map in [0, 1].
    box : tuple of 4 int
        Square ``(x0, y0, x1, y1)``, possibly reaching outside the array (zeros there).
    size : int
        Output side.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float32 in [0, 1].
    """
    window = np.ascontiguousarray(_window(array, box))
    if window.dtype == np.uint8:
        out = Image.fromarray(window).resize((size, size), Image.BILINEAR)
        return np.asarray(out, np.float32) / 255.0
    out = Image.fromarray(window.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR)
    return np.clip(np.asarray(out, np.float32), 0.0, 1.0)


def paste_square(crop_prob, box, shape):
    """Resize a crop's map back onto its box in an image of ``shape``.

    Parameters
    ----------
    crop_prob : numpy.ndarray
        ``(S, S)`` float map of the crop.
    box : tuple of 4 int
        The square the crop was cut from.
    shape : tuple of 2 int
        ``(H, W)`` of the image.

    Returns
    -------
    prob : numpy.ndarray
        ``(H, W)`` float32, the map inside the box (clipped to the image), 0 elsewhere.
    inside : tuple of 2 slice
        Rows and columns of the image the box covers.
    """
    window, inside = square_window(crop_prob, box, shape)
    prob = np.zeros(shape, np.float32)
    prob[inside] = window
    return prob, inside


def square_window(crop_prob, box, shape):
    """Like :func:`paste_square`, but only the part of the image the box covers.

    Returns
    -------
    window : numpy.ndarray
        The crop's map resized to the box, clipped to the image.
    inside : tuple of 2 slice
        Where ``window`` lies in the image.
    """
    x0, y0, x1, y1 = box
    h, w = shape
    full = Image.fromarray(np.asarray(crop_prob, np.float32), mode="F").resize(
        (x1 - x0, y1 - y0), Image.BILINEAR)
    r0, r1, c0, c1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    # Only the part inside the image, a strip of rows at a time: the square around a
    # lesion of a 25-megapixel image can be 200 MB of float32, and turning the whole of
    # it into an array took two more copies (Pillow's bytes, then the array), while
    # the window returned, a view, kept it all.
    window = np.empty((max(0, r1 - r0), max(0, c1 - c0)), np.float32)
    if window.size:
        for top in range(0, r1 - r0, _STRIP_ROWS):
            bottom = min(top + _STRIP_ROWS, r1 - r0)
            strip = full.crop((c0 - x0, r0 - y0 + top, c1 - x0, r0 - y0 + bottom))
            window[top:bottom] = np.asarray(strip, np.float32)
    return window, (slice(r0, r1), slice(c0, c1))


def refine_window(grey, box, coarse, net, size=REFINE_SIZE, weight=0.5):
    """The blend of the refiner's map and the U-Net's over ``box``, clipped to the image.

    Parameters
    ----------
    grey : numpy.ndarray
        ``(H, W)`` uint8 image.
    box : tuple of 4 int
        Square ``(x0, y0, x1, y1)`` around a first outline (:func:`lesion_box`).
    coarse : numpy.ndarray
        The U-Net's lesion probability over the part of the image ``box`` covers.
    net, size, weight
        See :func:`refine_map`.

    Returns
    -------
    window : numpy.ndarray
        float32, the shape of ``coarse``.
    inside : tuple of 2 slice
        Where ``window`` lies in the image.
    """
    crop = crop_square(grey, box, size)
    fine, inside = square_window(net(crop[None, :, :, None]), box, grey.shape)
    # (1 - weight) * coarse + weight * fine, the same float32 values, with one temporary
    # rather than three: a window can be the whole of a 25-megapixel image.
    fine *= weight
    blend = (1.0 - weight) * np.asarray(coarse, np.float32)
    blend += fine
    return blend, inside


def refine_map(grey, outline, coarse, net, size=REFINE_SIZE, margin=REFINE_MARGIN, weight=0.5):
    """Blend the refiner's map into the U-Net's inside the square around ``outline``.

    Parameters
    ----------
    grey : numpy.ndarray
        ``(H, W)`` uint8 image.
    outline : array_like
        ``(H, W)`` bool first outline (the U-Net's, post-processed).
    coarse : numpy.ndarray
        ``(H, W)`` float32 U-Net lesion probability at the image's size.
    net : callable
        ``(1, size, size, 1)`` float32 crop -> ``(size, size)`` lesion probability.
    weight : float
        Weight of the refiner's map inside the square; the U-Net's gets the rest.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32: ``coarse`` outside the square, the blend inside it;
        ``coarse`` itself when the outline is empty.
    """
    box = lesion_box(outline, margin)
    if box is None:
        return coarse
    x0, y0, x1, y1 = box
    h, w = grey.shape
    inside = (slice(max(0, y0), min(h, y1)), slice(max(0, x0), min(w, x1)))
    window, _ = refine_window(grey, box, coarse[inside], net, size, weight)
    out = np.array(coarse, np.float32, copy=True)
    out[inside] = window
    return out
