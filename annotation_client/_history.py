"""Undo/redo history of outline edits, as plain JSON-able data.

The history lives in a ``dcc.Store`` in the browser, so it is a dict of lists and
strings rather than an object: every function here takes a history and returns a
new one, never mutating its argument. That keeps each edit a pure step that the
unit tests can replay, and it means a reload of the store can never half-apply an
edit.

A history is ``{"image": sha256 or None, "past": [...], "present": state,
"future": [...]}`` where a *state* is any JSON-able value (the annotate page uses
``{"paths": [...], "base": ..., "action": ...}``). Any other key is a fact about
the whole editing of the image rather than about one state (the annotate page's
``based_on``: the saved version that was loaded to revise); pushing, undoing and
redoing carry it along unchanged.
"""

from __future__ import annotations

import copy
import json
from typing import Any

#: How many undo steps are kept; the oldest are dropped beyond this. A long editing
#: session must not grow the store (sent with every callback) without bound.
DEFAULT_LIMIT = 200
#: The most bytes of JSON the states may take in all; the oldest undo steps are dropped
#: beyond this too. The edit callback sends the whole history, and the client refuses
#: a callback body over 8 MiB (``_callback_guard.SMALL_LIMIT``): a dozen regions of
#: 128 vertices reached that after 150 edits, and from then on every edit was drawn
#: but not recorded, and Save kept the outline of before. Half of it leaves room for
#: the model's answers and the graph event that come with the history.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

_KEYS = ("image", "past", "present", "future")


def new_history(present: Any = None, *, image: str | None = None) -> dict:
    """A history with nothing to undo or redo.

    Parameters
    ----------
    present : JSON-able, optional
        The current state.
    image : str, optional
        Identifier (content hash) of the image the edits belong to.

    Returns
    -------
    dict
        ``{"image": image, "past": [], "present": present, "future": []}``.
    """
    if image is not None and not isinstance(image, str):
        raise TypeError("image must be a str or None")
    return {"image": image, "past": [], "present": copy.deepcopy(present), "future": []}


def _check(history: Any) -> dict:
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict, not {type(history).__name__}")
    missing = [k for k in _KEYS if k not in history]
    if missing:
        raise ValueError(f"history is missing {', '.join(missing)}")
    if not isinstance(history["past"], list) or not isinstance(history["future"], list):
        raise ValueError("history past and future must be lists")
    return history


def _carried(history: dict) -> dict:
    """The keys of ``history`` beyond its four, copied: they outlive every edit."""
    return {k: copy.deepcopy(v) for k, v in history.items() if k not in _KEYS}


def push(
    history: dict, state: Any, *, limit: int = DEFAULT_LIMIT, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict:
    """Record a new edit: ``state`` becomes present, and the redo list is cleared.

    Pushing a state equal to the present one is a no-op, so a callback that fires
    without a real change (plotly re-sending the same path) adds no empty undo step.

    Parameters
    ----------
    history : dict
        A history from :func:`new_history`.
    state : JSON-able
        The state after the edit.
    limit : int, optional
        The maximum number of undo steps kept.
    max_bytes : int, optional
        The most bytes of JSON the states may take in all: the oldest undo steps are
        dropped until they fit (the present state is always kept).

    Returns
    -------
    dict
        The new history.
    """
    _check(history)
    if not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive int")
    if state == history["present"]:
        return copy.deepcopy(history)
    past = copy.deepcopy(history["past"]) + [copy.deepcopy(history["present"])]
    return {
        **_carried(history),
        "image": history["image"],
        "past": _within(past[-limit:], state, max_bytes),
        "present": copy.deepcopy(state),
        "future": [],
    }


def _json_bytes(state: Any) -> int:
    return len(json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode())


def _within(past: list, present: Any, max_bytes: int) -> list:
    """``past`` without as many of its oldest states as it takes for it and ``present``
    to fit in ``max_bytes`` of JSON."""
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError("max_bytes must be a positive int")
    sizes = [_json_bytes(s) for s in past]
    total = sum(sizes) + _json_bytes(present)
    dropped = 0
    while dropped < len(past) and total > max_bytes:
        total -= sizes[dropped]
        dropped += 1
    return past[dropped:]


def amend(history: dict, state: Any) -> dict:
    """Replace the present state without a new undo step; the redo list is cleared.

    For a run of like changes that undo should take back as one: a vertex-density
    slider moved step by step with the arrow keys, say.

    Parameters
    ----------
    history : dict
        A history from :func:`new_history`.
    state : JSON-able
        The state that replaces the present one.

    Returns
    -------
    dict
        The new history.
    """
    _check(history)
    return {
        **_carried(history),
        "image": history["image"],
        "past": _within(copy.deepcopy(history["past"]), state, DEFAULT_MAX_BYTES),
        "present": copy.deepcopy(state),
        "future": [],
    }


def undo(history: dict) -> dict:
    """Step back one edit; the present goes to the front of the redo list.

    Undoing with nothing to undo returns an unchanged copy.
    """
    _check(history)
    if not history["past"]:
        return copy.deepcopy(history)
    return {
        **_carried(history),
        "image": history["image"],
        "past": copy.deepcopy(history["past"][:-1]),
        "present": copy.deepcopy(history["past"][-1]),
        "future": [copy.deepcopy(history["present"])] + copy.deepcopy(history["future"]),
    }


def redo(history: dict) -> dict:
    """Step forward one undone edit. Redoing with nothing to redo changes nothing."""
    _check(history)
    if not history["future"]:
        return copy.deepcopy(history)
    return {
        **_carried(history),
        "image": history["image"],
        "past": copy.deepcopy(history["past"]) + [copy.deepcopy(history["present"])],
        "present": copy.deepcopy(history["future"][0]),
        "future": copy.deepcopy(history["future"][1:]),
    }


def can_undo(history: dict | None) -> bool:
    """Whether :func:`undo` would change anything (False for ``None``)."""
    return bool(history) and bool(_check(history)["past"])


def can_redo(history: dict | None) -> bool:
    """Whether :func:`redo` would change anything (False for ``None``)."""
    return bool(history) and bool(_check(history)["future"])
