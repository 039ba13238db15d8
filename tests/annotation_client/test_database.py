import datetime as dt
import hashlib
import importlib.util
import json
import math
import os
import pwd
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from _saved_data import synced

from annotation_client import AnnotationStore, build_record
from annotation_client._database import (
    MAX_LIMIT,
    MAX_READ_IMAGES,
    SCHEMA_VERSION,
    AnnotationIndex,
    IndexUnavailable,
    SavedRow,
    SchemaRow,
    check_url,
    default_url,
    engine_url,
    row_values,
    summarize,
    to_csv,
)
from annotation_client._measurements import summarize as summarize_outline

SHA_A = "ab" * 32
SHA_B = "cd" * 32
IMAGE = {"sha256": SHA_A, "name": "benign (1).png", "width": 6, "height": 4}


def _masks():
    ai = np.zeros((4, 6), bool)
    ai[1:3, 1:4] = True  # 6 pixels
    final = np.zeros((4, 6), bool)
    final[1:3, 2:5] = True  # 6 pixels, 4 shared with ai: Dice 8/12
    return ai, final


def _saved(sha=SHA_A, version=1, annotator="Ada", final_label=None, when="2024-01-01T10:00:00",
           descriptors=None, note=""):
    """A record as the store writes it: build_record's output plus version and files."""
    _, final = _masks()
    record = build_record(
        image=dict(IMAGE, sha256=sha),
        annotator=annotator,
        final_mask=final,
        final_label=final_label,
        descriptors=descriptors,
        note=note,
        saved_at=dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
    )
    stem = f"v{version:03d}"
    files = {"svg": f"{stem}.svg", "mask": f"{stem}_mask.png", "ai_mask": None,
             "record": f"{stem}.json"}  # fmt: skip
    return dict(record, version=version, files=files)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _keys(rows):
    return [(row["image_sha256"], row["version"]) for row in rows]


def _listed(index) -> list[tuple[str, int, bool]]:
    """Every row of ``index``, sorted, each with whether its record is marked damaged."""
    return sorted((r["image_sha256"], r["version"], r["damaged"] is not None)
                  for r in index.query())  # fmt: skip


# --- the databases the behavioural tests run on -------------------------------------
# Each test of what the index does takes `make_index` (or `db_url`) and runs twice: on
# a SQLite file and on a real PostgreSQL server (conftest's `postgres_url`). Tests of
# what only SQLite has (its file, its folder, its locks) build SQLite URLs themselves.


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """URL of an empty index database: a SQLite file, or the test server's database."""
    if request.param == "sqlite":
        return _url(tmp_path / "index.sqlite3")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_index(db_url):
    """``make_index(url=db_url)``: a new index, its connections closed at teardown."""
    made = []

    def make(url=db_url):
        made.append(AnnotationIndex(url))
        return made[-1]

    yield make
    for index in made:
        index.dispose()


def _server_gone_url(tmp_path) -> str:
    """A PostgreSQL URL whose socket folder has no server in it."""
    folder = tmp_path / "no-server"
    folder.mkdir(exist_ok=True)
    return f"postgresql://postgres@/sonotrace?host={folder}"


# --- row_values ---------------------------------------------------------------------


#: The largest region of ``_full_record()``'s measurements: the calipers it indexes.
_LARGEST = {"area_px": 6, "max_diameter_px": 3.5, "perpendicular_diameter_px": 2.25,
            "max_diameter_mm": 0.35, "perpendicular_diameter_mm": 0.225}  # fmt: skip


def _full_record(name="benign (1).png", worklist_path="2024/case 7/benign (1).png",
                 annotator="Dr. Ada Ångström", model_version="1.2"):  # fmt: skip
    ai, final = _masks()
    return build_record(
        image=IMAGE | {"name": name, "worklist_path": worklist_path,
                       "pixel_spacing_mm": [0.1, 0.1], "pixel_spacing_source": "calibrated"},
        annotator=annotator,
        final_mask=final,
        ai_mask=ai,
        final_label="malignant",
        measurements={"count": 1, "area_px": 6.0, "area_mm2": 0.06, "regions": [],
                      "largest": _LARGEST},
        model={"name": "unet", "version": model_version},
        # Two boxes, the first answered after the server was upgraded, the second not.
        box_models=[{"name": "unet", "version": "1.3"}, {"name": "unet", "version": "1.3"},
                    {"name": "unet", "version": model_version}],
        classification={
            "label": "benign",
            "probabilities": {"normal": 0.1, "benign": 0.6, "malignant": 0.3},
            "model": {"name": "clf", "version": "3"},
        },
        based_on={"version": 2, "annotator": "Dr. Bea"},
        descriptors={"shape": "round", "margin": ["microlobulated", "indistinct"],
                     "assessment": "4B"},
        note="Seen in two planes.\nBiopsy advised.",
        # 09:08:09.25 at UTC+2 is 07:08:09.25 UTC.
        saved_at=dt.datetime(2024, 5, 6, 9, 8, 9, 250000, dt.timezone(dt.timedelta(hours=2))),
    )


#: What the index holds of ``_full_record()``, apart from its version, time and path.
_FULL_ROW = {
    "image_sha256": SHA_A,
    "annotator": "Dr. Ada Ångström",
    "image_name": "benign (1).png",
    "worklist_path": "2024/case 7/benign (1).png",
    "width": 6,
    "height": 4,
    "final_label": "malignant",
    "ai_label": "benign",
    "ai_p_malignant": 0.3,
    "segmented": True,
    "dice_ai_vs_final": 8 / 12,
    "edited": True,
    "regions": 1,
    "max_diameter_px": 3.5,
    "perpendicular_diameter_px": 2.25,
    "max_diameter_mm": 0.35,
    "perpendicular_diameter_mm": 0.225,
    "empty": False,
    "model_version": "1.2",
    "based_on_version": 2,
    "based_on_annotator": "Dr. Bea",
    "revises_other_reader": True,
    "birads_assessment": "4B",
    "birads_shape": "round",
    "birads_orientation": None,
    "birads_margin": "indistinct; microlobulated",  # the lexicon's order, "; " between
    "birads_echo_pattern": None,
    "birads_posterior_features": None,
    "note": "Seen in two planes.\nBiopsy advised.",
    "damaged": None,  # its record file can be read
    "area_px": 6.0,
    "area_mm2": 0.06,
    "pixel_spacing_row_mm": 0.1,
    "pixel_spacing_col_mm": 0.1,
    "pixel_spacing_source": "calibrated",
    "classification_model_version": "3",  # the AI label's model, not the outline's (1.2)
    "box_model_versions": "1.3, 1.2",  # each once, in the order first used
}


def test_row_values_of_a_full_record():
    record = _full_record(annotator="  Dr. Ada  ")
    saved = dict(record, version=3, files={"record": "v003.json"})
    values = row_values(saved, "/data/x/v003.json")
    assert values == _FULL_ROW | {
        "version": 3,
        "saved_at": dt.datetime(2024, 5, 6, 7, 8, 9, 250000),
        "annotator": "Dr. Ada",  # stripped
        "record_path": "/data/x/v003.json",
    }
    assert values["saved_at"].tzinfo is None
    assert set(values) == set(SavedRow.COLUMNS)


def test_row_values_of_a_record_without_ai_and_an_empty_outline():
    record = build_record(image=IMAGE, annotator="B", final_mask=np.zeros((4, 6), bool),
                          saved_at=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC))  # fmt: skip
    values = row_values(dict(record, version=1), Path("/d/v001.json"))
    assert values["saved_at"] == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert values["record_path"] == "/d/v001.json"
    nothing = ("worklist_path", "final_label", "ai_label", "ai_p_malignant",
               "dice_ai_vs_final", "edited", "regions", "model_version", "max_diameter_px",
               "perpendicular_diameter_px", "max_diameter_mm",
               "perpendicular_diameter_mm", "based_on_version",
               "based_on_annotator", "revises_other_reader", *_CLINICAL, "area_px",
               "area_mm2", *_SPACING, "classification_model_version")  # fmt: skip
    assert {name: values[name] for name in nothing} == dict.fromkeys(nothing)
    assert values["segmented"] is False
    assert values["empty"] is True


#: The layout-8 columns of the pixel spacing.
_SPACING = ("pixel_spacing_row_mm", "pixel_spacing_col_mm", "pixel_spacing_source")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ({}, (None, None, None)),
        # A record from before sources were recorded: the file's, as the record module reads it.
        ({"pixel_spacing_mm": [0.08, 0.1]}, (0.08, 0.1, "file")),
        ({"pixel_spacing_mm": [0.2, 0.2], "pixel_spacing_source": "reused"}, (0.2, 0.2, "reused")),
    ],
    ids=["pixels", "no-source", "reused"],
)
def test_row_values_copies_the_spacing_and_its_source(image, expected):
    record = _full_record()
    record["image"] = {k: v for k, v in record["image"].items() if not k.startswith("pixel_")}
    record["image"] |= image
    values = row_values(dict(record, version=1), "/d/v001.json")
    assert tuple(values[name] for name in _SPACING) == expected


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("image", "pixel_spacing_mm"), [0.1], r"\[0\.1\] is not \[row_mm, col_mm\]"),
        (("image", "pixel_spacing_mm"), "0.1,0.1", r"is not \[row_mm, col_mm\]"),
        (("image", "pixel_spacing_mm"), [0.1, 0.0], r"\[0\.1, 0\.0\] is not above 0"),
        (("image", "pixel_spacing_mm"), [0.1, float("inf")], r"inf is not a finite number"),
        (("image", "pixel_spacing_source"), "guessed", r"'guessed' is not one of file, manual"),
        (("measurements", "area_px"), -1.0, r"measurements.area_px: -1.0 is below 0"),
        (("measurements", "area_mm2"), "12", r"measurements.area_mm2: '12' is not a finite"),
        (("measurements",), [], r"measurements \[\] is not a mapping"),
    ],
)
def test_row_values_refuses_a_wrong_size_or_spacing(path, value, message):
    record = dict(_full_record(), version=1)
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        row_values(record, "/d/v001.json")


#: The columns layout 5 added: the BI-RADS assessment and descriptors, and the note.
_CLINICAL = ("birads_assessment", "birads_shape", "birads_orientation", "birads_margin",
             "birads_echo_pattern", "birads_posterior_features", "note")  # fmt: skip


def test_the_descriptor_columns_are_the_lexicons_descriptors():
    from annotation_client._database import DESCRIPTOR_COLUMNS
    from annotation_client._record import DESCRIPTOR_OPTIONS

    assert set(DESCRIPTOR_COLUMNS) == set(DESCRIPTOR_OPTIONS)
    # After layout 4's, in this order; then layout 7's, 8's, 9's and 10's, last.
    assert SavedRow.COLUMNS[-15:] == (*_CLINICAL, "damaged", *_SIZE,
                                      "classification_model_version", "box_model_versions")


def test_the_examples_in_the_docstrings_run():
    import doctest

    from annotation_client import _database

    result = doctest.testmod(_database)
    assert result.attempted >= 1 and result.failed == 0


def test_row_values_of_a_record_from_before_descriptors_and_notes():
    record = _saved()
    del record["final"]["descriptors"], record["final"]["note"]
    assert {k: row_values(record, "p")[k] for k in _CLINICAL} == dict.fromkeys(_CLINICAL)


def test_a_margin_is_one_cell_in_the_lexicons_order_whatever_the_records():
    record = _saved(descriptors={"margin": ["angular"], "assessment": "5"})
    assert row_values(record, "p")["birads_margin"] == "angular"
    record["final"]["descriptors"]["margin"] = ["spiculated", "indistinct", "angular"]
    values = row_values(record, "p")
    assert values["birads_margin"] == "indistinct; angular; spiculated"
    assert values["birads_assessment"] == "5"
    record["final"]["descriptors"]["margin"] = []
    assert row_values(record, "p")["birads_margin"] is None


@pytest.mark.parametrize(
    ("note", "copied"),
    [
        ("", None),
        ("  \n ", None),  # a hand-written record: build_record strips the note
        ("Seen\x00 twice", "Seen twice"),  # PostgreSQL cannot store a NUL in text
        ("n" * 10_000, "n" * 10_000),
        # Saved before notes were limited: cut, and the cut shows.
        ("n" * 12_345, "n" * 9_999 + "…"),
    ],
)
def test_the_index_copies_the_note_bounded(note, copied):
    record = _saved()
    record["final"]["note"] = note
    assert row_values(record, "p")["note"] == copied


def test_saved_at_in_another_zone_becomes_naive_utc():
    record = _saved()
    record["saved_at"] = "2024-01-05T01:00:00+05:00"
    assert row_values(record, "p")["saved_at"] == dt.datetime(2024, 1, 4, 20, 0, 0)


def _without(path):
    def change(record):
        *parents, last = path
        for key in parents:
            record = record[key]
        del record[last]

    return change


