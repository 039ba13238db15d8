"""Soft claims on worklist entries (annotation_client._claims), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading

import dash
import numpy as np
import pytest
import sqlalchemy as sa
from _dash_helpers import as_callback, text_of
from _saved_data import png_bytes

from annotation_client import _claims, _views, _worklist, create_app, ids
from annotation_client._claims import CLAIM_MINUTES, Claim, Claims, claims_of
from annotation_client._database import SCHEMA_VERSION, AnnotationIndex, SavedRow, SchemaRow


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def index(db_url):
    made = AnnotationIndex(db_url)
    yield made
    made.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def book(index, clock):
    return Claims(index.engine, clock=clock)


def test_a_claim_is_seen_by_other_pages_not_its_own(book, clock):
    book.claim("page-a", "case01.png", sha256="a" * 64, reader="Dr A")
    assert book.held_by_others("page-a") == {}
    seen = book.held_by_others("page-b")
    assert list(seen) == ["case01.png"]
    assert seen["case01.png"] == Claim("page-a", "case01.png", "a" * 64, "Dr A", clock.now)


def test_a_claim_moves_when_its_page_opens_another_entry(book):
    book.claim("page-a", "case01.png", reader="Dr A")
    book.claim("page-a", "case02.png", reader="Dr A")
    assert list(book.held_by_others("page-b")) == ["case02.png"]


def test_release_ends_the_claim_only_on_its_entry(book):
    book.claim("page-a", "case01.png")
    book.release("page-a", "case02.png")  # a save of another entry: the claim stands
    assert list(book.held_by_others("page-b")) == ["case01.png"]
    book.release("page-a", "case01.png")
    assert book.held_by_others("page-b") == {}


def test_a_readers_claims_from_their_other_pages_are_not_anothers(book):
    # A tab Dr A closed kept its claim: their new tab was told "Dr A opened this image
    # ... and has not saved it yet", and Open next passed over the case for them.
    book.claim("page-a", "case01.png", reader="Dr A")
    book.claim("page-b", "case02.png", reader="Dr B")
    book.claim("page-x", "case03.png")  # a page that named nobody
    assert list(book.held_by_others("page-a2", "Dr A")) == ["case02.png", "case03.png"]
    assert list(book.held_by_others("page-c", "Dr C")) == [
        "case01.png", "case02.png", "case03.png"]
    assert book.claim_first("page-a2", ["case01.png", "case02.png"], reader="Dr A") == (
        "case01.png")
    assert book.claim_first("page-c", ["case01.png", "case02.png", "case04.png"],
                            reader="Dr C") == "case04.png"


def test_a_save_ends_the_readers_claims_on_the_entry_from_every_page(book):
    book.claim("page-a", "case01.png", reader="Dr A")  # a tab closed since
    book.claim("page-b", "case01.png", reader="Dr B")  # another reader has it open too
    book.claim("page-a3", "case02.png", reader="Dr A")
    book.claim("page-a2", "case01.png", reader="Dr A")
    book.release("page-a2", "case01.png", reader="Dr A")  # saved in the new tab
    seen = book.held_by_others("page-c")
    assert {p: c.reader for p, c in seen.items()} == {"case01.png": "Dr B",
                                                      "case02.png": "Dr A"}


def test_a_copy_of_a_claimed_image_under_another_path_counts_as_claimed(book):
    # The same bytes at two paths are one image: two readers saved versions of it at
    # once, each unwarned.
    book.claim("page-a", "case01.png", sha256="a" * 64, reader="Dr A")
    taken = book.held_by_others("page-b", "Dr B")
    assert _claims.held(taken, "copies/case01.png", "a" * 64).path == "case01.png"
    assert _claims.held(taken, "copies/case01.png", "b" * 64) is None
    assert _claims.held(taken, "copies/case01.png") is None  # no hash known
    assert book.claim_first("page-b", ["copies/case01.png", "case02.png"],
                            shas={"copies/case01.png": "a" * 64, "case02.png": "b" * 64},
                            reader="Dr B") == "case02.png"


def test_claims_made_at_the_same_time_are_told_alike_whatever_order_they_were_made(book):
    # With one clock reading for all (two clients, or this fixed clock), the claim a
    # page was told of was the one the database listed last: SQLite and PostgreSQL may
    # list them otherwise, and a page could name Dr A, then Dr B.
    told = []
    for order in (("page-a", "page-b"), ("page-b", "page-a")):
        for page in order:
            book.claim(page, "case01.png", sha256="a" * 64, reader=f"Dr {page[-1].upper()}")
            # a copy of the image under a second path, claimed by a third reader at once
            book.claim(f"{page}-copy", "copies/case01.png", sha256="a" * 64,
                       reader=f"Dr {page[-1].upper()}2")
        taken = book.held_by_others("page-c", "Dr C")
        told.append(({p: c.reader for p, c in taken.items()}, list(taken),
                     _claims.held(taken, "again/case01.png", "a" * 64).page))
        for page in order:
            book.release(page)
            book.release(f"{page}-copy")
    assert told[0] == told[1]
    # the page whose token sorts last stands for the path
    assert told[0][0] == {"case01.png": "Dr B", "copies/case01.png": "Dr B2"}


def test_a_claim_lapses_after_the_claim_minutes(book, clock):
    book.claim("page-a", "case01.png")
    clock.now += CLAIM_MINUTES * 60 - 1
    assert list(book.held_by_others("page-b")) == ["case01.png"]
    clock.now += 2
    assert book.held_by_others("page-b") == {}


def test_a_token_the_table_cannot_hold_claims_nothing_and_stops_no_other_page(book):
    # The token comes from the browser's session store. One of 70 characters was cut
    # to 64 when written but not when moved: its second claim clashed with its first,
    # and the claims rested for 30 s for every page, so Next gave two readers one case.
    for bad in ("p" * 70, 12345, ["page"], ""):
        book.claim(bad, "case01.png", reader="Dr X")
        book.claim(bad, "case02.png", reader="Dr X")
        assert book.claim_first(bad, ["case03.png"]) == "case03.png"  # chosen, not claimed
        book.release(bad, "case03.png")
        assert book.held_by_others(bad) == {}
    book.claim("page-a", "case01.png", reader="Dr A")
    assert list(book.held_by_others("page-b")) == ["case01.png"]
    assert book.claim_first("page-c", ["case01.png", "case02.png"]) == "case02.png"
    # The longest a token may be is kept whole.
    book.claim("q" * 64, "case04.png")
    book.claim("q" * 64, "case05.png")
    assert sorted(book.held_by_others("page-b")) == ["case01.png", "case02.png", "case05.png"]


def test_lapsed_claims_are_removed_as_others_are_written(book, index, clock):
    book.claim("page-a", "case01.png")
    clock.now += CLAIM_MINUTES * 60 + 1
    book.claim("page-b", "case02.png")
    with index.engine.connect() as conn:
        pages = conn.scalars(sa.select(_claims.CLAIMS.c.page)).all()
    assert pages == ["page-b"]


def test_claim_first_skips_entries_claimed_by_other_pages(book):
    book.claim("page-b", "case01.png", reader="Dr B")
    chosen = book.claim_first("page-a", ["case01.png", "case02.png"], reader="Dr A")
    assert chosen == "case02.png"
    assert book.held_by_others("page-b")["case02.png"].reader == "Dr A"
    # every candidate taken: None, and the page's claim is left where it was
    assert book.claim_first("page-c", ["case01.png", "case02.png"]) is None


def test_claim_first_keeps_the_pages_own_entry(book):
    book.claim("page-a", "case01.png")
    assert book.claim_first("page-a", ["case01.png", "case02.png"]) == "case01.png"


def test_two_pages_asking_together_get_two_entries(index, clock):
    # Each thread its own Claims (as each gunicorn worker has), one database.
    books = [Claims(index.engine, clock=clock) for _ in range(4)]
    paths = [f"case{n:02d}.png" for n in range(1, 9)]
    chosen, barrier = [None] * 4, threading.Barrier(4)

    def ask(n):
        barrier.wait()
        chosen[n] = books[n].claim_first(f"page-{n}", paths)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(chosen) == paths[:4]


def test_the_claims_table_is_no_part_of_the_index_layout(index, book, db_url):
    """Made on first use beside the index's table, which keeps its layout and rows."""
    index.add_many([])  # nothing: the index is not even made yet
    book.claim("page-a", "case01.png")
    names = set(sa.inspect(index.engine).get_table_names())
    assert "worklist_claims" in names
    assert "worklist_claims" not in SavedRow.metadata.tables
    # The index made afterwards finds its own layout and keeps the claims.
    assert index.query() == []
    with index.engine.connect() as conn:  # the layout recorded is the index's own
        assert conn.scalar(sa.select(sa.func.max(SchemaRow.version))) == SCHEMA_VERSION
    assert list(Claims(index.engine).held_by_others("page-b")) == ["case01.png"]


