import numpy as np
import pytest

from models.metrics import (
    bootstrap_intervals,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    macro_f1,
    overlap_scores,
    roc_auc,
    softmax,
)


def test_overlap_scores_hand_computed():
    pred = np.zeros((4, 4), bool)
    true = np.zeros((4, 4), bool)
    pred[0, :3] = True  # 3 pixels
    true[0, 1:] = True  # 3 pixels, 2 shared
    s = overlap_scores(pred, true)
    assert s["dice"] == pytest.approx(2 * 2 / 6)
    assert s["iou"] == pytest.approx(2 / 4)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)


def test_overlap_scores_empty_cases():
    empty = np.zeros((3, 3), bool)
    full = np.ones((3, 3), bool)
    # Both empty: perfect agreement on every score (the docstring's promise).
    assert overlap_scores(empty, empty) == {
        "dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    # Nothing predicted: no false positive, so precision 1.0; all the truth missed.
    assert overlap_scores(empty, full) == {
        "dice": 0.0, "iou": 0.0, "precision": 1.0, "recall": 0.0}
    # Nothing true: nothing to miss, so recall 1.0; every predicted pixel is wrong.
    assert overlap_scores(full, empty) == {
        "dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 1.0}
    with pytest.raises(ValueError, match="pred"):
        overlap_scores(empty, np.zeros((2, 3), bool))


def test_confusion_and_macro_f1():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    # F1 per class: 0.5, 2/3, 0.8
    assert macro_f1(cm) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_macro_f1_averages_over_the_classes_that_occur():
    # A folder of malignant images only, all called malignant: nothing is wrong.
    assert macro_f1(confusion_matrix([2, 2, 2], [2, 2, 2], 3)) == pytest.approx(1.0)
    # No normal image, none predicted: the mean of benign's 1 and malignant's 2/3.
    cm = confusion_matrix([1, 2, 2], [1, 2, 1], 3)
    assert macro_f1(cm) == pytest.approx((2 / 3 + 2 / 3) / 2)
    # Normal predicted once though absent: it occurs, with F1 0.
    cm = confusion_matrix([1, 2, 2], [0, 2, 2], 3)
    assert macro_f1(cm) == pytest.approx((0 + 0 + 1) / 3)
    assert np.isnan(macro_f1(np.zeros((3, 3))))


def test_roc_auc_rank_statistic():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_ece_hand_computed():
    # Two bins used: conf 0.9 (2 samples, 1 correct) and conf 0.6 (2 samples, both correct).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert expected_calibration_error(probs, y) == pytest.approx(expected)


def test_log_loss_and_brier_hand_computed():
    from models.metrics import brier_score, log_loss

    probs = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    y = np.array([0, 1])
    assert log_loss(probs, y) == pytest.approx(-(np.log(0.7) + np.log(0.25)) / 2)
    # (0.09 + 0.04 + 0.01) and (0.0625 + 0.5625 + 0.25), averaged
    assert brier_score(probs, y) == pytest.approx((0.14 + 0.875) / 2)


def test_log_loss_and_brier_bounds():
    from models.metrics import brier_score, log_loss

    right, wrong = np.eye(3)[[0, 1, 2]], np.eye(3)[[1, 2, 0]]
    assert log_loss(right, [0, 1, 2]) == pytest.approx(0.0)
    assert brier_score(right, [0, 1, 2]) == pytest.approx(0.0)
    assert brier_score(wrong, [0, 1, 2]) == pytest.approx(2.0)
    # A probability of 0 for the true class is clipped, not infinite.
    assert log_loss(wrong, [0, 1, 2]) == pytest.approx(-np.log(1e-12))
    with pytest.raises(ValueError, match="matching"):
        log_loss(right, [0, 1])
    assert np.isnan(brier_score(np.zeros((0, 3)), []))


def test_classification_report_keys_and_values():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    rep = classification_report(probs, [0, 1, 2, 2], ["normal", "benign", "malignant"])
    assert rep["accuracy"] == pytest.approx(0.75)
    assert rep["recall"]["malignant"] == pytest.approx(0.5)
    assert rep["confusion_matrix"][2] == [1, 0, 1]
    assert set(rep["auc_ovr"]) == {"normal", "benign", "malignant"}
    assert rep["log_loss"] == pytest.approx(-np.log([0.8, 0.7, 0.7, 0.1]).mean())
    assert rep["brier"] == pytest.approx((0.06 + 0.14 + 0.14 + (0.36 + 0.09 + 0.81)) / 4)


def test_temperature_fit_sharpens_underconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3))
    logits[np.arange(300), y] += 3.0
    soft = logits / 4  # far too flat
    t = fit_temperature(soft, y)
    assert 0.15 < t < 0.4
    nll = lambda tt: -np.log(softmax(soft, tt)[np.arange(300), y]).mean()  # noqa: E731
    assert nll(t) < nll(1.0)


