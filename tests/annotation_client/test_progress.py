"""Reading progress: per reader and per study, from hand-made saves in a real index.

Each version is saved as the Annotate page saves it (``_saved_data.save_version``) into a
data directory in tmp_path, indexed by a real :class:`AnnotationIndex` (SQLite; the
counts also on PostgreSQL through ``db_url``). The study of :func:`study`:

- image A: Dr Ada v1 benign, Dr Bo v2 malignant: two reads that disagree, nothing
  adjudicated;
- image B: Dr Ada v1 benign, Dr Bo v2 benign *revising Dr Ada's v1*: no read of Dr Bo's,
  so one read;
- image C: Dr Bo v1 normal, Dr Cy v2 benign, Dr Chair v3 normal revising Dr Cy's v2: two
  reads whose labels differ, but the latest version adjudicated them.
"""

from __future__ import annotations

import datetime as dt
import doctest
import hashlib
from pathlib import Path

import numpy as np
import pytest
from _saved_data import SHA_A, SHA_B, UTC, png_bytes, save_version

from annotation_client import _agreement, _export, _progress
from annotation_client._database import AnnotationIndex, default_url
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.usefixtures("an_app_exists")

SHA_C = "c3" * 32


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2024, 6, day, hour, tzinfo=UTC)


def revising(version: int, annotator: str) -> dict:
    """``based_on`` of a version loaded to revise ``annotator``'s ``version``."""
    return {"version": version, "annotator": annotator, "readers": [annotator]}


def save_study(data_dir, index=None) -> dict[str, str]:
    """The study of the module docstring; returns each version's record path."""
    def save(sha, annotator, label, when, **kwargs):
        return save_version(data_dir, sha, annotator=annotator, label=label, saved_at=when,
                            index=index, **kwargs)

    return {
        "a1": save(SHA_A, "Dr Ada", "benign", at(1)),
        "a2": save(SHA_A, "Dr Bo", "malignant", at(2)),
        "b1": save(SHA_B, "Dr Ada", "benign", at(1, 10)),
        "b2": save(SHA_B, "Dr Bo", "benign", at(3), based_on=revising(1, "Dr Ada")),
        "c1": save(SHA_C, "Dr Bo", "normal", at(2, 10)),
        "c2": save(SHA_C, "Dr Cy", "benign", at(4)),
        "c3": save(SHA_C, "Dr Chair", "normal", at(5), based_on=revising(2, "Dr Cy")),
    }


def reader(name, read, saved, versions, last, left_out=0) -> dict:
    return {"annotator": name, "read": read, "saved": saved, "versions": versions,
            "last_saved_at": last, "left_out": left_out}


#: The study's progress, counted by hand.
EXPECTED = {
    "images": 3, "read": 3, "unread": 0, "read_by_two_or_more": 2, "disagreed": 1,
    "left_out": 0, "outside_worklist": None, "worklist": None,
    "readers": [
        reader("Dr Ada", 2, 2, 2, "2024-06-01T10:00:00Z"),
        # Three images saved, but B only as a revision of Dr Ada's: two reads.
        reader("Dr Bo", 2, 3, 3, "2024-06-03T09:00:00Z"),
        reader("Dr Chair", 0, 1, 1, "2024-06-05T09:00:00Z"),  # adjudicated only
        reader("Dr Cy", 1, 1, 1, "2024-06-04T09:00:00Z"),
    ],
}


@pytest.fixture
def study(data_dir) -> dict[str, str]:
    return save_study(data_dir)


def _cut_short(record) -> None:
    """Truncate a record file inside its annotator's name: it no longer parses."""
    whole = Path(record).read_bytes()
    Path(record).write_bytes(whole[: whole.index(b'"annotator": "') + 17])


# --------------------------------------------------------------------------- the counts


def test_the_docstring_examples_of_the_reused_rules_hold():
    assert doctest.testmod(_export).failed == 0
    assert doctest.testmod(_agreement).failed == 0


def test_the_study_counted_from_the_index_as_by_hand(db_url, data_dir):
    index = AnnotationIndex(db_url)
    save_study(data_dir, index)
    try:
        assert _progress.index_progress(index, AnnotationStore(data_dir)) == EXPECTED
    finally:
        index.dispose()


def test_the_images_read_twice_are_those_reader_agreement_compares(data_dir, study):
    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    progress = _progress.index_progress(index, store)
    agreement = _agreement.index_agreement(index, store)
    assert progress["read_by_two_or_more"] == agreement["images"] == 2
    index.dispose()