def test_claims_made_after_the_index(index, book):
    assert index.query() == []  # the index's tables first
    book.claim("page-a", "case01.png")
    assert list(book.held_by_others("page-b")) == ["case01.png"]


def test_a_database_that_fails_stops_nothing(tmp_path, caplog):
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the database's folder should be")
    broken = Claims(sa.create_engine(f"sqlite:///{folder / 'index.sqlite3'}"))
    with caplog.at_level(logging.WARNING, logger="annotation_client._claims"):
        broken.claim("page-a", "case01.png")
        assert broken.held_by_others("page-b") == {}
        assert broken.claim_first("page-a", ["case01.png", "case02.png"]) == "case01.png"
        broken.release("page-a")
    # Logged once, then left alone for RETRY_S: a server that is down costs its
    # connect timeout once, not at every listing.
    assert caplog.text.count("worklist claims could not") == 1


def test_after_a_failure_the_database_is_asked_again_later(tmp_path, monkeypatch):
    folder = tmp_path / "later"
    folder.write_text("in the way")
    book = Claims(sa.create_engine(f"sqlite:///{folder / 'index.sqlite3'}"))
    book.claim("page-a", "case01.png")  # fails: rests
    folder.unlink()
    folder.mkdir()
    book.claim("page-a", "case01.png")  # resting: not asked
    assert book.held_by_others("page-b") == {}
    now = _claims.time.monotonic()
    monkeypatch.setattr(_claims.time, "monotonic", lambda: now + _claims.RETRY_S + 1)
    book.claim("page-a", "case01.png")
    assert list(book.held_by_others("page-b")) == ["case01.png"]


