"""The JSON record saved with each annotation version, and Dice agreement."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ._measurements import _check_spacing

SCHEMA = "sonotrace.annotation/1"
LABELS = ("normal", "benign", "malignant")
#: The longest note a record keeps (the Note field takes no more).
MAX_NOTE_CHARS = 10_000

#: BI-RADS ultrasound lexicon (ACR BI-RADS Atlas, 5th edition) offered by the page.
DESCRIPTOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "shape": ("oval", "round", "irregular"),
    "orientation": ("parallel", "not parallel"),
    "margin": ("circumscribed", "indistinct", "angular", "microlobulated", "spiculated"),
    "echo_pattern": (
        "anechoic",
        "hyperechoic",
        "complex cystic and solid",
        "hypoechoic",
        "isoechoic",
        "heterogeneous",
    ),
    "posterior_features": ("none", "enhancement", "shadowing", "combined"),
    # The whole BI-RADS assessment scale: 1 for a normal breast, 0 when more imaging is
    # needed, 6 for a malignancy already proven by biopsy.
    "assessment": ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6"),
}
#: What each BI-RADS assessment category means (ACR BI-RADS Atlas, 5th edition).
ASSESSMENT_MEANINGS = {
    "0": "incomplete: needs more imaging",
    "1": "negative",
    "2": "benign",
    "3": "probably benign",
    "4A": "low suspicion of malignancy",
    "4B": "moderate suspicion of malignancy",
    "4C": "high suspicion of malignancy",
    "5": "highly suggestive of malignancy",
    "6": "known biopsy-proven malignancy",
}
#: Descriptors that take several values at once (a non-circumscribed margin can be
#: both angular and spiculated, say); the others take one.
MULTI_VALUED = frozenset({"margin"})


def margin_conflict(margin) -> str | None:
    """Why a BI-RADS margin is self-contradictory, or None.

    In the lexicon a margin is either circumscribed, or not circumscribed and then
    any of indistinct, angular, microlobulated and spiculated: "circumscribed" with
    one of those says two opposite things of one lesion.

    Parameters
    ----------
    margin : sequence of str or None
        The margin values chosen.
    """
    chosen = margin if isinstance(margin, list | tuple) else []
    # Only the lexicon's values: others (a forged request) are for Save to refuse.
    others = [m for m in DESCRIPTOR_OPTIONS["margin"] if m != "circumscribed" and m in chosen]
    if "circumscribed" not in chosen or not others:
        return None
    return (f"The margin cannot be both circumscribed and {' and '.join(others)}: in "
            "BI-RADS a circumscribed margin is the opposite of the others. Untick one.")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A| + |B|)`` of two masks of the same shape.

    Two empty masks agree perfectly (1.0).

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 0]], bool); b = np.array([[0, 1, 1, 0]], bool)
    >>> dice(a, b)
    0.5
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks of the same shape (1.0 for two empty)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = int(np.logical_or(a, b).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(a, b).sum()) / union


def clean_descriptors(descriptors: Mapping | None) -> dict:
    """Validate BI-RADS descriptors and fill the missing ones with None.

    Parameters
    ----------
    descriptors : mapping or None
        ``{name: value}`` with names from :data:`DESCRIPTOR_OPTIONS`; values are
        one of the allowed strings (a list of them for ``margin``), or None/empty.

    Returns
    -------
    dict
        Every descriptor name; None where not given, lists for multi-valued ones.
    """
    descriptors = dict(descriptors or {})
    unknown = sorted(set(descriptors) - set(DESCRIPTOR_OPTIONS))
    if unknown:
        raise ValueError(f"descriptors has unknown names: {', '.join(unknown)}")
    cleaned: dict = {}
    for name, options in DESCRIPTOR_OPTIONS.items():
        value = descriptors.get(name)
        if value in (None, "", []):
            cleaned[name] = [] if name in MULTI_VALUED else None
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v not in options:
                raise ValueError(
                    f"descriptors[{name!r}] = {v!r} is not one of {', '.join(options)}"
                )
        if name in MULTI_VALUED:
            cleaned[name] = [o for o in options if o in values]
        elif len(values) != 1:
            raise ValueError(f"descriptors[{name!r}] takes one value")
        else:
            cleaned[name] = values[0]
    return cleaned


def _consistent(descriptors: dict) -> dict:
    """``descriptors`` unchanged, if a radiologist could have meant them all.

    Checked when a record is built, not by :func:`clean_descriptors`, which also
    reads the records saved before this check existed.
    """
    conflict = margin_conflict(descriptors["margin"])
    if conflict:
        raise ValueError(conflict)
    return descriptors


def _clean_probabilities(probabilities) -> dict | None:
    if probabilities is None:
        return None
    if not isinstance(probabilities, Mapping) or set(probabilities) != set(LABELS):
        raise ValueError(f"ai probabilities must have exactly the keys {LABELS}")
    cleaned = {k: float(probabilities[k]) for k in LABELS}
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in cleaned.values()):
        raise ValueError("ai probabilities must be in [0, 1]")
    return cleaned


def build_record(
    *,
    image: Mapping,
    annotator: str,
    final_mask: np.ndarray,
    ai_mask: np.ndarray | None = None,
    final_label: str | None = None,
    descriptors: Mapping | None = None,
    note: str = "",
    measurements: Mapping | None = None,
    model: Mapping | None = None,
    box_models: Sequence[Mapping] | None = None,
    classification: Mapping | None = None,
    vertices: int | None = None,
    based_on: Mapping | None = None,
    saved_at: _dt.datetime | None = None,
    offered_paths: Sequence[str] | None = None,
) -> dict:
    """Assemble the JSON record of one saved annotation.

    Parameters
    ----------
    image : mapping
        ``sha256``, ``name``, ``width``, ``height`` and optionally
        ``pixel_spacing_mm`` of the annotated image (with ``pixel_spacing_source``,
        one of :data:`SPACING_SOURCES`: "manual" when the radiologist typed it,
        "calibrated" when it was measured on the image's depth scale, "reused" when it
        was set on an earlier image and reused on this one; "file" otherwise), and
        ``worklist_path``, its
        path relative to ``SONOTRACE_WORKLIST_DIR`` when it was opened from the
        worklist (the name alone does not say which folder it came from).
    annotator : str
        Who saved it (required, non-blank).
    final_mask : numpy.ndarray
        ``(height, width)`` bool mask of the edited outline.
    ai_mask : numpy.ndarray, optional
        The ``(height, width)`` bool mask of the AI's outline as it was offered to
        edit (its paths rasterised as ``final_mask`` is), when the image was
        auto-segmented: ``agreement`` compares the two, so an outline saved as
        offered is unedited, with Dice 1.
    final_label : {"normal", "benign", "malignant"}, optional
        The radiologist's label.
    descriptors : mapping, optional
        BI-RADS descriptors (see :func:`clean_descriptors`).
    note : str, optional
        Free text.
    measurements : mapping, optional
        The measurements summary of the final outline.
    model : mapping, optional
        The segmentation model's ``{"name", "version"}`` reported by the server: the
        model that gave the first outline.
    box_models : sequence of mapping, optional
        ``{"name", "version"}`` of the model that answered each box re-segmentation the
        outline was edited with (*Box re-segment*), oldest first: the record keeps each
        model once, as ``model.box``, and ``model.box_differs`` says whether one of them
        is not ``model`` (the server upgraded between the outline and a box, or a box
        on an outline drawn by hand). A revision of a saved version whose outline it
        kept (*Load it to revise*) gives that version's first (its ``model.box``, as
        :func:`parse_box_models` reads it), then those of its own boxes.
    classification : mapping, optional
        The server's ``/classify`` answer: ``label``, ``probabilities``, ``model``.
    vertices : int, optional
        Total vertex count of the saved outline.
    based_on : mapping, optional
        ``{"version", "annotator", "readers"}`` of the saved version that was
        loaded into the editor to revise (*Load it to revise*), when this save started
        from one rather than from the AI's outline or a blank image. ``readers``
        are everyone whose saved work this save descends from, through one load or
        several (the version's annotator at least; that alone when not given). A
        read that descends from another reader's is not an independent read:
        reader agreement leaves it out.
    saved_at : datetime, optional
        Timezone-aware save time; now (UTC) by default.
    offered_paths : sequence of str, optional
        The AI's outline as it was offered, the paths ``ai_mask`` was rasterised from
        (SVG path data, image pixels, x = column, y = row), kept as
        ``agreement.offered_paths`` when ``ai_mask`` is given. ``ai_mask`` is compared
        and forgotten; these tell, later, which lesion of an edited outline is the
        model's, untouched (the version's DICOM SR names the model on it).

    Returns
    -------
    dict
        JSON-able record. ``agreement.dice_ai_vs_final`` is None without an AI mask.
    """
    if not isinstance(image, Mapping):
        raise TypeError("image must be a mapping")
    for key in ("sha256", "name", "width", "height"):
        if key not in image:
            raise ValueError(f"image is missing {key!r}")
    width, height = int(image["width"]), int(image["height"])
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError("annotator must be a non-blank name")
    final_mask = np.asarray(final_mask, dtype=bool)
    if final_mask.shape != (height, width):
        raise ValueError(f"final_mask has shape {final_mask.shape}, expected {(height, width)}")
    if ai_mask is not None:
        ai_mask = np.asarray(ai_mask, dtype=bool)
        if ai_mask.shape != (height, width):
            raise ValueError(f"ai_mask has shape {ai_mask.shape}, expected {(height, width)}")
    if final_label not in (None, "") and final_label not in LABELS:
        raise ValueError(f"final_label must be one of {', '.join(LABELS)}")
    if not isinstance(note, str):
        raise TypeError("note must be a str")
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(f"The note has {len(note)} characters; at most {MAX_NOTE_CHARS} "
                         "are kept.")
    if saved_at is None:
        saved_at = _dt.datetime.now(_dt.UTC)
    elif saved_at.tzinfo is None:
        raise ValueError("saved_at must be timezone-aware")

    ai = None
    if classification is not None:
        label = classification.get("label")
        if label not in LABELS:
            raise ValueError(f"classification label must be one of {', '.join(LABELS)}")
        ai = {
            "label": label,
            "probabilities": _clean_probabilities(classification.get("probabilities")),
            "model": _model(classification.get("model")),
        }
    agreement = None if ai_mask is None else dice(ai_mask, final_mask)
    if offered_paths is not None:
        if isinstance(offered_paths, str) or not isinstance(offered_paths, Sequence) or not all(
                isinstance(p, str) for p in offered_paths):
            raise TypeError("offered_paths must be a sequence of SVG path strings")
        offered_paths = list(offered_paths) if ai_mask is not None else None
    based_on = parse_based_on(based_on)
    return {
        "schema": SCHEMA,
        "image": {
            "sha256": str(image["sha256"]),
            "name": str(image["name"]),
            "width": width,
            "height": height,
            "pixel_spacing_mm": _spacing(image.get("pixel_spacing_mm")),
            "pixel_spacing_source": _spacing_source(image),
            "worklist_path": _worklist_path(image.get("worklist_path")),
        },
        "saved_at": saved_at.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z"),
        "annotator": annotator.strip(),
        "model": {
            "segmentation": _model(model),
            "classification": ai["model"] if ai else None,
            **_box_section(_model(model), box_models),
        },
        "ai": {
            "segmented": ai_mask is not None,
            "label": ai["label"] if ai else None,
            "probabilities": ai["probabilities"] if ai else None,
        },
        "final": {
            "label": final_label or None,
            "descriptors": _consistent(clean_descriptors(descriptors)),
            "note": note.strip(),
            "regions": int(measurements["count"]) if measurements else None,
            "vertices": vertices,
            "empty": not bool(final_mask.any()),
        },
        "measurements": _jsonable(measurements) if measurements else None,
        "agreement": {
            "dice_ai_vs_final": agreement,
            "edited": None if ai_mask is None else not np.array_equal(ai_mask, final_mask),
            "offered_paths": offered_paths,
        },
        "based_on": based_on,
    }


def parse_based_on(value) -> dict | None:
    """A record's ``based_on``, checked and normalised; the one reading of it.

    Parameters
    ----------
    value : mapping or None
        ``{"version", "annotator", "readers"}`` as :func:`build_record` takes it;
        ``readers`` may be left out (the annotator alone).

    Returns
    -------
    dict or None
        ``{"version": int >= 1, "annotator": str, "readers": sorted names}``, the
        annotator among the readers, names stripped; None for None.

    Raises
    ------
    ValueError
        Anything else, naming the field: provenance that cannot be read is never
        guessed, since a wrong guess would count a copied read as independent.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"based_on {value!r} is not a version")
    version, annotator = value.get("version"), value.get("annotator")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"based_on version {version!r} is not a positive int")
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError(f"based_on annotator {annotator!r} is not a non-blank name")
    readers = value.get("readers", [annotator])
    if not isinstance(readers, list | tuple) or not all(
        isinstance(r, str) and r.strip() for r in readers
    ):
        raise ValueError(f"based_on readers {readers!r} is not a list of non-blank names")
    return {
        "version": version,
        "annotator": annotator.strip(),
        "readers": sorted({annotator.strip(), *(r.strip() for r in readers)}),
    }


