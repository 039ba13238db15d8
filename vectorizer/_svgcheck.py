"""A cheap first reading of an SVG document, to refuse what svgelements would choke on.

svgelements' ``SVG.parse`` expands every ``<use>`` before anything else can look at the
document: it copies the referenced element's whole subtree in place of the ``<use>``,
and again for every ``<use>`` inside that copy. Sixteen nested groups, each holding two
``<use>`` of the group before, are a 1.2 KB document that expands to 65,536 shapes and
took it a minute and 1.2 GB; a ``<use>`` that refers to an element containing it never
ends. Limits applied to what it returns (shape counts, the fill's budget) come too late.

:func:`check_svg_document` reads the raw XML once, with the expat parser svgelements
itself uses (so nothing is accepted here that it would read differently: entity
expansion is bounded by expat, and external entities are never fetched), and computes
without expanding anything what the expansion would cost: every element's size with its
``<use>`` references resolved transitively, the shapes it draws, how deeply ``<use>``
and elements nest. It also refuses the attribute values svgelements fails on without a
readable reason: non-finite numbers in path data, transforms and the geometry attributes
of basic shapes.
"""

from __future__ import annotations

import io
import math
import re
from xml.etree import ElementTree
from xml.etree.ElementTree import ParseError, iterparse
from xml.parsers import expat

from ._cascade import (
    Rule,
    by_selector,
    declarations,
    selectors_of,
    sheet_values,
    style_declarations,
)

MAX_SHAPES = 10_000
"""Most shapes (paths, rects...) a document, or paths a list, may have."""

MAX_PARSED_BYTES = 300_000
"""Largest document not in :func:`mask_to_svg`'s exact form, and largest total length
of a list of path strings: svgelements reads these at up to 8 s per MB."""

MAX_USE_NESTING = 8
"""Most ``<use>`` elements a chain of references may pass through (a ``<use>`` of an
element holding a ``<use>`` of another... counts each one)."""

MAX_INHERITED = 1_000_000
"""Most attribute copies svgelements may make: it copies every element's attributes,
and those of all its ancestors, into the element (a root of 15,000 attributes over
30,000 empty groups, 274 KB, cost it 44 s)."""

MAX_NESTING = 256
"""Deepest element nesting accepted, counted with every ``<use>`` expanded: svgelements
recurses once per level and fails near a thousand."""

# svgelements strips the SVG namespace by slicing off this prefix plus one character
# (the "}"); matching it the same way keeps "which tags are <use>" identical.
_SVG_NS_PREFIX = "{http://www.w3.org/2000/svg"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# The shapes svgelements turns into geometry, and the containers whose content it
# parses (so it costs) but never draws.
_SHAPE_TAGS = frozenset({"path", "rect", "circle", "ellipse", "line", "polyline", "polygon"})
_UNDRAWN_TAGS = frozenset({"defs", "clipPath", "pattern", "mask", "marker", "symbol"})
# Elements a renderer never draws where they stand but svgelements does (it does not
# know them, so their content is drawn as if they were a group): see hide_undrawn.
_HIDDEN_TAGS = ("mask", "marker", "symbol")
_HIDDEN_TAG_TEXT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:mask|marker|symbol|switch)[\s/>]"
                              rb"|requiredExtensions|systemLanguage")
# A <switch> draws its first child whose conditions hold; these are never drawn, so
# they are not candidates.
_DESCRIPTIVE_TAGS = frozenset({"title", "desc", "metadata"})
# A nested <svg> that keeps these at their initial values is a plain group; placed or
# sized, a renderer moves and clips its content, which svgelements does not (it drew a
# path in <svg x="2" y="3"> at 0,0, and a <rect> there took the <svg>'s x as its own).
_NESTED_SVG_DEFAULTS = {
    "x": re.compile(r"\s*[-+]?(?:0+\.?0*|\.0+)(?:px|%)?\s*"),
    "y": re.compile(r"\s*[-+]?(?:0+\.?0*|\.0+)(?:px|%)?\s*"),
    "width": re.compile(r"\s*100(?:\.0*)?%\s*"),
    "height": re.compile(r"\s*100(?:\.0*)?%\s*"),
}

# Characters that can occur in path data. svgelements, like browsers, stops quietly at
# the first thing it cannot read; anything outside this set is refused up front.
PATH_CHARS = re.compile(r"[^MmLlHhVvCcSsQqTtAaZz0-9eE+\-.,\s]")
NOT_FINITE = re.compile(r"nan|inf(?:inity)?", re.IGNORECASE)
# SVG's path grammar allows blanks, not a comma, between a command letter and its first
# number ("M,5 5"): Chromium draws nothing from there on, svgelements read on. (After
# Z, with no number to follow, Chromium reads on too.)
_COMMAND_COMMA = re.compile(r"[MmLlHhVvCcSsQqTtAa]\s*,")
# A number ending in its decimal point ("20.", "2.e1"): Chromium stops drawing the path
# there, svgelements refused it, and mask_to_svg's own-form reader read it as 20.
TRAILING_DOT = re.compile(r"[0-9]\.(?![0-9])")
_PATH_GRAMMAR = re.compile(f"{_COMMAND_COMMA.pattern}|{TRAILING_DOT.pattern}")


def path_grammar_error(d: str) -> str | None:
    """Why path data ``d`` is refused for breaking SVG's number or command grammar
    where Chromium stops drawing it but a reader here would read on, or None.

    Said with what was found and its position: a comma right after a command letter
    (``M,5 5``), or a number ending in its decimal point (``20.``), which Chromium
    does not draw from (audit 801, F10).
    """
    if _PATH_GRAMMAR.search(d) is None:  # one pass over ordinary path data
        return None
    if (bad := _COMMAND_COMMA.search(d)) is not None:
        return (f"path data has a comma right after the command {bad.group()[0]!r} at "
                f"position {bad.end() - 1}, which SVG does not allow (a renderer draws "
                "nothing from there)")
    if (bad := TRAILING_DOT.search(d)) is not None:
        number = re.search(r"[0-9]*$", d[:bad.start() + 1]).group()
        return (f"path data has the number {number + '.'!r} ending in its decimal point at "
                f"position {bad.start() + 1 - len(number)}, which a renderer does not read "
                f"(it draws nothing from there): write {number} or {number}.0")
    return None
# Geometry attributes that hold numbers (a length, or a list of them), where
# svgelements reads what is not a finite number as 0 or leaves it out.
_NUMERIC_ATTRIBUTES = frozenset({"x", "y", "width", "height", "rx", "ry", "cx", "cy", "r",
                                 "x1", "y1", "x2", "y2", "points"})
_CHECKED_ATTRIBUTES = _NUMERIC_ATTRIBUTES | {"d", "transform"}
# Properties that change where a renderer draws a shape, and that svgelements does not
# apply, each with what it says when refused; given as attributes, in a style
# attribute or in a stylesheet. Values that change nothing are accepted (_HARMLESS).
_UNAPPLIED_PROPERTIES = {
    "transform-origin": "svgelements rotates and scales about 0,0 whatever the origin; "
                        "write the origin into the transform (translate, then back)",
    "transform-box": "svgelements rotates and scales about 0,0 of the user space, never "
                     "about the shape's own box",
    "clip-path": "clipping changes the outline a renderer draws, and svgelements ignores "
                 "it; clip the shapes' own geometry, or remove it",
    "mask": "masking changes the outline a renderer draws, and svgelements ignores it; "
            "cut the shapes' own geometry, or remove it",
}
_UNAPPLIED_KEYS = frozenset(_UNAPPLIED_PROPERTIES)
_PROPERTY_ATTRIBUTES = frozenset({"style", *_UNAPPLIED_PROPERTIES})
_ZERO_LENGTH = r"[-+]?(?:0+\.?0*|\.0+)(?:px|%)?"
_HARMLESS = {
    # SVG's initial origin, 0 0 of the user space (with transform-box view-box): both
    # axes given, since CSS puts a missing one at the centre ("0" is "0 50%").
    "transform-origin": re.compile(rf"\s*(?:(?:{_ZERO_LENGTH}|left|top)\s*){{2,3}}",
                                   re.IGNORECASE),
    "transform-box": re.compile(r"\s*view-box\s*", re.IGNORECASE),
    "clip-path": re.compile(r"\s*none\s*", re.IGNORECASE),
    "mask": re.compile(r"\s*none\s*", re.IGNORECASE),
}
# A declaration of one of them in a stylesheet (its value up to ";" or "}").
_STYLESHEET_PROPERTY = re.compile(
    r"(?<![\w-])(" + "|".join(map(re.escape, _UNAPPLIED_PROPERTIES)) + r")\s*:\s*([^;}]*)",
    re.IGNORECASE,
)
# CSS's own transform properties, which Chromium applies to SVG elements too (a bar
# with style="translate: 3px 0" drawn 3 pixels right, one with scale: 0.5 at a quarter
# of its pixels) and svgelements ignores; refused unless none.
_CSS_TRANSFORM_KEYS = frozenset({"translate", "rotate", "scale"})
_CSS_TRANSFORM_DECLARATION = re.compile(r"(?<![\w-])(translate|rotate|scale)\s*:\s*([^;}]*)",
                                        re.IGNORECASE)