def test_claims_of_gives_one_book_per_index(index):
    assert claims_of(index) is claims_of(index)
    assert claims_of(index).engine is index.engine


def test_the_sentence_says_who_and_how_long_ago():
    claim = Claim("p", "case01.png", None, "Dr B", 1000.0)
    assert claim.sentence(1000.0 + 3 * 60 + 20) == (
        "Dr B opened this image 3 minutes ago and has not saved it yet."
    )
    assert claim.sentence(1010.0).startswith("Dr B opened this image less than a minute ago")
    # No name: maybe the same person's earlier tab, not "another reader".
    assert Claim("p", "x", None, None, 0.0).sentence(60.0) == (
        "This image was opened 1 minute ago on another page that named no reader (another "
        "reader's, or an earlier tab of yours), and it has not been saved since."
    )


def _entry(path, version=0, too_large=False):
    return _worklist.WorklistEntry(path, 10, None if too_large else "0" * 64, version, too_large)


def test_next_unannotated_skips_claimed_entries():
    entries = [_entry("a.png"), _entry("b.png"), _entry("c.png", version=1), _entry("d.png")]
    assert _worklist.next_unannotated(entries, "a.png", skip={"b.png"}).path == "d.png"
    assert _worklist.next_unannotated(entries, "a.png", skip={"b.png", "d.png"}) is None
    assert [e.path for e in _worklist.unannotated_order(entries, "b.png")] == ["d.png", "a.png"]


