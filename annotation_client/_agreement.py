"""Agreement between readers who outlined and labelled the same images.

After a blinded read (:mod:`annotation_client._readers`), or whenever two
radiologists annotated the same images, whoever runs the study asks how far the
readers agree: how much their outlines overlap and how often their final labels
match, beyond chance. Each reader's read of an image is their highest saved
version of it that does not descend from another reader's saved work (*Load it to
revise*; the record's ``based_on``); images with fewer than two such reads do not
count.

- **Outlines:** the Dice coefficient of each pair of readers' saved masks of the
  same image. Two empty masks agree (both found no lesion): Dice 1; how many
  pairs were both empty is reported beside the mean, which they pull towards 1.
- **Labels:** for each pair of readers of an image that both gave a final label,
  whether the labels match; the share is over those pairs, so an image read by
  three readers weighs three pairs. Beyond chance: Fleiss' kappa over all
  readers (Fleiss 1971: the mean over images of each image's share of agreeing
  rater pairs, against chance from the labels' pooled shares; with a varying
  number of labels per image, each image still weighs the same, which is the
  usual extension and equals Fleiss' own when every image has as many), and for
  each pair of readers, Cohen's kappa (Cohen 1960).

A kappa is None where there is nothing to compare or chance agreement is
already perfect (every label the same), where it is undefined.

A version whose record file is damaged (marked ``damaged`` in the index) is no read:
its label and outline are unknown. Those that may have been a reader's read are
listed as left out, with why.
"""

from __future__ import annotations

import itertools
import logging
import os
import statistics
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from ._database import MAX_READ_IMAGES, AnnotationIndex
from ._record import LABELS
from ._storage import AnnotationStore

logger = logging.getLogger(__name__)

#: ``load_mask(row)`` -> the (H, W) bool mask a reader saved in that version.
MaskLoader = Callable[[Mapping], np.ndarray]


def latest_reads(rows: Iterable[Mapping]) -> dict[str, dict[str, Mapping]]:
    """Each reader's highest version of each image.

    Parameters
    ----------
    rows : iterable of mapping
        Index rows (:meth:`AnnotationIndex.query`), in any order, with
        ``image_sha256``, ``annotator`` and ``version``.

    Returns
    -------
    dict
        ``{image_sha256: {annotator: row}}``.
    """
    reads: dict[str, dict[str, Mapping]] = defaultdict(dict)
    for row in rows:
        mine = reads[row["image_sha256"]]
        held = mine.get(row["annotator"])
        if held is None or row["version"] > held["version"]:
            mine[row["annotator"]] = row
    return dict(reads)


