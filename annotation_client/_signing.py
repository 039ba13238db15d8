"""Sign the page state the server hands to the browser, so it cannot come back forged.

Dash keeps the open image's description (``image-meta``: its SHA-256, name, size,
pixel spacing, worklist path), the model server's answers (``ai-result``,
``box-result``, ``classification``), the outline's undo history
(``outline-history``, which only the server's edit callback writes, after checking
each change) and a saved version loaded to revise (``loaded-save``) in
``dcc.Store`` components in the browser,
and every callback gets them back in its request body. A callback that trusted
them could be sent an image of 100000 x 100000 pixels (a 10 GB mask allocated
before any limit applied), a size that does not match the saved image (reader
agreement then failed for everyone), a name with a NUL (a version saved but never
indexed), or an AI answer the model never gave, recorded as the model's.

So each value the server puts in one of those stores carries an HMAC-SHA256 of its
content under a key only the server knows, and :mod:`annotation_client._callback_guard`
refuses, with a 400, any callback request in which one of them comes back without a
valid signature. The key is ``SONOTRACE_SECRET_KEY`` when it is set, else random,
made before the workers start so they share it (see :func:`load_key`); nothing is
written to disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets

from . import ids

FIELD = "signature"
ENV = "SONOTRACE_SECRET_KEY"
_KEY_BYTES = 32
_EXACT_INT = 2**53
_OWN_KEY = secrets.token_bytes(_KEY_BYTES)
#: Where the app keeps its key (``flask.current_app.config``).
CONFIG_KEY = "SONOTRACE_SIGNING_KEY"
#: The stores whose values only the server writes, and so signs.
SIGNED_STORES = (ids.IMAGE_META, ids.AI_RESULT, ids.BOX_RESULT, ids.CLASSIFICATION,
                 ids.HISTORY, ids.LOADED_SAVE)


def load_key(environ=None) -> bytes:
    """The key this process signs and checks page state with.

    Parameters
    ----------
    environ : mapping, optional
        ``os.environ`` by default. ``SONOTRACE_SECRET_KEY``, when set, is the
        secret (any text; hashed to 32 bytes): clients behind one load balancer
        need the same one. ``python -m annotation_client`` sets a random one
        before its workers start, so they share it.

    Returns
    -------
    bytes
        32 bytes; without ``SONOTRACE_SECRET_KEY``, random for this process: a
        page kept open across a restart must then be reloaded.
    """
    environ = os.environ if environ is None else environ
    text = str(environ.get(ENV, "")).strip()
    if text:
        return hashlib.sha256(text.encode("utf-8")).digest()
    return secrets.token_bytes(_KEY_BYTES)


def share_key_with_workers(environ=None) -> None:
    """Give ``environ`` (``os.environ``) a random ``SONOTRACE_SECRET_KEY`` unless it has
    one, before worker processes are started, so that they all accept each other's
    signatures (a browser's requests may reach any of them)."""
    environ = os.environ if environ is None else environ
    if not str(environ.get(ENV, "")).strip():
        environ[ENV] = secrets.token_hex(_KEY_BYTES)


def signed(value: dict) -> dict:
    """``value`` signed with the running app's key, for a store in :data:`SIGNED_STORES`.

    Outside an app (a callback called directly, as the tests do), with a key of this
    process: no app checks that signature.
    """
    import flask

    key = flask.current_app.config[CONFIG_KEY] if flask.has_app_context() else _OWN_KEY
    return sign(value, key)


def forged_store(body: dict, key: bytes) -> str | None:
    """The first signed store a callback request body carries unsigned or altered.

    Parameters
    ----------
    body : dict
        A callback request whose envelope has been checked: ``inputs`` and
        ``state`` are lists of ``{id, property, value}`` items (or lists of them).
    key : bytes

    Returns
    -------
    str or None
        The store's id; None when every one carried is empty (no image open yet)
        or signed by ``key``.
    """
    for group in (body.get("inputs", []), body.get("state", [])):
        for entry in group:
            for item in entry if isinstance(entry, list) else [entry]:
                if item.get("id") in SIGNED_STORES and item.get("property") == "data":
                    value = item.get("value")
                    if value is not None and not verify(value, key):
                        return item["id"]
    return None


def sign(value: dict, key: bytes) -> dict:
    """A copy of ``value`` (a JSON-able dict) with its signature under ``FIELD``."""
    out = {k: v for k, v in value.items() if k != FIELD}
    out[FIELD] = _digest(out, key)
    return out


def verify(value, key: bytes) -> bool:
    """Whether ``value`` is a dict that :func:`sign` made with ``key``, unchanged."""
    if not isinstance(value, dict) or not isinstance(value.get(FIELD), str):
        return False
    try:
        expected = _digest({k: v for k, v in value.items() if k != FIELD}, key)
    except (TypeError, ValueError, RecursionError):
        return False
    return hmac.compare_digest(expected, value[FIELD])


def _digest(value: dict, key: bytes) -> str:
    return hmac.new(key, _canonical(value), hashlib.sha256).hexdigest()


def _canonical(value) -> bytes:
    # The browser writes 2.0 back as 2: a whole float is written as an int on both
    # sides, so the round trip through JavaScript keeps the signature.
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False).encode("ascii")


def _normal(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        # JavaScript holds numbers as doubles: a larger int (a time in ns) comes back
        # as the nearest double, so it is signed as that.
        return value if abs(value) <= _EXACT_INT else int(float(value))
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    raise TypeError(f"cannot sign a {type(value).__name__}")
