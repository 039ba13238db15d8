"""Tests for the Learn page (``/learn``), the breast self-examination guide.

The unit tests build the real app with ``annotation_client.create_app`` (so the
page is registered and loaded exactly as in production) and inspect the
component tree its ``layout()`` returns. The browser test serves that app to
headless chromium and checks what a reader on a desktop and on a phone sees.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import dash
import pytest
from dash import html
from dash.development.base_component import Component
from dash.testing.wait import until

import annotation_client

ASSETS_DIR = Path(annotation_client.__file__).resolve().parent / "assets"
SVG_NS = "{http://www.w3.org/2000/svg}"

# The sections the issue asks for, as patterns that a heading must match.
REQUIRED_HEADINGS = {
    "when to examine": r"when to examine",
    "looking": r"\blook",
    "feeling": r"\bfeel",
    "lying down and standing": r"lying down.*standing|standing.*lying down",
    "changes to report": r"changes",
    "risk factors": r"risk factors",
    "why early detection matters": r"early detection",
    "when to see a doctor": r"see a doctor",
    "references": r"references",
}

# Health organisations whose facts the page uses, by the site a citation must link to.
REQUIRED_SOURCES = {
    "American Cancer Society": "cancer.org",
    "National Breast Cancer Foundation": "nationalbreastcancer.org",
    "NHS": "nhs.uk",
    "World Health Organization": "who.int",
    "Breastcancer.org": "breastcancer.org",
    "CDC": "cdc.gov",
    "Mayo Clinic": "mayoclinic.org",
    "USPSTF": "uspreventiveservicestaskforce.org",
}

# Facts the guide must state (lower-case fragments of the page text).
REQUIRED_CONTENT = {
    "timing after a period": "after your period ends",
    "timing after menopause": "same day every month",
    "breast awareness": "breast aware",
    "mirror": "mirror",
    "hands on hips": "hands on your hips",
    "arms raised": "arms raised",
    "leaning forward": "leaning forward",
    "finger pads": "pads",
    "three middle fingers": "three middle fingers",
    "light pressure": "light",
    "medium pressure": "medium",
    "firm pressure": "firm",
    "search pattern": "up-and-down strips",
    "collarbone to bra line": "collarbone",
    "bra line": "bra line",
    "armpit": "armpit",
    "breastbone": "breastbone",
    "shower": "shower",
    "lump": "lump",
    "dimpling": "dimpling",
    "nipple inversion": "turned inwards",
    "bloody discharge": "bloody",
    "swelling": "swelling",
    "redness": "redness",
    "age": "getting older",
    "family history": "family history",
    "brca": "brca",
    "dense breasts": "dense breasts",
    "radiation": "radiation",
    "hormones": "hormone",
    "alcohol": "alcohol",
    "obesity after menopause": "obesity after menopause",
    "inactivity": "physically active",
    "screening mammography": "screening mammogram",
    "evidence on structured bse": "recommended against teaching",
    "self-exam complements screening": "complements screening",
    # The summary must not prescribe what the evidence section says is not advised.
    "the monthly exam is a choice": "if you choose a regular self-exam, look and feel",
    "an infection that does not settle": "inflammatory breast cancer",
}


# --------------------------------------------------------------------------- helpers


def _walk(node):
    """Every Dash component in a layout tree, depth first."""
    if isinstance(node, Component):
        yield node
        yield from _walk(getattr(node, "children", None))
    elif isinstance(node, list | tuple):
        for child in node:
            yield from _walk(child)


def _text(node) -> str:
    """The visible text of a layout tree, as the browser would concatenate it."""
    if node is None:
        return ""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list | tuple):
        return "".join(_text(child) for child in node)
    if isinstance(node, Component):
        parts = [_text(getattr(node, "children", None))]
        # Accordion items keep their heading in `title`, not in `children`.
        title = getattr(node, "title", None)
        if type(node).__name__ == "AccordionItem" and isinstance(title, str):
            parts.insert(0, title + " ")
        return "".join(parts)
    return ""


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _ids(tree) -> set[str]:
    return {c.id for c in _walk(tree) if isinstance(getattr(c, "id", None), str)}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def learn_entry(tmp_path_factory) -> dict:
    """The page-registry entry of /learn in a freshly built annotation client."""
    data_dir = tmp_path_factory.mktemp("learn-data")
    annotation_client.create_app({"DATA_DIR": str(data_dir)})
    entries = [page for page in dash.page_registry.values() if page["path"] == "/learn"]
    assert len(entries) == 1, f"expected one page at /learn, found {len(entries)}"
    return entries[0]


@pytest.fixture(scope="module")
def page(learn_entry):
    """The component tree served at /learn (a query string is passed, as Dash would)."""
    return learn_entry["layout"](utm_source="test")


@pytest.fixture(scope="module")
def page_text(page) -> str:
    return _normalise(_text(page))


# --------------------------------------------------------------------------- unit tests


def test_page_is_registered_at_learn_with_its_title(learn_entry):
    assert learn_entry["name"] == "Learn"
    assert learn_entry["title"] == "Breast self-examination — SonoTrace"
    assert callable(learn_entry["layout"])


def test_layout_has_every_required_section_heading(page):
    h1 = [_normalise(_text(c)) for c in _walk(page) if isinstance(c, html.H1)]
    assert h1 == ["breast self-examination"]
    headings = [_normalise(_text(c)) for c in _walk(page) if isinstance(c, html.H2)]
    missing = [
        name
        for name, pattern in REQUIRED_HEADINGS.items()
        if not any(re.search(pattern, heading) for heading in headings)
    ]
    assert not missing, f"no heading for {missing}; headings are {headings}"


def test_table_of_contents_links_every_section(page):
    sections = [c for c in _walk(page) if isinstance(c, html.Section)]
    assert len(sections) >= len(REQUIRED_HEADINGS)
    toc = next(c for c in _walk(page) if getattr(c, "id", None) == "learn-toc")
    toc_links = {c.href: _normalise(_text(c)) for c in _walk(toc) if isinstance(c, html.A)}
    for section in sections:
        heading = next(c for c in _walk(section) if isinstance(c, html.H2))
        assert f"#{section.id}" in toc_links, f"section {section.id} is not in the contents"
        assert toc_links[f"#{section.id}"] == _normalise(_text(heading))
    # ...and the contents point at nothing else.
    assert set(toc_links) == {f"#{s.id}" for s in sections}


def test_page_states_the_required_facts(page_text):
    missing = [name for name, fragment in REQUIRED_CONTENT.items() if fragment not in page_text]
    assert not missing, f"the guide does not mention: {missing}"


def test_disclaimer_says_educational_not_medical_advice(page):
    disclaimer = next(c for c in _walk(page) if getattr(c, "id", None) == "learn-disclaimer")
    text = _normalise(_text(disclaimer))
    assert "not medical advice" in text
    assert "educational" in text
    # It comes before the guide itself, so nobody reads the steps without it.
    order = [getattr(c, "id", None) for c in _walk(page)]
    assert order.index("learn-disclaimer") < order.index("learn-when")


def test_references_link_to_the_cited_health_organisations(page):
    references = next(c for c in _walk(page) if getattr(c, "id", None) == "learn-references")
    links = [c for c in _walk(references) if isinstance(c, html.A)]
    hosts = {urlparse(link.href).hostname for link in links}
    for organisation, domain in REQUIRED_SOURCES.items():
        assert any(h == domain or h.endswith("." + domain) for h in hosts), (
            f"no reference to {organisation} ({domain}); linked hosts: {sorted(hosts)}"
        )
    for link in links:
        assert urlparse(link.href).scheme == "https", link.href
        assert link.target == "_blank"
        assert "noopener" in link.rel


def test_every_citation_resolves_and_every_reference_is_cited(page):
    ids = _ids(page)
    references = next(c for c in _walk(page) if getattr(c, "id", None) == "learn-references")
    reference_ids = {c.id for c in _walk(references) if isinstance(c, html.Li) and c.id}
    cited = {
        c.href[1:]
        for c in _walk(page)
        if isinstance(c, html.A) and isinstance(c.href, str) and c.href.startswith("#learn-ref-")
    }
    assert cited, "the page cites nothing inline"
    assert cited <= ids, f"citations to missing references: {cited - ids}"
    assert reference_ids <= cited, f"references never cited: {reference_ids - cited}"
    # A link named "9" says nothing in a screen reader's list of links.
    citations = [c for c in _walk(page) if isinstance(c, html.A)
                 and "learn-cite" in (getattr(c, "className", None) or "")]
    assert len(citations) >= len(reference_ids)
    for link in citations:
        label = link.to_plotly_json()["props"]["aria-label"]
        assert label.startswith(f"Reference {link.children}: ") and len(label) > 15, label


def test_each_organisations_advice_on_self_exams_cites_that_organisation(page):
    # "Both encourage breast awareness" credited the USPSTF, cited to its 2024 page, which
    # says nothing of self-examination; its 2009 advice was cited to the 2024 page too
    # (audit helper-503, 6). Each claim is followed by its own citation.
    paragraph = next(c for c in _walk(page) if isinstance(c, html.P)
                     and "in 2009 the USPSTF" in _text(c))
    from annotation_client.pages import learn  # registered once an app exists (page)

    parts = paragraph.children
    refs = {ref.key: ref for ref in learn.REFERENCES}

    def cited_after(fragment: str) -> set[str]:
        at = next(i for i, part in enumerate(parts)
                  if isinstance(part, str) and fragment in part)
        sup = next(p for p in parts[at + 1:] if isinstance(p, html.Sup))
        return {a.href.removeprefix("#learn-ref-") for a in _walk(sup) if isinstance(a, html.A)}

    assert cited_after("in 2009 the USPSTF") == {"uspstf-2009"}
    assert "2009" in refs["uspstf-2009"].title
    assert cited_after("reporting changes promptly") == {"acs", "nhs"}
    assert "USPSTF" not in _text(paragraph).split("in 2009 the USPSTF")[1]


def _page_images(page) -> list[html.Img]:
    return [c for c in _walk(page) if isinstance(c, html.Img)]


def test_diagrams_have_alt_text_and_existing_assets(page):
    images = _page_images(page)
    assert len({img.src for img in images}) >= 4, "expected at least four diagrams"
    prefix = dash.get_asset_url("learn/")
    for img in images:
        assert img.src.startswith(prefix), f"{img.src} is not served from assets/learn/"
        assert img.src.endswith(".svg")
        path = ASSETS_DIR / "learn" / img.src[len(prefix) :]
        assert path.is_file(), f"{img.src} has no file at {path}"
        assert isinstance(img.alt, str) and len(img.alt.split()) >= 5, f"weak alt: {img.alt!r}"


def _svg_files(page) -> list[Path]:
    prefix = dash.get_asset_url("learn/")
    return sorted({ASSETS_DIR / "learn" / img.src[len(prefix) :] for img in _page_images(page)})


def test_diagrams_are_well_formed_self_contained_svg(page):
    for path in _svg_files(page):
        root = ET.parse(path).getroot()  # raises ParseError if not well-formed XML
        assert root.tag == SVG_NS + "svg", f"{path.name}: root is {root.tag}"
        view_box = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip())]
        assert len(view_box) == 4 and view_box[2] > 0 and view_box[3] > 0, path.name
        title = root.find(SVG_NS + "title")
        desc = root.find(SVG_NS + "desc")
        assert title is not None and (title.text or "").strip(), f"{path.name}: no <title>"
        assert desc is not None and len((desc.text or "").split()) >= 10, f"{path.name}: no <desc>"
        assert root.get("role") == "img"
        # Offline and safe inside <img>: nothing external, nothing executable.
        for element in root.iter():
            local = element.tag.rsplit("}", 1)[-1]
            assert local not in {"script", "foreignObject", "image"}, f"{path.name}: <{local}>"
            for name, value in element.attrib.items():
                if name.rsplit("}", 1)[-1] == "href":
                    assert value.startswith("#"), f"{path.name}: external href {value}"
                assert not name.startswith("on"), f"{path.name}: event handler {name}"
        raw = path.read_text(encoding="utf-8")
        assert "http://" not in raw.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in raw and "@import" not in raw


def test_every_learn_asset_is_used_and_stylesheet_is_offline(page):
    used = {p.name for p in _svg_files(page)}
    on_disk = {p.name for p in (ASSETS_DIR / "learn").glob("*.svg")}
    assert on_disk == used, f"unused diagrams: {on_disk - used}"
    css = (ASSETS_DIR / "learn" / "learn.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # comments may mention anything
    assert "@import" not in css and "http" not in css and "url(" not in css
    # Dash loads every stylesheet on every page: each rule must be scoped to this page.
    selectors = re.findall(r"(?m)^\s*([^@{}/\s][^{}]*)\{", css)
    assert selectors
    for selector in selectors:
        assert all(s.strip().startswith(".learn-page") for s in selector.split(",")), selector


# --------------------------------------------------------------------------- browser test

PHONE = (375, 812)


def _emulate_phone(driver) -> None:
    """Give the page a 375 x 812 CSS-pixel viewport, as on a small phone."""
    driver.set_window_size(*PHONE)
    if driver.execute_script("return window.innerWidth") != PHONE[0]:
        # Desktop chromium may refuse a window that narrow; emulate the device instead.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True},
        )


def _images_loaded(driver) -> list[dict]:
    return driver.execute_script(
        """
        return Array.from(document.querySelectorAll('#learn-page img')).map(img => ({
            src: img.currentSrc || img.src,
            complete: img.complete,
            naturalWidth: img.naturalWidth,
            width: img.getBoundingClientRect().width,
        }));
        """
    )


def _full_page_screenshot(driver, path: Path) -> None:
    """The whole page at the current width: grow the window to the page's height."""
    outer = driver.get_window_size()
    chrome_height = outer["height"] - driver.execute_script("return window.innerHeight")
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(outer["width"], min(page_height + chrome_height, 16000))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(outer["width"], outer["height"])


