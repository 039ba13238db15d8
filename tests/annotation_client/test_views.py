import json

from annotation_client import _views


def _text(component):
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json())


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