def test_a_revision_of_anothers_version_is_no_read_until_the_reader_reads_it_alone(data_dir,
                                                                                   study):
    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    # Dr Cy revises Dr Bo's revision of Dr Ada's B: still no read of B by Dr Cy, and
    # the latest version adjudicated, whatever the labels.
    save_version(data_dir, SHA_B, annotator="Dr Cy", label="malignant", saved_at=at(6),
                 based_on={"version": 2, "annotator": "Dr Bo", "readers": ["Dr Ada", "Dr Bo"]},
                 index=index)
    result = _progress.index_progress(index, store)
    assert (result["read_by_two_or_more"], result["disagreed"]) == (2, 1)
    assert result["readers"][3] == reader("Dr Cy", 1, 2, 2, "2024-06-06T09:00:00Z")
    # Then he saves B from the AI's outline, on his own: now a read, and B has two that
    # disagree (Dr Ada benign, Dr Cy normal; Dr Bo's benign), adjudicated by nothing.
    save_version(data_dir, SHA_B, annotator="Dr Cy", label="normal", saved_at=at(7),
                 index=index)
    result = _progress.index_progress(index, store)
    assert (result["read_by_two_or_more"], result["disagreed"]) == (3, 2)
    assert result["readers"][3] == reader("Dr Cy", 2, 2, 3, "2024-06-07T09:00:00Z")
    index.dispose()


@pytest.mark.parametrize("rebuilt", [False, True], ids=["old-index", "rebuilt-index"])
def test_a_damaged_record_is_no_read_and_is_counted_apart(data_dir, study, rebuilt):
    """Dr Cy's C v2 damaged: C has one read (Dr Bo's), and the damaged version is left
    out, Dr Cy's when the index knew it as his before. Restored, it counts again."""
    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    whole = Path(study["c2"]).read_bytes()
    _cut_short(study["c2"])
    if rebuilt:
        index.dispose()
        (data_dir / "index.sqlite3").unlink()
        index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    result = _progress.index_progress(index, store)
    cy = [] if rebuilt else [reader("Dr Cy", 0, 1, 1, "2024-06-04T09:00:00Z", left_out=1)]
    assert result == EXPECTED | {
        "read_by_two_or_more": 1, "left_out": 1,
        "readers": EXPECTED["readers"][:3] + cy,
    }
    # Restored from a backup: read again before counting, without a sync.
    Path(study["c2"]).write_bytes(whole)
    assert _progress.index_progress(index, store) == EXPECTED
    index.dispose()


def _png(seed: int) -> bytes:
    return png_bytes(np.add.outer(np.arange(12), np.arange(16)) % (3 + seed) == 0)


def test_with_a_worklist_its_images_are_counted_each_once(tmp_path, data_dir):
    """Five files: one.png and its copy (one image), two.png, never.png (no save) and
    big.png, over the upload limit. Dr Ada read one and two, Dr Bo one; Dr Cy's upload
    is in no worklist file and counts apart."""
    folder = tmp_path / "worklist"
    (folder / "study").mkdir(parents=True)
    files = {"one.png": _png(0), "study/copy of one.png": _png(0), "two.png": _png(1),
             "never.png": _png(2), "big.png": b"\x89PNG" + bytes(5000)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    index = AnnotationIndex(default_url(data_dir))
    for sha_of, annotator, day in (("one.png", "Dr Ada", 1), ("one.png", "Dr Bo", 2),
                                   ("two.png", "Dr Ada", 3)):
        save_version(data_dir, sha[sha_of], annotator=annotator, label="benign",
                     worklist_path=sha_of, saved_at=at(day), index=index)
    save_version(data_dir, SHA_C, annotator="Dr Cy", label="benign", saved_at=at(4),
                 index=index)
    result = _progress.index_progress(index, AnnotationStore(data_dir), folder, max_bytes=4000)
    assert result == {
        "images": 3, "read": 2, "unread": 1, "read_by_two_or_more": 1, "disagreed": 0,
        "left_out": 0, "outside_worklist": 1,
        "worklist": {"files": 5, "found": 5, "too_large": 1, "truncated": False},
        "readers": [reader("Dr Ada", 2, 2, 2, "2024-06-03T09:00:00Z"),
                    reader("Dr Bo", 1, 1, 1, "2024-06-02T09:00:00Z")],
    }
    index.dispose()


def test_nothing_saved_yet_counts_the_worklist_as_unread():
    assert _progress.reading_progress([], {"x" * 64, "y" * 64}) == {
        "images": 2, "read": 0, "unread": 2, "read_by_two_or_more": 0, "disagreed": 0,
        "left_out": 0, "outside_worklist": 0, "readers": []}
    assert _progress.reading_progress([])["images"] == 0
