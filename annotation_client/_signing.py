"""Sign the page state the server hands to the browser, so it cannot come back forged.

Dash keeps the open image's description (``image-meta``: its SHA-256, name, size,
pixel spacing, worklist path), the model server's answers (``ai-result``,
``box-result``, ``classification``), the outline's undo history
(``outline-history``, which only the server's edit callback writes, after checking
each change) and a saved version loaded to revise (``loaded-save``) in
``dcc.Store`` components in the browser, and every callback gets them back in its
request body. A callback that trusted them could be sent an image of 100000 x
100000 pixels (a 10 GB mask allocated before any limit applied), a size that does
not match the saved image (reader agreement then failed for everyone), a name with
a NUL (a version saved but never indexed), or an AI answer the model never gave,
recorded as the model's.

So each value the server puts in one of those stores carries an HMAC-SHA256 of the
store's name and the value, under a key only the server knows, and
:mod:`annotation_client._callback_guard` refuses, with a 400, any callback request
in which the value in one of those stores' places (Dash passes values by position,
whatever id the request gives them) comes back without a valid signature for that
store.

The key (see :func:`load_key`) is ``SONOTRACE_SECRET_KEY`` when it is set, else the
one kept in the data folder (``.client-signing-key``, made on first start, readable
by its owner only), so every worker, a restarted client and clients sharing the
folder accept what another signed: a page left open across a restart keeps working.
A ``SONOTRACE_SECRET_KEY`` that could be guessed is refused (see :func:`check_key`):
every signed value a browser holds is a test of a guess, offline and at any speed.

A change of key would refuse every page open at the time, and with it every reader's
unsaved work: the keys signed with before (``SONOTRACE_PREVIOUS_SECRET_KEYS``) are
still accepted (see :func:`load_previous_keys`). A store a callback writes is signed
with the new key; one a page keeps unchanged (the open image's description, until
another image is opened) keeps the old key's signature, so an old key may go only once
every page open under it has been reloaded or has moved on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import stat
from pathlib import Path

from . import ids

logger = logging.getLogger(__name__)

FIELD = "signature"
ENV = "SONOTRACE_SECRET_KEY"
#: Keys this client signed with before, still accepted (space- or comma-separated).
PREVIOUS_ENV = "SONOTRACE_PREVIOUS_SECRET_KEYS"
KEY_FILE = ".client-signing-key"
_KEY_BYTES = 32
_EXACT_INT = 2**53
_OWN_KEY = secrets.token_bytes(_KEY_BYTES)
#: Fewest characters of ``SONOTRACE_SECRET_KEY``: 32 random characters of the commonest
#: alphabets (hex: 128 bits; MAKE_KEY's: 192) are out of reach of an offline search,
#: which a one-word or one-phrase passphrase is not.
MIN_KEY_CHARS = 32
#: Fewest different characters in it: "aaaa..." or "abcabc..." is as long as a key but
#: as easy to guess as a short one. 32 random hex digits hold fewer about once in 30
#: million tries.
_MIN_KEY_DISTINCT = 8
#: The command the refusal suggests, which makes a key of 43 characters (256 bits).
MAKE_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
#: Where the app keeps its key (``flask.current_app.config``).
CONFIG_KEY = "SONOTRACE_SIGNING_KEY"
#: And the keys it signed with before, still accepted (:func:`load_previous_keys`).
PREVIOUS_CONFIG_KEY = "SONOTRACE_PREVIOUS_SIGNING_KEYS"
#: The stores whose values only the server writes, and so signs.
SIGNED_STORES = (ids.IMAGE_META, ids.AI_RESULT, ids.BOX_RESULT, ids.CLASSIFICATION,
                 ids.HISTORY, ids.LOADED_SAVE)


def load_key(data_dir: Path | None = None, environ=None) -> bytes:
    """The key this client signs and checks page state with.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        The data folder (``SONOTRACE_DATA_DIR``), where the key is kept.
    environ : mapping, optional
        ``os.environ`` by default. ``SONOTRACE_SECRET_KEY``, when set, is the
        secret (text that :func:`check_key` accepts; hashed to 32 bytes), and
        nothing is written.

    Returns
    -------
    bytes
        32 bytes: from ``SONOTRACE_SECRET_KEY``; else from ``data_dir``'s key file,
        made there (mode 600, written whole and flushed, then linked into place) if it
        is not, or replacing a shorter file a start that could not write it left; else,
        when the folder cannot hold it or none is given, random for this process, with
        a warning (a page open across a restart, or served by another worker, must then
        be reloaded), and nothing left behind.

    Raises
    ------
    ValueError
        ``SONOTRACE_SECRET_KEY`` is set to a key that could be guessed (see
        :func:`check_key`), or the key file holds something else than a key, which
        this client did not leave there.
    """
    environ = os.environ if environ is None else environ
    check_key(environ)
    text = str(environ.get(ENV, "")).strip()
    if text:
        return hashlib.sha256(text.encode("utf-8")).digest()
    if data_dir is None:
        return secrets.token_bytes(_KEY_BYTES)
    path = Path(data_dir) / KEY_FILE
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return _kept_key(path)
    except OSError as exc:
        # Nothing is left behind (the key is written whole, then linked): the next start
        # makes the key, or replaces a file a failed write left.
        logger.warning("page state is signed with a key of this process only (%s); set %s "
                       "to keep pages working across restarts and workers", exc, ENV)
        return secrets.token_bytes(_KEY_BYTES)


def _kept_key(path: Path) -> bytes:
    """The key in ``path``, made there if there is none, or replacing a file a start that
    could not write it whole left (shorter than a key, this user's).

    Every worker and client starting together on one folder gets the same key: a new
    key is written whole to a temporary file, flushed, and linked into place, so the
    first link wins and the others read it; a leftover is replaced under a lock on it,
    and a process that waited for that lock reads the key that replaced it.

    Raises
    ------
    OSError
        When the key can be neither read nor made (a disk full, a read-only folder).
    ValueError
        When ``path`` holds something else than a key that this client did not leave:
        replacing it could sign out other clients that use it.
    """
    for _ in range(5):
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            made = secrets.token_bytes(_KEY_BYTES)
            try:
                _place(path, made, over=None)
            except FileExistsError:
                continue  # another worker's key is there first: read it
            return made
        if len(key) == _KEY_BYTES:
            return key
        try:
            _check_leftover(path, key)
            # For writing: a network file system locks only a file open so.
            held = open(path, "r+b")  # closed by the with below
        except FileNotFoundError:
            continue  # replaced meanwhile
        with held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
            if not _same_file(held, path) or len(path.read_bytes()) == _KEY_BYTES:
                continue  # replaced meanwhile by a worker that held the lock first
            made = secrets.token_bytes(_KEY_BYTES)
            _place(path, made, over=held)
            logger.warning("%s held %d byte(s), left by a start that could not write the key "
                           "whole: replaced by a new key", path, len(key))
            return made
    raise OSError(f"{path} kept changing while it was read")


def _check_leftover(path: Path, key: bytes) -> None:
    """Raise ValueError unless a key file of the wrong length is one a start of this
    client left: a regular file of this user's, shorter than a key (the disk full, or
    the power cut, before the key was in it, as an earlier version could leave it)."""
    info = os.lstat(path)
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and len(key) < _KEY_BYTES:
        return
    raise ValueError(
        f"{path} holds {len(key)} bytes, not a {_KEY_BYTES}-byte signing key, and was not "
        "left by a start of this client: remove it (a new key is made at the next start, "
        f"and open pages must be reloaded) or set {ENV}"
    )


def _same_file(handle, path: Path) -> bool:
    """Whether ``path`` still names the file ``handle`` has open."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _place(path: Path, key: bytes, over) -> None:
    """Write ``key`` to a flushed temporary file beside ``path`` (mode 600), then put it
    in place: linked, FileExistsError when a file is there (``over`` None), or renamed
    over the leftover ``over`` has open and locked. The folder is flushed after."""
    from ._storage import _write_temp, fsync_dir  # numpy and the index: only when needed

    temp = _write_temp(path, key)  # mkstemp's mode, 600
    try:
        if over is None:
            os.link(temp, path)
        else:
            os.replace(temp, path)
            temp = None
        fsync_dir(path.parent)
    finally:
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def load_previous_keys(environ=None) -> tuple[bytes, ...]:
    """The keys this client signed page state with before its present one, still accepted.

    Not the data folder's key file, even once ``SONOTRACE_SECRET_KEY`` replaces it: a
    site that sets the variable because a backup of the folder (which holds the file)
    leaked must not go on accepting the leaked key.

    Parameters
    ----------
    environ : mapping, optional
        ``os.environ`` by default. ``SONOTRACE_PREVIOUS_SECRET_KEYS``: the earlier
        ``SONOTRACE_SECRET_KEY`` values, separated by spaces or commas (each checked as
        :func:`check_key` checks the present one; a key holding either cannot be listed:
        :data:`MAKE_KEY` makes none).

    Returns
    -------
    tuple of bytes
        32 bytes each, the present key's left out.

    Raises
    ------
    ValueError
        A previous key that could be guessed (:func:`check_key`).
    """
    environ = os.environ if environ is None else environ
    check_key(environ)
    keys = [hashlib.sha256(text.encode("utf-8")).digest()
            for text in _previous_texts(environ)]
    present = load_key(None, environ) if str(environ.get(ENV, "")).strip() else None
    return tuple(dict.fromkeys(k for k in keys if k != present))


