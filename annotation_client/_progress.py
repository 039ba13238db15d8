"""Reading progress: how far each reader, and the study, has got through the images.

While a reader study runs, whoever coordinates it asks: how many images has each
reader read, and when did each last save; how many images have no read yet, how
many have the two reads the study wants, and how many wait for an adjudication.
The answers come from the index of saved annotations, and the worklist's images
when the client has a worklist; nothing here reads a mask or a record file.

- **A reader's read** of an image is what reader agreement compares
  (:func:`annotation_client._agreement.independent_reads`): their highest version
  of it whose record is readable and that does not descend from another reader's
  saved work. A revision of someone else's version (*Load it to revise*) is no read
  of the reviser, and a damaged record no read at all.
- **Saved:** the images a reader saved any version of, revisions and damaged
  records the index knows as theirs included.
- **Disagreed:** the images the export lists as such
  (:func:`annotation_client._export.reader_columns`,
  :func:`~annotation_client._export.unresolved`): each reader's latest final label,
  over the image's readable versions, differs from another's, and the image's latest
  readable version adjudicated nothing (revised no other reader's version).

With a worklist every count is of the worklist's images, each image once however
many files hold its bytes (the index knows images by their SHA-256); images saved
that no worklist file holds (uploads, files removed since) are counted apart.
Without one, the images are those in the index.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping

from ._agreement import independent_reads, left_out_reads
from ._database import AnnotationIndex
from ._export import reader_columns, unresolved
from ._storage import AnnotationStore
from ._worklist import list_images

#: Most worklist files counted. Not the Annotate page's limit (``_worklist.MAX_ENTRIES``,
#: a dropdown's): a coordinator asking what is left to read needs every file counted,
#: or the images past that limit would not count as unread. This one is the hash
#: cache's size, so that asking again reads no file twice.
COUNT_LIMIT = 50_000


class WorklistUnavailable(RuntimeError):
    """The worklist folder cannot be listed (gone, unmounted, unreadable): what it holds,
    hence what is left to read, is unknown. The message names no path; the cause does."""

    def __init__(self, cause: Exception) -> None:
        super().__init__("the worklist folder (SONOTRACE_WORKLIST_DIR) cannot be listed")
        self.cause = cause


def _by_image(rows: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    grouped: dict[str, list[Mapping]] = {}
    for row in rows:
        grouped.setdefault(row["image_sha256"], []).append(row)
    return grouped


def _disagreed(by_image: Mapping[str, list[Mapping]]) -> int:
    """How many images' readers' labels differ with nothing adjudicating them."""
    count = 0
    for versions in by_image.values():
        readable = sorted((r for r in versions if not r.get("damaged")),
                          key=lambda r: r["version"])
        if not readable:
            continue
        columns = reader_columns(((r["annotator"], r["final_label"]) for r in readable),
                                 bool(readable[-1].get("revises_other_reader")))
        count += unresolved(columns)
    return count


def _per_reader(rows: list[Mapping], reads: Mapping, left_out: list[dict]) -> list[dict]:
    """Per reader, by name: images read and saved, versions, last save, left out."""
    readers: dict[str, dict] = {}
    for row in rows:
        name = row["annotator"]
        if not name:  # a damaged record indexed after its damage: nobody's known
            continue
        mine = readers.setdefault(name, {"annotator": name, "read": 0, "saved": set(),
                                         "versions": 0, "last_saved_at": None, "left_out": 0})
        mine["saved"].add(row["image_sha256"])
        mine["versions"] += 1
        # ISO 8601 in UTC, all of one form: the text sorts as the time.
        mine["last_saved_at"] = max(mine["last_saved_at"] or "", row["saved_at"])
    for by_reader in reads.values():
        for name in by_reader:
            readers[name]["read"] += 1
    for item in left_out:
        if item["annotator"] in readers:
            readers[item["annotator"]]["left_out"] += 1
    return [mine | {"saved": len(mine["saved"])} for _, mine in sorted(readers.items())]


def reading_progress(rows: Iterable[Mapping], worklist: Collection[str] | None = None) -> dict:
    """Each reader's progress, and the study's, over the images of ``worklist``.

    Parameters
    ----------
    rows : iterable of mapping
        Index rows (:meth:`AnnotationIndex.progress_rows`, or whole rows), with
        ``image_sha256``, ``version``, ``annotator``, ``saved_at``, ``final_label``,
        and optionally ``revises_other_reader`` and ``damaged``.
    worklist : collection of str, optional
        The SHA-256 of the worklist's images; None counts the images in ``rows``.

    Returns
    -------
    dict
        ``images`` (counted), ``read`` (with a read by at least one reader),
        ``unread``, ``read_by_two_or_more`` (independent reads by two or more
        readers), ``disagreed``, ``left_out`` (damaged versions that may have been
        a reader's read: the counts may miss them), ``outside_worklist`` (images in
        ``rows`` that are not in ``worklist``; None without one), and ``readers``:
        ``[{"annotator", "read", "saved", "versions", "last_saved_at", "left_out"}]``
        sorted by name, ``saved`` counting images, ``versions`` the versions of them.
    """
    rows = list(rows)
    saved = {row["image_sha256"] for row in rows}
    images = saved if worklist is None else set(worklist)
    rows = [row for row in rows if row["image_sha256"] in images]
    reads = independent_reads(rows)
    left_out = left_out_reads(rows)
    read = len(reads)  # an image is in it with one read or more
    return {
        "images": len(images),
        "read": read,
        "unread": len(images) - read,
        "read_by_two_or_more": sum(1 for by_reader in reads.values() if len(by_reader) >= 2),
        "disagreed": _disagreed(_by_image(rows)),
        "left_out": len(left_out),
        "outside_worklist": None if worklist is None else len(saved - images),
        "readers": _per_reader(rows, reads, left_out),
    }


def index_progress(
    index: AnnotationIndex,
    store: AnnotationStore,
    worklist_dir: str | os.PathLike | None = None,
    max_bytes: int | None = None,
) -> dict:
    """:func:`reading_progress` of every version in ``index``, over the worklist's images.

    Parameters
    ----------
    index : AnnotationIndex
        Where the saved versions are listed (:meth:`AnnotationIndex.progress_rows`).
    store : AnnotationStore
        The data directory: its damaged records are read again first where due
        (:meth:`AnnotationIndex.recheck_damaged`), so one restored counts.
    worklist_dir : str or os.PathLike, optional
        The worklist folder (``SONOTRACE_WORKLIST_DIR``); None counts the images in
        the index.
    max_bytes : int, optional
        The upload limit: a larger worklist file cannot be opened, so it is not hashed
        and counts as no image (``worklist["too_large"]`` says how many).

    Returns
    -------
    dict
        :func:`reading_progress`'s, plus ``worklist``: None without one, else
        ``{"files", "found", "too_large", "truncated"}``, the files counted, found, over
        the upload limit, and whether more were found than counted (past
        :data:`COUNT_LIMIT`, whose images are not counted; the Annotate page's shorter
        list does not cut these counts).

    Raises
    ------
    annotation_client._database.IndexUnavailable
        When the index cannot be read.
    WorklistUnavailable
        When the worklist folder cannot be listed.
    """
    listing = None
    if worklist_dir is not None:
        try:
            listing = list_images(worklist_dir, store, max_bytes=max_bytes,
                                  limit=COUNT_LIMIT)
        except (OSError, ValueError) as exc:  # ValueError: no longer a folder
            raise WorklistUnavailable(exc) from exc
    index.recheck_damaged(store.root)  # never raises: progress_rows says if it fails
    rows = index.progress_rows()
    if listing is None:
        return reading_progress(rows) | {"worklist": None}
    shas = {entry.sha256 for entry in listing.entries if entry.sha256}
    return reading_progress(rows, shas) | {"worklist": {
        "files": len(listing.entries),
        "found": listing.found,
        "too_large": sum(entry.too_large for entry in listing.entries),
        "truncated": listing.truncated,
    }}
