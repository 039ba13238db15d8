"""Settings both services read alike: launcher options and ``SONOTRACE_TRUSTED_HOSTS``.

``python -m annotation_client`` and ``python -m model_server`` check their serving
options (host, port, counts, log level) with the same rules and words, and both
answer only to the hosts of ``SONOTRACE_TRUSTED_HOSTS``. The rules live here, in
plain Python, because the services never import each other and this is the one
package both import (the shared upload reader lives here for the same reason); each
keeps its own framework glue (argparse parser, gunicorn options, Flask hook) at home.

A check takes the text of an option or variable and returns its value, or raises
``ValueError`` with the reason only: the caller names the option or variable.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._imagerules import MAX_IMAGE_SIDE

DEFAULT_HOST = "127.0.0.1"
#: Bind addresses meaning "every interface": no name a browser or client would use.
WILDCARDS = ("0.0.0.0", "::", "[::]")
#: The names this machine's own browser and clients use: the default trusted hosts.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: Seconds gunicorn gives both services' requests in progress to finish after a stop
#: (SIGTERM) before it kills its workers (its ``graceful_timeout``).
GRACEFUL_TIMEOUT_S = 30
#: Seconds whoever stops a service waits before SIGKILL (the launcher's ``--grace``,
#: docker-compose's ``stop_grace_period``): just past gunicorn's own grace, so a request
#: in progress (a large /predict) is finished, or cut by gunicorn, never killed midway.
STOP_GRACE_S = GRACEFUL_TIMEOUT_S + 5

#: A Host header: a name or IPv4 address, or an IPv6 literal in brackets; then a port.
_HOST_HEADER = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_HOST_NAME = re.compile(r"\.?[a-z0-9-]+(\.[a-z0-9-]+)*\.?")


@dataclass(frozen=True)
class ServingOptions:
    """What both launchers resolve: the command line, else the environment, else defaults.

    Each service's ``Options`` adds its own (the client's ``dev``, the server's
    ``timeout`` and ``model_threads``).

    Attributes
    ----------
    host : str
        The address to bind (:func:`parse_host`).
    port : int
        1 to 65535.
    workers : int
        gunicorn worker processes, at least 1.
    threads : int
        Request threads per worker, at least 1.
    log_level : str
        One of :data:`LOG_LEVELS`.
    """

    host: str
    port: int
    workers: int
    threads: int
    log_level: str


def parse_host(text: str) -> str:
    """The address to bind, ``text`` without surrounding blanks.

    Raises
    ------
    ValueError
        For an empty or blank ``text``, or one with a port (``10.0.0.5:8050``):
        gunicorn would retry it for seconds as a name it cannot find.
    """
    text = text.strip()
    if not text:
        # gunicorn takes an empty host for every interface: patients' images served on
        # the network, without a sign-in, by accident.
        raise ValueError(
            f"must not be empty: {DEFAULT_HOST} serves this machine only, 0.0.0.0 every network"
        )
    bracketed = text.startswith("[") and text.endswith("]")
    bare = text[1:-1] if bracketed else text
    if (":" in text or bracketed) and not _is_ipv6(bare):
        raise ValueError(
            "must be an address or name without a port (the port is a setting of its own)"
            + (", and brackets only round an IPv6 address" if bracketed else "")
        )
    return text


def parse_whole(text: str) -> int:
    """The whole number ``text`` states.

    Raises
    ------
    ValueError
        When ``text`` is not a whole number.
    """
    try:
        return int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None


def parse_port(text: str) -> int:
    """The TCP port ``text`` states, 1 to 65535.

    Raises
    ------
    ValueError
        When ``text`` is not a whole number in that range.
    """
    number = parse_whole(text)
    if not 1 <= number <= 65535:
        # Not 0 (any free port): the browser, the client, the healthcheck and the proxy
        # must know it.
        raise ValueError("must be a port number from 1 to 65535")
    return number


def parse_at_least_one(text: str) -> int:
    """The whole number ``text`` states, at least 1 (workers, threads, seconds).

    Raises
    ------
    ValueError
        When ``text`` is not a whole number of at least 1.
    """
    number = parse_whole(text)
    if number < 1:
        # Not raised to 1 quietly: 0 is more likely a slip than a wish for one.
        raise ValueError("must be a whole number of at least 1")
    return number


#: Most request threads per worker either service takes (``--threads``). gunicorn
#: starts a thread per open connection up to this many, each with its own stack and
#: decoded image, so 100000 for 10 would let a burst of connections exhaust memory;
#: past gunicorn's 1000 connections per worker more threads could never be used.
MAX_REQUEST_THREADS = 256


def parse_request_threads(text: str) -> int:
    """The request threads per worker ``text`` states, 1 to :data:`MAX_REQUEST_THREADS`.

    Raises
    ------
    ValueError
        When ``text`` is not a whole number in that range.
    """
    number = parse_at_least_one(text)
    if number > MAX_REQUEST_THREADS:
        raise ValueError(f"must be a whole number from 1 to {MAX_REQUEST_THREADS}")
    return number


#: The largest ``SONOTRACE_MAX_PIXELS`` either service takes: no image over
#: :data:`~vectorizer.MAX_IMAGE_SIDE` pixels a side is read, whatever the pixel limit.
LARGEST_MAX_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE


def check_max_pixels(number: int) -> int:
    """``number``, a pixel limit of at least 1, if it is at most :data:`LARGEST_MAX_PIXELS`.

    Raises
    ------
    ValueError
        Above it (the reason only): 10**10, set to mean "no pixel limit", limits no
        image more than 8192 x 8192 does, and used to raise the DICOM deflate-bomb
        guard with it (40 GB inflated from a 40 MB file).
    """
    if number > LARGEST_MAX_PIXELS:
        raise ValueError(
            f"must be at most {LARGEST_MAX_PIXELS} ({MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE}): no "
            f"image over {MAX_IMAGE_SIDE} pixels a side is read, whatever this says"
        )
    return number


def parse_log_level(text: str) -> str:
    """The log level ``text`` names, in lower case: one of :data:`LOG_LEVELS`.

    Raises
    ------
    ValueError
        For any other word.
    """
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def argument(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """``check`` as an argparse type: its message, not argparse's "invalid value".

    Parameters
    ----------
    check : callable
        One of the ``parse_*`` checks, or any that raises ``ValueError`` with a reason.

    Returns
    -------
    callable
        Raising ``argparse.ArgumentTypeError``: ``"<reason>, not '<text>'"``.
    """

    def convert(text: str):
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, not {text!r}") from None

    convert.__name__ = check.__name__.removeprefix("parse_").lstrip("_")
    return convert


def checked(name: str, text: str, check: Callable[[str], Any]) -> Any:
    """``check(text)``, its refusal naming the variable ``name`` and its value.

    Raises
    ------
    ValueError
        ``"NAME='text': reason"``.
    """
    try:
        return check(text)
    except ValueError as exc:
        raise ValueError(f"{name}={text!r}: {exc}") from None


def from_env(name: str, check: Callable[[str], Any], default: Any, environ: Mapping) -> Any:
    """``check`` of the variable ``name``; ``default`` when it is unset or blank.

    A variable set to an empty value means its default, as for the apps' own settings.

    Raises
    ------
    ValueError
        Naming the variable and its value.
    """
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    return checked(name, text, check)


def refuse(exc: Exception) -> int:
    """Report a refused setting in one line on stderr, ``error: ...``; the exit status, 2."""
    # One line: a traceback (one per worker, under gunicorn) would bury the setting to
    # fix, and none of it is a bug.
    print(f"error: {exc}", file=sys.stderr)
    return 2


def trusted_hosts(value) -> tuple[str, ...]:
    """The host names of ``value``, normalized, for :func:`host_is_trusted`.

    Parameters
    ----------
    value : str or iterable of str
        Names separated by commas (or the names): ``localhost``, ``10.0.0.5``,
        ``::1`` or ``[::1]``, ``.example.org`` (the name and every subdomain), or
        ``*`` (any host: only behind a proxy that checks the Host itself).

    Returns
    -------
    tuple of str
        :data:`LOOPBACK_HOSTS` first, then the names of ``value``: lower case,
        without brackets or a trailing dot, each once. The loopback names are
        always trusted: no page can make a browser send them by rebinding its own
        name (the browser sends the page's name), and health checks, the launcher
        and a client on the same machine reach a service by them, so a list
        written for the network's names must not lock those out.

    Raises
    ------
    ValueError
        For an empty list, or an entry with a port, a path or a scheme (the
        reason only: the caller names the setting).

    Examples
    --------
    >>> trusted_hosts("LocalHost, [::1], sonotrace.example.org.")
    ('localhost', '127.0.0.1', '::1', 'sonotrace.example.org')
    """
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
    except TypeError:  # None, a number
        raise ValueError("must be host names separated by commas") from None
    hosts = []
    for part in parts:
        if not isinstance(part, str):
            raise ValueError("must be host names separated by commas")
        host = part.strip().lower()
        if not host:
            continue
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if host == "*":
            hosts.append(host)
        elif _is_ipv6(host, zone=False):
            hosts.append(_canonical(host))
        elif _HOST_NAME.fullmatch(host):
            hosts.append(host.rstrip("."))
        else:
            raise ValueError(
                f"{part.strip()!r} is not a host name (give names such as "
                "localhost or sonotrace.example.org, without a scheme or port, or * for any)"
            )
    if not hosts:
        raise ValueError("must name at least one host (or * for any)")
    return tuple(dict.fromkeys((*LOOPBACK_HOSTS, *hosts)))


def _is_ipv6(text: str, *, zone: bool = True) -> bool:
    """Whether ``text`` is an IPv6 address (``::1``, ``fe80::1``), not an IPv4 address
    or a name with a port (``10.0.0.5:8050``), which only a look at the colons confuses.
    Without ``zone``, one with a zone (``fe80::1%eth0``) is not: no Host header names one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv6Address) and (zone or address.scope_id is None)