# A transform that only translates, which moves alike about any origin.
_TRANSLATION_ONLY = re.compile(r"\s*(?:none\s*|(?:translate\s*\([^()]*\)[\s,]*)*)",
                               re.IGNORECASE)
# Properties that matter only with a transform on the same element.
_ORIGIN_PROPERTIES = ("transform-origin", "transform-box")
# Properties a stylesheet's plain rules are kept for, to judge element by element.
_JUDGED_PROPERTIES = frozenset({*_UNAPPLIED_PROPERTIES, "display", "transform"})
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
# Properties of a stylesheet that decide what is drawn and where, which svgelements
# applies only through the selectors it knows (_APPLIED_SELECTOR), in a rule outside
# any at-rule, without !important, to the elements after the <style>.
_GEOMETRY_PROPERTIES = ("display", "visibility", "fill-rule", "transform", "d", "x", "y",
                        "width", "height", "r", "rx", "ry", "cx", "cy")
_GEOMETRY_DECLARATION = re.compile(
    r"(?<![\w-])(" + "|".join(_GEOMETRY_PROPERTIES) + r")\s*:", re.IGNORECASE
)
# The selectors svgelements looks up: every element, a tag, an id, a class, tag.class.
_APPLIED_SELECTOR = re.compile(r"\*|[A-Za-z_][\w-]*|[#.][\w-]+|[A-Za-z_][\w-]*\.[\w-]+")
_CSS_RULE = re.compile(r"([^{}]*)\{([^{}]*)\}")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# One transform function and its argument list, as svgelements finds them (it reads
# the attribute lower-cased, and ignores text that is not a function call). Linear, as
# this check must be: a name starts only where a run of letters does (a match starting
# inside one would end as the one from its start does), and the quantifiers are
# possessive, so transform="aaaa..." is read once, not once from each letter (20,000
# letters took 2.5 s). The text after the last ")" is not searched (_transform_calls).
_TRANSFORM_CALL = re.compile(r"(?<![a-z])([a-z]++)\s*+\(([^)]*+)\)")
_TRANSFORM_NUMBER = re.compile(
    r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?"
    r"(?:cm|mm|q|in|pt|pc|px|em|cx|ch|rem|vw|vh|vmin|vmax|deg|grad|rad|turn|%)?"
)


def check_svg_document(svg: str | bytes) -> None:
    """Refuse, in milliseconds, an SVG document too costly or too broken to parse.

    svgelements (which both :func:`svg_to_mask` and the annotation client's SVG reader
    use) copies every ``<use>``'s referenced subtree while it parses, before any limit
    can apply, so a small document of nested ``<use>`` costs it minutes and gigabytes.
    This reads the raw XML once, without expanding anything, and refuses a document:

    - whose ``<use>`` references form a cycle (a ``<use>`` of itself or of an element
      that contains it);
    - that its ``<use>`` elements expand to more than ``MAX_PARSED_BYTES`` (300 KB) of
      SVG, or to more than its own size when it is larger already;
    - that draws more than ``MAX_SHAPES`` (10,000) shapes, each ``<use>`` counting the
      shapes it repeats (shapes in ``<defs>``, ``<clipPath>`` and ``<pattern>`` are not
      drawn, and count only where a ``<use>`` draws them);
    - whose ``<use>`` references pass through more than ``MAX_USE_NESTING`` (8)
      ``<use>`` in a chain, or whose elements nest more than ``MAX_NESTING`` (256) deep;
    - with path data (``d``) or a ``transform`` that holds something other than numbers
      where numbers belong (``NaN``, ``inf``, a word, a comma right after a command,
      ``20.``), or a geometry attribute (``x``,
      ``y``, ``width``, ``height``, ``rx``, ``ry``, ``cx``, ``cy``, ``r``, ``x1`` ...
      ``y2``, ``points``) that holds a number that is not finite (``NaN``, ``inf``,
      ``1e400``);
    - with a ``<use>`` of a ``<symbol>`` that has a ``viewBox`` (svgelements does not
      scale the content to the ``<use>``'s size, as a renderer does), unless the
      ``<use>`` gives the ``viewBox``'s width and height in pixels (the content is only
      moved, as Illustrator exports symbols; :func:`svg_to_mask` moves and clips it);
    - with a ``transform-origin`` or ``transform-box`` (attribute, ``style`` or
      stylesheet) other than the initial one on an element with a transform:
      svgelements turns everything about 0,0 (without a transform they change nothing);
    - with a shape inside a ``<symbol>`` sized in ``%`` (of each ``<use>``'s size);
    - with CSS's ``translate``, ``rotate`` or ``scale`` property (``style`` or
      stylesheet) other than ``none``, which svgelements ignores;
    - with a ``<style>`` that sets what is drawn or where (``display``, ``visibility``,
      ``fill-rule``, ``transform``, a geometry property) otherwise than svgelements
      applies it: through a selector other than ``*``, a tag, ``.class``, ``#id`` or
      ``tag.class``, in an at-rule, with ``!important``, or after shapes;
    - with a ``clip-path`` or ``mask`` other than ``none`` (attribute, ``style`` or
      stylesheet): they change the outline a renderer draws, and svgelements ignores
      them; unless the element is never drawn (in ``<defs>`` unused, or hidden by
      ``display: none``) or the clip is a rectangle covering the image
      (:meth:`_Tree.check_clipping`); a stylesheet's set through a selector other
      than a plain one, or in an at-rule, is refused;
    - with an ``<svg>`` element inside the root that has a ``viewBox`` (svgelements
      scales its content about the wrong origin), or an ``x``, ``y``, ``width`` or
      ``height`` other than its initial one (a renderer moves its content there and
      clips it; svgelements drew a path at 0,0): it would be drawn misplaced.

    A document that passes may still be invalid in other ways; the full parse says so.

    Parameters
    ----------
    svg : str or bytes
        The document, as it will be handed to svgelements (text, or encoded bytes).

    Raises
    ------
    TypeError
        If ``svg`` is not str or bytes.
    ValueError
        If ``svg`` is not well-formed XML, or is refused for one of the reasons above.

    Examples
    --------
    >>> from vectorizer import check_svg_document
    >>> check_svg_document('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0L1 1"/></svg>')
    >>> check_svg_document('<svg xmlns="http://www.w3.org/2000/svg" '
    ...                    'xmlns:x="http://www.w3.org/1999/xlink">'
    ...                    '<g id="a"><use x:href="#a"/></g></svg>')
    Traceback (most recent call last):
        ...
    ValueError: svg: <use> of 'a' refers to an element that contains it: a reference cycle
    """
    if isinstance(svg, bytearray | memoryview):
        svg = bytes(svg)
    if not isinstance(svg, str | bytes):
        raise TypeError(f"svg must be an SVG document (str or bytes), got {type(svg).__name__}")
    check_document(svg, "svg")


