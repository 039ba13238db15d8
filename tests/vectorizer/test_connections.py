"""vectorizer._connections: the rule both services' workers read requests by, and the
error-log filter, on real sockets (a connected pair) with short timeouts."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time

import pytest

from vectorizer._connections import (
    MIN_RATE,
    GuardedSocket,
    RequestTooSlow,
    quiet_client_errors,
)


class _Request:
    """What the guard needs of gunicorn's request: force_close."""

    closed = False

    def force_close(self):
        self.closed = True


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    guarded = GuardedSocket.around(ours, read_timeout=0.5)
    yield guarded, theirs
    guarded.close()
    theirs.close()


def _send_every(sock: socket.socket, chunk: bytes, interval: float, seconds: float):
    def run():
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                sock.sendall(chunk)
                time.sleep(interval)
        except OSError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read_until_error(sock: GuardedSocket, seconds: float) -> tuple[int, float, BaseException]:
    started, got = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        try:
            got += len(sock.recv(65536))
        except OSError as exc:
            return got, time.monotonic() - started, exc
    raise AssertionError(f"still reading after {seconds} s ({got} bytes)")


def test_a_silent_client_times_out_after_the_read_timeout(pair):
    guarded, theirs = pair
    theirs.sendall(b"GET / HTTP/1.1\r\n")
    got, took, exc = _read_until_error(guarded, 5)
    assert got == 16
    assert type(exc) is TimeoutError  # the plain read timeout, not the rate
    assert 0.4 < took < 1.5


def test_a_trickle_that_beats_every_read_timeout_ends_after_the_grace(pair):
    # A byte every 0.1 s never lets a 0.5 s read time out: it held a worker until the
    # arbiter killed it (sync) or for ever (gthread).
    guarded, theirs = pair
    _send_every(theirs, b"x", 0.1, 10)
    got, took, exc = _read_until_error(guarded, 5)
    assert isinstance(exc, RequestTooSlow)
    assert 0.4 < took < 1.5
    assert re.fullmatch(rf"the request's headers came too slowly: {got} bytes in 0\.[56] s, "
                        rf"under {MIN_RATE} bytes/s after the first 0\.5 s", str(exc)), exc


def test_a_body_that_comes_too_slowly_closes_the_request_after_its_answer(pair):
    guarded, theirs = pair
    request = _Request()
    guarded.headers_done(request)
    _send_every(theirs, b"x" * 10, 0.1, 10)  # 100 bytes/s
    _, _, exc = _read_until_error(guarded, 5)
    assert isinstance(exc, RequestTooSlow)
    assert str(exc).startswith("the request came too slowly: ")
    assert request.closed


def test_a_steady_upload_above_the_rate_is_read_whole_past_the_grace(pair):
    guarded, theirs = pair
    guarded.headers_done(_Request())

    def send():
        for _ in range(40):
            theirs.sendall(b"x" * 400)  # 8 kB/s, 16 times the least rate
            time.sleep(0.05)

    threading.Thread(target=send, daemon=True).start()
    got, started = 0, time.monotonic()
    while got < 40 * 400:
        got += len(guarded.recv(65536))
    assert time.monotonic() - started > 1.5  # three times the grace


def test_headers_must_end_within_two_read_timeouts_however_fast(pair):
    guarded, theirs = pair
    _send_every(theirs, b"X-a: b\r\n" * 100, 0.05, 10)  # 16 kB/s of headers that never end
    got, took, exc = _read_until_error(guarded, 5)
    assert isinstance(exc, RequestTooSlow)
    assert 0.9 < took < 1.6
    assert str(exc).startswith("the request's headers did not end within 1 s (")


def test_the_clock_starts_again_for_the_next_request(pair):
    guarded, theirs = pair
    guarded.headers_done(_Request())
    theirs.sendall(b"x")
    assert guarded.recv(10) == b"x"
    time.sleep(0.6)  # past the grace at a byte a request: too slow, were it one request
    guarded.restart()
    theirs.sendall(b"y")
    assert guarded.recv(10) == b"y"


def test_a_limit_ends_even_a_fast_request():
    ours, theirs = socket.socketpair()
    guarded = GuardedSocket.around(ours, read_timeout=0.3, limit=0.6)
    with guarded, theirs:
        guarded.headers_done(_Request())
        _send_every(theirs, b"x" * 1000, 0.02, 10)
        _, took, exc = _read_until_error(guarded, 5)
    assert isinstance(exc, RequestTooSlow)
    assert 0.5 < took < 1.2
    assert str(exc).startswith("the request took longer than 0.6 s to arrive (")


