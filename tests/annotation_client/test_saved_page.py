"""The Saved page (``/saved``): its pure helpers, its callbacks, and one browser test.

The callbacks run inside ``app.server.test_request_context()`` against a real
SQLite index in tmp_path, filled by :class:`AnnotationStore` saves of
:func:`build_record` records with hand-made 3 x 4 masks and fixed save times
(``_saved_data.py``; the ``saved_paths`` fixture of conftest.py saves the three of
``save_three``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import time

import dash
import numpy as np
import pytest
from _dash_helpers import (
    click,
    closed_port,
    console_errors,
    find_component,
    pick_option,
    settled,
    text_of,
    upload,
    wait_for,
)
from _saved_data import (
    AI_A,
    EDITED_A,
    HAND_B,
    HEADER,
    SHA_A,
    SHA_B,
    UTC,
    add_versions,
    png_bytes,
    save_version,
)
from dash.exceptions import PreventUpdate
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids
from annotation_client._app import INDEX_KEY
from annotation_client._record import build_record
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def saved():
    from annotation_client.pages import saved

    return saved


# --------------------------------------------------------------------------- saved versions
# The three versions of the saved_paths fixture (conftest.py, _saved_data.save_three).


def _files(sha: str, version: int) -> str:
    """A version's *Files* cell: its stored SVG and mask, linked."""
    return f"[SVG](/api/saved/{sha}/{version}/svg) · [PNG](/api/saved/{sha}/{version}/mask)"


def _shown(paths):
    """The table rows of the three versions, as the page shows them."""
    a = {"annotator": "Dr Ada", "image": "left.png", "open": "", "dicom": "", "ai_label": "benign",
         "ai_p_malignant": 0.3, "regions": 1, "long_axis_mm": None,
         "perpendicular_axis_mm": None, "long_axis_px": None, "perpendicular_axis_px": None,
         # The outline's model and the AI label's: two versions (the fixture's records).
         "model_version": "2.1", "classification_model_version": "0.9",
         "box_model_versions": "—", "record_status": "ok"}
    return {
        "a1": a | {"saved_at": "2024-05-01 10:00:00", "version": 1, "final_label": "benign",
                   "files": _files(SHA_A, 1),
                   "birads_assessment": "3", "dice_ai_vs_final": 0.667, "edited": "yes",
                   "record": paths["a1"]},
        "a2": a | {"saved_at": "2024-05-02 09:30:00", "version": 2, "files": _files(SHA_A, 2),
                   "final_label": "malignant", "birads_assessment": "4C",
                   "dice_ai_vs_final": 1.0, "edited": "no", "record": paths["a2"]},
        "b1": {"saved_at": "2024-05-01 12:00:00", "annotator": "Dr Bo",
               "image": "study7/right.png", "open": "", "files": _files(SHA_B, 1), "dicom": "",
               "version": 1,
               "final_label": "—",
               "birads_assessment": "—", "ai_label": "—", "ai_p_malignant": None,
               "dice_ai_vs_final": None,
               "edited": "—", "regions": 2, "long_axis_mm": None,
               "perpendicular_axis_mm": None, "long_axis_px": None,
               "perpendicular_axis_px": None, "model_version": "—",
               "classification_model_version": "—", "box_model_versions": "—",
               "record_status": "ok",
               "record": paths["b1"]},
    }


@pytest.fixture
def app(data_dir, saved_paths):
    return create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})


def _plain(value):
    """Dash components as plain JSON data, to compare exactly."""
    return json.loads(json.dumps(value, default=lambda o: o.to_plotly_json()))


# --------------------------------------------------------------------------- table_rows


def _index_row(**changes) -> dict:
    """A row as AnnotationIndex.query returns it."""
    row = {
        "image_sha256": SHA_A, "version": 3, "saved_at": "2024-05-02T09:30:05Z",
        "annotator": "Dr Ada", "image_name": "left.png", "worklist_path": None, "width": 4,
        "height": 3, "final_label": "malignant", "ai_label": "benign",
        "ai_p_malignant": 0.12345, "segmented": True, "dice_ai_vs_final": 0.6666666666666666,
        "edited": True, "regions": 2, "max_diameter_px": 70.26, "perpendicular_diameter_px": 43.14,
        "max_diameter_mm": None, "perpendicular_diameter_mm": None, "empty": False,
        "model_version": "2.1", "classification_model_version": "2.1", "box_model_versions": None,
        "record_path": "/data/a1/v003.json", "birads_assessment": "4B",
        "birads_shape": "irregular", "birads_orientation": None,
        "birads_margin": "angular; spiculated", "birads_echo_pattern": None,
        "birads_posterior_features": None, "note": "Biopsy advised.",
    }
    return row | changes


@pytest.mark.parametrize(
    ("calipers", "shown"),
    [
        ({"max_diameter_mm": 12.34, "perpendicular_diameter_mm": 8.06,
          "max_diameter_px": 123.4, "perpendicular_diameter_px": 80.6},
         (12.3, 8.1, 123.4, 80.6)),
        ({"max_diameter_mm": 12.34, "max_diameter_px": 123.4}, (12.3, None, 123.4, None)),
        ({"max_diameter_px": 70.26, "perpendicular_diameter_px": 43.14},
         (None, None, 70.3, 43.1)),
        ({}, (None, None, None, None)),
    ],
)
def test_the_size_is_long_and_perpendicular_axis_in_mm_if_known_and_in_px(saved, calipers,
                                                                           shown):
    assert tuple(saved.size(calipers).values()) == shown
    assert list(saved.size(calipers)) == ["long_axis_mm", "perpendicular_axis_mm",
                                          "long_axis_px", "perpendicular_axis_px"]


def test_the_size_sorts_as_numbers_in_the_table_each_unit_apart(saved):
    """The table sorts in the browser by value: numbers, so 12.3 comes after 7.0; and a
    column holds one unit, so 6.2 mm (62 px) no longer sorts below 70 px."""
    rows = saved.table_rows([_index_row(max_diameter_px=v) for v in (12.3, 7.0)])
    assert [r["long_axis_px"] for r in rows] == [12.3, 7.0]
    assert all(type(r["long_axis_px"]) is float for r in rows)
    mixed = saved.table_rows([_index_row(max_diameter_mm=6.2, max_diameter_px=62.0),
                              _index_row(max_diameter_px=70.0)])
    assert [r["long_axis_px"] for r in mixed] == [62.0, 70.0]
    assert [r["long_axis_mm"] for r in mixed] == [6.2, None]