def check_document(data: str | bytes, name: str) -> None:
    """:func:`check_svg_document` with ``name`` as the parameter named in messages."""
    _refuse_entities(data, name)
    tree = _Tree.read(data, name)
    if any(ref is not None for ref in tree.refs):
        tree.check_expansion(name, max(MAX_PARSED_BYTES, sum(tree.own)))
    elif tree.drawn > MAX_SHAPES:  # without <use>, the document is its own expansion
        raise ValueError(_too_many_shapes(name))


class _PrologRead(Exception):
    """The root element starts: no entity can be declared after it."""


def _refuse_entities(data: str | bytes, name: str) -> None:
    """Refuse a document that declares an XML entity, as expat reads it.

    An entity expands inside the parser, past every size limit taken on the raw text
    (1.4 KB of them made a 7 MB path that took 21 s); no SVG drawn by a program needs
    one. A search of the raw bytes for ``<!ENTITY`` missed a document expat reads as
    UTF-16 without a byte-order mark (one that starts with a space: 15 s, 1.2 GB), so
    the declarations are found by expat itself, in whatever encoding it detects, and
    it stops at the root element's start: only the prolog is read.
    """
    parser = expat.ParserCreate()

    def declared(*_args) -> None:
        raise ValueError(f"{name}: declares XML entities (<!ENTITY>), which are not accepted")

    def root_started(*_args) -> None:
        raise _PrologRead

    parser.EntityDeclHandler = declared
    parser.UnparsedEntityDeclHandler = declared
    parser.StartElementHandler = root_started
    try:
        parser.Parse(data, True)
    except (_PrologRead, expat.ExpatError):
        # A document that is not well-formed is refused by the full reading, which
        # stops at the same place, with its position in the message.
        return


def hide_undrawn(data: bytes) -> bytes:
    """``data`` with each ``<mask>``, ``<marker>`` and ``<symbol>``, and every child of a
    ``<switch>`` but the one it draws, moved into a ``<defs>``.

    A renderer draws none of them where they stand: a mask only masks, a marker is
    drawn at a path's vertices (a decoration, not an outline), a symbol only through a
    ``<use>``, a switch only its first child whose conditions hold. svgelements knows
    none of them and draws their shapes as if they were a group's, so a lesion outline
    beside a mask came out larger. Inside ``<defs>`` it draws them no more, while a
    ``<use>`` of a symbol (or of any element inside one) still draws it, as a renderer
    does. A document without them is returned as it is.

    A switch's conditions are read as Chromium reads them: ``requiredFeatures`` holds
    (SVG 2 dropped it), ``requiredExtensions`` holds only when it lists nothing but the
    XHTML and MathML namespaces (the ``<foreignObject requiredExtensions=...>`` naming
    Illustrator's that an Illustrator file puts first is passed over for the group after
    it). A ``systemLanguage`` before the child drawn is refused: which child is drawn
    depends on the language of whoever views it. The same conditions hold outside a
    switch, where browsers apply them too: an element whose ``requiredExtensions`` does
    not hold is not drawn, and one with ``systemLanguage`` is refused, also inside
    ``<defs>`` and the like when a ``<use>`` draws it or an element around it.

    Parameters
    ----------
    data : bytes
        A well-formed SVG document that :func:`check_document` accepted (no entity
        declarations).

    Returns
    -------
    bytes
        The document, re-serialised (UTF-8) when anything moved.

    Raises
    ------
    ValueError
        If a ``<switch>`` chooses by ``systemLanguage``, or an element outside one
        carries it.
    """
    if not _HIDDEN_TAG_TEXT.search(data):
        return data
    root = ElementTree.fromstring(data)
    moved = False
    # Never drawn where they stand: a condition there decides nothing, so is not refused,
    # unless a <use> draws it, or an element around it (audit 805 F3): the copy keeps the
    # condition, which a browser applies.
    used = _used_ids(root)
    parents = {child: parent for parent in root.iter() for child in parent}

    def drawn_by_use(element) -> bool:
        while element is not None:
            if element.get("id") in used:
                return True
            element = parents.get(element)
        return False

    undrawn = {id(e) for c in root.iter() if _svg_tag(c) in _UNDRAWN_TAGS for e in c.iter()
               if not drawn_by_use(e)}
    for parent in list(root.iter()):
        drawn = _switch_choice(parent)
        for position, child in enumerate(list(parent)):
            if not isinstance(child.tag, str):
                continue
            namespace, _, tag = child.tag.rpartition("}")
            if namespace not in ("", _SVG_NS_PREFIX):
                continue
            if (drawn is False and "requiredExtensions" in child.attrib
                    and not _extensions_hold(child.attrib["requiredExtensions"])):
                # Not drawn, nor where a <use> repeats it (the copy keeps the condition);
                # hidden in place, so a <use> of a child of it still draws that child.
                child.set("display", "none")
                moved = True
                continue
            if drawn is False and "systemLanguage" in child.attrib and id(child) not in undrawn:
                raise ValueError(f"svg_or_paths: a <{tag}> with a systemLanguage condition is "
                                 "not supported: whether it is drawn depends on the viewer's "
                                 "language")
            if tag not in _HIDDEN_TAGS and (drawn is False or child is drawn):
                continue
            defs = ElementTree.Element(f"{namespace}}}defs" if namespace else "defs")
            defs.tail, child.tail = child.tail, None
            parent.remove(child)
            defs.append(child)
            parent.insert(position, defs)
            moved = True
    return ElementTree.tostring(root, encoding="utf-8") if moved else data


def root_attributes(data: bytes) -> dict[str, str]:
    """The attributes of the root element, as written (names unprefixed), read by
    expat up to the root's start tag only; empty if the document has no root or is
    not well-formed there (the full reading then says why)."""
    parser = expat.ParserCreate()
    found: dict[str, str] = {}

    def root_started(_tag, attributes) -> None:
        found.update(attributes)
        raise _PrologRead

    parser.StartElementHandler = root_started
    try:
        parser.Parse(data, True)
    except (_PrologRead, expat.ExpatError):
        pass
    return found


# x and y as Illustrator writes them on the root ("0px"): no shift even where applied.
_ZERO_POSITION = re.compile(r"\s*[-+]?(?:0+\.?0*|\.0+)(?:px)?\s*")


def unplace_root(data: bytes, attributes: dict[str, str]) -> bytes:
    """``data`` without the root ``<svg>``'s ``x`` and ``y`` (attributes, or in its
    ``style``), when either is not zero.

    SVG ignores them on the outermost ``<svg>`` (a renderer draws its content at its
    own origin), but svgelements translates the whole drawing by them: ``<svg x="10"
    y="10">`` moved every outline 10 pixels right and down (audit 801, F4). The zeros
    Illustrator writes (``x="0px" y="0px"``) change nothing and are left as they are.

    Parameters
    ----------
    data : bytes
        A well-formed SVG document that :func:`check_document` accepted.
    attributes : dict
        Its root's attributes, from :func:`root_attributes`.

    Returns
    -------
    bytes
        The document, re-serialised (UTF-8) when ``x`` or ``y`` was dropped.
    """
    declarations = [d.partition(":") for d in attributes.get("style", "").split(";")]
    styled = [value for key, colon, value in declarations
              if colon and key.strip().lower() in ("x", "y")]
    if all(_ZERO_POSITION.fullmatch(value) for value in styled) and \
            all(_ZERO_POSITION.fullmatch(attributes.get(key, "0")) for key in ("x", "y")):
        return data
    root = ElementTree.fromstring(data)
    root.attrib.pop("x", None)
    root.attrib.pop("y", None)
    if styled:  # svgelements applies a style's x and y as attributes
        root.set("style", ";".join(key + colon + value for key, colon, value in declarations
                                   if key.strip().lower() not in ("x", "y")))
    return ElementTree.tostring(root, encoding="utf-8")


