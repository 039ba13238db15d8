"""Page state the server signs comes back unaltered, or the callback is refused."""

import json

import pytest

from annotation_client import create_app
from annotation_client._callback_guard import CODE
from annotation_client._signing import (
    ENV,
    forged_store,
    load_key,
    share_key_with_workers,
    sign,
    verify,
)

KEY = b"k" * 32
META = {"sha256": "ab" * 32, "name": "scan.png", "width": 640, "height": 480,
        "pixel_spacing_mm": [0.1, 2.0], "notes": []}


def _through_the_browser(value):
    # JavaScript writes 2.0 back as 2; JSON keeps everything else.
    def js(v):
        if isinstance(v, int) and not isinstance(v, bool):
            v = float(v)  # every number is a double there
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: js(x) for k, x in v.items()}
        if isinstance(v, list):
            return [js(x) for x in v]
        return v

    return js(json.loads(json.dumps(value)))


def test_a_signed_value_survives_the_round_trip_through_the_browser():
    signed = sign(dict(META, at=1764864123456789123), KEY)  # a time in ns: over 2**53
    assert verify(signed, KEY)
    back = _through_the_browser(signed)
    assert back["pixel_spacing_mm"] == [0.1, 2]
    assert back["at"] != 1764864123456789123  # rounded to a double on the way
    assert verify(back, KEY)
    # Signing again replaces the signature rather than signing it.
    assert sign(signed, KEY) == signed
    assert not verify(dict(signed, at=1764864123456789123 + 10**6), KEY)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(width=100000),
        lambda m: m.update(height=480.5),
        lambda m: m.update(name="scan\x00.png"),
        lambda m: m.update(worklist_path="../../etc/passwd"),
        lambda m: m.pop("notes"),
        lambda m: m.pop("signature"),
        lambda m: m.update(signature="0" * 64),
        lambda m: m.update(signature=5),
    ],
)
def test_any_change_breaks_the_signature(change):
    signed = sign(META, KEY)
    change(signed)
    assert not verify(signed, KEY)


def test_another_key_or_no_dict_does_not_verify():
    assert not verify(sign(META, KEY), b"x" * 32)
    for value in (None, "meta", [sign(META, KEY)], 5):
        assert not verify(value, KEY)
    assert not verify({"a": {1, 2}, "signature": "0" * 64}, KEY)  # not JSON: refused


def test_the_key_comes_from_the_environment_or_is_random():
    assert load_key({ENV: "s3cret"}) == load_key({ENV: " s3cret "})
    assert load_key({ENV: "s3cret"}) != load_key({ENV: "other"})
    assert load_key({}) != load_key({})  # random: this process only
    environ = {}
    share_key_with_workers(environ)
    first = environ[ENV]
    share_key_with_workers(environ)
    assert environ[ENV] == first and len(first) == 64
    assert load_key(environ) == load_key(dict(environ))


def test_forged_store_finds_the_first_altered_store():
    meta = sign(META, KEY)
    body = {"inputs": [{"id": "page-load", "property": "data", "value": 1}],
            "state": [{"id": "image-meta", "property": "data", "value": meta},
                      {"id": "ai-result", "property": "data", "value": None}]}
    assert forged_store(body, KEY) is None
    body["state"][1]["value"] = {"image": META["sha256"], "paths": []}
    assert forged_store(body, KEY) == "ai-result"
    body["state"][1]["value"] = None
    body["state"][0]["value"] = dict(meta, width=1)
    assert forged_store(body, KEY) == "image-meta"
    # The undo history is signed too (only the server's edit callback writes it).
    body["state"][0] = {"id": "outline-history", "property": "data", "value": {"x": 1}}
    assert forged_store(body, KEY) == "outline-history"
    # Stores the browser writes itself are not checked.
    body["state"][0] = {"id": "box-pending", "property": "data", "value": [{"at": 1}]}
    assert forged_store(body, KEY) is None


def _restore_body(app, meta):
    """The request the browser sends when the Annotate page is drawn again."""
    output, spec = next(
        (o, s) for o, s in app.callback_map.items()
        if [i["id"] for i in s["inputs"]] == ["annotate-page-load"]
        and any(st["id"] == "image-meta" for st in s["state"])
        and o.startswith("..annotation-graph.figure...image-info")
    )
    outputs = []
    for part in output.strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        outputs.append({"id": ident, "property": prop})
    values = {"image-meta": meta}
    return {
        "output": output,
        "outputs": outputs,
        "inputs": [{"id": "annotate-page-load", "property": "data", "value": 1}],
        "state": [{"id": s["id"], "property": s["property"], "value": values.get(s["id"])}
                  for s in spec["state"]],
        "changedPropIds": ["annotate-page-load.data"],
    }


def test_the_guard_refuses_a_callback_carrying_an_altered_meta(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "one key for the test")
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/").status_code == 200  # Dash registers its callbacks here
    meta = sign(META, load_key({ENV: "one key for the test"}))
    # Signed, it reaches the callback (which has no image data to draw, so no update).
    assert client.post("/_dash-update-component", json=_restore_body(app, meta)).status_code == 204
    for forged in (dict(meta, width=100000, height=100000), dict(META),
                   sign(META, b"another installation's key")):
        response = client.post("/_dash-update-component", json=_restore_body(app, forged))
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == CODE and "image-meta" in error["message"]
        assert "reload the page" in error["message"]