def test_table_rows_rounds_spells_out_and_prefers_the_worklist_path(saved):
    rows = [
        _index_row(),
        _index_row(worklist_path="study7/left.png", final_label=None, ai_label=None,
                   ai_p_malignant=None, dice_ai_vs_final=None, edited=None, regions=None,
                   model_version=None, classification_model_version=None,
                   saved_at="2024-01-31T23:59:59Z", version=1,
                   max_diameter_px=None, perpendicular_diameter_px=None,
                   birads_assessment=None),
        _index_row(edited=False, dice_ai_vs_final=1.0, ai_p_malignant=0.0005,
                   max_diameter_mm=7.026, perpendicular_diameter_mm=4.314),
    ]
    assert saved.table_rows(rows) == [
        {"saved_at": "2024-05-02 09:30:05", "annotator": "Dr Ada", "image": "left.png",
         "open": "", "files": "", "dicom": "", "version": 3, "final_label": "malignant",
         "birads_assessment": "4B",
         "ai_label": "benign", "ai_p_malignant": 0.123, "dice_ai_vs_final": 0.667,
         "edited": "yes", "regions": 2,
         "long_axis_mm": None, "perpendicular_axis_mm": None, "long_axis_px": 70.3,
         "perpendicular_axis_px": 43.1,
         "model_version": "2.1", "classification_model_version": "2.1", "box_model_versions": "—",
         "record_status": "ok",
         "record": "/data/a1/v003.json"},
        {"saved_at": "2024-01-31 23:59:59", "annotator": "Dr Ada",
         "image": "study7/left.png", "open": "", "files": "", "dicom": "", "version": 1,
         "final_label": "—",
         "birads_assessment": "—", "ai_label": "—",
         "ai_p_malignant": None, "dice_ai_vs_final": None, "edited": "—", "regions": None,
         "long_axis_mm": None, "perpendicular_axis_mm": None, "long_axis_px": None,
         "perpendicular_axis_px": None,
         "model_version": "—", "classification_model_version": "—", "box_model_versions": "—",
         "record_status": "ok",
         "record": "/data/a1/v003.json"},
        {"saved_at": "2024-05-02 09:30:05", "annotator": "Dr Ada", "image": "left.png",
         "open": "", "files": "", "dicom": "", "version": 3, "final_label": "malignant",
         "birads_assessment": "4B",
         "ai_label": "benign", "ai_p_malignant": 0.001, "dice_ai_vs_final": 1.0,
         "edited": "no", "regions": 2,
         "long_axis_mm": 7.0, "perpendicular_axis_mm": 4.3, "long_axis_px": 70.3,
         "perpendicular_axis_px": 43.1,
         "model_version": "2.1", "classification_model_version": "2.1", "box_model_versions": "—",
         "record_status": "ok",
         "record": "/data/a1/v003.json"},
    ]
    assert saved.table_rows([]) == []
    # An edited outline a few pixels off the AI's: never "1.000" beside "edited: yes".
    assert saved.table_rows([_index_row(dice_ai_vs_final=0.99973)])[0][
        "dice_ai_vs_final"] == 0.999


@pytest.mark.parametrize(
    "path, link",
    [
        ("study7/left.png", f"[Open](/?open=study7%2Fleft.png&expect={SHA_A}&version=3)"),
        # Nothing in a name can end the link, start another parameter or escape the page.
        ("a b/(1)&x=#y?.png",
         f"[Open](/?open=a%20b%2F%281%29%26x%3D%23y%3F.png&expect={SHA_A}&version=3)"),
        ("naïve [draft].png",
         f"[Open](/?open=na%C3%AFve%20%5Bdraft%5D.png&expect={SHA_A}&version=3)"),
    ],
)
def test_a_worklist_version_links_to_its_image_and_an_upload_does_not(saved, path, link):
    upload, listed = saved.table_rows([_index_row(), _index_row(worklist_path=path)], "/")
    assert upload["open"] == "" and upload["image"] == "left.png"
    assert listed["open"] == link and listed["image"] == path
    # Without a worklist nothing can be opened, and under a URL prefix the link keeps it.
    assert saved.table_rows([_index_row(worklist_path=path)])[0]["open"] == ""
    prefixed = saved.table_rows([_index_row(worklist_path=path)], "/sonotrace/")[0]["open"]
    assert prefixed == link.replace("(/?", "(/sonotrace/?")


def test_a_kept_upload_links_to_its_copy_and_a_worklist_needs_its_folder(saved):
    upload, listed = _index_row(), _index_row(worklist_path="study7/left.png")
    rows = saved.table_rows([upload, listed], "/", kept={SHA_A}, worklist=False)
    assert rows[0]["open"] == f"[Open](/?saved={SHA_A}&version=3)"
    assert rows[1]["open"] == ""  # no worklist folder to open it from
    rows = saved.table_rows([upload, listed], "/sonotrace/", kept=set(), worklist=True)
    assert rows[0]["open"] == ""  # no copy kept
    assert rows[1]["open"] == f"[Open](/sonotrace/?open=study7%2Fleft.png&expect={SHA_A}&version=3)"
    assert saved.table_rows([upload], None, kept={SHA_A})[0]["open"] == ""


def test_show_saved_links_the_uploads_whose_copy_was_kept(app, data_dir, saved_paths, saved):
    # a1 and a2 are versions of one upload (SHA_A); a copy kept since makes both openable.
    (data_dir / SHA_A / "source.png").write_bytes(b"kept")
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = saved.show_saved(True, None, None, "__any__", False)
    # Each row opens its own version (a2 is v2, a1 v1).
    assert [row["open"] for row in data] == [f"[Open](/?saved={SHA_A}&version=2)", "",
                                             f"[Open](/?saved={SHA_A}&version=1)"]
    assert [t.get("open") for t in tooltips] == [None, saved.NO_WORKLIST, None]


def test_the_assessment_sorts_in_the_scales_order_with_none_last(saved):
    """The table sorts the column's text in the browser: 0 ... 4A, 4B, 4C, 5, 6, then —."""
    scale = ["0", "1", "2", "3", "4A", "4B", "4C", "5", "6", None]
    shown = [r["birads_assessment"] for r in saved.table_rows(
        [_index_row(birads_assessment=a) for a in reversed(scale)])]  # fmt: skip
    assert sorted(shown) == ["0", "1", "2", "3", "4A", "4B", "4C", "5", "6", "—"]


def test_every_table_column_is_filled_by_table_rows(saved):
    [row] = saved.table_rows([_index_row()])
    assert [key for key, _ in saved.COLUMNS] == [key for key in row if key != "record"]


# --------------------------------------------------------------------------- summary_text


def _summary(**changes) -> dict:
    summary = {"versions": 3, "images": 2, "annotators": 2, "mean_dice": 5 / 6,
               "edited": 0.5, "label_agreement": 0.5}
    return summary | changes


def test_summary_text_of_rows_with_ai_and_labels(saved):
    parts = saved.summary_text(_summary())
    assert _plain(parts) == [
        {"type": "Strong", "namespace": "dash_html_components",
         "props": {"children": "3 version(s) of 2 image(s) by 2 annotator(s)."}},
        " Mean Dice AI vs final 0.833; outline edited in 50% of those with an AI outline.",
        " AI label = final label in 50%.",
    ]


def test_summary_text_leaves_out_what_the_rows_do_not_have(saved):
    no_ai = saved.summary_text(_summary(versions=1, images=1, annotators=1, mean_dice=None,
                                        edited=None, label_agreement=None))
    assert text_of(no_ai) == "1 version(s) of 1 image(s) by 1 annotator(s)."
    labels_only = saved.summary_text(_summary(mean_dice=None, edited=None,
                                              label_agreement=2 / 3))
    assert text_of(labels_only) == (
        "3 version(s) of 2 image(s) by 2 annotator(s). AI label = final label in 67%."
    )
    outlines_only = saved.summary_text(_summary(mean_dice=1.0, edited=0.0,
                                                label_agreement=None))
    assert text_of(outlines_only) == (
        "3 version(s) of 2 image(s) by 2 annotator(s). Mean Dice AI vs final 1.000; "
        "outline edited in 0% of those with an AI outline."
    )


def test_summary_text_says_what_each_share_is_of(saved):
    """2 of 291 versions classified read as "in 100%" alone, as if of all 291."""
    rows = [_index_row(image_sha256=f"{n:064x}", ai_label=None, dice_ai_vs_final=None)
            for n in range(289)]
    rows += [_index_row(final_label="benign", ai_label="benign"),
             _index_row(final_label="malignant", ai_label="malignant", edited=False)]
    assert text_of(saved.summary_text(saved.page_summary(rows))) == (
        "291 version(s) of 290 image(s) by 1 annotator(s). Mean Dice AI vs final 0.667; "
        "outline edited in 50% of the 2 with an AI outline. "
        "AI label = final label in 100% of the 2 version(s) with both."
    )


def test_summary_text_of_nothing(saved):
    parts = saved.summary_text(_summary(versions=0, images=0, annotators=0, mean_dice=None,
                                        edited=None, label_agreement=None))
    assert _plain(parts) == [
        {"type": "Span", "namespace": "dash_html_components",
         "props": {"children": "No saved annotation matches.", "className": "text-muted"}}
    ]


