"""Helpers for the tests of the client's pages: Dash layout trees, and the browser.

Import them by name (``from _dash_helpers import find_component``): pytest puts this
folder on ``sys.path`` for the test files in it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
import time
from contextvars import copy_context
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import flask
import numpy as np
from dash._callback_context import context_value
from dash._utils import AttributeDict
from PIL import Image
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import vectorizer
from annotation_client import _shapes, create_app, ids

# ----------------------------------------------------------------------- callback requests

#: Where Dash's browser code posts every callback.
ROUTE = "/_dash-update-component"
SAVED_OUTPUTS = [
    ("saved-table", "data"),
    ("saved-table", "tooltip_data"),
    ("saved-summary", "children"),
    ("saved-annotator", "options"),
    ("saved-alert", "children"),
]
SAVED_INPUTS = [
    ("saved-page-load", "data", 1),
    ("saved-refresh", "n_clicks", None),
    ("saved-annotator", "value", None),
    ("saved-label", "value", None),
    ("saved-latest", "value", False),
    ("saved-assessment", "value", "__any__"),
]


def as_callback(call, fired=(), *, app=None, headers=None, value=None):
    """``call()`` run as Dash runs a callback: its answer.

    Parameters
    ----------
    call : callable
        Takes no arguments; usually a lambda around the page's callback function.
    fired : str or sequence of str
        The prop ids (``"component-id.property"``) that ``callback_context.triggered``
        names, in order. A single string is one prop id.
    app : dash.Dash, optional
        When given, ``call`` runs inside a callback request of ``app``'s Flask server
        (POST to :data:`ROUTE` with ``headers``), for callbacks that read the request,
        the app's config or the signed-in reader.
    headers : dict, optional
        The request's headers, such as a proxy's reader header.
    value : object
        The value each fired input reports; callbacks here read only which fired.
    """
    fired = [fired] if isinstance(fired, str) else list(fired)

    def run():
        # Dash keeps the triggered inputs in a context variable; a copied context keeps
        # one call's trigger from leaking into the next.
        context_value.set(AttributeDict(
            triggered_inputs=[{"prop_id": prop, "value": value} for prop in fired]))
        if app is None:
            return call()
        with app.server.test_request_context(ROUTE, method="POST", headers=headers or {}):
            return call()

    return copy_context().run(run)


def saved_page_body() -> dict:
    """What the browser posts to :data:`ROUTE` when the Saved page loads its table."""
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in SAVED_OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in SAVED_OUTPUTS],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in SAVED_INPUTS],
        "changedPropIds": ["saved-page-load.data"],
        "state": [],
    }


# --------------------------------------------------------------------------- layout trees


def find_component(component, component_id):
    """The component with ``component_id`` in a Dash layout tree, or None."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = find_component(child, component_id)
            if found is not None:
                return found
    return None


def open_work() -> tuple[dict, dict, dict]:
    """``(meta, history, image_data)`` of a 30 x 20 PNG as the Annotate page holds it once
    opened, with one square outline drawn: what its save callback is given."""
    import io

    from annotation_client import _editing, decode_image

    buffer = io.BytesIO()
    # Not blank: the client, like the server, refuses an image of one value.
    Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    meta = decode_image(data, "scan.png").meta()
    state = dict(_editing.empty_state(), paths=["M 5,5 L 15,5 L 15,15 L 5,15 Z"])
    history = {"image": meta["sha256"], "present": state, "past": [], "future": []}
    image_data = {"contents": "data:image/png;base64," + base64.b64encode(data).decode()}
    return meta, history, image_data


def text_of(parts) -> str:
    """The visible text of a string, a Dash component tree or a list of them."""
    if parts is None:
        return ""
    if isinstance(parts, str | int | float):
        return str(parts)
    if isinstance(parts, list | tuple):
        return "".join(text_of(p) for p in parts)
    return text_of(getattr(parts, "children", None))


# --------------------------------------------------------------------------- in the browser


#: The header the stand-in sign-in proxy (:func:`signed_in_by_cookie`) names the user in.
SIGN_IN_HEADER = "X-Forwarded-User"