def _svg_tag(element) -> str | None:
    """The local name of an SVG element (no namespace or the SVG one), else None."""
    if not isinstance(element.tag, str):
        return None
    namespace, _, tag = element.tag.rpartition("}")
    return tag if namespace in ("", _SVG_NS_PREFIX) else None


#: The extensions Chromium supports (Blink's SVGTests): a requiredExtensions listing only
#: these holds; any other, or an empty list, does not.
_SUPPORTED_EXTENSIONS = frozenset({"http://www.w3.org/1999/xhtml",
                                   "http://www.w3.org/1998/Math/MathML"})


def _extensions_hold(value: str) -> bool:
    """Whether a ``requiredExtensions`` value holds, as Chromium evaluates it."""
    listed = value.split()
    return bool(listed) and all(uri in _SUPPORTED_EXTENSIONS for uri in listed)


def _used_ids(root) -> set[str]:
    """The ids a ``<use>`` of ``root`` refers to (``href`` or ``xlink:href`` ``#id``)."""
    used = set()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.rpartition("}")[2] == "use":
            for key, value in element.attrib.items():
                if key.rpartition("}")[2] == "href" and value.strip().startswith("#"):
                    used.add(value.strip()[1:])
    return used


def _switch_choice(element) -> object:
    """The child a ``<switch>`` draws (None if none), or False if ``element`` is not a
    ``<switch>`` (see :func:`hide_undrawn`)."""
    if not isinstance(element.tag, str):
        return False
    namespace, _, tag = element.tag.rpartition("}")
    if tag != "switch" or namespace not in ("", _SVG_NS_PREFIX):
        return False
    for child in element:
        if not isinstance(child.tag, str):
            continue
        namespace, _, tag = child.tag.rpartition("}")
        if namespace not in ("", _SVG_NS_PREFIX) or tag in _DESCRIPTIVE_TAGS:
            continue
        if "systemLanguage" in child.attrib:
            raise ValueError("svg_or_paths: a <switch> that chooses by systemLanguage is "
                             "not supported: what it draws depends on the viewer's language")
        if ("requiredExtensions" not in child.attrib
                or _extensions_hold(child.attrib["requiredExtensions"])):
            return child
    return None


def _too_many_shapes(name: str) -> str:
    return (f"{name} has more than {MAX_SHAPES} shapes, counting the shapes each <use> "
            f"repeats; at most {MAX_SHAPES} can be rasterised")


def _check_attributes(attrib: dict, tag: str, name: str, root: bool) -> None:
    # The root's width and height are read, and refused as written, with the size.
    for key in () if root else _NUMERIC_ATTRIBUTES.intersection(attrib):
        _check_numbers(attrib[key], f"<{tag}> {key}", name)
    d = attrib.get("d")
    if d is not None and (bad := PATH_CHARS.search(d)):
        # "NaN" and "inf" start with characters path data never has: name them whole.
        if (word := NOT_FINITE.match(d, bad.start())) is not None:
            raise ValueError(f"{name}: path data has {word.group()!r} at position "
                             f"{bad.start()}, which is not a finite number")
        raise ValueError(f"{name}: path data has {bad.group()!r} at position {bad.start()}")
    if d is not None and (error := path_grammar_error(d)):
        raise ValueError(f"{name}: {error}")
    transform = attrib.get("transform")
    if transform is not None:
        _check_transform(transform, name)


def _described(tag: str, attrib: dict) -> str:
    """An element as named in messages: ``<path id='lesion'>``, or ``<path>``."""
    return f"<{tag} id={attrib['id'][:40]!r}>" if "id" in attrib else f"<{tag}>"


def _check_properties(attrib: dict, tag: str, name: str) -> list[tuple[str, str]]:
    """Refuse a property of :data:`_UNAPPLIED_PROPERTIES` given as an attribute or in
    the ``style`` attribute (read as svgelements reads it: ``;``-separated
    ``name: value`` pairs), unless its value changes nothing.

    A ``clip-path`` or ``mask`` that refers to an element (``url(#id)``) is returned
    instead, as ``(property, value)`` pairs, for :meth:`_Tree.check_clipping` to judge
    once the document is read: whether the element is drawn at all, and whether the clip
    cuts anything, depend on what comes later."""
    style = attrib.get("style", "")
    # Every property of _UNAPPLIED_PROPERTIES holds one of these words; plain searches
    # take a seventh of the time of one case-blind regex, paid on every styled element.
    lowered = style.lower()
    if "transform-" not in lowered and "clip-path" not in lowered and "mask" not in lowered \
            and _UNAPPLIED_KEYS.isdisjoint(attrib):
        return []  # the usual style: paint only
    declared = [(key, value) for key, value in attrib.items() if key in _UNAPPLIED_PROPERTIES]
    for declaration in style.split(";"):
        key, colon, value = declaration.partition(":")
        key = key.strip().lower()
        if colon and key in _UNAPPLIED_PROPERTIES:
            declared.append((key, value))
    deferred = []
    for key, value in declared:
        if (key in ("clip-path", "mask") and _URL_REFERENCE.fullmatch(value)) or (
                key in _ORIGIN_PROPERTIES and not _harmless(key, value)):
            deferred.append((key, value.strip()))
        else:
            _check_property(key, value, _described(tag, attrib), name)
    return deferred


#: A reference to an element of the document, as clip-path and mask give it.
_URL_REFERENCE = re.compile(r"\s*url\(\s*['\"]?#([^'\")\s]+)['\"]?\s*\)\s*")


def _harmless(key: str, value: str) -> bool:
    """Whether ``key: value`` (a property of :data:`_UNAPPLIED_PROPERTIES`) changes
    nothing wherever it is set."""
    return _HARMLESS[key].fullmatch(value.replace("!important", "").strip()) is not None


def _check_property(key: str, value: str, where: str, name: str) -> None:
    if _harmless(key, value):
        return
    raise ValueError(f"{name}: {where} has {key} {value[:40]!r}, which is not supported: "
                     f"{_UNAPPLIED_PROPERTIES[key]}")


def _collect_rules(text: str, name: str, rules: list[Rule]) -> None:
    """Add to ``rules`` the declarations of ``text`` (a stylesheet without comments)
    that :class:`_Tree` judges element by element once the document is read: a
    ``clip-path`` or ``mask`` of an element (``url(#id)``), a ``transform-origin`` or
    ``transform-box``, and every ``display`` and ``transform``; refuse a declaration
    of :data:`_UNAPPLIED_PROPERTIES` that cannot be judged so, because it changes
    something and is set through a selector other than a plain one, in an at-rule, or
    outside a rule."""
    deferred = 0
    for match in _STYLESHEET_PROPERTY.finditer(text):
        key, value = match.group(1).lower(), match.group(2)
        if _harmless(key, value):
            continue
        if "@" in text or (key in ("clip-path", "mask") and not _URL_REFERENCE.fullmatch(
                value.replace("!important", ""))):
            _check_property(key, value, "a <style>", name)
        deferred += 1
    for selectors, body in _CSS_RULE.findall(text):
        for key, value in declarations(body):
            if key not in _JUDGED_PROPERTIES or (key in _HARMLESS and _harmless(key, value)):
                continue
            deferred -= key in _UNAPPLIED_PROPERTIES
            for selector in selectors.split(","):
                if not _APPLIED_SELECTOR.fullmatch(selector.strip()):
                    if key not in _UNAPPLIED_PROPERTIES:
                        continue  # display and transform: refused by _check_stylesheet
                    raise ValueError(
                        f"{name}: a <style> sets {key} through the selector "
                        f"{selector.strip()[:40]!r}, which is not supported: only plain tag, "
                        "class and id selectors (path, .c, #i, path.c, *) are judged; set it "
                        "on the elements or by class"
                    )
                rules.append(Rule(selector.strip(), key, value.strip()))
    if deferred:  # a declaration outside any rule: not judged, refused
        match = next(m for m in _STYLESHEET_PROPERTY.finditer(text)
                     if not _harmless(m.group(1).lower(), m.group(2)))
        raise ValueError(f"{name}: a <style> has {match.group(1).lower()} "
                         f"{match.group(2).strip()[:40]!r} outside a rule, which is not "
                         "supported")