# --------------------------------------------------------------------------- layout


def test_the_page_is_registered_linked_and_has_its_ids(app, saved):
    page = next(p for p in dash.page_registry.values() if p["path"] == "/saved")
    client = app.server.test_client()
    assert '"href": "/saved"' in json.dumps(client.get("/_dash-layout").get_json())
    with app.server.test_request_context("/saved"):
        layout = page["layout"]()
    for name in ("SAVED_PAGE_LOAD", "SAVED_ANNOTATOR", "SAVED_LABEL", "SAVED_ASSESSMENT",
                 "SAVED_LATEST", "SAVED_REFRESH", "SAVED_CSV_BUTTON",
                 "SAVED_ALERT", "SAVED_SUMMARY", "SAVED_TABLE"):
        assert find_component(layout, getattr(ids, name)) is not None, name
    # The defaults the callbacks start from: latest versions, any label, every column.
    assert find_component(layout, ids.SAVED_LATEST).value is True
    assert find_component(layout, ids.SAVED_LABEL).value == saved.ANY
    assert [o["value"] for o in find_component(layout, ids.SAVED_LABEL).options] == [
        saved.ANY, "normal", "benign", "malignant", "none"
    ]
    assessments = find_component(layout, ids.SAVED_ASSESSMENT)
    assert assessments.value == saved.ANY
    assert [(o["value"], o["label"]) for o in assessments.options] == [
        (saved.ANY, "Any BI-RADS"),
        ("0", "BI-RADS 0 — incomplete: needs more imaging"),
        ("1", "BI-RADS 1 — negative"),
        ("2", "BI-RADS 2 — benign"),
        ("3", "BI-RADS 3 — probably benign"),
        ("4A", "BI-RADS 4A — low suspicion of malignancy"),
        ("4B", "BI-RADS 4B — moderate suspicion of malignancy"),
        ("4C", "BI-RADS 4C — high suspicion of malignancy"),
        ("5", "BI-RADS 5 — highly suggestive of malignancy"),
        ("6", "BI-RADS 6 — known biopsy-proven malignancy"),
        ("none", "No BI-RADS assessment"),
    ]
    assert [c["id"] for c in find_component(layout, ids.SAVED_TABLE).columns] == [
        key for key, _ in saved.COLUMNS
    ]


# --------------------------------------------------------------------------- show_saved


@pytest.mark.parametrize(
    "annotator, label, latest, expected",
    [
        (None, "__any__", True, ["a2", "b1"]),  # what the page opens with
        (None, "__any__", False, ["a2", "b1", "a1"]),
        ("Dr Ada", "__any__", False, ["a2", "a1"]),
        ("Dr Ada", "__any__", True, ["a2"]),
        ("Dr Bo", None, False, ["b1"]),
        (None, "benign", False, ["a1"]),
        (None, "benign", True, []),  # image A's newest version is malignant
        (None, "none", False, ["b1"]),
        ("", "malignant", False, ["a2"]),  # a cleared annotator dropdown
    ],
)
def test_show_saved_applies_the_filters(app, saved_paths, saved, annotator, label, latest,
                                        expected):
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, summary, names, note = saved.show_saved(
            True, None, annotator, label, latest
        )
    shown = _shown(saved_paths)
    assert data == [shown[key] for key in expected]
    why = {"a1": saved.NOT_KEPT, "a2": saved.NOT_KEPT, "b1": saved.NO_WORKLIST}
    # Neither image can be read back here: whether it is a DICOM is not known.
    # Image A's AI label came from another model version than its outline: hover says so.
    models = {"classification_model_version": (
        "The AI label and P(malignant) came from model version 0.9, the outline from 2.1: "
        "the model server changed between them.")}
    assert tooltips == [{"image": f"record: {saved_paths[key]}", "open": why[key],
                         "files": saved.FILES_SAID, "dicom": saved.NO_DICOM_SOURCE}
                        | (models if key != "b1" else {})
                        for key in expected]
    assert names == ["Dr Ada", "Dr Bo"]  # every annotator, whatever the filter
    if not expected and latest:
        # Nothing, because another version is each image's latest: the page says how.
        assert "turn it off to see every matching version" in text_of(note)
    else:
        assert note is None
    if expected:
        assert text_of(summary).startswith(f"{len(expected)} version(s) of ")
    else:
        assert text_of(summary) == "No saved annotation matches."


def test_the_box_models_column_shows_each_box_models_version_and_says_a_change(
        app, data_dir, saved_paths, saved):
    index = app.server.config[INDEX_KEY]
    # The CSV and the API gave the box models' versions; the table did not show them.
    sha_c, sha_d = "c3" * 32, "d4" * 32
    upgraded, shipped = {"name": "unet", "version": "2.2"}, {"name": "unet", "version": "2.1"}
    # Over the 2.1 outline, a box of the upgraded server, then one of the first.
    save_version(data_dir, sha_c, name="boxed.png", ai=AI_A, box_models=[upgraded, shipped],
                 saved_at=dt.datetime(2024, 5, 3, 9, 0, tzinfo=UTC), index=index)
    # A box of the outline's own model.
    save_version(data_dir, sha_d, name="same.png", ai=AI_A, box_models=[shipped],
                 saved_at=dt.datetime(2024, 5, 3, 8, 0, tzinfo=UTC), index=index)
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = saved.show_saved(True, None, None, "__any__", True)
    shown = {row["image"]: (row["model_version"], row["box_model_versions"], tip)
             for row, tip in zip(data, tooltips, strict=True)}
    said = ("Parts of the outline were re-segmented in a box by model version(s) 2.2, 2.1, "
            "the outline first given by 2.1: the model server changed between them.")
    assert shown["boxed.png"][:2] == ("2.1", "2.2, 2.1")
    assert shown["boxed.png"][2]["box_model_versions"] == said
    assert shown["same.png"][:2] == ("2.1", "2.1")
    assert "box_model_versions" not in shown["same.png"][2]
    # Without a box: a dash, as the other model columns, and no hover text.
    assert shown["left.png"][1] == shown["study7/right.png"][1] == "—"
    assert "box_model_versions" not in shown["left.png"][2]
    # Named in the table's header beside the other models, sorted by the table like them.
    columns = dict(saved.COLUMNS)
    assert columns["box_model_versions"] == "Box models"
    keys = list(columns)
    assert keys.index("box_model_versions") == keys.index("classification_model_version") + 1
    assert saved._column("box_model_versions", "Box models") == {
        "id": "box_model_versions", "name": "Box models"}


@pytest.mark.parametrize(
    "annotator, label, latest, assessment, expected",
    [
        (None, "__any__", False, "__any__", ["a2", "b1", "a1"]),
        (None, "__any__", False, None, ["a2", "b1", "a1"]),
        (None, "__any__", False, "3", ["a1"]),
        (None, "__any__", False, "4C", ["a2"]),
        (None, "__any__", False, "none", ["b1"]),
        (None, "__any__", False, "5", []),
        (None, "__any__", True, "3", []),  # image A's newest version is 4C
        (None, "benign", False, "4C", []),
        ("Dr Ada", "malignant", True, "4C", ["a2"]),
    ],
)
def test_show_saved_filters_by_assessment(app, saved_paths, saved, annotator, label, latest,
                                          assessment, expected):
    with app.server.test_request_context("/_dash-update-component"):
        data, _tooltips, _summary, _names, note = saved.show_saved(
            True, None, annotator, label, latest, assessment
        )
    shown = _shown(saved_paths)
    assert data == [shown[key] for key in expected]
    # The latest-version hint counts the assessment among the filters.
    hinted = not expected and latest
    assert ("turn it off to see every matching version" in text_of(note)) is hinted


