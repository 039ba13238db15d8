"""Malformed callback requests get a JSON 400; well-formed ones still run."""

import pytest
from _dash_helpers import ROUTE, saved_page_body
from dash import Output

from annotation_client import create_app
from annotation_client._callback_guard import CODE, problem

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def client(tmp_path):
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/").status_code == 200  # Dash registers its callbacks here
    return client


def test_the_saved_page_body_is_a_real_callback(client):
    response = client.post(ROUTE, json=saved_page_body())
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert "saved-table" in response.get_json()["response"]


def _short_inputs():
    body = saved_page_body()
    body["inputs"] = body["inputs"][:2]
    return body


def _unknown_output():
    body = saved_page_body()
    body["output"] = "nothing.children"
    return body


def _bad_input_item():
    body = saved_page_body()
    body["inputs"][0] = {"value": 1}
    return body


def _state_not_a_list():
    body = saved_page_body()
    body["state"] = "x"
    return body


def _outputs(value):
    def build():
        body = saved_page_body()
        if value == "drop":
            del body["outputs"]
        else:
            body["outputs"] = value(body["outputs"])
        return body

    return build


def _changed_not_strings():
    body = saved_page_body()
    body["changedPropIds"] = [1]
    return body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{}", "'output'"),
        (b"[]", "JSON object"),
        (b"not json", "not JSON"),
        (b'{"output": 3}', "'output'"),
        (_unknown_output, "no callback has the output 'nothing.children'"),
        (_short_inputs, "'inputs' has 2 item(s); this callback takes 6"),
        (_bad_input_item, "'inputs' must be a list"),
        (_state_not_a_list, "'state' must be a list"),
        (_changed_not_strings, "'changedPropIds'"),
        (_outputs(lambda o: o[:2]), "must list this callback's 5 output(s)"),
        (_outputs(lambda o: []), "must list this callback's 5 output(s)"),
        (_outputs("drop"), "must list this callback's 5 output(s)"),
        (_outputs(lambda o: o[0]), "must list this callback's 5 output(s)"),
        (_outputs(lambda o: [*o[:4], {"id": "nope", "property": "children"}]), "do not match"),
        (_outputs(lambda o: [*o[:4], {"id": ["x"], "property": "children"}]), "do not match"),
        (_outputs(lambda o: [*o[:4], "saved-alert.children"]), "do not match"),
        # Valid JSON, but deeper than the parser follows: said so, not "not JSON".
        (("[" * 50_000 + "]" * 50_000).encode(), "nested deeper than it can be read"),
        (b"[" * 500 + b"{", "not JSON"),
    ],
)
def test_malformed_bodies_get_a_json_400_and_the_app_keeps_serving(client, body, reason):
    if callable(body):
        response = client.post(ROUTE, json=body())
    else:
        response = client.post(ROUTE, data=body, content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == CODE
    assert reason in error["message"]
    assert client.post(ROUTE, json=saved_page_body()).status_code == 200


def test_the_body_as_the_browser_sends_it_passes(client):
    # Dash's renderer leaves out "state" when a callback has none, adds the parsed ids,
    # and may suffix a property with "@" and a hash.
    body = saved_page_body()
    del body["state"]
    body["parsedChangedPropsIds"] = ["saved-page-load.data"]
    body["outputs"][4]["property"] = "children@a1b2c3"
    assert client.post(ROUTE, json=body).status_code == 200


def test_wildcard_and_callback_without_outputs_pass():
    from dash import ALL, MATCH, Input

    match = {"output": Output({"type": "row", "index": MATCH}, "children"),
             "inputs": [Input({"type": "btn", "index": MATCH}, "n_clicks")], "state": [],
             "callback": print}
    body = {
        "output": "x",
        "outputs": {"id": {"type": "row", "index": 3}, "property": "children"},
        "inputs": [{"id": {"type": "btn", "index": 3}, "property": "n_clicks", "value": 1}],
    }
    assert problem(body, {"x": match}) is None
    body["outputs"]["id"] = {"type": "col", "index": 3}
    assert "do not match" in problem(body, {"x": match})
    every = {"output": [Output("a", "children"), Output({"type": "row", "index": ALL}, "children")],
             "inputs": [], "state": [], "callback": print}
    body = {"output": "y", "inputs": [], "outputs": [
        {"id": "a", "property": "children"},
        [{"id": {"type": "row", "index": i}, "property": "children"} for i in range(3)],
    ]}
    assert problem(body, {"y": every}) is None
    silent = {"output": "z", "inputs": [], "state": [], "no_output": True, "callback": print}
    assert problem({"output": "z", "inputs": []}, {"z": silent}) is None


def test_pattern_matching_inputs_arrive_as_lists_and_pass():
    spec = {"inputs": [1, 2], "state": [], "output": Output("out", "children"),
            "callback": print}
    body = {
        "output": "out.children",
        "outputs": {"id": "out", "property": "children"},
        "inputs": [
            [{"id": {"type": "row", "index": 0}, "property": "n_clicks", "value": 1}],
            {"id": "b", "property": "value", "value": 2},
        ],
        "changedPropIds": [],
    }
    assert problem(body, {"out.children": spec}) is None
    body["inputs"][0] = [{"id": 5, "property": "n_clicks"}]
    assert "'inputs'" in problem(body, {"out.children": spec})


def test_a_request_for_a_clientside_callback_gets_a_json_400(tmp_path):
    # The callback map lists the page's clientside callbacks too, without a function:
    # a request naming one, well formed as the browser would send it for a server-side
    # callback, made Dash fail with KeyError: an HTML 500 and a traceback in the log.
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    callback_map = app.callback_map
    browser_side = [output for output, spec in callback_map.items() if "callback" not in spec]
    assert len(browser_side) >= 5
    for output in browser_side:
        spec = callback_map[output]
        body = {
            "output": output,
            "outputs": [] if spec.get("no_output") else {"id": "x", "property": "y"},
            "inputs": [{**i, "value": 1} for i in spec["inputs"]],
            "state": [{**s, "value": None} for s in spec["state"]],
            "changedPropIds": [],
        }
        response = client.post(ROUTE, json=body)
        assert response.status_code == 400, (output, response.get_data(as_text=True)[:200])
        assert response.mimetype == "application/json"
        assert response.get_json()["error"] == {
            "code": CODE,
            "message": f"the callback of {output[:200]!r} runs in the browser, not on the server"}
    assert client.post(ROUTE, json=saved_page_body()).status_code == 200


def test_other_routes_are_left_alone(client):
    assert client.post("/api/saved").status_code == 405
    # Dash's page routing answers a GET of any path (404, not a page, since the not-found
    # status); the guard only reads POSTs, so it is the page shell, not the guard's JSON.
    response = client.get(ROUTE)
    assert response.status_code == 404 and response.mimetype == "text/html"


@pytest.mark.browser
def test_a_refused_callback_is_shown_in_the_page_not_swallowed(dash_duo, tmp_path, free_port):
    # A tab left open across an upgrade posts callbacks the server no longer has; the
    # renderer would show nothing, so the page says what the server answered.
    app = create_app({"DATA_DIR": str(tmp_path), "MODEL_SERVER_URL": f"http://127.0.0.1:{free_port}"})
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#annotation-graph", timeout=30)
    assert not dash_duo.driver.find_elements("css selector", "#stale-page")
    dash_duo.driver.execute_script(
        """
        window.fetch(arguments[0], {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({output: "gone.children",
                                  outputs: {id: "gone", property: "children"},
                                  inputs: [], state: [], changedPropIds: []})});
        """,
        dash_duo.server_url + ROUTE,
    )
    dash_duo.wait_for_contains_text("#stale-page", "reload the page", timeout=10)
    text = dash_duo.find_element("#stale-page").text
    assert text.startswith("This page could not be updated: no callback has the output")
    assert text.endswith("The last action did not take effect.")
    # Not only that refusal: one too large (an undo history grown past the limit, say)
    # would otherwise leave an edit drawn on screen and silently unrecorded.
    dash_duo.driver.execute_script(
        """
        window.fetch(arguments[0], {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: '{"output": "edit-status.children", "pad": "' + 'x'.repeat(9 * 1024 * 1024)
                  + '"}'});
        """,
        dash_duo.server_url + ROUTE,
    )
    dash_duo.wait_for_contains_text("#stale-page", "larger than this callback's limit",
                                    timeout=10)
    # An answer that is no JSON (an HTML error page, a proxy's) is said by its status,
    # and a reload, which drops unsaved work, is not the first thing it asks for.
    dash_duo.driver.execute_script(
        "window.fetch(arguments[0], {method: 'POST', body: '{}'});",
        dash_duo.server_url + ROUTE + "/nothing-here",
    )
    dash_duo.wait_for_contains_text(
        "#stale-page", "the server answered HTTP 405; try again, and if it keeps failing, "
        "save your work, then reload the page", timeout=10)
    # It stays until dismissed (a later action that works does not say this one did).
    dash_duo.find_element("#stale-page .btn-close").click()
    dash_duo.wait_for_no_elements("#stale-page", timeout=5)


# ------------------------------------------------- values the browser never sends, anywhere


def _odd_bodies(dependencies):
    """A body per server-side callback and odd value: every input and state set to it."""
    odd = ["x", -1, {}, [], True, 10**30, {"box": [1, 2]}]
    for spec in dependencies:
        if spec.get("clientside_function") or "{" in spec["output"]:
            continue  # pattern-matching callbacks take lists of components
        output = spec["output"]
        if output.startswith(".."):
            outputs = [dict(zip(("id", "property"), o.split(".", 1), strict=True))
                       for o in output[2:-2].split("...")]
        else:
            outputs = dict(zip(("id", "property"), output.split(".", 1), strict=True))
        for value in odd:
            yield output, value, {
                "output": output, "outputs": outputs,
                "inputs": [{**i, "value": value} for i in spec["inputs"]],
                "state": [{**s, "value": value} for s in spec["state"]],
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in spec["inputs"][:1]],
            }


