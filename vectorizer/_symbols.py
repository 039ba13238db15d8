"""A ``<use>`` of a ``<symbol>`` whose ``viewBox`` only moves its content, made into
what svgelements draws right.

A renderer draws such a symbol's content moved from the ``viewBox``'s corner to the
``<use>``'s ``x`` and ``y``, and clipped to the ``viewBox`` unless the symbol's
``overflow`` is ``visible``; Illustrator exports every symbol so (``<symbol
viewBox="-25 -25 50 50">`` drawn by ``<use width="50" height="50" x="-25" y="-25"
transform="...">``). svgelements ignores the ``viewBox``: it draws the content at the
``<use>``'s ``x`` and ``y`` unmoved, and unclipped. :func:`place_symbols` moves it by
rewriting the ``x`` and ``y``, and marks what to clip for the rasteriser: each such
``<use>`` of a clipping symbol gets an attribute ``VIEWPORT-k`` (``k`` its own
number), which svgelements copies to every shape it draws from it, and the symbol a
first child, ``<polygon VIEWPORT="" ...>`` covering the ``viewBox``, which svgelements
draws first from each ``<use>``, in that ``<use>``'s coordinates.

``_svgcheck`` refuses a ``<use>`` of a symbol with a ``viewBox`` of any other size.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from ._svgcheck import _numbers, _overflows, _svg_tag

VIEWPORT = "data-sonotrace-viewport"
"""The attribute marking a clipping symbol's viewport rectangle; ``VIEWPORT-k`` marks
what the ``k``-th ``<use>`` of such a symbol draws."""

_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_SYMBOL_WITH_VIEWBOX = re.compile(rb"<(?:[\w.-]+:)?symbol[^>]*\sviewBox\s*=")


def place_symbols(data: bytes) -> bytes:
    """``data`` with each ``<use>`` of a ``<symbol>`` that has a ``viewBox`` moved by
    the ``viewBox``'s corner, and the clip a renderer applies marked (see the module).

    Parameters
    ----------
    data : bytes
        A well-formed SVG document that :func:`~vectorizer._svgcheck.check_document`
        accepted: each such ``<use>`` gives the ``viewBox``'s width and height, and an
        ``x`` and ``y`` in pixels.

    Returns
    -------
    bytes
        The document, re-serialised (UTF-8) when any ``<use>`` changed.
    """
    if not _SYMBOL_WITH_VIEWBOX.search(data):
        return data
    root = ElementTree.fromstring(data)
    ids = {}
    for element in root.iter():  # svgelements: the last element with an id wins it
        if "id" in element.attrib:
            ids[element.get("id")] = element
    marked: set[int] = set()
    count = 0
    for use in list(root.iter()):
        # svgelements takes href over xlink:href, and drops its first character ("#").
        href = use.get("href", use.get(_XLINK_HREF)) if _svg_tag(use) == "use" else None
        symbol = ids.get(href[1:]) if href else None
        if symbol is None or _svg_tag(symbol) != "symbol" or "viewBox" not in symbol.attrib:
            continue
        x, y, width, height = _numbers(symbol.get("viewBox"))
        use.set("x", repr(_numbers(use.get("x", "0"), pixels=True)[0] - x))
        use.set("y", repr(_numbers(use.get("y", "0"), pixels=True)[0] - y))
        if _overflows(symbol.attrib):
            continue
        use.set(f"{VIEWPORT}-{count}", "")
        count += 1
        if id(symbol) not in marked:
            marked.add(id(symbol))
            namespace = symbol.tag[:symbol.tag.index("}") + 1] if "}" in symbol.tag else ""
            # A <polygon>: no stylesheet sets its points, as one may a rect's x or
            # width; and its own style wins over a rule that would hide or move it.
            corners = f"{x!r},{y!r} {x + width!r},{y!r} {x + width!r},{y + height!r} " \
                      f"{x!r},{y + height!r}"
            viewport = ElementTree.Element(f"{namespace}polygon", {
                VIEWPORT: "", "points": corners,
                "style": "display:inline;visibility:visible;transform:none"})
            symbol.insert(0, viewport)
    return ElementTree.tostring(root, encoding="utf-8")