@pytest.mark.parametrize(("label", "assessment"), [("cancer", "__any__"), (None, "4")])
def test_a_filter_the_page_never_offers_is_said_not_a_server_error(app, saved_paths, saved,
                                                                  label, assessment):
    # A forged request, or a tab from before an upgrade: the page says so.
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, summary, names, alert = saved.show_saved(
            True, None, None, label, False, assessment
        )
        href = saved.csv_link(None, label, False, assessment)
    assert (data, tooltips, summary, names) == ([], [], None, [])
    # Its download fails, with the API's reason (the link's download attribute keeps the
    # page where it is).
    assert app.server.test_client().get(href).status_code == 400
    assert text_of(alert).startswith("A filter is not one this page offers. ")
    assert text_of(alert).endswith("; reload the page.")


def test_with_a_worklist_its_versions_link_to_the_annotate_page(data_dir, saved_paths, saved,
                                                                tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "WORKLIST_DIR": folder})
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = saved.show_saved(True, None, None, "__any__", False)
    # a2, b1, a1: only b1 was opened from the worklist; a1 and a2 were uploads.
    # The link carries the hash the version was saved under, for the Annotate page to
    # tell a file that holds other bytes now.
    assert [row["open"] for row in data] == [
        "", f"[Open](/?open=study7%2Fright.png&expect={SHA_B}&version=1)", ""]
    assert [t.get("open") for t in tooltips] == [saved.NOT_KEPT, None, saved.NOT_KEPT]


def test_a_renamed_worklist_image_is_opened_where_it_is_now(data_dir, tmp_path, saved):
    """The version's image is found by its bytes when its recorded path no longer holds
    it: renamed, moved to another folder, or replaced by another file of that name."""
    folder = tmp_path / "worklist"
    (folder / "moved").mkdir(parents=True)
    renamed, replaced = b"benign one bytes", b"benign two bytes"
    (folder / "renamed-b1.png").write_bytes(renamed)
    (folder / "moved" / "b2.png").write_bytes(replaced)
    (folder / "benign (2).png").write_bytes(b"a re-export under the old name")
    (folder / "changed.png").write_bytes(b"held by no file any more")
    shas = [hashlib.sha256(data).hexdigest() for data in (renamed, replaced, b"lost")]
    for day, (sha, path) in enumerate(zip(shas, ["benign (1).png", "benign (2).png",
                                                 "changed.png"], strict=True), start=1):
        save_version(data_dir, sha, name=path, annotator="Dr Bo", final=HAND_B,
                     saved_at=dt.datetime(2024, 5, day, 8, 0, tzinfo=UTC), worklist_path=path)
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9",
                      "WORKLIST_DIR": folder})
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, *_ = saved.show_saved(True, None, None, "__any__", False)
    # Newest first; the image column keeps the path the version was saved from.
    assert [row["image"] for row in data] == ["changed.png", "benign (2).png",
                                              "benign (1).png"]
    assert [row["open"] for row in data] == [
        # No file holds its bytes: its recorded path, the hash expected there.
        f"[Open](/?open=changed.png&expect={shas[2]}&version=1)",
        f"[Open](/?open=moved%2Fb2.png&expect={shas[1]}&version=1)",
        f"[Open](/?open=renamed-b1.png&expect={shas[0]}&version=1)",
    ]
    assert [t.get("open") for t in tooltips] == [
        None,
        "Opens moved/b2.png: the image was renamed or moved since it was saved.",
        "Opens renamed-b1.png: the image was renamed or moved since it was saved.",
    ]


def test_show_saved_summarises_the_rows_it_shows(app, saved):
    with app.server.test_request_context("/_dash-update-component"):
        latest = saved.show_saved(True, None, None, "__any__", True)[2]
        every = saved.show_saved(True, 1, None, "__any__", False)[2]
    assert text_of(latest) == (
        "2 version(s) of 2 image(s) by 2 annotator(s). Mean Dice AI vs final 1.000; "
        "outline edited in 0% of the 1 with an AI outline. AI label = final label in 0% of "
        "the 1 version(s) with both."
    )
    assert text_of(every) == (
        "3 version(s) of 2 image(s) by 2 annotator(s). Mean Dice AI vs final 0.833; "
        "outline edited in 50% of the 2 with an AI outline. AI label = final label in 50% "
        "of the 2 version(s) with both."
    )


def test_a_version_whose_outline_or_mask_is_gone_is_listed_so(app, data_dir, saved_paths,
                                                               saved):
    # Every listing called them ok: the record alone was looked at.
    (data_dir / SHA_A / "v002.svg").unlink()
    (data_dir / SHA_B / "v001_mask.png").unlink()
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, _summary, _names, alert = saved.show_saved(True, None, None, "__any__",
                                                                   False)
    status = {(row["image"], row["version"]): row["record_status"] for row in data}
    assert status == {("left.png", 2): "missing: v002.svg",
                      ("study7/right.png", 1): "missing: v001_mask.png",
                      ("left.png", 1): "ok"}
    assert "restore from a backup" in tooltips[0]["record_status"]
    note = next(n for n in alert if getattr(n, "id", None) == "saved-missing")
    assert text_of(note).startswith("2 listed version(s) lack their outline or mask file")
    # As the export does: a missing mask is made again from the outline (helper-503, 2).
    assert "the export makes the mask again from the outline" in text_of(note)
    assert "left out of the export" not in text_of(note)


def test_refresh_shows_a_save_made_since(app, data_dir, saved):
    with app.server.test_request_context("/_dash-update-component"):
        before = saved.show_saved(True, None, None, "__any__", True)[0]
        # A save through the app's indexed store, as the Annotate page makes it.
        record = build_record(
            image={"sha256": SHA_B, "name": "right.png", "width": 4, "height": 3},
            annotator="Dr Cy", final_mask=HAND_B, final_label="normal",
            saved_at=dt.datetime(2024, 6, 1, tzinfo=UTC),
        )
        AnnotationStore(data_dir, index=app.server.config[INDEX_KEY]).save(
            SHA_B, svg="<svg/>", mask_png=png_bytes(HAND_B), record=record
        )
        after, _, _, names, _ = saved.show_saved(True, 1, None, "__any__", True)
    assert [(r["annotator"], r["version"]) for r in before] == [("Dr Ada", 2), ("Dr Bo", 1)]
    assert [(r["annotator"], r["version"], r["final_label"]) for r in after] == [
        ("Dr Cy", 2, "normal"), ("Dr Ada", 2, "malignant")
    ]
    assert names == ["Dr Ada", "Dr Bo", "Dr Cy"]


def test_show_saved_says_when_it_shows_only_the_newest(tmp_path, saved):
    # PAGE_LIMIT + 1 versions of one image, straight into the real index.
    app = create_app({"DATA_DIR": tmp_path / "data"})
    index = app.server.config[INDEX_KEY]
    record = build_record(image={"sha256": SHA_A, "name": "left.png", "width": 4, "height": 3},
                          annotator="Dr Ada", final_mask=EDITED_A,
                          saved_at=dt.datetime(2024, 1, 1, tzinfo=UTC))
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    items = [
        (record | {"version": n, "saved_at": (start + dt.timedelta(minutes=n)).isoformat()},
         f"/data/{SHA_A}/v{n:03d}.json")
        for n in range(1, saved.PAGE_LIMIT + 2)
    ]
    assert index.add_many(items) == saved.PAGE_LIMIT + 1
    with app.server.test_request_context("/_dash-update-component"):
        data, _, summary, _, note = saved.show_saved(True, None, None, "__any__", False)
        latest, _, _, _, no_note = saved.show_saved(True, None, None, "__any__", True)
    assert len(data) == saved.PAGE_LIMIT
    assert data[0]["version"] == saved.PAGE_LIMIT + 1 and data[-1]["version"] == 2
    # How many more there are, and that the summary and the CSV hold them (it said only
    # "Showing the newest 2000", summarised those 2000, and the CSV stopped at 5000).
    [note] = note
    assert note.id == "saved-more"
    assert text_of(note) == (
        f"Showing the newest {saved.PAGE_LIMIT} of {saved.PAGE_LIMIT + 1} matching version(s): "
        f"1 more version(s) are not in the table (the summary counts them all). Narrow the "
        f"filters, or Download CSV: it holds all {saved.PAGE_LIMIT + 1}."
    )
    assert text_of(summary).startswith(f"{saved.PAGE_LIMIT + 1} version(s) of 1 image(s)")
    assert [r["version"] for r in latest] == [saved.PAGE_LIMIT + 1]
    assert no_note is None


