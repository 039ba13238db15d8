"""Page state the server signs comes back unaltered, or the callback is refused."""

import json

import pytest

from annotation_client import create_app
from annotation_client._callback_guard import CODE
from annotation_client._signing import (
    ENV,
    KEY_FILE,
    MAKE_KEY,
    PREVIOUS_ENV,
    check_key,
    forged_store,
    load_key,
    load_previous_keys,
    sign,
    verify,
)

KEY = b"k" * 32
#: A key SONOTRACE_SECRET_KEY accepts (secrets.token_urlsafe(32) made it).
STRONG = "Vq3nX0b8w_Jr2LQk9yHfT1s-eZpA7cMdU4oGiN6RtWE"
STORE = "image-meta"
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
    signed = sign(dict(META, at=1764864123456789123), KEY, STORE)  # a time in ns: over 2**53
    assert verify(signed, KEY, STORE)
    back = _through_the_browser(signed)
    assert back["pixel_spacing_mm"] == [0.1, 2]
    assert back["at"] != 1764864123456789123  # rounded to a double on the way
    assert verify(back, KEY, STORE)
    # Signing again replaces the signature rather than signing it.
    assert sign(signed, KEY, STORE) == signed
    assert not verify(dict(signed, at=1764864123456789123 + 10**6), KEY, STORE)


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
    signed = sign(META, KEY, STORE)
    change(signed)
    assert not verify(signed, KEY, STORE)


def test_another_key_or_no_dict_does_not_verify():
    assert not verify(sign(META, KEY, STORE), b"x" * 32, STORE)
    # Signed for one store, refused in another's place.
    assert not verify(sign(META, KEY, STORE), KEY, "ai-result")
    for value in (None, "meta", [sign(META, KEY, STORE)], 5):
        assert not verify(value, KEY, STORE)
    assert not verify({"a": {1, 2}, "signature": "0" * 64}, KEY, STORE)  # not JSON: refused


def test_the_key_comes_from_the_environment_or_the_data_folder(tmp_path):
    assert load_key(tmp_path, {ENV: STRONG}) == load_key(None, {ENV: f" {STRONG} "})
    assert load_key(tmp_path, {ENV: STRONG}) != load_key(tmp_path, {ENV: STRONG[::-1]})
    assert not (tmp_path / KEY_FILE).exists()  # with the variable, nothing is written
    first = load_key(tmp_path / "data", {})
    assert (tmp_path / "data" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    # Another worker, or the client restarted, reads the same key.
    assert load_key(tmp_path / "data", {}) == first and len(first) == 32
    assert load_key(None, {}) != load_key(None, {})  # no folder: random, this process only
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / KEY_FILE).write_bytes(b"short")
    replaced = load_key(tmp_path / "bad", {})  # a start's leftover: replaced for good
    assert len(replaced) == 32 and (tmp_path / "bad" / KEY_FILE).read_bytes() == replaced


def test_forged_store_checks_the_places_the_callback_declares():
    spec = {"inputs": [{"id": "page-load", "property": "data"}],
            "state": [{"id": "image-meta", "property": "data"},
                      {"id": "ai-result", "property": "data"},
                      {"id": "box-pending", "property": "data"}]}
    meta = sign(META, KEY, "image-meta")
    body = {"inputs": [{"id": "page-load", "property": "data", "value": 1}],
            "state": [{"id": "image-meta", "property": "data", "value": meta},
                      {"id": "ai-result", "property": "data", "value": None},
                      {"id": "box-pending", "property": "data", "value": [{"at": 1}]}]}
    assert forged_store(body, spec, KEY) is None  # the browser's own stores: not checked
    body["state"][1]["value"] = {"image": META["sha256"], "paths": []}
    assert forged_store(body, spec, KEY) == "ai-result"
    body["state"][1]["value"] = meta  # signed, but for another store
    assert forged_store(body, spec, KEY) == "ai-result"
    body["state"][1]["value"] = None
    # Dash passes values by place: renaming the item does not get a value past.
    body["state"][0] = {"id": "not-a-store", "property": "data", "value": dict(meta, width=1)}
    assert forged_store(body, spec, KEY) == "image-meta"


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
    monkeypatch.setenv(ENV, STRONG)
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/").status_code == 200  # Dash registers its callbacks here
    key = load_key(None, {ENV: STRONG})
    meta = sign(META, key, STORE)
    # Signed, it reaches the callback (which has no image data to draw, so no update).
    assert client.post("/_dash-update-component", json=_restore_body(app, meta)).status_code == 204
    for forged in (dict(meta, width=100000, height=100000), dict(META),
                   sign(META, b"another installation's key", STORE),
                   sign(META, key, "ai-result")):
        response = client.post("/_dash-update-component", json=_restore_body(app, forged))
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == CODE and "image-meta" in error["message"]
        assert "reload the page" in error["message"]


