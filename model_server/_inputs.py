"""Read files and parameters from the current request, with 400s that say what is wrong."""

from __future__ import annotations

import math
from contextlib import contextmanager

import multipart
from flask import current_app, g, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from vectorizer import MAX_PIXEL_SPACING_MM, MIN_PIXEL_SPACING_MM, sniff_image_format
from vectorizer._connections import RequestTooSlow

from ._errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType

#: The API's query parameters: a form field of one of these names is refused (400), as
#: it would otherwise be ignored.
QUERY_PARAMETERS = ("box", "max_vertices", "pixel_spacing")
MAX_VERTICES_RANGE = (3, 4096)
# Far more parts than any client sends (image, mask); a flood of tiny parts is refused.
MAX_PARTS = 32
_READ_CHUNK = 1 << 20
#: Characters of a query value an error message quotes: the client shows the message to
#: its user, and a 4000-character value quoted whole buried the reason.
QUOTED_VALUE_CHARS = 40


def quoted(text: str) -> str:
    """``text`` as a message quotes it: its repr, cut to :data:`QUOTED_VALUE_CHARS`
    characters and marked as cut ("...") when longer."""
    if len(text) <= QUOTED_VALUE_CHARS:
        return repr(text)
    return f"{text[:QUOTED_VALUE_CHARS]!r}... ({len(text)} characters)"


def read_file(field: str, *, required: bool = True, raw_body: bool = True) -> bytes | None:
    """Return the bytes of multipart file ``field``, or of the raw body.

    A multipart request must carry ``field`` as a file; a url-encoded one carries
    no file at all (``curl --data-binary`` without a content type sends one); any
    other content type is taken as the file itself (``raw_body``), but a JSON or
    other multipart body that is not a file we read is refused (415) saying what is
    expected. Missing or empty input
    is a 400 when ``required``, else None; so is a file part with neither a filename
    nor bytes, what a browser sends for a file input left empty. A form field named
    as a query parameter is refused (:func:`check_query`), and so is a multipart part
    the endpoint does not read or one given twice (:func:`_check_parts`). A body with a
    content coding (``Content-Encoding: gzip``) is refused (:func:`_refuse_content_coding`).
    """
    _refuse_content_coding()
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        parts = multipart_parts()
        _check_form_fields(parts)
        _check_parts(parts)
        part = parts[field][0] if field in parts else None
        if part is not None and part.filename is not None:
            data = part.raw
            if data:
                return data
            if part.filename == "":  # "no file chosen" (HTML's form submission)
                if not required:
                    return None
                raise BadRequest(f"no file was chosen for multipart field '{field}' "
                                 "(its part has no filename and no bytes)")
            raise BadRequest(f"multipart field '{field}' is empty")
        if part is not None:
            raise BadRequest(f"multipart field '{field}' must be a file part (with a filename)")
        if required:
            raise BadRequest(f"missing multipart file field '{field}'")
        return None
    if mimetype == "application/x-www-form-urlencoded":
        with _reading_body():
            _check_form_fields(request.form)
        if not required:
            return None
        raise BadRequest(
            "the body came as application/x-www-form-urlencoded (a web form's fields, "
            "and curl --data-binary's default), which carries no file: send the file as "
            f"multipart field '{field}' (curl -F '{field}=@file') or as the raw body with "
            "its own type (-H 'Content-Type: application/octet-stream')")
    if not raw_body:
        if required:
            raise BadRequest(f"send '{field}' as a multipart/form-data file field")
        return None
    with _reading_body():
        data = request.get_data(cache=False)
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if limit and request.content_length is None and len(data) >= limit:
            # A chunked body has no length to refuse it by up front, and werkzeug stops
            # reading at the limit without a word: one more byte tells a body of exactly
            # the limit from a longer one, which would otherwise be served cut short.
            try:
                request.stream.read(1)
            except RequestEntityTooLarge:
                raise PayloadTooLarge(
                    f"request body is larger than the limit of {limit} bytes"
                ) from None
    if request.content_length is not None and len(data) < request.content_length:
        # gunicorn marks its input as ending where the body does (wsgi.input_terminated),
        # so werkzeug returns a body cut short without a word: 4 bytes of a PNG were a 415
        # "not an image", 80% of a JPEG a 400 "truncated" blaming the file.
        raise BadRequest("the request body ended before all of it was sent")
    if not data:
        if required:
            raise BadRequest(
                f"empty request: send the file as multipart field '{field}' or as the raw body"
            )
        return None
    _refuse_wrapped_body(data, field)
    return data


