"""How the exported models' figures move on images perturbed like another scanner's.

Usage::

    python -m models.robustness --data ../shared/busi --weights runs/twinD \\
        --split runs/td0/split.json --subset val --json runs/robustness_twinD.json
    python -m models.robustness --data DIR --perturb jpeg40 hflip

Every image is scored as read and then under each perturbation of
:data:`PERTURBATIONS` (gain, contrast, grey map, speckle, JPEG, resolution,
size, orientation and field of view), by :func:`models.evaluate.evaluate`
with the same runtime, so the changes are paired: the same images, the same
model, the same run. Geometric perturbations move the ground-truth mask with
the image. Score a model that has not trained on the images (for the shipped
refit, its validated twin on its validation split).
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np

from ._cli import cli_parser
from ._perturb import (
    PERTURBATIONS,
    Perturbation,
    brightness,
    contrast,
    crop_borders,
    down_up,
    flip_horizontal,
    gamma,
    jpeg,
    rescale,
    speckle,
)
from .evaluate import (
    _prepare_output,
    _write_atomically,
    check_export_split,
    evaluate,
    samples_for_cli,
    strict_json,
)

__all__ = [
    "PERTURBATIONS", "Perturbation", "brightness", "contrast", "crop_borders", "down_up",
    "flip_horizontal", "gamma", "jpeg", "rescale", "speckle",
    "summarise", "compare", "paired_interval", "run", "format_table", "main",
]

log = logging.getLogger("models.robustness")

#: Name of the unperturbed condition in reports.
BASELINE = "none"


def summarise(result) -> dict:
    """The headline figures of one :func:`models.evaluate.evaluate` result.

    Returns
    -------
    dict
        ``mean_dice`` and ``n_lesion_images`` (lesion images), ``normal_empty``
        (fraction of normal images predicted empty), ``accuracy``,
        ``macro_f1``, ``malignant_recall``, ``malignant_called_normal``
        (count) and ``ece`` (10 bins).
    """
    seg, cls = result["segmentation"], result["classification"]
    cm = cls["confusion_matrix"]
    return {
        "mean_dice": seg["mean_dice"],
        "n_lesion_images": seg["n_lesion_images"],
        "normal_empty": seg["normal_predicted_empty"],
        "accuracy": cls["accuracy"],
        "macro_f1": cls["macro_f1"],
        "malignant_recall": cls["recall"]["malignant"],
        "malignant_called_normal": int(cm[2][0]) if len(cm) == 3 else 0,
        "ece": cls["ece"],
    }


def paired_interval(diffs, n=2000, level=0.95, seed=0):
    """Percentile bootstrap interval of the mean of paired differences.

    Parameters
    ----------
    diffs : array_like
        ``(N,)`` per-image differences (perturbed minus as read).

    Returns
    -------
    list of 2 float or None
        ``[low, high]``; None without differences.

    Examples
    --------
    >>> paired_interval([0.1, 0.1, 0.1])
    [0.1, 0.1]
    """
    diffs = np.asarray(diffs, float)
    if diffs.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, (n, diffs.size))].mean(1)
    tail = (1 - level) / 2 * 100
    return [round(float(q), 4) for q in np.percentile(means, [tail, 100 - tail])]


def compare(base, result) -> dict:
    """Changes of a perturbed result against the unperturbed one on the same images.

    Parameters
    ----------
    base, result : dict
        :func:`models.evaluate.evaluate` results, as read and perturbed.

    Returns
    -------
    dict
        ``delta`` (each figure of :func:`summarise`, perturbed minus as
        read), ``class_changed`` (images whose predicted class changed),
        ``delta_dice_95`` and ``delta_accuracy_95`` (paired bootstrap
        intervals over images; Dice over images that have a lesion in both).
    """
    a, b = summarise(base), summarise(result)
    before = {r["image"]: r for r in base["per_image"]}
    pairs = [(before[r["image"]], r) for r in result["per_image"] if r["image"] in before]
    dice = [q["dice"] - p["dice"] for p, q in pairs if p["lesion"] and q["lesion"]]
    right = [
        float(q["pred_class"] == q["true_class"]) - float(p["pred_class"] == p["true_class"])
        for p, q in pairs
    ]
    return {
        "delta": {k: b[k] - a[k] for k in a},
        "class_changed": sum(p["pred_class"] != q["pred_class"] for p, q in pairs),
        "delta_dice_95": paired_interval(dice),
        "delta_accuracy_95": paired_interval(right),
    }


def run(runtime, samples, perturbations=PERTURBATIONS, progress=False) -> dict:
    """Score ``samples`` as read and under each perturbation.

    Parameters
    ----------
    runtime : models.runtime.Runtime
    samples : list of models.data.Sample
    perturbations : sequence of Perturbation

    Returns
    -------
    dict
        ``conditions``: a list, the unperturbed one (``"none"``) first, of
        ``{"name", "why", "summary", "result"}``, each perturbed one also with
        ``"change"`` (:func:`compare`); ``result`` is the full
        :func:`models.evaluate.evaluate` output with per-image rows.
    """
    conditions = []
    base = None
    for p in [None, *perturbations]:
        name = BASELINE if p is None else p.name
        t0 = time.perf_counter()
        result = evaluate(runtime, samples, progress=progress,
                          transform=None if p is None else p.apply)
        entry = {"name": name, "why": "images as read" if p is None else p.why,
                 "summary": summarise(result)}
        if base is None:
            base = result
        else:
            entry["change"] = compare(base, result)
        entry["result"] = result
        conditions.append(entry)
        log.info("%s: %d images in %.0f s", name, len(samples), time.perf_counter() - t0)
    return {"n_images": len(samples), "conditions": conditions}


def format_table(report) -> str:
    """Plain-text table of a :func:`run` report: figures and changes against ``none``."""
    head = (f"{'perturbation':<15}{'Dice':>7}{'Δ':>8}{'normal empty':>14}{'Δ':>8}"
            f"{'accuracy':>10}{'Δ':>8}{'malig. recall':>15}{'Δ':>8}{'ECE':>7}{'Δ':>8}"
            f"{'class changed':>15}")
    lines = [f"images: {report['n_images']}", "", head]
    for c in report["conditions"]:
        s = c["summary"]
        d = c.get("change", {}).get("delta")

        def cell(key, width, s=s, d=d):
            value = f"{s[key]:>{width}.3f}"
            return value + (f"{d[key]:>+8.3f}" if d else " " * 8)

        changed = c["change"]["class_changed"] if "change" in c else ""
        lines.append(f"{c['name']:<15}{cell('mean_dice', 7)}{cell('normal_empty', 14)}"
                     f"{cell('accuracy', 10)}{cell('malignant_recall', 15)}{cell('ece', 7)}"
                     f"{changed:>15}")
    lines += ["", "paired 95% bootstrap intervals of the changes (resampling images)",
              f"{'perturbation':<15}{'Δ Dice':>20}{'Δ accuracy':>20}   lesions  malignant→normal"]
    for c in report["conditions"]:
        s = c["summary"]
        if "change" not in c:
            lines.append(f"{c['name']:<15}{'':>40}{s['n_lesion_images']:>10}"
                         f"{s['malignant_called_normal']:>18}")
            continue
        ch = c["change"]

        def iv(key, ch=ch):
            v = ch[key]
            return f"[{v[0]:+.3f}, {v[1]:+.3f}]" if v else "—"

        lines.append(f"{c['name']:<15}{iv('delta_dice_95'):>20}{iv('delta_accuracy_95'):>20}"
                     f"{s['n_lesion_images']:>10}{s['malignant_called_normal']:>18}")
    return "\n".join(lines)


def main(argv=None):
    names = [p.name for p in PERTURBATIONS]
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--data", required=True, help="folder in BUSI layout")
    p.add_argument("--weights", help="exported weights folder (default: the shipped ones)")
    p.add_argument("--split", help="split.json from training, to score only one subset")
    p.add_argument("--subset", default="val", choices=["train", "val"])
    p.add_argument("--backend", default="auto", choices=["auto", "keras", "litert"])
    p.add_argument("--json", help="write the report (with every per-image row) here")
    p.add_argument("--perturb", nargs="+", choices=names, metavar="NAME",
                   help="run only these perturbations (default: all):\n  " + "\n  ".join(
                       # argparse %-formats help texts; the descriptions hold "20 %".
                       f"{q.name}: {q.why}".replace("%", "%%") for q in PERTURBATIONS))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from .runtime import Runtime

    if args.json:
        # Checked before the run, as evaluate does: an unwritable path cost the whole report.
        try:
            json_path = _prepare_output(args.json)
        except OSError as exc:
            print(f"error: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    samples = samples_for_cli(args.data, args.split, args.subset)
    if samples is None:
        return 2
    chosen = [q for q in PERTURBATIONS if args.perturb is None or q.name in args.perturb]
    try:
        runtime = Runtime(args.weights, backend=args.backend).load()
    except (OSError, ValueError) as exc:  # no manifest, a weight file missing, a bad setting
        print(f"error: --weights {args.weights or 'the shipped weights'}: {exc}",
              file=sys.stderr)
        return 2
    if args.split:
        why = check_export_split(runtime.manifest, args.split, args.data)
        if why:
            print(f"error: {why}; give the run's own split.json", file=sys.stderr)
            return 2
    if runtime.manifest.get("training", {}).get("validated_twin"):
        log.warning("these weights were refitted on every BUSI image here, so their figures on "
                    "BUSI are in-sample; measure robustness on their validated twin instead")
    report = run(runtime, samples, chosen, progress=True)
    report = {
        "model": {**runtime.info(), "weights": str(runtime.weights_dir)},
        "data": str(args.data), "split": args.split,
        "subset": args.subset if args.split else None,
        **report,
    }
    print(format_table(report))
    if args.json:
        try:
            # Strict: a figure that cannot be computed (no normal image: no share predicted
            # empty) is null, not the bare NaN strict parsers refuse.
            _write_atomically(json_path, strict_json(report))
        except OSError as exc:  # a disk that filled up during the run
            print(f"error: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