def test_the_guard_goes_by_place_not_by_the_name_a_request_gives(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, STRONG)
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    body = _restore_body(app, dict(META, width=100000, height=100000))
    for item in body["state"]:
        if item["id"] == "image-meta":
            item["id"] = "not-a-signed-store"
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 400 and "image-meta" in response.get_json()["error"]["message"]


def test_values_json_writes_as_null_are_signed_as_null():
    import numpy as np

    value = {"p": [float("nan"), 0.5], "n": np.int64(3), "f": np.float32(0.25)}
    signed = sign(value, KEY, STORE)
    back = json.loads(json.dumps({**signed, "p": [None, 0.5], "n": 3, "f": 0.25}))
    assert verify(back, KEY, STORE)


@pytest.mark.parametrize("key, why", [
    ("s3cret", "is shorter than 32 characters"),
    ("correct horse battery staple", "is shorter than 32 characters"),
    ("x" * 31, "is shorter than 32 characters"),
    ("a" * 64, "has fewer than 8 different characters"),
    ("abcdefg" * 6, "has fewer than 8 different characters"),
])
def test_a_secret_key_that_could_be_guessed_is_refused_without_being_repeated(
    tmp_path, monkeypatch, key, why
):
    # A guess is tested offline against any signed value a page holds: one SHA-256 of
    # a passphrase is found, and page state forged with it.
    with pytest.raises(ValueError) as info:
        check_key({ENV: f" {key} "})
    message = str(info.value)
    assert message.startswith(f"{ENV} {why}:") and MAKE_KEY in message
    assert key not in message and "\n" not in message
    with pytest.raises(ValueError, match=ENV):
        load_key(tmp_path, {ENV: key})
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.setenv(ENV, key)
    with pytest.raises(ValueError, match=ENV):
        create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})


def test_a_random_key_or_none_is_accepted():
    import secrets

    for key in (None, "", "  ", STRONG, secrets.token_urlsafe(32), secrets.token_hex(16),
                "0123456789abcdef" * 2):
        check_key({} if key is None else {ENV: key})
    assert len(load_key(None, {ENV: secrets.token_hex(16)})) == 32


def _keys_at_once(data_dir, workers=8):
    """The keys ``workers`` threads get from ``load_key(data_dir)`` started together."""
    import threading

    start, keys = threading.Barrier(workers), []

    def worker():
        start.wait()
        keys.append(load_key(data_dir, {}))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys


def test_an_empty_key_file_left_by_a_full_disk_is_replaced_once(tmp_path, caplog):
    # A first start on a full disk left a 0-byte key file: every later start and every
    # worker then signed with a key of its own ("does not hold a 32-byte key"), for good.
    (tmp_path / KEY_FILE).write_bytes(b"")
    (tmp_path / KEY_FILE).chmod(0o600)
    keys = _keys_at_once(tmp_path)  # workers starting together replace it once
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert (tmp_path / KEY_FILE).read_bytes() == keys[0]
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert caplog.text.count("left by a start that could not write the key whole") == 1
    assert "of this process only" not in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE]  # no temporary left
    assert load_key(tmp_path, {}) == keys[0]


def test_workers_starting_together_on_a_new_folder_share_one_key(tmp_path):
    keys = _keys_at_once(tmp_path / "data")
    assert len(set(keys)) == 1 and (tmp_path / "data" / KEY_FILE).read_bytes() == keys[0]