def parse_box_models(record) -> list[dict]:
    """The box models a saved record names (its ``model.box``), checked; the one reading
    of it, as the models a revision of the record keeps (see :func:`build_record`).

    Parameters
    ----------
    record : mapping
        A saved record.

    Returns
    -------
    list of dict
        ``{"name", "version"}`` of each model, in the record's order; [] when it names
        none (no box, or saved before box models were recorded).

    Raises
    ------
    ValueError
        ``model`` or ``model.box`` is not what :func:`build_record` writes: which
        models made an outline is not guessed.
    """
    model = record.get("model") if isinstance(record, Mapping) else None
    if model is None:
        return []
    if not isinstance(model, Mapping):
        raise ValueError(f"model {model!r} is not a mapping of models")
    box = model.get("box")
    if box is None:
        return []
    # As the index reads it (_database._box_versions): a record it lists as damaged
    # for its model.box is not revised as if it named no box.
    if not isinstance(box, list) or not all(isinstance(m, Mapping) for m in box):
        raise ValueError(f"model.box {box!r} is not a list of models")
    return [cleaned for cleaned in map(_model, box) if cleaned]


def descends_from_others(record: Mapping) -> bool | None:
    """Whether a saved record revised work of a reader other than its own annotator.

    Parameters
    ----------
    record : mapping
        A saved record, with ``annotator`` and ``based_on``.

    Returns
    -------
    bool or None
        None when it was not based on a saved version; False when every reader it
        descends from is its own annotator (a reader revising their own read).

    Raises
    ------
    ValueError
        ``based_on`` cannot be read (:func:`parse_based_on`).
    """
    based_on = parse_based_on(record.get("based_on"))
    if based_on is None:
        return None
    return any(r != record.get("annotator") for r in based_on["readers"])


