"""Agreement between readers: hand-computed Dice, label agreement and kappas."""

from __future__ import annotations

import datetime as dt
import doctest

import numpy as np
import pytest
from dash import html

from annotation_client import _agreement
from annotation_client._agreement import (
    cohen_kappa,
    dice,
    fleiss_kappa,
    latest_reads,
    reader_agreement,
)


def _mask(*cells) -> np.ndarray:
    """A (2, 4) bool mask, True at the (row, col) ``cells``."""
    mask = np.zeros((2, 4), bool)
    for r, c in cells:
        mask[r, c] = True
    return mask


EMPTY = _mask()
LEFT = _mask((0, 0), (0, 1))
MIDDLE = _mask((0, 1), (0, 2))


def _row(image, annotator, version, label=None, mask=EMPTY):
    """An index row of a 4 x 2 image; ``mask`` is what loading its mask gives (or raises)."""
    return {"image_sha256": image, "annotator": annotator, "version": version,
            "final_label": label, "width": 4, "height": 2, "mask": mask}


def _load(row):
    if isinstance(row["mask"], Exception):
        raise row["mask"]
    return row["mask"]


def test_the_docstring_examples_hold():
    assert doctest.testmod(_agreement).failed == 0


def test_each_readers_read_is_their_highest_version():
    rows = [_row("x", "Ada", 3), _row("x", "Ada", 1), _row("x", "Bo", 2), _row("y", "Ada", 4)]
    reads = latest_reads(rows)
    assert {image: {name: row["version"] for name, row in by.items()}
            for image, by in reads.items()} == {"x": {"Ada": 3, "Bo": 2}, "y": {"Ada": 4}}


def test_dice_of_masks_by_hand():
    assert dice(LEFT, MIDDLE) == 0.5  # one pixel shared of 2 + 2
    assert dice(LEFT, LEFT) == 1.0
    assert dice(LEFT, EMPTY) == 0.0
    assert dice(EMPTY, EMPTY) == 1.0  # both found no lesion
    with pytest.raises(ValueError, match="not of one image"):
        dice(LEFT, np.zeros((3, 4), bool))


def test_fleiss_kappa_by_hand():
    # Per image P_i = sum k(k-1) / n(n-1): 2/6, 1, 1, 0, mean 7/12; the labels' shares
    # 5/9, 3/9, 1/9 give chance 35/81; kappa = (7/12 - 35/81) / (1 - 35/81) = 49/184.
    ratings = [["b", "b", "m"], ["b", "b"], ["m", "m"], ["n", "b"], ["m"]]
    assert fleiss_kappa(ratings) == pytest.approx(49 / 184)
    assert fleiss_kappa([["b", "b"], ["b", "b"]]) is None  # chance agreement is 1
    assert fleiss_kappa([["b"], []]) is None  # no image with two labels


def test_cohen_kappa_by_hand():
    # Observed 3/5; each reader b3 m2: chance (3*3 + 2*2)/25 = 13/25; (15 - 13) / (25 - 13).
    pairs = [("b", "b"), ("m", "m"), ("b", "m"), ("b", "b"), ("m", "b")]
    assert cohen_kappa(pairs) == pytest.approx(1 / 6)
    assert cohen_kappa([("b", "m")]) == 0.0
    assert cohen_kappa([("b", "b")]) is None and cohen_kappa([]) is None