def _refuse_content_coding() -> None:
    """Refuse a body sent with a content coding other than identity (415), or a transfer
    coding other than chunked (501), unread.

    Nothing here decodes one: a gzip-compressed PNG was told "got content that is not
    an image we read", as if the image were at fault, and a compressed multipart body
    "malformed multipart/form-data body". The 415 names the coding and, as RFC 7694
    asks, says in ``Accept-Encoding`` which one is read.
    """
    transfer = request.headers.get("Transfer-Encoding", "")
    if not _codings(transfer) <= {"chunked", "identity"}:
        # gunicorn undoes the chunking alone and hands the gzip bytes on (RFC 9112: a
        # transfer coding the server does not understand is a 501).
        raise ApiError(
            f"the body is sent with Transfer-Encoding {quoted(transfer.strip())}: only "
            "chunked is read; send the file's own bytes, uncompressed", status=501)
    header = request.headers.get("Content-Encoding", "")
    if _codings(header) <= {"identity"}:
        return
    raise UnsupportedMediaType(
        f"the body is sent with Content-Encoding {quoted(header.strip())}, which is not "
        "read: send the file's own bytes, uncompressed, without a Content-Encoding",
        headers={"Accept-Encoding": "identity"})


def _codings(header: str) -> set[str]:
    """The codings a Content-Encoding or Transfer-Encoding header lists, in lower case."""
    return {coding.strip().lower() for coding in header.split(",") if coding.strip()}


def _refuse_wrapped_body(data: bytes, field: str) -> None:
    """Refuse a JSON or non-form multipart body that is not itself the file (415).

    Such a body wraps the file (base64 in JSON, a part of multipart/mixed) and was
    told "got content that is not an image we read", as if the image were at fault
    (audit 802 F5). A file sent with one of these types by mistake is still read:
    the raw body's type is otherwise not looked at.
    """
    mimetype = request.mimetype
    wrapper = mimetype == "application/json" or mimetype.endswith("+json") or (
        mimetype.startswith("multipart/"))
    if not wrapper or sniff_image_format(data) is not None:
        return
    what = "a JSON body" if "json" in mimetype else f"a {mimetype} body"
    raise UnsupportedMediaType(
        f"{what} is not read: send the file as multipart/form-data field '{field}' or as "
        "the raw body (the file's own bytes, with any other Content-Type)")


@contextmanager
def _reading_body():
    """Answer a body that stalls (408), stops short or breaks its chunked framing (400)
    with what happened.

    werkzeug turns any error reading the body into a bare "client disconnected";
    a read that timed out (``READ_TIMEOUT``, or a body slower than the least rate:
    :mod:`vectorizer._connections`, under gunicorn) is a client that stalled, and
    the answer says so rather than blame the request's syntax. gunicorn reads a
    ``Transfer-Encoding: chunked`` body as the app asks for it, and raises its own
    parse errors there (a chunk size that is not hex, a chunk not followed by CRLF, a
    bad trailer line), which werkzeug lets through: they were 500s with a traceback in
    the log.
    """
    try:
        yield
    except ParseException as exc:
        raise BadRequest(f"malformed chunked request body: {exc}") from None
    except ClientDisconnected as exc:
        if isinstance(exc.__context__, RequestTooSlow):
            raise ApiError(str(exc.__context__), status=408) from None
        if isinstance(exc.__context__, TimeoutError):
            timeout = current_app.config.get("READ_TIMEOUT")
            raise ApiError(
                f"the request body stalled: no data for {timeout} s", status=408
            ) from None
        raise BadRequest("the request body ended before all of it was sent") from None


