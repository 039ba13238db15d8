"""GET /metrics: Prometheus counts of the answers, their stages, and the server's state.

In one process here; the two-worker server's sums are checked in test_gunicorn.py.
"""

from __future__ import annotations

import os
import re

import pytest
from server_samples import png_bytes, speckle_image

from model_server import _metrics, create_app


def _sample(text: str, name: str, labels: str | None = None) -> float:
    selector = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "")
    found = re.findall(rf"^{selector} (\S+)$", text, flags=re.MULTILINE)
    return float(found[0]) if found else 0.0


def _metrics_text(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return response.get_data(as_text=True)


def test_answers_are_counted_by_route_method_and_status(client):
    before = _metrics_text(client)
    mask = png_bytes((speckle_image(48, 64) > 128).astype("uint8") * 255)
    ok = client.post("/vectorize", data=mask, content_type="image/png")
    assert ok.status_code == 200
    bad = client.post("/vectorize", data=b"not a png", content_type="image/png")
    assert bad.status_code in (400, 415)
    for path in ("/wp-admin", "/random/1", "/random/2"):
        assert client.get(path).status_code == 404
    assert client.open("/health", method="BREW").status_code == 405
    after = _metrics_text(client)

    def grew(name, labels):
        return _sample(after, name, labels) - _sample(before, name, labels)

    assert grew("sonotrace_http_requests_total",
                'endpoint="/vectorize",method="POST",status="200"') == 1
    assert grew("sonotrace_http_requests_total",
                f'endpoint="/vectorize",method="POST",status="{bad.status_code}"') == 1
    # Paths no route serves are one series, whatever they are.
    assert grew("sonotrace_http_requests_total",
                'endpoint="unmatched",method="GET",status="404"') == 3
    assert "wp-admin" not in after and "random" not in after
    # A made-up method is "other": no client can add series of its own.
    assert grew("sonotrace_http_requests_total",
                'endpoint="/health",method="other",status="405"') == 1
    assert "BREW" not in after
    assert grew("sonotrace_http_request_duration_seconds_count", 'endpoint="/vectorize"') == 2
    # The stages of the answered request, as its timing_ms gives them; the refused one
    # has none to give.
    for stage in ok.get_json()["timing_ms"]:
        if stage != "total":
            assert grew("sonotrace_stage_duration_seconds_count", f'stage="{stage}"') == 1
    assert grew("sonotrace_stage_duration_seconds_count", 'stage="total"') == 0


def test_the_server_state_is_read_at_scrape_time(client, app):
    text = _metrics_text(client)
    info = app.extensions["sonotrace_models"].info()
    assert _sample(text, "sonotrace_workers_ready") == 1
    assert _sample(text, "sonotrace_workers_expected") == 1
    labels = f'backend="{info["backend"]}",name="{info["name"]}",version="{info["version"]}"'
    assert _sample(text, "sonotrace_model_info", labels) == 1


def test_metrics_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("SONOTRACE_METRICS", "false")
    app = create_app({"WARMUP": False, "TESTING": True})
    response = app.test_client().get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == 404


def test_a_metrics_setting_that_is_no_yes_or_no_is_refused(monkeypatch):
    monkeypatch.setenv("SONOTRACE_METRICS", "maybe")
    with pytest.raises(ValueError, match="SONOTRACE_METRICS"):
        create_app({"WARMUP": False})


def test_the_workers_folder_is_fresh_each_run(tmp_path, monkeypatch):
    # An operator's folder: an earlier run's counts are dropped, the folder is kept.
    named = tmp_path / "prom"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"old")
    (named / "notes.txt").write_text("theirs")
    monkeypatch.setenv(_metrics.MULTIPROC_ENV, str(named))
    assert _metrics.prepare_workers() == str(named)
    assert sorted(p.name for p in named.iterdir()) == ["notes.txt"]
    _metrics.remove_folder(str(named))
    assert named.is_dir()
    # None named: a new temporary folder, set for the workers and removed at the end.
    monkeypatch.delenv(_metrics.MULTIPROC_ENV)
    made = _metrics.prepare_workers()
    try:
        assert os.environ[_metrics.MULTIPROC_ENV] == made and os.path.isdir(made)
        assert os.listdir(made) == []
    finally:
        _metrics.remove_folder(made)
        monkeypatch.delenv(_metrics.MULTIPROC_ENV)
    assert not os.path.exists(made)


def test_the_openapi_document_names_metrics_only_when_served(client, monkeypatch):
    doc = client.get("/openapi.json").get_json()
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    monkeypatch.setenv("SONOTRACE_METRICS", "off")
    off = create_app({"WARMUP": False, "TESTING": True}).test_client()
    assert "/metrics" not in off.get("/openapi.json").get_json()["paths"]


def test_a_workers_folder_that_cannot_be_one_stops_the_server_in_one_line(tmp_path, capsys):
    from model_server.__main__ import main

    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    for bad in (a_file, a_file / "below"):
        assert main(["--port", "6001"], environ={_metrics.MULTIPROC_ENV: str(bad)}) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{_metrics.MULTIPROC_ENV}={bad}" in err
    # One that does not exist yet is made.
    _metrics.check_folder({_metrics.MULTIPROC_ENV: str(tmp_path / "new")})
    assert (tmp_path / "new").is_dir()


def test_counts_that_cannot_be_read_are_503_and_answers_still_served(client, monkeypatch,
                                                                     tmp_path):
    monkeypatch.setenv(_metrics.MULTIPROC_ENV, str(tmp_path / "gone"))
    response = client.get("/metrics")
    assert response.status_code == 503
    assert "the metrics cannot be read now" in response.get_json()["error"]["message"]
    assert client.get("/health").status_code == 200
