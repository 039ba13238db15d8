"""Score the exported models on any folder in BUSI layout.

Usage::

    python -m models.evaluate --data ../shared/busi --json metrics.json
    python -m models.evaluate --data ../shared/busi --split runs/main/split.json --subset val

It runs the same :class:`models.runtime.Runtime` the server uses, on each
image at its own size, so the figures are what a user gets.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from ._cli import cli_parser, progress_bar
from .data import (
    CLASS_NAMES,
    UnreadableFileError,
    load_samples,
    read_image_as_served,
    read_mask,
)
from .metrics import (
    bootstrap_intervals,
    classification_report,
    ece_if_calibrated,
    overlap_scores,
)

log = logging.getLogger("models.evaluate")


def evaluate(runtime, samples, progress=False, transform=None) -> dict:
    """Run ``runtime`` on ``samples`` and compute every metric.

    Parameters
    ----------
    runtime : models.runtime.Runtime
        Or anything with its ``predict_mask(grey)`` and ``classify(grey)``.
    samples : list of models.data.Sample
    progress : bool
        Show a progress bar on stderr.
    transform : callable, optional
        ``transform(grey, mask) -> (grey, mask)``, applied to each image
        (``(H, W)`` uint8) and its ground truth (``(H, W)`` bool) after they
        are read and before the runtime sees the image; it may change their
        size, but must return both at the same size. Scores are computed
        against the returned mask. Used to perturb images
        (:mod:`models.robustness`); the default leaves them as read.

    Returns
    -------
    dict
        ``per_image`` (list of dicts), ``segmentation``, ``classification``
        and ``timing_ms``; ``skipped`` lists the images that could not be
        scored (an unreadable image or mask, or one the runtime refuses) with
        the reason, ``lesion_class_without_mask`` the benign or malignant
        images whose ground truth is empty (no mask file, or an all-black
        one), which count for classification but not for segmentation,
        ``normal_class_with_mask`` the normal images whose ground truth is not
        empty (a contradictory label), which count as normal (classification and
        the share predicted empty) but not as lesion images, and ``notes`` what
        was done to a scored image's files (a mask of another size fitted to its
        image) or what is odd about them (fewer or more mask files than
        ``index.csv`` counts).
    """
    rows, probs, labels, times = [], [], [], []
    skipped, unmasked, notes, marked = [], [], [], []
    it = progress_bar(samples, "evaluating", file=sys.stderr) if progress else samples
    for s in it:
        name = f"{s.class_name}/{s.name}"
        # One bad file in a folder of hundreds (a held-out set included) must cost
        # that image, reported, not the whole score.
        mask_notes: list[str] = []
        try:
            # As served: an image the server refuses (a nearly blank frame, damaged
            # pixel data) gets no answer in use, so it is skipped here, with the reason.
            grey = read_image_as_served(s.image_path)
            true = read_mask(s.mask_paths, grey.shape, notes=mask_notes)
        except (UnreadableFileError, ValueError) as exc:
            # ValueError: an image the shared preprocessing refuses (smaller than 8x8).
            log.warning("skipped %s: %s", name, exc)
            skipped.append({"image": name, "reason": str(exc)})
            continue
        if s.listed_masks is not None and s.listed_masks != len(s.mask_paths):
            # A lost mask file would score a correct outline as a false positive.
            mask_notes.append(f"index.csv counts {s.listed_masks} mask file(s), the folder "
                              f"has {len(s.mask_paths)}: scored against those found")
        notes.extend({"image": name, "note": note} for note in mask_notes)
        if transform is not None:
            grey, true = transform(grey, true)
            if np.shape(grey) != np.shape(true):
                raise ValueError(f"transform: returned image of shape {np.shape(grey)} "
                                 f"and mask of shape {np.shape(true)} for {s.image_path}")
        t0 = time.perf_counter()
        try:
            pred = runtime.predict_mask(grey)
            p = runtime.classify(grey)
        except ValueError as exc:
            # The runtime's own refusals (an image smaller than it accepts, say).
            log.warning("skipped %s: %s", name, exc)
            skipped.append({"image": name, "reason": str(exc)})
            continue
        times.append((time.perf_counter() - t0) * 1000)
        scores = overlap_scores(pred, true)
        if s.class_name != "normal" and not true.any():
            log.warning("%s is %s but its ground truth is empty (%d mask files): scored "
                        "for classification only", name, s.class_name, len(s.mask_paths))
            unmasked.append(name)
            # No outline to score against: null, not a Dice of 0 that whoever averages
            # the rows would count.
            scores = dict.fromkeys(scores)
        if s.class_name == "normal" and true.any():
            # Counted once, as its class says: as a lesion image too, it fed both the
            # mean Dice and the share of normal images predicted empty (audit 818 F3).
            log.warning("%s is normal but its ground truth outlines %d pixels: scored as "
                        "normal, not as a lesion image", name, int(true.sum()))
            marked.append(name)
        pv = np.array([p[c] for c in CLASS_NAMES])
        row = {
            "image": name,
            "true_class": s.class_name,
            "pred_class": CLASS_NAMES[int(pv.argmax())],
            "probabilities": {c: round(float(v), 4) for c, v in zip(CLASS_NAMES, pv, strict=True)},
            "lesion": bool(true.any()) and s.class_name != "normal",
            "pred_empty": bool(not pred.any()),
            **scores,
        }
        # The means and intervals below take the exact scores; rows are rounded
        # once all of them are computed.
        rows.append(row)
        probs.append(pv)
        labels.append(s.label)
    if not rows:
        raise ValueError(f"no image could be scored ({len(skipped)} skipped; first: "
                         f"{skipped[0]['image']}: {skipped[0]['reason']})" if skipped
                         else "no images to score")
    lesion = [r for r in rows if r["lesion"]]
    normal = [r for r in rows if r["true_class"] == "normal"]
    seg = {
        "n_lesion_images": len(lesion),
        **{f"mean_{k}": float(np.mean([r[k] for r in lesion])) if lesion else float("nan")
           for k in ("dice", "iou", "precision", "recall")},
        "median_dice": float(np.median([r["dice"] for r in lesion])) if lesion else float("nan"),
        "n_normal_images": len(normal),
        "normal_predicted_empty": (
            float(np.mean([r["pred_empty"] for r in normal])) if normal else float("nan")
        ),
    }
    cls = classification_report(np.array(probs), np.array(labels), CLASS_NAMES)
    # A report figure, not a training one: 1,000 draws are too slow for every epoch.
    cls["ece_if_calibrated"] = ece_if_calibrated(np.array(probs))
    intervals = bootstrap_intervals(
        [r["dice"] for r in lesion], [r["pred_empty"] for r in normal],
        labels, np.array(probs).argmax(1) if probs else [], len(CLASS_NAMES),
        class_names=CLASS_NAMES,
    )
    for r in rows:
        r.update({k: None if r[k] is None else round(r[k], 4)
                  for k in ("dice", "iou", "precision", "recall")})
    return {
        "n_images": len(rows),
        "skipped": skipped,
        "lesion_class_without_mask": unmasked,
        "normal_class_with_mask": marked,
        "notes": notes,
        "segmentation": seg,
        "classification": cls,
        "intervals_95": intervals,
        "timing_ms": {"median_per_image": float(np.median(times)) if times else float("nan")},
        "per_image": rows,
    }


def format_table(result) -> str:
    """A plain-text summary table of an :func:`evaluate` result."""
    s, c = result["segmentation"], result["classification"]
    iv = result.get("intervals_95", {})

    def ci(key):
        return f"  [{iv[key][0]:.3f}, {iv[key][1]:.3f}]" if key in iv else ""

    unmasked = result.get("lesion_class_without_mask", [])
    without = f", lesion class without mask {len(unmasked)}" if unmasked else ""
    lines = [
        f"images: {result['n_images']}  (lesion {s['n_lesion_images']}, "
        f"normal {s['n_normal_images']}{without})",
    ]
    # Results written before these were recorded have neither key.
    for item in result.get("skipped", []):
        lines.append(f"  skipped {item['image']}: {item['reason']}")
    for item in result.get("files_left_out", []):
        lines.append(f"  folder: {item}")
    for item in result.get("notes", []):
        lines.append(f"  note on {item['image']}: {item['note']}")
    if unmasked:
        lines.append(f"  {len(unmasked)} benign/malignant images have an empty ground truth and "
                     "count for classification only: " + ", ".join(unmasked))
    marked = result.get("normal_class_with_mask", [])
    if marked:
        lines.append(f"  {len(marked)} normal images have an outline in their ground truth and "
                     "count as normal, not as lesion images: " + ", ".join(marked))
    lines += [
        "",
        "segmentation (lesion images)   value   95% bootstrap interval",
        f"  mean Dice                    {s['mean_dice']:.4f}{ci('mean_dice')}",
        f"  mean IoU                     {s['mean_iou']:.4f}",
        f"  mean precision               {s['mean_precision']:.4f}",
        f"  mean recall                  {s['mean_recall']:.4f}",
        f"  normal predicted empty       {s['normal_predicted_empty']:.4f}"
        f"{ci('normal_predicted_empty')}",
        "",
        "classification                 value",
        f"  accuracy                     {c['accuracy']:.4f}{ci('accuracy')}",
        f"  macro-F1                     {c['macro_f1']:.4f}{ci('macro_f1')}",
        f"  ECE (10 bins)                {c['ece']:.4f}",
    ]
    floor = c.get("ece_if_calibrated")
    if floor:
        lines.append(
            f"    if exactly calibrated      {floor['mean']:.4f}  (95% of draws below "
            f"{floor['p95']:.4f}: sampling noise on {c['n']} images)"
        )
    # Results written before these were reported have neither.
    if "log_loss" in c:
        lines.append(f"  log-loss / Brier score       {c['log_loss']:.4f} / {c['brier']:.4f}")
    for name in CLASS_NAMES:
        lines.append(f"  recall {name:<21} {c['recall'][name]:.4f}{ci('recall_' + name)}")
    for name in CLASS_NAMES:
        lines.append(f"  {'AUC ' + name + ' vs rest':<28} {c['auc_ovr'][name]:.4f}")
    lines.append("")
    lines.append("confusion matrix (rows true, columns predicted: " + ", ".join(CLASS_NAMES) + ")")
    for name, row in zip(CLASS_NAMES, c["confusion_matrix"], strict=True):
        lines.append(f"  {name:<10}" + "".join(f"{v:>6}" for v in row))
    ms = result["timing_ms"]["median_per_image"]
    lines.append(f"\nmedian segment+classify time: {ms:.1f} ms")
    return "\n".join(lines)


#: The files :func:`save_plots` writes into its folder.
PLOT_FILES = ("confusion_matrix.png", "calibration.png")


def save_plots(result, out_dir) -> list[Path]:
    """Write ``confusion_matrix.png`` and ``calibration.png`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cm = np.array(result["classification"]["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(3), CLASS_NAMES), ax.set_yticks(range(3), CLASS_NAMES)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title("confusion matrix")
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES[0], dpi=100)
    plt.close(fig)

    rows = result["per_image"]
    conf = np.array([max(r["probabilities"].values()) for r in rows])
    correct = np.array([r["pred_class"] == r["true_class"] for r in rows])
    edges = np.linspace(0, 1, 11)
    xs, ys, ns = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            xs.append(conf[sel].mean()), ys.append(correct[sel].mean()), ns.append(sel.sum())
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    ax.plot(xs, ys, "o-", label=f"model (ECE {result['classification']['ece']:.3f})")
    ax.set_xlabel("confidence"), ax.set_ylabel("accuracy"), ax.set_title("calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES[1], dpi=100)
    plt.close(fig)
    return [out_dir / name for name in PLOT_FILES]


def _prepare_output(path) -> Path:
    """``path`` as a file that can be written, checked before the run; nothing is made.

    Raises
    ------
    OSError
        ``path`` is a folder, lies under a file, cannot be written, or is a file that
        is not an earlier result (an image, a mask, ``index.csv``: the reviewer's
        only copy of the ground truth must not be replaced by the JSON).
    """
    out = Path(path)
    if out.is_symlink():
        # A link to where results are kept: the file it names is replaced, the link kept.
        out = out.resolve()
    if out.is_dir():
        raise IsADirectoryError(21, "Is a directory (give a file name)")
    if out.is_file() and not _is_result(out):
        raise FileExistsError(17, "File exists and is not an earlier result of models.evaluate "
                              "or models.robustness (an image, a mask, index.csv, a split.json "
                              "or manifest.json?); give a new file name")
    _check_writable(out)
    return out


def _check_writable(out: Path) -> None:
    """Check that the file ``out`` can be written, its folders made; nothing is left made.

    Raises
    ------
    OSError
        A folder on the way is a file, or the file cannot be written there.
    """
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise NotADirectoryError(20, f"{existing} is a file, not a folder")
    # Folders made for the check are removed after it: an interrupted or refused run
    # leaves nothing behind. Opening a file says what os.access cannot: root may write
    # anywhere by permissions, yet not into /proc or onto a read-only mount.
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        existed = out.exists()
        with open(out, "a"):
            pass
        if not existed:
            out.unlink()
    finally:
        for folder in made:  # deepest first
            folder.rmdir()


def _prepare_plots(path) -> Path:
    """``path`` as a folder :func:`save_plots` can write, checked before the run.

    Raises
    ------
    OSError
        ``path`` is a file or lies under one, or its plots cannot be written there.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, "a file, not a folder: give a folder for the plots")
    for name in PLOT_FILES:
        _check_writable(folder / name)
    return folder


def _is_result(path: Path) -> bool:
    """Whether the file at ``path`` is empty or an earlier ``--json`` result.

    A result of this command or of ``models.robustness`` is a JSON object with its
    ``n_images`` and its ``per_image`` rows or ``conditions``; a split.json or a
    manifest.json, JSON objects too, are not, and must not be replaced by one.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return True
        if size > _LARGEST_RESULT:
            return False
        found = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and "n_images" in found and (
        "per_image" in found or "conditions" in found)


#: Bytes past which a file is not taken for an earlier result without reading it (the
#: 622 BUSI images' result is about 0.5 MB).
_LARGEST_RESULT = 256 << 20


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (an earlier result stays if it fails)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _without_nan(value):
    """``value`` with every float NaN or infinity (nested in dicts and lists) as None,
    and every string made valid Unicode (:func:`_valid_text`)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, dict):
        return {_without_nan(k): _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def _valid_text(text: str) -> str:
    """``text`` with each lone surrogate written out as ``\\udcXX``, as the table prints it.

    A file name that is not UTF-8 (an archive unpacked from another system) reaches
    Python with its bad bytes as lone surrogates, which ``json.dumps`` writes as
    ``\\udce9`` escapes: no Unicode text, and strict parsers (Rust's serde_json
    among them) refuse the whole file.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def strict_json(value) -> str:
    """``value`` as strict JSON text (indented), every NaN or infinity as ``null``.

    Python writes NaN as the bare word ``NaN``, which strict parsers (a browser's,
    the model server's JSON provider) refuse: a manifest holding one made the
    server's ``/models`` answer 500. Lone surrogates in strings (a file name that is
    not UTF-8) are written out as text, for the same parsers' sake.
    """
    return json.dumps(_without_nan(value), indent=1, allow_nan=False)


#: What a split file holds, as training writes it (``split.json``).
SPLIT_SHAPE = '{"train": ["class/name", ...], "val": [...]}'


def read_split(split_file, subset="val") -> dict:
    """The split in ``split_file``, checked to be shaped as training writes it.

    Raises
    ------
    ValueError
        Naming the file, when it is not JSON, not an object, lacks ``subset``, or
        holds something other than a list of names under ``train`` or ``val``
        (a JSON list raised a ``TypeError`` traceback; a string ``val`` had each
        character taken for a name, then "no images to evaluate").
    """
    try:
        split = json.loads(Path(split_file).read_text())
    except ValueError as exc:
        raise ValueError(f"--split {split_file}: not JSON ({exc}); expected {SPLIT_SHAPE}"
                         ) from None
    if not isinstance(split, dict):
        raise ValueError(f"--split {split_file}: holds a JSON {type(split).__name__}; "
                         f"expected {SPLIT_SHAPE}")
    if subset is not None and subset not in split:
        raise ValueError(f"--split {split_file}: no {subset!r} list; expected {SPLIT_SHAPE}")
    for part in ("train", "val"):
        names = split.get(part, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"--split {split_file}: {part!r} is not a list of names; "
                             f"expected {SPLIT_SHAPE}")
    return split


def select_samples(samples, split_file=None, subset="val"):
    """Keep the samples named in ``split_file[subset]`` (``class/name`` strings).

    Raises
    ------
    ValueError
        If the file is not shaped as a split (:func:`read_split`).
    """
    if split_file is None:
        return samples
    names = set(read_split(split_file, subset)[subset])
    return [s for s in samples if f"{s.class_name}/{s.name}" in names]


def split_digest(split) -> str:
    """SHA-256 of a split (``{"train": [...], "val": [...]}``), whatever its order.

    :mod:`models.export` records it in the manifest (``training.split_sha256``),
    so a ``--split`` can be checked to be the export's own.
    """
    import hashlib

    canon = {part: sorted(split.get(part, [])) for part in ("train", "val")}
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()


def check_export_split(manifest, split_file, data) -> str | None:
    """Why ``split_file`` is not the split the export was trained on, or None.

    A split not the export's own puts its training images among the "held-out"
    ones and flatters every figure. Checked by the digest the manifest records
    (exports since it did), else by drawing the split again from the manifest's
    record as :func:`models.unpack.export_split` does, else by its size. A
    refit (no held-out images at all) is left to the callers' own notes.
    """
    from .unpack import export_split

    training = manifest.get("training", {})
    if training.get("validated_twin") or not training.get("val_images"):
        return None
    split = read_split(split_file, subset=None)
    why = f"--split {split_file} is not the split these weights were trained on"
    recorded = training.get("split_sha256")
    if recorded:
        return None if split_digest(split) == recorded else why
    try:
        own = export_split(manifest, load_samples(data))
    except (ValueError, OSError, KeyError):
        own = None  # no seed recorded, or another data folder: only the size is left
    if own is not None:
        return None if split_digest(split) == split_digest(own) else why
    counts = (len(split.get("train", [])), len(split.get("val", [])))
    if counts != (training.get("train_images"), training.get("val_images")):
        return (f"{why} ({counts[0]} train / {counts[1]} val, the export's "
                f"{training.get('train_images')} / {training.get('val_images')})")
    return None


def samples_for_cli(data, split_file, subset, nothing="no images to evaluate", problems=None):
    """The samples a command works on, or None after printing why there are none.

    ``problems`` gets the files :func:`models.data.load_samples` left out.
    """
    try:
        samples = select_samples(load_samples(data, problems), split_file, subset)
    except (ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not samples:
        print(f"error: {nothing}", file=sys.stderr)
        return None
    return samples


def main(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--data", required=True, help="folder in BUSI layout")
    p.add_argument("--json", help="write the full result (with per-image rows) here")
    p.add_argument(
        "--weights",
        help="exported weights folder (default: $SONOTRACE_WEIGHTS_DIR when set and not "
        "empty, else the shipped ones)",
    )
    p.add_argument("--backend", choices=["auto", "keras", "litert"],
                   help="default: $SONOTRACE_RUNTIME_BACKEND when set, else auto, as the "
                   "server chooses")
    p.add_argument("--split", help="split.json from training, to score only one subset")
    p.add_argument("--subset", default="val", choices=["train", "val"])
    p.add_argument("--plots", help="folder for confusion-matrix and calibration PNGs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from .runtime import Runtime

    if args.json:
        # Checked before the run, not after it: a path that cannot be written cost
        # the whole run's JSON.
        try:
            json_path = _prepare_output(args.json)
        except OSError as exc:
            print(f"error: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if args.plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            # Refused before the run: matplotlib comes with the train extra only.
            print("error: --plots needs matplotlib (pip install '.[train]')", file=sys.stderr)
            return 2
        # Checked before the run too: a file given for the folder raised a traceback
        # once every image was scored.
        try:
            _prepare_plots(args.plots)
        except OSError as exc:
            print(f"error: --plots {args.plots}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    problems: list[str] = []
    samples = samples_for_cli(args.data, args.split, args.subset, problems=problems)
    if samples is None:
        return 2
    try:
        runtime = Runtime(args.weights, backend=args.backend)
    except ValueError as exc:  # a setting: SONOTRACE_NUM_THREADS, say
        named = ("SONOTRACE_RUNTIME_BACKEND: " if args.backend is None
                 and str(exc).startswith("backend:") else "")
        print(f"error: {named}{exc}", file=sys.stderr)
        return 2
    try:
        runtime.load()
    except (OSError, ValueError) as exc:  # no manifest, a manifest that does not parse
        # Named as it was given: the option, else the variable it came from.
        source = ("--weights" if args.weights else "SONOTRACE_WEIGHTS_DIR"
                  if os.environ.get("SONOTRACE_WEIGHTS_DIR", "").strip() else "the shipped weights")
        print(f"error: {source}: {exc}", file=sys.stderr)
        return 2
    if args.split:
        why = check_export_split(runtime.manifest, args.split, args.data)
        if why:
            print(f"error: {why}; give the run's own split.json", file=sys.stderr)
            return 2
    twin = runtime.manifest.get("training", {}).get("validated_twin")
    if twin:
        n = runtime.manifest["training"].get("train_images")
        print(f"note: these weights were refitted on all {n} images of the BUSI release, "
              "validation included, so scores on those images are in-sample; the honest "
              f"estimate is their twin's ({twin['version']}), in the manifest's metrics",
              file=sys.stderr)
    try:
        result = evaluate(runtime, samples, progress=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: nothing written" + (f" ({args.json} is as it was)"
                                                  if args.json else ""), file=sys.stderr)
        return 130
    result["model"] = runtime.info()
    result["model"]["refit_on_every_image"] = bool(twin)
    result["files_left_out"] = problems
    if args.json:
        # Strict JSON: a figure that cannot be computed (no normal image, say) is null,
        # not NaN, which JSON parsers other than Python's reject.
        text = strict_json(result)
        try:
            _write_atomically(json_path, text)
        except OSError as exc:  # a disk that filled up during the run
            print(f"error: --json {args.json}: {exc.strerror or exc}; the table follows, "
                  "and the file is as it was before the run", file=sys.stderr)
            written = False
        else:
            written = True
    # With what the terminal cannot show escaped: a file name outside a narrow console
    # encoding must not cost the run's result. Printed even when the JSON could not be
    # written, so the run's figures are not lost with it.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    print(format_table(result))
    if args.json and not written:
        return 1
    if args.plots:
        try:
            save_plots(result, args.plots)
        except OSError as exc:  # a disk that filled up during the run
            print(f"error: --plots {args.plots}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
