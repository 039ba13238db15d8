"""The annotator's name from a sign-in proxy's header (``SONOTRACE_ANNOTATOR_HEADER``).

First :func:`signed_in_name` on plain header mappings, then the Annotate page's
``save``, ``recall_annotator`` and ``remember_annotator`` and its layout, called
directly inside ``app.server.test_request_context(headers=...)``: the headers there
are the ones a proxy in front of the client would have added to the callback request.
Saves go to a real data directory and index in tmp_path.
"""

from __future__ import annotations

import json

import dash
import pytest
from _dash_helpers import as_callback, find_component, open_work, text_of
from dash.exceptions import PreventUpdate
from werkzeug.datastructures import Headers

from annotation_client import create_app, ids
from annotation_client._app import INDEX_KEY
from annotation_client._signin import (
    BIDI_CONTROLS,
    MAX_NAME_CHARS,
    SignInError,
    checked_name,
    reader_key,
    same_reader_spelled_otherwise,
    signed_in_name,
)
from annotation_client._signing import KEY_FILE
from annotation_client._storage import DATA_MARK

HEADER = "X-Forwarded-User"

pytestmark = pytest.mark.usefixtures("an_app_exists")


# --------------------------------------------------------------------------- signed_in_name


def test_the_name_is_the_header_value_stripped_whatever_the_case_of_its_name():
    headers = Headers({"x-forwarded-user": "  dr.ada@hospital.example\t"})
    assert signed_in_name(headers, HEADER) == "dr.ada@hospital.example"
    assert signed_in_name({"Remote-User": "ada"}, "Remote-User") == "ada"


def test_a_utf8_name_is_decoded_and_a_latin1_one_kept():
    # WSGI gives header bytes as Latin-1 text: "José" sent as UTF-8 arrives as "JosÃ©".
    utf8_as_latin1 = "José Núñez".encode().decode("latin-1")
    assert utf8_as_latin1 != "José Núñez"
    assert signed_in_name({HEADER: utf8_as_latin1}, HEADER) == "José Núñez"
    # b"Jos\xe9" is not UTF-8: it stays the Latin-1 it was read as.
    assert signed_in_name({HEADER: "José"}, HEADER) == "José"


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_no_name_is_refused_naming_the_header(value):
    headers = {} if value is None else {HEADER: value}
    with pytest.raises(SignInError, match=f"did not name the user.*{HEADER}"):
        signed_in_name(headers, HEADER)


def test_a_name_of_the_longest_length_is_kept_and_a_longer_one_refused():
    longest = "a" * MAX_NAME_CHARS
    assert MAX_NAME_CHARS == 200
    assert signed_in_name({HEADER: f" {longest} "}, HEADER) == longest
    with pytest.raises(SignInError, match=f"{HEADER}.*longer than 200 characters"):
        signed_in_name({HEADER: longest + "a"}, HEADER)


@pytest.mark.parametrize(
    "value",
    [
        "Ada\nEve",
        "Ada\rEve",
        "Ada\x00",
        "Ada\x1b[31m",  # a terminal escape, in a log line
        "Ada\x7f",
        "Ada\u2028Eve",  # a line separator
        "Ada\tEve",
        # UTF-8 of U+0085 (NEXT LINE, a C1 control), as WSGI hands it over.
        "Ada\u0085Eve".encode().decode("latin-1"),
    ],
)
def test_control_characters_are_refused_and_not_repeated(value):
    with pytest.raises(SignInError, match=f"{HEADER}.*control characters") as refused:
        signed_in_name({HEADER: value}, HEADER)
    assert "Ada" not in str(refused.value)


# --------------------------------------------------------------------------- the Annotate page


@pytest.fixture
def signed_in_app(data_dir):
    """The client behind a proxy that names the user in X-Forwarded-User."""
    return create_app(
        {"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9", "ANNOTATOR_HEADER": HEADER}
    )