def _canonical(host: str) -> str:
    """An IPv6 address in its one short spelling (``2001:db8:0::1`` is ``2001:db8::1``),
    so that a trusted address matches a Host header however either spells it."""
    try:
        return ipaddress.IPv6Address(host).compressed
    except ValueError:
        return host


def split_host(header: str | None) -> tuple[str, int | None] | None:
    """The host (lower case, without brackets) and port of a ``Host`` header.

    Returns
    -------
    tuple or None
        ``(host, port)``, the port None when the header has none; None when
        ``header`` is missing or is not a host with an optional port.

    Examples
    --------
    >>> split_host("[::1]:8050")
    ('::1', 8050)
    """
    match = _HOST_HEADER.fullmatch(header or "")
    if match is None:
        return None
    host = match.group("host").lower().strip("[]").rstrip(".")
    port = header[match.end("host") + 1 :]
    return host, int(port) if port else None


def same_origin(origin: str, host_header: str | None) -> bool:
    """Whether a request's ``Origin`` is the site its (trusted) ``Host`` names.

    Host names must be equal; ports too when the Host has one. A Host without a
    port is what a proxy sends that passes nginx's ``$host`` (which drops any port,
    8443 as well as 443), so the Origin's port is not compared then: refusing it
    would leave the page blank behind such a proxy.
    """
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    host = split_host(host_header)
    if parts.scheme not in ("http", "https") or not parts.hostname or host is None:
        return False
    if parts.hostname.lower().rstrip(".") != host[0]:
        return False
    if host[1] is None:
        return True
    return (origin_port or (443 if parts.scheme == "https" else 80)) == host[1]