def test_the_dropdown_says_who_has_an_entry_open():
    entries = [_entry("a.png"), _entry("b.png", version=2)]
    claims = {"a.png": Claim("p", "a.png", None, "Dr B", 0.0),
              "b.png": Claim("p", "b.png", None, None, 0.0)}  # fmt: skip
    labels = [o["label"] for o in _views.worklist_options(entries, None, claims)]
    assert labels == ["a.png — not annotated · open by Dr B",
                      "b.png — saved v2 · open by another page (no name)"]  # fmt: skip


def test_the_dropdown_says_a_copy_of_an_entry_is_open_under_its_other_path():
    # cases/a.png and copies/a.png hold the same image; c.png another one.
    same, other = "1" * 64, "2" * 64
    entries = [_worklist.WorklistEntry("cases/a.png", 10, same, 0, False),
               _worklist.WorklistEntry("copies/a.png", 10, same, 0, False),
               _worklist.WorklistEntry("c.png", 10, other, 0, False),
               _worklist.WorklistEntry("huge.png", 10**9, None, 0, True)]
    claims = {"cases/a.png": Claim("p", "cases/a.png", same, "Dr B", 0.0)}
    labels = [o["label"] for o in _views.worklist_options(entries, None, claims)]
    assert labels[:3] == ["cases/a.png — not annotated · open by Dr B",
                          "copies/a.png — not annotated · open by Dr B as cases/a.png",
                          "c.png — not annotated"]
    assert "open by" not in labels[3]  # no hash (not read): not taken for a copy


def test_the_dropdown_shows_a_path_cleaned_and_keeps_it_as_the_value():
    path = "study\n1/\u202egnp.exe.png"
    entry = _worklist.WorklistEntry(path, 10, "1" * 64, 0, False)
    (option,) = _views.worklist_options([entry], path)
    assert option["label"] == "study_1/_gnp.exe.png — not annotated · open"
    assert option["value"] == path


# --------------------------------------------------------------------------- the page's hooks
# The callbacks called directly, in a request of the app, as test_readers.py does.

USER = "X-Forwarded-User"
ADA, BO = ({USER: name} for name in ("Dr Ada", "Dr Bo"))
BLINDED = {"ANNOTATOR_HEADER": USER, "BLINDED_READING": True}


def _worklist_app(tmp_path, **settings):
    folder = tmp_path / "worklist"
    folder.mkdir()
    for n, name in enumerate(("one.png", "two.png", "three.png")):
        data = png_bytes(np.add.outer(np.arange(12), np.arange(16)) % (3 + n) == 0)
        (folder / name).write_bytes(data)
    return create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder} | settings)


def _run(app, trigger, function, *args, headers=None):
    """``function(*args)`` as the callback of a Dash request fired by ``trigger``."""
    return as_callback(lambda: function(*args), trigger, app=app, headers=headers, value=1)


def _next(app, token, name=None, meta=None, headers=None, mark=""):
    """What Open next not annotated asks for on the page ``token``: (path or None, note)."""
    from annotation_client.pages import annotate

    request, _value, asked, pending, note = _run(
        app, f"{ids.WORKLIST_NEXT}.n_clicks", annotate.request_entry,
        None, 1, None, None, mark, meta, token, name, headers=headers)
    if asked:
        return pending, note
    return (None if request is dash.no_update else request["path"]), note


