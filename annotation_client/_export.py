"""Export saved annotations as a data set in BUSI's layout.

The radiologists' corrected outlines are what the models should learn from
and be scored against. This writes, for each image, its newest saved version
that has a final label (newer ones without one, an outline saved alone, are passed
over and listed; one labelled normal with an outline drawn is left out and listed,
as BUSI's normal images have empty masks; one labelled benign or malignant with no
outline is exported without a mask file, and listed), as BUSI publishes its data::

    OUT/
        benign/benign (1).png          the image, as a PNG (DICOM: its first frame)
        benign/benign (1)_mask.png     the saved 0/255 mask, the image's size
        malignant/...  normal/...
        dicom_seg/benign (1)_seg.dcm   only when asked (``dicom_seg``): the outline as a DICOM
                                       SEG of each image that was opened from a DICOM
        dicom_sr/benign (1)_sr.dcm     only when asked (``dicom_sr``): the outline's
                                       measurements as a DICOM SR of each such image whose
                                       version states a pixel spacing
        index.csv                      class, name, duplicate_group, masks, where
                                       each one came from (sha256, version, annotator,
                                       saved_at; the worklist path only on request),
                                       the radiologist's BI-RADS assessment and
                                       descriptors, the lesion's size, and who read
                                       the image (each reader's label, whether they
                                       agree, whether the version adjudicated)

so that ``python -m models.evaluate --data OUT`` scores a model against the
radiologists and ``python -m models.train --data OUT`` can train on them.

A worklist image is read back from the worklist, and only when its bytes still
hash to the SHA-256 the annotation was saved under: from its recorded path, or,
when that no longer holds it (renamed, moved, replaced), from the worklist file
that does, found by its hash (:func:`annotation_client._worklist.locate`). An uploaded image (no
worklist path) is read from the copy its first save kept beside the versions,
checked the same way; uploads saved without one are skipped and listed.
:func:`version_seg` and :func:`version_sr` read one version's image and mask back the
same way and give the SEG and the SR the export writes for it: the Saved page's
per-version *DICOM* downloads.

The BI-RADS columns are the Saved page CSV's
(:data:`annotation_client._database.DESCRIPTOR_COLUMNS`, margin's values joined by
``"; "``), for a study to break its results down by category (``models.data`` reads
only the first four columns); a record whose descriptors are outside the lexicon is left
out and listed, as the index refuses it. The note is left
out: free text a radiologist wrote for colleagues, which may name the patient, has no
place in a data set made to be shared for training. So is, unless asked for
(``with_paths``), the worklist path: scanners and PACS exports often name files after
the patient or the accession number. The column stays, empty, so the layout is one.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import vectorizer

from . import _shapes
from ._database import (
    DESCRIPTOR_COLUMNS,
    AnnotationIndex,
    descriptor_columns,
    spreadsheet_cell,
)
from ._dicom_seg import SegUnavailable
from ._dicom_seg import dicom_seg as make_dicom_seg
from ._dicom_sr import NoPixelSpacing, SrUnavailable, check_reportable
from ._dicom_sr import dicom_sr as make_dicom_sr
from ._imageio import decode_image
from ._measurements import _check_spacing
from ._record import LABELS, descends_from_others
from ._storage import AnnotationStore, DamagedRecord
from ._worklist import holders, resolve_entry

logger = logging.getLogger(__name__)

#: The lesion's size as the record states it (the largest region's two calipers and the
#: total area), in pixels, and in mm when the reader or the file gave the spacing, which
#: is given too (row, column): a study reports lesion size in mm.
MEASUREMENT_COLUMNS = (
    "area_px", "area_mm2", "long_axis_px", "long_axis_mm", "perpendicular_axis_px",
    "perpendicular_axis_mm", "pixel_spacing_row_mm", "pixel_spacing_col_mm",
)

#: Who read the image and whether they agree, so that a double-read study does not take
#: the last reader's label for the truth unseen: each reader's latest label, and whether
#: the exported version adjudicated (revised another reader's version).
READER_COLUMNS = ("readers", "reader_labels", "labels_agree", "adjudicated")

INDEX_COLUMNS = (
    "class", "name", "duplicate_group", "masks",
    "sha256", "version", "annotator", "worklist_path", "saved_at",
    *DESCRIPTOR_COLUMNS.values(),  # after the others, which keep their places
    *MEASUREMENT_COLUMNS,
    *READER_COLUMNS,
)  # fmt: skip


@dataclass
class ExportReport:
    """What an export wrote and what it left out.

    Attributes
    ----------
    exported : dict
        ``{label: count}`` of images written.
    skipped : list of (str, str)
        ``(image folder or file, reason)`` for each image left out.
    disagreed : list of (str, str)
        ``(exported name, reader_labels)`` for each image whose readers' latest labels
        differ and whose exported version adjudicated nothing: its label is only the
        last reader's.
    segs : int
        DICOM SEG files written (with ``dicom_seg``).
    no_seg : list of (str, str)
        ``(exported name, reason)`` for each exported image opened from a DICOM that no
        SEG could be written for (the image and its mask are exported all the same).
    srs : int
        DICOM SR files written (with ``dicom_sr``).
    no_sr : list of (str, str)
        ``(exported name, reason)`` for each exported image opened from a DICOM that no
        SR could be written for: its version states no pixel spacing, its outline is
        empty, or the DICOM cannot have one (exported all the same).
    cases : dict
        ``{image folder: case}`` for each skipped image whose record names it: its
        worklist path, or its upload's file name (the folder is only a hash).
    skipped_why : dict
        ``{why: count}`` of the images left out, for the summary line: ``"with no
        final label"``, ``"labelled normal with an outline"`` or ``"for other reasons"``.
    fallbacks : list of (str, str)
        ``(case, what)`` for each image exported from an older version than its latest,
        the newer ones having no final label (:func:`_latest`).
    unoutlined : list of (str, str)
        ``(exported name, what)`` for each benign or malignant image whose version
        outlines nothing, exported without a mask file (:func:`_unoutlined`).
    """

    exported: dict = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    skipped: list = field(default_factory=list)
    disagreed: list = field(default_factory=list)
    segs: int = 0
    no_seg: list = field(default_factory=list)
    srs: int = 0
    no_sr: list = field(default_factory=list)
    cases: dict = field(default_factory=dict)
    skipped_why: dict = field(default_factory=dict)
    fallbacks: list = field(default_factory=list)
    unoutlined: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.exported.values())

    def skip(self, folder, reason: str, *, case: str | None = None,
             why: str = "for other reasons") -> None:
        """List an image left out: ``(folder, reason)`` in ``skipped``, the case it is
        (its worklist path or upload name, when a record says) in ``cases``, and one more
        of ``why`` in ``skipped_why`` for the summary."""
        self.skipped.append((str(folder), reason))
        if case:
            self.cases[str(folder)] = case
        self.skipped_why[why] = self.skipped_why.get(why, 0) + 1


def case_name(record: dict) -> str | None:
    """The case a saved record is of, as a study coordinator knows it: the worklist path
    it was opened from, else its upload's file name; None when the record names neither.

    >>> case_name({"image": {"worklist_path": "study1/b.png", "name": "b.png"}})
    'study1/b.png'
    >>> case_name({"image": {"worklist_path": None, "name": "scan.png"}})
    'scan.png (uploaded)'
    """
    image = record.get("image") if isinstance(record, dict) else None
    if not isinstance(image, dict):
        return None
    if isinstance(image.get("worklist_path"), str) and image["worklist_path"]:
        return image["worklist_path"]
    if isinstance(image.get("name"), str) and image["name"]:
        return f"{image['name']} (uploaded)"
    return None


def _by(version: int, record: dict) -> str:
    """``"v002 by Dr D"``: a version and who saved it, for the export's lines."""
    annotator = record.get("annotator")
    return f"v{version:03d} by {annotator}" if isinstance(annotator, str) and annotator \
        else f"v{version:03d} (no annotator)"


