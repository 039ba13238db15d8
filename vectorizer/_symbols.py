"""The ``<use>`` of a ``<symbol>``, made into what svgelements draws right.

A renderer draws a symbol's content in the viewport its ``<use>`` makes: the
symbol's ``viewBox`` when it has one (scaled to the ``<use>``'s size: refused by
``_svgcheck`` unless the size is the ``viewBox``'s own, as Illustrator exports every
symbol, ``<symbol viewBox="-25 -25 50 50">`` drawn by ``<use width="50" height="50"
x="-25" y="-25" transform="...">``, so that the content is only moved from the
``viewBox``'s corner to the ``<use>``'s ``x`` and ``y``), else the rectangle from the
``<use>``'s ``x`` and ``y`` of its width and height (100% by default); and it clips the
content to the viewport unless the symbol's ``overflow`` is ``visible``. svgelements
ignores the ``viewBox`` and clips nothing (a rectangle at x = -5 in a symbol drawn at
x = 10 came out from x = 5, where Chromium cut it at 10).

:func:`place_symbols` moves the content by rewriting the ``<use>``'s ``x`` and ``y``,
and marks what to clip for the rasteriser: each ``<use>`` of a clipping symbol gets an
attribute ``VIEWPORT-k`` (``k`` its own number), which svgelements copies to every
shape it draws from it, and a first child ``<polygon VIEWPORT="" ...>`` covering the
viewport, which svgelements draws first, in the ``<use>``'s coordinates.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from ._svgcheck import _FULL, _numbers, _overflows, _svg_tag, _viewport

VIEWPORT = "data-sonotrace-viewport"
"""The attribute marking a clipping symbol's viewport rectangle; ``VIEWPORT-k`` marks
what the ``k``-th ``<use>`` of such a symbol draws."""

_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_SYMBOL = re.compile(rb"<(?:[\w.-]+:)?symbol[\s/>]")


def place_symbols(data: bytes) -> bytes:
    """``data`` with each ``<use>`` of a ``<symbol>`` that has a ``viewBox`` moved by
    the ``viewBox``'s corner, and the clip a renderer applies to every ``<use>`` of a
    symbol marked (see the module).

    The clip is the symbol's viewport: its ``viewBox``, or else the rectangle from
    0,0 of the size the ``<use>`` gives in pixels, by default 100% of the viewport
    around the ``<use>`` (the root's, or that of the ``<symbol>`` with a ``viewBox``
    it is in).

    Parameters
    ----------
    data : bytes
        A well-formed SVG document that :func:`~vectorizer._svgcheck.check_document`
        accepted: each ``<use>`` of a symbol with a ``viewBox`` gives the
        ``viewBox``'s width and height, and an ``x`` and ``y`` in pixels; one of a
        clipping symbol without gives its size in pixels or 100%.

    Returns
    -------
    bytes
        The document, re-serialised (UTF-8) when any ``<use>`` changed.

    Raises
    ------
    ValueError
        If a ``<use>`` without a size, of a clipping symbol without a ``viewBox``,
        stands inside a ``<symbol>`` without one: its size is that of each ``<use>`` of
        the outer symbol, which may differ.
    """
    if not _SYMBOL.search(data):
        return data
    root = ElementTree.fromstring(data)
    ids = {}
    for element in root.iter():  # svgelements: the last element with an id wins it
        if "id" in element.attrib:
            ids[element.get("id")] = element
    parents = {child: parent for parent in root.iter() for child in parent}
    count = 0
    for use in list(root.iter()):
        # svgelements takes href over xlink:href, and drops its first character ("#").
        href = use.get("href", use.get(_XLINK_HREF)) if _svg_tag(use) == "use" else None
        symbol = ids.get(href[1:]) if href else None
        if symbol is None or _svg_tag(symbol) != "symbol":
            continue
        if "viewBox" in symbol.attrib:
            x, y, width, height = _numbers(symbol.get("viewBox"))
            use.set("x", repr(_numbers(use.get("x", "0"), pixels=True)[0] - x))
            use.set("y", repr(_numbers(use.get("y", "0"), pixels=True)[0] - y))
        elif not _overflows(symbol.attrib):
            x = y = 0.0
            width, height = _use_viewport(use, parents, root)
        if _overflows(symbol.attrib):
            continue
        use.set(f"{VIEWPORT}-{count}", "")
        count += 1
        # Drawn by svgelements before the symbol, in the <use>'s coordinates; a
        # renderer draws no child of a <use>. A <polygon>: no stylesheet sets its
        # points, as one may a rect's x or width; its own style wins over a rule that
        # would hide or move it.
        namespace = use.tag[:use.tag.index("}") + 1] if "}" in use.tag else ""
        corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]
        use.insert(0, ElementTree.Element(f"{namespace}polygon", {
            VIEWPORT: "", "points": " ".join(f"{a!r},{b!r}" for a, b in corners),
            "style": "display:inline;visibility:visible;transform:none"}))
    return ElementTree.tostring(root, encoding="utf-8")


def _use_viewport(use, parents: dict, root) -> tuple[float, float]:
    """The width and height of the viewport a ``<use>`` of a symbol without a
    ``viewBox`` makes: its own in pixels, each by default 100% of the one around it."""
    around = None
    element = parents.get(use)
    while element is not None and around is None:
        if _svg_tag(element) == "symbol":
            if "viewBox" not in element.attrib:
                raise ValueError(
                    "svg_or_paths: a <use> without a width and height, of a <symbol> that "
                    "clips, inside another <symbol> without a viewBox is not supported: its "
                    "size is that of each <use> of the outer symbol; give it a width and "
                    "height in pixels")
            around = tuple(_numbers(element.get("viewBox"))[2:])
        element = parents.get(element)
    around = around or _viewport(root.attrib)
    size = []
    for key, full in zip(("width", "height"), around or (None, None), strict=True):
        given = use.get(key)
        if given is None or _FULL.fullmatch(given):
            if full is None:
                raise ValueError(f"svg_or_paths: a <use> of a <symbol> that clips, without a "
                                 f"{key}, is not supported in a document without a viewBox "
                                 "or a size: a renderer clips to 100% of it")
            size.append(full)
        else:
            size.append(_numbers(given, pixels=True)[0])
    return size[0], size[1]
