"""Reopening a saved case and saving it again: the Annotate page's callbacks, called
directly against a real data directory in tmp_path.

The audit's case07: saved as v1 (benign, BI-RADS 3, an edited outline), picked again
from the worklist, it came back as the AI's outline with a blank label, and Save wrote
v2 with no label, then v3, the same again. Now the reader's own latest version is
loaded as the image opens (another reader's only when asked), a save identical to the
latest version writes nothing, and one that would drop its label or its edited outline
asks first. Label, outline and assessment that disagree are said, and saved.
"""

from __future__ import annotations

import base64
import io
import json

import dash
import numpy as np
import pytest
from _dash_helpers import as_callback, text_of
from dash.exceptions import PreventUpdate
from PIL import Image

import vectorizer
from annotation_client import _editing, _history, _shapes, create_app, ids
from annotation_client._record import DESCRIPTOR_OPTIONS, build_record
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.usefixtures("an_app_exists")

SHA = "e5" * 32
WIDTH, HEIGHT = 16, 12  # the least a side an image opens at is 8
META = {"sha256": SHA, "name": "case07.png", "width": WIDTH, "height": HEIGHT}
AI = "M1,1L5,1L5,4L1,4Z"  # the model's outline
EDITED = "M1,1L7,1L7,5L1,5Z"  # the radiologist's, wider
OFF_IMAGE = "M-9,-9L-5,-9L-5,-5L-9,-5Z"  # a region drawn wholly above and left of it
N = len(DESCRIPTOR_OPTIONS)  # shape, orientation, margin, echo_pattern, posterior, assessment
USER = "X-Forwarded-User"


def _mask(paths) -> np.ndarray:
    return _shapes.paths_to_mask(paths, (HEIGHT, WIDTH))


def _store_version(data_dir, paths, *, annotator="Dr Ada", label="benign", assessment="3",
                   ai=True, sha=SHA, meta=META) -> int:
    """A version written as the page's Save writes it; its number."""
    record = build_record(
        image=meta, annotator=annotator, final_mask=_mask(paths),
        ai_mask=_mask([AI]) if ai else None, final_label=label,
        descriptors={"assessment": assessment} if assessment else None,
    )
    return AnnotationStore(data_dir).save(
        sha, svg=_shapes.paths_to_svg(paths, WIDTH, HEIGHT),
        mask_png=vectorizer.mask_to_png(_mask(paths)), record=record,
    ).version


def _in_request(app, call, headers=None, fired=None):
    """``call()`` inside a callback request of ``app``; Dash's ``triggered_inputs`` name
    ``fired`` (prop ids) when given."""
    return as_callback(call, fired or (), app=app, headers=headers, value=1)


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})


# ----------------------------------------------------------------- which version opens


def test_the_reader_named_gets_their_own_latest_version_and_nobody_elses(
        app, annotate, data_dir):
    _store_version(data_dir, [EDITED])  # v1, Dr Ada
    _store_version(data_dir, [AI], label="malignant")  # v2, Dr Ada
    _store_version(data_dir, [EDITED], annotator="Dr Bo")  # v3

    def wish(annotator):
        return _in_request(app, lambda: annotate._wish_on_open(META, None, None, annotator))

    assert wish("Dr Ada") == {"sha256": SHA, "version": 2}
    assert wish(" Dr Bo ") == {"sha256": SHA, "version": 3}  # as a save records the name
    # A reader who never saved it reads it afresh: Dr Bo's reading is not theirs to load.
    assert wish("Dr Cy") is None
    # A name a save would refuse names nobody: no other reader's version instead.
    assert wish("Dr\x00Ada") is None
    # No reader named yet: none. It loaded the image's latest, whoever saved it: a
    # second reader in a new browser got the first's reading, and revised it.
    assert wish(None) is None
    assert wish("  ") is None
    # Never saved: nothing to load.
    other = dict(META, sha256="f6" * 32)
    assert _in_request(app, lambda: annotate._wish_on_open(other, None, None, None)) is None


