"""The server answers only to its own host names, and every answer carries the
security headers."""

from __future__ import annotations

import json

import pytest

from model_server import create_app
from model_server.__main__ import with_bind_address
from model_server._app import app_settings, host_is_trusted


@pytest.fixture
def client():
    return create_app({"WARMUP": False, "TESTING": True}).test_client()


ROUTES = [
    ("GET", "/health"),
    ("GET", "/models"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/"),
    ("GET", "/static/docs.js"),
    ("GET", "/no/such/route"),
    ("POST", "/predict"),
    ("POST", "/vectorize"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("host", ["attacker.example:5000", "attacker.example", "127.0.0.2",
                                  "localhost.attacker.example", "bad host", ""])
def test_a_request_to_another_host_is_a_json_400(client, method, path, host):
    response = client.open(path, method=method, headers={"Host": host}, data=b"\x89PNG",
                           content_type="image/png")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == 400
    assert "SONOTRACE_TRUSTED_HOSTS" in error["message"]
    assert response.headers["X-Frame-Options"] == "DENY"
    if host == "attacker.example:5000":  # the name to list, without the port it came with
        assert error["message"] == (
            "this server does not answer to the host 'attacker.example:5000'; to allow it, "
            "add 'attacker.example' (without a port) to SONOTRACE_TRUSTED_HOSTS")


def test_a_refused_host_is_logged_with_who_asked(client, caplog):
    with caplog.at_level("WARNING", logger="model_server._app"):
        assert client.get("/health", headers={"Host": "ws01.hospital.org:5000"}).status_code == 400
    assert ("refused a request from 127.0.0.1 for the host 'ws01.hospital.org:5000': not in "
            "SONOTRACE_TRUSTED_HOSTS") in caplog.text


def test_the_check_comes_before_every_other_hook():
    # Nothing, not even the request log's timer or the read timeout, runs first.
    app = create_app({"WARMUP": False, "TESTING": True})
    assert app.before_request_funcs[None][0].__name__ == "check_host"


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000",
                                  "LocalHost:5000"])
def test_loopback_names_are_trusted_by_default(client, host):
    assert client.get("/openapi.json", headers={"Host": host}).status_code == 200


def test_the_trusted_hosts_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SONOTRACE_TRUSTED_HOSTS", "model-server,localhost")
    client = create_app({"WARMUP": False, "TESTING": True}).test_client()
    assert client.get("/openapi.json", headers={"Host": "model-server:5000"}).status_code == 200
    assert client.get("/openapi.json", headers={"Host": "other-server:5000"}).status_code == 400


def test_a_list_of_other_names_still_trusts_the_loopback_names(monkeypatch):
    # A compose override or a LAN list that names only the network's names must not
    # lock out the container's health check (127.0.0.1) or the launcher's.
    monkeypatch.setenv("SONOTRACE_TRUSTED_HOSTS", "model-server")
    client = create_app({"WARMUP": False, "TESTING": True}).test_client()
    for host in ("127.0.0.1:5000", "localhost", "[::1]:5000"):
        assert client.get("/openapi.json", headers={"Host": host}).status_code == 200, host


def test_a_star_trusts_any_host():
    client = create_app({"WARMUP": False, "TESTING": True, "TRUSTED_HOSTS": "*"}).test_client()
    assert client.get("/openapi.json", headers={"Host": "any.example"}).status_code == 200


def test_flasks_own_host_check_is_left_off():
    # Flask's TRUSTED_HOSTS goes through werkzeug, which never matches ::1.
    app = create_app({"WARMUP": False, "TESTING": True})
    assert app.config["TRUSTED_HOSTS"] is None
    assert app.config["SONOTRACE_TRUSTED_HOSTS"] == ("localhost", "127.0.0.1", "::1")


@pytest.mark.parametrize("value", ["localhost:5000", "http://model-server", ",", "a/b", None])
def test_a_bad_value_is_refused_by_name(value):
    with pytest.raises(ValueError, match="SONOTRACE_TRUSTED_HOSTS="):
        app_settings({"TRUSTED_HOSTS": value}, environ={})


def test_a_blank_variable_means_the_default():
    settings = app_settings(environ={"SONOTRACE_TRUSTED_HOSTS": " "})
    assert settings["TRUSTED_HOSTS"] == ("localhost", "127.0.0.1", "::1")


def test_host_matching():
    assert host_is_trusted("Sonotrace.Example.org.:443", ("sonotrace.example.org",))
    assert host_is_trusted("pc1.ward.example", (".ward.example",))
    assert not host_is_trusted("notward.example", (".ward.example",))
    assert not host_is_trusted(None, ("localhost",))
    assert not host_is_trusted("[::1", ("::1",))


def test_the_launcher_trusts_a_specific_bind_address_only():
    loopback = ("localhost", "127.0.0.1", "::1")
    assert with_bind_address(loopback, "10.0.0.5") == (*loopback, "10.0.0.5")
    assert with_bind_address(loopback, "::1") == loopback
    assert with_bind_address(loopback, "0.0.0.0") == loopback
    assert with_bind_address(("*",), "10.0.0.5") == ("*",)


@pytest.mark.parametrize(
    "path", ["/health", "/docs", "/openapi.json", "/nowhere", "/static/docs.css"])
def test_every_answer_forbids_framing_and_sniffing(client, path):
    headers = client.get(path).headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_docker_compose_names_every_host_the_services_are_called_by():
    from pathlib import Path
    from urllib.parse import urlsplit

    import yaml

    from annotation_client._config import host_is_trusted as client_trusts
    from annotation_client._config import trusted_hosts as client_hosts
    from model_server._app import trusted_hosts

    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    server = compose["services"]["model-server"]["environment"]
    client = compose["services"]["annotation-client"]["environment"]
    server_hosts = trusted_hosts(server["SONOTRACE_TRUSTED_HOSTS"])
    # The client calls the server by its service name; the healthchecks call 127.0.0.1.
    assert host_is_trusted(urlsplit(client["SONOTRACE_MODEL_SERVER_URL"]).netloc, server_hosts)
    assert host_is_trusted("127.0.0.1:5000", server_hosts)
    for name in ("localhost:8050", "127.0.0.1:8050"):  # the healthcheck, the browser
        assert client_trusts(name, client_hosts(client["SONOTRACE_TRUSTED_HOSTS"]))


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
])
@pytest.mark.parametrize("path", ["/predict", "/classify", "/vectorize"])
def test_a_post_from_another_site_is_a_json_403(client, headers, path, caplog):
    # Audit 711: any web page the radiologist opened could keep the models busy with
    # POSTs it cannot read the answers of (the client refused them; the server did not).
    with caplog.at_level("WARNING", logger="model_server._app"):
        response = client.post(path, headers=headers, data=b"\x89PNG", content_type="image/png")
    assert response.status_code == 403
    assert response.get_json()["error"]["message"].startswith("forbidden: it comes from")
    assert "refused a POST" in caplog.text