def _save(app, annotate, typed, headers=None):
    """Click Save with ``typed`` in the Annotator field; the request carries ``headers``."""
    meta, history, image_data = open_work()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    with app.server.test_request_context(
        "/_dash-update-component", method="POST", headers=headers or {}
    ):
        alert, work = annotate.save(
            1, meta, history, None, None, "benign", "", typed, image_data, *blank
        )
    return json.dumps(alert.to_plotly_json(), default=lambda o: o.to_plotly_json()), work, meta


def _written(data_dir) -> list:
    """Files a save wrote: everything but the index, which the app creates at start."""
    # The index's file and the client's signing key are not annotations.
    return [p for p in data_dir.rglob("*")
            if p.is_file() and p.suffix != ".sqlite3"
            and p.name not in (KEY_FILE, DATA_MARK)]


def test_a_save_records_the_signed_in_user_not_the_typed_name(
    signed_in_app, annotate, data_dir
):
    headers = {HEADER: "  dr.ada@hospital.example "}
    text, work, meta = _save(signed_in_app, annotate, "Mallory", headers)
    assert "Saved." in text and work is not None
    record = json.loads((data_dir / meta["sha256"] / "v001.json").read_text())
    assert record["annotator"] == "dr.ada@hospital.example"
    rows = signed_in_app.server.config[INDEX_KEY].query()
    assert [row["annotator"] for row in rows] == ["dr.ada@hospital.example"]


def test_a_save_with_the_header_needs_no_typed_name(signed_in_app, annotate, data_dir):
    text, _work, meta = _save(signed_in_app, annotate, None, {HEADER: "ada"})
    assert "Saved." in text
    assert json.loads((data_dir / meta["sha256"] / "v001.json").read_text())["annotator"] == "ada"


@pytest.mark.parametrize("headers", [None, {HEADER: ""}, {HEADER: "   "}, {"Remote-User": "ada"}])
def test_without_the_header_the_save_is_refused_and_nothing_written(
    signed_in_app, annotate, data_dir, headers
):
    text, work, _meta = _save(signed_in_app, annotate, "Dr Typed", headers)
    assert "Not saved." in text
    assert "sign-in proxy did not name the user" in text and HEADER in text
    assert "Dr Typed" not in text
    assert work is annotate.dash.no_update
    assert _written(data_dir) == []
    assert signed_in_app.server.config[INDEX_KEY].query() == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        # (No line break: Werkzeug, like any HTTP server, cannot carry one in a header.)
        ("Ada\x00", "control characters"),
        ("Ada\tEve", "control characters"),
        ("Ada\x1b[2J", "control characters"),
        ("a" * 201, "longer than 200 characters"),
        ("Ada\u202eEve", "bidirectional formatting character"),
    ],
)
def test_a_header_that_is_no_sane_name_is_refused_and_nothing_written(
    signed_in_app, annotate, data_dir, value, reason
):
    # The test request holds the value as given; a real server hands over the same text.
    text, work, _meta = _save(signed_in_app, annotate, "Dr Typed", {HEADER: value})
    assert "Not saved." in text and reason in text and HEADER in text
    assert work is annotate.dash.no_update
    assert _written(data_dir) == []


def test_without_the_setting_no_header_is_trusted(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    # The typed name is recorded, whatever a header claims...
    text, _work, meta = _save(app, annotate, "Dr Typed", {HEADER: "mallory"})
    assert "Saved." in text
    record = json.loads((data_dir / meta["sha256"] / "v001.json").read_text())
    assert record["annotator"] == "Dr Typed"
    # ...and a header does not stand in for a missing one.
    text, _work, _meta = _save(app, annotate, "", {HEADER: "mallory"})
    assert "Not saved." in text and "Enter your name in Annotator" in text


def _items(component) -> list:
    """The list items (html.Li) in a component tree."""
    found = [component] if type(component).__name__ == "Li" else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found += _items(child)
    return found


def test_every_refusal_is_said_at_once(annotate, data_dir):
    # No name and a spacing typed but not Set: both said, not one per click.
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    meta, history, image_data = open_work()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)

    def save(typed, spacing):
        with app.server.test_request_context("/_dash-update-component", method="POST"):
            alert, work = annotate.save(1, meta, history, None, None, "benign", "", typed,
                                        image_data, *blank, spacing, None)
        assert work is annotate.dash.no_update and _written(data_dir) == []
        return alert

    both = save("", "0.08")
    reasons = [text_of(item) for item in _items(both)]
    assert len(reasons) == 2, reasons
    assert "Enter your name in Annotator" in reasons[1]
    assert reasons[0].startswith("The pixel spacing field shows 0.08 mm per pixel")
    assert text_of(both).startswith("Not saved.")
    # One reason is a sentence, not a list of one.
    alone = save("", "")
    assert _items(alone) == []
    assert text_of(alone) == "Not saved. Enter your name in Annotator before saving."


