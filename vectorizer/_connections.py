"""Slow and stalled clients, and what the error log says of them: both services' gunicorn workers.

A gunicorn worker reads a request with blocking reads on the client's socket. A client
that sends part of a request and goes quiet (a dropped Wi-Fi, a laptop lid closed in
the middle of an upload), or one that sends a byte a second, holds the sync worker or
gthread thread reading it: with no read timeout for as long as it likes (gthread), or,
with one, for as long as each byte comes within it, until gunicorn kills the worker at
its ``--timeout`` (sync: its models reloaded, a 500 in no log). Eight such connections
froze the annotation client; two took the model server down.

Here every read from a client is bounded, by one rule for both services
(:class:`GuardedSocket`):

- no read waits longer than the read timeout (``SONOTRACE_READ_TIMEOUT``, 20 s);
- after that long as a grace, a request must have kept up :data:`MIN_RATE` bytes a
  second on average since its first byte: by ``t`` seconds into it at least
  ``MIN_RATE * t`` bytes have come (Apache's ``mod_reqtimeout`` default rate,
  ``MinRate=500``). That is 4 kbit/s, some 250 times below a slow 1 Mbit/s link, which
  sends a 20 MB upload at 125 kB/s; a byte a second fails it at the end of the grace;
- the headers must be complete within :data:`HEADER_FACTOR` read timeouts (40 s; real
  headers are a few kB, which the rate rule alone lets run for the whole grace);
- under a sync worker, the whole request must be read within the worker timeout less
  the read timeout (100 s by default), so that the worker answers a request that would
  outlast ``--timeout`` itself, rather than being killed with it.

The clock starts at the first read of each request: on a kept-alive connection (gthread)
it starts again for the next request. A request too slow or stalled in its body is
answered 408 by the app (the read raises a ``TimeoutError``, :class:`RequestTooSlow`
when the rule rather than the read timeout ended it), and the connection is closed
after; one whose headers never completed is closed with one WARNING line in the log.
Either way the worker or thread takes the next request.

The workers take the read timeout from their app's config, ``READ_TIMEOUT``: each
service's app sets it from ``SONOTRACE_READ_TIMEOUT``.

:func:`quiet_client_errors`, on gunicorn's error log, turns the traceback of a timed-out
read into that one line, and keeps the text of a malformed request (a patient's name
in an unencoded query, say) out of gunicorn's "Invalid request" lines.

Only the services import this module (gunicorn is theirs, not the vectorizer's).
"""

from __future__ import annotations

import io
import logging
import re
import socket
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

#: Least average rate, in bytes a second, a request must keep up after the grace.
MIN_RATE = 500
#: Read timeouts within which a request's headers must be complete.
HEADER_FACTOR = 2


class RequestTooSlow(TimeoutError):
    """A request that did not keep up the pace :class:`GuardedSocket` asks of it.

    A ``TimeoutError``, so that whatever answers a read timeout (408, or closing the
    connection) answers it too; its message says what was too slow, without a byte of
    the request.
    """


