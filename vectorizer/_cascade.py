"""Which of a stylesheet's plain rules, and of a ``style`` attribute's declarations,
set a property on an element: the part of CSS's cascade that ``_svgcheck`` judges.

Only the selectors svgelements applies are matched here (``*``, a tag, ``#id``,
``.class``, ``tag.class``); ``_svgcheck`` refuses a stylesheet that sets a property it
judges through any other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    """One declaration of a stylesheet: ``selector { key: value }``, the selector
    stripped, the key lower-cased, the value stripped of ``!important``."""

    selector: str
    key: str
    value: str


def declarations(text: str) -> list[tuple[str, str]]:
    """The ``key: value`` declarations of a ``style`` attribute or a rule's body, in
    order (keys lower-cased, values stripped of blanks and ``!important``)."""
    found = []
    for declaration in text.split(";"):
        key, colon, value = declaration.partition(":")
        if colon:
            found.append((key.strip().lower(), value.replace("!important", "").strip()))
    return found


def style_declarations(style: str) -> dict[str, str]:
    """:func:`declarations` as ``{key: value}``, the last of a key winning, as in CSS."""
    return dict(declarations(style))


def selectors_of(tag: str, attrib: dict) -> frozenset[str]:
    """The plain selectors an element with ``tag`` and attributes ``attrib`` matches."""
    own = {"*", tag}
    if "id" in attrib:
        own.add(f"#{attrib['id']}")
    for cls in attrib.get("class", "").split():
        own.update((f".{cls}", f"{tag}.{cls}"))
    return frozenset(own)


def by_selector(rules: list[Rule]) -> dict[str, list[tuple[int, Rule]]]:
    """``rules`` grouped by selector, each with its place in the sheet, for
    :func:`sheet_values`."""
    index: dict[str, list[tuple[int, Rule]]] = {}
    for at, rule in enumerate(rules):
        index.setdefault(rule.selector, []).append((at, rule))
    return index


def sheet_values(index: dict[str, list[tuple[int, Rule]]], selectors: frozenset[str],
                 key: str) -> list[str]:
    """The values that the rules of ``index`` (:func:`by_selector`) matching
    ``selectors`` give property ``key``, each once, in the sheet's order: in time of the
    element's few selectors and the rules they match, not of the whole sheet (a sheet of
    8,000 class rules over 8,000 elements took 10 s when each element was matched
    against every rule)."""
    # In the sheet's order, not a set's: the order of a set of strings is the process's
    # hash seed's, and a refusal named whichever value came first, another at each start.
    found = sorted((at, rule.value) for selector in selectors
                   for at, rule in index.get(selector, ()) if rule.key == key)
    return list(dict.fromkeys(value for _, value in found))