def test_crossfit_ece_scores_out_of_fold():
    from models.metrics import crossfit_ece, expected_calibration_error, fit_temperature, softmax

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3))
    logits[np.arange(300), y] += 1.5
    logits *= 4  # over-confident, as trained networks are
    in_sample = expected_calibration_error(softmax(logits, fit_temperature(logits, y)), y)
    crossed = crossfit_ece(logits, y, folds=2)
    assert 0 <= in_sample <= 0.1 and 0 <= crossed <= 0.15
    # Far better than the uncalibrated logits, yet not fitted to the very images scored.
    assert crossed < expected_calibration_error(softmax(logits), y) / 2
    assert crossed != in_sample
    # Pure noise: any temperature is calibrated to chance, and so is the cross-fit.
    noise = rng.normal(0, 1, (300, 3))
    assert crossfit_ece(noise, y) < 0.1


def test_confidently_wrong_probabilities_have_ece_one():
    y = np.random.default_rng(1).integers(0, 3, 200)
    assert expected_calibration_error(np.eye(3)[(y + 1) % 3], y) == pytest.approx(1.0)


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_images():
    rng = np.random.default_rng(0)
    dice = rng.uniform(0, 1, 40)
    empty = rng.random(12) < 0.7
    y_true = np.repeat([0, 1, 2], [12, 25, 15])
    y_pred = np.where(rng.random(52) < 0.75, y_true, (y_true + 1) % 3)
    small = bootstrap_intervals(dice, empty, y_true, y_pred, 3, n=500)
    big = bootstrap_intervals(np.tile(dice, 9), np.tile(empty, 9), np.tile(y_true, 9),
                              np.tile(y_pred, 9), 3, n=500)
    for key, estimate in (("mean_dice", dice.mean()), ("normal_predicted_empty", empty.mean()),
                          ("accuracy", (y_true == y_pred).mean())):
        lo, hi = small[key]
        assert lo < estimate < hi
        # Nine times the images: about a third of the width.
        assert (big[key][1] - big[key][0]) < 0.5 * (hi - lo)
    assert set(small) == {"mean_dice", "normal_predicted_empty", "accuracy", "macro_f1",
                          "recall_0", "recall_1", "recall_2"}
    named = bootstrap_intervals(dice, empty, y_true, y_pred, 3, n=500,
                                class_names=["normal", "benign", "malignant"])
    assert named["recall_malignant"] == small["recall_2"]
    assert "recall_2" not in named
    assert bootstrap_intervals(dice, empty, y_true, y_pred, 3, n=200, seed=4) == \
        bootstrap_intervals(dice, empty, y_true, y_pred, 3, n=200, seed=4)


def test_bootstrap_intervals_honour_the_level():
    # Regression: a level that was ignored reported a 90 % interval as the 95 % one.
    rng = np.random.default_rng(3)
    sd, size = 0.2, 2000
    dice = rng.normal(0.5, sd, size)
    y = np.zeros(size, int)

    def width(level):
        lo, hi = bootstrap_intervals(dice, [], y, y, 1, n=2000, level=level, seed=0)["mean_dice"]
        assert lo < dice.mean() < hi
        return hi - lo

    w80, w90, w95, w99 = (width(lv) for lv in (0.80, 0.90, 0.95, 0.99))
    assert w80 < w90 < w95 < w99
    # The mean of n draws is about normal with sd / sqrt(n): its 95 % interval is
    # 2 * 1.96 * 0.2 / sqrt(2000) = 0.01753 wide, its 80 % one 2 * 1.2816 * ... = 0.01146.
    assert w95 == pytest.approx(2 * 1.96 * dice.std() / np.sqrt(size), rel=0.15)
    assert w80 == pytest.approx(2 * 1.2816 * dice.std() / np.sqrt(size), rel=0.15)


def test_bootstrap_intervals_resample_each_class_separately():
    y_true = np.array([0] * 10 + [1] * 10)
    y_pred = np.array([0] * 10 + [1] * 5 + [0] * 5)  # class 0 always right, class 1 half
    iv = bootstrap_intervals([], [], y_true, y_pred, 2, n=300)
    assert iv["recall_0"] == [1.0, 1.0]
    assert iv["recall_1"][0] < 0.5 < iv["recall_1"][1]
    assert "mean_dice" not in iv and "normal_predicted_empty" not in iv


def test_ece_if_calibrated_is_the_noise_of_a_perfect_model():
    from models.metrics import ece_if_calibrated, expected_calibration_error

    # Certain predictions leave nothing to chance.
    assert ece_if_calibrated(np.eye(3)[[0, 1, 2, 1]])["mean"] == 0.0
    rng = np.random.default_rng(1)

    def probs(n):
        top = rng.uniform(0.4, 0.95, n)
        return np.stack([top, (1 - top) * 0.7, (1 - top) * 0.3], axis=1)

    small, large = ece_if_calibrated(probs(50), draws=300), ece_if_calibrated(probs(5000), draws=50)
    assert small["p95"] > small["mean"] > 0.05  # few images: far from 0 by chance alone
    assert large["mean"] < small["mean"] / 4  # and it shrinks like 1 / sqrt(n)
    # A model that claims 0.9 but is right half the time is outside that noise.
    p = np.tile([0.9, 0.05, 0.05], (200, 1))
    y = np.array([0, 1] * 100)
    assert expected_calibration_error(p, y) > ece_if_calibrated(p, draws=300)["p95"]