def _setting(path, value):
    def change(record):
        *parents, last = path
        for key in parents:
            record = record[key]
        record[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_without(["image"]), "image"),
        (_without(["image", "sha256"]), "sha256"),
        (_setting(["image", "sha256"], "AB" * 32), "sha256"),
        (_setting(["image", "sha256"], "ab" * 31), "sha256"),
        (_setting(["image", "sha256"], "../" + "ab" * 31), "sha256"),
        (_without(["version"]), "version"),
        (_setting(["version"], 0), "version"),
        (_setting(["version"], -2), "version"),
        (_setting(["version"], True), "version"),
        (_setting(["version"], "1"), "version"),
        (_setting(["version"], 1.0), "version"),
        (_without(["saved_at"]), "saved_at"),
        (_setting(["saved_at"], "2024-05-06T07:08:09"), "saved_at has no time zone"),
        (_setting(["saved_at"], "yesterday"), "yesterday"),
        (_without(["annotator"]), "annotator"),
        (_setting(["image", "width"], "six"), "six"),
        (_setting(["final", "label"], "cancer"), "final.label 'cancer'"),
        (_setting(["ai", "label"], "Benign"), "ai.label 'Benign'"),
        # PostgreSQL refuses these at INSERT (SQLite stored them): refused on both.
        (_setting(["annotator"], "A" * 201), "annotator is longer than 200 characters"),
        (_setting(["annotator"], "Ada\x00"), "annotator holds a NUL character"),
        (_setting(["image", "name"], "a\x00.png"), "image.name holds a NUL character"),
        (_setting(["image", "worklist_path"], "x/\x00"), "image.worklist_path holds a NUL"),
        # A lone surrogate (JSON's "\ud800") is text no database encodes: at INSERT it
        # failed the whole batch, so one such record kept every other out of a rebuild.
        (_setting(["image", "name"], "a\udcff.png"), "image.name is not valid Unicode"),
        (_setting(["based_on"], [2, "Dr. Bea"]), "based_on .* is not a version"),
        (_setting(["based_on"], {"version": 0, "annotator": "B"}), "based_on version 0"),
        (_setting(["based_on"], {"version": "2", "annotator": "B"}), "based_on version '2'"),
        (_setting(["based_on"], {"annotator": "B"}), "based_on version None"),
        (_setting(["based_on"], {"version": 2, "annotator": 7}), "based_on annotator 7"),
        (_setting(["based_on"], {"version": 2}), "based_on annotator None"),
        (_setting(["based_on"], {"version": 2, "annotator": "B" * 201}),
         "based_on.annotator is longer than 200 characters"),
        (_setting(["based_on"], {"version": 2, "annotator": "B", "readers": "B"}),
         "based_on readers 'B' is not a list"),
        (_setting(["based_on"], {"version": 2, "annotator": "B", "readers": [""]}),
         "based_on readers"),
        (_setting(["based_on"], {"version": 2, "annotator": "B", "readers": None}),
         "based_on readers None"),
        # Descriptors outside the BI-RADS lexicon, as the label outside LABELS.
        (_setting(["final", "descriptors", "assessment"], "4"),
         r"final.descriptors: descriptors\['assessment'\] = '4' is not one of 0, 1, 2"),
        (_setting(["final", "descriptors", "assessment"], 4), "descriptors.*= 4 is not one"),
        (_setting(["final", "descriptors", "margin"], ["spiky"]), "'spiky' is not one of"),
        (_setting(["final", "descriptors", "shape"], ["oval", "round"]),
         r"descriptors\['shape'\] takes one value"),
        (_setting(["final", "descriptors", "density"], "fatty"), "unknown names: density"),
        (_setting(["final", "descriptors"], ["oval"]),
         r"final.descriptors: \['oval'\] is not a mapping"),
        (_setting(["final", "note"], 3), "final.note 3 is not text"),
    ],
)
def test_row_values_refuses_a_bad_record(change, match):
    record = json.loads(json.dumps(_saved()))
    row_values(record, "p")  # the unchanged record is fine
    change(record)
    with pytest.raises(ValueError, match=match):
        row_values(record, "p")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_setting(["measurements", "largest", "max_diameter_px"], "3.5"),
         r"measurements.largest.max_diameter_px: '3.5' is not a finite number"),
        (_setting(["measurements", "largest", "perpendicular_diameter_mm"], float("nan")),
         r"measurements.largest.perpendicular_diameter_mm: nan"),
        (_setting(["measurements", "largest", "max_diameter_mm"], -0.5),
         r"measurements.largest.max_diameter_mm: -0.5 is below 0"),
        (_setting(["measurements", "largest"], [3.5]), "measurements.largest .* not a region"),
        (_setting(["measurements", "largest"], []), "measurements.largest .* not a region"),
        (_setting(["measurements", "largest"], False), "measurements.largest .* not a region"),
    ],
)  # fmt: skip
def test_row_values_refuses_bad_calipers(change, match):
    record = dict(_full_record(), version=1)
    assert row_values(record, "p")["perpendicular_diameter_px"] == 2.25
    change(record)
    with pytest.raises(ValueError, match=match):
        row_values(record, "p")


def test_row_values_wants_a_mapping():
    with pytest.raises(TypeError, match="record"):
        row_values([("image", {})], "p")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_setting(["agreement", "edited"], "yes"), "agreement.edited 'yes'"),
        (_setting(["agreement", "edited"], 1), "agreement.edited 1"),
        (_setting(["ai", "segmented"], "no"), "ai.segmented 'no'"),
        (_setting(["final", "empty"], 0), "final.empty 0"),
        (_setting(["final", "regions"], "two"), "final.regions 'two'"),
        (_setting(["final", "regions"], True), "final.regions True"),
        (_setting(["final", "regions"], 1.5), "final.regions 1.5"),
    ],
)
def test_row_values_refuses_mistyped_flags_and_counts(change, match):
    # Once these passed row_values: the Boolean column refused 'yes' at INSERT
    # (failing a whole sync), and 'two' was stored as text in an int column.
    record = _saved()
    change(record)
    with pytest.raises(ValueError, match=match):
        row_values(record, "p")


# --- URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "sqlite:///relative/index.sqlite3",
     "sqlite:////abs/index.sqlite3", "sqlite+pysqlite:////abs/index.sqlite3"],
)  # fmt: skip
def test_check_url_accepts_sqlite_urls(url):
    assert check_url(url) == url
    assert check_url(f"  {url}\n") == url


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "must be a database URL"),
        ("   ", "must be a database URL"),
        (None, "must be a database URL"),
        (Path("/tmp/index.sqlite3"), "must be a database URL"),
        ("garbage", "not a database URL"),
        ("/tmp/index.sqlite3", "not a database URL"),
        ("nosuchdb://x", "nosuchdb"),
    ],
)
def test_check_url_refuses_what_is_not_a_usable_url(url, match):
    with pytest.raises(ValueError, match=match):
        check_url(url)


def _missing(module: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is not None, reason=f"{module} is installed here"
    )


@pytest.mark.parametrize(
    ("url", "match"),
    [
        # Drivers SQLAlchemy knows and this install lacks: named, with what is installed.
        pytest.param("postgresql+psycopg2://u:secret@h/db", "No module named 'psycopg2'.*"
                     "sqlite:// and postgresql:// \\(psycopg 3\\)", marks=_missing("psycopg2")),
        pytest.param("mysql://u:secret@h/db", "MySQLdb", marks=_missing("MySQLdb")),
        # sqlite's dialect refuses it only in create_engine.
        ("sqlite://u:secret@/rel.db", "not a database URL"),
    ],
)  # fmt: skip
def test_check_url_refuses_a_url_the_index_cannot_open(url, match):
    with pytest.raises(ValueError, match=match) as refused:
        check_url(url)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # SQLAlchemy would open this one with psycopg2, which is not installed.
        ("postgresql://u:secret@h:5433/db?sslmode=require",
         "postgresql+psycopg://u:secret@h:5433/db?sslmode=require"),
        ("postgresql://postgres@/db?host=/run/pg", "postgresql+psycopg://postgres@/db?host=/run/pg"),
        # libpq's short scheme, which SQLAlchemy alone refuses.
        ("postgres://u:secret@h/db", "postgresql+psycopg://u:secret@h/db"),
        # A driver named is kept, installed or not.
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////abs/index.sqlite3", "sqlite:////abs/index.sqlite3"),
        ("mysql://u@h/db", "mysql://u@h/db"),
    ],
)  # fmt: skip
def test_engine_url_gives_a_plain_postgresql_url_psycopg_3(url, expected):
    assert engine_url(url) == sa.engine.make_url(expected)
    parsed = sa.engine.make_url(url)
    assert engine_url(parsed) == sa.engine.make_url(expected)
    assert parsed == sa.engine.make_url(url)  # the argument is not changed


def test_a_plain_postgresql_url_is_accepted_and_opened_with_psycopg_3(psycopg_installed):
    url = "postgresql://u:secret@db.example/sonotrace"
    assert check_url(f" {url} ") == url  # as given: the config keeps what was set
    index = AnnotationIndex(url)  # connects to nothing yet
    assert index.url == url
    assert index.engine.dialect.driver == "psycopg"
    assert index.engine.url.drivername == "postgresql+psycopg"


def test_connect_args_suit_each_database(monkeypatch, tmp_path, psycopg_installed):
    from annotation_client import _database

    seen, real = [], sa.create_engine

    def spy(url, **kwargs):
        seen.append(kwargs.get("connect_args"))
        return real(url, **kwargs)

    monkeypatch.setattr(_database.sa, "create_engine", spy)
    waits = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30,
             "keepalives_interval": 10, "keepalives_count": 3, "tcp_user_timeout": 30000,
             "options": "-c lock_timeout=5000 -c statement_timeout=20000"}
    for url, expected in [
        (_url(tmp_path / "i.sqlite3"), {"timeout": 15}),
        ("postgresql://u@h/db", waits),
        # The URL's own values win.
        ("postgresql+psycopg://u@h/db?connect_timeout=3&tcp_user_timeout=0",
         {k: v for k, v in waits.items() if k not in ("connect_timeout", "tcp_user_timeout")}),
    ]:
        seen.clear()
        index = AnnotationIndex(url)
        assert seen[-1] == expected  # the index's own engine, built last
        assert index.engine.url == engine_url(url)


def _sqlite_file(url) -> str:
    """The file a SQLite URL (a string or a sqlalchemy URL) names."""
    parsed = sa.engine.make_url(url)
    assert parsed.get_backend_name() == "sqlite"
    assert parsed.query == {}
    return parsed.database


def test_default_url_is_a_sqlite_file_in_the_data_dir(tmp_path, monkeypatch):
    assert _sqlite_file(default_url(tmp_path)) == str(tmp_path.resolve() / "index.sqlite3")
    assert _sqlite_file(default_url(str(tmp_path))) == _sqlite_file(default_url(tmp_path))
    monkeypatch.chdir(tmp_path)
    expected = str(tmp_path.resolve() / "annotations" / "index.sqlite3")
    assert _sqlite_file(default_url("annotations")) == expected
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _sqlite_file(default_url("~/data")) == str(tmp_path.resolve() / "data" / "index.sqlite3")
    assert check_url(default_url(tmp_path))


@pytest.mark.parametrize("name", ["data dir #1", "we?ird", "50% off", "at@home", "a:b"])
def test_the_default_url_puts_the_database_where_it_says(tmp_path, name):
    # A '?' once started the URL's query: the index landed in <parent>/we, outside.
    data_dir = tmp_path / name
    index = AnnotationIndex(default_url(data_dir))
    assert index.add(_saved(), "p") is True
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert sorted(p.name for p in data_dir.iterdir()) == ["index.sqlite3"]
    assert _keys(AnnotationIndex(default_url(data_dir)).query()) == [(SHA_A, 1)]


def test_safe_url_of_a_sqlite_index(tmp_path):
    url = _url(tmp_path / "index.sqlite3")
    index = AnnotationIndex(url)
    assert index.url == url
    assert index.safe_url == url
    assert repr(index) == f"AnnotationIndex({url!r})"


def test_safe_url_hides_the_password_and_names_the_driver(psycopg_installed):
    index = AnnotationIndex("postgresql://u:secret@h/db")
    assert "secret" not in index.safe_url and "secret" not in repr(index)
    assert index.safe_url == "postgresql+psycopg://u:***@h/db"
    assert repr(index) == "AnnotationIndex('postgresql+psycopg://u:***@h/db')"
    explicit = AnnotationIndex("postgresql+psycopg://u:s%40cret@h/db")
    assert explicit.safe_url == "postgresql+psycopg://u:***@h/db"
    # libpq takes a password from the query too.
    in_query = AnnotationIndex("postgresql://u@h/db?password=secret&sslpassword=key&sslmode=require")
    assert "secret" not in in_query.safe_url and "key" not in in_query.safe_url
    assert in_query.safe_url == ("postgresql+psycopg://u@h/db?password=%2A%2A%2A"
                                 "&sslmode=require&sslpassword=%2A%2A%2A")
    assert in_query.engine.url.query["password"] == "secret"  # masked for show only


# --- AnnotationIndex: writing -------------------------------------------------------


def test_constructing_an_index_writes_nothing(tmp_path):
    index = AnnotationIndex(_url(tmp_path / "sub" / "index.sqlite3"))
    repr(index)
    assert list(tmp_path.iterdir()) == []
    assert index.add_many([]) == 0
    assert list(tmp_path.iterdir()) == []


def test_constructing_a_postgresql_index_connects_to_nothing(tmp_path, psycopg_installed):
    # No server answers here: anything that connected would raise IndexUnavailable.
    index = AnnotationIndex(_server_gone_url(tmp_path))
    assert index.add_many([]) == 0
    assert index.sync(tmp_path / "no such dir") == synced(0)
    index.dispose()


def test_a_missing_folder_of_a_sqlite_file_is_made(tmp_path):
    index = AnnotationIndex(_url(tmp_path / "db" / "index.sqlite3"))
    assert index.add(_saved(), "v001.json") is True
    assert (tmp_path / "db" / "index.sqlite3").is_file()


def test_add_is_true_once_then_false(make_index, tmp_path):
    index = make_index()
    assert index.add(_saved(), tmp_path / "v001.json") is True
    assert index.add(_saved(), tmp_path / "v001.json") is False
    assert index.add(_saved(version=2, when="2024-01-02T10:00:00"), "v002.json") is True
    rows = index.query()
    assert _keys(rows) == [(SHA_A, 2), (SHA_A, 1)]
    assert [row["record_path"] for row in rows] == ["v002.json", str(tmp_path / "v001.json")]


def test_a_new_database_file_is_logged_and_an_existing_one_is_not(tmp_path, caplog):
    path = tmp_path / "mistyped" / "index.sqlite3"
    with caplog.at_level("INFO", logger="annotation_client._database"):
        AnnotationIndex(_url(path)).add(_saved(), "v001.json")
    assert [r.getMessage() for r in caplog.records] == [
        f"annotation index: starting a new database file {path}"
    ]
    caplog.clear()
    with caplog.at_level("INFO", logger="annotation_client._database"):
        AnnotationIndex(_url(path)).query()
    assert caplog.records == []


def test_add_many_counts_the_rows_it_added(make_index):
    index = make_index()
    assert index.add_many([(_saved(version=1), "a"), (_saved(SHA_B), "b")]) == 2
    batch = [(_saved(version=1), "a"), (_saved(version=2), "c"), (_saved(version=3), "d")]
    assert index.add_many(batch) == 2
    assert index.add_many(iter(batch)) == 0
    # The same version twice in one batch is added once.
    assert index.add_many([(_saved(version=4), "e"), (_saved(version=4), "e")]) == 1
    assert sorted(_keys(index.query())) == [(SHA_A, v) for v in (1, 2, 3, 4)] + [(SHA_B, 1)]


def test_a_bad_record_in_a_batch_adds_nothing(make_index):
    index = make_index()
    bad = dict(_saved(version=2), version=0)
    with pytest.raises(ValueError, match="version"):
        index.add_many([(_saved(version=1), "a"), (bad, "b")])
    assert index.query() == []


def test_two_indexes_on_one_database_see_each_other(make_index):
    first, second = make_index(), make_index()
    assert first.add(_saved(version=1), "a") is True
    assert _keys(second.query()) == [(SHA_A, 1)]
    assert second.add(_saved(version=1), "a") is False
    assert second.add(_saved(SHA_B, annotator="Bob"), "b") is True
    assert sorted(_keys(first.query())) == [(SHA_A, 1), (SHA_B, 1)]
    assert first.annotators() == ["Ada", "Bob"]


