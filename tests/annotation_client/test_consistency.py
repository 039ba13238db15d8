"""The rule of label, outline and BI-RADS assessment that disagree (a hint, not a refusal)."""

from __future__ import annotations

import pytest

from annotation_client._consistency import (
    NOT_BENIGN,
    NOT_MALIGNANT,
    NOT_NORMAL,
    model_version_conflict,
    reading_conflict,
)
from annotation_client._record import DESCRIPTOR_OPTIONS


@pytest.mark.parametrize(
    ("label", "outlined", "assessment", "said"),
    [
        ("normal", True, None, "The final label is normal, but an outline is drawn."),
        ("benign", False, "", "The final label is benign, but no lesion is outlined."),
        ("malignant", False, None, "The final label is malignant, but no lesion is outlined."),
        ("normal", False, "3",
         "The final label is normal, but BI-RADS 3 (probably benign) is not a normal reading."),
        ("normal", False, "4B", "The final label is normal, but BI-RADS 4B (moderate "
         "suspicion of malignancy) is not a normal reading."),
        ("malignant", True, "2",
         "The final label is malignant, but BI-RADS 2 (benign) is not a malignant reading."),
        ("benign", True, "6", "The final label is benign, but BI-RADS 6 (known "
         "biopsy-proven malignancy) is not a benign reading."),
        ("benign", True, "5", "The final label is benign, but BI-RADS 5 (highly "
         "suggestive of malignancy) is not a benign reading."),
        ("benign", True, "1",
         "The final label is benign, but BI-RADS 1 (negative) is not a benign reading."),
        # Both at once, outline first.
        ("malignant", False, "1", "The final label is malignant, but no lesion is outlined. "
         "The final label is malignant, but BI-RADS 1 (negative) is not a malignant reading."),
    ],
)
def test_a_reading_that_contradicts_itself_is_said(label, outlined, assessment, said):
    assert reading_conflict(label, outlined, assessment) == said


@pytest.mark.parametrize(
    ("label", "outlined", "assessment"),
    [
        ("normal", False, "1"),
        ("normal", False, "2"),  # a benign finding in an otherwise normal study
        ("normal", False, "0"),  # incomplete: more imaging says
        ("benign", True, "2"),
        ("benign", True, "4A"),  # the radiologist's doubt is theirs to record
        ("benign", True, "4C"),
        ("benign", True, "3"),
        ("benign", True, "0"),
        ("malignant", True, "6"),
        ("malignant", True, None),
        # No label yet, or one the page does not offer: nothing to compare.
        (None, True, "5"),
        ("", False, "1"),
        ("cyst", True, "1"),
        # An assessment that is no category (a forged request) says nothing.
        ("normal", False, 5),
        ("normal", False, "7"),
    ],
)
def test_a_reading_that_agrees_says_nothing(label, outlined, assessment):
    assert reading_conflict(label, outlined, assessment) is None


def test_every_category_is_a_normal_or_a_malignant_reading_or_both():
    categories = set(DESCRIPTOR_OPTIONS["assessment"])
    assert set(NOT_NORMAL) <= categories and set(NOT_MALIGNANT) <= categories
    assert set(NOT_BENIGN) <= categories
    # 0 (incomplete) and 1-2 read as normal; none of 3-6 as anything but suspicious.
    assert categories - set(NOT_NORMAL) == {"0", "1", "2"}


@pytest.mark.parametrize(
    ("segmentation", "classification", "said"),
    [
        ({"name": "unet", "version": "1"}, {"name": "unet", "version": "2"},
         "The outline is from model version 1, the AI label from version 2"),
        # Two models: both named.
        ({"name": "unet", "version": "1"}, {"name": "clf", "version": "1"},
         "The outline is from model unet 1, the AI label from clf 1"),
        # A name not reported: the versions alone.
        ({"version": "1"}, {"name": "clf", "version": "2"},
         "The outline is from model version 1, the AI label from version 2"),
    ],
)
def test_an_outline_and_label_of_two_models_are_said_with_both(segmentation, classification,
                                                                said):
    text = model_version_conflict(segmentation, classification)
    assert text.startswith(said + ": the model server changed in between.")


@pytest.mark.parametrize(
    ("segmentation", "classification"),
    [
        ({"name": "unet", "version": "2"}, {"name": "unet", "version": "2"}),
        # Not known on one side: not classified, drawn by hand, a record from before.
        (None, {"name": "unet", "version": "2"}),
        ({"name": "unet", "version": "1"}, None),
        ({"name": "unet"}, {"name": "unet", "version": "2"}),
        ({"name": "unet", "version": ""}, {"name": "unet", "version": "2"}),
        ("unet 1", {"name": "unet", "version": "2"}),
    ],
)
def test_one_model_or_an_unknown_one_says_nothing(segmentation, classification):
    assert model_version_conflict(segmentation, classification) is None


def test_a_label_loaded_with_a_saved_version_is_said_as_that_versions():
    # Classify alone makes both one model's: the outline on screen is the version's.
    text = model_version_conflict({"name": "unet", "version": "2"},
                                  {"name": "unet", "version": "1"}, saved_with=3)
    assert text == ("The outline is from model version 2, the AI label from version 1: it "
                    "was saved with version 3, before the model server changed. Classify "
                    "again to have both from one model; Save records both as they are.")