def _unlabelled(record: dict) -> bool:
    """Whether a readable saved record has no final label (an outline saved alone)."""
    final = record.get("final")
    return isinstance(final, dict) and final.get("label") not in LABELS


def _latest(store: AnnotationStore, sha: str) -> tuple[list[int], dict, list[str]]:
    """``(versions, record, passed)``: the image's complete versions up to the one
    exported, listed once; the record of that version, the newest with a final label;
    and the newer versions passed over for having none (``"v002 by Dr D"``, newest first).

    One reader's outline saved without a label does not take the image out of the data
    set when an earlier version has one (audit 818 F2): the reading progress counts the
    image as read, and the coordinator expects the labelled reading exported. A damaged
    record is not passed over: what it said is not known.

    Raises
    ------
    ValueError
        No complete version, a damaged record on the way, or no version with a final
        label (the message names the newest version and its reader).
    """
    versions = store.versions(sha)
    if not versions:
        raise ValueError("no complete saved version")
    passed: list[str] = []
    newest = None
    for at in range(len(versions) - 1, -1, -1):
        version = versions[at]
        try:
            record = store.load_record(sha, version)
        except DamagedRecord as exc:  # the version named, not only the JSON error
            which = "its latest version" if at == len(versions) - 1 else "version"
            raise ValueError(f"the record of {which}, v{version:03d}.json, is "
                             f"damaged: {exc.why}") from None
        newest = newest or (version, record)
        if not _unlabelled(record):
            # A JSON object of that version (load_record checked it); one that is not a
            # saved record is refused, with its reason, where it is located.
            return versions[: at + 1], record, passed
        passed.append(_by(version, record))
    if len(versions) == 1:
        raise ValueError(f"no final label ({passed[0]})")
    raise ValueError(f"no final label in any of its {len(versions)} versions (the latest: "
                     f"{passed[0]})")


def _normal_with_outline(version: int, record: dict, mask: np.ndarray) -> str | None:
    """Why a version cannot be exported as BUSI's layout has it, when it is labelled
    normal yet its mask outlines something; None otherwise.

    A BUSI ``normal/`` image has an empty mask: exported as it is, such a reading would
    be scored both as a lesion image and as a normal one (audit 818 F3). Which half of
    the reading is wrong only its reader can tell, so it is left out, not mended: its
    outline emptied or its label changed, an export would make up a reading. An older
    version is not taken instead, either: this one is the reader's newest word.
    """
    if record["final"]["label"] != "normal" or not mask.any():  # labelled: _locate checked
        return None
    return (f"{_by(version, record)} is labelled normal but outlines {int(mask.sum())} "
            "px: a normal image's mask is empty in BUSI's layout, so which one is the "
            "reading cannot be told (revise its label or its outline to export it)")


def _lesion_unoutlined(record: dict, outlined: bool) -> str | None:
    """The final label of a version labelled benign or malignant whose outline covers
    nothing (``outlined`` False); None for any other version."""
    final = record.get("final") if isinstance(record.get("final"), dict) else {}
    label = final.get("label")
    return label if label in ("benign", "malignant") and not outlined else None


def _unoutlined(version: int, record: dict, mask: np.ndarray) -> str | None:
    """What is said of a version labelled benign or malignant whose mask is empty, exported
    without a mask file; None for any other version.

    Its label is a reading a classifier can be scored on, so the image is exported. An
    empty mask file beside it would say "no lesion here" of an image read as a lesion,
    and train the U-Net so: with no mask file, ``models.evaluate`` scores it for its
    label only and ``models.train`` leaves it out, as they do any lesion image without a
    mask.
    """
    label = _lesion_unoutlined(record, bool(mask.any()))
    if label is None:
        return None
    return (f"{_by(version, record)} is labelled {label} but outlines nothing: exported "
            "without a mask file, so models.evaluate scores its label only and models.train "
            "leaves it out (draw its outline to export it with one)")


def unoutlined_seg(record: dict, outlined: bool) -> str | None:
    """Why a version labelled benign or malignant whose outline covers nothing
    (``outlined`` False) has no DICOM SEG; None for any other version.

    A SEG's empty lesion segment says the reader found no lesion (see
    :func:`._dicom_seg.make_dicom_seg`), the opposite of the reading, in a file meant to
    go back to the PACS. The SR still reports the label.
    """
    label = _lesion_unoutlined(record, outlined)
    if label is None:
        return None
    return (f"it is labelled {label} but outlines nothing, and a SEG of an empty lesion "
            "segment would say no lesion was found (draw its outline to have one)")


def _case_of(store: AnnotationStore, sha: str) -> str | None:
    """:func:`case_name` of an image from its newest record that can be read, for the
    line that says why it was left out; None when none can."""
    for version in reversed(store.versions(sha)):
        try:
            return case_name(store.load_record(sha, version))
        except (OSError, ValueError):
            continue
    return None


def _readers(store: AnnotationStore, sha: str, versions: list[int],
             latest: dict) -> dict[str, str]:
    """:data:`READER_COLUMNS` of an image whose exported version, the last of
    ``versions``, is ``latest``.

    ``versions`` is the listing the exported version was chosen from, not the folder
    listed again: readers save while an export runs, and a version saved after the
    chosen one would give the row the labels of another reading than its ``class``
    and ``version`` (audit 701, F5). Each reader's latest readable version with a final
    label counts; a damaged record is passed over (the latest's own damage already left
    the image out).
    """
    saves = []
    for version in versions:
        try:
            record = store.load_record(sha, version)
        except (OSError, ValueError):
            continue
        final = record.get("final") if isinstance(record.get("final"), dict) else {}
        saves.append((record.get("annotator"), final.get("label")))
    try:
        adjudicated = bool(descends_from_others(latest))
    except ValueError:
        adjudicated = False
    return reader_columns(saves, adjudicated)


def reader_columns(saves: Iterable[tuple[object, object]], adjudicated: bool) -> dict[str, str]:
    """:data:`READER_COLUMNS` of an image from what its readable versions say.

    Parameters
    ----------
    saves : iterable of (annotator, final label)
        One pair per readable version of the image, oldest first: each reader's latest
        final label counts (a version without one, or with no annotator, adds nothing).
    adjudicated : bool
        Whether the image's exported version revised another reader's version.

    Returns
    -------
    dict
        ``readers``, ``reader_labels`` (JSON ``{name: label}``), ``labels_agree``
        (``""`` with fewer than two labels, else ``yes`` or ``no``) and ``adjudicated``.

    Examples
    --------
    >>> reader_columns([("Ada", "benign"), ("Bo", "malignant"), ("Ada", "malignant")],
    ...                False)["labels_agree"]
    'yes'
    """
    labels: dict[str, str] = {}
    for annotator, label in saves:
        if label in LABELS and isinstance(annotator, str):
            labels[annotator] = label
    return {
        "readers": str(len(labels)),
        # JSON: a name may hold "; " or ": " itself, and read as two readers.
        "reader_labels": spreadsheet_cell(
            json.dumps(dict(sorted(labels.items())), ensure_ascii=False)) if labels else "",
        "labels_agree": "" if len(labels) < 2 else "yes" if len(set(labels.values())) == 1
        else "no",
        "adjudicated": "yes" if adjudicated else "no",
    }


