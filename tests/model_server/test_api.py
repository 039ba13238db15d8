"""Every endpoint through Flask's test client, against the real models.

Model outputs are never hard-coded: the API is compared with the bare
``models.runtime`` on the same pixels, decoded independently with Pillow.
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from server_samples import (
    busi_image,
    decode_png,
    dicom_bytes,
    jpeg_bytes,
    palette_png_bytes,
    png16_bytes,
    png_bytes,
    speckle_image,
)

SYNTHETIC = speckle_image(160, 200, seed=1)
BUSI_NAMES = ["benign (13)", "normal (10)", "benign (11)", "malignant (10)", "benign (2)"]


def post_file(client, url, data, *, field="image", filename="scan.png", extra=None, **kwargs):
    form = {field: (io.BytesIO(data), filename)}
    for name, (payload, fname) in (extra or {}).items():
        form[name] = (io.BytesIO(payload), fname)
    return client.post(url, data=form, content_type="multipart/form-data", **kwargs)


def response_mask(body: dict) -> np.ndarray:
    pixels = decode_png(base64.b64decode(body["mask"]))
    assert pixels.dtype == np.uint8 and pixels.ndim == 2
    assert set(np.unique(pixels)) <= {0, 255}
    return pixels > 0


def ring_vertex_counts(path: str) -> list[int]:
    """Vertices of each ring of an absolute ``M x,y L x,y ... Z`` path."""
    point = r"-?\d+(?:\.\d+)?,-?\d+(?:\.\d+)?"
    return [len(re.findall(point, ring)) for ring in path.split("Z")[:-1]]


# --------------------------------------------------------------------------- /health, /models


def test_health_is_ok_once_models_are_loaded(client, runtime):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["model"]["name"] == runtime.info()["name"]
    assert body["model"]["version"] == runtime.info()["version"]


def test_models_lists_manifest_with_metrics_and_tasks(client, runtime):
    response = client.get("/models")
    assert response.status_code == 200
    body = response.get_json()
    assert body["runtime"] == runtime.info()
    assert body["manifest"] == runtime.manifest
    assert "metrics" in body["manifest"]
    assert set(body["tasks"]) == {"segmentation", "classification", "vectorization"}
    assert body["tasks"]["classification"]["labels"] == ["normal", "benign", "malignant"]
    assert body["tasks"]["segmentation"]["model"]["name"] == runtime.info()["name"]


# --------------------------------------------------------------------------- /predict


def test_predict_multipart_matches_the_runtime(client, runtime):
    response = post_file(client, "/predict", png_bytes(SYNTHETIC))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["width"], body["height"]) == (200, 160)
    mask = response_mask(body)
    np.testing.assert_array_equal(mask, runtime.predict_mask(SYNTHETIC))
    assert body["pixel_spacing_mm"] is None and body["box"] is None
    assert body["model"] == {
        "name": runtime.info()["name"],
        "version": runtime.info()["version"],
    }
    assert {"decode", "segment", "vectorize", "encode", "total"} <= set(body["timing_ms"])
    assert body["timing_ms"]["total"] >= body["timing_ms"]["segment"] > 0
    assert 'width="200"' in body["svg"] and 'height="160"' in body["svg"]
    assert len(body["paths"]) == len(body["regions"])
    assert sum(r["area_px"] for r in body["regions"]) == pytest.approx(mask.sum(), rel=0.05)


def test_predict_busi_images_raw_body_match_the_runtime(client, runtime, busi_dir):
    non_empty = 0
    for name in BUSI_NAMES:
        data, pixels = busi_image(busi_dir, name)
        response = client.post("/predict", data=data, content_type="image/png")
        assert response.status_code == 200, name
        body = response.get_json()
        assert (body["height"], body["width"]) == pixels.shape[:2]
        mask = response_mask(body)
        np.testing.assert_array_equal(mask, runtime.predict_mask(pixels), err_msg=name)
        non_empty += bool(mask.any())
        areas = [r["area_px"] for r in body["regions"]]
        assert sum(areas) == pytest.approx(mask.sum(), rel=0.05)
        for region in body["regions"]:
            x0, y0, x1, y1 = region["bbox"]
            assert 0 <= x0 < x1 <= body["width"] and 0 <= y0 < y1 <= body["height"]
    # Four of the five are lesion images: agreement on empty masks alone proves little.
    assert non_empty >= 3


def test_predict_accept_png_returns_the_mask_itself(client):
    data = png_bytes(SYNTHETIC)
    as_json = post_file(client, "/predict", data).get_json()
    response = post_file(client, "/predict", data, headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Model-Version"] == as_json["model"]["version"]
    np.testing.assert_array_equal(decode_png(response.data) > 0, response_mask(as_json))
    # A browser's Accept (HTML first, */* last) still gets JSON.
    browser = post_file(
        client, "/predict", data, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert browser.mimetype == "application/json"


def test_predict_box_segments_inside_the_box_only(client, runtime, busi_dir):
    candidates = []
    for name in BUSI_NAMES:
        data, pixels = busi_image(busi_dir, name)
        h, w = pixels.shape[:2]
        box = (w // 4, h // 5, 3 * w // 4, 4 * h // 5)
        reference = runtime.predict_mask(pixels, box=box)
        candidates.append((reference.sum(), name, data, box, reference))
    area, name, data, box, reference = max(candidates, key=lambda c: c[0])
    assert area > 0, "no candidate image gives a mask inside its box; the test would be vacuous"
    query = ",".join(map(str, box))
    response = client.post(f"/predict?box={query}", data=data, content_type="image/png")
    assert response.status_code == 200
    body = response.get_json()
    assert body["box"] == list(box)
    mask = response_mask(body)
    np.testing.assert_array_equal(mask, reference, err_msg=name)
    x0, y0, x1, y1 = box
    outside = mask.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()


def test_predict_box_is_clipped_to_the_image(client):
    response = post_file(client, "/predict?box=-50,20.5,150,1000", png_bytes(SYNTHETIC))
    assert response.status_code == 200
    assert response.get_json()["box"] == [0, 20, 150, 160]


@pytest.mark.parametrize(
    "box",
    ["1,2,3", "a,b,c,d", "10,10,5,50", "10,50,60,50", "nan,0,10,10", "0,0,inf,10",
     "500,500,600,600", "0,0,3,3", "1,2,3,4,5",
     # float() took both: 1_0 as 10, Arabic-Indic digits as 12.
     "1_0,0,100,100", "\u0661\u0662,0,100,100"],
)
def test_predict_bad_box_is_400(client, box):
    response = post_file(client, f"/predict?box={box}", png_bytes(SYNTHETIC))
    assert response.status_code == 400
    assert "box" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("value", ["abc", "2", "100000", "-5", "3.5", "\u0661\u0662"])
def test_predict_bad_max_vertices_is_400(client, value):
    response = post_file(client, f"/predict?max_vertices={value}", png_bytes(SYNTHETIC))
    assert response.status_code == 400
    assert "max_vertices" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("endpoint", ["/predict", "/vectorize"])
def test_max_vertices_accepts_3_to_4096_and_refuses_either_side(client, endpoint):
    from model_server._inputs import MAX_VERTICES_RANGE

    assert MAX_VERTICES_RANGE == (3, 4096)
    yy, xx = np.mgrid[0:120, 0:120]
    disc = ((yy - 60) ** 2 + (xx - 60) ** 2 <= 45**2).astype(np.uint8) * 255
    data, field = (png_bytes(SYNTHETIC), "image") if endpoint == "/predict" else (
        png_bytes(disc), "mask")
    # The lowest valid value: a triangle per ring.
    lowest = post_file(client, f"{endpoint}?max_vertices=3", data, field=field)
    assert lowest.status_code == 200, lowest.get_data(as_text=True)[:300]
    paths = lowest.get_json()["paths"]
    assert paths and all(n == 3 for path in paths for n in ring_vertex_counts(path))
    for value in (2, 4097):  # just outside, on either side
        refused = post_file(client, f"{endpoint}?max_vertices={value}", data, field=field)
        assert refused.status_code == 400
        assert refused.get_json()["error"]["message"] == (
            f"'max_vertices' must be between 3 and 4096, got {value}")


def test_predict_same_mask_for_every_lossless_encoding(client, runtime):
    reference = runtime.predict_mask(SYNTHETIC)
    assert reference.any()  # an empty reference would match any encoding's empty answer
    encodings = {
        "png": png_bytes(SYNTHETIC),
        "png16": png16_bytes(SYNTHETIC),
        "palette": palette_png_bytes(SYNTHETIC),
        "rgb": png_bytes(np.dstack([SYNTHETIC] * 3)),
        "dicom": dicom_bytes(SYNTHETIC),
        "dicom-mono1": dicom_bytes(255 - SYNTHETIC, photometric="MONOCHROME1"),
        "dicom-multiframe": dicom_bytes(np.stack([SYNTHETIC, 255 - SYNTHETIC])),
        "dicom-bare": dicom_bytes(SYNTHETIC, preamble=False),
    }
    for label, data in encodings.items():
        response = post_file(client, "/predict", data, filename="upload.bin")
        assert response.status_code == 200, label
        np.testing.assert_array_equal(response_mask(response.get_json()), reference, err_msg=label)


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_predict_jpeg(client, runtime, mode):
    data = jpeg_bytes(SYNTHETIC, mode=mode)
    response = post_file(client, "/predict", data, filename="a.jpg")
    assert response.status_code == 200
    mask = response_mask(response.get_json())
    assert mask.shape == SYNTHETIC.shape
    # The server's answer is the runtime's on the JPEG as Pillow decodes it (to grey).
    with Image.open(io.BytesIO(data)) as im:
        decoded = np.asarray(im.convert("L"))
    expected = runtime.predict_mask(decoded)
    assert expected.any()
    assert (mask == expected).mean() > 0.99


def test_predict_dicom_reports_pixel_spacing_and_mm(client, runtime, busi_dir):
    data, pixels = busi_image(busi_dir, "benign (11)")  # a lesion, so there are regions in mm²
    grey = pixels if pixels.ndim == 2 else pixels[..., 0]
    response = post_file(
        client, "/predict", dicom_bytes(grey, PixelSpacing=[0.1, 0.2]), filename="us.dcm"
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["pixel_spacing_mm"] == pytest.approx([0.1, 0.2])
    np.testing.assert_array_equal(response_mask(body), runtime.predict_mask(grey))
    assert body["regions"]
    for region in body["regions"]:
        assert region["area_mm2"] == pytest.approx(region["area_px"] * 0.02, rel=1e-6)


def strict_json(response) -> dict:
    """The body parsed as real JSON: NaN and Infinity are not JSON and fail here."""

    def refuse(word):
        raise AssertionError(f"response holds {word}, which is not JSON")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


@pytest.mark.parametrize(
    "elements",
    [
        {"PixelSpacing": [1e200, 1e200]},
        {"SequenceOfUltrasoundRegions": "huge"},
    ],
)
def test_predict_dicom_with_absurd_spacing_serves_pixels_only(client, runtime, busi_dir, elements):
    from pydicom.dataset import Dataset

    if elements.get("SequenceOfUltrasoundRegions") == "huge":
        region = Dataset()
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
        region.PhysicalDeltaX = 1e300
        region.PhysicalDeltaY = 1e300
        elements = {"SequenceOfUltrasoundRegions": [region]}
    _, pixels = busi_image(busi_dir, "benign (11)")  # a lesion, so there are regions
    grey = pixels if pixels.ndim == 2 else pixels[..., 0]
    response = post_file(client, "/predict", dicom_bytes(grey, **elements), filename="us.dcm")
    assert response.status_code == 200
    body = strict_json(response)
    assert body["pixel_spacing_mm"] is None
    assert body["regions"]
    assert all("area_mm2" not in region for region in body["regions"])


# --------------------------------------------------------------------------- /classify


def test_classify_matches_the_runtime(client, runtime, busi_dir):
    data, pixels = busi_image(busi_dir, "malignant (10)")
    response = post_file(client, "/classify", data)
    assert response.status_code == 200
    body = response.get_json()
    expected = runtime.classify(pixels)
    assert body["probabilities"] == pytest.approx(expected)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert body["label"] == max(expected, key=expected.get)
    assert body["model"]["name"] == runtime.info()["name"]
    raw = client.post("/classify", data=data, content_type="application/octet-stream")
    assert raw.get_json()["probabilities"] == pytest.approx(expected)


def test_classify_with_a_corrected_mask(client, runtime):
    mask = np.zeros(SYNTHETIC.shape, np.uint8)
    mask[40:120, 50:150] = 255
    response = post_file(
        client, "/classify", png_bytes(SYNTHETIC), extra={"mask": (png_bytes(mask), "mask.png")}
    )
    assert response.status_code == 200
    expected = runtime.classify(SYNTHETIC, mask=mask > 0)
    assert response.get_json()["probabilities"] == pytest.approx(expected)
    # ...and the mask was used: without it the answer differs.
    assert runtime.classify(SYNTHETIC) != pytest.approx(expected)


def test_classify_mask_errors(client):
    image = png_bytes(SYNTHETIC)
    wrong_size = png_bytes(np.zeros((10, 10), np.uint8))
    response = post_file(client, "/classify", image, extra={"mask": (wrong_size, "m.png")})
    assert response.status_code == 400
    assert "same size" in response.get_json()["error"]["message"]
    # A mask whose header states the image's size, turned to another by its own EXIF:
    # the message says so rather than name a size no header shows.
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = png_bytes(np.zeros(SYNTHETIC.shape, np.uint8), exif=exif.tobytes())
    response = post_file(client, "/classify", image, extra={"mask": (turned, "m.png")})
    h, w = SYNTHETIC.shape[:2]
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        f"mask is {h}x{w} once turned upright by its EXIF orientation (6) but the image is "
        f"{w}x{h}; they must have the same size")
    jpeg_mask = jpeg_bytes(np.zeros(SYNTHETIC.shape, np.uint8))
    response = post_file(client, "/classify", image, extra={"mask": (jpeg_mask, "m.jpg")})
    assert response.status_code == 415
    assert response.get_json()["error"]["message"].startswith("mask: ")
    response = post_file(client, "/classify", image, extra={"mask": (b"", "m.png")})
    assert response.status_code == 400
    # A broken or oversized mask is said to be the mask, not the image.
    whole = png_bytes(np.zeros(SYNTHETIC.shape, np.uint8))
    response = post_file(client, "/classify", image,
                         extra={"mask": (whole[: len(whole) // 2], "m.png")})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("mask: ")
    response = post_file(client, "/vectorize", whole[: len(whole) // 2], field="mask")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("mask: ")


@pytest.mark.parametrize(
    ("url", "field", "said"),
    [
        ("/classify?box=1,1,40,40", "image", "/classify does not take 'box': it takes no query "
         "parameter"),
        ("/predict?pixel_spacing=0.1,0.1", "image", "/predict does not take 'pixel_spacing': it "
         "takes box, max_vertices"),
        ("/predict?box=1,1,40,40&box=50,50,90,90", "image", "'box' is given 2 times"),
        ("/vectorize?max_vertices=8&max_vertices=64", "mask", "'max_vertices' is given 2 times"),
        ("/vectorize?box=1,1,4,4", "mask", "/vectorize does not take 'box'"),
    ],
)
def test_a_query_parameter_the_endpoint_does_not_take_or_given_twice_is_refused(
        client, url, field, said):
    # Ignored, each was answered as if asked for: /classify?box= classified the whole
    # image, and of two boxes the first was used.
    data = png_bytes(SYNTHETIC) if field == "image" else png_bytes(np.zeros((48, 64), np.uint8))
    response = post_file(client, url, data, field=field)
    assert response.status_code == 400
    assert said in response.get_json()["error"]["message"]


def test_classify_with_a_sixteen_bit_mask_of_small_values(client, runtime):
    # A 16-bit 0/1 mask is as valid as an 8-bit 0/255 one: it must not be read as empty.
    mask = np.zeros(SYNTHETIC.shape, np.uint16)
    mask[40:120, 50:150] = 1
    response = post_file(
        client,
        "/classify",
        png_bytes(SYNTHETIC),
        extra={"mask": (png_bytes(Image.fromarray(mask)), "mask.png")},
    )
    assert response.status_code == 200
    expected = runtime.classify(SYNTHETIC, mask=mask > 0)
    assert response.get_json()["probabilities"] == pytest.approx(expected)


# --------------------------------------------------------------------------- /vectorize


def two_regions_mask() -> np.ndarray:
    mask = np.zeros((60, 90), bool)
    mask[10:40, 10:40] = True
    mask[20:30, 20:30] = False  # a hole
    mask[15:50, 55:80] = True
    return mask


def test_vectorize_mask(client):
    from vectorizer import svg_to_mask

    mask = two_regions_mask()
    response = post_file(client, "/vectorize", png_bytes(mask.astype(np.uint8) * 255), field="mask")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["width"], body["height"]) == (90, 60)
    assert len(body["paths"]) == 2 and len(body["regions"]) == 2
    assert sorted(r["area_px"] for r in body["regions"]) == pytest.approx(
        sorted([30 * 30 - 10 * 10, 35 * 25]), rel=0.05
    )
    redrawn = svg_to_mask(body["svg"])
    iou = (redrawn & mask).sum() / (redrawn | mask).sum()
    assert iou > 0.9
    assert "area_mm2" not in body["regions"][0]


def test_regions_are_the_regions_the_paths_outline(client):
    # The tracers drop specks of 1-2 pixels and fill pinholes; the measurements counted
    # them, so a speck above the lesion came first in `regions` with no path of its own.
    mask = np.zeros((100, 100), bool)
    mask[40:80, 30:70] = True
    mask[50, 40] = mask[60, 50] = mask[70, 60] = False  # three pinholes
    mask[2, 2] = True  # a speck, first in reading order
    body = post_file(
        client, "/vectorize", png_bytes(mask.astype(np.uint8) * 255), field="mask"
    ).get_json()
    assert len(body["paths"]) == len(body["regions"]) == 1
    assert body["regions"][0]["area_px"] == 1600
    assert body["regions"][0]["bbox"] == [30, 40, 70, 80]


@pytest.mark.parametrize("name", ["benign (147)", "malignant (1)", "benign (18)",
                                  "malignant (86)"])
def test_regions_match_paths_on_busi_masks_with_specks(client, busi_dir, name):
    # Ground-truth masks of BUSI with specks or pinholes: each path's outline is its
    # region (the centroid inside it, about the same area), in the same order.
    from models.data import load_samples, read_mask
    from vectorizer import svg_to_mask

    sample = next(s for s in load_samples(busi_dir) if s.name == name)
    shape = Image.open(sample.image_path).size[::-1]
    mask = read_mask(sample.mask_paths, shape)
    body = post_file(
        client, "/vectorize?max_vertices=4096", png_bytes(mask.astype(np.uint8) * 255),
        field="mask",
    ).get_json()
    assert len(body["paths"]) == len(body["regions"]) >= 1
    for path, region in zip(body["paths"], body["regions"], strict=True):
        outline = svg_to_mask([path], shape=shape)
        x, y = region["centroid"]
        assert outline[int(y), int(x)] or region["area_px"] < 50
        assert outline.sum() == pytest.approx(region["area_px"], rel=0.1)


def test_vectorize_raw_body_max_vertices_and_spacing(client):
    yy, xx = np.mgrid[0:120, 0:120]
    disc = ((yy - 60) ** 2 + (xx - 60) ** 2 <= 45**2).astype(np.uint8)
    response = client.post(
        "/vectorize?max_vertices=6&pixel_spacing=0.5,0.25",
        data=png_bytes(disc),
        content_type="image/png",
    )
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["paths"]) == 1
    assert all(3 <= n <= 6 for n in ring_vertex_counts(body["paths"][0]))
    region = body["regions"][0]
    assert region["area_mm2"] == pytest.approx(region["area_px"] * 0.125, rel=1e-6)
    many = client.post("/vectorize?max_vertices=64", data=png_bytes(disc), content_type="image/png")
    assert max(ring_vertex_counts(many.get_json()["paths"][0])) > 6


@pytest.mark.parametrize("spacing", ["0,1", "-1,1", "x,1", "1"])
def test_vectorize_bad_pixel_spacing_is_400(client, spacing):
    data = png_bytes(two_regions_mask().astype(np.uint8))
    response = post_file(client, f"/vectorize?pixel_spacing={spacing}", data, field="mask")
    assert response.status_code == 400
    message = strict_json(response)["error"]["message"]
    assert message.startswith("'pixel_spacing' must ") and repr(spacing) in message


@pytest.mark.parametrize("spacing", ["1e200,1e200", "0.1,10.5", "11,0.1", "1e308,1e308"])
def test_vectorize_pixel_spacing_above_the_limit_is_400(client, spacing):
    from vectorizer import MAX_PIXEL_SPACING_MM

    data = png_bytes(two_regions_mask().astype(np.uint8))
    response = post_file(client, f"/vectorize?pixel_spacing={spacing}", data, field="mask")
    assert response.status_code == 400
    message = strict_json(response)["error"]["message"]
    assert "pixel_spacing" in message and f"{MAX_PIXEL_SPACING_MM:g} mm" in message


@pytest.mark.parametrize("spacing", ["1e-320,1e-320", "0.1,0.0009", "1e-300,0.1"])
def test_vectorize_pixel_spacing_below_the_lower_limit_is_400(client, spacing):
    # Was measured: every area 0.0 mm².
    data = png_bytes(two_regions_mask().astype(np.uint8))
    response = post_file(client, f"/vectorize?pixel_spacing={spacing}", data, field="mask")
    assert response.status_code == 400
    message = strict_json(response)["error"]["message"]
    assert message == (f"'pixel_spacing' must be at least 0.001 mm per pixel in each "
                       f"direction, got {spacing!r}")


def test_vectorize_pixel_spacing_at_the_limit_is_measured(client):
    from vectorizer import MAX_PIXEL_SPACING_MM

    limit = MAX_PIXEL_SPACING_MM
    data = png_bytes(two_regions_mask().astype(np.uint8))
    response = post_file(client, f"/vectorize?pixel_spacing={limit},{limit}", data, field="mask")
    assert response.status_code == 200
    for region in strict_json(response)["regions"]:
        assert region["area_mm2"] == pytest.approx(region["area_px"] * limit * limit, rel=1e-6)


def test_vectorize_sixteen_bit_mask_of_small_values(client):
    mask = two_regions_mask()
    data = png_bytes(Image.fromarray(mask.astype(np.uint16) * 128))
    response = post_file(client, "/vectorize", data, field="mask")
    assert response.status_code == 200
    assert len(response.get_json()["regions"]) == 2


def test_mask_the_vectorizer_refuses_is_a_json_400(client, monkeypatch):
    # Stands in for a mask the vectorizer refuses (too many regions, say): its
    # ValueError is the client's input problem, not a server bug. The server outlines
    # with outline_mask alone (which measures, makes the paths and the SVG).
    import vectorizer

    def refuse(*args, **kwargs):
        raise ValueError("mask: 2000000 regions, over the limit of 10000")

    monkeypatch.setattr(vectorizer, "outline_mask", refuse)
    data = png_bytes(two_regions_mask().astype(np.uint8))
    for response in (
        post_file(client, "/vectorize", data, field="mask"),
        post_file(client, "/predict", png_bytes(SYNTHETIC)),
    ):
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert response.mimetype == "application/json"
        message = response.get_json()["error"]["message"]
        assert "vectorizer" in message and "2000000 regions" in message
    # The mask PNG alone needs no vectorizer: /predict with Accept: image/png still works.
    png = post_file(client, "/predict", png_bytes(SYNTHETIC), headers={"Accept": "image/png"})
    assert png.status_code == 200 and png.mimetype == "image/png"


def test_a_mask_of_too_many_specks_is_refused_before_any_tracing(client, monkeypatch):
    # 10,201 separate 3-pixel specks (larger than those the tracers drop) in a few kB of
    # PNG: measuring comes first, so the outline limit answers before tracing is paid for.
    from vectorizer import _outline

    traced = []
    for name in ("measure_checked_crop", "checked_mask_to_paths", "checked_mask_to_svg"):
        monkeypatch.setattr(_outline, name, lambda *a, **k: traced.append(1))
    specks = np.zeros((404, 404), np.uint8)
    specks[::4, ::4] = specks[1::4, ::4] = specks[::4, 1::4] = 255
    response = post_file(client, "/vectorize", png_bytes(specks), field="mask")
    assert response.status_code == 400
    assert "outlines" in response.get_json()["error"]["message"]
    assert traced == []


def test_a_comb_mask_is_refused_by_its_outline_length_and_the_server_keeps_serving(client):
    # One region (a bar with teeth a pixel apart), so the outline count lets it through:
    # tracing it would take seconds and GBs. A few kB of PNG.
    comb = np.zeros((2100, 2100), np.uint8)
    comb[:, ::2] = 255
    comb[0] = 255
    response = post_file(client, "/vectorize", png_bytes(comb), field="mask")
    assert response.status_code == 400
    assert "pixel edges long; at most 4000000" in response.get_json()["error"]["message"]
    assert client.get("/health").status_code == 200


def test_a_noise_mask_is_refused_for_its_paths_length_and_the_server_keeps_serving(client):
    # Random pixels: one region with a thousand holes, within both limits above. Its paths
    # would be too long to read back; it held a worker for 33 s and 3 GB before they were
    # refused at the end (tests/vectorizer/test_polygons.py checks that it stops early).
    noise = (np.random.default_rng(0).random((471, 562)) < 0.5).astype(np.uint8) * 255
    response = post_file(client, "/vectorize", png_bytes(noise), field="mask")
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    message = response.get_json()["error"]["message"]
    assert "characters of path data; at most 300000 can be rasterised" in message
    assert client.get("/health").status_code == 200
    ok = post_file(client, "/vectorize", png_bytes(two_regions_mask().astype(np.uint8) * 255),
                   field="mask")
    assert ok.status_code == 200 and len(ok.get_json()["paths"]) == 2


def test_a_notch_at_the_image_edge_is_not_filled_as_a_hole(client):
    # Open to the outside, as the tracers see it: only enclosed pinholes are filled.
    mask = np.zeros((40, 50), np.uint8)
    mask[0:20, 0:30] = 255
    mask[0, 10] = 0  # a one-pixel notch in the top edge
    body = post_file(client, "/vectorize", png_bytes(mask), field="mask").get_json()
    assert body["regions"][0]["area_px"] == 20 * 30 - 1


def test_a_checkerboard_mask_is_outlined_as_the_tracers_draw_it(client):
    # One region with 20,000 one-pixel holes: the tracers fill pinholes, and so does the
    # measurement now, so regions and paths agree on one filled square.
    board = (np.indices((200, 200)).sum(0) % 2).astype(np.uint8)
    response = post_file(client, "/vectorize", png_bytes(board), field="mask")
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["paths"]) == len(body["regions"]) == 1
    assert body["regions"][0]["bbox"] == [0, 0, 200, 200]


def test_vectorize_rejects_non_png_and_missing_field(client):
    response = post_file(client, "/vectorize", jpeg_bytes(SYNTHETIC), field="mask")
    assert response.status_code == 415
    response = post_file(client, "/vectorize", png_bytes(SYNTHETIC), field="image")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        "/vectorize does not take multipart field 'image': it takes mask")


# --------------------------------------------------------------------------- docs


def test_openapi_document_describes_every_endpoint(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/health", "/predict", "/classify", "/vectorize", "/models"} <= set(doc["paths"])
    for path in ("/predict", "/classify", "/vectorize"):
        responses = doc["paths"][path]["post"]["responses"]
        assert {"200", "400", "413", "415"} <= set(responses)
    assert "image/png" in doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]


def test_docs_page_is_self_contained(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/docs.js" in assets and "/static/docs.css" in assets
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), asset
        if asset.startswith("/static/"):
            served = client.get(asset)
            assert served.status_code == 200, asset
            text = served.get_data(as_text=True)
            assert not re.search(r"https?://", text), f"{asset} references a remote URL"
            served.close()
    assert client.get("/").headers["Location"].endswith("/docs")
