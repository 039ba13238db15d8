import numpy as np
import pytest

from annotation_client import _editing as e
from annotation_client import _shapes as s


def _ellipse(shape=(80, 100), center=(45, 40), radii=(30, 20)):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return ((xx - center[0]) / radii[0]) ** 2 + ((yy - center[1]) / radii[1]) ** 2 <= 1.0


def _iou(a, b):
    return np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum())


def test_make_state_validates():
    state = e.make_state(["M0,0L1,0L1,1Z"], "edit")
    assert state == {"paths": ["M0,0L1,0L1,1Z"], "action": "edit", "base": None, "density": None}
    assert e.make_state([], "ai", base="ai", density=32)["density"] == 32
    with pytest.raises(ValueError, match="max_vertices"):
        e.make_state([], "ai", density=1)
    with pytest.raises(ValueError, match="action"):
        e.make_state([], "")
    with pytest.raises(ValueError, match="base"):
        e.make_state([], "edit", base="human")


def test_density_changes_start_from_the_ai_mask_not_from_polygons():
    ai_mask = _ellipse()
    coarse = e.mask_to_regions(ai_mask, 8)
    state = e.make_state(coarse, "ai", base="ai")
    fine = e.revectorize(state, 96, ai_mask.shape, ai_mask)
    assert fine["base"] == "ai" and fine["action"] == "density" and fine["density"] == 96
    assert s.vertex_count(fine["paths"]) > s.vertex_count(coarse)
    # Going back to the same density gives the same outline: nothing degrades.
    again = e.revectorize(
        e.revectorize(fine, 8, ai_mask.shape, ai_mask), 96, ai_mask.shape, ai_mask
    )
    assert again["paths"] == fine["paths"]
    assert _iou(s.paths_to_mask(fine["paths"], ai_mask.shape), ai_mask) > 0.95


def test_density_on_an_edited_outline_keeps_its_base():
    edited = e.make_state(["M10,10L60,10L60,50L10,50Z"], "edit")
    first = e.revectorize(edited, 8, (80, 100))
    assert first["base"] == {"paths": edited["paths"]}
    second = e.revectorize(first, 64, (80, 100))
    assert second["base"] == first["base"]
    square = np.zeros((80, 100), bool)
    square[10:50, 10:60] = True
    assert _iou(s.paths_to_mask(second["paths"], (80, 100)), square) > 0.97


def test_max_vertices_is_checked():
    with pytest.raises(ValueError, match="max_vertices"):
        e.revectorize(e.empty_state(), 2, (10, 10))
    with pytest.raises(TypeError, match="max_vertices"):
        e.revectorize(e.empty_state(), 8.5, (10, 10))


def _square(x0, y0, x1, y1) -> str:
    """A region's path over the pixels x0..x1-1, y0..y1-1."""
    return f"M{x0},{y0}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"


