"""A database index of saved annotations (``SONOTRACE_DATABASE_URL``).

The files written by :class:`annotation_client._storage.AnnotationStore` stay
the record of truth: each version's SVG, masks and JSON record. This index
holds one row per saved version, copied from its record, so the client can
answer "what was saved, by whom, and how far from the AI" without reading
every record file.

Because it is only an index, it can always be rebuilt: :meth:`AnnotationIndex.sync`
adds every record found on disk that has no row yet, and replaces a row whose
record file changed since (a row never keeps saying what its file no longer says).
The client runs it at start, so a save whose index write failed (a locked database, a full disk, a
database server that was down), records copied in from another workstation, or
a deleted database are picked up at the next start; and a row whose record file was
removed is dropped then (unless the data folder is missing or empty: see ``sync``).
A save is complete once its
files are written; the index write comes after and never undoes it. A SQLite file
deleted or replaced while the client runs (a data folder restored from a copy) is
opened anew at the index's next use, and the next listing's catch-up sync adds what
it lacks (see ``AnnotationIndex._replaced``).

Rebuilding is also how the table's layout is upgraded: the database records the
layout it was made with (:data:`SCHEMA_VERSION`), and a client that finds an
older one (or none recorded) drops the table and makes it anew (each old row's annotator
and save time carried over: see ``_carried_rows``), under a lock so
that clients starting together do it once; its start-up sync refills it. (Layouts 6 to
8 get the later layouts' nullable columns in place instead: the annotator of a record
damaged since it was indexed is known only to its row.) A layout newer than the
client's is left alone and the index reported unavailable.

A record file that cannot be read is not left out: its version is listed with why in
``damaged``, its reading blank, and ``sync`` reads it again at each start;
:meth:`AnnotationIndex.recheck_damaged` (each listing of the Saved page, ``/api/saved``
and reader agreement) reads it again without a restart, once its file changed or at most
every :data:`RECHECK_S` seconds; and a record found damaged when it is opened (loaded
to revise, exported) is marked then (:meth:`AnnotationIndex.report_damaged`), whatever
its file's stamp says.

The default URL is a SQLite file in the data directory, for one workstation.
Clients that share one data directory (a shared volume) should share a
PostgreSQL server instead, e.g. ``postgresql://sonotrace:PASSWORD@db.example/sonotrace``,
because SQLite's locking is not reliable on network file systems. Two drivers are
installed and both databases are tested: SQLite's (Python's own ``sqlite3``)
and psycopg 3 (the ``postgres`` extra). A ``postgresql://`` URL naming no driver
uses psycopg 3 (see :func:`engine_url`); a URL naming a driver that is not
installed (``postgresql+psycopg2://``, ``mysql://``) stops the client at start.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import logging
import math
import os
import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, aliased, mapped_column

from ._record import (
    DESCRIPTOR_OPTIONS,
    LABELS,
    MAX_NOTE_CHARS,
    MULTI_VALUED,
    SPACING_SOURCES,
    clean_descriptors,
    descends_from_others,
    parse_based_on,
)

logger = logging.getLogger(__name__)

#: Used with fullmatch: match("^...$") also took a SHA-256 followed by a newline.
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The longest page :meth:`AnnotationIndex.query` returns.
MAX_LIMIT = 5000
#: Most images :meth:`AnnotationIndex.reads` returns, each with all its readers' reads.
MAX_READ_IMAGES = 2000
#: Seconds between two readings of a damaged record whose file has not changed (a read
#: error that passed, a file made readable again by its permissions); one whose file
#: changed (restored from a backup) is read again at the next listing.
RECHECK_S = 60.0
#: Most damaged records :meth:`AnnotationIndex.recheck_damaged` reads at one listing, so
#: a folder of thousands gone bad at once costs each listing a bounded share of them.
MAX_RECHECK = 200
#: Seconds SQLite waits for a lock another connection (another worker) holds.
SQLITE_WAIT_S = 15
#: PostgreSQL drivers built on libpq, which take its connection parameters.
_LIBPQ_DRIVERS = ("psycopg", "psycopg2")
#: libpq's limits on waiting for a server: to connect, and (TCP keepalives, and
#: ``tcp_user_timeout`` in ms) on a connection whose network went silent. Without
#: them psycopg waits 130 s to connect and a pooled connection can hang a query for
#: the system's TCP timeout (many minutes): the client's start and each Saved page
#: would hang with it. ``options`` sets the server's own limits on a statement and on
#: the wait for a lock: a table locked by another session (a maintenance job, a stuck
#: transaction) held every open of an image and every save, silently, until it was
#: released; now the index is said to be unavailable after a few seconds, and the
#: save writes its files without its row. A URL's own value for any of them wins.
_LIBPQ_WAITS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30000,
    "options": "-c lock_timeout=5000 -c statement_timeout=20000",
}
#: Query parameters of a URL that hold secrets (libpq takes a password either way).
_SECRET_QUERY_KEYS = ("password", "sslpassword")


class IndexUnavailable(RuntimeError):
    """The index database could not be reached, read or written.

    ``str()`` says which, and is safe to show any user. The database's own message
    (host, user, SQL) is in ``detail``, for the client's log only.
    """

    def __init__(self, message: str, detail: object = "") -> None:
        super().__init__(message)
        self.detail = database_error(detail)

    def logged(self) -> str:
        """The message with its detail, for the client's log."""
        return f"{self}: {self.detail}" if self.detail else str(self)


#: A PostgreSQL message's lines that may quote a row's values ("DETAIL:  Failing row
#: contains (..., 'Dr A', 'scan of J. Doe.png', ...)").
_VALUE_LINES = re.compile(r"\s*(?:DETAIL|CONTEXT):")


def database_error(exc: object) -> str:
    """A database error as the log may hold it: the driver's error and the statement's
    start, never a value it was given.

    A failed index write's values are a record's: the free-text note, the upload's file
    name (scanners' exports put the patient's name there), the worklist path and the
    annotator, which the log never names. The engine hides them from its own message
    (``hide_parameters``); this keeps them out however the error was made, and leaves
    out PostgreSQL's DETAIL and CONTEXT lines, which may quote the row.
    """
    if not isinstance(exc, sa.exc.StatementError):
        return str(exc)
    orig = exc.orig
    kind = f"{type(orig).__module__.split('.')[0]}.{type(orig).__name__}" if orig else ""
    lines = [line for line in str(orig if orig is not None else exc.args[0]).splitlines()
             if line.strip() and not _VALUE_LINES.match(line)]
    text = f"({kind}) " + " ".join(line.strip() for line in lines) if kind else " ".join(lines)
    statement = " ".join(str(exc.statement or "").split())
    if statement:
        text += f" [SQL: {statement[:120]}{'…' if len(statement) > 120 else ''}]"
    return text


class _Base(DeclarativeBase):
    pass


#: The largest region's measurements the index copies (the Saved page's size columns).
_CALIPERS = (
    "max_diameter_px", "perpendicular_diameter_px", "max_diameter_mm", "perpendicular_diameter_mm",
)  # fmt: skip
#: The outline's size and the spacing it was measured at (layout 8; see row_values).
_SIZE = (
    "area_px", "area_mm2", "pixel_spacing_row_mm", "pixel_spacing_col_mm", "pixel_spacing_source",
)  # fmt: skip
#: The index column of each BI-RADS descriptor of a record (``final.descriptors``), the
#: assessment first: the category a report leads with. ``birads_`` tells ``shape``
#: apart from the image's width and height in a CSV.
DESCRIPTOR_COLUMNS = {
    "assessment": "birads_assessment",
    "shape": "birads_shape",
    "orientation": "birads_orientation",
    "margin": "birads_margin",
    "echo_pattern": "birads_echo_pattern",
    "posterior_features": "birads_posterior_features",
}
#: The BI-RADS assessment categories, lowest first (what :meth:`AnnotationIndex.query` filters).
ASSESSMENTS = DESCRIPTOR_OPTIONS["assessment"]
#: What joins the values of a multi-valued descriptor (margin) in its one column. No
#: value of the lexicon holds it, so ``cell.split(MULTI_VALUE_SEPARATOR)`` gives them back.
MULTI_VALUE_SEPARATOR = "; "


