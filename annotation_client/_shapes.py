"""Outline geometry as plotly path shapes: parsing, plotly edits, SVG and masks.

Coordinates are SVG/plotly ``(x, y)`` in image pixels: the image's top-left corner
is (0, 0) and pixel ``(r, c)`` covers x in [c, c+1], y in [r, r+1]. One region is
one path string of absolute commands (``M x,y L x,y ... Z``); a hole is one more
subpath of the same string, filled with the even-odd rule.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely
import svgelements

import vectorizer
from vectorizer._rasterize import _whole

#: Path data an outline may hold, in characters: what ``vectorizer.svg_to_mask``
#: rasterises (an outline of 128 vertices a ring takes about 2,000).
MAX_PATH_CHARS = vectorizer.MAX_PARSED_BYTES
#: Coordinates beyond this many pixels are refused, as the vectorizer refuses them.
MAX_COORDINATE = vectorizer.MAX_COORDINATE

#: The ``name`` plotly gives a shape drawn with the *Cut away* tool (its ``newshape``
#: carries it): an area to take off the outline, not a region of it.
CUT_NAME = "cut"

_TOKEN = re.compile(r"[MLHVZmlhvz]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SHAPE_PATH_KEY = re.compile(r"shapes\[(\d+)\]\.path")


def parse_path(path: str) -> list[list[tuple[float, float]]]:
    """Split an SVG path of straight segments into closed polygons.

    Parameters
    ----------
    path : str
        Path data with the commands ``M L H V Z`` (absolute or relative), as the
        vectorizer and plotly write them.

    Returns
    -------
    list of list of (x, y)
        One vertex list per subpath, in drawing order, without repeating the first
        vertex at the end (every subpath is treated as closed).

    Raises
    ------
    TypeError
        If ``path`` is not a str.
    ValueError
        If it holds curve commands or is malformed.

    Examples
    --------
    >>> parse_path("M0,0 L4,0 L4,3 Z M1,1L2,1L2,2Z")
    [[(0.0, 0.0), (4.0, 0.0), (4.0, 3.0)], [(1.0, 1.0), (2.0, 1.0), (2.0, 2.0)]]
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    leftover = _TOKEN.sub(" ", path).replace(",", " ").strip()
    if leftover:
        raise ValueError(f"path has unsupported content {leftover[:20]!r}: only M L H V Z")
    tokens = _TOKEN.findall(path)
    polygons: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    x = y = 0.0
    start = (0.0, 0.0)
    command = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.isalpha():
            if command is None and token not in "Mm":
                raise ValueError("path must start with a move command (M)")
            command = token
            i += 1
            if command in "Zz":
                if current:
                    polygons.append(current)
                current = []
                x, y = start
                continue
        elif command is None:
            raise ValueError("path must start with a move command (M)")

        def number(k: int, command: str = command) -> float:
            if k >= len(tokens) or tokens[k].isalpha():
                raise ValueError(f"path command {command!r} is missing a coordinate")
            value = float(tokens[k])
            # The vectorizer refuses such coordinates when the outline is saved: an
            # outline that cannot be saved is refused here, where it comes in.
            if not abs(value) <= MAX_COORDINATE:
                raise ValueError(f"path coordinate {tokens[k][:20]!r} is not a number within "
                                 f"+/-{MAX_COORDINATE:g} pixels")
            return value

        if command in "MmLl":
            dx, dy = number(i), number(i + 1)
            i += 2
            relative = command.islower()
            x, y = (x + dx, y + dy) if relative else (dx, dy)
            if command in "Mm":
                if current:
                    polygons.append(current)
                current = [(x, y)]
                start = (x, y)
                # Further coordinate pairs after a moveto are implicit linetos.
                command = "l" if relative else "L"
            else:
                _line_to(current, start, (x, y))
        elif command in "HhVv":
            value = number(i)
            i += 1
            if command == "H":
                x = value
            elif command == "h":
                x += value
            elif command == "V":
                y = value
            else:
                y += value
            _line_to(current, start, (x, y))
        else:  # pragma: no cover - the tokenizer only yields the commands above
            raise ValueError(f"unsupported path command {command!r}")
    if current:
        polygons.append(current)
    if any(not (abs(x) <= MAX_COORDINATE and abs(y) <= MAX_COORDINATE)
           for polygon in polygons for x, y in polygon):
        raise ValueError(f"path reaches beyond +/-{MAX_COORDINATE:g} pixels")
    cleaned = []
    for polygon in polygons:
        if len(polygon) > 1 and polygon[0] == polygon[-1]:
            polygon = polygon[:-1]
        cleaned.append(polygon)
    return cleaned