class GuardedSocket(socket.socket):
    """A client's socket whose reads keep to the rule of this module.

    Made with :meth:`around` from the socket gunicorn accepted; gunicorn's parser reads
    the request through :meth:`recv`. Between reads the socket keeps the timeout it
    had (the read timeout from :meth:`around`, or what gunicorn set since), which is
    also its writes'.
    """

    __slots__ = ("_read_timeout", "_limit", "_started", "_last", "_received", "_request",
                 "_body_start")

    @classmethod
    def around(cls, sock: socket.socket, read_timeout: float,
               limit: float | None = None) -> GuardedSocket:
        """``sock``'s connection, as a guarded socket; ``sock`` is left detached.

        Parameters
        ----------
        sock : socket.socket
            An accepted connection.
        read_timeout : float
            Seconds: the longest wait for any read, and the grace before the rate counts.
        limit : float, optional
            Seconds within which a whole request must be read (None: no such limit).
        """
        guarded = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        guarded._read_timeout = read_timeout
        guarded._limit = limit
        guarded.settimeout(read_timeout)
        guarded.restart()
        return guarded

    def restart(self) -> None:
        """Start the clock again at the next read: a new request on this connection."""
        self._started = self._last = None
        self._received = 0
        self._request = None
        self._body_start = None

    def headers_done(self, request) -> None:
        """The request's headers are in; ``request`` (gunicorn's) is closed after its
        answer if the rest of it comes too slowly."""
        self._request = request
        # What the parser read past the headers waits in its unreader's buffer: the
        # body starts that many bytes before what has been received.
        ahead = getattr(getattr(request, "unreader", None), "buf", None)
        if isinstance(ahead, io.BytesIO):
            self._body_start = self._received - len(ahead.getvalue())

    @property
    def body_received(self) -> int | None:
        """Bytes received after the current request's headers (its body, and whatever a
        client sent after it); None before its headers are in or when not known.

        The app counts the body's bytes as it reads them; a read that a stall ends
        (408) raises, and the bytes gunicorn had taken for it were not counted
        (audit 802 F8: ``bytes=0`` logged after 1000 bytes came).
        """
        if self._body_start is None:
            return None
        return self._received - self._body_start

    def setblocking(self, flag: bool) -> None:
        # gunicorn's gthread makes a connection blocking (no timeout) before each request
        # it reads and answers: its writes then had no limit, and a browser that stopped
        # reading a large answer held the thread for as long as it kept the connection.
        if flag:
            self.settimeout(self._read_timeout)
        else:
            super().setblocking(False)

    def sendall(self, data, flags: int = 0) -> None:
        """Send all of ``data``; each :meth:`send` waits at most the socket's timeout.

        ``socket.sendall`` takes its timeout for the whole answer: a 50 MB answer to a
        browser on a slow link would be cut after the read timeout. Here only a client
        that takes nothing for a whole read timeout is given up on (``TimeoutError``).
        """
        if self.gettimeout() == 0.0:
            super().sendall(data, flags)
            return
        with memoryview(data) as view, view.cast("B") as left:
            sent = 0
            while sent < len(left):
                sent += self.send(left[sent:], flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self._bounded(super().recv, bufsize, flags)
        self._count(len(data))
        return data

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        count = self._bounded(super().recv_into, buffer, nbytes, flags)
        self._count(count)
        return count

    def _count(self, size: int) -> None:
        if size:
            self._received += size
            self._last = time.monotonic()

    def _bounded(self, read, *args):
        previous = self.gettimeout()
        if previous == 0.0:
            return read(*args)  # a non-blocking read does not wait
        now = time.monotonic()
        if self._started is None:
            self._started = self._last = now
        remaining = self._deadline() - now
        if remaining <= 0:
            raise self._too_slow(now)
        # A shorter timeout of gunicorn's own (its bounded drain of an unread body) holds.
        wait = min(self._read_timeout, remaining,
                   previous if previous is not None else self._read_timeout)
        self.settimeout(wait)
        try:
            return read(*args)
        except TimeoutError:
            now = time.monotonic()
            # Silent for a whole read timeout is a stall, said as one, whichever limit
            # ended it (the two coincide for a client silent since its first bytes).
            if wait == remaining and now - self._last < self._read_timeout - 0.05:
                raise self._too_slow(now) from None
            raise
        finally:
            self.settimeout(previous)

    def _deadline(self) -> float:
        allowed = max(self._read_timeout, self._received / MIN_RATE)
        if self._request is None:
            allowed = min(allowed, HEADER_FACTOR * self._read_timeout)
        if self._limit is not None:
            allowed = min(allowed, self._limit)
        return self._started + allowed

    def _too_slow(self, now: float) -> RequestTooSlow:
        if self._request is not None:
            # Its answer (the app's 408) closes the connection: the rest of the body,
            # still on its way, cannot be told from a next request.
            self._request.force_close()
        elapsed = now - self._started
        what = "the request" if self._request is not None else "the request's headers"
        got = f"{self._received} bytes in {elapsed:.1f} s"
        if self._limit is not None and elapsed >= self._limit - 0.01:
            return RequestTooSlow(f"{what} took longer than {self._limit:g} s to arrive ({got})")
        if self._request is None and elapsed >= HEADER_FACTOR * self._read_timeout - 0.01:
            return RequestTooSlow(f"{what} did not end within "
                                  f"{HEADER_FACTOR * self._read_timeout:g} s ({got})")
        return RequestTooSlow(f"{what} came too slowly: {got}, under {MIN_RATE} bytes/s "
                              f"after the first {self._read_timeout:g} s")


#: gunicorn's line for a request it cannot parse, which quotes the request's own text.
_INVALID_REQUEST = re.compile(r"Invalid request from ip=(?P<ip>.*?): (?P<error>.*)", re.DOTALL)


def _reason_only(error: str) -> str:
    """gunicorn's parse error without the request's text it quotes (``repr``-quoted)."""
    reason = re.split(r"""['"]""", error, maxsplit=1)[0].rstrip(": ")[:200]
    if len(reason) < len(error):
        reason += f" ({len(error) - len(reason)} characters of the request not logged)"
    return reason


def quiet_client_errors(record: logging.LogRecord) -> bool:
    """A filter for gunicorn's error log: what clients did, in one line and no more.

    - A read that timed out (a client that went silent, or :class:`RequestTooSlow`) is
      logged by gunicorn at ERROR with a traceback; it is the client's doing, worth one
      WARNING line.
    - "Invalid request from ip=...: Invalid HTTP Version: 'Doe&mrn=12345 HTTP/1.1'"
      quotes up to 4 kB of the request line or a header: a query with a patient's name
      in it, typed by hand without encoding its spaces. The reason is kept, the
      quoted text is not.
    - "Error handling request GET /?open=..." (a 500) loses the query.

    Returns True: the record is changed, never dropped.
    """
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, RequestTooSlow):
        _one_line(record, f"closed a connection: {exc}")
    elif isinstance(exc, TimeoutError):
        _one_line(record, "closed a connection whose request did not arrive within the read "
                          "timeout")
    elif isinstance(record.msg, str) and record.msg.startswith("Invalid request from ip="):
        match = _INVALID_REQUEST.match(record.getMessage())
        if match:
            record.msg = f"Invalid request from ip={match['ip']}: {_reason_only(match['error'])}"
            record.args = ()
    elif (isinstance(record.msg, str) and record.msg.startswith("Error handling request")
          and isinstance(record.args, tuple)):
        record.args = tuple(
            arg.split("?", 1)[0] + " (query not logged)" if isinstance(arg, str) and "?" in arg
            else arg
            for arg in record.args
        )
    return True