def test_behind_a_sign_in_proxy_the_signed_in_reader_decides(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "ANNOTATOR_HEADER": USER})
    _store_version(data_dir, [EDITED])  # v1, Dr Ada
    _store_version(data_dir, [AI], annotator="Dr Bo")  # v2

    def wish(headers, typed="Dr Bo"):
        return _in_request(app, lambda: annotate._wish_on_open(META, None, None, typed),
                           headers)

    # The proxy's name, not the field's (which a request can fill with anything).
    assert wish({USER: "Dr Ada"}) == {"sha256": SHA, "version": 1}
    assert wish({USER: "Dr Cy"}) is None
    assert wish({}) is None  # the proxy named nobody: no one's version loads


def test_under_blinded_reading_only_the_readers_own_version_loads(annotate, data_dir):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "ANNOTATOR_HEADER": USER, "BLINDED_READING": True})
    _store_version(data_dir, [EDITED])  # v1, Dr Ada
    _store_version(data_dir, [AI], annotator="Dr Bo")  # v2

    def wish(headers):
        return _in_request(app, lambda: annotate._wish_on_open(META, None, None, None),
                           headers)

    assert wish({USER: "Dr Ada"}) == {"sha256": SHA, "version": 1}
    assert wish({USER: "Dr Cy"}) is None
    assert wish({}) is None


def test_an_image_opened_again_or_named_by_a_link_keeps_its_wish(app, annotate, data_dir):
    no = dash.no_update
    _store_version(data_dir, [EDITED])

    def wish(meta, current, revise):
        return _in_request(app, lambda: annotate._wish_on_open(meta, current, revise, "Dr Ada"))

    # The same image opened again keeps the work on it: nothing is loaded over it.
    assert wish(META, META, None) is None
    # A Saved page link's wish for this image (its own version) stands.
    assert wish(META, None, {"sha256": SHA, "version": 7}) is no
    assert wish(dict(META, worklist_path="a/case07.png"), None,
                {"worklist_path": "a/case07.png"}) is no
    # A link's wish for another image is replaced.
    assert wish(META, None, {"sha256": "f6" * 32}) == {"sha256": SHA, "version": 1}
    # The file did not open: the image before and its wish stay.
    assert wish(no, META, None) is no


