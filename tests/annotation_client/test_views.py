import json
import re
from pathlib import Path

from annotation_client import _views


def _text(component):
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json(),
                      ensure_ascii=False)


META = {
    "sha256": "ab" * 32,
    "name": "scan.dcm",
    "kind": "dicom",
    "size_bytes": 2048,
    "width": 30,
    "height": 20,
    "pixel_spacing_mm": None,
}


def test_image_info_shows_why_the_spacing_is_unknown():
    note = "Pixel spacing ignored: PixelSpacing gives 1e+200 × 1e+200 mm per pixel."
    text = _text(_views.image_info(META | {"notes": [note]}))
    assert "pixel spacing unknown (measurements in pixels)" in text
    assert "Pixel spacing ignored: PixelSpacing gives 1e+200" in text


def test_image_info_without_notes_is_unchanged():
    # Metadata kept by an older page has no "notes" at all.
    assert "image-note" not in _text(_views.image_info(META))
    assert "image-note" not in _text(_views.image_info(META | {"notes": []}))


def test_image_info_says_where_the_spacing_came_from():
    spaced = META | {"pixel_spacing_mm": [0.08, 0.08]}
    says = {source: _text(_views.image_info(spaced | {"pixel_spacing_source": source}))
            for source in ("file", "manual", "reused")}
    assert "0.080 × 0.080 mm (row × col)" in says["file"]
    assert "(row × col, set by hand)" in says["manual"]
    assert "(row × col, reused, as set on an earlier image)" in says["reused"]


# Bootstrap's text colour classes; "-emphasis" and the body shades are the readable ones.
_TEXT_CLASS = re.compile(
    r"\btext-(?:primary|secondary|success|danger|warning|info|light|dark|body|muted|black|"
    r"white)(?:-emphasis|-secondary|-tertiary)?\b"
)


def _light_theme(css: str) -> dict[str, str]:
    """The custom properties of Bootstrap's light theme (its first ``:root`` block)."""
    block = css[css.index(":root,[data-bs-theme=light]{"):]
    block = block[block.index("{") + 1: block.index("}")]
    return dict(part.split(":", 1) for part in block.split(";") if part.startswith("--"))


def _rgb_on_white(value: str, theme: dict[str, str]) -> tuple[float, float, float]:
    """A CSS colour as Bootstrap writes it (hex, rgba(var(--x-rgb), a), var(--x)),
    composited over the white page."""
    value = value.replace("!important", "").strip()
    for _ in range(3):  # a variable's value may name another variable
        value = re.sub(r"var\((--[\w-]+)\)", lambda m: theme.get(m.group(1), "1"), value)
    if value.startswith("#"):
        digits = value[1:]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return tuple(int(digits[i: i + 2], 16) for i in (0, 2, 4))
    numbers = [float(n) for n in re.findall(r"[\d.]+", value)]
    alpha = numbers[3] if len(numbers) > 3 else 1.0
    return tuple(alpha * c + (1 - alpha) * 255 for c in numbers[:3])


def _contrast_on_white(rgb) -> float:
    def linear(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 1.05 / (luminance + 0.05)


def test_every_text_colour_the_client_uses_is_readable_on_white():
    # WCAG AA asks 4.5:1 for body text. Bootstrap's plain text-warning and text-info
    # are about 1.6:1 and 1.9:1 on white: a warning nobody can read is no warning.
    from annotation_client._app import _bootstrap_dir

    css = (_bootstrap_dir() / "css" / "bootstrap.min.css").read_text()
    theme = _light_theme(css)
    package = Path(_views.__file__).parent
    used = set()
    for path in [*package.rglob("*.py"), *package.rglob("*.js"), *package.rglob("*.css")]:
        used |= set(_TEXT_CLASS.findall(path.read_text()))
    assert "text-muted" in used  # the scan found the client's classes
    for name in sorted(used):
        rule = re.search(rf"\.{re.escape(name)}{{[^}}]*?color:([^;}}]+)", css)
        assert rule, f".{name} is not in the served Bootstrap CSS"
        ratio = _contrast_on_white(_rgb_on_white(rule.group(1), theme))
        assert ratio >= 4.5, f".{name} has contrast {ratio:.2f}:1 on white"
    assert _contrast_on_white(_rgb_on_white(re.search(
        r"\.text-warning{[^}]*?color:([^;}]+)", css).group(1), theme)) < 3


def test_the_probability_bars_figures_stay_upright_and_readable(dash_duo):
    # Beside a narrow bar plotly.js turned the figure on its side: "6%" read as "%9".
    from dash import Dash, dcc

    probabilities = {"normal": 0.06, "benign": 0.92, "malignant": 0.02}
    app = Dash(__name__)
    # As wide as the Classification card beside the image in a 1920 px window: there
    # the 6% bar was taller than wide, and its figure was turned to fit inside.
    app.layout = dcc.Graph(id="bars", figure=_views.probability_figure(
        {"probabilities": probabilities}), style={"height": "140px", "width": "450px"})
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#bars .bars text", timeout=20)
    texts = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#bars .bars text')).map(t => "
        "[t.textContent, t.getAttribute('transform') || '', t.getBoundingClientRect().width])")
    assert [text for text, _, _ in texts] == ["6%", "92%", "2%"]
    for text, transform, width in texts:
        assert "rotate" not in transform, (text, transform)
        assert width >= 10, (text, width)  # not shrunk out of sight