@pytest.mark.browser
def test_learn_page_renders_on_desktop_and_phone(dash_duo, artifacts_dir, tmp_path, free_port):
    # The Learn page needs no model server; point the client at a port nobody listens on.
    app = annotation_client.create_app(
        {"DATA_DIR": str(tmp_path), "MODEL_SERVER_URL": f"http://127.0.0.1:{free_port}"}
    )
    dash_duo.start_server(app)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/learn")
    dash_duo.wait_for_element("#learn-references", timeout=30)
    assert driver.title == "Breast self-examination — SonoTrace"

    headings = driver.find_elements("css selector", "#learn-page section > h2")
    texts = [h.text.strip().lower() for h in headings]
    for name, pattern in REQUIRED_HEADINGS.items():
        assert any(re.search(pattern, t) for t in texts), f"no visible heading for {name}: {texts}"
    assert all(h.is_displayed() for h in headings)
    assert driver.find_element("id", "learn-disclaimer").is_displayed()
    # An accordion's questions are headings under their section's h2, not beside it
    # (Bootstrap draws each as an h2): a screen reader's list of headings says so.
    levels = driver.execute_script("""
        return Array.from(document.querySelectorAll('#learn-page .accordion-header'))
            .map(h => h.getAttribute('aria-level') || h.tagName.slice(1));
    """)
    assert levels and set(levels) == {"3"}, levels

    # Every diagram was fetched from the app and decoded (naturalWidth is 0 for a broken
    # image), and all of them are SVG files from assets/learn/.
    until(lambda: _images_loaded(driver) and all(i["complete"] for i in _images_loaded(driver)), 10)
    images = _images_loaded(driver)
    assert len(images) >= 4
    for image in images:
        assert image["naturalWidth"] > 0, f"image did not load: {image}"
        assert "/assets/learn/" in image["src"] and image["src"].endswith(".svg")

    # The table of contents really jumps to a section (Bootstrap scrolls smoothly: wait).
    driver.find_element("css selector", '#learn-toc a[href="#learn-doctor"]').click()
    until(
        lambda: (
            0
            <= driver.execute_script(
                "return document.getElementById('learn-doctor').getBoundingClientRect().top"
            )
            < driver.execute_script("return window.innerHeight / 2")
        ),
        10,
        msg="the contents link did not bring its section into view",
    )

    # Screenshots start from a fresh load at the top of the page.
    driver.get(dash_duo.server_url + "/learn")
    dash_duo.wait_for_element("#learn-references", timeout=30)
    until(lambda: all(i["complete"] for i in _images_loaded(driver)), 10)
    driver.save_screenshot(str(artifacts_dir / "learn-desktop.png"))
    _full_page_screenshot(driver, artifacts_dir / "learn-desktop-full.png")

    # Phone: nothing wider than the screen, diagrams scaled down to fit.
    _emulate_phone(driver)
    driver.get(dash_duo.server_url + "/learn")
    dash_duo.wait_for_element("#learn-references", timeout=30)
    inner_width = driver.execute_script("return window.innerWidth")
    assert inner_width == PHONE[0]
    # clientWidth is innerWidth less a classic scrollbar: the width text can really use.
    client_width = driver.execute_script("return document.documentElement.clientWidth")
    scroll_width = driver.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= client_width <= inner_width, (
        f"horizontal overflow: scrollWidth {scroll_width} > clientWidth {client_width}"
    )
    for image in _images_loaded(driver):
        assert 0 < image["width"] <= client_width, f"diagram wider than the phone: {image}"
    sticking_out = driver.execute_script(
        """
        const w = document.documentElement.clientWidth;
        return Array.from(document.querySelectorAll('body *'))
            .filter(e => {
                const r = e.getBoundingClientRect();
                return r.width > 0 && r.right > w + 0.5;
            })
            .map(e => e.tagName + '.' + e.className).slice(0, 10);
        """
    )
    assert sticking_out == [], f"elements stick out past the right edge: {sticking_out}"
    driver.save_screenshot(str(artifacts_dir / "learn-phone.png"))
    _full_page_screenshot(driver, artifacts_dir / "learn-phone-full.png")

    errors = [entry["message"].splitlines()[0][:400] for entry in dash_duo.get_logs()]
    assert errors == [], "severe browser console errors:\n" + "\n".join(errors)


def test_a_new_lump_is_under_do_not_wait_and_squeezing_is_not_invited(page):
    # Audit 710: "any new lump" sat under "make an appointment soon" while only a lump
    # "growing quickly" was urgent, so a reader could wait to see it grow; and "you do
    # not need to squeeze hard" suggested squeezing, whose fluid is usually normal.
    cards = {}
    for card in (c for c in _walk(page) if type(c).__name__ == "Card"):
        header = [h for h in _walk(card) if type(h).__name__ == "CardHeader"]
        if header:
            cards[_normalise(_text(header[0]))] = _normalise(_text(card))
    urgent = cards["do not wait: see a doctor within days"]
    assert "any new lump" not in cards["make an appointment soon"]
    assert "any new lump or thickening" in urgent
    text = _normalise(_text(page))
    assert "squeeze hard" not in text and "do not squeeze the nipple" in text
    assert "painless lump under or near the nipple" in text  # what it looks like in men
