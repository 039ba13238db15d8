"""The annotator's name as a sign-in proxy gives it, in a request header.

With ``SONOTRACE_ANNOTATOR_HEADER`` set, the client sits behind a reverse proxy
that signs users in and names the user in that header; a save records the name
from there, not one typed in the page. The proxy is trusted to set the header
itself and drop any copy the browser sent: the client cannot tell the two apart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

#: Longest name recorded: the annotation index's annotator column holds 200 characters.
MAX_NAME_CHARS = 200
#: Control characters, and the line and paragraph separators that act like them: a name
#: with one would break the Saved page's rows, the CSV and the log lines it appears in.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
#: The bidirectional formatting characters: LRM, RLM and ALM, the embeddings and
#: overrides (U+202A-202E) and the isolates (U+2066-2069). A name with one shows the
#: text after it reordered on the Saved page and in a spreadsheet ("Dr A\u202eleM"
#: reads "Dr AMel"). They are format characters (Cf) like the joiners that some
#: scripts' names need, so they are picked by name, not by category; right-to-left
#: names need none of them (the browser orders Arabic and Hebrew letters itself).
BIDI_CONTROLS = frozenset(
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def shown_text(text: str) -> str:
    """``text`` with each character a name may not hold (control characters, C1 ones
    included, the line and paragraph separators, :data:`BIDI_CONTROLS`) replaced by
    "_": a file name or path as a page shows it. A bidi override shows it reordered
    ("scan\u202egnp.exe" reads "scanexe.png"), a line break splits a row."""
    import unicodedata

    return "".join("_" if ch in BIDI_CONTROLS or unicodedata.category(ch) in
                   _REFUSED_CATEGORIES else ch for ch in text)


class SignInError(ValueError):
    """The request names no user the client can record as the annotator."""


def _as_utf8(value: str) -> str:
    # WSGI hands header values over as Latin-1 text, byte for byte; proxies send a
    # non-ASCII name as UTF-8 bytes, which would be recorded as mojibake ("JosÃ©").
    # Bytes that are not UTF-8 are taken as the Latin-1 they were read as.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def checked_name(name: str, subject: str) -> str:
    """``name`` stripped and in Unicode's composed form (NFC), if it can be recorded.

    One name is one string however the keyboard, a paste or the sign-in proxy
    encoded its accents: a decomposed "e" + U+0301 is recorded, compared and
    looked up as the composed "é", so the two are the same reader, not two names
    that look alike.

    Parameters
    ----------
    name : str
        A typed name, or one a proxy sent.
    subject : str
        What the messages call it, e.g. ``"The annotator's name"``.

    Raises
    ------
    SignInError
        When it is longer than :data:`MAX_NAME_CHARS` characters, or holds control
        characters or bidirectional formatting characters (:data:`BIDI_CONTROLS`);
        the message never repeats the name.

    Examples
    --------
    >>> checked_name(" Jose\u0301 ", "The name") == "Jos\u00e9"
    True
    """
    name = unicodedata.normalize("NFC", name.strip())
    if len(name) > MAX_NAME_CHARS:
        raise SignInError(f"{subject} is longer than {MAX_NAME_CHARS} characters.")
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in name):
        raise SignInError(f"{subject} holds control characters.")
    if not BIDI_CONTROLS.isdisjoint(name):
        raise SignInError(
            f"{subject} holds a bidirectional formatting character (such as a "
            "right-to-left override), which would show it reordered."
        )
    return name


def reader_key(name: str) -> str:
    """What two spellings of one reader's name have in common.

    Unicode compatibility form (``NFKC``: a composed and a decomposed "é" agree),
    case folded, and runs of white space made one space, trimmed.

    Examples
    --------
    >>> reader_key("  Dr.  Ana\tLIMA ") == reader_key("dr. ana lima")
    True
    """
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def same_reader_spelled_otherwise(name: str, known: Iterable[str]) -> str | None:
    """A known annotator name that ``name`` repeats but for case or spacing, if any.

    A typed name is the only thing that says who saved an annotation, so "Dr Ana Lima"
    and "dr ana lima" would count as two readers: reader agreement would compare a
    radiologist with herself, and each spelling would see only its own saves. A save
    under such a name is refused, so that one reader keeps one name.

    Parameters
    ----------
    name : str
        The name about to be recorded (already stripped).
    known : iterable of str
        The annotator names already recorded.

    Returns
    -------
    str or None
        The first such name in sorted order, or None when ``name`` is new or is
        itself a known name.
    """
    known = set(known)
    if name in known:
        # Recorded exactly before: that spelling is in use, whatever others exist already.
        return None
    key = reader_key(name)
    return min((k for k in known if reader_key(k) == key), default=None)


def signed_in_name(headers: Mapping[str, str], header: str) -> str:
    """The user a sign-in proxy named in ``header``, checked and stripped.

    Parameters
    ----------
    headers : mapping
        The request's headers, e.g. ``flask.request.headers`` (looked up by
        ``header`` as given; Werkzeug's headers ignore case).
    header : str
        The header's name (``SONOTRACE_ANNOTATOR_HEADER``).

    Returns
    -------
    str
        The name, without surrounding white space and in composed form (NFC, see
        :func:`checked_name`); UTF-8 bytes are decoded.

    Raises
    ------
    SignInError
        When the header is missing or blank, holds a comma (the header came
        twice and was joined), is longer than :data:`MAX_NAME_CHARS` characters,
        or holds control characters. The message names the header and never
        repeats its value.

    Examples
    --------
    >>> signed_in_name({"X-Forwarded-User": " ada "}, "X-Forwarded-User")
    'ada'
    """
    if not isinstance(header, str) or not header:
        raise TypeError("header must be a non-empty str")
    raw = headers.get(header)
    name = _as_utf8(raw).strip() if isinstance(raw, str) else ""
    if not name:
        raise SignInError(
            f"The sign-in proxy did not name the user: the request has no {header} "
            "header, or an empty one. Sign in again, or ask the administrator to check "
            "the proxy."
        )
    subject = f"The user name in the sign-in proxy's {header} header"
    if "," in name:
        # A WSGI server joins repeated headers with commas: the proxy appended its
        # header to one the browser sent, and one of the names is not the user's.
        raise SignInError(
            f"{subject} holds a comma: the request carried the header more than once. "
            "Ask the administrator to make the proxy replace the header, not add to it."
        )
    return checked_name(name, subject)
