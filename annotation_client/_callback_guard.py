"""Refuse malformed Dash callback requests with 400 instead of a 500 page.

The browser posts every callback to ``/_dash-update-component`` with a JSON
body naming the callback's ``output`` and carrying its ``inputs`` and
``state``. Dash trusts that body: ``{}``, an unknown output or a short list
of inputs raise deep inside it, and Flask answers with its HTML "500 Internal
Server Error" and a traceback in the log, as if the client had a bug. A
scanner, a stale browser tab after an upgrade or a hand-written script sends
such bodies; they are the sender's mistake, so they get a 400 with a JSON
``{"error": {"code", "message"}}`` like the rest of the client's API, and
nothing reaches the callbacks.

The envelope is checked (what Dash itself indexes and validates before it
calls a callback: the output, the number of inputs and state, the outputs it
will fill), and the stores only the server writes must come back as it signed
them (:mod:`annotation_client._signing`); the other values inside it are the
callbacks' own business.

Before any of that the body's size is: parsing JSON costs many times its bytes
(30 MB of ``{},`` took a worker from 92 MB to 912 MB), so a body is read only up
to its callback's limit and parsed only if it holds a plausible number of JSON
objects, lists and keys. The limit is upload-sized only for the callbacks that
carry the image (the upload's contents or the page's copy of the file, named by
the app); the others get :data:`SMALL_LIMIT`. The callback is told by the
``output`` the body starts with, as Dash's renderer writes it, read before the
rest of the body.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection

import dash
import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import _signing

logger = logging.getLogger(__name__)

CODE = "bad_callback_request"
TOO_LARGE = "callback_too_large"
#: The code of a callback that failed on a request the checks let through: a bug.
FAILED = "callback_failed"
#: Bytes of a callback body that carries no image. The largest legitimate ones carry
#: the undo history (at most ``_history.DEFAULT_MAX_BYTES``, 4 MiB, of outlines), the
#: model's answers (a PNG mask each) and
#: a graph event (at most 300,000 characters of path data); the browser tests'
#: largest is tens of kB. 8 MiB leaves room for that and, with MAX_CONTAINERS, costs a
#: worker tens of MB at most to parse.
SMALL_LIMIT = 8 * 1024 * 1024
#: Most ``{``, ``[`` and ``:`` a body may hold (objects, lists and keys, each a Python
#: object of 50 to 100 bytes once parsed; counted in the bytes, strings included). A
#: real callback sends a few thousand: a history state is an object, a list and a few
#: keys, and paths and base64 have none of them.
MAX_CONTAINERS = 100_000
#: Bytes read before the body's callback is known: its ``output`` comes first.
_PEEK = 16 * 1024
_OUTPUT = re.compile(rb'\A\s*\{\s*"output"\s*:\s*("(?:[^"\\]|\\.)*")')
_READ = 64 * 1024


class _TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(limit)
        self.limit = limit


def _is_prop(item) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("property"), str)
        and isinstance(item.get("id"), (str, dict))
    )


def _is_arg(item) -> bool:
    # A pattern-matching input (ALL, ALLSMALLER) arrives as a list of properties.
    return _is_prop(item) or (isinstance(item, list) and all(_is_prop(i) for i in item))


def _matches(item: dict, declared) -> bool:
    # Dash's own test (_validate.validate_output_spec), which also resolves wildcards;
    # an id Dash cannot even build an Output from does not match either.
    try:
        return dash.Output(item["id"], item["property"].split("@")[0]) == declared
    except Exception:  # noqa: BLE001 - any failure to build it means "not this output"
        return False


def _outputs_problem(outputs, spec) -> str | None:
    if spec.get("no_output"):
        return None
    declared = spec.get("output")
    multi = isinstance(declared, (list, tuple))
    wanted = list(declared) if multi else [declared]
    sent = outputs if multi else [outputs]
    if not isinstance(sent, list) or len(sent) != len(wanted):
        return f"'outputs' must list this callback's {len(wanted)} output(s)"
    for want, got in zip(wanted, sent, strict=True):
        # A pattern-matching output arrives as a list of the components it matched.
        for item in got if isinstance(got, list) else [got]:
            if not (_is_prop(item) and _matches(item, want)):
                return "'outputs' do not match this callback's outputs; reload the page"
    return None


def problem(body, callback_map) -> str | None:
    """What is wrong with a callback request body, or None if Dash can run it.

    Parameters
    ----------
    body : object
        The decoded JSON body.
    callback_map : dict
        ``dash.Dash.callback_map``: output id -> callback spec (``callback``,
        ``inputs``, ``state``, ``output``, ``no_output``; a clientside callback has no
        ``callback``).

    Returns
    -------
    str or None
        A message for the sender, or None when the envelope is what the server-side
        callback (one with a ``callback`` function) named by ``output`` takes: as
        many ``inputs`` and ``state`` items as it declares, each an ``{id, property,
        value}`` object (a list of them for a pattern-matching one), and ``outputs``
        matching its declared outputs.
    """
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or not output:
        return "'output' must name a callback output"
    spec = callback_map.get(output)
    if spec is None:
        return f"no callback has the output {output[:200]!r}; reload the page"
    if "callback" not in spec:
        # A clientside callback: the map lists it, but Dash keeps no function to call
        # for it and would fail on the missing key.
        return f"the callback of {output[:200]!r} runs in the browser, not on the server"
    for key in ("inputs", "state"):
        got = body.get(key, [])
        want = len(spec.get(key, []))
        if not isinstance(got, list) or not all(_is_arg(i) for i in got):
            return f"'{key}' must be a list of {{id, property, value}} objects"
        if len(got) != want:
            return f"'{key}' has {len(got)} item(s); this callback takes {want}"
    reason = _outputs_problem(body.get("outputs"), spec)
    if reason is not None:
        return reason
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "'changedPropIds' must be a list of strings"
    return _location_problem([*body.get("inputs", []), *body.get("state", [])])


#: The location component of Dash's page routing, whose callback is Dash's own: it
#: reads the address without checking it (a number, or a path without its leading
#: slash, raised inside Dash).
_LOCATION = "_pages_location"


def _location_problem(items: list) -> str | None:
    for item in items:
        if not isinstance(item, dict) or item.get("id") != _LOCATION:
            continue
        value, prop = item.get("value"), item.get("property")
        if value is None:
            continue
        if not isinstance(value, str):
            return f"'{_LOCATION}.{prop}' must be a string"
        if prop == "pathname" and not value.startswith("/"):
            return f"'{_LOCATION}.pathname' must be a path starting with '/'"
    return None


def output_of(head: bytes) -> str | None:
    """The ``output`` a callback body starts with, from its first bytes; None if it does not."""
    match = _OUTPUT.match(head)
    if match is None:
        return None
    try:
        output = json.loads(match.group(1))
    except ValueError:
        return None
    return output if isinstance(output, str) else None


def carriers(callback_map: dict, values: Collection[tuple[str, str]]) -> frozenset[str]:
    """The outputs (keys of ``callback_map``) of callbacks that take one of ``values``.

    Parameters
    ----------
    callback_map : dict
        ``dash.Dash.callback_map``.
    values : collection of (id, property)
        Component properties that hold a file, e.g. ``("image-upload", "contents")``.
    """
    found = set()
    for output, spec in callback_map.items():
        for item in [*spec.get("inputs", []), *spec.get("state", [])]:
            if (item.get("id"), item.get("property")) in values:
                found.add(output)
    return frozenset(found)


def _output_named() -> str | None:
    body = flask.request.get_json(silent=True)
    return body.get("output") if isinstance(body, dict) else None


def read_body(request: flask.Request, limit_of) -> bytes:
    """The body of ``request``, read only as far as its callback's limit.

    Parameters
    ----------
    request : flask.Request
    limit_of : callable
        ``limit_of(output)``: the byte limit of the callback named by the body's
        first bytes (``output`` None when they name none).

    Raises
    ------
    _TooLarge
        When the declared length or the bytes read pass the limit (chunked
        bodies declare none, so they are counted as they come).
    """
    try:
        stream = request.stream  # Flask's MAX_CONTENT_LENGTH bounds it already
        head = b""
        while len(head) < _PEEK:
            chunk = stream.read(_PEEK - len(head))
            if not chunk:
                break
            head += chunk
        limit = limit_of(output_of(head))
        if request.content_length is not None and request.content_length > limit:
            raise _TooLarge(limit)
        parts, size = [head], len(head)
        while size <= limit:
            chunk = stream.read(min(_READ, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _TooLarge(limit)
    except RequestEntityTooLarge:
        raise _TooLarge(request.max_content_length or 0) from None
    return b"".join(parts)


def register(
    app: dash.Dash,
    file_values: Collection[tuple[str, str]] = (),
    large_limit: int | None = None,
    small_limit: int | None = None,
) -> None:
    """Check every callback request to ``app`` before Dash dispatches it.

    Parameters
    ----------
    app : dash.Dash
        The app; a ``before_request`` hook is added to ``app.server`` after
        Dash's own, so the callback map is built by the time it runs.
    file_values : collection of (id, property)
        The component properties that carry a file (the upload, the page's copy
        of the image): the callbacks that take one may send ``large_limit`` bytes.
    large_limit : int, optional
        Byte limit of those callbacks; the server's ``MAX_CONTENT_LENGTH`` by default.
    small_limit : int, optional
        Byte limit of every other callback; :data:`SMALL_LIMIT` by default.
    """
    route = app.config.routes_pathname_prefix + "_dash-update-component"
    suites = app.config.routes_pathname_prefix + "_dash-component-suites/"
    large = {}  # the callback map's carriers, found once it exists

    def limit_of(output: str | None) -> int:
        small = small_limit or SMALL_LIMIT
        if "outputs" not in large:
            large["outputs"] = carriers(app.callback_map, set(file_values))
        if output in large["outputs"]:
            return large_limit or app.server.config["MAX_CONTENT_LENGTH"] or small
        return small

    def refuse(status: int, code: str, reason: str):
        logger.warning("refused a callback request from %s: %s", flask.request.remote_addr,
                       reason)
        return flask.jsonify({"error": {"code": code, "message": reason}}), status

    def no_script(_rest=None):
        # A script address with no package part, which Dash's own rule (package, then
        # file) does not match: the page's routing answered it with the page, a 200.
        # (And a package Dash does not know: see failures_are_json.)
        return flask.jsonify({"error": {
            "code": "not_found", "message": f"no script at {flask.request.path[:200]}"}}), 404

    app.server.add_url_rule(suites + "<path:_rest>", "sonotrace_no_script", no_script)

    @app.server.errorhandler(Exception)
    def failures_are_json(exc: Exception):
        # Only for the callback route and Dash's script route; every other page keeps
        # Flask's own answer (and HTTP errors their own handlers).
        if isinstance(exc, HTTPException):
            return exc
        path = flask.request.path
        if path == route:
            # What the checks let through and a callback still failed on is a bug here:
            # the traceback goes to the log, and the page gets the API's JSON shape.
            logger.exception("a callback failed (output %.200r)", _output_named())
            return flask.jsonify({"error": {
                "code": FAILED,
                "message": "the callback failed on the server; the client's log says why"}}), 500
        if path.startswith(suites) and isinstance(exc, dash.exceptions.DependencyException):
            # A stale or made-up script address: Dash raises for a library it does not
            # know, which would be a 500 and a traceback.
            logger.warning("no script at %s: %s", path[:200], exc)
            return no_script()
        raise exc

    @app.server.before_request
    def refuse_malformed_callbacks():
        request = flask.request
        if request.method != "POST" or request.path != route:
            return None
        # The app factory has Dash set itself up before serving; a map still empty is
        # an app that skipped that, and nothing could be checked: refuse, never pass.
        if not app.callback_map:
            return refuse(503, CODE, "the client is still starting; try again in a moment")
        try:
            data = read_body(request, limit_of)
        except _TooLarge as exc:
            return refuse(413, TOO_LARGE,
                          f"the request is larger than this callback's limit of {exc.limit} "
                          "bytes")
        containers = data.count(b"{") + data.count(b"[") + data.count(b":")
        if containers > MAX_CONTAINERS:
            return refuse(400, CODE, f"the body holds more than {MAX_CONTAINERS} JSON objects, "
                          "lists and keys; no callback sends that many")
        # Dash reads the body again with get_json: it gets these bytes, parsed once.
        request._cached_data = data
        reason = None
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the JSON parser can follow
            body = None
            reason = ("the body's JSON is nested deeper than it can be read; no callback "
                      "sends that")
        if reason is None:
            reason = "the body is not JSON" if body is None else problem(body, app.callback_map)
        if reason is None:
            store = _signing.forged_store(
                body, app.callback_map[body["output"]], app.server.config[_signing.CONFIG_KEY],
                app.server.config.get(_signing.PREVIOUS_CONFIG_KEY, ()),
            )
            if store is None:
                return None
            # Reloading the page empties the stores; opening the image signs them anew.
            reason = (f"the page's {store} is not what this server gave it (altered, or "
                      "from before a restart with another key): reload the page and open "
                      "the image again")
        return refuse(400, CODE, reason)
