"""Helpers shared by the inference tasks."""

from __future__ import annotations

import time
from contextlib import contextmanager

from .._errors import BadRequest


@contextmanager
def timed(timings: dict, key: str):
    """Add the wall time of the block, in ms, to ``timings[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = round(timings.get(key, 0.0) + (time.perf_counter() - start) * 1000.0, 3)


@contextmanager
def model_input_errors_as_400():
    """Turn the runtime's ``ModelInputError`` (an image it cannot use) into a 400."""
    try:
        yield
    except ValueError as exc:
        from models.runtime import ModelInputError

        if isinstance(exc, ModelInputError):
            raise BadRequest(f"the model cannot use this input: {exc}") from None
        raise


@contextmanager
def vectorizer_errors_as_400():
    """Turn a ``ValueError`` of the vectorizer (input it refuses) into a 400.

    The server checks the parameters it passes, so what the vectorizer refuses
    is the mask or spacing the client sent (a mask with too many regions to
    outline in time, say): the client's to fix, like a ``ModelInputError``.
    """
    try:
        yield
    except ValueError as exc:
        raise BadRequest(f"the vectorizer cannot outline the mask: {exc}") from None


def model_summary(runtime) -> dict:
    """``{"name", "version"}`` of the runtime's models."""
    info = runtime.info() or {}
    return {
        "name": str(info.get("name", "unknown")),
        "version": str(info.get("version", "unknown")),
    }