def test_a_typed_name_longer_than_the_index_holds_is_refused(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    text, work, _meta = _save(app, annotate, "a" * (MAX_NAME_CHARS + 1))
    assert "Not saved." in text and "longer than 200 characters" in text
    assert work is annotate.dash.no_update and _written(data_dir) == []
    text, _work, meta = _save(app, annotate, " " + "a" * MAX_NAME_CHARS + " ")
    assert "Saved." in text
    assert json.loads((data_dir / meta["sha256"] / "v001.json").read_text())["annotator"] == (
        "a" * MAX_NAME_CHARS
    )


def test_a_header_sent_twice_and_joined_is_refused(signed_in_app, annotate, data_dir):
    # A proxy that appends its header to the browser's: the WSGI server joins the two.
    text, work, _meta = _save(signed_in_app, annotate, "", {HEADER: "mallory,ada"})
    assert "Not saved." in text and "more than once" in text and HEADER in text
    assert "mallory" not in text and _written(data_dir) == []
    with pytest.raises(SignInError, match="comma"):
        signed_in_name({HEADER: "mallory, ada"}, HEADER)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("Ada\x00", "control characters"), ("Ada\u2028Eve", "control characters"),
     ("Dr A\u202eleM", "bidirectional formatting character"),
     ("Dr \u2067Ada\u2069", "bidirectional formatting character"),
     (5, "Enter your name"), (["Ada"], "Enter your name")],
)
def test_a_typed_name_that_cannot_be_recorded_is_refused(annotate, data_dir, typed, reason):
    # A script can post anything as the field's value; before, a number was a 500.
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    text, work, _meta = _save(app, annotate, typed)
    assert "Not saved." in text and reason in text
    assert work is annotate.dash.no_update and _written(data_dir) == []


def test_every_bidi_formatting_character_is_refused_but_not_the_joiners():
    for char in BIDI_CONTROLS:
        with pytest.raises(SignInError, match="bidirectional") as refused:
            checked_name(f"Dr A{char}da", "The name")
        assert "Dr A" not in str(refused.value)
    # Right-to-left names need no formatting character; Persian ones use the joiners.
    for name in ("\u062f. \u0633\u0627\u0631\u0629", "\u05d3\"\u05e8 \u05e8\u05d5\u05ea",
                 "\u0646\u200c\u0627"):
        assert checked_name(name, "The name") == name