def _rect_mask(shape, x0, y0, x1, y1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


#: A box drawn about 15 % wider than its lesion, and the model's outline in it.
BOX_SHAPE = (120, 160)
BOX = (50, 40, 90, 75)
LESION = _ellipse(BOX_SHAPE, center=(70, 57), radii=(16, 13))


def test_box_replaces_the_outline_it_overlaps_whole_and_keeps_other_regions_verbatim():
    # BUSI malignant 50's case: the AI outline is the lesion over-segmented, reaching
    # far out of the box. Its part outside the box was kept, cut along the box's edge: an
    # L-shaped strip the calipers measured. It is the box's lesion: all of it goes.
    far = _square(120, 90, 150, 110)  # away from the box: must survive untouched
    over = _square(20, 20, 110, 100)  # outside the box: 5.1 times the box's area
    state = e.merge_box([far, over], BOX, LESION, BOX_SHAPE, 64)
    assert state["action"] == "box"
    assert state["paths"][0] == far and len(state["paths"]) == 2
    result = s.paths_to_mask(state["paths"][1:], BOX_SHAPE)
    assert _iou(result, LESION) > 0.95
    assert not (result & ~_rect_mask(BOX_SHAPE, *BOX)).any()
    assert state[e.BOX_OUTSIDE] == {"replaced": 1}
    assert e.box_note(state) == "replaced the outline it overlapped"


def test_a_region_wholly_in_the_box_is_replaced_without_a_note():
    state = e.merge_box([_square(60, 50, 80, 65)], BOX, LESION, BOX_SHAPE, 64)
    assert _iou(s.paths_to_mask(state["paths"], BOX_SHAPE), LESION) > 0.95
    assert e.BOX_OUTSIDE not in state and e.box_note(state) is None


def test_pieces_of_a_fragmented_outline_are_replaced_though_each_holds_little_of_it():
    # Each holds under half of the new outline, but reaches out of the box by less than
    # the box's area: pieces of this lesion, not a larger structure.
    left, right = _square(45, 45, 70, 70), _square(70, 45, 95, 70)
    state = e.merge_box([left, right], BOX, LESION, BOX_SHAPE, 64)
    assert _iou(s.paths_to_mask(state["paths"], BOX_SHAPE), LESION) > 0.95
    assert state[e.BOX_OUTSIDE] == {"replaced": 2}
    assert e.box_note(state) == "replaced the 2 outlines it overlapped"


def test_a_larger_structure_the_box_only_touched_is_cut_at_the_box():
    # It holds under half of the new outline and reaches out of the box by more than
    # the box's area: another structure (a hand-drawn one, say) that the box's lesion
    # touches. Only its part inside the box gives way.
    big = _square(0, 0, 66, 120)  # 1400 px inside the box, 6520 outside (box: 1400)
    inside = _rect_mask(BOX_SHAPE, *BOX)
    assert (s.paths_to_mask([big], BOX_SHAPE) & LESION).sum() < 0.5 * LESION.sum()
    state = e.merge_box([big], BOX, LESION, BOX_SHAPE, 64)
    result = s.paths_to_mask(state["paths"], BOX_SHAPE)
    np.testing.assert_array_equal(result[inside], LESION[inside])
    big_mask = s.paths_to_mask([big], BOX_SHAPE)
    assert _iou(result & ~inside, big_mask & ~inside) > 0.97
    assert e.BOX_OUTSIDE not in state


def test_a_region_the_new_outline_only_grazes_is_cut_not_replaced():
    # Beside the lesion, sharing a column of pixels with its outline (under a tenth of
    # either): another region, smaller than the box, so only the overlap rule keeps it.
    beside = _square(84, 45, 110, 70)
    shared = (s.paths_to_mask([beside], BOX_SHAPE) & LESION).sum()
    assert 0 < shared < e.SAME_LESION_OVERLAP * LESION.sum()
    state = e.merge_box([beside], BOX, LESION, BOX_SHAPE, 64)
    result = s.paths_to_mask(state["paths"], BOX_SHAPE)
    inside = _rect_mask(BOX_SHAPE, *BOX)
    np.testing.assert_array_equal(result[inside], LESION[inside])
    assert _iou(result & ~inside, _rect_mask(BOX_SHAPE, 90, 45, 110, 70)) > 0.97
    assert e.BOX_OUTSIDE not in state


def test_a_region_cut_at_the_box_leaves_no_slivers_outside_it():
    # Regions reaching into the box but not into its new outline are cut at its edge
    # (the box says nothing else is in there). What is cut off and nowhere wider than
    # SLIVER_WIDTH_PX, or smaller than SLIVER_BOX_SHARE of the box, goes too: it was a
    # strip along the edge to select by its 2-px line and delete.
    lesion = _rect_mask(BOX_SHAPE, 70, 50, 85, 70)
    thin = _square(50, 36, 70, 50)  # 4 px above the box, 80 px: goes
    tiny = _square(85, 55, 95, 60)  # 5x5 px right of it (< 2 % of the box): goes
    thick = _square(5, 45, 60, 72)  # 45 px wide left of it: kept
    state = e.merge_box([thin, tiny, thick], BOX, lesion, BOX_SHAPE, 64)
    result = s.paths_to_mask(state["paths"], BOX_SHAPE)
    inside = _rect_mask(BOX_SHAPE, *BOX)
    np.testing.assert_array_equal(result[inside], lesion[inside])
    assert not result[:40, :].any() and not result[:, 90:].any()
    assert _iou(result & ~inside, _rect_mask(BOX_SHAPE, 5, 45, 50, 72)) > 0.97
    assert state[e.BOX_OUTSIDE] == {"removed": 2}
    assert e.box_note(state) == "removed 2 slivers of outline left outside its edge"


def test_the_sliver_width_is_inclusive_and_pieces_the_box_did_not_cut_stay():
    lesion = _rect_mask(BOX_SHAPE, 70, 50, 85, 70)
    four = _square(50, 36, 90, 50)  # 4 px above the box, 160 px: goes
    five = _square(50, 71, 90, 80)  # 5 px below the box, 200 px: stays
    # One region of two pieces: the far one is not cut by the box, and stays whole.
    two = "M52,45L58,45L58,55L52,55Z M140,100L143,100L143,103L140,103Z"
    state = e.merge_box([four, five, two], BOX, lesion, BOX_SHAPE, 64)
    result = s.paths_to_mask(state["paths"], BOX_SHAPE)
    assert not result[:40, :].any()
    assert result[75:80, 51:89].all()
    assert result[100:103, 140:143].all()
    assert state[e.BOX_OUTSIDE] == {"removed": 1}
    assert e.box_note(state) == "removed a sliver of outline left outside its edge"


def test_a_box_the_model_finds_nothing_in_leaves_the_outline_as_it_was():
    # The radiologist has said the lesion is in the box; an empty answer does not say
    # where it is instead. Before, the outline was erased from the box.
    paths = [_square(20, 20, 110, 100), _square(120, 90, 150, 110)]
    empty = np.zeros(BOX_SHAPE, bool)
    empty[0:10, 0:10] = True  # outside the box: not used
    state = e.merge_box(paths, BOX, empty, BOX_SHAPE, 64)
    assert state["paths"] == paths and state["action"] == "box"
    assert e.box_note(state) == e.BOX_FOUND_NOTHING
    assert "found nothing" in e.box_note(state)


def test_box_note_is_none_for_other_states_and_for_what_it_cannot_read():
    assert e.box_note(e.make_state([], "edit")) is None
    assert e.box_note({"box_outside": {"replaced": True, "removed": "2"}}) is None
    assert e.box_note({"box_outside": {"replaced": 1, "removed": 3}}) == (
        "replaced the outline it overlapped; removed 3 slivers of outline left outside"
        " its edge"
    )
    assert e.box_note(None) is None


def test_box_must_fit_the_image():
    with pytest.raises(ValueError, match="box"):
        e.merge_box([], (0, 0, 200, 10), np.zeros((10, 10), bool), (10, 10), 32)
    with pytest.raises(ValueError, match="predicted"):
        e.merge_box([], (0, 0, 5, 5), np.zeros((9, 10), bool), (10, 10), 32)


# --- Grow and Shrink -----------------------------------------------------------------


def test_the_offset_step_follows_the_image_size():
    assert [e.offset_step(shape) for shape in [(80, 100), (450, 500), (1024, 768), (8192, 10)]] == [
        1, 2, 4, 32,
    ]


def test_grow_then_shrink_gives_back_the_very_outline_it_started_from():
    drawn = e.make_state(["M100,100L300,100L300,250L100,250Z"], "edit", density=32)
    shape = (450, 500)  # a step of 2 px
    grown = e.offset_outline(drawn, 1, shape, 32)
    assert grown["action"] == "grow" and grown["density"] == 32
    assert grown["offset_from"] == {"paths": drawn["paths"], "pixels": 2, "density": 32}
    area = s.paths_to_mask(grown["paths"], shape).sum()
    # Two pixels on every side; each corner rounds off the 3 pixels over 2 px from it.
    assert abs(area - (204 * 154 - 4 * 3)) <= 4
    twice = e.offset_outline(grown, 1, shape, 32)
    assert twice["offset_from"]["pixels"] == 4
    assert s.paths_to_mask(twice["paths"], shape).sum() > area
    # Two steps back: the hand-drawn paths themselves, not a re-traced copy of them.
    back = e.offset_outline(e.offset_outline(twice, -1, shape, 32), -1, shape, 32)
    assert back["paths"] == drawn["paths"] and back["density"] == 32
    assert back["action"] == "shrink"  # what the click did, not where the run stands
    assert back["offset_from"]["pixels"] == 0
    shrunk = e.offset_outline(back, -1, shape, 8)
    assert shrunk["action"] == "shrink" and shrunk["density"] == 8
    assert s.paths_to_mask(shrunk["paths"], shape).sum() == 196 * 146


def test_a_run_of_clicks_works_from_where_it_began_and_another_edit_ends_it():
    ai_mask = _ellipse()
    ai = e.make_state(e.mask_to_regions(ai_mask, 16), "ai", base="ai", density=16)
    # Many clicks do not wear the outline smooth: ten out and ten in is where it began.
    state = ai
    for steps in [1] * 10 + [-1] * 10:
        state = e.offset_outline(state, steps, ai_mask.shape, 16)
    assert state["paths"] == ai["paths"]
    # Shrunk away, then back: growing again from the run's start brings it back.
    gone = e.offset_outline(ai, -25, ai_mask.shape, 16)
    assert gone["paths"] == [] and gone["offset_from"]["pixels"] == -25
    assert e.offset_outline(gone, 25, ai_mask.shape, 16)["paths"] == ai["paths"]
    # A density change starts afresh from the grown outline, and so does the next run.
    grown = e.offset_outline(ai, 3, ai_mask.shape, 16)
    moved = e.revectorize(grown, 64, ai_mask.shape)
    assert "offset_from" not in moved
    again = e.offset_outline(moved, 1, ai_mask.shape, 64)
    assert again["offset_from"] == {"paths": moved["paths"], "pixels": 1, "density": 64}


@pytest.mark.parametrize("steps", [0, 1.0, True, None])
def test_offset_steps_are_whole_and_non_zero(steps):
    with pytest.raises(ValueError, match="steps"):
        e.offset_outline(e.make_state(["M1,1L5,1L5,5Z"], "edit"), steps, (10, 10), 8)


def test_the_offset_step_is_half_a_millimetre_when_the_pixel_spacing_is_known():
    shape = (450, 500)  # 2 px without a spacing
    steps = [e.offset_step(shape, spacing) for spacing in
             [(0.1, 0.1), (0.08, 0.08), (0.1, 0.15), (0.6, 0.6), (5.0, 5.0), (0.001, 0.001)]]
    # Whole pixels, at least one; pixels not square in mm take the mean of the two.
    assert steps == [5, 6, 4, 1, 1, 500]
    assert e.offset_step(shape, None) == 2
    with pytest.raises(ValueError, match="pixel_spacing"):
        e.offset_step(shape, (0.0, 0.1))
    drawn = e.make_state(["M100,100L300,100L300,250L100,250Z"], "edit", density=32)
    grown = e.offset_outline(drawn, 2, shape, 32, pixel_spacing=(0.1, 0.1))
    assert grown["offset_from"]["pixels"] == 10


def test_the_status_line_gives_a_run_in_mm_as_well_when_it_can():
    assert e.offset_text(4) == "+4 px"
    assert e.offset_text(-6, None) == "-6 px"
    assert e.offset_text(5, (0.1, 0.1)) == "+5 px, +0.5 mm"
    assert e.offset_text(-12, [0.08, 0.08]) == "-12 px, -1.0 mm"
    assert e.offset_text(0, (0.1, 0.1)) == "0 px"  # back where the run began
    # After "by", the size alone: the word before it gives the sign.
    assert e.offset_text(-12, [0.08, 0.08], signed=False) == "12 px, 1.0 mm"
    assert e.offset_text(3, signed=False) == "3 px"


def test_with_pixels_not_square_the_status_line_gives_the_move_sideways_and_in_depth():
    # 0.3 mm between rows, 0.1 between columns: a step of 2 px moves the outline 0.2 mm
    # sideways and 0.6 mm in depth. The status line said "0.4 mm", the mean, which it
    # moves by in no direction.
    shape, spacing = (100, 100), (0.3, 0.1)
    drawn = e.make_state(["M30,30L70,30L70,70L30,70Z"], "edit", density=32)
    grown = e.offset_outline(drawn, 1, shape, 32, pixel_spacing=spacing)
    twice = e.offset_outline(grown, 1, shape, 32, pixel_spacing=spacing)
    assert grown["offset_from"]["pixels"] == 2
    mask = s.paths_to_mask(grown["paths"], shape)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert (rows[0], cols[0]) == (28, 28)  # 2 px each way, 0.6 mm down, 0.2 mm across
    assert e.offset_change_text(grown, drawn, spacing) == (
        "grow by 2 px, 0.2 mm sideways, 0.6 mm in depth")
    assert e.offset_change_text(twice, grown, [0.3, 0.1]) == (
        "grow by 2 px, 0.2 mm sideways, 0.6 mm in depth (net +4 px, +0.4 mm sideways, "
        "+1.2 mm in depth since the first Grow/Shrink of this run)")
    assert e.offset_text(-2, (0.1, 0.3)) == "-2 px, -0.6 mm sideways, -0.2 mm in depth"


def test_a_step_of_a_run_reads_as_the_step_then_the_run_net():
    """Grow, Grow, Shrink read "shrink (+5 px in all)": a shrink that said plus. Now
    the step says its own size, and the run's net comes after, named as the net."""
    shape, spacing = (100, 100), (0.1, 0.1)  # 5 px a step
    drawn = e.make_state(["M30,30L70,30L70,70L30,70Z"], "edit", density=32)
    grown = e.offset_outline(drawn, 1, shape, 32, pixel_spacing=spacing)
    twice = e.offset_outline(grown, 1, shape, 32, pixel_spacing=spacing)
    shrunk = e.offset_outline(twice, -1, shape, 32, pixel_spacing=spacing)
    back = e.offset_outline(shrunk, -1, shape, 32, pixel_spacing=spacing)
    assert e.offset_change_text(grown, drawn, spacing) == "grow by 5 px, 0.5 mm"
    assert e.offset_change_text(twice, grown, spacing) == (
        "grow by 5 px, 0.5 mm (net +10 px, +1.0 mm since the first Grow/Shrink of this run)")
    assert e.offset_change_text(shrunk, twice, spacing) == (
        "shrink by 5 px, 0.5 mm (net +5 px, +0.5 mm since the first Grow/Shrink of this run)")
    assert e.offset_change_text(back, shrunk) == (
        "shrink by 5 px (back to the outline before the first Grow/Shrink of this run)")
    # Two clicks in one answer are one step of both; a run after another edit starts anew.
    assert e.offset_change_text(e.offset_outline(drawn, 2, shape, 32), drawn) == "grow by 2 px"
    edited = e.make_state(["M20,20L70,30L70,70L30,70Z"], "edit", density=32)
    again = e.offset_outline(edited, -1, shape, 32)
    assert e.offset_change_text(again, twice) == "shrink by 1 px"
    assert e.offset_change_text(again) == "shrink by 1 px"


def test_clicks_are_counted_from_the_record_of_those_applied():
    # Two requests built from one record (the browser keeps the newest answer).
    assert e.unapplied_clicks(None, "p", 1, None) == (1, {"page": "p", "grow": 1, "shrink": 0})
    assert e.unapplied_clicks(None, "p", 2, None) == (2, {"page": "p", "grow": 2, "shrink": 0})
    record = {"page": "p", "grow": 2, "shrink": 1}
    assert e.unapplied_clicks(record, "p", 4, 2) == (1, {"page": "p", "grow": 4, "shrink": 2})
    # Nothing new, or a request older than the record: no step, the record itself.
    for grow, shrink in [(2, 1), (1, 1), (None, None), (0, 0)]:
        steps, kept = e.unapplied_clicks(record, "p", grow, shrink)
        assert steps == 0 and kept is record
    # The page drawn again: its buttons count from none, whatever the record says.
    assert e.unapplied_clicks(record, "q", 1, None) == (1, {"page": "q", "grow": 1, "shrink": 0})
    # No token (or not one a page makes) never matches: every count is new.
    unknown = {"page": None, "grow": 1, "shrink": 0}
    assert e.unapplied_clicks(unknown, None, 1, None)[0] == 1
    assert e.unapplied_clicks(record, "p" * 65, 2, None) == (2, {**unknown, "grow": 2})


def test_clicks_of_a_request_that_got_no_answer_are_not_new():
    """A Grow made while the client was unreachable moved nothing: the next Grow, once it
    is back, is one step, not two (the counts of the failed request are sent as lost)."""
    record = {"page": "p", "grow": 2, "shrink": 1}
    lost = {"page": "p", "grow": 3, "shrink": 1}
    assert e.unapplied_clicks(record, "p", 4, 1, lost) == (1, {"page": "p", "grow": 4,
                                                               "shrink": 1})
    # The lost click alone is no step, and writes nothing.
    steps, kept = e.unapplied_clicks(record, "p", 3, 1, lost)
    assert steps == 0 and kept is record
    # Lost counts behind the record change nothing; another drawing's, or no page's,
    # are not this drawing's; a forged one only holds clicks back.
    assert e.unapplied_clicks(record, "p", 4, 2, {"page": "p", "grow": 1, "shrink": 0})[0] == 1
    for other in [{**lost, "page": "q"}, {**lost, "page": None}, "lost", [3, 1],
                  {"page": "p", "grow": "3", "shrink": True}]:
        assert e.unapplied_clicks(record, "p", 4, 1, other)[0] == 2
    assert e.unapplied_clicks(None, None, 4, 1, {**lost, "page": None})[0] == 3


@pytest.mark.parametrize("count", [-1, True, "3", 2.5, e.MAX_CLICK_COUNT + 1, [1]])
def test_a_click_count_no_browser_sends_adds_no_click(count):
    assert e.unapplied_clicks(None, "p", count, None) == (0, None)
    assert e.unapplied_clicks(None, "p", 3.0, count) == (3, {"page": "p", "grow": 3, "shrink": 0})