def test_writes_and_gunicorns_own_timeouts_are_left_alone(pair):
    guarded, theirs = pair
    assert guarded.gettimeout() == 0.5
    guarded.settimeout(0.1)  # gunicorn's bounded drain of an unread body
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        guarded.recv(10)
    assert type(raised.value) is TimeoutError
    assert time.monotonic() - started < 0.4
    assert guarded.gettimeout() == 0.1


def _record(msg, args=(), exc=None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_log_says_a_slow_or_silent_client_in_one_warning_line():
    for exc, said in (
        (RequestTooSlow("the request came too slowly: 9 bytes in 20 s, under 500 bytes/s"),
         "closed a connection: the request came too slowly: 9 bytes in 20 s, under 500 "
         "bytes/s"),
        (TimeoutError("timed out"),
         "closed a connection whose request did not arrive within the read timeout"),
    ):
        record = _record("Socket error processing request.", exc=exc)
        assert quiet_client_errors(record)
        assert (record.getMessage(), record.levelname, record.exc_info) == (said, "WARNING", None)


@pytest.mark.parametrize(("error", "kept"), [
    ("Invalid HTTP Version: 'Doe&mrn=12345 HTTP/1.1'", "Invalid HTTP Version"),
    ("Invalid HTTP request line: '\\x16\\x03\\x01 Doe'", "Invalid HTTP request line"),
    ('Invalid HTTP Header: "Jane Doe\'s"', "Invalid HTTP Header"),
])
def test_an_invalid_request_is_logged_without_the_text_it_quotes(error, kept):
    # gunicorn's own line quotes up to 4 kB of the request: a patient's name in a query
    # typed with a space.
    record = _record(f"Invalid request from ip=::1: {error}")
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    assert quiet_client_errors(record)
    message = record.getMessage()
    assert message == (f"Invalid request from ip=::1: {kept} ({len(error) - len(kept)} "
                       "characters of the request not logged)")
    assert "Doe" not in message


def test_a_reason_that_quotes_nothing_is_kept_whole():
    record = _record("Invalid request from ip=10.0.0.9: Request Line is too large (6008 > 4094)")
    quiet_client_errors(record)
    assert record.getMessage() == (
        "Invalid request from ip=10.0.0.9: Request Line is too large (6008 > 4094)")


def test_a_failed_request_is_logged_without_its_query():
    record = _record("Error handling request %s %s", ("GET", "/?open=Doe Jane/1.png"))
    quiet_client_errors(record)
    assert record.getMessage() == "Error handling request GET / (query not logged)"


def _big_answer_to(reader_pause: float | None, chunk: int = 1 << 20):
    """Send 32 MB through a guarded socket made blocking as gthread makes it, to a peer
    that reads ``chunk`` bytes every ``reader_pause`` seconds (None: never reads)."""
    ours, theirs = socket.socketpair()
    guarded = GuardedSocket.around(ours, read_timeout=0.5)
    guarded.setblocking(True)  # gthread does this before each request it serves
    stop = threading.Event()

    def read():
        theirs.settimeout(5)
        while not stop.is_set():
            try:
                if not theirs.recv(chunk):
                    return
            except OSError:
                return
            time.sleep(reader_pause)

    if reader_pause is not None:
        threading.Thread(target=read, daemon=True).start()
    else:
        # Without a limit the send would wait for ever: the peer gives up after 5 s.
        def give_up():
            with contextlib.suppress(OSError):  # closed already, once the send gave up
                theirs.shutdown(socket.SHUT_RDWR)

        threading.Timer(5, give_up).start()
    started = time.monotonic()
    try:
        guarded.sendall(b"x" * (32 << 20))
        outcome = None
    except OSError as exc:
        outcome = exc
    stop.set()
    guarded.close()
    theirs.close()
    return outcome, time.monotonic() - started


def test_a_client_that_reads_nothing_of_a_large_answer_is_given_up_on():
    # A browser that stopped reading held a gthread thread for as long as it kept the
    # connection open: the writes had no timeout at all.
    outcome, seconds = _big_answer_to(None)
    assert isinstance(outcome, TimeoutError)
    assert seconds < 3


def test_a_large_answer_read_slowly_but_steadily_is_sent_whole():
    # 32 MB at 1 MB every 0.1 s takes longer than the read timeout in all: each send
    # waits for progress, not the whole answer for the timeout.
    outcome, seconds = _big_answer_to(0.1)
    assert outcome is None
    assert seconds > 0.5