def unresolved(columns: Mapping[str, str]) -> bool:
    """Whether :func:`reader_columns` say the readers' labels differ and nothing
    adjudicated them: the image's label is then only its last reader's.

    >>> unresolved({"labels_agree": "no", "adjudicated": "no"})
    True
    """
    return columns["labels_agree"] == "no" and columns["adjudicated"] == "no"


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def export_busi(
    data_dir, worklist_dir, out, *, with_paths: bool = False,
    index: AnnotationIndex | None = None, dicom_seg: bool = False, dicom_sr: bool = False,
) -> ExportReport:
    """Write the latest labelled version of each saved image under ``out``.

    Parameters
    ----------
    data_dir : str or os.PathLike
        The client's data directory (``SONOTRACE_DATA_DIR``).
    worklist_dir : str or os.PathLike or None
        The worklist folder the images were opened from (``SONOTRACE_WORKLIST_DIR``);
        None skips every image, as none can be read back.
    out : str or os.PathLike
        A folder that does not exist or is empty: an export never overwrites. The
        hidden staging folder an export killed outright left there is removed
        (:func:`_clear_stopped`); the data set is written into one of its own, one
        image at a time, and moved up once complete (:class:`_Staging`).
    with_paths : bool, default False
        Write each image's worklist path in ``index.csv`` (empty otherwise): for an
        export that stays where the file names may be read.
    index : AnnotationIndex, optional
        The client's index of ``data_dir``: a latest record found damaged (or not one
        the index can hold) is then marked damaged there too, so the Saved page lists it
        as such from now on, whatever its file's stamp says.
    dicom_seg : bool, default False
        Also write, for each exported image that was opened from a DICOM file, its mask
        as a DICOM SEG referring to that file (:mod:`annotation_client._dicom_seg`), in
        ``out/dicom_seg/``: for returning the readers' outlines to a PACS. The SEG
        carries the patient and study of the DICOM, so it is asked for, not made by
        default.
    dicom_sr : bool, default False
        Also write, for each such image, its outline's measurements as a DICOM SR
        (:mod:`annotation_client._dicom_sr`) at the pixel spacing its version states
        (the file's, or the one the reader set), in ``out/dicom_sr/``; a version without
        one is listed in ``no_sr``. Asked for as the SEG is, for the same reason.

    Returns
    -------
    ExportReport

    Raises
    ------
    ValueError
        If ``data_dir`` is not a folder, ``out`` holds files already (a stopped
        export's staging folder aside) or another export is writing into it, the
        worklist is or lies in ``data_dir``, ``out`` lies in the data folder or the
        worklist, or ``out`` cannot be written in (read-only, not the user's, under a
        file): nothing was written.
    OSError
        If writing failed once begun (a full disk): what was written is removed.
    """
    for name, value in (("data_dir", data_dir), ("out", out)):
        if not isinstance(value, str | os.PathLike):
            raise TypeError(f"{name} must be a path")
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise ValueError(f"data_dir: {data_dir} is not a folder")
    _check_empty(out)
    if worklist_dir is not None and not Path(worklist_dir).is_dir():
        # A mistyped one would skip every worklist image, each with the same reason.
        raise ValueError(f"worklist_dir: {worklist_dir} is not a folder")
    _check_apart(data_dir, worklist_dir, out)
    if index is not None and not isinstance(index, AnnotationIndex):
        raise TypeError("index must be an AnnotationIndex or None")
    store = AnnotationStore(data_dir, index)
    report = ExportReport()
    _clear_stopped(out)
    # Its staging folder made first: an ``out`` it cannot write in is refused before the
    # images are read.
    with _Staging(out) as staging:
        chosen = _choose(store, worklist_dir, report)
        rows = _write(store, worklist_dir, chosen, staging, report, with_paths=with_paths,
                      dicom_seg=dicom_seg, dicom_sr=dicom_sr)
        staging.finish(rows)
    # The command line prints the same summary: at DEBUG, so that it is not said twice.
    logger.debug("exported %d image(s) to %s, skipped %d", report.total, out, len(report.skipped))
    return report


def _choose(store: AnnotationStore, worklist_dir, report: ExportReport) -> list[tuple]:
    """The images to export, ``(sort key, sha, versions, record, item, passed)`` each, in
    no order; those that cannot be are listed in ``report``."""
    chosen = []
    finder = _Finder(worklist_dir, store)
    for sha in store.images():
        folder = store.folder(sha)
        try:
            versions, record, passed = _latest(store, sha)
            # Where the image is, not its pixels: those are read one image at a time as
            # it is written, or an export would hold every image it exports at once.
            item, _data = _locate(record, worklist_dir, sha, store, finder)
            try:
                item["birads"] = descriptor_columns(record["final"].get("descriptors"))
            except ValueError as exc:  # as the index refuses them
                raise ValueError(f"its descriptors: {exc}") from None
        except (OSError, ValueError) as exc:
            report.skip(folder, str(exc), case=_case_of(store, sha),
                        why="with no final label" if str(exc).startswith("no final label")
                        else "for other reasons")
            continue
        chosen.append((item["sort"], sha, versions, record, item, passed))
    return chosen


def _write(store: AnnotationStore, worklist_dir, chosen: list[tuple], staging: _Staging,
           report: ExportReport, *, with_paths: bool, dicom_seg: bool,
           dicom_sr: bool) -> list[dict]:
    """Write the ``chosen`` images (:func:`_choose`) into ``staging`` in their order, one
    at a time; the rows of their ``index.csv``."""
    rows = []
    counters = dict.fromkeys(LABELS, 0)
    for _sort, sha, versions, record, item, passed in sorted(chosen):
        version, label = versions[-1], record["final"]["label"]
        try:
            image = _read(item, worklist_dir, sha, store, keep_dicom=dicom_seg or dicom_sr)
            mask = _final_mask(store, sha, version, image["pixels"].shape[:2])
        except (OSError, ValueError) as exc:
            report.skip(store.folder(sha), str(exc), case=case_name(record))
            continue
        if (conflict := _normal_with_outline(version, record, mask)) is not None:
            report.skip(store.folder(sha), conflict, case=case_name(record),
                        why="labelled normal with an outline")
            continue
        if passed:
            report.fallbacks.append((
                case_name(record) or str(store.folder(sha)),
                f"exported {_by(version, record)}, its newest version with a final "
                f"label; passed over, without one: {', '.join(passed)}"))
        counters[label] += 1
        name = f"{label} ({counters[label]})"
        if (unoutlined := _unoutlined(version, record, mask)) is not None:
            report.unoutlined.append((f"{label}/{name}.png", unoutlined))
        dicom = _dicom_files(image.get("dicom"), mask, record, name, report,
                             seg=dicom_seg, sr=dicom_sr and (store, sha, version))
        staging.add(label, name, image["pixels"], None if unoutlined else mask, dicom)
        del image, mask, dicom  # before the next image is read: one at a time
        report.exported[label] += 1
        rows.append(
            {
                "class": label,
                "name": name,
                # One group per image file: near-duplicates across files are not
                # detected.
                "duplicate_group": sha[:16],
                "masks": 0 if unoutlined else 1,
                "sha256": sha,
                "version": version,
                # Typed by a person: a name such as =HYPERLINK(...) must not run when
                # the index is opened in a spreadsheet.
                "annotator": spreadsheet_cell(record.get("annotator", "")),
                "worklist_path": (spreadsheet_cell(item.get("path") or "") if with_paths
                                  else ""),
                "saved_at": record.get("saved_at", ""),
                **item["birads"],
                **measurement_columns(record),
                **(readers := _readers(store, sha, versions, record)),
            }
        )
        if unresolved(readers):
            report.disagreed.append((f"{label}/{name}.png", readers["reader_labels"]))
    return rows


