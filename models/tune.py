"""Choose an export's temperature and post-processing on validation images.

Usage::

    python -m models.tune --data ../shared/busi --split runs/r2/split.json
    python -m models.tune --data ../shared/busi --split runs/r2/split.json --dry-run

:mod:`models.export` calls :func:`tune_export` after writing the weights;
this command does the same for weights already exported, without their
training runs (run folders do not outlive a session, the shipped weights
do). The network's outputs come from the same :class:`models.runtime.Runtime`
the server uses, so the settings are chosen on exactly what is served.

What is tuned (see :class:`models._postprocess.PostProcess`): the softmax
temperature (minimum negative log-likelihood), the threshold, the minimum
component area, the confidence floor, the "normal" gate, what the gate keeps,
and whether to average with a left-right flip. The post-processing is chosen
to meet the 90 % normal-empty target first, then to maximise
``Dice + 0.25 x normal-empty``: a false outline on a normal image costs the
radiologist an erase, a missed lesion a whole drawing.

The same images choose the settings and score them, which flatters the
figures. :func:`crossfit` reports what the same search reaches on images it
was not tuned on; the manifest records both.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from ._cli import cli_parser
from ._postprocess import PostProcess, postprocess
from .data import read_image, read_mask
from .evaluate import strict_json
from .metrics import (
    crossfit_ece,
    expected_calibration_error,
    fit_temperature,
    overlap_scores,
    softmax,
    stratified_folds,
)

log = logging.getLogger("models.tune")

THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6)
MIN_AREAS = (0.001, 0.003, 0.006, 0.01)
CONFIDENCES = (0.0, 0.5, 0.55, 0.6, 0.65, 0.7)
GATES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 2.0)
# Above 1: the gate empties the mask. Listed first, so ties keep the simpler rule.
GATE_KEEPS = (2.0, 0.6, 0.65, 0.7, 0.75, 0.8)
NORMAL_EMPTY_TARGET = 0.9


@dataclass
class Outputs:
    """Raw network outputs on labelled images.

    Attributes
    ----------
    seg_probs : list of numpy.ndarray
        ``(H, W)`` float32 lesion probability at each image's own size.
    logits : numpy.ndarray
        ``(N, K)`` logits before the temperature.
    truths : list of numpy.ndarray
        ``(H, W)`` bool true masks.
    labels : numpy.ndarray
        ``(N,)`` class indices (0 is normal).
    """

    seg_probs: list
    logits: np.ndarray
    truths: list
    labels: np.ndarray


def runtime_outputs(runtime, samples, flip=None) -> Outputs:
    """Run ``runtime`` on ``samples``; ``flip`` overrides its flip averaging."""
    runtime.load()
    saved = runtime.tta
    if flip is not None:
        runtime.tta = bool(flip)
    seg_probs, logits, truths, labels = [], [], [], []
    try:
        for s in samples:
            grey = read_image(s.image_path)
            prob, lg = runtime.outputs(grey)
            seg_probs.append(prob)
            logits.append(lg)
            truths.append(read_mask(s.mask_paths, grey.shape))
            labels.append(s.label)
    finally:
        runtime.tta = saved
    return Outputs(seg_probs, np.array(logits, float), truths, np.array(labels, int))


@dataclass
class _Tables:
    """Per-image results of every mask setting, so that a search is array arithmetic.

    ``dice[t, a, f, i]`` and ``found[t, a, f, i]`` (mask not empty) for
    threshold ``t``, minimum area ``a`` and floor ``f`` (index into ``floors``).
    """

    floors: tuple
    dice: np.ndarray
    found: np.ndarray


def _tables(out: Outputs) -> _Tables:
    floors = tuple(sorted(set(CONFIDENCES) | {k for k in GATE_KEEPS if k <= 1}))
    shape = (len(THRESHOLDS), len(MIN_AREAS), len(floors), len(out.labels))
    dice, found = np.zeros(shape), np.zeros(shape, bool)
    for (t, thr), (a, area), (f, floor) in product(
        enumerate(THRESHOLDS), enumerate(MIN_AREAS), enumerate(floors)
    ):
        pp = PostProcess(threshold=thr, min_area_frac=area, min_confidence=floor)
        for i, (prob, truth) in enumerate(zip(out.seg_probs, out.truths, strict=True)):
            m = postprocess(prob, pp)
            found[t, a, f, i] = m.any()
            if truth.any():
                dice[t, a, f, i] = overlap_scores(m, truth)["dice"]
    return _Tables(floors, dice, found)


def _outcome(tables, choice, p_normal, idx):
    """``(dice, found)`` of images ``idx`` under ``choice`` = ``(t, a, conf, gate, keep)``.

    ``dice`` is meaningful for lesion images, ``found`` (mask not empty) for
    normal ones. Where the gate fires, the floor rises to ``keep``, or the
    mask is empty when ``keep`` is above 1.
    """
    t, a, conf, gate, keep = choice
    f = tables.floors.index(conf)
    fired = p_normal[idx] >= gate
    if keep <= 1:
        k = tables.floors.index(max(conf, keep))
        d_gated, found_gated = tables.dice[t, a, k, idx], tables.found[t, a, k, idx]
    else:
        d_gated, found_gated = 0.0, False
    return (np.where(fired, d_gated, tables.dice[t, a, f, idx]),
            np.where(fired, found_gated, tables.found[t, a, f, idx]))


def _search(tables, p_normal, labels, idx, gate_keeps=GATE_KEEPS):
    """Best setting on images ``idx``: ``(key, (t, a, conf, gate, keep))``."""
    lesion = labels[idx] > 0
    best = None
    for t, a, conf, gate in product(range(len(THRESHOLDS)), range(len(MIN_AREAS)),
                                    CONFIDENCES, GATES):
        for keep in gate_keeps if gate <= 1 else (2.0,):
            d, found = _outcome(tables, (t, a, conf, gate, keep), p_normal, idx)
            d, found = d[lesion], found[~lesion]
            dice = float(d.mean()) if d.size else 0.0
            empty = float(1 - found.mean()) if found.size else 1.0
            key = (empty >= NORMAL_EMPTY_TARGET, dice + 0.25 * empty, dice, empty)
            if best is None or key[:2] > best[0][:2]:
                best = (key, (t, a, conf, gate, keep))
    return best


def _settings(choice) -> PostProcess:
    t, a, conf, gate, keep = choice
    return PostProcess(threshold=THRESHOLDS[t], min_area_frac=MIN_AREAS[a], min_confidence=conf,
                       normal_gate=gate, gate_keep_confidence=keep)


def choose_settings(out: Outputs, gate_keeps=GATE_KEEPS, tables=None):
    """Temperature and post-processing chosen on all of ``out``.

    Returns
    -------
    temperature : float
    settings : PostProcess
    summary : dict
        ``dice`` and ``normal_empty`` of the chosen settings on these images,
        ``accuracy``, and ``score`` (Dice + accuracy) to compare candidates
        such as flip averaging on or off.
    """
    tables = tables or _tables(out)
    temperature = fit_temperature(out.logits, out.labels)
    p_normal = softmax(out.logits, temperature)[:, 0]
    idx = np.arange(len(out.labels))
    key, choice = _search(tables, p_normal, out.labels, idx, gate_keeps)
    acc = float((out.logits.argmax(1) == out.labels).mean())
    summary = {"dice": key[2], "normal_empty": key[3], "accuracy": acc, "score": key[2] + acc}
    return temperature, _settings(choice), summary


def crossfit(out: Outputs, gate_keeps=GATE_KEEPS, folds=2, seeds=range(5), tables=None) -> dict:
    """Figures of the whole search on images it was not tuned on.

    For each seed the images are split into ``folds`` folds stratified by
    class; each fold is scored with the temperature and settings chosen on
    the other folds. Returns the mean and range over seeds of lesion Dice and
    the normal-empty share.
    """
    tables = tables or _tables(out)
    labels = out.labels
    dices, empties = [], []
    for seed in seeds:
        fold = stratified_folds(labels, folds, seed)
        d_all, found_all = [], []
        for f in range(folds):
            held, fit = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            temperature = fit_temperature(out.logits[fit], labels[fit])
            p_normal = softmax(out.logits, temperature)[:, 0]
            _, choice = _search(tables, p_normal, labels, fit, gate_keeps)
            d, found = _outcome(tables, choice, p_normal, held)
            d_all.append(d[labels[held] > 0])
            found_all.append(found[labels[held] == 0])
        d_all, found_all = np.concatenate(d_all), np.concatenate(found_all)
        dices.append(float(d_all.mean()))
        empties.append(float(1 - found_all.mean()) if found_all.size else 1.0)
    return {
        "folds": folds,
        "seeds": len(dices),
        "dice": round(float(np.mean(dices)), 4),
        "dice_range": [round(min(dices), 4), round(max(dices), 4)],
        "normal_empty": round(float(np.mean(empties)), 4),
        "normal_empty_range": [round(min(empties), 4), round(max(empties), 4)],
    }


def tune_export(folder, samples, tta="auto", write=True) -> dict:
    """Tune the export in ``folder`` on ``samples`` and record it in its manifest.

    Parameters
    ----------
    tta : {"auto", "on", "off"}
        Flip averaging; ``auto`` keeps it only if it raises validation
        Dice + accuracy by more than 0.005 (it doubles the inference cost).
    write : bool
        Update ``manifest.json``; otherwise only return what would change.

    Returns
    -------
    dict
        The manifest entries ``temperature``, ``tta_flip``, ``postprocess``
        and ``tuning`` (in-sample and cross-fitted figures, and those of the
        earlier rule in which the gate always empties the mask).
    """
    from .runtime import Runtime

    folder = Path(folder)
    runtime = Runtime(folder, backend="auto").load()
    flips = (False, True) if tta == "auto" else (tta == "on",)
    outs = {flip: runtime_outputs(runtime, samples, flip) for flip in flips}
    tables = {flip: _tables(outs[flip]) for flip in flips}
    tuned = {flip: choose_settings(outs[flip], tables=tables[flip]) for flip in flips}
    use = flips[-1] if len(flips) == 1 else (
        tuned[True][2]["score"] > tuned[False][2]["score"] + 0.005
    )
    temperature, settings, summary = tuned[use]
    out, tab = outs[use], tables[use]
    _, _, gate_only = choose_settings(out, gate_keeps=(2.0,), tables=tab)
    blend_temperature = 1.0
    if runtime.lesion_spec:
        # The lesion classifier crops around the outline, so its odds follow the settings.
        tuned_rt = Runtime(folder, backend="auto", postprocess=settings.to_dict()).load()
        tuned_rt.temperature, tuned_rt.tta = temperature, bool(use)
        logits, odds, labels = served_inputs(tuned_rt, samples)
        blend_temperature = fit_blend_temperature(
            logits,
            odds,
            labels,
            runtime.class_names,
            temperature,
            float(runtime.lesion_spec["weight"]),
        )
    entries = {
        "temperature": temperature,
        "blend_temperature": blend_temperature,
        "tta_flip": bool(use),
        "postprocess": settings.to_dict(),
        "tuning": {
            "images": len(out.labels),
            "criterion": "normal-empty >= 0.9 first, then Dice + 0.25 x normal-empty",
            "in_sample": {k: round(v, 4) for k, v in summary.items()},
            "crossfit": crossfit(out, tables=tab),
            "ece_crossfit_2fold": crossfit_ece(out.logits, out.labels),
            "gate_empties_rule": {
                "in_sample": {k: round(v, 4) for k, v in gate_only.items()},
                "crossfit": crossfit(out, gate_keeps=(2.0,), tables=tab),
            },
        },
    }
    log.info("tuned (flip %s): T=%.3f %s -> %s", use, temperature, settings, entries["tuning"])
    if write:
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest.update(entries)
        path.write_text(strict_json(manifest))
    return entries


def served_inputs(runtime, samples):
    """What the served probabilities are made of, image by image.

    Returns
    -------
    logits : numpy.ndarray
        ``(N, K)`` U-Net head logits before the temperature.
    odds : list
        ``N`` lesion classifier log-odds of malignant against benign, or None
        where nothing is blended (no lesion classifier, or an empty outline).
    labels : numpy.ndarray
        ``(N,)`` true class indices.
    """
    logits, odds, labels = [], [], []
    for s in samples:
        grey = read_image(s.image_path)
        logits.append(runtime.outputs(grey)[1])
        odds.append(runtime.lesion_odds(grey))
        labels.append(s.label)
    return np.array(logits), odds, np.array(labels)


def served_probabilities(logits, odds, names, temperature, weight, blend_temperature=1.0):
    """``(N, K)`` probabilities as :meth:`Runtime.classify` serves them.

    ``logits`` and ``odds`` are as :func:`served_inputs` returns them.
    """
    from .runtime import mix_malignant_odds, recalibrate

    out = []
    for row, o in zip(softmax(logits, temperature), odds, strict=True):
        probs = dict(zip(names, row, strict=True))
        if o is not None:
            probs = mix_malignant_odds(probs, o, weight)
        probs = recalibrate(probs, blend_temperature)
        out.append([probs[c] for c in names])
    return np.array(out)


def fit_blend_temperature(logits, odds, labels, names, temperature, weight) -> float:
    """The served probabilities' second temperature, minimising their log-loss.

    Tempering probabilities ``p`` by ``S`` is a softmax of ``log p / S``, so
    this is :func:`models.metrics.fit_temperature` on the blend's log-probabilities.
    """
    probs = served_probabilities(logits, odds, names, temperature, weight)
    return fit_temperature(np.log(np.clip(probs, 1e-12, 1.0)), labels)


def blended_crossfit_ece(runtime, samples, folds=2, seeds=(0,)) -> dict:
    """Cross-fitted ECE of what the runtime serves: tempered U-Net head + lesion classifier.

    Both temperatures, the head's and the blend's, are fitted on the other
    folds than the one scored.

    Returns
    -------
    dict
        ``mean``, ``min`` and ``max`` over ``seeds`` (fold draws).
    """
    logits, odds, labels = served_inputs(runtime, samples)
    names, weight = runtime.class_names, float(runtime.lesion_spec["weight"])
    eces = []
    for seed in seeds:
        fold = stratified_folds(labels, folds, seed)
        probs = np.empty_like(logits, dtype=float)
        for f in range(folds):
            held, rest = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            t = fit_temperature(logits[rest], labels[rest])
            s = fit_blend_temperature(
                logits[rest], [odds[i] for i in rest], labels[rest], names, t, weight
            )
            probs[held] = served_probabilities(
                logits[held], [odds[i] for i in held], names, t, weight, s
            )
        eces.append(expected_calibration_error(probs, labels))
    return {"mean": float(np.mean(eces)), "min": float(min(eces)), "max": float(max(eces))}


def record_metrics(folder, samples, card_dir=None) -> dict:
    """Score the export in ``folder`` on ``samples`` and store the figures in its manifest.

    Returns the full :func:`models.evaluate.evaluate` result.
    """
    from .evaluate import evaluate, save_plots
    from .runtime import Runtime

    folder = Path(folder)
    runtime = Runtime(folder, backend="auto").load()
    result = evaluate(runtime, samples, progress=True)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    ece_crossfit = manifest.get("tuning", {}).get("ece_crossfit_2fold")
    extra = {}
    if "lesion_classifier" in manifest:
        # Tuning saw the U-Net head alone; what is served is the blend.
        extra["ece_crossfit_2fold_unet_head"] = ece_crossfit
        spread = blended_crossfit_ece(runtime, samples, seeds=range(5))
        ece_crossfit = spread["mean"]
        extra["ece_crossfit_2fold_5_draws"] = spread
    manifest["metrics"] = {
        "split": "validation (by duplicate_group)",
        "backend": runtime.backend_used,
        "segmentation": result["segmentation"],
        "classification": {
            **result["classification"],
            "ece_crossfit_2fold": ece_crossfit,
            **extra,
        },
        "median_ms_per_image": result["timing_ms"]["median_per_image"],
    }
    path.write_text(strict_json(manifest))
    if card_dir is not None:
        save_plots(result, card_dir)
    return result


def main(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--data", required=True, help="folder in BUSI layout")
    p.add_argument("--split", required=True,
                   help="split.json the export was trained with; its validation images are used")
    p.add_argument("--weights", default=str(Path(__file__).parent / "weights"),
                   help="export folder to tune (default: the shipped weights)")
    p.add_argument("--tta", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--dry-run", action="store_true", help="print the result, change nothing")
    p.add_argument("--version", default=None,
                   help="new manifest version (the served behaviour changes with the settings)")
    p.add_argument("--card-dir", default=None,
                   help="also write the confusion-matrix and calibration PNGs here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from .evaluate import check_export_split, samples_for_cli

    manifest_path = Path(args.weights) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: --weights {args.weights}: no readable manifest.json ({exc})",
              file=sys.stderr)
        return 2
    if manifest.get("training", {}).get("validated_twin"):
        # Its "validation" images are training images: tuning on them would flatter everything.
        print("error: these weights were refitted on every image, so there is nothing held out "
              "to tune on; tune their validated twin and re-export with --settings-from",
              file=sys.stderr)
        return 2
    samples = samples_for_cli(args.data, args.split, "val", "no validation images to tune on")
    if samples is None:
        return 2
    why = check_export_split(manifest, args.split, args.data)
    if why:
        # Tuning on the export's training images would flatter every setting.
        print(f"error: {why}; give the run's own split.json", file=sys.stderr)
        return 2
    try:
        entries = tune_export(args.weights, samples, args.tta, write=not args.dry_run)
    except (OSError, ValueError) as exc:  # a weight file missing or not the manifest's network
        print(f"error: --weights {args.weights}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(entries, indent=1))
    if not args.dry_run:
        if args.version:
            path = Path(args.weights) / "manifest.json"
            manifest = json.loads(path.read_text())
            manifest["version"] = args.version
            path.write_text(strict_json(manifest))
        record_metrics(args.weights, samples, args.card_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