def _png_of(width=WIDTH, height=HEIGHT) -> bytes:
    buffer = io.BytesIO()
    ramp = np.add.outer(np.arange(height), np.arange(width)) * 9
    Image.fromarray(ramp.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_opening_an_image_saved_before_asks_for_its_load(app, annotate, data_dir):
    import hashlib

    data = _png_of()
    sha = hashlib.sha256(data).hexdigest()
    meta = dict(META, sha256=sha)
    contents = "data:image/png;base64," + base64.b64encode(data).decode()

    def opened(annotator):
        return _in_request(app, lambda: annotate.open_to_revise(
            contents, None, "case07.png", None, "pan", None, annotator),
            fired=[f"{ids.IMAGE_UPLOAD}.contents"])

    out = opened("Dr Ada")
    assert out[0]["sha256"] == sha and out[-1] is None  # never saved
    _store_version(data_dir, [EDITED], sha=sha, meta=meta)
    out = opened("Dr Ada")
    # What open_image answers, the files that failed to open, then the wish, in the same
    # answer as IMAGE_OPENED.
    assert len(out) == 12 + N and out[-1] == {"sha256": sha, "version": 1}
    assert out[9]["image"] == sha  # IMAGE_OPENED
    assert opened("Dr Bo")[-1] is None


def test_the_wish_is_loaded_as_a_links_once_the_model_has_answered(app, annotate, data_dir):
    no = dash.no_update
    _store_version(data_dir, [EDITED])  # v1
    _store_version(data_dir, [AI], annotator="Dr Bo")  # v2
    wish = {"sha256": SHA, "version": 1}

    def revise(fired):
        return _in_request(app, lambda: annotate.revise_linked(1, 1, wish, META, True, None),
                           fired=[f"{prop}.data" for prop in fired])

    with pytest.raises(PreventUpdate):  # the AI outline is still to come
        revise([ids.IMAGE_OPENED])
    # One click of Load it to revise, of the version named (not Dr Bo's latest).
    assert revise([ids.SEGMENT_DONE]) == (1, None, no, {"image": SHA, "version": 1})
    loaded = _in_request(app, lambda: annotate.load_saved(1, META, {"image": SHA,
                                                                     "version": 1}))
    assert loaded[0]["version"] == 1 and loaded[1] == "benign"


def test_a_link_to_a_version_removed_since_says_so(app, annotate, data_dir):
    import shutil

    _store_version(data_dir, [EDITED])  # v1
    _store_version(data_dir, [AI], annotator="Dr Bo")  # v2
    # v5 was asked for (a bookmark, an older Saved page): v2, the latest, loads, and
    # the message says so rather than passing it off as v5.
    loaded = _in_request(app, lambda: annotate.load_saved(1, META, {"image": SHA,
                                                                     "version": 5}))
    assert loaded[0]["version"] == 2
    assert ("Version 5, which was asked for, is not saved any more: version 2, the latest, "
            "is loaded instead.") in text_of(loaded[4])
    assert loaded[4].color == "warning"
    # No version left at all: the link's open says so, rather than nothing.
    shutil.rmtree(data_dir / SHA)
    wish = {"sha256": SHA, "version": 1}
    click, spent, note, shown = _in_request(
        app, lambda: annotate.revise_linked(1, 1, wish, META, True, None),
        fired=[f"{ids.SEGMENT_DONE}.data"])
    assert click is dash.no_update and spent is None and shown is dash.no_update
    assert note.id == "link-version-gone"
    assert text_of(note).startswith("Version 1 of this image, which the link names, is not "
                                    "saved any more")


def test_under_blinded_reading_a_link_to_anothers_version_says_whose_not_gone(
        annotate, data_dir):
    # "Version 1 ... is not saved any more" was said of another reader's version: a
    # radiologist told so reports lost data.
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "ANNOTATOR_HEADER": USER, "BLINDED_READING": True})
    _store_version(data_dir, [EDITED])  # v1, Dr Ada
    wish = {"sha256": SHA, "version": 1}
    # Dr Cy has no version of the image: the link's open says why nothing loads.
    _click, _spent, note, _shown = _in_request(
        app, lambda: annotate.revise_linked(1, 1, wish, META, True, None),
        {USER: "Dr Cy"}, fired=[f"{ids.SEGMENT_DONE}.data"])
    assert note.id == "link-version-gone"
    assert text_of(note) == (
        "Version 1 of this image, which the link names, is another reader's: under blinded "
        "reading only your own versions open, and you have saved none of this image yet. "
        "The image is shown as opened.")
    # Dr Bo has v2, and Dr Ada has saved v3 since: his own is loaded, said as his latest.
    _store_version(data_dir, [AI], annotator="Dr Bo")  # v2
    _store_version(data_dir, [EDITED], annotator="Dr Ada", label="malignant")  # v3
    loaded = _in_request(app, lambda: annotate.load_saved(1, META, {"image": SHA,
                                                                     "version": 1}),
                         {USER: "Dr Bo"})
    assert loaded[0]["version"] == 2
    assert ("Version 1, which was asked for, is another reader's: under blinded reading only "
            "your own versions open, so your latest, version 2, is loaded instead.") in (
        text_of(loaded[4]))
    assert "not saved any more" not in text_of(loaded[4])
    # A version of nobody's, removed: gone, and said so, his latest named as his.
    loaded = _in_request(app, lambda: annotate.load_saved(1, META, {"image": SHA,
                                                                     "version": 7}),
                         {USER: "Dr Bo"})
    assert ("Version 7, which was asked for, is not saved any more: version 2, your latest, "
            "is loaded instead.") in text_of(loaded[4])


# ------------------------------------------------------------ others' saves, above the image


