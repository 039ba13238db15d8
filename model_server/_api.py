"""The REST endpoints: /health, /predict, /classify, /vectorize, /models."""

from __future__ import annotations

import base64
import os
import time

import numpy as np
from flask import Blueprint, Response, current_app, g, jsonify, request

from vectorizer import browser_orientation

from ._decode import DecodedImage, decode_image, decode_mask
from ._errors import BadRequest, ServiceUnavailable
from ._inputs import check_query, parse_box, parse_max_vertices, parse_pixel_spacing, read_file
from ._models import get_models
from ._readiness import get_readiness, version_conflict
from .tasks import ClassificationTask, SegmentationTask, VectorizationTask

bp = Blueprint("api", __name__)

TASKS_KEY = "sonotrace_tasks"


def init_tasks(app, models) -> None:
    vectorization = VectorizationTask()
    app.extensions[TASKS_KEY] = {
        "segmentation": SegmentationTask(models, vectorization),
        "classification": ClassificationTask(models),
        "vectorization": vectorization,
    }


def warm_vectorizer() -> None:
    """Import and run the vectorizer once (potrace, shapely), off the request path."""
    mask = np.zeros((48, 64), bool)
    mask[10:30, 12:40] = True
    VectorizationTask()(mask)
    _mask_png(mask)


def _task(name: str):
    return current_app.extensions[TASKS_KEY][name]


def _decode_upload(field: str, timings: dict) -> DecodedImage:
    start = time.perf_counter()
    data = read_file(field)
    timings["read"] = round((time.perf_counter() - start) * 1000.0, 3)
    start = time.perf_counter()
    image = decode_image(data, max_pixels=current_app.config["MAX_PIXELS"])
    timings["decode"] = round((time.perf_counter() - start) * 1000.0, 3)
    g.image_size = f"{image.width}x{image.height}"
    return image


def _total(timings: dict) -> dict:
    timings["total"] = round((time.perf_counter() - g.request_start) * 1000.0, 3)
    g.timings = timings  # the stages the metrics count (_metrics)
    return timings


def _mask_png(mask: np.ndarray) -> bytes:
    """8-bit 0/255 PNG of a bool ``(H, W)`` mask, with zlib level 1: this runs on
    every request, and on a mask level 1 is several times faster than the default
    for a file of about the same size."""
    from vectorizer import mask_to_png

    return mask_to_png(mask, compress_level=1)


def _version_conflict() -> str | None:
    """Why this server must not serve: its workers hold different weights; else None.

    A worker loads the weights folder when it starts, so after the folder changed (a
    release link switched, ``models.export --replace-shipped``) a worker respawned after
    a timeout or an out-of-memory kill serves the new models beside its siblings' old
    ones: one reader's /predict and /classify of one case would come from two releases,
    and /health would say "ok" with whichever worker answered. Refusing on the respawned
    worker alone would leave the others serving, and requests failing or not by the
    worker they land on; so every worker refuses, /health says "error" naming both
    versions and the fix, and the restart, which loads one version everywhere, ends it.
    That is an outage until then, but the engineer changed the weights to deploy them:
    the restart is the step that was missed, and serving on would hide it.
    """
    readiness = get_readiness()
    if readiness is None:
        return None
    own = get_models().loaded_weights()
    if own is not None:
        # On the board before this worker judges with them: once one worker has said
        # "conflict", every sibling says so too, not only after its warm-up has ended
        # (until then a sibling served 200 beside its 503s).
        readiness.mark_loaded(os.getpid(), own)
    return version_conflict(readiness, own)


def _refuse_mixed_versions() -> None:
    """503 with :func:`_version_conflict`'s message, for the model endpoints.

    This worker's models are loaded first, as the request would load them, so that a
    worker respawned and not yet warm counts its own version too.
    """
    if get_readiness() is None:
        return
    get_models().runtime()
    conflict = _version_conflict()
    if conflict:
        raise ServiceUnavailable(conflict, headers={"Retry-After": "10"})