def _check_css_transform(key: str, value: str, where: str, name: str) -> None:
    """Refuse CSS's ``translate``, ``rotate`` or ``scale`` property set to anything but
    ``none`` (see :data:`_CSS_TRANSFORM_KEYS`)."""
    value = value.replace("!important", "").strip()
    if value.lower() != "none":
        raise ValueError(f"{name}: {where} has {key} {value[:40]!r}, which is not supported: "
                         "svgelements ignores CSS's translate, rotate and scale properties, "
                         "which move the outline a renderer draws; write it into the "
                         "transform attribute")


def _check_stylesheet(text: str, name: str, late: bool,
                      rules: list[Rule]) -> dict[str, dict[str, str]]:
    """Refuse a ``<style>`` that declares a property of :data:`_UNAPPLIED_PROPERTIES`
    with a value that changes something, or that sets what is drawn or where
    (:data:`_GEOMETRY_PROPERTIES`) otherwise than svgelements applies it.

    svgelements reads a stylesheet as ``selectors { declarations }`` pairs and looks an
    element up by ``*``, its tag, ``#id``, ``.class`` and ``tag.class`` only, from the
    elements after the ``<style>`` on (``late``: a shape or ``<use>`` came before it).
    Any other selector (``g > path``, ``path:not(.k)``, ``[data-x]``), an at-rule
    (``@media``) and ``!important`` were dropped or misread: Chromium hid shapes that
    were filled, and filled a hole even-odd that was filled nonzero (audit 801, F6).
    It also reads what follows ``//`` on a line as a comment, and applies class and id
    rules in its own order (``#id``, then each class in the order of the ``class``
    attribute), not by CSS's specificity and then the sheet's order: an element that one
    property is set on to different values by two of its class or id rules is refused
    too (:func:`_check_rule_conflict`), an element with one of them is not (Illustrator
    hides a layer by ``.st0{display:none}`` and shows its content by ``.st1``).

    Returns
    -------
    dict
        ``{property: {selector: value}}`` of the class and id rules that set one
        property to different values, for :func:`_check_rule_conflict`.
    """
    text = _CSS_COMMENT.sub("", text)
    for match in _CSS_TRANSFORM_DECLARATION.finditer(text):
        _check_css_transform(match.group(1).lower(), match.group(2), "a <style>", name)
    _collect_rules(text, name, rules)
    geometry = _GEOMETRY_DECLARATION.search(text)
    if geometry is None:
        return {}  # paint alone: ignored, however it is selected
    said = f"{name}: a <style> sets {geometry.group(1).lower()}"
    if late:
        raise ValueError(f"{said} after shapes it may apply to, which is not supported: "
                         "svgelements applies a stylesheet only to the elements after it; "
                         "put the <style> first")
    if "@" in text:
        raise ValueError(f"{said} and has an at-rule ({text[text.index('@'):][:30]!r}), "
                         "which is not supported: svgelements misreads at-rules; write the "
                         "rules without it")
    if "//" in text:
        raise ValueError(f"{said} and has '//' in it, which is not supported: svgelements "
                         "reads the rest of that line as a comment")
    by_class_or_id: dict[str, dict[str, str]] = {}  # property -> selector -> value
    for rule in _CSS_RULE.finditer(text):
        selectors, body = rule.groups()
        declared = [d for d in body.split(";") if _GEOMETRY_DECLARATION.match(d.strip())]
        if not declared:
            continue
        for declaration in declared:
            key, _, value = declaration.partition(":")
            for selector in selectors.split(","):
                if "." in selector or "#" in selector:
                    values = by_class_or_id.setdefault(key.strip().lower(), {})
                    values.setdefault(selector.strip(), " ".join(value.lower().split()))
        said = f"{name}: a <style> sets {declared[0].partition(':')[0].strip().lower()}"
        for selector in selectors.split(","):
            if not _APPLIED_SELECTOR.fullmatch(selector.strip()):
                raise ValueError(
                    f"{said} through the selector {selector.strip()[:40]!r}, which is not "
                    "supported: only plain tag, class and id selectors (path, .c, #i, "
                    "path.c, *) are applied; set it on the elements or by class"
                )
        if any("!important" in d for d in declared):
            raise ValueError(f"{said} with !important, which is not supported: svgelements "
                             "misreads it; write it without")
    return {key: values for key, values in by_class_or_id.items()
            if len(set(values.values())) > 1}


def _check_rule_conflict(conflicting: dict[str, dict[str, str]], attrib: dict, tag: str,
                         name: str) -> None:
    """Refuse an element that two class or id rules of a ``<style>`` set one property
    on to different values (``conflicting``, from :func:`_check_stylesheet`)."""
    own = {f"#{attrib['id']}"} if "id" in attrib else set()
    for cls in attrib.get("class", "").split():
        own.update((f".{cls}", f"{tag}.{cls}"))
    for key, values in conflicting.items():
        matched = [(selector, value) for selector, value in values.items() if selector in own]
        if len({value for _, value in matched}) > 1:
            (first, _), (second, _) = matched[:2]
            raise ValueError(
                f"{name}: {_described(tag, attrib)} has {key} set to different values by "
                f"{first[:40]!r} and {second[:40]!r} of a <style>, which is not supported: "
                "svgelements applies class and id rules in its own order, not by CSS's "
                "specificity and order; set it on the element"
            )


def _check_numbers(value: str, what: str, name: str) -> None:
    """Refuse a non-finite number in a geometry attribute: svgelements reads ``NaN`` in
    a ``<rect>``'s ``x`` as 0, drops a ``<polygon>`` vertex that has one, and takes
    ``1e400`` as infinity, so the shape was filled somewhere else, or not at all."""
    if (word := NOT_FINITE.search(value)) is not None:
        raise ValueError(f"{name}: {what}={value[:60]!r} has {word.group()!r}, which is "
                         "not a finite number")
    if (point := _TRAILING_POINT.search(value)) is not None:
        raise ValueError(f"{name}: {what}={value[:60]!r} has a number ending in its "
                         f"decimal point at position {point.start() + 1}, which Chromium "
                         "does not read (it drops the attribute); write 20 or 20.0")
    for number in _NUMBER.findall(value):
        # Only an exponent or a long run of digits can overflow a float.
        if (len(number) > 20 or "e" in number or "E" in number) \
                and not math.isfinite(float(number)):
            shown = number if len(number) <= 20 else number[:17] + "..."
            raise ValueError(f"{name}: {what}={value[:60]!r} has {shown!r}, which is not a "
                             "finite number")


def _check_nested_svg(attrib: dict, name: str) -> None:
    """A nested ``<svg>`` is read as a group: refuse one a renderer would draw
    otherwise, scaled (a ``viewBox``: svgelements scales about the wrong origin),
    moved or clipped (``x``, ``y``, ``width``, ``height`` other than their initial
    values)."""
    if "viewBox" in attrib:
        raise ValueError(f"{name}: a nested <svg> element with a viewBox is not supported")
    for key, initial in _NESTED_SVG_DEFAULTS.items():
        if key in attrib and not initial.fullmatch(attrib[key]):
            raise ValueError(f"{name}: a nested <svg> element with {key}={attrib[key][:30]!r} "
                             "is not supported: a renderer moves its content to its x and y "
                             "and clips it to its width and height")


def _transform_calls(lowered: str):
    """The function calls in a lower-cased ``transform``, as :data:`_TRANSFORM_CALL`
    matches, in time linear in its length."""
    # No call ends after the last ")": without this cut, each "(" after it (as in
    # "a(a(a(...") was followed to the end of the text in vain, once for each.
    return _TRANSFORM_CALL.finditer(lowered, 0, lowered.rfind(")") + 1)