def _listing(app, token, meta=None, trigger="annotate-page-load.data", saved=None, name=None,
             headers=None):
    from annotation_client.pages import annotate

    options, note = _run(app, trigger, annotate.list_worklist, True, None, saved, meta, None,
                         token, name, headers=headers)
    return [o["label"] for o in options], text_of(note)


def _meta(app, path):
    from annotation_client.pages import annotate

    with app.server.test_request_context("/"):
        return annotate.open_worklist_entry({"path": path, "at": 1}, None)[0]


@pytest.mark.usefixtures("an_app_exists")
def test_next_skips_the_entry_another_page_opened_and_says_who(tmp_path):
    app = _worklist_app(tmp_path)
    first, _ = _next(app, "page-a", "Dr A")
    assert first == "one.png"
    # Dr B's page, a moment later: one.png is Dr A's, so two.png.
    assert _next(app, "page-b", "Dr B")[0] == "three.png"  # listed one, three, two
    labels, _note = _listing(app, "page-c")
    assert "one.png — not annotated · open by Dr A" in labels
    # Dr A's page opened one.png: its listing claims it again, and says nothing of others.
    meta = _meta(app, "one.png")
    labels, note = _listing(app, "page-a", meta, f"{ids.IMAGE_OPENED}.data", name="Dr A")
    assert "one.png — not annotated · open" in labels
    assert "opened this image" not in note
    # Dr C picks one.png all the same: it opens, and the page says whose it is.
    labels, note = _listing(app, "page-c", meta, f"{ids.IMAGE_OPENED}.data", name="Dr C")
    assert "Dr A opened this image less than a minute ago and has not saved it yet." in note


@pytest.mark.usefixtures("an_app_exists")
def test_two_pages_clicking_next_get_two_cases(tmp_path):
    app = _worklist_app(tmp_path)
    assert _next(app, "page-a", "Dr A")[0] == "one.png"
    assert _next(app, "page-b", "Dr B")[0] == "three.png"  # listed one, three, two
    assert _next(app, "page-c", "Dr C")[0] == "two.png"
    # Every case open elsewhere: the fourth page is told, and may still pick one.
    path, note = _next(app, "page-d", "Dr D")
    assert path is None and "open on other pages" in text_of(note)


@pytest.mark.usefixtures("an_app_exists")
def test_saving_ends_the_claim_and_another_upload_moves_it(tmp_path):
    app = _worklist_app(tmp_path)
    assert _next(app, "page-a", "Dr A")[0] == "one.png"
    meta = _meta(app, "one.png")
    # A saved version loaded to revise it (as on opening an entry that has one): the
    # reader goes on reading it, and the claim stays (it ended, as if saved).
    _listing(app, "page-a", meta, f"{ids.SAVED_WORK}.data", saved={"image": meta["sha256"]})
    assert any("open by" in label for label in _listing(app, "page-b")[0])
    # Saved: the claim ends (the entry is annotated anyway).
    _listing(app, "page-a", meta, f"{ids.SAVED_WORK}.data",
             saved={"image": meta["sha256"], "versions": [1]})
    assert not any("open by" in label for label in _listing(app, "page-b")[0])
    # Open again, then an upload opened over it: the claim goes with the entry.
    _listing(app, "page-a", meta, f"{ids.IMAGE_OPENED}.data")
    assert any("open by" in label for label in _listing(app, "page-b")[0])
    _listing(app, "page-a", dict(meta, worklist_path=None), f"{ids.IMAGE_OPENED}.data")
    assert not any("open by" in label for label in _listing(app, "page-b")[0])


@pytest.mark.usefixtures("an_app_exists")
def test_unsaved_work_claims_nothing_until_the_entry_opens(tmp_path):
    app = _worklist_app(tmp_path)
    path, _ = _next(app, "page-a", "Dr A", mark="dirty")  # asked first: no claim yet
    assert path == "one.png"
    assert _next(app, "page-b", "Dr B")[0] == "one.png"


