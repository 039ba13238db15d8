"""One count of regions: the status line, the measurements panel and the saved record.

With outlines that overlap, the status line counted outlines ("3 region(s)") and the
panel lesions ("Regions 2"); with an outline that rasterises in pieces, the record
counted 2 and listed 3 (audit 806 F2). A lesion is a region of the saved mask, or
several one outline covers (``_lesions.find_lesions``), everywhere; a lesion whose
outline encloses apart areas (a self-crossing ring's loops) is a region per area, as the
DICOM SR reports it.
"""

from __future__ import annotations

import pytest
from _dash_helpers import text_of

from annotation_client import _editing, _history, _measurements, _shapes, create_app

SHA = "c1" * 32
META = {"sha256": SHA, "name": "scan.png", "width": 160, "height": 120}
SHAPE = (META["height"], META["width"])
#: A lesion's outline, a region drawn over it to widen it, and a second lesion apart.
OUTLINE = "M20,20L60,20L60,60L20,60Z"
WIDENED = "M40,30L80,30L80,70L40,70Z"
APART = "M110,80L140,80L140,110L110,110Z"
#: One outline in two pieces: two squares joined by an edge run out and back.
PINCHED = "M20,20L40,20L40,30L70,30L70,20L90,20L90,40L70,40L70,30L40,30L40,40L20,40Z"
#: A self-crossing outline: a bow-tie, whose two loops the mask fills.
BOW_TIE = "M20,20L100,80L100,40L20,80Z"


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _shown(annotate, paths) -> tuple[str, str]:
    history = _history.new_history(_editing.make_state(paths, "ai"), image=SHA)
    table, status = annotate.measure(history, META, None)
    return text_of(table), text_of(status)


@pytest.mark.parametrize(("paths", "lesions"), [
    ([OUTLINE, WIDENED, APART], 2),
    ([PINCHED, APART], 3),
    ([BOW_TIE, APART], 3),
    ([OUTLINE, APART], 2),
    ([OUTLINE], 1),
])
def test_the_status_line_the_panel_and_the_record_count_alike(annotate, paths, lesions):
    table, status = _shown(annotate, paths)
    assert status.startswith(f"{lesions} region(s) ·"), status
    assert f"Regions{lesions}" in table.replace(" ", ""), table
    summary = _measurements.summarize(_shapes.paths_to_mask(paths, SHAPE), outlines=paths)
    # The record's final.regions is the count, its measurements.regions the list.
    assert summary["count"] == len(summary["regions"]) == lesions
