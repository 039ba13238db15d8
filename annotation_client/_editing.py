"""Pure outline edits behind the annotate page's callbacks.

An outline *state* is the JSON-able dict kept in the undo history::

    {"paths": [str, ...],        # one region per path, image pixels (x, y)
     "action": str,              # what made this state, shown in the history
     "base": None | "ai" | {"paths": [...]},
     "density": int | None,      # vertex budget the paths were vectorized with
     "offset_from": {...}}       # only after Grow / Shrink: see offset_outline

Grow and Shrink clicks already applied are a fact about the whole editing of an
image, not about one state, so the page keeps them beside the states in the undo
history (``offset_clicks``, see :func:`unapplied_clicks`): undo must not make a
click count again.

``base`` remembers the exact geometry a vertex-density change starts from, so
moving the slider back and forth re-vectorizes the same mask instead of
degrading an already simplified polygon step by step: ``"ai"`` means the AI's
own mask, a dict means the regions as they were before the first density change.
``density`` lets the page tell a real slider move from the slider merely being
drawn again with its old value (which must not touch the outline).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

import vectorizer

from . import _measurements, _shapes

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


#: A region of the outline is the box's lesion when the two share at least this share
#: of the smaller of them: a region the new outline only grazes (two outlines drawn
#: edge to edge share a pixel or two of the raster) is another one.
SAME_LESION_OVERLAP = 0.1
#: A region holding less than this share of the box's new outline, and reaching out of
#: the box by more than the box's own area, is a larger structure the box only touched.
LARGER_STRUCTURE_COVER = 0.5
#: A piece of a region cut off at the box's edge that is nowhere wider than this (px)...
SLIVER_WIDTH_PX = 4
#: ...or smaller than this share of the box is a sliver, and goes with the box's inside.
SLIVER_BOX_SHARE = 0.02
#: The key of a box's state that says what the box did outside itself (see merge_box).
BOX_OUTSIDE = "box_outside"


def merge_box(
    paths: Sequence[str],
    box: Sequence[int],
    predicted: np.ndarray,
    shape: tuple[int, int],
    max_vertices: int,
) -> dict:
    """Redo the lesion in a box: the outline the model found there replaces the old one.

    A box drawn around a lesion says "the lesion is in here: redo it". So, region by
    region of the present outline (edits made while the box was segmented included):

    - A region that does not reach into the box keeps its exact path: edits made
      elsewhere survive a re-segmentation.
    - A region that overlaps the box's new outline (the two share at least
      :data:`SAME_LESION_OVERLAP` of the smaller of them; less is an outline that only
      grazes it) is that lesion, over- or mis-segmented: it is replaced by the new
      outline entirely, its parts outside the box included. Cut at the box's edge
      instead, as before, an over-segmented outline left an L-shaped strip outside the
      box, which the calipers then measured as the largest region.

      Unless it is a larger structure the box only touched: it holds less than
      :data:`LARGER_STRUCTURE_COVER` of the new outline *and* its part outside the
      box is larger than the box itself. Then it is cut at the box's edge like the
      regions below. Both conditions are needed. An over-segmented lesion holds nearly
      all of the new outline however far it spills: on BUSI, 3 of 58 over-segmented
      AI outlines reached out of a box 15 % wider than the lesion by 2 to 10 times the
      box's area, holding 83-100 % of its outline. Pieces of a fragmented outline
      hold little of it each, but lie mostly inside the box.
    - A region that reaches into the box but not into its new outline is cut at the
      box's edge: the box says nothing else is in there. What it leaves outside is
      kept, but not slivers: a piece cut off at the edge (touching the box) that is
      nowhere wider than :data:`SLIVER_WIDTH_PX` or smaller than
      :data:`SLIVER_BOX_SHARE` of the box goes too. A piece the box did not cut (a
      region's far part) stays, however small.

    When the model finds nothing in the box, nothing says where the lesion is instead,
    and the radiologist has just said there is one: the outline is left as it was (the
    new state has the same paths, and says the model found nothing), rather than
    erased from the box as before.

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
        The new state (``action="box"``). When the box changed the outline outside
        itself, or found nothing, ``state[BOX_OUTSIDE]`` says so: ``{"replaced": n}``
        for the regions replaced that reached out of the box, ``{"removed": n}`` for
        the slivers removed outside it, ``{"found": False}`` for
        an empty prediction; :func:`box_note` words it for the status line.
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
    found = predicted & inside
    if not found.any():
        state = make_state(paths, "box", density=max_vertices)
        state[BOX_OUTSIDE] = {"found": False}
        return state

    kept: list[str] = []
    cut = np.zeros((height, width), dtype=bool)  # outside parts of the regions cut
    replaced = 0
    for path in paths:
        region = _shapes.paths_to_mask([path], (height, width))
        if not (region & inside).any():
            kept.append(path)
        elif _is_the_lesion(region, found, inside):
            replaced += bool((region & ~inside).any())
        else:
            cut |= region & ~inside
    cut, removed = _without_slivers(cut, inside)
    state = make_state(
        kept + mask_to_regions(cut | found, max_vertices), "box", density=max_vertices
    )
    outside = {k: n for k, n in (("replaced", replaced), ("removed", removed)) if n}
    if outside:
        state[BOX_OUTSIDE] = outside
    return state


def _is_the_lesion(region: np.ndarray, found: np.ndarray, inside: np.ndarray) -> bool:
    """Whether a region reaching into the box is the lesion the box found (``found``,
    not empty), to be replaced whole: see :func:`merge_box`."""
    shared = int((region & found).sum())
    if shared < SAME_LESION_OVERLAP * min(int(region.sum()), int(found.sum())):
        return False  # none shared, or a graze
    larger = (shared < LARGER_STRUCTURE_COVER * found.sum()
              and (region & ~inside).sum() > inside.sum())
    return not larger


def _without_slivers(cut: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, int]:
    """``cut`` (parts of regions left outside the box) without the slivers along the
    box's edge, and how many pieces went: see :func:`merge_box`."""
    if not cut.any():
        return cut, 0
    pieces, _ = ndimage.label(cut, structure=np.ones((3, 3), bool))
    # Pieces the box cut off reach the pixels along its edge; others were not cut.
    edge = ndimage.binary_dilation(inside) & ~inside
    at_edge = np.unique(pieces[edge & cut])
    if not at_edge.size:
        return cut, 0
    return _drop_slivers(cut, pieces, at_edge, SLIVER_BOX_SHARE * inside.sum())


def _drop_slivers(
    mask: np.ndarray, pieces: np.ndarray, candidates: np.ndarray, min_size: float
) -> tuple[np.ndarray, int]:
    """``mask`` without those of its ``candidates`` pieces that are slivers, and how many.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` bool mask.
    pieces : numpy.ndarray
        ``(H, W)`` int labels of ``mask``'s 8-connected pieces (``ndimage.label``).
    candidates : numpy.ndarray
        Labels of the pieces that may be slivers (pieces an edit cut off).
    min_size : float
        Pixels a piece needs not to be a sliver, however wide.

    A sliver is nowhere wider than :data:`SLIVER_WIDTH_PX`, or smaller than ``min_size``.
    """
    # Twice a piece's deepest pixel is its greatest width, rounded up to even (a strip
    # 4 px wide is 2 deep, 5 px is 3). Padded: the image's border is no edge of a piece.
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    widest = ndimage.maximum(depth, pieces, candidates)
    sizes = ndimage.sum(mask, pieces, candidates)
    slivers = [
        label for label, deepest, size in zip(candidates, np.atleast_1d(widest),
                                              np.atleast_1d(sizes), strict=True)
        if 2 * deepest <= SLIVER_WIDTH_PX or size < min_size
    ]
    if not slivers:
        return mask, 0
    return mask & ~np.isin(pieces, slivers), len(slivers)


#: The status line's words for what a box did outside itself (see box_note).
_BOX_WORDS = {
    "replaced": ("replaced the outline it overlapped", "replaced the {n} outlines it overlapped"),
    "removed": ("removed a sliver of outline left outside its edge",
                "removed {n} slivers of outline left outside its edge"),
}
BOX_FOUND_NOTHING = "the model found nothing in it; the outline is as it was"


def box_note(state: dict) -> str | None:
    """The status line's words for what a box's state did outside the box, or None.

    ``"replaced the outline it overlapped; removed 2 slivers of outline left outside
    its edge"``, or :data:`BOX_FOUND_NOTHING`; None for a box that changed only its
    inside (and for any other state).
    """
    outside = state.get(BOX_OUTSIDE) if isinstance(state, dict) else None
    if not isinstance(outside, dict):
        return None
    if outside.get("found") is False:
        return BOX_FOUND_NOTHING
    words = []
    for key, (one, many) in _BOX_WORDS.items():
        n = outside.get(key)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            words.append(one if n == 1 else many.format(n=n))
    return "; ".join(words) or None


#: A piece of a region left by a cut that holds less than this share of the region is a
#: sliver, and goes with the cut (as does one nowhere wider than SLIVER_WIDTH_PX).
CUT_SLIVER_SHARE = 0.02
#: The key of a cut's state that says what it took away (see cut_outline).
CUT_REMOVED = "cut_removed"


def cut_outline(
    paths: Sequence[str], cuts: Sequence[str], shape: tuple[int, int], max_vertices: int
) -> dict | None:
    """The outline with the areas drawn by *Cut away* taken off it.

    An over-segmented outline (the posterior shadow taken in, say) is mended by drawing
    around what is not lesion. Region by region of the present outline:

    - A region the cut does not reach keeps its exact path.
    - A region it reaches loses the cut's pixels, on the mask at image resolution,
      and what is left is vectorized again at ``max_vertices``: a region cut in two
      is two regions, one cut inside gets a hole. A piece left that the cut touches
      and that is nowhere wider than :data:`SLIVER_WIDTH_PX`, or holds less than
      :data:`CUT_SLIVER_SHARE` of the region, is a sliver of the cut's edge and goes
      too; a part the cut did not touch stays, however small.

    Parameters
    ----------
    paths : sequence of str
        The present regions, image pixels (x right, y down).
    cuts : sequence of str
        The closed paths drawn with *Cut away*, same coordinates; each subtracted
        (even-odd fill within a path, as a region's).
    shape : (int, int)
        ``(height, width)`` of the image.
    max_vertices : int
        Vertex budget for the regions vectorized again.

    Returns
    -------
    dict or None
        The new state (``action="cut"``) with ``state[CUT_REMOVED] = {"px": n,
        "slivers": k}``: the outline's pixels the cut took away (slivers included)
        and how many slivers went; None when the cut reaches no region (nothing to
        cut, the outline stays as it is).
    """
    max_vertices = _check_vertices(max_vertices)
    shape = (int(shape[0]), int(shape[1]))
    cutter = _shapes.paths_to_mask(cuts, shape)
    kept: list[str] = []
    touched = np.zeros(shape, dtype=bool)  # the regions the cut reaches, whole
    left = np.zeros(shape, dtype=bool)  # what the cut leaves of them
    slivers = 0
    for path in paths:
        region = _shapes.paths_to_mask([path], shape)
        if not (region & cutter).any():
            kept.append(path)
            continue
        touched |= region
        rest, dropped = _cut_region(region, cutter)
        left |= rest
        slivers += dropped
    if not touched.any():
        return None
    state = make_state(kept + mask_to_regions(left, max_vertices), "cut", density=max_vertices)
    state[CUT_REMOVED] = {"px": int((touched & ~left).sum()), "slivers": slivers}
    return state


def _cut_region(region: np.ndarray, cutter: np.ndarray) -> tuple[np.ndarray, int]:
    """``region`` without ``cutter`` and without the slivers along its edge (see
    :func:`cut_outline`), and how many slivers went; ``(H, W)`` bool masks."""
    rest = region & ~cutter
    if not rest.any():
        return rest, 0
    pieces, _ = ndimage.label(rest, structure=np.ones((3, 3), bool))
    # The pieces the cut touched reach the pixels just outside it.
    edge = ndimage.binary_dilation(cutter, structure=np.ones((3, 3), bool)) & ~cutter
    at_edge = np.unique(pieces[edge & rest])
    at_edge = at_edge[at_edge > 0]
    if not at_edge.size:
        return rest, 0
    return _drop_slivers(rest, pieces, at_edge, CUT_SLIVER_SHARE * region.sum())


def cut_note(state: dict, pixel_spacing=None) -> str | None:
    """The status line's words for what a cut took away, or None for another state.

    ``"removed 1,234 px², 80.5 mm²"`` (mm² with a pixel spacing, as the measurements
    panel gives areas), then ``"; 2 slivers with it"`` when slivers went too.
    """
    removed = state.get(CUT_REMOVED) if isinstance(state, dict) else None
    if not isinstance(removed, dict):
        return None
    px = removed.get("px")
    if isinstance(px, bool) or not isinstance(px, int) or px < 0:
        return None
    text = f"removed {px:,} px²"
    try:
        spacing = _measurements._check_spacing(pixel_spacing)
    except (TypeError, ValueError):
        spacing = None
    if spacing is not None:
        text += f", {px * spacing[0] * spacing[1]:,.1f} mm²"
    slivers = removed.get("slivers")
    if isinstance(slivers, int) and not isinstance(slivers, bool) and slivers > 0:
        text += "; a sliver with it" if slivers == 1 else f"; {slivers} slivers with it"
    return text


#: The status line's words for a cut that reached no outline (the outline is as it was).
CUT_MISSED_TEXT = "the cut reached no outline; nothing was cut"


#: One click of *Grow* or *Shrink* on an image with a known pixel spacing, in mm: the
#: outline's diameter changes by about 1 mm a click, a step a radiologist can count in.
OFFSET_STEP_MM = 0.5


def offset_step(shape: tuple[int, int], pixel_spacing=None) -> int:
    """Pixels one click of *Grow* or *Shrink* moves the outline.

    With a pixel spacing, :data:`OFFSET_STEP_MM` in whole pixels; without one, about
    0.4 % of the image's longer side (2 on a 500-pixel frame), since a fixed number of
    pixels would be too fine to see on a large frame and too coarse on a small one. At
    least 1 either way.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the image.
    pixel_spacing : (row_mm, col_mm), optional
        Physical pixel size. The offset is the same number of pixels in every direction
        (``vectorizer.offset_mask``), so pixels that are not square in mm take the mean
        of the two.

    Raises
    ------
    ValueError
        A spacing outside what the measurements take (see ``_measurements.summarize``).
    """
    spacing = _measurements._check_spacing(pixel_spacing)
    if spacing is not None:
        return max(1, round(OFFSET_STEP_MM / (sum(spacing) / 2)))
    return max(1, round(max(int(shape[0]), int(shape[1])) / 256))


def offset_text(pixels: int, pixel_spacing=None, *, signed: bool = True) -> str:
    """An offset for the status line: ``"+4 px"``, ``"-6 px, -0.5 mm"``, ``"0 px"``.

    Parameters
    ----------
    pixels : int
        The offset, positive when grown.
    pixel_spacing : (row_mm, col_mm), optional
        Physical pixel size. The outline moves by ``pixels`` in every direction, so
        with pixels not square in mm it moves by other lengths sideways (columns) and
        in depth (rows): both are given, ``"+4 px, +0.4 mm sideways, +1.2 mm in
        depth"``, not their mean, which :func:`offset_step` sizes the step by but
        which the outline moves by in no direction.
    signed : bool, optional
        False for the size alone (``"6 px, 0.5 mm"``), after words that give the sign.
    """
    if pixels == 0:
        return "0 px"  # whatever the unit
    spacing = _measurements._check_spacing(pixel_spacing)
    size = pixels if signed else abs(pixels)
    text = f"{size:+d} px" if signed else f"{size} px"
    if spacing is None:
        return text
    mm = "{:+.1f} mm" if signed else "{:.1f} mm"
    row_mm, col_mm = spacing
    if math.isclose(row_mm, col_mm, rel_tol=1e-9):
        return f"{text}, {mm.format(size * row_mm)}"
    return (f"{text}, {mm.format(size * col_mm)} sideways, "
            f"{mm.format(size * row_mm)} in depth")


#: How the status line names the outline a run of *Grow* and *Shrink* started from.
RUN_START = "the first Grow/Shrink of this run"


def offset_change_text(state: dict, previous: dict | None = None, pixel_spacing=None) -> str:
    """The status line's words for the last step of a run of *Grow* and *Shrink*.

    The step's own size, then the run's net offset when the run has had more than one
    step: ``"shrink by 5 px, 0.5 mm (net +5 px, +0.5 mm since the first Grow/Shrink of
    this run)"``. A step back to where the run began says so.

    Parameters
    ----------
    state : dict
        A state from :func:`offset_outline` (it has ``offset_from``).
    previous : dict, optional
        The state before it (the last undo step): of the same run when its
        ``offset_from`` starts from the same paths.
    pixel_spacing : (row_mm, col_mm), optional
        Physical pixel size, to give the sizes in mm too.
    """
    net = state["offset_from"]["pixels"]
    start = previous.get("offset_from") if isinstance(previous, dict) else None
    same_run = (isinstance(start, dict) and isinstance(start.get("pixels"), int)
                and start.get("paths") == state["offset_from"].get("paths"))
    step = net - start["pixels"] if same_run else net
    text = f"{state['action']} by {offset_text(step, pixel_spacing, signed=False)}"
    if net == 0:
        return f"{text} (back to the outline before {RUN_START})"
    if step != net:
        text += f" (net {offset_text(net, pixel_spacing)} since {RUN_START})"
    return text


#: The most a button's click count can be: above, it is not a browser's (which counts
#: one a click), and the history that records it is signed as JavaScript reads numbers.
MAX_CLICK_COUNT = 2**31 - 1
#: The longest page token kept: the page's own are 16 hex digits.
_MAX_PAGE_TOKEN = 64


def click_count(value) -> int | None:
    """A button's ``n_clicks`` as an int; None when it is none (no click yet, or a
    value no browser sends)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_CLICK_COUNT else None


def unapplied_clicks(applied, page, grow, shrink, lost=None) -> tuple[int, dict]:
    """The *Grow* and *Shrink* clicks not yet applied to the outline, as net steps.

    The browser sends a click's request with the history as it holds it and keeps
    only the newest answer: two clicks before the first is answered are two requests
    built from one history, and the first one's answer is dropped. Counting clicks
    from the history's record of those applied, rather than taking each request as
    one click, makes both count.

    The buttons' counts start again at none whenever the page is drawn again (back
    from another page), so counts are compared with the record only when it was made
    on this drawing of the page (``page``, a token the page's layout makes anew each
    time); on another, every click the buttons have counted is new.

    A click whose request got no answer (the client unreachable, the page said so)
    never moved the outline on screen: the counts such a request carried (``lost``,
    written by the page's script) are not new either, or the next click, once the
    client is back, would apply it too and grow by two steps.

    Parameters
    ----------
    applied : dict or None
        The record from the last call, ``{"page": str or None, "grow": int,
        "shrink": int}`` (the history's ``offset_clicks``, signed with it).
    page : str or None
        This drawing of the page's token; None (or anything but a short str) never
        matches, so each count is new.
    grow, shrink : int or None
        The buttons' ``n_clicks``. A count that is no count (None, negative, a bool,
        over :data:`MAX_CLICK_COUNT`) adds no click.
    lost : dict or None
        The counts of the latest request of this drawing of the page that got no
        answer, ``{"page": str, "grow": int, "shrink": int}``; counted as applied,
        like ``applied``, when its ``page`` is ``page``.

    Returns
    -------
    steps : int
        New Grow clicks minus new Shrink clicks.
    record : dict
        The record to keep: ``applied`` itself when no click is new (so a page drawn
        again writes nothing), else this page's token with the counts now applied.
    """
    new, record = new_clicks(applied, page, {"grow": grow, "shrink": shrink}, lost)
    return new["grow"] - new["shrink"], record


def new_clicks(applied, page, counts: dict, lost=None) -> tuple[dict, dict]:
    """The clicks of each button in ``counts`` not yet applied (see
    :func:`unapplied_clicks`, which this is for any buttons).

    Parameters
    ----------
    applied : dict or None
        The record from the last call, ``{"page": str or None, key: int, ...}``.
    page : str or None
        This drawing of the page's token.
    counts : dict
        ``{key: n_clicks}`` of each button, keyed as in the records.
    lost : dict or None
        The counts of the latest request of this drawing that got no answer.

    Returns
    -------
    new : dict
        ``{key: int}``, the new clicks of each button (0 or more).
    record : dict
        ``applied`` itself when no click is new, else the record to keep.
    """
    if not (isinstance(page, str) and 0 < len(page) <= _MAX_PAGE_TOKEN):
        page = None
    counts = {k: click_count(v) or 0 for k, v in counts.items()}
    base = {k: max(_applied_count(applied, page, k), _applied_count(lost, page, k))
            for k in counts}
    new = {k: max(0, counts[k] - base[k]) for k in counts}
    if not any(new.values()):
        return new, applied
    # Never lower than the record: a count behind it is a request older than the
    # history it came with, whose clicks that history already holds.
    return new, {"page": page, **{k: max(counts[k], base[k]) for k in counts}}


def _applied_count(record, page, key: str) -> int:
    """The clicks of button ``key`` a click record of this page's drawing ``page`` holds
    (0 for another drawing's, or none)."""
    if page is None or not isinstance(record, dict) or record.get("page") != page:
        return 0
    return click_count(record.get(key)) or 0


def offset_outline(
    state: dict, steps: int, shape: tuple[int, int], max_vertices: int, pixel_spacing=None
) -> dict:
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
    pixel_spacing : (row_mm, col_mm), optional
        Physical pixel size: a step is then a round length in mm (see
        :func:`offset_step`).

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
    step = offset_step(shape, pixel_spacing)
    pixels = max(-limit, min(limit, start["pixels"] + steps * step))
    if pixels == 0:
        paths, density = start["paths"], start.get("density")
    else:
        mask = vectorizer.offset_mask(_shapes.paths_to_mask(start["paths"], tuple(shape)), pixels)
        paths, density = mask_to_regions(mask, max_vertices), max_vertices
    new = make_state(paths, "grow" if steps > 0 else "shrink", density=density)
    new["offset_from"] = {**start, "paths": list(start["paths"]), "pixels": pixels}
    return new