@pytest.mark.usefixtures("an_app_exists")
def test_under_blinded_reading_claims_neither_skip_nor_show(tmp_path):
    app = _worklist_app(tmp_path, **BLINDED)
    assert _next(app, "page-a", headers=ADA)[0] == "one.png"
    # Dr Bo is to read every image too: one.png is not skipped for Dr Ada's page.
    assert _next(app, "page-b", headers=BO)[0] == "one.png"
    labels, note = _listing(app, "page-b", headers=BO)
    assert not any("open by" in label for label in labels)
    with app.server.app_context():
        from annotation_client._app import get_index

        names = sa.inspect(get_index().engine).get_table_names()
    assert "worklist_claims" not in names


@pytest.mark.usefixtures("an_app_exists")
def test_a_copy_of_an_open_image_is_said_open_and_passed_over(tmp_path):
    app = _worklist_app(tmp_path)
    folder = tmp_path / "worklist"
    (folder / "copies").mkdir()
    (folder / "copies" / "one.png").write_bytes((folder / "one.png").read_bytes())
    assert _next(app, "page-a", "Dr A")[0] == "copies/one.png"  # listed first
    # Dr B's Open next passes over one.png too: the same image.
    assert _next(app, "page-b", "Dr B")[0] == "three.png"
    # Dr C picks one.png all the same: the page says who has it open, and where.
    meta = _meta(app, "one.png")
    _labels, note = _listing(app, "page-c", meta, f"{ids.IMAGE_OPENED}.data", name="Dr C")
    assert note.endswith("Dr A opened this image less than a minute ago and has not saved "
                         "it yet. It is open there as copies/one.png, a copy of this file.")


def test_a_claim_saved_over_since_says_so():
    # Audit 1006 F2: "... and it has not been saved since" after another page saved it.
    unnamed, named = Claim("p", "x", None, None, 1000.0), Claim("p", "x", None, "Dr A", 1000.0)
    assert unnamed.sentence(1060.0, (1, 1030.0)) == (
        "This image was opened 1 minute ago on another page that named no reader (another "
        "reader's, or an earlier tab of yours); version 1 of it has been saved since."
    )
    assert named.sentence(1060.0, (2, 1030.0)) == (
        "Dr A opened this image 1 minute ago and has not saved it; version 2 of it has been "
        "saved since."
    )
    # A version saved before the claim says nothing of after it.
    assert unnamed.sentence(1060.0, (1, 990.0)).endswith("and it has not been saved since.")
    assert named.sentence(1060.0, (1, 990.0)).endswith("and has not saved it yet.")


@pytest.mark.usefixtures("an_app_exists")
def test_a_page_that_saved_an_image_another_page_has_open_is_not_told_it_is_unsaved(
        tmp_path):
    import datetime as dt

    from _saved_data import save_version

    app = _worklist_app(tmp_path)
    meta = _meta(app, "one.png")
    # A page that named nobody opens one.png; Dr B opens it too, and is told so.
    _listing(app, "page-a", meta, f"{ids.IMAGE_OPENED}.data")
    _labels, note = _listing(app, "page-b", meta, f"{ids.IMAGE_OPENED}.data", name="Dr B")
    assert note.endswith("and it has not been saved since.")
    # Dr B saves it.
    with app.server.app_context():
        from annotation_client._app import get_index

        save_version(tmp_path / "data", meta["sha256"], name="one.png", annotator="Dr B",
                     saved_at=dt.datetime.now(dt.UTC), worklist_path="one.png",
                     index=get_index())
    _labels, note = _listing(app, "page-b", meta, f"{ids.SAVED_WORK}.data", name="Dr B",
                             saved={"image": meta["sha256"], "versions": [1]})
    assert "not been saved" not in note
    assert note.endswith("on another page that named no reader (another reader's, or an "
                         "earlier tab of yours); version 1 of it has been saved since.")