#: The export's DICOM folders (``out/<folder>/<name><suffix>``), beside the class folders.
DICOM_FILES = {"dicom_seg": "_seg.dcm", "dicom_sr": "_sr.dcm"}


def _dicom_files(source: bytes | None, mask: np.ndarray, record: dict, name: str,
                 report: ExportReport, *, seg: bool, sr) -> dict[str, bytes]:
    """``{folder: file}`` of the DICOM SEG (with ``seg``) and SR (with ``sr``, the
    version's ``(store, sha, version)``, whose outlines say its lesions) of an exported
    version, for those its image, a DICOM, can have (none for a PNG or JPEG: ``source``
    None); a DICOM that cannot have one is listed in ``report.no_seg`` or
    ``report.no_sr``, with why."""
    files: dict[str, bytes] = {}
    if source is None:
        return files
    if seg:
        try:
            files["dicom_seg"] = _seg_of(source, mask, record)
            report.segs += 1
        except SegUnavailable as exc:
            report.no_seg.append((name, str(exc)))
    if sr:
        try:
            files["dicom_sr"] = _sr_of(source, mask, record, _version_outlines(*sr, mask.shape))
            report.srs += 1
        except SrUnavailable as exc:
            report.no_sr.append((name, str(exc)))
    return files


def _seg_of(source: bytes, mask: np.ndarray, record: dict) -> bytes:
    """The DICOM SEG of a saved version's ``mask`` over its DICOM file ``source``, named
    as :func:`_named` says (SegUnavailable when it cannot be, or would contradict its
    label: :func:`unoutlined_seg`)."""
    why = unoutlined_seg(record, bool(mask.any()))
    if why is not None:
        raise SegUnavailable(why)
    return make_dicom_seg(source, mask, **_named(record))


def _sr_of(source: bytes, mask: np.ndarray, record: dict, outlines=None) -> bytes:
    """The DICOM SR of a saved version's ``mask`` over its DICOM file ``source``, at the
    pixel spacing its record states, named as its SEG is (:func:`_named`), its lesions
    those of its drawn ``outlines`` (:func:`_version_outlines`), with its BI-RADS
    descriptors and assessment.

    Raises
    ------
    NoPixelSpacing
        The record states no pixel spacing (neither the file nor the reader gave one).
    SrUnavailable
        Its spacing is not one, it has nothing to report (an empty outline with neither
        a label nor a BI-RADS descriptor), its descriptors are outside the lexicon, or
        the DICOM cannot have an SR.
    """
    spacing = _record_spacing(record)
    try:
        # Without a spacing too: what the DICOM itself refuses (several frames) is said
        # first, as a spacing set would not lift it.
        return make_dicom_sr(source, mask, spacing, outlines=outlines,
                             descriptors=record["final"].get("descriptors"),
                             model_outline=_as_offered(record, mask), **_named(record))
    except NoPixelSpacing:
        raise NoPixelSpacing(NO_SPACING) from None


def _as_offered(record: dict, mask: np.ndarray) -> np.ndarray | None:
    """The model's outline as offered to a saved version's reader, as far as its record
    tells it (the SR's ``model_outline``, ``(H, W)`` bool like ``mask``): its ``mask``
    when the record says it was saved as offered (``agreement.edited`` False), so each
    lesion is the model's; else the outline it keeps as offered
    (``agreement.offered_paths``) rasterised, so a lesion left untouched is the model's;
    else None.

    Records saved before ``offered_paths`` was kept, or whose paths cannot be read,
    tell no lesion left untouched from one edited a pixel: none is said to be the
    model's. A report may so call the reader's a lesion the model outlined, which the
    reader saved as their reading; never the model's one the reader drew or edited.
    """
    agreement = record.get("agreement") if isinstance(record.get("agreement"), dict) else {}
    if agreement.get("edited") is False:
        return mask
    paths = agreement.get("offered_paths")
    if agreement.get("edited") is not True or not isinstance(paths, list) or not all(
            isinstance(p, str) for p in paths):
        return None
    try:
        return _shapes.paths_to_mask(paths, mask.shape)
    except ValueError as exc:
        logger.info("a record's offered outline cannot be read (%s): no lesion is the "
                    "model's", exc)
        return None


#: Why a saved version with an outline has no SR when its record states no spacing.
NO_SPACING = ("its version states no pixel spacing (neither its DICOM file nor the reader "
              "gave one), so its measurements would have no unit: open it, set the pixel "
              "spacing and save it again")


def _record_spacing(record: dict):
    """The pixel spacing a saved ``record`` states, ``(row_mm, col_mm)`` or None, checked
    as the measurements check it (as the record's was when it was saved).

    Raises
    ------
    SrUnavailable
        It states one that is none (out of range, not two numbers).
    """
    image = record.get("image") if isinstance(record.get("image"), dict) else {}
    spacing = image.get("pixel_spacing_mm")
    try:
        return _check_spacing(spacing)
    except (TypeError, ValueError) as exc:
        raise SrUnavailable(f"its record's pixel spacing {spacing!r} is not one: {exc}") from None


def sr_refusal(store: AnnotationStore, image_sha256: str, version: int,
               record: dict) -> NoVersionDicom | None:
    """Why :func:`version_sr` would refuse a saved version for what its ``record``
    states, its DICOM's header aside; None when the record stops no SR.

    The Saved page's *SR* link follows it, not the index's columns: the route reads the
    record, so the page reads it too, and checks it with the route's own rules: the
    pixel spacing as :func:`_record_spacing` checks it, then the final label, the BI-RADS
    descriptors and whether the outline covers anything by
    :func:`._dicom_sr.check_reportable`. Whether it
    does, the record states (``final.empty``, which ``build_record`` derived from the
    mask the route reads); a record that does not say is answered by that mask, read as
    the route reads it. What the DICOM's header refuses is
    :func:`._dicom_seg.header_refusal`'s to say.

    Parameters
    ----------
    store : AnnotationStore
        The client's data folder.
    image_sha256 : str
        The image's SHA-256.
    version : int
        The saved version.
    record : dict
        Its record, as :meth:`AnnotationStore.load_record` read it.

    Returns
    -------
    NoVersionDicom or None
        With the route's reason (``no_spacing``, ``sr_unavailable``, or
        ``outline_unavailable`` and ``image_unavailable`` for a record or an outline
        the route cannot read, which refuse its SEG too) and words.
    """
    final, image = record.get("final"), record.get("image")
    if not isinstance(final, dict) or not isinstance(image, dict):
        return NoVersionDicom("image_unavailable",
                              "its image cannot be read back: its record is not a saved record")
    try:
        spacing = _record_spacing(record)
        check_reportable(_outlined(store, image_sha256, version, record),
                         _named(record)["label"], spacing, final.get("descriptors"))
    except NoPixelSpacing:
        return NoVersionDicom("no_spacing", NO_SPACING)
    except SrUnavailable as exc:
        return NoVersionDicom("sr_unavailable", str(exc))
    except NoVersionDicom as exc:
        return exc
    return None


def _outlined(store: AnnotationStore, sha: str, version: int, record: dict) -> bool:
    """Whether a saved version's outline covers any pixel: as its record says, else as
    its mask, read as the export reads it, does (NoVersionDicom when it cannot be)."""
    empty = record["final"].get("empty")
    if isinstance(empty, bool):
        return not empty
    try:
        shape = (int(record["image"]["height"]), int(record["image"]["width"]))
        return bool(_final_mask(store, sha, version, shape).any())
    except (KeyError, TypeError, OSError, ValueError) as exc:
        raise NoVersionDicom("outline_unavailable",
                             f"its outline cannot be read: {exc}") from None


