import json
import re

import dash
import pytest

from annotation_client import create_app
from annotation_client._app import BOOTSTRAP_CSS


@pytest.fixture
def client(tmp_path):
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    return app.server.test_client()


def test_health_answers_json(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["model_server_url"] == "http://127.0.0.1:9"


def test_index_loads_nothing_from_outside(client):
    html = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, "the index page should reference its scripts and styles"
    external = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert external == []
    assert BOOTSTRAP_CSS in urls


def test_bootstrap_css_is_served_from_the_install(client):
    response = client.get(BOOTSTRAP_CSS)
    assert response.status_code == 200
    css = response.get_data(as_text=True)
    assert "Bootstrap  v5" in css[:200]
    assert ".btn-primary" in css
    assert client.get("/_sonotrace/vendor/bootstrap/../../../etc/passwd").status_code == 404


def test_every_script_the_page_needs_is_served_locally(client):
    html = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts
    for src in scripts:
        assert client.get(src).status_code == 200, src


def test_pages_are_discovered_and_the_navbar_links_them(client):
    paths = {page["path"] for page in dash.page_registry.values()}
    assert "/" in paths
    layout = json.dumps(client.get("/_dash-layout").get_json())
    assert "/learn" in paths
    assert '"href": "/"' in layout
    assert '"href": "/learn"' in layout
    modules = {page["module"].split(".")[-1] for page in dash.page_registry.values()}
    assert "not_found_404" in modules


def test_the_stable_ids_are_on_the_annotate_page(client, tmp_path):
    from annotation_client import ids

    app = create_app({"DATA_DIR": tmp_path})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        rendered = json.dumps(
            page["layout"]().to_plotly_json(), default=lambda o: o.to_plotly_json()
        )
    for name in (
        "IMAGE_UPLOAD",
        "ANNOTATION_GRAPH",
        "SEGMENT_BUTTON",
        "CLASSIFY_BUTTON",
        "SAVE_BUTTON",
        "FINAL_LABEL",
        "UNDO_BUTTON",
        "REDO_BUTTON",
        "VERTEX_DENSITY",
    ):
        value = getattr(ids, name)
        assert value == name.lower().replace("_", "-")
        assert f'"id": "{value}"' in rendered, value


def test_a_second_app_in_one_process_gets_the_callbacks_once(tmp_path):
    # Dash hands page callbacks to one app per process (each gunicorn worker builds
    # one); a test that builds several must still get each callback exactly once.
    create_app({"DATA_DIR": tmp_path})
    second = create_app({"DATA_DIR": tmp_path})
    client = second.server.test_client()
    dependencies = client.get("/_dash-dependencies").get_json()
    outputs = [d["output"] for d in dependencies]
    assert len(outputs) == len(set(outputs))
    assert any("outline-history.data" in o for o in outputs)