def multipart_parts() -> dict[str, list]:
    """The parts of the request's ``multipart/form-data`` body by field name (each
    name's parts in the body's order; ``""`` for a part without one), parsed once per
    request.

    The ``multipart`` package reads the body in large chunks and finds the
    boundary with ``bytes.find``; werkzeug's parser compiles two regular
    expressions for every new boundary (every request) and costs about 1.4 ms
    on a BUSI image against 0.3 ms. Parts stay in memory up to
    ``MAX_CONTENT_LENGTH``, which Flask enforces on the stream itself (413).
    A body that breaks the format is a 400; one over the part count, a 413.
    """
    parts = g.get("_multipart_parts")
    if parts is not None:
        return parts
    _, options = multipart.parse_options_header(request.content_type or "")
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("multipart/form-data request without a boundary in its Content-Type")
    # Always a positive number: the app's settings refuse "no limit".
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    parser = multipart.MultipartParser(
        request.stream,
        boundary,
        request.content_length if request.content_length is not None else -1,
        buffer_size=_READ_CHUNK,
        part_limit=MAX_PARTS,
        spool_limit=limit,
        memory_limit=limit,
        disk_limit=0,
    )
    parts: dict[str, list] = {}
    try:
        with _reading_body():
            for part in parser:
                parts.setdefault(part.name, []).append(part)
    except multipart.ParserLimitReached as exc:
        raise PayloadTooLarge(f"multipart body over a limit: {exc}") from None
    except multipart.MultipartError as exc:
        raise BadRequest(f"malformed multipart/form-data body: {exc}") from None
    g._multipart_parts = parts
    return parts


def _numbers(name: str, text: str, count: int) -> list[float]:
    parts = text.split(",")
    message = f"'{name}' must be {count} comma-separated numbers, got {quoted(text)}"
    # float() also takes "1_0" as 10 and other scripts' digits: plain decimals only.
    if len(parts) != count or not text.isascii() or "_" in text:
        raise BadRequest(message)
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(message) from None
    if not all(math.isfinite(v) for v in values):
        raise BadRequest(f"'{name}' must contain finite numbers, got {quoted(text)}")
    return values


def check_query(*allowed: str, files: tuple[str, ...]) -> None:
    """Refuse a query parameter the endpoint does not take, or one given twice (400),
    and note the multipart file fields it takes (``files``) for :func:`read_file`.

    Ignored, ``/classify?box=...`` classified the whole image, ``/predict?pixel_spacing=``
    measured in pixels, and of ``box`` given twice the first was used: each as if
    asked for, without a word. For the same reason a form field named as a query
    parameter, another part than ``files``, or one of them given twice is refused when
    :func:`read_file` reads the body (:func:`_check_form_fields`, :func:`_check_parts`).
    """
    for name in request.args:
        if name not in allowed:
            raise BadRequest(f"{request.path} does not take {name[:40]!r}: "
                             f"it takes {_takes(allowed)}")
        if len(request.args.getlist(name)) > 1:
            raise BadRequest(f"'{name}' is given {len(request.args.getlist(name))} times; "
                             "give it once")
    g._query_allowed = allowed  # for the form's fields, once the body is read
    g._files_taken = files


def _takes(allowed: tuple[str, ...]) -> str:
    return ", ".join(allowed) if allowed else "no query parameter"


def _check_form_fields(fields) -> None:
    """Refuse a form field named as a query parameter (400), once the body is parsed.

    ``curl -F box=...`` is the natural mistake; ignored, it gave the whole-image
    answer, one that looks like an answer to the question asked (audit 802 F3).
    Checked when :func:`read_file` reads the body, so that parsing it stays in the
    request's ``read`` time. Other fields are :func:`_check_parts`'s.
    """
    allowed = g.get("_query_allowed", ())
    for name in QUERY_PARAMETERS:
        if name not in fields:
            continue
        if name in allowed:
            raise BadRequest(f"'{name}' is a query parameter ({request.path}?{name}=...), "
                             "not a form field: put it in the URL")
        raise BadRequest(f"{request.path} does not take '{name}' (sent as a form field): "
                         f"it takes {_takes(allowed)}, as query parameters")