def cross_site(headers) -> str | None:
    """Why a state-changing request with these headers comes from another site, or None.

    Browsers send ``Origin`` with a page's POSTs and ``Sec-Fetch-Site`` with every
    request; a request without them (curl, the tests) is not a browser's and no
    page made it.
    """
    if headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return "it comes from another site (Sec-Fetch-Site: cross-site)"
    origin = headers.get("Origin")
    if origin is not None and not same_origin(origin, headers.get("Host")):
        # A reverse proxy that sends its own Host (nginx's default proxy_pass) makes
        # every page's callbacks look cross-origin: the page goes blank, so say why.
        return (f"it comes from another origin ({origin[:200]!r}) than the host it was "
                f"sent to ({str(headers.get('Host'))[:200]!r}); behind a reverse proxy, "
                "pass the browser's Host header through (nginx: proxy_set_header Host $host)")
    return None


def host_is_trusted(header: str | None, trusted: tuple[str, ...]) -> bool:
    """Whether a request's ``Host`` header names one of ``trusted`` (its port ignored).

    A request without a Host header, or with one that is not a host and an optional
    port, is not trusted.

    Parameters
    ----------
    header : str or None
        The request's ``Host`` header.
    trusted : tuple of str
        What :func:`trusted_hosts` returns.

    Examples
    --------
    >>> host_is_trusted("Scan.Example.org:443", (".example.org",))
    True
    """
    if "*" in trusted:
        return True
    parts = split_host(header)
    if parts is None:
        return False
    host = _canonical(parts[0])
    for name in trusted:
        if host == name or (name.startswith(".") and (host.endswith(name) or host == name[1:])):
            return True
    return False


def untrusted_host_hint(header: str | None) -> str:
    """What a refusal of ``header`` says to do: add the host, as it may be listed.

    The Host header carries a port, and ``SONOTRACE_TRUSTED_HOSTS`` refuses an entry
    with one, so the name to add is said without it.

    Examples
    --------
    >>> untrusted_host_hint("192.0.2.2:8075")
    "; to allow it, add '192.0.2.2' (without a port) to SONOTRACE_TRUSTED_HOSTS"
    """
    parts = split_host(header)
    if parts is None:
        return "; reach it by a name in SONOTRACE_TRUSTED_HOSTS"
    name = parts[0][:200]  # cut as the refusal cuts the header it quotes
    return f"; to allow it, add {name!r} (without a port) to SONOTRACE_TRUSTED_HOSTS"


class AddressRefused(ValueError):
    """The address to serve on cannot be listened on; the message names the setting."""