def test_others_saves_are_said_above_the_image_and_not_loaded(app, annotate, data_dir):
    _store_version(data_dir, [EDITED], annotator="Dr Bo", label="malignant")

    def notice(annotator, fired=ids.IMAGE_OPENED, headers=None, on=app):
        return _in_request(on, lambda: annotate.show_others_saves(1, None, None, META,
                                                                  annotator),
                           headers, fired=[f"{fired}.data"])

    style, text = notice("Dr Ada")
    assert style == {}
    assert text.startswith("Saved before: v1 (of 1) by Dr Bo, ") and (
        "final label malignant." in text)
    assert "You (Dr Ada) have not saved it: your reading starts from the AI's outline" in text
    # Dr Bo's own version loads as it opens.
    assert notice("Dr Bo") == ({"display": "none"}, None)
    # With no reader named, none loads: the notice says what was saved, and why.
    style, text = notice(None)
    assert style == {} and text.startswith("Saved before: v1 (of 1) by Dr Bo, ")
    assert "No reader is named yet, so nothing saved was loaded" in text
    # A load (of theirs, after all) or a save answers it.
    assert notice("Dr Ada", fired=ids.LOADED_SAVE) == ({"display": "none"}, None)
    assert notice("Dr Ada", fired=ids.SAVED_WORK) == ({"display": "none"}, None)
    # Under blinded reading another reader's save is not even said.
    blinded = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                          "ANNOTATOR_HEADER": USER, "BLINDED_READING": True})
    assert notice(None, headers={USER: "Dr Ada"}, on=blinded) == ({"display": "none"}, None)


def test_the_notices_button_loads_the_version_it_names(app, annotate, data_dir):
    _store_version(data_dir, [EDITED], annotator="Dr Bo", label="malignant")
    out = _in_request(app, lambda: annotate.load_saved(None, META, {"image": SHA,
                                                                     "version": 1}, 1))
    assert out[0]["version"] == 1 and out[1] == "malignant"
    with pytest.raises(PreventUpdate):  # neither button clicked: the page drawn again
        _in_request(app, lambda: annotate.load_saved(None, META, None, None))


# --------------------------------------------------------------------- saving it again


def _history_of(paths, action="edit"):
    history = _history.new_history(_editing.empty_state(), image=SHA)
    base = "ai" if action == "ai" else None
    return _history.push(history, _editing.make_state(paths, action, base=base, density=32))


AI_RESULT = {"image": SHA, "paths": [AI], "at": 1, "vertices": 32, "model": None,
             "mask": base64.b64encode(vectorizer.mask_to_png(_mask([AI]))).decode()}


def _save(app, annotate, history, *, label="benign", note="", annotator="Dr Ada",
          assessment="3", confirmed=False, ai=AI_RESULT):
    """Save's answer (the message component) and the versions on disk after it."""
    descriptors = [None] * (N - 1) + [assessment]
    fired = [f"{ids.SAVE_QUESTION}.submit_n_clicks"] if confirmed else [
        f"{ids.SAVE_BUTTON}.n_clicks"]
    answer, _work = _in_request(app, lambda: annotate.save(
        1, META, history, ai, None, label, note, annotator, None, *descriptors),
        fired=fired)
    return answer


