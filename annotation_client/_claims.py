"""Soft claims on worklist entries: which page has which image open, so that two
readers sharing one worklist are not both sent to the same case.

When the Annotate page opens a worklist entry it claims it: one row per page in
the ``worklist_claims`` table of the index database (the entry's path, the image's
SHA-256, the page's token, the reader's name if known and the time). A page holds
at most one claim: opening another entry moves it, opening an upload or saving the
entry ends it, and it lapses after :data:`CLAIM_MINUTES` minutes. *Open next not
annotated* (and *Save & next*) skips entries another page claimed within that time;
an entry picked from the list still opens, and the page says who has it open.

The claims are state of their own, not a copy of the record files: the table is not
part of the saved annotations' layout (``_database.SCHEMA_VERSION``), is made on
first use (``checkfirst``) and never rebuilt. A claim is only advice, so a database
that cannot be read or written never stops an image from opening or a save: the
error is logged and the worklist works as it did without claims.

Times are ``time.time()`` seconds (UTC, zone-free), from the client's clock:
clients sharing one PostgreSQL server should keep their clocks in step (NTP).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ._database import database_error

logger = logging.getLogger(__name__)

#: Minutes a claim holds an entry after its page opened it: Open next not annotated
#: skips an entry another page opened less long ago than this and has not saved.
CLAIM_MINUTES = 15
#: Seconds the claims are left alone after the database failed: a server that is down
#: would otherwise cost each listing and each Next its connect timeout (10 s) again.
RETRY_S = 30.0
#: Key of the PostgreSQL advisory lock held while a page reads and writes claims.
_CLAIMS_LOCK = zlib.crc32(b"sonotrace worklist claims")

_METADATA = sa.MetaData()
#: One row per page holding a claim. Its own MetaData: the index's layout and
#: rebuilds (``_database._Base``) never touch it.
#: The longest page token a claim keeps (the page makes 16 hex digits).
MAX_PAGE_CHARS = 64


def page_token(page) -> str | None:
    """``page`` if it is a page's token (text of 1 to :data:`MAX_PAGE_CHARS` characters),
    else None: the token comes from the browser's session store, which the browser may
    change, and one the table cannot hold whole would miss its own claim when moving it
    (a clash that put claims to rest for every page)."""
    return page if isinstance(page, str) and 0 < len(page) <= MAX_PAGE_CHARS else None


CLAIMS = sa.Table(
    "worklist_claims",
    _METADATA,
    sa.Column("page", sa.String(MAX_PAGE_CHARS), primary_key=True),
    sa.Column("path", sa.Text, nullable=False, index=True),
    sa.Column("sha256", sa.String(64)),
    sa.Column("reader", sa.String(200)),
    sa.Column("claimed_at", sa.Float, nullable=False),  # time.time(), seconds
)


@dataclass(frozen=True)
class Claim:
    """One page's claim on a worklist entry."""

    page: str
    path: str
    sha256: str | None
    reader: str | None
    claimed_at: float

    def minutes_ago(self, now: float) -> int:
        """Whole minutes since the claim, at least 0."""
        return max(0, int((now - self.claimed_at) // 60))

    def who(self) -> str:
        """The reader's name, or "another page (no name)" when the page named none:
        which may be the same person's earlier tab, not another reader."""
        return self.reader or "another page (no name)"

    def sentence(self, now: float, latest: tuple[int, float] | None = None) -> str:
        """"Dr B opened this image 3 minutes ago and has not saved it yet."

        ``latest`` is ``(version, saved at)`` (``time.time()`` seconds) of the image's
        newest saved version, if any: one saved after the claim (by another page: a
        save ends its reader's claims) is said, and the image is never said unsaved
        since then.
        """
        minutes = self.minutes_ago(now)
        when = (
            "less than a minute ago"
            if minutes == 0
            else f"{minutes} minute{'s' if minutes != 1 else ''} ago"
        )
        since = latest is not None and latest[1] >= self.claimed_at
        if self.reader is None:
            opened = (f"This image was opened {when} on another page that named no reader "
                      "(another reader's, or an earlier tab of yours)")
            if since:
                return f"{opened}; version {latest[0]} of it has been saved since."
            return f"{opened}, and it has not been saved since."
        if since:
            return (f"{self.reader} opened this image {when} and has not saved it; version "
                    f"{latest[0]} of it has been saved since.")
        return f"{self.reader} opened this image {when} and has not saved it yet."


class Claims:
    """The claims table of one database.

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
        The index database's engine (SQLite or PostgreSQL).
    minutes : float, optional
        How long a claim holds (:data:`CLAIM_MINUTES`).
    clock : callable, optional
        Seconds since the epoch; ``time.time`` (tests pass their own).

    Notes
    -----
    Every method logs a database error and answers as if there were no claims
    (nothing claimed by others, nothing written): claims never stop a page.
    """

    def __init__(
        self,
        engine: sa.engine.Engine,
        minutes: float = CLAIM_MINUTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.minutes = minutes
        self.clock = clock
        self._created = False
        self._lock = threading.Lock()
        self._resting_until = 0.0  # time.monotonic(): see RETRY_S

    # ----------------------------------------------------------------- table and lock

    def _ready(self) -> None:
        if time.monotonic() < self._resting_until:
            raise _Resting
        if self._created:
            return
        with self._lock, self.engine.begin() as conn:
            if not self._created:
                # Under the lock: two clients creating it together would clash on
                # PostgreSQL (the second CREATE fails).
                _lock(conn)
                CLAIMS.create(conn, checkfirst=True)
                self._created = True

    def _failed(self, exc: Exception, what: str) -> None:
        """Log a database error (once per :data:`RETRY_S`) and rest for that long."""
        if isinstance(exc, _Resting):
            return
        self._resting_until = time.monotonic() + RETRY_S
        # Without the values written: a claim names the reader and the worklist path.
        logger.warning("worklist claims %s (left alone for %.0f s): %s", what, RETRY_S,
                       database_error(exc))

    def _fresh_since(self) -> float:
        return self.clock() - self.minutes * 60

    # ----------------------------------------------------------------- reading

    def held_by_others(self, page: str | None, reader: str | None = None) -> dict[str, Claim]:
        """Fresh claims of pages other than ``page``: ``{path: newest claim}``; with
        ``reader``, not those of that reader's other pages either (a tab they closed
        held its claim, and it was said to them as another's)."""
        page = page_token(page)
        try:
            self._ready()
            with self.engine.connect() as conn:
                return _others(conn, page, self._fresh_since(), reader)
        except (SQLAlchemyError, OSError, _Resting) as exc:
            self._failed(exc, "could not be read")
            return {}

    # ----------------------------------------------------------------- writing

    def claim(
        self, page: str, path: str, *, sha256: str | None = None, reader: str | None = None
    ) -> None:
        """Claim ``path`` for ``page``, moving any claim the page held before; nothing for
        a ``page`` that is no token (:func:`page_token`)."""
        page = page_token(page)
        if not page or not path:
            return
        try:
            self._ready()
            with self.engine.begin() as conn:
                _lock(conn)
                self._write(conn, page, path, sha256, reader)
        except (SQLAlchemyError, OSError, _Resting) as exc:
            self._failed(exc, "could not be written")

    def claim_first(
        self,
        page: str,
        paths: Sequence[str],
        *,
        shas: dict[str, str | None] | None = None,
        reader: str | None = None,
    ) -> str | None:
        """Claim the first of ``paths`` no other page holds a fresh claim on.

        Read and written in one transaction under a lock, so that two pages asking at
        once get two entries.

        Parameters
        ----------
        page : str
            The asking page's token.
        paths : sequence of str
            Candidate entries, in the order they are wanted.
        shas : dict, optional
            ``{path: sha256}`` recorded with the claim.
        reader : str, optional
            The reader's name, shown to other pages; that reader's own claims from
            other pages do not count as taken.

        Returns
        -------
        str or None
            The entry claimed; None when every candidate is claimed by another page.
            When the database fails, the first candidate, unclaimed.
        """
        if not paths:
            return None
        page = page_token(page)  # no token: the entry is chosen, not claimed
        try:
            self._ready()
            with self.engine.begin() as conn:
                _lock(conn)
                taken = _others(conn, page, self._fresh_since(), reader)
                chosen = next((p for p in paths if not held(taken, p, (shas or {}).get(p))),
                              None)
                if chosen is not None and page:
                    self._write(conn, page, chosen, (shas or {}).get(chosen), reader)
                return chosen
        except (SQLAlchemyError, OSError, _Resting) as exc:
            self._failed(exc, "could not be used")
            return paths[0]

    def release(self, page: str | None, path: str | None = None,
                reader: str | None = None) -> None:
        """End ``page``'s claim (only if it is on ``path``, when given); with ``path``
        and ``reader``, that reader's claims on ``path`` from other pages too (the
        entry is saved: a tab of theirs closed before would say it open for minutes)."""
        page = page_token(page)
        if not page:
            return
        mine = CLAIMS.c.page == page
        if path is not None and reader:
            mine = sa.or_(mine, CLAIMS.c.reader == reader[:200])
        statement = sa.delete(CLAIMS).where(mine)
        if path is not None:
            statement = statement.where(CLAIMS.c.path == path)
        try:
            self._ready()
            with self.engine.begin() as conn:
                conn.execute(statement)
        except (SQLAlchemyError, OSError, _Resting) as exc:
            self._failed(exc, "could not be written")

    def _write(self, conn, page, path, sha256, reader) -> None:
        now = self.clock()
        # Lapsed claims go as others are written: the table stays the size of the
        # pages in use.
        conn.execute(sa.delete(CLAIMS).where(
            sa.or_(CLAIMS.c.page == page, CLAIMS.c.claimed_at < now - self.minutes * 60)))
        conn.execute(sa.insert(CLAIMS).values(
            page=page, path=path, sha256=sha256,
            reader=(reader or None) and reader[:200], claimed_at=now))  # fmt: skip


class _Resting(Exception):
    """The database failed less than :data:`RETRY_S` seconds ago: not asked again yet."""


def _lock(conn: sa.Connection) -> None:
    """Serialize claim writers (see :meth:`Claims.claim_first`)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIMS_LOCK)))
    elif conn.dialect.name == "sqlite":
        # pysqlite begins a deferred transaction only at the first write: take the
        # write lock now, before reading the claims.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _others(conn: sa.Connection, page: str | None, since: float,
            reader: str | None = None) -> dict[str, Claim]:
    statement = sa.select(CLAIMS).where(CLAIMS.c.claimed_at >= since)
    if page:
        statement = statement.where(CLAIMS.c.page != page)
    if reader:
        statement = statement.where(
            sa.or_(CLAIMS.c.reader.is_(None), CLAIMS.c.reader != reader[:200]))
    # Oldest first, so each path keeps its newest claim (and held() meets the paths in
    # the order of their oldest claims). Claims made at the same time (one clock reading
    # on two clients, or a test's fixed clock) are put in the order of their pages'
    # tokens: the database would list them as it likes (SQLite and PostgreSQL may differ),
    # and the page would name one reader, then the other. Sorted here, not in SQL, so
    # that PostgreSQL's text collation does not order the tokens otherwise than SQLite.
    claims = sorted((Claim(**row._mapping) for row in conn.execute(statement)),
                    key=lambda c: (c.claimed_at, c.page))
    return {c.path: c for c in claims}


def held(claims: dict[str, Claim], path: str, sha256: str | None = None) -> Claim | None:
    """The claim among ``claims`` (``{path: claim}``) on the entry ``path``, or on the
    same image under another path (a copy of the file elsewhere in the worklist: both
    readers would save versions of one image); None when neither is claimed."""
    if path in claims:
        return claims[path]
    if not sha256:
        return None
    return next((c for c in claims.values() if c.sha256 == sha256), None)


_BOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BOOKS_LOCK = threading.Lock()


def claims_of(index) -> Claims:
    """The :class:`Claims` of an :class:`~annotation_client._database.AnnotationIndex`'s
    database, one per index in the process (it remembers only that the table exists)."""
    with _BOOKS_LOCK:
        book = _BOOKS.get(index)
        if book is None:
            book = _BOOKS[index] = Claims(index.engine)
        return book