def test_no_callback_fails_on_values_the_browser_never_sends(client, caplog):
    # A fuzz of every server-side callback: each input and state a string, a number, an
    # empty object or list, a boolean, a huge number or an odd object. Each is refused
    # (400), ignored (204) or answered (200); a 500 was an HTML page and a traceback in
    # the log (the annotator's name as a number, the unsaved-work mark as a number, a box
    # of two numbers, the page address as a number).
    dependencies = client.get("/_dash-dependencies").get_json()
    failures = []
    for output, value, body in _odd_bodies(dependencies):
        response = client.post(ROUTE, json=body)
        if response.status_code not in (200, 204, 400):
            failures.append(f"{output[:80]} with {value!r}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert "a callback failed" not in caplog.text
    assert client.post(ROUTE, json=saved_page_body()).status_code == 200


@pytest.mark.parametrize(("pathname", "search", "reason"), [
    (5, "", "'_pages_location.pathname' must be a string"),
    ("saved", "", "'_pages_location.pathname' must be a path starting with '/'"),
    ("/saved", 7, "'_pages_location.search' must be a string"),
])
def test_a_page_address_that_is_no_path_is_refused(client, pathname, search, reason):
    dependencies = client.get("/_dash-dependencies").get_json()
    (router,) = [d for d in dependencies if {"id": "_pages_location", "property": "pathname"}
                 in [{"id": i["id"], "property": i["property"]} for i in d["inputs"]]]
    values = {"pathname": pathname, "search": search}

    def body(values):
        return {
            "output": router["output"],
            "outputs": [dict(zip(("id", "property"), o.split(".", 1), strict=True))
                        for o in router["output"][2:-2].split("...")],
            "inputs": [{**i, "value": values.get(i["property"])} for i in router["inputs"]],
            "state": [{**s, "value": None} for s in router["state"]],
            "changedPropIds": ["_pages_location.pathname"],
        }

    response = client.post(ROUTE, json=body(values))
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": CODE, "message": reason}
    # The same callback with the address a browser sends draws the Saved page.
    good = client.post(ROUTE, json=body({"pathname": "/saved", "search": ""}))
    assert good.status_code == 200 and "saved-table" in good.get_data(as_text=True)


def test_a_callback_that_fails_answers_json_500_and_logs_the_traceback(
        client, monkeypatch, caplog):
    from annotation_client.pages import saved

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the Saved page")

    monkeypatch.setattr(saved, "_fetch", broken)
    response = client.post(ROUTE, json=saved_page_body())
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "callback_failed"
    assert "a bug in the Saved page" not in response.get_data(as_text=True)
    assert "a callback failed (output '..saved-table.data..." in caplog.text
    assert "RuntimeError: a bug in the Saved page" in caplog.text  # the traceback
    monkeypatch.undo()
    assert client.post(ROUTE, json=saved_page_body()).status_code == 200


@pytest.mark.parametrize("path", ["/_dash-component-suites/nonexistent/x.js",
                                  "/_dash-component-suites/dash/x.js",
                                  "/_dash-component-suites/x.js"])
def test_an_unknown_script_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    # Dash's own scripts are still served.
    page = client.get("/").get_data(as_text=True)
    script = next(p for p in page.split('"') if p.startswith("/_dash-component-suites/"))
    assert client.get(script).status_code == 200


def test_callbacks_are_registered_before_the_first_request(tmp_path):
    # Dash built its callback map in the first request's hooks, marking itself done
    # first: requests racing into a fresh worker met a half-built map, and a valid
    # Save was refused with "reload the page" (audit 701, F1).
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    outputs = " ".join(app.callback_map)
    assert "saved-table" in outputs and "_pages_content" in outputs
    before = dict(app.callback_map)
    client = app.server.test_client()
    assert client.post(ROUTE, json=saved_page_body()).status_code == 200
    assert app.callback_map.keys() == before.keys()  # nothing was left for the request


def test_with_no_callback_map_the_guard_refuses_rather_than_waves_through(tmp_path):
    app = create_app({"DATA_DIR": tmp_path, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    app.callback_map.clear()
    response = app.server.test_client().post(ROUTE, json=saved_page_body())
    assert response.status_code == 503
    assert "still starting" in response.get_json()["error"]["message"]
