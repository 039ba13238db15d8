"""Segmentation and classification metrics, in plain numpy.

Masks are ``(H, W)`` bool arrays; probabilities are ``(N, K)`` rows summing to 1.
"""

from __future__ import annotations

import numpy as np


def overlap_scores(pred, true) -> dict:
    """Dice, IoU, precision and recall of one predicted mask against the truth.

    Both empty counts as perfect agreement (1.0) for Dice and IoU; precision
    with nothing predicted, and recall with nothing true, are 1.0 likewise.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 0]], bool); b = np.array([[0, 1, 1, 0]], bool)
    >>> {k: round(v, 3) for k, v in overlap_scores(a, b).items()}
    {'dice': 0.5, 'iou': 0.333, 'precision': 0.5, 'recall': 0.5}
    """
    pred = np.asarray(pred, bool)
    true = np.asarray(true, bool)
    if pred.shape != true.shape:
        raise ValueError(f"pred: shape {pred.shape} differs from true {true.shape}")
    tp = float(np.count_nonzero(pred & true))
    p = float(np.count_nonzero(pred))
    t = float(np.count_nonzero(true))
    union = p + t - tp
    return {
        "dice": 2 * tp / (p + t) if p + t else 1.0,
        "iou": tp / union if union else 1.0,
        "precision": tp / p if p else 1.0,
        "recall": tp / t if t else 1.0,
    }


def confusion_matrix(y_true, y_pred, num_classes) -> np.ndarray:
    """``(K, K)`` counts; rows are true classes, columns predicted."""
    cm = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def macro_f1(cm) -> float:
    """Unweighted mean of per-class F1 from a confusion matrix (rows true, columns predicted).

    The mean is over the classes that occur, as truth or as prediction (as
    scikit-learn's ``f1_score(average="macro")``): a class that a folder lacks and
    the model never predicts has no F1, rather than an F1 of 0 pulling the mean
    down. NaN for an empty matrix.
    """
    cm = np.asarray(cm, float)
    tp = np.diag(cm)
    prec = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    rec = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(tp), where=(prec + rec) > 0)
    occurs = (cm.sum(0) + cm.sum(1)) > 0
    return float(f1[occurs].mean()) if occurs.any() else float("nan")


def roc_auc(scores, positives) -> float:
    """Area under the ROC curve by the rank statistic (ties count one half).

    Returns NaN when only one class is present.
    """
    scores = np.asarray(scores, float)
    positives = np.asarray(positives, bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    pos, neg = scores[positives], scores[~positives]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (n_pos * n_neg))


def expected_calibration_error(probs, y_true, n_bins=10) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins.

    Parameters
    ----------
    probs : array_like
        ``(N, K)`` predicted probabilities.
    y_true : array_like
        ``(N,)`` true class indices.
    """
    probs, y_true = _checked(probs, y_true)
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def ece_if_calibrated(probs, n_bins=10, draws=1000, seed=0) -> dict:
    """The ECE that sampling noise alone gives a perfectly calibrated model.

    Each draw takes every image's true class at random from the model's own
    probabilities, so the probabilities are exactly right by construction,
    and measures the ECE of that draw. On a few hundred images this is far
    from 0, and an ECE within its range cannot be told from perfect
    calibration.

    Parameters
    ----------
    probs : array_like
        ``(N, K)`` predicted probabilities; rows sum to 1.

    Returns
    -------
    dict
        ``{"mean": float, "p95": float}`` over the draws.
    """
    probs = np.asarray(probs, float)
    if probs.ndim != 2 or not len(probs):
        return {"mean": float("nan"), "p95": float("nan")}
    rng = np.random.default_rng(seed)
    cum = np.cumsum(probs / probs.sum(1, keepdims=True), axis=1)
    values = []
    for _ in range(draws):
        u = rng.random((len(probs), 1))
        y = np.minimum((u > cum).sum(1), probs.shape[1] - 1)
        values.append(expected_calibration_error(probs, y, n_bins))
    return {"mean": float(np.mean(values)), "p95": float(np.quantile(values, 0.95))}


def log_loss(probs, y_true, eps=1e-12) -> float:
    """Mean negative log-probability of the true class (natural log).

    A proper scoring rule: unlike the ECE it needs no bins, so it is the
    steadier guide to calibration on a few hundred images.

    Parameters
    ----------
    probs : array_like
        ``(N, K)`` predicted probabilities.
    y_true : array_like
        ``(N,)`` true class indices.
    eps : float
        Probabilities are clipped to at least ``eps``, so that one image given
        probability 0 for its class costs ``-log(eps)`` rather than infinity.
    """
    probs, y_true = _checked(probs, y_true)
    if not len(y_true):
        return float("nan")
    p = np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0)
    return float(-np.log(p).mean())


def brier_score(probs, y_true) -> float:
    """Multi-class Brier score: mean over images of ``sum_k (p_k - [k == y])^2``.

    Ranges from 0 (certain and right) to 2 (certain and wrong).

    Parameters
    ----------
    probs : array_like
        ``(N, K)`` predicted probabilities.
    y_true : array_like
        ``(N,)`` true class indices.
    """
    probs, y_true = _checked(probs, y_true)
    if not len(y_true):
        return float("nan")
    onehot = np.eye(probs.shape[1])[y_true]
    return float(((probs - onehot) ** 2).sum(1).mean())


def _checked(probs, y_true):
    probs = np.asarray(probs, float)
    y_true = np.asarray(y_true, int)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise ValueError("probs: expected (N, K) matching y_true (N,)")
    return probs, y_true


def classification_report(probs, y_true, class_names) -> dict:
    """Accuracy, per-class recall, macro-F1, confusion matrix, one-vs-rest AUC, ECE,
    log-loss and Brier score."""
    probs = np.asarray(probs, float)
    y_true = np.asarray(y_true, int)
    k = len(class_names)
    y_pred = probs.argmax(1)
    cm = confusion_matrix(y_true, y_pred, k)
    support = cm.sum(1)
    recall = {
        c: (float(cm[i, i] / support[i]) if support[i] else float("nan"))
        for i, c in enumerate(class_names)
    }
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "recall": recall,
        "macro_f1": macro_f1(cm),
        "confusion_matrix": cm.tolist(),
        "auc_ovr": {c: roc_auc(probs[:, i], y_true == i) for i, c in enumerate(class_names)},
        "ece": expected_calibration_error(probs, y_true) if len(y_true) else float("nan"),
        "log_loss": log_loss(probs, y_true),
        "brier": brier_score(probs, y_true),
    }


def softmax(logits, temperature=1.0) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits divided by ``temperature``."""
    z = np.asarray(logits, float) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits, y_true) -> float:
    """Temperature minimising the negative log-likelihood (grid then refine)."""
    logits = np.asarray(logits, float)
    y_true = np.asarray(y_true, int)

    def nll(t):
        return log_loss(softmax(logits, t), y_true)

    grid = np.exp(np.linspace(np.log(0.25), np.log(8), 200))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = np.linspace(best * 0.95, best * 1.05, 41)
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def stratified_folds(y_true, folds=2, seed=0) -> np.ndarray:
    """``(N,)`` fold index of each image, shuffled and balanced within each class."""
    y_true = np.asarray(y_true, int)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y_true), int)
    for c in np.unique(y_true):
        idx = rng.permutation(np.flatnonzero(y_true == c))
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def crossfit_ece(logits, y_true, folds=2, seed=0, n_bins=10) -> float:
    """ECE of temperature scaling fitted on other images than those it is scored on.

    The images are split into ``folds`` stratified folds; each fold's
    probabilities use a temperature fitted on the remaining folds, and the
    ECE is computed over all out-of-fold probabilities. Fitting and scoring
    on the same images, as the export must, flatters the ECE; this estimate
    does not.

    Parameters
    ----------
    logits : array_like
        ``(N, K)`` raw logits.
    y_true : array_like
        ``(N,)`` class indices.

    See Also
    --------
    models.tune.blended_crossfit_ece : the same for what is served, the
        lesion classifier's blend and its own temperature included.
    """
    logits = np.asarray(logits, float)
    y_true = np.asarray(y_true, int)
    fold = stratified_folds(y_true, folds, seed)
    probs = np.empty_like(logits)
    for f in range(folds):
        held = fold == f
        t = fit_temperature(logits[~held], y_true[~held])
        probs[held] = softmax(logits[held], t)
    return expected_calibration_error(probs, y_true, n_bins)