def test_a_typed_name_with_a_comma_is_kept(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    text, _work, meta = _save(app, annotate, "Doe, Jane")
    assert "Saved." in text
    record = json.loads((data_dir / meta["sha256"] / "v001.json").read_text())
    assert record["annotator"] == "Doe, Jane"


def _recall(app, annotate, stored, headers=None, names=None, typed=None):
    """The field's value, whether it is disabled, its hint as JSON; the names offered go
    into ``names`` (a list) when given."""
    with app.server.test_request_context(
        "/_dash-update-component", method="POST", headers=headers or {}
    ):
        value, disabled, hint, offered = annotate.recall_annotator(True, stored, typed)
    if names is not None:
        names.extend(option.value for option in offered)
    return value, disabled, json.dumps(hint, default=lambda o: o.to_plotly_json())


def test_the_field_shows_the_signed_in_name_and_cannot_be_typed_in(signed_in_app, annotate):
    value, disabled, hint = _recall(signed_in_app, annotate, "Old Typed Name", {HEADER: " ada "})
    assert value == "ada" and disabled is True
    # Whatever the field held before the answer (it cannot be typed in).
    assert _recall(signed_in_app, annotate, None, {HEADER: "ada"}, typed="Dr B")[0] == "ada"
    assert "comes from the sign-in" in hint and HEADER in hint  # the tooltip names it


def test_the_field_says_so_when_the_proxy_names_nobody(signed_in_app, annotate):
    value, disabled, hint = _recall(signed_in_app, annotate, "Old Typed Name")
    assert value == "" and disabled is True
    assert "Saving is refused" in hint and "did not name the user" in hint


def test_without_the_setting_the_field_recalls_the_typed_name(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir})
    assert _recall(app, annotate, "Dr Typed", {HEADER: "mallory"}) == ("Dr Typed", False, "null")
    assert _recall(app, annotate, None) == (dash.no_update, False, "null")


def test_a_name_typed_before_the_page_answered_its_load_is_kept(annotate, data_dir):
    # On a busy machine the page-load answer can come after the reader started typing:
    # it must not put the kept name (another reader's, in a shared browser) or nothing
    # in place of what was typed.
    app = create_app({"DATA_DIR": data_dir})
    assert _recall(app, annotate, "Dr A", typed="Dr B")[0] is dash.no_update
    assert _recall(app, annotate, None, typed="Dr B")[0] is dash.no_update
    # An empty or blank field is still filled in with the kept name.
    assert _recall(app, annotate, "Dr A", typed=" ")[0] == "Dr A"
    assert _recall(app, annotate, "Dr A", typed=None)[0] == "Dr A"


def test_the_field_follows_a_sign_in_changed_without_a_reload(signed_in_app, annotate, data_dir):

    def poll(app, shown, headers=None):
        return as_callback(lambda: annotate.recall_annotator(None, None, shown, 3),
                           f"{ids.SERVER_POLL}.n_intervals", app=app, headers=headers, value=3)

    assert poll(signed_in_app, "ada", {HEADER: "bo"})[0] == "bo"
    # Unchanged: nothing sent, so nothing that follows the name runs again.
    with pytest.raises(PreventUpdate):
        poll(signed_in_app, "bo", {HEADER: "bo"})
    # Signed out: the field empties and says saving is refused, once.
    value, _disabled, hint, _names = poll(signed_in_app, "bo")
    assert value == "" and "Saving is refused" in text_of(hint)
    with pytest.raises(PreventUpdate):
        poll(signed_in_app, "")
    # Without the proxy, a typed name is left to the reader.
    with pytest.raises(PreventUpdate):
        poll(create_app({"DATA_DIR": data_dir}), "Dr Typed", {HEADER: "mallory"})


def test_work_begun_under_another_sign_in_is_not_saved_under_the_new_one(
    signed_in_app, annotate, data_dir
):
    # Audit 818 F1: between a change of sign-in and the poll that loads the page afresh,
    # Save would have recorded the last user's work under the new user's name.
    meta, history, image_data = open_work()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)

    def save(begun, user):
        with signed_in_app.server.test_request_context(
            "/_dash-update-component", method="POST", headers={HEADER: user}
        ):
            alert, work = annotate.save(1, meta, history, None, None, "benign", "note", user,
                                        image_data, *blank, None, None, None, None, None,
                                        None, None, begun)
        return json.dumps(alert.to_plotly_json(), default=lambda o: o.to_plotly_json()), work

    text, work = save("Dr B", "Dr E")
    assert "Not saved." in text and "Another user was signed in" in text and work is dash.no_update
    assert "Dr B" not in text  # under blinded reading not even the name is another's to see
    assert _written(data_dir) == []
    # The user the work was begun under, or a page that knew none, saves as before.
    assert "Saved." in save("Dr E", "Dr E")[0]
    assert "Nothing changed since version 1" in save(None, "Dr E")[0]  # not refused


