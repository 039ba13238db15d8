"""GET /api/saved on the client's Flask server, over a real SQLite index in tmp_path.

The saved versions are written as the Annotate page writes them: an
:class:`AnnotationStore` save of a :func:`build_record` record, with hand-made
3 x 4 masks and fixed save times, so every value the API returns is known
(``_saved_data.py``; the ``saved_paths`` fixture of conftest.py saves the three of
``save_three``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from urllib.parse import quote

import pytest
from _saved_data import (
    EDITED_A,
    HAND_B,
    HEADER,
    SHA_A,
    SHA_B,
    UTC,
    add_versions,
    save_three,
    save_version,
)

from annotation_client import create_app
from annotation_client._app import INDEX_KEY
from annotation_client._database import SavedRow

#: The outline's area and the spacing it was measured at, in the CSV's order (layout 8).
SIZE = ("area_px", "area_mm2", "pixel_spacing_row_mm", "pixel_spacing_col_mm",
        "pixel_spacing_source")  # fmt: skip
#: The BI-RADS columns and the note, in the CSV's order (layout 5).
CLINICAL = ("birads_assessment", "birads_shape", "birads_orientation", "birads_margin",
            "birads_echo_pattern", "birads_posterior_features", "note")  # fmt: skip


def _api_rows(paths) -> dict:
    """The API's rows of the three versions of ``saved_paths``, value for value (their
    records hold no largest region, so no diameters)."""
    no_calipers = dict.fromkeys(("max_diameter_px", "perpendicular_diameter_px",
                                 "max_diameter_mm", "perpendicular_diameter_mm",
                                 "based_on_version", "based_on_annotator",
                                 "revises_other_reader", "damaged", *SIZE,
                                 "classification_model_version", "box_model_versions"))  # fmt: skip
    common_a = no_calipers | {
                "image_sha256": SHA_A, "annotator": "Dr Ada", "image_name": "left.png",
                "worklist_path": None, "width": 4, "height": 3, "ai_label": "benign",
                "ai_p_malignant": 0.3, "segmented": True, "regions": 1, "empty": False,
                # The outline's model and the AI label's, which were two versions.
                "model_version": "2.1", "classification_model_version": "0.9"}
    return {
        "a1": common_a | {"version": 1, "saved_at": "2024-05-01T10:00:00Z",
                          "final_label": "benign", "dice_ai_vs_final": 2 / 3, "edited": True,
                          "record_path": paths["a1"],
                          "birads_assessment": "3", "birads_shape": "oval",
                          "birads_orientation": "parallel", "birads_margin": "circumscribed",
                          "birads_echo_pattern": "hypoechoic",
                          "birads_posterior_features": "enhancement",
                          "note": "Probably a fibroadenoma; follow up in 6 months, left breast."},
        # The margin saved as [spiculated, angular]: in the lexicon's order, one cell.
        "a2": common_a | {"version": 2, "saved_at": "2024-05-02T09:30:00Z",
                          "final_label": "malignant", "dice_ai_vs_final": 1.0, "edited": False,
                          "record_path": paths["a2"],
                          "birads_assessment": "4C", "birads_shape": "irregular",
                          "birads_orientation": "not parallel",
                          "birads_margin": "angular; spiculated",
                          "birads_echo_pattern": "heterogeneous",
                          "birads_posterior_features": "shadowing", "note": None},
        # Saved at 14:00 in UTC+2: the index keeps UTC. No descriptors, no note.
        "b1": no_calipers | dict.fromkeys(CLINICAL) | {
               "image_sha256": SHA_B, "version": 1, "saved_at": "2024-05-01T12:00:00Z",
               "annotator": "Dr Bo", "image_name": "right.png",
               "worklist_path": "study7/right.png", "width": 4, "height": 3,
               "final_label": None, "ai_label": None, "ai_p_malignant": None,
               "segmented": False, "dice_ai_vs_final": None, "edited": None, "regions": 2,
               "empty": False, "model_version": None, "record_path": paths["b1"]},
    }


@pytest.fixture
def rows(saved_paths):
    """The three versions, saved before the app starts, as the API returns them."""
    return _api_rows(saved_paths)


@pytest.fixture
def client(data_dir, rows):
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    return app.server.test_client()


def _get(client, query=""):
    response = client.get("/api/saved" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


# --------------------------------------------------------------------------- JSON rows


def test_every_version_newest_first_with_exact_values(client, rows):
    body = _get(client)
    assert body["rows"] == [rows["a2"], rows["b1"], rows["a1"]]
    assert list(body["rows"][0]) == sorted(SavedRow.COLUMNS)  # nothing else leaks out
    assert body["summary"] == {
        "versions": 3,
        "images": 2,
        "annotators": 2,
        "mean_dice": pytest.approx((2 / 3 + 1.0) / 2),
        "edited": 0.5,
        "label_agreement": 0.5,  # benign = benign in v1; benign != malignant in v2
        "damaged": 0,
    }


def test_records_saved_before_the_start_are_listed_and_later_ones_after_a_restart(
    data_dir, rows
):
    app = create_app({"DATA_DIR": data_dir})
    client = app.server.test_client()
    assert [r["record_path"] for r in _get(client)["rows"]] == [
        rows["a2"]["record_path"], rows["b1"]["record_path"], rows["a1"]["record_path"]
    ]
    # A record written behind the running app's back (copied in, or a save whose index
    # write failed) is not in the index yet ...
    late = save_version(data_dir, SHA_B, annotator="Dr Cy", final=HAND_B,
                        saved_at=dt.datetime(2024, 6, 1, tzinfo=UTC))
    assert late not in [r["record_path"] for r in _get(client)["rows"]]
    # ... a save through the app's indexed store is, at once ...
    indexed = save_version(data_dir, SHA_A, annotator="Dr Ada", final=EDITED_A,
                           saved_at=dt.datetime(2024, 7, 1, tzinfo=UTC),
                           index=app.server.config[INDEX_KEY])
    assert [r["record_path"] for r in _get(client)["rows"]][:1] == [indexed]
    # ... and the next start catches up with the other one, once.
    restarted = create_app({"DATA_DIR": data_dir}).server.test_client()
    listed = [(r["image_sha256"], r["version"], r["annotator"]) for r in _get(restarted)["rows"]]
    assert listed == [(SHA_A, 3, "Dr Ada"), (SHA_B, 2, "Dr Cy"), (SHA_A, 2, "Dr Ada"),
                      (SHA_B, 1, "Dr Bo"), (SHA_A, 1, "Dr Ada")]


def _truncate(path) -> bytes:
    """Cut a record file short inside a string (its annotator's name), as a full disk or
    a copy stopped halfway leaves it; returns its bytes before."""
    whole = Path(path).read_bytes()
    Path(path).write_bytes(whole[: whole.index(b'"annotator": "') + 17])
    return whole


def _damaged_a2(rows) -> dict:
    """a2 as listed once its record is cut short: what tells it apart, nothing it said."""
    identity = ("image_sha256", "version", "saved_at", "annotator", "image_name",
                "worklist_path", "width", "height", "record_path")  # fmt: skip
    blank = {name: None for name in rows["a2"] if name not in identity}
    return {name: rows["a2"][name] for name in identity} | blank | {
        "segmented": False, "empty": False}


def _start(data_dir):
    """A client started on ``data_dir`` (its start-up sync run), as a test client."""
    return create_app({"DATA_DIR": data_dir}).server.test_client()


def test_a_record_damaged_since_it_was_indexed_is_listed_as_damaged_at_the_next_start(
    data_dir, client, rows
):
    """The index held a2; its record is cut short; at the next start the row stays, as
    damaged, with why and none of what the record said: in the JSON and the CSV."""
    assert _get(client)["rows"][0] == rows["a2"]  # indexed, as it said
    _truncate(rows["a2"]["record_path"])
    restarted = _start(data_dir)
    body = _get(restarted)
    a2, *rest = body["rows"]
    assert a2["damaged"].startswith("Unterminated string")
    assert a2 == _damaged_a2(rows) | {"damaged": a2["damaged"]}
    assert a2["annotator"] == "Dr Ada"  # only the old row knew whose it was
    assert rest == [rows["b1"], rows["a1"]]
    # The summary counts it apart: its label, Dice and edits are unknown.
    assert body["summary"] == {
        "versions": 2, "images": 2, "annotators": 2, "mean_dice": pytest.approx(2 / 3),
        "edited": 1.0, "label_agreement": 1.0, "damaged": 1,
    }
    lines = restarted.get("/api/saved?format=csv").get_data(as_text=True).splitlines()
    assert lines[0] == HEADER and HEADER.endswith(
        ",note,damaged," + ",".join(SIZE) + ",classification_model_version,box_model_versions")
    # Why, then no area, no spacing, no AI label's nor box's model: the damaged record says
    # nothing.
    assert lines[1] == _csv_line(a2) and lines[1].endswith("," + a2["damaged"] + ",,,,,,,")
    assert lines[2:] == [_csv_line(rows["b1"]), _csv_line(rows["a1"])]


def test_a_damaged_record_is_listed_alike_in_an_index_rebuilt_from_the_files(
    data_dir, client, rows
):
    """The same damaged record in an index made anew (its file deleted): listed, damaged,
    with the same values bar what only the old row knew (annotator, save time)."""
    _truncate(rows["a2"]["record_path"])
    old = _get(_start(data_dir))["rows"][0]
    client.application.config[INDEX_KEY].dispose()
    (data_dir / "index.sqlite3").unlink()
    rebuilt = _get(_start(data_dir))
    a2 = rebuilt["rows"][0] if rebuilt["rows"][0]["version"] == 2 else None
    assert a2 is not None and a2["image_sha256"] == SHA_A and a2["damaged"] == old["damaged"]
    assert {k: v for k, v in a2.items() if k not in ("annotator", "saved_at")} == {
        k: v for k, v in old.items() if k not in ("annotator", "saved_at")}
    assert a2["annotator"] == ""  # only the record named one
    # Its save time is its outline's file's, written by the same save.
    svg = Path(rows["a2"]["record_path"]).with_suffix(".svg")
    assert a2["saved_at"] == dt.datetime.fromtimestamp(
        int(svg.stat().st_mtime), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sorted(r["record_path"] for r in rebuilt["rows"][1:]) == sorted(
        [rows["a1"]["record_path"], rows["b1"]["record_path"]])
    assert rebuilt["summary"]["damaged"] == 1 and rebuilt["summary"]["versions"] == 2
    csv_text = _start(data_dir).get("/api/saved?format=csv").get_data(as_text=True)
    assert _csv_line(a2) in csv_text.splitlines()


@pytest.mark.parametrize("rebuilt", [False, True], ids=["old-index", "rebuilt-index"])
def test_a_damaged_record_matches_no_label_or_assessment_filter(data_dir, client, rows,
                                                                rebuilt):
    """What a damaged record says is unknown: it is neither malignant nor unlabelled, and
    an image whose latest version it is matches no label."""
    _truncate(rows["a2"]["record_path"])
    if rebuilt:
        client.application.config[INDEX_KEY].dispose()
        (data_dir / "index.sqlite3").unlink()
    restarted = _start(data_dir)
    for query, expected in [("?label=malignant", []), ("?label=none", ["b1"]),
                            ("?assessment=none", ["b1"]), ("?assessment=4C", []),
                            ("?latest=1&label=benign", []), ("?label=benign", ["a1"])]:
        assert [r["record_path"] for r in _get(restarted, query)["rows"]] == [
            rows[key]["record_path"] for key in expected], query
    latest = _get(restarted, "?latest=1")["rows"]
    assert [(r["version"], bool(r["damaged"])) for r in latest] == [(2, True), (1, False)]


def test_a_record_restored_from_a_backup_is_listed_as_it_says_at_the_next_start(
    data_dir, client, rows
):
    whole = _truncate(rows["a2"]["record_path"])
    assert _get(_start(data_dir))["rows"][0]["damaged"]
    Path(rows["a2"]["record_path"]).write_bytes(whole)  # restored
    body = _get(_start(data_dir))
    assert body["rows"] == [rows["a2"], rows["b1"], rows["a1"]]
    assert body["summary"]["damaged"] == 0 and body["summary"]["versions"] == 3
    # Restored into a rebuilt index too, where its row held no annotator.
    _truncate(rows["a2"]["record_path"])
    (data_dir / "index.sqlite3").unlink()
    assert _get(_start(data_dir))["rows"][0]["annotator"] == ""
    Path(rows["a2"]["record_path"]).write_bytes(whole)
    assert _get(_start(data_dir))["rows"] == [rows["a2"], rows["b1"], rows["a1"]]


def test_an_empty_data_directory_lists_nothing(tmp_path):
    client = create_app({"DATA_DIR": tmp_path / "nothing-yet"}).server.test_client()
    assert _get(client) == {
        "rows": [],
        "summary": {"versions": 0, "images": 0, "annotators": 0, "mean_dice": None,
                    "edited": None, "label_agreement": None, "damaged": 0},
        "total": 0, "offset": 0, "limit": 500, "truncated": False, "next": None,
    }


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?annotator=Dr%20Ada", ["a2", "a1"]),
        ("?annotator=Dr%20Bo", ["b1"]),
        ("?annotator=dr%20ada", []),  # the exact name
        ("?annotator=", ["a2", "b1", "a1"]),  # blank is no filter
        ("?label=benign", ["a1"]),
        ("?label=malignant", ["a2"]),
        ("?label=normal", []),
        ("?label=none", ["b1"]),
        ("?label=Benign", ["a1"]),
        ("?label=", ["a2", "b1", "a1"]),
        ("?latest=1", ["a2", "b1"]),
        ("?latest=true", ["a2", "b1"]),
        ("?latest=0", ["a2", "b1", "a1"]),
        ("?latest=no", ["a2", "b1", "a1"]),
        ("?latest=1&annotator=Dr%20Ada", ["a2"]),
        # Latest is the image's newest version, then filtered: image A is malignant now.
        ("?latest=1&label=benign", []),
        ("?latest=1&label=malignant", ["a2"]),
        ("?annotator=Dr%20Ada&label=benign", ["a1"]),
        ("?limit=1", ["a2"]),
        ("?limit=2", ["a2", "b1"]),
        ("?limit=5000", ["a2", "b1", "a1"]),
        ("?limit=%201%20", ["a2"]),
        ("?limit=1&latest=1&annotator=Dr%20Bo", ["b1"]),
        ("?assessment=3", ["a1"]),
        ("?assessment=4C", ["a2"]),
        ("?assessment=%204c%20", ["a2"]),  # either case, blanks stripped
        ("?assessment=4A", []),
        ("?assessment=none", ["b1"]),
        ("?assessment=NONE", ["b1"]),
        ("?assessment=", ["a2", "b1", "a1"]),
        # As with label: image A's latest version is 4C now, so no image is BI-RADS 3.
        ("?latest=1&assessment=3", []),
        ("?latest=1&assessment=4C", ["a2"]),
        ("?assessment=3&label=benign&annotator=Dr%20Ada", ["a1"]),
        ("?assessment=3&label=malignant", []),
    ],
)
def test_filters_and_limit(client, rows, query, expected):
    assert _get(client, query)["rows"] == [rows[key] for key in expected]


def test_the_summary_follows_the_filters(client):
    assert _get(client, "?latest=1")["summary"] == {
        "versions": 2, "images": 2, "annotators": 2, "mean_dice": 1.0, "edited": 0.0,
        "label_agreement": 0.0, "damaged": 0,
    }
    assert _get(client, "?annotator=Dr%20Bo")["summary"] == {
        "versions": 1, "images": 1, "annotators": 1, "mean_dice": None, "edited": None,
        "label_agreement": None, "damaged": 0,
    }


# --------------------------------------------------------------------------- CSV


def _csv_line(row: dict) -> str:
    cells = []
    for name in SavedRow.COLUMNS:
        value = row[name]
        cells.append("" if value is None else str(value))
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(cells)  # quotes a cell with a comma
    return line.getvalue()


def test_the_csv_columns_in_their_order():
    """Each layout's columns after the earlier ones, which keep their places."""
    assert HEADER == (
        "image_sha256,version,saved_at,annotator,image_name,worklist_path,width,height,"
        "final_label,ai_label,ai_p_malignant,segmented,dice_ai_vs_final,edited,regions,"
        "empty,model_version,record_path,"
        "max_diameter_px,perpendicular_diameter_px,max_diameter_mm,perpendicular_diameter_mm,"
        "based_on_version,based_on_annotator,revises_other_reader,"
        "birads_assessment,birads_shape,birads_orientation,birads_margin,birads_echo_pattern,"
        "birads_posterior_features,note,"
        "damaged,"  # layout 7
        "area_px,area_mm2,pixel_spacing_row_mm,pixel_spacing_col_mm,pixel_spacing_source,"  # 8
        "classification_model_version,"  # layout 9
        "box_model_versions"  # layout 10
    )


def test_csv_has_the_index_columns_and_the_same_rows(client, rows):
    response = client.get("/api/saved?format=csv&latest=1")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="sonotrace_saved.csv"'
    )
    text = response.get_data(as_text=True)
    assert text.splitlines() == [HEADER, _csv_line(rows["a2"]), _csv_line(rows["b1"])]
    # e.g. the first data line, spelled out:
    assert text.splitlines()[2] == (
        f"{SHA_B},1,2024-05-01T12:00:00Z,Dr Bo,right.png,study7/right.png,4,3,,,,False,,,2,"
        f"False,,{rows['b1']['record_path']},,,,,,,,,,,,,,,,,,,,,,"
    )
    # and the first's last columns: no calipers, nothing revised, then BI-RADS, no
    # note, not damaged, no area (its record measured none) and no spacing, then the AI
    # label's model, not the outline's (2.1, in model_version), and no box's.
    assert text.splitlines()[1].endswith(
        f"{rows['a2']['record_path']},,,,,,,,"
        "4C,irregular,not parallel,angular; spiculated,heterogeneous,shadowing,,,,,,,,0.9,"
    )


