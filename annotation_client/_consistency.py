"""Whether a reading's final label, outline and BI-RADS assessment agree, and whether
its outline and AI label came from one model.

A hint, never a refusal: the radiologist may be right (a normal label with an
outline of a lymph node kept for the record, say), so the Annotate page shows
it beside the controls and repeats it in the save's message, and saves all the
same. Pure, so that the rule is tested on its own.
"""

from __future__ import annotations

from ._record import ASSESSMENT_MEANINGS, LABELS

#: BI-RADS categories that say there is something suspicious to follow or biopsy
#: (3 to 5), or a proven cancer (6): none of them reads as a normal image.
NOT_NORMAL = ("3", "4A", "4B", "4C", "5", "6")
#: Negative or benign findings: neither reads as a malignant lesion.
NOT_MALIGNANT = ("1", "2")
#: No finding (1), or a lesion read as cancer: highly suggestive (5) or proven by
#: biopsy (6). 3 and 4A-4C stay the radiologist's doubt to record beside a benign label.
NOT_BENIGN = ("1", "5", "6")
#: What each label's reading cannot be, by BI-RADS assessment category.
_CONTRADICTING = {"normal": NOT_NORMAL, "benign": NOT_BENIGN, "malignant": NOT_MALIGNANT}


def reading_conflict(label, outlined: bool, assessment) -> str | None:
    """What in a reading contradicts itself, as one message; None when nothing does.

    Parameters
    ----------
    label : {"normal", "benign", "malignant"} or None
        The final label (anything else, a forged value, counts as none).
    outlined : bool
        Whether the outline holds at least one region.
    assessment : str or None
        The BI-RADS assessment category ("0" to "6", "4A" to "4C"), or None/"".

    Returns
    -------
    str or None
        Each disagreement as a sentence, in a fixed order: label against outline,
        then label against assessment.

    Examples
    --------
    >>> reading_conflict("normal", True, "5")  # doctest: +NORMALIZE_WHITESPACE
    'The final label is normal, but an outline is drawn. The final label is normal,
    but BI-RADS 5 (highly suggestive of malignancy) is not a normal reading.'
    >>> reading_conflict("benign", True, "3") is None
    True
    """
    if label not in LABELS:
        return None
    said = []
    if label == "normal" and outlined:
        said.append("The final label is normal, but an outline is drawn.")
    if label != "normal" and not outlined:
        said.append(f"The final label is {label}, but no lesion is outlined.")
    category = assessment if isinstance(assessment, str) else None
    if category in _CONTRADICTING[label]:
        said.append(
            f"The final label is {label}, but BI-RADS {category} "
            f"({ASSESSMENT_MEANINGS[category]}) is not a {label} reading."
        )
    return " ".join(said) or None


def model_version_conflict(segmentation, classification, saved_with=None) -> str | None:
    """Say when the outline and the AI label came from different model versions.

    The model server can be given new weights (a release switched, a graceful reload)
    between ``/predict`` and ``/classify``, or between the first outline and a Classify
    asked again: the record then holds two versions (``model.segmentation`` and
    ``model.classification``), and the AI label is not the opinion of the model that
    drew the outline. A hint, never a refusal: both are recorded as they are.

    Parameters
    ----------
    segmentation, classification : mapping or None
        ``{"name": str, "version": str}`` of the model that drew the outline offered and
        of the one that gave the AI label, as the server reported them (and a record's
        ``model`` keeps them). None, or one without a version, says nothing.
    saved_with : int, optional
        The saved version whose AI label was loaded with it, when it was (the label
        is then that version's, and Classify alone makes both one model's).

    Returns
    -------
    str or None
        One message naming both versions (and both names, when they differ), or None
        when they agree or one is not known.

    Examples
    --------
    >>> model_version_conflict({"name": "unet", "version": "1"},
    ...                        {"name": "unet", "version": "2"})  # doctest: +NORMALIZE_WHITESPACE
    'The outline is from model version 1, the AI label from version 2: the model server
    changed in between. Auto-segment and Classify again to have both from one model; Save
    records both as they are.'
    >>> model_version_conflict({"name": "unet", "version": "2"},
    ...                        {"name": "unet", "version": "2"}) is None
    True
    """
    drew, labelled = _model_ref(segmentation), _model_ref(classification)
    if drew is None or labelled is None or drew == labelled:
        return None
    if drew[0] == labelled[0] or not (drew[0] and labelled[0]):
        first, second = f"model version {drew[1]}", f"version {labelled[1]}"
    else:
        first, second = (f"model {' '.join(filter(None, drew))}",
                         " ".join(filter(None, labelled)))
    if isinstance(saved_with, int) and not isinstance(saved_with, bool):
        why, again = (f"it was saved with version {saved_with}, before the model server "
                      "changed"), "Classify again"
    else:
        why, again = "the model server changed in between", "Auto-segment and Classify again"
    return (f"The outline is from {first}, the AI label from {second}: {why}. {again} to "
            "have both from one model; Save records both as they are.")


def _model_ref(model) -> tuple[str, str] | None:
    """``(name, version)`` of a model reference, or None when it names no version."""
    if not isinstance(model, dict):
        return None
    version = model.get("version")
    if version is None or str(version).strip() == "":
        return None
    name = model.get("name")
    return (str(name).strip() if name is not None else "", str(version).strip())