def test_a_name_the_index_cannot_check_is_said_so(annotate, data_dir, tmp_path):
    # With the index down, "dr ada" beside "Dr Ada" was saved without a word, and the
    # Saved page then counted two readers for good.
    (tmp_path / "blocker").write_text("a regular file, not a folder")
    down = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                       "DATABASE_URL": f"sqlite:///{tmp_path}/blocker/index.sqlite3"})
    text = text_of(_save(down, annotate, _history_of([EDITED]), annotator="dr ada"))
    assert text.startswith("Saved. Version 1")
    assert ("Your name, “dr ada”, could not be checked against the names saved before "
            "(the index cannot be read)") in text
    # With the index there, nothing of the kind.
    up = create_app({"DATA_DIR": tmp_path / "other", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    assert "could not be checked" not in text_of(_save(up, annotate, _history_of([EDITED])))


def _versions(data_dir) -> list[int]:
    return AnnotationStore(data_dir).versions(SHA)


def test_a_save_identical_to_the_latest_version_writes_nothing(app, annotate, data_dir):
    edited = _history_of([EDITED])
    assert text_of(_save(app, annotate, edited)).startswith("Saved. Version 1")
    # Saved again unchanged (a second click, or the case reopened and saved at once).
    answer = _save(app, annotate, edited)
    assert text_of(answer) == "Nothing changed since version 1; no new version saved."
    assert answer.children.color == "info"  # not an error
    # The work is saved, as version 1: what Save & next waits for.
    assert answer.to_plotly_json()["props"]["data-version"] == "1"
    assert _versions(data_dir) == [1]
    # Any part of the reading changed is a new version.
    assert text_of(_save(app, annotate, edited, note="seen")).startswith("Saved. Version 2")
    assert text_of(_save(app, annotate, edited, note="seen", assessment="4A")).startswith(
        "Saved. Version 3")
    assert text_of(_save(app, annotate, _history_of([AI]), note="seen",
                         assessment="4A", confirmed=True)).startswith("Saved. Version 4")
    # Another reader's identical reading is theirs: a version of its own.
    assert text_of(_save(app, annotate, _history_of([AI]), note="seen", assessment="4A",
                         annotator="Dr Bo")).startswith("Saved. Version 5")
    assert _versions(data_dir) == [1, 2, 3, 4, 5]


def test_a_save_identical_to_a_version_whose_outline_file_is_damaged_is_saved(
        app, annotate, data_dir):
    # Its SVG broken on disk, the version could not be loaded, and Save answered
    # "Nothing changed since version 1": the reader could not replace it without an edit.
    edited = _history_of([EDITED])
    assert text_of(_save(app, annotate, edited)).startswith("Saved. Version 1")
    (data_dir / SHA / "v001.svg").write_text("<svg><path d=", encoding="utf-8")
    assert text_of(_save(app, annotate, edited)).startswith("Saved. Version 2")
    assert _versions(data_dir) == [1, 2]
    # Its own outline reads: the next identical save writes nothing, as ever.
    assert text_of(_save(app, annotate, edited)) == (
        "Nothing changed since version 2; no new version saved.")


def test_under_blinded_reading_a_save_says_which_of_the_readers_own_it_is(annotate, data_dir):
    # A reader's first save said "Version 2": readers asked where their version 1 went.
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "ANNOTATOR_HEADER": USER, "BLINDED_READING": True})
    _store_version(data_dir, [EDITED])  # v1, Dr Ada
    descriptors = [None] * (N - 1) + ["3"]

    def save(note, reader):
        answer, _work = _in_request(app, lambda: annotate.save(
            1, META, _history_of([EDITED]), AI_RESULT, None, "benign", note, reader, None,
            *descriptors), {USER: reader}, fired=[f"{ids.SAVE_BUTTON}.n_clicks"])
        return text_of(answer)

    first = save("", "Dr Bo")
    assert first.startswith("Saved. Version 2")
    assert ("It is your first save of this image: version numbers count every reader's "
            "saves.") in first
    assert "It is your second save" in save("again", "Dr Bo")
    # Dr Ada's second save is version 4: said too; and where the numbers agree, nothing.
    assert "It is your second save" in save("x", "Dr Ada")
    assert "save of this image" not in text_of(_save(
        create_app({"DATA_DIR": data_dir / "alone", "MODEL_SERVER_URL": "http://127.0.0.1:9"}),
        annotate, _history_of([EDITED])))


def _question(answer) -> str:
    return answer.to_plotly_json()["props"].get("data-question") or ""


def test_a_save_without_the_label_of_the_latest_version_asks_first(app, annotate, data_dir):
    _store_version(data_dir, [EDITED], ai=False)  # v1: benign, BI-RADS 3
    edited = _history_of([EDITED])
    answer = _save(app, annotate, edited, label=None)
    assert text_of(answer).startswith(
        "Not saved yet. This save has no final label; version 1 is labelled benign.")
    assert "version 1 is labelled benign" in _question(answer)
    assert _versions(data_dir) == [1]
    # OK in the question: saved, one click later.
    answer = _save(app, annotate, edited, label=None, confirmed=True)
    assert text_of(answer).startswith("Saved. Version 2 of case07.png (no final label).")
    # Version 2 has no label: a save without one loses nothing now.
    assert text_of(_save(app, annotate, edited, label=None, note="x")).startswith("Saved.")


def test_the_ai_outline_saved_untouched_over_an_edited_version_asks_first(
        app, annotate, data_dir):
    _store_version(data_dir, [EDITED])  # v1: edited over the AI's outline
    untouched = _history_of([AI], action="ai")
    answer = _save(app, annotate, untouched)
    assert "This save's outline is the AI's, untouched; version 1's, by Dr Ada, was " \
           "edited." in text_of(answer)
    assert "version 1, your latest" in _question(answer) and _versions(data_dir) == [1]
    assert text_of(_save(app, annotate, untouched, confirmed=True)).startswith(
        "Saved. Version 2")
    # The version edited by hand, loaded and saved: nothing to ask.
    assert text_of(_save(app, annotate, _history_of([EDITED]), note="x")).startswith(
        "Saved. Version 3")