def test_the_area_and_the_pixel_spacing_reach_the_json_and_the_csv(data_dir):
    # The Saved page's CSV gave the long axis in mm but neither the area nor the spacing
    # it was measured at, nor whether the file or the reader gave that spacing.
    save_version(data_dir, SHA_A, final=EDITED_A, spacing=(0.1, 0.2, "calibrated"),
                 saved_at=dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC))  # fmt: skip
    save_version(data_dir, SHA_B, name="right.png", final=HAND_B, spacing=(0.05, 0.05, "file"),
                 saved_at=dt.datetime(2024, 5, 2, 10, 0, tzinfo=UTC))  # fmt: skip
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()
    b, a = client.get("/api/saved").get_json()["rows"]
    pixels_a, pixels_b = int(EDITED_A.sum()), int(HAND_B.sum())
    assert {name: a[name] for name in SIZE} == {
        "area_px": pixels_a, "area_mm2": pytest.approx(pixels_a * 0.1 * 0.2),
        "pixel_spacing_row_mm": 0.1, "pixel_spacing_col_mm": 0.2,
        "pixel_spacing_source": "calibrated",
    }  # fmt: skip
    assert {name: b[name] for name in SIZE} == {
        "area_px": pixels_b, "area_mm2": pytest.approx(pixels_b * 0.05 * 0.05),
        "pixel_spacing_row_mm": 0.05, "pixel_spacing_col_mm": 0.05,
        "pixel_spacing_source": "file",
    }  # fmt: skip
    listed = list(csv.DictReader(io.StringIO(client.get("/api/saved?format=csv").text)))
    assert [row["pixel_spacing_source"] for row in listed] == ["file", "calibrated"]
    assert float(listed[1]["area_mm2"]) == pytest.approx(pixels_a * 0.02)
    assert float(listed[1]["pixel_spacing_col_mm"]) == 0.2