def test_the_client_curl_and_the_servers_own_pages_are_not_refused(client):
    for headers in ({}, {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
                    {"Origin": "http://localhost:5000", "Host": "localhost:5000"}):
        assert client.post("/vectorize", headers=headers, data=b"",
                           content_type="image/png").status_code == 400  # empty, not 403
    assert client.get("/health", headers={"Sec-Fetch-Site": "cross-site"}).status_code != 403


def _without_host(client, path: str, remote_addr: str) -> tuple[int, bytes]:
    """Status and body of an HTTP/1.0 GET that sends no Host header (the test client
    always adds one, so the WSGI app is called directly)."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(path=path, environ_base={"REMOTE_ADDR": remote_addr},
                             environ_overrides={"SERVER_PROTOCOL": "HTTP/1.0"}).get_environ()
    del environ["HTTP_HOST"]
    body, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    return int(status.split()[0]), b"".join(body)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_an_http_1_0_request_without_host_from_this_machine_is_answered(client, address):
    # Audit 802 F8: "does not answer to the host ''" for HAProxy's default httpchk.
    assert _without_host(client, "/openapi.json", address)[0] == 200


def test_one_without_host_from_elsewhere_is_told_it_has_no_host(client, caplog):
    with caplog.at_level("WARNING", logger="model_server._app"):
        status, body = _without_host(client, "/health", "192.0.2.7")
    assert status == 400
    assert json.loads(body)["error"]["message"].startswith(
        "the request has no Host header (HTTP/1.0 lets it be left out)")
    assert "refused a request from 192.0.2.7 without a Host header" in caplog.text