def test_a_key_that_cannot_be_written_leaves_no_file_behind(tmp_path, monkeypatch, caplog):
    import errno
    import os

    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    key = load_key(tmp_path, {})
    assert len(key) == 32 and "of this process only ([Errno 28] No space left" in caplog.text
    assert list(tmp_path.iterdir()) == []  # the next start makes it
    monkeypatch.setattr(os, "fsync", real)
    kept = load_key(tmp_path, {})
    assert kept != key and load_key(tmp_path, {}) == kept


def test_a_key_file_the_client_did_not_leave_is_refused(tmp_path, monkeypatch):
    import os

    (tmp_path / KEY_FILE).write_bytes(b"0123456789abcdef" * 4)  # a hex key, by hand
    with pytest.raises(ValueError) as refused:
        load_key(tmp_path, {})
    assert str(refused.value) == (
        f"{tmp_path / KEY_FILE} holds 64 bytes, not a 32-byte signing key, and was not left "
        "by a start of this client: remove it (a new key is made at the next start, and "
        f"open pages must be reloaded) or set {ENV}")
    assert (tmp_path / KEY_FILE).read_bytes() == b"0123456789abcdef" * 4  # left alone
    # Short, but another user's: not this client's to replace either.
    (tmp_path / KEY_FILE).write_bytes(b"")
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(ValueError, match="holds 0 bytes"):
        load_key(tmp_path, {})
    monkeypatch.undo()


# -------------------------------------------------------------------------- a change of key
#: Another key SONOTRACE_SECRET_KEY accepts.
NEW = "9fK2-pQx7LmZ0aTr5WcYvB3nHs8uJd1eGi4oRkN6tXw"


def test_page_state_signed_with_a_previous_key_is_still_accepted(tmp_path, monkeypatch):
    # Audit 904 F4: a new SONOTRACE_SECRET_KEY refused every open page's state, and the
    # only way on, a reload, threw every reader's unsaved work away.
    old = sign(META, load_key(None, {ENV: STRONG}), STORE)
    monkeypatch.setenv(ENV, NEW)
    refused = create_app({"DATA_DIR": tmp_path / "a", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = refused.server.test_client()
    assert client.get("/").status_code == 200
    assert client.post("/_dash-update-component",
                       json=_restore_body(refused, old)).status_code == 400
    monkeypatch.setenv(PREVIOUS_ENV, f"{STRONG}, ")
    app = create_app({"DATA_DIR": tmp_path / "b", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert client.post("/_dash-update-component",
                       json=_restore_body(app, old)).status_code == 204
    # Still nothing else: a value of another installation's key is refused.
    other = sign(META, b"another installation's key", STORE)
    assert client.post("/_dash-update-component",
                       json=_restore_body(app, other)).status_code == 400


def test_the_data_folders_key_is_not_a_previous_key_and_each_key_counts_once(tmp_path):
    # Audit 916 F3: a site that sets SONOTRACE_SECRET_KEY because a backup of the data
    # folder (which holds the key file) leaked must not go on accepting the leaked key.
    load_key(tmp_path, {})
    assert load_previous_keys({ENV: NEW}) == ()
    # The present key is never listed, and each previous key once.
    assert load_previous_keys({ENV: NEW, PREVIOUS_ENV: f"{NEW} {STRONG} {STRONG}"}) == (
        load_key(None, {ENV: STRONG}),)


def test_a_previous_key_that_could_be_guessed_is_refused_by_number(tmp_path, monkeypatch):
    with pytest.raises(ValueError) as info:
        check_key({ENV: NEW, PREVIOUS_ENV: f"{STRONG} short"})
    message = str(info.value)
    assert message.startswith(f"{PREVIOUS_ENV}: its key number 2 is shorter than 32")
    assert "short" not in message.split(":", 1)[1].replace("shorter", "")
    monkeypatch.setenv(PREVIOUS_ENV, "a" * 40)
    with pytest.raises(ValueError, match=PREVIOUS_ENV):
        create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