def test_reader_agreement_of_three_readers_by_hand():
    rows = [
        # Image x: Ada's v1 is superseded by her v3; Bo and Cy once each.
        _row("x", "Ada", 1, "malignant", MIDDLE),
        _row("x", "Ada", 3, "benign", LEFT),
        _row("x", "Bo", 2, "malignant", MIDDLE),
        _row("x", "Cy", 4, "benign", LEFT),
        # Image y: both found nothing; Bo gave no label.
        _row("y", "Ada", 1, "normal"),
        _row("y", "Bo", 2, None),
        # Image z: one reader only, so it does not count.
        _row("z", "Cy", 1, "benign", LEFT),
    ]
    result = reader_agreement(rows, _load)
    assert result["images"] == 2 and result["readers"] == ["Ada", "Bo", "Cy"]
    # x: Ada-Bo 0.5, Ada-Cy 1, Bo-Cy 0.5; y: Ada-Bo 1 (both empty).
    assert result["pairs"] == 4 and result["dice_pairs"] == 4 and result["both_empty"] == 1
    assert result["mean_dice"] == 0.75 and result["median_dice"] == 0.75
    # Labels on x only: benign, malignant, benign; 1 of 3 pairs match.
    assert result["label_pairs"] == 3 and result["label_agreement"] == pytest.approx(1 / 3)
    # P_x = 2/6; shares b 2/3, m 1/3, chance 5/9: (1/3 - 5/9) / (4/9) = -0.5.
    assert result["fleiss_kappa"] == pytest.approx(-0.5)
    assert result["by_pair"] == [
        {"readers": ["Ada", "Bo"], "images": 2, "mean_dice": 0.75, "label_pairs": 1,
         "label_agreement": 0.0, "cohen_kappa": 0.0},
        {"readers": ["Ada", "Cy"], "images": 1, "mean_dice": 1.0, "label_pairs": 1,
         "label_agreement": 1.0, "cohen_kappa": None},
        {"readers": ["Bo", "Cy"], "images": 1, "mean_dice": 0.5, "label_pairs": 1,
         "label_agreement": 0.0, "cohen_kappa": 0.0},
    ]
    assert result["unreadable"] == []


def test_mean_and_median_dice_and_normal_against_benign_by_hand():
    rows = [
        _row("p", "Ada", 1, "normal", LEFT), _row("p", "Bo", 2, "benign", MIDDLE),
        _row("q", "Ada", 1, "normal", LEFT), _row("q", "Bo", 2, "normal", MIDDLE),
        _row("r", "Ada", 1, "benign", LEFT), _row("r", "Bo", 2, "benign", LEFT),
    ]
    result = reader_agreement(rows, _load)
    assert result["mean_dice"] == pytest.approx(2 / 3) and result["median_dice"] == 0.5
    assert result["both_empty"] == 0
    # Normal is a label like the others: 2 of 3 pairs agree.
    assert result["label_agreement"] == pytest.approx(2 / 3)
    # P_i = 0, 1, 1; shares normal 3/6, benign 3/6, chance 1/2: (2/3 - 1/2) / (1/2) = 1/3.
    assert result["fleiss_kappa"] == pytest.approx(1 / 3)
    # Ada n2 b1, Bo n1 b2: chance (2*1 + 1*2)/9 = 4/9; (6/9 - 4/9) / (5/9) = 2/5.
    assert result["by_pair"][0]["cohen_kappa"] == pytest.approx(2 / 5)


def test_a_read_whose_mask_cannot_be_read_is_left_out_and_listed_once():
    rows = [
        _row("w", "Ada", 1, "benign", LEFT),
        _row("w", "Bo", 2, "benign", OSError("v002_mask.png cannot be read")),
        # Ada's mask is not the image's size: her read is the one listed, and once,
        # although it is in two pairs.
        _row("v", "Ada", 3, "benign", np.zeros((3, 3), bool)),
        _row("v", "Bo", 4, "benign", LEFT),
        _row("v", "Cy", 5, "benign", MIDDLE),
    ]
    result = reader_agreement(rows, _load)
    assert result["images"] == 2 and result["pairs"] == 4
    # Only v's Bo-Cy pair has both masks.
    assert result["dice_pairs"] == 1 and result["mean_dice"] == 0.5
    # The labels still count: they are in the index, not in the mask files.
    assert result["label_pairs"] == 4 and result["label_agreement"] == 1.0
    assert [(u["image_sha256"], u["annotator"], u["version"], u["reason"])
            for u in result["unreadable"]] == [
        ("v", "Ada", 3, "the mask is 3x3 pixels, the image 4x2"),
        ("w", "Bo", 2, "v002_mask.png cannot be read")]


