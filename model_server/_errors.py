"""JSON errors at the HTTP boundary.

Every error the server answers is ``{"error": {"code": <status>, "message": <text>}}``
with the right status, never an HTML page. :class:`ApiError` and its
subclasses are what the views raise for bad input; werkzeug's HTTP
exceptions (404, 405, 413 from ``MAX_CONTENT_LENGTH``) are converted by the
same handler, and a catch-all turns genuine bugs into a JSON 500 after
logging them.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client with ``status`` and ``message``."""

    status = 400

    def __init__(self, message: str, status: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ApiError):
    """400: a missing field, an undecodable image, a bad parameter."""

    status = 400


class PayloadTooLarge(ApiError):
    """413: over the byte limit or the pixel limit."""

    status = 413


class UnsupportedMediaType(ApiError):
    """415: content that is not a PNG, JPEG or DICOM file (sniffed from its bytes)."""

    status = 415


class ServiceUnavailable(ApiError):
    """503: the models are not loaded (yet), or failed to load."""

    status = 503


def error_response(status: int, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": status, "message": message}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the JSON handlers for ApiError, HTTPException and any other exception."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            # Sorted: werkzeug lists them from a set, in an order that changes with
            # each start of the server (the hash seed).
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        message = exc.description or exc.name
        limit = app.config.get("MAX_CONTENT_LENGTH")
        length = request.content_length
        if exc.code == 413 and limit and (length is None or length > limit):
            message = f"request body is larger than the limit of {limit} bytes"
        return error_response(exc.code or 500, message, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Reaching this handler is a bug in the server, never the client's fault; the
        # traceback goes to the log (it holds no image content), the client gets JSON.
        logger.exception("unhandled error")
        return error_response(500, "internal server error")
