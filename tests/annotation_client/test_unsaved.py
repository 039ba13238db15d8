from annotation_client import _unsaved

SQUARE = "M 1,1 L 5,1 L 5,5 L 1,5 Z"
MOVED = "M 1,1 L 6,1 L 5,5 L 1,5 Z"
AI = ["M 10,10 L 20,10 L 20,20 Z"]


def test_an_image_as_opened_is_not_unsaved_work():
    assert not _unsaved.is_unsaved(None, None)  # no image open
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", []), None)
    # The AI outline untouched is what the image gives back when it is opened again.
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", AI), None, ai_paths=AI)


def test_edits_a_label_a_note_or_a_descriptor_are_unsaved_until_saved():
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", [SQUARE]), None)
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", []), None, ai_paths=AI)  # AI erased
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI, label="benign"), None, AI)
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI, note="check"), None, AI)
    assert _unsaved.is_unsaved(
        _unsaved.snapshot("a", AI, descriptors={"shape": "oval"}), None, AI
    )
    # Blank is the same as nothing.
    assert not _unsaved.is_unsaved(
        _unsaved.snapshot("a", AI, label="", note="  ", descriptors={"shape": None}), None, AI
    )


def test_the_last_save_is_the_baseline_for_its_own_image_only():
    saved = _unsaved.snapshot("a", [SQUARE], "malignant", "note", {"margin": "angular"})
    same = _unsaved.snapshot("a", [SQUARE], "malignant", " note ", {"margin": "angular"})
    assert not _unsaved.is_unsaved(same, saved)
    # Plotly re-writes numbers; the same polygon is not a change.
    respelled = _unsaved.snapshot("a", ["M1.0,1.0L5,1L5,5L1,5Z"], "malignant", "note",
                                  {"margin": "angular"})
    assert not _unsaved.is_unsaved(respelled, saved)
    assert _unsaved.is_unsaved(dict(same, paths=[MOVED]), saved)
    assert _unsaved.is_unsaved(dict(same, label="benign"), saved)
    assert _unsaved.is_unsaved(dict(same, descriptors={}), saved)
    # A save of another image says nothing about this one.
    other = _unsaved.snapshot("b", [SQUARE])
    assert _unsaved.is_unsaved(dict(other, image="a"), _unsaved.snapshot("b", [SQUARE]))


def test_an_image_opened_again_after_its_save_is_not_unsaved_work_while_it_opens():
    saved = _unsaved.snapshot("a", [SQUARE], "benign")
    # Opened again: the blank outline until the model's, or the save loaded, reaches it.
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", []), saved, AI, as_opened=True)
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", [], note="x"), saved, AI, as_opened=True)
    # What was typed as it opens is work, unless it is what the save holds.
    blank_saved = _unsaved.snapshot("a", [], "normal")
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", [], "normal"), blank_saved,
                                   as_opened=True)
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", [], "benign"), blank_saved,
                               as_opened=True)


def test_after_a_save_the_untouched_ai_outline_is_unsaved_work():
    # The AI outline erased and saved with no label, then Undo (or Reset to AI): the
    # AI outline was on screen, yet the page called nothing unsaved, and opening the
    # image again loaded the save, without it (helper-404's F1).
    erased = _unsaved.snapshot("a", [])
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI), erased, ai_paths=AI)
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", []), erased, ai_paths=AI)
    # The same for a save made before the AI outline came (a Ctrl+S right after the
    # upload): the outline that came after it is not what was saved.
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI), erased, AI, as_opened=False)
    # Saved as the AI outline, it is the save.
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", AI), _unsaved.snapshot("a", AI), AI)


def test_a_spacing_the_reader_gave_is_unsaved_until_saved():
    # A spacing typed or calibrated is what a save records and a reload loses: the page
    # said "no unsaved changes", yet Save wrote a new version for it.
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI, spacing=[0.08, 0.08]), None, AI)
    saved = _unsaved.snapshot("a", AI, "benign", spacing=[0.08, 0.08])
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", AI, "benign", spacing=(0.08, 0.08)),
                                   saved, AI)
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI, "benign", spacing=[0.1, 0.1]), saved)
    assert _unsaved.is_unsaved(_unsaved.snapshot("a", AI, "benign"), saved)  # back to pixels
    # A snapshot kept by a page from before spacings were compared has none.
    old = {k: v for k, v in _unsaved.snapshot("a", AI, "benign").items() if k != "spacing"}
    assert not _unsaved.is_unsaved(_unsaved.snapshot("a", AI, "benign"), old)


def test_margins_ticked_again_in_another_order_are_no_change():
    # The checklist appends each value ticked: after a save of [angular, spiculated],
    # unticking and ticking "angular" again gave [spiculated, angular], marked unsaved,
    # and Save answered "Nothing changed" without clearing the mark.
    saved = _unsaved.snapshot("a", AI, descriptors={"margin": ["angular", "spiculated"]})
    again = _unsaved.snapshot("a", AI, descriptors={"margin": ["spiculated", "angular"]})
    assert not _unsaved.is_unsaved(again, saved, AI)
    fewer = _unsaved.snapshot("a", AI, descriptors={"margin": ["spiculated"]})
    assert _unsaved.is_unsaved(fewer, saved, AI)
