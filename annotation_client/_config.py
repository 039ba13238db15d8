"""Configuration of the annotation client, from ``SONOTRACE_*`` variables or a mapping."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

# SONOTRACE_TRUSTED_HOSTS is parsed and matched exactly as the model server does;
# LOOPBACK_HOSTS (the names this machine's own browser uses) is its default here.
# host_is_trusted and split_host are re-exported for _app and the tests.
from vectorizer._settings import (  # noqa: F401
    LOOPBACK_HOSTS,
    check_max_pixels,
    host_is_trusted,
    split_host,
    trusted_hosts,
)

from . import _signin
from ._database import check_url, default_url
from ._imageio import DEFAULT_MAX_PIXELS

PREFIX = "SONOTRACE_"
#: An HTTP field name (RFC 9110's token) without "_": WSGI servers turn "-" into "_",
#: so gunicorn and Werkzeug drop a header whose name has one rather than confuse it
#: with its hyphenated twin, and a header named so would never arrive.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^`|~0-9A-Za-z-]+")
#: Headers that never name a user: with one of them (Authorization behind basic
#: authentication is the likely slip) every save would record a credential or the
#: request's plumbing as the annotator, on the Saved page and in its CSV.
_NOT_A_USER_HEADER = re.compile(
    r"(proxy-)?authorization|(set-)?cookie|host|content-.*|transfer-encoding|connection",
    re.IGNORECASE,
)
#: Accepted ranges of the number settings, ``(smallest, largest, unit)``.
_RANGES = {
    # Seconds. Below 0.1 s not even a local model server answers, so every segmentation
    # would fail; past an hour nobody is still waiting at the workstation (gunicorn's
    # worker timeout is this plus 60 s).
    "request_timeout": (0.1, 3600.0, "seconds"),
    # MB (MiB). 0.01 MB (about 10 kB) is smaller than any ultrasound frame worth
    # opening, so a smaller limit could only be a slip of units. 1024 MB: a callback
    # carries the upload base64-inflated and the worker decodes it in memory, so a
    # larger file would exhaust the worker long before the model server (64 MiB body
    # limit by default) could see it.
    "max_upload_mb": (0.01, 1024.0, "MB"),
}


@dataclass(frozen=True)
class ClientConfig:
    """Settings of one annotation client.

    Attributes
    ----------
    model_server_url : str
        Base URL of the model server (``SONOTRACE_MODEL_SERVER_URL``).
    data_dir : pathlib.Path
        Where annotations are saved (``SONOTRACE_DATA_DIR``).
    request_timeout : float
        Seconds to wait for the model server (``SONOTRACE_REQUEST_TIMEOUT``).
    model_calls : int
        Calls to the model server that one client worker makes at once
        (``SONOTRACE_MODEL_CALLS``, 1 to 256, default 6); keep it below the worker's
        request threads (``SONOTRACE_CLIENT_THREADS``, 8), so that a slow model
        server leaves threads for saves and pages. A further /predict or /classify
        waits up to 2 s for one to end, then the page says the server is busy.
    read_timeout : int
        Seconds a browser may go silent while sending a request, and the grace before
        it must keep up 500 bytes/s (``SONOTRACE_READ_TIMEOUT``, the model server's
        variable and default, 20; see :mod:`vectorizer._connections`). Under gunicorn
        only.
    max_upload_mb : float
        Largest image file accepted (``SONOTRACE_MAX_UPLOAD_MB``).
    max_pixels : int
        Largest image accepted, in pixels (width x height, ``SONOTRACE_MAX_PIXELS``,
        default 25,000,000): the model server's variable and default, so an image
        the server would refuse is refused when it is opened. Set it to the
        server's value when the server's is changed.
    auto_segment : bool
        Segment an image as soon as it is opened (``SONOTRACE_AUTO_SEGMENT``).
    default_vertices : int
        Initial vertex budget per region (``SONOTRACE_DEFAULT_VERTICES``).
    worklist_dir : pathlib.Path or None
        Folder of images to open from the Annotate page's worklist
        (``SONOTRACE_WORKLIST_DIR``); None, the default, shows no worklist. A set
        value must be an existing folder.
    database_url : str or None
        SQLAlchemy URL of the index of saved annotations
        (``SONOTRACE_DATABASE_URL``), e.g. ``postgresql://USER:PASSWORD@HOST/DB``
        (opened with psycopg 3); None, the default, means a SQLite file in
        ``data_dir`` (see :attr:`index_url`).
    keep_uploads : bool
        Keep a copy of each uploaded image beside its saved versions, so the
        Saved page can open it again (``SONOTRACE_KEEP_UPLOADS``, default true).
        Off, only the outlines, masks and records are written.
    annotator_header : str or None
        Request header in which a sign-in proxy names the user, e.g.
        ``X-Forwarded-User`` (``SONOTRACE_ANNOTATOR_HEADER``). Set, a save
        records that name as the annotator and the Annotator field cannot be
        typed in; None, the default, trusts no header and the annotator types a
        name. Set it only behind a proxy that sets this header itself and drops
        any copy the browser sends.
    blinded_reading : bool
        Show each signed-in reader only their own saves (``SONOTRACE_BLINDED_READING``,
        default false; see :mod:`annotation_client._readers`). Needs
        ``annotator_header``: without a sign-in, readers cannot be told apart.
    reviewers : frozenset of str
        Users who see every save under blinded reading (``SONOTRACE_REVIEWERS``,
        names as the sign-in proxy sends them, separated by commas; default none).
    trusted_hosts : tuple of str
        Host names the client answers to, ports ignored (``SONOTRACE_TRUSTED_HOSTS``,
        separated by commas; default ``localhost,127.0.0.1,::1``). A request whose
        ``Host`` header names another is refused with 400: a web page that rebinds
        its own name to this machine's address sends that name. ``.example.org``
        takes the name and its subdomains, ``*`` any host (only behind a proxy that
        checks the Host itself). See :func:`trusted_hosts`.
    """

    model_server_url: str = "http://127.0.0.1:5000"
    data_dir: Path = Path("annotations")
    request_timeout: float = 30.0
    model_calls: int = 6
    read_timeout: int = 20
    max_upload_mb: float = 20.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    auto_segment: bool = True
    default_vertices: int = 32
    worklist_dir: Path | None = None
    database_url: str | None = None
    keep_uploads: bool = True
    annotator_header: str | None = None
    blinded_reading: bool = False
    reviewers: frozenset[str] = frozenset()
    trusted_hosts: tuple[str, ...] = LOOPBACK_HOSTS

    def __post_init__(self) -> None:
        # A string given directly (create_app(ClientConfig(trusted_hosts="a,b"))) would
        # otherwise be matched letter by letter.
        try:
            object.__setattr__(self, "trusted_hosts", trusted_hosts(self.trusted_hosts))
        except ValueError as exc:
            raise ValueError(f"{PREFIX}TRUSTED_HOSTS={self.trusted_hosts!r}: {exc}") from None
        # Built directly (create_app(ClientConfig(...))), the fields skip load()'s
        # parsing: a string of reviewers would make "Chair" a reviewer by substring.
        if not isinstance(self.blinded_reading, bool):
            raise TypeError("blinded_reading must be a bool")
        object.__setattr__(self, "reviewers", _names(self.reviewers))
        if self.blinded_reading and not self.annotator_header:
            raise ValueError(
                f"{PREFIX}BLINDED_READING needs {PREFIX}ANNOTATOR_HEADER: without a sign-in "
                "the client cannot tell one reader from another"
            )
        if self.worklist_dir is not None:
            worklist = Path(os.path.realpath(Path(self.worklist_dir).expanduser()))
            data = Path(os.path.realpath(Path(self.data_dir).expanduser()))
            if worklist.is_relative_to(data):
                raise ValueError(
                    f"{PREFIX}WORKLIST_DIR={self.worklist_dir} is "
                    + ("the data folder" if worklist == data else "inside the data folder")
                    + f" {PREFIX}DATA_DIR={self.data_dir}: the worklist would list every "
                    "reader's saved masks and kept uploads as images to open. Give the "
                    "worklist a folder of its own, outside the data folder"
                )
        if self.reviewers and not self.blinded_reading:
            raise ValueError(
                f"{PREFIX}REVIEWERS is set but {PREFIX}BLINDED_READING is not: without "
                "blinded reading everyone sees every save, so it would do nothing"
            )

    def check_data_dir(self) -> None:
        """Make :attr:`data_dir` if it is missing and check that files can be written in it.

        Called when the client starts, so a data folder that is a file, cannot be
        made or is read-only stops the start, rather than every save failing later.
        A probe file is made in the folder and removed.

        Raises
        ------
        ValueError
            Naming ``SONOTRACE_DATA_DIR``, the value and the reason.
        """
        path = Path(self.data_dir)
        try:
            if path.exists() and not path.is_dir():
                raise ValueError("it exists and is not a folder")
            # Owner only: the folder holds patients' masks and the index of notes, names
            # and paths, and the files in it are made with the process's umask (0644 by
            # default; python -m annotation_client sets 077). An existing folder keeps
            # the mode it was given: it may be shared with a backup group on purpose.
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            # A folder can exist and still refuse files (read-only mount, another
            # owner): only a write says whether saves will work.
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ValueError(
                f"{PREFIX}DATA_DIR={str(path)!r} is not a writable folder: {reason}"
            ) from None

    @property
    def index_url(self) -> str:
        """The database URL of the annotation index, the default filled in."""
        return self.database_url or default_url(self.data_dir)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def load(
        cls, config: Mapping | None = None, environ: Mapping[str, str] | None = None
    ) -> ClientConfig:
        """Defaults, overridden by ``SONOTRACE_*`` variables, overridden by ``config``.

        Parameters
        ----------
        config : mapping, optional
            Keys are field names in any case, with or without the ``SONOTRACE_``
            prefix (``"DATA_DIR"``, ``"data_dir"``, ``"SONOTRACE_DATA_DIR"``).
        environ : mapping, optional
            The environment; ``os.environ`` by default.

        Raises
        ------
        ValueError
            For an unknown key or a value that does not parse.
        """
        environ = os.environ if environ is None else environ
        names = {f.name for f in fields(cls)}
        values: dict = {}
        for name in names:
            raw = environ.get(PREFIX + name.upper())
            # Blank is unset, as for every SONOTRACE_* variable (a " " left in an env
            # file made a data folder named " " in the working directory).
            if raw is not None and raw.strip() != "":
                values[name] = raw
        for key, value in (config or {}).items():
            name = str(key).lower()
            if name.startswith(PREFIX.lower()):
                name = name[len(PREFIX) :]
            if name not in names:
                raise ValueError(f"unknown annotation client setting {key!r}")
            values[name] = value
        return replace(cls(), **{k: _parse(k, v) for k, v in values.items()})


#: What urlsplit leaves as a hostname that a connection can be made to: a DNS name's
#: labels, an IPv4 address, or (unbracketed by urlsplit) an IPv6 address, with an
#: optional zone. A space or another stray character would fail at every call instead.
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?"
                   r"|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?")


def _shown(name: str, value) -> str:
    """A refused value as an error message may show it: never a password."""
    if name == "model_server_url":
        text = str(value).strip()
        if "@" in text:
            # Whatever is wrong with the rest (no scheme, one slash, a broken IPv6
            # address), all before the last "@" may be a user name and password: not
            # parsed, which a malformed URL could fail or misread (audit 805 F2).
            head, _, host = text.rpartition("@")
            scheme, slashes, _ = head.partition("//")
            return repr(f"{scheme}{slashes}***@{host}" if slashes else f"***@{host}")
        return repr(text)
    if name != "database_url":
        return repr(value)
    try:
        return repr(make_url(str(value).strip()).render_as_string(hide_password=True))
    except Exception:  # not even a URL: it may still hold a secret
        return "(not shown)"


def _names(value) -> frozenset[str]:
    """User names, each stripped and checked as a sign-in proxy's name would be.

    Parameters
    ----------
    value : str, iterable of str or None
        Names separated by commas, or the names themselves; blanks are dropped.

    Returns
    -------
    frozenset of str

    Raises
    ------
    ValueError
        For a name that is not a string, holds control characters or is longer
        than the index's annotator column.
    """
    if value is None:
        return frozenset()
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = set()
    for part in parts:
        if not isinstance(part, str):
            raise ValueError("must be user names separated by commas")
        # A sign-in proxy never sends a comma in a name (signed_in_name refuses one),
        # so splitting on commas loses no name the client could match.
        name = _signin.checked_name(part, "a reviewer's name")
        if name:
            names.add(name)
    return frozenset(names)


def _whole(value, message: str) -> int:
    # int()'s own "invalid literal for int() with base 10" reads as a bug, not advice.
    try:
        return int(value)
    except ValueError:
        raise ValueError(message) from None


def _parse(name: str, value):
    try:
        if name == "model_server_url":
            value = str(value).strip()
            try:
                parts = urlsplit(value)
            except ValueError as exc:  # "Invalid IPv6 URL" alone named no setting
                raise ValueError(f"is not a URL ({exc})") from None
            if parts.scheme.lower() not in ("http", "https"):
                raise ValueError("must start with http:// or https://")
            # "http://" alone would be kept as "http:" and every call would fail later.
            if not parts.hostname:
                raise ValueError("must name a host, as in http://model-server:5000")
            if "@" in parts.netloc:
                # It would be shown in plain text by the client's /health, its start line
                # and the page's "cannot be reached" messages.
                raise ValueError("must not hold a user name or password (it would be "
                                 "shown by /health, in the log and on the page)")
            if parts.query or parts.fragment or "?" in value or "#" in value:
                # Every call would go to ".../?q=1#x/predict" (audit 804 F4).
                raise ValueError("must not hold a query (?) or fragment (#): the client adds "
                                 "/predict, /classify and /health to it")
            if not _HOST.fullmatch(parts.hostname):
                raise ValueError(f"names no valid host ({parts.hostname!r}): a host name, "
                                 "an IPv4 address or an IPv6 address in [brackets]")
            try:
                port = parts.port  # None when not given
            except ValueError:  # not a number, or past 65535
                port = 0
            if port == 0:
                raise ValueError("must have a port number from 1 to 65535 if any")
            return value.rstrip("/")
        if name == "data_dir":
            text = str(value)
            if text != text.strip():
                # "/srv/data " is another folder than /srv/data: an empty data folder,
                # and every saved annotation out of sight, without a word.
                raise ValueError("starts or ends with a space, which would name another "
                                 "folder than the one meant: remove it")
            return Path(value).expanduser()
        if name == "worklist_dir":
            if value is None or str(value).strip() == "":
                return None
            path = Path(value).expanduser()
            if not path.is_dir():
                raise ValueError("is not an existing folder")
            return path
        if name == "database_url":
            if value is None or str(value).strip() == "":
                return None
            return check_url(str(value))
        if name == "annotator_header":
            if value is None or str(value).strip() == "":
                return None
            text = str(value).strip()
            if not _HEADER_NAME.fullmatch(text):
                raise ValueError(
                    "must be an HTTP header name such as X-Forwarded-User "
                    "(letters, digits and - ! # $ % & ' * + . ^ ` | ~; no _ or spaces)"
                )
            if _NOT_A_USER_HEADER.fullmatch(text):
                raise ValueError(
                    "names a header that carries credentials or the request itself, not "
                    "the user's name; use the header in which the proxy names the user, "
                    "such as X-Forwarded-User"
                )
            return text
        if name in ("request_timeout", "max_upload_mb"):
            if isinstance(value, bool):
                raise ValueError("must be a number")
            try:
                number = float(value)
            except ValueError:
                raise ValueError("must be a number") from None
            low, high, unit = _RANGES[name]
            if not (math.isfinite(number) and low <= number <= high):
                raise ValueError(f"must be a number of {unit} from {low:g} to {high:g}")
            return number
        if name == "max_pixels":
            # An integer as the model server reads it (JSON): not 2.5e7, not true.
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("must be a whole number of pixels")
            number = _whole(value, "must be a whole number of pixels")  # not "2.5e7"
            if number <= 0:
                raise ValueError("must be positive")
            return check_max_pixels(number)  # the model server's bound too
        if name == "reviewers":
            return _names(value)
        if name == "trusted_hosts":
            if isinstance(value, str) and not value.strip():
                return LOOPBACK_HOSTS  # blank means unset, as for the other settings
            return trusted_hosts(value)
        if name in ("auto_segment", "keep_uploads", "blinded_reading"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("must be true or false")
        if name == "model_calls":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("must be a whole number from 1 to 256")
            number = _whole(value, "must be a whole number from 1 to 256")
            if not 1 <= number <= 256:  # the request threads' own bound
                raise ValueError("must be a whole number from 1 to 256")
            return number
        if name == "read_timeout":
            # Whole seconds, 1 to a day, as the model server takes SONOTRACE_READ_TIMEOUT.
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("must be a whole number of seconds")
            number = _whole(value, "must be a whole number of seconds from 1 to 86400")
            if not 1 <= number <= 86400:
                raise ValueError("must be a whole number of seconds from 1 to 86400")
            return number
        if name == "default_vertices":
            number = _whole(value, "must be a whole number")
            if not 8 <= number <= 128:  # the vertex-density slider's range
                raise ValueError("must be between 8 and 128")
            return number
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{PREFIX}{name.upper()}={_shown(name, value)}: {exc}") from None
    raise ValueError(f"unknown annotation client setting {name!r}")  # pragma: no cover