def _previous_texts(environ) -> list[str]:
    return [text for text in str(environ.get(PREVIOUS_ENV) or "").replace(",", " ").split()
            if text]


def check_key(environ=None) -> None:
    """Refuse a ``SONOTRACE_SECRET_KEY`` that could be guessed; unset or blank passes.

    A guess is tested offline against any signed value a page holds, so the key must
    be out of reach of a search: at least :data:`MIN_KEY_CHARS` characters (after
    surrounding blanks are stripped), of at least 8 different ones. Whether a long
    text is a sentence anyone could guess cannot be told from it: make the key with
    :data:`MAKE_KEY`.

    Parameters
    ----------
    environ : mapping, optional
        ``os.environ`` by default.

    Raises
    ------
    ValueError
        One line naming ``SONOTRACE_SECRET_KEY``, why, and how to make a key; never
        the key.
    """
    environ = os.environ if environ is None else environ
    text = str(environ.get(ENV) or "").strip()
    why = _weakness(text) if text else None
    if why is not None:
        raise ValueError(
            f"{ENV} {why}: page state signed with it could be forged once it is guessed, "
            f"offline. Set it to a random key, made with: {MAKE_KEY} (or unset it: the key "
            f"kept in the data folder is used)"
        )
    for number, previous in enumerate(_previous_texts(environ), start=1):
        why = _weakness(previous)
        if why is not None:
            # Still accepted, so as open to a guess as the present key.
            raise ValueError(f"{PREVIOUS_ENV}: its key number {number} {why}: page state "
                             "signed with it could be forged once it is guessed; leave it "
                             "out")


