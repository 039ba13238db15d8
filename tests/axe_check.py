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