def _blocked_app(tmp_path, data_dir):
    """An app whose SQLite index sits in a 'folder' that is a regular file."""
    (tmp_path / "blocker").write_text("a regular file, not a folder")
    url = f"sqlite:///{tmp_path}/blocker/index.sqlite3"
    return create_app({"DATA_DIR": data_dir, "DATABASE_URL": url})


def test_an_unreadable_index_shows_the_alert_and_an_empty_table(tmp_path, data_dir,
                                                               saved_paths, saved, caplog):
    app = _blocked_app(tmp_path, data_dir)
    with app.server.test_request_context("/_dash-update-component"):
        data, tooltips, summary, names, alert = saved.show_saved(
            True, None, None, "__any__", True
        )
    assert (data, tooltips, summary, names) == ([], [], None, [])
    props = alert.to_plotly_json()["props"]
    assert (props["id"], props["color"]) == ("saved-error", "danger")
    # Said once (it was the title, then the same words again in lower case).
    assert text_of(alert).startswith(
        "The saved-annotation index cannot be read. The client's log says why. Saving"
    )
    # The database's own message (here the SQLite path) goes to the log, not the page.
    assert str(tmp_path) not in text_of(alert)
    logged = [r.getMessage() for r in caplog.records if r.name.endswith("saved")]
    assert logged == [
        f"Saved page: the annotation index could not be read: [Errno 17] File exists: "
        f"'{tmp_path / 'blocker'}'"
    ]
    assert text_of(alert).endswith(
        "Saving still works: the files are written first, and the index catches up with "
        "them once it answers again."
    )


# --------------------------------------------------------------------------- download_csv


def _download(client, href: str) -> str:
    response = client.get(href)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="sonotrace_saved.csv"')
    return response.get_data(as_text=True)


def test_download_csv_is_a_link_to_the_api_with_the_filters(app, saved_paths, saved):
    client = app.server.test_client()
    with app.server.test_request_context("/saved"):
        button = find_component(saved.layout(), ids.SAVED_CSV_BUTTON)
    with app.server.test_request_context("/_dash-update-component"):
        latest = saved.csv_link(None, "__any__", True)
        bo = saved.csv_link("Dr Bo", None, False)
        nothing = saved.csv_link(None, "normal", False)
    # Before any filter is touched, the link is the defaults' (latest versions); a failed
    # answer is a failed download, never the page left for an error.
    assert (button.href, button.download, button.external_link) == (
        latest, "sonotrace_saved.csv", True)
    assert latest == "/api/saved?latest=1&format=csv"
    lines = _download(client, latest).splitlines()
    assert lines[0] == HEADER
    assert [line.split(",")[:4] for line in lines[1:]] == [
        [SHA_A, "2", "2024-05-02T09:30:00Z", "Dr Ada"],
        [SHA_B, "1", "2024-05-01T12:00:00Z", "Dr Bo"],
    ]
    assert bo == "/api/saved?annotator=Dr+Bo&latest=0&format=csv"
    assert _download(client, bo) == (
        f"{HEADER}\n{SHA_B},1,2024-05-01T12:00:00Z,Dr Bo,right.png,study7/right.png,4,3,,,,"
        # Not damaged, no area, no AI label's nor box's model.
        f"False,,,2,False,,{saved_paths['b1']},,,,,,,,,,,,,,,,,,,,,,\n"
    )
    assert _download(client, nothing) == HEADER + "\n"


def test_download_csv_takes_the_assessment_filter_and_holds_the_clinical_fields(
    app, saved_paths, saved
):
    client = app.server.test_client()
    with app.server.test_request_context("/_dash-update-component"):
        probably_benign = saved.csv_link(None, "__any__", False, "3")
    assert probably_benign == "/api/saved?assessment=3&latest=0&format=csv"
    [row] = list(csv.DictReader(io.StringIO(_download(client, probably_benign))))
    assert (row["version"], row["annotator"]) == ("1", "Dr Ada")
    assert [row[name] for name in ("birads_assessment", "birads_shape", "birads_orientation",
                                   "birads_margin", "birads_echo_pattern",
                                   "birads_posterior_features", "note")] == [
        "3", "oval", "parallel", "circumscribed", "hypoechoic", "enhancement",
        "Probably a fibroadenoma; follow up in 6 months, left breast.",
    ]  # fmt: skip


def test_download_csv_holds_every_matching_version_beyond_the_table(tmp_path, saved):
    # The table shows PAGE_LIMIT; the download stopped at 5000 (MAX_LIMIT), unsaid.
    app = create_app({"DATA_DIR": tmp_path / "data"})
    keys = add_versions(app.server.config[INDEX_KEY], 5200, per_image=4)
    with app.server.test_request_context("/_dash-update-component"):
        href = saved.csv_link(None, "__any__", False)
        note = saved.show_saved(True, None, None, "__any__", False)[4]
    rows = list(csv.DictReader(io.StringIO(_download(app.server.test_client(), href))))
    assert [(r["image_sha256"], int(r["version"])) for r in rows] == keys
    assert text_of(note[-1]).startswith(
        f"Showing the newest {saved.PAGE_LIMIT} of 5200 matching version(s): 3200 more")


def test_download_csv_of_an_unreadable_index_is_a_503(tmp_path, data_dir, saved_paths, saved):
    app = _blocked_app(tmp_path, data_dir)
    with app.server.test_request_context("/_dash-update-component"):
        href = saved.csv_link(None, "__any__", True)
    response = app.server.test_client().get(href)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_unavailable"


# --------------------------------------------------------------------------- in the browser


def _rows(dash_duo) -> list[dict]:
    """The table's rows, top to bottom, as ``{column id: text}``, read in one go."""
    return dash_duo.driver.execute_script(
        """
        var rows = document.querySelectorAll(arguments[0] + ' tr');
        var out = [];
        rows.forEach(function (tr) {
            var cells = tr.querySelectorAll('td[data-dash-column]');
            if (!cells.length) { return; }
            var row = {};
            cells.forEach(function (td) {
                row[td.getAttribute('data-dash-column')] = td.innerText.trim();
            });
            out.push(row);
        });
        return out;
        """,
        f"#{ids.SAVED_TABLE}",
    )


def _column(dash_duo, column: str) -> list[str]:
    return [row[column] for row in _rows(dash_duo)]


def _table(dash_duo) -> list[tuple[str, ...]]:
    """(annotator, image, version, final label) of each row shown."""
    return [(r["annotator"], r["image"], r["version"], r["final_label"])
            for r in _rows(dash_duo)]


def _summary_text(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.SAVED_SUMMARY}").text