def signed_in_by_cookie(app) -> None:
    """Stand in for the sign-in proxy: each request gets :data:`SIGN_IN_HEADER` from the
    browser's ``reader`` cookie (:func:`sign_in`), and any such header the browser sent
    is dropped, as the proxy does."""
    inner = app.server.wsgi_app
    key = "HTTP_" + SIGN_IN_HEADER.upper().replace("-", "_")

    def proxy(environ, start_response):
        environ.pop(key, None)
        cookies = dict(part.strip().split("=", 1)
                       for part in environ.get("HTTP_COOKIE", "").split(";") if "=" in part)
        if cookies.get("reader"):
            environ[key] = cookies["reader"].replace("+", " ")
        return inner(environ, start_response)

    app.server.wsgi_app = proxy


def sign_in(driver, name: str) -> None:
    """Sign ``name`` in to the browser behind :func:`signed_in_by_cookie`'s proxy."""
    driver.delete_all_cookies()
    driver.add_cookie({"name": "reader", "value": name.replace(" ", "+")})


def wait_for(dash_duo, condition, timeout=30, message=""):
    """Poll ``condition()`` until it is truthy, and return it; fail after ``timeout`` s."""
    # An element can be re-rendered between finding it and reading it: try again.
    return WebDriverWait(
        dash_duo.driver,
        timeout,
        poll_frequency=0.05,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(lambda _driver: condition(), message)


def settled(dash_duo, quiet=1.0, timeout=30) -> None:
    """Wait until no Dash callback has been in flight for ``quiet`` seconds.

    Before checking that an action did *not* change the page: a fixed sleep would
    let the check pass while the change is merely slow to come. This waits at least
    as long as that sleep, and on until every callback the action set off (and any
    it chains) has been answered.
    """
    deadline = time.monotonic() + timeout
    idle_since = None
    while True:
        now = time.monotonic()
        if dash_duo.redux_state_rqs:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= quiet:
            return
        if now > deadline:
            raise AssertionError(f"Dash callbacks still in flight after {timeout} s")
        time.sleep(0.05)


def click(driver, by, value) -> None:
    """Scroll an element to the middle of the window, then click it like a user."""
    element = driver.find_element(by, value)
    # behavior 'instant': Bootstrap's CSS makes scrolling smooth, i.e. not done yet
    # when the click would land.
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    element.click()


def api_error(response, status: int, code: str) -> str:
    """The message of the client API's JSON error ``response``, checked to be ``status``
    with ``code``."""
    assert response.status_code == status, response.data[:300]
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    return error["message"]


def saved_link_cells(dash_duo, column: str) -> dict[str, list]:
    """``{image: [cell text, [its links' href]]}`` of the Saved table's column ``column``
    (``"files"``, ``"dicom"``), one entry per row shown."""
    return dash_duo.driver.execute_script(
        """
        var out = {}, column = arguments[1];
        document.querySelectorAll(arguments[0] + ' tr').forEach(function (tr) {
            var image = tr.querySelector('td[data-dash-column="image"]');
            var cell = tr.querySelector('td[data-dash-column="' + column + '"]');
            if (!image || !cell) { return; }
            var links = Array.from(cell.querySelectorAll('a')).map(
                function (a) { return a.getAttribute('href'); });
            out[image.innerText.trim()] = [cell.innerText.trim(), links];
        });
        return out;
        """,
        f"#{ids.SAVED_TABLE}",
        column,
    )


def console_errors(dash_duo) -> list[str]:
    """Messages of the browser console's errors (each call drains the log)."""
    return [e["message"] for e in (dash_duo.get_logs() or []) if e.get("level") == "SEVERE"]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: a model server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HealthyModelServer(BaseHTTPRequestHandler):
    """A stand-in model server for ``http.server``: it answers /health "ok", enough for
    the status badge and the health poll; subclasses add the model requests."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_json(200, b'{"status": "ok", "model": {"name": "stand-in", "version": "0"}}')

    def send_json(self, status: int, body: bytes) -> None:
        """Answer with ``status`` and the JSON text ``body``."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_outline(self, mask, max_vertices: int = 32) -> None:
        """Answer a /predict as the model server does, with ``mask`` (bool, shape
        ``(height, width)``, image pixels) as the lesion outline."""
        height, width = mask.shape
        body = json.dumps({
            "width": width, "height": height,
            "mask": base64.b64encode(vectorizer.mask_to_png(mask)).decode(),
            "paths": list(vectorizer.mask_to_paths(mask, max_vertices=max_vertices)),
            "model": {"name": "stand-in", "version": "0"},
        }).encode()
        self.send_json(200, body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]):
    """Serve ``handler`` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------- the Annotate graph

#: Puts the Annotate page's plotly graph div in ``gd`` for a script run in the browser.
GRAPH = "var gd = document.querySelector('#annotation-graph .js-plotly-plot');"


def graph_js(dash_duo, script, *args):
    """Run ``script`` in the browser with the graph div in ``gd``; its return value."""
    return dash_duo.driver.execute_script(GRAPH + script, *args)


def shape_paths(dash_duo) -> list[str]:
    """The SVG paths of the outline shapes the graph shows (image pixels)."""
    return graph_js(dash_duo, "if (!gd || !gd.layout || !gd.layout.shapes) { return []; }"
                              "return gd.layout.shapes.filter(s => s.type === 'path')"
                              ".map(s => s.path);")


def edit_status(dash_duo) -> str:
    """The text of the edit status line under the graph ("" before there is one)."""
    return dash_duo.driver.execute_script(
        "var e = document.getElementById('edit-status-text'); return e ? e.textContent : '';")


def worklist_labels(driver) -> list[str]:
    """The labels of the worklist dropdown's options in the page (Dash's store)."""
    return driver.execute_script(
        "var st = window.store.getState(), node = st.layout;"
        "st.paths.strs[arguments[0]].forEach(function (k) { node = node[k]; });"
        "return (node.props.options || []).map(function (o) { return o.label; });",
        ids.WORKLIST)


def store_data(dash_duo, component_id: str):
    """The ``data`` a dcc.Store holds in the browser (from Dash's store of the page's
    props), e.g. the outline history."""
    return dash_duo.driver.execute_script(
        "var st = window.store.getState(), node = st.layout;"
        "st.paths.strs[arguments[0]].forEach(function (k) { node = node[k]; });"
        "return node.props.data;", component_id)


def image_to_screen(dash_duo, x, y) -> tuple[int, int]:
    """The viewport pixel of image point (x, y) (image pixels: x right, y down)."""
    return tuple(graph_js(
        dash_duo,
        "var fl = gd._fullLayout, r = gd.getBoundingClientRect();"
        "return [Math.round(r.left + fl.xaxis._offset + fl.xaxis.l2p(arguments[0])),"
        "        Math.round(r.top + fl.yaxis._offset + fl.yaxis.l2p(arguments[1]))];", x, y))


def recorded(dash_duo, paths, steps: int) -> bool:
    """Whether the outline history holds ``paths`` (SVG paths, image pixels) as its
    present outline, ``steps`` undo steps deep."""
    history = store_data(dash_duo, ids.HISTORY)
    if not history or len(history["past"]) != steps:
        return False
    same = [_shapes.format_path(_shapes.parse_path(p)) for p in history["present"]["paths"]]
    return same == [_shapes.format_path(_shapes.parse_path(p)) for p in paths]


def wait_recorded(dash_duo, paths, steps: int, timeout=10, message="") -> None:
    """Wait until the outline history holds ``paths``, ``steps`` undo steps deep.

    The edit callback writes the HISTORY store in its own answer, so unlike the status
    line under the graph (written one answer later, by ``measure``) it is never behind:
    wait on it before an action that must follow an edit, such as an Undo or Classify.
    """
    wait_for(dash_duo, lambda: recorded(dash_duo, paths, steps), timeout,
             message or f"no {len(paths)} region(s) recorded at {steps} undo step(s)")


def pick_option(dash_duo, option) -> None:
    """Click ``option`` of an open Dash dropdown, like a user, once nothing covers it.

    The open menu scrolls its list to the option chosen before, and its search box
    stays over the list's top: an option clicked while the list still moves can be
    under the box, and the click is taken by it (a flake of the Saved page's test
    under load). The option is scrolled to the middle, and clicked once it is the
    element at its own centre.
    """
    driver = dash_duo.driver

    def clear() -> bool:
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", option)
        return driver.execute_script(
            "var o = arguments[0], r = o.getBoundingClientRect();"
            "var e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
            "return !!e && (e === o || o.contains(e));", option)

    from selenium.common.exceptions import ElementClickInterceptedException

    # The list can still move between the check and the click (it did, once, in a fresh
    # clone's run): then the click is taken by the box, and is tried again once clear.
    for attempt in range(5):
        wait_for(dash_duo, clear, 5, "the dropdown's option stayed covered")
        try:
            option.click()
            return
        except ElementClickInterceptedException:
            if attempt == 4:
                raise
            time.sleep(0.2)


def slow_edits(app, seconds: float) -> None:
    """Make ``app`` answer every request of the edit callback (the one writing the
    outline history) after ``seconds``: a busy server, whose answer to one edit is still
    on its way when the next is made."""

    @app.server.before_request
    def _wait():
        request = flask.request
        if request.path.endswith(ROUTE):
            body = json.loads(request.get_data() or b"{}")
            if f"{ids.HISTORY}.data" in str(body.get("output")):
                time.sleep(seconds)


# ------------------------------------------------------------------ images and worklists


def upload(dash_duo, path: Path) -> None:
    """Give ``path`` to the page's file input, as a file chosen in the dialog would be."""
    field = dash_duo.driver.find_element(By.CSS_SELECTOR, f"#{ids.IMAGE_UPLOAD} input[type=file]")
    field.send_keys(str(path))


