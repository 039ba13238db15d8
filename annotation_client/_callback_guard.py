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
"""

from __future__ import annotations

import logging

import dash
import flask

from . import _signing

logger = logging.getLogger(__name__)

CODE = "bad_callback_request"


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
        ``dash.Dash.callback_map``: output id -> callback spec (``inputs``,
        ``state``, ``output``, ``no_output``).

    Returns
    -------
    str or None
        A message for the sender, or None when the envelope is what the callback
        named by ``output`` takes: as many ``inputs`` and ``state`` items as it
        declares, each an ``{id, property, value}`` object (a list of them for a
        pattern-matching one), and ``outputs`` matching its declared outputs.
    """
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or not output:
        return "'output' must name a callback output"
    spec = callback_map.get(output)
    if spec is None:
        return f"no callback has the output {output[:200]!r}; reload the page"
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
    return None


def register(app: dash.Dash) -> None:
    """Check every callback request to ``app`` before Dash dispatches it.

    Parameters
    ----------
    app : dash.Dash
        The app; a ``before_request`` hook is added to ``app.server`` after
        Dash's own, so the callback map is built by the time it runs.
    """
    route = app.config.routes_pathname_prefix + "_dash-update-component"

    @app.server.before_request
    def refuse_malformed_callbacks():
        request = flask.request
        if request.method != "POST" or request.path != route:
            return None
        # An empty map means Dash has not set itself up yet (its own before_request,
        # registered first, does so); nothing to check against then.
        if not app.callback_map:
            return None
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the JSON parser can follow
            body = None
        reason = "the body is not JSON" if body is None else problem(body, app.callback_map)
        if reason is None:
            store = _signing.forged_store(
                body, app.callback_map[body["output"]], app.server.config[_signing.CONFIG_KEY]
            )
            if store is None:
                return None
            # Reloading the page empties the stores; opening the image signs them anew.
            reason = (f"the page's {store} is not what this server gave it (altered, or "
                      "from before a restart with another key): reload the page and open "
                      "the image again")
        logger.warning("refused a callback request from %s: %s", request.remote_addr, reason)
        return flask.jsonify({"error": {"code": CODE, "message": reason}}), 400