def _line_to(current: list[tuple[float, float]], start: tuple[float, float],
             point: tuple[float, float]) -> None:
    """Append ``point`` to the subpath ``current``. A line drawn right after a closepath
    (``Z L x,y``, no moveto) starts a new subpath at the closed one's first vertex, as
    SVG says and as the vectorizer (which rasterises masks and saves) draws it: without
    that vertex the outline measured and compared here was another than the mask's."""
    if not current:
        current.append(start)
    current.append(point)


def format_path(polygons: Sequence[Sequence[tuple[float, float]]], *,
                exact: bool = False) -> str:
    """Write polygons as absolute path data, one closed subpath each.

    The inverse of :func:`parse_path` for polygons of at least one vertex.

    Parameters
    ----------
    polygons : sequence of sequence of (x, y)
        Vertices in image pixels.
    exact : bool, optional
        Write each coordinate in the fewest digits that read back as the same
        float, rather than rounded to 0.001 px: a saved file's outline is read
        back with the numbers its saved mask was drawn from (:func:`svg_to_paths`).

    Examples
    --------
    >>> format_path([[(0, 0), (4.00049, 0), (4, 3)]])
    'M0,0L4,0L4,3Z'
    >>> format_path([[(0, 0), (4.00049, 0), (4, 3)]], exact=True)
    'M0,0L4.00049,0L4,3Z'
    """
    parts = []
    for polygon in polygons:
        if len(polygon) == 0:
            continue
        head, *rest = polygon
        text = "M" + _xy(head, exact)
        for point in rest:
            text += "L" + _xy(point, exact)
        parts.append(text + "Z")
    return "".join(parts)


def close_subpaths(path: str) -> str:
    """``path`` with a ``Z`` at the end of every subpath that has none.

    Plotly's *Draw region* tool reports its closed path without the closing
    command, while the model's outlines have it: a region is an area either way
    (a fill closes it), but the saved SVG says so explicitly for both. Nothing
    else of the path is rewritten, but for a relative moveto (``m``) after a subpath
    left open: it moves from that subpath's last vertex, and after a ``Z`` it would
    move from its first, so such a path is written again whole, absolute
    (:func:`format_path` with ``exact=True``: the very coordinates it draws).

    Examples
    --------
    >>> close_subpaths("M0,0L4,0L4,3M1,1L2,1L2,2Z")
    'M0,0L4,0L4,3ZM1,1L2,1L2,2Z'
    >>> close_subpaths("M0,0L4,0L4,3m1,1l2,0l0,2")
    'M0,0L4,0L4,3ZM5,4L7,4L7,6Z'
    """
    pieces = [p.rstrip() for p in re.split(r"(?=[Mm])", path) if p.strip()]
    if any(after[0] == "m" and before[-1] not in "Zz"
           for before, after in zip(pieces, pieces[1:], strict=False)):
        try:
            return format_path(parse_path(path), exact=True)
        except ValueError:
            pass  # not drawable either way: the vectorizer says why when it is drawn
    return "".join(p if p[-1] in "Zz" else p + "Z" for p in pieces)


def _xy(point: tuple[float, float], exact: bool = False) -> str:
    x, y = (float(v) for v in point)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError("polygon vertices must be finite")
    number = _exact_num if exact else _num
    return f"{number(x)},{number(y)}"


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _exact_num(value: float) -> str:
    # Positional (no exponent, which plotly's path reader is not asked to take), in
    # the fewest digits that parse back to this very float.
    text = np.format_float_positional(value, unique=True, trim="-")
    return "0" if text == "-0" else text


def is_region(path: str) -> bool:
    """Whether a path encloses any area: some subpath of 3 or more distinct vertices
    that are not all on one line (a stroke drawn out and back encloses nothing)."""
    try:
        polygons = parse_path(path)
    except ValueError:
        return False
    return any(_encloses_area(polygon) for polygon in polygons)