def check_listen(host: str, port: int, *, host_setting: str, port_setting: str) -> None:
    """Bind ``host``:``port`` as gunicorn will, and let it go again at once.

    gunicorn tries an address it cannot bind five times, a second apart, then exits
    with status 1 and "Can't connect": a host that is not this machine's, a name that
    does not resolve, a port in use. Tried here first, each is one line naming the
    setting to fix. The socket is made as gunicorn makes it (IPv6 for an address with
    a colon, ``SO_REUSEADDR``, so a port whose last connections are still closing
    passes here as it does there) and closed before gunicorn binds; it never listens.

    Parameters
    ----------
    host : str
        An address or a name, IPv6 with or without brackets.
    port : int
    host_setting, port_setting : str
        How the message names each, e.g. ``"(--host, SONOTRACE_HOST)"``.

    Raises
    ------
    AddressRefused
        Naming the setting (host or port) and the reason.
    """
    import errno
    import socket

    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    shown = bind_address(host, port)
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bare, port))
    except socket.gaierror:
        raise AddressRefused(f"cannot listen on {shown}: no address is known for the host "
                             f"name {bare!r} {host_setting}") from None
    except (UnicodeError, TypeError):  # a name the resolver cannot even encode
        raise AddressRefused(f"cannot listen on {shown}: {bare!r} is not a host name "
                             f"{host_setting}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = f"port {port} is in use by another program {port_setting}"
        elif exc.errno == errno.EACCES:
            reason = (f"this user may not listen on port {port} (ports below 1024 need "
                      f"privileges) {port_setting}")
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = f"{bare} is not an address of this machine {host_setting}"
        else:
            reason = f"{exc.strerror or exc} {host_setting}"
        raise AddressRefused(f"cannot listen on {shown}: {reason}") from None


def bind_address(host: str, port: int) -> str:
    """gunicorn's ``bind`` for ``host`` and ``port``: an IPv6 address in brackets.

    Examples
    --------
    >>> bind_address("127.0.0.1", 8050), bind_address("::1", 5000)
    ('127.0.0.1:8050', '[::1]:5000')
    """
    # Unbracketed, gunicorn reads "::1:5000" as a host with no port.
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{host}:{port}"


def with_bind_address(trusted: tuple[str, ...], host: str) -> tuple[str, ...]:
    """``trusted`` (SONOTRACE_TRUSTED_HOSTS), and the address a service binds, if specific.

    A browser that opens http://10.0.0.5:8050 sends ``Host: 10.0.0.5:8050``, and no
    page can make a browser send an address as Host by rebinding a name, so the
    bind address is trusted: ``--host 10.0.0.5`` (``make run HOST=...``) works
    without naming it twice. A wildcard (0.0.0.0) names no host; the operator lists
    the names browsers and clients use.

    Examples
    --------
    >>> with_bind_address(trusted_hosts("localhost"), "10.0.0.5")
    ('localhost', '127.0.0.1', '::1', '10.0.0.5')
    >>> with_bind_address(trusted_hosts("localhost"), "0.0.0.0")
    ('localhost', '127.0.0.1', '::1')
    """
    if host in WILDCARDS or "*" in trusted:
        return trusted
    try:
        return tuple(dict.fromkeys(trusted + trusted_hosts(host)))
    except ValueError:  # not a plain name or address; gunicorn will say what it makes of it
        return trusted


def note_wildcard(log: logging.Logger, host: str, trusted: tuple[str, ...], who: str) -> None:
    """Say, once at start, that a service bound to every network answers only loopback.

    Not refused, and not a warning: the Dockerfiles bind 0.0.0.0 and compose publishes
    on the host's loopback, where that is right. Started so on a machine that others
    should reach, the operator learns here why they get 400.

    Parameters
    ----------
    log : logging.Logger
        The service's logger.
    host : str
        The bind address.
    trusted : tuple of str
        The trusted host names, after :func:`with_bind_address`.
    who : str
        Who opens it by name: ``"browsers"``, ``"clients"``.
    """
    if host in WILDCARDS and set(trusted) <= set(LOOPBACK_HOSTS):
        log.info(
            "listening on every network, answering only requests that name %s (400 for "
            "others), as in a container published on loopback; for other machines, add "
            "the names %s use to SONOTRACE_TRUSTED_HOSTS",
            ", ".join(trusted), who,
        )


def raw_error_answer(status: int, reason: str, content_type: str, body: bytes,
                     headers: Mapping[str, str]) -> bytes:
    """A whole HTTP/1.1 answer, head and body, that closes the connection.

    What the services write themselves where gunicorn would send its own error page
    (a request line or headers over its limits, before the app sees the request), so
    that it carries their ``headers`` (the security headers of every other answer).
    """
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode("latin-1") + body
