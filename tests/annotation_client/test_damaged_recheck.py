"""Damaged records noticed and undone without a restart.

- A record that could not be read once (a passing I/O error) is read again at a later
  listing (:meth:`AnnotationIndex.recheck_damaged`): at once when its file changed, else
  once ``recheck_s`` seconds passed; never the records that read well.
- Damage that kept a record file's size and modification time, which no start notices,
  is marked when the record is opened (:meth:`AnnotationStore.load_record`, so *Load it
  to revise* and the Annotate page; the export), and the user is told it is damaged.
- Reader agreement lists the damaged versions it left out (:meth:`AnnotationIndex.left_out`).

The index-level tests run on SQLite and PostgreSQL; the page and API ones on the
client's default SQLite index.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import types
from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import text_of
from _saved_data import SHA_A, SHA_B, UTC, save_three, save_version

from annotation_client import _database, create_app
from annotation_client._agreement import reader_agreement
from annotation_client._app import INDEX_KEY
from annotation_client._database import AnnotationIndex, read_record
from annotation_client._export import export_busi
from annotation_client._storage import AnnotationStore, DamagedRecord

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def index(db_url):
    made = AnnotationIndex(db_url)
    yield made
    made.dispose()


@pytest.fixture
def clock(monkeypatch):
    """The index's clock (``time.monotonic``), moved on by hand: ``clock[0] += 61``."""
    now = [1000.0]
    monkeypatch.setattr(_database, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.fixture
def flaky(monkeypatch):
    """``flaky(path)``: the next read of that record file fails with an I/O error, once;
    ``flaky.reads`` lists every record file the index reads (sync, recheck_damaged)."""
    failing: set[str] = set()
    reads: list[str] = []
    read_text = Path.read_text

    def failing_once(self, *args, **kwargs):
        if str(self) in failing:
            failing.discard(str(self))
            raise OSError(errno.EIO, "Input/output error", str(self))
        return read_text(self, *args, **kwargs)

    def counted(path, image_sha256, version):
        reads.append(str(path))
        return read_record(path, image_sha256, version)

    monkeypatch.setattr(Path, "read_text", failing_once)
    monkeypatch.setattr(_database, "read_record", counted)

    def fail_once(path):
        failing.add(str(path))

    fail_once.reads = reads
    return fail_once


def _listed(index) -> dict[tuple[str, int], dict]:
    return {(r["image_sha256"], r["version"]): r for r in index.query()}


def _damage_in_place(path, old: bytes, new: bytes) -> None:
    """Change ``old`` to ``new`` (as long) in a file, and put its modification time back:
    its size and mtime, which sync compares, are as they were."""
    path = Path(path)
    before = path.stat()
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    path.write_bytes(data.replace(old, new, 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


# --------------------------------------------------------------------------- recheck


def test_a_record_that_failed_to_read_once_is_restored_at_a_later_listing(
    index, data_dir, flaky, clock
):
    """A passing I/O error at the start's sync marks a2 damaged; its file never changes.
    Listings within recheck_s read nothing again; the first after reads a2 alone, and
    its row is what the record says, annotator and label included."""
    paths = save_three(data_dir)
    flaky(paths["a2"])
    index.sync(data_dir)
    a2 = _listed(index)[(SHA_A, 2)]
    assert a2["damaged"] == f"[Errno 5] Input/output error: '{paths['a2']}'"
    assert (a2["annotator"], a2["final_label"]) == ("", None)  # never indexed before
    flaky.reads.clear()
    assert index.recheck_damaged(data_dir) == {"read": 0, "restored": 0}
    clock[0] += index.recheck_s - 1
    assert index.recheck_damaged(data_dir) == {"read": 0, "restored": 0}
    assert flaky.reads == []  # the sync just read it: nothing read again yet
    clock[0] += 1
    assert index.recheck_damaged(data_dir) == {"read": 1, "restored": 1}
    assert flaky.reads == [paths["a2"]]  # the damaged one only
    a2 = _listed(index)[(SHA_A, 2)]
    assert (a2["damaged"], a2["annotator"], a2["final_label"], a2["birads_assessment"]) == (
        None, "Dr Ada", "malignant", "4C")
    # Nothing damaged is left, so nothing is read again however late.
    clock[0] += 10 * index.recheck_s
    assert index.recheck_damaged(data_dir) == {"read": 0, "restored": 0}
    assert flaky.reads == [paths["a2"]]


def test_a_damaged_record_whose_file_changed_is_read_again_at_once(index, data_dir, clock):
    paths = save_three(data_dir)
    index.sync(data_dir)
    as_said = _listed(index)
    record = Path(paths["a2"])
    whole = record.read_bytes()
    record.write_bytes(whole[:60])
    index.sync(data_dir)
    assert _listed(index)[(SHA_A, 2)]["damaged"]
    # Still damaged, read again when due: the mark says why now, and stays.
    clock[0] += index.recheck_s
    record.write_bytes(b"{}")
    assert index.recheck_damaged(data_dir) == {"read": 1, "restored": 0}
    assert "missing or mistypes a field" in _listed(index)[(SHA_A, 2)]["damaged"]
    record.write_bytes(whole)  # restored from a backup: a new stamp
    assert index.recheck_damaged(data_dir) == {"read": 1, "restored": 1}
    assert _listed(index) == as_said


def test_a_damaged_row_of_another_data_folder_or_a_removed_file_is_left_alone(
    index, data_dir, tmp_path, flaky, clock
):
    paths = save_three(data_dir)
    flaky(paths["a2"])
    index.sync(data_dir)
    marked = _listed(index)[(SHA_A, 2)]
    clock[0] += index.recheck_s
    flaky.reads.clear()
    # A client of another data folder sharing the database does not touch it...
    assert index.recheck_damaged(tmp_path / "elsewhere") == {"read": 0, "restored": 0}
    # ...nor does one whose file is gone: the next start's sync drops the row.
    Path(paths["a2"]).unlink()
    assert index.recheck_damaged(data_dir) == {"read": 0, "restored": 0}
    assert flaky.reads == [] and _listed(index)[(SHA_A, 2)] == marked


def test_a_recheck_reads_at_most_max_recheck_records(index, data_dir, flaky, clock,
                                                     monkeypatch):
    paths = save_three(data_dir)
    for key in paths:
        flaky(paths[key])
    index.sync(data_dir)
    monkeypatch.setattr(_database, "MAX_RECHECK", 2)
    clock[0] += index.recheck_s
    flaky.reads.clear()
    assert index.recheck_damaged(data_dir) == {"read": 2, "restored": 2}
    # The third at the next listing, though not due by time: it waited longest.
    assert index.recheck_damaged(data_dir) == {"read": 1, "restored": 1}
    assert sorted(flaky.reads) == sorted(paths.values())
    assert not any(r["damaged"] for r in index.query())


def test_a_recheck_never_raises_when_the_index_cannot_be_read(tmp_path, data_dir, caplog):
    (tmp_path / "blocker").write_text("a file, not a folder")
    broken = AnnotationIndex(f"sqlite:///{tmp_path / 'blocker' / 'index.sqlite3'}")
    assert broken.recheck_damaged(data_dir) == {"read": 0, "restored": 0}
    # The database itself cannot be opened: said so, not "damaged records" (audit 804 F6).
    assert f"annotation index {broken.safe_url} unavailable: " in caplog.text
    assert "damaged records" not in caplog.text
    broken.dispose()


def test_the_saved_page_and_the_api_list_a_record_readable_again_without_a_restart(
    data_dir, flaky
):
    """The start's sync hit a passing read error on a2: the page and the API list it as
    damaged; a minute later (recheck_s) they list it as it says, with no restart."""
    from annotation_client.pages import saved

    paths = save_three(data_dir)
    flaky(paths["a2"])
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()

    def page():
        with app.server.test_request_context("/_dash-update-component"):
            data, _, summary, names, note = saved.show_saved(True, None, None, "__any__",
                                                             False)
        return data, text_of(summary), names, note

    data, summary, names, note = page()
    assert data[0]["record_status"].startswith("damaged: [Errno 5] Input/output error")
    assert "Not counted: 1 version(s)" in summary and names == ["Dr Ada", "Dr Bo"]
    assert "reads it again when it next lists it" in text_of(note)
    assert client.get("/api/saved").get_json()["summary"]["damaged"] == 1
    app.server.config[INDEX_KEY].recheck_s = 0.0  # a minute has passed
    data, summary, names, note = page()
    assert [row["record_status"] for row in data] == ["ok", "ok", "ok"]
    assert (data[0]["version"], data[0]["final_label"], data[0]["annotator"]) == (
        2, "malignant", "Dr Ada")
    assert note is None and "Not counted" not in summary
    # The API too, through its own listing: damaged again at a load, restored at the next.
    flaky(paths["a2"])
    with pytest.raises(OSError, match="Input/output error"):
        AnnotationStore(data_dir, app.server.config[INDEX_KEY]).load_record(SHA_A, 2)
    assert app.server.config[INDEX_KEY].query(limit=1)[0]["damaged"]
    body = client.get("/api/saved").get_json()
    assert body["summary"]["damaged"] == 0 and body["rows"][0]["final_label"] == "malignant"


# --------------------------------------------------------------------------- on open


def test_damage_that_keeps_size_and_mtime_is_marked_when_the_record_is_loaded(
    index, data_dir
):
    """No sync notices it (the stamp is the same); loading the record does, says so, and
    the index lists it as damaged from then on. A record still JSON whose label is no
    longer one (a flipped byte) loads, but the index lists it as damaged, as a start
    whose sync read it would."""
    paths = save_three(data_dir)
    index.sync(data_dir)
    _damage_in_place(paths["a2"], b"{", b"[")
    _damage_in_place(paths["b1"], b'"Dr Bo"', b'"Dr B\\"')
    _damage_in_place(paths["a1"], b'"benign"', b'"bxnign"')
    assert index.sync(data_dir)["skipped"] == []  # the stamps say nothing changed
    assert not any(r["damaged"] for r in index.query())
    store = AnnotationStore(data_dir, index)
    with pytest.raises(DamagedRecord) as error:
        store.load_record(SHA_A, 2)
    # Said to be damaged, with what to do, not a JSON parser's words alone.
    assert str(error.value) == (
        f"the record file v002.json is damaged: {error.value.why}. Restore it from a "
        "backup; the Saved page lists it as damaged")
    assert error.value.why.startswith("Expecting")
    assert str(data_dir) not in str(error.value)  # the file, not the data directory
    assert isinstance(error.value, ValueError)  # what callers caught before
    with pytest.raises(DamagedRecord, match="Invalid control character"):
        store.load_record(SHA_B, 1)
    assert store.load_record(SHA_A, 1)["version"] == 1
    listed = _listed(index)
    assert all(row["damaged"] for row in listed.values())
    assert "label 'bxnign' is not one of" in listed[(SHA_A, 1)]["damaged"]
    assert listed[(SHA_A, 2)]["damaged"] == error.value.why
    assert listed[(SHA_A, 2)]["annotator"] == "Dr Ada"  # the row knew whose it was
    # Loading it again writes nothing new, and the next start's sync keeps the mark.
    with pytest.raises(DamagedRecord):
        store.load_record(SHA_A, 2)
    index.sync(data_dir)
    assert _listed(index) == listed


def test_a_record_loaded_without_an_index_is_reported_as_damaged_too(data_dir):
    paths = save_three(data_dir)
    Path(paths["a2"]).write_text("{not json")
    with pytest.raises(DamagedRecord, match=r"^the record file v002.json is damaged: "
                       r"Expecting property name .*\. Restore it from a backup$") as error:
        AnnotationStore(data_dir).load_record(SHA_A, 2)
    assert (error.value.path, error.value.version) == (Path(paths["a2"]), 2)
    with pytest.raises(FileNotFoundError):  # gone, not damaged
        AnnotationStore(data_dir).load_record(SHA_A, 9)


def test_load_it_to_revise_says_the_record_is_damaged_and_the_saved_page_lists_it(
    data_dir, annotate
):
    from annotation_client.pages import saved

    paths = save_three(data_dir)
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    _damage_in_place(paths["a2"], b'"version": 2', b'"version": 9')
    meta = {"sha256": SHA_A, "name": "left.png", "width": 4, "height": 3}
    with app.server.test_request_context("/_dash-update-component"):
        answer = annotate.load_saved(1, meta)
        data, *_ = saved.show_saved(True, None, None, "__any__", False)
    alert = answer[4]
    assert alert.id == "load-error"
    assert text_of(alert) == (
        "The saved version cannot be loaded. the record file v002.json is damaged: it holds "
        f"version 9 of {SHA_A[:12]}, not its file's. Restore it from a backup; the Saved "
        "page lists it as damaged")
    assert data[0]["version"] == 2
    assert data[0]["record_status"] == (
        f"damaged: it holds version 9 of {SHA_A[:12]}, not its file's")


def test_an_export_marks_a_damaged_latest_record_in_the_index(index, data_dir, tmp_path):
    paths = save_three(data_dir)
    index.sync(data_dir)
    _damage_in_place(paths["b1"], b"{", b"[")
    report = export_busi(data_dir, None, tmp_path / "out", index=index)
    reasons = dict(report.skipped)
    assert reasons[str(data_dir / SHA_B)].startswith(
        "the record of its latest version, v001.json, is damaged: ")
    assert _listed(index)[(SHA_B, 1)]["damaged"]
    assert not _listed(index)[(SHA_A, 2)]["damaged"]  # no worklist: skipped, not damaged
    with pytest.raises(TypeError, match="index"):
        export_busi(data_dir, None, tmp_path / "out2", index="sqlite://")


# --------------------------------------------------------------------------- left out


def _mark(index, sha, version, why="cut short"):
    index.report_damaged(sha, version, f"/nowhere/{sha}/v{version:03d}.json", why)


def test_left_out_lists_the_damaged_versions_that_may_have_been_a_read(index, data_dir):
    """A damaged version is no read; it is listed unless its reader saved a readable,
    independent version of the image after it. One whose reader is unknown always is."""
    def save(sha, annotator, day, **kw):
        return save_version(data_dir, sha, annotator=annotator, index=index,
                            saved_at=dt.datetime(2024, 6, day, tzinfo=UTC), **kw)

    save(SHA_A, "Ada", 1)  # A1
    save(SHA_A, "Ada", 2)  # A2, damaged: Ada's A3 is her read
    save(SHA_A, "Ada", 3)  # A3
    save(SHA_A, "Bo", 4)  # A4, damaged: Bo's only read -> listed
    save(SHA_A, "Bo", 5, based_on={"version": 3, "annotator": "Ada",
                                   "readers": ["Ada"]})  # A5 revises Ada's: no read
    save(SHA_B, "Cy", 6)  # B1, damaged
    for version in (2, 4):
        _mark(index, SHA_A, version)
    _mark(index, SHA_B, 1)
    _mark(index, SHA_B, 7, "never indexed")  # a row with no annotator
    left = index.left_out()
    # Newest first; the row never indexed is dated by its (missing) files: 1970.
    assert [(r["image_sha256"], r["version"], r["annotator"]) for r in left] == [
        (SHA_B, 1, "Cy"), (SHA_A, 4, "Bo"), (SHA_B, 7, "")]
    assert left[2]["damaged"] == "never indexed"
    assert [r["version"] for r in index.left_out(1)] == [1]
    with pytest.raises(ValueError, match="limit"):
        index.left_out(0)


def test_reader_agreement_lists_damaged_rows_it_is_given_as_left_out():
    def row(version, annotator, damaged=None, **kw):
        return {"image_sha256": "e" * 64, "annotator": annotator, "version": version,
                "final_label": None if damaged else "benign", "width": 4, "height": 2,
                "damaged": damaged, "image_name": "x.png",
                "record_path": f"/data/{'e' * 64}/v{version:03d}.json"} | kw

    rows = [row(1, "Ada"), row(2, "Ada", "cut short"), row(3, "Ada"),
            row(4, "Bo", f"[Errno 5] Input/output error: '/data/{'e' * 64}/v004.json'"),
            row(5, "", "not JSON")]
    result = reader_agreement(rows, lambda r: np.zeros((2, 4), bool))
    assert result["images"] == 0 and result["readers"] == []  # only Ada's read is left
    assert result["left_out"] == [
        {"image_sha256": "e" * 64, "image": "x.png", "annotator": "Bo", "version": 4,
         "reason": "[Errno 5] Input/output error: 'v004.json'"},
        {"image_sha256": "e" * 64, "image": "x.png", "annotator": None, "version": 5,
         "reason": "not JSON"},
    ]


def test_the_agreement_panel_names_the_damaged_versions_left_out(data_dir):
    from annotation_client.pages import saved

    paths = save_three(data_dir)
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    for key in ("a2", "b1"):
        _damage_in_place(paths[key], b"{", b"[")
        with pytest.raises(DamagedRecord):
            AnnotationStore(data_dir, app.server.config[INDEX_KEY]).load_record(
                SHA_A if key == "a2" else SHA_B, 2 if key == "a2" else 1)
    with app.server.test_request_context("/_dash-update-component"):
        shown = saved.show_agreement(1)
    text = text_of(shown)
    assert "nothing to compare" in text
    assert (f"2 damaged version(s) left out: left.png ({SHA_A[:12]}) v2 by Dr Ada, "
            f"study7/right.png ({SHA_B[:12]}) v1 by Dr Bo. Their record file cannot be "
            "read (first: ") in text
    assert [c.id for c in shown if getattr(c, "id", None)] == ["agreement-left-out"]
    many = {"images": 0, "dependent": [], "left_out": [
        {"image_sha256": SHA_A, "image": None, "annotator": None, "version": v,
         "reason": "cut short"} for v in range(1, 6)]}
    text = text_of(saved.agreement_view(many))
    assert (f"5 damaged version(s) left out: {SHA_A[:12]} v1, {SHA_A[:12]} v2, "
            f"{SHA_A[:12]} v3 and 2 more.") in text
    # An answer from before left_out (no key) shows no such line.
    assert "left out" not in text_of(saved.agreement_view({"images": 0, "dependent": []}))


def test_a_row_added_while_a_mark_is_written_is_marked(index, data_dir, monkeypatch, caplog):
    # The start-up sync adds B v1's row between the page's reading of the index (which
    # found none) and its insert of a damaged row: the insert's unique key fails, and the
    # mark goes on the row that is there now, with no error logged.
    paths = save_three(data_dir)
    index.sync(data_dir)
    known = index._known
    calls = []

    def found_nothing_first(session, shas):
        calls.append(shas)
        return {} if len(calls) == 1 else known(session, shas)

    monkeypatch.setattr(index, "_known", found_nothing_first)
    assert index.report_damaged(SHA_B, 1, paths["b1"], "cut short")
    assert len(calls) == 2
    assert _listed(index)[(SHA_B, 1)]["damaged"] == "cut short"
    assert _listed(index)[(SHA_B, 1)]["annotator"] == "Dr Bo"  # its row, kept
    assert "not marked" not in caplog.text