@pytest.mark.browser
def test_saved_page_in_the_browser_then_a_real_save_appears(
    dash_duo, data_dir, saved_paths, tmp_path, artifacts_dir
):
    started = time.monotonic()
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")

    # 1. From the navbar: the latest version of each image, newest first.
    click(driver, By.LINK_TEXT, "Saved")
    wait_for(dash_duo, lambda: driver.current_url.endswith("/saved"), 20)
    wait_for(dash_duo, lambda: len(_table(dash_duo)) == 2, 20, "the table did not fill")
    assert _table(dash_duo) == [("Dr Ada", "left.png", "2", "malignant"),
                                ("Dr Bo", "study7/right.png", "1", "—")]
    assert _column(dash_duo, "saved_at") == ["2024-05-02 09:30:00", "2024-05-01 12:00:00"]
    # Fixed decimals, as the summary's: a Dice of 1 read "1" under "1.000".
    assert _column(dash_duo, "dice_ai_vs_final") == ["1.000", ""]
    assert _column(dash_duo, "ai_p_malignant") == ["0.300", ""]
    assert _summary_text(dash_duo) == (
        "2 version(s) of 2 image(s) by 2 annotator(s). Mean Dice AI vs final 1.000; "
        "outline edited in 0% of the 1 with an AI outline. AI label = final label in 0% of "
        "the 1 version(s) with both."
    )
    driver.save_screenshot(str(artifacts_dir / "01-latest.png"))

    # 2. Every version.
    click(driver, By.ID, ids.SAVED_LATEST)
    wait_for(dash_duo, lambda: len(_table(dash_duo)) == 3, 20, "switching off showed no more")
    assert _table(dash_duo) == [("Dr Ada", "left.png", "2", "malignant"),
                                ("Dr Bo", "study7/right.png", "1", "—"),
                                ("Dr Ada", "left.png", "1", "benign")]
    assert _column(dash_duo, "dice_ai_vs_final") == ["1.000", "", "0.667"]
    assert _column(dash_duo, "edited") == ["no", "—", "yes"]
    assert _column(dash_duo, "birads_assessment") == ["4C", "—", "3"]
    assert _summary_text(dash_duo).startswith("3 version(s) of 2 image(s) by 2 annotator(s).")

    # 2b. One BI-RADS category, picked like a user; then any again.
    def open_dropdown(component_id, what):
        click(driver, By.ID, component_id)
        return wait_for(
            dash_duo,
            lambda: driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"),
            10,
            f"the {what} dropdown shows no options",
        )

    def pick_assessment(text):
        options = open_dropdown(ids.SAVED_ASSESSMENT, "BI-RADS")
        option = next(o for o in options if o.text == text)
        # The open list scrolls to the chosen option; its search box may cover another.
        pick_option(dash_duo, option)

    pick_assessment("BI-RADS 3 — probably benign")
    wait_for(dash_duo, lambda: len(_table(dash_duo)) == 1, 20, "the BI-RADS filter did nothing")
    assert _table(dash_duo) == [("Dr Ada", "left.png", "1", "benign")]
    assert _column(dash_duo, "birads_assessment") == ["3"]
    driver.save_screenshot(str(artifacts_dir / "01b-bi-rads-3.png"))
    pick_assessment("Any BI-RADS")
    wait_for(dash_duo, lambda: len(_table(dash_duo)) == 3, 20, "Any BI-RADS showed no more")

    # 3. One annotator, picked from the dropdown like a user.
    options = open_dropdown(ids.SAVED_ANNOTATOR, "annotator")
    assert [o.text for o in options] == ["Dr Ada", "Dr Bo"]
    next(o for o in options if o.text == "Dr Bo").click()
    wait_for(dash_duo, lambda: len(_table(dash_duo)) == 1, 20, "the filter did nothing")
    assert _table(dash_duo) == [("Dr Bo", "study7/right.png", "1", "—")]
    assert _summary_text(dash_duo) == "1 version(s) of 1 image(s) by 1 annotator(s)."
    driver.save_screenshot(str(artifacts_dir / "02-filtered.png"))
    # Download CSV: a link to the API's CSV of every row the filters match, downloaded
    # where the page is (a callback's download held the rows whole, and stopped at 5000).
    link = driver.find_element(By.ID, ids.SAVED_CSV_BUTTON)
    assert (link.tag_name, link.get_attribute("download")) == ("a", "sonotrace_saved.csv")
    wait_for(dash_duo, lambda: link.get_attribute("href").endswith(
        "/api/saved?annotator=Dr+Bo&latest=0&format=csv"), 10, "the link kept old filters")
    csv_text = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(function (r) { return r.text(); }).then(done);",
        link.get_attribute("href"),
    )
    assert [line.split(",")[3] for line in csv_text.splitlines()[1:]] == ["Dr Bo"]
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
    saved_page_seconds = time.monotonic() - started

    # 4. A real save on the Annotate page (model server down: an outline drawn by no one,
    #    saved as it is) shows on the Saved page.
    click(driver, By.LINK_TEXT, "Annotate")
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    image = tmp_path / "small.png"
    Image.fromarray(np.add.outer(np.arange(24), np.arange(32)).astype(np.uint8)).save(image)
    upload(dash_duo, image)
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "small.png", 20)
    # The open's chained callbacks have answered: Save is enabled (a click on it disabled
    # does nothing), segment's alert is in place, and the recall of a stored name, which
    # would write over one typed, is done.
    settled(dash_duo, quiet=0.5)
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Browser Reader", Keys.TAB)
    wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.SAVE_BUTTON).is_enabled(), 10,
             "Save stayed disabled")
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=30)

    click(driver, By.LINK_TEXT, "Saved")
    wait_for(dash_duo, lambda: len(_table(dash_duo)) == 3, 20, "the new save is not listed")
    assert _table(dash_duo) == [("Browser Reader", "small.png", "1", "—"),
                                ("Dr Ada", "left.png", "2", "malignant"),
                                ("Dr Bo", "study7/right.png", "1", "—")]
    assert _summary_text(dash_duo).startswith("3 version(s) of 3 image(s) by 3 annotator(s).")
    driver.save_screenshot(str(artifacts_dir / "03-after-a-real-save.png"))
    errors = console_errors(dash_duo)
    (artifacts_dir / "console-errors.log").write_text("\n".join(errors))
    assert not errors, "browser console errors:\n" + "\n".join(errors)
    (artifacts_dir / "timing.txt").write_text(
        f"saved page part: {saved_page_seconds:.1f} s; "
        f"whole test: {time.monotonic() - started:.1f} s\n"
    )
    # The row is the record the save wrote, and the upload was kept beside it.
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    folder = data_dir / sha
    record = json.loads((folder / "v001.json").read_text())
    assert (record["annotator"], record["image"]["name"]) == ("Browser Reader", "small.png")
    assert (folder / "source.png").read_bytes() == image.read_bytes()

    # 5. So the new row opens it again; the older uploads, saved without a copy, do not.
    assert [(r["image"], r["open"]) for r in _rows(dash_duo)][:2] == [
        ("small.png", "Open"), ("left.png", "")
    ]
    [link] = driver.find_elements(By.CSS_SELECTOR,
                                  f"#{ids.SAVED_TABLE} td[data-dash-column='open'] a")
    assert link.get_attribute("href").endswith(f"/?saved={sha}&version=1")
    link.click()
    wait_for(dash_duo, lambda: "?saved=" in driver.current_url, 20, "the link went nowhere")
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "small.png", 30,
             "the kept upload did not open")
    notice = f"#{ids.PREVIOUS_SAVES_TEXT}"
    wait_for(dash_duo, lambda: "v1 (of 1) by Browser Reader" in dash_duo.find_element(notice).text,
             20, "the upload's saved version is not offered")
    driver.save_screenshot(str(artifacts_dir / "04-upload-opened-from-saved.png"))
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