def test_latest_with_an_annotator_is_that_annotators_latest_read_of_each_image(data_dir):
    # A coordinator counting Dr Ada's reads with "latest" on got 1 of her 2 images: the
    # image Dr Bo read after her dropped out, his version being the image's latest.
    save_three(data_dir)
    save_version(data_dir, SHA_B, name="right.png", annotator="Dr Ada", final=HAND_B,
                 label="benign", saved_at=dt.datetime(2024, 5, 3, 8, 0, tzinfo=UTC))
    save_version(data_dir, SHA_B, name="right.png", annotator="Dr Bo", final=HAND_B,
                 label="malignant", saved_at=dt.datetime(2024, 5, 4, 8, 0, tzinfo=UTC))
    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    client = app.server.test_client()

    def listed(query):
        return [(r["image_sha256"], r["version"], r["annotator"])
                for r in _get(client, query)["rows"]]

    assert listed("?latest=1&annotator=Dr%20Ada") == [(SHA_B, 2, "Dr Ada"), (SHA_A, 2, "Dr Ada")]
    assert listed("?latest=1&annotator=Dr%20Bo") == [(SHA_B, 3, "Dr Bo")]
    # Without an annotator, still each image's latest, whoever saved it.
    assert listed("?latest=1") == [(SHA_B, 3, "Dr Bo"), (SHA_A, 2, "Dr Ada")]
    # The other filters apply to those: her latest read of B is benign.
    assert listed("?latest=1&annotator=Dr%20Ada&label=benign") == [(SHA_B, 2, "Dr Ada")]


