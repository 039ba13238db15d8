"""axe-core, Deque's accessibility engine, run in the page a selenium driver shows.

Shared by the browser tests of both services (``from axe_check import
assert_accessible``). The JavaScript is the one the pinned ``axe-playwright-python``
wheel ships; nothing is fetched.
"""

from __future__ import annotations

import importlib.resources

#: Dash's dropdown puts an ``aria-hidden`` input in the tab order whose only job is to
#: pass the focus on, at once, to the dropdown's labelled button (dash's
#: ``async-dropdown.js``); axe sees the input, not the hand-over, which
#: ``tests/annotation_client/test_accessibility.py`` checks by hand.
DROPDOWN_FOCUS_TARGET = ".dash-dropdown-focus-target"


def _axe_source() -> str:
    return (importlib.resources.files("axe_playwright_python") / "axe.min.js").read_text()


def violations(driver) -> list[dict]:
    """axe-core's violations (every impact) on the page as it is, less the dropdowns'
    hand-over inputs; an error of axe itself is a violation too."""
    driver.execute_script(_axe_source())
    driver.set_script_timeout(60)
    found = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        "  .then(function (r) { done(r.violations); },"
        "        function (e) { done([{id: 'axe-error', help: String(e), nodes: []}]); });"
    )
    left = []
    for violation in found:
        nodes = violation["nodes"]
        if violation["id"] == "aria-hidden-focus":
            nodes = [n for n in nodes if not n["html"].startswith(
                f'<input class="{DROPDOWN_FOCUS_TARGET[1:]}"')]
        if nodes or violation["id"] == "axe-error":
            left.append(dict(violation, nodes=nodes))
    return left


def assert_accessible(driver, where: str) -> None:
    """Fail with each violation's rule, impact, help and first elements."""
    found = violations(driver)
    assert not found, f"{where}:\n" + "\n".join(
        f"{v['id']} ({v.get('impact')}): {v['help']} — "
        + "; ".join(n["html"][:120] for n in v["nodes"][:3])
        for v in found
    )


#: For each element given (CSS selectors), the contrast of its text with what is behind
#: it, from the computed styles: ``[selector, html, ratio, ratio required]``, or nothing
#: for an element that shows no text of its own (SVG text, an invisible file input).
#: The background is the element's and its ancestors' background colours, laid one over
#: the other down to the first opaque one (white if none); a colour with alpha is laid
#: over what is behind it.
_CONTRAST = r"""
function rgba(text) {
    var m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) { return null; }
    var p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function over(top, under) {
    var a = top[3];
    return [0, 1, 2].map(function (i) { return top[i] * a + under[i] * (1 - a); }).concat([1]);
}
function luminance(c) {
    var l = c.slice(0, 3).map(function (v) {
        v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
}
return arguments[0].map(function (selector) {
    var el = document.querySelector(selector);
    if (!el || el instanceof SVGElement) { return null; }
    var own = Array.prototype.some.call(el.childNodes, function (n) {
        return n.nodeType === 3 && n.textContent.trim();
    });
    var opacity = 1, layers = [], opaque = false;
    for (var e = el; e; e = e.parentElement) {
        var s = getComputedStyle(e);
        opacity *= parseFloat(s.opacity);
        var bg = rgba(s.backgroundColor);
        if (!opaque && bg && bg[3] > 0) { layers.push(bg); opaque = bg[3] === 1; }
    }
    if (!own || opacity < 0.1) { return null; }
    var back = [255, 255, 255, 1];
    for (var i = layers.length - 1; i >= 0; i--) { back = over(layers[i], back); }
    var style = getComputedStyle(el);
    var fore = over(rgba(style.color), back);
    var a = luminance(fore), b = luminance(back);
    var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    var required = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    return [selector, el.outerHTML.slice(0, 120), ratio, required];
}).filter(Boolean);
"""


def incomplete_contrast(driver) -> list[list]:
    """The text axe-core left *incomplete* for colour contrast (it could not tell the
    background: a transparent element over it, a background image), each as
    ``[selector, html, ratio, ratio required]`` by :data:`_CONTRAST`."""
    driver.execute_script(_axe_source())
    driver.set_script_timeout(60)
    targets = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: ['color-contrast'], resultTypes: ['incomplete']})"
        "  .then(function (r) { done([].concat.apply([], r.incomplete.map(function (v) {"
        "    return v.nodes.map(function (n) { return n.target; }); }))); },"
        "        function (e) { done([]); });"
    )
    # A target of more than one selector is inside a frame or a shadow root.
    return driver.execute_script(_CONTRAST, [t[0] for t in targets if len(t) == 1])


def assert_incomplete_contrast(driver, where: str) -> None:
    """Fail for any text axe-core left undecided whose contrast is below WCAG AA."""
    low = [c for c in incomplete_contrast(driver) if c[2] < c[3]]
    assert not low, f"{where}: contrast below WCAG AA:\n" + "\n".join(
        f"{ratio:.2f}:1 < {required}:1 — {html}" for _, html, ratio, required in low)
