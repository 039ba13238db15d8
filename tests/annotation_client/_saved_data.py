"""Saved versions with known values, for the tests of GET /api/saved and the Saved page.

Each version is written as the Annotate page writes it: an :class:`AnnotationStore`
save of a :func:`build_record` record, with hand-made 3 x 4 masks and fixed save times,
so every value the index, the API and the page give back is known. ``save_three`` is
behind the ``saved_paths`` fixture of this folder's conftest.py.

Import it by name (``from _saved_data import AI_A, save_three``): pytest puts this
folder on ``sys.path`` for the test files in it.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
from PIL import Image

from annotation_client._database import SavedRow
from annotation_client._measurements import summarize
from annotation_client._record import build_record
from annotation_client._storage import AnnotationStore

SHA_A = "a1" * 32
SHA_B = "b2" * 32
UTC = dt.UTC
#: The first line of every CSV of saved versions.
HEADER = ",".join(SavedRow.COLUMNS)


def cells_mask(*cells) -> np.ndarray:
    """A (3, 4) bool mask, True at the (row, col) ``cells``."""
    mask = np.zeros((3, 4), bool)
    for r, c in cells:
        mask[r, c] = True
    return mask


def png_bytes(mask: np.ndarray) -> bytes:
    """``mask`` as a black and white PNG file."""
    out = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(out, format="PNG")
    return out.getvalue()


#: The AI's outline of image A: row 1, columns 0-2.
AI_A = cells_mask((1, 0), (1, 1), (1, 2))
#: Dr Ada's first outline: row 1, columns 1-3; 2 of 3 + 3 pixels shared, Dice 2/3.
EDITED_A = cells_mask((1, 1), (1, 2), (1, 3))
#: Image B, outlined by hand in two regions, no AI.
HAND_B = cells_mask((0, 0), (2, 3))
CLASSIFICATION = {
    "label": "benign",
    "probabilities": {"normal": 0.1, "benign": 0.6, "malignant": 0.3},
    "model": {"name": "cls", "version": "0.9"},
}
#: Dr Ada's BI-RADS reading of image A's first version: probably benign.
DESCRIPTORS_A1 = {"shape": "oval", "orientation": "parallel", "margin": ["circumscribed"],
                  "echo_pattern": "hypoechoic", "posterior_features": "enhancement",
                  "assessment": "3"}  # fmt: skip
#: And of its second: suspicious. The margin is given out of the lexicon's order.
DESCRIPTORS_A2 = {"shape": "irregular", "orientation": "not parallel",
                  "margin": ["spiculated", "angular"], "echo_pattern": "heterogeneous",
                  "posterior_features": "shadowing", "assessment": "4C"}  # fmt: skip
#: Dr Ada's note on image A's first version (a comma: the CSV quotes the cell).
NOTE_A1 = "Probably a fibroadenoma; follow up in 6 months, left breast."


def save_version(data_dir, sha, *, name="left.png", annotator="Dr Ada", final=EDITED_A,
                 ai=None, label=None, classification=None, saved_at, worklist_path=None,
                 regions=1, index=None, descriptors=None, note="", based_on=None,
                 spacing=None, box_models=None) -> str:
    """One saved version, written as the Annotate page writes it; returns its record path.

    Its measurements give only the region count, unless ``spacing`` (``(row_mm, col_mm,
    source)``) is given: then the image is measured at it, all of it, as the page does.
    """
    image = {"sha256": sha, "name": name, "width": 4, "height": 3,
             "worklist_path": worklist_path}
    measurements = {"count": regions}
    if spacing is not None:
        *mm, source = spacing
        image |= {"pixel_spacing_mm": mm, "pixel_spacing_source": source}
        measurements = summarize(final, mm)
    record = build_record(
        image=image,
        annotator=annotator,
        final_mask=final,
        ai_mask=ai,
        final_label=label,
        descriptors=descriptors,
        note=note,
        classification=classification,
        model={"name": "unet", "version": "2.1"} if ai is not None else None,
        box_models=box_models,
        measurements=measurements,
        saved_at=saved_at,
        based_on=based_on,
    )
    saved = AnnotationStore(data_dir, index=index).save(
        sha, svg="<svg/>", mask_png=png_bytes(final), record=record,
        ai_mask_png=None if ai is None else png_bytes(ai),
    )
    return str(saved.folder / saved.files["record"])


def save_three(data_dir) -> dict[str, str]:
    """Image A twice by Dr Ada, image B once by Dr Bo; returns each version's record path.

    Newest first: A v2 (2 May 09:30), B v1 (1 May 12:00), A v1 (1 May 10:00), UTC.
    A v1 is EDITED_A over AI_A, labelled benign, BI-RADS 3 (DESCRIPTORS_A1) with
    NOTE_A1; A v2 keeps AI_A, labelled malignant, BI-RADS 4C (DESCRIPTORS_A2), no note;
    both have the AI's CLASSIFICATION (benign). B v1 is HAND_B, two regions, no AI, no
    label, no descriptors and no note, opened from the worklist as study7/right.png.
    """
    return {
        "a1": save_version(data_dir, SHA_A, ai=AI_A, final=EDITED_A, label="benign",
                           classification=CLASSIFICATION, descriptors=DESCRIPTORS_A1,
                           note=NOTE_A1, saved_at=dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        "a2": save_version(data_dir, SHA_A, ai=AI_A, final=AI_A, label="malignant",
                           classification=CLASSIFICATION, descriptors=DESCRIPTORS_A2,
                           saved_at=dt.datetime(2024, 5, 2, 9, 30, tzinfo=UTC)),
        # Saved at 14:00 in UTC+2: the index keeps UTC, 12:00.
        "b1": save_version(data_dir, SHA_B, name="right.png", annotator="Dr Bo",
                           final=HAND_B, worklist_path="study7/right.png", regions=2,
                           saved_at=dt.datetime(2024, 5, 1, 14, 0,
                                                tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    }


def synced(added=0, *, removed=0, unchecked=0, skipped=()) -> dict:
    """What :meth:`AnnotationIndex.sync` returns: rows added (or replaced) and removed,
    rows left unchecked (the data folder missing or empty), record paths skipped."""
    return {"added": added, "removed": removed, "unchecked": unchecked, "skipped": list(skipped)}


def add_versions(index, count: int, *, per_image: int = 2) -> list[tuple[str, int]]:
    """``count`` tiny versions straight into ``index`` (no files: fast), ``per_image`` of
    each image, one a minute from 1 Jan 2024; returns their ``(sha, version)`` newest first.

    Every other image is Dr Ada's, the rest Dr Bo's; each version is EDITED_A over AI_A
    (Dice 2/3), benign by the AI, and labelled malignant when its number is a multiple of
    3 (else benign). Their record paths name no file: a sync would remove them.
    """
    base = build_record(image={"sha256": SHA_A, "name": "left.png", "width": 4, "height": 3},
                        annotator="Dr Ada", final_mask=EDITED_A, ai_mask=AI_A,
                        classification=CLASSIFICATION, saved_at=dt.datetime(2024, 1, 1, tzinfo=UTC))
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    items, keys = [], []
    for n in range(count):
        sha, version = f"{n // per_image:064x}", n % per_image + 1
        record = base | {
            "image": base["image"] | {"sha256": sha, "name": f"img{n // per_image}.png"},
            "annotator": "Dr Ada" if n // per_image % 2 == 0 else "Dr Bo",
            "final": base["final"] | {"label": "malignant" if n % 3 == 0 else "benign"},
            "saved_at": (start + dt.timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
            "version": version,
        }
        items.append((record, f"/nowhere/{sha}/v{version:03d}.json"))
        keys.append((sha, version))
    assert index.add_many(items) == count
    return keys[::-1]