def test_the_signed_in_name_is_not_kept_in_the_browser(signed_in_app, annotate, data_dir):
    with signed_in_app.server.test_request_context(headers={HEADER: "ada"}):
        with pytest.raises(PreventUpdate):
            annotate.remember_annotator("ada", None)
        # A name typed before the setting was turned on is cleared, not kept.
        assert annotate.remember_annotator("ada", "Old Typed Name") is None
    app = create_app({"DATA_DIR": data_dir})
    with app.server.test_request_context():
        assert annotate.remember_annotator(" Dr Typed ", None) == "Dr Typed"


@pytest.mark.parametrize("setting", [None, HEADER])
def test_the_layout_draws_the_field_disabled_only_behind_the_proxy(data_dir, setting):
    import dash

    app = create_app({"DATA_DIR": data_dir, "ANNOTATOR_HEADER": setting})
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context("/"):
        layout = page["layout"]()
    field = find_component(layout, ids.ANNOTATOR)
    assert field.disabled is (setting is not None)
    assert find_component(layout, ids.ANNOTATOR_HINT) is not None
    # Its suggestions: the datalist recall_annotator fills (left empty behind the proxy).
    assert field.list == ids.ANNOTATOR_NAMES
    assert find_component(layout, ids.ANNOTATOR_NAMES) is not None


# --------------------------------------------------------------------------- one reader, one name


def test_the_reader_key_ignores_case_spacing_and_unicode_form_only():
    assert reader_key("  Dr.  Ana\tLIMA ") == reader_key("dr. ana lima") == "dr. ana lima"
    # A composed and a decomposed é; a full-width letter; the German sharp s folded.
    assert reader_key("Jos\u00e9") == reader_key("Jose\u0301")
    assert reader_key("\uff21da") == reader_key("Ada")
    assert reader_key("Strau\u00df") == reader_key("STRAUSS")
    assert reader_key("Dr Ana Lima") != reader_key("Dr Ana Lima-Souza")
    assert reader_key("Ana Lima") != reader_key("AnaLima")


def test_another_spelling_of_a_known_name_is_found_and_an_exact_one_is_not():
    known = ["Dr Bo", "dr ana lima", "Dr Ana Lima"]
    assert same_reader_spelled_otherwise("DR ANA  LIMA", known) == "Dr Ana Lima"
    assert same_reader_spelled_otherwise("Dr Bo", known) is None  # exactly a known name
    # Known exactly, even where another spelling was saved before this rule existed.
    assert same_reader_spelled_otherwise("dr ana lima", known) is None
    assert same_reader_spelled_otherwise("Dr Cy", known) is None
    assert same_reader_spelled_otherwise("dr bo", iter(known)) == "Dr Bo"  # any iterable
    assert same_reader_spelled_otherwise("Dr Bo", []) is None