def test_another_readers_independent_read_is_not_asked_to_keep_the_firsts(
        app, annotate, data_dir):
    # Dr Bo's own read, from the AI's outline and with no label, was asked whether to
    # "leave out" what Dr Ada's version holds: it steered him to cancel, or to load her
    # version, which would have made his read depend on hers.
    _store_version(data_dir, [EDITED])  # v1: Dr Ada, benign, edited
    untouched = _history_of([AI], action="ai")
    answer = _save(app, annotate, untouched, label=None, annotator="Dr Bo")
    assert text_of(answer).startswith("Saved. Version 2")
    assert _versions(data_dir) == [1, 2]
    # His own version is what his next save is compared with: v2, not Dr Ada's v1.
    answer = _save(app, annotate, untouched, label=None, annotator="Dr Bo")
    assert text_of(answer) == "Nothing changed since version 2; no new version saved."
    # Dr Ada, again: her own v1 is compared, though Dr Bo's v2 is newer.
    answer = _save(app, annotate, untouched, label=None)
    assert "version 1 is labelled benign" in text_of(answer)
    assert "version 1, your latest" in _question(answer) and _versions(data_dir) == [1, 2]


def test_a_save_that_revises_another_readers_version_is_compared_with_it(
        app, annotate, data_dir):
    _store_version(data_dir, [EDITED])  # v1: Dr Ada, benign
    loaded = dict(_history_of([EDITED]), loaded_versions=[1])  # Load it to revise v1
    answer = _save(app, annotate, loaded, label=None, annotator="Dr Bo")
    assert text_of(answer).startswith(
        "Not saved yet. This save has no final label; version 1 is labelled benign.")
    assert "version 1, the one it revises" in _question(answer)
    assert _versions(data_dir) == [1]


# ------------------------------------------------- label, outline and assessment disagree


def test_a_save_says_when_label_outline_and_assessment_disagree_and_saves(
        app, annotate, data_dir):
    answer = _save(app, annotate, _history_of([EDITED]), label="normal", assessment="5")
    text = text_of(answer)
    assert text.startswith("Saved. Version 1")
    assert ("Check: The final label is normal, but an outline is drawn. The final label is "
            "normal, but BI-RADS 5 (highly suggestive of malignancy) is not a normal "
            "reading.") in text
    check = answer.children[1]
    assert check.color == "warning"
    # No outline, malignant, BI-RADS 1: over version 1's outline it asks first, then saves.
    text = text_of(_save(app, annotate, _history_of([]), label="malignant", assessment="1",
                         ai=None))
    assert text.startswith("Not saved yet. This save has no outline; version 1, by Dr Ada, "
                           "has one.")
    assert _versions(data_dir) == [1]
    text = text_of(_save(app, annotate, _history_of([]), label="malignant", assessment="1",
                         ai=None, confirmed=True))
    assert text.startswith("Saved. Version 2")
    assert "malignant, but no lesion is outlined" in text and "BI-RADS 1 (negative)" in text
    assert _versions(data_dir) == [1, 2]
    # A reading that agrees says nothing more.
    answer = _save(app, annotate, _history_of([EDITED]), label="benign", assessment="3")
    assert len(answer.children) == 1 and "Check:" not in text_of(answer)


def test_the_hint_beside_the_label_follows_label_outline_and_assessment(annotate):
    hint = annotate.check_reading
    assert hint("normal", "5", _history_of([EDITED]), META) == (
        "The final label is normal, but an outline is drawn. The final label is normal, "
        "but BI-RADS 5 (highly suggestive of malignancy) is not a normal reading.")
    assert hint("malignant", "", _history_of([]), META) == (
        "The final label is malignant, but no lesion is outlined.")
    assert hint("benign", "3", _history_of([EDITED]), META) is None
    # Another image's history is no outline of this one.
    assert hint("benign", "3", dict(_history_of([EDITED]), image="f6" * 32), META) == (
        "The final label is benign, but no lesion is outlined.")
    assert hint("normal", "5", _history_of([EDITED]), None) is None  # no image open
    # A region that covers no pixel is saved as no outline (final.empty): said as none.
    assert hint("benign", "3", _history_of([OFF_IMAGE]), META) == (
        "The final label is benign, but no lesion is outlined.")
    assert hint("normal", "1", _history_of([OFF_IMAGE]), META) is None


