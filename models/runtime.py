"""Load the exported models once and run them: the only part the server imports.

Coordinates: images are numpy ``(row, col)`` arrays; a ``box`` is
``(x0, y0, x1, y1)`` in image pixels with x along columns, half-open like
pixel edges (pixel ``(r, c)`` spans x in [c, c+1], y in [r, r+1]).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from ._postprocess import PostProcess, postprocess
from ._preprocess import (
    mask_from_array,
    prepare_input,
    resize_mask,
    resize_prob,
    resize_prob_box,
    resize_prob_window,
    to_grey,
)
from .lesion_crop import lesion_box, lesion_crop
from .lesion_refine import refine_window
from .metrics import softmax

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


#: ``Runtime(backend=...)`` and ``SONOTRACE_RUNTIME_BACKEND`` values.
BACKENDS = ("auto", "litert", "keras")

#: Most bytes of full-resolution masks a runtime keeps for an image asked about again
#: (``/predict`` then ``/classify``): 64 MiB, a few dozen BUSI-sized images.
MASK_CACHE_BYTES = 64 * 1024 * 1024


class ModelInputError(ValueError):
    """The image (or mask, or box) cannot be used by the models."""


#: Inference threads when neither the caller nor ``SONOTRACE_NUM_THREADS`` says (0 or
#: empty is "not said", as for ``python -m model_server``, which says cores / workers).
DEFAULT_THREADS = 2
MAX_THREADS = 64


def _threads(num_threads) -> int:
    """The inference threads: ``num_threads``, else ``SONOTRACE_NUM_THREADS``, else
    :data:`DEFAULT_THREADS`; 0 or empty at either is not saying.

    Raises
    ------
    ValueError
        For a value that is not a whole number from 0 to :data:`MAX_THREADS`, naming it.
    """
    for value, name in ((num_threads, "num_threads"),
                        (os.environ.get("SONOTRACE_NUM_THREADS"), "SONOTRACE_NUM_THREADS")):
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            number = int(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            number = -1
        if isinstance(value, bool | float) or not 0 <= number <= MAX_THREADS:
            raise ValueError(f"{name}={value!r}: must be a whole number from 1 to "
                             f"{MAX_THREADS} (0 or unset: {DEFAULT_THREADS})")
        if number:
            return number
    return DEFAULT_THREADS


class Runtime:
    """The shipped multi-task network, loaded lazily and safe to share between threads.

    Parameters
    ----------
    weights_dir : str or Path, optional
        Folder with ``manifest.json`` and the model files. Defaults to
        ``$SONOTRACE_WEIGHTS_DIR`` or the weights shipped in ``models/weights``.
    backend : {"auto", "litert", "keras"}
        ``auto`` uses the LiteRT file when present and importable.
    num_threads : int, optional
        Inference threads (LiteRT); defaults to ``$SONOTRACE_NUM_THREADS`` or 2 (0 or
        empty at either is the default).
    postprocess : dict, optional
        Overrides of the manifest's post-processing settings
        (see :class:`models._postprocess.PostProcess`).

    Notes
    -----
    Every method that takes an image raises :class:`ModelInputError` for one it
    cannot use: not ``(H, W)`` or ``(H, W, C)`` with 1, 3 or 4 channels, under 8x8 pixels,
    non-numeric or not finite, or blank (one grey value everywhere), and for a
    ``mask`` or ``box`` that does not fit the image.
    """

    def __init__(self, weights_dir=None, backend=None, num_threads=None, postprocess=None):
        # Blank means unset, as the README says: an .env line "SONOTRACE_WEIGHTS_DIR= ".
        from_env = os.environ.get("SONOTRACE_WEIGHTS_DIR", "").strip()
        self.weights_dir = Path(weights_dir or from_env or DEFAULT_WEIGHTS_DIR)
        self.backend = backend or os.environ.get("SONOTRACE_RUNTIME_BACKEND", "auto")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: expected auto, litert or keras, got {self.backend!r}")
        self.num_threads = _threads(num_threads)
        self._overrides = dict(postprocess or {})
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._mask_cache: OrderedDict = OrderedDict()
        self._mask_cache_bytes = 0
        self._net = None
        self._lesion = None
        self._refiner = None
        self.manifest: dict = {}
        #: SHA-256 (hex) of the manifest.json loaded: which export this is, even where two
        #: exports give the same ``version`` (the server compares its workers' by it).
        self.manifest_sha256: str | None = None
        self.settings = PostProcess()
        # Set last, once every model the manifest names has loaded: `_net` alone would
        # count a runtime whose lesion classifier or refiner failed as loaded.
        self._loaded = False

    # -- loading -----------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._loaded

    def load(self) -> Runtime:
        """Load the manifest and every model it names; later calls return at once.

        All or nothing: a load that fails part-way (the refiner's file missing, say)
        leaves the runtime unloaded, so the next call loads everything again rather
        than serving the U-Net without the lesion classifier or the refiner.
        """
        if self._loaded:
            return self
        with self._lock:
            if not self._loaded:
                try:
                    self._load()
                except BaseException:
                    self._net = self._lesion = self._refiner = None
                    self.manifest = {}
                    self.manifest_sha256 = None
                    raise
                self._loaded = True
        return self

    def _load(self):
        manifest_path = self.weights_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no manifest.json in {self.weights_dir}")
        with _naming_file(manifest_path, "the model manifest"):
            # null for NaN or infinity, which older exports wrote for a figure that
            # could not be computed: the server's strict JSON refused them in /models.
            raw = manifest_path.read_bytes()
            manifest = json.loads(raw, parse_constant=lambda _: None)
        pp = {**manifest.get("postprocess", {}), **self._overrides}
        self.settings = PostProcess(**pp)
        self.input_size = int(manifest["input_size"])
        self.class_names = list(manifest["class_names"])
        self.temperature = float(manifest.get("temperature", 1.0))
        self.blend_temperature = float(manifest.get("blend_temperature", 1.0))
        self.tta = bool(manifest.get("tta_flip", False))
        files = manifest["files"]
        use_litert = self.backend in ("auto", "litert") and files.get("litert")
        if use_litert:
            try:
                path = self.weights_dir / files["litert"]
                with _naming_file(path, "the segmentation network"):
                    net = _LiteRTNet(path, self.num_threads)
                self.backend_used = "litert"
            except ImportError:
                if self.backend == "litert":
                    raise
                use_litert = False
        if not use_litert:
            path = self.weights_dir / files["keras"]
            with _naming_file(path, "the segmentation network"):
                net = _KerasNet(path, manifest.get("architecture"))
            self.backend_used = "keras"
        self._lesion = self._load_lesion(manifest.get("lesion_classifier"))
        self._refiner = self._load_refiner(manifest.get("refiner"))
        self.manifest = manifest
        # Of the bytes read, not of the file again: the folder may change meanwhile.
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self._net = net  # load() counts the runtime loaded only once all of this is done
        log.info("loaded %s %s (%s backend) from %s", manifest.get("name"),
                 manifest.get("version"), self.backend_used, self.weights_dir)

    def _load_lesion(self, spec):
        """The optional lesion classifier, on the same backend as the U-Net."""
        self.lesion_spec = spec
        return self._load_crop_model(spec, _LiteRTLesion, _KerasLesion, "the lesion classifier")

    def _load_refiner(self, spec):
        """The optional outline refiner, on the same backend as the U-Net."""
        self.refiner_spec = spec
        return self._load_crop_model(spec, _LiteRTRefiner, _KerasRefiner, "the outline refiner")

    def _load_crop_model(self, spec, litert_cls, keras_cls, what):
        if not spec:
            return None
        files = spec["files"]
        if self.backend_used == "litert" and files.get("litert"):
            path = self.weights_dir / files["litert"]
            with _naming_file(path, what):
                net = litert_cls(path, self.num_threads)
        else:
            path = self.weights_dir / files["keras"]
            with _naming_file(path, what):
                net = keras_cls(path, spec)
        return _FlipAveraged(net) if spec.get("tta_flip") else net

    def info(self) -> dict:
        """Name, version, backend and input size of the loaded model."""
        self.load()
        return {
            "name": self.manifest.get("name"),
            "version": self.manifest.get("version"),
            "backend": self.backend_used,
            "input_size": self.input_size,
            "class_names": self.class_names,
            "lesion_classifier": self._lesion is not None,
            "refiner": self._refiner is not None,
        }

    # -- inference ---------------------------------------------------------------
    def _run(self, grey, hint=None, key=None):
        """Network on an ``(H, W)`` uint8 image; returns ``(seg (S, S), logits (K,))``.

        ``key`` is :meth:`_image_key` of ``grey`` when the caller has it already;
        runs with a hint are not cached.
        """
        if hint is not None:
            key = None
        else:
            key = key or self._image_key(grey)
            with self._run_lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
        x = prepare_input(grey, self.input_size)
        if hint is None:
            h, use = np.zeros_like(x), np.zeros((1, 1), np.float32)
        else:
            h = resize_mask(hint, self.input_size)[None, :, :, None]
            use = np.ones((1, 1), np.float32)
        seg, logits = self._net(x, h, use)
        if self.tta:
            seg_f, logits_f = self._net(x[:, :, ::-1].copy(), h[:, :, ::-1].copy(), use)
            seg = (seg + seg_f[:, ::-1]) / 2
            logits = (logits + logits_f) / 2
        out = (seg, logits)
        if key is not None:
            with self._run_lock:
                self._cache[key] = out
                while len(self._cache) > 8:
                    self._cache.popitem(last=False)
        return out

    def _image_key(self, grey):
        return hashlib.sha1(grey.tobytes() + str((grey.shape, self.tta)).encode()).hexdigest()

    def segment(self, image, box=None) -> np.ndarray:
        """Lesion probability map at the image's own size.

        Parameters
        ----------
        image : array_like
            ``(H, W)`` grey or ``(H, W, 3)`` RGB, uint8.
        box : tuple of 4 numbers, optional
            ``(x0, y0, x1, y1)`` in pixels: segment only inside it (crop,
            resize, run, paste back); outside is 0.

        Returns
        -------
        numpy.ndarray
            ``(H, W)`` float32 in [0, 1].
        """
        self.load()
        grey = _grey(image)
        if box is None:
            seg, _ = self._run(grey)
            return resize_prob(seg, *grey.shape)
        r0, r1, c0, c1 = _box_to_slices(box, grey.shape)
        seg, _ = self._run(np.ascontiguousarray(grey[r0:r1, c0:c1]))
        prob = np.zeros(grey.shape, np.float32)
        prob[r0:r1, c0:c1] = resize_prob(seg, r1 - r0, c1 - c0)
        return prob

    def predict_mask(self, image, box=None) -> np.ndarray:
        """Post-processed ``(H, W)`` bool lesion mask (see :class:`PostProcess`).

        Parameters
        ----------
        image : array_like
            ``(H, W)`` grey or ``(H, W, 3)`` RGB, uint8.
        box : tuple of 4 numbers, optional
            ``(x0, y0, x1, y1)`` in pixels, a user's region of interest: the
            U-Net segments the box alone, without the normal gate or the
            confidence floor, the refiner (if any) redraws what it finds, and
            the mask is empty outside the box.

        Returns
        -------
        numpy.ndarray
            ``(H, W)`` bool, the caller's own copy.
        """
        self.load()
        grey = _grey(image)
        if box is not None:
            return self._box_outline(grey, box)
        return self._outlines(grey)[1].copy()

    def _box_outline(self, grey, box):
        """The outline inside a user's box, redrawn by the refiner when there is one."""
        # The user has said there is a lesion in the box: no gate, no confidence floor.
        settings = replace(self.settings, min_confidence=0.0)
        prob = self.segment(grey, box)
        first = postprocess(prob, settings)
        if self._refiner is None or not first.any():
            return first
        served = self._refine(grey, lambda inside: prob[inside], first, settings)
        # The refiner's square can reach past the box; the user's box bounds the outline,
        # as it bounds the U-Net's.
        r0, r1, c0, c1 = _box_to_slices(box, grey.shape)
        bounded = np.zeros(grey.shape, bool)
        bounded[r0:r1, c0:c1] = served[r0:r1, c0:c1]
        return bounded if bounded.any() else first

    def _outlines(self, grey):
        """The first outline and the served one, ``(H, W)`` bool each (not to be modified).

        They are the same array when there is no refiner or nothing to refine.
        """
        # /predict then /classify (or classify's lesion crop) post-process the same
        # image with the same settings; full-resolution post-processing is worth keeping.
        image_key = self._image_key(grey)
        key = (image_key, repr(self.settings))
        with self._run_lock:
            if key in self._mask_cache:
                self._mask_cache.move_to_end(key)
                return self._mask_cache[key]
        # One network pass gives both the map and the gate's P(normal).
        seg, logits = self._run(grey, key=image_key)
        first, settings = self._first_outline(grey, seg, logits)
        served = first
        if self._refiner is not None and first.any():
            h, w = grey.shape
            # Only each square's part of the U-Net's map is resampled: images can be large.
            served = self._refine(grey, lambda inside: resize_prob_box(seg, h, w, *inside),
                                  first, settings)
        size = first.nbytes + (served.nbytes if served is not first else 0)
        # Full-resolution masks: eight of a 25-megapixel image would keep 400 MB in every
        # worker for good. The cache holds at most MASK_CACHE_BYTES; a larger pair is
        # served but not kept (a second request for it post-processes again).
        if size <= MASK_CACHE_BYTES:
            with self._run_lock:
                if key not in self._mask_cache:
                    self._mask_cache[key] = (first, served)
                    self._mask_cache_bytes += size
                while len(self._mask_cache) > 8 or self._mask_cache_bytes > MASK_CACHE_BYTES:
                    old_first, old_served = self._mask_cache.popitem(last=False)[1]
                    self._mask_cache_bytes -= old_first.nbytes + (
                        old_served.nbytes if old_served is not old_first else 0
                    )
        return first, served

    def _first_outline(self, grey, seg, logits):
        """The U-Net's post-processed outline, and the settings that drew it."""
        settings = self.settings
        if settings.normal_gate <= 1.0:
            if self._probabilities(logits)["normal"] >= settings.normal_gate:
                if settings.gate_keep_confidence > 1.0:
                    return np.zeros(grey.shape, bool), settings
                floor = max(settings.min_confidence, settings.gate_keep_confidence)
                settings = replace(settings, min_confidence=floor)
        # Only the mask is wanted here, so only the window of the map that can reach
        # the threshold is resampled (same values; see resize_prob_window).
        window, offset = resize_prob_window(seg, *grey.shape, settings.threshold)
        return postprocess(window, settings, shape=grey.shape, offset=offset), settings

    def _refine(self, grey, coarse_at, outline, settings):
        """Redraw a first outline with the refiner (see :mod:`models.lesion_refine`).

        Each 8-connected region of the first outline is redrawn in its own
        square, so that a small lesion keeps the refiner's resolution when the
        U-Net also outlines something far from it, and the redrawn regions are
        united. Only those squares change, and the gate and the confidence
        floor are not applied again: they have already decided that there is
        a lesion there. For the same reason a region whose redrawing comes out
        empty keeps its first outline.

        Parameters
        ----------
        grey : numpy.ndarray
            ``(H, W)`` uint8 image.
        coarse_at : callable
            ``(rows, cols)`` slices -> the U-Net's lesion probability over them,
            float32 of that shape.
        outline : numpy.ndarray
            ``(H, W)`` bool first outline, not empty.
        settings : PostProcess
            The settings that drew ``outline``.
        """
        # Labelled inside the outline's bounding box only: images can be large.
        r = np.flatnonzero(outline.any(axis=1))
        c = np.flatnonzero(outline.any(axis=0))
        top, left = int(r[0]), int(c[0])
        labels, _ = ndimage.label(outline[top:r[-1] + 1, left:c[-1] + 1],
                                  structure=np.ones((3, 3), bool))
        served = np.zeros(grey.shape, bool)
        for i, region in enumerate(ndimage.find_objects(labels), start=1):
            # Boxes of regions can overlap: keep only region i's pixels in its box.
            sub = labels[region] == i
            at = (slice(region[0].start + top, region[0].stop + top),
                  slice(region[1].start + left, region[1].stop + left))
            served |= self._refine_region(grey, coarse_at, sub, at, settings)
        return served

    def _refine_region(self, grey, coarse_at, sub, at, settings):
        """One region, ``sub`` (bool) at ``at`` (row and column slices) in the image."""
        spec = self.refiner_spec
        rows, cols = at
        x0, y0, x1, y1 = lesion_box(sub, float(spec["margin"]))
        box = (x0 + cols.start, y0 + rows.start, x1 + cols.start, y1 + rows.start)
        h, w = grey.shape
        inside = (slice(max(0, box[1]), min(h, box[3])), slice(max(0, box[0]), min(w, box[2])))
        coarse = coarse_at(inside)
        window, _ = refine_window(grey, box, coarse, self._refiner, int(spec["crop_size"]),
                                  float(spec["weight"]))
        redrawn = postprocess(window, replace(settings, min_confidence=0.0), shape=grey.shape,
                              offset=(inside[0].start, inside[1].start))
        if redrawn.any():
            return redrawn
        part = np.zeros(grey.shape, bool)
        part[at] = sub
        return part

    def outputs(self, image):
        """Raw outputs for tuning and analysis.

        Returns
        -------
        prob : numpy.ndarray
            ``(H, W)`` float32 lesion probability at the image's own size.
        logits : numpy.ndarray
            ``(K,)`` float64 logits before the temperature.
        """
        self.load()
        grey = _grey(image)
        seg, logits = self._run(grey)
        return resize_prob(seg, *grey.shape), np.asarray(logits, np.float64).ravel()

    def classify(self, image, mask=None) -> dict:
        """Calibrated class probabilities, ``{"normal": p, "benign": p, "malignant": p}``.

        Parameters
        ----------
        mask : array_like, optional
            ``(H, W)`` lesion mask (e.g. a radiologist's corrected outline), or
            ``(H, W, C)`` read by :func:`models._preprocess.mask_from_array`; the
            classifier then pools its features under this mask instead of its own
            segmentation.
        """
        self.load()
        grey = _grey(image)
        hint = _outline(mask, grey.shape)
        _, logits = self._run(grey, hint)
        probs = self._probabilities(logits)
        odds = self._lesion_odds(grey, hint)
        if odds is not None:
            probs = mix_malignant_odds(probs, odds, float(self.lesion_spec["weight"]))
        return recalibrate(probs, self.blend_temperature)

    def lesion_odds(self, image, mask=None):
        """The lesion classifier's log-odds of malignant against benign.

        Parameters
        ----------
        mask : array_like, optional
            ``(H, W)`` outline to crop around; default the U-Net's first
            post-processed outline (before any refiner), as :meth:`classify` uses.

        Returns
        -------
        float or None
            None when the export has no lesion classifier or the outline is empty.
        """
        self.load()
        grey = _grey(image)
        return self._lesion_odds(grey, _outline(mask, grey.shape))

    def _lesion_odds(self, grey, hint):
        if self._lesion is None:
            return None
        # The second look follows the outline the first classifier pooled under: the
        # user's, or the U-Net's own first outline (before the refiner redraws it, as the
        # lesion classifier was validated; see the model card).
        outline = hint if hint is not None else self._outlines(grey)[0]
        spec = self.lesion_spec
        crop = lesion_crop(grey, outline, int(spec["crop_size"]), float(spec["margin"]))
        return None if crop is None else self._lesion(crop[None, :, :, None])

    def _probabilities(self, logits) -> dict:
        p = softmax(np.asarray(logits, np.float64).ravel(), self.temperature)
        return {c: float(v) for c, v in zip(self.class_names, p, strict=True)}


def mix_malignant_odds(probs, lesion_odds, weight):
    """Blend the lesion classifier into the U-Net head's calibrated probabilities.

    P(normal) is the U-Net's: the lesion classifier only sees lesions. The
    rest is split between benign and malignant by the weighted mean of the
    two models' log-odds of malignant against benign.

    Parameters
    ----------
    probs : dict
        ``{"normal", "benign", "malignant"}`` probabilities summing to 1.
    lesion_odds : float
        The lesion classifier's log-odds of malignant against benign.
    weight : float
        Weight of the lesion classifier, in [0, 1].

    Returns
    -------
    dict
        The same keys, summing to 1.
    """
    tiny = 1e-12
    head = np.log(max(probs["malignant"], tiny)) - np.log(max(probs["benign"], tiny))
    odds = (1.0 - weight) * head + weight * float(lesion_odds)
    q = 1.0 / (1.0 + np.exp(-np.clip(odds, -60.0, 60.0)))
    lesion = 1.0 - probs["normal"]
    return {**probs, "benign": float(lesion * (1.0 - q)), "malignant": float(lesion * q)}


def recalibrate(probs, temperature):
    """Temper the served probabilities: ``p_k`` proportional to ``p_k ** (1 / temperature)``.

    The head's temperature calibrates the U-Net's own probabilities, which
    also drive the normal gate; averaging in the lesion classifier's log-odds
    leaves the blend less sure than it should be. This second temperature,
    fitted on what is served (``blend_temperature`` in the manifest, 1 when
    absent), calibrates the blend and changes no image's most likely class.

    Parameters
    ----------
    probs : dict
        Class name to probability, summing to 1.
    temperature : float
        Above 1 softens, below 1 sharpens.

    Returns
    -------
    dict
        The same keys, summing to 1.
    """
    if temperature == 1.0:
        return probs
    log_p = np.log(np.clip(np.array(list(probs.values()), np.float64), 1e-12, 1.0))
    return {c: float(v) for c, v in zip(probs, softmax(log_p, temperature), strict=True)}


def _outline(mask, shape):
    """A user's mask as ``(H, W)`` bool of the image's ``shape``, or None."""
    if mask is None:
        return None
    try:
        hint = mask_from_array(mask)
    except ValueError as exc:
        raise ModelInputError(str(exc)) from exc
    if hint.shape != tuple(shape):
        raise ModelInputError(
            f"mask: shape {hint.shape[::-1]} (w, h) differs from image {tuple(shape)[::-1]}"
        )
    return hint


def _grey(image) -> np.ndarray:
    """``image`` as the ``(H, W)`` uint8 grey the networks read, or ModelInputError."""
    try:
        grey = to_grey(image)
    except ValueError as exc:
        raise ModelInputError(str(exc)) from exc
    if grey.min() == grey.max():
        # One value everywhere holds nothing to segment or classify, yet the networks
        # answer it confidently (an all-black frame came out malignant, with an
        # outline). The server refuses such uploads when it decodes them; callers of
        # the runtime itself, models.evaluate included, get the same refusal.
        raise ModelInputError(
            f"image: blank (every pixel is {int(grey.flat[0])} after conversion to grey): "
            "nothing to segment or classify"
        )
    return grey


def _box_to_slices(box, shape):
    """Validate ``(x0, y0, x1, y1)`` and return row/col slices clipped to the image."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise ModelInputError("box: expected four numbers x0, y0, x1, y1") from exc
    if not all(np.isfinite([x0, y0, x1, y1])):
        raise ModelInputError("box: values must be finite")
    h, w = shape
    c0, c1 = int(np.floor(max(0, min(x0, x1)))), int(np.ceil(min(w, max(x0, x1))))
    r0, r1 = int(np.floor(max(0, min(y0, y1)))), int(np.ceil(min(h, max(y0, y1))))
    if c1 - c0 < 8 or r1 - r0 < 8:
        raise ModelInputError("box: must overlap the image by at least 8x8 pixels")
    return r0, r1, c0, c1


def _keras_model(path, build):
    """The network in ``path``: a whole ``.keras`` file (what exports write, with float16
    weights: :func:`models.networks.save_half_keras`), or half-precision or int8 weights
    (``.weights.npz``: exports before 2026-12-06, and ``--int8`` ones) filled into
    ``build()``, the network rebuilt from code as the manifest describes it."""
    import keras

    from . import networks  # also registers the custom layers

    if str(path).endswith(".npz"):
        model = build()
        networks.load_half_weights(model, path)
        return model
    return keras.models.load_model(path, compile=False)


@contextmanager
def _naming_file(path, what: str):
    """Add to a failure to load ``path`` a note naming it and what it holds.

    The loaders' own messages name no file ("The model is not a valid Flatbuffer
    buffer"), and a weights folder holds three networks (audit 802 F7). The
    exception keeps its type (the caller tells a missing backend, ImportError, from
    a bad file); the model server shows the note in /health and its log.
    """
    try:
        yield
    except ImportError:
        raise
    except Exception as exc:
        exc.add_note(f"while loading {what} from {path}")
        raise


class _KerasNet:
    def __init__(self, path, architecture=None):
        from . import networks

        self.model = _keras_model(path, lambda: networks.build_from_architecture(architecture))

    def __call__(self, x, hint, use):
        out = self.model({"image": x, "hint": hint, "use_hint": use}, training=False)
        return np.asarray(out["seg"])[0, ..., 0], np.asarray(out["cls"])[0]


class _LiteRTNet:
    def __init__(self, path, num_threads):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interp.allocate_tensors()
        self.inputs = {_io_name(d["name"]): d["index"] for d in self.interp.get_input_details()}
        outs = self.interp.get_output_details()
        self.seg_idx = next(d["index"] for d in outs if len(d["shape"]) == 4)
        self.cls_idx = next(d["index"] for d in outs if len(d["shape"]) == 2)
        # One interpreter holds one set of tensors, so calls must not interleave.
        self.lock = threading.Lock()

    def __call__(self, x, hint, use):
        with self.lock:
            for name, arr in (("image", x), ("hint", hint), ("use_hint", use)):
                self.interp.set_tensor(self.inputs[name], arr.astype(np.float32))
            self.interp.invoke()
            seg = self.interp.get_tensor(self.seg_idx)[0, ..., 0].copy()
            cls = self.interp.get_tensor(self.cls_idx)[0].copy()
        return seg, cls


class _FlipAveraged:
    """A crop model averaged with its run on the left-right mirror of the crop.

    Laterality is arbitrary in breast ultrasound, and the crop models trained
    with left-right flips, so the mirror is as likely a view as the crop
    itself. A map (the refiner's ``(S, S)``) is flipped back before averaging;
    a score (the lesion classifier's log-odds) is averaged as it is.
    """

    def __init__(self, net):
        self.net = net

    def __call__(self, crop):
        """``crop``: ``(1, S, S, 1)`` float32; the same output as the wrapped model."""
        once = self.net(crop)
        mirrored = self.net(np.ascontiguousarray(crop[:, :, ::-1]))
        if np.ndim(once) == 2:
            mirrored = mirrored[:, ::-1]
        return 0.5 * (once + mirrored)


def _io_name(name: str) -> str:
    for key in ("use_hint", "hint", "image"):
        if key in name:
            return key
    raise KeyError(name)


class _KerasLesion:
    def __init__(self, path, spec):
        from . import networks

        self.model = _keras_model(path, lambda: networks.build_lesion_from_architecture(spec))

    def __call__(self, crop):
        return float(np.asarray(self.model(crop.astype(np.float32), training=False)).ravel()[0])


class _LiteRTLesion:
    def __init__(self, path, num_threads):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.lock = threading.Lock()

    def __call__(self, crop):
        with self.lock:
            self.interp.set_tensor(self.inp, crop.astype(np.float32))
            self.interp.invoke()
            return float(self.interp.get_tensor(self.out).ravel()[0])


class _KerasRefiner:
    def __init__(self, path, spec):
        from . import networks

        self.model = _keras_model(path, lambda: networks.build_refiner_from_architecture(spec))

    def __call__(self, crop):
        return np.asarray(self.model(crop.astype(np.float32), training=False))[0, ..., 0]


class _LiteRTRefiner(_LiteRTLesion):
    def __call__(self, crop):
        with self.lock:
            self.interp.set_tensor(self.inp, crop.astype(np.float32))
            self.interp.invoke()
            return self.interp.get_tensor(self.out)[0, ..., 0].copy()
