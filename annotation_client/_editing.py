"""Pure outline edits behind the annotate page's callbacks.

An outline *state* is the JSON-able dict kept in the undo history::

    {"paths": [str, ...],        # one region per path, image pixels (x, y)
     "action": str,              # what made this state, shown in the history
     "base": None | "ai" | {"paths": [...]},
     "density": int | None,      # vertex budget the paths were vectorized with
     "offset_from": {...}}       # only after Grow / Shrink: see offset_outline

``base`` remembers the exact geometry a vertex-density change starts from, so
moving the slider back and forth re-vectorizes the same mask instead of
degrading an already simplified polygon step by step: ``"ai"`` means the AI's
own mask, a dict means the regions as they were before the first density change.
``density`` lets the page tell a real slider move from the slider merely being
drawn again with its old value (which must not touch the outline).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import vectorizer

from . import _shapes

MIN_VERTICES = 4
MAX_VERTICES = 256


def make_state(paths: Sequence[str], action: str, base=None, density=None) -> dict:
    """Build an outline state; see the module docstring for its fields."""
    if not isinstance(action, str) or not action:
        raise ValueError("action must be a non-empty str")
    if density is not None:
        density = _check_vertices(density)
    if base is not None and base != "ai":
        if not isinstance(base, dict) or not isinstance(base.get("paths"), list):
            raise ValueError("base must be None, 'ai' or {'paths': [...]}")
    return {
        "paths": list(_shapes._paths(paths)),
        "action": action,
        "base": base,
        "density": density,
    }


def empty_state() -> dict:
    """The state of an image with no outline yet."""
    return make_state([], "open")


def _check_vertices(max_vertices) -> int:
    if isinstance(max_vertices, bool) or not isinstance(max_vertices, int | np.integer):
        raise TypeError("max_vertices must be an int")
    if not MIN_VERTICES <= max_vertices <= MAX_VERTICES:
        raise ValueError(f"max_vertices must be in [{MIN_VERTICES}, {MAX_VERTICES}]")
    return int(max_vertices)


def mask_to_regions(mask: np.ndarray, max_vertices: int) -> list[str]:
    """Vectorize a mask into region paths with the vectorizer.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` bool mask, rows are y and columns are x.
    max_vertices : int
        The vertex budget per region.

    Returns
    -------
    list of str
        One absolute path per region (empty for an empty mask).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError("mask must be 2-D (H, W)")
    if not mask.any():
        return []
    return [p for p in vectorizer.mask_to_paths(mask, max_vertices=max_vertices)]


def revectorize(
    state: dict,
    max_vertices: int,
    shape: tuple[int, int],
    ai_mask: np.ndarray | None = None,
) -> dict:
    """Re-vectorize the outline with a new vertex budget.

    Parameters
    ----------
    state : dict
        The present outline state.
    max_vertices : int
        The new vertex budget per region.
    shape : (int, int)
        ``(height, width)`` of the image.
    ai_mask : numpy.ndarray, optional
        The AI's ``(H, W)`` bool mask; needed when ``state["base"] == "ai"``.

    Returns
    -------
    dict
        A new state (``action="density"``) whose ``base`` is the geometry the
        first density change started from.
    """
    max_vertices = _check_vertices(max_vertices)
    base = state.get("base")
    if base == "ai" and ai_mask is not None:
        mask = np.asarray(ai_mask, dtype=bool)
        if mask.shape != tuple(shape):
            raise ValueError(f"ai_mask has shape {mask.shape}, expected {tuple(shape)}")
    else:
        if base is None or base == "ai":
            base = {"paths": list(state["paths"])}
        mask = _shapes.paths_to_mask(base["paths"], tuple(shape))
    return make_state(
        mask_to_regions(mask, max_vertices), "density", base=base, density=max_vertices
    )


def merge_box(
    paths: Sequence[str],
    box: Sequence[int],
    predicted: np.ndarray,
    shape: tuple[int, int],
    max_vertices: int,
) -> dict:
    """Replace the outline inside a box with a new prediction.

    Regions that do not reach into the box keep their exact paths, so edits made
    elsewhere survive a re-segmentation. Regions touching the box are rasterised,
    their part inside the box is replaced by ``predicted``, and the result is
    vectorized again.

    Parameters
    ----------
    paths : sequence of str
        The present regions.
    box : (x0, y0, x1, y1) of int
        Pixel-edge box (see :func:`_shapes.clip_box`): columns x0..x1-1, rows y0..y1-1.
    predicted : numpy.ndarray
        ``(H, W)`` bool mask of the prediction for the box (only its part inside
        the box is used).
    shape : (int, int)
        ``(height, width)`` of the image.
    max_vertices : int
        Vertex budget for the re-vectorized regions.

    Returns
    -------
    dict
        The new state (``action="box"``).
    """
    max_vertices = _check_vertices(max_vertices)
    height, width = shape
    predicted = np.asarray(predicted, dtype=bool)
    if predicted.shape != (height, width):
        raise ValueError(f"predicted has shape {predicted.shape}, expected {(height, width)}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"box {tuple(box)} is not inside the {width}x{height} image")
    inside = np.zeros((height, width), dtype=bool)
    inside[y0:y1, x0:x1] = True

    kept: list[str] = []
    merged = np.zeros((height, width), dtype=bool)
    for path in paths:
        region = _shapes.paths_to_mask([path], (height, width))
        if (region & inside).any():
            merged |= region
        else:
            kept.append(path)
    merged = (merged & ~inside) | (predicted & inside)
    return make_state(kept + mask_to_regions(merged, max_vertices), "box", density=max_vertices)


def offset_step(shape: tuple[int, int]) -> int:
    """Pixels one click of *Grow* or *Shrink* moves the outline: about 0.4 % of the
    image's longer side (2 on a 500-pixel frame), at least 1.

    A fixed number of pixels would be too fine to see on a large frame and too
    coarse on a small one.
    """
    return max(1, round(max(int(shape[0]), int(shape[1])) / 256))


def offset_outline(state: dict, steps: int, shape: tuple[int, int], max_vertices: int) -> dict:
    """The outline grown (``steps > 0``) or shrunk (``< 0``) by whole steps.

    A run of *Grow* and *Shrink* clicks works from the geometry the run started from
    (``offset_from``: its paths and the pixels the run has moved so far), not from
    the previous click's re-vectorized outline: Grow then Shrink gives back the very
    paths it started from, and many clicks do not wear the outline smooth. Any other
    edit ends the run, since its state has no ``offset_from``.

    Parameters
    ----------
    state : dict
        The present outline state.
    steps : int
        Steps of :func:`offset_step` pixels to add to the run's offset.
    shape : (int, int)
        ``(height, width)`` of the image.
    max_vertices : int
        The vertex budget for the re-vectorized regions.

    Returns
    -------
    dict
        A new state (``action`` ``"grow"`` or ``"shrink"``, as ``steps`` says)
        with ``offset_from = {"paths": [...], "pixels": int, "density": ...}`` (the
        density the run's first paths were drawn at). Regions can merge,
        split or vanish; growing again brings a vanished one back.
    """
    max_vertices = _check_vertices(max_vertices)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps == 0:
        raise ValueError("steps must be a non-zero int")
    start = state.get("offset_from")
    if not (isinstance(start, dict) and isinstance(start.get("paths"), list)
            and isinstance(start.get("pixels"), int)):
        start = {"paths": list(state["paths"]), "pixels": 0, "density": state.get("density")}
    # Within what offset_mask takes: past the image's longest side nothing changes.
    limit = vectorizer.MAX_OFFSET_PX
    pixels = max(-limit, min(limit, start["pixels"] + steps * offset_step(shape)))
    if pixels == 0:
        paths, density = start["paths"], start.get("density")
    else:
        mask = vectorizer.offset_mask(_shapes.paths_to_mask(start["paths"], tuple(shape)), pixels)
        paths, density = mask_to_regions(mask, max_vertices), max_vertices
    new = make_state(paths, "grow" if steps > 0 else "shrink", density=density)
    new["offset_from"] = {**start, "paths": list(start["paths"]), "pixels": pixels}
    return new