def test_a_row_another_process_indexed_meanwhile_is_counted_once(make_index, monkeypatch):
    # The other process writes between our read of the known keys and our INSERT: the
    # unique constraint refuses the batch, and each row is tried alone.
    index, other = make_index(), make_index()
    assert index.add(_saved(version=1), "a") is True

    real, calls = index._known, []

    def nothing_known(session, shas):
        if calls:  # the retry, row by row, reads the rows as they are
            return real(session, shas)
        calls.append(shas)
        other.add(_saved(version=3), "c")
        return {}

    monkeypatch.setattr(index, "_known", nothing_known)  # this index's reads only
    batch = [(_saved(version=1), "a"), (_saved(version=2), "b"), (_saved(version=3), "c")]
    assert index.add_many(batch) == 1
    assert sorted(_keys(index.query())) == [(SHA_A, 1), (SHA_A, 2), (SHA_A, 3)]
    assert index.add(_saved(version=2), "b") is False


# --- AnnotationIndex: a database that cannot be written -----------------------------


def _blocked_by_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file, not a folder")
    return _url(blocker / "index.sqlite3")


def _assert_unavailable(index):
    """Writing, reading and listing annotators each raise IndexUnavailable."""
    with pytest.raises(IndexUnavailable, match="could not be written"):
        index.add(_saved(), "p")
    with pytest.raises(IndexUnavailable, match="could not be read"):
        index.query()
    with pytest.raises(IndexUnavailable, match="could not be read"):
        index.annotators()


def test_a_path_under_a_regular_file_is_unavailable(tmp_path):
    index = AnnotationIndex(_blocked_by_a_file(tmp_path))
    _assert_unavailable(index)
    assert (tmp_path / "blocker").read_text() == "a regular file, not a folder"


def test_a_folder_where_the_database_should_be_is_unavailable(tmp_path):
    (tmp_path / "index.sqlite3").mkdir()
    with pytest.raises(IndexUnavailable):
        AnnotationIndex(_url(tmp_path / "index.sqlite3")).add(_saved(), "p")


def test_a_file_that_is_not_a_database_is_unavailable(tmp_path):
    (tmp_path / "index.sqlite3").write_bytes(b"not a database " * 100)
    with pytest.raises(IndexUnavailable):
        AnnotationIndex(_url(tmp_path / "index.sqlite3")).add(_saved(), "p")


def _read_only_check(folder: Path) -> dict:
    """What this process sees of ``folder`` and what adding a record there does."""
    seen = {"uid": os.geteuid(), "writable": os.access(folder, os.W_OK), "raised": None}
    try:
        AnnotationIndex(_url(folder / "index.sqlite3")).add(_saved(), "p")
    except IndexUnavailable as exc:
        seen["raised"] = str(exc)
    seen["left"] = sorted(os.listdir(folder))
    return seen


def _as_nobody(check, warm_up, timeout: float = 60.0) -> dict:
    """``check()``'s dict, computed in a forked child that has become ``nobody``.

    Root is not bound by a folder's permissions, and CI runs the tests as root. The
    interpreter itself lives in root's home, out of nobody's reach, so a fresh
    ``python`` cannot be started as nobody; a fork keeps what is loaded, and
    ``warm_up()``, run before the privileges are dropped, loads what ``check()``
    imports lazily (SQLAlchemy's SQLite dialect, the sqlite3 module).
    """
    entry = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            warm_up()
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.write(write_end, json.dumps(check()).encode())
            code = 0
        except BaseException as exc:  # reported to the parent, which fails on it
            os.write(write_end, json.dumps({"child_error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the check as nobody did not finish in {timeout} s")
        time.sleep(0.02)
    with os.fdopen(read_end, "rb") as out:
        seen = json.loads(out.read() or b"{}")
    assert os.waitstatus_to_exitcode(done[1]) == 0, seen
    return seen


def test_a_read_only_folder_is_unavailable(tmp_path, skip_or_fail):
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            seen = _read_only_check(folder)
        finally:
            folder.chmod(0o755)
        uid = os.geteuid()
    else:
        try:
            uid = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            skip_or_fail("running as root, and there is no nobody user to run the check as")
        # Not under tmp_path, whose parents only root may enter.
        base = Path(tempfile.mkdtemp(prefix="sonotrace-read-only-"))
        folder = base / "locked"
        try:
            base.chmod(0o755)
            folder.mkdir()
            os.chown(folder, uid, -1)  # nobody's own folder, read-only to its owner too
            folder.chmod(0o555)
            warm = tmp_path / "warm"
            warm.mkdir()
            seen = _as_nobody(
                lambda: _read_only_check(folder),
                warm_up=lambda: AnnotationIndex(_url(warm / "index.sqlite3")).add(_saved(), "p"),
            )
        finally:
            if folder.exists():
                folder.chmod(0o755)
            shutil.rmtree(base)
    assert seen["uid"] == uid and not seen["writable"]  # the permissions bind this user
    assert seen["raised"] is not None and "could not be written" in seen["raised"]
    assert seen["left"] == []  # not even an empty database file


# --- AnnotationIndex: reading -------------------------------------------------------


@pytest.fixture
def filled(make_index):
    """Two images, five versions, three annotators, saved in this order of time:
    A1 Ada benign, B1 Ada -, A2 Bob malignant, B2 Ada -, A3 Ada benign.
    """
    index = make_index()
    records = [  # added out of time order, so order comes from saved_at
        _saved(SHA_A, 3, "Ada", "benign", "2024-01-05T10:00:00"),
        _saved(SHA_A, 1, "Ada", "benign", "2024-01-01T10:00:00"),
        _saved(SHA_B, 2, "Ada", None, "2024-01-04T10:00:00"),
        _saved(SHA_A, 2, "Bob", "malignant", "2024-01-03T10:00:00"),
        _saved(SHA_B, 1, "Ada", None, "2024-01-02T10:00:00"),
    ]
    assert index.add_many((r, f"{r['image']['sha256'][:2]}/v{r['version']}") for r in records) == 5
    return index


A1, A2, A3, B1, B2 = (SHA_A, 1), (SHA_A, 2), (SHA_A, 3), (SHA_B, 1), (SHA_B, 2)


def test_query_is_newest_first(filled):
    rows = filled.query()
    assert _keys(rows) == [A3, B2, A2, B1, A1]
    assert rows[0] == {
        "image_sha256": SHA_A,
        "version": 3,
        "saved_at": "2024-01-05T10:00:00Z",
        "annotator": "Ada",
        "image_name": "benign (1).png",
        "worklist_path": None,
        "width": 6,
        "height": 4,
        "final_label": "benign",
        "ai_label": None,
        "ai_p_malignant": None,
        "segmented": False,
        "dice_ai_vs_final": None,
        "edited": None,
        "regions": None,
        "max_diameter_px": None,
        "perpendicular_diameter_px": None,
        "max_diameter_mm": None,
        "perpendicular_diameter_mm": None,
        "area_px": None,
        "area_mm2": None,
        "pixel_spacing_row_mm": None,
        "pixel_spacing_col_mm": None,
        "pixel_spacing_source": None,
        "classification_model_version": None,
        "box_model_versions": None,
        "empty": False,
        "model_version": None,
        "record_path": "ab/v3",
        "based_on_version": None,
        "based_on_annotator": None,
        "revises_other_reader": None,
        "birads_assessment": None,
        "birads_shape": None,
        "birads_orientation": None,
        "birads_margin": None,
        "birads_echo_pattern": None,
        "birads_posterior_features": None,
        "note": None,
        "damaged": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"annotator": "Ada"}, [A3, B2, B1, A1]),
        ({"annotator": "Bob"}, [A2]),
        ({"annotator": "ada"}, []),
        ({"annotator": ""}, [A3, B2, A2, B1, A1]),
        ({"final_label": "benign"}, [A3, A1]),
        ({"final_label": "malignant"}, [A2]),
        ({"final_label": "normal"}, []),
        ({"final_label": "none"}, [B2, B1]),
        ({"latest_only": True}, [A3, B2]),
        ({"latest_only": True, "final_label": "none"}, [B2]),
        ({"latest_only": True, "final_label": "malignant"}, []),
        ({"annotator": "Ada", "final_label": "benign"}, [A3, A1]),
        ({"limit": 2}, [A3, B2]),
        ({"limit": 1, "latest_only": True}, [A3]),
        ({"limit": MAX_LIMIT}, [A3, B2, A2, B1, A1]),
        # Blinded reading: only the reader's saves exist, so Bob's latest of A is his A2
        # although Ada saved A3 since, and the other filters apply within.
        ({"reader": "Bob"}, [A2]),
        ({"reader": "Bob", "latest_only": True}, [A2]),
        ({"reader": "Bob", "latest_only": True, "final_label": "malignant"}, [A2]),
        ({"reader": "Ada", "latest_only": True}, [A3, B2]),
        ({"reader": "Ada", "annotator": "Bob"}, []),
        ({"reader": "Cy", "latest_only": True}, []),
    ],
)
def test_query_filters(filled, kwargs, expected):
    assert _keys(filled.query(**kwargs)) == expected


def test_query_filters_by_bi_rads_assessment(make_index):
    index = make_index()
    records = [  # newest last: A1 3, B1 none, A2 4A, B2 4A
        _saved(SHA_A, 1, "Ada", "benign", "2024-01-01T10:00:00", {"assessment": "3"}),
        _saved(SHA_B, 1, "Bob", None, "2024-01-02T10:00:00", {"shape": "oval"}),
        _saved(SHA_A, 2, "Bob", "malignant", "2024-01-03T10:00:00", {"assessment": "4A"}),
        _saved(SHA_B, 2, "Ada", "benign", "2024-01-04T10:00:00", {"assessment": "4A"}),
    ]
    assert index.add_many((r, "p") for r in records) == 4
    assert _keys(index.query(assessment="4A")) == [B2, A2]
    assert _keys(index.query(assessment="3")) == [A1]
    assert _keys(index.query(assessment="none")) == [B1]
    assert _keys(index.query(assessment="5")) == []
    # Each image's latest version is 4A now: none is 3 any more.
    assert _keys(index.query(assessment="3", latest_only=True)) == []
    assert _keys(index.query(assessment="4A", latest_only=True)) == [B2, A2]
    assert _keys(index.query(assessment="4A", final_label="benign")) == [B2]
    assert _keys(index.query(assessment="4A", reader="Bob")) == [A2]
    for wrong in ("4", "4a", "", "BI-RADS 3", 3):
        with pytest.raises(ValueError, match="assessment must be none or one of 0, 1, 2"):
            index.query(assessment=wrong)


def test_notes_reach_the_database_whole_or_bounded(make_index):
    """On PostgreSQL too, which refuses a NUL in text: the note's copy leaves it out."""
    index = make_index()
    notes = {1: "Seen in two planes.\nBiopsy advised.", 2: "a\x00b", 3: "n" * 12_345,
             4: "ü" * 10_000}  # fmt: skip
    for version, note in notes.items():
        record = _saved(version=version, when=f"2024-01-0{version}T10:00:00")
        # Set after build_record: 2 and 3 could not be saved today, but may be on disk
        # from before the note was checked and limited.
        record["final"]["note"] = note
        assert index.add(record, "p")
    got = {row["version"]: row["note"] for row in index.query()}
    assert got == {1: notes[1], 2: "ab", 3: "n" * 9_999 + "…", 4: "ü" * 10_000}


def test_a_note_with_a_lone_surrogate_is_indexed_and_does_not_stop_the_batch(make_index):
    """A browser can send one (JSON.stringify escapes it); the record on disk keeps it."""
    index = make_index()
    odd = _saved(version=1, note="mass at 3 o\udb80clock")
    assert row_values(odd, "p")["note"] == "mass at 3 o\ufffdclock"
    assert index.add_many([(odd, "a"), (_saved(version=2, note="fine"), "b")]) == 2
    assert {row["version"]: row["note"] for row in index.query()} == {
        1: "mass at 3 o\ufffdclock", 2: "fine"}


def test_reads_are_each_readers_latest_of_the_images_two_read(filled):
    # A: Ada's latest is A3, Bob's A2. B was read by Ada alone, so it does not count.
    rows, total = filled.reads()
    assert _keys(rows) == [A3, A2] and total == 1
    assert rows[1]["annotator"] == "Bob"
    for images in (0, MAX_READ_IMAGES + 1, True, "10"):
        with pytest.raises(ValueError, match="images"):
            filled.reads(images)


def test_reads_are_capped_by_whole_images_newest_first(filled):
    # Bob reads B too (the newest save): B now counts, and a cap of one image keeps B
    # with both its reads rather than the newest rows of two images.
    filled.add(_saved(SHA_B, 3, "Bob", "benign", "2024-01-06T10:00:00"), "b2/v3")
    rows, total = filled.reads(1)
    assert _keys(rows) == [(SHA_B, 3), B2] and total == 2
    assert _keys(filled.reads(2)[0]) == [(SHA_B, 3), A3, B2, A2]


def test_reads_are_each_readers_latest_independent_read_and_latest_copy(filled):
    def copy_of(sha, version, annotator, label, when, of):
        record = _saved(sha, version, annotator, label, when)
        record["based_on"] = {"version": of[1], "annotator": of[0]}
        return record

    # Bob revises Ada's B2 as B3: B still has one independent reader, so it does not
    # count. Cy revises Bob's A2 as A4, and Bob revises Ada's A3 as A5, after his own A2.
    filled.add(copy_of(SHA_B, 3, "Bob", None, "2024-01-06T10:00:00", ("Ada", 2)), "b/v3")
    filled.add(copy_of(SHA_A, 4, "Cy", "benign", "2024-01-07T10:00:00", ("Bob", 2)), "a/v4")
    filled.add(copy_of(SHA_A, 5, "Bob", "benign", "2024-01-08T10:00:00", ("Ada", 3)), "a/v5")
    rows, total = filled.reads()
    assert total == 1  # A: Ada and Bob independently; B: Ada only
    # Ada's A3 and Bob's A2 are the reads; Bob's A5 and Cy's A4 their latest copies.
    # B is not compared, but its rows come too, so that Bob's B3 is listed as left
    # out rather than dropped without a word.
    assert _keys(rows) == [(SHA_A, 5), (SHA_A, 4), (SHA_B, 3), A3, B2, A2]
    assert [r["revises_other_reader"] for r in rows] == [True, True, True, None, None, None]