def independent_reads(rows: Iterable[Mapping]) -> dict[str, dict[str, Mapping]]:
    """Each reader's read of each image: their highest readable, independent version.

    A version whose record is damaged (``damaged``) is no read: its label and outline
    are unknown. One that descends from another reader's saved work
    (``revises_other_reader``: *Load it to revise*) is that reader's outline and label
    again, perhaps unchanged, so it is not an independent read either: the reader's
    latest version that is neither is their read, whoever saved since.

    Parameters
    ----------
    rows : iterable of mapping
        Index rows, with ``image_sha256``, ``annotator`` and ``version``, and
        optionally ``damaged`` and ``revises_other_reader``.

    Returns
    -------
    dict
        ``{image_sha256: {annotator: row}}``, as :func:`latest_reads`.
    """
    return latest_reads(r for r in rows
                        if not r.get("damaged") and not r.get("revises_other_reader"))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two bool masks of one shape; 1.0 when both are empty.

    Parameters
    ----------
    a, b : ndarray of bool, shape (H, W)
        The two readers' masks of one image.

    Returns
    -------
    float
        ``2 |a & b| / (|a| + |b|)``, from 0 to 1.

    Raises
    ------
    ValueError
        If the shapes differ (the two reads are not of one image).
    """
    if a.shape != b.shape:
        raise ValueError(f"masks of {a.shape} and {b.shape} pixels are not of one image")
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def fleiss_kappa(ratings: Iterable[Iterable[str]]) -> float | None:
    """Fleiss' kappa of categorical ratings, each item rated by two or more raters.

    Parameters
    ----------
    ratings : iterable of iterables of str
        Per item, the labels its raters gave (items with fewer than two are skipped).

    Returns
    -------
    float or None
        None without an item of two ratings, or when chance agreement is 1.

    Examples
    --------
    >>> fleiss_kappa([["a", "a"], ["b", "b"]])
    1.0
    >>> fleiss_kappa([["a", "b"], ["b", "a"]])
    -1.0
    """
    items = [Counter(labels) for labels in ratings]
    items = [c for c in items if sum(c.values()) >= 2]
    if not items:
        return None
    observed = statistics.fmean(
        sum(k * (k - 1) for k in c.values()) / (n * (n - 1))
        for c in items
        for n in [sum(c.values())]
    )
    totals = sum(items, Counter())
    count = sum(totals.values())
    chance = sum((k / count) ** 2 for k in totals.values())
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items, as ``(a, b)`` pairs.

    Parameters
    ----------
    pairs : iterable of (str, str)
        Per item, the first and the second rater's label.

    Returns
    -------
    float or None
        None without pairs, or when chance agreement is 1.

    Examples
    --------
    >>> cohen_kappa([("a", "a"), ("b", "b"), ("a", "b"), ("a", "a")])
    0.5
    """
    pairs = list(pairs)
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[label] * second[label] for label in first) / (n * n)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _read_key(row: Mapping) -> tuple:
    """What tells one saved read from another in the cache of pairs: not the version
    alone, which a row replaced in the index (see AnnotationIndex.add) keeps."""
    return (row["version"], row.get("annotator"), row.get("saved_at"))


def left_out_reads(rows: list[Mapping]) -> list[dict]:
    """The damaged versions among ``rows`` that may have been a reader's read.

    A damaged version is listed unless its annotator has a readable, independent
    version of the image after it among ``rows`` (their read, as it would be anyway);
    one whose annotator is unknown (``""``: indexed after it was damaged) always is.

    Returns
    -------
    list of dict
        ``[{"image_sha256", "image", "annotator", "version", "reason"}]``, sorted by
        image and version (``annotator`` None when unknown).
    """
    read = independent_reads(rows)
    left = []
    for row in rows:
        if not row.get("damaged"):
            continue
        name = row.get("annotator") or None
        theirs = read.get(row["image_sha256"], {}).get(name) if name else None
        if theirs is not None and theirs["version"] > row["version"]:
            continue
        left.append({
            "image_sha256": row["image_sha256"],
            "image": row.get("worklist_path") or row.get("image_name") or None,
            "annotator": name,
            "version": row["version"],
            "reason": _file_reason(row),
        })
    return sorted(left, key=lambda item: (item["image_sha256"], item["version"]))


def _file_reason(row: Mapping) -> str:
    """Why a damaged version's record cannot be read, its folder left out (the data
    directory's path is the log's, not a page's or a script's)."""
    why = str(row["damaged"])
    path = row.get("record_path")
    if path:
        why = why.replace(os.path.dirname(path) + os.sep, "")
    return why