def _one_line(record: logging.LogRecord, message: str) -> None:
    record.msg, record.args, record.exc_info, record.exc_text = message, (), None, None
    record.levelno, record.levelname = logging.WARNING, "WARNING"


class _Guarded:
    """What both workers add: the read timeout from the app, the log filter."""

    read_timeout: float

    def init_process(self):
        logging.getLogger("gunicorn.error").addFilter(quiet_client_errors)
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        # The app's own setting, checked by it; a missing one fails the worker's boot.
        self.read_timeout = self.wsgi.config["READ_TIMEOUT"]


class GuardedSyncWorker(_Guarded, SyncWorker):
    """gunicorn's sync worker, reading each request by the rule of this module.

    A sync worker is killed by the arbiter at ``--timeout`` while it serves one
    request, so a request must also be read within that less the read timeout: the
    worker answers 408 itself, and stays.
    """

    def accept(self, listener):
        client, addr = listener.accept()
        util.close_on_exec(client)
        limit = max(self.read_timeout, self.cfg.timeout - self.read_timeout)
        self.handle(listener, GuardedSocket.around(client, self.read_timeout, limit), addr)

    def handle_request(self, listener, req, client, addr):
        if isinstance(client, GuardedSocket):
            client.headers_done(req)
        return super().handle_request(listener, req, client, addr)


class GuardedThreadWorker(_Guarded, ThreadWorker):
    """gunicorn's gthread worker, reading each request by the rule of this module.

    Its threads block reading a request like a sync worker; the main loop keeps the
    worker alive meanwhile, so only the rule ends a slow request. Kept-alive
    connections wait in the main loop, not in a thread, as gunicorn has them.
    """

    def handle(self, conn):
        # Each call reads one request (or finds none yet and hands the connection back).
        if conn.parser is None and not isinstance(conn.sock, GuardedSocket):
            conn.sock = GuardedSocket.around(conn.sock, self.read_timeout)
        if isinstance(conn.sock, GuardedSocket):
            conn.sock.restart()
        return super().handle(conn)

    def handle_request(self, req, conn):
        if isinstance(conn.sock, GuardedSocket):
            conn.sock.headers_done(req)
        return super().handle_request(req, conn)


#: gunicorn's ``worker_class`` of each.
SYNC_WORKER = f"{__name__}.{GuardedSyncWorker.__name__}"
THREAD_WORKER = f"{__name__}.{GuardedThreadWorker.__name__}"