def test_a_read_that_revised_another_readers_version_is_left_out_and_listed():
    def revised(row, annotator, version):
        return row | {"revises_other_reader": True, "based_on_annotator": annotator,
                      "based_on_version": version}

    rows = [
        # p: Bo loaded Ada's v1 and saved it unchanged; Cy read it on her own.
        _row("p", "Ada", 1, "benign", LEFT),
        revised(_row("p", "Bo", 2, "benign", LEFT), "Ada", 1),
        _row("p", "Cy", 3, "malignant", MIDDLE),
        # q: Bo's latest revised Ada's; his earlier v2, his own, is his read.
        _row("q", "Ada", 1, "benign", LEFT),
        _row("q", "Bo", 2, "malignant", MIDDLE),
        revised(_row("q", "Bo", 3, "benign", LEFT), "Ada", 1),
        # r: Ada revised her own read (False): still independent of Bo.
        _row("r", "Ada", 2, "benign", LEFT) | {"revises_other_reader": False,
                                               "based_on_annotator": "Ada",
                                               "based_on_version": 1},
        _row("r", "Bo", 3, "benign", LEFT),
    ]
    loaded = []

    def counting(row):
        loaded.append((row["image_sha256"], row["annotator"]))
        return _load(row)

    result = reader_agreement(rows, counting)
    # p: Ada-Cy 0.5, labels differ; q: Ada-Bo (v2) 0.5, labels differ; r: Ada-Bo 1, labels
    # match. Bo's copies count nowhere.
    assert result["images"] == 3 and result["pairs"] == 3
    assert result["mean_dice"] == pytest.approx(2 / 3)
    assert result["label_agreement"] == pytest.approx(1 / 3)
    assert [(p["readers"], p["images"]) for p in result["by_pair"]] == [
        (["Ada", "Bo"], 2), (["Ada", "Cy"], 1)]
    assert result["dependent"] == [
        {"image_sha256": "p", "image": None, "annotator": "Bo", "version": 2,
         "based_on": {"annotator": "Ada", "version": 1}},
        {"image_sha256": "q", "image": None, "annotator": "Bo", "version": 3,
         "based_on": {"annotator": "Ada", "version": 1}},
    ]
    assert ("p", "Bo") not in loaded and ("q", "Bo") in loaded
    # Bo's copy of q is not listed once he saves his own read after it.
    later = rows + [_row("q", "Bo", 4, "benign", LEFT)]
    assert [d["image_sha256"] for d in reader_agreement(later, _load)["dependent"]] == ["p"]