class SavedRow(_Base):
    """One saved annotation version, as indexed.

    Coordinates do not appear here: the geometry is in the version's SVG.
    ``saved_at`` is UTC, stored without a zone because SQLite keeps none
    (PostgreSQL's ``timestamp without time zone``, whatever the server's zone).

    Names and paths are unbounded ``Text``: PostgreSQL enforces a ``VARCHAR``'s
    length, and one long file name would fail a whole :meth:`AnnotationIndex.sync`.
    The bounded columns are the filtered, indexed ones; :func:`row_values`
    refuses a longer value before the database sees it.
    """

    __tablename__ = "saved_annotations"
    __table_args__ = (sa.UniqueConstraint("image_sha256", "version", name="uq_image_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    version: Mapped[int]
    saved_at: Mapped[_dt.datetime] = mapped_column(sa.DateTime, index=True)
    annotator: Mapped[str] = mapped_column(sa.String(200), index=True)
    image_name: Mapped[str] = mapped_column(sa.Text)
    worklist_path: Mapped[str | None] = mapped_column(sa.Text)
    width: Mapped[int]
    height: Mapped[int]
    final_label: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    ai_label: Mapped[str | None] = mapped_column(sa.String(16))
    ai_p_malignant: Mapped[float | None]
    segmented: Mapped[bool]
    dice_ai_vs_final: Mapped[float | None]
    edited: Mapped[bool | None]
    regions: Mapped[int | None]
    # The largest region's calipers; mm only with a pixel spacing, None in records
    # saved before the perpendicular diameter was measured.
    max_diameter_px: Mapped[float | None]
    perpendicular_diameter_px: Mapped[float | None]
    max_diameter_mm: Mapped[float | None]
    perpendicular_diameter_mm: Mapped[float | None]
    empty: Mapped[bool]
    model_version: Mapped[str | None] = mapped_column(sa.Text)
    record_path: Mapped[str] = mapped_column(sa.Text)
    # The saved version this one revised (Load it to revise), None when it started from the
    # AI's outline or a blank image, and in records saved before layout 4; and whether
    # it descends from another reader's work (reader agreement leaves such reads out).
    based_on_version: Mapped[int | None]
    based_on_annotator: Mapped[str | None] = mapped_column(sa.String(200))
    revises_other_reader: Mapped[bool | None]
    # Layout 5: the radiologist's BI-RADS assessment and descriptors (see
    # descriptor_columns) and note; None where not given, and the assessment filtered.
    birads_assessment: Mapped[str | None] = mapped_column(sa.String(2), index=True)
    birads_shape: Mapped[str | None] = mapped_column(sa.Text)
    birads_orientation: Mapped[str | None] = mapped_column(sa.Text)
    birads_margin: Mapped[str | None] = mapped_column(sa.Text)
    birads_echo_pattern: Mapped[str | None] = mapped_column(sa.Text)
    birads_posterior_features: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)
    # Layout 6: the size and modification time (ns) of the record file the row was
    # copied from, None where it could not be read: sync re-reads a record whose file
    # no longer matches them (a version saved again under a number whose files were
    # removed, a record copied in over another), and replaces the row. Not exported.
    record_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    record_mtime_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Layout 7: why the record file cannot be read (damaged since it was saved), None
    # when it can. Such a row says nothing the file no longer says: its reading (labels,
    # Dice, descriptors...) is blank, and only what tells the version apart is kept, the
    # annotator too when the row was indexed before (AnnotationStore.versions tells a
    # reader of their damaged record by it); see _damaged_values.
    damaged: Mapped[str | None] = mapped_column(sa.Text)
    # Layout 8: the outline's total area (every region), and the pixel spacing it was
    # measured at with where that came from (the file, or the reader: "manual",
    # "calibrated", "reused"); area_mm2 and the spacing None when measured in pixels.
    area_px: Mapped[float | None]
    area_mm2: Mapped[float | None]
    pixel_spacing_row_mm: Mapped[float | None]
    pixel_spacing_col_mm: Mapped[float | None]
    pixel_spacing_source: Mapped[str | None] = mapped_column(sa.Text)
    # Layout 9: the version of the model that gave the AI label and its probabilities
    # (the record's model.classification.version), None without them. model_version is
    # the outline's (model.segmentation.version): the two differ when the model server
    # was upgraded between the outline and the label of one reading.
    classification_model_version: Mapped[str | None] = mapped_column(sa.Text)
    # Layout 10: the versions of the models that answered the outline's box
    # re-segmentations (the record's model.box), each once, joined by ", "; None
    # without a box, and in records saved before they were recorded.
    box_model_versions: Mapped[str | None] = mapped_column(sa.Text)

    COLUMNS = (
        "image_sha256", "version", "saved_at", "annotator", "image_name", "worklist_path",
        "width", "height", "final_label", "ai_label", "ai_p_malignant", "segmented",
        "dice_ai_vs_final", "edited", "regions", "empty", "model_version", "record_path",
        *_CALIPERS,  # layout 3, last so that the CSV's earlier columns keep their places
        "based_on_version", "based_on_annotator", "revises_other_reader",  # layout 4
        *DESCRIPTOR_COLUMNS.values(), "note",  # layout 5
        "damaged",  # layout 7
        *_SIZE,  # layout 8
        "classification_model_version",  # layout 9
        "box_model_versions",  # layout 10
    )  # fmt: skip

    def as_dict(self) -> dict:
        """The row as JSON-able values (``saved_at`` as ISO 8601 with ``Z``)."""
        out = {name: getattr(self, name) for name in self.COLUMNS}
        out["saved_at"] = self.saved_at.isoformat(timespec="seconds") + "Z"
        return out


#: The longest text each bounded column holds (``annotator``, the SHA and the labels).
_LENGTHS = {
    column.name: column.type.length
    for column in SavedRow.__table__.columns
    if isinstance(column.type, sa.String) and column.type.length
}
#: The layout of :class:`SavedRow`'s table. Raise it with every change to that table
#: (``tests/annotation_client/test_database.py`` fails until it is raised). A table of
#: an older layout, or one made before the layout was recorded, is dropped and made
#: anew, and the client's start-up :meth:`AnnotationIndex.sync` refills it from the
#: record files: the index is a copy, so rebuilding it is its migration. A table of
#: layout 6 or later gets the later layouts' nullable columns in place instead (see
#: ``_make_tables`` and :data:`_ADDED_IN_PLACE`).
SCHEMA_VERSION = 10  # 3: the largest region's diameters; 4: the version revised;
# 5: the BI-RADS assessment and descriptors, and the note; 6: the record file's stamp;
# 7: why the record file cannot be read (damaged); 8: the area and the pixel spacing;
# 9: the AI label's model version; 10: the box re-segmentations' model versions
#: The nullable columns each layout added to the one before, which an index of layout 6
#: or later gets in place: a rebuild would lose the annotator of each record damaged
#: since it was indexed, which only its row still knows.
_ADDED_IN_PLACE = {7: ("damaged",), 8: _SIZE, 9: ("classification_model_version",),
                   10: ("box_model_versions",)}
#: Key of the PostgreSQL advisory lock held while a client checks or rebuilds the layout.
_SCHEMA_LOCK = zlib.crc32(b"sonotrace annotation index schema")


class SchemaRow(_Base):
    """The layout the index's table was made with: one row, :data:`SCHEMA_VERSION`."""

    __tablename__ = "saved_annotations_schema"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


#: The record field each text column is copied from, for messages (and which are text).
_FIELDS = {
    "image_sha256": "image.sha256", "annotator": "annotator", "image_name": "image.name",
    "worklist_path": "image.worklist_path", "final_label": "final.label",
    "ai_label": "ai.label", "model_version": "model.segmentation.version",
    "classification_model_version": "model.classification.version",
    "box_model_versions": "model.box",
    "record_path": "record path", "based_on_annotator": "based_on.annotator",
    **{column: f"final.descriptors.{name}" for name, column in DESCRIPTOR_COLUMNS.items()},
    "note": "final.note",
}  # fmt: skip


def default_url(data_dir: str | Path) -> sa.engine.URL:
    """The SQLite file used when ``SONOTRACE_DATABASE_URL`` is not set.

    A URL object, not a string: a folder name with ``?`` or ``#`` in it would
    start a query or fragment of a URL string, and the file would land elsewhere.
    """
    path = Path(data_dir).expanduser().resolve() / "index.sqlite3"
    return sa.engine.URL.create("sqlite", database=str(path))


def engine_url(url: str | sa.engine.URL) -> sa.engine.URL:
    """The URL the index's engine opens: ``url`` parsed, a PostgreSQL driver filled in.

    SQLAlchemy 2.0 opens a ``postgresql://`` URL with psycopg2, which this install
    lacks; it has psycopg 3 (the ``postgres`` extra). So a PostgreSQL URL naming no
    driver gets ``postgresql+psycopg``, and so does ``postgres://``, the short scheme
    libpq and many hosting tools print, which SQLAlchemy 2.0 does not know. A URL
    naming its driver keeps it.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        A database URL, e.g. ``postgresql://sonotrace:PASSWORD@db.example/sonotrace``.

    Returns
    -------
    sqlalchemy.engine.URL
        A new URL if a driver was filled in; ``url`` is never changed.

    Raises
    ------
    sqlalchemy.exc.ArgumentError
        If ``url`` does not parse as a URL.
    """
    parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def check_url(url: str | sa.engine.URL) -> str | sa.engine.URL:
    """Parse a SQLAlchemy URL without connecting.

    Returns
    -------
    str or sqlalchemy.engine.URL
        ``url``, a string stripped of surrounding blanks.

    Raises
    ------
    ValueError
        If ``url`` is not a database URL, or names a dialect that is not installed.
    """
    if isinstance(url, sa.engine.URL):
        parsed = url
    elif not isinstance(url, str) or not url.strip():
        raise ValueError("must be a database URL such as sqlite:///path/index.sqlite3")
    try:
        if not isinstance(url, sa.engine.URL):
            url = url.strip()
            parsed = sa.engine.make_url(url)
        # Building an engine connects to nothing, but imports the driver and checks
        # the URL's arguments: a missing driver fails here, at start, not at first save.
        sa.create_engine(engine_url(parsed)).dispose()
    except ArgumentError as exc:
        raise ValueError(f"is not a database URL ({exc})") from None
    except ImportError as exc:  # a dialect SQLAlchemy knows, whose driver is not installed
        raise ValueError(
            f"names a database driver this install lacks ({exc}); the installed ones are "
            "sqlite:// and postgresql:// (psycopg 3)"
        ) from None
    except Exception as exc:  # a driver refusing the URL's arguments
        raise ValueError(f"names a database this install cannot open ({exc})") from None
    return url


def descriptor_columns(descriptors: Mapping | None) -> dict:
    """A record's BI-RADS descriptors as the index's columns hold them.

    Parameters
    ----------
    descriptors : mapping or None
        A record's ``final.descriptors`` (:func:`~annotation_client._record.clean_descriptors`
        reads it); None, or a record from before descriptors, has none.

    Returns
    -------
    dict
        ``{column: str or None}`` for each column of :data:`DESCRIPTOR_COLUMNS`. A
        multi-valued descriptor (margin) is its values in the lexicon's order (ACR's,
        :data:`~annotation_client._record.DESCRIPTOR_OPTIONS`), whatever the record's
        order, joined by :data:`MULTI_VALUE_SEPARATOR`; None where no value was given.

    Raises
    ------
    ValueError
        For a name or value outside the lexicon, or descriptors that are not a mapping.

    Examples
    --------
    >>> cells = descriptor_columns({"margin": ["spiculated", "angular"], "assessment": "4C"})
    >>> cells["birads_margin"], cells["birads_assessment"], cells["birads_shape"]
    ('angular; spiculated', '4C', None)
    """
    if descriptors is not None and not isinstance(descriptors, Mapping):
        raise ValueError(f"{descriptors!r} is not a mapping of descriptors")
    cleaned = clean_descriptors(descriptors)
    cells = {}
    for name, column in DESCRIPTOR_COLUMNS.items():
        value = cleaned[name]
        if name in MULTI_VALUED:
            value = MULTI_VALUE_SEPARATOR.join(value) or None
        cells[column] = value
    return cells


_SURROGATE = re.compile("[\ud800-\udfff]")


def _note_copy(note):
    """The index's copy of a record's note: None for none, NUL left out, a lone
    surrogate replaced by U+FFFD, at most
    :data:`MAX_NOTE_CHARS` characters.

    A note saved before notes were limited may be longer: its copy is cut, ending in
    "…", so that a row of /api/saved stays bounded; the record keeps it whole. NUL
    (which PostgreSQL cannot store in text, and which says nothing in a note) is left
    out rather than refusing the save's whole row. Other types are left for
    :func:`_check_text` to refuse.
    """
    if not isinstance(note, str):
        return note
    # A lone surrogate (a JSON "\\ud800"), which no database stores, becomes U+FFFD.
    note = _SURROGATE.sub("\ufffd", note)
    note = note.replace("\x00", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        note = note[: MAX_NOTE_CHARS - 1] + "…"
    return note or None


def row_values(record: Mapping, record_path: str) -> dict:
    """The index columns of one saved record (as :func:`build_record` writes it).

    Raises
    ------
    ValueError
        If the record lacks a field the index needs, or holds a wrong value: text
        with a NUL character, or longer than its column holds (the annotator's
        name: 200 characters), is refused on every database, as PostgreSQL would;
        so are descriptors outside the BI-RADS lexicon. A note is copied, not
        refused (see :func:`_note_copy`).
    """
    if not isinstance(record, Mapping):
        raise TypeError("record must be a mapping")
    try:
        image = record["image"]
        ai = record.get("ai") or {}
        final = record.get("final") or {}
        agreement = record.get("agreement") or {}
        sha = str(image["sha256"])
        if not _SHA256.fullmatch(sha):
            raise ValueError("image.sha256 is not a SHA-256")
        version = _count(record["version"], "version", low=1)
        saved_at = _dt.datetime.fromisoformat(str(record["saved_at"]).replace("Z", "+00:00"))
        if saved_at.tzinfo is None:
            raise ValueError("saved_at has no time zone")
        labels = {"final.label": final.get("label"), "ai.label": ai.get("label")}
        for name, label in labels.items():
            if label is not None and label not in LABELS:
                raise ValueError(f"{name} {label!r} is not one of {', '.join(LABELS)}")
        flags = {
            "ai.segmented": ai.get("segmented", False),
            "final.empty": final.get("empty", False),
            "agreement.edited": agreement.get("edited"),
        }
        for name, flag in flags.items():
            if flag is not None and not isinstance(flag, bool):
                raise ValueError(f"{name} {flag!r} is not true, false or null")
        regions = final.get("regions")
        if regions is not None:
            regions = _count(regions, "final.regions", low=0)
        probabilities = ai.get("probabilities") or {}
        largest = (record.get("measurements") or {}).get("largest")
        if largest is None:
            largest = {}  # an empty outline, or a record from before measurements
        if not isinstance(largest, Mapping):
            raise ValueError(f"measurements.largest {largest!r} is not a region")
        calipers = {}
        for name in _CALIPERS:
            try:
                calipers[name] = _maybe_float(largest.get(name), low=0.0)
            except ValueError as exc:
                raise ValueError(f"measurements.largest.{name}: {exc}") from None
        size = _size_values(record)
        models = record.get("model") or {}
        segmentation = models.get("segmentation") or {}
        classification = models.get("classification") or {}  # the AI label's model
        dice = agreement.get("dice_ai_vs_final")
        based_on = parse_based_on(record.get("based_on")) or {}
        try:
            birads = descriptor_columns(final.get("descriptors"))
        except ValueError as exc:
            raise ValueError(f"final.descriptors: {exc}") from None
        values = {
            "image_sha256": sha,
            "version": version,
            "saved_at": saved_at.astimezone(_dt.UTC).replace(tzinfo=None),
            "annotator": str(record["annotator"]),
            "image_name": str(image["name"]),
            "worklist_path": image.get("worklist_path"),
            "width": _count(image["width"], "image.width", low=1),
            "height": _count(image["height"], "image.height", low=1),
            "final_label": labels["final.label"],
            "ai_label": labels["ai.label"],
            "ai_p_malignant": _maybe_float(probabilities.get("malignant")),
            "segmented": bool(flags["ai.segmented"]),
            "dice_ai_vs_final": _maybe_float(dice),
            "edited": flags["agreement.edited"],
            "regions": regions,
            **calipers,
            "empty": bool(flags["final.empty"]),
            "model_version": segmentation.get("version"),
            "record_path": str(record_path),
            "based_on_version": based_on.get("version"),
            "based_on_annotator": based_on.get("annotator"),
            "revises_other_reader": descends_from_others(record),
            **birads,
            "note": _note_copy(final.get("note")),
            "damaged": None,
            **size,
            "classification_model_version": classification.get("version"),
            "box_model_versions": _box_versions(models.get("box")),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"record is missing or mistypes a field: {exc!r}") from None
    _check_text(values)
    return values


def _box_versions(box) -> str | None:
    """The record's ``model.box`` as the index keeps it: each version once, in order,
    joined by ", "; None without a box.

    Raises
    ------
    ValueError
        When ``model.box`` is not a list of models.
    """
    if box is None:
        return None
    if not isinstance(box, list) or not all(isinstance(m, Mapping) for m in box):
        raise ValueError(f"model.box {box!r} is not a list of models")
    versions = dict.fromkeys(str(m["version"]) for m in box if m.get("version") is not None)
    return ", ".join(versions) or None


def _size_values(record: Mapping) -> dict:
    """The layout-8 columns of a record: its outline's total area and its pixel spacing.

    The spacing is ``image.pixel_spacing_mm`` (row, column; mm per pixel) with its
    source ("file" for a record that names none, as the record module reads it); all
    None for a record measured in pixels, and the areas None for one saved before
    measurements were recorded.

    Raises
    ------
    ValueError
        If a value is not a finite number at least 0 (the spacing above 0), or the
        source is not one of :data:`._record.SPACING_SOURCES`.
    """
    measurements = record.get("measurements")
    measurements = {} if measurements is None else measurements
    if not isinstance(measurements, Mapping):
        raise ValueError(f"measurements {measurements!r} is not a mapping")
    out = {}
    for name in ("area_px", "area_mm2"):
        try:
            out[name] = _maybe_float(measurements.get(name), low=0.0)
        except ValueError as exc:
            raise ValueError(f"measurements.{name}: {exc}") from None
    image = record["image"]
    spacing = image.get("pixel_spacing_mm")
    source = None
    if spacing is None:
        spacing = (None, None)
    else:
        pair = isinstance(spacing, Sequence) and not isinstance(spacing, str | bytes)
        if not pair or len(spacing) != 2:
            raise ValueError(f"image.pixel_spacing_mm {spacing!r} is not [row_mm, col_mm]")
        for value in spacing:
            if _maybe_float(value, low=0.0) in (None, 0.0):
                raise ValueError(f"image.pixel_spacing_mm {spacing!r} is not above 0")
        source = image.get("pixel_spacing_source") or "file"
        if source not in SPACING_SOURCES:
            raise ValueError(
                f"image.pixel_spacing_source {source!r} is not one of {', '.join(SPACING_SOURCES)}"
            )
    out["pixel_spacing_row_mm"] = _maybe_float(spacing[0])
    out["pixel_spacing_col_mm"] = _maybe_float(spacing[1])
    out["pixel_spacing_source"] = source
    return out


def _check_text(values: dict) -> None:
    # What PostgreSQL refuses and SQLite stores: text longer than its VARCHAR, and NUL;
    # and what neither stores as text. Refused here, the record is skipped alone; at
    # INSERT it would fail the whole batch.
    for name, value in values.items():
        if name not in _FIELDS or value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{_FIELDS[name]} {value!r} is not text")
        if "\x00" in value:
            raise ValueError(f"{_FIELDS[name]} holds a NUL character")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: at INSERT it fails the batch
                raise ValueError(f"{_FIELDS[name]} is not valid Unicode text") from None
        if name in _LENGTHS and len(value) > _LENGTHS[name]:
            raise ValueError(f"{_FIELDS[name]} is longer than {_LENGTHS[name]} characters")


def read_record(path: str | Path, image_sha256: str, version: int) -> tuple[dict, dict]:
    """Read one record file and check it as the index reads it.

    Parameters
    ----------
    path : str or pathlib.Path
        The record file (``<sha>/vNNN.json``).
    image_sha256, version : str, int
        The image and version its path names.

    Returns
    -------
    record : dict
        The record as saved.
    values : dict
        Its index columns (:func:`row_values`).

    Raises
    ------
    OSError
        If the file cannot be read (FileNotFoundError: it is gone).
    ValueError
        If it is not UTF-8 JSON, not a record the index can hold, or a record of
        another image or version than its path names: damaged.
    """
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(record, Mapping):
        raise ValueError("the record is not a JSON object")
    values = row_values(record, str(path))
    if (values["image_sha256"], values["version"]) != (image_sha256, version):
        raise ValueError(
            f"it holds version {values['version']} of "
            f"{values['image_sha256'][:12]}, not its file's"
        )
    return record, values


#: The columns a row holds beyond :attr:`SavedRow.COLUMNS`: its record file's stamp.
_STAMP = ("record_size", "record_mtime_ns")


def _stamp(path: str | Path) -> dict:
    """``{"record_size", "record_mtime_ns"}`` of a record file; None each when it cannot be read."""
    try:
        stat = Path(path).stat()
    except (OSError, ValueError):
        return dict.fromkeys(_STAMP)
    return {"record_size": stat.st_size, "record_mtime_ns": stat.st_mtime_ns}


def _differs(row: SavedRow, value: Mapping) -> bool:
    """Whether an indexed row says something else than ``value`` (its record as read now).

    The record's path is left out: clients that mount one shared data folder at
    different places would otherwise rewrite each other's rows at every start.
    """
    return any(
        getattr(row, name) != value[name]
        for name in (*SavedRow.COLUMNS, *_STAMP)
        if name != "record_path"
    )


def _identity(path: Path) -> tuple[int, int]:
    """The (device, inode) of a file or folder: which one it is, whatever its name."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _moved(exc: OperationalError) -> bool:
    """Whether SQLite refused a write because the file its connection holds was moved or
    deleted under it (SQLITE_READONLY_DBMOVED, which Python names since 3.11)."""
    return getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_READONLY_DBMOVED"


def _found_layout(conn: sa.Connection) -> tuple[bool, int | None]:
    """Whether the index's table exists, and the layout recorded for it (None: none, or
    one its table does not have: a column of it missing).

    Raises
    ------
    IndexUnavailable
        If a newer client made it: rebuilding it here would undo that client's
        rebuild at its next start, and so on. Saves still reach the files.
    """
    inspector = sa.inspect(conn)
    has_rows = inspector.has_table(SavedRow.__tablename__)
    found = None
    if inspector.has_table(SchemaRow.__tablename__):
        found = conn.scalar(sa.select(sa.func.max(SchemaRow.version)))
    if found is not None and found > SCHEMA_VERSION:
        raise IndexUnavailable(
            "the annotation index was made by a newer SonoTrace client",
            f"its layout is {found}, this client's {SCHEMA_VERSION}; upgrade this "
            "client, or give it its own SONOTRACE_DATABASE_URL",
        )
    if has_rows and found == SCHEMA_VERSION:
        # Made again, or altered, behind the clients' backs (an older dump restored): as
        # unrecorded, rebuilt from the files, rather than failing every query of the column.
        there = {column["name"] for column in inspector.get_columns(SavedRow.__tablename__)}
        if not set(SavedRow.__table__.columns.keys()) <= there:
            found = None
    return has_rows, found


#: PostgreSQL's SQLSTATEs of a table or column that is not there (undefined_table,
#: undefined_column).
_GONE_STATES = frozenset({"42P01", "42703"})


def _table_gone(exc: BaseException) -> bool:
    """Whether ``exc`` says that the index's table, or one of its columns, is not there:
    dropped or altered by another program while the client runs."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _GONE_STATES:
        return True
    return isinstance(exc, OperationalError) and str(exc.orig).startswith(
        ("no such table:", "no such column:"))  # SQLite's words: it has no SQLSTATE


def _table_oid(conn: sa.Connection) -> int | None:
    """The PostgreSQL object id of the index's table, None when there is none: another
    one when it was dropped and made again."""
    return conn.scalar(sa.text("SELECT to_regclass(:name)::oid"),
                       {"name": SavedRow.__tablename__})


#: The columns of a row that tell its version apart, kept when its record is damaged;
#: every other column is what the record says, which a damaged one no longer does.
_IDENTITY = ("image_sha256", "version", "saved_at", "annotator", "image_name",
             "worklist_path", "width", "height", "record_path")  # fmt: skip
#: The reading of a version whose record cannot be read: none (the two non-null flags False).
_NO_READING = {
    name: False if name in ("segmented", "empty") else None
    for name in SavedRow.COLUMNS
    if name not in (*_IDENTITY, "damaged")
}


def _damaged_values(sha: str, version: int, entry: Path, same_image: SavedRow | None) -> dict:
    """The row of a damaged record that has none: what its path and files tell.

    Its image and version from its path; the image's name, worklist path and size
    from another indexed version of it (``same_image``), if any; as ``saved_at`` the
    modification time of the version's outline, written by the same save (else of its
    record); no annotator (``""``), since only the record names one.
    """
    when = 0.0
    for ending in (".svg", "_mask.png", ".json"):
        try:
            when = entry.with_name(entry.stem + ending).stat().st_mtime
            break
        except OSError:
            continue
    image = {"image_name": "", "worklist_path": None, "width": 0, "height": 0}
    if same_image is not None:
        image = {name: getattr(same_image, name) for name in image}
    saved_at = _dt.datetime.fromtimestamp(when, _dt.UTC).replace(tzinfo=None, microsecond=0)
    return {"image_sha256": sha, "version": version, "saved_at": saved_at, "annotator": "",
            **image, "record_path": str(entry), **_NO_READING}  # fmt: skip


#: Why a row carried over a rebuild of the table (:func:`_carried_rows`) is listed as
#: damaged until its client's start reads its record again.
CARRIED = "not read again since the index was rebuilt for a new layout"


def _carried_rows(conn: sa.Connection) -> list[dict]:
    """The rows of an older layout's table, as the table made anew holds them until the
    start-up :meth:`AnnotationIndex.sync` reads their records again.

    A rebuild refills the table from the record files, but a record damaged since it
    was indexed no longer names its annotator nor its save time: only its old row does
    (what the README promises: "the annotator and save time where the index held them").
    So each old row's :data:`_IDENTITY` is kept, its reading blank and marked
    :data:`CARRIED`, its stamp none: the sync reads every such record again, replacing
    the row of one that reads well, marking the row of one that does not damaged with
    why (its annotator and time kept), and dropping the row of one that is gone. Only
    rows whose record file is still where they say are carried: a removed version's, one
    of a folder since moved, or one of another machine's data folder sharing the
    database, is dropped, as the rebuild dropped every row before. A table without an
    annotator, a save time or a record path (no layout SonoTrace made) carries nothing,
    nor does a row whose values this layout cannot hold; nothing is carried when the old
    table cannot be read (logged).
    """
    try:
        old = sa.Table(SavedRow.__tablename__, sa.MetaData(), autoload_with=conn)
        needed = ("image_sha256", "version", "annotator", "saved_at", "record_path")
        if any(name not in old.c for name in needed):
            return []
        names = [name for name in _IDENTITY if name in old.c]
        statement = sa.select(*(old.c[name] for name in names))
        if "id" in old.c:
            statement = statement.order_by(old.c.id)  # the new ids keep the old order
        found = [dict(row) for row in conn.execute(statement).mappings()]
    except (SQLAlchemyError, ValueError, TypeError) as exc:  # a value that does not parse
        logger.warning("annotation index: the older table's annotators and save times "
                       "could not be read, and are not kept: %s", database_error(exc))
        return []
    carried: dict[tuple[str, int], dict] = {}
    for row in found:
        values = _carried_values(row)
        # Only a version whose record file is still where its row says: the row of one
        # removed by hand, or of a folder since moved, would otherwise come back as a
        # damaged version that nothing removes (audit 918 F2), where the rebuild used to
        # drop it.
        if values is not None and _record_there(values["record_path"]):
            carried[(values["image_sha256"], values["version"])] = values  # the last wins
    return list(carried.values())


def _record_there(path) -> bool:
    try:
        return isinstance(path, str) and os.path.isfile(path)
    except (OSError, ValueError):  # a NUL in a path from a corrupt row
        return False


def _carried_values(row: Mapping) -> dict | None:
    """The new table's row of one old row (see :func:`_carried_rows`); None for one whose
    values it cannot hold."""
    sha, when = row["image_sha256"], row["saved_at"]
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        return None
    if not isinstance(when, _dt.datetime):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC).replace(tzinfo=None)
    size = {}
    for name in ("width", "height"):
        value = row.get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31
        size[name] = value if ok else 0
    values = {
        "image_sha256": sha,
        "saved_at": when,
        "annotator": row["annotator"] if isinstance(row["annotator"], str) else "",
        "image_name": row.get("image_name") if isinstance(row.get("image_name"), str) else "",
        "worklist_path": row.get("worklist_path") or None,
        **size,
        "record_path": row["record_path"],
        **_NO_READING,
        "damaged": CARRIED,
        **dict.fromkeys(_STAMP),
    }
    try:
        values["version"] = _count(row["version"], "version", low=1)
        _check_text(values)
    except ValueError:
        return None
    return values