def _reading(record) -> tuple | None:
    """What of a record is the reader's reading, beside the outline; None if unreadable."""
    final = record.get("final") if isinstance(record, Mapping) else None
    image = record.get("image") if isinstance(record, Mapping) else None
    if not isinstance(final, Mapping) or not isinstance(image, Mapping):
        return None
    note = final.get("note")
    try:
        descriptors = clean_descriptors(final.get("descriptors"))
    except (TypeError, ValueError):
        return None
    return (
        record.get("annotator"),
        final.get("label") or None,
        note.strip() if isinstance(note, str) else note,
        descriptors,
        # Measurements in mm follow from the spacing: setting one is a change.
        image.get("pixel_spacing_mm"),
    )


def same_reading(new: Mapping, old: Mapping) -> bool:
    """Whether two records hold the same reading by the same reader.

    The annotator, the final label, the note, every BI-RADS descriptor (the
    assessment among them) and the pixel spacing. The outline is compared apart,
    as masks: a record holds only its summary.

    Parameters
    ----------
    new, old : mapping
        Records as :func:`build_record` makes them; ``old`` as read from disk.

    Returns
    -------
    bool
        False also when either cannot be read: saving again is then never refused.
    """
    mine, theirs = _reading(new), _reading(old)
    return mine is not None and mine == theirs