def _encloses_area(polygon: Sequence[tuple[float, float]]) -> bool:
    if len(set(polygon)) < 3:
        return False
    if _twice_area(polygon) > 1e-9:
        return True
    # A ring that crosses itself can enclose area whose signed parts cancel (a symmetric
    # bow-tie): Chromium and svg_to_mask fill both loops, so it is a region. Only then is
    # the ring's fill computed: shapely's "structure" repair fills as the even-odd rule
    # does, so a ring traced round and back again (which fills nothing) is still none.
    try:
        return shapely.make_valid(shapely.Polygon(polygon), method="structure").area > 1e-9
    except (ValueError, shapely.errors.GEOSException):
        return False


def _twice_area(polygon: Sequence[tuple[float, float]]) -> float:
    """Twice the area a closed polygon's vertices enclose (shoelace), unsigned."""
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1)
                   in zip(polygon, [*polygon[1:], polygon[0]], strict=True)))


def vertex_count(paths: Sequence[str]) -> int:
    """Total number of vertices over all regions' subpaths."""
    return sum(len(polygon) for path in paths for polygon in parse_path(path))


def same_geometry(a: Sequence[str], b: Sequence[str], tolerance: float = 1e-6) -> bool:
    """Whether two region lists describe the same polygons, however they are written.

    Plotly re-writes a path it has edited in its own number format, so string
    equality would see an edit where there is none.

    Parameters
    ----------
    a, b : sequence of str
        Region paths, compared region by region and vertex by vertex.
    tolerance : float, optional
        Largest coordinate difference, in pixels, still counted as equal.
    """
    a, b = _paths(a), _paths(b)
    if len(a) != len(b):
        return False
    for path_a, path_b in zip(a, b, strict=True):
        if path_a == path_b:
            continue
        try:
            rings_a, rings_b = parse_path(path_a), parse_path(path_b)
        except ValueError:
            return False
        if [len(r) for r in rings_a] != [len(r) for r in rings_b]:
            return False
        for ring_a, ring_b in zip(rings_a, rings_b, strict=True):
            difference = np.abs(np.asarray(ring_a, float) - np.asarray(ring_b, float))
            if difference.size and difference.max() > tolerance:
                return False
    return True


def paths_to_svg(paths: Sequence[str], width: int, height: int) -> str:
    """An SVG document holding the regions, sized like the image.

    Parameters
    ----------
    paths : sequence of str
        One path string per region, in image pixel coordinates (x, y).
    width, height : int
        The image size in pixels; they are also the ``viewBox``, so one SVG user
        unit is one image pixel.

    Returns
    -------
    str
        ``<svg>`` with one ``<path fill-rule="evenodd">`` per region, each subpath
        closed by ``Z`` (see :func:`close_subpaths`), its numbers as the editor
        gave them: a save's mask is this document rasterised, and
        :func:`svg_to_paths` reads these very numbers back, so the outline a save
        reloads covers exactly its mask's pixels.
    """
    width, height = _size(width, "width"), _size(height, "height")
    paths = _paths(paths)
    body = "".join(
        f'  <path d={quoteattr(close_subpaths(path))} fill="#ffffff" fill-rule="evenodd"/>\n'
        for path in paths
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">\n'
        f"{body}</svg>\n"
    )