def _named(record: dict) -> dict:
    """Who and what a saved version's SEG and SR name: ``label`` (its final label, None
    without one), ``annotator`` and ``model`` (``(name, version)`` when its outline
    started from the model's: the model outlined the image and the two overlap)."""
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    segmentation = model.get("segmentation")
    ai = record.get("ai") if isinstance(record.get("ai"), dict) else {}
    agreement = record.get("agreement") if isinstance(record.get("agreement"), dict) else {}
    dice = agreement.get("dice_ai_vs_final")
    # Started from the model's outline: it outlined the image and the two overlap.
    overlap = isinstance(dice, int | float) and not isinstance(dice, bool) and dice > 0
    started = (str(segmentation.get("name")), str(segmentation.get("version"))) if (
        ai.get("segmented") and overlap and isinstance(segmentation, dict)
        and segmentation.get("name")
    ) else None
    annotator = record.get("annotator")
    label = record["final"].get("label")  # None without one (the export's all have one)
    return {"label": label if label in LABELS else None, "model": started,
            "annotator": annotator if isinstance(annotator, str) else None}


class NoVersionDicom(ValueError):
    """A saved version has no DICOM SEG or SR: :attr:`reason` says which kind of why, the
    message says why, for the reader.

    ``reason`` is ``"damaged"`` (its record cannot be read), ``"image_unavailable"``
    (its image cannot be read back: not kept, not in the worklist, changed),
    ``"not_dicom"`` (a PNG or JPEG), ``"outline_unavailable"`` (its mask and outline
    are missing, unreadable or disagree), ``"seg_unavailable"`` (the DICOM cannot
    have a SEG: several frames, no UIDs; :class:`SegUnavailable`), ``"no_spacing"`` (the
    SR's only: the version states no pixel spacing; :class:`NoPixelSpacing`) or
    ``"sr_unavailable"`` (the DICOM cannot have an SR, or the outline is empty;
    :class:`SrUnavailable`).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def version_seg(store: AnnotationStore, worklist_dir, image_sha256: str,
                version: int) -> bytes:
    """The DICOM SEG the export writes for one saved version (``dicom_seg``).

    The image is read back as the export reads it (the worklist file, checked by its
    hash and found by it when moved, or the kept copy of an upload), the mask is the
    export's (checked against the version's outline), and the SEG is made from them
    with the version's annotator, final label and model: the same file, with the same
    content-derived UIDs, as ``python -m annotation_client.export --dicom-seg`` writes
    for that version. A version without a final label, which the export leaves out,
    gets one too (its content description names no label).

    Parameters
    ----------
    store : AnnotationStore
        The client's data folder.
    worklist_dir : str or os.PathLike or None
        The worklist folder (``SONOTRACE_WORKLIST_DIR``); None reads worklist images
        back from nowhere.
    image_sha256 : str
        The image's SHA-256, as its folder is named.
    version : int
        The saved version.

    Returns
    -------
    bytes
        The SEG as a DICOM Part 10 file.

    Raises
    ------
    FileNotFoundError
        The version has no record (never saved, or removed).
    NoVersionDicom
        No SEG can be made for it; its ``reason`` says which kind of why.
    """
    record, source, mask = _version_source(store, worklist_dir, image_sha256, version,
                                           "a DICOM SEG")
    try:
        return _seg_of(source, mask, record)
    except SegUnavailable as exc:
        raise NoVersionDicom("seg_unavailable", str(exc)) from None


def version_sr(store: AnnotationStore, worklist_dir, image_sha256: str,
               version: int) -> bytes:
    """The DICOM SR the export writes for one saved version (``dicom_sr``).

    Read back as :func:`version_seg` reads it, and made at the pixel spacing the
    version's record states, named as its SEG is: the same report, with the same
    content-derived UIDs, as ``python -m annotation_client.export --dicom-sr`` writes
    for that version (and, for a version without a final label, one naming none).

    Parameters are :func:`version_seg`'s.

    Returns
    -------
    bytes
        The SR as a DICOM Part 10 file.

    Raises
    ------
    FileNotFoundError
        The version has no record (never saved, or removed).
    NoVersionDicom
        No SR can be made for it; its ``reason`` says which kind of why (``no_spacing``
        when the version states no pixel spacing).
    """
    record, source, mask = _version_source(store, worklist_dir, image_sha256, version,
                                           "a DICOM SR")
    try:
        return _sr_of(source, mask, record,
                      _version_outlines(store, image_sha256, version, mask.shape))
    except NoPixelSpacing as exc:
        raise NoVersionDicom("no_spacing", str(exc)) from None
    except SrUnavailable as exc:
        raise NoVersionDicom("sr_unavailable", str(exc)) from None


def _version_outlines(store: AnnotationStore, sha: str, version: int,
                      shape: tuple[int, int]) -> list[str] | None:
    """A saved version's drawn outlines (its SVG's region paths), which say which pieces
    of its mask are one lesion (:func:`annotation_client._dicom_sr.dicom_sr`); None when
    its SVG cannot be read (each region is then a lesion)."""
    try:
        return _shapes.svg_to_paths(store.load_svg(sha, version), shape[1], shape[0])
    except (OSError, ValueError) as exc:
        logger.info("%s v%03d: its outlines cannot be read (%s); each region is a lesion",
                    sha[:12], version, exc)
        return None


def _version_source(store: AnnotationStore, worklist_dir, image_sha256: str, version: int,
                    what: str) -> tuple[dict, bytes, np.ndarray]:
    """``(record, DICOM file, mask)`` of one saved version, read back as the export
    reads them, for ``what`` (``"a DICOM SEG"``) to be made of.

    Raises
    ------
    FileNotFoundError
        The version has no record.
    NoVersionDicom
        Its record is damaged, its image cannot be read back or is no DICOM, or its
        outline cannot be read.
    """
    try:
        record = store.load_record(image_sha256, version)
    except DamagedRecord as exc:
        raise NoVersionDicom("damaged", f"the record of version {version} is damaged: "
                                        f"{exc.why}") from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NoVersionDicom("damaged", f"the record of version {version} cannot be read "
                                        f"({exc.strerror or type(exc).__name__})") from None
    try:
        item = _source(record, worklist_dir, image_sha256, store, keep_dicom=True,
                       labelled=False)
    except ValueError as exc:
        # A damaged kept copy is named by its file, not its folder: the data folder's
        # path is the log's, not a reader's.
        why = str(exc).replace(str(store.folder(image_sha256)) + os.sep, "")
        raise NoVersionDicom("image_unavailable",
                             f"its image cannot be read back: {why}") from None
    except OSError as exc:
        raise NoVersionDicom("image_unavailable", "its image cannot be read back "
                             f"({exc.strerror or type(exc).__name__})") from None
    source = item.get("dicom")
    if source is None:
        raise NoVersionDicom("not_dicom", f"its image is not a DICOM file ({what} refers "
                                          "to a DICOM image)")
    try:
        mask = _final_mask(store, image_sha256, version, item["pixels"].shape[:2])
    except (OSError, ValueError) as exc:
        raise NoVersionDicom("outline_unavailable",
                             f"its outline cannot be read: {exc}") from None
    return record, source, mask


def measurement_columns(record: dict) -> dict[str, str]:
    """:data:`MEASUREMENT_COLUMNS` of a saved record, "" for what it does not state.

    >>> measurement_columns({"measurements": {"area_px": 120.0, "largest": {
    ...     "max_diameter_px": 15.5}}})["long_axis_px"]
    '15.5'
    """
    measurements = record.get("measurements")
    measurements = measurements if isinstance(measurements, dict) else {}
    largest = measurements.get("largest")
    largest = largest if isinstance(largest, dict) else {}
    image = record.get("image")
    spacing = image.get("pixel_spacing_mm") if isinstance(image, dict) else None
    if not (isinstance(spacing, list | tuple) and len(spacing) == 2):
        spacing = (None, None)

    def number(value) -> str:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return f"{value:.6g}" if ok and np.isfinite(value) else ""

    return {
        "area_px": number(measurements.get("area_px")),
        "area_mm2": number(measurements.get("area_mm2")),
        "long_axis_px": number(largest.get("max_diameter_px")),
        "long_axis_mm": number(largest.get("max_diameter_mm")),
        "perpendicular_axis_px": number(largest.get("perpendicular_diameter_px")),
        "perpendicular_axis_mm": number(largest.get("perpendicular_diameter_mm")),
        "pixel_spacing_row_mm": number(spacing[0]),
        "pixel_spacing_col_mm": number(spacing[1]),
    }


#: The name an export's hidden staging folder in ``out`` starts with.
STAGING_PREFIX = ".partial-"

#: The file that says a staging folder is an export's, held locked (``flock``) by the
#: export writing there for as long as it runs. The kernel drops the lock when the process
#: ends, however it ends (SIGKILL, out of memory), so the next export into the folder tells
#: the staging folder of a stopped export, which it removes, from one still being written.
STAGING_MARK = ".sonotrace-export"

_MARK_TEXT = b"SonoTrace export staging folder; the next export into this folder removes it\n"

#: The file in a staging folder that lists, one name a line, the entries :meth:`_Staging.finish`
#: is moving up into ``out``. Written before the first is moved and removed after the
#: last: an export killed in between leaves it, and the next export into ``out`` removes
#: the entries it names that are no longer in the staging folder (those moved up), with
#: the folder, so that no half-moved data set stays in ``out`` to be trained on.
STAGING_MOVES = ".sonotrace-moving"


#: The errors of making ``out`` or a folder in it that say it is not a folder that can be
#: written in (read-only, not the user's, under a file): a refusal of what was asked
#: (ValueError), where a full disk is a failure of the run (OSError).
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOENT,
                         errno.ELOOP, errno.ENAMETOOLONG})


class _Staging:
    """The hidden folder in ``out`` an export writes its data set into, one image at a
    time (:meth:`add`), and moves up once all are written (:meth:`finish`): all or nothing.

    A full disk or a read-only target leaves no half data set that a training or an
    evaluation could be pointed at, nor one that would block the export run again: when
    the ``with`` block fails, what was written is removed, and ``out`` too if it was made
    here and is still empty (another export into the same new folder may have finished
    in it meanwhile, and said so). A process killed outright cleans nothing up: its
    folder keeps its mark (:data:`STAGING_MARK`), no longer locked, for the next export
    into ``out`` to remove (:func:`_clear_stopped`), with what it had moved up into ``out``
    when it was killed while moving (:data:`STAGING_MOVES`). ``out`` itself is used as it is (an
    empty mount point, a link to a folder, ``.``: its owner and mode kept), or made when
    missing.
    """

    def __init__(self, out: Path) -> None:
        self.out, self.made, self.moved = out, False, []
        self.folder: Path | None = None
        self._mark = None  # the locked mark, open until finish() or the clean-up

    def __enter__(self) -> _Staging:
        # Made by this call, or there already: decided by the mkdir itself, not by a look
        # before it, or two exports into one new folder could both take it for their own.
        try:
            try:
                self.out.mkdir(parents=True)
                self.made = True
            except FileExistsError:
                pass
            self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.out))
            self._mark = open(self.folder / STAGING_MARK, "xb")  # noqa: SIM115 (held open)
        except OSError as exc:
            self._clean_up()
            if exc.errno not in _UNWRITABLE:
                raise  # a full disk: a failure of the run, not of what was asked
            where = f" ({exc.filename})" if str(exc.filename or self.out) != str(
                self.out) else ""
            # Before any image is read: the folder asked for is not one it can write in.
            raise ValueError(f"out: {self.out} cannot be written in ({exc.strerror or exc}"
                             f"{where}); nothing was written") from None
        except BaseException:
            self._clean_up()
            raise
        try:
            # Locked before it says what it is: one that says so unlocked is a stopped one.
            try:
                fcntl.flock(self._mark.fileno(), fcntl.LOCK_EX)
            except OSError as exc:  # no locks here: said nothing, it is never taken for one
                logger.info("%s cannot be locked (%s): if this export is stopped before it "
                            "finishes, the next one will not remove it", self.folder.name,
                            exc.strerror or exc)
            else:
                self._mark.write(_MARK_TEXT)
                self._mark.flush()
        except BaseException:
            self._clean_up()
            raise
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self._mark is not None or self.folder is not None:  # not finished
            self._clean_up()

    def add(self, label: str, name: str, pixels: np.ndarray, mask: np.ndarray | None,
            dicom: Mapping[str, bytes]) -> None:
        """Write one exported image, its mask (none for ``mask`` None) and its DICOM files
        (``{folder: file}``)."""
        target = self.folder / label
        target.mkdir(exist_ok=True)
        (target / f"{name}.png").write_bytes(_png(pixels))
        if mask is not None:
            (target / f"{name}_mask.png").write_bytes(vectorizer.mask_to_png(mask))
        for folder, data in dicom.items():
            # Beside the class folders, not in them: a data set's loader reads those.
            (self.folder / folder).mkdir(exist_ok=True)
            (self.folder / folder / f"{name}{DICOM_FILES[folder]}").write_bytes(data)

    def finish(self, rows: list[dict]) -> None:
        """Write ``index.csv`` of ``rows`` and move everything up into ``out``.

        Raises
        ------
        OSError
            Whatever stopped it (FileExistsError when an entry of the data set's name
            came into ``out`` meanwhile); the ``with`` block then removes all it wrote.
        """
        if rows:
            with open(self.folder / "index.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=INDEX_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        entries = [e for e in self.folder.iterdir() if e.name != STAGING_MARK]
        # index.csv last: a data set with an index is a complete one.
        entries.sort(key=lambda e: e.name == "index.csv")
        # Said before the first move, and on disk (fsync), so that whatever stops the
        # moves, the next export tells what of ``out`` this one had moved up.
        with open(self.folder / STAGING_MOVES, "x", encoding="utf-8") as moves:
            moves.write("".join(f"{entry.name}\n" for entry in entries))
            moves.flush()
            os.fsync(moves.fileno())
        for entry in entries:
            final = self.out / entry.name
            if final.exists():  # something came into the folder since it was checked
                raise FileExistsError(errno.EEXIST, "appeared in the output folder meanwhile",
                                      str(final))
            entry.rename(final)
            self.moved.append(final)
        # The list first: a folder left with its mark alone is of an export that finished.
        (self.folder / STAGING_MOVES).unlink()
        (self.folder / STAGING_MARK).unlink()
        self.folder.rmdir()
        self.folder = None
        self._mark.close()
        self._mark = None

    def _clean_up(self) -> None:
        """Remove what was written, moved up or not; and ``out`` if made here and empty."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        for final in self.moved:
            shutil.rmtree(final, ignore_errors=True) if final.is_dir() else final.unlink()
        if self._mark is not None:
            self._mark.close()
            self._mark = None
        if self.made:
            # Only if empty: what another run wrote into it is that run's.
            with contextlib.suppress(OSError):
                self.out.rmdir()