def test_pairs_compared_before_are_taken_from_the_cache_without_loading():
    rows = [_row("p", "Ada", 1, "benign", LEFT), _row("p", "Bo", 2, "benign", MIDDLE),
            _row("p", "Cy", 3, "benign", LEFT)]
    cache = {}
    first = reader_agreement(rows, _load, cache)
    ada, bo, cy = (1, "Ada", None), (2, "Bo", None), (3, "Cy", None)
    assert cache == {("p", ada, bo): (0.5, False), ("p", ada, cy): (1.0, False),
                     ("p", bo, cy): (0.5, False)}
    loaded = []

    def counting(row):
        loaded.append(row["annotator"])
        return _load(row)

    assert reader_agreement(rows, counting, cache) == first
    assert loaded == []
    # Dr Cy saves again: only the pairs with the new version need masks, Ada's and Bo's too.
    again = reader_agreement(rows + [_row("p", "Cy", 4, "benign", MIDDLE)], counting, cache)
    assert sorted(loaded) == ["Ada", "Bo", "Cy"]
    assert again["mean_dice"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_no_image_read_twice_gives_nothing_to_compare():
    result = reader_agreement([_row("z", "Cy", 1, "benign", LEFT)], _load)
    assert result == {
        "images": 0, "readers": [], "pairs": 0, "dice_pairs": 0, "both_empty": 0,
        "mean_dice": None, "median_dice": None, "label_pairs": 0, "label_agreement": None,
        "fleiss_kappa": None, "by_pair": [], "unreadable": [], "dependent": [],
        "left_out": [],
    }


# --------------------------------------------------------------------------- from the index


@pytest.fixture
def read_twice(data_dir):
    """save_three, then Dr Bo reads image A too: Dr Ada's latest of A is v2 (the AI's
    row-1 outline, malignant), Dr Bo's v3 (columns 1-3 of row 1, benign)."""
    from _saved_data import AI_A, EDITED_A, SHA_A, UTC, save_three, save_version

    paths = save_three(data_dir)
    paths["a3"] = save_version(data_dir, SHA_A, annotator="Dr Bo", ai=AI_A, final=EDITED_A,
                               label="benign", saved_at=dt.datetime(2024, 5, 3, tzinfo=UTC))
    return paths


def _client(data_dir, **settings):
    from annotation_client import create_app

    app = create_app({"DATA_DIR": data_dir, "MODEL_SERVER_URL": "http://127.0.0.1:9"} | settings)
    return app.server.test_client()


# The reads of read_twice: two pixels shared of 3 + 3, Dice 2/3; malignant against benign.
EXPECTED = {
    "images": 1, "readers": ["Dr Ada", "Dr Bo"], "pairs": 1, "dice_pairs": 1, "both_empty": 0,
    "mean_dice": pytest.approx(2 / 3), "median_dice": pytest.approx(2 / 3),
    "label_pairs": 1, "label_agreement": 0.0, "fleiss_kappa": -1.0,
    "by_pair": [{"readers": ["Dr Ada", "Dr Bo"], "images": 1,
                 "mean_dice": pytest.approx(2 / 3), "label_pairs": 1,
                 "label_agreement": 0.0, "cohen_kappa": 0.0}],
    "unreadable": [], "dependent": [], "left_out": [], "truncated": False,
}


@pytest.mark.usefixtures("an_app_exists")
def test_the_api_gives_the_agreement_of_the_saved_reads(data_dir, read_twice):
    response = _client(data_dir).get("/api/agreement")
    assert response.status_code == 200
    assert response.get_json() == EXPECTED


@pytest.mark.usefixtures("an_app_exists")
def test_a_reader_who_only_revised_anothers_read_is_listed_not_dropped(data_dir):
    """Dr Hunt saves v1; Dr Second loads it to revise and saves v2, then v3. Nothing
    is compared, but the API and the Saved page name Dr Second's v3 as left out."""
    from _dash_helpers import text_of
    from _saved_data import SHA_A, UTC, save_version

    from annotation_client.pages import saved

    def at(day):
        return dt.datetime(2024, 5, day, tzinfo=UTC)

    save_version(data_dir, SHA_A, annotator="Dr Hunt", label="benign", saved_at=at(1))
    save_version(data_dir, SHA_A, annotator="Dr Second", label="benign", saved_at=at(2),
                 based_on={"version": 1, "annotator": "Dr Hunt", "readers": ["Dr Hunt"]})
    save_version(data_dir, SHA_A, annotator="Dr Second", label="malignant", saved_at=at(3),
                 based_on={"version": 2, "annotator": "Dr Second",
                           "readers": ["Dr Hunt", "Dr Second"]})
    client = _client(data_dir)
    body = client.get("/api/agreement").get_json()
    assert body["images"] == 0 and body["pairs"] == 0
    assert body["dependent"] == [
        {"image_sha256": SHA_A, "image": "left.png", "annotator": "Dr Second", "version": 3,
         "based_on": {"annotator": "Dr Second", "version": 2}},
    ]
    with client.application.test_request_context("/_dash-update-component"):
        shown = text_of(saved.show_agreement(1))
    assert "nothing to compare" in shown and "Dr Second" in shown
    # Named as the radiologist knows the image, the hash only in brackets.
    assert f"(first: left.png ({SHA_A[:12]}) v3 by Dr Second, revising v2 by " in shown


@pytest.mark.usefixtures("an_app_exists")
def test_a_damaged_mask_is_listed_and_the_api_still_answers(data_dir, read_twice):
    from _saved_data import SHA_A

    (data_dir / SHA_A / "v003_mask.png").write_bytes(b"not a png")
    (data_dir / SHA_A / "v002_mask.png").unlink()
    response = _client(data_dir).get("/api/agreement")
    body = response.get_json()
    assert body["pairs"] == 1 and body["mean_dice"] is None
    assert body["label_agreement"] == 0.0  # the labels come from the index
    assert body["unreadable"] == [
        {"image_sha256": SHA_A, "annotator": "Dr Ada", "version": 2,
         "reason": "v002_mask.png cannot be read (No such file or directory)"},
        {"image_sha256": SHA_A, "annotator": "Dr Bo", "version": 3,
         "reason": "data is not a PNG image (bad signature)"},
    ]
    assert str(data_dir) not in response.get_data(as_text=True)  # the log's, not the API's
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.usefixtures("an_app_exists")
def test_an_unreadable_index_is_a_503_and_an_alert(tmp_path, data_dir, caplog):
    from _dash_helpers import text_of

    from annotation_client import create_app
    from annotation_client.pages import saved

    (tmp_path / "blocker").write_text("a regular file, not a folder")
    app = create_app({"DATA_DIR": data_dir,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/blocker/index.sqlite3"})
    response = app.server.test_client().get("/api/agreement")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_unavailable"
    assert str(tmp_path) not in response.get_data(as_text=True)
    with app.server.test_request_context("/_dash-update-component"):
        alert = saved.show_agreement(1)
    assert text_of(alert).startswith("No reader agreement. the annotation index could not")
    assert str(tmp_path) not in text_of(alert)
    assert any("reader agreement" in r.getMessage() and str(tmp_path) in r.getMessage()
               for r in caplog.records)


@pytest.mark.usefixtures("an_app_exists")
def test_the_comparison_is_capped_by_images_and_says_so(data_dir, read_twice):
    from _saved_data import SHA_B, UTC, save_version

    from annotation_client import _agreement
    from annotation_client._database import AnnotationIndex, default_url
    from annotation_client._storage import AnnotationStore

    index = AnnotationIndex(default_url(data_dir))
    index.sync(data_dir)
    store = AnnotationStore(data_dir)
    # One image read twice: at the cap, nothing is left out.
    assert _agreement.index_agreement(index, store, images=1)["truncated"] is False
    save_version(data_dir, SHA_B, annotator="Dr Ada", name="right.png",
                 saved_at=dt.datetime(2024, 5, 4, tzinfo=UTC), index=index)
    capped = _agreement.index_agreement(index, store, images=1)
    assert capped["truncated"] is True and capped["images"] == 1
    assert {u["readers"][0] for u in capped["by_pair"]} == {"Dr Ada"}
    assert _agreement.index_agreement(index, store, images=2)["images"] == 2
    index.dispose()


@pytest.mark.usefixtures("an_app_exists")
def test_under_blinded_reading_only_a_reviewer_gets_the_agreement(data_dir, read_twice):
    blinded = {"ANNOTATOR_HEADER": "X-Forwarded-User", "BLINDED_READING": True,
               "REVIEWERS": "Dr Chair"}
    client = _client(data_dir, **blinded)
    reader = client.get("/api/agreement", headers={"X-Forwarded-User": "Dr Ada"})
    assert reader.status_code == 403 and reader.get_json()["error"]["code"] == "forbidden"
    nobody = client.get("/api/agreement")
    assert nobody.status_code == 401 and nobody.get_json()["error"]["code"] == "not_signed_in"
    chair = client.get("/api/agreement", headers={"X-Forwarded-User": "Dr Chair"})
    assert chair.status_code == 200 and chair.get_json() == EXPECTED


# --------------------------------------------------------------------------- Saved page

BLINDED = {"ANNOTATOR_HEADER": "X-Forwarded-User", "BLINDED_READING": True,
           "REVIEWERS": "Dr Chair"}


def _page(data_dir, headers=None, **settings):
    """(button classes, what a click shows) on the Saved page for a request with ``headers``."""
    from annotation_client import create_app
    from annotation_client.pages import saved

    app = create_app({"DATA_DIR": data_dir} | settings)
    with app.server.test_request_context("/_dash-update-component", headers=headers or {}):
        return saved.show_agreement_button(True), saved.show_agreement(1)


def _rows_of(shown) -> list[list[str]]:
    from _dash_helpers import find_component, text_of

    table = find_component(html.Div(shown), "agreement-table")
    return [[text_of(cell.children) for cell in row.children]
            for row in table.children[1].children]


@pytest.mark.usefixtures("an_app_exists")
def test_the_saved_page_shows_the_agreement_to_whoever_sees_everything(data_dir, read_twice):
    from _dash_helpers import find_component, text_of

    from annotation_client.pages import saved

    classes, shown = _page(data_dir)
    assert classes == saved.AGREEMENT_OFFERED and "d-none" not in classes
    assert text_of(find_component(html.Div(shown), "agreement-summary")) == (
        "1 image(s) read by two or more of 2 reader(s), 1 pair(s) of reads. "
        "Outlines: mean Dice 0.667 (median 0.667) over 1 pair(s), 0 of them both empty. "
        "Final labels: the same in 0% of the 1 pair(s) that both gave one; "
        "Fleiss' kappa -1.00."
    )
    assert _rows_of(shown) == [["Dr Ada · Dr Bo", "1", "0.667", "1", "0%", "0.00"]]
    classes, shown = _page(data_dir, {"X-Forwarded-User": "Dr Chair"}, **BLINDED)
    assert classes == saved.AGREEMENT_OFFERED
    assert _rows_of(shown) == [["Dr Ada · Dr Bo", "1", "0.667", "1", "0%", "0.00"]]


@pytest.mark.usefixtures("an_app_exists")
def test_a_blinded_reader_is_neither_offered_nor_given_the_agreement(data_dir, read_twice):
    from _dash_helpers import text_of

    classes, shown = _page(data_dir, {"X-Forwarded-User": "Dr Ada"}, **BLINDED)
    assert "d-none" in classes and "agreement-unchecked" not in classes
    assert "Reader agreement shows other readers' work." in text_of(shown)
    assert "Dice" not in text_of(shown)
    classes, shown = _page(data_dir, {}, **BLINDED)
    assert "d-none" in classes and "no X-Forwarded-User" in text_of(shown)


@pytest.mark.usefixtures("an_app_exists")
def test_the_view_says_when_there_is_nothing_to_compare_or_a_mask_is_damaged():
    from _dash_helpers import text_of

    from annotation_client.pages import saved

    nothing = reader_agreement([], _load) | {"truncated": False}
    assert text_of(saved.agreement_view(nothing)) == (
        "No image was saved by two or more readers independently: nothing to compare.")
    copied = [_row("c" * 64, "Ada", 1, "benign", LEFT),
              _row("c" * 64, "Bo", 2, "benign", LEFT) | {
                  "revises_other_reader": True, "based_on_annotator": "Ada",
                  "based_on_version": 1}]
    text = text_of(saved.agreement_view(reader_agreement(copied, _load) | {"truncated": False}))
    assert text == (
        "No image was saved by two or more readers independently: nothing to compare."
        "1 latest version(s) descend from another reader's saved work (loaded to revise, "
        "or saved over in the same page) and are left out, the reader's own earlier read "
        "counting instead if there is one "
        "(first: cccccccccccc v2 by Bo, revising v1 by Ada).")  # no name: the hash
    copied[1] |= {"worklist_path": "study 3/benign (12).png", "image_name": "x.png"}
    text = text_of(saved.agreement_view(reader_agreement(copied, _load) | {"truncated": False}))
    assert "(first: study 3/benign (12).png (cccccccccccc) v2 by Bo, revising v1 by Ada)" in text
    rows = [_row("w" * 64, "Ada", 1, "benign", OSError("v001_mask.png is missing")),
            _row("w" * 64, "Bo", 2, None, OSError("v002_mask.png is missing"))]
    damaged = reader_agreement(rows, _load) | {"truncated": True}
    text = text_of(saved.agreement_view(damaged))
    assert "Outlines: mean Dice — (median —) over 0 pair(s), 0 of them both empty." in text
    assert ("Final labels: the same in — of the 0 pair(s) that both gave one; "
            "Fleiss' kappa —.") in text
    assert ("2 saved mask(s) could not be read and are left out of the Dice (first: "
            "wwwwwwwwwwww v1 by Ada: v001_mask.png is missing).") in text
    assert (f"Only the {saved.MAX_READ_IMAGES} images saved most recently are "
            "compared.") in text


def test_a_replaced_read_of_the_same_version_is_compared_anew():
    # The index replaced the row of version 2 (a version number saved again by another
    # reader): the cache must not give the Dice of the read it replaced.
    cache = {}
    rows = [_row("p", "Ada", 1, "benign", LEFT) | {"saved_at": "2024-01-01T10:00:00Z"},
            _row("p", "Bo", 2, "benign", LEFT) | {"saved_at": "2024-01-02T10:00:00Z"}]
    assert reader_agreement(rows, _load, cache)["mean_dice"] == 1.0
    replaced = [rows[0], _row("p", "Cy", 2, "normal", MIDDLE)
                | {"saved_at": "2024-01-03T10:00:00Z"}]
    result = reader_agreement(replaced, _load, cache)
    assert result["readers"] == ["Ada", "Cy"]
    assert result["mean_dice"] == 0.5


def _cut_short(record) -> None:
    """Truncate a record file inside its annotator's name: it no longer parses."""
    from pathlib import Path

    whole = Path(record).read_bytes()
    Path(record).write_bytes(whole[: whole.index(b'"annotator": "') + 17])


@pytest.mark.usefixtures("an_app_exists")
@pytest.mark.parametrize("rebuilt", [False, True], ids=["old-index", "rebuilt-index"])
def test_a_version_whose_record_is_damaged_is_no_read(data_dir, read_twice, rebuilt):
    """Its label and outline are unknown (a rebuilt index does not even know whose it
    was): it is not compared, whatever the index held. Dr Ada's v2 damaged, her read is
    her v1 (benign, Dr Bo's outline); Dr Bo's v3 damaged, he has no read and nothing is
    compared. The same whether the index held the version before or was made anew."""
    from _saved_data import SHA_A

    _client(data_dir)  # the versions indexed, as they said
    _cut_short(read_twice["a2"])
    if rebuilt:
        (data_dir / "index.sqlite3").unlink()
    response = _client(data_dir).get("/api/agreement")
    body = response.get_json()
    # Listed as left out, with why (the file named, not its folder); whose only when the
    # index held it before the damage.
    [left] = body.pop("left_out")
    assert left == {"image_sha256": SHA_A, "image": "left.png",
                    "annotator": None if rebuilt else "Dr Ada", "version": 2,
                    "reason": left["reason"]}
    assert left["reason"].startswith("Unterminated string")
    assert str(data_dir) not in response.get_data(as_text=True)
    assert body == {k: v for k, v in EXPECTED.items() if k != "left_out"} | {
        "mean_dice": 1.0, "median_dice": 1.0, "label_agreement": 1.0, "fleiss_kappa": None,
        "by_pair": [{"readers": ["Dr Ada", "Dr Bo"], "images": 1, "mean_dice": 1.0,
                     "label_pairs": 1, "label_agreement": 1.0, "cohen_kappa": None}],
    }
    _cut_short(read_twice["a3"])
    body = _client(data_dir).get("/api/agreement").get_json()
    assert (body["images"], body["readers"], body["pairs"]) == (0, [], 0)
    assert [(item["version"], item["annotator"]) for item in body["left_out"]] == [
        (2, None if rebuilt else "Dr Ada"), (3, "Dr Bo")]  # v3 indexed before its damage