def _weakness(text: str) -> str | None:
    if len(text) < MIN_KEY_CHARS:
        return f"is shorter than {MIN_KEY_CHARS} characters"
    if len(set(text)) < _MIN_KEY_DISTINCT:
        return f"has fewer than {_MIN_KEY_DISTINCT} different characters"
    return None


def unsigned(value: dict) -> dict:
    """``value`` without its signature: to change, then sign again as it leaves."""
    return {k: v for k, v in value.items() if k != FIELD}


def signed(value: dict, store: str) -> dict:
    """``value`` signed for ``store`` (one of :data:`SIGNED_STORES`) with the app's key.

    Outside an app (a callback called directly, as the tests do), with a key of this
    process: no app checks that signature.
    """
    import flask

    key = flask.current_app.config[CONFIG_KEY] if flask.has_app_context() else _OWN_KEY
    return sign(value, key, store)


def forged_store(body: dict, spec: dict, key: bytes,
                 previous: tuple[bytes, ...] = ()) -> str | None:
    """The first signed store whose place in a callback request holds no valid value.

    Parameters
    ----------
    body : dict
        A callback request whose envelope has been checked: ``inputs`` and
        ``state`` are lists of ``{id, property, value}`` items (or lists of them),
        as many as ``spec`` declares.
    spec : dict
        The callback's entry in ``dash.Dash.callback_map``: its declared
        ``inputs`` and ``state``. Dash hands values to the callback by their
        position there, so the declared id decides, not the one the request gives.
    key : bytes
    previous : tuple of bytes
        Keys signed with before ``key``, still accepted (:func:`load_previous_keys`).

    Returns
    -------
    str or None
        The store's id; None when every such place is empty (no image open yet)
        or holds a value signed for that store with ``key`` or one of ``previous``.
    """
    for group in ("inputs", "state"):
        for declared, item in zip(spec.get(group, []), body.get(group, []), strict=False):
            store = declared.get("id")
            if store not in SIGNED_STORES or declared.get("property") != "data":
                continue
            value = item.get("value") if isinstance(item, dict) else item
            if value is not None and not any(verify(value, k, store)
                                             for k in (key, *previous)):
                return store
    return None


def sign(value: dict, key: bytes, store: str) -> dict:
    """A copy of ``value`` (a JSON-able dict) with its signature for ``store`` under ``FIELD``."""
    out = {k: v for k, v in value.items() if k != FIELD}
    out[FIELD] = _digest(out, key, store)
    return out


def verify(value, key: bytes, store: str) -> bool:
    """Whether ``value`` is a dict that :func:`sign` made for ``store`` with ``key``, unchanged."""
    if not isinstance(value, dict) or not isinstance(value.get(FIELD), str):
        return False
    try:
        expected = _digest({k: v for k, v in value.items() if k != FIELD}, key, store)
    except (TypeError, ValueError, RecursionError):
        return False
    return hmac.compare_digest(expected, value[FIELD])


def _digest(value: dict, key: bytes, store: str) -> str:
    # The store's name is signed too: a value signed for one store is refused in another.
    message = store.encode("utf-8") + b"\n" + _canonical(value)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _canonical(value) -> bytes:
    # The browser writes 2.0 back as 2: a whole float is written as an int on both
    # sides, so the round trip through JavaScript keeps the signature.
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False).encode("ascii")


def _normal(value):
    if hasattr(value, "item") and not isinstance(value, dict | list | tuple | str):
        value = value.item()  # a numpy scalar: as the JSON encoder writes it
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        # JavaScript holds numbers as doubles: a larger int (a time in ns) comes back
        # as the nearest double, so it is signed as that.
        return value if abs(value) <= _EXACT_INT else int(float(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # written as null, and so read back
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    raise TypeError(f"cannot sign a {type(value).__name__}")