def _check_transform(transform: str, name: str) -> None:
    """Every function svgelements will apply must have numbers, enough of them, as
    arguments: it reads an argument it cannot parse as missing, and then fails with
    "tuple index out of range" or applies a different transform."""
    if (point := _TRAILING_POINT.search(transform)) is not None:
        raise ValueError(f"{name}: transform {transform[:60]!r} has a number ending in its "
                         f"decimal point at position {point.start() + 1}, which Chromium "
                         "does not read (it ignores the transform); write 20 or 20.0")
    for call in _transform_calls(transform.lower()):
        function, args = call.groups()
        rest = re.sub(r"[\s,]+", "", _TRANSFORM_NUMBER.sub("", args))
        if rest:
            raise ValueError(f"{name}: transform {transform[:60]!r} has {rest[:20]!r} "
                             "where a finite number belongs")
        numbers = _TRANSFORM_NUMBER.findall(args)
        for number in numbers:
            value = _NUMBER.match(number).group()
            # Only an exponent or a long run of digits can overflow a float (1e400 was
            # read as infinity: "path data contains non-finite coordinates").
            if (len(value) > 20 or "e" in value) and not math.isfinite(float(value)):
                raise ValueError(f"{name}: transform {transform[:60]!r} has {number[:20]!r}, "
                                 "which is not a finite number")
        need = 6 if function == "matrix" else 1
        if len(numbers) < need:
            raise ValueError(f"{name}: transform {transform[:60]!r}: {function}() needs "
                             f"{'six numbers' if need == 6 else 'a number'}")


_FULL = re.compile(r"\s*100(?:\.0*)?%\s*")
# A number ending in its decimal point ("20."): valid in SVG 1.1's grammar, but Chromium
# reads none (audit 801 F10 in path data; audit 821 F4 in attributes and transforms).
_TRAILING_POINT = re.compile(r"[0-9]\.(?![0-9])")


def _viewport(attrib: dict) -> tuple[float, float] | None:
    """The root ``<svg>``'s user-space width and height: its ``viewBox``'s, else its
    ``width`` and ``height`` in plain numbers or px; None when not plain."""
    try:
        if "viewBox" in attrib:
            numbers = [float(v) for v in attrib["viewBox"].replace(",", " ").split()]
            return (numbers[2], numbers[3]) if len(numbers) == 4 else None
        return (float(attrib["width"].strip().removesuffix("px")),
                float(attrib["height"].strip().removesuffix("px")))
    except (KeyError, ValueError):
        return None


def _numbers(text: str, pixels: bool = False) -> list[float] | None:
    """The finite numbers of a ``viewBox`` (blanks or commas between them), or of a
    length in pixels when ``pixels`` (a number, or one ending in ``px``); None if
    ``text`` holds anything else."""
    parts = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    if pixels and len(parts) == 1:
        parts = [parts[0].removesuffix("px")]
    if not parts or not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    numbers = [float(part) for part in parts]
    return numbers if all(map(math.isfinite, numbers)) else None


def _use_size(attrib: dict) -> str | None:
    """A ``<use>``'s ``width`` or ``height`` as written (``'width="4"'``), unless
    absent or 100%, the size of the viewport it fills by default."""
    for key in ("width", "height"):
        if key in attrib and not _FULL.fullmatch(attrib[key]):
            return f"{key}={attrib[key][:20]!r}"
    return None


def _overflows(attrib: dict) -> bool:
    """Whether a ``<symbol>``'s ``overflow`` (attribute or ``style``) is ``visible``
    or ``auto``: it does not clip its content."""
    values = [attrib.get("overflow", "")]
    values += [value for key, colon, value in
               (d.partition(":") for d in attrib.get("style", "").split(";"))
               if colon and key.strip().lower() == "overflow"]
    return values[-1].strip().lower() in ("visible", "auto")