def test_a_save_under_another_spelling_of_a_saved_name_is_refused(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    text, _work, meta = _save(app, annotate, "Dr Ana Lima")
    assert "Saved." in text
    for typed in ("dr ana lima", " DR ANA  LIMA ", "Dr Ana\u00a0Lima"):
        text, work, _meta = _save(app, annotate, typed)
        assert "Not saved." in text and "only in case or spacing" in text, typed
        assert json.dumps("Type \u201cDr Ana Lima\u201d")[1:-1] in text  # as the JSON holds it
        assert work is annotate.dash.no_update
    assert sorted(p.name for p in (data_dir / meta["sha256"]).glob("v*.json")) == ["v001.json"]
    # The exact name is that reader, not refused (the same work again is no new
    # version); a name that tells another reader apart saves.
    assert "Nothing changed since version 1" in _save(app, annotate, "Dr Ana Lima")[0]
    assert "Saved." in _save(app, annotate, "Dr Ana Lima-Souza")[0]
    assert app.server.config[INDEX_KEY].annotators() == ["Dr Ana Lima", "Dr Ana Lima-Souza"]


#: "Dr Ünïcode" composed (NFC, as most keyboards type it) and decomposed (NFD, as a paste
#: from some file names or systems gives it): the same name, other code points.
COMPOSED = "Dr \u00dcn\u00efcode"
DECOMPOSED = "Dr U\u0308ni\u0308code"


def test_a_name_is_checked_into_its_composed_unicode_form():
    assert COMPOSED != DECOMPOSED
    assert checked_name(f" {DECOMPOSED} ", "The name") == COMPOSED
    assert checked_name(COMPOSED, "The name") == COMPOSED
    # From a sign-in proxy, sent as UTF-8 bytes (read by WSGI as Latin-1).
    sent = DECOMPOSED.encode().decode("latin-1")
    assert signed_in_name({HEADER: sent}, HEADER) == COMPOSED


def test_a_name_typed_decomposed_is_the_same_reader_as_composed(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    assert "Saved." in _save(app, annotate, COMPOSED)[0]
    # Not refused as "another spelling only in case or spacing" of itself: the same
    # reader, so the same work is no new version.
    text = _save(app, annotate, DECOMPOSED)[0]
    assert "Nothing changed since version 1" in text, text
    assert app.server.config[INDEX_KEY].annotators() == [COMPOSED]
    # And the other way round, a first save typed decomposed is recorded composed.
    assert "Saved." in _save(app, annotate, "Jose\u0301")[0]
    assert "Jos\u00e9" in app.server.config[INDEX_KEY].annotators()
    # The API's annotator= finds the name however it is spelled.
    rows = app.server.test_client().get("/api/saved", query_string={"annotator": DECOMPOSED})
    assert [r["annotator"] for r in rows.get_json()["rows"]] == [COMPOSED]


def test_a_signed_in_name_sent_decomposed_is_recorded_and_shown_composed(
    signed_in_app, annotate, data_dir
):
    sent = DECOMPOSED.encode().decode("latin-1")
    assert "Saved." in _save(signed_in_app, annotate, None, {HEADER: sent})[0]
    assert signed_in_app.server.config[INDEX_KEY].annotators() == [COMPOSED]
    assert _recall(signed_in_app, annotate, None, {HEADER: sent})[0] == COMPOSED


def test_the_signed_in_name_is_recorded_as_the_proxy_sends_it(signed_in_app, annotate, data_dir):
    # The proxy is the authority on names: its spelling is not second-guessed.
    assert "Saved." in _save(signed_in_app, annotate, None, {HEADER: "Ada"})[0]
    assert "Saved." in _save(signed_in_app, annotate, None, {HEADER: "ada"})[0]
    assert signed_in_app.server.config[INDEX_KEY].annotators() == ["Ada", "ada"]


def test_without_the_index_the_names_are_not_checked_and_the_save_goes_on(
    tmp_path, annotate, data_dir, caplog
):
    (tmp_path / "blocker").write_text("a regular file, not a folder")
    url = f"sqlite:///{tmp_path}/blocker/index.sqlite3"
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url,
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    for typed in ("Dr Ana Lima", "dr ana lima"):
        assert "Saved." in _save(app, annotate, typed)[0]
    assert any("annotator names not read" in r.getMessage() for r in caplog.records)
    names = []
    assert _recall(app, annotate, "Dr Typed", names=names) == ("Dr Typed", False, "null")
    assert names == []


def test_the_names_saved_before_are_offered_as_the_name_is_typed(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    names = []
    _recall(app, annotate, None, names=names)
    assert names == []
    for typed in ("Dr Bo", "Dr Ada"):
        _save(app, annotate, typed)
    _recall(app, annotate, None, names=names)
    assert names == ["Dr Ada", "Dr Bo"]


def test_behind_the_proxy_no_name_is_offered(signed_in_app, annotate):
    assert "Saved." in _save(signed_in_app, annotate, None, {HEADER: "bo"})[0]
    for headers in ({HEADER: "ada"}, {}):
        names = []
        _recall(signed_in_app, annotate, None, headers, names=names)
        assert names == []
