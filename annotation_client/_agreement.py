"""Agreement between readers who outlined and labelled the same images.

After a blinded read (:mod:`annotation_client._readers`), or whenever two
radiologists annotated the same images, whoever runs the study asks how far the
readers agree: how much their outlines overlap and how often their final labels
match, beyond chance. Each reader's read of an image is their highest saved
version of it; images only one reader saved do not count.

- **Outlines:** the Dice coefficient of each pair of readers' saved masks of the
  same image. Two empty masks agree (both found no lesion): Dice 1.
- **Labels:** for each pair that both gave a final label, whether they match; over
  all readers, Fleiss' kappa (Fleiss 1971, for any number of readers per image),
  and for each pair of readers, Cohen's kappa (Cohen 1960).

A kappa is None when chance agreement is already perfect (every label the same),
where it is undefined.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from ._database import MAX_LIMIT, AnnotationIndex
from ._record import LABELS
from ._storage import AnnotationStore

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


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two bool masks of one shape; 1.0 when both are empty.

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


def reader_agreement(rows: Iterable[Mapping], load_mask: MaskLoader) -> dict:
    """Outline and label agreement between readers over the images two or more saved.

    Parameters
    ----------
    rows : iterable of mapping
        Index rows (:meth:`AnnotationIndex.query` or :meth:`~AnnotationIndex.reads`),
        with ``image_sha256``, ``annotator``, ``version`` and ``final_label``.
    load_mask : callable
        ``load_mask(row)`` -> the version's saved mask, (H, W) bool. It may raise
        OSError or ValueError for a missing or damaged file: that read is left out
        and listed in ``unreadable``.

    Returns
    -------
    dict
        ``images`` (read by two or more readers), ``readers`` (their names, sorted),
        ``pairs`` (pairs of reads of one image), ``mean_dice`` and ``median_dice``
        over those pairs, ``label_pairs`` (pairs where both gave a final label),
        ``label_agreement`` (share of those that match), ``fleiss_kappa``;
        ``by_pair``: per pair of readers ``{"readers": [a, b], "images",
        "mean_dice", "label_pairs", "label_agreement", "cohen_kappa"}``, sorted by
        names; ``unreadable``: ``[{"image_sha256", "annotator", "version",
        "reason"}]``. Means and kappas are None where nothing counts.
    """
    reads = {
        image: by_reader
        for image, by_reader in latest_reads(rows).items()
        if len(by_reader) >= 2
    }
    unreadable = []
    dices: list[float] = []
    label_matches: list[bool] = []
    per_image_labels = []
    per_pair: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"images": 0, "dices": [], "labels": []}
    )
    for image in sorted(reads):
        masks = {}
        for name, row in sorted(reads[image].items()):
            try:
                masks[name] = np.asarray(load_mask(row), dtype=bool)
            except (OSError, ValueError) as exc:
                unreadable.append({"image_sha256": image, "annotator": name,
                                   "version": row["version"], "reason": str(exc)})
        labels = {name: row["final_label"] for name, row in reads[image].items()
                  if row["final_label"] in LABELS}
        per_image_labels.append(list(labels.values()))
        for a, b in itertools.combinations(sorted(reads[image]), 2):
            pair = per_pair[(a, b)]
            pair["images"] += 1
            if a in masks and b in masks:
                try:
                    value = dice(masks[a], masks[b])
                except ValueError as exc:
                    unreadable.append({"image_sha256": image, "annotator": b,
                                       "version": reads[image][b]["version"],
                                       "reason": str(exc)})
                else:
                    dices.append(value)
                    pair["dices"].append(value)
            if a in labels and b in labels:
                label_matches.append(labels[a] == labels[b])
                pair["labels"].append((labels[a], labels[b]))
    return {
        "images": len(reads),
        "readers": sorted({name for by_reader in reads.values() for name in by_reader}),
        "pairs": sum(p["images"] for p in per_pair.values()),
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
    }


def index_agreement(index: AnnotationIndex, store: AnnotationStore, limit: int = MAX_LIMIT) -> dict:
    """:func:`reader_agreement` of the reads in ``index``, their masks read from ``store``.

    Parameters
    ----------
    index : AnnotationIndex
        Where the reads are listed (:meth:`AnnotationIndex.reads`).
    store : AnnotationStore
        Where their masks are (``vNNN_mask.png`` of each version).
    limit : int
        At most this many reads, newest first.

    Returns
    -------
    dict
        :func:`reader_agreement`'s, plus ``truncated``: whether ``limit`` cut the reads.

    Raises
    ------
    annotation_client._database.IndexUnavailable
        When the index cannot be read.
    """
    rows = index.reads(limit)
    result = reader_agreement(
        rows, lambda row: store.load_mask(row["image_sha256"], row["version"])
    )
    return result | {"truncated": len(rows) == limit}