def revision_losses(new: Mapping, old: Mapping, version: int) -> list[str]:
    """What a save of ``new`` would leave out that ``old``, version ``version``, holds.

    Asked before such a save (one click confirms it): a final label that the
    latest version has and this save has not, and the AI's outline saved untouched
    over a version whose outline the radiologist edited or drew. Both are what a
    reader who reopened a case and saved at once, without loading their reading,
    would silently replace. Also no outline at all over a version that has one,
    unless this save's label is normal.

    Parameters
    ----------
    new : mapping
        The record about to be saved (:func:`build_record`).
    old : mapping
        The latest saved version's record the reader may see.
    version : int
        Its number, for the message.

    Returns
    -------
    list of str
        One sentence per loss; empty when the save loses nothing.

    Examples
    --------
    >>> old = {"final": {"label": "benign", "empty": False}, "agreement": {"edited": True},
    ...        "annotator": "Dr A"}
    >>> new = {"final": {"label": None}, "agreement": {"edited": False}}
    >>> revision_losses(new, old, 1)  # doctest: +NORMALIZE_WHITESPACE
    ['This save has no final label; version 1 is labelled benign.', "This save's outline
    is the AI's, untouched; version 1's, by Dr A, was edited."]
    """
    old_final = old.get("final") if isinstance(old.get("final"), Mapping) else {}
    new_final = new.get("final") if isinstance(new.get("final"), Mapping) else {}
    losses = []
    old_label = old_final.get("label")
    if not new_final.get("label") and old_label in LABELS:
        losses.append(f"This save has no final label; version {version} is labelled "
                      f"{old_label}.")
    old_agreement = old.get("agreement") if isinstance(old.get("agreement"), Mapping) else {}
    new_agreement = new.get("agreement") if isinstance(new.get("agreement"), Mapping) else {}
    # An outline without an AI one beside it (edited None) was drawn by hand.
    how = ("edited" if old_agreement.get("edited") is True
           else "drawn by hand" if old_agreement.get("edited") is None
           and old_final.get("empty") is False else None)
    if new_agreement.get("edited") is False and how:
        losses.append(f"This save's outline is the AI's, untouched; version {version}'s, by "
                      f"{old.get('annotator')}, was {how}.")
    # An outline erased whole (a stray Delete) under a label that still says lesion; a
    # reader who finds the image normal now says so with the label, and is not asked.
    if (new_final.get("empty") is True and old_final.get("empty") is False
            and new_final.get("label") != "normal"):
        losses.append(f"This save has no outline; version {version}, by "
                      f"{old.get('annotator')}, has one.")
    return losses