def test_csv_format_is_case_blind_and_takes_the_filters(client, rows):
    response = client.get("/api/saved?format=CSV&annotator=Dr%20Ada&label=benign")
    assert response.status_code == 200
    assert response.get_data(as_text=True).splitlines() == [HEADER, _csv_line(rows["a1"])]
    # The note holds a comma: its cell is quoted, so the columns stay in their places.
    assert _csv_line(rows["a1"]).endswith(
        ',3,oval,parallel,circumscribed,hypoechoic,enhancement,'
        '"Probably a fibroadenoma; follow up in 6 months, left breast.",,,,,,,0.9,'
    )
    assessed = client.get("/api/saved?format=csv&assessment=4c").get_data(as_text=True)
    assert assessed.splitlines() == [HEADER, _csv_line(rows["a2"])]


def test_csv_of_nothing_is_the_header_alone(client):
    response = client.get("/api/saved?format=csv&label=normal")
    assert response.get_data(as_text=True) == HEADER + "\n"


@pytest.mark.parametrize("annotator", ["=HYPERLINK(\"http://x.example\",\"x\")", "+1+2",
                                       "-2+3", "@SUM(A1:A2)"])
def test_csv_text_a_spreadsheet_would_run_gets_an_apostrophe(data_dir, annotator):
    save_version(data_dir, SHA_A, annotator=annotator, name="=cmd|' /C calc'!A0.png",
                 worklist_path="+study/scan.png", saved_at=dt.datetime(2024, 5, 1, tzinfo=UTC))
    client = create_app({"DATA_DIR": data_dir}).server.test_client()
    # JSON gives the name as saved, and the filter matches it exactly.
    listed = _get(client, "?annotator=" + quote(annotator))["rows"]
    assert [(r["annotator"], r["image_name"]) for r in listed] == [
        (annotator, "=cmd|' /C calc'!A0.png")
    ]
    text = client.get("/api/saved?format=csv").get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["annotator"] == "'" + annotator
    assert row["image_name"] == "'=cmd|' /C calc'!A0.png"
    assert row["worklist_path"] == "'+study/scan.png"
    assert row["saved_at"] == "2024-05-01T00:00:00Z"  # untouched: it starts with a digit