@pytest.mark.browser
def test_open_from_the_saved_page_brings_the_worklist_image_back(
    dash_duo, data_dir, tmp_path, artifacts_dir
):
    """A version saved from the worklist opens from its row, ready to be revised."""
    folder = tmp_path / "worklist"
    (folder / "study 7").mkdir(parents=True)
    image = folder / "study 7" / "right (2).png"
    Image.fromarray(np.add.outer(np.arange(24), np.arange(32)).astype(np.uint8)).save(image)
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    # The record's outline is drawn for a 4 x 3 image; only its listing matters here.
    save_version(data_dir, sha, name=image.name, annotator="Dr Bo", final=HAND_B,
                 label="benign", saved_at=dt.datetime(2024, 5, 3, 8, 0, tzinfo=UTC),
                 worklist_path="study 7/right (2).png")
    save_version(data_dir, SHA_A, name="upload.png", annotator="Dr Ada",
                 saved_at=dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "WORKLIST_DIR": folder, "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    click(driver, By.LINK_TEXT, "Saved")
    wait_for(dash_duo, lambda: len(_rows(dash_duo)) == 2, 20, "the table did not fill")
    assert [(r["image"], r["open"]) for r in _rows(dash_duo)] == [
        ("study 7/right (2).png", "Open"), ("upload.png", "")
    ]
    # The upload has no link: one Open in the table.
    [link] = driver.find_elements(By.CSS_SELECTOR,
                                  f"#{ids.SAVED_TABLE} td[data-dash-column='open'] a")
    assert link.get_attribute("href").endswith(
        f"/?open=study%207%2Fright%20%282%29.png&expect={sha}&version=1")

    link.click()
    wait_for(dash_duo, lambda: "?open=" in driver.current_url, 20, "the link went nowhere")
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == image.name, 30,
             "the worklist image did not open")
    notice = f"#{ids.PREVIOUS_SAVES_TEXT}"
    wait_for(dash_duo, lambda: "v1 (of 1) by Dr Bo" in dash_duo.find_element(notice).text, 20,
             "the image's saved version is not offered")
    assert "final label benign" in dash_duo.find_element(notice).text
    driver.save_screenshot(str(artifacts_dir / "04-opened-from-saved.png"))
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


# --------------------------------------------------------------------------- kept uploads


def test_a_kept_upload_opens_from_its_link_or_says_why_not(app, data_dir):
    from annotation_client.pages import annotate

    data = png_bytes(np.add.outer(np.arange(12), np.arange(16)).astype(np.uint8) * 8)
    sha = hashlib.sha256(data).hexdigest()
    store = AnnotationStore(data_dir)
    # A record as the Annotate page writes it: the page reads it as the index does.
    record = build_record(image={"sha256": sha, "name": "kept scan.png", "width": 16,
                                 "height": 12},
                          annotator="Dr Ada", final_mask=np.zeros((12, 16), bool),
                          saved_at=dt.datetime(2024, 5, 1, tzinfo=UTC))
    store.save(sha, svg="<svg/>", mask_png=b"m", record=record, source=data,
               source_name="kept scan.png")
    other = png_bytes(np.zeros((5, 6), np.uint8))
    other_sha = hashlib.sha256(other).hexdigest()
    store.save(other_sha, svg="<svg/>", mask_png=b"m", record={})  # saved without a copy

    with app.server.test_request_context("/_dash-update-component"):
        meta, image, _figure, _info, alert, *_ = annotate.open_kept_upload({"saved": sha}, None)
        assert (meta["sha256"], meta["name"], meta["width"], meta["height"]) == (
            sha, "kept scan.png", 16, 12)
        assert alert is None and image["contents"].startswith("data:image/png;base64,")

        def refused(request):
            out = annotate.open_kept_upload(request, {"sha256": sha})
            assert out[0] is dash.no_update  # the open image stays
            return text_of(out[4])

        assert "No copy of this image was kept" in refused({"saved": other_sha})
        assert "This link does not name a saved image" in refused({"saved": "../../etc/passwd"})
        assert "This link does not name a saved image" in refused({"saved": "DEADBEEF"})
        store.source_path(sha).write_bytes(data[:-4])
        assert "damaged" in refused({"saved": sha})
        assert "The open image and its outline are unchanged." in refused({"saved": sha})


def test_the_saved_link_asks_first_when_work_is_unsaved(app):
    from annotation_client.pages import annotate

    no = dash.no_update
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")
    with app.server.test_request_context(f"/?saved={SHA_A}"):
        assert find_component(page["layout"](saved=SHA_A), ids.SAVED_LINK).data == SHA_A
        assert find_component(page["layout"](), ids.SAVED_LINK).data is None
        # No worklist is needed to follow it (this app has none).
        request, confirm, pending, alert, revise = annotate.open_linked(None, SHA_A,
                                                                        "unsaved-mark")
        assert request["saved"] == SHA_A and (confirm, pending, alert) == (False, None, no)
        assert revise == {"sha256": SHA_A}  # its latest saved version is loaded once open
        asked = annotate.open_linked(None, SHA_A, "unsaved-mark dirty")
        assert asked == (no, True, {"saved": SHA_A}, no, {"sha256": SHA_A})
        # Confirmed, the pending link becomes the request.
        assert annotate._request(asked[2])["saved"] == SHA_A
        with pytest.raises(PreventUpdate):
            annotate.open_linked(None, None, "")


# --------------------------------------------------------------------------- damaged records


@pytest.mark.parametrize("rebuilt", [False, True], ids=["old-index", "rebuilt-index"])
def test_a_damaged_record_shows_as_damaged_with_a_warning_and_counts_in_no_summary(
    app, data_dir, saved_paths, saved, rebuilt
):
    """a2's record cut short after it was indexed, then a restart (and, rebuilt, an index
    made anew from the files): the row says damaged and why, hover text and a warning
    say what to do, and the summary leaves it out. The same either way, bar the name."""
    record = data_dir / SHA_A / "v002.json"
    whole = record.read_bytes()
    record.write_bytes(whole[: whole.index(b'"annotator": "') + 17])
    if rebuilt:
        app.server.config[INDEX_KEY].dispose()
        (data_dir / "index.sqlite3").unlink()
    restarted = create_app({"DATA_DIR": data_dir})
    with restarted.server.test_request_context("/_dash-update-component"):
        data, tooltips, summary, names, note = saved.show_saved(
            True, None, None, "__any__", False
        )
    shown = _shown(saved_paths)
    a2 = data[0]
    assert a2["version"] == 2 and a2["record"] == saved_paths["a2"]
    assert a2["record_status"].startswith("damaged: Unterminated string")
    # None of what the record said: no label, no reading.
    assert (a2["final_label"], a2["birads_assessment"], a2["ai_label"], a2["edited"],
            a2["dice_ai_vs_final"], a2["regions"]) == ("—", "—", "—", "—", None, None)
    assert a2["image"] == "left.png"  # named by its image's other version
    assert a2["annotator"] == ("" if rebuilt else "Dr Ada")
    assert data[1:] == [shown["b1"], shown["a1"]]
    assert tooltips[0]["record_status"].startswith(f"{saved_paths['a2']} cannot be read (")
    assert "Restore it from a backup" in tooltips[0]["record_status"]
    assert "record_status" not in tooltips[1] and "record_status" not in tooltips[2]
    assert names == ["Dr Ada", "Dr Bo"]  # not the "" of a damaged record never indexed
    assert [alert.id for alert in note] == ["saved-damaged"]
    assert note[0].color == "warning"
    assert (f"1 listed version(s) have a record file that cannot be read (first: "
            f"{saved_paths['a2']})") in text_of(note)
    assert text_of(summary) == (
        "2 version(s) of 2 image(s) by 2 annotator(s). Not counted: 1 version(s) whose "
        "record file is damaged. Mean Dice AI vs final 0.667; outline edited in 100% of "
        "the 1 with an AI outline. AI label = final label in 100% of the 1 version(s) "
        "with both."
    )
    with restarted.server.test_request_context("/_dash-update-component"):
        href = saved.csv_link(None, "__any__", False)
    csv_text = restarted.server.test_client().get(href).get_data(as_text=True)
    # The CSV's damaged column is why (then no area, no spacing, no AI label's nor box's
    # model).
    assert csv_text.splitlines()[1].endswith(
        "," + a2["record_status"].removeprefix("damaged: ") + ",,,,,,,")
    # Restored from a backup: at the next start it is as it was.
    record.write_bytes(whole)
    again = create_app({"DATA_DIR": data_dir})
    with again.server.test_request_context("/_dash-update-component"):
        data, tooltips, summary, _, note = saved.show_saved(True, None, None, "__any__", False)
    assert data == [shown["a2"], shown["b1"], shown["a1"]]
    assert note is None and "Not counted" not in text_of(summary)


