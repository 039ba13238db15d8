import json

import pytest

from annotation_client import _history as h


def test_push_undo_redo_walks_back_and_forth():
    history = h.new_history({"paths": []}, image="abc")
    for n in range(1, 4):
        history = h.push(history, {"paths": [f"p{n}"]})
    assert history["present"] == {"paths": ["p3"]}
    assert len(history["past"]) == 3

    history = h.undo(h.undo(history))
    assert history["present"] == {"paths": ["p1"]}
    assert [s["paths"] for s in history["future"]] == [["p2"], ["p3"]]
    history = h.redo(history)
    assert history["present"] == {"paths": ["p2"]}
    assert history["image"] == "abc"


def test_push_after_undo_drops_the_redo_branch():
    history = h.push(h.push(h.new_history(0), 1), 2)
    history = h.push(h.undo(history), 5)
    assert history["present"] == 5
    assert history["future"] == []
    assert not h.can_redo(history)
    assert h.undo(history)["present"] == 1


def test_undo_and_redo_at_the_ends_change_nothing():
    history = h.new_history("only")
    assert h.undo(history) == history
    assert h.redo(history) == history
    assert not h.can_undo(history) and not h.can_redo(history)
    assert not h.can_undo(None)


def test_pushing_the_present_again_adds_no_step():
    history = h.push(h.new_history({"paths": ["a"]}), {"paths": ["b"]})
    again = h.push(history, {"paths": ["b"]})
    assert again == history
    assert len(again["past"]) == 1


def test_functions_never_mutate_their_argument():
    state = {"paths": ["a"]}
    history = h.new_history(state)
    state["paths"].append("mutated later")
    assert history["present"] == {"paths": ["a"]}
    snapshot = {"past": list(history["past"]), "present": dict(history["present"])}
    pushed = h.push(history, {"paths": ["b"]})
    pushed["present"]["paths"].append("x")
    assert history["present"] == snapshot["present"]
    assert history["past"] == snapshot["past"]
    undone = h.undo(pushed)
    undone["present"]["paths"].append("y")
    assert h.undo(pushed)["present"] == {"paths": ["a"]}


def test_limit_keeps_only_the_newest_undo_steps():
    history = h.new_history(0)
    for n in range(1, 11):
        history = h.push(history, n, limit=3)
    assert history["past"] == [7, 8, 9]
    for _ in range(5):
        history = h.undo(history)
    assert history["present"] == 7


def test_bad_input_raises_naming_the_parameter():
    with pytest.raises(TypeError, match="history"):
        h.undo(["not", "a", "dict"])
    with pytest.raises(ValueError, match="missing"):
        h.redo({"past": []})
    with pytest.raises(ValueError, match="limit"):
        h.push(h.new_history(0), 1, limit=0)
    with pytest.raises(TypeError, match="image"):
        h.new_history(0, image=3)


def test_keys_beyond_the_four_outlive_every_edit():
    h0 = dict(h.new_history("a", image="sha"), based_on={"version": 2, "annotator": "Dr A"})
    hist = h.push(h.push(h0, "b"), "c")
    assert hist["based_on"] == {"version": 2, "annotator": "Dr A"}
    hist = h.undo(h.undo(hist))
    assert hist["present"] == "a" and hist["based_on"] == {"version": 2, "annotator": "Dr A"}
    hist = h.redo(hist)
    assert hist["present"] == "b" and hist["based_on"]["version"] == 2
    assert h.push(hist, "b")["based_on"]["annotator"] == "Dr A"  # the no-op push too
    # Copies, not shared: changing one history's fact leaves the other's alone.
    h2 = h.push(hist, "d")
    h2["based_on"]["version"] = 9
    assert hist["based_on"]["version"] == 2


def test_amend_replaces_the_present_without_a_new_step():
    history = h.push(h.new_history("a", image="x"), "b")
    history = h.undo(h.push(history, "c"))  # present b, c to redo
    history["loaded_versions"] = [2]
    amended = h.amend(history, "b2")
    assert (amended["past"], amended["present"], amended["future"]) == (["a"], "b2", [])
    assert amended["loaded_versions"] == [2] and amended["image"] == "x"
    assert h.undo(amended)["present"] == "a"
    assert history["present"] == "b"  # the history given is left as it was


def test_the_oldest_steps_go_when_the_states_outgrow_their_bytes():
    # A long session of many large outlines: the history must stay under the callback
    # body limit, or edits are drawn but no longer recorded.
    big = ["M" + "1,1L" * 2500 + "Z"]  # about 10 kB of JSON a state
    hist = h.new_history({"paths": big, "n": 0})
    for n in range(1, 60):
        hist = h.push(hist, {"paths": big, "n": n}, max_bytes=100_000)
    size = len(json.dumps(hist["past"] + [hist["present"]]))
    assert size <= 100_000
    kept = [s["n"] for s in hist["past"]]
    assert kept == list(range(59 - len(kept), 59)) and len(kept) >= 8  # the newest, in order
    assert hist["present"]["n"] == 59
    # A present larger than the budget is still kept, with nothing to undo to.
    huge = {"paths": ["M" + "1,1L" * 50_000 + "Z"], "n": 60}
    assert h.push(hist, huge, max_bytes=100_000) == {
        "image": None, "past": [], "present": huge, "future": []}
    with pytest.raises(ValueError, match="max_bytes"):
        h.push(hist, {"n": 61}, max_bytes=0)


def test_the_default_budget_keeps_a_history_under_the_callback_limit():
    from annotation_client._callback_guard import SMALL_LIMIT

    # The audit's session: a dozen regions of 128 vertices, dragged 200 times.
    regions = ["M" + "L".join(f"{100 + i}.25,{200 + j}.75" for i in range(128)) + "Z"
               for j in range(12)]
    hist = h.new_history({"paths": regions, "action": "ai"})
    for n in range(200):
        moved = [regions[0].replace("100.25", f"{100 + n}.5", 1), *regions[1:]]
        hist = h.amend(hist, {"paths": moved, "action": "density"}) if n % 50 == 0 else (
            h.push(hist, {"paths": moved, "action": "edit", "n": n}))
    assert len(json.dumps(hist)) <= h.DEFAULT_MAX_BYTES < SMALL_LIMIT // 2 + 1
    assert len(hist["past"]) >= 100  # still a long way back