def gradient_png(path: Path, width: int = 256, height: int = 200) -> Path:
    """A grey diagonal ramp of ``width`` x ``height`` pixels, written to ``path``."""
    ramp = np.add.outer(np.arange(height), np.arange(width)) * 255 // (width + height)
    Image.fromarray(ramp.astype(np.uint8)).save(path)
    return path


#: The images of :func:`make_worklist`'s folder, in worklist order.
WORKLIST_CASES = ["a.png", "b.png", "c.png"]


def case_png(path: Path, seed: int) -> Path:
    """A 600x400 grey ramp, different for each seed (so each case has its own hash)."""
    ramp = (np.add.outer(np.arange(400), np.arange(600)) // 4).astype(np.uint8)
    Image.fromarray(ramp + np.uint8(seed)).save(path)
    return path


def make_worklist(tmp_path: Path) -> Path:
    """A worklist folder ``tmp_path / "worklist"`` holding :data:`WORKLIST_CASES`."""
    folder = tmp_path / "worklist"
    folder.mkdir()
    for seed, name in enumerate(WORKLIST_CASES):
        case_png(folder / name, seed * 7)
    return folder


def worklist_versions(data_dir: Path, worklist: Path, name: str) -> list[str]:
    """The record files (``v001.json`` ...) saved under ``data_dir`` for the image the
    worklist file ``name`` holds now, sorted."""
    sha = hashlib.sha256((worklist / name).read_bytes()).hexdigest()
    return sorted(p.name for p in (data_dir / sha).glob("v*.json"))


def worklist_app(data_dir: Path, worklist: Path | None):
    """The client with its model server down and, if given, the worklist."""
    settings = {"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}", "DATA_DIR": data_dir,
                "REQUEST_TIMEOUT": 3}
    if worklist is not None:
        settings["WORKLIST_DIR"] = worklist
    return create_app(settings)


def image_name(dash_duo) -> str:
    """The name of the image the page shows ('' before any)."""
    return dash_duo.driver.execute_script(
        "var e = document.getElementById('image-name'); return e ? e.textContent : '';"
    )


def open_entry(dash_duo, path: str) -> None:
    """Pick ``path`` in the worklist dropdown and wait for its image on the graph."""
    click(dash_duo.driver, By.ID, ids.WORKLIST)
    option = wait_for(
        dash_duo,
        lambda: next((o for o in dash_duo.driver.find_elements(
            By.CSS_SELECTOR, ".dash-dropdown-option") if o.text.startswith(path + " — ")), None),
        10, f"no worklist entry {path}",
    )
    pick_option(dash_duo, option)
    wait_for(dash_duo, lambda: image_name(dash_duo) == path, 20, f"{path} did not open")
    wait_for(dash_duo, lambda: graph_js(dash_duo, "return !!(gd && gd.querySelector("
                                        "'.imagelayer image'));"), 10, "no image drawn")
    # The name and the image are the open's first answer; the callbacks it sets off
    # (the actions enabled, the spacing form and the worklist line shown above the
    # Record card, the measurements) answer after it. Act on the page once they have.
    settled(dash_duo, quiet=0.5)


def start_on_worklist(dash_duo, data_dir: Path, worklist: Path, first="a.png") -> None:
    """Serve :func:`worklist_app` and open ``first`` from its worklist."""
    dash_duo.start_server(worklist_app(data_dir, worklist))
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    open_entry(dash_duo, first)