def test_reads_list_a_reader_who_only_revised_anothers_work(make_index):
    """Dr Hunt's v1 and Dr Second's v2 and v3, revisions of it: nothing to compare,
    but Dr Second's latest is in the rows, to be named as left out."""
    index = make_index()
    first = _saved(SHA_A, 1, "Dr Hunt", "benign", "2024-01-01T10:00:00")
    second = _saved(SHA_A, 2, "Dr Second", "benign", "2024-01-02T10:00:00")
    second["based_on"] = {"version": 1, "annotator": "Dr Hunt"}
    third = _saved(SHA_A, 3, "Dr Second", "malignant", "2024-01-03T10:00:00")
    third["based_on"] = {"version": 2, "annotator": "Dr Second", "readers": ["Dr Hunt",
                                                                              "Dr Second"]}
    assert index.add_many([(first, "a/v1"), (second, "a/v2"), (third, "a/v3")]) == 3
    # An image only one reader ever saved, revising nothing, brings no row.
    assert index.add(_saved(SHA_B, 1, "Dr Hunt", None, "2024-01-04T10:00:00"), "b/v1")
    rows, total = index.reads()
    assert total == 0
    assert _keys(rows) == [(SHA_A, 3), (SHA_A, 1)]
    assert [(r["annotator"], r["revises_other_reader"]) for r in rows] == [
        ("Dr Second", True), ("Dr Hunt", None)]
    # At most `images` such images, the newest.
    index.add(_saved(SHA_B, 2, "Dr Second", None, "2024-01-05T10:00:00")
              | {"based_on": {"version": 1, "annotator": "Dr Hunt"}}, "b/v2")
    assert _keys(index.reads(1)[0]) == [(SHA_B, 2), (SHA_B, 1)]


def test_reads_of_an_empty_index(make_index):
    assert make_index().reads() == ([], 0)


def test_a_name_with_a_nul_matches_nothing_on_either_backend(filled):
    # PostgreSQL refuses a NUL in a text parameter; no saved name can hold one.
    assert filled.query(annotator="Ada\x00") == []
    assert filled.query(reader="\x00", latest_only=True) == []
    assert filled.query(annotator="Ada") != []


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, 2.0, "10", None])
def test_query_limit_must_be_a_sane_int(filled, limit):
    with pytest.raises(ValueError, match="limit"):
        filled.query(limit=limit)


@pytest.mark.parametrize("label", ["cancer", "None", "Benign", ""])
def test_query_refuses_an_unknown_final_label(filled, label):
    with pytest.raises(ValueError, match="final_label"):
        filled.query(final_label=label)


def test_query_orders_by_the_utc_instant(make_index):
    # The test PostgreSQL server's own zone is America/St_Johns: nothing may convert.
    index = make_index()
    east = _saved(SHA_A, when="2024-01-04T21:00:00")
    east["saved_at"] = "2024-01-05T01:00:00+05:00"  # 20:00 UTC, the earlier save
    later = _saved(SHA_B, when="2024-01-04T21:00:00")
    index.add_many([(east, "a"), (later, "b")])
    rows = index.query()
    assert _keys(rows) == [(SHA_B, 1), (SHA_A, 1)]
    assert [row["saved_at"] for row in rows] == ["2024-01-04T21:00:00Z", "2024-01-04T20:00:00Z"]


def test_annotators_are_distinct_and_sorted(filled):
    assert filled.annotators() == ["Ada", "Bob"]
    filled.add(_saved(SHA_B, 3, annotator="Aaron"), "x")
    # Sorted in Python, not by the database's collation, so the same on both.
    filled.add(_saved(SHA_B, 4, annotator="bea"), "y")
    filled.add(_saved(SHA_B, 5, annotator="Émile"), "z")
    assert filled.annotators() == ["Aaron", "Ada", "Bob", "bea", "Émile"]


def test_the_annotator_of_one_version(filled):
    assert filled.annotator_of(SHA_A, 2) == "Bob"
    assert filled.annotator_of(SHA_B, 1) == "Ada"
    assert filled.annotator_of(SHA_A, 9) is None and filled.annotator_of("ef" * 32, 1) is None


def test_a_damaged_record_is_its_readers_as_the_index_recorded_it(make_index, tmp_path, caplog):
    # Under blinded reading a reader sees the versions whose record names them: one
    # damaged since its save must still be theirs, so that the damage is reported to
    # them ("the latest cannot be read") instead of an older version shown as the latest.
    data_dir = tmp_path / "data"
    store = AnnotationStore(data_dir, index=make_index())
    for version, name in enumerate(("Ada", "Bob", "Ada"), start=1):
        record = _saved(SHA_A, version, name, when=f"2024-01-0{version}T10:00:00")
        assert store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record).indexed
    AnnotationStore(data_dir).save(SHA_A, svg="<svg/>", mask_png=b"png",  # not indexed
                                   record=_saved(SHA_A, 4, "Ada"))  # fmt: skip
    for version in (2, 3, 4):
        path = store.record_path(SHA_A, version)
        path.write_bytes(path.read_bytes()[:40])  # cut short
    assert store.versions(SHA_A, "Ada") == [1, 3]  # v4: not indexed, so nobody's
    assert store.versions(SHA_A, "Bob") == [2]
    assert store.versions(SHA_A) == [1, 2, 3, 4]
    # Without the index, a record that cannot be read names nobody, as before.
    plain = AnnotationStore(data_dir)
    assert plain.versions(SHA_A, "Ada") == [1] and plain.versions(SHA_A, "Bob") == []
    # An index that cannot be read: nobody either, and the log says why.
    (tmp_path / "blocker").write_text("a regular file, not a folder")
    blocked = AnnotationStore(data_dir, index=make_index(_url(tmp_path / "blocker" / "i.db")))
    assert blocked.versions(SHA_A, "Bob") == []
    assert "annotator of " + SHA_A[:12] + " v2 not looked up" in caplog.text


def test_an_empty_index_has_no_rows_and_no_annotators(make_index):
    index = make_index()
    assert index.annotators() == []
    assert index.query(latest_only=True) == []


# --- sync ---------------------------------------------------------------------------


def _store_some(data_dir):
    """Three complete versions written by a store without an index."""
    store = AnnotationStore(data_dir)
    for sha, when in ((SHA_A, "2024-01-01T10:00:00"), (SHA_A, "2024-01-02T10:00:00"),
                      (SHA_B, "2024-01-03T10:00:00")):  # fmt: skip
        _, final = _masks()
        when = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
        image = dict(IMAGE, sha256=sha)
        record = build_record(image=image, annotator="Ada", final_mask=final, saved_at=when,
                              measurements=summarize_outline(final))  # fmt: skip
        assert store.save(sha, svg="<svg/>", mask_png=b"png", record=record).indexed is None
    return store