def _staging_state(entry: Path, *, remove: bool = False) -> tuple[str, list[str]]:
    """What an entry of ``out`` is to an export: ``"stopped"``, the staging folder of an
    export that ended before it finished (removed with ``remove``); ``"running"``, that
    of an export still writing; else ``"other"``, not the export's to touch (the user's
    files, or a ``.partial-*`` folder without the mark: an older release's, or one this
    instant being made). With it, the names of the entries of ``out`` a stopped export
    had moved up there when it was stopped (:data:`STAGING_MOVES`), removed with
    ``remove`` too.

    Only a folder named ``.partial-*`` whose :data:`STAGING_MARK` says it is an export's
    and is not locked is a stopped export's: the lock is held by the export writing there
    and the kernel drops it with its process, however it ends.
    """
    if not entry.name.startswith(STAGING_PREFIX) or entry.is_symlink() or not entry.is_dir():
        return "other", []
    try:
        # Not a FIFO's endless wait, nor a link out of the folder.
        fd = os.open(entry / STAGING_MARK, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "other", []
    with open(fd, "rb") as mark:
        if not stat.S_ISREG(os.fstat(mark.fileno()).st_mode):
            return "other", []
        try:
            fcntl.flock(mark.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "running", []
        except OSError:  # no locks on this file system: nothing can be told
            return "other", []
        if mark.read(len(_MARK_TEXT) + 1) != _MARK_TEXT:
            return "other", []
        moved = _moved_up(entry)
        if remove:
            # Under the lock, so that no other export takes it meanwhile; what it moved up
            # first, and the mark and the list of moves last, so that a removal cut short
            # is finished by the next export.
            for name in moved:
                _remove(entry.parent / name)
            for child in entry.iterdir():
                if child.name not in (STAGING_MARK, STAGING_MOVES):
                    _remove(child)
            _remove(entry / STAGING_MOVES)
            (entry / STAGING_MARK).unlink()
            entry.rmdir()
        return "stopped", moved


def _moved_up(staging: Path) -> list[str]:
    """The entries of ``out`` that the stopped export of ``staging`` had moved up into
    it: those its :data:`STAGING_MOVES` names that are in ``out`` and no longer in
    ``staging``; none when it had not begun moving."""
    try:
        with open(staging / STAGING_MOVES, encoding="utf-8") as moves:
            names = moves.read().splitlines()
    except FileNotFoundError:
        return []
    # Only the names a data set has: the list is not a way to name anything else.
    return sorted(name for name in names
                  if name and os.sep not in name and name not in (".", "..")
                  and not name.startswith(".")
                  and os.path.lexists(staging.parent / name)
                  and not os.path.lexists(staging / name))


def _remove(path: Path) -> None:
    """Remove a file or a folder with all it holds (a link, not what it points to); none
    there is nothing to do."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _entries(out: Path) -> list[Path]:
    """The entries of the folder ``out``.

    Raises
    ------
    ValueError
        When ``out`` cannot be listed (not the user's, mode 0700): a refusal of what was
        asked, exit 2, as a folder it cannot write in (:data:`_UNWRITABLE`); listed
        before :class:`_Staging` makes its folder, so that error would come first.
    """
    try:
        return list(out.iterdir())
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise ValueError(f"out: {out} cannot be read ({exc.strerror or exc}); nothing "
                         "was written") from None


def _check_empty(out: Path) -> None:
    """Refuse an ``out`` that exists and is not an empty folder, but for the staging
    folders of stopped exports (:func:`_staging_state`), which :func:`_clear_stopped`
    removes.

    Raises
    ------
    ValueError
        Saying what is there that ``ls`` does not show (hidden entries), or that
        another export is writing into ``out``.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"out: {out} exists and is not an empty folder; nothing was written")
    states, moved_up = {}, []
    for entry in _entries(out):
        states[entry.name], moved = _staging_state(entry)
        moved_up += moved
    # After the loop: listed after the staging folder that names it, an entry it had
    # moved up would be taken for the user's (the order of a listing is the file
    # system's).
    states.update(dict.fromkeys(moved_up, "stopped"))
    _refuse_unless_stopped(out, states)


def _clear_stopped(out: Path) -> None:
    """Remove the staging folders that exports stopped before they finished (killed, out
    of memory) left in ``out``; refuse as :func:`_check_empty` does if anything else is
    there now."""
    if not out.is_dir():
        return
    states = {}
    # Listed first: a stopped export's entries moved up are gone before the loop is at
    # them, once the staging folder that names them is removed.
    for entry in _entries(out):
        if states.get(entry.name) == "stopped":
            continue  # moved up by a stopped export whose staging folder removed it
        try:
            states[entry.name], moved = _staging_state(entry, remove=True)
        except OSError as exc:
            raise ValueError(
                f"out: {out} holds {entry.name}, the staging folder of an export that was "
                f"stopped before it finished, and it could not be removed "
                f"({exc.strerror or exc}); nothing was written") from None
        states.update(dict.fromkeys(moved, "stopped"))
        if states[entry.name] == "stopped":
            also = f", and {', '.join(moved)}, which it had moved up" if moved else ""
            logger.info("removed %s from %s: the staging folder of an export that was stopped "
                        "before it finished%s", entry.name, out, also)
    _refuse_unless_stopped(out, states)


def _refuse_unless_stopped(out: Path, states: Mapping[str, str]) -> None:
    """Refuse ``out`` unless all its entries (``{name: state}`` of
    :func:`_staging_state`) are staging folders of stopped exports, naming the hidden
    ones, which ``ls`` does not show."""
    running = sorted(name for name, state in states.items() if state == "running")
    if running:
        raise ValueError(f"out: {out} is being written by another export (its staging "
                         f"folder {running[0]}); nothing was written")
    if all(state == "stopped" for state in states.values()):
        return
    hidden = sorted(name for name in states if name.startswith("."))
    said = ""
    if hidden:
        # `ls` shows none of them: "not empty" would read as false.
        listed = ", ".join(hidden[:3]) + (f" and {len(hidden) - 3} more" if len(hidden) > 3
                                          else "")
        said = f" (it holds {listed}, which ls does not show"
        if any(name.startswith(STAGING_PREFIX) for name in hidden):
            said += (f"; a {STAGING_PREFIX}* folder an export stopped midway left can be "
                     "removed once no export is running")
        said += ")"
    raise ValueError(f"out: {out} exists and is not an empty folder{said}; nothing was written")


#: The most pixels a version's mask and the raster of its outline may differ by, as a
#: share of their union. The client writes both from one outline, and they agree
#: exactly; a mask restored from another backup, or edited by a tool, does not.
MASK_OUTLINE_SLACK = 0.01


def _final_mask(store: AnnotationStore, sha: str, version: int,
                shape: tuple[int, int]) -> np.ndarray:
    """A version's final mask, ``(H, W)`` bool, checked against its outline.

    The export makes training and scoring data, so the PNG mask is not taken on
    trust: it must agree with the raster of the version's SVG outline (the edited
    geometry the Annotate page loads), within :data:`MASK_OUTLINE_SLACK`. A missing
    PNG is made again from the outline; a missing outline leaves the PNG alone to
    say it.

    Raises
    ------
    ValueError
        Neither file is there, one cannot be read, its size is not the image's, or
        the two disagree.
    """
    stem = f"v{version:03d}"
    folder = store.folder(sha)
    mask = outline = None
    with contextlib.suppress(FileNotFoundError):
        mask = vectorizer.png_to_mask((folder / f"{stem}_mask.png").read_bytes())
    with contextlib.suppress(FileNotFoundError):
        outline = vectorizer.svg_to_mask((folder / f"{stem}.svg").read_bytes(), shape)
    if mask is None and outline is None:
        raise ValueError(_neither(stem))
    if mask is None:
        logger.info("%s: %s_mask.png is missing; its mask is made from %s.svg", sha[:12],
                    stem, stem)
        return outline
    if mask.shape != shape:
        raise ValueError(f"its mask is {mask.shape}, the image {shape}")
    if outline is not None:
        differ = int(np.count_nonzero(mask ^ outline))
        if differ > MASK_OUTLINE_SLACK * np.count_nonzero(mask | outline):
            raise ValueError(
                f"{stem}_mask.png ({np.count_nonzero(mask)} px) and the outline of {stem}.svg "
                f"({np.count_nonzero(outline)} px) differ in {differ} pixels: which one is "
                "the reading cannot be told")
    return mask


def _neither(stem: str) -> str:
    return f"neither {stem}_mask.png nor {stem}.svg is there"


def outline_refusal(store: AnnotationStore, image_sha256: str,
                    version: int) -> NoVersionDicom | None:
    """The SEG and SR routes' refusal (``outline_unavailable``) of a saved version whose
    outline and mask files are both gone, told by a stat of each
    (:meth:`AnnotationStore.missing_files`); None when either is there (whether it
    reads, and agrees with the other, only reading them tells)."""
    if len(store.missing_files(image_sha256, version)) < 2:
        return None
    return NoVersionDicom("outline_unavailable",
                          f"its outline cannot be read: {_neither(f'v{version:03d}')}")


def _check_apart(data_dir: Path, worklist_dir, out: Path) -> None:
    """Refuse folders that overlap as the client refuses them, and an export into either."""
    data = Path(os.path.realpath(data_dir))
    worklist = None if worklist_dir is None else Path(os.path.realpath(worklist_dir))
    if worklist is not None and worklist.is_relative_to(data):
        # As the client's configuration refuses it: a worklist there holds every
        # reader's masks and kept uploads, which are not images to export.
        raise ValueError(f"worklist_dir: {worklist_dir} is in the data folder {data_dir}")
    target = Path(os.path.realpath(out))
    for name, folder in (("the data folder", data), ("the worklist", worklist)):
        if folder is not None and target.is_relative_to(folder):
            # Its images and masks would be listed as worklist images to annotate, or
            # sit among the saved versions; nothing was written yet.
            raise ValueError(f"out: {out} is in {name}; export to a folder outside it")


class _Finder:
    """Worklist files by their SHA-256, the folder walked once and only if asked."""

    def __init__(self, worklist_dir, store: AnnotationStore) -> None:
        self.worklist_dir, self.store = worklist_dir, store
        self._found: dict[str, str] | None = None

    def __call__(self, sha: str) -> str | None:
        """The relative path of a worklist file holding ``sha``, or None."""
        if self._found is None:
            # Every image's hash is wanted: an export reads many, and one walk finds all.
            self._found = holders(self.worklist_dir, self.store.images(),
                                  data_dir=self.store.root)
        return self._found.get(sha)


def _source(record: dict, worklist_dir, sha: str, store: AnnotationStore,
            finder: _Finder | None = None, keep_dicom: bool = False,
            labelled: bool = True) -> dict:
    """The image behind a record, read back from the worklist or the kept copy, checked by
    hash (:func:`_locate`, then :func:`_read`); with ``keep_dicom``, a DICOM file's bytes
    too (``"dicom"``). With ``labelled`` (the export's data set), a record without a final
    label is refused."""
    item, data = _locate(record, worklist_dir, sha, store, finder, labelled)
    return {**item, **_read(item, worklist_dir, sha, store, keep_dicom=keep_dicom, data=data)}


def _locate(record: dict, worklist_dir, sha: str, store: AnnotationStore,
            finder: _Finder | None = None, labelled: bool = True) -> tuple[dict, bytes | None]:
    """Where the image behind a record is read back from, and the bytes read to tell it.

    Returns
    -------
    (dict, bytes or None)
        ``{"sort", "path"}`` for a worklist file (``path`` the one holding the annotated
        bytes, found by its hash when the record's no longer does) and its bytes; or
        ``{"sort", "kept"}`` for the copy kept of an upload, not read yet (None).

    Raises
    ------
    ValueError
        The record is not a saved one, has no final label (with ``labelled``), or no
        file holds its image.
    """
    final = record.get("final")
    image = record.get("image")
    if not isinstance(final, dict) or not isinstance(image, dict):
        raise ValueError("its record is not a saved record")
    if labelled and final.get("label") not in LABELS:
        raise ValueError("no final label")
    relative = image.get("worklist_path")
    if not relative:
        kept = store.source_path(sha)
        found = None if kept is not None or worklist_dir is None else (
            (finder or _Finder(worklist_dir, store))(sha))
        if found is not None:
            # The kept copy is gone (pruned), but a worklist file holds the same bytes.
            relative = found
        elif kept is None:
            raise ValueError("uploaded, not opened from the worklist: the image was not kept, "
                             "and no worklist file holds it")
        else:
            # Uploads have no path; their names sort them after the worklist's, by name.
            return {"sort": "~" + str(image.get("name") or sha), "kept": kept.name}, None
    if worklist_dir is None:
        raise ValueError(f"from the worklist ({relative}), but no worklist folder is set")
    finder = _Finder(worklist_dir, store) if finder is None else finder
    try:
        path = resolve_entry(worklist_dir, relative, data_dir=store.root)
        data = path.read_bytes()
        why = None if hashlib.sha256(data).hexdigest() == sha else "holds other bytes"
    except FileNotFoundError:
        why = "is gone"
    if why is not None:
        # Renamed or moved since, or re-exported under the same name: the file that
        # holds the annotated bytes, wherever it is now.
        found = finder(sha)
        if found is None:
            raise ValueError(
                f"from the worklist ({relative}), which {why}, and no worklist file holds "
                "the annotated image (by path or by its SHA-256)"
            )
        logger.info("%s %s: exporting %s, which holds the annotated image", relative, why,
                    found)
        relative = found
        data = resolve_entry(worklist_dir, relative, data_dir=store.root).read_bytes()
        # Before decoding: a file changed since it was hashed is reported as changed.
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"{relative} has changed since it was annotated")
    # "path": where the image was read, which the index gives (the record's path may
    # name a file renamed since, or another file now).
    return {"sort": relative, "path": relative}, data


def _read(item: dict, worklist_dir, sha: str, store: AnnotationStore, *,
          keep_dicom: bool = False, data: bytes | None = None) -> dict:
    """``{"pixels"}`` (and ``"dicom"``, with ``keep_dicom``, for a DICOM file) of the image
    :func:`_locate` found, from ``data`` when given, else read again; checked by hash
    either way, as the file may have changed since it was located.

    Raises
    ------
    ValueError
        It cannot be decoded, or no longer holds the image (changed, damaged, gone).
    """
    if "kept" in item:
        data = store.load_source(sha) if data is None else data  # damaged: a ValueError
        decoded = decode_image(data, item["kept"])
        return {"pixels": decoded.pixels, **_dicom_of(decoded, keep_dicom)}
    relative = item["path"]
    try:
        path = resolve_entry(worklist_dir, relative, data_dir=store.root)
        data = path.read_bytes() if data is None else data
    except FileNotFoundError:
        raise ValueError(f"{relative} was removed while the export ran") from None
    # Before decoding: a file changed since it was located is reported as changed.
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"{relative} has changed since it was annotated")
    decoded = decode_image(data, path.name)  # ImageDecodeError is a ValueError
    return {"pixels": decoded.pixels, **_dicom_of(decoded, keep_dicom)}


def _dicom_of(decoded, keep: bool) -> dict:
    return {"dicom": decoded.data} if keep and decoded.kind == "dicom" else {}