@bp.get("/health")
def health():
    models = get_models()
    readiness = get_readiness()
    body = {"status": "ok" if models.ready else models.state, "model": models.info()}
    conflict = _version_conflict()
    if conflict:
        body["status"] = "error"
    ready = models.ready and not conflict
    if readiness is not None:
        count, expected = readiness.count(), readiness.expected
        body["workers"] = {"ready": count, "expected": expected}
        ready = ready and count >= expected
        if models.ready and not ready and not conflict:
            body["status"] = "loading"
    if ready:
        if models.load_seconds is not None:
            body["load_seconds"] = round(models.load_seconds, 2)
        return jsonify(body)
    message = models.error or "models are loading"
    if models.ready:
        message = "other workers are still loading their models"
    if conflict:
        message = conflict
    body["error"] = {"code": 503, "message": message}
    response = jsonify(body)
    response.status_code = 503
    response.headers["Retry-After"] = "2"
    return response


@bp.post("/predict")
def predict():
    timings: dict = {}
    check_query("box", "max_vertices", files=("image",))
    max_vertices = parse_max_vertices()
    wants_png = (
        request.accept_mimetypes.best_match(["application/json", "image/png"]) == "image/png"
    )
    image = _decode_upload("image", timings)
    box = parse_box(image.width, image.height)
    _refuse_mixed_versions()
    result = _task("segmentation")(
        image.pixels,
        box=box,
        max_vertices=max_vertices,
        pixel_spacing=image.pixel_spacing,
        vectorize=not wants_png,
        timings=timings,
    )
    start = time.perf_counter()
    png = _mask_png(result["mask"])
    timings["encode"] = round((time.perf_counter() - start) * 1000.0, 3)
    model = result["model"]
    if wants_png:
        response = Response(png, mimetype="image/png")
        response.headers["X-Model-Name"] = model["name"]
        response.headers["X-Model-Version"] = model["version"]
        response.headers["X-Timing-Ms"] = str(_total(timings)["total"])
        return response
    return jsonify(
        {
            "width": image.width,
            "height": image.height,
            "mask": base64.b64encode(png).decode("ascii"),
            "svg": result["svg"],
            "paths": result["paths"],
            "regions": result["regions"],
            "pixel_spacing_mm": list(image.pixel_spacing) if image.pixel_spacing else None,
            "box": list(box) if box else None,
            "model": model,
            "timing_ms": _total(timings),
        }
    )


@bp.post("/classify")
def classify():
    timings: dict = {}
    check_query(files=("image", "mask"))
    image = _decode_upload("image", timings)
    mask = None
    mask_data = read_file("mask", required=False, raw_body=False)
    if mask_data is not None:
        mask = decode_mask(mask_data, max_pixels=current_app.config["MAX_PIXELS"])
        _check_mask_size(mask, image, browser_orientation(mask_data))
    _refuse_mixed_versions()
    result = _task("classification")(image.pixels, mask=mask, timings=timings)
    result["timing_ms"] = _total(timings)
    return jsonify(result)


def _check_mask_size(mask: np.ndarray, image: DecodedImage, mask_orientation: int) -> None:
    """Refuse a mask of another size than the image, saying which EXIF turn made it so.

    Both are compared upright, as browsers show them; a size the file's header does
    not state (turned by its EXIF) is named as turned, or the message contradicts
    what every tool that reads the header shows.
    """
    if mask.shape == image.pixels.shape[:2]:
        return

    def size(shape, orientation):
        turned = (f" once turned upright by its EXIF orientation ({orientation})"
                  if orientation != 1 else "")
        return f"{shape[1]}x{shape[0]}{turned}"

    raise BadRequest(f"mask is {size(mask.shape, mask_orientation)} but the image is "
                     f"{size(image.pixels.shape, image.orientation)}; they must have the "
                     "same size")


@bp.post("/vectorize")
def vectorize():
    timings: dict = {}
    check_query("max_vertices", "pixel_spacing", files=("mask",))
    max_vertices = parse_max_vertices()
    spacing = parse_pixel_spacing()
    data = read_file("mask")
    start = time.perf_counter()
    mask = decode_mask(data, max_pixels=current_app.config["MAX_PIXELS"])
    timings["decode"] = round((time.perf_counter() - start) * 1000.0, 3)
    g.image_size = f"{mask.shape[1]}x{mask.shape[0]}"
    result = _task("vectorization")(
        mask, max_vertices=max_vertices, pixel_spacing=spacing, timings=timings
    )
    result["timing_ms"] = _total(timings)
    return jsonify(result)


@bp.get("/models")
def models_index():
    models = get_models()
    runtime = models.runtime()
    tasks = current_app.extensions[TASKS_KEY]
    return jsonify(
        {
            "runtime": runtime.info(),
            "manifest": runtime.manifest,
            "tasks": {name: task.info() for name, task in tasks.items()},
        }
    )