def _count(value, name: str, low: int) -> int:
    # Every database holds a 32-bit integer; a larger "version" is a corrupt file.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**31:
        raise ValueError(f"{name} {value!r} is not an int from {low} to 2**31 - 1")
    return value


def _maybe_float(value, low: float | None = None) -> float | None:
    # NaN reads back as NULL from SQLite but as NaN from PostgreSQL, which /api/saved
    # would then send as JSON that does not parse: refused on both.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if low is not None and value < low:
        raise ValueError(f"{value!r} is below {low:g}")
    return float(value)


class AnnotationIndex:
    """The index database of one client.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        SQLAlchemy database URL; see :func:`default_url`.

    Notes
    -----
    The engine connects lazily, so building an index touches no file and no
    server; the table is created on first use. SQLite's lock wait applies only
    to SQLite; a PostgreSQL server that does not accept a connection is given up
    after 10 s, and one whose network goes silent mid-query after about 30 s,
    unless the URL sets libpq's ``connect_timeout`` or ``tcp_user_timeout``.
    """

    def __init__(self, url: str | sa.engine.URL) -> None:
        self.url = check_url(url)
        parsed = engine_url(self.url)
        sqlite = parsed.get_backend_name() == "sqlite"
        on_disk = sqlite and parsed.database not in (None, "", ":memory:")
        self._sqlite_file = Path(parsed.database).expanduser() if on_disk else None
        connect_args = {}
        if sqlite:
            # Several gunicorn threads share the engine; SQLite waits up to 15 s for a lock.
            connect_args = {"timeout": SQLITE_WAIT_S}
        elif parsed.get_driver_name() in _LIBPQ_DRIVERS:
            connect_args = {k: v for k, v in _LIBPQ_WAITS.items() if k not in parsed.query}
        # hide_parameters: an error's message would otherwise quote the row it wrote (see
        # database_error), on SQLite and PostgreSQL alike.
        self.engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True,
                                       hide_parameters=True)
        self._created = False
        # The SQLite file (st_dev, st_ino) the pooled connections opened, and its folder's
        # when it was first opened (see _replaced): None before, and for other databases.
        self._opened: tuple[int, int] | None = None
        self._first_folder: tuple[int, int] | None = None
        # PostgreSQL's: the object id of the table it made or found (see _table_changed).
        self._table: int | None = None
        self._lock = threading.Lock()
        #: Seconds between two readings of an unchanged damaged record (see recheck_damaged).
        self.recheck_s = RECHECK_S
        # When this process last read each damaged record again (time.monotonic()); one
        # recheck at a time, the others listing without waiting for it.
        self._rechecked: dict[tuple[str, int], float] = {}
        self._recheck_lock = threading.Lock()
        # A save of this process could not write its row (see fell_behind).
        self._behind = False
        # Each thread's save in progress (see one_wait): how deep, and the failure it met.
        self._scope = threading.local()

    def __repr__(self) -> str:
        return f"AnnotationIndex({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The URL the engine opens (:func:`engine_url`), passwords masked, for logs and pages.

        A password may also sit in the query (``?password=``), where libpq takes it too.
        """
        url = self.engine.url
        secrets = {k: "***" for k in _SECRET_QUERY_KEYS if k in url.query}
        if secrets:
            url = url.update_query_dict(secrets)
        return url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def one_wait(self):
        """One save's uses of the index, which wait for a locked or silent database once.

        A locked SQLite file is waited for up to :data:`SQLITE_WAIT_S`, a PostgreSQL
        server that does not answer for seconds too; a save uses the index three times
        (the annotator's name, the image's highest version, its row) and so waited three
        times as long. Within this context, once the index failed, every later use in
        this thread fails at once with :class:`IndexUnavailable`, as the first did; the
        save goes on without the index, as it does when the index is down. Nested
        contexts are one.
        """
        scope = self._scope
        depth = getattr(scope, "depth", 0)
        if depth == 0:
            scope.failed = None
        scope.depth = depth + 1
        try:
            yield
        finally:
            scope.depth = depth
            if depth == 0:
                scope.failed = None

    def _unavailable(self, message: str, exc: BaseException) -> IndexUnavailable:
        """:class:`IndexUnavailable` of ``exc``, remembered by the save in progress, if any
        (see :meth:`one_wait`). When it says that the table, or a column, is not there,
        the table is made (or rebuilt) again at the next use."""
        if self._created and _table_gone(exc):
            with self._lock:
                if self._created:
                    self._reopen(f"its table {SavedRow.__tablename__} was dropped or changed")
        error = IndexUnavailable(message, exc)
        if getattr(self._scope, "depth", 0):
            self._scope.failed = error
        return error

    def _ready(self) -> None:
        failed = getattr(self._scope, "failed", None)
        if failed is not None:
            raise IndexUnavailable("the annotation index was not asked again, as it failed "
                                   "earlier in this save", failed.logged())
        if self._created and not self._replaced():
            return
        with self._lock:  # the first saves of several request threads arrive together
            if self._created:
                if not self._replaced():
                    return
                self._reopen(f"{self._sqlite_file} was replaced or removed")
            new_file = self._sqlite_file is not None and not self._sqlite_file.exists()
            if self._sqlite_file is not None:
                if new_file:
                    self._may_start_file()
                if self._first_folder is None:
                    # SQLite does not create a missing folder; the data directory may not
                    # exist yet at a first start (never after: see _may_start_file).
                    self._sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            # Read first: a lock is taken only to make or rebuild the tables. On SQLite
            # even an empty write transaction waits for every reader to finish.
            with self.engine.connect() as conn:
                has_rows, found = _found_layout(conn)
            if not has_rows or found != SCHEMA_VERSION:
                with self.engine.begin() as conn:
                    self._lock_schema(conn)
                    self._make_tables(conn)
            if self._sqlite_file is not None:
                self._opened = _identity(self._sqlite_file)
                if self._first_folder is None:
                    self._first_folder = _identity(self._sqlite_file.parent)
            elif self.engine.dialect.name == "postgresql":
                with self.engine.connect() as conn:
                    self._table = _table_oid(conn)
            if new_file:
                # Expected on a first start; after a mistyped SONOTRACE_DATABASE_URL it is
                # the only sign that the Saved page now reads an empty index. Once made:
                # a file that could not be made is the error's to say, not this line's.
                logger.info("annotation index: starting a new database file %s",
                            self._sqlite_file)
            self._created = True

    def check(self) -> None:
        """Open the database, making its tables on first use, and read it once: what the
        client's start and ``/health`` do (see ``_storage.IndexProbe``).

        A table dropped or altered since it was made is made again here, and one dropped
        and made again (PostgreSQL: :meth:`_table_changed`) is noted; either way the next
        listing adds the saved versions it lacks (:meth:`recheck_damaged`).

        Raises
        ------
        IndexUnavailable
            When it cannot be opened or read.
        """
        for again in (False, True):
            made = self._created
            try:
                self._ready()
                with self.engine.connect() as conn:
                    conn.execute(sa.select(SavedRow.version).limit(1)).all()
                self._reopen_if_table_changed()
                return
            except (SQLAlchemyError, OSError) as exc:
                error = self._unavailable("the annotation index could not be opened", exc)
                if again or not made or self._created:  # not a table gone: said as it is
                    raise error from exc

    def _table_changed(self) -> str | None:
        """How the PostgreSQL table the index made or found is no longer the one of its
        name: ``"was dropped"``, or ``"was dropped and made again"`` (an older dump
        restored, another program) while the client runs, when its rows are no longer
        those the client wrote. None when it is, when it cannot be told now (the next
        query says why), and on SQLite (a file replaced is :meth:`_replaced`'s). One query.
        """
        if self._table is None:
            return None
        try:
            with self.engine.connect() as conn:
                now = _table_oid(conn)
        except SQLAlchemyError:
            return None
        if now == self._table:
            return None
        return "was dropped" if now is None else "was dropped and made again"

    def _reopen_if_table_changed(self) -> None:
        """:meth:`_reopen` when :meth:`_table_changed` says so."""
        if self._created and (how := self._table_changed()):
            with self._lock:
                if self._created:
                    self._reopen(f"its table {SavedRow.__tablename__} {how}")

    def _replaced(self) -> bool:
        """Whether the SQLite file at the index's path is no longer the one its pooled
        connections hold open: deleted, or replaced (a data folder restored from a copy).

        Those connections would go on reading the old file (the Saved page listing what
        is no longer there) and fail every write ("attempt to write a readonly database")
        until a restart. One stat per use of the index.
        """
        if self._opened is None:
            return False
        try:
            now = _identity(self._sqlite_file)
        except FileNotFoundError:
            return True
        except OSError:
            return False  # the query says what is wrong
        return now != self._opened

    def _reopen(self, why: str) -> None:
        """Close the pooled connections, so the next use opens the file at the index's path
        anew, or the database (its tables made if it has none, rebuilt if one lacks a
        column); call with :attr:`_lock` held. The next listing then runs :meth:`sync`,
        which adds what the file or table lacks. ``why`` says what happened (``"<file>
        was replaced or removed"``)."""
        logger.warning("annotation index: %s while the client runs; opening it again, "
                       "and adding the saved versions it lacks at the next listing", why)
        # Disposed: PostgreSQL's connections hold statements prepared on the old table.
        self.engine.dispose()
        self._created, self._opened, self._table = False, None, None
        self._behind = True

    def _may_start_file(self) -> None:
        """Refuse to start a new SQLite file, once the index was opened, in a folder that
        is neither the one it was first opened in nor a data folder (its mark).

        A deleted ``index.sqlite3`` is started again in its folder, and one of a data folder
        restored from a copy without it in the restored folder; but a data folder moved away
        or unmounted while the client runs leaves no folder, or an empty mount point, where
        a new file would hide from the volume once it is back.

        Raises
        ------
        IndexUnavailable
            When the file may not be started there.
        """
        from ._storage import DATA_MARK  # the store imports this module

        if self._first_folder is None:
            return  # a first start: the data folder is made with it
        folder = self._sqlite_file.parent
        try:
            same = _identity(folder) == self._first_folder
        except OSError:
            same = False
        if not same and not (folder / DATA_MARK).is_file():
            raise IndexUnavailable(
                "the annotation index could not be opened",
                f"{self._sqlite_file} is gone, and its folder is missing or not the one it "
                "was in (a volume unmounted, or the data folder moved?): no new file is "
                "started there",
            )

    def _once_more_if_moved(self, work):
        """``work()``, done again once on connections opened anew when SQLite says the
        file the pooled connection holds was moved or deleted under it."""
        try:
            return work()
        except OperationalError as exc:
            # A file made read-only says "readonly database" too: opened again only when
            # SQLite names the move, or the file at the path is another one.
            if not (_moved(exc) or ("readonly database" in str(exc.orig) and self._replaced())):
                raise
            with self._lock:
                self._reopen(f"{self._sqlite_file} was moved under its open connections")
            return work()

    def _lock_schema(self, conn: sa.Connection) -> None:
        # Clients start together (gunicorn workers, several machines on one server):
        # one at a time makes or rebuilds the tables and the others, reading again
        # under the lock (READ COMMITTED, PostgreSQL's default, sees the first one's
        # work), find them made; so a rebuild is done once and never drops a table
        # another has just made and begun to fill. The lock ends with the transaction.
        # The index opens only SQLite and PostgreSQL (check_url).
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
        elif conn.dialect.name == "sqlite":
            # pysqlite begins a transaction only before a write, and then a deferred
            # one: take the write lock now, before reading the layout.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _make_tables(self, conn: sa.Connection) -> None:
        has_rows, found = _found_layout(conn)
        carried = []
        if has_rows and found is not None and found + 1 in _ADDED_IN_PLACE:
            # Under the schema lock, in this transaction, so it is done once and wholly
            # (SQLite and PostgreSQL both undo DDL with a rollback).
            self._add_columns(conn, found)
        elif has_rows and found != SCHEMA_VERSION:
            # Read before the drop: the annotator and save time of a version whose record
            # is damaged are known only to its old row.
            carried = _carried_rows(conn)
            logger.warning(
                "annotation index: its table has an older layout (%s, now %d); rebuilding "
                "it from the record files (keeping each version's annotator and save time, "
                "%d row(s), until its record is read again)",
                "unrecorded" if found is None else found,
                SCHEMA_VERSION,
                len(carried),
            )
            SavedRow.__table__.drop(conn)
        _Base.metadata.create_all(conn)
        if carried:
            conn.execute(sa.insert(SavedRow.__table__), carried)
        if found != SCHEMA_VERSION:
            conn.execute(sa.delete(SchemaRow))
            conn.execute(sa.insert(SchemaRow).values(version=SCHEMA_VERSION))

    @staticmethod
    def _add_columns(conn: sa.Connection, found: int) -> None:
        """Bring a table of layout ``found`` (6 or later) to this one, every row kept.

        The columns of each later layout are added, empty. A row's record stamp is then
        cleared when a layout added columns a record fills (not only ``damaged``), so
        the start-up sync reads every record again and fills them; a damaged record's
        row keeps its annotator as ever (:meth:`_mark_damaged`).
        """
        table = SavedRow.__table__
        refill = False
        for layout in range(found + 1, SCHEMA_VERSION + 1):
            names = _ADDED_IN_PLACE[layout]
            logger.info(
                "annotation index: adding the %s column%s (layout %d to %d)",
                ", ".join(names), "s" if len(names) > 1 else "", layout - 1, layout,
            )
            for name in names:
                kind = table.c[name].type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
            refill = refill or names != ("damaged",)
        if refill:
            conn.execute(sa.update(table).values(record_size=None, record_mtime_ns=None))

    def add(self, record: Mapping, record_path: str | Path) -> bool:
        """Index one saved record.

        A row of the same image and version that says something else (a version
        number saved again after its files were removed, a record replaced) is
        replaced: the record file is the truth, and a row never outlives it.

        Returns
        -------
        bool
            True if a row was added or replaced, False if that image version was
            indexed already as the record says. Either way the index now holds it.

        Raises
        ------
        ValueError
            For a record the index cannot read.
        IndexUnavailable
            If the database cannot be written.
        """
        return self.add_many([(record, record_path)]) == 1

    def add_many(self, items: Iterable[tuple[Mapping, str | Path]]) -> int:
        """Index several records in one transaction; returns the rows added or replaced.

        Each record's file is stamped (size, modification time) as it is now; a row
        of the same image and version that differs from the record is replaced.
        """
        values = [row_values(record, str(path)) | _stamp(path) for record, path in items]
        if not values:
            return 0
        # The last of two values of one key wins, as it would one after the other.
        values = list({(v["image_sha256"], v["version"]): v for v in values}.values())
        try:
            return self._once_more_if_moved(lambda: self._add_rows(values))
        except (SQLAlchemyError, OSError, OverflowError) as exc:
            raise self._unavailable("the annotation index could not be written", exc) from exc

    def _add_rows(self, values: list[dict]) -> int:
        """:meth:`add_many`'s writes of checked ``values``; how many rows were written."""
        self._ready()
        try:
            with Session(self.engine) as session, session.begin():
                return self._write(session, values)
        except IntegrityError:
            # Another process indexed one of them between our read and our write.
            return sum(self._write_one(v) for v in values)

    def _write(self, session: Session, values: list[dict]) -> int:
        """Add the rows of ``values`` that are new, replace those that differ; how many."""
        shas = sorted({v["image_sha256"] for v in values})
        known: dict[tuple[str, int], SavedRow] = {}
        # Chunks keep each IN (...) under SQLite's limit on bound parameters.
        for start in range(0, len(shas), 500):
            known |= self._known(session, set(shas[start : start + 500]))
        written = 0
        for v in values:
            row = known.get((v["image_sha256"], v["version"]))
            if row is None:
                session.add(SavedRow(**v))
            elif _differs(row, v):
                # A row without a stamp is being filled in (a new layout's columns, see
                # _add_columns), not overwritten: no news. Not the annotator's name: a
                # record edited by hand can hold any text.
                if (row.record_size, row.record_mtime_ns) != (None, None):
                    logger.warning(
                        "annotation index: %s v%d changed on disk; its row is replaced",
                        v["image_sha256"][:12], v["version"],
                    )
                for name, value in v.items():
                    setattr(row, name, value)
            else:
                continue
            written += 1
        return written

    def _write_one(self, value: dict) -> int:
        try:
            with Session(self.engine) as session, session.begin():
                return self._write(session, [value])
        except IntegrityError:
            # Added meanwhile by another process: compare with its row now.
            with Session(self.engine) as session, session.begin():
                return self._write(session, [value])

    def _all_keys(self) -> dict[tuple[str, int], tuple[int | None, int | None, str, bool]]:
        """Each indexed (image, version), with its record file's stamp (size, mtime ns),
        path, and whether it is marked damaged."""
        try:
            self._ready()
            with Session(self.engine) as session:
                rows = session.execute(
                    sa.select(SavedRow.image_sha256, SavedRow.version, SavedRow.record_size,
                              SavedRow.record_mtime_ns, SavedRow.record_path,
                              SavedRow.damaged.is_not(None))
                )
                return {(sha, version): (size, mtime, path, damaged)
                        for sha, version, size, mtime, path, damaged in rows}
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def _row_count(self) -> int:
        try:
            self._ready()
            with Session(self.engine) as session:
                return session.scalar(sa.select(sa.func.count()).select_from(SavedRow)) or 0
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def _remove(self, keys: list[tuple[str, int]]) -> int:
        """Delete the rows of ``keys``; how many there were."""

        def remove() -> int:
            removed = 0
            self._ready()
            with Session(self.engine) as session, session.begin():
                for start in range(0, len(keys), 200):
                    chunk = keys[start : start + 200]
                    result = session.execute(
                        sa.delete(SavedRow).where(
                            sa.tuple_(SavedRow.image_sha256, SavedRow.version).in_(chunk)
                        )
                    )
                    removed += result.rowcount or 0
            return removed

        try:
            return self._once_more_if_moved(remove)
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be written", exc) from exc

    @staticmethod
    def _known(session: Session, shas: set[str]) -> dict[tuple[str, int], SavedRow]:
        rows = session.scalars(sa.select(SavedRow).where(SavedRow.image_sha256.in_(shas)))
        return {(row.image_sha256, row.version): row for row in rows}

    def max_version(self, image_sha256: str) -> int:
        """The highest version of an image the index holds, 0 for none.

        A save takes a number above it as well as above the files', so a number
        whose files were removed by hand is never given to another save.

        Raises
        ------
        IndexUnavailable
            When the database cannot be read.
        """
        statement = sa.select(sa.func.max(SavedRow.version)).where(
            SavedRow.image_sha256 == image_sha256
        )
        try:
            self._ready()
            with Session(self.engine) as session:
                return session.scalar(statement) or 0
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def sync(self, data_dir: str | Path) -> dict:
        """Index every complete version saved under ``data_dir`` that has no row yet,
        and index again each one whose record file changed since its row was written.

        Only the record files of versions the index lacks, or whose size or
        modification time differ from those their row recorded, are read, so a
        start beside thousands of indexed versions costs a folder walk, a stat of
        each record and one query. A record read again that says something else
        than its row replaces it (see :meth:`add`).

        A row whose record file is gone (its version's or image's files removed by
        hand) is deleted, so the Saved page, its CSV and the agreement stop listing
        it; only a row whose record path lies in ``data_dir`` (as found now), so a
        client given another data folder than the rows' leaves them alone. Nothing
        is deleted when ``data_dir`` is missing or holds no saved version while the
        index holds rows: an unmounted or mistyped data folder (or a shared
        database's other folder) must not empty the index; a warning says so.

        Returns
        -------
        dict
            ``{"added": int, "removed": int, "unchecked": int, "skipped": [path, ...]}``:
            rows added or replaced; rows deleted because their record file is
            gone; rows left in place unchecked because ``data_dir`` is missing or
            holds no saved version (0 otherwise); records that could not be read,
            or that name another image or version than their file, are logged and
            skipped, never fatal. A skipped record's row is marked ``damaged`` with
            why, its reading blanked (one is added if it had none), so the Saved page
            lists it as damaged however the index came to be; it is read again at
            each sync, and once readable its row is what it says again.
        """
        # The store knows its layout; it imports this module, hence the late import.
        from ._storage import AnnotationStore

        root = Path(data_dir)
        store = AnnotationStore(root)
        found = [
            (sha, version, store.record_path(sha, version))
            for sha in store.images()
            for version in store.versions(sha)
        ]
        if not found:
            unchecked = self._warn_if_rows_without_files(root)
            return {"added": 0, "removed": 0, "unchecked": unchecked, "skipped": []}
        known = self._all_keys()
        items, skipped, damaged = [], [], []
        for sha, version, entry in found:
            if (sha, version) in known:
                stamp = _stamp(entry)
                size, mtime, _, marked = known[(sha, version)]
                # A damaged one is read again each start: a file made readable again
                # without a new stamp (its permissions fixed) comes back too.
                if not marked and (size, mtime) == (stamp["record_size"],
                                                     stamp["record_mtime_ns"]):
                    continue
            try:
                record, _ = read_record(entry, sha, version)  # now, so one bad file skips alone
            except (OSError, ValueError, TypeError) as exc:
                logger.warning("annotation index: skipped %s: %s", entry, exc)
                skipped.append(str(entry))
                damaged.append((sha, version, entry, str(exc)))
                continue
            items.append((record, entry))
        added = self.add_many(items)
        self._mark_damaged(damaged)
        if added:
            # Rows added or replaced (a record changed on disk, or readable again).
            logger.info("annotation index: added or updated %d saved version(s) from %s",
                        added, root)
        removed = self._prune(root, known, {(sha, version) for sha, version, _ in found})
        return {"added": added, "removed": removed, "unchecked": 0, "skipped": skipped}

    def _mark_damaged(self, damaged: list[tuple[str, int, Path, str]]) -> int:
        """Mark the rows of records that cannot be read, adding one for each that has none.

        A row says nothing its file no longer says: its reading is blanked and only
        what tells the version apart stays (:data:`_IDENTITY`), so an index that held
        the version before and one rebuilt since list it alike, bar the annotator, which
        only the old row knows. ``damaged`` holds ``(image, version, record path, why)``.
        A row marked already with the same why and stamp is not written again.

        Returns
        -------
        int
            How many of them were not marked damaged before (0 when the database
            could not be written: logged).
        """
        if not damaged:
            return 0
        now = time.monotonic()
        for sha, version, *_ in damaged:
            # Just read: recheck_damaged need not read them again before recheck_s.
            self._rechecked[(sha, version)] = now

        def mark() -> int:
            self._ready()
            try:
                return self._mark_in_session(damaged)
            except IntegrityError:
                # Its row was added meanwhile (the start-up sync and a page that opened
                # the record, or two clients): mark that row now.
                return self._mark_in_session(damaged)

        try:
            return self._once_more_if_moved(mark)
        except (SQLAlchemyError, OSError) as exc:
            self._unavailable("the annotation index could not be written", exc)  # remembered
            logger.error("annotation index: damaged records not marked: %s", database_error(exc))
            return 0
        except IndexUnavailable as exc:  # its file cannot be opened (see _ready)
            logger.error("annotation index: damaged records not marked: %s", exc.logged())
            return 0

    def _mark_in_session(self, damaged: list[tuple[str, int, Path, str]]) -> int:
        """:meth:`_mark_damaged`'s writes, in one transaction; how many were new marks."""
        newly = 0
        with Session(self.engine) as session, session.begin():
            known = self._known(session, {sha for sha, *_ in damaged})
            for sha, version, entry, why in damaged:
                row = known.get((sha, version))
                if row is None:
                    # The image's name and size from another of its versions, if any.
                    same = next((r for (s, _), r in sorted(known.items())
                                 if s == sha and r.image_name), None)
                    row = SavedRow(**_damaged_values(sha, version, entry, same))
                    session.add(row)
                    newly += 1
                else:
                    newly += row.damaged is None
                    for name, value in _NO_READING.items():
                        setattr(row, name, value)
                row.damaged = why[:1000]
                # Where it was found now: a row carried over a rebuild, or indexed before
                # the data folder moved, names its old place otherwise.
                row.record_path = str(entry)
                # Its file's stamp now, so the mark is redone only when it changes
                # (sync reads a marked record again anyway).
                for name, value in _stamp(entry).items():
                    setattr(row, name, value)
        return newly

    def report_damaged(self, image_sha256: str, version: int, record_path: str | Path,
                       why: str) -> bool:
        """Mark one version damaged: its record file was found unreadable when opened.

        What :meth:`sync` does for a record it cannot read, for one found so by whoever
        read it (loaded to revise, exported): damage that kept the file's size and
        modification time, which no stamp shows, is listed from then on, not only once
        the file changes. A read error that passes is undone by :meth:`recheck_damaged`.
        Never raises: a database that cannot be written is logged.

        Returns
        -------
        bool
            Whether the version was not marked damaged before.
        """
        newly = self._mark_damaged([(image_sha256, version, Path(record_path), str(why))]) > 0
        if newly:
            logger.warning("annotation index: %s v%d marked damaged when read: %s",
                           image_sha256[:12], version, why)
        return newly

    def fell_behind(self) -> None:
        """Note that a save of this process could not write its row (the database was
        away): the next listing catches up with :meth:`sync` (see :meth:`recheck_damaged`),
        rather than the next start."""
        self._behind = True

    def recheck_damaged(self, data_dir: str | Path) -> dict:
        """Read again the record files of versions marked damaged, without a restart.

        A record that could not be read once (a passing I/O error, a file being
        restored) would otherwise stay damaged until the next start's :meth:`sync`.
        Called before each listing (the Saved page, its CSV, ``/api/saved``, reader
        agreement, reading progress), it costs one query of the damaged rows and a stat of each: a
        record is read again only when its file's stamp (size, modification time)
        changed since it was marked, or it was last read :attr:`recheck_s` seconds
        ago (in this process) or more, at most :data:`MAX_RECHECK` at a time, those
        changed first, then those read longest ago. One read again that reads well
        is indexed as it says (:meth:`add`) and is no longer damaged; one that does
        not keeps its mark, with why now.

        Only rows whose record file is in ``data_dir`` are read: a row of another data
        folder (a shared database) is left to its own clients, and one whose file is gone
        to the next start's :meth:`sync`, which drops it. Never raises: a database
        that cannot be read or written is logged, and the listing says so itself.

        First, when a save of this process could not write its row since the last
        catch-up (:meth:`fell_behind`: the database was away), or the SQLite file was
        deleted or replaced since it was opened (then opened anew), or the table was
        dropped or altered (:meth:`_unavailable`), or dropped and made again
        (:meth:`_table_changed`, PostgreSQL), the whole
        :meth:`sync` of a start runs, so that versions saved during an outage, or that
        the file now there lacks, are listed without a restart.

        Parameters
        ----------
        data_dir : str or pathlib.Path
            The data directory the records are in.

        Returns
        -------
        dict
            ``{"read": int, "restored": int}``: records read again, and of those the
            rows that are as their record says again.
        """
        if not self._recheck_lock.acquire(blocking=False):
            return {"read": 0, "restored": 0}  # another request is at it: no need to wait
        try:
            if self._created and self._replaced():
                with self._lock:  # so that the catch-up below runs on the new file now
                    if self._created and self._replaced():
                        self._reopen(f"{self._sqlite_file} was replaced or removed")
            self._reopen_if_table_changed()
            if self._behind:
                try:
                    self.sync(data_dir)
                except (IndexUnavailable, ValueError) as exc:
                    why = exc.logged() if isinstance(exc, IndexUnavailable) else exc
                    logger.warning("annotation index: could not catch up with the saves it "
                                   "missed (tried again at the next listing): %s", why)
                    return {"read": 0, "restored": 0}
                self._behind = False  # not before: a sync that fails is tried again
                logger.info("annotation index: caught up with the saves it missed")
            return self._recheck(Path(data_dir))
        except IndexUnavailable as exc:
            # The database itself, not a damaged record: said as the start says it.
            logger.warning("annotation index %s unavailable: %s", self.safe_url, exc.logged())
            return {"read": 0, "restored": 0}
        except ValueError as exc:
            logger.warning("annotation index: damaged records not read again: %s", exc)
            return {"read": 0, "restored": 0}
        finally:
            self._recheck_lock.release()

    def _recheck(self, root: Path) -> dict:
        """:meth:`recheck_damaged`'s work, with its lock held."""
        from ._storage import AnnotationStore  # it imports this module

        store = AnnotationStore(root)
        marked = self._damaged_stamps()
        # Forget the rows no longer damaged (restored, or removed), so the map stays small.
        self._rechecked = {k: t for k, t in self._rechecked.items() if k in marked}
        now = time.monotonic()
        due = []
        for key, stamp in marked.items():
            entry = store.record_path(*key)
            if not os.path.lexists(entry):
                continue  # another data folder's, or removed: sync's to drop
            changed = stamp != tuple(_stamp(entry).values())
            last = self._rechecked.get(key)
            if changed or last is None or now - last >= self.recheck_s:
                due.append((not changed, last or 0.0, key, entry))
        due = sorted(due)[:MAX_RECHECK]
        items, still = [], []
        for *_, (sha, version), entry in due:
            self._rechecked[(sha, version)] = now
            try:
                record, _ = read_record(entry, sha, version)
            except (OSError, ValueError, TypeError) as exc:
                still.append((sha, version, entry, str(exc)))
            else:
                items.append((record, entry))
        restored = self.add_many(items)
        self._mark_damaged(still)  # why and stamp as they are now
        if restored:
            logger.info("annotation index: %d damaged record(s) in %s read well again",
                        restored, root)
        return {"read": len(due), "restored": restored}

    def _damaged_stamps(self) -> dict[tuple[str, int], tuple[int | None, int | None]]:
        """Each version marked damaged, with its record file's stamp when it was marked."""
        statement = sa.select(
            SavedRow.image_sha256, SavedRow.version, SavedRow.record_size,
            SavedRow.record_mtime_ns,
        ).where(SavedRow.damaged.is_not(None))
        try:
            self._ready()
            with Session(self.engine) as session:
                return {(sha, version): (size, mtime)
                        for sha, version, size, mtime in session.execute(statement)}
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def _warn_if_rows_without_files(self, root: Path) -> int:
        """Warn when the data folder has no saved version but the index has rows; how many."""
        if self._sqlite_file is not None and not self._sqlite_file.exists():
            return 0  # a first start: nothing indexed, nothing to create yet
        try:
            rows = self._row_count()
        except IndexUnavailable as exc:
            logger.debug("annotation index: rows not counted: %s", exc.logged())
            return 0
        if rows:
            logger.warning(
                "annotation index: the data folder %s is %s, yet the index holds %d saved "
                "version(s): none is removed from the index. Is the folder mounted, and "
                "SONOTRACE_DATA_DIR the one the index was filled from?",
                root, "missing" if not root.is_dir() else "empty", rows,
            )
        return rows

    def _prune(self, root: Path, known: Mapping, found: set[tuple[str, int]]) -> int:
        """Delete the rows whose record file, in ``root``, is gone; how many."""
        here = Path(os.path.realpath(root))
        gone = [
            key
            for key, (_, _, path, _) in known.items()
            if key not in found
            and Path(os.path.realpath(path)).parent.parent == here
            # Looked at again now: a save since the walk writes its file before its row.
            and not os.path.lexists(path)
        ]
        if not gone:
            return 0
        removed = self._remove(sorted(gone))
        logger.warning(
            "annotation index: removed %d row(s) whose record file is gone from %s", removed, root
        )
        return removed

    def query(
        self,
        *,
        annotator: str | None = None,
        final_label: str | None = None,
        latest_only: bool = False,
        limit: int = 500,
        reader: str | None = None,
        assessment: str | None = None,
        offset: int = 0,
    ) -> list[dict]:
        """Saved versions, newest first.

        Parameters
        ----------
        annotator : str, optional
            Only this annotator's saves (exact name).
        final_label : str, optional
            Only this final label; ``"none"`` for saves without one.
        latest_only : bool
            Only each image's highest version, whoever saved it, or with
            ``annotator`` that annotator's highest version of each image they saved
            (their latest reads, whoever saved since); the other filters apply to
            those versions (so ``final_label="malignant"`` lists the images whose
            current version is malignant).
        limit : int
            At most this many rows (1 to :data:`MAX_LIMIT`).
        reader : str, optional
            Blinded reading: only this annotator's saves exist for the query, so
            ``latest_only`` takes each image's highest version among theirs, not
            one another reader saved since.
        assessment : str, optional
            Only this BI-RADS assessment category (``"4A"``, exact); ``"none"`` for
            saves without one. Applied as ``final_label`` is, with ``latest_only``.
        offset : int
            Skip this many of the newest matching rows first: the rows after a page of
            ``limit`` are those at ``offset=limit`` (:meth:`summary` counts them all).

        Returns
        -------
        list of dict
            :meth:`SavedRow.as_dict` of each row.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an int from 1 to {MAX_LIMIT}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be an int of 0 or more")
        statement = self._matching(annotator=annotator, final_label=final_label,
                                   latest_only=latest_only, reader=reader,
                                   assessment=assessment)
        if statement is None:
            return []
        statement = statement.order_by(
            SavedRow.saved_at.desc(), SavedRow.id.desc()
        ).offset(offset).limit(limit)
        try:
            self._ready()
            with Session(self.engine) as session:
                return [row.as_dict() for row in session.scalars(statement)]
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def _matching(self, *, annotator, final_label, latest_only, reader, assessment):
        """The select of the rows :meth:`query` and :meth:`summary` take, unordered; None
        when no row can match. Checks the filters (``ValueError``)."""
        if final_label not in (None, "none", *LABELS):
            raise ValueError(f"final_label must be none or one of {', '.join(LABELS)}")
        if assessment not in (None, "none", *ASSESSMENTS):
            raise ValueError(f"assessment must be none or one of {', '.join(ASSESSMENTS)}")
        if any("\x00" in (name or "") for name in (annotator, reader)):
            # No saved name holds one (the client refuses control characters), and
            # PostgreSQL refuses it in a text parameter: the answer is no rows, on both.
            return None
        statement = sa.select(SavedRow)
        if reader is not None:
            statement = statement.where(SavedRow.annotator == reader)
        if annotator:
            statement = statement.where(SavedRow.annotator == annotator)
        if final_label is not None or assessment is not None:
            # What a damaged record says is unknown: it matches no label or category.
            statement = statement.where(SavedRow.damaged.is_(None))
        if final_label == "none":
            statement = statement.where(SavedRow.final_label.is_(None))
        elif final_label:
            statement = statement.where(SavedRow.final_label == final_label)
        if assessment == "none":
            statement = statement.where(SavedRow.birads_assessment.is_(None))
        elif assessment:
            statement = statement.where(SavedRow.birads_assessment == assessment)
        if latest_only:
            newest = sa.select(
                SavedRow.image_sha256, sa.func.max(SavedRow.version).label("top")
            )
            if reader is not None:
                newest = newest.where(SavedRow.annotator == reader)
            if annotator:
                # A reader's latest reads: an image another reader saved since stays
                # theirs (it dropped out of their list, which then undercounted them).
                newest = newest.where(SavedRow.annotator == annotator)
            newest = newest.group_by(SavedRow.image_sha256).subquery()
            statement = statement.join(
                newest,
                sa.and_(
                    SavedRow.image_sha256 == newest.c.image_sha256,
                    SavedRow.version == newest.c.top,
                ),
            )
        return statement

    def summary(
        self,
        *,
        annotator: str | None = None,
        final_label: str | None = None,
        latest_only: bool = False,
        reader: str | None = None,
        assessment: str | None = None,
    ) -> dict:
        """:func:`summarize` of every row :meth:`query` matches with these filters,
        however many pages they take, counted by the database.

        Returns
        -------
        dict
            :func:`summarize`'s keys, and ``with_ai`` (the readable versions with an AI
            outline, which ``mean_dice`` and ``edited`` are of) and ``labelled`` (with
            both an AI and a final label, which ``label_agreement`` is of). All the
            matching rows are ``versions + damaged``.
        """
        matching = self._matching(annotator=annotator, final_label=final_label,
                                  latest_only=latest_only, reader=reader,
                                  assessment=assessment)
        if matching is None:
            return _shares(0, 0, 0, None, 0, 0, 0, 0, 0)
        rows = matching.subquery()
        readable = rows.c.damaged.is_(None)
        with_ai = sa.and_(readable, rows.c.dice_ai_vs_final.is_not(None))
        labelled = sa.and_(readable, rows.c.ai_label.is_not(None), rows.c.ai_label != "",
                           rows.c.final_label.is_not(None), rows.c.final_label != "")

        def counted(condition):
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        def distinct(column):
            return sa.func.count(sa.distinct(sa.case((readable, column))))

        statement = sa.select(
            counted(readable), distinct(rows.c.image_sha256), distinct(rows.c.annotator),
            sa.func.sum(sa.case((with_ai, rows.c.dice_ai_vs_final))), counted(with_ai),
            counted(sa.and_(with_ai, rows.c.edited.is_(True))), counted(labelled),
            counted(sa.and_(labelled, rows.c.ai_label == rows.c.final_label)),
            counted(sa.not_(readable)),
        )
        try:
            self._ready()
            with self.engine.connect() as conn:
                return _shares(*conn.execute(statement).one())
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    #: The columns :meth:`progress_rows` gives: who saved which version of which image,
    #: when, with what final label, and whether it is a read (see :meth:`reads`).
    PROGRESS_COLUMNS = ("image_sha256", "version", "annotator", "saved_at", "final_label",
                        "revises_other_reader", "damaged")

    def progress_rows(self) -> list[dict]:
        """Every saved version, as :data:`PROGRESS_COLUMNS` only, by image and version.

        What a study's reading progress counts (:mod:`annotation_client._progress`):
        every image and every reader, not the capped listing of :meth:`query`, so only
        the few columns that say who read what (tens of bytes a version, where a whole
        row holds paths and notes).

        Returns
        -------
        list of dict
            ``saved_at`` as ISO 8601 with ``Z``, as :meth:`SavedRow.as_dict` gives it.

        Raises
        ------
        IndexUnavailable
            When the database cannot be read.
        """
        statement = sa.select(*(getattr(SavedRow, name) for name in self.PROGRESS_COLUMNS))
        statement = statement.order_by(SavedRow.image_sha256, SavedRow.version)
        try:
            self._ready()
            with Session(self.engine) as session:
                found = session.execute(statement).mappings().all()
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc
        return [dict(row) | {"saved_at": row["saved_at"].isoformat(timespec="seconds") + "Z"}
                for row in found]

    def reads(self, images: int = MAX_READ_IMAGES) -> tuple[list[dict], int]:
        """Each reader's reads of every image two or more readers read independently.

        What :func:`annotation_client._agreement.reader_agreement` compares: a
        reader's read of an image is their latest version of it that does not
        descend from another reader's saved work (``revises_other_reader``),
        whoever saved since; their latest version that does is given too, so
        that the comparison can say it left it out. So are the reads of images
        with such a version and fewer than two independent readers (each capped
        at ``images`` too): a reader who only revised others' work is listed.

        Parameters
        ----------
        images : int
            At most this many images (1 to :data:`MAX_READ_IMAGES`), those saved
            most recently first, each with all its readers' reads: a cap on the
            masks read afterwards that never compares an image with only some of
            its readers.

        Returns
        -------
        rows : list of dict
            :meth:`SavedRow.as_dict` of each read (and each reader's latest version
            that is not one), newest first.
        total : int
            How many images two or more readers read independently, within the cap
            or not.
        """
        if (isinstance(images, bool) or not isinstance(images, int)
                or not 1 <= images <= MAX_READ_IMAGES):
            raise ValueError(f"images must be an int from 1 to {MAX_READ_IMAGES}")
        # NULL (a version that revised nothing, or an index row from before layout 4)
        # is independent.
        copied = sa.func.coalesce(SavedRow.revises_other_reader, sa.false())
        # A version whose record cannot be read is no read: its label and outline are
        # unknown, and a rebuilt index does not know whose it was. The reader's latest
        # readable version is their read, as an index rebuilt from the files would say.
        readable = SavedRow.damaged.is_(None)
        shared = (
            sa.select(
                SavedRow.image_sha256, sa.func.max(SavedRow.saved_at).label("newest")
            )
            .where(sa.not_(copied), readable)
            .group_by(SavedRow.image_sha256)
            .having(sa.func.count(SavedRow.annotator.distinct()) >= 2)
        )
        kept = (
            shared.order_by(sa.desc("newest"), SavedRow.image_sha256).limit(images).subquery()
        )
        # Images with a version that revised another reader's work, whether or not two
        # readers read them independently: the comparison lists such a version as left
        # out, and a reader whose only reads are revisions must not vanish unmentioned.
        # Their rows are read, not their masks, so the same cap of images is enough.
        revised = (
            sa.select(SavedRow.image_sha256, sa.func.max(SavedRow.saved_at).label("newest"))
            .where(copied, readable)
            .group_by(SavedRow.image_sha256)
            .order_by(sa.desc("newest"), SavedRow.image_sha256)
            .limit(images)
            .subquery()
        )
        top = (
            sa.select(
                SavedRow.image_sha256,
                SavedRow.annotator,
                copied.label("copied"),
                sa.func.max(SavedRow.version).label("top"),
            )
            .where(sa.or_(SavedRow.image_sha256.in_(sa.select(kept.c.image_sha256)),
                          SavedRow.image_sha256.in_(sa.select(revised.c.image_sha256))),
                   readable)
            .group_by(SavedRow.image_sha256, SavedRow.annotator, copied)
            .subquery()
        )
        statement = (
            sa.select(SavedRow)
            .join(
                top,
                sa.and_(
                    SavedRow.image_sha256 == top.c.image_sha256,
                    SavedRow.annotator == top.c.annotator,
                    SavedRow.version == top.c.top,
                ),
            )
            .order_by(SavedRow.saved_at.desc(), SavedRow.id.desc())
        )
        total = sa.select(sa.func.count()).select_from(shared.subquery())
        try:
            self._ready()
            with Session(self.engine) as session:
                rows = [row.as_dict() for row in session.scalars(statement)]
                return rows, session.scalar(total)
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def left_out(self, limit: int = MAX_READ_IMAGES) -> list[dict]:
        """The versions marked damaged that may have been a reader's read, newest first.

        :meth:`reads` gives none of them (what they say is unknown), so reader
        agreement leaves them out, and says which. A damaged version is listed unless
        its annotator saved a readable, independent version of the image after it (then
        that one is their read, as it would be were the damaged one readable); one whose
        annotator is unknown (indexed after it was damaged) is always listed.

        Parameters
        ----------
        limit : int
            At most this many (1 to :data:`MAX_READ_IMAGES`).

        Returns
        -------
        list of dict
            :meth:`SavedRow.as_dict` of each, ``damaged`` saying why.
        """
        if (isinstance(limit, bool) or not isinstance(limit, int)
                or not 1 <= limit <= MAX_READ_IMAGES):
            raise ValueError(f"limit must be an int from 1 to {MAX_READ_IMAGES}")
        later = aliased(SavedRow)
        read_after = (
            sa.exists()
            .where(
                later.image_sha256 == SavedRow.image_sha256,
                later.annotator == SavedRow.annotator,
                later.version > SavedRow.version,
                later.damaged.is_(None),
                sa.not_(sa.func.coalesce(later.revises_other_reader, sa.false())),
            )
        )
        statement = (
            sa.select(SavedRow)
            .where(SavedRow.damaged.is_not(None),
                   sa.or_(SavedRow.annotator == "", sa.not_(read_after)))
            .order_by(SavedRow.saved_at.desc(), SavedRow.id.desc())
            .limit(limit)
        )
        try:
            self._ready()
            with Session(self.engine) as session:
                return [row.as_dict() for row in session.scalars(statement)]
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def annotator_of(self, image_sha256: str, version: int) -> str | None:
        """The annotator recorded for one saved version, or None when it is not indexed.

        Raises
        ------
        IndexUnavailable
            When the database cannot be read.
        """
        statement = sa.select(SavedRow.annotator).where(
            SavedRow.image_sha256 == image_sha256, SavedRow.version == version
        )
        try:
            self._ready()
            with Session(self.engine) as session:
                return session.scalars(statement).first()
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def annotators(self) -> list[str]:
        """Every annotator name in the index, sorted."""
        try:
            self._ready()
            with Session(self.engine) as session:
                names = session.scalars(sa.select(SavedRow.annotator).distinct())
                return sorted(name for name in names if name)  # "": a damaged record's
        except (SQLAlchemyError, OSError) as exc:
            raise self._unavailable("the annotation index could not be read", exc) from exc

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()


def summarize(rows: list[Mapping]) -> dict:
    """Agreement between the AI and the radiologists over indexed rows.

    Parameters
    ----------
    rows : list of mapping
        Rows as :meth:`AnnotationIndex.query` returns them.

    Returns
    -------
    dict
        ``versions``, ``images``, ``annotators``; ``mean_dice`` over versions
        that had an AI outline (None if none did) and ``edited`` (share of those
        whose outline was changed); ``label_agreement`` (share of versions with
        both an AI and a final label where the two are the same; None if none).
        All of these are of the rows whose record can be read; ``damaged`` counts
        the others, whose reading is unknown.
    """
    damaged = sum(bool(r.get("damaged")) for r in rows)
    rows = [r for r in rows if not r.get("damaged")]
    with_ai = [r for r in rows if r["dice_ai_vs_final"] is not None]
    labelled = [r for r in rows if r["ai_label"] and r["final_label"]]
    return {
        "versions": len(rows),
        "images": len({r["image_sha256"] for r in rows}),
        "annotators": len({r["annotator"] for r in rows}),
        "mean_dice": (sum(r["dice_ai_vs_final"] for r in with_ai) / len(with_ai))
        if with_ai
        else None,
        "edited": (sum(bool(r["edited"]) for r in with_ai) / len(with_ai)) if with_ai else None,
        "label_agreement": (
            sum(r["ai_label"] == r["final_label"] for r in labelled) / len(labelled)
        )
        if labelled
        else None,
        "damaged": damaged,
    }


def _shares(versions, images, annotators, dice_sum, with_ai, edited, labelled, agreeing,
            damaged) -> dict:
    """:meth:`AnnotationIndex.summary` from the database's counts and sum."""
    return {
        "versions": int(versions), "images": int(images), "annotators": int(annotators),
        "mean_dice": float(dice_sum) / with_ai if with_ai else None,
        "edited": int(edited) / with_ai if with_ai else None,
        "label_agreement": int(agreeing) / labelled if labelled else None,
        "damaged": int(damaged), "with_ai": int(with_ai), "labelled": int(labelled),
    }


def to_csv(rows: list[Mapping]) -> str:
    """Rows as :meth:`AnnotationIndex.query` returns them, as CSV with a header line.

    Empty values are empty cells; the columns are :attr:`SavedRow.COLUMNS`. Text
    that a spreadsheet would run as a formula (a name starting with ``=``, say)
    gets a leading apostrophe, so opening the export runs nothing. A note's line
    breaks stay in its cell, which is quoted (RFC 4180).
    """
    return "".join(csv_lines(rows))


def csv_lines(rows: Iterable[Mapping], header: bool = True) -> Iterator[str]:
    """:func:`to_csv`'s text a row at a time (the header line first, unless ``header`` is
    False), so that an export of any size is written out without being held whole."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SavedRow.COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
        yield out.getvalue()
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow({name: spreadsheet_cell(row.get(name)) for name in SavedRow.COLUMNS})
        yield out.getvalue()


def spreadsheet_cell(value):
    """``value`` for a CSV cell: empty for None, and text that a spreadsheet would run
    as a formula (starting with ``= + - @``, a tab or a return) after an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