class _Tree:
    """The document's elements as flat lists (index = document order), each with the
    few facts the expansion depends on."""

    def __init__(self):
        self.own: list[int] = []  # approximate bytes of the element itself
        self.children: list[list[int]] = []
        self.refs: list[int | None] = []  # element a <use> expands to, else None
        self.hrefs: list[str | None] = []
        self.shape: list[bool] = []
        self.undrawn: list[bool] = []
        self.scaled: list[bool] = []  # a <symbol> with a viewBox
        self.clipping: list[bool] = []  # a <symbol> that clips (overflow not visible)
        self.sized: list[str | None] = []  # a <use>'s width or height, if not 100%
        self.parents: list[int | None] = []
        self.tags: list[str] = []
        self.transformed: list[bool] = []  # a transform attribute, or one in its style
        self.element_ids: list[str | None] = []
        self.classes: list[str | None] = []  # the class attribute
        self.displays: list[str | None] = []  # display: style, else the attribute
        self.rules: list[Rule] = []  # of stylesheets, judged element by element
        self.percentages: list[int] = []  # shapes with a geometry attribute in %
        self.hidden: list[bool] = []  # inside (or itself) a container never drawn
        self.ids: dict[str, int] = {}
        self.clipped: list[tuple[int, str, str, str]] = []  # (element, key, value, said)
        # The attributes of each <rect>, <clipPath>, <use> and <symbol>.
        self.rects: dict[int, dict] = {}
        self.viewport: tuple[float, float] | None = None  # the root's user-space size
        # The root's transforms (attribute, style, stylesheet) and transform-origins.
        self.root_transforms: list[str] = []
        self.root_origins: list[str] = []
        self.drawn = 0  # shapes outside <defs>, <clipPath> and <pattern>, unexpanded
        self.inherited = 0  # attribute copies svgelements makes, unexpanded

    @classmethod
    def read(cls, data: str | bytes, name: str) -> _Tree:
        tree = cls()
        own, children, hrefs = tree.own, tree.children, tree.hrefs
        ids: dict[str, int] = {}
        stack: list[int] = []
        hidden: list[bool] = [False]  # per open element: inside an undrawn container
        carried: list[int] = [0]  # per open element: attributes it and its ancestors have
        declared = 0  # namespace declarations of the element about to start
        drawables = 0  # shapes and <use> started so far
        drawables_before: list[int] = []  # per open element: shapes and <use> before it
        root_is_svg = False
        # property -> {selector: value} of class and id rules that disagree
        conflicting: dict[str, dict[str, str]] = {}
        source = io.StringIO(data) if isinstance(data, str) else io.BytesIO(data)
        try:
            for event, elem in iterparse(source, events=("start", "end", "start-ns")):
                if event == "start-ns":
                    declared += 1
                    continue
                if event == "end":
                    # Text is complete only at the end; <style> and <text> carry it.
                    own[stack.pop()] += len(elem.text or "")
                    if elem.text and elem.tag.rpartition("}")[2] == "style":
                        for key, values in _check_stylesheet(
                                elem.text, name, late=drawables_before[-1] > 0,
                                rules=tree.rules).items():
                            conflicting.setdefault(key, {}).update(values)
                    hidden.pop()
                    carried.pop()
                    drawables_before.pop()
                    elem.clear()  # keep the pass's memory small: the facts are stored
                    continue
                if len(stack) >= MAX_NESTING:
                    raise ValueError(f"{name}: elements are nested more than {MAX_NESTING} "
                                     "deep; that many levels cannot be parsed")
                index = len(own)
                if stack:
                    children[stack[-1]].append(index)
                stack.append(index)
                tag = elem.tag
                if tag.startswith(_SVG_NS_PREFIX):
                    tag = tag[len(_SVG_NS_PREFIX) + 1:]
                attrib = elem.attrib
                carried.append(carried[-1] + len(attrib) + declared)
                declared = 0
                drawables_before.append(drawables)
                drawables += tag in _SHAPE_TAGS or tag == "use"
                tree.inherited += carried[-1]
                if tree.inherited > MAX_INHERITED:
                    raise ValueError(
                        f"{name}: its elements would carry more than {MAX_INHERITED} "
                        "attributes with those they inherit, more than can be parsed"
                    )
                if not _PROPERTY_ATTRIBUTES.isdisjoint(attrib):
                    tree.clipped += [(index, key, value, _described(tag, attrib))
                                     for key, value in _check_properties(attrib, tag, name)]
                if conflicting and ("class" in attrib or "id" in attrib):
                    _check_rule_conflict(conflicting, attrib, tag, name)
                if not _CHECKED_ATTRIBUTES.isdisjoint(attrib):
                    _check_attributes(attrib, tag, name, root=index == 0)
                # (Under a root that is not <svg>, the document is refused as such.)
                if tag == "svg" and index > 0 and root_is_svg:
                    _check_nested_svg(attrib, name)
                elif index == 0:
                    root_is_svg = tag == "svg"
                # Roughly the element's bytes as written ('<tag a="v"/>'), so that a
                # document without <use> weighs at most its own size.
                size = 3 + len(tag)
                for key, value in attrib.items():
                    size += len(value) + 4 + len(key if key[0] != "{" else key.rpartition("}")[2])
                own.append(size)
                children.append([])
                tree.parents.append(stack[-2] if len(stack) > 1 else None)
                tree.tags.append(tag)
                is_shape = tag in _SHAPE_TAGS
                undrawn = tag in _UNDRAWN_TAGS
                style = style_declarations(attrib["style"]) if "style" in attrib else {}
                if not _CSS_TRANSFORM_KEYS.isdisjoint(style):
                    for key in _CSS_TRANSFORM_KEYS.intersection(style):
                        _check_css_transform(key, style[key], _described(tag, attrib), name)
                tree.transformed.append("transform" in attrib or "transform" in style)
                tree.element_ids.append(attrib.get("id"))
                tree.classes.append(attrib.get("class"))
                tree.displays.append(style.get("display", attrib.get("display")))
                if is_shape and any("%" in value for key, value in (*attrib.items(),
                                    *style.items()) if key in _NUMERIC_ATTRIBUTES):
                    tree.percentages.append(index)
                tree.hidden.append(hidden[-1] or undrawn)
                if tag in ("rect", "clipPath", "use", "symbol"):
                    tree.rects[index] = dict(attrib)
                if index == 0:
                    tree.viewport = _viewport(attrib)
                    for given in (attrib, style):
                        if "transform" in given:
                            tree.root_transforms.append(given["transform"])
                        if "transform-origin" in given:
                            tree.root_origins.append(given["transform-origin"])
                tree.shape.append(is_shape)
                tree.undrawn.append(undrawn)
                tree.scaled.append(tag == "symbol" and "viewBox" in attrib)
                tree.clipping.append(tag == "symbol" and not _overflows(attrib))
                tree.sized.append(_use_size(attrib) if tag == "use" else None)
                if is_shape and not hidden[-1]:
                    tree.drawn += 1
                hidden.append(hidden[-1] or undrawn)
                # svgelements: the last element with an id wins it; a <use> takes
                # "href" over "xlink:href" and drops the first character ("#").
                if "id" in attrib:
                    ids[attrib["id"]] = index
                hrefs.append(attrib.get("href", attrib.get(_XLINK_HREF)) if tag == "use"
                             else None)
        except (ParseError, LookupError, UnicodeError) as exc:  # LookupError: encoding
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"{name} is not a valid SVG document: {reason}") from None
        tree.refs = [None if h is None else ids.get(h[1:]) for h in hrefs]
        tree.ids = ids
        tree.check_symbol_uses(name)
        tree.check_percentages(name)
        tree.apply_rules()
        tree.check_clipping(name)
        tree.check_root_transform(name)
        return tree

    def check_root_transform(self, name: str) -> None:
        """Refuse a transform on the root ``<svg>`` that turns, scales or skews, unless
        a ``transform-origin`` is given with it (one other than 0 0 is refused by
        :meth:`check_clipping`).

        The outermost ``<svg>`` has a CSS box, so its transform is applied about the
        box's centre (CSS's initial ``transform-origin``, 50% 50%), where svgelements
        applies it about 0,0: ``rotate(90)`` on a 30 x 20 image drew 25 pixels in
        Chromium, on the image, and none here. A translation moves alike about any
        origin.
        """
        if self.root_origins:
            return
        for transform in self.root_transforms:
            if not _TRANSLATION_ONLY.fullmatch(transform):
                raise ValueError(
                    f"{name}: the root <svg> has transform {transform.strip()[:40]!r}, which "
                    "is not supported: a renderer turns and scales the image about its "
                    "centre, svgelements about 0,0; put the transform on a <g> inside it, "
                    "or give transform-origin: 0 0"
                )

    def check_percentages(self, name: str) -> None:
        """Refuse a shape inside a ``<symbol>`` sized in ``%``: the percentage is of the
        viewport each ``<use>`` of the symbol makes, which the rasteriser does not
        track (it takes percentages of the root's)."""
        for index in self.percentages:
            if any(self.tags[i] == "symbol" for i in self._ancestry(index)):
                raise ValueError(
                    f"{name}: a <{self.tags[index]}> inside a <symbol> with a size in % is "
                    "not supported: the percentage is of the size of each <use> of the "
                    "symbol; give it in pixels"
                )

    def apply_rules(self) -> None:
        """Give each element the ``display``, ``transform``, and the properties of
        :data:`_UNAPPLIED_PROPERTIES` that a stylesheet's plain rules set on it, unless
        its ``style`` attribute sets them itself (which wins, as in CSS)."""
        if not self.rules:
            return
        rules = by_selector(self.rules)
        for index, tag in enumerate(self.tags):
            attrib = {"id": self.element_ids[index]} if self.element_ids[index] else {}
            if self.classes[index]:
                attrib["class"] = self.classes[index]
            matched = selectors_of(tag, attrib)
            if transforms := sheet_values(rules, matched, "transform"):
                self.transformed[index] = True
                if index == 0:
                    self.root_transforms += transforms
            if index == 0:
                self.root_origins += sheet_values(rules, matched, "transform-origin")
            if self.displays[index] is None and (shown := sheet_values(
                    rules, matched, "display")):
                # Two rules that disagree are refused (_check_rule_conflict) unless a
                # tag or * rule is one: then the element is taken as drawn.
                self.displays[index] = shown.pop() if len(shown) == 1 else "inline"
            for key in _UNAPPLIED_PROPERTIES:
                self.clipped += [(index, key, value, "a <style>")
                                 for value in sheet_values(rules, matched, key)]

    def check_clipping(self, name: str) -> None:
        """Refuse a ``clip-path`` or ``mask`` that changes what a renderer draws, and a
        ``transform-origin`` or ``transform-box`` that changes where.

        svgelements ignores all four. Not refused: one on an element that is never drawn
        (inside ``<defs>`` or another container drawn only by reference, with no
        ``<use>`` of it or of an element around it, or with ``display`` ``none`` on it
        or on an element around it that no ``<use>`` draws from inside); a
        ``clip-path`` whose ``<clipPath>`` is one rectangle covering the whole image
        (or a ``<use>`` of one, as Illustrator writes it), in the user space of an
        element that no transform moves (Figma wraps every frame so; audit 821 F2); and
        a ``transform-origin`` or ``transform-box`` on an element without a transform,
        where it changes nothing.
        """
        used = {ref for ref in self.refs if ref is not None}
        for index, key, value, said in self.clipped:
            if self._undrawn(index, used) or self._undisplayed(index, used):
                continue
            if key == "clip-path" and _URL_REFERENCE.fullmatch(value) \
                    and self._no_clip(index, value):
                continue
            if key in _ORIGIN_PROPERTIES and not self.transformed[index]:
                continue
            raise ValueError(f"{name}: {said} has {key} {value[:40]!r}, which is not "
                             f"supported: {_UNAPPLIED_PROPERTIES[key]}")

    def _ancestry(self, index: int):
        while index is not None:
            yield index
            index = self.parents[index]

    def _undrawn(self, index: int, used: set[int]) -> bool:
        return self.hidden[index] and used.isdisjoint(self._ancestry(index))

    def _undisplayed(self, index: int, used: set[int]) -> bool:
        """Whether ``display: none`` keeps the element from being drawn: set on it or
        on an element around it, with no ``<use>`` of an element in between (a
        ``<use>`` of the hidden element itself draws nothing: the copy is hidden too)."""
        for i in self._ancestry(index):
            if (self.displays[i] or "").strip().lower() == "none":
                return True
            if i in used:
                return False
        return False

    def _no_clip(self, index: int, value: str) -> bool:
        target = self.ids.get(_URL_REFERENCE.fullmatch(value).group(1))
        if target is None or self.tags[target] != "clipPath" or self.viewport is None:
            return False
        units = self.rects[target].get("clipPathUnits", "userSpaceOnUse").strip()
        if units != "userSpaceOnUse":  # the rectangle is then in the element's own box
            return False
        if any(self.transformed[i] for i in self._ancestry(index) if i != 0):
            return False
        children = self.children[target]
        if len(children) != 1 or self.transformed[target]:
            return False
        shape = children[0]
        if self.tags[shape] == "use" and not self.transformed[shape] and all(
                _ZERO_POSITION.fullmatch(self.rects[shape].get(key, "0")) for key in "xy"):
            # Illustrator's clip: a <use> of a <rect> in <defs>, drawn where it stands.
            shape = self.refs[shape]
        rect = self.rects.get(shape) if shape is not None and self.tags[shape] == "rect" \
            else None
        if rect is None or self.transformed[shape] or self.children[shape]:
            return False
        width, height = self.viewport
        try:
            x0, y0 = float(rect.get("x", 0)), float(rect.get("y", 0))
            x1, y1 = x0 + float(rect["width"]), y0 + float(rect["height"])
        except (KeyError, ValueError):  # a percentage or a unit: not judged, refused
            return False
        return x0 <= 0 and y0 <= 0 and x1 >= width and y1 >= height

    def check_symbol_uses(self, name: str) -> None:
        """Refuse a ``<use>`` of a ``<symbol>`` that has a ``viewBox``, unless the
        ``<use>`` gives a ``width`` and ``height`` equal to the ``viewBox``'s, in
        pixels, and an ``x`` and ``y`` in pixels: a renderer scales the symbol's content
        from its ``viewBox`` to the ``<use>``'s size (100% when not given), svgelements
        draws it unscaled (a 10-unit square in a symbol drawn 20 wide filled 100 pixels,
        where Chromium filled 400). At the ``viewBox``'s own size the content is only
        moved, as Illustrator exports a symbol: ``place_symbols`` (``_symbols``) moves
        it, and clips it to the ``viewBox`` as a renderer does (a symbol without a
        ``viewBox`` to the ``<use>``'s size, which must then be in pixels or 100%)."""
        for index, (ref, href, sized) in enumerate(zip(self.refs, self.hrefs, self.sized,
                                                       strict=True)):
            if ref is not None and self.scaled[ref]:
                viewbox = _numbers(self.rects[ref].get("viewBox", ""))
                if viewbox is None or len(viewbox) != 4 or min(viewbox[2:]) <= 0:
                    raise ValueError(f"{name}: <symbol id={href[1:]!r}> has the viewBox "
                                     f"{self.rects[ref]['viewBox'][:40]!r}, which is not four "
                                     "numbers with a positive width and height")
                use = self.rects[index]
                placed = [_numbers(use.get(key, "0"), pixels=True) for key in ("x", "y")]
                size = [_numbers(use.get(key, ""), pixels=True) for key in ("width", "height")]
                if None in placed or size != [[viewbox[2]], [viewbox[3]]]:
                    raise ValueError(
                        f"{name}: a <use> of <symbol id={href[1:]!r}>, which has a viewBox, "
                        "is not supported unless the <use> gives the viewBox's width and "
                        f"height ({viewbox[2]:g} and {viewbox[3]:g}) in pixels, and its x and "
                        "y in pixels: its content would not be scaled to the <use>'s size "
                        "as a renderer scales it; draw the shapes without a symbol"
                    )
                continue  # moved and clipped by place_symbols
            # A symbol clips its content to the <use>'s box (4x4: Chromium drew 16
            # pixels of a 10x10 square), which place_symbols marks for the rasteriser:
            # refused where the box's size is not in pixels or 100%.
            use = self.rects[index] if ref is not None else {}
            if ref is not None and self.clipping[ref] and sized is not None and any(
                    not _FULL.fullmatch(use[key]) and _numbers(use[key], pixels=True) is None
                    for key in ("width", "height") if key in use):
                raise ValueError(
                    f"{name}: a <use> of <symbol id={href[1:]!r}> with {sized} is not "
                    "supported: a renderer clips the symbol's content to that size; give "
                    "it in pixels, or give the symbol overflow=\"visible\""
                )

    def check_expansion(self, name: str, max_bytes: int) -> None:
        """Refuse the document if expanding its ``<use>`` elements is unbounded or
        beyond the limits; every element is visited once (depth-first, iteratively, so
        that deep documents cannot exhaust the stack), its totals built from those of
        its children and of the element it refers to."""
        n = len(self.own)
        if n == 0:
            return
        size = [0] * n  # bytes, expanded
        shapes = [0] * n  # shapes drawn, expanded
        uses = [0] * n  # longest chain of <use> references
        depth = [0] * n  # element levels, expanded
        state = bytearray(n)  # 0 unseen, 1 on the current path, 2 done
        stack = [(0, self._deps(0))]
        state[0] = 1
        while stack:
            i, deps = stack[-1]
            j = next(deps, None)
            if j is not None:
                if state[j] == 1:
                    raise ValueError(
                        f"{name}: <use> of {self.hrefs[self._cycle_use(stack, j)][1:]!r} "
                        "refers to an element that contains it: a reference cycle"
                    )
                if state[j] == 0:
                    state[j] = 1
                    stack.append((j, self._deps(j)))
                continue
            stack.pop()
            state[i] = 2
            total, drawn, chain, levels = self.own[i], int(self.shape[i]), 0, 0
            for k in self._dep_list(i):
                total += size[k]
                drawn += 0 if self.undrawn[k] else shapes[k]
                chain = max(chain, uses[k])
                levels = max(levels, depth[k])
            if self.refs[i] is not None:
                chain += 1
            # Capped just past the limits, so that a bomb's totals stay small numbers.
            size[i] = min(total, max_bytes + 1)
            shapes[i] = min(drawn, MAX_SHAPES + 1)
            uses[i], depth[i] = chain, levels + 1
            # Every element is inside the root, so its expansion is part of the
            # root's: stop at the first one beyond a limit.
            if size[i] > max_bytes:
                raise ValueError(
                    f"{name}: its <use> elements expand it to more than {max_bytes} bytes "
                    "of SVG, more than can be parsed"
                )
            if chain > MAX_USE_NESTING:
                raise ValueError(
                    f"{name}: <use> elements refer to each other more than "
                    f"{MAX_USE_NESTING} deep (a <use> of an element holding a <use>...); "
                    f"at most {MAX_USE_NESTING} levels can be parsed"
                )
            if depth[i] > MAX_NESTING:
                raise ValueError(f"{name}: elements are nested more than {MAX_NESTING} deep "
                                 "once its <use> elements are expanded; that many levels "
                                 "cannot be parsed")
        if shapes[0] > MAX_SHAPES:
            raise ValueError(_too_many_shapes(name))

    def _dep_list(self, i: int) -> list[int]:
        ref = self.refs[i]
        return self.children[i] if ref is None else [*self.children[i], ref]

    def _deps(self, i: int):
        return iter(self._dep_list(i))

    def _cycle_use(self, stack: list, j: int) -> int:
        """The ``<use>`` on the current path whose reference closes the cycle at ``j``."""
        on_path = [i for i, _ in stack]
        for i in reversed(on_path[on_path.index(j):]):
            if self.refs[i] is not None:
                return i
        return on_path[-1]  # pragma: no cover - a cycle always passes through a <use>