def _worklist_path(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("image worklist_path must be a str")
    return value


def _model(model) -> dict | None:
    if not model:
        return None
    if not isinstance(model, Mapping):
        raise TypeError("model must be a mapping")
    return {k: model[k] for k in ("name", "version") if k in model}


def _box_section(segmentation: dict | None, box_models) -> dict:
    """The record's ``model.box`` (each box model once, in the order first used; None
    without a box) and ``model.box_differs`` (whether one of them is not the first
    outline's model; None without a box)."""
    if box_models is None:
        box_models = []
    if isinstance(box_models, Mapping | str) or not isinstance(box_models, Sequence):
        raise TypeError("box_models must be a sequence of mappings")
    box: list[dict] = []
    for model in box_models:
        cleaned = _model(model)
        if cleaned and cleaned not in box:
            box.append(cleaned)
    if not box:
        return {"box": None, "box_differs": None}
    return {"box": box, "box_differs": any(model != segmentation for model in box)}


def _spacing(spacing) -> list[float] | None:
    if spacing is None:
        return None
    if isinstance(spacing, str | bytes) or not hasattr(spacing, "__len__") or len(spacing) != 2:
        raise ValueError("image pixel_spacing_mm must be [row_mm, col_mm]")
    try:
        # The measurements' own check, so a record never states a spacing they refuse.
        return list(_check_spacing(spacing))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"image pixel_spacing_mm: {exc}") from None


#: Where a record's pixel spacing came from (``image.pixel_spacing_source``): the
#: file's header, or the reader: typed and Set ("manual"), measured on the image's
#: depth scale and Set unchanged ("calibrated"), or Set on an earlier image of the
#: session and reused on this one ("reused").
SPACING_SOURCES = ("file", "manual", "calibrated", "reused")


def _spacing_source(image: Mapping) -> str | None:
    """Where the spacing came from, one of :data:`SPACING_SOURCES`; None without one.

    Records before "reused" and "calibrated" existed hold only "file" or "manual"
    (a calibrated spacing was recorded as "manual"), read as ever; a record that
    names no source is the file's.
    """
    source = image.get("pixel_spacing_source")
    if image.get("pixel_spacing_mm") is None:
        return None
    if source is None:
        return "file"
    if source not in SPACING_SOURCES:
        raise ValueError(
            f"image pixel_spacing_source must be one of {', '.join(SPACING_SOURCES)}"
        )
    return source


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