def test_the_keyboard_reaches_the_open_links_and_leaves_the_table(
        dash_duo, data_dir, saved_paths, tmp_path, saved):
    # Dash's table took Tab for its own cells: the focus never left it (WCAG 2.1.2).
    from selenium.webdriver.common.action_chains import ActionChains

    folder = tmp_path / "worklist"
    folder.mkdir()
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir, "WORKLIST_DIR": folder}))
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")
    wait_for(dash_duo, lambda: driver.find_elements(By.CSS_SELECTOR, "a[href*='open=']"), 20,
             "no Open link")

    def press(shift=False) -> str:
        keys = ActionChains(driver)
        keys = keys.key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT) if shift \
            else keys.send_keys(Keys.TAB)
        keys.perform()
        return driver.execute_script(
            "var e = document.activeElement;"
            "if (e.closest('.dash-spreadsheet-container') === e) { return 'table'; }"
            "return e.id || e.getAttribute('href') || e.tagName;")

    def focused_label() -> str:
        return driver.execute_script("return document.activeElement.getAttribute('aria-label')")

    driver.execute_script("document.getElementById(arguments[0]).focus();",
                          ids.SAVED_AGREEMENT_BUTTON)
    # Reading progress beside it, the table (it scrolls sideways), the sort button of each
    # column, its links row by row (image A's v2: its SVG and PNG; study7/right.png: its
    # one Open link, its SVG and PNG), then out.
    assert press() == ids.SAVED_PROGRESS_BUTTON
    assert press() == "table"
    buttons = []
    while (now := press()) == "SPAN":
        buttons.append(focused_label())
    assert buttons == [f"Sort by {name}" for _, name in saved.COLUMNS]
    links = []
    while now.startswith("/"):
        links.append(now)
        now = press()
    a2, b1 = f"/api/saved/{SHA_A}/2", f"/api/saved/{SHA_B}/1"
    assert [link.split("&")[0] for link in links] == [
        f"{a2}/svg", f"{a2}/mask", "/?open=study7%2Fright.png", f"{b1}/svg", f"{b1}/mask"]
    assert now not in ("table", "SPAN", ids.SAVED_AGREEMENT_BUTTON,
                       ids.SAVED_PROGRESS_BUTTON)  # past the table
    # And back, from the first link.
    driver.execute_script("document.querySelector(arguments[0]).focus();",
                          f"#{ids.SAVED_TABLE} td a")
    for _ in saved.COLUMNS:
        assert press(shift=True) == "SPAN"
    assert press(shift=True) == "table"
    assert press(shift=True) == ids.SAVED_PROGRESS_BUTTON
    assert press(shift=True) == ids.SAVED_AGREEMENT_BUTTON


@pytest.mark.parametrize("key", [Keys.ENTER, Keys.SPACE], ids=["enter", "space"])
def test_the_keyboard_follows_an_open_link(dash_duo, data_dir, saved_paths, tmp_path, key):
    # Tab reached the link, but Dash's table took Enter for its active cell and cancelled
    # it: the version could be opened with a mouse only (WCAG 2.1.1).
    from selenium.webdriver.common.action_chains import ActionChains

    folder = tmp_path / "worklist"
    folder.mkdir()
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir, "WORKLIST_DIR": folder}))
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")
    link = wait_for(dash_duo, lambda: driver.find_elements(By.CSS_SELECTOR, "a[href*='open=']"),
                    20, "no Open link")[0]
    href = link.get_attribute("href")
    driver.execute_script("arguments[0].focus();", link)
    ActionChains(driver).send_keys(key).perform()
    wait_for(dash_duo, lambda: driver.current_url == href, 10,
             f"the link was not followed: still at {driver.current_url}")
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")  # the Annotate page


def test_the_keyboard_sorts_the_table(dash_duo, data_dir, saved_paths):
    # The sort icons were spans no key reached: sorting needed a mouse.
    from selenium.webdriver.common.action_chains import ActionChains

    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")
    button = "th .column-header--sort[aria-label^='Sort by Saved (UTC)']"
    wait_for(dash_duo, lambda: driver.find_elements(By.CSS_SELECTOR, button), 20,
             "no sort button for the Saved column")
    driver.execute_script("document.querySelector(arguments[0]).focus();", button)

    def times() -> list[str]:  # newest first, as the page lists them
        cells = driver.find_elements(By.CSS_SELECTOR, "td[data-dash-column='saved_at']")
        return [cell.text for cell in cells]

    def state() -> tuple:
        return tuple(driver.execute_script(
            "var b = document.activeElement;"
            "return [b.getAttribute('aria-label'), b.closest('th').getAttribute('aria-sort')];"))

    assert state() == ("Sort by Saved (UTC)", "none")
    unsorted = times()
    assert len(unsorted) >= 2 and unsorted == sorted(unsorted, reverse=True)
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_for(dash_duo, lambda: times() == sorted(unsorted), 10, "Enter did not sort")
    wait_for(dash_duo, lambda: state() == ("Sort by Saved (UTC) (sorted ascending)", "ascending"),
             10, "the button does not say the order")
    ActionChains(driver).send_keys(Keys.SPACE).perform()
    wait_for(dash_duo, lambda: times() == sorted(unsorted, reverse=True), 10,
             "Space did not sort the other way")
    assert state() == ("Sort by Saved (UTC) (sorted descending)", "descending")



@pytest.mark.browser
def test_the_box_models_column_is_shown_and_sorts(dash_duo, data_dir, saved_paths):
    # The CSV and the API had the box models' versions; the page's table did not.
    for day, (sha, boxes) in enumerate([("c3" * 32, ["2.1", "2.3"]), ("d4" * 32, ["2.2"])],
                                       start=3):
        save_version(data_dir, sha, name=f"boxed-{day}.png", ai=AI_A,
                     box_models=[{"name": "unet", "version": v} for v in boxes],
                     saved_at=dt.datetime(2024, 5, day, 9, 0, tzinfo=UTC))
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")
    wait_for(dash_duo, lambda: len(_rows(dash_duo)) == 4, 20, "the table did not fill")
    # Newest first: the two boxed images, then image A's v2 and image B's v1, no box.
    assert _column(dash_duo, "box_model_versions") == ["2.2", "2.1, 2.3", "—", "—"]
    header = driver.find_element(
        By.CSS_SELECTOR, "th[data-dash-column='box_model_versions']:not(.dash-filter)")
    assert "Box models" in header.text
    # Sorted by the table, as each column: by version, none last.
    click(driver, By.CSS_SELECTOR,
          "th .column-header--sort[aria-label^='Sort by Box models']")
    wait_for(dash_duo, lambda: _column(dash_duo, "box_model_versions") == [
        "2.1, 2.3", "2.2", "—", "—"], 10, "no sort")
    click(driver, By.CSS_SELECTOR,
          "th .column-header--sort[aria-label^='Sort by Box models']")
    wait_for(dash_duo, lambda: _column(dash_duo, "box_model_versions") == [
        "—", "—", "2.2", "2.1, 2.3"], 10, "no sort the other way")
    assert console_errors(dash_duo) == []