def bootstrap_intervals(dice, normal_empty, y_true, y_pred, num_classes, n=2000, level=0.95,
                        seed=0, class_names=None) -> dict:
    """Percentile bootstrap intervals of the headline figures, resampling images.

    Lesion images, normal images and the images of each class are resampled
    separately, so every resample keeps the data's class counts. An interval
    says how far a figure could move on another set of images like these; on
    a validation split of about a hundred images it is wide, and two models
    whose intervals overlap widely have not been told apart.

    Parameters
    ----------
    dice : array_like
        ``(L,)`` Dice of each lesion image.
    normal_empty : array_like
        ``(M,)`` bool, whether each normal image was predicted empty.
    y_true, y_pred : array_like
        ``(N,)`` class indices of every image.
    num_classes : int
    n : int
        Resamples.
    level : float
        Coverage of the intervals.
    class_names : sequence of str, optional
        Names for the per-class recall keys; default the class indices.

    Returns
    -------
    dict
        ``{name: [low, high]}`` for ``mean_dice``, ``normal_predicted_empty``,
        ``accuracy``, ``macro_f1`` and ``recall_<name>`` for each class
        (``recall_<k>`` by index without ``class_names``); a figure with no
        images to resample is left out.

    Examples
    --------
    >>> iv = bootstrap_intervals([0.9, 0.7, 0.8], [True, False], [0, 1, 1], [0, 1, 0], 2)
    >>> iv["mean_dice"][0] >= 0.7 and iv["mean_dice"][1] <= 0.9
    True
    """
    rng = np.random.default_rng(seed)
    dice = np.asarray(dice, float)
    normal_empty = np.asarray(normal_empty, float)
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    by_class = [np.flatnonzero(y_true == k) for k in range(num_classes)]
    names = list(class_names) if class_names is not None else list(range(num_classes))
    draws = {"mean_dice": [], "normal_predicted_empty": [], "accuracy": [], "macro_f1": []}
    draws.update({f"recall_{names[k]}": [] for k in range(num_classes) if by_class[k].size})
    for _ in range(n):
        if dice.size:
            draws["mean_dice"].append(dice[rng.integers(0, dice.size, dice.size)].mean())
        if normal_empty.size:
            pick = rng.integers(0, normal_empty.size, normal_empty.size)
            draws["normal_predicted_empty"].append(normal_empty[pick].mean())
        idx = np.concatenate([c[rng.integers(0, c.size, c.size)] for c in by_class if c.size])
        if idx.size == 0:
            continue
        t, p = y_true[idx], y_pred[idx]
        draws["accuracy"].append(float((t == p).mean()))
        draws["macro_f1"].append(macro_f1(confusion_matrix(t, p, num_classes)))
        for k in range(num_classes):
            if by_class[k].size:
                draws[f"recall_{names[k]}"].append(float((p[t == k] == k).mean()))
    tail = (1 - level) / 2 * 100
    return {
        name: [round(float(q), 4) for q in np.percentile(v, [tail, 100 - tail])]
        for name, v in draws.items() if v
    }