def test_a_save_of_a_region_that_covers_no_pixel_says_no_lesion_is_outlined(
        app, annotate, data_dir):
    answer = _save(app, annotate, _history_of([OFF_IMAGE]), label="benign", ai=None)
    text = text_of(answer)
    assert text.startswith("Saved. Version 1")
    assert "The final label is benign, but no lesion is outlined." in text
    record = json.loads(next(data_dir.rglob("v001.json")).read_text())
    assert record["final"]["empty"] is True


def _classified(version, image=SHA):
    return {"image": image, "label": "benign", "paths": [AI],
            "probabilities": {"normal": 0.1, "benign": 0.7, "malignant": 0.2},
            "model": {"name": "sonotrace_unet", "version": version}}


def _outlined_by(version):
    return dict(AI_RESULT, model={"name": "sonotrace_unet", "version": version})


def test_the_hint_under_the_ai_label_names_the_two_model_versions_until_they_agree(annotate):
    # The model server reloaded with new weights between /predict and /classify.
    hint = annotate.check_model_versions
    said = hint(_outlined_by("2026-12-03.10"), _classified("2027-01-01.1"), META)
    assert said == ("The outline is from model version 2026-12-03.10, the AI label from "
                    "version 2027-01-01.1: the model server changed in between. "
                    "Auto-segment and Classify again to have both from one model; Save "
                    "records both as they are.")
    # Both again from one version: nothing said.
    assert hint(_outlined_by("2027-01-01.1"), _classified("2027-01-01.1"), META) is None
    # The label a saved version was loaded with is said as that version's.
    assert "from version 2026-12-03.10: it was saved with version 3, before the model " \
        "server changed. Classify again" in hint(
            _outlined_by("2027-01-01.1"), dict(_classified("2026-12-03.10"), version=3), META)
    # Not yet classified, no AI outline, another image's label, or no image: nothing.
    assert hint(_outlined_by("2026-12-03.10"), None, META) is None
    assert hint(None, _classified("2027-01-01.1"), META) is None
    assert hint(_outlined_by("2026-12-03.10"),
                _classified("2027-01-01.1", image="f6" * 32), META) is None
    assert hint(_outlined_by("2026-12-03.10"), _classified("2027-01-01.1"), None) is None


def test_a_save_of_two_model_versions_says_so_and_saves_both(app, annotate, data_dir):
    descriptors = [None] * (N - 1) + ["3"]
    answer, _work = _in_request(app, lambda: annotate.save(
        1, META, _history_of([EDITED]), _outlined_by("2026-12-03.10"),
        _classified("2027-01-01.1"), "benign", "", "Dr Ada", None, *descriptors),
        fired=[f"{ids.SAVE_BUTTON}.n_clicks"])
    text = text_of(answer)
    assert text.startswith("Saved. Version 1")
    assert ("Check: The outline is from model version 2026-12-03.10, the AI label from "
            "version 2027-01-01.1") in text
    assert answer.to_plotly_json()["props"]["data-attention"] == "1"
    record = json.loads((data_dir / SHA / "v001.json").read_text())
    assert record["model"]["segmentation"]["version"] == "2026-12-03.10"
    assert record["model"]["classification"]["version"] == "2027-01-01.1"


# --------------------------------------------------------------------- the save's message


def test_the_save_message_is_short_and_the_folder_is_in_its_tooltip(app, annotate, data_dir):
    answer = _save(app, annotate, _history_of([EDITED]), ai=None)
    assert text_of(answer) == "Saved. Version 1 of case07.png (benign)."
    props = answer.to_plotly_json()["props"]
    folder = str(data_dir / SHA)
    assert props["title"] == f"Saved in {folder}" and props["data-folder"] == folder
    assert SHA not in text_of(answer)
    record = json.loads((data_dir / SHA / "v001.json").read_text())
    assert record["final"]["label"] == "benign"