def reader_agreement(
    rows: Iterable[Mapping], load_mask: MaskLoader, cache: dict | None = None
) -> dict:
    """Outline and label agreement between readers over the images two or more saved.

    Parameters
    ----------
    rows : iterable of mapping
        Index rows (:meth:`AnnotationIndex.query` or :meth:`~AnnotationIndex.reads`),
        with ``image_sha256``, ``annotator``, ``version``, ``final_label``,
        ``width`` and ``height``, and optionally ``revises_other_reader``,
        ``based_on_annotator`` and ``based_on_version``.
    load_mask : callable
        ``load_mask(row)`` -> the version's saved mask, (H, W) bool. It may raise
        OSError or ValueError for a missing or damaged file: that read is left out
        of the Dice and listed in ``unreadable``, as is a mask that is not the
        image's ``height`` x ``width``.
    cache : dict, optional
        ``{(image, read, read): (dice, both empty)}`` of pairs compared before,
        each read known by its ``(version, annotator, saved_at)`` (so a row the
        index replaced, a version saved again by someone else, is compared anew);
        filled in, and a read whose pairs are all in it is not loaded.

    Returns
    -------
    dict
        ``images`` (read by two or more readers), ``readers`` (their names, sorted),
        ``pairs`` (pairs of reads of one image), ``dice_pairs`` (those with both
        masks readable) and ``both_empty`` (of those, both empty), ``mean_dice``
        and ``median_dice`` over them, ``label_pairs`` (pairs where both gave a
        final label), ``label_agreement`` (share of those that match),
        ``fleiss_kappa``; ``by_pair``: per pair of readers ``{"readers": [a, b],
        "images", "mean_dice", "label_pairs", "label_agreement", "cohen_kappa"}``,
        sorted by names; ``unreadable``: ``[{"image_sha256", "annotator",
        "version", "reason"}]``, one per read. Means and kappas are None where
        nothing counts. ``dependent``: ``[{"image_sha256", "image", "annotator",
        "version", "based_on": {"annotator", "version"}}]`` (``image``: the row's
        worklist path or file name, None without either), each reader's latest version of an
        image when it descends from another reader's saved work
        (``revises_other_reader`` in the row) and so is left out: the reader's latest
        independent version, if any, is their read instead. An image counts with two
        or more independent reads. ``left_out``: ``[{"image_sha256", "image",
        "annotator", "version", "reason"}]``, the rows marked ``damaged`` that may have
        been a read (``annotator`` None when the index no longer knows whose), sorted
        by image and version; no such row counts anywhere else.
    """
    # A version that revised another reader's saved work (Load it to revise) is that
    # reader's outline and label again, perhaps unchanged: comparing the two would
    # count copying as agreement. A reader's read is their latest independent version.
    rows = list(rows)
    # A damaged record's label and outline are unknown (its row blank): no read.
    left_out = left_out_reads(rows)
    rows = [r for r in rows if not r.get("damaged")]
    independent = independent_reads(rows)
    copied = latest_reads(r for r in rows if r.get("revises_other_reader"))
    reads = {image: by_reader for image, by_reader in independent.items()
             if len(by_reader) >= 2}
    dependent = [
        {"image_sha256": image,
         # The file's name as saved (its worklist path, or an upload's name), which a
         # radiologist knows it by; None when the row has neither.
         "image": row.get("worklist_path") or row.get("image_name") or None,
         "annotator": name, "version": row["version"],
         "based_on": {"annotator": row.get("based_on_annotator"),
                      "version": row.get("based_on_version")}}
        for image in sorted(copied)
        for name, row in sorted(copied[image].items())
        # Listed when it is what the reader saved last: an earlier independent read
        # counts in its place, or the reader has none.
        if row["version"] > independent.get(image, {}).get(name, {}).get("version", 0)
    ]  # fmt: skip
    unreadable = []
    dices: list[float] = []
    both_empty = 0
    label_matches: list[bool] = []
    per_image_labels = []
    per_pair: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"images": 0, "dices": [], "labels": []}
    )
    cache = {} if cache is None else cache
    for image in sorted(reads):
        by_reader = reads[image]
        keys = {
            (a, b): (image, _read_key(by_reader[a]), _read_key(by_reader[b]))
            for a, b in itertools.combinations(sorted(by_reader), 2)
        }
        needed = {name for pair, key in keys.items() if key not in cache for name in pair}
        masks = {}
        for name in sorted(needed):
            row = by_reader[name]
            try:
                mask = np.asarray(load_mask(row), dtype=bool)
                size = (row["height"], row["width"])
                if mask.shape != size:
                    raise ValueError(
                        f"the mask is {mask.shape[1]}x{mask.shape[0]} pixels, the image "
                        f"{size[1]}x{size[0]}"
                    )
            except (OSError, ValueError) as exc:
                unreadable.append({"image_sha256": image, "annotator": name,
                                   "version": row["version"], "reason": str(exc)})
            else:
                masks[name] = mask
        labels = {name: row["final_label"] for name, row in reads[image].items()
                  if row["final_label"] in LABELS}
        per_image_labels.append(list(labels.values()))
        for (a, b), key in keys.items():
            pair = per_pair[(a, b)]
            pair["images"] += 1
            if key not in cache and a in masks and b in masks:
                cache[key] = (dice(masks[a], masks[b]), not (masks[a].any() or masks[b].any()))
            if key in cache:
                value, empty = cache[key]
                both_empty += empty
                dices.append(value)
                pair["dices"].append(value)
            if a in labels and b in labels:
                label_matches.append(labels[a] == labels[b])
                pair["labels"].append((labels[a], labels[b]))
    return {
        "images": len(reads),
        "readers": sorted({name for by_reader in reads.values() for name in by_reader}),
        "pairs": sum(p["images"] for p in per_pair.values()),
        "dice_pairs": len(dices),
        "both_empty": both_empty,
        "mean_dice": _mean(dices),
        "median_dice": statistics.median(dices) if dices else None,
        "label_pairs": len(label_matches),
        "label_agreement": _mean([float(m) for m in label_matches]),
        "fleiss_kappa": fleiss_kappa(per_image_labels),
        "by_pair": [
            {
                "readers": [a, b],
                "images": p["images"],
                "mean_dice": _mean(p["dices"]),
                "label_pairs": len(p["labels"]),
                "label_agreement": _mean([float(x == y) for x, y in p["labels"]]),
                "cohen_kappa": cohen_kappa(p["labels"]),
            }
            for (a, b), p in sorted(per_pair.items())
        ],
        "unreadable": unreadable,
        "dependent": dependent,
        "left_out": left_out,
    }