def test_a_note_keeps_its_lines_and_a_formula_in_it_runs_nothing(data_dir):
    note = "=HYPERLINK(\"http://x.example\",\"x\")\nSecond line, with a comma."
    save_version(data_dir, SHA_A, note=note, descriptors={"assessment": "2"},
                 saved_at=dt.datetime(2024, 5, 1, tzinfo=UTC))
    client = create_app({"DATA_DIR": data_dir}).server.test_client()
    [listed] = _get(client)["rows"]
    assert listed["note"] == note  # JSON: as saved
    assert listed["birads_assessment"] == "2" and listed["birads_margin"] is None
    text = client.get("/api/saved?format=csv").get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["note"] == "'" + note  # the line break kept inside its quoted cell
    assert row["birads_assessment"] == "2" and row["birads_shape"] == ""


# --------------------------------------------------------------------------- paging

#: More versions than the longest page (MAX_LIMIT, 5000), of half as many images.
MANY = 6000


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A client whose index holds MANY tiny versions (add_versions), and their keys."""
    app = create_app({"DATA_DIR": tmp_path_factory.mktemp("many") / "data"})
    keys = add_versions(app.server.config[INDEX_KEY], MANY)
    yield app.server.test_client(), keys
    app.server.config[INDEX_KEY].dispose()


def _keys(rows) -> list[tuple[str, int]]:
    return [(row["image_sha256"], int(row["version"])) for row in rows]


def test_a_cut_answer_says_so_and_where_the_rest_is(many):
    # It stopped at 500 (or at limit=5000) with no total, no marker and no way on.
    client, keys = many
    response = client.get("/api/saved")
    body = response.get_json()
    assert len(body["rows"]) == 500 and _keys(body["rows"]) == keys[:500]
    assert (body["total"], body["offset"], body["limit"], body["truncated"]) == (
        MANY, 0, 500, True)
    assert body["next"] == "/api/saved?offset=500"
    assert response.headers["X-Total-Count"] == str(MANY)
    assert response.headers["Link"] == '</api/saved?offset=500>; rel="next"'
    # The summary is of every matching version, not of the 500 returned.
    assert body["summary"] == {"versions": MANY, "images": MANY // 2, "annotators": 2,
                               "mean_dice": pytest.approx(2 / 3), "edited": 1.0,
                               "label_agreement": pytest.approx(2 / 3), "damaged": 0}


def test_following_next_gives_every_matching_version_once(many):
    client, keys = many
    url, got, pages = "/api/saved?latest=0&limit=5000", [], 0
    while url:
        body = client.get(url).get_json()
        assert body["total"] == MANY and body["summary"]["versions"] == MANY
        got += _keys(body["rows"])
        url, pages = body["next"], pages + 1
    assert pages == 2 and got == keys
    last = client.get("/api/saved?latest=0&limit=5000&offset=5000")
    assert last.get_json()["truncated"] is False and "Link" not in last.headers
    beyond = client.get("/api/saved?offset=7000").get_json()
    assert (beyond["rows"], beyond["total"], beyond["truncated"]) == ([], MANY, False)


def test_the_filters_count_and_page_alike(many):
    client, keys = many
    body = client.get("/api/saved?latest=1&annotator=Dr%20Bo&limit=1000").get_json()
    bo_latest = [k for k in keys if int(k[0], 16) % 2 == 1 and k[1] == 2]
    assert body["total"] == len(bo_latest) == MANY // 4
    assert _keys(body["rows"]) == bo_latest[:1000]
    assert body["summary"]["images"] == MANY // 4 and body["summary"]["annotators"] == 1
    assert body["next"] == "/api/saved?latest=1&annotator=Dr+Bo&limit=1000&offset=1000"
    assert _keys(client.get(body["next"]).get_json()["rows"]) == bo_latest[1000:]


def test_the_csv_holds_every_matching_version(many):
    # The CSV stopped at the limit (default 500, at most 5000), with nothing to say so.
    client, keys = many
    response = client.get("/api/saved?format=csv")
    assert response.status_code == 200 and response.headers["X-Total-Count"] == str(MANY)
    assert response.is_streamed and "Link" not in response.headers
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert _keys(rows) == keys
    tail = list(csv.DictReader(io.StringIO(client.get(
        "/api/saved?format=csv&offset=5990").get_data(as_text=True))))
    assert _keys(tail) == keys[5990:]
    # A limit asked for is kept, and the answer says where the rest is.
    cut = client.get("/api/saved?format=csv&limit=10&latest=1")
    assert len(cut.get_data(as_text=True).splitlines()) == 11
    assert cut.headers["X-Total-Count"] == str(MANY // 2)
    assert cut.headers["Link"] == '</api/saved?format=csv&limit=10&latest=1&offset=10>; rel="next"'


def test_the_csv_streams_a_page_at_a_time_and_skips_what_a_save_meanwhile_shifts(
    tmp_path, monkeypatch
):
    import annotation_client._api as api
    from annotation_client._database import AnnotationIndex

    monkeypatch.setattr(api, "MAX_LIMIT", 10)
    app = create_app({"DATA_DIR": tmp_path / "data"})
    index = app.server.config[INDEX_KEY]
    keys = add_versions(index, 35, per_image=5)
    pages = []
    query = AnnotationIndex.query

    def query_and_save(self, **kwargs):
        pages.append((kwargs["offset"], kwargs["limit"]))
        if len(pages) == 2:  # a save lands at the top while the first page is sent
            new = save_version(tmp_path / "data", SHA_B, index=self,
                               saved_at=dt.datetime(2025, 1, 1, tzinfo=UTC))
            assert new
        return query(self, **kwargs)

    monkeypatch.setattr(AnnotationIndex, "query", query_and_save)
    text = app.server.test_client().get("/api/saved?format=csv").get_data(as_text=True)
    assert pages == [(0, 10), (10, 10), (20, 10), (30, 10)]
    # Each version once: the one row the save pushed onto the second page is not repeated.
    assert _keys(csv.DictReader(io.StringIO(text))) == keys


def test_a_csv_whose_index_fails_midway_fails_rather_than_ending_short(tmp_path, monkeypatch):
    import annotation_client._api as api
    from annotation_client._database import AnnotationIndex, IndexUnavailable

    monkeypatch.setattr(api, "MAX_LIMIT", 10)
    app = create_app({"DATA_DIR": tmp_path / "data"})
    add_versions(app.server.config[INDEX_KEY], 25)
    query = AnnotationIndex.query

    def fails_later(self, **kwargs):
        if kwargs["offset"]:
            raise IndexUnavailable("the annotation index could not be read", "gone")
        return query(self, **kwargs)

    monkeypatch.setattr(AnnotationIndex, "query", fails_later)
    response = app.server.test_client().get("/api/saved?format=csv")
    with pytest.raises(IndexUnavailable):
        response.get_data()


# --------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    "query, name",
    [
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=%2B5", "limit"),
        pytest.param(
            "limit=%C2%B2", "limit", id="limit-superscript-two",
        ),
        pytest.param(
            "limit=" + "9" * 5000, "limit", id="limit-5000-digits",
        ),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("offset=", "offset"),
        ("offset=ten", "offset"),
        pytest.param("offset=%C2%B2", "offset", id="offset-superscript-two"),
        pytest.param("offset=" + "9" * 13, "offset", id="offset-13-digits"),
        ("latest=2", "latest"),
        ("latest=maybe", "latest"),
        ("format=xml", "format"),
        ("format=", "format"),
        ("label=cancer", "label"),
        ("label=nothing", "label"),
        ("assessment=4", "assessment"),  # 4A, 4B or 4C: BI-RADS 4 is split
        ("assessment=7", "assessment"),
        ("assessment=4D", "assessment"),
        ("assessment=probably%20benign", "assessment"),
        # PostgreSQL refused the NUL as a server error (503 "index unavailable").
        pytest.param("annotator=a%00b", "annotator", id="annotator-nul"),
        pytest.param("annotator=Dr%0AAda", "annotator", id="annotator-newline"),
        pytest.param("annotator=" + "x" * 201, "annotator", id="annotator-201-chars"),
    ],
)
def test_a_bad_parameter_is_a_json_400_naming_it(client, query, name):
    response = client.get("/api/saved?" + query)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"].startswith(name + " ")


@pytest.mark.parametrize(("path", "query", "named"), [
    ("/api/saved", "image=nonexistent&limit=1", "image"),  # a filter guessed
    ("/api/saved", "foo=bar&sha256=x", "foo, sha256"),
    ("/api/saved", "Label=benign", "Label"),  # names are as documented
    ("/api/agreement", "annotator=Dr%20Ada", "annotator"),
])
def test_an_unknown_parameter_is_refused_not_ignored(client, path, query, named):
    # Ignored, it handed back every row as if they were filtered.
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"].startswith(f"unknown parameter {named} for {path}: it takes ")
    assert client.get(f"{path}").status_code == 200


def test_a_parameter_given_twice_is_refused_not_half_read(client):
    # label=benign&label=malignant listed the benign rows alone.
    response = client.get("/api/saved?label=benign&label=malignant&latest=1")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        "label given more than once: each parameter takes one value")


def test_a_wrong_method_is_a_json_error(client):
    response = client.post("/api/saved")
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}
    assert response.get_json()["error"]["code"]


def test_a_405_names_the_methods_in_one_order_whatever_the_hash_seed(
        client, methods_listed_unsorted):
    response = client.post("/api/saved")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nothing", "/api/saved/extra"])
def test_an_api_path_with_no_endpoint_is_a_json_404(client, path):
    # /api and /api/ were the Dash page, with a 200.
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "not_found"
    assert error["message"].startswith(f"no API endpoint {path};")
    assert "/api/saved" in error["message"]
    assert response.headers["Cache-Control"] == "private, no-store"
    assert client.post(path).get_json()["error"]["code"] == "method_not_allowed"


# --------------------------------------------------------------------------- unreadable index


def _blocked_url(tmp_path) -> str:
    """A SQLite file whose folder is a regular file: it can never be created."""
    (tmp_path / "blocker").write_text("a regular file, not a folder")
    return f"sqlite:///{tmp_path}/blocker/index.sqlite3"


def _not_a_database_url(tmp_path) -> str:
    """A SQLite path holding a text file: SQLite answers "file is not a database"."""
    path = tmp_path / "index.sqlite3"
    path.write_bytes(b"these are notes, not a database\n" * 200)
    return f"sqlite:///{path}"


@pytest.mark.parametrize("broken_url", [_blocked_url, _not_a_database_url])
def test_an_unreadable_index_is_a_json_503_and_the_app_keeps_answering(
    tmp_path, data_dir, rows, broken_url
):
    app = create_app({"DATA_DIR": data_dir, "DATABASE_URL": broken_url(tmp_path)})
    client = app.server.test_client()
    for query in ("", "?format=csv", "?latest=1&annotator=Dr%20Ada"):
        response = client.get("/api/saved" + query)
        assert response.status_code == 503
        assert response.mimetype == "application/json"
        error = response.get_json()["error"]
        assert error["code"] == "index_unavailable"
        # The database's own words (here the SQLite path) are the log's, not the caller's.
        assert error["message"] == (
            "the annotation index could not be read; the client's log says why"
        )
        assert str(tmp_path) not in response.get_data(as_text=True)
    # Answering, and saying the index is down (audit 804 F6), without its words either.
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["index"] == "the annotation index could not be opened"
    assert str(tmp_path) not in health.get_data(as_text=True)
    # Parameters are still checked first.
    assert client.get("/api/saved?limit=0").status_code == 400
    assert client.get("/api/saved").status_code == 503


def test_the_index_answers_again_once_the_database_can_be_opened(tmp_path, data_dir, rows):
    url = _blocked_url(tmp_path)
    client = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url}).server.test_client()
    assert client.get("/api/saved").status_code == 503
    (tmp_path / "blocker").unlink()
    # The running app reaches the database now; the saves made while it was down
    # join the index at the next start.
    assert _get(client)["rows"] == []
    restarted = create_app({"DATA_DIR": data_dir, "DATABASE_URL": url}).server.test_client()
    assert _get(restarted)["rows"] == [rows["a2"], rows["b1"], rows["a1"]]
