"""Image perturbations that imitate differences between scanners and settings.

Each function takes an ``(H, W)`` uint8 grey image and returns a new
``(H', W')`` uint8 image; none changes its input, and the random one is
seeded, so the same call always gives the same output. The geometric ones
(:func:`flip_horizontal`, :func:`crop_borders`, :func:`rescale`) move
pixels, so a ground-truth mask must be moved with them:
:meth:`Perturbation.apply` does both, the mask with nearest-neighbour
resampling.

Coordinates are numpy ``(row, col)``; sizes passed to PIL are ``(width, height)``.
"""

from __future__ import annotations

import io
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

_RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR}


def _check_image(image, name="image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8, got {image.dtype}")
    if image.ndim != 2:
        raise ValueError(f"{name}: expected an (H, W) grey image, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{name}: empty image, shape {image.shape}")
    return image


def _check_number(value, name, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name}: must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high}, got {value}")
    return value


def _to_uint8(values) -> np.ndarray:
    """Round half to even, clip to [0, 255], uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def brightness(image, factor):
    """Scale every grey level by ``factor`` (overall gain), clipping at 255.

    Why: the operator's overall gain and the display's brightness differ
    between scanners, presets and sites. Echoes are log-compressed before
    display, so a gain change in dB mostly shifts grey levels; scaling them
    does the same for mid-grey tissue while keeping black black. The training
    augmentation shifted levels by at most 8 % of full scale.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    factor : float
        Multiplier, > 0: 1.2 is 20 % brighter, 0.8 20 % darker.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8, ``round(image * factor)`` clipped to [0, 255].

    Examples
    --------
    >>> brightness(np.array([[0, 100, 250]], np.uint8), 1.2).tolist()
    [[0, 120, 255]]
    """
    image = _check_image(image)
    factor = _check_number(factor, "factor", low=0, low_open=True)
    return _to_uint8(image.astype(np.float64) * factor)


def contrast(image, factor):
    """Stretch (``factor`` > 1) or squeeze (< 1) grey levels about the image's mean.

    Why: the dynamic-range (compression) setting and each vendor's grey map
    decide how far tissue echoes spread from the mean: a narrow dynamic range
    gives a harsh, high-contrast image, a wide one a soft, flat image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    factor : float
        > 0; the mean of the image (before rounding and clipping) is kept.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8, ``round(mean + factor * (image - mean))`` clipped.

    Examples
    --------
    >>> contrast(np.array([[50, 100, 150]], np.uint8), 0.8).tolist()
    [[60, 100, 140]]
    """
    image = _check_image(image)
    factor = _check_number(factor, "factor", low=0, low_open=True)
    x = image.astype(np.float64)
    mean = x.mean()
    return _to_uint8(mean + factor * (x - mean))


def gamma(image, exponent):
    """Apply the power curve ``255 * (image / 255) ** exponent``.

    Why: post-processing grey maps (the curve from echo amplitude to display
    level) differ between vendors and presets; a gamma below 1 lifts the dark
    and mid greys (hypoechoic lesions look less dark), above 1 deepens them.
    Black stays black and white stays white.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    exponent : float
        > 0.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8.

    Examples
    --------
    >>> gamma(np.array([[0, 64, 255]], np.uint8), 1.25).tolist()
    [[0, 45, 255]]
    """
    image = _check_image(image)
    exponent = _check_number(exponent, "exponent", low=0, low_open=True)
    return _to_uint8(255.0 * (image.astype(np.float64) / 255.0) ** exponent)


def speckle(image, sigma, seed=0):
    """Multiply every pixel by gamma-distributed noise of mean 1 and standard deviation ``sigma``.

    Why: speckle is multiplicative, and its strength depends on the
    scanner's speckle reduction, spatial compounding and frequency. The
    intensity of fully developed speckle is exponential (a gamma of shape 1);
    after a scanner's averaging it is a gamma of larger shape, here
    ``1 / sigma**2``. The training augmentation used Gaussian multiplicative
    noise with a standard deviation of at most 0.12. The noise is independent
    per pixel; the network sees the image at 160x160, which averages part of
    it away on large images.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    sigma : float
        Standard deviation of the multiplier, > 0.
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed and shape always
        give the same noise.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8, ``round(image * noise)`` clipped to [0, 255].
    """
    image = _check_image(image)
    sigma = _check_number(sigma, "sigma", low=0, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    shape = 1.0 / sigma**2
    noise = np.random.default_rng(int(seed)).gamma(shape, 1.0 / shape, image.shape)
    return _to_uint8(image.astype(np.float64) * noise)


def jpeg(image, quality):
    """Re-compress the image as JPEG at ``quality`` (PIL).

    Why: images leave scanners and PACS exports lossy-compressed, often more
    than once; compression blurs fine speckle and adds 8x8 block edges that
    the network never saw in BUSI's PNGs.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    quality : int
        1 (worst) to 95 (PIL's highest useful setting).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8, decoded from the JPEG bytes.
    """
    image = _check_image(image)
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral):
        raise TypeError(f"quality: expected an int, got {type(quality).__name__}")
    if not 1 <= quality <= 95:
        raise ValueError(f"quality: must be between 1 and 95, got {quality}")
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L")).copy()


def rescale(image, factor, resample="bilinear"):
    """Resize the image by ``factor`` in both directions.

    Why: scanners and exports differ in pixels per millimetre. The runtime
    resizes every image to 160x160 anyway, so scaling alone should change
    little; this checks that. Geometric: masks use ``resample="nearest"``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    factor : float
        > 0; the output is ``(max(1, round(H * factor)), max(1, round(W * factor)))``.
    resample : {"bilinear", "nearest"}
        PIL's filter; bilinear is antialiased when shrinking.

    Returns
    -------
    numpy.ndarray
        ``(H', W')`` uint8.

    Examples
    --------
    >>> rescale(np.zeros((10, 21), np.uint8), 1.5).shape
    (15, 32)
    """
    image = _check_image(image)
    factor = _check_number(factor, "factor", low=0, low_open=True)
    if resample not in _RESAMPLE:
        raise ValueError(f"resample: expected one of {sorted(_RESAMPLE)}, got {resample!r}")
    h, w = image.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(image, mode="L").resize(size, _RESAMPLE[resample]))


def down_up(image, factor=0.5):
    """Shrink the image by ``factor`` and resize it back to its own size (bilinear).

    Why: a scanner or probe with lower lateral and axial resolution, or an
    export at a lower matrix size, loses fine speckle and sharp margins; the
    image keeps its size (and its mask), only detail is lost.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    factor : float
        In (0, 1].

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8.
    """
    image = _check_image(image)
    factor = _check_number(factor, "factor", low=0, low_open=True, high=1)
    h, w = image.shape
    small = rescale(image, factor)
    return np.asarray(Image.fromarray(small, mode="L").resize((w, h), Image.BILINEAR))


def flip_horizontal(image):
    """Mirror left and right.

    Why: left and right breasts, and probe orientation conventions (marker
    to the patient's right or to the head), mirror the image. Depth still
    runs down the image, so only this flip is realistic.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8, ``image[:, ::-1]``.
    """
    image = _check_image(image)
    return image[:, ::-1].copy()


def crop_borders(image, fraction=0.1):
    """Cut ``fraction`` of the height off the top and bottom, and of the width off each side.

    Why: depth and sector width settings, and how a site exports or crops
    frames (with or without the scanner's margins, text and calipers),
    change the field of view. With 0.1 the central 80 % x 80 % is kept, so a
    lesion near an edge is partly cut off, and its mask with it.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` uint8.
    fraction : float
        In [0, 0.5); ``round(fraction * H)`` rows go at the top and again at
        the bottom, ``round(fraction * W)`` columns at each side.

    Returns
    -------
    numpy.ndarray
        ``(H - 2 * round(fraction * H), W - 2 * round(fraction * W))`` uint8.

    Examples
    --------
    >>> crop_borders(np.arange(100, dtype=np.uint8).reshape(10, 10), 0.2)[0].tolist()
    [22, 23, 24, 25, 26, 27]
    """
    image = _check_image(image)
    fraction = _check_number(fraction, "fraction", low=0)
    if fraction >= 0.5:
        raise ValueError(f"fraction: must be < 0.5, got {fraction}")
    h, w = image.shape
    dr, dc = round(fraction * h), round(fraction * w)
    if h - 2 * dr < 1 or w - 2 * dc < 1:
        raise ValueError(f"fraction: {fraction} leaves nothing of a {h}x{w} image")
    return image[dr:h - dr, dc:w - dc].copy()


@dataclass(frozen=True)
class Perturbation:
    """One named perturbation of an image and, when it moves pixels, of its mask.

    Parameters
    ----------
    name : str
        Short name used on the command line and in reports.
    image_fn : callable
        ``(H, W)`` uint8 -> ``(H', W')`` uint8.
    mask_fn : callable or None
        For geometric perturbations, the same move for a ``(H, W)`` uint8
        mask of 0 and 255 with nearest-neighbour resampling; None when the
        image keeps its geometry (the mask is returned unchanged).
    why : str
        The acquisition difference it imitates.
    """

    name: str
    image_fn: Callable[[np.ndarray], np.ndarray]
    mask_fn: Callable[[np.ndarray], np.ndarray] | None
    why: str

    def apply(self, image, mask):
        """Perturb ``image`` and move ``mask`` with it.

        Parameters
        ----------
        image : numpy.ndarray
            ``(H, W)`` uint8.
        mask : array_like
            ``(H, W)`` bool ground truth.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(H', W')`` uint8 image and ``(H', W')`` bool mask.
        """
        image = _check_image(image)
        mask = np.asarray(mask)
        if mask.shape != image.shape:
            raise ValueError(f"mask: shape {mask.shape} differs from image {image.shape}")
        out = self.image_fn(image)
        if self.mask_fn is None:
            return out, mask.astype(bool, copy=True)
        moved = self.mask_fn(np.where(mask.astype(bool), 255, 0).astype(np.uint8)) > 0
        if moved.shape != out.shape:  # guards the registry, not the caller
            raise ValueError(f"mask_fn: gave shape {moved.shape} for image {out.shape}")
        return out, moved


def _bind(fn, *args, **kwargs):
    return lambda image: fn(image, *args, **kwargs)


#: Every perturbation the robustness report runs, in report order.
PERTURBATIONS = (
    Perturbation("brightness+20", _bind(brightness, 1.2), None,
                 "overall gain / display brightness 20 % higher"),
    Perturbation("brightness-20", _bind(brightness, 0.8), None,
                 "overall gain / display brightness 20 % lower"),
    Perturbation("contrast0.8", _bind(contrast, 0.8), None,
                 "wider dynamic range: grey levels 20 % closer to the mean"),
    Perturbation("contrast1.25", _bind(contrast, 1.25), None,
                 "narrower dynamic range: grey levels 25 % further from the mean"),
    Perturbation("gamma0.8", _bind(gamma, 0.8), None,
                 "another grey map: dark and mid greys lifted"),
    Perturbation("gamma1.25", _bind(gamma, 1.25), None,
                 "another grey map: dark and mid greys deepened"),
    Perturbation("speckle0.25", _bind(speckle, 0.25, seed=0), None,
                 "less speckle reduction: gamma multiplicative noise, sd 0.25, seed 0"),
    Perturbation("jpeg40", _bind(jpeg, 40), None,
                 "lossy export: JPEG re-compression at quality 40"),
    Perturbation("half-res", _bind(down_up, 0.5), None,
                 "lower-resolution scanner: shrunk to half size and back"),
    Perturbation("resize1.5", _bind(rescale, 1.5), _bind(rescale, 1.5, "nearest"),
                 "more pixels per mm: 1.5 times the size (the runtime resizes anyway)"),
    Perturbation("hflip", flip_horizontal, flip_horizontal,
                 "other breast or probe orientation: mirrored left-right"),
    Perturbation("crop10", _bind(crop_borders, 0.1), _bind(crop_borders, 0.1),
                 "smaller field of view: 10 % of height and width cut off every edge"),
)
