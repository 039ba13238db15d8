"""README.md's model server API against the server's answers: routes, headers and keys.

Someone writing a client reads the README's endpoint table and examples, not the
code: every route and every key the server answers with must be named there.
"""

from __future__ import annotations

import re
from pathlib import Path

from server_samples import png_bytes, speckle_image

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Model server", 1)[1].split("\n## ", 1)[0]


def _endpoint_table() -> set[tuple[str, str]]:
    rows = re.findall(r"^\| (GET|POST) \| `([^`]+)` \|", SECTION, flags=re.MULTILINE)
    return set(rows)


def _named(word: str) -> bool:
    return f"`{word}`" in SECTION or re.search(rf"\b{re.escape(word)}\b", SECTION) is not None


def test_every_route_is_in_the_endpoint_table(app):
    documented = _endpoint_table()
    # /docs and /openapi.json are named in the sentence above the table.
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if not rule.rule.startswith(("/static", "/docs", "/openapi.json"))
    }
    assert sorted(served - documented) == []
    assert sorted(documented - served) == []


def test_the_png_answers_headers_are_named(client):
    response = client.post(
        "/predict", data=png_bytes(speckle_image(64, 80)), content_type="image/png",
        headers={"Accept": "image/png"},
    )
    assert response.status_code == 200
    ours = [name for name in response.headers.keys() if name.startswith("X-")]
    assert ours and [name for name in ours if not _named(name)] == []


def test_the_keys_of_health_models_and_regions_are_named(client):
    keys = set(client.get("/health").get_json())
    keys |= set(client.get("/models").get_json())
    mask = png_bytes((speckle_image(48, 64) > 128).astype("uint8") * 255)
    regions = client.post("/vectorize", data=mask, content_type="image/png").get_json()["regions"]
    assert regions
    keys |= set(regions[0])
    assert sorted(key for key in keys if not _named(key)) == []