def svg_to_paths(svg: str, width: int, height: int) -> list[str]:
    """The regions of a saved SVG (as :func:`paths_to_svg` writes it) as editor paths.

    Parameters
    ----------
    svg : str or bytes
        The SVG document; its size must be the image's. Bytes when the file is not
        UTF-8 (its XML declaration or byte-order mark says its encoding).
    width, height : int
        The image size in pixels.

    Returns
    -------
    list of str
        One path string per ``<path>``, in document order, written as
        :func:`format_path` writes them with ``exact=True``: the very numbers the
        file draws (and its saved mask was drawn from), not rounded again, so the
        outline covers the pixels :func:`vectorizer.svg_to_mask` fills for it,
        whatever precision an earlier release saved. (x, y) image pixels.

    Raises
    ------
    ValueError
        If ``svg`` is not an SVG document, is sized for another image, holds
        a path that is not straight segments, or is refused by
        :func:`vectorizer.check_svg_document` (``<use>`` elements that expand
        without bound or to more than 10,000 shapes); is more than
        :data:`MAX_PATH_CHARS` bytes; or draws otherwise than its paths filled
        even-odd (:func:`vectorizer.svg_to_mask`, the export's reader, is the
        reference, so the page never edits an outline the export reads otherwise).
    """
    width, height = _size(width, "width"), _size(height, "height")
    if not isinstance(svg, str | bytes):
        raise TypeError("svg must be a str or bytes")
    size_in_bytes = len(svg.encode("utf-8") if isinstance(svg, str) else svg)
    if size_in_bytes > MAX_PATH_CHARS:
        # As the export's reader refuses it, and before svgelements spends seconds on it.
        raise ValueError(f"the SVG is {size_in_bytes} bytes long; an outline's SVG is at most "
                         f"{MAX_PATH_CHARS}")
    try:
        # svgelements expands every <use> while it parses, before anything here can
        # count: a small file of nested <use> would hold the page for minutes.
        vectorizer.check_svg_document(svg)
        stream = io.StringIO(svg) if isinstance(svg, str) else io.BytesIO(svg)
        document = svgelements.SVG.parse(stream)
        root = _root_name(document)
        size = (float(document.width), float(document.height)) if root == "svg" else None
    except Exception as exc:  # ParseError, and whatever else svgelements raises
        raise ValueError(f"the SVG cannot be parsed ({exc})") from None
    if size is None:
        # An HTML error page saved in its place, or an SVG wrapped in HTML: said as such,
        # not as "'SVGElement' object has no attribute 'width'" (audit 801 F9).
        raise ValueError(f"the file is not an SVG document: its outermost element is "
                         f"<{root[:40]}>, not <svg>")
    size = _whole_size(document, size)
    if size != (width, height):
        raise ValueError(f"the SVG is sized {size[0]}x{size[1]}, the image {width}x{height}")
    try:
        # What the export, the saved mask and the agreement figures read of this file.
        drawn = np.asarray(vectorizer.svg_to_mask(svg, shape=(height, width)), dtype=bool)
    except ValueError as exc:
        raise ValueError(f"the SVG cannot be drawn ({exc})") from None
    paths = []
    for element in document.elements():
        if isinstance(element, svgelements.Shape) and not isinstance(element, svgelements.Path):
            # Saved outlines are paths only; dropping another shape would lose geometry.
            raise ValueError(f"the SVG holds a <{type(element).__name__.lower()}>, not a path")
        if not isinstance(element, svgelements.Path):
            continue
        # svgelements stops quietly at a bad token; the raw data is checked whole.
        parse_path(str(element.values.get("d", "")))
        path = format_path(parse_path(_exact_d(element)), exact=True)
        if is_region(path):  # a lone point or a line encloses nothing, as for AI outlines
            paths.append(path)
    # The page fills each path even-odd and draws what svgelements lists; a file not
    # written here may fill by the nonzero rule, or hide paths in a <symbol> or behind
    # visibility="hidden". Its outline would then differ on the page from the export's.
    shown = paths_to_mask(paths, (height, width))
    differing = int(np.count_nonzero(shown ^ drawn))
    if differing > max(2, drawn.sum() // 1000):
        raise ValueError(
            f"the SVG's paths, filled even-odd as the editor fills them, cover {differing} "
            "pixels otherwise than the SVG draws them (a nonzero fill rule, or paths it does "
            "not draw): it was not written by this client, and its outline cannot be edited "
            "here as saved")
    return paths


def _root_name(document) -> str:
    """The local name of the element svgelements parsed as the document's root."""
    if isinstance(document, svgelements.SVG):
        return "svg"
    tag = str(getattr(document, "values", {}).get("tag", "")) or "?"
    return tag.rsplit("}", 1)[-1]


def _whole_size(document: svgelements.SVG, size: tuple[float, float]) -> tuple[int, int]:
    """The document's ``(width, height)`` in whole pixels, by the rule
    :func:`vectorizer.svg_to_mask` sizes it by (:func:`vectorizer._rasterize._whole`):
    within 0.001 px of a whole number, as a size in mm that svgelements converts at
    96 dpi comes back (Inkscape's ``width="148.695833mm"`` is 562.0000 px). A file
    the export reads is not refused here for a difference no pixel shows."""
    try:
        return tuple(_whole(value, name, document.values.get(name))
                     for value, name in zip(size, ("width", "height"), strict=True))
    except ValueError as exc:
        # The attribute as written: a size off by a fraction shows it.
        reason = str(exc).removeprefix("svg_or_paths: SVG ")
        raise ValueError(f"the SVG is not sized in whole pixels ({reason})") from None


def _exact_d(path: svgelements.Path) -> str:
    """The path data of ``path`` as svgelements placed it (its transforms applied),
    each coordinate in full. ``Path.d()`` keeps 12 significant digits and
    :func:`format_path` 0.001 px: a vertex 0.0004 px off a column of pixel centres,
    as a drag in the editor leaves it, moved by either covers other pixels than the
    saved mask (audit 801 F1)."""
    parts = []
    for segment in path.segments():
        if isinstance(segment, svgelements.Close):
            parts.append("Z")
        elif isinstance(segment, svgelements.Move | svgelements.Line):
            parts.append(("M" if isinstance(segment, svgelements.Move) else "L")
                         + _xy((segment.end.x, segment.end.y), exact=True))
        else:  # the raw data was checked for straight segments: a curve is refused anyway
            raise ValueError(f"path has unsupported content {type(segment).__name__!r}: "
                             "only M L H V Z")
    return "".join(parts)


def paths_to_mask(paths: Sequence[str], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise regions to a mask with the vectorizer.

    Parameters
    ----------
    paths : sequence of str
        Region paths in image pixel coordinates (x, y).
    shape : (int, int)
        ``(height, width)`` of the image.

    Returns
    -------
    numpy.ndarray
        ``bool`` array of ``shape``; True inside the regions (even-odd rule).
    """
    if not isinstance(shape, tuple | list) or len(shape) != 2:
        raise ValueError("shape must be (height, width)")
    height, width = _size(shape[0], "shape[0]"), _size(shape[1], "shape[1]")
    paths = [p for p in _paths(paths) if is_region(p)]
    if not paths:
        return np.zeros((height, width), dtype=bool)
    mask = vectorizer.svg_to_mask(paths, shape=(height, width))
    return np.asarray(mask, dtype=bool)


def _size(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _paths(paths) -> list[str]:
    if isinstance(paths, str) or not isinstance(paths, Sequence):
        raise TypeError("paths must be a sequence of path strings")
    for i, path in enumerate(paths):
        if not isinstance(path, str):
            raise TypeError(f"paths[{i}] must be a str")
    return list(paths)


# --------------------------------------------------------------------------- plotly edits


@dataclass
class RelayoutEdit:
    """What a plotly ``relayoutData`` event means for the outline.

    Attributes
    ----------
    paths : list of str or None
        The regions after the edit, or None when the event did not touch them
        (zoom, pan, dragmode change).
    boxes : list of (x0, y0, x1, y1)
        Rectangles the user drew (re-segmentation requests), in image pixels.
    dropped : int
        Paths the graph shows that enclose nothing (a stroke drawn out and back), left
        out of ``paths``: the graph must be drawn again without them.
    cuts : list of str
        Closed paths drawn with the *Cut away* tool (shapes named :data:`CUT_NAME`),
        in image pixels: areas to subtract from ``paths``, which do not hold them.
    """

    paths: list[str] | None = None
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    dropped: int = 0
    cuts: list[str] = field(default_factory=list)


def apply_relayout(paths: Sequence[str], relayout: Mapping | None) -> RelayoutEdit:
    """Apply a plotly ``relayoutData`` event to the current regions.

    Plotly reports a dragged vertex, a moved shape or a deleted vertex as
    ``{"shapes[i].path": "M..."}``, and a drawn or erased shape as the whole new
    ``{"shapes": [...]}`` list. Rectangles in that list are box requests, not
    regions, and are returned separately so the caller can remove them; so are
    paths named :data:`CUT_NAME` (drawn with *Cut away*), areas to cut away.

    Parameters
    ----------
    paths : sequence of str
        The regions as the graph showed them before the event, in shape order.
    relayout : mapping or None
        ``dcc.Graph.relayoutData``.

    Returns
    -------
    RelayoutEdit
    """
    current = _paths(paths)
    if not relayout:
        return RelayoutEdit()
    if not isinstance(relayout, Mapping):
        raise TypeError("relayout must be a mapping")
    if "shapes" in relayout:
        shapes = relayout["shapes"]
        if isinstance(shapes, str) or not isinstance(shapes, Sequence):
            raise ValueError("relayout['shapes'] must be a list")
        _check_size(s.get("path") for s in shapes if isinstance(s, Mapping))
        new_paths: list[str] = []
        boxes = []
        cuts = []
        dropped = 0
        for shape in shapes:
            if not isinstance(shape, Mapping):
                continue
            kind = shape.get("type")
            if kind == "rect":
                box = _rect(shape)
                if box is not None:
                    boxes.append(box)
            elif kind == "path" and isinstance(shape.get("path"), str):
                if not is_region(shape["path"]):
                    dropped += 1
                elif shape.get("name") == CUT_NAME:
                    cuts.append(shape["path"])
                else:
                    new_paths.append(shape["path"])
        return RelayoutEdit(paths=new_paths, boxes=boxes, dropped=dropped, cuts=cuts)
    updated = list(current)
    changed = False
    for key, value in relayout.items():
        match = _SHAPE_PATH_KEY.fullmatch(str(key))
        if not match or not isinstance(value, str):
            continue
        index = int(match.group(1))
        if index < len(updated):
            updated[index] = value
            changed = True
    if not changed:
        return RelayoutEdit()
    _check_size(updated)
    # A region dragged down to fewer than three vertices no longer encloses anything.
    return RelayoutEdit(paths=[p for p in updated if is_region(p)])


#: What :func:`paths_to_svg` adds around each path's data, and around them all at the
#: largest image size: the saved document, not only its path data, is what a save
#: rasterises, so the editor's limit counts them (an outline just under the limit on
#: path data alone was drawn, then could not be saved).
_PATH_WRAPPER = len(paths_to_svg(["M"], 1, 1)) - len(paths_to_svg([], 1, 1)) - 1
_DOCUMENT_WRAPPER = len(paths_to_svg([], int(MAX_COORDINATE), int(MAX_COORDINATE)))


def saved_size(paths) -> int:
    """At least the length of :func:`paths_to_svg`'s document of ``paths`` (str items
    only), without building it: the data, each path's element, a ``Z`` for each
    subpath :func:`close_subpaths` may close, and the ``<svg>`` element."""
    paths = [p for p in paths if isinstance(p, str)]
    return (sum(len(p) + _PATH_WRAPPER + p.count("M") + p.count("m") for p in paths)
            + _DOCUMENT_WRAPPER)


def _check_size(paths) -> None:
    """Refuse an outline whose saved SVG would be more than the vectorizer rasterises,
    before any path is parsed."""
    paths = [p for p in paths if isinstance(p, str)]
    if saved_size(paths) > MAX_PATH_CHARS:
        total = sum(len(p) for p in paths)
        raise ValueError(
            f"the outline holds {total} characters of path data in {len(paths)} "
            f"region(s), more than can be drawn and saved (its SVG may be at most "
            f"{MAX_PATH_CHARS} bytes): remove regions or simplify the outline")


def _rect(shape: Mapping) -> tuple[float, float, float, float] | None:
    try:
        x0, y0, x1, y1 = (float(shape[k]) for k in ("x0", "y0", "x1", "y1"))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Snap a drawn box outward to whole pixels and clip it to the image.

    Parameters
    ----------
    box : (x0, y0, x1, y1)
        Corners in image pixel coordinates, in any order.
    width, height : int
        The image size.

    Returns
    -------
    (x0, y0, x1, y1) of int, or None
        Pixel-edge coordinates with ``0 <= x0 < x1 <= width`` (same for y), or None
        when the box lies outside the image or covers less than 2 x 2 pixels.
    """
    if len(box) != 4:
        raise ValueError("box must be (x0, y0, x1, y1)")
    width, height = _size(width, "width"), _size(height, "height")
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    ix0 = max(0, math.floor(x0))
    iy0 = max(0, math.floor(y0))
    ix1 = min(width, math.ceil(x1))
    iy1 = min(height, math.ceil(y1))
    if ix1 - ix0 < 2 or iy1 - iy0 < 2:
        return None
    return ix0, iy0, ix1, iy1