def _check_parts(parts: dict[str, list]) -> None:
    """Refuse a multipart part the endpoint does not read, or a field given twice (400).

    Of ``-F mask=@a.png -F mask=@b.png`` the first was used and of ``-F masks=@m.png``
    none, each answered as if asked for, without a word (audit 1006 F3), as a query
    parameter given twice or not taken was (:func:`check_query`). Parts are checked in
    the body's order; the fields taken are those :func:`check_query` noted.
    """
    taken = g.get("_files_taken", ())
    for name, copies in parts.items():
        if name not in taken:
            what = (f"multipart field {name[:40]!r}" if name
                    else "a multipart part without a field name")
            raise BadRequest(f"{request.path} does not take {what}: it takes "
                             f"{', '.join(taken) if taken else 'no multipart field'}")
        if len(copies) > 1:
            raise BadRequest(f"multipart field '{name}' is given {len(copies)} times; "
                             "give it once")


def parse_box(width: int, height: int) -> tuple[int, int, int, int] | None:
    """Parse query ``box=x0,y0,x1,y1`` (pixels, x = column) for a ``width`` x ``height`` image.

    The box is clipped to the image and widened to whole pixels: the result
    covers every pixel the box touches, as integer edges with
    ``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height``. A malformed box,
    one with ``x1 <= x0`` or ``y1 <= y0``, or one that misses the image is a 400.
    """
    text = request.args.get("box")
    if text is None or text.strip() == "":
        return None
    x0, y0, x1, y1 = _numbers("box", text, 4)
    if x1 <= x0 or y1 <= y0:
        raise BadRequest(f"'box' must have x0 < x1 and y0 < y1, got {quoted(text)}")
    cx0, cy0 = max(0.0, x0), max(0.0, y0)
    cx1, cy1 = min(float(width), x1), min(float(height), y1)
    if cx1 <= cx0 or cy1 <= cy0:
        raise BadRequest(f"'box' {quoted(text)} lies outside the {width}x{height} image")
    return (math.floor(cx0), math.floor(cy0), math.ceil(cx1), math.ceil(cy1))


def parse_max_vertices(default: int = 32) -> int:
    """Parse query ``max_vertices`` (an integer in ``MAX_VERTICES_RANGE``)."""
    text = request.args.get("max_vertices")
    if text is None or text.strip() == "":
        return default
    lo, hi = MAX_VERTICES_RANGE
    try:
        if not text.isascii():  # int() would also take other scripts' digits
            raise ValueError(text)
        value = int(text)
    except ValueError:
        raise BadRequest(f"'max_vertices' must be an integer, got {quoted(text)}") from None
    if not lo <= value <= hi:
        shown = value if len(text) <= QUOTED_VALUE_CHARS else quoted(text)
        raise BadRequest(f"'max_vertices' must be between {lo} and {hi}, got {shown}")
    return value


def parse_pixel_spacing() -> tuple[float, float] | None:
    """Parse query ``pixel_spacing=row_mm,col_mm``.

    Both numbers must be from ``vectorizer.MIN_PIXEL_SPACING_MM`` to
    ``vectorizer.MAX_PIXEL_SPACING_MM`` (mm per pixel), the spacings the vectorizer
    measures with; anything else is a 400 naming the parameter and the limit.
    """
    text = request.args.get("pixel_spacing")
    if text is None or text.strip() == "":
        return None
    row, col = _numbers("pixel_spacing", text, 2)
    if row <= 0 or col <= 0:
        raise BadRequest(f"'pixel_spacing' must be positive, got {quoted(text)}")
    if row < MIN_PIXEL_SPACING_MM or col < MIN_PIXEL_SPACING_MM:
        raise BadRequest(
            f"'pixel_spacing' must be at least {MIN_PIXEL_SPACING_MM:g} mm per pixel "
            f"in each direction, got {quoted(text)}"
        )
    if row > MAX_PIXEL_SPACING_MM or col > MAX_PIXEL_SPACING_MM:
        raise BadRequest(
            f"'pixel_spacing' must be at most {MAX_PIXEL_SPACING_MM:g} mm per pixel "
            f"in each direction, got {quoted(text)}"
        )
    return (row, col)