def test_sync_indexes_what_a_store_saved_and_is_idempotent(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    index = make_index()
    assert index.sync(data_dir) == synced(3)
    rows = index.query()
    assert _keys(rows) == [(SHA_B, 1), (SHA_A, 2), (SHA_A, 1)]
    assert rows[1]["record_path"] == str(data_dir / SHA_A / "v002.json")
    assert rows[1]["saved_at"] == "2024-01-02T10:00:00Z"
    assert index.sync(data_dir) == synced(0)
    assert len(index.query()) == 3
    # A later save joins at the next sync.
    AnnotationStore(data_dir).save(SHA_B, svg="<svg/>", mask_png=b"png",
                                   record=_saved(SHA_B, when="2024-01-09T00:00:00"))  # fmt: skip
    assert index.sync(str(data_dir)) == synced(1)
    assert _keys(index.query(limit=1)) == [(SHA_B, 2)]


def test_sync_skips_bad_records_and_keeps_the_rest(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    corrupt = data_dir / SHA_A / "v003.json"
    corrupt.write_text('{"image": ', encoding="utf-8")
    bad_field = data_dir / SHA_B / "v002.json"
    bad_field.write_text(json.dumps(dict(_saved(SHA_B, 2), version=0)), encoding="utf-8")
    not_utf8 = data_dir / SHA_B / "v003.json"
    not_utf8.write_bytes(b"\xff\xfe{}")
    a_list = data_dir / SHA_B / "v004.json"
    a_list.write_text("[1, 2]", encoding="utf-8")
    index = make_index()
    result = index.sync(data_dir)
    assert result == {
        "added": 3,
        "removed": 0,
        "unchecked": 0,
        "skipped": [str(corrupt), str(bad_field), str(not_utf8), str(a_list)],
    }
    # Each bad record is listed, as damaged; the rest as they say.
    assert _listed(index) == [(SHA_A, 1, False), (SHA_A, 2, False), (SHA_A, 3, True),
                              (SHA_B, 1, False), (SHA_B, 2, True), (SHA_B, 3, True),
                              (SHA_B, 4, True)]  # fmt: skip
    assert index.sync(data_dir) == synced(0, skipped=result["skipped"])
    assert len(index.query()) == 7


def test_sync_skips_a_record_the_database_refuses_and_keeps_the_rest(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    # Once such a record failed the whole batch at INSERT, good records and all.
    odd = dict(_saved(SHA_B, 2), agreement={"dice_ai_vs_final": 0.5, "edited": "yes"})
    (data_dir / SHA_B / "v002.json").write_text(json.dumps(odd), encoding="utf-8")
    index = make_index()
    assert index.sync(data_dir) == synced(3, skipped=[str(data_dir / SHA_B / "v002.json")])


_TOO_BIG = 2**70  # an int that JSON holds and neither database's INTEGER does


@pytest.mark.parametrize("path", [["version"], ["image", "width"], ["final", "regions"]])
def test_add_refuses_an_integer_the_database_cannot_hold(make_index, tmp_path, path):
    record = _saved()
    _setting(path, _TOO_BIG)(record)
    index = make_index()
    with pytest.raises(ValueError, match="is not an int from"):
        index.add(record, "p")


def test_sync_skips_a_record_with_an_integer_the_database_cannot_hold(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    huge = _saved(SHA_B, 2)
    huge["image"]["width"] = _TOO_BIG
    (data_dir / SHA_B / "v002.json").write_text(json.dumps(huge), encoding="utf-8")
    index = make_index()
    assert index.sync(data_dir) == synced(3, skipped=[str(data_dir / SHA_B / "v002.json")])


def test_a_damaged_record_is_marked_alike_in_an_old_and_a_new_index_until_restored(
    make_index, tmp_path
):
    """On both databases: a record cut short after it was indexed is marked damaged at
    the next sync (reading blanked, annotator kept), and is no read and matches no
    label; an index made anew from the files lists it alike; restored, it is as it says
    again in either."""
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    index = make_index()
    assert index.sync(data_dir) == synced(3)
    record = data_dir / SHA_A / "v002.json"
    whole = record.read_bytes()
    as_said = index.query()

    def damaged_then_restored(index):
        [row] = [r for r in index.query() if r["damaged"]]
        assert row["damaged"].startswith("Unterminated string")
        assert (row["image_name"], row["width"], row["regions"]) == ("benign (1).png", 6, None)
        assert _keys(index.query(final_label="none")) == [(SHA_B, 1), (SHA_A, 1)]
        assert index.reads() == ([], 0)  # one reader, none compared
        assert summarize(index.query())["versions"] == 2
        assert summarize(index.query())["damaged"] == 1
        assert index.annotators() == ["Ada"]
        record.write_bytes(whole)  # restored from a backup
        assert index.sync(data_dir) == synced(1)
        assert index.query() == as_said
        return row

    record.write_bytes(whole[:40])
    assert index.sync(data_dir) == synced(0, skipped=[str(record)])
    marked = damaged_then_restored(index)
    assert marked["annotator"] == "Ada"
    # Damaged again, and the index made anew: its tables dropped, refilled from the files.
    record.write_bytes(whole[:40])
    with index.engine.begin() as conn:
        SavedRow.__table__.drop(conn)
        SchemaRow.__table__.drop(conn)
    index.dispose()
    index = make_index()
    assert index.sync(data_dir) == synced(2, skipped=[str(record)])
    fresh = damaged_then_restored(index)
    assert fresh["annotator"] == ""  # only the record named one
    assert {k: v for k, v in fresh.items() if k not in ("annotator", "saved_at")} == {
        k: v for k, v in marked.items() if k not in ("annotator", "saved_at")}


def test_sync_reads_only_record_files_in_image_folders(make_index, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    good = _saved(SHA_A, 1)
    folder = data_dir / SHA_A
    folder.mkdir()
    (folder / "v001.json").write_text(json.dumps(good), encoding="utf-8")
    # Valid records under names sync must not read; each would add a row if it did.
    for version, name in enumerate(
        ["v1.json", "v01.json", "v002_ai.json", "v003.json.tmp", ".v004.json.x.tmp",
         "notes.json", "v005.svg", "V006.json"],
        start=2,
    ):  # fmt: skip
        (folder / name).write_text(json.dumps(_saved(SHA_A, version)), encoding="utf-8")
    (folder / "v007.json").mkdir()  # a folder with a record's name: skipped, not fatal
    for other in ("notes", SHA_B.upper(), SHA_B[:-1], "ab" * 32 + "0"):
        (data_dir / other).mkdir()
        (data_dir / other / "v001.json").write_text(json.dumps(_saved(SHA_B)), encoding="utf-8")
    (data_dir / SHA_B).write_text(json.dumps(_saved(SHA_B)), encoding="utf-8")  # a file
    (data_dir / "v001.json").write_text(json.dumps(_saved(SHA_B)), encoding="utf-8")
    index = make_index()
    assert index.sync(data_dir) == synced(1, skipped=[str(folder / "v007.json")])
    # The folder named as a record is a record that cannot be read: listed, damaged.
    assert _listed(index) == [(SHA_A, 1, False), (SHA_A, 7, True)]


def test_sync_of_a_missing_data_dir_writes_nothing(tmp_path):
    database = tmp_path / "db" / "index.sqlite3"
    index = AnnotationIndex(_url(database))
    assert index.sync(tmp_path / "no such dir") == synced(0)
    (tmp_path / "empty").mkdir()
    assert index.sync(tmp_path / "empty") == synced(0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_sync_into_a_database_that_cannot_be_written(tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    with pytest.raises(IndexUnavailable):
        AnnotationIndex(_blocked_by_a_file(tmp_path)).sync(data_dir)
    # The records are untouched, and a working index still takes them.
    assert AnnotationIndex(_url(tmp_path / "ok.sqlite3")).sync(data_dir)["added"] == 3


# --- summarize ----------------------------------------------------------------------


def _row(sha, annotator, dice, edited, ai_label, final_label):
    return {"image_sha256": sha, "annotator": annotator, "dice_ai_vs_final": dice,
            "edited": edited, "ai_label": ai_label, "final_label": final_label}  # fmt: skip


def test_summarize_hand_made_rows():
    rows = [
        _row("a", "Ada", 0.5, True, "benign", "benign"),
        _row("a", "Bob", 1.0, False, "benign", "malignant"),
        _row("b", "Ada", None, None, "malignant", "malignant"),
        _row("c", "Cy", 0.0, True, None, "normal"),
        _row("d", "Cy", None, None, "normal", None),
    ]
    assert summarize(rows) == {
        "versions": 5,
        "images": 4,
        "annotators": 3,
        "mean_dice": 0.5,  # (0.5 + 1.0 + 0.0) / 3
        "edited": 2 / 3,  # two of the three with an AI outline
        "label_agreement": 2 / 3,  # rows 1-3 have both labels; 1 and 3 agree
        "damaged": 0,
    }


def test_summarize_without_ai_outlines_or_labels():
    nothing = {"mean_dice": None, "edited": None, "label_agreement": None, "damaged": 0}
    assert summarize([]) == {"versions": 0, "images": 0, "annotators": 0} | nothing
    rows = [
        _row("a", "Ada", None, None, None, "benign"),
        _row("a", "Ada", None, None, "benign", None),
    ]
    assert summarize(rows) == {"versions": 2, "images": 1, "annotators": 1} | nothing
    unedited = [_row("a", "Ada", 1.0, False, None, None)]
    assert summarize(unedited)["edited"] == 0.0
    assert summarize(unedited)["mean_dice"] == 1.0
    assert summarize(unedited)["label_agreement"] is None


def test_summarize_of_a_query(filled):
    assert summarize(filled.query(latest_only=True)) == {
        "versions": 2, "images": 2, "annotators": 1,
        "mean_dice": None, "edited": None, "label_agreement": None, "damaged": 0,
    }  # fmt: skip


def test_sync_skips_a_record_that_names_another_version_or_image(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    # A record copied under the wrong name: its content is v1 of image A, its file v3 of B.
    (data_dir / SHA_B / "v003.json").write_text(json.dumps(_saved(SHA_A, 1)), encoding="utf-8")
    index = make_index()
    assert index.sync(data_dir) == synced(3, skipped=[str(data_dir / SHA_B / "v003.json")])
    # Listed as damaged under its file's name, not as what it says.
    assert _listed(index) == [(SHA_A, 1, False), (SHA_A, 2, False), (SHA_B, 1, False),
                              (SHA_B, 3, True)]  # fmt: skip


def test_sync_reads_only_the_records_of_versions_not_yet_indexed(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    index = make_index()
    assert index.sync(data_dir)["added"] == 3
    # Indexed versions are known by their file names and stamps: an untouched record is
    # not read again (one made unreadable in place, size and time kept, is not noticed),
    # a record spoiled since is read again and skipped (its row marked damaged), while
    # a new version is read.
    untouched = data_dir / SHA_A / "v002.json"
    stat = untouched.stat()
    untouched.write_text("{" * stat.st_size, encoding="utf-8")
    os.utime(untouched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (data_dir / SHA_A / "v001.json").write_text("{not json", encoding="utf-8")
    new = data_dir / SHA_B / "v002.json"
    new.write_text(json.dumps(_saved(SHA_B, 2)), encoding="utf-8")
    assert index.sync(data_dir) == synced(1, skipped=[str(data_dir / SHA_A / "v001.json")])
    assert _listed(index) == [(SHA_A, 1, True), (SHA_A, 2, False), (SHA_B, 1, False),
                              (SHA_B, 2, False)]  # fmt: skip


def test_add_many_indexes_more_images_than_one_query_can_name(make_index, tmp_path):
    # SQLite refuses a statement with more than 32766 bound parameters (999 before 3.32):
    # known keys are looked up in chunks.
    records = [(_saved(f"{i:064x}", 1), f"p{i}") for i in range(1200)]
    index = make_index()
    assert index.add_many(records) == 1200
    assert index.add_many(records) == 0
    assert len(index.query(limit=MAX_LIMIT)) == 1200


def test_saves_from_many_threads_at_once_are_all_indexed(make_index, tmp_path):
    # The first saves after a start arrive together from gunicorn's request threads;
    # creating the table must not fail any of them.
    data_dir = tmp_path / "data"
    index = make_index()
    store = AnnotationStore(data_dir, index=index)
    results, start = [], threading.Barrier(8)

    def save(thread):
        start.wait()
        for i in range(5):
            record = dict(_saved(f"{thread:032x}{i:032x}", 1))
            record.pop("version"), record.pop("files")
            sha = record["image"]["sha256"]
            results.append(store.save(sha, svg="<svg/>", mask_png=b"png", record=record).indexed)

    threads = [threading.Thread(target=save, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 40
    assert len(index.query()) == 40


# --- the table's layout: rebuilt when older, left alone when newer ----------------

#: The columns layout 6 added: the record file's size and modification time.
_STAMP = ("record_size", "record_mtime_ns")
#: SavedRow's table as each SCHEMA_VERSION made it (see _layout).
_LAYOUTS = {2: "7f2b413cc825", 3: "9ae5b2f72708", 4: "dfa4924cf3d3", 5: "9c3b3379f12c",
            6: "7e399e2ba05c", 7: "e2bd2bf4263e", 8: "9d8c5fd1caf5", 9: "51c785aedff7",
            10: "5be81655c017"}


def _layout(table: sa.Table = SavedRow.__table__) -> str:
    """A fingerprint of SavedRow's table (or ``table``): columns (types with their
    arguments, such as a time zone or a length; defaults), keys, constraints and indexes."""
    parts = [
        (c.name, repr(c.type), c.nullable, c.primary_key, repr(c.server_default))
        for c in table.columns
    ]
    parts += sorted(
        (
            type(c).__name__,
            c.name or "",
            tuple(col.name for col in c.columns),
            str(getattr(c, "sqltext", "")),
        )
        for c in table.constraints
    )
    parts += sorted(
        (i.name or "", tuple(col.name for col in i.columns), i.unique) for i in table.indexes
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def test_each_table_layout_has_its_own_schema_version():
    """A change to SavedRow without a new SCHEMA_VERSION would leave old tables in place."""
    assert SCHEMA_VERSION in _LAYOUTS, (
        f"record SavedRow's layout for SCHEMA_VERSION {SCHEMA_VERSION} in _LAYOUTS: {_layout()!r}"
    )
    assert _LAYOUTS[SCHEMA_VERSION] == _layout(), (
        "SavedRow's table changed: raise _database.SCHEMA_VERSION and record the new "
        f"layout here as {SCHEMA_VERSION + 1}: {_layout()!r}"
    )
    assert len(set(_LAYOUTS.values())) == len(_LAYOUTS)  # each version its own layout


def _old_table(url, schema_version=None, rows=1):
    """The index as an older client left it: a table of another layout, one stale row."""
    engine = sa.create_engine(engine_url(url))
    metadata = sa.MetaData()
    old = sa.Table(
        "saved_annotations", metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("version", sa.Integer),
        sa.Column("image_name", sa.String(255)),
    )  # fmt: skip
    schema = sa.Table("saved_annotations_schema", metadata,
                      sa.Column("version", sa.Integer, primary_key=True))  # fmt: skip
    old.create(engine)
    with engine.begin() as conn:
        for n in range(rows):
            conn.execute(old.insert().values(image_sha256="ef" * 32, version=n + 1,
                                             image_name="stale.png"))  # fmt: skip
        if schema_version is not None:
            schema.create(conn)
            conn.execute(schema.insert().values(version=schema_version))
    engine.dispose()


def _stored_layout(index) -> tuple[set[str], list[int]]:
    """The columns of the index's table and the versions in its schema table."""
    with index.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("saved_annotations")}
        versions = conn.scalars(sa.select(SchemaRow.version)).all()
    return columns, versions


def test_an_index_of_this_layout_opens_beside_a_reader(tmp_path):
    """SQLite: a start must not wait for a write lock that every reader holds off."""
    import sqlite3

    url = _url(tmp_path / "index.sqlite3")
    first = AnnotationIndex(url)
    assert first.add(_saved(SHA_A, 1), "p")
    first.dispose()
    reader = sqlite3.connect(tmp_path / "index.sqlite3", isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM saved_annotations").fetchall()  # a shared lock, held
        started = time.monotonic()
        index = AnnotationIndex(url)
        assert _keys(index.query()) == [(SHA_A, 1)]
        assert time.monotonic() - started < 5  # the lock wait is 15 s
        index.dispose()
    finally:
        reader.close()


def test_a_new_index_records_its_layout(make_index):
    index = make_index()
    assert index.add(_saved(SHA_A, 1), "p")
    assert _stored_layout(index) == ({"id", *SavedRow.COLUMNS, *_STAMP}, [SCHEMA_VERSION])


def test_an_index_of_this_layout_is_kept_at_the_next_start(make_index, caplog):
    assert make_index().add(_saved(SHA_A, 1), "p")
    caplog.set_level("WARNING", logger="annotation_client._database")
    again = make_index()
    assert _keys(again.query()) == [(SHA_A, 1)]
    assert "older layout" not in caplog.text


@pytest.mark.parametrize(
    # Layout 6 is upgraded in place instead (test_an_index_of_layout_6_gets_...).
    "recorded", [None, 1, 5], ids=["unrecorded", "first", "last-rebuilt"]
)
def test_an_older_table_is_rebuilt_from_the_files(make_index, db_url, tmp_path, caplog, recorded):
    """A table an older client made: its layout would refuse or lose rows; rebuilt."""
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    _old_table(db_url, schema_version=recorded)
    caplog.set_level("WARNING", logger="annotation_client._database")
    index = make_index()
    assert index.sync(data_dir) == synced(3)
    rows = index.query()
    assert _keys(rows) == [(SHA_B, 1), (SHA_A, 2), (SHA_A, 1)]  # the stale row gone
    # Columns the old layout lacked are filled from the records.
    largest = summarize_outline(_masks()[1])["largest"]
    assert {r["perpendicular_diameter_px"] for r in rows} == {
        largest["perpendicular_diameter_px"]
    }
    assert _stored_layout(index) == ({"id", *SavedRow.COLUMNS, *_STAMP}, [SCHEMA_VERSION])
    expected = "unrecorded" if recorded is None else str(recorded)
    assert f"older layout ({expected}, now {SCHEMA_VERSION}); rebuilding" in caplog.text


def _index_as_left(db_url, store, make_table, layout: int, keys, row) -> dict:
    """Write the index a client of ``layout`` left: its table (``make_table(metadata)``),
    one row per record of ``keys`` (``row(values, path)``, from the record's
    ``row_values``) and its schema row. Returns the rows as stored, by (image, version).
    """
    engine = sa.create_engine(engine_url(db_url))
    metadata = sa.MetaData()
    table = make_table(metadata)
    schema = sa.Table("saved_annotations_schema", metadata,
                      sa.Column("version", sa.Integer, primary_key=True, autoincrement=False))
    metadata.create_all(engine)
    with engine.begin() as conn:
        for sha, version in keys:
            path = store.record_path(sha, version)
            values = row_values(json.loads(path.read_text(encoding="utf-8")), str(path))
            conn.execute(table.insert().values(row(values, path)))
        conn.execute(schema.insert().values(version=layout))
        stored = {(r.image_sha256, r.version): r._asdict()
                  for r in conn.execute(sa.select(table))}  # fmt: skip
    engine.dispose()
    return stored


def _previous_layout(metadata: sa.MetaData) -> sa.Table:
    """SavedRow's table as layout 4 made it: without layout 5's columns (and so without
    the assessment's index) nor layout 6's record stamp. test_the_previous_layout_is_layout_4
    checks the fingerprint."""
    table = SavedRow.__table__
    return sa.Table(
        table.name, metadata,
        *(column._copy() for column in table.columns
          if column.name not in (*_CLINICAL, *_STAMP, "damaged", *_SIZE, _LABEL_MODEL,
                                 _BOX_MODELS)),
        sa.UniqueConstraint("image_sha256", "version", name="uq_image_version"),
    )  # fmt: skip


def test_the_previous_layout_is_layout_4():
    assert SCHEMA_VERSION == 10
    assert _layout(_previous_layout(sa.MetaData())) == _LAYOUTS[4]


def test_an_index_of_layout_4_is_rebuilt_with_the_clinical_fields_of_the_records(
    make_index, db_url, tmp_path, caplog
):
    """Layout 4 to 5 on a real database: the table a layout-4 client made and filled.

    Records have held descriptors and a note all along; a layout-4 index did not copy
    them. At the next start the table is made anew and refilled from the records, the
    new columns included, and every other column as layout 4 held it.
    """
    data_dir = tmp_path / "data"
    store = AnnotationStore(data_dir)
    readings = [  # (image, descriptors, note, when)
        (SHA_A, {"assessment": "2", "shape": "oval", "margin": ["circumscribed"]},
         "Simple cyst.", "2024-01-01T10:00:00"),
        (SHA_A, {"assessment": "4A", "margin": ["angular", "indistinct"],
                 "posterior_features": "shadowing"}, "", "2024-01-02T10:00:00"),
        (SHA_B, None, "Compare with the prior study.", "2024-01-03T10:00:00"),
    ]  # fmt: skip
    for sha, descriptors, note, when in readings:
        record = _saved(sha, descriptors=descriptors, note=note, when=when)
        record.pop("version"), record.pop("files")
        assert store.save(sha, svg="<svg/>", mask_png=b"png", record=record).indexed is None
    # The index as a layout-4 client left it: its table, its rows, its schema row.
    keys = [(SHA_A, 1), (SHA_A, 2), (SHA_B, 1)]
    before = _index_as_left(
        db_url, store, _previous_layout, 4, keys,
        lambda values, _path: {k: v for k, v in values.items()
                               if k not in (*_CLINICAL, "damaged", *_SIZE, *_MODELS)},
    )
    assert sorted(before) == sorted(keys)

    caplog.set_level("WARNING", logger="annotation_client._database")
    index = make_index()
    assert index.sync(data_dir) == synced(3)
    assert f"older layout (4, now {SCHEMA_VERSION}); rebuilding it from the record files" in (
        caplog.text
    )
    assert _stored_layout(index) == ({"id", *SavedRow.COLUMNS, *_STAMP}, [SCHEMA_VERSION])
    rows = {(r["image_sha256"], r["version"]): r for r in index.query()}
    assert {key: tuple(row[c] for c in _CLINICAL) for key, row in rows.items()} == {
        (SHA_A, 1): ("2", "oval", None, "circumscribed", None, None, "Simple cyst."),
        (SHA_A, 2): ("4A", None, None, "indistinct; angular", None, "shadowing", None),
        (SHA_B, 1): (None, None, None, None, None, None, "Compare with the prior study."),
    }
    for key, old in before.items():
        kept = {name: rows[key][name] for name in old if name not in ("id", "saved_at")}
        assert kept == {name: value for name, value in old.items()
                        if name not in ("id", "saved_at")}  # fmt: skip
        assert rows[key]["saved_at"] == old["saved_at"].isoformat(timespec="seconds") + "Z"
    assert _keys(index.query(assessment="4A")) == [(SHA_A, 2)]


def test_a_rebuild_keeps_the_annotator_and_time_of_a_record_damaged_since(
    make_index, db_url, tmp_path, caplog
):
    """An older layout's table is rebuilt from the records, but a record damaged since it
    was indexed no longer names its reader nor its time: the old row's are kept (they
    were dropped with the table), its reading blank; a readable record's row is what it
    says, and the row of a version whose files were removed is dropped."""
    data_dir = tmp_path / "data"
    store = AnnotationStore(data_dir)
    saves = [(SHA_A, "Ada", "2024-01-01T10:00:00"), (SHA_A, "Bob", "2024-01-02T10:00:00"),
             (SHA_B, "Cy", "2024-01-03T10:00:00")]  # fmt: skip
    for sha, annotator, when in saves:
        record = _saved(sha, annotator=annotator, final_label="benign", when=when)
        record.pop("version"), record.pop("files")
        assert store.save(sha, svg="<svg/>", mask_png=b"png", record=record).indexed is None
    keys = [(SHA_A, 1), (SHA_A, 2), (SHA_B, 1)]
    before = _index_as_left(
        db_url, store, _previous_layout, 4, keys,
        lambda values, _path: {k: v for k, v in values.items()
                               if k not in (*_CLINICAL, "damaged", *_SIZE, *_MODELS)},
    )
    # Bob's record is cut short after it was indexed; Cy's version is removed by hand.
    bobs = store.record_path(SHA_A, 2)
    bobs.write_bytes(bobs.read_bytes()[:60])
    shutil.rmtree(store.folder(SHA_B))

    caplog.set_level("WARNING", logger="annotation_client._database")
    index = make_index()
    result = index.sync(data_dir)
    # Cy's row is not even carried over: its record file is gone (audit 918 F2).
    assert (result["added"], result["removed"], result["skipped"]) == (1, 0, [str(bobs)])
    assert "rebuilding it from the record files (keeping each version's annotator" in (
        caplog.text)
    rows = {(r["image_sha256"], r["version"]): r for r in index.query()}
    assert sorted(rows) == [(SHA_A, 1), (SHA_A, 2)]
    bob = rows[(SHA_A, 2)]
    assert bob["damaged"].startswith("Unterminated string")
    assert (bob["annotator"], bob["final_label"]) == ("Bob", None)
    assert bob["saved_at"] == before[(SHA_A, 2)]["saved_at"].isoformat(timespec="seconds") + "Z"
    assert (bob["image_name"], bob["width"], bob["height"]) == ("benign (1).png", 6, 4)
    assert rows[(SHA_A, 1)]["damaged"] is None
    assert (rows[(SHA_A, 1)]["annotator"], rows[(SHA_A, 1)]["final_label"]) == ("Ada", "benign")
    # The reader of the damaged record is still its reader, for the store and agreement.
    assert store.versions(SHA_A, annotator="Bob") == []  # the store alone: unknown
    assert AnnotationStore(data_dir, index=index).versions(SHA_A, annotator="Bob") == [2]
    assert [r["annotator"] for r in index.left_out()] == ["Bob"]
    # A second start changes nothing.
    assert make_index().sync(data_dir) == synced(0, skipped=[str(bobs)])


def test_an_older_table_whose_values_cannot_be_kept_is_rebuilt_without_them(
    make_index, db_url, tmp_path
):
    """Rows of an older table this layout cannot hold (no SHA-256, a version out of
    range) are not carried; the others are."""
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    engine = sa.create_engine(engine_url(db_url))
    metadata = sa.MetaData()
    table = _previous_layout(metadata)
    schema = sa.Table("saved_annotations_schema", metadata,
                      sa.Column("version", sa.Integer, primary_key=True, autoincrement=False))
    metadata.create_all(engine)
    kept = tmp_path / "elsewhere" / "v003.json"
    kept.parent.mkdir()
    kept.write_text("{}")
    stale = {"saved_at": dt.datetime(2024, 1, 1), "annotator": "Old", "image_name": "x.png",
             "width": 6, "height": 4, "segmented": False, "empty": False,
             "record_path": str(kept)}  # fmt: skip
    gone = str(tmp_path / "elsewhere" / "v004.json")
    with engine.begin() as conn:
        conn.execute(table.insert(), [stale | {"image_sha256": "not a sha", "version": 1},
                                      stale | {"image_sha256": "ef" * 32, "version": 0},
                                      stale | {"image_sha256": "ef" * 32, "version": 3},
                                      # Removed by hand, or in a folder since moved: a
                                      # damaged row nothing removes (audit 918 F2).
                                      stale | {"image_sha256": "ef" * 32, "version": 4,
                                               "record_path": gone}])
        conn.execute(schema.insert().values(version=4))
    engine.dispose()
    index = make_index()
    assert index.sync(data_dir)["added"] == 3
    # The row of another folder's version is kept, listed as not read again yet.
    other = [r for r in index.query() if r["image_sha256"] == "ef" * 32]
    assert [(r["version"], r["annotator"], r["damaged"]) for r in other] == [
        (3, "Old", "not read again since the index was rebuilt for a new layout")]


#: The column layout 9 added: the AI label's model version.
_LABEL_MODEL = "classification_model_version"
#: The column layout 10 added: the box re-segmentations' model versions.
_BOX_MODELS = "box_model_versions"
#: The model columns of layouts 9 and 10.
_MODELS = (_LABEL_MODEL, _BOX_MODELS)
#: The columns layout 8 added: the outline's area and the pixel spacing.
_SIZE = ("area_px", "area_mm2", *_SPACING)


def _layout_before(layout: int):
    """``make_table(metadata)``: SavedRow's table as layout 6, 7 or 8 made it, without the
    columns the later layouts added (7: ``damaged``; 8: :data:`_SIZE`; 9: the AI label's
    model)."""
    added = {7: ("damaged",), 8: _SIZE, 9: (_LABEL_MODEL,), 10: (_BOX_MODELS,)}
    left_out = {name for later, names in added.items() if later > layout for name in names}

    def make_table(metadata: sa.MetaData) -> sa.Table:
        table = SavedRow.__table__
        return sa.Table(
            table.name, metadata,
            *(column._copy() for column in table.columns if column.name not in left_out),
            sa.UniqueConstraint("image_sha256", "version", name="uq_image_version"),
        )  # fmt: skip

    return make_table


_layout_6 = _layout_before(6)


def _size_of(store, sha, version) -> dict:
    """The layout-8 and layout-9 columns of a saved version, as its record file gives them."""
    path = store.record_path(sha, version)
    values = row_values(json.loads(path.read_text(encoding="utf-8")), str(path))
    return {name: values[name] for name in (*_SIZE, *_MODELS)}


def test_an_index_of_layout_6_gets_the_later_columns_in_place_and_keeps_every_row(
    make_index, db_url, tmp_path, caplog
):
    """Layout 6 to 8 on a real database: layout 7's and 8's nullable columns added, no
    rebuild.

    A rebuild would lose what only the rows still know: the annotator of a record
    damaged since it was indexed. Every row stays, under its id, with every value; the
    start-up sync then fills layout 8's columns from the records and marks the damaged
    record's row, keeping its annotator.
    """
    assert _layout(_layout_6(sa.MetaData())) == _LAYOUTS[6]  # the table it upgrades
    data_dir = tmp_path / "data"
    store = AnnotationStore(data_dir)
    saves = [(SHA_A, "Ada", "benign", {"assessment": "3"}, "2024-01-01T10:00:00"),
             (SHA_A, "Bob", "malignant", None, "2024-01-02T10:00:00"),
             (SHA_B, "Ada", None, None, "2024-01-03T10:00:00")]  # fmt: skip
    for sha, annotator, label, descriptors, when in saves:
        record = _saved(sha, annotator=annotator, final_label=label, descriptors=descriptors,
                        note="Seen.", when=when)  # fmt: skip
        record.pop("version"), record.pop("files")
        assert store.save(sha, svg="<svg/>", mask_png=b"png", record=record).indexed is None
    # The index as a layout-6 client left it: its table, its rows (stamped), its schema row.
    keys = [(SHA_A, 1), (SHA_A, 2), (SHA_B, 1)]

    def stamped(values, path):
        stat = path.stat()
        return ({k: v for k, v in values.items() if k not in ("damaged", *_SIZE, *_MODELS)}
                | {"record_size": stat.st_size, "record_mtime_ns": stat.st_mtime_ns})

    before = _index_as_left(db_url, store, _layout_6, 6, keys, stamped)
    sizes = {key: _size_of(store, *key) for key in keys}
    # Bob's record is truncated after it was indexed: only its row knows it was his.
    bobs = store.record_path(SHA_A, 2)
    bobs.write_bytes(bobs.read_bytes()[:60])

    caplog.set_level("INFO", logger="annotation_client._database")
    index = make_index()
    # The two readable records are read again, to fill layout 8's columns.
    assert index.sync(data_dir) == synced(2, skipped=[str(bobs)])
    assert "adding the damaged column (layout 6 to 7)" in caplog.text
    assert ("adding the area_px, area_mm2, pixel_spacing_row_mm, pixel_spacing_col_mm, "
            "pixel_spacing_source columns (layout 7 to 8)") in caplog.text
    assert "adding the classification_model_version column (layout 8 to 9)" in caplog.text
    assert "older layout" not in caplog.text
    assert "changed on disk" not in caplog.text  # filled in, not overwritten
    assert _stored_layout(index) == ({"id", *SavedRow.COLUMNS, *_STAMP}, [SCHEMA_VERSION])
    with index.engine.connect() as conn:
        after = {(r.image_sha256, r.version): r._asdict()
                 for r in conn.execute(sa.select(SavedRow.__table__))}  # fmt: skip
    assert sorted(after) == sorted(keys)
    for key in [(SHA_A, 1), (SHA_B, 1)]:  # every value as it was, id and stamp too
        assert after[key] == before[key] | {"damaged": None} | sizes[key]
    bob = after[(SHA_A, 2)]
    assert bob["id"] == before[(SHA_A, 2)]["id"]
    assert bob["damaged"].startswith("Unterminated string")
    kept = ("image_sha256", "version", "saved_at", "annotator", "image_name",
            "worklist_path", "width", "height", "record_path")  # fmt: skip
    assert {k: bob[k] for k in kept} == {k: before[(SHA_A, 2)][k] for k in kept}
    assert (bob["annotator"], bob["final_label"], bob["note"]) == ("Bob", None, None)
    # Its record says none.
    assert {name: bob[name] for name in (*_SIZE, *_MODELS)} == dict.fromkeys(
        (*_SIZE, *_MODELS))
    # A second start finds layout 9 and changes nothing.
    caplog.clear()
    again = make_index()
    assert again.sync(data_dir) == synced(0, skipped=[str(bobs)])
    assert "adding the" not in caplog.text
    assert [r["annotator"] for r in again.query()] == ["Ada", "Bob", "Ada"]


def test_an_index_of_layout_7_gets_the_size_columns_filled_from_the_records(
    make_index, db_url, tmp_path, caplog
):
    """Layout 7 to 8 on a real database: the area and spacing columns added in place and
    filled from the records at the start-up sync; every row keeps its id."""
    data_dir = tmp_path / "data"
    store = AnnotationStore(data_dir)
    _, final = _masks()
    images = [  # (image, spacing, source): typed, from the file, none
        (SHA_A, [0.1, 0.1], "calibrated"), (SHA_B, [0.05, 0.08], None), ("ef" * 32, None, None)
    ]  # fmt: skip
    for sha, spacing, source in images:
        image = dict(IMAGE, sha256=sha, pixel_spacing_mm=spacing, pixel_spacing_source=source)
        record = build_record(
            image=image, annotator="Ada", final_mask=final,
            measurements=summarize_outline(final, spacing),
            saved_at=dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC),
        )  # fmt: skip
        assert store.save(sha, svg="<svg/>", mask_png=b"png", record=record).indexed is None
    keys = [(sha, 1) for sha, *_ in images]

    def stamped(values, path):
        stat = path.stat()
        return ({k: v for k, v in values.items() if k not in (*_SIZE, *_MODELS)}
                | {"record_size": stat.st_size, "record_mtime_ns": stat.st_mtime_ns})

    before = _index_as_left(db_url, store, _layout_before(7), 7, keys, stamped)
    caplog.set_level("INFO", logger="annotation_client._database")
    index = make_index()
    assert index.sync(data_dir) == synced(3)
    assert "(layout 7 to 8)" in caplog.text and "damaged column" not in caplog.text
    assert "changed on disk" not in caplog.text
    with index.engine.connect() as conn:
        after = {(r.image_sha256, r.version): r._asdict()
                 for r in conn.execute(sa.select(SavedRow.__table__))}  # fmt: skip
    assert {key: {n: after[key][n] for n in _SIZE} for key in keys} == {
        (SHA_A, 1): {"area_px": 6.0, "area_mm2": pytest.approx(0.06), "pixel_spacing_row_mm": 0.1,
                     "pixel_spacing_col_mm": 0.1, "pixel_spacing_source": "calibrated"},
        (SHA_B, 1): {"area_px": 6.0, "area_mm2": pytest.approx(6 * 0.05 * 0.08),
                     "pixel_spacing_row_mm": 0.05, "pixel_spacing_col_mm": 0.08,
                     "pixel_spacing_source": "file"},
        ("ef" * 32, 1): {"area_px": 6.0, "area_mm2": None, "pixel_spacing_row_mm": None,
                         "pixel_spacing_col_mm": None, "pixel_spacing_source": None},
    }  # fmt: skip
    for key in keys:  # the rest as it was, id and stamp too
        assert {n: v for n, v in after[key].items()
                if n not in (*_SIZE, *_MODELS)} == before[key]  # fmt: skip
    # The CSV's last columns, after damaged.
    header = to_csv(index.query()).splitlines()[0].split(",")
    assert header[-8:] == ["damaged", *_SIZE, _LABEL_MODEL, _BOX_MODELS]
    caplog.clear()
    assert make_index().sync(data_dir) == synced(0)
    assert "adding the" not in caplog.text


def test_an_index_of_layout_8_gets_the_ai_labels_model_in_place(make_index, db_url, tmp_path,
                                                                 caplog):
    """Layout 8 to 9: the AI label's model version, apart from the outline's (the model
    server upgraded between the two of one reading), added in place and filled from the
    records; a record damaged since keeps its row's annotator."""
    data_dir = tmp_path / "data"
    store = AnnotationStore(data_dir)
    ai, final = _masks()
    readings = [("Ada", "2026-12-03.10", "2026-12-02.9"), ("Bob", "2026-12-03.10", None)]
    for annotator, outline, label in readings:
        classification = None if label is None else {
            "label": "malignant", "probabilities": {"normal": 0, "benign": 0.1, "malignant": 0.9},
            "model": {"name": "sonotrace_unet", "version": label}}
        record = build_record(
            image=IMAGE, annotator=annotator, final_mask=final, ai_mask=ai,
            model={"name": "sonotrace_unet", "version": outline}, classification=classification,
            saved_at=dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC),
        )  # fmt: skip
        assert store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record).indexed is None
    keys = [(SHA_A, 1), (SHA_A, 2)]

    def stamped(values, path):
        stat = path.stat()
        return ({k: v for k, v in values.items() if k not in (_LABEL_MODEL, _BOX_MODELS)}
                | {"record_size": stat.st_size, "record_mtime_ns": stat.st_mtime_ns})

    before = _index_as_left(db_url, store, _layout_before(8), 8, keys, stamped)
    assert _layout(_layout_before(8)(sa.MetaData())) == _LAYOUTS[8]
    bobs = store.record_path(SHA_A, 2)
    bobs.write_bytes(bobs.read_bytes()[:60])
    caplog.set_level("INFO", logger="annotation_client._database")
    index = make_index()
    assert index.sync(data_dir) == synced(1, skipped=[str(bobs)])
    assert "adding the classification_model_version column (layout 8 to 9)" in caplog.text
    assert "adding the box_model_versions column (layout 9 to 10)" in caplog.text
    assert "older layout" not in caplog.text and "changed on disk" not in caplog.text
    rows = {r["version"]: r for r in index.query()}
    assert (rows[1]["model_version"], rows[1][_LABEL_MODEL]) == ("2026-12-03.10", "2026-12-02.9")
    assert rows[1]["annotator"] == "Ada"
    assert (rows[2]["annotator"], rows[2]["damaged"] is not None) == ("Bob", True)
    with index.engine.connect() as conn:
        ids = dict(conn.execute(sa.select(SavedRow.version, SavedRow.id)).all())
    assert ids == {key[1]: row["id"] for key, row in before.items()}
    # The CSV: the outline's model where it was, the AI label's last.
    lines = to_csv(index.query(annotator="Ada")).splitlines()
    assert lines[0].endswith(",model_version,record_path," + ",".join(
        SavedRow.COLUMNS[SavedRow.COLUMNS.index("record_path") + 1:]))
    assert lines[1].endswith(",2026-12-02.9,")  # no box: no box model
    assert ",2026-12-03.10," in lines[1]


def test_a_failed_index_write_logs_none_of_the_records_values(make_index, db_url, tmp_path,
                                                                caplog):
    # The note, the upload's name (a scanner's export names the patient), the worklist
    # path and the annotator went to the log with the SQL's parameters.
    index = make_index()
    assert index.query() == []  # the table is made
    engine = sa.create_engine(engine_url(db_url))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # PostgreSQL quotes the whole row it refused ("DETAIL: Failing row contains").
            conn.exec_driver_sql("ALTER TABLE saved_annotations ADD COLUMN extra text NOT NULL")
        else:
            conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON saved_annotations "
                                 "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    engine.dispose()
    secrets = ("DOE^JANE", "Jane Doe", "Dr Secret", "lump near scar", "ward 7")
    record = _full_record(name="DOE^JANE 1970.png", worklist_path="ward 7/DOE^JANE.png",
                          annotator="Dr Secret")
    record["final"]["note"] = "Jane Doe: lump near scar"
    store = AnnotationStore(tmp_path / "data", index=index)
    record.pop("version", None), record.pop("files", None)
    saved = store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record)
    assert saved.indexed is False
    assert "could not index it: the annotation index could not be written: (" in caplog.text
    assert "[SQL: INSERT INTO saved_annotations" in caplog.text  # without its values
    with pytest.raises(IndexUnavailable) as caught:
        index.add(saved_record := store.load_record(SHA_A, 1), saved.folder / "v001.json")
    assert saved_record["final"]["note"] == "Jane Doe: lump near scar"
    for text in (caplog.text, caught.value.logged(), str(caught.value)):
        assert not [secret for secret in secrets if secret in text]
        assert "DETAIL" not in text
    assert index.engine.hide_parameters  # the engine's own messages too (worklist claims)


def test_a_newer_layout_is_left_alone_and_saves_reach_the_files(make_index, db_url, tmp_path):
    """An older client on a newer client's index must not rebuild it back."""
    _old_table(db_url, schema_version=SCHEMA_VERSION + 1)
    index = make_index()
    with pytest.raises(IndexUnavailable, match="made by a newer SonoTrace client") as caught:
        index.query()
    assert f"its layout is {SCHEMA_VERSION + 1}, this client's {SCHEMA_VERSION}" in (
        caught.value.detail
    )
    assert index.sync(tmp_path / "empty") == synced(0)
    store = AnnotationStore(tmp_path / "data", index=index)
    record = dict(_saved(SHA_A, 1))
    record.pop("version"), record.pop("files")
    saved = store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record)
    assert saved.indexed is False and (saved.folder / "v001.json").is_file()
    engine = sa.create_engine(engine_url(db_url))
    with engine.connect() as conn:  # the newer client's table, untouched
        assert conn.execute(sa.text("SELECT image_name FROM saved_annotations")).all() == [
            ("stale.png",)
        ]
    engine.dispose()


def test_clients_starting_together_rebuild_an_older_table_once(make_index, db_url, tmp_path,
                                                               caplog):  # fmt: skip
    """Gunicorn workers (or several machines) start at once beside an older table."""
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    _old_table(db_url, rows=50)
    caplog.set_level("WARNING", logger="annotation_client._database")
    indexes = [make_index() for _ in range(6)]
    results, errors = [], []
    gate = threading.Barrier(len(indexes))

    def start(index):
        gate.wait()
        try:
            results.append(index.sync(data_dir)["added"])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(index,)) for index in indexes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(results) == 3  # each version indexed once, by whichever start came first
    assert caplog.text.count("older layout") == 1
    assert _keys(indexes[0].query()) == [(SHA_B, 1), (SHA_A, 2), (SHA_A, 1)]
    assert _stored_layout(indexes[0]) == ({"id", *SavedRow.COLUMNS, *_STAMP}, [SCHEMA_VERSION])


# --- on every database: what PostgreSQL checks and SQLite does not -----------------


def test_a_saved_record_round_trips_through_the_index(make_index, tmp_path):
    index = make_index()
    data_dir = tmp_path / "data"
    saved = AnnotationStore(data_dir, index=index).save(
        SHA_A, svg="<svg/>", mask_png=b"png", ai_mask_png=b"ai", record=_full_record()
    )
    assert saved.indexed is True
    [row] = index.query()
    # dice_ai_vs_final 8 / 12 exactly: a double, not rounded to a single.
    assert row == _FULL_ROW | {
        "version": 1,
        "saved_at": "2024-05-06T07:08:09Z",
        "record_path": str(data_dir / SHA_A / "v001.json"),
    }
    assert all(type(row[k]) is bool for k in ("segmented", "edited", "empty"))
    # Stored as the naive UTC instant, to the microsecond, whatever the server's zone.
    with index.engine.connect() as conn:
        stored = conn.execute(sa.select(SavedRow.saved_at)).scalar_one()
    assert stored == dt.datetime(2024, 5, 6, 7, 8, 9, 250000) and stored.tzinfo is None
    csv_line = to_csv(index.query(annotator="Dr. Ada Ångström")).splitlines()[1]
    assert csv_line.startswith(f"{SHA_A},1,2024-05-06T07:08:09Z,Dr. Ada Ångström,benign (1).png,")
    assert index.query(annotator="dr. ada ångström") == []  # exact, on both databases


def test_an_index_dropped_is_rebuilt_from_the_files(make_index, tmp_path):
    data_dir = tmp_path / "data"
    index = make_index()
    store = AnnotationStore(data_dir, index=index)
    for when in ("2024-01-01T10:00:00", "2024-01-02T10:00:00"):
        record = dict(_saved(when=when))
        record.pop("version"), record.pop("files")
        assert store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record).indexed
    before = index.query()
    SavedRow.__table__.drop(index.engine)  # the database lost, the files kept
    rebuilt = make_index()  # the next start
    assert rebuilt.sync(data_dir) == synced(2)
    assert rebuilt.query() == before


def _two_saves(index, data_dir) -> list[dict]:
    """Two versions of one image saved through ``index``: its rows."""
    store = AnnotationStore(data_dir, index=index)
    for when in ("2024-01-01T10:00:00", "2024-01-02T10:00:00"):
        record = dict(_saved(when=when))
        record.pop("version"), record.pop("files")
        assert store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record).indexed
    return index.query()


def test_an_index_table_dropped_while_the_client_runs_is_made_again(make_index, tmp_path,
                                                                    db_url, caplog):
    # The client made its table once and took it for there ever after: dropped behind
    # its back (a DBA's clean-up, a restore), every listing and /health failed with
    # "could not be read" until a restart.
    data_dir = tmp_path / "data"
    index = make_index()
    before = _two_saves(index, data_dir)
    other = sa.create_engine(db_url)
    with other.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {SavedRow.__tablename__}"))
    other.dispose()
    with caplog.at_level("WARNING", logger="annotation_client._database"):
        index.check()  # /health: the table made again, at once
    assert f"its table {SavedRow.__tablename__} was dropped or changed while the client " \
        "runs" in caplog.text
    assert index.recheck_damaged(data_dir) == {"read": 0, "restored": 0}  # a listing
    assert index.query() == before


@pytest.fixture
def two_indexes(postgres_url):
    """Two indexes of one PostgreSQL database, as two clients' (only PostgreSQL: SQLite's
    file replaced is told by its inode)."""
    both = AnnotationIndex(postgres_url), AnnotationIndex(postgres_url)
    yield both
    for index in both:
        index.dispose()


def test_a_postgresql_table_made_again_behind_the_clients_back_is_filled_again(
        two_indexes, tmp_path, caplog):
    # Dropped and made again empty (a restore of an older dump, another tool), the table
    # answered every query, and the Saved page listed nothing of what was saved.
    data_dir = tmp_path / "data"
    index, other = two_indexes
    before = _two_saves(index, data_dir)
    SavedRow.__table__.drop(other.engine)
    other.check()  # made again, empty, as another client's start makes it
    assert other.query() == []
    with caplog.at_level("WARNING", logger="annotation_client._database"):
        index.recheck_damaged(data_dir)  # the next listing
    assert f"its table {SavedRow.__tablename__} was dropped and made again while the " \
        "client runs" in caplog.text
    assert index.query() == before == other.query()
    # Made again with an older layout (a column missing), the table is rebuilt from the
    # files at the next use, not left failing every query that names the column.
    with other.engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {SavedRow.__tablename__} DROP COLUMN note"))
    with pytest.raises(IndexUnavailable, match="could not be read"):
        index.query()
    index.recheck_damaged(data_dir)
    assert index.query() == before


@pytest.mark.usefixtures("an_app_exists")  # the Saved page module needs a Dash app
def test_the_calipers_of_a_saved_outline_reach_the_index_the_csv_and_the_page(
    make_index, tmp_path
):
    """The chain the Annotate page runs: measure (with non-square pixels), save, index."""
    from annotation_client.pages import saved as saved_page

    _, final = _masks()
    measurements = summarize_outline(final, (0.1, 0.2))
    largest = measurements["largest"]
    typed = IMAGE | {"pixel_spacing_mm": [0.1, 0.2], "pixel_spacing_source": "manual"}
    record = build_record(image=typed, annotator="Ada", final_mask=final,
                          measurements=measurements,
                          saved_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    index = make_index()
    store = AnnotationStore(tmp_path / "data", index=index)
    assert store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record).indexed
    [row] = index.query()
    calipers = ("max_diameter_px", "perpendicular_diameter_px", "max_diameter_mm",
                "perpendicular_diameter_mm")  # fmt: skip
    assert {name: row[name] for name in calipers} == {name: largest[name] for name in calipers}
    # 3 x 2 pixels of 0.2 x 0.1 mm: the long axis is the mm rectangle's diagonal.
    assert row["max_diameter_mm"] == pytest.approx(math.hypot(3 * 0.2, 2 * 0.1))
    # The calipers, then the version revised, the BI-RADS columns and note (none here),
    # then damaged (not), then the whole outline's area and the spacing it was measured at,
    # then no AI label's model (no AI label), no box model (no box).
    area = f"{measurements['area_px']},{measurements['area_mm2']},0.1,0.2,manual"
    assert measurements["area_mm2"] == pytest.approx(6 * 0.1 * 0.2)
    assert to_csv([row]).splitlines()[1].endswith(
        ",".join(str(largest[name]) for name in calipers) + ",,," + ",,,,,,," + ",," + area + ",,"
    )
    shown = saved_page.size(row)
    assert shown["long_axis_mm"] == round(largest["max_diameter_mm"], 1)
    assert shown["long_axis_px"] == round(largest["max_diameter_px"], 1)


def test_long_names_and_paths_are_kept_whole(make_index):
    # PostgreSQL enforces a VARCHAR's length, where SQLite stores anything: these
    # columns are TEXT, so a long name cannot fail a save's row or a whole sync.
    record = _full_record(name="n" * 251 + ".png", worklist_path="/".join(["folder"] * 600),
                          annotator="A" * 200, model_version="v" * 300)  # fmt: skip
    saved = dict(record, version=1, files={})
    index = make_index()
    assert index.add(saved, "/data/" + "d" * 3000 + "/v001.json") is True
    [row] = index.query()
    assert len(row["image_name"]) == 255
    assert row["worklist_path"] == record["image"]["worklist_path"]
    assert len(row["worklist_path"]) == 4199
    assert row["annotator"] == "A" * 200
    assert row["model_version"] == "v" * 300
    assert len(row["record_path"]) == 3016
    assert index.query(annotator="A" * 200) == [row]


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (["agreement", "dice_ai_vs_final"], float("nan"), "not a finite number"),
        (["ai", "probabilities", "malignant"], float("inf"), "not a finite number"),
        (["ai", "probabilities", "malignant"], "0.3", "not a finite number"),
        (["image", "worklist_path"], {"folder": "x"}, "image.worklist_path .* is not text"),
        (["model", "segmentation", "version"], 3, "model.segmentation.version 3 is not text"),
    ],
)
def test_values_the_databases_would_store_differently_or_not_at_all_are_refused(
    make_index, tmp_path, path, value, match
):
    # NaN came back NULL from SQLite and NaN from PostgreSQL (and /api/saved then sent
    # JSON that does not parse); a dict failed the whole batch on both.
    record = dict(_full_record(), version=1, files={"record": "v001.json"})
    assert row_values(record, "p")  # the record as it is is fine
    _setting(path, value)(record)
    with pytest.raises(ValueError, match=match):
        row_values(record, "p")
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    bad = data_dir / SHA_B / "v002.json"
    bad.write_text(json.dumps(dict(record, image=record["image"] | {"sha256": SHA_B},
                                   version=2), allow_nan=True), encoding="utf-8")  # fmt: skip
    assert make_index().sync(data_dir) == synced(3, skipped=[str(bad)])


def test_sync_skips_text_the_database_cannot_hold_and_keeps_the_rest(make_index, tmp_path):
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    long_name = data_dir / SHA_B / "v002.json"
    long_name.write_text(json.dumps(_saved(SHA_B, 2, annotator="B" * 201)), encoding="utf-8")
    nul = data_dir / SHA_B / "v003.json"
    nul.write_text(json.dumps(dict(_saved(SHA_B, 3), annotator="Ada\x00")), encoding="utf-8")
    index = make_index()
    assert index.sync(data_dir) == synced(3, skipped=[str(long_name), str(nul)])
    with pytest.raises(ValueError, match="annotator is longer than 200"):
        index.add(_saved(SHA_B, 2, annotator="B" * 201), long_name)
    # Listed as damaged, with why, and none of what they say.
    assert _listed(index) == [(SHA_A, 1, False), (SHA_A, 2, False), (SHA_B, 1, False),
                              (SHA_B, 2, True), (SHA_B, 3, True)]  # fmt: skip
    damaged = {r["version"]: r for r in index.query() if r["damaged"]}
    assert "annotator is longer than 200" in damaged[2]["damaged"]
    assert "annotator holds a NUL character" in damaged[3]["damaged"]
    assert {r["annotator"] for r in damaged.values()} == {""}


# --- PostgreSQL only: its URL, and a server that is down ------------------------------


def test_a_plain_postgresql_url_reaches_the_server_with_psycopg_3(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    assert plain.startswith("postgresql://postgres@/")
    index = AnnotationIndex(plain)
    try:
        assert index.url == plain
        assert index.engine.dialect.driver == "psycopg"
        assert index.add(_saved(), "p") is True
        assert index.add(_saved(), "p") is False
        assert _keys(AnnotationIndex(postgres_url).query()) == [(SHA_A, 1)]
    finally:
        index.dispose()


def test_a_postgresql_server_that_is_not_there_is_unavailable(tmp_path, postgres_url):
    index = AnnotationIndex(_server_gone_url(tmp_path))
    started = time.monotonic()
    _assert_unavailable(index)
    assert time.monotonic() - started < 10  # refused at once, not waited on
    # A save goes on without its row, and its files are there for the next start.
    data_dir = tmp_path / "data"
    record = dict(_saved())
    record.pop("version"), record.pop("files")
    saved = AnnotationStore(data_dir, index=index).save(
        SHA_A, svg="<svg/>", mask_png=b"png", record=record
    )
    assert saved.indexed is False
    for name in ("v001.json", "v001.svg", "v001_mask.png"):
        assert (saved.folder / name).is_file()
    with pytest.raises(IndexUnavailable):
        index.sync(data_dir)
    working = AnnotationIndex(postgres_url)
    assert working.sync(data_dir) == synced(1)
    working.dispose()


def test_a_table_locked_by_another_session_is_unavailable_not_a_hang(tmp_path, postgres_url):
    # A maintenance job or a stuck transaction holding the table: every open and save
    # waited for it, silently; the save wrote nothing until it was released.
    index = AnnotationIndex(postgres_url)
    assert index.add(_saved(), "p") is True
    holder = sa.create_engine(postgres_url).connect()
    try:
        holder.begin()
        holder.execute(sa.text("LOCK TABLE saved_annotations IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        with pytest.raises(IndexUnavailable):
            index.max_version(SHA_A)
        assert time.monotonic() - started < 10  # the lock_timeout, 5 s
        # A save writes its files all the same, without its row.
        record = dict(_saved())
        record.pop("version"), record.pop("files")
        saved = AnnotationStore(tmp_path / "data", index=index).save(
            SHA_B, svg="<svg/>", mask_png=b"png", record=dict(record, image=dict(
                record["image"], sha256=SHA_B)))
        assert saved.indexed is False and (saved.folder / "v001.json").is_file()
    finally:
        holder.rollback()
        holder.close()
        index.dispose()


def test_a_postgresql_server_that_stops_and_comes_back(postgres, postgres_url, tmp_path):
    data_dir = tmp_path / "data"
    index = AnnotationIndex(postgres_url)
    store = AnnotationStore(data_dir, index=index)

    def save(when):
        record = dict(_saved(when=when))
        record.pop("version"), record.pop("files")
        return store.save(SHA_A, svg="<svg/>", mask_png=b"png", record=record)

    assert save("2024-01-01T10:00:00").indexed is True  # the pool now holds a connection
    postgres.stop()
    try:
        assert save("2024-01-02T10:00:00").indexed is False
        with pytest.raises(IndexUnavailable, match="could not be read"):
            index.query()
    finally:
        postgres.start()
    # The pool's dead connection is replaced; the save made meanwhile joins at a sync.
    assert _keys(index.query()) == [(SHA_A, 1)]
    assert index.sync(data_dir) == synced(1)
    assert _keys(index.query()) == [(SHA_A, 2), (SHA_A, 1)]
    # A restart while the pool is idle: only the pre-ping notices its connection died.
    postgres.stop()
    postgres.start()
    assert _keys(index.query()) == [(SHA_A, 2), (SHA_A, 1)]
    index.dispose()


# --- a version whose files were removed by hand -------------------------------------


def _record_of(sha, annotator, label, note, when):
    record = _saved(sha, annotator=annotator, final_label=label, note=note, when=when)
    record.pop("version"), record.pop("files")
    return record


def _remove_version(data_dir, sha, version):
    for path in (data_dir / sha).glob(f"v{version:03d}*"):
        path.unlink()


def test_a_removed_versions_number_is_not_given_to_the_next_save(make_index, tmp_path):
    data_dir, index = tmp_path / "data", make_index()
    store = AnnotationStore(data_dir, index=index)
    store.save(SHA_A, svg="<svg/>", mask_png=b"a", record=_record_of(
        SHA_A, "Dr A", "benign", "", "2024-01-01T10:00:00"))
    store.save(SHA_A, svg="<svg/>", mask_png=b"b", record=_record_of(
        SHA_A, "Dr B", "malignant", "B wrong image", "2024-01-02T10:00:00"))
    _remove_version(data_dir, SHA_A, 2)
    assert store.next_version(SHA_A) == 3
    saved = store.save(SHA_A, svg="<svg/>", mask_png=b"c", record=_record_of(
        SHA_A, "Dr C", "normal", "", "2024-01-03T10:00:00"))
    assert (saved.version, saved.indexed) == (3, True)
    rows = {r["version"]: r for r in index.query()}
    assert (rows[3]["annotator"], rows[3]["final_label"]) == ("Dr C", "normal")
    assert rows[3]["record_path"] == str(data_dir / SHA_A / "v003.json")


def test_a_row_that_no_longer_says_what_its_record_says_is_replaced(
    make_index, tmp_path, caplog
):
    # Saved without the index (it was down, or the number was reused before this fix):
    # v002 is now Dr C's, while the index still holds Dr B's v2.
    data_dir, index = tmp_path / "data", make_index()
    store = AnnotationStore(data_dir, index=index)
    for who, label, note, day in (("Dr A", "benign", "", 1),
                                  ("Dr B", "malignant", "B wrong image", 2)):  # fmt: skip
        store.save(SHA_A, svg="<svg/>", mask_png=b"m",
                   record=_record_of(SHA_A, who, label, note, f"2024-01-0{day}T10:00:00"))
    _remove_version(data_dir, SHA_A, 2)
    (data_dir / SHA_A / ".last_version").unlink()  # as saved before the mark was kept
    unindexed = AnnotationStore(data_dir)
    resaved = unindexed.save(SHA_A, svg="<svg/>", mask_png=b"c",
                             record=_record_of(SHA_A, "Dr C", "normal", "", "2024-01-03T10:00:00"))
    assert resaved.version == 2
    assert index.annotator_of(SHA_A, 2) == "Dr B"
    # The next start's sync notices the record file changed, and replaces the row.
    with caplog.at_level("WARNING", logger="annotation_client"):
        assert index.sync(data_dir) == synced(1)
    said = [r.getMessage() for r in caplog.records if "changed on disk" in r.getMessage()]
    # The log names the version, not the text a hand-edited record holds.
    assert said == [f"annotation index: {SHA_A[:12]} v2 changed on disk; its row is replaced"]
    row = next(r for r in index.query() if r["version"] == 2)
    assert (row["annotator"], row["final_label"], row["note"]) == ("Dr C", "normal", None)
    assert index.query(reader="Dr B") == []
    assert [r["version"] for r in index.query(reader="Dr C")] == [2]
    assert index.sync(data_dir) == synced(0)
    # add() of a differing record replaces too (a save whose number was reused).
    path = data_dir / SHA_A / "v002.json"
    other = _saved(SHA_A, 2, annotator="Dr D", final_label="benign", when="2024-01-04T10:00:00")
    assert index.add(other, path) is True
    assert index.annotator_of(SHA_A, 2) == "Dr D"
    assert index.add(other, path) is False  # the same record again: nothing to do
    assert len(index.query()) == 2


# --- rows whose record files are gone -----------------------------------------------


def test_sync_removes_the_rows_whose_record_files_are_gone(make_index, tmp_path, caplog):
    import shutil

    data_dir = tmp_path / "data"
    _store_some(data_dir)  # SHA_A v1, v2; SHA_B v1
    index = make_index()
    assert index.sync(data_dir)["added"] == 3
    shutil.rmtree(data_dir / SHA_A)  # the image's folder, removed by hand
    caplog.set_level("WARNING", logger="annotation_client._database")
    assert index.sync(data_dir) == synced(0, removed=2)
    assert _keys(index.query()) == [(SHA_B, 1)]
    assert "removed 2 row(s) whose record file is gone" in caplog.text
    # A row filed under another data folder (a shared database) is left alone.
    assert index.add(_saved(SHA_A, 1), str(tmp_path / "elsewhere" / SHA_A / "v001.json"))
    assert index.sync(data_dir) == synced(0)
    assert sorted(_keys(index.query())) == [(SHA_A, 1), (SHA_B, 1)]


@pytest.mark.parametrize("folder", ["missing", "empty", "no saved version"])
def test_sync_of_a_data_folder_gone_or_empty_keeps_the_rows(make_index, tmp_path, caplog,
                                                            folder):
    import shutil

    data_dir = tmp_path / "data"
    _store_some(data_dir)
    index = make_index()
    assert index.sync(data_dir)["added"] == 3
    # An unmounted volume, or a mount point with nothing in it.
    shutil.rmtree(data_dir)
    if folder != "missing":
        data_dir.mkdir()
    if folder == "no saved version":
        (data_dir / SHA_A).mkdir()
    caplog.set_level("WARNING", logger="annotation_client._database")
    assert index.sync(data_dir) == synced(0, unchecked=3)
    assert len(index.query()) == 3
    expected = "missing" if folder == "missing" else "empty"
    assert (f"the data folder {data_dir} is {expected}, yet the index holds 3 saved "
            "version(s): none is removed") in caplog.text


def test_a_record_whose_hash_ends_in_a_newline_is_refused_as_no_hash():
    # re's "$" also matches before a final newline; only the column's length refused it.
    record = dict(_full_record(), version=1)
    for bad in (SHA_A + "\n", SHA_A[:63] + "\n"):
        record["image"] = dict(record["image"], sha256=bad)
        with pytest.raises(ValueError, match="image.sha256 is not a SHA-256"):
            row_values(record, "/d/v001.json")


def test_a_database_file_that_cannot_be_made_is_not_logged_as_started(tmp_path, caplog):
    # Audit 804 F6: "starting a new database file" was logged at each failed attempt,
    # before SQLite said the file could not be made.
    (tmp_path / "blocker").write_text("a file where the database folder should be")
    index = AnnotationIndex(_url(tmp_path / "blocker" / "index.sqlite3"))
    with caplog.at_level("INFO", logger="annotation_client._database"):
        for _ in range(2):
            with pytest.raises(IndexUnavailable, match="could not be read"):
                index.query()
    assert "starting a new database file" not in caplog.text
    with pytest.raises(IndexUnavailable, match="could not be opened"):
        index.check()
    index.dispose()


def test_check_opens_a_new_index_and_reads_it(tmp_path, caplog):
    path = tmp_path / "index.sqlite3"
    index = AnnotationIndex(_url(path))
    with caplog.at_level("INFO", logger="annotation_client._database"):
        index.check()
        index.check()
    assert path.is_file()
    assert [r.getMessage() for r in caplog.records] == [
        f"annotation index: starting a new database file {path}"
    ]
    index.dispose()


def test_the_databases_summary_is_the_summary_of_every_matching_row(make_index, db_url):
    # The summary of a listing cut by its limit is counted by the database (audit 901
    # F4), on SQLite and PostgreSQL alike: it must agree with summarize over every row.
    index = make_index()
    full = _full_record()  # an AI outline (Dice 8/12, edited) and AI label benign
    index.add(dict(full, version=1, files={"svg": "v001.svg", "mask": "v001_mask.png",
                                           "ai_mask": None, "record": "v001.json"}),
              "a/v001.json")
    index.add(_saved(SHA_B, 1, annotator="Bo", final_label="benign"), "b/v001.json")
    index.add(_saved(SHA_B, 2, annotator="Cy", final_label="normal"), "b/v002.json")
    for filters in ({}, {"latest_only": True}, {"annotator": "Bo"},
                    {"final_label": "malignant"}):
        expected = summarize(index.query(**filters))
        counted = index.summary(**filters)
        assert {k: counted[k] for k in expected} == pytest.approx(expected), (db_url, filters)
