"""HTTP client for the model server's REST API (``/health``, ``/predict``, ``/classify``).

The annotation client reaches the models only through this module. Every failure
becomes a :class:`ModelServerError` with a message fit to show the radiologist;
:class:`ModelServerUnavailable` marks the cases where the server could not be
reached or did not answer in time, so the page can say "work on by hand".
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Sequence

import requests

logger = logging.getLogger(__name__)

LABELS = ("normal", "benign", "malignant")


class ModelServerError(Exception):
    """The model server refused a request or answered something unusable.

    Attributes
    ----------
    message : str
        Human-readable reason (the server's own message when it gave one).
    status : int or None
        HTTP status, when there was a response.
    code : str or None
        The server's error code, e.g. ``"unsupported_media_type"``.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def logged(self) -> str:
        """What the client's log says of it: the status and code of a refusal, not its text.

        The server's message can quote what the file said (a DICOM header's value, a
        patient's name among them); the person who sent it sees the whole message.
        """
        if self.status is None:
            return self.message  # the client's own words: a timeout, an unusable answer
        # The model server's code is the status again ({"code": 503, ...}): said once.
        named = self.code and str(self.code) != str(self.status)
        return f"HTTP {self.status}" + (f" ({self.code})" if named else "")


class ModelServerUnavailable(ModelServerError):
    """The model server is down, still loading, or too slow to answer."""


class ModelServerUnreachable(ModelServerUnavailable):
    """No connection to the model server could be made: it is down, or not there.

    Unlike a slow answer, this is what a later successful health check takes back.
    """


class ModelServerClient:
    """Client for one model server.

    Parameters
    ----------
    base_url : str
        e.g. ``"http://127.0.0.1:5000"``.
    timeout : float, optional
        Seconds to wait for an answer (connecting gets at most 5 of them).
    session : requests.Session, optional
        For connection reuse; a new one by default.
    """

    def __init__(
        self, base_url: str, timeout: float = 30.0, session: requests.Session | None = None
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.session = session or requests.Session()

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(
                method, url, timeout=(min(5.0, self.timeout), self.timeout), **kwargs
            )
        except requests.Timeout as exc:
            raise ModelServerUnavailable(
                f"The model server at {self.base_url} did not answer within {self.timeout:g} s."
            ) from exc
        except requests.ConnectionError as exc:
            raise ModelServerUnreachable(
                f"The model server at {self.base_url} cannot be reached."
            ) from exc
        except requests.RequestException as exc:
            raise ModelServerError(f"Request to the model server failed: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> ModelServerError:
        code = None
        message = f"The model server answered HTTP {response.status_code}."
        try:
            error = response.json().get("error", {})
            if isinstance(error, dict):
                code = error.get("code")
                if error.get("message"):
                    message = f"The model server refused the request: {error['message']}"
        except (ValueError, AttributeError):
            pass
        kind = (
            ModelServerUnavailable if response.status_code in (502, 503, 504) else ModelServerError
        )
        if response.status_code == 503 and code is None:
            message = "The model server is starting up (models still loading)."
        return kind(message, status=response.status_code, code=code)

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError as exc:
            raise ModelServerError("The model server answered with invalid JSON.") from exc
        if not isinstance(body, dict):
            raise ModelServerError("The model server answered with unexpected JSON.")
        return body

    # ------------------------------------------------------------------ API

    def health(self) -> dict:
        """``GET /health``; returns its JSON when the server is ready."""
        return self._json(self._request("GET", "/health"))

    def predict(
        self,
        image: bytes,
        filename: str = "image",
        *,
        box: Sequence[int] | None = None,
        max_vertices: int = 32,
    ) -> dict:
        """Segment an image: ``POST /predict``.

        Parameters
        ----------
        image : bytes
            The image file (PNG, JPEG or DICOM) as uploaded.
        filename : str, optional
            Its name, sent along for the server's logs and type detection.
        box : (x0, y0, x1, y1), optional
            Restrict the segmentation to this box, in image pixels (x = column).
        max_vertices : int, optional
            Vertex budget per region of the returned paths.

        Returns
        -------
        dict
            The server's answer, checked: ``width``, ``height``, ``mask`` (base64
            PNG), ``svg``, ``paths``, ``regions``, ``pixel_spacing_mm``, ``model``.
        """
        params = {"max_vertices": str(int(max_vertices))}
        if box is not None:
            if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
                raise ValueError("box must be four finite numbers (x0, y0, x1, y1)")
            params["box"] = ",".join(str(int(round(float(v)))) for v in box)
        body = self._json(
            self._request(
                "POST", "/predict", params=params, files=self._image_field(image, filename)
            )
        )
        for key in ("width", "height", "mask", "paths"):
            if key not in body:
                raise ModelServerError(f"The model server's /predict answer lacks {key!r}.")
        if not isinstance(body["paths"], list) or not all(
            isinstance(p, str) for p in body["paths"]
        ):
            raise ModelServerError("The model server's /predict paths are not strings.")
        try:
            base64.b64decode(body["mask"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise ModelServerError("The model server's mask is not base64.") from exc
        body.setdefault("pixel_spacing_mm", None)
        body.setdefault("model", None)
        body.setdefault("regions", [])
        return body

    def classify(
        self, image: bytes, filename: str = "image", mask_png: bytes | None = None
    ) -> dict:
        """Classify an image as normal, benign or malignant: ``POST /classify``.

        Parameters
        ----------
        image : bytes
            The image file as uploaded.
        filename : str, optional
            Its name.
        mask_png : bytes, optional
            The corrected lesion mask (8-bit 0/255 PNG, the image's size).

        Returns
        -------
        dict
            ``label``, ``probabilities`` (the three labels, summing to 1) and ``model``.
        """
        files = self._image_field(image, filename)
        if mask_png is not None:
            if not isinstance(mask_png, bytes):
                raise TypeError("mask_png must be bytes")
            files["mask"] = ("mask.png", mask_png, "image/png")
        body = self._json(self._request("POST", "/classify", files=files))
        probabilities = body.get("probabilities")
        if body.get("label") not in LABELS or not isinstance(probabilities, dict):
            raise ModelServerError("The model server's /classify answer is incomplete.")
        try:
            body["probabilities"] = {k: float(probabilities[k]) for k in LABELS}
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelServerError("The model server's probabilities are incomplete.") from exc
        body.setdefault("model", None)
        return body

    @staticmethod
    def _image_field(image: bytes, filename: str) -> dict:
        if not isinstance(image, bytes | bytearray) or not image:
            raise ValueError("image must be non-empty bytes")
        if not isinstance(filename, str):
            raise TypeError("filename must be a str")
        return {"image": (filename or "image", bytes(image), guess_mime(bytes(image)))}


def guess_mime(data: bytes) -> str:
    """The MIME type of an image file from its first bytes (PNG, JPEG or DICOM)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[128:132] == b"DICM":
        return "application/dicom"
    return "application/octet-stream"
