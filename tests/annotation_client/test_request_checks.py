"""Requests the client must not answer: another Host (DNS rebinding), state changes from
another site, callback bodies past their limit; the security headers; the data folder's
permissions."""

from __future__ import annotations

import io
import os
import stat
import time

import pytest
from _dash_helpers import ROUTE, saved_page_body

from annotation_client import ClientConfig, _callback_guard, create_app
from annotation_client import __main__ as launcher
from annotation_client._config import host_is_trusted, trusted_hosts

pytestmark = pytest.mark.usefixtures("an_app_exists")


def _make(tmp_path, host="localhost", **config):
    app = create_app({"DATA_DIR": tmp_path / "data", "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      **config})
    client = app.server.test_client()
    # Dash registers its callbacks at the first request.
    assert client.get("/", headers={"Host": host}).status_code == 200
    return app, client


@pytest.fixture
def app_client(tmp_path):
    return _make(tmp_path)


@pytest.fixture
def client(app_client):
    return app_client[1]


# --- Host -----------------------------------------------------------------------------

EVERY_KIND_OF_REQUEST = [
    ("GET", "/"),
    ("GET", "/saved"),
    ("GET", "/health"),
    ("GET", "/api/saved?format=csv"),
    ("GET", "/api/agreement"),
    ("GET", "/api/progress"),
    ("GET", "/_dash-layout"),
    ("GET", "/_dash-dependencies"),
    ("GET", "/_sonotrace/vendor/bootstrap/css/bootstrap.min.css"),
    ("GET", "/no/such/page"),
    ("POST", ROUTE),
    ("POST", "/api/saved"),
]


@pytest.mark.parametrize(("method", "path"), EVERY_KIND_OF_REQUEST)
@pytest.mark.parametrize("host", ["attacker.example:8050", "attacker.example", "127.0.0.2",
                                  "localhost.attacker.example", "bad host", ""])
def test_a_request_to_another_host_is_a_plain_400(client, method, path, host):
    response = client.open(path, method=method, headers={"Host": host}, json=saved_page_body())
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "SONOTRACE_TRUSTED_HOSTS" in text
    assert "saved-table" not in text and "annotator" not in text
    if host == "attacker.example:8050":  # the name to list, without the port it came with
        assert text == (
            "Bad Request: this client does not answer to the host 'attacker.example:8050'; to "
            "allow it, add 'attacker.example' (without a port) to SONOTRACE_TRUSTED_HOSTS\n")
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("host", ["localhost", "localhost:8050", "127.0.0.1:8050", "[::1]:8050",
                                  "LOCALHOST:8050", "localhost.:8050"])
def test_loopback_names_are_trusted_by_default(client, host):
    assert client.get("/health", headers={"Host": host}).status_code == 200
    response = client.post(ROUTE, json=saved_page_body(), headers={"Host": host})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_the_trusted_hosts_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SONOTRACE_TRUSTED_HOSTS", "sonotrace.example.org, .ward.example")
    _, client = _make(tmp_path, host="sonotrace.example.org")
    # The loopback names stay trusted: a health check or the launcher uses them.
    for host in ("sonotrace.example.org:8050", "ward.example", "pc1.ward.example",
                 "localhost", "127.0.0.1:8050"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "notward.example", "10.0.0.5"):
        assert client.get("/health", headers={"Host": host}).status_code == 400, host


def test_a_star_trusts_any_host(tmp_path):
    _, client = _make(tmp_path, TRUSTED_HOSTS="*")
    assert client.get("/health", headers={"Host": "anything.example"}).status_code == 200


@pytest.mark.parametrize("value", ["localhost:8050", "http://localhost", ",", "a/b", " ",
                                   # hex digits, dots and a colon: no IPv6 address either
                                   "10.0.0.5:8050", "face.bead:80", "a:80", "::g",
                                   # a zone no Host header can name
                                   "fe80::1%eth0"])
def test_a_bad_trusted_hosts_value_is_refused_by_name(value):
    if not value.strip():
        # Blank in the environment means the default, as for every variable.
        assert ClientConfig.load(environ={"SONOTRACE_TRUSTED_HOSTS": value}).trusted_hosts == (
            "localhost", "127.0.0.1", "::1")
        return
    with pytest.raises(ValueError, match="SONOTRACE_TRUSTED_HOSTS="):
        ClientConfig.load(environ={"SONOTRACE_TRUSTED_HOSTS": value})
    with pytest.raises(ValueError, match="SONOTRACE_TRUSTED_HOSTS="):
        ClientConfig(trusted_hosts=value)


def test_trusted_hosts_are_normalized():
    assert trusted_hosts("LocalHost, [::1], Example.ORG.") == (
        "localhost", "127.0.0.1", "::1", "example.org")
    assert ClientConfig(trusted_hosts="a.example,b.example").trusted_hosts == (
        "localhost", "127.0.0.1", "::1", "a.example", "b.example")
    assert trusted_hosts("fe80::1, [2001:db8::5], ::ffff:10.0.0.5")[3:] == (
        "fe80::1", "2001:db8::5", "::ffff:a00:5")  # each in its one short spelling
    assert host_is_trusted("[::ffff:10.0.0.5]:8050", trusted_hosts("::ffff:10.0.0.5"))
    assert host_is_trusted("[::1]:8050", ("::1",))
    # However either spells an IPv6 address.
    assert trusted_hosts("2001:DB8:0::1")[3:] == ("2001:db8::1",)
    assert host_is_trusted("[2001:db8:0:0::1]", trusted_hosts("2001:db8::1"))
    assert not host_is_trusted(None, ("localhost",))
    assert not host_is_trusted("localhost:99999999", ("localhost",))


def test_the_launcher_trusts_a_specific_bind_address_only():
    loopback = ("localhost", "127.0.0.1", "::1")
    assert launcher.with_bind_address(loopback, "10.0.0.5") == (*loopback, "10.0.0.5")
    assert launcher.with_bind_address(loopback, "127.0.0.1") == loopback
    assert launcher.with_bind_address(loopback, "0.0.0.0") == loopback
    assert launcher.with_bind_address(loopback, "::") == loopback


def test_bound_to_every_network_with_only_loopback_trusted_the_launcher_says_so(caplog):
    import logging

    log = logging.getLogger("sonotrace.test")
    loopback = ("localhost", "127.0.0.1", "::1")
    with caplog.at_level("INFO", logger="sonotrace.test"):
        launcher.note_wildcard(log, "0.0.0.0", loopback, "browsers")
        said = [r for r in caplog.records if r.name == "sonotrace.test"]
        assert len(said) == 1 and said[0].levelname == "INFO"
        assert "add the names browsers use to SONOTRACE_TRUSTED_HOSTS" in said[0].getMessage()
        caplog.clear()
        launcher.note_wildcard(log, "0.0.0.0", (*loopback, "ws01.example"), "browsers")
        launcher.note_wildcard(log, "127.0.0.1", loopback, "browsers")
        assert [r for r in caplog.records if r.name == "sonotrace.test"] == []


# --- Origin ---------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://evil.example", "Host": "localhost:8050"},
    {"Origin": "null"},
    {"Origin": "http://localhost:3000", "Host": "localhost:8050"},
    {"Origin": "http://127.0.0.1:8050", "Host": "localhost:8050"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
])
@pytest.mark.parametrize("path", [ROUTE, "/api/saved", "/health"])
def test_a_state_change_from_another_site_is_403(client, headers, path):
    response = client.post(path, json=saved_page_body(), headers=headers)
    assert response.status_code == 403
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("Forbidden: ")



def test_a_proxy_that_sends_its_own_host_is_told_what_to_pass_through(client):
    # nginx's default proxy_pass sends the upstream's address as Host: every callback
    # of the page opened as sonotrace.example.org looks cross-origin.
    response = client.post(ROUTE, json=saved_page_body(), headers={
        "Origin": "https://sonotrace.example.org", "Host": "127.0.0.1:8050"})
    assert response.status_code == 403
    assert response.get_data(as_text=True) == (
        "Forbidden: it comes from another origin ('https://sonotrace.example.org') than the "
        "host it was sent to ('127.0.0.1:8050'); behind a reverse proxy, pass the browser's "
        "Host header through (nginx: proxy_set_header Host $host)\n")


@pytest.mark.parametrize("headers", [
    {},
    {"Origin": "http://localhost"},
    {"Origin": "http://localhost:8050", "Host": "localhost:8050", "Sec-Fetch-Site": "same-origin"},
    {"Origin": "http://[::1]:8050", "Host": "[::1]:8050"},
    # Behind a TLS proxy that passes the Host without its port (nginx's $host).
    {"Origin": "https://localhost", "Host": "localhost"},
    {"Origin": "https://localhost:8443", "Host": "localhost"},
])
def test_the_pages_own_callbacks_pass(client, headers):
    response = client.post(ROUTE, json=saved_page_body(), headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_reading_from_another_site_is_left_to_the_browser(client):
    # A GET changes nothing, and its answer is the browser's to withhold (no CORS).
    response = client.get("/health", headers={"Origin": "http://evil.example",
                                              "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


# --- headers --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/health", "/api/saved", "/_dash-layout", "/nowhere"])
def test_every_answer_forbids_framing_and_sniffing(client, path):
    headers = client.get(path).headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Not no-referrer: the browser would send "Origin: null" with the page's callbacks.
    assert headers["Referrer-Policy"] == "same-origin"


def test_a_callback_answer_has_the_headers_too(client):
    headers = client.post(ROUTE, json=saved_page_body()).headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


# --- callback body size ---------------------------------------------------------------

def _saved_body_of(size: int) -> bytes:
    body = saved_page_body()
    body["inputs"][2]["value"] = ""
    raw = _json(body)
    body["inputs"][2]["value"] = "x" * (size - len(raw))
    return _json(body)


def _json(body) -> bytes:
    import json

    return json.dumps(body, separators=(",", ":")).encode()


def _image_callback_output(app) -> str:
    return next(out for out in app.callback_map if "image-data.data" in out
                and "annotation-graph.figure" in out and "image-meta.data" in out
                and out.startswith("..image-meta.data"))


def test_only_the_callbacks_that_carry_the_image_get_the_upload_limit(app_client):
    app, _ = app_client
    carriers = _callback_guard.carriers(app.callback_map,
                                        {("image-upload", "contents"), ("image-data", "data")})
    names = " ".join(carriers)
    # Opening an upload, segmenting, classifying, saving: they send the file.
    assert "image-upload.contents" in names
    assert "ai-result.data" in names and "save-alert.children" in names
    # The Saved page's table and the outline edits do not.
    assert not any("saved-table" in out for out in carriers)
    assert not any(out.startswith("..outline-history.data") for out in carriers)


def test_a_non_image_callback_past_the_small_limit_is_413_before_it_is_read(app_client,
                                                                             monkeypatch):
    app, client = app_client
    monkeypatch.setattr(_callback_guard, "SMALL_LIMIT", 100_000)
    assert client.post(ROUTE, data=_saved_body_of(99_000),
                       content_type="application/json").status_code == 200
    read = []

    class Stream(io.BytesIO):
        def read(self, size=-1):
            chunk = super().read(size)
            read.append(len(chunk))
            return chunk

    body = _saved_body_of(3_000_000)
    response = client.post(ROUTE, input_stream=Stream(body), content_length=len(body),
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "callback_too_large"
    assert "100000 bytes" in response.get_json()["error"]["message"]
    assert sum(read) <= 64 * 1024  # the head only, to learn which callback it is


def test_a_chunked_body_is_cut_off_at_the_limit(app_client, monkeypatch):
    app, client = app_client
    monkeypatch.setattr(_callback_guard, "SMALL_LIMIT", 100_000)
    body = _saved_body_of(3_000_000)
    environ = {"wsgi.input_terminated": True}
    response = client.post(ROUTE, input_stream=io.BytesIO(body), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides=environ)
    assert response.status_code == 413
    small = _saved_body_of(50_000)
    response = client.post(ROUTE, input_stream=io.BytesIO(small), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides=environ)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_an_image_callback_may_send_an_upload_sized_body(app_client, monkeypatch):
    app, client = app_client
    monkeypatch.setattr(_callback_guard, "SMALL_LIMIT", 100_000)
    output = _image_callback_output(app)
    body = ('{"output":' + _json(output).decode() + ',"outputs":[],"inputs":[{"id":"image-upload",'
            '"property":"contents","value":"data:image/png;base64,' + "A" * 3_000_000 + '"}]}')
    response = client.post(ROUTE, data=body, content_type="application/json")
    # Past the size check: refused for its envelope (too few outputs), not its size.
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_callback_request"
    assert app.server.config["MAX_CONTENT_LENGTH"] > 20 * 1024 * 1024
    # Past the upload limit, even an image callback is refused.
    huge = body.replace("A" * 3_000_000, "A" * (app.server.config["MAX_CONTENT_LENGTH"] + 1))
    assert client.post(ROUTE, data=huge, content_type="application/json").status_code == 413


@pytest.mark.parametrize("item", [b"{},", b"[],", b'{"a":0,"b":0},'])
def test_a_body_of_countless_tiny_objects_is_refused_before_parsing(app_client, item):
    app, client = app_client
    # Named as an image callback, so that the upload-sized limit applies: 30 MB of "{},"
    # took a worker from 92 MB to 912 MB while it was parsed.
    output = _json(_image_callback_output(app))
    body = b'{"output":' + output + b',"inputs":[' + item * (25_000_000 // len(item)) + b"0]}"
    started = time.perf_counter()
    response = client.post(ROUTE, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON objects, lists and keys" in response.get_json()["error"]["message"]
    assert time.perf_counter() - started < 5  # counted in bytes, not parsed


# --- the data folder ------------------------------------------------------------------

def test_a_new_data_folder_is_its_owners_only(tmp_path):
    folder = tmp_path / "new" / "data"
    ClientConfig(data_dir=folder).check_data_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_an_existing_data_folder_keeps_its_mode(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    folder.chmod(0o750)
    ClientConfig(data_dir=folder).check_data_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750


def test_the_index_is_made_owner_only_at_start(tmp_path):
    index = tmp_path / "data" / "index.sqlite3"
    _, client = _make(tmp_path)
    assert client.get("/api/saved").status_code == 200  # the index file exists now
    index.chmod(0o644)  # as an index made before, or under another umask
    _make(tmp_path)
    assert stat.S_IMODE(index.stat().st_mode) == 0o600


def test_the_launcher_sets_an_owner_only_umask_before_making_anything(tmp_path, monkeypatch):
    masks = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: masks.append(mask) or real(mask))
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(not_a_folder))
    previous = real(0o022)
    try:
        assert launcher.main(["--port", "8050"]) == 2  # stops at the data folder
    finally:
        real(previous)
    assert masks[0] == 0o077