#: One comparison at a time: each reads up to thousands of masks, on few cores, and a
#: second click or script waits, then finds the pairs it needs already compared.
_RUNNING = threading.Lock()
#: Pairs compared, per data directory: a saved read never changes (a row the index
#: replaces has another annotator or time, hence another key), so the next
#: comparison reads only the masks of reads saved since. About 200 bytes a pair.
_PAIRS: dict[str, dict] = {}
_MAX_PAIRS = 1_000_000


def index_agreement(
    index: AnnotationIndex, store: AnnotationStore, images: int = MAX_READ_IMAGES
) -> dict:
    """:func:`reader_agreement` of the reads in ``index``, their masks read from ``store``.

    Parameters
    ----------
    index : AnnotationIndex
        Where the reads are listed (:meth:`AnnotationIndex.reads`).
    store : AnnotationStore
        Where their masks are (``vNNN_mask.png`` of each version).
    images : int
        At most this many images, those saved most recently, each with all its reads.

    Returns
    -------
    dict
        :func:`reader_agreement`'s, plus ``truncated``: whether more images than
        ``images`` were read by two or more readers. The reasons in
        ``unreadable`` and ``left_out`` name the file, not its folder; the log has the
        whole error. ``left_out`` lists the versions marked damaged that may have been
        a read (:meth:`AnnotationIndex.left_out`), at most ``images`` of them, after
        the damaged records in ``store`` were read again where due
        (:meth:`AnnotationIndex.recheck_damaged`): one readable again counts.

    Raises
    ------
    annotation_client._database.IndexUnavailable
        When the index cannot be read.
    """

    def load(row) -> np.ndarray:
        try:
            return store.load_mask(row["image_sha256"], row["version"])
        except OSError as exc:
            logger.warning("reader agreement: %s", exc)
            # The error's text names the data directory: the page and the API get the
            # file's name only.
            raise OSError(
                f"v{row['version']:03d}_mask.png cannot be read "
                f"({exc.strerror or type(exc).__name__})"
            ) from None

    with _RUNNING:
        index.recheck_damaged(store.root)
        rows, total = index.reads(images)
        rows += index.left_out(images)
        cache = _PAIRS.setdefault(str(store.root.resolve()), {})
        if len(cache) > _MAX_PAIRS:
            cache.clear()
        result = reader_agreement(rows, load, cache)
    return result | {"truncated": total > images}
