"""``python -m annotation_client`` serves the app with gunicorn."""

import json
import sys
import urllib.request

import pytest

from annotation_client._app import BOOTSTRAP_CSS


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_the_command_serves_health_page_and_local_css(
    start_service, free_port, tmp_path, artifacts_dir
):
    base = f"http://127.0.0.1:{free_port}"
    start_service(
        [
            sys.executable,
            "-m",
            "annotation_client",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port),
        ],
        f"{base}/health",
        env={
            "SONOTRACE_DATA_DIR": str(tmp_path),
            "SONOTRACE_MODEL_SERVER_URL": "http://127.0.0.1:9",
        },
        timeout=60,
    )
    status, body = _get(f"{base}/health")
    assert status == 200
    assert json.loads(body)["model_server_url"] == "http://127.0.0.1:9"
    status, html = _get(f"{base}/learn")
    assert status == 200 and "_dash-config" in html
    status, css = _get(base + BOOTSTRAP_CSS)
    assert status == 200 and ".navbar" in css
    # gunicorn 27's control socket is one path per user: a second client would take it.
    log = next(artifacts_dir.glob("service-*.log")).read_text()
    assert "Control socket" not in log


def test_bad_port_is_refused():
    from annotation_client.__main__ import main

    with pytest.raises(SystemExit, match="--port"):
        main(["--port", "0"])
